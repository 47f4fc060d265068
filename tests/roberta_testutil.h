/* roberta_testutil.h - what test_roberta.c and test_roberta_full.c share: the fixture's files
 * (ROBERTA_FIXTURE names it: roberta_small or roberta_full, made by
 * scripts/clap_ref_roberta.py), loading the model, and comparing embeddings. */
#ifndef CMCR_ROBERTA_TESTUTIL_H
#define CMCR_ROBERTA_TESTUTIL_H
#include "testutil.h"
#include "encoders/roberta.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

/* $CMCR_FIXTURES/ROBERTA_FIXTURE/rel, malloc'd; skips the test when the fixture was not made. */
static inline char *fx(const char *rel)
{
    const char *f = getenv("CMCR_FIXTURES");
    if (!f) tu_skip("CMCR_FIXTURES is not set (run under ctest, which makes the %s fixture)", ROBERTA_FIXTURE);
    size_t n = strlen(f) + strlen(ROBERTA_FIXTURE) + strlen(rel) + 3;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s/%s", f, ROBERTA_FIXTURE, rel);
    FILE *fp = fopen(p, "rb");
    if (!fp) tu_skip("fixture file %s is absent (scripts/clap_ref_roberta.py makes it)", p);
    fclose(fp);
    return p;
}

/* An .npy array of the fixture: its data (malloc'd, float32 or int32 as stored), numel, rows. */
static inline void *load_npy(const char *rel, int64_t *numel, int64_t *rows)
{
    char *p = fx(rel);
    cmcr_tensors *ts = NULL;
    assert_int_equal(cmcr_tensors_load(p, CMCR_FORMAT_NPY, &ts), CMCR_OK);
    const cmcr_tensor *t = cmcr_tensors_find(ts, "array");
    assert_non_null(t);
    void *d = malloc(t->nbytes);
    assert_non_null(d);
    memcpy(d, t->data, t->nbytes);
    *numel = cmcr_tensor_numel(t);
    if (rows) *rows = t->shape[0];
    cmcr_tensors_free(ts);
    free(p);
    return d;
}

/* The fixture's weights (rel: "small/model.safetensors"). */
static inline cmcr_tensors *load_weights(const char *rel)
{
    char *p = fx(rel);
    cmcr_tensors *ts = NULL;
    assert_int_equal(cmcr_tensors_load(p, CMCR_FORMAT_SAFETENSORS, &ts), CMCR_OK);
    free(p);
    return ts;
}

static inline roberta_model *load_model(const char *rel)
{
    cmcr_tensors *ts = load_weights(rel);
    roberta_model *m = NULL;
    cmcr_status st = roberta_model_from_tensors(ts, rel, &m);
    if (st) fprintf(stderr, "%s\n", cmcr_last_error());
    assert_int_equal(st, CMCR_OK);
    cmcr_tensors_free(ts);
    return m;
}

/* Max |a - b| over n floats (NaN counts as infinitely far). */
static inline double max_abs(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        m = d > m || isnan(d) ? (isnan(d) ? INFINITY : d) : m;
    }
    return m;
}

/* roberta_encode of the fixture's ids file against its reference embeddings: the max
 * difference, printed under what. */
static inline double encode_vs(const roberta_model *m, const char *ids_rel, const char *ref_rel, int bf16,
                               const char *what)
{
    int64_t ni, ne, n;
    int32_t *ids = load_npy(ids_rel, &ni, &n);
    float *ref = load_npy(ref_rel, &ne, NULL);
    const int64_t E = roberta_model_info(m)->embed_dim;
    assert_int_equal(ni, n * ROBERTA_CONTEXT);
    assert_int_equal(ne, n * E);
    float *emb = malloc(sizeof(float) * (size_t)ne);
    assert_non_null(emb);
    cmcr_status st = roberta_encode(m, ids, n, bf16, emb);
    if (st) fprintf(stderr, "%s\n", cmcr_last_error());
    assert_int_equal(st, CMCR_OK);
    double d = max_abs(emb, ref, ne);
    double big = 0;
    for (int64_t i = 0; i < ne; i++) big = fabs(ref[i]) > big ? fabs(ref[i]) : big;
    printf("%s: %lld prompts, max |C - PyTorch| = %.3g (largest |value| %.3g)\n", what, (long long)n, d, big);
    free(ids);
    free(ref);
    free(emb);
    return d;
}

#endif
