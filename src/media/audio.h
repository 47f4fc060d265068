/* audio.h - LAION-CLAP's audio front end (hook.py get_audio_embedding_from_filelist with
 * training/data.py get_audio_features, librosa 0.10, torchaudio 0.13): decoding to mono
 * float32 (libsndfile), resampling to 48 kHz (libsoxr, called as python-soxr calls it),
 * the int16 quantisation, the repeat-pad fill to 10 s, the log-mel spectrogram (FFTW3) and
 * the 4 x 1001 x 64 fusion input of HTSAT. docs/audio.md says what is matched, how it is
 * checked and with which tolerance. Internal. */
#ifndef CMCR_MEDIA_AUDIO_H
#define CMCR_MEDIA_AUDIO_H

#include "runtime/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIO_RATE 48000           /* CLAP's sample rate */
#define AUDIO_CLIP 480000          /* samples of one 10 s clip (max_len) */
#define AUDIO_N_FFT 1024           /* window and FFT length */
#define AUDIO_HOP 480              /* hop between frames */
#define AUDIO_N_MELS 64            /* mel bands */
#define AUDIO_CLIP_FRAMES 1001     /* frames of one clip: AUDIO_CLIP / AUDIO_HOP + 1 */
#define AUDIO_FUSION_CHANNELS 4    /* the shrunk whole mel, then three 1001-frame windows */
/* Limits of what a file may hold; larger or stranger files are refused before allocating. */
#define AUDIO_MAX_SECONDS 3600     /* one hour at the file's native rate */
/* ... and at most an hour's worth of 48 kHz frames whatever the rate (691 MB as float): the
 * memory one file may take while it is decoded, resampled and turned into a mel. */
#define AUDIO_MAX_FRAMES ((int64_t)AUDIO_MAX_SECONDS * AUDIO_RATE)
#define AUDIO_MIN_RATE 1000        /* Hz */
#define AUDIO_MAX_RATE 768000      /* Hz */
#define AUDIO_MAX_CHANNELS 256

/* Mono float32 samples at rate Hz (malloc'd; samples NULL after audio_free). */
typedef struct audio_mono {
    int64_t n;
    int32_t rate;
    float *samples;
} audio_mono;

/* Decode a sound file (anything libsndfile 1.2 reads: WAV, FLAC, OGG/Vorbis, MP3, AIFF...,
 * told by content) to mono float32 at its native rate, as librosa.load(path, sr=None) does
 * through soundfile: sf_readf_float (libsndfile's int -> float scaling), then the channel
 * mean in float32 (summed in channel order as NumPy does, then divided). On failure *out is
 * empty and the one-line message names the file: cannot open or not a regular file
 * (CMCR_EIO), not audio or malformed (CMCR_EFORMAT: libsndfile's reason), fewer frames than
 * the header declares (CMCR_EFORMAT, "truncated"; except MP3, whose count may be an
 * estimate: its frames are read as they come), zero frames (CMCR_EFORMAT), a rate
 * outside AUDIO_MIN_RATE..AUDIO_MAX_RATE or more than AUDIO_MAX_CHANNELS channels
 * (CMCR_EUNSUPPORTED), longer than AUDIO_MAX_SECONDS (CMCR_ENOMEM), NaN or Inf samples
 * (CMCR_EVALUE). Re-entrant. */
cmcr_status audio_decode_file(const char *path, audio_mono *out);
/* The same from len bytes at data (sf_open_virtual); name is used in messages only. */
cmcr_status audio_decode_memory(const void *data, size_t len, const char *name, audio_mono *out);
/* Free a's samples and zero it (NULL or empty is fine). */
void audio_free(audio_mono *a);

/* librosa.resample(y, orig_sr=in->rate, target_sr=48000, res_type="soxr_hq"): libsoxr
 * with python-soxr's call (HQ quality, flags 0, float32 in and out, default runtime spec,
 * input fed in chunks of (size_t)(48000 * in_rate / 48000.0) samples, then one flush), then
 * librosa's fix_length to ceil(n * (48000.0 / rate)) samples (zeros appended, or cut). A
 * 48 kHz input is copied as is. Into a fresh *out (rate 48000); name for messages. Refused
 * (CMCR_EVALUE, *out empty) when finite input near FLT_MAX overflows in the filter. */
