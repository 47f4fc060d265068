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

/* Marks the library's exported functions: the shared library is built with
 * -fvisibility=hidden, so only what carries CMCR_API is visible to programs. */
#if defined(__GNUC__)
#define CMCR_API __attribute__((visibility("default")))
#else
#define CMCR_API
#endif

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

/* The library's version, "MAJOR.MINOR.PATCH" (CMCR_VERSION_STRING of the build that made it:
 * a program can compare it with the header it was compiled against). */
CMCR_API const char *cmcr_version(void);

CMCR_API const char *cmcr_status_name(cmcr_status s);
/* Message of the last failure in this thread ("" if none). Valid until the next failure. */
CMCR_API const char *cmcr_last_error(void);

typedef enum cmcr_log_level {
    CMCR_LOG_ERROR = 0,
    CMCR_LOG_WARN = 1,
    CMCR_LOG_INFO = 2,
    CMCR_LOG_DEBUG = 3
} cmcr_log_level;

typedef void (*cmcr_log_fn)(cmcr_log_level level, const char *message, void *user);
/* Install a log callback (NULL silences the library, which is the default). It may be called
 * from the library's worker threads (cmcr_clip_pixels_files decodes in parallel), so it must
 * be safe to call from several threads at once. */
CMCR_API void cmcr_set_log(cmcr_log_fn fn, void *user);

/* Strict number parsing, for command-line flags and numbers stored in files: the whole of s
 * must be one decimal number (integers: optional '-', digits; floats: what strtod reads,
 * finite), with no space, no trailing characters, not empty, and within [lo, hi]. On failure
 * *out is unchanged and the message says what is wrong with the text (the caller adds which
 * flag or file it came from). */
CMCR_API cmcr_status cmcr_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
CMCR_API cmcr_status cmcr_parse_u64(const char *s, uint64_t *out); /* 0 .. 2^64-1 (seeds) */
CMCR_API cmcr_status cmcr_parse_double(const char *s, double lo, double hi, double *out);

/* s as one line of printable text, into out (cap bytes, at least 8): valid UTF-8 without
 * control characters as is, a backslash and every other byte as \xNN, cut with "..." when
 * it does not fit. The form every error message uses to quote a name from a file; equal to
 * s exactly when s is printable (and fits). */
CMCR_API const char *cmcr_printable(char *out, size_t cap, const char *s);

/* Write len bytes to path atomically (a temporary file, fsync, rename): path then holds
 * either its old content or all of data, never a part. */
CMCR_API cmcr_status cmcr_write_file(const char *path, const void *data, size_t len);

/* Temporary files: every output is written to "<path>.tmp.<pid>.<n>" and renamed into place
 * when complete. The library keeps the names of those that exist now (uncommitted); this
 * removes them all. It is async-signal-safe (it only calls unlink), for a program's SIGINT/
 * SIGTERM handler: the library installs no signal handler itself. Work in progress in other
 * threads fails afterwards with an i/o error; the handler is expected to end the process. */
CMCR_API void cmcr_remove_temp_files(void);

/* ---------------------------------------------------------------- tensors */

