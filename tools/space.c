/* space.c - a connected space: the model, the encoder of each side, and the way from a file,
 * a buffer or a prompt to a row of the space (space.h). */
#define _DEFAULT_SOURCE /* strdup */
#include <stdio.h>
#include "space.h"

#include <stdlib.h>
#include <string.h>

static const char *const modality_names[CMCR_MODALITIES] = {"image", "audio", "text", "points"};
static const char *const text_exts[] = {".txt", NULL};

const char *modality_name(cmcr_modality m)
{
    return (unsigned)m < CMCR_MODALITIES ? modality_names[m] : "unknown";
}

bool modality_parse(const char *s, cmcr_modality *m)
{
    for (int i = 0; i < CMCR_MODALITIES; i++)
        if (strcmp(s, modality_names[i]) == 0) return *m = (cmcr_modality)i, true;
    return false;
}

static char side_letter(int side) { return side ? 'b' : 'a'; }

/* The encoder kinds each side of the released connections takes (docs/search.md). */
static const struct released {
    const char *preset, *file, *kind[2];
} released[] = {
    {"clap-clip", "clap_clip.pt", {"clap", "clip"}},
    {"ulip-clip", "ulip_clip.pt", {"clip", "pointbert"}},
};

/* A model shaped like a released connection takes the released kinds on its sides. */
static int check_released(const space *s)
{
    const char *preset = cmcr_model_preset(s->m);
    for (size_t r = 0; r < sizeof released / sizeof *released; r++) {
        if (strcmp(preset, released[r].preset) != 0) continue;
        for (int side = 0; side < 2; side++) {
            const encoder_kind *k = s->kind[side];
            if (!k || strcmp(k->kind, released[r].kind[side]) == 0) continue;
            char *shown = cli_printable(s->o.encoder[side]);
            int rc = cli_error(s->o.cmd, 2, "--encoder-%c %s is a %s checkpoint, but %s is shaped like the released %s, "
                               "whose side %c takes %s embeddings", side_letter(side), shown ? shown : "?", k->name,
                               s->o.model, released[r].file, side_letter(side), released[r].kind[side]);
            free(shown);
            return rc;
        }
    }
    return 0;
}

static int pick_text_side(space *s)
{
    s->text_side = -1;
    if (s->o.text_side) {
        cmcr_side side;
        if (!cli_parse_side(s->o.text_side, &side))
            return cli_error(s->o.cmd, 2, "--text-side must be a or b, not '%s'", s->o.text_side);
        const encoder_kind *k = s->kind[side];
        if (!k || !k->tokenize)
            return cli_error(s->o.cmd, 2, "--text-side %c: %s", side_letter(side),
                             k ? "its encoder has no text tower" : "that side has no encoder (--encoder-a/-b)");
        s->text_side = (int)side;
        return 0;
    }
    for (int side = 0; side < 2 && s->text_side < 0; side++)
        if (s->kind[side] && s->kind[side]->tokenize) s->text_side = side;
    return 0;
}

/* s->exts: every kind's extensions (but .txt, which is a text), then .txt with a text side. */
static void gather_exts(space *s)
{
    size_t n = 0, cap = sizeof s->exts / sizeof *s->exts - 2;
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; s->kind[side] && s->kind[side]->exts[i] && n < cap; i++)
            if (strcmp(s->kind[side]->exts[i], ".txt") != 0) s->exts[n++] = s->kind[side]->exts[i];
    if (s->text_side >= 0) s->exts[n++] = ".txt";
    s->exts[n] = NULL;
}

int space_open(const space_opts *o, space *s)
{
    *s = (space){.o = *o, .text_side = -1};
    if (!s->o.precision) s->o.precision = "f32";
    if (s->o.batch <= 0) s->o.batch = 16;
    if (cmcr_model_load(o->model, &s->m)) return cli_fail(o->cmd);
    cmcr_head_shape a = cmcr_model_shape(s->m, CMCR_SIDE_A), b = cmcr_model_shape(s->m, CMCR_SIDE_B);
    if (a.out_dim != b.out_dim)
        return cli_error(o->cmd, 1, "%s: its sides project to different widths (%lld and %lld)", o->model,
                         (long long)a.out_dim, (long long)b.out_dim);
    s->dim = a.out_dim;
    if (!o->encoder[0] && !o->encoder[1]) return cli_error(o->cmd, 2, "give --encoder-a or --encoder-b (or both)");
    for (int side = 0; side < 2; side++)
        if (o->encoder[side] && encoder_probe(o->cmd, o->encoder[side], &s->kind[side])) return 1;
    if (check_released(s) || pick_text_side(s)) return 1;
    gather_exts(s);
    return 0;
}

