/* pickle.h - a safe interpreter for the pickles inside PyTorch checkpoints (not installed).
 *
 * Only the opcodes torch.save emits (protocols 2-5) are understood, and globals are of two
 * kinds. The allow-list - collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter and the torch.<Type>Storage classes of the dtypes cmcr
 * supports - builds plain values (a dict, a tensor description). Every other global (an
 * argparse.Namespace beside a training checkpoint's state_dict, an optimizer's numpy scalar,
 * a storage of a dtype cmcr does not read) becomes an opaque placeholder: calling it (REDUCE,
 * NEWOBJ) gives an opaque object that keeps only the global's name, BUILD, SETITEM(S) and
 * APPEND(S) on it are ignored (a dict or list subclass keeps none of its items),
 * and a tensor over such a storage is opaque too. Nothing is ever called or constructed, so
 * a placeholder is inert; a reader that finds one where it needs a value refuses it, naming
 * the global (pk_object_name). All values live in one arena freed with pk_free, so no error
 * path can leak, and no value is ever walked recursively (cycles are harmless).
 */
#ifndef CMCR_PICKLE_H
#define CMCR_PICKLE_H

#include "runtime/core.h"
#include "io/io.h"

/* Limits on what one pickle may build. */
#define PK_MAX_STACK 10000          /* items on the stack (torch batches 1000 per SETITEMS) */
#define PK_MAX_MARKS 1000           /* nesting of MARK ... TUPLE/LIST/DICT/SETITEMS */
#define PK_MAX_MEMO 1000000         /* memo indices must be below this */
#define PK_MAX_ARENA ((size_t)512 << 20) /* bytes of values, strings and arrays */

typedef enum pk_kind {
    PK_NONE,
    PK_BOOL,
    PK_INT,
    PK_FLOAT,
    PK_STR,
    PK_TUPLE,
    PK_LIST,
    PK_DICT,    /* items holds key, value, key, value... in insertion order */
    PK_GLOBAL,  /* one of the allowed globals */
    PK_STORAGE, /* a persistent id resolved to a storage reference */
    PK_TENSOR,  /* the result of _rebuild_tensor_v2 */
    PK_BYTES,   /* a bytes object (u.str) */
    PK_OBJECT,  /* an opaque placeholder (u.global.name): see above */
    PK_NDARRAY, /* numpy mode only: a numpy array's description (u.array) */
    PK_DTYPE    /* numpy mode only: a numpy dtype (u.dtype) */
} pk_kind;

typedef enum pk_global {
    PG_ORDERED_DICT,
    PG_REBUILD_TENSOR,
    PG_REBUILD_PARAMETER,
    PG_STORAGE,
    PG_OPAQUE, /* any other global: a placeholder */
    /* numpy mode only (pk_parse_numpy); in pk_parse these are opaque like any other: */
    PG_NP_RECONSTRUCT, /* numpy.core.multiarray._reconstruct (numpy 2: numpy._core...) */
    PG_NP_NDARRAY,     /* numpy.ndarray (only as _reconstruct's first argument) */
    PG_NP_DTYPE,       /* numpy.dtype */
    PG_NP_FROMBUFFER,  /* numpy.core.numeric._frombuffer (protocol 5; numpy 2: numpy._core...) */
    PG_CODECS_ENCODE   /* _codecs.encode(str, 'latin1'): protocol 2's bytes */
} pk_global;

typedef struct pk_storage {
    cmcr_dtype dtype;
    const char *key;      /* name of the data/<key> entry */
    const char *location; /* "cpu", "cuda:0", ... (informational) */
    int64_t numel;
} pk_storage;

typedef struct pk_tensor {
    const pk_storage *storage;
    int64_t offset; /* in elements */
    int ndim;
    int64_t size[CMCR_MAX_DIMS];
    int64_t stride[CMCR_MAX_DIMS];
} pk_tensor;

typedef struct pk_value pk_value;

/* numpy.dtype(code, False, True), its byte order from BUILD's state (3, order, ...). */
typedef struct pk_dtype {
    char code[8]; /* "f4", "f8", "O8", ... (at most 7 characters) */
    char order;   /* '<', '>', '|' or '=' (the default until BUILD) */
} pk_dtype;

/* A numpy array: _reconstruct(numpy.ndarray, (0,), b'b') then BUILD with the state
 * (version, shape, dtype, is_fortran, data), or _frombuffer(data, dtype, shape, order).
 * Nothing is checked against anything else here: the reader checks that dtype is a
 * PK_DTYPE and data holds shape's elements (bytes for a numeric dtype, a list for 'O'). */
typedef struct pk_ndarray {
    bool built; /* the state has been set (before BUILD: an empty array) */
    int ndim;
    int64_t shape[CMCR_MAX_DIMS];
    bool fortran;
    const pk_value *dtype; /* PK_DTYPE */
    const pk_value *data;  /* PK_BYTES or PK_LIST (or anything a hostile pickle put there) */
} pk_ndarray;

struct pk_value {
    pk_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *s; /* NUL-terminated copy; may contain NULs, see len */
            size_t len;
        } str;
        struct {
            pk_value **items;
            size_t n, cap;
        } seq; /* PK_TUPLE, PK_LIST, PK_DICT */
        struct {
            pk_global which;
            cmcr_dtype dtype; /* PG_STORAGE only */
            const char *name; /* "module.name", escaped for messages (PG_OPAQUE, PK_OBJECT) */
        } global; /* PK_GLOBAL and PK_OBJECT */
        pk_storage storage;
        pk_tensor *tensor; /* separate, to keep every other value small */
        pk_ndarray *array; /* PK_NDARRAY */
        pk_dtype dtype;    /* PK_DTYPE */
    } u;
};

typedef struct pk_arena pk_arena;

/* Run the pickle in buf. origin names the file in error messages. On success *root is the
 * value STOP returned and *arena owns it; on failure both are NULL. */
cmcr_status pk_parse(const char *origin, const unsigned char *buf, size_t len, pk_arena **arena,
                     pk_value **root);
void pk_free(pk_arena *arena);
/* pk_parse for a pickle written by numpy (np.save of an object array, protocols 2 to 5), in
 * numpy mode: the PG_NP_* and PG_CODECS_ENCODE globals are recognised (see pk_ndarray) when
 * called with the arguments numpy writes, opaque placeholders otherwise; BYTEARRAY8 reads
 * as bytes. Still nothing is called or constructed: the values are descriptions.
 * Messages say "<origin>: pickle byte N: ..." (pk_parse's say data.pkl). */
cmcr_status pk_parse_numpy(const char *origin, const unsigned char *buf, size_t len, pk_arena **arena,
                           pk_value **root);

/* An opaque object's global ("argparse.Namespace", "torch.BoolStorage"), and whether it
 * stands for a tensor over a storage of a dtype cmcr does not read. */
const char *pk_object_name(const pk_value *v);
bool pk_object_is_tensor(const pk_value *v);

/* "a dict", "an int", "a tensor", ... for messages. */
const char *pk_kind_desc(pk_kind k);
/* "torch.FloatStorage" ... for a supported dtype. */
const char *pk_storage_name(cmcr_dtype t);

#endif
