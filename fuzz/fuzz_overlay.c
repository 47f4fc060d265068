/* fuzz_overlay.c - libFuzzer target: an arbitrary file as the image of a localisation overlay
 * (cmcr_localise_overlay: the decoder, CLIP's crop window for any size and aspect, the map
 * upsampled to it, the box, the blend, a scale-down, the PNG writer). The last byte picks the
 * threshold, alpha, crop side and max_side; the map is a fixed bump. On success the window
 * and box must lie in the image and the PNG must decode to the size reported; on failure
 * nothing is left behind. */
#include "fuzz_common.h"
#include "media/image.h"

static int inside(const cmcr_box *b, int32_t x0, int32_t y0, int32_t x1, int32_t y1)
{
    return b->x0 >= x0 && b->y0 >= y0 && b->x1 <= x1 && b->y1 <= y1 && b->x0 < b->x1 && b->y0 < b->y1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t k = data[size - 1];
    float map[49];
    for (int i = 0; i < 49; i++) map[i] = (float)((i / 7 - 3) * (i / 7 - 3) + (i % 7 - 2) * (i % 7 - 2)) * -0.01f;
    if (k & 0x80) map[0] = 1; /* a second hot spot: regions of equal size */
    cmcr_overlay_params p = cmcr_overlay_default_params();
    p.threshold = (k & 3) / 3.0;
    p.alpha = ((k >> 2) & 1) ? 1.0 : 0.5;
    p.crop = ((k >> 3) & 1) ? 224 : 5;
    p.max_side = ((k >> 4) & 3) * 16;
    cmcr_overlay o;
    if (cmcr_localise_overlay(data, size, "input.img", map, 7, 7, &p, &o) != CMCR_OK) {
        if (o.png) abort(); /* a refusal leaves nothing behind */
        return 0;
    }
    if (!inside(&o.window, 0, 0, o.width, o.height)) abort();
    if (o.has_box && !inside(&o.box, o.window.x0, o.window.y0, o.window.x1, o.window.y1)) abort();
    image_rgb back;
    if (image_decode_memory(o.png, o.png_len, "overlay.png", &back) != CMCR_OK) abort();
    if (back.width != o.png_width || back.height != o.png_height) abort();
    if (p.max_side && (back.width > p.max_side || back.height > p.max_side)) abort();
    image_rgb_free(&back);
    cmcr_overlay_free(&o);
    return 0;
}
