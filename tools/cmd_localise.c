/* cmd_localise.c - cmcr localise: where in an image a sound (or a prompt) is, zero-shot, through
 * a C-MCR connection (docs/localisation.md): the query's row against the image's 7 x 7 patch
 * rows in the connected space, the map upsampled over the part of the image CLIP sees, a
 * heatmap overlay (PNG) and the box of the region above the threshold. */
#include <stdio.h>
#include "localise.h"

#include "json_text.h"
#include <stdlib.h>
#include <string.h>

typedef struct loc_cli {
    loc_flags f;
    const char *audio, *text, *image, *out, *map;
    double threshold, alpha;
    long long max_side;
    bool json;
} loc_cli;

/* The query's row: a sound through its side, or the prompt through the text side. */
static int embed_query(space *s, const loc_cli *a, float **row)
{
    *row = NULL;
    if (a->text) {
        char *texts[1] = {(char *)a->text};
        return space_embed_texts(s, texts, 1, "--text", row);
    }
    cmcr_modality m;
    int side;
    if (space_route(s, a->audio, &m, &side)) return 1;
    if (m != CMCR_AUDIO) return encode_path_error("localise", "%s: --audio takes a sound file (by its extension)", a->audio);
    str_list one = {0};
    if (!list_push(&one, strdup(a->audio))) return cli_error("localise", 1, "out of memory");
    encoded e;
    int rc = space_embed_files(s, side, &one, false, false, &e);
    list_free(&one);
    if (!rc) *row = e.emb, e.emb = NULL;
    encoded_free(&e);
    return rc;
}

/* The image's projected patches (gh * gw rows of s->dim). */
static int embed_patches(space *s, const loc_cli *a, const loc_grid *g, float **patches)
{
    *patches = NULL;
    cmcr_modality m;
    int side;
    if (space_route(s, a->image, &m, &side)) return 1;
    if (m != CMCR_IMAGE || side != g->side)
        return encode_path_error("localise", "%s: --image takes a JPEG or PNG image (by its extension)", a->image);
    str_list one = {0};
    if (!list_push(&one, strdup(a->image))) return cli_error("localise", 1, "out of memory");
    encoded e;
    int rc = space_embed_files(s, side, &one, false, true, &e);
    list_free(&one);
    if (!rc) *patches = e.patches, e.patches = NULL;
    encoded_free(&e);
    return rc;
}

/* The peak cell: the first highest value in raster order; and the lowest value. */
static int64_t peak_of(const float *map, int64_t n, float *low)
{
    int64_t best = 0;
    *low = map[0];
    for (int64_t i = 1; i < n; i++) {
        if (map[i] > map[best]) best = i;
        if (map[i] < *low) *low = map[i];
    }
    return best;
}

static void print_text(const loc_cli *a, const loc_grid *g, const float *map, const cmcr_overlay *o)
{
    float low;
    int64_t p = peak_of(map, (int64_t)g->gh * g->gw, &low);
    char *img = cli_printable(a->image), *q = cli_printable(a->text ? a->text : a->audio), *out = cli_printable(a->out);
    printf("image    %s: %d x %d, CLIP sees x %d..%d, y %d..%d\n", img ? img : "?", o->width, o->height, o->window.x0,
           o->window.x1 - 1, o->window.y0, o->window.y1 - 1);
    if (a->text) printf("query    text \"%s\"\n", q ? q : "?");
    else printf("query    sound %s\n", q ? q : "?");
    printf("peak     cell (row %lld, column %lld) of %d x %d: cosine %.4f (lowest %.4f)\n", (long long)(p / g->gw),
           (long long)(p % g->gw), g->gh, g->gw, map[p], low);
    if (o->has_box)
        printf("box      x %d..%d, y %d..%d (pixels; the largest region at >= %g of the normalised heat)\n", o->box.x0,
               o->box.x1 - 1, o->box.y0, o->box.y1 - 1, a->threshold);
    else
        printf("box      none: no part of the map stands out (it is constant)\n");
    printf("overlay  %s (%d x %d)\n", out ? out : "?", o->png_width, o->png_height);
    free(img);
    free(q);
    free(out);
}

