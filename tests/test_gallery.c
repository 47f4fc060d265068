/* test_gallery.c - gallery files: the writer and the reader round trip (mapped and from
 * memory, rows sorted by path, kept rows and new ones, a save over the file the kept rows are
 * mapped from, no rows), search over a gallery (modality masks, the width check), every
 * refusal of the writer and of the reader (one line naming the file), and the fuzzer's seeds
 * (fuzz/corpus/fuzz_gallery, written by scripts/gallery.py --seeds: a second writer). */
#include "testutil.h"
#include "io/io.h"
#include "search/gallery.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { DIM = 4 };

/* Row i: path, modality i % 4, hash, size, mtime and an embedding made from i. */
static void sample_row(int i, const char *path, float *emb, cmcr_gallery_row *r)
{
    for (int c = 0; c < DIM; c++) emb[c] = (float)((i + 1) * (c + 1) % 7) - 3.0f;
    cmcr_normalize_rows(emb, 1, DIM);
    r->path = path;
    r->modality = (cmcr_modality)(i % CMCR_MODALITIES);
    r->content_hash = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1); /* the top bit set for some */
    r->size = 1000 + i;
    r->mtime_ns = -5 + 1000000007LL * i; /* before 1970 too */
    r->embedding = emb;
}

static const char *const PATHS[] = {"/data/z/last.jpg", "/data/a/first.wav", "/data/m/\xc3\xa9t\xc3\xa9.txt",
                                    "/data/a/first.wav2", "/data/b/c d/cloud.ply"};
#define NPATHS 5

static void assert_row(const cmcr_gallery *g, int64_t row, int i)
{
    float emb[DIM];
    cmcr_gallery_row want, got;
    sample_row(i, PATHS[i], emb, &want);
    assert_int_equal(cmcr_gallery_get_row(g, row, &got), CMCR_OK);
    assert_string_equal(got.path, want.path);
    assert_string_equal(cmcr_gallery_path(g, row), want.path);
    assert_int_equal(got.modality, want.modality);
    assert_int_equal(cmcr_gallery_modality(g, row), want.modality);
    assert_true(got.content_hash == want.content_hash);
    assert_int_equal(got.size, want.size);
    assert_int_equal(got.mtime_ns, want.mtime_ns);
    assert_memory_equal(got.embedding, emb, sizeof emb);
    assert_memory_equal(cmcr_gallery_embeddings(g) + row * DIM, emb, sizeof emb);
}

/* Sorted positions of PATHS: a, a2, b, m, z. */
static const int SORTED[NPATHS] = {1, 3, 4, 2, 0};

static char *write_sample(const char *name)
{
    cmcr_gallery_writer *w;
    assert_int_equal(cmcr_gallery_writer_new(DIM, &w), CMCR_OK);
    assert_int_equal(cmcr_gallery_writer_set_meta(w, "model", "/models/clap_clip.pt"), CMCR_OK);
    assert_int_equal(cmcr_gallery_writer_set_meta(w, "model_fingerprint", "0123456789abcdef"), CMCR_OK);
    for (int i = 0; i < NPATHS; i++) {
        float emb[DIM];
        cmcr_gallery_row r;
        sample_row(i, PATHS[i], emb, &r);
        assert_int_equal(cmcr_gallery_writer_add(w, &r), CMCR_OK);
    }
    assert_int_equal(cmcr_gallery_writer_rows(w), NPATHS);
    char *p = tu_path(name);
    assert_int_equal(cmcr_gallery_writer_save(w, p), CMCR_OK);
    cmcr_gallery_writer_free(w);
    return p;
}

