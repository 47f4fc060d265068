/* synth.c - the built-in synthetic two-MCR world (docs/method.md section 11, docs/synthetic-world.md).
 *
 * Every item is a latent vector h (its concept plus instance variation). MCR m in {A, B} has
 * its own random semantic encoder phi_m(h) = tanh(W1_m h); modality t of that MCR embeds an
 * item as
 *     e_t(h) = normalize( D_t W2_m (phi_m(h) + misalignment noise) + offset_t + U_t nu )
 * with D_t a per-modality distortion close to the identity, offset_t the modality's cone and
 * U_t nu its nuisance factors. The equations, the meaning of each knob and the measured gap
 * are in docs/synthetic-world.md. */
#include "runtime/core.h"
#include "runtime/file.h"
#include "io/io.h"
#include "runtime/rng.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fixed shape of the generator; the knobs in cmcr_synth_params multiply these levels. */
#define CONCEPT_SPREAD 0.8  /* std of a concept around its cluster centre (centre std 1) */
#define INSTANCE_STD 0.6    /* within-concept std per latent coordinate, instance_noise 1 */
#define MISALIGN_STD 0.5    /* misalignment noise relative to the semantic features, mcr_noise 1 */
#define DISTORT_STD 0.5     /* |D_t v - v| / |v| of a modality's distortion, distortion 1 */
#define NUISANCE_NORM 1.0   /* norm of a modality's nuisance component, distortion 1 */
#define NUISANCE_RANK 16    /* nuisance factors per modality */
#define OFFSET_NORM 1.6     /* norm of a modality's cone offset, gap 1 (tuned: matching pair cos ~0.3) */
#define CONE_COS 0.2        /* cosine between the two cone offsets of one MCR */
#define TANH_MEAN_SQ 0.394  /* E[tanh(g)^2] for g ~ N(0, 1): scale of the semantic features */

enum { MOD_X = 0, MOD_SA = 1, MOD_SB = 2, MOD_Y = 3 }; /* MCR of modality t: t / 2 */
enum { SET_OVERLAP = 1, SET_MEMORY_A, SET_MEMORY_B, SET_TEST, SET_ORACLE, SET_DIAG, SET_DIAG_TWIN };
enum { STREAM_WORLD = 1, STREAM_MISSING, STREAM_WEIGHTS, STREAM_LABELS, STREAM_LATENT, STREAM_MODALITY };

typedef struct synth_modality {
    float *map;      /* dim x hid: D_t W2_m */
    float *offset;   /* dim */
    float *nuisance; /* dim x NUISANCE_RANK */
} synth_modality;

typedef struct synth_ctx {
    const cmcr_synth_params *p;
    int64_t hid;               /* width of the semantic features */
    int64_t dim[2];            /* widths of A and B */
    float *concepts;           /* concepts x latent */
    float *w1[2];              /* hid x latent, per MCR */
    synth_modality mod[4];
    double inst_std, mis_std, nuis_std;
} synth_ctx;

/* ------------------------------------------------------------------ random streams */

/* Every normal of the world comes from rng_fill_normal_polar (rng.h): its stream defines the
 * published world, so the faster ziggurat must not replace it here. */

/* An independent generator per (seed, stream, index): rows can be drawn in any order and on
 * any thread, and changing one set's size leaves the others unchanged. */
static void stream_rng(rng_state *r, uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t h = rng_mix64(seed + 0x9e3779b97f4a7c15ull);
    h = rng_mix64(h ^ (stream * 0xd6e8feb86659fd93ull));
    h = rng_mix64(h ^ (index * 0xa0761d6478bd642full + 1));
    rng_seed(r, h);
}

static void random_unit(rng_state *r, float *x, int64_t n)
{
    rng_fill_normal_polar(r, x, n, 1.0);
    cmcr_normalize_rows(x, 1, n);
}

static float *alloc_floats(int64_t n) { return core_xmalloc((size_t)n * sizeof(float)); }

/* ------------------------------------------------------------------ parameters */

cmcr_synth_params cmcr_synth_default_params(void)
{
    cmcr_synth_params p;
    memset(&p, 0, sizeof p);
    p.seed = 1;
    p.dim_a = 512;
    p.dim_b = 512;
    p.latent = 64;
    p.concepts = 200;
    p.clusters = 20;
    p.n_overlap = 20000;
    p.n_memory_a = 20000;
    p.n_memory_b = 20000;
    p.n_test = 2000;
    p.n_oracle = 20000;
    p.gap = 1.0;
    p.mcr_noise = 1.0;
    p.instance_noise = 1.0;
    p.missing_frac = 0.1;
    p.distortion = 1.0;
    p.shift = 1.0;
    p.n_diag = 1000;
    return p;
}

static cmcr_status check_int(const char *name, int64_t v, int64_t lo, int64_t hi)
{
    if (v < lo || v > hi)
        return core_fail(CMCR_EINVAL, "synthetic world: %s must be between %lld and %lld (got %lld)", name,
                         (long long)lo, (long long)hi, (long long)v);
    return CMCR_OK;
}

