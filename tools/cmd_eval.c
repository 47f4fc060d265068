/* cmd_eval.c - cmcr eval retrieval | zeroshot: metrics of a connected space. */
#define _DEFAULT_SOURCE /* strndup */
#include <stdio.h>
#include "encode.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void eval_usage(FILE *to)
{
    fprintf(to, "usage: cmcr eval MODE [options]   (cmcr eval MODE --help for its options)\n\n"
                "Evaluate a connected space (or one MCR's raw space) on held-out data.\n\n"
                "modes:\n"
                "  retrieval    Recall@1/5/10, median/mean rank and mAP of query -> gallery retrieval\n"
                "  zeroshot     top-1/top-5 (and per-class) accuracy of zero-shot classification\n"
                "  localisation cIoU@0.5 and AUC of zero-shot sound-source localisation on a labelled set\n");
}

/* ------------------------------------------------------------------ shared helpers */

/* Which space the embeddings are compared in: through a model's projector, or raw. */
typedef struct space {
    const char *cmd, *model_path;
    cmcr_model *m;
} space;

static int parse_side_opt(const char *cmd, const char *flag, const char *text, cmcr_side *side)
{
    if (!text) return cli_error(cmd, 2, "--%s is required with --model (a or b)", flag);
    if (!cli_parse_side(text, side)) return cli_error(cmd, 2, "--%s must be a or b, not '%s'", flag, text);
    return 0;
}

/* Bring x (named path in messages) into the space: projected through side (with a model) or
 * L2-normalised (without). */
static int into_space(const space *sp, const char *path, cmcr_side side, cmcr_matrix *x)
{
    if (!sp->m) {
        cmcr_normalize_rows(x->data, x->rows, x->cols);
        return 0;
    }
    cmcr_head_shape h = cmcr_model_shape(sp->m, side);
    if (x->cols != h.in_dim)
        return cli_error(sp->cmd, 1, "%s: rows are %lld wide but side %c of %s expects %lld", path, (long long)x->cols,
                         side == CMCR_SIDE_A ? 'a' : 'b', sp->model_path, (long long)h.in_dim);
    float *y = malloc((size_t)(x->rows * h.out_dim) * sizeof(float));
    if (!y) return cli_error(sp->cmd, 1, "%s: out of memory projecting %lld rows", path, (long long)x->rows);
    if (cmcr_model_project(sp->m, side, x->data, x->rows, y)) {
        free(y);
        return cli_error(sp->cmd, 1, "%s: %s", path, cmcr_last_error());
    }
    free(x->data);
    x->data = y;
    x->cols = h.out_dim;
    return 0;
}

/* Load a matrix and bring it into the space (into_space). */
static int load_into_space(const space *sp, const char *path, cmcr_side side, cmcr_matrix *x)
{
    if (cmcr_matrix_load(path, x)) return cli_fail(sp->cmd);
    return into_space(sp, path, side, x);
}

static int same_width(const space *sp, const char *pa, const cmcr_matrix *a, const char *pb, const cmcr_matrix *b)
{
    if (a->cols == b->cols) return 0;
    if (sp->m)
        return cli_error(sp->cmd, 1, "the two sides of %s project to different widths (%lld for %s, %lld for %s)",
                         sp->model_path, (long long)a->cols, pa, (long long)b->cols, pb);
    return cli_error(sp->cmd, 1, "%s rows are %lld wide but %s rows are %lld wide; without --model both must come "
                     "from one space", pa, (long long)a->cols, pb, (long long)b->cols);
}

static int load_labels_for(const char *cmd, const char *path, int64_t rows, const char *of, int64_t **labels)
{
    int64_t n;
    if (cmcr_labels_load(path, labels, &n)) return cli_fail(cmd);
    if (n == rows) return 0;
    free(*labels);
    *labels = NULL;
    return cli_error(cmd, 1, "%s: %lld labels for the %lld rows of %s", path, (long long)n, (long long)rows, of);
}

static void print_json(cJSON *root)
{
    char *text = cJSON_Print(root);
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
}

/* ------------------------------------------------------------------ retrieval */

typedef struct retr_job {
    const char *query, *gallery, *model, *query_side, *gallery_side, *query_labels, *gallery_labels, *precision;
    bool both, json;
    cmcr_matrix q, g;
    int64_t *ql, *gl;
    cmcr_retrieval_metrics res[2];
    int ndir;
} retr_job;

static int retrieval_check_opts(const retr_job *j)
{
    const char *cmd = "eval retrieval";
    if (!j->model && (j->query_side || j->gallery_side))
        return cli_error(cmd, 2, "--query-side and --gallery-side need --model");
    if (!j->query_labels != !j->gallery_labels)
        return cli_error(cmd, 2, "give both --query-labels and --gallery-labels, or neither (ground truth by row)");
    if (cli_check_precision(cmd, j->precision)) return 2;
    return 0;
}

