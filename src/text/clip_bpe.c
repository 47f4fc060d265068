/* clip_bpe.c - OpenAI CLIP's BPE tokenizer: the vocabulary loaders (OpenAI's merge list,
 * Hugging Face's vocab.json + merges.txt), the merge table, BPE and clip.tokenize. The text
 * clean-up and word split are in clip_text.c. */
#include "text/clip_bpe.h"
#include "text/clip_text.h"
#include "runtime/file.h"

#include <cjson/cJSON.h>
#include <utf8proc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

/* A merge (pair of symbol ids) -> its rank and the id of the symbol it makes. Open addressing
 * on key = a << 32 | b; EMPTY marks a free slot (ids are below 2^31, so no key equals it). */
typedef struct merge_slot {
    uint64_t key;
    int32_t rank, id;
} merge_slot;
#define EMPTY UINT64_MAX

struct clip_bpe {
    clip_text text;
    int32_t n_vocab, sot, eot;
    int32_t byte_id[256], byte_end_id[256]; /* each byte's symbol, and with </w> */
    merge_slot *merges;
    size_t mask;
};

static size_t slot_of(uint64_t key, size_t mask) { return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & mask; }

/* The rank and result of merging a with b, or false when they do not merge. */
static bool merge_find(const clip_bpe *t, int32_t a, int32_t b, int32_t *rank, int32_t *id)
{
    uint64_t key = (uint64_t)a << 32 | (uint32_t)b;
    for (size_t i = slot_of(key, t->mask);; i = (i + 1) & t->mask) {
        if (t->merges[i].key == EMPTY) return false;
        if (t->merges[i].key == key) {
            *rank = t->merges[i].rank;
            *id = t->merges[i].id;
            return true;
        }
    }
}

/* A repeated pair keeps its last rank, as Python's dict(zip(merges, range(...))) does. */
static void merge_put(clip_bpe *t, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t key = (uint64_t)a << 32 | (uint32_t)b;
    size_t i = slot_of(key, t->mask);
    while (t->merges[i].key != EMPTY && t->merges[i].key != key) i = (i + 1) & t->mask;
    t->merges[i] = (merge_slot){key, rank, id};
}

/* ------------------------------------------------------------------ token strings -> ids */

/* The vocabulary while loading: token text -> id (open addressing; texts point into the
 * loaded files or into `arena`). */
typedef struct strmap {
    const char **key;
    size_t *len;
    int32_t *id;
    size_t mask;
    text_buf arena;
} strmap;

static bool strmap_init(strmap *m, size_t n)
{
    size_t cap = 64;
    while (cap < 2 * n) cap *= 2;
    *m = (strmap){.key = calloc(cap, sizeof *m->key), .len = calloc(cap, sizeof *m->len),
                  .id = calloc(cap, sizeof *m->id), .mask = cap - 1};
    return m->key && m->len && m->id;
}

static void strmap_free(strmap *m)
{
    free(m->key);
    free(m->len);
    free(m->id);
    text_buf_free(&m->arena);
}

static size_t strmap_slot(const strmap *m, const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask)
        if (!m->key[i] || (m->len[i] == n && memcmp(m->key[i], s, n) == 0)) return i;
}

static int32_t strmap_get(const strmap *m, const char *s, size_t n)
{
    size_t i = strmap_slot(m, s, n);
    return m->key[i] ? m->id[i] : -1;
}

/* Set s -> id (a later id replaces an earlier one, as in Python's dict); s must outlive m.
 * The table is sized for every entry up front. */
static void strmap_set(strmap *m, const char *s, size_t n, int32_t id)
{
    size_t i = strmap_slot(m, s, n);
    m->key[i] = s;
    m->len[i] = n;
    m->id[i] = id;
}

/* The bytes that bytes_to_unicode() maps to themselves: '!'..'~', 0xA1..0xAC, 0xAE..0xFF. */
static bool printable_byte(int b) { return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae; }

