/* cmd_index.c - cmcr index: a gallery (docs/search.md) of the projected embeddings of every
 * file under the inputs that the space's encoders read (images, sounds, point clouds, .txt
 * texts), kept up to date incrementally and saved atomically as it goes.
 *
 * A file whose absolute path, size and modification time match a row of the gallery keeps its
 * row without being read; otherwise its content fingerprint decides (equal: the row is kept
 * with the new time; different: the file is embedded again); rows of files no longer under the
 * inputs go. The gallery is written at the end, every --save-every seconds with the rows done
 * so far, and on SIGINT/SIGTERM (then exit 130): a run killed in any way leaves the last save,
 * from which the next run goes on (its rows match by path, size and time). */
#define _DEFAULT_SOURCE /* realpath, strdup */
#include <stdio.h>
#include "recorded.h"
#include "space.h"
#include "textfile.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct index_cli {
    const char *gallery, *model, *encoder[2], *tokenizer[2], *text_side, *precision;
    long long batch, save_every, seed;
    bool skip_bad, quiet, rebuild, xyz_only;
    cli_strs inputs;
} index_cli;

/* One input file. */
typedef struct item {
    char *path; /* absolute, symbolic links resolved */
    cmcr_modality m;
    int side;
    int64_t size, mtime, old; /* old: its row in the gallery, or -1 */
    bool embed;               /* to be embedded (new, or changed) */
} item;

typedef struct counts {
    int64_t kept, touched, added, changed, dropped, skipped;
} counts;

typedef struct run {
    const index_cli *a;
    space s;
    cmcr_gallery *old;           /* the gallery as it was (NULL: none, or --rebuild) */
    cmcr_gallery_writer *w;
    item *items;
    int64_t n, todo, done;       /* files, files to embed, embedded so far */
    counts c;
    str_list skipped;            /* the messages of the files left out (--skip-bad) */
    double start, last_save;
    bool progress, open_line;
} run;

static volatile sig_atomic_t stop_requested;

/* The first signal asks for a save and exit 130; a second one ends at once (the default:
 * temporary files removed, the last save stays). */
static void on_signal(int sig)
{
    if (stop_requested) {
        cmcr_remove_temp_files();
        signal(sig, SIG_DFL);
        raise(sig);
    }
    stop_requested = 1;
}

static char side_letter(int side) { return side ? 'b' : 'a'; }
static void end_line(run *r);

/* ------------------------------------------------------------------ metadata */

static void utc_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A path as the gallery records it: absolute (the file exists: it was loaded). */
static char *absolute(const char *path)
{
    char real[PATH_MAX];
    return strdup(realpath(path, real) ? real : path);
}

/* The metadata of this run's space: model, encoders, text side, precision (docs/search.md). */
typedef struct space_meta {
    char *keys[24], *values[24];
    int n;
} space_meta;

static int meta_add(space_meta *sm, const char *key, const char *value)
{
    sm->keys[sm->n] = strdup(key);
    sm->values[sm->n] = strdup(value);
    return sm->keys[sm->n] && sm->values[sm->n++] ? 0 : cli_error("index", 1, "out of memory");
}

static void meta_free(space_meta *sm)
{
    for (int i = 0; i < sm->n; i++) free(sm->keys[i]), free(sm->values[i]);
    sm->n = 0;
}

/* KEY, KEY_fingerprint and KEY_stat of file path (recorded.h); all empty without one. */
static int file_meta(space_meta *sm, const cmcr_gallery *old, const char *key, const char *path)
{
    recorded_file rf = {0};
    char k[64];
    int rc = path ? recorded_fingerprint("index", old, key, path, &rf) : 0;
    if (!rc) rc = meta_add(sm, key, rf.path);
    snprintf(k, sizeof k, "%s_fingerprint", key);
    if (!rc) rc = meta_add(sm, k, rf.fp);
    snprintf(k, sizeof k, "%s_stat", key);
    if (!rc) rc = meta_add(sm, k, rf.stat);
    return rc;
}

