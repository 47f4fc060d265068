/* vmath.h - vectorised row math: an exponential for the softmax loops, finiteness checks and
 * L2 normalisation of rows. */
#ifndef CMCR_VMATH_H
#define CMCR_VMATH_H
#include "runtime/core.h"

#include <stdint.h>

/* Hot loops (those that call vm_exp_nonpositive, row norms) are compiled for AVX-512 and
 * AVX2 as well, chosen at run time. */
#if defined(__GNUC__) && defined(__x86_64__)
#define CMCR_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CMCR_VECTOR_CLONES
#endif

/* exp(x) for x <= 0, in a form the compiler vectorises (libm's expf is a call per element,
 * and at small widths the exponentials cost as much as the GEMMs). x = n ln2 + r with n an
 * integer and |r| <= ln2/2; exp(r) by its Taylor polynomial to degree 6 (relative error
 * below 1.2e-7 on that interval, about 2 float ulps); 2^n is built in the exponent bits.
 * Below -86 the result is clamped to exp(-86) = 4.5e-38 (still a normal float: subnormal
 * results are slow on some CPUs), which is negligible next to the running maximum's own
 * term exp(0) = 1. */
static inline float vm_exp_nonpositive(float x)
{
    x = x < -86.0f ? -86.0f : x;
    float t = x * 1.44269504f + 12582912.0f; /* adding 1.5 * 2^23 rounds x/ln2 to an integer */
    float n = t - 12582912.0f;
    float r = (x - n * 0.693145752f) - n * 1.42860682e-6f; /* ln2 split in two: r is exact enough */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    union { int32_t i; float f; } scale;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}
/* dst = src / max(|src|, 1e-12) for one row of n (F.normalize; dst may be src); returns
 * |src|. The one row normalisation behind cmcr_normalize_rows, training and aggregation. */
double vm_normalize_row(const float *src, float *dst, int64_t n);

/* CMCR_OK when x (rows x cols) is all finite, else CMCR_EVALUE with the first bad value:
 * "<what>: row R contains NaN (column C)" (or Inf, -Inf; the
 * wording of the .npy reader's check), where what is fmt formatted (only on
 * failure) and R counts from row0. The one check behind every block of numbers the library
 * reads or produces: one vectorised pass (cmcr_find_nonfinite_row), cheap on a block that is
 * still in cache. */
cmcr_status vm_check_finite(const float *x, int64_t rows, int64_t cols, int64_t row0, const char *fmt, ...)
    CMCR_PRINTF(5, 6);

#endif
