/* test_aggregate.c - semantic consistency (memory aggregation): the blocked online-softmax
 * kernel against a naive double-precision evaluation, top-k, extreme temperatures, input
 * checks, progress/cancel, the on-disk cache, and the content hash. */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tolerance against the float64 reference. The kernel computes scores with float32 GEMMs:
 * for unit vectors a dot product is off by at most a few units of float32 roundoff
 * (u = 6e-8) times sqrt(dim), i.e. ~1e-7..1e-6 here; divided by tau = 0.01 that moves the
 * logits by ~1e-5..1e-4, which changes the softmax weights by the same relative amount,
 * but the output moves only by (weight error) x (spread of the rows around the output),
 * and the accumulation of P x M in float32 adds ~u per term. Measured errors are 1e-8 to
 * 3e-6; 2e-5 leaves headroom without hiding a real bug (a wrong rescale or an off-by-one
 * block is visible at 1e-2 and above). For tau = 1e-4 the logit error is 100x larger,
 * hence the looser bound there. */
#define TOL 2e-5
#define TOL_EXTREME 1e-3

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state;

static double uniform(void) /* xorshift64*, in [-1, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static float *random_matrix(int64_t rows, int64_t cols, uint64_t seed)
{
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
    float *x = malloc((size_t)(rows * cols) * sizeof(float));
    assert_non_null(x);
    for (int64_t i = 0; i < rows * cols; i++) x[i] = (float)uniform();
    return x;
}

static const double *sort_scores; /* context of the qsort comparator below */

static int by_score_desc(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (sort_scores[i] != sort_scores[j]) return sort_scores[i] > sort_scores[j] ? -1 : 1;
    return i < j ? -1 : (i > j);
}

static void normalize_d(const float *x, int64_t dim, double *out)
{
    double ss = 0;
    for (int64_t c = 0; c < dim; c++) ss += (double)x[c] * x[c];
    double n = fmax(sqrt(ss), 1e-12);
    for (int64_t c = 0; c < dim; c++) out[c] = x[c] / n;
}

/* Reference for one query: out = normalize(sum softmax(q.m/tau) m) in double, over the k
 * best rows when 0 < k < nm. Written independently of the library. */
static void naive_row(const float *q, const float *m, int64_t nm, int64_t dim, double tau, int64_t k,
                      double *out)
{
    double *qn = malloc((size_t)dim * sizeof(double)), *mn = malloc((size_t)dim * sizeof(double));
    double *s = malloc((size_t)nm * sizeof(double)), *acc = calloc((size_t)dim, sizeof(double));
    int64_t *idx = malloc((size_t)nm * sizeof(int64_t));
    normalize_d(q, dim, qn);
    for (int64_t r = 0; r < nm; r++) {
        normalize_d(m + r * dim, dim, mn);
        double d = 0;
        for (int64_t c = 0; c < dim; c++) d += qn[c] * mn[c];
        s[r] = d / tau;
        idx[r] = r;
    }
    int64_t n = nm;
    if (k > 0 && k < nm) {
        sort_scores = s;
        qsort(idx, (size_t)nm, sizeof *idx, by_score_desc);
        n = k;
    }
    double mx = -INFINITY, sum = 0, ss = 0;
    for (int64_t e = 0; e < n; e++) mx = fmax(mx, s[idx[e]]);
    for (int64_t e = 0; e < n; e++) sum += exp(s[idx[e]] - mx);
    for (int64_t e = 0; e < n; e++) {
        normalize_d(m + idx[e] * dim, dim, mn);
        double w = exp(s[idx[e]] - mx) / sum;
        for (int64_t c = 0; c < dim; c++) acc[c] += w * mn[c];
    }
    for (int64_t c = 0; c < dim; c++) ss += acc[c] * acc[c];
    for (int64_t c = 0; c < dim; c++) out[c] = acc[c] / fmax(sqrt(ss), 1e-12);
    free(qn);
    free(mn);
    free(s);
    free(acc);
    free(idx);
}

