/* gallery.c - gallery files (docs/search.md): one .safetensors file of the projected,
 * normalised embeddings of a collection of files, with each file's path, modality, content
 * fingerprint, size and modification time, and in the metadata what made them.
 *
 * Reading maps the file (the safetensors parser, then every gallery rule checked once, so the
 * accessors need no checks); the rows' paths are pointers into the mapped "paths" bytes.
 * Writing streams the tensors out of the rows (kept rows point into a loaded gallery, new
 * rows are copied), sorted by path, through safetensors_save_filled: never a second copy of
 * the embeddings in memory. */
#include "search/gallery.h"
#include "io/io.h"
#include "runtime/file.h"
#include "runtime/vmath.h"

#include <stdlib.h>
#include <string.h>

struct cmcr_gallery {
    cmcr_tensors *ts;
    int64_t rows, dim;
    const float *emb;
    float *emb_own; /* an aligned copy, when the file's embeddings are not float-aligned */
    const unsigned char *hash, *size, *mtime, *modality; /* little-endian, read with memcpy */
    const char **paths;
};

static int64_t read_i64(const unsigned char *p, int64_t i)
{
    int64_t v;
    memcpy(&v, p + 8 * i, 8);
    return v;
}

static int32_t read_i32(const unsigned char *p, int64_t i)
{
    int32_t v;
    memcpy(&v, p + 4 * i, 4);
    return v;
}

/* ------------------------------------------------------------------ reading */

static const char *const TENSORS[] = {GALLERY_EMBEDDINGS, GALLERY_HASH, GALLERY_SIZE, GALLERY_MTIME,
                                      GALLERY_MODALITY, GALLERY_PATHS};

/* The format and version, and no tensor this version does not have. */
static cmcr_status check_kind(const cmcr_tensors *ts, const char *name)
{
    const char *format = cmcr_tensors_get_meta(ts, GALLERY_META_FORMAT);
    const char *version = cmcr_tensors_get_meta(ts, GALLERY_META_VERSION);
    char shown[80];
    if (!format)
        return core_fail(CMCR_EFORMAT, "%s: not a cmcr gallery (its metadata has no \"format\": \"" GALLERY_FORMAT "\")",
                         name);
    if (strcmp(format, GALLERY_FORMAT) != 0)
        return core_fail(CMCR_EFORMAT, "%s: not a cmcr gallery (its metadata says format '%s')", name,
                         cmcr_printable(shown, sizeof shown, format));
    if (!version || strcmp(version, GALLERY_VERSION) != 0)
        return core_fail(CMCR_EUNSUPPORTED, "%s: gallery version '%s' is not supported (this cmcr reads version "
                         GALLERY_VERSION ")", name, version ? cmcr_printable(shown, sizeof shown, version) : "(none)");
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const char *t = cmcr_tensors_at(ts, i)->name;
        bool known = false;
        for (size_t k = 0; k < sizeof TENSORS / sizeof TENSORS[0]; k++) known = known || strcmp(t, TENSORS[k]) == 0;
        if (!known) return core_fail(CMCR_EFORMAT, "%s: unexpected tensor '%s' in a gallery", name, t);
    }
    return CMCR_OK;
}

/* Tensor key: dtype dt and one dimension of n (n < 0: any). */
static cmcr_status want_1d(const cmcr_tensors *ts, const char *name, const char *key, cmcr_dtype dt, int64_t n,
                           const cmcr_tensor **out)
{
    const cmcr_tensor *t = cmcr_tensors_find(ts, key);
    if (!t) return core_fail(CMCR_EFORMAT, "%s: gallery has no tensor '%s'", name, key);
    if (t->dtype != dt || t->ndim != 1 || (n >= 0 && t->shape[0] != n)) {
        char want[32] = "";
        if (n >= 0) snprintf(want, sizeof want, "%lld", (long long)n);
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s' is %s with %d dimension(s) (first %lld), expected %s [%s]",
                         name, key, cmcr_dtype_name(t->dtype), t->ndim, (long long)(t->ndim ? t->shape[0] : 0),
                         cmcr_dtype_name(dt), n >= 0 ? want : "bytes");
    }
    *out = t;
    return CMCR_OK;
}

