/* test_safetensors.c - safetensors load/save, malformed headers (through the stream, the map
 * and memory alike), the mapped load, Python interop. */
#include "testutil.h"
#include "runtime/file.h"
#include "io/io.h"
#include "runtime/core.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */


static unsigned char *slurp(const char *path, size_t *n)
{
    unsigned char *buf;
    assert_int_equal(file_read_all(path, 1u << 30, &buf, n), CMCR_OK);
    return buf;
}

/* 8-byte little-endian hsize, then json (jlen bytes), then data. */
static char *craft_raw(const char *name, uint64_t hsize, const char *json, size_t jlen, const void *data, size_t n)
{
    unsigned char *buf = malloc(8 + jlen + n + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hsize >> (8 * i));
    memcpy(buf + 8, json, jlen);
    if (n) memcpy(buf + 8 + jlen, data, n);
    char *path = tu_path(name);
    tu_write_file(path, buf, 8 + jlen + n);
    free(buf);
    return path;
}

static char *craft(const char *name, const char *json, const void *data, size_t n)
{
    return craft_raw(name, strlen(json), json, strlen(json), data, n);
}

/* Files up to this size are also loaded from memory (a copy of the file); larger ones are the
 * sparse files of the limit tests. */
#define MEMORY_MAX (1u << 20)

/* The file read from memory (named path), or NULL when it is missing or too large. */
static unsigned char *slurp_small(const char *path, size_t *n)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > MEMORY_MAX) return NULL;
    return slurp(path, n);
}

/* 1 when this process maps the file path (/proc/self/maps), 0 when not, -1 when it cannot tell. */
static int is_mapped(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[4096];
    size_t n = strlen(path);
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        const char *at = strstr(line, path);
        found = at && (at[n] == '\n' || at[n] == ' ');
    }
    fclose(f);
    return found;
}

/* The mapped load and the load from memory refuse path as the stream does: the same status and
 * the same message; the refused mapping is gone. */
static void expect_same_refusal(const char *path, cmcr_status want, const char *want_msg)
{
    cmcr_tensors *ts = (cmcr_tensors *)1;
    assert_int_equal(tensors_load_mapped(path, CMCR_FORMAT_SAFETENSORS, &ts), want);
    assert_null(ts);
    assert_string_equal(cmcr_last_error(), want_msg);
    assert_true(is_mapped(path) <= 0);
    size_t n = 0;
    unsigned char *buf = slurp_small(path, &n);
    if (!buf) return;
    ts = (cmcr_tensors *)1;
    assert_int_equal(cmcr_tensors_load_memory(buf, n, CMCR_FORMAT_SAFETENSORS, path, &ts), want);
    assert_null(ts);
    assert_string_equal(cmcr_last_error(), want_msg);
    free(buf);
}

/* Refused through the stream with st and a message naming path and needle, and the same way
 * through the map and from memory. */
static void expect_fail(const char *label, const char *path, cmcr_status st, const char *needle)
{
    tu_expect_load_fail(CMCR_FORMAT_SAFETENSORS, label, path, st, needle);
    char *msg = strdup(cmcr_last_error());
    assert_non_null(msg);
    expect_same_refusal(path, st, msg);
    free(msg);
}

/* True when the tensors of ts lie back to back in memory, in set (= data) order: views of
 * one buffer, as a mapping gives, never separate allocations. */
static bool contiguous(const cmcr_tensors *ts)
{
    for (size_t i = 1; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *a = cmcr_tensors_at(ts, i - 1), *b = cmcr_tensors_at(ts, i);
        if ((const char *)a->data + a->nbytes != (const char *)b->data) return false;
    }
    return true;
}

/* ------------------------------------------------------------------ round trip */

