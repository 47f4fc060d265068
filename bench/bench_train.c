/* bench_train.c - time of one C-MCR training step (the trainer's internal step, src/train.h).
 *
 * usage: bench_train [batch [steps [threads [preset [rows]]]]]
 * defaults: batch 4096, 7 timed steps after 1 warm-up, 2 threads, preset clap-clip,
 * rows = 3 * batch overlap rows.
 * Problem: random unit-norm overlap rows for both sides, pseudo embeddings
 * precomputed (random unit-norm rows, so consistency is on without aggregating memories),
 * every loss term on (native + pseudo InfoNCE, intra), semantic-completion noise on, Adam,
 * no cache, no checkpoints. One step = train_make_batch (gather + noise + normalise) +
 * train_forward_backward + train_adam, as cmcr_trainer_run does it.
 * FLOPs per step from the shapes (docs/benchmarks.md): projectors 4B * 2*(D*H + H*O) forward,
 * twice that backward; InfoNCE 2 pairs * 2*B*B*O forward, twice that backward (206.2 GFLOP at
 * B=4096, clap-clip). The RESULT line and the % of peak use that count, as the issue does.
 * The exact count is lower by the first Linear's input gradient, which is never computed
 * (its input is data): 189.0 GFLOP; it is printed too.
 * Peak RSS (getrusage ru_maxrss) is compared with the bytes of the inputs (four n x D float
 * matrices), the parameters and the Adam state (m, v). The trainer borrows the inputs (as
 * `cmcr train` does), so they are in memory once.
 * BENCH_BF16=1: the products in bfloat16 (cmcr_train_params.bf16; RESULT impl=cmcr-bf16).
 * Last, the step's matrix products are timed alone (same shapes and calls, no other work):
 * the floor under the step's time on this machine. */
#include "bench_util.h"
#include "mcr/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *unit_rows(int64_t rows, int64_t cols, uint64_t seed)
{
    float *x = random_rows(rows, cols, seed, NULL, 1);
    cmcr_normalize_rows(x, rows, cols);
    return x;
}

/* The matrix products of one step alone, on the same shapes, in the same order and with the
 * same library calls as the trainer (forward of four passes, two InfoNCE pairs, backward of
 * four passes): the floor under the step's time. Median seconds of reps. */
static double products_alone(int64_t B, int64_t D, int64_t H, int64_t O, int reps, int bf16)
{
    int64_t hid = H ? H : O; /* the first Linear's width */
    float *x = random_rows(B, D, 5, NULL, 1), *a = random_rows(B, hid, 6, NULL, 1);
    float *za = random_rows(B, O, 7, NULL, 1), *zb = random_rows(B, O, 8, NULL, 1);
    float *dza = random_rows(B, O, 9, NULL, 1), *dzb = random_rows(B, O, 10, NULL, 1);
    float *l = random_rows(B, B, 11, NULL, 1), *da = random_rows(B, hid, 12, NULL, 1);
    float *w1 = random_rows(hid, D, 13, NULL, 1), *w2 = random_rows(O, hid, 14, NULL, 1);
    float *dw1 = random_rows(hid, D, 15, NULL, 0), *dw2 = random_rows(O, hid, 16, NULL, 0);
    float *bias = random_rows(1, hid > O ? hid : O, 17, NULL, 1);
    double *t = malloc(sizeof(double) * (size_t)reps);
    int64_t wide = hid > D ? hid : D; /* any operand width */
    if (O > wide) wide = O;
    int64_t rows = B > wide ? B : wide; /* and any operand's other side */
    mm_prec mp = {.bf16 = bf16, .sa = malloc(sizeof(uint16_t) * (size_t)(B * rows)),
                  .sb = malloc(sizeof(uint16_t) * (size_t)(rows * wide))};
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int k = 0; k < 4; k++) {
            mm_prec_linear(&mp, x, w1, bias, B, D, hid, a);
            if (H) mm_prec_linear(&mp, a, w2, bias, B, H, O, za);
        }
        for (int pair = 0; pair < 2; pair++) {
            mm_prec_gemm(&mp, 0, 1, B, B, O, 100.0f, za, zb, 0.0f, l);
            mm_prec g = mp; /* as infonce: the gradient matrix is rounded once for its two products */
            if (g.bf16) {
                mm_bf16_from_f32(l, g.sa, B * B);
                g.a_rounded = 1;
            }
            mm_prec_gemm(&g, 0, 0, B, O, B, 1.0f, l, zb, 1.0f, dza);
            mm_prec_gemm(&g, 1, 0, B, O, B, 1.0f, l, za, 1.0f, dzb);
        }
        for (int k = 0; k < 4; k++) {
            if (H) {
                mm_prec_gemm(&mp, 1, 0, O, H, B, 1.0f, dza, a, 1.0f, dw2);
                mm_prec_gemm(&mp, 0, 0, B, H, O, 1.0f, dza, w2, 0.0f, da);
            }
            mm_prec_gemm(&mp, 1, 0, hid, D, B, 1.0f, H ? da : dza, x, 1.0f, dw1);
        }
        t[r] = now() - t0;
    }
    free(mp.sa);
    free(mp.sb);
    double med = median(t, reps);
    float *bufs[] = {x, a, za, zb, dza, dzb, l, da, w1, w2, dw1, dw2, bias};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(t);
    return med;
}

