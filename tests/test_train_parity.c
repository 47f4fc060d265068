/* test_train_parity.c - the C trainer reproduces scripts/reference_train.py (PyTorch 1.13):
 * pseudo embeddings, the loss terms and every gradient of step 1, the losses of 10 AdamW
 * steps with warm-up + cosine learning rate, and the final weights and BatchNorm statistics.
 * The state files in tests/data are written by that script (regenerate with
 *   /usr/bin/python3 scripts/reference_train.py tests/data/train_parity_2layer.safetensors --layers 2
 *   /usr/bin/python3 scripts/reference_train.py tests/data/train_parity_1layer.safetensors --layers 1).
 *
 * Tolerances (printed with the measured differences): inputs and weights are identical and
 * the same float32 operations run in a different order, so forward values agree to ~1e-6
 * relative; gradients pass through a low temperature (logits x 20) and BatchNorm, so we
 * allow 1e-4 relative to the largest gradient entry of each tensor; after 10 AdamW steps
 * weights agree to 1e-4 absolute (lr 1e-2; Adam normalises steps, so a relative error of
 * the gradient moves a weight by at most ~lr times that error per step). */
#include "testutil.h"
#include "mcr/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cmcr_tensor *need(const cmcr_tensors *ts, const char *name)
{
    const cmcr_tensor *t = cmcr_tensors_find(ts, name);
    if (!t) fail_msg("state file lacks tensor %s", name);
    return t;
}

static double meta_num(const cmcr_tensors *ts, const char *key)
{
    const char *v = cmcr_tensors_get_meta(ts, key);
    if (!v) fail_msg("state file lacks metadata %s", key);
    return atof(v);
}

/* Max |a - b| and max |b| over n floats. */
static void diff_stats(const float *a, const float *b, size_t n, double *maxdiff, double *maxref)
{
    *maxdiff = 0;
    *maxref = 0;
    for (size_t i = 0; i < n; i++) {
        *maxdiff = fmax(*maxdiff, fabs((double)a[i] - b[i]));
        *maxref = fmax(*maxref, fabs((double)b[i]));
    }
}

static int failures;

static void compare(const char *what, const float *mine, const float *ref, size_t n, double abs_tol, double rel_tol)
{
    double d, r;
    diff_stats(mine, ref, n, &d, &r);
    double tol = abs_tol + rel_tol * r;
    int bad = !(d <= tol);
    printf("  %-44s max|diff| %.3e  max|ref| %.3e  tol %.2e %s\n", what, d, r, tol, bad ? "FAIL" : "ok");
    failures += bad;
}

static cmcr_train_params params_from_state(const cmcr_tensors *ts, int layers)
{
    cmcr_train_params p = cmcr_train_default_params();
    p.tau = meta_num(ts, "tau");
    p.tau_mem = meta_num(ts, "tau_mem");
    p.sigma2 = meta_num(ts, "sigma2");
    p.lambda_intra = meta_num(ts, "lambda_intra");
    p.lr = meta_num(ts, "lr");
    p.warmup_steps = (int64_t)meta_num(ts, "warmup_steps");
    p.min_lr = meta_num(ts, "min_lr");
    p.weight_decay = meta_num(ts, "weight_decay");
    p.adamw = 1;
    p.beta1 = meta_num(ts, "beta1");
    p.beta2 = meta_num(ts, "beta2");
    p.adam_eps = meta_num(ts, "eps");
    p.bn_momentum = meta_num(ts, "momentum");
    p.batch = need(ts, "overlap_a")->shape[0];
    p.epochs = (int64_t)meta_num(ts, "steps"); /* batch == rows: one step per epoch */
    (void)layers;
    return p;
}

/* Model with the reference's initial weights, under the official key names. */
static cmcr_model *initial_model(const cmcr_tensors *ts, const char *prefix)
{
    cmcr_tensors *sub = cmcr_tensors_new();
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        if (strncmp(t->name, prefix, plen) == 0)
            assert_int_equal(cmcr_tensors_add(sub, t->name + plen, t->dtype, t->ndim, t->shape, t->data), CMCR_OK);
    }
    cmcr_model *m;
    if (cmcr_model_from_tensors(sub, prefix, &m) != CMCR_OK) fail_msg("%s", cmcr_last_error());
    cmcr_tensors_free(sub);
    return m;
}

static void compare_models(const char *what, const cmcr_model *mine, const cmcr_model *ref, double tol)
{
    char name[96];
    snprintf(name, sizeof name, "%s: parameters", what);
    compare(name, mine->params, ref->params, mine->nparams, tol, 0);
    snprintf(name, sizeof name, "%s: BatchNorm running statistics", what);
    compare(name, mine->buffers, ref->buffers, mine->nbuffers, tol, 0);
    for (int s = 0; s < 2; s++) {
        assert_int_equal(mine->heads[s].nbt1, ref->heads[s].nbt1);
        assert_int_equal(mine->heads[s].nbt2, ref->heads[s].nbt2);
    }
}

