/* cmd_train.c - cmcr train: connect two MCRs from unpaired data. */
#include <stdio.h>
#include "cli.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct train_args {
    const char *files[6]; /* overlap-a, overlap-b, memory-a, memory-b, pseudo-a, pseudo-b */
    char *owned[7];       /* the paths --resume took from the checkpoint (files) or derived (out) */
    const char *out, *preset, *checkpoint, *resume, *cache_dir, *metrics;
    long long in_a, in_b, hidden, out_dim, layers, seed;
    cmcr_train_params set; /* the settings (cmcr_train_settings) as given, else the library's defaults */
    cli_setting slots[CLI_MAX_OPTS];
    bool quiet;
} train_args;

enum { NFILES = 6 };
/* The input files' flags, without "--": also their keys in the recorded provenance. */
static const char *const file_flags[NFILES] = {"overlap-a", "overlap-b", "memory-a", "memory-b", "pseudo-a",
                                               "pseudo-b"};

/* ------------------------------------------------------------------ inputs */

typedef struct inputs {
    cmcr_matrix m[NFILES];
    char *provenance;
} inputs;

static void free_inputs(inputs *in)
{
    for (int i = 0; i < NFILES; i++) cmcr_matrix_free(&in->m[i]);
    free(in->provenance);
}

/* True when s prints as itself on one line (see cmcr_printable). */
static bool printable(const char *s)
{
    char *shown = cli_printable(s);
    bool same = shown && strcmp(shown, s) == 0;
    free(shown);
    return same;
}

/* A path as recorded in the model and the checkpoint: printable text (a path whose bytes are
 * not is recorded escaped, so the record stays valid UTF-8 metadata). */
static void add_path(cJSON *o, const char *key, const char *path)
{
    char *shown = cli_printable(path);
    cJSON_AddStringToObject(o, key, shown ? shown : "(out of memory)");
    free(shown);
}

static cJSON *file_json(const char *path, const cmcr_matrix *m)
{
    char hash[32];
    snprintf(hash, sizeof hash, "%016" PRIx64,
             cmcr_hash_bytes(m->data, (size_t)(m->rows * m->cols) * sizeof(float), 0));
    cJSON *o = cJSON_CreateObject();
    add_path(o, "path", path);
    cJSON_AddNumberToObject(o, "rows", (double)m->rows);
    cJSON_AddNumberToObject(o, "cols", (double)m->cols);
    cJSON_AddStringToObject(o, "hash", hash);
    return o;
}

/* Precomputed pseudo embeddings (--pseudo-a/-b, e.g. from `cmcr aggregate`) replace the
 * memories: one row per overlap row, of the same width. */
static int check_pseudo(const train_args *a, const inputs *in)
{
    if (!a->files[4] != !a->files[5]) return cli_error("train", 2, "--pseudo-a and --pseudo-b go together");
    for (int i = 4; i < NFILES; i++)
        if (in->m[i].data && (in->m[i].rows != in->m[i - 4].rows || in->m[i].cols != in->m[i - 4].cols))
            return cli_error("train", 1, "%s is %lld x %lld but %s is %lld x %lld: pseudo embeddings need one row "
                             "per overlap row, of the same width", a->files[i], (long long)in->m[i].rows,
                             (long long)in->m[i].cols, a->files[i - 4], (long long)in->m[i - 4].rows,
                             (long long)in->m[i - 4].cols);
    return 0;
}

