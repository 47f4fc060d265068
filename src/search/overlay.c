/* overlay.c - the picture of a localisation: the image with the heatmap blended over the part
 * CLIP sees (its centre crop's window), the box of the region above the threshold outlined,
 * optionally scaled down, as a PNG in memory. Everything lives in the call (re-entrant). */
#include "media/image.h"

#include <math.h>
#include <stdlib.h>

/* The most window pixels an overlay paints (2^26, 8192 x 8192): 9 bytes each for the heat
 * and the box's search, on top of the image, so that no image a decoder accepts (up to
 * IMAGE_MAX_PIXELS) makes one call take gigabytes. */
#define OVERLAY_MAX_WINDOW (1LL << 26)

cmcr_overlay_params cmcr_overlay_default_params(void)
{
    return (cmcr_overlay_params){.threshold = 0.5, .alpha = 0.5, .crop = 224, .max_side = 0};
}

void cmcr_overlay_free(cmcr_overlay *o)
{
    if (!o) return;
    free(o->png);
    *o = (cmcr_overlay){0};
}

static float clamp01(float v)
{
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

/* The classic jet colour map (MATLAB's, matplotlib's "jet" up to its table's sampling): dark
 * blue at 0, through cyan, yellow, to dark red at 1; each channel a clipped tent. */
static void jet(float v, float rgb[3])
{
    rgb[0] = clamp01(1.5f - fabsf(4.0f * v - 3.0f));
    rgb[1] = clamp01(1.5f - fabsf(4.0f * v - 2.0f));
    rgb[2] = clamp01(1.5f - fabsf(4.0f * v - 1.0f));
}

/* Blend the colour of each heat value over the window's pixels: (1 - alpha) pixel +
 * alpha 255 jet(heat), rounded. */
static void blend(image_rgb *im, const cmcr_box *win, const float *heat, float alpha)
{
    int32_t ww = win->x1 - win->x0;
    for (int32_t y = win->y0; y < win->y1; y++) {
        uint8_t *row = im->pixels + ((size_t)y * (size_t)im->width + (size_t)win->x0) * 3;
        const float *hr = heat + (size_t)(y - win->y0) * (size_t)ww;
        for (int32_t x = 0; x < ww; x++) {
            float c[3];
            jet(hr[x], c);
            for (int k = 0; k < 3; k++) {
                float v = (1.0f - alpha) * (float)row[3 * x + k] + alpha * 255.0f * c[k];
                row[3 * x + k] = (uint8_t)(v + 0.5f);
            }
        }
    }
}

/* The outline of b (in im's pixels), t pixels wide on the inside of its edges, in white. */
static void outline(image_rgb *im, const cmcr_box *b, int32_t t)
{
    for (int32_t y = b->y0; y < b->y1; y++)
        for (int32_t x = b->x0; x < b->x1; x++) {
            if (y >= b->y0 + t && y < b->y1 - t && x >= b->x0 + t && x < b->x1 - t) continue;
            uint8_t *p = im->pixels + ((size_t)y * (size_t)im->width + (size_t)x) * 3;
            p[0] = p[1] = p[2] = 255;
        }
}

/* A box of a w x h image in a ow x oh picture of it: edges scaled, outward. */
static cmcr_box scale_box(const cmcr_box *b, int32_t w, int32_t h, int32_t ow, int32_t oh)
{
    cmcr_box o;
    o.x0 = (int32_t)((int64_t)b->x0 * ow / w);
    o.y0 = (int32_t)((int64_t)b->y0 * oh / h);
    o.x1 = (int32_t)(((int64_t)b->x1 * ow + w - 1) / w);
    o.y1 = (int32_t)(((int64_t)b->y1 * oh + h - 1) / h);
    return o;
}

static cmcr_status check_params(const char *name, const float *map, int32_t gh, int32_t gw,
                                const cmcr_overlay_params *p)
{
    if (gh < 1 || gw < 1) return core_fail(CMCR_EINVAL, "%s: the map is %dx%d: it has no cells", name, gh, gw);
    if (!(p->threshold >= 0.0 && p->threshold <= 1.0))
        return core_fail(CMCR_EINVAL, "%s: threshold %g is not in [0, 1]", name, p->threshold);
    if (!(p->alpha >= 0.0 && p->alpha <= 1.0))
        return core_fail(CMCR_EINVAL, "%s: alpha %g is not in [0, 1]", name, p->alpha);
    if (p->crop < 1 || p->max_side < 0)
        return core_fail(CMCR_EINVAL, "%s: crop %d must be at least 1 and max_side %d at least 0", name, p->crop,
                         p->max_side);
    if (cmcr_find_nonfinite_row(map, 1, (int64_t)gh * gw) >= 0)
        return core_fail(CMCR_EVALUE, "%s: the map has a NaN or Inf value", name);
    return CMCR_OK;
}

/* The heat over the window (upsampled, normalised) blended into im, and the box in im's pixels. */
static cmcr_status paint(image_rgb *im, const float *map, int32_t gh, int32_t gw, const cmcr_overlay_params *p,
                         const char *name, cmcr_overlay *out)
{
    cmcr_status st = cmcr_crop_window(im->width, im->height, p->crop, &out->window);
    if (st != CMCR_OK) return core_fail_prefix(st, name);
    const cmcr_box *win = &out->window;
    int32_t ww = win->x1 - win->x0, wh = win->y1 - win->y0;
    if (ww < 1 || wh < 1) return CMCR_OK; /* a crop smaller than a pixel of the image: nothing to paint */
    if ((int64_t)ww * wh > OVERLAY_MAX_WINDOW)
        return core_fail(CMCR_ENOMEM, "%s: the part CLIP sees is %dx%d pixels, more than the overlay's limit of %lld; "
                         "scale the image down first", name, ww, wh, (long long)OVERLAY_MAX_WINDOW);
    float *heat = core_xmalloc((size_t)ww * (size_t)wh * sizeof(float));
    if (!heat) return core_fail(CMCR_ENOMEM, "%s: out of memory for a %dx%d heatmap", name, ww, wh);
    st = cmcr_upsample_bilinear(map, gh, gw, wh, ww, heat);
    if (st == CMCR_OK) {
        cmcr_normalize_minmax(heat, (int64_t)ww * wh);
        st = cmcr_localise_box(heat, wh, ww, (float)p->threshold, &out->box, &out->has_box);
    }
    if (st == CMCR_OK) {
        blend(im, win, heat, (float)p->alpha);
        if (out->has_box) {
            out->box.x0 += win->x0;
            out->box.x1 += win->x0;
            out->box.y0 += win->y0;
            out->box.y1 += win->y0;
        }
    }
    free(heat);
    return st == CMCR_OK ? st : core_fail_prefix(st, name);
}

/* im scaled down so that its longer side is max_side (0, or already small enough: as is). */
static cmcr_status shrink(image_rgb *im, int32_t max_side, const char *name)
{
    int32_t longer = im->width > im->height ? im->width : im->height;
    if (max_side == 0 || longer <= max_side) return CMCR_OK;
    int32_t ow = (int32_t)llround((double)im->width * max_side / longer);
    int32_t oh = (int32_t)llround((double)im->height * max_side / longer);
    image_rgb small = {0};
    cmcr_status st = image_resize_bicubic(im, ow < 1 ? 1 : ow, oh < 1 ? 1 : oh, name, &small);
    if (st != CMCR_OK) return st;
    image_rgb_free(im);
    *im = small;
    return CMCR_OK;
}

cmcr_status cmcr_localise_overlay(const void *image, size_t len, const char *name, const float *map, int32_t gh,
                                  int32_t gw, const cmcr_overlay_params *p, cmcr_overlay *out)
{
    name = name ? name : "(memory)";
    *out = (cmcr_overlay){0};
    cmcr_overlay_params defaults = cmcr_overlay_default_params();
    p = p ? p : &defaults;
    cmcr_status st = check_params(name, map, gh, gw, p);
    if (st != CMCR_OK) return st;
    image_rgb im = {0};
    st = image_decode_memory(image, len, name, &im);
    if (st != CMCR_OK) return st;
    out->width = im.width;
    out->height = im.height;
    st = paint(&im, map, gh, gw, p, name, out);
    if (st == CMCR_OK) st = shrink(&im, p->max_side, name);
    if (st == CMCR_OK && out->has_box) {
        int32_t longer = im.width > im.height ? im.width : im.height;
        cmcr_box b = scale_box(&out->box, out->width, out->height, im.width, im.height);
        outline(&im, &b, longer / 250 > 2 ? longer / 250 : 2);
    }
    if (st == CMCR_OK) st = image_encode_png(&im, name, &out->png, &out->png_len);
    if (st == CMCR_OK) {
        out->png_width = im.width;
        out->png_height = im.height;
    }
    image_rgb_free(&im);
    if (st != CMCR_OK) cmcr_overlay_free(out);
    return st;
}
