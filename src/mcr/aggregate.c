/* aggregate.c - semantic consistency: memory aggregation (docs/method.md section 2).
 *
 * For each query q_i and memory rows m_k, both L2-normalised first:
 *     out_i = normalize( sum_k softmax_k( q_i . m_k / tau ) m_k )
 * This is attention with the memory as keys and values. It is computed like flash
 * attention: a block of queries is normalised into scratch, then the memory is streamed in
 * blocks (each normalised into scratch on the fly), and per query row we keep
 *     mx  = running maximum of the scores seen so far,
 *     sum = running sum of exp(score - mx),
 *     acc = running sum of exp(score - mx) * m_k          (a row of width dim).
 * When a new block raises the maximum from mx to mx', the old terms are all too large by
 * exp(mx' - mx), so sum and acc are multiplied by exp(mx - mx') before the block's terms
 * are added. At the end acc / sum is exactly the softmax-weighted average. We keep the
 * division although the final normalisation makes it almost irrelevant: F.normalize divides
 * by max(norm, 1e-12), and only with the division does that eps act on the same vector as
 * in the PyTorch formulation.
 *
 * Both matrix products of a block (scores = Q M^T / tau, acc += P M) are mm_sgemm calls
 * (oneDNN or OpenBLAS threads them, src/matmul.h); the exp / max / rescale loops between
 * them are parallel over query rows with OpenMP. Every output element is computed by one thread in a fixed order,
 * so results are deterministic for a given thread count.
 *
 * Top-k (0 < k < rows of the memory): the score blocks are computed the same way, and each
 * query keeps its k best (score, row) pairs in a small min-heap; at the end the softmax is
 * taken over those k scores and the k memory rows are gathered (normalised) in double
 * precision. */
#include "runtime/file.h"
#include "runtime/matmul.h"
#include "runtime/topheap.h"
#include "runtime/dist.h"
#include "runtime/vmath.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Bump when the meaning of a cached result changes (the cache key includes it). */
#define AGG_CACHE_VERSION 1


/* Below this many score elements per block, OpenMP's start-up costs more than it saves. */
#define AGG_OMP_MIN_WORK 32768

cmcr_aggregate_params cmcr_aggregate_default_params(void)
{
    cmcr_aggregate_params p;
    memset(&p, 0, sizeof p);
    p.tau_mem = 0.01;
    p.top_k = 0;
    p.query_block = 1024;
    p.memory_block = 4096;
    return p;
}

/* ------------------------------------------------------------------ argument checks */

static cmcr_status check_shapes(int64_t nq, int64_t nm, int64_t dim, const cmcr_aggregate_params *p)
{
    uint64_t bytes, pairs;
    if (nq < 1 || nm < 1 || dim < 1)
        return core_fail(CMCR_EINVAL, "aggregate: need at least one query, one memory row and width >= 1 "
                         "(got %lld queries, %lld memory rows, width %lld)", (long long)nq, (long long)nm,
                         (long long)dim);
    if (!(p->tau_mem > 0) || !isfinite(p->tau_mem) || !(1.0 / p->tau_mem < 1e30))
        return core_fail(CMCR_EINVAL, "aggregate: tau_mem must be a positive finite number >= 1e-30, not %g",
                         p->tau_mem);
    if (p->query_block < 1 || p->memory_block < 1)
        return core_fail(CMCR_EINVAL, "aggregate: query_block and memory_block must be >= 1 (got %lld, %lld)",
                         (long long)p->query_block, (long long)p->memory_block);
    if (p->top_k < 0)
        return core_fail(CMCR_EINVAL, "aggregate: top_k must be >= 0 (0 = full softmax), not %lld",
                         (long long)p->top_k);
    if (!core_mul_u64((uint64_t)nq, (uint64_t)dim * sizeof(float), &bytes) || bytes > SIZE_MAX ||
        !core_mul_u64((uint64_t)nm, (uint64_t)dim * sizeof(float), &bytes) || bytes > SIZE_MAX ||
        !core_mul_u64((uint64_t)nq, (uint64_t)nm, &pairs) || pairs > (uint64_t)INT64_MAX)
        return core_fail(CMCR_ENOMEM, "aggregate: %lld queries x %lld memory rows x width %lld is too large",
                         (long long)nq, (long long)nm, (long long)dim);
    return CMCR_OK;
}

