/* train.h - trainer internals shared with the tests (gradient checks, PyTorch parity). */
#ifndef CMCR_TRAIN_H
#define CMCR_TRAIN_H
#include "mcr/model.h"
#include "runtime/rng.h"
#include "nn/layers.h"

/* Activations of one projector pass, kept for its backward. */
typedef struct head_cache {
    const float *x;   /* input rows (B x in), not owned */
    float *xhat1;     /* B x hid (the block's output, after BN and ReLU, is recomputed from it) */
    float *invstd1;   /* hid */
    float *xhat2;     /* B x out (two-layer heads; NULL for one layer) */
    float *invstd2;   /* out (two-layer heads; NULL for one layer) */
    float *z;         /* normalised output, B x out */
    float *norms;     /* B */
} head_cache;

/* The four inputs of a step, in this order everywhere. */
enum { IN_SA = 0, IN_XA = 1, IN_SB = 2, IN_YB = 3 };

typedef struct train_loss {
    double total, native, pseudo, intra;
} train_loss;

struct cmcr_trainer {
    cmcr_train_params p;
    cmcr_model *model;
    float *grad, *adam_m, *adam_v; /* same layout as model->params */
    model_head grad_heads[2];       /* views of grad */
    int64_t n, dim[2];             /* overlap rows; widths of A and B */
    const float *data[4];          /* s_A, x_A, s_B, y_B (n rows each) */
    int normalized[4];             /* whether data[k]'s rows are L2-normalised already */
    float *owned[4];               /* the arrays the trainer allocated (copies, pseudo) */
    int64_t batch, steps_per_epoch, total_steps, step;
    int64_t *perm, perm_epoch;
    /* workspace */
    float *in[4];                  /* noisy batch inputs */
    head_cache cache[4];
    float *dz[4];                  /* gradients w.r.t. the four outputs */
    float *a1;                     /* B x max hid: first block's output, one pass at a time */
    float *da;                     /* B x max hid backward scratch */
    infonce_ws nce;                /* logits and column softmax: (B / ranks) x B; the logits
                                    * share memory with a1 and da (never live at once) */
    double *work;
    mm_prec mp;                    /* the products' precision (and bf16 scratch, when bf16) */
    uint16_t *bf16_scratch;
    int warned_fallback;           /* a bf16 product has run in float32 and we said so */
    dist_group dist;                /* the ranks sharing each batch (one: dist.size == 1) */
    layer_batch lb;                /* this rank's rows of every batch */
    float *slab;                   /* one allocation behind all float workspace */
    char *provenance;
    uint64_t data_hash;
};

/* Forward and backward of the whole loss on the batch already in t->in (this rank's rows of
 * the global batch of t->batch rows, split as t->lb says); fills t->grad (zeroed first, then summed over the
 * ranks) and returns the loss terms (of the global batch). Updates BatchNorm running stats. */
train_loss train_forward_backward(cmcr_trainer *t);
/* Copy this rank's rows of the global batch idx[0..t->batch) of the four inputs into t->in, add
 * N(0, sigma2) noise (when enabled) and re-normalise. noise: optional explicit draws (4
 * arrays of t->batch x width, global rows), else from the step's random stream, keyed by the
 * global row so that the batch does not depend on the number of ranks. */
void train_make_batch(cmcr_trainer *t, const int64_t *idx, float *const *noise);
/* One Adam/AdamW update with the gradient in t->grad at step number step (1-based). */
void train_adam(cmcr_trainer *t, int64_t step, double lr);
double train_lr(const cmcr_train_params *p, int64_t step, int64_t total_steps);
#endif