static int load_inputs(const train_args *a, int need_memories, inputs *in)
{
    memset(in, 0, sizeof *in);
    if (a->files[4] || a->files[5]) need_memories = 0;
    for (int i = 0; i < NFILES; i++) {
        if (i >= 2 && !a->files[i] && (i >= 4 || !need_memories)) continue;
        if (!a->files[i]) return cli_error("train", 2, "--%s is required (or pass --no-consistency)", file_flags[i]);
        if (cmcr_matrix_load(a->files[i], &in->m[i])) return cli_fail("train");
    }
    if (in->m[0].rows != in->m[1].rows)
        return cli_error("train", 1, "%s has %lld rows but %s has %lld: row i of both must be the same item",
                         a->files[0], (long long)in->m[0].rows, a->files[1], (long long)in->m[1].rows);
    for (int i = 2; i < 4; i++)
        if (in->m[i].data && in->m[i].cols != in->m[i - 2].cols)
            return cli_error("train", 1, "%s rows are %lld wide but %s rows are %lld wide (same MCR, same width)",
                             a->files[i], (long long)in->m[i].cols, a->files[i - 2], (long long)in->m[i - 2].cols);
    int rc = check_pseudo(a, in);
    if (rc) return rc;
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < NFILES; i++)
        if (in->m[i].data) cJSON_AddItemToObject(o, file_flags[i], file_json(a->files[i], &in->m[i]));
    add_path(o, "out", a->out);
    in->provenance = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return 0;
}

/* ------------------------------------------------------------------ parameters */

static int build_shape(const train_args *a, int64_t in_dim, cmcr_head_shape *s)
{
    if (cmcr_preset_shape(a->preset, s)) return cli_fail("train");
    s->in_dim = in_dim;
    if (a->layers > 0) s->layers = (int)a->layers;
    if (a->hidden > 0) s->hidden = a->hidden;
    if (a->out_dim > 0) s->out_dim = a->out_dim;
    if (s->layers == 2 && s->hidden == 0) s->hidden = 2 * s->out_dim;
    return 0;
}

static int build_params(const train_args *a, const inputs *in, cmcr_train_params *p)
{
    *p = a->set;
    int rc = build_shape(a, a->in_a > 0 ? a->in_a : in->m[0].cols, &p->shape_a);
    if (!rc) rc = build_shape(a, a->in_b > 0 ? a->in_b : in->m[1].cols, &p->shape_b);
    p->seed = (uint64_t)a->seed;
    return rc;
}

static size_t setting_size(const cmcr_setting *s)
{
    return s->type == CMCR_SETTING_I64 ? sizeof(int64_t) : s->type == CMCR_SETTING_DOUBLE ? sizeof(double)
                                                                                          : sizeof(int);
}

/* With --resume: what the checkpoint stores from it (the run's mathematics), the other
 * settings (threads, checkpoint interval) from the command line. */
static cmcr_train_params resumed_params(const train_args *a, const cmcr_train_params *stored)
{
    cmcr_train_params p = *stored;
    size_t n;
    const cmcr_setting *s = cmcr_train_settings(&n);
    for (size_t i = 0; i < n; i++)
        if (!s[i].stored) memcpy((char *)&p + s[i].offset, (const char *)&a->set + s[i].offset, setting_size(&s[i]));
    return p;
}

/* Default cache: $XDG_CACHE_HOME/cmcr or ~/.cache/cmcr; "none" disables it. */
static const char *cache_dir(const char *flag, char *buf, size_t n)
{
    if (flag) return strcmp(flag, "none") == 0 ? NULL : flag;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(buf, n, "%s/cmcr", xdg);
    else if (home && *home) snprintf(buf, n, "%s/.cache/cmcr", home);
    else return NULL;
    return buf;
}

/* ------------------------------------------------------------------ progress */

typedef struct progress {
    bool tty, quiet;
    FILE *metrics;
    double last_print;
} progress;

