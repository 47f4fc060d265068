/* test_clip_tokenizer.c - the C CLIP tokenizer (src/text/) against the Python reference
 * (scripts/clip_ref_tokenizer.py, fixtures clip_tokens and clip_unicode): ids of >= 2000
 * strings from both vocabulary forms, every code point through the word split and the
 * clean-up, the generated HTML table, truncation, refusals of bad texts and bad vocabulary
 * files, and threads sharing one tokenizer. */
#include "bpe_testutil.h"
#include "text/clip_bpe.h"
#include "text/clip_text.h"

#include <utf8proc.h>
#include <zlib.h>

#define VOCAB_REL "tokenizers/clip/bpe_simple_vocab_16e6.txt.gz"

static char *vocab_path(void) { return data_path(VOCAB_REL); }

/* Every string of c through t equals the reference (ids and counts); returns mismatches. */
static size_t check_corpus(const clip_bpe *t, const corpus *c, bool print)
{
    size_t bad = 0;
    for (size_t i = 0; i < c->n; i++) {
        int32_t ids[CTX];
        int64_t count = -1;
        char name[48];
        snprintf(name, sizeof name, "strings.bin:%zu", i);
        cmcr_status st = clip_bpe_encode(t, c->s[i], c->len[i], name, ids, CTX, &count);
        if (st != CMCR_OK || memcmp(ids, c->ids + i * CTX, sizeof ids) != 0 || count != c->counts[i]) {
            if (print && bad < 5) corpus_show(c, i, ids, st, (long long)count);
            bad++;
        }
    }
    return bad;
}

/* ------------------------------------------------------------------ the reference corpus */

/* The reference corpus and OpenAI's vocabulary from the test data (*vp: its path, for the
 * caller to free), or the test skipped, saying which is missing. */
static clip_bpe *corpus_and_vocab(corpus *c, char **vp, const char *test)
{
    *vp = vocab_path();
    if (!*vp) tu_skip("%s not in the test data", VOCAB_REL);
    if (!corpus_load(c, "clip_tokens", test)) {
        free(*vp);
        skip();
    }
    clip_bpe *t = NULL;
    assert_int_equal(clip_bpe_load(*vp, &t), CMCR_OK);
    return t;
}

static void test_reference_openai_gz(void **state)
{
    (void)state;
    corpus c;
    char *vp;
    clip_bpe *t = corpus_and_vocab(&c, &vp, __func__);
    assert_int_equal(clip_bpe_vocab_size(t), 49408);
    assert_int_equal(check_corpus(t, &c, true), 0);
    /* Without a count the encoder may stop early: the ids must not change. */
    for (size_t i = 0; i < c.n; i++) {
        int32_t ids[CTX];
        assert_int_equal(clip_bpe_encode(t, c.s[i], c.len[i], "s", ids, CTX, NULL), CMCR_OK);
        assert_memory_equal(ids, c.ids + i * CTX, sizeof ids);
    }
    /* The uncompressed merge list is the same vocabulary. */
    char *plain = tu_path("bpe_simple_vocab_16e6.txt");
    assert_int_equal(tu_system("gzip -dc '%s' > '%s'", vp, plain), 0);
    clip_bpe *p = NULL;
    assert_int_equal(clip_bpe_load(plain, &p), CMCR_OK);
    assert_int_equal(clip_bpe_vocab_size(p), 49408);
    assert_int_equal(check_corpus(p, &c, true), 0);
    clip_bpe_free(p);
    free(plain);
    clip_bpe_free(t);
    corpus_free(&c);
    free(vp);
}

static void test_reference_hf(void **state)
{
    (void)state;
    corpus c;
    char *dir = fixture("clip_tokens", "hf"), *json = fixture("clip_tokens", "hf/vocab.json");
    if (!dir || !json || !corpus_load(&c, "clip_tokens", __func__)) {
        if (!dir || !json) tu_note_skip(__func__, "fixture clip_tokens/hf absent");
        free(dir), free(json);
        skip();
    }
    const char *paths[] = {dir, json};
    for (int k = 0; k < 2; k++) {
        clip_bpe *t = NULL;
        assert_int_equal(clip_bpe_load(paths[k], &t), CMCR_OK);
        assert_int_equal(clip_bpe_vocab_size(t), 49408);
        assert_int_equal(check_corpus(t, &c, true), 0);
        clip_bpe_free(t);
    }
    free(dir), free(json);
    corpus_free(&c);
}