static void check_sample(const cmcr_gallery *g)
{
    assert_int_equal(cmcr_gallery_rows(g), NPATHS);
    assert_int_equal(cmcr_gallery_dim(g), DIM);
    for (int r = 0; r < NPATHS; r++) assert_row(g, r, SORTED[r]);
    for (int i = 0; i < NPATHS; i++) assert_string_equal(cmcr_gallery_path(g, cmcr_gallery_find(g, PATHS[i])), PATHS[i]);
    assert_int_equal(cmcr_gallery_find(g, "/data/a/first.wa"), -1);
    assert_int_equal(cmcr_gallery_find(g, "/zzz"), -1);
    assert_int_equal(cmcr_gallery_find(g, ""), -1);
    assert_null(cmcr_gallery_path(g, NPATHS));
    assert_null(cmcr_gallery_path(g, -1));
    assert_string_equal(cmcr_gallery_meta(g, "format"), "cmcr-gallery");
    assert_string_equal(cmcr_gallery_meta(g, "version"), "1");
    assert_string_equal(cmcr_gallery_meta(g, "dim"), "4");
    assert_string_equal(cmcr_gallery_meta(g, "rows"), "5");
    assert_string_equal(cmcr_gallery_meta(g, "model"), "/models/clap_clip.pt");
    assert_string_equal(cmcr_gallery_meta(g, "model_fingerprint"), "0123456789abcdef");
    assert_null(cmcr_gallery_meta(g, "encoder_a"));
    cmcr_gallery_row r;
    assert_int_equal(cmcr_gallery_get_row(g, NPATHS, &r), CMCR_EINVAL);
}

static void test_round_trip(void **state)
{
    (void)state;
    char *p = write_sample("g.safetensors");
    cmcr_gallery *g = NULL, *m = NULL;
    assert_int_equal(cmcr_gallery_load(p, &g), CMCR_OK);
    check_sample(g);
    size_t n;
    unsigned char *bytes = tu_read_file(p, &n);
    assert_int_equal(cmcr_gallery_load_memory(bytes, n, "g", &m), CMCR_OK);
    free(bytes); /* copied */
    check_sample(m);
    /* The layout: embeddings first, right after the header (float-aligned when mapped). */
    cmcr_tensors *ts;
    assert_int_equal(cmcr_tensors_load(p, CMCR_FORMAT_SAFETENSORS, &ts), CMCR_OK);
    static const char *const order[] = {GALLERY_EMBEDDINGS, GALLERY_HASH, GALLERY_SIZE, GALLERY_MTIME,
                                        GALLERY_MODALITY, GALLERY_PATHS};
    assert_int_equal(cmcr_tensors_count(ts), 6);
    for (size_t i = 0; i < 6; i++) assert_string_equal(cmcr_tensors_at(ts, i)->name, order[i]);
    assert_int_equal(cmcr_tensors_at(ts, 5)->dtype, CMCR_U8);
    cmcr_tensors_free(ts);
    cmcr_gallery_free(g);
    cmcr_gallery_free(m);
    free(p);
}

/* Kept rows (from the mapped gallery) and a new one, saved over that same file; the old
 * gallery stays readable, and the new file holds the kept rows' bytes unchanged. */
