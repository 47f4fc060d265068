/* test_pt.c - PyTorch .pt reader/writer: the released checkpoint, round trips, interop with
 * torch (when a python with torch is available) and hostile inputs. */
#include "testutil.h"
#include "io/io.h"
#include "runtime/core.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

static char *released_path; /* NULL when the shared data is absent */

/* ------------------------------------------------------------------ small helpers */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(void *data, size_t n)
{
    unsigned char *p = data;
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)rng();
}

/* Add a tensor with random bits (floats: uniform in [lo, lo + 1)). */
static void add_random(cmcr_tensors *ts, const char *name, cmcr_dtype dt, int ndim, const int64_t *shape,
                       float lo)
{
    uint64_t nbytes;
    assert_true(core_shape_bytes(shape, ndim, cmcr_dtype_size(dt), &nbytes));
    unsigned char *buf = malloc(nbytes ? nbytes : 1);
    if (dt == CMCR_F32) {
        for (size_t i = 0; i < nbytes / 4; i++) {
            float v = lo + (float)(rng() % 1000000) / 1e6f;
            memcpy(buf + 4 * i, &v, 4);
        }
    } else {
        fill_random(buf, nbytes);
    }
    assert_int_equal(cmcr_tensors_add(ts, name, dt, ndim, shape, buf), CMCR_OK);
    free(buf);
}

static void assert_same_tensors(const cmcr_tensors *a, const cmcr_tensors *b)
{
    assert_int_equal(cmcr_tensors_count(a), cmcr_tensors_count(b));
    for (size_t i = 0; i < cmcr_tensors_count(a); i++) {
        const cmcr_tensor *x = cmcr_tensors_at(a, i), *y = cmcr_tensors_at(b, i);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->ndim, y->ndim);
        for (int d = 0; d < x->ndim; d++) assert_int_equal(x->shape[d], y->shape[d]);
        assert_int_equal(x->nbytes, y->nbytes);
        assert_memory_equal(x->data, y->data, x->nbytes);
    }
}

static int count_temp_files(void)
{
    DIR *d = opendir(tu_tmpdir());
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* A python with torch: $CMCR_PYTHON / python3 (tu_python_torch), else Debian's /usr/bin/python3. */
static const char *torch_python(void)
{
    const char *py = tu_python_torch();
    if (!py && tu_system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0)
        py = "/usr/bin/python3";
    return py;
}

static char *script_path(void)
{
    const char *src = getenv("CMCR_SOURCE_DIR");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/scripts/pt_interop.py", src ? src : ".");
    return p;
}

/* ------------------------------------------------------------------ (a) released checkpoint */

static void test_released_checkpoint(void **state)
{
    (void)state;
    if (!released_path)
        tu_skip("no released checkpoint (../shared/data/cmcr-ulip-clip/ulip_clip.pt; set CMCR_TESTDATA)");
    cmcr_tensors *ts = NULL;
    assert_int_equal(cmcr_tensors_load(released_path, CMCR_FORMAT_AUTO, &ts), CMCR_OK);
    assert_int_equal(cmcr_tensors_count(ts), 14);
    static const char *sides[] = {"Head_A", "Head_B"};
    static const char *vecs[] = {"net.0.bias", "net.1.weight", "net.1.bias", "net.1.running_mean",
                                 "net.1.running_var"};
    char name[64];
    for (int s = 0; s < 2; s++) {
        snprintf(name, sizeof name, "%s.net.0.weight", sides[s]);
        const cmcr_tensor *w = cmcr_tensors_find(ts, name);
        assert_non_null(w);
        assert_int_equal(w->dtype, CMCR_F32);
        assert_int_equal(w->ndim, 2);
        assert_int_equal(w->shape[0], 512);
        assert_int_equal(w->shape[1], 512);
        for (int v = 0; v < 5; v++) {
            snprintf(name, sizeof name, "%s.%s", sides[s], vecs[v]);
            const cmcr_tensor *t = cmcr_tensors_find(ts, name);
            assert_non_null(t);
            assert_int_equal(t->dtype, CMCR_F32);
            assert_int_equal(t->ndim, 1);
            assert_int_equal(t->shape[0], 512);
        }
        snprintf(name, sizeof name, "%s.net.1.num_batches_tracked", sides[s]);
        const cmcr_tensor *nb = cmcr_tensors_find(ts, name);
        assert_non_null(nb);
        assert_int_equal(nb->dtype, CMCR_I64);
        assert_int_equal(nb->ndim, 0);
        assert_int_equal(nb->nbytes, 8);
    }
    assert_string_equal(cmcr_tensors_at(ts, 0)->name, "Head_A.net.0.weight"); /* file order kept */
    assert_string_equal(cmcr_tensors_at(ts, 13)->name, "Head_B.net.1.num_batches_tracked");
    const cmcr_tensor *var = cmcr_tensors_find(ts, "Head_A.net.1.running_var");
    for (int i = 0; i < 512; i++) assert_true(((const float *)var->data)[i] > 0);

    /* re-save with cmcr and read back: identical */
    char *copy = tu_path("released_copy.pt");
    cmcr_tensors *back = NULL;
    assert_int_equal(pt_save(ts, copy), CMCR_OK);
    assert_int_equal(pt_load(copy, &back), CMCR_OK);
    assert_same_tensors(ts, back);
    cmcr_tensors_free(back);
    cmcr_tensors_free(ts);
    free(copy);
}

/* ------------------------------------------------------------------ (b) round trip */

static cmcr_tensors *sample_set(void)
{
    cmcr_tensors *ts = cmcr_tensors_new();
    int64_t s23[] = {2, 3}, s5[] = {5}, s22[] = {2, 2}, s3[] = {3}, s04[] = {0, 4};
    int64_t s8d[] = {1, 2, 1, 1, 2, 1, 1, 2}, s4d[] = {2, 1, 3, 2};
    add_random(ts, "f32", CMCR_F32, 2, s23, -0.5f);
    add_random(ts, "f16", CMCR_F16, 1, s5, 0);
    add_random(ts, "bf16", CMCR_BF16, 2, s22, 0);
    add_random(ts, "f64.scalar", CMCR_F64, 0, NULL, 0);
    add_random(ts, "num_batches_tracked", CMCR_I64, 0, NULL, 0);
    add_random(ts, "i32", CMCR_I32, 1, s3, 0);
    add_random(ts, "i64", CMCR_I64, 4, s4d, 0);
    add_random(ts, "empty", CMCR_F32, 2, s04, 0);
    add_random(ts, "eight.dims", CMCR_F32, 8, s8d, 0);
    add_random(ts, "gr\xc3\xb6\xc3\x9f" "e.weight", CMCR_F32, 1, s3, 1);
    add_random(ts, "u8", CMCR_U8, 2, s23, 0); /* torch.uint8: a ByteStorage */
    return ts;
}

static void test_roundtrip(void **state)
{
    (void)state;
    cmcr_tensors *ts = sample_set(), *back = NULL;
    char *path = tu_path("roundtrip.pt"), *again = tu_path("roundtrip2.pt");
    assert_int_equal(cmcr_tensors_save(ts, path, CMCR_FORMAT_AUTO), CMCR_OK);
    assert_int_equal(cmcr_tensors_load(path, CMCR_FORMAT_AUTO, &back), CMCR_OK);
    assert_same_tensors(ts, back);
    cmcr_tensors_free(back);

    /* overwrite in place, and saving twice gives the same bytes */
    assert_int_equal(pt_save(ts, path), CMCR_OK);
    assert_int_equal(pt_save(ts, again), CMCR_OK);
    size_t n1, n2;
    char *b1 = read_all(path, &n1), *b2 = read_all(again, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    assert_int_equal(count_temp_files(), 0);
    free(b1);
    free(b2);
    cmcr_tensors_free(ts);
    free(path);
    free(again);
}

static void test_many_tensors(void **state)
{
    (void)state;
    cmcr_tensors *ts = cmcr_tensors_new(), *back = NULL;
    int64_t shape[] = {2};
    char name[32];
    for (int i = 0; i < 2500; i++) { /* more than one SETITEMS batch */
        snprintf(name, sizeof name, "layer%d.bias", i);
        add_random(ts, name, i % 2 ? CMCR_F16 : CMCR_F32, 1, shape, 0);
    }
    char *path = tu_path("many.pt");
    assert_int_equal(pt_save(ts, path), CMCR_OK);
    assert_int_equal(pt_load(path, &back), CMCR_OK);
    assert_same_tensors(ts, back);
    cmcr_tensors_free(back);
    cmcr_tensors_free(ts);
    free(path);
}

static void test_save_errors(void **state)
{
    (void)state;
    cmcr_tensors *ts = sample_set();
    const char *bad_dir = "/nonexistent-cmcr-dir/x.pt";
    assert_int_equal(pt_save(ts, bad_dir), CMCR_EIO);
    assert_non_null(strstr(cmcr_last_error(), bad_dir));
    printf("REFUSED save into a missing directory | %s | %s\n", cmcr_status_name(CMCR_EIO),
           cmcr_last_error());
    cmcr_tensors_free(ts);

    /* a name that is not UTF-8 never gets into a set, so no writer can write it */
    ts = cmcr_tensors_new();
    int64_t s1[] = {1};
    float one = 1;
    assert_int_equal(cmcr_tensors_add(ts, "bad\xff", CMCR_F32, 1, s1, &one), CMCR_EINVAL);
    assert_string_equal(cmcr_last_error(), "tensor name 'bad\\xff' is not valid UTF-8");
    printf("REFUSED a tensor name that is not UTF-8 | %s | %s\n", cmcr_status_name(CMCR_EINVAL),
           cmcr_last_error());
    assert_int_equal(cmcr_tensors_count(ts), 0);
    cmcr_tensors_free(ts);
}

/* ------------------------------------------------------------------ (c) interop with torch */

/* The state_dict of one C-MCR model with random weights, shaped like a preset. */
static void add_bn(cmcr_tensors *ts, const char *prefix, int64_t dim)
{
    static const char *names[] = {"weight", "bias", "running_mean", "running_var"};
    char name[96];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, names[i]);
        add_random(ts, name, CMCR_F32, 1, &dim, i == 3 ? 0.5f : -0.5f);
    }
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    int64_t count = 1234;
    assert_int_equal(cmcr_tensors_add(ts, name, CMCR_I64, 0, NULL, &count), CMCR_OK);
}

