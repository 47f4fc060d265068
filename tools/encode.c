/* encode.c - the CLI's encoders (encode.h): the table of kinds, loading, gathering input
 * files, and the batch loops with progress. */
#define _DEFAULT_SOURCE /* strcasecmp, strdup */
#include <stdio.h>
#include "encode.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ string lists */

void list_free(str_list *l)
{
    for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    *l = (str_list){0};
}

bool list_push(str_list *l, char *s)
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

char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

int encode_path_error(const char *cmd, const char *fmt, const char *path)
{
    char *shown = cli_printable(path);
    int rc = cli_error(cmd, 1, fmt, shown ? shown : "(out of memory)");
    free(shown);
    return rc;
}

/* ------------------------------------------------------------------ the kinds */

static cmcr_status clip_read_inputs(const void *m, char *const *paths, int64_t n, float *buf, unsigned char *flags,
                                    unsigned char *ok)
{
    (void)flags;
    return cmcr_clip_pixels_files(m, (const char *const *)paths, n, buf, ok);
}

static cmcr_status clip_read_input(const void *m, const char *path, float *buf, unsigned char *flag)
{
    (void)flag;
    return cmcr_clip_pixels(m, path, buf);
}

static cmcr_status clip_read_memory(const void *m, const void *data, size_t len, const char *name, float *buf,
                                    unsigned char *flag)
{
    (void)flag;
    return cmcr_clip_pixels_memory(m, data, len, name, buf);
}

static cmcr_status clip_embed_inputs(const void *m, const float *buf, const unsigned char *flags, int64_t n, int bf16,
                                     int normalize, float *emb, float *patches)
{
    (void)flags;
    return cmcr_clip_embed_pixels(m, buf, n, bf16, normalize, emb, patches);
}

static cmcr_status clip_tokenize(const void *m, const char *text, const char *where, int32_t *ids)
{
    return cmcr_clip_tokenize(m, text, strlen(text), where, ids);
}

static cmcr_status clip_embed_ids(const void *m, const int32_t *ids, int64_t n, int bf16, int normalize, float *emb)
{
    return cmcr_clip_embed_ids(m, ids, n, bf16, normalize, emb);
}

static void clip_free(void *m) { cmcr_clip_free(m); }

static int load_clip(const encoder_opts *o, encoder *e)
{
    cmcr_clip_options co = cmcr_clip_default_options();
    co.tokenizer = o->tokenizer;
    co.activation = o->activation;
    co.float32_only = strcmp(o->precision, "f32") == 0; /* no bfloat16 copy of the weights */
    cmcr_clip *c = NULL;
    if (cmcr_clip_load(o->model, &co, &c)) return cli_fail(o->cmd);
    e->m = c;
    cmcr_clip_info in = cmcr_clip_get_info(c);
    e->dim = in.dim;
    e->context = in.context;
    e->patches = in.patches;
    e->has_tokenizer = in.has_tokenizer;
    e->each = (size_t)3 * (size_t)in.image_size * (size_t)in.image_size;
    snprintf(e->how, sizeof e->how, "CLIP weights in the %s layout, %s", in.layout,
             o->text ? in.text_activation : in.activation);
    return 0;
}

static cmcr_status clap_read_inputs(const void *m, char *const *paths, int64_t n, float *buf, unsigned char *flags,
                                    unsigned char *ok)
{
    return cmcr_clap_audio_files(m, (const char *const *)paths, n, buf, flags, ok);
}

static cmcr_status clap_read_input(const void *m, const char *path, float *buf, unsigned char *flag)
{
    return cmcr_clap_audio(m, path, buf, flag);
}

static cmcr_status clap_read_memory(const void *m, const void *data, size_t len, const char *name, float *buf,
                                    unsigned char *flag)
{
    return cmcr_clap_audio_memory(m, data, len, name, buf, flag);
}

static cmcr_status clap_embed_inputs(const void *m, const float *buf, const unsigned char *flags, int64_t n, int bf16,
                                     int normalize, float *emb, float *patches)
{
    (void)patches; /* none: check_options of embed refuses --patches for sounds */
    return cmcr_clap_embed_audio(m, buf, flags, n, bf16, normalize, emb);
}