/* OpenAI's bytes_to_unicode(): printable bytes stand for themselves, the others for U+0100
 * onwards in byte order. order[i] is the byte of base id i (printable ones first, as
 * list(bytes_to_unicode().values()) orders them). The 512 base symbols' texts (the byte's
 * character; ids 256.. with "</w>") go into arena, at off[i], len[i] bytes long. */
static bool base_texts(text_buf *arena, size_t off[512], size_t len[512], uint8_t order[256])
{
    uint32_t cp[256];
    int n = 0, extra = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++)
            if (printable_byte(b) == (pass == 0)) {
                cp[b] = pass == 0 ? (uint32_t)b : 256u + (uint32_t)extra++;
                order[n++] = (uint8_t)b;
            }
    for (int i = 0; i < 512; i++) {
        utf8proc_uint8_t u[8];
        size_t k = (size_t)utf8proc_encode_char((utf8proc_int32_t)cp[order[i % 256]], u);
        if (i >= 256) memcpy(u + k, "</w>", 4), k += 4;
        off[i] = arena->n;
        len[i] = k;
        if (!text_buf_put(arena, u, k)) return false;
    }
    return true;
}

/* ------------------------------------------------------------------ merge lines */

typedef struct merge_line {
    const char *a, *b;
    size_t an, bn;
    size_t line; /* 1-based, for messages */
} merge_line;

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Split one line into its two symbols (str.split() on ASCII whitespace). */
static bool split_line(const char *s, size_t n, merge_line *m)
{
    const char *part[3];
    size_t len[3], k = 0, i = 0;
    while (i < n) {
        while (i < n && is_blank(s[i])) i++;
        if (i == n) break;
        size_t j = i;
        while (j < n && !is_blank(s[j])) j++;
        if (k == 2) return false;
        part[k] = s + i;
        len[k++] = j - i;
        i = j;
    }
    if (k != 2) return false;
    m->a = part[0], m->an = len[0], m->b = part[1], m->bn = len[1];
    return true;
}

static const char *shown(char *buf, size_t cap, const char *s, size_t n)
{
    char tmp[160];
    size_t k = n < sizeof tmp - 1 ? n : sizeof tmp - 1;
    memcpy(tmp, s, k);
    tmp[k] = '\0';
    return cmcr_printable(buf, cap, tmp);
}

/* Lines [first, first + max) of text (split at '\n'; a final newline adds no line) as merges;
 * *n gets their number. */
static cmcr_status parse_merges(const char *text, size_t len, const char *name, size_t first, merge_line **out, size_t *n)
{
    size_t lines = 1;
    for (const char *p = text; lines <= first + CLIP_BPE_MERGES && (p = memchr(p, '\n', len - (size_t)(p - text))); p++) lines++;
    *out = calloc(lines, sizeof **out);
    if (!*out) return core_fail(CMCR_ENOMEM, "%s: out of memory for the merges", name);
    *n = 0;
    size_t line = 0, i = 0;
    while (i < len && *n < CLIP_BPE_MERGES) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        if (line > first) {
            merge_line *m = &(*out)[*n];
            if (!split_line(text + i, end - i, m)) {
                char buf[200];
                return core_fail(CMCR_EFORMAT, "%s: line %zu: expected two symbols separated by a space, got '%s'", name,
                                 line, shown(buf, sizeof buf, text + i, end - i));
            }
            m->line = line;
            (*n)++;
        }
        i = end + 1;
    }
    return CMCR_OK;
}

/* ------------------------------------------------------------------ building the tokenizer */

