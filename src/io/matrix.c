/* matrix.c - embedding matrices: one 2-D float32 tensor of a file, whole or a shard of rows. */
#include "io/io.h"
#include "runtime/vmath.h"

#include <stdlib.h>
#include <string.h>

cmcr_status cmcr_matrix_load_shard(const char *path, int part, int parts, cmcr_matrix *out)
{
    memset(out, 0, sizeof *out);
    if (parts < 1 || part < 0 || part >= parts)
        return core_fail(CMCR_EINVAL, "%s: invalid shard %d of %d", path, part, parts);
    cmcr_npy_reader *r;
    cmcr_status st = cmcr_npy_reader_open(path, &r);
    if (st) return st;
    int64_t rows = cmcr_npy_reader_rows(r), cols = cmcr_npy_reader_cols(r), got = 0;
    int64_t lo = rows * part / parts, hi = rows * (part + 1) / parts;
    float *data = NULL;
    if (rows < 1 || cols < 1)
        st = core_fail(CMCR_ESHAPE, "%s: expected a non-empty 2-D matrix (rows x width)", path);
    else if (!(data = core_xmalloc((size_t)(hi - lo) * (size_t)cols * sizeof(float))))
        st = core_fail(CMCR_ENOMEM, "%s: cannot allocate %lld x %lld floats", path, (long long)(hi - lo),
                       (long long)cols);
    if (!st) st = cmcr_npy_reader_seek(r, lo);
    if (!st) st = cmcr_npy_reader_read(r, data, hi - lo, &got);
    cmcr_npy_reader_close(r);
    if (st == CMCR_OK && got != hi - lo)
        st = core_fail(CMCR_EFORMAT, "%s: read %lld of %lld rows", path, (long long)got, (long long)(hi - lo));
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
    if (cmcr_tensors_count(ts) != 1) {
        size_t n = cmcr_tensors_count(ts);
        cmcr_tensors_free(ts);
        return core_fail(CMCR_ESHAPE, "%s: expected one embedding matrix, found %zu tensors", path, n);
    }
    const cmcr_tensor *t = cmcr_tensors_at(ts, 0);
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1) {
        cmcr_tensors_free(ts);
        return core_fail(CMCR_ESHAPE, "%s: expected a non-empty 2-D matrix (rows x width)", path);
    }
    if (t->dtype == CMCR_I32 || t->dtype == CMCR_I64 || t->dtype == CMCR_U8) {
        st = core_fail(CMCR_EUNSUPPORTED, "%s: embeddings must be floating point, not %s", path,
                       cmcr_dtype_name(t->dtype)); /* before the free: t lives in ts */
        cmcr_tensors_free(ts);
        return st;
    }
    int64_t rows = t->shape[0], cols = t->shape[1];
    float *data = core_xmalloc((size_t)rows * (size_t)cols * sizeof(float));
    if (!data) {
        cmcr_tensors_free(ts);
        return core_fail(CMCR_ENOMEM, "%s: cannot allocate %lld x %lld floats", path, (long long)rows,
                         (long long)cols);
    }
    cmcr_tensor_to_f32(t, data);
    cmcr_tensors_free(ts);
    st = vm_check_finite(data, rows, cols, 0, "%s", path);
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
