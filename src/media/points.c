/* points.c - point clouds from .npy (plain, or the C-MCR demo's pickled dict), PLY and text.
 *
 * Everything is read from one buffer in memory, every count is checked against the bytes
 * that could hold it before anything is allocated for it, and nothing recurses. The pickled
 * dict goes through the safe unpickler (io/pickle.c, numpy mode): nothing in it is called. */
#define _GNU_SOURCE /* strtod_l, newlocale */
#include "media/points.h"
#include "io/io.h"
#include "io/pickle.h"
#include "runtime/file.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE_RULE "a point cloud is N x 3 (xyz) or N x 6 (xyz + rgb)"
#define PLY_MAX_HEADER (64 * 1024)
#define PLY_MAX_ELEMENTS 64
#define PLY_MAX_PROPS 256
#define TEXT_MAX_LINE 4096
#define NUM_MAX_CHARS 64

void points_free(point_cloud *pc)
{
    if (!pc) return;
    free(pc->v);
    memset(pc, 0, sizeof *pc);
}

void points_keep_xyz(point_cloud *pc)
{
    if (!pc || pc->width != 6) return;
    for (int64_t i = 0; i < pc->n; i++) memmove(pc->v + i * 3, pc->v + i * 6, 3 * sizeof(float));
    pc->width = 3;
}

/* ------------------------------------------------------------------ checks */

/* Every value finite and within POINTS_MAX_ABS (one comparison: NaN fails it too). */
static cmcr_status check_values(const float *v, int64_t n, int width, const char *name)
{
    for (int64_t i = 0; i < n * width; i++) {
        if (fabsf(v[i]) <= POINTS_MAX_ABS) continue;
        long long p = (long long)(i / width);
        int col = (int)(i % width);
        if (isfinite(v[i]))
            return core_fail(CMCR_EVALUE, "%s: point %lld (column %d) is %g, beyond the +-1e18 a point cloud may "
                             "hold (its squared distances would overflow float32)", name, p, col, (double)v[i]);
        return core_fail(CMCR_EVALUE, "%s: point %lld (column %d) is %s; a point cloud must be finite", name, p, col,
                         isnan(v[i]) ? "NaN" : "Inf (or beyond float32's range)");
    }
    return CMCR_OK;
}

static bool all_equal_xyz(const float *v, int64_t n, int width)
{
    for (int64_t i = 1; i < n; i++)
        for (int j = 0; j < 3; j++)
            if (v[i * width + j] != v[j]) return false;
    return true;
}

cmcr_status points_check(const float *v, int64_t n, int width, const char *name)
{
    if (width != 3 && width != 6)
        return core_fail(CMCR_ESHAPE, "%s: points are %d values wide; %s", name, width, SHAPE_RULE);
    if (n > POINTS_MAX)
        return core_fail(CMCR_ENOMEM, "%s: %lld points, more than the limit of %d", name, (long long)n, POINTS_MAX);
    if (n < POINTS_MIN)
        return core_fail(CMCR_ESHAPE, "%s: %lld points, fewer than the %d a point cloud needs", name, (long long)n,
                         POINTS_MIN);
    if (!v) return core_fail(CMCR_EINVAL, "%s: no point values", name);
    cmcr_status st = check_values(v, n, width, name);
    if (!st && all_equal_xyz(v, n, width))
        return core_fail(CMCR_EVALUE, "%s: all %lld points are at the same position; a point cloud needs extent",
                         name, (long long)n);
    return st;
}

/* A cloud of n x width floats (n <= POINTS_MAX, checked by the caller), or CMCR_ENOMEM. */
static cmcr_status new_cloud(int64_t n, int width, const char *name, point_cloud *out)
{
    size_t bytes = (size_t)n * (size_t)width * sizeof(float);
    out->v = core_xmalloc(bytes);
    if (!out->v) return core_fail(CMCR_ENOMEM, "%s: cannot allocate %zu bytes for %lld points", name, bytes, (long long)n);
    out->n = n;
    out->width = width;
    return CMCR_OK;
}

/* ------------------------------------------------------------------ numbers in text */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static bool is_num_char(char c)
{
    return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E';
}

/* tok (n bytes) as a finite number, in the "C" locale whatever the process's is: digits, one
 * sign, '.', an exponent. "nan", "inf", hex and anything else are refused (false). */
static bool parse_number(const char *tok, size_t n, double *out)
{
    char buf[NUM_MAX_CHARS + 1];
    if (n == 0 || n > NUM_MAX_CHARS) return false;
    for (size_t i = 0; i < n; i++)
        if (!is_num_char(tok[i])) return false;
    memcpy(buf, tok, n);
    buf[n] = '\0';
    pthread_once(&c_locale_once, make_c_locale);
    if (!c_locale) return false;
    char *end;
    double v = strtod_l(buf, &end, c_locale);
    if (end != buf + n || !isfinite(v)) return false;
    *out = v;
    return true;
}

