#!/usr/bin/python3
"""Reference for cmcr's CLAP audio front end (src/media/audio.h) and its test fixture.

The reference is LAION-CLAP's hook.py get_audio_embedding_from_filelist (enable_fusion=True)
with training/data.py get_audio_features, written from their steps (librosa is not
installed, so its calls are spelled out):
  librosa.load(path, sr=48000): soundfile's SoundFile.read(dtype="float32"), transposed;
      mono by np.mean over channels; when the rate is not 48000, soxr.resample(y, sr, 48000,
      quality="soxr_hq") -- python-soxr's csoxr_divide_proc, called here through ctypes on
      Debian's libsoxr with the same arguments -- then fix_length to ceil(n * 48000 / sr).
  int16_to_float32(float32_to_int16(y)): clip to [-1, 1], * 32767., astype int16, / 32767.,
      astype float32.
  get_audio_features(.., 480000, "fusion", "repeatpad"): repeat + zero pad (<= 480000
      samples) and four copies of the mel; longer: the mel of the whole clip, ranges
      np.array_split(range(T - 1001 + 1), 3), one start in each, channel 0 the whole mel
      resized to 1001 x 64 (torchvision Resize on a tensor = F.interpolate bilinear,
      align_corners=False, no antialias; torchvision is not installed), channels 1..3 the
      windows.
  get_mel: torchaudio MelSpectrogram(48000, 1024, 1024, 480, center, reflect, power 2, norm
      None, onesided, 64 mels, 50..14000 Hz, htk) + AmplitudeToDB(top_db=None), in float32
      (as CLAP runs it) and in float64 (torch.set_default_dtype(float64): the same code in
      double, the reference of the tolerance).

  clap_ref_audio.py --out DIR [--assets DIR]   the fixture that tests/test_audio.c reads
  clap_ref_audio.py --seeds DIR                small sound files for fuzz/corpus/fuzz_audio

DIR/cases.txt, one case a line (paths relative to DIR except the assets'):
  ok NAME PATH RATE N N48 FRAMES LONGER S0 S1 S2 L0 H0 L1 H1 L2 H2
      PATH decodes to NAME.dec.f32 (N mono samples at RATE Hz), resamples to NAME.r48.f32
      (N48 samples), quantises to NAME.q.f32; FRAMES mel frames in NAME.mel64.f64 and
      NAME.mel32.f32 (of the filled clip when N48 <= 480000, else of the whole clip);
      LONGER 1: NAME.fus64.f64 / NAME.fus32.f32 (4 x 1001 x 64; of the float64 mel rounded to
      float32 / of the float32 mel, each resized in float32) for the starts S0..S2, and
      the three start ranges [Lk, Hk] (inclusive) of np.array_split. LONGER 0: starts -1.
  bad PATH NEEDLE
      refused by cmcr with a one-line message that contains NEEDLE (soundfile's verdict is
      printed here, for docs/audio.md).
Raw arrays are little-endian, row-major, without header.
"""
import argparse
import ctypes
import ctypes.util
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch

try:
    import soundfile as sf
    import torchaudio
except ImportError as e:  # tests/fixture.sh: 77 is "skipped"
    print(f"SKIP: {sys.executable} lacks {e.name} (scripts/install-deps.sh installs python3-soundfile and torchaudio)")
    sys.exit(77)

RATE = 48000
CLIP = 480000
HOP = 480
CHUNK_FRAMES = CLIP // HOP + 1


# ---------------------------------------------------------------- librosa.load

def decode(path):
    """librosa 0.10 __soundfile_load + to_mono (sr=None)."""
    with sf.SoundFile(path) as d:
        rate = d.samplerate
        y = d.read(frames=-1, dtype=np.float32, always_2d=False).T
    if y.ndim > 1:
        y = np.mean(y, axis=tuple(range(y.ndim - 1)))
    return y, rate


