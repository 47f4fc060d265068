/* test_pointbert.c - ULIP-2's PointBERT tower (src/encoders/pointbert.c) and its grouping
 * (pointgroup.c) against scripts/pointbert_reference.py: a small model on xyz clouds
 * (fixture pointbert_small: 10,000, 600, 100 (< 512), 33 and 2,048 points, two of them on a
 * grid where distances tie) and on xyz rgb clouds (pointbert_rgb). FPS and kNN indices
 * identical, embeddings within 1e-4, bf16 within a loose bound, and the refusals. */
#include "pointbert_testutil.h"
#include "runtime/matmul.h"

#include <math.h>
#include <pthread.h>

static void run_fixture(const char *fixture, int width)
{
    pointbert_model *m = pb_model(fixture);
    pointbert_info in = pointbert_get_info(m);
    assert_int_equal(in.width, width);
    assert_int_equal(in.heads, in.dim / 64);
    assert_int_equal(in.mlp, 4 * in.dim);
    assert_int_equal(in.out, 512);
    int64_t count;
    float *groups = pb_group_all(fixture, width, &count, NULL);
    double d = pb_encode_vs(m, fixture, groups, count, 0, NULL);
    printf("%s (D %d, depth %d, E %d, width %d): %lld clouds: max |C - PyTorch| = %.3g\n", fixture, in.dim, in.depth,
           in.encoder_dims, width, (long long)count, d);
    assert_true(d < TOL);
    /* one cloud at a time: the same embeddings (to rounding) */
    int64_t numel;
    float *ref = pb_npy(fixture, "ref_emb.npy", &numel, NULL), emb[512];
    for (int64_t c = 0; c < count; c++) {
        assert_int_equal(pointbert_encode(m, groups + pointbert_group_floats(width) * (size_t)c, 1, 0, emb), CMCR_OK);
        double dc = tu_max_abs_diff(emb, ref + c * 512, 512);
        printf("%s, cloud %lld alone: max |C - PyTorch| = %.3g\n", fixture, (long long)c, dc);
        assert_true(dc < TOL);
        if (c > 0) continue;
        /* the first cloud against the float64 model: C's float32 noise beside PyTorch's */
        float *ref64 = pb_npy(fixture, "ref_emb64.npy", &numel, NULL);
        double c64 = tu_max_abs_diff(emb, ref64, 512), t64 = tu_max_abs_diff(ref, ref64, 512);
        printf("%s, first cloud: max |C - float64| = %.3g, max |PyTorch float32 - float64| = %.3g\n", fixture, c64, t64);
        assert_true(c64 < TOL);
        free(ref64);
    }
    if (mm_bf16_check() == CMCR_OK) {
        double b = pb_encode_vs(m, fixture, groups, count, 1, NULL);
        printf("%s: bf16 products: max |C - PyTorch float32| = %.3g\n", fixture, b);
        assert_true(b < 0.05);
    } else {
        printf("%s: bf16 products unavailable here (%s): not compared\n", fixture, cmcr_last_error());
    }
    free(ref);
    free(groups);
    pointbert_model_free(m);
}

static void test_small(void **state)
{
    (void)state;
    run_fixture("pointbert_small", 3);
}

static void test_rgb(void **state)
{
    (void)state;
    run_fixture("pointbert_rgb", 6);
}

/* Two threads encoding on one model at once: each gets the reference's embeddings. */
typedef struct job {
    const pointbert_model *m;
    const float *groups;
    int64_t count;
    float *emb;
    cmcr_status st;
} job;

static void *encode_job(void *arg)
{
    job *j = arg;
    j->st = pointbert_encode(j->m, j->groups, j->count, 0, j->emb);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    pointbert_model *m = pb_model("pointbert_small");
    int64_t count, numel;
    float *groups = pb_group_all("pointbert_small", 3, &count, NULL);
    float *ref = pb_npy("pointbert_small", "ref_emb.npy", &numel, NULL);
    job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        jobs[i] = (job){.m = m, .groups = groups, .count = count, .emb = malloc(sizeof(float) * (size_t)numel)};
        assert_non_null(jobs[i].emb);
        assert_int_equal(pthread_create(&th[i], NULL, encode_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].st, CMCR_OK);
        double d = tu_max_abs_diff(jobs[i].emb, ref, numel);
        printf("concurrent call %d: max |C - PyTorch| = %.3g\n", i, d);
        assert_true(d < TOL);
        free(jobs[i].emb);
    }
    free(ref);
    free(groups);
    pointbert_model_free(m);
}

/* ------------------------------------------------------------------ grouping rules */

