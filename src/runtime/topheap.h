/* topheap.h - the k best (score, index) pairs seen so far, in a binary heap whose root is the
 * worst kept: the lowest score, and among equal scores the highest index, so that ties keep
 * the lower indices whatever order the pairs come in. Memory aggregation's --top-k and the
 * gallery's exact top-k both keep their candidates in one (src/mcr/aggregate.c,
 * src/search/topk.c). hs and hi hold k entries; *n counts those in use. */
#ifndef CMCR_RUNTIME_TOPHEAP_H
#define CMCR_RUNTIME_TOPHEAP_H
#include <stdbool.h>
#include <stdint.h>

/* Whether (sa, ia) ranks below (sb, ib). */
static inline bool topheap_worse(float sa, int64_t ia, float sb, int64_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

/* Restore the heap below entry at (of n entries). */
void topheap_sift_down(float *hs, int64_t *hi, int64_t n, int64_t at);
/* Offer (s, idx): kept while fewer than k are kept, else when it beats the worst kept. */
void topheap_offer(float *hs, int64_t *hi, int64_t *n, int64_t k, float s, int64_t idx);
/* Sort the n entries best first (the heap is used up). */
void topheap_sort(float *hs, int64_t *hi, int64_t n);
#endif
