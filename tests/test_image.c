/* test_image.c - the CLIP image front end (src/media/image.h) against Pillow 9.4 and the
 * transformers float sequence, through the fixture of scripts/clip_ref_image.py
 * ($CMCR_FIXTURES/image/cases.txt: every colour type, depth, layout and size class, the
 * refusals, resize pairs, and the real photos of ../shared/data when present). */
#include "testutil.h"
#include "media/image.h"
#include "runtime/file.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE 224
static const float MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* ------------------------------------------------------------------ the case list */

typedef struct tcase {
    char kind[8], name[160], path[1024], extra[200];
    int w, h;
} tcase;

static tcase *cases;
static int ncases;
static char fixdir[1024];

/* Read cases.txt once; false when the fixture is absent. */
static bool load_cases(void)
{
    if (cases) return true;
    const char *f = getenv("CMCR_FIXTURES");
    if (!f) return false;
    snprintf(fixdir, sizeof fixdir, "%s/image", f);
    char p[1100];
    snprintf(p, sizeof p, "%s/cases.txt", fixdir);
    FILE *fp = fopen(p, "r");
    if (!fp) return false;
    char line[2048];
    int cap = 0;
    while (fgets(line, sizeof line, fp)) {
        if (ncases == cap) {
            cap = cap ? 2 * cap : 64;
            cases = realloc(cases, (size_t)cap * sizeof *cases);
            assert_non_null(cases);
        }
        tcase *c = &cases[ncases];
        memset(c, 0, sizeof *c);
        line[strcspn(line, "\n")] = 0;
        int got = 0;
        if (!strncmp(line, "ok ", 3) || !strncmp(line, "photo ", 6)) {
            got = sscanf(line, "%7s %159s %1023s %d %d", c->kind, c->name, c->path, &c->w, &c->h);
            assert_int_equal(got, 5);
        } else if (!strncmp(line, "resize ", 7)) {
            got = sscanf(line, "%7s %1023s %d %d %199s", c->kind, c->path, &c->w, &c->h, c->extra);
            assert_int_equal(got, 5);
        } else if (!strncmp(line, "bad ", 4)) {
            int off = 0;
            got = sscanf(line, "%7s %1023s %n", c->kind, c->path, &off);
            assert_int_equal(got, 2);
            snprintf(c->extra, sizeof c->extra, "%s", line + off); /* the needle may have spaces */
        } else if (!strncmp(line, "prefix ", 7)) {
            got = sscanf(line, "%7s %1023s %d %d", c->kind, c->path, &c->w, &c->h);
            assert_int_equal(got, 4);
        } else {
            fail_msg("cases.txt: unknown line '%s'", line);
        }
        if (c->path[0] != '/') { /* relative to the fixture (the photos are read in place) */
            char rel[sizeof c->path];
            memcpy(rel, c->path, sizeof rel);
            assert_true((size_t)snprintf(c->path, sizeof c->path, "%s/%s", fixdir, rel) < sizeof c->path);
        }
        ncases++;
    }
    fclose(fp);
    return ncases > 0;
}

static void need_cases(void)
{
    if (!load_cases()) tu_skip("fixture $CMCR_FIXTURES/image (scripts/clip_ref_image.py) is absent");
}

static unsigned char *slurp(const char *path, size_t *n)
{
    unsigned char *buf = NULL;
    assert_int_equal(file_read_all(path, 1u << 30, &buf, n), CMCR_OK);
    return buf;
}

static unsigned char *slurp_fix(const char *name, const char *suffix, size_t *n)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s%s", fixdir, name, suffix);
    return slurp(p, n);
}

/* Equal bytes, or a failure that says where they first differ. */
static void expect_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n, int width)
{
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            size_t px = i / 3;
            fail_msg("%s: byte %zu (x %zu, y %zu, channel %zu) is %u, Pillow has %u", what, i, px % (size_t)width,
                     px / (size_t)width, i % 3, got[i], want[i]);
        }
    }
}

/* ------------------------------------------------------------------ decode, crop, normalise */

