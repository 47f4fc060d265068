/* settings.c - the training settings' table (mcr/train_settings.h) as the descriptors of the
 * public API, and the defaults and range checks generated from it. */
#include "mcr/train_settings.h"
#include "runtime/core.h"

#include <math.h>
#include <stddef.h>

#define NO_WORDS {NULL, NULL}
#define WORDS(w0, w1) {w0, w1}
#define DESCRIBE(n, type, def, lo, hi, flag, words, stored, help) \
    {#n, CMCR_SETTING_##type, offsetof(cmcr_train_params, n), def, lo, hi, flag, words, stored, help},

static const cmcr_setting settings[] = {TRAIN_SETTINGS(DESCRIBE)};
enum { NSETTINGS = sizeof settings / sizeof *settings };

/* A line whose type is not its field's C type does not compile. */
#define C_TYPE(n) _Generic(((cmcr_train_params *)0)->n, int64_t: CMCR_SETTING_I64, int: CMCR_SETTING_INT, \
                           double: CMCR_SETTING_DOUBLE, default: -1)
#define CHECK_TYPE(n, type, ...) \
    _Static_assert(C_TYPE(n) == (CMCR_SETTING_##type == CMCR_SETTING_BOOL ? CMCR_SETTING_INT : CMCR_SETTING_##type), \
                   #n ": the table's type is not the field's C type");
TRAIN_SETTINGS(CHECK_TYPE)

const cmcr_setting *cmcr_train_settings(size_t *count)
{
    *count = NSETTINGS;
    return settings;
}

void *train_setting_field(const cmcr_setting *s, cmcr_train_params *p) { return (char *)p + s->offset; }

double train_setting_value(const cmcr_setting *s, const cmcr_train_params *p)
{
    const char *f = (const char *)p + s->offset;
    if (s->type == CMCR_SETTING_I64) return (double)*(const int64_t *)f;
    if (s->type == CMCR_SETTING_DOUBLE) return *(const double *)f;
    return *(const int *)f;
}

static void set_value(const cmcr_setting *s, cmcr_train_params *p, double v)
{
    void *f = train_setting_field(s, p);
    if (s->type == CMCR_SETTING_I64) *(int64_t *)f = (int64_t)v;
    else if (s->type == CMCR_SETTING_DOUBLE) *(double *)f = v;
    else *(int *)f = (int)v;
}

cmcr_train_params cmcr_train_default_params(void)
{
    cmcr_train_params p;
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < NSETTINGS; i++) set_value(&settings[i], &p, settings[i].def);
    cmcr_preset_shape("clap-clip", &p.shape_a);
    p.shape_b = p.shape_a;
    p.seed = 1;
    return p;
}

static cmcr_status out_of_range(const cmcr_setting *s, const cmcr_train_params *p)
{
    const char *f = (const char *)p + s->offset;
    if (s->type == CMCR_SETTING_DOUBLE)
        return core_fail(CMCR_EINVAL, "%s must be between %g and %g, not %g", s->name, s->lo, s->hi, *(const double *)f);
    long long v = s->type == CMCR_SETTING_I64 ? *(const int64_t *)f : *(const int *)f;
    if (isinf(s->hi)) return core_fail(CMCR_EINVAL, "%s must be at least %.0f, not %lld", s->name, s->lo, v);
    return core_fail(CMCR_EINVAL, "%s must be between %.0f and %.0f, not %lld", s->name, s->lo, s->hi, v);
}

cmcr_status train_check_settings(const cmcr_train_params *p)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        double v = train_setting_value(&settings[i], p);
        if (!(v >= settings[i].lo && v <= settings[i].hi)) return out_of_range(&settings[i], p);
    }
    return CMCR_OK;
}
