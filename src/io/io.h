/* io.h - the formats' readers and writers and the tensor set's internal calls (io/). */
#ifndef CMCR_IO_H
#define CMCR_IO_H

#include "runtime/core.h"

#include <stdio.h>

/* Limits checked before any allocation driven by file contents. The tensor data one file
 * makes the loader allocate is at most what the file can hold: the data section itself for
 * .npy and .safetensors (every data byte belongs to exactly one tensor), and for .pt each
 * distinct storage once (views share it), the storages together and the pickle each at most
 * CMCR_MAX_INFLATE times the file's size (deflate's largest expansion); and never more than
 * CMCR_MAX_LOAD_BYTES. */
#define CMCR_MAX_TENSOR_BYTES ((uint64_t)16 << 30)   /* 16 GiB per tensor */
#define CMCR_MAX_LOAD_BYTES ((uint64_t)64 << 30)     /* 64 GiB of tensor data per file */
#define CMCR_MAX_INFLATE 1032                        /* bytes a deflated zip byte can become */
#define CMCR_MAX_HEADER_BYTES ((uint64_t)100 << 20)  /* 100 MiB of header/JSON/pickle */
#define CMCR_MAX_TENSORS 100000
#define CMCR_MAX_NAME_BYTES 512                      /* tensor names and metadata keys */

/* Format-specific readers/writers (npy.c, safetensors.c, pt.c). */
cmcr_status npy_save(const cmcr_tensor *t, const char *path);
cmcr_status safetensors_save(const cmcr_tensors *ts, const char *path);
/* safetensors_save, except that the bytes of each tensor whose data is NULL (added with
 * tensors_add_view(..., NULL): its name, dtype and shape only) come from fill, which writes
 * exactly t->nbytes through afile_write: for writers that stream their tensors from
 * elsewhere rather than hold them (galleries). A fill that writes another count fails the save. */
struct afile;
typedef cmcr_status (*safetensors_fill_fn)(struct afile *a, const cmcr_tensor *t, void *user);
cmcr_status safetensors_save_filled(const cmcr_tensors *ts, const char *path, safetensors_fill_fn fill, void *user);
cmcr_status pt_load(const char *path, cmcr_tensors **out);
cmcr_status pt_save(const cmcr_tensors *ts, const char *path);
/* pt_load keeping only the state dict's entries whose names (as pt_load gives them) start with
 * one of the n prefixes: the other entries are not checked and their storages never read, so
 * the encoder of a checkpoint that holds a whole multi-tower model (ULIP's) costs only its own
 * bytes. A training checkpoint's "module." is dropped before matching. */
cmcr_status pt_load_only(const char *path, const char *const *prefixes, size_t n, cmcr_tensors **out);
/* found[k] = whether the state dict of the .pt at path (a training checkpoint's, without
 * "module.", as pt_load names them) holds keys[k]: from the pickle alone, no tensor is read,
 * so telling a checkpoint's kind costs little even for gigabytes of weights. */
cmcr_status pt_find_keys(const char *path, const char *const *keys, size_t n, bool *found);
/* .npy and .safetensors read a stream (a file, or memory: file_open_memory), which they close;
 * name is what messages call it. .pt reads through libzip, from a file or from memory. */
cmcr_status npy_load_stream(FILE *f, const char *name, cmcr_tensors **out);
cmcr_status safetensors_load_stream(FILE *f, const char *name, cmcr_tensors **out);
cmcr_status pt_load_memory(const void *data, size_t len, const char *name, cmcr_tensors **out);
/* .safetensors from len bytes in memory, the tensors copied out of them; the same parser and
 * checks as the stream, from a different source. */
cmcr_status safetensors_load_memory(const void *data, size_t len, const char *name, cmcr_tensors **out);
/* .safetensors mapped (mmap, PROT_READ, MAP_PRIVATE) rather than read: the same checks, then
 * every tensor views the mapping, which the set owns (munmap on cmcr_tensors_free). Nothing is
 * copied and pages are read from the page cache as they are touched. Views are read-only and
 * need not be aligned for their dtype (read them with memcpy or cmcr_tensor_to_f32). The
 * usual mmap caveat: a file truncated or rewritten in place while mapped changes under the
 * set, or kills the process with SIGBUS on the next read of a page past its new end (files
 * replaced by rename, as cmcr writes them, are safe). Where the file cannot be mapped (mmap
 * fails, e.g. a filesystem without it) it is read as safetensors_load_stream does. */
