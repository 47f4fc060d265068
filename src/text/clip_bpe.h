/* clip_bpe.h - OpenAI CLIP's byte-level BPE tokenizer (clip.tokenize, truncate=True) in C.
 * Internal; the public calls are in include/cmcr.h. What is matched and how it was checked:
 * docs/tokenizers.md. */
#ifndef CMCR_TEXT_CLIP_BPE_H
#define CMCR_TEXT_CLIP_BPE_H

#include "runtime/core.h"

/* Texts longer than this (bytes) are refused: 1 MiB is far beyond any prompt, and bounds the
 * work and memory of one call. */
#define CLIP_BPE_MAX_TEXT ((size_t)1 << 20)
/* Vocabulary files (and a gzip'd merge list once inflated) larger than this are refused. */
#define CLIP_BPE_MAX_FILE ((uint64_t)64 << 20)
/* Merges used, as OpenAI's and Hugging Face's CLIP code slice them: [1 : 49152 - 256 - 2 + 1]. */
#define CLIP_BPE_MERGES 48894

typedef struct clip_bpe clip_bpe;

/* Load a vocabulary: OpenAI's merge list (bpe_simple_vocab_16e6.txt.gz, gzip'd, or the same
 * uncompressed), or Hugging Face's vocab.json + merges.txt (path = the folder holding them, or
 * the vocab.json file with merges.txt beside it). Errors name the file and the line/entry.
 * OpenAI's form: the first line is a header; lines 2..48895 are the merges (fewer give a
 * smaller vocabulary, as in Python; a final newline ends the last line and adds no merge);
 * ids: 256 byte symbols, the same with </w>, one per merge, <|startoftext|>, <|endoftext|>.
 * Each merge line is two symbols that are byte symbols or made by an earlier merge. */
cmcr_status clip_bpe_load(const char *path, clip_bpe **out);
void clip_bpe_free(clip_bpe *t);
int32_t clip_bpe_vocab_size(const clip_bpe *t);

/* Tokenise `len` bytes of UTF-8 text into `context` ids: <|startoftext|>, the first context-2
 * BPE tokens, <|endoftext|>, then zeros (clip.tokenize(truncate=True)). name names the text in
 * errors (e.g. "prompts.txt:12"). Invalid UTF-8 is refused. Re-entrant: several threads may
 * encode with one clip_bpe at once. *n_tokens (may be NULL) gets the number of BPE tokens
 * before truncation. context >= 2; texts above CLIP_BPE_MAX_TEXT bytes are refused
 * (CMCR_ENOMEM); invalid UTF-8 gives CMCR_EVALUE. On failure ids holds zeros. */
cmcr_status clip_bpe_encode(const clip_bpe *t, const char *text, size_t len, const char *name, int32_t *ids,
                            int32_t context, int64_t *n_tokens);

/* The loaders over memory (for the fuzzers and tests): OpenAI's merge list (gzip'd or not),
 * named `name` in errors; Hugging Face's vocab.json and merges.txt texts. */
cmcr_status clip_bpe_load_merges_memory(const void *data, size_t len, const char *name, clip_bpe **out);
cmcr_status clip_bpe_load_hf_memory(const char *vocab, size_t vocab_len, const char *vocab_name, const char *merges,
                                    size_t merges_len, const char *merges_name, clip_bpe **out);

#endif