static cmcr_status check_real(const char *name, double v, double lo, double hi)
{
    if (!isfinite(v) || v < lo || v > hi)
        return core_fail(CMCR_EINVAL, "synthetic world: %s must be between %g and %g (got %g)", name, lo, hi, v);
    return CMCR_OK;
}

/* rows x width floats must fit one tensor. */
static cmcr_status check_rows(const char *name, int64_t rows, int64_t width)
{
    cmcr_status st = check_int(name, rows, 1, (int64_t)1 << 28);
    if (st) return st;
    if ((uint64_t)rows * (uint64_t)width * sizeof(float) > CMCR_MAX_TENSOR_BYTES)
        return core_fail(CMCR_EINVAL, "synthetic world: %s = %lld rows of width %lld exceed the %llu-byte tensor limit",
                         name, (long long)rows, (long long)width, (unsigned long long)CMCR_MAX_TENSOR_BYTES);
    return CMCR_OK;
}

static cmcr_status check_params(const cmcr_synth_params *p)
{
    cmcr_status st = CMCR_OK;
    int64_t wide = p->dim_a > p->dim_b ? p->dim_a : p->dim_b;
    if (!st) st = check_int("dim_a", p->dim_a, 8, 65536);
    if (!st) st = check_int("dim_b", p->dim_b, 8, 65536);
    if (!st) st = check_int("latent", p->latent, 2, 4096);
    if (!st) st = check_int("concepts", p->concepts, 2, 1000000);
    if (!st) st = check_int("clusters", p->clusters, 1, p->concepts);
    if (!st) st = check_rows("n_overlap", p->n_overlap, wide);
    if (!st) st = check_rows("n_memory_a", p->n_memory_a, p->dim_a);
    if (!st) st = check_rows("n_memory_b", p->n_memory_b, p->dim_b);
    if (!st) st = check_rows("n_test", p->n_test, wide);
    if (!st) st = check_rows("n_oracle", p->n_oracle, wide);
    if (!st) st = check_int("n_diag", p->n_diag, 2, 1000000);
    if (!st) st = check_real("gap", p->gap, 0, 10);
    if (!st) st = check_real("mcr_noise", p->mcr_noise, 0, 10);
    if (!st) st = check_real("instance_noise", p->instance_noise, 0, 10);
    if (!st) st = check_real("missing_frac", p->missing_frac, 0, 0.5);
    if (!st) st = check_real("distortion", p->distortion, 0, 10);
    if (!st) st = check_real("shift", p->shift, 0, 5);
    return st;
}

/* ------------------------------------------------------------------ the fixed world */

static void free_ctx(synth_ctx *c)
{
    free(c->concepts);
    for (int m = 0; m < 2; m++) free(c->w1[m]);
    for (int t = 0; t < 4; t++) {
        free(c->mod[t].map);
        free(c->mod[t].offset);
        free(c->mod[t].nuisance);
    }
    memset(c, 0, sizeof *c);
}

/* Concepts: cluster centres ~ N(0, I), concept = its centre + CONCEPT_SPREAD * N(0, I).
 * Concepts of one cluster are contiguous ids. */
static cmcr_status make_concepts(synth_ctx *c, rng_state *r)
{
    int64_t L = c->p->latent, C = c->p->concepts, K = c->p->clusters;
    float *centre = alloc_floats(L);
    if (!centre) return core_fail(CMCR_ENOMEM, "synthetic world: out of memory");
    for (int64_t k = 0, i = 0; k < K; k++) {
        rng_fill_normal_polar(r, centre, L, 1.0);
        for (; i < C && i * K / C == k; i++) {
            float *z = c->concepts + i * L;
            rng_fill_normal_polar(r, z, L, CONCEPT_SPREAD);
            for (int64_t j = 0; j < L; j++) z[j] += centre[j];
        }
    }
    free(centre);
    return CMCR_OK;
}

/* W1: hid x latent with entries scaled so that pre-activations have unit variance. */
static void make_encoder(synth_ctx *c, int m, rng_state *r)
{
    int64_t L = c->p->latent;
    double var_h = 1.0 + CONCEPT_SPREAD * CONCEPT_SPREAD + c->inst_std * c->inst_std;
    rng_fill_normal_polar(r, c->w1[m], c->hid * L, 1.0 / sqrt((double)L * var_h));
}

/* map = D_t W2 = W2 + (delta / sqrt(dim)) G W2 with G ~ N(0, 1): each modality sees the
 * MCR's semantic embedding W2 phi through its own, slightly anisotropic linear map. */
static cmcr_status make_map(synth_ctx *c, int t, const float *w2, rng_state *r)
{
    int64_t dim = c->dim[t / 2], hid = c->hid;
    float *g = alloc_floats(dim * dim);
    if (!g) return core_fail(CMCR_ENOMEM, "synthetic world: cannot allocate a %lld x %lld map", (long long)dim,
                             (long long)dim);
    rng_fill_normal_polar(r, g, dim * dim, 1.0);
    memcpy(c->mod[t].map, w2, (size_t)(dim * hid) * sizeof(float));
    double delta = DISTORT_STD * c->p->distortion;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)dim, (int)hid, (int)dim,
                (float)(delta / sqrt((double)dim)), g, (int)dim, w2, (int)hid, 1.0f, c->mod[t].map, (int)hid);
    free(g);
    return CMCR_OK;
}

