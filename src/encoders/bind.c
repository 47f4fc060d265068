/* bind.c - checking and copying an encoder's tensors (see bind.h). */
#include "encoders/beside.h"
#include "encoders/bind.h"
#include "io/io.h"
#include "runtime/matmul.h"
#include "runtime/vmath.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

cmcr_status bind_load_file(const char *model, const char *shown, const char *file_hint, const char *kind,
                           const char *const *prefixes, size_t n, cmcr_tensors **ts)
{
    cmcr_format fmt;
    *ts = NULL;
    if (beside_is_dir(model)) return core_fail(CMCR_EINVAL, "%s: a folder; give %s", shown, file_hint);
    cmcr_status st = cmcr_file_format(model, &fmt);
    if (st) return st;
    if (fmt == CMCR_FORMAT_NPY) return core_fail(CMCR_EFORMAT, "%s: a .npy array, not a %s checkpoint", shown, kind);
    if (fmt == CMCR_FORMAT_PT && prefixes) return pt_load_only(model, prefixes, n, ts);
    return tensors_load_mapped(model, fmt, ts);
}

float *bind_take(binder *b, uint64_t n)
{
    float *p = b->base ? b->base + b->used : NULL;
    b->used += n;
    return p;
}

void bind_dims_str(char *out, size_t cap, const int64_t *d, int n)
{
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < n && k < cap; i++) k += (size_t)snprintf(out + k, cap - k, i ? ", %lld" : "%lld", (long long)d[i]);
    if (k < cap) snprintf(out + k, cap - k, "]");
}

const cmcr_tensor *bind_find(const binder *b, const char *key) { return cmcr_tensors_find(b->ts, key); }

cmcr_status bind_missing(const binder *b, const char *key)
{
    return core_fail(CMCR_EFORMAT, "%s: missing tensor '%s' (%s)", b->file, key, b->what);
}

cmcr_status bind_check_shape(const binder *b, const cmcr_tensor *t, const char *key, int ndim, const int64_t *shape)
{
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (same) return CMCR_OK;
    char got[128], exp[128];
    bind_dims_str(got, sizeof got, t->shape, t->ndim);
    bind_dims_str(exp, sizeof exp, shape, ndim);
    return core_fail(CMCR_ESHAPE, "%s: tensor '%s' has shape %s, expected %s", b->file, key, got, exp);
}

cmcr_status bind_key(binder *b, float *dst, int ndim, const int64_t *shape, int transpose, const char *key)
{
    const cmcr_tensor *t = bind_find(b, key);
    if (!t) return bind_missing(b, key);
    int64_t want[4];
    for (int i = 0; i < ndim; i++) want[i] = transpose ? shape[ndim - 1 - i] : shape[i];
    cmcr_status st = bind_check_shape(b, t, key, ndim, want);
    if (st) return st;
    if (t->dtype != CMCR_F32 && t->dtype != CMCR_F16 && t->dtype != CMCR_BF16 && t->dtype != CMCR_F64)
        return core_fail(CMCR_EFORMAT, "%s: tensor '%s' is %s, expected floating point", b->file, key,
                         cmcr_dtype_name(t->dtype));
    if (!dst) return CMCR_OK;
    int64_t rows = ndim > 1 ? want[0] : 1, cols = cmcr_tensor_numel(t) / (rows ? rows : 1);
    float *src = dst;
    if (transpose && !(src = core_xmalloc((size_t)cmcr_tensor_numel(t) * sizeof(float))))
        return core_fail(CMCR_ENOMEM, "%s: out of memory converting tensor '%s'", b->file, key);
    cmcr_tensor_to_f32(t, src);
    tensors_release(b->ts, t); /* a mapped file's pages: converted, not needed again */
    st = vm_check_finite(src, rows, cols, 0, "%s: tensor '%s'", b->file, key);
    if (transpose) {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) dst[j * rows + i] = src[i * cols + j];
        free(src);
    }
    return st;
}

