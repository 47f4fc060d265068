"""Training a connection (cmcr_trainer_*), memory aggregation, and the training settings."""
import collections
import json
import os

from . import _arrays
from ._errors import ArgumentError, ShapeError, StoppedError
from ._lib import Callback, check, cstr, ffi, free_string, lib, logger, text
from .model import Model, preset_shape
from .tensors import load_matrix

TrainStats = collections.namedtuple(
    "TrainStats", "step total_steps epoch epochs loss loss_native loss_pseudo loss_intra lr samples_per_sec elapsed")
TrainStats.__doc__ = "What a training progress callback receives after every step (step counts from 1)."

_TYPES = {lib.CMCR_SETTING_I64: "int", lib.CMCR_SETTING_INT: "int", lib.CMCR_SETTING_DOUBLE: "float",
          lib.CMCR_SETTING_BOOL: "bool"}
# The inputs, by argument name, and their keys in the recorded provenance (the CLI's flags).
INPUTS = ("overlap_a", "overlap_b", "memory_a", "memory_b", "pseudo_a", "pseudo_b")
MODEL_EXTS = (".safetensors", ".pt")
CHECKPOINT_EXTS = (".ckpt", ".safetensors")


def _cbuf(s, what):
    """A C string that lives as long as the returned cdata (for struct fields), or NULL."""
    return ffi.NULL if s is None else ffi.new("char[]", cstr(s, what))


def _key(name):
    return name.replace("_", "-")


def train_settings():
    """The scalar training settings as the library describes them: a list of dicts with name,
    type ("int", "float", "bool"), default, lo, hi, stored (part of a run's mathematics,
    recorded in its checkpoint) and help. Pass them to train() as keyword arguments."""
    n = ffi.new("size_t *")
    s = lib.cmcr_train_settings(n)
    out = []
    for i in range(n[0]):
        t = s[i]
        out.append({"name": text(t.name), "type": _TYPES[t.type], "default": _value(t.type, getattr(t, "def")),
                    "lo": t.lo, "hi": t.hi, "stored": bool(t.stored), "help": text(t.help),
                    "flag": text(t.flag)})
    return out


def _value(typ, v):
    return bool(v) if typ == lib.CMCR_SETTING_BOOL else int(v) if typ != lib.CMCR_SETTING_DOUBLE else float(v)


def _params_dict(p):
    d = {"shape_a": tuple(_shape_tuple(p.shape_a)), "shape_b": tuple(_shape_tuple(p.shape_b)), "seed": int(p.seed)}
    for s in train_settings():
        d[s["name"]] = _value({"int": lib.CMCR_SETTING_I64, "float": lib.CMCR_SETTING_DOUBLE,
                               "bool": lib.CMCR_SETTING_BOOL}[s["type"]], getattr(p, s["name"]))
    return d


def _shape_tuple(s):
    return (int(s.layers), int(s.in_dim), int(s.hidden), int(s.out_dim))


def _apply_settings(p, settings, only_unstored=False):
    known = {s["name"]: s for s in train_settings()}
    for k, v in settings.items():
        s = known.get(k)
        if s is None:
            raise ArgumentError("train: unknown setting %r (the settings: %s)" % (k, ", ".join(known)))
        if only_unstored and s["stored"]:
            raise ArgumentError("train: %s is stored in the checkpoint and cannot change when resuming" % k)
        if s["type"] == "bool":
            if v not in (True, False, 0, 1):
                raise ArgumentError("train: %s is a bool, not %r" % (k, v))
            v = int(bool(v))
        elif s["type"] == "int":
            if isinstance(v, bool) or int(v) != v:
                raise ArgumentError("train: %s is an integer, not %r" % (k, v))
            v = int(v)
        else:
            v = float(v)
        setattr(p, k, v)


def checkpoint_info(path):
    """What a training checkpoint holds, without loading it: {"params": the stored settings,
    shapes and seed, "provenance": the recorded inputs (dict), "step": steps done}."""
    p = ffi.new("cmcr_train_params *")
    prov = ffi.new("char **")
    step = ffi.new("int64_t *")
    check(lib.cmcr_checkpoint_info(cstr(path, "path"), p, prov, step))
    provenance = free_string(prov[0])
    return {"params": _params_dict(p), "provenance": json.loads(provenance) if provenance else {},
            "step": int(step[0])}


