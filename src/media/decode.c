/* decode.c - JPEG (libjpeg-turbo) and PNG (libpng) to RGB, as Pillow 9.4's
 * Image.open(p).convert("RGB"). The decoders are the libraries Pillow itself uses (Pillow's
 * PNG path is zlib plus its own unfiltering, which gives the same bytes); what is Pillow's
 * own is the mode each file opens in and the conversion to RGB, reproduced here:
 *   JPEG  1 component: L, replicated.  3: libjpeg's RGB output.  4 (CMYK or YCCK): libjpeg's
 *         CMYK output read as Adobe-inverted ("CMYK;I"), then Pillow's cmyk2rgb.
 *   PNG   grey 1/2/4/8 bit: scaled to 8 bit, replicated.  grey 16 bit: mode "I", clipped to
 *         0..255.  every other 16-bit type: the high byte.  palette: Pillow's table (PLTE,
 *         then the grey ramp i,i,i for indices past it).  alpha and tRNS: dropped.
 * Both decoders report errors by longjmp back to the call (never exit, never print). */
#include "media/image.h"
#include "runtime/file.h"

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define NAME_CAP 1024 /* a file name as shown in messages (cmcr_printable cuts longer ones) */

void image_rgb_free(image_rgb *im)
{
    if (!im) return;
    free(im->pixels);
    im->pixels = NULL;
    im->width = im->height = 0;
}

/* Refuse an empty image or one past Pillow's decompression-bomb error limit, before any
 * pixel is allocated. */
static cmcr_status check_size(const char *name, uint64_t w, uint64_t h)
{
    if (w == 0 || h == 0)
        return core_fail(CMCR_EFORMAT, "%s: image has no pixels (%llux%llu)", name, (unsigned long long)w,
                         (unsigned long long)h);
    if (w > INT32_MAX || h > INT32_MAX || w * h > (uint64_t)IMAGE_MAX_PIXELS)
        return core_fail(CMCR_ENOMEM, "%s: image is %llux%llu pixels, more than the limit of %lld pixels", name,
                         (unsigned long long)w, (unsigned long long)h, IMAGE_MAX_PIXELS);
    return CMCR_OK;
}

/* A fresh w x h RGB image in *out. */
static cmcr_status rgb_alloc(const char *name, uint32_t w, uint32_t h, image_rgb *out)
{
    out->pixels = core_xmalloc((size_t)w * h * 3); /* w * h <= IMAGE_MAX_PIXELS: no overflow */
    if (!out->pixels) return core_fail(CMCR_ENOMEM, "%s: cannot allocate %ux%u RGB pixels", name, w, h);
    out->width = (int32_t)w;
    out->height = (int32_t)h;
    return CMCR_OK;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct jpeg_ctx {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    bool truncated;
    const char *name;
    uint8_t *row; /* one row of grey or CMYK samples */
    image_rgb *out;
} jpeg_ctx;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_ctx *x = (jpeg_ctx *)c->client_data;
    c->err->format_message(c, x->msg);
    longjmp(x->jump, 1);
}

/* Warnings (corrupt data that libjpeg works around) are ignored, as Pillow ignores them;
 * running out of data is an error, as in Pillow, which says "image file is truncated"
 * unless ImageFile.LOAD_TRUNCATED_IMAGES is set. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    jpeg_ctx *x = (jpeg_ctx *)c->client_data;
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        x->truncated = true;
        longjmp(x->jump, 1);
    }
}

/* Pillow's cmyk2rgb on the inverted samples: r = nk - nk * c / 255 (rounded as MULDIV255). */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, uint32_t w)
{
    for (uint32_t x = 0; x < w; x++, in += 4, out += 3) {
        int nk = in[3]; /* 255 - (255 - k): libjpeg's value is the inverted K */
        for (int c = 0; c < 3; c++) {
            int t = (255 - in[c]) * nk + 128;
            out[c] = (uint8_t)(nk - (((t >> 8) + t) >> 8));
        }
    }
}