/* The two cones of one MCR: offset_t = gap * OFFSET_NORM * normalize(sqrt(k) a + sqrt(1-k) r_t),
 * so that the offsets of X and S (or S and Y) have cosine about k = CONE_COS. */
static cmcr_status make_offsets(synth_ctx *c, int m, rng_state *r)
{
    int64_t dim = c->dim[m];
    float *shared = alloc_floats(dim);
    if (!shared) return core_fail(CMCR_ENOMEM, "synthetic world: out of memory");
    random_unit(r, shared, dim);
    for (int t = 2 * m; t < 2 * m + 2; t++) {
        float *o = c->mod[t].offset;
        random_unit(r, o, dim);
        for (int64_t j = 0; j < dim; j++)
            o[j] = (float)(sqrt(CONE_COS) * shared[j] + sqrt(1.0 - CONE_COS) * o[j]);
        cmcr_normalize_rows(o, 1, dim);
        for (int64_t j = 0; j < dim; j++) o[j] *= (float)(OFFSET_NORM * c->p->gap);
    }
    free(shared);
    return CMCR_OK;
}

static cmcr_status alloc_ctx(synth_ctx *c)
{
    bool ok = (c->concepts = alloc_floats(c->p->concepts * c->p->latent)) != NULL;
    for (int m = 0; m < 2; m++) ok = ok && (c->w1[m] = alloc_floats(c->hid * c->p->latent)) != NULL;
    for (int t = 0; t < 4; t++) {
        int64_t dim = c->dim[t / 2];
        ok = ok && (c->mod[t].map = alloc_floats(dim * c->hid)) != NULL;
        ok = ok && (c->mod[t].offset = alloc_floats(dim)) != NULL;
        ok = ok && (c->mod[t].nuisance = alloc_floats(dim * NUISANCE_RANK)) != NULL;
    }
    return ok ? CMCR_OK : core_fail(CMCR_ENOMEM, "synthetic world: out of memory for the world's parameters");
}

/* MCR m: its encoder, the maps, nuisance subspaces and cones of its two modalities. */
static cmcr_status make_mcr(synth_ctx *c, int m, rng_state *r)
{
    int64_t dim = c->dim[m];
    float *w2 = alloc_floats(dim * c->hid);
    if (!w2) return core_fail(CMCR_ENOMEM, "synthetic world: out of memory for the encoders");
    make_encoder(c, m, r);
    /* W2: E|W2 phi|^2 = 1 for features phi of mean square TANH_MEAN_SQ. */
    rng_fill_normal_polar(r, w2, dim * c->hid, 1.0 / sqrt((double)dim * (double)c->hid * TANH_MEAN_SQ));
    cmcr_status st = CMCR_OK;
    for (int t = 2 * m; t < 2 * m + 2 && !st; t++) {
        st = make_map(c, t, w2, r);
        rng_fill_normal_polar(r, c->mod[t].nuisance, dim * NUISANCE_RANK, 1.0 / sqrt((double)dim));
    }
    free(w2);
    return st ? st : make_offsets(c, m, r);
}

static cmcr_status build_ctx(synth_ctx *c, const cmcr_synth_params *p)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    c->hid = 2 * p->latent;
    c->dim[0] = p->dim_a;
    c->dim[1] = p->dim_b;
    c->inst_std = INSTANCE_STD * p->instance_noise;
    c->mis_std = MISALIGN_STD * p->mcr_noise;
    c->nuis_std = NUISANCE_NORM * p->distortion;
    cmcr_status st = alloc_ctx(c);
    rng_state r;
    stream_rng(&r, p->seed, STREAM_WORLD, 0);
    if (!st) st = make_concepts(c, &r);
    for (int m = 0; m < 2 && !st; m++) st = make_mcr(c, m, &r);
    return st;
}

