/* test_rng.c - the random streams the trainer and the synthetic world depend on: determinism,
 * uniform range, both normal samplers' moments and tails against the standard normal
 * distribution, and their first draws pinned (each stream defines published numbers). */
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

typedef void (*fill_fn)(rng_state *r, float *out, int64_t n, double std);

/* 4 million draws: mean, variance, kurtosis and tail probabilities against N(0, 1). Standard
 * errors: mean 5e-4, variance 7e-4, kurtosis 2.4e-3; bounds are about 6 of them. */
static void check_moments_and_tails(fill_fn fill, const char *name)
{
    const int64_t n = 4000000;
    float *x = malloc(sizeof(float) * (size_t)n);
    rng_state r;
    rng_seed(&r, 11);
    fill(&r, x, n, 1.0);
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
    printf("%s: mean %.5f var %.5f kurtosis %.4f P(|x|>2) %.5f (0.04550) P(|x|>3) %.6f (0.002700) P(|x|>3.44) "
           "%.6f (0.000576)\n", name, m1, m2, m4 / (m2 * m2), p2, p3, p4);
    assert_true(fabs(m1) < 3e-3);
    assert_true(fabs(m2 - 1) < 4e-3);
    assert_true(fabs(m4 / (m2 * m2) - 3) < 1.5e-2);
    assert_true(fabs(p2 - 0.0455003) < 7e-4);
    assert_true(fabs(p3 - 0.0026998) < 1.6e-4);
    assert_true(fabs(p4 - 0.000576) < 8e-5);
    fill(&r, x, 1000, 0.5); /* the scale is applied */
    double ss = 0;
    for (int i = 0; i < 1000; i++) ss += (double)x[i] * x[i];
    assert_true(fabs(sqrt(ss / 1000) - 0.5) < 0.05);
    free(x);
}

static void test_ziggurat_moments_and_tails(void **s)
{
    (void)s;
    check_moments_and_tails(rng_fill_normal, "ziggurat");
}

static void test_polar_moments_and_tails(void **s)
{
    (void)s;
    check_moments_and_tails(rng_fill_normal_polar, "polar");
}

/* The first draws of each sampler for seed 1, exactly: the ziggurat's stream is training's
 * noise, the polar one's is the synthetic world (README.md's table). A change to either
 * changes published numbers. n is odd: the polar method drops the pair's second value. */
static void test_streams_pinned(void **s)
{
    (void)s;
    static const float zig[5] = {-0x1.e7417p-1f, -0x1.125936p+1f, -0x1.86b90ap-1f, 0x1.de5ad2p-1f, -0x1.8298c6p+0f},
                       polar[5] = {0x1.e267c8p+0f, 0x1.84abd8p-3f, 0x1.4d55cap+0f, -0x1.e8d0bp+0f, 0x1.c0d732p-2f};
    float x[5];
    rng_state r;
    rng_seed(&r, 1);
    rng_fill_normal(&r, x, 5, 1.0);
    for (int i = 0; i < 5; i++) printf("ziggurat[%d] = %a\n", i, x[i]);
    for (int i = 0; i < 5; i++) assert_true(x[i] == zig[i]);
    assert_true(rng_next(&r) == 2648436617965840162ull); /* and the same number of draws used */
    rng_seed(&r, 1);
    rng_fill_normal_polar(&r, x, 5, 1.0);
    for (int i = 0; i < 5; i++) printf("polar[%d] = %a\n", i, x[i]);
    for (int i = 0; i < 5; i++) assert_true(x[i] == polar[i]);
    assert_true(rng_next(&r) == 1310552918490157286ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_stream),
        cmocka_unit_test(test_uniform_and_below),
        cmocka_unit_test(test_ziggurat_moments_and_tails),
        cmocka_unit_test(test_polar_moments_and_tails),
        cmocka_unit_test(test_streams_pinned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
