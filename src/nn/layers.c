/* layers.c - forward/backward of Linear, BatchNorm1d(+ReLU), L2 normalisation, symmetric
 * InfoNCE and the intra-MCR distance. Column reductions are partitioned by column across
 * threads and run over rows in a fixed order, so results do not depend on the thread count. */
#include "nn/layers.h"
#include "runtime/matmul.h"
#include "runtime/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* sum[j] += sum_i a[i][j] (when sum) and sumb[j] += sum_i a[i][j] * b[i][j] (when b), in
 * double. Rows go in fixed chunks of COLSUM_ROWS: each chunk's partial sums are made by one
 * thread streaming its rows in order, into part (layers_work_doubles), and the partials are
 * added in chunk order, so the result does not depend on the thread count. (Walking columns
 * in blocks down all rows instead was 5x slower: a 4 KB stride per row.) */
static void column_sums(const float *a, const float *b, double *sum, double *sumb, int64_t B, int64_t n,
                        double *part)
{
    int64_t chunks = (B + COLSUM_ROWS - 1) / COLSUM_ROWS;
    #pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        double *ps = part + c * 2 * n, *pb = ps + n;
        memset(ps, 0, sizeof(double) * (size_t)(2 * n));
        for (int64_t i = c * COLSUM_ROWS; i < B && i < (c + 1) * COLSUM_ROWS; i++) {
            const float *ra = a + i * n;
            if (sum)
                for (int64_t j = 0; j < n; j++) ps[j] += ra[j];
            if (b) {
                const float *rb = b + i * n;
                for (int64_t j = 0; j < n; j++) pb[j] += (double)ra[j] * rb[j];
            }
        }
    }
    for (int64_t c = 0; c < chunks; c++) {
        const double *ps = part + c * 2 * n, *pb = ps + n;
        if (sum)
            for (int64_t j = 0; j < n; j++) sum[j] += ps[j];
        if (b)
            for (int64_t j = 0; j < n; j++) sumb[j] += pb[j];
    }
}

size_t layers_work_doubles(int64_t rows, int64_t max_width, int64_t total_rows)
{
    int64_t chunks = (rows + COLSUM_ROWS - 1) / COLSUM_ROWS;
    int64_t bn = 2 * max_width + chunks * 2 * max_width; /* two results + the partials */
    int64_t losses = 2 * total_rows;                     /* InfoNCE: column sums + row losses */
    return (size_t)(bn > losses ? bn : losses);
}

void linear_backward(const mm_prec *mp, float *dx, float *dw, float *db, const float *dy, const float *x,
                     const float *w, int64_t B, int64_t in, int64_t out, double *work)
{
    mm_prec_gemm(mp, 1, 0, out, in, B, 1.0f, dy, x, 1.0f, dw);
    if (db) {
        memset(work, 0, sizeof(double) * (size_t)out);
        column_sums(dy, NULL, work, NULL, B, out, work + 2 * out);
        for (int64_t j = 0; j < out; j++) db[j] += (float)work[j];
    }
    if (dx) mm_prec_gemm(mp, 0, 0, B, in, out, 1.0f, dy, w, 0.0f, dx);
}

/* y = gamma * xhat + beta (then ReLU) for one row: the forward pass and the recomputation in
 * the backward pass share it, so both give the same bits. */
static inline void bn_output_row(float *y, const float *xhat, const float *gamma, const float *beta, int relu,
                                 int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        float v = gamma[j] * xhat[j] + beta[j];
        y[j] = relu && v < 0 ? 0.0f : v;
    }
}