/* ------------------------------------------------------------------ concepts of each set */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Disjoint random sets of n_missing concepts absent from memory A and from memory B. */
static cmcr_status choose_missing(cmcr_world *w)
{
    const cmcr_synth_params *p = &w->params;
    int64_t C = p->concepts, n = (int64_t)floor(p->missing_frac * (double)C + 1e-9);
    int64_t *perm = core_xmalloc((size_t)C * sizeof *perm);
    w->missing_a = core_xmalloc((size_t)n * sizeof(int64_t));
    w->missing_b = core_xmalloc((size_t)n * sizeof(int64_t));
    if (!perm || !w->missing_a || !w->missing_b) {
        free(perm);
        return core_fail(CMCR_ENOMEM, "synthetic world: out of memory");
    }
    rng_state r;
    stream_rng(&r, p->seed, STREAM_MISSING, 0);
    for (int64_t i = 0; i < C; i++) perm[i] = i;
    for (int64_t i = C - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(&r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    memcpy(w->missing_a, perm, (size_t)n * sizeof(int64_t));
    memcpy(w->missing_b, perm + n, (size_t)n * sizeof(int64_t));
    qsort(w->missing_a, (size_t)n, sizeof(int64_t), cmp_i64);
    qsort(w->missing_b, (size_t)n, sizeof(int64_t), cmp_i64);
    w->n_missing = n;
    free(perm);
    return CMCR_OK;
}

/* Draw n concept labels for a set: concept weights are log-normal with std `shift` (each set
 * its own draw, so proportions differ between sets), zero for the absent concepts. */
static cmcr_status draw_labels(const cmcr_synth_params *p, int set, double shift, const int64_t *absent,
                               int64_t n_absent, int64_t n, int64_t *labels)
{
    int64_t C = p->concepts;
    double *cum = core_xmalloc((size_t)C * sizeof *cum);
    if (!cum) return core_fail(CMCR_ENOMEM, "synthetic world: out of memory");
    rng_state r;
    stream_rng(&r, p->seed, STREAM_WEIGHTS, (uint64_t)set);
    for (int64_t i = 0; i < C; i++) {
        float g;
        rng_fill_normal_polar(&r, &g, 1, 1.0);
        cum[i] = exp(shift * g);
    }
    for (int64_t i = 0; i < n_absent; i++) cum[absent[i]] = 0;
    int64_t last = 0;
    for (int64_t i = 0; i < C; i++) {
        if (cum[i] > 0) last = i;
        cum[i] += i ? cum[i - 1] : 0;
    }
    stream_rng(&r, p->seed, STREAM_LABELS, (uint64_t)set);
    for (int64_t k = 0; k < n; k++) {
        double u = rng_uniform(&r) * cum[C - 1];
        int64_t lo = 0, hi = C; /* first i with cum[i] > u */
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (cum[mid] > u) hi = mid;
            else lo = mid + 1;
        }
        labels[k] = lo < C ? lo : last;
    }
    free(cum);
    return CMCR_OK;
}

/* ------------------------------------------------------------------ embedding items */

/* h = concept + inst_std * N(0, I), one generator per row. */
static void make_latents(const synth_ctx *c, int set, const int64_t *labels, int64_t n, float *h)
{
    int64_t L = c->p->latent;
    for (int64_t i = 0; i < n; i++) {
        rng_state r;
        stream_rng(&r, c->p->seed, (uint64_t)STREAM_LATENT * 64 + (uint64_t)set, (uint64_t)i);
        float *row = h + i * L;
        const float *z = c->concepts + labels[i] * L;
        rng_fill_normal_polar(&r, row, L, c->inst_std);
        for (int64_t j = 0; j < L; j++) row[j] += z[j];
    }
}

/* tanh through one exp (in double: exact to float precision; faster than tanhf here). */
static float tanh_exp(float x)
{
    double e = exp(-2.0 * fabs((double)x)), t = (1.0 - e) / (1.0 + e);
    return (float)(x < 0 ? -t : t);
}

/* phi = tanh(W1_m h): the MCR's semantic features (n x hid). */
static void make_features(const synth_ctx *c, int m, const float *h, int64_t n, float *phi)
{
    int64_t L = c->p->latent, hid = c->hid;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)hid, (int)L, 1.0f, h, (int)L, c->w1[m], (int)L,
                0.0f, phi, (int)hid);
    for (int64_t i = 0; i < n * hid; i++) phi[i] = tanh_exp(phi[i]);
}

/* Per row: misalignment noise added to the features f, and the nuisance coefficients nu. */
static cmcr_status draw_modality_noise(const synth_ctx *c, int set, int t, int64_t n, float *f, float *nu)
{
    int64_t hid = c->hid;
    double mis = c->mis_std * sqrt(TANH_MEAN_SQ), nuis = c->nuis_std / sqrt((double)NUISANCE_RANK);
    float *noise = alloc_floats(hid);
    if (!noise) return core_fail(CMCR_ENOMEM, "synthetic world: out of memory");
    for (int64_t i = 0; i < n; i++) {
        rng_state r;
        stream_rng(&r, c->p->seed, (uint64_t)STREAM_MODALITY * 64 + (uint64_t)set * 4 + (uint64_t)t, (uint64_t)i);
        rng_fill_normal_polar(&r, noise, hid, mis);
        float *row = f + i * hid;
        for (int64_t j = 0; j < hid; j++) row[j] += noise[j];
        rng_fill_normal_polar(&r, nu + i * NUISANCE_RANK, NUISANCE_RANK, nuis);
    }
    free(noise);
    return CMCR_OK;
}

/* row += offset, then row /= |row|. */
static void finish_row(float *row, const float *offset, int64_t dim)
{
    double ss[4] = {0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 4 <= dim; j += 4) {
        for (int k = 0; k < 4; k++) {
            row[j + k] += offset[j + k];
            ss[k] += (double)row[j + k] * row[j + k];
        }
    }
    for (; j < dim; j++) {
        row[j] += offset[j];
        ss[0] += (double)row[j] * row[j];
    }
    float inv = (float)(1.0 / fmax(sqrt(ss[0] + ss[1] + ss[2] + ss[3]), 1e-12));
    for (j = 0; j < dim; j++) row[j] *= inv;
}

