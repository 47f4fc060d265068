/* model.c - the C-MCR projector pair: shapes, state_dict mapping, loading, saving, inference. */
#include "mcr/model.h"
#include "runtime/vmath.h"
#include "runtime/matmul.h"
#include "runtime/rng.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define PROJECT_BLOCK_ROWS 2048

static const char *const side_prefix[2] = {"Head_A", "Head_B"};

cmcr_status cmcr_preset_shape(const char *preset, cmcr_head_shape *out)
{
    if (strcmp(preset, "clap-clip") == 0) {
        *out = (cmcr_head_shape){.layers = 2, .in_dim = 512, .hidden = 1024, .out_dim = 512};
        return CMCR_OK;
    }
    if (strcmp(preset, "ulip-clip") == 0) {
        *out = (cmcr_head_shape){.layers = 1, .in_dim = 512, .hidden = 0, .out_dim = 512};
        return CMCR_OK;
    }
    return core_fail(CMCR_EINVAL, "unknown preset '%s' (known: clap-clip, ulip-clip)", preset);
}

#define VIEWS(f) {offsetof(model_head, f##1), offsetof(model_head, f##2)}
const head_tensor head_tensors[HEAD_TENSORS] = {
    /* key                      kind        decay  views */
    {"0.weight",                HT_WEIGHT,  1,     VIEWS(w)},
    {"0.bias",                  HT_VECTOR,  0,     VIEWS(b)},
    {"1.weight",                HT_VECTOR,  0,     VIEWS(g)},
    {"1.bias",                  HT_VECTOR,  0,     VIEWS(be)},
    {"1.running_mean",          HT_RUNNING, 0,     VIEWS(rm)},
    {"1.running_var",           HT_RUNNING, 0,     VIEWS(rv)},
    {"1.num_batches_tracked",   HT_COUNT,   0,     VIEWS(nbt)},
};

static int64_t head_hid(const cmcr_head_shape *s) { return s->layers == 2 ? s->hidden : s->out_dim; }

const char *head_block_name(const cmcr_head_shape *s, int blk)
{
    return s->layers == 1 ? "net" : blk == 0 ? "net1" : "net2";
}

void head_block_dims(const cmcr_head_shape *s, int blk, int64_t *out, int64_t *in)
{
    *out = blk == 0 ? head_hid(s) : s->out_dim;
    *in = blk == 0 ? s->in_dim : head_hid(s);
}

int64_t head_tensor_params(const cmcr_head_shape *s, int blk, const head_tensor *t)
{
    int64_t out, in;
    head_block_dims(s, blk, &out, &in);
    return t->kind == HT_WEIGHT ? out * in : t->kind == HT_VECTOR ? out : 0;
}

int64_t head_tensor_buffers(const cmcr_head_shape *s, int blk, const head_tensor *t)
{
    int64_t out, in;
    head_block_dims(s, blk, &out, &in);
    return t->kind == HT_RUNNING ? out : 0;
}

/* per(t) summed over every tensor of every block of a head. */
static size_t head_total(const cmcr_head_shape *s,
                         int64_t (*per)(const cmcr_head_shape *, int, const head_tensor *))
{
    int64_t n = 0;
    for (int blk = 0; blk < s->layers; blk++)
        for (int k = 0; k < HEAD_TENSORS; k++) n += per(s, blk, &head_tensors[k]);
    return (size_t)n;
}

size_t head_param_count(const cmcr_head_shape *s) { return head_total(s, head_tensor_params); }
size_t head_buffer_count(const cmcr_head_shape *s) { return head_total(s, head_tensor_buffers); }

/* The float view of tensor t in block blk. */
static float **view(model_head *h, int blk, const head_tensor *t) { return (float **)((char *)h + t->view[blk]); }

void head_bind(model_head *h, const cmcr_head_shape *s, float *p, float *b)
{
    h->shape = *s;
    h->hid = head_hid(s);
    for (int blk = 0; blk < 2; blk++)
        for (int k = 0; k < HEAD_TENSORS; k++) {
            const head_tensor *t = &head_tensors[k];
            float **next = t->kind == HT_RUNNING ? &b : &p; /* where its array continues */
            if (t->kind == HT_COUNT || !*next) continue;    /* no buffers given: their views stay */
            *view(h, blk, t) = blk < s->layers ? *next : NULL;
            if (blk < s->layers) *next += head_tensor_params(s, blk, t) + head_tensor_buffers(s, blk, t);
        }
}

