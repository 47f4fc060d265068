/* test_audio.c - CLAP's audio front end (src/media/audio.h) against LAION-CLAP's steps as
 * scripts/clap_ref_audio.py spells them (soundfile, libsoxr through ctypes with python-soxr's
 * call, NumPy's quantisation, torchaudio's log-mel in float64 and float32, the fusion input):
 * decode, mono, resample, quantise and fill bit for bit; the log-mel and the fusion input
 * within 1e-4 dB of torchaudio in float64 (the float32 differences are printed); refusals;
 * the seeded fusion starts; threads. */
#include "testutil.h"

#include "media/audio.h"
#include "runtime/rng.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4
#define MAX_CASES 64
#define PLANE ((size_t)AUDIO_CLIP_FRAMES * AUDIO_N_MELS)

/* LeakSanitizer's built-in suppressions (read only in sanitizer builds): libvorbis 1.3.7 leaks
 * a 5784-byte codec setup (vorbis_info_init) when libsndfile fails to open a malformed
 * Ogg/Vorbis stream, inside libvorbis' own error path (xiph/vorbis issue #125 reports the same
 * leak); cmcr cannot free it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libvorbis.so\n"; }

typedef struct tcase {
    char kind[8], name[64], path[1024], needle[128];
    int rate, longer;
    long long n, n48, frames, starts[3], lo[3], hi[3];
} tcase;

static tcase cases[MAX_CASES];
static int n_cases;
static char fixdir[1024];

/* Read cases.txt once; false when the fixture is absent. */
static bool load_cases(void)
{
    if (n_cases) return true;
    const char *f = getenv("CMCR_FIXTURES");
    if (!f) return false;
    snprintf(fixdir, sizeof fixdir, "%s/audio", f);
    char p[1200], line[2048];
    snprintf(p, sizeof p, "%s/cases.txt", fixdir);
    FILE *fp = fopen(p, "r");
    if (!fp) return false;
    while (fgets(line, sizeof line, fp) && n_cases < MAX_CASES) {
        tcase *c = &cases[n_cases];
        char rel[1024];
        int off = 0;
        memset(c, 0, sizeof *c);
        if (sscanf(line, "%7s", c->kind) != 1) continue;
        if (!strcmp(c->kind, "ok")) {
            int got = sscanf(line, "ok %63s %1023s %d %lld %lld %lld %d %lld %lld %lld %lld %lld %lld %lld %lld %lld",
                             c->name, rel, &c->rate, &c->n, &c->n48, &c->frames, &c->longer, &c->starts[0],
                             &c->starts[1], &c->starts[2], &c->lo[0], &c->hi[0], &c->lo[1], &c->hi[1], &c->lo[2],
                             &c->hi[2]);
            assert_int_equal(got, 16);
        } else {
            assert_int_equal(sscanf(line, "bad %1023s %n", rel, &off), 1);
            snprintf(c->needle, sizeof c->needle, "%s", line + off);
            c->needle[strcspn(c->needle, "\n")] = 0;
        }
        if (rel[0] == '/') snprintf(c->path, sizeof c->path, "%s", rel);
        else assert_true((size_t)snprintf(c->path, sizeof c->path, "%s/%s", fixdir, rel) < sizeof c->path);
        n_cases++;
    }
    fclose(fp);
    return n_cases > 0;
}

static void need_cases(void)
{
    if (!load_cases()) tu_skip("fixture $CMCR_FIXTURES/audio (scripts/clap_ref_audio.py) is absent");
}

/* The fixture's raw array NAME.SUFFIX, which must hold exactly n elements of size elem. */
static void *read_ref(const char *name, const char *suffix, size_t n, size_t elem)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s.%s", fixdir, name, suffix);
    size_t len = 0;
    void *d = tu_read_file(p, &len);
    assert_int_equal(len, n * elem);
    return d;
}

static void expect_same_floats(const char *what, const char *name, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
            printf("%s %s differs at %zu: %.9g vs %.9g\n", name, what, i, got[i], want[i]);
            fail();
        }
}

typedef struct diffs {
    double mel64, mel32, fus64, fus32;
    long long over32, total; /* mel values more than TOL from float32 torchaudio, of total */
    char max32_at[256];      /* where the largest float32 difference is */
} diffs;