class _SoxrIoSpec(ctypes.Structure):
    _fields_ = [("itype", ctypes.c_int), ("otype", ctypes.c_int), ("scale", ctypes.c_double),
                ("e", ctypes.c_void_p), ("flags", ctypes.c_ulong)]


class _SoxrQualitySpec(ctypes.Structure):
    _fields_ = [("precision", ctypes.c_double), ("phase_response", ctypes.c_double),
                ("passband_end", ctypes.c_double), ("stopband_begin", ctypes.c_double),
                ("e", ctypes.c_void_p), ("flags", ctypes.c_ulong)]


def _libsoxr():
    lib = ctypes.CDLL(ctypes.util.find_library("soxr") or "libsoxr.so.0")
    lib.soxr_io_spec.restype = _SoxrIoSpec
    lib.soxr_io_spec.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.soxr_quality_spec.restype = _SoxrQualitySpec
    lib.soxr_quality_spec.argtypes = [ctypes.c_ulong, ctypes.c_ulong]
    lib.soxr_create.restype = ctypes.c_void_p
    lib.soxr_create.argtypes = [ctypes.c_double, ctypes.c_double, ctypes.c_uint, ctypes.POINTER(ctypes.c_char_p),
                                ctypes.POINTER(_SoxrIoSpec), ctypes.POINTER(_SoxrQualitySpec), ctypes.c_void_p]
    lib.soxr_process.restype = ctypes.c_char_p
    lib.soxr_process.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
                                 ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    lib.soxr_delete.argtypes = [ctypes.c_void_p]
    return lib


SOXR = _libsoxr()
SOXR_FLOAT32_I, SOXR_HQ = 0, 4


def soxr_resample(x, in_rate, out_rate):
    """python-soxr's soxr.resample(x, in_rate, out_rate, "soxr_hq") for 1-D float32 x:
    csoxr_divide_proc<float> (chunks of int(48000 * in / out) samples, one flush)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    err = ctypes.c_char_p()
    io = SOXR.soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
    q = SOXR.soxr_quality_spec(SOXR_HQ, 0)
    s = SOXR.soxr_create(float(in_rate), float(out_rate), 1, ctypes.byref(err), ctypes.byref(io), ctypes.byref(q), None)
    assert not err.value, err.value
    ilen = len(x)
    olen = int(ilen * float(out_rate) / float(in_rate) + 1)
    chunk = int(48000 * float(in_rate) / float(out_rate))
    y = np.zeros(olen, dtype=np.float32)
    done, pos, idx = ctypes.c_size_t(), 0, 0
    while idx < ilen:
        n = min(chunk, ilen - idx)
        SOXR.soxr_process(s, x.ctypes.data + 4 * idx, n, None, y.ctypes.data + 4 * pos, olen - pos, ctypes.byref(done))
        pos += done.value
        idx += chunk
    SOXR.soxr_process(s, None, 0, None, y.ctypes.data + 4 * pos, olen - pos, ctypes.byref(done))
    pos += done.value
    SOXR.soxr_delete(s)
    return y[:pos]


def resample_48k(y, rate):
    """librosa.resample(y, orig_sr=rate, target_sr=48000, res_type="soxr_hq") (fix=True)."""
    if rate == RATE:
        return y
    ratio = float(RATE) / rate
    n = int(np.ceil(y.shape[-1] * ratio))
    z = soxr_resample(y, rate, RATE)
    z = z[:n] if len(z) >= n else np.pad(z, (0, n - len(z)))  # librosa.util.fix_length
    return np.asarray(z, dtype=y.dtype)


def quantize(y):
    x = np.clip(y, a_min=-1.0, a_max=1.0)
    q = (x * 32767.0).astype(np.int16)
    return (q / 32767.0).astype(np.float32)


# ---------------------------------------------------------------- get_audio_features

def get_mel(x, dtype):
    """data.py get_mel, in float32 or (the same torchaudio code under a float64 default)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        mel_tf = torchaudio.transforms.MelSpectrogram(
            sample_rate=RATE, n_fft=1024, win_length=1024, hop_length=HOP, center=True, pad_mode="reflect",
            power=2.0, norm=None, onesided=True, n_mels=64, f_min=50, f_max=14000)
        mel = mel_tf(torch.from_numpy(x).to(dtype))
        mel = torchaudio.transforms.AmplitudeToDB(top_db=None)(mel)
    finally:
        torch.set_default_dtype(old)
    return mel.T.contiguous()  # (T, 64)