/* Metadata key holds the decimal number want. */
static cmcr_status meta_number(const cmcr_tensors *ts, const char *name, const char *key, int64_t want)
{
    const char *v = cmcr_tensors_get_meta(ts, key);
    int64_t got = -1;
    if (!v || cmcr_parse_int(v, 0, INT64_MAX, &got) || got != want) {
        char shown[64];
        return core_fail(CMCR_EFORMAT, "%s: metadata \"%s\" is %s%s%s, but the embeddings say %lld", name, key,
                         v ? "'" : "", v ? cmcr_printable(shown, sizeof shown, v) : "absent", v ? "'" : "",
                         (long long)want);
    }
    return CMCR_OK;
}

static cmcr_status check_embeddings(cmcr_gallery *g, const char *name)
{
    const cmcr_tensor *t = cmcr_tensors_find(g->ts, GALLERY_EMBEDDINGS);
    if (!t) return core_fail(CMCR_EFORMAT, "%s: gallery has no tensor '" GALLERY_EMBEDDINGS "'", name);
    if (t->dtype != CMCR_F32 || t->ndim != 2 || t->shape[1] < 1)
        return core_fail(CMCR_EFORMAT, "%s: tensor '" GALLERY_EMBEDDINGS "' is %s with %d dimension(s), expected "
                         "F32 [rows, width >= 1]", name, cmcr_dtype_name(t->dtype), t->ndim);
    g->rows = t->shape[0];
    g->dim = t->shape[1];
    cmcr_status st = meta_number(g->ts, name, GALLERY_META_DIM, g->dim);
    if (!st) st = meta_number(g->ts, name, GALLERY_META_ROWS, g->rows);
    if (st) return st;
    g->emb = t->data;
    if ((uintptr_t)t->data % _Alignof(float) != 0) { /* written by another program: copy */
        g->emb_own = core_xmalloc(t->nbytes);
        if (!g->emb_own) return core_fail(CMCR_ENOMEM, "%s: cannot allocate %zu bytes", name, t->nbytes);
        memcpy(g->emb_own, t->data, t->nbytes);
        g->emb = g->emb_own;
    }
    return vm_check_finite(g->emb, g->rows, g->dim, 0, "%s: embeddings", name);
}

/* rows paths, each non-empty, absolute, ending with NUL, in strictly increasing byte order. */
static cmcr_status parse_paths(cmcr_gallery *g, const char *name)
{
    const cmcr_tensor *t;
    cmcr_status st = want_1d(g->ts, name, GALLERY_PATHS, CMCR_U8, -1, &t);
    if (st) return st;
    const char *p = t->data;
    size_t len = t->nbytes, at = 0;
    if (len && p[len - 1] != '\0') return core_fail(CMCR_EFORMAT, "%s: the paths do not end with a NUL byte", name);
    g->paths = core_xmalloc((size_t)g->rows * sizeof *g->paths);
    if (!g->paths) return core_fail(CMCR_ENOMEM, "%s: cannot allocate %lld paths", name, (long long)g->rows);
    int64_t r = 0;
    char a[200], b[200];
    for (; at < len; r++) {
        const char *s = p + at;
        size_t n = strlen(s); /* within the tensor: its last byte is NUL */
        if (r >= g->rows) return core_fail(CMCR_EFORMAT, "%s: more paths than the %lld rows", name, (long long)g->rows);
        if (n == 0) return core_fail(CMCR_EFORMAT, "%s: the path of row %lld is empty", name, (long long)r);
        if (s[0] != '/')
            return core_fail(CMCR_EFORMAT, "%s: the path of row %lld is not absolute ('%s')", name, (long long)r,
                             tensors_escape(a, sizeof a, s, n));
        if (r > 0 && strcmp(g->paths[r - 1], s) >= 0)
            return core_fail(CMCR_EFORMAT, "%s: the paths of rows %lld and %lld are %s ('%s', '%s')", name,
                             (long long)r - 1, (long long)r,
                             strcmp(g->paths[r - 1], s) ? "not in increasing byte order" : "the same",
                             tensors_escape(a, sizeof a, g->paths[r - 1], strlen(g->paths[r - 1])),
                             tensors_escape(b, sizeof b, s, n));
        g->paths[r] = s;
        at += n + 1;
    }
    if (r != g->rows)
        return core_fail(CMCR_EFORMAT, "%s: %lld paths for %lld rows", name, (long long)r, (long long)g->rows);
    return CMCR_OK;
}

