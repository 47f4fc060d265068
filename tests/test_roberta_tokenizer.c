/* test_roberta_tokenizer.c - the C RoBERTa tokenizer (src/text/roberta_bpe.c) against the
 * Python reference (scripts/clap_ref_tokenizer.py; fixtures roberta_tokens and
 * roberta_unicode): ids, attention lengths and token counts of the corpus strings from
 * roberta-base's files, every code point through the pre-tokenisation pattern, truncation,
 * a hand-made vocabulary, refusals of bad files and texts, and threads sharing a tokenizer. */
#include "bpe_testutil.h"
#include "text/bpe.h"
#include "text/roberta_bpe.h"

#include <utf8proc.h>

#define VOCAB_DIR "tokenizers/roberta-base"

/* ------------------------------------------------------------------ the reference corpus */

/* Every string of c through t equals the reference (ids, attention length, count); returns
 * the mismatches. Without counts the encoder may stop early: the ids must not change. */
static size_t check_corpus(const roberta_bpe *t, const corpus *c, bool print)
{
    size_t bad = 0;
    for (size_t i = 0; i < c->n; i++) {
        int32_t ids[CTX], ids2[CTX], real = -1;
        int64_t count = -1;
        char name[48];
        snprintf(name, sizeof name, "strings.bin:%zu", i);
        cmcr_status st = roberta_bpe_encode(t, c->s[i], c->len[i], name, ids, CTX, &real, &count);
        cmcr_status st2 = roberta_bpe_encode(t, c->s[i], c->len[i], name, ids2, CTX, NULL, NULL);
        if (st != CMCR_OK || st2 != CMCR_OK || memcmp(ids, c->ids + i * CTX, sizeof ids) != 0 ||
            memcmp(ids2, ids, sizeof ids) != 0 || count != c->counts[i] || real != c->nreal[i]) {
            if (print && bad < 5) corpus_show(c, i, ids, st, (long long)count);
            bad++;
        }
    }
    return bad;
}

/* roberta-base's tokenizer and the reference corpus, or the test skipped saying why. */
static roberta_bpe *corpus_and_vocab(corpus *c, const char *test)
{
    char *dir = data_path(VOCAB_DIR "/vocab.json");
    if (!dir) tu_skip("%s not in the test data", VOCAB_DIR);
    if (!corpus_load(c, "roberta_tokens", test)) {
        free(dir);
        skip();
    }
    assert_non_null(c->nreal);
    roberta_bpe *t = NULL;
    assert_int_equal(roberta_bpe_load(dir, &t), CMCR_OK);
    free(dir);
    return t;
}

static void test_reference(void **state)
{
    (void)state;
    corpus c;
    roberta_bpe *t = corpus_and_vocab(&c, __func__);
    assert_int_equal(roberta_bpe_vocab_size(t), 50265);
    assert_int_equal(roberta_bpe_pad_id(t), 1);
    double t0 = cmcr_now_seconds();
    size_t bad = check_corpus(t, &c, true), truncated = 0; /* each string twice: with and without counts */
    double secs = cmcr_now_seconds() - t0;
    for (size_t i = 0; i < c.n; i++) truncated += c.counts[i] > CTX - 2;
    printf("reference corpus: %zu strings (%zu longer than %d tokens), %zu differ; %.0f encodes/s\n", c.n, truncated,
           CTX - 2, bad, 2.0 * (double)c.n / secs);
    assert_int_equal(bad, 0);
    /* The folder form gives the same tokenizer. */
    char *dir = data_path(VOCAB_DIR);
    roberta_bpe *f = NULL;
    assert_int_equal(roberta_bpe_load(dir, &f), CMCR_OK);
    assert_int_equal(check_corpus(f, &c, true), 0);
    roberta_bpe_free(f);
    free(dir);
    roberta_bpe_free(t);
    corpus_free(&c);
}

/* ------------------------------------------------------------------ known ids, truncation */

static roberta_bpe *real_vocab(void)
{
    char *dir = data_path(VOCAB_DIR);
    if (!dir) return NULL;
    roberta_bpe *t = NULL;
    assert_int_equal(roberta_bpe_load(dir, &t), CMCR_OK);
    free(dir);
    return t;
}

