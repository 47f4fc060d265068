/* checkpoint.c - training parameters as JSON, and crash-safe training checkpoints.
 *
 * A checkpoint is a safetensors file (written atomically) holding the flat parameter,
 * BatchNorm-statistics and Adam arrays plus num_batches_tracked, and as metadata the
 * training parameters (JSON), the step, and a hash of the training data. The random state
 * of a run is a pure function of (seed, step): the batch order of epoch e is drawn from
 * seed_mix(seed, e) and the noise of step s from seed_mix(seed, s), so the step restores it
 * exactly and a resumed run equals the uninterrupted one. */
#include "mcr/train.h"
#include "mcr/train_settings.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ parameters <-> JSON */

static cJSON *shape_json(const cmcr_head_shape *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "layers", s->layers);
    cJSON_AddNumberToObject(o, "in", (double)s->in_dim);
    cJSON_AddNumberToObject(o, "hidden", (double)s->hidden);
    cJSON_AddNumberToObject(o, "out", (double)s->out_dim);
    return o;
}

char *cmcr_train_params_to_json(const cmcr_train_params *p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddItemToObject(o, "shape_a", shape_json(&p->shape_a));
    cJSON_AddItemToObject(o, "shape_b", shape_json(&p->shape_b));
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, p->seed); /* as a string: JSON numbers lose 64-bit precision */
    cJSON_AddStringToObject(o, "seed", seed);
    size_t n;
    const cmcr_setting *set = cmcr_train_settings(&n);
    for (size_t i = 0; i < n; i++) {
        if (!set[i].stored) continue; /* how this run works (threads...), not its mathematics */
        double v = train_setting_value(&set[i], p);
        if (set[i].type == CMCR_SETTING_BOOL) cJSON_AddBoolToObject(o, set[i].name, v != 0);
        else cJSON_AddNumberToObject(o, set[i].name, v);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* An integer stored as a JSON number: whole, and within [lo, hi] (both within 2^53, where
 * doubles are exact), so that the conversion neither rounds nor wraps. */
static cmcr_status json_int(const cJSON *v, int64_t lo, int64_t hi, const char *what, int64_t *out)
{
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return core_fail(CMCR_EFORMAT, "training parameters: %s must be a whole number between %lld and %lld",
                         what, (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return CMCR_OK;
}

#define JSON_INT_MAX ((int64_t)1 << 53)

static cmcr_status shape_from_json(const cJSON *o, cmcr_head_shape *s, const char *name)
{
    static const char *const keys[4] = {"layers", "in", "hidden", "out"};
    int64_t v[4];
    for (int i = 0; i < 4; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
        if (!x) return core_fail(CMCR_EFORMAT, "training parameters: %s needs numeric layers, in, hidden, out", name);
        char what[64];
        snprintf(what, sizeof what, "%s.%s", name, keys[i]);
        cmcr_status st = json_int(x, 0, i == 0 ? 2 : JSON_INT_MAX, what, &v[i]);
        if (st) return st;
    }
    *s = (cmcr_head_shape){(int)v[0], v[1], v[2], v[3]};
    return CMCR_OK;
}

static cmcr_status setting_from_json(const cJSON *o, const cmcr_setting *s, cmcr_train_params *p)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, s->name);
    if (!v) return CMCR_OK; /* absent (written before the setting existed): keep the default */
    void *field = train_setting_field(s, p);
    if (s->type == CMCR_SETTING_BOOL) {
        if (!cJSON_IsBool(v)) return core_fail(CMCR_EFORMAT, "training parameters: %s must be true or false", s->name);
        *(int *)field = cJSON_IsTrue(v);
        return CMCR_OK;
    }
    if (!cJSON_IsNumber(v)) return core_fail(CMCR_EFORMAT, "training parameters: %s must be a number", s->name);
    if (s->type == CMCR_SETTING_DOUBLE) {
        *(double *)field = v->valuedouble;
        return CMCR_OK;
    }
    if (s->type == CMCR_SETTING_I64) return json_int(v, -JSON_INT_MAX, JSON_INT_MAX, s->name, (int64_t *)field);
    int64_t i = 0;
    cmcr_status st = json_int(v, INT_MIN, INT_MAX, s->name, &i);
    if (!st) *(int *)field = (int)i;
    return st;
}

cmcr_status cmcr_train_params_from_json(const char *json, cmcr_train_params *p)
{
    *p = cmcr_train_default_params();
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return core_fail(CMCR_EFORMAT, "training parameters are not a JSON object");
    }
    cmcr_status st = shape_from_json(cJSON_GetObjectItemCaseSensitive(o, "shape_a"), &p->shape_a, "shape_a");
    if (!st) st = shape_from_json(cJSON_GetObjectItemCaseSensitive(o, "shape_b"), &p->shape_b, "shape_b");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
    if (!st && seed && (!cJSON_IsString(seed) || cmcr_parse_u64(seed->valuestring, &p->seed)))
        st = core_fail(CMCR_EFORMAT, "training parameters: seed must be a string of decimal digits");
    size_t n;
    const cmcr_setting *set = cmcr_train_settings(&n);
    for (size_t i = 0; !st && i < n; i++)
        if (set[i].stored) st = setting_from_json(o, &set[i], p);
    cJSON_Delete(o);
    return st;
}

