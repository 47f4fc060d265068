/* test_eval.c - retrieval and zero-shot metrics against hand-computed values and against a
 * naive full-matrix implementation written here. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcr/eval.h"

#define EPS 1e-12

/* Identity gallery of n rows: query row i then *is* its score row. */
static float *identity(int64_t n)
{
    float *g = calloc((size_t)(n * n), sizeof(float));
    for (int64_t i = 0; i < n; i++) g[i * n + i] = 1.0f;
    return g;
}

static void expect_metrics(const cmcr_retrieval_metrics *m, int64_t queries, double r1, double r5, double r10,
                           double median, double mean, double map)
{
    assert_int_equal(m->queries, queries);
    assert_float_equal(m->recall[0], r1, EPS);
    assert_float_equal(m->recall[1], r5, EPS);
    assert_float_equal(m->recall[2], r10, EPS);
    assert_float_equal(m->median_rank, median, EPS);
    assert_float_equal(m->mean_rank, mean, EPS);
    assert_float_equal(m->map, map, EPS);
}

/* ------------------------------------------------------------------ hand examples */

static void test_hand_by_row(void **state)
{
    (void)state;
    /* Relevant items: q0 -> g0 (0.9, rank 1), q1 -> g1 (0.3: 0.8, 0.6 above, rank 3),
     * q2 -> g2 (0.1, last: rank 4). */
    float q[3 * 4] = {0.9f, 0.1f, 0.5f, 0.2f, 0.8f, 0.3f, 0.6f, 0.1f, 0.7f, 0.9f, 0.1f, 0.4f};
    float *g = identity(4);
    cmcr_retrieval_metrics m;
    assert_int_equal(cmcr_eval_retrieval(q, 3, g, 4, 4, NULL, NULL, &m), CMCR_OK);
    expect_metrics(&m, 3, 1.0 / 3, 1, 1, 3, 8.0 / 3, (1 + 1.0 / 3 + 1.0 / 4) / 3);
    free(g);
}

static void test_ties_by_index(void **state)
{
    (void)state;
    /* All equal: q0's item ranks 1, q1's 2, q2's 3; q3: g3 ties g1, g2 at 0.6 -> rank 3. */
    float q[4 * 4] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f,
                      0.5f, 0.5f, 0.5f, 0.5f, 0.2f, 0.6f, 0.6f, 0.6f};
    float *g = identity(4);
    cmcr_retrieval_metrics m;
    assert_int_equal(cmcr_eval_retrieval(q, 4, g, 4, 4, NULL, NULL, &m), CMCR_OK);
    expect_metrics(&m, 4, 0.25, 1, 1, 2.5, 9.0 / 4, (1 + 1.0 / 2 + 1.0 / 3 + 1.0 / 3) / 4);
    free(g);
}

static void test_labels_hand(void **state)
{
    (void)state;
    int64_t gl[5] = {7, 3, 7, 3, 7}, ql[3] = {7, 3, 7};
    /* q0 (label 7, relevant g0 g2 g4): g0 0.9 rank 1, g4 0.7 rank 3, g2 0.1 rank 5.
     * q1 (label 3, relevant g1 g3, tied at 0.3 behind g2): ranks 2 and 3.
     * q2 (label 7): g2 0.8 rank 1, g0 0.4 rank 3 (g1 0.6 above), g4 0.0 rank 5. */
    float q[3 * 5] = {0.9f, 0.8f, 0.1f, 0.5f, 0.7f,
                      0.2f, 0.3f, 0.9f, 0.3f, 0.1f,
                      0.4f, 0.6f, 0.8f, 0.2f, 0.0f};
    float *g = identity(5);
    double ap0 = (1.0 / 1 + 2.0 / 3 + 3.0 / 5) / 3, ap1 = (1.0 / 2 + 2.0 / 3) / 2, ap2 = ap0;
    cmcr_retrieval_metrics m;
    assert_int_equal(cmcr_eval_retrieval(q, 3, g, 5, 5, ql, gl, &m), CMCR_OK);
    expect_metrics(&m, 3, 2.0 / 3, 1, 1, 1, 4.0 / 3, (ap0 + ap1 + ap2) / 3);
    free(g);
}

