/* clap_api.c - the public CLAP calls (include/cmcr.h): LAION-CLAP's two towers, its tokenizer
 * and the audio front end behind one handle. The towers are in htsat.c and roberta.c, the
 * tokenizer in text/roberta_bpe.c, the audio front end in media/audio.c. */
#include "encoders/beside.h"
#include "encoders/bind.h"
#include "encoders/htsat.h"
#include "encoders/read_files.h"
#include "encoders/roberta.h"
#include "media/audio.h"
#include "runtime/core.h"
#include "text/roberta_bpe.h"

#include <stdlib.h>
#include <string.h>

struct cmcr_clap {
    htsat_model *audio;
    roberta_model *text;
    roberta_bpe *bpe; /* NULL: no tokenizer */
    uint64_t seed;    /* the fusion path's chunk starts */
    char *origin;     /* the model's path, for messages */
    char *no_tokens;  /* why there is no tokenizer, for cmcr_clap_tokenize's refusal */
};

cmcr_clap_options cmcr_clap_default_options(void)
{
    cmcr_clap_options o = {NULL, 0, 0};
    return o;
}

/* Load the tokenizer at path and check it against the model's vocabulary. */
static cmcr_status load_tokenizer(cmcr_clap *c, const char *path)
{
    cmcr_status st = roberta_bpe_load(path, &c->bpe);
    int32_t want = roberta_model_info(c->text)->vocab;
    if (!st && roberta_bpe_vocab_size(c->bpe) != want) {
        char shown[1024];
        st = core_fail(CMCR_ESHAPE, "%s: the tokenizer has %d tokens but the model's word embedding has %d rows",
                       cmcr_printable(shown, sizeof shown, path), (int)roberta_bpe_vocab_size(c->bpe), (int)want);
    }
    if (!st && roberta_bpe_pad_id(c->bpe) != ROBERTA_PAD) {
        char shown[1024];
        st = core_fail(CMCR_EFORMAT, "%s: <pad> is id %d, but RoBERTa pads with %d",
                       cmcr_printable(shown, sizeof shown, path), (int)roberta_bpe_pad_id(c->bpe), ROBERTA_PAD);
    }
    if (st) {
        roberta_bpe_free(c->bpe);
        c->bpe = NULL;
    }
    return st;
}

/* A tokenizer found beside the model that cannot be used does not stop the model from
 * embedding audio: prompts are refused later, with the reason. */
static cmcr_status find_tokenizer(cmcr_clap *c)
{
    static const char *const names[] = {"vocab.json"};
    char *path = beside_find(c->origin, names, 1), shown[1024], buf[2048];
    const char *why = "no tokenizer beside the model (RoBERTa's vocab.json + merges.txt)";
    if (path && load_tokenizer(c, path) != CMCR_OK) {
        snprintf(buf, sizeof buf, "the tokenizer found beside the model cannot be used (%s)", cmcr_last_error());
        why = buf;
    }
    free(path);
    if (!c->bpe && !(c->no_tokens = strdup(why)))
        return core_fail(CMCR_ENOMEM, "%s: out of memory", cmcr_printable(shown, sizeof shown, c->origin));
    return CMCR_OK;
}

/* Both towers from the checkpoint's tensors (read once, freed before returning). */
static cmcr_status load_towers(cmcr_clap *c, const char *model, int float32_only)
{
    char shown[1024];
    cmcr_printable(shown, sizeof shown, model);
    cmcr_tensors *ts = NULL;
    cmcr_status st = bind_load_file(model, shown, "the LAION-CLAP checkpoint file (e.g. 630k-fusion-best.pt)", "CLAP",
                                    NULL, 0, &ts);
    if (!st && !cmcr_tensors_find(ts, "audio_branch.patch_embed.proj.weight"))
        st = core_fail(CMCR_EFORMAT, "%s: not a LAION-CLAP checkpoint: no 'audio_branch.patch_embed.proj.weight' in its "
                       "state_dict", shown);
    if (!st) st = htsat_model_from_tensors_with(ts, shown, float32_only, &c->audio);
    if (!st) st = roberta_model_from_tensors_with(ts, shown, float32_only, &c->text);
    cmcr_tensors_free(ts);
    if (!st && htsat_model_info(c->audio)->embed_dim != roberta_model_info(c->text)->embed_dim)
        st = core_fail(CMCR_ESHAPE, "%s: the audio projection gives %d values but the text projection %d", shown,
                       (int)htsat_model_info(c->audio)->embed_dim, (int)roberta_model_info(c->text)->embed_dim);
    return st;
}

