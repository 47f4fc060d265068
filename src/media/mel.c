/* mel.c - CLAP's log-mel spectrogram (torchaudio 0.13 MelSpectrogram + AmplitudeToDB, as
 * training/data.py get_mel configures them) and the 4-channel fusion input of HTSAT.
 * The STFT is FFTW3's real FFT in double: torchaudio's float32 arithmetic is itself noise
 * in bins with almost no energy, so the reference is torchaudio run in float64, which this
 * matches to ~1e-9 dB (docs/audio.md). */
#include "media/audio.h"
#include "runtime/rng.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_FREQS (AUDIO_N_FFT / 2 + 1)
#define F_MIN 50.0
#define F_MAX 14000.0
#define AMIN 1e-10

/* Process-wide, made once (pthread_once) and read-only after: the FFTW plan (FFTW's planner
 * is not thread-safe; executing a plan on new arrays is), the window and the filterbank. */
static struct {
    fftw_plan plan;
    double window[AUDIO_N_FFT];
    double fb[AUDIO_N_MELS][N_FREQS]; /* weights of band m on frequency bin k */
    int lo[AUDIO_N_MELS], hi[AUDIO_N_MELS]; /* the bins [lo, hi) where band m is non-zero */
} mel_setup;
static pthread_once_t mel_once = PTHREAD_ONCE_INIT;

/* torch.linspace(start, end, steps)[i]: the first half counted from start, the second from
 * end, as ATen's kernel computes it. */
static double linspace(double start, double end, int steps, int i)
{
    double step = (end - start) / (steps - 1);
    return i < steps / 2 ? start + step * i : end - step * (steps - i - 1);
}

/* torchaudio melscale_fbanks(513, 50, 14000, 64, 48000, norm=None, mel_scale="htk"). */
static void make_filterbank(void)
{
    double f_pts[AUDIO_N_MELS + 2];
    const double m_min = 2595.0 * log10(1.0 + F_MIN / 700.0), m_max = 2595.0 * log10(1.0 + F_MAX / 700.0);
    for (int i = 0; i < AUDIO_N_MELS + 2; i++)
        f_pts[i] = 700.0 * (pow(10.0, linspace(m_min, m_max, AUDIO_N_MELS + 2, i) / 2595.0) - 1.0);
    for (int m = 0; m < AUDIO_N_MELS; m++) {
        mel_setup.lo[m] = N_FREQS;
        mel_setup.hi[m] = 0;
        for (int k = 0; k < N_FREQS; k++) {
            double f = linspace(0.0, AUDIO_RATE / 2, N_FREQS, k);
            double down = (-1.0 * (f_pts[m] - f)) / (f_pts[m + 1] - f_pts[m]);
            double up = (f_pts[m + 2] - f) / (f_pts[m + 2] - f_pts[m + 1]);
            double w = fmax(0.0, fmin(down, up));
            mel_setup.fb[m][k] = w;
            if (w > 0 && k < mel_setup.lo[m]) mel_setup.lo[m] = k;
            if (w > 0) mel_setup.hi[m] = k + 1;
        }
        if (mel_setup.hi[m] == 0) mel_setup.lo[m] = 0;
    }
}

static void mel_init(void)
{
    for (int i = 0; i < AUDIO_N_FFT; i++) /* periodic Hann */
        mel_setup.window[i] = 0.5 - 0.5 * cos(2.0 * 3.14159265358979323846 * i / AUDIO_N_FFT);
    make_filterbank();
    double *in = fftw_malloc(sizeof(double) * AUDIO_N_FFT);
    fftw_complex *out = fftw_malloc(sizeof(fftw_complex) * N_FREQS);
    /* FFTW_ESTIMATE: the same algorithm every run (FFTW_MEASURE may pick another, with other
     * rounding), and the arrays are not touched while planning. */
    if (in && out) mel_setup.plan = fftw_plan_dft_r2c_1d(AUDIO_N_FFT, in, out, FFTW_ESTIMATE);
    fftw_free(in);
    fftw_free(out);
}

