/* bench_clip.c - throughput of the CLIP towers (src/encoders/clip.c).
 *
 * usage: bench_clip CHECKPOINT [BATCH] [RUNS] [EOT]
 * Loads CHECKPOINT (e.g. the clip_full fixture's full/hf), then times the vision tower on BATCH
 * random normalised images and the text tower on BATCH token rows whose EOT is at position EOT
 * (default 76: full 77-token rows, the worst case; prompts like "a photo of a dog." end near
 * 8), in float32 and, where available, bf16: medians of RUNS runs after one warm-up. Prints
 * the load time and the peak RSS after loading (the weights' memory). Compare with
 * `scripts/clip_reference.py --bench --size full` at the same thread count (OMP_NUM_THREADS). */
#include "bench_util.h"
#include "encoders/clip.h"
#include "runtime/matmul.h"

#include <stdio.h>
#include <stdlib.h>

typedef cmcr_status (*tower_fn)(const clip_model *m, const void *in, int64_t n, int bf16, float *out);

static cmcr_status run_image(const clip_model *m, const void *in, int64_t n, int bf16, float *out)
{
    return clip_encode_image(m, in, n, bf16, out, NULL);
}

static cmcr_status run_text(const clip_model *m, const void *in, int64_t n, int bf16, float *out)
{
    return clip_encode_text(m, in, n, bf16, out);
}

static void time_tower(const char *what, tower_fn fn, const clip_model *m, const void *in, int64_t n, int bf16,
                       float *out, int runs)
{
    double t[64];
    for (int r = -1; r < runs; r++) {
        double t0 = now();
        if (fn(m, in, n, bf16, out)) {
            fprintf(stderr, "bench_clip: %s\n", cmcr_last_error());
            exit(1);
        }
        if (r >= 0) t[r] = now() - t0;
    }
    double med = median(t, runs);
    printf("C %s %s: batch %lld: %.1f /s (median of %d: %.1f ms)\n", bf16 ? "bf16" : "f32 ", what, (long long)n,
           (double)n / med, runs, med * 1000);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_clip CHECKPOINT [BATCH] [RUNS] [EOT]\n");
        return 2;
    }
    int64_t n = argc > 2 ? atoll(argv[2]) : 32;
    int runs = argc > 3 ? atoi(argv[3]) : 5, eot = argc > 4 ? atoi(argv[4]) : 76;
    runs = runs < 1 ? 1 : runs > 64 ? 64 : runs;
    double t0 = now();
    clip_model *m;
    if (clip_model_load(argv[1], &m)) {
        fprintf(stderr, "bench_clip: %s\n", cmcr_last_error());
        return 1;
    }
    const clip_info *in = clip_model_info(m);
    printf("loaded %s (%s layout) in %.2f s; peak RSS %ld MiB\n", argv[1], in->layout, now() - t0, maxrss_kib() / 1024);
    if (n < 1 || eot < 1 || eot >= in->context) {
        fprintf(stderr, "bench_clip: BATCH >= 1 and 1 <= EOT < %d\n", in->context);
        return 2;
    }
    int64_t S = in->image_size;
    float *pixels = random_rows(n, 3 * S * S, 1, NULL, 3.0f), *out = random_rows(n, in->embed_dim, 2, NULL, 0);
    int32_t *ids = calloc((size_t)(n * in->context), sizeof *ids);
    if (!ids) return 1;
    uint64_t s = 3;
    for (int64_t i = 0; i < n; i++) {
        ids[i * in->context] = in->vocab - 2;
        for (int k = 1; k < eot; k++) ids[i * in->context + k] = (int32_t)(next(&s) % (uint64_t)(in->vocab - 2));
        ids[i * in->context + eot] = in->vocab - 1;
    }
    for (int bf16 = 0; bf16 < 2; bf16++) {
        if (bf16 && mm_bf16_check() != CMCR_OK) {
            printf("bf16: %s\n", cmcr_last_error());
            break;
        }
        time_tower("images ", run_image, m, pixels, n, bf16, out, runs);
        time_tower("prompts", run_text, m, ids, n, bf16, out, runs);
    }
    clip_model_free(m);
    free(pixels);
    free(out);
    free(ids);
    return 0;
}
