/* cmd_search.c - cmcr search: one query (a media file, a text, or a file of either) embedded
 * into the connected space of a gallery and the gallery's rows ranked by cosine (exact top-k,
 * cmcr_gallery_topk), printed as a table or as JSON (docs/search.md).
 *
 * The model, encoders, tokenizers, text side and precision default to what the gallery
 * records; only the encoder of the query's side is loaded. The model's fingerprint must be the
 * gallery's, and so must the query encoder's when the gallery records one for that side. */
#define _DEFAULT_SOURCE /* strdup */
#include <stdio.h>
#include "recorded.h"
#include "space.h"
#include "textfile.h"
#include "json_text.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct search_cli {
    const char *gallery, *audio, *image, *text, *points, *query_file, *modality, *model, *encoder[2], *tokenizer[2];
    const char *text_side, *precision;
    long long top, seed;
    bool json, xyz_only;
} search_cli;

/* The query: what it is, which modality, and its text when it is one. */
typedef struct query {
    const char *shown;  /* the file, or the text */
    const char *file;   /* NULL for --text */
    cmcr_modality m;
    char *text;         /* a text query's text (malloc'd) */
} query;

static char side_letter(int side) { return side ? 'b' : 'a'; }

/* A recorded value, or NULL when absent or empty. */
/* ------------------------------------------------------------------ the query */

static int check_options(const search_cli *a)
{
    int n = (a->audio != NULL) + (a->image != NULL) + (a->text != NULL) + (a->points != NULL) + (a->query_file != NULL);
    if (n != 1) return cli_error("search", 2, "give one query: --audio, --image, --text, --points or --query-file");
    if (a->precision && cli_check_precision("search", a->precision)) return 2;
    if (a->text && !a->text[0]) return cli_error("search", 2, "--text is empty");
    cli_range r[] = {{"top", a->top, 1, 100000}, {"seed", a->seed, 0, LLONG_MAX}};
    return cli_check_ranges("search", r, 2);
}

/* --modality image,audio,...: the bit mask of the rows that may be returned (0: all). */
static int parse_modalities(const char *s, unsigned *mask)
{
    *mask = 0;
    if (!s) return 0;
    char *copy = strdup(s), *save = NULL;
    if (!copy) return cli_error("search", 1, "out of memory");
    int rc = 0;
    for (char *w = strtok_r(copy, ",", &save); w && !rc; w = strtok_r(NULL, ",", &save)) {
        cmcr_modality m;
        if (modality_parse(w, &m)) *mask |= 1u << m;
        else rc = cli_error("search", 2, "--modality: '%s' is not one of image, audio, text, points", w);
    }
    free(copy);
    if (!rc && !*mask) rc = cli_error("search", 2, "--modality names no modality");
    return rc;
}

/* A text file's whole content, trimmed, as index reads a .txt input. */
static char *read_text_file(const char *path)
{
    const char *why;
    char *text = text_file_read(path, &why), fmt[160];
    if (!text) {
        snprintf(fmt, sizeof fmt, "%%s: %s", why); /* why holds no '%' */
        encode_path_error("search", fmt, path);
    }
    return text;
}

/* ------------------------------------------------------------------ the space */

/* The encoder kind's row for a side: from the checkpoint given, else the gallery's record. */
static int side_kind(const search_cli *a, const cmcr_gallery *g, int side, const char *enc, const encoder_kind **k)
{
    *k = NULL;
    if (a->encoder[side]) return encoder_probe("search", a->encoder[side], k);
    char key[32];
    snprintf(key, sizeof key, "encoder_%c_kind", side_letter(side));
    const char *word = enc ? recorded(g, key) : NULL;
    for (const encoder_kind *r = encoder_kinds; word && r->kind; r++)
        if (strcmp(r->kind, word) == 0) *k = r;
    return 0;
}

/* The side whose encoder embeds the query: the text side (ts, NULL: none given or recorded)
 * for texts, else the side whose kind reads the modality. */
static int query_side(const search_cli *a, const cmcr_gallery *g, const char *enc[2], const char *ts, const query *q,
                      int *side)
{
    const encoder_kind *k[2];
    for (int s = 0; s < 2; s++)
        if (side_kind(a, g, s, enc[s], &k[s])) return 1;
    *side = -1;
    if (q->m == CMCR_TEXT) {
        cmcr_side s;
        if (ts && cli_parse_side(ts, &s)) *side = (int)s;
        for (int s2 = 0; s2 < 2 && *side < 0; s2++)
            if (k[s2] && k[s2]->tokenize) *side = s2;
    } else {
        for (int s = 0; s < 2 && *side < 0; s++)
            if (k[s] && k[s]->modality == q->m) *side = s;
    }
    if (*side < 0 || !enc[*side])
        return cli_error("search", 2, "no encoder embeds %s queries: give the encoder of the side that does "
                         "(--encoder-a or --encoder-b)", modality_name(q->m));
    return 0;
}