/* out = normalize(map (phi + noise) + offset + U nu), n x dim. */
static cmcr_status embed_modality(const synth_ctx *c, int set, int t, const float *phi, int64_t n, float *out)
{
    int64_t dim = c->dim[t / 2], hid = c->hid;
    const synth_modality *md = &c->mod[t];
    float *f = alloc_floats(n * hid), *nu = alloc_floats(n * NUISANCE_RANK);
    if (!f || !nu) {
        free(f);
        free(nu);
        return core_fail(CMCR_ENOMEM, "synthetic world: out of memory for %lld rows", (long long)n);
    }
    memcpy(f, phi, (size_t)(n * hid) * sizeof(float));
    cmcr_status st = draw_modality_noise(c, set, t, n, f, nu);
    if (st) {
        free(f);
        free(nu);
        return st;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)dim, (int)hid, 1.0f, f, (int)hid, md->map,
                (int)hid, 0.0f, out, (int)dim);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)dim, NUISANCE_RANK, 1.0f, nu, NUISANCE_RANK,
                md->nuisance, NUISANCE_RANK, 1.0f, out, (int)dim);
    for (int64_t i = 0; i < n; i++) finish_row(out + i * dim, md->offset, dim);
    free(f);
    free(nu);
    return CMCR_OK;
}

/* Embed the n items of one set as each of the nmods modalities in mods (A's before B's).
 * outs are reset first; on failure the caller frees whatever they hold. */
static cmcr_status embed_items(const synth_ctx *c, int set, const int64_t *labels, int64_t n, int nmods,
                               const int *mods, cmcr_matrix *outs)
{
    memset(outs, 0, (size_t)nmods * sizeof *outs);
    float *h = alloc_floats(n * c->p->latent), *phi = alloc_floats(n * c->hid);
    cmcr_status st = CMCR_OK;
    if (!h || !phi) st = core_fail(CMCR_ENOMEM, "synthetic world: out of memory for %lld items", (long long)n);
    if (!st) make_latents(c, set, labels, n, h);
    for (int k = 0, have = -1; k < nmods && !st; k++) {
        int t = mods[k], m = t / 2;
        outs[k].rows = n;
        outs[k].cols = c->dim[m];
        outs[k].data = alloc_floats(n * c->dim[m]);
        if (!outs[k].data) {
            st = core_fail(CMCR_ENOMEM, "synthetic world: out of memory for %lld x %lld embeddings", (long long)n,
                           (long long)c->dim[m]);
            break;
        }
        if (m != have) make_features(c, m, h, n, phi);
        have = m;
        st = embed_modality(c, set, t, phi, n, outs[k].data);
    }
    free(h);
    free(phi);
    return st;
}

/* ------------------------------------------------------------------ measured gap */

static double mean_row_cos(const cmcr_matrix *a, const cmcr_matrix *b, int64_t shift)
{
    double s = 0;
    int64_t n = a->rows, d = a->cols;
    for (int64_t i = 0; i < n; i++) {
        const float *x = a->data + i * d, *y = b->data + ((i + shift) % n) * d;
        double dot = 0;
        for (int64_t j = 0; j < d; j++) dot += (double)x[j] * y[j];
        s += dot;
    }
    return s / (double)n;
}

/* Diagnostic items (uniform over concepts) and twins (another instance of the same concept),
 * each embedded in all four modalities. */
static cmcr_status measure_gap(const synth_ctx *c, cmcr_world *w)
{
    const cmcr_synth_params *p = c->p;
    int64_t n = p->n_diag;
    int mods[4] = {MOD_X, MOD_SA, MOD_SB, MOD_Y};
    cmcr_matrix e[4] = {{0}}, twin[4] = {{0}};
    int64_t *labels = core_xmalloc((size_t)n * sizeof *labels);
    cmcr_status st = labels ? draw_labels(p, SET_DIAG, 0.0, NULL, 0, n, labels)
                            : core_fail(CMCR_ENOMEM, "synthetic world: out of memory");
    if (!st) st = embed_items(c, SET_DIAG, labels, n, 4, mods, e);
    if (!st) st = embed_items(c, SET_DIAG_TWIN, labels, n, 4, mods, twin);
    if (!st) {
        w->gap_cos_pair_a = mean_row_cos(&e[MOD_X], &e[MOD_SA], 0);
        w->gap_cos_pair_b = mean_row_cos(&e[MOD_SB], &e[MOD_Y], 0);
        w->gap_cos_same_a = 0.5 * (mean_row_cos(&e[MOD_X], &twin[MOD_X], 0) + mean_row_cos(&e[MOD_SA], &twin[MOD_SA], 0));
        w->gap_cos_same_b = 0.5 * (mean_row_cos(&e[MOD_SB], &twin[MOD_SB], 0) + mean_row_cos(&e[MOD_Y], &twin[MOD_Y], 0));
        w->gap_cos_cross_a = mean_row_cos(&e[MOD_X], &e[MOD_SA], 1);
        w->gap_cos_cross_b = mean_row_cos(&e[MOD_SB], &e[MOD_Y], 1);
        w->ab_cos = p->dim_a == p->dim_b ? mean_row_cos(&e[MOD_SA], &e[MOD_SB], 0) : NAN;
    }
    for (int k = 0; k < 4; k++) {
        cmcr_matrix_free(&e[k]);
        cmcr_matrix_free(&twin[k]);
    }
    free(labels);
    return st;
}