/* The ids of s (context 77) are want[0..n) and then <pad>; the attention length is n. */
static void expect_ids(const roberta_bpe *t, const char *s, const int32_t *want, int n)
{
    int32_t ids[CTX], real = 0;
    assert_int_equal(roberta_bpe_encode(t, s, strlen(s), "s", ids, CTX, &real, NULL), CMCR_OK);
    assert_memory_equal(ids, want, (size_t)n * sizeof *want);
    for (int k = n; k < CTX; k++) assert_int_equal(ids[k], 1);
    assert_int_equal(real, n);
}

static void test_known_ids(void **state)
{
    (void)state;
    roberta_bpe *t = real_vocab();
    if (!t) tu_skip("%s not in the test data", VOCAB_DIR);
    /* From the RobertaTokenizer docstring of Hugging Face's transformers. */
    expect_ids(t, "Hello world", (const int32_t[]){0, 31414, 232, 2}, 4);
    expect_ids(t, " Hello world", (const int32_t[]){0, 20920, 232, 2}, 4);
    /* <mask> absorbs the space before it; other special tokens keep theirs. */
    expect_ids(t, "a <mask> b", (const int32_t[]){0, 102, 50264, 741, 2}, 5);
    expect_ids(t, "a<mask>b", (const int32_t[]){0, 102, 50264, 428, 2}, 5);
    expect_ids(t, "<pad></s>", (const int32_t[]){0, 1, 2, 2}, 4);
    expect_ids(t, "a dog barks <mask> loudly", (const int32_t[]){0, 102, 2335, 2003, 2258, 50264, 24120, 2}, 8);
    expect_ids(t, "", (const int32_t[]){0, 2}, 2);
    roberta_bpe_free(t);
}

static void test_truncation(void **state)
{
    (void)state;
    roberta_bpe *t = real_vocab();
    if (!t) tu_skip("%s not in the test data", VOCAB_DIR);
    const char *s = "a dog barks <mask> loudly";
    int32_t full[CTX], ids[CTX + 1], real;
    int64_t n = 0;
    assert_int_equal(roberta_bpe_encode(t, s, strlen(s), "s", full, CTX, &real, &n), CMCR_OK);
    assert_int_equal(n, 6); /* a Ġdog Ġbark s <mask> Ġloudly (scripts/clap_ref_tokenizer.py --text) */
    assert_int_equal(real, 8);
    for (int32_t ctx = 2; ctx <= 9; ctx++) {
        memset(ids, 0x55, sizeof ids);
        int64_t m = -1;
        assert_int_equal(roberta_bpe_encode(t, s, strlen(s), "s", ids, ctx, &real, &m), CMCR_OK);
        assert_int_equal(m, 6); /* counted before truncation */
        int kept = ctx - 2 < 6 ? ctx - 2 : 6;
        assert_int_equal(real, kept + 2);
        assert_memory_equal(ids, full, (size_t)(1 + kept) * sizeof *ids);
        assert_int_equal(ids[1 + kept], 2);
        for (int k = 2 + kept; k < ctx; k++) assert_int_equal(ids[k], 1);
        assert_int_equal(ids[ctx], 0x55555555); /* nothing written past the context */
    }
    char longs[1200] = "";
    for (int k = 0; k < 200; k++) strcat(longs, " dog");
    assert_int_equal(roberta_bpe_encode(t, longs, strlen(longs), "s", ids, CTX, &real, &n), CMCR_OK);
    assert_int_equal(n, 200);
    assert_int_equal(real, CTX);
    assert_int_equal(ids[0], 0);
    for (int k = 1; k < CTX - 1; k++) assert_int_equal(ids[k], ids[1]);
    assert_int_equal(ids[CTX - 1], 2);
    roberta_bpe_free(t);
}

/* ------------------------------------------------------------------ a small vocabulary */

/* A small vocabulary in dir: <s> <pad> </s> <unk>, the 256 byte symbols, "Ġt" "he" "Ġthe",
 * `extra` (JSON entries after a comma, ids from next_id on), <mask> last; `omit` (a token) is
 * left out and the ids after it close up. merges.txt holds `merges`. Returns the next id. */
