/* topk.c - exact top-k by dot product (cmcr_topk): the gallery rows with the highest scores
 * for each query, without ever holding the queries x gallery score matrix.
 *
 * The gallery is cut into blocks of TOPK_BLOCK rows and the queries into blocks of
 * TOPK_QUERIES; OpenMP shares the gallery blocks out among the threads (contiguous runs,
 * schedule(static)). For each of its blocks a thread computes the scores of a query block by
 * one mm_sgemm (inside the parallel region the BLAS runs single-threaded, so the threads do not
 * fight over the cores) and folds them into that query's heap of its k best. At the end the
 * threads' heaps are merged per query and sorted. Memory: per thread one score block and one
 * heap per query (nq x k entries), nothing that grows with the gallery.
 *
 * Order: higher score first; equal scores by lower row index. The blocks' limits are fixed
 * (not a function of the thread count) and every score is one BLAS dot product, so results are
 * the same for any thread count; between BLAS back-ends the last bits of a score can differ,
 * and with them the order of rows whose scores agree to within those bits. */
#include "runtime/core.h"
#include "runtime/matmul.h"
#include "runtime/topheap.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define TOPK_BLOCK 4096  /* gallery rows per product: 8 MiB of a 512-wide gallery */
#define TOPK_QUERIES 256 /* queries per product */

/* One thread's state: a score block and a heap per query. */
typedef struct topk_part {
    float *s;      /* TOPK_QUERIES x TOPK_BLOCK scores */
    float *hs;     /* nq x k */
    int64_t *hi;   /* nq x k */
    int64_t *hn;   /* nq: entries in each heap */
} topk_part;

typedef struct topk_job {
    const float *q, *g;
    const unsigned char *keep;
    int64_t nq, ng, dim, k, qb, gb;
} topk_job;

/* Scores of queries [q0, q0 + qn) against gallery rows [g0, g0 + gn), folded into the heaps. */
static void fold_block(const topk_job *j, topk_part *p, int64_t q0, int64_t qn, int64_t g0, int64_t gn)
{
    mm_sgemm(0, 1, qn, gn, j->dim, 1.0f, j->q + q0 * j->dim, j->g + g0 * j->dim, 0.0f, p->s);
    for (int64_t i = 0; i < qn; i++) {
        const float *s = p->s + i * gn;
        float *hs = p->hs + (q0 + i) * j->k;
        int64_t *hi = p->hi + (q0 + i) * j->k, *hn = &p->hn[q0 + i];
        for (int64_t c = 0; c < gn; c++) {
            float v = s[c];
            if (*hn == j->k && v < hs[0]) continue; /* most scores: below the worst kept */
            if (v != v || (j->keep && !j->keep[g0 + c])) continue; /* NaN (a non-finite row), or left out */
            topheap_offer(hs, hi, hn, j->k, v, g0 + c);
        }
    }
}

static void free_part(topk_part *p)
{
    free(p->s);
    free(p->hs);
    free(p->hi);
    free(p->hn);
}

static bool alloc_part(const topk_job *j, topk_part *p)
{
    size_t heap = (size_t)j->nq * (size_t)j->k;
    p->s = core_xmalloc((size_t)j->qb * (size_t)j->gb * sizeof(float));
    p->hs = core_xmalloc(heap * sizeof(float));
    p->hi = core_xmalloc(heap * sizeof(int64_t));
    p->hn = calloc((size_t)j->nq, sizeof(int64_t));
    if (p->s && p->hs && p->hi && p->hn) return true;
    free_part(p);
    return false;
}

/* The k best of every part's heap for query i, sorted into index / score (k each), padded. */
static void merge_query(const topk_job *j, const topk_part *parts, int nparts, int64_t i, int64_t *index, float *score)
{
    int64_t k = j->k, n = 0;
    float *hs = score;   /* the output rows serve as the merge heap */
    int64_t *hi = index;
    for (int t = 0; t < nparts; t++) {
        const topk_part *p = &parts[t];
        for (int64_t e = 0; e < p->hn[i]; e++) topheap_offer(hs, hi, &n, k, p->hs[i * k + e], p->hi[i * k + e]);
    }
    topheap_sort(hs, hi, n);
    for (int64_t e = n; e < k; e++) {
        hi[e] = -1;
        hs[e] = -INFINITY;
    }
}