static cmcr_status check_columns(cmcr_gallery *g, const char *name)
{
    const cmcr_tensor *hash, *size, *mtime, *mod;
    cmcr_status st = want_1d(g->ts, name, GALLERY_HASH, CMCR_I64, g->rows, &hash);
    if (!st) st = want_1d(g->ts, name, GALLERY_SIZE, CMCR_I64, g->rows, &size);
    if (!st) st = want_1d(g->ts, name, GALLERY_MTIME, CMCR_I64, g->rows, &mtime);
    if (!st) st = want_1d(g->ts, name, GALLERY_MODALITY, CMCR_I32, g->rows, &mod);
    if (st) return st;
    g->hash = hash->data, g->size = size->data, g->mtime = mtime->data, g->modality = mod->data;
    for (int64_t r = 0; r < g->rows; r++) {
        int32_t m = read_i32(g->modality, r);
        if (m < 0 || m >= CMCR_MODALITIES)
            return core_fail(CMCR_EFORMAT, "%s: row %lld has modality %d (expected 0 to %d)", name, (long long)r,
                             (int)m, CMCR_MODALITIES - 1);
        if (read_i64(g->size, r) < 0)
            return core_fail(CMCR_EFORMAT, "%s: row %lld has a negative size (%lld)", name, (long long)r,
                             (long long)read_i64(g->size, r));
    }
    return CMCR_OK;
}

/* Takes ts (freed on failure). */
static cmcr_status gallery_from(cmcr_tensors *ts, const char *name, cmcr_gallery **out)
{
    cmcr_gallery *g = calloc(1, sizeof *g);
    if (!g) {
        cmcr_tensors_free(ts);
        return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    }
    g->ts = ts;
    cmcr_status st = check_kind(ts, name);
    if (!st) st = check_embeddings(g, name);
    if (!st) st = check_columns(g, name);
    if (!st) st = parse_paths(g, name);
    if (st) {
        cmcr_gallery_free(g);
        return st;
    }
    *out = g;
    return CMCR_OK;
}

cmcr_status cmcr_gallery_load(const char *path, cmcr_gallery **out)
{
    if (!out || !path) return core_fail(CMCR_EINVAL, "gallery: path and out are required");
    *out = NULL;
    cmcr_format fmt;
    cmcr_status st = cmcr_file_format(path, &fmt);
    if (st) return st;
    if (fmt != CMCR_FORMAT_SAFETENSORS)
        return core_fail(CMCR_EFORMAT, "%s: not a cmcr gallery (a .%s file; galleries are .safetensors)", path,
                         cmcr_format_name(fmt));
    cmcr_tensors *ts;
    st = tensors_load_mapped(path, CMCR_FORMAT_SAFETENSORS, &ts);
    return st ? st : gallery_from(ts, path, out);
}

cmcr_status cmcr_gallery_load_memory(const void *data, size_t len, const char *name, cmcr_gallery **out)
{
    if (!out) return core_fail(CMCR_EINVAL, "gallery: out is required");
    *out = NULL;
    if (!name) name = "(memory)";
    cmcr_tensors *ts;
    cmcr_status st = cmcr_tensors_load_memory(data, len, CMCR_FORMAT_SAFETENSORS, name, &ts);
    return st ? st : gallery_from(ts, name, out);
}