/* max |got - want64| (asserted <= TOL) and max |got - want32| (counted, reported). */
static void compare_mel(const tcase *c, const float *got, size_t n, const char *s64, const char *s32, double *d64,
                        double *d32, diffs *dd)
{
    double *w64 = read_ref(c->name, s64, n, sizeof(double));
    float *w32 = read_ref(c->name, s32, n, sizeof(float));
    double m64 = 0, m32 = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(got[i] - w64[i]), b = fabs((double)got[i] - w32[i]);
        if (a > m64) m64 = a;
        if (b > m32) m32 = b;
        if (dd && b > *d32 && b >= m32)
            snprintf(dd->max32_at, sizeof dd->max32_at, "%s frame %zu band %zu: %.7g dB, torchaudio %.7g (float32) %.7g",
                     c->name, i / AUDIO_N_MELS, i % AUDIO_N_MELS, got[i], w32[i], w64[i]);
        if (dd) dd->over32 += b > TOL;
    }
    if (dd) dd->total += (long long)n;
    if (m64 > TOL) printf("%s %s: max abs diff %g > %g\n", c->name, s64, m64, TOL);
    assert_true(m64 <= TOL);
    if (m64 > *d64) *d64 = m64;
    if (m32 > *d32) *d32 = m32;
    free(w64);
    free(w32);
}

/* The fusion input of the case's quantised samples: flag, starts in the reference's ranges,
 * channels equal to the pieces they are made of. */
static void check_fusion_input(const tcase *c, const float *q, const float *mel)
{
    float *fus = malloc(AUDIO_FUSION_CHANNELS * PLANE * sizeof *fus);
    bool longer = true;
    int64_t s[3];
    assert_int_equal(audio_fusion_input(q, c->n48, 0, c->name, fus, &longer, s), CMCR_OK);
    assert_int_equal(longer, c->longer);
    if (!c->longer) {
        for (int k = 0; k < AUDIO_FUSION_CHANNELS; k++) assert_memory_equal(fus + k * PLANE, mel, PLANE * sizeof *fus);
        for (int k = 0; k < 3; k++) assert_int_equal(s[k], -1);
    } else {
        float *again = malloc(AUDIO_FUSION_CHANNELS * PLANE * sizeof *again);
        for (int k = 0; k < 3; k++) {
            assert_true(s[k] >= c->lo[k] && s[k] <= c->hi[k]);
        }
        assert_int_equal(audio_fusion_from_mel(mel, c->frames, s, again), CMCR_OK);
        assert_memory_equal(fus, again, AUDIO_FUSION_CHANNELS * PLANE * sizeof *fus);
        free(again);
    }
    /* The convenience call gives the same tensor from the file. */
    float *viafile = malloc(AUDIO_FUSION_CHANNELS * PLANE * sizeof *viafile);
    bool l2 = !longer;
    assert_int_equal(audio_clap_input_file(c->path, 0, viafile, &l2), CMCR_OK);
    assert_int_equal(l2, longer);
    assert_memory_equal(fus, viafile, AUDIO_FUSION_CHANNELS * PLANE * sizeof *fus);
    free(viafile);
    free(fus);
}

