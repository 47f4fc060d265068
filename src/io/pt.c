/* pt.c - PyTorch .pt state_dict files (the torch.save zip format, PyTorch >= 1.6).
 *
 * A checkpoint is a zip archive holding <archive>/data.pkl (a pickle describing the
 * state_dict, see pickle.c), <archive>/data/<key> (the raw little-endian bytes of each
 * storage) and <archive>/version. Tensors are views into storages: an element offset plus
 * sizes and strides. Only contiguous views are accepted. Each storage is read once and the
 * tensors that view it share its bytes, so a file's tensors take no more memory than its
 * distinct storages, which are checked against the file's size before any is read.
 *
 * A training checkpoint - a dict holding "state_dict" beside other entries (epoch, optimizer
 * state, an argparse.Namespace) - gives its state_dict, without DataParallel's "module."
 * prefix; nothing else of it is built or read (pickle.h: opaque placeholders).
 */
#include "io/pickle.h"
#include "runtime/file.h"
#include "io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

/* ================================================================== reading */

typedef struct store {
    const pk_storage *s;
    zip_uint64_t idx;    /* its data entry */
    uint64_t nbytes;
    unsigned char *data; /* NULL until read; then owned by the loader's tensor set */
} store;

typedef struct item {
    const char *name;
    const pk_tensor *t;
    store *st;
} item;

typedef struct loader {
    const char *path;           /* the file, or the name a buffer goes by in messages */
    const void *mem;            /* the archive in memory (NULL: read the file) */
    uint64_t file_bytes;
    zip_t *za;
    char *prefix; /* "archive/" */
    pk_arena *arena;
    item *items;
    size_t n;
    store *stores;
    size_t nstores;
    cmcr_tensors *ts;
    const char *const *only; /* keep only the entries whose names start with one of these (NULL: all) */
    size_t nonly;
} loader;

static void loader_free(loader *L)
{
    if (L->za) zip_discard(L->za);
    free(L->prefix);
    pk_free(L->arena);
    free(L->items);
    free(L->stores);
    cmcr_tensors_free(L->ts);
}

/* "(512, 512)", "(5,)", "()" */
static void dims_str(char *out, size_t cap, const int64_t *d, int n)
{
    size_t k = (size_t)snprintf(out, cap, "(");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (k < cap) snprintf(out + k, cap - k, n == 1 ? ",)" : ")");
}

/* Why what is not a zip archive is not a checkpoint, from its first n (<= 4) bytes. */
static cmcr_status not_zip(const char *path, const unsigned char *head, size_t n)
{
    if (n == 4 && memcmp(head, "PK\x03\x04", 4) == 0)
        return core_fail(CMCR_EFORMAT, "%s: zip archive without its central directory (truncated?)", path);
    if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5)
        return core_fail(CMCR_EUNSUPPORTED,
                         "%s: legacy (pre-1.6, non-zip) PyTorch checkpoint; re-save it with torch.save "
                         "in PyTorch 1.6 or later",
                         path);
    return core_fail(CMCR_EFORMAT, "%s: not a zip archive, so not a PyTorch checkpoint", path);
}

/* The first (up to 4) bytes of the archive, for not_zip. */
static size_t head_bytes(const loader *L, unsigned char head[4])
{
    if (L->mem) {
        size_t n = L->file_bytes < 4 ? (size_t)L->file_bytes : 4;
        memcpy(head, L->mem, n);
        return n;
    }
    FILE *f = fopen(L->path, "rb");
    size_t n = f ? fread(head, 1, 4, f) : 0;
    if (f) fclose(f);
    return n;
}

/* libzip over the file, or over the buffer (kept by the caller until the loader is freed). */
static zip_t *zip_open_input(loader *L, int *err)
{
    if (!L->mem) return zip_open(L->path, ZIP_RDONLY | ZIP_CHECKCONS, err);
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(L->mem, L->file_bytes, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!za && src) zip_source_free(src);
    *err = za ? 0 : zip_error_code_zip(&ze);
    zip_error_fini(&ze);
    return za;
}

