/* beside.c - the files an encoder finds next to its weights (see beside.h). */
#include "encoders/beside.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool beside_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool beside_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *beside_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* The folder a model lives in, malloc'd: the model itself when it is one, else its file's
 * folder. */
static char *model_dir(const char *model)
{
    if (beside_is_dir(model)) return strdup(model);
    const char *slash = strrchr(model, '/');
    if (!slash) return strdup(".");
    size_t n = slash == model ? 1 : (size_t)(slash - model);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, model, n);
        d[n] = '\0';
    }
    return d;
}

char *beside_find(const char *model, const char *const *names, size_t n)
{
    char *dir = model_dir(model), *path = NULL;
    for (size_t i = 0; dir && !path && i < n; i++) {
        path = beside_join(dir, names[i]);
        if (path && !beside_is_file(path)) {
            free(path);
            path = NULL;
        }
    }
    free(dir);
    return path;
}