static cJSON *box_json(const cmcr_box *b)
{
    int v[4] = {b->x0, b->y0, b->x1, b->y1};
    return cJSON_CreateIntArray(v, 4);
}

static int print_json(const loc_cli *a, const loc_grid *g, const float *map, const cmcr_overlay *o)
{
    float low;
    int64_t p = peak_of(map, (int64_t)g->gh * g->gw, &low);
    cJSON *root = cJSON_CreateObject(), *q = cJSON_CreateObject(), *peak = cJSON_CreateObject();
    cJSON *rows = cJSON_CreateArray();
    cJSON_AddItemToObject(root, "image", json_text(a->image));
    cJSON_AddItemToObject(root, "query", q);
    cJSON_AddItemToObject(q, a->text ? "text" : "audio", json_text(a->text ? a->text : a->audio));
    int size[2] = {o->width, o->height}, grid[2] = {g->gh, g->gw};
    cJSON_AddItemToObject(root, "size", cJSON_CreateIntArray(size, 2));
    cJSON_AddItemToObject(root, "window", box_json(&o->window));
    cJSON_AddItemToObject(root, "grid", cJSON_CreateIntArray(grid, 2));
    for (int32_t r = 0; r < g->gh; r++) cJSON_AddItemToArray(rows, cJSON_CreateFloatArray(map + (int64_t)r * g->gw, g->gw));
    cJSON_AddItemToObject(root, "map", rows);
    cJSON_AddItemToObject(root, "peak", peak);
    cJSON_AddNumberToObject(peak, "row", (double)(p / g->gw));
    cJSON_AddNumberToObject(peak, "column", (double)(p % g->gw));
    cJSON_AddNumberToObject(peak, "cosine", map[p]);
    cJSON_AddNumberToObject(root, "lowest", low);
    cJSON_AddNumberToObject(root, "threshold", a->threshold);
    cJSON_AddItemToObject(root, "box", o->has_box ? box_json(&o->box) : cJSON_CreateNull());
    cJSON_AddItemToObject(root, "out", json_text(a->out));
    int png[2] = {o->png_width, o->png_height};
    cJSON_AddItemToObject(root, "out_size", cJSON_CreateIntArray(png, 2));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return cli_error("localise", 1, "out of memory");
    printf("%s\n", text);
    free(text);
    return 0;
}

/* The overlay of map on the image, written to --out; the map to --map. */
static int write_outputs(const loc_cli *a, const loc_grid *g, const float *map, cmcr_overlay *o)
{
    unsigned char *img;
    size_t len;
    if (loc_read_file("localise", a->image, &img, &len)) return 1;
    cmcr_overlay_params p = cmcr_overlay_default_params();
    p.threshold = a->threshold;
    p.alpha = a->alpha;
    p.crop = g->crop;
    p.max_side = (int32_t)a->max_side;
    cmcr_status st = cmcr_localise_overlay(img, len, a->image, map, g->gh, g->gw, &p, o);
    free(img);
    if (st) return cli_fail("localise");
    /* the map first: a failure then leaves neither output (the overlay is written last) */
    if (a->map && cmcr_matrix_save_npy(a->map, map, g->gh, g->gw)) return cli_fail("localise");
    if (cmcr_write_file(a->out, o->png, o->png_len)) return cli_fail("localise");
    return 0;
}

