#!/usr/bin/python3
"""Fixture for cmcr's point-cloud readers (src/media/points.h; tests/test_points.c reads it).

Written with numpy and by hand (PLY bytes, pickles), from the formats' definitions:
  .npy      np.save of an N x 3 / N x 6 float32 or float64 array (float64 -> float32 by
            numpy's astype, round to nearest); also Fortran order and format version 2.0
  dict .npy what the C-MCR demo writes: np.save(path, {'xyz': array, 'id': ..., ...}), a 0-d
            object array whose data is a pickle (np.save uses protocol 3; the others are
            written here with the same header and pickle.dumps(..., protocol=2, 4, 5))
  PLY       ascii and binary (little- and big-endian), x y z of any scalar type, red green
            blue uchar (value / 255 in float32) or ushort (value / 65535), other properties
            and elements (before and after the vertices, with list properties) skipped
  text      3 or 6 numbers a line, separated by blanks or commas; '#' lines and blank lines
            skipped (and a UTF-8 byte order mark); each number float(token) then float32

  points_fixtures.py --out DIR
  points_fixtures.py --seeds DIR   the files alone, 40 points each (under 10 KB), as the seed
                                   corpus of fuzz/fuzz_points.c (fuzz/make_seeds.sh)

DIR/cases.txt, one case a line (paths relative to DIR):
  ok FILE EXPECTED          FILE decodes to EXPECTED (.npy, float32 N x width), bit for bit
  bad FILE STATUS NEEDLE    refused with cmcr status STATUS (EFORMAT, ...), one line naming
                            FILE and containing NEEDLE (the rest of the line)
  hostile FILE MARKER       a pickle that would run `touch MARKER` if anything called it:
                            must be refused, and MARKER (relative to the cwd) never appear
  prefix FILE               every prefix of FILE is refused or read cleanly (never a crash)
"""
import argparse
import io
import os
import pickle
import struct

import numpy as np

N = 64
rng = np.random.default_rng(17)
cases = []


def path(out, name):
    return os.path.join(out, name)


def expect(out, name, arr):
    """The file name decodes to arr (float32)."""
    exp = name + ".expected.npy"
    np.save(path(out, exp), np.ascontiguousarray(arr, dtype=np.float32))
    cases.append(f"ok {name} {exp}")


def bad(name, status, needle):
    cases.append(f"bad {name} {status} {needle}")


def write(out, name, data):
    with open(path(out, name), "wb") as f:
        f.write(data)


def cloud(n=None, width=3, dtype=np.float32):
    return rng.standard_normal((N if n is None else n, width)).astype(dtype)


def npy_bytes(arr, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, arr)
    else:
        np.lib.format.write_array(b, arr, version=version)
    return b.getvalue()


def dict_npy(d, protocol):
    """np.save(path, d) with the pickle protocol chosen: numpy's own header for a 0-d object
    array, then the pickle of that array (np.save itself always uses protocol 3)."""
    a = np.empty((), dtype=object)
    a[()] = d
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": "|O", "fortran_order": False, "shape": ()})
    b.write(pickle.dumps(a, protocol=protocol))
    if protocol == 3:  # the same bytes as np.save's
        s = io.BytesIO()
        np.save(s, d, allow_pickle=True)
        assert s.getvalue() == b.getvalue()
    return b.getvalue()


def numpy2_names(npy):
    """The .npy of a pickled dict with numpy 2's module names (numpy._core.multiarray,
    numpy._core.numeric). GLOBAL (protocols 2, 3) names are text lines; SHORT_BINUNICODE
    (4, 5) names carry their length, and the FRAME its size, both fixed here."""
    hlen = 10 + struct.unpack("<H", npy[8:10])[0]
    head, p = npy[:hlen], npy[hlen:]
    old = (b"numpy.core.multiarray", b"numpy.core.numeric")
    if p[1] < 4:
        for o in old:
            p = p.replace(o + b"\n", o.replace(b".core.", b"._core.") + b"\n")
        return head + p
    grown = 0
    for o in old:
        k = p.count(b"\x8c" + bytes([len(o)]) + o)
        p = p.replace(b"\x8c" + bytes([len(o)]) + o, b"\x8c" + bytes([len(o) + 1]) + o.replace(b".core.", b"._core."))
        grown += k
    assert p[2] == 0x95  # one FRAME after PROTO
    size = struct.unpack("<Q", p[3:11])[0] + grown
    return head + p[:3] + struct.pack("<Q", size) + p[11:]