/* Why tok is not a number, for a message: "'x' is not a number", "... not a finite number". */
static const char *number_problem(const char *tok, size_t n, char *msg, size_t cap)
{
    char shown[48];
    tensors_escape(shown, sizeof shown, tok, n);
    const char *why = "is not a number";
    if (strcasestr(shown, "nan") || strcasestr(shown, "inf")) why = "is not a finite number";
    else if (n > NUM_MAX_CHARS) why = "is longer than 64 characters";
    else {
        char buf[NUM_MAX_CHARS + 1], *end;
        memcpy(buf, tok, n);
        buf[n] = '\0';
        if (c_locale && strspn(buf, "0123456789.+-eE") == n && !isfinite(strtod_l(buf, &end, c_locale)) &&
            end == buf + n)
            why = "is out of range";
    }
    snprintf(msg, cap, "'%s' %s", shown, why);
    return msg;
}

/* ------------------------------------------------------------------ arrays (.npy and pickle) */

static void shape_text(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    if (ndim == 0) snprintf(buf, cap, "a 0-d array");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? " x " : "", (long long)shape[i]);
    if (ndim == 1 && k < cap) snprintf(buf + k, cap - k, " (1-D)");
}

/* An array of elem-byte little-endian floats (4 or 8) of the given shape as a cloud. what is
 * "the array" or "'xyz'" for messages. fortran: the data is in column-major order. */
static cmcr_status array_to_cloud(const char *name, const char *what, int elem, int ndim, const int64_t *shape,
                                  bool fortran, const unsigned char *data, uint64_t len, point_cloud *out)
{
    char dims[128];
    shape_text(shape, ndim, dims, sizeof dims);
    if (ndim != 2 || (shape[1] != 3 && shape[1] != 6))
        return core_fail(CMCR_ESHAPE, "%s: %s is %s: %s", name, what, dims, SHAPE_RULE);
    int64_t n = shape[0];
    int w = (int)shape[1];
    if (n > POINTS_MAX)
        return core_fail(CMCR_ENOMEM, "%s: %s has %lld points, more than the limit of %d", name, what, (long long)n,
                         POINTS_MAX);
    uint64_t need = (uint64_t)n * (uint64_t)w * (uint64_t)elem;
    if (len != need)
        return core_fail(CMCR_EFORMAT, "%s: %s%s: %s float%d needs %llu bytes of data but there are %llu", name,
                         len < need ? "truncated: " : "", what, dims, elem * 8, (unsigned long long)need,
                         (unsigned long long)len);
    cmcr_status st = new_cloud(n, w, name, out);
    for (int64_t i = 0; !st && i < n; i++) {
        for (int j = 0; j < w; j++) {
            uint64_t at = (uint64_t)(fortran ? (int64_t)j * n + i : i * w + j) * (uint64_t)elem;
            if (elem == 4) {
                memcpy(&out->v[i * w + j], data + at, 4);
            } else {
                double d;
                memcpy(&d, data + at, 8);
                out->v[i * w + j] = (float)d; /* round to nearest, as numpy's astype */
            }
        }
    }
    return st;
}

/* 4 or 8 for a little-endian float dtype ('<' + "f4"/"f8"), else a refusal. */
static cmcr_status float_size(const char *name, const char *what, char order, const char *code, int *elem)
{
    char shown[32];
    tensors_escape(shown, sizeof shown, code, strlen(code));
    bool f4 = strcmp(code, "f4") == 0, f8 = strcmp(code, "f8") == 0;
    if ((f4 || f8) && order == '>')
        return core_fail(CMCR_EUNSUPPORTED, "%s: %s is big-endian ('>%s'); convert with arr.astype('<%s')", name, what,
                         shown, shown);
    if ((f4 || f8) && order != '<' && order != '=')
        return core_fail(CMCR_EFORMAT, "%s: %s has dtype %s with byte order '%c'", name, what, shown, order);
    if (!f4 && !f8)
        return core_fail(CMCR_EUNSUPPORTED, "%s: %s has dtype '%c%s'; a point cloud is float32 ('<f4') or float64 ('<f8')",
                         name, what, order, shown);
    *elem = f4 ? 4 : 8;
    return CMCR_OK;
}

/* The dict inside the demo's 0-d object array (or a dict pickled as such). */
static cmcr_status pickled_dict(const char *name, const pk_value *root, const pk_value **dict)
{
    const pk_value *v = root;
    if (v->kind == PK_NDARRAY && v->u.array->built && v->u.array->ndim == 0 && v->u.array->data &&
        v->u.array->data->kind == PK_LIST && v->u.array->data->u.seq.n == 1)
        v = v->u.array->data->u.seq.items[0];
    if (v->kind == PK_DICT) return *dict = v, CMCR_OK;
    const char *cls = pk_object_name(v);
    return core_fail(CMCR_EFORMAT, "%s: the pickle holds %s%s%s, not a dict with 'xyz' (np.save of {'xyz': array, ...})",
                     name, pk_kind_desc(v->kind), cls ? " of class " : "", cls ? cls : "");
}

