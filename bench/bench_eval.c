/* bench_eval.c - throughput of cmcr_eval_retrieval.
 *
 * usage: bench_eval [nq ng dim [labels [query_block gallery_block]]]
 * defaults: 10000 1000000 512, ground truth by row (labels 0), the library's default blocks.
 * labels > 0: ground truth by label, labels drawn uniformly from [0, labels).
 * Data: random unit rows; query i is gallery row i plus noise, so ranks are not all random.
 * FLOPs counted: 2 * nq * ng * dim (one pass of scores). For reference it also times one
 * library product (cmcr_dot_rows) of the score block's shape, the ceiling the pass can approach (BENCH_NO_SGEMM=1
 * skips it), the peak RSS (getrusage) and a machine-readable RESULT line for bench/run.sh.
 * BENCH_BF16=1 scores in bfloat16 (oneDNN builds; RESULT then says impl=cmcr-bf16) and reports
 * how many pairs were re-scored from a double sum. */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "mcr/eval.h"

int main(int argc, char **argv)
{
    int64_t nq = argc > 1 ? atoll(argv[1]) : 10000, ng = argc > 2 ? atoll(argv[2]) : 1000000;
    int64_t dim = argc > 3 ? atoll(argv[3]) : 512, nlabels = argc > 4 ? atoll(argv[4]) : 0;
    int64_t qb = argc > 6 ? atoll(argv[5]) : 1024, gb = argc > 6 ? atoll(argv[6]) : 2048;
    if (nq < 1 || ng < nq || dim < 1 || nlabels < 0 || qb < 1 || gb < 1) {
        fprintf(stderr, "usage: bench_eval [nq ng dim [labels [query_block gallery_block]]] (ng >= nq)\n");
        return 2;
    }
    printf("products %s (%s), OpenBLAS kernels %s, %d threads\n", cmcr_gemm_backend(), cmcr_gemm_kernels(),
           cmcr_blas_core(), cmcr_blas_threads());
    float *g = random_rows(ng, dim, 7, NULL, 1);
    cmcr_normalize_rows(g, ng, dim);
    float *q = random_rows(nq, dim, 8, g, 1.0f);
    cmcr_normalize_rows(q, nq, dim);
    int64_t *ql = NULL, *gl = NULL;
    if (nlabels) {
        uint64_t s = 99;
        ql = malloc((size_t)nq * sizeof *ql);
        gl = malloc((size_t)ng * sizeof *gl);
        for (int64_t i = 0; i < ng; i++) gl[i] = (int64_t)(next(&s) % (uint64_t)nlabels);
        for (int64_t i = 0; i < nq; i++) ql[i] = gl[i];
    }
    cmcr_retrieval_metrics m;
    cmcr_retrieval_params p = {.bf16 = getenv("BENCH_BF16") != NULL};
    double t0 = now();
    cmcr_status st = eval_retrieval_blocked(q, nq, g, ng, dim, ql, gl, qb, gb, (int64_t)1 << 20, &p, &m);
    double t = now() - t0;
    if (st) {
        fprintf(stderr, "bench_eval: %s\n", cmcr_last_error());
        return 1;
    }
    double gflop = 2.0 * (double)nq * (double)ng * (double)dim / 1e9;
    printf("retrieval %lld queries x %lld gallery x %lld dims, ground truth %s, blocks %lld x %lld, %s\n",
           (long long)nq, (long long)ng, (long long)dim, nlabels ? "by label" : "by row", (long long)qb, (long long)gb,
           p.bf16 ? "bfloat16" : "float32");
    printf("  %.2f s, %.1f GFLOP/s (%.0f GFLOP), %.0f queries/s\n", t, gflop / t, gflop, (double)nq / t);
    printf("  R@1 %.4f R@5 %.4f R@10 %.4f median rank %.1f mean rank %.2f mAP %.4f (%lld queries)\n", m.recall[0],
           m.recall[1], m.recall[2], m.median_rank, m.mean_rank, m.map, (long long)m.queries);
    if (p.bf16)
        printf("  bf16: %.3g of the (query, item) pairs scored in bf16 (the rest in float32)\n",
               (double)m.scored_bf16 / ((double)nq * (double)ng));
    printf("  %.2g of the pairs re-scored where the product could not decide\n",
           (double)m.rescored / ((double)nq * (double)ng));
    long rss = maxrss_kib();
    printf("  peak RSS %.1f MiB\n", rss / 1024.0);
    printf("RESULT bench=retrieval impl=%s nq=%lld ng=%lld sec=%.6f rate=%.2f gflop=%.3f rss_kib=%ld core=%s "
           "threads=%d\n",
           p.bf16 ? "cmcr-bf16" : "cmcr", (long long)nq, (long long)ng, t, (double)nq / t, gflop, rss,
           cmcr_blas_core(), cmcr_blas_threads());
    if (!getenv("BENCH_NO_SGEMM"))
        printf("  library product %lld x %lld x %lld: %.1f GFLOP/s\n", (long long)qb, (long long)gb, (long long)dim,
               block_gflops(qb, gb, dim));
    free(q);
    free(g);
    free(ql);
    free(gl);
    return 0;
}