static cmcr_status bpe_new(size_t n_merges, clip_bpe **out)
{
    clip_bpe *t = calloc(1, sizeof *t);
    if (!t) return core_fail(CMCR_ENOMEM, "out of memory for the tokenizer");
    size_t cap = 64;
    while (cap < 2 * n_merges) cap *= 2;
    t->merges = malloc(cap * sizeof *t->merges);
    if (!t->merges) {
        free(t);
        return core_fail(CMCR_ENOMEM, "out of memory for the tokenizer's merges");
    }
    for (size_t i = 0; i < cap; i++) t->merges[i].key = EMPTY;
    t->mask = cap - 1;
    cmcr_status st = clip_text_init(&t->text);
    if (st != CMCR_OK) {
        free(t->merges);
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
    free(t->merges);
    free(t);
}

int32_t clip_bpe_vocab_size(const clip_bpe *t) { return t ? t->n_vocab : 0; }

/* The pair table from the parsed merges and the final token ids of vocab. */
static cmcr_status add_merges(clip_bpe *t, const strmap *vocab, const merge_line *ml, size_t n, text_buf *cat,
                              const char *name)
{
    for (size_t r = 0; r < n; r++) {
        const merge_line *m = &ml[r];
        cat->n = 0;
        if (!text_buf_put(cat, m->a, m->an) || !text_buf_put(cat, m->b, m->bn))
            return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
        int32_t a = strmap_get(vocab, m->a, m->an), b = strmap_get(vocab, m->b, m->bn);
        int32_t ab = strmap_get(vocab, cat->p, cat->n);
        const char *missing = a < 0 ? m->a : b < 0 ? m->b : ab < 0 ? cat->p : NULL;
        if (missing) {
            size_t mn = a < 0 ? m->an : b < 0 ? m->bn : cat->n;
            char buf[200];
            return core_fail(CMCR_EFORMAT, "%s: line %zu: token '%s' is not in the vocabulary", name, m->line,
                             shown(buf, sizeof buf, missing, mn));
        }
        merge_put(t, a, b, (int32_t)r, ab);
    }
    return CMCR_OK;
}

static cmcr_status check_utf8(const char *s, size_t len, const char *name)
{
    size_t ok = text_utf8_check(s, len);
    if (ok == len) return CMCR_OK;
    size_t line = 1;
    for (size_t i = 0; i < ok; i++) line += s[i] == '\n';
    return core_fail(CMCR_EFORMAT, "%s: line %zu: invalid UTF-8 (byte 0x%02x at offset %zu)", name, line,
                     (unsigned char)s[ok], ok);
}

/* OpenAI's vocabulary: the base symbols, one token per merge (its two symbols joined), the two
 * special tokens; a later id replaces an earlier one for the same text, as Python's dict
 * does. Each merge's symbols must exist before it. The joined texts go into vocab's arena,
 * reserved whole first so that the keys pointing into it stay put. */
static cmcr_status openai_vocab(clip_bpe *t, strmap *vocab, const merge_line *ml, size_t n, const char *name)
{
    size_t off[512], blen[512], need = 0;
    uint8_t order[256];
    for (size_t r = 0; r < n; r++) need += ml[r].an + ml[r].bn;
    if (!base_texts(&vocab->arena, off, blen, order) || !text_buf_reserve(&vocab->arena, need))
        return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    for (int i = 0; i < 512; i++) {
        strmap_set(vocab, vocab->arena.p + off[i], blen[i], i);
        if (i < 256) t->byte_id[order[i]] = i;
        else t->byte_end_id[order[i - 256]] = i;
    }
    for (size_t r = 0; r < n; r++) {
        const merge_line *m = &ml[r];
        bool a_ok = strmap_get(vocab, m->a, m->an) >= 0;
        if (!a_ok || strmap_get(vocab, m->b, m->bn) < 0) {
            char buf[200];
            return core_fail(CMCR_EFORMAT, "%s: line %zu: symbol '%s' is neither a byte symbol nor made by an earlier merge",
                             name, m->line, a_ok ? shown(buf, sizeof buf, m->b, m->bn) : shown(buf, sizeof buf, m->a, m->an));
        }
        char *ab = vocab->arena.p + vocab->arena.n;
        text_buf_put(&vocab->arena, m->a, m->an); /* reserved above: no reallocation */
        text_buf_put(&vocab->arena, m->b, m->bn);
        strmap_set(vocab, ab, m->an + m->bn, (int32_t)(512 + r));
    }
    t->sot = (int32_t)(512 + n);
    t->eot = t->sot + 1;
    t->n_vocab = t->eot + 1;
    strmap_set(vocab, "<|startoftext|>", 15, t->sot);
    strmap_set(vocab, "<|endoftext|>", 13, t->eot);
    return CMCR_OK;
}

/* OpenAI's merge list, as text: the first line is a header, the merges follow. */
static cmcr_status load_openai(const char *text, size_t len, const char *name, clip_bpe **out)
{
    merge_line *ml = NULL;
    size_t n = 0;
    strmap vocab = {0};
    text_buf cat = {0};
    clip_bpe *t = NULL;
    cmcr_status st = check_utf8(text, len, name);
    if (st == CMCR_OK) st = parse_merges(text, len, name, 1, &ml, &n);
    if (st == CMCR_OK && !strmap_init(&vocab, 512 + n + 2)) st = core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    if (st == CMCR_OK) st = bpe_new(n, &t);
    if (st == CMCR_OK) st = openai_vocab(t, &vocab, ml, n, name);
    if (st == CMCR_OK) st = add_merges(t, &vocab, ml, n, &cat, name);
    text_buf_free(&cat);
    strmap_free(&vocab);
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

/* vocab.json: an object of token -> id, the ids 0..n-1 each once. */
static cmcr_status read_vocab_json(const cJSON *root, const char *name, strmap *vocab, int32_t *n_vocab)
{
    if (!cJSON_IsObject(root)) return core_fail(CMCR_EFORMAT, "%s: expected a JSON object of token -> id", name);
    int n = cJSON_GetArraySize(root);
    if (n <= 0) return core_fail(CMCR_EFORMAT, "%s: the vocabulary is empty", name);
    unsigned char *seen = calloc((size_t)n, 1);
    if (!seen || !strmap_init(vocab, (size_t)n)) {
        free(seen);
        return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    }
    cmcr_status st = CMCR_OK;
    int k = 0;
    char buf[200];
    for (const cJSON *e = root->child; e && st == CMCR_OK; e = e->next, k++) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!e->string || !e->string[0])
            st = core_fail(CMCR_EFORMAT, "%s: entry %d has an empty token", name, k + 1);
        else if (strmap_get(vocab, e->string, strlen(e->string)) >= 0)
            st = core_fail(CMCR_EFORMAT, "%s: token '%s' appears twice", name, cmcr_printable(buf, sizeof buf, e->string));
        else if (!cJSON_IsNumber(e))
            st = core_fail(CMCR_EFORMAT, "%s: token '%s': the id is not a number", name, cmcr_printable(buf, sizeof buf, e->string));
        else if (!(v >= 0 && v < n && v == (double)(int32_t)v) || seen[(int32_t)v])
            st = core_fail(CMCR_EFORMAT, "%s: token '%s': id %.17g is not one of 0..%d, each used once", name,
                           cmcr_printable(buf, sizeof buf, e->string), v, n - 1);
        else {
            seen[(int32_t)v] = 1;
            strmap_set(vocab, e->string, strlen(e->string), (int32_t)v);
        }
    }
    free(seen);
    *n_vocab = n;
    return st;
}