static cmcr_status open_zip(loader *L)
{
    const char *path = L->path;
    int err = 0;
    L->za = zip_open_input(L, &err);
    if (L->za && !L->mem) {
        struct stat sb;
        if (stat(path, &sb) != 0) return core_fail(CMCR_EIO, "%s: cannot stat: %s", path, strerror(errno));
        L->file_bytes = (uint64_t)sb.st_size;
    }
    if (L->za) return CMCR_OK;
    if (err == ZIP_ER_NOZIP) {
        unsigned char head[4] = {0, 0, 0, 0};
        return not_zip(path, head, head_bytes(L, head));
    }
    cmcr_status st = CMCR_EFORMAT;
    if (err == ZIP_ER_OPEN || err == ZIP_ER_NOENT || err == ZIP_ER_READ) st = CMCR_EIO;
    if (err == ZIP_ER_MEMORY) st = CMCR_ENOMEM;
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    st = core_fail(st, "%s: cannot open as a zip archive: %s", path, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return st;
}

static cmcr_status find_prefix(loader *L)
{
    zip_int64_t n = zip_get_num_entries(L->za, 0);
    const char *found = NULL;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(L->za, (zip_uint64_t)i, 0);
        if (!name || !core_ends_with(name, "/data.pkl")) continue;
        cmcr_status st = tensors_check_name(CMCR_EFORMAT, "zip entry name", name, strlen(name));
        if (st) return core_fail_prefix(st, L->path);
        if (found)
            return core_fail(CMCR_EFORMAT, "%s: two pickles in one checkpoint ('%s' and '%s')", L->path,
                             found, name);
        found = name;
    }
    if (!found)
        return core_fail(CMCR_EFORMAT,
                         "%s: zip archive without an <archive>/data.pkl entry, so not a PyTorch checkpoint",
                         L->path);
    size_t len = strlen(found) - strlen("data.pkl");
    L->prefix = core_xmalloc(len + 1);
    if (!L->prefix) return core_fail(CMCR_ENOMEM, "%s: out of memory", L->path);
    memcpy(L->prefix, found, len);
    L->prefix[len] = '\0';
    return CMCR_OK;
}

/* prefix + a + b, malloc'd. */
static char *entry_name(const loader *L, const char *a, const char *b)
{
    size_t n = strlen(L->prefix) + strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", L->prefix, a, b);
    return s;
}

/* Bytes that a file of this size can hold: a zip entry's data is stored (as torch writes it) or
 * deflated, which expands at most CMCR_MAX_INFLATE times. */
static uint64_t file_can_hold(const loader *L)
{
    uint64_t n;
    return core_mul_u64(L->file_bytes, CMCR_MAX_INFLATE, &n) ? n : UINT64_MAX;
}

/* Index and uncompressed size of an entry; false when absent. */
static bool find_entry(const loader *L, const char *name, zip_uint64_t *idx, zip_uint64_t *size)
{
    zip_int64_t i = zip_name_locate(L->za, name, 0);
    zip_stat_t sb;
    if (i < 0 || zip_stat_index(L->za, (zip_uint64_t)i, 0, &sb) != 0 || !(sb.valid & ZIP_STAT_SIZE))
        return false;
    *idx = (zip_uint64_t)i;
    *size = sb.size;
    return true;
}

/* Read exactly size bytes of entry idx (and check that it ends there, which checks its CRC). */
static cmcr_status read_entry(const loader *L, const char *name, zip_uint64_t idx, void *buf,
                              zip_uint64_t size)
{
    zip_file_t *f = zip_fopen_index(L->za, idx, 0);
    if (!f)
        return core_fail(CMCR_EFORMAT, "%s: cannot open entry '%s': %s", L->path, name, zip_strerror(L->za));
    zip_uint64_t got = 0;
    zip_int64_t r = 1;
    unsigned char extra;
    while (got < size && r > 0) {
        r = zip_fread(f, (unsigned char *)buf + got, size - got);
        if (r > 0) got += (zip_uint64_t)r;
    }
    if (r >= 0 && got == size) r = zip_fread(f, &extra, 1);
    cmcr_status st = CMCR_OK;
    if (r < 0)
        st = core_fail(CMCR_EFORMAT, "%s: cannot read entry '%s': %s", L->path, name, zip_file_strerror(f));
    else if (got != size || r != 0)
        st = core_fail(CMCR_EFORMAT, "%s: entry '%s' does not hold the %llu bytes its header states",
                       L->path, name, (unsigned long long)size);
    if (zip_fclose(f) != 0 && st == CMCR_OK)
        st = core_fail(CMCR_EFORMAT, "%s: cannot read entry '%s'", L->path, name);
    return st;
}

static cmcr_status check_byteorder(const loader *L)
{
    char *name = entry_name(L, "byteorder", "");
    char text[16] = {0};
    zip_uint64_t idx = 0, size = 0;
    cmcr_status st = CMCR_OK;
    if (!name) return core_fail(CMCR_ENOMEM, "%s: out of memory", L->path);
    if (find_entry(L, name, &idx, &size)) {
        if (size >= sizeof text) st = core_fail(CMCR_EFORMAT, "%s: entry '%s' is too long", L->path, name);
        if (!st) st = read_entry(L, name, idx, text, size);
        if (!st && strcmp(text, "little") != 0)
            st = core_fail(CMCR_EUNSUPPORTED,
                           "%s: '%s' is not 'little'; only little-endian checkpoints are supported",
                           L->path, name);
    }
    free(name);
    return st;
}