void batchnorm_forward(float *h, float *xhat, float *invstd, const float *gamma, const float *beta, float *run_mean,
                       float *run_var, float momentum, float eps, int relu, const layer_batch *lb, int64_t n,
                       double *work)
{
    int64_t B = lb->rows;
    double *mean = work, *sq = work + n, total = (double)lb->total;
    memset(work, 0, sizeof(double) * (size_t)(2 * n));
    column_sums(h, NULL, mean, NULL, B, n, work + 2 * n);
    dist_sum_d(lb->dist, mean, n);
    for (int64_t j = 0; j < n; j++) mean[j] /= total;
    /* Two-pass variance: subtract the mean first (numerically stable). */
    #pragma omp parallel for schedule(static) if (B * n > 65536)
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < n; j++) xhat[i * n + j] = (float)(h[i * n + j] - mean[j]);
    column_sums(xhat, xhat, NULL, sq, B, n, work + 2 * n);
    dist_sum_d(lb->dist, sq, n);
    for (int64_t j = 0; j < n; j++) {
        double v = sq[j] / total;
        invstd[j] = (float)(1.0 / sqrt(v + eps));
        run_mean[j] = (float)((1 - momentum) * run_mean[j] + momentum * mean[j]);
        run_var[j] = (float)((1 - momentum) * run_var[j] + momentum * v * total / (total - 1));
    }
    #pragma omp parallel for schedule(static) if (B * n > 65536)
    for (int64_t i = 0; i < B; i++) {
        for (int64_t j = 0; j < n; j++) xhat[i * n + j] *= invstd[j];
        bn_output_row(h + i * n, xhat + i * n, gamma, beta, relu, n);
    }
}

void batchnorm_recompute(float *y, const float *xhat, const float *gamma, const float *beta, int relu, int64_t B,
                         int64_t n)
{
    #pragma omp parallel for schedule(static) if (B * n > 65536)
    for (int64_t i = 0; i < B; i++) bn_output_row(y + i * n, xhat + i * n, gamma, beta, relu, n);
}

void batchnorm_backward(float *dy, const float *y, const float *xhat, const float *invstd, const float *gamma,
                        float *dgamma, float *dbeta, int relu, const layer_batch *lb, int64_t n, double *work)
{
    int64_t B = lb->rows;
    double total = (double)lb->total;
    if (relu) {
        #pragma omp parallel for schedule(static) if (B * n > 65536)
        for (int64_t i = 0; i < B; i++)
            for (int64_t j = 0; j < n; j++) dy[i * n + j] = y[i * n + j] > 0 ? dy[i * n + j] : 0.0f;
    }
    double *s = work, *sx = work + n;
    memset(work, 0, sizeof(double) * (size_t)(2 * n));
    column_sums(dy, xhat, s, sx, B, n, work + 2 * n); /* s = sum dy, sx = sum dy * xhat */
    for (int64_t j = 0; j < n; j++) {
        dbeta[j] += (float)s[j];
        dgamma[j] += (float)sx[j];
    }
    dist_sum_d(lb->dist, work, 2 * n); /* s and sx over the global batch */
    double *g = work + 2 * n; /* per column, once (a division per element cost 3% of a step) */
    for (int64_t j = 0; j < n; j++) g[j] = (double)gamma[j] * invstd[j] / total;
    #pragma omp parallel for schedule(static) if (B * n > 65536)
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < n; j++)
            dy[i * n + j] = (float)(g[j] * (total * dy[i * n + j] - s[j] - xhat[i * n + j] * sx[j]));
}

void normalize_forward(float *z, float *norms, int64_t B, int64_t n)
{
    #pragma omp parallel for schedule(static) if (B * n > 65536)
    for (int64_t i = 0; i < B; i++) norms[i] = (float)vm_normalize_row(z + i * n, z + i * n, n);
}

void normalize_backward(float *dz, const float *z, const float *norms, int64_t B, int64_t n)
{
    #pragma omp parallel for schedule(static) if (B * n > 65536)
    for (int64_t i = 0; i < B; i++) {
        float *d = dz + i * n;
        const float *p = z + i * n;
        if (!(norms[i] > 1e-12)) { /* below the clamp: z = x / 1e-12, a linear map */
            for (int64_t j = 0; j < n; j++) d[j] = (float)(d[j] / 1e-12);
            continue;
        }
        double dot = 0;
        #pragma omp simd reduction(+ : dot) /* lanes of double partial sums, as vm_normalize_row */
        for (int64_t j = 0; j < n; j++) dot += (double)p[j] * d[j];
        double inv = 1.0 / norms[i];
        for (int64_t j = 0; j < n; j++) d[j] = (float)((d[j] - p[j] * dot) * inv);
    }
}

