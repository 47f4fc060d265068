/* fuzz_roberta_tokenizer.c - libFuzzer target for RoBERTa's tokenizer (src/text/roberta_bpe.c).
 * The first byte of the input picks what the rest is:
 *   0: text, encoded with a small in-memory vocabulary (contexts 2 and 77; the ids must not
 *      depend on whether the token count is asked for, nor the count on the context);
 *   1: vocab.json, merges.txt and a text separated by NUL bytes: loaded and, when they load,
 *      the text and a few fixed ones encoded with them. */
#include "fuzz_common.h"
#include "text/bpe.h"
#include "text/roberta_bpe.h"

#include <stdio.h>
#include <string.h>

/* A vocabulary of the specials, the 256 byte symbols and a few merges (over "the", " the",
 * "é" (the symbols Ã ©) and a repeated letter), so that BPE has work to do on most inputs. */
static const roberta_bpe *small_vocab(void)
{
    static roberta_bpe *t; /* made once; the fuzzer's process ends without freeing it */
    if (t) return t;
    static char json[8192];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"<s>\": 0, \"<pad>\": 1, \"</s>\": 2, \"<unk>\": 3");
    for (int b = 0; b < 256; b++) {
        char u[4];
        u[bpe_byte_char(b, u)] = '\0';
        n += (size_t)snprintf(json + n, sizeof json - n, ", \"%s%s\": %d", b == '"' || b == '\\' ? "\\" : "", u, 4 + b);
    }
    snprintf(json + n, sizeof json - n, ", \"\xc4\xa0t\": 260, \"he\": 261, \"\xc4\xa0the\": 262, \"\xc3\x83\xc2\xa9\": 263, "
                                        "\"aa\": 264, \"aaaa\": 265, \"<mask>\": 266}");
    static const char merges[] = "#version: 0.2\n\xc4\xa0 t\nh e\n\xc4\xa0t he\n\xc3\x83 \xc2\xa9\na a\naa aa\n";
    if (roberta_bpe_load_memory(json, strlen(json), "small.json", merges, sizeof merges - 1, "small.txt", &t) != CMCR_OK) {
        fprintf(stderr, "%s\n", cmcr_last_error());
        abort();
    }
    return t;
}

static void encode_checked(const roberta_bpe *t, const char *s, size_t n)
{
    int32_t a[77], b[77], c[2], ra = -1, rc = -1;
    int64_t na = -1, nc = -1;
    cmcr_status st = roberta_bpe_encode(t, s, n, "input", a, 77, &ra, &na);
    if (roberta_bpe_encode(t, s, n, "input", b, 77, NULL, NULL) != st) abort();
    if (roberta_bpe_encode(t, s, n, "input", c, 2, &rc, &nc) != st) abort();
    if (st != CMCR_OK) return;
    if (memcmp(a, b, sizeof a) != 0 || na != nc || na < 0 || rc != 2) abort();
    if (ra != 2 + (na < 75 ? na : 75)) abort();
    for (int k = 0; k < 77; k++)
        if (a[k] < 0 || a[k] >= roberta_bpe_vocab_size(t) || (k >= ra && a[k] != roberta_bpe_pad_id(t))) abort();
}

/* The next NUL-separated part of [*p, end): its start and length. */
static const char *part(const char **p, const char *end, size_t *n)
{
    const char *s = *p, *nul = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
    *n = nul ? (size_t)(nul - s) : (size_t)(end - s);
    *p = nul ? nul + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *rest = (const char *)data + 1, *end = (const char *)data + size;
    if (data[0] % 2 == 0) {
        encode_checked(small_vocab(), rest, (size_t)(end - rest));
        return 0;
    }
    size_t vn, mn, tn;
    const char *v = part(&rest, end, &vn), *m = part(&rest, end, &mn), *text = part(&rest, end, &tn);
    roberta_bpe *t = NULL;
    if (roberta_bpe_load_memory(v, vn, "vocab.json", m, mn, "merges.txt", &t) == CMCR_OK) {
        static const char *texts[] = {"a dog barks <mask> loudly", " the  <mask>\t<s></s><pad>\n", "caf\xc3\xa9 \xf0\x9f\x8e\xb5 1,000"};
        for (int k = 0; k < 3; k++) encode_checked(t, texts[k], strlen(texts[k]));
        encode_checked(t, text, tn);
    }
    roberta_bpe_free(t);
    return 0;
}
