/* transformer.c - inference layers of pre-LN transformers (see transformer.h). */
#include "nn/transformer.h"
#include "runtime/half.h"
#include "runtime/vmath.h"

#include <math.h>
#include <string.h>

bool tf_scratch_sizes(const tf_shape *s, int64_t seqs, int64_t tokens, uint64_t sizes[4])
{
    uint64_t rows;
    if (s->heads <= 0 || s->width % s->heads != 0) return false;
    return core_mul_u64((uint64_t)seqs, (uint64_t)tokens, &rows) && core_mul_u64(rows, (uint64_t)s->width, &sizes[0]) &&
           core_mul_u64(sizes[0], 3, &sizes[1]) && core_mul_u64(rows, (uint64_t)s->mlp, &sizes[2]) &&
           core_mul_u64((uint64_t)seqs * (uint64_t)s->heads, 4 * (uint64_t)s->width / (uint64_t)s->heads + (uint64_t)tokens, &sizes[3]) &&
           core_mul_u64(sizes[3], (uint64_t)tokens, &sizes[3]);
}

/* One row: two passes (mean, then the centred variance) in double, as exact as PyTorch's
 * float32 Welford within a few ulps. */
CMCR_VECTOR_CLONES
static void layernorm_row(float *y, const float *x, const tf_norm *ln, int64_t n)
{
    double sum = 0, var = 0;
    #pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; j++) sum += x[j];
    double mean = sum / (double)n;
    #pragma omp simd reduction(+ : var)
    for (int64_t j = 0; j < n; j++) var += (x[j] - mean) * (x[j] - mean);
    float m = (float)mean, inv = (float)(1.0 / sqrt(var / (double)n + ln->eps));
    for (int64_t j = 0; j < n; j++) y[j] = (x[j] - m) * inv * ln->g[j] + ln->b[j];
}

void tf_layernorm(float *y, const float *x, const tf_norm *ln, int64_t rows, int64_t n)
{
    #pragma omp parallel for schedule(static) if (rows * n > 32768)
    for (int64_t r = 0; r < rows; r++) layernorm_row(y + r * n, x + r * n, ln, n);
}

/* x += y (n floats). */
CMCR_VECTOR_CLONES
static void add_range(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

cmcr_status tf_linear_forward(const tf_prec *p, float *y, const float *x, const tf_linear *l, int64_t rows)
{
    if (!p->bf16) {
        if (l->b) {
            mm_linear(x, l->w, l->b, rows, l->in, l->out, y);
        } else {
            mm_sgemm(0, 1, rows, l->out, l->in, 1.0f, x, l->w, 0.0f, y);
        }
        return CMCR_OK;
    }
    mm_bf16_from_f32(x, p->a16, rows * l->in);
    cmcr_status st = mm_bf16_matmul(p->ctx, p->a16, l->w16, y, rows, l->out, l->in, 1, 1.0f, 0);
    if (st || !l->b) return st;
    #pragma omp parallel for schedule(static) if (rows * l->out > 65536)
    for (int64_t r = 0; r < rows; r++) add_range(y + r * l->out, l->b, l->out);
    return CMCR_OK;
}

/* sigmoid(z) = 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) below: the exponential's
 * argument is never positive, so the vectorised vm_exp_nonpositive serves both (libm's expf,
 * one call per element, took as long as the MLP's products). */
CMCR_VECTOR_CLONES
static void quickgelu_range(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float z = 1.702f * x[i];
        float e = vm_exp_nonpositive(-fabsf(z));
        float s = z >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
        x[i] *= s;
    }
}

void tf_quickgelu(float *x, int64_t n)
{
    enum { CHUNK = 16384 };
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i += CHUNK) quickgelu_range(x + i, n - i < CHUNK ? n - i : CHUNK);
}

/* erfc(a) for a >= 0 by Abramowitz & Stegun 7.1.26, t = 1 / (1 + p a):
 * t (a1 + t (a2 + ...)) e^(-a^2). Then 1 + erf(z) is 2 - erfc(|z|) for z >= 0 and erfc(|z|)
 * below: no cancellation for negative z, where GELU's value is small. */
CMCR_VECTOR_CLONES
static void gelu_range(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]) * 0.70710678f;
        float t = 1.0f / (1.0f + 0.3275911f * a);
        float q = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        q *= vm_exp_nonpositive(-a * a);
        x[i] *= 0.5f * (x[i] >= 0 ? 2.0f - q : q);
    }
}

void tf_gelu(float *x, int64_t n)
{
    enum { CHUNK = 16384 };
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i += CHUNK) gelu_range(x + i, n - i < CHUNK ? n - i : CHUNK);
}

/* Softmax of each row of s (rows x n, in place); with causal, row i over columns 0..i only
 * (the rest set to 0). keep (n, or NULL): columns whose key is a pad (0) get weight 0; a row
 * left with no column at all gets equal weights on all of them (see tf_attention_masked). */