static void test_ap_ranks_1_and_3(void **state)
{
    (void)state;
    int64_t gl[4] = {1, 2, 1, 2}, ql[1] = {1};
    float q[4] = {0.9f, 0.8f, 0.7f, 0.1f}; /* relevant g0 (rank 1) and g2 (rank 3) */
    float *g = identity(4);
    cmcr_retrieval_metrics m;
    assert_int_equal(cmcr_eval_retrieval(q, 1, g, 4, 4, ql, gl, &m), CMCR_OK);
    expect_metrics(&m, 1, 1, 1, 1, 1, 1, (1.0 / 1 + 2.0 / 3) / 2);
    free(g);
}

static void test_k_beyond_gallery(void **state)
{
    (void)state;
    /* Three gallery rows: every query's item is within the top 5 and top 10. */
    float q[3 * 3] = {0.1f, 0.5f, 0.9f, 0.9f, 0.5f, 0.1f, 0.9f, 0.5f, 0.1f};
    float *g = identity(3);
    cmcr_retrieval_metrics m;
    assert_int_equal(cmcr_eval_retrieval(q, 3, g, 3, 3, NULL, NULL, &m), CMCR_OK);
    expect_metrics(&m, 3, 0, 1, 1, 3, 8.0 / 3, (1.0 / 3 + 1.0 / 2 + 1.0 / 3) / 3); /* ranks 3, 2, 3 */
    /* By label with a relevant item at the last of 3 positions: hit for k = 5 and 10. */
    int64_t gl[3] = {4, 5, 6}, ql[1] = {4};
    assert_int_equal(cmcr_eval_retrieval(q, 1, g, 3, 3, ql, gl, &m), CMCR_OK);
    expect_metrics(&m, 1, 0, 1, 1, 3, 3, 1.0 / 3);
    free(g);
}

static void test_skip_queries_without_relevant(void **state)
{
    (void)state;
    int64_t gl[3] = {1, 2, 3}, ql[3] = {9, 2, 8}; /* only q1 has a relevant item */
    float q[3 * 3] = {0.1f, 0.2f, 0.3f, 0.3f, 0.2f, 0.1f, 0.5f, 0.5f, 0.5f};
    float *g = identity(3);
    cmcr_retrieval_metrics m;
    assert_int_equal(cmcr_eval_retrieval(q, 3, g, 3, 3, ql, gl, &m), CMCR_OK);
    expect_metrics(&m, 1, 0, 1, 1, 2, 2, 0.5);
    int64_t none[3] = {10, 11, 12};
    assert_int_equal(cmcr_eval_retrieval(q, 3, g, 3, 3, none, gl, &m), CMCR_EVALUE);
    assert_non_null(strstr(cmcr_last_error(), "no query label"));
    free(g);
}

static void test_argument_errors(void **state)
{
    (void)state;
    float *g = identity(3);
    float q[4 * 3] = {0};
    int64_t gl[3] = {1, 2, 3};
    cmcr_retrieval_metrics m;
    assert_int_equal(cmcr_eval_retrieval(q, 4, g, 3, 3, NULL, NULL, &m), CMCR_ESHAPE);
    assert_non_null(strstr(cmcr_last_error(), "4 queries and only 3 gallery rows"));
    assert_int_equal(cmcr_eval_retrieval(q, 2, g, 3, 3, NULL, gl, &m), CMCR_EINVAL);
    assert_int_equal(cmcr_eval_retrieval(q, 0, g, 3, 3, NULL, NULL, &m), CMCR_EINVAL);
    assert_int_equal(cmcr_eval_retrieval(q, 2, g, 3, 0, NULL, NULL, &m), CMCR_EINVAL);
    q[4] = NAN;
    assert_int_equal(cmcr_eval_retrieval(q, 2, g, 3, 3, NULL, NULL, &m), CMCR_EVALUE);
    assert_non_null(strstr(cmcr_last_error(), "retrieval: queries: row 1 contains NaN (column 1)"));
    free(g);
}

/* ------------------------------------------------------------------ naive reference */

static uint64_t rng_state;

static uint64_t next_u64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rand_int(int64_t lo, int64_t hi) { return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo + 1)); }

/* Small integers: every dot product is exact in float, whatever the summation order, so the
 * blocked and the naive computation see identical scores (and many ties). */
static float *random_ints(int64_t rows, int64_t dim, int range)
{
    float *x = malloc((size_t)(rows * dim) * sizeof(float));
    for (int64_t i = 0; i < rows * dim; i++) x[i] = (float)rand_int(-range, range);
    return x;
}

