/* train.c - C-MCR training: pseudo embeddings (semantic consistency), noisy batches
 * (semantic completion), projectors in training mode, inter-MCR InfoNCE on the native and
 * pseudo pairs, intra-MCR alignment, Adam/AdamW with warm-up and cosine decay. */
#include "mcr/train.h"
#include "mcr/train_settings.h"
#include "runtime/vmath.h"
#include "nn/layers.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ validation */

/* The table's ranges (mcr/train_settings.h), then what ties settings together. */
static cmcr_status check_params(const cmcr_train_params *p)
{
    cmcr_status st;
    if ((st = head_check_shape(&p->shape_a, "projector A")) || (st = head_check_shape(&p->shape_b, "projector B")))
        return st;
    if (p->shape_a.out_dim != p->shape_b.out_dim)
        return core_fail(CMCR_ESHAPE, "projectors A and B must share the output width (%lld vs %lld)",
                         (long long)p->shape_a.out_dim, (long long)p->shape_b.out_dim);
    if ((st = train_check_settings(p))) return st;
    if (p->min_lr > p->lr) return core_fail(CMCR_EINVAL, "min_lr must be between 0 and %g, not %g", p->lr, p->min_lr);
    return CMCR_OK;
}

static cmcr_status check_matrix(const float *x, int64_t rows, int64_t cols, const char *name)
{
    if (!x || rows < 1) return core_fail(CMCR_EINVAL, "%s is empty", name);
    return vm_check_finite(x, rows, cols, 0, "%s", name);
}

static cmcr_status check_data(const cmcr_train_params *p, const cmcr_train_data *d)
{
    cmcr_status st;
    if (d->n_overlap < 2) return core_fail(CMCR_EINVAL, "the overlap set needs at least 2 rows, has %lld",
                                           (long long)d->n_overlap);
    if (d->dim_a != p->shape_a.in_dim)
        return core_fail(CMCR_ESHAPE, "overlap-a rows are %lld wide but projector A expects %lld", (long long)d->dim_a,
                         (long long)p->shape_a.in_dim);
    if (d->dim_b != p->shape_b.in_dim)
        return core_fail(CMCR_ESHAPE, "overlap-b rows are %lld wide but projector B expects %lld", (long long)d->dim_b,
                         (long long)p->shape_b.in_dim);
    if ((st = check_matrix(d->overlap_a, d->n_overlap, d->dim_a, "overlap-a")) ||
        (st = check_matrix(d->overlap_b, d->n_overlap, d->dim_b, "overlap-b")))
        return st;
    if (p->consistency && d->pseudo_a && d->pseudo_b) {
        if ((st = check_matrix(d->pseudo_a, d->n_overlap, d->dim_a, "pseudo-a"))) return st;
        return check_matrix(d->pseudo_b, d->n_overlap, d->dim_b, "pseudo-b");
    }
    if (p->consistency &&
        ((st = check_matrix(d->memory_a, d->n_memory_a, d->dim_a, "memory-a")) ||
         (st = check_matrix(d->memory_b, d->n_memory_b, d->dim_b, "memory-b"))))
        return st;
    return CMCR_OK;
}

/* ------------------------------------------------------------------ setup */

static float *normalized_copy(const float *x, int64_t rows, int64_t cols)
{
    float *y = core_xmalloc((size_t)(rows * cols) * sizeof(float));
    if (!y) return NULL;
    memcpy(y, x, (size_t)(rows * cols) * sizeof(float));
    cmcr_normalize_rows(y, rows, cols);
    return y;
}

static uint64_t data_hash(const cmcr_train_data *d, int consistency)
{
    uint64_t h = cmcr_hash_bytes(d->overlap_a, (size_t)(d->n_overlap * d->dim_a) * sizeof(float), 1);
    h = cmcr_hash_bytes(d->overlap_b, (size_t)(d->n_overlap * d->dim_b) * sizeof(float), h);
    if (consistency && d->pseudo_a && d->pseudo_b) {
        h = cmcr_hash_bytes(d->pseudo_a, (size_t)(d->n_overlap * d->dim_a) * sizeof(float), h);
        h = cmcr_hash_bytes(d->pseudo_b, (size_t)(d->n_overlap * d->dim_b) * sizeof(float), h);
    } else if (consistency) {
        h = cmcr_hash_bytes(d->memory_a, (size_t)(d->n_memory_a * d->dim_a) * sizeof(float), h);
        h = cmcr_hash_bytes(d->memory_b, (size_t)(d->n_memory_b * d->dim_b) * sizeof(float), h);
    }
    return h;
}