static int retrieval_load(retr_job *j, space *sp)
{
    cmcr_side qs = CMCR_SIDE_A, gs = CMCR_SIDE_A;
    int rc = 0;
    if (j->model) {
        rc = parse_side_opt(sp->cmd, "query-side", j->query_side, &qs);
        if (!rc) rc = parse_side_opt(sp->cmd, "gallery-side", j->gallery_side, &gs);
        if (!rc && cmcr_model_load(j->model, &sp->m)) rc = cli_fail(sp->cmd);
    }
    if (!rc) rc = load_into_space(sp, j->query, qs, &j->q);
    if (!rc) rc = load_into_space(sp, j->gallery, gs, &j->g);
    if (!rc) rc = same_width(sp, j->query, &j->q, j->gallery, &j->g);
    if (!rc && j->query_labels) rc = load_labels_for(sp->cmd, j->query_labels, j->q.rows, j->query, &j->ql);
    if (!rc && j->gallery_labels) rc = load_labels_for(sp->cmd, j->gallery_labels, j->g.rows, j->gallery, &j->gl);
    if (!rc && !j->ql && j->both && j->q.rows != j->g.rows)
        rc = cli_error(sp->cmd, 1, "--both-directions with ground truth by row needs as many queries as gallery "
                       "rows (%s has %lld, %s has %lld)", j->query, (long long)j->q.rows, j->gallery,
                       (long long)j->g.rows);
    return rc;
}

/* The library sees arrays, not files: its errors get the files of the failing direction. */
static int retrieval_fail(const char *query, const char *ql, const char *gallery, const char *gl)
{
    if (ql) return cli_error("eval retrieval", 1, "%s (labels %s) -> %s (labels %s): %s", query, ql, gallery, gl,
                             cmcr_last_error());
    return cli_error("eval retrieval", 1, "%s -> %s: %s", query, gallery, cmcr_last_error());
}

static int retrieval_run(retr_job *j)
{
    cmcr_retrieval_params p = {.bf16 = strcmp(j->precision, "bf16") == 0};
    if (cmcr_eval_retrieval_ex(j->q.data, j->q.rows, j->g.data, j->g.rows, j->q.cols, j->ql, j->gl, &p, &j->res[0]))
        return retrieval_fail(j->query, j->query_labels, j->gallery, j->gallery_labels);
    j->ndir = 1;
    if (!j->both) return 0;
    if (cmcr_eval_retrieval_ex(j->g.data, j->g.rows, j->q.data, j->q.rows, j->q.cols, j->gl, j->ql, &p, &j->res[1]))
        return retrieval_fail(j->gallery, j->gallery_labels, j->query, j->query_labels);
    j->ndir = 2;
    return 0;
}

static const char *const dir_names[2] = {"query->gallery", "gallery->query"};

static void retrieval_print_table(const retr_job *j)
{
    if (j->model) printf("space: %s (query side %s, gallery side %s)\n", j->model, j->query_side, j->gallery_side);
    else printf("space: raw embeddings, L2-normalised\n");
    printf("ground truth: %s\n", j->ql ? "by label (every gallery item with the query's label is relevant)"
                                       : "by row (query i <-> gallery row i)");
    printf("%-16s %9s %9s %7s %7s %7s %11s %11s %7s\n", "direction", "queries", "gallery", "R@1", "R@5", "R@10",
           "median rank", "mean rank", "mAP");
    for (int d = 0; d < j->ndir; d++) {
        const cmcr_retrieval_metrics *r = &j->res[d];
        printf("%-16s %9lld %9lld %7.2f %7.2f %7.2f %11.1f %11.2f %7.2f\n", dir_names[d], (long long)r->queries,
               (long long)(d ? j->q.rows : j->g.rows), 100 * r->recall[0], 100 * r->recall[1], 100 * r->recall[2],
               r->median_rank, r->mean_rank, 100 * r->map);
    }
    printf("(R@k and mAP in %%)\n");
    for (int d = 0; d < j->ndir; d++) {
        const cmcr_retrieval_metrics *r = &j->res[d];
        double pairs = (double)r->queries * (double)(d ? j->q.rows : j->g.rows);
        if (strcmp(j->precision, "bf16") == 0)
            printf("%s: bf16 scored %.1f%% of the pairs; %.2f%% were re-scored where the product could not decide\n",
                   dir_names[d], 100 * (double)r->scored_bf16 / pairs, 100 * (double)r->rescored / pairs);
    }
}

