/* bench_aggregate.c - throughput of cmcr_aggregate (memory aggregation) and cmcr_hash_bytes.
 *
 * usage: bench_aggregate [nq nm dim [query_block memory_block [top_k [reps]]]]
 * defaults: 16384 65536 512, the library's default blocks, full softmax, 1 repetition.
 * FLOPs counted: 4 * nq * nm * dim (two GEMMs of 2 * nq * nm * dim each; the exp work is
 * not counted). Environment: BENCH_BF16=1 runs the products in bfloat16 (oneDNN builds; the
 * RESULT line then says impl=cmcr-bf16); BENCH_SGEMM=1 also times one plain sgemm of the score shape
 * (query_block x memory_block x dim), the ceiling the kernel can approach; BENCH_HASH=1
 * times cmcr_hash_bytes on 1 GiB. Prints the time of the best and the median repetition,
 * the peak RSS (getrusage) and a machine-readable RESULT line (median) for bench/run.sh. */
#include "cmcr.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *random_matrix(int64_t rows, int64_t cols, uint64_t seed)
{
    float *x = malloc((size_t)rows * (size_t)cols * sizeof(float));
    if (!x) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < rows * cols; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        x[i] = (float)((double)((s * 0x2545f4914f6cdd1dull) >> 40) / 16777216.0 - 0.5);
    }
    return x;
}

static double sgemm_gflops(int64_t m, int64_t n, int64_t k)
{
    float *a = random_matrix(m, k, 1), *b = random_matrix(n, k, 2), *c = malloc((size_t)(m * n) * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1, a, (int)k, b, (int)k, 0, c, (int)n);
    int reps = 0;
    double t0 = now(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1, a, (int)k, b, (int)k, 0, c,
                    (int)n);
        reps++;
    } while ((t = now() - t0) < 1.0);
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)m * (double)n * (double)k * reps / t / 1e9;
}

static void bench_hash(void)
{
    size_t n = (size_t)1 << 30;
    unsigned char *buf = malloc(n);
    if (!buf) return;
    memset(buf, 0x5a, n);
    uint64_t h = cmcr_hash_bytes(buf, n, 0);
    double t0 = now();
    h ^= cmcr_hash_bytes(buf, n, h);
    double t = now() - t0;
    printf("cmcr_hash_bytes: %.2f GB/s (1 GiB, 1 thread) [%016llx]\n", (double)n / t / 1e9, (unsigned long long)h);
    free(buf);
}

int main(int argc, char **argv)
{
    cmcr_aggregate_params p = cmcr_aggregate_default_params();
    int64_t nq = argc > 1 ? atoll(argv[1]) : 16384, nm = argc > 2 ? atoll(argv[2]) : 65536;
    int64_t dim = argc > 3 ? atoll(argv[3]) : 512;
    if (argc > 5) {
        p.query_block = atoll(argv[4]);
        p.memory_block = atoll(argv[5]);
    }
    if (argc > 6) p.top_k = atoll(argv[6]);
    int reps = argc > 7 ? atoi(argv[7]) : 1;
    p.bf16 = getenv("BENCH_BF16") != NULL;
    const char *env = getenv("OPENBLAS_CORETYPE");
    printf("products %s (%s), OpenBLAS kernels %s, %d threads, OPENBLAS_CORETYPE=%s\n", cmcr_gemm_backend(),
           cmcr_gemm_kernels(), cmcr_blas_core(), cmcr_blas_threads(), env ? env : "(unset)");
    if (getenv("BENCH_HASH")) bench_hash();
    float *q = random_matrix(nq, dim, 3), *m = random_matrix(nm, dim, 4);
    float *out = malloc((size_t)(nq * dim) * sizeof(float));
    double best = 1e30, times[64];
    if (reps < 1 || reps > 64) reps = 1;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (cmcr_aggregate(q, nq, m, nm, dim, &p, out) != CMCR_OK) {
            fprintf(stderr, "cmcr_aggregate: %s\n", cmcr_last_error());
            return 1;
        }
        double t = now() - t0;
        if (t < best) best = t;
        times[r] = t;
    }
    for (int i = 1; i < reps; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double x = times[j];
            times[j] = times[j - 1];
            times[j - 1] = x;
        }
    double med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double flops = 4.0 * (double)nq * (double)nm * (double)dim;
    printf("aggregate nq=%lld nm=%lld dim=%lld blocks %lldx%lld top_k=%lld: %.3f s, %.1f GFLOP/s, %.0f queries/s\n",
           (long long)nq, (long long)nm, (long long)dim, (long long)p.query_block, (long long)p.memory_block,
           (long long)p.top_k, best, flops / best / 1e9, (double)nq / best);
    printf("  median of %d: %.3f s, %.1f GFLOP/s; peak RSS %.1f MiB\n", reps, med, flops / med / 1e9,
           ru.ru_maxrss / 1024.0);
    printf("RESULT bench=aggregate impl=%s nq=%lld nm=%lld sec=%.6f rate=%.2f gflop=%.3f rss_kib=%ld core=%s "
           "threads=%d\n",
           p.bf16 ? "cmcr-bf16" : "cmcr", (long long)nq, (long long)nm, med, (double)nq / med, flops / 1e9,
           ru.ru_maxrss, cmcr_blas_core(),
           cmcr_blas_threads());
    if (getenv("BENCH_SGEMM")) {
        int64_t qb = p.query_block < nq ? p.query_block : nq, mb = p.memory_block < nm ? p.memory_block : nm;
        printf("plain sgemm %lldx%lldx%lld: %.1f GFLOP/s\n", (long long)qb, (long long)mb, (long long)dim,
               sgemm_gflops(qb, mb, dim));
    }
    free(q);
    free(m);
    free(out);
    return 0;
}
