/* model.h - the projector model's memory layout, shared by inference and training.
 *
 * Parameters of both heads live in one flat float array (so zeroing, saving and the
 * optimizer are one loop each); BatchNorm running statistics in another. A model_head holds
 * named views into them. Order: head A then head B; inside a head, block by block
 * (Linear -> BatchNorm1d; one block, or two), the tensors of head_tensors in its order:
 *   w1[hid][in] b1[hid] g1[hid] be1[hid] (w2[out][hid] b2[out] g2[out] be2[out])
 * and likewise rm1 rv1 (rm2 rv2) in the buffers, where hid is the first block's width (= out
 * for one-layer heads). */
#ifndef CMCR_MODEL_H
#define CMCR_MODEL_H
#include "runtime/core.h"

#define CMCR_BN_EPS 1e-5f

typedef struct model_head {
    cmcr_head_shape shape;
    int64_t hid;           /* width of the first Linear's output */
    float *w1, *b1, *g1, *be1;
    float *w2, *b2, *g2, *be2; /* NULL for one-layer heads */
    float *rm1, *rv1, *rm2, *rv2;
    int64_t nbt1, nbt2;    /* num_batches_tracked */
} model_head;

struct cmcr_model {
    model_head heads[2];
    float *params;
    size_t nparams;
    float *buffers;
    size_t nbuffers;
    cmcr_tensors *meta; /* metadata only (no tensors) */
    char *origin;       /* the file it was loaded from, for errors (NULL: built in memory) */
};

/* The tensors of one block of a head: the one table that binding, counting, the optimizer's
 * weight decay and the state_dict keys read. */
typedef enum {
    HT_WEIGHT,  /* parameter [out][in] */
    HT_VECTOR,  /* parameter [out] */
    HT_RUNNING, /* BatchNorm running statistic [out], in the buffers */
    HT_COUNT    /* num_batches_tracked: an int64 scalar of its own */
} head_tensor_kind;

typedef struct head_tensor {
    const char *key;       /* state_dict key after "Head_A.net1." ("0.weight") */
    head_tensor_kind kind;
    int decay;             /* weight decay applies (Linear weights only) */
    size_t view[2];        /* offsetof(model_head, ...) of its view in block 1 and block 2 */
} head_tensor;

enum { HEAD_TENSORS = 7 };
extern const head_tensor head_tensors[HEAD_TENSORS];

/* Block blk's (0 or 1) name in the state_dict ("net" for one-layer heads, else "net1",
 * "net2") and its output and input widths. */
const char *head_block_name(const cmcr_head_shape *s, int blk);
void head_block_dims(const cmcr_head_shape *s, int blk, int64_t *out, int64_t *in);
/* Floats of tensor t in block blk: in the parameters (HT_WEIGHT, HT_VECTOR) or in the
 * buffers (HT_RUNNING); 0 in the other array, and for HT_COUNT. */
int64_t head_tensor_params(const cmcr_head_shape *s, int blk, const head_tensor *t);
int64_t head_tensor_buffers(const cmcr_head_shape *s, int blk, const head_tensor *t);

/* Number of parameters / buffer floats of one head. */
size_t head_param_count(const cmcr_head_shape *s);
size_t head_buffer_count(const cmcr_head_shape *s);
/* Point a head's parameter views at p (and buffer views at b when b != NULL). Used for the
 * model and, with a gradient or optimizer array of the same layout, for training. */
void head_bind(model_head *h, const cmcr_head_shape *s, float *p, float *b);
cmcr_status head_check_shape(const cmcr_head_shape *s, const char *what);
/* Allocate a model with the given shapes; weights zero, running_var one. */
cmcr_status model_alloc(const cmcr_head_shape *a, const cmcr_head_shape *b, cmcr_model **out);

/* CMCR_EVALUE naming the first value that breaks what the forward pass relies on: every
 * value finite and every BatchNorm running_var >= 0 (so running_var + eps > 0). what names
 * the model in the message ("m.pt: Head_A.net.0.weight[3, 1] is NaN"). */
cmcr_status model_check(const cmcr_model *m, const char *what);
/* The same before writing path: "path: not written: Head_A.net.0.weight[3, 1] is NaN". */
cmcr_status model_check_to_write(const cmcr_model *m, const char *path);
/* cmcr_model_project of rows that are rows [row0, row0 + rows) of a larger input: errors
 * count rows from row0. */
cmcr_status model_project_rows(const cmcr_model *m, cmcr_side side, const float *in, int64_t rows,
                                    int64_t row0, float *out);

/* Eval-mode forward of one head on rows already L2-normalised; out is rows x out_dim (not
 * normalised). scratch holds rows * hid floats. */
void head_forward_eval(const model_head *h, const float *x, int64_t rows, float *scratch, float *out);
#endif