void cmcr_gallery_free(cmcr_gallery *g)
{
    if (!g) return;
    cmcr_tensors_free(g->ts);
    free(g->emb_own);
    free(g->paths);
    free(g);
}

int64_t cmcr_gallery_rows(const cmcr_gallery *g) { return g->rows; }
int64_t cmcr_gallery_dim(const cmcr_gallery *g) { return g->dim; }
const float *cmcr_gallery_embeddings(const cmcr_gallery *g) { return g->emb; }

const char *cmcr_gallery_path(const cmcr_gallery *g, int64_t row)
{
    return row >= 0 && row < g->rows ? g->paths[row] : NULL;
}

cmcr_modality cmcr_gallery_modality(const cmcr_gallery *g, int64_t row)
{
    return row >= 0 && row < g->rows ? (cmcr_modality)read_i32(g->modality, row) : CMCR_IMAGE;
}

const char *cmcr_gallery_meta(const cmcr_gallery *g, const char *key) { return cmcr_tensors_get_meta(g->ts, key); }

cmcr_status cmcr_gallery_get_row(const cmcr_gallery *g, int64_t row, cmcr_gallery_row *out)
{
    if (row < 0 || row >= g->rows)
        return core_fail(CMCR_EINVAL, "gallery: row %lld out of range (%lld rows)", (long long)row, (long long)g->rows);
    out->path = g->paths[row];
    out->modality = (cmcr_modality)read_i32(g->modality, row);
    out->content_hash = (uint64_t)read_i64(g->hash, row);
    out->size = read_i64(g->size, row);
    out->mtime_ns = read_i64(g->mtime, row);
    out->embedding = g->emb + row * g->dim;
    return CMCR_OK;
}

int64_t cmcr_gallery_find(const cmcr_gallery *g, const char *path)
{
    int64_t lo = 0, hi = g->rows; /* the row, if any, is in [lo, hi) */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->paths[mid], path);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

cmcr_status cmcr_gallery_topk(const cmcr_gallery *g, const float *queries, int64_t nq, int64_t dim, unsigned modalities,
                              int64_t k, int64_t *index, float *score)
{
    if (dim != g->dim)
        return core_fail(CMCR_ESHAPE, "gallery: queries are %lld wide, but the gallery's rows are %lld wide",
                         (long long)dim, (long long)g->dim);
    unsigned all = (1u << CMCR_MODALITIES) - 1;
    if (modalities & ~all) return core_fail(CMCR_EINVAL, "gallery: modality mask 0x%x has bits beyond 0x%x", modalities, all);
    unsigned char *keep = NULL;
    if (modalities && modalities != all) {
        keep = core_xmalloc((size_t)g->rows);
        if (!keep) return core_fail(CMCR_ENOMEM, "gallery: cannot allocate %lld flags", (long long)g->rows);
        for (int64_t r = 0; r < g->rows; r++) keep[r] = (modalities >> read_i32(g->modality, r)) & 1u;
    }
    cmcr_status st = cmcr_topk(queries, nq, g->emb, g->rows, dim, keep, k, index, score);
    free(keep);
    return st;
}

/* ------------------------------------------------------------------ writing */

typedef struct wrow {
    const char *path;   /* the gallery's (kept) or the writer's own (added: owned) */
    const float *emb;   /* likewise: into a gallery, or into the writer's chunks */
    uint64_t hash;
    int64_t size, mtime;
    int32_t modality;
    bool owned;
} wrow;

#define WCHUNK_ROWS 1024 /* new rows' embeddings are kept in chunks of this many rows */

struct cmcr_gallery_writer {
    int64_t dim;
    wrow *rows;
    int64_t n, cap;
    float **chunks; /* new rows' embeddings */
    int64_t nchunks, chunks_cap, chunk_used;
    cmcr_tensors *meta; /* metadata only */
};

