/* test_pointbert_api.c - the public PointBERT calls (include/cmcr.h) on the pointbert_small
 * (xyz) and pointbert_rgb (xyz + rgb) fixtures: what cmcr_encoder_kind says of a ULIP
 * checkpoint, loading and its refusals, the info, a cloud grouped from memory and from its
 * file alike, the FPS start (point 0, or drawn from the seed), the columns rule (xyz_only),
 * the parallel read with a bad file, and embeddings against the reference. */
#include "pointbert_testutil.h"

#include <math.h>

static cmcr_pointbert *load(const char *fixture, const cmcr_pointbert_options *o)
{
    char *p = pb_fx(fixture, "ulip.pt");
    cmcr_pointbert *pb = NULL;
    if (cmcr_pointbert_load(p, o, &pb)) fail_msg("%s", cmcr_last_error());
    free(p);
    return pb;
}

/* Cloud i of a fixture's clouds/ as a path (malloc'd). */
static char *cloud_path(const char *fixture, int i)
{
    char *names_path = pb_fx(fixture, "names.txt"), rel[256];
    size_t len;
    char *names = (char *)tu_read_file(names_path, &len), *save = NULL, *name = strtok_r(names, "\n", &save);
    for (int k = 0; k < i; k++) name = strtok_r(NULL, "\n", &save);
    assert_non_null(name);
    snprintf(rel, sizeof rel, "clouds/%s.npy", name);
    free(names);
    free(names_path);
    return pb_fx(fixture, rel);
}

static void test_kind_and_info(void **state)
{
    (void)state;
    char *p = pb_fx("pointbert_small", "ulip.pt");
    const char *kind = NULL;
    assert_int_equal(cmcr_encoder_kind(p, &kind), CMCR_OK);
    assert_string_equal(kind, "pointbert"); /* not "clip", though it holds a CLIP-shaped text tower */
    cmcr_pointbert *pb = load("pointbert_small", NULL);
    cmcr_pointbert_info in = cmcr_pointbert_get_info(pb);
    assert_int_equal(in.dim, 512);
    assert_int_equal(in.width, 3);
    assert_int_equal(in.groups, 512);
    assert_int_equal(in.group_size, 32);
    assert_int_equal(in.input_floats, 512 * 32 * 3 + 512 * 3);
    assert_int_equal(in.trans_dim, 64);
    assert_int_equal(in.depth, 2);
    assert_int_equal(in.heads, 1);
    cmcr_pointbert_free(pb);
    assert_int_equal(cmcr_pointbert_get_info(NULL).dim, 0);
    free(p);
}

static void expect_load_fail(const char *path, cmcr_status want, const char *needle)
{
    cmcr_pointbert *pb = (cmcr_pointbert *)&pb; /* must be cleared */
    assert_int_equal(cmcr_pointbert_load(path, NULL, &pb), want);
    assert_null(pb);
    printf("MSG %s\n", cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), needle));
}

static void test_load_refusals(void **state)
{
    (void)state;
    cmcr_pointbert *pb = NULL;
    assert_int_equal(cmcr_pointbert_load(NULL, NULL, &pb), CMCR_EINVAL);
    assert_int_equal(cmcr_pointbert_load("x.pt", NULL, NULL), CMCR_EINVAL);
    expect_load_fail("/nonexistent/ulip.pt", CMCR_EIO, "/nonexistent/ulip.pt");
    expect_load_fail(tu_tmpdir(), CMCR_EINVAL, "a folder");
    char *npy = cloud_path("pointbert_small", 0);
    expect_load_fail(npy, CMCR_EFORMAT, "a .npy array, not a ULIP checkpoint");
    free(npy);
    /* A checkpoint without the point tower (here: the stand-ins of ULIP's other towers only). */
    char *path = tu_path("towerless.safetensors");
    cmcr_tensors *all = pb_weights("pointbert_small"), *some = cmcr_tensors_new();
    for (size_t i = 0; i < cmcr_tensors_count(all); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(all, i);
        if (strncmp(t->name, "point_encoder.", 14) && strcmp(t->name, "pc_projection"))
            assert_int_equal(cmcr_tensors_add(some, t->name, t->dtype, t->ndim, t->shape, t->data), CMCR_OK);
    }
    assert_int_equal(cmcr_tensors_save(some, path, CMCR_FORMAT_SAFETENSORS), CMCR_OK);
    expect_load_fail(path, CMCR_EFORMAT, "not a ULIP PointBERT checkpoint");
    cmcr_tensors_free(all);
    cmcr_tensors_free(some);
    free(path);
}

/* A cloud grouped from memory and from its file is the same input; the default start is
 * point 0 (pointbert_group's own start 0); a seed draws another start, the same each time. */
