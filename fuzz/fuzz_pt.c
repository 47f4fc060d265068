/* fuzz_pt.c - libFuzzer target: cmcr_tensors_load on an arbitrary PyTorch .pt (zip + pickle).
 *
 * Two kinds of input:
 *  - starting with "PK": the bytes are the file, as is (the zip layer and everything behind it);
 *  - anything else is a recipe for a well-formed zip, so that mutations reach the pickle
 *    interpreter and the storage checks instead of failing libzip's CRC and structure checks:
 *    a sequence of entries, each 1 byte name length n, n bytes of name, 4 bytes little-endian
 *    data length s, s bytes of data (truncated entries are cut to what is there). The harness
 *    stores them, uncompressed, in an archive built with libzip and loads that.
 * fuzz/make_seeds.sh writes recipes of the seed checkpoints (recipe_*.bin). */
#include "cmcr.h"
#include "fuzz_common.h"

#include <string.h>
#include <zip.h>

/* Build the zip described by a recipe; returns a malloc'd buffer (NULL when nothing usable). */
static uint8_t *zip_from_recipe(const uint8_t *p, size_t n, size_t *out_len)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
    zip_error_fini(&ze);
    if (!za) {
        if (src) zip_source_free(src);
        return NULL;
    }
    size_t i = 0;
    int entries = 0;
    while (i < n && entries < 64) {
        size_t nl = p[i++];
        if (nl == 0 || i + nl > n) break;
        char name[256];
        memcpy(name, p + i, nl);
        name[nl] = '\0';
        i += nl;
        size_t len = 0;
        if (i + 4 <= n) len = (size_t)p[i] | (size_t)p[i + 1] << 8 | (size_t)p[i + 2] << 16 | (size_t)p[i + 3] << 24;
        i = i + 4 <= n ? i + 4 : n;
        if (len > n - i) len = n - i;
        zip_source_t *e = zip_source_buffer(za, p + i, len, 0);
        zip_int64_t idx = e ? zip_file_add(za, name, e, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0) {
            if (e) zip_source_free(e); /* e.g. a duplicate name */
        } else {
            zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
            entries++;
        }
        i += len;
    }
    zip_source_keep(src);
    uint8_t *buf = NULL;
    if (zip_close(za) != 0) {
        zip_discard(za);
    } else {
        zip_stat_t sb;
        if (zip_source_open(src) == 0) {
            if (zip_source_stat(src, &sb) == 0 && (sb.valid & ZIP_STAT_SIZE) && (buf = malloc(sb.size ? sb.size : 1))) {
                zip_int64_t got = zip_source_read(src, buf, sb.size);
                if (got < 0 || (zip_uint64_t)got != sb.size) {
                    free(buf);
                    buf = NULL;
                } else {
                    *out_len = (size_t)sb.size;
                }
            }
            zip_source_close(src);
        }
    }
    zip_source_free(src);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *built = NULL;
    if (!(size >= 2 && data[0] == 'P' && data[1] == 'K')) {
        size_t len = 0;
        built = zip_from_recipe(data, size, &len);
        if (!built) return 0;
        data = built;
        size = len;
    }
    cmcr_tensors *ts = NULL;
    if (cmcr_tensors_load_memory(data, size, CMCR_FORMAT_PT, "input.pt", &ts) == CMCR_OK) {
        /* Touch what was loaded: names and every byte of each tensor. */
        size_t sum = 0;
        for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
            const cmcr_tensor *t = cmcr_tensors_at(ts, i);
            sum += (size_t)t->name[0] + (size_t)cmcr_tensor_numel(t);
            for (size_t b = 0; b < t->nbytes; b++) sum += ((const unsigned char *)t->data)[b];
        }
        (void)sum;
    }
    cmcr_tensors_free(ts);
    free(built);
    return 0;
}
