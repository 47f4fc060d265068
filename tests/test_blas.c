/* test_blas.c - the choice of OpenBLAS kernels (cmcr_blas_pick_core) and that the kernels in
 * use compute a correct sgemm (against a double-precision product). */
#include "testutil.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_pick_core(void **s)
{
    (void)s;
    assert_string_equal(cmcr_blas_pick_core("Prescott", 1, 1), "SkylakeX");
    assert_string_equal(cmcr_blas_pick_core("Prescott", 0, 1), "Haswell");
    assert_null(cmcr_blas_pick_core("Prescott", 0, 0));
    assert_string_equal(cmcr_blas_pick_core("Nehalem", 1, 1), "SkylakeX");
    assert_null(cmcr_blas_pick_core("Cooperlake", 1, 1));
    assert_null(cmcr_blas_pick_core("SkylakeX", 1, 1));
    assert_null(cmcr_blas_pick_core("Haswell", 0, 1));
    assert_null(cmcr_blas_pick_core(NULL, 1, 1));
}

/* sgemm of the shapes the trainer uses, on whatever kernels are active, against double. */
static void test_sgemm_is_correct(void **s)
{
    (void)s;
    const int m = 300, n = 257, k = 512;
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k), *c = malloc(sizeof(float) * m * n);
    unsigned x = 12345;
    for (int i = 0; i < m * k; i++) a[i] = (float)((x = x * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (int i = 0; i < n * k; i++) b[i] = (float)((x = x * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
    double maxrel = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double ref = 0, mag = 0;
            for (int l = 0; l < k; l++) {
                ref += (double)a[i * k + l] * b[j * k + l];
                mag += fabs((double)a[i * k + l] * b[j * k + l]);
            }
            maxrel = fmax(maxrel, fabs(c[i * n + j] - ref) / mag);
        }
    printf("kernels %s: max |sgemm - double| / sum|a*b| = %.2e\n", cmcr_blas_core(), maxrel);
    assert_true(maxrel < 1e-5);
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pick_core), cmocka_unit_test(test_sgemm_is_correct)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
