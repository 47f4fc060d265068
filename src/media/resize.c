/* resize.c - Pillow 9.4's bicubic resize (libImaging/Resample.c: precompute_coeffs,
 * normalize_coeffs_8bpc, the 8-bit horizontal and vertical passes), the CLIP processor's
 * resize + centre crop, and its rescale + normalise.
 *
 * Pillow's resize is separable: output column x depends only on x's coefficients and output
 * row y only on y's, so any window of the result can be computed alone, from the source rows
 * its rows need. resize_window does that; the whole resize is the window that covers all.
 * Every floating-point step is Pillow's, in its order, so the coefficients (and so the bytes)
 * are identical. */
#include "media/image.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

#define PRECISION_BITS (32 - 8 - 2) /* Pillow's: 8 bits of result, 2 of headroom for the lobes */
#define BICUBIC_SUPPORT 2.0

/* Pillow's bicubic kernel, a = -0.5. */
static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Fixed-point coefficients for outputs first .. first + count - 1 of a resize of in_size
 * samples to out_size: for output i (0-based in the window) the taps start at bound[2i] and
 * there are bound[2i+1] of them (possibly <= 0: none), weights k[i * ksize ...]. */
typedef struct coeffs {
    int ksize;
    int *bound;
    int32_t *k;
} coeffs;

static void coeffs_free(coeffs *c)
{
    free(c->bound);
    free(c->k);
}

/* Pillow's precompute_coeffs (box 0..in_size, as float) then normalize_coeffs_8bpc, for the
 * window only. full_check: refuse sizes Pillow refuses (its int overflow guard). */