static void test_fps_start(void **state)
{
    (void)state;
    /* ten points on a line, x = 0..9: from 3, the farthest is 9, then 0, then 6 (distance 3 to
     * 3 and to 9: the first maximum), ... */
    float v[10 * 3] = {0};
    for (int i = 0; i < 10; i++) v[i * 3] = (float)i;
    int32_t out[12];
    assert_int_equal(points_fps(v, 10, 3, 3, 4, out), CMCR_OK);
    assert_int_equal(out[0], 3);
    assert_int_equal(out[1], 9);
    assert_int_equal(out[2], 0);
    assert_int_equal(out[3], 6);
    /* every start is honoured; more centres than points repeat (every distance 0: index 0) */
    for (int s = 0; s < 10; s++) {
        assert_int_equal(points_fps(v, 10, 3, s, 12, out), CMCR_OK);
        assert_int_equal(out[0], s);
        assert_int_equal(out[10], 0);
        assert_int_equal(out[11], 0);
    }
}

static void test_knn_ties(void **state)
{
    (void)state;
    /* 40 points at the same place but for point 5, a little off: every distance but one ties,
     * so the 4 nearest of centre 0 are the lowest other indices, in order */
    float v[40 * 6] = {0};
    v[5 * 6] = 1e-3f;
    int32_t c = 7, out[4];
    assert_int_equal(points_knn(v, 40, 6, &c, 1, 4, out), CMCR_OK);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 2);
    assert_int_equal(out[3], 3);
    c = 5;
    assert_int_equal(points_knn(v, 40, 6, &c, 1, 4, out), CMCR_OK);
    assert_int_equal(out[0], 5);
    assert_int_equal(out[1], 0);
    assert_int_equal(out[3], 2);
}

static void test_group_refusals(void **state)
{
    (void)state;
    float pts[33 * 3] = {0};
    int32_t idx[64], bad = 33, zero = 0;
    assert_int_equal(points_knn(pts, 33, 3, &bad, 1, 4, idx), CMCR_EINVAL);
    assert_int_equal(points_knn(pts, 33, 3, &zero, 1, 34, idx), CMCR_EINVAL);
    assert_int_equal(points_fps(pts, 33, 3, 33, 4, idx), CMCR_EINVAL);
    assert_int_equal(points_fps(pts, 33, 2, 0, 4, idx), CMCR_EINVAL);
    float *v = calloc(100 * 6, sizeof(float)), *out = malloc(sizeof(float) * pointbert_group_floats(6));
    assert_true(v && out);
    assert_int_equal(pointbert_group(v, 31, 3, 0, out, NULL, NULL), CMCR_EINVAL);
    printf("refused: %s\n", cmcr_last_error());
    assert_int_equal(pointbert_group(v, 100, 4, 0, out, NULL, NULL), CMCR_EINVAL);
    printf("refused: %s\n", cmcr_last_error());
    assert_int_equal(pointbert_group(v, 100, 3, 100, out, NULL, NULL), CMCR_EINVAL);
    printf("refused: %s\n", cmcr_last_error());
    assert_int_equal(pointbert_group(v, 100, 3, -1, out, NULL, NULL), CMCR_EINVAL);
    /* 32 points (the least): each group holds all of them */
    assert_int_equal(pointbert_group(v, 32, 6, 31, out, NULL, NULL), CMCR_OK);
    free(v);
    free(out);
}

/* ------------------------------------------------------------------ load refusals */

static void expect_refused(const cmcr_tensors *ts, const tu_edit *e, cmcr_status want, const char *needle)
{
    cmcr_tensors *bad = tu_edited(ts, e);
    pointbert_model *m = (pointbert_model *)1;
    cmcr_status st = pointbert_model_from_tensors(bad, "ulip.pt", &m);
    printf("refused: %s\n", cmcr_last_error());
    assert_int_equal(st, want);
    assert_null(m);
    assert_non_null(strstr(cmcr_last_error(), "ulip.pt"));
    assert_non_null(strstr(cmcr_last_error(), needle));
    assert_null(strchr(cmcr_last_error(), '\n'));
    cmcr_tensors_free(bad);
}

#define PE "point_encoder."