static void add_linear(cmcr_tensors *ts, const char *prefix, int64_t in, int64_t out)
{
    char name[96];
    int64_t w[] = {out, in};
    snprintf(name, sizeof name, "%s.weight", prefix);
    add_random(ts, name, CMCR_F32, 2, w, -0.5f);
    snprintf(name, sizeof name, "%s.bias", prefix);
    add_random(ts, name, CMCR_F32, 1, &out, -0.5f);
}

static cmcr_tensors *head_set(bool two_layers)
{
    cmcr_tensors *ts = cmcr_tensors_new();
    char p[64];
    for (int s = 0; s < 2; s++) {
        const char *side = s ? "Head_B" : "Head_A";
        if (!two_layers) {
            snprintf(p, sizeof p, "%s.net.0", side);
            add_linear(ts, p, 512, 512);
            snprintf(p, sizeof p, "%s.net.1", side);
            add_bn(ts, p, 512);
            continue;
        }
        snprintf(p, sizeof p, "%s.net1.0", side);
        add_linear(ts, p, 512, 1024);
        snprintf(p, sizeof p, "%s.net1.1", side);
        add_bn(ts, p, 1024);
        snprintf(p, sizeof p, "%s.net2.0", side);
        add_linear(ts, p, 1024, 512);
        snprintf(p, sizeof p, "%s.net2.1", side);
        add_bn(ts, p, 512);
    }
    return ts;
}

/* The reference listing format of scripts/pt_interop.py. */
static void write_reference(const cmcr_tensors *ts, const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        fprintf(f, "%s\t%s\t", t->name, cmcr_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) fprintf(f, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        fputc('\t', f);
        for (size_t k = 0; k < t->nbytes; k++) fprintf(f, "%02x", ((const unsigned char *)t->data)[k]);
        fputc('\n', f);
    }
    fclose(f);
}

static int hexval(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

/* Compare a loaded set with a reference listing written by pt_interop.py --write. */
static void check_reference(const cmcr_tensors *ts, const char *ref)
{
    size_t len, i = 0;
    char *text = read_all(ref, &len), *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        char *name = line, *dtype = strchr(name, '\t');
        *dtype++ = '\0';
        char *shape = strchr(dtype, '\t');
        *shape++ = '\0';
        char *hex = strchr(shape, '\t');
        *hex++ = '\0';
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        assert_non_null(t);
        assert_string_equal(t->name, name);
        assert_string_equal(cmcr_dtype_name(t->dtype), dtype);
        char dims[128] = "";
        for (int d = 0; d < t->ndim; d++)
            snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%lld", d ? "," : "",
                     (long long)t->shape[d]);
        assert_string_equal(dims, shape);
        assert_int_equal(strlen(hex), 2 * t->nbytes);
        for (size_t k = 0; k < t->nbytes; k++)
            assert_int_equal(((const unsigned char *)t->data)[k],
                             hexval(hex[2 * k]) * 16 + hexval(hex[2 * k + 1]));
    }
    assert_int_equal(i, cmcr_tensors_count(ts));
    free(text);
}

