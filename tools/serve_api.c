/* serve_api.c - cmcr serve's endpoints (docs/serve.md): the page, the server's description,
 * gallery files by row, and the computations (embed, search, localise) that the workers run.
 * Each endpoint checks its query arguments when the headers come (so a bad request is
 * refused before its body is read) and makes a reply: JSON through cJSON, a file, or a PNG.
 * Every error is {"error":"one line"} with a 4xx or 5xx status. */
#define _DEFAULT_SOURCE /* strdup */
#include <stdio.h>
#include "serve.h"
#include "json_text.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ replies */

void reply_error(reply *r, int status, const char *fmt, ...)
{
    char msg[1024], shown[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cmcr_printable(shown, sizeof shown, msg); /* one line, whatever a file name holds */
    if (!r->fixed) free(r->body);
    cJSON *o = cJSON_CreateObject();
    char *body = o && cJSON_AddStringToObject(o, "error", shown) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    *r = (reply){.status = status, .type = "application/json", .fd = -1};
    if (body) r->body = body, r->len = strlen(body);
    else r->body = "{\"error\":\"out of memory\"}", r->len = strlen(r->body), r->fixed = true, r->status = 500;
}

/* o as the reply (200), taking it. */
static void reply_json(reply *r, cJSON *o)
{
    char *body = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!body) return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory for the answer");
    *r = (reply){.status = MHD_HTTP_OK, .type = "application/json", .body = body, .len = strlen(body), .fd = -1};
}

/* The status of a library failure: the request's fault (4xx) unless the server's. */
static int status_of(cmcr_status st)
{
    switch (st) {
    case CMCR_EINVAL: return MHD_HTTP_BAD_REQUEST;
    case CMCR_EUNSUPPORTED: return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE; /* well-formed, but not what the encoder reads */
    case CMCR_EFORMAT:
    case CMCR_ESHAPE:
    case CMCR_EVALUE: return MHD_HTTP_UNPROCESSABLE_CONTENT;        /* corrupt, truncated, unusable values */
    case CMCR_ENOMEM: return MHD_HTTP_CONTENT_TOO_LARGE;            /* beyond the library's size limits */
    default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* ------------------------------------------------------------------ arguments */

typedef struct arg_scan {
    const char *const *allowed;
    const char *unknown;
} arg_scan;

static enum MHD_Result arg_seen(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    arg_scan *a = cls;
    for (const char *const *k = a->allowed; *k; k++)
        if (strcmp(*k, key) == 0) return MHD_YES;
    a->unknown = key;
    return MHD_NO;
}

/* Every query argument must be one the endpoint takes: a misspelt one is not ignored. */
static bool known_args(struct MHD_Connection *c, const char *const *allowed, reply *r)
{
    arg_scan a = {allowed, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, arg_seen, &a);
    if (!a.unknown) return true;
    char list[256] = "";
    for (const char *const *k = allowed; *k; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k == allowed ? "" : ", ", *k);
    reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown argument '%s' (this endpoint takes %s)", a.unknown,
                allowed[0] ? list : "none");
    return false;
}

static const char *arg(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

/* A modality this server embeds. */
static bool modality_arg(const server *s, struct MHD_Connection *c, cmcr_modality *m, reply *r)
{
    const char *v = arg(c, "modality");
    if (!v) return reply_error(r, MHD_HTTP_BAD_REQUEST, "give ?modality=image, audio, text or points"), false;
    if (!modality_parse(v, m))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "modality must be image, audio, text or points, not '%s'", v), false;
    if (space_side_of(&s->sp, *m) < 0)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "this server embeds no %s (see /api/info)", v), false;
    return true;
}

/* An integer argument in lo..hi, or def when absent. */
static bool int_arg(struct MHD_Connection *c, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t *out,
                    reply *r)
{
    const char *v = arg(c, key);
    *out = def;
    if (v && cmcr_parse_int(v, lo, hi, out))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "%s must be an integer from %lld to %lld, not '%s'", key,
                           (long long)lo, (long long)hi, v), false;
    return true;
}

