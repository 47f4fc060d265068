#define _GNU_SOURCE
#include "testutil.h"
#include "runtime/rng.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];
static size_t skipped;

void tu_note_skip(const char *test, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("NOTE: ");
    vprintf(fmt, ap);
    printf("; %s skipped\n", test);
    va_end(ap);
    fflush(stdout);
    skipped++;
}

int tu_run_tests(const struct CMUnitTest *tests, size_t n)
{
    int rc = _cmocka_run_group_tests("tests", tests, n, NULL, NULL);
    if (rc == 0 && n > 0 && skipped == n) {
        printf("SKIPPED: every test of this program skipped\n");
        return TU_SKIP;
    }
    return rc;
}

static void tu_cleanup(void)
{
    if (tmpdir[0] && !getenv("CMCR_KEEP_TMP")) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

const char *tu_testdata(void)
{
    const char *d = getenv("CMCR_TESTDATA");
    if (!d) d = getenv("CMCR_TESTDATA_DEFAULT");
    struct stat st;
    if (!d || stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return d;
}

char *tu_require_data(const char *rel)
{
    const char *d = tu_testdata();
    char *p = NULL;
    struct stat st;
    if (d) {
        p = malloc(strlen(d) + strlen(rel) + 2);
        sprintf(p, "%s/%s", d, rel);
        if (stat(p, &st) == 0) return p;
    }
    printf("SKIPPED: test data %s not found (set CMCR_TESTDATA or provide ../shared/data)\n", rel);
    free(p);
    exit(TU_SKIP);
}

const char *tu_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/cmcr-test-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(tu_cleanup);
    }
    return tmpdir;
}

char *tu_path(const char *name)
{
    const char *d = tu_tmpdir();
    char *p = malloc(strlen(d) + strlen(name) + 2);
    sprintf(p, "%s/%s", d, name);
    return p;
}

void tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

unsigned char *tu_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    p[len] = 0;
    *n = (size_t)len;
    return p;
}

int tu_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc == -1) return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

const char *tu_bin(void)
{
    const char *b = getenv("CMCR_BIN");
    return b ? b : "cmcr";
}

const char *tu_python_torch(void)
{
    const char *py = getenv("CMCR_PYTHON");
    if (!py || !*py) py = "python3";
    if (tu_system("%s -c 'import torch, numpy' >/dev/null 2>&1", py) != 0) return NULL;
    return py;
}

const char *tu_python_numpy(void)
{
    static int done;
    static const char *found;
    if (done) return found;
    done = 1;
    const char *cands[] = {getenv("CMCR_PYTHON"), "python3", "/usr/bin/python3"};
    for (size_t i = 0; i < 3; i++) {
        if (!cands[i] || !*cands[i]) continue;
        if (tu_system("%s -c 'import numpy' >/dev/null 2>&1", cands[i]) == 0) {
            found = cands[i];
            break;
        }
    }
    if (!found) printf("NOTE: numpy is not importable; NumPy interop checks are skipped\n");
    return found;
}

void tu_expect_load_fail(cmcr_format fmt, const char *label, const char *path, cmcr_status want,
                         const char *needle)
{
    cmcr_tensors *ts = (cmcr_tensors *)1;
    cmcr_status got = cmcr_tensors_load(path, fmt, &ts);
    const char *msg = cmcr_last_error();
    printf("MSG\t%s\t%s\t%s\n", label, cmcr_status_name(got), msg);
    assert_null(ts);
    assert_int_equal(got, want);
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, needle));
    assert_null(strchr(msg, '\n'));
}

float *tu_normal_matrix(rng_state *r, int64_t rows, int64_t cols)
{
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    assert_non_null(x);
    rng_fill_normal(r, x, rows * cols, 1.0);
    return x;
}

char *tu_fixture(const char *fixture, const char *script, const char *rel)
{
    const char *f = getenv("CMCR_FIXTURES");
    if (!f) tu_skip("CMCR_FIXTURES is not set (run under ctest, which makes the %s fixture)", fixture);
    size_t n = strlen(f) + strlen(fixture) + strlen(rel) + 3;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s/%s", f, fixture, rel);
    FILE *fh = fopen(p, "rb");
    if (!fh) tu_skip("fixture file %s is absent (%s makes it)", p, script);
    fclose(fh);
    return p;
}

void *tu_load_npy(const char *path, int64_t *numel, int64_t *rows)
{
    cmcr_tensors *ts = NULL;
    if (cmcr_tensors_load(path, CMCR_FORMAT_NPY, &ts)) fail_msg("%s", cmcr_last_error());
    const cmcr_tensor *t = cmcr_tensors_find(ts, "array");
    assert_non_null(t);
    void *d = malloc(t->nbytes ? t->nbytes : 1);
    assert_non_null(d);
    memcpy(d, t->data, t->nbytes);
    *numel = cmcr_tensor_numel(t);
    if (rows) *rows = t->ndim ? t->shape[0] : 1;
    cmcr_tensors_free(ts);
    return d;
}

double tu_max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (isnan(d)) return INFINITY;
        m = d > m ? d : m;
    }
    return m;
}

cmcr_tensors *tu_edited(const cmcr_tensors *ts, const tu_edit *e)
{
    cmcr_tensors *out = cmcr_tensors_new();
    assert_non_null(out);
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        if (e->drop && strcmp(t->name, e->drop) == 0) continue;
        if (!e->change || strcmp(t->name, e->change) != 0) {
            assert_int_equal(cmcr_tensors_add(out, t->name, t->dtype, t->ndim, t->shape, t->data), CMCR_OK);
            continue;
        }
        int64_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
        void *d = calloc((size_t)n, 8);
        assert_non_null(d);
        for (int64_t j = 0; j < n; j++) {
            if (e->dtype == CMCR_I64) ((int64_t *)d)[j] = 1;
            else ((float *)d)[j] = j == n / 2 ? e->fill : 0.5f;
        }
        assert_int_equal(cmcr_tensors_add(out, t->name, e->dtype, e->ndim, e->shape, d), CMCR_OK);
        free(d);
    }
    return out;
}