static void retrieval_print_json(const retr_job *j)
{
    cJSON *root = cJSON_CreateObject(), *dirs = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "mode", "retrieval");
    cJSON_AddStringToObject(root, "ground_truth", j->ql ? "label" : "row");
    cJSON_AddStringToObject(root, "query", j->query);
    cJSON_AddStringToObject(root, "gallery", j->gallery);
    if (j->model) cJSON_AddStringToObject(root, "model", j->model);
    else cJSON_AddNullToObject(root, "model");
    cJSON_AddNumberToObject(root, "dim", (double)j->q.cols);
    cJSON_AddStringToObject(root, "precision", j->precision);
    for (int d = 0; d < j->ndir; d++) {
        const cmcr_retrieval_metrics *r = &j->res[d];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "direction", dir_names[d]);
        cJSON_AddNumberToObject(o, "queries", (double)r->queries);
        cJSON_AddNumberToObject(o, "gallery", (double)(d ? j->q.rows : j->g.rows));
        cJSON_AddNumberToObject(o, "recall@1", r->recall[0]);
        cJSON_AddNumberToObject(o, "recall@5", r->recall[1]);
        cJSON_AddNumberToObject(o, "recall@10", r->recall[2]);
        cJSON_AddNumberToObject(o, "median_rank", r->median_rank);
        cJSON_AddNumberToObject(o, "mean_rank", r->mean_rank);
        cJSON_AddNumberToObject(o, "map", r->map);
        cJSON_AddNumberToObject(o, "pairs_scored_bf16", (double)r->scored_bf16);
        cJSON_AddNumberToObject(o, "pairs_rescored", (double)r->rescored);
        cJSON_AddItemToArray(dirs, o);
    }
    cJSON_AddItemToObject(root, "results", dirs);
    print_json(root);
}

