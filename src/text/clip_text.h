/* clip_text.h - the text clean-up and word split of OpenAI's CLIP tokenizer
 * (clip/simple_tokenizer.py), with Python's semantics: html.unescape twice, str.strip,
 * re.sub(r'\s+', ' ') with the `regex` module's \s, str.lower, and the word pattern through
 * PCRE2 (UTF + UCP). ftfy.fix_text is not applied (docs/tokenizers.md). Internal; used by
 * clip_bpe.c and the tests. Every function here takes valid UTF-8 (text_utf8_check). */
#ifndef CMCR_TEXT_CLIP_TEXT_H
#define CMCR_TEXT_CLIP_TEXT_H

#include "runtime/core.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

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

/* Python's html.unescape(s), appended to out. false when memory runs out. */
bool text_html_unescape(text_buf *out, const char *s, size_t len);

/* The compiled patterns (the word pattern, and the Cased / Case_Ignorable properties that
 * Python's lower() needs for the Greek final sigma). Read-only once made: threads share one. */
typedef struct clip_text {
    pcre2_code *words, *cased, *ignorable;
} clip_text;
cmcr_status clip_text_init(clip_text *t);
void clip_text_release(clip_text *t);

/* whitespace_clean(basic_clean(s)).lower() without ftfy: html.unescape twice, strip, runs of
 * whitespace to one space, strip, lower. out is overwritten. false when memory runs out. */
bool clip_text_clean(const clip_text *t, const char *s, size_t len, text_buf *out);

/* re.findall of the word pattern over s, one word at a time. */
typedef struct clip_words {
    const clip_text *t;
    pcre2_match_data *md;
    const char *s;
    size_t len, pos;
} clip_words;
cmcr_status clip_words_begin(clip_words *w, const clip_text *t, const char *s, size_t len);
/* 1 and [*start, *end) for the next word, 0 at the end, -1 when PCRE2 fails (a match limit;
 * the message is set, naming `name`). */
int clip_words_next(clip_words *w, const char *name, size_t *start, size_t *end);
void clip_words_end(clip_words *w);

#endif
