/* layers.h - forward/backward pairs of the training graph (llm.c style: the same argument
 * order in both, backward accumulates into parameter gradients). All matrices row-major,
 * B rows. `work` is caller-provided double scratch of at least 2 * max(n, B) entries, so
 * no layer allocates (or can fail) during a step. */
#ifndef CMCR_LAYERS_H
#define CMCR_LAYERS_H
#include <stdint.h>

/* y = x W^T + b; x: B x in, W: out x in, y: B x out. */
void linear_forward(float *y, const float *x, const float *w, const float *b, int64_t B, int64_t in, int64_t out);
/* dW += dy^T x, db += colsum(dy), dx = dy W (db and dx may be NULL). */
void linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int64_t B,
                     int64_t in, int64_t out, double *work);

/* BatchNorm1d in training mode over the B rows of h (B x n), in place: h becomes
 * gamma * xhat + beta (with ReLU when relu != 0). Saves xhat (B x n) and invstd (n), and
 * updates the running statistics with momentum (unbiased variance, as PyTorch). */
void batchnorm_forward(float *h, float *xhat, float *invstd, const float *gamma, const float *beta, float *run_mean,
                       float *run_var, float momentum, float eps, int relu, int64_t B, int64_t n, double *work);
/* dy (B x n) is the gradient w.r.t. the BN (post-ReLU when relu) output y; overwritten with
 * the gradient w.r.t. the BN input. dgamma, dbeta accumulate. */
void batchnorm_backward(float *dy, const float *y, const float *xhat, const float *invstd, const float *gamma,
                        float *dgamma, float *dbeta, int relu, int64_t B, int64_t n, double *work);

/* z = x / max(|x|, 1e-12) per row, in place; saves the norms. */
void normalize_forward(float *z, float *norms, int64_t B, int64_t n);
/* dz (gradient w.r.t. z) becomes the gradient w.r.t. x. */
void normalize_backward(float *dz, const float *z, const float *norms, int64_t B, int64_t n);

/* Symmetric InfoNCE between za and zb (B x n) at temperature tau: returns the loss
 * (mean of the two cross-entropies) and accumulates scale * dL/dza and scale * dL/dzb
 * into dza, dzb. logits and colp are B x B scratch. */
double infonce(const float *za, const float *zb, float *dza, float *dzb, float *logits, float *colp, double tau,
               double scale, int64_t B, int64_t n, double *work);

/* Intra-MCR alignment: mean_i |zs_i - zx_i| (or squared): returns the loss, accumulates
 * scale * gradients into dzs, dzx. */
double intra_loss(const float *zs, const float *zx, float *dzs, float *dzx, int squared, double scale, int64_t B,
                  int64_t n, double *work);
#endif
