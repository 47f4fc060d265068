/* file.c - whole-file reads, mkdir -p, atomic writes (temporary file, fsync, rename) and the
 * registry of live temporary files that cmcr_remove_temp_files empties on a signal. */
#include "runtime/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cmcr_status file_read_all(const char *path, uint64_t max_bytes, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return core_fail(CMCR_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return core_fail(CMCR_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return core_fail(CMCR_ENOMEM, "%s: file is %lld bytes, more than the limit of %llu", path,
                         (long long)st.st_size, (unsigned long long)max_bytes);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = core_xmalloc(n);
    if (!b) {
        fclose(f);
        return core_fail(CMCR_ENOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    if (fread(b, 1, n, f) != n) {
        free(b);
        fclose(f);
        return core_fail(CMCR_EIO, "%s: read failed", path);
    }
    fclose(f);
    *buf = b;
    *len = n;
    return CMCR_OK;
}

/* ------------------------------------------------------------------ directories */

cmcr_status file_mkdir_p(const char *dir)
{
    if (!dir || !dir[0]) return core_fail(CMCR_EINVAL, "empty directory name");
    char *p = core_strdup(dir);
    if (!p) return core_fail(CMCR_ENOMEM, "%s: out of memory", dir);
    /* Every prefix that ends before a '/' (the root excluded), then the whole name. */
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            cmcr_status st = saved ? core_fail(CMCR_EIO, "%s: cannot create directory %s: %s", dir, p, strerror(errno))
                                   : core_fail(CMCR_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
            free(p);
            return st;
        }
        *s = saved;
        if (!saved) break;
    }
    free(p);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return core_fail(CMCR_EIO, "%s: exists and is not a directory", dir);
    return CMCR_OK;
}

cmcr_status cmcr_mkdir_p(const char *path) { return file_mkdir_p(path); }

/* ------------------------------------------------------------------ atomic files */

/* The temporary files that exist now, for cmcr_remove_temp_files (a signal handler): fixed
 * slots, never freed, each FREE, CLAIMED (its name being copied) or LIVE. */
enum { TEMP_SLOTS = 64, TEMP_NAME_MAX = 4160 };
enum { SLOT_FREE = 0, SLOT_CLAIMED, SLOT_LIVE };
static char temp_names[TEMP_SLOTS][TEMP_NAME_MAX];
static atomic_int temp_state[TEMP_SLOTS];

static int claim_slot(void)
{
    for (int i = 0; i < TEMP_SLOTS; i++) {
        int want = SLOT_FREE;
        if (atomic_compare_exchange_strong(&temp_state[i], &want, SLOT_CLAIMED)) return i;
    }
    return -1;
}

/* Slots whose file is gone (removed by a writer that did not go through file_temp_discard). */
static void reclaim_stale_slots(void)
{
    for (int i = 0; i < TEMP_SLOTS; i++) {
        int want = SLOT_LIVE; /* a live slot's name does not change: compare, then free it */
        if (atomic_load(&temp_state[i]) == SLOT_LIVE && access(temp_names[i], F_OK) != 0)
            atomic_compare_exchange_strong(&temp_state[i], &want, SLOT_FREE);
    }
}

static void register_temp(const char *tmp)
{
    if (strlen(tmp) >= TEMP_NAME_MAX) return; /* not removed on a signal; still written atomically */
    int i = claim_slot();
    if (i < 0) {
        reclaim_stale_slots();
        i = claim_slot();
    }
    if (i < 0) return;
    memcpy(temp_names[i], tmp, strlen(tmp) + 1);
    atomic_store(&temp_state[i], SLOT_LIVE);
}

static void unregister_temp(const char *tmp)
{
    for (int i = 0; i < TEMP_SLOTS; i++) {
        int want = SLOT_LIVE; /* never marks another thread's live slot, even for an instant */
        if (atomic_load(&temp_state[i]) == SLOT_LIVE && strcmp(temp_names[i], tmp) == 0)
            atomic_compare_exchange_strong(&temp_state[i], &want, SLOT_FREE);
    }
}

void cmcr_remove_temp_files(void)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temp_state[i]) == SLOT_LIVE) unlink(temp_names[i]);
}

char *file_temp_name(const char *path)
{
    static atomic_uint counter;
    unsigned n = atomic_fetch_add(&counter, 1);
    size_t len = strlen(path) + 64;
    char *tmp = malloc(len);
    if (tmp) snprintf(tmp, len, "%s.tmp.%ld.%u", path, (long)getpid(), n);
    if (tmp) register_temp(tmp); /* before the file exists: a signal never misses it */
    return tmp;
}

