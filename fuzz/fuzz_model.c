/* fuzz_model.c - libFuzzer target: cmcr_model_load on an arbitrary file (.safetensors, .pt or
 * .npy by content) and, when it loads, cmcr_model_project of a few rows through each side. */
#include "cmcr.h"
#include "fuzz_common.h"

static void project_side(const cmcr_model *m, cmcr_side side)
{
    cmcr_head_shape s = cmcr_model_shape(m, side);
    /* Loaded weights hold in_dim x out_dim values, so the sizes are bounded by the input;
     * the cap only keeps the harness's own buffers small. */
    if (s.in_dim <= 0 || s.out_dim <= 0 || s.in_dim > (1 << 16) || s.out_dim > (1 << 16)) return;
    enum { ROWS = 3 };
    float *in = malloc((size_t)(ROWS * s.in_dim) * sizeof(float));
    float *out = malloc((size_t)(ROWS * s.out_dim) * sizeof(float));
    if (in && out) {
        for (int64_t i = 0; i < ROWS * s.in_dim; i++) in[i] = (float)((i * 7919) % 13) - 6.0f;
        for (int64_t i = 0; i < s.in_dim; i++) in[2 * s.in_dim + i] = 0.0f; /* a zero row */
        (void)cmcr_model_project(m, side, in, ROWS, out);
    }
    free(in);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cmcr_model *m = NULL;
    if (cmcr_model_load_memory(data, size, "input", &m) == CMCR_OK) {
        (void)cmcr_model_preset(m);
        project_side(m, CMCR_SIDE_A);
        project_side(m, CMCR_SIDE_B);
    }
    cmcr_model_free(m);
    return 0;
}