def fill(x):
    t = torch.from_numpy(x)
    if len(t) < CLIP:
        t = t.repeat(int(CLIP / len(t)))
        t = torch.nn.functional.pad(t, (0, CLIP - len(t)), mode="constant", value=0)
    return t.numpy()


def ranges_of(frames):
    ranges = np.array_split(list(range(0, frames - CHUNK_FRAMES + 1)), 3)
    return [list(r) if len(r) else [0] for r in ranges]


def fusion(mel, starts):
    """channel 0: Resize([1001, 64]) of the whole mel; 1..3: the windows at starts."""
    shrink = torch.nn.functional.interpolate(mel[None, None], size=[CHUNK_FRAMES, 64], mode="bilinear",
                                             align_corners=False)[0, 0]
    chunks = [mel[s:s + CHUNK_FRAMES, :] for s in starts]
    return torch.stack([shrink] + chunks, dim=0)


# ---------------------------------------------------------------- the fixture

def signal(rng, n, rate, channels, amp):
    t = np.arange(n) / rate
    cols = []
    for c in range(channels):
        f = rng.uniform(60, min(rate / 2 - 100, 9000), size=3)
        s = sum(np.sin(2 * np.pi * fk * t + c) for fk in f) / 3 + 0.1 * rng.standard_normal(n)
        cols.append(amp * s * np.linspace(0.2, 1.0, n))
    return np.stack(cols, axis=1) if channels > 1 else cols[0]


# name, rate, seconds (or a sample count when an int), channels, format, subtype, amplitude
CASES = [
    ("short01", 48000, 0.1, 1, "WAV", "PCM_16", 0.5),
    ("short1_44k", 44100, 1.0, 1, "WAV", "PCM_16", 0.5),
    ("exact10", 48000, 480000, 1, "WAV", "PCM_16", 0.5),
    ("long25", 48000, 25.0, 1, "WAV", "PCM_16", 0.5),
    ("long12_44k", 44100, 12.0, 2, "WAV", "PCM_16", 0.4),
    ("corner480001", 48000, 480001, 1, "WAV", "PCM_16", 0.5),
    ("corner480480", 48000, 480480, 1, "WAV", "PCM_16", 0.5),
    ("stereo32k", 32000, 3.0, 2, "WAV", "PCM_24", 0.5),
    ("ch3_22k", 22050, 2.0, 3, "WAV", "FLOAT", 0.5),
    ("ch9_16k", 16000, 1.0, 9, "WAV", "FLOAT", 0.5),
    ("rate8k", 8000, 2.0, 1, "WAV", "PCM_16", 0.5),
    ("rate16k", 16000, 1.5, 1, "WAV", "PCM_16", 0.5),
    ("one_sample", 16000, 1, 1, "WAV", "FLOAT", 0.5),
    ("int24_48k", 48000, 2.0, 1, "WAV", "PCM_24", 0.5),
    ("float_clip", 44100, 1.0, 1, "WAV", "FLOAT", 1.6),
    ("silence48k", 48000, 2.0, 1, "WAV", "PCM_16", 0.0),
    ("silence16k", 16000, 1.0, 2, "WAV", "FLOAT", 0.0),
    ("flac16k", 16000, 3.0, 1, "FLAC", "PCM_16", 0.5),
    ("flac44k_st", 44100, 2.0, 2, "FLAC", "PCM_24", 0.5),
    ("ogg32k", 32000, 2.0, 1, "OGG", "VORBIS", 0.5),
    ("ogg48k_st", 48000, 11.0, 2, "OGG", "VORBIS", 0.5),
    ("mp3_44k", 44100, 2.0, 1, "MP3", "MPEG_LAYER_III", 0.5),
    ("mp3_48k_st", 48000, 3.0, 2, "MP3", "MPEG_LAYER_III", 0.5),
]
EXT = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3"}


