/* test_train_grad.c - the hand-written backward of the whole C-MCR loss against central
 * finite differences, for every parameter tensor of both projectors, for one- and two-layer
 * heads and for every loss switch.
 *
 * Tolerance: the forward pass runs in float32 (loss accumulated in double). We compare
 * directional derivatives along a random unit direction per tensor with step h = 1e-3:
 * float rounding of a loss of size ~1 contributes ~1e-7 / h = 1e-4, truncation error is
 * O(h^2) ~ 1e-6 times the third derivative; so we accept |fd - g.d| <= 1e-3 + 2e-2 |g.d|. A
 * wrong sign, factor or missing term gives errors of order |g.d| itself (>> 2e-2).
 * ReLU makes the loss only piecewise smooth: when a unit crosses its kink inside
 * [p - h, p + h] the central difference is off for that h (measured: at h = 1e-2 about one
 * unit in 200 crosses). So a tensor whose check fails at h = 1e-3 is retried at 3e-4 and 3e-3;
 * a real gradient error fails at every step size. */
#include "testutil.h"
#include "mcr/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 24, DA = 7, DB = 5, HID = 9, OUT = 6, MA = 30, MB = 40 };

typedef struct problem {
    float *oa, *ob, *ma, *mb;
} problem;

static problem make_problem(void)
{
    rng_state r;
    rng_seed(&r, 7);
    problem p = {tu_normal_matrix(&r, N, DA), tu_normal_matrix(&r, N, DB), tu_normal_matrix(&r, MA, DA),
                 tu_normal_matrix(&r, MB, DB)};
    return p;
}

static void free_problem(problem *p)
{
    free(p->oa);
    free(p->ob);
    free(p->ma);
    free(p->mb);
}

static cmcr_trainer *make_trainer(const problem *pr, int layers, void (*tweak)(cmcr_train_params *))
{
    cmcr_train_params p = cmcr_train_default_params();
    p.shape_a = (cmcr_head_shape){layers, DA, layers == 2 ? HID : 0, OUT};
    p.shape_b = (cmcr_head_shape){layers, DB, layers == 2 ? HID : 0, OUT};
    p.batch = N;
    p.tau = 0.2; /* a moderate temperature keeps the loss smooth enough for h = 1e-2 */
    p.tau_mem = 0.1;
    p.sigma2 = 0.01;
    p.lambda_intra = 0.7;
    if (tweak) tweak(&p);
    cmcr_train_data d = {.overlap_a = pr->oa, .overlap_b = pr->ob, .n_overlap = N, .dim_a = DA, .dim_b = DB,
                         .memory_a = pr->ma, .n_memory_a = MA, .memory_b = pr->mb, .n_memory_b = MB};
    cmcr_trainer *t;
    if (cmcr_trainer_new(&p, &d, &t) != CMCR_OK) fail_msg("%s", cmcr_last_error());
    /* Perturb BatchNorm affine parameters away from 1/0 so their gradients are exercised. */
    rng_state r;
    rng_seed(&r, 3);
    float *jitter = tu_normal_matrix(&r, 1, (int64_t)t->model->nparams);
    for (size_t i = 0; i < t->model->nparams; i++) t->model->params[i] += 0.05f * jitter[i];
    free(jitter);
    int64_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = (i * 7) % N;
    train_make_batch(t, idx, NULL);
    return t;
}

static double loss_at(cmcr_trainer *t) { return train_forward_backward(t).total; }

/* Central difference of the loss along d (unit norm) with step h. */
static double directional_fd(cmcr_trainer *t, float *w, const float *saved, const double *d, size_t n, double h)
{
    for (size_t i = 0; i < n; i++) w[i] = (float)(saved[i] + h * d[i]);
    double lp = loss_at(t);
    for (size_t i = 0; i < n; i++) w[i] = (float)(saved[i] - h * d[i]);
    double lm = loss_at(t);
    memcpy(w, saved, sizeof(float) * n);
    return (lp - lm) / (2 * h);
}

/* Check one contiguous parameter tensor [off, off + n). */
static void check_tensor(cmcr_trainer *t, const float *grad, size_t off, size_t n, const char *name, int *checked)
{
    static const double steps[3] = {1e-3, 3e-4, 3e-3};
    rng_state r;
    rng_seed(&r, off + 11);
    double *d = malloc(sizeof(double) * n), norm = 0, analytic = 0;
    float *z = tu_normal_matrix(&r, 1, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        d[i] = z[i];
        norm += d[i] * d[i];
    }
    free(z);
    for (size_t i = 0; i < n; i++) {
        d[i] /= sqrt(norm);
        analytic += d[i] * grad[off + i];
    }
    float *w = t->model->params + off, *saved = malloc(sizeof(float) * n);
    memcpy(saved, w, sizeof(float) * n);
    double tol = 1e-3 + 2e-2 * fabs(analytic), fd = 0, err = INFINITY;
    for (int k = 0; k < 3 && err > tol; k++) {
        fd = directional_fd(t, w, saved, d, n, steps[k]);
        err = fabs(fd - analytic);
        printf("  %-6s n=%-4zu h=%.0e analytic % .6f  finite-diff % .6f  |diff| %.2e (tol %.2e)%s\n", name, n,
               steps[k], analytic, fd, err, tol, err > tol ? "  (retry)" : "");
    }
    if (err > tol) fail_msg("gradient of %s is wrong: analytic %.6g, finite differences %.6g", name, analytic, fd);
    (*checked)++;
    free(saved);
    free(d);
}

