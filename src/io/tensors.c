/* tensors.c - dtypes, the named tensor set and the one rule for names in every format. */
#define _DEFAULT_SOURCE /* madvise and MADV_DONTNEED (glibc's posix_madvise ignores POSIX_MADV_DONTNEED) */
#include "runtime/core.h"
#include "runtime/half.h"
#include "io/io.h"
#include "runtime/vmath.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct meta_entry {
    char *key;
    char *value;
};

/* Tensors view buffers the set owns: one per tensor, except that the tensors of one .pt
 * storage share it; or, for a mapped .safetensors file, the one read-only mapping. */
struct cmcr_tensors {
    cmcr_tensor *items;
    size_t count, cap;
    void **blocks;
    size_t nblocks, blocks_cap;
    void *map; /* mmap'd, map_len bytes; NULL when none */
    size_t map_len;
    struct meta_entry *meta;
    size_t meta_count, meta_cap;
};

size_t cmcr_dtype_size(cmcr_dtype t)
{
    switch (t) {
    case CMCR_F32: case CMCR_I32: return 4;
    case CMCR_F16: case CMCR_BF16: return 2;
    case CMCR_F64: case CMCR_I64: return 8;
    case CMCR_U8: return 1;
    }
    return 0;
}

const char *cmcr_dtype_name(cmcr_dtype t)
{
    switch (t) {
    case CMCR_F32: return "F32";
    case CMCR_F16: return "F16";
    case CMCR_BF16: return "BF16";
    case CMCR_F64: return "F64";
    case CMCR_I32: return "I32";
    case CMCR_I64: return "I64";
    case CMCR_U8: return "U8";
    }
    return "?";
}

int64_t cmcr_tensor_numel(const cmcr_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

void cmcr_tensor_to_f32(const cmcr_tensor *t, float *out)
{
    int64_t n = cmcr_tensor_numel(t);
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case CMCR_F32: { float v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case CMCR_F64: { double v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
        case CMCR_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = half_f16_to_f32(v); break; }
        case CMCR_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = half_bf16_to_f32(v); break; }
        case CMCR_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = (float)v; break; }
        case CMCR_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
        case CMCR_U8: out[i] = (float)p[i]; break;
        }
    }
}

/* ------------------------------------------------------------------ names */

#define STR_(x) #x
#define STR(x) STR_(x)

/* Length of the UTF-8 character at s (n > 0 bytes left) and its code point in *cp; 0 when the
 * bytes are not valid UTF-8 (overlong forms, surrogates and values past U+10FFFF included). */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    unsigned char c = s[0];
    size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    uint32_t v = len == 1 ? c : c & (0x3fu >> (len - 1));
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[k] & 0x3fu);
    }
    if (v < least[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

static bool is_control(uint32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f); }

const char *tensors_escape(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = utf8_char((const unsigned char *)s + i, len - i, &cp);
        bool plain = k > 0 && !is_control(cp) && cp != '\\';
        size_t need = plain ? k : 4;
        if (o + need + 4 > cap) {
            memcpy(out + o, "...", 4);
            return out;
        }
        if (plain) memcpy(out + o, s + i, k);
        else snprintf(out + o, 5, "\\x%02x", (unsigned char)s[i]);
        o += need;
        i += plain ? k : 1;
    }
    out[o] = '\0';
    return out;
}

const char *cmcr_printable(char *out, size_t cap, const char *s)
{
    if (cap < 8) return cap ? (out[0] = '\0', out) : out;
    return tensors_escape(out, cap, s, strlen(s));
}

/* NULL when s (len bytes) is a good name (or, for !name, metadata text); else what is wrong. */
static const char *text_problem(const char *s, size_t len, bool name)
{
    if (name && len == 0) return "is empty";
    if (name && len > CMCR_MAX_NAME_BYTES) return "is longer than " STR(CMCR_MAX_NAME_BYTES) " bytes";
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = utf8_char((const unsigned char *)s + i, len - i, &cp);
        if (k == 0) return "is not valid UTF-8";
        if (is_control(cp) && (name || (cp != '\t' && cp != '\n' && cp != '\r'))) return "contains control characters";
        i += k;
    }
    return NULL;
}