static void fmt_duration(double s, char *buf, size_t n)
{
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

static void print_progress(const progress *pr, const cmcr_train_stats *s)
{
    char eta[32];
    double per_step = s->elapsed / (double)s->step;
    fmt_duration(per_step * (double)(s->total_steps - s->step), eta, sizeof eta);
    if (pr->tty) {
        int width = 24, done = (int)((double)width * (double)s->step / (double)s->total_steps);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < done ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] epoch %lld/%lld step %lld/%lld loss %.4f (native %.3f pseudo %.3f intra %.3f) "
                        "%.0f samples/s ETA %s ",
                bar, (long long)s->epoch, (long long)s->epochs, (long long)s->step, (long long)s->total_steps, s->loss,
                s->loss_native, s->loss_pseudo, s->loss_intra, s->samples_per_sec, eta);
        if (s->step == s->total_steps) fputc('\n', stderr);
    } else {
        fprintf(stderr, "epoch %lld/%lld step %lld/%lld loss %.4f native %.4f pseudo %.4f intra %.4f lr %.3g "
                        "%.0f samples/s ETA %s\n",
                (long long)s->epoch, (long long)s->epochs, (long long)s->step, (long long)s->total_steps, s->loss,
                s->loss_native, s->loss_pseudo, s->loss_intra, s->lr, s->samples_per_sec, eta);
    }
}

static int on_step(const cmcr_train_stats *s, void *user)
{
    progress *pr = user;
    if (pr->metrics) {
        fprintf(pr->metrics,
                "{\"step\":%lld,\"epoch\":%lld,\"loss\":%.6g,\"native\":%.6g,\"pseudo\":%.6g,\"intra\":%.6g,"
                "\"lr\":%.6g,\"samples_per_sec\":%.1f,\"elapsed\":%.3f}\n",
                (long long)s->step, (long long)s->epoch, s->loss, s->loss_native, s->loss_pseudo, s->loss_intra, s->lr,
                s->samples_per_sec, s->elapsed);
        fflush(pr->metrics);
    }
    bool due = pr->tty ? s->elapsed - pr->last_print >= 0.2 : s->elapsed - pr->last_print >= 10.0;
    if (!pr->quiet && (due || s->step == s->total_steps || s->step == 1)) {
        print_progress(pr, s);
        pr->last_print = s->elapsed;
    }
    return stop_requested != 0;
}

/* ------------------------------------------------------------------ the command */

static int finish_model(const train_args *a, cmcr_trainer *t, const cmcr_train_params *p, const char *prov)
{
    cmcr_model *m;
    cmcr_tensors *ts;
    /* Copy through tensors so the trainer's model stays untouched. */
    if (cmcr_model_to_tensors(cmcr_trainer_model(t), &ts)) return cli_fail("train");
    cmcr_status st = cmcr_model_from_tensors(ts, a->out, &m);
    cmcr_tensors_free(ts);
    if (st) return cli_fail("train");
    char *cfg = cmcr_train_params_to_json(p);
    st = cmcr_model_set_meta(m, "cmcr.train_config", cfg ? cfg : "{}");
    if (!st) st = cmcr_model_set_meta(m, "cmcr.data", prov);
    if (!st) st = cmcr_model_save(m, a->out, CMCR_FORMAT_AUTO);
    free(cfg);
    cmcr_model_free(m);
    if (st) return cli_fail("train");
    if (!a->quiet)
        fprintf(stderr, "wrote model %s (preset %s, trained with %s products)\n", a->out,
                cmcr_model_preset(cmcr_trainer_model(t)), p->bf16 ? "bfloat16" : "float32");
    return 0;
}

/* --resume OUT.ckpt writes OUT by default: the pair that train writes (--out OUT, checkpoint
 * OUT.ckpt). NULL when the checkpoint's name is not of that form. */
static char *default_out(const char *ckpt)
{
    size_t n = strlen(ckpt);
    if (n <= 5 || strcmp(ckpt + n - 5, ".ckpt") != 0) return NULL;
    char *out = strndup(ckpt, n - 5);
    if (out && !cli_name_allowed(out, CLI_EXT_MODEL)) {
        free(out);
        return NULL;
    }
    return out;
}

/* For --resume: the stored parameters, and the input files not given on the command line
 * from the paths the checkpoint records. Those are only read, and must hold the data the
 * checkpoint was trained on (its data hash is checked). Where we write never comes from the
 * checkpoint: --out defaults to the checkpoint's name without .ckpt, --checkpoint to OUT.ckpt. */