static void test_refuse_tensors(void **state)
{
    (void)state;
    cmcr_tensors *ts = pb_weights("pointbert_small");
    static const char *const required[] = {PE "encoder.first_conv.1.running_var", PE "encoder.second_conv.0.bias",
                                           PE "cls_token", PE "cls_pos", PE "pos_embed.2.weight",
                                           PE "blocks.blocks.1.attn.proj.bias", PE "blocks.blocks.0.norm2.weight",
                                           PE "norm.bias", PE "reduce_dim.bias"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        expect_refused(ts, &(tu_edit){.drop = required[i]}, CMCR_EFORMAT, required[i]);
    expect_refused(ts, &(tu_edit){.drop = "pc_projection"}, CMCR_EFORMAT, "pc_projection");
    expect_refused(ts, &(tu_edit){.drop = PE "blocks.blocks.0.attn.qkv.weight"}, CMCR_EFORMAT, "no blocks");
    /* shapes: pc_projection as a Linear weight (512 x 2D) instead of 2D x 512 */
    expect_refused(ts, &(tu_edit){.change = "pc_projection", .ndim = 2, .shape = {512, 128}, .fill = 0.5f},
                   CMCR_ESHAPE, "expected 2 x 64");
    expect_refused(ts, &(tu_edit){.change = PE "encoder.first_conv.3.weight", .ndim = 3, .shape = {256, 64, 1},
                               .fill = 0.5f}, CMCR_ESHAPE, "expected [256, 128, 1]");
    expect_refused(ts, &(tu_edit){.change = PE "encoder.first_conv.0.weight", .ndim = 3, .shape = {128, 4, 1},
                               .fill = 0.5f}, CMCR_EUNSUPPORTED, "expected 3 (xyz) or 6");
    expect_refused(ts, &(tu_edit){.change = PE "reduce_dim.weight", .ndim = 2, .shape = {96, 32}, .fill = 0.5f},
                   CMCR_EUNSUPPORTED, "multiple of 64");
    expect_refused(ts, &(tu_edit){.change = PE "blocks.blocks.1.attn.qkv.weight", .ndim = 2, .shape = {192, 64},
                               .fill = NAN}, CMCR_EVALUE, "blocks.blocks.1.attn.qkv.weight");
    expect_refused(ts, &(tu_edit){.change = PE "encoder.second_conv.1.running_var", .ndim = 1, .shape = {512},
                               .fill = -1.0f}, CMCR_EVALUE, "negative variance");
    /* a connection file's keys (C-MCR's projectors) hold no point tower */
    cmcr_tensors *conn = cmcr_tensors_new();
    float w[4] = {1, 2, 3, 4};
    assert_int_equal(cmcr_tensors_add(conn, "trans_clip_ulip.0.weight", CMCR_F32, 2, (int64_t[]){2, 2}, w), CMCR_OK);
    pointbert_model *m = (pointbert_model *)1;
    assert_int_equal(pointbert_model_from_tensors(conn, "ulip_clip.pt", &m), CMCR_EFORMAT);
    printf("refused: %s\n", cmcr_last_error());
    assert_null(m);
    assert_non_null(strstr(cmcr_last_error(), "ulip_clip.pt"));
    assert_non_null(strstr(cmcr_last_error(), "first_conv.0.weight"));
    cmcr_tensors_free(conn);
    assert_int_equal(pointbert_model_from_tensors(NULL, "x", &m), CMCR_EINVAL);
    cmcr_tensors_free(ts);
}

static void test_refuse_input(void **state)
{
    (void)state;
    cmcr_tensors *ts = pb_weights("pointbert_small");
    pointbert_model *m = NULL;
    assert_int_equal(pointbert_model_from_tensors_with(ts, "ulip.pt", true, &m), CMCR_OK);
    cmcr_tensors_free(ts);
    const size_t per = pointbert_group_floats(3);
    float *g = calloc(2 * per, sizeof(float)), emb[2 * 512];
    assert_non_null(g);
    assert_int_equal(pointbert_encode(m, g, 2, 0, emb), CMCR_OK);
    g[per + 7] = NAN;
    assert_int_equal(pointbert_encode(m, g, 2, 0, emb), CMCR_EVALUE);
    printf("refused: %s\n", cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), "row 1"));
    assert_int_equal(pointbert_encode(m, g, 1, 1, emb), CMCR_EUNSUPPORTED);
    printf("refused: %s\n", cmcr_last_error());
    assert_int_equal(pointbert_encode(m, g, -1, 0, emb), CMCR_EINVAL);
    assert_int_equal(pointbert_encode(m, g, 0, 0, emb), CMCR_OK);
    free(g);
    pointbert_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fps_start),    cmocka_unit_test(test_knn_ties),       cmocka_unit_test(test_group_refusals),
        cmocka_unit_test(test_small),        cmocka_unit_test(test_rgb),            cmocka_unit_test(test_refuse_tensors),
        cmocka_unit_test(test_refuse_input), cmocka_unit_test(test_concurrent),
    };
    return tu_run_group(tests);
}
