/* npy.c - NumPy .npy files: whole-array load/save and streaming float32 row reader/writer.
 *
 * Format: "\x93NUMPY", major, minor, header length (2 bytes little-endian for 1.0, 4 for 2.0
 * and 3.0), then a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)}
 * ending with '\n', then the raw C-order data. The header is parsed by hand, strictly. */
#include "runtime/core.h"
#include "runtime/file.h"
#include "runtime/half.h"
#include "io/io.h"
#include "runtime/vmath.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_ALIGN 64
#define NPY_GROWTH_DIGITS 21 /* numpy leaves room for this many digits in shape[0] */
#define NPY_CHUNK_BYTES (64 * 1024)

struct npy_info {
    cmcr_dtype dtype;
    int ndim;
    int64_t shape[CMCR_MAX_DIMS];
    uint64_t data_offset; /* bytes before the data */
    uint64_t data_bytes;
};

struct cmcr_npy_reader {
    FILE *f;
    char *path;
    cmcr_dtype dtype;
    int64_t rows, cols, next;
    uint64_t data_offset;
    unsigned char *buf; /* NPY_CHUNK_BYTES, for dtypes that need conversion */
};

struct cmcr_npy_writer {
    afile file;
    int64_t cols, rows;
    size_t header_len;
    bool failed; /* a write failed: the data no longer matches the row count */
};

/* ------------------------------------------------------------------ names and shapes */

static const char *numpy_name(cmcr_dtype t)
{
    switch (t) {
    case CMCR_F32: return "float32";
    case CMCR_F16: return "float16";
    case CMCR_F64: return "float64";
    case CMCR_I32: return "int32";
    case CMCR_I64: return "int64";
    case CMCR_BF16: return "bfloat16";
    case CMCR_U8: return "uint8";
    }
    return "?";
}

static const char *descr_of(cmcr_dtype t)
{
    switch (t) {
    case CMCR_F32: return "<f4";
    case CMCR_F16: return "<f2";
    case CMCR_F64: return "<f8";
    case CMCR_I32: return "<i4";
    case CMCR_I64: return "<i8";
    case CMCR_BF16: return NULL;
    case CMCR_U8: return "|u1";
    }
    return NULL;
}

/* Python's repr of the shape tuple: "()", "(80,)", "(80, 512)". */
static void shape_tuple(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
}

/* "80x512", "80", or "0-d" for a scalar. */
static void shape_x(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    if (ndim == 0) snprintf(buf, cap, "0-d");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "x" : "", (long long)shape[i]);
}

/* ------------------------------------------------------------------ header parsing */

struct parser {
    const char *start, *p, *end;
    const char *path;
};

static cmcr_status bad(const struct parser *ps, const char *fmt, ...) CMCR_PRINTF(2, 3);

static cmcr_status bad(const struct parser *ps, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return core_fail(CMCR_EFORMAT, "%s: malformed .npy header: %s (at byte %ld of the header)", ps->path,
                     what, (long)(ps->p - ps->start));
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t')) ps->p++;
}

static bool peek(struct parser *ps, char c)
{
    skip_ws(ps);
    return ps->p < ps->end && *ps->p == c;
}

static bool eat(struct parser *ps, char c)
{
    if (!peek(ps, c)) return false;
    ps->p++;
    return true;
}

static cmcr_status parse_str(struct parser *ps, char *out, size_t cap)
{
    skip_ws(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"')) return bad(ps, "expected a quoted string");
    char quote = *ps->p++;
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != quote) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '\\' || c < 0x20 || c >= 0x7f) return bad(ps, "unsupported character 0x%02x in a string", c);
        if (n + 1 >= cap) return bad(ps, "string longer than %zu characters", cap - 1);
        out[n++] = *ps->p++;
    }
    if (ps->p >= ps->end) return bad(ps, "unterminated string");
    ps->p++;
    out[n] = '\0';
    return CMCR_OK;
}

