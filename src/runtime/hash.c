/* hash.c - a fast 64-bit content hash (non-cryptographic), used to key on-disk caches.
 *
 * Four independent lanes each absorb one 8-byte word per step (multiply, rotate,
 * multiply), so the multiplies of consecutive words overlap in the CPU instead of forming
 * one long dependency chain; this runs at several GB/s per core. The lanes are then
 * folded together, the remaining words, the tail bytes and the length are absorbed, and a
 * final xor-shift-multiply avalanche spreads every input bit over the whole result.
 * Words are read little-endian with memcpy (no alignment requirement). */
#include "cmcr.h"

#include <string.h>

#define K1 0x9e3779b97f4a7c15ull /* odd constants with well-mixed bits */
#define K2 0xc2b2ae3d27d4eb4full
#define K3 0x165667b19e3779f9ull
#define K4 0xd6e8feb86659fd93ull

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* Absorb one word into one lane. */
static uint64_t absorb(uint64_t lane, uint64_t w)
{
    lane += w * K2;
    lane = rotl(lane, 31);
    return lane * K1;
}

/* Spread every bit of x over the whole word. */
static uint64_t avalanche(uint64_t x)
{
    x ^= x >> 33;
    x *= K4;
    x ^= x >> 29;
    x *= K3;
    x ^= x >> 32;
    return x;
}

uint64_t cmcr_hash_bytes(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    size_t left = n;
    uint64_t h;
    if (left >= 32) {
        uint64_t v[4] = {seed + K1 + K2, seed + K2, seed, seed - K1};
        for (; left >= 32; p += 32, left -= 32) {
            v[0] = absorb(v[0], load64(p));
            v[1] = absorb(v[1], load64(p + 8));
            v[2] = absorb(v[2], load64(p + 16));
            v[3] = absorb(v[3], load64(p + 24));
        }
        h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18);
        for (int i = 0; i < 4; i++) h = (h ^ absorb(0, v[i])) * K1 + K4;
    } else {
        h = seed + K3;
    }
    h += (uint64_t)n;
    for (; left >= 8; p += 8, left -= 8) h = rotl(h ^ absorb(0, load64(p)), 27) * K1 + K4;
    if (left > 0) {
        unsigned char tail[8] = {0};
        memcpy(tail, p, left);
        h = rotl(h ^ (load64(tail) * K1), 23) * K2 + K3;
    }
    return avalanche(h);
}