typedef enum cmcr_dtype {
    CMCR_F32 = 0,
    CMCR_F16,
    CMCR_BF16,
    CMCR_F64,
    CMCR_I32,
    CMCR_I64,
    CMCR_U8 /* bytes (a gallery's paths); new dtypes go at the end: never renumber */
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

CMCR_API size_t cmcr_dtype_size(cmcr_dtype t);
CMCR_API const char *cmcr_dtype_name(cmcr_dtype t); /* "F32", "F16", "BF16", "F64", "I32", "I64", "U8" */
CMCR_API int64_t cmcr_tensor_numel(const cmcr_tensor *t);
/* Convert any numeric tensor to float32 (out holds numel floats). */
CMCR_API void cmcr_tensor_to_f32(const cmcr_tensor *t, float *out);

/* An ordered set of named tensors plus string metadata (a state_dict, a safetensors file). */
typedef struct cmcr_tensors cmcr_tensors;

CMCR_API cmcr_tensors *cmcr_tensors_new(void);
CMCR_API void cmcr_tensors_free(cmcr_tensors *ts);
/* Copy data (nbytes = numel * dtype size) into a new tensor named name. Names, in every
 * format, read or written, are 1 to 512 bytes of UTF-8 without control characters (C0, DEL,
 * C1); metadata keys too, and metadata values are UTF-8 whose only control characters are tab
 * and newline. Anything else is refused (CMCR_EINVAL here, CMCR_EFORMAT in a file). */
CMCR_API cmcr_status cmcr_tensors_add(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                                      const int64_t *shape, const void *data);
CMCR_API size_t cmcr_tensors_count(const cmcr_tensors *ts);
CMCR_API const cmcr_tensor *cmcr_tensors_at(const cmcr_tensors *ts, size_t i);
CMCR_API const cmcr_tensor *cmcr_tensors_find(const cmcr_tensors *ts, const char *name);
CMCR_API cmcr_status cmcr_tensors_set_meta(cmcr_tensors *ts, const char *key, const char *value);
CMCR_API const char *cmcr_tensors_get_meta(const cmcr_tensors *ts, const char *key);
CMCR_API size_t cmcr_tensors_meta_count(const cmcr_tensors *ts);
CMCR_API void cmcr_tensors_meta_at(const cmcr_tensors *ts, size_t i, const char **key, const char **value);

typedef enum cmcr_format {
    CMCR_FORMAT_AUTO = 0,   /* by content when reading, by file extension when writing */
    CMCR_FORMAT_NPY,
    CMCR_FORMAT_SAFETENSORS,
    CMCR_FORMAT_PT
} cmcr_format;

CMCR_API const char *cmcr_format_name(cmcr_format f);
/* Tell a file's format from its first bytes (npy magic, zip magic, else safetensors). */
CMCR_API cmcr_status cmcr_file_format(const char *path, cmcr_format *out);
/* Load every tensor of a .npy (one tensor named "array"), .safetensors or PyTorch .pt file.
 * Memory is bounded by the file, and checked before allocating: every data byte of a .npy or
 * .safetensors file belongs to exactly one tensor (bytes after the data are refused); the
 * tensors of a .pt file that view one storage share its bytes, and its storages together may
 * hold at most 1032 times the file's size (deflate's largest expansion). At most 16 GiB per
 * tensor and 64 GiB per file. */
CMCR_API cmcr_status cmcr_tensors_load(const char *path, cmcr_format fmt, cmcr_tensors **out);
/* The same from len bytes in memory (a file read or mapped by the caller, an HTTP body):
 * nothing is written to disk. fmt AUTO tells the format from the first bytes (and from name's
 * extension where they do not); name is what messages call the buffer (NULL: "(memory)"). */
CMCR_API cmcr_status cmcr_tensors_load_memory(const void *data, size_t len, cmcr_format fmt, const char *name,
                                                       cmcr_tensors **out);
/* Write atomically (temporary file, fsync, rename). A .npy file takes exactly one tensor. */
CMCR_API cmcr_status cmcr_tensors_save(const cmcr_tensors *ts, const char *path, cmcr_format fmt);

/* ---------------------------------------------------------------- embedding matrices */

/* A 2-D float32 matrix of embeddings, loaded from a .npy file (or a one-tensor
 * .safetensors/.pt file). F16/BF16/F64 are converted. Rows with NaN or Inf are refused. */
typedef struct cmcr_matrix {
    int64_t rows;
    int64_t cols;
    float *data;
} cmcr_matrix;

CMCR_API cmcr_status cmcr_matrix_load(const char *path, cmcr_matrix *out);
/* Rows [n*part/parts, n*(part+1)/parts) of an n-row .npy matrix (the shard that rank `part`
 * of `parts` owns in distributed runs), read without loading the rest. */
CMCR_API cmcr_status cmcr_matrix_load_shard(const char *path, int part, int parts, cmcr_matrix *out);
/* Write as float32 .npy, atomically. */
CMCR_API cmcr_status cmcr_matrix_save_npy(const char *path, const float *data, int64_t rows, int64_t cols);
CMCR_API void cmcr_matrix_free(cmcr_matrix *m);

/* Streaming .npy reader: float32 rows in blocks, whatever the stored float dtype. */
typedef struct cmcr_npy_reader cmcr_npy_reader;
CMCR_API cmcr_status cmcr_npy_reader_open(const char *path, cmcr_npy_reader **out);
CMCR_API int64_t cmcr_npy_reader_rows(const cmcr_npy_reader *r);
CMCR_API int64_t cmcr_npy_reader_cols(const cmcr_npy_reader *r);
/* Position the reader at row (0 <= row <= rows): the next read starts there. */
CMCR_API cmcr_status cmcr_npy_reader_seek(cmcr_npy_reader *r, int64_t row);
/* Read up to max_rows rows into out (max_rows * cols floats); *got is 0 at the end.
 * Rows containing NaN or Inf are refused with their row index. */
CMCR_API cmcr_status cmcr_npy_reader_read(cmcr_npy_reader *r, float *out, int64_t max_rows, int64_t *got);
CMCR_API void cmcr_npy_reader_close(cmcr_npy_reader *r);

/* Streaming float32 .npy writer; the file appears (atomically) only on commit. */
typedef struct cmcr_npy_writer cmcr_npy_writer;
CMCR_API cmcr_status cmcr_npy_writer_open(const char *path, int64_t cols, cmcr_npy_writer **out);
CMCR_API cmcr_status cmcr_npy_writer_write(cmcr_npy_writer *w, const float *rows, int64_t n);
CMCR_API cmcr_status cmcr_npy_writer_commit(cmcr_npy_writer *w); /* frees w */
CMCR_API void cmcr_npy_writer_abort(cmcr_npy_writer *w);         /* removes the partial file, frees w */

/* ---------------------------------------------------------------- projector model */

/* Which projector: side A (f_A, for MCR A's modalities) or side B (f_B). In the released
          * checkpoints side A is key prefix "Head_A" and side B "Head_B"; in ulip_clip.pt Head_A is
          * the CLIP side and Head_B the ULIP side, in clap_clip.pt Head_A is CLAP and Head_B CLIP. */
typedef enum cmcr_side { CMCR_SIDE_A = 0, CMCR_SIDE_B = 1 } cmcr_side;
/* What a row of a connected space came from (galleries, search, localisation). Stored as
 * these numbers in gallery files: never renumber. */
typedef enum cmcr_modality { CMCR_IMAGE = 0, CMCR_AUDIO = 1, CMCR_TEXT = 2, CMCR_POINTS = 3 } cmcr_modality;
#define CMCR_MODALITIES 4

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
CMCR_API cmcr_status cmcr_preset_shape(const char *preset, cmcr_head_shape *out);

typedef struct cmcr_model cmcr_model;

/* Load a model file: cmcr's own (.safetensors or .pt) or a released C-MCR checkpoint. The
 * architecture is read from the key names and shapes. */
CMCR_API cmcr_status cmcr_model_load(const char *path, cmcr_model **out);
/* The same from len bytes in memory (see cmcr_tensors_load_memory). */
CMCR_API cmcr_status cmcr_model_load_memory(const void *data, size_t len, const char *name, cmcr_model **out);
/* Build from tensors with the official key names; origin names the source in errors. */
CMCR_API cmcr_status cmcr_model_from_tensors(const cmcr_tensors *ts, const char *origin, cmcr_model **out);
/* New model with freshly initialised weights (PyTorch's default Linear init, BN identity). */
CMCR_API cmcr_status cmcr_model_new(const cmcr_head_shape *a, const cmcr_head_shape *b, uint64_t seed,
                                    cmcr_model **out);
CMCR_API void cmcr_model_free(cmcr_model *m);
/* State dict with official key names (Head_A.*, Head_B.*) and metadata (preset, ...). */
CMCR_API cmcr_status cmcr_model_to_tensors(const cmcr_model *m, cmcr_tensors **out);
/* Save as .pt or .safetensors (chosen by extension, or fmt), atomically. */
CMCR_API cmcr_status cmcr_model_save(const cmcr_model *m, const char *path, cmcr_format fmt);
CMCR_API cmcr_head_shape cmcr_model_shape(const cmcr_model *m, cmcr_side side);
/* "clap-clip", "ulip-clip" or "custom". */
CMCR_API const char *cmcr_model_preset(const cmcr_model *m);
CMCR_API cmcr_status cmcr_model_set_meta(cmcr_model *m, const char *key, const char *value);
CMCR_API const char *cmcr_model_get_meta(const cmcr_model *m, const char *key);

/* Inference: out[r] = normalize(head(normalize(in[r]))), BatchNorm from running statistics.
 * in is rows x in_dim, out is rows x out_dim. Thread-safe for concurrent calls. */
CMCR_API cmcr_status cmcr_model_project(const cmcr_model *m, cmcr_side side, const float *in, int64_t rows,
                                        float *out);
/* Project a whole .npy file into a float32 .npy, streaming blocks of `block` rows (memory
 * does not grow with the file). The output appears atomically, only when every row is
 * written. mpi_comm (MPI builds; NULL: one process): every rank of the communicator calls
 * this with the same arguments, projects its contiguous share of the rows and writes them
 * into the one output file (which must be on a file system every rank sees). progress
 * counts this rank's rows. */
CMCR_API cmcr_status cmcr_project_npy(const cmcr_model *m, cmcr_side side, const char *in_path, const char *out_path,
                                      int64_t block, const void *mpi_comm,
                                      int (*progress)(int64_t done, int64_t total, void *user), void *progress_user);

/* ---------------------------------------------------------------- training */

/* Every constant of the method and of the optimisation (docs/method.md). Each scalar setting is
 * one line of the table in src/mcr/train_settings.h, listed by cmcr_train_settings(). */
typedef struct cmcr_train_params {
    cmcr_head_shape shape_a, shape_b; /* projector shapes (in_dim must match the data) */
    /* method */
    double tau_mem;        /* memory aggregation temperature, default 0.01 */
    int64_t agg_top_k;     /* 0: full softmax over the memory; k: the k best rows */
    double sigma2;         /* semantic completion noise variance, default 0.004 */
    double tau;            /* InfoNCE temperature, default 0.01 */
    double lambda_intra;   /* weight of the intra-MCR loss, default 0.1 */
    int consistency;       /* 1: pseudo embeddings from the memories; 0: use s itself */
    int completion;        /* 1: Gaussian noise on all four inputs each step */
    int intra;             /* 1: intra-MCR alignment loss */
    int pseudo_pair;       /* 1: InfoNCE on the pseudo pair (x_A, y_B) too */
    int intra_squared;     /* 1: squared L2 distance in the intra loss */
    /* optimisation */
    int64_t batch;         /* default 4096 (capped at the number of overlap rows) */
    int64_t epochs;        /* default 20 */
    double lr;             /* peak learning rate, default 1e-3 */
    int64_t warmup_steps;  /* linear warm-up steps, default 0 */
    int cosine;            /* 1: cosine decay to min_lr after warm-up (default); 0: constant */
    double min_lr;         /* default 0 */
    double weight_decay;   /* default 0; applied to Linear weights only */
    int adamw;             /* 0: Adam (L2 added to the gradient), 1: AdamW (decoupled) */
    double beta1, beta2, adam_eps; /* 0.9, 0.999, 1e-8 */
    double bn_momentum;    /* 0.1 */
    int bf16;              /* 1: the step's matrix products, and the memory aggregation's (as
                            * cmcr_aggregate_params.bf16), take bfloat16 inputs (float32 sums and
                            * results; everything else float32; PyTorch's CPU autocast rounds the
                            * same inputs but keeps bf16 results). Needs oneDNN
                            * (cmcr_bf16_support). 0: float32 (default) */
    uint64_t seed;         /* default 1 */
    int threads;           /* 0: leave OpenBLAS/OpenMP defaults */
    /* checkpoints */
    const char *checkpoint_path; /* NULL: no checkpoints */
    int64_t checkpoint_every;    /* steps between checkpoints (0: only at the end), default 50 */
    const char *cache_dir;       /* aggregation cache (NULL: no cache) */
    /* Data-parallel training (MPI builds): a pointer to an MPI_Comm, NULL for one process.
     * Every rank passes the same parameters and data; each step's global batch of `batch`
     * rows is split into contiguous shards, one per rank, and the mathematics is that of one
     * process at the same batch (InfoNCE over the global batch, BatchNorm statistics over the
     * global batch, gradients summed). Rank 0 writes the checkpoints. Not stored in JSON. */
    const void *mpi_comm;
} cmcr_train_params;

CMCR_API cmcr_train_params cmcr_train_default_params(void);

/* The scalar settings of cmcr_train_params, described, so that a program (the cmcr command, a
 * binding) can offer, parse, check and show them without a copy of their defaults or ranges.
 * The fields not described are shape_a, shape_b, seed, checkpoint_path, cache_dir, mpi_comm. */
typedef enum cmcr_setting_type {
    CMCR_SETTING_I64 = 0, /* int64_t */
    CMCR_SETTING_INT,     /* int */
    CMCR_SETTING_DOUBLE,  /* double */
    CMCR_SETTING_BOOL     /* int, 0 or 1 */
} cmcr_setting_type;

typedef struct cmcr_setting {
    const char *name;       /* the field, and its key in the parameters' JSON */
    cmcr_setting_type type;
    size_t offset;          /* offsetof(cmcr_train_params, <name>) */
    double def;             /* the value cmcr_train_default_params gives it */
    double lo, hi;          /* valid range, inclusive (integers: whole; hi HUGE_VAL: unbounded);
                             * cmcr_trainer_new refuses values outside it, naming the setting */
    const char *flag;       /* command-line flag, without "--" */
    /* BOOL: the words the flag takes for 0 and for 1 ("--schedule constant|cosine"); both NULL:
     * the flag takes no value and sets the opposite of def ("--no-consistency" sets 0). */
    const char *words[2];
    int stored;             /* 1: in cmcr_train_params_to_json (a run's mathematics) */
    const char *help;       /* one line for --help */
} cmcr_setting;

/* The settings in order (stored ones first, as in the JSON); *count receives how many. */
CMCR_API const cmcr_setting *cmcr_train_settings(size_t *count);

/* Training data: the overlap modality embedded by both MCRs (row i = same item) and the
 * unpaired memories. The trainer copies what it needs, unless told to borrow. */
typedef struct cmcr_train_data {
    const float *overlap_a; /* n_overlap x dim_a */
    const float *overlap_b; /* n_overlap x dim_b */
    int64_t n_overlap, dim_a, dim_b;
    const float *memory_a;  /* n_memory_a x dim_a (may be NULL when consistency is off) */
    int64_t n_memory_a;
    const float *memory_b;  /* n_memory_b x dim_b */
    int64_t n_memory_b;
    const char *provenance; /* optional JSON describing the inputs (stored in the model) */
    /* Optional precomputed pseudo embeddings x_A and y_B (n_overlap rows each, e.g. from
     * cmcr_aggregate); when set they are used instead of aggregating the memories. */
    const float *pseudo_a, *pseudo_b;
    /* 0: the trainer copies the overlap (and pseudo) arrays, which the caller may then free.
     * 1: it reads them in place, normalising rows as it gathers each batch, and the caller
     * keeps them valid and unchanged until cmcr_trainer_free: no second copy of the inputs
     * in memory. Results are identical. The memories are never kept (only read while
     * cmcr_trainer_new aggregates them). */
    int borrow;
} cmcr_train_data;

typedef struct cmcr_train_stats {
    int64_t step, total_steps;   /* steps done (1-based after a step) and planned */
    int64_t epoch, epochs;       /* current epoch (1-based) */
    double loss, loss_native, loss_pseudo, loss_intra; /* last step */
    double lr;
    double samples_per_sec;      /* of the last step */
    double elapsed;              /* seconds since this run started */
} cmcr_train_stats;

/* Called after every step; return non-zero to stop (a checkpoint is written first). */
typedef int (*cmcr_train_callback)(const cmcr_train_stats *s, void *user);

typedef struct cmcr_trainer cmcr_trainer;

/* Validate inputs, compute (or load from cache) the pseudo embeddings, initialise the model. */
CMCR_API cmcr_status cmcr_trainer_new(const cmcr_train_params *p, const cmcr_train_data *d, cmcr_trainer **out);
CMCR_API void cmcr_trainer_free(cmcr_trainer *t);
/* Continue from a checkpoint written by a trainer with the same parameters and data. On
 * failure the trainer may hold part of the checkpoint's state: free it, do not run it. */
CMCR_API cmcr_status cmcr_trainer_resume(cmcr_trainer *t, const char *checkpoint);
/* Train until the planned steps are done or cb asks to stop (then CMCR_EINTERRUPTED after
 * writing a checkpoint). */
CMCR_API cmcr_status cmcr_trainer_run(cmcr_trainer *t, cmcr_train_callback cb, void *user);
CMCR_API cmcr_status cmcr_trainer_save_checkpoint(const cmcr_trainer *t, const char *path);
CMCR_API const cmcr_model *cmcr_trainer_model(const cmcr_trainer *t);
CMCR_API int64_t cmcr_trainer_step(const cmcr_trainer *t);
/* The parameters as JSON (malloc'd string), and back. */
CMCR_API char *cmcr_train_params_to_json(const cmcr_train_params *p);
CMCR_API cmcr_status cmcr_train_params_from_json(const char *json, cmcr_train_params *p);
/* Read a checkpoint's stored parameters and provenance JSON (malloc'd) without loading it. */
CMCR_API cmcr_status cmcr_checkpoint_info(const char *path, cmcr_train_params *p, char **provenance, int64_t *step);

/* ---------------------------------------------------------------- progress */

/* Called during long work with units done so far and the total; return non-zero to stop
 * (the function then returns CMCR_EINTERRUPTED). */
typedef int (*cmcr_progress_fn)(int64_t done, int64_t total, void *user);

/* 64-bit content hash of bytes (fast, non-cryptographic), chained through seed. */
CMCR_API uint64_t cmcr_hash_bytes(const void *data, size_t n, uint64_t seed);
/* A content fingerprint of a file or a folder (docs/search.md), read in 1 MiB chunks (memory
 * does not grow with the file): a regular file's bytes, chunk by chunk through
 * cmcr_hash_bytes (each chunk seeded with the previous one's hash), then its size; a folder
 * (a Hugging Face model folder): its entries in byte order of their names, recursively
 * (hidden ones, whose names start with '.', left out; symbolic links followed), each entry's
 * name then its fingerprint. A change detector, not a cryptographic hash: equal content
 * gives equal fingerprints whatever the names of the file or the times it carries, and an
 * accidental change is all but certain to change it, but it does not resist a forger. */
CMCR_API cmcr_status cmcr_fingerprint_path(const char *path, uint64_t *out);

/* ---------------------------------------------------------------- semantic consistency */

/* Memory aggregation (docs/method.md section 2): for each query q (an overlap embedding),
 *   out = normalize( sum_k softmax_k( q . m_k / tau_mem ) m_k )
 * over the rows m_k of a memory, with q and m_k L2-normalised first. Streams over the memory
 * in blocks with an online softmax; never holds the queries x memory score matrix. Extra
 * memory is bounded by the block sizes, independent of the memory's size. */
typedef struct cmcr_aggregate_params {
    double tau_mem;        /* softmax temperature, default 0.01 */
    int64_t top_k;         /* 0: full softmax over the memory; k > 0: only the k best rows */
    int64_t query_block;   /* queries per block, default 1024 */
    int64_t memory_block;  /* memory rows per block, default 4096 */
    cmcr_progress_fn progress; /* optional; units are queries x memory rows / 1e6 */
    void *progress_user;
    /* 1: both matrix products in bfloat16 (oneDNN builds, see cmcr_bf16_support); scores
     * carry about 3 significant digits, so results differ from float32 by about 1e-3
     * (docs/benchmarks.md measures the speed and the effect on training). 0 (default): float32. Applies to the full softmax; top-k stays float32
     * (bf16 rounding of near-tied scores would change which rows are selected). */
    int bf16;
    /* Sharded aggregation (MPI builds): a pointer to an MPI_Comm, NULL for one process. Each
     * rank passes all the queries and its own slice of the memory (at least one row); the
     * online-softmax states are combined across ranks, and every rank gets the whole result,
     * equal to one process's over the concatenated memory (top-k: the ranks' heaps are
     * merged). The cached variant does not cache in this mode. */
    const void *mpi_comm;
} cmcr_aggregate_params;

CMCR_API cmcr_aggregate_params cmcr_aggregate_default_params(void);
/* queries: nq x dim, memory: nm x dim, out: nq x dim. */
CMCR_API cmcr_status cmcr_aggregate(const float *queries, int64_t nq, const float *memory, int64_t nm, int64_t dim,
                                    const cmcr_aggregate_params *p, float *out);
/* The same, cached on disk in cache_dir (created if missing) under a name derived from the
 * content hash of queries and memory, their shapes, tau_mem and top_k. *hit tells whether
 * the result came from the cache. cache_dir NULL: no cache. */
CMCR_API cmcr_status cmcr_aggregate_cached(const char *cache_dir, const float *queries, int64_t nq, const float *memory,
                                           int64_t nm, int64_t dim, const cmcr_aggregate_params *p, float *out, int *hit);

/* ---------------------------------------------------------------- evaluation */

/* Retrieval of gallery rows for each query row by cosine similarity (dot product of the
 * given rows; pass normalised, finite rows; by row, wherever a fast product cannot decide a
 * rank within its error bound, a double sum rounded to float). Ground truth: by row (query i
 * matches gallery i; needs nq <= ng) when both label arrays are NULL, else (both given)
 * every gallery item with the query's label is relevant; queries without any relevant item
 * are skipped, and it is an error if none remains. Ranking: descending score, ties broken by
 * gallery index (lower index ranks first): rank(g) = 1 + #{h: s_h > s_g} + #{h < g: s_h ==
 * s_g}. Exact ranks from blocked GEMM and per-query counting: never holds the nq x ng matrix
 * (docs/evaluation.md). */
typedef struct cmcr_retrieval_metrics {
    int64_t queries;       /* queries evaluated (those with at least one relevant item) */
    double recall[3];      /* Recall@1, @5, @10: fraction of queries with a relevant item in the top k */
    double median_rank;    /* median over queries of the rank (1-based) of the first relevant item
                              (an even count takes the mean of the two middle values) */
    double mean_rank;
    double map;            /* mean over queries of AP = (1/|R|) sum_{r in R} #{relevant with rank
                              <= rank(r)} / rank(r) */
    int64_t scored_bf16;   /* (query, item) pairs scored in bf16 (0 unless asked for); the
                              others in float32 (bf16 gives way where it cannot decide 1 in 50) */
    int64_t rescored;      /* pairs whose product score (float32 or bf16) was within its error
                              bound of a decision and was re-scored from a double sum */
} cmcr_retrieval_metrics;

typedef struct cmcr_retrieval_params {
    /* 1: score in bfloat16 (see cmcr_bf16_support; speed in docs/benchmarks.md). Every
     * decision taken on a bf16 score is one its proven error bound allows; an item within
     * the bound of a decision is re-scored from a double sum, and where that is more than 1
     * in 50 of a block, the rest of the query block is scored in float32 (ground truth by
     * label with large relevant sets needs it). By row the metrics are
     * exactly float32's; by label float32's up to float32 rounding (docs/evaluation.md).
     * 0 (default): float32. */
    int bf16;
} cmcr_retrieval_params;

CMCR_API cmcr_status cmcr_eval_retrieval(const float *queries, int64_t nq, const float *gallery, int64_t ng, int64_t dim,
                                         const int64_t *query_labels, const int64_t *gallery_labels,
                                         cmcr_retrieval_metrics *out);
/* The same with parameters (NULL: the defaults, all zero). */
CMCR_API cmcr_status cmcr_eval_retrieval_ex(const float *queries, int64_t nq, const float *gallery, int64_t ng, int64_t dim,
                                            const int64_t *query_labels, const int64_t *gallery_labels,
                                            const cmcr_retrieval_params *params, cmcr_retrieval_metrics *out);

/* Zero-shot classification: each input is assigned the class whose embedding is most similar
 * (ties: lower class index first). labels must lie in [0, nclasses). top5 with fewer than 5
 * classes counts every input. per_class_acc (optional, nclasses entries) receives top-1
 * accuracy per class (NaN for classes with no inputs). */
typedef struct cmcr_zeroshot_metrics {
    int64_t inputs;
    double top1, top5;
} cmcr_zeroshot_metrics;

CMCR_API cmcr_status cmcr_eval_zeroshot(const float *inputs, int64_t n, const float *classes, int64_t nclasses, int64_t dim,
                                        const int64_t *labels, cmcr_zeroshot_metrics *out, double *per_class_acc);

/* Load integer labels (.npy int32/int64, 1-D, or a one-column 2-D) as int64; floats are
 * refused. *labels is malloc'd: release it with free(). */
CMCR_API cmcr_status cmcr_labels_load(const char *path, int64_t **labels, int64_t *n);

/* ---------------------------------------------------------------- the synthetic two-MCR world */

/* A complete C-MCR problem with ground truth (docs/synthetic-world.md). Modalities: MCR A
 * covers (X, S), MCR B covers (S, Y); S is the overlap modality. */
typedef struct cmcr_synth_params {
    uint64_t seed;             /* default 1 */
    int64_t dim_a, dim_b;      /* embedding widths of A and B (default 512, 512) */
    int64_t latent;            /* dimension of the shared latent semantics (default 64) */
    int64_t concepts;          /* number of concepts (default 200) */
    int64_t clusters;          /* concept clusters of confusable neighbours (default 20) */
    int64_t n_overlap;         /* overlap items (S embedded by both MCRs) (default 20000) */
    int64_t n_memory_a;        /* unpaired X memory in A (default 20000) */
    int64_t n_memory_b;        /* unpaired Y memory in B (default 20000) */
    int64_t n_test;            /* held-out paired (X, Y) test items (default 2000) */
    int64_t n_oracle;          /* paired (X, Y) items for the paired-oracle baseline (default 20000) */
    /* gap, mcr_noise, instance_noise, distortion multiply calibrated levels: 1 = realistic, 0 = off
       (docs/synthetic-world.md). */
    double gap;                /* each modality's cone offset (default 1.0, tuned to real CLIP:
                                  matching pair cos ~0.3) */
    double mcr_noise;          /* misalignment noise inside each MCR (default 1.0 = realistic) */
    double instance_noise;     /* within-concept variation (default 1.0) */
    double missing_frac;       /* fraction of concepts absent from each memory (default 0.1, at most 0.5;
                                  A and B miss disjoint sets) */
    double distortion;         /* modality-specific anisotropy: each modality's own linear distortion
                                  and nuisance subspace (default 1.0; 0 = the gap is a pure shift) */
    double shift;              /* concept-proportion shift: std of the log concept weights drawn for
                                  each set (default 1.0; 0 = every set uniform over its concepts) */
    int64_t n_diag;            /* diagnostic items for measuring the gap (default 1000) */
} cmcr_synth_params;

typedef struct cmcr_world {
    cmcr_synth_params params;
    cmcr_matrix overlap_a, overlap_b;  /* S in A and S in B, row i = same item */
    cmcr_matrix memory_a, memory_b;    /* X in A, Y in B; unpaired */
    cmcr_matrix test_x, test_y;        /* held-out X in A and Y in B, row i = same item */
    cmcr_matrix oracle_x, oracle_y;    /* paired X in A and Y in B, for the oracle baseline only */
    int64_t *test_labels;              /* concept of each test row (n_test) */
    double gap_cos_pair_a, gap_cos_same_a; /* measured in A: mean cos of matching (X,S) pairs of one
                                              item vs two instances of one concept, same modality */
    double gap_cos_pair_b, gap_cos_same_b;
    double gap_cos_cross_a, gap_cos_cross_b; /* mean cos of non-matching cross-modal pairs */
    double ab_cos;                     /* mean cos of S in A vs S in B, same item: ~0 (unrelated
                                          spaces); NaN when dim_a != dim_b */
    /* Ground truth for tests and analysis only (training must not use it): */
    int64_t *overlap_labels, *memory_a_labels, *memory_b_labels, *oracle_labels; /* concept per row */
    int64_t n_missing;                 /* concepts absent from each memory */
    int64_t *missing_a, *missing_b;    /* their ids (n_missing each, disjoint) */
} cmcr_world;

CMCR_API cmcr_synth_params cmcr_synth_default_params(void);
CMCR_API cmcr_status cmcr_synth_generate(const cmcr_synth_params *p, cmcr_world *out);
CMCR_API void cmcr_world_free(cmcr_world *w);
/* Write every matrix as .npy (float32), the concept labels as int64 .npy, and world.json
 * (parameters, sizes, measured gap, what each file holds) into dir, created with its parents
 * if missing. Each file is written atomically. Documented in docs/synthetic-world.md. */
CMCR_API cmcr_status cmcr_world_save(const cmcr_world *w, const char *dir);

/* ---------------------------------------------------------------- runtime */

/* Name of the BLAS kernel set in use (OpenBLAS core name) and its thread count. */
CMCR_API const char *cmcr_blas_core(void);
CMCR_API int cmcr_blas_threads(void);
/* Debian 12's OpenBLAS 0.3.21 does not recognise some recent CPUs and falls back to slow
 * generic kernels (e.g. "Prescott"). It reads OPENBLAS_CORETYPE only when it
 * loads, so a program must set it and re-execute itself. This returns the kernel set to ask
 * for ("SkylakeX" with AVX-512, "Haswell" with AVX2+FMA), or NULL when the current one is
 * fine or the user already set OPENBLAS_CORETYPE. current: the kernel set to judge (NULL: the
 * one OpenBLAS picked). */
CMCR_API const char *cmcr_blas_better_core(const char *current);

/* What the library's float32 matrix products run on: "oneDNN" (builds with oneDNN) or
 * "OpenBLAS". The environment
 * variable CMCR_GEMM=openblas, read at the first product, chooses OpenBLAS in a oneDNN build. */
CMCR_API const char *cmcr_gemm_backend(void);
/* The kernels behind it, for reports: with oneDNN the implementations it picks for float32
 * and bfloat16 products on this CPU (e.g. "float32 brg:avx512_core, bfloat16
 * brg:avx512_core_bf16"; AMX shows as avx512_core_amx), else OpenBLAS's kernel set. */
CMCR_API const char *cmcr_gemm_kernels(void);

/* 1 when this library was built with MPI (then the mpi_comm fields are honoured). */
CMCR_API int cmcr_mpi_support(void);
/* 1 when bfloat16 products can run: built with oneDNN, and oneDNN has them for this CPU
 * (oneDNN 2.x needs AVX-512). Asking for them otherwise fails with the reason. */
CMCR_API int cmcr_bf16_support(void);

/* Small system helpers, so that programs need nothing from the library's internals. */
/* mkdir -p: create path and its missing parents (mode 0777 less the umask). CMCR_OK when it
 * exists already as a directory; CMCR_EIO (with the name and the reason) when it, or a
 * parent, cannot be created or is not a directory; CMCR_EINVAL for an empty name. */
CMCR_API cmcr_status cmcr_mkdir_p(const char *path);
/* Seconds on the monotonic clock (CLOCK_MONOTONIC) from an arbitrary start: for durations. */
CMCR_API double cmcr_now_seconds(void);

/* ---------------------------------------------------------------- encoders: CLIP */

/* CLIP's image and text towers (OpenAI's ViT CLIP, e.g. Hugging Face's
 * openai/clip-vit-base-patch32, the CLIP side of both released C-MCR connections): from
 * JPEG/PNG files and prompts to the embeddings PyTorch computes (docs/encoders.md). A loaded
 * model is read-only: several threads may embed with one model at once. */
typedef struct cmcr_clip cmcr_clip;
typedef struct cmcr_clip_info {
    int32_t dim;        /* embedding width (512 for ViT-B/32) */
    int32_t image_size; /* input side in pixels (224) */
    int32_t patches;    /* patch tokens per image (49 for ViT-B/32) */
    int32_t context;    /* token ids per prompt (77) */
    int has_tokenizer;  /* 1: prompts can be embedded */
    const char *layout; /* weights as found: "hf" (Hugging Face) or "openai" (OpenAI/open_clip) */
    const char *activation, *text_activation; /* the towers' MLP activation: "quick_gelu" or "gelu" */
} cmcr_clip_info;
typedef struct cmcr_clip_options {
    /* A vocab.json (merges.txt beside it), a folder holding both, or OpenAI's
     * bpe_simple_vocab_16e6.txt.gz: it must load and match the model's vocabulary. NULL looks
     * beside the model for either; without one, or when the one found there cannot be used,
     * the model embeds images only and prompts are refused with the reason. */
    const char *tokenizer;
    /* "quick_gelu" (OpenAI's models) or "gelu" (open_clip's LAION models) for both towers;
     * NULL takes each tower's from the Hugging Face config.json beside the weights (an unknown
     * one is refused), else quick_gelu: nothing in a state dict tells them apart. */
    const char *activation;
    /* 1: float32 products only: no bfloat16 copy of the weights is kept (it costs half the
     * float32 weights' memory, 300 MB for ViT-B/32), and bf16 embeds are refused. 0 (default):
     * the copy is made where bf16 products can run (cmcr_bf16_support). */
    int float32_only;
} cmcr_clip_options;
CMCR_API cmcr_clip_options cmcr_clip_default_options(void); /* NULL, NULL, 0 */
/* Load a model: a Hugging Face folder (model.safetensors or pytorch_model.bin, with
 * config.json, vocab.json and merges.txt) or one weights file (.safetensors, .bin, .pt) in
 * either key layout. A .safetensors file is mapped, not copied. opts may be NULL (defaults). */
CMCR_API cmcr_status cmcr_clip_load(const char *model, const cmcr_clip_options *opts, cmcr_clip **out);
CMCR_API void cmcr_clip_free(cmcr_clip *c);
CMCR_API cmcr_clip_info cmcr_clip_get_info(const cmcr_clip *c);
/* Decode one JPEG or PNG and preprocess it as Hugging Face's CLIP image processor (Pillow's
 * bicubic to 224 on the shortest side, centre crop, mean/std): pixels gets 3 x S x S floats
 * (S = image_size). */
CMCR_API cmcr_status cmcr_clip_pixels(const cmcr_clip *c, const char *path, float *pixels);
CMCR_API cmcr_status cmcr_clip_pixels_memory(const cmcr_clip *c, const void *data, size_t len, const char *name,
                                             float *pixels);
/* The same for n files at once, in parallel, into pixels (n x 3 x S x S). ok (n bytes) tells
 * which files were read (1) and which failed (0, their pixels zero). Returns CMCR_OK when
 * all were read, else the first failure's status and message (cmcr_clip_pixels on one file
 * gives any other's message). */
CMCR_API cmcr_status cmcr_clip_pixels_files(const cmcr_clip *c, const char *const *paths, int64_t n,
                                            float *pixels, unsigned char *ok);
/* Embed n preprocessed images: emb (n x dim) from the class token; patches (NULL, or
 * n x patches x dim) from each patch token through the same final norm and projection, for
 * localisation. normalize: each row of emb and each patch vector L2-normalised (as C-MCR
 * uses them). bf16: products in bfloat16 (cmcr_bf16_support), float32 otherwise. */
CMCR_API cmcr_status cmcr_clip_embed_pixels(const cmcr_clip *c, const float *pixels, int64_t n, int bf16,
                                            int normalize, float *emb, float *patches);
/* CLIP's tokenizer (OpenAI's clip.tokenize with truncation): context ids for len bytes of
 * UTF-8 text. name names the text in errors (e.g. "prompts.txt:3"). */
CMCR_API cmcr_status cmcr_clip_tokenize(const cmcr_clip *c, const char *text, size_t len, const char *name,
                                        int32_t *ids);
/* Embed n token-id rows (n x context) with the text tower: emb n x dim. */
CMCR_API cmcr_status cmcr_clip_embed_ids(const cmcr_clip *c, const int32_t *ids, int64_t n, int bf16, int normalize,
                                         float *emb);

/* ---------------------------------------------------------------- encoders: which one */

/* What the checkpoint at model holds, told by a few key names without reading its tensors:
 * *kind = "clip" (a Hugging Face folder, or CLIP weights in either layout), "clap"
 * (LAION-CLAP) or "pointbert" (ULIP's PointBERT checkpoint). A C-MCR connection, a .npy or an unknown checkpoint is refused with a message
 * that says what it is. */
CMCR_API cmcr_status cmcr_encoder_kind(const char *model, const char **kind);

/* ---------------------------------------------------------------- encoders: CLAP */

/* LAION-CLAP (630k-fusion-best.pt and its kin: HTSAT-tiny audio, RoBERTa-base text; the CLAP
 * side of clap_clip.pt): from sound files and prompts to the embeddings PyTorch computes
 * (docs/encoders.md, docs/audio.md). A loaded model is read-only: several threads may embed
 * with one model at once. */
typedef struct cmcr_clap cmcr_clap;
typedef struct cmcr_clap_info {
    int32_t dim;          /* embedding width (512) */
    int32_t context;      /* token ids per prompt (77) */
    int has_tokenizer;    /* 1: prompts can be embedded */
    int32_t sample_rate;  /* 48000 */
    int32_t clip_samples; /* 480000: 10 s; longer clips take the fusion path */
    int64_t input_floats; /* floats of one clip's model input (4 x 1001 x 64) */
    int32_t audio_width, audio_stages, text_width, text_layers;
} cmcr_clap_info;
typedef struct cmcr_clap_options {
    /* RoBERTa's vocab.json (merges.txt beside it) or a folder holding both: it must match the
     * model's vocabulary. NULL looks beside the model; without one the model embeds audio
     * only and prompts are refused with the reason. */
    const char *tokenizer;
    /* 1: float32 products only (no bfloat16 copy of the weights; bf16 embeds refused). */
    int float32_only;
    /* Clips longer than 10 s: the three chunk starts of the fusion input are drawn from this
     * seed (the reference draws them at random; docs/audio.md). Default 0. */
    uint64_t seed;
} cmcr_clap_options;
CMCR_API cmcr_clap_options cmcr_clap_default_options(void); /* NULL, 0, 0 */
/* Load a CLAP checkpoint: a .pt (a training checkpoint with "state_dict" and "module." keys,
 * or a bare state dict) or a .safetensors file. opts may be NULL (defaults). */
CMCR_API cmcr_status cmcr_clap_load(const char *model, const cmcr_clap_options *opts, cmcr_clap **out);
CMCR_API void cmcr_clap_free(cmcr_clap *c);
CMCR_API cmcr_clap_info cmcr_clap_get_info(const cmcr_clap *c);
/* Decode one sound file (WAV, FLAC, OGG, MP3: anything libsndfile reads), mix to mono,
 * resample to 48 kHz, and make the model's input (input_floats floats) as LAION-CLAP does;
 * *longer tells whether it took the fusion path (more than 10 s). */
CMCR_API cmcr_status cmcr_clap_audio(const cmcr_clap *c, const char *path, float *input, unsigned char *longer);
/* The same from len bytes in memory (an HTTP body); name names it in messages (NULL:
 * "(memory)"). */
CMCR_API cmcr_status cmcr_clap_audio_memory(const cmcr_clap *c, const void *data, size_t len, const char *name,
                                            float *input, unsigned char *longer);
/* The same for n files at once, in parallel: input n x input_floats, longer and ok n bytes
 * each (ok[i] = 0: file i failed, its input zero). CMCR_OK when all were read, else the first
 * failure's status and message (read again after the parallel pass: libsndfile keeps the
 * reason a file could not be opened in one process-wide slot, so two threads failing at once
 * could swap reasons). The log-mel plans its FFT once, on the first call; a program that
 * also plans FFTW transforms in other threads at that moment must serialise them (FFTW's
 * planner is not thread-safe). */
CMCR_API cmcr_status cmcr_clap_audio_files(const cmcr_clap *c, const char *const *paths, int64_t n, float *input,
                                           unsigned char *longer, unsigned char *ok);
/* Embed n clips' inputs: emb n x dim; normalize: rows L2-normalised (as C-MCR uses them). */
CMCR_API cmcr_status cmcr_clap_embed_audio(const cmcr_clap *c, const float *input, const unsigned char *longer,
                                           int64_t n, int bf16, int normalize, float *emb);
/* RoBERTa's tokenizer as CLAP calls it (padding to 77, truncation): context ids for len bytes
 * of UTF-8 text; name names the text in errors. */
CMCR_API cmcr_status cmcr_clap_tokenize(const cmcr_clap *c, const char *text, size_t len, const char *name,
                                        int32_t *ids);
/* Embed n token-id rows (n x context) with the text tower: emb n x dim. */
CMCR_API cmcr_status cmcr_clap_embed_ids(const cmcr_clap *c, const int32_t *ids, int64_t n, int bf16, int normalize,
                                         float *emb);

/* ---------------------------------------------------------------- encoders: PointBERT */

/* ULIP-2's PointBERT point encoder with its pc_projection (pointbert_ULIP-2.pt; the ULIP side
 * of ulip_clip.pt): from point-cloud files to the embeddings PyTorch computes
 * (docs/encoders.md, docs/points.md). A cloud is grouped (farthest-point sampling of 512
 * centres, their 32 nearest neighbours) into a fixed-size input, then embedded. A loaded model
 * is read-only: several threads may embed with one model at once. */
typedef struct cmcr_pointbert cmcr_pointbert;
typedef struct cmcr_pointbert_info {
    int32_t dim;             /* embedding width (512) */
    int32_t width;           /* columns per point the model takes: 3 (xyz) or 6 (xyz + rgb) */
    int32_t groups, group_size; /* 512 centres, 32 neighbours each */
    int64_t input_floats;    /* floats of one cloud's grouped input */
    int32_t trans_dim, depth, heads, encoder_dims;
} cmcr_pointbert_info;
typedef struct cmcr_pointbert_options {
    /* 1: float32 products only (no bfloat16 copy of the weights; bf16 embeds refused). */
    int float32_only;
    /* Where farthest-point sampling starts: point 0 when 0 (the default); otherwise a point drawn
     * from the seed and the cloud's size (the reference starts at a random point; docs/points.md). */
    uint64_t seed;
    /* 1: a cloud with more than 3 columns (xyz + normals, as ModelNet40's text files) gives its
     * first three to a model that takes xyz; 0: refused. */
    int xyz_only;
} cmcr_pointbert_options;
CMCR_API cmcr_pointbert_options cmcr_pointbert_default_options(void); /* 0, 0, 0 */
/* Load ULIP's checkpoint: a .pt (a training checkpoint with "state_dict" and "module." keys, as
 * pointbert_ULIP-2.pt, of which only point_encoder.* and pc_projection are read; or a bare state
 * dict whose keys have no "module." prefix) or a .safetensors file (the same keys). opts may be
 * NULL (defaults). */
CMCR_API cmcr_status cmcr_pointbert_load(const char *model, const cmcr_pointbert_options *opts,
                                         cmcr_pointbert **out);
CMCR_API void cmcr_pointbert_free(cmcr_pointbert *p);
CMCR_API cmcr_pointbert_info cmcr_pointbert_get_info(const cmcr_pointbert *p);
/* Group a cloud in memory (n points x width floats, row-major) into input (input_floats);
 * name names it in errors. Refused: non-finite values, fewer than 32 or more than 10,000,000
 * points, all points equal, a width the model does not take (see xyz_only). */
CMCR_API cmcr_status cmcr_pointbert_group(const cmcr_pointbert *p, const float *points, int64_t n, int width,
                                          const char *name, float *input);
/* Read a point-cloud file (.npy N x 3 / N x 6, the official demo's pickled-dict .npy, .ply,
 * text) and group it into input (docs/points.md). */
CMCR_API cmcr_status cmcr_pointbert_cloud(const cmcr_pointbert *p, const char *path, float *input);
/* The same from len bytes in memory (any of the file formats); name names it in messages
 * (NULL: "(memory)"). */
CMCR_API cmcr_status cmcr_pointbert_cloud_memory(const cmcr_pointbert *p, const void *data, size_t len,
                                                 const char *name, float *input);
/* The same for n files at once, in parallel: input n x input_floats, ok n bytes (ok[i] = 0:
 * file i failed, its input zero). CMCR_OK when all were read, else the first failure's. */
CMCR_API cmcr_status cmcr_pointbert_clouds(const cmcr_pointbert *p, const char *const *paths, int64_t n,
                                           float *input, unsigned char *ok);
/* Embed n grouped clouds: emb n x dim; normalize: rows L2-normalised (as C-MCR uses them). */
CMCR_API cmcr_status cmcr_pointbert_embed(const cmcr_pointbert *p, const float *input, int64_t n, int bf16,
                                          int normalize, float *emb);

/* ---------------------------------------------------------------- search */

/* Exact top-k by dot product (rows are expected L2-normalised, so scores are cosines): for
 * each of nq queries (nq x dim), the k gallery rows (ng x dim) with the highest scores, best
 * first, equal scores by lower row index, into index and score (nq x k each). keep: NULL, or
 * ng flags, non-zero for the rows that may be returned. When fewer than k rows are eligible
 * the rest of a query's results are index -1 and score -INFINITY. The gallery is read in
 * blocks through the library's matrix product, the blocks shared among OpenMP threads, each
 * query keeping its k best in a heap; memory does not grow with ng. Refused: a query with NaN
 * or Inf (naming the row), k < 1, dim < 1. A gallery row giving a NaN score is never returned
 * (galleries are checked finite when loaded). */
CMCR_API cmcr_status cmcr_topk(const float *queries, int64_t nq, const float *gallery, int64_t ng, int64_t dim,
                               const unsigned char *keep, int64_t k, int64_t *index, float *score);

/* A gallery: the projected, normalised embeddings of a collection of files, one row per file,
 * with what `cmcr index` needs to update it (each file's content fingerprint, size and
 * modification time) and to check it against the model and encoders that made it (their
 * fingerprints in the metadata). One .safetensors file (docs/search.md): rows sorted by path
 * (byte order), paths absolute and unique. A loaded gallery is read-only: several threads may
 * search it at once. */
typedef struct cmcr_gallery cmcr_gallery;
/* One row, as read (cmcr_gallery_get_row: pointers into the gallery) or to be written
 * (cmcr_gallery_writer_add: copied). */
typedef struct cmcr_gallery_row {
    const char *path;       /* absolute */
    cmcr_modality modality;
    uint64_t content_hash;  /* cmcr_fingerprint_path of the file */
    int64_t size;           /* the file's size in bytes and modification time (ns since the */
    int64_t mtime_ns;       /* epoch) when it was read: unchanged, the file is not read again */
    const float *embedding; /* dim floats */
} cmcr_gallery_row;
/* Load a gallery, mapped (as other .safetensors files), and check it whole: the format and
 * version, every tensor's dtype and shape, the paths (rows of them, each absolute, in
 * strictly increasing byte order), the modalities, sizes and finite embeddings. Every
 * refusal is one line naming the file. */
CMCR_API cmcr_status cmcr_gallery_load(const char *path, cmcr_gallery **out);
/* The same from len bytes in memory (copied); name is what messages call them. */
CMCR_API cmcr_status cmcr_gallery_load_memory(const void *data, size_t len, const char *name, cmcr_gallery **out);
CMCR_API void cmcr_gallery_free(cmcr_gallery *g);
CMCR_API int64_t cmcr_gallery_rows(const cmcr_gallery *g);
CMCR_API int64_t cmcr_gallery_dim(const cmcr_gallery *g);
CMCR_API const float *cmcr_gallery_embeddings(const cmcr_gallery *g); /* rows x dim */
CMCR_API const char *cmcr_gallery_path(const cmcr_gallery *g, int64_t row); /* NULL when row is out of range */
CMCR_API cmcr_modality cmcr_gallery_modality(const cmcr_gallery *g, int64_t row); /* row must be in range */
CMCR_API const char *cmcr_gallery_meta(const cmcr_gallery *g, const char *key); /* NULL if absent */
/* Row `row` into *out (CMCR_EINVAL when out of range). */
CMCR_API cmcr_status cmcr_gallery_get_row(const cmcr_gallery *g, int64_t row, cmcr_gallery_row *out);
/* The row of path (exactly as stored), or -1: a binary search. */
CMCR_API int64_t cmcr_gallery_find(const cmcr_gallery *g, const char *path);
/* cmcr_topk over the gallery's rows, those of the modalities in the bit mask (1 << modality;
 * 0: all) only. Refused also: dim other than the gallery's. */
CMCR_API cmcr_status cmcr_gallery_topk(const cmcr_gallery *g, const float *queries, int64_t nq, int64_t dim,
                                       unsigned modalities, int64_t k, int64_t *index, float *score);

/* Building a gallery: rows kept from a loaded one (by reference: that gallery must outlive
 * the writer's last save) and new rows (copied), in any order; each save writes them all,
 * sorted by path, atomically (a temporary file, fsync, rename), so that a save may replace
 * the very file the kept rows come from (its mapping stays valid). Save as often as wanted:
 * rows added since stay, and the next save writes them too. The writer sets the metadata
 * "format", "version", "dim" and "rows"; the caller adds its own (the model and encoder
 * fingerprints, times: docs/search.md). Memory: the new rows' embeddings and paths, and a few
 * words per kept row. */
typedef struct cmcr_gallery_writer cmcr_gallery_writer;
CMCR_API cmcr_status cmcr_gallery_writer_new(int64_t dim, cmcr_gallery_writer **out);
CMCR_API void cmcr_gallery_writer_free(cmcr_gallery_writer *w);
/* Keys "format", "version", "dim" and "rows" are the writer's own and refused here. */
CMCR_API cmcr_status cmcr_gallery_writer_set_meta(cmcr_gallery_writer *w, const char *key, const char *value);
CMCR_API cmcr_status cmcr_gallery_writer_keep(cmcr_gallery_writer *w, const cmcr_gallery *g, int64_t row);
/* Refused: a path that is empty or not absolute, a modality out of range, a negative size, an
 * embedding with NaN or Inf, a gallery of another width (keep). Two rows with one path are
 * refused by the save, naming the path. */
CMCR_API cmcr_status cmcr_gallery_writer_add(cmcr_gallery_writer *w, const cmcr_gallery_row *r);
CMCR_API int64_t cmcr_gallery_writer_rows(const cmcr_gallery_writer *w);
CMCR_API cmcr_status cmcr_gallery_writer_save(cmcr_gallery_writer *w, const char *path);

/* ---------------------------------------------------------------- localisation */

/* Zero-shot sound-source localisation (docs/localisation.md): a query in the connected space
 * (a sound's or a prompt's embedding) against the patch embeddings of an image (CLIP's 7 x 7
 * for ViT-B/32, each projected through the same connection) gives a grid of cosines, the
 * map; upsampled to the image it is a heatmap, and the region above a threshold a box. */

/* A box of pixels: columns x0 .. x1 - 1 and rows y0 .. y1 - 1 (x0, y0 inclusive, x1, y1
 * exclusive); empty when x1 <= x0 or y1 <= y0. */
typedef struct cmcr_box {
    int32_t x0, y0, x1, y1;
} cmcr_box;

/* map[i] = dot(query, patches[i]) for the gh x gw patch rows (the grid row-major, each row
 * dim wide): with normalised rows, the cosine of the query with each patch. */
CMCR_API void cmcr_localise_map(const float *query, const float *patches, int64_t gh, int64_t gw, int64_t dim,
                                float *map);
/* PyTorch's F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False) of one
 * ih x iw map into out (oh x ow): half-pixel centres, a source position below 0 taken as 0,
 * the last row and column repeated past the far edge; up or down (no antialiasing, as
 * PyTorch). Float32 as PyTorch, within 1e-6 of it (tests/test_localise.c). */
CMCR_API cmcr_status cmcr_upsample_bilinear(const float *in, int64_t ih, int64_t iw, int64_t oh, int64_t ow,
                                            float *out);
/* Min-max normalisation in place: (x - min) / (max - min), the least value 0 and the largest
 * 1. A constant map (max == min, or n == 1) becomes all 0: no part of it stands out. */
CMCR_API void cmcr_normalize_minmax(float *x, int64_t n);
/* The box of the largest 4-connected region of the h x w map whose values are >= threshold
 * (pass a normalised map and a threshold in [0, 1]). Ties: the region with the highest value,
 * then the one whose first pixel in raster order comes first. *found is 1 with *box set, or
 * 0 when no value reaches the threshold (*box all 0). */
CMCR_API cmcr_status cmcr_localise_box(const float *map, int32_t h, int32_t w, float threshold, cmcr_box *box,
                                       int *found);

/* The size of a JPEG or PNG image as cmcr_clip_pixels reads it (decoded, so an image that
 * cannot be read is refused here with the same message). */
CMCR_API cmcr_status cmcr_image_size(const char *path, int32_t *width, int32_t *height);
/* CLIP's image front end (cmcr_clip_pixels: the shortest side resized to size, then the
 * centre size x size) seen from a width x height image: the crop covers a window of it, and
 * *window gets the image pixels whose centres lie in that window. */
CMCR_API cmcr_status cmcr_crop_window(int32_t width, int32_t height, int32_t size, cmcr_box *window);
/* A box given in the image's pixel coordinates (edges[] = left, top, right, bottom; any real
 * numbers within 0..width and 0..height, left < right, top < bottom) in the size x size crop
 * frame: each edge resized and shifted as the crop moves the image, truncated to an integer
 * (as LVS's int()) and clipped to 0..size. The result may be empty: a box outside the crop. */
CMCR_API cmcr_status cmcr_crop_box(int32_t width, int32_t height, int32_t size, const double edges[4], cmcr_box *out);

/* The localisation benchmarks' metric (LVS, Chen et al. 2021, "Localizing Visual Sounds the
 * Hard Way", its test.py and utils.Evaluator; VGG-SS, Flickr-SoundNet): the h x w heatmap
 * (224 x 224 in the benchmarks) min-max normalised, binarised at its median (pixels above
 * sorted(pred)[h * w / 2] are 1, and those at the maximum), against the ground-truth map that is 1
 * inside any of the boxes (clipped to the frame): cIoU = |pred and gt| / (|gt| + |pred and
 * not gt|). A constant heatmap predicts nothing (cIoU 0). Boxes with no pixel in the frame
 * are refused (CMCR_EINVAL): there is nothing to find. docs/localisation.md has the details. */
CMCR_API cmcr_status cmcr_localisation_ciou(const float *heatmap, int32_t h, int32_t w, const cmcr_box *boxes,
                                            int64_t nboxes, double *ciou);
/* Over n samples' cIoU: cIoU@0.5, the fraction with cIoU >= 0.5; success[i], the fraction
 * with cIoU >= 0.05 i (i = 0..20); auc, the trapezoid area under success over those
 * thresholds (sklearn.metrics.auc, as LVS). */
typedef struct cmcr_localisation_metrics {
    int64_t samples;
    double ciou50;
    double auc;
    double success[21];
} cmcr_localisation_metrics;
CMCR_API cmcr_status cmcr_localisation_summary(const double *ciou, int64_t n, cmcr_localisation_metrics *out);

/* The picture of a localisation: the image with the heatmap over the crop window, and the box. */
typedef struct cmcr_overlay_params {
    double threshold; /* the box's region: normalised heat >= threshold, in [0, 1]; default 0.5 */
    double alpha;     /* weight of the heatmap's colour over the image, in [0, 1]; default 0.5 */
    int32_t crop;     /* the side of the encoder's square input (cmcr_clip_info.image_size); 224 */
    int32_t max_side; /* 0 (default): the PNG has the image's size; else it is scaled down (Pillow's
                       * bicubic) so that its longer side is at most max_side */
} cmcr_overlay_params;
CMCR_API cmcr_overlay_params cmcr_overlay_default_params(void); /* 0.5, 0.5, 224, 0 */
typedef struct cmcr_overlay {
    unsigned char *png;            /* the PNG file's bytes (malloc'd) */
    size_t png_len;
    int32_t width, height;         /* the image's */
    int32_t png_width, png_height; /* the PNG's */
    cmcr_box window;               /* the crop window (cmcr_crop_window), image pixels */
    cmcr_box box;                  /* the box, image pixels; all 0 when has_box is 0 */
    int has_box;
} cmcr_overlay;
/* Decode the JPEG or PNG image (len bytes; name names it in messages), upsample the gh x gw
 * map bilinearly to its crop window, normalise it (cmcr_normalize_minmax), colour it (jet) and
 * blend it over the window's pixels (the rest of the image is left as it is), take the box
 * of the region >= threshold there (cmcr_localise_box, in image pixels), draw its outline, and
 * encode a PNG. A window of more than 2^26 pixels (8192 x 8192) is refused (CMCR_ENOMEM).
 * Re-entrant: no state outside the call (servers call it from several threads). */
CMCR_API cmcr_status cmcr_localise_overlay(const void *image, size_t len, const char *name, const float *map,
                                           int32_t gh, int32_t gw, const cmcr_overlay_params *p, cmcr_overlay *out);
CMCR_API void cmcr_overlay_free(cmcr_overlay *o); /* frees png and zeroes o (NULL is fine) */

/* ---------------------------------------------------------------- small numeric helpers */

/* L2-normalise each row in place (rows of zero norm stay zero, as torch's F.normalize). */
CMCR_API void cmcr_normalize_rows(float *x, int64_t rows, int64_t cols);
/* out[i][j] = dot(a[i], b[j]) for a (na x cols) and b (nb x cols); out is na x nb. */
CMCR_API void cmcr_dot_rows(const float *a, int64_t na, const float *b, int64_t nb, int64_t cols, float *out);
/* Index of the first row with a NaN or Inf, or -1. */
CMCR_API int64_t cmcr_find_nonfinite_row(const float *x, int64_t rows, int64_t cols);
/* Replace each row of x (rows x cols) by softmax(scale * row), computed in double (the largest
 * term subtracted first, so no overflow) and rounded to float: the official C-MCR demo's view of
 * similarities (scale 10), as `cmcr similarity --softmax` prints and writes it. */
CMCR_API void cmcr_softmax_rows(float *x, int64_t rows, int64_t cols, double scale);

#ifdef __cplusplus
}
#endif
#endif
