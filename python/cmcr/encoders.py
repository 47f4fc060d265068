"""The encoders: CLIP (images, text), LAION-CLAP (audio, text) and ULIP-2's PointBERT (point
clouds), from files, bytes in memory or arrays to the embeddings PyTorch computes.

A loaded encoder is read-only: any number of threads may embed with one at once. Inputs are
embedded in batches of `batch` (the command's default, 32); a batch whose inputs are all
paths is read in parallel by the library, as `cmcr embed` reads it, so the rows are the
floats the command writes for the same files and batch size."""
import collections
import os

import numpy as np

from . import _arrays
from ._errors import ArgumentError, ShapeError
from ._handle import Closable, Handle
from ._lib import check, cstr, ffi, lib, text
from .tensors import _is_path, _memory

DEFAULT_BATCH = 32


def encoder_kind(model):
    """"clip", "clap" or "pointbert": what the checkpoint at model holds (from key names only)."""
    k = ffi.new("char **")
    check(lib.cmcr_encoder_kind(cstr(model, "model"), k))
    return text(k[0])


def load_encoder(model, **options):
    """The encoder of model's kind (Clip, Clap or PointBert), loaded with options."""
    return {"clip": Clip, "clap": Clap, "pointbert": PointBert}[encoder_kind(model)](model, **options)


def _batches(n, batch):
    if int(batch) < 1:
        raise ArgumentError("batch must be at least 1, not %r" % (batch,))
    for s in range(0, n, int(batch)):
        yield s, min(n, s + int(batch))


def _items(items, what):
    if isinstance(items, (str, bytes, bytearray, memoryview, os.PathLike)):
        raise TypeError("%s: pass a list of inputs (one input is [x])" % what)
    return list(items)


class _Encoder(Closable):
    _free = None
    _what = "encoder"

    def _init(self, pointer, model):
        self.model = os.fspath(model)
        self._h = Handle(pointer, type(self)._free, "%s %s" % (self._what, self.model))

    def __repr__(self):
        return "<cmcr.%s %s, dim %d>" % (type(self).__name__, self.model, self.dim)

    # -------------------------------------------------------------- shared loops

    def _embed_inputs(self, items, batch, bf16, normalize, out, extra_out=None):
        """items -> embeddings: batches read (in parallel when all are paths) then embedded."""
        items = _items(items, "embed")
        n = len(items)
        o = _arrays.output(out, (n, self.dim), "embed")
        buf = np.empty((min(n, int(batch)) if n else 0, self._input_floats), dtype=np.float32)
        flags = np.zeros(len(buf), dtype=np.uint8)
        ok = np.zeros(len(buf), dtype=np.uint8)
        with self._h as enc:
            for s, e in _batches(n, batch):
                k = e - s
                b, fl = buf[:k], flags[:k]
                if all(_is_path(x) for x in items[s:e]):
                    paths = [ffi.new("char[]", cstr(x, "path")) for x in items[s:e]]
                    check(self._read_files(enc, ffi.new("char *[]", paths), k, _arrays.wptr(b),
                                           ffi.from_buffer("unsigned char[]", fl), ffi.from_buffer("unsigned char[]", ok)))
                else:
                    for i, x in enumerate(items[s:e]):
                        self._read_one(enc, x, "%s[%d]" % (self._inputs, s + i), b[i], fl[i:i + 1])
                self._embed(enc, b, fl, k, bf16, normalize, o[s:e], None if extra_out is None else extra_out[s:e])
        return o

    def _read_one(self, enc, x, name, row, flag):
        """One input: a path, or bytes (called name in messages)."""
        pr, pf = _arrays.wptr(row), ffi.from_buffer("unsigned char[]", flag)
        if _is_path(x):
            check(self._read_file(enc, cstr(x, "path"), pr, pf))
        else:
            p, n, nm = _memory(x, name)
            check(self._read_memory(enc, p, n, nm, pr, pf))

    def _embed_texts(self, texts, batch, bf16, normalize, out):
        if isinstance(texts, str):
            raise TypeError("embed_texts: pass a list of prompts (one prompt is [text])")
        texts = list(texts)
        ids = np.empty((len(texts), self.context), dtype=np.int32)
        with self._h as enc:
            for i, t in enumerate(texts):
                self._tokenize_into(enc, t, "texts[%d]" % i, ids[i])
        return self.embed_ids(ids, batch=batch, bf16=bf16, normalize=normalize, out=out)

    def _tokenize_into(self, enc, t, name, row):
        if not isinstance(t, str):
            raise TypeError("%s: a prompt is a str, not %s" % (name, type(t).__name__))
        b = t.encode("utf-8", "surrogatepass")
        check(self._tokenize(enc, b, len(b), name.encode(), ffi.from_buffer("int32_t[]", row)))

    def tokenize(self, prompt):
        """The token ids of one prompt (context int32 values), as the model's tokenizer makes them."""
        ids = np.empty(self.context, dtype=np.int32)
        with self._h as enc:
            self._tokenize_into(enc, prompt, "prompt", ids)
        return ids

    def embed_ids(self, ids, batch=DEFAULT_BATCH, bf16=False, normalize=True, out=None):
        """Embed token-id rows (n x context, int32) with the text tower."""
        a = np.asarray(ids)
        if a.dtype.kind not in "iu" or a.ndim != 2 or a.shape[1] != self.context:
            raise ShapeError("embed_ids: expected n x %d integer token ids, got %s %s" % (self.context, a.dtype,
                                                                                       a.shape))
        a = np.ascontiguousarray(a, dtype=np.int32)
        o = _arrays.output(out, (a.shape[0], self.dim), "embed_ids")
        with self._h as enc:
            for s, e in _batches(a.shape[0], batch):
                check(self._embed_ids(enc, ffi.from_buffer("int32_t[]", a[s:e]), e - s, int(bool(bf16)),
                                      int(bool(normalize)), _arrays.wptr(o[s:e])))
        return o


