"""Tensor files (.npy, .safetensors, PyTorch .pt), embedding matrices and labels, read and
written by the library (the same parsers, checks, conversions and atomic writes as the cmcr
command)."""
import os

import numpy as np

from . import _arrays
from ._errors import ArgumentError, ShapeError, UnsupportedError
from ._lib import check, cstr, ffi, lib, text

# The library's dtypes by name, and NumPy's for each (BF16 has none: read as float32).
_NUMPY = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "|u1", "BF16": None}
DTYPES = {}
for _i in range(64):
    _name = text(lib.cmcr_dtype_name(_i))
    if _name != "?":
        DTYPES[_name] = _i
_FROM_NUMPY = {np.dtype(v): k for k, v in _NUMPY.items() if v is not None and k in DTYPES}

FORMATS = {"auto": lib.CMCR_FORMAT_AUTO, "npy": lib.CMCR_FORMAT_NPY,
           "safetensors": lib.CMCR_FORMAT_SAFETENSORS, "pt": lib.CMCR_FORMAT_PT}


def _format(fmt):
    if fmt is None:
        return lib.CMCR_FORMAT_AUTO
    try:
        return FORMATS[str(fmt).lower().lstrip(".")]
    except KeyError:
        raise ArgumentError("format must be one of %s, not %r" % (", ".join(FORMATS), fmt)) from None


def _is_path(source):
    return isinstance(source, (str, os.PathLike))


def _memory(source, name):
    """A bytes-like source as (cdata pointer, length, name bytes); no copy."""
    try:
        mv = memoryview(source)
    except TypeError:
        raise TypeError("expected a path (str, os.PathLike) or bytes-like data, not %s"
                        % type(source).__name__) from None
    mv = mv.cast("B") if mv.contiguous else memoryview(mv.tobytes())
    return ffi.from_buffer("char[]", mv), mv.nbytes, cstr(name)


class Tensors(dict):
    """Named NumPy arrays in file order, with the file's string metadata in `meta`.

    The arrays are views of the memory the library read the file into (no copy); a BF16
    tensor, which NumPy has no type for, is converted to float32."""

    def __init__(self, items=(), meta=None):
        super().__init__(items)
        self.meta = dict(meta or {})

    def __repr__(self):
        inner = ", ".join("%r: %s %s" % (k, v.dtype, v.shape) for k, v in self.items())
        return "Tensors({%s}, meta=%r)" % (inner, self.meta)


def tensors_from_set(ts):
    """A Tensors over a cmcr_tensors set, which owns the memory; ts is freed with the last
    array that views it."""
    owner = ffi.gc(ts, lib.cmcr_tensors_free)
    out = Tensors()
    for i in range(lib.cmcr_tensors_count(ts)):
        t = lib.cmcr_tensors_at(ts, i)
        name = text(t.name)
        dname = text(lib.cmcr_dtype_name(t.dtype))
        shape = tuple(t.shape[d] for d in range(t.ndim))
        if dname == "BF16":
            a = np.empty(shape, dtype=np.float32)
            if a.size:
                lib.cmcr_tensor_to_f32(t, _arrays.wptr(a))
        elif _NUMPY.get(dname):
            a = _arrays.view(owner, t.data, shape, _NUMPY[dname])
        else:
            raise UnsupportedError("tensor '%s': dtype %s has no NumPy type in this package" % (name, dname))
        out[name] = a
    for i in range(lib.cmcr_tensors_meta_count(ts)):
        k, v = ffi.new("char **"), ffi.new("char **")
        lib.cmcr_tensors_meta_at(ts, i, k, v)
        out.meta[text(k[0])] = text(v[0])
    return out