/* Max |got - naive| over the given query rows (all when rows is NULL). */
static double max_err_rows(const float *q, int64_t nq, const float *m, int64_t nm, int64_t dim, double tau,
                           int64_t k, const float *got, const int64_t *rows, int64_t nrows)
{
    double *ref = malloc((size_t)dim * sizeof(double)), err = 0;
    int64_t n = rows ? nrows : nq;
    for (int64_t t = 0; t < n; t++) {
        int64_t i = rows ? rows[t] : t;
        naive_row(q + i * dim, m, nm, dim, tau, k, ref);
        for (int64_t c = 0; c < dim; c++) {
            assert_true(isfinite(got[i * dim + c]));
            err = fmax(err, fabs(got[i * dim + c] - ref[c]));
        }
    }
    free(ref);
    return err;
}

static cmcr_aggregate_params params(double tau, int64_t k, int64_t qb, int64_t mb)
{
    cmcr_aggregate_params p = cmcr_aggregate_default_params();
    p.tau_mem = tau;
    p.top_k = k;
    p.query_block = qb;
    p.memory_block = mb;
    return p;
}

typedef struct agg_case {
    int64_t nq, nm, dim;
    double tau;
    int64_t k, qb, mb;
} agg_case;

static double run_case(agg_case c, uint64_t seed)
{
    float *q = random_matrix(c.nq, c.dim, seed), *m = random_matrix(c.nm, c.dim, seed + 1000);
    float *out = malloc((size_t)(c.nq * c.dim) * sizeof(float));
    cmcr_aggregate_params p = params(c.tau, c.k, c.qb, c.mb);
    assert_int_equal(cmcr_aggregate(q, c.nq, m, c.nm, c.dim, &p, out), CMCR_OK);
    double err = max_err_rows(q, c.nq, m, c.nm, c.dim, c.tau, c.k, out, NULL, 0);
    printf("  nq=%-4lld nm=%-4lld dim=%-3lld tau=%-5g top_k=%-4lld blocks %lldx%-4lld max abs error %.3g\n",
           (long long)c.nq, (long long)c.nm, (long long)c.dim, c.tau, (long long)c.k, (long long)c.qb,
           (long long)c.mb, err);
    free(q);
    free(m);
    free(out);
    return err;
}

/* ------------------------------------------------------------------ tests */