static void check_all(cmcr_trainer *t)
{
    loss_at(t);
    size_t np = t->model->nparams;
    float *grad = malloc(sizeof(float) * np);
    memcpy(grad, t->grad, sizeof(float) * np);
    static const char *const names[2][8] = {{"A.W1", "A.b1", "A.g1", "A.be1", "A.W2", "A.b2", "A.g2", "A.be2"},
                                            {"B.W1", "B.b1", "B.g1", "B.be1", "B.W2", "B.b2", "B.g2", "B.be2"}};
    size_t off = 0;
    int checked = 0;
    for (int s = 0; s < 2; s++) {
        const model_head *h = &t->model->heads[s];
        size_t seg[8] = {(size_t)(h->hid * h->shape.in_dim), (size_t)h->hid, (size_t)h->hid, (size_t)h->hid, 0, 0, 0, 0};
        if (h->shape.layers == 2) {
            seg[4] = (size_t)(h->shape.out_dim * h->hid);
            seg[5] = seg[6] = seg[7] = (size_t)h->shape.out_dim;
        }
        for (int k = 0; k < 8; k++) {
            if (!seg[k]) continue;
            check_tensor(t, grad, off, seg[k], names[s][k], &checked);
            off += seg[k];
        }
    }
    assert_int_equal(off, np);
    assert_int_equal(checked, t->model->heads[0].shape.layers == 2 ? 16 : 8);
    free(grad);
}

static void run_case(int layers, void (*tweak)(cmcr_train_params *), const char *what)
{
    printf("%s, %d-layer heads:\n", what, layers);
    problem pr = make_problem();
    cmcr_trainer *t = make_trainer(&pr, layers, tweak);
    check_all(t);
    cmcr_trainer_free(t);
    free_problem(&pr);
}

static void no_pseudo(cmcr_train_params *p) { p->pseudo_pair = 0; }
static void no_intra(cmcr_train_params *p) { p->intra = 0; }
static void squared(cmcr_train_params *p) { p->intra_squared = 1; }
static void no_consistency(cmcr_train_params *p) { p->consistency = 0; }

static void test_full_loss_two_layers(void **s) { (void)s; run_case(2, NULL, "full loss"); }
static void test_full_loss_one_layer(void **s) { (void)s; run_case(1, NULL, "full loss"); }
static void test_no_pseudo_pair(void **s) { (void)s; run_case(2, no_pseudo, "no pseudo pair"); }
static void test_no_intra(void **s) { (void)s; run_case(2, no_intra, "no intra"); }
static void test_squared_intra(void **s) { (void)s; run_case(1, squared, "squared intra"); }
static void test_no_consistency(void **s) { (void)s; run_case(2, no_consistency, "no consistency"); }

/* The gradient must actually change with the loss switches (guards against a check that
 * passes because a term is silently skipped in both loss and gradient). */
static void test_switches_change_the_loss(void **s)
{
    (void)s;
    problem pr = make_problem();
    cmcr_trainer *full = make_trainer(&pr, 2, NULL), *np = make_trainer(&pr, 2, no_pseudo),
                 *ni = make_trainer(&pr, 2, no_intra);
    train_loss a = train_forward_backward(full), b = train_forward_backward(np),
               c = train_forward_backward(ni);
    assert_true(a.pseudo > 0.1 && a.intra > 0.01 && a.native > 0.1);
    assert_true(fabs(a.total - (a.native + a.pseudo + 0.7 * a.intra)) < 1e-9);
    assert_true(b.pseudo == 0 && fabs(b.total - (b.native + 0.7 * b.intra)) < 1e-9);
    assert_true(c.intra == 0 && fabs(c.total - (c.native + c.pseudo)) < 1e-9);
    cmcr_trainer_free(full);
    cmcr_trainer_free(np);
    cmcr_trainer_free(ni);
    free_problem(&pr);
}

/* Borrowed inputs (read in place, normalised per batch) train to bit-identical models, with
 * pseudo embeddings aggregated from the memories, given precomputed, or off. The inputs are
 * scaled rows (not unit norm) so that the per-batch normalisation really has work to do. */