static void test_keep_and_save_over(void **state)
{
    (void)state;
    char *p = write_sample("over.safetensors");
    cmcr_gallery *g = NULL, *again = NULL;
    assert_int_equal(cmcr_gallery_load(p, &g), CMCR_OK);
    cmcr_gallery_writer *w;
    assert_int_equal(cmcr_gallery_writer_new(DIM, &w), CMCR_OK);
    assert_int_equal(cmcr_gallery_writer_keep(w, g, 4), CMCR_OK); /* z/last.jpg */
    assert_int_equal(cmcr_gallery_writer_keep(w, g, 0), CMCR_OK); /* a/first.wav */
    float emb[DIM] = {0, 0, 0, 1};
    cmcr_gallery_row r = {"/data/new.txt", CMCR_TEXT, 77, 3, 4, emb};
    assert_int_equal(cmcr_gallery_writer_add(w, &r), CMCR_OK);
    assert_int_equal(cmcr_gallery_writer_save(w, p), CMCR_OK);
    check_sample(g); /* the mapping outlives the rename */
    assert_int_equal(cmcr_gallery_load(p, &again), CMCR_OK);
    assert_int_equal(cmcr_gallery_rows(again), 3);
    assert_row(again, 0, 1);
    assert_row(again, 2, 0);
    cmcr_gallery_row got;
    assert_int_equal(cmcr_gallery_get_row(again, 1, &got), CMCR_OK);
    assert_string_equal(got.path, "/data/new.txt");
    assert_memory_equal(got.embedding, emb, sizeof emb);
    /* Saved again with one more row: all four. */
    r.path = "/data/newer.txt";
    assert_int_equal(cmcr_gallery_writer_add(w, &r), CMCR_OK);
    char *p2 = tu_path("over2.safetensors");
    assert_int_equal(cmcr_gallery_writer_save(w, p2), CMCR_OK);
    cmcr_gallery *four = NULL;
    assert_int_equal(cmcr_gallery_load(p2, &four), CMCR_OK);
    assert_int_equal(cmcr_gallery_rows(four), 4);
    assert_string_equal(cmcr_gallery_meta(four, "rows"), "4");
    cmcr_gallery_free(four);
    cmcr_gallery_writer_free(w);
    cmcr_gallery_free(again);
    cmcr_gallery_free(g);
    free(p);
    free(p2);
}

static void test_no_rows(void **state)
{
    (void)state;
    cmcr_gallery_writer *w;
    assert_int_equal(cmcr_gallery_writer_new(7, &w), CMCR_OK);
    char *p = tu_path("empty.safetensors");
    assert_int_equal(cmcr_gallery_writer_save(w, p), CMCR_OK);
    cmcr_gallery_writer_free(w);
    cmcr_gallery *g = NULL;
    assert_int_equal(cmcr_gallery_load(p, &g), CMCR_OK);
    assert_int_equal(cmcr_gallery_rows(g), 0);
    assert_int_equal(cmcr_gallery_dim(g), 7);
    assert_int_equal(cmcr_gallery_find(g, "/x"), -1);
    float q[7] = {1, 0, 0, 0, 0, 0, 0}, sc[2];
    int64_t idx[2];
    assert_int_equal(cmcr_gallery_topk(g, q, 1, 7, 0, 2, idx, sc), CMCR_OK);
    assert_int_equal(idx[0], -1);
    assert_int_equal(idx[1], -1);
    cmcr_gallery_free(g);
    free(p);
}

static void test_topk_modalities(void **state)
{
    (void)state;
    char *p = write_sample("t.safetensors");
    cmcr_gallery *g = NULL;
    assert_int_equal(cmcr_gallery_load(p, &g), CMCR_OK);
    float q[DIM];
    cmcr_gallery_row r;
    sample_row(2, PATHS[2], q, &r); /* the text row's own embedding: it ranks first */
    int64_t idx[NPATHS];
    float sc[NPATHS];
    assert_int_equal(cmcr_gallery_topk(g, q, 1, DIM, 0, NPATHS, idx, sc), CMCR_OK);
    assert_string_equal(cmcr_gallery_path(g, idx[0]), PATHS[2]);
    assert_true(fabsf(sc[0] - 1.0f) < 1e-6f);
    for (int e = 0; e < NPATHS; e++) assert_true(idx[e] >= 0);
    /* Images and audio only: rows 0 (i = 0, image), 4 (i = 4, image) and 1, 3 (audio i = 1, points i = 3). */
    unsigned mask = 1u << CMCR_IMAGE | 1u << CMCR_AUDIO;
    assert_int_equal(cmcr_gallery_topk(g, q, 1, DIM, mask, NPATHS, idx, sc), CMCR_OK);
    int seen = 0;
    for (int e = 0; e < NPATHS; e++) {
        if (idx[e] < 0) continue;
        cmcr_modality m = cmcr_gallery_modality(g, idx[e]);
        assert_true(m == CMCR_IMAGE || m == CMCR_AUDIO);
        seen++;
    }
    assert_int_equal(seen, 3); /* i = 0, 4 (image) and 1 (audio) */
    assert_int_equal(cmcr_gallery_topk(g, q, 1, DIM - 1, 0, 2, idx, sc), CMCR_ESHAPE);
    assert_non_null(strstr(cmcr_last_error(), "queries are 3 wide, but the gallery's rows are 4 wide"));
    assert_int_equal(cmcr_gallery_topk(g, q, 1, DIM, 1u << 9, 2, idx, sc), CMCR_EINVAL);
    cmcr_gallery_free(g);
    free(p);
}

