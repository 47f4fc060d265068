/* test_model.c - projector model: state_dict mapping, save/load round trips, inference
 * against a hand computation, (the released checkpoint is in test_parity.c). */
#include "testutil.h"
#include "mcr/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cmcr_model *tiny_model(int layers)
{
    cmcr_head_shape a = {layers, 6, layers == 2 ? 8 : 0, 4}, b = {layers, 5, layers == 2 ? 7 : 0, 4};
    cmcr_model *m;
    assert_int_equal(cmcr_model_new(&a, &b, 42, &m), CMCR_OK);
    /* Make the BatchNorm statistics non-trivial so they are exercised. */
    for (size_t i = 0; i < m->nbuffers; i++) m->buffers[i] = 0.1f + 0.01f * (float)(i % 7);
    for (int s = 0; s < 2; s++) {
        m->heads[s].nbt1 = 17;
        m->heads[s].nbt2 = layers == 2 ? 19 : 0;
    }
    return m;
}

/* Direct double-precision evaluation of one head, written independently of model.c. */
static void reference_head(const model_head *h, const float *x_in, double *out)
{
    const cmcr_head_shape *s = &h->shape;
    double x[64], y[64], n = 0;
    for (int64_t k = 0; k < s->in_dim; k++) n += (double)x_in[k] * x_in[k];
    for (int64_t k = 0; k < s->in_dim; k++) x[k] = x_in[k] / sqrt(n);
    for (int64_t j = 0; j < h->hid; j++) {
        double v = h->b1[j];
        for (int64_t k = 0; k < s->in_dim; k++) v += h->w1[j * s->in_dim + k] * x[k];
        v = (v - h->rm1[j]) / sqrt(h->rv1[j] + 1e-5) * h->g1[j] + h->be1[j];
        y[j] = v > 0 ? v : 0;
    }
    int64_t width = h->hid;
    if (s->layers == 2) {
        for (int64_t j = 0; j < s->out_dim; j++) {
            double v = h->b2[j];
            for (int64_t k = 0; k < h->hid; k++) v += h->w2[j * h->hid + k] * y[k];
            x[j] = (v - h->rm2[j]) / sqrt(h->rv2[j] + 1e-5) * h->g2[j] + h->be2[j];
        }
        memcpy(y, x, sizeof(double) * (size_t)s->out_dim);
        width = s->out_dim;
    }
    n = 0;
    for (int64_t j = 0; j < width; j++) n += y[j] * y[j];
    for (int64_t j = 0; j < width; j++) out[j] = y[j] / fmax(sqrt(n), 1e-12);
}

static void check_projection(cmcr_model *m)
{
    for (int side = 0; side < 2; side++) {
        model_head *h = &m->heads[side];
        int64_t rows = 5, in = h->shape.in_dim, out = h->shape.out_dim;
        float x[5 * 64], y[5 * 64];
        for (int64_t i = 0; i < rows * in; i++) x[i] = (float)sin(0.7 * (double)i + side);
        assert_int_equal(cmcr_model_project(m, (cmcr_side)side, x, rows, y), CMCR_OK);
        for (int64_t r = 0; r < rows; r++) {
            double ref[64];
            reference_head(h, x + r * in, ref);
            for (int64_t j = 0; j < out; j++) assert_true(fabs(ref[j] - y[r * out + j]) < 1e-5);
        }
    }
}

static void test_projection_matches_hand_computation(void **state)
{
    (void)state;
    for (int layers = 1; layers <= 2; layers++) {
        cmcr_model *m = tiny_model(layers);
        check_projection(m);
        cmcr_model_free(m);
    }
}

static void assert_same_model(const cmcr_model *x, const cmcr_model *y)
{
    assert_int_equal(x->nparams, y->nparams);
    assert_int_equal(x->nbuffers, y->nbuffers);
    assert_memory_equal(x->params, y->params, x->nparams * sizeof(float));
    assert_memory_equal(x->buffers, y->buffers, x->nbuffers * sizeof(float));
    for (int s = 0; s < 2; s++) {
        assert_int_equal(x->heads[s].nbt1, y->heads[s].nbt1);
        assert_int_equal(x->heads[s].nbt2, y->heads[s].nbt2);
        assert_int_equal(x->heads[s].shape.layers, y->heads[s].shape.layers);
    }
}

