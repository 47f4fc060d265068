/* transformer.h - inference layers of pre-LN transformers (CLIP's towers; later CLAP's
 * RoBERTa and ULIP's PointBERT): LayerNorm, multi-head self-attention over a packed qkv
 * projection, the activations (QuickGELU, exact GELU), the MLP and the residual block.
 *
 * Activations are row-major: a batch of `seqs` sequences of `tokens` rows each, `width`
 * columns, sequence after sequence (seqs * tokens rows in all). The Linear layers run on all
 * rows of the batch at once (one product each); attention runs per (sequence, head), in
 * parallel over those pairs. Nothing here allocates or keeps state: scratch comes from the
 * caller (tf_scratch), so every call is re-entrant. */
#ifndef CMCR_TRANSFORMER_H
#define CMCR_TRANSFORMER_H
#include "runtime/matmul.h"

#include <stdint.h>

/* A Linear layer in PyTorch's layout: w is out x in, b (out, or NULL) the bias. w16 is w in
 * bfloat16 (made once, when the weights are loaded), NULL when bf16 products are not
 * available. */
typedef struct tf_linear {
    const float *w, *b;
    const uint16_t *w16;
    int64_t in, out;
} tf_linear;

/* LayerNorm over the last dimension: y = (x - mean) / sqrt(var + eps) * g + b. */
typedef struct tf_norm {
    const float *g, *b;
    float eps;
} tf_norm;

/* One pre-LN residual block: x += attn(ln1 x); x += fc2(act(fc1(ln2 x))). qkv is the packed
 * projection (3 width x width: the query rows, then the key rows, then the value rows). */
typedef struct tf_block {
    tf_norm ln1, ln2;
    tf_linear qkv, out, fc1, fc2;
} tf_block;

/* The MLP's activation. TF_QUICKGELU (0, so a zeroed tf_shape keeps OpenAI CLIP's) is
 * x * sigmoid(1.702 x); TF_GELU the exact, erf-based GELU (torch.nn.GELU() by default, Hugging
 * Face's "gelu"): open_clip's LAION ViTs, RoBERTa, HTSAT. */
typedef enum tf_act { TF_QUICKGELU = 0, TF_GELU = 1 } tf_act;

/* The block's shape: width = heads * head size; mlp the hidden width; causal: each row sees
 * itself and the rows before it only (text towers); act the MLP's activation. */
typedef struct tf_shape {
    int64_t width, heads, mlp;
    int causal;
    tf_act act;
} tf_shape;

/* How products run: bf16 == 0 in float32 (mm_linear); bf16 == 1 through mm_bf16_matmul on
 * ctx, the activations rounded to bfloat16 per product into a16 (the weights' w16 made at
 * load), sums and everything else in float32. */
typedef struct tf_prec {
    int bf16;
    mm_ctx *ctx;
    uint16_t *a16; /* at least rows x the widest product input */
} tf_prec;

/* Scratch of one block over `rows` rows (tf_scratch_floats). */
typedef struct tf_scratch {
    float *h;    /* rows x width: normalised input of a sub-layer, then attention output */
    float *qkv;  /* rows x 3 width */
    float *mlp;  /* rows x mlp */
    float *att;  /* seqs x heads x tokens: a row of scores per (sequence, head) */
} tf_scratch;

/* Floats each tf_scratch member needs (h, qkv, mlp, att) for seqs x tokens rows. Returns
 * false when a size overflows. */
bool tf_scratch_sizes(const tf_shape *s, int64_t seqs, int64_t tokens, uint64_t sizes[4]);

/* y = LayerNorm(x) row by row (rows x n; y may be x). Mean and variance in double. */
void tf_layernorm(float *y, const float *x, const tf_norm *ln, int64_t rows, int64_t n);

/* y (rows x l->out) = x (rows x l->in) w^T + b, in p's precision. Fails only in bf16 mode
 * (oneDNN refusing the product). */
cmcr_status tf_linear_forward(const tf_prec *p, float *y, const float *x, const tf_linear *l, int64_t rows);

/* x * sigmoid(1.702 x) in place (OpenAI CLIP's activation). */
void tf_quickgelu(float *x, int64_t n);

/* x * (1 + erf(x / sqrt 2)) / 2 in place: the exact GELU. erf as PyTorch's own vectorised CPU
 * kernel computes it (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7), so the result
 * is within about 2e-7 (1 + |x|) of the exact value, as close as torch.nn.GELU()'s. */
void tf_gelu(float *x, int64_t n);

/* Scaled dot-product attention: qkv (seqs * tokens rows of 3 width: q, k, v) -> out (rows x
 * width), heads of width / heads columns, scores scaled by head_size^-1/2, softmax in float32;
 * with s->causal, row i attends to rows 0..i of its sequence. work: seqs x heads x tokens
 * floats. */
void tf_attention(float *out, const float *qkv, const tf_shape *s, int64_t seqs, int64_t tokens, float *work);

/* tf_attention with a key-padding mask (RoBERTa's attention_mask): keys (seqs x tokens, NULL:
 * none) marks each sequence's real tokens with nonzero; every query attends only to its
 * sequence's real keys (the others get weight exactly 0, as Hugging Face's additive mask of
 * the float32 minimum gives). A sequence without a real key attends to all its keys with equal
 * weight (what that additive mask gives: every score becomes the same minimum). Combines with
 * s->causal. */
void tf_attention_masked(float *out, const float *qkv, const tf_shape *s, int64_t seqs, int64_t tokens,
                         const uint8_t *keys, float *work);

/* x (seqs * tokens rows x width) through one block, in place. */
cmcr_status tf_block_forward(const tf_prec *p, float *x, const tf_block *b, const tf_shape *s, int64_t seqs,
                             int64_t tokens, const tf_scratch *w);

#endif