static int resume_setup(train_args *a, cmcr_train_params *stored)
{
    int64_t step;
    char *prov;
    if (cmcr_checkpoint_info(a->resume, stored, &prov, &step)) return cli_fail("train");
    cJSON *o = cJSON_Parse(prov);
    free(prov);
    for (int i = 0; i < NFILES; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, file_flags[i]);
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(f, "path");
        if (a->files[i] || !cJSON_IsString(path)) continue;
        if (!printable(path->valuestring)) {
            cJSON_Delete(o);
            return cli_error("train", 1, "%s: the recorded --%s path is not printable text; pass --%s", a->resume,
                             file_flags[i], file_flags[i]);
        }
        a->files[i] = a->owned[i] = strdup(path->valuestring);
    }
    cJSON_Delete(o);
    if (!a->out) a->out = a->owned[NFILES] = default_out(a->resume);
    if (!a->out)
        return cli_error("train", 2, "%s: --out is required with --resume (the default, the checkpoint's name "
                         "without .ckpt, must end in " CLI_EXT_MODEL ")", a->resume);
    if (!a->quiet) fprintf(stderr, "resuming %s from step %lld\n", a->resume, (long long)step);
    return 0;
}

/* Every file the run reads and writes, checked before any work (cli_check_files). The cache
 * is written only when the memories are aggregated here. */
static int check_files(const train_args *a, const char *checkpoint, const char *cache, int aggregates)
{
    cli_file in[NFILES + 1], out[4] = {
        {"--out", a->out, CLI_EXT_MODEL, NULL, NULL},
        {"--checkpoint", checkpoint, CLI_EXT_CKPT, a->resume, NULL}, /* training continues in it */
        {"--metrics", a->metrics, CLI_EXT_LOG, NULL, NULL},
        {"--cache-dir", aggregates ? cache : NULL, NULL, NULL, "agg-*.npy"}};
    char names[NFILES][16];
    for (int i = 0; i < NFILES; i++) {
        snprintf(names[i], sizeof names[i], "--%s", file_flags[i]);
        in[i] = (cli_file){names[i], a->files[i], NULL, NULL, NULL};
    }
    in[NFILES] = (cli_file){"--resume", a->resume, NULL, NULL, NULL};
    return cli_check_files("train", in, NFILES + 1, out, 4);
}

/* After Ctrl-C: the command that continues, with --out when --resume would not default to it. */
static void print_resume_hint(const train_args *a, const char *checkpoint)
{
    char *def = default_out(checkpoint);
    bool same = def && strcmp(def, a->out) == 0;
    free(def);
    /* the resumed run writes its checkpoints to OUT.ckpt unless told otherwise */
    size_t n = strlen(a->out);
    bool ckpt_default = strncmp(checkpoint, a->out, n) == 0 && strcmp(checkpoint + n, ".ckpt") == 0;
    fprintf(stderr, "cmcr train: %s; continue with: cmcr train --resume %s%s%s%s%s\n", cmcr_last_error(), checkpoint,
            same ? "" : " --out ", same ? "" : a->out, ckpt_default ? "" : " --checkpoint ",
            ckpt_default ? "" : checkpoint);
}