static bool overlaps(const void *a, size_t na, const void *b, size_t nb)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y + nb && y < x + na;
}

static cmcr_status check_args(const float *queries, int64_t nq, const float *memory, int64_t nm, int64_t dim,
                              const cmcr_aggregate_params *p, const float *out)
{
    cmcr_status st = check_shapes(nq, nm, dim, p);
    if (st) return st;
    if (!queries || !memory || !out) return core_fail(CMCR_EINVAL, "aggregate: NULL queries, memory or output");
    size_t row = (size_t)dim * sizeof(float);
    if (overlaps(out, (size_t)nq * row, memory, (size_t)nm * row))
        return core_fail(CMCR_EINVAL, "aggregate: the output must not overlap the memory");
    if ((st = vm_check_finite(queries, nq, dim, 0, "aggregate: queries"))) return st;
    return vm_check_finite(memory, nm, dim, 0, "aggregate: memory");
}

/* ------------------------------------------------------------------ scratch */

typedef struct agg_job {
    const float *queries, *memory;
    int64_t nq, nm, dim;
    int64_t qb, mb, k;     /* block sizes (clamped to nq, nm); k = 0 for the full softmax */
    float alpha;           /* 1 / tau */
    cmcr_progress_fn progress;
    void *progress_user;
    uint64_t done_pairs, total_pairs;
    dist_group dist;        /* ranks holding slices of the memory (one: the whole memory) */
    int64_t offset;        /* global row of this rank's first memory row */
    mm_ctx *bf;             /* bfloat16 products (NULL: float32 sgemm) */
} agg_job;

typedef struct agg_scratch {
    float *q;        /* qb x dim: normalised query block */
    float *m;        /* 2 x mb x dim: normalised memory blocks (current and next) */
    float *s;        /* qb x mb: scores, then exp(score - mx) */
    float *acc;      /* qb x dim (full softmax) */
    float *mx;       /* qb: running maximum */
    float *gmx;      /* qb: the maximum over all ranks */
    double *sum;     /* qb: running sum of exp */
    float *ks;       /* qb x k: heap of the best scores (top-k) */
    int64_t *ki;     /* qb x k: their memory rows */
    int64_t *kn;     /* qb: entries in each heap */
    double *kacc;    /* qb x dim: weighted sums of the gathered rows (top-k) */
    uint16_t *qh, *mh, *sh; /* bf16 copies of q, m (both halves) and the weights s */
    float *all_s;    /* ranks x qb x k: every rank's heaps (top-k, several ranks) */
    int64_t *all_i;
} agg_scratch;

static void scratch_free(agg_scratch *w)
{
    free(w->q);
    free(w->m);
    free(w->s);
    free(w->acc);
    free(w->mx);
    free(w->gmx);
    free(w->sum);
    free(w->ks);
    free(w->ki);
    free(w->kn);
    free(w->kacc);
    free(w->qh);
    free(w->mh);
    free(w->sh);
    free(w->all_s);
    free(w->all_i);
    memset(w, 0, sizeof *w);
}

/* n elements of size elem, with the product checked. */
static void *alloc_array(int64_t n, size_t elem)
{
    uint64_t bytes;
    if (n < 0 || !core_mul_u64((uint64_t)n, elem, &bytes) || bytes > SIZE_MAX) return NULL;
    return core_xmalloc((size_t)bytes);
}