static void test_save_load_round_trip(void **state)
{
    (void)state;
    const char *names[] = {"m.safetensors", "m.pt"};
    for (int layers = 1; layers <= 2; layers++) {
        cmcr_model *m = tiny_model(layers);
        assert_int_equal(cmcr_model_set_meta(m, "note", "hello"), CMCR_OK);
        for (int f = 0; f < 2; f++) {
            char *p = tu_path(names[f]);
            assert_int_equal(cmcr_model_save(m, p, CMCR_FORMAT_AUTO), CMCR_OK);
            cmcr_model *back;
            if (cmcr_model_load(p, &back) != CMCR_OK) fail_msg("%s", cmcr_last_error());
            assert_same_model(m, back);
            if (f == 0) assert_string_equal(cmcr_model_get_meta(back, "note"), "hello");
            cmcr_model_free(back);
            free(p);
        }
        cmcr_model_free(m);
    }
}

static void test_presets(void **state)
{
    (void)state;
    cmcr_head_shape s;
    assert_int_equal(cmcr_preset_shape("clap-clip", &s), CMCR_OK);
    assert_int_equal(s.layers, 2);
    assert_int_equal(s.hidden, 1024);
    cmcr_model *m;
    assert_int_equal(cmcr_model_new(&s, &s, 1, &m), CMCR_OK);
    assert_string_equal(cmcr_model_preset(m), "clap-clip");
    cmcr_model_free(m);
    assert_int_equal(cmcr_preset_shape("ulip-clip", &s), CMCR_OK);
    assert_int_equal(cmcr_model_new(&s, &s, 1, &m), CMCR_OK);
    assert_string_equal(cmcr_model_preset(m), "ulip-clip");
    cmcr_model_free(m);
    assert_int_equal(cmcr_preset_shape("nope", &s), CMCR_EINVAL);
    assert_non_null(strstr(cmcr_last_error(), "nope"));
}

/* Malformed state_dicts name the file and the tensor. */
static void test_bad_state_dicts(void **state)
{
    (void)state;
    cmcr_model *m = tiny_model(1), *out;
    cmcr_tensors *ts;
    assert_int_equal(cmcr_model_to_tensors(m, &ts), CMCR_OK);

    /* missing tensor */
    cmcr_tensors *partial = cmcr_tensors_new();
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        if (strcmp(t->name, "Head_B.net.1.running_var") == 0) continue;
        assert_int_equal(cmcr_tensors_add(partial, t->name, t->dtype, t->ndim, t->shape, t->data), CMCR_OK);
    }
    assert_int_equal(cmcr_model_from_tensors(partial, "x.pt", &out), CMCR_EFORMAT);
    assert_non_null(strstr(cmcr_last_error(), "x.pt: missing tensor Head_B.net.1.running_var"));

    /* wrong shape */
    int64_t shp[1] = {3};
    float three[3] = {1, 2, 3};
    cmcr_tensors *bad = cmcr_tensors_new();
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        if (strcmp(t->name, "Head_A.net.0.bias") == 0)
            assert_int_equal(cmcr_tensors_add(bad, t->name, CMCR_F32, 1, shp, three), CMCR_OK);
        else
            assert_int_equal(cmcr_tensors_add(bad, t->name, t->dtype, t->ndim, t->shape, t->data), CMCR_OK);
    }
    assert_int_equal(cmcr_model_from_tensors(bad, "y.pt", &out), CMCR_ESHAPE);
    assert_non_null(strstr(cmcr_last_error(), "y.pt: tensor Head_A.net.0.bias has shape [3], expected [4]"));

    /* extra tensor */
    assert_int_equal(cmcr_tensors_add(ts, "extra", CMCR_F32, 1, shp, three), CMCR_OK);
    assert_int_equal(cmcr_model_from_tensors(ts, "z.pt", &out), CMCR_EFORMAT);
    assert_non_null(strstr(cmcr_last_error(), "unexpected tensor 'extra'"));

    /* not a model at all */
    cmcr_tensors *empty = cmcr_tensors_new();
    assert_int_equal(cmcr_model_from_tensors(empty, "e.pt", &out), CMCR_EFORMAT);
    assert_non_null(strstr(cmcr_last_error(), "e.pt: not a C-MCR model"));

    cmcr_tensors_free(empty);
    cmcr_tensors_free(bad);
    cmcr_tensors_free(partial);
    cmcr_tensors_free(ts);
    cmcr_model_free(m);
}

