#!/usr/bin/python3
"""Reference for cmcr's CLIP image front end (src/media/image.h) and its test fixture.

The reference is what Hugging Face's CLIPImageProcessor does to a file, written from its
steps (no transformers import): Pillow's Image.open(p).convert("RGB"); resize of the
shortest side to 224 with Image.BICUBIC (reducing_gap None), the other side
int(224 * long / short); centre crop 224 x 224 (top = (h - 224) // 2, left likewise);
rescale by 1/255 (uint8 * Python float -> float64, then float32) and normalise with CLIP's
mean and std in float32; channel first.

  clip_ref_image.py --out DIR [--assets DIR]   write the fixture (tests/test_image.c reads it)
  clip_ref_image.py --bench FILE...            time Pillow's open+convert+resize+crop (ms)
  clip_ref_image.py --seeds DIR                small images for fuzz/corpus/fuzz_image

The fixture: DIR/cases.txt, one case a line:
  ok NAME PATH W H    PATH decodes to NAME.rgb (W x H x 3 uint8, Pillow's convert("RGB")),
                      crops to NAME.crop (224 x 224 x 3 uint8), normalises to NAME.chw.npy
  photo NAME PATH W H the same for a real photo of --assets (read in place, not copied)
  resize SRC W H EXP  Pillow's resize of SRC's RGB to W x H (bicubic) is EXP (raw uint8)
  bad PATH NEEDLE     refused: Pillow refuses it too (checked here), and cmcr's one-line
                      message contains NEEDLE
  prefix PATH N OK    the first N bytes of PATH: Pillow accepts them (OK 1) or refuses (0)
Paths are relative to DIR, except the photos'.
"""
import argparse
import warnings
import io
import os
import struct
import sys
import time
import zlib

import numpy as np
from PIL import Image

SIZE = 224
# Pillow warns that a palette image with tRNS bytes "should be converted to RGBA": we convert
# to RGB on purpose (as the processor does).
warnings.filterwarnings("ignore", "Palette images with Transparency")
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


# ---------------------------------------------------------------- the reference

def load_rgb(path):
    with Image.open(path) as im:
        return im.convert("RGB")


def clip_resize_crop(im, size=SIZE):
    """transformers: get_resize_output_image_size(default_to_square=False), PIL resize,
    center_crop."""
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    nw, nh = (size, new_long) if w <= h else (new_long, size)
    r = np.asarray(im.resize((nw, nh), Image.BICUBIC, reducing_gap=None))
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(r[top:top + size, left:left + size])


def rescale_normalize(crop):
    x = (crop * (1 / 255)).astype(np.float32)
    y = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    return np.ascontiguousarray(y.transpose(2, 0, 1))