void space_close(space *s)
{
    for (int side = 0; side < 2; side++)
        if (s->loaded[side]) encoder_close(&s->enc[side]);
    cmcr_model_free(s->m);
    *s = (space){.text_side = -1};
}

int space_load_side(space *s, int side)
{
    if (s->loaded[side]) return 0;
    if (!s->kind[side]) return cli_error(s->o.cmd, 2, "side %c has no encoder (--encoder-%c)", side_letter(side),
                                         side_letter(side));
    encoder_opts eo = {.cmd = s->o.cmd, .model = s->o.encoder[side], .tokenizer = s->o.tokenizer[side],
                       .precision = s->o.precision, .seed = s->o.seed, .batch = s->o.batch,
                       .text = side == s->text_side, .quiet = s->o.quiet, .xyz_only = s->o.xyz_only,
                       .bad_hint = s->o.bad_hint};
    if (encoder_open(&eo, s->kind[side], &s->enc[side])) {
        encoder_close(&s->enc[side]);
        return 1;
    }
    int64_t in = cmcr_model_shape(s->m, (cmcr_side)side).in_dim;
    if (s->enc[side].dim != in) {
        char *shown = cli_printable(s->o.encoder[side]);
        int rc = cli_error(s->o.cmd, 1, "--encoder-%c %s gives %d-wide embeddings but side %c of %s takes %lld",
                           side_letter(side), shown ? shown : "?", (int)s->enc[side].dim, side_letter(side),
                           s->o.model, (long long)in);
        free(shown);
        encoder_close(&s->enc[side]);
        return rc;
    }
    s->loaded[side] = true;
    return 0;
}

int space_side_of(const space *s, cmcr_modality m)
{
    if (m == CMCR_TEXT) return s->text_side;
    for (int side = 0; side < 2; side++)
        if (s->kind[side] && s->kind[side]->modality == m) return side;
    return -1;
}

int space_route(const space *s, const char *path, cmcr_modality *m, int *side)
{
    if (path_has_ext(path, text_exts)) *m = CMCR_TEXT;
    else {
        int found = -1;
        for (int i = 0; i < 2 && found < 0; i++)
            if (s->kind[i] && path_has_ext(path, s->kind[i]->exts)) found = i;
        if (found < 0) return encode_path_error(s->o.cmd, "%s: not a file this space's encoders read (by its extension)", path);
        *m = s->kind[found]->modality;
    }
    *side = space_side_of(s, *m);
    if (*side < 0) return encode_path_error(s->o.cmd, "%s: a text, but neither encoder has a text tower", path);
    return 0;
}

int space_collect(const space *s, const cli_strs *args, const char *flag, str_list *out)
{
    return collect_paths(s->o.cmd, args, flag, s->exts, false, "input", out);
}

int32_t space_patches(const space *s)
{
    int side = space_side_of(s, CMCR_IMAGE);
    return side >= 0 && s->loaded[side] ? s->enc[side].patches : 0;
}

/* rows x (encoder width) rows at *x through side into rows x s->dim, replacing *x. */
static int project_rows(space *s, int side, float **x, int64_t rows)
{
    if (!rows) return 0;
    float *y = malloc((size_t)rows * (size_t)s->dim * sizeof(float));
    if (!y) return cli_error(s->o.cmd, 1, "out of memory projecting %lld rows", (long long)rows);
    if (cmcr_model_project(s->m, (cmcr_side)side, *x, rows, y)) {
        free(y);
        return cli_fail(s->o.cmd);
    }
    free(*x);
    *x = y;
    return 0;
}

int space_embed_files(space *s, int side, const str_list *files, bool skip_bad, bool patches, encoded *out)
{
    *out = (encoded){0};
    if (space_load_side(s, side)) return 1;
    encoder *e = &s->enc[side];
    if (patches && !e->patches) return cli_error(s->o.cmd, 2, "patch embeddings need a CLIP side");
    int rc = encoder_embed_files(e, files, 1, skip_bad, patches, out);
    if (!rc) rc = project_rows(s, side, &out->emb, out->rows);
    if (!rc && patches) rc = project_rows(s, side, &out->patches, out->rows * e->patches);
    return rc;
}