CMCR_VECTOR_CLONES
static void softmax_rows(float *s, int64_t rows, int64_t n, int causal, const uint8_t *keep)
{
    for (int64_t i = 0; i < rows; i++) {
        float *r = s + i * n, mx = -INFINITY, sum = 0;
        int64_t m = causal ? i + 1 : n;
        if (keep)
            for (int64_t j = 0; j < m; j++) r[j] = keep[j] ? r[j] : -INFINITY;
        for (int64_t j = 0; j < m; j++) mx = r[j] > mx ? r[j] : mx;
        if (mx == -INFINITY) { /* every key masked */
            for (int64_t j = 0; j < n; j++) r[j] = j < m ? 1.0f / (float)m : 0;
            continue;
        }
        /* The exponentials in a loop of their own, which vectorises (libm's expf was a call per
         * score, a tenth of PointBERT's time); a masked key's weight is exactly 0, as the
         * additive mask gives (the clamp in vm_exp_nonpositive would leave 4.5e-38). */
        for (int64_t j = 0; j < m; j++) r[j] = vm_exp_nonpositive(r[j] - mx);
        if (keep)
            for (int64_t j = 0; j < m; j++) r[j] = keep[j] ? r[j] : 0.0f;
        for (int64_t j = 0; j < m; j++) sum += r[j];
        float inv = 1.0f / sum;
        for (int64_t j = 0; j < m; j++) r[j] *= inv;
        for (int64_t j = m; j < n; j++) r[j] = 0;
    }
}

/* Rows of hd floats between a packed block (rows x hd) and a strided one (stride apart). */
static void gather(float *dst, const float *src, int64_t rows, int64_t hd, int64_t stride)
{
    for (int64_t i = 0; i < rows; i++) memcpy(dst + i * hd, src + i * stride, sizeof(float) * (size_t)hd);
}

static void scatter(float *dst, const float *src, int64_t rows, int64_t hd, int64_t stride)
{
    for (int64_t i = 0; i < rows; i++) memcpy(dst + i * stride, src + i * hd, sizeof(float) * (size_t)hd);
}

/* Attention of one (sequence, head) pair: qkv points at the pair's first query (rows 3 width
 * apart), out at its output. The two products go through mm_sgemm on packed copies of q, k
 * and v; inside the parallel loop over pairs they run on this thread alone. w: 4 tokens x hd
 * + tokens^2 floats. */
static void attend_pair(float *out, const float *qkv, int64_t width, int64_t hd, int64_t tokens, int causal,
                        const uint8_t *keep, float *w)
{
    float *q = w, *k = q + tokens * hd, *v = k + tokens * hd, *o = v + tokens * hd, *sc = o + tokens * hd;
    gather(q, qkv, tokens, hd, 3 * width);
    gather(k, qkv + width, tokens, hd, 3 * width);
    gather(v, qkv + 2 * width, tokens, hd, 3 * width);
    mm_sgemm(0, 1, tokens, tokens, hd, 1.0f / sqrtf((float)hd), q, k, 0.0f, sc);
    softmax_rows(sc, tokens, tokens, causal, keep);
    mm_sgemm(0, 0, tokens, hd, tokens, 1.0f, sc, v, 0.0f, o);
    scatter(out, o, tokens, hd, width);
}

void tf_attention_masked(float *out, const float *qkv, const tf_shape *s, int64_t seqs, int64_t tokens,
                         const uint8_t *keys, float *work)
{
    const int64_t hd = s->width / s->heads, pairs = seqs * s->heads, per = 4 * tokens * hd + tokens * tokens;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int64_t p = 0; p < pairs; p++) {
        int64_t seq = p / s->heads, h = p % s->heads;
        const float *base = qkv + seq * tokens * 3 * s->width + h * hd;
        attend_pair(out + seq * tokens * s->width + h * hd, base, s->width, hd, tokens, s->causal,
                    keys ? keys + seq * tokens : NULL, work + p * per);
    }
}

void tf_attention(float *out, const float *qkv, const tf_shape *s, int64_t seqs, int64_t tokens, float *work)
{
    tf_attention_masked(out, qkv, s, seqs, tokens, NULL, work);
}

static void add_into(float *x, const float *y, int64_t n)
{
    enum { CHUNK = 16384 };
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i += CHUNK) add_range(x + i, y + i, n - i < CHUNK ? n - i : CHUNK);
}

cmcr_status tf_block_forward(const tf_prec *p, float *x, const tf_block *b, const tf_shape *s, int64_t seqs,
                             int64_t tokens, const tf_scratch *w)
{
    const int64_t rows = seqs * tokens, n = rows * s->width;
    tf_layernorm(w->h, x, &b->ln1, rows, s->width);
    cmcr_status st = tf_linear_forward(p, w->qkv, w->h, &b->qkv, rows);
    if (st) return st;
    tf_attention(w->h, w->qkv, s, seqs, tokens, w->att);
    /* out_proj into the qkv buffer (free now), then the residual */
    st = tf_linear_forward(p, w->qkv, w->h, &b->out, rows);
    if (st) return st;
    add_into(x, w->qkv, n);
    tf_layernorm(w->h, x, &b->ln2, rows, s->width);
    st = tf_linear_forward(p, w->mlp, w->h, &b->fc1, rows);
    if (st) return st;
    if (s->act == TF_GELU) tf_gelu(w->mlp, rows * s->mlp);
    else tf_quickgelu(w->mlp, rows * s->mlp);
    st = tf_linear_forward(p, w->qkv, w->mlp, &b->fc2, rows);
    if (st) return st;
    add_into(x, w->qkv, n);
    return CMCR_OK;
}