/* ------------------------------------------------------------------ output */

static int print_json(const cmcr_gallery *g, const query *q, const int64_t *idx, const float *score, int64_t k)
{
    cJSON *root = cJSON_CreateObject(), *results = NULL;
    bool ok = root && cJSON_AddItemToObject(root, "query", json_text(q->shown)) &&
              cJSON_AddStringToObject(root, "modality", modality_name(q->m)) &&
              (results = cJSON_AddArrayToObject(root, "results"));
    for (int64_t e = 0; ok && e < k && idx[e] >= 0; e++) {
        cJSON *r = cJSON_CreateObject();
        ok = r && cJSON_AddItemToArray(results, r) && cJSON_AddNumberToObject(r, "rank", (double)(e + 1)) &&
             cJSON_AddNumberToObject(r, "score", round((double)score[e] * 1e6) / 1e6) &&
             cJSON_AddStringToObject(r, "modality", modality_name(cmcr_gallery_modality(g, idx[e]))) &&
             cJSON_AddItemToObject(r, "path", json_text(cmcr_gallery_path(g, idx[e])));
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) return cli_error("search", 1, "out of memory");
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

static int print_table(const cmcr_gallery *g, const int64_t *idx, const float *score, int64_t k)
{
    printf("%4s  %7s  %-8s  %s\n", "rank", "score", "modality", "path");
    for (int64_t e = 0; e < k && idx[e] >= 0; e++) {
        char *shown = cli_printable(cmcr_gallery_path(g, idx[e]));
        printf("%4lld  %7.4f  %-8s  %s\n", (long long)e + 1, score[e], modality_name(cmcr_gallery_modality(g, idx[e])),
               shown ? shown : "?");
        free(shown);
    }
    return 0;
}

/* ------------------------------------------------------------------ the command */

static int embed_query(space *s, int side, const query *q, float **row)
{
    if (q->m == CMCR_TEXT) return space_embed_texts(s, (char *const *)&q->text, 1, q->file ? q->file : "--text", row);
    str_list files = {0};
    encoded out = {0};
    int rc = list_push(&files, strdup(q->file)) ? space_embed_files(s, side, &files, false, false, &out)
                                                : cli_error("search", 1, "out of memory");
    list_free(&files);
    if (!rc && out.rows != 1) rc = cli_error("search", 1, "%s: not embedded", q->file);
    if (!rc) {
        *row = out.emb;
        out.emb = NULL;
    }
    encoded_free(&out);
    return rc;
}

/* The query's modality: from its flag, or (--query-file) from its extension as index routes it. */
static int make_query(const search_cli *a, query *q)
{
    *q = (query){0};
    if (a->text) return q->shown = a->text, q->m = CMCR_TEXT, !(q->text = strdup(a->text)) ? cli_error("search", 1, "out of memory") : 0;
    q->file = a->audio ? a->audio : a->image ? a->image : a->points ? a->points : a->query_file;
    q->shown = q->file;
    q->m = a->audio ? CMCR_AUDIO : a->image ? CMCR_IMAGE : CMCR_POINTS;
    if (a->query_file) {
        if (path_has_ext(q->file, (const char *const[]){".txt", NULL})) { /* a text, as index reads .txt */
            q->m = CMCR_TEXT;
            return (q->text = read_text_file(q->file)) ? 0 : 1;
        }
        for (const encoder_kind *k = encoder_kinds; k->kind; k++)
            if (path_has_ext(q->file, k->exts)) return q->m = k->modality, 0;
        return encode_path_error("search", "%s: not a file any encoder reads (by its extension)", q->file);
    }
    return 0;
}

static int search_run(const search_cli *a, const cmcr_gallery *g, const query *q)
{
    const char *model = a->model, *enc[2] = {a->encoder[0], a->encoder[1]};
    const char *tok[2] = {a->tokenizer[0], a->tokenizer[1]}, *text_side = a->text_side, *prec = a->precision;
    recorded_defaults(g, &model, enc, tok, &text_side, &prec);
    if (!model) return cli_error("search", 2, "%s records no model: give --model", a->gallery);
    unsigned mask;
    int side, rc = parse_modalities(a->modality, &mask);
    if (!rc) rc = query_side(a, g, enc, text_side, q, &side);
    if (!rc) rc = recorded_check("search", g, a->gallery, model, (const char *const[2]){side == 0 ? enc[0] : NULL,
                                                                                  side == 1 ? enc[1] : NULL});
    if (rc) return rc;
    char ts[2] = {side_letter(side), '\0'};
    space_opts so = {"search", model, {side == 0 ? enc[0] : NULL, side == 1 ? enc[1] : NULL},
                     {side == 0 ? tok[0] : NULL, side == 1 ? tok[1] : NULL}, q->m == CMCR_TEXT ? ts : NULL,
                     prec, 1, a->seed, true, a->xyz_only, NULL};
    space s;
    float *row = NULL;
    rc = space_open(&so, &s);
    if (!rc && s.dim != cmcr_gallery_dim(g))
        rc = cli_error("search", 1, "%s projects to %lld, but %s holds rows %lld wide", model, (long long)s.dim,
                       a->gallery, (long long)cmcr_gallery_dim(g));
    if (!rc) rc = embed_query(&s, side, q, &row);
    int64_t k = a->top, *idx = malloc((size_t)k * sizeof *idx);
    float *score = malloc((size_t)k * sizeof *score);
    if (!rc && (!idx || !score)) rc = cli_error("search", 1, "out of memory for --top %lld", (long long)k);
    if (!rc && cmcr_gallery_topk(g, row, 1, s.dim, mask, k, idx, score)) rc = cli_fail("search");
    if (!rc) rc = a->json ? print_json(g, q, idx, score, k) : print_table(g, idx, score, k);
    free(idx);
    free(score);
    free(row);
    space_close(&s);
    return rc;
}

int cmd_search(int argc, char **argv)
{
    search_cli a;
    cli_opt opts[] = {
        {"gallery", OPT_STR, &a.gallery, NULL, "the gallery to search (made by cmcr index)"},
        {"audio", OPT_STR, &a.audio, "", "query: a sound file"},
        {"image", OPT_STR, &a.image, "", "query: an image"},
        {"points", OPT_STR, &a.points, "", "query: a point cloud"},
        {"text", OPT_STR, &a.text, "", "query: a text"},
        {"query-file", OPT_STR, &a.query_file, "", "query: a file of any of these (a .txt file is a text)"},
        {"top", OPT_INT, &a.top, "10", "results to show"},
        {"modality", OPT_STR, &a.modality, "", "only rows of these modalities (comma-separated: image, audio, text, "
                                               "points); default: all"},
        {"json", OPT_FLAG, &a.json, "", "print JSON: {\"query\", \"modality\", \"results\": [{\"rank\", \"score\", "
                                        "\"modality\", \"path\"}]}"},
        {"model", OPT_STR, &a.model, "", "the connection; default: the gallery's"},
        {"encoder-a", OPT_STR, &a.encoder[0], "", "side a's encoder; default: the gallery's"},
        {"encoder-b", OPT_STR, &a.encoder[1], "", "side b's encoder; default: the gallery's"},
        {"tokenizer-a", OPT_STR, &a.tokenizer[0], "", "side a's tokenizer; default: the gallery's, else beside the weights"},
        {"tokenizer-b", OPT_STR, &a.tokenizer[1], "", "side b's tokenizer; default: the gallery's, else beside the weights"},
        {"text-side", OPT_STR, &a.text_side, "", "a or b: the tower a text query goes through; default: the gallery's"},
        {"precision", OPT_STR, &a.precision, "", "f32 or bf16 products; default: the gallery's"},
        {"seed", OPT_INT, &a.seed, "0", "CLAP: the chunk starts of a clip over 10 s; PointBERT: the FPS start"},
        {"xyz-only", OPT_FLAG, &a.xyz_only, "", "PointBERT: give an xyz model the first 3 columns of a wider cloud"},
        {0}};
    cli_cmd cmd = {"search", "", "Rank a gallery's files by their cosine to one query (a file or a text) in the "
                   "connected space (docs/search.md).", 0, opts};
    char *pos[8];
    int rc = cli_parse(&cmd, argc, argv, pos);
    if (rc >= 0) return rc;
    if ((rc = check_options(&a))) return rc;
    query q;
    cmcr_gallery *g = NULL;
    if ((rc = make_query(&a, &q))) return rc;
    if (cmcr_gallery_load(a.gallery, &g)) rc = cli_fail("search");
    if (!rc) rc = search_run(&a, g, &q);
    cmcr_gallery_free(g);
    free(q.text);
    return rc;
}