static int32_t write_vocab(const char *dir, const char *omit, const char *extra, const char *merges)
{
    char path[600];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    const char *fixed[] = {"<s>", "<pad>", "</s>", "<unk>"};
    int32_t id = 0;
    fprintf(f, "{");
    for (int k = 0; k < 4 + 256 + 3; k++) {
        char u[8] = "";
        const char *tok = u;
        if (k < 4) tok = fixed[k];
        else if (k < 260) u[bpe_byte_char(k - 4, u)] = '\0';
        else tok = (const char *[]){"\xc4\xa0t", "he", "\xc4\xa0the"}[k - 260];
        if (omit && strcmp(tok, omit) == 0) continue;
        bool esc = strcmp(tok, "\"") == 0 || strcmp(tok, "\\") == 0;
        fprintf(f, "%s\"%s%s\": %d", id ? ", " : "", esc ? "\\" : "", tok, id);
        id++;
    }
    if (extra) fprintf(f, "%s", extra);
    if (!omit || strcmp(omit, "<mask>") != 0) fprintf(f, ", \"<mask>\": %d", id + (extra ? 1 : 0));
    fprintf(f, "}");
    fclose(f);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_text(path, merges);
    return id;
}

static void expect_small(const roberta_bpe *t, const char *s, const int32_t *want, int n)
{
    int32_t ids[12], real;
    assert_int_equal(roberta_bpe_encode(t, s, strlen(s), "s", ids, 12, &real, NULL), CMCR_OK);
    assert_int_equal(real, n + 2);
    assert_int_equal(ids[0], 0);
    assert_memory_equal(ids + 1, want, (size_t)n * sizeof *want);
    assert_int_equal(ids[n + 1], 2);
}

static void test_small_vocab(void **state)
{
    (void)state;
    /* bytes_to_unicode's symbols: printable bytes are themselves, ' ' is U+0120, '\n' U+010A */
    char u[4];
    assert_int_equal(bpe_byte_char(' ', u), 2);
    assert_memory_equal(u, "\xc4\xa0", 2);
    assert_int_equal(bpe_byte_char('\n', u), 2);
    assert_memory_equal(u, "\xc4\x8a", 2);
    assert_int_equal(bpe_byte_char('t', u), 1);

    char *dir = tu_path("small");
    assert_int_equal(mkdir(dir, 0777), 0);
    const char *merges = "#version: 0.2\n\xc4\xa0 t\nh e\n\xc4\xa0t he\n";
    write_vocab(dir, NULL, NULL, merges);
    roberta_bpe *t = NULL;
    assert_int_equal(roberta_bpe_load(dir, &t), CMCR_OK);
    assert_int_equal(roberta_bpe_vocab_size(t), 264);
    int32_t T = 4 + 't', Z = 4 + 'z', A = 4 + 'a', SP = 4 + ' '; /* write_vocab lists the bytes in byte order */
    expect_small(t, "the", (const int32_t[]){T, 261}, 2);
    expect_small(t, " the", (const int32_t[]){262}, 1);
    expect_small(t, "a <mask> the", (const int32_t[]){A, 263, 262}, 3);
    expect_small(t, "a <s> the", (const int32_t[]){A, SP, 0, 262}, 4);
    expect_small(t, "z\xc3\xa9", (const int32_t[]){Z, 4 + 0xc3, 4 + 0xa9}, 3);
    roberta_bpe_free(t);

    /* A byte symbol missing from vocab.json gives <unk>. */
    write_vocab(dir, "z", NULL, merges);
    assert_int_equal(roberta_bpe_load(dir, &t), CMCR_OK);
    expect_small(t, "za", (const int32_t[]){3, 4 + 'a'}, 2);
    roberta_bpe_free(t);

    /* As HF reads merges.txt, the text after the last newline is not a merge; CRLF is fine. */
    write_vocab(dir, NULL, NULL, "#version: 0.2\r\n\xc4\xa0 t\r\nh e\r\n\xc4\xa0t he");
    assert_int_equal(roberta_bpe_load(dir, &t), CMCR_OK);
    expect_small(t, " the", (const int32_t[]){260, 261}, 2);
    roberta_bpe_free(t);
    /* A repeated merge keeps its last rank: "h e" after "Ġt h" wins over it. */
    write_vocab(dir, NULL, ", \"\xc4\xa0th\": 263",
                "#version: 0.2\n\xc4\xa0 t\nh e\n\xc4\xa0t h\nh e\n\xc4\xa0t he\n");
    assert_int_equal(roberta_bpe_load(dir, &t), CMCR_OK);
    expect_small(t, " the", (const int32_t[]){263, 4 + 'e'}, 2);
    roberta_bpe_free(t);
    free(dir);
}

/* ------------------------------------------------------------------ refusals */

