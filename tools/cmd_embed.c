/* cmd_embed.c - cmcr embed: images and prompts to CLIP embeddings (.npy). */
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
    cli_strs images;
    long long batch;
    bool no_normalize, skip_bad, quiet;
} embed_cli;

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

static bool is_image_name(const char *name)
{
    static const char *const exts[] = {".jpg", ".jpeg", ".png"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcasecmp(name + n - e, exts[i]) == 0) return true;
    }
    return false;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The images under dir, at any depth (hidden entries skipped), in the order of their paths. */
static int add_folder(const char *dir, str_list *out, int depth)
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
        else if (stat(p, &st) != 0) free(p); /* a dangling link: not an image */
        else if (S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && is_image_name(e->d_name))) {
            if (!list_push(&here, p)) rc = cli_error("embed", 1, "out of memory");
        } else free(p);
    }
    closedir(d);
    if (here.n) qsort(here.v, (size_t)here.n, sizeof *here.v, by_name);
    for (int64_t i = 0; !rc && i < here.n; i++) {
        struct stat st;
        if (stat(here.v[i], &st) == 0 && S_ISDIR(st.st_mode)) rc = add_folder(here.v[i], out, depth + 1);
        else if (!list_push(out, here.v[i])) rc = cli_error("embed", 1, "out of memory");
        else here.v[i] = NULL; /* moved */
    }
    list_free(&here);
    return rc;
}

/* A list file: one image path per line (relative ones from the list's folder); blank lines
 * are skipped. */
