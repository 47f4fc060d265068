/* safetensors.c - the safetensors format: an 8-byte little-endian header size N, N bytes of
 * UTF-8 JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the tensor bytes, offsets relative to the end of the header. As in the reference
 * implementation, the tensors cover the data exactly: no byte is shared, skipped or left over,
 * so loading allocates no more than the file holds.
 *
 * One parser reads three sources: a stream (a file read as it goes), bytes in memory (copied
 * out), and a read-only mapping of the file (viewed in place, owned by the set). */
#include "runtime/core.h"
#include "runtime/file.h"
#include "io/io.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define ST_META_KEY "__metadata__"
#define ST_MAX_JSON_INT 9007199254740992.0 /* 2^53: from here on JSON numbers lose precision */

struct st_entry {
    const char *name;
    cmcr_dtype dtype;
    int ndim;
    int64_t shape[CMCR_MAX_DIMS];
    uint64_t begin, end;
    size_t index; /* position in the JSON object, to keep sorting deterministic */
};

/* Where the bytes come from: a stream f, or size bytes at bytes (NULL when size is 0) that the
 * tensors view (a mapping the set owns) or copy (the caller's buffer). */
typedef struct st_source {
    FILE *f;
    const unsigned char *bytes;
    uint64_t size;
    bool view;
} st_source;

/* ------------------------------------------------------------------ dtype names */

static bool dtype_from_name(const char *s, cmcr_dtype *out)
{
    static const cmcr_dtype all[] = {CMCR_F32, CMCR_F16, CMCR_BF16, CMCR_F64, CMCR_I32, CMCR_I64, CMCR_U8};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, cmcr_dtype_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* dtypes of the safetensors spec that this library does not handle. */
static bool is_spec_dtype(const char *s)
{
    static const char *const names[] = {"BOOL",    "I8",      "U16",     "I16",     "U32",     "U64",  "F8_E4M3",
                                        "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",      "C64"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) return true;
    return false;
}

/* ------------------------------------------------------------------ reading the header */

static cmcr_status read_exact(FILE *f, void *buf, size_t n, const char *path)
{
    if (n == 0 || fread(buf, 1, n, f) == n) return CMCR_OK;
    if (ferror(f)) return core_fail(CMCR_EIO, "%s: read failed: %s", path, strerror(errno));
    return core_fail(CMCR_EFORMAT, "%s: unexpected end of file (did it change while being read?)", path);
}

/* Valid UTF-8 without control bytes other than tab, newline and carriage return. */
static bool valid_text(const unsigned char *s, size_t n, size_t *bad_at)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = len > 0 && i + len <= n && !(c < 0x20 && c != '\t' && c != '\n' && c != '\r');
        for (size_t k = 1; ok && k < len; k++) ok = (s[i + k] & 0xc0) == 0x80;
        if (ok && len == 2) ok = c >= 0xc2;                                  /* overlong */
        if (ok && len == 3) ok = !(c == 0xe0 && s[i + 1] < 0xa0) && !(c == 0xed && s[i + 1] >= 0xa0);
        if (ok && len == 4) ok = !(c == 0xf0 && s[i + 1] < 0x90) && !(c == 0xf4 && s[i + 1] >= 0x90) && c <= 0xf4;
        if (!ok) {
            *bad_at = i;
            return false;
        }
        i += len;
    }
    return true;
}

/* n bytes at offset off of the source into buf. */
static cmcr_status src_read(const st_source *src, uint64_t off, void *buf, size_t n, const char *path)
{
    if (src->f) {
        if (fseeko(src->f, (off_t)off, SEEK_SET) != 0)
            return core_fail(CMCR_EIO, "%s: seek failed: %s", path, strerror(errno));
        return read_exact(src->f, buf, n, path);
    }
    if (off > src->size || n > src->size - off) /* the callers' checks make this unreachable */
        return core_fail(CMCR_EFORMAT, "%s: unexpected end of file", path);
    if (n) memcpy(buf, src->bytes + off, n);
    return CMCR_OK;
}

