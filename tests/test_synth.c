/* test_synth.c - the built-in synthetic two-MCR world: determinism, shapes, the modality
 * gap, unrelated spaces, missing concepts, informative MCRs, parameter checks, saving and
 * the `cmcr synth` command. */
#include "testutil.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Default widths and semantics (the calibration under test), small sets. */
static cmcr_synth_params small_params(void)
{
    cmcr_synth_params p = cmcr_synth_default_params();
    p.n_overlap = 2000;
    p.n_memory_a = 2000;
    p.n_memory_b = 2000;
    p.n_test = 500;
    p.n_oracle = 400;
    p.n_diag = 500;
    return p;
}

static void generate(const cmcr_synth_params *p, cmcr_world *w)
{
    cmcr_status st = cmcr_synth_generate(p, w);
    if (st) fail_msg("cmcr_synth_generate: %s", cmcr_last_error());
}

static const cmcr_matrix *matrix_at(const cmcr_world *w, int i)
{
    const cmcr_matrix *m[] = {&w->overlap_a, &w->overlap_b, &w->memory_a, &w->memory_b,
                              &w->test_x,    &w->test_y,    &w->oracle_x, &w->oracle_y};
    return i < 8 ? m[i] : NULL;
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Mean cos of row i of a with row (i + shift) % rows of b, over the first n rows. */
static double mean_cos(const cmcr_matrix *a, const cmcr_matrix *b, int64_t n, int64_t shift)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += dot(a->data + i * a->cols, b->data + ((i + shift) % b->rows) * b->cols, a->cols);
    return s / (double)n;
}

/* Fraction of the first nq queries whose most similar gallery row has the query's concept. */
static double concept_r1(const cmcr_matrix *q, const int64_t *ql, int64_t nq, const cmcr_matrix *g,
                         const int64_t *gl)
{
    int64_t ng = g->rows, d = g->cols, hits = 0;
    float *s = malloc((size_t)(nq * ng) * sizeof(float));
    assert_non_null(s);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)ng, (int)d, 1.0f, q->data, (int)d, g->data,
                (int)d, 0.0f, s, (int)ng);
    for (int64_t i = 0; i < nq; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < ng; j++)
            if (s[i * ng + j] > s[i * ng + best]) best = j;
        hits += ql[i] == gl[best];
    }
    free(s);
    return (double)hits / (double)nq;
}

/* ------------------------------------------------------------------ tests */

static void test_defaults(void **state)
{
    (void)state;
    cmcr_synth_params p = cmcr_synth_default_params();
    assert_int_equal(p.seed, 1);
    assert_int_equal(p.dim_a, 512);
    assert_int_equal(p.dim_b, 512);
    assert_int_equal(p.latent, 64);
    assert_int_equal(p.concepts, 200);
    assert_int_equal(p.clusters, 20);
    assert_int_equal(p.n_overlap, 20000);
    assert_int_equal(p.n_memory_a, 20000);
    assert_int_equal(p.n_memory_b, 20000);
    assert_int_equal(p.n_test, 2000);
    assert_int_equal(p.n_oracle, 20000);
    assert_int_equal(p.n_diag, 1000);
    assert_true(p.gap == 1.0 && p.mcr_noise == 1.0 && p.instance_noise == 1.0);
    assert_true(p.distortion == 1.0 && p.shift == 1.0 && p.missing_frac == 0.1);
}

static void check_labels(const int64_t *l, int64_t n, int64_t concepts)
{
    assert_non_null(l);
    for (int64_t i = 0; i < n; i++) assert_true(l[i] >= 0 && l[i] < concepts);
}