typedef struct scored {
    float s;
    int64_t idx;
} scored;

static int by_rank(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->idx < y->idx ? -1 : 1;
}

static int cmp_ll(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Full score row, full sort, walk down the ranking. Returns the queries evaluated. */
static void naive_retrieval(const float *q, int64_t nq, const float *g, int64_t ng, int64_t dim, const int64_t *ql,
                            const int64_t *gl, cmcr_retrieval_metrics *out)
{
    scored *row = malloc((size_t)ng * sizeof *row);
    int64_t *first = malloc((size_t)nq * sizeof *first), n = 0, hits[3] = {0};
    double rank_sum = 0, ap_sum = 0;
    for (int64_t i = 0; i < nq; i++) {
        for (int64_t h = 0; h < ng; h++) { /* the library's reference score: a double sum, rounded */
            double s = 0;
            for (int64_t k = 0; k < dim; k++) s += (double)q[i * dim + k] * g[h * dim + k];
            row[h] = (scored){(float)s, h};
        }
        qsort(row, (size_t)ng, sizeof *row, by_rank);
        int64_t found = 0, first_rank = 0;
        double sum = 0;
        for (int64_t r = 0; r < ng; r++) {
            int relevant = ql ? gl[row[r].idx] == ql[i] : row[r].idx == i;
            if (!relevant) continue;
            found++;
            if (found == 1) first_rank = r + 1;
            sum += (double)found / (double)(r + 1);
        }
        if (!found) continue;
        first[n++] = first_rank;
        hits[0] += first_rank <= 1;
        hits[1] += first_rank <= 5;
        hits[2] += first_rank <= 10;
        rank_sum += (double)first_rank;
        ap_sum += sum / (double)found;
    }
    qsort(first, (size_t)n, sizeof *first, cmp_ll);
    out->queries = n;
    for (int k = 0; k < 3; k++) out->recall[k] = (double)hits[k] / (double)n;
    out->median_rank = n % 2 ? (double)first[n / 2] : ((double)first[n / 2 - 1] + (double)first[n / 2]) / 2.0;
    out->mean_rank = rank_sum / (double)n;
    out->map = ap_sum / (double)n;
    free(row);
    free(first);
}

static void assert_same(const cmcr_retrieval_metrics *a, const cmcr_retrieval_metrics *b, const char *what)
{
    int same = a->queries == b->queries && a->median_rank == b->median_rank && a->mean_rank == b->mean_rank &&
               a->map == b->map;
    for (int k = 0; k < 3; k++) same = same && a->recall[k] == b->recall[k];
    if (!same)
        fail_msg("%s: got q=%lld R=%.17g/%.17g/%.17g med=%.17g mean=%.17g map=%.17g, naive q=%lld "
                 "R=%.17g/%.17g/%.17g med=%.17g mean=%.17g map=%.17g", what, (long long)a->queries, a->recall[0],
                 a->recall[1], a->recall[2], a->median_rank, a->mean_rank, a->map, (long long)b->queries,
                 b->recall[0], b->recall[1], b->recall[2], b->median_rank, b->mean_rank, b->map);
}

/* What bf16 did: pairs re-scored with the default blocks, and the fewest pairs scored in
 * bf16 over all block sizes (fewer than all: it fell back to float32 somewhere). */
typedef struct bf16_use {
    int64_t rescored, min_scored;
} bf16_use;

/* Against the naive reference, with the default blocks and others, in float32 and (oneDNN
 * builds) bf16. */
static bf16_use check_against_naive(const float *q, int64_t nq, const float *g, int64_t ng, int64_t dim,
                                    const int64_t *ql, const int64_t *gl)
{
    cmcr_retrieval_metrics want, got;
    naive_retrieval(q, nq, g, ng, dim, ql, gl, &want);
    assert_true(want.queries > 0);
    assert_int_equal(cmcr_eval_retrieval(q, nq, g, ng, dim, ql, gl, &got), CMCR_OK);
    assert_same(&got, &want, "default blocks");
    assert_int_equal(got.scored_bf16, 0);
    bf16_use use = {0, nq * ng};
    for (int bf16 = 0; bf16 <= cmcr_bf16_support(); bf16++) {
        cmcr_retrieval_params p = {.bf16 = bf16};
        assert_int_equal(cmcr_eval_retrieval_ex(q, nq, g, ng, dim, ql, gl, &p, &got), CMCR_OK);
        assert_same(&got, &want, bf16 ? "bf16, default blocks" : "default blocks");
        if (bf16) use.rescored = got.rescored;
        static const int64_t blocks[][3] = {{7, 13, 50}, {1, 4099, 1}, {64, 1000, 300}, {3000, 1, 100000}};
        for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
            assert_int_equal(eval_retrieval_blocked(q, nq, g, ng, dim, ql, gl, blocks[b][0], blocks[b][1],
                                                         blocks[b][2], &p, &got), CMCR_OK);
            char what[80];
            snprintf(what, sizeof what, "%sblocks %lld x %lld, budget %lld", bf16 ? "bf16, " : "",
                     (long long)blocks[b][0], (long long)blocks[b][1], (long long)blocks[b][2]);
            assert_same(&got, &want, what);
            assert_true(got.rescored <= nq * ng && got.scored_bf16 <= (bf16 ? nq * ng : 0));
            if (bf16 && got.scored_bf16 < use.min_scored) use.min_scored = got.scored_bf16;
        }
    }
    return use;
}