static int add_list(const char *path, str_list *out)
{
    cli_lines lines;
    if (cli_read_lines("embed", path, "image paths", -1, &lines)) return 1;
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

/* --images: image files, folders (searched for .jpg, .jpeg and .png) and list files (.txt,
 * .lst), in the order given. */
static int collect_images(const cli_strs *args, str_list *out)
{
    for (int i = 0; i < args->n; i++) {
        const char *a = args->v[i];
        struct stat st;
        int rc;
        if (stat(a, &st) != 0) return path_error("%s: cannot open image, folder or list", a);
        if (S_ISDIR(st.st_mode)) rc = add_folder(a, out, 0);
        else if (is_list_name(a)) rc = add_list(a, out);
        else rc = list_push(out, strdup(a)) ? 0 : cli_error("embed", 1, "out of memory");
        if (rc) return rc;
    }
    if (out->n == 0)
        return path_error(args->n > 1 ? "--images %s ...: no images found (folders are searched for .jpg, .jpeg and .png)"
                                      : "--images %s: no images found (folders are searched for .jpg, .jpeg and .png)",
                          args->v[0]);
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
 * inputs, embedding; not loading or saving), and the layout and activation the weights ran
 * with. */
static void summary(const char *what, int64_t rows, const char *out, cmcr_clip_info in, double t)
{
    bool images = strcmp(what, "images") == 0;
    const char *act = images ? in.activation : in.text_activation, *one = images ? "image" : "prompt";
    char *shown = cli_printable(out);
    fprintf(stderr, "cmcr embed: %lld %s -> %s (%lld x %d) in %.2f s (%.1f %s/s); weights in the %s layout, %s\n",
            (long long)rows, rows == 1 ? one : what, shown ? shown : "(out of memory)", (long long)rows, in.dim, t,
            t > 0 ? (double)rows / t : 0.0, what, in.layout, act);
    free(shown);
}

/* ------------------------------------------------------------------ outputs */

static int save_outputs(const embed_cli *a, const float *emb, const float *patches, int64_t rows, cmcr_clip_info in,
                        const str_list *names)
{
    if (cmcr_matrix_save_npy(a->out, emb, rows, in.dim)) return cli_fail("embed");
    if (patches) {
        cmcr_tensors *ts = cmcr_tensors_new();
        int64_t shape[3] = {rows, in.patches, in.dim};
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

/* ------------------------------------------------------------------ images */

/* The files of one batch that could not be read: listed (with --skip-bad) and dropped from
 * pixels, so that rows stay in input order. Returns the rows kept. */
static int64_t drop_bad(const cmcr_clip *c, char **paths, int64_t cnt, const unsigned char *ok,
                        float *pixels, size_t each, str_list *skipped)
{
    int64_t kept = 0;
    for (int64_t i = 0; i < cnt; i++) {
        if (ok[i]) {
            if (kept != i) memmove(pixels + (size_t)kept * each, pixels + (size_t)i * each, each * sizeof(float));
            kept++;
            continue;
        }
        float *scratch = pixels + (size_t)i * each; /* read again for its message; the row is dropped */
        cmcr_clip_pixels(c, paths[i], scratch);
        list_push(skipped, cli_printable(cmcr_last_error()));
    }
    return kept;
}

static int embed_images(const embed_cli *a, const cmcr_clip *c, const str_list *files, progress *pr)
{
    cmcr_clip_info in = cmcr_clip_get_info(c);
    size_t each = (size_t)3 * (size_t)in.image_size * (size_t)in.image_size;
    int64_t n = files->n, b = a->batch < n ? a->batch : n;
    float *pixels = malloc((size_t)b * each * sizeof(float));
    float *emb = malloc((size_t)n * (size_t)in.dim * sizeof(float));
    float *patches = a->patches ? malloc((size_t)n * (size_t)in.patches * (size_t)in.dim * sizeof(float)) : NULL;
    unsigned char *ok = malloc((size_t)b);
    str_list kept_names = {0}, skipped = {0};
    int rc = 0;
    int64_t rows = 0;
    if (!pixels || !emb || !ok || (a->patches && !patches))
        rc = cli_error("embed", 1, "out of memory for %lld images (--batch %lld)", (long long)n, (long long)b);
    for (int64_t s = 0; !rc && s < n; s += b) {
        int64_t cnt = n - s < b ? n - s : b, k = cnt;
        cmcr_status st = cmcr_clip_pixels_files(c, (const char *const *)files->v + s, cnt, pixels, ok);
        if (st && !a->skip_bad) {
            progress_break(pr);
            rc = cli_error("embed", 1, "%s (--skip-bad goes on without such files)", cmcr_last_error());
            break;
        }
        if (st) k = drop_bad(c, files->v + s, cnt, ok, pixels, each, &skipped);
        float *pp = patches ? patches + (size_t)rows * in.patches * in.dim : NULL;
        if (k && cmcr_clip_embed_pixels(c, pixels, k, strcmp(a->precision, "bf16") == 0, !a->no_normalize,
                                        emb + (size_t)rows * in.dim, pp)) {
            progress_break(pr);
            rc = cli_fail("embed");
        }
        for (int64_t i = 0; !rc && i < cnt; i++)
            if (ok[i] && !list_push(&kept_names, strdup(files->v[s + i]))) rc = cli_error("embed", 1, "out of memory");
        rows += k;
        show(pr, s + cnt, n);
    }
    if (!rc && rows == 0)
        rc = cli_error("embed", 1, "no image could be read (%lld skipped; the first: %s)", (long long)skipped.n,
                       skipped.n ? skipped.v[0] : "?");
    double secs = cmcr_now_seconds() - pr->start;
    if (!rc) rc = save_outputs(a, emb, patches, rows, in, &kept_names);
    if (!rc && skipped.n) {
        fprintf(stderr, "cmcr embed: skipped %lld of %lld images:\n", (long long)skipped.n, (long long)n);
        for (int64_t i = 0; i < skipped.n; i++) fprintf(stderr, "  %s\n", skipped.v[i]);
    }
    if (!rc && !a->quiet)
        summary("images", rows, a->out, in, secs);
    list_free(&kept_names);
    list_free(&skipped);
    free(pixels);
    free(emb);
    free(patches);
    free(ok);
    return rc;
}

/* ------------------------------------------------------------------ prompts */

static int embed_text(const embed_cli *a, const cmcr_clip *c, progress *pr)
{
    cmcr_clip_info in = cmcr_clip_get_info(c);
    cli_lines lines;
    if (cli_read_lines("embed", a->text, "prompts", -1, &lines)) return 1;
    int64_t n = lines.n;
    if (n == 0) return cli_lines_free(&lines), cli_error("embed", 1, "%s: no prompts (the file is empty)", a->text);
    int32_t *ids = malloc((size_t)n * (size_t)in.context * sizeof(int32_t));
    float *emb = malloc((size_t)n * (size_t)in.dim * sizeof(float));
    int rc = 0;
    if (!ids || !emb) rc = cli_error("embed", 1, "out of memory for %lld prompts", (long long)n);
    for (int64_t i = 0; !rc && i < n; i++) {
        char where[4200];
        snprintf(where, sizeof where, "%s:%lld", a->text, (long long)i + 1);
        if (cmcr_clip_tokenize(c, lines.items[i], strlen(lines.items[i]), where, ids + i * in.context))
            rc = cli_fail("embed");
    }
    for (int64_t s = 0; !rc && s < n; s += a->batch) {
        int64_t cnt = n - s < a->batch ? n - s : a->batch;
        if (cmcr_clip_embed_ids(c, ids + s * in.context, cnt, strcmp(a->precision, "bf16") == 0, !a->no_normalize,
                                emb + s * in.dim)) {
            progress_break(pr);
            rc = cli_fail("embed");
        }
        show(pr, s + cnt, n);
    }
    str_list none = {0};
    double secs = cmcr_now_seconds() - pr->start;
    if (!rc && (rc = save_outputs(a, emb, NULL, n, in, &none)) == 0 && !a->quiet)
        summary("prompts", n, a->out, in, secs);
    free(ids);
    free(emb);
    cli_lines_free(&lines);
    return rc;
}

/* ------------------------------------------------------------------ the command */


static int check_options(const embed_cli *a)
{
    if ((a->images.n > 0) == (a->text != NULL)) return cli_error("embed", 2, "give either --images or --text (see --help)");
    if (a->patches && !a->images.n) return cli_error("embed", 2, "--patches needs --images");
    if (a->names && !a->images.n) return cli_error("embed", 2, "--names needs --images (prompts keep the text file's order)");
    if (cli_check_precision("embed", a->precision)) return 2;
    if (a->activation && strcmp(a->activation, "quick_gelu") != 0 && strcmp(a->activation, "gelu") != 0)
        return cli_error("embed", 2, "--activation must be quick_gelu or gelu, not '%s'", a->activation);
    cli_range r[] = {{"batch", a->batch, 1, 4096}};
    return cli_check_ranges("embed", r, 1);
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
    size_t n = 3 + (size_t)extra.n + (size_t)a->images.n + (size_t)files->n;
    cli_file *in = rc ? NULL : malloc(n * sizeof *in);
    if (!rc && !in) rc = cli_error("embed", 1, "out of memory");
    if (rc) return list_free(&extra), rc;
    int nin = 0;
    in[nin++] = (cli_file){"--model", a->model, NULL, NULL, NULL};
    in[nin++] = (cli_file){"--tokenizer", a->tokenizer, NULL, NULL, NULL};
    in[nin++] = (cli_file){"--text", a->text, NULL, NULL, NULL};
    for (int64_t i = 0; i < extra.n; i++) in[nin++] = (cli_file){"file beside the model or tokenizer", extra.v[i], NULL, NULL, NULL};
    for (int i = 0; i < a->images.n; i++) in[nin++] = (cli_file){"--images", a->images.v[i], NULL, NULL, NULL};
    for (int64_t i = 0; i < files->n; i++) in[nin++] = (cli_file){"image", files->v[i], NULL, NULL, NULL};
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

int cmd_embed(int argc, char **argv)
{
    embed_cli a;
    cli_opt opts[] = {
        {"model", OPT_STR, &a.model, NULL, "CLIP weights: a Hugging Face folder or a .safetensors/.bin/.pt file"},
        {"tokenizer", OPT_STR, &a.tokenizer, "", "vocab.json (merges.txt beside it) or bpe_simple_vocab_16e6.txt.gz; "
                                                 "default: found beside the model"},
        {"activation", OPT_STR, &a.activation, "", "quick_gelu or gelu for both towers; default: the model's "
                                                   "config.json, else quick_gelu (OpenAI's models)"},
        {"images", OPT_STRS, &a.images, "", "images (JPEG, PNG), folders of them (searched at any depth) or list "
                                            "files (.txt/.lst, one path per line)"},
        {"text", OPT_STR, &a.text, "", "a text file of prompts, one per line"},
        {"out", OPT_STR, &a.out, NULL, "embeddings (.npy, rows in input order)"},
        {"patches", OPT_STR, &a.patches, "", "also the patch embeddings, N x patches x dim (.npy; images only)"},
        {"names", OPT_STR, &a.names, "", "also the path of each row, one per line (.txt; images only)"},
        {"batch", OPT_INT, &a.batch, "32", "images or prompts per forward pass"},
        {"precision", OPT_STR, &a.precision, "f32", "f32 or bf16 products"},
        {"no-normalize", OPT_FLAG, &a.no_normalize, "", "keep the raw projections (default: L2-normalised rows)"},
        {"skip-bad", OPT_FLAG, &a.skip_bad, "", "go on past images that cannot be read, and list them"},
        {"quiet", OPT_FLAG, &a.quiet, "", "no progress or summary on stderr"},
        {0}};
    cli_cmd cmd = {"embed", "", "Embed images or prompts with CLIP (docs/encoders.md).", 0, opts};
    char *pos[8];
    int rc = cli_parse(&cmd, argc, argv, pos);
    if (rc >= 0) return rc;
    if ((rc = check_options(&a))) return rc;
    str_list files = {0};
    if (a.images.n) rc = collect_images(&a.images, &files);
    if (!rc) rc = check_names(&a, &files);
    if (!rc) rc = check_files(&a, &files);
    if (rc) return list_free(&files), rc;
    cmcr_clip *c;
    cmcr_clip_options co = cmcr_clip_default_options();
    co.tokenizer = a.tokenizer;
    co.activation = a.activation;
    co.float32_only = strcmp(a.precision, "f32") == 0; /* no bfloat16 copy of the weights */
    if (cmcr_clip_load(a.model, &co, &c)) return list_free(&files), cli_fail("embed");
    progress pr = {!a.quiet && cli_is_tty(2), a.text ? "prompts" : "images", cmcr_now_seconds(), 0, false};
    rc = a.text ? embed_text(&a, c, &pr) : embed_images(&a, c, &files, &pr);
    list_free(&files);
    cmcr_clip_free(c);
    return rc;
}
