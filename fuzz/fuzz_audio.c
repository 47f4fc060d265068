/* fuzz_audio.c - libFuzzer target: an arbitrary file through the audio decoder (libsndfile
 * over memory, audio_decode_memory), then a short prefix resampled to 48 kHz (libsoxr),
 * quantised, and its log-mel (FFTW). The prefix keeps each input cheap whatever its rate.
 * Then the model input (audio_fusion_input): the quantised samples, a short clip (repeat-pad),
 * or tiled to just over 10 s, at a length the input's last byte picks, so the fusion path
 * (the shrunk mel, the seeded windows) runs on fuzzed samples too. */
#include "fuzz_common.h"
#include "media/audio.h"

#include <math.h>

enum { PREFIX = 4096, MEL_SAMPLES = 9600 };

/* LeakSanitizer's built-in suppressions (read only in sanitizer builds): libvorbis 1.3.7 leaks
 * a 5784-byte codec setup (vorbis_info_init) when libsndfile fails to open a malformed
 * Ogg/Vorbis stream, inside libvorbis' own error path (xiph/vorbis issue #125 reports the same
 * leak); cmcr cannot free it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libvorbis.so\n"; }

/* The 4 x 1001 x 64 input of x (n samples) as it is, or tiled to AUDIO_CLIP + k * AUDIO_HOP
 * samples (k < 64 from pick; k >= 2 takes the fusion path with seeded windows). */
static void model_input(const float *x, int64_t n, uint8_t pick)
{
    size_t each = (size_t)AUDIO_FUSION_CHANNELS * AUDIO_CLIP_FRAMES * AUDIO_N_MELS;
    float *out = malloc(each * sizeof *out);
    int64_t len = pick & 0x80 ? AUDIO_CLIP + (int64_t)(pick & 63) * AUDIO_HOP : n;
    float *tiled = n > 0 ? malloc((size_t)len * sizeof *tiled) : NULL;
    bool longer = false;
    int64_t starts[3];
    if (out && tiled) {
        for (int64_t i = 0; i < len; i++) tiled[i] = x[i % n];
        if (audio_fusion_input(tiled, len, pick, "input.audio", out, &longer, starts) != CMCR_OK) abort();
        for (size_t i = 0; i < each; i++)
            if (!isfinite(out[i])) abort(); /* the model input is always finite */
        if (longer && (starts[0] < 0 || starts[2] > audio_mel_frames(len) - AUDIO_CLIP_FRAMES)) abort();
    }
    free(tiled);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    audio_mono a;
    if (audio_decode_memory(data, size, "input.audio", &a) != CMCR_OK) {
        if (a.samples || a.n) abort(); /* a refusal leaves nothing behind */
        return 0;
    }
    if (a.n < 1 || a.rate < AUDIO_MIN_RATE || a.rate > AUDIO_MAX_RATE) abort();
    for (int64_t i = 0; i < a.n; i++)
        if (!isfinite(a.samples[i])) abort(); /* non-finite samples are refused */
    if (a.n > PREFIX) a.n = PREFIX;
    audio_mono y;
    if (audio_resample_48k(&a, "input.audio", &y) == CMCR_OK) {
        audio_quantize(y.samples, y.n);
        int64_t n = y.n < MEL_SAMPLES ? y.n : MEL_SAMPLES;
        if (n > AUDIO_N_FFT / 2) {
            float *mel = malloc((size_t)audio_mel_frames(n) * AUDIO_N_MELS * sizeof *mel);
            if (mel && audio_log_mel(y.samples, n, "input.audio", mel) != CMCR_OK) abort();
            free(mel);
        }
        model_input(y.samples, y.n, size ? data[size - 1] : 0);
        audio_free(&y);
    }
    audio_free(&a);
    return 0;
}
