/* cmd_demo.c - cmcr demo: the main job. Generate the built-in two-MCR world, connect it with
 * C-MCR, evaluate X->Y and Y->X retrieval on held-out pairs, and compare with chance, the
 * unconnected spaces, every ablation and a paired oracle. */
#include <stdio.h>
#include "cli.h"
#include "demo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ evaluation helpers */

static int eval_pair(const char *name, const float *x, const float *y, int64_t n, int64_t dim, demo_row *row)
{
    snprintf(row->name, sizeof row->name, "%s", name);
    if (cmcr_eval_retrieval(x, n, y, n, dim, NULL, NULL, &row->xy) ||
        cmcr_eval_retrieval(y, n, x, n, dim, NULL, NULL, &row->yx))
        return cli_fail("demo");
    return 0;
}

/* Project the test pairs through a model and evaluate. */
static int eval_model(const char *name, const cmcr_model *m, const cmcr_world *w, demo_row *row)
{
    int64_t n = w->test_x.rows, out = cmcr_model_shape(m, CMCR_SIDE_A).out_dim;
    float *px = malloc(sizeof(float) * (size_t)(n * out)), *py = malloc(sizeof(float) * (size_t)(n * out));
    int rc = 0;
    if (!px || !py) rc = cli_error("demo", 1, "out of memory");
    if (!rc && (cmcr_model_project(m, CMCR_SIDE_A, w->test_x.data, n, px) ||
                cmcr_model_project(m, CMCR_SIDE_B, w->test_y.data, n, py)))
        rc = cli_fail("demo");
    if (!rc) rc = eval_pair(name, px, py, n, out, row);
    free(px);
    free(py);
    return rc;
}

static void chance_row(int64_t n, demo_row *row)
{
    snprintf(row->name, sizeof row->name, "chance");
    const int ks[3] = {1, 5, 10};
    for (int i = 0; i < 3; i++) row->xy.recall[i] = row->yx.recall[i] = (double)ks[i] / (double)n;
    row->xy.median_rank = row->yx.median_rank = (double)(n + 1) / 2.0;
    row->xy.queries = row->yx.queries = n;
}

/* ------------------------------------------------------------------ training runs */

typedef struct run_ctx {
    demo_curve *curve;
    const char *label;
    int index, count;
    bool tty;
    double start;
} run_ctx;

static int on_step(const cmcr_train_stats *s, void *user)
{
    run_ctx *c = user;
    demo_curve_push(c->curve, s->loss);
    if (c->tty)
        fprintf(stderr, "\r  [%d/%d] %-34s step %4lld/%-4lld loss %8.4f  %6.0f samples/s ", c->index, c->count,
                c->label, (long long)s->step, (long long)s->total_steps, s->loss, s->samples_per_sec);
    return 0;
}

typedef struct variant {
    const char *name;
    int consistency, completion, intra, pseudo, oracle;
} variant;

static const variant variants[] = {
    {"C-MCR full", 1, 1, 1, 1, 0},
    {"  without consistency (memories)", 0, 1, 1, 1, 0},
    {"  without completion (noise)", 1, 0, 1, 1, 0},
    {"  without intra-MCR loss", 1, 1, 0, 1, 0},
    {"  without pseudo-pair loss", 1, 1, 1, 0, 0},
    {"paired oracle (uses X-Y pairs)", 0, 1, 0, 0, 1},
};
#define N_VARIANTS ((int)(sizeof variants / sizeof *variants))

/* Pseudo embeddings x_A, y_B of the overlap set: aggregated once, shared by every run. */
typedef struct pseudo {
    float *a, *b;
} pseudo;

static int aggregate_once(const demo_opts *o, const cmcr_world *w, pseudo *ps)
{
    cmcr_aggregate_params ap = cmcr_aggregate_default_params();
    ap.tau_mem = o->train.tau_mem;
    ap.top_k = o->train.agg_top_k;
    double t0 = cmcr_now_seconds();
    ps->a = malloc(sizeof(float) * (size_t)(w->overlap_a.rows * w->overlap_a.cols));
    ps->b = malloc(sizeof(float) * (size_t)(w->overlap_b.rows * w->overlap_b.cols));
    if (!ps->a || !ps->b) return cli_error("demo", 1, "out of memory");
    if (cmcr_aggregate(w->overlap_a.data, w->overlap_a.rows, w->memory_a.data, w->memory_a.rows, w->overlap_a.cols,
                       &ap, ps->a) ||
        cmcr_aggregate(w->overlap_b.data, w->overlap_b.rows, w->memory_b.data, w->memory_b.rows, w->overlap_b.cols,
                       &ap, ps->b))
        return cli_fail("demo");
    fprintf(stderr, "semantic consistency: aggregated both memories for %lld overlap items in %.1f s\n",
            (long long)w->overlap_a.rows, cmcr_now_seconds() - t0);
    return 0;
}

