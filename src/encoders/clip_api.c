/* clip_api.c - the public CLIP calls (include/cmcr.h): a model, its tokenizer and the image
 * front end behind one handle. The towers are in clip.c, the tokenizer in text/clip_bpe.c,
 * the image processing in media/image.c. */
#include "encoders/clip.h"
#include "media/image.h"
#include "runtime/core.h"
#include "runtime/vmath.h"
#include "text/clip_bpe.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Hugging Face CLIPImageProcessor's defaults (OpenAI's training statistics). */
static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

struct cmcr_clip {
    clip_model *model;
    clip_bpe *bpe; /* NULL: no tokenizer found */
    char *origin;  /* the model's path, for messages */
};

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir + "/" + name into buf (cap bytes); false when it does not fit. */
static bool join(char *buf, size_t cap, const char *dir, const char *name)
{
    return (size_t)snprintf(buf, cap, "%s/%s", dir, name) < cap;
}

/* The folder a model lives in: the model itself when it is one, else its file's folder. */
static bool model_dir(const char *model, char *buf, size_t cap)
{
    if (is_dir(model)) return (size_t)snprintf(buf, cap, "%s", model) < cap;
    const char *slash = strrchr(model, '/');
    if (!slash) return (size_t)snprintf(buf, cap, ".") < cap;
    size_t n = slash == model ? 1 : (size_t)(slash - model);
    if (n >= cap) return false;
    memcpy(buf, model, n);
    buf[n] = '\0';
    return true;
}

/* A tokenizer beside the model: Hugging Face's vocab.json (+ merges.txt), else OpenAI's merge
 * list. NULL *out when there is neither. */
static cmcr_status find_tokenizer(const char *model, clip_bpe **out)
{
    static const char *const names[] = {"vocab.json", "bpe_simple_vocab_16e6.txt.gz"};
    char dir[4096], path[4200];
    *out = NULL;
    if (!model_dir(model, dir, sizeof dir)) return CMCR_OK;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (join(path, sizeof path, dir, names[i]) && is_file(path)) return clip_bpe_load(path, out);
    return CMCR_OK;
}

cmcr_clip_options cmcr_clip_default_options(void)
{
    cmcr_clip_options o = {NULL, NULL};
    return o;
}

cmcr_status cmcr_clip_load(const char *model, const cmcr_clip_options *opts, cmcr_clip **out)
{
    cmcr_clip_options o = opts ? *opts : cmcr_clip_default_options();
    const char *tokenizer = o.tokenizer;
    clip_load_opts lo = {o.activation};
    *out = NULL;
    if (!model || !*model) return core_fail(CMCR_EINVAL, "cmcr_clip_load: no model path");
    cmcr_clip *c = calloc(1, sizeof *c);
    if (!c || !(c->origin = strdup(model))) {
        free(c);
        return core_fail(CMCR_ENOMEM, "%s: out of memory", model);
    }
    cmcr_status st = clip_model_load_with(model, &lo, &c->model);
    if (!st) st = tokenizer ? clip_bpe_load(tokenizer, &c->bpe) : find_tokenizer(model, &c->bpe);
    if (!st && c->bpe && clip_bpe_vocab_size(c->bpe) != clip_model_info(c->model)->vocab)
        st = core_fail(CMCR_ESHAPE, "%s: the tokenizer has %d tokens but the model's token embedding has %d rows",
                       tokenizer ? tokenizer : model, (int)clip_bpe_vocab_size(c->bpe),
                       (int)clip_model_info(c->model)->vocab);
    if (st) {
        cmcr_clip_free(c);
        return st;
    }
    *out = c;
    return CMCR_OK;
}

void cmcr_clip_free(cmcr_clip *c)
{
    if (!c) return;
    clip_model_free(c->model);
    clip_bpe_free(c->bpe);
    free(c->origin);
    free(c);
}

cmcr_clip_info cmcr_clip_get_info(const cmcr_clip *c)
{
    const clip_info *i = clip_model_info(c->model);
    cmcr_clip_info r = {i->embed_dim, i->image_size,      i->grid * i->grid, i->context,
                        c->bpe != NULL, i->layout, i->activation, i->text_activation};
    return r;
}