def _printable(s):
    buf = ffi.new("char[]", 4 * len(os.fsencode(s)) + 16)
    return text(lib.cmcr_printable(buf, len(buf), os.fsencode(s)))


def _input(value, name):
    """(float32 matrix, record) for an input given as a path or an array."""
    if isinstance(value, (str, os.PathLike)):
        m = load_matrix(value)
        return m, {"path": _printable(os.fspath(value))}
    a = _arrays.floats(value, "train: " + name)
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ShapeError("train: %s: expected a non-empty 2-D matrix (rows x width), got shape %s" % (name, a.shape))
    return a, {}


def _record(rec, a):
    h = lib.cmcr_hash_bytes(_arrays.ptr(a), a.size * 4, 0)
    rec.update(rows=int(a.shape[0]), cols=int(a.shape[1]), hash="%016x" % h)
    return rec


def _name(given, rec, name):
    return rec.get("path", name) if given else name


def train(overlap_a=None, overlap_b=None, memory_a=None, memory_b=None, pseudo_a=None, pseudo_b=None, *,
          out=None, checkpoint=None, resume=None, preset="clap-clip", layers=0, hidden=0, out_dim=0, in_a=0,
          in_b=0, seed=1, cache_dir=None, progress=None, **settings):
    """Train a C-MCR connection, as `cmcr train` does, and return it as a Model.

    Inputs are paths (.npy; recorded in the model by path, like the command does) or float
    arrays (rows x width; float32 C-contiguous arrays are read in place, never copied, and
    must not change during the call). overlap_a/overlap_b: the shared modality embedded by
    both MCRs, row i = the same item; memory_a/memory_b: unpaired memories (not needed with
    consistency=False or with pseudo_a/pseudo_b, precomputed by aggregate()).

    out: also write the model there (.safetensors with the training record, or .pt); the
    checkpoint goes to `checkpoint`, by default OUT.ckpt, or with resume the checkpoint it
    resumes (none without any of them),
    every checkpoint_every steps and at the end. resume: continue from a checkpoint; its
    stored settings are used, and inputs not given are read from the paths it records.
    progress(stats) is called after every step with a TrainStats; returning True stops
    training (StoppedError, after a checkpoint is written). Ctrl-C (KeyboardInterrupt) stops
    it the same way, after the step in progress: the checkpoint is written, then the
    KeyboardInterrupt is raised again. Settings (tau, sigma2, epochs, batch, lr, ...) are
    keyword arguments: see train_settings(). cache_dir: where aggregated memories are cached
    (None: no cache; the command defaults to ~/.cache/cmcr).
    """
    given = dict(zip(INPUTS, (overlap_a, overlap_b, memory_a, memory_b, pseudo_a, pseudo_b)))
    if out is not None and not os.fspath(out).endswith(MODEL_EXTS):
        raise ArgumentError("train: out %s must end in .safetensors or .pt" % os.fspath(out))
    if checkpoint is None and out is not None:
        checkpoint = os.fspath(out) + ".ckpt"
    elif checkpoint is None and resume is not None:
        checkpoint = resume  # training continues in the checkpoint it resumes
    if checkpoint is not None and not os.fspath(checkpoint).endswith(CHECKPOINT_EXTS):
        raise ArgumentError("train: checkpoint %s must end in .ckpt or .safetensors" % os.fspath(checkpoint))

    p = ffi.new("cmcr_train_params *")
    if resume is not None:
        info = ffi.new("cmcr_train_params *")
        prov = ffi.new("char **")
        step = ffi.new("int64_t *")
        check(lib.cmcr_checkpoint_info(cstr(resume, "resume"), info, prov, step))
        recorded = json.loads(free_string(prov[0]) or "{}")
        for name in INPUTS:
            path = recorded.get(_key(name), {}).get("path")
            if given[name] is None and path is not None:
                given[name] = path
        p[0] = lib.cmcr_train_default_params()
        _apply_settings(p, settings, only_unstored=True)
        unstored = {s["name"]: getattr(p, s["name"]) for s in train_settings() if not s["stored"]}
        p[0] = info[0]
        for k, v in unstored.items():
            setattr(p, k, v)
        logger.info("resuming %s from step %d", os.fspath(resume), step[0])
    else:
        p[0] = lib.cmcr_train_default_params()
        _apply_settings(p, settings)

    # the inputs: loaded or taken as they are, checked against each other (the library
    # trusts the shapes it is given), recorded
    if given["overlap_a"] is None or given["overlap_b"] is None:
        raise ArgumentError("train: overlap_a and overlap_b are required")
    if (given["pseudo_a"] is None) != (given["pseudo_b"] is None):
        raise ArgumentError("train: pseudo_a and pseudo_b go together")
    use_pseudo = given["pseudo_a"] is not None
    if p.consistency and not use_pseudo and (given["memory_a"] is None or given["memory_b"] is None):
        raise ArgumentError("train: memory_%s is required (or pass consistency=False, or pseudo_a and pseudo_b)"
                            % ("a" if given["memory_a"] is None else "b"))
    arrays, prov = {}, {}
    for name in INPUTS:  # every input given is read and recorded, as the command does
        if given[name] is None:
            continue
        arrays[name], rec = _input(given[name], name)
        prov[_key(name)] = rec
    label = {n: _name(isinstance(given[n], (str, os.PathLike)), prov.get(_key(n), {}), n) for n in arrays}
    oa, ob = arrays["overlap_a"], arrays["overlap_b"]
    if oa.shape[0] != ob.shape[0]:
        raise ShapeError("train: %s has %d rows but %s has %d: row i of both must be the same item"
                         % (label["overlap_a"], oa.shape[0], label["overlap_b"], ob.shape[0]))
    for name, ref in (("memory_a", oa), ("memory_b", ob)):
        if name in arrays and arrays[name].shape[1] != ref.shape[1]:
            raise ShapeError("train: %s rows are %d wide but %s rows are %d wide (same MCR, same width)"
                             % (label[name], arrays[name].shape[1], label["overlap" + name[-2:]], ref.shape[1]))
    for name, ref in (("pseudo_a", oa), ("pseudo_b", ob)):
        if name in arrays and arrays[name].shape != ref.shape:
            raise ShapeError("train: %s is %d x %d but %s is %d x %d: pseudo embeddings need one row per overlap "
                             "row, of the same width" % ((label[name],) + arrays[name].shape +
                                                         (label["overlap" + name[-2:]],) + ref.shape))
    for name in INPUTS:
        if name in arrays:
            _record(prov[_key(name)], arrays[name])
    if out is not None:
        prov["out"] = _printable(os.fspath(out))
    provenance = json.dumps(prov, separators=(",", ":"), ensure_ascii=False)

    if resume is None:
        for shape, dim, in_dim in ((p.shape_a, oa.shape[1], in_a), (p.shape_b, ob.shape[1], in_b)):
            s = preset_shape(preset)
            shape.layers, shape.in_dim, shape.hidden, shape.out_dim = s.layers, in_dim or dim, s.hidden, s.out_dim
            if layers:
                shape.layers = layers
            if hidden:
                shape.hidden = hidden
            if out_dim:
                shape.out_dim = out_dim
            if shape.layers == 2 and shape.hidden == 0:
                shape.hidden = 2 * shape.out_dim
        p.seed = int(seed)
    keep = [_cbuf(checkpoint, "checkpoint"), _cbuf(cache_dir, "cache_dir"), _cbuf(provenance, "provenance")]
    p.checkpoint_path, p.cache_dir = keep[0], keep[1]
    p.mpi_comm = ffi.NULL

    ptr = {n: _arrays.ptr(a) for n, a in arrays.items()}
    d = ffi.new("cmcr_train_data *")
    d.overlap_a, d.overlap_b = ptr["overlap_a"], ptr["overlap_b"]
    d.n_overlap, d.dim_a, d.dim_b = oa.shape[0], oa.shape[1], ob.shape[1]
    for name in ("memory_a", "memory_b"):
        if name in arrays:
            setattr(d, name, ptr[name])
            setattr(d, "n_" + name, arrays[name].shape[0])
    for name in ("pseudo_a", "pseudo_b"):
        if name in arrays:
            setattr(d, name, ptr[name])
    d.provenance = keep[2]
    d.borrow = 1  # the arrays are read in place; they live in `arrays` until the trainer is freed

    t = ffi.new("cmcr_trainer **")
    check(lib.cmcr_trainer_new(p, d, t))
    trainer = t[0]
    try:
        if resume is not None:
            check(lib.cmcr_trainer_resume(trainer, cstr(resume, "resume")))

        def on_step(s):
            stats = TrainStats(s.step, s.total_steps, s.epoch, s.epochs, s.loss, s.loss_native, s.loss_pseudo,
                               s.loss_intra, s.lr, s.samples_per_sec, s.elapsed)
            return progress(stats) if progress else False

        cb = Callback("cmcr_train_callback", on_step)
        st = lib.cmcr_trainer_run(trainer, cb.c, ffi.NULL)
        if st == lib.CMCR_EINTERRUPTED:
            message = text(lib.cmcr_last_error())
            if cb.exc is not None:
                note = "cmcr.train: %s%s" % (message, "; continue with cmcr.train(..., resume=%r)"
                                             % os.fspath(checkpoint) if checkpoint is not None else "")
                logger.warning("%s", note)
                if hasattr(cb.exc, "add_note"):
                    cb.exc.add_note(note)
                cb.reraise()
            e = StoppedError(message, st, "CMCR_EINTERRUPTED")
            e.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
            raise e
        cb.reraise()
        check(st)
        return _finish(trainer, p, provenance, out)
    finally:
        lib.cmcr_trainer_free(trainer)
        del arrays


