/* clip_text.h - the text clean-up and word split of OpenAI's CLIP tokenizer
 * (clip/simple_tokenizer.py), with Python's semantics: html.unescape twice, str.strip,
 * re.sub(r'\s+', ' ') with the `regex` module's \s, str.lower, and the word pattern through
 * PCRE2 (UTF + UCP). ftfy.fix_text is not applied (docs/tokenizers.md). Internal; used by
 * clip_bpe.c and the tests (the word pattern runs through text_words_*, bpe.h). Every function
 * here takes valid UTF-8 (text_utf8_check). */
#ifndef CMCR_TEXT_CLIP_TEXT_H
#define CMCR_TEXT_CLIP_TEXT_H

#include "text/bpe.h"

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

#endif