static cmcr_status parse_pickle(loader *L, pk_value **root)
{
    char *name = entry_name(L, "data.pkl", "");
    zip_uint64_t idx = 0, size = 0;
    unsigned char *buf = NULL;
    cmcr_status st = CMCR_OK;
    if (!name) return core_fail(CMCR_ENOMEM, "%s: out of memory", L->path);
    if (!find_entry(L, name, &idx, &size))
        st = core_fail(CMCR_EFORMAT, "%s: cannot find entry '%s'", L->path, name);
    else if (size > CMCR_MAX_HEADER_BYTES)
        st = core_fail(CMCR_ENOMEM, "%s: '%s' is %llu bytes, more than the limit of %llu", L->path, name,
                       (unsigned long long)size, (unsigned long long)CMCR_MAX_HEADER_BYTES);
    else if (size > file_can_hold(L))
        st = core_fail(CMCR_EFORMAT, "%s: '%s' claims %llu bytes, more than a %llu-byte file can hold (%d times "
                       "its size)", L->path, name, (unsigned long long)size, (unsigned long long)L->file_bytes,
                       CMCR_MAX_INFLATE);
    else if (!(buf = core_xmalloc((size_t)size)))
        st = core_fail(CMCR_ENOMEM, "%s: cannot allocate %llu bytes for '%s'", L->path,
                       (unsigned long long)size, name);
    if (!st) st = read_entry(L, name, idx, buf, size);
    if (!st) st = pk_parse(L->path, buf, (size_t)size, &L->arena, root);
    free(buf);
    free(name);
    return st;
}

static cmcr_status check_entry(const loader *L, size_t i, const pk_value *key, const pk_value *val)
{
    if (key->kind != PK_STR)
        return core_fail(CMCR_EFORMAT, "%s: state_dict key #%zu is %s, not a string", L->path, i,
                         pk_kind_desc(key->kind));
    cmcr_status st = tensors_check_name(CMCR_EFORMAT, "state_dict key", key->u.str.s, key->u.str.len);
    if (st) return core_fail_prefix(st, L->path);
    if (pk_object_is_tensor(val))
        return core_fail(CMCR_EUNSUPPORTED,
                         "%s: tensor '%s' has storage type '%s', which cmcr does not support (only Float, Half, "
                         "BFloat16, Double, Long, Int and Byte storages)", L->path, key->u.str.s, pk_object_name(val));
    if (val->kind == PK_OBJECT)
        return core_fail(CMCR_EUNSUPPORTED,
                         "%s: entry '%s' is an object of class '%s', not a tensor (only state_dicts of tensors "
                         "can be loaded; other classes are never constructed)", L->path, key->u.str.s,
                         pk_object_name(val));
    if (val->kind != PK_TENSOR)
        return core_fail(CMCR_EUNSUPPORTED,
                         "%s: entry '%s' is %s, not a tensor (only state_dicts of tensors can be loaded)",
                         L->path, key->u.str.s, pk_kind_desc(val->kind));
    return CMCR_OK;
}

/* A training checkpoint ({"state_dict": {...}, "epoch": ..., "optimizer": ...}, as LAION-CLAP
 * and ULIP save them) gives its state_dict; the other entries are never looked at (their
 * objects are opaque placeholders, their storages never read). Any other root is itself. */
static const pk_value *state_dict_of(const pk_value *root)
{
    if (root->kind != PK_DICT) return root;
    for (size_t i = 0; i + 1 < root->u.seq.n; i += 2) {
        const pk_value *k = root->u.seq.items[i], *v = root->u.seq.items[i + 1];
        if (k->kind == PK_STR && strcmp(k->u.str.s, "state_dict") == 0 && k->u.str.len == 10 && v->kind == PK_DICT)
            return v;
    }
    return root;
}

/* torch.nn.DataParallel's "module." prefix of a training checkpoint's state_dict, when every
 * key has it, is not part of the names. (A bare state dict keeps its names as they are, so
 * convert and inspect never rename a file's keys.) */
