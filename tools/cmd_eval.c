/* cmd_eval.c - cmcr eval retrieval | zeroshot: metrics of a connected space. */
#include <stdio.h>
#include "cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void eval_usage(FILE *to)
{
    fprintf(to, "usage: cmcr eval MODE [options]   (cmcr eval MODE --help for its options)\n\n"
                "Evaluate a connected space (or one MCR's raw space) on held-out data.\n\n"
                "modes:\n"
                "  retrieval    Recall@1/5/10, median/mean rank and mAP of query -> gallery retrieval\n"
                "  zeroshot     top-1/top-5 (and per-class) accuracy of zero-shot classification\n");
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

/* Load a matrix and bring it into the space: projected through side (with a model) or
 * L2-normalised (without). */
static int load_into_space(const space *sp, const char *path, cmcr_side side, cmcr_matrix *x)
{
    if (cmcr_matrix_load(path, x)) return cli_fail(sp->cmd);
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
    cmcr_matrix x, c;
    int64_t *y;
    cli_lines nm;
    cmcr_zeroshot_metrics res;
    double *acc;
    int64_t *count;
} zs_job;

static int zeroshot_load(zs_job *j, space *sp)
{
    cmcr_side xs = CMCR_SIDE_A, cs = CMCR_SIDE_A;
    int rc = 0;
    if (!j->model && (j->side || j->classes_side)) return cli_error(sp->cmd, 2, "--side and --classes-side need --model");
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

static int zeroshot_run(zs_job *j)
{
    int64_t nc = j->c.rows;
    j->acc = malloc((size_t)nc * sizeof(double));
    j->count = calloc((size_t)nc, sizeof(int64_t));
    if (!j->acc || !j->count) return cli_error("eval zeroshot", 1, "out of memory for %lld classes", (long long)nc);
    if (cmcr_eval_zeroshot(j->x.data, j->x.rows, j->c.data, nc, j->x.cols, j->y, &j->res, j->acc))
        return cli_error("eval zeroshot", 1, "%s (labels %s), classes %s: %s", j->inputs, j->labels, j->classes,
                         cmcr_last_error());
    for (int64_t i = 0; i < j->x.rows; i++) j->count[j->y[i]]++;
    return 0;
}

static const char *class_name(const zs_job *j, int64_t c)
{
    return j->nm.items ? j->nm.items[c] : NULL;
}

static void zeroshot_print_table(const zs_job *j)
{
    if (j->model) printf("space: %s (inputs side %s, classes side %s)\n", j->model, j->side, j->classes_side);
    else printf("space: raw embeddings, L2-normalised\n");
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

static void zeroshot_print_json(const zs_job *j)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "mode", "zeroshot");
    if (j->model) cJSON_AddStringToObject(root, "model", j->model);
    else cJSON_AddNullToObject(root, "model");
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
        {"inputs", OPT_STR, &j.inputs, NULL, "embeddings to classify (.npy, rows x width)"},
        {"classes", OPT_STR, &j.classes, NULL, "one embedding per class (.npy, classes x width), e.g. of prompts"},
        {"labels", OPT_STR, &j.labels, NULL, "true class of each input (.npy int32/int64, values in [0, classes))"},
        {"model", OPT_STR, &j.model, "", "project both sets through this model (else compare raw, L2-normalised)"},
        {"side", OPT_STR, &j.side, "", "projector for --inputs: a or b (required with --model)"},
        {"classes-side", OPT_STR, &j.classes_side, "", "projector for --classes: a or b (required with --model)"},
        {"per-class", OPT_FLAG, &j.per_class, "", "also report top-1 accuracy per class"},
        {"class-names", OPT_STR, &j.class_names, "", "text file with one class name per line, for --per-class"},
        {"json", OPT_FLAG, &j.json, "", "print one JSON object instead of the table"},
        {0}};
    cli_cmd cmd = {"eval zeroshot", "", "Zero-shot classification: each input gets the class whose embedding is most "
                   "similar; report top-1 and top-5 accuracy (ties rank the lower class index first).", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    space sp = {"eval zeroshot", j.model, NULL};
    rc = zeroshot_load(&j, &sp);
    if (!rc) rc = zeroshot_run(&j);
    if (!rc && j.json) zeroshot_print_json(&j);
    else if (!rc) zeroshot_print_table(&j);
    cmcr_matrix_free(&j.x);
    cmcr_matrix_free(&j.c);
    free(j.y);
    cli_lines_free(&j.nm);
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
    fprintf(stderr, "cmcr eval: unknown mode '%s' (expected retrieval or zeroshot)\n", argv[1]);
    return 2;
}