/* Input k's rows: the caller's array in place (borrowed, normalised per batch), or a
 * normalised copy. */
static cmcr_status take_input(cmcr_trainer *t, int k, const float *src, int borrow)
{
    if (borrow) {
        t->data[k] = src;
        return CMCR_OK;
    }
    t->owned[k] = normalized_copy(src, t->n, t->dim[k / 2]);
    if (!t->owned[k]) return core_fail(CMCR_ENOMEM, "out of memory copying the training inputs");
    t->data[k] = t->owned[k];
    t->normalized[k] = 1;
    return CMCR_OK;
}

/* Pseudo embeddings x_A (from memory A) and y_B (from memory B), or s itself when off. */
static cmcr_status build_pseudo(cmcr_trainer *t, const cmcr_train_data *d)
{
    if (!t->p.consistency) {
        for (int k = IN_XA; k <= IN_YB; k += 2) {
            t->data[k] = t->data[k - 1];
            t->normalized[k] = t->normalized[k - 1];
        }
        return CMCR_OK;
    }
    if (d->pseudo_a && d->pseudo_b) {
        cmcr_status st = take_input(t, IN_XA, d->pseudo_a, d->borrow);
        return st ? st : take_input(t, IN_YB, d->pseudo_b, d->borrow);
    }
    cmcr_aggregate_params ap = cmcr_aggregate_default_params();
    ap.tau_mem = t->p.tau_mem;
    ap.top_k = t->p.agg_top_k;
    ap.bf16 = t->p.bf16; /* one precision for all of a run's products (the cache keys it) */
    ap.mpi_comm = t->dist.size > 1 ? t->p.mpi_comm : NULL;
    const float *mem[2] = {d->memory_a, d->memory_b};
    const int64_t nm[2] = {d->n_memory_a, d->n_memory_b};
    for (int s = 0; s < 2; s++) {
        int k = s == 0 ? IN_XA : IN_YB, hit = 0;
        int64_t lo, hi; /* with several ranks each aggregates its slice of the memory */
        dist_range(nm[s], t->dist.rank, t->dist.size, &lo, &hi);
        /* the caller's overlap rows as queries (aggregation normalises them), exactly as
         * `cmcr aggregate` does: its output passed as pseudo embeddings trains identically */
        const float *queries = s == 0 ? d->overlap_a : d->overlap_b;
        t->owned[k] = core_xmalloc((size_t)(t->n * t->dim[s]) * sizeof(float));
        t->data[k] = t->owned[k];
        t->normalized[k] = 1;
        cmcr_status st = dist_agree(&t->dist, t->owned[k] ? CMCR_OK : core_fail(CMCR_ENOMEM, "out of memory for "
                                    "pseudo embeddings"), "allocating pseudo embeddings");
        if (!st) st = cmcr_aggregate_cached(t->p.cache_dir, queries, t->n, mem[s] + lo * t->dim[s], hi - lo,
                                            t->dim[s], &ap, t->owned[k], &hit);
        if (st) return st;
        core_log(CMCR_LOG_INFO, "pseudo %s embeddings: %s", s == 0 ? "x_A" : "y_B",
                 hit ? "from the cache" : "computed");
    }
    return CMCR_OK;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Carve the float workspace out of one allocation: per-row buffers for this rank's b rows,
 * the b x B logits, and with several ranks the gathered outputs and gradient shards. */
static cmcr_status alloc_workspace(cmcr_trainer *t)
{
    int64_t B = t->batch, b = t->lb.rows, out = t->p.shape_a.out_dim;
    int many = t->dist.size > 1;
    const cmcr_head_shape *sh[2] = {&t->p.shape_a, &t->p.shape_b};
    int64_t hid[2], two[2], maxhid = 0;
    for (int s = 0; s < 2; s++) {
        two[s] = sh[s]->layers == 2;
        hid[s] = two[s] ? sh[s]->hidden : sh[s]->out_dim;
        maxhid = max64(maxhid, hid[s]);
    }
    size_t total = 0;
    for (int k = 0; k < 4; k++) {
        int s = k / 2;
        total += (size_t)(b * t->dim[s]);                      /* in */
        total += (size_t)(b * hid[s] + hid[s]);                /* xhat1, invstd1 */
        total += (size_t)(two[s] * (b * out + out) + b * out + b); /* xhat2, invstd2 (two layers); z, norms */
        total += (size_t)(b * out);                            /* dz */
    }
    /* a1 and da live in the forward and backward passes, the logits between them: they share */
    int64_t shared = max64(2 * b * maxhid, b * B);
    total += (size_t)(shared + 2 * B);                         /* a1 + da or logits; colv */
    if (many) total += (size_t)(2 * B * out + b * out);        /* zb_all, dzb_all, dzb_mine */
    if (t->p.bf16) { /* the largest A and B operands of the step's products, rounded */
        int64_t wide = max64(max64(maxhid, out), max64(t->dim[0], t->dim[1])); /* any operand width */
        size_t sa = (size_t)max64(b * B, b * wide), sb = (size_t)max64(max64(B * out, b * wide), wide * wide);
        t->bf16_scratch = core_xmalloc((sa + sb) * sizeof(uint16_t));
        t->mp = (mm_prec){.bf16 = 1, .sa = t->bf16_scratch, .sb = t->bf16_scratch ? t->bf16_scratch + sa : NULL};
        if (!t->bf16_scratch)
            return core_fail(CMCR_ENOMEM, "cannot allocate %.1f MiB of bfloat16 scratch (batch %lld)",
                             (double)(sa + sb) * 2 / 1048576.0, (long long)B);
    }
    t->slab = core_xmalloc(total * sizeof(float));
    t->work = core_xmalloc(sizeof(double) * layers_work_doubles(b, max64(maxhid, out), B));
    if (!t->slab || !t->work)
        return core_fail(CMCR_ENOMEM, "cannot allocate %.1f MiB of training workspace (batch %lld)",
                         (double)total * 4 / 1048576.0, (long long)B);
    float *p = t->slab;
    for (int k = 0; k < 4; k++) {
        int s = k / 2;
        head_cache *c = &t->cache[k];
        t->in[k] = p; p += b * t->dim[s];
        c->xhat1 = p; p += b * hid[s];
        c->invstd1 = p; p += hid[s];
        c->xhat2 = two[s] ? p : NULL; p += two[s] * b * out;
        c->invstd2 = two[s] ? p : NULL; p += two[s] * out;
        c->z = p; p += b * out;
        c->norms = p; p += b;
        t->dz[k] = p; p += b * out;
    }
    t->a1 = p;
    t->da = p + b * maxhid;
    t->nce.logits = p;
    p += shared;
    t->nce.colv = p; p += 2 * B;
    if (many) {
        t->nce.zb_all = p; p += B * out;
        t->nce.dzb_all = p; p += B * out;
        t->nce.dzb_mine = p;
    }
    return CMCR_OK;
}

static cmcr_status alloc_state(cmcr_trainer *t)
{
    cmcr_status st = cmcr_model_new(&t->p.shape_a, &t->p.shape_b, t->p.seed, &t->model);
    if (st) return st;
    size_t n = t->model->nparams;
    t->grad = calloc(n, sizeof(float));
    t->adam_m = calloc(n, sizeof(float));
    t->adam_v = calloc(n, sizeof(float));
    t->perm = malloc((size_t)t->n * sizeof(int64_t));
    if (!t->grad || !t->adam_m || !t->adam_v || !t->perm)
        return core_fail(CMCR_ENOMEM, "out of memory for the optimizer state");
    const cmcr_head_shape *sh[2] = {&t->p.shape_a, &t->p.shape_b};
    float *g = t->grad;
    for (int s = 0; s < 2; s++) {
        head_bind(&t->grad_heads[s], sh[s], g, NULL);
        g += head_param_count(sh[s]);
    }
    t->perm_epoch = -1;
    return alloc_workspace(t);
}

static void apply_threads(int threads)
{
    if (threads <= 0) return;
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
}

cmcr_status cmcr_trainer_new(const cmcr_train_params *p, const cmcr_train_data *d, cmcr_trainer **out)
{
    *out = NULL;
    cmcr_status st;
    if ((st = check_params(p)) || (st = check_data(p, d))) return st;
    apply_threads(p->threads);
    dist_group dist;
    if ((st = dist_open(p->mpi_comm, &dist))) return st;
    if (p->bf16 && (st = dist_agree(&dist, mm_bf16_check(), "checking bfloat16 support"))) return st;
    cmcr_trainer *t = calloc(1, sizeof *t);
    if (!t) return core_fail(CMCR_ENOMEM, "out of memory");
    t->p = *p;
    t->dist = dist;
    t->n = d->n_overlap;
    t->dim[0] = d->dim_a;
    t->dim[1] = d->dim_b;
    t->batch = p->batch < t->n ? p->batch : t->n;
    if (t->batch < p->batch)
        core_log(CMCR_LOG_WARN, "batch %lld is larger than the %lld overlap rows: using %lld", (long long)p->batch,
                 (long long)t->n, (long long)t->batch);
    t->steps_per_epoch = t->n / t->batch; /* the last partial batch of an epoch is dropped */
    t->lb.dist = &t->dist;
    t->lb.total = t->batch;
    dist_range(t->batch, dist.rank, dist.size, &t->lb.first, &t->lb.rows);
    t->lb.rows -= t->lb.first;
    if (t->lb.rows < 1) st = core_fail(CMCR_EINVAL, "batch %lld is smaller than the %d ranks sharing it",
                                       (long long)t->batch, dist.size);
    if (__builtin_mul_overflow(t->steps_per_epoch, p->epochs, &t->total_steps))
        st = core_fail(CMCR_EINVAL, "epochs: %lld epochs of %lld steps overflow the step count (at most %lld steps)",
                       (long long)p->epochs, (long long)t->steps_per_epoch, (long long)INT64_MAX);
    t->data_hash = data_hash(d, p->consistency);
    t->provenance = core_strdup(d->provenance ? d->provenance : "{}");
    if (!st && !t->provenance) st = core_fail(CMCR_ENOMEM, "out of memory");
    if (!st) st = take_input(t, IN_SA, d->overlap_a, d->borrow);
    if (!st) st = take_input(t, IN_SB, d->overlap_b, d->borrow);
    st = dist_agree(&t->dist, st, "copying the overlap set");
    if (!st) st = build_pseudo(t, d);
    if (!st) st = dist_agree(&t->dist, alloc_state(t), "allocating the training state");
    if (st) {
        cmcr_trainer_free(t);
        return st;
    }
    *out = t;
    return CMCR_OK;
}

void cmcr_trainer_free(cmcr_trainer *t)
{
    if (!t) return;
    for (int k = 0; k < 4; k++) free(t->owned[k]);
    cmcr_model_free(t->model);
    free(t->grad);
    free(t->adam_m);
    free(t->adam_v);
    free(t->perm);
    free(t->slab);
    free(t->bf16_scratch);
    free(t->work);
    free(t->provenance);
    free(t);
}

const cmcr_model *cmcr_trainer_model(const cmcr_trainer *t) { return t->model; }
int64_t cmcr_trainer_step(const cmcr_trainer *t) { return t->step; }

/* ------------------------------------------------------------------ one step */

/* a1: B x hid scratch for the first block's output (recomputed in the backward pass). */
static void head_forward(const mm_prec *mp, model_head *h, head_cache *c, const float *x, float *a1,
                         const layer_batch *lb, float momentum, double *work)
{
    int64_t hid = h->hid, out = h->shape.out_dim, B = lb->rows;
    c->x = x;
    mm_prec_linear(mp, x, h->w1, h->b1, B, h->shape.in_dim, hid, a1);
    batchnorm_forward(a1, c->xhat1, c->invstd1, h->g1, h->be1, h->rm1, h->rv1, momentum, CMCR_BN_EPS, 1, lb, hid,
                      work);
    h->nbt1++;
    if (h->shape.layers == 2) {
        mm_prec_linear(mp, a1, h->w2, h->b2, B, hid, out, c->z);
        batchnorm_forward(c->z, c->xhat2, c->invstd2, h->g2, h->be2, h->rm2, h->rv2, momentum, CMCR_BN_EPS, 0, lb, out,
                          work);
        h->nbt2++;
    } else {
        memcpy(c->z, a1, (size_t)(B * out) * sizeof(float));
    }
    normalize_forward(c->z, c->norms, B, out);
}

/* dz: gradient w.r.t. the normalised output (consumed). Accumulates into g.
 * Every Linear here feeds a BatchNorm, which subtracts the batch mean: the Linear bias has
 * an exactly zero gradient. We leave it at zero instead of summing rounding noise, which
 * Adam would amplify (it normalises the step) into a random walk of the bias and of the
 * running mean that follows it; PyTorch does take those noise steps. */
static void head_backward(const mm_prec *mp, const model_head *h, model_head *g, const head_cache *c, float *dz,
                          float *a1, float *da, const layer_batch *lb, double *work)
{
    int64_t hid = h->hid, out = h->shape.out_dim, in = h->shape.in_dim, B = lb->rows;
    batchnorm_recompute(a1, c->xhat1, h->g1, h->be1, 1, B, hid);
    normalize_backward(dz, c->z, c->norms, B, out);
    float *dfirst = dz; /* gradient w.r.t. the first block's output a1 */
    if (h->shape.layers == 2) {
        batchnorm_backward(dz, NULL, c->xhat2, c->invstd2, h->g2, g->g2, g->be2, 0, lb, out, work);
        linear_backward(mp, da, g->w2, NULL, dz, a1, h->w2, B, hid, out, work);
        dfirst = da;
    }
    batchnorm_backward(dfirst, a1, c->xhat1, c->invstd1, h->g1, g->g1, g->be1, 1, lb, hid, work);
    linear_backward(mp, NULL, g->w1, NULL, dfirst, c->x, h->w1, B, in, hid, work);
}

static int uses_pseudo(const cmcr_train_params *p) { return p->pseudo_pair || p->intra; }

train_loss train_forward_backward(cmcr_trainer *t)
{
    const cmcr_train_params *p = &t->p;
    const layer_batch *lb = &t->lb;
    int64_t out = p->shape_a.out_dim, b = lb->rows;
    int pseudo = uses_pseudo(p);
    train_loss L = {0, 0, 0, 0};
    memset(t->grad, 0, t->model->nparams * sizeof(float));
    for (int k = 0; k < 4; k++) {
        if (!pseudo && (k == IN_XA || k == IN_YB)) continue;
        head_forward(&t->mp, &t->model->heads[k / 2], &t->cache[k], t->in[k], t->a1, lb, (float)p->bn_momentum,
                     t->work);
        memset(t->dz[k], 0, (size_t)(b * out) * sizeof(float));
    }
    head_cache *c = t->cache;
    L.native = infonce(&t->mp, c[IN_SA].z, c[IN_SB].z, t->dz[IN_SA], t->dz[IN_SB], &t->nce, p->tau, 1.0, lb, out,
                       t->work);
    if (p->pseudo_pair)
        L.pseudo = infonce(&t->mp, c[IN_XA].z, c[IN_YB].z, t->dz[IN_XA], t->dz[IN_YB], &t->nce, p->tau, 1.0, lb,
                           out, t->work);
    if (p->intra) {
        L.intra = intra_loss(c[IN_SA].z, c[IN_XA].z, t->dz[IN_SA], t->dz[IN_XA], p->intra_squared, p->lambda_intra,
                             lb, out, t->work);
        L.intra += intra_loss(c[IN_SB].z, c[IN_YB].z, t->dz[IN_SB], t->dz[IN_YB], p->intra_squared,
                              p->lambda_intra, lb, out, t->work);
    }
    double terms[3] = {L.native, L.pseudo, L.intra}; /* each rank's share: sum them */
    dist_sum_d(&t->dist, terms, 3);
    L.native = terms[0];
    L.pseudo = terms[1];
    L.intra = terms[2];
    L.total = L.native + L.pseudo + p->lambda_intra * L.intra;
    for (int k = 0; k < 4; k++) {
        if (!pseudo && (k == IN_XA || k == IN_YB)) continue;
        head_backward(&t->mp, &t->model->heads[k / 2], &t->grad_heads[k / 2], &c[k], t->dz[k], t->a1, t->da, lb,
                      t->work);
    }
    dist_sum_f(&t->dist, t->grad, (int64_t)t->model->nparams);
    return L;
}

void train_make_batch(cmcr_trainer *t, const int64_t *idx, float *const *noise)
{
    /* this rank takes rows [first, first + rows) of the global batch of t->batch rows */
    double std = sqrt(t->p.sigma2);
    int64_t b = t->lb.rows, first = t->lb.first;
    for (int k = 0; k < 4; k++) {
        int64_t w = t->dim[k / 2];
        float *dst = t->in[k];
        const float *src = t->data[k];
        #pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < b; r++) {
            int64_t g = first + r; /* row of the global batch */
            float *row = dst + r * w;
            memcpy(row, src + idx[g] * w, (size_t)w * sizeof(float));
            if (!t->normalized[k]) vm_normalize_row(row, row, w); /* as the copy would be */
            if (!t->p.completion) continue;
            if (noise) {
                for (int64_t j = 0; j < w; j++) row[j] += noise[k][g * w + j];
            } else {
                rng_state rng;
                rng_seed(&rng, rng_seed_mix(t->p.seed, 0x6e6f697365ull + (uint64_t)t->step, (uint64_t)k,
                                                  (uint64_t)g));
                float buf[64];
                for (int64_t j0 = 0; j0 < w; j0 += 64) {
                    int64_t n = w - j0 < 64 ? w - j0 : 64;
                    rng_fill_normal(&rng, buf, n, std);
                    for (int64_t j = 0; j < n; j++) row[j0 + j] += buf[j];
                }
            }
            vm_normalize_row(row, row, w);
        }
    }
}

