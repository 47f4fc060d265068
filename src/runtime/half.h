/* half.h - float16 and bfloat16 <-> float32. */
#ifndef CMCR_RUNTIME_HALF_H
#define CMCR_RUNTIME_HALF_H

#include <stdint.h>
#include <string.h>

/* Half-precision conversions (round to nearest even). The bfloat16 pair is inline: the
 * bf16 products convert whole matrices with it (matmul.c, eval.c), in loops that vectorise. */
float half_f16_to_f32(uint16_t h);
uint16_t half_f32_to_f16(float f);

static inline float half_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t half_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#endif