/* ------------------------------------------------------------------ known ids, truncation */

static clip_bpe *real_vocab(void)
{
    char *vp = vocab_path();
    if (!vp) return NULL;
    clip_bpe *t = NULL;
    assert_int_equal(clip_bpe_load(vp, &t), CMCR_OK);
    free(vp);
    return t;
}

/* The ids of s (context 77) start with want[0..n) and are zero after it. */
static void expect_ids(const clip_bpe *t, const char *s, const int32_t *want, int n)
{
    int32_t ids[CTX];
    assert_int_equal(clip_bpe_encode(t, s, strlen(s), "s", ids, CTX, NULL), CMCR_OK);
    assert_memory_equal(ids, want, (size_t)n * sizeof *want);
    for (int k = n; k < CTX; k++) assert_int_equal(ids[k], 0);
}

static void test_known_ids(void **state)
{
    (void)state;
    clip_bpe *t = real_vocab();
    if (!t) tu_skip("%s not in the test data", VOCAB_REL);
    /* From OpenAI's clip.tokenize, and checked with scripts/clip_ref_tokenizer.py --text. */
    expect_ids(t, "a photo of a cat.", (const int32_t[]){49406, 320, 1125, 539, 320, 2368, 269, 49407}, 8);
    expect_ids(t, "DON'T I'M", (const int32_t[]){49406, 847, 713, 328, 880, 49407}, 6);
    expect_ids(t, "&amp;lt;b&amp;gt; \xc4\xb0stanbul", (const int32_t[]){49406, 283, 321, 285, 328, 16384, 11231, 49407}, 8);
    expect_ids(t, "<|endoftext|>a", (const int32_t[]){49406, 49407, 320, 49407}, 4);
    expect_ids(t, "", (const int32_t[]){49406, 49407}, 2);
    expect_ids(t, " \t\n\xe3\x80\x80", (const int32_t[]){49406, 49407}, 2);
    clip_bpe_free(t);
}

static void test_truncation(void **state)
{
    (void)state;
    clip_bpe *t = real_vocab();
    if (!t) tu_skip("%s not in the test data", VOCAB_REL);
    const char *s = "a photo of a cat.";
    int32_t full[CTX], ids[CTX];
    int64_t n = 0;
    assert_int_equal(clip_bpe_encode(t, s, strlen(s), "s", full, CTX, &n), CMCR_OK);
    assert_int_equal(n, 6);
    for (int32_t ctx = 2; ctx <= 9; ctx++) {
        memset(ids, 0x55, sizeof ids);
        int64_t m = -1;
        assert_int_equal(clip_bpe_encode(t, s, strlen(s), "s", ids, ctx, &m), CMCR_OK);
        assert_int_equal(m, 6); /* counted before truncation */
        int kept = ctx - 2 < 6 ? ctx - 2 : 6;
        assert_memory_equal(ids, full, (size_t)(1 + kept) * sizeof *ids);
        assert_int_equal(ids[1 + kept], 49407);
        for (int k = 2 + kept; k < ctx; k++) assert_int_equal(ids[k], 0);
        assert_int_equal(ids[ctx], 0x55555555); /* nothing written past the context */
    }
    /* 200 words: 75 kept, the last id is <|endoftext|>. */
    char longs[1200] = "";
    for (int k = 0; k < 200; k++) strcat(longs, "cat ");
    assert_int_equal(clip_bpe_encode(t, longs, strlen(longs), "s", ids, CTX, &n), CMCR_OK);
    assert_int_equal(n, 200);
    assert_int_equal(ids[0], 49406);
    for (int k = 1; k < CTX - 1; k++) assert_int_equal(ids[k], 2368);
    assert_int_equal(ids[CTX - 1], 49407);
    clip_bpe_free(t);
}

/* ------------------------------------------------------------------ a small vocabulary */

static void expect_load_fail(const char *path, cmcr_status want, const char *file, const char *needle)
{
    clip_bpe *t = (clip_bpe *)&t;
    assert_int_equal(clip_bpe_load(path, &t), want);
    assert_null(t);
    expect_message(file, needle);
}