/* Ids of the base symbols and of the special tokens, which vocab.json must have. */
static cmcr_status hf_base_ids(clip_bpe *t, strmap *vocab, const char *name)
{
    size_t off[512], blen[512];
    uint8_t order[256];
    text_buf arena = {0};
    if (!base_texts(&arena, off, blen, order)) return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    cmcr_status st = CMCR_OK;
    char buf[64];
    for (int i = 0; i < 512 && st == CMCR_OK; i++) {
        int32_t id = strmap_get(vocab, arena.p + off[i], blen[i]);
        if (id < 0) st = core_fail(CMCR_EFORMAT, "%s: the byte symbol '%s' is missing", name, shown(buf, sizeof buf, arena.p + off[i], blen[i]));
        else if (i < 256) t->byte_id[order[i]] = id;
        else t->byte_end_id[order[i - 256]] = id;
    }
    text_buf_free(&arena);
    t->sot = strmap_get(vocab, "<|startoftext|>", 15);
    t->eot = strmap_get(vocab, "<|endoftext|>", 13);
    if (st == CMCR_OK && (t->sot < 0 || t->eot < 0))
        st = core_fail(CMCR_EFORMAT, "%s: the special token '%s' is missing", name, t->sot < 0 ? "<|startoftext|>" : "<|endoftext|>");
    return st;
}

