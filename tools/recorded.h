/* recorded.h - what a gallery records of a file of its space (the model, an encoder): its
 * absolute path (metadata KEY), content fingerprint (KEY_fingerprint, 16 hex digits) and, for
 * a regular file, "SIZE:MTIME_NS" (KEY_stat; a folder's: every file's relative path, size and
 * modification time, hashed). A file's fingerprint now is taken from that
 * record when the file is the one recorded (the same absolute path, size and modification
 * time: the rule a gallery's rows follow) and computed otherwise, so that a search does not
 * read gigabytes of weights to check them (docs/search.md). */
#ifndef CMCR_RECORDED_H
#define CMCR_RECORDED_H
#include "cmcr.h"

#include <limits.h>

typedef struct recorded_file {
    char path[PATH_MAX]; /* absolute, symbolic links resolved */
    char fp[17];         /* the fingerprint, hex */
    char stat[48];       /* "SIZE:MTIME_NS"; a folder: "dir:FILES:HASH" of its files' names, sizes, times */
} recorded_file;

/* path's record into *out; g (NULL: none) and key say where an earlier record may be. 0, or
 * 1 after printing the error for cmd. */
int recorded_fingerprint(const char *cmd, const cmcr_gallery *g, const char *key, const char *path, recorded_file *out);
/* Gallery g's recorded value of key, or NULL when absent or empty. */
const char *recorded(const cmcr_gallery *g, const char *key);
/* The space g records (what cmcr index used) for what the command line left NULL: the model,
 * each side's encoder and its tokenizer (only when that side's encoder was not given either: a
 * tokenizer recorded for another encoder would not fit it), the text side, and the precision
 * ("f32" when neither says). */
void recorded_defaults(const cmcr_gallery *g, const char **model, const char *enc[2], const char *tok[2],
                       const char **text_side, const char **precision);
/* The model's fingerprint must be what gallery g (at path gallery) records; so must each
 * encoder's of enc (side a, side b; NULL: not used) for which g records one (a gallery without
 * rows of a side records none). 0, or 1 after printing for cmd. */
int recorded_check(const char *cmd, const cmcr_gallery *g, const char *gallery, const char *model,
                   const char *const enc[2]);
#endif