static int train_variant(const demo_opts *o, const cmcr_world *w, const pseudo *ps, const variant *v, int index,
                         demo_row *row, demo_curve *curve)
{
    cmcr_train_params p = o->train;
    p.consistency = v->consistency;
    p.completion = v->completion;
    p.intra = v->intra;
    p.pseudo_pair = v->pseudo;
    const cmcr_matrix *sa = v->oracle ? &w->oracle_x : &w->overlap_a, *sb = v->oracle ? &w->oracle_y : &w->overlap_b;
    cmcr_train_data d = {.overlap_a = sa->data, .overlap_b = sb->data, .n_overlap = sa->rows, .dim_a = sa->cols,
                         .dim_b = sb->cols, .memory_a = w->memory_a.data, .n_memory_a = w->memory_a.rows,
                         .memory_b = w->memory_b.data, .n_memory_b = w->memory_b.rows,
                         .pseudo_a = v->oracle ? NULL : ps->a, .pseudo_b = v->oracle ? NULL : ps->b};
    p.shape_a.in_dim = sa->cols;
    p.shape_b.in_dim = sb->cols;
    run_ctx ctx = {curve, v->name, index, N_VARIANTS, cli_is_tty(2), cmcr_now_seconds()};
    while (ctx.label[0] == ' ') ctx.label++;
    snprintf(curve->name, sizeof curve->name, "%s", ctx.label);
    cmcr_trainer *t;
    if (cmcr_trainer_new(&p, &d, &t)) return cli_fail("demo");
    int rc = cmcr_trainer_run(t, on_step, &ctx) ? cli_fail("demo") : 0;
    if (!rc) rc = eval_model(v->name, cmcr_trainer_model(t), w, row);
    row->seconds = cmcr_now_seconds() - ctx.start;
    if (!ctx.tty)
        fprintf(stderr, "  [%d/%d] %-34s %lld steps, final loss %.4f, %.1f s\n", index, N_VARIANTS, ctx.label,
                (long long)cmcr_trainer_step(t), curve->n ? curve->loss[curve->n - 1] : NAN, row->seconds);
    else
        fprintf(stderr, "\r  [%d/%d] %-34s %lld steps, final loss %.4f, %.1f s%30s\n", index, N_VARIANTS, ctx.label,
                (long long)cmcr_trainer_step(t), curve->n ? curve->loss[curve->n - 1] : NAN, row->seconds, "");
    cmcr_trainer_free(t);
    return rc;
}

/* ------------------------------------------------------------------ the table */

static void print_table(const demo_row *rows, int n, FILE *f)
{
    fprintf(f, "\n%-36s | %-22s | %-22s\n", "", "X -> Y (A's X to B's Y)", "Y -> X");
    fprintf(f, "%-36s | %6s %6s %6s  | %6s %6s %6s\n", "method", "R@1", "R@5", "R@10", "R@1", "R@5", "R@10");
    fprintf(f, "%.36s-+-%.22s-+-%.22s\n", "------------------------------------------------",
            "------------------------------", "------------------------------");
    for (int i = 0; i < n; i++) {
        const demo_row *r = &rows[i];
        fprintf(f, "%-36s | %6.2f %6.2f %6.2f  | %6.2f %6.2f %6.2f\n", r->name, 100 * r->xy.recall[0],
                100 * r->xy.recall[1], 100 * r->xy.recall[2], 100 * r->yx.recall[0], 100 * r->yx.recall[1],
                100 * r->yx.recall[2]);
    }
    fprintf(f, "(Recall@k in %%, %lld held-out X-Y pairs; ground truth by row: the same instance)\n",
            (long long)rows[0].xy.queries);
}

/* ------------------------------------------------------------------ the command */