static cmcr_tensors *sample_set(void)
{
    cmcr_tensors *ts = cmcr_tensors_new();
    float w[6] = {1.5f, -2.25f, 3.0f, 0.1f, 1e-30f, -0.0f};
    uint16_t h[4] = {0x3c00, 0xc000, 0x3555, 0x0001};
    uint16_t b[4] = {0x3f80, 0xc000, 0x7f7f, 0x0001};
    int64_t i64[3] = {INT64_MIN, 42, INT64_MAX};
    double d = 3.141592653589793;
    int32_t i32 = 0;
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s22[2] = {2, 2}, s3[1] = {3}, s0[2] = {0, 5};
    assert_int_equal(cmcr_tensors_add(ts, "Head_A.0.weight", CMCR_F32, 2, s23, w), CMCR_OK);
    assert_int_equal(cmcr_tensors_add(ts, "half", CMCR_F16, 1, s4, h), CMCR_OK);
    assert_int_equal(cmcr_tensors_add(ts, "brain", CMCR_BF16, 2, s22, b), CMCR_OK);
    assert_int_equal(cmcr_tensors_add(ts, "num_batches_tracked", CMCR_I64, 1, s3, i64), CMCR_OK);
    assert_int_equal(cmcr_tensors_add(ts, "scalar", CMCR_F64, 0, NULL, &d), CMCR_OK);
    assert_int_equal(cmcr_tensors_add(ts, "empty \"quoted\" name", CMCR_I32, 2, s0, &i32), CMCR_OK);
    const char paths[7] = "/a\0/bc\0"; /* bytes, as a gallery's paths */
    int64_t s7[1] = {7};
    assert_int_equal(cmcr_tensors_add(ts, "paths", CMCR_U8, 1, s7, paths), CMCR_OK);
    assert_int_equal(cmcr_tensors_set_meta(ts, "preset", "clap-clip"), CMCR_OK);
    assert_int_equal(cmcr_tensors_set_meta(ts, "note", "h\xc3\xa9llo \"quoted\"\n\\"), CMCR_OK);
    return ts;
}

static void assert_same_sets(const cmcr_tensors *a, const cmcr_tensors *b)
{
    assert_int_equal(cmcr_tensors_count(b), cmcr_tensors_count(a));
    for (size_t i = 0; i < cmcr_tensors_count(a); i++) {
        const cmcr_tensor *x = cmcr_tensors_at(a, i), *y = cmcr_tensors_at(b, i);
        assert_string_equal(y->name, x->name);
        assert_int_equal(y->dtype, x->dtype);
        assert_int_equal(y->ndim, x->ndim);
        for (int k = 0; k < x->ndim; k++) assert_int_equal(y->shape[k], x->shape[k]);
        assert_int_equal(y->nbytes, x->nbytes);
        if (x->nbytes) assert_memory_equal(y->data, x->data, x->nbytes);
    }
    assert_int_equal(cmcr_tensors_meta_count(b), cmcr_tensors_meta_count(a));
    for (size_t i = 0; i < cmcr_tensors_meta_count(a); i++) {
        const char *k, *v;
        cmcr_tensors_meta_at(a, i, &k, &v);
        assert_non_null(cmcr_tensors_get_meta(b, k));
        assert_string_equal(cmcr_tensors_get_meta(b, k), v);
    }
}

/* path loaded by the stream (returned), and through the map and from memory, which must give
 * byte-identical sets; the mapped one views the file (mapped until freed; with two tensors or
 * more, contiguous). */
static cmcr_tensors *load_each_way(const char *path)
{
    cmcr_tensors *ts = NULL, *mapped = NULL, *mem = NULL;
    assert_int_equal(cmcr_tensors_load(path, CMCR_FORMAT_SAFETENSORS, &ts), CMCR_OK);
    assert_int_equal(tensors_load_mapped(path, CMCR_FORMAT_AUTO, &mapped), CMCR_OK);
    assert_same_sets(ts, mapped);
    assert_true(contiguous(mapped));
    assert_true(is_mapped(path) != 0);
    size_t n;
    unsigned char *buf = slurp(path, &n);
    assert_int_equal(cmcr_tensors_load_memory(buf, n, CMCR_FORMAT_SAFETENSORS, path, &mem), CMCR_OK);
    free(buf); /* the memory load copied what it needs */
    assert_same_sets(ts, mem);
    cmcr_tensors_free(mapped);
    assert_true(is_mapped(path) <= 0); /* unmapped with the set */
    cmcr_tensors_free(mem);
    return ts;
}

static void test_roundtrip(void **state)
{
    (void)state;
    cmcr_tensors *ts = sample_set(), *back;
    char *p = tu_path("rt.safetensors");
    assert_int_equal(cmcr_tensors_save(ts, p, CMCR_FORMAT_AUTO), CMCR_OK);
    assert_int_equal(cmcr_tensors_load(p, CMCR_FORMAT_AUTO, &back), CMCR_OK);
    assert_same_sets(ts, back);
    cmcr_tensors_free(back);
    back = load_each_way(p);
    assert_same_sets(ts, back);
    cmcr_tensors_free(back);
    /* A set without metadata has no "__metadata__" key. */
    cmcr_tensors *plain = cmcr_tensors_new();
    float one = 1.0f;
    int64_t s1[1] = {1};
    assert_int_equal(cmcr_tensors_add(plain, "x", CMCR_F32, 1, s1, &one), CMCR_OK);
    assert_int_equal(safetensors_save(plain, p), CMCR_OK);
    size_t n;
    unsigned char *buf = slurp(p, &n);
    assert_null(strstr((char *)buf + 8, "__metadata__"));
    assert_memory_equal(buf + 8, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 54);
    free(buf);
    cmcr_tensors_free(plain);
    cmcr_tensors_free(ts);
    free(p);
}