/* One ok case: every stage against the fixture. */
static void check_case(const tcase *c, diffs *dd)
{
    audio_mono raw, y, mem;
    assert_int_equal(audio_decode_file(c->path, &raw), CMCR_OK);
    size_t len = 0;
    unsigned char *bytes = tu_read_file(c->path, &len);
    assert_int_equal(audio_decode_memory(bytes, len, c->name, &mem), CMCR_OK); /* the same from memory */
    assert_int_equal(mem.n, c->n);
    assert_memory_equal(mem.samples, raw.samples, (size_t)c->n * sizeof(float));
    audio_free(&mem);
    free(bytes);
    assert_int_equal(raw.rate, c->rate);
    assert_int_equal(raw.n, c->n);
    float *want = read_ref(c->name, "dec.f32", (size_t)c->n, sizeof(float));
    expect_same_floats("decoded", c->name, raw.samples, want, (size_t)c->n);
    free(want);

    assert_int_equal(audio_resample_48k(&raw, c->name, &y), CMCR_OK);
    assert_int_equal(y.n, c->n48);
    want = read_ref(c->name, "r48.f32", (size_t)c->n48, sizeof(float));
    expect_same_floats("resampled", c->name, y.samples, want, (size_t)c->n48);
    free(want);

    audio_quantize(y.samples, y.n);
    want = read_ref(c->name, "q.f32", (size_t)c->n48, sizeof(float));
    expect_same_floats("quantised", c->name, y.samples, want, (size_t)c->n48);
    free(want);

    const float *x = y.samples;
    int64_t n = y.n;
    float *clip = NULL;
    if (c->n48 <= AUDIO_CLIP) {
        clip = malloc(AUDIO_CLIP * sizeof *clip);
        audio_fill(y.samples, y.n, clip);
        want = read_ref(c->name, "fill.f32", AUDIO_CLIP, sizeof(float));
        expect_same_floats("filled", c->name, clip, want, AUDIO_CLIP);
        free(want);
        x = clip;
        n = AUDIO_CLIP;
    }
    assert_int_equal(audio_mel_frames(n), c->frames);
    size_t nm = (size_t)c->frames * AUDIO_N_MELS;
    float *mel = malloc(nm * sizeof *mel);
    assert_int_equal(audio_log_mel(x, n, c->name, mel), CMCR_OK);
    compare_mel(c, mel, nm, "mel64.f64", "mel32.f32", &dd->mel64, &dd->mel32, dd);
    if (!strncmp(c->name, "silence", 7))
        for (size_t i = 0; i < nm; i++) assert_true(mel[i] == -100.0f);
    if (c->longer) {
        float *fus = malloc(AUDIO_FUSION_CHANNELS * PLANE * sizeof *fus);
        int64_t s[3] = {c->starts[0], c->starts[1], c->starts[2]};
        assert_int_equal(audio_fusion_from_mel(mel, c->frames, s, fus), CMCR_OK);
        compare_mel(c, fus, AUDIO_FUSION_CHANNELS * PLANE, "fus64.f64", "fus32.f32", &dd->fus64, &dd->fus32, NULL);
        free(fus);
    }
    check_fusion_input(c, y.samples, mel);
    free(mel);
    free(clip);
    audio_free(&raw);
    audio_free(&y);
}

/* Every ok case whose name starts (or not, when !assets) with "asset_"; the count run. */
static int run_cases(bool assets)
{
    diffs dd = {0};
    int n = 0, longer = 0;
    for (int i = 0; i < n_cases; i++) {
        const tcase *c = &cases[i];
        if (strcmp(c->kind, "ok") || (strncmp(c->name, "asset_", 6) == 0) != assets) continue;
        check_case(c, &dd);
        longer += c->longer;
        n++;
    }
    if (n) {
        printf("%d %s cases: decode, mono, resample, quantise, fill bit-identical to the reference\n", n,
               assets ? "real-recording" : "generated");
        printf("MAXDIFF log-mel vs torchaudio float64 %.3g dB, vs torchaudio float32 %.3g dB\n", dd.mel64, dd.mel32);
        if (longer)
            printf("MAXDIFF fusion input (%d longer clips) vs reference float64 %.3g dB, vs float32 %.3g dB\n", longer,
                   dd.fus64, dd.fus32);
        printf("mel values off float32 torchaudio by more than %g dB: %lld of %lld; largest at %s\n", TOL, dd.over32,
               dd.total, dd.max32_at);
    }
    return n;
}

static void test_generated(void **state)
{
    (void)state;
    need_cases();
    assert_true(run_cases(false) >= 20);
}

static void test_recordings(void **state)
{
    (void)state;
    need_cases();
    if (run_cases(true) == 0)
        tu_skip("the fixture has no real recordings (../shared/data/cmcr-assets was absent when it was made)");
}

/* A refusal: status not OK, *out empty, one line that names the file and says needle. */
static void expect_refused(const char *label, cmcr_status st, const audio_mono *a, const char *name,
                           const char *needle)
{
    const char *msg = cmcr_last_error();
    printf("MSG %s %d %s\n", label, (int)st, msg);
    assert_int_not_equal(st, CMCR_OK);
    assert_null(a->samples);
    assert_int_equal(a->n, 0);
    assert_non_null(strstr(msg, name));
    assert_non_null(strstr(msg, needle));
    assert_null(strchr(msg, '\n'));
}

