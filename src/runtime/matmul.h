/* matmul.h - the library's matrix products.
 *
 * mm_sgemm: float32, row-major, packed operands. In builds with oneDNN (CMCR_HAVE_DNNL) it
 * runs oneDNN's matmul primitive, which on this project's shapes is 5-15% faster than
 * OpenBLAS (bench: `bench_gemm`); otherwise, or if oneDNN refuses a shape, cblas_sgemm.
 * Either way the result is a float32 product of the same inputs; only the order of the
 * additions (and so the last bits) differs between the two. For given shapes and thread
 * count it is deterministic.
 *
 * mm_bf16_matmul: bfloat16 inputs, float32 results, through oneDNN only. On CPUs with
 * AVX512-BF16 or AMX, oneDNN runs it at about twice the float32 rate; with AVX-512 alone it
 * emulates it; below AVX-512 (oneDNN 2.x) it has none, and mm_bf16_check says so. Inputs are
 * rounded to 8 significant bits (round to nearest even: relative error <= 2^-8); products
 * are exact in float32 and summed in float32. */
#ifndef CMCR_MATMUL_H
#define CMCR_MATMUL_H
#include "runtime/core.h"
#include "runtime/half.h"

#include <stdint.h>

/* C (m x n) = alpha op(A) op(B) + beta C, beta 0 or 1. op(A) is m x k: A is stored m x k, or
 * k x m when trans_a. op(B) is k x n: B is stored k x n, or n x k when trans_b. */
void mm_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                const float *b, float beta, float *c);
/* A Linear layer: y (rows x out) = x (rows x in) w^T + bias, w being out x in (PyTorch's
 * layout). oneDNN adds the bias as it writes y (no separate pass over y). */
void mm_linear(const float *x, const float *w, const float *bias, int64_t rows, int64_t in, int64_t out, float *y);

/* The trainer's products in its chosen precision. bf16 == 0: mm_sgemm and mm_linear.
 * bf16 == 1: both operands rounded to bfloat16 (half_f32_to_bf16) into the scratch sa and sb
 * (at least m*k and k*n entries), products exact and summed in float32, float32 results.
 * (PyTorch's CPU autocast rounds the inputs the same way but also returns bf16 results.) If
 * a bf16 product cannot run (a build without oneDNN, or oneDNN fails), the float32 one runs
 * instead, so a step never fails, and mm_prec_fallbacks() counts it; the caller checks
 * mm_bf16_check() once beforehand. a_rounded: sa already holds
 * A rounded (mm_bf16_from_f32), for an A used by several products (set it on a local copy). */
typedef struct mm_prec {
    int bf16;
    uint16_t *sa, *sb;
    int a_rounded;
} mm_prec;
void mm_prec_gemm(const mm_prec *p, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, const float *b, float beta, float *c);
void mm_prec_linear(const mm_prec *p, const float *x, const float *w, const float *bias, int64_t rows, int64_t in,
                 int64_t out, float *y);
/* How many bf16 products have run in float32 instead, in this process so far. */
long long mm_prec_fallbacks(void);

typedef struct mm_ctx mm_ctx;

/* A context for mm_bf16_matmul holds a oneDNN stream and caches the primitives of the last few
 * shapes; one per thread of use (mm_sgemm keeps one per calling thread itself). Fails with
 * mm_bf16_check()'s reason where bf16 products cannot run. */
cmcr_status mm_ctx_new(mm_ctx **out);
void mm_ctx_free(mm_ctx *c);
/* C (M x N, row-major float) = alpha * A B^T (trans_b, B is N x K) or alpha * A B (B is
 * K x N); A is M x K; all row-major bf16. accumulate: C += instead of C =. */
cmcr_status mm_bf16_matmul(mm_ctx *c, const uint16_t *a, const uint16_t *b, float *out, int64_t m, int64_t n,
                        int64_t k, int trans_b, float alpha, int accumulate);
/* CMCR_OK when bf16 products can run here, else the reason (no oneDNN in this build, or
 * none for this CPU) as the error. cmcr_bf16_support() is the same as a yes/no. */
cmcr_status mm_bf16_check(void);
/* y = x in bfloat16 (half_f32_to_bf16: round to nearest even). */
void mm_bf16_from_f32(const float *x, uint16_t *y, int64_t n);
/* OpenBLAS kernel choice (cmcr_blas_better_core): the kernel set to ask for, for a given
 * current core name and CPU features; NULL when current is fine. */
const char *mm_blas_pick_core(const char *current, int has_avx512, int has_avx2_fma);

#endif
