/* bench_util.h - what the benchmark programs share: a clock, reproducible random rows, the
 * median of a set of timings, the peak RSS and the rate of the library's own product.
 * Header-only (static inline): each bench_*.c is its own executable. */
#ifndef CMCR_BENCH_UTIL_H
#define CMCR_BENCH_UTIL_H
#include "cmcr.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* xorshift64* */
static inline uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Uniform in [-0.5, 0.5). */
static inline float uniform(uint64_t *s) { return (float)((double)(next(s) >> 40) / 16777216.0 - 0.5); }

/* rows x cols floats base + noise * uniform (base NULL: 0), from seed; exits when out of
 * memory (a benchmark has nothing to do without its data). */
static inline float *random_rows(int64_t rows, int64_t cols, uint64_t seed, const float *base, float noise)
{
    float *x = malloc((size_t)rows * (size_t)cols * sizeof(float));
    if (!x) {
        fprintf(stderr, "out of memory for %lld x %lld floats\n", (long long)rows, (long long)cols);
        exit(1);
    }
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < rows * cols; i++) x[i] = (base ? base[i] : 0) + noise * uniform(&s);
    return x;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of t[0..n) (sorts t). */
static inline double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static inline long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* GFLOP/s of the library's product (cmcr_dot_rows: oneDNN or OpenBLAS, as the library runs
 * it) for one m x n x k block, repeated for at least a second: the ceiling a blocked pass
 * of that shape can approach. */
static inline double block_gflops(int64_t m, int64_t n, int64_t k)
{
    float *a = random_rows(m, k, 1, NULL, 1), *b = random_rows(n, k, 2, NULL, 1);
    float *c = malloc((size_t)(m * n) * sizeof(float));
    int reps = 0;
    cmcr_dot_rows(a, m, b, n, k, c);
    double t0 = now(), t;
    do {
        cmcr_dot_rows(a, m, b, n, k, c);
        reps++;
    } while ((t = now() - t0) < 1.0);
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)m * (double)n * (double)k * reps / t / 1e9;
}
#endif
