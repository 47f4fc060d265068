"""The binding itself: declarations read from cmcr.h, the structure layouts cffi computes from
them (checked against the offsets the library reports), every function of the header
resolvable, where the library is found, the version check, the errors and the log."""
import logging
import os
import re

import pytest

import cmcr
from cmcr import _errors, _lib
from conftest import SRC, run_python


def header_functions():
    text = open(os.path.join(SRC, "include", "cmcr.h"), encoding="utf-8").read()
    return sorted(set(re.findall(r"CMCR_API\b[^;(]*?\b(cmcr_\w+)\s*\(", text)))


def test_every_function_of_the_header_resolves():
    names = header_functions()
    assert len(names) > 100, names
    for n in names:
        f = getattr(_lib.lib, n)  # dlsym: AttributeError if the library does not export it
        assert "(" in str(_lib.ffi.typeof(f)), n


def test_struct_layout_matches_the_library():
    # cmcr_train_settings gives offsetof(cmcr_train_params, field) as the C compiler laid it
    # out; cffi's own layout (from the same declarations) must agree for every field.
    settings = cmcr.train_settings()
    assert len(settings) >= 20
    n = _lib.ffi.new("size_t *")
    s = _lib.lib.cmcr_train_settings(n)
    for i in range(n[0]):
        name = _lib.ffi.string(s[i].name).decode()
        assert _lib.ffi.offsetof("cmcr_train_params", name) == s[i].offset, name


def test_cdef_from_header_drops_only_what_cffi_cannot_read():
    text = open(_lib.HEADER, encoding="utf-8").read()
    cdef = _lib.cdef_from_header(text)
    assert "extern" not in cdef and "CMCR_API" not in cdef and "__attribute__" not in cdef
    assert "#define CMCR_MAX_DIMS 8" in cdef
    assert cdef.count("\n") == text.count("\n")  # line numbers kept: cffi's errors point into cmcr.h
    assert _lib.lib.CMCR_MAX_DIMS == 8 and _lib.lib.CMCR_EINTERRUPTED == 8


def test_version_and_library():
    assert cmcr.__version__ == _lib.HEADER_VERSION == cmcr.info()["version"]
    want = os.environ.get("CMCR_LIBRARY")
    if want:
        assert os.path.samefile(cmcr.LIBRARY, want)
    i = cmcr.info()
    assert i["gemm_backend"] in ("oneDNN", "OpenBLAS") and i["blas_threads"] >= 1


def test_library_lookup_order(tmp_path):
    lib = os.environ.get("CMCR_LIBRARY") or cmcr.LIBRARY
    # an explicit CMCR_LIBRARY that does not exist is an error naming it, not a silent fallback
    r = run_python("import cmcr", {"CMCR_LIBRARY": str(tmp_path / "nope.so")})
    assert r.returncode != 0 and "nope.so" in r.stderr and "CMCR_LIBRARY" in r.stderr
    # without CMCR_LIBRARY and nothing installed beside the package: the loader's search path
    env = {"CMCR_LIBRARY": "", "LD_LIBRARY_PATH": os.path.dirname(lib)}
    r = run_python("import cmcr, os; print(cmcr.LIBRARY)", env)
    assert r.returncode == 0, r.stderr
    assert os.path.samefile(r.stdout.strip(), lib)
    r = run_python("import cmcr", {"CMCR_LIBRARY": "", "LD_LIBRARY_PATH": str(tmp_path)})
    if r.returncode != 0:  # nothing on the loader's path either: the message lists what was tried
        assert "libcmcr.so.0" in r.stderr and "loader" in r.stderr


def test_error_classes_by_status():
    lib = _lib.lib
    want = {lib.CMCR_EINVAL: (cmcr.ArgumentError, ValueError), lib.CMCR_EIO: (cmcr.FileError, OSError),
            lib.CMCR_EFORMAT: (cmcr.FormatError, ValueError), lib.CMCR_EUNSUPPORTED: (cmcr.UnsupportedError, ValueError),
            lib.CMCR_ESHAPE: (cmcr.ShapeError, ValueError), lib.CMCR_EVALUE: (cmcr.InvalidValueError, ValueError),
            lib.CMCR_ENOMEM: (cmcr.OutOfMemoryError, MemoryError),
            lib.CMCR_EINTERRUPTED: (cmcr.StoppedError, cmcr.Error)}
    assert len(want) == 8
    for status, (cls, base) in want.items():
        assert cls.status == status
        assert getattr(lib, cls.status_name) == status
        e = _lib.error(status, "x.npy: a message")
        assert type(e) is cls and isinstance(e, cmcr.Error) and isinstance(e, base)
        assert str(e) == "x.npy: a message" and e.message == "x.npy: a message" and e.status == status
    assert isinstance(_errors.error_for(99, "m"), cmcr.Error)


def test_errors_carry_the_library_message(tmp_path):
    p = tmp_path / "missing.npy"
    with pytest.raises(cmcr.FileError) as e:
        cmcr.load_matrix(p)
    assert str(p) in str(e.value) and "cannot open" in str(e.value)
    assert e.value.status_name == "CMCR_EIO"


def test_log_goes_to_logging(caplog, tmp_path):
    # every failure is logged at DEBUG by the library; the bridge hands it to logging
    with caplog.at_level(logging.DEBUG, logger="cmcr"):
        with pytest.raises(cmcr.FileError):
            cmcr.load_matrix(tmp_path / "gone.npy")
    assert any("gone.npy" in r.getMessage() and r.name == "cmcr" for r in caplog.records)
    seen = []
    cmcr.set_log(lambda level, msg: seen.append((level, msg)))
    try:
        with pytest.raises(cmcr.FileError):
            cmcr.load_matrix(tmp_path / "gone2.npy")
    finally:
        cmcr.set_log("logging")
    assert any(level == logging.DEBUG and "gone2.npy" in msg for level, msg in seen)
    cmcr.set_log(None)
    cmcr.set_log("logging")
    with pytest.raises(TypeError):
        cmcr.set_log(42)


def test_slow_openblas_kernels_are_reported():
    # as the command's test does: pretend OpenBLAS picked generic kernels on this CPU
    r = run_python("import warnings; warnings.simplefilter('always'); import cmcr",
                   {"CMCR_TEST_BLAS_CORE": "Prescott", "OPENBLAS_CORETYPE": None})
    assert r.returncode == 0, r.stderr
    flags = open("/proc/cpuinfo").read()
    if " avx2 " in flags or " avx512f " in flags:  # a better set exists for this CPU
        assert "Prescott" in r.stderr and "OPENBLAS_CORETYPE=" in r.stderr and "RuntimeWarning" in r.stderr
    r = run_python("import warnings; warnings.simplefilter('error'); import cmcr",
                   {"CMCR_TEST_BLAS_CORE": "Prescott", "OPENBLAS_CORETYPE": "Haswell"})
    assert r.returncode == 0, r.stderr  # the user's own choice: no warning
