/* cmd_embed.c - cmcr embed: images (CLIP), sound files (CLAP) and prompts (either) to
 * embeddings (.npy). The model's kind decides the encoder (cmcr_encoder_kind); one batch loop
 * serves images and sounds through the small table of calls in `encoder`. */
#define _DEFAULT_SOURCE /* strcasecmp, d_type */
#include <stdio.h>
#include "cli.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct embed_cli {
    const char *model, *tokenizer, *activation, *text, *out, *patches, *names, *precision;
    cli_strs images, audio;
    long long batch, seed;
    bool no_normalize, skip_bad, quiet;
} embed_cli;

/* The loaded encoder: CLIP (images, prompts) or CLAP (sounds, prompts). */
typedef struct encoder {
    cmcr_clip *clip;
    cmcr_clap *clap;
    int32_t dim, context, patches;
    size_t each;          /* floats of one preprocessed input (image or clip) */
    const char *what, *one; /* "images", "image" or "clips", "clip" */
    char how[160];        /* the closing line's account of the weights */
} encoder;

/* n inputs read in parallel into buf (n x each), with their flags (CLAP's "longer"). */
static cmcr_status read_inputs(const encoder *e, char *const *paths, int64_t n, float *buf, unsigned char *flags,
                               unsigned char *ok)
{
    if (e->clip) return cmcr_clip_pixels_files(e->clip, (const char *const *)paths, n, buf, ok);
    return cmcr_clap_audio_files(e->clap, (const char *const *)paths, n, buf, flags, ok);
}

/* One input again, for the message of its failure. */
static cmcr_status read_input(const encoder *e, const char *path, float *buf, unsigned char *flag)
{
    return e->clip ? cmcr_clip_pixels(e->clip, path, buf) : cmcr_clap_audio(e->clap, path, buf, flag);
}

static cmcr_status embed_inputs(const encoder *e, const float *buf, const unsigned char *flags, int64_t n, int bf16,
                                int normalize, float *emb, float *patches)
{
    if (e->clip) return cmcr_clip_embed_pixels(e->clip, buf, n, bf16, normalize, emb, patches);
    return cmcr_clap_embed_audio(e->clap, buf, flags, n, bf16, normalize, emb);
}

static cmcr_status tokenize(const encoder *e, const char *text, const char *where, int32_t *ids)
{
    if (e->clip) return cmcr_clip_tokenize(e->clip, text, strlen(text), where, ids);
    return cmcr_clap_tokenize(e->clap, text, strlen(text), where, ids);
}

static cmcr_status embed_ids(const encoder *e, const int32_t *ids, int64_t n, int bf16, int normalize, float *emb)
{
    if (e->clip) return cmcr_clip_embed_ids(e->clip, ids, n, bf16, normalize, emb);
    return cmcr_clap_embed_ids(e->clap, ids, n, bf16, normalize, emb);
}

/* A growing list of malloc'd strings. */
typedef struct str_list {
    char **v;
    int64_t n, cap;
} str_list;

static void list_free(str_list *l)
{
    for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    *l = (str_list){0};
}

/* Takes s (malloc'd; NULL is out of memory). */
static bool list_push(str_list *l, char *s)
{
    if (!s) return false;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 256;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return free(s), false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return true;
}

