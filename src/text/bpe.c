/* bpe.c - the parts of the byte-level BPE tokenizers that CLIP's and RoBERTa's share (bpe.h):
 * text buffers and UTF-8, PCRE2 patterns, bytes_to_unicode, vocab.json and merges.txt, the
 * merge table and BPE. Unicode data comes from utf8proc and PCRE2. */
#include "text/bpe.h"
#include "runtime/file.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------ text */

bool text_buf_reserve(text_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->n) return false;
    if (b->n + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

bool text_buf_put(text_buf *b, const void *s, size_t n)
{
    if (!text_buf_reserve(b, n)) return false;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

void text_buf_free(text_buf *b)
{
    free(b->p);
    *b = (text_buf){0};
}

size_t text_decode(const char *s, size_t len, size_t i, int32_t *cp)
{
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    utf8proc_int32_t v = 0;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &v);
    *cp = v;
    return k > 0 ? (size_t)k : 1; /* k <= 0 only on invalid input, which callers never pass */
}

size_t text_utf8_check(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t v;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &v);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return len;
}

bool text_py_isspace(int32_t c)
{
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
    const utf8proc_property_t *p = utf8proc_get_property(c);
    return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

/* ------------------------------------------------------------------ patterns */

cmcr_status text_compile(const char *pattern, uint32_t flags, pcre2_code **out)
{
    int err = 0;
    PCRE2_SIZE at = 0;
    *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | flags, &err, &at, NULL);
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return core_fail(CMCR_EUNSUPPORTED, "PCRE2 refuses the tokenizer pattern %s at %zu: %s", pattern, (size_t)at,
                         (const char *)msg);
    }
    /* JIT when the library has it (it makes matching several times faster); the interpreter
     * gives the same matches otherwise. */
    (void)pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);
    return CMCR_OK;
}

cmcr_status text_words_begin(text_words *w, const pcre2_code *re, const char *s, size_t len)
{
    *w = (text_words){.re = re, .s = s, .len = len};
    w->md = pcre2_match_data_create_from_pattern(re, NULL);
    return w->md ? CMCR_OK : core_fail(CMCR_ENOMEM, "out of memory for the tokenizer's match data");
}

int text_words_next(text_words *w, const char *name, size_t *start, size_t *end)
{
    if (w->pos >= w->len) return 0;
    int rc = pcre2_match(w->re, (PCRE2_SPTR)w->s, w->len, w->pos, PCRE2_NO_UTF_CHECK, w->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        core_fail(CMCR_EVALUE, "%s: the word pattern failed at byte %zu: %s", name, w->pos, (const char *)msg);
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
    *start = ov[0];
    *end = ov[1];
    w->pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1; /* no alternative matches empty; guard anyway */
    return 1;
}

void text_words_end(text_words *w)
{
    pcre2_match_data_free(w->md);
    w->md = NULL;
}

/* ------------------------------------------------------------------ bytes_to_unicode */

static bool printable_byte(int b) { return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae; }

void bpe_byte_order(uint8_t order[256])
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++)
            if (printable_byte(b) == (pass == 0)) order[n++] = (uint8_t)b;
}

size_t bpe_byte_char(int b, char out[4])
{
    int32_t cp = b;
    if (!printable_byte(b)) {
        cp = 256;
        for (int k = 0; k < b; k++) cp += !printable_byte(k);
    }
    return (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out);
}

/* ------------------------------------------------------------------ token strings -> ids */

bool bpe_strmap_init(bpe_strmap *m, size_t n)
{
    size_t cap = 64;
    while (cap < 2 * n) cap *= 2;
    *m = (bpe_strmap){.key = calloc(cap, sizeof *m->key), .len = calloc(cap, sizeof *m->len),
                      .id = calloc(cap, sizeof *m->id), .mask = cap - 1};
    return m->key && m->len && m->id;
}

void bpe_strmap_free(bpe_strmap *m)
{
    free(m->key);
    free(m->len);
    free(m->id);
    text_buf_free(&m->arena);
    *m = (bpe_strmap){0};
}

static size_t strmap_slot(const bpe_strmap *m, const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask)
        if (!m->key[i] || (m->len[i] == n && memcmp(m->key[i], s, n) == 0)) return i;
}

int32_t bpe_strmap_get(const bpe_strmap *m, const char *s, size_t n)
{
    size_t i = strmap_slot(m, s, n);
    return m->key[i] ? m->id[i] : -1;
}

