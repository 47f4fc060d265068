/* test_checkpoint.c - training checkpoints never hold, nor bring back, a model the forward
 * pass cannot use (NaN or Inf values, a negative running variance). */
#include "testutil.h"
#include "mcr/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 16, DA = 6, DB = 5, HID = 8, OUT = 4 };

typedef struct fixture {
    float *oa, *ob;
    cmcr_trainer *t;
} fixture;

static fixture make_trainer(void)
{
    rng_state r;
    rng_seed(&r, 11);
    fixture f = {tu_normal_matrix(&r, N, DA), tu_normal_matrix(&r, N, DB), NULL};
    cmcr_train_params p = cmcr_train_default_params();
    p.shape_a = (cmcr_head_shape){2, DA, HID, OUT};
    p.shape_b = (cmcr_head_shape){2, DB, HID, OUT};
    p.batch = 8;
    p.epochs = 1;
    p.consistency = 0;
    cmcr_train_data d = {.overlap_a = f.oa, .overlap_b = f.ob, .n_overlap = N, .dim_a = DA, .dim_b = DB};
    if (cmcr_trainer_new(&p, &d, &f.t) != CMCR_OK) fail_msg("%s", cmcr_last_error());
    return f;
}

static void free_fixture(fixture *f)
{
    cmcr_trainer_free(f->t);
    free(f->oa);
    free(f->ob);
}

static void test_nonfinite_checkpoint_not_written(void **state)
{
    (void)state;
    fixture f = make_trainer();
    char *path = tu_path("nan.ckpt"), want[1024];
    f.t->model->heads[0].w2[3] = NAN;
    assert_int_equal(cmcr_trainer_save_checkpoint(f.t, path), CMCR_EVALUE);
    snprintf(want, sizeof want, "%s: not written: Head_A.net2.0.weight[0, 3] is NaN", path);
    assert_string_equal(cmcr_last_error(), want);
    FILE *file = fopen(path, "rb");
    assert_null(file);
    free(path);
    free_fixture(&f);
}

/* A checkpoint whose stored state breaks the model's invariants (written by something else,
 * or damaged) is refused on resume, naming the file and the tensor. */
static void test_resume_refuses_negative_variance(void **state)
{
    (void)state;
    fixture f = make_trainer();
    char *path = tu_path("good.ckpt"), *bad = tu_path("bad.ckpt"), want[1024];
    assert_int_equal(cmcr_trainer_save_checkpoint(f.t, path), CMCR_OK);
    cmcr_tensors *ts;
    assert_int_equal(cmcr_tensors_load(path, CMCR_FORMAT_SAFETENSORS, &ts), CMCR_OK);
    float *buffers = cmcr_tensors_find(ts, "buffers")->data; /* rm1[HID] rv1[HID] ... of head A */
    buffers[HID + 2] = -3.0f;
    assert_int_equal(cmcr_tensors_save(ts, bad, CMCR_FORMAT_SAFETENSORS), CMCR_OK);
    cmcr_tensors_free(ts);
    assert_int_equal(cmcr_trainer_resume(f.t, path), CMCR_OK);
    assert_int_equal(cmcr_trainer_resume(f.t, bad), CMCR_EVALUE);
    snprintf(want, sizeof want, "%s: Head_A.net1.1.running_var[2] is -3, but a variance cannot be negative", bad);
    assert_string_equal(cmcr_last_error(), want);
    free(path);
    free(bad);
    free_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonfinite_checkpoint_not_written),
        cmocka_unit_test(test_resume_refuses_negative_variance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