/* ------------------------------------------------------------------ generate */

static int64_t *alloc_labels(int64_t n) { return core_xmalloc((size_t)n * sizeof(int64_t)); }

/* Concept labels of every set (overlap, memories and oracle shifted; test uniform). */
static cmcr_status draw_set_labels(const cmcr_synth_params *p, cmcr_world *w)
{
    double s = p->shift;
    int64_t m = w->n_missing;
    w->test_labels = alloc_labels(p->n_test);
    w->overlap_labels = alloc_labels(p->n_overlap);
    w->memory_a_labels = alloc_labels(p->n_memory_a);
    w->memory_b_labels = alloc_labels(p->n_memory_b);
    w->oracle_labels = alloc_labels(p->n_oracle);
    if (!w->test_labels || !w->overlap_labels || !w->memory_a_labels || !w->memory_b_labels || !w->oracle_labels)
        return core_fail(CMCR_ENOMEM, "synthetic world: out of memory for labels");
    cmcr_status st = draw_labels(p, SET_OVERLAP, s, NULL, 0, p->n_overlap, w->overlap_labels);
    if (!st) st = draw_labels(p, SET_MEMORY_A, s, w->missing_a, m, p->n_memory_a, w->memory_a_labels);
    if (!st) st = draw_labels(p, SET_MEMORY_B, s, w->missing_b, m, p->n_memory_b, w->memory_b_labels);
    if (!st) st = draw_labels(p, SET_TEST, 0.0, NULL, 0, p->n_test, w->test_labels);
    if (!st) st = draw_labels(p, SET_ORACLE, s, NULL, 0, p->n_oracle, w->oracle_labels);
    return st;
}

/* Embed every set. On failure the matrices made so far stay in w for cmcr_world_free. */
static cmcr_status embed_sets(const synth_ctx *c, cmcr_world *w)
{
    const cmcr_synth_params *p = c->p;
    int s_mods[2] = {MOD_SA, MOD_SB}, xy_mods[2] = {MOD_X, MOD_Y}, x_mod = MOD_X, y_mod = MOD_Y;
    cmcr_matrix two[2];
    cmcr_status st = embed_items(c, SET_OVERLAP, w->overlap_labels, p->n_overlap, 2, s_mods, two);
    w->overlap_a = two[0];
    w->overlap_b = two[1];
    if (!st) st = embed_items(c, SET_MEMORY_A, w->memory_a_labels, p->n_memory_a, 1, &x_mod, &w->memory_a);
    if (!st) st = embed_items(c, SET_MEMORY_B, w->memory_b_labels, p->n_memory_b, 1, &y_mod, &w->memory_b);
    if (st) return st;
    st = embed_items(c, SET_TEST, w->test_labels, p->n_test, 2, xy_mods, two);
    w->test_x = two[0];
    w->test_y = two[1];
    if (st) return st;
    st = embed_items(c, SET_ORACLE, w->oracle_labels, p->n_oracle, 2, xy_mods, two);
    w->oracle_x = two[0];
    w->oracle_y = two[1];
    return st;
}

cmcr_status cmcr_synth_generate(const cmcr_synth_params *p, cmcr_world *out)
{
    memset(out, 0, sizeof *out);
    if (!p) return core_fail(CMCR_EINVAL, "synthetic world: no parameters");
    cmcr_status st = check_params(p);
    if (st) return st;
    cmcr_world w;
    memset(&w, 0, sizeof w);
    w.params = *p;
    synth_ctx c;
    st = build_ctx(&c, &w.params);
    if (!st) st = choose_missing(&w);
    if (!st) st = draw_set_labels(p, &w);
    if (!st) st = embed_sets(&c, &w);
    if (!st) st = measure_gap(&c, &w);
    free_ctx(&c);
    if (st) {
        cmcr_world_free(&w);
        return st;
    }
    *out = w;
    return CMCR_OK;
}

void cmcr_world_free(cmcr_world *w)
{
    if (!w) return;
    cmcr_matrix *mats[] = {&w->overlap_a, &w->overlap_b, &w->memory_a, &w->memory_b,
                           &w->test_x,    &w->test_y,    &w->oracle_x, &w->oracle_y};
    for (size_t i = 0; i < sizeof mats / sizeof *mats; i++) cmcr_matrix_free(mats[i]);
    free(w->test_labels);
    free(w->overlap_labels);
    free(w->memory_a_labels);
    free(w->memory_b_labels);
    free(w->oracle_labels);
    free(w->missing_a);
    free(w->missing_b);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------------ save */

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (path) snprintf(path, n, "%s/%s", dir, name);
    return path;
}

