"""Training from Python: the same model file, byte for byte, as `cmcr train` with the same inputs
and seed; progress; stopping from the callback; Ctrl-C (KeyboardInterrupt) writes a checkpoint,
re-raises, and the resumed run ends in the model of an uninterrupted one; the inputs are read in
place and left unchanged; refusals; the trained model loads in PyTorch strictly."""
import os
import signal
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import cmcr
from conftest import SRC, file_bytes

SMALL = dict(epochs=2, batch=128, preset="ulip-clip", out_dim=32)


def world_files(world, base):
    rel = os.path.relpath(world.dir, base)
    return [os.path.join(rel, f + ".npy") for f in ("overlap_a", "overlap_b", "memory_a", "memory_b")]


@pytest.mark.parametrize("ext", ["safetensors", "pt"])
def test_train_equals_the_cli(cli, world, tmp_path, monkeypatch, ext):
    # The model file records the input paths and the output name: both runs use the same
    # relative ones, from two sibling folders.
    (tmp_path / "cli").mkdir()
    (tmp_path / "py").mkdir()
    files = world_files(world, tmp_path / "cli")
    out = "m." + ext
    cli("train", "--overlap-a", files[0], "--overlap-b", files[1], "--memory-a", files[2], "--memory-b", files[3],
        "--epochs", "2", "--batch", "128", "--preset", "ulip-clip", "--out-dim", "32", "--seed", "7",
        "--tau", "0.05", "--cache-dir", "none", "--quiet", "--out", out, cwd=tmp_path / "cli")
    monkeypatch.chdir(tmp_path / "py")
    m = cmcr.train(*files, out=out, epochs=2, batch=128, preset="ulip-clip", out_dim=32, seed=7, tau=0.05)
    assert file_bytes(tmp_path / "py" / out) == file_bytes(tmp_path / "cli" / out)
    assert file_bytes(tmp_path / "py" / (out + ".ckpt")) == file_bytes(tmp_path / "cli" / (out + ".ckpt"))
    assert m.origin == out
    if ext == "safetensors":
        import json
        data = json.loads(m.get_meta("cmcr.data"))
        assert data["overlap-a"]["path"] == files[0] and data["out"] == out
        assert json.loads(m.get_meta("cmcr.train_config"))["tau"] == 0.05


def test_arrays_train_the_same_model(world, tmp_path):
    a = cmcr.train(*(os.path.join(world.dir, f + ".npy") for f in ("overlap_a", "overlap_b", "memory_a", "memory_b")),
                   **SMALL)
    b = cmcr.train(world.overlap_a, world.overlap_b, world.memory_a, world.memory_b, **SMALL)
    ta, tb = a.to_tensors(), b.to_tensors()
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k])
    import json
    rec = json.loads(b.get_meta("cmcr.data"))
    assert "path" not in rec["overlap-a"] and rec["overlap-a"]["rows"] == 600 and len(rec["overlap-a"]["hash"]) == 16
    assert rec["overlap-a"]["hash"] == json.loads(a.get_meta("cmcr.data"))["overlap-a"]["hash"]


def test_progress_and_stop(world, tmp_path):
    seen = []
    cmcr.train(world.overlap_a, world.overlap_b, world.memory_a, world.memory_b, progress=seen.append, **SMALL)
    assert [s.step for s in seen] == list(range(1, seen[0].total_steps + 1))
    assert seen[-1].epoch == 2 and seen[-1].epochs == 2 and all(np.isfinite(s.loss) for s in seen)
    assert isinstance(seen[0], cmcr.TrainStats)
    ck = tmp_path / "stop.ckpt"
    with pytest.raises(cmcr.StoppedError) as e:
        cmcr.train(world.overlap_a, world.overlap_b, world.memory_a, world.memory_b, checkpoint=ck,
                   progress=lambda s: s.step == 3, **SMALL)
    assert e.value.checkpoint == str(ck) and "stopped at step 3" in str(e.value) and str(ck) in str(e.value)
    info = cmcr.checkpoint_info(ck)
    assert info["step"] == 3 and info["params"]["batch"] == 128 and info["params"]["shape_a"] == (1, 40, 0, 32)
    assert info["provenance"]["overlap-a"]["rows"] == 600


def _uninterrupted(world, tmp_path):
    out = tmp_path / "full.pt"  # a .pt file holds the state_dict only (no record of the run's paths)
    cmcr.train(world.overlap_a, world.overlap_b, world.memory_a, world.memory_b, out=out, **SMALL)
    return file_bytes(out)