/* Reads the size field and the JSON text (NUL-terminated); *data_size is what follows. */
static cmcr_status read_header_text(const st_source *src, const char *path, char **text, uint64_t *hsize,
                                    uint64_t *data_size)
{
    unsigned char b[8];
    *text = NULL;
    uint64_t size = src->size;
    cmcr_status sz = src->f ? file_stream_size(src->f, path, &size) : CMCR_OK;
    if (sz) return sz;
    if (size == 0) return core_fail(CMCR_EFORMAT, "%s: file is empty", path);
    if (size < 8)
        return core_fail(CMCR_EFORMAT, "%s: file is %llu bytes, too short for the 8-byte safetensors header size",
                         path, (unsigned long long)size);
    cmcr_status s = src_read(src, 0, b, 8, path);
    if (s) return s;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
    if (n == 0) return core_fail(CMCR_EFORMAT, "%s: safetensors header size is 0 (expected a JSON object)", path);
    if (n > size - 8)
        return core_fail(CMCR_EFORMAT, "%s: safetensors header size %llu is larger than the %llu bytes that follow it",
                         path, (unsigned long long)n, (unsigned long long)(size - 8));
    if (n > CMCR_MAX_HEADER_BYTES)
        return core_fail(CMCR_ENOMEM, "%s: safetensors header of %llu bytes exceeds the limit of %llu", path,
                         (unsigned long long)n, (unsigned long long)CMCR_MAX_HEADER_BYTES);
    char *t = core_xmalloc((size_t)n + 1);
    if (!t) return core_fail(CMCR_ENOMEM, "%s: cannot allocate %llu bytes", path, (unsigned long long)n);
    s = src_read(src, 8, t, (size_t)n, path);
    if (s) {
        free(t);
        return s;
    }
    t[n] = '\0';
    *text = t;
    *hsize = n;
    *data_size = size - 8 - n;
    return CMCR_OK;
}

/* Offset of a \u0000 escape inside a JSON string of text, or -1: cJSON decodes it into a NUL,
 * which would cut a name or a value short without a word (two names could even collide). */
static long long escaped_nul(const char *t, size_t n)
{
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '"') {
            in_string = !in_string;
        } else if (in_string && t[i] == '\\') {
            if (i + 5 < n && t[i + 1] == 'u' && memcmp(t + i + 2, "0000", 4) == 0) return (long long)i;
            i++; /* the escaped character */
        }
    }
    return -1;
}

static cmcr_status parse_json(const char *path, const char *text, size_t n, cJSON **out)
{
    size_t bad_at;
    *out = NULL;
    if (!valid_text((const unsigned char *)text, n, &bad_at))
        return core_fail(CMCR_EFORMAT, "%s: safetensors header is not valid UTF-8 JSON text (bad byte 0x%02x at offset %zu)",
                         path, (unsigned char)text[bad_at], bad_at);
    long long nul = escaped_nul(text, n);
    if (nul >= 0)
        return core_fail(CMCR_EFORMAT, "%s: safetensors header has a \\u0000 escape (a NUL character) at byte %lld: "
                         "names and metadata cannot contain NUL", path, nul);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
        return core_fail(CMCR_EFORMAT, "%s: safetensors header is not valid JSON (error near byte %zu)", path, at);
    }
    while (end < text + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    if (end != text + n) {
        cJSON_Delete(root);
        return core_fail(CMCR_EFORMAT, "%s: safetensors header has text after the JSON value (at byte %zu)", path,
                         (size_t)(end - text));
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return core_fail(CMCR_EFORMAT, "%s: safetensors header is JSON but not an object", path);
    }
    *out = root;
    return CMCR_OK;
}

/* ------------------------------------------------------------------ validating entries */

static cmcr_status json_uint(const char *path, const char *name, const char *what, const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s': %s must be a number", path, name, what);
    double d = v->valuedouble;
    if (d < 0)
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s': %s is negative (%.15g)", path, name, what, d);
    if (d != floor(d))
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s': %s is not an integer (%.15g)", path, name, what, d);
    if (d >= ST_MAX_JSON_INT)
        return core_fail(CMCR_EFORMAT, d < 1e20 ? "%s: tensor '%s': %s %.0f is too large (2^53 or more)"
                                                : "%s: tensor '%s': %s %g is too large (2^53 or more)",
                         path, name, what, d);
    *out = (uint64_t)d;
    return CMCR_OK;
}

