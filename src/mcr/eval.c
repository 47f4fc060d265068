/* eval.c - retrieval and zero-shot evaluation.
 *
 * Retrieval never holds the queries x gallery score matrix. A block of queries is scored
 * against the gallery one block of rows at a time (sgemm), and each query keeps only what
 * its exact ranks need:
 *  - ground truth by row: the score s* of its own item (computed once, up front) and the
 *    number of gallery items that rank above it;
 *  - ground truth by label: the scores of its relevant items, sorted in rank order, and a
 *    difference array: a non-relevant item that outranks the relevant items from position p
 *    on adds one at p, so a prefix sum gives, for every relevant item, the number of
 *    non-relevant items above it.
 * Ranking: descending score, ties by gallery index (lower first). An item's score is used
 * once (the relevant ones are skipped in the main pass).
 *
 * Scores come from a fast product, float32 or (params->bf16) bfloat16 (oneDNN, about twice
 * the float32 rate), and a decision is taken on a product score only where its proven error
 * bound allows. The reference score is own_score: a double sum rounded to float. Bounds:
 *   float32: |s - q.g| <= gamma |q||g|, gamma = (dim + 2) 2^-24 (any summation order);
 *   bf16, with q', g' the bf16-rounded rows, products summed in float32:
 *     |s_bf16 - q.g| <= |q' - q||g'| + |q||g' - g| + gamma |q'||g'|
 *     (q'.g' - q.g = (q' - q).g' + q.(g' - g), then Cauchy-Schwarz), with the rounding
 *     residuals |q' - q| measured per query and over the gallery (about 0.6 of the worst case
 *     2^-8 |q|);
 * each plus 2^-20 |q||g| (rounding of scores and thresholds to float) and dim 2^-120
 * (subnormals oneDNN may flush).
 *  - By row, an item whose product score lies within its bound of the own score is
 *    re-scored and ranked by the rule: the ranks are those of the reference scores, in either
 *    precision, ties and duplicate rows included.
 *  - By label, bf16 items within the bf16 bound of a relevant item's score are re-scored;
 *    the relevant items' scores and float32 decisions are float32 products, so ranks are
 *    float32's up to float32 rounding (a tie between identical rows may go either way).
 *    Doing by label what by row does cost 2.7x with 1,000 relevant items per query. */
#include "mcr/eval.h"
#include "runtime/half.h"
#include "runtime/matmul.h"
#include "runtime/vmath.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Default block sizes: the score block is query_block x gallery_block floats (8 MiB), the
 * relevant-item storage of one query block at most rel_budget entries (28 bytes each). */
#define EVAL_QUERY_BLOCK 1024
#define EVAL_GALLERY_BLOCK 2048
#define EVAL_REL_BUDGET ((int64_t)1 << 20)
/* Zero-shot: inputs per block so that the block's scores stay under this many floats. */
#define ZS_SCORE_BUDGET ((int64_t)1 << 21)
/* Below this many score entries a block is counted on one thread. */
#define EVAL_PAR_MIN 65536



typedef struct eval_job {
    const float *q, *g;
    int64_t nq, ng, dim;
    const int64_t *ql, *gl;
    int64_t qb, gb, budget;
    /* Per evaluated query, in query order: rank of the first relevant item and AP. */
    int64_t *first;
    double *ap;
    int64_t used;
    /* bfloat16 scoring (bf NULL: float32): the query block's and a gallery block's bf16
     * copies (gh holds gh_rows rows), the largest |g|, |g'|, |g' - g| over the gallery
     * (gmax), the query block's error bounds (delta), and the counts of pairs scored in bf16
     * and of pairs re-scored from a double sum. */
    mm_ctx *bf;
    uint16_t *qh, *gh;
    int64_t gh_rows;
    double gmax[3];
    float *delta;
    int64_t rescored, scored_bf16;
} eval_job;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------------ scores */

/* The reference score, a double sum rounded to float: what an item gets when its product
 * score cannot decide. */
CMCR_VECTOR_CLONES
static float own_score(const float *q, const float *g, int64_t dim)
{
    double s = 0;
    #pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < dim; k++) s += (double)q[k] * g[k];
    return (float)s;
}

/* |x|, |x'| and |x' - x| of one row, x' its bf16 rounding (as mm_bf16_from_f32 makes it),
 * each rounded up a little: the bound must not come out low. */
CMCR_VECTOR_CLONES
static void bf16_norms(const float *x, int64_t dim, double out[3])
{
    double a = 0, b = 0, c = 0;
    #pragma omp simd reduction(+ : a, b, c)
    for (int64_t k = 0; k < dim; k++) {
        double v = x[k], w = half_bf16_to_f32(half_f32_to_bf16(x[k]));
        a += v * v;
        b += w * w;
        c += (w - v) * (w - v);
    }
    out[0] = sqrt(a) * (1 + 1e-9), out[1] = sqrt(b) * (1 + 1e-9), out[2] = sqrt(c) * (1 + 1e-9);
}

/* Start of a query block (n rows at q): each query's error bounds, delta[2 i] for float32
 * scores and delta[2 i + 1] for bf16 ones (see the top of the file), and the bf16 copy. */