/* Rows with decoys, in multiples of 1/64 below 8 (9 significant bits: bf16, with 8, rounds
 * them; float32 holds every product and every sum of 16 exactly, in any order, so float32
 * paths and the naive reference agree exactly). Gallery row i + 3 + i % 50 is a decoy: row i
 * moved by at most 2/64 per coordinate, so its score for query i (row i moved by at most
 * 20/64) lies well within bf16's error bound of query i's own score, while float32 separates
 * them. bf16 must re-score such items and then rank exactly as float32 does. */
static float *with_decoys(int64_t ng, int64_t dim, float *q, int64_t nq)
{
    float *g = malloc((size_t)(ng * dim) * sizeof(float));
    for (int64_t i = 0; i < ng * dim; i++) g[i] = (float)rand_int(-480, 480) / 64;
    for (int64_t i = 0; i + 3 + i % 50 < ng && i < nq; i += 2) {
        float *d = g + (i + 3 + i % 50) * dim;
        for (int64_t k = 0; k < dim; k++) d[k] = g[i * dim + k] + (float)rand_int(-2, 2) / 64;
    }
    for (int64_t i = 0; i < nq * dim; i++) q[i] = g[i] + (float)rand_int(-20, 20) / 64;
    return g;
}

/* Float rows (not exact in any product) where every gallery row has an identical copy:
 * query i's own item ties its copy exactly, so the tie rule alone ranks it (first when the
 * copy has the higher index, second when the lower). Products in float32 (or bf16) round the
 * two equal scores differently; by row the library must re-score and apply the rule every
 * time. (By label it does not promise this: src/eval.c.) */
static void test_duplicates(void **state)
{
    (void)state;
    rng_state = 0x0ddba11cafef00dULL;
    int64_t half = 64, ng = 2 * half, nq = ng, dim = 512;
    float *g = malloc((size_t)(ng * dim) * sizeof(float)), *q = malloc((size_t)(nq * dim) * sizeof(float));
    for (int64_t i = 0; i < half * dim; i++) g[i] = (float)rand_int(-1000000, 1000000) * 1e-6f;
    cmcr_normalize_rows(g, half, dim);
    memcpy(g + half * dim, g, (size_t)(half * dim) * sizeof(float));
    for (int64_t i = 0; i < nq * dim; i++) q[i] = g[i] + (float)rand_int(-1000, 1000) * 1e-5f;
    cmcr_normalize_rows(q, nq, dim);
    for (int bf16 = 0; bf16 <= cmcr_bf16_support(); bf16++) {
        cmcr_retrieval_params p = {.bf16 = bf16};
        cmcr_retrieval_metrics m;
        assert_int_equal(cmcr_eval_retrieval_ex(q, nq, g, ng, dim, NULL, NULL, &p, &m), CMCR_OK);
        expect_metrics(&m, nq, 0.5, 1, 1, 1.5, 1.5, 0.75); /* ranks 1 (first half), 2 (second half) */
        assert_true(m.rescored >= half);
    }
    (void)check_against_naive(q, nq, g, ng, dim, NULL, NULL);
    free(q);
    free(g);
}