def write_case(d, rng, name, rate, dur, ch, fmt, subtype, amp):
    n = dur if isinstance(dur, int) else int(round(dur * rate))
    path = os.path.join(d, "files", f"{name}.{EXT[fmt]}")
    try:
        sf.write(path, signal(rng, n, rate, ch, amp), rate, format=fmt, subtype=subtype)
    except (sf.LibsndfileError, TypeError, ValueError) as e:
        print(f"note: soundfile cannot write {fmt}/{subtype} ({e}); case {name} left out")
        return None
    return path


def reference_case(d, name, path, rel):
    y, rate = decode(path)
    y48 = resample_48k(y, rate)
    q = quantize(y48)
    starts, rng_lines = [-1, -1, -1], [-1] * 6
    longer = len(q) > CLIP
    x = q if longer else fill(q)
    if not longer:
        fill(q).astype("<f4").tofile(os.path.join(d, f"{name}.fill.f32"))
    mel64, mel32 = get_mel(x.astype(np.float64), torch.float64), get_mel(x, torch.float32)
    frames = mel64.shape[0]
    if longer and frames == CHUNK_FRAMES:
        longer = False  # the reference's corner case: four copies of the whole clip's mel
    if longer:
        rs = ranges_of(frames)
        pick = np.random.default_rng(frames)  # the reference draws at random; any in-range start
        starts = [int(pick.choice(r)) for r in rs]
        rng_lines = [v for r in rs for v in (r[0], r[-1])]
        # The resize runs on float32 tensors in CLAP, and ATen's float kernel is not its
        # double kernel (a float scale): the float64 mel, rounded to float32, resized as CLAP does.
        fusion(mel64.float(), starts).numpy().astype("<f8").tofile(os.path.join(d, f"{name}.fus64.f64"))
        fusion(mel32, starts).numpy().astype("<f4").tofile(os.path.join(d, f"{name}.fus32.f32"))
    y.astype("<f4").tofile(os.path.join(d, f"{name}.dec.f32"))
    y48.astype("<f4").tofile(os.path.join(d, f"{name}.r48.f32"))
    q.astype("<f4").tofile(os.path.join(d, f"{name}.q.f32"))
    mel64.numpy().astype("<f8").tofile(os.path.join(d, f"{name}.mel64.f64"))
    mel32.numpy().astype("<f4").tofile(os.path.join(d, f"{name}.mel32.f32"))
    f = [name, rel, rate, len(y), len(y48), frames, int(longer)] + starts + rng_lines
    return "ok " + " ".join(str(v) for v in f)


def wav_header(fmt_tag, ch, rate, bits, data_bytes, riff_bytes=None):
    block = ch * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, ch, rate, rate * block, block, bits)
    riff = riff_bytes if riff_bytes is not None else 4 + 8 + len(fmt) + 8 + data_bytes
    return b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + \
        b"data" + struct.pack("<I", data_bytes)