/* ?row=R: a row of the gallery (400 when not a number, 404 when there is no such row). */
static bool row_arg(const server *s, struct MHD_Connection *c, int64_t *row, reply *r)
{
    const char *v = arg(c, "row");
    int64_t rows = cmcr_gallery_rows(s->gallery);
    if (!v) return reply_error(r, MHD_HTTP_BAD_REQUEST, "give ?row=R, a row of the gallery"), false;
    if (cmcr_parse_int(v, 0, INT64_MAX, row))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "row must be a row number (0 or more), not '%s'", v), false;
    if (*row >= rows)
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no row %lld: the gallery has %lld rows", (long long)*row,
                           (long long)rows), false;
    return true;
}

/* ?only=image,audio: the gallery rows a search may return, as a bit per modality. */
static bool only_arg(struct MHD_Connection *c, unsigned *only, reply *r)
{
    const char *v = arg(c, "only");
    *only = 0;
    if (!v) return true;
    char buf[128];
    if (strlen(v) >= sizeof buf) return reply_error(r, MHD_HTTP_BAD_REQUEST, "only: too long"), false;
    strcpy(buf, v);
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        cmcr_modality m;
        if (!modality_parse(w, &m))
            return reply_error(r, MHD_HTTP_BAD_REQUEST, "only: '%s' is not image, audio, text or points", w), false;
        *only |= 1u << m;
    }
    if (!*only) return reply_error(r, MHD_HTTP_BAD_REQUEST, "only: name at least one modality"), false;
    return true;
}

/* ------------------------------------------------------------------ the page and the description */

static void run_page(const server *s, const params *p, const upload *u, reply *r)
{
    *r = (reply){.status = MHD_HTTP_OK, .type = "text/html; charset=utf-8", .body = (char *)serve_page,
                 .len = serve_page_len, .fixed = true, .fd = -1};
}

static const char *const no_args[] = {NULL};

static bool check_none(const server *s, struct MHD_Connection *c, params *p, reply *r)
{
    return known_args(c, no_args, r);
}

static cJSON *side_json(const space *sp, int side)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !sp->kind[side]) return o;
    cJSON_AddItemToObject(o, "path", json_text(sp->o.encoder[side]));
    cJSON_AddStringToObject(o, "kind", sp->kind[side]->kind);
    cJSON_AddStringToObject(o, "name", sp->kind[side]->name);
    cJSON_AddStringToObject(o, "modality", modality_name(sp->kind[side]->modality));
    cJSON_AddBoolToObject(o, "text", side == sp->text_side);
    return o;
}

/* What the page needs to know: the model, the encoders, what can be asked, the limits. */
static void run_info(const server *s, const params *p, const upload *u, reply *r)
{
    const space *sp = &s->sp;
    cJSON *o = cJSON_CreateObject(), *enc = cJSON_CreateObject(), *gal = cJSON_CreateObject(),
          *rows = cJSON_CreateObject(), *q = cJSON_CreateArray(), *lim = cJSON_CreateObject();
    if (!o || !enc || !gal || !rows || !q || !lim) {
        cJSON_Delete(o), cJSON_Delete(enc), cJSON_Delete(gal), cJSON_Delete(rows), cJSON_Delete(q), cJSON_Delete(lim);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory for the answer");
    }
    cJSON_AddStringToObject(o, "version", cmcr_version());
    cJSON_AddItemToObject(o, "model", json_text(sp->o.model));
    cJSON_AddNumberToObject(o, "dim", (double)sp->dim);
    cJSON_AddItemToObject(enc, "a", side_json(sp, 0));
    cJSON_AddItemToObject(enc, "b", side_json(sp, 1));
    cJSON_AddItemToObject(o, "encoders", enc);
    for (int m = 0; m < CMCR_MODALITIES; m++) {
        if (space_side_of(sp, (cmcr_modality)m) >= 0) cJSON_AddItemToArray(q, cJSON_CreateString(modality_name((cmcr_modality)m)));
        cJSON_AddNumberToObject(rows, modality_name((cmcr_modality)m), (double)s->rows[m]);
    }
    cJSON_AddItemToObject(o, "queries", q);
    cJSON_AddItemToObject(gal, "path", json_text(s->gallery_path));
    cJSON_AddNumberToObject(gal, "rows", (double)cmcr_gallery_rows(s->gallery));
    cJSON_AddItemToObject(gal, "modalities", rows);
    cJSON_AddItemToObject(o, "gallery", gal);
    cJSON_AddBoolToObject(o, "localise", space_patches(sp) > 0);
    cJSON_AddNumberToObject(lim, "max_upload", (double)s->max_upload);
    cJSON_AddNumberToObject(lim, "timeout", (double)s->timeout);
    cJSON_AddNumberToObject(lim, "workers", s->workers);
    cJSON_AddNumberToObject(lim, "threads", s->threads);
    cJSON_AddNumberToObject(lim, "max_connections", s->max_connections);
    cJSON_AddNumberToObject(lim, "top", SERVE_TOP_MAX);
    cJSON_AddItemToObject(o, "limits", lim);
    reply_json(r, o);
}

