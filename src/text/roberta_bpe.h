/* roberta_bpe.h - RoBERTa's byte-level BPE tokenizer in C: Hugging Face's slow
 * RobertaTokenizer called as tokenizer(text, padding="max_length", truncation=True,
 * max_length=77), as LAION-CLAP's text tower uses it. Internal; what is matched and how it was
 * checked: docs/tokenizers.md. */
#ifndef CMCR_TEXT_ROBERTA_BPE_H
#define CMCR_TEXT_ROBERTA_BPE_H

#include "runtime/core.h"

/* Texts longer than this (bytes) are refused: far beyond any prompt; bounds one call. */
#define ROBERTA_BPE_MAX_TEXT ((size_t)1 << 20)
/* vocab.json and merges.txt files larger than this are refused. */
#define ROBERTA_BPE_MAX_FILE ((uint64_t)64 << 20)

typedef struct roberta_bpe roberta_bpe;

/* GPT-2's pre-tokenisation pattern as compiled for PCRE2 (UTF + UCP), for the tests. */
extern const char roberta_bpe_word_pattern[];

/* Load vocab.json + merges.txt: path is the folder holding them, or the vocab.json file with
 * merges.txt beside it. vocab.json: token -> id, the ids 0..n-1 each once, with the special
 * tokens <s>, <pad>, </s>, <unk> and <mask>. merges.txt: a "#version" first line, then one
 * merge a line ("a b"); as HF reads it (read().split("\n")[1:-1]) text after the last newline
 * is not a merge. Each merge's two symbols and their concatenation must be tokens of
 * vocab.json. Errors (CMCR_EFORMAT, CMCR_EIO) name the file and the line or entry. */
cmcr_status roberta_bpe_load(const char *path, roberta_bpe **out);
/* The same over the two files' bytes (for the fuzzers and tests), named in errors. */
cmcr_status roberta_bpe_load_memory(const char *vocab, size_t vocab_len, const char *vocab_name, const char *merges,
                                    size_t merges_len, const char *merges_name, roberta_bpe **out);
void roberta_bpe_free(roberta_bpe *t);
/* Entries of vocab.json (50265 for roberta-base); 0 for NULL. */
int32_t roberta_bpe_vocab_size(const roberta_bpe *t);
/* The id of <pad> (1 for roberta-base), which fills ids after </s>; -1 for NULL. */
int32_t roberta_bpe_pad_id(const roberta_bpe *t);

/* Tokenise `len` bytes of UTF-8 text into `context` ids: <s>, the first context-2 tokens,
 * </s>, then <pad> (HF: padding="max_length", truncation=True, max_length=context). The
 * special tokens' text (<s> </s> <unk> <pad> <mask>) in the input becomes their ids, with the
 * whitespace before <mask> dropped. *n_real (may be NULL) gets the number of positions that
 * are not padding (HF's attention_mask.sum(); a "<pad>" written in the text counts as real),
 * *n_tokens (may be NULL) the number of tokens before truncation. name names the text in
 * errors (e.g. "prompts.txt:12"). Re-entrant: threads may encode with one tokenizer at once.
 * context >= 2; invalid UTF-8 gives CMCR_EVALUE, texts over ROBERTA_BPE_MAX_TEXT bytes
 * CMCR_ENOMEM. The counts are 0 on any failure; once the arguments pass (CMCR_EINVAL), ids
 * holds the pad id on failure. */
cmcr_status roberta_bpe_encode(const roberta_bpe *t, const char *text, size_t len, const char *name, int32_t *ids,
                               int32_t context, int32_t *n_real, int64_t *n_tokens);

#endif
