/* file.h - files written atomically (a temporary file, fsync, rename), the registry of live
 * temporary files that cmcr_remove_temp_files empties, whole-file reads and mkdir -p. */
#ifndef CMCR_RUNTIME_FILE_H
#define CMCR_RUNTIME_FILE_H

#include "runtime/core.h"

#include <stdio.h>

/* Read a whole file (at most max_bytes) into a malloc'd buffer. */
cmcr_status file_read_all(const char *path, uint64_t max_bytes, unsigned char **buf, size_t *len);

/* mkdir -p (cmcr_mkdir_p): create dir and its missing parents (mode 0777 less the umask);
 * fine when it exists already; an error when it, or a parent, is not a directory. */
cmcr_status file_mkdir_p(const char *dir);

/* Atomic output: write to "<path>.tmp.<pid>.<n>", then fsync + rename on commit. */
typedef struct afile {
    FILE *f;
    char *tmp;
    char *path;
} afile;
cmcr_status afile_open(afile *a, const char *path);
cmcr_status afile_write(afile *a, const void *data, size_t n);
cmcr_status afile_commit(afile *a);
void afile_abort(afile *a);
/* For writers that create the temporary file themselves (libzip): a fresh temp name, and
 * the fsync + rename step. */
char *file_temp_name(const char *path);
cmcr_status file_commit_temp(const char *tmp, const char *path);
/* Remove a temporary file that will not be committed (and forget it: see
 * cmcr_remove_temp_files). file_temp_name registers every name; commit and discard release it. */
void file_temp_discard(const char *tmp);

/* The size of f in bytes: a regular file's (anything else is refused), or a memory stream's. */
cmcr_status file_stream_size(FILE *f, const char *name, uint64_t *size);
/* A read-only stream over len bytes of memory (fmemopen); NULL when len is 0 or on failure. */
FILE *file_open_memory(const void *data, size_t len);

#endif