static cmcr_status entry_dtype(const char *path, const char *name, const cJSON *obj, cmcr_dtype *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
    if (!cJSON_IsString(v)) return core_fail(CMCR_EFORMAT, "%s: tensor '%s': \"dtype\" must be a string", path, name);
    if (dtype_from_name(v->valuestring, out)) return CMCR_OK;
    if (is_spec_dtype(v->valuestring))
        return core_fail(CMCR_EUNSUPPORTED,
                         "%s: tensor '%s': dtype %s is not supported (expected F32, F16, BF16, F64, I32, I64 or U8)", path,
                         name, v->valuestring);
    char shown[64];
    return core_fail(CMCR_EFORMAT, "%s: tensor '%s': unknown dtype \"%s\"", path, name,
                     tensors_escape(shown, sizeof shown, v->valuestring, strlen(v->valuestring)));
}

static cmcr_status entry_shape(const char *path, const char *name, const cJSON *obj, struct st_entry *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    if (!cJSON_IsArray(v)) return core_fail(CMCR_EFORMAT, "%s: tensor '%s': \"shape\" must be an array", path, name);
    int n = cJSON_GetArraySize(v);
    if (n > CMCR_MAX_DIMS)
        return core_fail(CMCR_EUNSUPPORTED, "%s: tensor '%s': %d dimensions (at most %d)", path, name, n, CMCR_MAX_DIMS);
    e->ndim = 0;
    for (const cJSON *d = v->child; d; d = d->next) {
        uint64_t x;
        cmcr_status st = json_uint(path, name, "a shape entry", d, &x);
        if (st) return st;
        e->shape[e->ndim++] = (int64_t)x;
    }
    return CMCR_OK;
}

static cmcr_status entry_offsets(const char *path, const char *name, const cJSON *obj, struct st_entry *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "data_offsets");
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s': \"data_offsets\" must be an array [begin, end]", path, name);
    cmcr_status st = json_uint(path, name, "data_offsets[0]", v->child, &e->begin);
    if (!st) st = json_uint(path, name, "data_offsets[1]", v->child->next, &e->end);
    return st;
}

/* "[2, 3]" */
static void shape_text(const struct st_entry *e, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < e->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)e->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static cmcr_status check_entry(const char *path, const struct st_entry *e, uint64_t data_size)
{
    uint64_t need;
    const char *type = cmcr_dtype_name(e->dtype);
    char dims[256];
    shape_text(e, dims, sizeof dims);
    if (!core_shape_bytes(e->shape, e->ndim, cmcr_dtype_size(e->dtype), &need))
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s': shape overflow: %s %s would need more than 2^64 bytes",
                         path, e->name, type, dims);
    if (e->begin > e->end)
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] run backwards", path, e->name,
                         (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_size)
        return core_fail(CMCR_EFORMAT,
                         "%s: tensor '%s': data_offsets [%llu, %llu] go past the end of the data (%llu bytes)", path,
                         e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                         (unsigned long long)data_size);
    if (need != e->end - e->begin)
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s': %s %s needs %llu bytes but data_offsets [%llu, %llu] hold %llu",
                         path, e->name, type, dims, (unsigned long long)need, (unsigned long long)e->begin,
                         (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
    if (need > CMCR_MAX_TENSOR_BYTES)
        return core_fail(CMCR_ENOMEM, "%s: tensor '%s': %llu bytes exceed the limit of %llu bytes per tensor", path,
                         e->name, (unsigned long long)need, (unsigned long long)CMCR_MAX_TENSOR_BYTES);
    return CMCR_OK;
}

static cmcr_status parse_entry(const char *path, const cJSON *item, uint64_t data_size, struct st_entry *e)
{
    e->name = item->string;
    cmcr_status st = tensors_check_name(CMCR_EFORMAT, "tensor name", e->name, strlen(e->name));
    if (st) return core_fail_prefix(st, path);
    if (!cJSON_IsObject(item))
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s': entry must be an object", path, e->name);
    st = entry_dtype(path, e->name, item, &e->dtype);
    if (!st) st = entry_shape(path, e->name, item, e);
    if (!st) st = entry_offsets(path, e->name, item, e);
    if (!st) st = check_entry(path, e, data_size);
    return st;
}

