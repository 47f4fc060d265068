/* audio.c - sound files to mono float32 (libsndfile), 48 kHz (libsoxr), CLAP's int16 round
 * trip and repeat-pad fill. The log-mel and the fusion input are in mel.c. What librosa
 * 0.10 and python-soxr do is reproduced call for call, so the samples are bit for bit
 * theirs (docs/audio.md). */
#include "media/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_CAP 1024     /* a file name as quoted in messages */
#define READ_FRAMES 4096  /* frames per sf_readf_float call */

void audio_free(audio_mono *a)
{
    if (!a) return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------ decoding */

/* NumPy's float32 add.reduce over n values at stride (pairwise_sum of loops_utils.h, added
 * to the identity 0): sequential below 8 values, eight accumulators up to 128, halves above. */
static float np_sum(const float *a, int64_t n, int64_t stride)
{
    if (n < 8) {
        float res = 0.f;
        for (int64_t i = 0; i < n; i++) res += a[i * stride];
        return res;
    }
    if (n <= 128) {
        float r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j * stride];
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[(i + j) * stride];
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i * stride];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_sum(a, n2, stride) + np_sum(a + n2 * stride, n - n2, stride);
}

/* Append the mono mix of frames interleaved frames of ch channels to out->samples (which
 * has room): librosa's to_mono, np.mean over channels in float32. */
static void mix_down(const float *buf, int64_t frames, int ch, audio_mono *out)
{
    float *dst = out->samples + out->n;
    if (ch == 1) {
        memcpy(dst, buf, (size_t)frames * sizeof *dst);
    } else {
        for (int64_t i = 0; i < frames; i++) dst[i] = (0.f + np_sum(buf + i * ch, ch, 1)) / (float)ch;
    }
    out->n += frames;
}

/* Check what the header says before anything is allocated from it. */
static cmcr_status check_info(const SF_INFO *info, const char *q)
{
    if (info->channels < 1 || info->channels > AUDIO_MAX_CHANNELS)
        return core_fail(CMCR_EUNSUPPORTED, "%s: %d channels (at most %d are read)", q, info->channels,
                         AUDIO_MAX_CHANNELS);
    if (info->samplerate < AUDIO_MIN_RATE || info->samplerate > AUDIO_MAX_RATE)
        return core_fail(CMCR_EUNSUPPORTED, "%s: sample rate %d Hz is outside %d..%d Hz", q, info->samplerate,
                         AUDIO_MIN_RATE, AUDIO_MAX_RATE);
    if (info->frames <= 0) return core_fail(CMCR_EFORMAT, "%s: no audio frames", q);
    if (info->frames > (sf_count_t)AUDIO_MAX_SECONDS * info->samplerate)
        return core_fail(CMCR_ENOMEM, "%s: %lld frames at %d Hz is longer than the limit of %d s", q,
                         (long long)info->frames, info->samplerate, AUDIO_MAX_SECONDS);
    if (info->frames > AUDIO_MAX_FRAMES) /* memory: a high rate must not stretch the hour */
        return core_fail(CMCR_ENOMEM, "%s: %lld frames is more than the limit of %lld (%d s at %d Hz)", q,
                         (long long)info->frames, (long long)AUDIO_MAX_FRAMES, AUDIO_MAX_SECONDS, AUDIO_RATE);
    return CMCR_OK;
}

/* Grow out->samples to hold at least need samples (doubling, at most cap): a header that
 * claims more frames than the file holds costs no more memory than the file's frames. */
static cmcr_status reserve(audio_mono *out, int64_t *have, int64_t need, int64_t cap, const char *q)
{
    if (need <= *have) return CMCR_OK;
    int64_t n = *have ? *have : 65536;
    while (n < need) n *= 2;
    if (n > cap) n = cap;
    float *p = realloc(out->samples, (size_t)n * sizeof *p);
    if (!p) return core_fail(CMCR_ENOMEM, "%s: cannot allocate %lld samples", q, (long long)n);
    out->samples = p;
    *have = n;
    return CMCR_OK;
}

