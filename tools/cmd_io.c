/* cmd_io.c - cmcr inspect, convert, project, similarity, info. */
#include <stdio.h>
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ inspect */

static void print_shape(const cmcr_tensor *t)
{
    printf("[");
    for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
    printf("]");
}

static void print_head(const char *side, cmcr_head_shape s)
{
    if (s.layers == 1)
        printf("  side %s: Linear(%lld,%lld) -> BatchNorm1d -> ReLU\n", side, (long long)s.in_dim,
               (long long)s.out_dim);
    else
        printf("  side %s: Linear(%lld,%lld) -> BatchNorm1d -> ReLU -> Linear(%lld,%lld) -> BatchNorm1d\n", side,
               (long long)s.in_dim, (long long)s.hidden, (long long)s.hidden, (long long)s.out_dim);
}

/* Which encoder each side takes, for the released connections' shapes (the official
 * cmcr_model.py): the two files map their heads the opposite way round. */
static void print_sides(const char *preset)
{
    if (strcmp(preset, "clap-clip") == 0)
        printf("  as in the released clap_clip.pt: side a (Head_A) projects CLAP embeddings (audio, text), "
               "side b (Head_B) CLIP embeddings (image, text)\n");
    else if (strcmp(preset, "ulip-clip") == 0)
        printf("  as in the released ulip_clip.pt: side a (Head_A) projects CLIP embeddings (image, text), "
               "side b (Head_B) ULIP embeddings (point cloud, text)\n");
}

int cmd_inspect(int argc, char **argv)
{
    cli_opt opts[] = {{0}};
    cli_cmd cmd = {"inspect", "FILE", "List the tensors (name, dtype, shape) and metadata of a .npy, .safetensors or "
                   ".pt file; for a C-MCR model also its architecture.", 1, opts};
    char *pos[8];
    int rc = cli_parse(&cmd, argc, argv, pos);
    if (rc >= 0) return rc;
    cmcr_format fmt;
    cmcr_tensors *ts;
    if (cmcr_file_format(pos[0], &fmt) || cmcr_tensors_load(pos[0], fmt, &ts)) return cli_fail("inspect");
    size_t n = cmcr_tensors_count(ts);
    printf("%s: %s, %zu tensor%s\n", pos[0], cmcr_format_name(fmt), n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        printf("  %-40s %-5s ", t->name, cmcr_dtype_name(t->dtype));
        print_shape(t);
        printf("\n");
    }
    for (size_t i = 0; i < cmcr_tensors_meta_count(ts); i++) {
        const char *k, *v;
        cmcr_tensors_meta_at(ts, i, &k, &v);
        char *shown = cli_printable(v);
        printf("  meta %s = %s\n", k, shown ? shown : "(out of memory)");
        free(shown);
    }
    cmcr_model *m;
    if (cmcr_model_from_tensors(ts, pos[0], &m) == CMCR_OK) {
        const char *preset = cmcr_model_preset(m);
        printf("C-MCR model, preset %s\n", preset);
        print_head("a (Head_A)", cmcr_model_shape(m, CMCR_SIDE_A));
        print_head("b (Head_B)", cmcr_model_shape(m, CMCR_SIDE_B));
        print_sides(preset);
        cmcr_model_free(m);
    }
    cmcr_tensors_free(ts);
    return 0;
}

/* ------------------------------------------------------------------ convert */

int cmd_convert(int argc, char **argv)
{
    cli_opt opts[] = {{0}};
    cli_cmd cmd = {"convert", "IN OUT", "Convert between .pt, .safetensors and .npy (the output format follows OUT's "
                   "extension). Tensors, dtypes and (for safetensors) metadata are kept.", 2, opts};
    char *pos[8];
    int rc = cli_parse(&cmd, argc, argv, pos);
    if (rc >= 0) return rc;
    cli_file in = {"IN", pos[0], NULL, NULL, NULL}, out = {"OUT", pos[1], CLI_EXT_TENSORS, NULL, NULL};
    if ((rc = cli_check_files("convert", &in, 1, &out, 1))) return rc;
    cmcr_tensors *ts;
    if (cmcr_tensors_load(pos[0], CMCR_FORMAT_AUTO, &ts)) return cli_fail("convert");
    cmcr_status st = cmcr_tensors_save(ts, pos[1], CMCR_FORMAT_AUTO);
    size_t n = cmcr_tensors_count(ts);
    cmcr_tensors_free(ts);
    if (st) return cli_fail("convert");
    fprintf(stderr, "wrote %zu tensor%s to %s\n", n, n == 1 ? "" : "s", pos[1]);
    return 0;
}