/* ------------------------------------------------------------------ gallery files */

/* What some bytes are, by their first bytes: a file's Content-Type, and an upload's kind. */
typedef struct kind {
    const char *mime, *what;
    int modality; /* the modality it is, or -1 (binary, not recognised) */
} kind;

/* Whether the first n bytes of a body are UTF-8 (the last character may be cut) without
 * control bytes but tab, line breaks and form feed: text. */
static bool looks_like_text(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = b[i];
        int more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 && c >= 0xc2 ? 1 : (c & 0xf0) == 0xe0 ? 2
                 : (c & 0xf8) == 0xf0 && c <= 0xf4 ? 3 : -1;
        if (more < 0 || c == 0 || (c < 0x20 && !strchr("\t\n\r\f", (int)c)) || c == 0x7f) return false;
        for (int k = 1; k <= more; k++)
            if (i + (size_t)k < n && (b[i + (size_t)k] & 0xc0) != 0x80) return false;
        i += (size_t)more + 1;
    }
    return true;
}

static kind sniff(const unsigned char *b, size_t n)
{
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return (kind){"image/jpeg", "a JPEG image", CMCR_IMAGE};
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return (kind){"image/png", "a PNG image", CMCR_IMAGE};
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WAVE", 4) == 0)
        return (kind){"audio/wav", "a WAV sound", CMCR_AUDIO};
    if (n >= 4 && memcmp(b, "fLaC", 4) == 0) return (kind){"audio/flac", "a FLAC sound", CMCR_AUDIO};
    if (n >= 4 && memcmp(b, "OggS", 4) == 0) return (kind){"audio/ogg", "an Ogg sound", CMCR_AUDIO};
    if ((n >= 3 && memcmp(b, "ID3", 3) == 0) || (n >= 2 && b[0] == 0xff && (b[1] & 0xe0) == 0xe0))
        return (kind){"audio/mpeg", "an MP3 sound", CMCR_AUDIO};
    if (n >= 6 && memcmp(b, "\x93NUMPY", 6) == 0) return (kind){"application/octet-stream", "a .npy array", CMCR_POINTS};
    if (!looks_like_text(b, n)) return (kind){"application/octet-stream", "binary data", -1};
    return (kind){"text/plain; charset=utf-8", "text", CMCR_TEXT}; /* texts, PLY and .xyz point clouds */
}

/* Whether an upload of kind k may be a query of modality m: images are JPEG or PNG; texts are
 * text; sounds and point clouds are anything but another modality's format (libsndfile
 * reads more formats than sniff knows; PLY and .xyz clouds are text). What passes may still
 * be corrupt: the library says so (422). */
static bool may_be(cmcr_modality m, kind k)
{
    switch (m) {
    case CMCR_IMAGE: return k.modality == CMCR_IMAGE;
    case CMCR_TEXT: return k.modality == CMCR_TEXT;
    case CMCR_AUDIO: return k.modality == CMCR_AUDIO || k.modality < 0;
    default: return k.modality == CMCR_POINTS || k.modality == CMCR_TEXT || k.modality < 0;
    }
}

static const char *const file_args[] = {"row", NULL};

static bool check_file(const server *s, struct MHD_Connection *c, params *p, reply *r)
{
    return known_args(c, file_args, r) && row_arg(s, c, &p->row, r);
}

