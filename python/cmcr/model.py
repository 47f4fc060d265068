"""Connection models: the two projectors of C-MCR (side a = Head_A, side b = Head_B)."""
import collections
import os
import threading

import numpy as np

from . import _arrays
from ._errors import ArgumentError, ShapeError
from ._handle import Closable, Handle
from ._lib import Callback, check, cstr, ffi, lib, text
from .tensors import _format, _is_path, _memory, tensors_from_set, tensors_to_set

HeadShape = collections.namedtuple("HeadShape", "layers in_dim hidden out_dim")
HeadShape.__doc__ = """One projector: layers 1 = Linear(in,out) -> BN -> ReLU; layers 2 = Linear(in,hidden)
-> BN -> ReLU -> Linear(hidden,out) -> BN (hidden unused with one layer)."""

# Rows per similarity block, as `cmcr similarity` computes them (the same floats).
SIMILARITY_BLOCK = 256


def side_of(side):
    """'a' / 'b' (either case; or 0 / 1) -> CMCR_SIDE_A / CMCR_SIDE_B."""
    s = side.lower() if isinstance(side, str) else side
    if s in ("a", 0):
        return lib.CMCR_SIDE_A
    if s in ("b", 1):
        return lib.CMCR_SIDE_B
    raise ArgumentError("side must be 'a' or 'b', not %r" % (side,))


def _shape_out(s):
    return HeadShape(int(s.layers), int(s.in_dim), int(s.hidden), int(s.out_dim))


def preset_shape(preset):
    """The head shape of a preset: "clap-clip" (2 layers, 512 -> 1024 -> 512) or "ulip-clip"."""
    s = ffi.new("cmcr_head_shape *")
    check(lib.cmcr_preset_shape(cstr(preset, "preset"), s))
    return _shape_out(s)


def _shape_in(shape):
    if isinstance(shape, str):
        shape = preset_shape(shape)
    if isinstance(shape, dict):
        shape = HeadShape(**{"hidden": 0, **shape})
    layers, in_dim, hidden, out_dim = shape
    return ffi.new("cmcr_head_shape *", {"layers": layers, "in_dim": in_dim, "hidden": hidden, "out_dim": out_dim})


class Model(Closable):
    """A C-MCR connection: load it with Model.load(path or bytes), make one with Model.new, or
    get one from cmcr.train. Projection is thread-safe: any number of threads may project with
    one model at once. close() (or a with block) frees it once the calls in flight return."""

    def __init__(self, pointer, origin):
        self._h = Handle(pointer, lib.cmcr_model_free, "model %s" % origin)
        self._meta_lock = threading.Lock()  # set_meta against the calls that read metadata
        self.origin = origin
        self.shape_a = _shape_out(lib.cmcr_model_shape(pointer, lib.CMCR_SIDE_A))
        self.shape_b = _shape_out(lib.cmcr_model_shape(pointer, lib.CMCR_SIDE_B))
        self.preset = text(lib.cmcr_model_preset(pointer))

    # -------------------------------------------------------------- making one

    @classmethod
    def load(cls, source, name=None):
        """A model file (cmcr's .safetensors or .pt, or a released C-MCR checkpoint such as
        clap_clip.pt), from a path or from bytes (name: what messages call them)."""
        out = ffi.new("cmcr_model **")
        if _is_path(source):
            check(lib.cmcr_model_load(cstr(source, "path"), out))
            origin = os.fspath(source)
        else:
            p, n, nm = _memory(source, name)
            check(lib.cmcr_model_load_memory(p, n, nm, out))
            origin = name or "(memory)"
        return cls(out[0], origin)

    @classmethod
    def new(cls, shape_a="clap-clip", shape_b=None, seed=1):
        """Fresh weights (PyTorch's default Linear initialisation, BatchNorm identity). A shape
        is a preset name, a HeadShape (layers, in_dim, hidden, out_dim) or a dict of its fields."""
        out = ffi.new("cmcr_model **")
        check(lib.cmcr_model_new(_shape_in(shape_a), _shape_in(shape_a if shape_b is None else shape_b),
                                 int(seed), out))
        return cls(out[0], "(new model)")

    @classmethod
    def from_tensors(cls, tensors, origin="(tensors)", meta=None):
        """From a state_dict with the official keys (Head_A.*, Head_B.*): a mapping of arrays."""
        if meta is None:
            meta = getattr(tensors, "meta", None)
        ts = tensors_to_set(tensors, meta)
        out = ffi.new("cmcr_model **")
        check(lib.cmcr_model_from_tensors(ts, cstr(origin), out))
        return cls(out[0], origin)

    def copy(self):
        """An independent copy (weights, running statistics and metadata)."""
        return Model.from_tensors(self.to_tensors(), self.origin)

    # -------------------------------------------------------------- files and metadata

    def to_tensors(self):
        """The state_dict (official key names) as a Tensors mapping, with the metadata."""
        out = ffi.new("cmcr_tensors **")
        with self._meta_lock, self._h as m:
            check(lib.cmcr_model_to_tensors(m, out))
        return tensors_from_set(out[0])

    def save(self, path, format=None):
        """Write .safetensors (keeps the metadata: training configuration and data record) or
        .pt (a state_dict PyTorch loads with load_state_dict(strict=True)), atomically."""
        with self._meta_lock, self._h as m:
            check(lib.cmcr_model_save(m, cstr(path, "path"), _format(format)))

    @property
    def meta(self):
        """The metadata (a copy) as a dict of str."""
        return dict(self.to_tensors().meta)

    def get_meta(self, key, default=None):
        with self._meta_lock, self._h as m:
            v = text(lib.cmcr_model_get_meta(m, cstr(key, "a metadata key")))
        return default if v is None else v

    def set_meta(self, key, value):
        with self._meta_lock, self._h as m:
            check(lib.cmcr_model_set_meta(m, cstr(key, "a metadata key"), cstr(value, "a metadata value")))

    def shape(self, side):
        return self.shape_a if side_of(side) == lib.CMCR_SIDE_A else self.shape_b

    # -------------------------------------------------------------- projection

    def project(self, x, side, out=None):
        """out[r] = normalize(head(normalize(x[r]))) through side 'a' or 'b' (BatchNorm from its
        running statistics). x: rows x in_dim (a single row may be 1-D); float32 C-contiguous
        rows are read in place. out: rows x out_dim float32, written in place when given."""
        s = side_of(side)
        shape = self.shape(side)
        one = np.ndim(x) == 1
        a = _arrays.floats(x, "project: side %s input" % "ab"[s], ndim=1 if one else 2, cols=shape.in_dim)
        rows = 1 if one else a.shape[0]
        o = _arrays.output(out, (shape.out_dim,) if one else (rows, shape.out_dim), "project", (a,))
        with self._h as m:
            check(lib.cmcr_model_project(m, s, _arrays.ptr(a), rows, _arrays.wptr(o)))
        return o

    def project_file(self, in_path, out_path, side, block=4096, progress=None):
        """Project a whole .npy file into a float32 .npy, streaming `block` rows at a time (the
        `cmcr project` command). progress(done, total) is called with rows done; returning True
        stops the work (StoppedError, the output not written)."""
        # a callback even without progress: Ctrl-C is seen there (and stops the work)
        cb = Callback("cmcr_progress_fn", progress or (lambda done, total: False))
        with self._h as m:
            st = lib.cmcr_project_npy(m, side_of(side), cstr(in_path, "in_path"), cstr(out_path, "out_path"),
                                      int(block), ffi.NULL, cb.c, ffi.NULL)
        cb.reraise()
        check(st)

    def similarity(self, a, side_a, b, side_b, softmax=False, scale=10.0, out=None):
        """Cosine similarity in the connected space: rows of a through side_a against rows of b
        through side_b (len(a) x len(b)). softmax: each row as softmax(scale * sim), the
        official demo's view. The same floats as `cmcr similarity --out`."""
        pa = self.project(a, side_a)
        pb = self.project(b, side_b)
        if pa.ndim == 1:
            pa = pa[None, :]
        if pb.ndim == 1:
            pb = pb[None, :]
        if pa.shape[1] != pb.shape[1]:
            raise ShapeError("the two sides of %s project to different widths (%d and %d)"
                             % (self.origin, pa.shape[1], pb.shape[1]))
        if softmax and not (scale > 0 and np.isfinite(scale)):
            raise ArgumentError("scale must be a positive number, not %r" % (scale,))
        o = _arrays.output(out, (pa.shape[0], pb.shape[0]), "similarity", (a, b))
        return dot_rows(pa, pb, out=o, softmax_scale=scale if softmax else None)

    # -------------------------------------------------------------- lifetime

    def __repr__(self):
        return "<cmcr.Model %s, preset %s, a %s, b %s>" % (self.origin, self.preset, tuple(self.shape_a),
                                                           tuple(self.shape_b))


