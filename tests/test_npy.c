/* test_npy.c - .npy load/save, streaming reader/writer, malformed files, NumPy interop. */
#include "testutil.h"
#include "runtime/file.h"
#include "io/io.h"
#include "runtime/core.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */


static size_t file_len(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    unsigned char *buf;
    assert_int_equal(file_read_all(path, 1u << 30, &buf, n), CMCR_OK);
    return buf;
}

/* Write "\x93NUMPY" major minor, header length, dict + "\n", then data. */
static char *craft(const char *name, unsigned major, unsigned minor, const char *dict, const void *data, size_t n)
{
    size_t dl = strlen(dict), pre = major >= 2 ? 12 : 10, hlen = dl + 1;
    unsigned char *buf = malloc(pre + hlen + n + 1);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = (unsigned char)minor;
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    if (pre == 12) {
        buf[10] = (unsigned char)(hlen >> 16);
        buf[11] = (unsigned char)(hlen >> 24);
    }
    memcpy(buf + pre, dict, dl);
    buf[pre + dl] = '\n';
    if (n) memcpy(buf + pre + hlen, data, n);
    char *path = tu_path(name);
    tu_write_file(path, buf, pre + hlen + n);
    free(buf);
    return path;
}

static char *raw_file(const char *name, const void *data, size_t n)
{
    char *path = tu_path(name);
    tu_write_file(path, data, n);
    return path;
}

/* Load must fail with st, naming the file and containing needle. Prints the message. */
static void expect_load_fail(const char *label, const char *path, cmcr_status st, const char *needle)
{
    tu_expect_load_fail(CMCR_FORMAT_NPY, label, path, st, needle);
}

static void expect_reader_fail(const char *label, const char *path, cmcr_status st, const char *needle)
{
    cmcr_npy_reader *r = (cmcr_npy_reader *)1;
    cmcr_status got = cmcr_npy_reader_open(path, &r);
    const char *msg = cmcr_last_error();
    printf("MSG\t%s\t%s\t%s\n", label, cmcr_status_name(got), msg);
    assert_null(r);
    assert_int_equal(got, st);
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, needle));
}

static const char *F32_2X3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

/* ------------------------------------------------------------------ round trips */