static void test_torch_reads_cmcr(void **state)
{
    (void)state;
    const char *py = torch_python();
    if (!py) tu_skip("no python with torch: the torch.load checks");
    char *script = script_path(), *path = tu_path("heads.pt"), *ref = tu_path("sample.ref");
    for (int two = 0; two < 2; two++) {
        cmcr_tensors *ts = head_set(two);
        assert_int_equal(pt_save(ts, path), CMCR_OK);
        write_reference(ts, ref);
        assert_int_equal(tu_system("%s %s %s --check-head %s --expect %s >/dev/null", py, script, path,
                                   two ? "clap-clip" : "ulip-clip", ref),
                         0);
        cmcr_tensors_free(ts);
    }
    cmcr_tensors *ts = sample_set();
    assert_int_equal(pt_save(ts, path), CMCR_OK);
    write_reference(ts, ref);
    assert_int_equal(tu_system("%s %s %s --expect %s", py, script, path, ref), 0);
    cmcr_tensors_free(ts);
    free(script);
    free(path);
    free(ref);
}

static void expect_refused(const char *what, const char *path, cmcr_status want, const char *needle);

static void test_cmcr_reads_torch(void **state)
{
    (void)state;
    const char *py = torch_python();
    if (!py) tu_skip("no python with torch: files written by torch.save");
    char *script = script_path(), *path = tu_path("torch.pt"), *ref = tu_path("torch.ref");
    static const int protocols[] = {2, 4, 5};
    for (int i = 0; i < 3; i++) {
        cmcr_tensors *ts = NULL;
        assert_int_equal(tu_system("%s %s --write %s --ref %s --protocol %d", py, script, path, ref,
                                   protocols[i]),
                         0);
        assert_int_equal(pt_load(path, &ts), CMCR_OK);
        check_reference(ts, ref);
        cmcr_tensors_free(ts);
    }
    assert_int_equal(tu_system("%s %s --write-noncontig %s", py, script, path), 0);
    expect_refused("torch.save of a transposed view", path, CMCR_EUNSUPPORTED, "non-contiguous");
    assert_int_equal(tu_system("%s %s --write-object-entry %s", py, script, path), 0);
    expect_refused("an argparse.Namespace among the state_dict's values", path, CMCR_EUNSUPPORTED,
                   "entry 'args' is an object of class 'argparse.Namespace'");
    assert_int_equal(tu_system("%s %s --write-bool-param %s", py, script, path), 0);
    expect_refused("a bool nn.Parameter", path, CMCR_EUNSUPPORTED, "tensor 'flags' has storage type 'torch.BoolStorage'");
    free(script);
    free(path);
    free(ref);
}

/* A training checkpoint (LAION-CLAP's and ULIP's shape): its state_dict is read, without the
 * "module." prefix, and nothing else: the optimizer's storages are not even in the archive,
 * and the argparse.Namespace, numpy scalar, bytes and bool tensor beside it stay opaque. */
static void test_training_checkpoint(void **state)
{
    (void)state;
    const char *py = torch_python();
    if (!py) tu_skip("no python with torch: training checkpoints written by torch.save");
    char *script = script_path(), *path = tu_path("train.pt"), *ref = tu_path("train.ref");
    static const int protocols[] = {2, 4};
    for (int i = 0; i < 2; i++) {
        cmcr_tensors *ts = NULL;
        assert_int_equal(tu_system("%s %s --write %s --training --drop-unused --ref %s --protocol %d", py, script,
                                   path, ref, protocols[i]), 0);
        assert_int_equal(pt_load(path, &ts), CMCR_OK);
        check_reference(ts, ref); /* the names without "module.", every value bit for bit */
        cmcr_tensors_free(ts);
    }
    free(script);
    free(path);
    free(ref);
}

/* pt_load_only reads only the entries asked for (ULIP's checkpoint holds a whole image and
 * text model beside the point encoder): the other tensors' storages are not in the archive, so
 * pt_load fails where pt_load_only succeeds, with the kept tensors bit for bit. */
static void test_load_only(void **state)
{
    (void)state;
    const char *py = torch_python();
    if (!py) tu_skip("no python with torch: training checkpoints written by torch.save");
    char *script = script_path(), *path = tu_path("only.pt"), *ref = tu_path("only.ref");
    static const char *const prefixes[] = {"f32", "ba", "rows"}; /* "ba": base; rows shares its storage */
    cmcr_tensors *ts = NULL;
    assert_int_equal(tu_system("%s %s --write %s --training --drop-unused --keep f32,base,rows --ref %s", py,
                               script, path, ref), 0);
    assert_int_equal(pt_load_only(path, prefixes, 3, &ts), CMCR_OK);
    assert_int_equal(cmcr_tensors_count(ts), 3);
    check_reference(ts, ref);
    cmcr_tensors_free(ts);
    assert_int_equal(pt_load(path, &ts), CMCR_EFORMAT); /* the whole state dict: storages missing */
    assert_non_null(strstr(cmcr_last_error(), "has no data entry"));
    static const char *const none[] = {"nothing."};
    assert_int_equal(pt_load_only(path, none, 1, &ts), CMCR_OK); /* nothing asked for is there: empty */
    assert_int_equal(cmcr_tensors_count(ts), 0);
    cmcr_tensors_free(ts);
    free(script);
    free(path);
    free(ref);
}

/* ------------------------------------------------------------------ (d) hostile inputs */

typedef struct pb {
    unsigned char *b;
    size_t n, cap;
} pb;

static void pb_bytes(pb *p, const void *d, size_t n)
{
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2;
        p->b = realloc(p->b, p->cap);
    }
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void pb_op(pb *p, unsigned char op) { pb_bytes(p, &op, 1); }

static void pb_le(pb *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) pb_op(p, (unsigned char)(v >> (8 * i)));
}

static void pb_str(pb *p, const char *s)
{
    pb_op(p, 'X');
    pb_le(p, strlen(s), 4);
    pb_bytes(p, s, strlen(s));
}

static void pb_int(pb *p, int64_t v)
{
    if (v >= INT32_MIN && v <= INT32_MAX) {
        pb_op(p, 'J');
        pb_le(p, (uint64_t)v, 4);
    } else {
        pb_op(p, 0x8a);
        pb_op(p, 8);
        pb_le(p, (uint64_t)v, 8);
    }
}