/* Whether libsndfile found a data chunk shorter than its header declares: it then reads
 * what is there and notes "data : DECLARED (should be FOUND)" in its log, where soundfile
 * (and librosa) go on silently with the part. A declared size of 0 or 0xFFFFFFFF is the
 * mark of a streamed WAV, whose writer could not know the size: not truncation. */
static bool data_chunk_cut(SNDFILE *sf)
{
    char log[8192];
    sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log);
    for (const char *p = log; (p = strstr(p, "data : ")) != NULL; p++) {
        unsigned long long declared, found;
        if ((p == log || p[-1] == '\n') && sscanf(p, "data : %llu (should be %llu)", &declared, &found) == 2 &&
            found < declared && declared != 0xFFFFFFFFull)
            return true;
    }
    return false;
}

/* Read every frame of an open file and mix it to mono (sf_close'd by the caller). */
static cmcr_status read_mono(SNDFILE *sf, const SF_INFO *info, const char *q, audio_mono *out)
{
    cmcr_status st = check_info(info, q);
    if (st != CMCR_OK) return st;
    if (data_chunk_cut(sf))
        return core_fail(CMCR_EFORMAT, "%s: truncated: the data chunk is shorter than its header declares", q);
    float *buf = core_xmalloc((size_t)READ_FRAMES * (size_t)info->channels * sizeof *buf);
    if (!buf) return core_fail(CMCR_ENOMEM, "%s: cannot allocate a read buffer", q);
    int64_t have = 0;
    out->rate = info->samplerate;
    while (out->n < info->frames) {
        sf_count_t want = info->frames - out->n < READ_FRAMES ? info->frames - out->n : READ_FRAMES;
        if ((st = reserve(out, &have, out->n + want, info->frames, q)) != CMCR_OK) break;
        sf_count_t got = sf_readf_float(sf, buf, want);
        if (got <= 0) break;
        mix_down(buf, got, info->channels, out);
    }
    free(buf);
    if (st != CMCR_OK) return st;
    if (sf_error(sf) != SF_ERR_NO_ERROR)
        return core_fail(CMCR_EFORMAT, "%s: malformed audio after %lld of %lld frames (%s)", q, (long long)out->n,
                         (long long)info->frames, sf_strerror(sf));
    /* An MP3's frame count is libmpg123's estimate when the file has no Xing/Info header
     * (VBR): fewer frames than it says is no sign of a cut file there, and soundfile reads
     * what comes, as here. */
    if (out->n < info->frames && (info->format & SF_FORMAT_TYPEMASK) != SF_FORMAT_MPEG)
        return core_fail(CMCR_EFORMAT, "%s: truncated: the header declares %lld frames, the file holds %lld", q,
                         (long long)info->frames, (long long)out->n);
    for (int64_t i = 0; i < out->n; i++)
        if (!isfinite(out->samples[i]))
            return core_fail(CMCR_EVALUE, "%s: sample %lld is not finite (NaN or Inf)", q, (long long)i);
    return CMCR_OK;
}

/* Decode through an open SNDFILE (NULL when sf_open* failed), closing it. */
static cmcr_status decode_open(SNDFILE *sf, const SF_INFO *info, const char *name, audio_mono *out)
{
    char q[NAME_CAP];
    cmcr_printable(q, sizeof q, name);
    if (!sf)
        return core_fail(CMCR_EFORMAT, "%s: not a readable audio file (libsndfile: %s)", q,
                         sf_error_number(sf_error(NULL)));
    cmcr_status st = read_mono(sf, info, q, out);
    sf_close(sf);
    if (st != CMCR_OK) audio_free(out);
    return st;
}