static void test_nan_input_refused(void **state)
{
    (void)state;
    cmcr_model *m = tiny_model(2);
    float x[12] = {0}, y[8];
    x[8] = NAN;
    assert_int_equal(cmcr_model_project(m, CMCR_SIDE_A, x, 2, y), CMCR_EVALUE);
    assert_non_null(strstr(cmcr_last_error(), "row 1"));
    cmcr_model_free(m);
}

/* Load m's state_dict back as "bad.safetensors": it must fail with the exact message. */
static void expect_refused(cmcr_model *m, const char *message)
{
    cmcr_tensors *ts;
    cmcr_model *out = (cmcr_model *)1;
    assert_int_equal(cmcr_model_to_tensors(m, &ts), CMCR_OK);
    assert_int_equal(cmcr_model_from_tensors(ts, "bad.safetensors", &out), CMCR_EVALUE);
    assert_null(out);
    assert_string_equal(cmcr_last_error(), message);
    cmcr_tensors_free(ts);
}

/* What the forward pass relies on is checked at load: finite values, running_var >= 0. */
static void test_model_invariants_at_load(void **state)
{
    (void)state;
    cmcr_model *m = tiny_model(2);
    m->heads[0].rv2[3] = -0.5f;
    expect_refused(m, "bad.safetensors: Head_A.net2.1.running_var[3] is -0.5, but a variance cannot be negative");
    m->heads[0].rv2[3] = 0.0f; /* zero is a valid variance: eps keeps the division finite */
    m->heads[1].w2[1 * 7 + 2] = NAN;
    expect_refused(m, "bad.safetensors: Head_B.net2.0.weight[1, 2] is NaN");
    m->heads[1].w2[1 * 7 + 2] = 0.0f;
    m->heads[0].be1[5] = -INFINITY;
    expect_refused(m, "bad.safetensors: Head_A.net1.1.bias[5] is -Inf");
    m->heads[0].be1[5] = 0.0f;
    m->heads[1].rm1[0] = INFINITY;
    expect_refused(m, "bad.safetensors: Head_B.net1.1.running_mean[0] is Inf");
    m->heads[1].rm1[0] = 0.0f;
    cmcr_tensors *ts;
    cmcr_model *back;
    assert_int_equal(cmcr_model_to_tensors(m, &ts), CMCR_OK);
    assert_int_equal(cmcr_model_from_tensors(ts, "good.safetensors", &back), CMCR_OK);
    cmcr_tensors_free(ts);
    cmcr_model_free(back);
    cmcr_model_free(m);
}

/* A model that does not hold finite values is never written. */
static void test_nonfinite_model_not_saved(void **state)
{
    (void)state;
    cmcr_model *m = tiny_model(1);
    char *path = tu_path("nan.safetensors"), want[1024];
    m->heads[1].w1[5] = INFINITY;
    assert_int_equal(cmcr_model_save(m, path, CMCR_FORMAT_AUTO), CMCR_EVALUE);
    snprintf(want, sizeof want, "%s: not written: Head_B.net.0.weight[1, 0] is Inf", path);
    assert_string_equal(cmcr_last_error(), want);
    FILE *f = fopen(path, "rb");
    assert_null(f);
    free(path);
    cmcr_model_free(m);
}

/* Finite weights whose forward pass overflows float32: an error naming the model and the
 * first bad row, never NaN rows. */
