/* test_localise.c - zero-shot localisation's pieces (src/search/): hand-made cases whose
 * answers are worked out in the comments (the box rule, normalisation, cIoU and AUC, the crop
 * window of square, wide and tall images, the overlay's geometry and PNG), and the fixture of
 * scripts/localise_reference.py ($CMCR_FIXTURES/localise/cases.txt): PyTorch's bilinear
 * upsampling on several sizes up and down, LVS's cIoU and AUC written out from its code, and
 * the crop geometry in exact fractions. */
#include "testutil.h"
#include "media/image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_box(cmcr_box b, int x0, int y0, int x1, int y1)
{
    if (b.x0 != x0 || b.y0 != y0 || b.x1 != x1 || b.y1 != y1)
        fail_msg("box [%d %d %d %d], expected [%d %d %d %d]", b.x0, b.y0, b.x1, b.y1, x0, y0, x1, y1);
}

/* ------------------------------------------------------------------ map, normalisation */

static void test_map_is_dot(void **state)
{
    (void)state;
    float q[3] = {1, 0, 0.5f}, p[2 * 2 * 3] = {1, 2, 3, 0, 0, 0, -1, 1, 2, 4, 4, 4};
    float m[4];
    cmcr_localise_map(q, p, 2, 2, 3, m);
    float want[4] = {2.5f, 0, 0, 6};
    for (int i = 0; i < 4; i++) assert_float_equal(m[i], want[i], 1e-6);
}

static void test_normalize(void **state)
{
    (void)state;
    float x[4] = {2, 4, 3, 6};
    cmcr_normalize_minmax(x, 4);
    float want[4] = {0, 0.5f, 0.25f, 1};
    for (int i = 0; i < 4; i++) assert_float_equal(x[i], want[i], 0);
    float c[3] = {0.7f, 0.7f, 0.7f}; /* constant: all 0 (documented) */
    cmcr_normalize_minmax(c, 3);
    for (int i = 0; i < 3; i++) assert_float_equal(c[i], 0, 0);
    float one = 5;
    cmcr_normalize_minmax(&one, 1);
    assert_float_equal(one, 0, 0);
}

/* ------------------------------------------------------------------ upsampling by hand */

static void test_upsample_by_hand(void **state)
{
    (void)state;
    /* 1 x 2 -> 1 x 4: scale 0.5, sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (the last
     * column repeated): 1, 1.25, 1.75, 2 */
    float in[2] = {1, 2}, out[4];
    assert_int_equal(cmcr_upsample_bilinear(in, 1, 2, 1, 4, out), CMCR_OK);
    float want[4] = {1, 1.25f, 1.75f, 2};
    for (int i = 0; i < 4; i++) assert_float_equal(out[i], want[i], 1e-7);
    /* the same size is the identity */
    float id[6] = {1, 2, 3, 4, 5, 6}, same[6];
    assert_int_equal(cmcr_upsample_bilinear(id, 2, 3, 2, 3, same), CMCR_OK);
    for (int i = 0; i < 6; i++) assert_float_equal(same[i], id[i], 0);
    /* a constant stays constant */
    float k[4] = {0.25f, 0.25f, 0.25f, 0.25f}, big[25];
    assert_int_equal(cmcr_upsample_bilinear(k, 2, 2, 5, 5, big), CMCR_OK);
    for (int i = 0; i < 25; i++) assert_float_equal(big[i], 0.25f, 0);
    assert_int_equal(cmcr_upsample_bilinear(k, 2, 2, 0, 5, big), CMCR_EINVAL);
    printf("MSG %s\n", cmcr_last_error());
}

/* ------------------------------------------------------------------ the box rule */