static void test_small_openai_vocab(void **state)
{
    (void)state;
    /* Two merges: ids 0..511 bytes, 512 "th", 513 "the</w>", 514 and 515 the special tokens. */
    char *p = tu_path("small.txt");
    write_text(p, "#version: 0.2\nt h\nth e</w>\n");
    clip_bpe *t = NULL;
    assert_int_equal(clip_bpe_load(p, &t), CMCR_OK);
    assert_int_equal(clip_bpe_vocab_size(t), 516);
    int32_t ids[8];
    int64_t n;
    assert_int_equal(clip_bpe_encode(t, "The", 3, "s", ids, 8, &n), CMCR_OK);
    assert_memory_equal(ids, ((const int32_t[]){514, 513, 515, 0, 0, 0, 0, 0}), sizeof ids);
    /* "them": t h e m</w> -> th e m</w> ("the" only merges at the end of a word) */
    assert_int_equal(clip_bpe_encode(t, "them", 4, "s", ids, 8, &n), CMCR_OK);
    int32_t e = 'e' - '!', m_end = 256 + ('m' - '!');
    assert_memory_equal(ids, ((const int32_t[]){514, 512, e, m_end, 515, 0, 0, 0}), sizeof ids);
    clip_bpe_free(t);
    /* The same, gzip'd. */
    char *gz = tu_path("small.txt.gz");
    gzFile g = gzopen(gz, "wb");
    assert_non_null(g);
    const char *txt = "#version: 0.2\nt h\nth e</w>\n";
    assert_int_equal(gzwrite(g, txt, (unsigned)strlen(txt)), (int)strlen(txt));
    assert_int_equal(gzclose(g), Z_OK);
    assert_int_equal(clip_bpe_load(gz, &t), CMCR_OK);
    assert_int_equal(clip_bpe_vocab_size(t), 516);
    clip_bpe_free(t);
    free(p);
    free(gz);
}

static void test_refuse_merge_files(void **state)
{
    (void)state;
    char *p = tu_path("bad.txt");
    write_text(p, "#version: 0.2\nt h\nbad\nx y\n");
    expect_load_fail(p, CMCR_EFORMAT, "bad.txt", "line 3: expected two symbols");
    write_text(p, "#version: 0.2\nt h\na b c\n");
    expect_load_fail(p, CMCR_EFORMAT, "bad.txt", "line 3: expected two symbols");
    write_text(p, "#version: 0.2\nin g\n");
    expect_load_fail(p, CMCR_EFORMAT, "bad.txt", "line 2: symbol 'in' is neither a byte symbol nor made by an earlier merge");
    write_text(p, "#version: 0.2\nt h\n\xff\xfe h\n");
    expect_load_fail(p, CMCR_EFORMAT, "bad.txt", "line 3: invalid UTF-8");
    write_text(p, "");
    expect_load_fail(p, CMCR_EFORMAT, "bad.txt", "empty");
    char *missing = tu_path("missing.txt.gz");
    expect_load_fail(missing, CMCR_EIO, "missing.txt.gz", "No such file");
    free(missing);

    /* A gzip'd list, damaged: a flipped byte in the deflate data, then cut short. */
    char *good = tu_path("m.txt.gz");
    gzFile g = gzopen(good, "wb9");
    for (int k = 0; k < 2000; k++) gzprintf(g, "%s\n", k == 0 ? "#version: 0.2" : "t h");
    assert_int_equal(gzclose(g), Z_OK);
    size_t n;
    unsigned char *data = tu_read_file(good, &n);
    clip_bpe *t = NULL;
    assert_int_equal(clip_bpe_load(good, &t), CMCR_OK);
    clip_bpe_free(t);
    char *bad = tu_path("corrupt.txt.gz");
    data[n / 2] ^= 0x5a;
    tu_write_file(bad, data, n);
    expect_load_fail(bad, CMCR_EFORMAT, "corrupt.txt.gz", "corrupt gzip data");
    data[n / 2] ^= 0x5a;
    char *cut = tu_path("truncated.txt.gz");
    tu_write_file(cut, data, n - 12);
    expect_load_fail(cut, CMCR_EFORMAT, "truncated.txt.gz", "truncated gzip data");
    tu_write_file(cut, data, 10);
    expect_load_fail(cut, CMCR_EFORMAT, "truncated.txt.gz", "truncated gzip data");
    free(data), free(good), free(bad), free(cut), free(p);
}

