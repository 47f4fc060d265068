"""python/examples/demo_table.py, the official demo's softmax(10 * sim) tables, run on the small
random-weight encoders and a connection trained here to their widths (CLAP 512 on side a, CLIP 96
on side b): mechanics only. Its audio x vision table equals, to the printed digits, what the
README's commands print with the same files (cmcr embed twice, cmcr similarity --softmax)."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import cmcr
from conftest import SRC, env_path

NAMES = ["toilet", "BBQ", "train"]


def media(clap_dir, tmp_path):
    data = env_path("CMCR_TESTDATA") or env_path("CMCR_TESTDATA_DEFAULT") or os.path.join(SRC, "..", "shared", "data")
    assets = os.path.join(data, "cmcr-assets")
    if os.path.isdir(assets):  # the demo's own sounds and photos
        return ([os.path.join(assets, n + ".wav") for n in NAMES], [os.path.join(assets, n + ".jpeg") for n in NAMES])
    Image = pytest.importorskip("PIL.Image", reason="without the shared data, Pillow makes the photos")
    sounds = [os.path.join(clap_dir, "audio", f) for f in ("a_short.wav", "b_exact.wav", "e_8k.ogg")]
    r = np.random.default_rng(9)
    images = []
    for n in NAMES:
        p = str(tmp_path / (n + ".png"))
        Image.fromarray(r.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(p)
        images.append(p)
    return sounds, images


def parse_tables(out):
    tables, cur = {}, None
    for line in out.splitlines():
        if "softmax" in line:
            cur = tables.setdefault(line.split(",")[0], {})
        elif cur is not None and re.search(r"\d\.\d{4}", line):
            parts = line.split()
            cur[parts[0]] = [float(x) for x in parts[-3:]]
    return tables


def test_demo_table(cli, clap_dir, clip_dir, tmp_path):
    w = cmcr.synth(seed=4, dim_a=512, dim_b=96, concepts=10, clusters=2, n_overlap=512, n_memory_a=300,
                   n_memory_b=300, n_test=8, n_oracle=8, n_diag=50)
    conn = tmp_path / "clap_clip.safetensors"
    cmcr.train(w.overlap_a, w.overlap_b, w.memory_a, w.memory_b, out=conn, epochs=1, batch=256, preset="clap-clip")
    sounds, images = media(clap_dir, tmp_path)
    clap, clip = os.path.join(clap_dir, "clap.pt"), os.path.join(clip_dir, "hf")
    args = [sys.executable, os.path.join(SRC, "python", "examples", "demo_table.py"), "--connection", str(conn),
            "--clap", clap, "--clip", clip, "--sounds", *sounds, "--images", *images, "--names", *NAMES,
            "--prompts", "a toilet", "BBQ", "a train"]
    data = env_path("CMCR_TESTDATA") or env_path("CMCR_TESTDATA_DEFAULT") or os.path.join(SRC, "..", "shared", "data")
    vocab, roberta = (os.path.join(data, "tokenizers", p) for p in ("clip/bpe_simple_vocab_16e6.txt.gz",
                                                                     "roberta-base"))
    if os.path.exists(vocab) and os.path.exists(roberta):
        args += ["--clip-tokenizer", vocab, "--roberta", roberta]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    tables = parse_tables(r.stdout)
    assert "audio x vision" in tables
    if "--roberta" in args:
        assert set(tables) == {"audio x vision", "vision x text", "audio x text"}
    for t in tables.values():
        assert list(t) == NAMES
        for row in t.values():
            assert abs(sum(row) - 1) < 2e-4 and all(0 <= v <= 1 for v in row)
    # the README's CLI steps on the same files print the same audio x vision rows
    cli("embed", "--model", clap, "--audio", *sounds, "--out", tmp_path / "audio.npy", "--quiet")
    cli("embed", "--model", clip, "--images", *images, "--out", tmp_path / "vision.npy", "--quiet")
    (tmp_path / "names.txt").write_text("\n".join(NAMES) + "\n")
    out = cli("similarity", "--model", conn, "--a", tmp_path / "audio.npy", "--side-a", "a", "--b",
              tmp_path / "vision.npy", "--side-b", "b", "--labels-a", tmp_path / "names.txt", "--labels-b",
              tmp_path / "names.txt", "--softmax", "--top-k", "3").stdout
    for line in out.splitlines():
        row, rest = line.split(":", 1)
        got = dict((m.group(1), float(m.group(2))) for m in re.finditer(r"(\w+) \((\d\.\d{4})\)", rest))
        assert [got[n] for n in NAMES] == tables["audio x vision"][row], line