static cmcr_status parse_bool(struct parser *ps, bool *out)
{
    skip_ws(ps);
    size_t left = (size_t)(ps->end - ps->p);
    if (left >= 4 && memcmp(ps->p, "True", 4) == 0) {
        ps->p += 4;
        *out = true;
    } else if (left >= 5 && memcmp(ps->p, "False", 5) == 0) {
        ps->p += 5;
        *out = false;
    } else {
        return bad(ps, "'fortran_order' must be True or False");
    }
    return CMCR_OK;
}

static bool is_digit(const struct parser *ps)
{
    return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static cmcr_status parse_dim(struct parser *ps, int64_t *out)
{
    skip_ws(ps);
    bool neg = ps->p < ps->end && *ps->p == '-';
    if (neg) ps->p++;
    if (!is_digit(ps)) return bad(ps, "shape entries must be integers");
    if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9')
        return bad(ps, "shape entry with a leading zero");
    uint64_t v = 0;
    while (is_digit(ps)) {
        unsigned d = (unsigned)(*ps->p - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10) return bad(ps, "shape entry does not fit in 64 bits");
        v = v * 10 + d;
        ps->p++;
    }
    if (neg && v) return bad(ps, "shape entry -%llu is negative", (unsigned long long)v);
    *out = (int64_t)v;
    return CMCR_OK;
}

static cmcr_status parse_shape(struct parser *ps, struct npy_info *h)
{
    if (!eat(ps, '(')) return bad(ps, "'shape' must be a tuple such as (80, 512)");
    h->ndim = 0;
    if (eat(ps, ')')) return CMCR_OK;
    bool trailing_comma = false;
    for (;;) {
        if (h->ndim == CMCR_MAX_DIMS)
            return core_fail(CMCR_EUNSUPPORTED, "%s: arrays with more than %d dimensions are not supported",
                             ps->path, CMCR_MAX_DIMS);
        cmcr_status st = parse_dim(ps, &h->shape[h->ndim++]);
        if (st) return st;
        if (eat(ps, ')')) break;
        if (!eat(ps, ',')) return bad(ps, "expected ',' or ')' in the shape");
        if (eat(ps, ')')) {
            trailing_comma = true;
            break;
        }
    }
    if (h->ndim == 1 && !trailing_comma)
        return bad(ps, "shape (%lld) is not a tuple; a 1-D shape is written (%lld,)", (long long)h->shape[0],
                   (long long)h->shape[0]);
    return CMCR_OK;
}

static cmcr_status parse_descr(struct parser *ps, char *descr, size_t cap)
{
    if (peek(ps, '[') || peek(ps, '{'))
        return core_fail(CMCR_EUNSUPPORTED, "%s: structured dtypes (a list or dict as 'descr') are not supported",
                         ps->path);
    return parse_str(ps, descr, cap);
}

static int key_index(const char *key)
{
    static const char *const keys[] = {"descr", "fortran_order", "shape"};
    for (int i = 0; i < 3; i++)
        if (strcmp(key, keys[i]) == 0) return i;
    return -1;
}

static cmcr_status parse_value(struct parser *ps, int key, char *descr, size_t cap, bool *fortran,
                               struct npy_info *h)
{
    switch (key) {
    case 0: return parse_descr(ps, descr, cap);
    case 1: return parse_bool(ps, fortran);
    default: return parse_shape(ps, h);
    }
}

static cmcr_status parse_dict(struct parser *ps, char *descr, size_t cap, bool *fortran, struct npy_info *h)
{
    static const char *const keys[] = {"descr", "fortran_order", "shape"};
    bool seen[3] = {false, false, false};
    if (!eat(ps, '{')) return bad(ps, "expected '{'");
    while (!eat(ps, '}')) {
        char key[64];
        cmcr_status st = parse_str(ps, key, sizeof key);
        if (st) return st;
        int k = key_index(key);
        if (k < 0) return bad(ps, "unexpected key '%s' (expected 'descr', 'fortran_order' and 'shape')", key);
        if (seen[k]) return bad(ps, "key '%s' appears twice", key);
        seen[k] = true;
        if (!eat(ps, ':')) return bad(ps, "expected ':' after '%s'", key);
        st = parse_value(ps, k, descr, cap, fortran, h);
        if (st) return st;
        if (eat(ps, ',')) continue;
        if (eat(ps, '}')) break;
        return bad(ps, "expected ',' or '}' after the value of '%s'", key);
    }
    skip_ws(ps);
    if (ps->p != ps->end) return bad(ps, "unexpected text after the closing '}'");
    for (int i = 0; i < 3; i++)
        if (!seen[i]) return bad(ps, "missing key '%s'", keys[i]);
    return CMCR_OK;
}

static cmcr_status map_descr(const char *path, const char *d, cmcr_dtype *out)
{
    static const struct { const char *code; cmcr_dtype dtype; } known[] = {
        {"f4", CMCR_F32}, {"f2", CMCR_F16}, {"f8", CMCR_F64}, {"i4", CMCR_I32}, {"i8", CMCR_I64}};
    bool little = d[0] == '<' || d[0] == '=';
    /* one byte has no byte order: numpy writes '|u1', and reads '<u1', '>u1', '=u1' alike */
    if (strchr("|<>=", d[0]) && d[0] && strcmp(d + 1, "u1") == 0) {
        *out = CMCR_U8;
        return CMCR_OK;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if ((little || d[0] == '>') && strcmp(d + 1, known[i].code) == 0) {
            if (!little)
                return core_fail(CMCR_EUNSUPPORTED,
                                 "%s: big-endian dtype '%s' is not supported; convert with arr.astype('<%s')",
                                 path, d, known[i].code);
            *out = known[i].dtype;
            return CMCR_OK;
        }
    }
    if (strcmp(d, "|O") == 0 || strcmp(d, "O") == 0)
        return core_fail(CMCR_EUNSUPPORTED, "%s: object arrays (dtype '%s') are not supported: they need pickle",
                         path, d);
    return core_fail(CMCR_EUNSUPPORTED,
                     "%s: dtype '%s' is not supported (expected '<f4', '<f2', '<f8', '<i4', '<i8' or '|u1')", path, d);
}

static cmcr_status parse_header(const char *path, const char *text, size_t len, struct npy_info *h)
{
    struct parser ps = {text, text, text + len, path};
    if (len == 0 || text[len - 1] != '\n')
        return core_fail(CMCR_EFORMAT, "%s: malformed .npy header: it does not end with a newline", path);
    ps.end--;
    char descr[64] = "";
    bool fortran = false;
    cmcr_status st = parse_dict(&ps, descr, sizeof descr, &fortran, h);
    if (st) return st;
    st = map_descr(path, descr, &h->dtype);
    if (st) return st;
    if (fortran)
        return core_fail(CMCR_EUNSUPPORTED,
                         "%s: Fortran order is not supported; save with np.ascontiguousarray", path);
    return CMCR_OK;
}

/* The header dict alone, the dtype not mapped: for readers of other dtypes (points.c). */
cmcr_status npy_parse_header_text(const char *name, const char *text, size_t len, char *descr, size_t cap,
                                  bool *fortran, int *ndim, int64_t *shape)
{
    struct parser ps = {text, text, text + len, name};
    struct npy_info h;
    memset(&h, 0, sizeof h);
    *fortran = false;
    if (len == 0 || text[len - 1] != '\n')
        return core_fail(CMCR_EFORMAT, "%s: malformed .npy header: it does not end with a newline", name);
    ps.end--;
    cmcr_status st = parse_dict(&ps, descr, cap, fortran, &h);
    if (st) return st;
    *ndim = h.ndim;
    memcpy(shape, h.shape, sizeof h.shape);
    return CMCR_OK;
}

/* ------------------------------------------------------------------ reading the file */

static cmcr_status read_exact(FILE *f, void *buf, size_t n, const char *path)
{
    if (n == 0 || fread(buf, 1, n, f) == n) return CMCR_OK;
    if (ferror(f)) return core_fail(CMCR_EIO, "%s: read failed: %s", path, strerror(errno));
    return core_fail(CMCR_EFORMAT, "%s: unexpected end of file (did it change while being read?)", path);
}

/* Magic, version and header length; leaves f at the start of the header text. */
static cmcr_status read_preamble(FILE *f, const char *path, uint64_t size, uint64_t *hlen, size_t *prefix)
{
    unsigned char pre[12];
    if (size == 0) return core_fail(CMCR_EFORMAT, "%s: file is empty", path);
    size_t n = size < 10 ? (size_t)size : 10;
    cmcr_status st = read_exact(f, pre, n, path);
    if (st) return st;
    if (n < 6 || memcmp(pre, NPY_MAGIC, 6) != 0)
        return core_fail(CMCR_EFORMAT, "%s: not a .npy file (bad magic: it does not start with \\x93NUMPY)", path);
    if (n < 10) return core_fail(CMCR_EFORMAT, "%s: truncated: file ends inside the .npy preamble", path);
    unsigned major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0)
        return core_fail(CMCR_EUNSUPPORTED, "%s: unknown .npy format version %u.%u (expected 1.0, 2.0 or 3.0)",
                         path, major, minor);
    *prefix = major == 1 ? 10 : 12;
    if (size < *prefix) return core_fail(CMCR_EFORMAT, "%s: truncated: file ends inside the .npy preamble", path);
    if (major > 1) {
        st = read_exact(f, pre + 10, 2, path);
        if (st) return st;
    }
    *hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
    if (major > 1) *hlen |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    return CMCR_OK;
}

