/* fingerprint.c - content fingerprints of files and folders (cmcr_fingerprint_path): what a
 * gallery records of its model, its encoders and each of its rows, to tell later whether they
 * changed. A change detector, not a proof: cmcr_hash_bytes is fast and well mixed but not
 * cryptographic, so someone who wants two different files with one fingerprint can make them.
 *
 * A regular file: its bytes in chunks of FP_CHUNK, each hashed with the previous chunk's hash
 * as seed, then the number of bytes read (8 bytes, little-endian). A folder (a Hugging Face
 * model folder): for each entry in byte order of the names, hidden ones (".git") left out,
 * symbolic links followed, the name with its NUL, then the entry's own fingerprint (8 bytes,
 * little-endian); files and folders start from different seeds, so a file never equals a
 * folder. Memory: one chunk buffer, and one folder's names per level. */
#define _DEFAULT_SOURCE /* O_CLOEXEC, O_NONBLOCK and fdopendir with _POSIX_C_SOURCE */
#include "runtime/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FP_CHUNK ((size_t)1 << 20)
#define FP_FILE_SEED 0x636d63722d66696cull /* "cmcr-fil" */
#define FP_DIR_SEED 0x636d63722d646972ull  /* "cmcr-dir" */
#define FP_MAX_DEPTH 32 /* folders inside folders: beyond, a symlink loop (before the kernel's 40 links) */

static uint64_t hash_u64(uint64_t v, uint64_t seed)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    return cmcr_hash_bytes(b, 8, seed);
}

/* Up to FP_CHUNK bytes of fd into buf, fewer only at the end of the file, however read()
 * splits them (network file systems return short reads): *got bytes. */
static cmcr_status read_chunk(int fd, const char *path, unsigned char *buf, size_t *got)
{
    *got = 0;
    while (*got < FP_CHUNK) {
        ssize_t n = read(fd, buf + *got, FP_CHUNK - *got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return core_fail(CMCR_EIO, "%s: read failed: %s", path, strerror(errno));
        if (n == 0) break;
        *got += (size_t)n;
    }
    return CMCR_OK;
}

/* The open regular file fd, read to its end in whole chunks through buf. */
static cmcr_status fingerprint_fd(int fd, const char *path, unsigned char *buf, uint64_t *out)
{
    uint64_t h = FP_FILE_SEED, size = 0;
    for (;;) {
        size_t n;
        cmcr_status st = read_chunk(fd, path, buf, &n);
        if (st) return st;
        if (n == 0) break;
        h = cmcr_hash_bytes(buf, n, h);
        size += (uint64_t)n;
        if (n < FP_CHUNK) break;
    }
    *out = hash_u64(size, h);
    return CMCR_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in folder dir (hidden ones left out), sorted: a malloc'd array of n malloc'd names. */
static cmcr_status list_folder(DIR *dir, const char *path, char ***names, size_t *n)
{
    char **v = NULL;
    size_t count = 0, cap = 0;
    cmcr_status st = CMCR_OK;
    struct dirent *e;
    errno = 0;
    while (!st && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 16;
            char **w = realloc(v, cap * sizeof *w);
            if (!w) st = core_fail(CMCR_ENOMEM, "%s: out of memory listing the folder", path);
            else v = w;
        }
        if (!st && !(v[count] = core_strdup(e->d_name))) st = core_fail(CMCR_ENOMEM, "%s: out of memory", path);
        if (!st) count++;
        errno = 0;
    }
    if (!st && errno) st = core_fail(CMCR_EIO, "%s: cannot list the folder: %s", path, strerror(errno));
    if (st) {
        for (size_t i = 0; i < count; i++) free(v[i]);
        free(v);
        return st;
    }
    if (count) qsort(v, count, sizeof *v, by_name);
    *names = v;
    *n = count;
    return CMCR_OK;
}

static cmcr_status fingerprint_at(const char *path, int depth, unsigned char *buf, uint64_t *out);

static cmcr_status fingerprint_folder(DIR *dir, const char *path, int depth, unsigned char *buf, uint64_t *out)
{
    if (depth >= FP_MAX_DEPTH)
        return core_fail(CMCR_EINVAL, "%s: folders nested more than %d deep (a symbolic link loop?)", path,
                         FP_MAX_DEPTH);
    char **names = NULL;
    size_t n = 0;
    cmcr_status st = list_folder(dir, path, &names, &n);
    uint64_t h = FP_DIR_SEED;
    size_t plen = strlen(path);
    for (size_t i = 0; !st && i < n; i++) {
        size_t nlen = strlen(names[i]);
        char *child = core_xmalloc(plen + nlen + 2);
        if (!child) {
            st = core_fail(CMCR_ENOMEM, "%s: out of memory", path);
            break;
        }
        memcpy(child, path, plen);
        child[plen] = '/';
        memcpy(child + plen + 1, names[i], nlen + 1);
        uint64_t f = 0;
        st = fingerprint_at(child, depth + 1, buf, &f);
        free(child);
        h = hash_u64(f, cmcr_hash_bytes(names[i], nlen + 1, h));
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (!st) *out = h;
    return st;
}

/* Opened without blocking (a FIFO would wait for a writer), then told apart by fstat. */
static cmcr_status fingerprint_at(const char *path, int depth, unsigned char *buf, uint64_t *out)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return core_fail(CMCR_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        cmcr_status st = core_fail(CMCR_EIO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    if (S_ISREG(sb.st_mode)) {
        cmcr_status st = fingerprint_fd(fd, path, buf, out);
        close(fd);
        return st;
    }
    if (!S_ISDIR(sb.st_mode)) {
        close(fd);
        return core_fail(CMCR_EIO, "%s: not a regular file or a folder", path);
    }
    DIR *dir = fdopendir(fd); /* owns fd from here */
    if (!dir) {
        cmcr_status st = core_fail(CMCR_EIO, "%s: cannot list the folder: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    cmcr_status st = fingerprint_folder(dir, path, depth, buf, out);
    closedir(dir);
    return st;
}

cmcr_status cmcr_fingerprint_path(const char *path, uint64_t *out)
{
    if (!path || !out) return core_fail(CMCR_EINVAL, "fingerprint: path and out are required");
    if (!path[0]) return core_fail(CMCR_EINVAL, "fingerprint: empty path");
    unsigned char *buf = core_xmalloc(FP_CHUNK);
    if (!buf) return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    uint64_t h = 0;
    cmcr_status st = fingerprint_at(path, 0, buf, &h);
    free(buf);
    if (!st) *out = h;
    return st;
}
