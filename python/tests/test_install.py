"""The install command: `cmake --install build` puts the package into Debian's dist-packages
under the prefix, next to the library it finds by a path relative to itself (so a moved tree and
a DESTDIR staging still work), without CMCR_LIBRARY or LD_LIBRARY_PATH. Run into scratch
prefixes; the default destination is checked to be on Debian's python3 sys.path."""
import os
import shutil
import subprocess
import sys

import pytest

CHECK = r"""
import cmcr, numpy as np, os, sys
m = cmcr.Model.new("ulip-clip", seed=3)
y = m.project(np.ones((2, 512), np.float32), "a")
assert y.shape == (2, 512)
print(os.path.realpath(cmcr.LIBRARY))
print(os.path.realpath(cmcr.HEADER))
"""


@pytest.fixture(scope="module")
def install():
    build, cmake, pydir = (os.environ.get(k) for k in ("CMCR_BUILD_DIR", "CMCR_CMAKE", "CMCR_PYTHON_INSTALL_DIR"))
    if not (build and cmake and pydir):
        pytest.skip("CMCR_BUILD_DIR, CMCR_CMAKE and CMCR_PYTHON_INSTALL_DIR are set by ctest: the install test "
                    "needs them")

    def run(prefix, destdir=None):
        env = dict(os.environ)
        if destdir:
            env["DESTDIR"] = str(destdir)
        r = subprocess.run([cmake, "--install", build, "--prefix", str(prefix)], capture_output=True, text=True,
                           env=env)
        assert r.returncode == 0, r.stdout + r.stderr
    return run, pydir


def check(site):
    env = {k: v for k, v in os.environ.items() if k not in ("CMCR_LIBRARY", "LD_LIBRARY_PATH", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    r = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_install_into_a_prefix_and_move_it(install, tmp_path):
    run, pydir = install
    run(tmp_path / "p")
    pkg = tmp_path / "p" / pydir / "cmcr"
    assert (pkg / "__init__.py").exists() and (pkg / "cmcr.h").exists() and (pkg / "_install.py").exists()
    assert not (pkg / "__pycache__").exists()
    lib, header = check(tmp_path / "p" / pydir)
    assert lib.startswith(str(tmp_path / "p")) and header == str(pkg / "cmcr.h")
    shutil.move(tmp_path / "p", tmp_path / "q")  # relocatable: the library is found relative to the package
    lib, _ = check(tmp_path / "q" / pydir)
    assert lib.startswith(str(tmp_path / "q"))


def test_default_prefix_is_on_debians_sys_path(install, tmp_path):
    run, pydir = install
    r = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('\\n'.join(sys.path))"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip("no /usr/bin/python3 (Debian's)")
    assert "/usr/local/" + pydir in r.stdout.split(), (pydir, r.stdout)
    run("/usr/local", destdir=tmp_path / "stage")  # staged as a package build would
    lib, _ = check(tmp_path / "stage" / "usr" / "local" / pydir)
    assert lib.startswith(str(tmp_path / "stage" / "usr" / "local"))
