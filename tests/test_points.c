/* test_points.c - the point-cloud readers (src/media/points.h) against the files and arrays of
 * scripts/points_fixtures.py ($CMCR_FIXTURES/points/cases.txt: .npy, the C-MCR demo's pickled
 * dict in protocols 2 to 5, PLY ascii and binary, text; the refusals, hostile pickles and every
 * prefix of a few good files), and points_check on clouds built here. */
#include "testutil.h"
#include "media/points.h"
#include "io/pickle.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ the case list */

typedef struct tcase {
    char kind[8], file[160], extra[400];
} tcase;

static tcase *cases;
static int ncases;
static char fixdir[1024];

static void load_cases(void)
{
    if (cases) return;
    char *list = tu_fixture("points", "scripts/points_fixtures.py", "cases.txt");
    snprintf(fixdir, sizeof fixdir, "%.*s", (int)(strlen(list) - strlen("/cases.txt")), list);
    FILE *fp = fopen(list, "r");
    assert_non_null(fp);
    char line[1024];
    int cap = 0;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        if (ncases == cap) {
            cap = cap ? 2 * cap : 64;
            cases = realloc(cases, (size_t)cap * sizeof *cases);
            assert_non_null(cases);
        }
        tcase *c = &cases[ncases++];
        memset(c, 0, sizeof *c);
        int off = 0;
        assert_true(sscanf(line, "%7s %159s %n", c->kind, c->file, &off) >= 2);
        if (off) snprintf(c->extra, sizeof c->extra, "%s", line + off); /* the needle may have spaces */
    }
    fclose(fp);
    free(list);
    assert_true(ncases > 0);
}

static char *fix_path(const char *rel)
{
    size_t n = strlen(fixdir) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", fixdir, rel);
    return p;
}

static cmcr_status status_of(const char *s)
{
    static const struct { const char *name; cmcr_status st; } map[] = {
        {"EFORMAT", CMCR_EFORMAT}, {"EUNSUPPORTED", CMCR_EUNSUPPORTED}, {"ESHAPE", CMCR_ESHAPE},
        {"EVALUE", CMCR_EVALUE},   {"ENOMEM", CMCR_ENOMEM},             {"EIO", CMCR_EIO}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].name)) return map[i].st;
    fail_msg("unknown status %s in cases.txt", s);
    return CMCR_OK;
}

/* A failure: the status, one line, the name in it. */
static void assert_one_line_naming(const char *name)
{
    const char *msg = cmcr_last_error();
    assert_non_null(strstr(msg, name));
    assert_null(strchr(msg, '\n'));
    assert_true(strlen(msg) > strlen(name) + 4);
}

/* ------------------------------------------------------------------ good files */

static void test_decode(void **state)
{
    (void)state;
    load_cases();
    int n = 0;
    double worst = 0;
    for (int i = 0; i < ncases; i++) {
        tcase *c = &cases[i];
        if (strcmp(c->kind, "ok")) continue;
        char *path = fix_path(c->file), *exp_path = fix_path(c->extra);
        int64_t numel, rows;
        float *exp = tu_load_npy(exp_path, &numel, &rows);
        point_cloud pc;
        cmcr_status st = points_read_file(path, &pc);
        if (st) fail_msg("%s: %s", c->file, cmcr_last_error());
        assert_int_equal(pc.n, rows);
        assert_int_equal(pc.n * pc.width, numel);
        double d = tu_max_abs_diff(pc.v, exp, numel);
        if (memcmp(pc.v, exp, (size_t)numel * sizeof(float)) != 0)
            fail_msg("%s: not bit-identical to %s (max abs difference %g)", c->file, c->extra, d);
        worst = d > worst ? d : worst;
        /* The same bytes from memory decode the same. */
        size_t len;
        unsigned char *bytes = tu_read_file(path, &len);
        point_cloud m;
        assert_int_equal(points_read_memory(bytes, len, "mem", &m), CMCR_OK);
        assert_int_equal(m.n, pc.n);
        assert_int_equal(m.width, pc.width);
        assert_memory_equal(m.v, pc.v, (size_t)numel * sizeof(float));
        printf("ok %-24s %lld x %d\n", c->file, (long long)pc.n, pc.width);
        points_free(&m);
        points_free(&pc);
        assert_null(pc.v);
        free(bytes);
        free(exp);
        free(path);
        free(exp_path);
        n++;
    }
    printf("%d files decode bit-identical to the reference arrays (max abs difference %g)\n", n, worst);
    assert_true(n >= 20);
}