/* "'a', 'b', ..." : the dict's string keys, for the message that 'xyz' is missing. */
static void list_keys(const pk_value *dict, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i + 1 < dict->u.seq.n && k + 8 < cap; i += 2) {
        const pk_value *key = dict->u.seq.items[i];
        char shown[40];
        if (key->kind == PK_STR) tensors_escape(shown, sizeof shown, key->u.str.s, key->u.str.len);
        else snprintf(shown, sizeof shown, "<%s>", pk_kind_desc(key->kind));
        k += (size_t)snprintf(buf + k, cap - k, "%s'%s'", i ? ", " : "", shown);
    }
    if (dict->u.seq.n == 0) snprintf(buf, cap, "none");
}

static cmcr_status xyz_to_cloud(const char *name, const pk_value *x, point_cloud *out)
{
    const char *cls = pk_object_name(x);
    if (x->kind != PK_NDARRAY || !x->u.array->built)
        return core_fail(CMCR_EFORMAT, "%s: 'xyz' in the pickled dict is %s%s%s, not a numeric array", name,
                         x->kind == PK_NDARRAY ? "an empty numpy array" : pk_kind_desc(x->kind),
                         cls ? " of class " : "", cls ? cls : "");
    const pk_ndarray *a = x->u.array;
    int elem = 0;
    cmcr_status st = float_size(name, "'xyz'", a->dtype->u.dtype.order, a->dtype->u.dtype.code, &elem);
    if (st) return st;
    if (a->data->kind != PK_BYTES)
        return core_fail(CMCR_EFORMAT, "%s: 'xyz' holds %s, not the bytes of a float%d array", name,
                         pk_kind_desc(a->data->kind), elem * 8);
    return array_to_cloud(name, "'xyz'", elem, a->ndim, a->shape, a->fortran,
                          (const unsigned char *)a->data->u.str.s, a->data->u.str.len, out);
}

static cmcr_status read_pickled(const unsigned char *b, size_t len, const char *name, point_cloud *out)
{
    pk_arena *arena;
    pk_value *root;
    const pk_value *dict = NULL, *xyz = NULL;
    cmcr_status st = pk_parse_numpy(name, b, len, &arena, &root);
    if (st) return st;
    st = pickled_dict(name, root, &dict);
    for (size_t i = 0; !st && i + 1 < dict->u.seq.n; i += 2) { /* the last 'xyz' wins, as in Python */
        const pk_value *k = dict->u.seq.items[i];
        if (k->kind == PK_STR && k->u.str.len == 3 && memcmp(k->u.str.s, "xyz", 3) == 0) xyz = dict->u.seq.items[i + 1];
    }
    if (!st && !xyz) {
        char keys[256];
        list_keys(dict, keys, sizeof keys);
        st = core_fail(CMCR_EFORMAT, "%s: the pickled dict has no 'xyz' entry (keys: %s)", name, keys);
    }
    if (!st) st = xyz_to_cloud(name, xyz, out);
    pk_free(arena);
    return st;
}

