/* pointbert.c - ULIP-2's PointBERT tower and pc_projection (see pointbert.h and
 * docs/encoders.md, ULIP-2 PointBERT).
 *
 * Loading follows roberta.c: sizes from a few shapes, every tensor checked by the two-pass
 * binder (bind.h) before one float32 block is allocated and filled. Then the mini-PointNet's
 * two BatchNorms (eval mode: a scale and a shift per channel) are folded into the
 * convolutions before them, and second_conv.0 is split in two halves (below).
 *
 * Forward, per group of 32 points: h = ReLU(BN(conv1 p)); f = conv2 h (256); g = max f;
 * second_conv.0 sees [g, f] (global first), so W [g; f] = Wg g + Wf f: the global half is one
 * product per group instead of one per point (32 times fewer), and only Wf f runs per point.
 * The last convolution's bias is added after the max (a per-column constant commutes with the
 * max, exactly, also in float32). The groups' tokens then go through reduce_dim and the
 * transformer (x = block(x + pos) per block), the final LayerNorm, [cls, max of the rest] and
 * pc_projection. */
#include "encoders/pointbert.h"
#include "encoders/bind.h"
#include "io/io.h"
#include "nn/transformer.h"
#include "runtime/matmul.h"
#include "runtime/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sizes beyond any ULIP model: refused before they drive an allocation. */
#define PB_MAX_DIM 16384
#define PB_MAX_DEPTH 1000
#define PB_MAX_ENC 65536
#define PB_MAX_OUT 65536
/* The mini-PointNet's fixed widths (dvae.py's Encoder). */
#define PB_C1 128
#define PB_C2 256
#define PB_C3 512
/* pos_embed's hidden width. */
#define PB_POS 128
/* Groups of one mini-PointNet chunk (4096 point rows: products at full speed, scratch bounded)
 * and clouds of one transformer chunk (1026 token rows). */
#define PB_CHUNK_GROUPS 128
#define PB_CHUNK_CLOUDS 2
#define PB_TOKENS (PB_GROUPS + 1)

#define P "point_encoder."
#define P_BLOCK P "blocks.blocks.%d."

typedef struct pb_bn {
    float *g, *b, *mean, *var;
} pb_bn;

struct pointbert_model {
    pointbert_info info;
    char name[1024]; /* the file, printable, for messages */
    float *params;   /* the tensors as bound */
    float *fold;     /* the folded mini-PointNet weights */
    uint16_t *params16;
    tf_shape shape;
    tf_block *blocks;
    tf_linear conv[4]; /* first_conv.0, .3, second_conv.0, .3 as bound (out x in) */
    pb_bn bn[2];       /* first_conv.1, second_conv.1 */
    /* folded: c1 = BN1 conv1; c2 = conv2; c3g, c3f = the global and feature halves of BN2
     * conv3 (the bias on c3g); c4 = conv4 without its bias (c4b, added after the max) */
    tf_linear c1, c2, c3g, c3f, c4;
    const float *c4b;
    tf_linear reduce, pos0, pos2, proj;
    float *cls_token, *cls_pos;
    tf_norm norm;
};

/* ------------------------------------------------------------------ binding tensors */

static cmcr_status bind_conv(binder *b, tf_linear *l, int64_t out, int64_t in, const char *prefix)
{
    float *w = bind_take(b, (uint64_t)out * (uint64_t)in), *bias = bind_take(b, (uint64_t)out);
    *l = (tf_linear){.w = w, .b = bias, .in = in, .out = out};
    cmcr_status st = bind_fmt(b, w, 0, out, in, 1, 0, "%s.weight", prefix);
    return st ? st : bind_fmt(b, bias, 0, out, 0, 0, 0, "%s.bias", prefix);
}

static cmcr_status bind_bn(binder *b, pb_bn *bn, int64_t c, const char *prefix)
{
    float **dst[4] = {&bn->g, &bn->b, &bn->mean, &bn->var};
    static const char *const names[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        *dst[i] = bind_take(b, (uint64_t)c);
        cmcr_status st = bind_fmt(b, *dst[i], 0, c, 0, 0, 0, "%s.%s", prefix, names[i]);
        if (st) return st;
    }
    for (int64_t i = 0; bn->var && i < c; i++)
        if (bn->var[i] < 0)
            return core_fail(CMCR_EVALUE, "%s: tensor '%s.running_var' has a negative variance (%g, channel %lld)",
                             b->file, prefix, (double)bn->var[i], (long long)i);
    return CMCR_OK;
}

