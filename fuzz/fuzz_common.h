/* fuzz_common.h - shared by the libFuzzer targets. Each input is parsed straight from memory:
 * through the public loaders from a buffer (cmcr_tensors_load_memory, cmcr_model_load_memory)
 * and, for the streaming .npy reader, a read-only stream over the buffer (file_open_memory). */
#ifndef CMCR_FUZZ_COMMON_H
#define CMCR_FUZZ_COMMON_H
#include "cmcr.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The model targets (fuzz_clip, fuzz_roberta, fuzz_htsat) take a safetensors file cut after its
 * header: even tiny models hold far more weight bytes than a useful fuzz input, and cutting
 * them lets mutations reach the names, shapes and dtypes the loaders check. */
enum { FUZZ_MAX_FILL = 4 << 20 };

/* The data bytes a safetensors header asks for (its largest end offset), with the header's
 * length in *hlen; 0 when data is not one, or asks for more than FUZZ_MAX_FILL. */
static inline size_t fuzz_data_wanted(const uint8_t *data, size_t size, size_t *hlen)
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
    return end > 0 && end <= FUZZ_MAX_FILL ? (size_t)end : 0;
}

/* When *data is a safetensors header whose tensors need more bytes than the input holds:
 * a malloc'd copy with the missing data appended (the input's own bytes first, then a
 * pattern that is finite in every dtype), and *data, *size point at it; the caller frees the
 * result. NULL (and *data, *size unchanged) otherwise, or when out of memory. */
static inline uint8_t *fuzz_fill_safetensors(const uint8_t **data, size_t *size)
{
    size_t hlen = 0, want = fuzz_data_wanted(*data, *size, &hlen), have = *size - 8 - hlen;
    uint8_t *buf = NULL;
    if (want > have && (buf = malloc(8 + hlen + want))) {
        memcpy(buf, *data, *size);
        for (size_t i = *size; i < 8 + hlen + want; i++) buf[i] = (i & 1) ? 0x20 : 0x00;
        *data = buf;
        *size = 8 + hlen + want;
    }
    return buf;
}
#endif