def load_model(source, name=None):
    return Model.load(source, name)


def dot_rows(a, b, out=None, softmax_scale=None):
    """out[i, j] = a[i] . b[j] (float32 products, in blocks of 256 rows of a as `cmcr
    similarity` computes them); with softmax_scale, each row then as softmax(scale * row)."""
    a = _arrays.floats(a, "dot_rows: a")
    b = _arrays.floats(b, "dot_rows: b", cols=a.shape[1])
    o = _arrays.output(out, (a.shape[0], b.shape[0]), "dot_rows", (a, b))
    pa, pb, po = _arrays.ptr(a), _arrays.ptr(b), _arrays.wptr(o)
    na, nb, cols = a.shape[0], b.shape[0], a.shape[1]
    for r0 in range(0, na, SIMILARITY_BLOCK):
        n = min(SIMILARITY_BLOCK, na - r0)
        lib.cmcr_dot_rows(pa + r0 * cols, n, pb, nb, cols, po + r0 * nb)
        if softmax_scale is not None:
            lib.cmcr_softmax_rows(po + r0 * nb, n, nb, float(softmax_scale))
    return o


def softmax_rows(x, scale=10.0):
    """Each row of x replaced by softmax(scale * row), in place for a float32 C-contiguous
    writable array (returned); other arrays are converted into a new one."""
    a = x if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous and \
        x.flags.writeable and x.flags.aligned else np.array(_arrays.floats(x, "softmax_rows"), copy=True)
    if a.ndim != 2:
        raise ShapeError("softmax_rows: expected a matrix, got shape %s" % (a.shape,))
    lib.cmcr_softmax_rows(_arrays.wptr(a), a.shape[0], a.shape[1], float(scale))
    return a


def normalize_rows(x):
    """Each row L2-normalised (zero rows stay zero), in place for a float32 C-contiguous
    writable array (returned); other arrays are converted into a new one."""
    a = x if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous and \
        x.flags.writeable and x.flags.aligned else np.array(_arrays.floats(x, "normalize_rows"), copy=True)
    if a.ndim != 2:
        raise ShapeError("normalize_rows: expected a matrix, got shape %s" % (a.shape,))
    lib.cmcr_normalize_rows(_arrays.wptr(a), a.shape[0], a.shape[1])
    return a
