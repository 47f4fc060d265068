/* cmd_eval_loc.c - cmcr eval localisation: zero-shot sound-source localisation on a labelled
 * set (image, sound, boxes), scored as the localisation benchmarks score it (LVS's cIoU and
 * AUC, docs/localisation.md), through the same steps as cmcr localise. */
#define _DEFAULT_SOURCE /* strdup */
#include <stdio.h>
#include "localise.h"

#include "json_text.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CMD "eval localisation"
#define CHUNK 256 /* items embedded at once: the patches of a chunk, not of the whole set, in memory */
#define MAX_COORD 2147483647.0

/* One labelled sample: an image, a sound and the boxes of the sound's source in the image. */
typedef struct item {
    char *image, *audio;   /* as resolved (relative paths from the set's folder) */
    char *where;           /* "labels.csv:7" or "labels.json: item 3", for messages */
    double (*edges)[4];    /* boxes in image pixels: left, top, right, bottom */
    int nboxes, cap;
    cmcr_box *frame;       /* the boxes in the crop frame */
    double ciou;
} item;

typedef struct item_set {
    item *v;
    int64_t n, cap;
} item_set;

static void set_free(item_set *s)
{
    for (int64_t i = 0; i < s->n; i++) {
        free(s->v[i].image);
        free(s->v[i].audio);
        free(s->v[i].where);
        free(s->v[i].edges);
        free(s->v[i].frame);
    }
    free(s->v);
    *s = (item_set){0};
}

static int oom(void)
{
    return cli_error(CMD, 1, "out of memory");
}

/* path resolved from the set file's folder dir (absolute paths as they are), malloc'd. */
static char *resolve(const char *dir, const char *path)
{
    if (path[0] == '/' || strcmp(dir, ".") == 0) return strdup(path);
    return join_path(dir, path);
}

static item *set_add(item_set *s, const char *dir, const char *image, const char *audio, const char *where)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        item *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        s->v = v;
        s->cap = cap;
    }
    item *it = &s->v[s->n];
    *it = (item){resolve(dir, image), resolve(dir, audio), strdup(where), NULL, 0, 0, NULL, 0};
    s->n++; /* set_free frees what was allocated, also on failure */
    return it->image && it->audio && it->where ? it : NULL;
}

static int add_box(item *it, const double e[4])
{
    if (it->nboxes == it->cap) {
        int cap = it->cap ? 2 * it->cap : 2;
        double(*v)[4] = realloc(it->edges, (size_t)cap * sizeof *v);
        if (!v) return oom();
        it->edges = v;
        it->cap = cap;
    }
    memcpy(it->edges[it->nboxes++], e, sizeof(double[4]));
    return 0;
}

/* ------------------------------------------------------------------ CSV */

/* The next comma-separated field of *p (RFC 4180: a field in double quotes may hold commas,
 * and "" is a quote), unquoted in place; *p moves past its comma. NULL: a malformed quote. */
static char *csv_field(char **p, bool *last)
{
    char *s = *p, *out = s, *start = s;
    if (*s == '"') {
        for (s++;; s++) {
            if (!*s) return NULL;
            if (*s == '"' && s[1] == '"') *out++ = '"', s++;
            else if (*s == '"') break;
            else *out++ = *s;
        }
        s++;
        if (*s && *s != ',') return NULL;
    } else {
        while (*s && *s != ',') {
            if (*s == '"') return NULL;
            *out++ = *s++;
        }
    }
    *last = *s == '\0';
    *p = *s ? s + 1 : s;
    *out = '\0';
    return start;
}