static void test_box_rule(void **state)
{
    (void)state;
    cmcr_box b;
    int found;
    /* two regions: 3 pixels (rows 0-2 of column 0) and 4 pixels (the 2 x 2 at rows 2-3,
     * columns 3-4); the larger wins */
    const float a[5 * 5] = {
        1, 0, 0, 0, 0, /* */
        1, 0, 0, 0, 0, /* */
        1, 0, 0, 1, 1, /* */
        0, 0, 0, 1, 1, /* */
        0, 0, 0, 0, 0,
    };
    assert_int_equal(cmcr_localise_box(a, 5, 5, 0.5f, &b, &found), CMCR_OK);
    assert_int_equal(found, 1);
    assert_box(b, 3, 2, 5, 4);
    /* diagonal neighbours are not connected: four single pixels, equal size and peak, so the
     * first in raster order, (1, 0) */
    const float d[3 * 3] = {0, 1, 0, 1, 0, 1, 0, 1, 0};
    assert_int_equal(cmcr_localise_box(d, 3, 3, 0.5f, &b, &found), CMCR_OK);
    assert_box(b, 1, 0, 2, 1);
    /* equal sizes: the higher peak wins, though it comes later */
    const float p[2 * 5] = {0.6f, 0.6f, 0, 0.9f, 0.7f, 0, 0, 0, 0, 0};
    assert_int_equal(cmcr_localise_box(p, 2, 5, 0.5f, &b, &found), CMCR_OK);
    assert_box(b, 3, 0, 5, 1);
    /* the threshold is inclusive; above every value: no box */
    assert_int_equal(cmcr_localise_box(p, 2, 5, 0.9f, &b, &found), CMCR_OK);
    assert_int_equal(found, 1);
    assert_box(b, 3, 0, 4, 1);
    assert_int_equal(cmcr_localise_box(p, 2, 5, 0.95f, &b, &found), CMCR_OK);
    assert_int_equal(found, 0);
    assert_box(b, 0, 0, 0, 0);
    /* threshold 0: the whole map; a U shape's box spans its arms */
    assert_int_equal(cmcr_localise_box(p, 2, 5, 0.0f, &b, &found), CMCR_OK);
    assert_box(b, 0, 0, 5, 2);
    const float u[3 * 3] = {1, 0, 1, 1, 0, 1, 1, 1, 1};
    assert_int_equal(cmcr_localise_box(u, 3, 3, 0.5f, &b, &found), CMCR_OK);
    assert_box(b, 0, 0, 3, 3);
}

/* ------------------------------------------------------------------ cIoU and AUC by hand */

/* A 4 x 4 heatmap: the left half (columns 0-1) 1, the right half 0. Normalised the same;
 * the median sorted[8] is 1, so nothing is above it and the pixels at the maximum (the left
 * half, 8) are the prediction. */
static const float HALF[16] = {1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0};

static double ciou_of(const float *heat, int h, int w, const cmcr_box *boxes, int n)
{
    double c = -1;
    assert_int_equal(cmcr_localisation_ciou(heat, h, w, boxes, n, &c), CMCR_OK);
    return c;
}