/* Header size a multiple of 8, space padding, contiguous offsets in set order. */
static void test_layout(void **state)
{
    (void)state;
    cmcr_tensors *ts = sample_set();
    char *p = tu_path("layout.safetensors");
    assert_int_equal(safetensors_save(ts, p), CMCR_OK);
    size_t n;
    unsigned char *buf = slurp(p, &n);
    uint64_t hsize = 0;
    for (int i = 7; i >= 0; i--) hsize = hsize << 8 | buf[i];
    assert_int_equal(hsize % 8, 0);
    assert_true(hsize + 8 <= n);
    const char *end;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf + 8, hsize, &end, 0);
    assert_non_null(root);
    for (const char *q = end; q < (const char *)buf + 8 + hsize; q++) assert_int_equal(*q, ' ');
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    assert_true(cJSON_IsObject(meta));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "preset")->valuestring, "clap-clip");
    uint64_t offset = 0;
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        cJSON *e = cJSON_GetObjectItemCaseSensitive(root, t->name);
        assert_non_null(e);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring, cmcr_dtype_name(t->dtype));
        cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        assert_int_equal((uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble, offset);
        assert_int_equal((uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble, offset + t->nbytes);
        if (t->nbytes) assert_memory_equal(buf + 8 + hsize + offset, t->data, t->nbytes);
        offset += t->nbytes;
    }
    assert_int_equal(8 + hsize + offset, n);
    cJSON_Delete(root);
    free(buf);
    cmcr_tensors_free(ts);
    free(p);
}

/* Tensors come out in the order of their data, whatever the JSON order. */
static void test_offset_order(void **state)
{
    (void)state;
    const char *json = "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                       "\"__metadata__\":{\"k\":\"v\"},"
                       "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                       "\"a\":{\"dtype\":\"I32\",\"shape\":[1,1],\"data_offsets\":[0,4]}}   ";
    unsigned char data[12];
    for (int i = 0; i < 12; i++) data[i] = (unsigned char)i;
    char *p = craft("order.safetensors", json, data, sizeof data);
    cmcr_tensors *ts = load_each_way(p);
    assert_int_equal(cmcr_tensors_count(ts), 3);
    assert_string_equal(cmcr_tensors_at(ts, 0)->name, "a");
    assert_string_equal(cmcr_tensors_at(ts, 1)->name, "z");
    assert_string_equal(cmcr_tensors_at(ts, 2)->name, "b");
    assert_memory_equal(cmcr_tensors_at(ts, 2)->data, data + 4, 8);
    assert_memory_equal(cmcr_tensors_at(ts, 0)->data, data, 4);
    assert_string_equal(cmcr_tensors_get_meta(ts, "k"), "v");
    cmcr_tensors_free(ts);
    free(p);
}

static void test_save_refusals(void **state)
{
    (void)state;
    cmcr_tensors *ts = cmcr_tensors_new();
    float one = 1.0f;
    int64_t s1[1] = {1};
    assert_int_equal(cmcr_tensors_add(ts, "__metadata__", CMCR_F32, 1, s1, &one), CMCR_OK);
    char *p = tu_path("meta-name.safetensors");
    assert_int_equal(safetensors_save(ts, p), CMCR_EINVAL);
    printf("MSG\tsave: tensor named __metadata__\t%s\t%s\n", cmcr_status_name(CMCR_EINVAL), cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), p));
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
    free(p);
    cmcr_tensors_free(ts);
}

/* ------------------------------------------------------------------ malformed files */

struct bad_json {
    const char *label, *json;
    size_t data_bytes;
    cmcr_status st;
    const char *needle;
};