static size_t common_prefix(const pk_value *dict)
{
    static const char prefix[] = "module.";
    size_t n = dict->u.seq.n / 2, len = sizeof prefix - 1;
    for (size_t i = 0; i < n; i++) {
        const pk_value *k = dict->u.seq.items[2 * i];
        if (k->kind != PK_STR || k->u.str.len <= len || memcmp(k->u.str.s, prefix, len) != 0) return 0;
    }
    return n ? len : 0;
}

/* Whether the entry named key (a string; its first skip bytes are the dropped prefix) is one
 * the caller asked for (pt_load_only). Entries not asked for are never checked or read, so
 * whatever they hold costs nothing. */
static bool wanted(const loader *L, const pk_value *key, size_t skip)
{
    if (!L->only) return true;
    if (key->kind != PK_STR) return false;
    for (size_t k = 0; k < L->nonly; k++)
        if (strncmp(key->u.str.s + skip, L->only[k], strlen(L->only[k])) == 0) return true;
    return false;
}

/* The (name, tensor) pairs of the state dict, in order. A bare tensor is named "tensor". */
static cmcr_status collect_items(loader *L, const pk_value *root)
{
    bool bare = root->kind == PK_TENSOR;
    if (root->kind == PK_OBJECT || root->kind == PK_GLOBAL)
        return core_fail(CMCR_EUNSUPPORTED, "%s: the checkpoint holds %s '%s', not a state_dict of tensors "
                         "(other classes are never constructed)", L->path,
                         root->kind == PK_OBJECT ? "an object of class" : "the global",
                         root->u.global.name ? root->u.global.name : "(allowed)");
    if (!bare && root->kind != PK_DICT)
        return core_fail(CMCR_EUNSUPPORTED, "%s: the checkpoint holds %s, not a state_dict of tensors",
                         L->path, pk_kind_desc(root->kind));
    const pk_value *sd = bare ? root : state_dict_of(root);
    size_t n = bare ? 1 : sd->u.seq.n / 2;
    if (n > CMCR_MAX_TENSORS)
        return core_fail(CMCR_ENOMEM, "%s: %zu tensors, more than the limit of %d", L->path, n,
                         CMCR_MAX_TENSORS);
    L->items = core_xmalloc((n ? n : 1) * sizeof *L->items);
    if (!L->items) return core_fail(CMCR_ENOMEM, "%s: out of memory", L->path);
    L->n = n;
    if (bare) {
        L->items[0] = (item){"tensor", root->u.tensor, NULL};
        return CMCR_OK;
    }
    size_t skip = sd != root ? common_prefix(sd) : 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        const pk_value *key = sd->u.seq.items[2 * i], *val = sd->u.seq.items[2 * i + 1];
        if (!wanted(L, key, skip)) continue;
        cmcr_status st = check_entry(L, i, key, val);
        if (st) return st;
        L->items[kept++] = (item){key->u.str.s + skip, val->u.tensor, NULL};
    }
    L->n = kept;
    return CMCR_OK;
}

static int store_cmp(const void *a, const void *b)
{
    return strcmp(((const store *)a)->s->key, ((const store *)b)->s->key);
}

/* One store per distinct storage key; each item points at its store. */
static cmcr_status index_storages(loader *L)
{
    L->stores = core_xmalloc((L->n ? L->n : 1) * sizeof *L->stores);
    if (!L->stores) return core_fail(CMCR_ENOMEM, "%s: out of memory", L->path);
    for (size_t i = 0; i < L->n; i++) L->stores[i] = (store){L->items[i].t->storage, 0, 0, NULL};
    qsort(L->stores, L->n, sizeof *L->stores, store_cmp);
    size_t m = 0;
    for (size_t i = 0; i < L->n; i++) {
        const pk_storage *s = L->stores[i].s, *prev = m ? L->stores[m - 1].s : NULL;
        if (prev && strcmp(prev->key, s->key) == 0) {
            if (prev->dtype != s->dtype || prev->numel != s->numel)
                return core_fail(CMCR_EFORMAT,
                                 "%s: storage '%s' is declared twice with different types or sizes",
                                 L->path, s->key);
            continue;
        }
        L->stores[m++] = L->stores[i];
    }
    L->nstores = m;
    for (size_t i = 0; i < L->n; i++) {
        store key = {L->items[i].t->storage, 0, 0, NULL};
        L->items[i].st = bsearch(&key, L->stores, m, sizeof *L->stores, store_cmp);
    }
    return CMCR_OK;
}

static bool contiguous(const pk_tensor *t)
{
    uint64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] != 1 && (uint64_t)t->stride[d] != expect) return false;
        expect *= (uint64_t)t->size[d]; /* no overflow: the product of sizes was checked */
    }
    return true;
}