static void test_ciou_by_hand(void **state)
{
    (void)state;
    cmcr_box left = {0, 0, 2, 4}, right = {2, 0, 4, 4}, quarter = {0, 0, 2, 2}, three = {0, 0, 3, 4};
    assert_float_equal(ciou_of(HALF, 4, 4, &left, 1), 1.0, 0);    /* perfect overlap */
    assert_float_equal(ciou_of(HALF, 4, 4, &right, 1), 0.0, 0);   /* disjoint: 0 / (8 + 8) */
    assert_float_equal(ciou_of(HALF, 4, 4, &quarter, 1), 0.5, 0); /* 4 / (4 + 4) */
    assert_float_equal(ciou_of(HALF, 4, 4, &three, 1), 8.0 / 12.0, 0);
    /* a box past the border is clipped: [2, 0, 10, 9) is the right half */
    cmcr_box past = {2, 0, 10, 9};
    assert_float_equal(ciou_of(HALF, 4, 4, &past, 1), 0.0, 0);
    cmcr_box past_left = {-3, -1, 2, 2}; /* the top-left quarter */
    assert_float_equal(ciou_of(HALF, 4, 4, &past_left, 1), 0.5, 0);
    /* several boxes: the union, overlaps counted once: the quarter (rows 0-1, columns 0-1)
     * and rows 1-2 of columns 0-2 make 4 + 6 - 2 = 8 gt pixels, 6 of them predicted (rows
     * 0-2 of the left half); the 2 predicted pixels of row 3 are outside: 6 / (8 + 2) */
    cmcr_box two[2] = {{0, 0, 2, 2}, {0, 1, 3, 3}};
    assert_float_equal(ciou_of(HALF, 4, 4, two, 2), 0.6, 0);
    /* a constant heatmap predicts nothing */
    float flat[16];
    for (int i = 0; i < 16; i++) flat[i] = 0.3f;
    assert_float_equal(ciou_of(flat, 4, 4, &left, 1), 0.0, 0);
    /* a ramp 1..16: the median sorted[8] is 9; above it 10..16 (7 pixels, the last 7 in raster
     * order: row 2's columns 1-3 and row 3). gt rows 2-3 (8 pixels): 7 / (8 + 0) */
    float ramp[16];
    for (int i = 0; i < 16; i++) ramp[i] = (float)(i + 1);
    cmcr_box bottom = {0, 2, 4, 4};
    assert_float_equal(ciou_of(ramp, 4, 4, &bottom, 1), 7.0 / 8.0, 0);
    /* an odd count: 3 x 3 ramp, median sorted[4] = 5, above it 6..9 (4 pixels) = gt */
    cmcr_box last4 = {2, 1, 3, 2}, row3 = {0, 2, 3, 3};
    cmcr_box b4[2] = {last4, row3};
    assert_float_equal(ciou_of(ramp, 3, 3, b4, 2), 1.0, 0);
    /* refusals: no gt pixel in the frame, a NaN */
    double c;
    cmcr_box outside = {5, 5, 9, 9};
    assert_int_equal(cmcr_localisation_ciou(HALF, 4, 4, &outside, 1, &c), CMCR_EINVAL);
    printf("MSG %s\n", cmcr_last_error());
    assert_int_equal(cmcr_localisation_ciou(HALF, 4, 4, &left, 0, &c), CMCR_EINVAL);
    ramp[3] = NAN;
    assert_int_equal(cmcr_localisation_ciou(ramp, 4, 4, &left, 1, &c), CMCR_EVALUE);
    printf("MSG %s\n", cmcr_last_error());
}

static void test_auc_by_hand(void **state)
{
    (void)state;
    cmcr_localisation_metrics m;
    double ones[3] = {1, 1, 1}, zeros[2] = {0, 0}, halves[4] = {0.5, 0.5, 0.5, 0.5};
    /* every success rate 1: the area is the x range, 0.05 * 20 = 1 */
    assert_int_equal(cmcr_localisation_summary(ones, 3, &m), CMCR_OK);
    assert_float_equal(m.auc, 1.0, 1e-12);
    assert_float_equal(m.ciou50, 1.0, 0);
    /* cIoU 0: success 1 at threshold 0 only, a triangle of 0.05 / 2 */
    assert_int_equal(cmcr_localisation_summary(zeros, 2, &m), CMCR_OK);
    assert_float_equal(m.auc, 0.025, 1e-12);
    assert_float_equal(m.ciou50, 0.0, 0);
    /* cIoU 0.5: success 1 up to 0.5 (0.05 * 10 is 0.5 in double), then 0: 0.5 + 0.025 */
    assert_int_equal(cmcr_localisation_summary(halves, 4, &m), CMCR_OK);
    assert_float_equal(m.auc, 0.525, 1e-12);
    assert_float_equal(m.ciou50, 1.0, 0);
    assert_float_equal(m.success[10], 1.0, 0);
    assert_float_equal(m.success[11], 0.0, 0);
    /* half the samples 1, half 0: success 1 at 0, then 0.5: 0.025 + 0.025 + 19 * 0.025 */
    double mixed[2] = {0, 1};
    assert_int_equal(cmcr_localisation_summary(mixed, 2, &m), CMCR_OK);
    assert_float_equal(m.auc, 0.0375 + 19 * 0.025, 1e-12);
    assert_float_equal(m.ciou50, 0.5, 0);
    /* Python's thresholds: 0.05 * 3 is 0.15000000000000002, so cIoU 0.15 is below it */
    double p15[1] = {0.15};
    assert_int_equal(cmcr_localisation_summary(p15, 1, &m), CMCR_OK);
    assert_float_equal(m.success[2], 1.0, 0);
    assert_float_equal(m.success[3], 0.0, 0);
    assert_int_equal(cmcr_localisation_summary(p15, 0, &m), CMCR_EINVAL);
    double bad[1] = {1.5};
    assert_int_equal(cmcr_localisation_summary(bad, 1, &m), CMCR_EINVAL);
}