cmcr_status head_check_shape(const cmcr_head_shape *s, const char *what)
{
    const int64_t max_width = 1 << 16;
    if (s->layers != 1 && s->layers != 2)
        return core_fail(CMCR_EINVAL, "%s: a head has 1 or 2 layers, not %d", what, s->layers);
    if (s->in_dim < 1 || s->in_dim > max_width || s->out_dim < 1 || s->out_dim > max_width ||
        (s->layers == 2 && (s->hidden < 1 || s->hidden > max_width)))
        return core_fail(CMCR_EINVAL, "%s: widths must be between 1 and %lld (in %lld, hidden %lld, out %lld)",
                         what, (long long)max_width, (long long)s->in_dim, (long long)s->hidden,
                         (long long)s->out_dim);
    return CMCR_OK;
}

cmcr_status model_alloc(const cmcr_head_shape *a, const cmcr_head_shape *b, cmcr_model **out)
{
    *out = NULL;
    cmcr_status st;
    if ((st = head_check_shape(a, "head A")) || (st = head_check_shape(b, "head B"))) return st;
    if (a->out_dim != b->out_dim)
        return core_fail(CMCR_ESHAPE, "heads must share the output width (A gives %lld, B gives %lld)",
                         (long long)a->out_dim, (long long)b->out_dim);
    cmcr_model *m = calloc(1, sizeof *m);
    if (!m) return core_fail(CMCR_ENOMEM, "out of memory allocating a model");
    const cmcr_head_shape *s[2] = {a, b};
    m->nparams = head_param_count(a) + head_param_count(b);
    m->nbuffers = head_buffer_count(a) + head_buffer_count(b);
    m->params = calloc(m->nparams, sizeof(float));
    m->buffers = calloc(m->nbuffers, sizeof(float));
    m->meta = cmcr_tensors_new();
    if (!m->params || !m->buffers || !m->meta) {
        cmcr_model_free(m);
        return core_fail(CMCR_ENOMEM, "out of memory allocating a model");
    }
    float *p = m->params, *bu = m->buffers;
    for (int i = 0; i < 2; i++) {
        head_bind(&m->heads[i], s[i], p, bu);
        p += head_param_count(s[i]);
        bu += head_buffer_count(s[i]);
        model_head *h = &m->heads[i];
        for (int64_t j = 0; j < h->hid; j++) h->rv1[j] = 1.0f;
        if (h->rv2)
            for (int64_t j = 0; j < s[i]->out_dim; j++) h->rv2[j] = 1.0f;
    }
    *out = m;
    return CMCR_OK;
}

void cmcr_model_free(cmcr_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->buffers);
    cmcr_tensors_free(m->meta);
    free(m->origin);
    free(m);
}

static void init_linear(rng_state *r, float *w, float *b, int64_t out, int64_t in)
{
    /* PyTorch's default: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), same bound for bias. */
    double bound = 1.0 / sqrt((double)in);
    for (int64_t i = 0; i < out * in; i++) w[i] = (float)((2 * rng_uniform(r) - 1) * bound);
    for (int64_t i = 0; i < out; i++) b[i] = (float)((2 * rng_uniform(r) - 1) * bound);
}

cmcr_status cmcr_model_new(const cmcr_head_shape *a, const cmcr_head_shape *b, uint64_t seed, cmcr_model **out)
{
    cmcr_status st = model_alloc(a, b, out);
    if (st) return st;
    rng_state r;
    rng_seed(&r, seed);
    for (int i = 0; i < 2; i++) {
        model_head *h = &(*out)->heads[i];
        init_linear(&r, h->w1, h->b1, h->hid, h->shape.in_dim);
        for (int64_t j = 0; j < h->hid; j++) h->g1[j] = 1.0f;
        if (h->w2) {
            init_linear(&r, h->w2, h->b2, h->shape.out_dim, h->hid);
            for (int64_t j = 0; j < h->shape.out_dim; j++) h->g2[j] = 1.0f;
        }
    }
    return CMCR_OK;
}

/* ------------------------------------------------------------------ state_dict mapping */

