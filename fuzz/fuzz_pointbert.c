/* fuzz_pointbert.c - libFuzzer target: a ULIP PointBERT checkpoint (the point tower) from memory
 * through pointbert_model_from_tensors (sizes from shapes, every tensor checked) and, when it
 * loads and is small, the forward pass on one cloud grouped from points made of the input's
 * bytes (pointbert_group: FPS and kNN with ties, duplicates and a start from the input).
 *
 * As in fuzz_htsat.c, an input may be a safetensors file cut after its header: the harness
 * appends the data the header asks for (fuzz_fill_safetensors, fuzz_common.h). fuzz/make_seeds.sh
 * writes the header of scripts/pointbert_reference.py's tiny model (--seeds). */
#include "fuzz_common.h"
#include "encoders/pointbert.h"

#include <math.h>

/* The mini-PointNet's widths are fixed (16,384 rows of 512 per cloud): the forward pass runs on
 * the smallest models only. */
static int small_enough(pointbert_info in)
{
    return in.dim <= 64 && in.depth <= 2 && in.encoder_dims <= 64 && in.mlp <= 256 && in.out <= 512;
}

/* A cloud of n points from the input's bytes (coordinates on a coarse grid: many ties). */
static void make_cloud(const uint8_t *data, size_t size, float *v, int64_t n, int width)
{
    for (int64_t i = 0; i < n * width; i++) v[i] = size ? (float)(data[(size_t)i % size] % 7) * 0.5f - 1.5f : 0.0f;
}

static void run(const pointbert_model *m, const uint8_t *data, size_t size)
{
    const pointbert_info in = pointbert_get_info(m);
    const int64_t n = 32 + (size ? data[size - 1] % 64 : 0);
    float *v = malloc(sizeof(float) * (size_t)(n * in.width));
    float *g = malloc(sizeof(float) * pointbert_group_floats(in.width)), *emb = malloc(sizeof(float) * (size_t)in.out);
    if (v && g && emb) {
        make_cloud(data, size, v, n, in.width);
        int64_t start = size > 1 ? data[size - 2] % n : 0;
        if (pointbert_group(v, n, in.width, start, g, NULL, NULL) == CMCR_OK) (void)pointbert_encode(m, g, 1, 0, emb);
    }
    free(v);
    free(g);
    free(emb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *orig = data;
    size_t orig_size = size;
    uint8_t *buf = fuzz_fill_safetensors(&data, &size);
    cmcr_tensors *ts = NULL;
    pointbert_model *m = NULL;
    if (cmcr_tensors_load_memory(data, size, CMCR_FORMAT_AUTO, "input", &ts) == CMCR_OK &&
        pointbert_model_from_tensors(ts, "input", &m) == CMCR_OK && small_enough(pointbert_get_info(m)))
        run(m, orig, orig_size);
    pointbert_model_free(m);
    cmcr_tensors_free(ts);
    free(buf);
    return 0;
}