static cmcr_status read_npy(const unsigned char *b, size_t len, const char *name, point_cloud *out)
{
    if (len < 10) return core_fail(CMCR_EFORMAT, "%s: truncated: file ends inside the .npy preamble", name);
    unsigned major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return core_fail(CMCR_EUNSUPPORTED, "%s: unknown .npy format version %u.%u (expected 1.0, 2.0 or 3.0)", name,
                         major, minor);
    size_t prefix = major == 1 ? 10 : 12;
    if (len < prefix) return core_fail(CMCR_EFORMAT, "%s: truncated: file ends inside the .npy preamble", name);
    uint64_t hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
    if (major > 1) hlen |= (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
    if (hlen > len - prefix)
        return core_fail(CMCR_EFORMAT, "%s: truncated: the .npy header of %llu bytes goes past the end of the file", name,
                         (unsigned long long)hlen);
    char descr[64] = "";
    bool fortran = false;
    int ndim = 0;
    int64_t shape[CMCR_MAX_DIMS] = {0};
    cmcr_status st = npy_parse_header_text(name, (const char *)b + prefix, (size_t)hlen, descr, sizeof descr, &fortran,
                                           &ndim, shape);
    if (st) return st;
    const unsigned char *data = b + prefix + hlen;
    size_t dlen = len - prefix - (size_t)hlen;
    if (strcmp(descr, "|O") == 0 || strcmp(descr, "O") == 0) {
        if (ndim != 0)
            return core_fail(CMCR_EUNSUPPORTED, "%s: an object array of more than one object; the demo's .npy is "
                             "one pickled dict (a 0-d object array)", name);
        return read_pickled(data, dlen, name, out);
    }
    int elem = 0;
    st = float_size(name, "the array", descr[0], descr[0] ? descr + 1 : descr, &elem);
    return st ? st : array_to_cloud(name, "the array", elem, ndim, shape, fortran, data, dlen, out);
}

/* ------------------------------------------------------------------ PLY */

enum { ROLE_OTHER = -1 }; /* roles 0..5: x y z red green blue */

typedef struct ply_type {
    const char *name, *alias;
    int size;
    bool is_int, is_signed;
} ply_type;

static const ply_type PLY_TYPES[] = {
    {"char", "int8", 1, true, true},      {"uchar", "uint8", 1, true, false},
    {"short", "int16", 2, true, true},    {"ushort", "uint16", 2, true, false},
    {"int", "int32", 4, true, true},      {"uint", "uint32", 4, true, false},
    {"float", "float32", 4, false, true}, {"double", "float64", 8, false, true},
};
#define N_PLY_TYPES (int)(sizeof PLY_TYPES / sizeof PLY_TYPES[0])

typedef struct ply_prop {
    int type;       /* index into PLY_TYPES: the value's, or a list's items' */
    int count_type; /* a list's count type, -1 for a scalar */
    int role;
} ply_prop;

typedef struct ply_element {
    char name[40];  /* escaped, for messages */
    uint64_t count;
    int nprops;
    ply_prop props[PLY_MAX_PROPS];
} ply_element;

typedef struct ply {
    const char *name;
    const unsigned char *b;
    size_t len, pos; /* pos: the next unread byte of the body */
    int format;      /* 0 ascii, 1 binary little-endian, 2 binary big-endian */
    int nelems, vertex;
    ply_element *elems;
    int line; /* header line, for messages */
} ply;

static cmcr_status ply_bad(const ply *p, const char *fmt, ...) CMCR_PRINTF(2, 3);

static cmcr_status ply_bad(const ply *p, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return core_fail(CMCR_EFORMAT, "%s: PLY header line %d: %s", p->name, p->line, msg);
}

/* The next whitespace-separated word of the header line [*s, end). */
static bool next_word(const char **s, const char *end, const char **w, size_t *n)
{
    while (*s < end && (**s == ' ' || **s == '\t')) (*s)++;
    *w = *s;
    while (*s < end && **s != ' ' && **s != '\t') (*s)++;
    *n = (size_t)(*s - *w);
    return *n > 0;
}

static bool word_is(const char *w, size_t n, const char *lit) { return strlen(lit) == n && memcmp(w, lit, n) == 0; }

static int type_index(const char *w, size_t n)
{
    for (int i = 0; i < N_PLY_TYPES; i++)
        if (word_is(w, n, PLY_TYPES[i].name) || word_is(w, n, PLY_TYPES[i].alias)) return i;
    return -1;
}

static int role_of(const char *w, size_t n)
{
    static const char *const roles[] = {"x", "y", "z", "red", "green", "blue"};
    for (int i = 0; i < 6; i++)
        if (word_is(w, n, roles[i])) return i;
    return ROLE_OTHER;
}

#define MAX_WORDS 6

/* The line's words (at most MAX_WORDS; *n = MAX_WORDS + 1 when there are more). */
static void split_words(const char *s, const char *end, const char **w, size_t *len, int *n)
{
    *n = 0;
    const char *word;
    size_t wl;
    while (next_word(&s, end, &word, &wl)) {
        if (*n == MAX_WORDS) {
            (*n)++;
            return;
        }
        w[*n] = word;
        len[(*n)++] = wl;
    }
}

/* A decimal count without sign or leading zeros, of at most 18 digits. */
static bool parse_count(const char *w, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 18 || (n > 1 && w[0] == '0')) return false;
    for (size_t i = 0; i < n; i++) {
        if (w[i] < '0' || w[i] > '9') return false;
        v = v * 10 + (uint64_t)(w[i] - '0');
    }
    *out = v;
    return true;
}

static cmcr_status ply_element_line(ply *p, const char **w, const size_t *len, int nw)
{
    if (nw != 3) return ply_bad(p, "expected 'element NAME COUNT'");
    if (p->nelems == PLY_MAX_ELEMENTS) return ply_bad(p, "more than %d elements", PLY_MAX_ELEMENTS);
    ply_element *e = &p->elems[p->nelems];
    memset(e, 0, sizeof *e);
    tensors_escape(e->name, sizeof e->name, w[1], len[1]);
    if (!parse_count(w[2], len[2], &e->count)) return ply_bad(p, "element '%s': the count is not a number", e->name);
    if (word_is(w[1], len[1], "vertex")) {
        if (p->vertex >= 0) return ply_bad(p, "a second 'element vertex'");
        p->vertex = p->nelems;
    }
    p->nelems++;
    return CMCR_OK;
}