static cmcr_status scratch_alloc(const agg_job *j, agg_scratch *w)
{
    memset(w, 0, sizeof *w);
    uint64_t qs, ms, ss;
    uint64_t qb = (uint64_t)j->qb, mb = (uint64_t)j->mb, dim = (uint64_t)j->dim;
    bool ok = core_mul_u64(qb, dim, &qs) && core_mul_u64(mb, dim, &ms) && core_mul_u64(qb, mb, &ss) &&
              qs < INT64_MAX && ms < INT64_MAX && ss < INT64_MAX;
    if (ok) {
        w->q = alloc_array((int64_t)qs, sizeof(float));
        w->m = ms < INT64_MAX / 2 ? alloc_array((int64_t)(2 * ms), sizeof(float)) : NULL;
        w->s = alloc_array((int64_t)ss, sizeof(float));
        w->mx = alloc_array(j->qb, sizeof(float));
        w->gmx = alloc_array(j->qb, sizeof(float));
        w->sum = alloc_array(j->qb, sizeof(double));
        ok = w->q && w->m && w->s && w->mx && w->gmx && w->sum;
    }
    if (ok && j->k == 0) {
        w->acc = alloc_array((int64_t)qs, sizeof(float));
        ok = w->acc != NULL;
    } else if (ok) {
        uint64_t ks;
        ok = core_mul_u64((uint64_t)j->qb, (uint64_t)j->k, &ks) && ks < INT64_MAX;
        if (ok) {
            w->ks = alloc_array((int64_t)ks, sizeof(float));
            w->ki = alloc_array((int64_t)ks, sizeof(int64_t));
            w->kn = alloc_array(j->qb, sizeof(int64_t));
            w->kacc = alloc_array((int64_t)qs, sizeof(double));
            ok = w->ks && w->ki && w->kn && w->kacc;
        }
        if (ok && j->dist.size > 1) {
            int64_t all = (int64_t)ks * j->dist.size;
            w->all_s = alloc_array(all, sizeof(float));
            w->all_i = alloc_array(all, sizeof(int64_t));
            ok = w->all_s && w->all_i;
        }
    }
    if (ok && j->bf) {
        w->qh = alloc_array((int64_t)qs, sizeof(uint16_t));
        w->mh = alloc_array((int64_t)(2 * ms), sizeof(uint16_t));
        w->sh = alloc_array((int64_t)ss, sizeof(uint16_t));
        ok = w->qh && w->mh && w->sh;
    }
    if (!ok) {
        scratch_free(w);
        return core_fail(CMCR_ENOMEM, "aggregate: cannot allocate scratch for blocks of %lld queries x %lld memory "
                         "rows (width %lld, top_k %lld); use smaller blocks", (long long)j->qb, (long long)j->mb,
                         (long long)j->dim, (long long)j->k);
    }
    return CMCR_OK;
}

/* ------------------------------------------------------------------ small kernels */

static void normalize_into(const float *x, int64_t rows, int64_t dim, float *dst)
{
    #pragma omp parallel for schedule(static) if (rows * dim > AGG_OMP_MIN_WORK)
    for (int64_t r = 0; r < rows; r++) vm_normalize_row(x + r * dim, dst + r * dim, dim);
}

/* Fold one block's scores s[0..n) into a query row's running state (mx, sum, acc), and
 * replace the scores by the weights exp(s - mx) that the second GEMM multiplies in. */
CMCR_VECTOR_CLONES
static void online_softmax_row(float *s, int64_t n, float *acc, int64_t dim, float *mx, double *sum)
{
    float bmax = -INFINITY;
    #pragma omp simd reduction(max : bmax)
    for (int64_t j = 0; j < n; j++) bmax = s[j] > bmax ? s[j] : bmax;
    if (bmax > *mx) {
        float c = expf(*mx - bmax); /* 0 on the first block (mx = -inf) */
        *sum *= c;
        for (int64_t k = 0; k < dim; k++) acc[k] *= c;
        *mx = bmax;
    }
    float m = *mx, t = 0;
    #pragma omp simd reduction(+ : t)
    for (int64_t j = 0; j < n; j++) {
        float e = vm_exp_nonpositive(s[j] - m);
        s[j] = e;
        t += e;
    }
    *sum += t; /* float is plenty: the sum only scales the row, and the row is normalised */
}

/* Progress after a block of pairs; true when the caller asked to stop. Units: ceil(pairs / 1e6),
 * so the last call reports done == total. */