static void expect_fail(const char *label, cmcr_status got, cmcr_status want, const char *needle)
{
    printf("MSG\t%s\t%s\t%s\n", label, cmcr_status_name(got), cmcr_last_error());
    assert_int_equal(got, want);
    assert_non_null(strstr(cmcr_last_error(), needle));
    assert_null(strchr(cmcr_last_error(), '\n'));
}

static void test_writer_refusals(void **state)
{
    (void)state;
    cmcr_gallery_writer *w = NULL;
    expect_fail("writer width 0", cmcr_gallery_writer_new(0, &w), CMCR_EINVAL, "width 0");
    assert_null(w);
    assert_int_equal(cmcr_gallery_writer_new(DIM, &w), CMCR_OK);
    float emb[DIM] = {1, 0, 0, 0};
    cmcr_gallery_row r = {"relative/x.jpg", CMCR_IMAGE, 1, 1, 1, emb};
    expect_fail("relative path", cmcr_gallery_writer_add(w, &r), CMCR_EINVAL, "'relative/x.jpg' is not absolute");
    r.path = "";
    expect_fail("empty path", cmcr_gallery_writer_add(w, &r), CMCR_EINVAL, "is not absolute");
    r.path = "/x.jpg";
    r.modality = (cmcr_modality)4;
    expect_fail("modality out of range", cmcr_gallery_writer_add(w, &r), CMCR_EINVAL, "/x.jpg: modality 4 out of range");
    r.modality = CMCR_IMAGE;
    r.size = -1;
    expect_fail("negative size", cmcr_gallery_writer_add(w, &r), CMCR_EINVAL, "negative size -1");
    r.size = 1;
    emb[2] = NAN;
    expect_fail("NaN embedding", cmcr_gallery_writer_add(w, &r), CMCR_EVALUE, "/x.jpg: embedding: row 0 contains NaN (column 2)");
    emb[2] = 0;
    expect_fail("reserved metadata", cmcr_gallery_writer_set_meta(w, "rows", "9"), CMCR_EINVAL, "\"rows\" is the writer's own");
    expect_fail("bad metadata value", cmcr_gallery_writer_set_meta(w, "model", "a\x01" "b"), CMCR_EINVAL, "control characters");
    assert_int_equal(cmcr_gallery_writer_rows(w), 0);
    assert_int_equal(cmcr_gallery_writer_add(w, &r), CMCR_OK);
    assert_int_equal(cmcr_gallery_writer_add(w, &r), CMCR_OK); /* the same path twice: refused by the save */
    char *p = tu_path("dup.safetensors");
    expect_fail("a path twice", cmcr_gallery_writer_save(w, p), CMCR_EINVAL, "dup.safetensors: two rows have the path '/x.jpg'");
    struct stat sb;
    assert_int_not_equal(stat(p, &sb), 0); /* nothing written */
    char *no_dir = tu_path("no-such-dir/g.safetensors");
    cmcr_gallery_writer_free(w);
    assert_int_equal(cmcr_gallery_writer_new(DIM, &w), CMCR_OK);
    expect_fail("missing folder", cmcr_gallery_writer_save(w, no_dir), CMCR_EIO, "no-such-dir/g.safetensors");
    /* Kept rows must have the writer's width. */
    char *s = write_sample("keep.safetensors");
    cmcr_gallery *g = NULL;
    assert_int_equal(cmcr_gallery_load(s, &g), CMCR_OK);
    cmcr_gallery_writer *w3;
    assert_int_equal(cmcr_gallery_writer_new(3, &w3), CMCR_OK);
    expect_fail("kept row of another width", cmcr_gallery_writer_keep(w3, g, 0), CMCR_ESHAPE, "a row 4 wide cannot join rows 3 wide");
    expect_fail("kept row out of range", cmcr_gallery_writer_keep(w, g, 5), CMCR_EINVAL, "row 5 out of range");
    cmcr_gallery_writer_free(w3);
    cmcr_gallery_writer_free(w);
    cmcr_gallery_free(g);
    free(p), free(no_dir), free(s);
}

