/* htsat.c - HTSAT-tiny, LAION-CLAP's audio tower, in eval mode (see htsat.h and
 * docs/encoders.md, HTSAT).
 *
 * The forward pass of a chunk of clips: bn0 over the mel bins, bicubic interpolation of the
 * 1001 frames to 1024 and the fold into 256 x 256 images; the 4 x 4 patch embedding of
 * channel 0 (one product over all clips); for the long clips the (4, 12) patch embedding of
 * channels 1-3 and the attentional feature fusion (AFF) into the global embedding; LayerNorm;
 * the Swin stages; the final LayerNorm, the mean over the last map and audio_projection.
 *
 * A Swin block keeps its activations in window order: the LayerNorm'd rows are gathered
 * through a permutation (window partition after the cyclic shift: one table per stage and
 * shift), so the qkv and output products run on all rows at once, attention runs per (clip,
 * window, head) in parallel, and the attention output is added back to the residual stream
 * through the same permutation (reverse shift and window merge). */
#include "encoders/htsat.h"
#include "encoders/bind.h"
#include "io/io.h"
#include "nn/transformer.h"
#include "runtime/matmul.h"
#include "runtime/vmath.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define SPEC 256                    /* the square image the clip is folded into */
#define PATCH 4                     /* patch_embed.proj: 4 x 4, stride 4 */
#define GRID (SPEC / PATCH)         /* 64 x 64 tokens */
#define TIME (SPEC * (SPEC / HTSAT_MELS)) /* 1024 frames: 4 chunks of 256 */
#define LOCAL_W ((SPEC - 3 * PATCH) / (3 * PATCH) + 1) /* 21 columns of mel_conv2d per chunk */
#define MAX_WIDTH 16384
#define MAX_DEPTH 64
#define MAX_WINDOW 32
#define MAX_CLASSES (1 << 20)
/* Clips per forward chunk: the scratch is about 9 x 4096 x embed floats per clip (14 MB at
 * full size), and 4 clips make the last stage's products 256 rows high. */
#define CHUNK_CLIPS 4

typedef struct hblock {
    tf_norm n1, n2;
    tf_linear qkv, proj, fc1, fc2;
    const float *table; /* (2 win - 1)^2 x heads */
    float *bias;        /* heads x N x N: the table read through the relative position index */
} hblock;

typedef struct stage {
    int64_t width, heads, res, win, shift, depth;
    hblock *blocks;
    tf_norm merge_norm; /* PatchMerging (all stages but the last) */
    tf_linear merge;    /* 2 width x 4 width, no bias */
    int32_t *perm[2];   /* window-order row -> token of the map: unshifted, shifted */
    uint8_t *region;    /* shifted blocks: the region (0..8) of each window-order row */
} stage;

struct htsat_model {
    htsat_info info;
    char name[1024];
    float *params;      /* every bound tensor, float32 */
    uint16_t *params16; /* the Linear weights in bfloat16; NULL without bf16 products */
    float *biases;      /* the blocks' expanded position biases */
    int32_t *perms;
    uint8_t *regions;
    hblock *blocks;
    stage st[HTSAT_MAX_STAGES];
    float bn0_a[HTSAT_MELS], bn0_b[HTSAT_MELS]; /* bn0 as x a + b */
    float *bn0;                                 /* its 4 tensors, bound */
    float *bn_la1, *bn_la2, *bn_ga1, *bn_ga2;   /* AFF's BatchNorms, folded at load */
    tf_linear patch, local;                     /* E x 16, E x 48 */
    tf_norm patch_norm, norm;
    tf_linear la1, la2, ga1, ga2;               /* AFF local / global: conv 1x1 + BN */
    tf_linear proj0, proj2;                     /* audio_projection */
};

/* ------------------------------------------------------------------ the interpolation */

/* ((A + 2) x - (A + 3)) x^2 + 1 and ((A x - 5 A) x + 8 A) x - 4 A: cubic convolution. The
 * middle step of the second is one fused multiply-add, as PyTorch's build compiles it: with
 * it the weights are bit-identical to torch 1.13's on every row of 1001 -> 1024 (measured with
 * impulses); in plain float32 a third of the rows differ by an ulp or two. */
static float cubic1(float x, float a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }
static float cubic2(float x, float a) { return fmaf(a * x - 5 * a, x, 8 * a) * x - 4 * a; }

/* Output row o's 4 source rows and weights. PyTorch: scale = (t_in - 1) / (t_out - 1) in
 * float, the source position scale * o in float, its floor (clamped to t_in - 1) the index;
 * the fraction scale * o - index is computed with one rounding (PyTorch's build fuses it into
 * a multiply-add; rounding scale * o first moves it by up to 6e-5 near row 1000, which moves
 * the output by up to 1e-3 on dB-scale values), clamped to [0, 1]. */
static void bicubic_taps(int64_t o, int64_t t_in, int64_t t_out, int64_t idx[4], float w[4])
{
    const float a = -0.75f;
    float scale = t_out > 1 ? (float)(t_in - 1) / (float)(t_out - 1) : 0.0f;
    float real = scale * (float)o;
    int64_t i = (int64_t)floorf(real);
    i = i < t_in - 1 ? i : t_in - 1;
    float t = (float)((double)scale * (double)o - (double)i); /* exact product, one rounding */
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    w[0] = cubic2(t + 1.0f, a);
    w[1] = cubic1(t, a);
    w[2] = cubic1(1.0f - t, a);
    w[3] = cubic2(2.0f - t, a);
    for (int j = 0; j < 4; j++) {
        int64_t k = i + j - 1;
        idx[j] = k < 0 ? 0 : k > t_in - 1 ? t_in - 1 : k;
    }
}

