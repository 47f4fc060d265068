#!/usr/bin/env python3
"""Reference for the C RoBERTa tokenizer (src/text/roberta_bpe.c): Hugging Face's slow
RobertaTokenizer as LAION-CLAP calls it, tokenizer(text, padding="max_length",
truncation=True, max_length=77), written from its rules (transformers is not installed):
the added-tokens trie splits the special tokens' text out (<mask> has lstrip=True), GPT-2's
pattern with the `regex` module, bytes_to_unicode, BPE by merge rank, unknown symbols to
<unk>, <s> ... </s>, truncation to 75 tokens, <pad> to 77.

    clap_ref_tokenizer.py --out DIR --unicode        the pattern's split of every code point
    clap_ref_tokenizer.py --out DIR --vocab PATH     test strings and their ids
    clap_ref_tokenizer.py --vocab PATH --text "a dog barks"   prints ids and attention length
    clap_ref_tokenizer.py --seeds DIR                seeds for fuzz/fuzz_roberta_tokenizer.c

The test strings are clip_ref_tokenizer.py's, plus RoBERTa's own cases. A relative --vocab
is taken from $CMCR_TESTDATA (else $CMCR_TESTDATA_DEFAULT); when it is absent the fixture is
skipped (exit 77)."""
import argparse
import json
import os
import random
import struct
import sys
import unicodedata

import numpy as np
import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_ref_tokenizer as clip_ref  # noqa: E402  (its string corpus, file formats and bytes_to_unicode)

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
LSTRIP = {"<mask>"}  # AddedToken(lstrip=True); the others strip nothing
CONTEXT = 77


def trie_split(text, words):
    """transformers' Trie.split: cut text at the added tokens, the longest match among those
    starting earliest, scanning left to right (the algorithm of tokenization_utils.Trie)."""
    root = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = 1
    states, offsets, skip = {}, [0], 0
    for cur, ch in enumerate(text):
        if skip and cur < skip:
            continue
        reset, drop = False, []
        for start, node in list(states.items()):
            if "" in node:
                # a complete match: look ahead among the partial matches starting no later for
                # the longest, as HF's loop does (start and end updated as it goes)
                for ls, lnode in list(states.items()):
                    if ls > start:
                        break
                    idx = end = cur + 1 if ls < start else cur
                    if "" in lnode:
                        start, end, skip = ls, idx, idx
                    while idx < len(text) and text[idx] in lnode:
                        lnode = lnode[text[idx]]
                        idx += 1
                        if "" in lnode:
                            start, end, skip = ls, idx, idx
                offsets += [start, end]
                reset = True
                break
            if ch in node:
                states[start] = node[ch]
            else:
                drop.append(start)
        if reset:
            states = {}
        else:
            for start in drop:
                del states[start]
        if cur >= skip and ch in root:
            states[cur] = root[ch]
    for start, node in states.items():
        if "" in node:
            offsets += [start, len(text)]
            break
    offsets.append(len(text))
    out, start = [], 0
    for end in offsets:
        if start < end:
            out.append(text[start:end])
            start = end
    return out