/* Number of elements of the view, after checking it is contiguous and inside its storage. */
static cmcr_status check_view(const loader *L, const item *it, uint64_t *numel)
{
    const pk_tensor *t = it->t;
    char sz[200], sd[200];
    uint64_t n, end;
    dims_str(sz, sizeof sz, t->size, t->ndim);
    dims_str(sd, sizeof sd, t->stride, t->ndim);
    if (!core_shape_bytes(t->size, t->ndim, 1, &n))
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s': the element count of size %s overflows", L->path,
                         it->name, sz);
    if (n > 0 && !contiguous(t))
        return core_fail(CMCR_EUNSUPPORTED,
                         "%s: tensor '%s' is a non-contiguous view (size %s, stride %s); save "
                         "tensor.contiguous() instead",
                         L->path, it->name, sz, sd);
    if (!core_add_u64((uint64_t)t->offset, n, &end) || end > (uint64_t)t->storage->numel)
        return core_fail(CMCR_EFORMAT,
                         "%s: tensor '%s' (offset %lld, size %s) runs past the end of storage '%s' "
                         "(%lld elements)",
                         L->path, it->name, (long long)t->offset, sz, t->storage->key,
                         (long long)t->storage->numel);
    *numel = n;
    return CMCR_OK;
}

/* The size of a storage, checked against its data entry (s->nbytes, s->idx). */
static cmcr_status size_storage(const loader *L, store *s)
{
    const pk_storage *ps = s->s;
    uint64_t want;
    zip_uint64_t size = 0;
    if (!core_mul_u64((uint64_t)ps->numel, cmcr_dtype_size(ps->dtype), &want))
        return core_fail(CMCR_EFORMAT, "%s: storage '%s' of %lld x %s: byte size overflows", L->path, ps->key,
                         (long long)ps->numel, cmcr_dtype_name(ps->dtype));
    if (want > CMCR_MAX_TENSOR_BYTES)
        return core_fail(CMCR_ENOMEM, "%s: storage '%s' is %llu bytes, more than the limit of %llu", L->path,
                         ps->key, (unsigned long long)want, (unsigned long long)CMCR_MAX_TENSOR_BYTES);
    char *name = entry_name(L, "data/", ps->key);
    cmcr_status st = CMCR_OK;
    if (!name) return core_fail(CMCR_ENOMEM, "%s: out of memory", L->path);
    if (!find_entry(L, name, &s->idx, &size))
        st = core_fail(CMCR_EFORMAT, "%s: storage '%s' has no data entry '%s'", L->path, ps->key, name);
    else if (size != want)
        st = core_fail(CMCR_EFORMAT,
                       "%s: entry '%s' holds %llu bytes, but storage '%s' needs %llu (%lld x %s)",
                       L->path, name, (unsigned long long)size, ps->key, (unsigned long long)want,
                       (long long)ps->numel, cmcr_dtype_name(ps->dtype));
    s->nbytes = want;
    free(name);
    return st;
}

/* Every storage's size, and their total against the file's size and the limit per file:
 * all before any storage is read. */
static cmcr_status size_storages(const loader *L)
{
    uint64_t total = 0;
    for (size_t i = 0; i < L->nstores; i++) {
        cmcr_status st = size_storage(L, &L->stores[i]);
        if (st) return st;
        if (!core_add_u64(total, L->stores[i].nbytes, &total)) total = UINT64_MAX;
    }
    if (total > CMCR_MAX_LOAD_BYTES)
        return core_fail(CMCR_ENOMEM, "%s: its %zu storages hold %llu bytes, more than the limit of %llu per file",
                         L->path, L->nstores, (unsigned long long)total, (unsigned long long)CMCR_MAX_LOAD_BYTES);
    if (total > file_can_hold(L))
        return core_fail(CMCR_EFORMAT,
                         "%s: its %zu storages claim %llu bytes, more than a %llu-byte file can hold (%d times "
                         "its size)",
                         L->path, L->nstores, (unsigned long long)total, (unsigned long long)L->file_bytes,
                         CMCR_MAX_INFLATE);
    return CMCR_OK;
}

/* Read a sized storage into a buffer that the tensor set then owns. */
static cmcr_status read_storage(const loader *L, store *s)
{
    char *name = entry_name(L, "data/", s->s->key);
    unsigned char *data = NULL;
    cmcr_status st = CMCR_OK;
    if (!name) return core_fail(CMCR_ENOMEM, "%s: out of memory", L->path);
    if (!(data = core_xmalloc((size_t)s->nbytes)))
        st = core_fail(CMCR_ENOMEM, "%s: cannot allocate %llu bytes for storage '%s'", L->path,
                       (unsigned long long)s->nbytes, s->s->key);
    if (!st) st = read_entry(L, name, s->idx, data, s->nbytes);
    if (st) free(data);
    else if ((st = tensors_own(L->ts, data)) != CMCR_OK) st = core_fail_prefix(st, L->path);
    else s->data = data;
    free(name);
    return st;
}