static void test_shapes_norms_finite(void **state)
{
    (void)state;
    cmcr_synth_params p = small_params();
    p.dim_b = 384; /* widths may differ */
    cmcr_world w;
    generate(&p, &w);
    int64_t rows[8] = {p.n_overlap, p.n_overlap, p.n_memory_a, p.n_memory_b, p.n_test, p.n_test, p.n_oracle, p.n_oracle};
    int64_t cols[8] = {p.dim_a, p.dim_b, p.dim_a, p.dim_b, p.dim_a, p.dim_b, p.dim_a, p.dim_b};
    for (int i = 0; i < 8; i++) {
        const cmcr_matrix *m = matrix_at(&w, i);
        assert_int_equal(m->rows, rows[i]);
        assert_int_equal(m->cols, cols[i]);
        assert_int_equal(cmcr_find_nonfinite_row(m->data, m->rows, m->cols), -1);
        for (int64_t r = 0; r < m->rows; r++) {
            const float *x = m->data + r * m->cols;
            assert_true(fabs(dot(x, x, m->cols) - 1.0) < 1e-4);
        }
    }
    check_labels(w.test_labels, p.n_test, p.concepts);
    check_labels(w.overlap_labels, p.n_overlap, p.concepts);
    check_labels(w.memory_a_labels, p.n_memory_a, p.concepts);
    check_labels(w.memory_b_labels, p.n_memory_b, p.concepts);
    check_labels(w.oracle_labels, p.n_oracle, p.concepts);
    assert_true(isnan(w.ab_cos)); /* widths differ: not measured */
    cmcr_world_free(&w);
    cmcr_world_free(&w); /* idempotent */
    cmcr_world_free(NULL);
}

static bool same_world(const cmcr_world *a, const cmcr_world *b)
{
    for (int i = 0; i < 8; i++) {
        const cmcr_matrix *x = matrix_at(a, i), *y = matrix_at(b, i);
        if (x->rows != y->rows || x->cols != y->cols ||
            memcmp(x->data, y->data, (size_t)(x->rows * x->cols) * sizeof(float)) != 0)
            return false;
    }
    const cmcr_synth_params *p = &a->params;
    return memcmp(a->test_labels, b->test_labels, (size_t)p->n_test * 8) == 0 &&
           memcmp(a->overlap_labels, b->overlap_labels, (size_t)p->n_overlap * 8) == 0 &&
           memcmp(a->memory_a_labels, b->memory_a_labels, (size_t)p->n_memory_a * 8) == 0 &&
           memcmp(a->memory_b_labels, b->memory_b_labels, (size_t)p->n_memory_b * 8) == 0 &&
           a->gap_cos_pair_a == b->gap_cos_pair_a && a->gap_cos_same_b == b->gap_cos_same_b &&
           a->n_missing == b->n_missing && memcmp(a->missing_a, b->missing_a, (size_t)a->n_missing * 8) == 0;
}

static void test_deterministic(void **state)
{
    (void)state;
    cmcr_synth_params p = small_params();
    cmcr_world a, b, c;
    generate(&p, &a);
    generate(&p, &b);
    assert_true(same_world(&a, &b));
    p.seed = 2;
    generate(&p, &c);
    assert_false(same_world(&a, &c));
    for (int i = 0; i < 8; i++) {
        const cmcr_matrix *x = matrix_at(&a, i), *y = matrix_at(&c, i);
        assert_true(memcmp(x->data, y->data, (size_t)(x->rows * x->cols) * sizeof(float)) != 0);
    }
    assert_true(a.gap_cos_pair_a != c.gap_cos_pair_a);
    cmcr_world_free(&a);
    cmcr_world_free(&b);
    cmcr_world_free(&c);
}

/* Each set has its own random streams: resizing one set leaves the others bit-identical. */
static void test_sets_independent_of_other_sizes(void **state)
{
    (void)state;
    cmcr_synth_params p = small_params();
    cmcr_world a, b;
    generate(&p, &a);
    p.n_test = 123;
    p.n_oracle = 77;
    generate(&p, &b);
    size_t n = (size_t)(a.overlap_a.rows * a.overlap_a.cols) * sizeof(float);
    assert_memory_equal(a.overlap_a.data, b.overlap_a.data, n);
    assert_memory_equal(a.memory_b.data, b.memory_b.data, (size_t)(a.memory_b.rows * a.memory_b.cols) * sizeof(float));
    assert_memory_equal(a.test_x.data, b.test_x.data, (size_t)(123 * a.test_x.cols) * sizeof(float));
    cmcr_world_free(&a);
    cmcr_world_free(&b);
}

