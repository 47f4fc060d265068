/* pointgroup.c - PointBERT's grouping: farthest point sampling and k nearest neighbours (see
 * pointbert.h and docs/encoders.md, ULIP-2 PointBERT, The grouping).
 *
 * This file is compiled with -ffp-contract=off (CMakeLists.txt): FPS must compute each squared
 * distance as the reference does, three float32 products and two float32 sums, so that its
 * indices are the reference's exactly; a fused multiply-add would change the last bit and,
 * at near-ties, the choice. Clang (the fuzz build, which compiles the sources itself) is told
 * the same by the pragma; GCC ignores the pragma and obeys the flag. */
#include "encoders/pointbert.h"
#include "runtime/vmath.h"

#include <stdlib.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

size_t pointbert_group_floats(int width)
{
    return (size_t)PB_GROUPS * PB_GROUP_SIZE * (size_t)width + (size_t)PB_GROUPS * 3;
}

/* dist[i] = min(dist[i], |p_i - c|^2) over n points (structure of arrays); returns the index
 * of the first maximum of the updated dist. Two vectorisable passes: the update with the
 * maximum, then the search for its first index. */
CMCR_VECTOR_CLONES
static int64_t fps_step(const float *x, const float *y, const float *z, float *dist, int64_t n, float cx, float cy,
                        float cz)
{
    float best = -1.0f; /* below every distance */
    #pragma omp simd reduction(max : best)
    for (int64_t i = 0; i < n; i++) {
        float dx = x[i] - cx, dy = y[i] - cy, dz = z[i] - cz;
        float d = (dx * dx + dy * dy) + dz * dz;
        float v = d < dist[i] ? d : dist[i];
        dist[i] = v;
        best = v > best ? v : best;
    }
    int64_t i = 0;
    while (i < n - 1 && dist[i] != best) i++; /* best is one of them: the bound only guards */
    return i;
}

cmcr_status points_fps(const float *v, int64_t n, int stride, int64_t start, int32_t m, int32_t *out)
{
    if (!v || !out || n < 1 || n > INT32_MAX || stride < 3 || start < 0 || start >= n || m < 0)
        return core_fail(CMCR_EINVAL, "farthest point sampling: bad arguments (%lld points of stride %d, start %lld)",
                         (long long)n, stride, (long long)start);
    float *x = (uint64_t)n > SIZE_MAX / 16 ? NULL : malloc(sizeof(float) * 4 * (size_t)n);
    if (!x) return core_fail(CMCR_ENOMEM, "farthest point sampling: out of memory for %lld points", (long long)n);
    float *y = x + n, *z = y + n, *dist = z + n;
    for (int64_t i = 0; i < n; i++) {
        x[i] = v[i * stride];
        y[i] = v[i * stride + 1];
        z[i] = v[i * stride + 2];
        dist[i] = 1e10f;
    }
    int64_t far = start;
    for (int32_t i = 0; i < m; i++) {
        out[i] = (int32_t)far;
        far = fps_step(x, y, z, dist, n, x[far], y[far], z[far]);
    }
    free(x);
    return CMCR_OK;
}

/* Whether point a comes after point b in (distance, index) order. */
static bool after(const double *d, int32_t a, int32_t b) { return d[a] > d[b] || (d[a] == d[b] && a > b); }

/* Restore the max-heap h (len entries, the last point in (distance, index) order at the root)
 * below position j. */
static void sift_down(const double *d, int32_t *h, int32_t len, int32_t j)
{
    for (;;) {
        int32_t l = 2 * j + 1, r = l + 1, m = j;
        if (l < len && after(d, h[l], h[m])) m = l;
        if (r < len && after(d, h[r], h[m])) m = r;
        if (m == j) return;
        int32_t t = h[j];
        h[j] = h[m];
        h[m] = t;
        j = m;
    }
}

static void sift_up(const double *d, int32_t *h, int32_t j)
{
    while (j > 0 && after(d, h[j], h[(j - 1) / 2])) {
        int32_t p = (j - 1) / 2, t = h[j];
        h[j] = h[p];
        h[p] = t;
        j = p;
    }
}

/* Offer point i to the heap h of the best len (< k: it grows) so far. */
static void offer(const double *d, int32_t *h, int32_t *len, int32_t k, int32_t i)
{
    if (*len < k) {
        h[*len] = i;
        sift_up(d, h, (*len)++);
    } else if (after(d, h[0], i)) {
        h[0] = i;
        sift_down(d, h, k, 0);
    }
}

/* Every SAMPLE-th point is offered first: the heap's root is then already near the final k-th
 * distance, so few of the other points enter (scan-ordered clouds, whose points approach a
 * centre one after another, would otherwise all enter). */
#define SAMPLE 64

/* The k nearest of n points to c, by (squared distance in double, index), into out (k <= n),
 * in that order; d (n doubles) is scratch. The k best so far are a max-heap in that order, so
 * a point costs one comparison with the root, or log k steps when it enters; the order decides
 * ties (the lower index stays), so the result does not depend on the order points are offered
 * in. A heap sort then orders the k. */