def bad_files(d):
    """(path, needle) of inputs cmcr refuses, written into d/bad."""
    b = os.path.join(d, "bad")
    os.makedirs(b)
    out = []

    def put(name, data, needle):
        p = os.path.join(b, name)
        with open(p, "wb") as f:
            f.write(data)
        out.append((p, needle))

    rng = np.random.default_rng(7)
    put("empty.wav", b"", "readable audio")
    put("text.wav", b"this is not a sound file\n" * 20, "readable audio")
    put("noise.bin", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "readable audio")
    pcm = (rng.standard_normal(4800) * 3000).astype("<i2").tobytes()
    put("truncated.wav", wav_header(1, 1, 48000, 16, 96000) + pcm[:2000], "truncated")
    put("corrupt_fmt.wav", wav_header(1, 0, 48000, 16, len(pcm)) + pcm, "readable audio")
    put("zero_frames.wav", wav_header(1, 1, 48000, 16, 0), "no audio frames")
    put("rate_low.wav", wav_header(1, 1, 10, 16, len(pcm)) + pcm, "sample rate")
    put("rate_high.wav", wav_header(1, 1, 10_000_000, 16, len(pcm)) + pcm, "sample rate")
    put("channels.wav", wav_header(1, 300, 48000, 16, 600 * 16) + bytes(600 * 16), "channels")
    # 3601 s of 8-bit mono at 1000 Hz (3.6 MB): past the one-hour limit.
    put("too_long.wav", wav_header(1, 1, 1000, 8, 3601 * 1000) + bytes([128]) * (3601 * 1000), "longer than the limit")
    fl = np.full(480, 0.25, dtype="<f4")
    fl[100] = np.nan
    put("nan.wav", wav_header(3, 1, 48000, 32, fl.nbytes) + fl.tobytes(), "not finite")
    fl[100] = np.inf
    put("inf.wav", wav_header(3, 1, 48000, 32, fl.nbytes) + fl.tobytes(), "not finite")
    os.makedirs(os.path.join(b, "folder.wav"))
    out.append((os.path.join(b, "folder.wav"), "not a regular file"))
    out.append((os.path.join(b, "missing.wav"), "cannot open"))
    for p, _ in out:
        try:
            y, _ = decode(p)
            verdict = f"soundfile reads {len(y)} samples" + (" (not all finite)" if not np.all(np.isfinite(y)) else "")
        except Exception as e:  # noqa: BLE001 - any refusal is the verdict
            verdict = f"soundfile refuses: {type(e).__name__}"
        print(f"bad {os.path.basename(p)}: {verdict}")
    return out


def make_fixture(d, assets):
    os.makedirs(os.path.join(d, "files"))
    rng = np.random.default_rng(2024)
    lines = []
    for name, rate, dur, ch, fmt, subtype, amp in CASES:
        path = write_case(d, rng, name, rate, dur, ch, fmt, subtype, amp)
        if path:
            lines.append(reference_case(d, name, path, os.path.relpath(path, d)))
    for stem in ("toilet", "BBQ", "train"):
        p = os.path.join(assets or "", f"{stem}.wav")
        if assets and os.path.isfile(p):
            lines.append(reference_case(d, f"asset_{stem}", p, os.path.abspath(p)))
        else:
            print(f"note: {p} absent; the real recordings are left out")
    for p, needle in bad_files(d):
        lines.append(f"bad {os.path.relpath(p, d)} {needle}")
    with open(os.path.join(d, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} cases")


def make_seeds(d):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(5)
    for name, rate, ch, fmt, subtype in [("s16", 16000, 1, "WAV", "PCM_16"), ("st24", 22050, 2, "WAV", "PCM_24"),
                                         ("f32", 8000, 1, "WAV", "FLOAT"), ("flac", 16000, 1, "FLAC", "PCM_16"),
                                         ("ogg", 16000, 1, "OGG", "VORBIS"), ("mp3", 16000, 1, "MP3", "MPEG_LAYER_III")]:
        sf.write(os.path.join(d, f"{name}.{EXT[fmt]}"), signal(rng, 1600, rate, ch, 0.5), rate, format=fmt,
                 subtype=subtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--assets")
    ap.add_argument("--seeds")
    a = ap.parse_args()
    if a.seeds:
        make_seeds(a.seeds)
    if a.out:
        make_fixture(a.out, a.assets)
    if not a.out and not a.seeds:
        ap.error("--out or --seeds")


if __name__ == "__main__":
    main()
