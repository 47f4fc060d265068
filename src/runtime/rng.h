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
/* Standard normal (Box-Muller; uses two uniforms per call, no cached value). */
double rng_normal(rng_state *r);
/* Uniform integer in [0, n). */
uint64_t rng_below(rng_state *r, uint64_t n);
/* n normal draws times std (ziggurat method). */
void rng_fill_normal(rng_state *r, float *out, int64_t n, double std);
/* A well-mixed 64-bit seed from a base seed and up to three indices. */
uint64_t rng_seed_mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
#endif
