/* fuzz_points.c - libFuzzer target: an arbitrary file through the point-cloud readers
 * (points_read_memory: .npy, the pickled-dict .npy through the safe unpickler, PLY, text).
 * A refusal must leave an empty cloud and one line naming the input; a success a cloud
 * that passes points_check, whose every value is read, and which points_keep_xyz narrows. */
#include "cmcr.h"
#include "fuzz_common.h"
#include "media/points.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    point_cloud pc;
    cmcr_status st = points_read_memory(data, size, "input", &pc);
    if (st != CMCR_OK) {
        const char *msg = cmcr_last_error();
        if (pc.v || pc.n || strncmp(msg, "input", 5) != 0 || strchr(msg, '\n')) abort();
        return 0;
    }
    if (points_check(pc.v, pc.n, pc.width, "input") != CMCR_OK) abort();
    double sum = 0;
    for (int64_t i = 0; i < pc.n * pc.width; i++) sum += pc.v[i];
    if (!isfinite(sum)) abort(); /* every value finite, at most 3.4e38 each: the double sum is finite */
    int width = pc.width;
    points_keep_xyz(&pc);
    if (pc.width != 3 || (width == 3 && points_check(pc.v, pc.n, 3, "input") != CMCR_OK)) abort();
    points_free(&pc);
    return 0;
}