static cmcr_status ply_property_line(ply *p, const char **w, const size_t *len, int nw)
{
    if (p->nelems == 0) return ply_bad(p, "a property before any element");
    ply_element *e = &p->elems[p->nelems - 1];
    if (e->nprops == PLY_MAX_PROPS) return ply_bad(p, "element '%s' has more than %d properties", e->name, PLY_MAX_PROPS);
    ply_prop *pr = &e->props[e->nprops];
    bool list = nw >= 2 && word_is(w[1], len[1], "list");
    if (list ? nw != 5 : nw != 3)
        return ply_bad(p, "expected 'property TYPE NAME' or 'property list COUNT_TYPE ITEM_TYPE NAME'");
    int t = type_index(w[nw - 2], len[nw - 2]);
    pr->count_type = list ? type_index(w[2], len[2]) : -1;
    if (t < 0 || (list && (pr->count_type < 0 || !PLY_TYPES[pr->count_type].is_int))) {
        char shown[40];
        const char *bad_type = t < 0 ? w[nw - 2] : w[2];
        size_t bad_len = t < 0 ? len[nw - 2] : len[2];
        return ply_bad(p, "unknown property type '%s'", tensors_escape(shown, sizeof shown, bad_type, bad_len));
    }
    pr->type = t;
    pr->role = list ? ROLE_OTHER : role_of(w[nw - 1], len[nw - 1]);
    if (p->nelems - 1 == p->vertex && pr->role != ROLE_OTHER)
        for (int i = 0; i < e->nprops; i++)
            if (e->props[i].role == pr->role) return ply_bad(p, "vertex property '%.*s' appears twice", (int)len[nw - 1], w[nw - 1]);
    if (p->nelems - 1 != p->vertex) pr->role = ROLE_OTHER;
    e->nprops++;
    return CMCR_OK;
}

static cmcr_status ply_format_line(ply *p, const char **w, const size_t *len, int nw)
{
    static const char *const formats[] = {"ascii", "binary_little_endian", "binary_big_endian"};
    if (p->format >= 0) return ply_bad(p, "a second 'format' line");
    if (nw != 3 || !word_is(w[2], len[2], "1.0")) return ply_bad(p, "expected 'format ascii|binary_little_endian|binary_big_endian 1.0'");
    for (int i = 0; i < 3; i++)
        if (word_is(w[1], len[1], formats[i])) p->format = i;
    if (p->format < 0) return ply_bad(p, "unknown format (expected ascii, binary_little_endian or binary_big_endian)");
    return CMCR_OK;
}

/* One header line [s, end) (without its line break). *done at end_header. */
static cmcr_status ply_header_line(ply *p, const char *s, const char *end, bool *done)
{
    const char *w[MAX_WORDS];
    size_t len[MAX_WORDS];
    int nw;
    for (const char *c = s; c < end; c++)
        if ((unsigned char)*c < 0x20 && *c != '\t') return ply_bad(p, "a control character in the header");
    split_words(s, end, w, len, &nw);
    if (nw == 0) return ply_bad(p, "an empty line");
    if (word_is(w[0], len[0], "comment") || word_is(w[0], len[0], "obj_info")) return CMCR_OK;
    if (p->line > 1 && p->format < 0 && !word_is(w[0], len[0], "format"))
        return ply_bad(p, "the 'format' line must come first");
    if (word_is(w[0], len[0], "format")) return ply_format_line(p, w, len, nw);
    if (word_is(w[0], len[0], "element")) return ply_element_line(p, w, len, nw);
    if (word_is(w[0], len[0], "property")) return ply_property_line(p, w, len, nw);
    if (word_is(w[0], len[0], "end_header") && nw == 1) return *done = true, CMCR_OK;
    char shown[40];
    return ply_bad(p, "unknown header keyword '%s'", tensors_escape(shown, sizeof shown, w[0], len[0]));
}

static cmcr_status ply_header(ply *p)
{
    bool done = false;
    size_t pos = 0;
    p->line = 0;
    while (!done) {
        size_t limit = p->len < PLY_MAX_HEADER ? p->len : PLY_MAX_HEADER;
        const unsigned char *nl = pos < limit ? memchr(p->b + pos, '\n', limit - pos) : NULL;
        p->line++;
        if (!nl && limit == PLY_MAX_HEADER)
            return core_fail(CMCR_EFORMAT, "%s: the PLY header is longer than %d bytes", p->name, PLY_MAX_HEADER);
        if (!nl) return core_fail(CMCR_EFORMAT, "%s: truncated: the file ends inside the PLY header", p->name);
        const char *s = (const char *)p->b + pos, *end = (const char *)nl;
        if (end > s && end[-1] == '\r') end--;
        pos = (size_t)(nl - p->b) + 1;
        cmcr_status st = p->line == 1 ? CMCR_OK : ply_header_line(p, s, end, &done);
        if (st) return st;
    }
    p->pos = pos;
    p->line = 0;
    if (p->format < 0) return core_fail(CMCR_EFORMAT, "%s: the PLY header has no 'format' line", p->name);
    if (p->vertex < 0) return core_fail(CMCR_EFORMAT, "%s: the PLY header has no 'element vertex'", p->name);
    return CMCR_OK;
}

/* ------------------------------------------------------------------ PLY body */

static cmcr_status body_bad(const ply *p, const char *fmt, ...) CMCR_PRINTF(2, 3);