/* ------------------------------------------------------------------ the crop seen from the image */

static void test_crop_window(void **state)
{
    (void)state;
    cmcr_box w;
    /* square: all of it, whatever its size */
    assert_int_equal(cmcr_crop_window(224, 224, 224, &w), CMCR_OK);
    assert_box(w, 0, 0, 224, 224);
    assert_int_equal(cmcr_crop_window(1000, 1000, 224, &w), CMCR_OK);
    assert_box(w, 0, 0, 1000, 1000);
    /* 640 x 480: resized to 298 x 224 (int(224 * 640 / 480) = 298), left (298 - 224) / 2 = 37;
     * the crop covers x in [37 * 640 / 298, 261 * 640 / 298) = [79.46, 560.54): the pixels
     * whose centres j + 0.5 lie there are 79 .. 560 */
    assert_int_equal(cmcr_crop_window(640, 480, 224, &w), CMCR_OK);
    assert_box(w, 79, 0, 561, 480);
    assert_int_equal(cmcr_crop_window(480, 640, 224, &w), CMCR_OK); /* tall: the same, turned */
    assert_box(w, 0, 79, 480, 561);
    /* 10 x 5, enlarged to 448 x 224, left 112: [2.5, 7.5) holds the centres of 2 .. 6 */
    assert_int_equal(cmcr_crop_window(10, 5, 224, &w), CMCR_OK);
    assert_box(w, 2, 0, 7, 5);
    assert_int_equal(cmcr_crop_window(0, 5, 224, &w), CMCR_EINVAL);
    assert_int_equal(cmcr_crop_window(10, 5, 0, &w), CMCR_EINVAL);
}

static void test_crop_box(void **state)
{
    (void)state;
    cmcr_box b;
    /* 640 x 480 (298 x 224, left 37): the whole image is the whole frame */
    double all[4] = {0, 0, 640, 480};
    assert_int_equal(cmcr_crop_box(640, 480, 224, all, &b), CMCR_OK);
    assert_box(b, 0, 0, 224, 224);
    /* x: floor(100 * 298 / 640) - 37 = 46 - 37 = 9, floor(200 * 298 / 640) - 37 = 93 - 37 = 56;
     * y: floor(50 * 224 / 480) = 23, floor(100 * 224 / 480) = 46 */
    double e[4] = {100, 50, 200, 100};
    assert_int_equal(cmcr_crop_box(640, 480, 224, e, &b), CMCR_OK);
    assert_box(b, 9, 23, 56, 46);
    /* left of the crop: empty after clipping (the caller decides) */
    double lefto[4] = {0, 0, 50, 100};
    assert_int_equal(cmcr_crop_box(640, 480, 224, lefto, &b), CMCR_OK);
    assert_box(b, 0, 0, 0, 46);
    double bad[4][4] = {{10, 0, 10, 5}, {0, 0, 641, 5}, {-1, 0, 5, 5}, {0, NAN, 5, 5}};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cmcr_crop_box(640, 480, 224, bad[i], &b), CMCR_EINVAL);
        printf("MSG %s\n", cmcr_last_error());
    }
}

/* ------------------------------------------------------------------ the overlay */