static cmcr_status coeffs_make(int in_size, int out_size, int first, int count, bool full_check, const char *name,
                               coeffs *c)
{
    float in0 = 0.0f, in1 = (float)in_size; /* Pillow's box is float[4] */
    double scale = (double)(in1 - in0) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = BICUBIC_SUPPORT * filterscale;
    c->bound = NULL;
    c->k = NULL;
    double ksize = ceil(support) * 2 + 1; /* in double: a huge shrink would overflow Pillow's int */
    if (ksize > INT_MAX / (int)sizeof(double))
        return core_fail(CMCR_ENOMEM, "%s: resize from %d to %d needs %.0f coefficients per sample: too many", name,
                         in_size, out_size, ksize);
    c->ksize = (int)ksize;
    if (full_check && out_size > INT_MAX / (c->ksize * (int)sizeof(double)))
        return core_fail(CMCR_ENOMEM,
                         "%s: resize to %d needs %d coefficients per sample: too many (Pillow refuses too)",
                         name, out_size, c->ksize);
    uint64_t nk = 0;
    double *w = malloc((size_t)c->ksize * sizeof *w);
    c->bound = malloc((size_t)count * 2 * sizeof *c->bound);
    if (core_mul_u64((uint64_t)count, (uint64_t)c->ksize, &nk) && nk <= SIZE_MAX / sizeof(int32_t))
        c->k = malloc((size_t)nk * sizeof(int32_t));
    if (!w || !c->bound || !c->k) {
        free(w);
        coeffs_free(c);
        return core_fail(CMCR_ENOMEM, "%s: cannot allocate resize coefficients (%d x %d)", name, count, c->ksize);
    }
    double ss = 1.0 / filterscale;
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = in0 + (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > c->ksize) xmax = c->ksize; /* cannot happen (ksize covers the support); keeps k in bounds */
        for (int x = 0; x < xmax; x++) {
            w[x] = bicubic((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = c->k + (size_t)i * c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bound[2 * i] = xmin;
        c->bound[2 * i + 1] = xmax;
    }
    free(w);
    return CMCR_OK;
}

/* Pillow's clip8: the sum's integer part, saturated to 0..255. */
static inline uint8_t clip8(int32_t v)
{
    int32_t q = v >> PRECISION_BITS; /* arithmetic shift: floor, as Pillow's table lookup */
    return (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
}

/* One output pixel of the horizontal pass: n taps of RGB at src, weights k. */
static inline void filter_px(const uint8_t *src, const int32_t *k, int n, uint8_t *dst)
{
    int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
    for (int t = 0; t < n; t++, src += 3) {
        s0 += src[0] * k[t];
        s1 += src[1] * k[t];
        s2 += src[2] * k[t];
    }
    dst[0] = clip8(s0);
    dst[1] = clip8(s1);
    dst[2] = clip8(s2);
}

/* One output row of the vertical pass: n rows of len bytes (stride apart) from src, weights
 * k, summed tap by tap over the whole row (integer sums: the order does not change them, and
 * this order vectorises), in acc (len ints). */
static void filter_rows(const uint8_t *src, size_t stride, const int32_t *k, int n, size_t len, int32_t *acc,
                        uint8_t *dst)
{
    for (size_t i = 0; i < len; i++) acc[i] = 1 << (PRECISION_BITS - 1);
    for (int t = 0; t < n; t++, src += stride) {
        int32_t w = k[t];
        for (size_t i = 0; i < len; i++) acc[i] += src[i] * w;
    }
    for (size_t i = 0; i < len; i++) dst[i] = clip8(acc[i]);
}

/* The window [x0, x0 + cw) x [y0, y0 + ch) of Pillow's resize of in to out_w x out_h, into
 * dst (cw * ch RGB pixels). Pillow skips the pass of a dimension that does not change. */
static cmcr_status resize_window(const image_rgb *in, int out_w, int out_h, int x0, int y0, int cw, int ch,
                                 bool full_check, const char *name, uint8_t *dst)
{
    bool need_h = out_w != in->width, need_v = out_h != in->height;
    size_t in_stride = (size_t)in->width * 3;
    coeffs hc = {0}, vc = {0};
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    cmcr_status st = CMCR_OK;
    int r0 = y0, r1 = y0 + ch; /* source rows the window needs */
    if (need_v) {
        if ((st = coeffs_make(in->height, out_h, y0, ch, full_check, name, &vc)) != CMCR_OK) return st;
        r0 = vc.bound[0];
        r1 = vc.bound[2 * (ch - 1)] + vc.bound[2 * (ch - 1) + 1];
        if (r1 < r0) r1 = r0;
    }
    const uint8_t *src = in->pixels + (size_t)r0 * in_stride + (size_t)x0 * 3; /* rows r0.. of the pass input */
    size_t src_stride = in_stride;
    if (need_h) {
        if ((st = coeffs_make(in->width, out_w, x0, cw, full_check, name, &hc)) != CMCR_OK) goto done;
        if (!(tmp = malloc((size_t)(r1 - r0) * cw * 3 + 1))) {
            st = core_fail(CMCR_ENOMEM, "%s: cannot allocate %d x %d resize rows", name, r1 - r0, cw);
            goto done;
        }
        for (int r = r0; r < r1; r++) {
            const uint8_t *row = in->pixels + (size_t)r * in_stride;
            uint8_t *o = tmp + (size_t)(r - r0) * cw * 3;
            for (int x = 0; x < cw; x++)
                filter_px(row + (size_t)hc.bound[2 * x] * 3, hc.k + (size_t)x * hc.ksize, hc.bound[2 * x + 1],
                          o + 3 * x);
        }
        src = tmp;
        src_stride = (size_t)cw * 3;
    }
    if (need_v && !(acc = malloc((size_t)cw * 3 * sizeof *acc))) {
        st = core_fail(CMCR_ENOMEM, "%s: cannot allocate a resize row of %d", name, cw);
        goto done;
    }
    for (int y = 0; y < ch; y++) {
        uint8_t *o = dst + (size_t)y * cw * 3;
        if (!need_v) {
            memcpy(o, src + (size_t)y * src_stride, (size_t)cw * 3);
            continue;
        }
        const uint8_t *top = src + (size_t)(vc.bound[2 * y] - r0) * src_stride;
        filter_rows(top, src_stride, vc.k + (size_t)y * vc.ksize, vc.bound[2 * y + 1], (size_t)cw * 3, acc, o);
    }
done:
    free(acc);
    free(tmp);
    coeffs_free(&hc);
    coeffs_free(&vc);
    return st;
}

static cmcr_status check_input(const image_rgb *in, const char *name)
{
    if (!in || !in->pixels || in->width < 1 || in->height < 1)
        return core_fail(CMCR_EINVAL, "%s: no image to resize", name);
    return CMCR_OK;
}

cmcr_status image_resize_bicubic(const image_rgb *in, int32_t width, int32_t height, const char *name,
                                 image_rgb *out)
{
    memset(out, 0, sizeof *out);
    name = name ? name : "<image>";
    cmcr_status st = check_input(in, name);
    if (st != CMCR_OK) return st;
    if (width < 1 || height < 1) return core_fail(CMCR_EINVAL, "%s: cannot resize to %dx%d", name, width, height);
    uint64_t n = 0;
    if (!core_mul_u64((uint64_t)width * 3, (uint64_t)height, &n) || n > SIZE_MAX || !(out->pixels = malloc((size_t)n)))
        return core_fail(CMCR_ENOMEM, "%s: cannot allocate a %dx%d image", name, width, height);
    st = resize_window(in, width, height, 0, 0, width, height, true, name, out->pixels);
    if (st != CMCR_OK) {
        image_rgb_free(out);
        return st;
    }
    out->width = width;
    out->height = height;
    return CMCR_OK;
}

cmcr_status image_clip_crop(const image_rgb *in, int32_t size, const char *name, uint8_t *out)
{
    name = name ? name : "<image>";
    cmcr_status st = check_input(in, name);
    if (st != CMCR_OK) return st;
    image_crop_geometry g = {0};
    st = image_clip_geometry(in->width, in->height, size, name, &g);
    if (st != CMCR_OK) return st;
    return resize_window(in, g.new_w, g.new_h, g.left, g.top, size, size, false, name, out);
}

cmcr_status image_clip_geometry(int32_t width, int32_t height, int32_t size, const char *name, image_crop_geometry *g)
{
    name = name ? name : "<image>";
    if (width < 1 || height < 1)
        return core_fail(CMCR_EINVAL, "%s: image size %dx%d has no pixels", name, width, height);
    if (size < 1) return core_fail(CMCR_EINVAL, "%s: crop size %d must be at least 1", name, size);
    /* transformers' get_resize_output_image_size: int(size * long / short), a Python float
     * division of exact integers (both below 2^53, so C's double division is the same). */
    int64_t w = width, h = height, s = size;
    int64_t shortest = w <= h ? w : h, longest = w <= h ? h : w;
    double q = (double)(s * longest) / (double)shortest;
    if (q >= (double)INT32_MAX)
        return core_fail(CMCR_EUNSUPPORTED, "%s: a %dx%d image resized to a shortest side of %d would be %.0f long",
                         name, width, height, size, q);
    int32_t new_long = (int32_t)q;
    g->new_w = w <= h ? size : new_long;
    g->new_h = w <= h ? new_long : size;
    g->top = (g->new_h - size) / 2;
    g->left = (g->new_w - size) / 2;
    return CMCR_OK;
}

void image_to_chw(const uint8_t *rgb, int32_t size, const float mean[3], const float std[3], float *chw)
{
    size_t plane = (size_t)size * size;
    for (int c = 0; c < 3; c++) {
        float m = mean[c], sd = std[c];
        float *o = chw + c * plane;
        for (size_t i = 0; i < plane; i++) {
            /* NumPy: uint8 array * Python float is float64, then astype(float32) */
            float x = (float)(rgb[3 * i + c] * (1.0 / 255.0));
            o[i] = (x - m) / sd;
        }
    }
}
