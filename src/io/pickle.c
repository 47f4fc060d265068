/* pickle.c - a safe, allow-list interpreter for the pickles inside PyTorch checkpoints.
 *
 * Follows the opcode documentation in CPython's Lib/pickletools.py. Every read checks
 * the bytes left, every allocation comes from one size-limited arena, and globals are
 * checked against an allow-list when they are named, before anything could use them.
 */
#include "io/pickle.h"
#include "io/io.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ arena */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t mem[];
};

struct pk_arena {
    struct chunk *head;
    size_t total;
};

#define CHUNK_BYTES ((size_t)64 << 10)

void pk_free(pk_arena *a)
{
    if (!a) return;
    struct chunk *c = a->head;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

/* NULL when out of memory or past PK_MAX_ARENA. Memory is zeroed. */
static void *arena_alloc(pk_arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (n > PK_MAX_ARENA) return NULL;
    n = (n + align - 1) / align * align;
    struct chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_BYTES ? n : CHUNK_BYTES;
        if (a->total + cap > PK_MAX_ARENA) return NULL;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
        a->total += cap;
    }
    void *p = (unsigned char *)c->mem + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

/* ------------------------------------------------------------------ parser state */

typedef struct parser {
    const char *origin;
    const unsigned char *buf;
    size_t len, pos, op_pos;
    const char *op_name;
    pk_arena *arena;
    pk_value **stack;
    size_t sp;
    size_t *marks;
    size_t nmarks;
    pk_value **memo;
    size_t memo_cap, memo_count;
    pk_value *result;
    bool numpy;       /* pk_parse_numpy: numpy's globals are recognised */
    const char *part; /* what messages call the pickle: "data.pkl" or "pickle" */
} parser;

static cmcr_status bad(parser *p, cmcr_status st, const char *fmt, ...) CMCR_PRINTF(3, 4);

static cmcr_status bad(parser *p, cmcr_status st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return core_fail(st, "%s: %s byte %zu: %s", p->origin, p->part, p->op_pos, msg);
}

static cmcr_status no_memory(parser *p)
{
    return bad(p, CMCR_ENOMEM, "the pickle needs more than the limit of %zu MiB of memory",
               PK_MAX_ARENA >> 20);
}

static cmcr_status alloc(parser *p, size_t n, void **out)
{
    *out = arena_alloc(p->arena, n);
    return *out ? CMCR_OK : no_memory(p);
}

static cmcr_status new_value(parser *p, pk_kind kind, pk_value **out)
{
    cmcr_status st = alloc(p, sizeof(pk_value), (void **)out);
    if (st == CMCR_OK) (*out)->kind = kind;
    return st;
}

const char *pk_kind_desc(pk_kind k)
{
    static const char *names[] = {"None",   "a bool",   "an int",    "a float",    "a str",    "a tuple",
                                  "a list", "a dict",   "a global",  "a storage",  "a tensor", "a bytes object",
                                  "an opaque object", "a numpy array", "a numpy dtype"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* ------------------------------------------------------------------ reading bytes */

static cmcr_status take(parser *p, uint64_t n, const unsigned char **out)
{
    size_t left = p->len - p->pos;
    *out = NULL;
    if (n > left)
        return bad(p, CMCR_EFORMAT, "truncated: %s needs %llu more bytes, %zu left", p->op_name,
                   (unsigned long long)n, left);
    *out = p->buf + p->pos;
    p->pos += (size_t)n;
    return CMCR_OK;
}

static uint64_t le_bytes(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static cmcr_status read_uint(parser *p, int n, uint64_t *v)
{
    const unsigned char *b;
    cmcr_status st = take(p, (uint64_t)n, &b);
    *v = st == CMCR_OK ? le_bytes(b, n) : 0;
    return st;
}

/* ------------------------------------------------------------------ the stack */

static size_t floor_of_stack(const parser *p) { return p->nmarks ? p->marks[p->nmarks - 1] : 0; }

static cmcr_status push(parser *p, pk_value *v)
{
    if (p->sp >= PK_MAX_STACK)
        return bad(p, CMCR_ENOMEM, "more than %d items on the pickle stack", PK_MAX_STACK);
    p->stack[p->sp++] = v;
    return CMCR_OK;
}

static cmcr_status pop(parser *p, pk_value **v)
{
    *v = NULL;
    if (p->sp <= floor_of_stack(p))
        return bad(p, CMCR_EFORMAT, "%s needs a value but the stack is empty", p->op_name);
    *v = p->stack[--p->sp];
    return CMCR_OK;
}

static cmcr_status top(parser *p, pk_value **v)
{
    *v = NULL;
    if (p->sp <= floor_of_stack(p))
        return bad(p, CMCR_EFORMAT, "%s needs a value but the stack is empty", p->op_name);
    *v = p->stack[p->sp - 1];
    return CMCR_OK;
}

/* Remove the topmost mark; the items above it are stack[*start .. sp). */
static cmcr_status pop_mark(parser *p, size_t *start)
{
    *start = 0;
    if (p->nmarks == 0) return bad(p, CMCR_EFORMAT, "%s without a MARK", p->op_name);
    *start = p->marks[--p->nmarks];
    return CMCR_OK;
}

static cmcr_status seq_add(parser *p, pk_value *seq, pk_value *item)
{
    if (seq->u.seq.n == seq->u.seq.cap) {
        size_t cap = seq->u.seq.cap ? seq->u.seq.cap * 2 : 4;
        pk_value **items;
        if (cap > PK_MAX_ARENA / sizeof *items) return no_memory(p);
        cmcr_status st = alloc(p, cap * sizeof *items, (void **)&items);
        if (st) return st;
        if (seq->u.seq.n) memcpy(items, seq->u.seq.items, seq->u.seq.n * sizeof *items);
        seq->u.seq.items = items;
        seq->u.seq.cap = cap;
    }
    seq->u.seq.items[seq->u.seq.n++] = item;
    return CMCR_OK;
}

/* A new container holding stack[start .. sp), which is popped. */
static cmcr_status collect(parser *p, pk_kind kind, size_t start, pk_value **out)
{
    cmcr_status st = new_value(p, kind, out);
    for (size_t i = start; st == CMCR_OK && i < p->sp; i++) st = seq_add(p, *out, p->stack[i]);
    p->sp = start;
    return st;
}

/* ------------------------------------------------------------------ globals */

static const struct {
    const char *name;
    cmcr_dtype dtype;
} STORAGES[] = {
    {"FloatStorage", CMCR_F32}, {"HalfStorage", CMCR_F16}, {"BFloat16Storage", CMCR_BF16},
    {"DoubleStorage", CMCR_F64}, {"LongStorage", CMCR_I64}, {"IntStorage", CMCR_I32}, {"ByteStorage", CMCR_U8},
};
#define N_STORAGES (sizeof STORAGES / sizeof STORAGES[0])

const char *pk_storage_name(cmcr_dtype t)
{
    static const char *full[] = {"torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage",
                                 "torch.DoubleStorage", "torch.IntStorage", "torch.LongStorage",
                                 "torch.ByteStorage"}; /* indexed by cmcr_dtype */
    return (unsigned)t < sizeof full / sizeof full[0] ? full[t] : NULL;
}

static bool same(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* "module.name", escaped for a message (tensors_escape), cut to fit out. */
static void global_display(char *out, size_t cap, const char *mod, size_t mlen, const char *name,
                           size_t nlen)
{
    char m[80], n[80];
    snprintf(out, cap, "%s.%s", tensors_escape(m, sizeof m, mod, mlen), tensors_escape(n, sizeof n, name, nlen));
}

/* numpy's globals that numpy mode recognises: numpy 1's module names and numpy 2's. */
static bool resolve_numpy(const char *mod, size_t mlen, const char *name, size_t nlen, pk_global *which)
{
    bool core = same(mod, mlen, "numpy.core.multiarray") || same(mod, mlen, "numpy._core.multiarray");
    bool numeric = same(mod, mlen, "numpy.core.numeric") || same(mod, mlen, "numpy._core.numeric");
    if (core && same(name, nlen, "_reconstruct")) *which = PG_NP_RECONSTRUCT;
    else if (numeric && same(name, nlen, "_frombuffer")) *which = PG_NP_FROMBUFFER;
    else if (same(mod, mlen, "numpy") && same(name, nlen, "ndarray")) *which = PG_NP_NDARRAY;
    else if (same(mod, mlen, "numpy") && same(name, nlen, "dtype")) *which = PG_NP_DTYPE;
    else if (same(mod, mlen, "_codecs") && same(name, nlen, "encode")) *which = PG_CODECS_ENCODE;
    else return false;
    return true;
}

static bool resolve_known(const char *mod, size_t mlen, const char *name, size_t nlen,
                          pk_global *which, cmcr_dtype *dtype)
{
    if (same(mod, mlen, "collections") && same(name, nlen, "OrderedDict")) *which = PG_ORDERED_DICT;
    else if (same(mod, mlen, "torch._utils") && same(name, nlen, "_rebuild_tensor_v2"))
        *which = PG_REBUILD_TENSOR;
    else if (same(mod, mlen, "torch._utils") && same(name, nlen, "_rebuild_parameter"))
        *which = PG_REBUILD_PARAMETER;
    else if (!same(mod, mlen, "torch")) return false;
    else {
        size_t i = 0;
        while (i < N_STORAGES && !same(name, nlen, STORAGES[i].name)) i++;
        if (i == N_STORAGES) return false;
        *which = PG_STORAGE;
        *dtype = STORAGES[i].dtype;
    }
    return true;
}

/* An allowed global is pushed as such; any other as an opaque placeholder carrying its name. */
static cmcr_status push_global(parser *p, const char *mod, size_t mlen, const char *name, size_t nlen)
{
    pk_global which = PG_OPAQUE;
    cmcr_dtype dtype = CMCR_F32;
    char *shown = NULL;
    pk_value *v;
    cmcr_status st = CMCR_OK;
    bool known = resolve_known(mod, mlen, name, nlen, &which, &dtype) ||
                 (p->numpy && resolve_numpy(mod, mlen, name, nlen, &which));
    if (!known) which = PG_OPAQUE;
    if (which >= PG_OPAQUE) { /* numpy's keep their name too: a call with other arguments is opaque */
        st = alloc(p, 160, (void **)&shown);
        if (!st) global_display(shown, 160, mod, mlen, name, nlen);
    }
    if (!st) st = new_value(p, PK_GLOBAL, &v);
    if (st) return st;
    v->u.global.which = which;
    v->u.global.dtype = dtype;
    v->u.global.name = shown;
    return push(p, v);
}

/* An opaque object standing for what calling global g would have made. */
static cmcr_status new_object(parser *p, const char *name, pk_value **out)
{
    cmcr_status st = new_value(p, PK_OBJECT, out);
    if (!st) (*out)->u.global.name = name;
    return st;
}

const char *pk_object_name(const pk_value *v) { return v && v->kind == PK_OBJECT ? v->u.global.name : NULL; }

bool pk_object_is_tensor(const pk_value *v)
{
    const char *n = pk_object_name(v);
    size_t len = n ? strlen(n) : 0;
    return len > 13 && memcmp(n, "torch.", 6) == 0 && strcmp(n + len - 7, "Storage") == 0;
}

/* ------------------------------------------------------------------ REDUCE and BINPERSID */

static cmcr_status want(parser *p, const pk_value *v, pk_kind kind, const char *what)
{
    if (v->kind != kind)
        return bad(p, CMCR_EFORMAT, "%s is %s, expected %s", what, pk_kind_desc(v->kind),
                   pk_kind_desc(kind));
    return CMCR_OK;
}

/* A size or stride tuple of non-negative ints into dims[]. */
static cmcr_status int_tuple(parser *p, const pk_value *v, const char *what, int64_t *dims, int *n)
{
    cmcr_status st = want(p, v, PK_TUPLE, what);
    if (st) return st;
    if (v->u.seq.n > CMCR_MAX_DIMS)
        return bad(p, CMCR_EUNSUPPORTED, "tensor has %zu dimensions (at most %d)", v->u.seq.n,
                   CMCR_MAX_DIMS);
    for (size_t i = 0; i < v->u.seq.n; i++) {
        const pk_value *d = v->u.seq.items[i];
        if (d->kind != PK_INT)
            return bad(p, CMCR_EFORMAT, "tensor %s holds %s, not an int", what, pk_kind_desc(d->kind));
        if (d->u.i < 0)
            return bad(p, CMCR_EFORMAT, "tensor %s has a negative entry (%lld)", what, (long long)d->u.i);
        dims[i] = d->u.i;
    }
    *n = (int)v->u.seq.n;
    return CMCR_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata]) */
static cmcr_status rebuild_tensor(parser *p, const pk_value *args, pk_value **out)
{
    size_t n = args->u.seq.n;
    pk_value *const *a = args->u.seq.items;
    if (n != 6 && n != 7)
        return bad(p, CMCR_EFORMAT, "_rebuild_tensor_v2 takes 6 or 7 arguments, not %zu", n);
    if (pk_object_is_tensor(a[0])) return new_object(p, a[0]->u.global.name, out); /* a dtype not read */
    cmcr_status st = want(p, a[0], PK_STORAGE, "the tensor's storage");
    if (!st) st = want(p, a[1], PK_INT, "the storage offset");
    if (!st && a[1]->u.i < 0) return bad(p, CMCR_EFORMAT, "negative storage offset");
    if (!st) st = want(p, a[4], PK_BOOL, "requires_grad");
    if (!st) st = want(p, a[5], PK_DICT, "the backward hooks");
    if (!st && n == 7 && a[6]->kind != PK_NONE) st = want(p, a[6], PK_DICT, "the tensor metadata");
    pk_tensor *t = NULL;
    if (!st) st = new_value(p, PK_TENSOR, out);
    if (!st) st = alloc(p, sizeof *t, (void **)&t);
    if (st) return st;
    (*out)->u.tensor = t;
    int nstride = 0;
    t->storage = &a[0]->u.storage;
    t->offset = a[1]->u.i;
    st = int_tuple(p, a[2], "size", t->size, &t->ndim);
    if (!st) st = int_tuple(p, a[3], "stride", t->stride, &nstride);
    if (!st && nstride != t->ndim)
        return bad(p, CMCR_EFORMAT, "tensor has %d sizes but %d strides", t->ndim, nstride);
    return st;
}

/* ------------------------------------------------------------------ numpy mode */

static bool is_str(const pk_value *v, const char *lit)
{
    return v->kind == PK_STR && same(v->u.str.s, v->u.str.len, lit);
}

static cmcr_status new_array(parser *p, pk_value **out)
{
    cmcr_status st = new_value(p, PK_NDARRAY, out);
    if (!st) st = alloc(p, sizeof(pk_ndarray), (void **)&(*out)->u.array);
    return st;
}

/* _reconstruct(numpy.ndarray, (0,), b'b'): an empty array that BUILD fills in. */
static cmcr_status np_reconstruct(parser *p, const pk_value *fn, const pk_value *args, pk_value **out)
{
    pk_value *const *a = args->u.seq.items;
    bool ok = args->u.seq.n == 3 && a[0]->kind == PK_GLOBAL && a[0]->u.global.which == PG_NP_NDARRAY &&
              a[1]->kind == PK_TUPLE && a[2]->kind == PK_BYTES;
    return ok ? new_array(p, out) : new_object(p, fn->u.global.name, out);
}

/* numpy.dtype(code, False, True): the code kept, the byte order set by BUILD. */
static cmcr_status np_dtype(parser *p, const pk_value *fn, const pk_value *args, pk_value **out)
{
    pk_value *const *a = args->u.seq.items;
    bool ok = args->u.seq.n == 3 && a[0]->kind == PK_STR && a[0]->u.str.len >= 1 &&
              a[0]->u.str.len < sizeof((pk_dtype *)0)->code && !memchr(a[0]->u.str.s, 0, a[0]->u.str.len) &&
              a[1]->kind == PK_BOOL && a[2]->kind == PK_BOOL;
    if (!ok) return new_object(p, fn->u.global.name, out);
    cmcr_status st = new_value(p, PK_DTYPE, out);
    if (st) return st;
    memcpy((*out)->u.dtype.code, a[0]->u.str.s, a[0]->u.str.len);
    (*out)->u.dtype.order = '=';
    return CMCR_OK;
}

/* _frombuffer(data, dtype, shape, order) (protocol 5): a complete array. */
static cmcr_status np_frombuffer(parser *p, const pk_value *fn, const pk_value *args, pk_value **out)
{
    pk_value *const *a = args->u.seq.items;
    bool ok = args->u.seq.n == 4 && a[0]->kind == PK_BYTES && a[1]->kind == PK_DTYPE &&
              a[2]->kind == PK_TUPLE && (is_str(a[3], "C") || is_str(a[3], "F"));
    if (!ok) return new_object(p, fn->u.global.name, out);
    cmcr_status st = new_array(p, out);
    pk_ndarray *arr = st ? NULL : (*out)->u.array;
    if (!st) st = int_tuple(p, a[2], "shape", arr->shape, &arr->ndim);
    if (st) return st;
    arr->built = true;
    arr->fortran = is_str(a[3], "F");
    arr->dtype = a[1];
    arr->data = a[0];
    return CMCR_OK;
}

/* _codecs.encode(text, 'latin1'): protocol 2 writes bytes as the str of their code points,
 * UTF-8 encoded. Decoded here back to the bytes, each code point below 256. */
static cmcr_status np_latin1(parser *p, const pk_value *fn, const pk_value *args, pk_value **out)
{
    pk_value *const *a = args->u.seq.items;
    if (args->u.seq.n != 2 || a[0]->kind != PK_STR || !(is_str(a[1], "latin1") || is_str(a[1], "latin-1")))
        return new_object(p, fn->u.global.name, out);
    const unsigned char *s = (const unsigned char *)a[0]->u.str.s;
    size_t n = a[0]->u.str.len, k = 0;
    unsigned char *b;
    cmcr_status st = new_value(p, PK_BYTES, out);
    if (!st) st = alloc(p, n + 1, (void **)&b);
    for (size_t i = 0; !st && i < n; i++) {
        if (s[i] < 0x80) b[k++] = s[i];
        else if ((s[i] == 0xc2 || s[i] == 0xc3) && i + 1 < n && (s[i + 1] & 0xc0) == 0x80)
            b[k++] = (unsigned char)(((s[i] & 0x03) << 6) | (s[i + 1] & 0x3f)), i++;
        else return bad(p, CMCR_EFORMAT, "_codecs.encode(..., 'latin1') of text with a character above U+00FF");
    }
    if (st) return st;
    (*out)->u.str.s = (const char *)b;
    (*out)->u.str.len = k;
    return CMCR_OK;
}

/* BUILD on a dtype: the state (3, byteorder, ...) gives its byte order. */
static cmcr_status np_build_dtype(parser *p, pk_value *dt, const pk_value *state)
{
    const pk_value *o = state->kind == PK_TUPLE && state->u.seq.n >= 2 ? state->u.seq.items[1] : NULL;
    if (!o || o->kind != PK_STR || o->u.str.len != 1 || !strchr("<>|=", o->u.str.s[0]))
        return bad(p, CMCR_EFORMAT, "the numpy dtype's state is not (version, byte order '<', '>', '|' or '=', ...)");
    dt->u.dtype.order = o->u.str.s[0];
    return CMCR_OK;
}

/* BUILD on an array: the state (version, shape, dtype, is_fortran, data). */
static cmcr_status np_build_array(parser *p, pk_value *arr, const pk_value *state)
{
    pk_value *const *a = state->kind == PK_TUPLE ? state->u.seq.items : NULL;
    if (!a || state->u.seq.n != 5 || a[0]->kind != PK_INT || a[2]->kind != PK_DTYPE || a[3]->kind != PK_BOOL)
        return bad(p, CMCR_EFORMAT, "the numpy array's state is not (version, shape, dtype, is_fortran, data)");
    pk_ndarray *x = arr->u.array;
    cmcr_status st = int_tuple(p, a[1], "shape", x->shape, &x->ndim);
    if (st) return st;
    x->built = true;
    x->dtype = a[2];
    x->fortran = a[3]->u.b;
    x->data = a[4];
    return CMCR_OK;
}

static cmcr_status apply(parser *p, const pk_value *fn, const pk_value *args, pk_value **out)
{
    if (fn->kind != PK_GLOBAL)
        return bad(p, CMCR_EUNSUPPORTED, "REDUCE applies %s; only allowed globals can be called",
                   pk_kind_desc(fn->kind));
    cmcr_status st = want(p, args, PK_TUPLE, "the REDUCE argument");
    if (st) return st;
    switch (fn->u.global.which) {
    case PG_ORDERED_DICT:
        if (args->u.seq.n != 0)
            return bad(p, CMCR_EUNSUPPORTED, "OrderedDict is called with arguments");
        return new_value(p, PK_DICT, out);
    case PG_REBUILD_TENSOR: return rebuild_tensor(p, args, out);
    case PG_REBUILD_PARAMETER:
        if (args->u.seq.n != 3)
            return bad(p, CMCR_EFORMAT, "_rebuild_parameter takes 3 arguments, not %zu", args->u.seq.n);
        if (pk_object_is_tensor(args->u.seq.items[0])) return *out = args->u.seq.items[0], CMCR_OK;
        st = want(p, args->u.seq.items[0], PK_TENSOR, "the parameter's data");
        *out = args->u.seq.items[0];
        return st;
    case PG_STORAGE:
        return bad(p, CMCR_EUNSUPPORTED, "REDUCE would call %s, which is not allowed",
                   pk_storage_name(fn->u.global.dtype));
    case PG_OPAQUE:
    case PG_NP_NDARRAY: return new_object(p, fn->u.global.name, out);
    case PG_NP_RECONSTRUCT: return np_reconstruct(p, fn, args, out);
    case PG_NP_DTYPE: return np_dtype(p, fn, args, out);
    case PG_NP_FROMBUFFER: return np_frombuffer(p, fn, args, out);
    case PG_CODECS_ENCODE: return np_latin1(p, fn, args, out);
    }
    return bad(p, CMCR_EFORMAT, "REDUCE on an unknown global");
}

/* Storage keys name zip entries: torch writes decimal numbers; allow a few more. */
static bool plain_key(const char *s, size_t n)
{
    if (n == 0 || n > 255) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/* persistent id ('storage', torch.XStorage, key, location, numel) */
static cmcr_status persistent_load(parser *p, const pk_value *pid, pk_value **out)
{
    if (pid->kind != PK_TUPLE)
        return bad(p, CMCR_EFORMAT, "persistent id is %s, not a tuple", pk_kind_desc(pid->kind));
    if (pid->u.seq.n != 5)
        return bad(p, CMCR_EFORMAT,
                   "persistent id has %zu items, not 5 (storage, type, key, location, numel)",
                   pid->u.seq.n);
    pk_value *const *a = pid->u.seq.items;
    if (a[0]->kind == PK_STR && strcmp(a[0]->u.str.s, "storage") == 0 && a[1]->kind == PK_GLOBAL &&
        a[1]->u.global.which == PG_OPAQUE) /* a storage of a dtype cmcr does not read: never read */
        return new_object(p, a[1]->u.global.name, out);
    if (a[0]->kind != PK_STR ||
        strcmp(a[0]->u.str.s, "storage") != 0 || a[1]->kind != PK_GLOBAL ||
        a[1]->u.global.which != PG_STORAGE || a[2]->kind != PK_STR || a[3]->kind != PK_STR ||
        a[4]->kind != PK_INT)
        return bad(p, CMCR_EFORMAT,
                   "persistent id is not a ('storage', type, key, location, numel) tuple");
    if (!plain_key(a[2]->u.str.s, a[2]->u.str.len))
        return bad(p, CMCR_EFORMAT, "storage key is empty, longer than 255 bytes or has characters "
                                    "other than letters, digits, '_', '.' and '-'");
    if (a[4]->u.i < 0) return bad(p, CMCR_EFORMAT, "storage has a negative size");
    cmcr_status st = new_value(p, PK_STORAGE, out);
    if (st) return st;
    pk_storage *s = &(*out)->u.storage;
    s->dtype = a[1]->u.global.dtype;
    s->key = a[2]->u.str.s;
    s->location = a[3]->u.str.s;
    s->numel = a[4]->u.i;
    return CMCR_OK;
}

/* ------------------------------------------------------------------ memo */

static cmcr_status memo_put(parser *p, uint64_t idx)
{
    pk_value *v;
    if (idx >= PK_MAX_MEMO)
        return bad(p, CMCR_ENOMEM, "memo index %llu is beyond the limit of %d",
                   (unsigned long long)idx, PK_MAX_MEMO);
    cmcr_status st = top(p, &v);
    if (st) return st;
    if (idx >= p->memo_cap) {
        size_t cap = p->memo_cap ? p->memo_cap * 2 : 64;
        if (cap <= idx) cap = (size_t)idx + 1;
        if (cap > PK_MAX_MEMO) cap = PK_MAX_MEMO;
        pk_value **memo;
        st = alloc(p, cap * sizeof *memo, (void **)&memo);
        if (st) return st;
        if (p->memo_cap) memcpy(memo, p->memo, p->memo_cap * sizeof *memo);
        p->memo = memo;
        p->memo_cap = cap;
    }
    if (!p->memo[idx]) p->memo_count++;
    p->memo[idx] = v;
    return CMCR_OK;
}

static cmcr_status memo_get(parser *p, uint64_t idx)
{
    if (idx >= p->memo_cap || !p->memo[idx])
        return bad(p, CMCR_EFORMAT, "%s reads memo slot %llu, which was never set", p->op_name,
                   (unsigned long long)idx);
    return push(p, p->memo[idx]);
}

/* ------------------------------------------------------------------ opcode handlers */

typedef cmcr_status (*op_fn)(parser *p);

static cmcr_status op_proto(parser *p)
{
    uint64_t v;
    cmcr_status st = read_uint(p, 1, &v);
    if (!st && (v < 2 || v > 5))
        return bad(p, CMCR_EUNSUPPORTED, "pickle protocol %llu is not supported (2 to 5)",
                   (unsigned long long)v);
    return st;
}

static cmcr_status op_frame(parser *p)
{
    uint64_t n;
    cmcr_status st = read_uint(p, 8, &n);
    if (!st && n > p->len - p->pos)
        return bad(p, CMCR_EFORMAT, "truncated: FRAME of %llu bytes, %zu left", (unsigned long long)n,
                   p->len - p->pos);
    return st;
}

static cmcr_status op_stop(parser *p) { return pop(p, &p->result); }

static cmcr_status op_mark(parser *p)
{
    if (p->nmarks >= PK_MAX_MARKS)
        return bad(p, CMCR_ENOMEM, "MARKs nested more than %d deep", PK_MAX_MARKS);
    p->marks[p->nmarks++] = p->sp;
    return CMCR_OK;
}

static cmcr_status op_pop(parser *p)
{
    if (p->sp > floor_of_stack(p)) p->sp--;
    else if (p->nmarks) p->nmarks--;
    else return bad(p, CMCR_EFORMAT, "POP on an empty stack");
    return CMCR_OK;
}

static cmcr_status op_pop_mark(parser *p)
{
    size_t start;
    cmcr_status st = pop_mark(p, &start);
    if (!st) p->sp = start;
    return st;
}

static cmcr_status push_new(parser *p, pk_kind kind)
{
    pk_value *v;
    cmcr_status st = new_value(p, kind, &v);
    return st ? st : push(p, v);
}

static cmcr_status op_empty_tuple(parser *p) { return push_new(p, PK_TUPLE); }
static cmcr_status op_empty_list(parser *p) { return push_new(p, PK_LIST); }
static cmcr_status op_empty_dict(parser *p) { return push_new(p, PK_DICT); }
static cmcr_status op_none(parser *p) { return push_new(p, PK_NONE); }

static cmcr_status marked(parser *p, pk_kind kind)
{
    size_t start;
    pk_value *v;
    cmcr_status st = pop_mark(p, &start);
    if (!st && kind == PK_DICT && (p->sp - start) % 2)
        return bad(p, CMCR_EFORMAT, "DICT with an odd number of items");
    if (!st) st = collect(p, kind, start, &v);
    return st ? st : push(p, v);
}

static cmcr_status op_tuple(parser *p) { return marked(p, PK_TUPLE); }
static cmcr_status op_list(parser *p) { return marked(p, PK_LIST); }
static cmcr_status op_dict(parser *p) { return marked(p, PK_DICT); }

static cmcr_status small_tuple(parser *p, size_t n)
{
    pk_value *v;
    if (p->sp - floor_of_stack(p) < n)
        return bad(p, CMCR_EFORMAT, "%s needs %zu values on the stack", p->op_name, n);
    cmcr_status st = collect(p, PK_TUPLE, p->sp - n, &v);
    return st ? st : push(p, v);
}

static cmcr_status op_tuple1(parser *p) { return small_tuple(p, 1); }
static cmcr_status op_tuple2(parser *p) { return small_tuple(p, 2); }
static cmcr_status op_tuple3(parser *p) { return small_tuple(p, 3); }

static cmcr_status op_append(parser *p)
{
    pk_value *item, *list;
    cmcr_status st = pop(p, &item);
    if (!st) st = top(p, &list);
    if (!st && list->kind == PK_OBJECT) return CMCR_OK; /* a list subclass: its items are dropped */
    if (!st) st = want(p, list, PK_LIST, "the APPEND target");
    return st ? st : seq_add(p, list, item);
}

static cmcr_status op_setitem(parser *p)
{
    pk_value *key, *val, *dict;
    cmcr_status st = pop(p, &val);
    if (!st) st = pop(p, &key);
    if (!st) st = top(p, &dict);
    if (!st && dict->kind == PK_OBJECT) return CMCR_OK; /* a dict subclass: its items are dropped */
    if (!st) st = want(p, dict, PK_DICT, "the SETITEM target");
    if (!st) st = seq_add(p, dict, key);
    return st ? st : seq_add(p, dict, val);
}

/* APPENDS / SETITEMS: add the marked items to the container below the mark. */
static cmcr_status add_marked(parser *p, pk_kind kind)
{
    size_t start;
    cmcr_status st = pop_mark(p, &start);
    if (st) return st;
    if (start <= floor_of_stack(p)) return bad(p, CMCR_EFORMAT, "%s has no target", p->op_name);
    pk_value *target = p->stack[start - 1];
    if (target->kind == PK_OBJECT) { /* a dict or list subclass (defaultdict, ...): items dropped */
        p->sp = start;
        return CMCR_OK;
    }
    st = want(p, target, kind, kind == PK_DICT ? "the SETITEMS target" : "the APPENDS target");
    if (!st && kind == PK_DICT && (p->sp - start) % 2)
        return bad(p, CMCR_EFORMAT, "SETITEMS with an odd number of items");
    for (size_t i = start; !st && i < p->sp; i++) st = seq_add(p, target, p->stack[i]);
    p->sp = start;
    return st;
}

static cmcr_status op_appends(parser *p) { return add_marked(p, PK_LIST); }
static cmcr_status op_setitems(parser *p) { return add_marked(p, PK_DICT); }

static cmcr_status push_int(parser *p, int64_t i)
{
    pk_value *v;
    cmcr_status st = new_value(p, PK_INT, &v);
    if (st) return st;
    v->u.i = i;
    return push(p, v);
}

static cmcr_status op_binint(parser *p)
{
    uint64_t v;
    cmcr_status st = read_uint(p, 4, &v);
    return st ? st : push_int(p, (int64_t)(int32_t)(uint32_t)v);
}

static cmcr_status op_binint1(parser *p)
{
    uint64_t v;
    cmcr_status st = read_uint(p, 1, &v);
    return st ? st : push_int(p, (int64_t)v);
}

static cmcr_status op_binint2(parser *p)
{
    uint64_t v;
    cmcr_status st = read_uint(p, 2, &v);
    return st ? st : push_int(p, (int64_t)v);
}

static cmcr_status op_long1(parser *p)
{
    uint64_t n, v = 0;
    const unsigned char *b;
    cmcr_status st = read_uint(p, 1, &n);
    if (!st && n > 8)
        return bad(p, CMCR_EUNSUPPORTED, "integer of %llu bytes is too large", (unsigned long long)n);
    if (!st) st = take(p, n, &b);
    if (st) return st;
    v = le_bytes(b, (int)n);
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
    int64_t i;
    memcpy(&i, &v, sizeof i);
    return push_int(p, i);
}

static cmcr_status push_bool(parser *p, bool b)
{
    pk_value *v;
    cmcr_status st = new_value(p, PK_BOOL, &v);
    if (st) return st;
    v->u.b = b;
    return push(p, v);
}

static cmcr_status op_newtrue(parser *p) { return push_bool(p, true); }
static cmcr_status op_newfalse(parser *p) { return push_bool(p, false); }

static cmcr_status op_binfloat(parser *p)
{
    const unsigned char *b;
    pk_value *v;
    cmcr_status st = take(p, 8, &b);
    if (!st) st = new_value(p, PK_FLOAT, &v);
    if (st) return st;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits = (bits << 8) | b[i]; /* big-endian */
    memcpy(&v->u.f, &bits, sizeof v->u.f);
    return push(p, v);
}

static cmcr_status push_sized(parser *p, pk_kind kind, uint64_t n)
{
    const unsigned char *b;
    pk_value *v;
    char *s;
    cmcr_status st = take(p, n, &b);
    if (!st) st = new_value(p, kind, &v);
    if (!st) st = alloc(p, (size_t)n + 1, (void **)&s);
    if (st) return st;
    memcpy(s, b, (size_t)n);
    v->u.str.s = s;
    v->u.str.len = (size_t)n;
    return push(p, v);
}

static cmcr_status push_string(parser *p, uint64_t n) { return push_sized(p, PK_STR, n); }

/* A string whose length is in the next len_bytes bytes. */
static cmcr_status sized_string(parser *p, int len_bytes)
{
    uint64_t n;
    cmcr_status st = read_uint(p, len_bytes, &n);
    return st ? st : push_string(p, n);
}

/* A bytes object (an optimizer's or argparse.Namespace's, beside a state_dict). */
static cmcr_status sized_bytes(parser *p, int len_bytes)
{
    uint64_t n;
    cmcr_status st = read_uint(p, len_bytes, &n);
    return st ? st : push_sized(p, PK_BYTES, n);
}

static cmcr_status op_short_bytes(parser *p) { return sized_bytes(p, 1); }
static cmcr_status op_bytes4(parser *p) { return sized_bytes(p, 4); }
static cmcr_status op_bytes8(parser *p) { return sized_bytes(p, 8); }

/* BYTEARRAY8: protocol 5's in-band numpy buffer; refused outside numpy mode, as before. */
static cmcr_status op_bytearray8(parser *p)
{
    if (!p->numpy)
        return bad(p, CMCR_EUNSUPPORTED, "pickle opcode BYTEARRAY8 (0x96) is not allowed in a checkpoint");
    return sized_bytes(p, 8);
}

static cmcr_status op_short_str(parser *p) { return sized_string(p, 1); }
static cmcr_status op_str4(parser *p) { return sized_string(p, 4); }
static cmcr_status op_str8(parser *p) { return sized_string(p, 8); }

static cmcr_status op_binstring(parser *p)
{
    uint64_t n;
    cmcr_status st = read_uint(p, 4, &n);
    if (!st && (n & 0x80000000u)) return bad(p, CMCR_EFORMAT, "BINSTRING with a negative length");
    return st ? st : push_string(p, n);
}

static cmcr_status op_binput(parser *p)
{
    uint64_t i;
    cmcr_status st = read_uint(p, 1, &i);
    return st ? st : memo_put(p, i);
}

static cmcr_status op_long_binput(parser *p)
{
    uint64_t i;
    cmcr_status st = read_uint(p, 4, &i);
    return st ? st : memo_put(p, i);
}

static cmcr_status op_memoize(parser *p) { return memo_put(p, p->memo_count); }

static cmcr_status op_binget(parser *p)
{
    uint64_t i;
    cmcr_status st = read_uint(p, 1, &i);
    return st ? st : memo_get(p, i);
}

static cmcr_status op_long_binget(parser *p)
{
    uint64_t i;
    cmcr_status st = read_uint(p, 4, &i);
    return st ? st : memo_get(p, i);
}

static cmcr_status read_line(parser *p, const char **s, size_t *n)
{
    const unsigned char *start = p->buf + p->pos;
    const unsigned char *nl = memchr(start, '\n', p->len - p->pos);
    *s = NULL;
    *n = 0;
    if (!nl) return bad(p, CMCR_EFORMAT, "truncated: GLOBAL name without a newline");
    *s = (const char *)start;
    *n = (size_t)(nl - start);
    p->pos += *n + 1;
    return CMCR_OK;
}

static cmcr_status op_global(parser *p)
{
    const char *mod, *name;
    size_t mlen, nlen;
    cmcr_status st = read_line(p, &mod, &mlen);
    if (!st) st = read_line(p, &name, &nlen);
    return st ? st : push_global(p, mod, mlen, name, nlen);
}

static cmcr_status op_stack_global(parser *p)
{
    pk_value *mod, *name;
    cmcr_status st = pop(p, &name);
    if (!st) st = pop(p, &mod);
    if (!st) st = want(p, mod, PK_STR, "the STACK_GLOBAL module");
    if (!st) st = want(p, name, PK_STR, "the STACK_GLOBAL name");
    return st ? st : push_global(p, mod->u.str.s, mod->u.str.len, name->u.str.s, name->u.str.len);
}

static cmcr_status op_binpersid(parser *p)
{
    pk_value *pid, *v;
    cmcr_status st = pop(p, &pid);
    if (!st) st = persistent_load(p, pid, &v);
    return st ? st : push(p, v);
}

static cmcr_status op_reduce(parser *p)
{
    pk_value *fn, *args, *v;
    cmcr_status st = pop(p, &args);
    if (!st) st = pop(p, &fn);
    if (!st) st = apply(p, fn, args, &v);
    return st ? st : push(p, v);
}

static cmcr_status op_build(parser *p)
{
    pk_value *state, *obj;
    cmcr_status st = pop(p, &state);
    if (!st) st = top(p, &obj);
    if (st) return st;
    if (obj->kind == PK_DTYPE) return np_build_dtype(p, obj, state);
    if (obj->kind == PK_NDARRAY) return np_build_array(p, obj, state);
    if (obj->kind != PK_DICT && obj->kind != PK_OBJECT)
        return bad(p, CMCR_EUNSUPPORTED, "BUILD on %s (only dicts and opaque objects may carry state)",
                   pk_kind_desc(obj->kind));
    return st; /* the state (torch's _metadata, an object's attributes) is ignored */
}

/* NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args[, **kwargs]), allowed only on an opaque global:
 * it makes a placeholder, and nothing is constructed. */
static cmcr_status new_object_of(parser *p, bool kwargs)
{
    pk_value *kw = NULL, *args, *cls, *v;
    cmcr_status st = kwargs ? pop(p, &kw) : CMCR_OK;
    if (!st) st = pop(p, &args);
    if (!st) st = pop(p, &cls);
    if (st) return st;
    if (cls->kind != PK_GLOBAL || cls->u.global.which != PG_OPAQUE)
        return bad(p, CMCR_EUNSUPPORTED, "%s on %s (only other classes' objects are kept, as opaque placeholders)",
                   p->op_name, cls->kind == PK_GLOBAL ? "an allowed global" : pk_kind_desc(cls->kind));
    st = new_object(p, cls->u.global.name, &v);
    return st ? st : push(p, v);
}

static cmcr_status op_newobj(parser *p) { return new_object_of(p, false); }
static cmcr_status op_newobj_ex(parser *p) { return new_object_of(p, true); }

/* Every pickle opcode by byte; fn NULL = known but refused. */
static const struct opinfo {
    const char *name;
    op_fn fn;
} OPS[256] = {
    ['('] = {"MARK", op_mark}, ['.'] = {"STOP", op_stop}, ['0'] = {"POP", op_pop},
    ['1'] = {"POP_MARK", op_pop_mark}, ['2'] = {"DUP", NULL}, ['F'] = {"FLOAT", NULL},
    ['I'] = {"INT", NULL}, ['J'] = {"BININT", op_binint}, ['K'] = {"BININT1", op_binint1},
    ['L'] = {"LONG", NULL}, ['M'] = {"BININT2", op_binint2}, ['N'] = {"NONE", op_none},
    ['P'] = {"PERSID", NULL}, ['Q'] = {"BINPERSID", op_binpersid}, ['R'] = {"REDUCE", op_reduce},
    ['S'] = {"STRING", NULL}, ['T'] = {"BINSTRING", op_binstring}, ['U'] = {"SHORT_BINSTRING", op_short_str},
    ['V'] = {"UNICODE", NULL}, ['X'] = {"BINUNICODE", op_str4}, ['a'] = {"APPEND", op_append},
    ['b'] = {"BUILD", op_build}, ['c'] = {"GLOBAL", op_global}, ['d'] = {"DICT", op_dict},
    ['}'] = {"EMPTY_DICT", op_empty_dict}, ['e'] = {"APPENDS", op_appends}, ['g'] = {"GET", NULL},
    ['h'] = {"BINGET", op_binget}, ['i'] = {"INST", NULL}, ['j'] = {"LONG_BINGET", op_long_binget},
    ['l'] = {"LIST", op_list}, [']'] = {"EMPTY_LIST", op_empty_list}, ['o'] = {"OBJ", NULL},
    ['p'] = {"PUT", NULL}, ['q'] = {"BINPUT", op_binput}, ['r'] = {"LONG_BINPUT", op_long_binput},
    ['s'] = {"SETITEM", op_setitem}, ['t'] = {"TUPLE", op_tuple}, [')'] = {"EMPTY_TUPLE", op_empty_tuple},
    ['u'] = {"SETITEMS", op_setitems}, ['G'] = {"BINFLOAT", op_binfloat},
    [0x80] = {"PROTO", op_proto}, [0x81] = {"NEWOBJ", op_newobj}, [0x82] = {"EXT1", NULL},
    [0x83] = {"EXT2", NULL}, [0x84] = {"EXT4", NULL}, [0x85] = {"TUPLE1", op_tuple1},
    [0x86] = {"TUPLE2", op_tuple2}, [0x87] = {"TUPLE3", op_tuple3}, [0x88] = {"NEWTRUE", op_newtrue},
    [0x89] = {"NEWFALSE", op_newfalse}, [0x8a] = {"LONG1", op_long1}, [0x8b] = {"LONG4", NULL},
    ['B'] = {"BINBYTES", op_bytes4}, ['C'] = {"SHORT_BINBYTES", op_short_bytes},
    [0x8c] = {"SHORT_BINUNICODE", op_short_str}, [0x8d] = {"BINUNICODE8", op_str8},
    [0x8e] = {"BINBYTES8", op_bytes8}, [0x8f] = {"EMPTY_SET", NULL}, [0x90] = {"ADDITEMS", NULL},
    [0x91] = {"FROZENSET", NULL}, [0x92] = {"NEWOBJ_EX", op_newobj_ex}, [0x93] = {"STACK_GLOBAL", op_stack_global},
    [0x94] = {"MEMOIZE", op_memoize}, [0x95] = {"FRAME", op_frame}, [0x96] = {"BYTEARRAY8", op_bytearray8},
    [0x97] = {"NEXT_BUFFER", NULL}, [0x98] = {"READONLY_BUFFER", NULL},
};

/* ------------------------------------------------------------------ driver */

static cmcr_status step(parser *p)
{
    if (p->pos >= p->len) {
        p->op_pos = p->pos;
        return bad(p, CMCR_EFORMAT, "the pickle ends without a STOP opcode (file truncated?)");
    }
    p->op_pos = p->pos;
    unsigned char op = p->buf[p->pos++];
    const struct opinfo *info = &OPS[op];
    if (!info->name) return bad(p, CMCR_EFORMAT, "byte 0x%02x is not a pickle opcode", op);
    p->op_name = info->name;
    if (!info->fn)
        return bad(p, CMCR_EUNSUPPORTED, "pickle opcode %s (0x%02x) is not allowed in a checkpoint",
                   info->name, op);
    return info->fn(p);
}

static cmcr_status run(parser *p)
{
    cmcr_status st = alloc(p, PK_MAX_STACK * sizeof *p->stack, (void **)&p->stack);
    if (!st) st = alloc(p, PK_MAX_MARKS * sizeof *p->marks, (void **)&p->marks);
    while (!st && !p->result) st = step(p);
    return st;
}

static cmcr_status parse_mode(const char *origin, const unsigned char *buf, size_t len, bool numpy,
                              pk_arena **arena, pk_value **root)
{
    *arena = NULL;
    *root = NULL;
    parser p;
    memset(&p, 0, sizeof p);
    p.origin = origin;
    p.buf = buf;
    p.len = len;
    p.op_name = "pickle";
    p.numpy = numpy;
    p.part = numpy ? "pickle" : "data.pkl";
    p.arena = calloc(1, sizeof *p.arena);
    if (!p.arena) return core_fail(CMCR_ENOMEM, "%s: out of memory reading the pickle", origin);
    cmcr_status st = run(&p);
    if (st) {
        pk_free(p.arena);
        return st;
    }
    *arena = p.arena;
    *root = p.result;
    return CMCR_OK;
}

cmcr_status pk_parse(const char *origin, const unsigned char *buf, size_t len, pk_arena **arena,
                     pk_value **root)
{
    return parse_mode(origin, buf, len, false, arena, root);
}

cmcr_status pk_parse_numpy(const char *origin, const unsigned char *buf, size_t len, pk_arena **arena,
                           pk_value **root)
{
    return parse_mode(origin, buf, len, true, arena, root);
}
