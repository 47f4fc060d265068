/* fuzz_gallery.c - libFuzzer target: cmcr_gallery_load_memory on an arbitrary file and, when it
 * loads, every row read back (cmcr_gallery_get_row, cmcr_gallery_find of its own path, which
 * must give the row) and one search over it (all rows, then images and sounds only). */
#include "cmcr.h"
#include "fuzz_common.h"

#include <math.h>

static void search(const cmcr_gallery *g)
{
    int64_t dim = cmcr_gallery_dim(g), idx[3];
    float score[3];
    float *q = calloc((size_t)dim, sizeof(float));
    if (!q) return;
    q[0] = 1.0f;
    if (cmcr_gallery_topk(g, q, 1, dim, 0, 3, idx, score) == CMCR_OK)
        for (int e = 0; e < 3; e++)
            if (idx[e] < -1 || idx[e] >= cmcr_gallery_rows(g) || (idx[e] >= 0 && !isfinite(score[e]))) abort();
    (void)cmcr_gallery_topk(g, q, 1, dim, 1u << CMCR_IMAGE | 1u << CMCR_AUDIO, 3, idx, score);
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cmcr_gallery *g = NULL;
    if (cmcr_gallery_load_memory(data, size, "input.safetensors", &g) == CMCR_OK) {
        size_t sum = 0;
        for (int64_t r = 0; r < cmcr_gallery_rows(g); r++) {
            cmcr_gallery_row row;
            if (cmcr_gallery_get_row(g, r, &row) != CMCR_OK || cmcr_gallery_find(g, row.path) != r) abort();
            sum += strlen(row.path) + (size_t)row.modality + (size_t)row.size;
            for (int64_t c = 0; c < cmcr_gallery_dim(g); c++) sum += row.embedding[c] > 0;
        }
        (void)cmcr_gallery_meta(g, "model");
        (void)sum;
        search(g);
    }
    cmcr_gallery_free(g);
    return 0;
}
