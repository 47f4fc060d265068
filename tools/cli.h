/* cli.h - the cmcr command's option parser and shared helpers. */
#ifndef CMCR_CLI_H
#define CMCR_CLI_H
#include "cmcr.h"
#include <stdbool.h>

typedef enum { OPT_FLAG, OPT_STR, OPT_STRS, OPT_INT, OPT_DOUBLE, OPT_SETTING } opt_kind;

/* The values of an OPT_STRS option: every argument after the flag up to the next option
 * (--images a.jpg b.jpg --out x.npy), or the one value of --name=VALUE. Pointers into argv. */
typedef struct cli_strs {
    char **v;
    int n;
    char *one; /* the value of --name=VALUE */
} cli_strs;

/* One option: --name VALUE (or --name for flags). def is the default as text ("" = none);
 * required options have def NULL. The parsed value is written to dst (bool, const char *,
 * long long or double; a cli_strs for OPT_STRS; for OPT_SETTING a cli_setting, see
 * cli_setting_opt). */
typedef struct cli_opt {
    const char *name;
    opt_kind kind;
    void *dst;
    const char *def;
    const char *help;
} cli_opt;

#define CLI_MAX_OPTS 64

/* A training setting (cmcr_train_settings) as an option: its flag, help and default come
 * from the library, and its value goes into its field of *p (which holds the default
 * already): a number parsed strictly and within the setting's range (refused naming the
 * flag; the library checks again, naming the field), one of s->words, or no value (the flag
 * sets the opposite of the default). slot must outlive the option. */
typedef struct cli_setting {
    const cmcr_setting *s;
    cmcr_train_params *p;
} cli_setting;
cli_opt cli_setting_opt(cli_setting *slot, const cmcr_setting *s, cmcr_train_params *p);

typedef struct cli_cmd {
    const char *name;
    const char *args;     /* positional arguments for the usage line, e.g. "FILE" */
    const char *summary;
    int npos;             /* exact number of positional arguments */
    cli_opt *opts;        /* terminated by {0} */
} cli_cmd;

/* Parse argv (argv[0] is the subcommand name). Returns -1 to continue, or an exit code
 * (0 after --help, 2 on a usage error, with the message printed). Positional arguments are
 * returned in pos (at most 8). */
int cli_parse(const cli_cmd *cmd, int argc, char **argv, char **pos);
/* The same for a command that takes any number of positional arguments, at least one, between
 * and after the options (index's INPUTS...; cmd->npos unused): they go into *rest, whose
 * array is malloc'd when this returns -1 (free rest->v). */
int cli_parse_rest(const cli_cmd *cmd, int argc, char **argv, cli_strs *rest);
void cli_usage(const cli_cmd *cmd, FILE *to);

/* Print "cmcr NAME: <last library error>" and return 1. */
int cli_fail(const char *cmd);
/* Print "cmcr NAME: message" and return 1 (or 2 for usage errors). */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool cli_parse_side(const char *s, cmcr_side *side);
/* --precision (aggregate, eval retrieval, train): 0 when v is f32 or bf16, else the usage
 * error (exit 2) for cmd. */
int cli_check_precision(const char *cmd, const char *v);
/* A file a command reads or writes, for cli_check_files. name is how the user gave it
 * ("--out", "OUT"); path NULL: not used this run. Outputs: exts lists the endings its format
 * allows, as the message shows them: every word that starts with '.' (NULL: any name); may_be is the one input it may replace (train
 * --resume's checkpoint, which training continues); a pattern makes path a directory and the
 * output every file in it whose name matches (fnmatch), e.g. a cache. */
typedef struct cli_file {
    const char *name, *path, *exts, *may_be, *pattern;
} cli_file;
#define CLI_EXT_NPY ".npy"
#define CLI_EXT_MODEL ".safetensors or .pt (.pth, .bin)"
#define CLI_EXT_TENSORS ".npy, .safetensors or .pt (.pth, .bin)"
#define CLI_EXT_CKPT ".ckpt or .safetensors"
#define CLI_EXT_LOG ".jsonl, .json, .log or .txt"
/* Before any work: every output must have a name its format allows, must not be the same file
 * as any input (same device and inode, or, when one does not exist yet, the same path once its
 * directory is resolved: links and symlinks included) nor as another output. 0, or the usage
 * error (exit 2) naming the file. */
int cli_check_files(const char *cmd, const cli_file *in, int nin, const cli_file *out, int nout);
/* The directory part of path into dir ("." for a bare name, "/" for "/name"); returns the
 * last name. */
const char *cli_dir_of(const char *path, char *dir, size_t n);
/* Whether path ends in one of the endings of exts (as in cli_file). */
bool cli_name_allowed(const char *path, const char *exts);
/* A text file of one item per line (labels, class names), read whole. A final newline is
 * optional and a line's trailing "\r" is dropped, so that a file edited on Windows gives the
 * same items. n counts every line; items holds the first `want` of them (pointers into buf).
 * len is the file's size (0: empty). want < 0: every line. A file with a NUL byte is refused.
 * 0, or 1 after printing the error (cannot open: "PATH: cannot open WHAT"). Free with
 * cli_lines_free. */
typedef struct cli_lines {
    char *buf;
    char **items;
    int64_t n;
    size_t len;
} cli_lines;
int cli_read_lines(const char *cmd, const char *path, const char *what, int64_t want, cli_lines *out);
void cli_lines_free(cli_lines *l);
/* Integer flags that the command narrows or that must lie in a range: 0, or the usage error. */
typedef struct cli_range {
    const char *flag;
    long long v, lo, hi;
} cli_range;
int cli_check_ranges(const char *cmd, const cli_range *r, size_t n);
/* SIGINT and SIGTERM: remove the library's temporary files (cmcr_remove_temp_files), then die
 * of the signal as usual. Installed for every command; train replaces it while it trains. */
void cli_install_signals(void);
/* s as printable one-line text (cmcr_printable, never cut), malloc'd; NULL when out of memory. */
char *cli_printable(const char *s);
/* Route library log messages to stderr (level <= max). */
void cli_install_log(cmcr_log_level max);
bool cli_is_tty(int fd);

/* MPI (builds with it; otherwise one process): start and stop MPI around the command; this
 * process's rank and the number of ranks; the communicator to hand to the library (NULL
 * with one rank); and the largest rc over all ranks, so that all go on or all stop. */
void cli_mpi_start(int *argc, char ***argv);
void cli_mpi_stop(int rc); /* rc != 0 with several ranks: MPI_Abort */
int cli_rank(void);
int cli_ranks(void);
const void *cli_mpi_comm(void);
int cli_agree(int rc);
long long cli_sum(long long v); /* the sum over all ranks */
/* Only rank 0 reports progress and results. */
#define cli_leader() (cli_rank() == 0)

int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_project(int argc, char **argv);
int cmd_similarity(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_aggregate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_localise(int argc, char **argv);
int cmd_eval_localisation(int argc, char **argv); /* cmcr eval localisation */
int cmd_serve(int argc, char **argv);
#endif
