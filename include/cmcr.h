/* cmcr.h - public API of libcmcr, an implementation of C-MCR
 * ("Connecting Multi-modal Contrastive Representations", Wang et al., NeurIPS 2023).
 *
 * Conventions:
 *  - Every function that can fail returns a cmcr_status. On failure, cmcr_last_error()
 *    returns a one-line message for the calling thread that names the file (or object)
 *    and the problem. The library never exits and never prints: diagnostics go through
 *    the log callback set with cmcr_set_log().
 *  - Matrices are row-major float32, one embedding per row.
 *  - Objects returned through an out-pointer are owned by the caller and freed with the
 *    matching *_free function (which accepts NULL).
 */
#ifndef CMCR_H
#define CMCR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CMCR_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- status and logging */

typedef enum cmcr_status {
    CMCR_OK = 0,
    CMCR_EINVAL,       /* bad argument or option */
    CMCR_EIO,          /* the operating system refused a read or write */
    CMCR_EFORMAT,      /* a file is malformed or truncated */
    CMCR_EUNSUPPORTED, /* well-formed, but a feature this library refuses (dtype, order...) */
    CMCR_ESHAPE,       /* shapes or widths do not match */
    CMCR_EVALUE,       /* NaN, Inf or otherwise unusable values */
    CMCR_ENOMEM,       /* allocation failed or a size exceeds the library's limits */
    CMCR_EINTERRUPTED  /* stopped on request (signal) */
} cmcr_status;

const char *cmcr_status_name(cmcr_status s);
/* Message of the last failure in this thread ("" if none). Valid until the next failure. */
const char *cmcr_last_error(void);

typedef enum cmcr_log_level {
    CMCR_LOG_ERROR = 0,
    CMCR_LOG_WARN = 1,
    CMCR_LOG_INFO = 2,
    CMCR_LOG_DEBUG = 3
} cmcr_log_level;

typedef void (*cmcr_log_fn)(cmcr_log_level level, const char *message, void *user);
/* Install a log callback (NULL silences the library, which is the default). */
void cmcr_set_log(cmcr_log_fn fn, void *user);

/* ---------------------------------------------------------------- tensors */

typedef enum cmcr_dtype {
    CMCR_F32 = 0,
    CMCR_F16,
    CMCR_BF16,
    CMCR_F64,
    CMCR_I32,
    CMCR_I64
} cmcr_dtype;

#define CMCR_MAX_DIMS 8

/* A dense, row-major, little-endian tensor. Owned by the cmcr_tensors set it lives in. */
typedef struct cmcr_tensor {
    const char *name;
    cmcr_dtype dtype;
    int ndim;
    int64_t shape[CMCR_MAX_DIMS];
    void *data;
    size_t nbytes;
} cmcr_tensor;

size_t cmcr_dtype_size(cmcr_dtype t);
const char *cmcr_dtype_name(cmcr_dtype t); /* "F32", "F16", "BF16", "F64", "I32", "I64" */
int64_t cmcr_tensor_numel(const cmcr_tensor *t);
/* Convert any numeric tensor to float32 (out holds numel floats). */
void cmcr_tensor_to_f32(const cmcr_tensor *t, float *out);

/* An ordered set of named tensors plus string metadata (a state_dict, a safetensors file). */
typedef struct cmcr_tensors cmcr_tensors;

cmcr_tensors *cmcr_tensors_new(void);
void cmcr_tensors_free(cmcr_tensors *ts);
/* Copy data (nbytes = numel * dtype size) into a new tensor named name. */
cmcr_status cmcr_tensors_add(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                             const int64_t *shape, const void *data);
size_t cmcr_tensors_count(const cmcr_tensors *ts);
const cmcr_tensor *cmcr_tensors_at(const cmcr_tensors *ts, size_t i);
const cmcr_tensor *cmcr_tensors_find(const cmcr_tensors *ts, const char *name);
cmcr_status cmcr_tensors_set_meta(cmcr_tensors *ts, const char *key, const char *value);
const char *cmcr_tensors_get_meta(const cmcr_tensors *ts, const char *key);
size_t cmcr_tensors_meta_count(const cmcr_tensors *ts);
void cmcr_tensors_meta_at(const cmcr_tensors *ts, size_t i, const char **key, const char **value);

typedef enum cmcr_format {
    CMCR_FORMAT_AUTO = 0,   /* by content when reading, by file extension when writing */
    CMCR_FORMAT_NPY,
    CMCR_FORMAT_SAFETENSORS,
    CMCR_FORMAT_PT
} cmcr_format;

const char *cmcr_format_name(cmcr_format f);
/* Load every tensor of a .npy (one tensor named "array"), .safetensors or PyTorch .pt file. */
cmcr_status cmcr_tensors_load(const char *path, cmcr_format fmt, cmcr_tensors **out);
/* Write atomically (temporary file, fsync, rename). A .npy file takes exactly one tensor. */
cmcr_status cmcr_tensors_save(const cmcr_tensors *ts, const char *path, cmcr_format fmt);

/* ---------------------------------------------------------------- embedding matrices */

/* A 2-D float32 matrix of embeddings, loaded from a .npy file (or a one-tensor
 * .safetensors/.pt file). F16/BF16/F64 are converted. Rows with NaN or Inf are refused. */