double train_lr(const cmcr_train_params *p, int64_t step, int64_t total_steps)
{
    if (p->warmup_steps > 0 && step <= p->warmup_steps) return p->lr * (double)step / (double)p->warmup_steps;
    if (!p->cosine) return p->lr;
    int64_t span = total_steps - p->warmup_steps;
    double progress = span > 0 ? (double)(step - 1 - p->warmup_steps) / (double)span : 0.0;
    if (progress < 0) progress = 0;
    return p->min_lr + (p->lr - p->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
}

/* Adam/AdamW on one segment of the flat parameter array, as torch.optim.Adam(W) computes it. */
static void adam_segment(const cmcr_train_params *p, float *w, const float *g, float *m, float *v, int64_t n,
                         double lr, double wd, int64_t step)
{
    double bc1 = 1.0 - pow(p->beta1, (double)step), bc2 = 1.0 - pow(p->beta2, (double)step);
    double step_size = lr / bc1, bc2_sqrt = sqrt(bc2);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        double gi = g[i];
        if (wd != 0 && !p->adamw) gi += wd * w[i];
        if (wd != 0 && p->adamw) w[i] = (float)(w[i] * (1.0 - lr * wd));
        m[i] = (float)(p->beta1 * m[i] + (1.0 - p->beta1) * gi);
        v[i] = (float)(p->beta2 * v[i] + (1.0 - p->beta2) * gi * gi);
        double denom = sqrt((double)v[i]) / bc2_sqrt + p->adam_eps;
        w[i] = (float)(w[i] - step_size * m[i] / denom);
    }
}