/* GET /api/file?row=R: only the files the gallery lists, never a path from the request. */
static void run_file(const server *s, const params *p, const upload *u, reply *r)
{
    const char *path = cmcr_gallery_path(s->gallery, p->row);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO never blocks a thread */
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : 0;
        if (fd >= 0) close(fd);
        return reply_error(r, MHD_HTTP_NOT_FOUND, "row %lld: %s: %s", (long long)p->row, path,
                           e ? strerror(e) : "not a regular file");
    }
    unsigned char head[512];
    ssize_t n = pread(fd, head, sizeof head, 0);
    *r = (reply){.status = MHD_HTTP_OK, .type = sniff(head, n > 0 ? (size_t)n : 0).mime, .fd = fd,
                 .size = (uint64_t)st.st_size};
}

/* ------------------------------------------------------------------ embed and search */

static const char *const embed_args[] = {"modality", NULL};
static const char *const search_args[] = {"modality", "top", "only", NULL};

static bool check_embed(const server *s, struct MHD_Connection *c, params *p, reply *r)
{
    return known_args(c, embed_args, r) && modality_arg(s, c, &p->modality, r);
}

static bool check_search(const server *s, struct MHD_Connection *c, params *p, reply *r)
{
    return known_args(c, search_args, r) && modality_arg(s, c, &p->modality, r) &&
           int_arg(c, "top", 1, SERVE_TOP_MAX, 10, &p->top, r) && only_arg(c, &p->only, r);
}

/* An upload (the query, or a localisation's image) as a row of the space (s->sp.dim floats):
 * false after making the error reply. */
static bool embed_body(const server *s, cmcr_modality m, const unsigned char *body, size_t len, const char *name,
                       bool query, float *row, float *patches, reply *r)
{
    if (!len)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "%s: empty: send the file's bytes (or the text) as the body",
                           name), false;
    kind k = sniff(body, len < 512 ? len : 512);
    if (!may_be(m, k))
        return reply_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "%s is %s, not %s%s%s%s", name, k.what,
                           m == CMCR_IMAGE ? "a JPEG or PNG image" : m == CMCR_AUDIO ? "a sound"
                           : m == CMCR_TEXT ? "a text" : "a point cloud",
                           query ? " (modality=" : "", query ? modality_name(m) : "", query ? ")" : ""), false;
    char err[1024];
    cmcr_status st = space_embed_memory(&s->sp, m, body, len, name, row, patches, err, sizeof err);
    if (st) reply_error(r, status_of(st), "%s", err);
    return !st;
}

/* n floats as a JSON array, each with the 9 significant digits that give back the same
 * float32 (cJSON would print each as a double, 17 digits): malloc'd, NULL when out of memory. */
static char *float_array(const float *x, int64_t n)
{
    size_t cap = 2 + (size_t)n * 17, len = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    b[len++] = '[';
    for (int64_t i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s%.9g", i ? "," : "", (double)x[i]);
    snprintf(b + len, cap - len, "]");
    return b;
}

static void run_embed(const server *s, const params *p, const upload *u, reply *r)
{
    float *row = malloc((size_t)s->sp.dim * sizeof(float));
    if (!row) return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    if (embed_body(s, p->modality, u->body, u->len, "the uploaded query", true, row, NULL, r)) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "modality", modality_name(p->modality));
            cJSON_AddNumberToObject(o, "dim", (double)s->sp.dim);
            char *a = float_array(row, s->sp.dim);
            if (!a || !cJSON_AddRawToObject(o, "embedding", a)) cJSON_Delete(o), o = NULL;
            free(a);
        }
        reply_json(r, o);
    }
    free(row);
}