/* ------------------------------------------------------------------ reader refusals */

/* A good gallery's tensors, edited: one tensor dropped, one replaced or added, one metadata
 * key set or removed. */
typedef struct edit {
    const char *drop;
    const char *name; /* replaced (in place) or added (at the end) */
    cmcr_dtype dtype;
    int ndim;
    int64_t shape[2];
    const void *data;
    const char *meta_key, *meta_value; /* value NULL: removed */
} edit;

static char *edited(const char *file, const edit *e)
{
    char *good = write_sample("good-for-edits.safetensors");
    cmcr_tensors *ts, *out = cmcr_tensors_new();
    assert_int_equal(cmcr_tensors_load(good, CMCR_FORMAT_SAFETENSORS, &ts), CMCR_OK);
    for (size_t i = 0; i < cmcr_tensors_meta_count(ts); i++) {
        const char *k, *v;
        cmcr_tensors_meta_at(ts, i, &k, &v);
        if (!e->meta_key || strcmp(k, e->meta_key) != 0) assert_int_equal(cmcr_tensors_set_meta(out, k, v), CMCR_OK);
    }
    if (e->meta_key && e->meta_value) assert_int_equal(cmcr_tensors_set_meta(out, e->meta_key, e->meta_value), CMCR_OK);
    bool replaced = false;
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        if (e->drop && strcmp(t->name, e->drop) == 0) continue;
        if (e->name && strcmp(t->name, e->name) == 0) {
            assert_int_equal(cmcr_tensors_add(out, e->name, e->dtype, e->ndim, e->shape, e->data), CMCR_OK);
            replaced = true;
        } else {
            assert_int_equal(cmcr_tensors_add(out, t->name, t->dtype, t->ndim, t->shape, t->data), CMCR_OK);
        }
    }
    if (e->name && !replaced) assert_int_equal(cmcr_tensors_add(out, e->name, e->dtype, e->ndim, e->shape, e->data), CMCR_OK);
    char *p = tu_path(file);
    assert_int_equal(cmcr_tensors_save(out, p, CMCR_FORMAT_SAFETENSORS), CMCR_OK);
    cmcr_tensors_free(ts);
    cmcr_tensors_free(out);
    free(good);
    return p;
}

static void expect_load_fail(const char *label, const char *path, cmcr_status want, const char *needle)
{
    cmcr_gallery *g = (cmcr_gallery *)1;
    expect_fail(label, cmcr_gallery_load(path, &g), want, needle);
    assert_null(g);
    assert_non_null(strstr(cmcr_last_error(), path));
    size_t n;
    unsigned char *bytes = tu_read_file(path, &n);
    g = (cmcr_gallery *)1;
    assert_int_equal(cmcr_gallery_load_memory(bytes, n, "mem.safetensors", &g), want); /* the same refusal */
    assert_null(g);
    assert_non_null(strstr(cmcr_last_error(), "mem.safetensors"));
    free(bytes);
}