/* One data line of the CSV: image, audio and the four edges. */
static int csv_line(item_set *set, const char *dir, const char *where, char *line)
{
    char *f[6];
    bool last = false;
    int n = 0;
    for (char *p = line; n < 6 && !last; n++)
        if (!(f[n] = csv_field(&p, &last))) return cli_error(CMD, 1, "%s: a malformed quoted field", where);
    if (n != 6 || !last)
        return cli_error(CMD, 1, "%s: expected 6 fields (image,audio,x0,y0,x1,y1), got %s", where, n < 6 ? "fewer" : "more");
    if (!f[0][0] || !f[1][0]) return cli_error(CMD, 1, "%s: an empty image or audio path", where);
    double e[4];
    static const char *const names[4] = {"x0", "y0", "x1", "y1"};
    for (int k = 0; k < 4; k++)
        if (cmcr_parse_double(f[2 + k], 0, MAX_COORD, &e[k]))
            return cli_error(CMD, 1, "%s: %s: %s", where, names[k], cmcr_last_error());
    /* rows of one pair are one sample with several boxes: the last pair is the usual case */
    item *it = NULL;
    char *img = resolve(dir, f[0]), *aud = resolve(dir, f[1]);
    if (!img || !aud) return free(img), free(aud), oom();
    for (int64_t i = set->n - 1; i >= 0 && !it; i--)
        if (!strcmp(set->v[i].image, img) && !strcmp(set->v[i].audio, aud)) it = &set->v[i];
    free(img);
    free(aud);
    if (!it && !(it = set_add(set, dir, f[0], f[1], where))) return oom();
    return add_box(it, e);
}

static int read_csv(const char *path, const char *dir, item_set *set)
{
    cli_lines l;
    if (cli_read_lines(CMD, path, "labels", -1, &l)) return 1;
    int rc = 0;
    if (l.n == 0 || strcmp(l.items[0], "image,audio,x0,y0,x1,y1") != 0)
        rc = cli_error(CMD, 1, "%s:1: the header must be image,audio,x0,y0,x1,y1", path);
    for (int64_t i = 1; !rc && i < l.n; i++) {
        if (!l.items[i][0]) continue; /* blank lines (a final newline) */
        char where[4200];
        snprintf(where, sizeof where, "%s:%lld", path, (long long)i + 1);
        rc = csv_line(set, dir, where, l.items[i]);
    }
    if (!rc && set->n == 0) rc = cli_error(CMD, 1, "%s: no samples after the header", path);
    cli_lines_free(&l);
    return rc;
}

/* ------------------------------------------------------------------ JSON */

static int json_item(item_set *set, const char *dir, const char *where, const cJSON *o)
{
    if (!cJSON_IsObject(o)) return cli_error(CMD, 1, "%s: not an object", where);
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(o, "image"), *aud = cJSON_GetObjectItemCaseSensitive(o, "audio");
    const cJSON *boxes = cJSON_GetObjectItemCaseSensitive(o, "boxes");
    if (!cJSON_IsString(img) || !img->valuestring[0] || !cJSON_IsString(aud) || !aud->valuestring[0])
        return cli_error(CMD, 1, "%s: 'image' and 'audio' must be non-empty strings", where);
    if (!cJSON_IsArray(boxes) || cJSON_GetArraySize(boxes) == 0)
        return cli_error(CMD, 1, "%s: 'boxes' must be a non-empty array of [x0, y0, x1, y1]", where);
    item *it = set_add(set, dir, img->valuestring, aud->valuestring, where);
    if (!it) return oom();
    int b = 0;
    for (const cJSON *box = boxes->child; box; box = box->next, b++) {
        double e[4];
        int k = 0;
        for (const cJSON *v = cJSON_IsArray(box) ? box->child : NULL; v && k < 5; v = v->next, k++)
            if (k < 4) {
                if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= MAX_COORD))
                    return cli_error(CMD, 1, "%s: box %d: coordinates must be numbers from 0 to 2^31 - 1", where, b);
                e[k] = v->valuedouble;
            }
        if (k != 4) return cli_error(CMD, 1, "%s: box %d must be [x0, y0, x1, y1]", where, b);
        if (add_box(it, e)) return 1;
    }
    return 0;
}

static int read_json(const char *path, const char *dir, item_set *set)
{
    cli_lines l;
    if (cli_read_lines(CMD, path, "labels", 0, &l)) return 1;
    cJSON *root = cJSON_ParseWithLength(l.buf, l.len);
    int rc = 0;
    if (!root) rc = cli_error(CMD, 1, "%s: not valid JSON (error near byte %lld)", path,
                              (long long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - l.buf : 0));
    else if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) == 0)
        rc = cli_error(CMD, 1, "%s: expected a non-empty array of {\"image\", \"audio\", \"boxes\"}", path);
    int i = 0;
    for (const cJSON *o = root ? root->child : NULL; !rc && o; o = o->next, i++) {
        char where[4200];
        snprintf(where, sizeof where, "%s: item %d", path, i);
        rc = json_item(set, dir, where, o);
    }
    cJSON_Delete(root);
    cli_lines_free(&l);
    return rc;
}

