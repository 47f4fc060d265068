/* fuzz_htsat.c - libFuzzer target: an HTSAT checkpoint (CLAP's audio tower) from memory through
 * htsat_model_from_tensors (sizes from shapes, every tensor and buffer checked) and, when it
 * loads and is small, the forward pass on one short and one long deterministic clip.
 *
 * As in fuzz_clip.c, an input may be a safetensors file cut after its header: when the
 * header's tensors need more data than the input holds, the harness appends it (the input's
 * own bytes first, then a pattern that is finite in every dtype), so that mutations reach the
 * names, shapes and dtypes the loader checks. fuzz/make_seeds.sh writes the header of
 * scripts/clap_ref_htsat.py's tiny model. */
#include "fuzz_common.h"
#include "encoders/htsat.h"

#include <cjson/cJSON.h>
#include <string.h>

enum { MAX_FILL = 4 << 20 };

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

/* The data bytes a safetensors header asks for (its largest end offset); 0 when it is not
 * one, or asks for more than MAX_FILL. */
static size_t data_wanted(const uint8_t *data, size_t size, size_t *hlen)
{
    uint64_t h = 0;
    if (size < 8) return 0;
    for (int i = 0; i < 8; i++) h |= (uint64_t)data[i] << (8 * i);
    if (h > size - 8) return 0;
    *hlen = (size_t)h;
    cJSON *root = cJSON_ParseWithLength((const char *)data + 8, (size_t)h);
    double end = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        const cJSON *last = cJSON_IsArray(off) ? cJSON_GetArrayItem(off, 1) : NULL;
        if (cJSON_IsNumber(last) && last->valuedouble > end) end = last->valuedouble;
    }
    cJSON_Delete(root);
    return end > 0 && end <= MAX_FILL ? (size_t)end : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t hlen = 0, want = data_wanted(data, size, &hlen), have = size - 8 - hlen;
    uint8_t *buf = NULL;
    if (want > have && (buf = malloc(8 + hlen + want))) {
        memcpy(buf, data, size);
        for (size_t i = size; i < 8 + hlen + want; i++) buf[i] = (i & 1) ? 0x20 : 0x00; /* finite in every dtype */
        data = buf;
        size = 8 + hlen + want;
    }
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