static void roundtrip_one(cmcr_dtype dt, int ndim, const int64_t *shape, const void *data)
{
    cmcr_tensors *ts = cmcr_tensors_new(), *back;
    assert_int_equal(cmcr_tensors_add(ts, "x", dt, ndim, shape, data), CMCR_OK);
    char *path = tu_path("rt.npy");
    assert_int_equal(cmcr_tensors_save(ts, path, CMCR_FORMAT_AUTO), CMCR_OK);
    assert_int_equal(file_len(path) % 64, cmcr_tensors_at(ts, 0)->nbytes % 64);
    assert_int_equal(cmcr_tensors_load(path, CMCR_FORMAT_AUTO, &back), CMCR_OK);
    assert_int_equal(cmcr_tensors_count(back), 1);
    const cmcr_tensor *a = cmcr_tensors_at(ts, 0), *b = cmcr_tensors_at(back, 0);
    assert_string_equal(b->name, "array");
    assert_int_equal(b->dtype, dt);
    assert_int_equal(b->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(b->shape[i], shape[i]);
    assert_int_equal(b->nbytes, a->nbytes);
    if (a->nbytes) assert_memory_equal(b->data, a->data, a->nbytes);
    cmcr_tensors_free(ts);
    cmcr_tensors_free(back);
    free(path);
}

static void test_roundtrip(void **state)
{
    (void)state;
    float f[6] = {1.5f, -2.25f, 3.0f, 0.1f, 1e-30f, -0.0f};
    int64_t s23[2] = {2, 3}, s6[1] = {6}, s0[1] = {0}, s3[1] = {3};
    roundtrip_one(CMCR_F32, 2, s23, f);
    int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
    roundtrip_one(CMCR_I64, 1, s3, i64);
    int32_t i32[6] = {1, 2, 3, -4, 5, 2147483647};
    roundtrip_one(CMCR_I32, 2, s23, i32);
    uint16_t h[6] = {0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff, 0x8000};
    roundtrip_one(CMCR_F16, 1, s6, h);
    double d[1] = {3.141592653589793};
    roundtrip_one(CMCR_F64, 0, NULL, d);
    roundtrip_one(CMCR_F32, 1, s0, f);
    unsigned char u8[6] = {0, 1, 2, 127, 128, 255};
    roundtrip_one(CMCR_U8, 2, s23, u8);
}

static void test_header_matches_numpy(void **state)
{
    (void)state;
    /* What numpy 1.24's np.save writes for np.zeros((80, 512), np.float32). */
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (80, 512), }";
    float *z = calloc(80 * 512, sizeof(float));
    int64_t shape[2] = {80, 512};
    cmcr_tensors *ts = cmcr_tensors_new();
    assert_int_equal(cmcr_tensors_add(ts, "z", CMCR_F32, 2, shape, z), CMCR_OK);
    char *path = tu_path("hdr.npy");
    assert_int_equal(cmcr_tensors_save(ts, path, CMCR_FORMAT_NPY), CMCR_OK);
    size_t n;
    unsigned char *buf = slurp(path, &n);
    assert_int_equal(n, 128 + 80 * 512 * 4);
    assert_memory_equal(buf, "\x93NUMPY\x01\x00\x76\x00", 10);
    assert_memory_equal(buf + 10, dict, strlen(dict));
    for (size_t i = 10 + strlen(dict); i < 127; i++) assert_int_equal(buf[i], ' ');
    assert_int_equal(buf[127], '\n');
    /* The streaming writer produces the same bytes. */
    char *p2 = tu_path("hdr2.npy");
    assert_int_equal(cmcr_matrix_save_npy(p2, z, 80, 512), CMCR_OK);
    size_t n2;
    unsigned char *buf2 = slurp(p2, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(buf2, buf, n);
    free(buf);
    free(buf2);
    free(z);
    free(path);
    free(p2);
    cmcr_tensors_free(ts);
}

static void test_bf16_refused(void **state)
{
    (void)state;
    uint16_t v[2] = {0x3f80, 0x4000};
    int64_t shape[1] = {2};
    cmcr_tensors *ts = cmcr_tensors_new();
    assert_int_equal(cmcr_tensors_add(ts, "w", CMCR_BF16, 1, shape, v), CMCR_OK);
    char *path = tu_path("bf16.npy");
    assert_int_equal(cmcr_tensors_save(ts, path, CMCR_FORMAT_NPY), CMCR_EUNSUPPORTED);
    printf("MSG\tsave BF16 tensor\t%s\t%s\n", cmcr_status_name(CMCR_EUNSUPPORTED), cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), path));
    assert_non_null(strstr(cmcr_last_error(), "no NumPy dtype"));
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
    cmcr_tensors_free(ts);
    free(path);
}

static void test_versions_2_and_3(void **state)
{
    (void)state;
    float v[6] = {1, 2, 3, 4, 5, 6};
    for (unsigned major = 2; major <= 3; major++) {
        char *p = craft(major == 2 ? "v2.npy" : "v3.npy", major, 0, F32_2X3, v, sizeof v);
        cmcr_tensors *ts;
        assert_int_equal(cmcr_tensors_load(p, CMCR_FORMAT_NPY, &ts), CMCR_OK);
        const cmcr_tensor *t = cmcr_tensors_at(ts, 0);
        assert_int_equal(t->ndim, 2);
        assert_int_equal(t->shape[0], 2);
        assert_int_equal(t->shape[1], 3);
        assert_memory_equal(t->data, v, sizeof v);
        cmcr_tensors_free(ts);
        cmcr_matrix m;
        assert_int_equal(cmcr_matrix_load(p, &m), CMCR_OK);
        assert_int_equal(m.rows, 2);
        assert_memory_equal(m.data, v, sizeof v);
        cmcr_matrix_free(&m);
        free(p);
    }
    /* Header variations numpy's literal_eval would also accept. */
    char *p = craft("forms.npy", 1, 0, "{\"shape\": (2,3,),'fortran_order':False,  'descr':'=f4'}   ", v, sizeof v);
    cmcr_tensors *ts;
    assert_int_equal(cmcr_tensors_load(p, CMCR_FORMAT_NPY, &ts), CMCR_OK);
    assert_int_equal(cmcr_tensors_at(ts, 0)->shape[1], 3);
    cmcr_tensors_free(ts);
    free(p);
}

/* ------------------------------------------------------------------ malformed files */

