/* encode.h - the CLI's encoders, shared by cmcr embed and cmcr eval zeroshot (from files): a
 * checkpoint loaded by its kind (cmcr_encoder_kind), media files gathered from files, folders
 * and list files, and the batch loops that embed them or prompts, with progress on stderr.
 * Everything that differs between kinds (CLIP: images; LAION-CLAP: sounds; ULIP's PointBERT: point
 * clouds) is one row of the
 * table in encode.c; a new kind is a row and its few calls. */
#ifndef CMCR_ENCODE_H
#define CMCR_ENCODE_H
#include "cli.h"

#include <stddef.h>
#include <stdint.h>

/* A growing list of malloc'd strings. */
typedef struct str_list {
    char **v;
    int64_t n, cap;
} str_list;
void list_free(str_list *l);
/* Takes s (malloc'd; NULL is out of memory, and so is false). */
bool list_push(str_list *l, char *s);
/* dir/name, malloc'd (NULL: out of memory). */
char *join_path(const char *dir, const char *name);

typedef struct encoder encoder;
typedef struct encoder_opts encoder_opts;

/* One kind of encoder: how it is named, what it reads, and its calls. */
typedef struct encoder_kind {
    const char *kind;        /* cmcr_encoder_kind's word: "clip", "clap", "pointbert" */
    const char *name;        /* for messages: "CLIP", "LAION-CLAP" */
    const char *flag, *noun; /* embed's input flag and one input file: "--images", "image" */
    const char *what, *one;  /* rows in summaries: "images", "image" */
    const char *const *exts; /* the names a folder is searched for (NULL-terminated) */
    const char *prompt;      /* eval zeroshot's default prompt for inputs of this kind ({} = class) */
    cmcr_modality modality;  /* what its inputs are */
    int (*load)(const encoder_opts *o, encoder *e);
    void (*free)(void *m);
    cmcr_status (*read_inputs)(const void *m, char *const *paths, int64_t n, float *buf, unsigned char *flags,
                               unsigned char *ok);
    cmcr_status (*read_input)(const void *m, const char *path, float *buf, unsigned char *flag);
    /* one input from len bytes in memory (name: for messages) */
    cmcr_status (*read_memory)(const void *m, const void *data, size_t len, const char *name, float *buf,
                               unsigned char *flag);
    cmcr_status (*embed_inputs)(const void *m, const float *buf, const unsigned char *flags, int64_t n, int bf16,
                                int normalize, float *emb, float *patches);
    /* NULL for a kind without a text tower (PointBERT) */
    cmcr_status (*tokenize)(const void *m, const char *text, const char *where, int32_t *ids);
    cmcr_status (*embed_ids)(const void *m, const int32_t *ids, int64_t n, int bf16, int normalize, float *emb);
} encoder_kind;

/* The kinds, in table order, ending with a row of NULLs. */
extern const encoder_kind encoder_kinds[];

/* What an encoder is opened with. */
struct encoder_opts {
    const char *cmd;        /* the command, for messages ("embed", "eval zeroshot") */
    const char *model;      /* the checkpoint */
    const char *tokenizer;  /* NULL: found beside the model */
    const char *activation; /* CLIP only (NULL: the config's, else quick_gelu) */
    const char *precision;  /* "f32" (no bfloat16 copy of the weights) or "bf16" */
    long long seed;         /* CLAP: the chunk starts of clips over 10 s */
    long long batch;        /* inputs or prompts per forward pass (>= 1) */
    bool text;              /* how[] describes the text tower (CLIP's text activation) */
    bool quiet;             /* no progress line */
    const char *bad_hint;   /* after the message of a file that cannot be read ("" or NULL: none) */
    bool xyz_only;          /* PointBERT: clouds with more than 3 columns give their xyz to an xyz model */
};

/* A loaded encoder. */
struct encoder {
    const encoder_kind *k;
    void *m;                 /* the kind's model (cmcr_clip, cmcr_clap, cmcr_pointbert) */
    int32_t dim, context, patches;
    int has_tokenizer;       /* 0: prompts are refused (the library says why) */
    size_t each;             /* floats of one preprocessed input */
    char how[160];           /* the closing line's account of the weights */
    const char *cmd;
    int bf16;
    int64_t batch;
    bool progress;           /* a progress line on stderr (a terminal, not quiet) */
    const char *bad_hint;
    double start;            /* when the encoder was ready (cmcr_now_seconds) */
    bool open_line;          /* a progress line without its newline is on the terminal */
};

/* The row for model's kind in *k: 0, or 1 after printing the error (an unreadable or unknown
 * checkpoint, or a kind this table has no row for), naming the model. */
int encoder_probe(const char *cmd, const char *model, const encoder_kind **k);
/* Load o->model as kind k into *e: 0, or 1 after printing the library's error. Close it with
 * encoder_close (also after a failure). */
int encoder_open(const encoder_opts *o, const encoder_kind *k, encoder *e);
void encoder_close(encoder *e);
/* Seconds since the encoder was opened (reading and embedding, not loading). */
double encoder_elapsed(const encoder *e);

/* args (the values of flag): input files, folders (searched at any depth for k's extensions,
 * hidden entries skipped, in path order) and list files (.lst, and .txt unless k reads .txt
 * files: one path per line, relative ones from the list's folder), appended to out in the order given. 0, or 1 after
 * printing the error (a missing path, no input found). */
int encoder_collect(const char *cmd, const cli_strs *args, const char *flag, const encoder_kind *k, str_list *out);

/* The general form: folders are searched for exts; a file is a list when it is named .lst, or
 * .txt when txt_lists; noun names one input in "no ... found". */
int collect_paths(const char *cmd, const cli_strs *args, const char *flag, const char *const *exts, bool txt_lists,
                  const char *noun, str_list *out);
/* Whether path ends in one of exts (NULL-terminated; case-insensitive). */
bool path_has_ext(const char *path, const char *const *exts);

/* Embedded files. */
typedef struct encoded {
    float *emb;      /* rows x dim */
    float *patches;  /* rows x patches x dim, when asked for */
    int64_t rows;
    str_list kept;   /* the path of each row */
    str_list skipped; /* the messages of the files left out (skip_bad) */
} encoded;
void encoded_free(encoded *r);

/* Read and embed files in batches of e->batch, rows in input order. A file that cannot be
 * read stops the run (1, the error printed) unless skip_bad: then it is left out and its
 * message kept in out->skipped. patches: also the patch embeddings (kinds that have them).
 * Zero rows are not an error here. */
int encoder_embed_files(encoder *e, const str_list *files, int normalize, bool skip_bad, bool patches,
                        encoded *out);
/* Tokenize and embed n prompts into *emb (malloc'd, n x dim). where(i) names prompt i in
 * errors: source:LINE with line = i + 1 (source: the file they came from). 0, or 1 after
 * printing the error (no tokenizer, a bad prompt). e's kind must have a text tower (tokenize
 * set): the commands refuse one without, naming the checkpoint, before loading it. */
int encoder_embed_texts(encoder *e, char *const *texts, int64_t n, const char *source, int normalize, float **emb);

/* An error about a path as the user's file system spells it: fmt has one %s for it, shown
 * printable on one line. Returns 1. */
int encode_path_error(const char *cmd, const char *fmt, const char *path);
#endif