static bool progress_step(agg_job *j, uint64_t pairs)
{
    j->done_pairs += pairs;
    if (!j->progress) return false;
    int64_t done = (int64_t)((j->done_pairs + 999999) / 1000000);
    int64_t total = (int64_t)((j->total_pairs + 999999) / 1000000);
    return j->progress(done, total, j->progress_user) != 0;
}

static cmcr_status interrupted(const agg_job *j)
{
    return core_fail(CMCR_EINTERRUPTED, "aggregate: stopped by the progress callback after %.1f%% of the work",
                     100.0 * (double)j->done_pairs / (double)j->total_pairs);
}

/* scores (qn x mn, leading dimension mn) = alpha * q m^T for the memory block m (float)
 * or mh (its bf16 copy) */
static cmcr_status block_scores(const agg_job *j, const agg_scratch *w, const float *m, const uint16_t *mh,
                                int64_t qn, int64_t mn)
{
    if (j->bf) return mm_bf16_matmul(j->bf, w->qh, mh, w->s, qn, mn, j->dim, 1, j->alpha, 0);
    mm_sgemm(0, 1, qn, mn, j->dim, j->alpha, w->q, m, 0.0f, w->s);
    return CMCR_OK;
}

/* acc (qn x dim) += P (the weights in s, qn x mn) m (mn x dim) */
static cmcr_status block_accumulate(const agg_job *j, agg_scratch *w, const float *m, const uint16_t *mh, int64_t qn,
                                    int64_t mn)
{
    if (j->bf) {
        mm_bf16_from_f32(w->s, w->sh, qn * mn);
        return mm_bf16_matmul(j->bf, w->sh, mh, w->acc, qn, j->dim, mn, 0, 1.0f, 1);
    }
    mm_sgemm(0, 0, qn, j->dim, mn, 1.0f, w->s, m, 1.0f, w->acc);
    return CMCR_OK;
}

/* The normalised rows' bf16 copy, when bf16 products are on. */
static void to_bf16(const agg_job *j, const float *x, uint16_t *xh, int64_t n)
{
    if (j->bf) mm_bf16_from_f32(x, xh, n);
}

/* ------------------------------------------------------------------ full softmax */

/* out rows = normalize(acc / sum), in double. */
static void finish_full(const agg_job *j, const agg_scratch *w, int64_t qn, float *out)
{
    int64_t dim = j->dim;
    #pragma omp parallel for schedule(static) if (qn * dim > AGG_OMP_MIN_WORK)
    for (int64_t i = 0; i < qn; i++) {
        const float *a = w->acc + i * dim;
        double inv_sum = 1.0 / w->sum[i], ss = 0;
        for (int64_t c = 0; c < dim; c++) ss += ((double)a[c] * inv_sum) * ((double)a[c] * inv_sum);
        double norm = fmax(sqrt(ss), 1e-12);
        for (int64_t c = 0; c < dim; c++) out[i * dim + c] = (float)((double)a[c] * inv_sum / norm);
    }
}

/* One memory block's work between the two GEMMs, in one parallel region (each region
 * start/end costs thread wake-ups and spinning that compete with OpenBLAS's threads): the
 * online softmax of the current block, and the normalisation of the next memory block into
 * the other half of the double buffer. */
static void softmax_and_prefetch(const agg_job *j, agg_scratch *w, int64_t qn, int64_t mn, int64_t next0,
                                 int64_t next_n, float *next_m)
{
    int64_t dim = j->dim;
    const float *src = j->memory + next0 * dim;
    #pragma omp parallel if (qn * mn > AGG_OMP_MIN_WORK)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t i = 0; i < qn; i++)
            online_softmax_row(w->s + i * mn, mn, w->acc + i * dim, dim, &w->mx[i], &w->sum[i]);
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < next_n; r++) vm_normalize_row(src + r * dim, next_m + r * dim, dim);
    }
}

/* With several ranks each has folded its slice of the memory into (mx, sum, acc): bring the
 * states to the common maximum and add them up, which is the state of the whole memory. */