typedef struct cmcr_matrix {
    int64_t rows;
    int64_t cols;
    float *data;
} cmcr_matrix;

cmcr_status cmcr_matrix_load(const char *path, cmcr_matrix *out);
/* Write as float32 .npy, atomically. */
cmcr_status cmcr_matrix_save_npy(const char *path, const float *data, int64_t rows, int64_t cols);
void cmcr_matrix_free(cmcr_matrix *m);

/* Streaming .npy reader: float32 rows in blocks, whatever the stored float dtype. */
typedef struct cmcr_npy_reader cmcr_npy_reader;
cmcr_status cmcr_npy_reader_open(const char *path, cmcr_npy_reader **out);
int64_t cmcr_npy_reader_rows(const cmcr_npy_reader *r);
int64_t cmcr_npy_reader_cols(const cmcr_npy_reader *r);
/* Read up to max_rows rows into out (max_rows * cols floats); *got is 0 at the end.
 * Rows containing NaN or Inf are refused with their row index. */
cmcr_status cmcr_npy_reader_read(cmcr_npy_reader *r, float *out, int64_t max_rows, int64_t *got);
void cmcr_npy_reader_close(cmcr_npy_reader *r);

/* Streaming float32 .npy writer; the file appears (atomically) only on commit. */
typedef struct cmcr_npy_writer cmcr_npy_writer;
cmcr_status cmcr_npy_writer_open(const char *path, int64_t cols, cmcr_npy_writer **out);
cmcr_status cmcr_npy_writer_write(cmcr_npy_writer *w, const float *rows, int64_t n);
cmcr_status cmcr_npy_writer_commit(cmcr_npy_writer *w); /* frees w */
void cmcr_npy_writer_abort(cmcr_npy_writer *w);         /* removes the partial file, frees w */

/* ---------------------------------------------------------------- projector model */

/* Which projector: side A (f_A, for MCR A's modalities) or side B (f_B). In the released
 * checkpoints side A is key prefix "Head_A" and side B "Head_B"; in ulip_clip.pt Head_A is
 * the CLIP side and Head_B the ULIP side, in clap_clip.pt Head_A is CLAP and Head_B CLIP. */
typedef enum cmcr_side { CMCR_SIDE_A = 0, CMCR_SIDE_B = 1 } cmcr_side;

/* Shape of one projector head.
 *   layers == 1: Linear(in,out) -> BatchNorm1d(out) -> ReLU            (hidden unused)
 *   layers == 2: Linear(in,hidden) -> BN -> ReLU -> Linear(hidden,out) -> BN
 * Inputs and outputs are L2-normalised. */
typedef struct cmcr_head_shape {
    int layers;
    int64_t in_dim;
    int64_t hidden;
    int64_t out_dim;
} cmcr_head_shape;

/* Presets "clap-clip" (2 layers, 512 -> 1024 -> 512) and "ulip-clip" (1 layer, 512 -> 512). */
cmcr_status cmcr_preset_shape(const char *preset, cmcr_head_shape *out);

typedef struct cmcr_model cmcr_model;

/* Load a model file: cmcr's own (.safetensors or .pt) or a released C-MCR checkpoint. The
 * architecture is read from the key names and shapes. */
cmcr_status cmcr_model_load(const char *path, cmcr_model **out);
/* Build from tensors with the official key names; origin names the source in errors. */
cmcr_status cmcr_model_from_tensors(const cmcr_tensors *ts, const char *origin, cmcr_model **out);
/* New model with freshly initialised weights (PyTorch's default Linear init, BN identity). */
cmcr_status cmcr_model_new(const cmcr_head_shape *a, const cmcr_head_shape *b, uint64_t seed,
                           cmcr_model **out);
void cmcr_model_free(cmcr_model *m);
/* State dict with official key names (Head_A.*, Head_B.*) and metadata (preset, ...). */
cmcr_status cmcr_model_to_tensors(const cmcr_model *m, cmcr_tensors **out);
/* Save as .pt or .safetensors (chosen by extension, or fmt), atomically. */
cmcr_status cmcr_model_save(const cmcr_model *m, const char *path, cmcr_format fmt);
cmcr_head_shape cmcr_model_shape(const cmcr_model *m, cmcr_side side);
/* "clap-clip", "ulip-clip" or "custom". */
const char *cmcr_model_preset(const cmcr_model *m);
cmcr_status cmcr_model_set_meta(cmcr_model *m, const char *key, const char *value);
const char *cmcr_model_get_meta(const cmcr_model *m, const char *key);

/* Inference: out[r] = normalize(head(normalize(in[r]))), BatchNorm from running statistics.
 * in is rows x in_dim, out is rows x out_dim. Thread-safe for concurrent calls. */
cmcr_status cmcr_model_project(const cmcr_model *m, cmcr_side side, const float *in, int64_t rows,
                               float *out);

/* ---------------------------------------------------------------- small numeric helpers */

/* L2-normalise each row in place (rows of zero norm stay zero, as torch's F.normalize). */
void cmcr_normalize_rows(float *x, int64_t rows, int64_t cols);
/* Index of the first row with a NaN or Inf, or -1. */
int64_t cmcr_find_nonfinite_row(const float *x, int64_t rows, int64_t cols);

#ifdef __cplusplus
}
#endif
#endif
