/* serve.h - cmcr serve: what its parts share. cmd_serve.c loads the space and the gallery and
 * runs the server; serve_http.c is the HTTP side (libmicrohttpd: requests, bodies, limits,
 * the access log, hand-over to the workers of serve_pool.c); serve_api.c holds the endpoints,
 * which see parsed arguments and a body, and make a reply. Everything a request reads
 * (model, encoders, gallery) is read-only once the server listens. */
#ifndef CMCR_SERVE_H
#define CMCR_SERVE_H
#include "space.h"

#include <microhttpd.h>
#include <stdatomic.h>

typedef struct server {
    space sp;
    cmcr_gallery *gallery;
    const char *gallery_path;
    int64_t rows[CMCR_MODALITIES]; /* gallery rows per modality */
    size_t max_upload;             /* bytes of one request body */
    long long timeout;             /* seconds: idle connections, waiting for a worker */
    int threads, workers, max_connections;
    bool quiet;
    bool loopback;                 /* listening on a loopback address: the Host header is checked */
    char host[1040];               /* as the listening line shows it ([ ] around IPv6) */
    int port;
    atomic_int inflight;           /* requests begun and not yet completed */
    atomic_bool stopping;          /* SIGTERM/SIGINT came: answers close their connection */
} server;

/* The most results one search returns (?top=). */
#define SERVE_TOP_MAX 1000
/* The longest side of a heatmap overlay (?max=). */
#define SERVE_SIDE_MAX 4096

/* An answer: status, type and body (malloc'd, or static when fixed), or an open file. */
typedef struct reply {
    int status;
    const char *type;
    char *body;
    size_t len;
    bool fixed;
    int fd;          /* >= 0: send this file (size bytes) instead of body */
    uint64_t size;
    const char *allow; /* a 405's Allow header (static) */
    char box[96];    /* a heatmap's X-Cmcr-Box header: x0,y0,x1,y1 or none ("": not a heatmap) */
    char map[8192];  /* and its X-Cmcr-Map: the grid of cosines, row-major, comma-separated (up to
                      * 24 x 24 patches, ViT-L/14 at 336; a larger grid gets no header) */
} reply;
/* {"error":"..."} with status (the message made one printable line). */
void reply_error(reply *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A request's query arguments, checked and parsed when its headers came. */
typedef struct params {
    cmcr_modality modality;
    int64_t row;               /* -1: none */
    int64_t top;
    unsigned only;             /* bit m: gallery rows of modality m may be returned */
    int64_t max_side;          /* a heatmap's longest side (0: the image's) */
    double threshold;          /* a heatmap box's level */
} params;

/* A request body; a multipart localisation brings the image as a second part. */
typedef struct upload {
    const unsigned char *body;
    size_t len;
    const unsigned char *image;
    size_t image_len;
} upload;

typedef struct route {
    const char *method, *path;
    bool body;      /* reads a request body (POST) */
    bool compute;   /* runs on a worker */
    /* When the headers came: the arguments into *p; false after making the error reply. */
    bool (*check)(const server *s, struct MHD_Connection *c, params *p, reply *r);
    void (*run)(const server *s, const params *p, const upload *u, reply *r);
} route;

/* The route of path (NULL: none); *wrong_method when the path exists for another method. */
const route *route_find(const char *method, const char *path, const char **allow);
/* Whether a request to r may send a multipart/form-data body (a query and an image). */
bool route_multipart(const route *r);

/* The page (tools/serve/index.html, compiled in by cmake/embed.cmake). */
extern const unsigned char serve_page[];
extern const size_t serve_page_len;

/* Before anything else (before any thread exists): SIGTERM and SIGINT blocked in every thread
 * but one that waits for them. 0, or 1 after printing. */
int serve_signals(void);
/* Serve until SIGTERM or SIGINT: 0 after a clean stop, or 1 (2: a bad --host) after printing
 * why the server could not start. */
int serve_run(server *s, const char *host, int port);
#endif
