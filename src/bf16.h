/* bf16.h - matrix products with bfloat16 inputs and float32 results, through oneDNN
 * (builds with CMCR_HAVE_DNNL). On CPUs with AVX512-BF16 or AMX, oneDNN runs them at about
 * twice the float32 rate; elsewhere it emulates them. Inputs are rounded to 8 significant
 * bits (relative error <= 2^-9); products are summed in float32. */
#ifndef CMCR_BF16_H
#define CMCR_BF16_H
#include "internal.h"

#include <stdint.h>

typedef struct bf16_ctx bf16_ctx;

/* A context caches the primitives of the last few shapes; one per thread of use. */
cmcr_status bf16_ctx_new(bf16_ctx **out);
void bf16_ctx_free(bf16_ctx *c);
/* C (M x N, row-major float) = alpha * A B^T (trans_b, B is N x K) or alpha * A B (B is
 * K x N); A is M x K; all row-major bf16. accumulate: C += instead of C =. */
cmcr_status bf16_matmul(bf16_ctx *c, const uint16_t *a, const uint16_t *b, float *out, int64_t m, int64_t n,
                        int64_t k, int trans_b, float alpha, int accumulate);
/* Round to nearest even (finite inputs). */
void bf16_from_f32(const float *x, uint16_t *y, int64_t n);
#endif