/* One output file of the world: a float matrix or a label vector. */
typedef struct world_file {
    const char *name;
    const cmcr_matrix *m;    /* or */
    const int64_t *labels;
    int64_t n;
    const char *what;
} world_file;

static int world_files(const cmcr_world *w, world_file *f)
{
    const cmcr_synth_params *p = &w->params;
    world_file list[] = {
        {"overlap_a.npy", &w->overlap_a, NULL, 0, "overlap modality S embedded by MCR A; row i is the same item as row i of overlap_b"},
        {"overlap_b.npy", &w->overlap_b, NULL, 0, "overlap modality S embedded by MCR B; row i is the same item as row i of overlap_a"},
        {"memory_a.npy", &w->memory_a, NULL, 0, "unpaired memory of modality X embedded by MCR A"},
        {"memory_b.npy", &w->memory_b, NULL, 0, "unpaired memory of modality Y embedded by MCR B"},
        {"test_x.npy", &w->test_x, NULL, 0, "held-out test items as X in A; row i pairs with row i of test_y (evaluation only)"},
        {"test_y.npy", &w->test_y, NULL, 0, "held-out test items as Y in B; row i pairs with row i of test_x (evaluation only)"},
        {"test_labels.npy", NULL, w->test_labels, p->n_test, "concept id of each test item (int64)"},
        {"oracle_x.npy", &w->oracle_x, NULL, 0, "paired X in A for the paired-oracle baseline only (C-MCR never uses it)"},
        {"oracle_y.npy", &w->oracle_y, NULL, 0, "paired Y in B for the paired-oracle baseline only (C-MCR never uses it)"},
        {"overlap_labels.npy", NULL, w->overlap_labels, p->n_overlap, "concept id of each overlap item (int64; analysis only, never for training)"},
        {"memory_a_labels.npy", NULL, w->memory_a_labels, p->n_memory_a, "concept id of each memory_a row (int64; analysis only)"},
        {"memory_b_labels.npy", NULL, w->memory_b_labels, p->n_memory_b, "concept id of each memory_b row (int64; analysis only)"},
        {"oracle_labels.npy", NULL, w->oracle_labels, p->n_oracle, "concept id of each oracle pair (int64; analysis only)"},
    };
    int n = (int)(sizeof list / sizeof *list);
    memcpy(f, list, sizeof list);
    return n;
}

static cmcr_status save_labels(const char *path, const int64_t *labels, int64_t n)
{
    cmcr_tensors *ts = cmcr_tensors_new();
    if (!ts) return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    cmcr_status st = cmcr_tensors_add(ts, "array", CMCR_I64, 1, &n, labels);
    if (!st) st = cmcr_tensors_save(ts, path, CMCR_FORMAT_NPY);
    cmcr_tensors_free(ts);
    return st;
}

static cmcr_status save_file(const char *dir, const world_file *f)
{
    char *path = join_path(dir, f->name);
    if (!path) return core_fail(CMCR_ENOMEM, "%s: out of memory", dir);
    cmcr_status st = f->m ? cmcr_matrix_save_npy(path, f->m->data, f->m->rows, f->m->cols)
                          : save_labels(path, f->labels, f->n);
    free(path);
    return st;
}

/* Numbers that JSON cannot hold (NaN) become null. */
static bool json_num(cJSON *o, const char *key, double v)
{
    return isfinite(v) ? cJSON_AddNumberToObject(o, key, v) != NULL : cJSON_AddNullToObject(o, key) != NULL;
}

static bool json_params(cJSON *root, const cmcr_synth_params *p)
{
    cJSON *o = cJSON_AddObjectToObject(root, "params");
    if (!o) return false;
    bool ok;
    if (p->seed < ((uint64_t)1 << 53)) {
        ok = json_num(o, "seed", (double)p->seed);
    } else { /* beyond a double's exact integers: keep it exact as text */
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->seed);
        ok = cJSON_AddStringToObject(o, "seed", buf) != NULL;
    }
    const char *ik[] = {"dim_a", "dim_b", "latent", "concepts", "clusters", "n_overlap", "n_memory_a",
                        "n_memory_b", "n_test", "n_oracle", "n_diag"};
    int64_t iv[] = {p->dim_a, p->dim_b, p->latent, p->concepts, p->clusters, p->n_overlap, p->n_memory_a,
                    p->n_memory_b, p->n_test, p->n_oracle, p->n_diag};
    for (size_t i = 0; i < sizeof ik / sizeof *ik; i++) ok = ok && json_num(o, ik[i], (double)iv[i]);
    const char *dk[] = {"gap", "mcr_noise", "instance_noise", "missing_frac", "distortion", "shift"};
    double dv[] = {p->gap, p->mcr_noise, p->instance_noise, p->missing_frac, p->distortion, p->shift};
    for (size_t i = 0; i < sizeof dk / sizeof *dk; i++) ok = ok && json_num(o, dk[i], dv[i]);
    return ok;
}