static void run_parity(const char *file, int layers)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/%s", getenv("CMCR_SOURCE_DIR"), file);
    cmcr_tensors *ts;
    if (cmcr_tensors_load(path, CMCR_FORMAT_AUTO, &ts) != CMCR_OK) fail_msg("%s", cmcr_last_error());
    printf("%s (%d-layer heads):\n", file, layers);
    failures = 0;
    cmcr_model *init = initial_model(ts, "init."), *final = initial_model(ts, "final.");
    cmcr_train_params p = params_from_state(ts, layers);
    p.shape_a = init->heads[0].shape;
    p.shape_b = init->heads[1].shape;
    const cmcr_tensor *oa = need(ts, "overlap_a"), *ob = need(ts, "overlap_b"), *ma = need(ts, "memory_a"),
                      *mb = need(ts, "memory_b");
    cmcr_train_data d = {.overlap_a = oa->data, .overlap_b = ob->data, .n_overlap = oa->shape[0],
                         .dim_a = oa->shape[1], .dim_b = ob->shape[1], .memory_a = ma->data,
                         .n_memory_a = ma->shape[0], .memory_b = mb->data, .n_memory_b = mb->shape[0]};
    cmcr_trainer *t;
    if (cmcr_trainer_new(&p, &d, &t) != CMCR_OK) fail_msg("%s", cmcr_last_error());
    assert_int_equal(t->total_steps, p.epochs);
    int64_t B = t->batch, n_pseudo = B * oa->shape[1];
    compare("pseudo embeddings x_A (memory aggregation)", t->data[IN_XA], need(ts, "pseudo_a")->data, (size_t)n_pseudo,
            1e-6, 0);
    compare("pseudo embeddings y_B (memory aggregation)", t->data[IN_YB], need(ts, "pseudo_b")->data,
            (size_t)(B * ob->shape[1]), 1e-6, 0);
    memcpy(t->model->params, init->params, init->nparams * sizeof(float));
    memcpy(t->model->buffers, init->buffers, init->nbuffers * sizeof(float));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)B);
    for (int64_t i = 0; i < B; i++) idx[i] = i;
    const float *ref_losses = need(ts, "losses")->data;
    float losses[64];
    for (int64_t step = 0; step < t->total_steps; step++) {
        float *noise[4];
        for (int k = 0; k < 4; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "noise.%lld.%d", (long long)step, k);
            noise[k] = need(ts, nm)->data;
        }
        train_make_batch(t, idx, noise);
        train_loss L = train_forward_backward(t);
        losses[step] = (float)L.total;
        if (step == 0) {
            float mine[4] = {(float)L.total, (float)L.native, (float)L.pseudo, (float)L.intra};
            compare("step 1 loss terms (total, native, pseudo, intra)", mine, need(ts, "loss1")->data, 4, 0, 1e-5);
            /* The reference gradients under the state_dict keys, completed with the initial
             * buffers, map onto the parameter layout through the same code as a model. */
            cmcr_tensors *grads = cmcr_tensors_new();
            for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
                const cmcr_tensor *x = cmcr_tensors_at(ts, i);
                if (strncmp(x->name, "grad.", 5) == 0)
                    assert_int_equal(cmcr_tensors_add(grads, x->name + 5, x->dtype, x->ndim, x->shape, x->data),
                                     CMCR_OK);
            }
            for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
                const cmcr_tensor *x = cmcr_tensors_at(ts, i);
                if (strncmp(x->name, "init.", 5) == 0 && !cmcr_tensors_find(grads, x->name + 5))
                    assert_int_equal(cmcr_tensors_add(grads, x->name + 5, x->dtype, x->ndim, x->shape, x->data),
                                     CMCR_OK);
            }
            cmcr_model *gm;
            if (cmcr_model_from_tensors(grads, "reference gradients", &gm) != CMCR_OK)
                fail_msg("%s", cmcr_last_error());
            size_t off = 0;
            for (int s = 0; s < 2; s++) {
                size_t n = head_param_count(&gm->heads[s].shape);
                char nm[64];
                snprintf(nm, sizeof nm, "step 1 gradients of head %c (all tensors)", s ? 'B' : 'A');
                compare(nm, t->grad + off, gm->params + off, n, 0, 1e-4);
                off += n;
            }
            cmcr_model_free(gm);
            cmcr_tensors_free(grads);
        }
        train_adam(t, step + 1, train_lr(&t->p, step + 1, t->total_steps));
    }
    compare("losses of 10 AdamW steps", losses, ref_losses, (size_t)t->total_steps, 0, 1e-4);
    compare_models("after 10 steps", t->model, final, 1e-4);
    free(idx);
    cmcr_trainer_free(t);
    cmcr_model_free(init);
    cmcr_model_free(final);
    cmcr_tensors_free(ts);
    if (failures) fail_msg("%d comparison(s) with the PyTorch reference failed (see above)", failures);
}

static void test_two_layer_heads(void **s) { (void)s; run_parity("train_parity_2layer.safetensors", 2); }
static void test_one_layer_heads(void **s) { (void)s; run_parity("train_parity_1layer.safetensors", 1); }

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_layer_heads), cmocka_unit_test(test_one_layer_heads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
