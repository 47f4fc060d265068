/* test_mpi.c - distributed runs equal one process. Run under mpirun with 2 (or more) ranks:
 *
 *  1. data-parallel training: K steps on a communicator of all ranks against the same
 *     training in one process (rank 0, no communicator), same global batch and seed, for
 *     one- and two-layer heads, an uneven shard split, and top-k-free aggregation inside
 *     the trainer: losses of every step, parameters, BatchNorm running statistics and
 *     num_batches_tracked within 1e-5;
 *  2. resume with the same rank count: a distributed run stopped by its callback at step 5
 *     (checkpoint by rank 0) and resumed ends bit-identical to an uninterrupted one;
 *  3. sharded aggregation: each rank a slice of the memory, against one process over the
 *     whole memory, within 1e-5, for the full softmax and for top-k (k within and beyond
 *     one rank's slice).
 *
 * Not cmocka: each rank checks, the verdict is agreed with MPI_Allreduce, and rank 0
 * prints what was compared. Exit 0 on success, 1 on failure. */
#include "mcr/train.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, size, failures;
static MPI_Comm world;

#define CHECK(cond, ...)                                                                                  \
    do {                                                                                                  \
        if (!(cond)) {                                                                                    \
            fprintf(stderr, "rank %d: FAILED %s:%d: ", rank, __FILE__, __LINE__);                          \
            fprintf(stderr, __VA_ARGS__);                                                                 \
            fprintf(stderr, "\n");                                                                        \
            failures++;                                                                                   \
        }                                                                                                 \
    } while (0)

