/* dist.h - the collectives that data-parallel training, sharded aggregation and sharded
 * projection need, over an MPI communicator (MPI builds), or trivially over one process.
 * With one rank every operation is a no-op or a copy, so the single-process path and the
 * distributed one are the same code. Rows of a global batch of n are split into contiguous
 * shards: rank r owns [n*r/size, n*(r+1)/size). */
#ifndef CMCR_DIST_H
#define CMCR_DIST_H
#include "runtime/core.h"

#include <stdint.h>

typedef struct dist_group {
    int rank, size;
    const void *comm; /* const MPI_Comm *, NULL for one process */
} dist_group;

/* mpi_comm: pointer to an MPI_Comm or NULL. Fails in builds without MPI when non-NULL. */
cmcr_status dist_open(const void *mpi_comm, dist_group *d);
/* The shard [*lo, *hi) of n rows that rank owns. */
void dist_range(int64_t n, int rank, int size, int64_t *lo, int64_t *hi);

/* In-place sums / maxima across ranks (every rank gets the result). */
void dist_sum_f(const dist_group *d, float *x, int64_t n);
void dist_sum_d(const dist_group *d, double *x, int64_t n);
void dist_max_f(const dist_group *d, float *x, int64_t n);
/* The largest code across ranks: all ranks agree whether any of them failed. */
int dist_max_i(const dist_group *d, int code);
/* All ranks agree on failure: st when this rank failed, CMCR_EIO naming `what` when only
 * another rank did, CMCR_OK when none did. */
cmcr_status dist_agree(const dist_group *d, cmcr_status st, const char *what);
/* all (n x width) = concatenation of every rank's shard rows (mine: own shard). */
void dist_allgather_rows(const dist_group *d, const float *mine, float *all, int64_t n, int64_t width);
/* mine (own shard of n x width) = sum over ranks of the rows of full that this rank owns. */
void dist_reduce_scatter_rows(const dist_group *d, const float *full, float *mine, int64_t n, int64_t width);
void dist_bcast(const dist_group *d, void *buf, size_t bytes, int root);
/* all = every rank's `bytes` bytes of mine, in rank order (the same size on every rank). */
void dist_allgather_bytes(const dist_group *d, const void *mine, void *all, size_t bytes);
/* Where this rank's n items start in the concatenation over ranks, and the total. */
void dist_offset(const dist_group *d, int64_t n, int64_t *offset, int64_t *total);
void dist_barrier(const dist_group *d);
#endif