# ---------------------------------------------------------------- PNG and JPEG writers

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_rows(samples, depth):
    """samples: (h, w, c) integers -> PNG scanline bytes (without filter bytes), one per row."""
    h, w, c = samples.shape
    rows = []
    for y in range(h):
        s = samples[y].reshape(-1)
        if depth == 16:
            rows.append(s.astype(">u2").tobytes())
        elif depth == 8:
            rows.append(s.astype(np.uint8).tobytes())
        else:
            per = 8 // depth
            out = bytearray((len(s) * depth + 7) // 8)
            for i, v in enumerate(s):
                out[i // per] |= int(v) << (8 - depth * (i % per + 1))
            rows.append(bytes(out))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(samples, depth, ctype, extra=b"", interlace=False, filt=0, idat_split=1):
    """A PNG by hand (any depth, colour type, Adam7), for what Pillow cannot write."""
    h, w, _ = samples.shape
    raw = b""
    parts = [(0, 0, 1, 1)] if not interlace else ADAM7
    for x0, y0, dx, dy in parts:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for r in pack_rows(sub, depth):
            raw += bytes([filt]) + (r if filt == 0 else sub_filter(r, depth, samples.shape[2]))
    z = zlib.compress(raw, 9)
    n = max(1, len(z) // idat_split)
    idats = b"".join(chunk(b"IDAT", z[i:i + n]) for i in range(0, len(z), n))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + idats + chunk(b"IEND", b"")


def sub_filter(row, depth, channels):
    bpp = max(1, depth * channels // 8)
    out = bytearray(row)
    for i in range(len(row) - 1, bpp - 1, -1):
        out[i] = (row[i] - row[i - bpp]) & 0xFF
    return bytes(out)


def pil_bytes(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def scene(w, h, c, seed, lo=0, hi=255):
    """A smooth picture with edges and noise, so that resizing has something to do."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = []
    for k in range(c):
        f = 0.5 + 0.5 * np.sin(xx / (3 + 5 * k + w / 9) + yy / (4 + 3 * k + h / 7) + k)
        f = np.where((xx // max(1, w // 5) + yy // max(1, h // 4) + k) % 2 == 0, f, 1 - f * 0.7)
        base.append(f)
    a = np.stack(base, -1) * (hi - lo) + lo + r.normal(0, (hi - lo) * 0.04, (h, w, c))
    return np.clip(np.rint(a), lo, hi).astype(np.int64)


# ---------------------------------------------------------------- the cases

def ok_cases():
    """name -> file bytes, for every kind of input the decoder must match Pillow on."""
    c = {}
    u8 = lambda w, h, ch, seed: scene(w, h, ch, seed).astype(np.uint8)
    rgb = lambda w, h, seed: Image.fromarray(u8(w, h, 3, seed), "RGB")
    # Sizes: upscale, odd, exactly 224, one side 224 (one pass only), extreme aspect ratios.
    c["rgb_97x61.png"] = pil_bytes(rgb(97, 61, 1), "PNG")
    c["rgb_224x224.png"] = pil_bytes(rgb(224, 224, 2), "PNG")
    c["rgb_224x301.png"] = pil_bytes(rgb(224, 301, 3), "PNG")
    c["rgb_403x224.png"] = pil_bytes(rgb(403, 224, 4), "PNG")
    c["rgb_1x1.png"] = pil_bytes(rgb(1, 1, 5), "PNG")
    c["rgb_1x1000.png"] = pil_bytes(rgb(1, 1000, 6), "PNG")
    c["rgb_3000x2.png"] = pil_bytes(rgb(3000, 2, 7), "PNG")
    c["rgb_2999x301.png"] = pil_bytes(rgb(2999, 301, 8), "PNG")
    c["rgb_225x1999.png"] = pil_bytes(rgb(225, 1999, 9), "PNG")
    # JPEG: 4:2:0, 4:4:4, 4:2:2, progressive, grey, CMYK (Adobe), EXIF
    # orientation (not applied), a corrupt scan that libjpeg works around (a warning only).
    big = rgb(1000, 701, 10)
    c["jpeg_420_1000x701.jpg"] = pil_bytes(big, "JPEG", quality=90)
    c["jpeg_444_333x517.jpg"] = pil_bytes(rgb(333, 517, 11), "JPEG", quality=95, subsampling=0)
    c["jpeg_422_517x333.jpg"] = pil_bytes(rgb(517, 333, 12), "JPEG", quality=80, subsampling=1)
    c["jpeg_progressive_640x480.jpg"] = pil_bytes(rgb(640, 480, 13), "JPEG", quality=85, progressive=True)
    c["jpeg_grey_300x200.jpg"] = pil_bytes(Image.fromarray(u8(300, 200, 1, 14)[..., 0], "L"), "JPEG")
    c["jpeg_cmyk_250x190.jpg"] = pil_bytes(Image.fromarray(u8(250, 190, 4, 15), "CMYK"), "JPEG", quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6
    c["jpeg_exif_rot_300x220.jpg"] = pil_bytes(rgb(300, 220, 17), "JPEG", exif=exif.tobytes())
    c["jpeg_corrupt_scan_320x240.jpg"] = corrupt_scan(pil_bytes(rgb(320, 240, 18), "JPEG", quality=90))
    c["jpeg_tiny_1x1.jpg"] = pil_bytes(rgb(1, 1, 19), "JPEG")
    # PNG colour types and depths (Pillow's modes: 1, L, I, LA, P, RGB, RGBA).
    g = lambda w, h, seed, hi=255: scene(w, h, 1, seed, 0, hi)
    c["png_grey8_257x129.png"] = png_bytes(g(257, 129, 20), 8, 0)
    c["png_grey8_trns_130x90.png"] = png_bytes(g(130, 90, 21), 8, 0, chunk(b"tRNS", struct.pack(">H", 77)))
    c["png_grey1_99x77.png"] = png_bytes(g(99, 77, 22, 1), 1, 0)
    c["png_grey2_101x67.png"] = png_bytes(g(101, 67, 23, 3), 2, 0)
    c["png_grey4_67x101.png"] = png_bytes(g(67, 101, 24, 15), 4, 0)
    c["png_grey16_150x120.png"] = png_bytes(g(150, 120, 25, 400), 16, 0)
    c["png_grey16_full_80x60.png"] = png_bytes(g(80, 60, 26, 65535), 16, 0)
    c["png_la8_140x100.png"] = png_bytes(scene(140, 100, 2, 27), 8, 4)
    c["png_la16_90x70.png"] = png_bytes(scene(90, 70, 2, 28, 0, 65535), 16, 4)
    c["png_rgb16_200x150.png"] = png_bytes(scene(200, 150, 3, 29, 0, 65535), 16, 2)
    c["png_rgba8_230x170.png"] = png_bytes(scene(230, 170, 4, 30), 8, 6)
    c["png_rgba16_120x96.png"] = png_bytes(scene(120, 96, 4, 31, 0, 65535), 16, 6)
    c["png_rgb8_trns_111x83.png"] = png_bytes(scene(111, 83, 3, 32), 8, 2, chunk(b"tRNS", struct.pack(">HHH", 1, 2, 3)))
    pal = np.random.default_rng(33).integers(0, 256, (256, 3)).astype(np.uint8)
    c["png_pal8_160x120.png"] = png_bytes(g(160, 120, 34), 8, 3, chunk(b"PLTE", pal.tobytes()))
    c["png_pal8_trns_150x110.png"] = png_bytes(
        g(150, 110, 35), 8, 3, chunk(b"PLTE", pal.tobytes()) + chunk(b"tRNS", bytes(range(0, 256, 2))))
    # A short palette with indices past it: Pillow shows those as grey i, i, i.
    c["png_pal_short_90x60.png"] = png_bytes(g(90, 60, 36, 40), 8, 3, chunk(b"PLTE", pal[:7].tobytes()))
    for bits in (1, 2, 4):
        n = 1 << bits
        c[f"png_pal{bits}_{70 + bits}x{50 + bits}.png"] = png_bytes(
            g(70 + bits, 50 + bits, 37 + bits, n - 1), bits, 3, chunk(b"PLTE", pal[:n].tobytes()))
    c["png_pal_pil_1_300x200.png"] = pil_bytes(rgb(300, 200, 41).quantize(16), "PNG", bits=4)
    # Adam7, with odd sizes (empty passes), in every depth family; filters other than None.
    c["png_interlaced_rgb_131x97.png"] = png_bytes(scene(131, 97, 3, 42), 8, 2, interlace=True)
    c["png_interlaced_grey2_5x3.png"] = png_bytes(g(5, 3, 43, 3), 2, 0, interlace=True)
    c["png_interlaced_rgba16_33x65.png"] = png_bytes(scene(33, 65, 4, 44, 0, 65535), 16, 6, interlace=True)
    c["png_interlaced_pal4_1x9.png"] = png_bytes(g(1, 9, 45, 15), 4, 3, chunk(b"PLTE", pal[:16].tobytes()), interlace=True)
    c["png_sub_filter_64x48.png"] = png_bytes(scene(64, 48, 3, 46), 8, 2, filt=1, idat_split=5)
    # Ancillary chunks Pillow ignores for pixels: gAMA, iCCP-like sRGB, text; a bad CRC inside
    # the image data (Pillow does not check it).
    anc = chunk(b"gAMA", struct.pack(">I", 100000)) + chunk(b"sRGB", b"\x00") + chunk(b"tEXt", b"k\x00v")
    c["png_gamma_text_120x80.png"] = png_bytes(scene(120, 80, 3, 47), 8, 2, anc)
    c["png_idat_bad_crc_60x40.png"] = bad_crc(png_bytes(scene(60, 40, 3, 48), 8, 2), b"IDAT")
    c["png_trailing_garbage_40x30.png"] = png_bytes(scene(40, 30, 3, 49), 8, 2) + b"junk after IEND"
    return c


def corrupt_scan(data):
    """Flip bytes in the middle of the entropy-coded data (never making a 0xFF marker)."""
    d = bytearray(data)
    start = data.index(b"\xff\xda") + 20
    for k in range(6):
        i = start + (len(d) - start) * (k + 2) // 10
        if d[i] != 0xFF and d[i - 1] != 0xFF:
            d[i] = (d[i] ^ 0x5A) if (d[i] ^ 0x5A) != 0xFF else 0x11
    return bytes(d)


def bad_crc(data, kind):
    i = data.index(kind)
    n = struct.unpack(">I", data[i - 4:i])[0]
    j = i + 4 + n
    return data[:j] + bytes([data[j] ^ 0xFF]) + data[j + 1:]


def bad_cases(ok):
    """name -> (bytes, needle): inputs cmcr refuses; each checked below to be refused by Pillow."""
    jpg = ok["jpeg_420_1000x701.jpg"]
    prog = ok["jpeg_progressive_640x480.jpg"]
    png = ok["png_rgba8_230x170.png"]
    inter = ok["png_interlaced_rgb_131x97.png"]
    b = {}
    b["truncated_half.jpg"] = (jpg[:len(jpg) // 2], "truncated JPEG")
    b["truncated_no_eoi.jpg"] = (jpg[:-2], "truncated JPEG")
    b["truncated_header.jpg"] = (jpg[:300], "truncated JPEG")
    b["truncated_progressive.jpg"] = (prog[:len(prog) * 3 // 4], "truncated JPEG")
    b["truncated_half.png"] = (png[:len(png) // 2], "truncated PNG")
    b["truncated_interlaced.png"] = (inter[:len(inter) - 200], "truncated PNG")
    b["truncated_header.png"] = (png[:20], "truncated PNG")
    b["garbage.jpg"] = (bytes(np.random.default_rng(50).integers(0, 256, 500, dtype=np.uint8)), "not a JPEG or PNG image")
    b["text.png"] = (b"this is not an image\n", "not a JPEG or PNG image")
    b["empty.jpg"] = (b"", "not a JPEG or PNG image")
    b["jpeg_magic_then_junk.jpg"] = (b"\xff\xd8\xff" + b"\x00" * 64, "JPEG")
    b["png_magic_then_junk.png"] = (png[:8] + b"\x00" * 64, "corrupt PNG")
    b["bad_crc_ihdr.png"] = (bad_crc(png, b"IHDR"), "CRC")
    b["zero_width.png"] = (zero_dim_png(), "corrupt PNG")
    b["zero_height.jpg"] = (patch_sof(jpg, 0, 1000), "JPEG")
    b["bomb.png"] = (png_header_only(20000, 20000), "limit of 178956970 pixels")
    b["bomb.jpg"] = (patch_sof(jpg, 60000, 60000), "limit of 178956970 pixels")
    b["bad_huffman.jpg"] = (bad_huffman(jpg), "corrupt JPEG")
    b["bad_zlib.png"] = (bad_zlib(png), "corrupt PNG")
    b["two_components.jpg"] = (two_component_jpeg(ok["jpeg_grey_300x200.jpg"]), "components")
    return b


def zero_dim_png():
    ihdr = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def png_header_only(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")


def patch_sof(data, h, w):
    i = data.index(b"\xff\xc0")
    return data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:]


def bad_huffman(data):
    """A DHT whose code counts exceed what the code length allows: libjpeg's error_exit."""
    i = data.index(b"\xff\xc4")
    d = bytearray(data)
    d[i + 5:i + 21] = bytes([255] * 16)
    return bytes(d)


def bad_zlib(data):
    i = data.index(b"IDAT")
    d = bytearray(data)
    d[i + 4] ^= 0xFF  # the zlib header's CMF byte
    n = struct.unpack(">I", data[i - 4:i])[0]
    d[i + 4 + n:i + 8 + n] = struct.pack(">I", zlib.crc32(bytes(d[i:i + 4 + n])) & 0xFFFFFFFF)
    return bytes(d)


def two_component_jpeg(grey):
    """Rewrite a grey JPEG's SOF to claim 2 components (Pillow: 'cannot handle 2-layer')."""
    i = grey.index(b"\xff\xc0")
    n = struct.unpack(">H", grey[i + 2:i + 4])[0]
    sof = grey[i + 4:i + 2 + n]
    comp = sof[6:9]
    new = sof[:5] + b"\x02" + comp + bytes([comp[0] + 1]) + comp[1:]
    return grey[:i] + b"\xff\xc0" + struct.pack(">H", len(new) + 2) + new + grey[i + 2 + n:]


def pillow_refuses(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.convert("RGB")
        return False
    except Exception:  # noqa: BLE001 - any refusal counts (OSError, SyntaxError, DecompressionBombError...)
        return True


def write_case(out, lines, kind, name, path, im):
    arr = np.asarray(im)
    arr.tofile(os.path.join(out, name + ".rgb"))
    crop = clip_resize_crop(im)
    crop.tofile(os.path.join(out, name + ".crop"))
    np.save(os.path.join(out, name + ".chw.npy"), rescale_normalize(crop))
    lines.append(f"{kind} {name} {path} {im.size[0]} {im.size[1]}")


def make_fixture(out, assets):
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    lines = []
    ok = ok_cases()
    for name, data in sorted(ok.items()):
        path = os.path.join("images", name)  # paths in cases.txt are relative to the fixture
        with open(os.path.join(out, path), "wb") as f:
            f.write(data)
        write_case(out, lines, "ok", name, path, load_rgb(os.path.join(out, path)))
    for name, (data, needle) in sorted(bad_cases(ok).items()):
        if not pillow_refuses(data):
            sys.exit(f"clip_ref_image.py: Pillow accepts {name}, which cmcr is meant to refuse")
        path = os.path.join("images", name)
        with open(os.path.join(out, path), "wb") as f:
            f.write(data)
        lines.append(f"bad {path} {needle}")
    # Every prefix class of a few files: Pillow's verdict on each (a PNG that ends after its
    # last row is accepted, as Pillow does; a JPEG must reach EOI).
    for name in ("jpeg_progressive_640x480.jpg", "jpeg_tiny_1x1.jpg", "png_interlaced_rgb_131x97.png",
                 "png_pal4_74x54.png", "png_rgb16_200x150.png"):
        data = ok[name]
        cuts = sorted(set(range(0, min(64, len(data)))) | set(range(0, len(data), len(data) // 97 + 1))
                      | set(range(max(0, len(data) - 40), len(data))))
        for cut in cuts:
            lines.append(f"prefix images/{name} {cut} {0 if pillow_refuses(data[:cut]) else 1}")
    # resize alone: downscale, upscale, non-uniform, one side unchanged, to 1 pixel.
    src = os.path.join("images", "rgb_97x61.png")
    big = os.path.join("images", "png_rgba8_230x170.png")
    for s, (w, h) in [(src, (40, 30)), (src, (200, 150)), (src, (97, 200)), (src, (13, 61)), (src, (1, 1)),
                      (big, (229, 3)), (big, (64, 512)), (big, (230, 170)), (big, (1000, 17))]:
        name = f"resize_{os.path.basename(s)[:-4]}_{w}x{h}"
        im = load_rgb(os.path.join(out, s))
        np.asarray(im.resize((w, h), Image.BICUBIC, reducing_gap=None)).tofile(os.path.join(out, name))
        lines.append(f"resize {s} {w} {h} {name}")
    if assets and os.path.isdir(assets):
        for f in sorted(os.listdir(assets)):
            if f.lower().endswith((".jpg", ".jpeg", ".png")):
                p = os.path.abspath(os.path.join(assets, f))
                write_case(out, lines, "photo", "photo_" + f, p, load_rgb(p))
    else:
        print(f"clip_ref_image.py: no photos ({assets} absent): the photo cases are left out")
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"clip_ref_image.py: {len(lines)} cases in {out}")


def make_seeds(out):
    """Small files of every kind for fuzz/corpus/fuzz_image (fuzz/make_seeds.sh)."""
    os.makedirs(out, exist_ok=True)
    rgb = lambda w, h, seed: Image.fromarray(scene(w, h, 3, seed).astype(np.uint8), "RGB")
    g = lambda w, h, seed, hi=255: scene(w, h, 1, seed, 0, hi)
    pal = np.random.default_rng(60).integers(0, 256, (16, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 8
    seeds = {
        "baseline_420.jpg": pil_bytes(rgb(33, 25, 61), "JPEG", quality=80),
        "baseline_444.jpg": pil_bytes(rgb(17, 9, 62), "JPEG", quality=90, subsampling=0),
        "progressive.jpg": pil_bytes(rgb(40, 30, 63), "JPEG", quality=70, progressive=True),
        "grey.jpg": pil_bytes(Image.fromarray(g(16, 16, 64).astype(np.uint8)[..., 0], "L"), "JPEG"),
        "cmyk.jpg": pil_bytes(Image.fromarray(scene(24, 20, 4, 65).astype(np.uint8), "CMYK"), "JPEG"),
        "exif.jpg": pil_bytes(rgb(12, 8, 66), "JPEG", exif=exif.tobytes()),
        "rgb8.png": pil_bytes(rgb(20, 15, 67), "PNG"),
        "rgba16_interlaced.png": png_bytes(scene(9, 11, 4, 68, 0, 65535), 16, 6, interlace=True),
        "pal4_interlaced.png": png_bytes(g(13, 9, 69, 15), 4, 3, chunk(b"PLTE", pal.tobytes()), interlace=True),
        "pal8_short_trns.png": png_bytes(g(10, 7, 70, 30), 8, 3, chunk(b"PLTE", pal[:5].tobytes())
                                         + chunk(b"tRNS", b"\x00\x80")),
        "grey1.png": png_bytes(g(19, 5, 71, 1), 1, 0),
        "grey2_sub.png": png_bytes(g(7, 6, 72, 3), 2, 0, filt=1),
        "grey16.png": png_bytes(g(8, 8, 73, 600), 16, 0),
        "la16.png": png_bytes(scene(6, 5, 2, 74, 0, 65535), 16, 4),
        "rgb_trns_gamma.png": png_bytes(scene(8, 6, 3, 75), 8, 2, chunk(b"gAMA", struct.pack(">I", 45455))
                                        + chunk(b"tRNS", struct.pack(">HHH", 1, 2, 3)), idat_split=3),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def bench(files, runs=7):
    for p in files:
        t = []
        for _ in range(runs):
            t0 = time.perf_counter()
            clip_resize_crop(load_rgb(p))
            t.append(time.perf_counter() - t0)
        print(f"{os.path.basename(p)}: Pillow open+convert+resize+crop median {1000 * sorted(t)[runs // 2]:.2f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--assets", help="folder of real photos (cmcr-assets); skipped when absent")
    ap.add_argument("--bench", nargs="+")
    ap.add_argument("--seeds", help="write the fuzz_image seed corpus into this folder")
    a = ap.parse_args()
    if a.bench:
        bench(a.bench)
    elif a.seeds:
        make_seeds(a.seeds)
    elif a.out:
        assets = a.assets
        if os.environ.get("CMCR_TESTDATA"):
            assets = os.path.join(os.environ["CMCR_TESTDATA"], "cmcr-assets")
        make_fixture(a.out, assets)
    else:
        ap.error("--out or --bench is needed")


if __name__ == "__main__":
    main()
