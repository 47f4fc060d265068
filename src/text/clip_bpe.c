/* clip_bpe.c - OpenAI CLIP's BPE tokenizer: the vocabulary loaders (OpenAI's merge list,
 * Hugging Face's vocab.json + merges.txt), </w> and clip.tokenize. The text clean-up is in
 * clip_text.c; the merge table, the file readers and BPE itself are shared with RoBERTa's
 * tokenizer (bpe.c). */
#include "text/clip_bpe.h"
#include "text/clip_text.h"
#include "runtime/file.h"

#include <stdlib.h>
#include <zlib.h>

struct clip_bpe {
    clip_text text;
    int32_t n_vocab, sot, eot;
    int32_t byte_id[256], byte_end_id[256]; /* each byte's symbol, and with </w> */
    bpe_table merges;
};

/* The 512 base symbols' texts (the byte's character, as bytes_to_unicode() orders them; ids
 * 256.. with "</w>") into arena, at off[i], len[i] bytes long; order[i] is the byte of id i. */
static bool base_texts(text_buf *arena, size_t off[512], size_t len[512], uint8_t order[256])
{
    bpe_byte_order(order);
    for (int i = 0; i < 512; i++) {
        char u[8];
        size_t k = bpe_byte_char(order[i % 256], u);
        if (i >= 256) memcpy(u + k, "</w>", 4), k += 4;
        off[i] = arena->n;
        len[i] = k;
        if (!text_buf_put(arena, u, k)) return false;
    }
    return true;
}

/* ------------------------------------------------------------------ building the tokenizer */

static cmcr_status bpe_new(size_t n_merges, clip_bpe **out)
{
    clip_bpe *t = calloc(1, sizeof *t);
    if (!t) return core_fail(CMCR_ENOMEM, "out of memory for the tokenizer");
    if (!bpe_table_init(&t->merges, n_merges)) {
        free(t);
        return core_fail(CMCR_ENOMEM, "out of memory for the tokenizer's merges");
    }
    cmcr_status st = clip_text_init(&t->text);
    if (st != CMCR_OK) {
        bpe_table_free(&t->merges);
        free(t);
        return st;
    }
    *out = t;
    return CMCR_OK;
}

void clip_bpe_free(clip_bpe *t)
{
    if (!t) return;
    clip_text_release(&t->text);
    bpe_table_free(&t->merges);
    free(t);
}

int32_t clip_bpe_vocab_size(const clip_bpe *t) { return t ? t->n_vocab : 0; }

/* OpenAI's vocabulary: the base symbols, one token per merge (its two symbols joined), the two
 * special tokens; a later id replaces an earlier one for the same text, as Python's dict
 * does. Each merge's symbols must exist before it. The joined texts go into vocab's arena,
 * reserved whole first so that the keys pointing into it stay put. */
static cmcr_status openai_vocab(clip_bpe *t, bpe_strmap *vocab, const bpe_line *ml, size_t n, const char *name)
{
    size_t off[512], blen[512], need = 0;
    uint8_t order[256];
    for (size_t r = 0; r < n; r++) need += ml[r].an + ml[r].bn;
    if (!base_texts(&vocab->arena, off, blen, order) || !text_buf_reserve(&vocab->arena, need))
        return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    for (int i = 0; i < 512; i++) {
        bpe_strmap_set(vocab, vocab->arena.p + off[i], blen[i], i);
        if (i < 256) t->byte_id[order[i]] = i;
        else t->byte_end_id[order[i - 256]] = i;
    }
    for (size_t r = 0; r < n; r++) {
        const bpe_line *m = &ml[r];
        bool a_ok = bpe_strmap_get(vocab, m->a, m->an) >= 0;
        if (!a_ok || bpe_strmap_get(vocab, m->b, m->bn) < 0) {
            char buf[200];
            return core_fail(CMCR_EFORMAT, "%s: line %zu: symbol '%s' is neither a byte symbol nor made by an earlier merge",
                             name, m->line, a_ok ? bpe_shown(buf, sizeof buf, m->b, m->bn) : bpe_shown(buf, sizeof buf, m->a, m->an));
        }
        char *ab = vocab->arena.p + vocab->arena.n;
        text_buf_put(&vocab->arena, m->a, m->an); /* reserved above: no reallocation */
        text_buf_put(&vocab->arena, m->b, m->bn);
        bpe_strmap_set(vocab, ab, m->an + m->bn, (int32_t)(512 + r));
    }
    t->sot = (int32_t)(512 + n);
    t->eot = t->sot + 1;
    t->n_vocab = t->eot + 1;
    bpe_strmap_set(vocab, "<|startoftext|>", 15, t->sot);
    bpe_strmap_set(vocab, "<|endoftext|>", 13, t->eot);
    return CMCR_OK;
}