static cmcr_status read_header(FILE *f, const char *path, uint64_t size, struct npy_info *h)
{
    uint64_t hlen = 0;
    size_t prefix = 0;
    cmcr_status st = read_preamble(f, path, size, &hlen, &prefix);
    if (st) return st;
    if (hlen > size - prefix)
        return core_fail(CMCR_EFORMAT,
                         "%s: header length %llu goes past the end of the file (%llu bytes after the %zu-byte preamble)",
                         path, (unsigned long long)hlen, (unsigned long long)(size - prefix), prefix);
    if (hlen > CMCR_MAX_HEADER_BYTES)
        return core_fail(CMCR_ENOMEM, "%s: header length %llu exceeds the limit of %llu bytes", path,
                         (unsigned long long)hlen, (unsigned long long)CMCR_MAX_HEADER_BYTES);
    char *text = core_xmalloc((size_t)hlen);
    if (!text) return core_fail(CMCR_ENOMEM, "%s: cannot allocate %llu bytes", path, (unsigned long long)hlen);
    st = read_exact(f, text, (size_t)hlen, path);
    if (!st) st = parse_header(path, text, (size_t)hlen, h);
    free(text);
    h->data_offset = prefix + hlen;
    return st;
}

static cmcr_status check_data_size(const char *path, uint64_t size, struct npy_info *h)
{
    char dims[256];
    shape_x(h->shape, h->ndim, dims, sizeof dims);
    const char *type = numpy_name(h->dtype);
    uint64_t need, have = size - h->data_offset;
    if (!core_shape_bytes(h->shape, h->ndim, cmcr_dtype_size(h->dtype), &need))
        return core_fail(CMCR_EFORMAT, "%s: shape overflow: %s %s would need more than 2^64 bytes", path, dims,
                         type);
    if (have < need)
        return core_fail(CMCR_EFORMAT,
                         "%s: truncated: header says %s %s (%llu bytes of data) but the file has %llu bytes after the header",
                         path, dims, type, (unsigned long long)need, (unsigned long long)have);
    if (have > need)
        return core_fail(CMCR_EFORMAT,
                         "%s: %llu unexpected bytes after the data: header says %s %s (%llu bytes of data) but the file has %llu bytes after the header",
                         path, (unsigned long long)(have - need), dims, type, (unsigned long long)need,
                         (unsigned long long)have);
    h->data_bytes = need;
    return CMCR_OK;
}

