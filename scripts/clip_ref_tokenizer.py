#!/usr/bin/env python3
"""Reference for the C CLIP tokenizer (src/text/clip_bpe.c): OpenAI's clip.tokenize
(clip/simple_tokenizer.py) written from its rules, without ftfy (not in Debian):
html.unescape twice, strip, re.sub(r'\\s+', ' ') with the `regex` module, strip, str.lower,
the word pattern (regex, IGNORECASE), bytes_to_unicode, BPE with </w>. Loads OpenAI's merge
list (.gz or plain) or Hugging Face's vocab.json + merges.txt.

    clip_ref_tokenizer.py --out DIR --unicode        Unicode tables for the exhaustive tests
    clip_ref_tokenizer.py --out DIR --vocab PATH     test strings, their ids, an HF-layout vocab
    clip_ref_tokenizer.py --vocab PATH --text "a photo of a cat."   prints the ids
    clip_ref_tokenizer.py --vocab PATH --bench FILE  prompts/s over the strings of FILE
    clip_ref_tokenizer.py --seeds DIR                seeds for fuzz/fuzz_tokenizer.c

A relative --vocab is taken from $CMCR_TESTDATA (else $CMCR_TESTDATA_DEFAULT); when the file
is absent the fixture is skipped (exit 77)."""
import argparse
import gzip
import html
import json
import os
import random
import statistics
import struct
import sys
import time
import unicodedata

import numpy as np
import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_html_entities  # noqa: E402

MERGES = 49152 - 256 - 2  # the slice [1 : 49152 - 256 - 2 + 1] of OpenAI's and HF's code
PATTERN = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                        regex.IGNORECASE)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clean(text):
    """basic_clean and whitespace_clean without ftfy, then lower(), as encode() does."""
    text = html.unescape(html.unescape(text)).strip()
    text = regex.sub(r"\s+", " ", text).strip()
    return text.lower()