static float *random_matrix(uint64_t seed, int64_t rows, int64_t cols)
{
    rng_state r;
    rng_seed(&r, seed);
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    rng_fill_normal(&r, x, rows * cols, 1.0);
    return x;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* ------------------------------------------------------------------ training */

enum { N = 600, DA = 40, DB = 32, MA = 700, MB = 500, MAX_STEPS = 64 };

typedef struct losses {
    double v[MAX_STEPS];
    int64_t n, stop_at;
} losses;

static int record(const cmcr_train_stats *s, void *user)
{
    losses *l = user;
    if (l->n < MAX_STEPS) l->v[l->n++] = s->loss;
    return l->stop_at > 0 && s->step == l->stop_at;
}

typedef struct setup {
    int layers;
    int64_t batch;
    const char *what;
} setup;

static cmcr_train_params params_for(const setup *su, const void *comm)
{
    cmcr_train_params p = cmcr_train_default_params();
    p.shape_a = (cmcr_head_shape){su->layers, DA, su->layers == 2 ? 56 : 0, 24};
    p.shape_b = (cmcr_head_shape){su->layers, DB, su->layers == 2 ? 56 : 0, 24};
    p.batch = su->batch;
    p.epochs = 2;
    p.tau = 0.05;
    p.tau_mem = 0.05;
    p.sigma2 = 0.004;
    p.lr = 3e-3;
    p.warmup_steps = 2;
    p.weight_decay = 1e-3;
    p.mpi_comm = comm;
    return p;
}

static cmcr_train_data data_for(float *const *m)
{
    cmcr_train_data d = {.overlap_a = m[0], .overlap_b = m[1], .n_overlap = N, .dim_a = DA, .dim_b = DB,
                         .memory_a = m[2], .n_memory_a = MA, .memory_b = m[3], .n_memory_b = MB};
    return d;
}

static cmcr_trainer *train(const cmcr_train_params *p, const cmcr_train_data *d, losses *l)
{
    cmcr_trainer *t = NULL;
    cmcr_status st = cmcr_trainer_new(p, d, &t);
    CHECK(st == CMCR_OK, "trainer_new: %s", cmcr_last_error());
    if (st) return NULL;
    st = cmcr_trainer_run(t, record, l);
    CHECK(st == CMCR_OK || (st == CMCR_EINTERRUPTED && l->stop_at > 0), "run: %s", cmcr_last_error());
    return t;
}

static void compare_models(const cmcr_trainer *a, const cmcr_trainer *b, const char *what)
{
    const cmcr_model *ma = a->model, *mb = b->model;
    double dp = max_abs_diff(ma->params, mb->params, ma->nparams);
    double db = max_abs_diff(ma->buffers, mb->buffers, ma->nbuffers);
    CHECK(dp <= 1e-5, "%s: parameters differ by %.3g", what, dp);
    CHECK(db <= 1e-5, "%s: BatchNorm running statistics differ by %.3g", what, db);
    for (int s = 0; s < 2; s++)
        CHECK(ma->heads[s].nbt1 == mb->heads[s].nbt1 && ma->heads[s].nbt2 == mb->heads[s].nbt2,
              "%s: num_batches_tracked differs", what);
    if (rank == 0) printf(", params %.2e, BN stats %.2e\n", dp, db);
}

static void test_training(float *const *m, const setup *su)
{
    cmcr_train_data d = data_for(m);
    cmcr_train_params pd = params_for(su, &world), ps = params_for(su, NULL);
    losses ld = {{0}, 0, 0}, ls = {{0}, 0, 0};
    cmcr_trainer *td = train(&pd, &d, &ld);
    if (rank == 0) { /* the same in one process */
        cmcr_trainer *ts = train(&ps, &d, &ls);
        if (td && ts) {
            CHECK(ld.n == ls.n && ld.n > 4, "%s: %lld vs %lld steps", su->what, (long long)ld.n, (long long)ls.n);
            double dl = 0;
            for (int64_t i = 0; i < ld.n && i < ls.n; i++) dl = fmax(dl, fabs(ld.v[i] - ls.v[i]));
            CHECK(dl <= 1e-5, "%s: losses differ by %.3g", su->what, dl);
            printf("  %-36s %lld steps: losses %.2e", su->what, (long long)ld.n, dl);
            compare_models(td, ts, su->what);
        }
        cmcr_trainer_free(ts);
    }
    cmcr_trainer_free(td);
}

/* Stop at step 5 with a checkpoint, resume, finish: the same model as without the stop. */
static void test_resume(float *const *m, const char *ckpt)
{
    setup su = {2, 100, "resume"};
    cmcr_train_data d = data_for(m);
    cmcr_train_params p = params_for(&su, &world);
    losses full = {{0}, 0, 0}, first = {{0}, 0, 5}, rest = {{0}, 0, 0};
    cmcr_trainer *a = train(&p, &d, &full);
    p.checkpoint_path = ckpt;
    p.checkpoint_every = 0;
    cmcr_trainer *b = train(&p, &d, &first);
    cmcr_trainer_free(b);
    CHECK(access(ckpt, F_OK) == 0, "no checkpoint at %s", ckpt);
    cmcr_trainer *c = NULL;
    cmcr_status st = cmcr_trainer_new(&p, &d, &c);
    if (!st) st = cmcr_trainer_resume(c, ckpt);
    CHECK(st == CMCR_OK, "resume: %s", cmcr_last_error());
    if (!st) st = cmcr_trainer_run(c, record, &rest);
    CHECK(st == CMCR_OK && cmcr_trainer_step(c) == cmcr_trainer_step(a), "resumed run: %s", cmcr_last_error());
    if (a && c) {
        int same = memcmp(a->model->params, c->model->params, a->model->nparams * sizeof(float)) == 0 &&
                   memcmp(a->model->buffers, c->model->buffers, a->model->nbuffers * sizeof(float)) == 0;
        CHECK(same, "stopped and resumed run differs from the uninterrupted one");
        if (rank == 0) printf("  %-36s %s\n", "stop at step 5, resume, finish:", same ? "bit-identical" : "DIFFERENT");
    }
    cmcr_trainer_free(a);
    cmcr_trainer_free(c);
    if (rank == 0) unlink(ckpt);
}

/* ------------------------------------------------------------------ aggregation */

static void test_aggregation(void)
{
    enum { NQ = 333, NM = 2049, D = 48 };
    float *q = random_matrix(11, NQ, D), *mem = random_matrix(12, NM, D);
    float *got = malloc(sizeof(float) * NQ * D), *want = malloc(sizeof(float) * NQ * D);
    int64_t lo = (int64_t)NM * rank / size, hi = (int64_t)NM * (rank + 1) / size;
    cmcr_aggregate_params p = cmcr_aggregate_default_params();
    p.tau_mem = 0.05;
    p.query_block = 100;
    p.memory_block = 256;
    p.mpi_comm = &world;
    cmcr_status st = cmcr_aggregate(q, NQ, mem + lo * D, hi - lo, D, &p, got);
    CHECK(st == CMCR_OK, "sharded aggregate: %s", cmcr_last_error());
    p.mpi_comm = NULL;
    st = cmcr_aggregate(q, NQ, mem, NM, D, &p, want);
    CHECK(st == CMCR_OK, "aggregate: %s", cmcr_last_error());
    double diff = max_abs_diff(got, want, (size_t)NQ * D);
    CHECK(diff <= 1e-5, "sharded aggregation differs by %.3g", diff);
    if (rank == 0) printf("  aggregation %d x %d, memory split %d ways: max diff %.2e\n", NQ, NM, size, diff);
    /* top-k: the heaps of the ranks are merged; k = 10, and k larger than one rank's slice */
    const int64_t ks[] = {10, 1500};
    for (int t = 0; t < 2; t++) {
        p.top_k = ks[t];
        p.mpi_comm = &world;
        st = cmcr_aggregate(q, NQ, mem + lo * D, hi - lo, D, &p, got);
        CHECK(st == CMCR_OK, "sharded top-k aggregate: %s", cmcr_last_error());
        p.mpi_comm = NULL;
        st = cmcr_aggregate(q, NQ, mem, NM, D, &p, want);
        CHECK(st == CMCR_OK, "top-k aggregate: %s", cmcr_last_error());
        diff = max_abs_diff(got, want, (size_t)NQ * D);
        CHECK(diff <= 1e-5, "sharded top-%lld aggregation differs by %.3g", (long long)ks[t], diff);
        if (rank == 0) printf("  aggregation, top-%lld, memory split %d ways: max diff %.2e\n", (long long)ks[t], size,
                              diff);
    }
    free(q);
    free(mem);
    free(got);
    free(want);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    world = MPI_COMM_WORLD;
    MPI_Comm_rank(world, &rank);
    MPI_Comm_size(world, &size);
    if (size < 2 && rank == 0) printf("note: only one rank; run under mpirun -np 2 for a real test\n");
    float *m[4] = {random_matrix(1, N, DA), random_matrix(2, N, DB), random_matrix(3, MA, DA),
                   random_matrix(4, MB, DB)};
    char ckpt[256];
    snprintf(ckpt, sizeof ckpt, "%s/cmcr-mpi-test-%ld.ckpt", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (long)getppid());
    MPI_Bcast(ckpt, sizeof ckpt, MPI_CHAR, 0, world);
    if (rank == 0) printf("%d ranks: distributed vs one process (max abs differences)\n", size);
    const setup cases[] = {{2, 128, "two-layer heads, batch 128"},
                           {1, 128, "one-layer heads, batch 128"},
                           {2, 101, "two-layer heads, batch 101 (uneven)"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) test_training(m, &cases[i]);
    test_resume(m, ckpt);
    test_aggregation();
    for (int i = 0; i < 4; i++) free(m[i]);
    int total = failures;
    MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_INT, MPI_SUM, world);
    if (rank == 0) printf("%s (%d failed checks)\n", total ? "FAILED" : "passed", total);
    MPI_Finalize();
    return total ? 1 : 0;
}
