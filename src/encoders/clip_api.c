/* clip_api.c - the public CLIP calls (include/cmcr.h): a model, its tokenizer and the image
 * front end behind one handle. The towers are in clip.c, the tokenizer in text/clip_bpe.c,
 * the image processing in media/image.c. */
#include "encoders/beside.h"
#include "encoders/clip.h"
#include "encoders/read_files.h"
#include "media/image.h"
#include "runtime/core.h"
#include "runtime/vmath.h"
#include "text/clip_bpe.h"

#include <stdlib.h>
#include <string.h>

/* Hugging Face CLIPImageProcessor's defaults (OpenAI's training statistics). */
static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

struct cmcr_clip {
    clip_model *model;
    clip_bpe *bpe;   /* NULL: no tokenizer */
    char *origin;    /* the model's path, for messages */
    char *no_tokens; /* why there is no tokenizer, for cmcr_clip_tokenize's refusal */
};

/* The tokenizer file beside the model, malloc'd: Hugging Face's vocab.json (with merges.txt),
 * else OpenAI's merge list; NULL when there is neither (or out of memory). */
static char *tokenizer_beside(const char *model)
{
    static const char *const names[] = {"vocab.json", "bpe_simple_vocab_16e6.txt.gz"};
    return beside_find(model, names, sizeof names / sizeof names[0]);
}

/* Load the tokenizer at path and check it against the model's vocabulary. */
static cmcr_status load_tokenizer(cmcr_clip *c, const char *path)
{
    cmcr_status st = clip_bpe_load(path, &c->bpe);
    int32_t want = clip_model_info(c->model)->vocab;
    if (!st && clip_bpe_vocab_size(c->bpe) != want) {
        char shown[1024];
        st = core_fail(CMCR_ESHAPE, "%s: the tokenizer has %d tokens but the model's token embedding has %d rows",
                       cmcr_printable(shown, sizeof shown, path), (int)clip_bpe_vocab_size(c->bpe), (int)want);
    }
    if (st) {
        clip_bpe_free(c->bpe);
        c->bpe = NULL;
    }
    return st;
}

/* A tokenizer found beside the model that cannot be used does not stop the model from
 * embedding images: prompts are refused later, with the reason. */
static cmcr_status find_tokenizer(cmcr_clip *c)
{
    char *path = tokenizer_beside(c->origin), shown[1024];
    const char *why = "no tokenizer beside the model (vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz)";
    char buf[2048];
    if (path && load_tokenizer(c, path) != CMCR_OK) {
        snprintf(buf, sizeof buf, "the tokenizer found beside the model cannot be used (%s)", cmcr_last_error());
        why = buf;
    }
    free(path);
    if (!c->bpe && !(c->no_tokens = strdup(why))) return core_fail(CMCR_ENOMEM, "%s: out of memory",
                                                                   cmcr_printable(shown, sizeof shown, c->origin));
    return CMCR_OK;
}

cmcr_clip_options cmcr_clip_default_options(void)
{
    cmcr_clip_options o = {NULL, NULL, 0};
    return o;
}

cmcr_status cmcr_clip_load(const char *model, const cmcr_clip_options *opts, cmcr_clip **out)
{
    cmcr_clip_options o = opts ? *opts : cmcr_clip_default_options();
    const char *tokenizer = o.tokenizer;
    clip_load_opts lo = {o.activation, o.float32_only};
    *out = NULL;
    if (!model || !*model) return core_fail(CMCR_EINVAL, "cmcr_clip_load: no model path");
    cmcr_clip *c = calloc(1, sizeof *c);
    if (!c || !(c->origin = strdup(model))) {
        free(c);
        return core_fail(CMCR_ENOMEM, "%s: out of memory", model);
    }
    cmcr_status st = clip_model_load_with(model, &lo, &c->model);
    if (!st) st = tokenizer ? load_tokenizer(c, tokenizer) : find_tokenizer(c);
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
    free(c->no_tokens);
    free(c);
}

cmcr_clip_info cmcr_clip_get_info(const cmcr_clip *c)
{
    if (!c) return (cmcr_clip_info){0};
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
    if (!c || !path || !pixels) return core_fail(CMCR_EINVAL, "cmcr_clip_pixels: NULL argument");
    image_rgb im = {0};
    cmcr_status st = image_decode_file(path, &im);
    if (!st) st = preprocess(c, &im, path, pixels);
    image_rgb_free(&im);
    return st;
}

cmcr_status cmcr_clip_pixels_memory(const cmcr_clip *c, const void *data, size_t len, const char *name, float *pixels)
{
    if (!c || !data || !name || !pixels) return core_fail(CMCR_EINVAL, "cmcr_clip_pixels_memory: NULL argument");
    image_rgb im = {0};
    cmcr_status st = image_decode_memory(data, len, name, &im);
    if (!st) st = preprocess(c, &im, name, pixels);
    image_rgb_free(&im);
    return st;
}

static cmcr_status read_pixels(const void *ctx, const char *path, float *input, unsigned char *flag)
{
    (void)flag;
    return cmcr_clip_pixels(ctx, path, input);
}

cmcr_status cmcr_clip_pixels_files(const cmcr_clip *c, const char *const *paths, int64_t n, float *pixels,
                                   unsigned char *ok)
{
    if (!c || !paths || !pixels || !ok || n < 0)
        return core_fail(CMCR_EINVAL, "cmcr_clip_pixels_files: NULL argument or negative count");
    int32_t s = clip_model_info(c->model)->image_size;
    /* One image per thread: decoding is serial inside libjpeg and libpng. */
    return read_files(read_pixels, c, paths, n, pixels, (size_t)3 * (size_t)s * (size_t)s, NULL, ok);
}

cmcr_status cmcr_clip_embed_pixels(const cmcr_clip *c, const float *pixels, int64_t n, int bf16, int normalize,
                                   float *emb, float *patches)
{
    if (!c) return core_fail(CMCR_EINVAL, "cmcr_clip_embed_pixels: NULL model");
    const clip_info *i = clip_model_info(c->model);
    cmcr_status st = clip_encode_image(c->model, pixels, n, bf16, emb, patches);
    if (st || !normalize) return st;
    cmcr_normalize_rows(emb, n, i->embed_dim);
    if (patches) cmcr_normalize_rows(patches, n * i->grid * i->grid, i->embed_dim);
    return CMCR_OK;
}

cmcr_status cmcr_clip_tokenize(const cmcr_clip *c, const char *text, size_t len, const char *name, int32_t *ids)
{
    char shown[1024];
    if (!c) return core_fail(CMCR_EINVAL, "cmcr_clip_tokenize: NULL model");
    if (!c->bpe)
        return core_fail(CMCR_EINVAL, "%s: cannot embed prompts: %s; name a tokenizer (--tokenizer)",
                         cmcr_printable(shown, sizeof shown, c->origin), c->no_tokens ? c->no_tokens : "none");
    return clip_bpe_encode(c->bpe, text, len, name, ids, clip_model_info(c->model)->context, NULL);
}

cmcr_status cmcr_clip_embed_ids(const cmcr_clip *c, const int32_t *ids, int64_t n, int bf16, int normalize,
                                float *emb)
{
    if (!c) return core_fail(CMCR_EINVAL, "cmcr_clip_embed_ids: NULL model");
    cmcr_status st = clip_encode_text(c->model, ids, n, bf16, emb);
    if (!st && normalize) cmcr_normalize_rows(emb, n, clip_model_info(c->model)->embed_dim);
    return st;
}