/* bytes_to_unicode's character for byte b, as UTF-8 (test's own copy of the rule). */
static void byte_char(int b, char out[3])
{
    bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    int cp = b;
    if (!printable) {
        int n = 0;
        for (int k = 0; k < b; k++)
            if (!((k >= '!' && k <= '~') || (k >= 0xa1 && k <= 0xac) || k >= 0xae)) n++;
        cp = 256 + n;
    }
    int len = utf8proc_encode_char(cp, (utf8proc_uint8_t *)out);
    out[len] = 0;
}

/* A small Hugging Face vocabulary in dir: the 512 base symbols, "th", "the</w>", the special
 * tokens, and `extra` (a JSON fragment) appended; merges.txt holds `merges`. */
static void write_hf_vocab(const char *dir, const char *extra, const char *merges, bool specials)
{
    char path[512];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{");
    int id = 0;
    for (int w = 0; w < 2; w++)
        for (int b = 0; b < 256; b++) {
            char u[3];
            byte_char(b, u);
            fprintf(f, "\"%s%s%s\": %d, ", strcmp(u, "\"") == 0 ? "\\" : strcmp(u, "\\") == 0 ? "\\" : "", u,
                    w ? "</w>" : "", id++);
        }
    if (specials)
        fprintf(f, "\"th\": %d, \"the</w>\": %d, \"<|startoftext|>\": %d, \"<|endoftext|>\": %d%s}", id, id + 1,
                id + 2, id + 3, extra);
    else
        fprintf(f, "\"th\": %d, \"the</w>\": %d, \"<|startoftext|>\": %d}", id, id + 1, id + 2);
    fclose(f);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_text(path, merges);
}

static void write_hf(const char *dir, const char *extra, const char *merges) { write_hf_vocab(dir, extra, merges, true); }

static void test_small_hf_vocab(void **state)
{
    (void)state;
    char *dir = tu_path("hf");
    assert_int_equal(mkdir(dir, 0777), 0);
    write_hf(dir, "", "#version: 0.2\nt h\nth e</w>\n");
    clip_bpe *t = NULL;
    assert_int_equal(clip_bpe_load(dir, &t), CMCR_OK);
    assert_int_equal(clip_bpe_vocab_size(t), 516);
    int32_t ids[4];
    assert_int_equal(clip_bpe_encode(t, "the", 3, "s", ids, 4, NULL), CMCR_OK);
    /* ids in vocab.json are in byte order, not bytes_to_unicode's: 't' is byte 116 */
    assert_memory_equal(ids, ((const int32_t[]){514, 513, 515, 0}), sizeof ids);
    clip_bpe_free(t);
    char json[600];
    snprintf(json, sizeof json, "%s/vocab.json", dir);

    write_hf(dir, "", "#version: 0.2\nt h\nth x</w>\n");
    expect_load_fail(dir, CMCR_EFORMAT, "merges.txt", "line 3: token 'thx</w>' is not in the vocabulary");
    write_hf(dir, "", "#version: 0.2\nt h\nbad\n");
    expect_load_fail(json, CMCR_EFORMAT, "merges.txt", "line 3: expected two symbols");
    write_hf(dir, "", "t h\nth e</w>\n");
    expect_load_fail(dir, CMCR_EFORMAT, "merges.txt", "line 1: expected the '#version: ...' header");
    write_hf(dir, ", \"th\": 3", "#version: 0.2\n");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "token 'th' appears twice");
    write_hf(dir, ", \"zz\": 99999", "#version: 0.2\n");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "token 'zz': id 99999 is not one of 0..516");
    write_hf(dir, ", \"zz\": 5", "#version: 0.2\n");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "token 'zz': id 5 is not one of 0..516, each used once");
    write_hf(dir, ", \"zz\": 516.5", "#version: 0.2\n");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "token 'zz': id 516.5");
    write_hf(dir, ", \"zz\": \"7\"", "#version: 0.2\n");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "token 'zz': the id is not a number");
    write_hf_vocab(dir, "", "#version: 0.2\n", false);
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "the special token '<|endoftext|>' is missing");
    write_text(json, "{\"a\": 0, ");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "not valid JSON");
    write_text(json, "[1, 2]");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "expected a JSON object");
    write_text(json, "{\"a\": 0, \"<|startoftext|>\": 1, \"<|endoftext|>\": 2}");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "the byte symbol '!' is missing");
    snprintf(json, sizeof json, "%s/merges.txt", dir);
    remove(json);
    snprintf(json, sizeof json, "%s/vocab.json", dir);
    expect_load_fail(json, CMCR_EIO, "merges.txt", "No such file");
    free(dir);
}

