/* localise.c - zero-shot sound-source localisation: the cosine map of a query against an
 * image's patches, PyTorch's bilinear upsampling, min-max normalisation, the box of the
 * region above a threshold, CLIP's crop window seen from the image, and the benchmarks'
 * metric (cIoU, AUC) as LVS computes it. docs/localisation.md says what each follows. */
#include "media/image.h"
#include "runtime/vmath.h"

#include <math.h>
#include <stdlib.h>

void cmcr_localise_map(const float *query, const float *patches, int64_t gh, int64_t gw, int64_t dim, float *map)
{
    cmcr_dot_rows(query, 1, patches, gh * gw, dim, map);
}

/* ------------------------------------------------------------------ bilinear upsampling */

/* One axis of PyTorch's linear interpolation (UpSample.h: area_pixel_compute_scale,
 * area_pixel_compute_source_index, compute_source_index_and_lambda), in float as PyTorch
 * computes it for float tensors: output d reads inputs i0[d] and i1[d] with weights l0[d],
 * l1[d]. */
typedef struct axis_taps {
    int64_t *i0, *i1;
    float *l0, *l1;
} axis_taps;

static void axis_taps_make(int64_t in, int64_t out, axis_taps *t)
{
    float scale = (float)in / (float)out;
    for (int64_t d = 0; d < out; d++) {
        float s = scale * ((float)d + 0.5f) - 0.5f;
        if (s < 0.0f) s = 0.0f;
        int64_t a = (int64_t)s;
        if (a > in - 1) a = in - 1; /* float32 rounding past the end on axes near 2^24 (PyTorch clamps too) */
        float l = s - (float)a;
        l = l < 0.0f ? 0.0f : l > 1.0f ? 1.0f : l;
        t->i0[d] = a;
        t->i1[d] = a + (a < in - 1 ? 1 : 0);
        t->l1[d] = l;
        t->l0[d] = 1.0f - l;
    }
}

cmcr_status cmcr_upsample_bilinear(const float *in, int64_t ih, int64_t iw, int64_t oh, int64_t ow, float *out)
{
    uint64_t n;
    if (ih < 1 || iw < 1 || oh < 1 || ow < 1)
        return core_fail(CMCR_EINVAL, "bilinear upsampling: sizes %lldx%lld -> %lldx%lld must be at least 1",
                         (long long)ih, (long long)iw, (long long)oh, (long long)ow);
    if (!core_mul_u64((uint64_t)oh, (uint64_t)ow, &n) || n > (uint64_t)INT64_MAX / sizeof(float) ||
        (uint64_t)(oh + ow) > SIZE_MAX / (2 * sizeof(int64_t) + 2 * sizeof(float)))
        return core_fail(CMCR_ENOMEM, "bilinear upsampling: %lldx%lld is too large", (long long)oh, (long long)ow);
    size_t m = (size_t)(oh + ow);
    int64_t *idx = core_xmalloc(2 * m * sizeof(int64_t));
    float *lam = core_xmalloc(2 * m * sizeof(float));
    if (!idx || !lam) {
        free(idx);
        free(lam);
        return core_fail(CMCR_ENOMEM, "bilinear upsampling: out of memory for %lldx%lld", (long long)oh, (long long)ow);
    }
    axis_taps ty = {idx, idx + oh, lam, lam + oh};
    axis_taps tx = {idx + 2 * oh, idx + 2 * oh + ow, lam + 2 * oh, lam + 2 * oh + ow};
    axis_taps_make(ih, oh, &ty);
    axis_taps_make(iw, ow, &tx);
    for (int64_t y = 0; y < oh; y++) {
        const float *r0 = in + ty.i0[y] * iw, *r1 = in + ty.i1[y] * iw;
        float h0 = ty.l0[y], h1 = ty.l1[y];
        float *o = out + y * ow;
        for (int64_t x = 0; x < ow; x++) {
            int64_t a = tx.i0[x], b = tx.i1[x];
            float w0 = tx.l0[x], w1 = tx.l1[x];
            /* PyTorch's order: along the width within each of the two rows, then the rows */
            float t0 = r0[a] * w0 + r0[b] * w1;
            float t1 = r1[a] * w0 + r1[b] * w1;
            o[x] = t0 * h0 + t1 * h1;
        }
    }
    free(idx);
    free(lam);
    return CMCR_OK;
}