static void block_queries(eval_job *j, const float *q, int64_t n)
{
    if (j->bf) mm_bf16_from_f32(q, j->qh, n * j->dim);
    const double *gm = j->gmax; /* max |g|, |g'|, |g' - g| */
    double gamma = (double)(j->dim + 2) / 16777216.0;
    /* room for rounding the scores and s +- delta to float, and for flushed subnormals */
    double tiny = (double)j->dim * 0x1p-120;
    #pragma omp parallel for schedule(static) if (n * j->dim > 65536)
    for (int64_t i = 0; i < n; i++) {
        double qn[3]; /* |q|, |q'|, |q' - q| */
        bf16_norms(q + i * j->dim, j->dim, qn);
        double room = qn[0] * gm[0] / 1048576 + tiny;
        j->delta[2 * i] = (float)((gamma * qn[0] * gm[0] + room) * (1 + 1e-6));
        double d = qn[2] * gm[1] + qn[0] * gm[2] + gamma * qn[1] * gm[1] + room;
        j->delta[2 * i + 1] = (float)(d * (1 + 1e-6));
    }
}

/* scores (n x m) = the query block q times gallery rows g0 .. g0 + m - 1, transposed: in
 * float32, or in bf16 (bf; after block_queries; m <= gh_rows). */
static cmcr_status block_scores(eval_job *j, const float *q, int64_t n, int64_t g0, int64_t m, float *scores, int bf)
{
    const float *g = j->g + g0 * j->dim;
    if (!bf) {
        cmcr_dot_rows(q, n, g, m, j->dim, scores);
        return CMCR_OK;
    }
    mm_bf16_from_f32(g, j->gh, m * j->dim);
    j->scored_bf16 += n * m;
    return mm_bf16_matmul(j->bf, j->qh, j->gh, scores, n, m, j->dim, 1, 1.0f, 0);
}

/* Whether bf16 still pays for the rest of a query block after a block of n x m pairs of
 * which `rescored` needed re-scoring: a re-scored item costs about 130 ns (a gallery row read
 * from memory), a pair's bf16 product 2.5 ns and its float32 one 5 (dim 512, this machine),
 * so beyond about 1 in 50 float32 products are cheaper. Only speed depends on this. */
static int keep_bf16(int bf, int64_t rescored, int64_t n, int64_t m) { return bf && rescored * 50 <= n * m; }

/* Set-up: the gallery's largest norms (one pass, nothing stored per row), the bounds'
 * buffer, and for bf16 the oneDNN context and the bf16 blocks. */
static cmcr_status bounds_setup(eval_job *j, int bf16)
{
    cmcr_status st = bf16 ? mm_ctx_new(&j->bf) : CMCR_OK;
    if (st) return st;
    double m0 = 0, m1 = 0, m2 = 0;
    #pragma omp parallel for schedule(static) reduction(max : m0, m1, m2)
    for (int64_t h = 0; h < j->ng; h++) {
        double n[3];
        bf16_norms(j->g + h * j->dim, j->dim, n);
        m0 = n[0] > m0 ? n[0] : m0, m1 = n[1] > m1 ? n[1] : m1, m2 = n[2] > m2 ? n[2] : m2;
    }
    j->gmax[0] = m0, j->gmax[1] = m1, j->gmax[2] = m2;
    int64_t qb = min64(j->qb, j->nq);
    j->delta = core_xmalloc((size_t)(2 * qb) * sizeof(float));
    if (!j->delta) return core_fail(CMCR_ENOMEM, "out of memory for %lld queries' bounds", (long long)qb);
    if (!bf16) return CMCR_OK;
    j->gh_rows = min64(4 * j->gb, j->ng);
    j->qh = core_xmalloc((size_t)(qb * j->dim) * sizeof(uint16_t));
    j->gh = core_xmalloc((size_t)(j->gh_rows * j->dim) * sizeof(uint16_t));
    if (!j->qh || !j->gh)
        return core_fail(CMCR_ENOMEM, "out of memory for bf16 blocks of %lld and %lld rows", (long long)qb,
                         (long long)j->gh_rows);
    return CMCR_OK;
}

static void bounds_teardown(eval_job *j)
{
    mm_ctx_free(j->bf);
    free(j->qh);
    free(j->gh);
    free(j->delta);
}

/* ------------------------------------------------------------------ summary */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static cmcr_status summarize(const eval_job *j, cmcr_retrieval_metrics *out)
{
    int64_t n = j->used;
    int64_t *sorted = core_xmalloc((size_t)n * sizeof *sorted);
    if (!sorted) return core_fail(CMCR_ENOMEM, "out of memory sorting %lld ranks", (long long)n);
    static const int64_t ks[3] = {1, 5, 10};
    int64_t hits[3] = {0, 0, 0};
    double rank_sum = 0, ap_sum = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++) hits[k] += j->first[i] <= ks[k];
        rank_sum += (double)j->first[i];
        ap_sum += j->ap[i];
        sorted[i] = j->first[i];
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_i64);
    out->queries = n;
    for (int k = 0; k < 3; k++) out->recall[k] = (double)hits[k] / (double)n;
    out->median_rank = n % 2 ? (double)sorted[n / 2] : ((double)sorted[n / 2 - 1] + (double)sorted[n / 2]) / 2.0;
    out->mean_rank = rank_sum / (double)n;
    out->map = ap_sum / (double)n;
    free(sorted);
    return CMCR_OK;
}