/* Hugging Face's CLIPTokenizer reads merges.txt as read().strip().split("\n")[1:48895]: the
 * first line is the "#version" header. */
static cmcr_status hf_merges(const char *text, size_t len, const char *name, merge_line **ml, size_t *n)
{
    cmcr_status st = check_utf8(text, len, name);
    if (st != CMCR_OK) return st;
    size_t skip = 0;
    while (skip < len && (is_blank(text[skip]) || text[skip] == '\n')) skip++;
    if (len - skip < 8 || memcmp(text + skip, "#version", 8) != 0)
        return core_fail(CMCR_EFORMAT, "%s: line 1: expected the '#version: ...' header", name);
    while (len > skip && (is_blank(text[len - 1]) || text[len - 1] == '\n')) len--;
    st = parse_merges(text + skip, len - skip, name, 1, ml, n);
    return st;
}

cmcr_status clip_bpe_load_hf_memory(const char *vocab_text, size_t vocab_len, const char *vocab_name, const char *merges,
                                    size_t merges_len, const char *merges_name, clip_bpe **out)
{
    *out = NULL;
    const char *at = NULL; /* the error position of this call (cJSON_GetErrorPtr is process-wide) */
    cJSON *root = cJSON_ParseWithLengthOpts(vocab_text, vocab_len, &at, 0);
    if (!root) {
        size_t off = at && at >= vocab_text && at <= vocab_text + vocab_len ? (size_t)(at - vocab_text) : 0;
        return core_fail(CMCR_EFORMAT, "%s: not valid JSON (error near byte %zu)", vocab_name, off);
    }
    strmap vocab = {0};
    int32_t n_vocab = 0;
    merge_line *ml = NULL;
    size_t n = 0;
    clip_bpe *t = NULL;
    text_buf cat = {0};
    cmcr_status st = read_vocab_json(root, vocab_name, &vocab, &n_vocab);
    if (st == CMCR_OK) st = hf_merges(merges, merges_len, merges_name, &ml, &n);
    if (st == CMCR_OK) st = bpe_new(n, &t);
    if (st == CMCR_OK) st = hf_base_ids(t, &vocab, vocab_name);
    if (st == CMCR_OK) st = add_merges(t, &vocab, ml, n, &cat, merges_name);
    if (st == CMCR_OK) t->n_vocab = n_vocab;
    text_buf_free(&cat);
    strmap_free(&vocab);
    free(ml);
    cJSON_Delete(root);
    if (st != CMCR_OK) clip_bpe_free(t);
    else *out = t;
    return st;
}

/* ------------------------------------------------------------------ loading from files */

static char *join(const char *dir, const char *file)
{
    size_t n = strlen(dir);
    char *p = core_xmalloc(n + strlen(file) + 2);
    if (p) sprintf(p, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", file);
    return p;
}

static cmcr_status load_hf(const char *vocab_path, const char *merges_path, clip_bpe **out)
{
    unsigned char *v = NULL, *m = NULL;
    size_t vn = 0, mn = 0;
    cmcr_status st = file_read_all(vocab_path, CLIP_BPE_MAX_FILE, &v, &vn);
    if (st == CMCR_OK) st = file_read_all(merges_path, CLIP_BPE_MAX_FILE, &m, &mn);
    if (st == CMCR_OK) st = clip_bpe_load_hf_memory((const char *)v, vn, vocab_path, (const char *)m, mn, merges_path, out);
    free(v);
    free(m);
    return st;
}

cmcr_status clip_bpe_load(const char *path, clip_bpe **out)
{
    *out = NULL;
    if (!path || !*path) return core_fail(CMCR_EINVAL, "clip_bpe_load: no vocabulary path given");
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char *v = join(path, "vocab.json"), *m = join(path, "merges.txt");
        cmcr_status st = v && m ? load_hf(v, m, out) : core_fail(CMCR_ENOMEM, "%s: out of memory", path);
        free(v);
        free(m);
        return st;
    }
    if (core_ends_with(path, ".json")) {
        const char *slash = strrchr(path, '/');
        char *dir = core_strdup(path);
        if (!dir) return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
        if (slash) dir[slash - path + 1] = '\0';
        else strcpy(dir, ".");
        char *m = join(dir, "merges.txt");
        free(dir);
        cmcr_status st = m ? load_hf(path, m, out) : core_fail(CMCR_ENOMEM, "%s: out of memory", path);
        free(m);
        return st;
    }
    unsigned char *data = NULL;
    size_t n = 0;
    cmcr_status st = file_read_all(path, CLIP_BPE_MAX_FILE, &data, &n);
    if (st == CMCR_OK) st = clip_bpe_load_merges_memory(data, n, path, out);
    free(data);
    return st;
}