def header_npy(descr, shape, data=b"", fortran=False):
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return b.getvalue() + data


class Hostile:
    """Pickles as os.system('touch MARKER'): what a malicious file would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def npy_cases(out):
    a = cloud()
    write(out, "f4x3.npy", npy_bytes(a))
    expect(out, "f4x3.npy", a)
    a = cloud(width=6, dtype=np.float64) * 1e-3  # float64 values that need rounding
    write(out, "f8x6.npy", npy_bytes(a))
    expect(out, "f8x6.npy", a.astype(np.float32))
    a = np.asfortranarray(cloud(width=6))
    write(out, "fortran.npy", npy_bytes(a))
    expect(out, "fortran.npy", a)
    a = cloud(n=40)
    write(out, "v2.npy", npy_bytes(a, version=(2, 0)))
    expect(out, "v2.npy", a)
    cases.append("prefix f4x3.npy")

    write(out, "x4.npy", npy_bytes(cloud(width=4)))
    bad("x4.npy", "ESHAPE", "64 x 4: a point cloud is N x 3 (xyz) or N x 6 (xyz + rgb)")
    write(out, "flat.npy", npy_bytes(cloud().reshape(-1)))
    bad("flat.npy", "ESHAPE", "the array is 192 (1-D)")
    write(out, "ints.npy", npy_bytes(np.arange(N * 3, dtype=np.int64).reshape(N, 3)))
    bad("ints.npy", "EUNSUPPORTED", "dtype '<i8'")
    write(out, "half.npy", npy_bytes(cloud(dtype=np.float16)))
    bad("half.npy", "EUNSUPPORTED", "dtype '<f2'")
    write(out, "big.npy", npy_bytes(cloud().astype(">f4")))
    bad("big.npy", "EUNSUPPORTED", "big-endian ('>f4')")
    a = cloud()
    a[7, 1] = np.nan
    write(out, "nan.npy", npy_bytes(a))
    bad("nan.npy", "EVALUE", "point 7 (column 1) is NaN")
    a = cloud()
    a[30, 2] = -np.inf
    write(out, "inf.npy", npy_bytes(a))
    bad("inf.npy", "EVALUE", "point 30 (column 2) is Inf")
    write(out, "few.npy", npy_bytes(cloud(n=31)))
    bad("few.npy", "ESHAPE", "31 points, fewer than the 32")
    a = np.tile(np.array([[0.5, -1.0, 2.0, 0.1, 0.2, 0.3]], np.float32), (N, 1))
    a[:, 3:] = cloud(width=3)  # colours differ, positions do not
    write(out, "same.npy", npy_bytes(a))
    bad("same.npy", "EVALUE", "all 64 points are at the same position")
    write(out, "huge.npy", header_npy("<f4", (10000001, 3), bytes(64)))
    bad("huge.npy", "ENOMEM", "has 10000001 points, more than the limit of 10000000")
    write(out, "short.npy", npy_bytes(cloud())[:-5])
    bad("short.npy", "EFORMAT", "truncated: the array: 64 x 3 float32 needs 768 bytes of data but there are 763")
    write(out, "objects2.npy", header_npy("|O", (2,), b"\x80\x03."))
    bad("objects2.npy", "EUNSUPPORTED", "an object array of more than one object")
    write(out, "empty.npy", b"")
    bad("empty.npy", "EFORMAT", "file is empty")


def dict_cases(out):
    for protocol in (2, 3, 4, 5):
        for dt, width in ((np.float32, 3), (np.float64, 6)):
            a = cloud(width=width, dtype=dt)
            name = f"dict_p{protocol}_{np.dtype(dt).name}.npy"
            d = {"xyz": a, "retrieval_text": ["a chair", "a wooden chair"], "id": "chair_0001", "group": "chair"}
            write(out, name, dict_npy(d, protocol))
            expect(out, name, a.astype(np.float32))
    for protocol in (3, 5):  # Fortran order: _reconstruct's is_fortran, _frombuffer's 'F'
        a = np.asfortranarray(cloud(width=3))
        name = f"dict_p{protocol}_fortran.npy"
        write(out, name, dict_npy({"xyz": a, "id": "f"}, protocol))
        expect(out, name, a)
    # numpy 2 names its modules numpy._core.*: the same pickles with those names.
    for protocol in (2, 3, 4, 5):
        a = cloud()
        name = f"dict_p{protocol}_numpy2.npy"
        write(out, name, numpy2_names(dict_npy({"xyz": a, "id": "n2"}, protocol)))
        expect(out, name, a)
    cases.append("prefix dict_p3_float32.npy")
    cases.append("prefix dict_p5_float64.npy")
    cases.append("prefix dict_p2_float32.npy")

    write(out, "dict_noxyz.npy", dict_npy({"points": cloud(), "id": "x"}, 3))
    bad("dict_noxyz.npy", "EFORMAT", "the pickled dict has no 'xyz' entry (keys: 'points', 'id')")
    write(out, "dict_list.npy", dict_npy({"xyz": [[0.0, 1.0, 2.0]] * N}, 3))
    bad("dict_list.npy", "EFORMAT", "'xyz' in the pickled dict is a list, not a numeric array")
    write(out, "dict_ints.npy", dict_npy({"xyz": np.arange(N * 3).reshape(N, 3)}, 3))
    bad("dict_ints.npy", "EUNSUPPORTED", "'xyz' has dtype '<i8'")
    write(out, "dict_x4.npy", dict_npy({"xyz": cloud(width=4)}, 4))
    bad("dict_x4.npy", "ESHAPE", "'xyz' is 64 x 4: a point cloud is N x 3 (xyz) or N x 6 (xyz + rgb)")
    write(out, "dict_big.npy", dict_npy({"xyz": cloud().astype(">f8")}, 3))
    bad("dict_big.npy", "EUNSUPPORTED", "'xyz' is big-endian ('>f8')")
    write(out, "dict_few.npy", dict_npy({"xyz": cloud(n=5)}, 3))
    bad("dict_few.npy", "ESHAPE", "5 points, fewer than the 32")
    p = dict_npy({"xyz": cloud()}, 3)
    write(out, "dict_cut.npy", p[:-40])
    bad("dict_cut.npy", "EFORMAT", "pickle byte")
    # A pickle whose data is shorter than its shape (hand-edited shape).
    a = cloud(n=40)
    p = dict_npy({"xyz": a}, 3).replace(b"K(K\x03\x86", b"K)K\x03\x86")  # shape (40, 3) -> (41, 3)
    write(out, "dict_short.npy", p)
    bad("dict_short.npy", "EFORMAT", "truncated: 'xyz': 41 x 3 float32 needs 492 bytes of data but there are 480")
    # Hostile: os.system('touch MARKER') as 'xyz', and as the whole pickle.
    write(out, "hostile_xyz.npy", dict_npy({"xyz": Hostile("cmcr_points_pwned_1")}, 3))
    cases.append("hostile hostile_xyz.npy cmcr_points_pwned_1")
    bad("hostile_xyz.npy", "EFORMAT", "'xyz' in the pickled dict is an opaque object of class posix.system")
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": "|O", "fortran_order": False, "shape": ()})
    b.write(pickle.dumps(Hostile("cmcr_points_pwned_2"), protocol=4))
    write(out, "hostile_root.npy", b.getvalue())
    cases.append("hostile hostile_root.npy cmcr_points_pwned_2")
    bad("hostile_root.npy", "EFORMAT", "the pickle holds an opaque object of class posix.system")


def ply_header(fmt, elements, comments=("comment made by points_fixtures.py",)):
    lines = ["ply", f"format {fmt} 1.0", *comments]
    for name, count, props in elements:
        lines.append(f"element {name} {count}")
        lines += [f"property {p}" for p in props]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode()


def ply_cases(out):
    # ascii: float xyz, uchar rgb, normals, then faces.
    xyz = cloud()
    rgb = rng.integers(0, 256, (N, 3))
    nrm = cloud()
    props = ["float x", "float y", "float z", "uchar red", "uchar green", "uchar blue", "float nx", "float ny", "float nz"]
    body, exp = [], np.zeros((N, 6), np.float32)
    for i in range(N):
        toks = [f"{v:.9g}" for v in xyz[i]] + [str(v) for v in rgb[i]] + [f"{v:.9g}" for v in nrm[i]]
        body.append(" ".join(toks))
        exp[i, :3] = [np.float32(float(t)) for t in toks[:3]]
        exp[i, 3:] = rgb[i].astype(np.float32) / np.float32(255)
    body += ["3 0 1 2", "4 1 2 3 4"]
    hdr = ply_header("ascii", [("vertex", N, props), ("face", 2, ["list uchar int vertex_indices"])],
                     ("comment ascii test", "obj_info none"))
    write(out, "ascii.ply", hdr + ("\n".join(body) + "\n").encode())
    expect(out, "ascii.ply", exp)
    cases.append("prefix ascii.ply")

    # binary little-endian: an element before the vertices, double xyz, uchar rgb + alpha,
    # a float in between, then faces with list properties and a trailing element.
    xyz = cloud(dtype=np.float64)
    rgb = rng.integers(0, 256, (N, 3)).astype(np.uint8)
    vt = np.dtype([("x", "<f8"), ("nx", "<f4"), ("y", "<f8"), ("z", "<f8"), ("red", "u1"), ("green", "u1"),
                   ("blue", "u1"), ("alpha", "u1")])
    v = np.zeros(N, vt)
    v["x"], v["y"], v["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    v["nx"] = 1.5
    v["red"], v["green"], v["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    v["alpha"] = 255
    cam = struct.pack("<3f", 1, 2, 3) * 2
    faces = b"".join(struct.pack("<B3i", 3, i, i + 1, i + 2) for i in range(10))
    faces += struct.pack("<B", 0)  # an empty face
    tail = struct.pack("<h", 7) * 3
    hdr = ply_header("binary_little_endian", [
        ("camera", 2, ["float vx", "float vy", "float vz"]),
        ("vertex", N, ["double x", "float nx", "double y", "double z", "uchar red", "uchar green", "uchar blue",
                       "uchar alpha"]),
        ("face", 11, ["list uchar int vertex_indices"]),
        ("extra", 3, ["short s"])])
    write(out, "binary.ply", hdr + cam + v.tobytes() + faces + tail)
    exp = np.concatenate([xyz.astype(np.float32), rgb.astype(np.float32) / np.float32(255)], axis=1)
    expect(out, "binary.ply", exp)
    cases.append("prefix binary.ply")

    # binary big-endian: float xyz, ushort rgb, CRLF header lines.
    xyz = cloud()
    rgb = rng.integers(0, 65536, (N, 3)).astype(np.uint16)
    vt = np.dtype([("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("red", ">u2"), ("green", ">u2"), ("blue", ">u2")])
    v = np.zeros(N, vt)
    for k, name in enumerate("xyz"):
        v[name] = xyz[:, k]
    for k, name in enumerate(("red", "green", "blue")):
        v[name] = rgb[:, k]
    hdr = ply_header("binary_big_endian", [("vertex", N, ["float32 x", "float32 y", "float32 z", "uint16 red",
                                                           "uint16 green", "uint16 blue"])])
    write(out, "bigendian.ply", hdr.replace(b"\n", b"\r\n") + v.tobytes())
    expect(out, "bigendian.ply", np.concatenate([xyz, rgb.astype(np.float32) / np.float32(65535)], axis=1))

    # binary, integer xyz (short) without colour.
    xyz = rng.integers(-1000, 1000, (N, 3)).astype("<i2")
    hdr = ply_header("binary_little_endian", [("vertex", N, ["short x", "short y", "short z"])])
    write(out, "shorts.ply", hdr + xyz.tobytes())
    expect(out, "shorts.ply", xyz.astype(np.float32))

    # Refusals.
    hdr = ply_header("binary_little_endian", [("vertex", 10000001, ["float x", "float y", "float z"])])
    write(out, "huge.ply", hdr + bytes(64))
    bad("huge.ply", "ENOMEM", "10000001 vertices, more than the limit of 10000000 points")
    hdr = ply_header("binary_little_endian", [("vertex", 1000000, ["float x", "float y", "float z"])])
    write(out, "cut.ply", hdr + bytes(1200))
    bad("cut.ply", "EFORMAT", "truncated: 1000000 vertices cannot fit in the 1200 bytes left")
    hdr = ply_header("binary_little_endian", [("vertex", N, ["float x", "float y", "float w"])])
    write(out, "noz.ply", hdr + bytes(N * 12))
    bad("noz.ply", "EFORMAT", "the PLY vertex element has no x, y and z properties")
    hdr = ply_header("binary_little_endian", [("vertex", N, ["float x", "float y", "float z", "int red",
                                                             "int green", "int blue"])])
    write(out, "intcolour.ply", hdr + np.concatenate([cloud(), np.zeros((N, 3), np.float32)], 1).tobytes())
    bad("intcolour.ply", "EUNSUPPORTED", "PLY colours of type int are not supported")
    write(out, "format.ply", b"ply\nformat binary_middle_endian 1.0\nelement vertex 1\nend_header\n")
    bad("format.ply", "EFORMAT", "PLY header line 2: unknown format")
    write(out, "keyword.ply", b"ply\nformat ascii 1.0\nelement vertex 40\nproperty float x\nbogus\nend_header\n")
    bad("keyword.ply", "EFORMAT", "PLY header line 5: unknown header keyword 'bogus'")
    write(out, "listtype.ply", b"ply\nformat ascii 1.0\nelement vertex 40\nproperty list float int x\nend_header\n")
    bad("listtype.ply", "EFORMAT", "unknown property type 'float'")
    write(out, "noheader.ply", b"ply\nformat ascii 1.0\nelement vertex 40\n")
    bad("noheader.ply", "EFORMAT", "truncated: the file ends inside the PLY header")
    hdr = ply_header("ascii", [("vertex", N, ["float x", "float y", "float z"])])
    write(out, "nan.ply", hdr + ("1 2 3\n" * 5 + "1 nan 3\n" + "1 2 3\n" * (N - 6)).encode())
    bad("nan.ply", "EFORMAT", "'nan' is not a finite number")
    write(out, "trailing.ply", hdr + ("1 2 3\n" * (N - 1) + "4 5 6\n7\n").encode())
    bad("trailing.ply", "EFORMAT", "unexpected bytes after the last element")
    hdr = ply_header("ascii", [("vertex", N, ["float x", "float y", "float z", "uchar red", "uchar green",
                                              "uchar blue"])])
    write(out, "uchar.ply", hdr + ("1 2 3 0 300 0\n" * N).encode())
    bad("uchar.ply", "EFORMAT", "300 is not a uchar")


def text_cases(out):
    a = cloud(dtype=np.float64)
    lines = ["# x y z", ""] + [" ".join(repr(float(v)) for v in row) for row in a]
    lines.insert(10, "   ")
    lines.insert(20, "# a comment in the middle")
    write(out, "space.xyz", ("\r\n".join(lines) + "\r\n").encode())
    expect(out, "space.xyz", a.astype(np.float32))
    a = cloud(width=6)
    toks = [[f"{v:.6f}" for v in row] for row in a]
    write(out, "modelnet.txt", ("\n".join(",".join(t) for t in toks)).encode())  # no final newline
    expect(out, "modelnet.txt", np.array([[float(t) for t in row] for row in toks]).astype(np.float32))
    cases.append("prefix modelnet.txt")
    a = cloud()
    toks = [[f"{v:.8e}" for v in row] for row in a]
    text = "\ufeff" + "\n".join(f"{t[0]}, {t[1]}\t{t[2]}" for t in toks) + "\n"  # with a UTF-8 BOM
    write(out, "mixed.txt", text.encode())
    expect(out, "mixed.txt", np.array([[float(t) for t in row] for row in toks]).astype(np.float32))

    def rows(n, width, fmt="{:.4f}"):
        return [" ".join(fmt.format(v) for v in row) for row in cloud(n=n, width=width)]

    write(out, "four.txt", ("\n".join(rows(N, 4)) + "\n").encode())
    bad("four.txt", "ESHAPE", "line 1 has 4 numbers; a point is 3 (x y z) or 6")
    write(out, "seven.txt", ("\n".join(rows(N, 9)) + "\n").encode())
    bad("seven.txt", "ESHAPE", "line 1 has 7 or more numbers")
    r = rows(N, 3)
    r[33] = "1.0 2.0 3.0 4.0"
    write(out, "ragged.txt", ("\n".join(r) + "\n").encode())
    bad("ragged.txt", "ESHAPE", "line 34 has 4 numbers but line 1 has 3")
    r = rows(N, 3)
    r[5] = "1.0 NaN 3.0"
    write(out, "nan.txt", ("\n".join(r) + "\n").encode())
    bad("nan.txt", "EFORMAT", "line 6: 'NaN' is not a finite number")
    r = rows(N, 3)
    r[6] = "1.0 -inf 3.0"
    write(out, "inf.txt", ("\n".join(r) + "\n").encode())
    bad("inf.txt", "EFORMAT", "line 7: '-inf' is not a finite number")
    r = rows(N, 3)
    r[2] = "1.0 abc 3.0"
    write(out, "junk.txt", ("\n".join(r) + "\n").encode())
    bad("junk.txt", "EFORMAT", "line 3: 'abc' is not a number")
    r = rows(N, 3)
    r[8] = "1.0 1e999 3.0"
    write(out, "range.txt", ("\n".join(r) + "\n").encode())
    bad("range.txt", "EFORMAT", "line 9: '1e999' is out of range")
    r = rows(N, 3)
    r[9] = "1.0 1e300 3.0"
    write(out, "float32.txt", ("\n".join(r) + "\n").encode())
    bad("float32.txt", "EVALUE", "line 10: 1e+300 does not fit in a float32")
    r = rows(N, 3)
    r[4] = "1.0,,3.0"
    write(out, "emptyfield.txt", ("\n".join(r) + "\n").encode())
    bad("emptyfield.txt", "EFORMAT", "line 5: an empty field")
    r = rows(N, 3)
    r[11] = "1.0 " * 2000
    write(out, "long.txt", ("\n".join(r) + "\n").encode())
    bad("long.txt", "EFORMAT", "line 12 is longer than 4096 bytes")
    write(out, "few.txt", ("\n".join(rows(31, 3)) + "\n").encode())
    bad("few.txt", "ESHAPE", "31 points, fewer than the 32")
    write(out, "same.txt", ("1.5 2.5 -3.5\n" * N).encode())
    bad("same.txt", "EVALUE", "all 64 points are at the same position")
    write(out, "nul.txt", ("\n".join(rows(N, 3)) + "\n").encode().replace(b"\n", b"\n\0", 1))
    bad("nul.txt", "EFORMAT", "line 2: a NUL byte")
    write(out, "binary.dat", bytes(range(256)) * 4)
    bad("binary.dat", "EFORMAT", "line 1: a NUL byte")


def seeds(out):
    """Every file of the fixture (good and refused) made with 40 points, under 10 KB."""
    import shutil
    import tempfile
    global N
    N = 40
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for make in (npy_cases, dict_cases, ply_cases, text_cases):
            make(tmp)
        for name in sorted(os.listdir(tmp)):
            p = os.path.join(tmp, name)
            if not name.endswith(".expected.npy") and os.path.getsize(p) < 10240:
                shutil.copy(p, os.path.join(out, name))
    print(f"{len(os.listdir(out))} seeds in {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--seeds")
    args = ap.parse_args()
    if args.seeds:
        return seeds(args.seeds)
    os.makedirs(args.out, exist_ok=True)
    npy_cases(args.out)
    dict_cases(args.out)
    ply_cases(args.out)
    text_cases(args.out)
    with open(path(args.out, "cases.txt"), "w") as f:
        f.write("\n".join(cases) + "\n")
    print(f"{len(cases)} cases in {args.out}")


if __name__ == "__main__":
    main()