static void test_malformed_headers(void **state)
{
    (void)state;
    static const struct bad_json cases[] = {
        {"JSON not an object", "[1, 2, 3]", 0, CMCR_EFORMAT, "JSON but not an object"},
        {"bad JSON", "{\"a\": {\"dtype\": ", 0, CMCR_EFORMAT, "not valid JSON"},
        {"text after the JSON", "{} {}", 0, CMCR_EFORMAT, "text after the JSON value"},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "tensor 'a': unknown dtype \"F17\""},
        {"U16 dtype", "{\"a\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, CMCR_EUNSUPPORTED,
         "dtype U16 is not supported"},
        {"BOOL dtype", "{\"a\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, CMCR_EUNSUPPORTED,
         "dtype BOOL is not supported"},
        {"dtype not a string", "{\"a\":{\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "\"dtype\" must be a string"},
        {"negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "a shape entry is negative (-1)"},
        {"fractional shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "a shape entry is not an integer (1.5)"},
        {"shape entry a string", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
         CMCR_EFORMAT, "a shape entry must be a number"},
        {"shape not an array", "{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "\"shape\" must be an array"},
        {"9 dimensions", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         CMCR_EUNSUPPORTED, "9 dimensions (at most 8)"},
        {"shape/size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24,
         CMCR_EFORMAT, "F32 [2, 3] needs 24 bytes but data_offsets [0, 20] hold 20"},
        {"offsets past the end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 16,
         CMCR_EFORMAT, "data_offsets [0, 24] go past the end of the data (16 bytes)"},
        {"offsets backwards", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 16, CMCR_EFORMAT,
         "run backwards"},
        {"offsets not a pair", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 16, CMCR_EFORMAT,
         "\"data_offsets\" must be an array [begin, end]"},
        {"offset too large", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[1e300,1e300]}}", 16,
         CMCR_EFORMAT, "data_offsets[0] 1e+300 is too large"},
        {"offset 2^53+1", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9007199254740993,0]}}", 16,
         CMCR_EFORMAT, "is too large (2^53 or more)"},
        {"overlapping tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
         24, CMCR_EFORMAT, "tensors 'a' [0, 16) and 'b' [8, 24) overlap"},
        {"same range twice",
         "{\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, CMCR_EFORMAT, "tensors 'b' [0, 8) and 'a' [0, 8) overlap"},
        {"duplicate tensor name",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, CMCR_EFORMAT, "tensor 'a' appears twice"},
        {"shape product overflow",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "shape overflow: F32 [4294967296, 4294967296, 4] would need more than 2^64 bytes"},
        {"non-string metadata", "{\"__metadata__\":{\"epoch\":3}}", 0, CMCR_EFORMAT,
         "\"__metadata__\" value of key \"epoch\" is not a string"},
        {"metadata not an object", "{\"__metadata__\":[\"a\"]}", 0, CMCR_EFORMAT,
         "\"__metadata__\" must be an object of strings"},
        {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, CMCR_EFORMAT, "appears 2 times"},
        {"entry not an object", "{\"a\":[0,4]}", 4, CMCR_EFORMAT, "tensor 'a': entry must be an object"},
        {"invalid UTF-8", "{\"\xff\":{}}", 0, CMCR_EFORMAT, "not valid UTF-8 JSON text (bad byte 0xff at offset 2)"},
        {"control byte", "{\"a\tb\x01\":{}}", 0, CMCR_EFORMAT, "bad byte 0x01"},
    };
    unsigned char data[32] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.safetensors", i);
        char *p = craft(name, cases[i].json, data, cases[i].data_bytes);
        expect_fail(cases[i].label, p, cases[i].st, cases[i].needle);
        free(p);
    }
}


/* The one name rule (tensors_check_name) for tensor names and metadata keys, text without control
 * characters for metadata values; names from the file are escaped in every message. */