/* Parse and check the header of the stream f (named path in messages); f is left at the
 * start of the data. */
static cmcr_status read_npy_header(FILE *f, const char *path, struct npy_info *h)
{
    memset(h, 0, sizeof *h);
    uint64_t size = 0;
    cmcr_status st = file_stream_size(f, path, &size);
    if (!st) st = read_header(f, path, size, h);
    if (!st) st = check_data_size(path, size, h);
    return st;
}

/* The whole array of the stream f (its header not read yet); closes f. */
cmcr_status npy_load_stream(FILE *f, const char *path, cmcr_tensors **out)
{
    struct npy_info h;
    cmcr_status st = read_npy_header(f, path, &h);
    if (st) {
        fclose(f);
        return st;
    }
    if (h.data_bytes > CMCR_MAX_TENSOR_BYTES) {
        fclose(f);
        return core_fail(CMCR_ENOMEM, "%s: %llu bytes of data exceed the limit of %llu bytes per tensor", path,
                         (unsigned long long)h.data_bytes, (unsigned long long)CMCR_MAX_TENSOR_BYTES);
    }
    void *data = core_xmalloc((size_t)h.data_bytes);
    if (!data) {
        fclose(f);
        return core_fail(CMCR_ENOMEM, "%s: cannot allocate %llu bytes", path, (unsigned long long)h.data_bytes);
    }
    st = read_exact(f, data, (size_t)h.data_bytes, path);
    fclose(f);
    cmcr_tensors *ts = st ? NULL : cmcr_tensors_new();
    if (!st && !ts) st = core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    if (st) {
        free(data);
        return st;
    }
    st = tensors_add_owned(ts, "array", h.dtype, h.ndim, h.shape, data);
    if (st) {
        cmcr_tensors_free(ts);
        return core_fail_prefix(st, path);
    }
    *out = ts;
    return CMCR_OK;
}