cmcr_status cmcr_gallery_writer_new(int64_t dim, cmcr_gallery_writer **out)
{
    if (!out) return core_fail(CMCR_EINVAL, "gallery writer: out is required");
    *out = NULL;
    if (dim < 1 || dim > INT32_MAX) return core_fail(CMCR_EINVAL, "gallery writer: width %lld (expected 1 to %d)",
                                                     (long long)dim, INT32_MAX);
    cmcr_gallery_writer *w = calloc(1, sizeof *w);
    if (w) w->meta = cmcr_tensors_new();
    if (!w || !w->meta) {
        free(w);
        return core_fail(CMCR_ENOMEM, "gallery writer: out of memory");
    }
    w->dim = dim;
    w->chunk_used = WCHUNK_ROWS; /* no chunk yet */
    *out = w;
    return CMCR_OK;
}

void cmcr_gallery_writer_free(cmcr_gallery_writer *w)
{
    if (!w) return;
    for (int64_t i = 0; i < w->n; i++)
        if (w->rows[i].owned) free((char *)w->rows[i].path);
    for (int64_t i = 0; i < w->nchunks; i++) free(w->chunks[i]);
    free(w->rows);
    free(w->chunks);
    cmcr_tensors_free(w->meta);
    free(w);
}

cmcr_status cmcr_gallery_writer_set_meta(cmcr_gallery_writer *w, const char *key, const char *value)
{
    static const char *const own[] = {GALLERY_META_FORMAT, GALLERY_META_VERSION, GALLERY_META_DIM, GALLERY_META_ROWS};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strcmp(key, own[i]) == 0)
            return core_fail(CMCR_EINVAL, "gallery writer: metadata \"%s\" is the writer's own", key);
    return cmcr_tensors_set_meta(w->meta, key, value);
}

static cmcr_status push_row(cmcr_gallery_writer *w, const wrow *r)
{
    if (w->n == w->cap) {
        int64_t cap = w->cap ? 2 * w->cap : 1024;
        wrow *rows = realloc(w->rows, (size_t)cap * sizeof *rows);
        if (!rows) return core_fail(CMCR_ENOMEM, "gallery writer: out of memory for %lld rows", (long long)cap);
        w->rows = rows;
        w->cap = cap;
    }
    w->rows[w->n++] = *r;
    return CMCR_OK;
}

cmcr_status cmcr_gallery_writer_keep(cmcr_gallery_writer *w, const cmcr_gallery *g, int64_t row)
{
    if (g->dim != w->dim)
        return core_fail(CMCR_ESHAPE, "gallery writer: a row %lld wide cannot join rows %lld wide", (long long)g->dim,
                         (long long)w->dim);
    cmcr_gallery_row r;
    cmcr_status st = cmcr_gallery_get_row(g, row, &r);
    if (st) return st;
    wrow x = {r.path, r.embedding, r.content_hash, r.size, r.mtime_ns, (int32_t)r.modality, false};
    return push_row(w, &x);
}

/* Room for one more new row's embedding. */
static float *next_slot(cmcr_gallery_writer *w)
{
    if (w->chunk_used == WCHUNK_ROWS) {
        if (w->nchunks == w->chunks_cap) {
            int64_t cap = w->chunks_cap ? 2 * w->chunks_cap : 16;
            float **c = realloc(w->chunks, (size_t)cap * sizeof *c);
            if (!c) return NULL;
            w->chunks = c;
            w->chunks_cap = cap;
        }
        float *chunk = core_xmalloc((size_t)WCHUNK_ROWS * (size_t)w->dim * sizeof(float));
        if (!chunk) return NULL;
        w->chunks[w->nchunks++] = chunk;
        w->chunk_used = 0;
    }
    return w->chunks[w->nchunks - 1] + (w->chunk_used++) * w->dim;
}

