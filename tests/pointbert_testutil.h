/* pointbert_testutil.h - what test_pointbert.c and test_pointbert_full.c share: a fixture of
 * scripts/pointbert_reference.py (ulip.pt, clouds/, names.txt, starts.npy, ref_fps.npy,
 * ref_knn.npy, ref_emb.npy) and running the grouping and the tower on its clouds. */
#ifndef CMCR_POINTBERT_TESTUTIL_H
#define CMCR_POINTBERT_TESTUTIL_H
#include "testutil.h"
#include "encoders/pointbert.h"
#include "io/io.h"
#include "runtime/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

static inline char *pb_fx(const char *fixture, const char *rel)
{
    return tu_fixture(fixture, "scripts/pointbert_reference.py", rel);
}

static inline void *pb_npy(const char *fixture, const char *rel, int64_t *numel, int64_t *rows)
{
    char *p = pb_fx(fixture, rel);
    void *d = tu_load_npy(p, numel, rows);
    free(p);
    return d;
}

/* The fixture's ulip.pt as cmcr_tensors_load gives it (every key, 'module.' stripped). */
static inline cmcr_tensors *pb_weights(const char *fixture)
{
    char *p = pb_fx(fixture, "ulip.pt");
    cmcr_tensors *ts = NULL;
    if (cmcr_tensors_load(p, CMCR_FORMAT_PT, &ts)) fail_msg("%s", cmcr_last_error());
    free(p);
    return ts;
}

static inline pointbert_model *pb_model(const char *fixture)
{
    cmcr_tensors *ts = pb_weights(fixture);
    pointbert_model *m = NULL;
    if (pointbert_model_from_tensors(ts, "ulip.pt", &m)) fail_msg("%s", cmcr_last_error());
    cmcr_tensors_free(ts);
    return m;
}

/* The fixture's clouds grouped (count x pointbert_group_floats), with the grouping checked
 * against the reference: FPS indices and kNN lists identical. *count: clouds; ms: grouping
 * time per cloud (ms) of the largest cloud when not NULL. */
static inline float *pb_group_all(const char *fixture, int width, int64_t *count, double *ms)
{
    char *names_path = pb_fx(fixture, "names.txt");
    size_t len;
    char *names = (char *)tu_read_file(names_path, &len);
    int64_t k, kk, *starts = pb_npy(fixture, "starts.npy", &k, NULL);
    int32_t *fps = pb_npy(fixture, "ref_fps.npy", &kk, NULL), *knn = pb_npy(fixture, "ref_knn.npy", &kk, NULL);
    const size_t per = pointbert_group_floats(width);
    float *groups = malloc(sizeof(float) * per * (size_t)k);
    int32_t cent[PB_GROUPS], nb[PB_GROUPS * PB_GROUP_SIZE];
    assert_non_null(groups);
    char *save = NULL, *name = strtok_r(names, "\n", &save);
    int64_t biggest = 0;
    for (int64_t c = 0; c < k; c++, name = strtok_r(NULL, "\n", &save)) {
        assert_non_null(name);
        char rel[256];
        snprintf(rel, sizeof rel, "clouds/%s.npy", name);
        int64_t numel, n;
        float *v = pb_npy(fixture, rel, &numel, &n);
        assert_int_equal(numel, n * width);
        double t0 = core_now_seconds();
        assert_int_equal(pointbert_group(v, n, width, starts[c], groups + per * (size_t)c, cent, nb), CMCR_OK);
        double t = (core_now_seconds() - t0) * 1000;
        if (ms && n > biggest) biggest = n, *ms = t;
        assert_memory_equal(cent, fps + c * PB_GROUPS, sizeof cent);
        assert_memory_equal(nb, knn + c * PB_GROUPS * PB_GROUP_SIZE, sizeof nb);
        printf("%s: %lld points, start %lld: FPS and kNN indices identical to the reference (%.1f ms)\n", name,
               (long long)n, (long long)starts[c], t);
        free(v);
    }
    free(names_path);
    free(names);
    free(starts);
    free(fps);
    free(knn);
    *count = k;
    return groups;
}

/* max |emb - ref_emb| of the grouped clouds through m (bf16 or not); the time per cloud in ms
 * into *ms when not NULL. */
static inline double pb_encode_vs(const pointbert_model *m, const char *fixture, const float *groups, int64_t count,
                                  int bf16, double *ms)
{
    int64_t numel, rows;
    float *ref = pb_npy(fixture, "ref_emb.npy", &numel, &rows);
    const int64_t out = pointbert_get_info(m).out;
    assert_int_equal(rows, count);
    assert_int_equal(numel, count * out);
    float *emb = malloc(sizeof(float) * (size_t)numel);
    assert_non_null(emb);
    double t0 = core_now_seconds();
    if (pointbert_encode(m, groups, count, bf16, emb)) fail_msg("%s", cmcr_last_error());
    if (ms) *ms = (core_now_seconds() - t0) * 1000 / (double)count;
    double d = tu_max_abs_diff(emb, ref, numel);
    free(emb);
    free(ref);
    return d;
}

#endif