static void test_malformed_preamble(void **state)
{
    (void)state;
    float v[6] = {0};
    char *p;
    p = raw_file("empty.npy", "", 0);
    expect_load_fail("empty file", p, CMCR_EFORMAT, "file is empty");
    free(p);
    static const char zip[] = "PK\x03\x04 this is a zip";
    p = raw_file("magic.npy", zip, sizeof zip - 1);
    expect_load_fail("bad magic", p, CMCR_EFORMAT, "bad magic");
    free(p);
    p = raw_file("short.npy", "\x93NU", 3);
    expect_load_fail("3-byte file", p, CMCR_EFORMAT, "bad magic");
    free(p);
    p = raw_file("pre.npy", "\x93NUMPY\x01", 7);
    expect_load_fail("file ends inside the preamble", p, CMCR_EFORMAT, "inside the .npy preamble");
    free(p);
    p = craft("ver4.npy", 4, 0, F32_2X3, v, sizeof v);
    expect_load_fail("version 4.0", p, CMCR_EUNSUPPORTED, "unknown .npy format version 4.0");
    free(p);
    p = craft("ver11.npy", 1, 1, F32_2X3, v, sizeof v);
    expect_load_fail("version 1.1", p, CMCR_EUNSUPPORTED, "version 1.1");
    free(p);
    unsigned char past[30] = "\x93NUMPY\x01\x00\xe8\x03{'descr': '<f4'";
    p = raw_file("hlen.npy", past, sizeof past);
    expect_load_fail("header length past EOF", p, CMCR_EFORMAT, "header length 1000 goes past the end");
    free(p);
    unsigned char past2[16] = "\x93NUMPY\x02\x00\x00\x00\x00\x01{}\n";
    p = raw_file("hlen2.npy", past2, sizeof past2);
    expect_load_fail("v2 header length past EOF", p, CMCR_EFORMAT, "goes past the end");
    free(p);
    p = tu_path("missing.npy");
    expect_load_fail("missing file", p, CMCR_EIO, "cannot open");
    free(p);
    p = tu_path("adir.npy");
    assert_int_equal(tu_system("mkdir -p '%s'", p), 0);
    expect_load_fail("a directory", p, CMCR_EIO, "not a regular file");
    free(p);
}

struct bad_header {
    const char *label, *dict;
    cmcr_status st;
    const char *needle;
};

static void test_malformed_header(void **state)
{
    (void)state;
    static const struct bad_header cases[] = {
        {"Fortran order", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", CMCR_EUNSUPPORTED,
         "Fortran order is not supported; save with np.ascontiguousarray"},
        {"object dtype", "{'descr': '|O', 'fortran_order': False, 'shape': (6,), }", CMCR_EUNSUPPORTED,
         "object arrays (dtype '|O')"},
        {"big-endian", "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", CMCR_EUNSUPPORTED,
         "big-endian dtype '>f4' is not supported"},
        {"uint16 dtype", "{'descr': '<u2', 'fortran_order': False, 'shape': (12,), }", CMCR_EUNSUPPORTED,
         "dtype '<u2' is not supported"},
        {"complex dtype", "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", CMCR_EUNSUPPORTED,
         "dtype '<c8' is not supported"},
        {"structured dtype", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }",
         CMCR_EUNSUPPORTED, "structured dtypes"},
        {"shape overflow", "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 4), }",
         CMCR_EFORMAT, "shape overflow"},
        {"shape entry > int64", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
         CMCR_EFORMAT, "does not fit in 64 bits"},
        {"negative shape", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }", CMCR_EFORMAT,
         "shape entry -2 is negative"},
        {"shape not a tuple", "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", CMCR_EFORMAT,
         "is not a tuple"},
        {"shape is a list", "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", CMCR_EFORMAT,
         "must be a tuple"},
        {"9 dimensions", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,6), }",
         CMCR_EUNSUPPORTED, "more than 8 dimensions"},
        {"missing key", "{'descr': '<f4', 'fortran_order': False, }", CMCR_EFORMAT, "missing key 'shape'"},
        {"unknown key", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", CMCR_EFORMAT,
         "unexpected key 'x'"},
        {"duplicate key", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
         CMCR_EFORMAT, "key 'descr' appears twice"},
        {"fortran_order not bool", "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }", CMCR_EFORMAT,
         "must be True or False"},
        {"text after the dict", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x", CMCR_EFORMAT,
         "unexpected text after the closing '}'"},
        {"not a dict", "['descr', '<f4']", CMCR_EFORMAT, "expected '{'"},
        {"misplaced quote", "{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }", CMCR_EFORMAT,
         "unexpected key 'descr: '"},
        {"unterminated string", "{'descr': '<f4", CMCR_EFORMAT, "unterminated string"},
        {"Python 2 long", "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", CMCR_EFORMAT,
         "expected ',' or ')'"},
    };
    float v[6] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "hdr%zu.npy", i);
        char *p = craft(name, 1, 0, cases[i].dict, v, sizeof v);
        expect_load_fail(cases[i].label, p, cases[i].st, cases[i].needle);
        free(p);
    }
    /* No newline at the end of the header. */
    char *p = craft("nonl.npy", 1, 0, F32_2X3, v, sizeof v);
    unsigned char *buf;
    size_t n;
    buf = slurp(p, &n);
    size_t hlen = buf[8] | (size_t)buf[9] << 8;
    buf[10 + hlen - 1] = ' ';
    tu_write_file(p, buf, n);
    free(buf);
    expect_load_fail("header without final newline", p, CMCR_EFORMAT, "does not end with a newline");
    free(p);
}