cmcr_status audio_decode_file(const char *path, audio_mono *out)
{
    memset(out, 0, sizeof *out);
    char q[NAME_CAP];
    cmcr_printable(q, sizeof q, path);
    /* O_NONBLOCK: a FIFO (or a device) is refused below instead of blocking the open */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return core_fail(CMCR_EIO, "%s: cannot open: %s", q, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return core_fail(CMCR_EIO, "%s: not a regular file", q);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_fd(fd, SFM_READ, &info, SF_TRUE); /* closes fd, also on failure */
    return decode_open(sf, &info, path, out);
}

/* libsndfile's virtual I/O over a byte range. */
typedef struct mem_cursor {
    const unsigned char *data;
    sf_count_t len, pos;
} mem_cursor;

static sf_count_t mem_length(void *user) { return ((mem_cursor *)user)->len; }

static sf_count_t mem_seek(sf_count_t offset, int whence, void *user)
{
    mem_cursor *m = user;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->len;
    if (offset < -base || offset > m->len - base) return -1; /* within the bytes; no overflow */
    m->pos = base + offset;
    return m->pos;
}

static sf_count_t mem_read(void *ptr, sf_count_t count, void *user)
{
    mem_cursor *m = user;
    if (count < 0) return 0;
    sf_count_t n = m->len - m->pos < count ? m->len - m->pos : count;
    memcpy(ptr, m->data + m->pos, (size_t)n);
    m->pos += n;
    return n;
}

static sf_count_t mem_write(const void *ptr, sf_count_t count, void *user) { return 0; }

static sf_count_t mem_tell(void *user) { return ((mem_cursor *)user)->pos; }

cmcr_status audio_decode_memory(const void *data, size_t len, const char *name, audio_mono *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0) {
        char q[NAME_CAP];
        return core_fail(CMCR_EFORMAT, "%s: not a readable audio file (empty)", cmcr_printable(q, sizeof q, name));
    }
    mem_cursor m = {data, (sf_count_t)len, 0};
    SF_VIRTUAL_IO io = {mem_length, mem_seek, mem_read, mem_write, mem_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_virtual(&io, SFM_READ, &info, &m);
    return decode_open(sf, &info, name, out);
}

/* ------------------------------------------------------------------ resampling */

/* python-soxr's csoxr_divide_proc<float> (the call soxr.resample makes for 1-D input):
 * chunks of chunk_len samples, then one flush, into at most olen samples. */
static cmcr_status soxr_divide_proc(const audio_mono *in, const char *q, float *y, size_t olen, size_t *done)
{
    double in_rate = in->rate, out_rate = AUDIO_RATE;
    soxr_error_t err = NULL;
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t qs = soxr_quality_spec(SOXR_HQ, 0);
    soxr_t s = soxr_create(in_rate, out_rate, 1, &err, &io, &qs, NULL);
    if (err) return core_fail(CMCR_ENOMEM, "%s: cannot make the resampler (libsoxr: %s)", q, err);
    const size_t ilen = (size_t)in->n;
    const size_t chunk_len = (size_t)(48000 * in_rate / out_rate);
    size_t out_pos = 0, odone = 0;
    for (size_t idx = 0; idx < ilen; idx += chunk_len) {
        size_t len = chunk_len < ilen - idx ? chunk_len : ilen - idx;
        err = soxr_process(s, in->samples + idx, len, NULL, y + out_pos, olen - out_pos, &odone);
        out_pos += odone;
    }
    err = soxr_process(s, NULL, 0, NULL, y + out_pos, olen - out_pos, &odone);
    out_pos += odone;
    soxr_delete(s);
    if (err) return core_fail(CMCR_EFORMAT, "%s: resampling failed (libsoxr: %s)", q, err);
    *done = out_pos;
    return CMCR_OK;
}

cmcr_status audio_resample_48k(const audio_mono *in, const char *name, audio_mono *out)
{
    memset(out, 0, sizeof *out);
    char q[NAME_CAP];
    cmcr_printable(q, sizeof q, name);
    if (in->n < 1 || in->rate < AUDIO_MIN_RATE || in->rate > AUDIO_MAX_RATE)
        return core_fail(CMCR_EINVAL, "%s: cannot resample %lld samples at %d Hz", q, (long long)in->n, in->rate);
    /* librosa: ratio = float(target_sr) / orig_sr; n_samples = int(np.ceil(n * ratio)). */
    const double ratio = (double)AUDIO_RATE / in->rate;
    const int64_t want = in->rate == AUDIO_RATE ? in->n : (int64_t)ceil((double)in->n * ratio);
    const size_t olen = (size_t)((double)in->n * AUDIO_RATE / in->rate) + 1; /* python-soxr's olen */
    const size_t cap = olen > (size_t)want ? olen : (size_t)want;
    out->samples = calloc(cap, sizeof *out->samples); /* fix_length pads with zeros */
    if (!out->samples) return core_fail(CMCR_ENOMEM, "%s: cannot allocate %zu resampled samples", q, cap);
    out->rate = AUDIO_RATE;
    out->n = want;
    if (in->rate == AUDIO_RATE) { /* librosa returns y itself */
        memcpy(out->samples, in->samples, (size_t)in->n * sizeof *out->samples);
        return CMCR_OK;
    }
    size_t done = 0;
    cmcr_status st = soxr_divide_proc(in, q, out->samples, olen, &done);
    if (st != CMCR_OK) {
        audio_free(out);
        return st;
    }
    if (done < (size_t)want) memset(out->samples + done, 0, ((size_t)want - done) * sizeof *out->samples);
    /* Finite samples near FLT_MAX (a float file may hold them) overflow in the filter. */
    for (int64_t i = 0; i < out->n; i++)
        if (!isfinite(out->samples[i])) {
            audio_free(out);
            return core_fail(CMCR_EVALUE, "%s: resampling made sample %lld non-finite (input values too large)", q,
                             (long long)i);
        }
    return CMCR_OK;
}

/* ------------------------------------------------------------------ quantise and fill */

void audio_quantize(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float c = x[i] < -1.f ? -1.f : x[i] > 1.f ? 1.f : x[i] == x[i] ? x[i] : 0.f; /* NaN: 0, not UB */
        int16_t v = (int16_t)(c * 32767.f);
        x[i] = (float)((double)v / 32767.0);
    }
}

