/* test_topk.c - cmcr_topk against a brute-force sort: exact ties (values whose dot products
 * are exact in float32, so any summation order gives the same bits), keep masks, k larger
 * than the gallery, several queries, galleries crossing the block size, thread counts, and
 * the refusals. */
#include "testutil.h"
#include "runtime/rng.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ranked {
    double s;
    int64_t i;
} ranked;

static int by_rank(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* The first k of the brute-force ranking of query q (eligible rows only), in double;
 * returns how many rows were eligible. */
static int64_t brute(const float *q, const float *g, int64_t ng, int64_t dim, const unsigned char *keep, ranked *out)
{
    int64_t n = 0;
    for (int64_t r = 0; r < ng; r++) {
        if (keep && !keep[r]) continue;
        double s = 0;
        for (int64_t c = 0; c < dim; c++) s += (double)q[c] * g[r * dim + c];
        out[n].s = s;
        out[n].i = r;
        n++;
    }
    qsort(out, (size_t)n, sizeof *out, by_rank);
    return n;
}

/* Values in {-0.5, -0.25, 0, 0.25, 0.5}: every product and sum of 16 is exact in float32. */
static float *exact_matrix(rng_state *r, int64_t rows, int64_t dim)
{
    float *m = malloc((size_t)(rows * dim) * sizeof(float));
    for (int64_t i = 0; i < rows * dim; i++) m[i] = 0.25f * (float)((int64_t)(rng_next(r) % 5) - 2);
    return m;
}

/* cmcr_topk equals the brute force exactly (indices and scores), padding included. */
static void check_exact(const float *q, int64_t nq, const float *g, int64_t ng, int64_t dim,
                        const unsigned char *keep, int64_t k)
{
    int64_t *idx = malloc((size_t)(nq * k) * sizeof(int64_t));
    float *sc = malloc((size_t)(nq * k) * sizeof(float));
    ranked *want = malloc((size_t)(ng ? ng : 1) * sizeof(ranked));
    assert_int_equal(cmcr_topk(q, nq, g, ng, dim, keep, k, idx, sc), CMCR_OK);
    for (int64_t i = 0; i < nq; i++) {
        int64_t n = brute(q + i * dim, g, ng, dim, keep, want);
        for (int64_t e = 0; e < k; e++) {
            if (e < n) {
                assert_int_equal(idx[i * k + e], want[e].i);
                assert_true((double)sc[i * k + e] == want[e].s);
            } else {
                assert_int_equal(idx[i * k + e], -1);
                assert_true(isinf(sc[i * k + e]) && sc[i * k + e] < 0);
            }
        }
    }
    free(idx);
    free(sc);
    free(want);
}

static void test_exact_ties(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 11);
    int64_t ng = 10000, dim = 16, nq = 5; /* three blocks of 4096 */
    float *g = exact_matrix(&r, ng, dim), *q = exact_matrix(&r, nq, dim);
    /* Whole runs of equal rows, in one block and across blocks: ties decided by the row index. */
    for (int64_t i = 0; i < 50; i++) memcpy(g + (9000 + i * 7) * dim, g + 3 * dim, (size_t)dim * sizeof(float));
    for (int64_t i = 0; i < 20; i++) memcpy(g + (4090 + i) * dim, q, (size_t)dim * sizeof(float));
    static const int64_t ks[] = {1, 7, 64, 300};
    int was = omp_get_max_threads();
    for (int threads = 1; threads <= 4; threads *= 4) { /* 4: ties also across the threads' merge */
        omp_set_num_threads(threads);
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) check_exact(q, nq, g, ng, dim, NULL, ks[i]);
    }
    omp_set_num_threads(was);
    free(g);
    free(q);
}

static void test_keep_mask(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 12);
    int64_t ng = 9000, dim = 16, nq = 3;
    float *g = exact_matrix(&r, ng, dim), *q = exact_matrix(&r, nq, dim);
    unsigned char *keep = malloc((size_t)ng);
    for (int64_t i = 0; i < ng; i++) keep[i] = rng_next(&r) % 3 == 0;
    check_exact(q, nq, g, ng, dim, keep, 10);
    /* Only 4 rows eligible, k = 10: six padded results per query. */
    memset(keep, 0, (size_t)ng);
    keep[5] = keep[4100] = keep[8191] = keep[8999] = 1;
    check_exact(q, nq, g, ng, dim, keep, 10);
    memset(keep, 0, (size_t)ng);
    check_exact(q, nq, g, ng, dim, keep, 3); /* none eligible */
    free(keep);
    free(g);
    free(q);
}

static void test_k_beyond_gallery(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 13);
    float *g = exact_matrix(&r, 5, 16), *q = exact_matrix(&r, 4, 16);
    check_exact(q, 4, g, 5, 16, NULL, 8);
    check_exact(q, 4, g, 5, 16, NULL, 5);
    check_exact(q, 4, g, 0, 16, NULL, 2); /* an empty gallery: padding only */
    int64_t idx = 7;
    float sc = 0;
    assert_int_equal(cmcr_topk(q, 0, g, 5, 16, NULL, 1, &idx, &sc), CMCR_OK); /* no queries: nothing written */
    assert_int_equal(idx, 7);
    free(g);
    free(q);
}

/* Random normalised rows: every result's score is its row's true score, and the k scores are
 * the brute force's k best (within float32 rounding). */