/* ------------------------------------------------------------------ ground truth by row */

/* Number of items in one block of product scores (row, m items, gallery index g0..) that
 * rank above the query's own item `self` (global index), whose score is s: an item more than
 * delta (the product's error bound) above s is above, one more than delta below is not, and
 * one in between is re-scored (counted in *rescored) and ranked by the rule, ties going to the
 * lower index. The own item is decided by its index, never by a score. */
CMCR_VECTOR_CLONES
static int64_t count_above(const eval_job *j, const float *row, int64_t m, int64_t g0, int64_t self, float s,
                           const float *q, float delta, int64_t *rescored)
{
    float hi = s + delta, lo = s - delta;
    int32_t c = 0, band = 0;
    for (int64_t h = 0; h < m; h++) {
        c += row[h] > hi;
        band += row[h] >= lo;
    }
    band -= c;
    int64_t at = self - g0;
    if (at >= 0 && at < m) {
        c -= row[at] > hi;
        band -= row[at] >= lo && row[at] <= hi;
    }
    if (band == 0) return c;
    for (int64_t h = 0; h < m; h++) {
        if (!(row[h] >= lo && row[h] <= hi) || h == at) continue;
        float e = own_score(q, j->g + (g0 + h) * j->dim, j->dim);
        c += g0 + h < self ? e >= s : e > s;
        (*rescored)++;
    }
    return c;
}

static cmcr_status row_block(eval_job *j, int64_t q0, int64_t n, float *scores, float *star, int64_t *above)
{
    const float *q = j->q + q0 * j->dim;
    for (int64_t i = 0; i < n; i++) {
        star[i] = own_score(q + i * j->dim, j->g + (q0 + i) * j->dim, j->dim);
        above[i] = 0;
    }
    block_queries(j, q, n);
    int64_t gb = j->bf ? min64(j->gb, j->gh_rows) : j->gb;
    int bf = j->bf != NULL;
    for (int64_t g0 = 0; g0 < j->ng; g0 += gb) {
        int64_t m = min64(gb, j->ng - g0), rescored = 0;
        cmcr_status st = block_scores(j, q, n, g0, m, scores, bf);
        if (st) return st;
        #pragma omp parallel for schedule(static) reduction(+ : rescored) if (n * m >= EVAL_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            above[i] += count_above(j, scores + i * m, m, g0, q0 + i, star[i], q + i * j->dim, j->delta[2 * i + bf],
                                    &rescored);
        j->rescored += rescored;
        bf = keep_bf16(bf, rescored, n, m);
    }
    for (int64_t i = 0; i < n; i++) {
        j->first[q0 + i] = above[i] + 1;
        j->ap[q0 + i] = 1.0 / (double)(above[i] + 1);
    }
    return CMCR_OK;
}

static cmcr_status eval_by_row(eval_job *j)
{
    int64_t qb = min64(j->qb, j->nq), gb = min64(j->gb, j->ng);
    float *scores = core_xmalloc((size_t)(qb * gb) * sizeof(float));
    float *star = core_xmalloc((size_t)qb * sizeof(float));
    int64_t *above = core_xmalloc((size_t)qb * sizeof(int64_t));
    cmcr_status st = CMCR_OK;
    if (!scores || !star || !above) st = core_fail(CMCR_ENOMEM, "out of memory for a %lld x %lld score block",
                                                   (long long)qb, (long long)gb);
    for (int64_t q0 = 0; !st && q0 < j->nq; q0 += qb)
        st = row_block(j, q0, min64(qb, j->nq - q0), scores, star, above);
    j->used = j->nq;
    free(scores);
    free(star);
    free(above);
    return st;
}

/* ------------------------------------------------------------------ ground truth by label */

typedef struct label_ix {
    int64_t label, idx;
} label_ix;

/* A relevant item of one query: its score and gallery index. */
typedef struct rel_item {
    float s;
    int64_t idx;
} rel_item;