static void expect_load_fail(const char *path, cmcr_status want, const char *file, const char *needle)
{
    roberta_bpe *t = (roberta_bpe *)&t;
    assert_int_equal(roberta_bpe_load(path, &t), want);
    assert_null(t);
    expect_message(file, needle);
}

static void test_refuse_files(void **state)
{
    (void)state;
    char *dir = tu_path("bad");
    assert_int_equal(mkdir(dir, 0777), 0);
    char json[600], merges[600];
    snprintf(json, sizeof json, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    const char *ok = "#version: 0.2\n\xc4\xa0 t\n";
    write_text(merges, ok);
    write_text(json, "{\"<s>\": 0, ");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "not valid JSON");
    write_text(json, "[0, 1]");
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "expected a JSON object");
    write_vocab(dir, NULL, ", \"zz\": 1.5", ok);
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "token 'zz': id 1.5 is not one of");
    write_vocab(dir, NULL, ", \"zz\": \"7\"", ok);
    expect_load_fail(json, CMCR_EFORMAT, "vocab.json", "token 'zz': the id is not a number");
    write_vocab(dir, NULL, ", \"zz\": 5", ok);
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "token 'zz': id 5 is not one of 0..264, each used once");
    write_vocab(dir, NULL, ", \"he\": 263", ok);
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "token 'he' appears twice");
    write_vocab(dir, "<mask>", NULL, ok);
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "the special token '<mask>' is missing");
    write_vocab(dir, "<unk>", NULL, ok);
    expect_load_fail(dir, CMCR_EFORMAT, "vocab.json", "the special token '<unk>' is missing");

    write_vocab(dir, NULL, NULL, "\xc4\xa0 t\nh e\n");
    expect_load_fail(dir, CMCR_EFORMAT, "merges.txt", "line 1: expected the '#version: ...' header");
    write_vocab(dir, NULL, NULL, "#version: 0.2\n\xc4\xa0 t\nhe\nh e\n");
    expect_load_fail(dir, CMCR_EFORMAT, "merges.txt", "line 3: expected two symbols separated by a space, got 'he'");
    write_vocab(dir, NULL, NULL, "#version: 0.2\n\xc4\xa0 t\nh e x\n");
    expect_load_fail(dir, CMCR_EFORMAT, "merges.txt", "line 3: expected two symbols");
    write_vocab(dir, NULL, NULL, "#version: 0.2\n\xc4\xa0 t\n\nh e\n");
    expect_load_fail(dir, CMCR_EFORMAT, "merges.txt", "line 3: expected two symbols");
    write_vocab(dir, NULL, NULL, "#version: 0.2\nh e\nq u\n");
    expect_load_fail(dir, CMCR_EFORMAT, "merges.txt", "line 3: token 'qu' is not in the vocabulary");
    write_vocab(dir, NULL, NULL, "#version: 0.2\nhx t\n");
    expect_load_fail(dir, CMCR_EFORMAT, "merges.txt", "line 2: token 'hx' is not in the vocabulary");
    write_vocab(dir, NULL, NULL, "#version: 0.2\nh e\n\xff\xfe t\n");
    expect_load_fail(dir, CMCR_EFORMAT, "merges.txt", "line 3: invalid UTF-8");

    remove(merges);
    expect_load_fail(json, CMCR_EIO, "merges.txt", "No such file");
    char *none = tu_path("nothing.txt");
    expect_load_fail(none, CMCR_EINVAL, "nothing.txt", "expected a folder with vocab.json and merges.txt");
    free(none);
    assert_int_equal(roberta_bpe_load_memory("{", 1, "mem.json", "", 0, "mem.txt", &(roberta_bpe *){NULL}), CMCR_EFORMAT);
    expect_message("mem.json", "not valid JSON");
    free(dir);
}

