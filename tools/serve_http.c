/* serve_http.c - cmcr serve's HTTP side on libmicrohttpd (MHD): each request is an exchange
 * that lives from its first line to its completion. When its headers came: the Host guard,
 * the route, the arguments and the announced body size are checked, and a refusal is
 * answered at once, before any of the body is read. The body is kept up to --max-upload.
 * Then a computing endpoint's job goes to the workers (serve_pool.c) and the connection is
 * suspended until a worker (or the sweeper, with 503) has made the reply; other endpoints
 * answer on the HTTP thread. One access-log line per request when it completes. */
#define _DEFAULT_SOURCE /* strdup, strcasecmp, NI_MAXHOST */
#include <stdio.h>
#include "serve.h"
#include "serve_pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The workers (one server per process). */
static pool work;
/* The signal thread writes a byte here; the main thread waits on the other end. */
static int stop_pipe[2] = {-1, -1};

/* One request. The job comes first: the pool hands the job back and it is the exchange. */
typedef struct exchange {
    job j;
    server *s;
    struct MHD_Connection *conn;
    char *uri;                 /* as requested (path and query), for the log */
    char method[16];
    const route *rt;
    params p;
    bool started, submitted;
    bool ready;                /* rep is made: answer it */
    bool answered;             /* a response is queued */
    reply rep;
    int status;                /* sent, for the log (0: none) */
    uint64_t bytes;
    unsigned char *body, *image;
    size_t len, cap, image_len, image_cap;
    uint64_t received;         /* body bytes as they came (a multipart body: its parts and framing) */
    bool too_big;              /* they passed --max-upload: the connection was closed */
    struct MHD_PostProcessor *pp;
    const char *part_error;    /* what was wrong with a multipart body */
    double start;
} exchange;

/* ------------------------------------------------------------------ replies */

/* The answer to x's request: rep as an MHD response, queued. */
static enum MHD_Result answer(exchange *x)
{
    reply *r = &x->rep;
    struct MHD_Response *resp;
    uint64_t bytes = r->len;
    if (r->fd >= 0) {
        resp = MHD_create_response_from_fd64(r->size, r->fd);
        if (!resp) close(r->fd);
        r->fd = -1; /* MHD closes it with the response */
        bytes = r->size;
    } else {
        resp = MHD_create_response_from_buffer(r->len, r->body, r->fixed ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
        if (resp || r->fixed) r->body = NULL; /* MHD frees it with the response */
    }
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type ? r->type : "application/json");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->type && strncmp(r->type, "text/html", 9) == 0)
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                "img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin"); /* no <img src> from other sites */
    if (r->allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->box[0]) MHD_add_response_header(resp, "X-Cmcr-Box", r->box);
    if (r->map[0]) MHD_add_response_header(resp, "X-Cmcr-Map", r->map);
    if (atomic_load(&x->s->stopping)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(x->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) x->answered = true, x->status = r->status, x->bytes = bytes;
    return ok;
}

/* ------------------------------------------------------------------ the Host guard */

static bool loopback_name(const char *h, size_t n)
{
    char name[NI_MAXHOST];
    if (n == 0 || n >= sizeof name) return false;
    memcpy(name, h, n);
    name[n] = '\0';
    if (strcasecmp(name, "localhost") == 0) return true;
    unsigned char a[16];
    if (inet_pton(AF_INET, name, a) == 1) return a[0] == 127;
    return inet_pton(AF_INET6, name, a) == 1 && memcmp(a, in6addr_loopback.s6_addr, 16) == 0;
}

/* A server on a loopback address answers only requests that name it by a loopback address
 * or localhost: a web page that made its own host name resolve to 127.0.0.1 (DNS rebinding)
 * sends its own name, and would otherwise read the gallery through the visitor's browser. */
static bool host_allowed(const server *s, struct MHD_Connection *c)
{
    if (!s->loopback) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!h) return true; /* HTTP/1.0 without Host: not a browser */
    if (h[0] == '[') {
        const char *end = strchr(h, ']');
        return end && (end[1] == '\0' || end[1] == ':') && loopback_name(h + 1, (size_t)(end - h - 1));
    }
    const char *colon = strchr(h, ':');
    return loopback_name(h, colon ? (size_t)(colon - h) : strlen(h));
}

/* ------------------------------------------------------------------ bodies */

/* Append n bytes to a growing buffer: false when out of memory. */
static bool append(unsigned char **b, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n) c *= 2;
        unsigned char *p = realloc(*b, c);
        if (!p) return false;
        *b = p, *cap = c;
    }
    memcpy(*b + *len, data, n);
    *len += n;
    return true;
}