void htsat_bicubic_rows(float *y, const float *x, int64_t t_in, int64_t t_out, int64_t cols)
{
    for (int64_t o = 0; o < t_out; o++) {
        int64_t idx[4];
        float w[4];
        bicubic_taps(o, t_in, t_out, idx, w);
        float *yr = y + o * cols;
        for (int64_t c = 0; c < cols; c++) {
            float acc = x[idx[0] * cols + c] * w[0]; /* the sum in PyTorch's order */
            for (int j = 1; j < 4; j++) acc += x[idx[j] * cols + c] * w[j];
            yr[c] = acc;
        }
    }
}

/* ------------------------------------------------------------------ binding tensors */

static const char WHAT[] = "an HTSAT audio tower of a LAION-CLAP checkpoint";

/* A convolution out x in x kh x kw with its bias, as a Linear layer of in kh kw inputs. */
static cmcr_status bind_conv(binder *b, tf_linear *l, int64_t out, int64_t in, int64_t kh, int64_t kw, const char *p)
{
    float *w = bind_take(b, (uint64_t)(out * in * kh * kw)), *bias = bind_take(b, (uint64_t)out);
    *l = (tf_linear){.w = w, .b = bias, .in = in * kh * kw, .out = out};
    cmcr_status st = bind_fmt(b, w, 0, out, in, kh, kw, "%s.weight", p);
    return st ? st : bind_fmt(b, bias, 0, out, 0, 0, 0, "%s.bias", p);
}

/* A BatchNorm's weight, bias, running_mean and running_var (c each) into *p. */
static cmcr_status bind_bn(binder *b, float **p, int64_t c, const char *prefix)
{
    static const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    *p = bind_take(b, 4 * (uint64_t)c);
    for (int k = 0; k < 4; k++) {
        cmcr_status st = bind_fmt(b, *p ? *p + k * c : NULL, 0, c, 0, 0, 0, "%s.%s", prefix, part[k]);
        if (st) return st;
    }
    return CMCR_OK;
}

/* Swin's relative position index of rows a and b of a win x win window. */
static int64_t rel_index(int64_t win, int64_t a, int64_t b)
{
    return (a / win - b / win + win - 1) * (2 * win - 1) + (a % win - b % win + win - 1);
}

/* A tensor that must equal Swin's own values (want(k) for entry k), when present. */
static cmcr_status check_buffer(const binder *b, const char *key, int ndim, const int64_t *shape,
                                float (*want)(const stage *, int64_t), const stage *s)
{
    const cmcr_tensor *t = bind_find(b, key);
    if (!t) return CMCR_OK;
    cmcr_status st = bind_check_shape(b, t, key, ndim, shape);
    if (st) return st;
    int64_t n = cmcr_tensor_numel(t);
    float *v = core_xmalloc((size_t)n * sizeof(float));
    if (!v) return core_fail(CMCR_ENOMEM, "%s: out of memory checking tensor '%s'", b->file, key);
    cmcr_tensor_to_f32(t, v);
    for (int64_t k = 0; k < n && !st; k++)
        if (!(v[k] == want(s, k)))
            st = core_fail(CMCR_EFORMAT, "%s: tensor '%s' differs from Swin's at entry %lld (%g, expected %g)", b->file,
                           key, (long long)k, (double)v[k], (double)want(s, k));
    free(v);
    return st;
}

static float index_at(const stage *s, int64_t k)
{
    int64_t n = s->win * s->win;
    return (float)rel_index(s->win, k / n, k % n);
}

/* attn_mask[w][a][b]: -100 between rows of different regions of shifted window w. */
static float mask_at(const stage *s, int64_t k)
{
    int64_t n = s->win * s->win, w = k / (n * n), a = k / n % n, c = k % n;
    return s->region[w * n + a] != s->region[w * n + c] ? -100.0f : 0.0f;
}

static cmcr_status bind_block(binder *b, const stage *s, hblock *k, int si, int bi)
{
    char p[128], q[160];
    const int64_t C = s->width, n = s->win * s->win, rows = (2 * s->win - 1) * (2 * s->win - 1);
    snprintf(p, sizeof p, "audio_branch.layers.%d.blocks.%d.", si, bi);
#define KEY(x) (snprintf(q, sizeof q, "%s%s", p, x), q)
    cmcr_status st = bind_norm(b, &k->n1, C, KEY("norm1"));
    if (!st) st = bind_linear(b, &k->qkv, 3 * C, C, KEY("attn.qkv"));
    if (!st) st = bind_linear(b, &k->proj, C, C, KEY("attn.proj"));
    float *t = bind_take(b, (uint64_t)(rows * s->heads));
    k->table = t;
    if (!st) st = bind_fmt(b, t, 0, rows, s->heads, 0, 0, "%sattn.relative_position_bias_table", p);
    if (!st) st = bind_norm(b, &k->n2, C, KEY("norm2"));
    if (!st) st = bind_linear(b, &k->fc1, 4 * C, C, KEY("mlp.fc1"));
    if (!st) st = bind_linear(b, &k->fc2, C, 4 * C, KEY("mlp.fc2"));
    if (st || b->base) return st; /* the buffers are checked in the first pass */
    int64_t ishape[2] = {n, n}, nw = (s->res / s->win) * (s->res / s->win), mshape[3] = {nw, n, n};
    st = check_buffer(b, KEY("attn.relative_position_index"), 2, ishape, index_at, s);
    if (!st && s->shift && bi % 2) st = check_buffer(b, KEY("attn_mask"), 3, mshape, mask_at, s);
#undef KEY
    return st;
}