static void test_reader_refusals(void **state)
{
    (void)state;
    /* The sample's rows sorted: a/first.wav, a/first.wav2, b/c d/cloud.ply, m/été.txt, z/last.jpg */
    static const char bad_end[] = "/a\0/b\0/c\0/d\0/e";                 /* no final NUL */
    static const char empty_path[] = "/a\0\0/c\0/d\0/e\0";               /* row 1 empty */
    static const char relative[] = "/a\0b\0/c\0/d\0/e\0";                /* row 1 relative */
    static const char unsorted[] = "/a\0/c\0/b\0/d\0/e\0";
    static const char twice[] = "/a\0/b\0/b\0/d\0/e\0";
    static const char four[] = "/a\0/b\0/c\0/d\0";
    static const char six[] = "/a\0/b\0/c\0/d\0/e\0/f\0";
    int32_t mod_bad[NPATHS] = {0, 1, 4, 2, 3};
    int64_t size_bad[NPATHS] = {1, 2, 3, -4, 5}, hash4[4] = {0}, mod64[NPATHS] = {0};
    float emb_nan[NPATHS * DIM] = {0}, emb_1d[DIM] = {0};
    double emb_f64[NPATHS * DIM] = {0};
    emb_nan[1 * DIM + 3] = NAN;
    const struct {
        const char *label, *file;
        edit e;
        cmcr_status st;
        const char *needle;
    } cases[] = {
        {"no format", "nofmt.safetensors", {.meta_key = "format"}, CMCR_EFORMAT, "not a cmcr gallery (its metadata has no \"format\": \"cmcr-gallery\")"},
        {"another format", "otherfmt.safetensors", {.meta_key = "format", .meta_value = "pt"}, CMCR_EFORMAT, "not a cmcr gallery (its metadata says format 'pt')"},
        {"version 2", "v2.safetensors", {.meta_key = "version", .meta_value = "2"}, CMCR_EUNSUPPORTED, "gallery version '2' is not supported"},
        {"no dim", "nodim.safetensors", {.meta_key = "dim"}, CMCR_EFORMAT, "metadata \"dim\" is absent, but the embeddings say 4"},
        {"dim differs", "dim5.safetensors", {.meta_key = "dim", .meta_value = "5"}, CMCR_EFORMAT, "metadata \"dim\" is '5', but the embeddings say 4"},
        {"rows differ", "rows.safetensors", {.meta_key = "rows", .meta_value = "6"}, CMCR_EFORMAT, "metadata \"rows\" is '6', but the embeddings say 5"},
        {"extra tensor", "extra.safetensors", {.name = "extra", .dtype = CMCR_F32, .ndim = 1, .shape = {1}, .data = emb_1d}, CMCR_EFORMAT, "unexpected tensor 'extra' in a gallery"},
        {"no sizes", "nosize.safetensors", {.drop = GALLERY_SIZE}, CMCR_EFORMAT, "gallery has no tensor 'size'"},
        {"no embeddings", "noemb.safetensors", {.drop = GALLERY_EMBEDDINGS}, CMCR_EFORMAT, "gallery has no tensor 'embeddings'"},
        {"no paths", "nopaths.safetensors", {.drop = GALLERY_PATHS}, CMCR_EFORMAT, "gallery has no tensor 'paths'"},
        {"F64 embeddings", "f64.safetensors", {.name = GALLERY_EMBEDDINGS, .dtype = CMCR_F64, .ndim = 2, .shape = {NPATHS, DIM}, .data = emb_f64}, CMCR_EFORMAT, "tensor 'embeddings' is F64 with 2 dimension(s), expected F32 [rows, width >= 1]"},
        {"1-D embeddings", "emb1d.safetensors", {.name = GALLERY_EMBEDDINGS, .dtype = CMCR_F32, .ndim = 1, .shape = {DIM}, .data = emb_1d}, CMCR_EFORMAT, "expected F32 [rows, width >= 1]"},
        {"NaN embedding", "nan.safetensors", {.name = GALLERY_EMBEDDINGS, .dtype = CMCR_F32, .ndim = 2, .shape = {NPATHS, DIM}, .data = emb_nan}, CMCR_EVALUE, "embeddings: row 1 contains NaN (column 3)"},
        {"hashes for 4 rows", "hash4.safetensors", {.name = GALLERY_HASH, .dtype = CMCR_I64, .ndim = 1, .shape = {4}, .data = hash4}, CMCR_EFORMAT, "tensor 'content_hash' is I64 with 1 dimension(s) (first 4), expected I64 [5]"},
        {"I64 modalities", "mod64.safetensors", {.name = GALLERY_MODALITY, .dtype = CMCR_I64, .ndim = 1, .shape = {NPATHS}, .data = mod64}, CMCR_EFORMAT, "tensor 'modality' is I64"},
        {"modality 4", "mod4.safetensors", {.name = GALLERY_MODALITY, .dtype = CMCR_I32, .ndim = 1, .shape = {NPATHS}, .data = mod_bad}, CMCR_EFORMAT, "row 2 has modality 4 (expected 0 to 3)"},
        {"negative size", "negsize.safetensors", {.name = GALLERY_SIZE, .dtype = CMCR_I64, .ndim = 1, .shape = {NPATHS}, .data = size_bad}, CMCR_EFORMAT, "row 3 has a negative size (-4)"},
        {"paths without a final NUL", "noend.safetensors", {.name = GALLERY_PATHS, .dtype = CMCR_U8, .ndim = 1, .shape = {sizeof bad_end - 1}, .data = bad_end}, CMCR_EFORMAT, "the paths do not end with a NUL byte"},
        {"an empty path", "emptypath.safetensors", {.name = GALLERY_PATHS, .dtype = CMCR_U8, .ndim = 1, .shape = {sizeof empty_path - 1}, .data = empty_path}, CMCR_EFORMAT, "the path of row 1 is empty"},
        {"a relative path", "relative.safetensors", {.name = GALLERY_PATHS, .dtype = CMCR_U8, .ndim = 1, .shape = {sizeof relative - 1}, .data = relative}, CMCR_EFORMAT, "the path of row 1 is not absolute ('b')"},
        {"unsorted paths", "unsorted.safetensors", {.name = GALLERY_PATHS, .dtype = CMCR_U8, .ndim = 1, .shape = {sizeof unsorted - 1}, .data = unsorted}, CMCR_EFORMAT, "the paths of rows 1 and 2 are not in increasing byte order ('/c', '/b')"},
        {"a path twice", "twice.safetensors", {.name = GALLERY_PATHS, .dtype = CMCR_U8, .ndim = 1, .shape = {sizeof twice - 1}, .data = twice}, CMCR_EFORMAT, "the paths of rows 1 and 2 are the same ('/b', '/b')"},
        {"4 paths for 5 rows", "four.safetensors", {.name = GALLERY_PATHS, .dtype = CMCR_U8, .ndim = 1, .shape = {sizeof four - 1}, .data = four}, CMCR_EFORMAT, "4 paths for 5 rows"},
        {"6 paths for 5 rows", "six.safetensors", {.name = GALLERY_PATHS, .dtype = CMCR_U8, .ndim = 1, .shape = {sizeof six - 1}, .data = six}, CMCR_EFORMAT, "more paths than the 5 rows"},
        {"I32 paths", "paths32.safetensors", {.name = GALLERY_PATHS, .dtype = CMCR_I32, .ndim = 1, .shape = {NPATHS}, .data = mod_bad}, CMCR_EFORMAT, "tensor 'paths' is I32 with 1 dimension(s) (first 5), expected U8 [bytes]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = edited(cases[i].file, &cases[i].e);
        expect_load_fail(cases[i].label, p, cases[i].st, cases[i].needle);
        free(p);
    }
    /* Not safetensors at all, and a truncated gallery. */
    char *npy = tu_path("g.npy");
    float x[2] = {1, 2};
    assert_int_equal(cmcr_matrix_save_npy(npy, x, 1, 2), CMCR_OK);
    cmcr_gallery *g = NULL;
    expect_fail("a .npy file", cmcr_gallery_load(npy, &g), CMCR_EFORMAT, "g.npy: not a cmcr gallery (a .npy file; galleries are .safetensors)");
    char *good = write_sample("trunc.safetensors");
    size_t n;
    unsigned char *bytes = tu_read_file(good, &n);
    tu_write_file(good, bytes, n - 3);
    expect_load_fail("truncated", good, CMCR_EFORMAT, "trunc.safetensors");
    free(bytes);
    char *missing = tu_path("missing.safetensors");
    expect_fail("missing file", cmcr_gallery_load(missing, &g), CMCR_EIO, "missing.safetensors: cannot open");
    free(npy), free(good), free(missing);
}

/* Embeddings that are not the first tensor may sit at an offset that is not float-aligned in
 * the mapping: the reader copies them. */
static void test_unaligned_embeddings(void **state)
{
    (void)state;
    char *good = write_sample("align-src.safetensors");
    cmcr_tensors *ts, *out = cmcr_tensors_new();
    assert_int_equal(cmcr_tensors_load(good, CMCR_FORMAT_SAFETENSORS, &ts), CMCR_OK);
    for (size_t i = 0; i < cmcr_tensors_meta_count(ts); i++) {
        const char *k, *v;
        cmcr_tensors_meta_at(ts, i, &k, &v);
        assert_int_equal(cmcr_tensors_set_meta(out, k, v), CMCR_OK);
    }
    for (size_t pass = 0; pass < 2; pass++) /* paths (an odd number of bytes) first */
        for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
            const cmcr_tensor *t = cmcr_tensors_at(ts, i);
            if ((strcmp(t->name, GALLERY_PATHS) == 0) == (pass == 0))
                assert_int_equal(cmcr_tensors_add(out, t->name, t->dtype, t->ndim, t->shape, t->data), CMCR_OK);
        }
    assert_int_equal(cmcr_tensors_at(out, 0)->nbytes % 4 != 0, 1);
    char *p = tu_path("unaligned.safetensors");
    assert_int_equal(cmcr_tensors_save(out, p, CMCR_FORMAT_SAFETENSORS), CMCR_OK);
    cmcr_gallery *g = NULL;
    assert_int_equal(cmcr_gallery_load(p, &g), CMCR_OK);
    assert_int_equal((uintptr_t)cmcr_gallery_embeddings(g) % sizeof(float), 0);
    check_sample(g);
    cmcr_gallery_free(g);
    cmcr_tensors_free(ts);
    cmcr_tensors_free(out);
    free(good);
    free(p);
}