void bpe_strmap_set(bpe_strmap *m, const char *s, size_t n, int32_t id)
{
    size_t i = strmap_slot(m, s, n);
    m->key[i] = s;
    m->len[i] = n;
    m->id[i] = id;
}

/* ------------------------------------------------------------------ vocab.json */

/* The entries of root into v->map: each id one of 0..n-1 and used once. */
static cmcr_status vocab_entries(const cJSON *root, const char *name, bpe_vocab *v)
{
    if (!cJSON_IsObject(root)) return core_fail(CMCR_EFORMAT, "%s: expected a JSON object of token -> id", name);
    int n = cJSON_GetArraySize(root);
    if (n <= 0) return core_fail(CMCR_EFORMAT, "%s: the vocabulary is empty", name);
    unsigned char *seen = calloc((size_t)n, 1);
    if (!seen || !bpe_strmap_init(&v->map, (size_t)n)) {
        free(seen);
        return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    }
    cmcr_status st = CMCR_OK;
    int k = 0;
    char buf[200];
    for (const cJSON *e = root->child; e && st == CMCR_OK; e = e->next, k++) {
        double x = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!e->string || !e->string[0])
            st = core_fail(CMCR_EFORMAT, "%s: entry %d has an empty token", name, k + 1);
        else if (bpe_strmap_get(&v->map, e->string, strlen(e->string)) >= 0)
            st = core_fail(CMCR_EFORMAT, "%s: token '%s' appears twice", name, cmcr_printable(buf, sizeof buf, e->string));
        else if (!cJSON_IsNumber(e))
            st = core_fail(CMCR_EFORMAT, "%s: token '%s': the id is not a number", name, cmcr_printable(buf, sizeof buf, e->string));
        else if (!(x >= 0 && x < n && x == (double)(int32_t)x) || seen[(int32_t)x])
            st = core_fail(CMCR_EFORMAT, "%s: token '%s': id %.17g is not one of 0..%d, each used once", name,
                           cmcr_printable(buf, sizeof buf, e->string), x, n - 1);
        else {
            seen[(int32_t)x] = 1;
            bpe_strmap_set(&v->map, e->string, strlen(e->string), (int32_t)x);
        }
    }
    free(seen);
    v->n = n;
    return st;
}

cmcr_status bpe_vocab_parse(const char *text, size_t len, const char *name, bpe_vocab *v)
{
    *v = (bpe_vocab){0};
    const char *at = NULL; /* the error position of this call (cJSON_GetErrorPtr is process-wide) */
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &at, 0);
    if (!root) {
        size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
        return core_fail(CMCR_EFORMAT, "%s: not valid JSON (error near byte %zu)", name, off);
    }
    v->json = root;
    cmcr_status st = vocab_entries(root, name, v);
    if (st != CMCR_OK) bpe_vocab_free(v);
    return st;
}

void bpe_vocab_free(bpe_vocab *v)
{
    bpe_strmap_free(&v->map);
    cJSON_Delete(v->json);
    *v = (bpe_vocab){0};
}

/* ------------------------------------------------------------------ merges.txt */

const char *bpe_shown(char *buf, size_t cap, const char *s, size_t n)
{
    char tmp[160];
    size_t k = n < sizeof tmp - 1 ? n : sizeof tmp - 1;
    memcpy(tmp, s, k);
    tmp[k] = '\0';
    return cmcr_printable(buf, cap, tmp);
}

cmcr_status bpe_check_utf8(const char *s, size_t len, const char *name)
{
    size_t ok = text_utf8_check(s, len);
    if (ok == len) return CMCR_OK;
    size_t line = 1;
    for (size_t i = 0; i < ok; i++) line += s[i] == '\n';
    return core_fail(CMCR_EFORMAT, "%s: line %zu: invalid UTF-8 (byte 0x%02x at offset %zu)", name, line,
                     (unsigned char)s[ok], ok);
}