/* Tensor by tensor of the flat layout (head_tensors), weight decay where the table says. */
void train_adam(cmcr_trainer *t, int64_t step, double lr)
{
    float *w = t->model->params;
    size_t off = 0;
    for (int s = 0; s < 2; s++) {
        const cmcr_head_shape *sh = &t->model->heads[s].shape;
        for (int blk = 0; blk < sh->layers; blk++)
            for (int k = 0; k < HEAD_TENSORS; k++) {
                int64_t n = head_tensor_params(sh, blk, &head_tensors[k]);
                double wd = head_tensors[k].decay ? t->p.weight_decay : 0.0;
                if (n > 0) adam_segment(&t->p, w + off, t->grad + off, t->adam_m + off, t->adam_v + off, n, lr, wd, step);
                off += (size_t)n;
            }
    }
}

static void ensure_perm(cmcr_trainer *t, int64_t epoch)
{
    if (t->perm_epoch == epoch) return;
    rng_state r;
    rng_seed(&r, rng_seed_mix(t->p.seed, 0x7065726dull, (uint64_t)epoch, 0));
    for (int64_t i = 0; i < t->n; i++) t->perm[i] = i;
    for (int64_t i = t->n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)rng_below(&r, (uint64_t)i + 1), tmp = t->perm[i];
        t->perm[i] = t->perm[j];
        t->perm[j] = tmp;
    }
    t->perm_epoch = epoch;
}