/* ------------------------------------------------------------------ scoring */

/* Every item's boxes in the crop frame (its image decoded for its size), before any work. */
static int frame_boxes(item_set *set, int32_t crop)
{
    for (int64_t i = 0; i < set->n; i++) {
        item *it = &set->v[i];
        int32_t w, h;
        if (cmcr_image_size(it->image, &w, &h)) return cli_error(CMD, 1, "%s: %s", it->where, cmcr_last_error());
        FILE *snd = fopen(it->audio, "rb");
        if (!snd) return cli_error(CMD, 1, "%s: %s: cannot open the sound", it->where, it->audio);
        fclose(snd);
        if (!(it->frame = malloc((size_t)it->nboxes * sizeof *it->frame))) return oom();
        bool any = false;
        for (int b = 0; b < it->nboxes; b++) {
            if (cmcr_crop_box(w, h, crop, it->edges[b], &it->frame[b]))
                return cli_error(CMD, 1, "%s: %s", it->where, cmcr_last_error());
            any |= it->frame[b].x1 > it->frame[b].x0 && it->frame[b].y1 > it->frame[b].y0;
        }
        if (!any) {
            cmcr_box win;
            cmcr_crop_window(w, h, crop, &win);
            return cli_error(CMD, 1, "%s: no box reaches the part of the %d x %d image CLIP sees (x %d..%d, y %d..%d)",
                             it->where, w, h, win.x0, win.x1 - 1, win.y0, win.y1 - 1);
        }
    }
    return 0;
}

/* The paths of items [i0, i0 + n) (images or sounds). */
static int chunk_paths(const item_set *set, int64_t i0, int64_t n, bool images, str_list *out)
{
    *out = (str_list){0};
    for (int64_t i = i0; i < i0 + n; i++)
        if (!list_push(out, strdup(images ? set->v[i].image : set->v[i].audio))) return list_free(out), oom();
    return 0;
}

/* Embed items [i0, i0 + n) and score each: map, upsampled to the crop frame, cIoU. */
static int score_chunk(space *s, const loc_grid *g, int audio_side, item_set *set, int64_t i0, int64_t n,
                       float *map, float *heat)
{
    str_list imgs, snds;
    encoded ei = {0}, ea = {0};
    int rc = chunk_paths(set, i0, n, true, &imgs);
    if (!rc) rc = chunk_paths(set, i0, n, false, &snds);
    if (!rc) rc = space_embed_files(s, g->side, &imgs, false, true, &ei);
    if (!rc) rc = space_embed_files(s, audio_side, &snds, false, false, &ea);
    int64_t per = (int64_t)g->gh * g->gw * s->dim;
    for (int64_t k = 0; !rc && k < n; k++) {
        item *it = &set->v[i0 + k];
        loc_map(s, g, ea.emb + k * s->dim, ei.patches + k * per, map);
        if (cmcr_upsample_bilinear(map, g->gh, g->gw, g->crop, g->crop, heat) ||
            cmcr_localisation_ciou(heat, g->crop, g->crop, it->frame, it->nboxes, &it->ciou))
            rc = cli_error(CMD, 1, "%s: %s", it->where, cmcr_last_error());
    }
    list_free(&imgs);
    list_free(&snds);
    encoded_free(&ei);
    encoded_free(&ea);
    return rc;
}

static int score(space *s, const loc_grid *g, item_set *set, cmcr_localisation_metrics *m)
{
    int audio_side = space_side_of(s, CMCR_AUDIO);
    if (audio_side < 0)
        return cli_error(CMD, 2, "the sounds need a LAION-CLAP side: give its weights as --encoder-a or --encoder-b "
                         "(side a of clap_clip.pt)");
    int rc = frame_boxes(set, g->crop);
    float *map = malloc((size_t)g->gh * g->gw * sizeof(float));
    float *heat = malloc((size_t)g->crop * g->crop * sizeof(float));
    double *ciou = malloc((size_t)set->n * sizeof(double));
    if (!rc && (!map || !heat || !ciou)) rc = oom();
    for (int64_t i = 0; !rc && i < set->n; i += CHUNK)
        rc = score_chunk(s, g, audio_side, set, i, set->n - i < CHUNK ? set->n - i : CHUNK, map, heat);
    for (int64_t i = 0; !rc && i < set->n; i++) ciou[i] = set->v[i].ciou;
    if (!rc && cmcr_localisation_summary(ciou, set->n, m)) rc = cli_fail(CMD);
    free(map);
    free(heat);
    free(ciou);
    return rc;
}