/* The part that can longjmp: everything it allocates hangs off x, freed by the caller. */
static cmcr_status jpeg_run(jpeg_ctx *x, const void *data, size_t len)
{
    if (setjmp(x->jump)) {
        if (x->truncated)
            return core_fail(CMCR_EFORMAT, "%s: truncated JPEG (the data ends before the image does)", x->name);
        return core_fail(CMCR_EFORMAT, "%s: corrupt JPEG: %s", x->name, x->msg);
    }
    struct jpeg_decompress_struct *ci = &x->cinfo;
    jpeg_create_decompress(ci);
    jpeg_mem_src(ci, (const unsigned char *)data, (unsigned long)len);
    jpeg_read_header(ci, TRUE);
    int nc = ci->num_components;
    if (nc != 1 && nc != 3 && nc != 4)
        return core_fail(CMCR_EUNSUPPORTED, "%s: JPEG with %d components (Pillow reads 1, 3 or 4)", x->name, nc);
    cmcr_status st = check_size(x->name, ci->image_width, ci->image_height);
    if (st != CMCR_OK) return st;
    ci->out_color_space = nc == 1 ? JCS_GRAYSCALE : nc == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_start_decompress(ci);
    uint32_t w = ci->output_width, h = ci->output_height;
    if ((st = rgb_alloc(x->name, w, h, x->out)) != CMCR_OK) return st;
    if (nc != 3 && !(x->row = core_xmalloc((size_t)w * (unsigned)nc)))
        return core_fail(CMCR_ENOMEM, "%s: cannot allocate a JPEG row", x->name);
    while (ci->output_scanline < h) {
        uint8_t *dst = x->out->pixels + (size_t)ci->output_scanline * w * 3;
        JSAMPROW row = nc == 3 ? dst : x->row;
        jpeg_read_scanlines(ci, &row, 1);
        if (nc == 1) {
            for (uint32_t i = 0; i < w; i++) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = x->row[i];
        } else if (nc == 4) {
            cmyk_row_to_rgb(x->row, dst, w);
        }
    }
    jpeg_finish_decompress(ci); /* reads to EOI: a file cut after the last row is truncated too */
    return CMCR_OK;
}

static cmcr_status decode_jpeg(const void *data, size_t len, const char *name, image_rgb *out)
{
    jpeg_ctx *x = calloc(1, sizeof *x);
    if (!x) return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    x->name = name;
    x->out = out;
    x->cinfo.err = jpeg_std_error(&x->err);
    x->err.error_exit = jpeg_on_error;
    x->err.emit_message = jpeg_on_message;
    x->cinfo.client_data = x;
    cmcr_status st = jpeg_run(x, data, len);
    jpeg_destroy_decompress(&x->cinfo);
    free(x->row);
    free(x);
    if (st != CMCR_OK) image_rgb_free(out);
    return st;
}

/* ------------------------------------------------------------------ PNG */

/* libpng's progressive reader, fed the whole file: like Pillow, which inflates IDAT until it
 * has every row, it accepts a file that ends after the last row (without the zlib checksum,
 * the last CRC or IEND; an error past the last row is ignored too) and refuses one that ends
 * before. Interlace handling is left off: each pass's rows arrive once and are placed here,
 * so that "every row arrived" is a count. */
