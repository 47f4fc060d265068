/* test_settings.c - the training settings' table (cmcr_train_settings) is consistent: a
 * setting added wrongly (a duplicate name or flag, a default outside its range, a type that
 * the JSON or the command line does not carry, a range the library does not enforce) fails
 * here. Public API only, as the CLI and bindings see it. */
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cmcr_setting *settings(size_t *n)
{
    const cmcr_setting *s = cmcr_train_settings(n);
    assert_non_null(s);
    assert_true(*n > 0);
    return s;
}

static size_t size_of(const cmcr_setting *s)
{
    return s->type == CMCR_SETTING_I64 ? sizeof(int64_t) : s->type == CMCR_SETTING_DOUBLE ? sizeof(double) : sizeof(int);
}

static double get(const cmcr_setting *s, const cmcr_train_params *p)
{
    const char *f = (const char *)p + s->offset;
    if (s->type == CMCR_SETTING_I64) return (double)*(const int64_t *)f;
    if (s->type == CMCR_SETTING_DOUBLE) return *(const double *)f;
    return *(const int *)f;
}

static void set(const cmcr_setting *s, cmcr_train_params *p, double v)
{
    char *f = (char *)p + s->offset;
    if (s->type == CMCR_SETTING_I64) *(int64_t *)f = (int64_t)v;
    else if (s->type == CMCR_SETTING_DOUBLE) *(double *)f = v;
    else *(int *)f = (int)v;
}

/* A valid value other than the default. */
static double other_value(const cmcr_setting *s)
{
    if (s->type == CMCR_SETTING_BOOL) return s->def == 0;
    if (s->type == CMCR_SETTING_DOUBLE) return isinf(s->hi) ? s->def + 1 : (s->def + s->hi) / 2;
    return s->def + 1 <= s->hi ? s->def + 1 : s->def - 1;
}

static int overlaps(size_t a, size_t na, size_t b, size_t nb) { return a < b + nb && b < a + na; }

/* The fields the table leaves out, which no setting may overlap. */
static void check_no_overlap_with_special(const cmcr_setting *s)
{
    const size_t special[][2] = {
        {offsetof(cmcr_train_params, shape_a), sizeof(cmcr_head_shape)},
        {offsetof(cmcr_train_params, shape_b), sizeof(cmcr_head_shape)},
        {offsetof(cmcr_train_params, seed), sizeof(uint64_t)},
        {offsetof(cmcr_train_params, checkpoint_path), sizeof(char *)},
        {offsetof(cmcr_train_params, cache_dir), sizeof(char *)},
        {offsetof(cmcr_train_params, mpi_comm), sizeof(void *)}};
    for (size_t k = 0; k < sizeof special / sizeof *special; k++)
        if (overlaps(s->offset, size_of(s), special[k][0], special[k][1]))
            fail_msg("%s overlaps a field outside the table", s->name);
}

static void check_one(const cmcr_setting *s)
{
    assert_true(s->name && s->name[0] && s->flag && s->flag[0] && s->help && s->help[0]);
    assert_true(s->offset + size_of(s) <= sizeof(cmcr_train_params));
    check_no_overlap_with_special(s);
    if (!(s->lo <= s->def && s->def <= s->hi)) fail_msg("%s: default %g outside [%g, %g]", s->name, s->def, s->lo, s->hi);
    assert_true(s->stored == 0 || s->stored == 1);
    if (s->type != CMCR_SETTING_DOUBLE && (s->def != floor(s->def) || s->lo != floor(s->lo)))
        fail_msg("%s: an integer setting with a fractional default or bound", s->name);
    if (s->type == CMCR_SETTING_INT && !(s->lo >= INT_MIN && s->hi <= INT_MAX))
        fail_msg("%s: an int setting needs a range an int holds (the CLI checks it)", s->name);
    if (s->type == CMCR_SETTING_BOOL) {
        assert_true(s->lo == 0 && s->hi == 1 && (s->def == 0 || s->def == 1));
        assert_true(!s->words[0] == !s->words[1]);
        if (s->words[0]) assert_string_not_equal(s->words[0], s->words[1]);
    } else if (s->words[0] || s->words[1]) {
        fail_msg("%s: only a bool setting takes words", s->name);
    }
}

static void test_table_is_well_formed(void **state)
{
    (void)state;
    size_t n;
    const cmcr_setting *s = settings(&n);
    for (size_t i = 0; i < n; i++) {
        check_one(&s[i]);
        if (i > 0 && s[i].stored > s[i - 1].stored) fail_msg("%s: stored settings come first", s[i].name);
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(s[i].name, s[j].name) || !strcmp(s[i].flag, s[j].flag))
                fail_msg("settings %s and %s share a name or a flag", s[j].name, s[i].name);
            if (overlaps(s[i].offset, size_of(&s[i]), s[j].offset, size_of(&s[j])))
                fail_msg("settings %s and %s overlap", s[j].name, s[i].name);
        }
    }
}

