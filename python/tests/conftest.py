"""Shared fixtures of the Python package's tests (run by ctest's `python` test, tests/python.sh).

Environment (set by ctest): CMCR_LIBRARY (this build's libcmcr), CMCR_BIN (the cmcr command, for
comparisons with the CLI), CMCR_FIXTURES (the small encoders made by the reference scripts),
CMCR_TESTDATA or CMCR_TESTDATA_DEFAULT (the shared real data, optional). A test that needs what
is absent skips, saying what."""
import os
import subprocess
import sys

import numpy as np
import pytest

import cmcr

SRC = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def env_path(name):
    v = os.environ.get(name)
    return v if v else None


@pytest.fixture(scope="session")
def cli():
    """run(*args) -> CompletedProcess of the cmcr command (text output); needs CMCR_BIN."""
    b = env_path("CMCR_BIN")
    if not b or not os.path.exists(b):
        pytest.skip("CMCR_BIN is not set: the comparisons with the cmcr command need it (ctest sets it)")

    def run(*args, check=True, cwd=None):
        r = subprocess.run([b] + [os.fspath(a) for a in args], capture_output=True, text=True, cwd=cwd)
        if check and r.returncode != 0:
            raise AssertionError("cmcr %s failed (%d): %s" % (" ".join(map(str, args)), r.returncode, r.stderr))
        return r

    return run


def fixture_dir(name, needed):
    """$CMCR_FIXTURES/name, or skip naming the ctest fixture that makes it."""
    root = env_path("CMCR_FIXTURES")
    d = os.path.join(root, name) if root else None
    if not d or not os.path.exists(os.path.join(d, needed)):
        pytest.skip("the %s fixture is missing (ctest makes it: fixture_%s)" % (name, name))
    return d


def shared_data(rel):
    """A file of the shared test data, or skip."""
    root = env_path("CMCR_TESTDATA") or env_path("CMCR_TESTDATA_DEFAULT") or os.path.join(SRC, "..", "shared",
                                                                                             "data")
    p = os.path.join(root, rel)
    if not os.path.exists(p):
        pytest.skip("%s is absent (the shared test data)" % p)
    return p


@pytest.fixture(scope="session")
def clip_dir():
    return os.path.join(fixture_dir("clip_small", "small/openai.pt"), "small")


@pytest.fixture(scope="session")
def clap_dir():
    return fixture_dir("clap_small", "clap.pt")


@pytest.fixture(scope="session")
def pointbert_dir():
    return fixture_dir("pointbert_small", "ulip.pt")


@pytest.fixture(scope="session")
def clip_vocab():
    return shared_data("tokenizers/clip/bpe_simple_vocab_16e6.txt.gz")


@pytest.fixture(scope="session")
def roberta():
    return shared_data("tokenizers/roberta-base")


WORLD = dict(seed=3, dim_a=40, dim_b=24, latent=16, concepts=20, clusters=4, n_overlap=600, n_memory_a=500,
             n_memory_b=450, n_test=120, n_oracle=50, n_diag=100)


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """A small synthetic world, as arrays and as the files `cmcr synth` writes."""
    w = cmcr.synth(**WORLD)
    d = tmp_path_factory.mktemp("world")
    w.save(d)
    w.dir = str(d)
    return w


@pytest.fixture(scope="session")
def trained(world, tmp_path_factory):
    """A connection trained on the world (from the files), and its path."""
    d = tmp_path_factory.mktemp("trained")
    out = os.path.join(d, "m.safetensors")
    m = cmcr.train(*(os.path.join(world.dir, f + ".npy") for f in ("overlap_a", "overlap_b", "memory_a", "memory_b")),
                   out=out, epochs=2, batch=128, preset="ulip-clip", out_dim=32)
    m.path = out
    return m


def npy(path):
    return np.load(path)


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def run_python(code, env=None, timeout=None):
    """Run code in a new python3 with this package on its path (the same library); env entries
    are added to the environment (None removes one)."""
    e = dict(os.environ)
    e.update(env or {})
    e = {k: v for k, v in e.items() if v is not None}  # None: unset
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=timeout)