static void combine_ranks(const agg_job *j, agg_scratch *w, int64_t qn)
{
    if (j->dist.size == 1) return;
    int64_t dim = j->dim;
    memcpy(w->gmx, w->mx, (size_t)qn * sizeof(float));
    dist_max_f(&j->dist, w->gmx, qn);
    #pragma omp parallel for schedule(static) if (qn * dim > AGG_OMP_MIN_WORK)
    for (int64_t i = 0; i < qn; i++) {
        float c = expf(w->mx[i] - w->gmx[i]);
        w->sum[i] *= c;
        for (int64_t k = 0; k < dim; k++) w->acc[i * dim + k] *= c;
    }
    dist_sum_d(&j->dist, w->sum, qn);
    dist_sum_f(&j->dist, w->acc, qn * dim);
}

static cmcr_status full_query_block(agg_job *j, agg_scratch *w, int64_t q0, int64_t qn, float *out)
{
    int64_t dim = j->dim;
    normalize_into(j->queries + q0 * dim, qn, dim, w->q);
    to_bf16(j, w->q, w->qh, qn * dim);
    for (int64_t i = 0; i < qn; i++) {
        w->mx[i] = -INFINITY;
        w->sum[i] = 0;
    }
    memset(w->acc, 0, (size_t)(qn * dim) * sizeof(float));
    float *cur = w->m, *next = w->m + j->mb * dim;
    uint16_t *cur_h = w->mh, *next_h = w->mh ? w->mh + j->mb * dim : NULL;
    int stop = 0;
    cmcr_status st = CMCR_OK;
    normalize_into(j->memory, j->mb, dim, cur);
    to_bf16(j, cur, cur_h, j->mb * dim);
    for (int64_t m0 = 0; m0 < j->nm && !st; m0 += j->mb) {
        int64_t mn = j->nm - m0 < j->mb ? j->nm - m0 : j->mb;
        int64_t next0 = m0 + mn, next_n = j->nm - next0 < j->mb ? j->nm - next0 : j->mb;
        if ((st = block_scores(j, w, cur, cur_h, qn, mn))) break;
        softmax_and_prefetch(j, w, qn, mn, next0, next_n, next);
        st = block_accumulate(j, w, cur, cur_h, qn, mn);
        to_bf16(j, next, next_h, next_n * dim);
        float *t = cur;
        cur = next;
        next = t;
        uint16_t *th = cur_h;
        cur_h = next_h;
        next_h = th;
        if (!st && progress_step(j, (uint64_t)qn * (uint64_t)mn)) {
            stop = 1;
            break;
        }
    }
    if ((st = dist_agree(&j->dist, st, "aggregate: a block"))) return st;
    if (dist_max_i(&j->dist, stop)) return interrupted(j); /* all ranks stop together */
    combine_ranks(j, w, qn);
    finish_full(j, w, qn, out + q0 * dim);
    return CMCR_OK;
}

/* ------------------------------------------------------------------ top-k */

/* acc = sum_e softmax(scores)_e * normalize(memory[row_e]) over the entries e whose rows this
 * rank holds (all of them in one process), in double. */
static void topk_partial_row(const agg_job *j, const float *hs, const int64_t *hi, int64_t n, double *acc)
{
    int64_t dim = j->dim;
    double mx = -INFINITY, sum = 0;
    for (int64_t e = 0; e < n; e++) mx = fmax(mx, hs[e]);
    for (int64_t e = 0; e < n; e++) sum += exp(hs[e] - mx);
    memset(acc, 0, (size_t)dim * sizeof(double));
    for (int64_t e = 0; e < n; e++) {
        int64_t row = hi[e] - j->offset;
        if (row < 0 || row >= j->nm) continue; /* another rank's row */
        const float *v = j->memory + row * dim;
        double vs = 0;
        for (int64_t c = 0; c < dim; c++) vs += (double)v[c] * v[c];
        double wgt = exp(hs[e] - mx) / sum / fmax(sqrt(vs), 1e-12);
        for (int64_t c = 0; c < dim; c++) acc[c] += wgt * v[c];
    }
}