static cmcr_status bind_stage(binder *b, htsat_model *m, int si)
{
    stage *s = &m->st[si];
    char p[96];
    for (int bi = 0; bi < s->depth; bi++) {
        cmcr_status st = bind_block(b, s, &s->blocks[bi], si, bi);
        if (st) return st;
    }
    if (si == m->info.stages - 1) return CMCR_OK;
    snprintf(p, sizeof p, "audio_branch.layers.%d.downsample.norm", si);
    cmcr_status st = bind_norm(b, &s->merge_norm, 4 * s->width, p);
    float *w = bind_take(b, 8 * (uint64_t)(s->width * s->width));
    s->merge = (tf_linear){.w = w, .in = 4 * s->width, .out = 2 * s->width};
    return st ? st : bind_fmt(b, w, 0, 2 * s->width, 4 * s->width, 0, 0, "audio_branch.layers.%d.downsample.reduction.weight", si);
}

static cmcr_status bind_all(binder *b, htsat_model *m)
{
    const htsat_info *in = &m->info;
    const int64_t E = in->embed, R = E / 4;
    const char *pe = "audio_branch.patch_embed.";
    char k[128];
#define KEY(x) (snprintf(k, sizeof k, "%s%s", pe, x), k)
    cmcr_status st = bind_bn(b, &m->bn0, HTSAT_MELS, "audio_branch.bn0");
    if (!st) st = bind_conv(b, &m->patch, E, 1, PATCH, PATCH, KEY("proj"));
    if (!st) st = bind_norm(b, &m->patch_norm, E, KEY("norm"));
    if (!st) st = bind_conv(b, &m->local, E, 1, PATCH, 3 * PATCH, KEY("mel_conv2d"));
    if (!st) st = bind_conv(b, &m->la1, R, E, 1, 1, KEY("fusion_model.local_att.0"));
    if (!st) st = bind_bn(b, &m->bn_la1, R, KEY("fusion_model.local_att.1"));
    if (!st) st = bind_conv(b, &m->la2, E, R, 1, 1, KEY("fusion_model.local_att.3"));
    if (!st) st = bind_bn(b, &m->bn_la2, E, KEY("fusion_model.local_att.4"));
    /* global_att starts with its pooling: its layers are 1, 2, 4, 5 */
    if (!st) st = bind_conv(b, &m->ga1, R, E, 1, 1, KEY("fusion_model.global_att.1"));
    if (!st) st = bind_bn(b, &m->bn_ga1, R, KEY("fusion_model.global_att.2"));
    if (!st) st = bind_conv(b, &m->ga2, E, R, 1, 1, KEY("fusion_model.global_att.4"));
    if (!st) st = bind_bn(b, &m->bn_ga2, E, KEY("fusion_model.global_att.5"));
#undef KEY
    for (int s = 0; !st && s < in->stages; s++) st = bind_stage(b, m, s);
    if (!st) st = bind_norm(b, &m->norm, in->width, "audio_branch.norm");
    /* tscam_conv and head: HTSAT's classifier, not the embedding; checked, not kept */
    int64_t sf = GRID / ((int64_t)1 << (in->stages - 1)) / (SPEC / HTSAT_MELS);
    if (!st) st = bind_fmt(b, NULL, 0, in->classes, in->width, sf, 3, "audio_branch.tscam_conv.weight");
    if (!st) st = bind_fmt(b, NULL, 0, in->classes, 0, 0, 0, "audio_branch.tscam_conv.bias");
    if (!st) st = bind_fmt(b, NULL, 0, in->classes, in->classes, 0, 0, "audio_branch.head.weight");
    if (!st) st = bind_fmt(b, NULL, 0, in->classes, 0, 0, 0, "audio_branch.head.bias");
    if (!st) st = bind_linear(b, &m->proj0, in->hidden, in->width, "audio_projection.0");
    if (!st) st = bind_linear(b, &m->proj2, in->embed_dim, in->hidden, "audio_projection.2");
    return st;
}

/* ------------------------------------------------------------------ sizes from shapes */

static cmcr_status read_stages(const binder *b, htsat_info *in)
{
    char fmt[96], key[128];
    for (int s = 0; s < in->stages; s++) {
        snprintf(fmt, sizeof fmt, "audio_branch.layers.%d.blocks.%%d.norm1.weight", s);
        in->depths[s] = bind_count(b, fmt, MAX_DEPTH + 1);
        if (in->depths[s] > MAX_DEPTH)
            return core_fail(CMCR_EUNSUPPORTED, "%s: stage %d has more than %d blocks", b->file, s, MAX_DEPTH);
        snprintf(key, sizeof key, "audio_branch.layers.%d.blocks.0.attn.relative_position_bias_table", s);
        cmcr_status st = bind_dim(b, key, 2, 1, 1, MAX_WIDTH, &in->heads[s]);
        if (st) return st;
        if (((int64_t)in->embed << s) % in->heads[s])
            return core_fail(CMCR_EUNSUPPORTED, "%s: stage %d: width %lld is not a multiple of its %d heads ('%s')",
                             b->file, s, (long long)in->embed << s, in->heads[s], key);
    }
    int32_t rows;
    const char *t0 = "audio_branch.layers.0.blocks.0.attn.relative_position_bias_table";
    cmcr_status st = bind_dim(b, t0, 2, 0, 1, (2 * MAX_WINDOW - 1) * (2 * MAX_WINDOW - 1), &rows);
    if (st) return st;
    int32_t r = (int32_t)lround(sqrt((double)rows));
    if (r * r != rows || r % 2 == 0)
        return core_fail(CMCR_ESHAPE, "%s: tensor '%s' has %d rows, not (2 window - 1)^2", b->file, t0, rows);
    in->window = (r + 1) / 2;
    return CMCR_OK;
}