/* A w x h image of a smooth pattern, as PNG bytes (malloc'd) and as pixels. */
static unsigned char *pattern_png(int32_t w, int32_t h, image_rgb *im, size_t *len)
{
    im->width = w;
    im->height = h;
    im->pixels = malloc((size_t)w * h * 3);
    assert_non_null(im->pixels);
    for (int32_t y = 0; y < h; y++)
        for (int32_t x = 0; x < w; x++) {
            uint8_t *p = im->pixels + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
            p[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
            p[2] = 90;
        }
    unsigned char *png = NULL;
    assert_int_equal(image_encode_png(im, "pattern", &png, len), CMCR_OK);
    return png;
}

static void test_png_round_trip(void **state)
{
    (void)state;
    image_rgb im, back = {0};
    size_t len;
    unsigned char *png = pattern_png(37, 11, &im, &len);
    assert_true(len > 8 && !memcmp(png, "\x89PNG", 4));
    assert_int_equal(image_decode_memory(png, len, "round trip", &back), CMCR_OK);
    assert_int_equal(back.width, 37);
    assert_int_equal(back.height, 11);
    assert_memory_equal(back.pixels, im.pixels, (size_t)37 * 11 * 3);
    image_rgb empty = {0};
    unsigned char *none = NULL;
    assert_int_equal(image_encode_png(&empty, "empty", &none, &len), CMCR_EINVAL);
    assert_null(none);
    free(back.pixels);
    free(im.pixels);
    free(png);
}

/* The overlay of a 7 x 7 map hot at cell (row 2, column 5) on a w x h pattern: the size,
 * the window, the box inside the window around that cell, pixels outside the window
 * untouched, most pixels inside changed. */
static void check_overlay(int32_t w, int32_t h, cmcr_box want_window)
{
    image_rgb im;
    size_t len;
    unsigned char *png = pattern_png(w, h, &im, &len);
    float map[49] = {0};
    map[2 * 7 + 5] = 1;
    cmcr_overlay o;
    assert_int_equal(cmcr_localise_overlay(png, len, "pattern.png", map, 7, 7, NULL, &o), CMCR_OK);
    assert_int_equal(o.width, w);
    assert_int_equal(o.height, h);
    assert_int_equal(o.png_width, w);
    assert_int_equal(o.png_height, h);
    assert_box(o.window, want_window.x0, want_window.y0, want_window.x1, want_window.y1);
    assert_int_equal(o.has_box, 1);
    /* the cell's centre in the window: ((5 + 0.5) / 7, (2 + 0.5) / 7) of it */
    double cx = o.window.x0 + (o.window.x1 - o.window.x0) * 5.5 / 7, cy = o.window.y0 + (o.window.y1 - o.window.y0) * 2.5 / 7;
    assert_true(o.box.x0 >= o.window.x0 && o.box.x1 <= o.window.x1 && o.box.y0 >= o.window.y0 && o.box.y1 <= o.window.y1);
    assert_true(o.box.x0 < cx && cx < o.box.x1 && o.box.y0 < cy && cy < o.box.y1);
    image_rgb out = {0};
    assert_int_equal(image_decode_memory(o.png, o.png_len, "overlay", &out), CMCR_OK);
    int64_t inside = 0, changed = 0;
    for (int32_t y = 0; y < h; y++)
        for (int32_t x = 0; x < w; x++) {
            size_t i = ((size_t)y * w + x) * 3;
            bool in = x >= o.window.x0 && x < o.window.x1 && y >= o.window.y0 && y < o.window.y1;
            bool same = !memcmp(out.pixels + i, im.pixels + i, 3);
            if (!in && !same) fail_msg("pixel (%d, %d) outside the window changed", x, y);
            inside += in;
            changed += in && !same;
        }
    assert_true(changed > inside * 9 / 10);
    free(out.pixels);
    cmcr_overlay_free(&o);
    assert_null(o.png);
    /* max_side: the longer side scaled to it, the other in proportion; the box is unchanged */
    cmcr_overlay_params p = cmcr_overlay_default_params();
    p.max_side = 100;
    cmcr_overlay s;
    assert_int_equal(cmcr_localise_overlay(png, len, "pattern.png", map, 7, 7, &p, &s), CMCR_OK);
    int32_t longer = w > h ? w : h;
    if (longer > 100) {
        assert_int_equal(w > h ? s.png_width : s.png_height, 100);
        assert_int_equal(w > h ? s.png_height : s.png_width, (int32_t)lround((double)(w > h ? h : w) * 100 / longer));
    } else {
        assert_int_equal(s.png_width, w);
    }
    cmcr_overlay again;
    assert_int_equal(cmcr_localise_overlay(png, len, "pattern.png", map, 7, 7, NULL, &again), CMCR_OK);
    assert_box(s.box, again.box.x0, again.box.y0, again.box.x1, again.box.y1);
    assert_true(image_decode_memory(s.png, s.png_len, "small", &out) == CMCR_OK);
    assert_int_equal(out.width, s.png_width);
    free(out.pixels);
    cmcr_overlay_free(&s);
    cmcr_overlay_free(&again);
    free(png);
    free(im.pixels);
}

static void test_overlay_geometry(void **state)
{
    (void)state;
    check_overlay(224, 224, (cmcr_box){0, 0, 224, 224});
    check_overlay(640, 480, (cmcr_box){79, 0, 561, 480});
    check_overlay(480, 640, (cmcr_box){0, 79, 480, 561});
    check_overlay(60, 90, (cmcr_box){0, 15, 60, 75}); /* small: enlarged to 224 x 336, top 56 */
}

static void test_overlay_refusals(void **state)
{
    (void)state;
    image_rgb im;
    size_t len;
    unsigned char *png = pattern_png(20, 20, &im, &len);
    float map[49] = {0};
    cmcr_overlay o;
    cmcr_overlay_params p = cmcr_overlay_default_params();
    p.threshold = 1.5;
    assert_int_equal(cmcr_localise_overlay(png, len, "a.png", map, 7, 7, &p, &o), CMCR_EINVAL);
    printf("MSG %s\n", cmcr_last_error());
    assert_null(o.png);
    p = cmcr_overlay_default_params();
    p.alpha = -0.1;
    assert_int_equal(cmcr_localise_overlay(png, len, "a.png", map, 7, 7, &p, &o), CMCR_EINVAL);
    map[3] = NAN;
    assert_int_equal(cmcr_localise_overlay(png, len, "a.png", map, 7, 7, NULL, &o), CMCR_EVALUE);
    map[3] = 0;
    assert_int_equal(cmcr_localise_overlay(png, len / 2, "cut.png", map, 7, 7, NULL, &o), CMCR_EFORMAT);
    printf("MSG %s\n", cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), "cut.png"));
    /* a constant map: nothing stands out, so no box at threshold 0.5; the window is still coloured */
    assert_int_equal(cmcr_localise_overlay(png, len, "a.png", map, 7, 7, NULL, &o), CMCR_OK);
    assert_int_equal(o.has_box, 0);
    assert_non_null(o.png);
    cmcr_overlay_free(&o);
    free(png);
    free(im.pixels);
}