int space_embed_texts(space *s, char *const *texts, int64_t n, const char *source, float **emb)
{
    *emb = NULL;
    if (s->text_side < 0) return cli_error(s->o.cmd, 2, "texts need an encoder with a text tower");
    if (space_load_side(s, s->text_side)) return 1;
    int rc = encoder_embed_texts(&s->enc[s->text_side], texts, n, source, 1, emb);
    if (!rc) rc = project_rows(s, s->text_side, emb, n);
    if (rc) free(*emb), *emb = NULL;
    return rc;
}

/* ------------------------------------------------------------------ from memory */

/* A failure of a buffer's embedding: "NAME: msg" into err. */
static cmcr_status mem_fail(cmcr_status st, char *err, size_t cap, const char *name, const char *msg)
{
    snprintf(err, cap, "%s: %s", name, msg);
    return st;
}

/* A text buffer as one prompt: NUL-terminated, embedded by the text tower into *emb. */
static cmcr_status text_memory(const encoder *e, const void *data, size_t len, const char *name, float *emb,
                               char *err, size_t cap)
{
    if (memchr(data, '\0', len)) return mem_fail(CMCR_EFORMAT, err, cap, name, "the text contains a NUL byte");
    char *text = malloc(len + 1);
    int32_t *ids = malloc((size_t)e->context * sizeof(int32_t));
    cmcr_status st = CMCR_ENOMEM;
    if (text && ids) {
        memcpy(text, data, len);
        text[len] = '\0';
        st = e->k->tokenize(e->m, text, name, ids);
        if (!st) st = e->k->embed_ids(e->m, ids, 1, e->bf16, 1, emb);
        if (st) snprintf(err, cap, "%s", cmcr_last_error());
    } else {
        snprintf(err, cap, "%s: out of memory for a %zu-byte text", name, len);
    }
    free(text);
    free(ids);
    return st;
}

/* A media buffer as one input of e's kind into emb (and patches). */
static cmcr_status media_memory(const encoder *e, const void *data, size_t len, const char *name, float *emb,
                                float *patches, char *err, size_t cap)
{
    float *buf = malloc(e->each * sizeof(float));
    if (!buf) return mem_fail(CMCR_ENOMEM, err, cap, name, "out of memory for one input");
    unsigned char flag = 0;
    cmcr_status st = e->k->read_memory(e->m, data, len, name, buf, &flag);
    if (!st) st = e->k->embed_inputs(e->m, buf, &flag, 1, e->bf16, 1, emb, patches);
    if (st) snprintf(err, cap, "%s", cmcr_last_error());
    free(buf);
    return st;
}

cmcr_status space_embed_memory(const space *s, cmcr_modality m, const void *data, size_t len, const char *name,
                               float *row, float *patches, char *err, size_t errcap)
{
    err[0] = '\0';
    int side = (unsigned)m < CMCR_MODALITIES ? space_side_of(s, m) : -1;
    if (side < 0 || !s->loaded[side]) {
        snprintf(err, errcap, "%s: this server embeds no %s", name, modality_name(m));
        return CMCR_EINVAL;
    }
    const encoder *e = &s->enc[side];
    bool want_patches = patches && m == CMCR_IMAGE && e->patches;
    float *emb = malloc((size_t)e->dim * (1 + (want_patches ? (size_t)e->patches : 0)) * sizeof(float));
    if (!emb) return mem_fail(CMCR_ENOMEM, err, errcap, name, "out of memory for one embedding");
    float *pe = want_patches ? emb + e->dim : NULL;
    cmcr_status st = m == CMCR_TEXT ? text_memory(e, data, len, name, emb, err, errcap)
                                    : media_memory(e, data, len, name, emb, pe, err, errcap);
    if (!st) st = cmcr_model_project(s->m, (cmcr_side)side, emb, 1, row);
    if (!st && pe) st = cmcr_model_project(s->m, (cmcr_side)side, pe, e->patches, patches);
    if (st && !err[0]) snprintf(err, errcap, "%s: %s", name, cmcr_last_error()); /* the projection's */
    free(emb);
    return st;
}
