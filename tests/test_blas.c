/* test_blas.c - the choice of OpenBLAS kernels (mm_blas_pick_core), that the kernels in use
 * compute a correct sgemm (against a double-precision product), and that the library's own
 * product (mm_sgemm: oneDNN or OpenBLAS, src/matmul.h) is correct for every transposition,
 * alpha and beta it is called with, in float32 and with bfloat16 inputs (the trainer's
 * --precision bf16). ctest runs this twice: as built, and with
 * CMCR_GEMM=openblas. */
#include "runtime/matmul.h"
#include "runtime/half.h"
#include "testutil.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Uniform floats in [lo, lo + width) from a small LCG (state *x). */
static void fill_uniform(float *v, int n, unsigned *x, float lo, float width)
{
    for (int i = 0; i < n; i++) v[i] = (float)((*x = *x * 1103515245u + 12345u) >> 8) / 16777216.0f * width + lo;
}

static void test_pick_core(void **s)
{
    (void)s;
    assert_string_equal(mm_blas_pick_core("Prescott", 1, 1), "SkylakeX");
    assert_string_equal(mm_blas_pick_core("Prescott", 0, 1), "Haswell");
    assert_null(mm_blas_pick_core("Prescott", 0, 0));
    assert_string_equal(mm_blas_pick_core("Nehalem", 1, 1), "SkylakeX");
    assert_null(mm_blas_pick_core("Cooperlake", 1, 1));
    assert_null(mm_blas_pick_core("SkylakeX", 1, 1));
    assert_null(mm_blas_pick_core("Haswell", 0, 1));
    assert_null(mm_blas_pick_core(NULL, 1, 1));
}

static float at(const float *x, int trans, int rows, int cols, int i, int j)
{
    return trans ? x[j * rows + i] : x[i * cols + j]; /* element (i, j) of a rows x cols op(x) */
}

/* Largest |C - ref| / (sum |alpha a b| + |beta c0|) over the m x n result C of
 * alpha op(A) op(B) + beta C0, the reference summed in double (c0 NULL: zero). */
static double max_error(const float *c, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                        const float *b, float beta, const float *c0)
{
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double ref = c0 ? beta * (double)c0[i * n + j] : 0, mag = fabs(ref);
            for (int l = 0; l < k; l++) {
                double t = (double)alpha * at(a, ta, m, k, i, l) * at(b, tb, k, n, l, j);
                ref += t;
                mag += fabs(t);
            }
            worst = fmax(worst, fabs(c[i * n + j] - ref) / mag);
        }
    return worst;
}

/* sgemm of the shapes the trainer uses, on whatever kernels are active, against double. */
static void test_sgemm_is_correct(void **s)
{
    (void)s;
    const int m = 300, n = 257, k = 512;
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k), *c = malloc(sizeof(float) * m * n);
    unsigned x = 12345;
    fill_uniform(a, m * k, &x, -0.5f, 1);
    fill_uniform(b, n * k, &x, -0.5f, 1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
    double maxrel = max_error(c, 0, 1, m, n, k, 1.0f, a, b, 0.0f, NULL);
    printf("kernels %s: max |sgemm - double| / sum|a*b| = %.2e\n", cmcr_blas_core(), maxrel);
    assert_true(maxrel < 1e-5);
    free(a);
    free(b);
    free(c);
}

/* The backend is the one asked for: OpenBLAS under CMCR_GEMM=openblas or without oneDNN. */
static void test_gemm_backend(void **s)
{
    (void)s;
    const char *env = getenv("CMCR_GEMM");
    int blas = (env && strcmp(env, "openblas") == 0) || !cmcr_bf16_support();
    printf("library's products: %s, kernels %s\n", cmcr_gemm_backend(), cmcr_gemm_kernels());
    assert_string_equal(cmcr_gemm_backend(), blas ? "OpenBLAS" : "oneDNN");
    if (blas) assert_string_equal(cmcr_gemm_kernels(), cmcr_blas_core());
    else assert_true(strncmp(cmcr_gemm_kernels(), "float32 ", 8) == 0 && !strstr(cmcr_gemm_kernels(), "unavailable"));
}

/* v rounded to bfloat16, as a bf16 product sees it. */
static float *rounded_copy(const float *v, int n)
{
    float *r = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) r[i] = half_bf16_to_f32(half_f32_to_bf16(v[i]));
    return r;
}

/* Largest |C - ref| / (sum |alpha a b| + |beta c0|) over C = alpha op(A) op(B) + beta C0, from
 * mm_sgemm (mp NULL) or mm_prec_gemm(mp). The reference takes the inputs as the product
 * should see them: rounded to bfloat16 when mp asks for bf16 and bf16 can run here. *plain:
 * the same against the unrounded inputs. */
static double gemm_error(int ta, int tb, int m, int n, int k, float alpha, float beta, const mm_prec *mp,
                         double *plain)
{
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
    float *c0 = malloc(sizeof(float) * m * n);
    unsigned x = 777u + (unsigned)(ta * 2 + tb);
    fill_uniform(a, m * k, &x, -0.5f, 1);
    fill_uniform(b, k * n, &x, -0.5f, 1);
    fill_uniform(c0, m * n, &x, 0, 1);
    memcpy(c, c0, sizeof(float) * m * n);
    if (mp) mm_prec_gemm(mp, ta, tb, m, n, k, alpha, a, b, beta, c);
    else mm_sgemm(ta, tb, m, n, k, alpha, a, b, beta, c);
    int bf16 = mp && mp->bf16 && cmcr_bf16_support();
    float *ra = bf16 ? rounded_copy(a, m * k) : a, *rb = bf16 ? rounded_copy(b, k * n) : b;
    double worst = max_error(c, ta, tb, m, n, k, alpha, ra, rb, beta, c0);
    if (plain) *plain = max_error(c, ta, tb, m, n, k, alpha, a, b, beta, c0);
    if (bf16) {
        free(ra);
        free(rb);
    }
    free(a);
    free(b);
    free(c);
    free(c0);
    return worst;
}

