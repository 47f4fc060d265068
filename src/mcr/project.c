/* project.c - projection of a whole .npy file, in one process or sharded across MPI ranks.
 *
 * One mechanism for both: rank 0 creates a temporary file next to the output, writes the
 * .npy header and sets the file's full size; every rank projects its contiguous share of
 * the rows in blocks and writes them at their offsets (pwrite), then fsyncs; when all ranks
 * succeeded, rank 0 renames the file into place, otherwise it removes it. */
#include "runtime/dist.h"
#include "runtime/file.h"
#include "io/io.h"
#include "mcr/model.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct project_job {
    const cmcr_model *m;
    cmcr_side side;
    const char *in, *out;
    int64_t block, in_dim, out_dim, rows;
    dist_group d;
    char header[NPY_HEADER_MAX]; /* the output's .npy header; the rows follow it */
    size_t header_len;
} project_job;

static cmcr_status pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return core_fail(CMCR_EIO, "%s: write failed: %s", path, w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return CMCR_OK;
}

/* Rank 0: the temporary file with its header, at its final size. */
static cmcr_status create_output(const project_job *j, char **tmp)
{
    uint64_t size = j->header_len + (uint64_t)j->rows * (uint64_t)j->out_dim * sizeof(float);
    *tmp = file_temp_name(j->out);
    if (!*tmp) return core_fail(CMCR_ENOMEM, "%s: out of memory", j->out);
    int fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) return core_fail(CMCR_EIO, "%s: cannot create %s: %s", j->out, *tmp, strerror(errno));
    cmcr_status st = pwrite_all(fd, j->header, j->header_len, 0, j->out);
    if (!st && ftruncate(fd, (off_t)size) != 0)
        st = core_fail(CMCR_EIO, "%s: cannot size the output to %llu bytes: %s", j->out, (unsigned long long)size,
                       strerror(errno));
    if (close(fd) != 0 && !st) st = core_fail(CMCR_EIO, "%s: close failed: %s", j->out, strerror(errno));
    return st;
}

/* Every rank: project its rows [lo, hi) of the input into the temporary file. Shards are
 * whole blocks of the one-process run, so every block holds the same rows as there and the
 * output is byte-identical whatever the number of ranks. */
static cmcr_status project_shard(const project_job *j, cmcr_npy_reader *r, const char *tmp,
                                 int (*progress)(int64_t, int64_t, void *), void *user)
{
    int64_t lo, hi, got, nblocks = (j->rows + j->block - 1) / j->block;
    dist_range(nblocks, j->d.rank, j->d.size, &lo, &hi);
    lo = lo * j->block < j->rows ? lo * j->block : j->rows;
    hi = hi * j->block < j->rows ? hi * j->block : j->rows;
    float *x = core_xmalloc((size_t)(j->block * j->in_dim) * sizeof(float));
    float *y = core_xmalloc((size_t)(j->block * j->out_dim) * sizeof(float));
    int fd = open(tmp, O_WRONLY);
    cmcr_status st = CMCR_OK;
    if (!x || !y) st = core_fail(CMCR_ENOMEM, "%s: out of memory for a block of %lld rows", j->in, (long long)j->block);
    else if (fd < 0) st = core_fail(CMCR_EIO, "%s: cannot open %s: %s", j->out, tmp, strerror(errno));
    else st = cmcr_npy_reader_seek(r, lo);
    for (int64_t row = lo; !st && row < hi; row += got) {
        int64_t want = hi - row < j->block ? hi - row : j->block;
        if ((st = cmcr_npy_reader_read(r, x, want, &got))) break;
        if (got != want) {
            st = core_fail(CMCR_EIO, "%s: short read at row %lld", j->in, (long long)row);
            break;
        }
        if ((st = model_project_rows(j->m, j->side, x, got, row, y))) {
            st = core_fail_prefix(st, j->in);
            break;
        }
        uint64_t off = j->header_len + (uint64_t)row * (uint64_t)j->out_dim * sizeof(float);
        st = pwrite_all(fd, y, (size_t)(got * j->out_dim) * sizeof(float), off, j->out);
        if (!st && progress && progress(row + got - lo, hi - lo, user))
            st = core_fail(CMCR_EINTERRUPTED, "%s: stopped after %lld rows", j->out, (long long)(row + got - lo));
    }
    if (fd >= 0 && !st && fsync(fd) != 0) st = core_fail(CMCR_EIO, "%s: fsync failed: %s", j->out, strerror(errno));
    if (fd >= 0) close(fd);
    free(x);
    free(y);
    return st;
}

static cmcr_status agree(const project_job *j, cmcr_status st, const char *what)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s: %s", j->out, what);
    return dist_agree(&j->d, st, buf);
}

/* Rank 0 shares the temporary file's name with the others. */
static cmcr_status share_name(const project_job *j, char **tmp)
{
    uint64_t len = *tmp ? strlen(*tmp) + 1 : 0;
    dist_bcast(&j->d, &len, sizeof len, 0);
    if (j->d.rank != 0) {
        *tmp = core_xmalloc((size_t)len);
        if (!*tmp) return core_fail(CMCR_ENOMEM, "%s: out of memory", j->out);
    }
    dist_bcast(&j->d, *tmp, (size_t)len, 0);
    return CMCR_OK;
}

static cmcr_status open_input(project_job *j, cmcr_npy_reader **r)
{
    cmcr_status st = cmcr_npy_reader_open(j->in, r);
    if (st) return st;
    j->rows = cmcr_npy_reader_rows(*r);
    j->header_len = npy_matrix_header(j->header, j->rows, j->out_dim);
    if (cmcr_npy_reader_cols(*r) != j->in_dim)
        return core_fail(CMCR_ESHAPE, "%s: rows are %lld wide but projector %c expects %lld", j->in,
                         (long long)cmcr_npy_reader_cols(*r), j->side == CMCR_SIDE_A ? 'a' : 'b',
                         (long long)j->in_dim);
    return CMCR_OK;
}

cmcr_status cmcr_project_npy(const cmcr_model *m, cmcr_side side, const char *in_path, const char *out_path,
                             int64_t block, const void *mpi_comm,
                             int (*progress)(int64_t done, int64_t total, void *user), void *progress_user)
{
    project_job j = {.m = m, .side = side, .in = in_path, .out = out_path, .block = block};
    cmcr_status st = dist_open(mpi_comm, &j.d);
    if (st) return st;
    if (!m || !in_path || !out_path || block < 1)
        return core_fail(CMCR_EINVAL, "project: need a model, input and output paths and a block of >= 1 rows");
    j.in_dim = cmcr_model_shape(m, side).in_dim;
    j.out_dim = cmcr_model_shape(m, side).out_dim;
    cmcr_npy_reader *r = NULL;
    char *tmp = NULL;
    st = agree(&j, open_input(&j, &r), "reading the input");
    if (!st && j.d.rank == 0) st = create_output(&j, &tmp);
    st = agree(&j, st, "creating the output");
    if (!st) st = agree(&j, share_name(&j, &tmp), "sharing the temporary file name");
    if (!st) st = agree(&j, project_shard(&j, r, tmp, progress, progress_user), "projecting");
    if (j.d.rank == 0 && tmp) {
        if (!st) st = file_commit_temp(tmp, out_path);
        else file_temp_discard(tmp);
    }
    st = agree(&j, st, "committing the output");
    cmcr_npy_reader_close(r);
    free(tmp);
    return st;
}