/* ------------------------------------------------------------------ against the fixture */

static char *fixture_dir(void)
{
    char *cases = tu_fixture("localise", "localise_reference.py", "cases.txt");
    char *slash = strrchr(cases, '/');
    *slash = 0;
    return cases;
}

static FILE *open_cases(char **dir)
{
    *dir = fixture_dir();
    char p[4096];
    snprintf(p, sizeof p, "%s/cases.txt", *dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    return f;
}

static float *load_at(const char *dir, const char *name, int64_t *n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return tu_load_npy(p, n, NULL);
}

static void test_upsample_vs_torch(void **state)
{
    (void)state;
    char *dir;
    FILE *f = open_cases(&dir);
    char line[8192];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        int ih, iw, oh, ow;
        char in[256], want[256];
        if (sscanf(line, "up %d %d %d %d %255s %255s", &ih, &iw, &oh, &ow, in, want) != 6) continue;
        int64_t ni, nw;
        float *x = load_at(dir, in, &ni), *y = load_at(dir, want, &nw);
        assert_int_equal(ni, (int64_t)ih * iw);
        assert_int_equal(nw, (int64_t)oh * ow);
        float *got = malloc((size_t)nw * sizeof(float));
        assert_int_equal(cmcr_upsample_bilinear(x, ih, iw, oh, ow, got), CMCR_OK);
        double d = tu_max_abs_diff(got, y, nw);
        printf("upsample %dx%d -> %dx%d: max abs difference from torch %.3g\n", ih, iw, oh, ow, d);
        assert_true(d <= 1e-6);
        free(x);
        free(y);
        free(got);
        checked++;
    }
    fclose(f);
    free(dir);
    assert_true(checked >= 8);
}

