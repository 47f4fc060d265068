/* textfile.c - a .txt file as one text (textfile.h). */
#include "textfile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF). */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!len || i + len > n) return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return false;
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0) || (c == 0xf0 && s[i + 1] < 0x90) ||
            (c == 0xf4 && s[i + 1] >= 0x90))
            return false;
        i += len;
    }
    return true;
}

static bool space_char(char c) { return c && strchr(" \t\r\n\v\f", c) != NULL; }

char *text_file_read(const char *path, const char **why)
{
    FILE *f = fopen(path, "rb");
    if (!f) return *why = strerror(errno), NULL;
    char *buf = malloc(TEXT_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, TEXT_FILE_MAX + 1, f) : 0;
    bool failed = ferror(f);
    fclose(f);
    *why = !buf ? "out of memory" : failed ? "read failed" : n > TEXT_FILE_MAX ? "a text of more than 1 MiB"
         : memchr(buf, '\0', n) ? "contains a NUL byte" : !utf8_ok((const unsigned char *)buf, n) ? "not UTF-8 text"
         : NULL;
    if (*why) return free(buf), NULL;
    size_t b = 0;
    while (n > 0 && space_char(buf[n - 1])) n--;
    while (b < n && space_char(buf[b])) b++;
    memmove(buf, buf + b, n - b);
    buf[n - b] = '\0';
    if (!buf[0]) return *why = "an empty text", free(buf), NULL;
    return buf;
}
