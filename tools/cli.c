/* cli.c - option parsing and error reporting for the cmcr command. */
#define _DEFAULT_SOURCE /* realpath */
#include <stdio.h>
#include "cli.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cli_opt cli_setting_opt(cli_setting *slot, const cmcr_setting *s, cmcr_train_params *p)
{
    *slot = (cli_setting){s, p};
    return (cli_opt){s->flag, OPT_SETTING, slot, "", s->help};
}

/* What an option takes, as --help shows it: a setting's from its type. */
static opt_kind value_kind(const cli_opt *o)
{
    if (o->kind != OPT_SETTING) return o->kind;
    const cmcr_setting *s = ((const cli_setting *)o->dst)->s;
    if (s->type == CMCR_SETTING_DOUBLE) return OPT_DOUBLE;
    if (s->type != CMCR_SETTING_BOOL) return OPT_INT;
    return s->words[0] ? OPT_STR : OPT_FLAG;
}

static const char *kind_meta(opt_kind k)
{
    switch (k) {
    case OPT_STR: return " S";
    case OPT_STRS: return " S...";
    case OPT_INT: return " N";
    case OPT_DOUBLE: return " X";
    default: return "";
    }
}

/* The default as --help shows it: a setting's is the library's, not a copy. */
static const char *shown_default(const cli_opt *o, char *buf, size_t n)
{
    if (o->kind != OPT_SETTING) return o->def;
    const cmcr_setting *s = ((const cli_setting *)o->dst)->s;
    if (s->words[0]) snprintf(buf, n, "%s", s->words[s->def != 0]);
    else if (s->type == CMCR_SETTING_DOUBLE) snprintf(buf, n, "%g", s->def);
    else snprintf(buf, n, "%.0f", s->def);
    return buf;
}

void cli_usage(const cli_cmd *cmd, FILE *to)
{
    fprintf(to, "usage: cmcr %s [options]%s%s\n\n%s\n\noptions:\n", cmd->name, cmd->args[0] ? " " : "", cmd->args,
            cmd->summary);
    for (const cli_opt *o = cmd->opts; o && o->name; o++) {
        char left[64], buf[64];
        const char *def = shown_default(o, buf, sizeof buf);
        snprintf(left, sizeof left, "--%s%s", o->name, kind_meta(value_kind(o)));
        fprintf(to, "  %-24s %s", left, o->help);
        if (!def) fprintf(to, " (required)");
        else if (def[0] && value_kind(o) != OPT_FLAG) fprintf(to, " (default: %s)", def);
        fputc('\n', to);
    }
    fprintf(to, "  %-24s %s\n", "--help", "show this help and exit");
}

/* The table's range, by the flag the user typed (the library checks it again, by field name). */
static int setting_range_error(const char *cmd, const cmcr_setting *s, const char *text)
{
    if (isinf(s->hi))
        return cli_error(cmd, 2, "--%s must be at least %.10g (got %s)", s->flag, s->lo, text);
    return cli_error(cmd, 2, "--%s must be between %.10g and %.10g (got %s)", s->flag, s->lo, s->hi, text);
}

/* A setting's value into its field: -1, or the usage error's exit code. */
static int set_setting(const char *cmd, const cli_setting *c, const char *text)
{
    const cmcr_setting *s = c->s;
    char *f = (char *)c->p + s->offset;
    int64_t v;
    if (s->type == CMCR_SETTING_BOOL && !s->words[0]) {
        *(int *)f = s->def == 0;
        return -1;
    }
    if (s->type == CMCR_SETTING_BOOL) {
        int d = s->def != 0; /* the default word first */
        for (int w = 0; w < 2; w++) {
            if (strcmp(text, s->words[w]) != 0) continue;
            *(int *)f = w;
            return -1;
        }
        return cli_error(cmd, 2, "--%s must be %s or %s, not '%s'", s->flag, s->words[d], s->words[!d], text);
    }
    double d;
    if (s->type == CMCR_SETTING_DOUBLE) {
        if (cmcr_parse_double(text, -HUGE_VAL, HUGE_VAL, &d)) return cli_error(cmd, 2, "--%s: %s", s->flag, cmcr_last_error());
    } else {
        if (cmcr_parse_int(text, INT64_MIN, INT64_MAX, &v)) return cli_error(cmd, 2, "--%s: %s", s->flag, cmcr_last_error());
        d = (double)v;
    }
    if (d < s->lo || d > s->hi) return setting_range_error(cmd, s, text);
    if (s->type == CMCR_SETTING_DOUBLE) *(double *)f = d;
    else if (s->type == CMCR_SETTING_I64) *(int64_t *)f = v;
    else *(int *)f = (int)v; /* within [lo, hi], which an int holds (test_settings) */
    return -1;
}