/* An error about a path as the user's file system spells it: shown printable, on one line. */
static int path_error(const char *fmt, const char *path)
{
    char *shown = cli_printable(path);
    int rc = cli_error("embed", 1, fmt, shown ? shown : "(out of memory)");
    free(shown);
    return rc;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* The file names a folder is searched for, per kind of input (NULL-terminated). */
static const char *const image_exts[] = {".jpg", ".jpeg", ".png", NULL};
static const char *const audio_exts[] = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", NULL};

static bool has_ext(const char *name, const char *const *exts)
{
    size_t n = strlen(name);
    for (size_t i = 0; exts[i]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcasecmp(name + n - e, exts[i]) == 0) return true;
    }
    return false;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The media files under dir (names ending in one of exts), at any depth (hidden entries
 * skipped), in the order of their paths. */
static int add_folder(const char *dir, const char *const *exts, str_list *out, int depth)
{
    if (depth > 64) return path_error("%s: folders nested more than 64 deep (a link loop?)", dir);
    DIR *d = opendir(dir);
    if (!d) return path_error("%s: cannot open folder", dir);
    str_list here = {0};
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = join_path(dir, e->d_name);
        struct stat st;
        if (!p) rc = cli_error("embed", 1, "out of memory");
        else if (stat(p, &st) != 0) free(p); /* a dangling link: not a media file */
        else if (S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && has_ext(e->d_name, exts))) {
            if (!list_push(&here, p)) rc = cli_error("embed", 1, "out of memory");
        } else free(p);
    }
    closedir(d);
    if (here.n) qsort(here.v, (size_t)here.n, sizeof *here.v, by_name);
    for (int64_t i = 0; !rc && i < here.n; i++) {
        struct stat st;
        if (stat(here.v[i], &st) == 0 && S_ISDIR(st.st_mode)) rc = add_folder(here.v[i], exts, out, depth + 1);
        else if (!list_push(out, here.v[i])) rc = cli_error("embed", 1, "out of memory");
        else here.v[i] = NULL; /* moved */
    }
    list_free(&here);
    return rc;
}

/* A list file: one path per line (relative ones from the list's folder); blank lines are
 * skipped. */