static cmcr_status parse_metadata(const char *path, const cJSON *meta, cmcr_tensors *ts)
{
    if (!cJSON_IsObject(meta))
        return core_fail(CMCR_EFORMAT, "%s: \"%s\" must be an object of strings", path, ST_META_KEY);
    for (const cJSON *m = meta->child; m; m = m->next) {
        char what[CMCR_MAX_NAME_BYTES + 32];
        cmcr_status st = tensors_check_name(CMCR_EFORMAT, "metadata key", m->string, strlen(m->string));
        if (st) return core_fail_prefix(st, path);
        if (!cJSON_IsString(m))
            return core_fail(CMCR_EFORMAT, "%s: \"%s\" value of key \"%s\" is not a string", path, ST_META_KEY,
                             m->string);
        snprintf(what, sizeof what, "metadata key '%s': value", m->string);
        st = tensors_check_text(CMCR_EFORMAT, what, m->valuestring, strlen(m->valuestring));
        if (!st) st = cmcr_tensors_set_meta(ts, m->string, m->valuestring);
        if (st) return core_fail_prefix(st, path);
    }
    return CMCR_OK;
}

static int by_offset(const void *pa, const void *pb)
{
    const struct st_entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* After sorting by offset: the non-empty byte ranges tile the data, with no byte shared,
 * skipped or left over after the last tensor. */
static cmcr_status check_layout(const char *path, const struct st_entry *e, size_t n, uint64_t data_size)
{
    const struct st_entry *last = NULL;
    uint64_t end = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].begin == e[i].end) continue;
        if (e[i].begin < end)
            return core_fail(CMCR_EFORMAT, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", path,
                             last->name, (unsigned long long)last->begin, (unsigned long long)last->end, e[i].name,
                             (unsigned long long)e[i].begin, (unsigned long long)e[i].end);
        if (e[i].begin > end)
            return core_fail(CMCR_EFORMAT, "%s: bytes [%llu, %llu) of the data, before tensor '%s', belong to no tensor",
                             path, (unsigned long long)end, (unsigned long long)e[i].begin, e[i].name);
        last = &e[i];
        end = e[i].end;
    }
    if (end < data_size)
        return core_fail(CMCR_EFORMAT,
                         "%s: %llu unexpected bytes after the data: the tensors end at byte %llu of the %llu bytes "
                         "after the header",
                         path, (unsigned long long)(data_size - end), (unsigned long long)end,
                         (unsigned long long)data_size);
    return CMCR_OK;
}

/* Walks the JSON object: metadata into ts, tensor entries into *entries (sorted by offset). */
static cmcr_status parse_entries(const char *path, const cJSON *root, uint64_t data_size, cmcr_tensors *ts,
                                 struct st_entry **entries, size_t *count)
{
    size_t n = 0, metas = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, ST_META_KEY) == 0) metas++;
        else if (++n > CMCR_MAX_TENSORS)
            return core_fail(CMCR_ENOMEM, "%s: more than %d tensors", path, CMCR_MAX_TENSORS);
    }
    if (metas > 1) return core_fail(CMCR_EFORMAT, "%s: \"%s\" appears %zu times", path, ST_META_KEY, metas);
    struct st_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e) return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    size_t i = 0;
    cmcr_status st = CMCR_OK;
    for (const cJSON *it = root->child; it && !st; it = it->next) {
        if (strcmp(it->string, ST_META_KEY) == 0) {
            st = parse_metadata(path, it, ts);
        } else {
            e[i].index = i;
            st = parse_entry(path, it, data_size, &e[i]);
            i++;
        }
    }
    if (!st) {
        qsort(e, n, sizeof *e, by_offset);
        st = check_layout(path, e, n, data_size);
    }
    if (st) {
        free(e);
        return st;
    }
    *entries = e;
    *count = n;
    return CMCR_OK;
}

/* ------------------------------------------------------------------ loading */

