/* vmath.c - row operations over float32 matrices: finiteness checks, L2 normalisation, softmax. */
#include "runtime/vmath.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>


/* True when every value of v is finite, in one pass that vectorises: v * 0 is 0 for finite v
 * and NaN for NaN or Inf, and a NaN propagates through the sum (an early exit per value would
 * keep the loop scalar). */
CMCR_VECTOR_CLONES
static bool row_finite(const float *v, int64_t n)
{
    float s = 0;
    #pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < n; c++) s += v[c] * 0.0f;
    return s == 0;
}

/* Large blocks are split across threads; the answer is the same as a scan's. */
int64_t cmcr_find_nonfinite_row(const float *x, int64_t rows, int64_t cols)
{
    int64_t bad = INT64_MAX;
    #pragma omp parallel for schedule(static) reduction(min : bad) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++)
        if (!row_finite(x + r * cols, cols) && r < bad) bad = r;
    return bad == INT64_MAX ? -1 : bad;
}

cmcr_status vm_check_finite(const float *x, int64_t rows, int64_t cols, int64_t row0, const char *fmt, ...)
{
    int64_t r = cmcr_find_nonfinite_row(x, rows, cols), c = 0;
    if (r < 0) return CMCR_OK;
    const float *v = x + r * cols;
    while (isfinite(v[c])) c++;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return core_fail(CMCR_EVALUE, "%s: row %lld contains %s (column %lld)", what, (long long)(row0 + r),
                     isnan(v[c]) ? "NaN" : v[c] > 0 ? "Inf" : "-Inf", (long long)c);
}

/* The clones are static: GCC 12 exports the resolver of a non-static target_clones function
 * whatever -fvisibility says, and libcmcr exports only the public API. */
CMCR_VECTOR_CLONES
static double normalize_row(const float *src, float *dst, int64_t n)
{
    double ss = 0;
    #pragma omp simd reduction(+ : ss) /* lanes of double partial sums: a serial sum was 8x slower */
    for (int64_t c = 0; c < n; c++) ss += (double)src[c] * src[c];
    double norm = sqrt(ss);
    float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
    for (int64_t c = 0; c < n; c++) dst[c] = src[c] * inv;
    return norm;
}

double vm_normalize_row(const float *src, float *dst, int64_t n) { return normalize_row(src, dst, n); }

void cmcr_normalize_rows(float *x, int64_t rows, int64_t cols)
{
    #pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) vm_normalize_row(x + r * cols, x + r * cols, cols);
}

/* In double with libm's exp, one row after another in column order: the same floats whatever
 * the thread count (rows are independent). */
void cmcr_softmax_rows(float *x, int64_t rows, int64_t cols, double scale)
{
    #pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) {
        float *row = x + r * cols;
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < cols; j++) mx = fmax(mx, scale * row[j]);
        for (int64_t j = 0; j < cols; j++) sum += exp(scale * row[j] - mx);
        for (int64_t j = 0; j < cols; j++) row[j] = (float)(exp(scale * row[j] - mx) / sum);
    }
}
