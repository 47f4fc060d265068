/* core.c - errors, logging, checked arithmetic, strict numbers, allocation, small string and
 * clock helpers. */
#include "runtime/core.h"

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
#include <time.h>
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

cmcr_status core_fail(cmcr_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    core_log(CMCR_LOG_DEBUG, "error: %s", last_error);
    return st;
}

cmcr_status core_fail_prefix(cmcr_status st, const char *prefix)
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

void core_log(cmcr_log_level level, const char *fmt, ...)
{
    if (!log_fn) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}

bool core_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

bool core_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

bool core_shape_bytes(const int64_t *shape, int ndim, size_t elem, uint64_t *out)
{
    uint64_t n = elem;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !core_mul_u64(n, (uint64_t)shape[i], &n)) return false;
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
    if (*p < '0' || *p > '9') return core_fail(CMCR_EINVAL, "'%s' is not an integer", s);
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if (!core_mul_u64(v, 10, &v) || !core_add_u64(v, (uint64_t)(*p - '0'), &v))
            return core_fail(CMCR_EINVAL, "'%s' is too large", s);
    if (*p) return core_fail(CMCR_EINVAL, "'%s' is not an integer", s);
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
        return core_fail(CMCR_EINVAL, "'%s' is not between %lld and %lld", s, (long long)lo, (long long)hi);
    int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag; /* two's complement: -2^63 included */
    if (v < lo || v > hi)
        return core_fail(CMCR_EINVAL, "'%s' is not between %lld and %lld", s, (long long)lo, (long long)hi);
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
    if (!*s || isspace((unsigned char)*s)) return core_fail(CMCR_EINVAL, "'%s' is not a number", s);
    double v = strtod(s, &end);
    if (*end) return core_fail(CMCR_EINVAL, "'%s' is not a number", s);
    if (!isfinite(v)) return core_fail(CMCR_EINVAL, "'%s' is not a finite number", s); /* (underflow is fine) */
    if (v < lo || v > hi) return core_fail(CMCR_EINVAL, "'%s' is not between %g and %g", s, lo, hi);
    *out = v;
    return CMCR_OK;
}

void *core_xmalloc(size_t n) { return malloc(n ? n : 1); }

char *core_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

const char *cmcr_version(void) { return CMCR_VERSION_STRING; }

bool core_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

double core_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double cmcr_now_seconds(void) { return core_now_seconds(); }