/* OpenAI's merge list, as text: the first line is a header, the merges follow. */
static cmcr_status load_openai(const char *text, size_t len, const char *name, clip_bpe **out)
{
    bpe_line *ml = NULL;
    size_t n = 0;
    bpe_strmap vocab = {0};
    clip_bpe *t = NULL;
    cmcr_status st = bpe_check_utf8(text, len, name);
    if (st == CMCR_OK) st = bpe_parse_merges(text, len, name, CLIP_BPE_MERGES, &ml, &n);
    if (st == CMCR_OK && !bpe_strmap_init(&vocab, 512 + n + 2)) st = core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    if (st == CMCR_OK) st = bpe_new(n, &t);
    if (st == CMCR_OK) st = openai_vocab(t, &vocab, ml, n, name);
    if (st == CMCR_OK) st = bpe_table_from_lines(&t->merges, &vocab, ml, n, name);
    bpe_strmap_free(&vocab);
    free(ml);
    if (st != CMCR_OK) clip_bpe_free(t);
    else *out = t;
    return st;
}

/* gzip (one or more members) -> bytes, at most CLIP_BPE_MAX_FILE. */
static cmcr_status gunzip(const unsigned char *in, size_t len, const char *name, text_buf *out)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK) return core_fail(CMCR_ENOMEM, "%s: cannot start zlib", name);
    z.next_in = (unsigned char *)in;
    z.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
    cmcr_status st = CMCR_OK;
    while (st == CMCR_OK) {
        if (out->n > CLIP_BPE_MAX_FILE) {
            st = core_fail(CMCR_ENOMEM, "%s: inflates to more than %llu MiB", name,
                           (unsigned long long)(CLIP_BPE_MAX_FILE >> 20));
            break;
        }
        if (!text_buf_reserve(out, 1 << 16)) {
            st = core_fail(CMCR_ENOMEM, "%s: out of memory", name);
            break;
        }
        z.next_out = (unsigned char *)out->p + out->n;
        z.avail_out = (uInt)(out->cap - out->n > UINT32_MAX ? UINT32_MAX : out->cap - out->n);
        int rc = inflate(&z, Z_NO_FLUSH);
        out->n = (size_t)((char *)z.next_out - out->p);
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0) break;
            if (inflateReset(&z) != Z_OK) st = core_fail(CMCR_EFORMAT, "%s: bad gzip data after a member", name);
        } else if (rc == Z_BUF_ERROR && z.avail_in == 0) {
            st = core_fail(CMCR_EFORMAT, "%s: truncated gzip data (it ends after %zu bytes of text)", name, out->n);
        } else if (rc != Z_OK) {
            st = core_fail(CMCR_EFORMAT, "%s: corrupt gzip data: %s", name, z.msg ? z.msg : "inflate failed");
        }
    }
    inflateEnd(&z);
    return st;
}

cmcr_status clip_bpe_load_merges_memory(const void *data, size_t len, const char *name, clip_bpe **out)
{
    *out = NULL;
    const unsigned char *p = data;
    if (len == 0) return core_fail(CMCR_EFORMAT, "%s: file is empty", name);
    if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
        text_buf text = {0};
        cmcr_status st = gunzip(p, len, name, &text);
        if (st == CMCR_OK) st = load_openai(text.p ? text.p : "", text.n, name, out);
        text_buf_free(&text);
        return st;
    }
    return load_openai(data, len, name, out);
}

/* ------------------------------------------------------------------ Hugging Face's form */