static void test_modality_gap(void **state)
{
    (void)state;
    cmcr_synth_params p = small_params();
    cmcr_world w;
    generate(&p, &w);
    print_message("gap A: pair %.3f same %.3f cross %.3f; B: pair %.3f same %.3f cross %.3f; ab %.3f\n",
                  w.gap_cos_pair_a, w.gap_cos_same_a, w.gap_cos_cross_a, w.gap_cos_pair_b, w.gap_cos_same_b,
                  w.gap_cos_cross_b, w.ab_cos);
    double pair[2] = {w.gap_cos_pair_a, w.gap_cos_pair_b}, same[2] = {w.gap_cos_same_a, w.gap_cos_same_b};
    double cross[2] = {w.gap_cos_cross_a, w.gap_cos_cross_b};
    for (int m = 0; m < 2; m++) {
        assert_true(pair[m] > 0.15 && pair[m] < 0.5);  /* real CLIP: ~0.3 */
        assert_true(same[m] > pair[m] + 0.2);          /* same modality is much closer */
        assert_true(cross[m] < pair[m] - 0.1);         /* but matching still beats non-matching */
    }
    /* The cones, seen from the outputs alone: two random items of one modality are closer
     * than two random items of the two modalities of one MCR. */
    int64_t n = 2000;
    double same_x = mean_cos(&w.memory_a, &w.memory_a, n, 1), x_s = mean_cos(&w.memory_a, &w.overlap_a, n, 0);
    double same_y = mean_cos(&w.memory_b, &w.memory_b, n, 1), y_s = mean_cos(&w.memory_b, &w.overlap_b, n, 0);
    print_message("random pairs: X-X %.3f X-S %.3f Y-Y %.3f Y-S %.3f\n", same_x, x_s, same_y, y_s);
    assert_true(same_x > x_s + 0.2 && same_y > y_s + 0.2);
    cmcr_world_free(&w);
}

/* The knobs do what they say: without cones, or with perfect MCRs, matching pairs are closer. */
static void test_knobs_move_the_gap(void **state)
{
    (void)state;
    cmcr_synth_params p = small_params();
    p.n_overlap = p.n_memory_a = p.n_memory_b = p.n_test = p.n_oracle = 10;
    cmcr_world base, nogap, perfect;
    generate(&p, &base);
    p.gap = 0;
    generate(&p, &nogap);
    p.gap = 1;
    p.mcr_noise = 0;
    p.distortion = 0;
    generate(&p, &perfect);
    print_message("pair cos A: default %.3f, gap 0 %.3f, no misalignment/distortion %.3f\n", base.gap_cos_pair_a,
                  nogap.gap_cos_pair_a, perfect.gap_cos_pair_a);
    assert_true(nogap.gap_cos_pair_a > base.gap_cos_pair_a + 0.05);
    assert_true(fabs(nogap.gap_cos_cross_a) < 0.05 && fabs(nogap.gap_cos_cross_b) < 0.05); /* no cones */
    assert_true(perfect.gap_cos_pair_a > base.gap_cos_pair_a + 0.05);
    assert_true(perfect.gap_cos_pair_b > base.gap_cos_pair_b + 0.05);
    assert_true(perfect.gap_cos_same_a > base.gap_cos_same_a + 0.05);
    cmcr_world_free(&base);
    cmcr_world_free(&nogap);
    cmcr_world_free(&perfect);
}

