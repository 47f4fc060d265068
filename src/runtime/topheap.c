/* topheap.c - the k best (score, index) pairs (topheap.h). */
#include "runtime/topheap.h"

void topheap_sift_down(float *hs, int64_t *hi, int64_t n, int64_t at)
{
    for (;;) {
        int64_t l = 2 * at + 1, r = l + 1, w = at;
        if (l < n && topheap_worse(hs[l], hi[l], hs[w], hi[w])) w = l;
        if (r < n && topheap_worse(hs[r], hi[r], hs[w], hi[w])) w = r;
        if (w == at) return;
        float ts = hs[w];
        int64_t ti = hi[w];
        hs[w] = hs[at], hi[w] = hi[at];
        hs[at] = ts, hi[at] = ti;
        at = w;
    }
}

void topheap_offer(float *hs, int64_t *hi, int64_t *n, int64_t k, float s, int64_t idx)
{
    if (*n < k) { /* not full yet: append and sift up */
        int64_t at = (*n)++;
        while (at > 0) {
            int64_t up = (at - 1) / 2;
            if (!topheap_worse(s, idx, hs[up], hi[up])) break;
            hs[at] = hs[up], hi[at] = hi[up];
            at = up;
        }
        hs[at] = s, hi[at] = idx;
    } else if (topheap_worse(hs[0], hi[0], s, idx)) { /* beats the worst kept: replace the root */
        hs[0] = s, hi[0] = idx;
        topheap_sift_down(hs, hi, *n, 0);
    }
}

void topheap_sort(float *hs, int64_t *hi, int64_t n)
{
    for (int64_t m = n; m > 1; m--) { /* the worst goes to the end, n times */
        float ts = hs[0];
        int64_t ti = hi[0];
        hs[0] = hs[m - 1], hi[0] = hi[m - 1];
        hs[m - 1] = ts, hi[m - 1] = ti;
        topheap_sift_down(hs, hi, m - 1, 0);
    }
}