static cmcr_status clap_tokenize(const void *m, const char *text, const char *where, int32_t *ids)
{
    return cmcr_clap_tokenize(m, text, strlen(text), where, ids);
}

static cmcr_status clap_embed_ids(const void *m, const int32_t *ids, int64_t n, int bf16, int normalize, float *emb)
{
    return cmcr_clap_embed_ids(m, ids, n, bf16, normalize, emb);
}

static void clap_free(void *m) { cmcr_clap_free(m); }

static int load_clap(const encoder_opts *o, encoder *e)
{
    cmcr_clap_options co = cmcr_clap_default_options();
    co.tokenizer = o->tokenizer;
    co.float32_only = strcmp(o->precision, "f32") == 0;
    co.seed = (uint64_t)o->seed;
    cmcr_clap *c = NULL;
    if (cmcr_clap_load(o->model, &co, &c)) return cli_fail(o->cmd);
    e->m = c;
    cmcr_clap_info in = cmcr_clap_get_info(c);
    e->dim = in.dim;
    e->context = in.context;
    e->patches = 0;
    e->has_tokenizer = in.has_tokenizer;
    e->each = (size_t)in.input_floats;
    snprintf(e->how, sizeof e->how, "LAION-CLAP weights (HTSAT width %d, %d stages; RoBERTa width %d, %d layers)",
             in.audio_width, in.audio_stages, in.text_width, in.text_layers);
    return 0;
}

static cmcr_status pointbert_read_inputs(const void *m, char *const *paths, int64_t n, float *buf,
                                         unsigned char *flags, unsigned char *ok)
{
    (void)flags;
    return cmcr_pointbert_clouds(m, (const char *const *)paths, n, buf, ok);
}

static cmcr_status pointbert_read_input(const void *m, const char *path, float *buf, unsigned char *flag)
{
    (void)flag;
    return cmcr_pointbert_cloud(m, path, buf);
}

static cmcr_status pointbert_read_memory(const void *m, const void *data, size_t len, const char *name, float *buf,
                                         unsigned char *flag)
{
    (void)flag;
    return cmcr_pointbert_cloud_memory(m, data, len, name, buf);
}

static cmcr_status pointbert_embed_inputs(const void *m, const float *buf, const unsigned char *flags, int64_t n,
                                          int bf16, int normalize, float *emb, float *patches)
{
    (void)flags;
    (void)patches;
    return cmcr_pointbert_embed(m, buf, n, bf16, normalize, emb);
}

static void pointbert_free(void *m) { cmcr_pointbert_free(m); }

static int load_pointbert(const encoder_opts *o, encoder *e)
{
    cmcr_pointbert_options po = cmcr_pointbert_default_options();
    po.float32_only = strcmp(o->precision, "f32") == 0;
    po.seed = (uint64_t)o->seed;
    po.xyz_only = o->xyz_only;
    cmcr_pointbert *p = NULL;
    if (cmcr_pointbert_load(o->model, &po, &p)) return cli_fail(o->cmd);
    e->m = p;
    cmcr_pointbert_info in = cmcr_pointbert_get_info(p);
    e->dim = in.dim;
    e->each = (size_t)in.input_floats;
    snprintf(e->how, sizeof e->how, "ULIP PointBERT weights (%s, width %d, %d blocks), FPS from %s",
             in.width == 6 ? "xyz + rgb" : "xyz", in.trans_dim, in.depth, o->seed ? "--seed" : "point 0");
    return 0;
}

static const char *const image_exts[] = {".jpg", ".jpeg", ".png", NULL};
static const char *const audio_exts[] = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", NULL};
static const char *const points_exts[] = {".npy", ".ply", ".xyz", ".txt", NULL};

