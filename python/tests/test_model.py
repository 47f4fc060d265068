"""Models, projection, similarity, aggregation and tensor files: the same bytes as the cmcr
command for the same inputs (the package calls the same library functions, with the same
blocking), models and tensors from paths and from memory, metadata, closing."""
import os
import threading

import numpy as np
import pytest

import cmcr
from conftest import file_bytes, shared_data


def test_project_equals_the_cli(cli, trained, world, tmp_path):
    src = os.path.join(world.dir, "test_x.npy")
    cli("project", "--model", trained.path, "--side", "a", "--in", src, "--out", tmp_path / "cli.npy")
    cmcr.save_matrix(tmp_path / "py.npy", trained.project(cmcr.load_matrix(src), "a"))
    assert file_bytes(tmp_path / "py.npy") == file_bytes(tmp_path / "cli.npy")
    trained.project_file(src, tmp_path / "file.npy", "a")
    assert file_bytes(tmp_path / "file.npy") == file_bytes(tmp_path / "cli.npy")
    one = trained.project(world.test_x[3], "a")  # one row, 1-D in and out
    assert one.shape == (trained.shape_a.out_dim,)
    np.testing.assert_array_equal(one, np.load(tmp_path / "cli.npy")[3])


def test_project_file_progress_and_stop(trained, world, tmp_path):
    src = os.path.join(world.dir, "memory_a.npy")
    seen = []
    trained.project_file(src, tmp_path / "p.npy", "a", block=100, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (500, 500) and len(seen) == 5
    with pytest.raises(cmcr.StoppedError):
        trained.project_file(src, tmp_path / "q.npy", "a", block=100, progress=lambda d, t: d >= 200)
    assert not os.path.exists(tmp_path / "q.npy")
    assert not [f for f in os.listdir(tmp_path) if ".tmp." in f]  # no temporary file left

    def boom(d, t):
        raise RuntimeError("from the callback")
    with pytest.raises(RuntimeError, match="from the callback"):  # re-raised after the C call
        trained.project_file(src, tmp_path / "r.npy", "a", block=100, progress=boom)
    assert not os.path.exists(tmp_path / "r.npy")


@pytest.mark.parametrize("softmax", [False, True])
def test_similarity_equals_the_cli(cli, trained, world, tmp_path, softmax):
    a, b = os.path.join(world.dir, "memory_a.npy"), os.path.join(world.dir, "test_y.npy")  # 500 rows: 2 blocks
    args = ["similarity", "--model", trained.path, "--a", a, "--side-a", "a", "--b", b, "--side-b", "b",
            "--top-k", "0", "--out", tmp_path / "cli.npy"]
    cli(*(args + (["--softmax", "--scale", "7.5"] if softmax else [])))
    s = trained.similarity(cmcr.load_matrix(a), "a", cmcr.load_matrix(b), "b", softmax=softmax, scale=7.5)
    assert s.shape == (500, 120)
    cmcr.save_matrix(tmp_path / "py.npy", s)
    assert file_bytes(tmp_path / "py.npy") == file_bytes(tmp_path / "cli.npy")
    if softmax:
        np.testing.assert_allclose(s.sum(axis=1), 1, rtol=1e-5)
    with pytest.raises(cmcr.ArgumentError, match="scale"):
        trained.similarity(world.test_x, "a", world.test_y, "b", softmax=True, scale=0)


def test_aggregate_equals_the_cli(cli, world, tmp_path):
    q, m = os.path.join(world.dir, "overlap_a.npy"), os.path.join(world.dir, "memory_a.npy")
    cli("aggregate", "--queries", q, "--memory", m, "--out", tmp_path / "cli.npy", "--tau-mem", "0.05")
    cmcr.save_matrix(tmp_path / "py.npy", cmcr.aggregate(world.overlap_a, world.memory_a, tau_mem=0.05))
    assert file_bytes(tmp_path / "py.npy") == file_bytes(tmp_path / "cli.npy")
    cli("aggregate", "--queries", q, "--memory", m, "--out", tmp_path / "cli5.npy", "--top-k", "5")
    cmcr.save_matrix(tmp_path / "py5.npy", cmcr.aggregate(world.overlap_a, world.memory_a, top_k=5))
    assert file_bytes(tmp_path / "py5.npy") == file_bytes(tmp_path / "cli5.npy")
    # cached: a second call reads the file the first wrote, with the same floats
    c = tmp_path / "cache"
    first = cmcr.aggregate(world.overlap_a, world.memory_a, cache_dir=c)
    assert len(os.listdir(c)) == 1
    np.testing.assert_array_equal(cmcr.aggregate(world.overlap_a, world.memory_a, cache_dir=c), first)
    with pytest.raises(cmcr.StoppedError):
        cmcr.aggregate(world.overlap_a, world.memory_a, memory_block=100, progress=lambda d, t: True)


def test_model_from_file_memory_tensors(trained, world, tmp_path):
    want = trained.project(world.test_y, "b")
    m2 = cmcr.Model.load(file_bytes(trained.path), name="uploaded.safetensors")
    np.testing.assert_array_equal(m2.project(world.test_y, "b"), want)
    assert m2.origin == "uploaded.safetensors"
    ts = trained.to_tensors()
    assert set(ts) == {"Head_%s.net.%s" % (h, k) for h in "AB" for k in
                       ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked")}
    assert ts["Head_A.net.0.weight"].shape == (32, 40) and ts["Head_B.net.0.weight"].shape == (32, 24)
    m3 = cmcr.Model.from_tensors(ts)
    np.testing.assert_array_equal(m3.project(world.test_y, "b"), want)
    c = trained.copy()
    c.set_meta("note", "a copy")
    assert c.get_meta("note") == "a copy" and trained.get_meta("note") is None
    assert trained.preset == "custom" and trained.shape("a") == cmcr.HeadShape(1, 40, 0, 32)
    for ext in ("pt", "safetensors"):
        trained.save(tmp_path / ("m." + ext))
        np.testing.assert_array_equal(cmcr.Model.load(tmp_path / ("m." + ext)).project(world.test_y, "b"), want)
    with pytest.raises(cmcr.FormatError, match="uploaded.bin"):
        cmcr.Model.load(b"not a model at all", name="uploaded.bin")


def test_save_equals_cli_convert(cli, trained, tmp_path):
    cli("convert", trained.path, tmp_path / "cli.pt")
    trained.save(tmp_path / "py.pt")
    assert file_bytes(tmp_path / "py.pt") == file_bytes(tmp_path / "cli.pt")
    trained.save(tmp_path / "py.safetensors")
    assert file_bytes(tmp_path / "py.safetensors") == file_bytes(trained.path)


def test_new_and_presets():
    m = cmcr.Model.new("clap-clip", seed=5)
    assert m.preset == "clap-clip" and m.shape_a == cmcr.HeadShape(2, 512, 1024, 512)
    assert cmcr.preset_shape("ulip-clip") == cmcr.HeadShape(1, 512, 0, 512)
    m2 = cmcr.Model.new(cmcr.HeadShape(1, 8, 0, 4), {"layers": 2, "in_dim": 6, "hidden": 10, "out_dim": 4}, seed=1)
    assert m2.shape_b == cmcr.HeadShape(2, 6, 10, 4)
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    np.testing.assert_allclose(np.linalg.norm(m2.project(x, "a"), axis=1), 1, rtol=1e-6)
    with pytest.raises(cmcr.ArgumentError, match="preset"):
        cmcr.Model.new("nonsense")
    with pytest.raises(cmcr.ArgumentError, match="side"):
        m2.project(x, "c")


def test_released_checkpoint_against_pytorch():
    ckpt = shared_data("cmcr-ulip-clip/ulip_clip.pt")
    x = cmcr.load_matrix(shared_data("clip-text/coco_clip_a+cname.npy"))  # float16 on disk: converted
    m = cmcr.load_model(ckpt)
    assert m.preset == "ulip-clip"
    for side, ref in (("a", "head_a"), ("b", "head_b")):
        want = np.load(shared_data("reference/coco_clip_a+cname.ulip_clip.%s.npy" % ref))
        assert np.abs(m.project(x, side) - want).max() < 2e-6


def test_close_waits_for_calls_in_flight(trained, world):
    m = trained.copy()
    want = m.project(world.memory_a, "a")
    started, errors, results = threading.Barrier(5), [], []

    def worker():
        started.wait()
        while True:
            try:
                results.append(np.array_equal(m.project(world.memory_a, "a"), want))
            except cmcr.ArgumentError as e:
                errors.append(str(e))
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    m.close()
    for t in threads:
        t.join()
    assert all(results) and len(errors) == 4 and all("closed" in e for e in errors)
    assert m.closed
    with pytest.raises(cmcr.ArgumentError, match="closed"):
        m.project(world.memory_a, "a")
    with cmcr.Model.load(trained.path) as m2:
        m2.project(world.test_x, "a")
    assert m2.closed


def test_tensor_files(cli, tmp_path):
    rng = np.random.default_rng(2)
    t = {"f32": rng.standard_normal((3, 4)).astype(np.float32), "f16": np.arange(6, dtype=np.float16),
         "f64": rng.standard_normal((2, 2, 2)), "i32": np.arange(5, dtype=np.int32),
         "i64": np.array([[-1, 2**40]], dtype=np.int64), "scalar": np.array(2.5, dtype=np.float32)}
    for ext in ("safetensors", "pt"):
        p = tmp_path / ("t." + ext)
        cmcr.save_tensors(p, t, meta={"k": "v"} if ext == "safetensors" else None)
        back = cmcr.load_tensors(p)
        assert list(back) == list(t)
        for k in t:
            assert back[k].dtype == t[k].dtype and back[k].shape == t[k].shape
            np.testing.assert_array_equal(back[k], t[k])
        assert cmcr.file_format(p) == ext
        same = cmcr.load_tensors(file_bytes(p), name="x." + ext)
        np.testing.assert_array_equal(same["f64"], t["f64"])
    assert cmcr.load_tensors(tmp_path / "t.safetensors").meta == {"k": "v"}
    x = t["f32"]
    cmcr.save_tensors(tmp_path / "a.npy", x)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), x)
    cli("convert", tmp_path / "a.npy", tmp_path / "cli.safetensors")
    cmcr.save_tensors(tmp_path / "py.safetensors", cmcr.load_tensors(tmp_path / "a.npy"))
    assert file_bytes(tmp_path / "py.safetensors") == file_bytes(tmp_path / "cli.safetensors")
    np.save(tmp_path / "lab.npy", np.array([3, 1, 2], dtype=np.int32))
    np.testing.assert_array_equal(cmcr.load_labels(tmp_path / "lab.npy"), [3, 1, 2])
    assert cmcr.load_labels(tmp_path / "lab.npy").dtype == np.int64
    with pytest.raises(cmcr.UnsupportedError, match="cannot be stored"):
        cmcr.save_tensors(tmp_path / "c.safetensors", {"c": np.zeros(2, np.complex64)})
    with pytest.raises(cmcr.ArgumentError, match="format"):
        cmcr.load_tensors(tmp_path / "a.npy", format="zip")