# ------------------------------------------------------------------ CLIP

ClipInfo = collections.namedtuple("ClipInfo", "dim image_size patches context has_tokenizer layout activation "
                                              "text_activation")


class Clip(_Encoder):
    """OpenAI's CLIP (ViT): a Hugging Face folder or one weights file in either key layout.
    tokenizer: vocab.json (merges.txt beside it), a folder with both, or OpenAI's
    bpe_simple_vocab_16e6.txt.gz (None: looked for beside the model; without one, prompts are
    refused). activation: "quick_gelu" or "gelu" (None: the config's). float32_only: keep no
    bfloat16 copy of the weights (bf16 embeds refused)."""

    _free = lib.cmcr_clip_free
    _what = "CLIP model"
    _inputs = "images"

    def __init__(self, model, tokenizer=None, activation=None, float32_only=False):
        o = ffi.new("cmcr_clip_options *", lib.cmcr_clip_default_options())
        keep = [ffi.new("char[]", cstr(s)) if s is not None else ffi.NULL for s in (tokenizer, activation)]
        o.tokenizer, o.activation, o.float32_only = keep[0], keep[1], int(bool(float32_only))
        out = ffi.new("cmcr_clip **")
        check(lib.cmcr_clip_load(cstr(model, "model"), o, out))
        self._init(out[0], model)
        i = lib.cmcr_clip_get_info(out[0])
        self.info = ClipInfo(i.dim, i.image_size, i.patches, i.context, bool(i.has_tokenizer), text(i.layout),
                             text(i.activation), text(i.text_activation))
        self.dim, self.context, self.patches = i.dim, i.context, i.patches
        self._input_floats = 3 * i.image_size * i.image_size

    _tokenize = staticmethod(lib.cmcr_clip_tokenize)
    _embed_ids = staticmethod(lib.cmcr_clip_embed_ids)

    @staticmethod
    def _read_files(enc, paths, n, buf, flags, ok):
        return lib.cmcr_clip_pixels_files(enc, paths, n, buf, ok)

    @staticmethod
    def _read_file(enc, path, row, flag):
        return lib.cmcr_clip_pixels(enc, path, row)

    @staticmethod
    def _read_memory(enc, p, n, name, row, flag):
        return lib.cmcr_clip_pixels_memory(enc, p, n, name, row)

    def _embed(self, enc, buf, flags, k, bf16, normalize, out, patches):
        check(lib.cmcr_clip_embed_pixels(enc, _arrays.ptr(buf), k, int(bool(bf16)), int(bool(normalize)),
                                         _arrays.wptr(out), ffi.NULL if patches is None else _arrays.wptr(patches)))

    def pixels(self, image):
        """One JPEG or PNG (a path or its bytes), preprocessed as Hugging Face's CLIP image
        processor does: 3 x S x S float32."""
        s = self.info.image_size
        px = np.empty((3, s, s), dtype=np.float32)
        with self._h as enc:
            self._read_one(enc, image, "image", px, np.zeros(1, np.uint8))
        return px

    def embed_images(self, images, batch=DEFAULT_BATCH, bf16=False, normalize=True, patches=False, out=None):
        """Embed JPEG/PNG images (paths, or bytes of the files): n x dim. patches=True also
        returns the n x patches x dim patch embeddings (for localisation)."""
        images = _items(images, "embed_images")
        p = np.empty((len(images), self.patches, self.dim), dtype=np.float32) if patches else None
        o = self._embed_inputs(images, batch, bf16, normalize, out, p)
        return (o, p) if patches else o

    def embed_pixels(self, pixels, bf16=False, normalize=True, patches=False, out=None):
        """Embed preprocessed images (n x 3 x S x S float32, from pixels())."""
        s = self.info.image_size
        a = np.asarray(pixels)
        if a.ndim != 4 or a.shape[1:] != (3, s, s):
            raise ShapeError("embed_pixels: expected n x 3 x %d x %d pixels, got shape %s" % (s, s, a.shape))
        a = _arrays.floats(a.reshape(a.shape[0], -1), "embed_pixels")
        o = _arrays.output(out, (a.shape[0], self.dim), "embed_pixels", (a,))
        p = np.empty((a.shape[0], self.patches, self.dim), dtype=np.float32) if patches else None
        with self._h as enc:
            self._embed(enc, a, None, a.shape[0], bf16, normalize, o, p)
        return (o, p) if patches else o

    def embed_texts(self, texts, batch=DEFAULT_BATCH, bf16=False, normalize=True, out=None):
        """Embed prompts (a list of str) with the text tower: n x dim."""
        return self._embed_texts(texts, batch, bf16, normalize, out)


