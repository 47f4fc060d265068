/* clip_text.c - OpenAI CLIP's text clean-up and word split with Python's semantics (see
 * clip_text.h). Unicode data comes from the libraries: utf8proc (decoding, categories,
 * bidirectional classes, simple lowercase) and PCRE2 (the word pattern's \p{L} and \p{N},
 * the Cased and Case_Ignorable properties); the HTML tables are generated from Python's
 * html module (html_entities.h). */
#include "text/clip_text.h"
#include "text/html_entities.h"

#include <stdlib.h>
#include <utf8proc.h>

static bool put_cp(text_buf *b, int32_t cp)
{
    utf8proc_uint8_t u[4];
    return text_buf_put(b, u, (size_t)utf8proc_encode_char(cp, u));
}

/* ------------------------------------------------------------------ html.unescape */

/* Python compiles &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) and replaces each
 * match with _replace_charref; the {1,32} counts code points. */
#define HTML_NAME_MAX_CHARS 32

static const char *entity_find(const char *name, size_t n)
{
    size_t lo = 0, hi = HTML_ENTITY_COUNT;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *e = html_entities[mid].name;
        size_t en = strlen(e);
        int c = memcmp(e, name, en < n ? en : n);
        if (c == 0) c = en < n ? -1 : en > n ? 1 : 0;
        if (c == 0) return html_entities[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* The text of &#num;: _invalid_charrefs first, then U+FFFD for surrogates and numbers past
 * U+10FFFF, nothing for _invalid_codepoints, else the character. */
static bool put_charref(text_buf *out, uint64_t num)
{
    for (int i = 0; i < HTML_CHARREF_COUNT; i++)
        if (html_invalid_charrefs[i].code == num)
            return text_buf_put(out, html_invalid_charrefs[i].value, strlen(html_invalid_charrefs[i].value));
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return put_cp(out, 0xfffd);
    size_t lo = 0, hi = HTML_INVALID_CODEPOINT_COUNT;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (html_invalid_codepoints[mid] == num) return true;
        if (html_invalid_codepoints[mid] < num) lo = mid + 1;
        else hi = mid;
    }
    return put_cp(out, (int32_t)num);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A numeric reference at s[i] == '#': its end (after an optional ';'), or 0 when there is
 * none. Values saturate past U+10FFFF, where they all mean U+FFFD. */
static size_t numeric_ref(const char *s, size_t len, size_t i, uint64_t *num)
{
    size_t j = i + 1;
    int base = 10;
    if (j < len && (s[j] == 'x' || s[j] == 'X')) {
        base = 16;
        j++;
    }
    size_t digits = j;
    uint64_t v = 0;
    while (j < len) {
        int d = base == 16 ? hex_digit(s[j]) : (s[j] >= '0' && s[j] <= '9' ? s[j] - '0' : -1);
        if (d < 0) break;
        v = v * (uint64_t)base + (uint64_t)d;
        if (v > 0x110000) v = 0x110000;
        j++;
    }
    if (j == digits) return 0;
    if (j < len && s[j] == ';') j++;
    *num = v;
    return j;
}

static bool name_char(unsigned char c)
{
    return !(c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';');
}

/* A named reference at s[i] (after '&'): appends its replacement and returns its end, or 0
 * when no name starts there. As Python: the whole name (with ';') if it is in the table, else
 * its longest prefix of at least 2 characters that is (legacy names without ';') followed by
 * the rest, else the text unchanged. */
static size_t named_ref(text_buf *out, const char *s, size_t len, size_t i, bool *ok)
{
    size_t ends[HTML_NAME_MAX_CHARS + 2]; /* ends[k]: byte end of the first k characters */
    size_t j = i, k = 0;
    ends[0] = i;
    while (j < len && k < HTML_NAME_MAX_CHARS && name_char((unsigned char)s[j])) {
        int32_t cp;
        j += text_decode(s, len, j, &cp);
        ends[++k] = j;
    }
    if (k == 0) return 0;
    if (j < len && s[j] == ';') ends[++k] = ++j;
    size_t whole = j - i, used = whole;
    const char *v = whole <= HTML_ENTITY_MAX_NAME ? entity_find(s + i, whole) : NULL;
    for (size_t x = k - 1; !v && x >= 2; x--) {
        size_t n = ends[x] - i;
        if (n <= HTML_ENTITY_MAX_NAME && (v = entity_find(s + i, n))) used = n;
    }
    if (!v) *ok = text_buf_put(out, "&", 1) && text_buf_put(out, s + i, whole);
    else *ok = text_buf_put(out, v, strlen(v)) && text_buf_put(out, s + i + used, whole - used);
    return j;
}

bool text_html_unescape(text_buf *out, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t stop = amp ? (size_t)(amp - s) : len;
        if (!text_buf_put(out, s + i, stop - i)) return false;
        if (!amp) return true;
        size_t at = stop + 1, end = 0;
        bool ok = true;
        uint64_t num = 0;
        if (at < len && s[at] == '#') {
            if ((end = numeric_ref(s, len, at, &num)) != 0) ok = put_charref(out, num);
        } else if (at < len) {
            end = named_ref(out, s, len, at, &ok);
        }
        if (!ok) return false;
        if (end == 0) { /* no reference here: the '&' stays, the scan goes on after it */
            if (!text_buf_put(out, "&", 1)) return false;
            end = at;
        }
        i = end;
    }
    return true;
}

/* ------------------------------------------------------------------ whitespace and case */

/* The `regex` module's \s on str (the Unicode White_Space property): separators (Zs, Zl, Zp),
 * tab to carriage return, and NEL. Python's own re module also counts U+001C..U+001F; the
 * tokenizer imports regex as re. */
static bool regex_space(int32_t c)
{
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0d);
    if (c == 0x85) return true;
    utf8proc_category_t cat = (utf8proc_category_t)utf8proc_get_property(c)->category;
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

/* str.strip(): the [*a, *b) range of s without leading and trailing text_py_isspace characters. */
static void strip(const char *s, size_t len, size_t *a, size_t *b)
{
    size_t i = 0, end = 0;
    bool seen = false;
    while (i < len) {
        int32_t cp;
        size_t k = text_decode(s, len, i, &cp);
        if (!text_py_isspace(cp)) {
            if (!seen) *a = i;
            seen = true;
            end = i + k;
        }
        i += k;
    }
    if (!seen) *a = 0;
    *b = end;
}

/* re.sub(r'\s+', ' ', s) with regex_space. */
static bool collapse_space(text_buf *out, const char *s, size_t len)
{
    size_t i = 0;
    bool in_space = false;
    while (i < len) {
        int32_t cp;
        size_t k = text_decode(s, len, i, &cp);
        if (regex_space(cp)) {
            if (!in_space && !text_buf_put(out, " ", 1)) return false;
            in_space = true;
        } else {
            if (!text_buf_put(out, s + i, k)) return false;
            in_space = false;
        }
        i += k;
    }
    return true;
}

static bool has_prop(const pcre2_code *prop, pcre2_match_data *md, const char *s, size_t i, size_t k)
{
    return pcre2_match(prop, (PCRE2_SPTR)s + i, k, 0, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md, NULL) > 0;
}

/* Python's final-sigma rule for the U+03A3 at s[i..i+2): the nearest character before it
 * that is not Case_Ignorable exists and is Cased, and the nearest one after it that is not
 * Case_Ignorable is absent or not Cased. */
static bool final_sigma(const clip_text *t, pcre2_match_data *md, const char *s, size_t len, size_t i)
{
    size_t j = i;
    bool cased_before = false;
    while (j > 0) {
        size_t e = j--;
        while (j > 0 && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
        if (has_prop(t->ignorable, md, s, j, e - j)) continue;
        cased_before = has_prop(t->cased, md, s, j, e - j);
        break;
    }
    if (!cased_before) return false;
    for (j = i + 2; j < len;) {
        int32_t cp;
        size_t k = text_decode(s, len, j, &cp);
        if (!has_prop(t->ignorable, md, s, j, k)) return !has_prop(t->cased, md, s, j, k);
        j += k;
    }
    return true;
}

/* str.lower(): utf8proc's simple lowercase mapping, plus the two cases where Python's full
 * mapping differs: U+0130 becomes "i" + U+0307 (SpecialCasing), U+03A3 the final sigma. */
static bool lower(const clip_text *t, text_buf *out, const char *s, size_t len)
{
    pcre2_match_data *md = NULL;
    bool ok = true;
    for (size_t i = 0; ok && i < len;) {
        int32_t cp;
        size_t k = text_decode(s, len, i, &cp);
        if (cp < 0x80) {
            char c = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
            ok = text_buf_put(out, &c, 1);
        } else if (cp == 0x130) {
            ok = text_buf_put(out, "i\xcc\x87", 3);
        } else if (cp == 0x3a3) {
            if (!md) md = pcre2_match_data_create(1, NULL);
            ok = md && put_cp(out, final_sigma(t, md, s, len, i) ? 0x3c2 : 0x3c3);
        } else {
            ok = put_cp(out, utf8proc_tolower(cp));
        }
        i += k;
    }
    pcre2_match_data_free(md);
    return ok;
}

bool clip_text_clean(const clip_text *t, const char *s, size_t len, text_buf *out)
{
    text_buf a = {0}, b = {0};
    bool ok = true;
    if (memchr(s, '&', len)) { /* html.unescape returns s itself when there is no '&' */
        ok = text_html_unescape(&a, s, len) && text_html_unescape(&b, a.p ? a.p : "", a.n);
        s = b.p ? b.p : "";
        len = b.n;
    }
    size_t lo = 0, hi = 0;
    a.n = 0;
    if (ok) {
        strip(s, len, &lo, &hi);
        ok = collapse_space(&a, s + lo, hi - lo);
    }
    out->n = 0;
    if (ok) {
        strip(a.p ? a.p : "", a.n, &lo, &hi);
        ok = lower(t, out, (a.p ? a.p : "") + lo, hi - lo);
    }
    text_buf_free(&a);
    text_buf_free(&b);
    return ok;
}

/* ------------------------------------------------------------------ the word pattern */

/* OpenAI's pattern, compiled with re.IGNORECASE by the regex module. Two differences are
 * written into it so that PCRE2 splits as regex does: \s is regex's (White_Space, not PCRE2's
 * \s, which adds U+180E), and U+0345 (COMBINING GREEK YPOGEGRAMMENI), which regex's caseless
 * [\p{L}] and [^\s\p{L}\p{N}] both refuse (it case-folds to a letter), is left out of every
 * word, as regex leaves it. tests/test_clip_tokenizer.c compares every code point. */
static const char word_pattern[] = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|"
                                   "[^\\p{White_Space}\\p{L}\\p{N}\\x{345}]+";

cmcr_status clip_text_init(clip_text *t)
{
    *t = (clip_text){0};
    cmcr_status st = text_compile(word_pattern, PCRE2_CASELESS, &t->words);
    if (st == CMCR_OK) st = text_compile("\\p{Cased}", 0, &t->cased);
    if (st == CMCR_OK) st = text_compile("\\p{Case_Ignorable}", 0, &t->ignorable);
    if (st != CMCR_OK) clip_text_release(t);
    return st;
}

void clip_text_release(clip_text *t)
{
    pcre2_code_free(t->words);
    pcre2_code_free(t->cased);
    pcre2_code_free(t->ignorable);
    *t = (clip_text){0};
}