/* The fuzzer's seeds (scripts/gallery.py --seeds): good-* load, every other is refused in one line. */
static void test_fuzz_seeds(void **state)
{
    (void)state;
    const char *src = getenv("CMCR_SOURCE_DIR");
    if (!src) tu_skip("CMCR_SOURCE_DIR is not set");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/fuzz_gallery", src);
    DIR *d = opendir(dir);
    if (!d) tu_skip("no seeds in %s", dir);
    int good = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        cmcr_gallery *g = NULL;
        cmcr_status st = cmcr_gallery_load(path, &g);
        printf("seed %-32s %s\n", e->d_name, st ? cmcr_last_error() : "loads");
        if (strncmp(e->d_name, "good-", 5) == 0) {
            assert_int_equal(st, CMCR_OK);
            for (int64_t r = 0; r < cmcr_gallery_rows(g); r++) assert_int_equal(cmcr_gallery_find(g, cmcr_gallery_path(g, r)), r);
            good++;
        } else {
            assert_int_not_equal(st, CMCR_OK);
            assert_non_null(strstr(cmcr_last_error(), e->d_name));
            assert_null(strchr(cmcr_last_error(), '\n'));
            bad++;
        }
        cmcr_gallery_free(g);
    }
    closedir(d);
    assert_true(good >= 3);
    assert_true(bad >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_keep_and_save_over),
        cmocka_unit_test(test_no_rows),         cmocka_unit_test(test_topk_modalities),
        cmocka_unit_test(test_writer_refusals), cmocka_unit_test(test_reader_refusals),
        cmocka_unit_test(test_unaligned_embeddings), cmocka_unit_test(test_fuzz_seeds),
    };
    return tu_run_group(tests);
}