/* The parts of a multipart localisation: "query" (the sound or the text) and "image". */
static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                               const char *content_type, const char *encoding, const char *data, uint64_t off,
                               size_t size)
{
    exchange *x = cls;
    bool query = strcmp(key, "query") == 0, image = strcmp(key, "image") == 0;
    if (!query && !image) {
        x->part_error = "a part that is neither 'query' nor 'image'";
        return MHD_YES;
    }
    size_t *len = query ? &x->len : &x->image_len;
    if (off == 0 && *len > 0) x->part_error = "a part given twice";
    bool ok = query ? append(&x->body, &x->len, &x->cap, data, size)
                    : append(&x->image, &x->image_len, &x->image_cap, data, size);
    if (!ok) x->part_error = "out of memory for the parts";
    return MHD_YES;
}

/* A request whose body is larger than announced, or with no size announced, may pass
 * --max-upload while it is read. MHD cannot answer in the middle of a body (microhttpd.h:
 * no response while upload data is processed), so such a connection is closed. */
static enum MHD_Result take(exchange *x, const char *data, size_t n)
{
    x->received += n;
    if (x->received > x->s->max_upload) return x->too_big = true, MHD_NO;
    if (!x->rt->body) return MHD_YES; /* a body nobody asked for: dropped */
    if (x->pp) {
        if (MHD_post_process(x->pp, data, n) != MHD_YES && !x->part_error) x->part_error = "a malformed multipart body";
        return MHD_YES;
    }
    return append(&x->body, &x->len, &x->cap, data, n) ? MHD_YES : MHD_NO;
}

/* ------------------------------------------------------------------ the steps of a request */

static bool is_multipart(struct MHD_Connection *c)
{
    const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    return t && strncasecmp(t, "multipart/form-data", 19) == 0;
}

/* The body's announced size against --max-upload: false after making the 413. */
static bool check_size(exchange *x)
{
    const char *v = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t n;
    if (!v || cmcr_parse_u64(v, &n)) return true; /* chunked: counted as it comes (take) */
    if (n > x->s->max_upload) {
        reply_error(&x->rep, MHD_HTTP_CONTENT_TOO_LARGE,
                    "the body has %llu bytes, over the limit of %zu (--max-upload)", (unsigned long long)n,
                    x->s->max_upload);
        return false;
    }
    if (!is_multipart(x->conn) && n > 0 && (x->body = malloc((size_t)n))) x->cap = (size_t)n;
    return true;
}

/* A browser's request made by another site's page (Sec-Fetch-Site, or an Origin that is not
 * the Host the request went to): refused, so that a page elsewhere cannot make the visitor's
 * browser compute here. Programs (curl) send neither header. */
static bool cross_site(struct MHD_Connection *c)
{
    const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site && strcmp(site, "cross-site") == 0) return true;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!origin || strcmp(origin, "null") == 0) return origin != NULL;
    const char *scheme = "http://";
    return !host || strncmp(origin, scheme, strlen(scheme)) != 0 || strcmp(origin + strlen(scheme), host) != 0;
}

/* The headers came: everything that can be refused without the body is refused now (MHD then
 * closes the connection, as the body, if any, is not read). */
static enum MHD_Result begin(exchange *x, struct MHD_Connection *c, const char *url, const char *method)
{
    x->started = true;
    x->conn = c;
    snprintf(x->method, sizeof x->method, "%s", method);
    server *s = x->s;
    reply *r = &x->rep;
    if (!host_allowed(s, c)) {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        reply_error(r, MHD_HTTP_FORBIDDEN, "Host '%s' is not a loopback name: this server answers requests to "
                    "127.0.0.1, [::1] or localhost only (a guard against DNS rebinding)", h);
        return answer(x);
    }
    if (cross_site(c)) {
        reply_error(r, MHD_HTTP_FORBIDDEN, "a request from another site's page: this server answers its own page "
                    "and programs only");
        return answer(x);
    }
    const char *allow = NULL;
    x->rt = route_find(method, url, &allow);
    if (!x->rt) {
        if (allow) reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on %s (%s is)", method, url, allow);
        else reply_error(r, MHD_HTTP_NOT_FOUND, "no such page or endpoint: %s", url);
        r->allow = allow;
        return answer(x);
    }
    if (x->rt->check && !x->rt->check(s, c, &x->p, r)) return answer(x);
    if (x->rt->body && !check_size(x)) return answer(x);
    bool parts = x->rt->body && route_multipart(x->rt) && x->p.row < 0; /* an uploaded image: a form */
    if (x->rt->body && !parts && is_multipart(c)) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "%s takes the query's raw bytes as the body (curl --data-binary @FILE), "
                    "not a form (a form is for /api/localise without row=)", url);
        return answer(x);
    }
    if (parts && is_multipart(c)) {
        x->pp = MHD_create_post_processor(c, 64 * 1024, on_part, x);
        if (!x->pp) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "a multipart/form-data body without a boundary");
            return answer(x);
        }
    }
    return MHD_YES;
}

