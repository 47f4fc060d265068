/* bench_sgemm.c - the sgemm peak the other benchmarks are compared against.
 *
 * usage: bench_sgemm [n [threads [reps]]]
 * defaults: n = 2048 (square, row-major, C = A * B^T), 2 threads, median of 5 timed runs after
 * one warm-up. Prints the OpenBLAS kernel set and one machine-readable RESULT line. */
#include "cmcr.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int n);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
    double times[100];
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = now() - t0;
        if (r >= 0) times[r] = t;
    }
    qsort(times, (size_t)reps, sizeof(double), cmp_double);
    double med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    double gflops = 2.0 * n * (double)n * n / med / 1e9;
    printf("sgemm n=%d, %d threads, OpenBLAS kernels %s: median %.4f s of %d, %.1f GFLOP/s (best %.1f)\n", n,
           threads, cmcr_blas_core(), med, reps, gflops, 2.0 * n * (double)n * n / times[0] / 1e9);
    printf("RESULT bench=sgemm n=%d threads=%d core=%s gflops=%.2f\n", n, threads, cmcr_blas_core(), gflops);
    free(a);
    free(b);
    free(c);
    return 0;
}
