"""Retrieval and zero-shot evaluation of a connected space (cmcr_eval_*), and the synthetic
two-MCR world (cmcr_synth_*)."""
import collections
import os

import numpy as np

from . import _arrays
from ._errors import InvalidValueError, ShapeError
from ._lib import check, cstr, ffi, lib
from .model import normalize_rows, side_of

RetrievalMetrics = collections.namedtuple(
    "RetrievalMetrics", "queries recall_at_1 recall_at_5 recall_at_10 median_rank mean_rank map scored_bf16 rescored")
RetrievalMetrics.__doc__ = """Recall@k and mAP are fractions (0..1); ranks are 1-based; scored_bf16 and rescored
count (query, item) pairs (see cmcr_retrieval_metrics in cmcr.h)."""
ZeroshotMetrics = collections.namedtuple("ZeroshotMetrics", "inputs top1 top5 per_class")


def _into_space(x, name, model, side):
    """Rows projected through model's side, or (without a model) L2-normalised into a copy:
    what `cmcr eval` compares."""
    if model is not None:
        if side is None:
            raise ShapeError("%s: a side ('a' or 'b') is required with a model" % name)
        side_of(side)
        return model.project(x, side)
    a = _arrays.floats(x, name)
    bad = lib.cmcr_find_nonfinite_row(_arrays.ptr(a), a.shape[0], a.shape[1])
    if bad >= 0:  # before normalising, which would turn an Inf into NaN
        v = a[bad][~np.isfinite(a[bad])][0]
        raise InvalidValueError("%s: row %d contains %s (column %d); embeddings must be finite"
                                % (name, bad, "NaN" if np.isnan(v) else "Inf" if v > 0 else "-Inf",
                                   int(np.flatnonzero(~np.isfinite(a[bad]))[0])))
    return normalize_rows(a.copy() if np.may_share_memory(a, x) else a)


def eval_retrieval(queries, gallery, query_labels=None, gallery_labels=None, model=None, query_side=None,
                   gallery_side=None, bf16=False):
    """Retrieval of gallery rows for each query by cosine similarity, as `cmcr eval retrieval`:
    through model's query_side and gallery_side, or without a model on the L2-normalised rows.
    Ground truth by row (query i <-> gallery row i) without labels, else by label (both)."""
    q = _into_space(queries, "queries", model, query_side)
    g = _into_space(gallery, "gallery", model, gallery_side)
    if q.shape[1] != g.shape[1]:
        raise ShapeError("queries rows are %d wide but gallery rows are %d wide" % (q.shape[1], g.shape[1]))
    if (query_labels is None) != (gallery_labels is None):
        raise ShapeError("give both query_labels and gallery_labels, or neither (ground truth by row)")
    ql = None if query_labels is None else _arrays.labels(query_labels, "query_labels", q.shape[0])
    gl = None if gallery_labels is None else _arrays.labels(gallery_labels, "gallery_labels", g.shape[0])
    prm = ffi.new("cmcr_retrieval_params *", {"bf16": int(bool(bf16))})
    r = ffi.new("cmcr_retrieval_metrics *")
    check(lib.cmcr_eval_retrieval_ex(_arrays.ptr(q), q.shape[0], _arrays.ptr(g), g.shape[0], q.shape[1],
                                     _arrays.ptr(ql, "int64_t[]"), _arrays.ptr(gl, "int64_t[]"), prm, r))
    return RetrievalMetrics(int(r.queries), r.recall[0], r.recall[1], r.recall[2], r.median_rank, r.mean_rank, r.map,
                            int(r.scored_bf16), int(r.rescored))


def eval_zeroshot(inputs, classes, labels, model=None, side=None, classes_side=None, per_class=False):
    """Zero-shot classification: each input gets the class whose embedding is most similar, as
    `cmcr eval zeroshot`. labels: the true class of each input, in [0, len(classes)).
    per_class: also each class's top-1 accuracy (NaN for a class without inputs)."""
    x = _into_space(inputs, "inputs", model, side)
    c = _into_space(classes, "classes", model, classes_side)
    if x.shape[1] != c.shape[1]:
        raise ShapeError("inputs rows are %d wide but classes rows are %d wide" % (x.shape[1], c.shape[1]))
    y = _arrays.labels(labels, "labels", x.shape[0])
    acc = np.empty(c.shape[0], dtype=np.float64) if per_class else None
    r = ffi.new("cmcr_zeroshot_metrics *")
    check(lib.cmcr_eval_zeroshot(_arrays.ptr(x), x.shape[0], _arrays.ptr(c), c.shape[0], x.shape[1],
                                 _arrays.ptr(y, "int64_t[]"), r,
                                 ffi.NULL if acc is None else ffi.from_buffer("double[]", acc, require_writable=True)))
    return ZeroshotMetrics(int(r.inputs), r.top1, r.top5, acc)


# ------------------------------------------------------------------ the synthetic world

_WORLD_MATRICES = ("overlap_a", "overlap_b", "memory_a", "memory_b", "test_x", "test_y", "oracle_x", "oracle_y")


class World:
    """A generated C-MCR problem with ground truth (docs/synthetic-world.md): the matrices as
    float32 arrays (views of the library's memory, no copy), the concept labels, the measured
    modality gap. save(dir) writes it as `cmcr synth --out dir` does."""

    def __init__(self, w, owner):
        self._w, self._owner = w, owner
        for name in _WORLD_MATRICES:
            m = getattr(w, name)
            setattr(self, name, _arrays.view(owner, m.data, (m.rows, m.cols), np.float32))
        p = w.params
        self.params = {k: getattr(p, k) for k in dir(p)}
        for name, n in (("test_labels", p.n_test), ("overlap_labels", p.n_overlap), ("memory_a_labels", p.n_memory_a),
                        ("memory_b_labels", p.n_memory_b), ("oracle_labels", p.n_oracle)):
            setattr(self, name, _arrays.view(owner, getattr(w, name), (n,), np.int64))
        self.missing_a = _arrays.view(owner, w.missing_a, (w.n_missing,), np.int64)
        self.missing_b = _arrays.view(owner, w.missing_b, (w.n_missing,), np.int64)
        self.gap = {k: getattr(w, k) for k in ("gap_cos_pair_a", "gap_cos_same_a", "gap_cos_pair_b",
                                                "gap_cos_same_b", "gap_cos_cross_a", "gap_cos_cross_b", "ab_cos")}

    def save(self, directory):
        check(lib.cmcr_world_save(self._w, cstr(directory, "directory")))
        return os.fspath(directory)


def synth_defaults():
    p = lib.cmcr_synth_default_params()
    return {k: getattr(p, k) for k in dir(p)}


def synth(**params):
    """Generate the synthetic two-MCR world (the parameters of cmcr_synth_params by name:
    seed, dim_a, dim_b, n_overlap, n_memory_a, ...; the rest at their defaults)."""
    p = ffi.new("cmcr_synth_params *", lib.cmcr_synth_default_params())
    known = set(dir(p))
    for k, v in params.items():
        if k not in known:
            raise TypeError("synth: unknown parameter %r (the parameters: %s)" % (k, ", ".join(sorted(known))))
        setattr(p, k, v)
    w = ffi.new("cmcr_world *")
    check(lib.cmcr_synth_generate(p, w))
    return World(w, ffi.gc(w, lib.cmcr_world_free))
