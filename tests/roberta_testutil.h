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
    return tu_fixture(ROBERTA_FIXTURE, "scripts/clap_ref_roberta.py", rel);
}

/* An .npy array of the fixture: its data (malloc'd, float32 or int32 as stored), numel, rows. */
static inline void *load_npy(const char *rel, int64_t *numel, int64_t *rows)
{
    char *p = fx(rel);
    void *d = tu_load_npy(p, numel, rows);
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
    double d = tu_max_abs_diff(emb, ref, ne);
    double big = 0;
    for (int64_t i = 0; i < ne; i++) big = fabs(ref[i]) > big ? fabs(ref[i]) : big;
    printf("%s: %lld prompts, max |C - PyTorch| = %.3g (largest |value| %.3g)\n", what, (long long)n, d, big);
    free(ids);
    free(ref);
    free(emb);
    return d;
}

#endif