static void test_bf16_near_ties(void **state)
{
    (void)state;
    if (!cmcr_bf16_support()) {
        cmcr_retrieval_params p = {.bf16 = 1};
        cmcr_retrieval_metrics m;
        float q[2] = {1, 0};
        assert_int_equal(cmcr_eval_retrieval_ex(q, 1, q, 1, 2, NULL, NULL, &p, &m), CMCR_EINVAL);
        assert_non_null(strstr(cmcr_last_error(), "oneDNN"));
        skip();
    }
    rng_state = 0x51ed2701f3a5c0deULL;
    int64_t nq = 700, ng = 2500, dim = 16;
    float *q = malloc((size_t)(nq * dim) * sizeof(float)), *g = with_decoys(ng, dim, q, nq);
    bf16_use use = check_against_naive(q, nq, g, ng, dim, NULL, NULL);
    printf("by row: bf16 re-scored %lld of %lld pairs\n", (long long)use.rescored, (long long)(nq * ng));
    assert_true(use.rescored >= nq / 2); /* at least the decoys */
    int64_t *ql = malloc((size_t)nq * sizeof *ql), *gl = malloc((size_t)ng * sizeof *gl);
    for (int64_t h = 0; h < ng; h++) gl[h] = h % 7;
    for (int64_t i = 0; i < nq; i++) ql[i] = i % 7;
    use = check_against_naive(q, nq, g, ng, dim, ql, gl);
    printf("by label: bf16 re-scored %lld of %lld pairs; with some blocks only %lld in bf16 (the rest in float32)\n",
           (long long)use.rescored, (long long)(nq * ng), (long long)use.min_scored);
    assert_true(use.rescored > 0);
    assert_true(use.min_scored < nq * ng); /* the fallback to float32 ran */
    free(q);
    free(g);
    free(ql);
    free(gl);
}

static void test_random_by_row(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ULL;
    /* Not multiples of the default blocks (1024 queries x 2048 gallery rows). */
    int64_t nq = 1500, ng = 5003;
    for (int pass = 0; pass < 2; pass++) {
        int64_t dim = pass ? 24 : 6; /* many ties, then few */
        float *q = random_ints(nq, dim, pass ? 3 : 2), *g = random_ints(ng, dim, pass ? 3 : 2);
        (void)check_against_naive(q, nq, g, ng, dim, NULL, NULL);
        free(q);
        free(g);
    }
}

static void test_random_by_label(void **state)
{
    (void)state;
    rng_state = 0x2545f4914f6cdd1dULL;
    int64_t nq = 1300, ng = 4099, dim = 8;
    float *q = random_ints(nq, dim, 2), *g = random_ints(ng, dim, 2);
    int64_t *ql = malloc((size_t)nq * sizeof *ql), *gl = malloc((size_t)ng * sizeof *gl);
    /* Uneven labels: label 0 holds about 30% of the gallery (more than the smaller budgets),
     * labels 25..29 occur only among the queries (skipped), some labels are negative. */
    for (int64_t h = 0; h < ng; h++) gl[h] = rand_int(0, 9) < 3 ? 0 : rand_int(-3, 24);
    for (int64_t i = 0; i < nq; i++) ql[i] = rand_int(-3, 29);
    (void)check_against_naive(q, nq, g, ng, dim, ql, gl);
    free(q);
    free(g);
    free(ql);
    free(gl);
}

/* ------------------------------------------------------------------ zero-shot */

static void test_zeroshot_hand(void **state)
{
    (void)state;
    float *c = identity(3);
    /* x0 label 0 rank 1; x1 label 1 ties class 0 (lower index first): rank 2; x2 label 0 rank 1;
     * x3 label 0 rank 3. Class 2 has no inputs. */
    float x[4 * 3] = {0.9f, 0.1f, 0.2f, 0.5f, 0.5f, 0.1f, 0.3f, 0.2f, 0.1f, 0.1f, 0.2f, 0.3f};
    int64_t y[4] = {0, 1, 0, 0};
    double per[3];
    cmcr_zeroshot_metrics m;
    assert_int_equal(cmcr_eval_zeroshot(x, 4, c, 3, 3, y, &m, per), CMCR_OK);
    assert_int_equal(m.inputs, 4);
    assert_float_equal(m.top1, 0.5, EPS);
    assert_float_equal(m.top5, 1.0, EPS); /* fewer than 5 classes: top-5 is all of them */
    assert_float_equal(per[0], 2.0 / 3, EPS);
    assert_float_equal(per[1], 0.0, EPS);
    assert_true(isnan(per[2]));
    assert_int_equal(cmcr_eval_zeroshot(x, 4, c, 3, 3, y, &m, NULL), CMCR_OK);
    free(c);
}