static void test_matches_naive(void **state)
{
    (void)state;
    const agg_case cases[] = {
        {1, 1, 1, 0.01, 0, 1024, 4096},
        {7, 13, 3, 0.01, 0, 4, 5},       /* dim 3, blocks that do not divide nq or nm */
        {7, 13, 3, 1.0, 0, 4, 5},
        {37, 101, 16, 0.01, 0, 8, 32},
        {37, 101, 16, 1.0, 0, 8, 32},
        {50, 200, 32, 0.01, 0, 1, 1},    /* blocks of 1 */
        {50, 200, 32, 0.01, 0, 1, 7},
        {65, 300, 64, 0.01, 0, 16, 64},
        {65, 300, 64, 0.01, 0, 1024, 4096}, /* one block each */
        {33, 129, 8, 0.01, 1, 16, 64},   /* top-k */
        {33, 129, 8, 0.01, 5, 16, 64},
        {33, 129, 8, 1.0, 5, 5, 3},
        {33, 129, 8, 0.01, 5, 1, 1},
        {33, 129, 8, 0.01, 128, 7, 10},  /* k = nm - 1 */
        {33, 129, 8, 0.01, 129, 16, 64}, /* k = nm: the full softmax */
        {33, 129, 8, 0.01, 500, 16, 64}, /* k > nm */
        {5, 1, 4, 0.01, 0, 2, 2},        /* a single memory row */
        {5, 1, 4, 0.01, 3, 2, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) assert_true(run_case(cases[i], 10 + i) < TOL);
}

static void test_zero_rows(void **state)
{
    (void)state;
    int64_t nq = 4, nm = 9, dim = 5;
    float *q = random_matrix(nq, dim, 3), *m = random_matrix(nm, dim, 4), out[4 * 5];
    memset(q + 2 * dim, 0, (size_t)dim * sizeof(float)); /* a zero query: uniform weights */
    memset(m + 5 * dim, 0, (size_t)dim * sizeof(float)); /* a zero memory row: score 0, adds nothing */
    cmcr_aggregate_params p = params(0.5, 0, 3, 4);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
    double err = max_err_rows(q, nq, m, nm, dim, 0.5, 0, out, NULL, 0);
    printf("  zero rows: max abs error %.3g\n", err);
    assert_true(err < TOL);
    free(q);
    free(m);
}

static void test_block_invariance_and_determinism(void **state)
{
    (void)state;
    int64_t nq = 97, nm = 1031, dim = 24;
    float *q = random_matrix(nq, dim, 21), *m = random_matrix(nm, dim, 22);
    float *ref = malloc((size_t)(nq * dim) * sizeof(float)), *out = malloc((size_t)(nq * dim) * sizeof(float));
    cmcr_aggregate_params p = params(0.01, 0, 1024, 4096);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, ref), CMCR_OK);
    const int64_t blocks[][2] = {{1, 1}, {1, 1031}, {97, 1}, {10, 100}, {32, 512}, {96, 1030}, {5000, 5000}};
    for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
        p = params(0.01, 0, blocks[b][0], blocks[b][1]);
        assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
        double d = 0;
        for (int64_t i = 0; i < nq * dim; i++) d = fmax(d, fabs(out[i] - ref[i]));
        printf("  blocks %lldx%lld vs default: max abs difference %.3g\n", (long long)blocks[b][0],
               (long long)blocks[b][1], d);
        /* Only the float32 summation order differs; each result is within a few 1e-6 of the
         * exact one (see TOL), so two orders may differ by twice that (3e-6 measured with
         * OpenBLAS's Prescott kernels, 1e-7 with the AVX-512 ones). */
        assert_true(d < 1e-5);
    }
    p = params(0.01, 0, 10, 100); /* the same call twice gives the same bits */
    float *again = malloc((size_t)(nq * dim) * sizeof(float));
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, again), CMCR_OK);
    assert_memory_equal(out, again, (size_t)(nq * dim) * sizeof(float));
    p = params(0.01, 7, 10, 100);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, again), CMCR_OK);
    assert_memory_equal(out, again, (size_t)(nq * dim) * sizeof(float));
    /* in place: out may be the queries themselves */
    p = params(0.01, 0, 10, 100);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, q), CMCR_OK);
    assert_memory_equal(out, q, (size_t)(nq * dim) * sizeof(float));
    free(q);
    free(m);
    free(ref);
    free(out);
    free(again);
}

static void test_top1_is_argmax_row(void **state)
{
    (void)state;
    int64_t nq = 40, nm = 300, dim = 12;
    float *q = random_matrix(nq, dim, 31), *m = random_matrix(nm, dim, 32);
    float *out = malloc((size_t)(nq * dim) * sizeof(float));
    double *qn = malloc((size_t)dim * sizeof(double)), *mn = malloc((size_t)dim * sizeof(double));
    cmcr_aggregate_params p = params(0.01, 1, 16, 50);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
    for (int64_t i = 0; i < nq; i++) {
        normalize_d(q + i * dim, dim, qn);
        int64_t best = -1;
        double best_s = -INFINITY;
        for (int64_t r = 0; r < nm; r++) {
            normalize_d(m + r * dim, dim, mn);
            double d = 0;
            for (int64_t c = 0; c < dim; c++) d += qn[c] * mn[c];
            if (d > best_s) {
                best_s = d;
                best = r;
            }
        }
        normalize_d(m + best * dim, dim, mn);
        for (int64_t c = 0; c < dim; c++) assert_true(out[i * dim + c] == (float)mn[c]);
    }
    free(q);
    free(m);
    free(out);
    free(qn);
    free(mn);
}