/* ------------------------------------------------------------------ refusals */

static void test_refusals(void **state)
{
    (void)state;
    load_cases();
    int n = 0;
    for (int i = 0; i < ncases; i++) {
        tcase *c = &cases[i];
        if (strcmp(c->kind, "bad")) continue;
        char want_name[32], *needle;
        int off = 0;
        assert_int_equal(sscanf(c->extra, "%31s %n", want_name, &off), 1);
        needle = c->extra + off;
        cmcr_status want = status_of(want_name);
        char *path = fix_path(c->file);
        point_cloud pc = {(float *)1, 7, 7};
        cmcr_status got = points_read_file(path, &pc);
        printf("MSG\t%s\t%s\t%s\n", c->file, cmcr_status_name(got), cmcr_last_error());
        assert_null(pc.v);
        assert_int_equal(pc.n, 0);
        if (got != want) fail_msg("%s: status %s, expected %s", c->file, cmcr_status_name(got), want_name);
        assert_one_line_naming(path);
        if (!strstr(cmcr_last_error(), needle)) fail_msg("%s: message lacks \"%s\"", c->file, needle);
        /* From memory: the same status, the name given. */
        size_t len;
        unsigned char *bytes = tu_read_file(path, &len);
        assert_int_equal(points_read_memory(bytes, len, "in-memory", &pc), want);
        assert_one_line_naming("in-memory");
        free(bytes);
        free(path);
        n++;
    }
    printf("%d files refused with the expected status and message\n", n);
    assert_true(n >= 40);
    point_cloud pc;
    assert_int_equal(points_read_file("/nonexistent/cloud.ply", &pc), CMCR_EIO);
    assert_one_line_naming("/nonexistent/cloud.ply");
    printf("MSG\tmissing file\t%s\t%s\n", cmcr_status_name(CMCR_EIO), cmcr_last_error());
}

/* A pickle that would run `touch MARKER`: refused, and nothing ran. */
static void test_hostile(void **state)
{
    (void)state;
    load_cases();
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tu_tmpdir()), 0);
    int n = 0;
    for (int i = 0; i < ncases; i++) {
        tcase *c = &cases[i];
        if (strcmp(c->kind, "hostile")) continue;
        char *path = fix_path(c->file);
        point_cloud pc;
        assert_int_equal(points_read_file(path, &pc), CMCR_EFORMAT);
        assert_one_line_naming(path);
        assert_int_equal(access(c->extra, F_OK), -1); /* os.system was never called */
        printf("hostile %s: refused, %s not created: %s\n", c->file, c->extra, cmcr_last_error());
        free(path);
        n++;
    }
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(n, 2);
}

/* Every prefix of a good file is refused with one line naming it, or read as a cloud that
 * passes the checks; never a crash (ASan build) or a leak. */