cmcr_status bind_fmt(binder *b, float *dst, int transpose, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                     const char *fmt, ...)
{
    char key[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    int64_t shape[4] = {d0, d1, d2, d3};
    int ndim = d3 ? 4 : d2 ? 3 : d1 ? 2 : 1;
    return bind_key(b, dst, ndim, shape, transpose, key);
}

cmcr_status bind_norm(binder *b, tf_norm *ln, int64_t w, const char *prefix)
{
    float *g = bind_take(b, (uint64_t)w), *bias = bind_take(b, (uint64_t)w);
    ln->g = g;
    ln->b = bias;
    ln->eps = 1e-5f;
    cmcr_status st = bind_fmt(b, g, 0, w, 0, 0, 0, "%s.weight", prefix);
    return st ? st : bind_fmt(b, bias, 0, w, 0, 0, 0, "%s.bias", prefix);
}

cmcr_status bind_linear(binder *b, tf_linear *l, int64_t out, int64_t in, const char *prefix)
{
    float *w = bind_take(b, (uint64_t)out * (uint64_t)in), *bias = bind_take(b, (uint64_t)out);
    *l = (tf_linear){.w = w, .b = bias, .in = in, .out = out};
    cmcr_status st = bind_fmt(b, w, 0, out, in, 0, 0, "%s.weight", prefix);
    return st ? st : bind_fmt(b, bias, 0, out, 0, 0, 0, "%s.bias", prefix);
}

cmcr_status bind_dim(const binder *b, const char *key, int ndim, int axis, int64_t lo, int64_t hi, int32_t *out)
{
    const cmcr_tensor *t = bind_find(b, key);
    if (!t) return bind_missing(b, key);
    if (t->ndim != ndim) {
        char got[128];
        bind_dims_str(got, sizeof got, t->shape, t->ndim);
        return core_fail(CMCR_ESHAPE, "%s: tensor '%s' has shape %s, expected %d dimensions", b->file, key, got, ndim);
    }
    int64_t v = t->shape[axis];
    if (v < lo || v > hi)
        return core_fail(CMCR_EUNSUPPORTED, "%s: tensor '%s' has %lld in dimension %d, outside %lld..%lld", b->file,
                         key, (long long)v, axis, (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return CMCR_OK;
}

int32_t bind_count(const binder *b, const char *fmt, int32_t max)
{
    char key[256];
    int32_t n = 0;
    while (n < max) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(key, sizeof key, fmt, n);
#pragma GCC diagnostic pop
        if (!bind_find(b, key)) break;
        n++;
    }
    return n;
}

cmcr_status bind_bf16(tf_linear *const *ls, size_t n, const char *name, uint16_t **block)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += (uint64_t)ls[i]->in * (uint64_t)ls[i]->out;
    if (total > SIZE_MAX / 2 || !(*block = core_xmalloc((size_t)total * 2)))
        return core_fail(CMCR_ENOMEM, "%s: out of memory for the bfloat16 weights", name);
    uint16_t *p = *block;
    for (size_t i = 0; i < n; i++) {
        int64_t k = ls[i]->in * ls[i]->out;
        mm_bf16_from_f32(ls[i]->w, p, k);
        ls[i]->w16 = p;
        p += k;
    }
    return CMCR_OK;
}

cmcr_status bind_bf16_blocks(tf_linear *const *fixed, size_t nfixed, tf_block *const *blocks, const int64_t *nblocks,
                             int ngroups, const char *name, uint16_t **block)
{
    size_t n = nfixed;
    for (int g = 0; g < ngroups; g++) n += 4 * (size_t)nblocks[g];
    tf_linear **ls = malloc(sizeof *ls * n);
    if (!ls) return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    n = 0;
    for (size_t i = 0; i < nfixed; i++) ls[n++] = fixed[i];
    for (int g = 0; g < ngroups; g++)
        for (int64_t i = 0; i < nblocks[g]; i++) {
            tf_block *b = &blocks[g][i];
            ls[n++] = &b->qkv;
            ls[n++] = &b->out;
            ls[n++] = &b->fc1;
            ls[n++] = &b->fc2;
        }
    cmcr_status st = bind_bf16(ls, n, name, block);
    free(ls);
    return st;
}

cmcr_status bind_check_bf16(const char *name, const uint16_t *params16, int bf16)
{
    if (!bf16) return CMCR_OK;
    if (mm_bf16_check() != CMCR_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", cmcr_last_error());
        return core_fail(CMCR_EUNSUPPORTED, "%s: %s", name, why);
    }
    if (!params16) return core_fail(CMCR_EUNSUPPORTED, "%s: loaded without bfloat16 weights (float32 only)", name);
    return CMCR_OK;
}