/* ------------------------------------------------------------------ writing */

/* The whole version 1.0 preamble + header exactly as numpy.save writes it; returns its length. */
static size_t build_header(char *buf, const char *descr, int ndim, const int64_t *shape)
{
    char tuple[256];
    shape_tuple(shape, ndim, tuple, sizeof tuple);
    size_t len = 10;
    len += (size_t)snprintf(buf + len, NPY_HEADER_MAX - len, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                            descr, tuple);
    if (ndim > 0) {
        char first[24];
        size_t digits = (size_t)snprintf(first, sizeof first, "%lld", (long long)shape[0]);
        memset(buf + len, ' ', NPY_GROWTH_DIGITS - digits);
        len += NPY_GROWTH_DIGITS - digits;
    }
    size_t pad = NPY_ALIGN - (len + 1) % NPY_ALIGN;
    memset(buf + len, ' ', pad);
    len += pad;
    buf[len++] = '\n';
    size_t hlen = len - 10;
    memcpy(buf, NPY_MAGIC "\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    return len;
}

cmcr_status npy_save(const cmcr_tensor *t, const char *path)
{
    const char *descr = descr_of(t->dtype);
    if (!descr)
        return core_fail(CMCR_EUNSUPPORTED, "%s: tensor '%s' is %s, which has no NumPy dtype; convert it to float32 first",
                         path, t->name, cmcr_dtype_name(t->dtype));
    char header[NPY_HEADER_MAX];
    size_t len = build_header(header, descr, t->ndim, t->shape);
    afile a;
    cmcr_status st = afile_open(&a, path);
    if (st) return st;
    st = afile_write(&a, header, len);
    if (!st) st = afile_write(&a, t->data, t->nbytes);
    if (st) {
        afile_abort(&a);
        return st;
    }
    return afile_commit(&a);
}

/* ------------------------------------------------------------------ streaming reader */

static cmcr_status check_matrix(const char *path, const struct npy_info *h)
{
    char tuple[256];
    shape_tuple(h->shape, h->ndim, tuple, sizeof tuple);
    if (h->ndim != 2)
        return core_fail(CMCR_ESHAPE, "%s: expected a 2-D matrix (rows x width), but the array has shape %s",
                         path, tuple);
    if (h->dtype == CMCR_I32 || h->dtype == CMCR_I64 || h->dtype == CMCR_U8)
        return core_fail(CMCR_EUNSUPPORTED,
                         "%s: dtype %s holds integers (labels are not embeddings); expected float32, float16 or float64",
                         path, numpy_name(h->dtype));
    return CMCR_OK;
}

cmcr_status npy_reader_open_stream(FILE *f, const char *path, cmcr_npy_reader **out)
{
    *out = NULL;
    struct npy_info h;
    cmcr_status st = read_npy_header(f, path, &h);
    if (!st) st = check_matrix(path, &h);
    if (st) {
        fclose(f);
        return st;
    }
    cmcr_npy_reader *r = calloc(1, sizeof *r);
    if (r) {
        r->path = core_strdup(path);
        r->buf = core_xmalloc(NPY_CHUNK_BYTES);
    }
    if (!r || !r->path || !r->buf) {
        fclose(f);
        cmcr_npy_reader_close(r);
        return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    }
    r->f = f;
    r->dtype = h.dtype;
    r->rows = h.shape[0];
    r->cols = h.shape[1];
    r->data_offset = h.data_offset;
    *out = r;
    return CMCR_OK;
}

cmcr_status cmcr_npy_reader_open(const char *path, cmcr_npy_reader **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return core_fail(CMCR_EIO, "%s: cannot open: %s", path, strerror(errno));
    return npy_reader_open_stream(f, path, out);
}

int64_t cmcr_npy_reader_rows(const cmcr_npy_reader *r) { return r->rows; }
int64_t cmcr_npy_reader_cols(const cmcr_npy_reader *r) { return r->cols; }

cmcr_status cmcr_npy_reader_seek(cmcr_npy_reader *r, int64_t row)
{
    if (row < 0 || row > r->rows)
        return core_fail(CMCR_EINVAL, "%s: cannot seek to row %lld of %lld", r->path, (long long)row,
                         (long long)r->rows);
    /* in range: the offset fits, since the data size was checked against the file's */
    uint64_t off = r->data_offset + (uint64_t)row * (uint64_t)r->cols * cmcr_dtype_size(r->dtype);
    if (fseeko(r->f, (off_t)off, SEEK_SET) != 0)
        return core_fail(CMCR_EIO, "%s: cannot seek to row %lld: %s", r->path, (long long)row, strerror(errno));
    r->next = row;
    return CMCR_OK;
}

size_t npy_matrix_header(char *buf, int64_t rows, int64_t cols)
{
    int64_t shape[2] = {rows, cols};
    return build_header(buf, "<f4", 2, shape);
}

/* Read count values of the stored dtype into out as float32. */
static cmcr_status read_values(cmcr_npy_reader *r, float *out, uint64_t count)
{
    if (r->dtype == CMCR_F32) return read_exact(r->f, out, (size_t)count * sizeof(float), r->path);
    size_t elem = cmcr_dtype_size(r->dtype), per = NPY_CHUNK_BYTES / elem;
    while (count > 0) {
        size_t n = count < per ? (size_t)count : per;
        cmcr_status st = read_exact(r->f, r->buf, n * elem, r->path);
        if (st) return st;
        for (size_t i = 0; i < n; i++) {
            if (r->dtype == CMCR_F16) {
                uint16_t v;
                memcpy(&v, r->buf + 2 * i, 2);
                out[i] = half_f16_to_f32(v);
            } else {
                double v;
                memcpy(&v, r->buf + 8 * i, 8);
                out[i] = (float)v;
            }
        }
        out += n;
        count -= n;
    }
    return CMCR_OK;
}

/* The library's one finiteness check (vm_check_finite), with what it means for a reader. */
static cmcr_status check_finite(const cmcr_npy_reader *r, const float *x, int64_t rows)
{
    cmcr_status st = vm_check_finite(x, rows, r->cols, r->next, "%s", r->path);
    if (!st) return CMCR_OK;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cmcr_last_error());
    return core_fail(st, "%s; embeddings must be finite", msg);
}