static void test_malformed_data(void **state)
{
    (void)state;
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    char *p = craft("trunc.npy", 1, 0, F32_2X3, v, 20);
    expect_load_fail("truncated data", p, CMCR_EFORMAT,
                     "truncated: header says 2x3 float32 (24 bytes of data) but the file has 20 bytes after the header");
    expect_reader_fail("truncated data (reader)", p, CMCR_EFORMAT, "truncated");
    free(p);
    p = craft("trail.npy", 1, 0, F32_2X3, v, 32);
    expect_load_fail("trailing bytes", p, CMCR_EFORMAT, "8 unexpected bytes after the data");
    free(p);
    p = craft("nodata.npy", 1, 0, "{'descr': '<i8', 'fortran_order': False, 'shape': (80, 512), }", NULL, 0);
    expect_load_fail("header only", p, CMCR_EFORMAT, "(327680 bytes of data) but the file has 0 bytes");
    free(p);
}

/* A sparse file of just over 16 GiB: refused by the whole-file load, streamed by the reader. */
static void test_over_limit_sparse(void **state)
{
    (void)state;
    char *p = craft("sparse.npy", 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (4194305, 1024), }",
                    NULL, 0);
    size_t hdr = file_len(p);
    if (truncate(p, (off_t)(hdr + 4194305ull * 4096ull)) != 0) {
        free(p);
        tu_skip("cannot make a sparse 16 GiB file here");
    }
    expect_load_fail("data over the 16 GiB limit", p, CMCR_ENOMEM, "exceed the limit of 17179869184 bytes per tensor");
    cmcr_npy_reader *r;
    assert_int_equal(cmcr_npy_reader_open(p, &r), CMCR_OK);
    assert_int_equal(cmcr_npy_reader_rows(r), 4194305);
    float *out = malloc(2 * 1024 * sizeof(float));
    int64_t got;
    assert_int_equal(cmcr_npy_reader_read(r, out, 2, &got), CMCR_OK);
    assert_int_equal(got, 2);
    assert_true(out[0] == 0.0f && out[2047] == 0.0f);
    free(out);
    cmcr_npy_reader_close(r);
    assert_int_equal(unlink(p), 0);
    free(p);
}

/* ------------------------------------------------------------------ streaming reader */

static void test_reader_nan_row(void **state)
{
    (void)state;
    float v[15];
    for (int i = 0; i < 15; i++) v[i] = (float)i;
    v[3 * 3 + 1] = NAN;
    char *p = craft("nan.npy", 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }", v, sizeof v);
    cmcr_npy_reader *r;
    assert_int_equal(cmcr_npy_reader_open(p, &r), CMCR_OK);
    assert_int_equal(cmcr_npy_reader_rows(r), 5);
    assert_int_equal(cmcr_npy_reader_cols(r), 3);
    float out[6];
    int64_t got;
    assert_int_equal(cmcr_npy_reader_read(r, out, 2, &got), CMCR_OK);
    assert_int_equal(got, 2);
    assert_memory_equal(out, v, sizeof out);
    assert_int_equal(cmcr_npy_reader_read(r, out, 2, &got), CMCR_EVALUE);
    printf("MSG\tNaN in row 3 (reader)\t%s\t%s\n", cmcr_status_name(CMCR_EVALUE), cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), p));
    assert_non_null(strstr(cmcr_last_error(), "row 3 contains NaN (column 1)"));
    assert_int_equal(got, 0);
    cmcr_npy_reader_close(r);
    cmcr_matrix m;
    assert_int_equal(cmcr_matrix_load(p, &m), CMCR_EVALUE);
    assert_non_null(strstr(cmcr_last_error(), "row 3"));
    assert_null(m.data);
    free(p);
    uint16_t h[4] = {0x3c00, 0x3c00, 0x7c00, 0};
    p = craft("inf.npy", 1, 0, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", h, sizeof h);
    assert_int_equal(cmcr_matrix_load(p, &m), CMCR_EVALUE);
    printf("MSG\tInf in row 1 (float16)\t%s\t%s\n", cmcr_status_name(CMCR_EVALUE), cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), "row 1 contains Inf (column 0)"));
    free(p);
}

