/* bpe_testutil.h - what the tokenizer tests (test_clip_tokenizer.c, test_roberta_tokenizer.c)
 * share: fixture paths and the reference corpus their Python references write (strings.bin:
 * "CLIPSTR1", u32 count, then u32 length + UTF-8 bytes per string; ids.npy: count x CTX int32;
 * ntokens.npy: int64 tokens before truncation; nreal.npy, when written: int32 attention
 * lengths). */
#ifndef CMCR_BPE_TESTUTIL_H
#define CMCR_BPE_TESTUTIL_H
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CTX 77

/* $CMCR_FIXTURES/name/file (malloc'd) when it exists, else NULL. */
static char *fixture(const char *name, const char *file)
{
    const char *d = getenv("CMCR_FIXTURES");
    if (!d) return NULL;
    char *p = malloc(strlen(d) + strlen(name) + strlen(file) + 3);
    sprintf(p, "%s/%s/%s", d, name, file);
    struct stat st;
    if (stat(p, &st) == 0) return p;
    free(p);
    return NULL;
}

/* The shared test data's file rel (malloc'd) when it exists, else NULL. */
static char *data_path(const char *rel)
{
    const char *d = tu_testdata();
    if (!d) return NULL;
    char *p = malloc(strlen(d) + strlen(rel) + 2);
    sprintf(p, "%s/%s", d, rel);
    struct stat st;
    if (stat(p, &st) == 0) return p;
    free(p);
    return NULL;
}

typedef struct corpus {
    size_t n;
    const char **s;
    size_t *len;
    int32_t *ids, *nreal; /* nreal: NULL when the fixture has none */
    int64_t *counts;
    unsigned char *raw;
    cmcr_tensors *ts, *tc, *tr;
} corpus;

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* One .npy array of the fixture, of dtype and n rows, into *ts; its data. */
static void *corpus_array(const char *path, cmcr_dtype dtype, size_t n, cmcr_tensors **ts)
{
    assert_int_equal(cmcr_tensors_load(path, CMCR_FORMAT_NPY, ts), CMCR_OK);
    const cmcr_tensor *t = cmcr_tensors_at(*ts, 0);
    assert_int_equal(t->dtype, dtype);
    assert_int_equal(t->shape[0], (int64_t)n);
    return t->data;
}

/* Load the corpus of fixture `name`, or note why `test` skips and return false. */
static bool corpus_load(corpus *c, const char *name, const char *test)
{
    char *sp = fixture(name, "strings.bin"), *ip = fixture(name, "ids.npy");
    char *cp = fixture(name, "ntokens.npy"), *rp = fixture(name, "nreal.npy");
    if (!sp || !ip || !cp) {
        tu_note_skip(test, "fixture %s absent (no vocabulary in the test data, or no Python reference)", name);
        free(sp), free(ip), free(cp), free(rp);
        return false;
    }
    size_t n;
    *c = (corpus){0};
    c->raw = tu_read_file(sp, &n);
    assert_true(n >= 12 && memcmp(c->raw, "CLIPSTR1", 8) == 0);
    c->n = le32(c->raw + 8);
    c->s = calloc(c->n, sizeof *c->s);
    c->len = calloc(c->n, sizeof *c->len);
    size_t o = 12;
    for (size_t i = 0; i < c->n; i++) {
        assert_true(o + 4 <= n);
        c->len[i] = le32(c->raw + o);
        c->s[i] = (const char *)c->raw + o + 4;
        o += 4 + c->len[i];
        assert_true(o <= n);
    }
    assert_int_equal(o, n);
    c->ids = corpus_array(ip, CMCR_I32, c->n, &c->ts);
    assert_int_equal(cmcr_tensors_at(c->ts, 0)->shape[1], CTX);
    c->counts = corpus_array(cp, CMCR_I64, c->n, &c->tc);
    if (rp) c->nreal = corpus_array(rp, CMCR_I32, c->n, &c->tr);
    assert_true(c->n >= 2000);
    free(sp), free(ip), free(cp), free(rp);
    return true;
}

static void corpus_free(corpus *c)
{
    free(c->s), free(c->len), free(c->raw);
    cmcr_tensors_free(c->ts);
    cmcr_tensors_free(c->tc);
    cmcr_tensors_free(c->tr);
}

/* Print string i of c and the first ids of got against the reference (for a mismatch). */
static void corpus_show(const corpus *c, size_t i, const int32_t *got, int st, long long count)
{
    char shown[200];
    char *tmp = strndup(c->s[i], c->len[i]);
    printf("string %zu '%s': status %d count %lld (want %lld) first ids", i, cmcr_printable(shown, sizeof shown, tmp), st,
           count, (long long)c->counts[i]);
    for (int k = 0; k < 12; k++) printf(" %d/%d", got[k], c->ids[i * CTX + k]);
    printf("\n");
    free(tmp);
}

/* The message of the last failure is one line naming `file` and containing needle. */
static void expect_message(const char *file, const char *needle)
{
    const char *m = cmcr_last_error();
    printf("MSG %s\n", m);
    assert_non_null(strstr(m, file));
    assert_non_null(strstr(m, needle));
    assert_null(strchr(m, '\n'));
}

/* A tokenizer's check of the whole corpus: the number of strings that differ. */
typedef size_t (*corpus_check_fn)(const void *t, const corpus *c, bool print);
typedef struct corpus_job {
    corpus_check_fn check;
    const void *t;
    const corpus *c;
    size_t bad;
} corpus_job;

static void *corpus_job_run(void *arg)
{
    corpus_job *j = arg;
    for (int rep = 0; rep < 3; rep++) j->bad += j->check(j->t, j->c, false);
    return NULL;
}

/* 4 threads sharing one tokenizer t, 3 passes over c each: no string may differ. */
static void corpus_threads(corpus_check_fn check, const void *t, const corpus *c)
{
    pthread_t th[4];
    corpus_job jobs[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (corpus_job){check, t, c, 0};
        assert_int_equal(pthread_create(&th[k], NULL, corpus_job_run, &jobs[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(pthread_join(th[k], NULL), 0);
        assert_int_equal(jobs[k].bad, 0);
    }
}

static void write_text(const char *path, const char *s) { tu_write_file(path, s, strlen(s)); }

#endif