static int eval_retrieval(int argc, char **argv)
{
    retr_job j = {0};
    cli_opt opts[] = {
        {"query", OPT_STR, &j.query, NULL, "query embeddings (.npy, rows x width)"},
        {"gallery", OPT_STR, &j.gallery, NULL, "gallery embeddings (.npy, rows x width)"},
        {"model", OPT_STR, &j.model, "", "project both sets through this model (else compare raw, L2-normalised)"},
        {"query-side", OPT_STR, &j.query_side, "", "projector for --query: a or b (required with --model)"},
        {"gallery-side", OPT_STR, &j.gallery_side, "", "projector for --gallery: a or b (required with --model)"},
        {"query-labels", OPT_STR, &j.query_labels, "", "integer labels of the queries (.npy); with --gallery-labels: "
         "relevant = same label (default: query i <-> gallery row i)"},
        {"gallery-labels", OPT_STR, &j.gallery_labels, "", "integer labels of the gallery rows (.npy)"},
        {"both-directions", OPT_FLAG, &j.both, "", "also evaluate gallery->query (default: query->gallery only)"},
        {"precision", OPT_STR, &j.precision, "f32",
         "f32, or bf16: score in bfloat16 through oneDNN (about 1.6x faster with AVX512-BF16 or AMX, ground truth "
         "by row); an item bf16 cannot place within its proven error bound is re-scored, so the metrics equal "
         "f32's (by label up to f32 rounding)"},
        {"json", OPT_FLAG, &j.json, "", "print one JSON object instead of the table"},
        {0}};
    cli_cmd cmd = {"eval retrieval", "", "Cross-modal retrieval: rank every gallery row for each query by cosine "
                   "similarity; report Recall@1/5/10, median and mean rank of the first relevant item, and mAP. "
                   "Ties rank the lower gallery index first.", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    space sp = {"eval retrieval", j.model, NULL};
    rc = retrieval_check_opts(&j);
    if (!rc) rc = retrieval_load(&j, &sp);
    if (!rc) rc = retrieval_run(&j);
    if (!rc && j.json) retrieval_print_json(&j);
    else if (!rc) retrieval_print_table(&j);
    cmcr_matrix_free(&j.q);
    cmcr_matrix_free(&j.g);
    free(j.ql);
    free(j.gl);
    cmcr_model_free(sp.m);
    return rc;
}

/* ------------------------------------------------------------------ zero-shot */

static const char *const ZS = "eval zeroshot";

/* One name per line (cli_read_lines: a final newline is optional, "\r\n" is accepted); exactly
 * want lines. */
static int load_names(const char *cmd, const char *path, int64_t want, cli_lines *nm)
{
    int rc = cli_read_lines(cmd, path, "class names", want, nm);
    if (!rc && nm->n != want)
        rc = cli_error(cmd, 1, "%s: %lld names for %lld classes (one name per line)", path, (long long)nm->n,
                       (long long)want);
    return rc;
}

typedef struct zs_job {
    const char *inputs, *classes, *labels, *model, *side, *classes_side, *class_names;
    bool per_class, json;
    /* from files (--input-files) */
    cli_strs input_files;
    const char *input_encoder, *class_encoder, *tokenizer, *prompt, *precision;
    long long batch, seed;
    bool quiet, xyz_only;
    str_list files;
    const encoder_kind *ki, *kc; /* the kinds of the two encoders */
    const char *released;        /* the released connection the sides were inferred from */
    char side_buf[2], classes_side_buf[2];
    /* the run */
    cmcr_matrix x, c;
    int64_t *y;
    cli_lines nm;
    cmcr_zeroshot_metrics res;
    double *acc;
    int64_t *count;
} zs_job;

static bool from_files(const zs_job *j) { return j->input_files.n > 0; }

static int zeroshot_load(zs_job *j, space *sp)
{
    cmcr_side xs = CMCR_SIDE_A, cs = CMCR_SIDE_A;
    int rc = 0;
    if (j->model) {
        rc = parse_side_opt(sp->cmd, "side", j->side, &xs);
        if (!rc) rc = parse_side_opt(sp->cmd, "classes-side", j->classes_side, &cs);
        if (!rc && cmcr_model_load(j->model, &sp->m)) rc = cli_fail(sp->cmd);
    }
    if (!rc) rc = load_into_space(sp, j->inputs, xs, &j->x);
    if (!rc) rc = load_into_space(sp, j->classes, cs, &j->c);
    if (!rc) rc = same_width(sp, j->inputs, &j->x, j->classes, &j->c);
    if (!rc) rc = load_labels_for(sp->cmd, j->labels, j->x.rows, j->inputs, &j->y);
    if (!rc && j->class_names) rc = load_names(sp->cmd, j->class_names, j->c.rows, &j->nm);
    return rc;
}

/* ------------------------------------------------------------------ zero-shot from files */

/* How often "{}" occurs in s. */
static int holes(const char *s)
{
    int n = 0;
    for (const char *p = strstr(s, "{}"); p; p = strstr(p + 2, "{}")) n++;
    return n;
}

/* Which options go with which mode: embeddings (--inputs, --classes, --labels) or files
 * (--input-files with the encoders, the class names and a prompt). */
static int zeroshot_check_opts(const zs_job *j)
{
    if (!j->model && (j->side || j->classes_side)) return cli_error(ZS, 2, "--side and --classes-side need --model");
    if (!from_files(j)) {
        const char *only = j->input_encoder ? "--input-encoder" : j->class_encoder ? "--class-encoder"
                           : j->tokenizer   ? "--tokenizer"     : j->prompt      ? "--prompt"
                           : j->xyz_only    ? "--xyz-only"      : NULL;
        if (only) return cli_error(ZS, 2, "%s goes with --input-files (embeddings are given with --inputs)", only);
        const char *need = !j->inputs ? "--inputs" : !j->classes ? "--classes" : !j->labels ? "--labels" : NULL;
        if (need) return cli_error(ZS, 2, "%s is required (see --help), unless the inputs are files (--input-files)", need);
        return 0;
    }
    if (j->inputs || j->classes)
        return cli_error(ZS, 2, "%s gives embeddings and --input-files embeds files: give one or the other",
                         j->inputs ? "--inputs" : "--classes");
    if (!j->input_encoder) return cli_error(ZS, 2, "--input-files needs --input-encoder (the checkpoint that embeds them)");
    if (!j->class_encoder)
        return cli_error(ZS, 2, "--input-files needs --class-encoder (a CLIP or LAION-CLAP checkpoint whose text "
                         "tower embeds the prompts)");
    if (!j->class_names) return cli_error(ZS, 2, "--input-files needs --class-names (one class name per line)");
    if (j->prompt && holes(j->prompt) != 1) {
        char *shown = cli_printable(j->prompt);
        int rc = cli_error(ZS, 2, "--prompt '%s' must hold {} exactly once (where the class name goes), not %d times",
                           shown ? shown : "(out of memory)", holes(j->prompt));
        free(shown);
        return rc;
    }
    if (cli_check_precision(ZS, j->precision)) return 2;
    cli_range r[] = {{"batch", j->batch, 1, 4096}, {"seed", j->seed, 0, LLONG_MAX}};
    return cli_check_ranges(ZS, r, 2);
}

/* A message about a file and a name in it (both shown printable): fmt has %s, %lld, %s. */
static int line_error(const char *fmt, const char *path, long long line, const char *name)
{
    char *p = cli_printable(path), *n = cli_printable(name);
    int rc = cli_error(ZS, 1, fmt, p ? p : "(out of memory)", line, n ? n : "(out of memory)");
    free(p);
    free(n);
    return rc;
}

/* --class-names for the prompts: at least one, none empty, none twice (a folder must name
 * one class). */
static int load_class_names(zs_job *j)
{
    if (cli_read_lines(ZS, j->class_names, "class names", -1, &j->nm)) return 1;
    if (j->nm.n == 0) return encode_path_error(ZS, "%s: no class names (the file is empty)", j->class_names);
    for (int64_t i = 0; i < j->nm.n; i++) {
        if (!j->nm.items[i][0]) return line_error("%s:%lld: an empty class name%s", j->class_names, i + 1, "");
        for (int64_t k = 0; k < i; k++)
            if (strcmp(j->nm.items[k], j->nm.items[i]) == 0)
                return line_error("%s:%lld: the class '%s' again", j->class_names, i + 1, j->nm.items[i]);
    }
    return 0;
}

/* The name of path's folder (pointer and length into path); false when the path has none
 * (a bare name, "/x", "./x", "../x"). */
static bool folder_name(const char *path, const char **s, size_t *n)
{
    const char *end = strrchr(path, '/'), *b = end;
    if (!end) return false;
    while (b > path && b[-1] != '/') b--;
    *s = b;
    *n = (size_t)(end - b);
    return *n > 0 && strncmp(b, ".", *n) != 0 && strncmp(b, "..", *n) != 0;
}

/* Without --labels, each file's class is the name of its folder (ModelNet40's layout
 * DIR/<class>/<file>), matched exactly against the class names. */
static int labels_from_folders(zs_job *j)
{
    j->y = malloc((size_t)j->files.n * sizeof *j->y);
    if (!j->y) return cli_error(ZS, 1, "out of memory for %lld labels", (long long)j->files.n);
    for (int64_t i = 0; i < j->files.n; i++) {
        const char *f = j->files.v[i], *s;
        size_t n;
        if (!folder_name(f, &s, &n))
            return encode_path_error(ZS, "%s: no folder to take the class from (give --labels, or lay the files out "
                                     "as DIR/<class>/<file>)", f);
        j->y[i] = -1;
        for (int64_t c = 0; c < j->nm.n && j->y[i] < 0; c++)
            if (strlen(j->nm.items[c]) == n && memcmp(j->nm.items[c], s, n) == 0) j->y[i] = c;
        if (j->y[i] < 0) {
            char *folder = strndup(s, n);
            int rc = line_error("%1$s: its folder '%3$s' is not a class of --class-names (%2$lld names); without "
                                "--labels a file's class is its folder's name", f, (long long)j->nm.n, folder);
            free(folder);
            return rc;
        }
    }
    return 0;
}

/* The encoder kind each side of the released connections takes (as cmcr inspect tells): a
 * model shaped like one (cmcr_model_preset) is taken to be it. */
static const struct released {
    const char *preset, *file, *kind[2], *name[2];
} released[] = {
    {"clap-clip", "clap_clip.pt", {"clap", "clip"}, {"LAION-CLAP", "CLIP"}},
    {"ulip-clip", "ulip_clip.pt", {"clip", "pointbert"}, {"CLIP", "ULIP-2 PointBERT"}},
};

/* The side of an encoder of kind k: --flag's when given, else the side of the released
 * connection that takes k's embeddings; buf gets "a" or "b" for the report. */
static int pick_side(zs_job *j, const space *sp, const char *flag, const char *given, const encoder_kind *k,
                     cmcr_side *side, char *buf)
{
    if (given) {
        int rc = parse_side_opt(ZS, flag, given, side);
        buf[0] = *side == CMCR_SIDE_A ? 'a' : 'b';
        return rc;
    }
    const char *preset = cmcr_model_preset(sp->m);
    const struct released *r = NULL;
    for (size_t i = 0; i < sizeof released / sizeof released[0]; i++)
        if (strcmp(released[i].preset, preset) == 0) r = &released[i];
    if (!r)
        return cli_error(ZS, 2, "--%s is required with --model (a or b): %s is not shaped like a released connection "
                         "(clap_clip.pt, ulip_clip.pt), so the side of the %s encoder cannot be inferred", flag,
                         j->model, k->name);
    for (int s = 0; s < 2; s++)
        if (strcmp(r->kind[s], k->kind) == 0) {
            *side = s ? CMCR_SIDE_B : CMCR_SIDE_A;
            buf[0] = s ? 'b' : 'a';
            j->released = r->file;
            return 0;
        }
    return cli_error(ZS, 2, "--%s: %s is shaped like the released %s, whose sides take %s (a) and %s (b) embeddings, "
                     "not %s ones; give --%s", flag, j->model, r->file, r->name[0], r->name[1], k->name, flag);
}

/* The model and the two sides (given or inferred, said on stderr). */
static int load_model_sides(zs_job *j, space *sp, cmcr_side *xs, cmcr_side *cs)
{
    if (cmcr_model_load(j->model, &sp->m)) return cli_fail(ZS);
    int rc = pick_side(j, sp, "side", j->side, j->ki, xs, j->side_buf);
    if (!rc) rc = pick_side(j, sp, "classes-side", j->classes_side, j->kc, cs, j->classes_side_buf);
    if (rc) return rc;
    if (j->released && !j->quiet)
        fprintf(stderr, "cmcr eval zeroshot: %s is shaped like the released %s: the inputs (%s) go through side %s%s, "
                "the prompts (%s) through side %s%s\n", j->model, j->released, j->ki->name, j->side_buf,
                j->side ? " (--side)" : "", j->kc->name, j->classes_side_buf, j->classes_side ? " (--classes-side)" : "");
    j->side = j->side_buf;
    j->classes_side = j->classes_side_buf;
    return 0;
}

/* Everything that can be checked before loading an encoder: the kinds, the files, the
 * names, the labels, the model and its sides. */
/* The class encoder must have a text tower; --xyz-only goes with point clouds. */
static int check_kinds(const zs_job *j)
{
    char fmt[200];
    if (!j->kc->tokenize) {
        snprintf(fmt, sizeof fmt, "--class-encoder %%s: a %s checkpoint has no text tower: the prompts need CLIP's "
                 "or LAION-CLAP's", j->kc->name);
        return encode_path_error(ZS, fmt, j->class_encoder);
    }
    if (j->xyz_only && strcmp(j->ki->kind, "pointbert") != 0) {
        snprintf(fmt, sizeof fmt, "--xyz-only is for point clouds, and --input-encoder %%s is a %s checkpoint",
                 j->ki->name);
        return encode_path_error(ZS, fmt, j->input_encoder);
    }
    return 0;
}

static int files_prepare(zs_job *j, space *sp, cmcr_side *xs, cmcr_side *cs)
{
    int rc = encoder_probe(ZS, j->input_encoder, &j->ki);
    if (!rc) rc = encoder_probe(ZS, j->class_encoder, &j->kc);
    if (!rc) rc = check_kinds(j);
    if (!rc) rc = encoder_collect(ZS, &j->input_files, "--input-files", j->ki, &j->files);
    if (!rc) rc = load_class_names(j);
    if (!rc && j->labels) rc = load_labels_for(ZS, j->labels, j->files.n, "--input-files", &j->y);
    if (!rc && !j->labels) rc = labels_from_folders(j);
    if (!rc && j->model) rc = load_model_sides(j, sp, xs, cs);
    return rc;
}

/* An encoder's width must be what its side of the model takes. */
static int check_width(const zs_job *j, const space *sp, const char *flag, const char *path, const encoder *e,
                       cmcr_side side)
{
    cmcr_head_shape h = cmcr_model_shape(sp->m, side);
    if (h.in_dim == e->dim) return 0;
    return cli_error(ZS, 1, "%s %s: its %s embeddings are %d wide but side %c of %s takes %lld", flag, path,
                     e->k->name, e->dim, side == CMCR_SIDE_A ? 'a' : 'b', j->model, (long long)h.in_dim);
}

/* Both encoders' widths: each what its side takes, or without a model one space. */
static int check_widths(const zs_job *j, const space *sp, const encoder *ei, cmcr_side xs, const encoder *ec,
                        cmcr_side cs)
{
    if (!sp->m && ei->dim != ec->dim)
        return cli_error(ZS, 1, "--input-encoder %s embeds %d wide and --class-encoder %s %d wide: without --model "
                         "both must be one space", j->input_encoder, ei->dim, j->class_encoder, ec->dim);
    if (!sp->m) return 0;
    int rc = check_width(j, sp, "--input-encoder", j->input_encoder, ei, xs);
    return rc ? rc : check_width(j, sp, "--class-encoder", j->class_encoder, ec, cs);
}

/* The prompts, one per class name, embedded by the class encoder into j->c. */
static int embed_prompts(zs_job *j, encoder *e)
{
    const char *tmpl = j->prompt ? j->prompt : j->ki->prompt, *at = strstr(tmpl, "{}");
    char **texts = calloc((size_t)j->nm.n, sizeof *texts);
    int rc = texts ? 0 : cli_error(ZS, 1, "out of memory for %lld prompts", (long long)j->nm.n);
    for (int64_t i = 0; !rc && i < j->nm.n; i++) {
        size_t n = strlen(tmpl) - 2 + strlen(j->nm.items[i]) + 1;
        if (!(texts[i] = malloc(n))) rc = cli_error(ZS, 1, "out of memory for %lld prompts", (long long)j->nm.n);
        else snprintf(texts[i], n, "%.*s%s%s", (int)(at - tmpl), tmpl, j->nm.items[i], at + 2);
    }
    float *emb = NULL;
    if (!rc) rc = encoder_embed_texts(e, texts, j->nm.n, j->class_names, 1, &emb);
    if (!rc) j->c = (cmcr_matrix){j->nm.n, e->dim, emb};
    for (int64_t i = 0; texts && i < j->nm.n; i++) free(texts[i]);
    free(texts);
    return rc;
}

/* The files, embedded by the input encoder into j->x (L2-normalised, as cmcr embed). */
static int embed_files(zs_job *j, encoder *e)
{
    encoded r;
    int rc = encoder_embed_files(e, &j->files, 1, false, false, &r);
    if (!rc) {
        j->x = (cmcr_matrix){r.rows, e->dim, r.emb};
        r.emb = NULL;
    }
    encoded_free(&r);
    return rc;
}

static int files_embed(zs_job *j, const space *sp, cmcr_side xs, cmcr_side cs)
{
    bool shared = strcmp(j->input_encoder, j->class_encoder) == 0; /* one model for both: loaded once */
    encoder_opts oi = {ZS, j->input_encoder, shared ? j->tokenizer : NULL, NULL, j->precision, j->seed, j->batch,
                       false, j->quiet, NULL, j->xyz_only};
    encoder_opts oc = {ZS, j->class_encoder, j->tokenizer, NULL, j->precision, j->seed, j->batch, true, j->quiet, NULL, false};
    encoder ei = {0}, ec = {0};
    int rc = encoder_open(&oi, j->ki, &ei);
    if (!rc && !shared) rc = encoder_open(&oc, j->kc, &ec);
    encoder *c = shared ? &ei : &ec;
    if (!rc) rc = check_widths(j, sp, &ei, xs, c, cs);
    if (!rc) rc = embed_prompts(j, c); /* first: a model without a tokenizer stops before the long part */
    if (!rc) rc = embed_files(j, &ei);
    encoder_close(&ei);
    encoder_close(&ec);
    return rc;
}

static int zeroshot_files(zs_job *j, space *sp)
{
    cmcr_side xs = CMCR_SIDE_A, cs = CMCR_SIDE_A;
    int rc = files_prepare(j, sp, &xs, &cs);
    if (!rc) rc = files_embed(j, sp, xs, cs);
    if (!rc) rc = into_space(sp, "--input-files", xs, &j->x);
    if (!rc) rc = into_space(sp, "the prompts", cs, &j->c);
    if (!rc) rc = same_width(sp, "--input-files", &j->x, "the prompts", &j->c);
    return rc;
}

/* ------------------------------------------------------------------ zero-shot: the report */

static int zeroshot_run(zs_job *j)
{
    int64_t nc = j->c.rows;
    j->acc = malloc((size_t)nc * sizeof(double));
    j->count = calloc((size_t)nc, sizeof(int64_t));
    if (!j->acc || !j->count) return cli_error(ZS, 1, "out of memory for %lld classes", (long long)nc);
    if (cmcr_eval_zeroshot(j->x.data, j->x.rows, j->c.data, nc, j->x.cols, j->y, &j->res, j->acc)) {
        if (from_files(j))
            return cli_error(ZS, 1, "--input-files (labels %s), classes %s: %s",
                             j->labels ? j->labels : "from the folders", j->class_names, cmcr_last_error());
        return cli_error(ZS, 1, "%s (labels %s), classes %s: %s", j->inputs, j->labels, j->classes,
                         cmcr_last_error());
    }
    for (int64_t i = 0; i < j->x.rows; i++) j->count[j->y[i]]++;
    return 0;
}

static const char *class_name(const zs_job *j, int64_t c)
{
    return j->nm.items ? j->nm.items[c] : NULL;
}

/* From files: what embedded what. */
static void files_print_table(const zs_job *j)
{
    printf("inputs: %lld files embedded by %s (%s)\n", (long long)j->files.n, j->input_encoder, j->ki->name);
    printf("classes: prompts '%s' embedded by %s (%s)\n", j->prompt ? j->prompt : j->ki->prompt, j->class_encoder,
           j->kc->name);
    printf("labels: %s\n", j->labels ? j->labels : "each file's folder name");
}

static void zeroshot_print_table(const zs_job *j)
{
    if (j->model) printf("space: %s (inputs side %s, classes side %s)\n", j->model, j->side, j->classes_side);
    else printf("space: raw embeddings, L2-normalised\n");
    if (from_files(j)) files_print_table(j);
    printf("inputs %lld, classes %lld\n", (long long)j->res.inputs, (long long)j->c.rows);
    printf("top-1 accuracy %6.2f%%\ntop-5 accuracy %6.2f%%\n", 100 * j->res.top1, 100 * j->res.top5);
    if (!j->per_class) return;
    printf("\n%6s  %-24s %8s %8s\n", "class", "name", "inputs", "top-1");
    for (int64_t c = 0; c < j->c.rows; c++) {
        const char *name = class_name(j, c);
        if (isnan(j->acc[c]))
            printf("%6lld  %-24s %8lld %8s\n", (long long)c, name ? name : "-", (long long)j->count[c], "-");
        else
            printf("%6lld  %-24s %8lld %8.2f\n", (long long)c, name ? name : "-", (long long)j->count[c],
                   100 * j->acc[c]);
    }
    printf("(top-1 per class in %%; '-': no inputs of that class)\n");
}

/* From files: the encoders, the prompt, where the labels came from and the sides used. */
static void files_add_json(const zs_job *j, cJSON *root)
{
    cJSON_AddStringToObject(root, "input_encoder", j->input_encoder);
    cJSON_AddStringToObject(root, "class_encoder", j->class_encoder);
    cJSON_AddStringToObject(root, "prompt", j->prompt ? j->prompt : j->ki->prompt);
    if (j->labels) cJSON_AddStringToObject(root, "labels", j->labels);
    else cJSON_AddStringToObject(root, "labels", "folders");
    if (j->model) {
        cJSON_AddStringToObject(root, "side", j->side);
        cJSON_AddStringToObject(root, "classes_side", j->classes_side);
        cJSON_AddBoolToObject(root, "sides_inferred", j->released != NULL);
    }
}

static void zeroshot_print_json(const zs_job *j)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "mode", "zeroshot");
    if (j->model) cJSON_AddStringToObject(root, "model", j->model);
    else cJSON_AddNullToObject(root, "model");
    if (from_files(j)) files_add_json(j, root);
    cJSON_AddNumberToObject(root, "inputs", (double)j->res.inputs);
    cJSON_AddNumberToObject(root, "classes", (double)j->c.rows);
    cJSON_AddNumberToObject(root, "top1", j->res.top1);
    cJSON_AddNumberToObject(root, "top5", j->res.top5);
    if (j->per_class) {
        cJSON *arr = cJSON_CreateArray();
        for (int64_t c = 0; c < j->c.rows; c++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "class", (double)c);
            if (class_name(j, c)) cJSON_AddStringToObject(o, "name", class_name(j, c));
            cJSON_AddNumberToObject(o, "inputs", (double)j->count[c]);
            if (isnan(j->acc[c])) cJSON_AddNullToObject(o, "top1");
            else cJSON_AddNumberToObject(o, "top1", j->acc[c]);
            cJSON_AddItemToArray(arr, o);
        }
        cJSON_AddItemToObject(root, "per_class", arr);
    }
    print_json(root);
}