/* One ok/photo case: the decode, the crop and the float tensor, each against the fixture. */
static void check_case(const tcase *c, double *max_diff)
{
    image_rgb im;
    cmcr_status st = image_decode_file(c->path, &im);
    if (st != CMCR_OK) fail_msg("%s: %s", c->name, cmcr_last_error());
    assert_int_equal(im.width, c->w);
    assert_int_equal(im.height, c->h);
    size_t n = 0;
    unsigned char *want = slurp_fix(c->name, ".rgb", &n);
    assert_int_equal(n, (size_t)c->w * c->h * 3);
    expect_bytes(c->name, im.pixels, want, n, c->w);
    free(want);

    uint8_t *crop = malloc(SIZE * SIZE * 3);
    assert_non_null(crop);
    st = image_clip_crop(&im, SIZE, c->name, crop);
    if (st != CMCR_OK) fail_msg("%s: %s", c->name, cmcr_last_error());
    want = slurp_fix(c->name, ".crop", &n);
    assert_int_equal(n, SIZE * SIZE * 3);
    expect_bytes(c->name, crop, want, n, SIZE);
    free(want);

    float *chw = malloc(3 * SIZE * SIZE * sizeof(float));
    assert_non_null(chw);
    image_to_chw(crop, SIZE, MEAN, STD, chw);
    char p[1400];
    snprintf(p, sizeof p, "%s/%s.chw.npy", fixdir, c->name);
    cmcr_tensors *ts = NULL;
    assert_int_equal(cmcr_tensors_load(p, CMCR_FORMAT_NPY, &ts), CMCR_OK);
    const cmcr_tensor *t = cmcr_tensors_at(ts, 0);
    assert_int_equal(t->dtype, CMCR_F32);
    assert_int_equal(t->nbytes, 3 * SIZE * SIZE * sizeof(float));
    const float *ref = t->data;
    for (size_t i = 0; i < 3 * SIZE * SIZE; i++) {
        double d = (double)chw[i] - ref[i];
        if (d < 0) d = -d;
        if (d > *max_diff) *max_diff = d;
    }
    /* bit for bit: the float sequence is transformers' */
    if (memcmp(chw, ref, t->nbytes) != 0) fail_msg("%s: the float tensor differs (max abs %g)", c->name, *max_diff);
    cmcr_tensors_free(ts);
    free(chw);
    free(crop);
    image_rgb_free(&im);
    assert_null(im.pixels);
}

static int run_kind(const char *kind)
{
    int n = 0;
    double max_diff = 0;
    for (int i = 0; i < ncases; i++) {
        if (strcmp(cases[i].kind, kind) != 0) continue;
        check_case(&cases[i], &max_diff);
        n++;
    }
    printf("%d %s cases byte-identical to Pillow; float CHW max abs difference %g\n", n, kind, max_diff);
    return n;
}

static void test_generated(void **state)
{
    (void)state;
    need_cases();
    assert_true(run_kind("ok") >= 40); /* every generated image of the fixture */
}

static void test_photos(void **state)
{
    (void)state;
    need_cases();
    if (run_kind("photo") == 0)
        tu_skip("the fixture has no photos (../shared/data/cmcr-assets was absent when it was made)");
}

/* ------------------------------------------------------------------ resize alone */

static void test_resize_pairs(void **state)
{
    (void)state;
    need_cases();
    int n = 0;
    for (int i = 0; i < ncases; i++) {
        const tcase *c = &cases[i];
        if (strcmp(c->kind, "resize") != 0) continue;
        image_rgb im, out;
        assert_int_equal(image_decode_file(c->path, &im), CMCR_OK);
        cmcr_status st = image_resize_bicubic(&im, c->w, c->h, c->path, &out);
        if (st != CMCR_OK) fail_msg("%s: %s", c->path, cmcr_last_error());
        assert_int_equal(out.width, c->w);
        assert_int_equal(out.height, c->h);
        size_t len = 0;
        unsigned char *want = slurp_fix(c->extra, "", &len);
        assert_int_equal(len, (size_t)c->w * c->h * 3);
        expect_bytes(c->extra, out.pixels, want, len, c->w);
        free(want);
        image_rgb_free(&out);
        image_rgb_free(&im);
        n++;
    }
    assert_true(n >= 5);
}

/* A pseudo-random w x h image (no fixture needed). */
static image_rgb noise_image(int w, int h, uint32_t seed)
{
    image_rgb im = {w, h, malloc((size_t)w * h * 3)};
    assert_non_null(im.pixels);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        seed = seed * 1664525u + 1013904223u;
        im.pixels[i] = (uint8_t)((seed >> 24) / 2 + (i / 3 % (size_t)w) * 7 % 128);
    }
    return im;
}

/* The crop window computed alone equals the whole resize, cropped, for shapes where each
 * pass is skipped or not, upscaled or not, and crops at odd offsets. */