static cmcr_status check_text(cmcr_status st, const char *what, const char *s, size_t len, bool name)
{
    const char *problem = text_problem(s, len, name);
    char shown[100];
    if (!problem) return CMCR_OK;
    return core_fail(st, "%s '%s' %s", what, tensors_escape(shown, sizeof shown, s, len), problem);
}

cmcr_status tensors_check_name(cmcr_status st, const char *what, const char *s, size_t len)
{
    return check_text(st, what, s, len, true);
}

cmcr_status tensors_check_text(cmcr_status st, const char *what, const char *s, size_t len)
{
    return check_text(st, what, s, len, false);
}

/* ------------------------------------------------------------------ tensor set */

cmcr_tensors *cmcr_tensors_new(void) { return calloc(1, sizeof(cmcr_tensors)); }

void cmcr_tensors_free(cmcr_tensors *ts)
{
    if (!ts) return;
    for (size_t i = 0; i < ts->count; i++) free((char *)ts->items[i].name);
    for (size_t i = 0; i < ts->nblocks; i++) free(ts->blocks[i]);
    if (ts->map) munmap(ts->map, ts->map_len);
    for (size_t i = 0; i < ts->meta_count; i++) {
        free(ts->meta[i].key);
        free(ts->meta[i].value);
    }
    free(ts->items);
    free(ts->blocks);
    free(ts->meta);
    free(ts);
}

cmcr_status tensors_own(cmcr_tensors *ts, void *block)
{
    if (ts->nblocks == ts->blocks_cap) {
        size_t cap = ts->blocks_cap ? ts->blocks_cap * 2 : 16;
        void **blocks = realloc(ts->blocks, cap * sizeof *blocks);
        if (!blocks) {
            free(block);
            return core_fail(CMCR_ENOMEM, "out of memory");
        }
        ts->blocks = blocks;
        ts->blocks_cap = cap;
    }
    ts->blocks[ts->nblocks++] = block;
    return CMCR_OK;
}

cmcr_status tensors_own_map(cmcr_tensors *ts, void *addr, size_t len)
{
    if (ts->map) {
        munmap(addr, len);
        return core_fail(CMCR_EINVAL, "a tensor set owns one mapping at most");
    }
    ts->map = addr;
    ts->map_len = len;
    return CMCR_OK;
}

/* Only the whole pages inside t's bytes: the pages at either end may hold a neighbour's bytes
 * (dropping them would be harmless, only slower: they would be read again). */
void tensors_release(const cmcr_tensors *ts, const cmcr_tensor *t)
{
    uintptr_t lo = (uintptr_t)ts->map, hi = lo + ts->map_len, at = (uintptr_t)t->data;
    long page = sysconf(_SC_PAGESIZE);
    if (!ts->map || page <= 0 || at < lo || at > hi || t->nbytes > hi - at) return;
    uintptr_t p = (uintptr_t)page, begin = (at + p - 1) / p * p, end = (at + t->nbytes) / p * p;
    if (end > begin) madvise((void *)begin, end - begin, MADV_DONTNEED);
}

cmcr_status tensors_add_view(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                                  const int64_t *shape, void *data)
{
    uint64_t nbytes;
    cmcr_status st = tensors_check_name(CMCR_EINVAL, "tensor name", name, strlen(name));
    if (st) return st;
    if (ndim < 0 || ndim > CMCR_MAX_DIMS)
        return core_fail(CMCR_EUNSUPPORTED, "tensor '%s': %d dimensions (at most %d)", name, ndim, CMCR_MAX_DIMS);
    if (!core_shape_bytes(shape, ndim, cmcr_dtype_size(dtype), &nbytes) || nbytes > CMCR_MAX_TENSOR_BYTES)
        return core_fail(CMCR_ENOMEM, "tensor '%s': shape too large", name);
    if (cmcr_tensors_find(ts, name)) return core_fail(CMCR_EFORMAT, "tensor '%s' appears twice", name);
    if (ts->count >= CMCR_MAX_TENSORS) return core_fail(CMCR_ENOMEM, "more than %d tensors", CMCR_MAX_TENSORS);
    if (ts->count == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 16;
        cmcr_tensor *items = realloc(ts->items, cap * sizeof *items);
        if (!items) return core_fail(CMCR_ENOMEM, "out of memory adding tensor '%s'", name);
        ts->items = items;
        ts->cap = cap;
    }
    char *nm = core_strdup(name);
    if (!nm) return core_fail(CMCR_ENOMEM, "out of memory adding tensor '%s'", name);
    cmcr_tensor *t = &ts->items[ts->count++];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = (size_t)nbytes;
    return CMCR_OK;
}

