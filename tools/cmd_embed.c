/* cmd_embed.c - cmcr embed: images (CLIP), sound files (CLAP), point clouds (ULIP's PointBERT)
 * and prompts (CLIP or CLAP) to
 * embeddings (.npy). The model's kind decides the encoder (cmcr_encoder_kind); the encoders,
 * the file gathering and the batch loops are tools/encode.c's. */
#define _DEFAULT_SOURCE /* strdup */
#include <stdio.h>
#include "encode.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct embed_cli {
    const char *model, *tokenizer, *activation, *text, *out, *patches, *names, *precision;
    cli_strs images, audio, points;
    long long batch, seed;
    bool no_normalize, skip_bad, quiet, xyz_only;
} embed_cli;

/* ------------------------------------------------------------------ summary */

/* The closing line: what was written, the rate since the model was loaded (reading the
 * inputs, embedding; not loading or saving), and how the weights ran. */
static void summary(const char *what, int64_t rows, const char *out, const encoder *e, const char *how, double t)
{
    char *shown = cli_printable(out);
    double rate = t > 0 ? (double)rows / t : 0.0;
    fprintf(stderr, "cmcr embed: %lld %s -> %s (%lld x %d) in %.2f s (%.*f %s/s); %s\n", (long long)rows, what,
            shown ? shown : "(out of memory)", (long long)rows, e->dim, t, rate < 10 ? 2 : 1, rate, what, how);
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

static int embed_media(const embed_cli *a, encoder *e, const str_list *files)
{
    encoded r;
    int rc = encoder_embed_files(e, files, !a->no_normalize, a->skip_bad, a->patches != NULL, &r);
    if (!rc && r.rows == 0)
        rc = cli_error("embed", 1, "no %s could be read (%lld skipped; the first: %s)", e->k->one,
                       (long long)r.skipped.n, r.skipped.n ? r.skipped.v[0] : "?");
    double secs = encoder_elapsed(e);
    if (!rc) rc = save_outputs(a, r.emb, r.patches, r.rows, e, &r.kept);
    if (!rc && r.skipped.n) {
        fprintf(stderr, "cmcr embed: skipped %lld of %lld %s:\n", (long long)r.skipped.n, (long long)files->n,
                e->k->what);
        for (int64_t i = 0; i < r.skipped.n; i++) fprintf(stderr, "  %s\n", r.skipped.v[i]);
    }
    if (!rc && !a->quiet) summary(e->k->what, r.rows, a->out, e, e->how, secs);
    encoded_free(&r);
    return rc;
}

/* ------------------------------------------------------------------ prompts */

static int embed_text(const embed_cli *a, encoder *e)
{
    cli_lines lines;
    if (cli_read_lines("embed", a->text, "prompts", -1, &lines)) return 1;
    int64_t n = lines.n;
    if (n == 0) return cli_lines_free(&lines), cli_error("embed", 1, "%s: no prompts (the file is empty)", a->text);
    float *emb = NULL;
    int rc = encoder_embed_texts(e, lines.items, n, a->text, !a->no_normalize, &emb);
    str_list none = {0};
    double secs = encoder_elapsed(e);
    if (!rc && (rc = save_outputs(a, emb, NULL, n, e, &none)) == 0 && !a->quiet)
        summary("prompts", n, a->out, e, e->how, secs);
    free(emb);
    cli_lines_free(&lines);
    return rc;
}

/* ------------------------------------------------------------------ the command */


static int check_options(const embed_cli *a)
{
    int inputs = (a->images.n > 0) + (a->audio.n > 0) + (a->points.n > 0) + (a->text != NULL);
    if (inputs != 1) return cli_error("embed", 2, "give one of --images, --audio, --points or --text (see --help)");
    if (a->xyz_only && !a->points.n) return cli_error("embed", 2, "--xyz-only needs --points");
    if (a->patches && !a->images.n) return cli_error("embed", 2, "--patches needs --images");
    if (a->names && a->text) return cli_error("embed", 2, "--names needs --images, --audio or --points (prompts keep the text file's order)");
    if (cli_check_precision("embed", a->precision)) return 2;
    if (a->activation && strcmp(a->activation, "quick_gelu") != 0 && strcmp(a->activation, "gelu") != 0)
        return cli_error("embed", 2, "--activation must be quick_gelu or gelu, not '%s'", a->activation);
    cli_range r[] = {{"batch", a->batch, 1, 4096}, {"seed", a->seed, 0, LLONG_MAX}};
    return cli_check_ranges("embed", r, 2);
}

/* The model's kind must fit the inputs: each input flag belongs to one kind (images to CLIP,
 * sounds to LAION-CLAP). */
static int check_kind(const embed_cli *a, const encoder_kind *k)
{
    const char *flag = a->images.n ? "--images" : a->audio.n ? "--audio" : a->points.n ? "--points" : NULL;
    const encoder_kind *want = NULL;
    for (const encoder_kind *r = encoder_kinds; flag && r->kind; r++)
        if (strcmp(r->flag, flag) == 0) want = r;
    char *shown = cli_printable(a->model);
    int rc = 0;
    if (want && want != k)
        rc = cli_error("embed", 2, "%s: %s needs a %s model, and this is a %s checkpoint", shown, flag, want->name,
                       k->name);
    else if (a->text && !k->tokenize)
        rc = cli_error("embed", 2, "%s: a %s checkpoint has no text tower: embed the prompts with CLIP (the text side "
                       "of ulip_clip.pt)", shown, k->name);
    else if (a->activation && strcmp(k->kind, "clip") != 0)
        rc = cli_error("embed", 2, "%s: --activation is for CLIP models (%s's are fixed)", shown, k->name);
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
    size_t n = 3 + (size_t)extra.n + (size_t)a->images.n + (size_t)a->audio.n + (size_t)a->points.n + (size_t)files->n;
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
    for (int i = 0; i < a->points.n; i++) in[nin++] = (cli_file){"--points", a->points.v[i], NULL, NULL, NULL};
    const char *noun = a->audio.n ? "sound file" : a->points.n ? "point cloud" : "image";
    for (int64_t i = 0; i < files->n; i++) in[nin++] = (cli_file){noun, files->v[i], NULL, NULL, NULL};
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
        if (strpbrk(files->v[i], "\r\n")) return encode_path_error("embed", "%s: a path with a line break cannot be listed in --names", files->v[i]);
    return 0;
}

int cmd_embed(int argc, char **argv)
{
    embed_cli a;
    cli_opt opts[] = {
        {"model", OPT_STR, &a.model, NULL, "CLIP weights (a Hugging Face folder or a .safetensors/.bin/.pt file), "
                                           "LAION-CLAP weights (a .pt such as 630k-fusion-best.pt, or .safetensors) "
                                           "or ULIP's (pointbert_ULIP-2.pt)"},
        {"tokenizer", OPT_STR, &a.tokenizer, "", "vocab.json (merges.txt beside it), a folder holding both, or "
                                                 "bpe_simple_vocab_16e6.txt.gz (CLIP); default: found beside the model"},
        {"activation", OPT_STR, &a.activation, "", "CLIP: quick_gelu or gelu for both towers; default: the model's "
                                                   "config.json, else quick_gelu (OpenAI's models)"},
        {"images", OPT_STRS, &a.images, "", "images (JPEG, PNG), folders of them (searched at any depth) or list "
                                            "files (.txt/.lst, one path per line); CLIP"},
        {"audio", OPT_STRS, &a.audio, "", "sound files (WAV, FLAC, OGG, MP3), folders of them or list files; CLAP"},
        {"points", OPT_STRS, &a.points, "", "point clouds (.npy, the C-MCR demo's .npy, .ply, .xyz/.txt text), "
                                            "folders of them or .lst list files; PointBERT (docs/points.md)"},
        {"xyz-only", OPT_FLAG, &a.xyz_only, "", "PointBERT: give an xyz model the first 3 columns of wider clouds "
                                                 "(e.g. ModelNet40's x,y,z,nx,ny,nz); default: refused"},
        {"text", OPT_STR, &a.text, "", "a text file of prompts, one per line"},
        {"out", OPT_STR, &a.out, NULL, "embeddings (.npy, rows in input order)"},
        {"patches", OPT_STR, &a.patches, "", "also the patch embeddings, N x patches x dim (.npy; images only)"},
        {"names", OPT_STR, &a.names, "", "also the path of each row, one per line (.txt; images, sounds or clouds)"},
        {"batch", OPT_INT, &a.batch, "32", "images, clips, clouds or prompts per forward pass"},
        {"precision", OPT_STR, &a.precision, "f32", "f32 or bf16 products"},
        {"seed", OPT_INT, &a.seed, "0", "CLAP: draws the chunk starts of clips longer than 10 s (docs/audio.md); "
                                        "PointBERT: 0 starts sampling at point 0, else at a point drawn from it "
                                        "(docs/points.md)"},
        {"no-normalize", OPT_FLAG, &a.no_normalize, "", "keep the raw projections (default: L2-normalised rows)"},
        {"skip-bad", OPT_FLAG, &a.skip_bad, "", "go on past files that cannot be read, and list them"},
        {"quiet", OPT_FLAG, &a.quiet, "", "no progress or summary on stderr"},
        {0}};
    cli_cmd cmd = {"embed", "", "Embed images (CLIP), sounds (LAION-CLAP), point clouds (ULIP's PointBERT) or prompts (CLIP "
                   "or LAION-CLAP) (docs/encoders.md).",
                   0, opts};
    char *pos[8];
    int rc = cli_parse(&cmd, argc, argv, pos);
    if (rc >= 0) return rc;
    if ((rc = check_options(&a))) return rc;
    const encoder_kind *k = NULL;
    if (encoder_probe("embed", a.model, &k)) return 1;
    if ((rc = check_kind(&a, k))) return rc;
    str_list files = {0};
    if (a.images.n) rc = encoder_collect("embed", &a.images, "--images", k, &files);
    if (a.audio.n) rc = encoder_collect("embed", &a.audio, "--audio", k, &files);
    if (a.points.n) rc = encoder_collect("embed", &a.points, "--points", k, &files);
    if (!rc) rc = check_names(&a, &files);
    if (!rc) rc = check_files(&a, &files);
    if (rc) return list_free(&files), rc;
    encoder e;
    encoder_opts o = {"embed", a.model, a.tokenizer, a.activation, a.precision, a.seed, a.batch, a.text != NULL, a.quiet,
                      " (--skip-bad goes on without such files)", a.xyz_only};
    rc = encoder_open(&o, k, &e);
    if (!rc) rc = a.text ? embed_text(&a, &e) : embed_media(&a, &e, &files);
    list_free(&files);
    encoder_close(&e);
    return rc;
}