static void test_unrelated_spaces(void **state)
{
    (void)state;
    cmcr_synth_params p = small_params();
    cmcr_world w;
    generate(&p, &w);
    assert_true(fabs(w.ab_cos) < 0.1);
    /* From the outputs: S of one item in A vs in B, and X (A) vs Y (B) of one test item. */
    double s_ab = mean_cos(&w.overlap_a, &w.overlap_b, w.overlap_a.rows, 0);
    double xy = mean_cos(&w.test_x, &w.test_y, w.test_x.rows, 0);
    print_message("same item across MCRs: S_A.S_B %.3f, X.Y %.3f\n", s_ab, xy);
    assert_true(fabs(s_ab) < 0.1 && fabs(xy) < 0.1);
    /* No correspondence before training: X -> Y retrieval of the concept is at chance. */
    double r1 = concept_r1(&w.test_x, w.test_labels, w.test_x.rows, &w.test_y, w.test_labels);
    print_message("untrained X->Y concept R@1 %.3f (chance %.3f)\n", r1, 1.0 / (double)p.concepts);
    assert_true(r1 < 0.03);
    cmcr_world_free(&w);
}

/* Within one MCR the modalities are aligned: X -> S retrieval finds the concept. */
static void test_mcrs_informative(void **state)
{
    (void)state;
    cmcr_synth_params p = small_params();
    cmcr_world w;
    generate(&p, &w);
    double ra = concept_r1(&w.memory_a, w.memory_a_labels, 500, &w.overlap_a, w.overlap_labels);
    double rb = concept_r1(&w.memory_b, w.memory_b_labels, 500, &w.overlap_b, w.overlap_labels);
    print_message("within-MCR concept R@1: X->S in A %.3f, Y->S in B %.3f (chance ~%.3f)\n", ra, rb,
                  1.0 / (double)p.concepts);
    assert_true(ra > 0.4 && rb > 0.4);
    cmcr_world_free(&w);
}

static bool contains(const int64_t *v, int64_t n, int64_t x)
{
    for (int64_t i = 0; i < n; i++)
        if (v[i] == x) return true;
    return false;
}

/* Total-variation distance between the concept histograms of two label vectors. */
static double tv_distance(const int64_t *a, int64_t na, const int64_t *b, int64_t nb, int64_t concepts)
{
    double *h = calloc((size_t)concepts, sizeof *h), tv = 0;
    assert_non_null(h);
    for (int64_t i = 0; i < na; i++) h[a[i]] += 1.0 / (double)na;
    for (int64_t i = 0; i < nb; i++) h[b[i]] -= 1.0 / (double)nb;
    for (int64_t c = 0; c < concepts; c++) tv += fabs(h[c]);
    free(h);
    return tv / 2;
}

static void test_missing_and_shifted(void **state)
{
    (void)state;
    cmcr_synth_params p = small_params();
    cmcr_world w;
    generate(&p, &w);
    assert_int_equal(w.n_missing, 20);
    for (int64_t i = 0; i < w.n_missing; i++) {
        assert_false(contains(w.missing_b, w.n_missing, w.missing_a[i])); /* different ones */
        assert_true(contains(w.overlap_labels, p.n_overlap, w.missing_a[i])); /* only the memory lacks them */
    }
    for (int64_t i = 0; i < p.n_memory_a; i++) assert_false(contains(w.missing_a, w.n_missing, w.memory_a_labels[i]));
    for (int64_t i = 0; i < p.n_memory_b; i++) assert_false(contains(w.missing_b, w.n_missing, w.memory_b_labels[i]));
    double tv_shift = tv_distance(w.overlap_labels, p.n_overlap, w.oracle_labels, p.n_oracle, p.concepts);
    cmcr_world_free(&w);
    p.shift = 0;
    p.missing_frac = 0;
    generate(&p, &w);
    assert_int_equal(w.n_missing, 0);
    double tv_flat = tv_distance(w.overlap_labels, p.n_overlap, w.oracle_labels, p.n_oracle, p.concepts);
    print_message("concept proportions overlap vs oracle: TV %.3f (shift 1), %.3f (shift 0)\n", tv_shift, tv_flat);
    assert_true(tv_shift > tv_flat + 0.1);
    cmcr_world_free(&w);
}

typedef struct bad_case {
    const char *field;
    void (*apply)(cmcr_synth_params *p);
} bad_case;

