/* cmcr.c - the cmcr command: dispatches to one subcommand per capability. */
#include <stdio.h>
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand commands[] = {
    {"demo", cmd_demo, "the main job: synthetic world, C-MCR, ablations, oracle, retrieval table"},
    {"train", cmd_train, "train a C-MCR connection from unpaired data"},
    {"embed", cmd_embed, "embed images or prompts with CLIP (JPEG/PNG files, text) into .npy"},
    {"index", cmd_index, "index files and folders into a gallery of connected-space embeddings"},
    {"search", cmd_search, "rank a gallery by a query file or text"},
    {"project", cmd_project, "project embeddings into the connected space"},
    {"similarity", cmd_similarity, "cross-modal similarity (top-k or full matrix)"},
    {"localise", cmd_localise, "where in an image a sound (or a prompt) is: heatmap overlay and box"},
    {"eval", cmd_eval, "retrieval, zero-shot and localisation evaluation of a connected space"},
    {"aggregate", cmd_aggregate, "semantic consistency: aggregate a memory for each query"},
    {"synth", cmd_synth, "write the built-in synthetic two-MCR world as .npy files"},
    {"inspect", cmd_inspect, "list the tensors of a .npy, .safetensors or .pt file"},
    {"convert", cmd_convert, "convert between .pt, .safetensors and .npy"},
    {"serve", cmd_serve, "search a gallery over HTTP: a JSON API and a web page"},
    {"info", cmd_info, "version and numeric back-end"},
};

static void usage(FILE *to)
{
    fprintf(to, "usage: cmcr COMMAND [options]   (cmcr COMMAND --help for its options)\n\n"
                "C-MCR: connect two multi-modal contrastive embedding spaces through their shared modality.\n\n"
                "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(to, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

/* Re-execute once with OPENBLAS_CORETYPE set when OpenBLAS fell back to slow kernels for this
 * CPU (see cmcr_blas_better_core). CMCR_BLAS_FALLBACK records what OpenBLAS had picked.
 * CMCR_TEST_BLAS_CORE lets tests pretend OpenBLAS picked another set, to exercise this path
 * on CPUs it recognises. */
static void ensure_fast_blas(char **argv)
{
    const char *picked = getenv("CMCR_TEST_BLAS_CORE") ? getenv("CMCR_TEST_BLAS_CORE") : cmcr_blas_core();
    const char *core = cmcr_blas_better_core(picked);
    if (!core || getenv("CMCR_BLAS_FALLBACK")) return;
    setenv("CMCR_BLAS_FALLBACK", picked, 1);
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "cmcr: warning: could not restart with OPENBLAS_CORETYPE=%s; matrix products will be slow\n", core);
    unsetenv("OPENBLAS_CORETYPE");
}

int main(int argc, char **argv)
{
    ensure_fast_blas(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("cmcr %s\n", CMCR_VERSION_STRING);
        return 0;
    }
    cli_install_log(CMCR_LOG_WARN);
    cli_install_signals();
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        cli_mpi_start(&argc, &argv);
        int rc = commands[i].run(argc - 1, argv + 1);
        cli_mpi_stop(rc);
        return rc;
    }
    fprintf(stderr, "cmcr: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
