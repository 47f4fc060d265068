/* cli_mpi.c - the command's side of MPI: start-up, rank, agreement and abort. In builds
 * without MPI these are the trivial one-process versions. */
#include <stdio.h>
#include "cli.h"

#ifdef CMCR_HAVE_MPI
#include <mpi.h>
#include <stdlib.h>
#include <time.h>
static int rank_, size_ = 1, started_;
static MPI_Comm world_;

/* Started by an MPI launcher (mpirun/mpiexec of Open MPI, MPICH or Intel MPI, or srun with
 * PMI/PMIx), or asked to with CMCR_MPI=1. Otherwise MPI is not started: a singleton
 * MPI_Init costs a third of a second, too much for a quick `cmcr similarity`. */
static int launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "CMCR_MPI"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]) && getenv(vars[i])[0]) return 1;
    return 0;
}

void cli_mpi_start(int *argc, char ***argv)
{
    int provided;
    if (!launched()) return;
    /* Only the main thread calls MPI; OpenMP threads never do. */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return;
    started_ = 1;
    world_ = MPI_COMM_WORLD;
    MPI_Comm_rank(world_, &rank_);
    MPI_Comm_size(world_, &size_);
}

/* True when every rank reached this point within a few seconds. */
static int all_arrived(int rc)
{
    MPI_Request req;
    int done = 0;
    MPI_Iallreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, world_, &req);
    for (int i = 0; i < 5000 && !done; i++) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return done;
}

void cli_mpi_stop(int rc)
{
    if (!started_) return;
    /* A failure on some ranks may leave others waiting in a collective: end them all. When
     * all ranks finished the command (the usual case, also for agreed failures), finish
     * cleanly so that mpirun returns the command's exit code. */
    if (rc != 0 && size_ > 1 && !all_arrived(rc)) MPI_Abort(world_, rc);
    MPI_Finalize();
    started_ = 0;
}

const void *cli_mpi_comm(void) { return size_ > 1 ? &world_ : NULL; }

int cli_agree(int rc)
{
    if (size_ > 1) MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, world_);
    return rc;
}

long long cli_sum(long long v)
{
    if (size_ > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_LONG_LONG, MPI_SUM, world_);
    return v;
}
#else
static const int rank_ = 0, size_ = 1;
void cli_mpi_start(int *argc, char ***argv) { (void)argc, (void)argv; }
void cli_mpi_stop(int rc) { (void)rc; }
const void *cli_mpi_comm(void) { return NULL; }
int cli_agree(int rc) { return rc; }
long long cli_sum(long long v) { return v; }
#endif

int cli_rank(void) { return rank_; }
int cli_ranks(void) { return size_; }
