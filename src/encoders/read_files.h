/* read_files.h - one input per file, read in parallel: the loop every encoder's "_files" call
 * shares (images for CLIP, sounds for CLAP, point clouds for PointBERT). */
#ifndef CMCR_ENCODERS_READ_FILES_H
#define CMCR_ENCODERS_READ_FILES_H
#include "runtime/core.h"

#include <stdint.h>

/* Read one file into input (each floats), and *flag when the kind has one (CLAP's "longer"). */
typedef cmcr_status (*read_one_fn)(const void *ctx, const char *path, float *input, unsigned char *flag);

/* read_one for each of the n paths, one file per thread: input n x each floats, flags n bytes
 * (or NULL), ok n bytes (ok[i] = 0: file i failed and its input is zero). CMCR_OK when all were
 * read, else the first failure's status and message. A worker thread's message stays in its
 * thread, so the first failed file is read again after the parallel pass to make it here. */
cmcr_status read_files(read_one_fn read_one, const void *ctx, const char *const *paths, int64_t n, float *input,
                       size_t each, unsigned char *flags, unsigned char *ok);

#endif
