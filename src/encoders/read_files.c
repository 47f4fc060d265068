/* read_files.c - one input per file, read in parallel (read_files.h). */
#include "encoders/read_files.h"

#include <string.h>

cmcr_status read_files(read_one_fn read_one, const void *ctx, const char *const *paths, int64_t n, float *input,
                       size_t each, unsigned char *flags, unsigned char *ok)
{
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; i++) {
        unsigned char unused;
        ok[i] = read_one(ctx, paths[i], input + (size_t)i * each, flags ? flags + i : &unused) == CMCR_OK;
        if (!ok[i]) memset(input + (size_t)i * each, 0, each * sizeof(float));
    }
    for (int64_t i = 0; i < n; i++)
        if (!ok[i]) {
            unsigned char unused;
            cmcr_status st = read_one(ctx, paths[i], input + (size_t)i * each, flags ? flags + i : &unused);
            memset(input + (size_t)i * each, 0, each * sizeof(float));
            char shown[1024];
            return st ? st : core_fail(CMCR_EIO, "%s: could not be read the first time",
                                       cmcr_printable(shown, sizeof shown, paths[i]));
        }
    return CMCR_OK;
}