# ------------------------------------------------------------------ LAION-CLAP

ClapInfo = collections.namedtuple("ClapInfo", "dim context has_tokenizer sample_rate clip_samples input_floats "
                                              "audio_width audio_stages text_width text_layers")


class Clap(_Encoder):
    """LAION-CLAP (630k-fusion-best.pt and its kin). tokenizer: RoBERTa's vocab.json or a folder
    with vocab.json and merges.txt (None: beside the model). seed: draws the chunk starts of
    clips longer than 10 s (so a file always gets the same embedding)."""

    _free = lib.cmcr_clap_free
    _what = "CLAP model"
    _inputs = "sounds"

    def __init__(self, model, tokenizer=None, float32_only=False, seed=0):
        o = ffi.new("cmcr_clap_options *", lib.cmcr_clap_default_options())
        keep = ffi.new("char[]", cstr(tokenizer)) if tokenizer is not None else ffi.NULL
        o.tokenizer, o.float32_only, o.seed = keep, int(bool(float32_only)), int(seed)
        out = ffi.new("cmcr_clap **")
        check(lib.cmcr_clap_load(cstr(model, "model"), o, out))
        self._init(out[0], model)
        i = lib.cmcr_clap_get_info(out[0])
        self.info = ClapInfo(i.dim, i.context, bool(i.has_tokenizer), i.sample_rate, i.clip_samples, i.input_floats,
                             i.audio_width, i.audio_stages, i.text_width, i.text_layers)
        self.dim, self.context = i.dim, i.context
        self._input_floats = i.input_floats

    _tokenize = staticmethod(lib.cmcr_clap_tokenize)
    _embed_ids = staticmethod(lib.cmcr_clap_embed_ids)

    @staticmethod
    def _read_files(enc, paths, n, buf, flags, ok):
        return lib.cmcr_clap_audio_files(enc, paths, n, buf, flags, ok)

    @staticmethod
    def _read_file(enc, path, row, flag):
        return lib.cmcr_clap_audio(enc, path, row, flag)

    @staticmethod
    def _read_memory(enc, p, n, name, row, flag):
        return lib.cmcr_clap_audio_memory(enc, p, n, name, row, flag)

    def _embed(self, enc, buf, flags, k, bf16, normalize, out, patches):
        check(lib.cmcr_clap_embed_audio(enc, _arrays.ptr(buf), ffi.from_buffer("unsigned char[]", flags), k,
                                        int(bool(bf16)), int(bool(normalize)), _arrays.wptr(out)))

    def audio_input(self, sound):
        """One sound file (a path or its bytes) as the model's input: (input_floats float32,
        longer), longer telling whether it took the fusion path (more than 10 s)."""
        x = np.empty(self._input_floats, dtype=np.float32)
        flag = np.zeros(1, dtype=np.uint8)
        with self._h as enc:
            self._read_one(enc, sound, "sound", x, flag)
        return x, bool(flag[0])

    def embed_audio(self, sounds, batch=DEFAULT_BATCH, bf16=False, normalize=True, out=None):
        """Embed sound files (WAV, FLAC, OGG, MP3: paths, or bytes of the files): n x dim."""
        return self._embed_inputs(sounds, batch, bf16, normalize, out)

    def embed_texts(self, texts, batch=DEFAULT_BATCH, bf16=False, normalize=True, out=None):
        """Embed prompts (a list of str) with the RoBERTa text tower: n x dim."""
        return self._embed_texts(texts, batch, bf16, normalize, out)