/* ------------------------------------------------------------------ refused texts */

static void test_refuse_texts(void **state)
{
    (void)state;
    char *p = tu_path("tiny.txt");
    write_text(p, "#version: 0.2\nt h\n");
    clip_bpe *t = NULL;
    assert_int_equal(clip_bpe_load(p, &t), CMCR_OK);
    static const char *bad[] = {"a\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok \xe2\x82", "\x80",
                                "\xf8\x88\x80\x80\x80", "\xe0\x80\xaf"};
    int32_t ids[8];
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        memset(ids, 0x55, sizeof ids);
        int64_t n = 9;
        assert_int_equal(clip_bpe_encode(t, bad[k], strlen(bad[k]), "prompts.txt:12", ids, 8, &n), CMCR_EVALUE);
        expect_message("prompts.txt:12", "invalid UTF-8");
        for (int i = 0; i < 8; i++) assert_int_equal(ids[i], 0);
        assert_int_equal(n, 0);
    }
    /* Longer than the limit: refused before any work. */
    char *big = malloc(CLIP_BPE_MAX_TEXT + 1);
    memset(big, 'a', CLIP_BPE_MAX_TEXT + 1);
    assert_int_equal(clip_bpe_encode(t, big, CLIP_BPE_MAX_TEXT + 1, "big.txt:1", ids, 8, NULL), CMCR_ENOMEM);
    expect_message("big.txt:1", "longer than the tokenizer's limit");
    /* At the limit: one word of 1 MiB, and 512 Ki words, in bounded time. */
    double t0 = cmcr_now_seconds();
    int64_t n = 0;
    assert_int_equal(clip_bpe_encode(t, big, CLIP_BPE_MAX_TEXT, "big", ids, 8, &n), CMCR_OK);
    assert_int_equal(n, (int64_t)CLIP_BPE_MAX_TEXT); /* no merge applies to "aa...": one token a byte */
    for (size_t k = 1; k < CLIP_BPE_MAX_TEXT; k += 2) big[k] = ' ';
    assert_int_equal(clip_bpe_encode(t, big, CLIP_BPE_MAX_TEXT, "big", ids, 8, &n), CMCR_OK);
    assert_int_equal(n, (int64_t)CLIP_BPE_MAX_TEXT / 2);
    /* Worst cases of the clean-up: capital sigmas between long runs of case-ignorable marks
     * (the final-sigma rule looks both ways), and '&' before 32-letter names that match no
     * entity (each tries every prefix). */
    size_t k = 0;
    while (k + 64 < CLIP_BPE_MAX_TEXT) {
        memcpy(big + k, "\xce\xa3", 2), k += 2;
        for (int r = 0; r < 20; r++) memcpy(big + k, "\xcc\x81", 2), k += 2;
    }
    assert_int_equal(clip_bpe_encode(t, big, k, "big", ids, 8, &n), CMCR_OK);
    for (k = 0; k + 34 < CLIP_BPE_MAX_TEXT; k += 34) memcpy(big + k, "&abcdefghijklmnopqrstuvwxyzabcdef;", 34);
    assert_int_equal(clip_bpe_encode(t, big, k, "big", ids, 8, &n), CMCR_OK);
    printf("four 1 MiB texts: %.3f s\n", cmcr_now_seconds() - t0);
    assert_true(cmcr_now_seconds() - t0 < 20);
    free(big);
    /* Bad arguments. */
    assert_int_equal(clip_bpe_encode(t, "a", 1, "arg", ids, 1, NULL), CMCR_EINVAL);
    expect_message("arg", "context of at least 2");
    assert_int_equal(clip_bpe_encode(t, NULL, 1, "arg", ids, 8, NULL), CMCR_EINVAL);
    assert_int_equal(clip_bpe_encode(t, NULL, 0, "arg", ids, 8, NULL), CMCR_OK);
    clip_bpe_free(t);
    free(p);
}

/* ------------------------------------------------------------------ threads */

/* check_corpus for corpus_threads. */
static size_t check_any(const void *t, const corpus *c, bool print) { return check_corpus(t, c, print); }

