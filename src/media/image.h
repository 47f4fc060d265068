/* image.h - images for the CLIP front end: JPEG and PNG decoding to RGB, Pillow's bicubic
 * resize and Hugging Face CLIPImageProcessor's resize + centre crop + normalisation, each
 * byte for byte (or bit for bit) equal to Pillow 9.4 and transformers' float sequence.
 * docs/images.md says what is matched, how it is checked and what is not. Internal. */
#ifndef CMCR_MEDIA_IMAGE_H
#define CMCR_MEDIA_IMAGE_H

#include "runtime/core.h"

#include <stddef.h>
#include <stdint.h>

/* Pillow's decompression-bomb error threshold (2 * Image.MAX_IMAGE_PIXELS): larger images
 * are refused before any pixel is allocated. */
#define IMAGE_MAX_PIXELS 178956970LL
/* Largest file image_decode_file reads (1 GiB). */
#define IMAGE_MAX_FILE_BYTES (1ULL << 30)

/* Row-major RGB, 3 bytes per pixel, malloc'd (pixels is NULL after image_rgb_free). */
typedef struct image_rgb {
    int32_t width, height;
    uint8_t *pixels;
} image_rgb;

/* Decode a JPEG or PNG (told by magic bytes, not extension) and convert it to RGB exactly as
 * Pillow 9.4's Image.open(p).convert("RGB") does. On failure *out is empty (pixels NULL) and
 * the message names the file: not a JPEG or PNG, malformed or truncated (CMCR_EFORMAT),
 * zero-size, or over IMAGE_MAX_PIXELS (CMCR_ENOMEM). Re-entrant. */
cmcr_status image_decode_file(const char *path, image_rgb *out);
/* The same from len bytes at data; name is used in messages only. */
cmcr_status image_decode_memory(const void *data, size_t len, const char *name, image_rgb *out);
/* Free im's pixels and zero it (NULL or empty is fine). */
void image_rgb_free(image_rgb *im);

/* Pillow's Image.resize((width, height), Image.BICUBIC) with reducing_gap None, exact: into
 * a fresh *out. width and height must be >= 1 (CMCR_EINVAL otherwise). */
cmcr_status image_resize_bicubic(const image_rgb *in, int32_t width, int32_t height, const char *name,
                                 image_rgb *out);

/* Hugging Face CLIPImageProcessor's resize and crop: the shortest side to size (Pillow
 * bicubic; the other side int(size * long / short) as transformers computes it), then the
 * centre size x size window (top = (h - size) / 2, left = (w - size) / 2, floored). Only the
 * window is computed, so extreme aspect ratios cost no more than square images; the result
 * equals resize-then-crop exactly. out holds size * size * 3 bytes (RGB, row-major). */
cmcr_status image_clip_crop(const image_rgb *in, int32_t size, const char *name, uint8_t *out);

/* The geometry of image_clip_crop: the resized image is new_w x new_h, and the crop its
 * size x size window from (left, top). Pillow's resize maps resized pixel x to the source
 * interval [x * w / new_w, (x + 1) * w / new_w), so the crop covers the source's
 * [left * w / new_w, (left + size) * w / new_w) horizontally (vertically alike). */
typedef struct image_crop_geometry {
    int32_t new_w, new_h, left, top;
} image_crop_geometry;
cmcr_status image_clip_geometry(int32_t width, int32_t height, int32_t size, const char *name, image_crop_geometry *g);

/* Encode im as an 8-bit RGB PNG (libpng, zlib's default level) into a malloc'd buffer
 * (*png, *len). Re-entrant; name is used in messages only. */
cmcr_status image_encode_png(const image_rgb *im, const char *name, unsigned char **png, size_t *len);

/* The processor's rescale and normalise into channel-first float32 (3 x size x size):
 * x = (float)(u8 * (1.0 / 255.0)) in double, then (x - (float)mean[c]) / (float)std[c] in
 * float, the operations transformers does in NumPy; bit for bit equal to it. */
void image_to_chw(const uint8_t *rgb, int32_t size, const float mean[3], const float std[3], float *chw);

#endif