static cmcr_status bind_block(binder *b, tf_block *blk, const pointbert_info *in, int i)
{
    char p[96], k[160];
    snprintf(p, sizeof p, P_BLOCK, i);
    const int64_t d = in->dim, mlp = in->mlp;
    float *qkv = bind_take(b, 3 * (uint64_t)d * (uint64_t)d);
    blk->qkv = (tf_linear){.w = qkv, .b = NULL, .in = d, .out = 3 * d}; /* ULIP: qkv_bias=False */
#define KEY(s) (snprintf(k, sizeof k, "%s%s", p, s), k)
    cmcr_status st = bind_fmt(b, qkv, 0, 3 * d, d, 0, 0, "%s", KEY("attn.qkv.weight"));
    if (!st) st = bind_norm(b, &blk->ln1, d, KEY("norm1"));
    if (!st) st = bind_linear(b, &blk->out, d, d, KEY("attn.proj"));
    if (!st) st = bind_norm(b, &blk->ln2, d, KEY("norm2"));
    if (!st) st = bind_linear(b, &blk->fc1, mlp, d, KEY("mlp.fc1"));
    if (!st) st = bind_linear(b, &blk->fc2, d, mlp, KEY("mlp.fc2"));
#undef KEY
    return st;
}

/* Every tensor, checked (blocks == NULL: the checking pass) or copied. */
static cmcr_status bind_all(binder *b, pointbert_model *m, tf_block *blocks)
{
    const pointbert_info *in = &m->info;
    const int64_t d = in->dim;
    cmcr_status st = bind_conv(b, &m->conv[0], PB_C1, in->width, P "encoder.first_conv.0");
    if (!st) st = bind_bn(b, &m->bn[0], PB_C1, P "encoder.first_conv.1");
    if (!st) st = bind_conv(b, &m->conv[1], PB_C2, PB_C1, P "encoder.first_conv.3");
    if (!st) st = bind_conv(b, &m->conv[2], PB_C3, 2 * PB_C2, P "encoder.second_conv.0");
    if (!st) st = bind_bn(b, &m->bn[1], PB_C3, P "encoder.second_conv.1");
    if (!st) st = bind_conv(b, &m->conv[3], in->encoder_dims, PB_C3, P "encoder.second_conv.3");
    if (!st) st = bind_linear(b, &m->reduce, d, in->encoder_dims, P "reduce_dim");
    m->cls_token = bind_take(b, (uint64_t)d);
    if (!st) st = bind_fmt(b, m->cls_token, 0, 1, 1, d, 0, P "cls_token");
    m->cls_pos = bind_take(b, (uint64_t)d);
    if (!st) st = bind_fmt(b, m->cls_pos, 0, 1, 1, d, 0, P "cls_pos");
    if (!st) st = bind_linear(b, &m->pos0, PB_POS, 3, P "pos_embed.0");
    if (!st) st = bind_linear(b, &m->pos2, d, PB_POS, P "pos_embed.2");
    for (int i = 0; !st && i < in->depth; i++) st = bind_block(b, blocks ? &blocks[i] : &(tf_block){0}, in, i);
    if (!st) st = bind_norm(b, &m->norm, d, P "norm");
    /* pc_projection is used as x @ P (2D x out): transposed, it is a Linear out x 2D */
    float *proj = bind_take(b, (uint64_t)in->out * 2 * (uint64_t)d);
    m->proj = (tf_linear){.w = proj, .b = NULL, .in = 2 * d, .out = in->out};
    if (!st) st = bind_fmt(b, proj, 1, in->out, 2 * d, 0, 0, "pc_projection");
    return st;
}

/* ------------------------------------------------------------------ sizes from shapes */