static bool json_constants(cJSON *root, const cmcr_synth_params *p)
{
    cJSON *o = cJSON_AddObjectToObject(root, "generator");
    if (!o) return false;
    bool ok = cJSON_AddStringToObject(o, "doc", "docs/synthetic-world.md") != NULL;
    ok = ok && json_num(o, "hidden", (double)(2 * p->latent));
    ok = ok && json_num(o, "concept_spread", CONCEPT_SPREAD);
    ok = ok && json_num(o, "instance_std", INSTANCE_STD * p->instance_noise);
    ok = ok && json_num(o, "misalign_std", MISALIGN_STD * p->mcr_noise);
    ok = ok && json_num(o, "distort_std", DISTORT_STD * p->distortion);
    ok = ok && json_num(o, "nuisance_norm", NUISANCE_NORM * p->distortion);
    ok = ok && json_num(o, "nuisance_rank", NUISANCE_RANK);
    ok = ok && json_num(o, "offset_norm", OFFSET_NORM * p->gap);
    ok = ok && json_num(o, "cone_cos", CONE_COS);
    return ok;
}

static bool json_measured(cJSON *root, const cmcr_world *w)
{
    cJSON *o = cJSON_AddObjectToObject(root, "measured");
    if (!o) return false;
    bool ok = cJSON_AddStringToObject(o, "definition",
                                      "over n_diag items: pair = mean cos of the two modalities of one item in one MCR; "
                                      "same = mean cos of two instances of one concept in one modality; cross = mean "
                                      "cos of the two modalities of different items; ab = mean cos of S in A vs S in "
                                      "B of one item (null when widths differ)") != NULL;
    ok = ok && json_num(o, "gap_cos_pair_a", w->gap_cos_pair_a) && json_num(o, "gap_cos_same_a", w->gap_cos_same_a);
    ok = ok && json_num(o, "gap_cos_cross_a", w->gap_cos_cross_a);
    ok = ok && json_num(o, "gap_cos_pair_b", w->gap_cos_pair_b) && json_num(o, "gap_cos_same_b", w->gap_cos_same_b);
    ok = ok && json_num(o, "gap_cos_cross_b", w->gap_cos_cross_b) && json_num(o, "ab_cos", w->ab_cos);
    cJSON *ma = cJSON_AddArrayToObject(o, "missing_in_memory_a"), *mb = cJSON_AddArrayToObject(o, "missing_in_memory_b");
    ok = ok && ma && mb;
    for (int64_t i = 0; ok && i < w->n_missing; i++) {
        cJSON *a = cJSON_CreateNumber((double)w->missing_a[i]), *b = cJSON_CreateNumber((double)w->missing_b[i]);
        ok = a && b && cJSON_AddItemToArray(ma, a) && cJSON_AddItemToArray(mb, b);
    }
    return ok;
}

static bool json_files(cJSON *root, const world_file *f, int n)
{
    cJSON *o = cJSON_AddObjectToObject(root, "files");
    bool ok = o != NULL;
    for (int i = 0; ok && i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(o, f[i].name);
        ok = e && cJSON_AddStringToObject(e, "dtype", f[i].m ? "float32" : "int64") &&
             json_num(e, "rows", (double)(f[i].m ? f[i].m->rows : f[i].n)) &&
             (!f[i].m || json_num(e, "cols", (double)f[i].m->cols)) &&
             cJSON_AddStringToObject(e, "description", f[i].what);
    }
    return ok;
}

static cmcr_status save_json(const cmcr_world *w, const char *dir, const world_file *f, int n)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root && cJSON_AddStringToObject(root, "description",
                                              "cmcr synthetic two-MCR world: MCR A covers (X, S), MCR B covers (S, "
                                              "Y), S is the overlap modality; embeddings are L2-normalised float32") &&
              json_params(root, &w->params) && json_constants(root, &w->params) && json_measured(root, w) &&
              json_files(root, f, n);
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    char *path = join_path(dir, "world.json");
    cmcr_status st = CMCR_OK;
    if (!text || !path) st = core_fail(CMCR_ENOMEM, "%s/world.json: out of memory", dir);
    afile a;
    if (!st) st = afile_open(&a, path);
    if (!st) {
        st = afile_write(&a, text, strlen(text));
        if (!st) st = afile_write(&a, "\n", 1);
        if (!st) st = afile_commit(&a);
        else afile_abort(&a);
    }
    free(text);
    free(path);
    return st;
}

cmcr_status cmcr_world_save(const cmcr_world *w, const char *dir)
{
    if (!w || !w->overlap_a.data) return core_fail(CMCR_EINVAL, "synthetic world: nothing to save (not generated)");
    if (!dir || !dir[0]) return core_fail(CMCR_EINVAL, "synthetic world: empty output directory name");
    cmcr_status st = file_mkdir_p(dir);
    world_file files[16];
    int n = world_files(w, files);
    for (int i = 0; i < n && !st; i++) st = save_file(dir, &files[i]);
    if (!st) st = save_json(w, dir, files, n);
    return st;
}