/* ------------------------------------------------------------------ BPE */

/* Scratch for one call (so that threads share nothing): symbols of the word being merged as
 * a linked list over its bytes, and a heap of candidate merges keyed rank << 32 | position. */
typedef struct scratch {
    int32_t *id, *next, *prev;
    uint64_t *heap, *batch;
    size_t cap, heap_n;
} scratch;

static bool scratch_fit(scratch *s, size_t n)
{
    if (n <= s->cap) return true;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n) cap *= 2;
    free(s->id), free(s->next), free(s->prev), free(s->heap), free(s->batch);
    s->id = malloc(cap * sizeof *s->id);
    s->next = malloc(cap * sizeof *s->next);
    s->prev = malloc(cap * sizeof *s->prev);
    s->heap = malloc(3 * cap * sizeof *s->heap); /* n - 1 pairs, then at most 2 per merge */
    s->batch = malloc(cap * sizeof *s->batch);
    s->cap = s->id && s->next && s->prev && s->heap && s->batch ? cap : 0;
    return s->cap != 0;
}

static void scratch_free(scratch *s)
{
    free(s->id), free(s->next), free(s->prev), free(s->heap), free(s->batch);
    *s = (scratch){0};
}

static void heap_push(scratch *s, uint64_t v)
{
    size_t i = s->heap_n++;
    while (i > 0 && s->heap[(i - 1) / 2] > v) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = v;
}

static uint64_t heap_pop(scratch *s)
{
    uint64_t top = s->heap[0], v = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && s->heap[c + 1] < s->heap[c]) c++;
        if (s->heap[c] >= v) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = v;
    return top;
}

/* Queue the merge of the symbols at p and next[p], if they merge. */
static void push_pair(const clip_bpe *t, scratch *s, int32_t p)
{
    int32_t q, rank, id;
    if (p < 0 || (q = s->next[p]) < 0) return;
    if (merge_find(t, s->id[p], s->id[q], &rank, &id)) heap_push(s, (uint64_t)rank << 32 | (uint32_t)p);
}

/* OpenAI's bpe(): repeatedly take the lowest-ranked pair present and merge every occurrence
 * of it, left to right without overlap. All occurrences of one rank are taken from the heap
 * before any is merged, so that pairs a merge creates wait for the next round, as in Python's
 * loop. The word is w[0..n) (bytes); the symbols are left in s (from index 0 along next). */
