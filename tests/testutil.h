/* testutil.h - helpers for the cmocka tests. */
#ifndef CMCR_TESTUTIL_H
#define CMCR_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "cmcr.h"

/* Directory of the shared test data ($CMCR_TESTDATA, else ../shared/data next to the source
 * tree), or NULL if it does not exist. */
const char *tu_testdata(void);
/* Exit 77 (ctest: skipped) with a message when the shared data file rel is absent; else
 * return its full path (static buffer per call site is not needed: malloc'd, leaked). */
char *tu_require_data(const char *rel);
/* A fresh temporary directory (removed by tu_cleanup at exit). */
const char *tu_tmpdir(void);
/* tu_tmpdir()/name, malloc'd. */
char *tu_path(const char *name);
/* Write bytes to a file. */
void tu_write_file(const char *path, const void *data, size_t n);
/* A whole file, malloc'd with a NUL after its *n bytes (the test fails when it cannot be read). */
unsigned char *tu_read_file(const char *path, size_t *n);
/* Run a shell command; returns its exit status (or -1). */
int tu_system(const char *fmt, ...);
/* Path of the cmcr binary ($CMCR_BIN). */
const char *tu_bin(void);
/* A Python that can import numpy: $CMCR_PYTHON, python3, then /usr/bin/python3; NULL (with
 * a printed note that the interop checks are skipped) when there is none. */
const char *tu_python_numpy(void);
/* Python with torch ($CMCR_PYTHON, else python3): NULL when torch is not importable. */
const char *tu_python_torch(void);
/* Loading path with fmt must fail with status want, leave *out NULL, and give one line that
 * names the file and contains needle. Prints "MSG label status message" for the docs. */
void tu_expect_load_fail(cmcr_format fmt, const char *label, const char *path, cmcr_status want,
                         const char *needle);
/* $CMCR_FIXTURES/fixture/rel (a file of a fixture made by ctest), malloc'd; skips the calling
 * test (tu_skip) when CMCR_FIXTURES is unset or the file is absent, naming script as its maker. */
char *tu_fixture(const char *fixture, const char *script, const char *rel);
/* The .npy file at path: a malloc'd copy of its data (float32, int32, ... as stored), its numel
 * in *numel and, when rows is not NULL, its first dimension (1 for a scalar) in *rows. */
void *tu_load_npy(const char *path, int64_t *numel, int64_t *rows);
/* Max |a[i] - b[i]| over n floats; a NaN difference gives INFINITY (never a pass). */
double tu_max_abs_diff(const float *a, const float *b, int64_t n);
/* rows x cols standard normal draws from r (malloc'd; fails the test when out of memory). */
struct rng_state; /* runtime/rng.h */
float *tu_normal_matrix(struct rng_state *r, int64_t rows, int64_t cols);
/* A copy of ts without tensor e->drop (NULL: none), and with tensor e->change (NULL: none)
 * replaced by one of e->ndim dims e->shape and dtype e->dtype (F32, the default, or I64): float
 * values 0.5 except the middle one, e->fill; integers 1. For the encoders' load refusals. */
typedef struct tu_edit {
    const char *drop, *change;
    cmcr_dtype dtype;
    int ndim;
    int64_t shape[4];
    float fill;
} tu_edit;
cmcr_tensors *tu_edited(const cmcr_tensors *ts, const tu_edit *e);
#define TU_SKIP 77
/* Skip the running cmocka test, as skip() does (cmocka lists it as SKIPPED, and the program
 * still passes when the other tests pass), after printing "NOTE: <why>; <test> skipped".
 * Never `return` early instead: that reports a pass for checks that did not run. */
#define tu_skip(...)                                                                                                \
    do {                                                                                                           \
        tu_note_skip(__func__, __VA_ARGS__);                                                                       \
        skip();                                                                                                    \
    } while (0)
void tu_note_skip(const char *test, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cmocka_run_group_tests for main(): its result, except TU_SKIP (ctest: skipped) when every
 * one of the n tests skipped (tu_skip), so that a program that checked nothing is not a pass. */
int tu_run_tests(const struct CMUnitTest *tests, size_t n);
#define tu_run_group(tests) tu_run_tests((tests), sizeof(tests) / sizeof((tests)[0]))
#endif