static cmcr_status body_bad(const ply *p, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return core_fail(CMCR_EFORMAT, "%s: PLY %s at byte %zu: %s", p->name, p->format ? "data" : "text", p->pos, msg);
}

static double binary_value(const unsigned char *b, int type, bool big)
{
    unsigned char v[8];
    int n = PLY_TYPES[type].size;
    for (int i = 0; i < n; i++) v[i] = big ? b[n - 1 - i] : b[i];
    switch (type) {
    case 0: return (int8_t)v[0];
    case 1: return v[0];
    case 2: { int16_t x; memcpy(&x, v, 2); return x; }
    case 3: { uint16_t x; memcpy(&x, v, 2); return x; }
    case 4: { int32_t x; memcpy(&x, v, 4); return x; }
    case 5: { uint32_t x; memcpy(&x, v, 4); return x; }
    case 6: { float x; memcpy(&x, v, 4); return x; }
    default: { double x; memcpy(&x, v, 8); return x; }
    }
}

/* The next ASCII token as a value of type (integers must be whole and in range). */
static cmcr_status ascii_value(ply *p, int type, double *out)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->b[p->pos]) && p->b[p->pos]) p->pos++;
    size_t start = p->pos;
    while (p->pos < p->len && !strchr(" \t\r\n", p->b[p->pos]) && p->b[p->pos]) p->pos++;
    const char *tok = (const char *)p->b + start;
    size_t n = p->pos - start;
    if (n == 0 && p->pos < p->len) return body_bad(p, "a NUL byte");
    if (n == 0) return body_bad(p, "truncated: the file ends before the last element does");
    char msg[96];
    if (!parse_number(tok, n, out)) return p->pos = start, body_bad(p, "%s", number_problem(tok, n, msg, sizeof msg));
    const ply_type *t = &PLY_TYPES[type];
    double lo = t->is_signed ? -ldexp(1, 8 * t->size - 1) : 0, hi = ldexp(1, 8 * t->size - (t->is_signed ? 1 : 0)) - 1;
    if (t->is_int && (*out != floor(*out) || *out < lo || *out > hi))
        return p->pos = start, body_bad(p, "%.*s is not a %s", (int)n, tok, t->name);
    return CMCR_OK;
}

static cmcr_status next_value(ply *p, int type, double *out)
{
    if (p->format == 0) return ascii_value(p, type, out);
    size_t n = (size_t)PLY_TYPES[type].size;
    if (p->len - p->pos < n) return body_bad(p, "truncated: the file ends before the last element does");
    *out = binary_value(p->b + p->pos, type, p->format == 2);
    p->pos += n;
    return CMCR_OK;
}

/* A list's items, skipped: in binary a jump checked against the bytes left. */
static cmcr_status skip_list(ply *p, const ply_prop *pr)
{
    double count, ignored;
    cmcr_status st = next_value(p, pr->count_type, &count);
    if (st) return st;
    if (count < 0) return body_bad(p, "a list with a negative count");
    if (p->format == 0) {
        for (double i = 0; !st && i < count; i++) st = next_value(p, pr->type, &ignored);
        return st;
    }
    double bytes = count * PLY_TYPES[pr->type].size;
    if (bytes > (double)(p->len - p->pos)) return body_bad(p, "truncated: a list of %.0f items goes past the end", count);
    p->pos += (size_t)bytes;
    return CMCR_OK;
}

/* Colour from its stored type: uchar / 255, ushort / 65535, floats as they are. */
static cmcr_status colour_value(ply *p, int type, double v, float *out)
{
    if (type == 1) *out = (float)v / 255.0f;
    else if (type == 3) *out = (float)v / 65535.0f;
    else if (!PLY_TYPES[type].is_int) *out = (float)v;
    else return core_fail(CMCR_EUNSUPPORTED, "%s: PLY colours of type %s are not supported (uchar, ushort, float or double)",
                          p->name, PLY_TYPES[type].name);
    return CMCR_OK;
}

/* One item of element e; a vertex's x y z [r g b] into row (width values). */
static cmcr_status read_item(ply *p, const ply_element *e, float *row, int width)
{
    cmcr_status st = CMCR_OK;
    for (int k = 0; !st && k < e->nprops; k++) {
        const ply_prop *pr = &e->props[k];
        double v;
        if (pr->count_type >= 0) {
            st = skip_list(p, pr);
        } else {
            st = next_value(p, pr->type, &v);
            if (st || !row || pr->role == ROLE_OTHER || pr->role >= width) continue;
            if (pr->role < 3) row[pr->role] = (float)v;
            else st = colour_value(p, pr->type, v, &row[pr->role]);
        }
    }
    return st;
}

/* Bytes one item of e takes in binary when it has no list (else 0), and the least it takes
 * (in ascii: a byte per value, at least a digit each). */