static void train_steps(const problem *pr, int borrow, int mode, float *params_out, size_t *n)
{
    cmcr_train_params p = cmcr_train_default_params();
    p.shape_a = (cmcr_head_shape){2, DA, HID, OUT};
    p.shape_b = (cmcr_head_shape){2, DB, HID, OUT};
    p.batch = 8;
    p.epochs = 2;
    p.tau = 0.2;
    p.consistency = mode != 2;
    cmcr_train_data d = {.overlap_a = pr->oa, .overlap_b = pr->ob, .n_overlap = N, .dim_a = DA, .dim_b = DB,
                         .memory_a = pr->ma, .n_memory_a = MA, .memory_b = pr->mb, .n_memory_b = MB,
                         .borrow = borrow};
    if (mode == 1) { /* precomputed pseudo embeddings: the memories' first N rows */
        d.pseudo_a = pr->ma;
        d.pseudo_b = pr->mb;
    }
    cmcr_trainer *t;
    if (cmcr_trainer_new(&p, &d, &t) != CMCR_OK) fail_msg("%s", cmcr_last_error());
    if (cmcr_trainer_run(t, NULL, NULL) != CMCR_OK) fail_msg("%s", cmcr_last_error());
    *n = t->model->nparams;
    memcpy(params_out, t->model->params, *n * sizeof(float));
    cmcr_trainer_free(t);
}

static void test_borrowed_inputs_train_identically(void **s)
{
    (void)s;
    problem pr = make_problem();
    static float a[100000], b[100000];
    for (int mode = 0; mode < 3; mode++) {
        size_t na, nb;
        train_steps(&pr, 0, mode, a, &na);
        train_steps(&pr, 1, mode, b, &nb);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof(float));
    }
    free_problem(&pr);
}

/* --precision bf16: the gradient of the same batch is the float32 one up to bfloat16
 * rounding of the products' inputs (relative 2^-9 each): close, not identical, and every
 * product ran in bf16 (mm_prec_fallbacks). For one- and two-layer heads (the two heads of
 * different input widths), with and without the pseudo pair and the intra loss. Without bf16
 * here the trainer refuses it and says why. */
static void bf16_full(cmcr_train_params *p) { p->bf16 = 1; }
static void bf16_no_pseudo(cmcr_train_params *p) { p->bf16 = 1, p->pseudo_pair = 0; }
static void bf16_no_intra(cmcr_train_params *p) { p->bf16 = 1, p->intra = 0; }

static void test_bf16_gradient(void **s)
{
    (void)s;
    problem pr = make_problem();
    if (!cmcr_bf16_support()) {
        cmcr_train_params p = cmcr_train_default_params();
        p.shape_a = (cmcr_head_shape){2, DA, HID, OUT};
        p.shape_b = (cmcr_head_shape){2, DB, HID, OUT};
        p.bf16 = 1;
        cmcr_train_data d = {.overlap_a = pr.oa, .overlap_b = pr.ob, .n_overlap = N, .dim_a = DA, .dim_b = DB,
                             .memory_a = pr.ma, .n_memory_a = MA, .memory_b = pr.mb, .n_memory_b = MB};
        cmcr_trainer *t = NULL;
        assert_int_not_equal(cmcr_trainer_new(&p, &d, &t), CMCR_OK);
        printf("bf16 refused: %s\n", cmcr_last_error());
        assert_non_null(strstr(cmcr_last_error(), "bf"));
        free_problem(&pr);
        return;
    }
    void (*f32[3])(cmcr_train_params *) = {NULL, no_pseudo, no_intra};
    void (*bf[3])(cmcr_train_params *) = {bf16_full, bf16_no_pseudo, bf16_no_intra};
    const char *name[3] = {"full loss", "no pseudo pair", "no intra"};
    for (int layers = 1; layers <= 2; layers++)
        for (int c = 0; c < 3; c++) {
            cmcr_trainer *f = make_trainer(&pr, layers, f32[c]), *h = make_trainer(&pr, layers, bf[c]);
            long long before = mm_prec_fallbacks();
            double lf = loss_at(f), lh = loss_at(h), diff = 0, norm = 0;
            for (size_t i = 0; i < f->model->nparams; i++) {
                diff += ((double)h->grad[i] - f->grad[i]) * ((double)h->grad[i] - f->grad[i]);
                norm += (double)f->grad[i] * f->grad[i];
            }
            double rel = sqrt(diff / norm);
            printf("bf16 vs float32, %d layer(s), %s: loss %.6f vs %.6f, |g_bf16 - g_f32| / |g_f32| = %.2e\n",
                   layers, name[c], lh, lf, rel);
            assert_true(fabs(lh - lf) < 1e-2 * fabs(lf));
            assert_true(rel > 1e-3 && rel < 2e-2);
            assert_int_equal(mm_prec_fallbacks(), before);
            cmcr_trainer_free(f);
            cmcr_trainer_free(h);
        }
    free_problem(&pr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_loss_two_layers), cmocka_unit_test(test_full_loss_one_layer),
        cmocka_unit_test(test_no_pseudo_pair),       cmocka_unit_test(test_no_intra),
        cmocka_unit_test(test_squared_intra),        cmocka_unit_test(test_no_consistency),
        cmocka_unit_test(test_switches_change_the_loss), cmocka_unit_test(test_borrowed_inputs_train_identically),
        cmocka_unit_test(test_bf16_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