def test_keyboard_interrupt_writes_a_checkpoint_and_resumes(world, tmp_path):
    # Ctrl-C as Python delivers it: SIGINT's handler raises KeyboardInterrupt in the main
    # thread at its next Python line, here the progress callback after step 4.
    out = tmp_path / "m.pt"

    def on_step(s):
        if s.step == 4:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt) as e:
        cmcr.train(world.overlap_a, world.overlap_b, world.memory_a, world.memory_b, out=out, progress=on_step,
                   **SMALL)
    notes = " ".join(getattr(e.value, "__notes__", []))
    assert "stopped at step 4" in notes and "checkpoint written to %s.ckpt" % out in notes and "resume=" in notes
    assert not out.exists() and cmcr.checkpoint_info(str(out) + ".ckpt")["step"] == 4
    m = cmcr.train(world.overlap_a, world.overlap_b, world.memory_a, world.memory_b, out=out,
                   resume=str(out) + ".ckpt")  # the settings and shapes come from the checkpoint
    assert file_bytes(out) == _uninterrupted(world, tmp_path)
    assert m.shape_a.out_dim == 32


CHILD = r"""
import sys, cmcr
out = sys.argv[1]
def on_step(s):
    if s.step == 2:
        print("ready", flush=True)
f = ["%s/%s.npy" % (sys.argv[2], n) for n in ("overlap_a", "overlap_b", "memory_a", "memory_b")]
cmcr.train(*f, out=out, epochs=400, batch=64, preset="ulip-clip", out_dim=16, progress=on_step)
print("finished", flush=True)
"""


def test_sigint_from_outside(world, tmp_path):
    # A real Ctrl-C: SIGINT sent to a python3 training in C (the GIL released), 2 steps in, of
    # 4000: it stops after the step in progress, writes its checkpoint, and dies of the
    # KeyboardInterrupt. The checkpoint resumes (from the paths it records) to the end.
    out = tmp_path / "m.safetensors"
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(out), world.dir], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    rest, err = p.communicate()
    assert p.returncode in (-signal.SIGINT, 130), (p.returncode, err)
    assert "KeyboardInterrupt" in err and "checkpoint written to" in err and "finished" not in rest
    info = cmcr.checkpoint_info(str(out) + ".ckpt")
    assert 2 <= info["step"] < 4000
    with pytest.raises(cmcr.StoppedError):  # resumes where it stopped: 5 more steps, then stop
        cmcr.train(resume=str(out) + ".ckpt", progress=lambda s: s.step >= info["step"] + 5)
    assert cmcr.checkpoint_info(str(out) + ".ckpt")["step"] == info["step"] + 5


