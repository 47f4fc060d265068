/* recorded.c - a space file's fingerprint, from a gallery's record when it still holds
 * (recorded.h). */
#define _DEFAULT_SOURCE /* realpath */
#include <stdio.h>
#include "recorded.h"
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *meta(const cmcr_gallery *g, const char *key, const char *suffix)
{
    char k[64];
    snprintf(k, sizeof k, "%s%s", key, suffix);
    const char *v = g ? cmcr_gallery_meta(g, k) : NULL;
    return v ? v : "";
}

int recorded_fingerprint(const char *cmd, const cmcr_gallery *g, const char *key, const char *path, recorded_file *out)
{
    struct stat st;
    *out = (recorded_file){0};
    if (!realpath(path, out->path) || stat(out->path, &st) != 0) {
        cmcr_status s = cmcr_fingerprint_path(path, &(uint64_t){0}); /* names the problem */
        return s ? cli_fail(cmd) : cli_error(cmd, 1, "%s: cannot open", path);
    }
    if (S_ISREG(st.st_mode))
        snprintf(out->stat, sizeof out->stat, "%lld:%lld", (long long)st.st_size,
                 (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
    const char *fp = meta(g, key, "_fingerprint");
    if (out->stat[0] && strlen(fp) == 16 && strcmp(meta(g, key, ""), out->path) == 0 &&
        strcmp(meta(g, key, "_stat"), out->stat) == 0) {
        memcpy(out->fp, fp, 17);
        return 0;
    }
    uint64_t h;
    if (cmcr_fingerprint_path(out->path, &h)) return cli_fail(cmd);
    snprintf(out->fp, sizeof out->fp, "%016llx", (unsigned long long)h);
    return 0;
}