/* Tensor e, data_start bytes into the source: a view of the mapping, or a copy of its bytes. */
static cmcr_status read_tensor(const st_source *src, const char *path, uint64_t data_start, const struct st_entry *e,
                               cmcr_tensors *ts)
{
    size_t nbytes = (size_t)(e->end - e->begin);
    cmcr_status st;
    if (src->view) {
        void *at = (void *)(uintptr_t)(src->bytes + data_start + e->begin); /* read-only: never written */
        st = tensors_add_view(ts, e->name, e->dtype, e->ndim, e->shape, at);
        return st ? core_fail_prefix(st, path) : CMCR_OK;
    }
    void *data = core_xmalloc(nbytes);
    if (!data) return core_fail(CMCR_ENOMEM, "%s: tensor '%s': cannot allocate %zu bytes", path, e->name, nbytes);
    st = src_read(src, data_start + e->begin, data, nbytes, path);
    if (st) {
        free(data);
        return st;
    }
    st = tensors_add_owned(ts, e->name, e->dtype, e->ndim, e->shape, data);
    return st ? core_fail_prefix(st, path) : CMCR_OK;
}

static cmcr_status load_from(const st_source *src, const char *path, cmcr_tensors *ts)
{
    char *text;
    uint64_t hsize = 0, data_size = 0;
    cmcr_status st = read_header_text(src, path, &text, &hsize, &data_size);
    if (st) return st;
    if (data_size > CMCR_MAX_LOAD_BYTES) {
        free(text);
        return core_fail(CMCR_ENOMEM, "%s: %llu bytes of tensor data, more than the limit of %llu per file", path,
                         (unsigned long long)data_size, (unsigned long long)CMCR_MAX_LOAD_BYTES);
    }
    cJSON *root;
    st = parse_json(path, text, (size_t)hsize, &root);
    free(text);
    if (st) return st;
    struct st_entry *e = NULL;
    size_t n = 0;
    st = parse_entries(path, root, data_size, ts, &e, &n);
    for (size_t i = 0; i < n && !st; i++) st = read_tensor(src, path, 8 + hsize, &e[i], ts);
    free(e);
    cJSON_Delete(root); /* entry names point into the JSON tree */
    return st;
}

/* Loads src into ts (a new set, or NULL when that failed) and hands it out; frees it on failure. */
static cmcr_status load_set(const st_source *src, const char *path, cmcr_tensors *ts, cmcr_tensors **out)
{
    cmcr_status st = ts ? load_from(src, path, ts) : core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    if (st) {
        cmcr_tensors_free(ts);
        return st;
    }
    *out = ts;
    return CMCR_OK;
}

/* All the tensors of the stream f; closes f. */
cmcr_status safetensors_load_stream(FILE *f, const char *path, cmcr_tensors **out)
{
    st_source src = {.f = f};
    cmcr_status st = load_set(&src, path, cmcr_tensors_new(), out);
    fclose(f);
    return st;
}

cmcr_status safetensors_load_memory(const void *data, size_t len, const char *name, cmcr_tensors **out)
{
    st_source src = {.bytes = data, .size = len};
    return load_set(&src, name, cmcr_tensors_new(), out);
}

/* fd mapped whole (its size in *size), or NULL when it is not a non-empty regular file or
 * cannot be mapped. */
static void *map_file(int fd, uint64_t *size)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 || (uint64_t)sb.st_size > SIZE_MAX)
        return NULL;
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    *size = (uint64_t)sb.st_size;
    return p == MAP_FAILED ? NULL : p;
}

cmcr_status safetensors_load_mapped(const char *path, cmcr_tensors **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return core_fail(CMCR_EIO, "%s: cannot open: %s", path, strerror(errno));
    uint64_t size = 0;
    void *map = map_file(fd, &size);
    if (!map) { /* read instead: the stream's checks name what is wrong (empty, not a regular file) */
        FILE *f = fdopen(fd, "rb");
        if (f) return safetensors_load_stream(f, path, out);
        close(fd);
        return core_fail(CMCR_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    close(fd); /* the mapping stays */
    cmcr_tensors *ts = cmcr_tensors_new();
    if (!ts) {
        munmap(map, (size_t)size);
        return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    }
    cmcr_status st = tensors_own_map(ts, map, (size_t)size); /* on failure, unmapped */
    if (st) {
        cmcr_tensors_free(ts);
        return core_fail_prefix(st, path);
    }
    st_source src = {.bytes = map, .size = size, .view = true};
    return load_set(&src, path, ts, out);
}

/* ------------------------------------------------------------------ saving */

static bool add_uint(cJSON *array, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    cJSON *item = cJSON_CreateRaw(num); /* exact integers, never exponent notation */
    if (item && cJSON_AddItemToArray(array, item)) return true;
    cJSON_Delete(item);
    return false;
}

static bool add_tensor_json(cJSON *root, const cmcr_tensor *t, uint64_t begin)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj || !cJSON_AddItemToObject(root, t->name, obj)) {
        cJSON_Delete(obj);
        return false;
    }
    cJSON *shape = NULL, *offsets = NULL;
    bool ok = cJSON_AddStringToObject(obj, "dtype", cmcr_dtype_name(t->dtype)) &&
              (shape = cJSON_AddArrayToObject(obj, "shape"));
    for (int i = 0; ok && i < t->ndim; i++) ok = add_uint(shape, (uint64_t)t->shape[i]);
    if (ok) offsets = cJSON_AddArrayToObject(obj, "data_offsets");
    return ok && offsets && add_uint(offsets, begin) && add_uint(offsets, begin + t->nbytes);
}