int64_t audio_mel_frames(int64_t n) { return n / AUDIO_HOP + 1; }

/* x[i] of the centred signal: reflect padding by AUDIO_N_FFT / 2 (torch.stft's "reflect"). */
static inline float reflect_at(const float *x, int64_t n, int64_t j)
{
    int64_t i = j - AUDIO_N_FFT / 2;
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return x[i];
}

/* One frame's 64 dB values from the windowed samples in in (power spectrum into pw). */
static void frame_mel(double *in, fftw_complex *spec, double *pw, float *out)
{
    fftw_execute_dft_r2c(mel_setup.plan, in, spec);
    for (int k = 0; k < N_FREQS; k++) pw[k] = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
    for (int m = 0; m < AUDIO_N_MELS; m++) {
        double s = 0;
        for (int k = mel_setup.lo[m]; k < mel_setup.hi[m]; k++) s += pw[k] * mel_setup.fb[m][k];
        out[m] = (float)(10.0 * log10(fmax(s, AMIN)));
    }
}

cmcr_status audio_log_mel(const float *x, int64_t n, const char *name, float *out)
{
    char q[1024];
    if (n <= AUDIO_N_FFT / 2)
        return core_fail(CMCR_EINVAL, "%s: %lld samples are too few for a spectrogram (more than %d needed)",
                         cmcr_printable(q, sizeof q, name), (long long)n, AUDIO_N_FFT / 2);
    pthread_once(&mel_once, mel_init);
    if (!mel_setup.plan) return core_fail(CMCR_ENOMEM, "%s: FFTW could not plan the STFT", cmcr_printable(q, sizeof q, name));
    double *in = fftw_malloc(sizeof(double) * (AUDIO_N_FFT + N_FREQS));
    fftw_complex *spec = fftw_malloc(sizeof(fftw_complex) * N_FREQS);
    if (!in || !spec) {
        fftw_free(in);
        fftw_free(spec);
        return core_fail(CMCR_ENOMEM, "%s: cannot allocate STFT buffers", cmcr_printable(q, sizeof q, name));
    }
    double *pw = in + AUDIO_N_FFT;
    const int64_t frames = audio_mel_frames(n);
    for (int64_t t = 0; t < frames; t++) {
        const int64_t j0 = t * AUDIO_HOP;
        if (j0 >= AUDIO_N_FFT / 2 && j0 + AUDIO_N_FFT / 2 <= n) { /* no padding: direct */
            const float *src = x + j0 - AUDIO_N_FFT / 2;
            for (int i = 0; i < AUDIO_N_FFT; i++) in[i] = src[i] * mel_setup.window[i];
        } else {
            for (int i = 0; i < AUDIO_N_FFT; i++) in[i] = reflect_at(x, n, j0 + i) * mel_setup.window[i];
        }
        frame_mel(in, spec, pw, out + t * AUDIO_N_MELS);
    }
    fftw_free(in);
    fftw_free(spec);
    return CMCR_OK;
}

/* ------------------------------------------------------------------ fusion */

void audio_fusion_starts(int64_t frames, uint64_t seed, int64_t starts[3])
{
    /* np.array_split(range(0, m), 3): the first m % 3 parts have m / 3 + 1 items. */
    const int64_t m = frames - AUDIO_CLIP_FRAMES + 1;
    rng_state r;
    rng_seed(&r, rng_seed_mix(seed, (uint64_t)frames, 0, 0));
    int64_t lo = 0;
    for (int k = 0; k < 3; k++) {
        int64_t len = m / 3 + (k < m % 3 ? 1 : 0);
        starts[k] = len > 0 ? lo + (int64_t)rng_below(&r, (uint64_t)len) : 0; /* empty part: [0] */
        lo += len;
    }
}

/* torch 1.13's upsample_bilinear2d on CPU (align_corners False, no scale given) along
 * time; along the 64 bands the scale is 1 and ATen copies. The scale is a float
 * (float(T) / 1001), the source position is computed from it in double (measured against
 * torch: computing it in float, or the scale in double, moves the weights by up to 1e-4
 * and the values by up to 0.02 dB), the weights are floats and so is the sum. */
