"""Every exception class, raised by the library for a real bad input (not constructed by hand),
with the library's one-line message naming the file; and errors from callbacks."""
import numpy as np
import pytest

import cmcr


def npy_header(shape, descr="<f4", fortran=False, version=1):
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    pre = 10 if version == 1 else 12
    h = h + " " * (63 - (len(h) + pre) % 64) + "\n"
    size = len(h).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + h.encode()


def check(exc, fn, *names, builtin=None):
    with pytest.raises(exc) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in names), msg
    assert isinstance(e.value, cmcr.Error) and e.value.status == exc.status
    if builtin:
        assert isinstance(e.value, builtin)
    return msg


def test_every_status_from_the_library(tmp_path, trained):
    p = lambda n: str(tmp_path / n)  # noqa: E731
    # CMCR_EIO: a file that is not there, a path through a file
    np.save(p("good.npy"), np.ones((2, 3), np.float32))
    check(cmcr.FileError, lambda: cmcr.load_matrix(p("missing.npy")), "missing.npy", "cannot open", builtin=OSError)
    check(cmcr.FileError, lambda: cmcr.load_model(p("good.npy/m.pt")), "good.npy/m.pt", "Not a directory")
    # CMCR_EFORMAT: truncated, not a model
    open(p("trunc.npy"), "wb").write(npy_header("(6, 8)") + b"\0" * 10)
    check(cmcr.FormatError, lambda: cmcr.load_matrix(p("trunc.npy")), "trunc.npy", "truncated", builtin=ValueError)
    check(cmcr.FormatError, lambda: cmcr.load_model(p("good.npy")), "good.npy", "not a C-MCR model")
    # CMCR_EUNSUPPORTED: Fortran order, integers as embeddings
    open(p("fortran.npy"), "wb").write(npy_header("(2, 2)", fortran=True) + b"\0" * 16)
    check(cmcr.UnsupportedError, lambda: cmcr.load_matrix(p("fortran.npy")), "fortran.npy", "Fortran order")
    np.save(p("ints.npy"), np.ones((2, 2), np.int64))
    check(cmcr.UnsupportedError, lambda: cmcr.load_matrix(p("ints.npy")), "ints.npy", "integers")
    # CMCR_ESHAPE: a 3-D array as a matrix; a file of the wrong width for a model
    np.save(p("three.npy"), np.ones((2, 2, 2), np.float32))
    check(cmcr.ShapeError, lambda: cmcr.load_matrix(p("three.npy")), "three.npy", "2-D")
    np.save(p("wide.npy"), np.ones((3, 9), np.float32))
    check(cmcr.ShapeError, lambda: trained.project_file(p("wide.npy"), p("out.npy"), "a"), "wide.npy")
    # CMCR_EVALUE: NaN in a row
    np.save(p("nan.npy"), np.array([[1, 2], [3, np.nan]], np.float32))
    check(cmcr.InvalidValueError, lambda: cmcr.load_matrix(p("nan.npy")), "nan.npy", "row 1 contains NaN")
    # CMCR_ENOMEM: a header larger than the library's limit (100 MiB; the file is sparse)
    with open(p("bighead.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x02\x00" + (101 << 20).to_bytes(4, "little"))
        f.truncate(12 + (101 << 20))
    check(cmcr.OutOfMemoryError, lambda: cmcr.load_tensors(p("bighead.npy")), "bighead.npy", "limit",
          builtin=MemoryError)
    # CMCR_EINVAL: a .npy file takes one tensor; an unknown preset
    check(cmcr.ArgumentError, lambda: cmcr.save_tensors(p("two.npy"), {"a": np.ones(2), "b": np.ones(2)}),
          "two.npy", builtin=ValueError)
    check(cmcr.ArgumentError, lambda: cmcr.preset_shape("clip-clap"), "clip-clap")
    # CMCR_EINTERRUPTED: a callback asked to stop
    np.save(p("rows.npy"), np.ones((50, 40), np.float32))
    check(cmcr.StoppedError, lambda: trained.project_file(p("rows.npy"), p("o.npy"), "a", block=10,
                                                          progress=lambda d, t: True))
    assert not list(tmp_path.glob("o.npy*"))


def test_python_side_refusals_use_the_same_classes(trained):
    with pytest.raises(cmcr.ShapeError, match="project: side a input: rows are 24 wide but 40"):
        trained.project(np.ones((2, 24), np.float32), "a")
    with pytest.raises(cmcr.UnsupportedError, match="not floating point"):
        trained.project(np.ones((2, 40), np.int32), "a")
    with pytest.raises(cmcr.ArgumentError, match="side must be 'a' or 'b'"):
        trained.project(np.ones((2, 40), np.float32), "x")
    with pytest.raises(cmcr.ArgumentError, match="NUL"):
        cmcr.load_matrix("a\0b.npy")
    with pytest.raises(TypeError, match="path"):
        cmcr.load_matrix(42)


def test_exceptions_from_callbacks_propagate(trained, tmp_path):
    np.save(tmp_path / "rows.npy", np.ones((50, 40), np.float32))

    class Mine(Exception):
        pass

    def cb(done, total):
        raise Mine("raised in the callback at %d" % done)

    with pytest.raises(Mine, match="at 10"):
        trained.project_file(tmp_path / "rows.npy", tmp_path / "o.npy", "a", block=10, progress=cb)
    assert not (tmp_path / "o.npy").exists()


def test_ctrl_c_in_the_log_callback_is_not_lost(tmp_path):
    # A KeyboardInterrupt raised while the library's log callback runs Python code cannot cross
    # the C frames: it is kept, and raised when the call returns (instead of its error).
    calls = []

    def fn(level, msg):  # a Ctrl-C during the first message only
        calls.append(msg)
        if len(calls) == 1:
            raise KeyboardInterrupt

    cmcr.set_log(fn)
    try:
        with pytest.raises(KeyboardInterrupt):
            cmcr.load_matrix(tmp_path / "x.npy")  # fails, and logs the failure
        with pytest.raises(cmcr.FileError):
            cmcr.load_matrix(tmp_path / "x.npy")  # raised once, not again at the next call
        cmcr.set_log(lambda level, msg: 1 / 0)  # any other exception: printed, the call goes on
        with pytest.raises(cmcr.FileError):
            cmcr.load_matrix(tmp_path / "x.npy")
    finally:
        cmcr.set_log("logging")


def test_ctrl_c_stops_project_file_and_aggregate(trained, tmp_path):
    import signal
    np.save(tmp_path / "rows.npy", np.ones((50, 40), np.float32))
    # as a Ctrl-C would, raised by the handler at the next callback (here: from the first one)
    with pytest.raises(KeyboardInterrupt):
        trained.project_file(tmp_path / "rows.npy", tmp_path / "o.npy", "a", block=10,
                             progress=lambda d, t: signal.raise_signal(signal.SIGINT))
    assert not list(tmp_path.glob("o.npy*"))
    q = np.ones((20, 8), np.float32)
    with pytest.raises(KeyboardInterrupt):
        cmcr.aggregate(q, q, memory_block=4, progress=lambda d, t: signal.raise_signal(signal.SIGINT))
