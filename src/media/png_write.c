/* png_write.c - RGB images to PNG in memory (libpng), for the localisation overlays that the
 * command writes to a file and the server sends as they are. libpng reports errors by
 * longjmp back to the call, which turns them into a status: never exit, never print. */
#include "media/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* The growing output buffer libpng writes into. */
typedef struct png_sink {
    unsigned char *data;
    size_t len, cap;
    bool oom;
    char msg[200];
} png_sink;

static void sink_write(png_structp png, png_bytep bytes, size_t n)
{
    png_sink *s = png_get_io_ptr(png);
    if (s->oom) return;
    if (n > s->cap - s->len) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap - s->len < n) {
            if (cap > SIZE_MAX / 2) {
                s->oom = true;
                return;
            }
            cap *= 2;
        }
        unsigned char *d = realloc(s->data, cap);
        if (!d) {
            s->oom = true;
            return;
        }
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, bytes, n);
    s->len += n;
}

static void sink_flush(png_structp png)
{
    (void)png;
}

static void sink_error(png_structp png, png_const_charp msg)
{
    png_sink *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void sink_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* The encoding itself; rows points at each row of im. Separate from the caller so that no
 * local it changes lives across the setjmp. */
static bool png_encode_rows(png_structp png, png_infop info, const image_rgb *im, png_bytep *rows)
{
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_IHDR(png, info, (png_uint_32)im->width, (png_uint_32)im->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return true;
}

cmcr_status image_encode_png(const image_rgb *im, const char *name, unsigned char **png_out, size_t *len)
{
    name = name ? name : "<image>";
    *png_out = NULL;
    *len = 0;
    if (!im || !im->pixels || im->width < 1 || im->height < 1)
        return core_fail(CMCR_EINVAL, "%s: no image to encode as PNG", name);
    png_sink sink = {0};
    png_bytep *rows = malloc((size_t)im->height * sizeof *rows);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, sink_error, sink_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!rows || !png || !info) {
        png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
        free(rows);
        return core_fail(CMCR_ENOMEM, "%s: out of memory encoding a PNG", name);
    }
    for (int32_t y = 0; y < im->height; y++) rows[y] = im->pixels + (size_t)y * (size_t)im->width * 3;
    png_set_write_fn(png, &sink, sink_write, sink_flush);
    bool ok = png_encode_rows(png, info, im, rows);
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (sink.oom || !ok) {
        free(sink.data);
        if (sink.oom)
            return core_fail(CMCR_ENOMEM, "%s: out of memory encoding a %dx%d PNG", name, im->width, im->height);
        return core_fail(CMCR_EINVAL, "%s: libpng cannot encode the image: %s", name, sink.msg);
    }
    *png_out = sink.data;
    *len = sink.len;
    return CMCR_OK;
}