static void knn_one(const float *v, int64_t n, int stride, const float *c, int32_t k, double *d, int32_t *out)
{
    const double cx = c[0], cy = c[1], cz = c[2];
    for (int64_t i = 0; i < n; i++) {
        double dx = (double)v[i * stride] - cx, dy = (double)v[i * stride + 1] - cy, dz = (double)v[i * stride + 2] - cz;
        d[i] = (dx * dx + dy * dy) + dz * dz;
    }
    int32_t len = 0;
    const int64_t step = n >= (int64_t)SAMPLE * k ? SAMPLE : 1;
    for (int64_t i = 0; i < n; i += step) offer(d, out, &len, k, (int32_t)i);
    for (int64_t i = 0; step > 1 && i < n; i++)
        if (i % SAMPLE != 0 && d[i] <= d[out[0]]) offer(d, out, &len, k, (int32_t)i);
    for (int32_t e = k - 1; e > 0; e--) {
        int32_t t = out[0];
        out[0] = out[e];
        out[e] = t;
        sift_down(d, out, e, 0);
    }
}

cmcr_status points_knn(const float *v, int64_t n, int stride, const int32_t *centres, int32_t m, int32_t k,
                       int32_t *out)
{
    if (!v || !centres || !out || n > INT32_MAX || stride < 3 || m < 0 || k < 1 || k > n)
        return core_fail(CMCR_EINVAL, "k nearest neighbours: bad arguments (%d of %lld points of stride %d)", k,
                         (long long)n, stride);
    for (int32_t g = 0; g < m; g++)
        if (centres[g] < 0 || centres[g] >= n)
            return core_fail(CMCR_EINVAL, "k nearest neighbours: centre %d is point %d, outside 0..%lld", g, centres[g],
                             (long long)(n - 1));
    cmcr_status st = CMCR_OK;
    #pragma omp parallel
    {
        double *d = (uint64_t)n > SIZE_MAX / 8 ? NULL : malloc(sizeof(double) * (size_t)n);
        if (!d) {
            #pragma omp atomic write
            st = CMCR_ENOMEM;
        }
        #pragma omp for schedule(static)
        for (int32_t g = 0; g < m; g++)
            if (d) knn_one(v, n, stride, v + (int64_t)centres[g] * stride, k, d, out + (int64_t)g * k);
        free(d);
    }
    if (st) return core_fail(st, "k nearest neighbours: out of memory for %lld points", (long long)n);
    return CMCR_OK;
}

cmcr_status pointbert_group(const float *v, int64_t n, int width, int64_t start, float *out, int32_t *centre_idx,
                            int32_t *knn_idx)
{
    if (!v || !out) return core_fail(CMCR_EINVAL, "pointbert_group: NULL argument");
    if (width != 3 && width != 6)
        return core_fail(CMCR_EINVAL, "pointbert_group: %d values per point, expected 3 (xyz) or 6 (xyz rgb)", width);
    if (n < PB_GROUP_SIZE)
        return core_fail(CMCR_EINVAL, "pointbert_group: %lld points, fewer than the %d of a group", (long long)n,
                         PB_GROUP_SIZE);
    if (n > INT32_MAX)
        return core_fail(CMCR_EINVAL, "pointbert_group: %lld points, more than the %d an index holds", (long long)n,
                         INT32_MAX);
    if (start < 0 || start >= n)
        return core_fail(CMCR_EINVAL, "pointbert_group: start index %lld is outside 0..%lld", (long long)start,
                         (long long)(n - 1));
    int32_t *idx = malloc(sizeof(int32_t) * PB_GROUPS * (PB_GROUP_SIZE + 1));
    if (!idx) return core_fail(CMCR_ENOMEM, "pointbert_group: out of memory");
    int32_t *cent = idx, *nb = idx + PB_GROUPS;
    cmcr_status st = points_fps(v, n, width, start, PB_GROUPS, cent);
    if (!st) st = points_knn(v, n, width, cent, PB_GROUPS, PB_GROUP_SIZE, nb);
    if (!st) {
        float *centres = out + (size_t)PB_GROUPS * PB_GROUP_SIZE * (size_t)width;
        for (int g = 0; g < PB_GROUPS; g++) {
            const float *c = v + (int64_t)cent[g] * width;
            for (int a = 0; a < 3; a++) centres[g * 3 + a] = c[a];
            for (int j = 0; j < PB_GROUP_SIZE; j++) {
                const float *p = v + (int64_t)nb[g * PB_GROUP_SIZE + j] * width;
                float *o = out + ((size_t)g * PB_GROUP_SIZE + (size_t)j) * (size_t)width;
                for (int a = 0; a < 3; a++) o[a] = p[a] - c[a];
                for (int a = 3; a < width; a++) o[a] = p[a];
            }
        }
        if (centre_idx) memcpy(centre_idx, cent, sizeof(int32_t) * PB_GROUPS);
        if (knn_idx) memcpy(knn_idx, nb, sizeof(int32_t) * PB_GROUPS * PB_GROUP_SIZE);
    }
    free(idx);
    return st;
}