static void bpe_word(const clip_bpe *t, scratch *s, const unsigned char *w, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        s->id[i] = i + 1 < n ? t->byte_id[w[i]] : t->byte_end_id[w[i]];
        s->next[i] = i + 1 < n ? i + 1 : -1;
        s->prev[i] = i - 1;
    }
    s->heap_n = 0;
    for (int32_t i = 0; i + 1 < n; i++) push_pair(t, s, i);
    while (s->heap_n) {
        uint32_t rank = (uint32_t)(s->heap[0] >> 32);
        size_t nb = 0;
        while (s->heap_n && (uint32_t)(s->heap[0] >> 32) == rank) s->batch[nb++] = heap_pop(s);
        for (size_t k = 0; k < nb; k++) {
            int32_t p = (int32_t)(uint32_t)s->batch[k], q = s->next[p], r, id;
            /* p may have been merged away (prev[p] == -2) or changed since it was queued */
            if (s->prev[p] == -2 || q < 0 || !merge_find(t, s->id[p], s->id[q], &r, &id) || (uint32_t)r != rank) continue;
            s->id[p] = id;
            s->next[p] = s->next[q];
            if (s->next[q] >= 0) s->prev[s->next[q]] = p;
            s->prev[q] = -2;
            push_pair(t, s, s->prev[p]);
            push_pair(t, s, p);
        }
    }
}

/* ------------------------------------------------------------------ clip.tokenize */

typedef struct out_ids {
    int32_t *ids;
    int64_t max, count; /* room for max BPE tokens after <|startoftext|>; all counted */
} out_ids;

static void emit(out_ids *o, int32_t id)
{
    if (o->count < o->max) o->ids[1 + o->count] = id;
    o->count++;
}

static cmcr_status encode_words(const clip_bpe *t, const char *s, size_t len, const char *name, out_ids *o,
                                bool need_count)
{
    clip_words w;
    scratch sc = {0};
    cmcr_status st = clip_words_begin(&w, &t->text, s, len);
    size_t a, b;
    int rc = 0;
    while (st == CMCR_OK && (need_count || o->count < o->max) && (rc = clip_words_next(&w, name, &a, &b)) == 1) {
        size_t n = b - a;
        if (n == 15 && memcmp(s + a, "<|startoftext|>", 15) == 0) emit(o, t->sot);
        else if (n == 13 && memcmp(s + a, "<|endoftext|>", 13) == 0) emit(o, t->eot);
        else if (!scratch_fit(&sc, n)) st = core_fail(CMCR_ENOMEM, "%s: out of memory", name);
        else {
            bpe_word(t, &sc, (const unsigned char *)s + a, (int32_t)n);
            for (int32_t p = 0; p >= 0; p = sc.next[p]) emit(o, sc.id[p]);
        }
    }
    if (rc < 0) st = CMCR_EVALUE;
    clip_words_end(&w);
    scratch_free(&sc);
    return st;
}

cmcr_status clip_bpe_encode(const clip_bpe *t, const char *text, size_t len, const char *name, int32_t *ids,
                            int32_t context, int64_t *n_tokens)
{
    if (!name) name = "text";
    if (n_tokens) *n_tokens = 0;
    if (!t || !ids || context < 2 || (!text && len))
        return core_fail(CMCR_EINVAL, "%s: clip_bpe_encode needs a tokenizer, ids and a context of at least 2", name);
    memset(ids, 0, (size_t)context * sizeof *ids);
    if (len > CLIP_BPE_MAX_TEXT)
        return core_fail(CMCR_ENOMEM, "%s: text of %zu bytes is longer than the tokenizer's limit of %zu bytes", name, len,
                         CLIP_BPE_MAX_TEXT);
    if (!text) text = "";
    size_t ok = text_utf8_check(text, len);
    if (ok != len)
        return core_fail(CMCR_EVALUE, "%s: invalid UTF-8 at byte %zu (0x%02x)", name, ok, (unsigned char)text[ok]);
    text_buf clean = {0};
    out_ids o = {ids, context - 2, 0};
    cmcr_status st = clip_text_clean(&t->text, text, len, &clean) ? CMCR_OK : core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    if (st == CMCR_OK) st = encode_words(t, clean.p ? clean.p : "", clean.n, name, &o, n_tokens != NULL);
    text_buf_free(&clean);
    if (st != CMCR_OK) {
        memset(ids, 0, (size_t)context * sizeof *ids);
        return st;
    }
    ids[0] = t->sot;
    ids[o.count < o.max ? 1 + o.count : context - 1] = t->eot;
    if (n_tokens) *n_tokens = o.count;
    return CMCR_OK;
}