/* The 24 cases (3 shapes, both transpositions of each operand, beta 0 and 1) through
 * mm_sgemm (mp NULL) or mm_prec_gemm(mp): the largest error (gemm_error), and with mp in
 * *least_plain the smallest error against the unrounded inputs (shapes with k > 1). */
static double all_cases(const mm_prec *mp, double *least_plain)
{
    static const int shapes[][3] = {{37, 53, 129}, {300, 257, 512}, {1, 7, 1}};
    double worst = 0;
    *least_plain = 1;
    for (int sh = 0; sh < 3; sh++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    const int *d = shapes[sh];
                    double plain = 1, e = gemm_error(ta, tb, d[0], d[1], d[2], beta ? 1.0f : 0.25f, (float)beta,
                                                     mp, mp ? &plain : NULL);
                    if (e >= 1e-5)
                        printf("%dx%dx%d trans %d%d beta %d: error %.2e\n", d[0], d[1], d[2], ta, tb, beta, e);
                    worst = fmax(worst, e);
                    if (d[2] > 1) *least_plain = fmin(*least_plain, plain);
                }
    return worst;
}

static void test_library_gemm_is_correct(void **s)
{
    (void)s;
    double plain, worst = all_cases(NULL, &plain);
    printf("%s: max |C - double| / sum|terms| = %.2e over 24 cases\n", cmcr_gemm_backend(), worst);
    assert_true(worst < 1e-5);
}

/* The trainer's bf16 products (mm_prec_gemm): for every transposition and beta, exactly the
 * float32 product of the bf16-rounded inputs (up to float32 summation), and measurably not the
 * unrounded one, so bf16 did run. Without bf16 here, the float32 product runs instead. */
static void test_bf16_products(void **s)
{
    (void)s;
    const int m = 300 * 512, n = 512 * 257 > 257 * 300 ? 512 * 257 : 257 * 300;
    mm_prec mp = {.bf16 = 1, .sa = malloc(sizeof(uint16_t) * m), .sb = malloc(sizeof(uint16_t) * n)};
    double least_plain, worst = all_cases(&mp, &least_plain);
    printf("bf16 products (%s): max |C - double of rounded inputs| / sum|terms| = %.2e over 24 cases; against "
           "the unrounded inputs at least %.2e\n", cmcr_bf16_support() ? "bf16" : "not here: float32", worst,
           least_plain);
    assert_true(worst < 1e-5);
    if (cmcr_bf16_support()) {
        assert_true(least_plain > 1e-4);
        assert_int_equal(mm_prec_fallbacks(), 0); /* none of the 24 ran in float32 instead */
    }
    free(mp.sa);
    free(mp.sb);
}

/* mm_linear: y = x w^T + bias, against double; and mm_prec_linear in bf16 against double of
 * the rounded inputs. */
static void test_linear_is_correct(void **s)
{
    (void)s;
    const int rows = 301, in = 77, out = 129;
    float *x = malloc(sizeof(float) * rows * in), *w = malloc(sizeof(float) * out * in);
    float *b = malloc(sizeof(float) * out), *y = malloc(sizeof(float) * rows * out);
    unsigned u = 4242u;
    fill_uniform(x, rows * in, &u, -0.5f, 1);
    fill_uniform(w, out * in, &u, -0.5f, 1);
    fill_uniform(b, out, &u, -2, 4);
    float *y0 = malloc(sizeof(float) * rows * out); /* the bias in every row */
    for (int r = 0; r < rows; r++) memcpy(y0 + r * out, b, sizeof(float) * out);
    mm_linear(x, w, b, rows, in, out, y);
    double worst = max_error(y, 0, 1, rows, out, in, 1.0f, x, w, 1.0f, y0);
    printf("%s linear: max |y - double| / sum|terms| = %.2e\n", cmcr_gemm_backend(), worst);
    assert_true(worst < 1e-5);
    mm_prec mp = {.bf16 = 1, .sa = malloc(sizeof(uint16_t) * rows * in), .sb = malloc(sizeof(uint16_t) * out * in)};
    mm_prec_linear(&mp, x, w, b, rows, in, out, y);
    int bf16 = cmcr_bf16_support();
    float *rx = bf16 ? rounded_copy(x, rows * in) : x, *rw = bf16 ? rounded_copy(w, out * in) : w;
    worst = max_error(y, 0, 1, rows, out, in, 1.0f, rx, rw, 1.0f, y0);
    double plain = max_error(y, 0, 1, rows, out, in, 1.0f, x, w, 1.0f, y0);
    printf("bf16 linear: max |y - double of rounded inputs| / sum|terms| = %.2e (unrounded: %.2e)\n", worst, plain);
    assert_true(worst < 1e-5);
    if (bf16) {
        assert_true(plain > 1e-4);
        free(rx);
        free(rw);
    }
    free(mp.sa);
    free(mp.sb);
    free(x);
    free(w);
    free(b);
    free(y);
    free(y0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pick_core), cmocka_unit_test(test_sgemm_is_correct),
                                       cmocka_unit_test(test_gemm_backend),
                                       cmocka_unit_test(test_library_gemm_is_correct),
                                       cmocka_unit_test(test_bf16_products),
                                       cmocka_unit_test(test_linear_is_correct)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