static cJSON *results_json(const server *s, const int64_t *index, const float *score, int64_t k)
{
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; a && i < k && index[i] >= 0; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddNumberToObject(o, "rank", (double)(i + 1));
        cJSON_AddNumberToObject(o, "score", round((double)score[i] * 1e6) / 1e6); /* as cmcr search --json */
        cJSON_AddNumberToObject(o, "row", (double)index[i]);
        cJSON_AddStringToObject(o, "modality", modality_name(cmcr_gallery_modality(s->gallery, index[i])));
        cJSON_AddItemToObject(o, "path", json_text(cmcr_gallery_path(s->gallery, index[i])));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static void run_search(const server *s, const params *p, const upload *u, reply *r)
{
    int64_t k = p->top, dim = s->sp.dim;
    float *row = malloc((size_t)dim * sizeof(float)), *score = malloc((size_t)k * sizeof(float));
    int64_t *index = malloc((size_t)k * sizeof(int64_t));
    if (!row || !score || !index) reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    else if (embed_body(s, p->modality, u->body, u->len, "the uploaded query", true, row, NULL, r)) {
        cmcr_status st = cmcr_gallery_topk(s->gallery, row, 1, dim, p->only, k, index, score);
        if (st) reply_error(r, status_of(st), "%s", cmcr_last_error());
        else {
            cJSON *o = cJSON_CreateObject();
            if (o) {
                cJSON_AddStringToObject(o, "modality", modality_name(p->modality));
                cJSON_AddNumberToObject(o, "top", (double)k);
                cJSON_AddItemToObject(o, "results", results_json(s, index, score, k));
            }
            reply_json(r, o);
        }
    }
    free(row);
    free(score);
    free(index);
}

/* ------------------------------------------------------------------ localise */

static const char *const localise_args[] = {"modality", "row", "max", "threshold", NULL};

/* The query's modality: any the server embeds but images (their patches are the other end). */
static bool check_localise(const server *s, struct MHD_Connection *c, params *p, reply *r)
{
    if (!known_args(c, localise_args, r) || !modality_arg(s, c, &p->modality, r)) return false;
    if (space_patches(&s->sp) == 0)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "localisation needs a CLIP side (image patches); this server "
                           "has none"), false;
    if (p->modality == CMCR_IMAGE)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "localise a sound or a text (modality=audio or text) in an "
                           "image, not an image"), false;
    p->row = -1;
    if (arg(c, "row")) {
        if (!row_arg(s, c, &p->row, r)) return false;
        cmcr_modality m = cmcr_gallery_modality(s->gallery, p->row);
        if (m != CMCR_IMAGE)
            return reply_error(r, MHD_HTTP_BAD_REQUEST, "row %lld is %s (%s), not an image", (long long)p->row,
                               modality_name(m), cmcr_gallery_path(s->gallery, p->row)), false;
    } else {
        const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!t || strncasecmp(t, "multipart/form-data", 19) != 0)
            return reply_error(r, MHD_HTTP_BAD_REQUEST, "give ?row=R (an image of the gallery) with the query as the "
                               "body, or a multipart/form-data body with a 'query' part and an 'image' part"), false;
    }
    const char *t = arg(c, "threshold");
    p->threshold = 0.5;
    if (t && cmcr_parse_double(t, 0.0, 1.0, &p->threshold))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "threshold must be a number from 0 to 1, not '%s'", t), false;
    return int_arg(c, "max", 0, SERVE_SIDE_MAX, 0, &p->max_side, r);
}

/* A gallery file whole into *buf (malloc'd): 0, or the errno value. */
static int read_whole(const char *path, size_t limit, unsigned char **buf, size_t *len)
{
    *buf = NULL, *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO never blocks a thread */
    if (fd < 0) return errno;
    struct stat st;
    int rc = fstat(fd, &st) ? errno : !S_ISREG(st.st_mode) ? EINVAL : (uint64_t)st.st_size > limit ? EFBIG : 0;
    if (!rc && !(*buf = malloc(st.st_size ? (size_t)st.st_size : 1))) rc = ENOMEM;
    size_t got = 0;
    while (!rc && got < (size_t)st.st_size) {
        ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) rc = n < 0 ? errno : EIO;
        else got += (size_t)n;
    }
    close(fd);
    if (rc) free(*buf), *buf = NULL;
    *len = got;
    return rc;
}