cmcr_status tensors_add_owned(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                                   const int64_t *shape, void *data)
{
    cmcr_status st = tensors_own(ts, data); /* even if the tensor is then refused */
    return st ? st : tensors_add_view(ts, name, dtype, ndim, shape, data);
}

cmcr_status cmcr_tensors_add(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                             const int64_t *shape, const void *data)
{
    uint64_t nbytes;
    if (ndim < 0 || ndim > CMCR_MAX_DIMS || !core_shape_bytes(shape, ndim, cmcr_dtype_size(dtype), &nbytes) ||
        nbytes > CMCR_MAX_TENSOR_BYTES)
        return core_fail(CMCR_EINVAL, "tensor '%s': invalid shape", name);
    void *copy = core_xmalloc((size_t)nbytes);
    if (!copy) return core_fail(CMCR_ENOMEM, "tensor '%s': cannot allocate %llu bytes", name,
                                (unsigned long long)nbytes);
    if (nbytes) memcpy(copy, data, (size_t)nbytes);
    return tensors_add_owned(ts, name, dtype, ndim, shape, copy);
}

size_t cmcr_tensors_count(const cmcr_tensors *ts) { return ts->count; }

const cmcr_tensor *cmcr_tensors_at(const cmcr_tensors *ts, size_t i)
{
    return i < ts->count ? &ts->items[i] : NULL;
}

const cmcr_tensor *cmcr_tensors_find(const cmcr_tensors *ts, const char *name)
{
    for (size_t i = 0; i < ts->count; i++)
        if (strcmp(ts->items[i].name, name) == 0) return &ts->items[i];
    return NULL;
}

cmcr_status cmcr_tensors_set_meta(cmcr_tensors *ts, const char *key, const char *value)
{
    char what[CMCR_MAX_NAME_BYTES + 32];
    cmcr_status st = tensors_check_name(CMCR_EINVAL, "metadata key", key, strlen(key));
    if (st) return st;
    snprintf(what, sizeof what, "metadata key '%s': value", key);
    st = tensors_check_text(CMCR_EINVAL, what, value, strlen(value));
    if (st) return st;
    for (size_t i = 0; i < ts->meta_count; i++) {
        if (strcmp(ts->meta[i].key, key) == 0) {
            char *v = core_strdup(value);
            if (!v) return core_fail(CMCR_ENOMEM, "out of memory");
            free(ts->meta[i].value);
            ts->meta[i].value = v;
            return CMCR_OK;
        }
    }
    if (ts->meta_count == ts->meta_cap) {
        size_t cap = ts->meta_cap ? ts->meta_cap * 2 : 8;
        struct meta_entry *m = realloc(ts->meta, cap * sizeof *m);
        if (!m) return core_fail(CMCR_ENOMEM, "out of memory");
        ts->meta = m;
        ts->meta_cap = cap;
    }
    char *k = core_strdup(key), *v = core_strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return core_fail(CMCR_ENOMEM, "out of memory");
    }
    ts->meta[ts->meta_count].key = k;
    ts->meta[ts->meta_count].value = v;
    ts->meta_count++;
    return CMCR_OK;
}

const char *cmcr_tensors_get_meta(const cmcr_tensors *ts, const char *key)
{
    for (size_t i = 0; i < ts->meta_count; i++)
        if (strcmp(ts->meta[i].key, key) == 0) return ts->meta[i].value;
    return NULL;
}

size_t cmcr_tensors_meta_count(const cmcr_tensors *ts) { return ts->meta_count; }

void cmcr_tensors_meta_at(const cmcr_tensors *ts, size_t i, const char **key, const char **value)
{
    *key = i < ts->meta_count ? ts->meta[i].key : NULL;
    *value = i < ts->meta_count ? ts->meta[i].value : NULL;
}
