/* json_text.c - strings for the commands' JSON output (json_text.h). */
#include <stdio.h>
#include "json_text.h"
#include "cli.h"

#include <stdbool.h>
#include <stdlib.h>

/* Valid UTF-8 (JSON strings must be); else the printable form is shown. */
static bool is_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 1 : (*p & 0xf0) == 0xe0 ? 2
              : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 3 : -1;
        if (n < 0) return false;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80) return false;
    }
    return true;
}

cJSON *json_text(const char *s)
{
    if (is_utf8(s)) return cJSON_CreateString(s);
    char *shown = cli_printable(s);
    cJSON *j = cJSON_CreateString(shown ? shown : "?");
    free(shown);
    return j;
}

