/* test_clip_full.c - the full-size ViT-B/32 towers (fixture clip_full: scripts/clip_reference.py
 * --size full, random weights at the real scales) within 1e-4 of PyTorch in float32, in the
 * Hugging Face and OpenAI layouts; the bf16 products' error printed and loosely bounded.
 * Labelled slow (a 600 MB checkpoint per layout). */
#include "testutil.h"
#define CLIP_FIXTURE "clip_full"
#include "clip_testutil.h"
#include "runtime/matmul.h"

static void check_b32(const clip_info *in)
{
    assert_int_equal(in->image_size, 224);
    assert_int_equal(in->patch_size, 32);
    assert_int_equal(in->grid, 7);
    assert_int_equal(in->vision_width, 768);
    assert_int_equal(in->vision_layers, 12);
    assert_int_equal(in->vision_heads, 12);
    assert_int_equal(in->text_width, 512);
    assert_int_equal(in->text_layers, 12);
    assert_int_equal(in->text_heads, 8);
    assert_int_equal(in->context, 77);
    assert_int_equal(in->vocab, 49408);
    assert_int_equal(in->embed_dim, 512);
}

static void run_layout(const char *path, const char *layout)
{
    double t0 = cmcr_now_seconds();
    clip_model *m = load_ok(path, layout);
    printf("%s: loaded in %.2f s\n", path, cmcr_now_seconds() - t0);
    check_b32(clip_model_info(m));
    refs r = load_refs("full", "ref");
    expect_close(path, run_towers(m, &r, 0));
    if (mm_bf16_check() == CMCR_OK) {
        errs e = run_towers(m, &r, 1);
        print_errs("  bf16 products", e);
        assert_true(e.img_n < 0.03 && e.patch_n < 0.03 && e.txt_n < 0.03);
    } else {
        printf("  bf16 products unavailable here: %s\n", cmcr_last_error());
    }
    free_refs(&r);
    clip_model_free(m);
}

static void test_hf(void **state)
{
    (void)state;
    run_layout("full/hf", "hf");
}

static void test_openai(void **state)
{
    (void)state;
    run_layout("full/openai.pt", "openai");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hf), cmocka_unit_test(test_openai)};
    return tu_run_group(tests);
}
