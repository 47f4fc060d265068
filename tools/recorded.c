/* recorded.c - a space file's fingerprint, from a gallery's record when it still holds
 * (recorded.h). */
#define _DEFAULT_SOURCE /* realpath */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdio.h>
#include "recorded.h"
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>

/* A folder's stat: the files under it (links followed, as the fingerprint follows them) by
 * relative path, size and modification time, combined in any order (nftw's order is the
 * directory's), so that an unchanged Hugging Face folder is not read again for its
 * fingerprint. Static state: nftw has no user pointer; the CLI is one thread here. */
static uint64_t folder_xor, folder_files;
static size_t folder_root;

static int folder_entry(const char *p, const struct stat *st, int type, struct FTW *f)
{
    (void)f;
    if (type != FTW_F) return 0;
    int64_t v[2] = {(int64_t)st->st_size, (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec};
    uint64_t h = cmcr_hash_bytes(p + folder_root, strlen(p + folder_root), 0);
    folder_xor ^= cmcr_hash_bytes(v, sizeof v, h);
    folder_files++;
    return 0;
}

static void folder_stat(const char *dir, char *out, size_t cap)
{
    folder_xor = folder_files = 0;
    folder_root = strlen(dir);
    if (nftw(dir, folder_entry, 16, 0) == 0)
        snprintf(out, cap, "dir:%llu:%016llx", (unsigned long long)folder_files, (unsigned long long)folder_xor);
}

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
    else if (S_ISDIR(st.st_mode))
        folder_stat(out->path, out->stat, sizeof out->stat);
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

const char *recorded(const cmcr_gallery *g, const char *key)
{
    const char *v = cmcr_gallery_meta(g, key);
    return v && v[0] ? v : NULL;
}

int recorded_check(const char *cmd, const cmcr_gallery *g, const char *gallery, const char *model,
                   const char *const enc[2])
{
    recorded_file rf;
    char key[40];
    const char *want = recorded(g, "model_fingerprint");
    if (recorded_fingerprint(cmd, g, "model", model, &rf)) return 1;
    if (!want || strcmp(want, rf.fp) != 0)
        return cli_error(cmd, 1, "%s was made with another model than %s (fingerprint %s, this one %s): use the model "
                         "it was indexed with", gallery, model, want ? want : "none", rf.fp);
    for (int side = 0; side < 2; side++) {
        char letter = side ? 'b' : 'a';
        snprintf(key, sizeof key, "encoder_%c_fingerprint", letter);
        if (!enc[side] || !(want = recorded(g, key))) continue;
        snprintf(key, sizeof key, "encoder_%c", letter);
        if (recorded_fingerprint(cmd, g, key, enc[side], &rf)) return 1;
        if (strcmp(want, rf.fp) != 0)
            return cli_error(cmd, 1, "%s was made with another side %c encoder than %s (fingerprint %s, this one %s)",
                             gallery, letter, enc[side], want, rf.fp);
    }
    return 0;
}

void recorded_defaults(const cmcr_gallery *g, const char **model, const char *enc[2], const char *tok[2],
                       const char **text_side, const char **precision)
{
    char key[32];
    if (!*model) *model = recorded(g, "model");
    for (int side = 0; side < 2; side++) {
        snprintf(key, sizeof key, "tokenizer_%c", side ? 'b' : 'a');
        if (!tok[side] && !enc[side]) tok[side] = recorded(g, key);
        snprintf(key, sizeof key, "encoder_%c", side ? 'b' : 'a');
        if (!enc[side]) enc[side] = recorded(g, key);
    }
    if (!*text_side) *text_side = recorded(g, "text_side");
    if (!*precision) *precision = recorded(g, "precision");
    if (!*precision) *precision = "f32";
}
