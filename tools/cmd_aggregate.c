/* cmd_aggregate.c - cmcr aggregate: semantic consistency (memory aggregation). */
#include <stdio.h>
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct agg_cli {
    const char *queries, *memory, *out, *cache_dir, *precision;
    double tau;
    long long top_k, query_block, memory_block;
} agg_cli;

typedef struct progress_line {
    double start, last;
} progress_line;

/* Progress on a terminal: percentage and an estimate of the time left, at most 10 times a second. */
static int show_progress(int64_t done, int64_t total, void *user)
{
    progress_line *pl = user;
    double t = cmcr_now_seconds();
    if (done < total && t - pl->last < 0.1) return 0;
    pl->last = t;
    double frac = total > 0 ? (double)done / (double)total : 1.0, elapsed = t - pl->start;
    fprintf(stderr, "\raggregating: %5.1f%%", 100.0 * frac);
    if (frac > 0 && done < total) fprintf(stderr, ", about %.0f s left   ", elapsed * (1 - frac) / frac);
    else fprintf(stderr, "                    ");
    return 0;
}

static int check_options(const agg_cli *a)
{
    if (!(a->tau > 0) || !isfinite(a->tau)) return cli_error("aggregate", 2, "--tau-mem must be a positive number");
    if (a->top_k < 0) return cli_error("aggregate", 2, "--top-k must be >= 0 (0: full softmax)");
    if (cli_check_precision("aggregate", a->precision)) return 2;
    if (a->query_block < 1 || a->query_block > (1 << 20) || a->memory_block < 1 || a->memory_block > (1 << 20))
        return cli_error("aggregate", 2, "--query-block and --memory-block must be between 1 and 1048576");
    return 0;
}

static int run(const agg_cli *a, const cmcr_matrix *q, const cmcr_matrix *m)
{
    float *out = malloc((size_t)q->rows * (size_t)q->cols * sizeof(float));
    if (!out) return cli_error("aggregate", 1, "out of memory for %lld x %lld output", (long long)q->rows,
                               (long long)q->cols);
    cmcr_aggregate_params p = cmcr_aggregate_default_params();
    p.tau_mem = a->tau;
    p.top_k = a->top_k;
    p.query_block = a->query_block;
    p.memory_block = a->memory_block;
    p.bf16 = strcmp(a->precision, "bf16") == 0;
    progress_line pl = {cmcr_now_seconds(), 0};
    bool tty = cli_is_tty(2) && cli_leader();
    if (tty) {
        p.progress = show_progress;
        p.progress_user = &pl;
    }
    p.mpi_comm = cli_mpi_comm();
    int hit = 0, rc = 0;
    cmcr_status st = cmcr_aggregate_cached(a->cache_dir, q->data, q->rows, m->data, m->rows, q->cols, &p, out, &hit);
    if (tty && !hit) fprintf(stderr, "\n");
    double secs = cmcr_now_seconds() - pl.start;
    long long mem_rows = cli_sum(m->rows); /* each rank holds a slice of the memory */
    if (st) rc = cli_fail("aggregate");
    else if (cli_leader() && cmcr_matrix_save_npy(a->out, out, q->rows, q->cols)) rc = cli_fail("aggregate");
    rc = cli_agree(rc);
    if (!rc && cli_leader() && hit)
        fprintf(stderr, "wrote %lld rows to %s (from the cache)\n", (long long)q->rows, a->out);
    else if (!rc && cli_leader())
        fprintf(stderr, "wrote %lld rows to %s (%lld queries x %lld memory rows in %.2f s, %.1f GFLOP/s, %d rank%s)\n",
                (long long)q->rows, a->out, (long long)q->rows, mem_rows, secs,
                4.0 * (double)q->rows * (double)mem_rows * (double)q->cols / (secs > 0 ? secs : 1e-9) / 1e9,
                cli_ranks(), cli_ranks() == 1 ? "" : "s");
    free(out);
    return rc;
}

int cmd_aggregate(int argc, char **argv)
{
    agg_cli a;
    cli_opt opts[] = {
        {"queries", OPT_STR, &a.queries, NULL, "overlap embeddings (.npy, rows x width), one query per row"},
        {"memory", OPT_STR, &a.memory, NULL, "memory of the other modality of the same MCR (.npy, rows x width)"},
        {"out", OPT_STR, &a.out, NULL, "output .npy: one aggregated, L2-normalised row per query (float32)"},
        {"tau-mem", OPT_DOUBLE, &a.tau, "0.01", "softmax temperature"},
        {"top-k", OPT_INT, &a.top_k, "0", "only the k most similar memory rows take part (0: all)"},
        {"query-block", OPT_INT, &a.query_block, "1024", "queries per block"},
        {"memory-block", OPT_INT, &a.memory_block, "4096", "memory rows per block"},
        {"precision", OPT_STR, &a.precision, "f32",
         "f32, or bf16: both matrix products in bfloat16 through oneDNN (about 2x faster with AVX512-BF16 or "
         "AMX; results within about 1e-3 of f32; the full softmax only: --top-k stays f32)"},
        {"cache-dir", OPT_STR, &a.cache_dir, "",
         "cache results in this directory and reuse them (created if missing; default: no cache)"},
        {0}};
    cli_cmd cmd = {"aggregate", "", "Semantic consistency: for each query q, out = normalize(sum_k softmax_k(q . m_k "
                   "/ tau) m_k) over the memory rows m_k (all L2-normalised), streamed in blocks.", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    if ((rc = check_options(&a)) != 0) return rc;
    cli_file in[2] = {{"--queries", a.queries, NULL, NULL, NULL}, {"--memory", a.memory, NULL, NULL, NULL}},
             out[2] = {{"--out", a.out, CLI_EXT_NPY, NULL, NULL}, {"--cache-dir", a.cache_dir, NULL, NULL, "agg-*.npy"}};
    if ((rc = cli_check_files("aggregate", in, 2, out, 2))) return rc;
    if (a.cache_dir) cli_install_log(CMCR_LOG_INFO); /* say which cache file was used */
    cmcr_matrix q = {0}, m = {0};
    /* With several MPI ranks each reads only its slice of the memory (.npy). */
    cmcr_status st = cmcr_matrix_load(a.queries, &q);
    if (!st) st = cli_ranks() > 1 ? cmcr_matrix_load_shard(a.memory, cli_rank(), cli_ranks(), &m)
                                  : cmcr_matrix_load(a.memory, &m);
    if (cli_agree(st != CMCR_OK)) rc = st ? cli_fail("aggregate") : 1;
    else if (q.cols != m.cols)
        rc = cli_error("aggregate", 1, "width mismatch: %s has rows of width %lld but %s has width %lld", a.queries,
                       (long long)q.cols, a.memory, (long long)m.cols);
    else
        rc = run(&a, &q, &m);
    cmcr_matrix_free(&q);
    cmcr_matrix_free(&m);
    return rc;
}
