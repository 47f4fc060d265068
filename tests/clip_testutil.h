/* clip_testutil.h - what test_clip.c and test_clip_full.c share: the fixture's files
 * (CLIP_FIXTURE names it: clip_small or clip_full, made by scripts/clip_reference.py), the
 * reference inputs and outputs, and the comparison of both towers with them. */
#ifndef CMCR_CLIP_TESTUTIL_H
#define CMCR_CLIP_TESTUTIL_H
#include "testutil.h"
#include "encoders/clip.h"
#include "runtime/vmath.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

/* $CMCR_FIXTURES/CLIP_FIXTURE/rel, malloc'd; skips the test when the fixture was not made. */
static inline char *fx(const char *rel)
{
    return tu_fixture(CLIP_FIXTURE, "scripts/clip_reference.py", rel);
}

/* An .npy array of the fixture: its data (malloc'd, float32 or int32 as stored), numel, rows. */
static inline void *load_npy(const char *rel, int64_t *numel, int64_t *rows)
{
    char *p = fx(rel);
    void *d = tu_load_npy(p, numel, rows);
    free(p);
    return d;
}

/* Max |a - b| over n, raw and after L2-normalising rows of width cols. */
static inline double max_diff(const float *a, const float *b, int64_t n, int64_t cols, double *normed)
{
    double m = 0, mn = 0;
    float *ra = malloc(sizeof(float) * (size_t)cols), *rb = malloc(sizeof(float) * (size_t)cols);
    assert_true(ra && rb);
    for (int64_t r = 0; r < n / cols; r++) {
        vm_normalize_row(a + r * cols, ra, cols);
        vm_normalize_row(b + r * cols, rb, cols);
        for (int64_t j = 0; j < cols; j++) {
            double d = fabs((double)a[r * cols + j] - b[r * cols + j]), dn = fabs((double)ra[j] - rb[j]);
            m = d > m || isnan(d) ? d : m;
            mn = dn > mn || isnan(dn) ? dn : mn;
        }
    }
    free(ra);
    free(rb);
    *normed = mn;
    return m;
}

typedef struct refs {
    float *pixels, *img, *patch, *txt;
    int32_t *ids;
    int64_t n_img, n_txt;
} refs;

static inline refs load_refs(const char *model, const char *ref)
{
    refs r;
    int64_t k;
    char p[256];
    snprintf(p, sizeof p, "%s/pixels.npy", model);
    r.pixels = load_npy(p, &k, &r.n_img);
    snprintf(p, sizeof p, "%s/ids.npy", model);
    r.ids = load_npy(p, &k, &r.n_txt);
    snprintf(p, sizeof p, "%s/%s/image_emb.npy", model, ref);
    r.img = load_npy(p, &k, NULL);
    snprintf(p, sizeof p, "%s/%s/patch_emb.npy", model, ref);
    r.patch = load_npy(p, &k, NULL);
    snprintf(p, sizeof p, "%s/%s/text_emb.npy", model, ref);
    r.txt = load_npy(p, &k, NULL);
    return r;
}

static inline void free_refs(refs *r)
{
    free(r->pixels);
    free(r->ids);
    free(r->img);
    free(r->patch);
    free(r->txt);
}

typedef struct errs {
    double img, img_n, patch, patch_n, txt, txt_n;
} errs;

/* Both towers of m on the reference inputs, compared with the reference outputs. */
static inline errs run_towers(const clip_model *m, const refs *r, int bf16)
{
    const clip_info *in = clip_model_info(m);
    const int64_t E = in->embed_dim, g2 = (int64_t)in->grid * in->grid;
    float *img = malloc(sizeof(float) * (size_t)(r->n_img * E));
    float *patch = malloc(sizeof(float) * (size_t)(r->n_img * g2 * E));
    float *txt = malloc(sizeof(float) * (size_t)(r->n_txt * E));
    assert_true(img && patch && txt);
    errs e;
    if (clip_encode_image(m, r->pixels, r->n_img, bf16, img, patch)) fail_msg("%s", cmcr_last_error());
    if (clip_encode_text(m, r->ids, r->n_txt, bf16, txt)) fail_msg("%s", cmcr_last_error());
    e.img = max_diff(img, r->img, r->n_img * E, E, &e.img_n);
    e.patch = max_diff(patch, r->patch, r->n_img * g2 * E, E, &e.patch_n);
    e.txt = max_diff(txt, r->txt, r->n_txt * E, E, &e.txt_n);
    /* without patches: the same class embeddings */
    float *img2 = malloc(sizeof(float) * (size_t)(r->n_img * E));
    assert_non_null(img2);
    if (clip_encode_image(m, r->pixels, r->n_img, bf16, img2, NULL)) fail_msg("%s", cmcr_last_error());
    double n2, d2 = max_diff(img2, img, r->n_img * E, E, &n2);
    assert_true(d2 <= 1e-5);
    free(img2);
    free(img);
    free(patch);
    free(txt);
    return e;
}

static inline void print_errs(const char *what, errs e)
{
    printf("%s: max abs error image %.2e (normalised %.2e), patches %.2e (%.2e), text %.2e (%.2e)\n", what, e.img,
           e.img_n, e.patch, e.patch_n, e.txt, e.txt_n);
}

/* Every output within TOL of PyTorch's, raw and L2-normalised. */
static inline void expect_close(const char *what, errs e)
{
    print_errs(what, e);
    assert_true(e.img < TOL && e.img_n < TOL);
    assert_true(e.patch < TOL && e.patch_n < TOL);
    assert_true(e.txt < TOL && e.txt_n < TOL);
}

static inline clip_model *load_ok(const char *rel, const char *layout)
{
    char *p = fx(rel);
    clip_model *m = NULL;
    if (clip_model_load(p, &m)) fail_msg("%s", cmcr_last_error());
    assert_string_equal(clip_model_info(m)->layout, layout);
    free(p);
    return m;
}

#endif