static void test_refusals(void **state)
{
    (void)state;
    need_cases();
    int n = 0;
    for (int i = 0; i < n_cases; i++) {
        const tcase *c = &cases[i];
        if (strcmp(c->kind, "bad")) continue;
        audio_mono a;
        expect_refused(c->path, audio_decode_file(c->path, &a), &a, c->path, c->needle);
        size_t len = 0;
        FILE *f = fopen(c->path, "rb");
        bool regular = f && fseek(f, 0, SEEK_END) == 0 && ftell(f) >= 0;
        if (f) fclose(f);
        if (regular && !strstr(c->needle, "regular")) { /* the same bytes from memory */
            unsigned char *buf = tu_read_file(c->path, &len);
            const char *needle = strstr(c->needle, "open") ? "readable audio" : c->needle;
            expect_refused("memory", audio_decode_memory(buf, len, "mem.wav", &a), &a, "mem.wav", needle);
            free(buf);
        }
        n++;
    }
    assert_true(n >= 14);
}

/* Prefixes of the generated files: each is decoded or refused with a message, never more
 * samples than the whole file has; this is what the fuzzer does at random. */
static void test_prefixes(void **state)
{
    (void)state;
    need_cases();
    int refused = 0, read = 0;
    for (int i = 0; i < n_cases; i++) {
        const tcase *c = &cases[i];
        if (strcmp(c->kind, "ok") || !strncmp(c->name, "asset_", 6) || c->n > 200000) continue;
        size_t len = 0;
        unsigned char *buf = tu_read_file(c->path, &len);
        for (int k = 1; k < 8; k++) {
            size_t cut = len * (size_t)k / 8;
            audio_mono a;
            cmcr_status st = audio_decode_memory(buf, cut, c->name, &a);
            if (st == CMCR_OK) {
                assert_true(a.n >= 1 && a.n <= c->n);
                read++;
            } else {
                assert_null(a.samples);
                assert_non_null(strstr(cmcr_last_error(), c->name));
                refused++;
            }
            audio_free(&a);
        }
        free(buf);
    }
    printf("prefixes of generated files: %d refused, %d decoded\n",
           refused, read);
    assert_true(refused > 0);
}

/* np.array_split(range(m), 3) with empty parts 1 and 2 as {0}: part k's [lo, hi]. */
static void split_range(int64_t frames, int k, int64_t *lo, int64_t *hi)
{
    int64_t m = frames - AUDIO_CLIP_FRAMES + 1, start = 0;
    *lo = *hi = 0;
    for (int j = 0; j <= k; j++) {
        int64_t len = m / 3 + (j < m % 3 ? 1 : 0);
        if (j == k) {
            *lo = len ? start : 0;
            *hi = len ? start + len - 1 : 0;
        }
        start += len;
    }
}

static void test_starts(void **state)
{
    (void)state;
    int differ = 0;
    for (int64_t frames = AUDIO_CLIP_FRAMES + 1; frames < 20000; frames += frames / 7 + 1) {
        int64_t a[3], b[3], c[3];
        audio_fusion_starts(frames, 0, a);
        audio_fusion_starts(frames, 0, b);
        audio_fusion_starts(frames, 12345, c);
        assert_memory_equal(a, b, sizeof a);
        differ += memcmp(a, c, sizeof a) != 0;
        for (int k = 0; k < 3; k++) {
            int64_t lo, hi;
            split_range(frames, k, &lo, &hi);
            assert_true(a[k] >= lo && a[k] <= hi);
            assert_true(c[k] >= lo && c[k] <= hi);
        }
    }
    assert_true(differ > 10); /* the seed matters */
    /* 1002 frames: ranges {0}, {1}, {} -> {0}. */
    int64_t s[3];
    audio_fusion_starts(1002, 7, s);
    assert_int_equal(s[0], 0);
    assert_int_equal(s[1], 1);
    assert_int_equal(s[2], 0);
    /* The fixture's ranges are the reference's own array_split. */
    if (load_cases())
        for (int i = 0; i < n_cases; i++)
            if (cases[i].longer)
                for (int k = 0; k < 3; k++) {
                    int64_t lo, hi;
                    split_range(cases[i].frames, k, &lo, &hi);
                    assert_int_equal(lo, cases[i].lo[k]);
                    assert_int_equal(hi, cases[i].hi[k]);
                }
}

