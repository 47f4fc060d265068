/* fuzz_common.h - shared by the libFuzzer targets: the parsers take paths, so each input is
 * written to a per-process in-memory file (memfd_create, opened again through
 * /proc/self/fd/N) or, where memfd is unavailable, to /tmp/cmcr-fuzz-<pid>. */
#ifndef CMCR_FUZZ_COMMON_H
#define CMCR_FUZZ_COMMON_H
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static int fuzz_fd = -1;
static char fuzz_path[64];

static void fuzz_cleanup(void)
{
    if (fuzz_fd >= 0 && fuzz_path[0] == '/' && fuzz_path[1] == 't') unlink(fuzz_path);
}

/* Replace the file's contents with data; returns its path, or NULL on failure. */
static const char *fuzz_write_input(const uint8_t *data, size_t size)
{
    if (fuzz_fd < 0) {
        fuzz_fd = memfd_create("cmcr-fuzz", 0);
        if (fuzz_fd >= 0) {
            snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
        } else {
            snprintf(fuzz_path, sizeof fuzz_path, "/tmp/cmcr-fuzz-%ld", (long)getpid());
            fuzz_fd = open(fuzz_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
            if (fuzz_fd < 0) return NULL;
            atexit(fuzz_cleanup);
        }
    }
    if (ftruncate(fuzz_fd, 0) != 0) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fuzz_fd, data + done, size - done, (off_t)done);
        if (w <= 0) return NULL;
        done += (size_t)w;
    }
    return fuzz_path;
}
#endif
