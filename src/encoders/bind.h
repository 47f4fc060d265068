/* bind.h - checking a checkpoint's tensors against the shapes an encoder expects, and copying
 * them into one float32 block: the loading scheme every encoder shares (see
 * docs/encoders.md, Loading).
 *
 * An encoder binds its parameters twice with the same code: first with base == NULL, which
 * checks each tensor (present, floating point, the expected shape) and counts the floats
 * they take; then, once one block of that many floats is allocated, with base set, which
 * converts each tensor to float32 into its place, checks it finite and releases its pages
 * (a mapped .safetensors file). Nothing is allocated before every tensor has passed. */
#ifndef CMCR_ENCODERS_BIND_H
#define CMCR_ENCODERS_BIND_H
#include "nn/transformer.h"
#include "runtime/core.h"

#include <stdint.h>

typedef struct binder {
    const cmcr_tensors *ts;
    const char *file; /* what messages call the checkpoint */
    const char *what; /* the model a missing tensor belongs to: "a CLIP checkpoint in the ... layout" */
    int layout;       /* which key layout, in the encoder's own terms (CLIP: 1 = Hugging Face's) */
    float *base;      /* NULL in the checking pass */
    uint64_t used;    /* floats taken so far */
} binder;

/* The tensors of an encoder's checkpoint file model (shown: its name in messages). A folder is
 * refused ("a folder; give FILE_HINT"), and so is a .npy array ("not a KIND checkpoint"). A .pt
 * keeps only the entries under the n prefixes (pt_load_only; every entry when prefixes is
 * NULL); a .safetensors file is mapped (tensors_load_mapped). */
cmcr_status bind_load_file(const char *model, const char *shown, const char *file_hint, const char *kind,
                           const char *const *prefixes, size_t n, cmcr_tensors **ts);

/* The next n floats of the block (NULL in the checking pass). */
float *bind_take(binder *b, uint64_t n);

/* The tensor named key, or NULL. */
const cmcr_tensor *bind_find(const binder *b, const char *key);

/* "FILE: missing tensor 'KEY' (WHAT)". */
cmcr_status bind_missing(const binder *b, const char *key);

/* "FILE: tensor 'KEY' has shape [..], expected [..]" unless t (named key) has exactly the ndim
 * dims of shape. */
cmcr_status bind_check_shape(const binder *b, const cmcr_tensor *t, const char *key, int ndim, const int64_t *shape);

/* Check tensor key against shape (ndim dims) and, in the copy pass, write it into dst as
 * float32: transposed when transpose (a 2-D a x b tensor becomes b x a). */
cmcr_status bind_key(binder *b, float *dst, int ndim, const int64_t *shape, int transpose, const char *key);

/* bind_key with the key formatted from fmt; the shape given as up to 4 dims (unused: 0). */
cmcr_status bind_fmt(binder *b, float *dst, int transpose, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                     const char *fmt, ...) CMCR_PRINTF(8, 9);

/* A LayerNorm's weight and bias (prefix + ".weight" / ".bias"), width w, eps 1e-5. */
cmcr_status bind_norm(binder *b, tf_norm *ln, int64_t w, const char *prefix);

/* A Linear layer out x in with its bias (prefix + ".weight" / ".bias"). */
cmcr_status bind_linear(binder *b, tf_linear *l, int64_t out, int64_t in, const char *prefix);

/* Dimension axis of tensor key, which must have ndim dimensions, into *out, checked to lie
 * in [lo, hi]. */
cmcr_status bind_dim(const binder *b, const char *key, int ndim, int axis, int64_t lo, int64_t hi, int32_t *out);

/* How many consecutive indices 0, 1, ... (at most max) name a present tensor: fmt holds
 * one %d (e.g. "text_branch.encoder.layer.%d.output.dense.weight"). */
int32_t bind_count(const binder *b, const char *fmt, int32_t max);

/* The weights of the n Linear layers ls in bfloat16, in one malloc'd block (*block, freed by
 * the encoder), each layer's w16 pointing into it; name is what messages call the model. */
cmcr_status bind_bf16(tf_linear *const *ls, size_t n, const char *name, uint16_t **block);

/* bind_bf16 over the nfixed layers of fixed and the four Linear layers (qkv, out, fc1, fc2) of
 * every block of ngroups arrays of transformer blocks (blocks[g], nblocks[g] of them). */
cmcr_status bind_bf16_blocks(tf_linear *const *fixed, size_t nfixed, tf_block *const *blocks, const int64_t *nblocks,
                             int ngroups, const char *name, uint16_t **block);

/* Whether a forward pass may run its products in bfloat16 (bf16 != 0): oneDNN's bf16
 * products can run here (mm_bf16_check) and the model was loaded with its bfloat16 weights
 * (params16, from bind_bf16). CMCR_OK for bf16 == 0; else CMCR_EUNSUPPORTED naming the model. */
cmcr_status bind_check_bf16(const char *name, const uint16_t *params16, int bf16);

/* "[512, 768]" */
void bind_dims_str(char *out, size_t cap, const int64_t *d, int n);

#endif
