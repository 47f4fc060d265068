/* core.h - what every module of the library uses: errors, the log, checked arithmetic and
 * allocation. Internal (not installed); see docs/architecture.md for the conventions. */
#ifndef CMCR_RUNTIME_CORE_H
#define CMCR_RUNTIME_CORE_H

#include "cmcr.h"

#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define CMCR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CMCR_PRINTF(a, b)
#endif

/* Record the calling thread's error message and return st. */
cmcr_status core_fail(cmcr_status st, const char *fmt, ...) CMCR_PRINTF(2, 3);
/* Prefix the current error message with "prefix: " (keeps the status). */
cmcr_status core_fail_prefix(cmcr_status st, const char *prefix);
void core_log(cmcr_log_level level, const char *fmt, ...) CMCR_PRINTF(2, 3);

/* Overflow-checked arithmetic: return false on overflow. */
bool core_mul_u64(uint64_t a, uint64_t b, uint64_t *out);
bool core_add_u64(uint64_t a, uint64_t b, uint64_t *out);
/* Product of shape[0..ndim) (each >= 0) times elem; false on overflow or negative dims. */
bool core_shape_bytes(const int64_t *shape, int ndim, size_t elem, uint64_t *out);

void *core_xmalloc(size_t n); /* malloc(n ? n : 1); NULL on failure */
char *core_strdup(const char *s);
/* Whether s ends with suffix. */
bool core_ends_with(const char *s, const char *suffix);

/* Seconds on the monotonic clock, for durations (cmcr_now_seconds). */
double core_now_seconds(void);

#endif
