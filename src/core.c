/* core.c - errors, logging, checked arithmetic, whole-file reads and atomic writes. */
#include "internal.h"

#include <cblas.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local char last_error[1024];
static cmcr_log_fn log_fn;
static void *log_user;

const char *cmcr_status_name(cmcr_status s)
{
    switch (s) {
    case CMCR_OK: return "ok";
    case CMCR_EINVAL: return "invalid argument";
    case CMCR_EIO: return "i/o error";
    case CMCR_EFORMAT: return "malformed file";
    case CMCR_EUNSUPPORTED: return "unsupported";
    case CMCR_ESHAPE: return "shape mismatch";
    case CMCR_EVALUE: return "bad value";
    case CMCR_ENOMEM: return "out of memory";
    case CMCR_EINTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

const char *cmcr_last_error(void) { return last_error; }

cmcr_status cmcr_fail(cmcr_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    cmcr_log(CMCR_LOG_DEBUG, "error: %s", last_error);
    return st;
}

cmcr_status cmcr_fail_prefix(cmcr_status st, const char *prefix)
{
    char tmp[sizeof last_error];
    size_t n = strlen(prefix);
    if (n > sizeof tmp - 3) n = sizeof tmp - 3;
    memcpy(tmp, prefix, n);
    memcpy(tmp + n, ": ", 2);
    size_t rest = sizeof tmp - n - 3, m = strlen(last_error);
    if (m > rest) m = rest;
    memcpy(tmp + n + 2, last_error, m);
    tmp[n + 2 + m] = '\0';
    memcpy(last_error, tmp, sizeof tmp);
    return st;
}

void cmcr_set_log(cmcr_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

void cmcr_log(cmcr_log_level level, const char *fmt, ...)
{
    if (!log_fn) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}

bool cmcr_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

bool cmcr_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

bool cmcr_shape_bytes(const int64_t *shape, int ndim, size_t elem, uint64_t *out)
{
    uint64_t n = elem;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !cmcr_mul_u64(n, (uint64_t)shape[i], &n)) return false;
    }
    *out = n;
    return true;
}

/* ------------------------------------------------------------------ strict numbers */

/* The digits of s (after an optional '-' when allowed) as a magnitude; nothing else may follow. */
static cmcr_status parse_magnitude(const char *s, int allow_minus, int *neg, uint64_t *mag)
{
    const char *p = s;
    *neg = allow_minus && *p == '-';
    p += *neg;
    if (*p < '0' || *p > '9') return cmcr_fail(CMCR_EINVAL, "'%s' is not an integer", s);
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if (!cmcr_mul_u64(v, 10, &v) || !cmcr_add_u64(v, (uint64_t)(*p - '0'), &v))
            return cmcr_fail(CMCR_EINVAL, "'%s' is too large", s);
    if (*p) return cmcr_fail(CMCR_EINVAL, "'%s' is not an integer", s);
    *mag = v;
    return CMCR_OK;
}

cmcr_status cmcr_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    int neg = 0;
    uint64_t mag = 0;
    cmcr_status st = parse_magnitude(s, 1, &neg, &mag);
    if (st) return st;
    if (mag > (uint64_t)INT64_MAX + (uint64_t)neg)
        return cmcr_fail(CMCR_EINVAL, "'%s' is not between %lld and %lld", s, (long long)lo, (long long)hi);
    int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag; /* two's complement: -2^63 included */
    if (v < lo || v > hi)
        return cmcr_fail(CMCR_EINVAL, "'%s' is not between %lld and %lld", s, (long long)lo, (long long)hi);
    *out = v;
    return CMCR_OK;
}

cmcr_status cmcr_parse_u64(const char *s, uint64_t *out)
{
    int neg;
    return parse_magnitude(s, 0, &neg, out);
}

cmcr_status cmcr_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    if (!*s || isspace((unsigned char)*s)) return cmcr_fail(CMCR_EINVAL, "'%s' is not a number", s);
    errno = 0;
    double v = strtod(s, &end);
    if (*end) return cmcr_fail(CMCR_EINVAL, "'%s' is not a number", s);
    if (errno == ERANGE || !isfinite(v)) return cmcr_fail(CMCR_EINVAL, "'%s' is not a finite number", s);
    if (v < lo || v > hi) return cmcr_fail(CMCR_EINVAL, "'%s' is not between %g and %g", s, lo, hi);
    *out = v;
    return CMCR_OK;
}

void *cmcr_xmalloc(size_t n) { return malloc(n ? n : 1); }

char *cmcr_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