static void test_random_rows(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 14);
    int64_t ng = 20000, dim = 64, nq = 70, k = 10;
    float *g = tu_normal_matrix(&r, ng, dim), *q = tu_normal_matrix(&r, nq, dim);
    cmcr_normalize_rows(g, ng, dim);
    cmcr_normalize_rows(q, nq, dim);
    int64_t *idx = malloc((size_t)(nq * k) * sizeof(int64_t));
    float *sc = malloc((size_t)(nq * k) * sizeof(float));
    ranked *want = malloc((size_t)ng * sizeof(ranked));
    assert_int_equal(cmcr_topk(q, nq, g, ng, dim, NULL, k, idx, sc), CMCR_OK);
    double worst = 0;
    for (int64_t i = 0; i < nq; i++) {
        brute(q + i * dim, g, ng, dim, NULL, want);
        for (int64_t e = 0; e < k; e++) {
            int64_t row = idx[i * k + e];
            assert_true(row >= 0 && row < ng);
            double s = 0;
            for (int64_t c = 0; c < dim; c++) s += (double)q[i * dim + c] * g[row * dim + c];
            worst = fmax(worst, fabs(s - sc[i * k + e]));
            worst = fmax(worst, fabs(want[e].s - sc[i * k + e]));
            if (e) assert_true(sc[i * k + e] <= sc[i * k + e - 1]);
            for (int64_t f = 0; f < e; f++) assert_int_not_equal(idx[i * k + f], row);
        }
    }
    printf("random rows: largest score difference from float64 %.3g\n", worst);
    assert_true(worst < 1e-5);
    free(idx);
    free(sc);
    free(want);
    free(g);
    free(q);
}

/* The same bits whatever the thread count, for more queries than one product takes. */
static void test_threads(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 15);
    int64_t ng = 13000, dim = 32, nq = 300, k = 5;
    float *g = tu_normal_matrix(&r, ng, dim), *q = tu_normal_matrix(&r, nq, dim);
    int64_t *i1 = malloc((size_t)(nq * k) * sizeof(int64_t)), *i2 = malloc((size_t)(nq * k) * sizeof(int64_t));
    float *s1 = malloc((size_t)(nq * k) * sizeof(float)), *s2 = malloc((size_t)(nq * k) * sizeof(float));
    int was = omp_get_max_threads();
    omp_set_num_threads(1);
    assert_int_equal(cmcr_topk(q, nq, g, ng, dim, NULL, k, i1, s1), CMCR_OK);
    omp_set_num_threads(was > 1 ? was : 2);
    assert_int_equal(cmcr_topk(q, nq, g, ng, dim, NULL, k, i2, s2), CMCR_OK);
    omp_set_num_threads(was);
    assert_memory_equal(i1, i2, (size_t)(nq * k) * sizeof(int64_t));
    assert_memory_equal(s1, s2, (size_t)(nq * k) * sizeof(float));
    free(i1), free(i2), free(s1), free(s2), free(g), free(q);
}

static void expect_refused(const char *label, cmcr_status got, cmcr_status want, const char *needle)
{
    printf("MSG\t%s\t%s\t%s\n", label, cmcr_status_name(got), cmcr_last_error());
    assert_int_equal(got, want);
    assert_non_null(strstr(cmcr_last_error(), needle));
    assert_null(strchr(cmcr_last_error(), '\n'));
}

static void test_refusals(void **state)
{
    (void)state;
    float q[3 * 4] = {0}, g[2 * 4] = {0};
    int64_t idx[6];
    float sc[6];
    q[2 * 4 + 1] = NAN;
    expect_refused("NaN query", cmcr_topk(q, 3, g, 2, 4, NULL, 2, idx, sc), CMCR_EVALUE, "query 2 contains NaN (column 1)");
    q[2 * 4 + 1] = -INFINITY;
    expect_refused("Inf query", cmcr_topk(q, 3, g, 2, 4, NULL, 2, idx, sc), CMCR_EVALUE, "query 2 contains Inf");
    q[2 * 4 + 1] = 0;
    expect_refused("k = 0", cmcr_topk(q, 3, g, 2, 4, NULL, 0, idx, sc), CMCR_EINVAL, "k must be at least 1");
    expect_refused("width 0", cmcr_topk(q, 3, g, 2, 0, NULL, 2, idx, sc), CMCR_EINVAL, "width 0");
    expect_refused("negative rows", cmcr_topk(q, 3, g, -1, 4, NULL, 2, idx, sc), CMCR_EINVAL, "negative counts");
    expect_refused("no output", cmcr_topk(q, 3, g, 2, 4, NULL, 2, NULL, sc), CMCR_EINVAL, "required");
    /* A NaN score (a row with NaN, which a loaded gallery never has) is never returned. */
    float g2[2 * 4] = {1, 0, 0, 0, NAN, 0, 0, 0}, q1[4] = {1, 0, 0, 0};
    assert_int_equal(cmcr_topk(q1, 1, g2, 2, 4, NULL, 2, idx, sc), CMCR_OK);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_ties),   cmocka_unit_test(test_keep_mask), cmocka_unit_test(test_k_beyond_gallery),
        cmocka_unit_test(test_random_rows), cmocka_unit_test(test_threads),   cmocka_unit_test(test_refusals),
    };
    return tu_run_group(tests);
}