static void test_reader_refusals(void **state)
{
    (void)state;
    float v[6] = {0};
    char *p = craft("vec.npy", 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", v, sizeof v);
    expect_reader_fail("1-D array (reader)", p, CMCR_ESHAPE, "expected a 2-D matrix");
    free(p);
    p = craft("scalar.npy", 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", v, 4);
    expect_reader_fail("0-d array (reader)", p, CMCR_ESHAPE, "shape ()");
    free(p);
    int64_t lab[4] = {0, 1, 2, 3};
    p = craft("labels.npy", 1, 0, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", lab, sizeof lab);
    expect_reader_fail("int64 matrix (reader)", p, CMCR_EUNSUPPORTED, "labels are not embeddings");
    free(p);
    unsigned char bytes[4] = {1, 2, 3, 4};
    p = craft("bytes.npy", 1, 0, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", bytes, sizeof bytes);
    expect_reader_fail("uint8 matrix (reader)", p, CMCR_EUNSUPPORTED, "dtype uint8 holds integers");
    free(p);
    /* the same bytes as the one tensor of a .safetensors file */
    cmcr_tensors *ts = cmcr_tensors_new();
    int64_t s22[2] = {2, 2};
    assert_int_equal(cmcr_tensors_add(ts, "bytes", CMCR_U8, 2, s22, bytes), CMCR_OK);
    p = tu_path("bytes.safetensors");
    assert_int_equal(cmcr_tensors_save(ts, p, CMCR_FORMAT_AUTO), CMCR_OK);
    cmcr_tensors_free(ts);
    cmcr_matrix m;
    assert_int_equal(cmcr_matrix_load(p, &m), CMCR_EUNSUPPORTED);
    assert_non_null(strstr(cmcr_last_error(), "embeddings must be floating point, not U8"));
    free(p);
}

static void test_reader_f16_f64(void **state)
{
    (void)state;
    uint16_t h[6] = {0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff, 0x8000};
    const float hf[6] = {1.0f, -2.0f, 0.333251953125f, 5.9604644775390625e-8f, 65504.0f, -0.0f};
    char *p = craft("f16.npy", 1, 0, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", h, sizeof h);
    cmcr_matrix m;
    assert_int_equal(cmcr_matrix_load(p, &m), CMCR_OK);
    assert_int_equal(m.rows, 2);
    assert_int_equal(m.cols, 3);
    assert_memory_equal(m.data, hf, sizeof hf); /* bitwise, so -0.0 counts */
    cmcr_matrix_free(&m);
    free(p);
    const double d[6] = {0.1, 1e-50, 3.0, -1e30, 1.0 / 3.0, 123456789.0};
    p = craft("f64.npy", 1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", d, sizeof d);
    assert_int_equal(cmcr_matrix_load(p, &m), CMCR_OK);
    assert_int_equal(m.rows, 3);
    for (int i = 0; i < 6; i++) assert_true(m.data[i] == (float)d[i]);
    cmcr_matrix_free(&m);
    free(p);
}

/* Many small reads across the 64 KiB conversion buffer. */
static void test_reader_blocks(void **state)
{
    (void)state;
    const int64_t rows = 2001, cols = 50;
    double *d = malloc(rows * cols * sizeof(double));
    for (int64_t i = 0; i < rows * cols; i++) d[i] = sin((double)i) * 100.0;
    char *p = craft("big.npy", 1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (2001, 50), }", d,
                    rows * cols * sizeof(double));
    cmcr_npy_reader *r;
    assert_int_equal(cmcr_npy_reader_open(p, &r), CMCR_OK);
    float *out = malloc(333 * cols * sizeof(float));
    int64_t got, seen = 0;
    do {
        assert_int_equal(cmcr_npy_reader_read(r, out, 333, &got), CMCR_OK);
        for (int64_t i = 0; i < got * cols; i++) assert_true(out[i] == (float)d[seen * cols + i]);
        seen += got;
    } while (got > 0);
    assert_int_equal(seen, rows);
    assert_int_equal(cmcr_npy_reader_read(r, out, 10, &got), CMCR_OK);
    assert_int_equal(got, 0);
    assert_int_equal(cmcr_npy_reader_read(r, out, -1, &got), CMCR_EINVAL);
    cmcr_npy_reader_close(r);
    free(out);
    free(d);
    free(p);
}

/* ------------------------------------------------------------------ streaming writer */

static bool temp_files_left(const char *prefix)
{
    DIR *dir = opendir(tu_tmpdir());
    struct dirent *e;
    bool found = false;
    while ((e = readdir(dir)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = true;
    closedir(dir);
    return found;
}

static void test_writer(void **state)
{
    (void)state;
    /* Zero rows. */
    char *p = tu_path("w0.npy");
    cmcr_npy_writer *w;
    assert_int_equal(cmcr_npy_writer_open(p, 4, &w), CMCR_OK);
    assert_int_equal(cmcr_npy_writer_commit(w), CMCR_OK);
    assert_int_equal(file_len(p), 128);
    cmcr_tensors *ts;
    assert_int_equal(cmcr_tensors_load(p, CMCR_FORMAT_NPY, &ts), CMCR_OK);
    const cmcr_tensor *t = cmcr_tensors_at(ts, 0);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->shape[1], 4);
    cmcr_tensors_free(ts);
    free(p);
    /* 0, then 5, then 2 rows. */
    float v[21];
    for (int i = 0; i < 21; i++) v[i] = (float)i * 0.5f - 3.0f;
    p = tu_path("w7.npy");
    assert_int_equal(cmcr_npy_writer_open(p, 3, &w), CMCR_OK);
    assert_int_equal(cmcr_npy_writer_write(w, v, 0), CMCR_OK);
    assert_int_equal(cmcr_npy_writer_write(w, v, 5), CMCR_OK);
    assert_int_equal(cmcr_npy_writer_write(w, v + 15, 2), CMCR_OK);
    assert_int_equal(cmcr_npy_writer_write(w, v, -1), CMCR_EINVAL);
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0); /* not visible before commit */
    assert_int_equal(cmcr_npy_writer_commit(w), CMCR_OK);
    cmcr_matrix m;
    assert_int_equal(cmcr_matrix_load(p, &m), CMCR_OK);
    assert_int_equal(m.rows, 7);
    assert_int_equal(m.cols, 3);
    assert_memory_equal(m.data, v, sizeof v);
    cmcr_matrix_free(&m);
    assert_false(temp_files_left("w7.npy.tmp"));
    free(p);
    /* Abort leaves nothing behind. */
    p = tu_path("wabort.npy");
    assert_int_equal(cmcr_npy_writer_open(p, 3, &w), CMCR_OK);
    assert_int_equal(cmcr_npy_writer_write(w, v, 7), CMCR_OK);
    cmcr_npy_writer_abort(w);
    assert_int_not_equal(stat(p, &st), 0);
    assert_false(temp_files_left("wabort.npy"));
    free(p);
    p = tu_path("wneg.npy");
    assert_int_equal(cmcr_npy_writer_open(p, -1, &w), CMCR_EINVAL);
    assert_null(w);
    free(p);
    p = tu_path("no-such-dir/x.npy");
    assert_int_equal(cmcr_npy_writer_open(p, 3, &w), CMCR_EIO);
    assert_non_null(strstr(cmcr_last_error(), p));
    free(p);
}

/* ------------------------------------------------------------------ NumPy interop */

static const char *PY_WRITE =
    "import sys, numpy as np\n"
    "from numpy.lib import format as fmt\n"
    "d = sys.argv[1]\n"
    "def save(name, a):\n"
    "    np.save(d + '/' + name + '.npy', a)\n"
    "    open(d + '/' + name + '.bin', 'wb').write(a.tobytes())\n"
    "x = (np.arange(80 * 512, dtype=np.float64).reshape(80, 512) * 0.37 - 1000.0) / 7.0\n"
    "save('py_f4', x.astype(np.float32))\n"
    "save('py_f2', x[:3, :5].astype(np.float16))\n"
    "save('py_f8', x[:4].copy())\n"
    "save('py_i8', np.arange(-5, 7, dtype=np.int64).reshape(3, 4))\n"
    "save('py_i4', np.arange(10, dtype=np.int32))\n"
    "save('py_0d', np.array(2.5, dtype=np.float64))\n"
    "save('py_1d', np.linspace(0, 1, 11, dtype=np.float32))\n"
    "save('py_empty', np.zeros((0, 7), dtype=np.float32))\n"
    "with open(d + '/py_v2.npy', 'wb') as f:\n"
    "    fmt.write_array(f, x[:2, :3].astype(np.float32), version=(2, 0))\n"
    "open(d + '/py_v2.bin', 'wb').write(x[:2, :3].astype(np.float32).tobytes())\n"
    "np.save(d + '/py_fortran.npy', np.asfortranarray(x[:3, :4].astype(np.float32)))\n"
    "np.save(d + '/py_be.npy', x[:2].astype('>f4'))\n"
    "np.save(d + '/py_obj.npy', np.array([1, 'a', None], dtype=object), allow_pickle=True)\n"
    "np.save(d + '/py_u2.npy', np.arange(4, dtype=np.uint16))\n"
    "save('py_u1', np.array([0, 1, 127, 128, 255], dtype=np.uint8))\n";

static void check_py_array(const char *name, cmcr_dtype dt, int ndim, int64_t d0, int64_t d1)
{
    char npy[64], bin[64];
    snprintf(npy, sizeof npy, "%s.npy", name);
    snprintf(bin, sizeof bin, "%s.bin", name);
    char *p = tu_path(npy), *pb = tu_path(bin);
    cmcr_tensors *ts;
    assert_int_equal(cmcr_tensors_load(p, CMCR_FORMAT_AUTO, &ts), CMCR_OK);
    const cmcr_tensor *t = cmcr_tensors_at(ts, 0);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    if (ndim > 0) assert_int_equal(t->shape[0], d0);
    if (ndim > 1) assert_int_equal(t->shape[1], d1);
    size_t n;
    unsigned char *raw = slurp(pb, &n);
    assert_int_equal(t->nbytes, n);
    if (n) assert_memory_equal(t->data, raw, n);
    free(raw);
    cmcr_tensors_free(ts);
    free(p);
    free(pb);
}

static void test_numpy_writes_library_reads(void **state)
{
    (void)state;
    const char *py = tu_python_numpy();
    if (!py) tu_skip("no python with numpy");
    char *script = tu_path("write.py");
    tu_write_file(script, PY_WRITE, strlen(PY_WRITE));
    assert_int_equal(tu_system("%s '%s' '%s'", py, script, tu_tmpdir()), 0);
    check_py_array("py_f4", CMCR_F32, 2, 80, 512);
    check_py_array("py_f2", CMCR_F16, 2, 3, 5);
    check_py_array("py_f8", CMCR_F64, 2, 4, 512);
    check_py_array("py_i8", CMCR_I64, 2, 3, 4);
    check_py_array("py_i4", CMCR_I32, 1, 10, 0);
    check_py_array("py_0d", CMCR_F64, 0, 0, 0);
    check_py_array("py_1d", CMCR_F32, 1, 11, 0);
    check_py_array("py_empty", CMCR_F32, 2, 0, 7);
    check_py_array("py_u1", CMCR_U8, 1, 5, 0);
    check_py_array("py_v2", CMCR_F32, 2, 2, 3);
    /* f16 and f8 through the float32 matrix path. */
    cmcr_matrix m;
    char *p = tu_path("py_f2.npy");
    assert_int_equal(cmcr_matrix_load(p, &m), CMCR_OK);
    assert_int_equal(m.rows, 3);
    assert_int_equal(m.cols, 5);
    cmcr_matrix_free(&m);
    free(p);
    static const struct { const char *name, *label; cmcr_status st; const char *needle; } refused[] = {
        {"py_fortran.npy", "numpy Fortran-order array", CMCR_EUNSUPPORTED, "Fortran order"},
        {"py_be.npy", "numpy '>f4' array", CMCR_EUNSUPPORTED, "big-endian dtype '>f4'"},
        {"py_obj.npy", "numpy object array", CMCR_EUNSUPPORTED, "object arrays"},
        {"py_u2.npy", "numpy uint16 array", CMCR_EUNSUPPORTED, "dtype '<u2'"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        p = tu_path(refused[i].name);
        expect_load_fail(refused[i].label, p, refused[i].st, refused[i].needle);
        free(p);
    }
    free(script);
}

static const char *PY_CHECK =
    "import io, sys, numpy as np\n"
    "from numpy.lib import format as fmt\n"
    "d = sys.argv[1]\n"
    "exact = hasattr(fmt, 'GROWTH_AXIS_MAX_DIGITS')\n"
    "for name, shape, dt in [('c_stream', (37, 9), '<f4'), ('c_save', (37, 9), '<f4'),\n"
    "                        ('c_zero', (0, 5), '<f4'), ('c_i8', (4,), '<i8'), ('c_f2', (2, 2), '<f2'),\n"
    "                        ('c_0d', (), '<f8'), ('c_u1', (2, 3), '|u1')]:\n"
    "    p = d + '/' + name + '.npy'\n"
    "    a = np.load(p)\n"
    "    assert a.shape == shape and a.dtype == np.dtype(dt), (name, a.shape, a.dtype)\n"
    "    raw = open(d + '/' + name + '.bin', 'rb').read()\n"
    "    assert a.tobytes() == raw, name\n"
    "    if exact:\n"
    "        b = io.BytesIO(); np.save(b, a)\n"
    "        assert b.getvalue() == open(p, 'rb').read(), name + ': differs from np.save'\n"
    "print('numpy check ok, byte-identical to np.save:', exact)\n";

static void save_with_bin(const char *name, cmcr_dtype dt, int ndim, const int64_t *shape, const void *data)
{
    char fn[64];
    cmcr_tensors *ts = cmcr_tensors_new();
    assert_int_equal(cmcr_tensors_add(ts, "a", dt, ndim, shape, data), CMCR_OK);
    snprintf(fn, sizeof fn, "%s.npy", name);
    char *p = tu_path(fn);
    assert_int_equal(cmcr_tensors_save(ts, p, CMCR_FORMAT_NPY), CMCR_OK);
    snprintf(fn, sizeof fn, "%s.bin", name);
    char *pb = tu_path(fn);
    tu_write_file(pb, data, cmcr_tensors_at(ts, 0)->nbytes);
    cmcr_tensors_free(ts);
    free(p);
    free(pb);
}

static void test_library_writes_numpy_reads(void **state)
{
    (void)state;
    const char *py = tu_python_numpy();
    if (!py) tu_skip("no python with numpy");
    float v[37 * 9];
    for (int i = 0; i < 37 * 9; i++) v[i] = (float)sin(i * 0.1) * 3.0f + (i % 7 == 0 ? 1e-38f : 0.0f);
    char *p = tu_path("c_stream.npy");
    cmcr_npy_writer *w;
    assert_int_equal(cmcr_npy_writer_open(p, 9, &w), CMCR_OK);
    assert_int_equal(cmcr_npy_writer_write(w, v, 10), CMCR_OK);
    assert_int_equal(cmcr_npy_writer_write(w, v + 90, 27), CMCR_OK);
    assert_int_equal(cmcr_npy_writer_commit(w), CMCR_OK);
    char *pb = tu_path("c_stream.bin");
    tu_write_file(pb, v, sizeof v);
    free(p);
    free(pb);
    int64_t s379[2] = {37, 9}, s05[2] = {0, 5}, s4[1] = {4}, s22[2] = {2, 2};
    save_with_bin("c_save", CMCR_F32, 2, s379, v);
    save_with_bin("c_zero", CMCR_F32, 2, s05, v);
    int64_t i8[4] = {INT64_MIN, -1, 0, INT64_MAX};
    save_with_bin("c_i8", CMCR_I64, 1, s4, i8);
    uint16_t h[4] = {0x3c00, 0x8001, 0x7bff, 0x0400};
    save_with_bin("c_f2", CMCR_F16, 2, s22, h);
    double d = -7.25;
    save_with_bin("c_0d", CMCR_F64, 0, NULL, &d);
    unsigned char u1[6] = {0, 1, 2, 127, 128, 255};
    int64_t s23[2] = {2, 3};
    save_with_bin("c_u1", CMCR_U8, 2, s23, u1);
    char *script = tu_path("check.py");
    tu_write_file(script, PY_CHECK, strlen(PY_CHECK));
    assert_int_equal(tu_system("%s '%s' '%s'", py, script, tu_tmpdir()), 0);
    free(script);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_header_matches_numpy),
        cmocka_unit_test(test_bf16_refused),
        cmocka_unit_test(test_versions_2_and_3),
        cmocka_unit_test(test_malformed_preamble),
        cmocka_unit_test(test_malformed_header),
        cmocka_unit_test(test_malformed_data),
        cmocka_unit_test(test_over_limit_sparse),
        cmocka_unit_test(test_reader_nan_row),
        cmocka_unit_test(test_reader_refusals),
        cmocka_unit_test(test_reader_f16_f64),
        cmocka_unit_test(test_reader_blocks),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_numpy_writes_library_reads),
        cmocka_unit_test(test_library_writes_numpy_reads),
    };
    return tu_run_group(tests);
}