static cmcr_status read_sizes(const binder *b, htsat_info *in)
{
    int32_t mels, stages;
    cmcr_status st = bind_dim(b, "audio_branch.patch_embed.proj.weight", 4, 0, 4, MAX_WIDTH, &in->embed);
    if (!st) st = bind_dim(b, "audio_branch.bn0.weight", 1, 0, 1, MAX_WIDTH, &mels);
    if (st) return st;
    if (in->embed % 4)
        return core_fail(CMCR_EUNSUPPORTED, "%s: embedding width %d is not a multiple of 4 (AFF's reduction)", b->file,
                         in->embed);
    if (mels != HTSAT_MELS)
        return core_fail(CMCR_EUNSUPPORTED, "%s: tensor 'audio_branch.bn0.weight' has %d mel bins; HTSAT-tiny takes %d",
                         b->file, mels, HTSAT_MELS);
    stages = bind_count(b, "audio_branch.layers.%d.blocks.0.norm1.weight", HTSAT_MAX_STAGES + 1);
    if (stages < 1)
        return core_fail(CMCR_EFORMAT, "%s: missing tensor 'audio_branch.layers.0.blocks.0.norm1.weight' (%s)", b->file,
                         WHAT);
    if (stages > HTSAT_MAX_STAGES)
        return core_fail(CMCR_EUNSUPPORTED, "%s: more than %d stages ('audio_branch.layers.%d')", b->file,
                         HTSAT_MAX_STAGES, HTSAT_MAX_STAGES);
    in->stages = stages;
    in->width = in->embed << (stages - 1);
    st = read_stages(b, in);
    if (!st) st = bind_dim(b, "audio_projection.0.weight", 2, 0, 1, MAX_WIDTH, &in->hidden);
    if (!st) st = bind_dim(b, "audio_projection.2.weight", 2, 0, 1, MAX_WIDTH, &in->embed_dim);
    if (!st) st = bind_dim(b, "audio_branch.tscam_conv.weight", 4, 0, 1, MAX_CLASSES, &in->classes);
    return st;
}

/* Each stage's map, window and shift, and its tables: the window-order permutations and the
 * shifted map's regions (the three bands [0, res - win), [res - win, res - shift), [res - shift,
 * res) per axis of Swin's mask). */
static cmcr_status set_stages(htsat_model *m)
{
    const htsat_info *in = &m->info;
    int64_t cells = 0;
    for (int s = 0; s < in->stages; s++) {
        stage *S = &m->st[s];
        S->width = (int64_t)in->embed << s;
        S->heads = in->heads[s];
        S->depth = in->depths[s];
        S->res = GRID >> s;
        S->win = S->res <= in->window ? S->res : in->window;
        S->shift = S->res <= in->window ? 0 : in->window / 2;
        if (S->res % S->win)
            return core_fail(CMCR_EUNSUPPORTED, "%s: stage %d's %lld x %lld map does not divide into windows of %lld",
                             m->name, s, (long long)S->res, (long long)S->res, (long long)S->win);
        cells += S->res * S->res;
    }
    m->perms = malloc(sizeof(int32_t) * 2 * (size_t)cells);
    m->regions = malloc((size_t)cells);
    if (!m->perms || !m->regions) return core_fail(CMCR_ENOMEM, "%s: out of memory", m->name);
    int32_t *pp = m->perms;
    uint8_t *rp = m->regions;
    for (int s = 0; s < in->stages; s++) {
        stage *S = &m->st[s];
        const int64_t res = S->res, w = S->win, nww = res / w, T = res * res;
        S->perm[0] = pp, S->perm[1] = pp + T, S->region = rp;
        for (int64_t r = 0; r < T; r++) {
            int64_t win = r / (w * w), a = r % (w * w);
            int64_t i = win / nww * w + a / w, j = win % nww * w + a % w; /* in the shifted map */
            S->perm[0][r] = (int32_t)(i * res + j);
            S->perm[1][r] = (int32_t)((i + S->shift) % res * res + (j + S->shift) % res);
            int ri = i < res - w ? 0 : i < res - S->shift ? 1 : 2, rj = j < res - w ? 0 : j < res - S->shift ? 1 : 2;
            S->region[r] = (uint8_t)(ri * 3 + rj);
        }
        pp += 2 * T, rp += T;
    }
    return CMCR_OK;
}

/* ------------------------------------------------------------------ derived weights */

/* bn0 as y = x a + b, as PyTorch's eval BatchNorm computes it: a = w / sqrt(var + eps). */
static cmcr_status fold_bn0(htsat_model *m)
{
    const float *w = m->bn0, *bias = w + HTSAT_MELS, *mean = bias + HTSAT_MELS, *var = mean + HTSAT_MELS;
    for (int f = 0; f < HTSAT_MELS; f++) {
        if (!(var[f] + 1e-5f > 0))
            return core_fail(CMCR_EVALUE, "%s: tensor 'audio_branch.bn0.running_var' has %g at %d (a variance)", m->name,
                             (double)var[f], f);
        float inv = 1.0f / sqrtf(var[f] + 1e-5f);
        m->bn0_a[f] = inv * w[f];
        m->bn0_b[f] = bias[f] - mean[f] * m->bn0_a[f];
    }
    return CMCR_OK;
}

/* A convolution followed by BatchNorm bn (weight, bias, mean, var) as one Linear layer. */
static cmcr_status fold_bn(const htsat_model *m, tf_linear *l, const float *bn, const char *what)
{
    const int64_t c = l->out;
    float *w = (float *)l->w, *b = (float *)l->b;
    for (int64_t o = 0; o < c; o++) {
        float var = bn[3 * c + o];
        if (!(var + 1e-5f > 0))
            return core_fail(CMCR_EVALUE, "%s: tensor 'audio_branch.patch_embed.fusion_model.%s.running_var' has %g at "
                             "%lld (a variance)", m->name, what, (double)var, (long long)o);
        float a = bn[o] / sqrtf(var + 1e-5f);
        for (int64_t i = 0; i < l->in; i++) w[o * l->in + i] *= a;
        b[o] = (b[o] - bn[2 * c + o]) * a + bn[c + o];
    }
    return CMCR_OK;
}

