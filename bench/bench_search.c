/* bench_search.c - the gallery benchmark's C side (bench/search.sh):
 *   bench_search write G.safetensors ROWS DIM SEED
 *       a gallery of ROWS random normalised rows (paths /bench/rNNNNNNN.jpg) through the writer
 *   bench_search run G.safetensors QUERIES.npy K RUNS OUT.npy
 *       the median of RUNS loads of G (mapped and checked), then of RUNS cmcr_gallery_topk calls
 *       for the first query alone and for all the queries at once; the indices of the second
 *       (queries x K, int64) into OUT.npy for the comparison with NumPy and PyTorch. */
#include "cmcr.h"
#include "runtime/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_search: %s: %s\n", what, cmcr_last_error());
    return 1;
}

static int write_gallery(const char *path, int64_t rows, int64_t dim, uint64_t seed)
{
    cmcr_gallery_writer *w;
    if (cmcr_gallery_writer_new(dim, &w)) return fail("writer");
    rng_state r;
    rng_seed(&r, seed);
    float *e = malloc((size_t)dim * sizeof(float));
    char name[64];
    double t0 = cmcr_now_seconds();
    for (int64_t i = 0; i < rows; i++) {
        rng_fill_normal(&r, e, dim, 1.0);
        cmcr_normalize_rows(e, 1, dim);
        snprintf(name, sizeof name, "/bench/r%07lld.jpg", (long long)i);
        cmcr_gallery_row row = {name, CMCR_IMAGE, (uint64_t)i * 0x9e3779b97f4a7c15ull, 1000, 0, e};
        if (cmcr_gallery_writer_add(w, &row)) return fail("add");
    }
    double t1 = cmcr_now_seconds();
    if (cmcr_gallery_writer_save(w, path)) return fail("save");
    printf("wrote %lld x %lld rows: %.2f s to make, %.2f s to save\n", (long long)rows, (long long)dim, t1 - t0,
           cmcr_now_seconds() - t1);
    cmcr_gallery_writer_free(w);
    free(e);
    return 0;
}

static int run(const char *path, const char *qpath, int64_t k, int runs, const char *out)
{
    double *t = malloc((size_t)runs * sizeof *t);
    cmcr_gallery *g = NULL;
    for (int i = 0; i < runs; i++) {
        double t0 = cmcr_now_seconds();
        if (cmcr_gallery_load(path, &g)) return fail("load");
        t[i] = cmcr_now_seconds() - t0;
        if (i + 1 < runs) cmcr_gallery_free(g);
    }
    printf("load_s %.4f\n", median(t, runs));
    cmcr_matrix q;
    if (cmcr_matrix_load(qpath, &q)) return fail("queries");
    int64_t *idx = malloc((size_t)(q.rows * k) * sizeof *idx);
    float *score = malloc((size_t)(q.rows * k) * sizeof *score);
    for (int pass = 0; pass < 2; pass++) {
        int64_t nq = pass ? q.rows : 1;
        for (int i = 0; i < runs; i++) {
            double t0 = cmcr_now_seconds();
            if (cmcr_gallery_topk(g, q.data, nq, q.cols, 0, k, idx, score)) return fail("top-k");
            t[i] = cmcr_now_seconds() - t0;
        }
        printf("topk_%lld_s %.5f\n", (long long)nq, median(t, runs));
    }
    cmcr_tensors *ts = cmcr_tensors_new();
    int64_t shape[2] = {q.rows, k};
    if (cmcr_tensors_add(ts, "index", CMCR_I64, 2, shape, idx) || cmcr_tensors_save(ts, out, CMCR_FORMAT_NPY))
        return fail("save the indices");
    cmcr_tensors_free(ts);
    cmcr_matrix_free(&q);
    cmcr_gallery_free(g);
    free(idx), free(score), free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "write") == 0)
        return write_gallery(argv[2], atoll(argv[3]), atoll(argv[4]), (uint64_t)atoll(argv[5]));
    if (argc == 7 && strcmp(argv[1], "run") == 0) return run(argv[2], argv[3], atoll(argv[4]), atoi(argv[5]), argv[6]);
    fprintf(stderr, "usage: bench_search write G.safetensors ROWS DIM SEED\n"
                    "       bench_search run G.safetensors QUERIES.npy K RUNS OUT.npy\n");
    return 2;
}
