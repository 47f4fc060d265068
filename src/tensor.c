/* tensor.c - dtypes, the named tensor set, format dispatch and embedding matrices. */
#include "internal.h"
#include "vmath.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct meta_entry {
    char *key;
    char *value;
};

/* Tensors view buffers the set owns: one per tensor, except that the tensors of one .pt
 * storage share it. */
struct cmcr_tensors {
    cmcr_tensor *items;
    size_t count, cap;
    void **blocks;
    size_t nblocks, blocks_cap;
    struct meta_entry *meta;
    size_t meta_count, meta_cap;
};

size_t cmcr_dtype_size(cmcr_dtype t)
{
    switch (t) {
    case CMCR_F32: case CMCR_I32: return 4;
    case CMCR_F16: case CMCR_BF16: return 2;
    case CMCR_F64: case CMCR_I64: return 8;
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
    }
    return "?";
}

int64_t cmcr_tensor_numel(const cmcr_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

float cmcr_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t cmcr_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 31) return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10) return sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into inf: correct */
    return sign | (uint16_t)half;
}

void cmcr_tensor_to_f32(const cmcr_tensor *t, float *out)
{
    int64_t n = cmcr_tensor_numel(t);
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case CMCR_F32: { float v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case CMCR_F64: { double v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
        case CMCR_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = cmcr_f16_to_f32(v); break; }
        case CMCR_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = cmcr_bf16_to_f32(v); break; }
        case CMCR_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = (float)v; break; }
        case CMCR_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
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

const char *cmcr_escape(char *out, size_t cap, const char *s, size_t len)
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

/* NULL when s (len bytes) is a good name (or, for !name, metadata text); else what is wrong. */
static const char *text_problem(const char *s, size_t len, bool name)
{
    if (name && len == 0) return "is empty";
    if (name && len > CMCR_MAX_NAME_BYTES) return "is longer than " STR(CMCR_MAX_NAME_BYTES) " bytes";
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = utf8_char((const unsigned char *)s + i, len - i, &cp);
        if (k == 0) return "is not valid UTF-8";
        if (is_control(cp) && (name || (cp != '\t' && cp != '\n'))) return "contains control characters";
        i += k;
    }
    return NULL;
}

static cmcr_status check_text(cmcr_status st, const char *what, const char *s, size_t len, bool name)
{
    const char *problem = text_problem(s, len, name);
    char shown[100];
    if (!problem) return CMCR_OK;
    return cmcr_fail(st, "%s '%s' %s", what, cmcr_escape(shown, sizeof shown, s, len), problem);
}

cmcr_status cmcr_check_name(cmcr_status st, const char *what, const char *s, size_t len)
{
    return check_text(st, what, s, len, true);
}

cmcr_status cmcr_check_text(cmcr_status st, const char *what, const char *s, size_t len)
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
    for (size_t i = 0; i < ts->meta_count; i++) {
        free(ts->meta[i].key);
        free(ts->meta[i].value);
    }
    free(ts->items);
    free(ts->blocks);
    free(ts->meta);
    free(ts);
}

cmcr_status cmcr_tensors_own(cmcr_tensors *ts, void *block)
{
    if (ts->nblocks == ts->blocks_cap) {
        size_t cap = ts->blocks_cap ? ts->blocks_cap * 2 : 16;
        void **blocks = realloc(ts->blocks, cap * sizeof *blocks);
        if (!blocks) {
            free(block);
            return cmcr_fail(CMCR_ENOMEM, "out of memory");
        }
        ts->blocks = blocks;
        ts->blocks_cap = cap;
    }
    ts->blocks[ts->nblocks++] = block;
    return CMCR_OK;
}