/* tau = 1e-4: scores reach 1e4 and exp(1e4) overflows any float; the online softmax only
 * ever takes exp of (score - running max) <= 0. Rows are made near-duplicates so that the
 * softmax really mixes several rows at this temperature. */
static void test_extreme_temperature(void **state)
{
    (void)state;
    int64_t nq = 30, nm = 400, dim = 16;
    float *q = random_matrix(nq, dim, 41), *m = random_matrix(nm, dim, 42);
    for (int64_t r = 0; r < nm; r++)
        for (int64_t c = 0; c < dim; c++) m[r * dim + c] = m[(r % 20) * dim + c] + 1e-4f * m[r * dim + c];
    float *out = malloc((size_t)(nq * dim) * sizeof(float));
    for (int k = 0; k <= 5; k += 5) {
        cmcr_aggregate_params p = params(1e-4, k, 8, 64);
        assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
        double err = max_err_rows(q, nq, m, nm, dim, 1e-4, k, out, NULL, 0);
        printf("  tau=1e-4 top_k=%d: max abs error %.3g\n", k, err);
        assert_true(err < TOL_EXTREME);
    }
    free(q);
    free(m);
    free(out);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    int64_t nq = 6, nm = 30, dim = 4;
    float *q = random_matrix(nq, dim, 51), *m = random_matrix(nm, dim, 52), out[6 * 4];
    cmcr_aggregate_params p = params(0.01, 0, 4, 8);
    m[17 * dim + 2] = NAN;
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_EVALUE);
    printf("  %s\n", cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), "aggregate: memory: row 17 contains NaN (column 2)"));
    m[17 * dim + 2] = 0;
    q[3 * dim] = INFINITY;
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_EVALUE);
    assert_non_null(strstr(cmcr_last_error(), "aggregate: queries: row 3 contains Inf (column 0)"));
    q[3 * dim] = 0;
    int hit = 5;
    char *cache = tu_path("nan-cache");
    assert_int_equal(cmcr_aggregate_cached(cache, q, nq, m, nm, dim, &p, out, &hit), CMCR_OK);
    m[29 * dim] = -INFINITY;
    assert_int_equal(cmcr_aggregate_cached(cache, q, nq, m, nm, dim, &p, out, &hit), CMCR_EVALUE);
    free(cache);
    assert_non_null(strstr(cmcr_last_error(), "memory: row 29 contains -Inf"));
    m[29 * dim] = 0;

    const double bad_tau[] = {0, -1, NAN, INFINITY, 1e-300};
    for (size_t i = 0; i < sizeof bad_tau / sizeof *bad_tau; i++) {
        p = params(bad_tau[i], 0, 4, 8);
        assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_EINVAL);
    }
    p = params(0.01, -1, 4, 8);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_EINVAL);
    p = params(0.01, 0, 0, 8);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_EINVAL);
    p = params(0.01, 0, 4, 0);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_EINVAL);
    p = params(0.01, 0, 4, 8);
    assert_int_equal(cmcr_aggregate(q, 0, m, nm, dim, &p, out), CMCR_EINVAL);
    assert_int_equal(cmcr_aggregate(q, nq, m, 0, dim, &p, out), CMCR_EINVAL);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, 0, &p, out), CMCR_EINVAL);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, -3, &p, out), CMCR_EINVAL);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, m), CMCR_EINVAL); /* out overlaps memory */
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, NULL, out), CMCR_OK); /* NULL params: defaults */
    free(q);
    free(m);
}

typedef struct progress_log {
    int calls, stop_at;
    int64_t last_done, total;
    int monotone;
} progress_log;