cmcr_status safetensors_load_mapped(const char *path, cmcr_tensors **out);
/* cmcr_tensors_load, except that a .safetensors file is mapped (safetensors_load_mapped) unless
 * the environment sets CMCR_NO_MMAP (to anything but "" or "0"): for loaders that convert the
 * tensors (and release them, tensors_release) rather than keep them. */
cmcr_status tensors_load_mapped(const char *path, cmcr_format fmt, cmcr_tensors **out);
/* cmcr_npy_reader_open over an open stream (a file, or memory: file_open_memory), which the
 * reader then owns (and closes, also on failure). */
cmcr_status npy_reader_open_stream(FILE *f, const char *name, cmcr_npy_reader **out);

/* The .npy header of a float32 rows x cols matrix (at most NPY_HEADER_MAX bytes) into buf;
 * returns its length (a multiple of 64, as numpy writes it). */
#define NPY_HEADER_MAX 512
size_t npy_matrix_header(char *buf, int64_t rows, int64_t cols);

/* The .npy header dict (text, len bytes, ending with '\n') parsed strictly as the loader does,
 * without mapping the dtype: its 'descr' string into descr (cap bytes), 'fortran_order' and
 * 'shape' (ndim entries, at most CMCR_MAX_DIMS). name is what messages call the file. */
cmcr_status npy_parse_header_text(const char *name, const char *text, size_t len, char *descr, size_t cap,
                                  bool *fortran, int *ndim, int64_t *shape);

/* Add a tensor taking ownership of data (malloc'd, nbytes must match the shape). */
cmcr_status tensors_add_owned(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                                   const int64_t *shape, void *data);
/* Give ts a malloc'd buffer to own (freed with ts, or at once if this fails), so that several
 * tensors can view it with tensors_add_view: the storage of a .pt file, read once. */
cmcr_status tensors_own(cmcr_tensors *ts, void *block);
/* Give ts a read-only mapping (mmap, len bytes) to own: unmapped with ts, or at once if this
 * fails (a set owns one at most). Tensors that view it (tensors_add_view) must not be written. */
cmcr_status tensors_own_map(cmcr_tensors *ts, void *addr, size_t len);
/* A hint that t's bytes will not be read again soon. When t views ts's mapping, the whole pages
 * inside its bytes leave the process's resident memory (madvise MADV_DONTNEED: they stay in
 * the page cache, and a later read maps them again, unchanged); otherwise nothing happens. A
 * loader that converts a mapped file tensor by tensor so holds about one copy of the weights. */
void tensors_release(const cmcr_tensors *ts, const cmcr_tensor *t);
/* Add a tensor whose data lies inside a buffer ts owns (no copy). */
cmcr_status tensors_add_view(cmcr_tensors *ts, const char *name, cmcr_dtype dtype, int ndim,
                                  const int64_t *shape, void *data);

/* The one rule for names in every format, reading and writing: tensor names and metadata keys
 * are 1 to CMCR_MAX_NAME_BYTES bytes of UTF-8 without control characters (C0, DEL, C1), so a
 * name prints on one line and cannot drive a terminal; metadata values are UTF-8 text of any
 * length whose only control characters are tab, newline and carriage return. On failure, returns st with a
 * message "<what> '<name, escaped>' <problem>". len counts the bytes (a NUL among them is a
 * control character). */
cmcr_status tensors_check_name(cmcr_status st, const char *what, const char *s, size_t len);
cmcr_status tensors_check_text(cmcr_status st, const char *what, const char *s, size_t len);
/* s (len bytes) for a one-line message: valid UTF-8 other than control characters as is, a
 * backslash and every other byte as \xNN; cut with "..." to fit cap (at least 8). */
const char *tensors_escape(char *out, size_t cap, const char *s, size_t len);

#endif