static void shrink_time(const float *mel, int64_t frames, float *out)
{
    const float scale = (float)frames / (float)AUDIO_CLIP_FRAMES;
    for (int64_t i = 0; i < AUDIO_CLIP_FRAMES; i++) {
        double src = (double)scale * ((double)i + 0.5) - 0.5;
        if (src < 0) src = 0;
        int64_t i0 = (int64_t)src;
        double frac = src - (double)i0;
        float l1 = (float)(frac < 0 ? 0 : frac > 1 ? 1 : frac);
        float l0 = 1.f - l1;
        int64_t i1 = i0 < frames - 1 ? i0 + 1 : i0;
        const float *a = mel + i0 * AUDIO_N_MELS, *b = mel + i1 * AUDIO_N_MELS;
        for (int m = 0; m < AUDIO_N_MELS; m++) out[i * AUDIO_N_MELS + m] = a[m] * l0 + b[m] * l1;
    }
}

cmcr_status audio_fusion_from_mel(const float *mel, int64_t frames, const int64_t starts[3], float *out)
{
    const size_t plane = (size_t)AUDIO_CLIP_FRAMES * AUDIO_N_MELS;
    for (int k = 0; k < 3; k++)
        if (starts[k] < 0 || starts[k] > frames - AUDIO_CLIP_FRAMES)
            return core_fail(CMCR_EINVAL, "fusion window %d starts at frame %lld, outside 0..%lld", k,
                             (long long)starts[k], (long long)(frames - AUDIO_CLIP_FRAMES));
    shrink_time(mel, frames, out);
    for (int k = 0; k < 3; k++)
        memcpy(out + (size_t)(k + 1) * plane, mel + (size_t)starts[k] * AUDIO_N_MELS, plane * sizeof *out);
    return CMCR_OK;
}

/* The same mel (1001 frames) in all four channels. */
static void four_copies(float *out)
{
    const size_t plane = (size_t)AUDIO_CLIP_FRAMES * AUDIO_N_MELS;
    for (int k = 1; k < AUDIO_FUSION_CHANNELS; k++) memcpy(out + k * plane, out, plane * sizeof *out);
}

cmcr_status audio_fusion_input(const float *x, int64_t n, uint64_t seed, const char *name, float *out,
                               bool *longer, int64_t starts[3])
{
    char q[1024];
    int64_t s[3] = {-1, -1, -1};
    *longer = false;
    if (n < 1) return core_fail(CMCR_EINVAL, "%s: no samples", cmcr_printable(q, sizeof q, name));
    cmcr_status st;
    if (n <= AUDIO_CLIP) {
        float *clip = core_xmalloc((size_t)AUDIO_CLIP * sizeof *clip);
        if (!clip) return core_fail(CMCR_ENOMEM, "%s: cannot allocate a clip", cmcr_printable(q, sizeof q, name));
        audio_fill(x, n, clip);
        st = audio_log_mel(clip, AUDIO_CLIP, name, out);
        free(clip);
        if (st == CMCR_OK) four_copies(out);
    } else {
        const int64_t frames = audio_mel_frames(n);
        float *mel = core_xmalloc((size_t)frames * AUDIO_N_MELS * sizeof *mel);
        if (!mel) return core_fail(CMCR_ENOMEM, "%s: cannot allocate %lld mel frames", cmcr_printable(q, sizeof q, name),
                                   (long long)frames);
        st = audio_log_mel(x, n, name, mel);
        if (st == CMCR_OK && frames == AUDIO_CLIP_FRAMES) { /* the reference's corner case */
            memcpy(out, mel, (size_t)AUDIO_CLIP_FRAMES * AUDIO_N_MELS * sizeof *out);
            four_copies(out);
        } else if (st == CMCR_OK) {
            audio_fusion_starts(frames, seed, s);
            st = audio_fusion_from_mel(mel, frames, s, out);
            *longer = st == CMCR_OK;
        }
        free(mel);
    }
    if (starts) memcpy(starts, s, sizeof s);
    return st;
}