static void bad_dim_a(cmcr_synth_params *p) { p->dim_a = 4; }
static void bad_dim_b(cmcr_synth_params *p) { p->dim_b = -1; }
static void bad_latent(cmcr_synth_params *p) { p->latent = 1; }
static void bad_concepts(cmcr_synth_params *p) { p->concepts = 1; }
static void bad_clusters(cmcr_synth_params *p) { p->clusters = p->concepts + 1; }
static void bad_overlap(cmcr_synth_params *p) { p->n_overlap = 0; }
static void bad_memory_a(cmcr_synth_params *p) { p->n_memory_a = -5; }
static void bad_memory_b(cmcr_synth_params *p) { p->n_memory_b = 0; }
static void bad_test(cmcr_synth_params *p) { p->n_test = 0; }
static void bad_oracle(cmcr_synth_params *p) { p->n_oracle = (int64_t)1 << 40; }
static void bad_diag(cmcr_synth_params *p) { p->n_diag = 1; }
static void bad_gap(cmcr_synth_params *p) { p->gap = NAN; }
static void bad_mcr_noise(cmcr_synth_params *p) { p->mcr_noise = -0.1; }
static void bad_instance(cmcr_synth_params *p) { p->instance_noise = INFINITY; }
static void bad_missing(cmcr_synth_params *p) { p->missing_frac = 0.6; }
static void bad_distortion(cmcr_synth_params *p) { p->distortion = 11; }
static void bad_shift(cmcr_synth_params *p) { p->shift = -1; }
static void bad_bytes(cmcr_synth_params *p)
{
    p->dim_a = 65536;
    p->n_memory_a = (int64_t)1 << 27;
}

static void test_invalid_params(void **state)
{
    (void)state;
    bad_case cases[] = {{"dim_a", bad_dim_a},         {"dim_b", bad_dim_b},
                        {"latent", bad_latent},       {"concepts", bad_concepts},
                        {"clusters", bad_clusters},   {"n_overlap", bad_overlap},
                        {"n_memory_a", bad_memory_a}, {"n_memory_b", bad_memory_b},
                        {"n_test", bad_test},         {"n_oracle", bad_oracle},
                        {"n_diag", bad_diag},         {"gap", bad_gap},
                        {"mcr_noise", bad_mcr_noise}, {"instance_noise", bad_instance},
                        {"missing_frac", bad_missing}, {"distortion", bad_distortion},
                        {"shift", bad_shift},         {"n_memory_a", bad_bytes}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cmcr_synth_params p = small_params();
        cases[i].apply(&p);
        cmcr_world w;
        memset(&w, 0xab, sizeof w);
        assert_int_equal(cmcr_synth_generate(&p, &w), CMCR_EINVAL);
        const char *msg = cmcr_last_error();
        print_message("%s -> %s\n", cases[i].field, msg);
        assert_non_null(strstr(msg, cases[i].field));
        assert_null(w.overlap_a.data); /* zeroed on failure */
        assert_null(w.test_labels);
        cmcr_world_free(&w);
    }
    cmcr_world w;
    assert_int_equal(cmcr_synth_generate(NULL, &w), CMCR_EINVAL);
    memset(&w, 0, sizeof w);
    char *never = tu_path("never");
    assert_int_equal(cmcr_world_save(&w, never), CMCR_EINVAL);
    free(never);
}

/* ------------------------------------------------------------------ saving */

static cmcr_synth_params tiny_params(void)
{
    cmcr_synth_params p = cmcr_synth_default_params();
    p.dim_a = 32;
    p.dim_b = 24;
    p.latent = 8;
    p.concepts = 12;
    p.clusters = 3;
    p.n_overlap = 50;
    p.n_memory_a = 40;
    p.n_memory_b = 30;
    p.n_test = 20;
    p.n_oracle = 25;
    p.n_diag = 50;
    p.missing_frac = 0.25;
    return p;
}

static void check_matrix_file(const char *dir, const char *name, const cmcr_matrix *m)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cmcr_matrix got;
    if (cmcr_matrix_load(path, &got)) fail_msg("%s: %s", path, cmcr_last_error());
    assert_int_equal(got.rows, m->rows);
    assert_int_equal(got.cols, m->cols);
    assert_memory_equal(got.data, m->data, (size_t)(m->rows * m->cols) * sizeof(float));
    cmcr_matrix_free(&got);
}

