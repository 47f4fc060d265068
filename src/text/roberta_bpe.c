/* roberta_bpe.c - Hugging Face's slow RobertaTokenizer (GPT-2's byte-level BPE with fairseq's
 * ids): the special tokens split out of the text as the added-tokens trie does, GPT-2's
 * pre-tokenisation pattern, BPE by merge rank, <s> ... </s> and padding. The vocabulary
 * readers, the merge table and BPE are bpe.c's. */
#include "text/roberta_bpe.h"
#include "text/bpe.h"

#include <stdlib.h>

/* The special tokens in the order of their fairseq ids. */
enum { SP_BOS, SP_PAD, SP_EOS, SP_UNK, SP_MASK, SP_COUNT };
static const char *const special_text[SP_COUNT] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};

/* GPT-2's pattern with the `regex` module's \s written as \p{White_Space} (PCRE2's own \s
 * adds U+180E); no IGNORECASE, so "'S" is not a contraction. (?!\S) becomes
 * (?!\P{White_Space}). tests/test_roberta_tokenizer.c compares every code point with Python. */
const char roberta_bpe_word_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\p{White_Space}\\p{L}\\p{N}]+|"
                                   "\\p{White_Space}+(?!\\P{White_Space})|\\p{White_Space}+";

struct roberta_bpe {
    pcre2_code *words;
    bpe_table merges;
    int32_t n_vocab;
    int32_t byte_id[256]; /* each byte's symbol, or -1 when vocab.json lacks it (<unk>) */
    int32_t special[SP_COUNT];
};

void roberta_bpe_free(roberta_bpe *t)
{
    if (!t) return;
    pcre2_code_free(t->words);
    bpe_table_free(&t->merges);
    free(t);
}

int32_t roberta_bpe_vocab_size(const roberta_bpe *t) { return t ? t->n_vocab : 0; }

int32_t roberta_bpe_pad_id(const roberta_bpe *t) { return t ? t->special[SP_PAD] : -1; }

/* ------------------------------------------------------------------ loading */

/* The special tokens' ids (required) and the byte symbols' (absent ones map to <unk>). */
static cmcr_status vocab_ids(roberta_bpe *t, const bpe_strmap *vocab, const char *name)
{
    for (int k = 0; k < SP_COUNT; k++) {
        t->special[k] = bpe_strmap_get(vocab, special_text[k], strlen(special_text[k]));
        if (t->special[k] < 0) return core_fail(CMCR_EFORMAT, "%s: the special token '%s' is missing", name, special_text[k]);
    }
    for (int b = 0; b < 256; b++) {
        char u[4];
        t->byte_id[b] = bpe_strmap_get(vocab, u, bpe_byte_char(b, u));
    }
    return CMCR_OK;
}

/* merges.txt as HF's RobertaTokenizer reads it: read().split("\n")[1:-1], the first line being
 * the "#version" header (checked here; Python skips it unread) and whatever follows the last
 * newline dropped. */
static cmcr_status read_merges(const char *text, size_t len, const char *name, bpe_line **ml, size_t *n)
{
    cmcr_status st = bpe_check_utf8(text, len, name);
    if (st == CMCR_OK) st = bpe_check_header(text, len, name);
    if (st != CMCR_OK) return st;
    while (len > 0 && text[len - 1] != '\n') len--;
    return bpe_parse_merges(text, len, name, len, ml, n);
}

cmcr_status roberta_bpe_load_memory(const char *vocab_text, size_t vocab_len, const char *vocab_name, const char *merges,
                                    size_t merges_len, const char *merges_name, roberta_bpe **out)
{
    *out = NULL;
    bpe_vocab vocab;
    cmcr_status st = bpe_vocab_parse(vocab_text, vocab_len, vocab_name, &vocab);
    if (st != CMCR_OK) return st;
    bpe_line *ml = NULL;
    size_t n = 0;
    roberta_bpe *t = calloc(1, sizeof *t);
    if (!t) st = core_fail(CMCR_ENOMEM, "%s: out of memory for the tokenizer", vocab_name);
    if (st == CMCR_OK) st = vocab_ids(t, &vocab.map, vocab_name);
    if (st == CMCR_OK) st = read_merges(merges, merges_len, merges_name, &ml, &n);
    if (st == CMCR_OK && !bpe_table_init(&t->merges, n)) st = core_fail(CMCR_ENOMEM, "%s: out of memory", merges_name);
    if (st == CMCR_OK) st = bpe_table_from_lines(&t->merges, &vocab.map, ml, n, merges_name);
    if (st == CMCR_OK) st = text_compile(roberta_bpe_word_pattern, 0, &t->words);
    if (st == CMCR_OK) t->n_vocab = vocab.n;
    bpe_vocab_free(&vocab);
    free(ml);
    if (st != CMCR_OK) roberta_bpe_free(t);
    else *out = t;
    return st;
}

