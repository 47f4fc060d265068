"""Arrays in and out: float32 C-contiguous inputs reach C without a copy (the pointer C gets is
the array's own; and no array of the input's size is allocated on the way, which tracemalloc
sees since NumPy reports its allocations to it), outputs given with out= are written in place,
other dtypes and layouts are converted, and what cannot be used is refused with a clear
message."""
import tracemalloc

import numpy as np
import pytest

import cmcr
from cmcr import _arrays


def test_float32_contiguous_is_passed_as_is():
    x = np.ones((5, 3), dtype=np.float32)
    a = _arrays.floats(x, "x")
    assert a is x
    p = _arrays.ptr(a)
    assert int(cmcr.ffi.cast("uintptr_t", p)) == _arrays.address(x)
    ro = np.ones((2, 3), dtype=np.float32)
    ro.flags.writeable = False  # read-only inputs are fine: the library only reads them
    assert _arrays.floats(ro, "ro") is ro
    assert int(cmcr.ffi.cast("uintptr_t", _arrays.ptr(ro))) == _arrays.address(ro)


@pytest.mark.parametrize("make", [
    lambda: np.ones((5, 3), dtype=np.float64),
    lambda: np.ones((5, 3), dtype=np.float16),
    lambda: np.ones((3, 5), dtype=np.float32).T,           # a transposed view (Fortran order)
    lambda: np.ones((10, 3), dtype=np.float32)[::2],        # a strided view
    lambda: np.ones((5, 3), dtype=">f4"),                   # big-endian
    lambda: [[1.0, 2.0, 3.0]] * 5,                          # a list
])
def test_other_floats_are_converted(make):
    x = make()
    a = _arrays.floats(x, "x")
    assert a.dtype == np.float32 and a.flags.c_contiguous and a.dtype.isnative
    if isinstance(x, np.ndarray):
        assert not np.shares_memory(a, x)
    np.testing.assert_array_equal(a, np.asarray(x, dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_, np.complex64, object])
def test_non_floats_are_refused(dtype):
    with pytest.raises(cmcr.UnsupportedError) as e:
        _arrays.floats(np.zeros((2, 3), dtype=dtype), "queries")
    assert "queries" in str(e.value) and "not floating point" in str(e.value)


def test_shapes_are_checked():
    with pytest.raises(cmcr.ShapeError, match="expected a matrix"):
        _arrays.floats(np.zeros(3, np.float32), "x")
    with pytest.raises(cmcr.ShapeError, match="3 wide but 4"):
        _arrays.floats(np.zeros((2, 3), np.float32), "x", cols=4)


def test_labels():
    y = np.arange(4, dtype=np.int64)
    assert _arrays.labels(y, "y") is y
    np.testing.assert_array_equal(_arrays.labels(np.arange(4, dtype=np.int32)[:, None], "y"), y)
    with pytest.raises(cmcr.UnsupportedError, match="labels must be integers"):
        _arrays.labels(np.arange(4.0), "y")
    with pytest.raises(cmcr.ShapeError, match="3 labels for 4 rows"):
        _arrays.labels(y[:3], "y", 4)


def test_out_is_written_in_place(trained, world):
    x = world.test_x
    out = np.full((len(x), trained.shape_a.out_dim), np.nan, dtype=np.float32)
    r = trained.project(x, "a", out=out)
    assert r is out and np.isfinite(out).all()
    np.testing.assert_array_equal(out, trained.project(x, "a"))
    # an in-place normalisation of a float32 array, and a converted copy for a float64 one
    y = np.array(world.test_y[:4] * 3, dtype=np.float32)
    assert cmcr.normalize_rows(y) is y
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1, rtol=1e-6)
    z = np.array(world.test_y[:4] * 3, dtype=np.float64)
    zn = cmcr.normalize_rows(z)
    assert zn is not z and zn.dtype == np.float32 and np.allclose(np.linalg.norm(z, axis=1), 3, rtol=1e-5)


def test_out_refusals(trained, world):
    x = world.test_x[:4]
    w = trained.shape_a.out_dim
    with pytest.raises(cmcr.ArgumentError, match="float32"):
        trained.project(x, "a", out=np.empty((4, w), np.float64))
    with pytest.raises(cmcr.ArgumentError, match="not contiguous"):
        trained.project(x, "a", out=np.empty((w, 4), np.float32).T)
    ro = np.empty((4, w), np.float32)
    ro.flags.writeable = False
    with pytest.raises(cmcr.ArgumentError, match="read-only"):
        trained.project(x, "a", out=ro)
    with pytest.raises(cmcr.ShapeError, match="expected"):
        trained.project(x, "a", out=np.empty((5, w), np.float32))
    sq = np.zeros((4, 4), np.float32)
    with pytest.raises(cmcr.ArgumentError, match="overlaps an input"):
        cmcr.dot_rows(sq, sq, out=sq)


def _peak(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_no_copy_of_a_large_float32_input(trained):
    # 16 MB of float32 rows: projected into a preallocated out, the wrapper allocates nothing of
    # that size; the same rows as float64 are converted (a 16 MB float32 copy shows up).
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal((100_000, trained.shape_a.in_dim), dtype=np.float32)
    x64 = x32.astype(np.float64)
    out = np.empty((len(x32), trained.shape_a.out_dim), dtype=np.float32)
    trained.project(x32[:10], "a")  # warm up whatever is allocated once
    p32 = _peak(lambda: trained.project(x32, "a", out=out))
    p64 = _peak(lambda: trained.project(x64, "a", out=out))
    assert p32 < x32.nbytes / 100, p32
    assert p64 >= x32.nbytes, p64
