"""Threads and the GIL.

The GIL is released during every C call: a call that cannot return until another Python thread
has run (it reads a FIFO that thread writes) returns. Thread-safety, in the sense the package
promises: concurrent calls on one loaded model or encoder give the floats of serial calls;
concurrent trainings (one trainer each) give the models of serial ones; the library's log
callback may run on its worker threads."""
import os
import sys
import threading

import numpy as np
import pytest

import cmcr
from conftest import run_python

FIFO_CHILD = r"""
import sys, threading, cmcr
fifo = sys.argv[1]
got = {}
t = threading.Thread(target=lambda: got.setdefault("format", cmcr.file_format(fifo)))
t.start()
# cmcr_file_format (C) opens the FIFO and reads 8 bytes: it blocks until this thread has opened
# the other end and written them. If the C call kept the GIL, this thread could never run.
with open(fifo, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00")
t.join()
print(got["format"])
"""


def test_the_gil_is_released_during_c_calls(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # In a child process: holding the GIL would deadlock it, and the timeout (a guard against
    # hanging the suite, not a measure of speed) would then fail the test.
    r = run_python(FIFO_CHILD.replace("sys.argv[1]", repr(str(fifo))), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "npy"


def run_threads(n, fn):
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def body(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as e:  # noqa: B902 -- reported below
            errors.append(e)

    ts = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    return results


def test_concurrent_projection_equals_serial(trained, world):
    serial = [trained.project(world.memory_a, "a"), trained.project(world.memory_b, "b")]
    sims = trained.similarity(world.test_x, "a", world.test_y, "b", softmax=True)

    def work(i):
        return [trained.project(world.memory_a, "a"), trained.project(world.memory_b, "b"),
                trained.similarity(world.test_x, "a", world.test_y, "b", softmax=True)]
    for got in run_threads(4, work):
        np.testing.assert_array_equal(got[0], serial[0])
        np.testing.assert_array_equal(got[1], serial[1])
        np.testing.assert_array_equal(got[2], sims)


def test_concurrent_embedding_equals_serial(pointbert_dir, clap_dir):
    pb = cmcr.PointBert(os.path.join(pointbert_dir, "ulip.pt"))
    d = os.path.join(pointbert_dir, "clouds")
    clouds = sorted(os.path.join(d, f) for f in os.listdir(d) if not f.startswith("c0"))
    clap = cmcr.Clap(os.path.join(clap_dir, "clap.pt"))
    sound = os.path.join(clap_dir, "audio", "a_short.wav")
    serial = (pb.embed_clouds(clouds), clap.embed_audio([sound]))
    for got in run_threads(3, lambda i: (pb.embed_clouds(clouds), clap.embed_audio([sound]))):
        np.testing.assert_array_equal(got[0], serial[0])
        np.testing.assert_array_equal(got[1], serial[1])


def test_concurrent_training_equals_serial(world):
    args = (world.overlap_a, world.overlap_b, world.memory_a, world.memory_b)
    kw = dict(epochs=1, batch=128, preset="ulip-clip", out_dim=16)
    serial = [cmcr.train(*args, seed=s, **kw).to_tensors() for s in (1, 2)]
    for s, got in zip((1, 2), run_threads(2, lambda i: cmcr.train(*args, seed=i + 1, **kw).to_tensors())):
        for k in got:
            np.testing.assert_array_equal(got[k], serial[s - 1][k])


def test_log_from_worker_threads(tmp_path, pointbert_dir):
    # cmcr_pointbert_clouds reads files in parallel on the library's threads; a failure there is
    # logged (DEBUG) from the thread it happens on, through the Python callback.
    seen, threads = [], set()

    def collect(level, msg):
        seen.append(msg)
        threads.add(threading.get_ident())

    bad = []
    for i in range(8):
        p = tmp_path / ("bad%d.npy" % i)
        p.write_bytes(b"\x93NUMPY junk")
        bad.append(str(p))
    pb = cmcr.PointBert(os.path.join(pointbert_dir, "ulip.pt"))
    cmcr.set_log(collect)
    try:
        with pytest.raises(cmcr.Error, match="bad"):
            pb.embed_clouds(bad, batch=8)
    finally:
        cmcr.set_log("logging")
    assert sum("bad" in m for m in seen) >= 8, seen
    print("log messages from %d thread(s)" % len(threads), file=sys.stderr)
