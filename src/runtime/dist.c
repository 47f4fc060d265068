/* dist.c - collectives over MPI, or over one process (see dist.h). Large buffers go in
 * chunks, since MPI counts are int. */
#include "runtime/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef CMCR_HAVE_MPI
#include <mpi.h>
#define COMM(d) (*(const MPI_Comm *)(d)->comm)
#define CHUNK ((int64_t)1 << 28)
#endif

int cmcr_mpi_support(void)
{
#ifdef CMCR_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

cmcr_status dist_open(const void *mpi_comm, dist_group *d)
{
    d->rank = 0;
    d->size = 1;
    d->comm = NULL;
    if (!mpi_comm) return CMCR_OK;
#ifdef CMCR_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) return core_fail(CMCR_EINVAL, "an MPI communicator was given but MPI is not initialised");
    MPI_Comm_rank(*(const MPI_Comm *)mpi_comm, &d->rank);
    MPI_Comm_size(*(const MPI_Comm *)mpi_comm, &d->size);
    if (d->size > 1) d->comm = mpi_comm;
    return CMCR_OK;
#else
    return core_fail(CMCR_EINVAL, "this cmcr was built without MPI (configure with -DCMCR_MPI=ON)");
#endif
}

void dist_range(int64_t n, int rank, int size, int64_t *lo, int64_t *hi)
{
    *lo = n * rank / size;
    *hi = n * (rank + 1) / size;
}

#ifdef CMCR_HAVE_MPI
static void allreduce(const dist_group *d, void *x, int64_t n, size_t elem, MPI_Datatype type, MPI_Op op)
{
    for (int64_t off = 0; off < n; off += CHUNK) {
        int64_t c = n - off < CHUNK ? n - off : CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, (char *)x + (size_t)off * elem, (int)c, type, op, COMM(d));
    }
}
#endif

void dist_sum_f(const dist_group *d, float *x, int64_t n)
{
#ifdef CMCR_HAVE_MPI
    if (d->comm) allreduce(d, x, n, sizeof *x, MPI_FLOAT, MPI_SUM);
#endif
    (void)d, (void)x, (void)n;
}

void dist_sum_d(const dist_group *d, double *x, int64_t n)
{
#ifdef CMCR_HAVE_MPI
    if (d->comm) allreduce(d, x, n, sizeof *x, MPI_DOUBLE, MPI_SUM);
#endif
    (void)d, (void)x, (void)n;
}

void dist_max_f(const dist_group *d, float *x, int64_t n)
{
#ifdef CMCR_HAVE_MPI
    if (d->comm) allreduce(d, x, n, sizeof *x, MPI_FLOAT, MPI_MAX);
#endif
    (void)d, (void)x, (void)n;
}

int dist_max_i(const dist_group *d, int code)
{
#ifdef CMCR_HAVE_MPI
    if (d->comm) MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, COMM(d));
#endif
    (void)d;
    return code;
}

cmcr_status dist_agree(const dist_group *d, cmcr_status st, const char *what)
{
    int any = dist_max_i(d, st != CMCR_OK);
    if (any && !st) st = core_fail(CMCR_EIO, "%s failed on another rank", what);
    return st;
}

#ifdef CMCR_HAVE_MPI
/* Element counts and displacements of every rank's shard of n rows of width. */
static void shard_counts(const dist_group *d, int64_t n, int64_t width, int *counts, int *displs)
{
    for (int r = 0; r < d->size; r++) {
        int64_t lo, hi;
        dist_range(n, r, d->size, &lo, &hi);
        counts[r] = (int)((hi - lo) * width);
        displs[r] = (int)(lo * width);
    }
}
#endif

void dist_allgather_rows(const dist_group *d, const float *mine, float *all, int64_t n, int64_t width)
{
    int64_t lo, hi;
    dist_range(n, d->rank, d->size, &lo, &hi);
    if (!d->comm) {
        if (all != mine) memcpy(all, mine, (size_t)(n * width) * sizeof(float));
        return;
    }
#ifdef CMCR_HAVE_MPI
    int counts[d->size], displs[d->size];
    shard_counts(d, n, width, counts, displs);
    const void *src = mine == all + lo * width ? MPI_IN_PLACE : (const void *)mine;
    MPI_Allgatherv(src, counts[d->rank], MPI_FLOAT, all, counts, displs, MPI_FLOAT, COMM(d));
#endif
}

void dist_reduce_scatter_rows(const dist_group *d, const float *full, float *mine, int64_t n, int64_t width)
{
    if (!d->comm) {
        if (mine != full) memcpy(mine, full, (size_t)(n * width) * sizeof(float));
        return;
    }
#ifdef CMCR_HAVE_MPI
    int counts[d->size], displs[d->size];
    shard_counts(d, n, width, counts, displs);
    MPI_Reduce_scatter(full, mine, counts, MPI_FLOAT, MPI_SUM, COMM(d));
#endif
}

void dist_bcast(const dist_group *d, void *buf, size_t bytes, int root)
{
#ifdef CMCR_HAVE_MPI
    for (size_t off = 0; d->comm && off < bytes; off += (size_t)CHUNK) {
        size_t c = bytes - off < (size_t)CHUNK ? bytes - off : (size_t)CHUNK;
        MPI_Bcast((char *)buf + off, (int)c, MPI_BYTE, root, COMM(d));
    }
#endif
    (void)d, (void)buf, (void)bytes, (void)root;
}

void dist_allgather_bytes(const dist_group *d, const void *mine, void *all, size_t bytes)
{
    if (!d->comm) {
        if (all != mine) memcpy(all, mine, bytes);
        return;
    }
#ifdef CMCR_HAVE_MPI
    MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, COMM(d));
#endif
}

void dist_offset(const dist_group *d, int64_t n, int64_t *offset, int64_t *total)
{
    *offset = 0;
    *total = n;
#ifdef CMCR_HAVE_MPI
    if (!d->comm) return;
    int64_t off = 0;
    MPI_Exscan(&n, &off, 1, MPI_INT64_T, MPI_SUM, COMM(d));
    *offset = d->rank == 0 ? 0 : off; /* Exscan leaves rank 0's result undefined */
    MPI_Allreduce(&n, total, 1, MPI_INT64_T, MPI_SUM, COMM(d));
#endif
}

void dist_barrier(const dist_group *d)
{
#ifdef CMCR_HAVE_MPI
    if (d->comm) MPI_Barrier(COMM(d));
#endif
    (void)d;
}