static int add_list(const char *path, str_list *out)
{
    cli_lines lines;
    if (cli_read_lines("embed", path, "paths", -1, &lines)) return 1;
    char *dir = strdup(path);
    if (!dir) return cli_lines_free(&lines), cli_error("embed", 1, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int rc = 0;
    for (int64_t i = 0; !rc && i < lines.n; i++) {
        const char *l = lines.items[i];
        if (!l[0] || strspn(l, " \t") == strlen(l)) continue;
        char *p = (l[0] == '/' || !slash) ? strdup(l) : join_path(dir, l);
        if (!list_push(out, p)) rc = cli_error("embed", 1, "out of memory");
    }
    free(dir);
    cli_lines_free(&lines);
    return rc;
}

static bool is_list_name(const char *p)
{
    size_t n = strlen(p);
    return n > 4 && (strcasecmp(p + n - 4, ".txt") == 0 || strcasecmp(p + n - 4, ".lst") == 0);
}

/* --images or --audio (flag): media files, folders (searched for the names in exts) and list
 * files (.txt, .lst), in the order given. */
static int collect_media(const cli_strs *args, const char *flag, const char *noun, const char *const *exts,
                         str_list *out)
{
    for (int i = 0; i < args->n; i++) {
        const char *a = args->v[i];
        struct stat st;
        int rc;
        if (stat(a, &st) != 0) {
            char fmt[96];
            snprintf(fmt, sizeof fmt, "%%s: cannot open %s, folder or list", noun);
            return path_error(fmt, a);
        }
        if (S_ISDIR(st.st_mode)) rc = add_folder(a, exts, out, 0);
        else if (is_list_name(a)) rc = add_list(a, out);
        else rc = list_push(out, strdup(a)) ? 0 : cli_error("embed", 1, "out of memory");
        if (rc) return rc;
    }
    if (out->n == 0) {
        char searched[160] = "";
        for (size_t i = 0; exts[i]; i++)
            snprintf(searched + strlen(searched), sizeof searched - strlen(searched), "%s%s", i ? ", " : "", exts[i]);
        char *shown = cli_printable(args->v[0]);
        int rc = cli_error("embed", 1, "%s %s%s: no %ss found (folders are searched for %s)", flag,
                           shown ? shown : "(out of memory)", args->n > 1 ? " ..." : "", noun, searched);
        free(shown);
        return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ progress */

typedef struct progress {
    bool on;
    const char *what;
    double start, last;
    bool open; /* a progress line without its newline is on the terminal */
} progress;

/* Ends an open progress line, so that a message after it starts on its own line. */
static void progress_break(progress *p)
{
    if (p->open) fputc('\n', stderr);
    p->open = false;
}

static void show(progress *p, int64_t done, int64_t total)
{
    if (!p->on) return;
    double t = cmcr_now_seconds();
    if (done < total && t - p->last < 0.2) return;
    p->last = t;
    double el = t - p->start, rate = el > 0 ? (double)done / el : 0;
    fprintf(stderr, "\rembedding %s: %lld/%lld (%.1f%%), %.1f/s", p->what, (long long)done, (long long)total,
            total ? 100.0 * (double)done / (double)total : 100.0, rate);
    p->open = done < total;
    if (p->open && rate > 0) fprintf(stderr, ", about %.0f s left   ", (double)(total - done) / rate);
    else if (!p->open) fprintf(stderr, "                 \n");
}

/* The closing line: what was written, the rate since the model was loaded (reading the
 * inputs, embedding; not loading or saving), and how the weights ran. */
static void summary(const char *what, int64_t rows, const char *out, const encoder *e, const char *how, double t)
{
    char *shown = cli_printable(out);
    fprintf(stderr, "cmcr embed: %lld %s -> %s (%lld x %d) in %.2f s (%.1f %s/s); %s\n", (long long)rows, what,
            shown ? shown : "(out of memory)", (long long)rows, e->dim, t, t > 0 ? (double)rows / t : 0.0, what, how);
    free(shown);
}

/* ------------------------------------------------------------------ outputs */

static int save_outputs(const embed_cli *a, const float *emb, const float *patches, int64_t rows, const encoder *e,
                        const str_list *names)
{
    if (cmcr_matrix_save_npy(a->out, emb, rows, e->dim)) return cli_fail("embed");
    if (patches) {
        cmcr_tensors *ts = cmcr_tensors_new();
        int64_t shape[3] = {rows, e->patches, e->dim};
        cmcr_status st = ts ? cmcr_tensors_add(ts, "patches", CMCR_F32, 3, shape, patches) : CMCR_ENOMEM;
        if (!st) st = cmcr_tensors_save(ts, a->patches, CMCR_FORMAT_NPY);
        cmcr_tensors_free(ts);
        if (st) return cli_fail("embed");
    }
    if (a->names) {
        size_t len = 0;
        for (int64_t i = 0; i < names->n; i++) len += strlen(names->v[i]) + 1;
        char *buf = malloc(len + 1), *p = buf;
        if (!buf) return cli_error("embed", 1, "out of memory");
        for (int64_t i = 0; i < names->n; i++) p += sprintf(p, "%s\n", names->v[i]);
        cmcr_status st = cmcr_write_file(a->names, buf, len);
        free(buf);
        if (st) return cli_fail("embed");
    }
    return 0;
}

/* ------------------------------------------------------------------ images and sounds */

/* The files of one batch that could not be read: listed (with --skip-bad) and dropped from
 * buf and flags, so that rows stay in input order. Returns the rows kept. */
static int64_t drop_bad(const encoder *e, char **paths, int64_t cnt, const unsigned char *ok, float *buf,
                        unsigned char *flags, str_list *skipped)
{
    int64_t kept = 0;
    size_t each = e->each;
    for (int64_t i = 0; i < cnt; i++) {
        if (ok[i]) {
            if (kept != i) memmove(buf + (size_t)kept * each, buf + (size_t)i * each, each * sizeof(float));
            flags[kept++] = flags[i];
            continue;
        }
        /* read again for its message; the row is dropped */
        read_input(e, paths[i], buf + (size_t)i * each, flags + i);
        list_push(skipped, cli_printable(cmcr_last_error()));
    }
    return kept;
}

typedef struct media_run {
    float *buf, *emb, *patches;
    unsigned char *flags, *ok;
    str_list kept, skipped;
    int64_t rows;
} media_run;

static void media_free(media_run *r)
{
    list_free(&r->kept);
    list_free(&r->skipped);
    free(r->buf);
    free(r->emb);
    free(r->patches);
    free(r->flags);
    free(r->ok);
}

/* Files s .. s+cnt: read, embed, appended to r's rows. */
static int media_batch(const embed_cli *a, const encoder *e, const str_list *files, int64_t s, int64_t cnt,
                       media_run *r, progress *pr)
{
    int64_t k = cnt;
    cmcr_status st = read_inputs(e, files->v + s, cnt, r->buf, r->flags, r->ok);
    if (st && !a->skip_bad) {
        progress_break(pr);
        return cli_error("embed", 1, "%s (--skip-bad goes on without such files)", cmcr_last_error());
    }
    if (st) k = drop_bad(e, files->v + s, cnt, r->ok, r->buf, r->flags, &r->skipped);
    float *pp = r->patches ? r->patches + (size_t)r->rows * e->patches * e->dim : NULL;
    if (k && embed_inputs(e, r->buf, r->flags, k, strcmp(a->precision, "bf16") == 0, !a->no_normalize,
                          r->emb + (size_t)r->rows * e->dim, pp)) {
        progress_break(pr);
        return cli_fail("embed");
    }
    for (int64_t i = 0; i < cnt; i++)
        if (r->ok[i] && !list_push(&r->kept, strdup(files->v[s + i]))) return cli_error("embed", 1, "out of memory");
    r->rows += k;
    return 0;
}

static int embed_media(const embed_cli *a, const encoder *e, const str_list *files, progress *pr)
{
    int64_t n = files->n, b = a->batch < n ? a->batch : n;
    media_run r = {0};
    r.buf = malloc((size_t)b * e->each * sizeof(float));
    r.emb = malloc((size_t)n * (size_t)e->dim * sizeof(float));
    r.patches = a->patches ? malloc((size_t)n * (size_t)e->patches * (size_t)e->dim * sizeof(float)) : NULL;
    r.flags = calloc((size_t)b, 1);
    r.ok = malloc((size_t)b);
    int rc = 0;
    if (!r.buf || !r.emb || !r.ok || !r.flags || (a->patches && !r.patches))
        rc = cli_error("embed", 1, "out of memory for %lld %s (--batch %lld)", (long long)n, e->what, (long long)b);
    for (int64_t s = 0; !rc && s < n; s += b) {
        rc = media_batch(a, e, files, s, n - s < b ? n - s : b, &r, pr);
        if (!rc) show(pr, s + (n - s < b ? n - s : b), n);
    }
    if (!rc && r.rows == 0)
        rc = cli_error("embed", 1, "no %s could be read (%lld skipped; the first: %s)", e->one, (long long)r.skipped.n,
                       r.skipped.n ? r.skipped.v[0] : "?");
    double secs = cmcr_now_seconds() - pr->start;
    if (!rc) rc = save_outputs(a, r.emb, r.patches, r.rows, e, &r.kept);
    if (!rc && r.skipped.n) {
        fprintf(stderr, "cmcr embed: skipped %lld of %lld %s:\n", (long long)r.skipped.n, (long long)n, e->what);
        for (int64_t i = 0; i < r.skipped.n; i++) fprintf(stderr, "  %s\n", r.skipped.v[i]);
    }
    if (!rc && !a->quiet) summary(e->what, r.rows, a->out, e, e->how, secs);
    media_free(&r);
    return rc;
}

/* ------------------------------------------------------------------ prompts */

static int embed_text(const embed_cli *a, const encoder *e, progress *pr)
{
    cli_lines lines;
    if (cli_read_lines("embed", a->text, "prompts", -1, &lines)) return 1;
    int64_t n = lines.n;
    if (n == 0) return cli_lines_free(&lines), cli_error("embed", 1, "%s: no prompts (the file is empty)", a->text);
    int32_t *ids = malloc((size_t)n * (size_t)e->context * sizeof(int32_t));
    float *emb = malloc((size_t)n * (size_t)e->dim * sizeof(float));
    int rc = 0;
    if (!ids || !emb) rc = cli_error("embed", 1, "out of memory for %lld prompts", (long long)n);
    for (int64_t i = 0; !rc && i < n; i++) {
        char where[4200];
        snprintf(where, sizeof where, "%s:%lld", a->text, (long long)i + 1);
        if (tokenize(e, lines.items[i], where, ids + i * e->context))
            rc = cli_fail("embed");
    }
    for (int64_t s = 0; !rc && s < n; s += a->batch) {
        int64_t cnt = n - s < a->batch ? n - s : a->batch;
        if (embed_ids(e, ids + s * e->context, cnt, strcmp(a->precision, "bf16") == 0, !a->no_normalize,
                      emb + s * e->dim)) {
            progress_break(pr);
            rc = cli_fail("embed");
        }
        show(pr, s + cnt, n);
    }
    str_list none = {0};
    double secs = cmcr_now_seconds() - pr->start;
    if (!rc && (rc = save_outputs(a, emb, NULL, n, e, &none)) == 0 && !a->quiet)
        summary("prompts", n, a->out, e, e->how, secs);
    free(ids);
    free(emb);
    cli_lines_free(&lines);
    return rc;
}

/* ------------------------------------------------------------------ the command */


static int check_options(const embed_cli *a)
{
    int inputs = (a->images.n > 0) + (a->audio.n > 0) + (a->text != NULL);
    if (inputs != 1) return cli_error("embed", 2, "give one of --images, --audio or --text (see --help)");
    if (a->patches && !a->images.n) return cli_error("embed", 2, "--patches needs --images");
    if (a->names && a->text) return cli_error("embed", 2, "--names needs --images or --audio (prompts keep the text file's order)");
    if (cli_check_precision("embed", a->precision)) return 2;
    if (a->activation && strcmp(a->activation, "quick_gelu") != 0 && strcmp(a->activation, "gelu") != 0)
        return cli_error("embed", 2, "--activation must be quick_gelu or gelu, not '%s'", a->activation);
    cli_range r[] = {{"batch", a->batch, 1, 4096}, {"seed", a->seed, 0, LLONG_MAX}};
    return cli_check_ranges("embed", r, 2);
}

/* The model's kind must fit the inputs: images need CLIP, sounds CLAP. */
static int check_kind(const embed_cli *a, const char *kind)
{
    char *shown = cli_printable(a->model);
    int rc = 0;
    if (a->images.n && strcmp(kind, "clip") != 0)
        rc = cli_error("embed", 2, "%s: --images needs a CLIP model, and this is a %s checkpoint", shown, "LAION-CLAP");
    else if (a->audio.n && strcmp(kind, "clap") != 0)
        rc = cli_error("embed", 2, "%s: --audio needs a LAION-CLAP model, and this is a %s checkpoint", shown, "CLIP");
    else if (a->activation && strcmp(kind, "clip") != 0)
        rc = cli_error("embed", 2, "%s: --activation is for CLIP models (LAION-CLAP's are fixed)", shown);
    free(shown);
    return rc;
}

/* The folder of path, malloc'd: path itself when it is a folder. */
static char *folder_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return strdup(path);
    char dir[PATH_MAX];
    cli_dir_of(path, dir, sizeof dir);
    return strdup(dir);
}

/* Files the library may read beside the model or the tokenizer (config.json for the
 * activation, the tokenizer's files, the weights of a folder). */
static const char *const companions[] = {"config.json", "vocab.json", "merges.txt", "bpe_simple_vocab_16e6.txt.gz",
                                         "model.safetensors", "pytorch_model.bin"};

static int add_companions(const char *path, str_list *out)
{
    char *dir = folder_of(path);
    bool ok = dir != NULL;
    for (size_t i = 0; ok && i < sizeof companions / sizeof companions[0]; i++) ok = list_push(out, join_path(dir, companions[i]));
    free(dir);
    return ok ? 0 : cli_error("embed", 1, "out of memory");
}

/* Before any work: no output may be any file this run reads: the model and what lies beside
 * it, the tokenizer's files, the prompts, every image (also those found in folders and list
 * files) and the list files themselves. */
static int check_files(const embed_cli *a, const str_list *files)
{
    str_list extra = {0};
    int rc = add_companions(a->model, &extra);
    if (!rc && a->tokenizer) rc = add_companions(a->tokenizer, &extra);
    size_t n = 3 + (size_t)extra.n + (size_t)a->images.n + (size_t)a->audio.n + (size_t)files->n;
    cli_file *in = rc ? NULL : malloc(n * sizeof *in);
    if (!rc && !in) rc = cli_error("embed", 1, "out of memory");
    if (rc) return list_free(&extra), rc;
    int nin = 0;
    in[nin++] = (cli_file){"--model", a->model, NULL, NULL, NULL};
    in[nin++] = (cli_file){"--tokenizer", a->tokenizer, NULL, NULL, NULL};
    in[nin++] = (cli_file){"--text", a->text, NULL, NULL, NULL};
    for (int64_t i = 0; i < extra.n; i++) in[nin++] = (cli_file){"file beside the model or tokenizer", extra.v[i], NULL, NULL, NULL};
    for (int i = 0; i < a->images.n; i++) in[nin++] = (cli_file){"--images", a->images.v[i], NULL, NULL, NULL};
    for (int i = 0; i < a->audio.n; i++) in[nin++] = (cli_file){"--audio", a->audio.v[i], NULL, NULL, NULL};
    for (int64_t i = 0; i < files->n; i++)
        in[nin++] = (cli_file){a->audio.n ? "sound file" : "image", files->v[i], NULL, NULL, NULL};
    cli_file out[3] = {{"--out", a->out, CLI_EXT_NPY, NULL, NULL},
                       {"--patches", a->patches, CLI_EXT_NPY, NULL, NULL},
                       {"--names", a->names, ".txt", NULL, NULL}};
    rc = cli_check_files("embed", in, nin, out, 3);
    free(in);
    list_free(&extra);
    return rc;
}

/* --names writes one path per line: a path with a line break would shift every row after it. */
static int check_names(const embed_cli *a, const str_list *files)
{
    for (int64_t i = 0; a->names && i < files->n; i++)
        if (strpbrk(files->v[i], "\r\n")) return path_error("%s: a path with a line break cannot be listed in --names", files->v[i]);
    return 0;
}

static int load_clip(const embed_cli *a, encoder *e)
{
    cmcr_clip_options co = cmcr_clip_default_options();
    co.tokenizer = a->tokenizer;
    co.activation = a->activation;
    co.float32_only = strcmp(a->precision, "f32") == 0; /* no bfloat16 copy of the weights */
    if (cmcr_clip_load(a->model, &co, &e->clip)) return cli_fail("embed");
    cmcr_clip_info in = cmcr_clip_get_info(e->clip);
    *e = (encoder){e->clip, NULL, in.dim, in.context, in.patches, (size_t)3 * (size_t)in.image_size * (size_t)in.image_size,
                   "images", "image", ""};
    snprintf(e->how, sizeof e->how, "CLIP weights in the %s layout, %s", in.layout,
             a->text ? in.text_activation : in.activation);
    return 0;
}

static int load_clap(const embed_cli *a, encoder *e)
{
    cmcr_clap_options co = cmcr_clap_default_options();
    co.tokenizer = a->tokenizer;
    co.float32_only = strcmp(a->precision, "f32") == 0;
    co.seed = (uint64_t)a->seed;
    if (cmcr_clap_load(a->model, &co, &e->clap)) return cli_fail("embed");
    cmcr_clap_info in = cmcr_clap_get_info(e->clap);
    *e = (encoder){NULL, e->clap, in.dim, in.context, 0, (size_t)in.input_floats, "clips", "clip", ""};
    snprintf(e->how, sizeof e->how, "LAION-CLAP weights (HTSAT width %d, %d stages; RoBERTa width %d, %d layers)",
             in.audio_width, in.audio_stages, in.text_width, in.text_layers);
    return 0;
}

int cmd_embed(int argc, char **argv)
{
    embed_cli a;
    cli_opt opts[] = {
        {"model", OPT_STR, &a.model, NULL, "CLIP weights (a Hugging Face folder or a .safetensors/.bin/.pt file) or "
                                           "LAION-CLAP weights (a .pt such as 630k-fusion-best.pt, or .safetensors)"},
        {"tokenizer", OPT_STR, &a.tokenizer, "", "vocab.json (merges.txt beside it), a folder holding both, or "
                                                 "bpe_simple_vocab_16e6.txt.gz (CLIP); default: found beside the model"},
        {"activation", OPT_STR, &a.activation, "", "CLIP: quick_gelu or gelu for both towers; default: the model's "
                                                   "config.json, else quick_gelu (OpenAI's models)"},
        {"images", OPT_STRS, &a.images, "", "images (JPEG, PNG), folders of them (searched at any depth) or list "
                                            "files (.txt/.lst, one path per line); CLIP"},
        {"audio", OPT_STRS, &a.audio, "", "sound files (WAV, FLAC, OGG, MP3), folders of them or list files; CLAP"},
        {"text", OPT_STR, &a.text, "", "a text file of prompts, one per line"},
        {"out", OPT_STR, &a.out, NULL, "embeddings (.npy, rows in input order)"},
        {"patches", OPT_STR, &a.patches, "", "also the patch embeddings, N x patches x dim (.npy; images only)"},
        {"names", OPT_STR, &a.names, "", "also the path of each row, one per line (.txt; images or sounds)"},
        {"batch", OPT_INT, &a.batch, "32", "images, clips or prompts per forward pass"},
        {"precision", OPT_STR, &a.precision, "f32", "f32 or bf16 products"},
        {"seed", OPT_INT, &a.seed, "0", "CLAP: draws the chunk starts of clips longer than 10 s (docs/audio.md)"},
        {"no-normalize", OPT_FLAG, &a.no_normalize, "", "keep the raw projections (default: L2-normalised rows)"},
        {"skip-bad", OPT_FLAG, &a.skip_bad, "", "go on past files that cannot be read, and list them"},
        {"quiet", OPT_FLAG, &a.quiet, "", "no progress or summary on stderr"},
        {0}};
    cli_cmd cmd = {"embed", "", "Embed images (CLIP), sounds (LAION-CLAP) or prompts (either) (docs/encoders.md).",
                   0, opts};
    char *pos[8];
    int rc = cli_parse(&cmd, argc, argv, pos);
    if (rc >= 0) return rc;
    if ((rc = check_options(&a))) return rc;
    const char *kind = NULL;
    if (cmcr_encoder_kind(a.model, &kind)) return cli_fail("embed");
    if ((rc = check_kind(&a, kind))) return rc;
    str_list files = {0};
    if (a.images.n) rc = collect_media(&a.images, "--images", "image", image_exts, &files);
    if (a.audio.n) rc = collect_media(&a.audio, "--audio", "sound file", audio_exts, &files);
    if (!rc) rc = check_names(&a, &files);
    if (!rc) rc = check_files(&a, &files);
    if (rc) return list_free(&files), rc;
    encoder e = {0};
    rc = strcmp(kind, "clap") == 0 ? load_clap(&a, &e) : load_clip(&a, &e);
    if (rc) return list_free(&files), rc;
    progress pr = {!a.quiet && cli_is_tty(2), a.text ? "prompts" : e.what, cmcr_now_seconds(), 0, false};
    rc = a.text ? embed_text(&a, &e, &pr) : embed_media(&a, &e, &files, &pr);
    list_free(&files);
    cmcr_clip_free(e.clip);
    cmcr_clap_free(e.clap);
    return rc;
}