/* Strict: the library's parsers (whole text, in range, finite), which also say what is wrong. */
static bool set_value(const cli_opt *o, const char *text)
{
    switch (o->kind) {
    case OPT_FLAG: *(bool *)o->dst = true; return true;
    case OPT_STR: *(const char **)o->dst = text; return true;
    case OPT_INT: {
        int64_t v;
        if (cmcr_parse_int(text, INT64_MIN, INT64_MAX, &v)) return false;
        *(long long *)o->dst = v;
        return true;
    }
    case OPT_DOUBLE: return cmcr_parse_double(text, -HUGE_VAL, HUGE_VAL, (double *)o->dst) == CMCR_OK;
    case OPT_STRS:
    case OPT_SETTING: break; /* set_strs, set_setting */
    }
    return false;
}

/* An OPT_STRS option at argv[i]: its values, the arguments up to the next option. Returns the
 * index of its last value, or -1 after the usage error. */
static int set_strs(const cli_cmd *cmd, const cli_opt *o, const char *eq, int i, int argc, char **argv)
{
    cli_strs *s = o->dst;
    if (s->n) return cli_error(cmd->name, 2, "--%s given twice (give all its values after one --%s)", o->name, o->name), -1;
    if (eq && !eq[1]) return cli_error(cmd->name, 2, "--%s needs a value", o->name), -1;
    if (eq) {
        *s = (cli_strs){&s->one, 1, (char *)eq + 1};
        return i;
    }
    int j = i + 1;
    while (j < argc && strncmp(argv[j], "--", 2) != 0) j++;
    if (j == i + 1) return cli_error(cmd->name, 2, "--%s needs a value", o->name), -1;
    *s = (cli_strs){argv + i + 1, j - i - 1, NULL};
    return j - 1;
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
        if (o - cmd->opts >= CLI_MAX_OPTS) {
            fprintf(stderr, "cmcr %s: internal error: more than %d options\n", cmd->name, CLI_MAX_OPTS);
            return 2;
        }
        if (o->kind == OPT_SETTING) continue; /* its field holds the library's default */
        if (o->kind == OPT_FLAG) *(bool *)o->dst = false;
        else if (o->kind == OPT_STR) *(const char **)o->dst = (o->def && o->def[0]) ? o->def : NULL;
        else if (o->kind == OPT_STRS) *(cli_strs *)o->dst = (cli_strs){NULL, 0, NULL};
        else if (o->def && o->def[0] && !set_value(o, o->def)) {
            fprintf(stderr, "cmcr %s: internal error: bad default for --%s\n", cmd->name, o->name);
            return 2;
        }
    }
    return -1;
}

static int parse_args(const cli_cmd *cmd, int argc, char **argv, char **pos, cli_strs *rest);

int cli_parse(const cli_cmd *cmd, int argc, char **argv, char **pos)
{
    return parse_args(cmd, argc, argv, pos, NULL);
}

int cli_parse_rest(const cli_cmd *cmd, int argc, char **argv, cli_strs *rest)
{
    *rest = (cli_strs){malloc((size_t)(argc > 0 ? argc : 1) * sizeof(char *)), 0, NULL};
    if (!rest->v) return cli_error(cmd->name, 1, "out of memory");
    int rc = parse_args(cmd, argc, argv, NULL, rest);
    if (rc >= 0) {
        free(rest->v);
        *rest = (cli_strs){0};
    }
    return rc;
}