static int record_progress(int64_t done, int64_t total, void *user)
{
    progress_log *l = user;
    if (done < l->last_done) l->monotone = 0;
    l->last_done = done;
    l->total = total;
    l->calls++;
    return l->stop_at > 0 && l->calls >= l->stop_at;
}

static void test_progress_and_cancel(void **state)
{
    (void)state;
    int64_t nq = 300, nm = 20000, dim = 8; /* 6e6 pairs: total = 6 units */
    float *q = random_matrix(nq, dim, 61), *m = random_matrix(nm, dim, 62);
    float *out = malloc((size_t)(nq * dim) * sizeof(float));
    for (int k = 0; k <= 3; k += 3) {
        progress_log l = {0, 0, 0, 0, 1};
        cmcr_aggregate_params p = params(0.01, k, 100, 1000);
        p.progress = record_progress;
        p.progress_user = &l;
        assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
        assert_int_equal(l.calls, 3 * 20); /* after each memory block of each query block */
        assert_int_equal(l.total, 6);
        assert_int_equal(l.last_done, 6);
        assert_true(l.monotone);

        progress_log c = {0, 5, 0, 0, 1};
        p.progress_user = &c;
        assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_EINTERRUPTED);
        assert_int_equal(c.calls, 5); /* stops right away */
        printf("  cancel: %s\n", cmcr_last_error());
        assert_non_null(strstr(cmcr_last_error(), "stopped"));
    }
    free(q);
    free(m);
    free(out);
}

/* ------------------------------------------------------------------ cache */

static char last_warning[2048];
static char last_info[2048];

static void capture_log(cmcr_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level == CMCR_LOG_WARN) snprintf(last_warning, sizeof last_warning, "%s", msg);
    if (level == CMCR_LOG_INFO) snprintf(last_info, sizeof last_info, "%s", msg);
}

/* The single agg-*.npy file in dir (malloc'd); fails the test if there is not exactly one. */
static char *only_cache_file(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *found = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "agg-", 4) != 0) continue;
        assert_int_equal(strlen(e->d_name), strlen("agg-0123456789abcdef.npy"));
        free(found);
        found = malloc(strlen(dir) + strlen(e->d_name) + 2);
        sprintf(found, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 1);
    return found;
}