typedef struct png_ctx {
    png_structp png;
    png_infop info;
    const char *name;
    char msg[200];
    cmcr_status failed; /* set, with core_fail, by a callback that refuses the image */
    bool done, ended; /* every row arrived; IEND was read */
    char warning[200]; /* libpng's last warning (a bad zlib stream is only a warning to it) */
    int color, depth, interlaced;
    uint32_t w, h;
    size_t bpp;             /* bytes per pixel of the decoded rows */
    uint64_t rows_left;     /* rows, over all passes, still to come */
    uint8_t pal[256][3];
    uint8_t *raw;           /* interlaced: the whole image of decoded samples */
    image_rgb *out;
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_ctx *x = png_get_error_ptr(png);
    snprintf(x->msg, sizeof x->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings are things Pillow ignores too (unknown chunks, sRGB profiles), kept only to
 * explain image data that stops early. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    png_ctx *x = png_get_error_ptr(png);
    snprintf(x->warning, sizeof x->warning, "%s", msg);
}

static void png_on_end(png_structp png, png_infop info)
{
    (void)info;
    ((png_ctx *)png_get_progressive_ptr(png))->ended = true;
}

/* The colour table Pillow uses for a "P" image: the grey ramp, PLTE's entries over it. */
static void png_palette(png_ctx *x)
{
    for (int i = 0; i < 256; i++) x->pal[i][0] = x->pal[i][1] = x->pal[i][2] = (uint8_t)i;
    png_colorp p = NULL;
    int n = 0;
    if (png_get_PLTE(x->png, x->info, &p, &n) && p) {
        for (int i = 0; i < n && i < 256; i++) {
            x->pal[i][0] = p[i].red;
            x->pal[i][1] = p[i].green;
            x->pal[i][2] = p[i].blue;
        }
    }
}

/* One row of decoded samples (after the transforms chosen in png_on_info) to RGB. */
static void png_row_to_rgb(const png_ctx *x, const uint8_t *in, uint8_t *o)
{
    for (uint32_t i = 0; i < x->w; i++, o += 3) {
        switch (x->color) {
        case PNG_COLOR_TYPE_GRAY:
            if (x->depth == 16) { /* mode "I", then convert("RGB") clips to 0..255 */
                unsigned v = (unsigned)in[2 * i] << 8 | in[2 * i + 1];
                o[0] = o[1] = o[2] = (uint8_t)(v > 255 ? 255 : v);
            } else {
                o[0] = o[1] = o[2] = in[i];
            }
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: o[0] = o[1] = o[2] = in[2 * i]; break;
        case PNG_COLOR_TYPE_PALETTE: memcpy(o, x->pal[in[i]], 3); break;
        case PNG_COLOR_TYPE_RGB: memcpy(o, in + 3 * i, 3); break;
        default: memcpy(o, in + 4 * i, 3); break; /* RGBA: alpha dropped, not composited */
        }
    }
}

/* Refuse from inside a callback: the message is set, png_run returns the status. */
static void png_refuse(png_ctx *x, cmcr_status st)
{
    x->failed = st;
    png_longjmp(x->png, 1);
}

/* The header is read (libpng calls this at the first IDAT): size checks, transforms, buffers. */
static void png_on_info(png_structp png, png_infop info)
{
    png_ctx *x = png_get_progressive_ptr(png);
    /* Pillow checks the CRC of every chunk before the image data and of none inside it. */
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    x->w = png_get_image_width(png, info);
    x->h = png_get_image_height(png, info);
    x->color = png_get_color_type(png, info);
    x->depth = png_get_bit_depth(png, info);
    x->interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    cmcr_status st = check_size(x->name, x->w, x->h);
    if (st != CMCR_OK) png_refuse(x, st);
    if (x->depth < 8) {
        if (x->color == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png); /* scaled as Pillow's 1, L;2, L;4 */
        else png_set_packing(png);                                                /* palette indices, unscaled */
    }
    if (x->depth == 16 && x->color != PNG_COLOR_TYPE_GRAY) png_set_strip_16(png); /* the high byte, as RGB;16B */
    png_read_update_info(png, info);
    x->bpp = png_get_rowbytes(png, info) / x->w;
    png_palette(x);
    x->rows_left = x->h;
    if (x->interlaced) {
        x->rows_left = 0;
        for (int p = 0; p < 7; p++) /* libpng skips the passes that hold no pixel */
            if (PNG_PASS_COLS(x->w, p) && PNG_PASS_ROWS(x->h, p)) x->rows_left += PNG_PASS_ROWS(x->h, p);
        if (!(x->raw = core_xmalloc((size_t)x->w * x->h * x->bpp))) /* bpp <= 8, w * h bounded */
            png_refuse(x, core_fail(CMCR_ENOMEM, "%s: cannot allocate the interlaced PNG's rows", x->name));
    }
    if ((st = rgb_alloc(x->name, x->w, x->h, x->out)) != CMCR_OK) png_refuse(x, st);
}

/* A row of the image, or of one Adam7 pass (row_num counts within the pass). */
static void png_on_row(png_structp png, png_bytep row, png_uint_32 row_num, int pass)
{
    png_ctx *x = png_get_progressive_ptr(png);
    if (!row || x->rows_left == 0) return;
    if (!x->interlaced) {
        if (row_num < x->h) png_row_to_rgb(x, row, x->out->pixels + (size_t)row_num * x->w * 3);
    } else {
        uint64_t y = PNG_PASS_START_ROW(pass) + (uint64_t)row_num * PNG_PASS_ROW_OFFSET(pass);
        uint32_t cols = PNG_PASS_COLS(x->w, pass);
        for (uint32_t j = 0; j < cols && y < x->h; j++) {
            size_t col = PNG_PASS_START_COL(pass) + (size_t)j * PNG_PASS_COL_OFFSET(pass);
            memcpy(x->raw + ((size_t)y * x->w + col) * x->bpp, row + (size_t)j * x->bpp, x->bpp);
        }
    }
    if (--x->rows_left == 0) x->done = true;
}

/* The part that can longjmp: everything it allocates hangs off x, freed by the caller. */
static cmcr_status png_run(png_ctx *x, const void *data, size_t len)
{
    if (setjmp(png_jmpbuf(x->png))) {
        if (x->failed != CMCR_OK) return x->failed;
        if (x->done) goto complete; /* an error after the last row: Pillow reads no further either */
        return core_fail(CMCR_EFORMAT, "%s: corrupt PNG: %s", x->name, x->msg);
    }
    png_set_progressive_read_fn(x->png, x, png_on_info, png_on_row, png_on_end);
    png_set_user_limits(x->png, 0x7fffffff, 0x7fffffff); /* Pillow has no width limit: the pixel count decides */
    png_set_crc_action(x->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_process_data(x->png, x->info, (png_bytep)(uintptr_t)data, len); /* libpng only reads it */
    if (!x->done && x->ended)
        return core_fail(CMCR_EFORMAT, "%s: corrupt PNG: the image data stops before the last row (%s)", x->name,
                         x->warning[0] ? x->warning : "no more IDAT");
    if (!x->done) return core_fail(CMCR_EFORMAT, "%s: truncated PNG (the data ends before the image does)", x->name);
complete:
    if (x->interlaced)
        for (uint32_t y = 0; y < x->h; y++)
            png_row_to_rgb(x, x->raw + (size_t)y * x->w * x->bpp, x->out->pixels + (size_t)y * x->w * 3);
    return CMCR_OK;
}

static cmcr_status decode_png(const void *data, size_t len, const char *name, image_rgb *out)
{
    png_ctx *x = calloc(1, sizeof *x);
    if (!x) return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    x->name = name;
    x->out = out;
    cmcr_status st = CMCR_ENOMEM;
    x->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, x, png_on_error, png_on_warning);
    if (x->png) x->info = png_create_info_struct(x->png);
    if (x->info) st = png_run(x, data, len);
    else core_fail(st, "%s: out of memory", name);
    png_destroy_read_struct(x->png ? &x->png : NULL, x->info ? &x->info : NULL, NULL);
    free(x->raw);
    free(x);
    if (st != CMCR_OK) image_rgb_free(out);
    return st;
}

/* ------------------------------------------------------------------ entry points */

cmcr_status image_decode_memory(const void *data, size_t len, const char *name, image_rgb *out)
{
    memset(out, 0, sizeof *out);
    char shown[NAME_CAP];
    cmcr_printable(shown, sizeof shown, name ? name : "<memory>");
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = data;
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return decode_jpeg(data, len, shown, out);
    if (len >= 8 && !memcmp(b, png_magic, 8)) return decode_png(data, len, shown, out);
    if (len == 0) return core_fail(CMCR_EFORMAT, "%s: file is empty (not a JPEG or PNG image)", shown);
    return core_fail(CMCR_EFORMAT, "%s: not a JPEG or PNG image", shown);
}

cmcr_status image_decode_file(const char *path, image_rgb *out)
{
    memset(out, 0, sizeof *out);
    unsigned char *buf = NULL;
    size_t len = 0;
    cmcr_status st = file_read_all(path, IMAGE_MAX_FILE_BYTES, &buf, &len);
    if (st == CMCR_OK) st = image_decode_memory(buf, len, path, out);
    free(buf);
    return st;
}