static void test_arguments(void **state)
{
    (void)state;
    float x[600] = {0}, mel[2 * AUDIO_N_MELS];
    assert_int_equal(audio_log_mel(x, 512, "tiny", mel), CMCR_EINVAL);
    assert_non_null(strstr(cmcr_last_error(), "tiny"));
    assert_int_equal(audio_log_mel(x, 513, "ok", mel), CMCR_OK);
    for (int i = 0; i < 2 * AUDIO_N_MELS; i++) assert_true(mel[i] == -100.0f);
    float *big = calloc((size_t)1100 * AUDIO_N_MELS, sizeof *big);
    float *fus = malloc(AUDIO_FUSION_CHANNELS * PLANE * sizeof *fus);
    int64_t bad[3] = {0, 100, 1100 - AUDIO_CLIP_FRAMES + 1};
    assert_int_equal(audio_fusion_from_mel(big, 1100, bad, fus), CMCR_EINVAL);
    bad[2] = -1;
    assert_int_equal(audio_fusion_from_mel(big, 1100, bad, fus), CMCR_EINVAL);
    bool longer;
    assert_int_equal(audio_fusion_input(x, 0, 0, "none", fus, &longer, NULL), CMCR_EINVAL);
    audio_mono in = {0, 16000, x}, out;
    assert_int_equal(audio_resample_48k(&in, "none", &out), CMCR_EINVAL);
    assert_null(out.samples);
    /* The convenience call passes the decoder's refusal on. */
    assert_int_equal(audio_clap_input_file("/nonexistent/x.wav", 0, fus, &longer), CMCR_EIO);
    assert_non_null(strstr(cmcr_last_error(), "/nonexistent/x.wav"));
    /* Finite samples near FLT_MAX overflow in the resampler's filter: refused, not NaN. */
    float *huge = malloc(16000 * sizeof *huge);
    for (int i = 0; i < 16000; i++) huge[i] = i % 2 ? 3e38f : -3e38f;
    audio_mono hin = {16000, 16000, huge};
    assert_int_equal(audio_resample_48k(&hin, "huge.wav", &out), CMCR_EVALUE);
    assert_non_null(strstr(cmcr_last_error(), "huge.wav"));
    assert_null(out.samples);
    free(huge);
    /* Quantisation edges, as NumPy computes them; NaN (refused before) gives 0, not UB. */
    float q[7] = {1.5f, -2.f, 1.f, -1.f, 0.49999f / 32767.f, -0.9999f / 32767.f, NAN};
    audio_quantize(q, 7);
    assert_true(q[0] == 1.f && q[1] == -1.f && q[2] == 1.f && q[3] == -1.f && q[4] == 0.f && q[5] == 0.f);
    assert_true(q[6] == 0.f);
    free(big);
    free(fus);
}

/* The log-mel from several threads at once (the FFTW plan is shared) equals the serial one. */
typedef struct job {
    const float *x;
    float *mel;
    cmcr_status st;
} job;

static void *mel_thread(void *arg)
{
    job *j = arg;
    j->st = audio_log_mel(j->x, AUDIO_CLIP, "thread", j->mel);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 3);
    float *x = tu_normal_matrix(&r, 1, AUDIO_CLIP);
    enum { NT = 4 };
    job jobs[NT];
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        jobs[t] = (job){x, malloc(PLANE * sizeof(float)), CMCR_EINVAL};
        assert_int_equal(pthread_create(&th[t], NULL, mel_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < NT; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    float *serial = malloc(PLANE * sizeof *serial);
    assert_int_equal(audio_log_mel(x, AUDIO_CLIP, "serial", serial), CMCR_OK);
    for (int t = 0; t < NT; t++) {
        assert_int_equal(jobs[t].st, CMCR_OK);
        assert_memory_equal(jobs[t].mel, serial, PLANE * sizeof *serial);
        free(jobs[t].mel);
    }
    free(serial);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads),  cmocka_unit_test(test_generated), cmocka_unit_test(test_recordings),
        cmocka_unit_test(test_refusals), cmocka_unit_test(test_prefixes),  cmocka_unit_test(test_starts),
        cmocka_unit_test(test_arguments),
    };
    return tu_run_group(tests);
}