/* The decoded image through the processor's resize, crop and normalisation. */
static cmcr_status preprocess(const cmcr_clip *c, const image_rgb *im, const char *name, float *pixels)
{
    int32_t s = clip_model_info(c->model)->image_size;
    uint8_t *crop = malloc((size_t)s * (size_t)s * 3);
    if (!crop) return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    cmcr_status st = image_clip_crop(im, s, name, crop);
    if (!st) image_to_chw(crop, s, clip_mean, clip_std, pixels);
    free(crop);
    return st;
}

cmcr_status cmcr_clip_pixels(const cmcr_clip *c, const char *path, float *pixels)
{
    image_rgb im = {0};
    cmcr_status st = image_decode_file(path, &im);
    if (!st) st = preprocess(c, &im, path, pixels);
    image_rgb_free(&im);
    return st;
}

cmcr_status cmcr_clip_pixels_memory(const cmcr_clip *c, const void *data, size_t len, const char *name, float *pixels)
{
    image_rgb im = {0};
    cmcr_status st = image_decode_memory(data, len, name, &im);
    if (!st) st = preprocess(c, &im, name, pixels);
    image_rgb_free(&im);
    return st;
}

cmcr_status cmcr_clip_pixels_files(const cmcr_clip *c, const char *const *paths, int64_t n, float *pixels,
                                   unsigned char *ok)
{
    int32_t s = clip_model_info(c->model)->image_size;
    size_t each = (size_t)3 * (size_t)s * (size_t)s;
    /* One image per thread: decoding is serial inside libjpeg and libpng. The messages of
     * the worker threads stay in their threads, so the first failure is read again below. */
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; i++) {
        ok[i] = cmcr_clip_pixels(c, paths[i], pixels + (size_t)i * each) == CMCR_OK;
        if (!ok[i]) memset(pixels + (size_t)i * each, 0, each * sizeof(float));
    }
    for (int64_t i = 0; i < n; i++)
        if (!ok[i]) {
            cmcr_status st = cmcr_clip_pixels(c, paths[i], pixels + (size_t)i * each);
            memset(pixels + (size_t)i * each, 0, each * sizeof(float));
            return st ? st : core_fail(CMCR_EIO, "%s: could not be read the first time", paths[i]);
        }
    return CMCR_OK;
}

static void normalize_rows(float *x, int64_t rows, int64_t cols)
{
    for (int64_t i = 0; i < rows; i++) vm_normalize_row(x + i * cols, x + i * cols, cols);
}

cmcr_status cmcr_clip_embed_pixels(const cmcr_clip *c, const float *pixels, int64_t n, int bf16, int normalize,
                                   float *emb, float *patches)
{
    const clip_info *i = clip_model_info(c->model);
    cmcr_status st = clip_encode_image(c->model, pixels, n, bf16, emb, patches);
    if (st || !normalize) return st;
    normalize_rows(emb, n, i->embed_dim);
    if (patches) normalize_rows(patches, n * i->grid * i->grid, i->embed_dim);
    return CMCR_OK;
}

cmcr_status cmcr_clip_tokenize(const cmcr_clip *c, const char *text, size_t len, const char *name, int32_t *ids)
{
    if (!c->bpe)
        return core_fail(CMCR_EINVAL,
                         "%s: no tokenizer: none beside the model (vocab.json + merges.txt, or "
                         "bpe_simple_vocab_16e6.txt.gz); name one (--tokenizer)",
                         c->origin);
    return clip_bpe_encode(c->bpe, text, len, name, ids, clip_model_info(c->model)->context, NULL);
}

cmcr_status cmcr_clip_embed_ids(const cmcr_clip *c, const int32_t *ids, int64_t n, int bf16, int normalize,
                                float *emb)
{
    cmcr_status st = clip_encode_text(c->model, ids, n, bf16, emb);
    if (!st && normalize) normalize_rows(emb, n, clip_model_info(c->model)->embed_dim);
    return st;
}
