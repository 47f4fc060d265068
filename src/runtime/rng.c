/* rng.c - xoshiro256** (Blackman and Vigna), seeded with splitmix64, and every sampler the
 * library draws from it: uniform reals and integers, and normals by two methods (see rng.h
 * for why two). */
#include "runtime/rng.h"
#include <math.h>
#include <pthread.h>

uint64_t rng_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x) { return rng_mix64(*x += 0x9e3779b97f4a7c15ull); }

void rng_seed(rng_state *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(rng_state *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(rng_state *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t rng_below(rng_state *r, uint64_t n)
{
    /* Lemire's multiply-shift with rejection: unbiased. */
    unsigned __int128 m = (unsigned __int128)rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t t = -n % n;
        while (lo < t) {
            m = (unsigned __int128)rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* Ziggurat method for normal deviates (Marsaglia and Tsang, 2000), 128 layers. Layer and
 * sign/value come from separate bits of one 64-bit draw (avoiding the correlation Doornik
 * (2005) found in the original, which reused bits). About 99% of draws need one multiply and
 * one compare; Box-Muller needed a log, a sqrt and a sincos per pair. */
#define ZIG_LAYERS 128
#define ZIG_R 3.442619855899
#define ZIG_V 9.91256303526217e-3

static struct {
    double k[ZIG_LAYERS]; /* acceptance thresholds, scaled to 2^31 */
    double w[ZIG_LAYERS]; /* layer widths / 2^31 */
    double f[ZIG_LAYERS]; /* density at the layer edges */
} zig;
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;

static void zig_init(void)
{
    const double m = 2147483648.0;
    double d = ZIG_R, t = d, q = ZIG_V / exp(-0.5 * d * d);
    zig.k[0] = (d / q) * m;
    zig.k[1] = 0;
    zig.w[0] = q / m;
    zig.w[ZIG_LAYERS - 1] = d / m;
    zig.f[0] = 1.0;
    zig.f[ZIG_LAYERS - 1] = exp(-0.5 * d * d);
    for (int i = ZIG_LAYERS - 2; i >= 1; i--) {
        d = sqrt(-2.0 * log(ZIG_V / d + exp(-0.5 * d * d)));
        zig.k[i + 1] = (d / t) * m;
        t = d;
        zig.f[i] = exp(-0.5 * d * d);
        zig.w[i] = d / m;
    }
}

/* The rare slow path: the wedge of layer i, or the tail beyond R for layer 0. */
static double zig_slow(rng_state *r, int32_t hz, int i)
{
    for (;;) {
        double x = hz * zig.w[i];
        if (i == 0) {
            double y;
            do {
                x = -log(1.0 - rng_uniform(r)) / ZIG_R;
                y = -log(1.0 - rng_uniform(r));
            } while (y + y < x * x);
            return hz > 0 ? ZIG_R + x : -ZIG_R - x;
        }
        if (zig.f[i] + rng_uniform(r) * (zig.f[i - 1] - zig.f[i]) < exp(-0.5 * x * x)) return x;
        uint64_t b = rng_next(r);
        hz = (int32_t)(uint32_t)(b >> 32);
        i = (int)(b & (ZIG_LAYERS - 1));
        if (fabs((double)hz) < zig.k[i]) return hz * zig.w[i];
    }
}

static double zig_normal(rng_state *r)
{
    uint64_t b = rng_next(r);
    int32_t hz = (int32_t)(uint32_t)(b >> 32);
    int i = (int)(b & (ZIG_LAYERS - 1));
    if (fabs((double)hz) < zig.k[i]) return hz * zig.w[i];
    return zig_slow(r, hz, i);
}

void rng_fill_normal(rng_state *r, float *out, int64_t n, double std)
{
    pthread_once(&zig_once, zig_init);
    for (int64_t i = 0; i < n; i++) out[i] = (float)(std * zig_normal(r));
}

/* Marsaglia's polar method: two uniforms in the unit disc (rejecting about 21% of pairs), and
 * both outputs of each accepted pair are used. */
void rng_fill_normal_polar(rng_state *r, float *out, int64_t n, double std)
{
    for (int64_t i = 0; i < n; i += 2) {
        double u, v, q;
        do {
            u = 2.0 * rng_uniform(r) - 1.0;
            v = 2.0 * rng_uniform(r) - 1.0;
            q = u * u + v * v;
        } while (q >= 1.0 || q == 0.0);
        double f = std * sqrt(-2.0 * log(q) / q);
        out[i] = (float)(u * f);
        if (i + 1 < n) out[i + 1] = (float)(v * f);
    }
}

uint64_t rng_seed_mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ (a * 0xd1342543de82ef95ull);
    h = splitmix64(&x);
    x = h ^ (b * 0xaf251af3b0f025b5ull);
    h = splitmix64(&x);
    x = h ^ (c * 0x9fb21c651e98df25ull);
    return splitmix64(&x);
}