static void test_threads(void **state)
{
    (void)state;
    corpus c;
    char *vp;
    clip_bpe *t = corpus_and_vocab(&c, &vp, __func__);
    corpus_threads(check_any, t, &c);
    clip_bpe_free(t);
    corpus_free(&c);
    free(vp);
}

/* ------------------------------------------------------------------ every code point */

/* Words as (text, length): c may be U+0000. */
typedef struct piece {
    char s[16];
    size_t n;
} piece;

static piece cat3(const char *a, const char *ch, size_t chn, const char *b)
{
    piece p;
    size_t an = strlen(a), bn = strlen(b);
    memcpy(p.s, a, an);
    memcpy(p.s + an, ch, chn);
    memcpy(p.s + an + chn, b, bn);
    p.n = an + chn + bn;
    return p;
}

/* The words of "a{c}a 1{c}1 .{c}." for each class of c, as the fixture derives them. */
static int expected_words(char cls, const char *ch, size_t n, piece out[9])
{
    piece c = cat3("", ch, n, ""), A = cat3("a", "", 0, ""), one = cat3("1", "", 0, ""), dot = cat3(".", "", 0, "");
    int k = 0;
    switch (cls) {
    case 'L':
        out[k++] = cat3("a", ch, n, "a"), out[k++] = one, out[k++] = c, out[k++] = one;
        out[k++] = dot, out[k++] = c, out[k++] = dot;
        break;
    case 'N':
        out[k++] = A, out[k++] = c, out[k++] = A, out[k++] = one, out[k++] = c, out[k++] = one;
        out[k++] = dot, out[k++] = c, out[k++] = dot;
        break;
    case 'O':
        out[k++] = A, out[k++] = c, out[k++] = A, out[k++] = one, out[k++] = c, out[k++] = one;
        out[k++] = cat3(".", ch, n, ".");
        break;
    default: /* whitespace, or left out of every word */
        out[k++] = A, out[k++] = A, out[k++] = one, out[k++] = one, out[k++] = dot, out[k++] = dot;
    }
    return k;
}

static void test_unicode_word_split(void **state)
{
    (void)state;
    char *path = fixture("clip_unicode", "classes.bin");
    if (!path) tu_skip("fixture clip_unicode absent (no Python reference)");
    size_t n;
    unsigned char *cls = tu_read_file(path, &n);
    assert_int_equal(n, 0x110000);
    clip_text tx;
    assert_int_equal(clip_text_init(&tx), CMCR_OK);
    size_t bad_assigned = 0, bad_unassigned = 0;
    for (int32_t c = 0; c < 0x110000; c++) {
        if (cls[c] == 'X' || c == '.' || c == '1') continue;
        char ch[4];
        size_t chn = (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)ch);
        piece probe = cat3("a", ch, chn, "a "), p2 = cat3("1", ch, chn, "1 "), p3 = cat3(".", ch, chn, ".");
        char s[48];
        memcpy(s, probe.s, probe.n);
        memcpy(s + probe.n, p2.s, p2.n);
        memcpy(s + probe.n + p2.n, p3.s, p3.n);
        size_t len = probe.n + p2.n + p3.n;
        piece want[9];
        int nw = expected_words((char)(cls[c] & ~0x20), ch, chn, want);
        text_words w;
        assert_int_equal(text_words_begin(&w, tx.words, s, len), CMCR_OK);
        size_t a, b;
        int k = 0, rc;
        bool same = true;
        while ((rc = text_words_next(&w, "probe", &a, &b)) == 1) {
            if (k >= nw || b - a != want[k].n || memcmp(s + a, want[k].s, want[k].n) != 0) same = false;
            k++;
        }
        assert_int_equal(rc, 0);
        text_words_end(&w);
        if (!same || k != nw) {
            if (cls[c] >= 'a') bad_unassigned++;
            else if (++bad_assigned <= 10) printf("U+%04X: split differs from the reference (class %c)\n", c, cls[c]);
        }
    }
    printf("word split: %zu code points differ among those assigned in the reference's Unicode, %zu among the "
           "others (newer Unicode in the regex module than in PCRE2)\n", bad_assigned, bad_unassigned);
    assert_int_equal(bad_assigned, 0);
    clip_text_release(&tx);
    free(cls);
    free(path);
}