static void test_overflow_in_forward(void **state)
{
    (void)state;
    cmcr_model *m = tiny_model(2), *big;
    model_head *h = &m->heads[0];
    for (int64_t i = 0; i < h->hid * h->shape.in_dim; i++) h->w1[i] = 1e30f;
    for (int64_t i = 0; i < h->shape.out_dim * h->hid; i++) h->w2[i] = 1e30f;
    cmcr_tensors *ts;
    assert_int_equal(cmcr_model_to_tensors(m, &ts), CMCR_OK);
    assert_int_equal(cmcr_model_from_tensors(ts, "big.pt", &big), CMCR_OK); /* finite: loads */
    float x[3 * 6] = {0}, y[3 * 4];
    for (int i = 6; i < 18; i++) x[i] = 1.0f; /* row 0 is zero and stays finite; rows 1, 2 overflow */
    assert_int_equal(cmcr_model_project(big, CMCR_SIDE_A, x, 3, y), CMCR_EVALUE);
    assert_string_equal(cmcr_last_error(), "big.pt: side a overflows float32: row 1 contains NaN (column 0)");
    assert_int_equal(cmcr_model_project(big, CMCR_SIDE_B, x, 3, y), CMCR_OK); /* side B is sane */
    cmcr_tensors_free(ts);
    cmcr_model_free(big);
    cmcr_model_free(m);
}

/* head_tensors lays out a head as model.h documents it, decays only the Linear weights, and
 * names the state_dict's keys as PyTorch does. */
static void test_head_layout_table(void **state)
{
    (void)state;
    const cmcr_head_shape shapes[2] = {{1, 6, 0, 4}, {2, 6, 8, 4}};
    for (int i = 0; i < 2; i++) {
        const cmcr_head_shape *s = &shapes[i];
        int64_t hid = s->layers == 2 ? s->hidden : s->out_dim, in = s->in_dim, out = s->out_dim;
        size_t np = head_param_count(s), nb = head_buffer_count(s);
        float *p = calloc(np, sizeof(float)), *b = calloc(nb, sizeof(float));
        model_head h;
        memset(&h, 0, sizeof h);
        head_bind(&h, s, p, b);
        assert_ptr_equal(h.w1, p);
        assert_ptr_equal(h.b1, p + hid * in);
        assert_ptr_equal(h.g1, h.b1 + hid);
        assert_ptr_equal(h.be1, h.g1 + hid);
        assert_ptr_equal(h.rm1, b);
        assert_ptr_equal(h.rv1, b + hid);
        if (s->layers == 1) {
            assert_int_equal(np, (size_t)(hid * in + 3 * hid));
            assert_int_equal(nb, (size_t)(2 * hid));
            assert_true(!h.w2 && !h.b2 && !h.g2 && !h.be2 && !h.rm2 && !h.rv2);
        } else {
            assert_ptr_equal(h.w2, h.be1 + hid);
            assert_ptr_equal(h.b2, h.w2 + out * hid);
            assert_ptr_equal(h.g2, h.b2 + out);
            assert_ptr_equal(h.be2, h.g2 + out);
            assert_int_equal(np, (size_t)(h.be2 + out - p));
            assert_ptr_equal(h.rm2, h.rv1 + hid);
            assert_ptr_equal(h.rv2, h.rm2 + out);
            assert_int_equal(nb, (size_t)(h.rv2 + out - b));
        }
        free(p);
        free(b);
    }
    for (int k = 0; k < HEAD_TENSORS; k++)
        assert_int_equal(head_tensors[k].decay, strcmp(head_tensors[k].key, "0.weight") == 0);
    cmcr_model *m;
    cmcr_tensors *ts;
    assert_int_equal(cmcr_model_new(&shapes[1], &shapes[0], 3, &m), CMCR_OK);
    assert_int_equal(cmcr_model_to_tensors(m, &ts), CMCR_OK);
    assert_int_equal(cmcr_tensors_count(ts), 3 * HEAD_TENSORS);
    const char *keys[] = {"Head_A.net1.0.weight", "Head_A.net2.1.running_var", "Head_A.net2.1.num_batches_tracked",
                          "Head_B.net.0.bias", "Head_B.net.1.num_batches_tracked"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) assert_non_null(cmcr_tensors_find(ts, keys[k]));
    assert_int_equal(cmcr_tensors_find(ts, "Head_A.net1.0.weight")->shape[1], 6);
    cmcr_tensors_free(ts);
    cmcr_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_projection_matches_hand_computation),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_bad_state_dicts),
        cmocka_unit_test(test_nan_input_refused),
        cmocka_unit_test(test_model_invariants_at_load),
        cmocka_unit_test(test_nonfinite_model_not_saved),
        cmocka_unit_test(test_overflow_in_forward),
        cmocka_unit_test(test_head_layout_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