static void test_prefixes(void **state)
{
    (void)state;
    load_cases();
    int files = 0;
    for (int i = 0; i < ncases; i++) {
        tcase *c = &cases[i];
        if (strcmp(c->kind, "prefix")) continue;
        char *path = fix_path(c->file);
        size_t len;
        unsigned char *bytes = tu_read_file(path, &len);
        size_t accepted = 0;
        for (size_t k = 0; k <= len; k++) {
            unsigned char *cut = malloc(k ? k : 1); /* exactly k bytes: ASan sees any over-read */
            assert_non_null(cut);
            memcpy(cut, bytes, k);
            point_cloud pc;
            cmcr_status st = points_read_memory(cut, k, "prefix", &pc);
            if (st == CMCR_OK) {
                accepted++;
                assert_int_equal(points_check(pc.v, pc.n, pc.width, "prefix"), CMCR_OK);
            } else {
                assert_null(pc.v);
                assert_one_line_naming("prefix");
            }
            if (k == len) assert_int_equal(st, CMCR_OK);
            points_free(&pc);
            free(cut);
        }
        printf("prefixes of %s: %zu of %zu accepted, the rest refused cleanly\n", c->file, accepted, len + 1);
        free(bytes);
        free(path);
        files++;
    }
    assert_true(files >= 6);
}

/* Text of POINTS_MAX + 1 short lines (60 MB in memory): refused by the counting pass, before
 * the 120 MB cloud would be allocated. */
static void test_text_too_many(void **state)
{
    (void)state;
    size_t lines = (size_t)POINTS_MAX + 1, len = lines * 6;
    char *text = malloc(len);
    assert_non_null(text);
    for (size_t i = 0; i < lines; i++) memcpy(text + i * 6, "1 2 3\n", 6);
    text[0] = '0'; /* not all equal, though it never gets that far */
    point_cloud pc;
    cmcr_status st = points_read_memory(text, len, "many.xyz", &pc);
    printf("MSG\tmany.xyz\t%s\t%s\n", cmcr_status_name(st), cmcr_last_error());
    assert_int_equal(st, CMCR_ENOMEM);
    assert_null(pc.v);
    assert_one_line_naming("many.xyz");
    assert_non_null(strstr(cmcr_last_error(), "more than the limit of 10000000 points"));
    /* One line fewer is read. */
    point_cloud ok;
    assert_int_equal(points_read_memory(text, len - 6, "max.xyz", &ok), CMCR_OK);
    assert_int_equal(ok.n, POINTS_MAX);
    points_free(&ok);
    free(text);
}

/* ------------------------------------------------------------------ points_check */

static float *grid(int64_t n, int width)
{
    float *v = malloc((size_t)(n * width) * sizeof *v);
    assert_non_null(v);
    for (int64_t i = 0; i < n * width; i++) v[i] = (float)(i % 97) * 0.25f - 3.0f;
    return v;
}

static void expect_refused(const float *v, int64_t n, int width, cmcr_status want, const char *needle)
{
    cmcr_status got = points_check(v, n, width, "cloud");
    printf("MSG\tpoints_check\t%s\t%s\n", cmcr_status_name(got), cmcr_last_error());
    assert_int_equal(got, want);
    assert_one_line_naming("cloud");
    assert_non_null(strstr(cmcr_last_error(), needle));
}