/* Each block's position bias expanded to heads x N x N. */
static cmcr_status expand_biases(htsat_model *m)
{
    uint64_t total = 0;
    for (int s = 0; s < m->info.stages; s++) {
        const stage *S = &m->st[s];
        total += (uint64_t)(S->depth * S->heads * S->win * S->win * S->win * S->win);
    }
    if (!(m->biases = core_xmalloc((size_t)total * sizeof(float))))
        return core_fail(CMCR_ENOMEM, "%s: out of memory", m->name);
    float *p = m->biases;
    for (int s = 0; s < m->info.stages; s++) {
        const stage *S = &m->st[s];
        const int64_t n = S->win * S->win;
        for (int64_t k = 0; k < S->depth; k++) {
            hblock *blk = &S->blocks[k];
            blk->bias = p;
            for (int64_t h = 0; h < S->heads; h++)
                for (int64_t a = 0; a < n; a++)
                    for (int64_t c = 0; c < n; c++) *p++ = blk->table[rel_index(S->win, a, c) * S->heads + h];
        }
    }
    return CMCR_OK;
}

/* The Linear layers (for the bfloat16 copies): *n of them into ls (NULL: count only). */
static size_t linears(htsat_model *m, tf_linear **ls)
{
    tf_linear *fixed[] = {&m->patch, &m->local, &m->la1, &m->la2, &m->ga1, &m->ga2, &m->proj0, &m->proj2};
    size_t n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        if (ls) ls[n] = fixed[i];
        n++;
    }
    for (int s = 0; s < m->info.stages; s++) {
        stage *S = &m->st[s];
        for (int64_t k = 0; k < S->depth; k++) {
            tf_linear *l4[4] = {&S->blocks[k].qkv, &S->blocks[k].proj, &S->blocks[k].fc1, &S->blocks[k].fc2};
            for (int j = 0; j < 4; j++, n++)
                if (ls) ls[n] = l4[j];
        }
        if (s < m->info.stages - 1) {
            if (ls) ls[n] = &S->merge;
            n++;
        }
    }
    return n;
}

static cmcr_status make_bf16(htsat_model *m)
{
    size_t n = linears(m, NULL);
    tf_linear **ls = malloc(sizeof *ls * n);
    if (!ls) return core_fail(CMCR_ENOMEM, "%s: out of memory", m->name);
    linears(m, ls);
    cmcr_status st = bind_bf16(ls, n, m->name, &m->params16);
    free(ls);
    return st;
}

/* ------------------------------------------------------------------ loading */

static cmcr_status build(htsat_model *m, const cmcr_tensors *ts)
{
    binder b = {.ts = ts, .file = m->name, .what = WHAT};
    cmcr_status st = read_sizes(&b, &m->info);
    if (!st) st = set_stages(m);
    if (st) return st;
    int64_t blocks = 0;
    for (int s = 0; s < m->info.stages; s++) blocks += m->st[s].depth;
    if (!(m->blocks = calloc((size_t)blocks + 1, sizeof *m->blocks))) return core_fail(CMCR_ENOMEM, "%s: out of memory", m->name);
    hblock *bp = m->blocks;
    for (int s = 0; s < m->info.stages; s++) m->st[s].blocks = bp, bp += m->st[s].depth;
    /* pass 1: check every tensor and count; nothing large is allocated before it passes */
    st = bind_all(&b, m);
    if (st) return st;
    uint64_t floats = b.used;
    if (floats > SIZE_MAX / sizeof(float) || !(m->params = core_xmalloc((size_t)floats * sizeof(float))))
        return core_fail(CMCR_ENOMEM, "%s: out of memory for %llu weights", m->name, (unsigned long long)floats);
    b.base = m->params;
    b.used = 0;
    st = bind_all(&b, m);
    if (!st) st = fold_bn0(m);
    if (!st) st = fold_bn(m, &m->la1, m->bn_la1, "local_att.1");
    if (!st) st = fold_bn(m, &m->la2, m->bn_la2, "local_att.4");
    if (!st) st = fold_bn(m, &m->ga1, m->bn_ga1, "global_att.2");
    if (!st) st = fold_bn(m, &m->ga2, m->bn_ga2, "global_att.5");
    return st ? st : expand_biases(m);
}

cmcr_status htsat_model_from_tensors_with(const cmcr_tensors *ts, const char *name, int float32_only, htsat_model **out)
{
    if (!ts || !name || !out) return core_fail(CMCR_EINVAL, "htsat_model_from_tensors: NULL argument");
    *out = NULL;
    htsat_model *m = calloc(1, sizeof *m);
    if (!m) return core_fail(CMCR_ENOMEM, "out of memory");
    cmcr_printable(m->name, sizeof m->name, name);
    cmcr_status st = build(m, ts);
    if (!st && !float32_only && mm_bf16_check() == CMCR_OK) st = make_bf16(m);
    if (st) {
        htsat_model_free(m);
        return st;
    }
    *out = m;
    return CMCR_OK;
}

void htsat_model_free(htsat_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->params16);
    free(m->biases);
    free(m->perms);
    free(m->regions);
    free(m->blocks);
    free(m);
}

cmcr_status htsat_model_from_tensors(const cmcr_tensors *ts, const char *name, htsat_model **out)
{
    return htsat_model_from_tensors_with(ts, name, 0, out);
}

const htsat_info *htsat_model_info(const htsat_model *m) { return m ? &m->info : NULL; }

/* ------------------------------------------------------------------ the forward pass */

/* Scratch of a chunk of nb clips. */
typedef struct run {
    tf_prec prec;
    int64_t nb;
    float *x;     /* nb x 4096 x E: the residual stream (fewer rows, wider, later) */
    float *h;     /* as x: normalised rows, attention output */
    float *qkv;   /* 3 x x */
    float *mlp;   /* 4 x x */
    float *img;   /* nb x 4 x 256 x 256 */
    float *mel;   /* nb x 4 x (1001 + 1024) x 64: bn0's output and the interpolation */
    float *pat;   /* the patch matrices */
    float *att;   /* per thread: attention scratch */
    int64_t att_per;
    void *block;
} run;