def load_tensors(source, format=None, name=None):
    """Every tensor of a .npy (one tensor, "array"), .safetensors or PyTorch .pt file, from a
    path or from bytes in memory (name: what messages call them). A .pt file is read by the
    library's safe unpickler: nothing in it is ever executed."""
    out = ffi.new("cmcr_tensors **")
    if _is_path(source):
        check(lib.cmcr_tensors_load(cstr(source, "path"), _format(format), out))
    else:
        p, n, nm = _memory(source, name)
        check(lib.cmcr_tensors_load_memory(p, n, _format(format), nm, out))
    return tensors_from_set(out[0])


def tensors_to_set(tensors, meta=None):
    """A new cmcr_tensors set (owned by the returned cdata) with copies of the arrays."""
    ts = ffi.gc(lib.cmcr_tensors_new(), lib.cmcr_tensors_free)
    if ts == ffi.NULL:
        raise MemoryError("cmcr_tensors_new")
    for name, a in tensors.items():
        if not isinstance(name, str):
            raise TypeError("tensor names are str, not %s" % type(name).__name__)
        a = np.asarray(a)
        d = _FROM_NUMPY.get(a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype)
        if d is None:
            raise UnsupportedError("tensor '%s': dtype %s cannot be stored (%s)"
                                   % (name, a.dtype, ", ".join(str(np.dtype(k)) for k in _FROM_NUMPY)))
        a = np.require(a, dtype=np.dtype(_NUMPY[d]), requirements="C")  # (ascontiguousarray makes 0-d 1-d)
        if a.ndim > lib.CMCR_MAX_DIMS:
            raise ShapeError("tensor '%s': %d dimensions, at most %d" % (name, a.ndim, lib.CMCR_MAX_DIMS))
        shape = ffi.new("int64_t[]", list(a.shape) or [0])
        data = _arrays.ptr(a.reshape(-1), "char[]") if a.size else ffi.NULL
        check(lib.cmcr_tensors_add(ts, cstr(name, "a tensor name"), DTYPES[d], a.ndim, shape, data))
    for k, v in (meta or {}).items():
        check(lib.cmcr_tensors_set_meta(ts, cstr(k, "a metadata key"), cstr(v, "a metadata value")))
    return ts


def save_tensors(path, tensors, meta=None, format=None):
    """Write named arrays (a mapping; a single array for .npy) atomically, in the format of
    path's extension (or format). Metadata is kept by .safetensors only, as in the library."""
    if isinstance(tensors, np.ndarray):
        tensors = {"array": tensors}
    if meta is None and isinstance(tensors, Tensors):
        meta = tensors.meta
    ts = tensors_to_set(tensors, meta)
    check(lib.cmcr_tensors_save(ts, cstr(path, "path"), _format(format)))


def file_format(path):
    """"npy", "safetensors" or "pt", told from the file's first bytes."""
    f = ffi.new("cmcr_format *")
    check(lib.cmcr_file_format(cstr(path, "path"), f))
    return text(lib.cmcr_format_name(f[0]))


def load_matrix(path):
    """A 2-D float32 embedding matrix from a .npy (or a one-tensor .safetensors/.pt) file:
    float16/bfloat16/float64 converted, rows with NaN or Inf refused."""
    m = ffi.new("cmcr_matrix *")
    check(lib.cmcr_matrix_load(cstr(path, "path"), m))
    owner = ffi.gc(m, lib.cmcr_matrix_free)
    return _arrays.view(owner, m.data, (m.rows, m.cols), np.float32)


def save_matrix(path, x):
    """Write a float32 .npy atomically (the bytes the cmcr command writes)."""
    a = _arrays.floats(x, "save_matrix")
    check(lib.cmcr_matrix_save_npy(cstr(path, "path"), _arrays.ptr(a), a.shape[0], a.shape[1]))


def load_labels(path):
    """Integer labels (.npy int32/int64, a vector or one column) as int64; floats refused."""
    p, n = ffi.new("int64_t **"), ffi.new("int64_t *")
    check(lib.cmcr_labels_load(cstr(path, "path"), p, n))
    owner = ffi.gc(p[0], lib.free)
    return _arrays.view(owner, p[0], (n[0],), np.int64)