static int cmp_label_ix(const void *a, const void *b)
{
    const label_ix *x = a, *y = b;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Rank order: higher score first, then lower gallery index. */
static int cmp_rank(const void *a, const void *b)
{
    const rel_item *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int outranks(float s, int64_t h, const rel_item *r)
{
    return s > r->s || (s == r->s && h < r->idx);
}

/* The same, with the relevant item's score from a compact array (the index, needed only on
 * ties, from the item). */
static int outranks_at(float s, int64_t h, float rs, const rel_item *r)
{
    return s > rs || (s == rs && h < r->idx);
}

/* One query's relevant items in rank order plus a bucket table over their score range, so
 * that finding where an item starts to outrank them costs O(1) on average instead of a
 * binary search over all of them. bucket(s) is monotone non-increasing in s, so relevant
 * items in lower buckets score above s and those in higher buckets below it: only the
 * items of s's own bucket, start[k] .. start[k+1], need comparing. */
typedef struct rel_table {
    const rel_item *r;
    float *s;           /* r[j].s again, contiguous: the per-item search touches only this */
    int64_t n;
    int32_t *start;     /* n + 1 entries: first position with bucket >= k; start[n] = n */
    double top, scale;  /* bucket(s) = (top - s) * scale, clamped to [0, n - 1] */
} rel_table;

static int64_t bucket_of(const rel_table *t, float s)
{
    double k = ((double)t->top - (double)s) * t->scale;
    if (!(k > 0)) return 0;
    if (k >= (double)(t->n - 1)) return t->n - 1;
    return (int64_t)k;
}

static void table_build(rel_table *t)
{
    double range = (double)t->r[0].s - (double)t->r[t->n - 1].s;
    t->top = t->r[0].s;
    t->scale = range > 0 ? (double)t->n / range : 0;
    int64_t k = 0;
    for (int64_t j = 0; j < t->n; j++) {
        int64_t b = bucket_of(t, t->r[j].s);
        t->s[j] = t->r[j].s;
        while (k <= b) t->start[k++] = (int32_t)j;
    }
    while (k <= t->n) t->start[k++] = (int32_t)t->n;
}

/* First position in rank order that item (s, h) outranks; n if none. */
static int64_t outrank_pos(const rel_table *t, float s, int64_t h)
{
    int64_t k = bucket_of(t, s), lo = t->start[k], hi = t->start[k + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (outranks_at(s, h, t->s[mid], &t->r[mid])) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* Everything one query block needs in label mode. */
typedef struct label_state {
    label_ix *by_label;       /* gallery (label, index) pairs sorted */
    int64_t *lo, *hi;         /* per query: its relevant range in by_label (empty: skipped) */
    int64_t *members;         /* query indices of the current block */
    int64_t *rel_off;         /* per block member: offset into rel / diff (n + 1 entries) */
    rel_item *rel;
    int32_t *diff;            /* counts below ng <= INT32_MAX */
    float *rel_s;             /* scores of rel, contiguous */
    int32_t *starts;          /* bucket tables: member p's at rel_off[p] + p (nr + 1 entries) */
    rel_table *tables;        /* per block member */
    int64_t *order;           /* block members grouped by label */
    float *qbuf, *grp, *gbuf, *scores;
} label_state;

static cmcr_status label_index(const eval_job *j, label_state *ls)
{
    ls->by_label = core_xmalloc((size_t)j->ng * sizeof(label_ix));
    ls->lo = core_xmalloc((size_t)j->nq * sizeof(int64_t));
    ls->hi = core_xmalloc((size_t)j->nq * sizeof(int64_t));
    if (!ls->by_label || !ls->lo || !ls->hi) return core_fail(CMCR_ENOMEM, "out of memory indexing gallery labels");
    for (int64_t h = 0; h < j->ng; h++) ls->by_label[h] = (label_ix){j->gl[h], h};
    qsort(ls->by_label, (size_t)j->ng, sizeof(label_ix), cmp_label_ix);
    for (int64_t i = 0; i < j->nq; i++) {
        int64_t a = 0, b = j->ng, label = j->ql[i];
        while (a < b) { /* first pair with label >= query label */
            int64_t mid = a + (b - a) / 2;
            if (ls->by_label[mid].label < label) a = mid + 1;
            else b = mid;
        }
        ls->lo[i] = a;
        for (b = j->ng; a < b;) { /* first pair with label > query label */
            int64_t mid = a + (b - a) / 2;
            if (ls->by_label[mid].label <= label) a = mid + 1;
            else b = mid;
        }
        ls->hi[i] = a;
    }
    return CMCR_OK;
}

static cmcr_status label_alloc(const eval_job *j, label_state *ls, int64_t qb, int64_t gb, int64_t rel_cap)
{
    size_t d = (size_t)j->dim;
    ls->members = core_xmalloc((size_t)qb * sizeof(int64_t));
    ls->rel_off = core_xmalloc((size_t)(qb + 1) * sizeof(int64_t));
    ls->order = core_xmalloc((size_t)qb * sizeof(int64_t));
    ls->rel = core_xmalloc((size_t)rel_cap * sizeof(rel_item));
    ls->diff = core_xmalloc((size_t)rel_cap * sizeof(int32_t));
    ls->rel_s = core_xmalloc((size_t)rel_cap * sizeof(float));
    ls->starts = core_xmalloc((size_t)(rel_cap + qb) * sizeof(int32_t));
    ls->tables = core_xmalloc((size_t)qb * sizeof(rel_table));
    ls->qbuf = core_xmalloc((size_t)qb * d * sizeof(float));
    ls->grp = core_xmalloc((size_t)qb * d * sizeof(float));
    ls->gbuf = core_xmalloc((size_t)gb * d * sizeof(float));
    ls->scores = core_xmalloc((size_t)(qb * gb) * sizeof(float));
    if (!ls->members || !ls->rel_off || !ls->order || !ls->rel || !ls->diff || !ls->rel_s || !ls->starts || !ls->tables ||
        !ls->qbuf || !ls->grp || !ls->gbuf || !ls->scores)
        return core_fail(CMCR_ENOMEM, "out of memory for retrieval blocks (%lld queries, %lld relevant items)",
                         (long long)qb, (long long)rel_cap);
    return CMCR_OK;
}

static void label_free(label_state *ls)
{
    free(ls->by_label);
    free(ls->lo);
    free(ls->hi);
    free(ls->members);
    free(ls->rel_off);
    free(ls->order);
    free(ls->rel);
    free(ls->diff);
    free(ls->starts);
    free(ls->rel_s);
    free(ls->tables);
    free(ls->qbuf);
    free(ls->grp);
    free(ls->gbuf);
    free(ls->scores);
}

/* Take the next block of evaluated queries from *next on: at most qb queries and at most
 * budget relevant items in total (but always at least one query). Returns its size. */
static int64_t next_block(const eval_job *j, label_state *ls, int64_t *next, int64_t qb, int64_t budget)
{
    int64_t n = 0, total = 0, i = *next;
    ls->rel_off[0] = 0;
    for (; i < j->nq && n < qb; i++) {
        int64_t r = ls->hi[i] - ls->lo[i];
        if (r == 0) continue;
        if (n > 0 && total + r > budget) break;
        ls->members[n++] = i;
        total += r;
        ls->rel_off[n] = total;
    }
    *next = i;
    return n;
}

typedef struct group_key {
    int64_t lo, pos;
} group_key;

static int cmp_group(const void *a, const void *b)
{
    const group_key *x = a, *y = b;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Order the block members so that queries with the same label are adjacent. */
static cmcr_status group_members(const label_state *ls, int64_t n)
{
    group_key *keys = core_xmalloc((size_t)n * sizeof *keys);
    if (!keys) return core_fail(CMCR_ENOMEM, "out of memory grouping queries");
    for (int64_t p = 0; p < n; p++) keys[p] = (group_key){ls->lo[ls->members[p]], p};
    qsort(keys, (size_t)n, sizeof *keys, cmp_group);
    for (int64_t p = 0; p < n; p++) ls->order[p] = keys[p].pos;
    free(keys);
    return CMCR_OK;
}

/* Scores of one label group (members order[a..b), all with relevant range lo..hi) against
 * their relevant gallery rows, gathered in chunks of gb rows. */
static void group_scores(const eval_job *j, label_state *ls, int64_t a, int64_t b, int64_t gb)
{
    size_t d = (size_t)j->dim;
    int64_t m = b - a, lo = ls->lo[ls->members[ls->order[a]]], hi = ls->hi[ls->members[ls->order[a]]];
    for (int64_t t = 0; t < m; t++)
        memcpy(ls->grp + (size_t)t * d, j->q + (size_t)ls->members[ls->order[a + t]] * d, d * sizeof(float));
    for (int64_t c0 = lo; c0 < hi; c0 += gb) {
        int64_t c = min64(gb, hi - c0);
        for (int64_t k = 0; k < c; k++)
            memcpy(ls->gbuf + (size_t)k * d, j->g + (size_t)ls->by_label[c0 + k].idx * d, d * sizeof(float));
        cmcr_dot_rows(ls->grp, m, ls->gbuf, c, j->dim, ls->scores);
        for (int64_t t = 0; t < m; t++) {
            rel_item *r = ls->rel + ls->rel_off[ls->order[a + t]] + (c0 - lo);
            for (int64_t k = 0; k < c; k++) r[k] = (rel_item){ls->scores[t * c + k], ls->by_label[c0 + k].idx};
        }
    }
}

/* Fill and sort every member's relevant items. */
static cmcr_status relevant_scores(const eval_job *j, label_state *ls, int64_t n, int64_t gb)
{
    cmcr_status st = group_members(ls, n);
    if (st) return st;
    for (int64_t a = 0; a < n;) {
        int64_t b = a + 1, lo = ls->lo[ls->members[ls->order[a]]];
        while (b < n && ls->lo[ls->members[ls->order[b]]] == lo) b++;
        group_scores(j, ls, a, b, gb);
        a = b;
    }
    #pragma omp parallel for schedule(dynamic, 16) if (ls->rel_off[n] >= EVAL_PAR_MIN)
    for (int64_t p = 0; p < n; p++) {
        rel_table *t = &ls->tables[p];
        t->r = ls->rel + ls->rel_off[p];
        t->n = ls->rel_off[p + 1] - ls->rel_off[p];
        t->s = ls->rel_s + ls->rel_off[p];
        t->start = ls->starts + ls->rel_off[p] + p;
        qsort(ls->rel + ls->rel_off[p], (size_t)t->n, sizeof(rel_item), cmp_rank);
        table_build(t);
    }
    return CMCR_OK;
}

/* One block of product scores for one query: each non-relevant item marks the first
 * relevant item it outranks. It is placed from its product score when the whole interval
 * score +- delta falls at one position, else re-scored (counted in *rescored) and placed
 * from that. delta is the bf16 bound for bf16 scores and 0 for float32 ones: the relevant
 * items' scores are float32 products too, and re-scoring every item within float32's bound
 * of one of them (about a fifth of the items with 1,000 relevant per query) cost 2.7x. */
static void count_outranking(const eval_job *j, const float *row, int64_t m, int64_t g0, int64_t label,
                                  const rel_table *t, int32_t *diff, const float *q, float delta, int64_t *rescored)
{
    const rel_item *last = &t->r[t->n - 1];
    for (int64_t k = 0; k < m; k++) {
        float hi = row[k] + delta;
        int64_t h = g0 + k;
        if (hi < last->s || !outranks(hi, h, last) || j->gl[h] == label) continue;
        int64_t pos = outrank_pos(t, hi, h);
        if (delta > 0 && pos != outrank_pos(t, row[k] - delta, h)) { /* float32: delta 0, no band */
            float e = own_score(q, j->g + h * j->dim, j->dim);
            (*rescored)++;
            if (!outranks(e, h, last)) continue;
            pos = outrank_pos(t, e, h);
        }
        diff[pos]++;
    }
}

/* The score buffer holds qb x gb floats; with fewer (label-heavy) queries in the block, take
 * proportionally more gallery rows at a time, so that each query's tables (which grow as
 * the block shrinks) are reused over more items before they leave the cache. */
static cmcr_status label_pass(eval_job *j, label_state *ls, int64_t n, int64_t qb, int64_t gb)
{
    size_t d = (size_t)j->dim;
    gb = min64(j->ng, qb * gb / n);
    if (j->bf) gb = min64(gb, j->gh_rows);
    for (int64_t p = 0; p < n; p++)
        memcpy(ls->qbuf + (size_t)p * d, j->q + (size_t)ls->members[p] * d, d * sizeof(float));
    block_queries(j, ls->qbuf, n);
    memset(ls->diff, 0, (size_t)ls->rel_off[n] * sizeof(int32_t));
    int bf = j->bf != NULL;
    for (int64_t g0 = 0; g0 < j->ng; g0 += gb) {
        int64_t m = min64(gb, j->ng - g0), rescored = 0;
        cmcr_status st = block_scores(j, ls->qbuf, n, g0, m, ls->scores, bf);
        if (st) return st;
        #pragma omp parallel for schedule(static) reduction(+ : rescored) if (n * m >= EVAL_PAR_MIN)
        for (int64_t p = 0; p < n; p++) {
            const float *row = ls->scores + p * m;
            int64_t label = j->ql[ls->members[p]];
            count_outranking(j, row, m, g0, label, &ls->tables[p], ls->diff + ls->rel_off[p],
                             ls->qbuf + (size_t)p * d, bf ? j->delta[2 * p + 1] : 0.0f, &rescored);
        }
        j->rescored += rescored;
        bf = keep_bf16(bf, rescored, n, m);
    }
    return CMCR_OK;
}

/* Ranks of every relevant item from the difference array: AP and first rank. */
static void label_results(eval_job *j, const label_state *ls, int64_t n)
{
    for (int64_t p = 0; p < n; p++) {
        int64_t off = ls->rel_off[p], nr = ls->rel_off[p + 1] - off, above = 0;
        const int32_t *diff = ls->diff + off;
        double sum = 0;
        for (int64_t k = 0; k < nr; k++) {
            above += diff[k];
            int64_t rank = k + 1 + above;
            if (k == 0) j->first[j->used] = rank;
            sum += (double)(k + 1) / (double)rank;
        }
        j->ap[j->used++] = sum / (double)nr;
    }
}

static cmcr_status eval_by_label(eval_job *j)
{
    label_state ls = {0};
    int64_t qb = min64(j->qb, j->nq), gb = min64(j->gb, j->ng), max_rel = 0, total = 0, next = 0;
    cmcr_status st = label_index(j, &ls);
    for (int64_t i = 0; !st && i < j->nq; i++) {
        int64_t r = ls.hi[i] - ls.lo[i];
        max_rel = r > max_rel ? r : max_rel;
        total += r;
    }
    if (!st && j->ng > INT32_MAX)
        st = core_fail(CMCR_ENOMEM, "retrieval by label: %lld gallery rows, more than the limit of %d", (long long)j->ng,
                       INT32_MAX);
    if (!st && max_rel == 0)
        st = core_fail(CMCR_EVALUE, "no query label occurs among the %lld gallery labels: nothing to evaluate",
                       (long long)j->ng);
    /* One block holds at most budget relevant items, or a single query with more. */
    int64_t rel_cap = min64(total, j->budget);
    if (!st) st = label_alloc(j, &ls, qb, gb, max_rel > rel_cap ? max_rel : rel_cap);
    j->used = 0;
    while (!st) {
        int64_t n = next_block(j, &ls, &next, qb, j->budget);
        if (n == 0) break;
        st = relevant_scores(j, &ls, n, gb);
        if (!st) st = label_pass(j, &ls, n, qb, gb);
        if (st) break;
        label_results(j, &ls, n);
    }
    label_free(&ls);
    return st;
}

/* ------------------------------------------------------------------ retrieval entry points */

static cmcr_status check_retrieval(const float *queries, int64_t nq, const float *gallery, int64_t ng, int64_t dim,
                                   const int64_t *ql, const int64_t *gl, const cmcr_retrieval_metrics *out)
{
    if (!queries || !gallery || !out) return core_fail(CMCR_EINVAL, "retrieval: queries, gallery and out are required");
    if (nq < 1 || ng < 1) return core_fail(CMCR_EINVAL, "retrieval: needs at least one query and one gallery row "
                                           "(got %lld and %lld)", (long long)nq, (long long)ng);
    if (dim < 1 || dim > INT_MAX) return core_fail(CMCR_EINVAL, "retrieval: width %lld is out of range", (long long)dim);
    if (!ql != !gl) return core_fail(CMCR_EINVAL, "retrieval: give both query and gallery labels, or neither "
                                     "(ground truth by row)");
    if (!ql && nq > ng)
        return core_fail(CMCR_ESHAPE, "retrieval: ground truth by row pairs query i with gallery row i, but there are "
                         "%lld queries and only %lld gallery rows", (long long)nq, (long long)ng);
    cmcr_status st = vm_check_finite(queries, nq, dim, 0, "retrieval: queries");
    return st ? st : vm_check_finite(gallery, ng, dim, 0, "retrieval: gallery");
}

cmcr_status eval_retrieval_blocked(const float *queries, int64_t nq, const float *gallery, int64_t ng,
                                        int64_t dim, const int64_t *query_labels, const int64_t *gallery_labels,
                                        int64_t query_block, int64_t gallery_block, int64_t rel_budget,
                                        const cmcr_retrieval_params *params, cmcr_retrieval_metrics *out)
{
    cmcr_status st = check_retrieval(queries, nq, gallery, ng, dim, query_labels, gallery_labels, out);
    if (st) return st;
    if (query_block < 1 || gallery_block < 1 || rel_budget < 1 || query_block * gallery_block > ((int64_t)1 << 28))
        return core_fail(CMCR_EINVAL, "retrieval: bad block sizes");
    memset(out, 0, sizeof *out);
    eval_job j = {.q = queries, .g = gallery, .nq = nq, .ng = ng, .dim = dim, .ql = query_labels,
                  .gl = gallery_labels, .qb = query_block, .gb = gallery_block, .budget = rel_budget};
    j.first = core_xmalloc((size_t)nq * sizeof(int64_t));
    j.ap = core_xmalloc((size_t)nq * sizeof(double));
    if (!j.first || !j.ap) st = core_fail(CMCR_ENOMEM, "out of memory for %lld queries", (long long)nq);
    if (!st) st = bounds_setup(&j, params && params->bf16);
    if (!st) st = query_labels ? eval_by_label(&j) : eval_by_row(&j);
    if (!st) st = summarize(&j, out);
    out->rescored = j.rescored;
    out->scored_bf16 = j.scored_bf16;
    bounds_teardown(&j);
    free(j.first);
    free(j.ap);
    return st;
}

cmcr_status cmcr_eval_retrieval_ex(const float *queries, int64_t nq, const float *gallery, int64_t ng, int64_t dim,
                                   const int64_t *query_labels, const int64_t *gallery_labels,
                                   const cmcr_retrieval_params *params, cmcr_retrieval_metrics *out)
{
    return eval_retrieval_blocked(queries, nq, gallery, ng, dim, query_labels, gallery_labels, EVAL_QUERY_BLOCK,
                                       EVAL_GALLERY_BLOCK, EVAL_REL_BUDGET, params, out);
}

cmcr_status cmcr_eval_retrieval(const float *queries, int64_t nq, const float *gallery, int64_t ng, int64_t dim,
                                const int64_t *query_labels, const int64_t *gallery_labels,
                                cmcr_retrieval_metrics *out)
{
    return cmcr_eval_retrieval_ex(queries, nq, gallery, ng, dim, query_labels, gallery_labels, NULL, out);
}

/* ------------------------------------------------------------------ zero-shot */

static cmcr_status check_zeroshot(const float *inputs, int64_t n, const float *classes, int64_t nclasses, int64_t dim,
                                  const int64_t *labels, const cmcr_zeroshot_metrics *out)
{
    if (!inputs || !classes || !labels || !out)
        return core_fail(CMCR_EINVAL, "zero-shot: inputs, classes, labels and out are required");
    if (n < 1 || nclasses < 1) return core_fail(CMCR_EINVAL, "zero-shot: needs at least one input and one class "
                                                "(got %lld and %lld)", (long long)n, (long long)nclasses);
    if (dim < 1 || dim > INT_MAX) return core_fail(CMCR_EINVAL, "zero-shot: width %lld is out of range", (long long)dim);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= nclasses)
            return core_fail(CMCR_EINVAL, "zero-shot: label %lld of input %lld is outside [0, %lld) (%lld classes)",
                             (long long)labels[i], (long long)i, (long long)nclasses, (long long)nclasses);
    cmcr_status st = vm_check_finite(inputs, n, dim, 0, "zero-shot: inputs");
    return st ? st : vm_check_finite(classes, nclasses, dim, 0, "zero-shot: classes");
}

/* Rank (1-based) of class y in one row of class scores. */
static int64_t class_rank(const float *row, int64_t nclasses, int64_t y)
{
    float s = row[y];
    int64_t c = 0;
    for (int64_t k = 0; k < y; k++) c += row[k] >= s;
    for (int64_t k = y + 1; k < nclasses; k++) c += row[k] > s;
    return c + 1;
}

cmcr_status cmcr_eval_zeroshot(const float *inputs, int64_t n, const float *classes, int64_t nclasses, int64_t dim,
                               const int64_t *labels, cmcr_zeroshot_metrics *out, double *per_class_acc)
{
    cmcr_status st = check_zeroshot(inputs, n, classes, nclasses, dim, labels, out);
    if (st) return st;
    int64_t block = min64(n, ZS_SCORE_BUDGET / nclasses > 0 ? ZS_SCORE_BUDGET / nclasses : 1);
    float *scores = core_xmalloc((size_t)(block * nclasses) * sizeof(float));
    int64_t *rank = core_xmalloc((size_t)n * sizeof(int64_t));
    if (!scores || !rank) {
        free(scores);
        free(rank);
        return core_fail(CMCR_ENOMEM, "zero-shot: out of memory for %lld x %lld scores", (long long)block,
                         (long long)nclasses);
    }
    for (int64_t i0 = 0; i0 < n; i0 += block) {
        int64_t m = min64(block, n - i0);
        cmcr_dot_rows(inputs + i0 * dim, m, classes, nclasses, dim, scores);
        #pragma omp parallel for schedule(static) if (m * nclasses >= EVAL_PAR_MIN)
        for (int64_t i = 0; i < m; i++) rank[i0 + i] = class_rank(scores + i * nclasses, nclasses, labels[i0 + i]);
    }
    free(scores);
    int64_t top1 = 0, top5 = 0;
    for (int64_t i = 0; i < n; i++) {
        top1 += rank[i] == 1;
        top5 += rank[i] <= 5;
    }
    out->inputs = n;
    out->top1 = (double)top1 / (double)n;
    out->top5 = (double)top5 / (double)n;
    st = CMCR_OK;
    if (per_class_acc) {
        int64_t *count = calloc((size_t)nclasses, 2 * sizeof(int64_t));
        if (!count) st = core_fail(CMCR_ENOMEM, "zero-shot: out of memory for %lld classes", (long long)nclasses);
        for (int64_t i = 0; count && i < n; i++) {
            count[2 * labels[i]]++;
            count[2 * labels[i] + 1] += rank[i] == 1;
        }
        for (int64_t c = 0; count && c < nclasses; c++)
            per_class_acc[c] = count[2 * c] ? (double)count[2 * c + 1] / (double)count[2 * c] : NAN;
        free(count);
    }
    free(rank);
    return st;
}

/* ------------------------------------------------------------------ labels */

cmcr_status cmcr_labels_load(const char *path, int64_t **labels, int64_t *n)
{
    if (!labels || !n || !path) return core_fail(CMCR_EINVAL, "labels: path, labels and n are required");
    *labels = NULL;
    *n = 0;
    cmcr_tensors *ts;
    cmcr_status st = cmcr_tensors_load(path, CMCR_FORMAT_AUTO, &ts);
    if (st) return st;
    const cmcr_tensor *t = cmcr_tensors_count(ts) == 1 ? cmcr_tensors_at(ts, 0) : NULL;
    if (!t) st = core_fail(CMCR_ESHAPE, "%s: expected one label array, found %zu tensors", path,
                           cmcr_tensors_count(ts));
    else if (t->dtype != CMCR_I32 && t->dtype != CMCR_I64)
        st = core_fail(CMCR_EUNSUPPORTED, "%s: labels must be integers (int32 or int64), not %s; convert with "
                       "arr.astype('int64')", path, cmcr_dtype_name(t->dtype));
    else if (!(t->ndim == 1 || (t->ndim == 2 && t->shape[1] == 1)))
        st = core_fail(CMCR_ESHAPE, "%s: labels must be 1-D (or one column), not %d-D with %lld columns", path,
                       t->ndim, (long long)(t->ndim >= 2 ? t->shape[1] : 0));
    else if (t->shape[0] < 1)
        st = core_fail(CMCR_ESHAPE, "%s: holds no labels", path);
    int64_t count = st ? 0 : t->shape[0];
    int64_t *out = st ? NULL : core_xmalloc((size_t)count * sizeof(int64_t));
    if (!st && !out) st = core_fail(CMCR_ENOMEM, "%s: cannot allocate %lld labels", path, (long long)count);
    for (int64_t i = 0; !st && i < count; i++) {
        if (t->dtype == CMCR_I64) {
            memcpy(&out[i], (const char *)t->data + 8 * i, 8);
        } else {
            int32_t v;
            memcpy(&v, (const char *)t->data + 4 * i, 4);
            out[i] = v;
        }
    }
    cmcr_tensors_free(ts);
    if (st) return st;
    *labels = out;
    *n = count;
    return CMCR_OK;
}