static void test_hostile_names(void **state)
{
    (void)state;
    static const struct bad_json cases[] = {
        {"tensor name with a newline", "{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         CMCR_EFORMAT, "tensor name 'a\\x0ab' contains control characters"},
        {"tensor name with an escape sequence",
         "{\"\\u001b[2J\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "tensor name '\\x1b[2J' contains control characters"},
        {"tensor name with a C1 control (U+009B, CSI)",
         "{\"a\\u009b31m\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "tensor name 'a\\xc2\\x9b31m' contains control characters"},
        {"empty tensor name", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "tensor name '' is empty"},
        {"metadata key with a newline", "{\"__metadata__\":{\"k\\n\":\"v\"}}", 0, CMCR_EFORMAT,
         "metadata key 'k\\x0a' contains control characters"},
        {"metadata value with an escape sequence", "{\"__metadata__\":{\"k\":\"\\u001b]0;x\\u0007\"}}", 0,
         CMCR_EFORMAT, "metadata key 'k': value '\\x1b]0;x\\x07' contains control characters"},
        {"dtype with an escape sequence", "{\"a\":{\"dtype\":\"\\u001b[31m\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         4, CMCR_EFORMAT, "unknown dtype \"\\x1b[31m\""},
        {"bytes after the data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
         CMCR_EFORMAT, "8 unexpected bytes after the data: the tensors end at byte 4 of the 12 bytes"},
        {"bytes between tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12, CMCR_EFORMAT, "bytes [4, 8) of the data, before tensor 'b', belong to no tensor"},
        {"tensor name with a NUL (\\u0000 would cut it short)",
         "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMCR_EFORMAT,
         "header has a \\u0000 escape (a NUL character) at byte 3"},
        {"metadata key with a NUL", "{\"__metadata__\":{\"k\\u0000x\":\"v\"}}", 0, CMCR_EFORMAT,
         "header has a \\u0000 escape"},
        {"data but only empty tensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 8,
         CMCR_EFORMAT, "8 unexpected bytes after the data"},
    };
    unsigned char data[32] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "name%zu.safetensors", i);
        char *p = craft(name, cases[i].json, data, cases[i].data_bytes);
        expect_fail(cases[i].label, p, cases[i].st, cases[i].needle);
        assert_null(strchr(cmcr_last_error(), '\x1b'));
        free(p);
    }
    char long_name[600];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    char *json = malloc(700);
    snprintf(json, 700, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", long_name);
    char *p = craft("long.safetensors", json, data, 4);
    expect_fail("tensor name of 599 bytes", p, CMCR_EFORMAT, "is longer than 512 bytes");
    free(p);
    free(json);

    /* a backslash followed by the text u0000 is no NUL; a value may hold CR LF */
    p = craft("textual.safetensors",
              "{\"a\\\\u0000\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"__metadata__\":{\"k\":\"line\\r\\n\"}}", data, 4);
    cmcr_tensors *ok = load_each_way(p);
    assert_non_null(cmcr_tensors_find(ok, "a\\u0000"));
    assert_string_equal(cmcr_tensors_get_meta(ok, "k"), "line\r\n");
    cmcr_tensors_free(ok);
    free(p);

    /* what cannot be read cannot be written either: the set refuses such names */
    cmcr_tensors *ts = cmcr_tensors_new();
    float one = 1;
    int64_t s1[1] = {1};
    assert_int_equal(cmcr_tensors_add(ts, "a\nb", CMCR_F32, 1, s1, &one), CMCR_EINVAL);
    assert_string_equal(cmcr_last_error(), "tensor name 'a\\x0ab' contains control characters");
    assert_int_equal(cmcr_tensors_set_meta(ts, "k", "\x1b[2J"), CMCR_EINVAL);
    assert_string_equal(cmcr_last_error(), "metadata key 'k': value '\\x1b[2J' contains control characters");
    assert_int_equal(cmcr_tensors_count(ts), 0);
    assert_int_equal(cmcr_tensors_meta_count(ts), 0);
    cmcr_tensors_free(ts);
}

static void test_malformed_sizes(void **state)
{
    (void)state;
    const char *json = "{}      ";
    char *p;
    p = tu_path("empty.safetensors");
    tu_write_file(p, "", 0);
    expect_fail("empty file", p, CMCR_EFORMAT, "file is empty");
    free(p);
    p = tu_path("short.safetensors");
    tu_write_file(p, "\x08\0\0\0\0", 5);
    expect_fail("5-byte file", p, CMCR_EFORMAT, "file is 5 bytes, too short");
    free(p);
    p = craft_raw("big.safetensors", 1000, json, 8, NULL, 0);
    expect_fail("header size larger than file", p, CMCR_EFORMAT,
                "header size 1000 is larger than the 8 bytes that follow it");
    free(p);
    p = craft_raw("huge.safetensors", UINT64_MAX, json, 8, NULL, 0);
    expect_fail("header size 2^64-1", p, CMCR_EFORMAT, "header size 18446744073709551615 is larger");
    free(p);
    p = craft_raw("zero.safetensors", 0, json, 8, NULL, 0);
    expect_fail("header size 0", p, CMCR_EFORMAT, "header size is 0");
    free(p);
    p = tu_path("missing.safetensors");
    expect_fail("missing file", p, CMCR_EIO, "cannot open");
    free(p);
    p = tu_path("a-folder.safetensors");
    assert_int_equal(tu_system("mkdir -p '%s'", p), 0);
    expect_fail("a folder", p, CMCR_EIO, "not a regular file");
    free(p);
}


static void test_too_many_tensors(void **state)
{
    (void)state;
    size_t n = CMCR_MAX_TENSORS + 1, cap = n * 64 + 16, len = 0;
    char *json = malloc(cap);
    json[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s\"t%zu\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                                i ? "," : "", i);
    json[len++] = '}';
    json[len] = '\0';
    char *p = craft("many.safetensors", json, NULL, 0);
    expect_fail("100001 tensors", p, CMCR_ENOMEM, "more than 100000 tensors");
    free(p);
    free(json);
}

/* A sparse file with one tensor of just over 16 GiB. */
static void test_over_limit_sparse(void **state)
{
    (void)state;
    const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4194305,1024],\"data_offsets\":[0,17179873280]}}";
    char *p = craft("sparse.safetensors", json, NULL, 0);
    if (truncate(p, (off_t)(8 + strlen(json) + 17179873280ull)) != 0) {
        free(p);
        tu_skip("cannot make a sparse 16 GiB file here");
    }
    expect_fail("tensor over the 16 GiB limit", p, CMCR_ENOMEM, "exceed the limit of 17179869184 bytes per tensor");
    assert_int_equal(unlink(p), 0);
    free(p);

    /* 64 GiB + 8 bytes of data in one file, refused before a tensor is read */
    json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    p = craft("sparse64.safetensors", json, NULL, 0);
    assert_int_equal(truncate(p, (off_t)(8 + strlen(json) + (64ull << 30) + 8)), 0);
    expect_fail("64 GiB of data in one file", p, CMCR_ENOMEM, "more than the limit of 68719476736 per file");
    assert_int_equal(unlink(p), 0);
    free(p);
}

/* ------------------------------------------------------------------ mapping */

/* Every cut of a good file (each length short of whole) is refused, through the map and from
 * memory exactly as through the stream. */
static void test_truncated_each_length(void **state)
{
    (void)state;
    cmcr_tensors *ts = sample_set();
    char *p = tu_path("whole.safetensors"), *cut = tu_path("cut.safetensors");
    assert_int_equal(safetensors_save(ts, p), CMCR_OK);
    size_t n;
    unsigned char *buf = slurp(p, &n);
    for (size_t len = 0; len < n; len++) {
        tu_write_file(cut, buf, len);
        cmcr_tensors *got = (cmcr_tensors *)1;
        cmcr_status st = cmcr_tensors_load(cut, CMCR_FORMAT_SAFETENSORS, &got);
        assert_int_not_equal(st, CMCR_OK);
        assert_null(got);
        assert_non_null(strstr(cmcr_last_error(), cut));
        char *msg = strdup(cmcr_last_error());
        assert_non_null(msg);
        expect_same_refusal(cut, st, msg);
        free(msg);
    }
    free(buf);
    free(cut);
    free(p);
    cmcr_tensors_free(ts);
}

/* Safetensors data need not be aligned: a header of 109 bytes puts the data at byte 117, so the
 * mapped F32 tensors sit at odd addresses, and read right (memcpy, no misaligned loads: the
 * UBSan build would stop at one). */
static void test_unaligned_views(void **state)
{
    (void)state;
    const char *json = "{\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[2,14]}} ";
    unsigned char data[14] = {0x00, 0x3c}; /* F16 1.0, then 0.5, -2, 1e-3 */
    float w[3] = {0.5f, -2.0f, 1e-3f};
    memcpy(data + 2, w, sizeof w);
    char *p = craft("odd.safetensors", json, data, sizeof data);
    cmcr_tensors *ts = NULL;
    assert_int_equal(tensors_load_mapped(p, CMCR_FORMAT_SAFETENSORS, &ts), CMCR_OK);
    const cmcr_tensor *h = cmcr_tensors_find(ts, "h"), *t = cmcr_tensors_find(ts, "w");
    assert_true(h && t);
    assert_int_not_equal((uintptr_t)h->data % 2, 0);
    assert_int_not_equal((uintptr_t)t->data % 4, 0);
    float one, got[3];
    cmcr_tensor_to_f32(h, &one);
    cmcr_tensor_to_f32(t, got);
    assert_true(one == 1.0f);
    assert_memory_equal(got, w, sizeof w);
    cmcr_tensors_free(ts);
    cmcr_tensors_free(load_each_way(p));
    free(p);
}

/* CMCR_NO_MMAP=1 reads the file into separate allocations; "0" or "" maps it. */
static void test_no_mmap_switch(void **state)
{
    (void)state;
    cmcr_tensors *ts = sample_set(), *back = NULL;
    char *p = tu_path("switch.safetensors");
    assert_int_equal(safetensors_save(ts, p), CMCR_OK);
    static const struct { const char *value; bool mapped; } cases[] = {{"1", false}, {"0", true}, {"", true}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(setenv("CMCR_NO_MMAP", cases[i].value, 1), 0);
        assert_int_equal(tensors_load_mapped(p, CMCR_FORMAT_SAFETENSORS, &back), CMCR_OK);
        assert_same_sets(ts, back);
        assert_true(contiguous(back) == cases[i].mapped);
        cmcr_tensors_free(back);
    }
    assert_int_equal(unsetenv("CMCR_NO_MMAP"), 0);
    cmcr_tensors_free(ts);
    free(p);
}

/* Resident pages of this process (/proc/self/statm), or -1. */
static long resident_pages(void)
{
    long size, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident;
}

/* tensors_release drops a mapped tensor's pages from the process (the RSS falls by about its
 * size) and a later read sees the same bytes; on a set that was read it does nothing. */
static void test_release(void **state)
{
    (void)state;
    const int64_t n = 4 << 20; /* 16 MiB of F32 */
    long page = sysconf(_SC_PAGESIZE);
    if (resident_pages() < 0 || page <= 0) tu_skip("no /proc/self/statm here");
    float *w = malloc((size_t)n * sizeof *w);
    assert_non_null(w);
    for (int64_t i = 0; i < n; i++) w[i] = (float)i;
    cmcr_tensors *src = cmcr_tensors_new(), *mapped = NULL;
    assert_int_equal(cmcr_tensors_add(src, "w", CMCR_F32, 1, &n, w), CMCR_OK);
    char *p = tu_path("big.safetensors");
    assert_int_equal(safetensors_save(src, p), CMCR_OK);
    assert_int_equal(tensors_load_mapped(p, CMCR_FORMAT_SAFETENSORS, &mapped), CMCR_OK);
    const cmcr_tensor *t = cmcr_tensors_at(mapped, 0);
    long before = resident_pages();
    assert_memory_equal(t->data, w, t->nbytes); /* touches every page */
    long touched = resident_pages(), tensor_pages = (long)(t->nbytes / (size_t)page);
    assert_true(touched - before > tensor_pages / 2);
    tensors_release(mapped, t);
    long released = resident_pages();
    assert_true(touched - released > tensor_pages * 9 / 10);
    assert_memory_equal(t->data, w, t->nbytes); /* read again from the page cache */
    tensors_release(src, cmcr_tensors_at(src, 0)); /* not mapped: a no-op */
    assert_memory_equal(cmcr_tensors_at(src, 0)->data, w, t->nbytes);
    cmcr_tensors_free(mapped);
    cmcr_tensors_free(src);
    assert_int_equal(unlink(p), 0);
    free(p);
    free(w);
}

/* ------------------------------------------------------------------ Python interop */

static const char *PY_CHECK =
    "import json, struct, sys, numpy as np\n"
    "d = sys.argv[1]\n"
    "raw = open(d + '/c.safetensors', 'rb').read()\n"
    "n, = struct.unpack('<Q', raw[:8])\n"
    "assert n % 8 == 0, n\n"
    "text = raw[8:8 + n].decode('utf-8')\n"
    "assert text.rstrip(' ').endswith('}'), text[-16:]\n"
    "h = json.loads(text)\n"
    "data = raw[8 + n:]\n"
    "meta = h.pop('__metadata__')\n"
    "assert meta == {'preset': 'clap-clip', 'note': 'h\\u00e9llo \"quoted\"\\n\\\\'}, meta\n"
    "types = {'F32': '<f4', 'F16': '<f2', 'BF16': '<u2', 'F64': '<f8', 'I32': '<i4', 'I64': '<i8', 'U8': '|u1'}\n"
    "end = 0\n"
    "for i, name in enumerate(open(d + '/c.names', encoding='utf-8').read().split('\\n')[:-1]):\n"
    "    e = h[name]\n"
    "    b, f = e['data_offsets']\n"
    "    assert b == end, (name, b, end)\n"
    "    end = f\n"
    "    a = np.frombuffer(data[b:f], dtype=types[e['dtype']]).reshape(e['shape'])\n"
    "    ref = open('%s/c%d.bin' % (d, i), 'rb').read()\n"
    "    assert a.tobytes() == ref, name\n"
    "assert end == len(data)\n"
    "x = np.frombuffer(data[h['Head_A.0.weight']['data_offsets'][0]:][:24], '<f4')\n"
    "assert x[0] == 1.5 and x[1] == -2.25 and x[3] == np.float32(0.1)\n"
    "try:\n"
    "    from safetensors.numpy import load_file\n"
    "    t = load_file(d + '/c.safetensors')\n"
    "    assert t['half'].tobytes() == open(d + '/c1.bin', 'rb').read()\n"
    "    print('safetensors module: load_file agrees')\n"
    "except ImportError:\n"
    "    print('safetensors module not installed: checked with struct + json + numpy')\n"
    "# A file written by hand the way the reference implementation lays it out, JSON order != data order.\n"
    "z = (np.arange(6, dtype=np.float32) / 3).reshape(2, 3)\n"
    "a = np.array([1, -2, 0.5, 65504], dtype=np.float16)\n"
    "i = np.array([[-(2**63), 2**63 - 1]], dtype=np.int64)\n"
    "blobs = [a.tobytes(), i.tobytes(), z.tobytes()]\n"
    "offs = []\n"
    "pos = 0\n"
    "for bl in blobs:\n"
    "    offs.append([pos, pos + len(bl)]); pos += len(bl)\n"
    "hdr = {'z': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': offs[2]},\n"
    "       'a': {'dtype': 'F16', 'shape': [4], 'data_offsets': offs[0]},\n"
    "       '__metadata__': {'format': 'np'},\n"
    "       'i': {'dtype': 'I64', 'shape': [1, 2], 'data_offsets': offs[1]}}\n"
    "s = json.dumps(hdr, separators=(',', ':')).encode()\n"
    "s += b' ' * ((8 - len(s) % 8) % 8)\n"
    "open(d + '/py.safetensors', 'wb').write(struct.pack('<Q', len(s)) + s + b''.join(blobs))\n"
    "for k, bl in zip('aiz', blobs):\n"
    "    open(d + '/py_' + k + '.bin', 'wb').write(bl)\n";

static void test_python_interop(void **state)
{
    (void)state;
    const char *py = tu_python_numpy();
    if (!py) tu_skip("no python with numpy");
    cmcr_tensors *ts = sample_set();
    char *p = tu_path("c.safetensors");
    assert_int_equal(safetensors_save(ts, p), CMCR_OK);
    char *names = tu_path("c.names");
    FILE *f = fopen(names, "w");
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        fprintf(f, "%s\n", t->name);
        char bin[32];
        snprintf(bin, sizeof bin, "c%zu.bin", i);
        char *pb = tu_path(bin);
        tu_write_file(pb, t->data, t->nbytes);
        free(pb);
    }
    fclose(f);
    char *script = tu_path("check.py");
    tu_write_file(script, PY_CHECK, strlen(PY_CHECK));
    assert_int_equal(tu_system("%s '%s' '%s'", py, script, tu_tmpdir()), 0);
    /* The Python-written file. */
    char *pp = tu_path("py.safetensors");
    cmcr_tensors *back = load_each_way(pp);
    assert_int_equal(cmcr_tensors_count(back), 3);
    static const char *order = "aiz";
    static const cmcr_dtype types[3] = {CMCR_F16, CMCR_I64, CMCR_F32};
    for (size_t i = 0; i < 3; i++) {
        const cmcr_tensor *t = cmcr_tensors_at(back, i);
        char want[2] = {order[i], 0}, bin[16];
        assert_string_equal(t->name, want);
        assert_int_equal(t->dtype, types[i]);
        snprintf(bin, sizeof bin, "py_%c.bin", order[i]);
        char *pb = tu_path(bin);
        size_t n;
        unsigned char *ref = slurp(pb, &n);
        assert_int_equal(t->nbytes, n);
        assert_memory_equal(t->data, ref, n);
        free(ref);
        free(pb);
    }
    assert_string_equal(cmcr_tensors_get_meta(back, "format"), "np");
    float z[6];
    cmcr_tensor_to_f32(cmcr_tensors_at(back, 2), z);
    for (int i = 0; i < 6; i++) assert_true(z[i] == (float)i / 3.0f);
    cmcr_tensors_free(back);
    cmcr_tensors_free(ts);
    free(pp);
    free(script);
    free(names);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_offset_order),
        cmocka_unit_test(test_save_refusals),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_malformed_sizes),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_too_many_tensors),
        cmocka_unit_test(test_over_limit_sparse),
        cmocka_unit_test(test_truncated_each_length),
        cmocka_unit_test(test_unaligned_views),
        cmocka_unit_test(test_no_mmap_switch),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_python_interop),
    };
    return tu_run_group(tests);
}