cmcr_status audio_resample_48k(const audio_mono *in, const char *name, audio_mono *out);

/* The int16 round trip of hook.py, in place and bit for bit as NumPy does it:
 * q = (int16)(clip(x, -1, 1) * 32767.0f) (float32 product, truncated), then
 * x = (float)(q / 32767.0) (float64 quotient). A NaN (which the decoder refuses) gives 0. */
void audio_quantize(float *x, int64_t n);

/* data_filling "repeatpad": x (1 <= n <= AUDIO_CLIP) repeated floor(AUDIO_CLIP / n) times,
 * then zeros up to AUDIO_CLIP samples, into out (AUDIO_CLIP floats). */
void audio_fill(const float *x, int64_t n, float *out);

/* Frames of the log-mel of n samples (centred frames): n / AUDIO_HOP + 1. */
int64_t audio_mel_frames(int64_t n);

/* The log-mel of get_mel: torchaudio MelSpectrogram(48000, n_fft 1024, hop 480, periodic
 * Hann, centre with reflect padding, power 2, 64 HTK mel bands 50..14000 Hz, norm None)
 * then AmplitudeToDB(top_db=None), i.e. 10 * log10(max(p, 1e-10)); computed in double and
 * stored as float. out holds audio_mel_frames(n) x AUDIO_N_MELS floats, frame-major. n must
 * be > AUDIO_N_FFT / 2 (reflect padding needs it; CMCR_EINVAL otherwise). Thread-safe (the
 * one FFTW plan is made once under a lock). */
cmcr_status audio_log_mel(const float *x, int64_t n, const char *name, float *out);

/* The three window starts of the fusion path for a mel of frames > AUDIO_CLIP_FRAMES
 * frames: the start range 0..frames-AUDIO_CLIP_FRAMES is split as np.array_split(.., 3)
 * does (empty second and third parts become {0}), and one start is drawn uniformly from
 * each part, where the reference draws with np.random.choice. Deterministic: the draws
 * come from rng_seed_mix(seed, frames, 0, 0), so a clip gets the same starts whatever else
 * is in its batch. */
void audio_fusion_starts(int64_t frames, uint64_t seed, int64_t starts[3]);

/* Channel 0: the whole mel (frames x 64) resized to 1001 x 64 as
 * torchvision.transforms.Resize([1001, 64]) does on a tensor (bilinear, align_corners
 * False, no antialias; along time only, the 64 bands keep their values); channels 1..3:
 * mel[starts[k] .. starts[k] + 1001). out holds 4 x 1001 x 64 floats. Each start must lie
 * in 0..frames-1001 (CMCR_EINVAL otherwise). */
cmcr_status audio_fusion_from_mel(const float *mel, int64_t frames, const int64_t starts[3], float *out);

/* get_audio_features(data_truncating="fusion", data_filling="repeatpad") of 48 kHz samples
 * x (n >= 1), already quantised: n <= AUDIO_CLIP: the log-mel of the filled clip four
 * times, *longer false. Longer: the log-mel of the whole clip; when it has exactly 1001
 * frames (n < AUDIO_CLIP + AUDIO_HOP) four copies of it and *longer false, else
 * audio_fusion_starts + audio_fusion_from_mel and *longer true. out holds 4 x 1001 x 64
 * floats; starts (may be NULL) gets the starts used (all -1 when none were drawn). */
cmcr_status audio_fusion_input(const float *x, int64_t n, uint64_t seed, const char *name, float *out,
                               bool *longer, int64_t starts[3]);

/* What the CLAP model consumes, from a file: decode, resample to 48 kHz, quantise and
 * audio_fusion_input (seed 0 in the callers unless told otherwise). */
cmcr_status audio_clap_input_file(const char *path, uint64_t seed, float *out, bool *longer);
/* The same from len bytes at data (an HTTP body); name is used in messages only. */
cmcr_status audio_clap_input_memory(const void *data, size_t len, const char *name, uint64_t seed, float *out,
                                    bool *longer);

#endif
