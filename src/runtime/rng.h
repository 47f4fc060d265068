/* rng.h - deterministic random numbers (xoshiro256**, seeded by splitmix64). The state is a
 * plain struct so that it can be saved in checkpoints and restored exactly. */
#ifndef CMCR_RNG_H
#define CMCR_RNG_H
#include <stdint.h>

typedef struct rng_state {
    uint64_t s[4];
} rng_state;

void rng_seed(rng_state *r, uint64_t seed);
uint64_t rng_next(rng_state *r);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(rng_state *r);
/* Uniform integer in [0, n). */
uint64_t rng_below(rng_state *r, uint64_t n);
/* Normal deviates: two methods, each the fixed stream of something published, so neither
 * may change its draws (nor may one replace the other: the same seed gives other numbers).
 * rng_fill_normal: n draws times std by the ziggurat method, the fast one; training's
 * noise (completion) and the tests' random data come from it.
 * rng_fill_normal_polar: n draws times std by Marsaglia's polar method (both outputs of a
 * pair used). It defines the synthetic world (cmcr synth, cmcr demo): the world's numbers in
 * README.md and docs/synthetic-world.md come from this stream. */
void rng_fill_normal(rng_state *r, float *out, int64_t n, double std);
void rng_fill_normal_polar(rng_state *r, float *out, int64_t n, double std);
/* The splitmix64 finaliser: a bijective 64-bit mix, for deriving independent seeds. */
uint64_t rng_mix64(uint64_t z);
/* A well-mixed 64-bit seed from a base seed and up to three indices. */
uint64_t rng_seed_mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
#endif