# ------------------------------------------------------------------ PointBERT

PointBertInfo = collections.namedtuple("PointBertInfo", "dim width groups group_size input_floats trans_dim depth "
                                                        "heads encoder_dims")


class PointBert(_Encoder):
    """ULIP-2's PointBERT (pointbert_ULIP-2.pt: only the point tower is read). seed: where
    farthest-point sampling starts (0: point 0). xyz_only: give an xyz model the first three
    columns of wider clouds (ModelNet40's x, y, z, nx, ny, nz)."""

    _free = lib.cmcr_pointbert_free
    _what = "PointBERT model"
    _inputs = "clouds"

    def __init__(self, model, float32_only=False, seed=0, xyz_only=False):
        o = ffi.new("cmcr_pointbert_options *", lib.cmcr_pointbert_default_options())
        o.float32_only, o.seed, o.xyz_only = int(bool(float32_only)), int(seed), int(bool(xyz_only))
        out = ffi.new("cmcr_pointbert **")
        check(lib.cmcr_pointbert_load(cstr(model, "model"), o, out))
        self._init(out[0], model)
        i = lib.cmcr_pointbert_get_info(out[0])
        self.info = PointBertInfo(i.dim, i.width, i.groups, i.group_size, i.input_floats, i.trans_dim, i.depth,
                                  i.heads, i.encoder_dims)
        self.dim = i.dim
        self._input_floats = i.input_floats

    @staticmethod
    def _read_files(enc, paths, n, buf, flags, ok):
        return lib.cmcr_pointbert_clouds(enc, paths, n, buf, ok)

    @staticmethod
    def _read_file(enc, path, row, flag):
        return lib.cmcr_pointbert_cloud(enc, path, row)

    @staticmethod
    def _read_memory(enc, p, n, name, row, flag):
        return lib.cmcr_pointbert_cloud_memory(enc, p, n, name, row)

    def _read_one(self, enc, x, name, row, flag):
        if isinstance(x, np.ndarray):  # a cloud in memory: n points x width
            self._group(enc, x, name, row)
        else:
            _Encoder._read_one(self, enc, x, name, row, flag)

    def _group(self, enc, points, name, row):
        a = _arrays.floats(points, name)
        check(lib.cmcr_pointbert_group(enc, _arrays.ptr(a), a.shape[0], a.shape[1], name.encode(),
                                       _arrays.wptr(row)))

    def _embed(self, enc, buf, flags, k, bf16, normalize, out, patches):
        check(lib.cmcr_pointbert_embed(enc, _arrays.ptr(buf), k, int(bool(bf16)), int(bool(normalize)),
                                       _arrays.wptr(out)))

    def cloud_input(self, cloud):
        """One cloud (a path, the bytes of a file, or an n x 3 / n x 6 array) grouped into the
        model's input (input_floats float32)."""
        x = np.empty(self._input_floats, dtype=np.float32)
        with self._h as enc:
            self._read_one(enc, cloud, "cloud", x, np.zeros(1, dtype=np.uint8))
        return x

    def embed_clouds(self, clouds, batch=DEFAULT_BATCH, bf16=False, normalize=True, out=None):
        """Embed point clouds (.npy, the C-MCR demo's .npy, .ply, .xyz/.txt: paths or bytes;
        or arrays of n points x 3 or 6): n x dim."""
        return self._embed_inputs(clouds, batch, bf16, normalize, out)

    def tokenize(self, prompt):
        raise ArgumentError("PointBERT has no text tower: ULIP's prompts go through CLIP's (cmcr.Clip)")

    def embed_ids(self, *a, **k):
        return self.tokenize(None)
