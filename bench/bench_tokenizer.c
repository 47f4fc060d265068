/* bench_tokenizer.c - prompts per second of the CLIP tokenizer (src/text/clip_bpe.c), one
 * thread, context 77, over a file of length-prefixed strings (the clip_tokens fixture's
 * strings.bin, made by scripts/clip_ref_tokenizer.py; its --bench mode times the Python
 * reference on the same file).
 *   bench_tokenizer VOCAB STRINGS.bin [RUNS]      prints the median of RUNS (default 7) runs */
#include "bench_util.h"
#include "text/clip_bpe.h"

#include <string.h>

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer VOCAB STRINGS.bin [RUNS]\n");
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 7;
    if (runs < 1 || runs > 1000) runs = 7;
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *raw = malloc((size_t)n);
    if (!raw || fread(raw, 1, (size_t)n, f) != (size_t)n || n < 12 || memcmp(raw, "CLIPSTR1", 8) != 0) {
        fprintf(stderr, "%s: not a strings file\n", argv[2]);
        return 1;
    }
    fclose(f);
    uint32_t count = le32(raw + 8);
    clip_bpe *t = NULL;
    double t0 = now();
    if (clip_bpe_load(argv[1], &t) != CMCR_OK) {
        fprintf(stderr, "%s\n", cmcr_last_error());
        return 1;
    }
    printf("load: %.1f ms\n", 1e3 * (now() - t0));
    double *times = malloc((size_t)runs * sizeof *times);
    int64_t total = 0;
    for (int r = 0; r < runs; r++) {
        size_t o = 12;
        int32_t ids[77];
        int64_t tokens = 0, all = 0;
        double start = now();
        for (uint32_t i = 0; i < count; i++) {
            uint32_t len = le32(raw + o);
            if (clip_bpe_encode(t, (const char *)raw + o + 4, len, "bench", ids, 77, &tokens) != CMCR_OK) {
                fprintf(stderr, "%s\n", cmcr_last_error());
                return 1;
            }
            all += tokens;
            o += 4 + len;
        }
        times[r] = now() - start;
        total = all;
    }
    double med = median(times, runs);
    printf("C: %u strings (%lld BPE tokens), median %.4f s of %d runs, %.0f prompts/s\n", count, (long long)total, med,
           runs, count / med);
    clip_bpe_free(t);
    free(times);
    free(raw);
    return 0;
}