/* The kinds. PointBERT has no text tower (ULIP's prompts go through CLIP's): no tokenize, no embed_ids. */
const encoder_kind encoder_kinds[] = {
    {"clip", "CLIP", "--images", "image", "images", "image", image_exts, "a photo of a {}.", CMCR_IMAGE, load_clip, clip_free,
     clip_read_inputs, clip_read_input, clip_read_memory, clip_embed_inputs, clip_tokenize, clip_embed_ids},
    {"clap", "LAION-CLAP", "--audio", "sound file", "clips", "clip", audio_exts, "This is a sound of {}.", CMCR_AUDIO, load_clap,
     clap_free, clap_read_inputs, clap_read_input, clap_read_memory, clap_embed_inputs, clap_tokenize, clap_embed_ids},
    {"pointbert", "ULIP PointBERT", "--points", "point cloud", "clouds", "cloud", points_exts,
     "a point cloud of a {}.", CMCR_POINTS, load_pointbert, pointbert_free, pointbert_read_inputs, pointbert_read_input,
     pointbert_read_memory, pointbert_embed_inputs, NULL, NULL},
    {0}};

/* ------------------------------------------------------------------ opening */

int encoder_probe(const char *cmd, const char *model, const encoder_kind **k)
{
    const char *kind = NULL;
    if (cmcr_encoder_kind(model, &kind)) return cli_fail(cmd);
    for (*k = encoder_kinds; (*k)->kind; (*k)++)
        if (strcmp((*k)->kind, kind) == 0) return 0;
    *k = NULL;
    char fmt[160];
    snprintf(fmt, sizeof fmt, "%%s: a %.40s checkpoint, which this command cannot use yet", kind);
    return encode_path_error(cmd, fmt, model);
}

int encoder_open(const encoder_opts *o, const encoder_kind *k, encoder *e)
{
    *e = (encoder){.k = k, .cmd = o->cmd, .bf16 = strcmp(o->precision, "bf16") == 0, .batch = o->batch,
                  .bad_hint = o->bad_hint ? o->bad_hint : ""};
    if (k->load(o, e)) return 1;
    e->progress = !o->quiet && cli_is_tty(2);
    e->start = cmcr_now_seconds();
    return 0;
}

void encoder_close(encoder *e)
{
    if (e->k && e->m) e->k->free(e->m);
    e->m = NULL;
}

double encoder_elapsed(const encoder *e) { return cmcr_now_seconds() - e->start; }

/* ------------------------------------------------------------------ gathering files */

bool path_has_ext(const char *name, const char *const *exts)
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
static int add_folder(const char *cmd, const char *dir, const char *const *exts, str_list *out, int depth)
{
    if (depth > 64) return encode_path_error(cmd, "%s: folders nested more than 64 deep (a link loop?)", dir);
    DIR *d = opendir(dir);
    if (!d) return encode_path_error(cmd, "%s: cannot open folder", dir);
    str_list here = {0};
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = join_path(dir, e->d_name);
        struct stat st;
        if (!p) rc = cli_error(cmd, 1, "out of memory");
        else if (stat(p, &st) != 0) free(p); /* a dangling link: not a media file */
        else if (S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && path_has_ext(e->d_name, exts))) {
            if (!list_push(&here, p)) rc = cli_error(cmd, 1, "out of memory");
        } else free(p);
    }
    closedir(d);
    if (here.n) qsort(here.v, (size_t)here.n, sizeof *here.v, by_name);
    for (int64_t i = 0; !rc && i < here.n; i++) {
        struct stat st;
        if (stat(here.v[i], &st) == 0 && S_ISDIR(st.st_mode)) rc = add_folder(cmd, here.v[i], exts, out, depth + 1);
        else if (!list_push(out, here.v[i])) rc = cli_error(cmd, 1, "out of memory");
        else here.v[i] = NULL; /* moved */
    }
    list_free(&here);
    return rc;
}

/* A list file: one path per line (relative ones from the list's folder); blank lines are
 * skipped. */
