"""Retrieval and zero-shot evaluation from Python: the numbers `cmcr eval ... --json` prints for
the same files (through a model, and on raw rows), by row and by label, and refusals."""
import json
import os

import numpy as np
import pytest

import cmcr


def cli_json(cli, *args):
    return json.loads(cli("eval", *args, "--json").stdout)


def close(a, b):
    # the command prints 15 significant digits (cJSON's %1.15g)
    return pytest.approx(b, rel=1e-14, abs=0) == a


def same(py, js):
    assert py.queries == js["queries"]
    for a, b in ((py.recall_at_1, js["recall@1"]), (py.recall_at_5, js["recall@5"]), (py.recall_at_10, js["recall@10"]),
                 (py.median_rank, js["median_rank"]), (py.mean_rank, js["mean_rank"]), (py.map, js["map"])):
        assert close(a, b), (a, b)
    assert (py.scored_bf16, py.rescored) == (js["pairs_scored_bf16"], js["pairs_rescored"])


def test_retrieval_equals_the_cli(cli, trained, world, tmp_path):
    f = lambda n: os.path.join(world.dir, n)  # noqa: E731
    js = cli_json(cli, "retrieval", "--model", trained.path, "--query", f("test_x.npy"), "--query-side", "a",
                  "--gallery", f("test_y.npy"), "--gallery-side", "b", "--both-directions")
    x, y = cmcr.load_matrix(f("test_x.npy")), cmcr.load_matrix(f("test_y.npy"))
    same(cmcr.eval_retrieval(x, y, model=trained, query_side="a", gallery_side="b"), js["results"][0])
    same(cmcr.eval_retrieval(y, x, model=trained, query_side="b", gallery_side="a"), js["results"][1])
    # by label, on the raw rows (L2-normalised copies: the caller's arrays are left as they are)
    np.save(tmp_path / "lab.npy", world.test_labels)
    js = cli_json(cli, "retrieval", "--query", f("test_x.npy"), "--gallery", f("test_x.npy"), "--query-labels",
                  tmp_path / "lab.npy", "--gallery-labels", tmp_path / "lab.npy")
    before = x.copy()
    same(cmcr.eval_retrieval(x, x, query_labels=world.test_labels, gallery_labels=world.test_labels), js["results"][0])
    np.testing.assert_array_equal(x, before)
    if cmcr.info()["bf16"]:
        js = cli_json(cli, "retrieval", "--model", trained.path, "--query", f("test_x.npy"), "--query-side", "a",
                      "--gallery", f("test_y.npy"), "--gallery-side", "b", "--precision", "bf16")
        r = cmcr.eval_retrieval(x, y, model=trained, query_side="a", gallery_side="b", bf16=True)
        same(r, js["results"][0])
        assert r.scored_bf16 > 0


def test_zeroshot_equals_the_cli(cli, trained, world, tmp_path):
    f = lambda n: os.path.join(world.dir, n)  # noqa: E731
    # classes: the mean projected Y row of each concept, as a stand-in for prompt embeddings
    labels = world.test_labels % 7
    classes = np.stack([world.test_y[labels == c].mean(axis=0) for c in range(7)]).astype(np.float32)
    np.save(tmp_path / "classes.npy", classes)
    np.save(tmp_path / "labels.npy", labels)
    js = cli_json(cli, "zeroshot", "--model", trained.path, "--inputs", f("test_x.npy"), "--side", "a", "--classes",
                  tmp_path / "classes.npy", "--classes-side", "b", "--labels", tmp_path / "labels.npy", "--per-class")
    r = cmcr.eval_zeroshot(world.test_x, classes, labels, model=trained, side="a", classes_side="b", per_class=True)
    assert r.inputs == js["inputs"] and close(r.top1, js["top1"]) and close(r.top5, js["top5"])
    assert all(close(a, c["top1"]) for a, c in zip(r.per_class, js["per_class"])) and len(r.per_class) == 7
    assert cmcr.eval_zeroshot(world.test_x, classes, labels, model=trained, side="a", classes_side="b").per_class \
        is None


def test_refusals(trained, world):
    with pytest.raises(cmcr.ShapeError, match="both query_labels and gallery_labels"):
        cmcr.eval_retrieval(world.test_x, world.test_x, query_labels=world.test_labels)
    with pytest.raises(cmcr.ShapeError, match="120 labels for 119 rows"):
        cmcr.eval_retrieval(world.test_x[:119], world.test_x, query_labels=world.test_labels,
                            gallery_labels=world.test_labels)
    with pytest.raises(cmcr.ShapeError, match="side"):
        cmcr.eval_retrieval(world.test_x, world.test_y, model=trained)
    with pytest.raises(cmcr.ShapeError, match="wide"):
        cmcr.eval_retrieval(world.test_x, world.test_y)  # 40 and 24 wide: two spaces, no model
    bad = np.array(world.test_x)
    bad[2, 1] = np.inf
    with pytest.raises(cmcr.InvalidValueError, match="row 2 contains Inf"):
        cmcr.eval_retrieval(bad, world.test_x)
    with pytest.raises(cmcr.ArgumentError):
        cmcr.eval_zeroshot(world.test_x, world.test_x[:5], np.full(120, 9))  # label 9 of 5 classes
    with pytest.raises(cmcr.UnsupportedError, match="labels must be integers"):
        cmcr.eval_zeroshot(world.test_x, world.test_x[:5], np.zeros(120))