static void test_refuse_texts(void **state)
{
    (void)state;
    char *dir = tu_path("texts");
    assert_int_equal(mkdir(dir, 0777), 0);
    write_vocab(dir, NULL, NULL, "#version: 0.2\n\xc4\xa0 t\nh e\n\xc4\xa0t he\n");
    roberta_bpe *t = NULL;
    assert_int_equal(roberta_bpe_load(dir, &t), CMCR_OK);
    static const char *bad[] = {"a\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok \xe2\x82", "\x80",
                                "<mask>\xf8\x88\x80\x80\x80", "\xe0\x80\xaf"};
    int32_t ids[8], real;
    int64_t n;
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        memset(ids, 0x55, sizeof ids);
        real = 9, n = 9;
        assert_int_equal(roberta_bpe_encode(t, bad[k], strlen(bad[k]), "prompts.txt:12", ids, 8, &real, &n), CMCR_EVALUE);
        expect_message("prompts.txt:12", "invalid UTF-8");
        for (int i = 0; i < 8; i++) assert_int_equal(ids[i], 1);
        assert_int_equal(real, 0);
        assert_int_equal(n, 0);
    }
    char *big = malloc(ROBERTA_BPE_MAX_TEXT + 1);
    memset(big, ' ', ROBERTA_BPE_MAX_TEXT + 1);
    assert_int_equal(roberta_bpe_encode(t, big, ROBERTA_BPE_MAX_TEXT + 1, "big.txt:1", ids, 8, &real, NULL), CMCR_ENOMEM);
    expect_message("big.txt:1", "longer than the tokenizer's limit");
    /* At the limit, in bounded time: one run of spaces before a word and before <mask>, one
     * word of 1 MiB, <mask> after every space, and alternating spaces and letters. */
    double t0 = cmcr_now_seconds();
    memcpy(big + ROBERTA_BPE_MAX_TEXT - 7, "x<mask>", 7);
    assert_int_equal(roberta_bpe_encode(t, big, ROBERTA_BPE_MAX_TEXT, "big", ids, 8, &real, &n), CMCR_OK);
    assert_int_equal(n, (int64_t)ROBERTA_BPE_MAX_TEXT - 8 + 3); /* a space each (no merge) but the last, " x", <mask> */
    memset(big, 'q', ROBERTA_BPE_MAX_TEXT);
    assert_int_equal(roberta_bpe_encode(t, big, ROBERTA_BPE_MAX_TEXT, "big", ids, 8, &real, &n), CMCR_OK);
    assert_int_equal(n, (int64_t)ROBERTA_BPE_MAX_TEXT);
    size_t k = 0;
    for (; k + 7 <= ROBERTA_BPE_MAX_TEXT; k += 7) memcpy(big + k, " <mask>", 7);
    assert_int_equal(roberta_bpe_encode(t, big, k, "big", ids, 8, &real, &n), CMCR_OK);
    assert_int_equal(n, (int64_t)k / 7);
    for (k = 0; k < ROBERTA_BPE_MAX_TEXT; k++) big[k] = k % 2 ? 'q' : ' ';
    assert_int_equal(roberta_bpe_encode(t, big, ROBERTA_BPE_MAX_TEXT, "big", ids, 8, &real, &n), CMCR_OK);
    assert_int_equal(n, (int64_t)ROBERTA_BPE_MAX_TEXT);
    printf("four 1 MiB texts: %.3f s\n", cmcr_now_seconds() - t0);
    assert_true(cmcr_now_seconds() - t0 < 20);
    free(big);
    assert_int_equal(roberta_bpe_encode(t, "a", 1, "arg", ids, 1, NULL, NULL), CMCR_EINVAL);
    expect_message("arg", "context of at least 2");
    assert_int_equal(roberta_bpe_encode(NULL, "a", 1, "arg", ids, 8, NULL, NULL), CMCR_EINVAL);
    assert_int_equal(roberta_bpe_encode(t, NULL, 1, "arg", ids, 8, NULL, NULL), CMCR_EINVAL);
    assert_int_equal(roberta_bpe_encode(t, NULL, 0, "arg", ids, 8, &real, NULL), CMCR_OK);
    assert_int_equal(real, 2);
    roberta_bpe_free(t);
    free(dir);
}

/* ------------------------------------------------------------------ threads */

/* check_corpus for corpus_threads. */
static size_t check_any(const void *t, const corpus *c, bool print) { return check_corpus(t, c, print); }

static void test_threads(void **state)
{
    (void)state;
    corpus c;
    roberta_bpe *t = corpus_and_vocab(&c, __func__);
    corpus_threads(check_any, t, &c);
    roberta_bpe_free(t);
    corpus_free(&c);
}

/* ------------------------------------------------------------------ every code point */

/* Whether the pattern's matches over s[0..n) end at want[0..count) (and tile s). */
static bool same_split(const pcre2_code *re, const char *s, size_t n, const unsigned char *want, int count)
{
    text_words w;
    assert_int_equal(text_words_begin(&w, re, s, n), CMCR_OK);
    size_t a, b, prev = 0;
    int k = 0, rc;
    bool same = true;
    while ((rc = text_words_next(&w, "probe", &a, &b)) == 1) {
        if (k >= count || a != prev || b != want[k]) same = false;
        prev = b;
        k++;
    }
    assert_int_equal(rc, 0);
    text_words_end(&w);
    return same && k == count;
}