static void test_cache(void **state)
{
    (void)state;
    int64_t nq = 50, nm = 700, dim = 16;
    size_t bytes = (size_t)(nq * dim) * sizeof(float);
    float *q = random_matrix(nq, dim, 71), *m = random_matrix(nm, dim, 72);
    float *a = malloc(bytes), *b = malloc(bytes), *direct = malloc(bytes);
    char *dir = tu_path("cache/nested/dir"); /* created with its parents */
    cmcr_aggregate_params p = params(0.01, 0, 16, 128);
    int hit = -1;
    cmcr_set_log(capture_log, NULL);

    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, direct), CMCR_OK);
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p, a, &hit), CMCR_OK);
    assert_int_equal(hit, 0);
    assert_memory_equal(a, direct, bytes);
    assert_non_null(strstr(last_info, "cache miss"));
    char *file = only_cache_file(dir);
    assert_non_null(strstr(last_info, file));
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p, b, &hit), CMCR_OK);
    assert_int_equal(hit, 1);
    assert_non_null(strstr(last_info, "cache hit"));
    assert_memory_equal(a, b, bytes);

    /* Block sizes do not change the result's meaning: still a hit. */
    cmcr_aggregate_params p2 = params(0.01, 0, 7, 33);
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p2, b, &hit), CMCR_OK);
    assert_int_equal(hit, 1);

    /* Another temperature, another top_k, or one changed memory value: misses. */
    p2 = params(0.02, 0, 16, 128);
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p2, b, &hit), CMCR_OK);
    assert_int_equal(hit, 0);
    p2 = params(0.01, 3, 16, 128);
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p2, b, &hit), CMCR_OK);
    assert_int_equal(hit, 0);
    m[123] += 1e-3f;
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p, b, &hit), CMCR_OK);
    assert_int_equal(hit, 0);
    assert_memory_not_equal(a, b, bytes);
    m[123] -= 1e-3f;
    q[5] = -q[5];
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p, b, &hit), CMCR_OK);
    assert_int_equal(hit, 0);
    q[5] = -q[5];

    /* A truncated cache file: warned about, recomputed, rewritten. */
    tu_write_file(file, "\x93NUMPY\x01", 7);
    last_warning[0] = '\0';
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p, b, &hit), CMCR_OK);
    assert_int_equal(hit, 0);
    assert_memory_equal(a, b, bytes);
    printf("  warning: %s\n", last_warning);
    assert_non_null(strstr(last_warning, "ignoring"));
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p, b, &hit), CMCR_OK);
    assert_int_equal(hit, 1);

    /* A well-formed file of the wrong shape, then one with garbage rows. */
    assert_int_equal(cmcr_matrix_save_npy(file, a, nq - 1, dim), CMCR_OK);
    last_warning[0] = '\0';
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p, b, &hit), CMCR_OK);
    assert_int_equal(hit, 0);
    printf("  warning: %s\n", last_warning);
    assert_non_null(strstr(last_warning, "expected 50 x 16"));
    assert_memory_equal(a, b, bytes);
    float *junk = malloc(bytes);
    for (int64_t i = 0; i < nq * dim; i++) junk[i] = 0.5f;
    assert_int_equal(cmcr_matrix_save_npy(file, junk, nq, dim), CMCR_OK);
    last_warning[0] = '\0';
    assert_int_equal(cmcr_aggregate_cached(dir, q, nq, m, nm, dim, &p, b, &hit), CMCR_OK);
    assert_int_equal(hit, 0);
    printf("  warning: %s\n", last_warning);
    assert_non_null(strstr(last_warning, "not unit vectors"));
    assert_memory_equal(a, b, bytes);

    /* No cache directory: plain computation. A cache path that is a file: an error. */
    assert_int_equal(cmcr_aggregate_cached(NULL, q, nq, m, nm, dim, &p, b, &hit), CMCR_OK);
    assert_int_equal(hit, 0);
    assert_int_equal(cmcr_aggregate_cached(file, q, nq, m, nm, dim, &p, b, &hit), CMCR_EIO);

    cmcr_set_log(NULL, NULL);
    free(junk);
    free(file);
    free(dir);
    free(q);
    free(m);
    free(a);
    free(b);
    free(direct);
}

/* ------------------------------------------------------------------ large */

static void test_large(void **state)
{
    (void)state;
    int64_t nq = 2048, nm = 65536, dim = 64;
    float *q = random_matrix(nq, dim, 81), *m = random_matrix(nm, dim, 82);
    float *out = malloc((size_t)(nq * dim) * sizeof(float));
    cmcr_aggregate_params p = cmcr_aggregate_default_params();
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
    int64_t rows[16];
    for (int i = 0; i < 16; i++) rows[i] = (int64_t)i * 131 + (i == 15 ? 82 : 0); /* up to row 2047 */
    double err = max_err_rows(q, nq, m, nm, dim, 0.01, 0, out, rows, 16);
    printf("  nq=2048 nm=65536 dim=64: max abs error over 16 rows %.3g\n", err);
    assert_true(err < TOL);
    p.top_k = 10;
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, out), CMCR_OK);
    err = max_err_rows(q, nq, m, nm, dim, 0.01, 10, out, rows, 16);
    printf("  the same with top_k=10: max abs error over 16 rows %.3g\n", err);
    assert_true(err < TOL);
    free(q);
    free(m);
    free(out);
}

