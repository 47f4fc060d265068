/* fuzz_clip.c - libFuzzer target: a CLIP checkpoint from memory through
 * clip_model_from_tensors (layout, sizes from shapes, every tensor checked) and, when it loads
 * and is small, both towers on one deterministic input.
 *
 * Even a tiny CLIP (64-wide heads) holds about 100 K weights, far beyond a useful fuzz input,
 * so an input may be a safetensors file cut after its header: when the header's tensors need
 * more data than the input holds, the harness appends it (the input's own bytes after the
 * header first, then a finite pattern), and mutations reach the names, shapes and dtypes the
 * loader checks. Any other input (a whole .safetensors or .pt) is loaded as it is.
 * fuzz/make_seeds.sh writes the headers of scripts/clip_reference.py's tiny model.
 * The filling is fuzz_fill_safetensors (fuzz_common.h), shared by the model targets. */
#include "fuzz_common.h"
#include "encoders/clip.h"

/* Bounds on what the harness runs (loading is bounded by the input itself). */
static int small_enough(const clip_info *in)
{
    return in->image_size <= 64 && in->vision_width <= 256 && in->text_width <= 256 && in->context <= 64 &&
           in->vision_layers <= 4 && in->text_layers <= 4 && in->embed_dim <= 256;
}

static void run_towers(const clip_model *m)
{
    const clip_info *in = clip_model_info(m);
    int64_t S = in->image_size, g2 = (int64_t)in->grid * in->grid, E = in->embed_dim;
    float *pix = malloc(sizeof(float) * (size_t)(3 * S * S)), *emb = malloc(sizeof(float) * (size_t)E);
    float *patches = malloc(sizeof(float) * (size_t)(g2 * E));
    int32_t *ids = calloc((size_t)in->context, sizeof *ids);
    if (pix && emb && patches && ids) {
        for (int64_t i = 0; i < 3 * S * S; i++) pix[i] = (float)((i * 7919) % 13) / 6.0f - 1.0f;
        (void)clip_encode_image(m, pix, 1, 0, emb, patches);
        ids[0] = in->vocab > 1 ? in->vocab - 2 : 0;
        if (in->context > 2) ids[2] = in->vocab - 1;
        (void)clip_encode_text(m, ids, 1, 0, emb);
    }
    free(pix);
    free(emb);
    free(patches);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_fill_safetensors(&data, &size);
    cmcr_tensors *ts = NULL;
    clip_model *m = NULL;
    if (cmcr_tensors_load_memory(data, size, CMCR_FORMAT_AUTO, "input", &ts) == CMCR_OK &&
        clip_model_from_tensors(ts, "input", &m) == CMCR_OK && small_enough(clip_model_info(m)))
        run_towers(m);
    clip_model_free(m);
    cmcr_tensors_free(ts);
    free(buf);
    return 0;
}