cmcr_status bpe_check_header(const char *text, size_t len, const char *name)
{
    if (len < 8 || memcmp(text, "#version", 8) != 0)
        return core_fail(CMCR_EFORMAT, "%s: line 1: expected the '#version: ...' header", name);
    return CMCR_OK;
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Split one line into its two symbols (str.split() on ASCII whitespace). */
static bool split_line(const char *s, size_t n, bpe_line *m)
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

cmcr_status bpe_parse_merges(const char *text, size_t len, const char *name, size_t max, bpe_line **out, size_t *n)
{
    size_t lines = 1;
    for (const char *p = text; lines - 1 <= max && (p = memchr(p, '\n', len - (size_t)(p - text))); p++) lines++;
    *out = calloc(lines, sizeof **out);
    if (!*out) return core_fail(CMCR_ENOMEM, "%s: out of memory for the merges", name);
    *n = 0;
    size_t line = 0, i = 0;
    while (i < len && *n < max) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        if (line > 1) {
            bpe_line *m = &(*out)[*n];
            if (!split_line(text + i, end - i, m)) {
                char buf[200];
                return core_fail(CMCR_EFORMAT, "%s: line %zu: expected two symbols separated by a space, got '%s'", name,
                                 line, bpe_shown(buf, sizeof buf, text + i, end - i));
            }
            m->line = line;
            (*n)++;
        }
        i = end + 1;
    }
    return CMCR_OK;
}

/* ------------------------------------------------------------------ the merge table */

/* Open addressing on key = a << 32 | b; EMPTY marks a free slot (ids are below 2^31, so no
 * key equals it). */
#define EMPTY UINT64_MAX

static size_t slot_of(uint64_t key, size_t mask) { return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & mask; }

bool bpe_table_init(bpe_table *t, size_t n)
{
    size_t cap = 64;
    while (cap < 2 * n) cap *= 2;
    t->slot = malloc(cap * sizeof *t->slot);
    t->mask = t->slot ? cap - 1 : 0;
    for (size_t i = 0; t->slot && i < cap; i++) t->slot[i].key = EMPTY;
    return t->slot != NULL;
}

void bpe_table_free(bpe_table *t)
{
    free(t->slot);
    *t = (bpe_table){0};
}

bool bpe_table_find(const bpe_table *t, int32_t a, int32_t b, int32_t *rank, int32_t *id)
{
    if (a < 0 || b < 0) return false;
    uint64_t key = (uint64_t)a << 32 | (uint32_t)b;
    for (size_t i = slot_of(key, t->mask);; i = (i + 1) & t->mask) {
        if (t->slot[i].key == EMPTY) return false;
        if (t->slot[i].key == key) {
            *rank = t->slot[i].rank;
            *id = t->slot[i].id;
            return true;
        }
    }
}

void bpe_table_put(bpe_table *t, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t key = (uint64_t)a << 32 | (uint32_t)b;
    size_t i = slot_of(key, t->mask);
    while (t->slot[i].key != EMPTY && t->slot[i].key != key) i = (i + 1) & t->mask;
    t->slot[i] = (bpe_slot){key, rank, id};
}

cmcr_status bpe_table_from_lines(bpe_table *t, const bpe_strmap *vocab, const bpe_line *ml, size_t n, const char *name)
{
    text_buf cat = {0};
    cmcr_status st = CMCR_OK;
    for (size_t r = 0; r < n && st == CMCR_OK; r++) {
        const bpe_line *m = &ml[r];
        cat.n = 0;
        if (!text_buf_put(&cat, m->a, m->an) || !text_buf_put(&cat, m->b, m->bn)) {
            st = core_fail(CMCR_ENOMEM, "%s: out of memory", name);
            break;
        }
        int32_t a = bpe_strmap_get(vocab, m->a, m->an), b = bpe_strmap_get(vocab, m->b, m->bn);
        int32_t ab = bpe_strmap_get(vocab, cat.p, cat.n);
        const char *missing = a < 0 ? m->a : b < 0 ? m->b : ab < 0 ? cat.p : NULL;
        if (missing) {
            size_t mn = a < 0 ? m->an : b < 0 ? m->bn : cat.n;
            char buf[200];
            st = core_fail(CMCR_EFORMAT, "%s: line %zu: token '%s' is not in the vocabulary", name, m->line,
                           bpe_shown(buf, sizeof buf, missing, mn));
        } else {
            bpe_table_put(t, a, b, (int32_t)r, ab);
        }
    }
    text_buf_free(&cat);
    return st;
}

/* ------------------------------------------------------------------ BPE */

bool bpe_scratch_fit(bpe_scratch *s, size_t n)
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

void bpe_scratch_free(bpe_scratch *s)
{
    free(s->id), free(s->next), free(s->prev), free(s->heap), free(s->batch);
    *s = (bpe_scratch){0};
}