/* ------------------------------------------------------------------ command line */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_cli(void **state)
{
    (void)state;
    if (!getenv("CMCR_BIN")) {
        printf("  skipped: CMCR_BIN is not set (ctest sets it)\n");
        skip();
    }
    int64_t nq = 20, nm = 300, dim = 8;
    float *q = random_matrix(nq, dim, 91), *m = random_matrix(nm, dim, 92), *m6 = random_matrix(nm, 6, 93);
    float *want = malloc((size_t)(nq * dim) * sizeof(float));
    char *qp = tu_path("cli-q.npy"), *mp = tu_path("cli-m.npy"), *m6p = tu_path("cli-m6.npy");
    char *xp = tu_path("cli-x.npy"), *err = tu_path("cli-err.txt"), *cache = tu_path("cli-cache");
    assert_int_equal(cmcr_matrix_save_npy(qp, q, nq, dim), CMCR_OK);
    assert_int_equal(cmcr_matrix_save_npy(mp, m, nm, dim), CMCR_OK);
    assert_int_equal(cmcr_matrix_save_npy(m6p, m6, nm, 6), CMCR_OK);
    cmcr_aggregate_params p = params(0.05, 4, 1024, 4096);
    assert_int_equal(cmcr_aggregate(q, nq, m, nm, dim, &p, want), CMCR_OK);

    for (int run = 0; run < 2; run++) { /* the second run comes from the cache */
        assert_int_equal(tu_system("%s aggregate --queries %s --memory %s --out %s --tau-mem 0.05 --top-k 4 "
                                   "--query-block 7 --memory-block 50 --cache-dir %s 2>%s", tu_bin(), qp, mp, xp,
                                   cache, err), 0);
        cmcr_matrix x;
        assert_int_equal(cmcr_matrix_load(xp, &x), CMCR_OK);
        assert_int_equal(x.rows, nq);
        assert_int_equal(x.cols, dim);
        double d = 0;
        for (int64_t i = 0; i < nq * dim; i++) d = fmax(d, fabs(x.data[i] - want[i]));
        assert_true(d < 1e-6);
        cmcr_matrix_free(&x);
        char *text = read_text(err);
        assert_non_null(strstr(text, run ? "cache hit" : "cache miss"));
        free(text);
    }
    /* Width mismatch: one line naming both files, exit 1. */
    assert_int_equal(tu_system("%s aggregate --queries %s --memory %s --out %s 2>%s", tu_bin(), qp, m6p, xp, err), 1);
    char *text = read_text(err);
    printf("  %s", text);
    assert_non_null(strstr(text, qp));
    assert_non_null(strstr(text, m6p));
    assert_non_null(strstr(text, "width"));
    free(text);
    /* Usage errors exit 2; --help lists every flag. */
    assert_int_equal(tu_system("%s aggregate --queries %s --memory %s --out %s --tau-mem 0 2>/dev/null", tu_bin(),
                               qp, mp, xp), 2);
    assert_int_equal(tu_system("%s aggregate --queries %s --memory %s --out %s --top-k -1 2>/dev/null", tu_bin(),
                               qp, mp, xp), 2);
    assert_int_equal(tu_system("%s aggregate --queries %s --out %s 2>/dev/null", tu_bin(), qp, xp), 2);
    assert_int_equal(tu_system("%s aggregate --help >%s", tu_bin(), err), 0);
    text = read_text(err);
    const char *flags[] = {"--queries", "--memory", "--out", "--tau-mem", "--top-k", "--query-block", "--memory-block",
                           "--cache-dir", "0.01", "1024", "4096"};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) assert_non_null(strstr(text, flags[i]));
    free(text);
    free(q);
    free(m);
    free(m6);
    free(want);
    free(qp);
    free(mp);
    free(m6p);
    free(xp);
    free(err);
    free(cache);
}

/* ------------------------------------------------------------------ hash */