static cmcr_status read_sizes(const binder *b, pointbert_model *m)
{
    pointbert_info *in = &m->info;
    cmcr_status st = bind_dim(b, P "encoder.first_conv.0.weight", 3, 1, 1, 64, &in->width);
    if (!st && in->width != 3 && in->width != 6)
        return core_fail(CMCR_EUNSUPPORTED, "%s: tensor '" P "encoder.first_conv.0.weight' takes %d values per point, "
                         "expected 3 (xyz) or 6 (xyz rgb)", b->file, in->width);
    if (!st) st = bind_dim(b, P "encoder.second_conv.3.weight", 3, 0, 1, PB_MAX_ENC, &in->encoder_dims);
    if (!st) st = bind_dim(b, P "reduce_dim.weight", 2, 0, 1, PB_MAX_DIM, &in->dim);
    if (!st) st = bind_dim(b, "pc_projection", 2, 1, 1, PB_MAX_OUT, &in->out);
    if (st) return st;
    if (in->dim % 64 != 0)
        return core_fail(CMCR_EUNSUPPORTED, "%s: PointBERT width %d (reduce_dim) is not a multiple of 64 (its heads are "
                         "64 wide)", b->file, in->dim);
    int32_t rows = 0;
    if ((st = bind_dim(b, "pc_projection", 2, 0, 1, INT32_MAX, &rows))) return st;
    if (rows != 2 * in->dim)
        return core_fail(CMCR_ESHAPE, "%s: tensor 'pc_projection' has %d rows, expected 2 x %d (it multiplies the "
                         "tower's [cls, max] vector from the right)", b->file, rows, in->dim);
    in->depth = bind_count(b, P_BLOCK "attn.qkv.weight", PB_MAX_DEPTH);
    if (in->depth < 1)
        return core_fail(CMCR_EFORMAT, "%s: the PointBERT tower has no blocks (no '" P "blocks.blocks.0.attn.qkv.weight' "
                         "key)", b->file);
    st = bind_dim(b, P "blocks.blocks.0.mlp.fc1.weight", 2, 0, 1, 4 * PB_MAX_DIM, &in->mlp);
    if (st) return st;
    in->heads = in->dim / 64;
    m->shape = (tf_shape){.width = in->dim, .heads = in->heads, .mlp = in->mlp, .act = TF_GELU};
    return CMCR_OK;
}

/* ------------------------------------------------------------------ folding */

/* BN (eval) after a convolution: y = (W x + b - mean) s + beta with s = g / sqrt(var + eps),
 * i.e. W' = s W, b' = s (b - mean) + beta. cols: the columns of W kept (from col0), into w
 * (out x cols); the bias into bias when not NULL. */
static void fold_bn(const tf_linear *c, const pb_bn *bn, int64_t col0, int64_t cols, float *w, float *bias)
{
    for (int64_t o = 0; o < c->out; o++) {
        double s = (double)bn->g[o] / sqrt((double)bn->var[o] + 1e-5);
        for (int64_t j = 0; j < cols; j++) w[o * cols + j] = (float)(s * c->w[o * c->in + col0 + j]);
        if (bias) bias[o] = (float)(s * ((double)c->b[o] - bn->mean[o]) + bn->b[o]);
    }
}

static cmcr_status fold(pointbert_model *m)
{
    const int64_t w = m->info.width;
    const uint64_t floats = (uint64_t)PB_C1 * (uint64_t)w + PB_C1 + 2 * (uint64_t)PB_C3 * PB_C2 + PB_C3;
    float *p = m->fold = core_xmalloc((size_t)floats * sizeof(float));
    if (!p) return core_fail(CMCR_ENOMEM, "%s: out of memory", m->name);
    m->c1 = (tf_linear){.w = p, .b = p + PB_C1 * w, .in = w, .out = PB_C1};
    fold_bn(&m->conv[0], &m->bn[0], 0, w, p, p + PB_C1 * w);
    p += PB_C1 * w + PB_C1;
    m->c2 = m->conv[1];
    m->c3g = (tf_linear){.w = p, .b = p + 2 * PB_C3 * PB_C2, .in = PB_C2, .out = PB_C3};
    m->c3f = (tf_linear){.w = p + PB_C3 * PB_C2, .b = NULL, .in = PB_C2, .out = PB_C3};
    fold_bn(&m->conv[2], &m->bn[1], 0, PB_C2, p, p + 2 * PB_C3 * PB_C2);
    fold_bn(&m->conv[2], &m->bn[1], PB_C2, PB_C2, p + PB_C3 * PB_C2, NULL);
    m->c4 = m->conv[3];
    m->c4b = m->c4.b;
    m->c4.b = NULL;
    return CMCR_OK;
}

/* The products' weights in bfloat16, in one block. */
static cmcr_status make_bf16(pointbert_model *m)
{
    tf_linear *fixed[] = {&m->c1, &m->c2, &m->c3g, &m->c3f, &m->c4, &m->reduce, &m->pos0, &m->pos2, &m->proj};
    tf_block *blocks[] = {m->blocks};
    int64_t nblocks[] = {m->info.depth};
    return bind_bf16_blocks(fixed, 9, blocks, nblocks, 1, m->name, &m->params16);
}