/* The InfoNCE element-wise passes over this rank's logits l (b x B) read l three times and
 * never store a second b x B matrix: the column softmax is recomputed where it is needed
 * (one more exponential per element, vectorised, is cheaper than 4 B^2 bytes of memory
 * traffic). Columns are split across threads in blocks of 64 and rows summed in order, so
 * results do not depend on the thread count. */
enum { COLS = 64 };

CMCR_VECTOR_CLONES
static void col_block_max(const float *l, float *colv, int64_t b, int64_t B, int64_t j0, int64_t w)
{
    float mx[COLS];
    for (int64_t j = 0; j < w; j++) mx[j] = l[j0 + j];
    for (int64_t i = 1; i < b; i++) {
        const float *r = l + i * B + j0;
        for (int64_t j = 0; j < w; j++) mx[j] = r[j] > mx[j] ? r[j] : mx[j];
    }
    memcpy(colv + j0, mx, (size_t)w * sizeof(float));
}

/* colsum[j] = sum_i exp(l_ij - colv[j]) over this rank's rows. */
CMCR_VECTOR_CLONES
static void col_block_expsum(const float *l, const float *colv, double *colsum, int64_t b, int64_t B, int64_t j0,
                             int64_t w)
{
    double s[COLS] = {0};
    const float *m = colv + j0;
    for (int64_t i0 = 0; i0 < b; i0 += 128) { /* float partial sums of 128 rows: they vectorise */
        float f[COLS] = {0};
        for (int64_t i = i0; i < b && i < i0 + 128; i++) {
            const float *r = l + i * B + j0;
            for (int64_t j = 0; j < w; j++) f[j] += vm_exp_nonpositive(r[j] - m[j]);
        }
        for (int64_t j = 0; j < w; j++) s[j] += f[j];
    }
    memcpy(colsum + j0, s, (size_t)w * sizeof(double));
}

/* Row r (B logits, its positive at column gi) becomes c * dL/dlogits:
 * c (softmax_row_j + softmax_col_j - 2 [j == gi]), the column softmax being
 * exp(l_j - colmax_j) * colinv_j. Returns the row's loss terms (both directions' terms for
 * index gi, given col_lse_gi, the log-sum-exp of column gi). */
CMCR_VECTOR_CLONES
static double infonce_row(float *r, const float *colmax, const float *colinv, double col_lse_gi, int64_t gi,
                          int64_t B, float c)
{
    float mx = r[0], diag = r[gi];
    #pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < B; j++) mx = r[j] > mx ? r[j] : mx;
    double sum = 0;
    for (int64_t j0 = 0; j0 < B; j0 += 256) { /* float partial sums vectorise; a double one did not */
        int64_t j1 = j0 + 256 < B ? j0 + 256 : B;
        float part = 0;
        #pragma omp simd reduction(+ : part)
        for (int64_t j = j0; j < j1; j++) part += vm_exp_nonpositive(r[j] - mx);
        sum += part;
    }
    float rinv = (float)(1.0 / sum);
    #pragma omp simd
    for (int64_t j = 0; j < B; j++)
        r[j] = c * (vm_exp_nonpositive(r[j] - mx) * rinv + vm_exp_nonpositive(r[j] - colmax[j]) * colinv[j]);
    r[gi] -= 2.0f * c;
    return (mx + log(sum) - diag) + (col_lse_gi - diag);
}

