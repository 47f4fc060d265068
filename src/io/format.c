/* format.c - which format a file is in, and loading/saving a tensor set by format. */
#include "io/io.h"
#include "runtime/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ format dispatch */

const char *cmcr_format_name(cmcr_format f)
{
    switch (f) {
    case CMCR_FORMAT_AUTO: return "auto";
    case CMCR_FORMAT_NPY: return "npy";
    case CMCR_FORMAT_SAFETENSORS: return "safetensors";
    case CMCR_FORMAT_PT: return "pt";
    }
    return "?";
}

static cmcr_format format_from_name(const char *path)
{
    if (core_ends_with(path, ".npy")) return CMCR_FORMAT_NPY;
    if (core_ends_with(path, ".safetensors")) return CMCR_FORMAT_SAFETENSORS;
    if (core_ends_with(path, ".pt") || core_ends_with(path, ".pth") || core_ends_with(path, ".bin")) return CMCR_FORMAT_PT;
    return CMCR_FORMAT_AUTO;
}

/* The format from a file's first n (<= 8) bytes, and its name where they do not tell. */
static cmcr_status format_of(const unsigned char *magic, size_t n, const char *name, cmcr_format *fmt)
{
    if (n == 0) return core_fail(CMCR_EFORMAT, "%s: file is empty", name);
    if (n >= 6 && memcmp(magic, "\x93NUMPY", 6) == 0) *fmt = CMCR_FORMAT_NPY;
    else if (n >= 4 && memcmp(magic, "PK\x03\x04", 4) == 0) *fmt = CMCR_FORMAT_PT;
    else if (format_from_name(name) != CMCR_FORMAT_AUTO) *fmt = format_from_name(name); /* its reader names the problem */
    else if (n == 8) *fmt = CMCR_FORMAT_SAFETENSORS; /* 8-byte header length; validated there */
    else return core_fail(CMCR_EFORMAT, "%s: too short (%zu bytes) to be a tensor file", name, n);
    return CMCR_OK;
}

cmcr_status cmcr_file_format(const char *path, cmcr_format *fmt)
{
    unsigned char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return core_fail(CMCR_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    return format_of(magic, n, path, fmt);
}

typedef cmcr_status (*stream_loader)(FILE *f, const char *name, cmcr_tensors **out);

static cmcr_status load_file(const char *path, stream_loader load, cmcr_tensors **out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return core_fail(CMCR_EIO, "%s: cannot open: %s", path, strerror(errno));
    return load(f, path, out);
}

static cmcr_status load_memory(const void *data, size_t len, const char *name, stream_loader load,
                               cmcr_tensors **out)
{
    if (len == 0) return core_fail(CMCR_EFORMAT, "%s: file is empty", name);
    FILE *f = file_open_memory(data, len);
    if (!f) return core_fail(CMCR_ENOMEM, "%s: cannot open a stream over memory", name);
    return load(f, name, out);
}

cmcr_status cmcr_tensors_load_memory(const void *data, size_t len, cmcr_format fmt, const char *name,
                                     cmcr_tensors **out)
{
    *out = NULL;
    if (!name) name = "(memory)";
    if (!data && len) return core_fail(CMCR_EINVAL, "%s: no data", name);
    cmcr_status st = fmt == CMCR_FORMAT_AUTO ? format_of(data, len < 8 ? len : 8, name, &fmt) : CMCR_OK;
    if (st) return st;
    switch (fmt) {
    case CMCR_FORMAT_NPY: return load_memory(data, len, name, npy_load_stream, out);
    case CMCR_FORMAT_SAFETENSORS: return safetensors_load_memory(data, len, name, out);
    case CMCR_FORMAT_PT: return pt_load_memory(data, len, name, out);
    default: return core_fail(CMCR_EINVAL, "%s: unknown format", name);
    }
}

cmcr_status cmcr_tensors_load(const char *path, cmcr_format fmt, cmcr_tensors **out)
{
    *out = NULL;
    if (fmt == CMCR_FORMAT_AUTO) {
        cmcr_status st = cmcr_file_format(path, &fmt);
        if (st) return st;
    }
    switch (fmt) {
    case CMCR_FORMAT_NPY: return load_file(path, npy_load_stream, out);
    case CMCR_FORMAT_SAFETENSORS: return load_file(path, safetensors_load_stream, out);
    case CMCR_FORMAT_PT: return pt_load(path, out);
    default: return core_fail(CMCR_EINVAL, "%s: unknown format", path);
    }
}

/* CMCR_NO_MMAP set to anything but "" or "0": read files whole rather than map them. */
static bool mapping_off(void)
{
    const char *e = getenv("CMCR_NO_MMAP");
    return e && *e && strcmp(e, "0") != 0;
}

cmcr_status tensors_load_mapped(const char *path, cmcr_format fmt, cmcr_tensors **out)
{
    *out = NULL;
    if (fmt == CMCR_FORMAT_AUTO) {
        cmcr_status st = cmcr_file_format(path, &fmt);
        if (st) return st;
    }
    if (fmt == CMCR_FORMAT_SAFETENSORS && !mapping_off()) return safetensors_load_mapped(path, out);
    return cmcr_tensors_load(path, fmt, out);
}

cmcr_status cmcr_tensors_save(const cmcr_tensors *ts, const char *path, cmcr_format fmt)
{
    if (fmt == CMCR_FORMAT_AUTO) fmt = format_from_name(path);
    switch (fmt) {
    case CMCR_FORMAT_NPY:
        if (cmcr_tensors_count(ts) != 1)
            return core_fail(CMCR_EINVAL, "%s: a .npy file holds one tensor, not %zu", path, cmcr_tensors_count(ts));
        return npy_save(cmcr_tensors_at(ts, 0), path);
    case CMCR_FORMAT_SAFETENSORS: return safetensors_save(ts, path);
    case CMCR_FORMAT_PT: return pt_save(ts, path);
    default:
        return core_fail(CMCR_EINVAL, "%s: cannot tell the format from the name (use .npy, .safetensors or .pt)",
                         path);
    }
}