/* Positional arguments go into pos (at most cmd->npos), or into rest when it is not NULL. */
static int parse_args(const cli_cmd *cmd, int argc, char **argv, char **pos, cli_strs *rest)
{
    int npos = 0, rc = apply_defaults(cmd);
    if (rc >= 0) return rc;
    bool seen[CLI_MAX_OPTS] = {false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_usage(cmd, stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (rest) {
                rest->v[rest->n++] = argv[i];
                continue;
            }
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
        if (o->kind == OPT_STRS) {
            if ((i = set_strs(cmd, o, eq, i, argc, argv)) < 0) return 2;
            seen[o - cmd->opts] = true;
            continue;
        }
        if (value_kind(o) != OPT_FLAG) {
            if (eq) val = eq + 1;
            else if (i + 1 < argc) val = argv[++i];
            else return cli_error(cmd->name, 2, "--%s needs a value", key);
        } else if (eq) {
            return cli_error(cmd->name, 2, "--%s takes no value", key);
        }
        if (o->kind == OPT_SETTING && (rc = set_setting(cmd->name, o->dst, val)) >= 0) return rc;
        if (o->kind != OPT_SETTING && !set_value(o, val))
            return cli_error(cmd->name, 2, "--%s: %s", key, cmcr_last_error());
        seen[o - cmd->opts] = true;
    }
    for (const cli_opt *o = cmd->opts; o && o->name; o++)
        if (!o->def && !seen[o - cmd->opts]) return cli_error(cmd->name, 2, "--%s is required (see --help)", o->name);
    if (rest ? rest->n == 0 : npos != cmd->npos)
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

/* ------------------------------------------------------------------ inputs and outputs */

const char *cli_dir_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    snprintf(dir, n, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
    return slash ? slash + 1 : path;
}

/* path with its directory resolved (realpath: symlinks, "." and ".."), the last name kept as
 * given, so that it works for a file that does not exist yet; false when the directory does
 * not exist. */
static bool resolve(const char *path, char *out, size_t n)
{
    char dir[PATH_MAX], real[PATH_MAX];
    const char *base = cli_dir_of(path, dir, sizeof dir);
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return realpath(path, out) != NULL; /* a directory: all of it */
    if (!realpath(dir, real)) return false;
    return snprintf(out, n, "%s/%s", strcmp(real, "/") ? real : "", base) < (int)n;
}

/* Same device and inode when both exist; else the same resolved path. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    bool ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea != eb) return false;
    char ra[PATH_MAX], rb[PATH_MAX];
    if (resolve(a, ra, sizeof ra) && resolve(b, rb, sizeof rb)) return strcmp(ra, rb) == 0;
    return strcmp(a, b) == 0;
}

/* Whether the file `in` is one an output writes: that file, or for a directory output, a file
 * in that directory whose name matches its pattern. */
static bool writes(const cli_file *o, const char *in)
{
    if (!o->pattern) return same_file(o->path, in);
    char dir[PATH_MAX], file[PATH_MAX];
    if (!realpath(o->path, dir) || !resolve(in, file, sizeof file)) return false;
    char *slash = strrchr(file, '/');
    *slash = '\0';
    return strcmp(dir, *file ? file : "/") == 0 && fnmatch(o->pattern, slash + 1, 0) == 0;
}

/* exts: the allowed endings are its words that start with '.' (after any "(" or ","). */
bool cli_name_allowed(const char *path, const char *exts)
{
    size_t n = strlen(path);
    for (const char *e = strchr(exts, '.'); e; e = strchr(e + 1, '.')) {
        if (e != exts && e[-1] != ' ' && e[-1] != '(') continue; /* inside a word */
        size_t len = strcspn(e, " ,)");
        if (n > len && strncmp(path + n - len, e, len) == 0) return true;
    }
    return false;
}

/* The directory an output file goes into exists and may be written (checked before the
 * work, not found out after it). */
static int check_writable_dir(const char *cmd, const cli_file *o)
{
    char dir[PATH_MAX];
    cli_dir_of(o->path, dir, sizeof dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_error(cmd, 2, "%s: %s goes into %s, which is not a directory", o->path, o->name, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return cli_error(cmd, 2, "%s: %s goes into %s, where files cannot be created: %s", o->path, o->name, dir,
                         strerror(errno));
    return 0;
}

static int check_output(const char *cmd, const cli_file *o, const cli_file *in, int nin, const cli_file *out, int i)
{
    for (int k = 0; k < nin; k++) {
        if (!in[k].path || (o->may_be && same_file(o->may_be, in[k].path)) || !writes(o, in[k].path)) continue;
        if (o->pattern)
            return cli_error(cmd, 2, "%s: the input %s is in %s %s, whose files %s are rewritten: an input is never "
                             "overwritten", in[k].path, in[k].name, o->name, o->path, o->pattern);
        return cli_error(cmd, 2, "%s: %s is the same file as the input %s %s: an input is never overwritten", o->path,
                         o->name, in[k].name, in[k].path);
    }
    for (int k = 0; k < i; k++)
        if (out[k].path && !out[k].pattern && writes(o, out[k].path))
            return cli_error(cmd, 2, "%s: %s is the same file as %s %s", o->path, o->name, out[k].name, out[k].path);
    if (o->pattern) return 0; /* a directory, created if missing */
    struct stat st;
    bool is_log = o->exts && strcmp(o->exts, CLI_EXT_LOG) == 0;
    if (is_log && (strncmp(o->path, "/dev/", 5) == 0 || strncmp(o->path, "/proc/self/fd/", 14) == 0 ||
                   (stat(o->path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))))
        return 0; /* a log to a stream: /dev/stdout, /dev/fd/N (a shell's <(...)), a FIFO */
    if (o->exts && !cli_name_allowed(o->path, o->exts))
        return cli_error(cmd, 2, "%s: %s must end in %s (the format follows the name)", o->path, o->name,
                         o->exts);
    return check_writable_dir(cmd, o);
}

int cli_check_files(const char *cmd, const cli_file *in, int nin, const cli_file *out, int nout)
{
    for (int i = 0; i < nout; i++) {
        int rc = out[i].path ? check_output(cmd, &out[i], in, nin, out, i) : 0;
        if (rc) return rc;
    }
    return 0;
}

int cli_read_lines(const char *cmd, const char *path, const char *what, int64_t want, cli_lines *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error(cmd, 1, "%s: cannot open %s", path, what);
    size_t cap = 0, len = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *nb = realloc(out->buf, cap);
            if (!nb) {
                fclose(f);
                cli_lines_free(out);
                return cli_error(cmd, 1, "%s: out of memory", path);
            }
            out->buf = nb;
        }
        memcpy(out->buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    out->len = len;
    if (out->buf && memchr(out->buf, '\0', len)) {
        cli_lines_free(out);
        return cli_error(cmd, 1, "%s: contains a NUL byte, so it is not a text file of %s", path, what);
    }
    if (want < 0) { /* every line */
        want = 1;
        for (size_t i = 0; i < len; i++) want += out->buf[i] == '\n';
    }
    out->items = malloc((size_t)(want > 0 ? want : 1) * sizeof *out->items);
    if (!out->buf) out->buf = malloc(1);
    if (!out->items || !out->buf) {
        cli_lines_free(out);
        return cli_error(cmd, 1, "%s: out of memory", path);
    }
    out->buf[len] = '\0';
    for (char *p = out->buf; *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[l - 1] = '\0';
        if (out->n < want) out->items[out->n] = p;
        out->n++;
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}

void cli_lines_free(cli_lines *l)
{
    free(l->items);
    free(l->buf);
    memset(l, 0, sizeof *l);
}

int cli_check_ranges(const char *cmd, const cli_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].v < r[i].lo || r[i].v > r[i].hi)
            return cli_error(cmd, 2, "--%s must be between %lld and %lld (got %lld)", r[i].flag, r[i].lo, r[i].hi,
                             r[i].v);
    return 0;
}

/* ------------------------------------------------------------------ signals */

/* Async-signal-safe: unlink the temporary files, then the signal's default action. */
static void remove_temps_and_die(int sig)
{
    cmcr_remove_temp_files();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A signal ignored when we start (nohup, background jobs of a script) stays ignored. */
void cli_install_signals(void)
{
    const int sigs[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = remove_temps_and_die;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(sigs[i], &sa, NULL);
    }
}

char *cli_printable(const char *s)
{
    size_t cap = 4 * strlen(s) + 8; /* every byte escaped at most to \xNN */
    char *out = malloc(cap);
    return out ? (char *)cmcr_printable(out, cap, s) : NULL;
}
