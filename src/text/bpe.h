/* bpe.h - what the byte-level BPE tokenizers (CLIP's clip_bpe.c, RoBERTa's roberta_bpe.c)
 * share: a byte buffer, strict UTF-8 checks, Python's str.isspace, PCRE2 patterns and their
 * matches, GPT-2's bytes_to_unicode map, the token -> id map, Hugging Face's vocab.json and
 * merges.txt readers, the merge table, and BPE itself. What each tokenizer adds (CLIP's </w>
 * and text clean-up, RoBERTa's special tokens) stays in its own file. Internal. */
#ifndef CMCR_TEXT_BPE_H
#define CMCR_TEXT_BPE_H

#include "runtime/core.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ------------------------------------------------------------------ text */

/* A growing byte buffer. text_buf_put returns false when memory runs out. */
typedef struct text_buf {
    char *p;
    size_t n, cap;
} text_buf;
bool text_buf_put(text_buf *b, const void *s, size_t n);
/* Room for at least extra more bytes after b->n. */
bool text_buf_reserve(text_buf *b, size_t extra);
void text_buf_free(text_buf *b);

/* The length of the longest valid UTF-8 prefix of s (strict, as Python's decode: no overlong
 * forms, no surrogates, nothing past U+10FFFF): len when s is valid. */
size_t text_utf8_check(const char *s, size_t len);
/* The code point at s[i] of valid UTF-8 and its length in bytes. */
size_t text_decode(const char *s, size_t len, size_t i, int32_t *cp);
/* Python's str.isspace (used by strip, lstrip, rstrip): bidirectional class WS, B or S, or
 * category Zs; U+001C..U+001F count. */
bool text_py_isspace(int32_t c);

/* Compile pattern with PCRE2_UTF | PCRE2_UCP | flags, JIT'd when the library can. */
cmcr_status text_compile(const char *pattern, uint32_t flags, pcre2_code **out);

/* re.findall of a compiled pattern over s, one match at a time. The pattern may be shared by
 * threads; the match data is per iteration. */
typedef struct text_words {
    const pcre2_code *re;
    pcre2_match_data *md;
    const char *s;
    size_t len, pos;
} text_words;
cmcr_status text_words_begin(text_words *w, const pcre2_code *re, const char *s, size_t len);
/* 1 and [*start, *end) for the next match, 0 at the end, -1 when PCRE2 fails (a match limit;
 * the message is set, naming `name`). */
int text_words_next(text_words *w, const char *name, size_t *start, size_t *end);
void text_words_end(text_words *w);

/* ------------------------------------------------------------------ symbols and vocabularies */

/* GPT-2's bytes_to_unicode(): printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
 * themselves, the others for U+0100 onwards in byte order. order[i] is the byte of the i-th
 * symbol as list(bytes_to_unicode().values()) orders them (printable ones first). */
void bpe_byte_order(uint8_t order[256]);
/* The UTF-8 text of byte b's symbol in out (at most 2 bytes); returns its length. */
size_t bpe_byte_char(int b, char out[4]);

/* Token text -> id (open addressing, sized for every entry up front; the texts are not copied
 * and must outlive the map; `arena` may hold some of them). */
typedef struct bpe_strmap {
    const char **key;
    size_t *len;
    int32_t *id;
    size_t mask;
    text_buf arena;
} bpe_strmap;
bool bpe_strmap_init(bpe_strmap *m, size_t n);
void bpe_strmap_free(bpe_strmap *m);
/* The id of s, or -1. */
int32_t bpe_strmap_get(const bpe_strmap *m, const char *s, size_t n);
/* Set s -> id (a later id replaces an earlier one, as in Python's dict). */
void bpe_strmap_set(bpe_strmap *m, const char *s, size_t n, int32_t id);

/* A Hugging Face vocab.json: a JSON object of token -> id, each id one of 0..n-1 and used
 * once, no empty token. The map's keys point into the parsed JSON, which it keeps. */
typedef struct bpe_vocab {
    void *json; /* cJSON */
    bpe_strmap map;
    int32_t n;
} bpe_vocab;
cmcr_status bpe_vocab_parse(const char *text, size_t len, const char *name, bpe_vocab *v);
void bpe_vocab_free(bpe_vocab *v);

/* "'...'" text for messages: at most ~150 bytes of s, non-printable bytes escaped. */
const char *bpe_shown(char *buf, size_t cap, const char *s, size_t n);
/* CMCR_EFORMAT "name: line L: invalid UTF-8 ..." unless s is valid UTF-8. */
cmcr_status bpe_check_utf8(const char *s, size_t len, const char *name);

/* One line of a merge list: its two symbols. */
typedef struct bpe_line {
    const char *a, *b;
    size_t an, bn;
    size_t line; /* 1-based, for messages */
} bpe_line;
/* Lines 2 .. max+1 of text (split at '\n'; a final newline adds no line; the first line is a
 * header) as merges of two symbols separated by ASCII whitespace (str.split()); anything else
 * is refused naming the line. *out (malloc'd) gets *n merges. */