static void run_free(run *r)
{
    if (r->prec.ctx) mm_ctx_free(r->prec.ctx);
    free(r->block);
}

static cmcr_status run_new(const htsat_model *m, int bf16, int64_t nb, run *r)
{
    memset(r, 0, sizeof *r);
    const int64_t E = m->info.embed, T = GRID * GRID, nloc = 3 * GRID * LOCAL_W;
    int64_t maxn = 0, maxhd = 0;
    for (int s = 0; s < m->info.stages; s++) {
        int64_t n = m->st[s].win * m->st[s].win, hd = m->st[s].width / m->st[s].heads;
        maxn = n > maxn ? n : maxn;
        maxhd = hd > maxhd ? hd : maxhd;
    }
    r->nb = nb;
    r->att_per = 4 * maxn * maxhd + maxn * maxn;
    int threads = omp_get_max_threads();
    uint64_t xs = (uint64_t)(nb * T * E), pat = (uint64_t)(nb * T * PATCH * PATCH);
    pat = pat > (uint64_t)(nloc * 3 * PATCH * PATCH) ? pat : (uint64_t)(nloc * 3 * PATCH * PATCH);
    uint64_t widest = (uint64_t)(4 * E > 3 * PATCH * PATCH ? 4 * E : 3 * PATCH * PATCH);
    uint64_t a16 = (uint64_t)(nb * T) * widest, fixed = (uint64_t)m->info.width + (uint64_t)m->info.hidden;
    a16 = a16 > (uint64_t)nloc * widest ? a16 : (uint64_t)nloc * widest;
    uint64_t total = 9 * xs + (uint64_t)(nb * 4 * SPEC * SPEC) + (uint64_t)(nb * 4 * (HTSAT_FRAMES + TIME) * HTSAT_MELS) +
                     pat + (uint64_t)threads * (uint64_t)r->att_per + nb * fixed + (bf16 ? a16 / 2 + 1 : 0);
    if (total > SIZE_MAX / sizeof(float) / 2 || !(r->block = core_xmalloc((size_t)total * sizeof(float))))
        return core_fail(CMCR_ENOMEM, "%s: out of memory for the forward pass (%llu floats)", m->name,
                         (unsigned long long)total);
    float *p = r->block;
    r->x = p, p += xs;
    r->h = p, p += xs;
    r->qkv = p, p += 3 * xs;
    r->mlp = p, p += 4 * xs + nb * fixed; /* room for the projection's rows too */
    r->img = p, p += nb * 4 * SPEC * SPEC;
    r->mel = p, p += nb * 4 * (HTSAT_FRAMES + TIME) * HTSAT_MELS;
    r->pat = p, p += pat;
    r->att = p, p += threads * r->att_per;
    if (!bf16) return CMCR_OK;
    r->prec.bf16 = 1;
    r->prec.a16 = (uint16_t *)p;
    cmcr_status st = mm_ctx_new(&r->prec.ctx);
    if (st) return core_fail(CMCR_EUNSUPPORTED, "%s: bf16: %s", m->name, cmcr_last_error());
    return CMCR_OK;
}

/* bn0, the interpolation to 1024 frames and the fold into 256 x 256 (row = chunk * 64 + mel
 * bin, column = frame in the chunk) of each channel that is used: channel 0, and 1-3 of the
 * long clips. */
static void front(const htsat_model *m, run *r, const float *mel, const uint8_t *longer, int64_t nb)
{
    const int64_t F = HTSAT_MELS, per = (HTSAT_FRAMES + TIME) * F;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < nb * 4; t++) {
        int64_t i = t / 4, c = t % 4;
        if (c && !longer[i]) continue;
        const float *src = mel + t * HTSAT_FRAMES * F;
        float *bn = r->mel + t * per, *y = bn + HTSAT_FRAMES * F, *img = r->img + t * SPEC * SPEC;
        for (int64_t k = 0; k < HTSAT_FRAMES; k++)
            for (int64_t f = 0; f < F; f++) bn[k * F + f] = src[k * F + f] * m->bn0_a[f] + m->bn0_b[f];
        htsat_bicubic_rows(y, bn, HTSAT_FRAMES, TIME, F);
        for (int64_t o = 0; o < TIME; o++)
            for (int64_t f = 0; f < F; f++) img[(o / SPEC * F + f) * SPEC + o % SPEC] = y[o * F + f];
    }
}

/* Rows of kh x kw patches (stride = size) of gh x gw cells from a 256 x 256 image, each in
 * the convolution weight's (row, column) order. */
static void patches(float *dst, const float *img, int64_t gh, int64_t gw, int64_t kh, int64_t kw)
{
    for (int64_t gy = 0; gy < gh; gy++)
        for (int64_t gx = 0; gx < gw; gx++, dst += kh * kw)
            for (int64_t y = 0; y < kh; y++)
                memcpy(dst + y * kw, img + (gy * kh + y) * SPEC + gx * kw, sizeof(float) * (size_t)kw);
}

/* y = relu(y) in place. */
static void relu(float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0;
}

/* AFF of clip i's global embedding g (4096 x E, in place) with its three chunks' local
 * embedding: out = 2 g wei + 2 l (1 - wei), wei = sigmoid(local_att(g + l) +
 * global_att(mean of g + l)). */