class Tokenizer:
    def __init__(self, path):
        self.byte_encoder = bytes_to_unicode()
        if os.path.isdir(path) or path.endswith(".json"):
            vocab_json = os.path.join(path, "vocab.json") if os.path.isdir(path) else path
            with open(vocab_json, encoding="utf-8") as f:
                self.encoder = json.load(f)
            with open(os.path.join(os.path.dirname(vocab_json), "merges.txt"), encoding="utf-8") as f:
                lines = f.read().strip().split("\n")[1:MERGES + 1]
        else:
            raw = open(path, "rb").read()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            lines = raw.decode("utf-8").split("\n")[1:MERGES + 1]
            self.encoder = None
        merges = [tuple(line.split()) for line in lines]
        if self.encoder is None:
            vocab = list(self.byte_encoder.values())
            vocab = vocab + [v + "</w>" for v in vocab]
            vocab += ["".join(m) for m in merges]
            vocab += ["<|startoftext|>", "<|endoftext|>"]
            self.vocab = vocab
            self.encoder = dict(zip(vocab, range(len(vocab))))
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.sot = self.encoder["<|startoftext|>"]
        self.eot = self.encoder["<|endoftext|>"]

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text):
        ids = []
        for token in PATTERN.findall(clean(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids

    def tokenize(self, texts, context=77):
        """clip.tokenize(texts, context, truncate=True) as int32, and the BPE token counts."""
        out = np.zeros((len(texts), context), np.int32)
        counts = np.zeros(len(texts), np.int64)
        for i, t in enumerate(texts):
            bpe = self.encode(t)
            counts[i] = len(bpe)
            tokens = [self.sot] + bpe + [self.eot]
            if len(tokens) > context:
                tokens = tokens[:context]
                tokens[-1] = self.eot
            out[i, :len(tokens)] = tokens
        return out, counts


COCO = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
        "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
        "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
        "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
        "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
        "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
        "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
        "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
        "hair drier", "toothbrush"]

# Code point ranges of several scripts, for random strings.
SCRIPTS = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
           (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
           (0x1F300, 0x1FAFF), (0x2000, 0x206F), (0x0300, 0x036F), (0xFF00, 0xFFEF), (0x10000, 0x1007F)]


def test_strings():
    """The corpus: deterministic, >= 2000 strings covering the cases of docs/tokenizers.md."""
    r = random.Random(20261203)
    s = ["a photo of a %s." % c for c in COCO]
    s += ["A PHOTO OF A %s!" % c.upper() for c in COCO]
    s += ["a photo of a cat.", "", " ", "\t\n", "\u3000\u00a0 \t", "hello world", "Hello,   World!!!",
          "DON'T", "I'M", "you'RE", "they'Ve", "We'LL", "she'D", "it'S", "don't stop", "can't won't shan't",
          "'s", "'S'S's", "rock'n'roll", "O'Neil's dog's bone",
          "İstanbul", "İi", "ΣΑΣ ΟΔΥΣΣΕΥΣ", "Σ", "aΣ", "ΣΣ", "ΌΣΟΣ.", "Σ'Σ", "ΑΣ\u0301", "a\u0345b", "ᾼΣ",
          "naïve café résumé Ångström", "e\u0301cole", "ﬁne ﬂour", "ＦＵＬＬＷＩＤＴＨ １２３", "“curly” ‘quotes’ don’t",
          "東京タワーの写真", "北京欢迎你", "한국어 텍스트", "ข้อความภาษาไทย", "हिन्दी पाठ",
          "مرحبا بالعالم", "שלום עולם", "Привет, мир!", "Ελληνικά κείμενα",
          "👍🏽 👩‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 ❤️", "👨🏿‍🚀👩🏻‍🔬", "emoji😀in😀words",
          "3.14159 and 2,718 and 1e10", "٣٤٥ ۶۷۸ १२३ ௧௨", "½ ⅓ Ⅻ ⑳", "x²+y³=z⁴", "0123456789" * 3,
          "&amp; &lt; &gt; &quot; &#39; &#x27; &nbsp;", "&amp;lt;b&amp;gt;", "&amp;amp;amp;", "&lt;&lt;&lt;",
          "&notit; &notin; &not &amp &ampx &AMP; &AElig &AEligx", "&#0; &#13; &#128; &#150; &#159; &#x80; &#xD800;",
          "&#x110000; &#99999999999999999999; &#1; &#11; &#12; &#xFDD0; &#xFFFE; &#x10FFFF;", "&#65&#66;&#x43",
          "&#; &#x; &# &&& & ; &;", "&CounterClockwiseContourIntegral; &CounterClockwiseContourIntegralX;",
          "&nGt; &NotEqualTilde; &bne; &fjlig;", "&amp;#38;#38; &amp;#x26;", "&x\u00e9; &\u00e9acute; &eacute\u00e9",
          "&aacute&aacute;&aacutex", "&lt\r\n&gt", "&\t&\n&\f", "<|startoftext|>", "a <|endoftext|> b",
          "<|STARTOFTEXT|>", "<|startoftext|><|endoftext|>", "&lt;|endoftext|&gt;",
          "\x1cfile\x1dgroup\x1erecord\x1funit\x1c", "a\x1cb", "\x85nel\x85", "\u2028line\u2029para",
          "a\u180eb", "a\u200bb", "a\ufeffb", "\x00nul\x00", "\x7f\x80\x9f", "tab\tsep\tvalues", "cr\r\nlf",
          "trailing space   ", "   leading space", "\u3000ideographic\u3000space\u3000",
          "!!!???...,,,;;;", "#hashtag @mention $100 %50 ^_^ *bold* (paren) [bracket] {brace}",
          "http://example.com/path?q=1&r=2", "user@example.com", "C++ C# F# .NET", "snake_case camelCase",
          "a" * 300, "ab" * 200, "!" * 300, "😀" * 100, "1" * 100, "ー" * 100, "x " * 100,
          " ".join(["word"] * 100), " ".join(COCO), "a.b,c;d:e!f?g", "It's 5 o'clock; it's 17:00.",
          "\u0130\u0049\u0131\u0069", "ǅ ǈ ǋ ǲ", "ẞ ß", "Ω Ω K K", "ſ'ſ 'ſ", "ﬆ ﬅ"]
    # Each whitespace-like character at the start, inside and at the end.
    for c in [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x180E, 0x2000,
              0x2005, 0x200A, 0x200B, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF]:
        ch = chr(c)
        s += [ch + "a" + ch + "b" + ch, ch * 3 + "x" + ch * 3 + "y"]
    # Contractions in every case, after letters, digits and nothing.
    for c in ["s", "t", "re", "ve", "m", "ll", "d"]:
        for form in [c, c.upper(), c.capitalize()]:
            s += ["it'" + form, "9'" + form, "'" + form + "x", "x '" + form]
    # Entities: every 40th named one, with and without ';', and numeric ones.
    names = sorted(html.entities.html5)
    for k in names[::40]:
        s.append("x&%s y &amp;%s z" % (k, k))
    for n in list(range(0, 0x100, 7)) + [0x7F, 0x80, 0x81, 0x8D, 0x9F, 0xA0, 0xAD, 0xD7FF, 0xE000, 0xFFFD, 0x1F600]:
        s.append("&#%d; &#x%X; &#x%x &#%d" % (n, n, n, n))
    # Over-long texts (more than 75 tokens) and texts around the limit.
    for n in [70, 74, 75, 76, 77, 100, 500]:
        s.append(" ".join(r.choice(COCO) for _ in range(n)))
        s.append("".join(r.choice("abcdefgh") for _ in range(n * 4)))
    # Random Unicode from several scripts, with spaces, entities and punctuation mixed in.
    while len(s) < 2300:
        parts = []
        for _ in range(r.randint(1, 12)):
            lo, hi = r.choice(SCRIPTS)
            word = []
            for _ in range(r.randint(1, 10)):
                c = r.randint(lo, hi)
                if 0xD800 <= c <= 0xDFFF:
                    continue
                word.append(chr(c))
            parts.append("".join(word))
            parts.append(r.choice([" ", " ", "  ", "\t", "\n", "", ".", ", ", "&amp;", "'s ", "\u00a0", "\u3000"]))
        s.append("".join(parts))
    # Lines that are empty or only whitespace, and lines of one repeated character.
    s += ["", "\n", "\r\n", " \t \u3000 ", "\u00a0"]
    for ch in "a.1😀é中 &":
        s.append(ch * r.randint(50, 400))
    return s


def write_strings(path, strings):
    """Length-prefixed UTF-8: 'CLIPSTR1', u32 count, then per string u32 length + bytes (LE)."""
    with open(path, "wb") as f:
        f.write(b"CLIPSTR1" + struct.pack("<I", len(strings)))
        for t in strings:
            b = t.encode("utf-8")
            f.write(struct.pack("<I", len(b)) + b)


def write_hf(tok, out):
    """Hugging Face's layout of the same vocabulary (openai/clip-vit-base-patch32)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(tok.encoder, f, ensure_ascii=False)
    inv = {v: k for k, v in tok.bpe_ranks.items()}
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for i in range(len(inv)):
            f.write(" ".join(inv[i]) + "\n")


def unicode_tables(out):
    """For every code point: how the word pattern classes it, and clean('A' + c + 'B')."""
    cls = bytearray()
    low = bytearray()
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            cls += b"X"
            low += b"\0"
            continue
        ch = chr(c)
        words = PATTERN.findall("a%sa 1%s1 .%s." % (ch, ch, ch))
        expect = {"L": ["a%sa" % ch, "1", ch, "1", ".", ch, "."],
                  "N": ["a", ch, "a", "1", ch, "1", ".", ch, "."],
                  "O": ["a", ch, "a", "1", ch, "1", ".%s." % ch],
                  "S": ["a", "a", "1", "1", ".", "."]}  # whitespace, or left out of every word
        k = next((k for k, w in expect.items() if w == words), None)
        if k is None and ch not in ".1":  # '.' and '1' join their neighbours: the C test skips them
            raise SystemExit("U+%04X splits in no expected way: %r" % (c, words))
        k = k or "O"
        if unicodedata.category(ch) == "Cn":
            k = k.lower()  # not assigned in this Python's Unicode: the libraries may differ
        cls += k.encode()
        b = clean("A" + ch + "B").encode("utf-8")
        low += bytes([len(b)]) + b
    with open(os.path.join(out, "classes.bin"), "wb") as f:
        f.write(cls)
    with open(os.path.join(out, "lower.bin"), "wb") as f:
        f.write(low)
    with open(os.path.join(out, "versions.txt"), "w") as f:
        f.write("python %s unicodedata %s regex %s\n" % (sys.version.split()[0], unicodedata.unidata_version,
                                                            regex.__version__))


def write_seeds(out):
    """fuzz_tokenizer's seeds (its first byte picks the mode: 0 text, 1 merge list, 2 HF files),
    made from nothing but this script: no file of the test data is copied."""
    os.makedirs(out, exist_ok=True)
    strings = test_strings()
    marks = ["DON'T", "\u0130stanbul", "\u03a3\u0391\u03a3", "\U0001F44D", "&amp;lt;", "&notit;", "&#0;", "&#x110000;",
             "<|endoftext|>", "\x1c", "\u3000ideographic", "\u0645\u0631\u062d\u0628\u0627", "\u6771\u4eac",
             "\u00bd", "a\u0345b", "\x00nul"]
    picks = sorted({next(i for i, t in enumerate(strings) if m in t) for m in marks} | {0, 700, 1500, 2100})
    for i in picks:
        with open(os.path.join(out, "text_%04d" % i), "wb") as f:
            f.write(b"\0" + strings[i].encode("utf-8")[:2000])
    merges = "#version: 0.2\nt h\nth e</w>\ni n\nin g</w>\nc a\nca t</w>\nÃ ©\n"
    with open(os.path.join(out, "merges_plain"), "wb") as f:
        f.write(b"\1" + merges.encode("utf-8"))
    with open(os.path.join(out, "merges_crlf"), "wb") as f:
        f.write(b"\1" + merges.replace("\n", "\r\n").encode("utf-8"))
    with open(os.path.join(out, "merges_gz"), "wb") as f:
        f.write(b"\1" + gzip.compress(merges.encode("utf-8"), mtime=0))
    base = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(base + [b + "</w>" for b in base] + ["th", "the</w>", "<|startoftext|>",
                                                                               "<|endoftext|>"])}
    with open(os.path.join(out, "hf_small"), "wb") as f:
        f.write(b"\2" + json.dumps(vocab, ensure_ascii=False).encode("utf-8") + b"\0#version: 0.2\nt h\nth e</w>\n")


def resolve(path):
    if os.path.isabs(path):
        return path
    base = os.environ.get("CMCR_TESTDATA") or os.environ.get("CMCR_TESTDATA_DEFAULT") or "."
    return os.path.join(base, path)


def read_strings(path):
    data = open(path, "rb").read()
    n = struct.unpack("<I", data[8:12])[0]
    out, o = [], 12
    for _ in range(n):
        k = struct.unpack("<I", data[o:o + 4])[0]
        out.append(data[o + 4:o + 4 + k].decode("utf-8"))
        o += 4 + k
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out")
    ap.add_argument("--vocab")
    ap.add_argument("--unicode", action="store_true")
    ap.add_argument("--text")
    ap.add_argument("--bench")
    ap.add_argument("--seeds")
    a = ap.parse_args()
    if a.seeds:
        write_seeds(a.seeds)
        return
    if a.out and a.unicode:
        unicode_tables(a.out)
        gen_html_entities.main_out(a.out)
        return
    path = resolve(a.vocab)
    if not os.path.exists(path):
        print("SKIP: CLIP vocabulary %s not found (set CMCR_TESTDATA or provide ../shared/data)" % path)
        sys.exit(77)
    tok = Tokenizer(path)
    if a.text is not None:
        print(tok.tokenize([a.text])[0][0].tolist())
        return
    if a.bench:
        strings = read_strings(a.bench)
        times = []
        for _ in range(5):
            t = Tokenizer(path)  # a fresh word cache each run, as the C calls have
            start = time.perf_counter()
            t.tokenize(strings)
            times.append(time.perf_counter() - start)
        print("python reference: %d strings, median %.3f s, %.0f prompts/s" % (
            len(strings), statistics.median(times), len(strings) / statistics.median(times)))
        return
    strings = test_strings()
    write_strings(os.path.join(a.out, "strings.bin"), strings)
    ids, counts = tok.tokenize(strings)
    np.save(os.path.join(a.out, "ids.npy"), ids)
    np.save(os.path.join(a.out, "ntokens.npy"), counts)
    write_hf(tok, os.path.join(a.out, "hf"))
    if Tokenizer(os.path.join(a.out, "hf")).tokenize(strings)[0].tolist() != ids.tolist():
        raise SystemExit("the HF-layout vocabulary tokenises differently")
    print("%d strings, %d longer than 75 tokens" % (len(strings), int((counts > 75).sum())))


if __name__ == "__main__":
    main()