/* out rows = normalize(acc), the partial sums added up across ranks first. */
static void finish_topk(const agg_job *j, const agg_scratch *w, int64_t qn, float *out)
{
    int64_t dim = j->dim;
    #pragma omp parallel for schedule(static) if (qn * j->k * dim > AGG_OMP_MIN_WORK)
    for (int64_t i = 0; i < qn; i++) topk_partial_row(j, w->ks + i * j->k, w->ki + i * j->k, w->kn[i], w->kacc + i * dim);
    dist_sum_d(&j->dist, w->kacc, qn * dim);
    #pragma omp parallel for schedule(static) if (qn * dim > AGG_OMP_MIN_WORK)
    for (int64_t i = 0; i < qn; i++) {
        const double *acc = w->kacc + i * dim;
        double ss = 0;
        for (int64_t c = 0; c < dim; c++) ss += acc[c] * acc[c];
        double norm = fmax(sqrt(ss), 1e-12);
        for (int64_t c = 0; c < dim; c++) out[i * dim + c] = (float)(acc[c] / norm);
    }
}

/* Several ranks: every rank's k best of each query (padded with empty entries) are
 * gathered, and each rank keeps the k best of all, by the same order as one process. */
static void merge_ranks_topk(const agg_job *j, agg_scratch *w, int64_t qn)
{
    int64_t k = j->k, per = qn * k;
    for (int64_t i = 0; i < qn; i++)
        for (int64_t e = w->kn[i]; e < k; e++) {
            w->ks[i * k + e] = -INFINITY;
            w->ki[i * k + e] = -1;
        }
    dist_allgather_bytes(&j->dist, w->ks, w->all_s, (size_t)per * sizeof(float));
    dist_allgather_bytes(&j->dist, w->ki, w->all_i, (size_t)per * sizeof(int64_t));
    #pragma omp parallel for schedule(static) if (qn * k * j->dist.size > AGG_OMP_MIN_WORK)
    for (int64_t i = 0; i < qn; i++) {
        w->kn[i] = 0;
        for (int r = 0; r < j->dist.size; r++)
            for (int64_t e = 0; e < k; e++) {
                int64_t at = r * per + i * k + e;
                if (w->all_i[at] >= 0) topheap_offer(w->ks + i * k, w->ki + i * k, &w->kn[i], k, w->all_s[at], w->all_i[at]);
            }
    }
}

static cmcr_status topk_query_block(agg_job *j, agg_scratch *w, int64_t q0, int64_t qn, float *out)
{
    int64_t dim = j->dim, k = j->k;
    int stop = 0;
    normalize_into(j->queries + q0 * dim, qn, dim, w->q);
    to_bf16(j, w->q, w->qh, qn * dim);
    memset(w->kn, 0, (size_t)qn * sizeof(int64_t));
    for (int64_t m0 = 0; m0 < j->nm && !stop; m0 += j->mb) {
        int64_t mn = j->nm - m0 < j->mb ? j->nm - m0 : j->mb;
        normalize_into(j->memory + m0 * dim, mn, dim, w->m);
        to_bf16(j, w->m, w->mh, mn * dim);
        cmcr_status st = block_scores(j, w, w->m, w->mh, qn, mn);
        if (st) return st;
        #pragma omp parallel for schedule(static) if (qn * mn > AGG_OMP_MIN_WORK)
        for (int64_t i = 0; i < qn; i++) {
            const float *s = w->s + i * mn;
            float *hs = w->ks + i * k;
            int64_t *hi = w->ki + i * k;
            for (int64_t c = 0; c < mn; c++) {
                /* fast reject: most scores are below the worst kept one */
                if (w->kn[i] == k && s[c] <= hs[0]) continue;
                topheap_offer(hs, hi, &w->kn[i], k, s[c], j->offset + m0 + c);
            }
        }
        stop = progress_step(j, (uint64_t)qn * (uint64_t)mn);
    }
    if (dist_max_i(&j->dist, stop)) return interrupted(j); /* all ranks stop together */
    if (j->dist.size > 1) merge_ranks_topk(j, w, qn);
    finish_topk(j, w, qn, out + q0 * dim);
    return CMCR_OK;
}