static void test_ciou_vs_lvs(void **state)
{
    (void)state;
    char *dir;
    FILE *f = open_cases(&dir);
    char line[8192];
    double cious[64];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char heat[256];
        double want;
        int nb, off;
        if (sscanf(line, "ciou %255s %lf %d%n", heat, &want, &nb, &off) == 3) {
            cmcr_box boxes[8];
            assert_true(nb >= 1 && nb <= 8);
            const char *s = line + off;
            for (int b = 0; b < nb; b++) {
                int used;
                assert_int_equal(sscanf(s, "%d %d %d %d%n", &boxes[b].x0, &boxes[b].y0, &boxes[b].x1, &boxes[b].y1,
                                        &used),
                                 4);
                s += used;
            }
            int64_t cnt;
            float *h = load_at(dir, heat, &cnt);
            assert_int_equal(cnt, 224 * 224);
            double got = ciou_of(h, 224, 224, boxes, nb);
            if (got != want) fail_msg("%s: cIoU %.17g, LVS %.17g", heat, got, want);
            cious[n++] = got;
            free(h);
        }
        int count;
        double w50, wauc;
        if (sscanf(line, "summary %d %lf %lf", &count, &w50, &wauc) == 3) {
            assert_int_equal(count, n);
            cmcr_localisation_metrics m;
            assert_int_equal(cmcr_localisation_summary(cious, n, &m), CMCR_OK);
            printf("%d heatmaps: cIoU equal to LVS's; cIoU@0.5 %.6f (LVS %.6f), AUC %.17g (LVS %.17g)\n", n, m.ciou50,
                   w50, m.auc, wauc);
            assert_float_equal(m.ciou50, w50, 0);
            assert_float_equal(m.auc, wauc, 1e-12);
        }
    }
    fclose(f);
    free(dir);
    assert_true(n >= 20);
}

static void test_geometry_vs_fractions(void **state)
{
    (void)state;
    char *dir;
    FILE *f = open_cases(&dir);
    char line[8192];
    int windows = 0, boxes = 0;
    while (fgets(line, sizeof line, f)) {
        int w, h, s;
        cmcr_box want, got;
        double e[4];
        if (sscanf(line, "window %d %d %d %d %d %d %d", &w, &h, &s, &want.x0, &want.y0, &want.x1, &want.y1) == 7) {
            assert_int_equal(cmcr_crop_window(w, h, s, &got), CMCR_OK);
            assert_box(got, want.x0, want.y0, want.x1, want.y1);
            windows++;
        }
        if (sscanf(line, "cropbox %d %d %d %lf %lf %lf %lf %d %d %d %d", &w, &h, &s, &e[0], &e[1], &e[2], &e[3],
                   &want.x0, &want.y0, &want.x1, &want.y1) == 11) {
            assert_int_equal(cmcr_crop_box(w, h, s, e, &got), CMCR_OK);
            assert_box(got, want.x0, want.y0, want.x1, want.y1);
            boxes++;
        }
    }
    fclose(f);
    free(dir);
    printf("%d crop windows and %d boxes in the crop frame as the reference computes them\n", windows, boxes);
    assert_true(windows >= 10 && boxes >= 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_is_dot),        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_upsample_by_hand),  cmocka_unit_test(test_box_rule),
        cmocka_unit_test(test_ciou_by_hand),      cmocka_unit_test(test_auc_by_hand),
        cmocka_unit_test(test_crop_window),       cmocka_unit_test(test_crop_box),
        cmocka_unit_test(test_png_round_trip),    cmocka_unit_test(test_overlay_geometry),
        cmocka_unit_test(test_overlay_refusals),  cmocka_unit_test(test_upsample_vs_torch),
        cmocka_unit_test(test_ciou_vs_lvs),       cmocka_unit_test(test_geometry_vs_fractions),
    };
    return tu_run_group(tests);
}