static void pb_global(pb *p, const char *mod, const char *name)
{
    pb_op(p, 'c');
    pb_bytes(p, mod, strlen(mod));
    pb_op(p, '\n');
    pb_bytes(p, name, strlen(name));
    pb_op(p, '\n');
}

static void pb_tuple(pb *p, const int64_t *v, int n)
{
    pb_op(p, '(');
    for (int i = 0; i < n; i++) pb_int(p, v[i]);
    pb_op(p, 't');
}

/* One tensor "w" in a state_dict, as torch writes it. */
typedef struct spec {
    const char *type;
    const char *key;
    int64_t numel, offset;
    int ndim;
    int64_t size[10], stride[10];
} spec;

static const spec GOOD = {"FloatStorage", "0", 4, 0, 2, {2, 2}, {2, 1}};

/* _rebuild_tensor_v2(...) for spec s, as torch writes it. */
static void pb_tensor(pb *p, const spec *s)
{
    pb_global(p, "torch._utils", "_rebuild_tensor_v2");
    pb_op(p, '(');
    pb_op(p, '(');
    pb_str(p, "storage");
    pb_global(p, "torch", s->type);
    pb_str(p, s->key);
    pb_str(p, "cpu");
    pb_int(p, s->numel);
    pb_op(p, 't');
    pb_op(p, 'Q');
    pb_int(p, s->offset);
    pb_tuple(p, s->size, s->ndim);
    pb_tuple(p, s->stride, s->ndim);
    pb_op(p, 0x89);
    pb_global(p, "collections", "OrderedDict");
    pb_op(p, ')');
    pb_op(p, 'R');
    pb_op(p, 't');
    pb_op(p, 'R');
}

static void pb_state_dict(pb *p, const spec *s)
{
    pb_op(p, 0x80);
    pb_op(p, 2);
    pb_global(p, "collections", "OrderedDict");
    pb_op(p, ')');
    pb_op(p, 'R');
    pb_op(p, '(');
    pb_str(p, "w");
    pb_tensor(p, s);
    pb_op(p, 'u');
    pb_op(p, '.');
}

/* Reopen a finished pb_state_dict pickle and add a 2x2 tensor name on storage "0". */
static void pb_add_entry(pb *p, const char *name, const char *type)
{
    const int64_t size[] = {2, 2}, stride[] = {2, 1};
    p->n -= 2; /* drop SETITEMS + STOP */
    pb_str(p, name);
    pb_global(p, "torch._utils", "_rebuild_tensor_v2");
    pb_op(p, '('), pb_op(p, '('), pb_str(p, "storage"), pb_global(p, "torch", type);
    pb_str(p, "0"), pb_str(p, "cpu"), pb_int(p, 4), pb_op(p, 't'), pb_op(p, 'Q'), pb_int(p, 0);
    pb_tuple(p, size, 2), pb_tuple(p, stride, 2), pb_op(p, 0x89), pb_op(p, '}');
    pb_op(p, 't'), pb_op(p, 'R'), pb_op(p, 'u'), pb_op(p, '.');
}

typedef struct entry {
    const char *name;
    const void *data;
    size_t len;
} entry;

static void write_zip(const char *path, const entry *e, int n, bool deflate)
{
    int err = 0;
    remove(path);
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    assert_non_null(za);
    for (int i = 0; i < n; i++) {
        zip_source_t *src = zip_source_buffer(za, e[i].data, e[i].len, 0);
        assert_non_null(src);
        zip_int64_t idx = zip_file_add(za, e[i].name, src, 0);
        assert_true(idx >= 0);
        zip_int32_t method = deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE;
        assert_int_equal(zip_set_file_compression(za, (zip_uint64_t)idx, method, 0), 0);
    }
    assert_int_equal(zip_close(za), 0);
}

/* A checkpoint with data.pkl = p and, if data_len >= 0, archive/data/0 of data_len bytes. */
static void write_pt(const char *path, const pb *p, long data_len, bool deflate)
{
    static unsigned char data[4096];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7);
    entry e[] = {{"archive/data.pkl", p->b, p->n}, {"archive/version", "3\n", 2},
                 {"archive/data/0", data, data_len < 0 ? 0 : (size_t)data_len}};
    write_zip(path, e, data_len < 0 ? 2 : 3, deflate);
}

static void expect_refused(const char *what, const char *path, cmcr_status want, const char *needle)
{
    tu_expect_load_fail(CMCR_FORMAT_PT, what, path, want, needle);
}

/* Write a checkpoint from a pickle and expect it to be refused. */
static void refuse_pickle(const char *what, pb *p, long data_len, cmcr_status want, const char *needle)
{
    char *path = tu_path("hostile.pt");
    write_pt(path, p, data_len, false);
    expect_refused(what, path, want, needle);
    free(p->b);
    memset(p, 0, sizeof *p);
    free(path);
}

static void refuse_spec(const char *what, const spec *s, long data_len, cmcr_status want, const char *needle)
{
    pb p = {0};
    pb_state_dict(&p, s);
    refuse_pickle(what, &p, data_len, want, needle);
}

static void test_good_control(void **state)
{
    (void)state;
    /* the hand-built pickle is right: stored and deflated entries both load */
    for (int deflate = 0; deflate < 2; deflate++) {
        pb p = {0};
        cmcr_tensors *ts = NULL;
        char *path = tu_path("good.pt");
        pb_state_dict(&p, &GOOD);
        write_pt(path, &p, 16, deflate);
        assert_int_equal(pt_load(path, &ts), CMCR_OK);
        assert_int_equal(cmcr_tensors_count(ts), 1);
        assert_int_equal(cmcr_tensors_at(ts, 0)->shape[1], 2);
        cmcr_tensors_free(ts);
        free(p.b);
        free(path);
    }
}

/* A bare tensor (torch.save(t)) loads as one tensor named "tensor". */
static void test_bare_tensor(void **state)
{
    (void)state;
    pb p = {0};
    cmcr_tensors *ts = NULL;
    char *path = tu_path("bare.pt");
    pb_op(&p, 0x80), pb_op(&p, 2), pb_tensor(&p, &GOOD), pb_op(&p, '.');
    write_pt(path, &p, 16, false);
    assert_int_equal(pt_load(path, &ts), CMCR_OK);
    assert_int_equal(cmcr_tensors_count(ts), 1);
    assert_string_equal(cmcr_tensors_at(ts, 0)->name, "tensor");
    cmcr_tensors_free(ts);
    free(p.b);
    free(path);
}