/* ------------------------------------------------------------------ entry points */

/* The aggregation proper; arguments already checked. */
static cmcr_status aggregate_checked(const float *queries, int64_t nq, const float *memory, int64_t nm, int64_t dim,
                                     const cmcr_aggregate_params *p, float *out)
{
    agg_job j;
    memset(&j, 0, sizeof j);
    j.queries = queries;
    j.memory = memory;
    j.nq = nq;
    j.nm = nm;
    j.dim = dim;
    j.qb = p->query_block < nq ? p->query_block : nq;
    j.mb = p->memory_block < nm ? p->memory_block : nm;
    j.alpha = (float)(1.0 / p->tau_mem);
    j.progress = p->progress;
    j.progress_user = p->progress_user;
    j.total_pairs = (uint64_t)nq * (uint64_t)nm;
    cmcr_status st = dist_open(p->mpi_comm, &j.dist);
    if (st) return st;
    int64_t nm_total; /* over all ranks' slices */
    dist_offset(&j.dist, nm, &j.offset, &nm_total);
    j.k = p->top_k < nm_total ? p->top_k : 0; /* k >= rows of the memory is the full softmax */
    if (j.qb > INT32_MAX || j.mb > INT32_MAX || dim > INT32_MAX)
        return core_fail(CMCR_EINVAL, "aggregate: blocks and width must fit BLAS's int (got %lld, %lld, %lld)",
                         (long long)j.qb, (long long)j.mb, (long long)dim);
    /* bf16 serves the full softmax only: with top-k, bf16 rounding of near-tied scores
     * changes which rows are selected (measured: cosine to the f32 result down to 0.98) */
    if (p->bf16 && !j.k && (st = mm_ctx_new(&j.bf))) return st;
    agg_scratch w;
    st = dist_agree(&j.dist, scratch_alloc(&j, &w), "aggregate: allocating scratch");
    for (int64_t q0 = 0; q0 < nq && st == CMCR_OK; q0 += j.qb) {
        int64_t qn = nq - q0 < j.qb ? nq - q0 : j.qb;
        st = j.k ? topk_query_block(&j, &w, q0, qn, out) : full_query_block(&j, &w, q0, qn, out);
    }
    scratch_free(&w);
    mm_ctx_free(j.bf);
    return st;
}

/* check_args, agreed across the ranks of p->mpi_comm (each checks its own slice). */
static cmcr_status check_all(const float *queries, int64_t nq, const float *memory, int64_t nm, int64_t dim,
                             const cmcr_aggregate_params *p, const float *out)
{
    dist_group d;
    cmcr_status st = dist_open(p->mpi_comm, &d);
    if (st) return st;
    st = check_args(queries, nq, memory, nm, dim, p, out);
    return dist_agree(&d, st, "aggregate: checking the inputs");
}

cmcr_status cmcr_aggregate(const float *queries, int64_t nq, const float *memory, int64_t nm, int64_t dim,
                           const cmcr_aggregate_params *p, float *out)
{
    cmcr_aggregate_params defaults = cmcr_aggregate_default_params();
    if (!p) p = &defaults;
    cmcr_status st = check_all(queries, nq, memory, nm, dim, p, out);
    if (st) return st;
    return aggregate_checked(queries, nq, memory, nm, dim, p, out);
}

/* ------------------------------------------------------------------ on-disk cache */

static uint64_t cache_key(const float *queries, int64_t nq, const float *memory, int64_t nm, int64_t dim,
                          const cmcr_aggregate_params *p)
{
    uint64_t tau_bits, fields[6];
    memcpy(&tau_bits, &p->tau_mem, sizeof tau_bits);
    fields[0] = AGG_CACHE_VERSION;
    fields[1] = (uint64_t)nq;
    fields[2] = (uint64_t)nm;
    fields[3] = (uint64_t)dim;
    fields[4] = tau_bits;
    fields[5] = (uint64_t)(p->top_k < nm ? p->top_k : 0); /* k >= nm is the full softmax */
    uint64_t h = cmcr_hash_bytes(fields, sizeof fields, 0x636d63722d616767ull);
    if (p->bf16) h = cmcr_hash_bytes("bf16", 4, h); /* float32 keys stay as they were */
    h = cmcr_hash_bytes(queries, (size_t)nq * (size_t)dim * sizeof(float), h);
    return cmcr_hash_bytes(memory, (size_t)nm * (size_t)dim * sizeof(float), h);
}