int main(int argc, char **argv)
{
    int64_t B = argc > 1 ? atoll(argv[1]) : 4096;
    int steps = argc > 2 ? atoi(argv[2]) : 7, threads = argc > 3 ? atoi(argv[3]) : 2;
    const char *preset = argc > 4 ? argv[4] : "clap-clip";
    int64_t n = argc > 5 ? atoll(argv[5]) : 3 * B;
    if (B < 2 || steps < 1 || steps > 1000 || threads < 1 || n < B) {
        fprintf(stderr, "usage: bench_train [batch [steps [threads [preset [rows >= batch]]]]]\n");
        return 2;
    }
    cmcr_train_params p = cmcr_train_default_params();
    if (cmcr_preset_shape(preset, &p.shape_a) != CMCR_OK) {
        fprintf(stderr, "bench_train: %s\n", cmcr_last_error());
        return 2;
    }
    p.shape_b = p.shape_a;
    p.batch = B;
    p.threads = threads;
    p.consistency = p.completion = p.intra = p.pseudo_pair = 1;
    p.adamw = 0;
    p.bf16 = getenv("BENCH_BF16") != NULL;
    p.checkpoint_path = NULL;
    p.cache_dir = NULL;
    int64_t D = p.shape_a.in_dim, H = p.shape_a.layers == 2 ? p.shape_a.hidden : 0,
            O = p.shape_a.out_dim;
    p.epochs = (steps + 1) / (n / B) + 2; /* enough planned steps for the schedule */
    float *oa = unit_rows(n, D, 1), *ob = unit_rows(n, D, 2), *pa = unit_rows(n, D, 3), *pb = unit_rows(n, D, 4);
    long rss_data = maxrss_kib();
    cmcr_train_data d = {.overlap_a = oa, .overlap_b = ob, .n_overlap = n, .dim_a = D, .dim_b = D,
                         .pseudo_a = pa, .pseudo_b = pb, .borrow = 1};
    cmcr_trainer *t;
    if (cmcr_trainer_new(&p, &d, &t) != CMCR_OK) {
        fprintf(stderr, "bench_train: %s\n", cmcr_last_error());
        return 1;
    }
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    uint64_t s = 77;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(next(&s) % (uint64_t)(i + 1)), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    double *times = malloc(sizeof(double) * (size_t)steps), loss = 0, loss0 = 0;
    for (int k = -1; k < steps; k++) {
        int64_t step = k + 2, pos = (int64_t)(k + 1) % (n / B);
        double t0 = now();
        train_make_batch(t, perm + pos * B, NULL);
        train_loss L = train_forward_backward(t);
        train_adam(t, step, train_lr(&t->p, step, t->total_steps));
        t->step++; /* as cmcr_trainer_run: the noise stream is keyed on the step */
        double dt = now() - t0;
        if (k >= 0) times[k] = dt;
        loss = L.total;
        if (k < 0) loss0 = L.total;
        if (getenv("BENCH_VERBOSE"))
            printf("  step %d: %.4f s, loss %.4f (native %.4f, pseudo %.4f, intra %.4f)\n", k + 2, dt, L.total,
                   L.native, L.pseudo, L.intra);
    }
    double med = median(times, steps);
    double proj_fwd = (H ? 4.0 * B * 2.0 * (double)(D * H + H * O) : 4.0 * B * 2.0 * (double)(D * O));
    double nce_fwd = 2.0 * 2.0 * (double)B * (double)B * (double)O;
    double gflop = 3.0 * (proj_fwd + nce_fwd) / 1e9; /* the usual count: backward = 2 x forward */
    /* The exact count: the first Linear needs no input gradient (its input is data), so its
     * backward is one GEMM (dW), not two. */
    double first = H ? 4.0 * B * 2.0 * (double)(D * H) : 4.0 * B * 2.0 * (double)(D * O);
    double exact = (3.0 * (proj_fwd + nce_fwd) - first) / 1e9;
    size_t np = t->model->nparams;
    double in_bytes = 4.0 * (double)n * (double)D * sizeof(float), par_bytes = (double)np * sizeof(float);
    double opt_bytes = 2.0 * par_bytes, base = in_bytes + par_bytes + opt_bytes;
    long rss = maxrss_kib();
    printf("train step, preset %s, batch %lld, %lld overlap rows, all loss terms, Adam, %d threads, products %s"
           " (%s) in %s\n", preset, (long long)B, (long long)n, threads, cmcr_gemm_backend(), cmcr_gemm_kernels(),
           p.bf16 ? "bfloat16" : "float32");
    printf("  median %.4f s over %d steps (min %.4f, max %.4f), %.0f samples/s, %.1f GFLOP/step, %.1f GFLOP/s"
           " (exact count: %.1f GFLOP/step, %.1f GFLOP/s), loss %.4f -> %.4f\n",
           med, steps, times[0], times[steps - 1], (double)B / med, gflop, gflop / med, exact, exact / med, loss0,
           loss);
    printf("  peak RSS %.1f MiB (%.1f MiB after generating the data); inputs %.1f MiB + parameters %.1f MiB + Adam"
           " state %.1f MiB = %.1f MiB; ratio %.2f\n",
           rss / 1024.0, rss_data / 1024.0, in_bytes / 1048576, par_bytes / 1048576, opt_bytes / 1048576,
           base / 1048576, rss * 1024.0 / base);
    double alone = products_alone(B, D, H, O, steps < 3 ? steps : 3, p.bf16);
    printf("  the step's matrix products alone%s: %.4f s (median of %d), %.1f GFLOP/s in the exact count; the step"
           " spends %.0f%% of its time outside them\n", p.bf16 ? " (bf16, with their roundings)" : "",
           alone, steps < 3 ? steps : 3, exact / alone, 100.0 * (med - alone) / med);
    printf("RESULT bench=train impl=%s batch=%lld rows=%lld threads=%d sec=%.6f rate=%.2f gflop=%.3f rss_kib=%ld"
           " base_bytes=%.0f products_sec=%.6f\n",
           p.bf16 ? "cmcr-bf16" : "cmcr", (long long)B, (long long)n, threads, med, (double)B / med, gflop, rss, base,
           alone);
    free(times);
    free(perm);
    cmcr_trainer_free(t);
    free(oa);
    free(ob);
    free(pa);
    free(pb);
    return 0;
}
