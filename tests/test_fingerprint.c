/* test_fingerprint.c - cmcr_fingerprint_path: the definition (a file's chunks chained through
 * cmcr_hash_bytes, then its size), what changes it and what does not (names, times, hidden
 * entries, creation order), folders, symbolic links, and the refusals. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK ((size_t)1 << 20)
#define FILE_SEED 0x636d63722d66696cull /* "cmcr-fil", as docs/search.md gives it */

static uint64_t fp(const char *path)
{
    uint64_t h = 0;
    cmcr_status st = cmcr_fingerprint_path(path, &h);
    if (st) printf("fingerprint %s: %s\n", path, cmcr_last_error());
    assert_int_equal(st, CMCR_OK);
    return h;
}

static uint64_t hash_u64(uint64_t v, uint64_t seed)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    return cmcr_hash_bytes(b, 8, seed);
}

static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(i * 131 + (i >> 11));
    return b;
}

/* The documented definition, for a file of 2.5 MiB + 3 bytes (three chunks) and an empty one. */
static void test_file_definition(void **state)
{
    (void)state;
    size_t n = 5 * CHUNK / 2 + 3;
    unsigned char *b = pattern(n);
    char *p = tu_path("big.bin");
    tu_write_file(p, b, n);
    uint64_t h = FILE_SEED;
    for (size_t at = 0; at < n; at += CHUNK) h = cmcr_hash_bytes(b + at, n - at < CHUNK ? n - at : CHUNK, h);
    assert_true(fp(p) == hash_u64(n, h));
    char *e = tu_path("empty.bin");
    tu_write_file(e, "", 0);
    assert_true(fp(e) == hash_u64(0, FILE_SEED));
    /* One byte changed, one byte more, one byte less: each a new fingerprint. */
    uint64_t before = fp(p);
    b[CHUNK + 5] ^= 1;
    tu_write_file(p, b, n);
    uint64_t changed = fp(p);
    assert_true(changed != before);
    b[CHUNK + 5] ^= 1;
    tu_write_file(p, b, n - 1);
    assert_true(fp(p) != before);
    tu_write_file(p, b, n);
    assert_true(fp(p) == before);
    free(b);
    free(p);
    free(e);
}

/* Names and times do not count: a copy, touched, has the same fingerprint. */
static void test_file_names_and_times(void **state)
{
    (void)state;
    char *a = tu_path("a.txt"), *b = tu_path("b.txt");
    tu_write_file(a, "hello gallery\n", 14);
    assert_int_equal(tu_system("cp '%s' '%s' && touch -d '2001-02-03 04:05:06' '%s'", a, b, b), 0);
    assert_true(fp(a) == fp(b));
    tu_write_file(b, "hello gallerz\n", 14);
    assert_true(fp(a) != fp(b));
    free(a);
    free(b);
}

/* d/config.json, d/sub/w.bin (+ extra commands run in d afterwards). */
static char *make_folder(const char *name, const char *extra)
{
    char *d = tu_path(name);
    assert_int_equal(tu_system("mkdir -p '%s/sub' && cd '%s' && printf '{\"a\": 1}' > config.json && "
                               "printf 'weights' > sub/w.bin %s", d, d, extra),
                     0);
    return d;
}

static void test_folders(void **state)
{
    (void)state;
    char *d1 = make_folder("f1", ""), *d2 = tu_path("f2");
    uint64_t h1 = fp(d1);
    /* The same entries created in the other order, later, with a hidden folder beside them. */
    assert_int_equal(tu_system("mkdir -p '%s/sub' '%s/.git' && cd '%s' && printf 'weights' > sub/w.bin && "
                               "sleep 0.01 && printf '{\"a\": 1}' > config.json && echo x > .git/HEAD && "
                               "echo y > sub/.hidden", d2, d2, d2), 0);
    assert_true(fp(d2) == h1);
    /* A symbolic link is followed: sub/w.bin as a link to a file with the same bytes. */
    char *d3 = make_folder("f3", "&& printf 'weights' > ../outside.bin && rm sub/w.bin && ln -s ../../outside.bin sub/w.bin");
    assert_true(fp(d3) == h1);
    /* A renamed entry, changed content deep inside, an added file: each changes it. */
    char *d4 = make_folder("f4", "&& mv config.json config2.json");
    assert_true(fp(d4) != h1);
    char *d5 = make_folder("f5", "&& printf 'weightz' > sub/w.bin");
    assert_true(fp(d5) != h1);
    char *d6 = make_folder("f6", "&& touch sub/empty");
    assert_true(fp(d6) != h1);
    /* A file is never its folder: the folder's only file, alone, differs from the folder. */
    char *w = tu_path("f1/sub/w.bin"), *sub = tu_path("f1/sub");
    assert_true(fp(w) != fp(sub));
    /* An empty folder has a fingerprint too, and an empty file another. */
    char *empty = tu_path("f7");
    assert_int_equal(tu_system("mkdir -p '%s'", empty), 0);
    char *ef = tu_path("f7.bin");
    tu_write_file(ef, "", 0);
    assert_true(fp(empty) != fp(ef));
    free(d1), free(d2), free(d3), free(d4), free(d5), free(d6), free(w), free(sub), free(empty), free(ef);
}

static void expect_refused(const char *label, const char *path, cmcr_status want, const char *needle)
{
    uint64_t h = 42;
    cmcr_status got = cmcr_fingerprint_path(path, &h);
    printf("MSG\t%s\t%s\t%s\n", label, cmcr_status_name(got), cmcr_last_error());
    assert_int_equal(got, want);
    assert_true(h == 42);
    assert_non_null(strstr(cmcr_last_error(), needle));
    assert_null(strchr(cmcr_last_error(), '\n'));
}

static void test_refusals(void **state)
{
    (void)state;
    char *missing = tu_path("no-such-file");
    expect_refused("missing file", missing, CMCR_EIO, "no-such-file: cannot open");
    char *fifo = tu_path("a.fifo");
    assert_int_equal(tu_system("mkfifo '%s'", fifo), 0);
    expect_refused("a FIFO", fifo, CMCR_EIO, "a.fifo: not a regular file or a folder");
    char *loop = tu_path("loop");
    assert_int_equal(tu_system("mkdir -p '%s' && ln -s . '%s/self'", loop, loop), 0);
    expect_refused("a symbolic link loop", loop, CMCR_EINVAL, "nested more than 32 deep");
    char *inner = tu_path("withfifo");
    assert_int_equal(tu_system("mkdir -p '%s' && mkfifo '%s/p'", inner, inner), 0);
    expect_refused("a FIFO inside a folder", inner, CMCR_EIO, "withfifo/p: not a regular file or a folder");
    expect_refused("empty path", "", CMCR_EINVAL, "empty path");
    uint64_t h;
    assert_int_equal(cmcr_fingerprint_path(NULL, &h), CMCR_EINVAL);
    free(missing), free(fifo), free(loop), free(inner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_definition),
        cmocka_unit_test(test_file_names_and_times),
        cmocka_unit_test(test_folders),
        cmocka_unit_test(test_refusals),
    };
    return tu_run_group(tests);
}
