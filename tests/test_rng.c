/* test_rng.c - the random streams the trainer depends on: determinism, uniform range, and
 * the normal generator's moments and tails against the standard normal distribution. */
#include "testutil.h"
#include "runtime/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void test_same_seed_same_stream(void **s)
{
    (void)s;
    rng_state a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) assert_true(rng_next(&a) == rng_next(&b));
    rng_seed(&b, 43);
    assert_true(rng_next(&a) != rng_next(&b));
    assert_true(rng_seed_mix(1, 2, 3, 4) != rng_seed_mix(1, 2, 3, 5));
    assert_true(rng_seed_mix(1, 2, 3, 4) == rng_seed_mix(1, 2, 3, 4));
}

static void test_uniform_and_below(void **s)
{
    (void)s;
    rng_state r;
    rng_seed(&r, 7);
    double sum = 0;
    int counts[10] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        sum += u;
        counts[rng_below(&r, 10)]++;
    }
    assert_true(fabs(sum / n - 0.5) < 0.005);
    for (int k = 0; k < 10; k++) assert_true(abs(counts[k] - n / 10) < 800); /* ~6 sigma */
}

/* 4 million draws: mean, variance, kurtosis and tail probabilities against N(0, 1). Standard
 * errors: mean 5e-4, variance 7e-4, kurtosis 2.4e-3; bounds are about 6 of them. */
static void test_normal_moments_and_tails(void **s)
{
    (void)s;
    const int64_t n = 4000000;
    float *x = malloc(sizeof(float) * (size_t)n);
    rng_state r;
    rng_seed(&r, 11);
    rng_fill_normal(&r, x, n, 1.0);
    double m1 = 0, m2 = 0, m4 = 0;
    int64_t tail2 = 0, tail3 = 0, tail4 = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        m1 += v;
        m2 += v * v;
        m4 += v * v * v * v;
        tail2 += fabs(v) > 2;
        tail3 += fabs(v) > 3;
        tail4 += fabs(v) > 3.442619855899; /* beyond the ziggurat's base layer: the slow tail path */
    }
    m1 /= (double)n;
    m2 /= (double)n;
    m4 /= (double)n;
    double p2 = (double)tail2 / (double)n, p3 = (double)tail3 / (double)n, p4 = (double)tail4 / (double)n;
    printf("mean %.5f var %.5f kurtosis %.4f P(|x|>2) %.5f (0.04550) P(|x|>3) %.6f (0.002700) P(|x|>3.44) %.6f "
           "(0.000576)\n", m1, m2, m4 / (m2 * m2), p2, p3, p4);
    assert_true(fabs(m1) < 3e-3);
    assert_true(fabs(m2 - 1) < 4e-3);
    assert_true(fabs(m4 / (m2 * m2) - 3) < 1.5e-2);
    assert_true(fabs(p2 - 0.0455003) < 7e-4);
    assert_true(fabs(p3 - 0.0026998) < 1.6e-4);
    assert_true(fabs(p4 - 0.000576) < 8e-5);
    rng_fill_normal(&r, x, 1000, 0.5); /* the scale is applied */
    double ss = 0;
    for (int i = 0; i < 1000; i++) ss += (double)x[i] * x[i];
    assert_true(fabs(sqrt(ss / 1000) - 0.5) < 0.05);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_stream),
        cmocka_unit_test(test_uniform_and_below),
        cmocka_unit_test(test_normal_moments_and_tails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
