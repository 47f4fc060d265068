/* test_parity.c - the released C-MCR checkpoint ulip_clip.pt on real CLIP text embeddings
 * reproduces PyTorch 1.13's outputs (../shared/data/reference) within 1e-5. Skips (77) when
 * the shared data is absent. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* The released ulip_clip.pt on real CLIP text embeddings, against PyTorch 1.13's outputs. */
static void test_released_checkpoint_parity(void **state)
{
    (void)state;
    char *ckpt = tu_require_data("cmcr-ulip-clip/ulip_clip.pt");
    char *text = tu_require_data("clip-text/coco_clip_a+cname.npy");
    const char *ref_names[2] = {"reference/coco_clip_a+cname.ulip_clip.head_a.npy",
                                "reference/coco_clip_a+cname.ulip_clip.head_b.npy"};
    cmcr_model *m;
    if (cmcr_model_load(ckpt, &m) != CMCR_OK) fail_msg("%s", cmcr_last_error());
    assert_string_equal(cmcr_model_preset(m), "ulip-clip");
    cmcr_matrix x;
    if (cmcr_matrix_load(text, &x) != CMCR_OK) fail_msg("%s", cmcr_last_error());
    assert_int_equal(x.rows, 80);
    assert_int_equal(x.cols, 512);
    for (int side = 0; side < 2; side++) {
        char *refp = tu_require_data(ref_names[side]);
        cmcr_matrix ref;
        if (cmcr_matrix_load(refp, &ref) != CMCR_OK) fail_msg("%s", cmcr_last_error());
        float *y = malloc(sizeof(float) * 80 * 512);
        assert_int_equal(cmcr_model_project(m, (cmcr_side)side, x.data, x.rows, y), CMCR_OK);
        double err = max_abs_diff(y, ref.data, 80 * 512);
        printf("head %c: max |cmcr - pytorch| = %.3g (limit 1e-5)\n", side ? 'B' : 'A', err);
        assert_true(err <= 1e-5);
        free(y);
        cmcr_matrix_free(&ref);
        free(refp);
    }
    cmcr_matrix_free(&x);
    cmcr_model_free(m);
    free(ckpt);
    free(text);
}

int main(void)
{
    free(tu_require_data("cmcr-ulip-clip/ulip_clip.pt")); /* exits 77 when absent */
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_released_checkpoint_parity)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