cmcr_status cmcr_read_file(const char *path, uint64_t max_bytes, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cmcr_fail(CMCR_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cmcr_fail(CMCR_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return cmcr_fail(CMCR_ENOMEM, "%s: file is %lld bytes, more than the limit of %llu", path,
                         (long long)st.st_size, (unsigned long long)max_bytes);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = cmcr_xmalloc(n);
    if (!b) {
        fclose(f);
        return cmcr_fail(CMCR_ENOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    if (fread(b, 1, n, f) != n) {
        free(b);
        fclose(f);
        return cmcr_fail(CMCR_EIO, "%s: read failed", path);
    }
    fclose(f);
    *buf = b;
    *len = n;
    return CMCR_OK;
}

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

/* Slots whose file is gone (removed by a writer that did not go through cmcr_temp_discard). */
static void reclaim_stale_slots(void)
{
    for (int i = 0; i < TEMP_SLOTS; i++) {
        int want = SLOT_LIVE;
        if (!atomic_compare_exchange_strong(&temp_state[i], &want, SLOT_CLAIMED)) continue;
        atomic_store(&temp_state[i], access(temp_names[i], F_OK) == 0 ? SLOT_LIVE : SLOT_FREE);
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
        int want = SLOT_LIVE;
        if (!atomic_compare_exchange_strong(&temp_state[i], &want, SLOT_CLAIMED)) continue;
        atomic_store(&temp_state[i], strcmp(temp_names[i], tmp) == 0 ? SLOT_FREE : SLOT_LIVE);
    }
}

void cmcr_remove_temp_files(void)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temp_state[i]) == SLOT_LIVE) unlink(temp_names[i]);
}

char *cmcr_temp_name(const char *path)
{
    static atomic_uint counter;
    unsigned n = atomic_fetch_add(&counter, 1);
    size_t len = strlen(path) + 64;
    char *tmp = malloc(len);
    if (tmp) snprintf(tmp, len, "%s.tmp.%ld.%u", path, (long)getpid(), n);
    if (tmp) register_temp(tmp); /* before the file exists: a signal never misses it */
    return tmp;
}

void cmcr_temp_discard(const char *tmp)
{
    unlink(tmp);
    unregister_temp(tmp);
}

static void fsync_parent_dir(const char *path)
{
    char *dir = cmcr_strdup(path);
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

cmcr_status cmcr_commit_temp(const char *tmp, const char *path)
{
    int fd = open(tmp, O_RDONLY);
    if (fd < 0) {
        cmcr_status st = cmcr_fail(CMCR_EIO, "%s: cannot reopen temporary file %s: %s", path, tmp,
                                   strerror(errno));
        cmcr_temp_discard(tmp);
        return st;
    }
    if (fsync(fd) != 0) {
        cmcr_status st = cmcr_fail(CMCR_EIO, "%s: fsync failed: %s", path, strerror(errno));
        close(fd);
        cmcr_temp_discard(tmp);
        return st;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        cmcr_status st = cmcr_fail(CMCR_EIO, "%s: cannot rename %s into place: %s", path, tmp,
                                   strerror(errno));
        cmcr_temp_discard(tmp);
        return st;
    }
    unregister_temp(tmp);
    fsync_parent_dir(path);
    return CMCR_OK;
}

cmcr_status cmcr_afile_open(cmcr_afile *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->path = cmcr_strdup(path);
    a->tmp = cmcr_temp_name(path);
    if (!a->path || !a->tmp) {
        cmcr_afile_abort(a);
        return cmcr_fail(CMCR_ENOMEM, "%s: out of memory", path);
    }
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        cmcr_status st = cmcr_fail(CMCR_EIO, "%s: cannot create %s: %s", path, a->tmp, strerror(errno));
        cmcr_afile_abort(a);
        return st;
    }
    return CMCR_OK;
}

cmcr_status cmcr_afile_write(cmcr_afile *a, const void *data, size_t n)
{
    if (n && fwrite(data, 1, n, a->f) != n)
        return cmcr_fail(CMCR_EIO, "%s: write failed: %s", a->path, strerror(errno));
    return CMCR_OK;
}

cmcr_status cmcr_afile_commit(cmcr_afile *a)
{
    cmcr_status st = CMCR_OK;
    if (fflush(a->f) != 0) st = cmcr_fail(CMCR_EIO, "%s: write failed: %s", a->path, strerror(errno));
    if (st == CMCR_OK && fsync(fileno(a->f)) != 0)
        st = cmcr_fail(CMCR_EIO, "%s: fsync failed: %s", a->path, strerror(errno));
    if (fclose(a->f) != 0 && st == CMCR_OK)
        st = cmcr_fail(CMCR_EIO, "%s: close failed: %s", a->path, strerror(errno));
    a->f = NULL;
    if (st == CMCR_OK && rename(a->tmp, a->path) != 0)
        st = cmcr_fail(CMCR_EIO, "%s: cannot rename %s into place: %s", a->path, a->tmp, strerror(errno));
    if (st == CMCR_OK) fsync_parent_dir(a->path);
    cmcr_afile_abort(a); /* frees names; removes the temp file if it is still there */
    return st;
}

void cmcr_afile_abort(cmcr_afile *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) cmcr_temp_discard(a->tmp);
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
}

const char *cmcr_blas_core(void) { return openblas_get_corename(); }
int cmcr_blas_threads(void) { return openblas_get_num_threads(); }

const char *cmcr_blas_pick_core(const char *current, int has_avx512, int has_avx2_fma)
{
    /* OpenBLAS's generic fallbacks for x86-64 CPUs it does not know. */
    static const char *const slow[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
                                       "Katmai", "Coppermine", "Northwood", "Banias", "Barcelona", "Opteron"};
    int is_slow = 0;
    for (size_t i = 0; i < sizeof slow / sizeof *slow; i++)
        if (current && strcmp(current, slow[i]) == 0) is_slow = 1;
    if (!is_slow) return NULL;
    if (has_avx512) return "SkylakeX";
    if (has_avx2_fma) return "Haswell";
    return NULL;
}

const char *cmcr_blas_better_core(const char *current)
{
    if (getenv("OPENBLAS_CORETYPE")) return NULL; /* never override the user's choice */
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cmcr_blas_pick_core(current ? current : openblas_get_corename(), avx512, avx2);
}