static void test_crop_is_window_of_resize(void **state)
{
    (void)state;
    static const int shapes[][2] = {{37, 500}, {500, 37}, {300, 300}, {224, 225}, {225, 224}, {224, 224},
                                    {1, 700},  {700, 2},  {223, 400}, {999, 641}, {10, 11}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int w = shapes[s][0], h = shapes[s][1];
        image_rgb im = noise_image(w, h, (uint32_t)s + 1), full;
        int64_t shortest = w < h ? w : h, longest = w < h ? h : w;
        int nl = (int)((double)(SIZE * longest) / (double)shortest);
        int nw = w <= h ? SIZE : nl, nh = w <= h ? nl : SIZE;
        assert_int_equal(image_resize_bicubic(&im, nw, nh, "noise", &full), CMCR_OK);
        uint8_t *crop = malloc(SIZE * SIZE * 3);
        assert_non_null(crop);
        assert_int_equal(image_clip_crop(&im, SIZE, "noise", crop), CMCR_OK);
        int top = (nh - SIZE) / 2, left = (nw - SIZE) / 2;
        for (int y = 0; y < SIZE; y++)
            expect_bytes("window", crop + (size_t)y * SIZE * 3,
                         full.pixels + ((size_t)(top + y) * nw + left) * 3, SIZE * 3, SIZE);
        free(crop);
        image_rgb_free(&full);
        image_rgb_free(&im);
    }
}

/* 1 x 100000 would resize to 224 x 22,400,000 (15 GB): the crop computes 224 x 224 only.
 * A one-pixel-wide source makes every output row one colour (the horizontal weights of a
 * single tap normalise to exactly 1), and the column must vary down the rows. */
static void test_extreme_aspect(void **state)
{
    (void)state;
    image_rgb tall = noise_image(1, 100000, 7), wide = noise_image(100000, 1, 8);
    uint8_t *crop = malloc(SIZE * SIZE * 3);
    assert_non_null(crop);
    assert_int_equal(image_clip_crop(&tall, SIZE, "tall", crop), CMCR_OK);
    bool varies = false;
    for (int y = 0; y < SIZE; y++) {
        const uint8_t *row = crop + (size_t)y * SIZE * 3;
        for (int x = 1; x < SIZE; x++) assert_memory_equal(row, row + 3 * x, 3);
        if (y && memcmp(row, row - SIZE * 3, 3) != 0) varies = true;
    }
    assert_true(varies);
    assert_int_equal(image_clip_crop(&wide, SIZE, "wide", crop), CMCR_OK);
    for (int y = 1; y < SIZE; y++) assert_memory_equal(crop, crop + (size_t)y * SIZE * 3, SIZE * 3);
    free(crop);
    image_rgb_free(&tall);
    image_rgb_free(&wide);
}

/* ------------------------------------------------------------------ refusals */

static void expect_refusal(const char *label, cmcr_status st, const image_rgb *im, const char *name,
                           const char *needle)
{
    const char *msg = cmcr_last_error();
    if (st == CMCR_OK) fail_msg("%s: accepted, expected a refusal containing '%s'", label, needle);
    assert_null(im->pixels);
    assert_int_equal(im->width, 0);
    if (!strstr(msg, name)) fail_msg("%s: message '%s' does not name the file", label, msg);
    if (!strstr(msg, needle)) fail_msg("%s: message '%s' does not contain '%s'", label, msg, needle);
    assert_null(strchr(msg, '\n'));
}

static void test_refusals(void **state)
{
    (void)state;
    need_cases();
    int n = 0;
    for (int i = 0; i < ncases; i++) {
        const tcase *c = &cases[i];
        if (strcmp(c->kind, "bad") != 0) continue;
        image_rgb im = {1, 1, NULL};
        cmcr_status st = image_decode_file(c->path, &im);
        expect_refusal(c->path, st, &im, c->path, c->extra);
        printf("MSG %s\n", cmcr_last_error());
        size_t len = 0;
        unsigned char *buf = slurp(c->path, &len);
        st = image_decode_memory(buf, len, "mem.img", &im);
        expect_refusal(c->path, st, &im, "mem.img", c->extra);
        free(buf);
        n++;
    }
    assert_true(n >= 10);
}

/* Prefixes of valid files, each accepted or refused as Pillow does (the fixture recorded
 * Pillow's verdict), then hostile names and bad arguments. */