/* bf16 products that ran in float32 are correct, only slower: say so once per run. */
static void warn_fallbacks(cmcr_trainer *t, long long before)
{
    long long n = mm_prec_fallbacks() - before;
    if (n > 0 && !t->warned_fallback) {
        core_log(CMCR_LOG_WARN, "%lld bfloat16 matrix products of step %lld ran in float32 (oneDNN could not run "
                 "them in bf16)", n, (long long)t->step);
        t->warned_fallback = 1;
    }
}

static train_loss step_once(cmcr_trainer *t, double *lr)
{
    long long before = mm_prec_fallbacks();
    int64_t epoch = t->step / t->steps_per_epoch, pos = t->step % t->steps_per_epoch;
    ensure_perm(t, epoch);
    train_make_batch(t, t->perm + pos * t->batch, NULL);
    train_loss L = train_forward_backward(t);
    *lr = train_lr(&t->p, t->step + 1, t->total_steps);
    train_adam(t, t->step + 1, *lr);
    t->step++;
    if (t->p.bf16) warn_fallbacks(t, before);
    return L;
}

/* Rank 0 writes (every rank holds the same state); all ranks learn whether it worked. */
static cmcr_status save_if_wanted(const cmcr_trainer *t, int force)
{
    if (!t->p.checkpoint_path) return CMCR_OK;
    if (!force && (t->p.checkpoint_every <= 0 || t->step % t->p.checkpoint_every != 0)) return CMCR_OK;
    cmcr_status st = t->dist.rank == 0 ? cmcr_trainer_save_checkpoint(t, t->p.checkpoint_path) : CMCR_OK;
    return dist_agree(&t->dist, st, "writing the checkpoint");
}