void audio_fill(const float *x, int64_t n, float *out)
{
    int64_t reps = AUDIO_CLIP / n, pos = 0;
    for (int64_t r = 0; r < reps; r++, pos += n) memcpy(out + pos, x, (size_t)n * sizeof *out);
    memset(out + pos, 0, (size_t)(AUDIO_CLIP - pos) * sizeof *out);
}

/* The steps after decoding, shared by a file and a buffer. */
static cmcr_status clap_input_from(audio_mono *raw, const char *name, uint64_t seed, float *out, bool *longer)
{
    audio_mono y;
    cmcr_status st = audio_resample_48k(raw, name, &y);
    audio_free(raw);
    if (st != CMCR_OK) return st;
    audio_quantize(y.samples, y.n);
    st = audio_fusion_input(y.samples, y.n, seed, name, out, longer, NULL);
    audio_free(&y);
    return st;
}

cmcr_status audio_clap_input_memory(const void *data, size_t len, const char *name, uint64_t seed, float *out,
                                    bool *longer)
{
    audio_mono raw;
    cmcr_status st = audio_decode_memory(data, len, name, &raw);
    return st != CMCR_OK ? st : clap_input_from(&raw, name, seed, out, longer);
}

cmcr_status audio_clap_input_file(const char *path, uint64_t seed, float *out, bool *longer)
{
    audio_mono raw;
    cmcr_status st = audio_decode_file(path, &raw);
    return st != CMCR_OK ? st : clap_input_from(&raw, path, seed, out, longer);
}