static int run_training(train_args *a)
{
    cmcr_train_params p, stored = cmcr_train_default_params();
    char cache_buf[4096], ckpt_buf[4096];
    int rc = a->resume ? resume_setup(a, &stored) : 0;
    if (!rc && !a->out) rc = cli_error("train", 2, "--out is required (see --help)");
    if (!rc && snprintf(ckpt_buf, sizeof ckpt_buf, "%s.ckpt", a->out) >= (int)sizeof ckpt_buf)
        rc = cli_error("train", 2, "%s: --out is too long a name", a->out);
    const char *checkpoint = a->checkpoint ? a->checkpoint : ckpt_buf, *cache = cache_dir(a->cache_dir, cache_buf,
                                                                                          sizeof cache_buf);
    int consistency = a->resume ? stored.consistency : a->set.consistency;
    if (!rc) rc = check_files(a, checkpoint, cache, consistency && !a->files[4] && !a->files[5]);
    inputs in;
    memset(&in, 0, sizeof in);
    if (!rc) rc = load_inputs(a, consistency, &in);
    if (!rc) rc = a->resume ? (p = resumed_params(a, &stored), 0) : build_params(a, &in, &p);
    if ((rc = cli_agree(rc))) { /* with MPI ranks: all go on, or none */
        free_inputs(&in);
        return rc;
    }
    p.checkpoint_path = checkpoint;
    p.cache_dir = cache;
    p.mpi_comm = cli_mpi_comm();
    if (!cli_leader()) a->quiet = 1; /* rank 0 reports for all */
    cmcr_train_data d = {.overlap_a = in.m[0].data, .overlap_b = in.m[1].data, .n_overlap = in.m[0].rows,
                         .dim_a = in.m[0].cols, .dim_b = in.m[1].cols, .memory_a = in.m[2].data,
                         .n_memory_a = in.m[2].rows, .memory_b = in.m[3].data, .n_memory_b = in.m[3].rows,
                         .provenance = in.provenance, .pseudo_a = in.m[4].data, .pseudo_b = in.m[5].data,
                         .borrow = 1};
    cmcr_trainer *t;
    if (cmcr_trainer_new(&p, &d, &t)) {
        free_inputs(&in);
        return cli_fail("train");
    }
    /* The trainer reads the overlap files in place (borrow) and has made the pseudo
     * embeddings: the memories, of up to millions of rows, can go before training starts. */
    for (int i = 2; i < 4; i++) cmcr_matrix_free(&in.m[i]);
    if (a->resume && cmcr_trainer_resume(t, a->resume)) rc = cli_fail("train");
    progress pr = {cli_is_tty(2), a->quiet, NULL, -1e9};
    if (!rc && a->metrics && cli_leader() && !(pr.metrics = fopen(a->metrics, "a")))
        rc = cli_error("train", 1, "%s: cannot open the metrics log for writing", a->metrics);
    rc = cli_agree(rc);
    if (!rc) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        cmcr_status st = cmcr_trainer_run(t, on_step, &pr);
        if (pr.tty && !a->quiet && st) fputc('\n', stderr);
        if (st == CMCR_EINTERRUPTED) {
            if (cli_leader()) print_resume_hint(a, p.checkpoint_path);
            rc = 130;
        } else if (st) {
            rc = cli_fail("train");
        }
    }
    if (!rc && cli_leader()) rc = finish_model(a, t, &p, in.provenance);
    rc = cli_agree(rc);
    if (pr.metrics) fclose(pr.metrics);
    cmcr_trainer_free(t);
    free_inputs(&in);
    return rc;
}

/* opts[*n..) = the settings with stored == stored, in the library's order. */
static void add_settings(train_args *a, cli_opt *opts, size_t *n, int stored)
{
    size_t count;
    const cmcr_setting *s = cmcr_train_settings(&count);
    for (size_t i = 0; i < count; i++)
        if (s[i].stored == stored) opts[(*n)++] = cli_setting_opt(&a->slots[i], &s[i], &a->set);
}

/* The options in --help's order: inputs, output and shape; the settings the checkpoint
 * stores, then the seed (stored too); the other settings; files of the run. opts holds
 * CLI_MAX_OPTS and the terminator; false when they do not fit. */
