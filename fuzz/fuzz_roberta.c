/* fuzz_roberta.c - libFuzzer target: CLAP's RoBERTa text tower from memory through
 * roberta_model_from_tensors (sizes from shapes, every tensor checked) and, when it loads and
 * is small, roberta_encode on a few deterministic rows: a short prompt, a full 77-token one
 * with a pad inside, and a row of pads only.
 *
 * As in fuzz_clip.c: even a tiny RoBERTa holds some 40 K weights, so an input may be a
 * safetensors file cut after its header; when the header's tensors need more data than the
 * input holds, the harness appends it (the input's own bytes first, then a finite pattern).
 * fuzz/make_seeds.sh writes the header of scripts/clap_ref_roberta.py's tiny model.
 * The filling is fuzz_fill_safetensors (fuzz_common.h), shared by the model targets. */
#include "fuzz_common.h"
#include "encoders/roberta.h"

static int small_enough(const roberta_info *in)
{
    return in->width <= 256 && in->layers <= 4 && in->mlp <= 1024 && in->embed_dim <= 256;
}

static void run_tower(const roberta_model *m)
{
    const roberta_info *in = roberta_model_info(m);
    int32_t ids[3 * ROBERTA_CONTEXT];
    float *emb = malloc(sizeof(float) * 3 * (size_t)in->embed_dim);
    if (!emb) return;
    for (int i = 0; i < 3 * ROBERTA_CONTEXT; i++) ids[i] = ROBERTA_PAD;
    ids[0] = 0, ids[1] = in->vocab - 1, ids[2] = in->vocab > 2 ? 2 : 0;
    for (int i = 0; i < ROBERTA_CONTEXT; i++) ids[ROBERTA_CONTEXT + i] = i == 5 ? ROBERTA_PAD : i % in->vocab;
    (void)roberta_encode(m, ids, 3, 0, emb);
    free(emb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_fill_safetensors(&data, &size);
    cmcr_tensors *ts = NULL;
    roberta_model *m = NULL;
    if (cmcr_tensors_load_memory(data, size, CMCR_FORMAT_AUTO, "input", &ts) == CMCR_OK &&
        roberta_model_from_tensors(ts, "input", &m) == CMCR_OK && small_enough(roberta_model_info(m)))
        run_tower(m);
    roberta_model_free(m);
    cmcr_tensors_free(ts);
    free(buf);
    return 0;
}