static bool add_metadata_json(cJSON *root, const cmcr_tensors *ts)
{
    size_t n = cmcr_tensors_meta_count(ts);
    if (n == 0) return true;
    cJSON *meta = cJSON_AddObjectToObject(root, ST_META_KEY);
    for (size_t i = 0; meta && i < n; i++) {
        const char *k, *v;
        cmcr_tensors_meta_at(ts, i, &k, &v);
        if (!cJSON_AddStringToObject(meta, k, v)) return false;
    }
    return meta != NULL;
}

/* The JSON header text, not yet padded. */
static cmcr_status header_json(const cmcr_tensors *ts, const char *path, char **out)
{
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    bool ok = root && add_metadata_json(root, ts);
    uint64_t offset = 0;
    for (size_t i = 0; ok && i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        if (strcmp(t->name, ST_META_KEY) == 0) {
            cJSON_Delete(root);
            return core_fail(CMCR_EINVAL, "%s: a tensor cannot be named \"%s\"", path, ST_META_KEY);
        }
        ok = add_tensor_json(root, t, offset) && core_add_u64(offset, t->nbytes, &offset);
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) return core_fail(CMCR_ENOMEM, "%s: out of memory building the safetensors header", path);
    *out = text;
    return CMCR_OK;
}

/* A tensor without data gets its bytes from fill, which must write exactly t->nbytes. */
static cmcr_status write_filled(afile *a, const cmcr_tensor *t, const char *path, safetensors_fill_fn fill, void *user)
{
    if (!fill) return core_fail(CMCR_EINVAL, "%s: tensor '%s' has no data", path, t->name);
    off_t before = ftello(a->f);
    cmcr_status st = fill(a, t, user);
    if (!st && before >= 0 && ftello(a->f) - before != (off_t)t->nbytes) /* a bug in fill: never a bad file */
        st = core_fail(CMCR_EINVAL, "%s: tensor '%s': %lld bytes written for %zu", path, t->name,
                       (long long)(ftello(a->f) - before), t->nbytes);
    return st;
}

static cmcr_status write_all(afile *a, const cmcr_tensors *ts, const char *json, const char *path,
                             safetensors_fill_fn fill, void *user)
{
    static const char spaces[] = "        ";
    size_t len = strlen(json), pad = (8 - len % 8) % 8;
    uint64_t n = len + pad;
    unsigned char size[8];
    for (int i = 0; i < 8; i++) size[i] = (unsigned char)(n >> (8 * i));
    cmcr_status st = afile_write(a, size, 8);
    if (!st) st = afile_write(a, json, len);
    if (!st) st = afile_write(a, spaces, pad);
    for (size_t i = 0; !st && i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        st = t->data || !t->nbytes ? afile_write(a, t->data, t->nbytes) : write_filled(a, t, path, fill, user);
    }
    return st;
}

cmcr_status safetensors_save(const cmcr_tensors *ts, const char *path)
{
    return safetensors_save_filled(ts, path, NULL, NULL);
}

cmcr_status safetensors_save_filled(const cmcr_tensors *ts, const char *path, safetensors_fill_fn fill, void *user)
{
    char *json;
    cmcr_status st = header_json(ts, path, &json);
    if (st) return st;
    afile a;
    st = afile_open(&a, path);
    if (!st) {
        st = write_all(&a, ts, json, path, fill, user);
        if (st) afile_abort(&a);
        else st = afile_commit(&a);
    }
    cJSON_free(json);
    return st;
}
