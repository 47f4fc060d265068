/* localise.h - what cmcr localise and cmcr eval localisation share: the connected space's
 * flags, its CLIP side (the image's patch grid and the side of the square crop it sees), and
 * the map of a query row against an image's projected patches (docs/localisation.md). */
#ifndef CMCR_LOCALISE_H
#define CMCR_LOCALISE_H
#include "space.h"

/* The flags that open the space, filled by cli_parse through loc_space_opts. */
typedef struct loc_flags {
    const char *model, *encoder[2], *tokenizer[2], *text_side, *precision;
    long long batch, seed;
    bool quiet;
} loc_flags;

/* The option rows for f (--model, --encoder-a/-b, --tokenizer-a/-b, --text-side when texts is
 * true, --precision, --batch, --seed, --quiet) into opts from *n on; *n moves past them. */
void loc_space_opts(loc_flags *f, bool texts, cli_opt *opts, int *n);

/* The image side of a space: its CLIP encoder loaded, gh x gw patches, crop x crop input. */
typedef struct loc_grid {
    int side;
    int32_t gh, gw, crop;
} loc_grid;

/* Open the space of f for cmd, refusing one without a CLIP side (the patches come from it),
 * and load that side: 0, or 1/2 after printing the error. space_close always. */
int loc_open(const char *cmd, const loc_flags *f, space *s, loc_grid *g);

/* The gh x gw map of the query row against one image's projected patches: their cosines. */
void loc_map(const space *s, const loc_grid *g, const float *query, const float *patches, float *map);

/* Read a whole file (an image for the overlay) into a malloc'd buffer: 0, or 1 after printing. */
int loc_read_file(const char *cmd, const char *path, unsigned char **buf, size_t *len);
#endif