static void test_check(void **state)
{
    (void)state;
    float *v = grid(64, 6);
    assert_int_equal(points_check(v, 64, 6, "cloud"), CMCR_OK);
    assert_int_equal(points_check(v, 64, 3, "cloud"), CMCR_OK);
    assert_int_equal(points_check(v, POINTS_MIN, 3, "cloud"), CMCR_OK);
    expect_refused(v, 64, 4, CMCR_ESHAPE, "points are 4 values wide");
    expect_refused(v, 64, 0, CMCR_ESHAPE, "points are 0 values wide");
    expect_refused(v, POINTS_MIN - 1, 3, CMCR_ESHAPE, "31 points, fewer than the 32");
    expect_refused(v, -5, 3, CMCR_ESHAPE, "-5 points");
    expect_refused(v, (int64_t)POINTS_MAX + 1, 3, CMCR_ENOMEM, "more than the limit of 10000000"); /* not read */
    v[5 * 6 + 2] = NAN;
    expect_refused(v, 64, 6, CMCR_EVALUE, "point 5 (column 2) is NaN");
    v[5 * 6 + 2] = 0;
    v[63 * 6 + 5] = -INFINITY; /* a colour */
    expect_refused(v, 64, 6, CMCR_EVALUE, "point 63 (column 5) is Inf");
    v[63 * 6 + 5] = 1e18f; /* the largest magnitude allowed */
    v[7 * 6 + 0] = -1e18f;
    assert_int_equal(points_check(v, 64, 6, "cloud"), CMCR_OK);
    v[7 * 6 + 0] = -3e18f; /* finite, but its squared distances overflow float32 */
    expect_refused(v, 64, 6, CMCR_EVALUE, "point 7 (column 0) is -3e+18, beyond the +-1e18");
    v[7 * 6 + 0] = 0;
    for (int i = 0; i < 64; i++) v[i * 6] = 1, v[i * 6 + 1] = 2, v[i * 6 + 2] = 3, v[i * 6 + 5] = (float)i;
    expect_refused(v, 64, 6, CMCR_EVALUE, "all 64 points are at the same position");
    v[40 * 6 + 1] = 2.0001f; /* one point apart is enough extent */
    assert_int_equal(points_check(v, 64, 6, "cloud"), CMCR_OK);
    free(v);
}

static void test_keep_xyz(void **state)
{
    (void)state;
    point_cloud pc = {grid(40, 6), 40, 6};
    float *copy = grid(40, 6);
    points_keep_xyz(&pc);
    assert_int_equal(pc.width, 3);
    for (int i = 0; i < 40; i++) assert_memory_equal(pc.v + i * 3, copy + i * 6, 3 * sizeof(float));
    points_keep_xyz(&pc); /* width 3 already: unchanged */
    assert_int_equal(pc.width, 3);
    assert_int_equal(points_check(pc.v, pc.n, pc.width, "kept"), CMCR_OK);
    points_free(&pc);
    points_free(&pc); /* freeing an empty cloud is fine */
    points_free(NULL);
    free(copy);
}

/* numpy's globals are recognised only in numpy mode: a checkpoint's pickle (pk_parse) keeps
 * them opaque as before, and still refuses BYTEARRAY8. */
static void test_torch_mode_unchanged(void **state)
{
    (void)state;
    load_cases();
    const char *files[] = {"dict_p3_float32.npy", "dict_p5_float64.npy"};
    for (int i = 0; i < 2; i++) {
        char *path = fix_path(files[i]);
        size_t len;
        unsigned char *b = tu_read_file(path, &len);
        size_t hlen = 10 + (size_t)(b[8] | b[9] << 8);
        pk_arena *arena;
        pk_value *root;
        cmcr_status st = pk_parse(files[i], b + hlen, len - hlen, &arena, &root);
        if (i == 0) {
            assert_int_equal(st, CMCR_OK);
            assert_int_equal(root->kind, PK_OBJECT);
            assert_string_equal(pk_object_name(root), "numpy.core.multiarray._reconstruct");
            pk_free(arena);
        } else {
            assert_int_equal(st, CMCR_EUNSUPPORTED);
            assert_non_null(strstr(cmcr_last_error(), "data.pkl byte"));
            assert_non_null(strstr(cmcr_last_error(), "BYTEARRAY8"));
        }
        assert_int_equal(pk_parse_numpy(files[i], b + hlen, len - hlen, &arena, &root), CMCR_OK);
        assert_int_equal(root->kind, PK_NDARRAY);
        assert_string_equal(root->u.array->dtype->u.dtype.code, "O8");
        pk_free(arena);
        free(b);
        free(path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),         cmocka_unit_test(test_refusals), cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_prefixes),       cmocka_unit_test(test_check),    cmocka_unit_test(test_keep_xyz),
        cmocka_unit_test(test_torch_mode_unchanged), cmocka_unit_test(test_text_too_many),
    };
    return tu_run_group(tests);
}