static uint64_t fixed_size(const ply *p, const ply_element *e, uint64_t *least)
{
    uint64_t size = 0;
    bool lists = false;
    *least = 0;
    for (int k = 0; k < e->nprops; k++) {
        const ply_prop *pr = &e->props[k];
        lists |= pr->count_type >= 0;
        *least += p->format == 0 ? 1 : (uint64_t)PLY_TYPES[pr->count_type >= 0 ? pr->count_type : pr->type].size;
        size += pr->count_type >= 0 ? 0 : (uint64_t)PLY_TYPES[pr->type].size;
    }
    return lists ? 0 : size;
}

static cmcr_status skip_element(ply *p, const ply_element *e)
{
    uint64_t least, size = fixed_size(p, e, &least), bytes;
    if (e->nprops == 0) return CMCR_OK;
    if (!core_mul_u64(e->count, least, &bytes) || bytes > p->len - p->pos)
        return body_bad(p, "truncated: %llu '%s' elements cannot fit in the %zu bytes left", (unsigned long long)e->count,
                        e->name, p->len - p->pos);
    if (p->format != 0 && size) return p->pos += (size_t)(e->count * size), CMCR_OK;
    cmcr_status st = CMCR_OK;
    for (uint64_t i = 0; !st && i < e->count; i++) st = read_item(p, e, NULL, 0);
    return st;
}

static int vertex_width(const ply_element *e)
{
    int seen = 0;
    for (int k = 0; k < e->nprops; k++)
        if (e->props[k].role >= 0) seen |= 1 << e->props[k].role;
    if ((seen & 7) != 7) return 0;
    return (seen & 0x38) == 0x38 ? 6 : 3;
}

static cmcr_status read_vertices(ply *p, const ply_element *e, point_cloud *out)
{
    int width = vertex_width(e);
    uint64_t least, bytes;
    fixed_size(p, e, &least);
    if (!width) return core_fail(CMCR_EFORMAT, "%s: the PLY vertex element has no x, y and z properties", p->name);
    if (e->count > POINTS_MAX)
        return core_fail(CMCR_ENOMEM, "%s: %llu vertices, more than the limit of %d points", p->name,
                         (unsigned long long)e->count, POINTS_MAX);
    if (!core_mul_u64(e->count, least, &bytes) || bytes > p->len - p->pos)
        return body_bad(p, "truncated: %llu vertices cannot fit in the %zu bytes left", (unsigned long long)e->count,
                        p->len - p->pos);
    cmcr_status st = new_cloud((int64_t)e->count, width, p->name, out);
    for (int64_t i = 0; !st && i < out->n; i++) st = read_item(p, e, out->v + i * width, width);
    return st;
}

static cmcr_status read_ply(const unsigned char *b, size_t len, const char *name, point_cloud *out)
{
    ply p = {.name = name, .b = b, .len = len, .format = -1, .vertex = -1};
    p.elems = calloc(PLY_MAX_ELEMENTS, sizeof *p.elems);
    if (!p.elems) return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    cmcr_status st = ply_header(&p);
    for (int i = 0; !st && i < p.nelems; i++)
        st = i == p.vertex ? read_vertices(&p, &p.elems[i], out) : skip_element(&p, &p.elems[i]);
    if (!st && p.format == 0)
        while (p.pos < len && strchr(" \t\r\n", b[p.pos]) && b[p.pos]) p.pos++;
    if (!st && p.pos != len) st = body_bad(&p, "%zu unexpected bytes after the last element", len - p.pos);
    free(p.elems);
    return st;
}

/* ------------------------------------------------------------------ text */

typedef struct text {
    const char *name;
    const char *s;
    size_t len, pos;
    int64_t line;
} text;