static void test_hash(void **state)
{
    (void)state;
    unsigned char buf[200];
    for (int i = 0; i < 200; i++) buf[i] = (unsigned char)(i * 37 + 11);
    uint64_t h = cmcr_hash_bytes(buf, sizeof buf, 0);
    assert_true(h == cmcr_hash_bytes(buf, sizeof buf, 0));
    assert_true(h != cmcr_hash_bytes(buf, sizeof buf, 1));
    /* Every length and every single-bit flip gives a different value. */
    uint64_t seen[201];
    for (size_t n = 0; n <= 200; n++) {
        seen[n] = cmcr_hash_bytes(buf, n, 7);
        for (size_t j = 0; j < n; j++) assert_true(seen[n] != seen[j]);
    }
    for (int bit = 0; bit < 200 * 8; bit++) {
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_true(cmcr_hash_bytes(buf, sizeof buf, 0) != h);
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    /* Trailing zeros count (the length is mixed in); alignment does not matter. */
    unsigned char zeros[16] = {0};
    assert_true(cmcr_hash_bytes(zeros, 7, 0) != cmcr_hash_bytes(zeros, 8, 0));
    unsigned char shifted[201];
    memcpy(shifted + 1, buf, 200);
    assert_true(cmcr_hash_bytes(shifted + 1, 200, 0) == h);
}

/* bfloat16 products (oneDNN builds): close to float32 (the scores carry bf16 rounding), but
 * not equal (the bf16 path really ran), for the full softmax with blocks that do not divide
 * the sizes; top-k stays float32; without oneDNN, a clear refusal. */
static void test_bf16(void **state)
{
    (void)state;
    enum { NQ = 300, NM = 1000, D = 64 };
    float *q = random_matrix(NQ, D, 5), *m = random_matrix(NM, D, 6);
    for (int i = 0; i < NQ * D; i++) q[i] -= 0.5f; /* centred: varied similarities */
    for (int i = 0; i < NM * D; i++) m[i] -= 0.5f;
    float *f = malloc(sizeof(float) * NQ * D), *h = malloc(sizeof(float) * NQ * D);
    cmcr_aggregate_params p = cmcr_aggregate_default_params();
    p.tau_mem = 0.05;
    p.query_block = 128;
    p.memory_block = 300;
    const int64_t ks[] = {0, 5};
    for (size_t t = 0; t < 2; t++) {
        p.top_k = ks[t];
        p.bf16 = 0;
        assert_int_equal(cmcr_aggregate(q, NQ, m, NM, D, &p, f), CMCR_OK);
        p.bf16 = 1;
        cmcr_status st = cmcr_aggregate(q, NQ, m, NM, D, &p, h);
        if (!cmcr_bf16_support() && !ks[t]) {
            assert_int_equal(st, CMCR_EINVAL);
            assert_non_null(strstr(cmcr_last_error(), "oneDNN"));
            continue;
        }
        assert_int_equal(st, CMCR_OK);
        double diff = 0, min_cos = 1;
        for (int i = 0; i < NQ; i++) {
            double c = 0;
            for (int j = 0; j < D; j++) {
                diff = fmax(diff, fabs((double)f[i * D + j] - h[i * D + j]));
                c += (double)f[i * D + j] * h[i * D + j];
            }
            min_cos = fmin(min_cos, c);
        }
        printf("bf16 vs f32, top_k %lld: max abs diff %.3g, min cosine %.6f\n", (long long)ks[t], diff, min_cos);
        if (ks[t]) assert_true(diff == 0); /* top-k stays float32 */
        else assert_true(diff > 0 && diff < 5e-3 && min_cos > 0.9999);
    }
    free(q);
    free(m);
    free(f);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_naive),
        cmocka_unit_test(test_zero_rows),
        cmocka_unit_test(test_block_invariance_and_determinism),
        cmocka_unit_test(test_top1_is_argmax_row),
        cmocka_unit_test(test_extreme_temperature),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_progress_and_cancel),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