def test_synth_equals_the_cli(cli, world, tmp_path):
    from conftest import WORLD
    flags = {"seed": "seed", "dim_a": "dim-a", "dim_b": "dim-b", "latent": "latent", "concepts": "concepts",
             "clusters": "clusters", "n_overlap": "overlap", "n_memory_a": "memory-a", "n_memory_b": "memory-b",
             "n_test": "test", "n_oracle": "oracle", "n_diag": "diag"}
    args = [x for k, v in WORLD.items() for x in ("--" + flags[k], str(v))]
    cli("synth", "--out", tmp_path / "cli", *args)
    names = sorted(os.listdir(tmp_path / "cli"))
    assert "overlap_a.npy" in names and "world.json" in names
    assert names == sorted(os.listdir(world.dir))
    for n in names:
        assert file_bytes(tmp_path / "cli" / n) == file_bytes(os.path.join(world.dir, n)), n
    np.testing.assert_array_equal(np.load(tmp_path / "cli" / "overlap_a.npy"), world.overlap_a)
    d = cmcr.synth_defaults()
    assert d["n_overlap"] == 20000 and d["dim_a"] == 512 and d["seed"] == 1
    with pytest.raises(TypeError, match="unknown parameter"):
        cmcr.synth(n_overlaps=3)


def test_softmax_rows():
    s = np.array([[0.5, 0.1, -0.2], [0.0, 0.0, 0.0]], np.float32)
    e = np.exp(10 * s.astype(np.float64))
    want = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    got = cmcr.softmax_rows(s)  # in place
    assert got is s
    np.testing.assert_allclose(s, want, rtol=1e-6)
    t = cmcr.softmax_rows(np.array([[1.0, 2.0]]), scale=1.0)  # float64: a new float32 array
    assert t.dtype == np.float32
    np.testing.assert_allclose(t[0], [1 / (1 + np.e), np.e / (1 + np.e)], rtol=1e-6)