static cmcr_status fuse(const htsat_model *m, run *r, int64_t i, float *g)
{
    const int64_t E = m->info.embed, T = GRID * GRID, nloc = 3 * GRID * LOCAL_W, K = PATCH * 3 * PATCH;
    float *l = r->qkv, *xa = l + T * E, *xl = xa + T * E, *hid = r->mlp, *lo = hid + T * E, *pool = lo + nloc * E;
    for (int64_t k = 0; k < 3; k++)
        patches(r->pat + k * GRID * LOCAL_W * K, r->img + (i * 4 + 1 + k) * SPEC * SPEC, GRID, LOCAL_W, PATCH, 3 * PATCH);
    cmcr_status st = tf_linear_forward(&r->prec, lo, r->pat, &m->local, nloc);
    if (st) return st;
    /* (chunk, row, column) -> row, chunk * 21 + column; the 64th column stays zero */
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; t++) {
        int64_t gy = t / GRID, col = t % GRID, k = col / LOCAL_W;
        if (k < 3) memcpy(l + t * E, lo + ((k * GRID + gy) * LOCAL_W + col % LOCAL_W) * E, sizeof(float) * (size_t)E);
        else memset(l + t * E, 0, sizeof(float) * (size_t)E);
        for (int64_t c = 0; c < E; c++) xa[t * E + c] = g[t * E + c] + l[t * E + c];
    }
    st = tf_linear_forward(&r->prec, hid, xa, &m->la1, T);
    if (st) return st;
    relu(hid, T * m->la1.out);
    st = tf_linear_forward(&r->prec, xl, hid, &m->la2, T);
    if (st) return st;
    for (int64_t c = 0; c < E; c++) {
        double s = 0;
        for (int64_t t = 0; t < T; t++) s += xa[t * E + c];
        pool[c] = (float)(s / (double)T);
    }
    float *pg = pool + E, *pgl = pg + E;
    st = tf_linear_forward(&r->prec, pg, pool, &m->ga1, 1);
    if (st) return st;
    relu(pg, m->ga1.out);
    st = tf_linear_forward(&r->prec, pgl, pg, &m->ga2, 1);
    if (st) return st;
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < E; c++) {
            float w = 1.0f / (1.0f + expf(-(xl[t * E + c] + pgl[c])));
            g[t * E + c] = 2 * g[t * E + c] * w + 2 * l[t * E + c] * (1 - w);
        }
    return CMCR_OK;
}

/* Attention of one window and head: qkv's N rows (3 C apart) from the window's first row, the
 * head's columns; out (N rows, C apart). Scores: q . k scale + bias, -100 between rows of
 * different regions (reg, shifted windows), softmax in float32. The two products go through
 * mm_sgemm on packed copies (inside the parallel loop over windows they run on the calling
 * thread alone): hand loops ran at a tenth of its speed. w: 4 N hd + N^2 floats. */
CMCR_VECTOR_CLONES
static void attend(float *out, const float *qkv, int64_t C, int64_t hd, int64_t N, float scale, const float *bias,
                   const uint8_t *reg, float *w)
{
    float *q = w, *k = q + N * hd, *v = k + N * hd, *o = v + N * hd, *s = o + N * hd;
    const size_t row = sizeof(float) * (size_t)hd;
    for (int64_t j = 0; j < N; j++) {
        memcpy(q + j * hd, qkv + j * 3 * C, row);
        memcpy(k + j * hd, qkv + j * 3 * C + C, row);
        memcpy(v + j * hd, qkv + j * 3 * C + 2 * C, row);
    }
    mm_sgemm(0, 1, N, N, hd, scale, q, k, 0.0f, s);
    for (int64_t i = 0; i < N; i++) {
        float *si = s + i * N, mx = -INFINITY, sum = 0;
        const float *bi = bias + i * N;
        for (int64_t j = 0; j < N; j++) si[j] += bi[j];
        if (reg)
            for (int64_t j = 0; j < N; j++) si[j] += reg[i] != reg[j] ? -100.0f : 0.0f;
        for (int64_t j = 0; j < N; j++) mx = si[j] > mx ? si[j] : mx;
        for (int64_t j = 0; j < N; j++) sum += si[j] = vm_exp_nonpositive(si[j] - mx);
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < N; j++) si[j] *= inv;
    }
    mm_sgemm(0, 0, N, hd, N, 1.0f, s, v, 0.0f, o);
    for (int64_t i = 0; i < N; i++) memcpy(out + i * C, o + i * hd, row);
}

static void window_attention(const stage *S, const hblock *blk, run *r, int64_t nb, int shifted)
{
    const int64_t C = S->width, hd = C / S->heads, N = S->win * S->win, nw = S->res * S->res / N;
    const int64_t pairs = nb * nw * S->heads;
    const float scale = 1.0f / sqrtf((float)hd);
    #pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < pairs; p++) {
        int64_t win = p / S->heads, h = p % S->heads, row = win * N;
        const uint8_t *reg = shifted ? S->region + (win % nw) * N : NULL;
        attend(r->h + row * C + h * hd, r->qkv + row * 3 * C + h * hd, C, hd, N, scale, blk->bias + h * N * N, reg,
               r->att + omp_get_thread_num() * r->att_per);
    }
}

/* h row r = LayerNorm(x row perm[r] of its clip): the window-order rows of a block. */
static void gather_norm(float *h, const float *x, const int32_t *perm, int64_t T, int64_t nb, int64_t C,
                        const tf_norm *ln)
{
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nb * T; r++)
        memcpy(h + r * C, x + (r / T * T + perm[r % T]) * C, sizeof(float) * (size_t)C);
    tf_layernorm(h, h, ln, nb * T, C);
}

/* x row perm[r] += src row r (back from window order), and h = LayerNorm(x) for the MLP. */
static void scatter_add_norm(float *x, float *h, const float *src, const int32_t *perm, int64_t T, int64_t nb,
                             int64_t C, const tf_norm *ln)
{
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nb * T; r++) {
        float *xr = x + (r / T * T + perm[r % T]) * C;
        const float *sr = src + r * C;
        for (int64_t c = 0; c < C; c++) xr[c] += sr[c];
    }
    tf_layernorm(h, x, ln, nb * T, C);
}