cmcr_status cmcr_gallery_writer_add(cmcr_gallery_writer *w, const cmcr_gallery_row *r)
{
    char shown[200];
    if (!r->path || r->path[0] != '/')
        return core_fail(CMCR_EINVAL, "gallery writer: path '%s' is not absolute",
                         r->path ? cmcr_printable(shown, sizeof shown, r->path) : "(none)");
    cmcr_printable(shown, sizeof shown, r->path);
    if ((int)r->modality < 0 || (int)r->modality >= CMCR_MODALITIES)
        return core_fail(CMCR_EINVAL, "gallery writer: %s: modality %d out of range", shown, (int)r->modality);
    if (r->size < 0) return core_fail(CMCR_EINVAL, "gallery writer: %s: negative size %lld", shown, (long long)r->size);
    if (!r->embedding) return core_fail(CMCR_EINVAL, "gallery writer: %s: no embedding", shown);
    cmcr_status st = vm_check_finite(r->embedding, 1, w->dim, 0, "gallery writer: %s: embedding", shown);
    if (st) return st;
    char *path = core_strdup(r->path);
    float *slot = path ? next_slot(w) : NULL;
    if (!slot) {
        free(path);
        return core_fail(CMCR_ENOMEM, "gallery writer: out of memory adding %s", shown);
    }
    memcpy(slot, r->embedding, (size_t)w->dim * sizeof(float));
    wrow x = {path, slot, r->content_hash, r->size, r->mtime_ns, (int32_t)r->modality, true};
    st = push_row(w, &x);
    if (st) { /* the slot stays in its chunk, unused */
        free(path);
        w->chunk_used--;
    }
    return st;
}

int64_t cmcr_gallery_writer_rows(const cmcr_gallery_writer *w) { return w->n; }

static int by_path(const void *a, const void *b)
{
    return strcmp((*(const wrow *const *)a)->path, (*(const wrow *const *)b)->path);
}

/* Bytes through a 1 MiB buffer, so that rows of a few bytes are not a write each. */
typedef struct stage {
    struct afile *a;
    unsigned char *buf;
    size_t used;
    cmcr_status st;
} stage;
#define STAGE_BYTES ((size_t)1 << 20)

static void stage_put(stage *s, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (!s->st && n) {
        size_t room = STAGE_BYTES - s->used, take = n < room ? n : room;
        memcpy(s->buf + s->used, b, take);
        s->used += take, b += take, n -= take;
        if (s->used == STAGE_BYTES) {
            s->st = afile_write(s->a, s->buf, s->used);
            s->used = 0;
        }
    }
}

typedef struct save_job {
    const wrow *const *order;
    int64_t n, dim;
    unsigned char *buf;
} save_job;

static void put_le(stage *s, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
    stage_put(s, b, (size_t)bytes);
}

/* The bytes of tensor t, row after row in path order. */
static cmcr_status fill_tensor(struct afile *a, const cmcr_tensor *t, void *user)
{
    const save_job *j = user;
    stage s = {a, j->buf, 0, CMCR_OK};
    size_t kind = 0;
    while (kind < sizeof TENSORS / sizeof TENSORS[0] - 1 && strcmp(t->name, TENSORS[kind]) != 0) kind++;
    for (int64_t i = 0; i < j->n && !s.st; i++) {
        const wrow *r = j->order[i];
        switch (kind) { /* TENSORS' order */
        case 0: stage_put(&s, r->emb, (size_t)j->dim * sizeof(float)); break;
        case 1: put_le(&s, r->hash, 8); break;
        case 2: put_le(&s, (uint64_t)r->size, 8); break;
        case 3: put_le(&s, (uint64_t)r->mtime, 8); break;
        case 4: put_le(&s, (uint32_t)r->modality, 4); break;
        default: stage_put(&s, r->path, strlen(r->path) + 1);
        }
    }
    if (!s.st && s.used) s.st = afile_write(a, s.buf, s.used);
    return s.st;
}