static int eval_zeroshot(int argc, char **argv)
{
    zs_job j = {0};
    cli_opt opts[] = {
        {"inputs", OPT_STR, &j.inputs, "", "embeddings to classify (.npy, rows x width); or --input-files"},
        {"classes", OPT_STR, &j.classes, "", "one embedding per class (.npy, classes x width), e.g. of prompts"},
        {"labels", OPT_STR, &j.labels, "", "true class of each input (.npy int32/int64, values in [0, classes)); "
         "required with --inputs; with --input-files default: each file's folder name in --class-names"},
        {"model", OPT_STR, &j.model, "", "project both sets through this model (else compare raw, L2-normalised)"},
        {"side", OPT_STR, &j.side, "", "projector for the inputs: a or b (required with --model, except from files "
         "through a model shaped like a released connection: then inferred from --input-encoder's kind)"},
        {"classes-side", OPT_STR, &j.classes_side, "", "projector for the classes: a or b (as --side; from files "
         "inferred from --class-encoder's kind)"},
        {"per-class", OPT_FLAG, &j.per_class, "", "also report top-1 accuracy per class"},
        {"class-names", OPT_STR, &j.class_names, "", "text file with one class name per line: for --per-class, and "
         "with --input-files the classes (their prompts; the folder names)"},
        {"input-files", OPT_STRS, &j.input_files, "", "classify files instead of embeddings: files, folders "
         "(searched at any depth for the encoder's kind: images for CLIP, sounds for LAION-CLAP, point clouds for "
         "PointBERT) or list files (.lst; .txt too, except for point clouds)"},
        {"input-encoder", OPT_STR, &j.input_encoder, "", "the checkpoint that embeds --input-files (CLIP, LAION-CLAP "
         "or ULIP's PointBERT)"},
        {"class-encoder", OPT_STR, &j.class_encoder, "", "the checkpoint whose text tower embeds the prompts (CLIP or "
         "LAION-CLAP)"},
        {"tokenizer", OPT_STR, &j.tokenizer, "", "the class encoder's tokenizer; default: found beside it"},
        {"prompt", OPT_STR, &j.prompt, "", "the prompt of each class, {} = its name (exactly once); default by the "
         "inputs' kind: 'a photo of a {}.' (CLIP), 'This is a sound of {}.' (LAION-CLAP), 'a point cloud of a {}.' "
         "(PointBERT)"},
        {"precision", OPT_STR, &j.precision, "f32", "from files: f32 or bf16 products in the encoders"},
        {"batch", OPT_INT, &j.batch, "32", "from files: files or prompts per forward pass"},
        {"seed", OPT_INT, &j.seed, "0", "from files: LAION-CLAP's chunk starts of clips longer than 10 s; "
         "PointBERT's first sampled point (0: point 0)"},
        {"xyz-only", OPT_FLAG, &j.xyz_only, "", "from files: PointBERT takes the first 3 columns of wider clouds "
         "(ModelNet40's x,y,z,nx,ny,nz); default: refused"},
        {"quiet", OPT_FLAG, &j.quiet, "", "from files: no progress or note of the inferred sides on stderr"},
        {"json", OPT_FLAG, &j.json, "", "print one JSON object instead of the table"},
        {0}};
    cli_cmd cmd = {"eval zeroshot", "", "Zero-shot classification: each input gets the class whose embedding is most "
                   "similar; report top-1 and top-5 accuracy (ties rank the lower class index first). The inputs and "
                   "classes are embeddings (--inputs, --classes), or files and class names embedded here "
                   "(--input-files, --class-names, docs/evaluation.md).", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    space sp = {ZS, j.model, NULL};
    rc = zeroshot_check_opts(&j);
    if (!rc) rc = from_files(&j) ? zeroshot_files(&j, &sp) : zeroshot_load(&j, &sp);
    if (!rc) rc = zeroshot_run(&j);
    if (!rc && j.json) zeroshot_print_json(&j);
    else if (!rc) zeroshot_print_table(&j);
    cmcr_matrix_free(&j.x);
    cmcr_matrix_free(&j.c);
    free(j.y);
    cli_lines_free(&j.nm);
    list_free(&j.files);
    free(j.acc);
    free(j.count);
    cmcr_model_free(sp.m);
    return rc;
}

/* ------------------------------------------------------------------ dispatch */

int cmd_eval(int argc, char **argv)
{
    if (argc < 2) {
        eval_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        eval_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "retrieval") == 0) return eval_retrieval(argc - 1, argv + 1);
    if (strcmp(argv[1], "zeroshot") == 0) return eval_zeroshot(argc - 1, argv + 1);
    if (strcmp(argv[1], "localisation") == 0) return cmd_eval_localisation(argc - 1, argv + 1);
    fprintf(stderr, "cmcr eval: unknown mode '%s' (expected retrieval, zeroshot or localisation)\n", argv[1]);
    return 2;
}
