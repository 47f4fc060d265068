/* beside.h - the files an encoder finds next to its weights (a tokenizer's, a config's). */
#ifndef CMCR_ENCODERS_BESIDE_H
#define CMCR_ENCODERS_BESIDE_H

#include <stdbool.h>
#include <stddef.h>

bool beside_is_dir(const char *path);
bool beside_is_file(const char *path);
/* dir + "/" + name, malloc'd (NULL when out of memory). */
char *beside_join(const char *dir, const char *name);
/* The first of names (n of them) that is a regular file in model's folder (the model itself
 * when it is a folder, else its file's folder), malloc'd; NULL when there is none. */
char *beside_find(const char *model, const char *const *names, size_t n);

#endif