def test_inputs_read_in_place_and_unchanged(world, trained):
    # 6,000-row inputs (2.8 MB in all): no copy of them is made on the Python side (tracemalloc
    # sees NumPy's allocations; measured peak about 0.1 MB), and they are not modified.
    arrays = [np.tile(a, (10, 1)) for a in (world.overlap_a, world.overlap_b, world.memory_a, world.memory_b)]
    before = [a.tobytes() for a in arrays]
    tracemalloc.start()
    try:
        cmcr.train(*arrays, **dict(SMALL, epochs=1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < sum(a.nbytes for a in arrays) / 10, peak
    assert [a.tobytes() for a in arrays] == before
    # another model, used while this one trains: never touched
    probe = trained.project(world.test_x, "a")
    results = []
    stop = threading.Event()

    def project_meanwhile():
        while not stop.is_set():
            results.append(np.array_equal(trained.project(world.test_x, "a"), probe))

    t = threading.Thread(target=project_meanwhile)
    t.start()
    try:
        cmcr.train(world.overlap_a, world.overlap_b, world.memory_a, world.memory_b, **SMALL)
    finally:
        stop.set()
        t.join()
    assert results and all(results)


def test_refusals(world, tmp_path):
    oa, ob, ma, mb = world.overlap_a, world.overlap_b, world.memory_a, world.memory_b
    with pytest.raises(cmcr.ShapeError, match="has 600 rows but .* has 599"):
        cmcr.train(oa, ob[:599], ma, mb, **SMALL)
    np.save(tmp_path / "short.npy", ob[:599])
    with pytest.raises(cmcr.ShapeError, match="short.npy has 599"):
        cmcr.train(oa, str(tmp_path / "short.npy"), ma, mb, **SMALL)
    with pytest.raises(cmcr.ShapeError, match="same MCR, same width"):
        cmcr.train(oa, ob, mb, mb, **SMALL)
    with pytest.raises(cmcr.ArgumentError, match="memory_b is required"):
        cmcr.train(oa, ob, ma, **SMALL)
    with pytest.raises(cmcr.ArgumentError, match="unknown setting 'tauu'"):
        cmcr.train(oa, ob, ma, mb, tauu=1, **SMALL)
    with pytest.raises(cmcr.ArgumentError, match="tau must be between"):
        cmcr.train(oa, ob, ma, mb, tau=0.0, **SMALL)
    with pytest.raises(cmcr.ArgumentError, match="must end in .safetensors or .pt"):
        cmcr.train(oa, ob, ma, mb, out=tmp_path / "m.bin", **SMALL)
    bad = np.array(oa)
    bad[7, 3] = np.nan
    with pytest.raises(cmcr.InvalidValueError, match="overlap-a: row 7 contains NaN"):
        cmcr.train(bad, ob, ma, mb, **SMALL)
    with pytest.raises(cmcr.UnsupportedError, match="integer arrays are labels"):
        cmcr.train(world.test_labels.reshape(-1, 1), ob, ma, mb, **SMALL)
    with pytest.raises(cmcr.ArgumentError, match="go together"):
        cmcr.train(oa, ob, pseudo_a=oa, **SMALL)
    # pseudo embeddings from aggregate() replace the memories, as in the command
    pa, pb = cmcr.aggregate(oa, ma), cmcr.aggregate(ob, mb)
    # (to float rounding: here the pseudo rows are read from an array, there made in the trainer)
    np.testing.assert_allclose(cmcr.train(oa, ob, pseudo_a=pa, pseudo_b=pb, **SMALL).to_tensors()["Head_A.net.0.weight"],
                               cmcr.train(oa, ob, ma, mb, **SMALL).to_tensors()["Head_A.net.0.weight"], atol=1e-6)


def test_settings_listed():
    s = {x["name"]: x for x in cmcr.train_settings()}
    assert s["tau"]["default"] == 0.01 and s["epochs"]["default"] == 20 and s["consistency"]["type"] == "bool"
    assert s["threads"]["stored"] is False and s["lr"]["stored"] is True


INTEROP = r"""
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[1])
import pt_interop
d = sys.argv[2]
for preset in ("ulip-clip", "clap-clip"):
    sd = torch.load("%s/%s.pt" % (d, preset))
    model = pt_interop.Connector(pt_interop.OneLayerHead if preset == "ulip-clip" else pt_interop.TwoLayerHead)
    model.load_state_dict(sd, strict=True)
    model.eval()
    x = torch.from_numpy(np.load(d + "/x.npy"))
    with torch.no_grad():
        for head, side in ((model.Head_A, "a"), (model.Head_B, "b")):
            y = torch.nn.functional.normalize(head(torch.nn.functional.normalize(x, dim=1)), dim=1).numpy()
            diff = float(np.abs(y - np.load("%s/%s_%s.npy" % (d, preset, side))).max())
            assert diff < 1e-5, (preset, side, diff)
    print(preset, "strict load and forward: ok")
"""


def test_pytorch_loads_a_python_trained_model(tmp_path):
    # Both presets at the released widths (512), trained from Python and saved as .pt: PyTorch
    # loads them into the C-MCR modules of scripts/pt_interop.py with load_state_dict(strict=True)
    # and its forward pass (eval mode) gives the rows cmcr projects.
    r = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("python3 has no torch (Debian's python3-torch): the interop check needs it")
    w = cmcr.synth(seed=2, dim_a=512, dim_b=512, concepts=10, clusters=2, n_overlap=256, n_memory_a=200,
                   n_memory_b=200, n_test=16, n_oracle=16, n_diag=50)
    np.save(tmp_path / "x.npy", w.test_x)
    for preset in ("ulip-clip", "clap-clip"):
        m = cmcr.train(w.overlap_a, w.overlap_b, w.memory_a, w.memory_b, epochs=1, batch=128, preset=preset)
        m.save(tmp_path / (preset + ".pt"))
        for side in "ab":
            np.save(tmp_path / ("%s_%s.npy" % (preset, side)), m.project(w.test_x, side))
    r = subprocess.run([sys.executable, "-c", INTEROP, os.path.join(SRC, "scripts"), str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("strict load and forward: ok") == 2