/* ------------------------------------------------------------------ checkpoints */

static cmcr_status add_f32(cmcr_tensors *ts, const char *name, const float *x, size_t n)
{
    int64_t shape[1] = {(int64_t)n};
    return cmcr_tensors_add(ts, name, CMCR_F32, 1, shape, x);
}

static cmcr_status checkpoint_meta(const cmcr_trainer *t, cmcr_tensors *ts)
{
    char *cfg = cmcr_train_params_to_json(&t->p);
    if (!cfg) return core_fail(CMCR_ENOMEM, "out of memory");
    char step[32], hash[32];
    snprintf(step, sizeof step, "%" PRId64, t->step);
    snprintf(hash, sizeof hash, "%016" PRIx64, t->data_hash);
    cmcr_status st = cmcr_tensors_set_meta(ts, "cmcr.checkpoint", "1");
    if (!st) st = cmcr_tensors_set_meta(ts, "cmcr.train_config", cfg);
    if (!st) st = cmcr_tensors_set_meta(ts, "cmcr.step", step);
    if (!st) st = cmcr_tensors_set_meta(ts, "cmcr.data_hash", hash);
    if (!st) st = cmcr_tensors_set_meta(ts, "cmcr.data", t->provenance);
    free(cfg);
    return st;
}

cmcr_status cmcr_trainer_save_checkpoint(const cmcr_trainer *t, const char *path)
{
    const cmcr_model *m = t->model;
    cmcr_status st = model_check_to_write(m, path);
    if (st) return st;
    cmcr_tensors *ts = cmcr_tensors_new();
    if (!ts) return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    int64_t nbt[4] = {m->heads[0].nbt1, m->heads[0].nbt2, m->heads[1].nbt1, m->heads[1].nbt2}, four[1] = {4};
    st = add_f32(ts, "params", m->params, m->nparams);
    if (!st) st = add_f32(ts, "buffers", m->buffers, m->nbuffers);
    if (!st) st = add_f32(ts, "adam_m", t->adam_m, m->nparams);
    if (!st) st = add_f32(ts, "adam_v", t->adam_v, m->nparams);
    if (!st) st = cmcr_tensors_add(ts, "num_batches_tracked", CMCR_I64, 1, four, nbt);
    if (!st) st = checkpoint_meta(t, ts);
    if (!st) st = cmcr_tensors_save(ts, path, CMCR_FORMAT_SAFETENSORS);
    cmcr_tensors_free(ts);
    if (!st) core_log(CMCR_LOG_DEBUG, "checkpoint at step %lld written to %s", (long long)t->step, path);
    return st;
}

static cmcr_status copy_array(const cmcr_tensors *ts, const char *name, void *dst, size_t n, cmcr_dtype dt,
                              const char *path)
{
    const cmcr_tensor *x = cmcr_tensors_find(ts, name);
    if (!x || x->dtype != dt || x->ndim != 1 || (size_t)x->shape[0] != n)
        return core_fail(CMCR_EFORMAT, "%s: checkpoint tensor '%s' is missing or is not %s[%zu] (does it belong to "
                         "another model shape?)", path, name, cmcr_dtype_name(dt), n);
    memcpy(dst, x->data, x->nbytes);
    return CMCR_OK;
}