cmcr_status bpe_parse_merges(const char *text, size_t len, const char *name, size_t max, bpe_line **out, size_t *n);
/* CMCR_EFORMAT "name: line 1: expected the '#version: ...' header" unless text starts with it. */
cmcr_status bpe_check_header(const char *text, size_t len, const char *name);

/* ------------------------------------------------------------------ merges and BPE */

/* A merge (pair of symbol ids) -> its rank and the id of the symbol it makes. */
typedef struct bpe_slot {
    uint64_t key;
    int32_t rank, id;
} bpe_slot;
typedef struct bpe_table {
    bpe_slot *slot;
    size_t mask;
} bpe_table;
/* Room for n merges; false when out of memory. */
bool bpe_table_init(bpe_table *t, size_t n);
void bpe_table_free(bpe_table *t);
/* A repeated pair keeps its last rank, as Python's dict(zip(merges, range(...))) does. */
void bpe_table_put(bpe_table *t, int32_t a, int32_t b, int32_t rank, int32_t id);
/* The rank and result of merging a with b, or false when they do not merge (or one is < 0). */
bool bpe_table_find(const bpe_table *t, int32_t a, int32_t b, int32_t *rank, int32_t *id);
/* The table from Hugging Face's merges: each merge's two symbols and their concatenation must
 * be tokens of vocab (else CMCR_EFORMAT naming the line of `name`); rank = index in ml. */
cmcr_status bpe_table_from_lines(bpe_table *t, const bpe_strmap *vocab, const bpe_line *ml, size_t n, const char *name);

/* Scratch of one BPE call (so that threads share nothing): the word's symbols as a linked list,
 * and a heap of candidate merges keyed rank << 32 | position. */
typedef struct bpe_scratch {
    int32_t *id, *next, *prev;
    uint64_t *heap, *batch;
    size_t cap, heap_n;
} bpe_scratch;
/* Room for words of n symbols; false when out of memory. */
bool bpe_scratch_fit(bpe_scratch *s, size_t n);
void bpe_scratch_free(bpe_scratch *s);
/* BPE as OpenAI's and GPT-2's bpe(): repeatedly take the lowest-ranked pair present and merge
 * every occurrence of it, left to right without overlap; pairs the merges create wait for the
 * next round, as in Python's loop. The caller puts the n >= 1 starting symbols in s->id[0..n)
 * (ids < 0 never merge); the result is the list from index 0 along s->next (-1 ends it). */
void bpe_apply(const bpe_table *t, bpe_scratch *s, int32_t n);

/* ------------------------------------------------------------------ encoding */

/* CMCR_ENOMEM when text is longer than max bytes, CMCR_EVALUE when it is not valid UTF-8
 * ("name: invalid UTF-8 at byte N (0xXX)"), else CMCR_OK. */
cmcr_status bpe_check_text(const char *text, size_t len, size_t max, const char *name);

/* The ids being written after a leading special token: room for max; all are counted. */
typedef struct bpe_out {
    int32_t *ids;
    int64_t max, count;
    bool need_count; /* false: encoding may stop once the room is full */
} bpe_out;
static inline void bpe_emit(bpe_out *o, int32_t id)
{
    if (o->count < o->max) o->ids[1 + o->count] = id;
    o->count++;
}
static inline bool bpe_out_full(const bpe_out *o) { return !o->need_count && o->count >= o->max; }

/* What a tokenizer does with one word w[0..n) (bytes; s has room for n symbols): emit its
 * tokens into o. */
typedef void (*bpe_word_fn)(const void *ctx, const unsigned char *w, int32_t n, bpe_scratch *s, bpe_out *o);
/* re.findall of re over s[0..len), each word through fn, until o is full (bpe_out_full).
 * CMCR_ENOMEM or CMCR_EVALUE (a PCRE2 match limit) name `name`. */
cmcr_status bpe_encode_words(const pcre2_code *re, const char *s, size_t len, const char *name, bpe_word_fn fn,
                             const void *ctx, bpe_scratch *sc, bpe_out *o);

/* ------------------------------------------------------------------ Hugging Face's files */

/* path names Hugging Face's layout when it is a folder (path/vocab.json, path/merges.txt) or a
 * .json file (merges.txt beside it): *is_hf is set and the two paths malloc'd. Otherwise
 * *is_hf is false and nothing is allocated. */
cmcr_status bpe_hf_paths(const char *path, bool *is_hf, char **vocab, char **merges);
/* Read both files whole (each at most max bytes; errors name the file). */
cmcr_status bpe_read_pair(const char *vocab, const char *merges, uint64_t max, unsigned char **v, size_t *vn,
                          unsigned char **m, size_t *mn);

#endif
