/* test_memory.c - the loaders from a memory buffer (cmcr_tensors_load_memory,
 * cmcr_model_load_memory) give what the loaders from a path give, for every format, and
 * refuse a damaged buffer in one line that names it. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_same(const cmcr_tensors *a, const cmcr_tensors *b)
{
    assert_int_equal(cmcr_tensors_count(a), cmcr_tensors_count(b));
    for (size_t i = 0; i < cmcr_tensors_count(a); i++) {
        const cmcr_tensor *x = cmcr_tensors_at(a, i), *y = cmcr_tensors_find(b, x->name);
        assert_non_null(y);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->nbytes, y->nbytes);
        assert_memory_equal(x->data, y->data, x->nbytes);
    }
}

/* A model written in each format, then loaded from the file and from its bytes. */
static void test_every_format(void **state)
{
    (void)state;
    cmcr_head_shape s = {1, 8, 0, 4};
    cmcr_model *m = NULL;
    assert_int_equal(cmcr_model_new(&s, &s, 7, &m), CMCR_OK);
    cmcr_tensors *ts = NULL;
    assert_int_equal(cmcr_model_to_tensors(m, &ts), CMCR_OK);
    const char *names[] = {"m.safetensors", "m.pt"};
    for (int k = 0; k < 2; k++) {
        char *path = tu_path(names[k]);
        assert_int_equal(cmcr_tensors_save(ts, path, CMCR_FORMAT_AUTO), CMCR_OK);
        size_t n;
        unsigned char *bytes = tu_read_file(path, &n);
        cmcr_tensors *from_file = NULL, *from_mem = NULL;
        assert_int_equal(cmcr_tensors_load(path, CMCR_FORMAT_AUTO, &from_file), CMCR_OK);
        assert_int_equal(cmcr_tensors_load_memory(bytes, n, CMCR_FORMAT_AUTO, names[k], &from_mem), CMCR_OK);
        assert_same(from_file, from_mem);
        cmcr_tensors_free(from_mem);
        cmcr_model *mm = NULL;
        assert_int_equal(cmcr_model_load_memory(bytes, n, names[k], &mm), CMCR_OK);
        float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, ya[4], yb[4];
        assert_int_equal(cmcr_model_project(m, CMCR_SIDE_A, x, 1, ya), CMCR_OK);
        assert_int_equal(cmcr_model_project(mm, CMCR_SIDE_A, x, 1, yb), CMCR_OK);
        assert_memory_equal(ya, yb, sizeof ya);
        /* damaged: cut in half, one line naming the buffer */
        assert_int_not_equal(cmcr_tensors_load_memory(bytes, n / 2, CMCR_FORMAT_AUTO, names[k], &from_mem), CMCR_OK);
        assert_null(from_mem);
        assert_non_null(strstr(cmcr_last_error(), names[k]));
        assert_null(strchr(cmcr_last_error(), '\n'));
        cmcr_model_free(mm);
        cmcr_tensors_free(from_file);
        free(bytes);
        free(path);
    }
    cmcr_tensors_free(ts);
    cmcr_model_free(m);

    float rows[6] = {1, 2, 3, 4, 5, 6};
    char *npy = tu_path("r.npy");
    assert_int_equal(cmcr_matrix_save_npy(npy, rows, 2, 3), CMCR_OK);
    size_t n;
    unsigned char *bytes = tu_read_file(npy, &n);
    cmcr_tensors *t = NULL;
    assert_int_equal(cmcr_tensors_load_memory(bytes, n, CMCR_FORMAT_AUTO, NULL, &t), CMCR_OK);
    assert_memory_equal(cmcr_tensors_at(t, 0)->data, rows, sizeof rows);
    cmcr_tensors_free(t);
    assert_int_equal(cmcr_tensors_load_memory(bytes, 0, CMCR_FORMAT_AUTO, NULL, &t), CMCR_EFORMAT);
    assert_string_equal(cmcr_last_error(), "(memory): file is empty");
    free(bytes);
    free(npy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_format)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