static void check_label_file(const char *dir, const char *name, const int64_t *labels, int64_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cmcr_tensors *ts;
    if (cmcr_tensors_load(path, CMCR_FORMAT_NPY, &ts)) fail_msg("%s: %s", path, cmcr_last_error());
    const cmcr_tensor *t = cmcr_tensors_at(ts, 0);
    assert_int_equal(t->dtype, CMCR_I64);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->shape[0], n);
    assert_memory_equal(t->data, labels, (size_t)n * sizeof(int64_t));
    cmcr_tensors_free(ts);
}

static void check_json(const char *dir, const cmcr_world *w)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/world.json", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    cJSON *params = cJSON_GetObjectItem(root, "params"), *measured = cJSON_GetObjectItem(root, "measured");
    cJSON *files = cJSON_GetObjectItem(root, "files");
    assert_non_null(params);
    assert_non_null(measured);
    assert_non_null(files);
    assert_int_equal((int64_t)cJSON_GetObjectItem(params, "dim_b")->valuedouble, w->params.dim_b);
    assert_int_equal((int64_t)cJSON_GetObjectItem(params, "seed")->valuedouble, (int64_t)w->params.seed);
    assert_true(fabs(cJSON_GetObjectItem(measured, "gap_cos_pair_a")->valuedouble - w->gap_cos_pair_a) < 1e-12);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(measured, "ab_cos"))); /* widths differ */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(measured, "missing_in_memory_a")), w->n_missing);
    cJSON *ov = cJSON_GetObjectItem(files, "overlap_b.npy");
    assert_non_null(ov);
    assert_int_equal((int64_t)cJSON_GetObjectItem(ov, "rows")->valuedouble, w->overlap_b.rows);
    assert_int_equal((int64_t)cJSON_GetObjectItem(ov, "cols")->valuedouble, w->overlap_b.cols);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(ov, "description")));
    assert_non_null(cJSON_GetObjectItem(files, "test_labels.npy"));
    cJSON_Delete(root);
}

static void test_save(void **state)
{
    (void)state;
    cmcr_synth_params p = tiny_params();
    cmcr_world w;
    generate(&p, &w);
    char *dir = tu_path("saved/nested/world"); /* mkdir -p */
    cmcr_status st = cmcr_world_save(&w, dir);
    if (st) fail_msg("cmcr_world_save: %s", cmcr_last_error());
    const char *names[8] = {"overlap_a.npy", "overlap_b.npy", "memory_a.npy", "memory_b.npy",
                            "test_x.npy",    "test_y.npy",    "oracle_x.npy", "oracle_y.npy"};
    for (int i = 0; i < 8; i++) check_matrix_file(dir, names[i], matrix_at(&w, i));
    check_label_file(dir, "test_labels.npy", w.test_labels, p.n_test);
    check_label_file(dir, "overlap_labels.npy", w.overlap_labels, p.n_overlap);
    check_label_file(dir, "memory_a_labels.npy", w.memory_a_labels, p.n_memory_a);
    check_label_file(dir, "memory_b_labels.npy", w.memory_b_labels, p.n_memory_b);
    check_label_file(dir, "oracle_labels.npy", w.oracle_labels, p.n_oracle);
    check_json(dir, &w);
    assert_int_equal(cmcr_world_save(&w, dir), CMCR_OK); /* overwriting is fine */
    /* No temporary files left behind. */
    assert_int_equal(tu_system("ls '%s' | grep -q tmp", dir), 1);
    /* A file in the way of the directory. */
    char *blocker = tu_path("blocker");
    tu_write_file(blocker, "x", 1);
    char *under = tu_path("blocker/world");
    assert_int_not_equal(cmcr_world_save(&w, blocker), CMCR_OK);
    assert_int_not_equal(cmcr_world_save(&w, under), CMCR_OK);
    print_message("file in the way: %s\n", cmcr_last_error());
    free(blocker);
    free(under);
    free(dir);
    cmcr_world_free(&w);
}

