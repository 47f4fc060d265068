/* textfile.h - a .txt file as one text (index's inputs, search's --query-file): its whole
 * content, leading and trailing white space trimmed; at most TEXT_FILE_MAX bytes, no NUL byte,
 * valid UTF-8, not empty. */
#ifndef CMCR_TEXTFILE_H
#define CMCR_TEXTFILE_H
#include <stddef.h>

#define TEXT_FILE_MAX ((size_t)1 << 20)

/* The text (malloc'd), or NULL with *why saying what is wrong ("an empty text", ...). */
char *text_file_read(const char *path, const char **why);
#endif
