/* fuzz_tokenizer.c - libFuzzer target for the CLIP tokenizer (src/text/). The first byte of
 * the input picks what the rest is:
 *   0: text, encoded with a small in-memory merge list (contexts 2 and 77; the ids must not
 *      depend on whether the token count is asked for, and the count on the context);
 *   1: an OpenAI merge list (gzip'd or not), loaded and, when it loads, used on a few texts;
 *   2: Hugging Face files, vocab.json and merges.txt split at the first NUL byte, likewise. */
#include "fuzz_common.h"
#include "text/clip_bpe.h"

#include <string.h>

/* Merges over letters, a repeated letter, and the two bytes of "é" (Ã ©), so that BPE has
 * work to do on most inputs. */
static const char small_merges[] = "#version: 0.2\nt h\nth e</w>\ni n\nin g</w>\na n\nan d</w>\ne r\no n\nr e\n"
                                   "e s</w>\na a\naa aa\naaaa a</w>\nÃ ©</w>\nÃ ©\nc a\nca t</w>\n' s</w>\n";

static const clip_bpe *small_vocab(void)
{
    static clip_bpe *t; /* loaded once; the fuzzer's process ends without freeing it */
    if (!t && clip_bpe_load_merges_memory(small_merges, sizeof small_merges - 1, "small", &t) != CMCR_OK) abort();
    return t;
}

static void encode_checked(const clip_bpe *t, const char *s, size_t n)
{
    int32_t a[77], b[77], c[2];
    int64_t na = -1, nc = -1;
    cmcr_status st = clip_bpe_encode(t, s, n, "input", a, 77, &na);
    if (clip_bpe_encode(t, s, n, "input", b, 77, NULL) != st) abort();
    if (clip_bpe_encode(t, s, n, "input", c, 2, &nc) != st) abort();
    if (st != CMCR_OK) return;
    if (memcmp(a, b, sizeof a) != 0 || na != nc || na < 0) abort();
    for (int k = 0; k < 77; k++)
        if (a[k] < 0 || a[k] >= clip_bpe_vocab_size(t)) abort();
}

static void use(const clip_bpe *t)
{
    static const char *texts[] = {"a photo of a cat.", "&amp;lt;Ünïcödé&gt; ΣΑΣ İ 東京 👩‍👩‍👧", "<|endoftext|> x'S"};
    for (int k = 0; k < 3; k++) encode_checked(t, texts[k], strlen(texts[k]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    clip_bpe *t = NULL;
    switch (data[0] % 3) {
    case 0:
        encode_checked(small_vocab(), rest, n);
        break;
    case 1:
        if (clip_bpe_load_merges_memory(rest, n, "merges.txt", &t) == CMCR_OK) use(t);
        break;
    default: {
        const char *nul = memchr(rest, '\0', n);
        size_t vn = nul ? (size_t)(nul - rest) : n;
        const char *m = nul ? nul + 1 : "";
        size_t mn = nul ? n - vn - 1 : 0;
        if (clip_bpe_load_hf_memory(rest, vn, "vocab.json", m, mn, "merges.txt", &t) == CMCR_OK) use(t);
    }
    }
    clip_bpe_free(t);
    return 0;
}