/* The set to save: the metadata, and the tensors' names and shapes (no data: fill_tensor). */
static cmcr_status plan(const cmcr_gallery_writer *w, int64_t path_bytes, const char *path, cmcr_tensors **out)
{
    cmcr_tensors *ts = cmcr_tensors_new();
    if (!ts) return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    char dim[24], rows[24];
    snprintf(dim, sizeof dim, "%lld", (long long)w->dim);
    snprintf(rows, sizeof rows, "%lld", (long long)w->n);
    cmcr_status st = cmcr_tensors_set_meta(ts, GALLERY_META_FORMAT, GALLERY_FORMAT);
    if (!st) st = cmcr_tensors_set_meta(ts, GALLERY_META_VERSION, GALLERY_VERSION);
    if (!st) st = cmcr_tensors_set_meta(ts, GALLERY_META_DIM, dim);
    if (!st) st = cmcr_tensors_set_meta(ts, GALLERY_META_ROWS, rows);
    for (size_t i = 0; !st && i < cmcr_tensors_meta_count(w->meta); i++) {
        const char *k, *v;
        cmcr_tensors_meta_at(w->meta, i, &k, &v);
        st = cmcr_tensors_set_meta(ts, k, v);
    }
    int64_t emb[2] = {w->n, w->dim}, n[1] = {w->n}, bytes[1] = {path_bytes};
    if (!st) st = tensors_add_view(ts, GALLERY_EMBEDDINGS, CMCR_F32, 2, emb, NULL);
    if (!st) st = tensors_add_view(ts, GALLERY_HASH, CMCR_I64, 1, n, NULL);
    if (!st) st = tensors_add_view(ts, GALLERY_SIZE, CMCR_I64, 1, n, NULL);
    if (!st) st = tensors_add_view(ts, GALLERY_MTIME, CMCR_I64, 1, n, NULL);
    if (!st) st = tensors_add_view(ts, GALLERY_MODALITY, CMCR_I32, 1, n, NULL);
    if (!st) st = tensors_add_view(ts, GALLERY_PATHS, CMCR_U8, 1, bytes, NULL);
    if (st) {
        cmcr_tensors_free(ts);
        return core_fail_prefix(st, path);
    }
    *out = ts;
    return CMCR_OK;
}

cmcr_status cmcr_gallery_writer_save(cmcr_gallery_writer *w, const char *path)
{
    if (!path || !path[0]) return core_fail(CMCR_EINVAL, "gallery writer: no file name");
    const wrow **order = core_xmalloc((size_t)w->n * sizeof *order);
    unsigned char *buf = core_xmalloc(STAGE_BYTES);
    if (!order || !buf) {
        free(order);
        free(buf);
        return core_fail(CMCR_ENOMEM, "%s: out of memory sorting %lld rows", path, (long long)w->n);
    }
    int64_t path_bytes = 0;
    for (int64_t i = 0; i < w->n; i++) {
        order[i] = &w->rows[i];
        path_bytes += (int64_t)strlen(w->rows[i].path) + 1;
    }
    if (w->n > 1) qsort(order, (size_t)w->n, sizeof *order, by_path);
    cmcr_status st = CMCR_OK;
    for (int64_t i = 1; i < w->n && !st; i++)
        if (strcmp(order[i - 1]->path, order[i]->path) == 0) {
            char shown[200];
            st = core_fail(CMCR_EINVAL, "%s: two rows have the path '%s'", path,
                           cmcr_printable(shown, sizeof shown, order[i]->path));
        }
    cmcr_tensors *ts = NULL;
    if (!st) st = plan(w, path_bytes, path, &ts);
    save_job j = {order, w->n, w->dim, buf};
    if (!st) st = safetensors_save_filled(ts, path, fill_tensor, &j);
    cmcr_tensors_free(ts);
    free(order);
    free(buf);
    return st;
}