def _finish(trainer, p, provenance, out):
    """The trained model, copied out of the trainer (whose own model it never shares), with
    the training record in its metadata; written to out when given (as the command does)."""
    ts = ffi.new("cmcr_tensors **")
    check(lib.cmcr_model_to_tensors(lib.cmcr_trainer_model(trainer), ts))
    ts = ffi.gc(ts[0], lib.cmcr_tensors_free)
    m = ffi.new("cmcr_model **")
    origin = os.fspath(out) if out is not None else "(trained model)"
    check(lib.cmcr_model_from_tensors(ts, cstr(origin), m))
    model = Model(m[0], origin)
    cfg = free_string(lib.cmcr_train_params_to_json(p))
    model.set_meta("cmcr.train_config", cfg if cfg is not None else "{}")
    model.set_meta("cmcr.data", provenance)
    if out is not None:
        model.save(out)
    return model


def aggregate(queries, memory, tau_mem=0.01, top_k=0, bf16=False, query_block=1024, memory_block=4096,
              cache_dir=None, out=None, progress=None):
    """Semantic consistency (memory aggregation): for each query q,
    normalize(sum_k softmax_k(q . m_k / tau_mem) m_k) over the memory rows (top_k: only the k
    best). The same floats as `cmcr aggregate`. cache_dir: cache the result on disk by the
    content hash of the inputs. progress(done, total): returning True stops (StoppedError)."""
    q = _arrays.floats(queries, "aggregate: queries")
    m = _arrays.floats(memory, "aggregate: memory", cols=q.shape[1])
    o = _arrays.output(out, q.shape, "aggregate", (q, m))
    prm = ffi.new("cmcr_aggregate_params *", lib.cmcr_aggregate_default_params())
    prm.tau_mem, prm.top_k, prm.bf16 = float(tau_mem), int(top_k), int(bool(bf16))
    prm.query_block, prm.memory_block = int(query_block), int(memory_block)
    # a callback even without progress: Ctrl-C is seen there (and stops the work)
    cb = Callback("cmcr_progress_fn", progress or (lambda done, total: False))
    prm.progress = cb.c
    hit = ffi.new("int *")
    st = lib.cmcr_aggregate_cached(cstr(cache_dir, "cache_dir"), _arrays.ptr(q), q.shape[0], _arrays.ptr(m),
                                   m.shape[0], q.shape[1], prm, _arrays.wptr(o), hit)
    cb.reraise()
    check(st)
    return o
