/* internal.h - helpers shared by the library's source files (not installed). */
#ifndef CMCR_INTERNAL_H
#define CMCR_INTERNAL_H

#include "cmcr.h"
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define CMCR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CMCR_PRINTF(a, b)
#endif

/* Record the calling thread's error message and return st. */
cmcr_status cmcr_fail(cmcr_status st, const char *fmt, ...) CMCR_PRINTF(2, 3);
/* Prefix the current error message with "prefix: " (keeps the status). */
cmcr_status cmcr_fail_prefix(cmcr_status st, const char *prefix);
void cmcr_log(cmcr_log_level level, const char *fmt, ...) CMCR_PRINTF(2, 3);

/* Limits checked before any allocation driven by file contents. The tensor data one file
 * makes the loader allocate is at most what the file can hold: the data section itself for
 * .npy and .safetensors (every data byte belongs to exactly one tensor), and for .pt each
 * distinct storage once (views share it), the storages and the pickle together at most
 * CMCR_MAX_INFLATE times the file's size (deflate's largest expansion); and never more than
 * CMCR_MAX_LOAD_BYTES. */
#define CMCR_MAX_TENSOR_BYTES ((uint64_t)16 << 30)   /* 16 GiB per tensor */
#define CMCR_MAX_LOAD_BYTES ((uint64_t)64 << 30)     /* 64 GiB of tensor data per file */
#define CMCR_MAX_INFLATE 1032                        /* bytes a deflated zip byte can become */
#define CMCR_MAX_HEADER_BYTES ((uint64_t)100 << 20)  /* 100 MiB of header/JSON/pickle */
#define CMCR_MAX_TENSORS 100000
#define CMCR_MAX_NAME_BYTES 512                      /* tensor names and metadata keys */

/* Overflow-checked arithmetic: return false on overflow. */
bool cmcr_mul_u64(uint64_t a, uint64_t b, uint64_t *out);
bool cmcr_add_u64(uint64_t a, uint64_t b, uint64_t *out);
/* Product of shape[0..ndim) (each >= 0) times elem; false on overflow or negative dims. */
bool cmcr_shape_bytes(const int64_t *shape, int ndim, size_t elem, uint64_t *out);

/* dst = src / max(|src|, 1e-12) for one row of n (F.normalize; dst may be src); returns
 * |src|. The one row normalisation behind cmcr_normalize_rows, training and aggregation. */
double cmcr_normalize_row(const float *src, float *dst, int64_t n);

/* CMCR_OK when x (rows x cols) is all finite, else CMCR_EVALUE with the first bad value:
 * "<what>: row R contains NaN (column C)" (or Inf, -Inf; the
 * wording of the .npy reader's check), where what is fmt formatted (only on
 * failure) and R counts from row0. The one check behind every block of numbers the library
 * reads or produces: one vectorised pass (cmcr_find_nonfinite_row), cheap on a block that is
 * still in cache. */
cmcr_status cmcr_check_finite(const float *x, int64_t rows, int64_t cols, int64_t row0, const char *fmt, ...)
    CMCR_PRINTF(5, 6);

void *cmcr_xmalloc(size_t n); /* malloc(n ? n : 1); NULL on failure */
char *cmcr_strdup(const char *s);

/* Read a whole file (at most max_bytes) into a malloc'd buffer. */
cmcr_status cmcr_read_file(const char *path, uint64_t max_bytes, unsigned char **buf, size_t *len);

/* Atomic output: write to "<path>.tmp.<pid>.<n>", then fsync + rename on commit. */
typedef struct cmcr_afile {
    FILE *f;
    char *tmp;
    char *path;
} cmcr_afile;
cmcr_status cmcr_afile_open(cmcr_afile *a, const char *path);
cmcr_status cmcr_afile_write(cmcr_afile *a, const void *data, size_t n);
cmcr_status cmcr_afile_commit(cmcr_afile *a);
void cmcr_afile_abort(cmcr_afile *a);
/* For writers that create the temporary file themselves (libzip): a fresh temp name, and
 * the fsync + rename step. */
char *cmcr_temp_name(const char *path);
cmcr_status cmcr_commit_temp(const char *tmp, const char *path);
/* Remove a temporary file that will not be committed (and forget it: see
 * cmcr_remove_temp_files). cmcr_temp_name registers every name; commit and discard release it. */
void cmcr_temp_discard(const char *tmp);

/* Half-precision conversions (round to nearest even). The bfloat16 pair is inline: the
 * bf16 products convert whole matrices with it (matmul.c, eval.c), in loops that vectorise. */
float cmcr_f16_to_f32(uint16_t h);
uint16_t cmcr_f32_to_f16(float f);

static inline float cmcr_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t cmcr_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* Format-specific readers/writers (npy.c, safetensors.c, pt.c). */
cmcr_status cmcr_npy_load(const char *path, cmcr_tensors **out);
cmcr_status cmcr_npy_save(const cmcr_tensor *t, const char *path);
cmcr_status cmcr_safetensors_load(const char *path, cmcr_tensors **out);
cmcr_status cmcr_safetensors_save(const cmcr_tensors *ts, const char *path);
cmcr_status cmcr_pt_load(const char *path, cmcr_tensors **out);
cmcr_status cmcr_pt_save(const cmcr_tensors *ts, const char *path);

/* The .npy header of a float32 rows x cols matrix (at most NPY_HEADER_MAX bytes) into buf;
 * returns its length (a multiple of 64, as numpy writes it). */
#define NPY_HEADER_MAX 512
size_t cmcr_npy_matrix_header(char *buf, int64_t rows, int64_t cols);

/* Add a tensor taking ownership of data (malloc'd, nbytes must match the shape). */
cmcr_status cmcr_tensors_add_owned(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                                   const int64_t *shape, void *data);
/* Give ts a malloc'd buffer to own (freed with ts, or at once if this fails), so that several
 * tensors can view it with cmcr_tensors_add_view: the storage of a .pt file, read once. */
cmcr_status cmcr_tensors_own(cmcr_tensors *ts, void *block);
/* Add a tensor whose data lies inside a buffer ts owns (no copy). */
cmcr_status cmcr_tensors_add_view(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                                  const int64_t *shape, void *data);

/* The one rule for names in every format, reading and writing: tensor names and metadata keys
 * are 1 to CMCR_MAX_NAME_BYTES bytes of UTF-8 without control characters (C0, DEL, C1), so a
 * name prints on one line and cannot drive a terminal; metadata values are UTF-8 text of any
 * length whose only control characters are tab and newline. On failure, returns st with a
 * message "<what> '<name, escaped>' <problem>". len counts the bytes (a NUL among them is a
 * control character). */
cmcr_status cmcr_check_name(cmcr_status st, const char *what, const char *s, size_t len);
cmcr_status cmcr_check_text(cmcr_status st, const char *what, const char *s, size_t len);
/* s (len bytes) for a one-line message: valid UTF-8 other than control characters as is, a
 * backslash and every other byte as \xNN; cut with "..." to fit cap (at least 8). */
const char *cmcr_escape(char *out, size_t cap, const char *s, size_t len);

#endif