/* Every row of an aggregation result has norm 1 (or 0 when everything cancelled). */
static bool rows_look_normalised(const float *x, int64_t rows, int64_t dim)
{
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int64_t c = 0; c < dim; c++) ss += (double)x[r * dim + c] * x[r * dim + c];
        if (ss != 0 && fabs(ss - 1) > 1e-3) return false;
    }
    return true;
}

/* Try the cache file; true (out filled) on a usable hit. A file that exists but cannot be
 * used is reported and ignored. */
static bool cache_load(const char *path, int64_t nq, int64_t dim, float *out)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return false;
    cmcr_matrix m;
    if (cmcr_matrix_load(path, &m) != CMCR_OK) {
        core_log(CMCR_LOG_WARN, "ignoring unreadable aggregation cache file (%s); recomputing", cmcr_last_error());
        return false;
    }
    bool ok = m.rows == nq && m.cols == dim;
    if (!ok)
        core_log(CMCR_LOG_WARN, "ignoring aggregation cache file %s: it is %lld x %lld, expected %lld x %lld; "
                 "recomputing", path, (long long)m.rows, (long long)m.cols, (long long)nq, (long long)dim);
    else if (!(ok = rows_look_normalised(m.data, nq, dim)))
        core_log(CMCR_LOG_WARN, "ignoring aggregation cache file %s: its rows are not unit vectors (corrupt?); "
                 "recomputing", path);
    if (ok) memcpy(out, m.data, (size_t)nq * (size_t)dim * sizeof(float));
    cmcr_matrix_free(&m);
    return ok;
}

cmcr_status cmcr_aggregate_cached(const char *cache_dir, const float *queries, int64_t nq, const float *memory,
                                  int64_t nm, int64_t dim, const cmcr_aggregate_params *p, float *out, int *hit)
{
    cmcr_aggregate_params defaults = cmcr_aggregate_default_params();
    if (!p) p = &defaults;
    if (hit) *hit = 0;
    cmcr_status st = check_all(queries, nq, memory, nm, dim, p, out);
    if (!st && cache_dir && p->mpi_comm)
        core_log(CMCR_LOG_INFO, "aggregation: the cache is not used when the memory is split across MPI ranks");
    if (st || !cache_dir || p->mpi_comm) return st ? st : aggregate_checked(queries, nq, memory, nm, dim, p, out);
    st = file_mkdir_p(cache_dir);
    if (st) return st;
    size_t len = strlen(cache_dir) + 32;
    char *path = malloc(len);
    if (!path) return core_fail(CMCR_ENOMEM, "%s: out of memory", cache_dir);
    snprintf(path, len, "%s/agg-%016llx.npy", cache_dir,
             (unsigned long long)cache_key(queries, nq, memory, nm, dim, p));
    if (cache_load(path, nq, dim, out)) {
        if (hit) *hit = 1;
        core_log(CMCR_LOG_INFO, "aggregation: cache hit, read %s", path);
        free(path);
        return CMCR_OK;
    }
    st = aggregate_checked(queries, nq, memory, nm, dim, p, out);
    if (st == CMCR_OK) {
        /* The result is good even if the cache cannot be written: warn, do not fail. */
        if (cmcr_matrix_save_npy(path, out, nq, dim) != CMCR_OK)
            core_log(CMCR_LOG_WARN, "aggregation: could not write cache file (%s)", cmcr_last_error());
        else
            core_log(CMCR_LOG_INFO, "aggregation: cache miss, wrote %s", path);
    }
    free(path);
    return st;
}