cmcr_status cmcr_npy_reader_read(cmcr_npy_reader *r, float *out, int64_t max_rows, int64_t *got)
{
    *got = 0;
    if (max_rows < 0 || (max_rows > 0 && !out))
        return core_fail(CMCR_EINVAL, "%s: invalid read of %lld rows", r->path, (long long)max_rows);
    int64_t n = r->rows - r->next;
    if (n > max_rows) n = max_rows;
    if (n == 0) return CMCR_OK;
    cmcr_status st = read_values(r, out, (uint64_t)n * (uint64_t)r->cols);
    if (!st) st = check_finite(r, out, n);
    r->next += n;
    if (!st) *got = n;
    return st;
}

void cmcr_npy_reader_close(cmcr_npy_reader *r)
{
    if (!r) return;
    if (r->f) fclose(r->f);
    free(r->buf);
    free(r->path);
    free(r);
}

/* ------------------------------------------------------------------ streaming writer */

cmcr_status cmcr_npy_writer_open(const char *path, int64_t cols, cmcr_npy_writer **out)
{
    *out = NULL;
    if (cols < 0) return core_fail(CMCR_EINVAL, "%s: negative width %lld", path, (long long)cols);
    cmcr_npy_writer *w = calloc(1, sizeof *w);
    if (!w) return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    char header[NPY_HEADER_MAX];
    int64_t shape[2] = {0, cols};
    w->cols = cols;
    w->header_len = build_header(header, "<f4", 2, shape);
    cmcr_status st = afile_open(&w->file, path);
    if (st) {
        free(w);
        return st;
    }
    st = afile_write(&w->file, header, w->header_len);
    if (st) {
        cmcr_npy_writer_abort(w);
        return st;
    }
    *out = w;
    return CMCR_OK;
}