static void test_group_and_start(void **state)
{
    (void)state;
    cmcr_pointbert_options o = cmcr_pointbert_default_options();
    cmcr_pointbert *p0 = load("pointbert_small", &o);
    o.seed = 7;
    cmcr_pointbert *p7 = load("pointbert_small", &o);
    char *path = cloud_path("pointbert_small", 1);
    int64_t numel, rows;
    float *v = tu_load_npy(path, &numel, &rows);
    size_t each = (size_t)cmcr_pointbert_get_info(p0).input_floats;
    float *a = malloc(each * sizeof *a), *b = malloc(each * sizeof *b), *c = malloc(each * sizeof *c);
    assert_int_equal(cmcr_pointbert_group(p0, v, rows, 3, "mem", a), CMCR_OK);
    assert_int_equal(cmcr_pointbert_cloud(p0, path, b), CMCR_OK);
    assert_memory_equal(a, b, each * sizeof *a);
    assert_int_equal(pointbert_group(v, rows, 3, 0, c, NULL, NULL), CMCR_OK);
    assert_memory_equal(a, c, each * sizeof *a);
    assert_int_equal(cmcr_pointbert_group(p7, v, rows, 3, "mem", b), CMCR_OK);
    assert_int_equal(cmcr_pointbert_group(p7, v, rows, 3, "mem", c), CMCR_OK);
    assert_memory_equal(b, c, each * sizeof *b);
    assert_memory_not_equal(a, b, each * sizeof *a);
    /* bad clouds through the API: named, refused before grouping */
    v[5] = NAN;
    assert_int_equal(cmcr_pointbert_group(p0, v, rows, 3, "nan cloud", a), CMCR_EVALUE);
    assert_non_null(strstr(cmcr_last_error(), "nan cloud"));
    assert_int_equal(cmcr_pointbert_group(p0, v, 31, 3, "tiny", a), CMCR_ESHAPE);
    assert_int_equal(cmcr_pointbert_group(p0, NULL, rows, 3, "x", a), CMCR_EINVAL);
    free(v);
    free(a);
    free(b);
    free(c);
    free(path);
    cmcr_pointbert_free(p0);
    cmcr_pointbert_free(p7);
}

/* Columns: 6 to an xyz model is refused, or with xyz_only takes the xyz; 3 to an rgb model is
 * refused. */
static void test_columns(void **state)
{
    (void)state;
    cmcr_pointbert_options o = cmcr_pointbert_default_options();
    cmcr_pointbert *xyz = load("pointbert_small", &o), *rgb = load("pointbert_rgb", &o);
    o.xyz_only = 1;
    cmcr_pointbert *only = load("pointbert_small", &o);
    char *path = cloud_path("pointbert_rgb", 0);
    int64_t numel, rows;
    float *v6 = tu_load_npy(path, &numel, &rows), *v3 = malloc((size_t)rows * 3 * sizeof *v3);
    assert_int_equal(numel, rows * 6);
    for (int64_t i = 0; i < rows; i++) memcpy(v3 + 3 * i, v6 + 6 * i, 3 * sizeof *v3);
    size_t each = (size_t)cmcr_pointbert_get_info(xyz).input_floats;
    float *a = malloc(each * sizeof *a), *b = malloc(each * sizeof *b);
    assert_int_equal(cmcr_pointbert_group(xyz, v6, rows, 6, "rgb.npy", a), CMCR_ESHAPE);
    printf("MSG %s\n", cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), "xyz only"));
    assert_int_equal(cmcr_pointbert_group(only, v6, rows, 6, "rgb.npy", a), CMCR_OK);
    assert_int_equal(cmcr_pointbert_group(xyz, v3, rows, 3, "xyz.npy", b), CMCR_OK);
    assert_memory_equal(a, b, each * sizeof *a);
    assert_int_equal(cmcr_pointbert_group(rgb, v3, rows, 3, "xyz.npy", a), CMCR_ESHAPE);
    printf("MSG %s\n", cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), "xyz + rgb (6)"));
    free(v6);
    free(v3);
    free(a);
    free(b);
    free(path);
    cmcr_pointbert_free(xyz);
    cmcr_pointbert_free(rgb);
    cmcr_pointbert_free(only);
}

/* The parallel read: a bad file among good ones is named, its input zeroed, the others read;
 * the embeddings of the start-0 clouds match the reference after normalising. */
static void test_clouds_and_embed(void **state)
{
    (void)state;
    cmcr_pointbert *pb = load("pointbert_small", NULL);
    size_t each = (size_t)cmcr_pointbert_get_info(pb).input_floats;
    char *bad = tu_path("bad.npy");
    tu_write_file(bad, "\x93NUMPY junk", 11);
    char *paths[3] = {cloud_path("pointbert_small", 0), bad, cloud_path("pointbert_small", 2)};
    float *in = malloc(3 * each * sizeof *in);
    unsigned char ok[3];
    assert_int_not_equal(cmcr_pointbert_clouds(pb, (const char *const *)paths, 3, in, ok), CMCR_OK);
    printf("MSG %s\n", cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), "bad.npy"));
    assert_true(ok[0] && !ok[1] && ok[2]);
    for (size_t k = 0; k < each; k++) assert_true(in[each + k] == 0.0f);
    /* clouds 0 and 2 start at point 0 in the reference (starts.npy): their rows */
    float emb[3 * 512];
    assert_int_equal(cmcr_pointbert_embed(pb, in, 3, 0, 1, emb), CMCR_OK);
    int64_t n, k;
    float *ref = pb_npy("pointbert_small", "ref_emb.npy", &n, &k);
    int64_t *starts = pb_npy("pointbert_small", "starts.npy", &n, NULL);
    assert_true(starts[0] == 0 && starts[2] == 0);
    double worst = 0;
    for (int r = 0; r < 3; r += 2) {
        double norm = 0;
        for (int j = 0; j < 512; j++) norm += (double)ref[r * 512 + j] * ref[r * 512 + j];
        for (int j = 0; j < 512; j++) {
            double d = fabs(emb[r * 512 + j] - ref[r * 512 + j] / sqrt(norm));
            worst = d > worst ? d : worst;
        }
    }
    printf("cmcr_pointbert_embed (normalised) vs the reference: max abs difference %.3g\n", worst);
    assert_true(worst <= TOL);
    assert_int_equal(cmcr_pointbert_embed(pb, NULL, 1, 0, 1, emb), CMCR_EINVAL);
    free(ref);
    free(starts);
    free(in);
    for (int i = 0; i < 3; i++) free(paths[i]);
    cmcr_pointbert_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_and_info),
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_group_and_start),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_clouds_and_embed),
    };
    return tu_run_tests(tests, sizeof tests / sizeof tests[0]);
}