/* One entry of a head's state_dict: key suffix, destination and shape. */
typedef struct key_slot {
    char key[64];
    float *dst;       /* float destination, or NULL for num_batches_tracked */
    int64_t *nbt;     /* num_batches_tracked destination */
    int ndim;
    int64_t shape[2];
} key_slot;

/* Fill slots (at most 2 * HEAD_TENSORS) for one head, from head_tensors; returns the count. */
static int head_slots(model_head *h, int side, key_slot *slots)
{
    int n = 0;
    for (int blk = 0; blk < h->shape.layers; blk++)
        for (int k = 0; k < HEAD_TENSORS; k++) {
            const head_tensor *t = &head_tensors[k];
            key_slot *sl = &slots[n++];
            int64_t out, in;
            head_block_dims(&h->shape, blk, &out, &in);
            snprintf(sl->key, sizeof sl->key, "%s.%s.%s", side_prefix[side], head_block_name(&h->shape, blk), t->key);
            sl->dst = t->kind == HT_COUNT ? NULL : *view(h, blk, t);
            sl->nbt = t->kind == HT_COUNT ? (int64_t *)((char *)h + t->view[blk]) : NULL;
            sl->ndim = t->kind == HT_WEIGHT ? 2 : t->kind == HT_COUNT ? 0 : 1;
            sl->shape[0] = t->kind == HT_COUNT ? 0 : out;
            sl->shape[1] = t->kind == HT_WEIGHT ? in : 0;
        }
    return n;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

static cmcr_status copy_slot(const cmcr_tensors *ts, const key_slot *k, const char *origin)
{
    const cmcr_tensor *t = cmcr_tensors_find(ts, k->key);
    char want[64], got[64];
    shape_str(want, sizeof want, k->ndim, k->shape);
    if (!t) return core_fail(CMCR_EFORMAT, "%s: missing tensor %s (expected shape %s)", origin, k->key, want);
    shape_str(got, sizeof got, t->ndim, t->shape);
    bool same = t->ndim == k->ndim;
    for (int i = 0; same && i < k->ndim; i++) same = t->shape[i] == k->shape[i];
    if (!same)
        return core_fail(CMCR_ESHAPE, "%s: tensor %s has shape %s, expected %s", origin, k->key, got, want);
    if (k->nbt) {
        if (t->dtype != CMCR_I64 && t->dtype != CMCR_I32)
            return core_fail(CMCR_EFORMAT, "%s: tensor %s must be an integer, found %s", origin, k->key,
                             cmcr_dtype_name(t->dtype));
        *k->nbt = t->dtype == CMCR_I64 ? *(const int64_t *)t->data : *(const int32_t *)t->data;
        return CMCR_OK;
    }
    if (t->dtype == CMCR_I32 || t->dtype == CMCR_I64 || t->dtype == CMCR_U8)
        return core_fail(CMCR_EFORMAT, "%s: tensor %s must be floating point, found %s", origin, k->key,
                         cmcr_dtype_name(t->dtype));
    cmcr_tensor_to_f32(t, k->dst);
    return CMCR_OK;
}

/* Index of the first value of a slot that the forward pass cannot use (NaN, Inf, or a
 * negative running variance), or -1. */
static int64_t first_bad_value(const key_slot *k, int64_t n)
{
    int64_t i = 0;
    if (cmcr_find_nonfinite_row(k->dst, 1, n) >= 0) {
        while (isfinite(k->dst[i])) i++;
        return i;
    }
    if (!strstr(k->key, ".running_var")) return -1;
    while (i < n && k->dst[i] >= 0) i++;
    return i < n ? i : -1;
}

static cmcr_status check_slot(const key_slot *k, const char *what)
{
    int64_t cols = k->ndim == 2 ? k->shape[1] : k->shape[0], n = k->ndim == 2 ? k->shape[0] * cols : cols;
    int64_t i = first_bad_value(k, n);
    if (i < 0) return CMCR_OK;
    char at[48];
    if (k->ndim == 2) snprintf(at, sizeof at, "[%lld, %lld]", (long long)(i / cols), (long long)(i % cols));
    else snprintf(at, sizeof at, "[%lld]", (long long)i);
    float v = k->dst[i];
    if (isfinite(v))
        return core_fail(CMCR_EVALUE, "%s: %s%s is %g, but a variance cannot be negative", what, k->key, at, (double)v);
    return core_fail(CMCR_EVALUE, "%s: %s%s is %s", what, k->key, at, isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf");
}

cmcr_status model_check_to_write(const cmcr_model *m, const char *path)
{
    char what[512];
    snprintf(what, sizeof what, "%s: not written", path);
    return model_check(m, what);
}

cmcr_status model_check(const cmcr_model *m, const char *what)
{
    key_slot slots[2 * HEAD_TENSORS];
    for (int side = 0; side < 2; side++) {
        model_head h = m->heads[side]; /* head_slots wants a mutable head; views stay the model's */
        int n = head_slots(&h, side, slots);
        for (int i = 0; i < n; i++) {
            cmcr_status st = slots[i].dst ? check_slot(&slots[i], what) : CMCR_OK;
            if (st) return st;
        }
    }
    return CMCR_OK;
}

/* Read one head's shape from the first Linear weight(s). */
static cmcr_status detect_head(const cmcr_tensors *ts, int side, const char *origin, cmcr_head_shape *s)
{
    char k1[64], k2[64];
    const char *p = side_prefix[side];
    snprintf(k1, sizeof k1, "%s.net.0.weight", p);
    const cmcr_tensor *w = cmcr_tensors_find(ts, k1);
    if (w && w->ndim == 2) {
        *s = (cmcr_head_shape){.layers = 1, .in_dim = w->shape[1], .hidden = 0, .out_dim = w->shape[0]};
        return CMCR_OK;
    }
    snprintf(k1, sizeof k1, "%s.net1.0.weight", p);
    snprintf(k2, sizeof k2, "%s.net2.0.weight", p);
    const cmcr_tensor *w1 = cmcr_tensors_find(ts, k1), *w2 = cmcr_tensors_find(ts, k2);
    if (w1 && w2 && w1->ndim == 2 && w2->ndim == 2) {
        if (w2->shape[1] != w1->shape[0])
            return core_fail(CMCR_ESHAPE, "%s: %s is %lldx%lld but %s expects input width %lld", origin, k2,
                             (long long)w2->shape[0], (long long)w2->shape[1], k1, (long long)w1->shape[0]);
        *s = (cmcr_head_shape){.layers = 2, .in_dim = w1->shape[1], .hidden = w1->shape[0], .out_dim = w2->shape[0]};
        return CMCR_OK;
    }
    return core_fail(CMCR_EFORMAT,
                     "%s: not a C-MCR model: no 2-D tensor %s.net.0.weight (one-layer head) or "
                     "%s.net1.0.weight + %s.net2.0.weight (two-layer head)",
                     origin, p, p, p);
}

static cmcr_status copy_meta(cmcr_model *m, const cmcr_tensors *ts)
{
    for (size_t i = 0; i < cmcr_tensors_meta_count(ts); i++) {
        const char *k, *v;
        cmcr_tensors_meta_at(ts, i, &k, &v);
        cmcr_status st = cmcr_tensors_set_meta(m->meta, k, v);
        if (st) return st;
    }
    return CMCR_OK;
}

static cmcr_status fill_model(cmcr_model *m, const cmcr_tensors *ts, const char *origin)
{
    key_slot slots[2 * HEAD_TENSORS];
    size_t used = 0;
    for (int side = 0; side < 2; side++) {
        int n = head_slots(&m->heads[side], side, slots);
        for (int i = 0; i < n; i++) {
            cmcr_status st = copy_slot(ts, &slots[i], origin);
            if (st) return st;
        }
        used += (size_t)n;
    }
    if (used != cmcr_tensors_count(ts)) {
        for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
            const char *name = cmcr_tensors_at(ts, i)->name;
            if (strncmp(name, "Head_A.", 7) != 0 && strncmp(name, "Head_B.", 7) != 0)
                return core_fail(CMCR_EFORMAT, "%s: unexpected tensor '%s' (a model holds only Head_A.* and Head_B.*)",
                                 origin, name);
        }
        return core_fail(CMCR_EFORMAT, "%s: %zu tensors, but the detected architecture has %zu", origin,
                         cmcr_tensors_count(ts), used);
    }
    return copy_meta(m, ts);
}

cmcr_status cmcr_model_from_tensors(const cmcr_tensors *ts, const char *origin, cmcr_model **out)
{
    *out = NULL;
    cmcr_head_shape s[2];
    cmcr_status st;
    for (int side = 0; side < 2; side++)
        if ((st = detect_head(ts, side, origin, &s[side]))) return st;
    if ((st = model_alloc(&s[0], &s[1], out))) return core_fail_prefix(st, origin);
    if (!((*out)->origin = core_strdup(origin))) st = core_fail(CMCR_ENOMEM, "%s: out of memory", origin);
    if (!st) st = fill_model(*out, ts, origin);
    if (!st) st = model_check(*out, origin);
    if (st) {
        cmcr_model_free(*out);
        *out = NULL;
    }
    return st;
}

cmcr_status cmcr_model_load(const char *path, cmcr_model **out)
{
    *out = NULL;
    cmcr_tensors *ts;
    cmcr_status st = cmcr_tensors_load(path, CMCR_FORMAT_AUTO, &ts);
    if (st) return st;
    st = cmcr_model_from_tensors(ts, path, out);
    cmcr_tensors_free(ts);
    return st;
}

cmcr_status cmcr_model_load_memory(const void *data, size_t len, const char *name, cmcr_model **out)
{
    *out = NULL;
    if (!name) name = "(memory)";
    cmcr_tensors *ts;
    cmcr_status st = cmcr_tensors_load_memory(data, len, CMCR_FORMAT_AUTO, name, &ts);
    if (st) return st;
    st = cmcr_model_from_tensors(ts, name, out);
    cmcr_tensors_free(ts);
    return st;
}

cmcr_status cmcr_model_to_tensors(const cmcr_model *m, cmcr_tensors **out)
{
    *out = NULL;
    cmcr_tensors *ts = cmcr_tensors_new();
    if (!ts) return core_fail(CMCR_ENOMEM, "out of memory");
    cmcr_status st = CMCR_OK;
    key_slot slots[2 * HEAD_TENSORS];
    for (int side = 0; side < 2 && !st; side++) {
        model_head h = m->heads[side]; /* head_slots wants a mutable head; views stay the model's */
        int n = head_slots(&h, side, slots);
        for (int i = 0; i < n && !st; i++) {
            const key_slot *k = &slots[i];
            if (k->nbt) st = cmcr_tensors_add(ts, k->key, CMCR_I64, 0, k->shape, k->nbt);
            else st = cmcr_tensors_add(ts, k->key, CMCR_F32, k->ndim, k->shape, k->dst);
        }
    }
    for (size_t i = 0; i < cmcr_tensors_meta_count(m->meta) && !st; i++) {
        const char *k, *v;
        cmcr_tensors_meta_at(m->meta, i, &k, &v);
        st = cmcr_tensors_set_meta(ts, k, v);
    }
    if (!st) st = cmcr_tensors_set_meta(ts, "cmcr.preset", cmcr_model_preset(m));
    if (!st) st = cmcr_tensors_set_meta(ts, "cmcr.version", CMCR_VERSION_STRING);
    if (st) {
        cmcr_tensors_free(ts);
        return st;
    }
    *out = ts;
    return CMCR_OK;
}

cmcr_status cmcr_model_save(const cmcr_model *m, const char *path, cmcr_format fmt)
{
    cmcr_tensors *ts;
    cmcr_status st = model_check_to_write(m, path);
    if (!st) st = cmcr_model_to_tensors(m, &ts);
    if (st) return st;
    st = cmcr_tensors_save(ts, path, fmt);
    cmcr_tensors_free(ts);
    return st;
}

cmcr_head_shape cmcr_model_shape(const cmcr_model *m, cmcr_side side) { return m->heads[side].shape; }

static bool same_shape(const cmcr_head_shape *x, const cmcr_head_shape *y)
{
    return x->layers == y->layers && x->in_dim == y->in_dim && x->out_dim == y->out_dim &&
           (x->layers == 1 || x->hidden == y->hidden);
}

const char *cmcr_model_preset(const cmcr_model *m)
{
    static const char *const names[] = {"clap-clip", "ulip-clip"};
    for (int i = 0; i < 2; i++) {
        cmcr_head_shape s;
        cmcr_preset_shape(names[i], &s);
        if (same_shape(&s, &m->heads[0].shape) && same_shape(&s, &m->heads[1].shape)) return names[i];
    }
    return "custom";
}

cmcr_status cmcr_model_set_meta(cmcr_model *m, const char *key, const char *value)
{
    return cmcr_tensors_set_meta(m->meta, key, value);
}

const char *cmcr_model_get_meta(const cmcr_model *m, const char *key)
{
    return cmcr_tensors_get_meta(m->meta, key);
}

/* ------------------------------------------------------------------ inference */

static void bn_eval(float *y, int64_t rows, int64_t n, const float *g, const float *be, const float *rm,
                    const float *rv, bool relu)
{
    #pragma omp parallel for schedule(static) if (rows * n > 65536)
    for (int64_t r = 0; r < rows; r++) {
        float *p = y + r * n;
        for (int64_t j = 0; j < n; j++) {
            float v = (p[j] - rm[j]) / sqrtf(rv[j] + CMCR_BN_EPS) * g[j] + be[j];
            p[j] = relu && v < 0 ? 0.0f : v;
        }
    }
}

void head_forward_eval(const model_head *h, const float *x, int64_t rows, float *scratch, float *out)
{
    const cmcr_head_shape *s = &h->shape;
    float *first = s->layers == 2 ? scratch : out;
    mm_linear(x, h->w1, h->b1, rows, s->in_dim, h->hid, first);
    bn_eval(first, rows, h->hid, h->g1, h->be1, h->rm1, h->rv1, true);
    if (s->layers == 2) {
        mm_linear(first, h->w2, h->b2, rows, h->hid, s->out_dim, out);
        bn_eval(out, rows, s->out_dim, h->g2, h->be2, h->rm2, h->rv2, false);
    }
}

/* Each block's input and output are checked while in cache: a finite model (checked when
 * loaded) on finite rows can still overflow float32, and that must not pass silently. */
cmcr_status model_project_rows(const cmcr_model *m, cmcr_side side, const float *in, int64_t rows,
                                    int64_t row0, float *out)
{
    if (side != CMCR_SIDE_A && side != CMCR_SIDE_B) return core_fail(CMCR_EINVAL, "side must be A or B");
    const model_head *h = &m->heads[side];
    const char *name = m->origin ? m->origin : "model";
    char s = side == CMCR_SIDE_A ? 'a' : 'b';
    int64_t in_dim = h->shape.in_dim, block = rows < PROJECT_BLOCK_ROWS ? rows : PROJECT_BLOCK_ROWS;
    if (rows <= 0) return CMCR_OK;
    cmcr_status st = CMCR_OK;
    float *xn = core_xmalloc((size_t)(block * in_dim) * sizeof(float));
    float *scratch = core_xmalloc((size_t)(block * h->hid) * sizeof(float));
    if (!xn || !scratch) {
        free(xn);
        free(scratch);
        return core_fail(CMCR_ENOMEM, "%s: out of memory projecting %lld rows", name, (long long)rows);
    }
    for (int64_t r0 = 0; r0 < rows && !st; r0 += block) {
        int64_t n = rows - r0 < block ? rows - r0 : block;
        memcpy(xn, in + r0 * in_dim, (size_t)(n * in_dim) * sizeof(float));
        if ((st = vm_check_finite(xn, n, in_dim, row0 + r0, "side %c input", s))) break;
        cmcr_normalize_rows(xn, n, in_dim);
        float *o = out + r0 * h->shape.out_dim;
        head_forward_eval(h, xn, n, scratch, o);
        cmcr_normalize_rows(o, n, h->shape.out_dim);
        st = vm_check_finite(o, n, h->shape.out_dim, row0 + r0, "%s: side %c overflows float32", name, s);
    }
    free(xn);
    free(scratch);
    return st;
}

cmcr_status cmcr_model_project(const cmcr_model *m, cmcr_side side, const float *in, int64_t rows, float *out)
{
    return model_project_rows(m, side, in, rows, 0, out);
}

void cmcr_dot_rows(const float *a, int64_t na, const float *b, int64_t nb, int64_t cols, float *out)
{
    mm_sgemm(0, 1, na, nb, cols, 1.0f, a, b, 0.0f, out);
}