cmcr_status cmcr_npy_writer_write(cmcr_npy_writer *w, const float *rows, int64_t n)
{
    uint64_t row_bytes, total, file_bytes, bytes;
    if (n < 0 || (n > 0 && !rows))
        return core_fail(CMCR_EINVAL, "%s: invalid write of %lld rows", w->file.path, (long long)n);
    bool ok = core_mul_u64((uint64_t)w->cols, sizeof(float), &row_bytes) &&
              core_add_u64((uint64_t)w->rows, (uint64_t)n, &total) && total <= INT64_MAX &&
              core_mul_u64(total, row_bytes, &file_bytes) && core_mul_u64((uint64_t)n, row_bytes, &bytes);
    if (!ok)
        return core_fail(CMCR_ENOMEM, "%s: %lld more rows of width %lld overflow the file size", w->file.path,
                         (long long)n, (long long)w->cols);
    cmcr_status st = afile_write(&w->file, rows, (size_t)bytes);
    if (st) {
        w->failed = true;
        return st;
    }
    w->rows = (int64_t)total;
    return CMCR_OK;
}

cmcr_status cmcr_npy_writer_commit(cmcr_npy_writer *w)
{
    if (!w) return core_fail(CMCR_EINVAL, "npy writer: commit without an open writer");
    char header[NPY_HEADER_MAX];
    int64_t shape[2] = {w->rows, w->cols};
    size_t len = build_header(header, "<f4", 2, shape);
    cmcr_status st = CMCR_OK;
    if (w->failed)
        st = core_fail(CMCR_EIO, "%s: not committed because an earlier write failed", w->file.path);
    else if (len != w->header_len)
        st = core_fail(CMCR_EIO, "%s: internal error: header length changed from %zu to %zu", w->file.path,
                       w->header_len, len);
    else if (fflush(w->file.f) != 0 || fseek(w->file.f, 0, SEEK_SET) != 0)
        st = core_fail(CMCR_EIO, "%s: cannot rewrite the header: %s", w->file.path, strerror(errno));
    if (!st) st = afile_write(&w->file, header, len);
    if (st) {
        cmcr_npy_writer_abort(w);
        return st;
    }
    st = afile_commit(&w->file);
    free(w);
    return st;
}

void cmcr_npy_writer_abort(cmcr_npy_writer *w)
{
    if (!w) return;
    afile_abort(&w->file);
    free(w);
}
