/* fuzz_safetensors.c - libFuzzer target: cmcr_tensors_load on an arbitrary .safetensors file. */
#include "cmcr.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cmcr_tensors *ts = NULL;
    if (cmcr_tensors_load_memory(data, size, CMCR_FORMAT_SAFETENSORS, "input.safetensors", &ts) == CMCR_OK) {
        /* Touch what was loaded: names, metadata and every byte of each tensor. */
        size_t sum = 0;
        for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
            const cmcr_tensor *t = cmcr_tensors_at(ts, i);
            sum += t->name[0] + (size_t)cmcr_tensor_numel(t);
            for (size_t b = 0; b < t->nbytes; b++) sum += ((const unsigned char *)t->data)[b];
        }
        for (size_t i = 0; i < cmcr_tensors_meta_count(ts); i++) {
            const char *k, *v;
            cmcr_tensors_meta_at(ts, i, &k, &v);
            sum += (size_t)k[0] + (size_t)v[0];
        }
        (void)sum;
    }
    cmcr_tensors_free(ts);
    return 0;
}
