/* rng.h - deterministic random numbers (xoshiro256**, seeded by splitmix64). The state is a
 * plain struct so that it can be saved in checkpoints and restored exactly. */
#ifndef CMCR_RNG_H
#define CMCR_RNG_H
#include <stdint.h>

typedef struct cmcr_rng {
    uint64_t s[4];
} cmcr_rng;

void cmcr_rng_seed(cmcr_rng *r, uint64_t seed);
uint64_t cmcr_rng_next(cmcr_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double cmcr_rng_uniform(cmcr_rng *r);
/* Standard normal (Box-Muller; uses two uniforms per call, no cached value). */
double cmcr_rng_normal(cmcr_rng *r);
/* Uniform integer in [0, n). */
uint64_t cmcr_rng_below(cmcr_rng *r, uint64_t n);
/* n normal draws times std (ziggurat method). */
void cmcr_rng_fill_normal(cmcr_rng *r, float *out, int64_t n, double std);
/* A well-mixed 64-bit seed from a base seed and up to three indices. */
uint64_t cmcr_seed_mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
#endif