static cmcr_status check_args(const float *queries, int64_t nq, const float *gallery, int64_t ng, int64_t dim,
                              int64_t k, const int64_t *index, const float *score)
{
    if (nq < 0 || ng < 0) return core_fail(CMCR_EINVAL, "top-k: negative counts (%lld queries, %lld rows)",
                                           (long long)nq, (long long)ng);
    if (dim < 1 || dim > INT32_MAX)
        return core_fail(CMCR_EINVAL, "top-k: width %lld (expected 1 to %d)", (long long)dim, INT32_MAX);
    if (k < 1) return core_fail(CMCR_EINVAL, "top-k: k must be at least 1, not %lld", (long long)k);
    uint64_t cells;
    if (!core_mul_u64((uint64_t)nq, (uint64_t)k, &cells) || cells > SIZE_MAX / sizeof(int64_t))
        return core_fail(CMCR_ENOMEM, "top-k: %lld queries x k %lld results do not fit in memory", (long long)nq,
                         (long long)k);
    if ((nq && (!queries || !index || !score)) || (ng && !gallery))
        return core_fail(CMCR_EINVAL, "top-k: queries, gallery, index and score are required");
    for (int64_t r = 0; r < nq; r++)
        for (int64_t c = 0; c < dim; c++)
            if (!isfinite(queries[r * dim + c]))
                return core_fail(CMCR_EVALUE, "top-k: query %lld contains %s (column %lld)", (long long)r,
                                 isnan(queries[r * dim + c]) ? "NaN" : "Inf", (long long)c);
    return CMCR_OK;
}

cmcr_status cmcr_topk(const float *queries, int64_t nq, const float *gallery, int64_t ng, int64_t dim,
                      const unsigned char *keep, int64_t k, int64_t *index, float *score)
{
    cmcr_status st = check_args(queries, nq, gallery, ng, dim, k, index, score);
    if (st || nq == 0) return st;
    topk_job j = {queries, gallery, keep, nq, ng, dim, k, nq < TOPK_QUERIES ? nq : TOPK_QUERIES,
                  ng < TOPK_BLOCK ? (ng ? ng : 1) : TOPK_BLOCK};
    int64_t blocks = (ng + j.gb - 1) / j.gb;
    int nparts = omp_get_max_threads();
    if (nparts > blocks) nparts = blocks > 0 ? (int)blocks : 1;
    topk_part *parts = calloc((size_t)nparts, sizeof *parts);
    bool ok = parts != NULL;
    for (int t = 0; ok && t < nparts; t++) ok = alloc_part(&j, &parts[t]);
    if (!ok) {
        for (int t = 0; parts && t < nparts; t++) free_part(&parts[t]);
        free(parts);
        return core_fail(CMCR_ENOMEM, "top-k: cannot allocate the heaps of %lld queries x k %lld (%d threads)",
                         (long long)nq, (long long)k, nparts);
    }
    #pragma omp parallel num_threads(nparts) if (nparts > 1)
    {
        topk_part *p = &parts[omp_get_thread_num()];
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; b++) {
            int64_t g0 = b * j.gb, gn = ng - g0 < j.gb ? ng - g0 : j.gb;
            for (int64_t q0 = 0; q0 < nq; q0 += j.qb) fold_block(&j, p, q0, nq - q0 < j.qb ? nq - q0 : j.qb, g0, gn);
        }
    }
    #pragma omp parallel for schedule(static) if (nq * k * nparts > 65536)
    for (int64_t i = 0; i < nq; i++) merge_query(&j, parts, nparts, i, index + i * k, score + i * k);
    for (int t = 0; t < nparts; t++) free_part(&parts[t]);
    free(parts);
    return CMCR_OK;
}