static void pb_short(pb *p, unsigned char op, const char *s) /* SHORT_BINUNICODE, SHORT_BINSTRING */
{
    pb_op(p, op);
    pb_op(p, (unsigned char)strlen(s));
    pb_bytes(p, s, strlen(s));
}

/* Every accepted opcode once, in a pickle whose value is still a one-tensor state_dict. */
static void test_all_opcodes(void **state)
{
    (void)state;
    pb p = {0};
    cmcr_tensors *ts = NULL;
    char *path = tu_path("opcodes.pt");
    /* PROTO 4, FRAME; od = OrderedDict() via SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE */
    pb_op(&p, 0x80), pb_op(&p, 4), pb_op(&p, 0x95), pb_le(&p, 0, 8);
    pb_short(&p, 0x8c, "collections"), pb_short(&p, 0x8c, "OrderedDict");
    pb_op(&p, 0x93), pb_op(&p, 0x94), pb_op(&p, ')'), pb_op(&p, 'R');
    /* od['w'] = _rebuild_parameter(tensor, True, OrderedDict()): SHORT_BINSTRING, NEWTRUE,
     * BINGET, TUPLE3, SETITEMS */
    pb_op(&p, '('), pb_short(&p, 'U', "w");
    pb_global(&p, "torch._utils", "_rebuild_parameter");
    pb_tensor(&p, &GOOD);
    pb_op(&p, 0x88), pb_op(&p, 'h'), pb_op(&p, 0), pb_op(&p, ')'), pb_op(&p, 'R');
    pb_op(&p, 0x87), pb_op(&p, 'R'), pb_op(&p, 'u');
    /* a list built with APPENDS (NONE, BINFLOAT, LONG1, BININT2) and APPEND, memoised with
     * LONG_BINPUT, fetched with LONG_BINGET, BINPUT, then POPped */
    pb_op(&p, ']'), pb_op(&p, '('), pb_op(&p, 'N'), pb_op(&p, 'G'), pb_le(&p, 0x3ff0000000000000ull, 8);
    pb_op(&p, 0x8a), pb_op(&p, 2), pb_le(&p, 0xff7f, 2), pb_op(&p, 'M'), pb_le(&p, 513, 2);
    pb_op(&p, 'e'), pb_op(&p, 'K'), pb_op(&p, 1), pb_op(&p, 'a');
    pb_op(&p, 'r'), pb_le(&p, 70000, 4), pb_op(&p, '0'), pb_op(&p, 'j'), pb_le(&p, 70000, 4);
    pb_op(&p, 'q'), pb_op(&p, 9), pb_op(&p, '0');
    /* POP_MARK; LIST then POP */
    pb_op(&p, '('), pb_op(&p, 'N'), pb_op(&p, 'N'), pb_op(&p, '1');
    pb_op(&p, '('), pb_op(&p, 'N'), pb_op(&p, 'l'), pb_op(&p, '0');
    /* BUILD od with a state dict made by DICT (BINSTRING), SETITEM (BINUNICODE8, BININT, TUPLE2) */
    pb_op(&p, '('), pb_short(&p, 0x8c, "k"), pb_op(&p, 'T'), pb_le(&p, 1, 4), pb_bytes(&p, "v", 1);
    pb_op(&p, 'd'), pb_str(&p, "_metadata"), pb_op(&p, 0x8d), pb_le(&p, 2, 8), pb_bytes(&p, "x8", 2);
    pb_op(&p, 'J'), pb_le(&p, (uint32_t)-5, 4), pb_op(&p, 0x86), pb_op(&p, 's');
    pb_op(&p, 'b'), pb_op(&p, '.');
    write_pt(path, &p, 16, false);
    assert_int_equal(pt_load(path, &ts), CMCR_OK);
    assert_int_equal(cmcr_tensors_count(ts), 1);
    assert_string_equal(cmcr_tensors_at(ts, 0)->name, "w");
    cmcr_tensors_free(ts);
    free(p.b);
    free(path);
}

static void test_not_a_checkpoint(void **state)
{
    (void)state;
    char *path = tu_path("hostile.pt");
    tu_write_file(path, "hello, this is not a zip file\n", 30);
    expect_refused("not a zip (text)", path, CMCR_EFORMAT, "not a zip archive");
    tu_write_file(path, "\x80\x02\x8a\x0alegacy", 10);
    expect_refused("legacy pickle (pre-1.6 torch.save)", path, CMCR_EUNSUPPORTED, "legacy");
    entry e[] = {{"archive/version", "3\n", 2}};
    write_zip(path, e, 1, false);
    expect_refused("zip without data.pkl", path, CMCR_EFORMAT, "data.pkl");
    entry two[] = {{"a/data.pkl", "N.", 2}, {"b/data.pkl", "N.", 2}};
    write_zip(path, two, 2, false);
    expect_refused("two data.pkl entries", path, CMCR_EFORMAT, "two pickles");
    entry be[] = {{"archive/data.pkl", "\x80\x02}.", 4}, {"archive/byteorder", "big", 3}};
    write_zip(path, be, 2, false);
    expect_refused("byteorder 'big'", path, CMCR_EUNSUPPORTED, "little-endian");

    /* a real checkpoint cut in half */
    cmcr_tensors *ts = sample_set();
    assert_int_equal(pt_save(ts, path), CMCR_OK);
    cmcr_tensors_free(ts);
    size_t n;
    char *buf = read_all(path, &n);
    tu_write_file(path, buf, n / 2);
    expect_refused("zip truncated to half its length", path, CMCR_EFORMAT, "truncated");
    free(buf);
    char *missing = tu_path("does-not-exist.pt");
    expect_refused("file does not exist", missing, CMCR_EIO, "does-not-exist.pt");
    free(missing);
    free(path);
}