/* Ids of the base symbols and of the special tokens, which vocab.json must have. */
static cmcr_status hf_base_ids(clip_bpe *t, const bpe_strmap *vocab, const char *name)
{
    size_t off[512], blen[512];
    uint8_t order[256];
    text_buf arena = {0};
    if (!base_texts(&arena, off, blen, order)) return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    cmcr_status st = CMCR_OK;
    char buf[64];
    for (int i = 0; i < 512 && st == CMCR_OK; i++) {
        int32_t id = bpe_strmap_get(vocab, arena.p + off[i], blen[i]);
        if (id < 0) st = core_fail(CMCR_EFORMAT, "%s: the byte symbol '%s' is missing", name, bpe_shown(buf, sizeof buf, arena.p + off[i], blen[i]));
        else if (i < 256) t->byte_id[order[i]] = id;
        else t->byte_end_id[order[i - 256]] = id;
    }
    text_buf_free(&arena);
    t->sot = bpe_strmap_get(vocab, "<|startoftext|>", 15);
    t->eot = bpe_strmap_get(vocab, "<|endoftext|>", 13);
    if (st == CMCR_OK && (t->sot < 0 || t->eot < 0))
        st = core_fail(CMCR_EFORMAT, "%s: the special token '%s' is missing", name, t->sot < 0 ? "<|startoftext|>" : "<|endoftext|>");
    return st;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n'; }

/* Hugging Face's CLIPTokenizer reads merges.txt as read().strip().split("\n")[1:48895]: the
 * first line is the "#version" header. */
static cmcr_status hf_merges(const char *text, size_t len, const char *name, bpe_line **ml, size_t *n)
{
    cmcr_status st = bpe_check_utf8(text, len, name);
    if (st != CMCR_OK) return st;
    size_t skip = 0;
    while (skip < len && is_space(text[skip])) skip++;
    while (len > skip && is_space(text[len - 1])) len--;
    st = bpe_check_header(text + skip, len - skip, name);
    if (st == CMCR_OK) st = bpe_parse_merges(text + skip, len - skip, name, CLIP_BPE_MERGES, ml, n);
    return st;
}

cmcr_status clip_bpe_load_hf_memory(const char *vocab_text, size_t vocab_len, const char *vocab_name, const char *merges,
                                    size_t merges_len, const char *merges_name, clip_bpe **out)
{
    *out = NULL;
    bpe_vocab vocab;
    bpe_line *ml = NULL;
    size_t n = 0;
    clip_bpe *t = NULL;
    cmcr_status st = bpe_vocab_parse(vocab_text, vocab_len, vocab_name, &vocab);
    if (st != CMCR_OK) return st;
    st = hf_merges(merges, merges_len, merges_name, &ml, &n);
    if (st == CMCR_OK) st = bpe_new(n, &t);
    if (st == CMCR_OK) st = hf_base_ids(t, &vocab.map, vocab_name);
    if (st == CMCR_OK) st = bpe_table_from_lines(&t->merges, &vocab.map, ml, n, merges_name);
    if (st == CMCR_OK) t->n_vocab = vocab.n;
    bpe_vocab_free(&vocab);
    free(ml);
    if (st != CMCR_OK) clip_bpe_free(t);
    else *out = t;
    return st;
}

/* ------------------------------------------------------------------ loading from files */

cmcr_status clip_bpe_load(const char *path, clip_bpe **out)
{
    *out = NULL;
    if (!path || !*path) return core_fail(CMCR_EINVAL, "clip_bpe_load: no vocabulary path given");
    bool is_hf;
    char *vp, *mp;
    unsigned char *data = NULL, *m = NULL;
    size_t n = 0, mn = 0;
    cmcr_status st = bpe_hf_paths(path, &is_hf, &vp, &mp);
    if (st == CMCR_OK && is_hf) {
        st = bpe_read_pair(vp, mp, CLIP_BPE_MAX_FILE, &data, &n, &m, &mn);
        if (st == CMCR_OK) st = clip_bpe_load_hf_memory((const char *)data, n, vp, (const char *)m, mn, mp, out);
    } else if (st == CMCR_OK) {
        st = file_read_all(path, CLIP_BPE_MAX_FILE, &data, &n);
        if (st == CMCR_OK) st = clip_bpe_load_merges_memory(data, n, path, out);
    }
    free(data), free(m), free(vp), free(mp);
    return st;
}

/* ------------------------------------------------------------------ BPE with </w> */

/* The word w[0..n) (bytes) as byte symbols, </w> on the last, through BPE (symbols left in s). */
static void bpe_word(const clip_bpe *t, bpe_scratch *s, const unsigned char *w, int32_t n)
{
    for (int32_t i = 0; i < n; i++) s->id[i] = i + 1 < n ? t->byte_id[w[i]] : t->byte_end_id[w[i]];
    bpe_apply(&t->merges, s, n);
}

/* ------------------------------------------------------------------ clip.tokenize */

/* One word of the cleaned text: a special token's text is its id (OpenAI's BPE cache holds
 * them), any other word goes through BPE with </w>. */
static void clip_word(const void *ctx, const unsigned char *w, int32_t n, bpe_scratch *s, bpe_out *o)
{
    const clip_bpe *t = ctx;
    if (n == 15 && memcmp(w, "<|startoftext|>", 15) == 0) bpe_emit(o, t->sot);
    else if (n == 13 && memcmp(w, "<|endoftext|>", 13) == 0) bpe_emit(o, t->eot);
    else {
        bpe_word(t, s, w, n);
        for (int32_t p = 0; p >= 0; p = s->next[p]) bpe_emit(o, s->id[p]);
    }
}

cmcr_status clip_bpe_encode(const clip_bpe *t, const char *text, size_t len, const char *name, int32_t *ids,
                            int32_t context, int64_t *n_tokens)
{
    if (!name) name = "text";
    if (n_tokens) *n_tokens = 0;
    if (!t || !ids || context < 2 || (!text && len))
        return core_fail(CMCR_EINVAL, "%s: clip_bpe_encode needs a tokenizer, ids and a context of at least 2", name);
    memset(ids, 0, (size_t)context * sizeof *ids);
    if (!text) text = "";
    cmcr_status st = bpe_check_text(text, len, CLIP_BPE_MAX_TEXT, name);
    if (st != CMCR_OK) return st;
    text_buf clean = {0};
    bpe_scratch sc = {0};
    bpe_out o = {ids, context - 2, 0, n_tokens != NULL};
    if (!clip_text_clean(&t->text, text, len, &clean)) st = core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    if (st == CMCR_OK) st = bpe_encode_words(t->text.words, clean.p ? clean.p : "", clean.n, name, clip_word, t, &sc, &o);
    text_buf_free(&clean);
    bpe_scratch_free(&sc);
    if (st != CMCR_OK) {
        memset(ids, 0, (size_t)context * sizeof *ids);
        return st;
    }
    ids[0] = t->sot;
    ids[o.count < o.max ? 1 + o.count : context - 1] = t->eot;
    if (n_tokens) *n_tokens = o.count;
    return CMCR_OK;
}