static cmcr_status check_compatible(const cmcr_trainer *t, const cmcr_tensors *ts, const char *path)
{
    const char *cfg = cmcr_tensors_get_meta(ts, "cmcr.train_config"), *hash = cmcr_tensors_get_meta(ts, "cmcr.data_hash");
    if (!cmcr_tensors_get_meta(ts, "cmcr.checkpoint") || !cfg || !hash)
        return core_fail(CMCR_EFORMAT, "%s: not a cmcr training checkpoint", path);
    /* Compare both through the same parser, so that a field added since the checkpoint was
     * written (absent there: its default) does not make it look different. */
    cmcr_train_params stored;
    if (cmcr_train_params_from_json(cfg, &stored)) return core_fail_prefix(CMCR_EFORMAT, path);
    char *mine = cmcr_train_params_to_json(&t->p), *theirs = cmcr_train_params_to_json(&stored), want[32];
    int same = mine && theirs && strcmp(mine, theirs) == 0, oom = !mine || !theirs;
    free(mine);
    free(theirs);
    if (oom) return core_fail(CMCR_ENOMEM, "out of memory");
    if (!same) return core_fail(CMCR_EINVAL, "%s: the checkpoint was written with other training parameters: %s", path, cfg);
    snprintf(want, sizeof want, "%016" PRIx64, t->data_hash);
    if (strcmp(want, hash) != 0)
        return core_fail(CMCR_EINVAL, "%s: the checkpoint was trained on other data (hash %s, these inputs %s)", path,
                         hash, want);
    return CMCR_OK;
}

/* The stored step (cmcr.step): a decimal integer in [0, total]. */
static cmcr_status parse_step(const char *text, int64_t total, int64_t *step, const char *path)
{
    if (!cmcr_parse_int(text, 0, total, step)) return CMCR_OK;
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s: checkpoint step", path);
    return core_fail_prefix(CMCR_EFORMAT, prefix);
}

cmcr_status cmcr_trainer_resume(cmcr_trainer *t, const char *path)
{
    cmcr_tensors *ts;
    cmcr_status st = cmcr_tensors_load(path, CMCR_FORMAT_SAFETENSORS, &ts);
    if (st) return st;
    cmcr_model *m = t->model;
    int64_t nbt[4];
    const char *step = cmcr_tensors_get_meta(ts, "cmcr.step");
    st = check_compatible(t, ts, path);
    if (!st) st = copy_array(ts, "params", m->params, m->nparams, CMCR_F32, path);
    if (!st) st = copy_array(ts, "buffers", m->buffers, m->nbuffers, CMCR_F32, path);
    if (!st) st = copy_array(ts, "adam_m", t->adam_m, m->nparams, CMCR_F32, path);
    if (!st) st = copy_array(ts, "adam_v", t->adam_v, m->nparams, CMCR_F32, path);
    if (!st) st = copy_array(ts, "num_batches_tracked", nbt, 4, CMCR_I64, path);
    if (!st) st = model_check(m, path);
    if (!st && !step) st = core_fail(CMCR_EFORMAT, "%s: checkpoint has no step", path);
    if (!st) st = parse_step(step, t->total_steps, &t->step, path);
    if (!st) {
        m->heads[0].nbt1 = nbt[0];
        m->heads[0].nbt2 = nbt[1];
        m->heads[1].nbt1 = nbt[2];
        m->heads[1].nbt2 = nbt[3];
        t->perm_epoch = -1;
    }
    cmcr_tensors_free(ts);
    return st;
}

cmcr_status cmcr_checkpoint_info(const char *path, cmcr_train_params *p, char **provenance, int64_t *step)
{
    if (provenance) *provenance = NULL;
    cmcr_tensors *ts;
    cmcr_status st = cmcr_tensors_load(path, CMCR_FORMAT_SAFETENSORS, &ts);
    if (st) return st;
    const char *cfg = cmcr_tensors_get_meta(ts, "cmcr.train_config"), *prov = cmcr_tensors_get_meta(ts, "cmcr.data"),
               *s = cmcr_tensors_get_meta(ts, "cmcr.step");
    if (!cfg || !s) st = core_fail(CMCR_EFORMAT, "%s: not a cmcr training checkpoint", path);
    if (!st) st = cmcr_train_params_from_json(cfg, p);
    if (st == CMCR_EFORMAT && cfg) core_fail_prefix(st, path);
    if (!st && provenance) {
        *provenance = core_strdup(prov ? prov : "{}");
        if (!*provenance) st = core_fail(CMCR_ENOMEM, "out of memory");
    }
    if (!st && step) st = parse_step(s, INT64_MAX, step, path);
    if (st && provenance) {
        free(*provenance);
        *provenance = NULL;
    }
    cmcr_tensors_free(ts);
    return st;
}