class Roberta:
    def __init__(self, path):
        vocab_json = os.path.join(path, "vocab.json") if os.path.isdir(path) else path
        with open(vocab_json, encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(os.path.join(os.path.dirname(vocab_json), "merges.txt"), encoding="utf-8") as f:
            merges = f.read().split("\n")[1:-1]
        self.bpe_ranks = dict(zip([tuple(m.split()) for m in merges], range(len(merges))))
        self.byte_encoder = clip_ref.bytes_to_unicode()
        self.ids = {s: self.encoder[s] for s in SPECIALS}

    def bpe(self, token):
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            new, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == bigram:
                    new.append(word[i] + word[i + 1])
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        return list(word)

    def _tokenize(self, text):
        out = []
        for token in PATTERN.findall(text):
            out += self.bpe("".join(self.byte_encoder[b] for b in token.encode("utf-8")))
        return out

    def tokenize(self, text):
        """PreTrainedTokenizer.tokenize: the trie split, lstrip of <mask>'s left neighbour,
        empty pieces dropped, the rest through _tokenize."""
        pieces = trie_split(text, SPECIALS)
        for i, p in enumerate(pieces):
            if p in self.ids and p in LSTRIP and i > 0 and pieces[i - 1]:
                pieces[i - 1] = pieces[i - 1].rstrip()
        tokens = []
        for p in pieces:
            if p in self.ids:
                tokens.append(p)
            elif p:
                tokens += self._tokenize(p)
        return tokens

    def encode(self, text, context=CONTEXT):
        """input_ids and attention_mask.sum() of tokenizer(text, padding="max_length",
        truncation=True, max_length=context), and the token count before truncation."""
        unk = self.ids["<unk>"]
        ids = [self.ids[t] if t in self.ids else self.encoder.get(t, unk) for t in self.tokenize(text)]
        n = len(ids)
        ids = [self.ids["<s>"]] + ids[:context - 2] + [self.ids["</s>"]]
        real = len(ids)
        return ids + [self.ids["<pad>"]] * (context - real), real, n


def roberta_strings():
    """RoBERTa's own cases: whitespace around words, contractions (case-sensitive here), digits,
    punctuation, control and zero-width characters, the special tokens' text, long texts."""
    r = random.Random(20261216)
    s = ["Hello world", " Hello world", "Hello world ", "Hello   world", "  Hello  ", "\tHello\tworld\t",
         "a\nb", "a\n\nb", "a \n b", "a\r\nb", "line one\nline two\n", " \n ", "\n", "\t", "   ", "a  ", "  a",
         "a    b    c", "a \t\n\u3000 b", "x\u00a0y", "x\u2009\u2009y", "x\u3000\u3000", "\u3000x",
         "it's", "IT'S", "It'S", "he's", "they're", "THEY'RE", "I've", "I'm", "we'll", "she'd", "WE'LL", "SHE'D",
         "'s", " 's", "''s", "'''", "don't", "DON'T", "o'clock", "rock'n'roll", "'S'T'RE'VE'M'LL'D",
         "'s's's", "y'all'd've", "x's y's", "9's", "!'s", " 'll", "'", "' s", "’s curly",
         "1234567890", "3.14159", "1,000,000", "x1y2z3", " 42", "42 ", "007", "2026-12-03", "1e-9", "١٢٣ ٤٥",
         "½ ⅓ ¾", "x²", "Ⅻ", "!!!", "?!?!", "...", " ---", "a--b", "(a)[b]{c}", "!!! ???", "#$%^&*",
         "a.b.c", "e.g., i.e.,", "“quoted”", "«guillemets»", "—em—dash—", "C'est la vie", "naïve café",
         "Crème brûlée", "e\u0301", "A\u030a", "Ελληνικά", "Русский текст", "中文文本测试", "日本語のテキスト",
         "한국어", "ภาษาไทย", "עברית", "العربية", "हिन्दी", "🎵 music 🎶", "dog 🐕 barking 🔊",
         "👩‍👩‍👧‍👦", "🇯🇵", "a\u200bb", "\u200d", "\u200c\u200d", "\ufeffx", "a\x00b", "\x07bell", "\x1b[31mred\x1b[0m",
         "a\u2028b", "a\u2029b", "soft\u00adhyphen", "\x85", "a\x1cb", "a\x1c", "\x1f\x1e", "a\u180eb", "\u202eRTL",
         "\U000E0041tag", "\U0010FFFD", "\uFFFD", "",
         "<s>", "</s>", "<pad>", "<unk>", "<mask>", "a <mask> b", "a<mask>b", "a   <mask>", "a\t\n<mask>",
         "<mask> a", " <mask>", "  <mask>  ", "<s><mask></s>", "x <s> y", "x</s>y", "<<s>>", "</s", "<mask",
         "<MASK>", "< mask>", "<mask >", "a\u3000<mask>", "a\x1c<mask>", "a\u00a0<mask>", "a\u2028<mask>",
         "a\u180e<mask>", "a\u200b<mask>", "<pad> <pad>", " <s> ", "<unk>x", "a <mask><mask>", "a <mask> <mask> b",
         "The sound of a <mask>.", "<s>a dog</s>", "<s></s><pad><unk><mask>", "<<mask>>", "<mask<mask>>",
         "<s<s>>", "<</s>/s>", "x <pad>", "x\n<pad>\n", "a <unk> b", "\t<mask>\t", "<mask>" * 80,
         "word <mask> " * 40, "<pad>" * 100]
    words = ["a", "dog", "barks", "loudly", "while", "rain", "falls", "on", "the", "roof", "engine", "revving",
             "birds", "chirping", "music", "playing", "in", "background"]
    for n in [10, 73, 74, 75, 76, 77, 120, 400]:
        s.append(" ".join(r.choice(words) for _ in range(n)))
        s.append("".join(r.choice("ab1.!é中😀 ") for _ in range(n * 2)))
    base = clip_ref.test_strings()
    for i in range(300):  # special tokens' text at random places of the shared corpus
        t = r.choice(base)
        k = r.randint(0, len(t))
        s.append(t[:k] + r.choice(["", " ", "  ", "\n"]) + r.choice(SPECIALS) + r.choice(["", " "]) + t[k:])
    return s


def all_strings():
    return clip_ref.test_strings() + roberta_strings()


def probe(ch):
    """The string whose split tests code point ch: after a letter, a digit, punctuation, a
    space, two spaces, a newline, and doubled."""
    return "a%s1%s.%s %s  %s\n%s%s" % (ch, ch, ch, ch, ch, ch, ch)


def splits(text):
    """Byte offsets of the ends of PATTERN's matches (they tile the text)."""
    ends, pos = [], 0
    for w in PATTERN.findall(text):
        pos += len(w.encode("utf-8"))
        ends.append(pos)
    if pos != len(text.encode("utf-8")):
        raise SystemExit("the pattern does not cover %r" % text)
    return ends


PAIR_CHARS = "aZ1.' \t\n\r\x0b\x0c\x1c\x85\xa0\u1680\u180e\u2000\u2028\u3000\u200b\u00ad\u0301é中😀\u0660\u2160\x00\x7f!-s"


def unicode_tables(out):
    """splits.bin: per code point (surrogates skipped) a flag byte (1: unassigned in this
    Python's Unicode), a count byte, then the ends of probe(c)'s matches; pairs.bin: the same
    for the string c1 + c2 + " " + c2 + c1 over PAIR_CHARS x PAIR_CHARS."""
    with open(os.path.join(out, "splits.bin"), "wb") as f:
        for c in range(0x110000):
            if 0xD800 <= c <= 0xDFFF:
                continue
            ends = splits(probe(chr(c)))
            f.write(bytes([unicodedata.category(chr(c)) == "Cn", len(ends)] + ends))
    with open(os.path.join(out, "pairs.bin"), "wb") as f:
        for a in PAIR_CHARS:
            for b in PAIR_CHARS:
                ends = splits(a + b + " " + b + a)
                f.write(bytes([0, len(ends)] + ends))
    with open(os.path.join(out, "versions.txt"), "w") as f:
        f.write("python %s unicodedata %s regex %s\n" % (sys.version.split()[0], unicodedata.unidata_version,
                                                            regex.__version__))


def write_seeds(out):
    """fuzz_roberta_tokenizer's seeds (first byte 0: a text for a small in-memory vocabulary;
    1: vocab.json NUL merges.txt NUL text), made by this script alone."""
    os.makedirs(out, exist_ok=True)
    strings = roberta_strings()
    for i in range(0, len(strings), 23):
        with open(os.path.join(out, "text_%04d" % i), "wb") as f:
            f.write(b"\0" + strings[i].encode("utf-8")[:2000])
    vocab = dict((t, i) for i, t in enumerate(SPECIALS[:4]))
    for b in clip_ref.bytes_to_unicode().values():
        vocab[b] = len(vocab)
    for t in ["Ġt", "he", "Ġthe", "<mask>"]:
        vocab[t] = len(vocab)
    merges = "#version: 0.2\nĠ t\nh e\nĠt he\n"
    with open(os.path.join(out, "files_small"), "wb") as f:
        f.write(b"\1" + json.dumps(vocab, ensure_ascii=False).encode("utf-8") + b"\0" + merges.encode("utf-8") +
                b"\0" + "the <mask> he<s>".encode("utf-8"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out")
    ap.add_argument("--vocab")
    ap.add_argument("--unicode", action="store_true")
    ap.add_argument("--text")
    ap.add_argument("--seeds")
    a = ap.parse_args()
    if a.seeds:
        write_seeds(a.seeds)
        return
    if a.out and a.unicode:
        unicode_tables(a.out)
        return
    path = clip_ref.resolve(a.vocab)
    if not os.path.exists(path):
        print("SKIP: RoBERTa vocabulary %s not found (set CMCR_TESTDATA or provide ../shared/data)" % path)
        sys.exit(77)
    tok = Roberta(path)
    if a.text is not None:
        ids, real, n = tok.encode(a.text)
        print(ids[:real], "attention length", real, "tokens", n)
        return
    strings = all_strings()
    enc = [tok.encode(t) for t in strings]
    clip_ref.write_strings(os.path.join(a.out, "strings.bin"), strings)
    np.save(os.path.join(a.out, "ids.npy"), np.array([e[0] for e in enc], np.int32))
    np.save(os.path.join(a.out, "nreal.npy"), np.array([e[1] for e in enc], np.int32))
    np.save(os.path.join(a.out, "ntokens.npy"), np.array([e[2] for e in enc], np.int64))
    print("%d strings, %d longer than %d tokens" % (len(strings), sum(e[2] > CONTEXT - 2 for e in enc), CONTEXT - 2))


if __name__ == "__main__":
    main()
