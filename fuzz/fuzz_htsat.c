/* fuzz_htsat.c - libFuzzer target: an HTSAT checkpoint (CLAP's audio tower) from memory through
 * htsat_model_from_tensors (sizes from shapes, every tensor and buffer checked) and, when it
 * loads and is small, the forward pass on one short and one long deterministic clip.
 *
 * As in fuzz_clip.c, an input may be a safetensors file cut after its header: when the
 * header's tensors need more data than the input holds, the harness appends it (the input's
 * own bytes first, then a pattern that is finite in every dtype), so that mutations reach the
 * names, shapes and dtypes the loader checks. fuzz/make_seeds.sh writes the header of
 * scripts/clap_ref_htsat.py's tiny model.
 * The filling is fuzz_fill_safetensors (fuzz_common.h), shared by the model targets. */
#include "fuzz_common.h"
#include "encoders/htsat.h"

/* The forward pass always runs 4096 tokens per clip: only on the smallest models. */
static int small_enough(const htsat_info *in)
{
    int blocks = 0;
    for (int s = 0; s < in->stages; s++) blocks += in->depths[s];
    return in->embed <= 8 && in->width <= 64 && blocks <= 6 && in->hidden <= 512 && in->embed_dim <= 512;
}

static void run(const htsat_model *m)
{
    const int64_t per = HTSAT_CHANNELS * HTSAT_FRAMES * HTSAT_MELS;
    float *mel = malloc(sizeof(float) * (size_t)(2 * per)), *emb = malloc(sizeof(float) * 2 * 512);
    uint8_t longer[2] = {0, 1};
    if (mel && emb) {
        for (int64_t i = 0; i < 2 * per; i++) mel[i] = (float)((i * 7919) % 61) - 60.0f;
        (void)htsat_encode(m, mel, longer, 2, 0, emb);
    }
    free(mel);
    free(emb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_fill_safetensors(&data, &size);
    cmcr_tensors *ts = NULL;
    htsat_model *m = NULL;
    if (cmcr_tensors_load_memory(data, size, CMCR_FORMAT_AUTO, "input", &ts) == CMCR_OK &&
        htsat_model_from_tensors(ts, "input", &m) == CMCR_OK && small_enough(htsat_model_info(m)))
        run(m);
    htsat_model_free(m);
    cmcr_tensors_free(ts);
    free(buf);
    return 0;
}
