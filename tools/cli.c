/* cli.c - option parsing and error reporting for the cmcr command. */
#include <stdio.h>
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *kind_meta(opt_kind k)
{
    switch (k) {
    case OPT_STR: return " S";
    case OPT_INT: return " N";
    case OPT_DOUBLE: return " X";
    default: return "";
    }
}

void cli_usage(const cli_cmd *cmd, FILE *to)
{
    fprintf(to, "usage: cmcr %s [options]%s%s\n\n%s\n\noptions:\n", cmd->name, cmd->args[0] ? " " : "", cmd->args,
            cmd->summary);
    for (const cli_opt *o = cmd->opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, kind_meta(o->kind));
        fprintf(to, "  %-24s %s", left, o->help);
        if (!o->def) fprintf(to, " (required)");
        else if (o->def[0] && o->kind != OPT_FLAG) fprintf(to, " (default: %s)", o->def);
        fputc('\n', to);
    }
    fprintf(to, "  %-24s %s\n", "--help", "show this help and exit");
}

static bool set_value(const cli_opt *o, const char *text)
{
    char *end;
    errno = 0;
    switch (o->kind) {
    case OPT_FLAG: *(bool *)o->dst = true; return true;
    case OPT_STR: *(const char **)o->dst = text; return true;
    case OPT_INT: {
        long long v = strtoll(text, &end, 10);
        if (errno || end == text || *end) return false;
        *(long long *)o->dst = v;
        return true;
    }
    case OPT_DOUBLE: {
        double v = strtod(text, &end);
        if (errno || end == text || *end) return false;
        *(double *)o->dst = v;
        return true;
    }
    }
    return false;
}

static const cli_opt *find_opt(const cli_cmd *cmd, const char *name)
{
    for (const cli_opt *o = cmd->opts; o && o->name; o++)
        if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

static int apply_defaults(const cli_cmd *cmd)
{
    for (const cli_opt *o = cmd->opts; o && o->name; o++) {
        if (o->kind == OPT_FLAG) *(bool *)o->dst = false;
        else if (o->kind == OPT_STR) *(const char **)o->dst = (o->def && o->def[0]) ? o->def : NULL;
        else if (o->def && o->def[0] && !set_value(o, o->def)) {
            fprintf(stderr, "cmcr %s: internal error: bad default for --%s\n", cmd->name, o->name);
            return 2;
        }
    }
    return -1;
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv, char **pos)
{
    int npos = 0, rc = apply_defaults(cmd);
    if (rc >= 0) return rc;
    bool seen[64] = {false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_usage(cmd, stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (npos >= cmd->npos) return cli_error(cmd->name, 2, "unexpected argument '%s' (see --help)", a);
            pos[npos++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '='), *val = NULL;
        char key[64];
        size_t klen = eq ? (size_t)(eq - name) : strlen(name);
        if (klen >= sizeof key) return cli_error(cmd->name, 2, "unknown option '%s' (see --help)", a);
        memcpy(key, name, klen);
        key[klen] = '\0';
        const cli_opt *o = find_opt(cmd, key);
        if (!o) return cli_error(cmd->name, 2, "unknown option '--%s' (see --help)", key);
        if (o->kind != OPT_FLAG) {
            if (eq) val = eq + 1;
            else if (i + 1 < argc) val = argv[++i];
            else return cli_error(cmd->name, 2, "--%s needs a value", key);
        } else if (eq) {
            return cli_error(cmd->name, 2, "--%s takes no value", key);
        }
        if (!set_value(o, val)) return cli_error(cmd->name, 2, "--%s: '%s' is not a valid %s", key, val,
                                                  o->kind == OPT_INT ? "integer" : "number");
        seen[o - cmd->opts] = true;
    }
    for (const cli_opt *o = cmd->opts; o && o->name; o++)
        if (!o->def && !seen[o - cmd->opts]) return cli_error(cmd->name, 2, "--%s is required (see --help)", o->name);
    if (npos != cmd->npos)
        return cli_error(cmd->name, 2, "expected %s (see --help)", cmd->args[0] ? cmd->args : "no arguments");
    return -1;
}

/* One line "cmcr NAME: [rank R: ]message", written in one piece so that the lines of
 * several MPI ranks do not interleave. */
static void error_line(const char *cmd, const char *fmt, va_list ap)
{
    char msg[2048], rank[32] = "";
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (cli_ranks() > 1) snprintf(rank, sizeof rank, "rank %d: ", cli_rank());
    fprintf(stderr, "cmcr %s: %s%s\n", cmd, rank, msg);
}

int cli_fail(const char *cmd)
{
    return cli_error(cmd, 1, "%s", cmcr_last_error());
}

int cli_error(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_line(cmd, fmt, ap);
    va_end(ap);
    return code;
}

bool cli_parse_side(const char *s, cmcr_side *side)
{
    if (strcmp(s, "a") == 0 || strcmp(s, "A") == 0) *side = CMCR_SIDE_A;
    else if (strcmp(s, "b") == 0 || strcmp(s, "B") == 0) *side = CMCR_SIDE_B;
    else return false;
    return true;
}

int cli_check_precision(const char *cmd, const char *v)
{
    if (strcmp(v, "f32") == 0 || strcmp(v, "bf16") == 0) return 0;
    return cli_error(cmd, 2, "--precision must be f32 or bf16, not '%s'", v);
}

static void log_to_stderr(cmcr_log_level level, const char *msg, void *user)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if ((int)level <= (int)(intptr_t)user && (level == CMCR_LOG_ERROR || cli_leader())) fprintf(stderr, "cmcr: %s: %s\n", names[level], msg);
}

void cli_install_log(cmcr_log_level max) { cmcr_set_log(log_to_stderr, (void *)(intptr_t)max); }

bool cli_is_tty(int fd) { return isatty(fd) == 1; }

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