static void add_rows(float *x, const float *y, int64_t n)
{
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

static cmcr_status swin_block(const stage *S, const hblock *blk, run *r, int64_t nb, int shifted)
{
    const int64_t C = S->width, T = S->res * S->res, rows = nb * T;
    const int32_t *perm = S->perm[shifted];
    gather_norm(r->h, r->x, perm, T, nb, C, &blk->n1);
    cmcr_status st = tf_linear_forward(&r->prec, r->qkv, r->h, &blk->qkv, rows);
    if (st) return st;
    window_attention(S, blk, r, nb, shifted);
    st = tf_linear_forward(&r->prec, r->qkv, r->h, &blk->proj, rows);
    if (st) return st;
    scatter_add_norm(r->x, r->h, r->qkv, perm, T, nb, C, &blk->n2);
    st = tf_linear_forward(&r->prec, r->mlp, r->h, &blk->fc1, rows);
    if (st) return st;
    tf_gelu(r->mlp, rows * 4 * C);
    st = tf_linear_forward(&r->prec, r->qkv, r->mlp, &blk->fc2, rows);
    if (!st) add_rows(r->x, r->qkv, rows * C);
    return st;
}

/* PatchMerging: x0 = x[0::2, 0::2], x1 = x[1::2, 0::2], x2 = x[0::2, 1::2], x3 = x[1::2, 1::2]
 * (row, column) side by side, LayerNorm, Linear to 2 C. */
static cmcr_status merge(const stage *S, run *r, int64_t nb)
{
    const int64_t C = S->width, res = S->res, half = res / 2, rows = nb * half * half;
    #pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < rows; q++) {
        int64_t i = q / (half * half), y = q % (half * half) / half, x = q % half;
        for (int k = 0; k < 4; k++) {
            int64_t sy = 2 * y + (k & 1), sx = 2 * x + (k >> 1);
            memcpy(r->h + (q * 4 + k) * C, r->x + ((i * res + sy) * res + sx) * C, sizeof(float) * (size_t)C);
        }
    }
    tf_layernorm(r->h, r->h, &S->merge_norm, rows, 4 * C);
    return tf_linear_forward(&r->prec, r->x, r->h, &S->merge, rows);
}

static cmcr_status chunk(const htsat_model *m, run *r, const float *mel, const uint8_t *longer, int64_t nb, float *emb)
{
    const htsat_info *in = &m->info;
    const int64_t E = in->embed, T = GRID * GRID;
    front(m, r, mel, longer, nb);
    for (int64_t i = 0; i < nb; i++) patches(r->pat + i * T * PATCH * PATCH, r->img + i * 4 * SPEC * SPEC, GRID, GRID, PATCH, PATCH);
    cmcr_status st = tf_linear_forward(&r->prec, r->x, r->pat, &m->patch, nb * T);
    for (int64_t i = 0; !st && i < nb; i++)
        if (longer[i]) st = fuse(m, r, i, r->x + i * T * E);
    if (st) return st;
    tf_layernorm(r->x, r->x, &m->patch_norm, nb * T, E);
    for (int s = 0; s < in->stages && !st; s++) {
        const stage *S = &m->st[s];
        for (int64_t k = 0; k < S->depth && !st; k++) st = swin_block(S, &S->blocks[k], r, nb, S->shift && k % 2);
        if (!st && s < in->stages - 1) st = merge(S, r, nb);
    }
    if (st) return st;
    const int64_t W = in->width, TL = m->st[in->stages - 1].res * m->st[in->stages - 1].res;
    tf_layernorm(r->h, r->x, &m->norm, nb * TL, W);
    float *pool = r->mlp, *hid = pool + nb * W;
    for (int64_t i = 0; i < nb; i++)
        for (int64_t c = 0; c < W; c++) {
            double s = 0;
            for (int64_t t = 0; t < TL; t++) s += r->h[(i * TL + t) * W + c];
            pool[i * W + c] = (float)(s / (double)TL);
        }
    st = tf_linear_forward(&r->prec, hid, pool, &m->proj0, nb);
    if (st) return st;
    relu(hid, nb * in->hidden);
    return tf_linear_forward(&r->prec, emb, hid, &m->proj2, nb);
}

static cmcr_status check_bf16(const htsat_model *m, int bf16) { return bind_check_bf16(m->name, m->params16, bf16); }

cmcr_status htsat_encode(const htsat_model *m, const float *mel_fusion, const uint8_t *longer, int64_t n, int bf16,
                         float *emb)
{
    if (!m || n < 0 || (n > 0 && (!mel_fusion || !longer || !emb)))
        return core_fail(CMCR_EINVAL, "htsat_encode: NULL argument or negative count");
    cmcr_status st = check_bf16(m, bf16);
    const int64_t per = HTSAT_CHANNELS * HTSAT_FRAMES * HTSAT_MELS;
    for (int64_t i = 0; !st && i < n * HTSAT_CHANNELS; i++) /* rows: frames, columns: mel bins */
        st = vm_check_finite(mel_fusion + i * HTSAT_FRAMES * HTSAT_MELS, HTSAT_FRAMES, HTSAT_MELS, 0,
                             "mel_fusion of clip %lld, channel %d", (long long)(i / HTSAT_CHANNELS), (int)(i % HTSAT_CHANNELS));
    if (st || n == 0) return st;
    const int64_t nb = n < CHUNK_CLIPS ? n : CHUNK_CLIPS, D = m->info.embed_dim;
    run r;
    st = run_new(m, bf16, nb, &r);
    for (int64_t i = 0; !st && i < n; i += nb) {
        int64_t k = n - i < nb ? n - i : nb;
        st = chunk(m, &r, mel_fusion + i * per, longer + i, k, emb + i * D);
    }
    run_free(&r);
    return st;
}
