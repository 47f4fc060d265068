/* rng.c - xoshiro256** (Blackman and Vigna), seeded with splitmix64. */
#include "rng.h"
#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void cmcr_rng_seed(cmcr_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t cmcr_rng_next(cmcr_rng *r)
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

double cmcr_rng_uniform(cmcr_rng *r) { return (double)(cmcr_rng_next(r) >> 11) * 0x1.0p-53; }

double cmcr_rng_normal(cmcr_rng *r)
{
    double u1 = 1.0 - cmcr_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = cmcr_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

uint64_t cmcr_rng_below(cmcr_rng *r, uint64_t n)
{
    /* Lemire's multiply-shift with rejection: unbiased. */
    unsigned __int128 m = (unsigned __int128)cmcr_rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t t = -n % n;
        while (lo < t) {
            m = (unsigned __int128)cmcr_rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void cmcr_rng_fill_normal(cmcr_rng *r, float *out, int64_t n, double std)
{
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - cmcr_rng_uniform(r), u2 = cmcr_rng_uniform(r);
        double rad = std * sqrt(-2.0 * log(u1)), ang = 6.283185307179586476925 * u2;
        out[i] = (float)(rad * cos(ang));
        if (i + 1 < n) out[i + 1] = (float)(rad * sin(ang));
    }
}

uint64_t cmcr_seed_mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
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
