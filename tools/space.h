/* space.h - a connected space as the search commands (index, search, localise, serve) use it:
 * a C-MCR connection and the encoder on each of its sides, so that a media file, a buffer or
 * a prompt becomes a row of the connected space, normalize(f_side(normalize(enc(x)))).
 *
 * A file's modality comes from its extension: the extensions of the encoder kinds on the
 * sides (images -> the CLIP side, sounds -> the LAION-CLAP side, point clouds -> the PointBERT
 * side), and .txt for texts (one text per file), which go through the text side's text tower.
 * Encoders are loaded on first use, so a search with a sound loads only LAION-CLAP. */
#ifndef CMCR_SPACE_H
#define CMCR_SPACE_H
#include "encode.h"

#include <stdbool.h>
#include <stddef.h>

/* "image", "audio", "text", "points". */
const char *modality_name(cmcr_modality m);
bool modality_parse(const char *s, cmcr_modality *m);

typedef struct space_opts {
    const char *cmd;          /* for messages: "index", "search", "localise", "serve" */
    const char *model;        /* the connection (required) */
    const char *encoder[2];   /* side a's and side b's checkpoints (NULL: that side has none) */
    const char *tokenizer[2]; /* NULL: found beside the weights */
    const char *text_side;    /* "a", "b", or NULL: the first side whose encoder has a text tower */
    const char *precision;    /* "f32" or "bf16" (NULL: f32) */
    long long batch;          /* inputs per forward pass (0: 16) */
    long long seed;           /* CLAP's chunk starts, PointBERT's FPS start (encode.h) */
    bool quiet;               /* no progress lines */
    bool xyz_only;            /* PointBERT: clouds with colours give an xyz model their xyz */
    const char *bad_hint;     /* after the message of a file that cannot be read (NULL: none) */
} space_opts;

typedef struct space {
    space_opts o;
    cmcr_model *m;
    int64_t dim;                  /* the connected space's width */
    const encoder_kind *kind[2];  /* the kind on each side (NULL: none) */
    encoder enc[2];               /* loaded on first use */
    bool loaded[2];
    int text_side;                /* 0, 1, or -1: no text tower */
    const char *exts[32];         /* the extensions the space reads (NULL-terminated) */
} space;

/* Load the model and probe the encoders' kinds (from key names, not their weights): the text
 * side is chosen, and for a model shaped like a released connection (clap_clip.pt: a CLAP,
 * b CLIP; ulip_clip.pt: a CLIP, b PointBERT) the kinds must be those. 0, or 1 after printing
 * the error. space_close always, also after a failure. */
int space_open(const space_opts *o, space *s);
void space_close(space *s);
/* Load side's encoder now (its width must be the side's input width): 0, or 1 after
 * printing. Loading is not thread-safe: load what a server needs before it serves. */
int space_load_side(space *s, int side);

/* Which side embeds modality m (texts: the text side): 0 or 1, or -1 when none does. */
int space_side_of(const space *s, cmcr_modality m);
/* The modality of a path by its extension and the side that embeds it: 0, or 1 after
 * printing the error (no side reads such files). */
int space_route(const space *s, const char *path, cmcr_modality *m, int *side);
/* args (files, folders searched at any depth for s->exts, .lst list files) appended to out
 * in the order given: 0, or 1 after printing the error. */
int space_collect(const space *s, const cli_strs *args, const char *flag, str_list *out);

/* Embed files all routed to side: out->emb rows x s->dim; with patches (a CLIP side),
 * out->patches rows x patches x s->dim, each patch projected through the same side. Loads
 * the side's encoder on first use. skip_bad as encoder_embed_files. 0, or 1 after printing. */
int space_embed_files(space *s, int side, const str_list *files, bool skip_bad, bool patches, encoded *out);
/* Prompts through the text side: *emb (malloc'd) n x s->dim. 0, or 1 after printing. */
int space_embed_texts(space *s, char *const *texts, int64_t n, const char *source, float **emb);
/* Patches per image of the CLIP side's encoder (0 when the space has no loaded CLIP side). */
int32_t space_patches(const space *s);

/* One input of modality m from len bytes in memory (texts: UTF-8, not NUL-terminated); name
 * names it in messages. row gets s->dim floats; patches (NULL, or space_patches x s->dim;
 * images only). Never prints: on failure err gets the one-line message. The side's encoder
 * must be loaded (space_load_side); then concurrent calls are safe. */
cmcr_status space_embed_memory(const space *s, cmcr_modality m, const void *data, size_t len, const char *name,
                               float *row, float *patches, char *err, size_t errcap);
#endif
