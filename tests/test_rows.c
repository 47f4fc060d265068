/* test_rows.c - cmcr_softmax_rows, the softmax(scale * sim) view of `cmcr similarity --softmax`
 * and of the Python package: each row against a long-double reference, rows that would
 * overflow exp without the maximum subtracted, one column, the same floats from one call over
 * many rows (threaded) as from one call per row (the CLI's), and the official demo's scale. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* softmax(scale * row) in long double. */
static void reference(const float *row, int64_t n, double scale, long double *out)
{
    long double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < n; j++) mx = fmaxl(mx, (long double)scale * row[j]);
    for (int64_t j = 0; j < n; j++) sum += expl((long double)scale * row[j] - mx);
    for (int64_t j = 0; j < n; j++) out[j] = expl((long double)scale * row[j] - mx) / sum;
}

static void test_against_reference(void **s)
{
    (void)s;
    enum { R = 4, C = 7 };
    float x[R * C];
    long double want[C];
    for (int i = 0; i < R * C; i++) x[i] = (float)sin(0.7 * i + 0.3) * (i % 3 == 0 ? 1.0f : 0.25f);
    float orig[R * C];
    memcpy(orig, x, sizeof x);
    cmcr_softmax_rows(x, R, C, 10.0);
    for (int r = 0; r < R; r++) {
        reference(orig + r * C, C, 10.0, want);
        double sum = 0;
        for (int j = 0; j < C; j++) {
            assert_true(fabsl(x[r * C + j] - want[j]) <= 2 * FLT_EPSILON * want[j] + FLT_MIN);
            sum += x[r * C + j];
        }
        assert_true(fabs(sum - 1.0) < 1e-6);
        /* the order of the values is kept: the largest similarity has the largest share */
        for (int j = 1; j < C; j++)
            assert_true((orig[r * C + j] > orig[r * C]) == (x[r * C + j] > x[r * C]) ||
                        orig[r * C + j] == orig[r * C]);
    }
}

static void test_large_values_and_one_column(void **s)
{
    (void)s;
    /* exp(1000 * 0.9) overflows a double: only the subtracted maximum keeps this finite */
    float x[3] = {0.9f, 0.8f, -0.9f};
    cmcr_softmax_rows(x, 1, 3, 1000.0);
    for (int j = 0; j < 3; j++) assert_true(isfinite(x[j]));
    assert_true(fabsf(x[0] - 1.0f) < 1e-6f && x[1] < 1e-40f && x[2] == 0.0f);
    float one[2] = {-3.5f, 42.0f};
    cmcr_softmax_rows(one, 2, 1, 10.0);
    assert_true(one[0] == 1.0f && one[1] == 1.0f);
    float eq[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    cmcr_softmax_rows(eq, 1, 4, 10.0);
    for (int j = 0; j < 4; j++) assert_true(eq[j] == 0.25f);
}

/* Many rows in one call (split across threads) give the floats of one call per row. */
static void test_rows_independent(void **s)
{
    (void)s;
    const int64_t rows = 600, cols = 300; /* 180,000 values: above the threading threshold */
    float *a = malloc((size_t)(rows * cols) * sizeof(float)), *b = malloc((size_t)(rows * cols) * sizeof(float));
    assert_non_null(a);
    assert_non_null(b);
    for (int64_t i = 0; i < rows * cols; i++) a[i] = b[i] = (float)cos(0.001 * (double)i * (double)(i % 17));
    cmcr_softmax_rows(a, rows, cols, 10.0);
    for (int64_t r = 0; r < rows; r++) cmcr_softmax_rows(b + r * cols, 1, cols, 10.0);
    assert_memory_equal(a, b, (size_t)(rows * cols) * sizeof(float));
    free(a);
    free(b);
}

/* The official demo's table for the toilet sound (README): its similarities, scaled by 10,
 * give 0.9712 / 0.0079 / 0.0208. These similarities are solved from those shares. */
static void test_demo_scale(void **s)
{
    (void)s;
    float x[3] = {0.5f, 0.5f + (float)(log(0.0079 / 0.9712) / 10), 0.5f + (float)(log(0.0208 / 0.9712) / 10)};
    cmcr_softmax_rows(x, 1, 3, 10.0);
    assert_true(fabsf(x[0] - 0.9712f) < 1e-4f && fabsf(x[1] - 0.0079f) < 1e-4f && fabsf(x[2] - 0.0208f) < 1e-4f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_large_values_and_one_column),
        cmocka_unit_test(test_rows_independent),
        cmocka_unit_test(test_demo_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