static int check_options(const loc_cli *a)
{
    if (!a->audio == !a->text) return cli_error("localise", 2, "give one of --audio or --text (see --help)");
    if (!(a->threshold >= 0 && a->threshold <= 1))
        return cli_error("localise", 2, "--threshold must be between 0 and 1 (got %g)", a->threshold);
    if (!(a->alpha >= 0 && a->alpha <= 1)) return cli_error("localise", 2, "--alpha must be between 0 and 1 (got %g)", a->alpha);
    cli_range r[] = {{"max-side", a->max_side, 0, 1 << 20}};
    if (cli_check_ranges("localise", r, 1)) return 2;
    cli_file in[] = {{"--model", a->f.model, NULL, NULL, NULL},       {"--encoder-a", a->f.encoder[0], NULL, NULL, NULL},
                     {"--encoder-b", a->f.encoder[1], NULL, NULL, NULL}, {"--tokenizer-a", a->f.tokenizer[0], NULL, NULL, NULL},
                     {"--tokenizer-b", a->f.tokenizer[1], NULL, NULL, NULL}, {"--image", a->image, NULL, NULL, NULL},
                     {"--audio", a->audio, NULL, NULL, NULL}};
    cli_file out[] = {{"--out", a->out, ".png", NULL, NULL}, {"--map", a->map, CLI_EXT_NPY, NULL, NULL}};
    return cli_check_files("localise", in, 7, out, 2);
}

int cmd_localise(int argc, char **argv)
{
    loc_cli a = {0};
    cli_opt opts[CLI_MAX_OPTS] = {{0}};
    int n = 0;
    loc_space_opts(&a.f, true, opts, &n);
    opts[n++] = (cli_opt){"audio", OPT_STR, &a.audio, "", "the sound to find (WAV, FLAC, OGG, MP3): through the "
                          "LAION-CLAP side"};
    opts[n++] = (cli_opt){"text", OPT_STR, &a.text, "", "or a prompt to find (the text itself, e.g. \"a dog barking\"): "
                          "through the text side"};
    opts[n++] = (cli_opt){"image", OPT_STR, &a.image, NULL, "the image (JPEG or PNG): through the CLIP side"};
    opts[n++] = (cli_opt){"out", OPT_STR, &a.out, NULL, "the overlay (.png): the heatmap over the part of the image "
                          "CLIP sees, and the box"};
    opts[n++] = (cli_opt){"threshold", OPT_DOUBLE, &a.threshold, "0.5", "the box's region: normalised heat >= this "
                          "(0..1)"};
    opts[n++] = (cli_opt){"alpha", OPT_DOUBLE, &a.alpha, "0.5", "weight of the heatmap's colour over the image (0..1)"};
    opts[n++] = (cli_opt){"max-side", OPT_INT, &a.max_side, "0", "scale the overlay down so that its longer side is at "
                          "most this (0: the image's size)"};
    opts[n++] = (cli_opt){"map", OPT_STR, &a.map, "", "also the grid of cosines (.npy, 7 x 7 for ViT-B/32)"};
    opts[n++] = (cli_opt){"json", OPT_FLAG, &a.json, "", "print one JSON object (with the map) instead of the lines"};
    cli_cmd cmd = {"localise", "", "Zero-shot sound-source localisation: the cosine of the sound's (or prompt's) row "
                   "with each of the image's patch rows in the connected space, upsampled over the image, drawn as a "
                   "heatmap with the box of its hottest region (docs/localisation.md).", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    if ((rc = check_options(&a))) return rc;
    double start = cmcr_now_seconds();
    space s = {0};
    loc_grid g;
    float *query = NULL, *patches = NULL, *map = NULL;
    cmcr_overlay o = {0};
    rc = loc_open("localise", &a.f, &s, &g);
    if (!rc) rc = embed_patches(&s, &a, &g, &patches);
    if (!rc) rc = embed_query(&s, &a, &query);
    if (!rc && !(map = malloc((size_t)g.gh * (size_t)g.gw * sizeof(float)))) rc = cli_error("localise", 1, "out of memory");
    if (!rc) loc_map(&s, &g, query, patches, map);
    if (!rc) rc = write_outputs(&a, &g, map, &o);
    if (!rc && a.json) rc = print_json(&a, &g, map, &o);
    else if (!rc) print_text(&a, &g, map, &o);
    if (!rc && !a.f.quiet) fprintf(stderr, "cmcr localise: done in %.2f s\n", cmcr_now_seconds() - start);
    cmcr_overlay_free(&o);
    free(query);
    free(patches);
    free(map);
    space_close(&s);
    return rc;
}