static cmcr_status load_item(loader *L, item *it)
{
    uint64_t numel = 0;
    cmcr_status st = check_view(L, it, &numel);
    if (st) return st;
    size_t off = (size_t)it->t->offset * cmcr_dtype_size(it->st->s->dtype);
    st = tensors_add_view(L->ts, it->name, it->st->s->dtype, it->t->ndim, it->t->size, it->st->data + off);
    return st ? core_fail_prefix(st, L->path) : CMCR_OK;
}

static cmcr_status load(loader *L, cmcr_tensors **out)
{
    pk_value *root = NULL;
    *out = NULL;
    cmcr_status st = open_zip(L);
    if (!st) st = find_prefix(L);
    if (!st) st = check_byteorder(L);
    if (!st) st = parse_pickle(L, &root);
    if (!st) st = collect_items(L, root);
    if (!st) st = index_storages(L);
    if (!st) st = size_storages(L);
    if (!st && !(L->ts = cmcr_tensors_new())) st = core_fail(CMCR_ENOMEM, "%s: out of memory", L->path);
    for (size_t i = 0; !st && i < L->nstores; i++) st = read_storage(L, &L->stores[i]);
    for (size_t i = 0; !st && i < L->n; i++) st = load_item(L, &L->items[i]);
    if (!st) {
        *out = L->ts;
        L->ts = NULL;
    }
    loader_free(L);
    return st;
}

/* Which of keys the state dict holds, from its pickle alone (no storage is read). */
static cmcr_status find_keys(loader *L, const char *const *keys, size_t n, bool *found)
{
    pk_value *root = NULL;
    cmcr_status st = open_zip(L);
    if (!st) st = find_prefix(L);
    if (!st) st = parse_pickle(L, &root);
    if (!st) st = collect_items(L, root);
    for (size_t k = 0; !st && k < n; k++) {
        found[k] = false;
        for (size_t i = 0; i < L->n && !found[k]; i++) found[k] = strcmp(L->items[i].name, keys[k]) == 0;
    }
    loader_free(L);
    return st;
}

cmcr_status pt_find_keys(const char *path, const char *const *keys, size_t n, bool *found)
{
    loader L;
    memset(&L, 0, sizeof L);
    L.path = path;
    return find_keys(&L, keys, n, found);
}

cmcr_status pt_load(const char *path, cmcr_tensors **out)
{
    loader L;
    memset(&L, 0, sizeof L);
    L.path = path;
    return load(&L, out);
}

cmcr_status pt_load_only(const char *path, const char *const *prefixes, size_t n, cmcr_tensors **out)
{
    loader L;
    memset(&L, 0, sizeof L);
    L.path = path;
    L.only = prefixes;
    L.nonly = n;
    return load(&L, out);
}

cmcr_status pt_load_memory(const void *data, size_t len, const char *name, cmcr_tensors **out)
{
    loader L;
    memset(&L, 0, sizeof L);
    L.path = name;
    L.mem = data;
    L.file_bytes = len;
    if (len == 0) {
        *out = NULL;
        return core_fail(CMCR_EFORMAT, "%s: not a zip archive, so not a PyTorch checkpoint", name);
    }
    return load(&L, out);
}

/* ================================================================== writing */

/* A growing byte buffer; failed is sticky, so writers check once at the end. */
typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
    bool failed;
} wbuf;

static void put(wbuf *b, const void *data, size_t n)
{
    if (b->failed) return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n && cap <= SIZE_MAX / 2) cap *= 2;
        unsigned char *p = cap - b->len >= n ? realloc(b->p, cap) : NULL;
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_op(wbuf *b, unsigned char op) { put(b, &op, 1); }

static void put_le(wbuf *b, uint64_t v, int n)
{
    unsigned char x[8];
    for (int i = 0; i < n; i++) x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, (size_t)n);
}

static void put_str(wbuf *b, const char *s)
{
    size_t n = strlen(s);
    put_op(b, 'X'); /* BINUNICODE */
    put_le(b, n, 4);
    put(b, s, n);
}