static void test_hostile_globals(void **state)
{
    (void)state;
    pb p = {0};
    pb_op(&p, 0x80), pb_op(&p, 2), pb_global(&p, "os", "system"), pb_str(&p, "echo pwned");
    pb_op(&p, 0x85), pb_op(&p, 'R'), pb_op(&p, '.');
    refuse_pickle("GLOBAL os.system + REDUCE", &p, -1, CMCR_EUNSUPPORTED, "'os.system'");

    pb_op(&p, 0x80), pb_op(&p, 4), pb_op(&p, 0x8c), pb_op(&p, 8), pb_bytes(&p, "builtins", 8);
    pb_op(&p, 0x8c), pb_op(&p, 4), pb_bytes(&p, "eval", 4), pb_op(&p, 0x93);
    pb_str(&p, "1+1"), pb_op(&p, 0x85), pb_op(&p, 'R'), pb_op(&p, '.');
    refuse_pickle("STACK_GLOBAL builtins.eval + REDUCE", &p, -1, CMCR_EUNSUPPORTED, "'builtins.eval'");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_global(&p, "posix", "system"), pb_op(&p, '.');
    refuse_pickle("GLOBAL posix.system", &p, -1, CMCR_EUNSUPPORTED, "'posix.system'");
    pb_op(&p, 0x80), pb_op(&p, 2), pb_global(&p, "torch", "load"), pb_op(&p, '.');
    refuse_pickle("GLOBAL torch.load", &p, -1, CMCR_EUNSUPPORTED, "'torch.load'");
    pb_op(&p, 0x80), pb_op(&p, 2), pb_global(&p, "torch\x01", "x\xff"), pb_op(&p, '.');
    refuse_pickle("GLOBAL with control bytes in its name", &p, -1, CMCR_EUNSUPPORTED, "'torch\\x01.x\\xff'");

    spec s = GOOD;
    s.type = "BoolStorage";
    refuse_spec("storage type torch.BoolStorage", &s, 4, CMCR_EUNSUPPORTED, "BoolStorage");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_global(&p, "torch", "FloatStorage"), pb_op(&p, ')');
    pb_op(&p, 'R'), pb_op(&p, '.');
    refuse_pickle("REDUCE calling torch.FloatStorage", &p, -1, CMCR_EUNSUPPORTED, "FloatStorage");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_global(&p, "collections", "OrderedDict"), pb_str(&p, "x");
    pb_op(&p, 0x85), pb_op(&p, 'R'), pb_op(&p, '.');
    refuse_pickle("OrderedDict called with arguments", &p, -1, CMCR_EUNSUPPORTED, "arguments");

    /* other classes: NEWOBJ and BUILD make an inert placeholder, refused where a value is needed */
    pb_op(&p, 0x80), pb_op(&p, 2), pb_global(&p, "os", "system"), pb_op(&p, ')'), pb_op(&p, 0x81);
    pb_op(&p, '}'), pb_op(&p, 'b'), pb_op(&p, '.');
    refuse_pickle("NEWOBJ + BUILD of os.system", &p, -1, CMCR_EUNSUPPORTED, "an object of class 'os.system'");
    pb_op(&p, 0x80), pb_op(&p, 4), pb_global(&p, "collections", "OrderedDict"), pb_op(&p, ')');
    pb_op(&p, '}'), pb_op(&p, 0x92), pb_op(&p, '.');
    refuse_pickle("NEWOBJ_EX on an allowed global", &p, -1, CMCR_EUNSUPPORTED, "NEWOBJ_EX on an allowed global");
    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, ']'), pb_op(&p, 0x81), pb_op(&p, '.');
    refuse_pickle("NEWOBJ without a class", &p, -1, CMCR_EFORMAT, "stack is empty");
    pb_op(&p, 0x80), pb_op(&p, 2), pb_global(&p, "os", "system"), pb_op(&p, ')'), pb_op(&p, 'R');
    pb_op(&p, ')'), pb_op(&p, 'R'), pb_op(&p, '.');
    refuse_pickle("REDUCE calling an opaque object", &p, -1, CMCR_EUNSUPPORTED,
                  "REDUCE applies an opaque object; only allowed globals can be called");
    /* SETITEMS on a placeholder (a dict subclass) drops the items: it never becomes a dict */
    pb_op(&p, 0x80), pb_op(&p, 2), pb_global(&p, "collections", "defaultdict"), pb_op(&p, ')'), pb_op(&p, 'R');
    pb_op(&p, '('), pb_str(&p, "w"), pb_str(&p, "x"), pb_op(&p, 'u'), pb_op(&p, '.');
    refuse_pickle("SETITEMS on a dict subclass", &p, -1, CMCR_EUNSUPPORTED,
                  "an object of class 'collections.defaultdict'");
}

static void test_hostile_structure(void **state)
{
    (void)state;
    pb p = {0};
    pb_op(&p, 0x80), pb_op(&p, 2);
    for (int i = 0; i < 100000; i++) pb_op(&p, '(');
    refuse_pickle("100000 nested MARKs", &p, -1, CMCR_ENOMEM, "MARKs nested");

    pb_op(&p, 0x80), pb_op(&p, 2);
    for (int i = 0; i < 100000; i++) pb_op(&p, ']');
    refuse_pickle("100000 EMPTY_LISTs on the stack", &p, -1, CMCR_ENOMEM, "items on the pickle stack");

    /* 100000 lists nested through the memo (constant stack), then a cycle: parsed without
     * recursion, refused as not a state_dict */
    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, ']'), pb_op(&p, 'r'), pb_le(&p, 0, 4), pb_op(&p, '0');
    for (uint32_t i = 0; i < 100000; i++) {
        pb_op(&p, 'j'), pb_le(&p, i, 4), pb_op(&p, ']'), pb_op(&p, 'r'), pb_le(&p, i + 1, 4);
        pb_op(&p, 'a'), pb_op(&p, '0');
    }
    pb_op(&p, 'j'), pb_le(&p, 0, 4), pb_op(&p, 'j'), pb_le(&p, 0, 4), pb_op(&p, 'a'), pb_op(&p, '.');
    refuse_pickle("list nested 100000 deep via the memo, with a cycle", &p, -1, CMCR_EUNSUPPORTED,
                  "holds a list");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, 'h'), pb_op(&p, 5), pb_op(&p, '.');
    refuse_pickle("BINGET of an unset memo slot", &p, -1, CMCR_EFORMAT, "memo slot 5");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, 'N'), pb_op(&p, 'r'), pb_le(&p, 0xffffffffu, 4), pb_op(&p, '.');
    refuse_pickle("LONG_BINPUT with index 2^32-1", &p, -1, CMCR_ENOMEM, "memo index 4294967295");

    pb_state_dict(&p, &GOOD);
    p.n--; /* drop STOP */
    refuse_pickle("pickle truncated before STOP", &p, 16, CMCR_EFORMAT, "without a STOP");

}

