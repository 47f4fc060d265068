/* cmd_serve.c - cmcr serve: a gallery searched over HTTP (a JSON API and a web page,
 * docs/serve.md). The model, the encoders and the gallery are loaded once, before the server
 * listens; the HTTP side is serve_http.c, the endpoints serve_api.c. */
#include <stdio.h>
#include "serve.h"
#include "recorded.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct serve_cli {
    const char *gallery, *model, *encoder[2], *tokenizer[2], *text_side, *precision, *host;
    long long port, threads, workers, max_upload, timeout, max_connections, seed;
    bool quiet, xyz_only;
} serve_cli;

static int check_options(const serve_cli *a)
{
    if (a->precision && cli_check_precision("serve", a->precision)) return 2;
    cli_range r[] = {{"port", a->port, 0, 65535},
                     {"threads", a->threads, 1, 256},
                     {"workers", a->workers, 1, 256},
                     {"max-upload", a->max_upload, 1, 4096},
                     {"timeout", a->timeout, 1, 3600},
                     {"max-connections", a->max_connections, 1, 65536},
                     {"seed", a->seed, 0, LLONG_MAX}};
    if (cli_check_ranges("serve", r, sizeof r / sizeof *r)) return 2;
    if (a->max_connections < a->threads) /* libmicrohttpd shares the limit among its threads */
        return cli_error("serve", 2, "--max-connections (%lld) must be at least --threads (%lld)", a->max_connections,
                         a->threads);
    return 0;
}


/* Every encoder the space has is loaded now: requests never load (space_load_side is not
 * thread-safe), and a broken encoder stops the server before it listens. */
static int load(server *s, serve_cli *a)
{
    if (cmcr_gallery_load(a->gallery, &s->gallery)) return cli_fail("serve");
    recorded_defaults(s->gallery, &a->model, a->encoder, a->tokenizer, &a->text_side, &a->precision);
    if (!a->model) return cli_error("serve", 2, "%s records no model: give --model", a->gallery);
    if (recorded_check("serve", s->gallery, a->gallery, a->model, (const char *const *)a->encoder)) return 1;
    space_opts o = {.cmd = "serve", .model = a->model, .encoder = {a->encoder[0], a->encoder[1]},
                    .tokenizer = {a->tokenizer[0], a->tokenizer[1]}, .text_side = a->text_side,
                    .precision = a->precision, .batch = 1, .seed = a->seed, .quiet = true, .xyz_only = a->xyz_only};
    if (space_open(&o, &s->sp)) return 1;
    if (cmcr_gallery_dim(s->gallery) != s->sp.dim)
        return cli_error("serve", 1, "%s holds %lld-wide rows, but %s projects to %lld", a->gallery,
                         (long long)cmcr_gallery_dim(s->gallery), a->model, (long long)s->sp.dim);
    for (int side = 0; side < 2; side++)
        if (s->sp.kind[side] && space_load_side(&s->sp, side)) return 1;
    for (int64_t i = 0; i < cmcr_gallery_rows(s->gallery); i++) s->rows[cmcr_gallery_modality(s->gallery, i)]++;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    serve_cli a = {0};
    cli_opt opts[] = {
        {"gallery", OPT_STR, &a.gallery, NULL, "the gallery to search (made by cmcr index)"},
        {"model", OPT_STR, &a.model, "", "the connection; default: the one the gallery records"},
        {"encoder-a", OPT_STR, &a.encoder[0], "", "side a's encoder; default: the gallery's"},
        {"encoder-b", OPT_STR, &a.encoder[1], "", "side b's encoder; default: the gallery's"},
        {"tokenizer-a", OPT_STR, &a.tokenizer[0], "", "side a's tokenizer; default: the gallery's, else found beside "
                                                      "the weights"},
        {"tokenizer-b", OPT_STR, &a.tokenizer[1], "", "side b's tokenizer; default: the gallery's, else found beside "
                                                      "the weights"},
        {"text-side", OPT_STR, &a.text_side, "", "a or b: the side whose text tower embeds texts; default: the "
                                                 "gallery's, else the first side with one"},
        {"precision", OPT_STR, &a.precision, "", "f32 or bf16 products; default: the gallery's"},
        {"xyz-only", OPT_FLAG, &a.xyz_only, "", "PointBERT: give an xyz model the first 3 columns of wider clouds"},
        {"seed", OPT_INT, &a.seed, "0", "CLAP's chunk starts, PointBERT's sampling start (as cmcr embed)"},
        {"host", OPT_STR, &a.host, "127.0.0.1", "the address to listen on (another than a loopback one opens the "
                                                "gallery's files to the network: docs/serve.md)"},
        {"port", OPT_INT, &a.port, "8080", "the port (0: a free one, shown in the listening line)"},
        {"threads", OPT_INT, &a.threads, "4", "HTTP threads"},
        {"workers", OPT_INT, &a.workers, "2", "computations at once (embed, search, localise)"},
        {"max-upload", OPT_INT, &a.max_upload, "32", "MiB: the largest request body (larger: 413)"},
        {"timeout", OPT_INT, &a.timeout, "30", "seconds: an idle connection is closed, and a request that found "
                                               "no free worker gets 503"},
        {"max-connections", OPT_INT, &a.max_connections, "64", "connections at once (more wait to be accepted)"},
        {"quiet", OPT_FLAG, &a.quiet, "", "no access log on stderr"},
        {0}};
    cli_cmd cmd = {"serve", "", "Search a gallery over HTTP: a JSON API and a web page, on 127.0.0.1 unless --host "
                   "says otherwise (docs/serve.md). Prints 'cmcr serve: listening on http://HOST:PORT/' when ready; "
                   "SIGTERM or SIGINT stops it once the requests in flight are answered.",
                   0, opts};
    char *pos[8];
    int rc = cli_parse(&cmd, argc, argv, pos);
    if (rc >= 0) return rc;
    if ((rc = check_options(&a)) || (rc = serve_signals())) return rc;
    server s = {.gallery_path = a.gallery, .max_upload = (size_t)a.max_upload << 20, .timeout = a.timeout,
                .threads = (int)a.threads, .workers = (int)a.workers, .max_connections = (int)a.max_connections,
                .quiet = a.quiet};
    rc = load(&s, &a);
    if (!rc) rc = serve_run(&s, a.host, (int)a.port);
    space_close(&s.sp);
    cmcr_gallery_free(s.gallery);
    return rc;
}
