/* json_text.h - a path or text as a JSON string: itself when it is valid UTF-8 (JSON strings
 * must be; file names need not be), else its printable form (cli_printable). */
#ifndef CMCR_JSON_TEXT_H
#define CMCR_JSON_TEXT_H
#include <cjson/cJSON.h>

cJSON *json_text(const char *s);
#endif