static void test_defaults_are_the_tables(void **state)
{
    (void)state;
    size_t n;
    const cmcr_setting *s = settings(&n);
    cmcr_train_params p = cmcr_train_default_params();
    for (size_t i = 0; i < n; i++)
        if (get(&s[i], &p) != s[i].def) fail_msg("%s: default %g, the table says %g", s[i].name, get(&s[i], &p), s[i].def);
}

/* Every stored setting survives the JSON with a value other than its default (and the
 * others keep theirs); an unstored one is not in it and comes back as its default. */
static void test_json_round_trip(void **state)
{
    (void)state;
    size_t n;
    const cmcr_setting *s = settings(&n);
    for (size_t i = 0; i < n; i++) {
        cmcr_train_params p = cmcr_train_default_params(), q;
        double v = other_value(&s[i]);
        assert_true(v != s[i].def && v >= s[i].lo && v <= s[i].hi);
        set(&s[i], &p, v);
        char *json = cmcr_train_params_to_json(&p), key[128];
        assert_non_null(json);
        snprintf(key, sizeof key, "\"%s\":", s[i].name);
        if (!strstr(json, key) != !s[i].stored) fail_msg("%s: stored is %d but the JSON is %s", s[i].name, s[i].stored, json);
        assert_int_equal(cmcr_train_params_from_json(json, &q), CMCR_OK);
        free(json);
        for (size_t j = 0; j < n; j++) {
            double want = j == i && s[i].stored ? v : s[j].def;
            if (get(&s[j], &q) != want)
                fail_msg("%s set to %g: %s came back as %g, not %g", s[i].name, v, s[j].name, get(&s[j], &q), want);
        }
    }
}

/* cmcr_trainer_new refuses a value just outside either bound, naming the setting (the
 * parameters are checked before the data, which is left empty here). */
static void expect_refused(const cmcr_setting *s, double v)
{
    cmcr_train_params p = cmcr_train_default_params();
    cmcr_train_data d;
    memset(&d, 0, sizeof d);
    cmcr_trainer *t = NULL;
    set(s, &p, v);
    assert_int_equal(cmcr_trainer_new(&p, &d, &t), CMCR_EINVAL);
    assert_null(t);
    if (strncmp(cmcr_last_error(), s->name, strlen(s->name)) != 0)
        fail_msg("%s = %g: the message does not name it: %s", s->name, v, cmcr_last_error());
    printf("MSG %s\n", cmcr_last_error());
}

static void test_ranges_are_enforced(void **state)
{
    (void)state;
    size_t n;
    const cmcr_setting *s = settings(&n);
    for (size_t i = 0; i < n; i++) {
        expect_refused(&s[i], s[i].lo - 1);
        if (!isinf(s[i].hi)) expect_refused(&s[i], s[i].hi + 1);
    }
    cmcr_train_params p = cmcr_train_default_params(); /* the defaults pass: the data is what is refused */
    cmcr_train_data d;
    memset(&d, 0, sizeof d);
    cmcr_trainer *t = NULL;
    assert_int_equal(cmcr_trainer_new(&p, &d, &t), CMCR_EINVAL);
    assert_non_null(strstr(cmcr_last_error(), "overlap set"));
}

/* `cmcr train --help` has each setting's flag once, with the library's default. */
static void test_cli_help_shows_the_table(void **state)
{
    (void)state;
    char *out = tu_path("help.txt"), line[1024];
    assert_int_equal(tu_system("'%s' train --help >'%s'", tu_bin(), out), 0);
    size_t n;
    const cmcr_setting *s = settings(&n);
    for (size_t i = 0; i < n; i++) {
        char start[128], def[128];
        snprintf(start, sizeof start, "  --%s ", s[i].flag);
        if (s[i].words[0]) snprintf(def, sizeof def, "(default: %s)", s[i].words[s[i].def != 0]);
        else if (s[i].type == CMCR_SETTING_DOUBLE) snprintf(def, sizeof def, "(default: %g)", s[i].def);
        else if (s[i].type != CMCR_SETTING_BOOL) snprintf(def, sizeof def, "(default: %.0f)", s[i].def);
        else def[0] = '\0'; /* a switch shows no default */
        FILE *f = fopen(out, "r");
        assert_non_null(f);
        int found = 0;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, start, strlen(start))) {
                found++;
                if (!strstr(line, s[i].help) || !strstr(line, def)) fail_msg("--%s: %s", s[i].flag, line);
            }
        fclose(f);
        if (found != 1) fail_msg("--%s appears %d times in cmcr train --help", s[i].flag, found);
    }
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_well_formed),
        cmocka_unit_test(test_defaults_are_the_tables),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_ranges_are_enforced),
        cmocka_unit_test(test_cli_help_shows_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