static int path_meta(space_meta *sm, const char *key, const char *path)
{
    char *p = path ? absolute(path) : strdup("");
    int rc = p ? meta_add(sm, key, p) : cli_error("index", 1, "out of memory");
    free(p);
    return rc;
}

/* The space as the gallery records it: model, encoders, tokenizers, text side, precision. */
static int space_metadata(const index_cli *a, const space *s, const cmcr_gallery *old, space_meta *sm)
{
    char key[40];
    int rc = file_meta(sm, old, "model", a->model);
    for (int side = 0; side < 2 && !rc; side++) {
        snprintf(key, sizeof key, "encoder_%c", side_letter(side));
        rc = file_meta(sm, old, key, a->encoder[side]);
        snprintf(key, sizeof key, "encoder_%c_kind", side_letter(side));
        if (!rc) rc = meta_add(sm, key, s->kind[side] ? s->kind[side]->kind : "");
        snprintf(key, sizeof key, "tokenizer_%c", side_letter(side));
        if (!rc) rc = path_meta(sm, key, a->tokenizer[side]);
    }
    char ts[2] = {s->text_side >= 0 ? side_letter(s->text_side) : '\0', '\0'};
    if (!rc) rc = meta_add(sm, "text_side", ts);
    if (!rc) rc = meta_add(sm, "precision", s->o.precision);
    char seed[24];
    snprintf(seed, sizeof seed, "%lld", (long long)a->seed);
    if (!rc) rc = meta_add(sm, "seed", seed);
    if (!rc) rc = meta_add(sm, "xyz_only", a->xyz_only ? "1" : "0");
    return rc;
}

static const char *meta_value(const space_meta *sm, const char *key)
{
    for (int i = 0; i < sm->n; i++)
        if (strcmp(sm->keys[i], key) == 0) return sm->values[i];
    return "";
}

/* The gallery continues only with what made it: the same model, precision, --seed and
 * --xyz-only (both change embeddings), and the same encoder and text side where both runs have
 * one (a run with only one side's encoder may add to a gallery made with both). */
static int check_compatible(const index_cli *a, const cmcr_gallery *g, const space_meta *sm)
{
    static const struct {
        const char *key, *what;
        bool always; /* false: compared only when both runs have a value */
    } same[] = {{"model_fingerprint", "model", true},
                {"encoder_a_fingerprint", "side a encoder", false},
                {"encoder_b_fingerprint", "side b encoder", false},
                {"text_side", "text side", false},
                {"precision", "precision", true},
                {"seed", "--seed", true},
                {"xyz_only", "--xyz-only", true}};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        const char *had = cmcr_gallery_meta(g, same[i].key), *now = meta_value(sm, same[i].key);
        if (!had) had = "";
        bool both = had[0] && now[0];
        if ((both || same[i].always) && strcmp(had, now) != 0)
            return cli_error("index", 1, "%s was made with another %s (%s '%s', now '%s'): give a new --gallery, or "
                             "--rebuild to embed every file again", a->gallery, same[i].what, same[i].key, had, now);
    }
    return 0;
}

/* ------------------------------------------------------------------ the old gallery */

/* An existing file at --gallery must be a gallery: it is never overwritten otherwise. */
static int load_old(run *r)
{
    struct stat st;
    if (stat(r->a->gallery, &st) != 0) return 0;
    if (cmcr_gallery_load(r->a->gallery, &r->old))
        return cli_error("index", 1, "%s; an existing file that is not a readable gallery is never overwritten: "
                         "give another --gallery", cmcr_last_error());
    return 0;
}