static cmcr_status build(pointbert_model *m, const cmcr_tensors *ts)
{
    binder b = {.ts = ts, .file = m->name, .what = "ULIP's PointBERT point tower"};
    cmcr_status st = read_sizes(&b, m);
    if (st) return st;
    /* pass 1: check every tensor and count; nothing is allocated before it passes */
    if ((st = bind_all(&b, m, NULL))) return st;
    uint64_t floats = b.used;
    if (floats > SIZE_MAX / sizeof(float) || !(m->params = core_xmalloc((size_t)floats * sizeof(float))))
        return core_fail(CMCR_ENOMEM, "%s: out of memory for %llu weights", m->name, (unsigned long long)floats);
    if (!(m->blocks = calloc((size_t)m->info.depth, sizeof *m->blocks)))
        return core_fail(CMCR_ENOMEM, "%s: out of memory", m->name);
    b.base = m->params;
    b.used = 0;
    if ((st = bind_all(&b, m, m->blocks))) return st;
    return fold(m);
}

cmcr_status pointbert_model_from_tensors_with(const cmcr_tensors *ts, const char *file, bool float32_only,
                                              pointbert_model **out)
{
    if (!ts || !file || !out) return core_fail(CMCR_EINVAL, "pointbert_model_from_tensors: NULL argument");
    *out = NULL;
    pointbert_model *m = calloc(1, sizeof *m);
    if (!m) return core_fail(CMCR_ENOMEM, "%s: out of memory", file);
    cmcr_printable(m->name, sizeof m->name, file);
    cmcr_status st = build(m, ts);
    if (!st && !float32_only && mm_bf16_check() == CMCR_OK) st = make_bf16(m);
    if (st) {
        pointbert_model_free(m);
        return st;
    }
    *out = m;
    return CMCR_OK;
}

cmcr_status pointbert_model_from_tensors(const cmcr_tensors *ts, const char *file, pointbert_model **out)
{
    return pointbert_model_from_tensors_with(ts, file, false, out);
}

void pointbert_model_free(pointbert_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->fold);
    free(m->params16);
    free(m->blocks);
    free(m);
}

pointbert_info pointbert_get_info(const pointbert_model *m)
{
    return m ? m->info : (pointbert_info){0};
}

/* ------------------------------------------------------------------ forward pass */

/* Scratch of one call. */
typedef struct run {
    tf_prec prec;
    tf_scratch s;
    float *h1, *f, *g, *ga, *h3, *o; /* mini-PointNet: PB_CHUNK_GROUPS groups */
    float *tok;                      /* PB_CHUNK_CLOUDS x PB_GROUPS x E */
    float *x, *pos, *p128;           /* transformer: PB_CHUNK_CLOUDS x PB_TOKENS rows */
    float *cat;                      /* PB_CHUNK_CLOUDS x 2D */
    void *block;
} run;

static void run_free(run *r)
{
    if (r->prec.ctx) mm_ctx_free(r->prec.ctx);
    free(r->block);
}

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

static cmcr_status run_new(const pointbert_model *m, int bf16, run *r)
{
    memset(r, 0, sizeof *r);
    const pointbert_info *in = &m->info;
    const uint64_t G = PB_CHUNK_GROUPS, R = G * PB_GROUP_SIZE, E = (uint64_t)in->encoder_dims, D = (uint64_t)in->dim;
    const uint64_t C = PB_CHUNK_CLOUDS, T = C * PB_TOKENS;
    uint64_t ts[4];
    if (!tf_scratch_sizes(&m->shape, (int64_t)C, PB_TOKENS, ts))
        return core_fail(CMCR_ENOMEM, "%s: the forward pass's scratch is too large", m->name);
    /* bf16: every product's input rounded, at most rows x in of the widest */
    uint64_t a16 = max_u64(max_u64(R * PB_C3, R * E), max_u64(C * PB_GROUPS * E, T * max_u64(D, (uint64_t)in->mlp)));
    uint64_t sz[15] = {R * PB_C1, R * PB_C2, G * PB_C2, G * PB_C3, R * PB_C3, R * E, C * PB_GROUPS * E, T * D, T * D,
                       C * PB_GROUPS * PB_POS, C * 2 * D, ts[0], ts[1], ts[2], ts[3]};
    uint64_t total = bf16 ? a16 / 2 + 1 : 0;
    for (int i = 0; i < 15; i++) total += sz[i];
    if (total > SIZE_MAX / sizeof(float) || !(r->block = core_xmalloc((size_t)total * sizeof(float))))
        return core_fail(CMCR_ENOMEM, "%s: out of memory for the forward pass (%llu floats)", m->name,
                         (unsigned long long)total);
    float *p = r->block, **dst[15] = {&r->h1, &r->f, &r->g, &r->ga, &r->h3, &r->o, &r->tok, &r->x, &r->pos,
                                      &r->p128, &r->cat, &r->s.h, &r->s.qkv, &r->s.mlp, &r->s.att};
    for (int i = 0; i < 15; i++) *dst[i] = p, p += sz[i];
    r->prec.a16 = (uint16_t *)p;
    if (!bf16) return CMCR_OK;
    r->prec.bf16 = 1;
    cmcr_status st = mm_ctx_new(&r->prec.ctx);
    if (st) return core_fail(CMCR_EUNSUPPORTED, "%s: bf16: %s", m->name, cmcr_last_error());
    return CMCR_OK;
}