static void test_hostile_opcodes(void **state)
{
    (void)state;
    pb p = {0};
    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, 'X'), pb_le(&p, 1000000, 4), pb_bytes(&p, "abc", 3);
    refuse_pickle("BINUNICODE longer than the pickle", &p, -1, CMCR_EFORMAT, "truncated");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, 0x8d), pb_le(&p, UINT64_MAX, 8);
    refuse_pickle("BINUNICODE8 of length 2^64-1", &p, -1, CMCR_EFORMAT, "truncated");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, 0xff), pb_op(&p, '.');
    refuse_pickle("unknown opcode 0xff", &p, -1, CMCR_EFORMAT, "0xff is not a pickle opcode");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, 'i'), pb_bytes(&p, "os\nsystem\n", 10), pb_op(&p, '.');
    refuse_pickle("INST opcode", &p, -1, CMCR_EUNSUPPORTED, "INST");

    pb_op(&p, 0x80), pb_op(&p, 1), pb_op(&p, 'N'), pb_op(&p, '.');
    refuse_pickle("pickle protocol 1", &p, -1, CMCR_EUNSUPPORTED, "protocol 1");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, 'a'), pb_op(&p, '.');
    refuse_pickle("APPEND on an empty stack", &p, -1, CMCR_EFORMAT, "stack is empty");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, ')'), pb_op(&p, 'N'), pb_op(&p, 'b'), pb_op(&p, '.');
    refuse_pickle("BUILD on a tuple", &p, -1, CMCR_EUNSUPPORTED, "BUILD on a tuple");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, '}'), pb_str(&p, "a"), pb_op(&p, '}'), pb_op(&p, 's');
    pb_op(&p, '.');
    refuse_pickle("state_dict entry that is a dict", &p, -1, CMCR_EUNSUPPORTED, "entry 'a' is a dict");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, '}'), pb_str(&p, "a\nb"), pb_op(&p, 'N'), pb_op(&p, 's');
    pb_op(&p, '.');
    refuse_pickle("state_dict key with a newline", &p, -1, CMCR_EFORMAT, "control characters");

    pb_op(&p, 0x80), pb_op(&p, 2), pb_op(&p, 'K'), pb_op(&p, 1), pb_op(&p, '.');
    refuse_pickle("pickle of an int", &p, -1, CMCR_EUNSUPPORTED, "holds an int");
}

static void test_hostile_tensors(void **state)
{
    (void)state;
    refuse_spec("storage data entry missing", &GOOD, -1, CMCR_EFORMAT, "has no data entry 'archive/data/0'");
    refuse_spec("storage data entry too short", &GOOD, 8, CMCR_EFORMAT, "holds 8 bytes");
    refuse_spec("storage data entry too long", &GOOD, 20, CMCR_EFORMAT, "holds 20 bytes");

    spec s = GOOD;
    s.size[0] = s.size[1] = (int64_t)1 << 62;
    refuse_spec("size product overflows (2^62 x 2^62)", &s, 16, CMCR_EFORMAT, "overflows");

    s = GOOD;
    s.numel = (int64_t)1 << 62;
    s.size[0] = (int64_t)1 << 61;
    s.size[1] = 2;
    s.stride[0] = 2;
    refuse_spec("storage of 2^62 floats (byte size overflows)", &s, 16, CMCR_EFORMAT, "byte size overflows");

    s = GOOD;
    s.numel = (int64_t)1 << 40;
    s.size[0] = (int64_t)1 << 39;
    refuse_spec("storage of 2^40 floats (4 TiB, over the limit)", &s, 16, CMCR_ENOMEM, "limit");

    s = GOOD;
    s.numel = 6;
    s.size[0] = 2, s.size[1] = 3, s.stride[0] = 1, s.stride[1] = 2;
    refuse_spec("non-contiguous stride (transpose)", &s, 24, CMCR_EUNSUPPORTED, "non-contiguous");

    s = GOOD;
    s.offset = 3;
    refuse_spec("storage offset past the end", &s, 16, CMCR_EFORMAT, "runs past the end");

    s = GOOD;
    s.offset = INT64_MAX;
    refuse_spec("storage offset 2^63-1", &s, 16, CMCR_EFORMAT, "runs past the end");

    s = GOOD;
    s.stride[1] = -1;
    refuse_spec("negative stride", &s, 16, CMCR_EFORMAT, "negative entry");

    s = GOOD;
    s.ndim = 9;
    for (int i = 0; i < 9; i++) s.size[i] = 1, s.stride[i] = 1;
    refuse_spec("9-dimensional tensor", &s, 16, CMCR_EUNSUPPORTED, "9 dimensions");

    s = GOOD;
    s.key = "1";
    refuse_spec("storage key not in the archive", &s, 16, CMCR_EFORMAT, "has no data entry");

    s = GOOD;
    s.key = "../0\n";
    refuse_spec("storage key with '/' and a newline", &s, 16, CMCR_EFORMAT, "storage key");

    /* the same storage key declared as Float and as Long */
    pb p = {0};
    pb_state_dict(&p, &GOOD);
    pb_add_entry(&p, "v", "LongStorage");
    refuse_pickle("one storage key with two dtypes", &p, 16, CMCR_EFORMAT, "declared twice");

    pb_state_dict(&p, &GOOD);
    pb_add_entry(&p, "w", "FloatStorage");
    refuse_pickle("the same key twice in the state_dict", &p, 16, CMCR_EFORMAT, "appears twice");
}


/* ------------------------------------------------------------------ (e) memory per file */

/* A state_dict of n tensors "t<i>" on storages "<i % nstores>" of numel floats each; tensor i
 * views `view` floats at offset i % (numel - view + 1). */
static void pb_views(pb *p, int n, int nstores, int64_t numel, int64_t view)
{
    pb_op(p, 0x80), pb_op(p, 2), pb_global(p, "collections", "OrderedDict"), pb_op(p, ')'), pb_op(p, 'R');
    for (int i = 0; i < n; i++) {
        char name[16], key[16];
        snprintf(name, sizeof name, "t%d", i);
        snprintf(key, sizeof key, "%d", i % nstores);
        spec s = {"FloatStorage", key, numel, i % (numel - view + 1), 1, {view}, {1}};
        pb_op(p, '('), pb_str(p, name), pb_tensor(p, &s), pb_op(p, 'u');
    }
    pb_op(p, '.');
}

/* Set the uncompressed size that the local and central headers of entry name state. */
static void claim_size(unsigned char *zip, size_t n, const char *name, uint32_t size)
{
    size_t len = strlen(name);
    int patched = 0;
    for (size_t i = 0; i + 46 + len <= n; i++) {
        bool local = memcmp(zip + i, "PK\x03\x04", 4) == 0, central = memcmp(zip + i, "PK\x01\x02", 4) == 0;
        size_t name_at = local ? 30 : 46, len_at = local ? 26 : 28, size_at = local ? 22 : 24;
        if (!(local || central) || (size_t)(zip[i + len_at] | zip[i + len_at + 1] << 8) != len ||
            memcmp(zip + i + name_at, name, len) != 0)
            continue;
        for (int k = 0; k < 4; k++) zip[i + size_at + k] = (unsigned char)(size >> (8 * k));
        patched++;
    }
    assert_int_equal(patched, 2);
}

