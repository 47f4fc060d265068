/* htsat_testutil.h - what test_htsat.c and test_htsat_full.c share: the fixture's files
 * (HTSAT_FIXTURE names it: htsat_small or htsat_full, made by scripts/clap_ref_htsat.py), and
 * running a model on a fixture folder's clips against the reference embeddings. */
#ifndef CMCR_HTSAT_TESTUTIL_H
#define CMCR_HTSAT_TESTUTIL_H
#include "testutil.h"
#include "encoders/htsat.h"
#include "io/io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

/* $CMCR_FIXTURES/HTSAT_FIXTURE/rel, malloc'd; skips the test when the fixture was not made. */
static inline char *fx(const char *rel)
{
    return tu_fixture(HTSAT_FIXTURE, "scripts/clap_ref_htsat.py", rel);
}

/* An .npy array of the fixture: its data (malloc'd, as stored), numel and first dimension. */
static inline void *load_npy(const char *rel, int64_t *numel, int64_t *rows)
{
    char *p = fx(rel);
    void *d = tu_load_npy(p, numel, rows);
    free(p);
    return d;
}

/* The checkpoint of a fixture model (e.g. "small"), loaded whole. */
static inline cmcr_tensors *load_weights(const char *model)
{
    char rel[128];
    snprintf(rel, sizeof rel, "%s/model.safetensors", model);
    char *p = fx(rel);
    cmcr_tensors *ts = NULL;
    if (cmcr_tensors_load(p, CMCR_FORMAT_SAFETENSORS, &ts)) fail_msg("%s", cmcr_last_error());
    free(p);
    return ts;
}

static inline htsat_model *load_model(const char *model)
{
    cmcr_tensors *ts = load_weights(model);
    htsat_model *m = NULL;
    if (htsat_model_from_tensors(ts, model, &m)) fail_msg("%s", cmcr_last_error());
    cmcr_tensors_free(ts);
    return m;
}

typedef struct clips {
    float *mel, *emb, *emb16;
    uint8_t *longer;
    int64_t n, dim;
} clips;

static inline clips load_clips(const char *model)
{
    clips c;
    int64_t k, n2;
    char p[128];
    snprintf(p, sizeof p, "%s/mel.npy", model);
    c.mel = load_npy(p, &k, &c.n);
    snprintf(p, sizeof p, "%s/longer.npy", model);
    int32_t *lg = load_npy(p, &k, &n2);
    assert_int_equal(n2, c.n);
    c.longer = malloc((size_t)c.n);
    assert_non_null(c.longer);
    for (int64_t i = 0; i < c.n; i++) c.longer[i] = lg[i] != 0;
    free(lg);
    snprintf(p, sizeof p, "%s/emb.npy", model);
    c.emb = load_npy(p, &k, &n2);
    c.dim = k / c.n;
    snprintf(p, sizeof p, "%s/emb_bf16.npy", model);
    c.emb16 = load_npy(p, &k, &n2);
    return c;
}

static inline void free_clips(clips *c)
{
    free(c->mel);
    free(c->longer);
    free(c->emb);
    free(c->emb16);
}

/* All clips of model through m in one call; the max |difference| from PyTorch's float32. */
static inline double run_clips(const htsat_model *m, const clips *c, int bf16, float *out)
{
    cmcr_status st = htsat_encode(m, c->mel, c->longer, c->n, bf16, out);
    if (st) fail_msg("%s", cmcr_last_error());
    return tu_max_abs_diff(out, c->emb, c->n * c->dim);
}

#endif