cmcr_status roberta_bpe_load(const char *path, roberta_bpe **out)
{
    *out = NULL;
    if (!path || !*path) return core_fail(CMCR_EINVAL, "roberta_bpe_load: no vocabulary path given");
    bool is_hf;
    char *vp, *mp;
    cmcr_status st = bpe_hf_paths(path, &is_hf, &vp, &mp);
    if (st != CMCR_OK) return st;
    if (!is_hf)
        return core_fail(CMCR_EINVAL, "%s: expected a folder with vocab.json and merges.txt, or a vocab.json file", path);
    unsigned char *v = NULL, *m = NULL;
    size_t vn = 0, mn = 0;
    st = bpe_read_pair(vp, mp, ROBERTA_BPE_MAX_FILE, &v, &vn, &m, &mn);
    if (st == CMCR_OK) st = roberta_bpe_load_memory((const char *)v, vn, vp, (const char *)m, mn, mp, out);
    free(v), free(m), free(vp), free(mp);
    return st;
}

/* ------------------------------------------------------------------ encoding */

/* _tokenize() of one word of the pattern: its bytes as symbols through BPE; a symbol missing
 * from the vocabulary gives <unk>. */
static void roberta_word(const void *ctx, const unsigned char *w, int32_t n, bpe_scratch *s, bpe_out *o)
{
    const roberta_bpe *t = ctx;
    for (int32_t i = 0; i < n; i++) s->id[i] = t->byte_id[w[i]];
    bpe_apply(&t->merges, s, n);
    for (int32_t p = 0; p >= 0; p = s->next[p]) bpe_emit(o, s->id[p] >= 0 ? s->id[p] : t->special[SP_UNK]);
}

/* The special token starting at s[i], or -1. No special token is a prefix of another and
 * '<' only starts them, so the leftmost match is the one HF's trie finds. */
static int special_at(const char *s, size_t len, size_t i)
{
    if (s[i] != '<') return -1;
    for (int k = 0; k < SP_COUNT; k++) {
        size_t n = strlen(special_text[k]);
        if (len - i >= n && memcmp(s + i, special_text[k], n) == 0) return k;
    }
    return -1;
}

/* The end of s[0..len) once trailing str.isspace characters are removed (str.rstrip). */
static size_t rstrip_end(const char *s, size_t len)
{
    while (len > 0) {
        size_t i = len - 1;
        while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80) i--;
        int32_t cp;
        text_decode(s, len, i, &cp);
        if (!text_py_isspace(cp)) break;
        len = i;
    }
    return len;
}

/* tokenize(): the text cut at the special tokens (each its own id); <mask> is an AddedToken
 * with lstrip=True, so the piece before it loses its trailing whitespace; empty pieces give
 * nothing, the others go through _tokenize. */
static cmcr_status encode_text(const roberta_bpe *t, const char *s, size_t len, const char *name, bpe_out *o)
{
    bpe_scratch sc = {0};
    cmcr_status st = CMCR_OK;
    size_t start = 0;
    for (size_t i = 0; st == CMCR_OK && !bpe_out_full(o) && i <= len; i++) {
        int k = i < len ? special_at(s, len, i) : -1;
        if (k < 0 && i < len) continue;
        size_t end = k == SP_MASK ? start + rstrip_end(s + start, i - start) : i;
        if (end > start) st = bpe_encode_words(t->words, s + start, end - start, name, roberta_word, t, &sc, o);
        if (k < 0) break;
        bpe_emit(o, t->special[k]);
        start = i + strlen(special_text[k]);
        i = start - 1;
    }
    bpe_scratch_free(&sc);
    return st;
}

static void fill(int32_t *ids, int32_t n, int32_t v)
{
    for (int32_t i = 0; i < n; i++) ids[i] = v;
}

cmcr_status roberta_bpe_encode(const roberta_bpe *t, const char *text, size_t len, const char *name, int32_t *ids,
                               int32_t context, int32_t *n_real, int64_t *n_tokens)
{
    if (!name) name = "text";
    if (n_real) *n_real = 0;
    if (n_tokens) *n_tokens = 0;
    if (!t || !ids || context < 2 || (!text && len))
        return core_fail(CMCR_EINVAL, "%s: roberta_bpe_encode needs a tokenizer, ids and a context of at least 2", name);
    int32_t pad = t->special[SP_PAD];
    fill(ids, context, pad);
    if (!text) text = "";
    cmcr_status st = bpe_check_text(text, len, ROBERTA_BPE_MAX_TEXT, name);
    if (st != CMCR_OK) return st;
    bpe_out o = {ids, context - 2, 0, n_tokens != NULL};
    st = encode_text(t, text, len, name, &o);
    if (st != CMCR_OK) {
        fill(ids, context, pad);
        return st;
    }
    int32_t kept = (int32_t)(o.count < o.max ? o.count : o.max);
    ids[0] = t->special[SP_BOS];
    ids[1 + kept] = t->special[SP_EOS];
    if (n_real) *n_real = kept + 2;
    if (n_tokens) *n_tokens = o.count;
    return CMCR_OK;
}