/* The run goes on from the old gallery (unless --rebuild) only with what made it. */
static int check_old(run *r, const space_meta *sm)
{
    int rc = 0;
    if (!r->old || r->a->rebuild) {
    } else if (cmcr_gallery_dim(r->old) != r->s.dim) {
        rc = cli_error("index", 1, "%s holds rows %lld wide, but %s projects to %lld: give a new --gallery, or "
                       "--rebuild", r->a->gallery, (long long)cmcr_gallery_dim(r->old), r->a->model, (long long)r->s.dim);
    } else {
        rc = check_compatible(r->a, r->old, sm);
    }
    if (r->a->rebuild) { /* nothing of it is kept, not even its creation time */
        cmcr_gallery_free(r->old);
        r->old = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------ inputs */

static int by_path(const void *x, const void *y)
{
    return strcmp(((const item *)x)->path, ((const item *)y)->path);
}

/* Each collected file: absolute, routed to its side, stat'ed; sorted by path, duplicates (one
 * file given twice, or through two links) once. */
static int gather(run *r, const str_list *files)
{
    r->items = calloc((size_t)(files->n ? files->n : 1), sizeof *r->items);
    if (!r->items) return cli_error("index", 1, "out of memory for %lld files", (long long)files->n);
    char gal[PATH_MAX];
    bool have_gal = realpath(r->a->gallery, gal) != NULL;
    for (int64_t i = 0; i < files->n; i++) {
        item *it = &r->items[r->n];
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(files->v[i], real) || stat(real, &st) != 0)
            return encode_path_error("index", "%s: cannot open the file", files->v[i]);
        if (have_gal && strcmp(real, gal) == 0)
            return encode_path_error("index", "%s: --gallery is one of the inputs: it is never overwritten", files->v[i]);
        if (space_route(&r->s, real, &it->m, &it->side)) return 1;
        if (!(it->path = strdup(real))) return cli_error("index", 1, "out of memory");
        it->size = (int64_t)st.st_size;
        it->mtime = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        it->old = -1;
        r->n++;
    }
    if (r->n > 1) qsort(r->items, (size_t)r->n, sizeof *r->items, by_path);
    int64_t k = 0;
    for (int64_t i = 0; i < r->n; i++) {
        if (k && strcmp(r->items[k - 1].path, r->items[i].path) == 0) free(r->items[i].path);
        else r->items[k++] = r->items[i];
    }
    r->n = k;
    return 0;
}

static void free_items(run *r)
{
    for (int64_t i = 0; i < r->n; i++) free(r->items[i].path);
    free(r->items);
}

/* ------------------------------------------------------------------ deciding */

/* A file that cannot be read (message msg, naming it): left out with --skip-bad (the message
 * kept for the summary), else the error. 0, or 1 after printing. */
static int bad_file(run *r, const char *msg)
{
    if (!r->a->skip_bad) {
        end_line(r);
        return cli_error("index", 1, "%s (--skip-bad goes on without such files)", msg);
    }
    r->c.skipped++;
    return list_push(&r->skipped, strdup(msg)) ? 0 : cli_error("index", 1, "out of memory");
}

/* it's content fingerprint into *h: 0, -1 when the file was left out (--skip-bad), 1 after
 * printing the error. */
static int hash_item(run *r, const item *it, uint64_t *h)
{
    if (!cmcr_fingerprint_path(it->path, h)) return 0;
    char *shown = cli_printable(cmcr_last_error());
    int rc = bad_file(r, shown ? shown : "?");
    free(shown);
    return rc ? 1 : -1;
}

static int add_row(run *r, const item *it, uint64_t hash, const float *emb)
{
    cmcr_gallery_row row = {it->path, it->m, hash, it->size, it->mtime, emb};
    return cmcr_gallery_writer_add(r->w, &row) ? cli_fail("index") : 0;
}

/* Kept as it is (same size and time), kept with the new time (same content), or to embed (the
 * item's old stays >= 0 for a changed file, -1 for a new one; counted in r->todo). */
static int decide(run *r, item *it)
{
    cmcr_gallery_row old;
    int64_t row = r->old ? cmcr_gallery_find(r->old, it->path) : -1;
    if (row < 0 || cmcr_gallery_get_row(r->old, row, &old) || old.modality != it->m) {
        it->old = -1;
        it->embed = true;
        r->todo++;
        return 0;
    }
    it->old = row;
    if (old.size == it->size && old.mtime_ns == it->mtime) {
        r->c.kept++;
        return cmcr_gallery_writer_keep(r->w, r->old, row) ? cli_fail("index") : 0;
    }
    uint64_t h;
    int rc = hash_item(r, it, &h);
    if (rc) return rc > 0 ? rc : 0; /* left out: its row goes */
    if (h != old.content_hash) {
        it->embed = true;
        r->todo++;
        return 0;
    }
    r->c.kept++;
    r->c.touched++;
    return add_row(r, it, h, old.embedding);
}

/* ------------------------------------------------------------------ saving */

static int save(run *r)
{
    char now[32];
    utc_now(now, sizeof now);
    if (cmcr_gallery_writer_set_meta(r->w, "updated", now) || cmcr_gallery_writer_save(r->w, r->a->gallery))
        return cli_fail("index");
    r->last_save = cmcr_now_seconds();
    return 0;
}

static void end_line(run *r)
{
    if (r->open_line) fputc('\n', stderr);
    r->open_line = false;
}

/* After each batch: the progress line, and a save when one is due. */
static int after_batch(run *r)
{
    if (r->progress) {
        double t = cmcr_now_seconds() - r->start;
        fprintf(stderr, "\rcmcr index: embedded %lld/%lld files (%.0f%%), %.1f/s ", (long long)r->done,
                (long long)r->todo, r->todo ? 100.0 * (double)r->done / (double)r->todo : 100.0,
                t > 0 ? (double)r->done / t : 0.0);
        r->open_line = true;
    }
    if (stop_requested || cmcr_now_seconds() - r->last_save < (double)r->a->save_every) return 0;
    return save(r);
}

/* ------------------------------------------------------------------ embedding */

static int count_result(run *r, const item *it, uint64_t hash, const float *emb)
{
    if (it->old >= 0) r->c.changed++;
    else r->c.added++;
    return add_row(r, it, hash, emb);
}

/* Media files of one side, a batch at a time: each file's fingerprint, then its row. */
static int embed_media(run *r, item **todo, int64_t n)
{
    int side = todo[0]->side;
    int64_t bs = r->a->batch;
    item **in = malloc((size_t)bs * sizeof *in);
    uint64_t *hash = malloc((size_t)bs * sizeof *hash);
    int rc = in && hash ? 0 : cli_error("index", 1, "out of memory");
    for (int64_t s = 0; !rc && s < n && !stop_requested; s += bs) {
        int64_t cnt = n - s < bs ? n - s : bs, m = 0;
        str_list files = {0};
        for (int64_t i = 0; !rc && i < cnt; i++) {
            int h = hash_item(r, todo[s + i], &hash[m]);
            if (h > 0) rc = 1;
            else if (h == 0 && !list_push(&files, strdup(todo[s + i]->path))) rc = cli_error("index", 1, "out of memory");
            else if (h == 0) in[m++] = todo[s + i];
        }
        encoded out = {0};
        if (!rc && m) rc = space_embed_files(&r->s, side, &files, r->a->skip_bad, false, &out);
        for (int64_t i = 0, row = 0; !rc && i < m; i++) { /* out.kept: the files read, in order */
            if (row < out.rows && strcmp(out.kept.v[row], in[i]->path) == 0) {
                rc = count_result(r, in[i], hash[i], out.emb + row * r->s.dim);
                row++;
            } else {
                r->c.skipped++;
            }
        }
        for (int64_t i = 0; !rc && i < out.skipped.n; i++)
            if (!list_push(&r->skipped, strdup(out.skipped.v[i]))) rc = cli_error("index", 1, "out of memory");
        r->done += cnt;
        encoded_free(&out);
        list_free(&files);
        if (!rc) rc = after_batch(r);
    }
    free(in);
    free(hash);
    return rc;
}

/* Texts, one at a time (a message then names its file). */
static int embed_texts(run *r, item **todo, int64_t n)
{
    int rc = 0;
    for (int64_t i = 0; !rc && i < n && !stop_requested; i++) {
        const char *why = NULL;
        uint64_t hash;
        float *emb = NULL;
        int h = hash_item(r, todo[i], &hash);
        char *text = h ? NULL : text_file_read(todo[i]->path, &why);
        if (h > 0) rc = 1;
        else if (!h && !text) {
            char *shown = cli_printable(todo[i]->path), msg[4096];
            snprintf(msg, sizeof msg, "%s: %s", shown ? shown : "?", why);
            free(shown);
            rc = bad_file(r, msg);
        } else if (!h) {
            rc = space_embed_texts(&r->s, &text, 1, todo[i]->path, &emb);
        }
        if (!rc && emb) rc = count_result(r, todo[i], hash, emb);
        free(text);
        free(emb);
        r->done++;
        if (!rc && ((i + 1) % r->a->batch == 0 || i + 1 == n)) rc = after_batch(r);
    }
    return rc;
}

/* The files to embed, side by side: media of side a, of side b, then the texts. */
static int embed_all(run *r)
{
    item **todo = malloc((size_t)(r->todo ? r->todo : 1) * sizeof *todo);
    if (!todo) return cli_error("index", 1, "out of memory");
    int rc = 0;
    for (int pass = 0; pass < 3 && !rc && !stop_requested; pass++) {
        int64_t n = 0;
        for (int64_t i = 0; i < r->n; i++) {
            item *it = &r->items[i];
            bool text = it->m == CMCR_TEXT;
            if (it->embed && (pass == 2 ? text : !text && it->side == pass)) todo[n++] = it;
        }
        if (n) rc = pass == 2 ? embed_texts(r, todo, n) : embed_media(r, todo, n);
    }
    free(todo);
    return rc;
}

/* ------------------------------------------------------------------ the command */

static void summary(const run *r)
{
    double t = cmcr_now_seconds() - r->start;
    char *shown = cli_printable(r->a->gallery);
    fprintf(stderr, "cmcr index: %s: %lld rows (kept %lld, of which %lld touched; new %lld; changed %lld; dropped %lld; "
            "skipped %lld); embedded %lld files in %.2f s (%.*f files/s)\n", shown ? shown : "?",
            (long long)cmcr_gallery_writer_rows(r->w), (long long)r->c.kept, (long long)r->c.touched,
            (long long)r->c.added, (long long)r->c.changed, (long long)r->c.dropped, (long long)r->c.skipped,
            (long long)(r->c.added + r->c.changed), t, t > 0 && (r->c.added + r->c.changed) / t < 10 ? 2 : 1,
            t > 0 ? (double)(r->c.added + r->c.changed) / t : 0.0);
    free(shown);
    if (r->skipped.n) {
        fprintf(stderr, "cmcr index: skipped %lld files:\n", (long long)r->skipped.n);
        for (int64_t i = 0; i < r->skipped.n; i++) fprintf(stderr, "  %s\n", r->skipped.v[i]);
    }
}

static int check_options(const index_cli *a)
{
    if (cli_check_precision("index", a->precision)) return 2;
    cli_range rg[] = {{"batch", a->batch, 1, 4096}, {"save-every", a->save_every, 0, 31 * 24 * 3600},
                      {"seed", a->seed, 0, LLONG_MAX}};
    return cli_check_ranges("index", rg, sizeof rg / sizeof *rg);
}

/* Before any work: --gallery must be a .safetensors name, and none of the files this run reads. */
static int check_files(const index_cli *a)
{
    cli_file in[6 + 64];
    int nin = 0;
    in[nin++] = (cli_file){"--model", a->model, NULL, NULL, NULL};
    in[nin++] = (cli_file){"--encoder-a", a->encoder[0], NULL, NULL, NULL};
    in[nin++] = (cli_file){"--encoder-b", a->encoder[1], NULL, NULL, NULL};
    in[nin++] = (cli_file){"--tokenizer-a", a->tokenizer[0], NULL, NULL, NULL};
    in[nin++] = (cli_file){"--tokenizer-b", a->tokenizer[1], NULL, NULL, NULL};
    for (int i = 0; i < a->inputs.n && nin < (int)(sizeof in / sizeof *in); i++)
        in[nin++] = (cli_file){"INPUTS", a->inputs.v[i], NULL, NULL, NULL};
    cli_file out[1] = {{"--gallery", a->gallery, ".safetensors", NULL, NULL}};
    return cli_check_files("index", in, nin, out, 1);
}

/* Every file decided (kept, touched, or to embed), the dropped ones counted. */
static int decide_all(run *r)
{
    int rc = 0;
    int64_t i = 0;
    for (; i < r->n && !rc && !stop_requested; i++) rc = decide(r, &r->items[i]);
    for (; i < r->n && !rc && r->old; i++) { /* interrupted: the rows not yet looked at stay as they are */
        item *it = &r->items[i];
        if ((it->old = cmcr_gallery_find(r->old, it->path)) >= 0 && cmcr_gallery_writer_keep(r->w, r->old, it->old))
            rc = cli_fail("index");
    }
    int64_t matched = 0;
    for (int64_t k = 0; k < r->n; k++) matched += r->items[k].old >= 0;
    r->c.dropped = (r->old ? cmcr_gallery_rows(r->old) : 0) - matched;
    return rc;
}

static int start_writer(run *r, const space_meta *sm)
{
    char now[32];
    utc_now(now, sizeof now);
    const char *created = r->old ? cmcr_gallery_meta(r->old, "created") : NULL;
    if (cmcr_gallery_writer_new(r->s.dim, &r->w)) return cli_fail("index");
    cmcr_status st = cmcr_gallery_writer_set_meta(r->w, "created", created ? created : now);
    for (int i = 0; !st && i < sm->n; i++) st = cmcr_gallery_writer_set_meta(r->w, sm->keys[i], sm->values[i]);
    if (st) return cli_error("index", 1, "%s (paths in a gallery's metadata must be UTF-8)", cmcr_last_error());
    return 0;
}

/* Nothing to write: every row kept as it was, and the space recorded as it is. */
static bool unchanged(const run *r, const space_meta *sm)
{
    if (!r->old || r->c.touched || r->c.added || r->c.changed || r->c.dropped || r->c.skipped || stop_requested)
        return false;
    for (int i = 0; i < sm->n; i++) {
        const char *had = cmcr_gallery_meta(r->old, sm->keys[i]);
        if (!had || strcmp(had, sm->values[i]) != 0) return false;
    }
    return true;
}

static int index_work(run *r, const index_cli *a, const space_meta *sm);

/* Collect, decide, embed, save. */
static int index_run(run *r, const index_cli *a)
{
    space_meta sm = {0};
    str_list files = {0};
    int rc = load_old(r);
    if (!rc) rc = space_metadata(a, &r->s, r->old, &sm);
    if (!rc) rc = check_old(r, &sm);
    if (!rc) rc = space_collect(&r->s, &a->inputs, "INPUTS", &files);
    if (!rc) rc = gather(r, &files);
    list_free(&files);
    if (!rc) rc = start_writer(r, &sm);
    if (!rc) rc = index_work(r, a, &sm);
    meta_free(&sm);
    return rc;
}

static int index_work(run *r, const index_cli *a, const space_meta *sm)
{
    int rc;
    r->start = r->last_save = cmcr_now_seconds();
    r->progress = !a->quiet && cli_is_tty(2);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rc = decide_all(r);
    if (!rc) rc = embed_all(r);
    end_line(r);
    /* Saved whatever happened once rows were embedded: the work done is never lost. */
    int saved = (!rc || r->c.added + r->c.changed > 0) && !unchanged(r, sm) ? save(r) : 0;
    if (stop_requested && !saved) {
        char *shown = cli_printable(a->gallery);
        fprintf(stderr, "cmcr index: interrupted: %s holds the %lld rows done; run the same command again to go on\n",
                shown ? shown : "?", (long long)cmcr_gallery_writer_rows(r->w));
        free(shown);
        return 130;
    }
    if (!rc) rc = saved;
    if (!rc && !a->quiet) summary(r);
    return rc;
}

int cmd_index(int argc, char **argv)
{
    index_cli a;
    cli_opt opts[] = {
        {"gallery", OPT_STR, &a.gallery, NULL, "the gallery (.safetensors): created, or brought up to date"},
        {"model", OPT_STR, &a.model, NULL, "the C-MCR connection (.pt or .safetensors)"},
        {"encoder-a", OPT_STR, &a.encoder[0], "", "side a's encoder (clap_clip.pt: LAION-CLAP; ulip_clip.pt: CLIP)"},
        {"encoder-b", OPT_STR, &a.encoder[1], "", "side b's encoder (clap_clip.pt: CLIP; ulip_clip.pt: ULIP's PointBERT)"},
        {"tokenizer-a", OPT_STR, &a.tokenizer[0], "", "side a's tokenizer; default: found beside its weights"},
        {"tokenizer-b", OPT_STR, &a.tokenizer[1], "", "side b's tokenizer; default: found beside its weights"},
        {"text-side", OPT_STR, &a.text_side, "", "a or b: the text tower .txt files go through; default: the first "
                                                 "side whose encoder has one"},
        {"batch", OPT_INT, &a.batch, "16", "files per forward pass"},
        {"precision", OPT_STR, &a.precision, "f32", "f32 or bf16 products"},
        {"seed", OPT_INT, &a.seed, "0", "CLAP: the chunk starts of clips over 10 s; PointBERT: the FPS start "
                                        "(docs/audio.md, docs/points.md)"},
        {"xyz-only", OPT_FLAG, &a.xyz_only, "", "PointBERT: give an xyz model the first 3 columns of wider clouds"},
        {"skip-bad", OPT_FLAG, &a.skip_bad, "", "go on past files that cannot be read, and list them"},
        {"save-every", OPT_INT, &a.save_every, "60", "seconds between saves of the rows done so far (0: after "
                                                     "every batch)"},
        {"rebuild", OPT_FLAG, &a.rebuild, "", "embed every file again (a gallery made with another model or "
                                              "encoder is otherwise refused)"},
        {"quiet", OPT_FLAG, &a.quiet, "", "no progress or summary on stderr"},
        {0}};
    cli_cmd cmd = {"index", "INPUTS...", "Index files, folders (searched at any depth for what the encoders read: "
                   "images, sounds, point clouds, .txt texts) and .lst lists into a gallery of their projected "
                   "embeddings, incrementally and crash-safe (docs/search.md).", 0, opts};
    int rc = cli_parse_rest(&cmd, argc, argv, &a.inputs);
    if (rc >= 0) return rc;
    if (!(rc = check_options(&a))) rc = check_files(&a);
    run r = {.a = &a};
    space_opts so = {"index", a.model, {a.encoder[0], a.encoder[1]}, {a.tokenizer[0], a.tokenizer[1]}, a.text_side,
                     a.precision, a.batch, a.seed, true, a.xyz_only, " (--skip-bad goes on without such files)"};
    if (!rc) rc = space_open(&so, &r.s);
    if (!rc) rc = index_run(&r, &a);
    cmcr_gallery_writer_free(r.w); /* before the old gallery: its kept rows point into it */
    cmcr_gallery_free(r.old);
    free_items(&r);
    list_free(&r.skipped);
    space_close(&r.s);
    free(a.inputs.v);
    return rc;
}