static void put_int(wbuf *b, int64_t v)
{
    if (v >= 0 && v < 256) {
        put_op(b, 'K'); /* BININT1 */
        put_le(b, (uint64_t)v, 1);
    } else if (v >= 0 && v < 65536) {
        put_op(b, 'M'); /* BININT2 */
        put_le(b, (uint64_t)v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        put_op(b, 'J'); /* BININT */
        put_le(b, (uint64_t)v, 4);
    } else {
        put_op(b, 0x8a); /* LONG1, 8 bytes two's complement */
        put_op(b, 8);
        put_le(b, (uint64_t)v, 8);
    }
}

static void put_int_tuple(wbuf *b, const int64_t *v, int n)
{
    if (n > 3) put_op(b, '(');
    for (int i = 0; i < n; i++) put_int(b, v[i]);
    if (n == 0) put_op(b, ')');
    else put_op(b, n > 3 ? 't' : (unsigned char)(0x84 + n)); /* TUPLE or TUPLE1..3 */
}

enum { G_ORDERED_DICT, G_REBUILD, G_STORAGE0, G_COUNT = G_STORAGE0 + 7 }; /* a storage global per cmcr_dtype */

typedef struct pwriter {
    wbuf b;
    int memo[G_COUNT]; /* memo slot of each global, -1 until first written */
    int next;
} pwriter;

static void put_global(pwriter *w, int id, const char *mod, const char *name)
{
    if (w->memo[id] >= 0) {
        put_op(&w->b, 'h'); /* BINGET */
        put_op(&w->b, (unsigned char)w->memo[id]);
        return;
    }
    put_op(&w->b, 'c'); /* GLOBAL */
    put(&w->b, mod, strlen(mod));
    put_op(&w->b, '\n');
    put(&w->b, name, strlen(name));
    put_op(&w->b, '\n');
    put_op(&w->b, 'q'); /* BINPUT */
    put_op(&w->b, (unsigned char)w->next);
    w->memo[id] = w->next++;
}

static void put_ordered_dict(pwriter *w)
{
    put_global(w, G_ORDERED_DICT, "collections", "OrderedDict");
    put_op(&w->b, ')'); /* EMPTY_TUPLE */
    put_op(&w->b, 'R'); /* REDUCE */
}

/* torch's contiguous strides: stride[d] = product of max(size[j], 1) for j > d. */
static bool contiguous_strides(const cmcr_tensor *t, int64_t *stride)
{
    uint64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        stride[d] = (int64_t)s;
        if (!core_mul_u64(s, t->shape[d] > 1 ? (uint64_t)t->shape[d] : 1, &s) || s > INT64_MAX) return false;
    }
    return true;
}

/* key: _rebuild_tensor_v2((storage, torch.XStorage, 'i', 'cpu', numel), 0, size, stride,
 * False, OrderedDict()) */
static void put_tensor(pwriter *w, size_t i, const cmcr_tensor *t, const int64_t *stride)
{
    char key[32];
    snprintf(key, sizeof key, "%zu", i);
    put_str(&w->b, t->name);
    put_global(w, G_REBUILD, "torch._utils", "_rebuild_tensor_v2");
    put_op(&w->b, '(');
    put_op(&w->b, '(');
    put_str(&w->b, "storage");
    put_global(w, G_STORAGE0 + (int)t->dtype, "torch", pk_storage_name(t->dtype) + strlen("torch."));
    put_str(&w->b, key);
    put_str(&w->b, "cpu");
    put_int(&w->b, cmcr_tensor_numel(t));
    put_op(&w->b, 't');
    put_op(&w->b, 'Q'); /* BINPERSID */
    put_int(&w->b, 0);
    put_int_tuple(&w->b, t->shape, t->ndim);
    put_int_tuple(&w->b, stride, t->ndim);
    put_op(&w->b, 0x89); /* NEWFALSE: requires_grad */
    put_ordered_dict(w); /* backward hooks */
    put_op(&w->b, 't');
    put_op(&w->b, 'R');
}

static cmcr_status check_tensor(const char *path, size_t i, const cmcr_tensor *t, int64_t *stride)
{
    if (!pk_storage_name(t->dtype))
        return core_fail(CMCR_EINVAL, "%s: tensor #%zu has an unknown dtype", path, i);
    if (!contiguous_strides(t, stride))
        return core_fail(CMCR_EINVAL, "%s: tensor #%zu: strides overflow", path, i);
    return CMCR_OK;
}