static void heap_push(bpe_scratch *s, uint64_t v)
{
    size_t i = s->heap_n++;
    while (i > 0 && s->heap[(i - 1) / 2] > v) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = v;
}

static uint64_t heap_pop(bpe_scratch *s)
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
static void push_pair(const bpe_table *t, bpe_scratch *s, int32_t p)
{
    int32_t q, rank, id;
    if (p < 0 || (q = s->next[p]) < 0) return;
    if (bpe_table_find(t, s->id[p], s->id[q], &rank, &id)) heap_push(s, (uint64_t)rank << 32 | (uint32_t)p);
}

/* All occurrences of one rank are taken from the heap before any is merged, so that pairs a
 * merge creates wait for the next round. */
void bpe_apply(const bpe_table *t, bpe_scratch *s, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
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
            if (s->prev[p] == -2 || q < 0 || !bpe_table_find(t, s->id[p], s->id[q], &r, &id) || (uint32_t)r != rank) continue;
            s->id[p] = id;
            s->next[p] = s->next[q];
            if (s->next[q] >= 0) s->prev[s->next[q]] = p;
            s->prev[q] = -2;
            push_pair(t, s, s->prev[p]);
            push_pair(t, s, p);
        }
    }
}

/* ------------------------------------------------------------------ encoding */

cmcr_status bpe_check_text(const char *text, size_t len, size_t max, const char *name)
{
    if (len > max)
        return core_fail(CMCR_ENOMEM, "%s: text of %zu bytes is longer than the tokenizer's limit of %zu bytes", name, len,
                         max);
    size_t ok = text_utf8_check(text, len);
    if (ok != len)
        return core_fail(CMCR_EVALUE, "%s: invalid UTF-8 at byte %zu (0x%02x)", name, ok, (unsigned char)text[ok]);
    return CMCR_OK;
}

cmcr_status bpe_encode_words(const pcre2_code *re, const char *s, size_t len, const char *name, bpe_word_fn fn,
                             const void *ctx, bpe_scratch *sc, bpe_out *o)
{
    text_words w;
    cmcr_status st = text_words_begin(&w, re, s, len);
    size_t a, b;
    int rc = 0;
    while (st == CMCR_OK && !bpe_out_full(o) && (rc = text_words_next(&w, name, &a, &b)) == 1) {
        if (!bpe_scratch_fit(sc, b - a)) st = core_fail(CMCR_ENOMEM, "%s: out of memory", name);
        else fn(ctx, (const unsigned char *)s + a, (int32_t)(b - a), sc, o);
    }
    if (rc < 0) st = CMCR_EVALUE;
    text_words_end(&w);
    return st;
}

/* ------------------------------------------------------------------ Hugging Face's files */

static char *join(const char *dir, const char *file)
{
    size_t n = strlen(dir);
    char *p = core_xmalloc(n + strlen(file) + 2);
    if (p) sprintf(p, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", file);
    return p;
}

cmcr_status bpe_hf_paths(const char *path, bool *is_hf, char **vocab, char **merges)
{
    *is_hf = false;
    *vocab = *merges = NULL;
    struct stat sb;
    char *dir = NULL;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        *vocab = join(path, "vocab.json");
        dir = core_strdup(path);
    } else if (core_ends_with(path, ".json")) {
        const char *slash = strrchr(path, '/');
        *vocab = core_strdup(path);
        dir = core_strdup(slash ? path : ".");
        if (dir && slash) dir[slash - path + 1] = '\0';
    } else {
        return CMCR_OK;
    }
    *merges = dir ? join(dir, "merges.txt") : NULL;
    free(dir);
    if (!*vocab || !*merges) {
        free(*vocab), free(*merges);
        *vocab = *merges = NULL;
        return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    }
    *is_hf = true;
    return CMCR_OK;
}

cmcr_status bpe_read_pair(const char *vocab, const char *merges, uint64_t max, unsigned char **v, size_t *vn,
                          unsigned char **m, size_t *mn)
{
    *v = *m = NULL;
    cmcr_status st = file_read_all(vocab, max, v, vn);
    if (st == CMCR_OK) st = file_read_all(merges, max, m, mn);
    if (st != CMCR_OK) {
        free(*v), free(*m);
        *v = *m = NULL;
    }
    return st;
}