cmcr_status cmcr_clap_load(const char *model, const cmcr_clap_options *opts, cmcr_clap **out)
{
    cmcr_clap_options o = opts ? *opts : cmcr_clap_default_options();
    if (!out) return core_fail(CMCR_EINVAL, "cmcr_clap_load: NULL argument");
    *out = NULL;
    if (!model || !*model) return core_fail(CMCR_EINVAL, "cmcr_clap_load: no model path");
    cmcr_clap *c = calloc(1, sizeof *c);
    if (!c || !(c->origin = strdup(model))) {
        char shown[1024];
        free(c);
        return core_fail(CMCR_ENOMEM, "%s: out of memory", cmcr_printable(shown, sizeof shown, model));
    }
    c->seed = o.seed;
    cmcr_status st = load_towers(c, model, o.float32_only);
    if (!st) st = o.tokenizer ? load_tokenizer(c, o.tokenizer) : find_tokenizer(c);
    if (st) {
        cmcr_clap_free(c);
        return st;
    }
    *out = c;
    return CMCR_OK;
}

void cmcr_clap_free(cmcr_clap *c)
{
    if (!c) return;
    htsat_model_free(c->audio);
    roberta_model_free(c->text);
    roberta_bpe_free(c->bpe);
    free(c->origin);
    free(c->no_tokens);
    free(c);
}

cmcr_clap_info cmcr_clap_get_info(const cmcr_clap *c)
{
    if (!c) return (cmcr_clap_info){0};
    const htsat_info *a = htsat_model_info(c->audio);
    const roberta_info *t = roberta_model_info(c->text);
    cmcr_clap_info r = {a->embed_dim, ROBERTA_CONTEXT, c->bpe != NULL, AUDIO_RATE, AUDIO_CLIP,
                        (int64_t)AUDIO_FUSION_CHANNELS * AUDIO_CLIP_FRAMES * AUDIO_N_MELS,
                        a->embed, a->stages, t->width, t->layers};
    return r;
}

cmcr_status cmcr_clap_audio(const cmcr_clap *c, const char *path, float *input, unsigned char *longer)
{
    if (!c || !path || !input || !longer) return core_fail(CMCR_EINVAL, "cmcr_clap_audio: NULL argument");
    bool l = false;
    cmcr_status st = audio_clap_input_file(path, c->seed, input, &l);
    *longer = l;
    return st;
}

cmcr_status cmcr_clap_audio_memory(const cmcr_clap *c, const void *data, size_t len, const char *name, float *input,
                                   unsigned char *longer)
{
    if (!c || !data || !input || !longer) return core_fail(CMCR_EINVAL, "cmcr_clap_audio_memory: NULL argument");
    bool l = false;
    cmcr_status st = audio_clap_input_memory(data, len, name ? name : "(memory)", c->seed, input, &l);
    *longer = l;
    return st;
}

static cmcr_status read_audio(const void *ctx, const char *path, float *input, unsigned char *longer)
{
    return cmcr_clap_audio(ctx, path, input, longer);
}

cmcr_status cmcr_clap_audio_files(const cmcr_clap *c, const char *const *paths, int64_t n, float *input,
                                  unsigned char *longer, unsigned char *ok)
{
    if (!c || !paths || !input || !longer || !ok || n < 0)
        return core_fail(CMCR_EINVAL, "cmcr_clap_audio_files: NULL argument or negative count");
    size_t each = (size_t)AUDIO_FUSION_CHANNELS * AUDIO_CLIP_FRAMES * AUDIO_N_MELS;
    return read_files(read_audio, c, paths, n, input, each, longer, ok);
}

cmcr_status cmcr_clap_embed_audio(const cmcr_clap *c, const float *input, const unsigned char *longer, int64_t n,
                                  int bf16, int normalize, float *emb)
{
    if (!c || (n > 0 && (!input || !longer || !emb))) return core_fail(CMCR_EINVAL, "cmcr_clap_embed_audio: NULL argument");
    cmcr_status st = htsat_encode(c->audio, input, longer, n, bf16, emb);
    if (!st && normalize) cmcr_normalize_rows(emb, n, htsat_model_info(c->audio)->embed_dim);
    return st;
}

cmcr_status cmcr_clap_tokenize(const cmcr_clap *c, const char *text, size_t len, const char *name, int32_t *ids)
{
    char shown[1024];
    if (!c || !text || !name || !ids) return core_fail(CMCR_EINVAL, "cmcr_clap_tokenize: NULL argument");
    if (!c->bpe)
        return core_fail(CMCR_EINVAL, "%s: cannot embed prompts: %s; name a tokenizer (--tokenizer)",
                         cmcr_printable(shown, sizeof shown, c->origin), c->no_tokens ? c->no_tokens : "none");
    return roberta_bpe_encode(c->bpe, text, len, name, ids, ROBERTA_CONTEXT, NULL, NULL);
}

cmcr_status cmcr_clap_embed_ids(const cmcr_clap *c, const int32_t *ids, int64_t n, int bf16, int normalize,
                                float *emb)
{
    if (!c || (n > 0 && (!ids || !emb))) return core_fail(CMCR_EINVAL, "cmcr_clap_embed_ids: NULL argument");
    cmcr_status st = roberta_encode(c->text, ids, n, bf16, emb);
    if (!st && normalize) cmcr_normalize_rows(emb, n, roberta_model_info(c->text)->embed_dim);
    return st;
}