static cmcr_status build_pickle(const cmcr_tensors *ts, const char *path, pwriter *w)
{
    size_t n = cmcr_tensors_count(ts);
    for (int i = 0; i < G_COUNT; i++) w->memo[i] = -1;
    put_op(&w->b, 0x80); /* PROTO 2 */
    put_op(&w->b, 2);
    put_ordered_dict(w);
    put_op(&w->b, '(');
    for (size_t i = 0; i < n; i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        int64_t stride[CMCR_MAX_DIMS];
        cmcr_status st = check_tensor(path, i, t, stride);
        if (st) return st;
        put_tensor(w, i, t, stride);
        if (i % 1000 == 999) { /* SETITEMS in batches, as pickle does */
            put_op(&w->b, 'u');
            put_op(&w->b, '(');
        }
    }
    put_op(&w->b, 'u');
    put_op(&w->b, '.');
    if (w->b.failed) return core_fail(CMCR_ENOMEM, "%s: out of memory building the pickle", path);
    if (w->b.len > CMCR_MAX_HEADER_BYTES)
        return core_fail(CMCR_ENOMEM, "%s: the pickle would be %zu bytes, more than the limit of %llu", path,
                         w->b.len, (unsigned long long)CMCR_MAX_HEADER_BYTES);
    return CMCR_OK;
}

/* Add a stored (uncompressed) entry backed by data, which must live until zip_close. */
static cmcr_status add_entry(zip_t *za, const char *path, const char *name, const void *data, size_t n)
{
    zip_source_t *src = zip_source_buffer(za, data, n, 0);
    zip_int64_t idx = src ? zip_file_add(za, name, src, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
        if (src) zip_source_free(src);
        return core_fail(CMCR_EIO, "%s: cannot add '%s': %s", path, name, zip_strerror(za));
    }
    if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0 ||
        zip_file_set_mtime(za, (zip_uint64_t)idx, (time_t)946684800, 0) != 0) /* 2000-01-01: reproducible */
        return core_fail(CMCR_EIO, "%s: cannot set up '%s': %s", path, name, zip_strerror(za));
    return CMCR_OK;
}

static cmcr_status add_entries(zip_t *za, const cmcr_tensors *ts, const char *path, const wbuf *pickle)
{
    cmcr_status st = add_entry(za, path, "archive/data.pkl", pickle->p, pickle->len);
    if (!st) st = add_entry(za, path, "archive/byteorder", "little", 6);
    for (size_t i = 0; !st && i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        char name[48];
        snprintf(name, sizeof name, "archive/data/%zu", i);
        st = add_entry(za, path, name, t->data, t->nbytes);
    }
    if (!st) st = add_entry(za, path, "archive/version", "3\n", 2);
    return st;
}

/* The archive built in memory, copied to path atomically in chunks (through the registry
 * of temporary files, so a signal leaves nothing behind). */
static cmcr_status source_to_file(zip_source_t *src, const char *path)
{
    if (zip_source_open(src) != 0)
        return core_fail(CMCR_EIO, "%s: cannot read back the archive built in memory", path);
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = core_xmalloc(CHUNK);
    afile out;
    cmcr_status st = buf ? afile_open(&out, path) : core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    zip_int64_t got = 0;
    while (!st && (got = zip_source_read(src, buf, CHUNK)) > 0) st = afile_write(&out, buf, (size_t)got);
    if (!st && got < 0) st = core_fail(CMCR_EIO, "%s: cannot read back the archive built in memory", path);
    if (!st) st = afile_commit(&out);
    else if (buf && out.path) afile_abort(&out);
    zip_source_close(src);
    free(buf);
    return st;
}

/* The zip archive, built in memory and then written: libzip writing a file itself would use
 * a temporary name of its own, which the library's registry of temporary files (removed on a
 * signal) cannot know. */
static cmcr_status write_zip(const cmcr_tensors *ts, const char *path, const wbuf *pickle)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
    if (!za) {
        cmcr_status st = core_fail(CMCR_ENOMEM, "%s: cannot start a zip archive: %s", path, zip_error_strerror(&ze));
        if (src) zip_source_free(src);
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    zip_source_keep(src); /* keep it past zip_close, to read the result */
    cmcr_status st = add_entries(za, ts, path, pickle);
    if (!st && zip_close(za) != 0) st = core_fail(CMCR_EIO, "%s: cannot build the archive: %s", path, zip_strerror(za));
    if (st) zip_discard(za);
    if (!st) st = source_to_file(src, path);
    zip_source_free(src);
    return st;
}

cmcr_status pt_save(const cmcr_tensors *ts, const char *path)
{
    pwriter w;
    memset(&w, 0, sizeof w);
    cmcr_status st = build_pickle(ts, path, &w);
    if (!st) st = write_zip(ts, path, &w.b);
    free(w.b.p);
    return st;
}