/* ------------------------------------------------------------------ project */

static int check_width(const char *cmdname, const char *file, int64_t cols, const char *model, cmcr_side side,
                       const cmcr_model *m)
{
    int64_t want = cmcr_model_shape(m, side).in_dim;
    if (cols == want) return 0;
    return cli_error(cmdname, 1, "%s: rows are %lld wide but side %c of %s expects %lld", file, (long long)cols,
                     side == CMCR_SIDE_A ? 'a' : 'b', model, (long long)want);
}

typedef struct project_job {
    const char *model_path, *in, *out;
    cmcr_side side;
    long long block;
} project_job;

static int show_rows(int64_t done, int64_t total, void *user)
{
    fprintf(stderr, "\rprojected %lld / %lld rows", (long long)done, (long long)total);
    return 0;
}

int cmd_project(int argc, char **argv)
{
    project_job j = {0};
    const char *side_s;
    cli_opt opts[] = {
        {"model", OPT_STR, &j.model_path, NULL, "model file (.pt or .safetensors; released C-MCR checkpoints work)"},
        {"side", OPT_STR, &side_s, NULL, "which projector: a (Head_A) or b (Head_B)"},
        {"in", OPT_STR, &j.in, NULL, "input embeddings, .npy (rows x width; f32, f16 or f64)"},
        {"out", OPT_STR, &j.out, NULL, "output .npy (float32, rows x output width, L2-normalised)"},
        {"block", OPT_INT, &j.block, "4096", "rows per block (memory use is proportional to it)"},
        {0}};
    cli_cmd cmd = {"project", "", "Project embeddings into the connected space: "
                   "out = normalize(head(normalize(in))), streaming the input in blocks.", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (!cli_parse_side(side_s, &j.side)) return cli_error("project", 2, "--side must be a or b, not '%s'", side_s);
    if (j.block < 1 || j.block > (1 << 24)) return cli_error("project", 2, "--block must be between 1 and 16777216");
    cli_file in[2] = {{"--model", j.model_path, NULL, NULL, NULL}, {"--in", j.in, NULL, NULL, NULL}},
             out = {"--out", j.out, CLI_EXT_NPY, NULL, NULL};
    if ((rc = cli_check_files("project", in, 2, &out, 1))) return rc;
    cmcr_model *m = NULL;
    rc = cli_agree(cmcr_model_load(j.model_path, &m) ? cli_fail("project") : 0);
    bool tty = cli_is_tty(2) && cli_leader();
    if (!rc && cmcr_project_npy(m, j.side, j.in, j.out, j.block, cli_mpi_comm(), tty ? show_rows : NULL, NULL))
        rc = cli_fail("project");
    if (tty) fprintf(stderr, "\n");
    if (!rc && cli_leader())
        fprintf(stderr, "wrote %s (%d rank%s)\n", j.out, cli_ranks(), cli_ranks() == 1 ? "" : "s");
    cmcr_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ similarity */

/* One label per row of the matrix (cli_read_lines: a trailing "\r" is dropped); none
 * without --labels-a/-b. */
static int load_labels(const char *path, int64_t rows, cli_lines *l)
{
    memset(l, 0, sizeof *l);
    if (!path) return 0;
    int rc = cli_read_lines("similarity", path, "label file", rows, l);
    if (!rc && l->len == 0) rc = cli_error("similarity", 1, "%s: label file is empty", path);
    else if (!rc && l->n != rows)
        rc = cli_error("similarity", 1, "%s: %lld labels for %lld rows (one label per line expected)", path,
                       (long long)l->n, (long long)rows);
    return rc;
}

static void label_of(const cli_lines *l, int64_t i, char *buf, size_t n)
{
    if (l->items) snprintf(buf, n, "%s", l->items[i]);
    else snprintf(buf, n, "#%lld", (long long)i);
}

static void print_topk(const float *row, int64_t n, int64_t k, const cli_lines *la, const cli_lines *lb, int64_t i)
{
    char name[256];
    label_of(la, i, name, sizeof name);
    printf("%s:", name);
    bool *used = calloc((size_t)n, 1);
    for (int64_t t = 0; t < k && used; t++) {
        int64_t best = -1;
        for (int64_t j = 0; j < n; j++)
            if (!used[j] && (best < 0 || row[j] > row[best])) best = j;
        used[best] = true;
        label_of(lb, best, name, sizeof name);
        printf("%s %s (%.4f)", t ? "," : "", name, row[best]);
    }
    printf("\n");
    free(used);
}

typedef struct sim_job {
    const char *model_path, *a_path, *b_path, *side_a_s, *side_b_s, *labels_a, *labels_b, *out;
    long long top_k;
    double scale;
    bool softmax;
} sim_job;

static int project_all(const char *file, const cmcr_model *m, const char *model_path, cmcr_side side,
                       cmcr_matrix *x)
{
    if (cmcr_matrix_load(file, x)) return cli_fail("similarity");
    int rc = check_width("similarity", file, x->cols, model_path, side, m);
    if (rc) return rc;
    int64_t out_dim = cmcr_model_shape(m, side).out_dim;
    float *y = malloc((size_t)(x->rows * out_dim) * sizeof(float));
    if (!y) return cli_error("similarity", 1, "%s: out of memory", file);
    if (cmcr_model_project(m, side, x->data, x->rows, y)) {
        free(y);
        return cli_error("similarity", 1, "%s: %s", file, cmcr_last_error());
    }
    free(x->data);
    x->data = y;
    x->cols = out_dim;
    return 0;
}

static int similarity_rows(const sim_job *j, const cmcr_matrix *a, const cmcr_matrix *b, const cli_lines *la,
                           const cli_lines *lb)
{
    const int64_t block = 256;
    float *s = malloc((size_t)(block * b->rows) * sizeof(float));
    cmcr_npy_writer *w = NULL;
    if (!s) return cli_error("similarity", 1, "out of memory");
    if (j->out && cmcr_npy_writer_open(j->out, b->rows, &w)) {
        free(s);
        return cli_fail("similarity");
    }
    int rc = 0;
    for (int64_t r0 = 0; r0 < a->rows && !rc; r0 += block) {
        int64_t n = a->rows - r0 < block ? a->rows - r0 : block;
        cmcr_dot_rows(a->data + r0 * a->cols, n, b->data, b->rows, a->cols, s);
        for (int64_t i = 0; i < n; i++) {
            float *row = s + i * b->rows;
            if (j->softmax) cmcr_softmax_rows(row, 1, b->rows, j->scale);
            if (j->top_k > 0) print_topk(row, b->rows, j->top_k < b->rows ? j->top_k : b->rows, la, lb, r0 + i);
        }
        if (w && cmcr_npy_writer_write(w, s, n)) rc = cli_fail("similarity");
    }
    if (w && !rc && cmcr_npy_writer_commit(w)) rc = cli_fail("similarity");
    else if (w && rc) cmcr_npy_writer_abort(w);
    free(s);
    return rc;
}

int cmd_similarity(int argc, char **argv)
{
    sim_job j;
    cli_opt opts[] = {
        {"model", OPT_STR, &j.model_path, NULL, "model file"},
        {"a", OPT_STR, &j.a_path, NULL, "first set of embeddings (.npy), one query per row"},
        {"side-a", OPT_STR, &j.side_a_s, NULL, "projector for --a: a or b"},
        {"b", OPT_STR, &j.b_path, NULL, "second set of embeddings (.npy)"},
        {"side-b", OPT_STR, &j.side_b_s, NULL, "projector for --b: a or b"},
        {"labels-a", OPT_STR, &j.labels_a, "", "text file with one label per row of --a"},
        {"labels-b", OPT_STR, &j.labels_b, "", "text file with one label per row of --b"},
        {"top-k", OPT_INT, &j.top_k, "5", "print the k best matches of each row of --a (0: print nothing)"},
        {"softmax", OPT_FLAG, &j.softmax, "", "show softmax(scale * sim) per row, as the official demo does"},
        {"scale", OPT_DOUBLE, &j.scale, "10", "scale inside the softmax view"},
        {"out", OPT_STR, &j.out, "", "also write the full similarity matrix (rows of --a x rows of --b) as .npy"},
        {0}};
    cli_cmd cmd = {"similarity", "", "Cross-modal similarity in the connected space: cosine between projected rows "
                   "of --a and --b, as top-k matches and/or the full matrix.", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    cmcr_side sa, sb;
    if (!cli_parse_side(j.side_a_s, &sa) || !cli_parse_side(j.side_b_s, &sb))
        return cli_error("similarity", 2, "--side-a and --side-b must be a or b");
    if (j.top_k < 0) return cli_error("similarity", 2, "--top-k must be >= 0");
    if (!(j.scale > 0) || !isfinite(j.scale)) return cli_error("similarity", 2, "--scale must be a positive number");
    cli_file in[5] = {{"--model", j.model_path, NULL, NULL, NULL}, {"--a", j.a_path, NULL, NULL, NULL},
                      {"--b", j.b_path, NULL, NULL, NULL}, {"--labels-a", j.labels_a, NULL, NULL, NULL},
                      {"--labels-b", j.labels_b, NULL, NULL, NULL}},
             out = {"--out", j.out, CLI_EXT_NPY, NULL, NULL};
    if ((rc = cli_check_files("similarity", in, 5, &out, 1))) return rc;
    cmcr_model *m;
    if (cmcr_model_load(j.model_path, &m)) return cli_fail("similarity");
    cmcr_matrix a = {0}, b = {0};
    cli_lines la = {0}, lb = {0};
    rc = project_all(j.a_path, m, j.model_path, sa, &a);
    if (!rc) rc = project_all(j.b_path, m, j.model_path, sb, &b);
    if (!rc) rc = load_labels(j.labels_a, a.rows, &la);
    if (!rc) rc = load_labels(j.labels_b, b.rows, &lb);
    if (!rc) rc = similarity_rows(&j, &a, &b, &la, &lb);
    cli_lines_free(&la);
    cli_lines_free(&lb);
    cmcr_matrix_free(&a);
    cmcr_matrix_free(&b);
    cmcr_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ info */

int cmd_info(int argc, char **argv)
{
    cli_opt opts[] = {{0}};
    cli_cmd cmd = {"info", "", "Show the version and the numeric back-end in use.", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    const char *env = getenv("OPENBLAS_CORETYPE"), *fallback = getenv("CMCR_BLAS_FALLBACK");
    printf("cmcr %s\n", CMCR_VERSION_STRING);
    printf("matrix products: %s, kernels %s%s\n", cmcr_gemm_backend(), cmcr_gemm_kernels(),
           strcmp(cmcr_gemm_backend(), "oneDNN") ? "" : " (CMCR_GEMM=openblas for OpenBLAS)");
    printf("BLAS: OpenBLAS, kernels %s, %d threads", cmcr_blas_core(), cmcr_blas_threads());
    if (fallback) printf(" (chosen by cmcr: OpenBLAS picked the slow %s kernels for this CPU)", fallback);
    else if (env) printf(" (OPENBLAS_CORETYPE=%s set by the user)", env);
    printf("\n");
    if (!cmcr_mpi_support()) printf("MPI: not built in (configure with -DCMCR_MPI=ON)\n");
    else printf("MPI: built in; this run has %d rank%s\n", cli_ranks(), cli_ranks() == 1 ? "" : "s");
    int bf16 = cmcr_bf16_support(); /* when not, the last error says why */
    printf("bfloat16 (train, aggregate, eval retrieval, embed --precision bf16): %s\n",
           bf16 ? "built in (oneDNN)" : cmcr_last_error());
    return 0;
}