static void test_prefixes_and_arguments(void **state)
{
    (void)state;
    need_cases();
    int n = 0, accepted = 0;
    for (int i = 0; i < ncases; i++) {
        const tcase *c = &cases[i];
        if (strcmp(c->kind, "prefix") != 0) continue;
        size_t len = 0;
        unsigned char *buf = slurp(c->path, &len);
        assert_true((size_t)c->w <= len);
        image_rgb im;
        cmcr_status st = image_decode_memory(buf, (size_t)c->w, "cut", &im);
        if ((st == CMCR_OK) != (c->h == 1))
            fail_msg("%s cut to %d of %zu bytes: %s, Pillow %s it", c->path, c->w, len,
                     st == CMCR_OK ? "accepted" : cmcr_last_error(), c->h ? "accepts" : "refuses");
        if (st != CMCR_OK) assert_null(im.pixels);
        accepted += st == CMCR_OK;
        image_rgb_free(&im);
        free(buf);
        n++;
    }
    assert_true(n >= 100);
    assert_true(accepted > 0 && accepted < n);
    image_rgb im;
    assert_int_not_equal(image_decode_memory("\xff\xd8\xff", 3, "a\nb\x1b[2J", &im), CMCR_OK);
    assert_null(strchr(cmcr_last_error(), '\n'));
    assert_null(strchr(cmcr_last_error(), '\x1b'));
    assert_int_equal(image_decode_file("/nonexistent/x.jpg", &im), CMCR_EIO);
    assert_non_null(strstr(cmcr_last_error(), "/nonexistent/x.jpg"));

    image_rgb small = noise_image(5, 4, 3), out;
    uint8_t crop[3];
    assert_int_equal(image_clip_crop(&small, 0, "small", crop), CMCR_EINVAL);
    assert_int_equal(image_resize_bicubic(&small, 0, 4, "small", &out), CMCR_EINVAL);
    assert_null(out.pixels);
    assert_int_equal(image_resize_bicubic(&small, 4, -1, "small", &out), CMCR_EINVAL);
    /* A shrink Pillow's int arithmetic cannot hold is refused before any pixel is read (the
     * claimed width is far past the buffer). */
    image_rgb huge = {INT32_MAX, 1, small.pixels};
    assert_int_equal(image_resize_bicubic(&huge, 1, 1, "huge", &out), CMCR_ENOMEM);
    assert_non_null(strstr(cmcr_last_error(), "huge"));
    assert_null(out.pixels);
    image_rgb empty = {0, 0, NULL};
    assert_int_equal(image_clip_crop(&empty, 8, "empty", crop), CMCR_EINVAL);
    image_rgb_free(&small);
    image_rgb_free(NULL);
}

/* ------------------------------------------------------------------ threads */

typedef struct job {
    int first, n, rounds;
    int mismatches;
} job;

static void *thread_main(void *arg)
{
    job *j = arg;
    uint8_t *crop = malloc(SIZE * SIZE * 3);
    for (int r = 0; r < j->rounds && crop; r++) {
        for (int i = 0; i < ncases; i++) {
            const tcase *c = &cases[(i + j->first) % ncases];
            if (strcmp(c->kind, "ok") != 0 && strcmp(c->kind, "bad") != 0) continue;
            image_rgb im;
            cmcr_status st = image_decode_file(c->path, &im);
            if (c->kind[0] == 'b') {
                j->mismatches += st == CMCR_OK || !strstr(cmcr_last_error(), c->path);
                continue;
            }
            if (st != CMCR_OK || image_clip_crop(&im, SIZE, c->name, crop) != CMCR_OK) {
                j->mismatches++;
            } else {
                char p[1400];
                snprintf(p, sizeof p, "%s/%s.crop", fixdir, c->name);
                unsigned char *want = NULL;
                size_t n = 0;
                if (file_read_all(p, 1u << 20, &want, &n) != CMCR_OK || n != SIZE * SIZE * 3 ||
                    memcmp(want, crop, n) != 0)
                    j->mismatches++;
                free(want);
            }
            image_rgb_free(&im);
            j->n++;
        }
    }
    free(crop);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    need_cases();
    enum { T = 4 };
    pthread_t th[T];
    job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (job){.first = t * 7, .rounds = 2};
        assert_int_equal(pthread_create(&th[t], NULL, thread_main, &jobs[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(jobs[t].mismatches, 0);
        assert_true(jobs[t].n > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated),
        cmocka_unit_test(test_photos),
        cmocka_unit_test(test_resize_pairs),
        cmocka_unit_test(test_crop_is_window_of_resize),
        cmocka_unit_test(test_extreme_aspect),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_prefixes_and_arguments),
        cmocka_unit_test(test_threads),
    };
    return tu_run_group(tests);
}