/* ------------------------------------------------------------------ report */

static void print_table(const item_set *set, const cmcr_localisation_metrics *m, bool per_item)
{
    if (per_item) {
        printf("%-8s  %-s\n", "cIoU", "image, sound");
        for (int64_t i = 0; i < set->n; i++) {
            char *img = cli_printable(set->v[i].image), *aud = cli_printable(set->v[i].audio);
            printf("%.6f  %s, %s\n", set->v[i].ciou, img ? img : "?", aud ? aud : "?");
            free(img);
            free(aud);
        }
        printf("\n");
    }
    printf("samples   %lld\ncIoU@0.5  %.4f\nAUC       %.4f\n", (long long)m->samples, m->ciou50, m->auc);
}

static int print_json(const item_set *set, const cmcr_localisation_metrics *m, bool per_item)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "samples", (double)m->samples);
    cJSON_AddNumberToObject(root, "ciou@0.5", m->ciou50);
    cJSON_AddNumberToObject(root, "auc", m->auc);
    cJSON_AddItemToObject(root, "success", cJSON_CreateDoubleArray(m->success, 21));
    if (per_item) {
        cJSON *items = cJSON_AddArrayToObject(root, "items");
        for (int64_t i = 0; items && i < set->n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "image", json_text(set->v[i].image));
            cJSON_AddItemToObject(o, "audio", json_text(set->v[i].audio));
            cJSON_AddNumberToObject(o, "ciou", set->v[i].ciou);
            cJSON_AddItemToArray(items, o);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return oom();
    printf("%s\n", text);
    free(text);
    return 0;
}

/* ------------------------------------------------------------------ the command */

int cmd_eval_localisation(int argc, char **argv)
{
    loc_flags f = {0};
    const char *labels = NULL;
    bool per_item = false, json = false;
    cli_opt opts[CLI_MAX_OPTS] = {{0}};
    int n = 0;
    opts[n++] = (cli_opt){"set", OPT_STR, &labels, NULL, "the labelled set: a CSV with the header image,audio,x0,y0,x1,y1 "
                          "(box edges in the image's pixels; several rows of a pair: several boxes) or a JSON array of "
                          "{\"image\", \"audio\", \"boxes\": [[x0, y0, x1, y1], ...]}; relative paths from its folder"};
    loc_space_opts(&f, false, opts, &n);
    opts[n++] = (cli_opt){"per-item", OPT_FLAG, &per_item, "", "also each sample's cIoU"};
    opts[n++] = (cli_opt){"json", OPT_FLAG, &json, "", "print one JSON object instead of the table"};
    cli_cmd cmd = {CMD, "", "Zero-shot sound-source localisation on a labelled set: each sound against its image's "
                   "patches in the connected space, scored as the benchmarks score it: cIoU@0.5 and AUC (LVS; "
                   "docs/localisation.md).", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    bool is_csv = cli_name_allowed(labels, ".csv"), is_json = cli_name_allowed(labels, ".json");
    if (!is_csv && !is_json) return cli_error(CMD, 2, "%s: --set must be a .csv or .json file", labels);
    char dir[4096];
    cli_dir_of(labels, dir, sizeof dir);
    item_set set = {0};
    rc = is_csv ? read_csv(labels, dir, &set) : read_json(labels, dir, &set);
    space s = {0};
    loc_grid g;
    cmcr_localisation_metrics m;
    if (!rc) rc = loc_open(CMD, &f, &s, &g);
    if (!rc) rc = score(&s, &g, &set, &m);
    if (!rc && json) rc = print_json(&set, &m, per_item);
    else if (!rc) print_table(&set, &m, per_item);
    space_close(&s);
    set_free(&set);
    return rc;
}