static int add_list(const char *cmd, const char *path, str_list *out)
{
    cli_lines lines;
    if (cli_read_lines(cmd, path, "paths", -1, &lines)) return 1;
    char *dir = strdup(path);
    if (!dir) return cli_lines_free(&lines), cli_error(cmd, 1, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int rc = 0;
    for (int64_t i = 0; !rc && i < lines.n; i++) {
        const char *l = lines.items[i];
        if (!l[0] || strspn(l, " \t") == strlen(l)) continue;
        char *p = (l[0] == '/' || !slash) ? strdup(l) : join_path(dir, l);
        if (!list_push(out, p)) rc = cli_error(cmd, 1, "out of memory");
    }
    free(dir);
    cli_lines_free(&lines);
    return rc;
}

/* A list file is named .lst, or .txt when txt_lists. */
static bool is_list_name(const char *p, bool txt_lists)
{
    if (path_has_ext(p, (const char *const[]){".lst", NULL})) return true;
    return txt_lists && path_has_ext(p, (const char *const[]){".txt", NULL});
}

/* "no images found" with the extensions searched. */
static int none_found(const char *cmd, const cli_strs *args, const char *flag, const char *const *exts,
                      const char *noun)
{
    char searched[200] = "";
    for (size_t i = 0; exts[i]; i++)
        snprintf(searched + strlen(searched), sizeof searched - strlen(searched), "%s%s", i ? ", " : "", exts[i]);
    char *shown = cli_printable(args->v[0]);
    int rc = cli_error(cmd, 1, "%s %s%s: no %ss found (folders are searched for %s)", flag,
                       shown ? shown : "(out of memory)", args->n > 1 ? " ..." : "", noun, searched);
    free(shown);
    return rc;
}

int collect_paths(const char *cmd, const cli_strs *args, const char *flag, const char *const *exts, bool txt_lists,
                  const char *noun, str_list *out)
{
    for (int i = 0; i < args->n; i++) {
        const char *a = args->v[i];
        struct stat st;
        int rc;
        if (stat(a, &st) != 0) {
            char fmt[96];
            snprintf(fmt, sizeof fmt, "%%s: cannot open %s, folder or list", noun);
            return encode_path_error(cmd, fmt, a);
        }
        if (S_ISDIR(st.st_mode)) rc = add_folder(cmd, a, exts, out, 0);
        else if (is_list_name(a, txt_lists)) rc = add_list(cmd, a, out);
        else rc = list_push(out, strdup(a)) ? 0 : cli_error(cmd, 1, "out of memory");
        if (rc) return rc;
    }
    return out->n ? 0 : none_found(cmd, args, flag, exts, noun);
}

/* .txt names a list unless .txt files are the kind's own inputs (ModelNet40's point clouds
 * are .txt files: for --points only .lst names a list). */
int encoder_collect(const char *cmd, const cli_strs *args, const char *flag, const encoder_kind *k, str_list *out)
{
    bool txt_lists = !path_has_ext("x.txt", k->exts);
    return collect_paths(cmd, args, flag, k->exts, txt_lists, k->noun, out);
}

/* ------------------------------------------------------------------ progress */

/* Ends an open progress line, so that a message after it starts on its own line. */
static void progress_break(encoder *e)
{
    if (e->open_line) fputc('\n', stderr);
    e->open_line = false;
}

static void show(encoder *e, const char *what, int64_t done, int64_t total, double *last)
{
    if (!e->progress) return;
    double t = cmcr_now_seconds();
    if (done < total && t - *last < 0.2) return;
    *last = t;
    double el = t - e->start, rate = el > 0 ? (double)done / el : 0;
    fprintf(stderr, "\rembedding %s: %lld/%lld (%.1f%%), %.1f/s", what, (long long)done, (long long)total,
            total ? 100.0 * (double)done / (double)total : 100.0, rate);
    e->open_line = done < total;
    if (e->open_line && rate > 0) fprintf(stderr, ", about %.0f s left   ", (double)(total - done) / rate);
    else if (!e->open_line) fprintf(stderr, "                 \n");
}

/* ------------------------------------------------------------------ files */

void encoded_free(encoded *r)
{
    list_free(&r->kept);
    list_free(&r->skipped);
    free(r->emb);
    free(r->patches);
    *r = (encoded){0};
}

/* Scratch of the batch loop. */
typedef struct batch_buf {
    float *buf;
    unsigned char *flags, *ok;
} batch_buf;

/* The files of one batch that could not be read: their messages kept and their rows dropped
 * from buf and flags, so that rows stay in input order. Returns the rows kept. */
static int64_t drop_bad(const encoder *e, char **paths, int64_t cnt, batch_buf *b, str_list *skipped)
{
    int64_t kept = 0;
    size_t each = e->each;
    for (int64_t i = 0; i < cnt; i++) {
        if (b->ok[i]) {
            if (kept != i) memmove(b->buf + (size_t)kept * each, b->buf + (size_t)i * each, each * sizeof(float));
            b->flags[kept++] = b->flags[i];
            continue;
        }
        /* read again for its message; the row is dropped */
        e->k->read_input(e->m, paths[i], b->buf + (size_t)i * each, b->flags + i);
        list_push(skipped, cli_printable(cmcr_last_error()));
    }
    return kept;
}

/* Files s .. s+cnt: read, embed, appended to r's rows. */
static int files_batch(encoder *e, const str_list *files, int64_t s, int64_t cnt, int normalize, bool skip_bad,
                       batch_buf *b, encoded *r)
{
    int64_t k = cnt;
    cmcr_status st = e->k->read_inputs(e->m, files->v + s, cnt, b->buf, b->flags, b->ok);
    if (st && !skip_bad) {
        progress_break(e);
        return cli_error(e->cmd, 1, "%s%s", cmcr_last_error(), e->bad_hint);
    }
    if (st) k = drop_bad(e, files->v + s, cnt, b, &r->skipped);
    float *pp = r->patches ? r->patches + (size_t)r->rows * e->patches * e->dim : NULL;
    if (k && e->k->embed_inputs(e->m, b->buf, b->flags, k, e->bf16, normalize, r->emb + (size_t)r->rows * e->dim, pp)) {
        progress_break(e);
        return cli_fail(e->cmd);
    }
    for (int64_t i = 0; i < cnt; i++)
        if (b->ok[i] && !list_push(&r->kept, strdup(files->v[s + i]))) return cli_error(e->cmd, 1, "out of memory");
    r->rows += k;
    return 0;
}

int encoder_embed_files(encoder *e, const str_list *files, int normalize, bool skip_bad, bool patches,
                        encoded *out)
{
    int64_t n = files->n, bs = e->batch < n ? e->batch : n;
    *out = (encoded){0};
    batch_buf b = {malloc((size_t)bs * e->each * sizeof(float)), calloc((size_t)bs, 1), malloc((size_t)bs)};
    out->emb = malloc((size_t)n * (size_t)e->dim * sizeof(float));
    out->patches = patches ? malloc((size_t)n * (size_t)e->patches * (size_t)e->dim * sizeof(float)) : NULL;
    int rc = 0;
    if (!b.buf || !out->emb || !b.ok || !b.flags || (patches && !out->patches))
        rc = cli_error(e->cmd, 1, "out of memory for %lld %s (--batch %lld)", (long long)n, e->k->what, (long long)bs);
    double last = 0;
    for (int64_t s = 0; !rc && s < n; s += bs) {
        int64_t cnt = n - s < bs ? n - s : bs;
        rc = files_batch(e, files, s, cnt, normalize, skip_bad, &b, out);
        if (!rc) show(e, e->k->what, s + cnt, n, &last);
    }
    free(b.buf);
    free(b.flags);
    free(b.ok);
    return rc;
}

/* ------------------------------------------------------------------ prompts */

int encoder_embed_texts(encoder *e, char *const *texts, int64_t n, const char *source, int normalize, float **emb)
{
    int32_t *ids = malloc((size_t)n * (size_t)e->context * sizeof(int32_t));
    *emb = malloc((size_t)n * (size_t)e->dim * sizeof(float));
    int rc = 0;
    if (!ids || !*emb) rc = cli_error(e->cmd, 1, "out of memory for %lld prompts", (long long)n);
    for (int64_t i = 0; !rc && i < n; i++) {
        char where[4200];
        snprintf(where, sizeof where, "%s:%lld", source, (long long)i + 1);
        if (e->k->tokenize(e->m, texts[i], where, ids + i * e->context)) rc = cli_fail(e->cmd);
    }
    double last = 0;
    for (int64_t s = 0; !rc && s < n; s += e->batch) {
        int64_t cnt = n - s < e->batch ? n - s : e->batch;
        if (e->k->embed_ids(e->m, ids + s * e->context, cnt, e->bf16, normalize, *emb + s * e->dim)) {
            progress_break(e);
            rc = cli_fail(e->cmd);
        }
        show(e, "prompts", s + cnt, n, &last);
    }
    free(ids);
    if (rc) free(*emb), *emb = NULL;
    return rc;
}