/* cmcr_mkdir_p, behind cmcr_world_save, the aggregation cache and the demo's report: missing
 * parents are created, an existing directory is fine (also with a trailing '/'), and a file
 * in the way, of the directory or of a parent, is an i/o error that names it. */
static void test_mkdir_p(void **state)
{
    (void)state;
    char *deep = tu_path("mk/a/b/c"), *slash = tu_path("mk/a/b/c/"), *file = tu_path("mk/file"),
         *under = tu_path("mk/file/d");
    assert_int_equal(cmcr_mkdir_p(deep), CMCR_OK);
    struct stat sb;
    assert_true(stat(deep, &sb) == 0 && S_ISDIR(sb.st_mode));
    assert_int_equal(cmcr_mkdir_p(deep), CMCR_OK);
    assert_int_equal(cmcr_mkdir_p(slash), CMCR_OK);
    tu_write_file(file, "x", 1);
    assert_int_equal(cmcr_mkdir_p(file), CMCR_EIO);
    assert_non_null(strstr(cmcr_last_error(), "not a directory"));
    assert_int_equal(cmcr_mkdir_p(under), CMCR_EIO);
    assert_non_null(strstr(cmcr_last_error(), file));
    print_message("parent in the way: %s\n", cmcr_last_error());
    assert_int_equal(cmcr_mkdir_p(""), CMCR_EINVAL);
    free(deep);
    free(slash);
    free(file);
    free(under);
}

static void test_cli(void **state)
{
    (void)state;
    const char *bin = tu_bin();
    char *dir = tu_path("cli-world"), *log = tu_path("cli.log");
    int rc = tu_system("'%s' synth --out '%s' --seed 7 --dim-a 32 --dim-b 32 --latent 8 --concepts 12 --clusters 3 "
                       "--overlap 50 --memory-a 40 --memory-b 30 --test 20 --oracle 25 --diag 40 > '%s' 2>&1",
                       bin, dir, log);
    if (rc != 0) tu_system("cat '%s'", log);
    assert_int_equal(rc, 0);
    assert_int_equal(tu_system("grep -q 'modality gap in A: matching X-S pairs cos' '%s'", log), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/test_y.npy", dir);
    cmcr_matrix m;
    assert_int_equal(cmcr_matrix_load(path, &m), CMCR_OK);
    assert_int_equal(m.rows, 20);
    assert_int_equal(m.cols, 32);
    cmcr_matrix_free(&m);
    /* Usage errors: exit 2 with a one-line message naming the flag. */
    assert_int_equal(tu_system("'%s' synth --out '%s' --missing-frac 0.7 > '%s' 2>&1", bin, dir, log), 2);
    assert_int_equal(tu_system("grep -q -- '--missing-frac must be between 0 and 0.5' '%s'", log), 0);
    assert_int_equal(tu_system("'%s' synth --out '%s' --clusters 500 > '%s' 2>&1", bin, dir, log), 2);
    assert_int_equal(tu_system("'%s' synth --dim-a 64 > '%s' 2>&1", bin, log), 2); /* --out is required */
    /* --help shows the library's defaults. */
    assert_int_equal(tu_system("'%s' synth --help > '%s' 2>&1", bin, log), 0);
    assert_int_equal(tu_system("grep -q -- '--memory-a N.*(default: 20000)' '%s'", log), 0);
    assert_int_equal(tu_system("grep -q -- '--missing-frac X.*(default: 0.1)' '%s'", log), 0);
    free(dir);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_shapes_norms_finite),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_sets_independent_of_other_sizes),
        cmocka_unit_test(test_modality_gap),
        cmocka_unit_test(test_knobs_move_the_gap),
        cmocka_unit_test(test_unrelated_spaces),
        cmocka_unit_test(test_mcrs_informative),
        cmocka_unit_test(test_missing_and_shifted),
        cmocka_unit_test(test_invalid_params),
        cmocka_unit_test(test_save),
        cmocka_unit_test(test_mkdir_p),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