/* y (groups x cols) = max over each group's PB_GROUP_SIZE rows of x, plus bias when not NULL. */
static void group_max(float *y, const float *x, int64_t groups, int64_t cols, const float *bias)
{
    #pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < groups; g++) {
        float *o = y + g * cols;
        const float *a = x + g * PB_GROUP_SIZE * cols;
        memcpy(o, a, sizeof(float) * (size_t)cols);
        for (int64_t j = 1; j < PB_GROUP_SIZE; j++)
            for (int64_t c = 0; c < cols; c++) o[c] = a[j * cols + c] > o[c] ? a[j * cols + c] : o[c];
        if (bias)
            for (int64_t c = 0; c < cols; c++) o[c] += bias[c];
    }
}

static void relu(float *x, int64_t n)
{
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

/* h3 = ReLU(h3 + ga[group of the row]): the global half's product added to each point's. */
static void add_global_relu(float *h3, const float *ga, int64_t groups)
{
    #pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < groups; g++)
        for (int64_t j = 0; j < PB_GROUP_SIZE; j++) {
            float *row = h3 + (g * PB_GROUP_SIZE + j) * PB_C3;
            const float *a = ga + g * PB_C3;
            for (int64_t c = 0; c < PB_C3; c++) {
                float v = row[c] + a[c];
                row[c] = v > 0 ? v : 0;
            }
        }
}

/* The mini-PointNet on `groups` groups (pts: groups x 32 x width) -> tok (groups x E). */
static cmcr_status pointnet(const pointbert_model *m, run *r, const float *pts, int64_t groups, float *tok)
{
    const int64_t rows = groups * PB_GROUP_SIZE;
    cmcr_status st = tf_linear_forward(&r->prec, r->h1, pts, &m->c1, rows);
    if (st) return st;
    relu(r->h1, rows * PB_C1);
    if ((st = tf_linear_forward(&r->prec, r->f, r->h1, &m->c2, rows))) return st;
    group_max(r->g, r->f, groups, PB_C2, NULL);
    if ((st = tf_linear_forward(&r->prec, r->ga, r->g, &m->c3g, groups))) return st;
    if ((st = tf_linear_forward(&r->prec, r->h3, r->f, &m->c3f, rows))) return st;
    add_global_relu(r->h3, r->ga, groups);
    if ((st = tf_linear_forward(&r->prec, r->o, r->h3, &m->c4, rows))) return st;
    group_max(tok, r->o, groups, m->info.encoder_dims, m->c4b);
    return CMCR_OK;
}

/* Row 0 of each cloud's sequence from a (1 x D) vector, rows 1.. from src (clouds x 512 x D). */
static void place_tokens(float *dst, const float *row0, const float *src, int64_t clouds, int64_t d)
{
    for (int64_t c = 0; c < clouds; c++) {
        memcpy(dst + c * PB_TOKENS * d, row0, sizeof(float) * (size_t)d);
        memcpy(dst + (c * PB_TOKENS + 1) * d, src + c * PB_GROUPS * d, sizeof(float) * (size_t)(PB_GROUPS * d));
    }
}

/* The transformer's input: x = [cls_token, reduce_dim(tokens)], pos = [cls_pos, pos_embed(centres)]. */
static cmcr_status embed(const pointbert_model *m, run *r, const float *groups, int64_t clouds)
{
    const int64_t d = m->info.dim, per = (int64_t)pointbert_group_floats(m->info.width);
    const int64_t centres = PB_GROUPS * PB_GROUP_SIZE * m->info.width;
    cmcr_status st = tf_linear_forward(&r->prec, r->s.h, r->tok, &m->reduce, clouds * PB_GROUPS);
    if (st) return st;
    place_tokens(r->x, m->cls_token, r->s.h, clouds, d);
    for (int64_t c = 0; c < clouds; c++)
        memcpy(r->s.qkv + c * PB_GROUPS * 3, groups + c * per + centres, sizeof(float) * PB_GROUPS * 3);
    if ((st = tf_linear_forward(&r->prec, r->p128, r->s.qkv, &m->pos0, clouds * PB_GROUPS))) return st;
    tf_gelu(r->p128, clouds * PB_GROUPS * PB_POS);
    if ((st = tf_linear_forward(&r->prec, r->s.h, r->p128, &m->pos2, clouds * PB_GROUPS))) return st;
    place_tokens(r->pos, m->cls_pos, r->s.h, clouds, d);
    return CMCR_OK;
}

/* [x[0], max over x[1..512]] per cloud (after the final LayerNorm) -> cat (clouds x 2D). */
static void pool(const pointbert_model *m, run *r, int64_t clouds)
{
    const int64_t d = m->info.dim;
    for (int64_t c = 0; c < clouds; c++) {
        const float *x = r->x + c * PB_TOKENS * d;
        float *o = r->cat + c * 2 * d;
        memcpy(o, x, sizeof(float) * (size_t)d);
        memcpy(o + d, x + d, sizeof(float) * (size_t)d);
        for (int64_t t = 2; t < PB_TOKENS; t++)
            for (int64_t j = 0; j < d; j++) o[d + j] = x[t * d + j] > o[d + j] ? x[t * d + j] : o[d + j];
    }
}

static void add_to(float *x, const float *y, int64_t n)
{
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

/* `clouds` (<= PB_CHUNK_CLOUDS) grouped clouds -> emb (clouds x out). */
static cmcr_status chunk_forward(const pointbert_model *m, run *r, const float *groups, int64_t clouds, float *emb)
{
    const pointbert_info *in = &m->info;
    const int64_t per = (int64_t)pointbert_group_floats(in->width), rows = clouds * PB_TOKENS;
    cmcr_status st = CMCR_OK;
    for (int64_t c = 0; !st && c < clouds; c++)
        for (int64_t g = 0; !st && g < PB_GROUPS; g += PB_CHUNK_GROUPS)
            st = pointnet(m, r, groups + c * per + g * PB_GROUP_SIZE * in->width, PB_CHUNK_GROUPS,
                          r->tok + (c * PB_GROUPS + g) * in->encoder_dims);
    if (!st) st = embed(m, r, groups, clouds);
    for (int64_t l = 0; !st && l < in->depth; l++) {
        add_to(r->x, r->pos, rows * in->dim);
        st = tf_block_forward(&r->prec, r->x, &m->blocks[l], &m->shape, clouds, PB_TOKENS, &r->s);
    }
    if (st) return st;
    tf_layernorm(r->x, r->x, &m->norm, rows, in->dim);
    pool(m, r, clouds);
    return tf_linear_forward(&r->prec, emb, r->cat, &m->proj, clouds);
}

cmcr_status pointbert_encode(const pointbert_model *m, const float *groups, int64_t count, int bf16, float *emb)
{
    if (!m || count < 0 || (count > 0 && (!groups || !emb)))
        return core_fail(CMCR_EINVAL, "pointbert_encode: NULL argument or negative count");
    cmcr_status st = bind_check_bf16(m->name, m->params16, bf16);
    const int64_t per = (int64_t)pointbert_group_floats(m->info.width);
    if (!st) st = vm_check_finite(groups, count, per, 0, "%s: grouped point clouds (a row per cloud)", m->name);
    if (st || count == 0) return st;
    run r;
    st = run_new(m, bf16, &r);
    for (int64_t c = 0; !st && c < count; c += PB_CHUNK_CLOUDS) {
        int64_t k = count - c < PB_CHUNK_CLOUDS ? count - c : PB_CHUNK_CLOUDS;
        st = chunk_forward(m, &r, groups + c * per, k, emb + c * m->info.out);
    }
    run_free(&r);
    return st;
}