cmcr_status cmcr_tensors_add_view(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                                  const int64_t *shape, void *data)
{
    uint64_t nbytes;
    cmcr_status st = cmcr_check_name(CMCR_EINVAL, "tensor name", name, strlen(name));
    if (st) return st;
    if (ndim < 0 || ndim > CMCR_MAX_DIMS)
        return cmcr_fail(CMCR_EUNSUPPORTED, "tensor '%s': %d dimensions (at most %d)", name, ndim, CMCR_MAX_DIMS);
    if (!cmcr_shape_bytes(shape, ndim, cmcr_dtype_size(dtype), &nbytes) || nbytes > CMCR_MAX_TENSOR_BYTES)
        return cmcr_fail(CMCR_ENOMEM, "tensor '%s': shape too large", name);
    if (cmcr_tensors_find(ts, name)) return cmcr_fail(CMCR_EFORMAT, "tensor '%s' appears twice", name);
    if (ts->count >= CMCR_MAX_TENSORS) return cmcr_fail(CMCR_ENOMEM, "more than %d tensors", CMCR_MAX_TENSORS);
    if (ts->count == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 16;
        cmcr_tensor *items = realloc(ts->items, cap * sizeof *items);
        if (!items) return cmcr_fail(CMCR_ENOMEM, "out of memory adding tensor '%s'", name);
        ts->items = items;
        ts->cap = cap;
    }
    char *nm = cmcr_strdup(name);
    if (!nm) return cmcr_fail(CMCR_ENOMEM, "out of memory adding tensor '%s'", name);
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

cmcr_status cmcr_tensors_add_owned(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                                   const int64_t *shape, void *data)
{
    cmcr_status st = cmcr_tensors_own(ts, data); /* even if the tensor is then refused */
    return st ? st : cmcr_tensors_add_view(ts, name, dtype, ndim, shape, data);
}

cmcr_status cmcr_tensors_add(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                             const int64_t *shape, const void *data)
{
    uint64_t nbytes;
    if (ndim < 0 || ndim > CMCR_MAX_DIMS || !cmcr_shape_bytes(shape, ndim, cmcr_dtype_size(dtype), &nbytes) ||
        nbytes > CMCR_MAX_TENSOR_BYTES)
        return cmcr_fail(CMCR_EINVAL, "tensor '%s': invalid shape", name);
    void *copy = cmcr_xmalloc((size_t)nbytes);
    if (!copy) return cmcr_fail(CMCR_ENOMEM, "tensor '%s': cannot allocate %llu bytes", name,
                                (unsigned long long)nbytes);
    if (nbytes) memcpy(copy, data, (size_t)nbytes);
    return cmcr_tensors_add_owned(ts, name, dtype, ndim, shape, copy);
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
    cmcr_status st = cmcr_check_name(CMCR_EINVAL, "metadata key", key, strlen(key));
    if (st) return st;
    snprintf(what, sizeof what, "metadata key '%s': value", key);
    st = cmcr_check_text(CMCR_EINVAL, what, value, strlen(value));
    if (st) return st;
    for (size_t i = 0; i < ts->meta_count; i++) {
        if (strcmp(ts->meta[i].key, key) == 0) {
            char *v = cmcr_strdup(value);
            if (!v) return cmcr_fail(CMCR_ENOMEM, "out of memory");
            free(ts->meta[i].value);
            ts->meta[i].value = v;
            return CMCR_OK;
        }
    }
    if (ts->meta_count == ts->meta_cap) {
        size_t cap = ts->meta_cap ? ts->meta_cap * 2 : 8;
        struct meta_entry *m = realloc(ts->meta, cap * sizeof *m);
        if (!m) return cmcr_fail(CMCR_ENOMEM, "out of memory");
        ts->meta = m;
        ts->meta_cap = cap;
    }
    char *k = cmcr_strdup(key), *v = cmcr_strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return cmcr_fail(CMCR_ENOMEM, "out of memory");
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

/* ------------------------------------------------------------------ format dispatch */

const char *cmcr_format_name(cmcr_format f)
{
    switch (f) {
    case CMCR_FORMAT_AUTO: return "auto";
    case CMCR_FORMAT_NPY: return "npy";
    case CMCR_FORMAT_SAFETENSORS: return "safetensors";
    case CMCR_FORMAT_PT: return "pt";
    }
    return "?";
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static cmcr_format format_from_name(const char *path)
{
    if (ends_with(path, ".npy")) return CMCR_FORMAT_NPY;
    if (ends_with(path, ".safetensors")) return CMCR_FORMAT_SAFETENSORS;
    if (ends_with(path, ".pt") || ends_with(path, ".pth") || ends_with(path, ".bin")) return CMCR_FORMAT_PT;
    return CMCR_FORMAT_AUTO;
}

cmcr_status cmcr_file_format(const char *path, cmcr_format *fmt)
{
    unsigned char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return cmcr_fail(CMCR_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (n == 0) return cmcr_fail(CMCR_EFORMAT, "%s: file is empty", path);
    if (n >= 6 && memcmp(magic, "\x93NUMPY", 6) == 0) *fmt = CMCR_FORMAT_NPY;
    else if (n >= 4 && memcmp(magic, "PK\x03\x04", 4) == 0) *fmt = CMCR_FORMAT_PT;
    else if (format_from_name(path) != CMCR_FORMAT_AUTO) *fmt = format_from_name(path); /* its reader names the problem */
    else if (n == 8) *fmt = CMCR_FORMAT_SAFETENSORS; /* 8-byte header length; validated there */
    else return cmcr_fail(CMCR_EFORMAT, "%s: too short (%zu bytes) to be a tensor file", path, n);
    return CMCR_OK;
}

cmcr_status cmcr_tensors_load(const char *path, cmcr_format fmt, cmcr_tensors **out)
{
    *out = NULL;
    if (fmt == CMCR_FORMAT_AUTO) {
        cmcr_status st = cmcr_file_format(path, &fmt);
        if (st) return st;
    }
    switch (fmt) {
    case CMCR_FORMAT_NPY: return cmcr_npy_load(path, out);
    case CMCR_FORMAT_SAFETENSORS: return cmcr_safetensors_load(path, out);
    case CMCR_FORMAT_PT: return cmcr_pt_load(path, out);
    default: return cmcr_fail(CMCR_EINVAL, "%s: unknown format", path);
    }
}

cmcr_status cmcr_tensors_save(const cmcr_tensors *ts, const char *path, cmcr_format fmt)
{
    if (fmt == CMCR_FORMAT_AUTO) fmt = format_from_name(path);
    switch (fmt) {
    case CMCR_FORMAT_NPY:
        if (ts->count != 1)
            return cmcr_fail(CMCR_EINVAL, "%s: a .npy file holds one tensor, not %zu", path, ts->count);
        return cmcr_npy_save(&ts->items[0], path);
    case CMCR_FORMAT_SAFETENSORS: return cmcr_safetensors_save(ts, path);
    case CMCR_FORMAT_PT: return cmcr_pt_save(ts, path);
    default:
        return cmcr_fail(CMCR_EINVAL, "%s: cannot tell the format from the name (use .npy, .safetensors or .pt)",
                         path);
    }
}

/* ------------------------------------------------------------------ matrices */

/* True when every value of v is finite, in one pass that vectorises: v * 0 is 0 for finite v
 * and NaN for NaN or Inf, and a NaN propagates through the sum (an early exit per value would
 * keep the loop scalar). */
CMCR_VECTOR_CLONES
static bool row_finite(const float *v, int64_t n)
{
    float s = 0;
    #pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < n; c++) s += v[c] * 0.0f;
    return s == 0;
}

/* Large blocks are split across threads; the answer is the same as a scan's. */
int64_t cmcr_find_nonfinite_row(const float *x, int64_t rows, int64_t cols)
{
    int64_t bad = INT64_MAX;
    #pragma omp parallel for schedule(static) reduction(min : bad) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++)
        if (!row_finite(x + r * cols, cols) && r < bad) bad = r;
    return bad == INT64_MAX ? -1 : bad;
}

cmcr_status cmcr_check_finite(const float *x, int64_t rows, int64_t cols, int64_t row0, const char *fmt, ...)
{
    int64_t r = cmcr_find_nonfinite_row(x, rows, cols), c = 0;
    if (r < 0) return CMCR_OK;
    const float *v = x + r * cols;
    while (isfinite(v[c])) c++;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cmcr_fail(CMCR_EVALUE, "%s: row %lld contains %s (column %lld)", what, (long long)(row0 + r),
                     isnan(v[c]) ? "NaN" : v[c] > 0 ? "Inf" : "-Inf", (long long)c);
}

CMCR_VECTOR_CLONES
double cmcr_normalize_row(const float *src, float *dst, int64_t n)
{
    double ss = 0;
    #pragma omp simd reduction(+ : ss) /* lanes of double partial sums: a serial sum was 8x slower */
    for (int64_t c = 0; c < n; c++) ss += (double)src[c] * src[c];
    double norm = sqrt(ss);
    float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
    for (int64_t c = 0; c < n; c++) dst[c] = src[c] * inv;
    return norm;
}

void cmcr_normalize_rows(float *x, int64_t rows, int64_t cols)
{
    #pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) cmcr_normalize_row(x + r * cols, x + r * cols, cols);
}

cmcr_status cmcr_matrix_load_shard(const char *path, int part, int parts, cmcr_matrix *out)
{
    memset(out, 0, sizeof *out);
    if (parts < 1 || part < 0 || part >= parts)
        return cmcr_fail(CMCR_EINVAL, "%s: invalid shard %d of %d", path, part, parts);
    cmcr_npy_reader *r;
    cmcr_status st = cmcr_npy_reader_open(path, &r);
    if (st) return st;
    int64_t rows = cmcr_npy_reader_rows(r), cols = cmcr_npy_reader_cols(r), got = 0;
    int64_t lo = rows * part / parts, hi = rows * (part + 1) / parts;
    float *data = NULL;
    if (rows < 1 || cols < 1)
        st = cmcr_fail(CMCR_ESHAPE, "%s: expected a non-empty 2-D matrix (rows x width)", path);
    else if (!(data = cmcr_xmalloc((size_t)(hi - lo) * (size_t)cols * sizeof(float))))
        st = cmcr_fail(CMCR_ENOMEM, "%s: cannot allocate %lld x %lld floats", path, (long long)(hi - lo),
                       (long long)cols);
    if (!st) st = cmcr_npy_reader_seek(r, lo);
    if (!st) st = cmcr_npy_reader_read(r, data, hi - lo, &got);
    cmcr_npy_reader_close(r);
    if (st == CMCR_OK && got != hi - lo)
        st = cmcr_fail(CMCR_EFORMAT, "%s: read %lld of %lld rows", path, (long long)got, (long long)(hi - lo));
    if (st) {
        free(data);
        return st;
    }
    out->rows = got;
    out->cols = cols;
    out->data = data;
    return CMCR_OK;
}

static cmcr_status matrix_load_tensor(const char *path, cmcr_format fmt, cmcr_matrix *out)
{
    cmcr_tensors *ts;
    cmcr_status st = cmcr_tensors_load(path, fmt, &ts);
    if (st) return st;
    if (ts->count != 1) {
        size_t n = ts->count;
        cmcr_tensors_free(ts);
        return cmcr_fail(CMCR_ESHAPE, "%s: expected one embedding matrix, found %zu tensors", path, n);
    }
    const cmcr_tensor *t = &ts->items[0];
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1) {
        cmcr_tensors_free(ts);
        return cmcr_fail(CMCR_ESHAPE, "%s: expected a non-empty 2-D matrix (rows x width)", path);
    }
    if (t->dtype == CMCR_I32 || t->dtype == CMCR_I64) {
        cmcr_tensors_free(ts);
        return cmcr_fail(CMCR_EUNSUPPORTED, "%s: embeddings must be floating point, not %s", path,
                         cmcr_dtype_name(t->dtype));
    }
    int64_t rows = t->shape[0], cols = t->shape[1];
    float *data = cmcr_xmalloc((size_t)rows * (size_t)cols * sizeof(float));
    if (!data) {
        cmcr_tensors_free(ts);
        return cmcr_fail(CMCR_ENOMEM, "%s: cannot allocate %lld x %lld floats", path, (long long)rows,
                         (long long)cols);
    }
    cmcr_tensor_to_f32(t, data);
    cmcr_tensors_free(ts);
    st = cmcr_check_finite(data, rows, cols, 0, "%s", path);
    if (st) {
        free(data);
        return st;
    }
    out->rows = rows;
    out->cols = cols;
    out->data = data;
    return CMCR_OK;
}

cmcr_status cmcr_matrix_load(const char *path, cmcr_matrix *out)
{
    memset(out, 0, sizeof *out);
    cmcr_format fmt;
    cmcr_status st = cmcr_file_format(path, &fmt);
    if (st) return st;
    /* .npy: the whole matrix is the one shard of one */
    return fmt == CMCR_FORMAT_NPY ? cmcr_matrix_load_shard(path, 0, 1, out) : matrix_load_tensor(path, fmt, out);
}

cmcr_status cmcr_matrix_save_npy(const char *path, const float *data, int64_t rows, int64_t cols)
{
    cmcr_npy_writer *w;
    cmcr_status st = cmcr_npy_writer_open(path, cols, &w);
    if (st) return st;
    st = cmcr_npy_writer_write(w, data, rows);
    if (st) {
        cmcr_npy_writer_abort(w);
        return st;
    }
    return cmcr_npy_writer_commit(w);
}

void cmcr_matrix_free(cmcr_matrix *m)
{
    if (!m) return;
    free(m->data);
    memset(m, 0, sizeof *m);
}