cmcr_status cmcr_trainer_run(cmcr_trainer *t, cmcr_train_callback cb, void *user)
{
    double start = core_now_seconds();
    cmcr_status st = CMCR_OK;
    while (t->step < t->total_steps) {
        double t0 = core_now_seconds(), lr;
        train_loss L = step_once(t, &lr);
        if (!isfinite(L.total))
            return core_fail(CMCR_EVALUE, "loss became %g at step %lld (try a lower learning rate)", L.total,
                             (long long)t->step);
        double dt = core_now_seconds() - t0;
        cmcr_train_stats s = {t->step, t->total_steps, (t->step - 1) / t->steps_per_epoch + 1, t->p.epochs,
                              L.total, L.native, L.pseudo, L.intra, lr, (double)t->batch / (dt > 0 ? dt : 1e-9),
                              core_now_seconds() - start};
        if ((st = save_if_wanted(t, 0))) return st;
        int stop = cb ? cb(&s, user) != 0 : 0;
        if (dist_max_i(&t->dist, stop)) { /* a signal may reach the ranks at different steps */
            if ((st = save_if_wanted(t, 1))) return st;
            return core_fail(CMCR_EINTERRUPTED, "stopped at step %lld of %lld%s%s", (long long)t->step,
                             (long long)t->total_steps, t->p.checkpoint_path ? "; checkpoint written to " : "",
                             t->p.checkpoint_path ? t->p.checkpoint_path : "");
        }
    }
    return save_if_wanted(t, 1);
}