double infonce(const mm_prec *mp, const float *za, const float *zb, float *dza, float *dzb, const infonce_ws *ws,
               double tau, double scale, const layer_batch *lb, int64_t n, double *work)
{
    int64_t b = lb->rows, B = lb->total;
    int many = lb->dist->size > 1;
    const float *zb_all = many ? ws->zb_all : zb;
    float *l = ws->logits, *colmax = ws->colv, *colinv = ws->colv + B;
    double *col_lse = work, *row_loss = work + B;
    if (many) dist_allgather_rows(lb->dist, zb, ws->zb_all, B, n);
    /* this rank's rows of logits = za zb^T / tau */
    mm_prec_gemm(mp, 0, 1, b, B, n, (float)(1.0 / tau), za, zb_all, 0.0f, l);
    #pragma omp parallel for schedule(static)
    for (int64_t j0 = 0; j0 < B; j0 += COLS) col_block_max(l, colmax, b, B, j0, B - j0 < COLS ? B - j0 : COLS);
    dist_max_f(lb->dist, colmax, B);
    #pragma omp parallel for schedule(static)
    for (int64_t j0 = 0; j0 < B; j0 += COLS)
        col_block_expsum(l, colmax, col_lse, b, B, j0, B - j0 < COLS ? B - j0 : COLS);
    dist_sum_d(lb->dist, col_lse, B);
    for (int64_t j = 0; j < B; j++) {
        colinv[j] = (float)(1.0 / col_lse[j]);
        col_lse[j] = colmax[j] + log(col_lse[j]);
    }
    /* dL/dlogit_ij = (softmax_row_ij + softmax_col_ij - 2 [i == j]) / (2B), times 1/tau for
     * the chain rule through logits = za zb^T / tau */
    double c = scale / (2.0 * (double)B * tau), loss = 0;
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < b; i++) {
        int64_t gi = lb->first + i;
        row_loss[i] = infonce_row(l + i * B, colmax, colinv, col_lse[gi], gi, B, (float)c);
    }
    for (int64_t i = 0; i < b; i++) loss += row_loss[i]; /* in order: deterministic */
    mm_prec g = *mp; /* both products below take l as A: round it once */
    if (g.bf16) {
        mm_bf16_from_f32(l, g.sa, b * B);
        g.a_rounded = 1;
    }
    mm_prec_gemm(&g, 0, 0, b, n, B, 1.0f, l, zb_all, 1.0f, dza);
    if (!many) {
        mm_prec_gemm(&g, 1, 0, B, n, b, 1.0f, l, za, 1.0f, dzb);
    } else { /* every rank's rows contribute to every column: sum them onto the owners */
        mm_prec_gemm(&g, 1, 0, B, n, b, 1.0f, l, za, 0.0f, ws->dzb_all);
        dist_reduce_scatter_rows(lb->dist, ws->dzb_all, ws->dzb_mine, B, n);
        for (int64_t k = 0; k < b * n; k++) dzb[k] += ws->dzb_mine[k];
    }
    return loss / (2.0 * (double)B);
}

double intra_loss(const float *zs, const float *zx, float *dzs, float *dzx, int squared, double scale,
                  const layer_batch *lb, int64_t n, double *work)
{
    int64_t B = lb->rows;
    double total_rows = (double)lb->total;
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < B; i++) {
        const float *a = zs + i * n, *b = zx + i * n;
        double ss = 0;
        for (int64_t j = 0; j < n; j++) ss += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
        double d = sqrt(ss);
        work[i] = squared ? ss : d;
        /* d|a-b|/da = (a-b)/|a-b| (0 where a == b, as PyTorch's norm backward); squared: 2(a-b). */
        double g = squared ? 2.0 : (d > 0 ? 1.0 / d : 0.0);
        g *= scale / total_rows;
        for (int64_t j = 0; j < n; j++) {
            float v = (float)(g * ((double)a[j] - b[j]));
            dzs[i * n + j] += v;
            dzx[i * n + j] -= v;
        }
    }
    double total = 0;
    for (int64_t i = 0; i < B; i++) total += work[i]; /* in order: deterministic */
    return total / total_rows;
}
