/* bench_project.c - inputs for the projection benchmark (bench/run.sh times `cmcr project`).
 *
 * usage: bench_project DIR ROWS [preset]
 * Writes DIR/model.safetensors (a freshly initialised model of the preset, default clap-clip,
 * via cmcr_model_new + cmcr_model_save) and DIR/in_ROWS.npy (ROWS x in_dim random float32
 * rows, streamed), unless they already exist. */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3 || atoll(argv[2]) < 1) {
        fprintf(stderr, "usage: bench_project DIR ROWS [preset]\n");
        return 2;
    }
    int64_t rows = atoll(argv[2]);
    cmcr_head_shape sh;
    if (cmcr_preset_shape(argc > 3 ? argv[3] : "clap-clip", &sh) != CMCR_OK) {
        fprintf(stderr, "bench_project: %s\n", cmcr_last_error());
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", argv[1]);
    if (access(path, F_OK) != 0) {
        cmcr_model *m;
        if (cmcr_model_new(&sh, &sh, 1, &m) || cmcr_model_save(m, path, CMCR_FORMAT_AUTO)) {
            fprintf(stderr, "bench_project: %s\n", cmcr_last_error());
            return 1;
        }
        cmcr_model_free(m);
    }
    snprintf(path, sizeof path, "%s/in_%lld.npy", argv[1], (long long)rows);
    if (access(path, F_OK) == 0) return 0;
    cmcr_npy_writer *w;
    if (cmcr_npy_writer_open(path, sh.in_dim, &w)) {
        fprintf(stderr, "bench_project: %s\n", cmcr_last_error());
        return 1;
    }
    int64_t block = 8192;
    float *x = malloc((size_t)(block * sh.in_dim) * sizeof(float));
    uint64_t s = 0x1234567;
    for (int64_t done = 0; done < rows; done += block) {
        int64_t b = rows - done < block ? rows - done : block;
        for (int64_t i = 0; i < b * sh.in_dim; i++) x[i] = uniform(&s);
        if (cmcr_npy_writer_write(w, x, b)) {
            fprintf(stderr, "bench_project: %s\n", cmcr_last_error());
            cmcr_npy_writer_abort(w);
            return 1;
        }
    }
    free(x);
    if (cmcr_npy_writer_commit(w)) {
        fprintf(stderr, "bench_project: %s\n", cmcr_last_error());
        return 1;
    }
    return 0;
}