/* A deflated checkpoint of pickle p and nstores storages of 16 real bytes each, whose headers
 * claim `claim` bytes per storage (and, if pkl_claim, that much for data.pkl). */
static void write_claiming(const char *path, const pb *p, int nstores, uint32_t claim, uint32_t pkl_claim)
{
    static unsigned char data[16];
    entry e[24] = {{"archive/data.pkl", p->b, p->n}};
    char names[24][32];
    assert_true(nstores < 24);
    for (int i = 0; i < nstores; i++) {
        snprintf(names[i], sizeof names[i], "archive/data/%d", i);
        e[i + 1] = (entry){names[i], data, sizeof data};
    }
    write_zip(path, e, nstores + 1, true);
    size_t n;
    unsigned char *zip = (unsigned char *)read_all(path, &n);
    for (int i = 0; i < nstores; i++) claim_size(zip, n, names[i], claim);
    if (pkl_claim) claim_size(zip, n, "archive/data.pkl", pkl_claim);
    tu_write_file(path, zip, n);
    free(zip);
}

/* 300 tensors viewing one 1 MiB storage, deflated into a few KB: the storage is read once and
 * every tensor points into it (copies would take 300 MiB). */
static void test_views_share_storage(void **state)
{
    (void)state;
    const int64_t numel = 1 << 18;
    pb p = {0};
    pb_views(&p, 300, 1, numel, numel - 5);
    float *data = malloc(numel * sizeof *data);
    for (int64_t i = 0; i < numel; i++) data[i] = (float)i;
    entry e[] = {{"archive/data.pkl", p.b, p.n}, {"archive/data/0", data, numel * sizeof *data}};
    char *path = tu_path("views.pt");
    write_zip(path, e, 2, true);
    cmcr_tensors *ts = NULL;
    assert_int_equal(pt_load(path, &ts), CMCR_OK);
    assert_int_equal(cmcr_tensors_count(ts), 300);
    const float *base = cmcr_tensors_at(ts, 0)->data;
    for (int i = 0; i < 300; i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, (size_t)i);
        assert_ptr_equal(t->data, base + i % 6);
        assert_int_equal(t->nbytes, (numel - 5) * sizeof(float));
        assert_true(((const float *)t->data)[7] == (float)(i % 6 + 7));
    }
    cmcr_tensors_free(ts);
    free(data);
    free(p.b);
    free(path);
}

/* Sizes in the zip headers are claims: they are checked against the file before allocating. */
static void test_claims_past_the_file(void **state)
{
    (void)state;
    char *path = tu_path("claims.pt");
    pb p = {0};
    pb_views(&p, 1, 1, 1 << 24, 1);
    write_claiming(path, &p, 1, 1u << 26, 0);
    expect_refused("a storage claiming 64 MiB in a small deflated file", path, CMCR_EFORMAT,
                   "storages claim 67108864 bytes, more than a");
    free(p.b);
    memset(&p, 0, sizeof p);

    pb_views(&p, 1, 1, 4, 4);
    write_claiming(path, &p, 1, 16, 50u << 20);
    expect_refused("data.pkl claiming 50 MiB in a small deflated file", path, CMCR_EFORMAT,
                   "'archive/data.pkl' claims 52428800 bytes, more than a");
    free(p.b);
    memset(&p, 0, sizeof p);

    /* 18 storages of 3.75 GiB: each under the limit per tensor, 67.5 GiB in all */
    pb_views(&p, 18, 18, 0xF0000000 / 4, 1);
    write_claiming(path, &p, 18, 0xF0000000u, 0);
    expect_refused("18 storages of 3.75 GiB (67.5 GiB in one file)", path, CMCR_ENOMEM,
                   "more than the limit of 68719476736 per file");
    free(p.b);
    free(path);
}

/* The one name rule (tensors_check_name) for state_dict keys. */
static void test_hostile_names(void **state)
{
    (void)state;
    static const struct {
        const char *label, *key, *needle;
        size_t len;
    } cases[] = {
        {"state_dict key with a C1 control (U+009B, CSI)", "a\xc2\x9b" "31m", "'a\\xc2\\x9b31m' contains control", 0},
        {"state_dict key that is not UTF-8", "w\xff", "'w\\xff' is not valid UTF-8", 0},
        {"state_dict key that is empty", "", "key '' is empty", 0},
        {"state_dict key with an escape sequence", "\x1b]0;owned\x07", "'\\x1b]0;owned\\x07' contains control", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pb p = {0};
        pb_state_dict(&p, &GOOD);
        pb_add_entry(&p, cases[i].key, "FloatStorage");
        refuse_pickle(cases[i].label, &p, 16, CMCR_EFORMAT, cases[i].needle);
    }
    char long_key[600];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    pb p = {0};
    pb_state_dict(&p, &GOOD);
    pb_add_entry(&p, long_key, "FloatStorage");
    refuse_pickle("state_dict key of 599 bytes", &p, 16, CMCR_EFORMAT, "is longer than 512 bytes");
}

int main(void)
{
    const char *d = tu_testdata();
    struct stat st;
    if (d) {
        released_path = malloc(strlen(d) + 64);
        sprintf(released_path, "%s/cmcr-ulip-clip/ulip_clip.pt", d);
        if (stat(released_path, &st) != 0) {
            free(released_path);
            released_path = NULL;
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_many_tensors),
        cmocka_unit_test(test_bare_tensor),      cmocka_unit_test(test_all_opcodes),
        cmocka_unit_test(test_save_errors),      cmocka_unit_test(test_good_control),
        cmocka_unit_test(test_not_a_checkpoint), cmocka_unit_test(test_hostile_globals),
        cmocka_unit_test(test_hostile_structure), cmocka_unit_test(test_hostile_opcodes),
        cmocka_unit_test(test_hostile_tensors),  cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_views_share_storage), cmocka_unit_test(test_claims_past_the_file),
        cmocka_unit_test(test_torch_reads_cmcr), cmocka_unit_test(test_cmcr_reads_torch),
        cmocka_unit_test(test_training_checkpoint),
        cmocka_unit_test(test_load_only),
        cmocka_unit_test(test_released_checkpoint),
    };
    int rc = tu_run_group(tests);
    bool have_data = released_path != NULL;
    free(released_path);
    /* The other cases ran and passed: report a pass, and say which case was skipped (cmocka
     * lists it as SKIPPED) rather than marking the whole program skipped. */
    if (rc == 0 && !have_data)
        printf("NOTE: test_released_checkpoint skipped: ../shared/data/cmcr-ulip-clip/ulip_clip.pt not found "
               "(set CMCR_TESTDATA)\n");
    return rc;
}