void file_temp_discard(const char *tmp)
{
    unlink(tmp);
    unregister_temp(tmp);
}

static void fsync_parent_dir(const char *path)
{
    char *dir = core_strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash) {
        if (slash == dir) slash[1] = '\0';
        else *slash = '\0';
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some filesystems refuse fsync on directories */
        close(fd);
    }
    free(dir);
}

cmcr_status file_commit_temp(const char *tmp, const char *path)
{
    int fd = open(tmp, O_RDONLY);
    if (fd < 0) {
        cmcr_status st = core_fail(CMCR_EIO, "%s: cannot reopen temporary file %s: %s", path, tmp,
                                   strerror(errno));
        file_temp_discard(tmp);
        return st;
    }
    if (fsync(fd) != 0) {
        cmcr_status st = core_fail(CMCR_EIO, "%s: fsync failed: %s", path, strerror(errno));
        close(fd);
        file_temp_discard(tmp);
        return st;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        cmcr_status st = core_fail(CMCR_EIO, "%s: cannot rename %s into place: %s", path, tmp,
                                   strerror(errno));
        file_temp_discard(tmp);
        return st;
    }
    unregister_temp(tmp);
    fsync_parent_dir(path);
    return CMCR_OK;
}

cmcr_status afile_open(afile *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->path = core_strdup(path);
    a->tmp = file_temp_name(path);
    if (!a->path || !a->tmp) {
        afile_abort(a);
        return core_fail(CMCR_ENOMEM, "%s: out of memory", path);
    }
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        cmcr_status st = core_fail(CMCR_EIO, "%s: cannot create %s: %s", path, a->tmp, strerror(errno));
        afile_abort(a);
        return st;
    }
    return CMCR_OK;
}

cmcr_status afile_write(afile *a, const void *data, size_t n)
{
    if (n && fwrite(data, 1, n, a->f) != n)
        return core_fail(CMCR_EIO, "%s: write failed: %s", a->path, strerror(errno));
    return CMCR_OK;
}

cmcr_status afile_commit(afile *a)
{
    cmcr_status st = CMCR_OK;
    if (fflush(a->f) != 0) st = core_fail(CMCR_EIO, "%s: write failed: %s", a->path, strerror(errno));
    if (st == CMCR_OK && fsync(fileno(a->f)) != 0)
        st = core_fail(CMCR_EIO, "%s: fsync failed: %s", a->path, strerror(errno));
    if (fclose(a->f) != 0 && st == CMCR_OK)
        st = core_fail(CMCR_EIO, "%s: close failed: %s", a->path, strerror(errno));
    a->f = NULL;
    if (st == CMCR_OK && rename(a->tmp, a->path) != 0)
        st = core_fail(CMCR_EIO, "%s: cannot rename %s into place: %s", a->path, a->tmp, strerror(errno));
    if (st == CMCR_OK) fsync_parent_dir(a->path);
    afile_abort(a); /* frees names; removes the temp file if it is still there */
    return st;
}

void afile_abort(afile *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) file_temp_discard(a->tmp);
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
}

cmcr_status cmcr_write_file(const char *path, const void *data, size_t len)
{
    afile a;
    cmcr_status st = afile_open(&a, path);
    if (!st) st = afile_write(&a, data, len);
    if (!st) st = afile_commit(&a);
    if (st && a.path) afile_abort(&a);
    return st;
}

cmcr_status file_stream_size(FILE *f, const char *name, uint64_t *size)
{
    struct stat st;
    int fd = fileno(f);
    if (fd >= 0) { /* a file: must be a regular one */
        if (fstat(fd, &st) != 0) return core_fail(CMCR_EIO, "%s: cannot stat: %s", name, strerror(errno));
        if (!S_ISREG(st.st_mode)) return core_fail(CMCR_EIO, "%s: not a regular file", name);
        *size = (uint64_t)st.st_size;
        return CMCR_OK;
    }
    off_t at = ftello(f), end; /* a memory stream (fmemopen) */
    if (at < 0 || fseeko(f, 0, SEEK_END) != 0 || (end = ftello(f)) < 0 || fseeko(f, at, SEEK_SET) != 0)
        return core_fail(CMCR_EIO, "%s: cannot tell the size of the stream", name);
    *size = (uint64_t)end;
    return CMCR_OK;
}

FILE *file_open_memory(const void *data, size_t len)
{
    return len ? fmemopen((void *)data, len, "rb") : NULL; /* read-only: data is never written */
}