static void test_zeroshot_top5(void **state)
{
    (void)state;
    float *c = identity(6);
    float x[3 * 6] = {0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f,
                      0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f};
    int64_t y[3] = {4, 5, 0}; /* ranks 5, 6, 1 */
    cmcr_zeroshot_metrics m;
    assert_int_equal(cmcr_eval_zeroshot(x, 3, c, 6, 6, y, &m, NULL), CMCR_OK);
    assert_float_equal(m.top1, 1.0 / 3, EPS);
    assert_float_equal(m.top5, 2.0 / 3, EPS);
    free(c);
}

static void test_zeroshot_bad_label(void **state)
{
    (void)state;
    float *c = identity(3);
    float x[3 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    int64_t y[3] = {0, 3, -1};
    cmcr_zeroshot_metrics m;
    assert_int_equal(cmcr_eval_zeroshot(x, 3, c, 3, 3, y, &m, NULL), CMCR_EINVAL);
    assert_non_null(strstr(cmcr_last_error(), "label 3 of input 1"));
    y[1] = 2;
    assert_int_equal(cmcr_eval_zeroshot(x, 3, c, 3, 3, y, &m, NULL), CMCR_EINVAL);
    assert_non_null(strstr(cmcr_last_error(), "label -1 of input 2"));
    free(c);
}

/* ------------------------------------------------------------------ label files */

/* A .npy v1.0 file with the given descr and shape text, header padded to 64 bytes. */
static char *write_npy(const char *name, const char *descr, const char *shape, const void *data, size_t n)
{
    char header[256], *path = tu_path(name);
    int len = snprintf(header + 10, sizeof header - 10, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       descr, shape);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    memset(header + 10 + len, ' ', (size_t)pad);
    header[10 + len + pad] = '\n';
    int hlen = len + pad + 1;
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    header[8] = (char)(hlen & 0xff);
    header[9] = (char)(hlen >> 8);
    unsigned char *buf = malloc((size_t)(10 + hlen) + n);
    memcpy(buf, header, (size_t)(10 + hlen));
    memcpy(buf + 10 + hlen, data, n);
    tu_write_file(path, buf, (size_t)(10 + hlen) + n);
    free(buf);
    return path;
}

static void test_labels_load(void **state)
{
    (void)state;
    int32_t a[4] = {3, -1, 0, 7};
    int64_t b[3] = {5, 6, (int64_t)1 << 40}, *l, n;
    float f[2] = {1, 2};
    char *p1 = write_npy("l32.npy", "<i4", "(4,)", a, sizeof a);
    assert_int_equal(cmcr_labels_load(p1, &l, &n), CMCR_OK);
    assert_int_equal(n, 4);
    assert_int_equal(l[1], -1);
    assert_int_equal(l[3], 7);
    free(l);
    char *p2 = write_npy("l64.npy", "<i8", "(3, 1)", b, sizeof b);
    assert_int_equal(cmcr_labels_load(p2, &l, &n), CMCR_OK);
    assert_int_equal(n, 3);
    assert_true(l[2] == (int64_t)1 << 40);
    free(l);
    char *p3 = write_npy("lf.npy", "<f4", "(2,)", f, sizeof f);
    assert_int_equal(cmcr_labels_load(p3, &l, &n), CMCR_EUNSUPPORTED);
    assert_non_null(strstr(cmcr_last_error(), "integers"));
    assert_null(l);
    char *p4 = write_npy("l2.npy", "<i4", "(2, 2)", a, sizeof a);
    assert_int_equal(cmcr_labels_load(p4, &l, &n), CMCR_ESHAPE);
    free(p1);
    free(p2);
    free(p3);
    free(p4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_by_row),
        cmocka_unit_test(test_ties_by_index),
        cmocka_unit_test(test_labels_hand),
        cmocka_unit_test(test_ap_ranks_1_and_3),
        cmocka_unit_test(test_k_beyond_gallery),
        cmocka_unit_test(test_skip_queries_without_relevant),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_random_by_row),
        cmocka_unit_test(test_random_by_label),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_bf16_near_ties),
        cmocka_unit_test(test_zeroshot_hand),
        cmocka_unit_test(test_zeroshot_top5),
        cmocka_unit_test(test_zeroshot_bad_label),
        cmocka_unit_test(test_labels_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
