"""NumPy arrays in and out of the C library.

Inputs: a float32, C-contiguous, aligned, native-order array is passed to C as it is (a
pointer into its memory, no copy; read-only arrays too, the library only reads them). Other
float dtypes (float16, float64) and other layouts (strided views, Fortran order, big-endian)
are converted into a new float32 array first, as the library converts them when it reads a
file. Integer, boolean, complex and object arrays are refused (UnsupportedError): embeddings
are floats, and an integer array given as embeddings is almost always labels by mistake.
Labels are the other way round: int64 used as it is, other integer dtypes converted, floats
refused.

Outputs (out=): written in place, never copied, so they must be float32, C-contiguous,
aligned, writable and of the exact shape, and must not overlap an input; anything else is
refused (ArgumentError or ShapeError). Without out=, a new array is returned.
"""
import numpy as np

from ._errors import ArgumentError, ShapeError, UnsupportedError
from ._lib import ffi

F32 = np.dtype(np.float32)
I64 = np.dtype(np.int64)


def _usable(a, dtype):
    return (a.dtype == dtype and a.flags.c_contiguous and a.flags.aligned)


def floats(x, name, ndim=2, cols=None):
    """x as a float32 matrix (ndim 2) or vector (ndim 1) for C: the array itself when it
    qualifies, else a converted copy."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind not in "f":
        raise UnsupportedError("%s: dtype %s is not floating point; embeddings are float32 (float16 and "
                               "float64 are converted)%s" % (name, a.dtype,
                                                             "; integer arrays are labels, not embeddings"
                                                             if a.dtype.kind in "iu" else ""))
    if a.ndim != ndim:
        raise ShapeError("%s: expected a %s, got an array of shape %s"
                         % (name, "matrix (rows x width)" if ndim == 2 else "vector", a.shape))
    if cols is not None and a.shape[-1] != cols:
        raise ShapeError("%s: rows are %d wide but %d are expected" % (name, a.shape[-1], cols))
    if not _usable(a, F32):
        a = np.ascontiguousarray(a, dtype=F32)
    return a


def labels(x, name, n=None):
    """x as int64 labels (a vector, or one column) for C."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind not in "iu":
        raise UnsupportedError("%s: labels must be integers, not %s" % (name, a.dtype))
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ShapeError("%s: labels must be a vector, got shape %s" % (name, a.shape))
    if n is not None and a.shape[0] != n:
        raise ShapeError("%s: %d labels for %d rows" % (name, a.shape[0], n))
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        raise ArgumentError("%s: labels beyond int64" % name)
    if not _usable(a, I64):
        a = np.ascontiguousarray(a, dtype=I64)
    return a


def output(out, shape, name, inputs=()):
    """A float32 array of shape to write into: out itself (checked), or a new one."""
    shape = tuple(int(s) for s in shape)
    if out is None:
        return np.empty(shape, dtype=F32)
    if not isinstance(out, np.ndarray):
        raise ArgumentError("%s: out must be a numpy array, not %s" % (name, type(out).__name__))
    if out.dtype != F32 or not out.flags.c_contiguous or not out.flags.aligned or not out.flags.writeable:
        raise ArgumentError("%s: out must be a writable, C-contiguous float32 array (it is written in place); "
                            "got %s%s%s" % (name, out.dtype, "" if out.flags.c_contiguous else ", not contiguous",
                                            "" if out.flags.writeable else ", read-only"))
    if out.shape != shape:
        raise ShapeError("%s: out has shape %s, expected %s" % (name, out.shape, shape))
    for a in inputs:
        if a is not None and np.may_share_memory(out, a):
            raise ArgumentError("%s: out overlaps an input; pass a separate array" % name)
    return out


def ptr(a, ctype="float[]"):
    """A C pointer into a's memory (no copy); a must stay alive while it is used."""
    if a is None:
        return ffi.NULL
    return ffi.from_buffer(ctype, a, require_writable=False)


def wptr(a, ctype="float[]"):
    return ffi.from_buffer(ctype, a, require_writable=True)


def address(a):
    """Where a's data lies (for tests of the no-copy rule)."""
    return a.__array_interface__["data"][0]


class _Owned:
    """An array interface over memory the library allocated, keeping its owner alive."""

    def __init__(self, owner, pointer, shape, typestr, writable):
        self._owner = owner
        self.__array_interface__ = {"shape": tuple(shape), "typestr": typestr, "version": 3,
                                    "data": (int(ffi.cast("uintptr_t", pointer)), not writable)}


def view(owner, pointer, shape, dtype, writable=True):
    """A NumPy array over library memory, without a copy; owner (a cdata whose collection frees
    the memory) lives as long as the array does."""
    dtype = np.dtype(dtype)
    if int(np.prod(shape, dtype=np.int64)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.asarray(_Owned(owner, pointer, shape, dtype.str, writable))