/* The next line [*ls, *le) without its line break; false at the end. */
static cmcr_status next_line(text *t, const char **ls, const char **le, bool *more)
{
    *more = t->pos < t->len;
    if (!*more) return CMCR_OK;
    const char *start = t->s + t->pos;
    const char *nl = memchr(start, '\n', t->len - t->pos);
    const char *end = nl ? nl : t->s + t->len;
    t->line++;
    t->pos = (size_t)(end - t->s) + (nl ? 1 : 0);
    if (end > start && end[-1] == '\r') end--;
    if (end - start > TEXT_MAX_LINE)
        return core_fail(CMCR_EFORMAT, "%s: line %lld is longer than %d bytes", t->name, (long long)t->line, TEXT_MAX_LINE);
    if (memchr(start, '\0', (size_t)(end - start)))
        return core_fail(CMCR_EFORMAT, "%s: line %lld: a NUL byte (not a text file of points)", t->name, (long long)t->line);
    *ls = start;
    *le = end;
    return CMCR_OK;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* Whether the line holds no point: blank, or a '#' comment. */
static bool skip_line(const char *s, const char *e)
{
    while (s < e && is_blank(*s)) s++;
    return s == e || *s == '#';
}

/* The numbers of one line (at most 7 stored: 7 means "too many"); separators are blanks
 * and at most one comma between two numbers. */
static cmcr_status line_numbers(text *t, const char *s, const char *e, double *v, int *n)
{
    *n = 0;
    while (s < e && is_blank(*s)) s++;
    while (s < e) {
        const char *tok = s;
        while (s < e && !is_blank(*s) && *s != ',') s++;
        char msg[96];
        if (s == tok) return core_fail(CMCR_EFORMAT, "%s: line %lld: an empty field", t->name, (long long)t->line);
        if (*n < 7 && !parse_number(tok, (size_t)(s - tok), &v[*n]))
            return core_fail(CMCR_EFORMAT, "%s: line %lld: %s", t->name, (long long)t->line,
                             number_problem(tok, (size_t)(s - tok), msg, sizeof msg));
        if (*n < 7) (*n)++;
        while (s < e && is_blank(*s)) s++;
        if (s < e && *s == ',') {
            s++;
            while (s < e && is_blank(*s)) s++;
            if (s == e) return core_fail(CMCR_EFORMAT, "%s: line %lld: an empty field", t->name, (long long)t->line);
        }
    }
    return CMCR_OK;
}

/* Pass 1: the data lines, counted (no numbers parsed), to refuse too many before allocating. */
static cmcr_status count_lines(text *t, int64_t *n)
{
    const char *s, *e;
    bool more = true;
    cmcr_status st = CMCR_OK;
    size_t start = t->pos;
    *n = 0;
    while (!st) {
        st = next_line(t, &s, &e, &more);
        if (st || !more) break;
        if (!skip_line(s, e) && ++*n > POINTS_MAX)
            return core_fail(CMCR_ENOMEM, "%s: more than the limit of %d points", t->name, POINTS_MAX);
    }
    t->pos = start;
    t->line = 0;
    return st;
}

/* "3", ..., "7 or more": line_numbers stops counting at 7. */
static const char *count_text(int k)
{
    static const char *const names[] = {"0", "1", "2", "3", "4", "5", "6", "7 or more"};
    return names[k < 0 ? 0 : k > 7 ? 7 : k];
}

static cmcr_status read_text(const unsigned char *b, size_t len, const char *name, point_cloud *out)
{
    text t = {name, (const char *)b, len, 0, 0};
    if (len >= 3 && memcmp(b, "\xef\xbb\xbf", 3) == 0) t.pos = 3; /* a UTF-8 byte order mark */
    int64_t n = 0, i = 0, first_line = 0;
    cmcr_status st = count_lines(&t, &n);
    if (!st && n < POINTS_MIN)
        return core_fail(CMCR_ESHAPE, "%s: %lld points, fewer than the %d a point cloud needs", name, (long long)n,
                         POINTS_MIN);
    bool more = true;
    int width = 0;
    while (!st && i < n) {
        const char *s, *e;
        double v[7];
        int k;
        st = next_line(&t, &s, &e, &more);
        if (!st && !more) st = core_fail(CMCR_EFORMAT, "%s: the text changed while it was read", name);
        if (st || skip_line(s, e)) continue;
        st = line_numbers(&t, s, e, v, &k);
        if (!st && !width && k != 3 && k != 6)
            st = core_fail(CMCR_ESHAPE, "%s: line %lld has %s numbers; a point is 3 (x y z) or 6 (x y z r g b, or x y z "
                           "and a normal) numbers per line", name, (long long)t.line, count_text(k));
        if (!st && !width) {
            width = k;
            first_line = t.line;
            st = new_cloud(n, width, name, out);
        }
        if (!st && k != width)
            st = core_fail(CMCR_ESHAPE, "%s: line %lld has %s numbers but line %lld has %d", name, (long long)t.line,
                           count_text(k), (long long)first_line, width);
        for (int j = 0; !st && j < k; j++) {
            if (fabs(v[j]) > FLT_MAX)
                st = core_fail(CMCR_EVALUE, "%s: line %lld: %g does not fit in a float32", name, (long long)t.line, v[j]);
            else out->v[i * width + j] = (float)v[j];
        }
        i++;
    }
    return st;
}

/* ------------------------------------------------------------------ entry points */

cmcr_status points_read_memory(const void *data, size_t len, const char *name, point_cloud *out)
{
    const unsigned char *b = data;
    memset(out, 0, sizeof *out);
    cmcr_status st;
    if (len == 0 || !b) return core_fail(CMCR_EFORMAT, "%s: file is empty", name);
    if (len >= 6 && memcmp(b, "\x93NUMPY", 6) == 0) st = read_npy(b, len, name, out);
    else if ((len >= 4 && memcmp(b, "ply\n", 4) == 0) || (len >= 5 && memcmp(b, "ply\r\n", 5) == 0))
        st = read_ply(b, len, name, out);
    else st = read_text(b, len, name, out);
    if (!st) st = points_check(out->v, out->n, out->width, name);
    if (st) points_free(out);
    return st;
}

cmcr_status points_read_file(const char *path, point_cloud *out)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    cmcr_status st = file_read_all(path, POINTS_MAX_FILE_BYTES, &buf, &len);
    if (!st) st = points_read_memory(buf, len, path, out);
    free(buf);
    return st;
}
