/* layers.h - forward/backward pairs of the training graph (llm.c style: the same argument
 * order in both, backward accumulates into parameter gradients). All matrices row-major,
 * B rows. `work` is caller-provided double scratch of layers_work_doubles() entries, so no
 * layer allocates (or can fail) during a step. */
#ifndef CMCR_LAYERS_H
#define CMCR_LAYERS_H
#include "runtime/dist.h"
#include "runtime/matmul.h"

#include <stdint.h>

/* The rows of a batch that this process holds. Per-row layers (Linear, normalisation) see
 * only `rows`; BatchNorm and the losses reduce over the global batch of `total` rows across
 * the ranks of `dist` (one rank: rows == total, first == 0). */
/* Rows per chunk of the column sums (a fixed size: results do not depend on threads). */
#define COLSUM_ROWS 256
/* Doubles of `work` that every layer below needs, for this rank's rows, the widest layer and
 * the global batch. */
size_t layers_work_doubles(int64_t rows, int64_t max_width, int64_t total_rows);

typedef struct layer_batch {
    int64_t rows, total, first;
    const dist_group *dist;
} layer_batch;

/* The backward of a Linear (its forward is mm_prec_linear, matmul.h): dW += dy^T x,
 * db += colsum(dy), dx = dy W (db and dx may be NULL); products in mp's precision. */
void linear_backward(const mm_prec *mp, float *dx, float *dw, float *db, const float *dy, const float *x,
                     const float *w, int64_t B, int64_t in, int64_t out, double *work);

/* BatchNorm1d in training mode over the global batch, on this rank's rows of h (rows x n),
 * in place: h becomes gamma * xhat + beta (with ReLU when relu != 0). Saves xhat (rows x n)
 * and invstd (n), and updates the running statistics with momentum (unbiased variance, as
 * PyTorch); every rank computes the same statistics. */
void batchnorm_forward(float *h, float *xhat, float *invstd, const float *gamma, const float *beta, float *run_mean,
                       float *run_var, float momentum, float eps, int relu, const layer_batch *lb, int64_t n,
                       double *work);
/* The forward pass's output again, from the saved xhat: bit for bit what batchnorm_forward
 * wrote into h (so that h need not be kept for the backward pass). */
void batchnorm_recompute(float *y, const float *xhat, const float *gamma, const float *beta, int relu, int64_t B,
                         int64_t n);
/* dy (rows x n) is the gradient w.r.t. the BN (post-ReLU when relu) output y; overwritten
 * with the gradient w.r.t. the BN input. dgamma, dbeta accumulate this rank's share (the
 * caller sums gradients across ranks). */
void batchnorm_backward(float *dy, const float *y, const float *xhat, const float *invstd, const float *gamma,
                        float *dgamma, float *dbeta, int relu, const layer_batch *lb, int64_t n, double *work);

/* z = x / max(|x|, 1e-12) per row, in place; saves the norms. */
void normalize_forward(float *z, float *norms, int64_t B, int64_t n);
/* dz (gradient w.r.t. z) becomes the gradient w.r.t. x. */
void normalize_backward(float *dz, const float *z, const float *norms, int64_t B, int64_t n);

/* Scratch of the InfoNCE over a global batch of B rows, this rank holding b of them. */
typedef struct infonce_ws {
    float *logits;        /* b x B */
    /* several ranks only (one rank: NULL): */
    float *zb_all;        /* B x n: zb gathered from all ranks */
    float *dzb_all;       /* B x n: this rank's contribution to dL/dzb of every row */
    float *dzb_mine;      /* b x n: the sum of those contributions for this rank's rows */
    float *colv;          /* 2 B: column maxima and 1 / column sums */
} infonce_ws;

/* Symmetric InfoNCE between za and zb (this rank's rows x n of the global batch) at
 * temperature tau, over the whole global batch: returns this rank's share of the loss
 * (mean of the two cross-entropies; the shares sum to the loss) and accumulates scale *
 * dL/dza and scale * dL/dzb for this rank's rows into dza, dzb. Its three products run in mp's
 * precision (the element-wise softmax work is float32 either way). */
double infonce(const mm_prec *mp, const float *za, const float *zb, float *dza, float *dzb, const infonce_ws *ws,
               double tau, double scale, const layer_batch *lb, int64_t n, double *work);

/* Intra-MCR alignment: mean_i |zs_i - zx_i| (or squared) over the global batch: returns
 * this rank's share of the loss, accumulates scale * gradients into dzs, dzx. */
double intra_loss(const float *zs, const float *zx, float *dzs, float *dzx, int squared, double scale,
                  const layer_batch *lb, int64_t n, double *work);
#endif