static bool train_options(train_args *a, cli_opt *opts)
{
    const cli_opt head[] = {
        {"overlap-a", OPT_STR, &a->files[0], "", "overlap modality embedded by MCR A (.npy, rows x width A)"},
        {"overlap-b", OPT_STR, &a->files[1], "", "the same items embedded by MCR B (.npy, row i = row i of --overlap-a)"},
        {"memory-a", OPT_STR, &a->files[2], "", "unpaired memory of A's other modality (.npy, any rows)"},
        {"memory-b", OPT_STR, &a->files[3], "", "unpaired memory of B's other modality (.npy, any rows)"},
        {"pseudo-a", OPT_STR, &a->files[4], "", "precomputed pseudo embeddings x_A (cmcr aggregate of --overlap-a over "
         "--memory-a; one row per overlap row): replaces the memories"},
        {"pseudo-b", OPT_STR, &a->files[5], "", "precomputed pseudo embeddings y_B, likewise (with --pseudo-a)"},
        {"out", OPT_STR, &a->out, "", "model file to write (.safetensors keeps the training record; .pt loads in PyTorch)"},
        {"preset", OPT_STR, &a->preset, "clap-clip", "projector architecture: clap-clip (2 layers) or ulip-clip (1 layer)"},
        {"layers", OPT_INT, &a->layers, "0", "override the preset's layer count (1 or 2; 0 = preset)"},
        {"hidden", OPT_INT, &a->hidden, "0", "override the hidden width (0 = preset)"},
        {"out-dim", OPT_INT, &a->out_dim, "0", "override the output width (0 = preset)"},
        {"in-a", OPT_INT, &a->in_a, "0", "input width of projector A (0 = width of --overlap-a)"},
        {"in-b", OPT_INT, &a->in_b, "0", "input width of projector B (0 = width of --overlap-b)"}};
    const cli_opt seed = {"seed", OPT_INT, &a->seed, "1", "random seed (initial weights, batch order, noise)"};
    const cli_opt tail[] = {
        {"checkpoint", OPT_STR, &a->checkpoint, "", "checkpoint file, .ckpt or .safetensors (default: OUT.ckpt)"},
        {"resume", OPT_STR, &a->resume, "", "continue from this checkpoint: its parameters, and the input files not "
         "given here from the paths it records (read only; they must hold its data). Outputs never come from it: "
         "--out defaults to the checkpoint's name without .ckpt"},
        {"cache-dir", OPT_STR, &a->cache_dir, "", "cache of pseudo embeddings (default $XDG_CACHE_HOME/cmcr or ~/.cache/cmcr; none = off)"},
        {"metrics", OPT_STR, &a->metrics, "", "append one JSON line per step to this file (.jsonl, .json, .log or .txt)"},
        {"quiet", OPT_FLAG, &a->quiet, "", "no progress output"}};
    size_t n = sizeof head / sizeof *head, nsettings;
    cmcr_train_settings(&nsettings);
    if (n + 1 + nsettings + sizeof tail / sizeof *tail > CLI_MAX_OPTS) return false;
    memcpy(opts, head, sizeof head);
    add_settings(a, opts, &n, 1);
    opts[n++] = seed;
    add_settings(a, opts, &n, 0);
    memcpy(opts + n, tail, sizeof tail);
    n += sizeof tail / sizeof *tail;
    opts[n] = (cli_opt){0};
    return true;
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    memset(&a, 0, sizeof a);
    a.set = cmcr_train_default_params();
    cli_opt opts[CLI_MAX_OPTS + 1];
    if (!train_options(&a, opts)) return cli_error("train", 2, "internal error: more than %d options", CLI_MAX_OPTS);
    cli_cmd cmd = {"train", "", "Train a C-MCR connection: projectors f_A, f_B aligned through the overlap modality, "
                   "with memory aggregation, noise, inter- and intra-MCR losses (docs/method.md). Ctrl-C writes a "
                   "checkpoint; --resume continues it.", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    const cli_range ranges[] = {{"layers", a.layers, 0, 2}, {"hidden", a.hidden, 0, 65536},
                                {"out-dim", a.out_dim, 0, 65536}, {"in-a", a.in_a, 0, 65536},
                                {"in-b", a.in_b, 0, 65536}, {"seed", a.seed, 0, INT64_MAX}};
    if ((rc = cli_check_ranges("train", ranges, sizeof ranges / sizeof *ranges))) return rc;
    rc = run_training(&a);
    for (int i = 0; i <= NFILES; i++) free(a.owned[i]);
    return rc;
}