static void job_run(job *j)
{
    exchange *x = (exchange *)j;
    upload u = {x->body, x->len, x->image, x->image_len};
    x->rt->run(x->s, &x->p, &u, &x->rep);
    x->ready = true;
    MHD_resume_connection(x->conn);
}

static void job_expired(job *j)
{
    exchange *x = (exchange *)j;
    reply_error(&x->rep, MHD_HTTP_SERVICE_UNAVAILABLE, "no worker was free within %lld s (--workers %d, --timeout)",
                x->s->timeout, x->s->workers);
    x->ready = true;
    MHD_resume_connection(x->conn);
}

/* The body came whole: checked, then computed by a worker. */
static enum MHD_Result finish(exchange *x)
{
    if (x->ready) return answer(x);
    if (x->submitted) return MHD_YES;
    if (x->pp) {
        MHD_destroy_post_processor(x->pp);
        x->pp = NULL;
        if (!x->part_error && (!x->len || !x->image_len))
            x->part_error = x->len ? "no 'image' part" : "no 'query' part";
        if (x->part_error) {
            reply_error(&x->rep, MHD_HTTP_BAD_REQUEST, "multipart/form-data: %s (expected a 'query' part and an "
                        "'image' part)", x->part_error);
            return answer(x);
        }
    }
    if (!x->rt->compute) { /* answered on this thread (a body a GET may bring is dropped) */
        upload none = {0};
        x->rt->run(x->s, &x->p, &none, &x->rep);
        return answer(x);
    }
    x->submitted = true;
    x->j = (job){.deadline = pool_now() + (double)x->s->timeout, .run = job_run, .expired = job_expired};
    MHD_suspend_connection(x->conn);
    if (!pool_submit(&work, &x->j)) {
        reply_error(&x->rep, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is stopping");
        x->ready = true;
        MHD_resume_connection(x->conn);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **ctx)
{
    exchange *x = *ctx;
    if (!x) return MHD_NO; /* out of memory when the request began */
    if (!x->started) return begin(x, c, url, method);
    if (*size) {
        size_t n = *size;
        *size = 0;
        return take(x, data, n);
    }
    return finish(x);
}

/* ------------------------------------------------------------------ begin and end, the log */

/* The first thing MHD says of a request (its URI): the exchange, kept for the log. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    server *s = cls;
    exchange *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->s = s;
    x->uri = strdup(uri);
    x->rep.fd = -1;
    x->start = pool_now();
    atomic_fetch_add(&s->inflight, 1);
    return x;
}

static const char *ended(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK: return "sent";
    case MHD_REQUEST_TERMINATED_WITH_ERROR: return "closed on an error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "closed: the client was idle past --timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "closed: the server stopped";
    case MHD_REQUEST_TERMINATED_READ_ERROR: return "closed: the client went away";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "closed: the client went away";
    default: return "closed";
    }
}

/* One line per request: client, request, status (or why none was sent), bytes, time. */
static void log_line(const exchange *x, struct MHD_Connection *c, enum MHD_RequestTerminationCode toe)
{
    char ip[NI_MAXHOST] = "?";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr)
        getnameinfo(ci->client_addr, ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                              : sizeof(struct sockaddr_in),
                    ip, sizeof ip, NULL, 0, NI_NUMERICHOST);
    char *uri = cli_printable(x->uri ? x->uri : "?");
    double ms = 1e3 * (pool_now() - x->start);
    if (x->answered && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        fprintf(stderr, "cmcr serve: %s \"%s %s\" %d %llu %.1f ms\n", ip, x->method[0] ? x->method : "-",
                uri ? uri : "?", x->status, (unsigned long long)x->bytes, ms);
    else
        fprintf(stderr, "cmcr serve: %s \"%s %s\" - - %.1f ms (%s)\n", ip, x->method[0] ? x->method : "-",
                uri ? uri : "?", ms, x->too_big ? "closed: the body passed --max-upload" : ended(toe));
    free(uri);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode toe)
{
    server *s = cls;
    exchange *x = *ctx;
    if (!x) return;
    if (!s->quiet) log_line(x, c, toe);
    if (x->pp) MHD_destroy_post_processor(x->pp);
    if (x->rep.fd >= 0) close(x->rep.fd);
    if (!x->rep.fixed) free(x->rep.body);
    free(x->body);
    free(x->image);
    free(x->uri);
    free(x);
    *ctx = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

/* MHD's last message while the daemon starts: a failure to start is one line, with it. */
static char start_msg[512];
/* The listening line is out: MHD's messages are printed, and a signal stops the server. */
static atomic_bool serving;

/* MHD's own messages (failed sockets, protocol errors), one line each. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    const server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    if (!atomic_load(&serving)) {
        snprintf(start_msg, sizeof start_msg, "%s", msg);
        return;
    }
    if (s->quiet) return;
    char *shown = cli_printable(msg);
    fprintf(stderr, "cmcr serve: libmicrohttpd: %s\n", shown ? shown : msg);
    free(shown);
}

/* ------------------------------------------------------------------ start and stop */

/* host (a name or an address) and port into *addr; *loopback when it is a loopback address;
 * shown: the address as the listening line writes it. 0, or 2 after printing. */
static int resolve(const char *host, int port, struct sockaddr_storage *addr, bool *loopback, char *shown,
                   size_t cap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc) return cli_error("serve", 2, "--host %s: %s", host, gai_strerror(rc));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    char ip[NI_MAXHOST];
    socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    getnameinfo((struct sockaddr *)addr, len, ip, sizeof ip, NULL, 0, NI_NUMERICHOST);
    if (addr->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
        a->sin6_port = htons((uint16_t)port);
        *loopback = memcmp(&a->sin6_addr, &in6addr_loopback, sizeof a->sin6_addr) == 0;
        snprintf(shown, cap, "[%s]", ip);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)addr;
        a->sin_port = htons((uint16_t)port);
        *loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        snprintf(shown, cap, "%s", ip);
    }
    return 0;
}

/* SIGTERM and SIGINT go to one thread, which sigwait()s for them: they are blocked before any
 * other thread exists (serve_signals), so every thread inherits the block, and a signal never
 * interrupts (or waits for) a thread in the middle of a computation or of libmicrohttpd's
 * loop. While the server loads, a signal ends the process as in every command; once it
 * serves, the first asks the main thread to stop, and a second ends the process at once. */
static sigset_t stop_sigs;

static void *signal_thread(void *arg)
{
    int sig, seen = 0;
    for (;;) {
        if (sigwait(&stop_sigs, &sig)) continue;
        if (!atomic_load(&serving) || seen++) {
            cmcr_remove_temp_files();
            signal(sig, SIG_DFL);
            pthread_sigmask(SIG_UNBLOCK, &stop_sigs, NULL);
            raise(sig); /* this thread's, now unblocked: the process ends of the signal */
        }
        ssize_t n = write(stop_pipe[1], "", 1);
        (void)n;
    }
    return NULL;
}

int serve_signals(void)
{
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    if (pipe(stop_pipe)) return cli_error("serve", 1, "cannot make a pipe: %s", strerror(errno));
    pthread_t t;
    int rc = pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    if (!rc) rc = pthread_create(&t, NULL, signal_thread, NULL);
    if (rc) return cli_error("serve", 1, "cannot start the signal thread: %s", strerror(rc));
    pthread_detach(t);
    signal(SIGPIPE, SIG_IGN); /* a client that went away is an error on its socket, not a signal */
    return 0;
}

static void wait_for_signal(void)
{
    char c;
    while (read(stop_pipe[0], &c, 1) < 0 && errno == EINTR) continue;
}

/* Stop: accept no new connection, let the requests in flight finish (at most twice
 * --timeout: one wait for a worker, one for a slow client), then close everything. */
static void drain(server *s, struct MHD_Daemon *d)
{
    atomic_store(&s->stopping, true);
    MHD_socket listener = MHD_quiesce_daemon(d);
    double until = pool_now() + 2.0 * (double)s->timeout + 1.0;
    while (atomic_load(&s->inflight) > 0 && pool_now() < until) nanosleep(&(struct timespec){0, 20000000}, NULL);
    pool_stop(&work); /* every job handed over is answered before MHD stops */
    MHD_stop_daemon(d);
    pool_free(&work);
    if (listener != MHD_INVALID_SOCKET) close(listener);
}

int serve_run(server *s, const char *host, int port)
{
    struct sockaddr_storage addr;
    int rc = resolve(host, port, &addr, &s->loopback, s->host, sizeof s->host);
    if (rc) return rc;
    rc = pool_start(&work, s->workers);
    if (rc) return cli_error("serve", 1, "cannot start %d worker threads: %s", s->workers, strerror(rc));
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    errno = 0;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, /* first */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->timeout, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!d) {
        pool_stop(&work);
        pool_free(&work);
        char *why = cli_printable(start_msg[0] ? start_msg : errno ? strerror(errno) : "libmicrohttpd did not start");
        cli_error("serve", 1, "cannot listen on %s port %d (%s)", s->host, port, why ? why : "?");
        free(why);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    printf("cmcr serve: listening on http://%s:%d/\n", s->host, s->port);
    fflush(stdout);
    atomic_store(&serving, true);
    wait_for_signal();
    if (!s->quiet) fprintf(stderr, "cmcr serve: stopping (requests in flight: %d)\n", atomic_load(&s->inflight));
    drain(s, d);
    return 0;
}