void cmcr_normalize_minmax(float *x, int64_t n)
{
    if (n < 1) return;
    float lo = x[0], hi = x[0];
    for (int64_t i = 1; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float range = hi - lo;
    for (int64_t i = 0; i < n; i++) x[i] = range > 0.0f ? (x[i] - lo) / range : 0.0f;
}

/* ------------------------------------------------------------------ the box */

/* One 4-connected region: its size, highest value and bounding box. */
typedef struct region {
    int64_t size;
    float peak;
    cmcr_box box;
} region;

/* The region of pixel start (>= threshold, not seen yet), marking its pixels seen; queue has
 * room for every pixel. */
static region flood(const float *map, int32_t h, int32_t w, float threshold, int32_t start, unsigned char *seen,
                    int32_t *queue)
{
    region r = {0, map[start], {w, h, 0, 0}};
    int32_t head = 0, tail = 0;
    queue[tail++] = start;
    seen[start] = 1;
    while (head < tail) {
        int32_t p = queue[head++];
        int32_t y = p / w, x = p % w;
        r.size++;
        r.peak = map[p] > r.peak ? map[p] : r.peak;
        r.box.x0 = x < r.box.x0 ? x : r.box.x0;
        r.box.y0 = y < r.box.y0 ? y : r.box.y0;
        r.box.x1 = x + 1 > r.box.x1 ? x + 1 : r.box.x1;
        r.box.y1 = y + 1 > r.box.y1 ? y + 1 : r.box.y1;
        int32_t next[4] = {y > 0 ? p - w : -1, y < h - 1 ? p + w : -1, x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1};
        for (int k = 0; k < 4; k++) {
            int32_t q = next[k];
            if (q < 0 || seen[q] || !(map[q] >= threshold)) continue;
            seen[q] = 1;
            queue[tail++] = q;
        }
    }
    return r;
}

cmcr_status cmcr_localise_box(const float *map, int32_t h, int32_t w, float threshold, cmcr_box *box, int *found)
{
    *box = (cmcr_box){0, 0, 0, 0};
    *found = 0;
    if (h < 1 || w < 1) return core_fail(CMCR_EINVAL, "localisation box: map size %dx%d has no pixels", h, w);
    int64_t n = (int64_t)h * w;
    if (n > INT32_MAX) /* pixel indices are int32: 2^31 pixels, far more than an image may have */
        return core_fail(CMCR_ENOMEM, "localisation box: a %dx%d map is too large", h, w);
    unsigned char *seen = calloc((size_t)n, 1);
    int32_t *queue = core_xmalloc((size_t)n * sizeof(int32_t));
    if (!seen || !queue) {
        free(seen);
        free(queue);
        return core_fail(CMCR_ENOMEM, "localisation box: out of memory for a %dx%d map", h, w);
    }
    region best = {0, 0.0f, {0, 0, 0, 0}};
    for (int32_t p = 0; p < (int32_t)n; p++) {
        if (seen[p] || !(map[p] >= threshold)) continue;
        region r = flood(map, h, w, threshold, p, seen, queue);
        /* strictly better only: among equals the first in raster order stays */
        if (r.size > best.size || (r.size == best.size && r.peak > best.peak)) best = r;
    }
    free(seen);
    free(queue);
    if (best.size > 0) {
        *box = best.box;
        *found = 1;
    }
    return CMCR_OK;
}

/* ------------------------------------------------------------------ the crop seen from the image */

cmcr_status cmcr_image_size(const char *path, int32_t *width, int32_t *height)
{
    *width = *height = 0;
    image_rgb im;
    cmcr_status st = image_decode_file(path, &im);
    if (st != CMCR_OK) return st;
    *width = im.width;
    *height = im.height;
    image_rgb_free(&im);
    return CMCR_OK;
}

/* The pixels j of an axis of `len` pixels whose centres j + 0.5 lie in the source interval
 * [off * len / n, (off + size) * len / n) of a resize to n and a crop of size from off:
 * (2j + 1) n >= 2 off len and (2j + 1) n < 2 (off + size) len, in exact integers. */
static void axis_window(int64_t len, int64_t n, int64_t off, int64_t size, int32_t *lo, int32_t *hi)
{
    int64_t a = 2 * off * len - n, b = 2 * (off + size) * len - n; /* j >= a / 2n, j >= b / 2n */
    int64_t j0 = a <= 0 ? 0 : (a + 2 * n - 1) / (2 * n);
    int64_t j1 = b <= 0 ? 0 : (b + 2 * n - 1) / (2 * n);
    *lo = (int32_t)(j0 < len ? j0 : len);
    *hi = (int32_t)(j1 < len ? j1 : len);
}

cmcr_status cmcr_crop_window(int32_t width, int32_t height, int32_t size, cmcr_box *window)
{
    *window = (cmcr_box){0, 0, 0, 0};
    image_crop_geometry g = {0};
    cmcr_status st = image_clip_geometry(width, height, size, "crop window", &g);
    if (st != CMCR_OK) return st;
    /* 2 * new * len stays far below 2^63: new < 2^31 and len < 2^31 */
    axis_window(width, g.new_w, g.left, size, &window->x0, &window->x1);
    axis_window(height, g.new_h, g.top, size, &window->y0, &window->y1);
    return CMCR_OK;
}

/* An edge at image coordinate v of an axis of len pixels resized to n, from off: in the
 * crop frame, truncated and clipped to 0..size. */
static int32_t frame_edge(double v, int64_t len, int64_t n, int64_t off, int64_t size)
{
    double u = floor(v * (double)n / (double)len) - (double)off;
    return (int32_t)(u < 0.0 ? 0.0 : u > (double)size ? (double)size : u);
}

cmcr_status cmcr_crop_box(int32_t width, int32_t height, int32_t size, const double edges[4], cmcr_box *out)
{
    *out = (cmcr_box){0, 0, 0, 0};
    for (int i = 0; i < 4; i++)
        if (!isfinite(edges[i])) return core_fail(CMCR_EINVAL, "box edge %d is not a finite number", i);
    if (!(edges[0] >= 0 && edges[0] < edges[2] && edges[2] <= width && edges[1] >= 0 && edges[1] < edges[3] &&
          edges[3] <= height))
        return core_fail(CMCR_EINVAL,
                         "box [%g, %g, %g, %g] is not inside the %dx%d image with left < right and top < bottom",
                         edges[0], edges[1], edges[2], edges[3], width, height);
    image_crop_geometry g = {0};
    cmcr_status st = image_clip_geometry(width, height, size, "crop box", &g);
    if (st != CMCR_OK) return st;
    out->x0 = frame_edge(edges[0], width, g.new_w, g.left, size);
    out->x1 = frame_edge(edges[2], width, g.new_w, g.left, size);
    out->y0 = frame_edge(edges[1], height, g.new_h, g.top, size);
    out->y1 = frame_edge(edges[3], height, g.new_h, g.top, size);
    return CMCR_OK;
}

/* ------------------------------------------------------------------ cIoU and AUC */

static int float_order(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* LVS's prediction (test.py): pred = 1 - normalize_img(-heatmap), in float32 as NumPy does it,
 * so that ties at the median fall as they do there. The constant case is ours: all 0. */
static void lvs_pred(const float *heat, int64_t n, float *pred)
{
    float lo = heat[0], hi = heat[0];
    for (int64_t i = 1; i < n; i++) {
        lo = heat[i] < lo ? heat[i] : lo;
        hi = heat[i] > hi ? heat[i] : hi;
    }
    float range = hi - lo; /* (-lo) - (-hi): the same float */
    for (int64_t i = 0; i < n; i++) pred[i] = range > 0.0f ? 1.0f - (hi - heat[i]) / range : 0.0f;
}

cmcr_status cmcr_localisation_ciou(const float *heatmap, int32_t h, int32_t w, const cmcr_box *boxes, int64_t nboxes,
                                   double *ciou)
{
    *ciou = 0.0;
    if (h < 1 || w < 1) return core_fail(CMCR_EINVAL, "cIoU: heatmap size %dx%d has no pixels", h, w);
    int64_t n = (int64_t)h * w;
    if ((uint64_t)n > SIZE_MAX / (2 * sizeof(float) + 1)) return core_fail(CMCR_ENOMEM, "cIoU: heatmap too large");
    if (cmcr_find_nonfinite_row(heatmap, 1, n) >= 0)
        return core_fail(CMCR_EVALUE, "cIoU: the heatmap has a NaN or Inf value");
    unsigned char *gt = calloc((size_t)n, 1);
    float *pred = core_xmalloc((size_t)n * sizeof(float)), *sorted = core_xmalloc((size_t)n * sizeof(float));
    if (!gt || !pred || !sorted) {
        free(gt);
        free(pred);
        free(sorted);
        return core_fail(CMCR_ENOMEM, "cIoU: out of memory for a %dx%d heatmap", h, w);
    }
    int64_t ngt = 0;
    for (int64_t b = 0; b < nboxes; b++) {
        int32_t x0 = boxes[b].x0 < 0 ? 0 : boxes[b].x0, x1 = boxes[b].x1 > w ? w : boxes[b].x1;
        int32_t y0 = boxes[b].y0 < 0 ? 0 : boxes[b].y0, y1 = boxes[b].y1 > h ? h : boxes[b].y1;
        for (int32_t y = y0; y < y1; y++)
            for (int32_t x = x0; x < x1; x++) {
                ngt += !gt[(int64_t)y * w + x];
                gt[(int64_t)y * w + x] = 1;
            }
    }
    if (ngt > 0) {
        lvs_pred(heatmap, n, pred);
        memcpy(sorted, pred, (size_t)n * sizeof(float));
        qsort(sorted, (size_t)n, sizeof(float), float_order);
        float thr = sorted[n / 2]; /* np.sort(pred.flatten())[int(h * w / 2)] */
        int64_t inter = 0, extra = 0;
        for (int64_t i = 0; i < n; i++) {
            /* pred[pred > thr] = 1; pred[pred < 1] = 0: values already at 1 stay 1 */
            bool on = pred[i] > thr || pred[i] >= 1.0f;
            inter += on && gt[i];
            extra += on && !gt[i];
        }
        *ciou = (double)inter / ((double)ngt + (double)extra);
    }
    free(gt);
    free(pred);
    free(sorted);
    if (ngt == 0) return core_fail(CMCR_EINVAL, "cIoU: no ground-truth box has a pixel in the %dx%d frame", h, w);
    return CMCR_OK;
}

cmcr_status cmcr_localisation_summary(const double *ciou, int64_t n, cmcr_localisation_metrics *out)
{
    *out = (cmcr_localisation_metrics){0};
    if (n < 1) return core_fail(CMCR_EINVAL, "localisation metrics: no samples");
    for (int64_t i = 0; i < n; i++)
        if (!(ciou[i] >= 0.0 && ciou[i] <= 1.0))
            return core_fail(CMCR_EINVAL, "localisation metrics: sample %lld has cIoU %g, outside [0, 1]", (long long)i,
                             ciou[i]);
    double x[21];
    int64_t hits50 = 0;
    for (int64_t i = 0; i < n; i++) hits50 += ciou[i] >= 0.5;
    for (int k = 0; k <= 20; k++) {
        x[k] = 0.05 * k; /* LVS's thresholds, as Python computes them */
        int64_t hits = 0;
        for (int64_t i = 0; i < n; i++) hits += ciou[i] >= x[k];
        out->success[k] = (double)hits / (double)n;
    }
    double auc = 0.0; /* sklearn.metrics.auc: np.trapz(y, x) */
    for (int k = 0; k < 20; k++) auc += (x[k + 1] - x[k]) * (out->success[k] + out->success[k + 1]) / 2.0;
    out->samples = n;
    out->ciou50 = (double)hits50 / (double)n;
    out->auc = auc;
    return CMCR_OK;
}
