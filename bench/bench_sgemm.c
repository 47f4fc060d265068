/* bench_sgemm.c - the sgemm peak the other benchmarks are compared against.
 *
 * usage: bench_sgemm [n [threads [reps]]]
 * defaults: n = 2048 (square, row-major, C = A * B^T), 2 threads, median of 5 timed runs after
 * one warm-up, of OpenBLAS's cblas_sgemm and of the library's own product (cmcr_dot_rows:
 * oneDNN in builds with it). The peak is the faster of the two, so that "% of peak" is never
 * measured against a slower product than the library runs. Prints the OpenBLAS kernel set and
 * one machine-readable RESULT line. */
#include "bench_util.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

void openblas_set_num_threads(int n);

/* Median GFLOP/s of C = A B^T (n x n) over reps runs after one warm-up: OpenBLAS's sgemm, or
 * (own) the library's cmcr_dot_rows. */
static double median_gflops(int own, int n, int reps, const float *a, const float *b, float *c)
{
    double times[100];
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        if (own) cmcr_dot_rows(a, n, b, n, n, c);
        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = now() - t0;
        if (r >= 0) times[r] = t;
    }
    return 2.0 * n * (double)n * n / median(times, reps) / 1e9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2048, threads = argc > 2 ? atoi(argv[2]) : 2;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (n < 1 || threads < 1 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: bench_sgemm [n [threads [reps]]]\n");
        return 2;
    }
    openblas_set_num_threads(threads);
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)), *c = malloc(nn * sizeof(float));
    if (!a || !b || !c) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < nn; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = (float)((double)(s >> 40) / 16777216.0 - 0.5);
        b[nn - 1 - i] = (float)((double)((s >> 16) & 0xffffff) / 16777216.0 - 0.5);
    }
    double blas = median_gflops(0, n, reps, a, b, c), own = median_gflops(1, n, reps, a, b, c);
    printf("sgemm n=%d, %d threads: OpenBLAS (kernels %s) %.1f GFLOP/s, library's product (%s: %s) %.1f GFLOP/s,"
           " medians of %d\n", n, threads, cmcr_blas_core(), blas, cmcr_gemm_backend(), cmcr_gemm_kernels(), own,
           reps);
    printf("RESULT bench=sgemm n=%d threads=%d core=%s gemm=%s gflops=%.2f openblas_gflops=%.2f\n", n, threads,
           cmcr_blas_core(), cmcr_gemm_backend(), own > blas ? own : blas, blas);
    free(a);
    free(b);
    free(c);
    return 0;
}