static int run_demo(demo_opts *o)
{
    double t0 = cmcr_now_seconds();
    cmcr_world w;
    fprintf(stderr, "generating the synthetic two-MCR world (seed %llu) ...\n", (unsigned long long)o->world.seed);
    if (cmcr_synth_generate(&o->world, &w)) return cli_fail("demo");
    fprintf(stderr, "  overlap %lld pairs, memories %lld + %lld, test %lld pairs, widths %lld / %lld\n",
            (long long)w.overlap_a.rows, (long long)w.memory_a.rows, (long long)w.memory_b.rows,
            (long long)w.test_x.rows, (long long)w.overlap_a.cols, (long long)w.overlap_b.cols);
    fprintf(stderr, "  modality gap in A: matching X-S pairs cos %.2f, same-modality neighbours cos %.2f\n",
            w.gap_cos_pair_a, w.gap_cos_same_a);
    demo_row rows[N_VARIANTS + 3];
    demo_curve curves[N_VARIANTS];
    memset(rows, 0, sizeof rows);
    memset(curves, 0, sizeof curves);
    int nrows = 0, rc = 0;
    chance_row(w.test_x.rows, &rows[nrows++]);
    if (w.test_x.cols == w.test_y.cols)
        rc = eval_pair("raw spaces, no connection", w.test_x.data, w.test_y.data, w.test_x.rows, w.test_x.cols,
                       &rows[nrows++]);
    cmcr_model *untrained = NULL;
    o->train.shape_a.in_dim = w.overlap_a.cols;
    o->train.shape_b.in_dim = w.overlap_b.cols;
    if (!rc && cmcr_model_new(&o->train.shape_a, &o->train.shape_b, o->train.seed, &untrained)) rc = cli_fail("demo");
    if (!rc) rc = eval_model("untrained projectors", untrained, &w, &rows[nrows++]);
    cmcr_model_free(untrained);
    pseudo ps = {NULL, NULL};
    if (!rc) rc = aggregate_once(o, &w, &ps);
    fprintf(stderr, "training %d connections (%lld epochs each, batch %lld):\n", N_VARIANTS,
            (long long)o->train.epochs, (long long)o->train.batch);
    for (int i = 0; i < N_VARIANTS && !rc; i++)
        rc = train_variant(o, &w, &ps, &variants[i], i + 1, &rows[nrows++], &curves[i]);
    if (!rc) {
        print_table(rows, nrows, stdout);
        printf("total time %.1f s\n", cmcr_now_seconds() - t0);
        if (o->report_dir) rc = demo_write_report(o, &w, rows, nrows, curves, N_VARIANTS);
        if (!rc && o->report_dir) fprintf(stderr, "report: %s/index.html\n", o->report_dir);
    }
    for (int i = 0; i < N_VARIANTS; i++) free(curves[i].loss);
    free(ps.a);
    free(ps.b);
    cmcr_world_free(&w);
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    demo_opts o;
    memset(&o, 0, sizeof o);
    o.world = cmcr_synth_default_params();
    o.train = cmcr_train_default_params();
    long long seed, epochs, batch, threads, overlap, memory, test;
    const char *preset;
    cli_opt opts[] = {
        {"seed", OPT_INT, &seed, "1", "seed of the world and of training"},
        {"overlap", OPT_INT, &overlap, "20000", "overlap items (S embedded by both MCRs)"},
        {"memory", OPT_INT, &memory, "20000", "rows of each unpaired memory"},
        {"test", OPT_INT, &test, "2000", "held-out X-Y test pairs"},
        {"preset", OPT_STR, &preset, "ulip-clip", "projector architecture (ulip-clip is 1 layer, clap-clip 2)"},
        {"epochs", OPT_INT, &epochs, "4", "epochs per training run (4 keeps the demo under a minute on 2 cores)"},
        {"batch", OPT_INT, &batch, "1024", "batch size"},
        {"threads", OPT_INT, &threads, "0", "threads (0 = all cores)"},
        {"report", OPT_STR, &o.report_dir, "", "also write an HTML report (loss curves, bar chart) into this directory"},
        {0}};
    cli_cmd cmd = {"demo", "", "The main job: generate the built-in synthetic world, train C-MCR and its ablations and "
                   "a paired oracle, and print X->Y / Y->X retrieval against chance and the unconnected spaces.", 0,
                   opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    const long long rows = 1LL << 28; /* as cmcr synth */
    const cli_range ranges[] = {{"seed", seed, 0, INT64_MAX}, {"epochs", epochs, 1, INT64_MAX},
                                {"batch", batch, 2, INT64_MAX}, {"threads", threads, 0, 65536},
                                {"overlap", overlap, 2, rows}, {"memory", memory, 1, rows}, {"test", test, 10, rows}};
    if ((rc = cli_check_ranges("demo", ranges, sizeof ranges / sizeof *ranges))) return rc;
    o.world.seed = (uint64_t)seed;
    o.world.n_overlap = overlap;
    o.world.n_memory_a = o.world.n_memory_b = memory;
    o.world.n_test = test;
    o.world.n_oracle = overlap;
    if (cmcr_preset_shape(preset, &o.train.shape_a)) return cli_fail("demo");
    o.train.shape_b = o.train.shape_a;
    o.train.seed = (uint64_t)seed;
    o.train.epochs = epochs;
    o.train.batch = batch;
    o.train.threads = (int)threads;
    o.preset = preset;
    return run_demo(&o);
}