static void test_unicode_clean(void **state)
{
    (void)state;
    char *path = fixture("clip_unicode", "lower.bin"), *cpath = fixture("clip_unicode", "classes.bin");
    if (!path || !cpath) tu_skip("fixture clip_unicode absent (no Python reference)");
    size_t n, nc;
    unsigned char *low = tu_read_file(path, &n), *cls = tu_read_file(cpath, &nc);
    clip_text tx;
    assert_int_equal(clip_text_init(&tx), CMCR_OK);
    text_buf out = {0};
    size_t o = 0, bad = 0, bad_unassigned = 0;
    for (int32_t c = 0; c < 0x110000; c++) {
        assert_true(o < n);
        size_t len = low[o];
        const unsigned char *want = low + o + 1;
        o += 1 + len;
        if (cls[c] == 'X') continue;
        char s[8] = "A";
        int k = utf8proc_encode_char(c, (utf8proc_uint8_t *)s + 1);
        s[1 + k] = 'B';
        assert_true(clip_text_clean(&tx, s, (size_t)k + 2, &out));
        if (out.n != len || memcmp(out.p, want, len) != 0) {
            if (cls[c] >= 'a') bad_unassigned++;
            else if (++bad <= 10) printf("U+%04X: clean gives %zu bytes, the reference %zu\n", c, out.n, len);
        }
    }
    assert_int_equal(o, n);
    printf("clean-up: %zu code points differ among assigned ones, %zu among the others\n", bad, bad_unassigned);
    assert_int_equal(bad, 0);
    text_buf_free(&out);
    clip_text_release(&tx);
    free(low), free(cls), free(path), free(cpath);
}

/* ------------------------------------------------------------------ html */

static void test_html_table_generated(void **state)
{
    (void)state;
    char *made = fixture("clip_unicode", "html_entities.h");
    if (!made) tu_skip("fixture clip_unicode absent (no Python reference)");
    const char *src = getenv("CMCR_SOURCE_DIR");
    assert_non_null(src);
    char committed[1024];
    snprintf(committed, sizeof committed, "%s/src/text/html_entities.h", src);
    size_t a, b;
    unsigned char *x = tu_read_file(made, &a), *y = tu_read_file(committed, &b);
    if (a != b || memcmp(x, y, a) != 0)
        fail_msg("src/text/html_entities.h differs from what scripts/gen_html_entities.py writes today: rerun it");
    free(x), free(y), free(made);
}

static void expect_unescape(const char *in, const char *want)
{
    text_buf out = {0};
    assert_true(text_html_unescape(&out, in, strlen(in)));
    assert_int_equal(out.n, strlen(want));
    assert_memory_equal(out.p, want, out.n);
    text_buf_free(&out);
}

static void test_html_unescape(void **state)
{
    (void)state;
    /* Python 3.11's html.unescape gives these. */
    expect_unescape("&notit;", "\xc2\xacit;");
    expect_unescape("&amp;lt;", "&lt;");
    expect_unescape("&ampx", "&x");
    expect_unescape("&AEligx", "\xc3\x86x");
    expect_unescape("&#150;", "\xe2\x80\x93");
    expect_unescape("&#x110000;", "\xef\xbf\xbd");
    expect_unescape("&#99999999999999999999999;", "\xef\xbf\xbd");
    expect_unescape("&#1;a", "a");
    expect_unescape("&aacute&aacute;", "\xc3\xa1\xc3\xa1");
    expect_unescape("&x\xc3\xa9;", "&x\xc3\xa9;");
    expect_unescape("&lt\r", "<\r");
    expect_unescape("&#; &#x; &", "&#; &#x; &");
    expect_unescape("&#65&#x42;&#X43", "ABC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_openai_gz), cmocka_unit_test(test_reference_hf),
        cmocka_unit_test(test_known_ids),           cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_small_openai_vocab),  cmocka_unit_test(test_small_hf_vocab),
        cmocka_unit_test(test_refuse_merge_files),  cmocka_unit_test(test_refuse_texts),
        cmocka_unit_test(test_threads),             cmocka_unit_test(test_unicode_word_split),
        cmocka_unit_test(test_unicode_clean),       cmocka_unit_test(test_html_table_generated),
        cmocka_unit_test(test_html_unescape),
    };
    return tu_run_group(tests);
}
