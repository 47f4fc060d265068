/* bench_aggregate.c - throughput of cmcr_aggregate (memory aggregation) and cmcr_hash_bytes.
 *
 * usage: bench_aggregate [nq nm dim [query_block memory_block [top_k [reps]]]]
 * defaults: 16384 65536 512, the library's default blocks, full softmax, 1 repetition.
 * FLOPs counted: 4 * nq * nm * dim (two GEMMs of 2 * nq * nm * dim each; the exp work is
 * not counted). Environment: BENCH_BF16=1 runs the products in bfloat16 (oneDNN builds; the
 * RESULT line then says impl=cmcr-bf16); BENCH_SGEMM=1 also times one library product
 * (cmcr_dot_rows) of the score shape (query_block x memory_block x dim), the ceiling the
 * kernel can approach; BENCH_HASH=1
 * times cmcr_hash_bytes on 1 GiB. Prints the time of the best and the median repetition,
 * the peak RSS (getrusage) and a machine-readable RESULT line (median) for bench/run.sh. */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    float *q = random_rows(nq, dim, 3, NULL, 1), *m = random_rows(nm, dim, 4, NULL, 1);
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
    double med = median(times, reps);
    long rss = maxrss_kib();
    double flops = 4.0 * (double)nq * (double)nm * (double)dim;
    printf("aggregate nq=%lld nm=%lld dim=%lld blocks %lldx%lld top_k=%lld: %.3f s, %.1f GFLOP/s, %.0f queries/s\n",
           (long long)nq, (long long)nm, (long long)dim, (long long)p.query_block, (long long)p.memory_block,
           (long long)p.top_k, best, flops / best / 1e9, (double)nq / best);
    printf("  median of %d: %.3f s, %.1f GFLOP/s; peak RSS %.1f MiB\n", reps, med, flops / med / 1e9,
           rss / 1024.0);
    printf("RESULT bench=aggregate impl=%s nq=%lld nm=%lld sec=%.6f rate=%.2f gflop=%.3f rss_kib=%ld core=%s "
           "threads=%d\n",
           p.bf16 ? "cmcr-bf16" : "cmcr", (long long)nq, (long long)nm, med, (double)nq / med, flops / 1e9,
           rss, cmcr_blas_core(),
           cmcr_blas_threads());
    if (getenv("BENCH_SGEMM")) {
        int64_t qb = p.query_block < nq ? p.query_block : nq, mb = p.memory_block < nm ? p.memory_block : nm;
        printf("library product %lldx%lldx%lld: %.1f GFLOP/s\n", (long long)qb, (long long)mb, (long long)dim,
               block_gflops(qb, mb, dim));
    }
    free(q);
    free(m);
    free(out);
    return 0;
}