/* The overlay as the reply, the box and the map (gh x gw cosines, row-major) in headers. */
static void localise_reply(const server *s, const params *p, const unsigned char *img, size_t len, const char *name,
                           const float *map, int32_t g, reply *r)
{
    const encoder *e = &s->sp.enc[space_side_of(&s->sp, CMCR_IMAGE)];
    cmcr_overlay_params op = cmcr_overlay_default_params();
    op.threshold = p->threshold;
    op.crop = cmcr_clip_get_info(e->m).image_size;
    op.max_side = (int32_t)p->max_side;
    cmcr_overlay ov = {0};
    cmcr_status st = cmcr_localise_overlay(img, len, name, map, g, g, &op, &ov);
    if (st) return reply_error(r, status_of(st), "%s", cmcr_last_error());
    *r = (reply){.status = MHD_HTTP_OK, .type = "image/png", .body = (char *)ov.png, .len = ov.png_len, .fd = -1};
    ov.png = NULL;
    if (ov.has_box) snprintf(r->box, sizeof r->box, "%d,%d,%d,%d", ov.box.x0, ov.box.y0, ov.box.x1, ov.box.y1);
    else snprintf(r->box, sizeof r->box, "none");
    size_t n = 0;
    for (int32_t i = 0; i < g * g && n < sizeof r->map; i++)
        n += (size_t)snprintf(r->map + n, sizeof r->map - n, "%s%.6g", i ? "," : "", (double)map[i]);
    if (n >= sizeof r->map) r->map[0] = '\0'; /* never a header cut inside a number */
    cmcr_overlay_free(&ov);
}

/* POST /api/localise: the query's cosine with each patch of the image (a gallery row, or the
 * 'image' part of a multipart body), as a heatmap over the image (PNG) and a box. */
static void run_localise(const server *s, const params *p, const upload *u, reply *r)
{
    int64_t dim = s->sp.dim;
    int32_t np = space_patches(&s->sp), g = (int32_t)lround(sqrt((double)np));
    const unsigned char *img = u->image;
    size_t img_len = u->image_len;
    unsigned char *file = NULL;
    char name[1100] = "the uploaded image";
    if (p->row >= 0) {
        const char *path = cmcr_gallery_path(s->gallery, p->row);
        int e = read_whole(path, (size_t)256 << 20, &file, &img_len);
        if (e) return reply_error(r, MHD_HTTP_NOT_FOUND, "row %lld: %s: %s", (long long)p->row, path, strerror(e));
        img = file;
        snprintf(name, sizeof name, "%s", path);
    }
    float *q = malloc((size_t)dim * sizeof(float)), *row = malloc((size_t)dim * sizeof(float));
    float *patches = malloc((size_t)np * (size_t)dim * sizeof(float)), *map = malloc((size_t)np * sizeof(float));
    if (!q || !row || !patches || !map || g * g != np) reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    else if (embed_body(s, p->modality, u->body, u->len, "the uploaded query", true, q, NULL, r) &&
             embed_body(s, CMCR_IMAGE, img, img_len, name, false, row, patches, r)) {
        cmcr_localise_map(q, patches, g, g, dim, map);
        localise_reply(s, p, img, img_len, name, map, g, r);
    }
    free(q);
    free(row);
    free(patches);
    free(map);
    free(file);
}

/* ------------------------------------------------------------------ routes */

static const route routes[] = {
    {"GET", "/", false, false, check_none, run_page},
    {"GET", "/api/info", false, false, check_none, run_info},
    {"GET", "/api/file", false, false, check_file, run_file},
    {"POST", "/api/embed", true, true, check_embed, run_embed},
    {"POST", "/api/search", true, true, check_search, run_search},
    {"POST", "/api/localise", true, true, check_localise, run_localise},
};

const route *route_find(const char *method, const char *path, const char **allow)
{
    *allow = NULL;
    bool head = strcmp(method, "HEAD") == 0; /* MHD sends a GET's headers without its body */
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        if (strcmp(routes[i].path, path) != 0) continue;
        if (strcmp(routes[i].method, method) == 0 || (head && strcmp(routes[i].method, "GET") == 0)) return &routes[i];
        *allow = routes[i].method; /* the path is served, with another method */
    }
    return NULL;
}

bool route_multipart(const route *r)
{
    return r && r->run == run_localise;
}