/* s = parts joined, each "%c" replaced by ch (n bytes); returns the length. */
static size_t build(char *s, const char *fmt, const char *ch, size_t n)
{
    size_t k = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f == '%') memcpy(s + k, ch, n), k += n;
        else s[k++] = *f;
    }
    return k;
}

static void test_unicode_split(void **state)
{
    (void)state;
    char *path = fixture("roberta_unicode", "splits.bin"), *ppath = fixture("roberta_unicode", "pairs.bin");
    if (!path || !ppath) tu_skip("fixture roberta_unicode absent (no Python reference)");
    size_t n, pn;
    unsigned char *rec = tu_read_file(path, &n), *pairs = tu_read_file(ppath, &pn);
    pcre2_code *re = NULL;
    assert_int_equal(text_compile(roberta_bpe_word_pattern, 0, &re), CMCR_OK);
    size_t o = 0, bad = 0, bad_unassigned = 0;
    for (int32_t c = 0; c < 0x110000; c++) {
        if (c >= 0xd800 && c <= 0xdfff) continue;
        assert_true(o + 2 <= n);
        bool unassigned = rec[o];
        int count = rec[o + 1];
        char ch[4], s[64];
        size_t chn = (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)ch);
        size_t len = build(s, "a%1%.% %  %\n%%", ch, chn); /* clap_ref_tokenizer.probe() */
        if (!same_split(re, s, len, rec + o + 2, count)) {
            if (unassigned) bad_unassigned++;
            else if (++bad <= 10) printf("U+%04X: split differs from the reference\n", c);
        }
        o += 2 + (size_t)count;
    }
    assert_int_equal(o, n);
    /* Pairs c1 c2 " " c2 c1 of the reference's PAIR_CHARS, in its order. */
    static const char pair_chars[] = "aZ1.' \t\n\r\x0b\x0c\x1c\xc2\x85\xc2\xa0\xe1\x9a\x80\xe1\xa0\x8e\xe2\x80\x80"
                                     "\xe2\x80\xa8\xe3\x80\x80\xe2\x80\x8b\xc2\xad\xcc\x81\xc3\xa9\xe4\xb8\xad"
                                     "\xf0\x9f\x98\x80\xd9\xa0\xe2\x85\xa0\x00\x7f!-s";
    size_t starts[64], ns = 0, pos = 0, total = sizeof pair_chars - 1;
    while (pos < total) {
        int32_t cp;
        starts[ns++] = pos;
        pos += text_decode(pair_chars, total, pos, &cp);
    }
    starts[ns] = total;
    size_t po = 0, bad_pairs = 0;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < ns; j++) {
            const char *a = pair_chars + starts[i], *b = pair_chars + starts[j];
            size_t an = starts[i + 1] - starts[i], bn = starts[j + 1] - starts[j], len = 0;
            char s[32];
            memcpy(s + len, a, an), len += an;
            memcpy(s + len, b, bn), len += bn;
            s[len++] = ' ';
            memcpy(s + len, b, bn), len += bn;
            memcpy(s + len, a, an), len += an;
            assert_true(po + 2 <= pn);
            int count = pairs[po + 1];
            if (!same_split(re, s, len, pairs + po + 2, count) && ++bad_pairs <= 10)
                printf("pair %zu,%zu: split differs from the reference\n", i, j);
            po += 2 + (size_t)count;
        }
    assert_int_equal(po, pn);
    printf("pre-tokenisation: %zu code points differ among those assigned in the reference's Unicode, %zu among "
           "the others (newer Unicode in the regex module than in PCRE2); %zu of %zu pairs differ\n",
           bad, bad_unassigned, bad_pairs, ns * ns);
    assert_int_equal(bad, 0);
    assert_int_equal(bad_pairs, 0);
    pcre2_code_free(re);
    free(rec), free(pairs), free(path), free(ppath);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),    cmocka_unit_test(test_known_ids),    cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_small_vocab),  cmocka_unit_test(test_refuse_files), cmocka_unit_test(test_refuse_texts),
        cmocka_unit_test(test_threads),      cmocka_unit_test(test_unicode_split),
    };
    return tu_run_group(tests);
}
