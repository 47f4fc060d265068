/* roberta.h - LAION-CLAP's text tower: Hugging Face's RobertaModel (roberta-base in
 * 630k-fusion-best.pt) and CLAP's text_projection, in eval mode; see docs/encoders.md,
 * RoBERTa. */
#ifndef CMCR_ENCODERS_ROBERTA_H
#define CMCR_ENCODERS_ROBERTA_H
#include "runtime/core.h"

#include <stdint.h>

/* Ids per prompt: CLAP's tokenizer pads (or truncates) every prompt to 77. */
#define ROBERTA_CONTEXT 77
/* RoBERTa's <pad> id (its padding_idx): position 1; masked as a key after the last other id. */
#define ROBERTA_PAD 1

typedef struct roberta_model roberta_model;
typedef struct roberta_info {
    int32_t vocab;     /* 50265 */
    int32_t positions; /* 514: rows of the position table (ids 0 and 1 unused by real tokens) */
    int32_t width;     /* 768 */
    int32_t layers;    /* 12 */
    int32_t heads;     /* width / 64 */
    int32_t mlp;       /* 3072: intermediate.dense's outputs */
    int32_t embed_dim; /* 512: text_projection's outputs */
} roberta_info;

/* The tower from a CLAP state dict without its "module." prefix: the text_branch.* and
 * text_projection.{0,2}.* tensors (others, e.g. the audio tower's, are ignored; so is
 * text_branch.embeddings.position_ids, never required). Sizes come from the shapes: vocab and
 * width from the word embeddings, positions from the position table (at least 79 rows: the
 * 77 ids use positions up to 78), the MLP from intermediate.dense, embed_dim from
 * text_projection.0, layers by counting consecutive text_branch.encoder.layer.N; heads are
 * width / 64 (width must be a multiple of 64). Every tensor is checked (present, floating
 * point, the shape the sizes imply, finite) before anything is allocated; errors name `name`
 * (the file) and the tensor. ts is not kept. Where bf16 products can run (mm_bf16_check),
 * the Linear weights are also kept in bfloat16. */
cmcr_status roberta_model_from_tensors(const cmcr_tensors *ts, const char *name, roberta_model **out);
/* The same; float32_only: no bfloat16 copy of the weights (bf16 products are then refused),
 * which saves half the float32 weights' memory. */
cmcr_status roberta_model_from_tensors_with(const cmcr_tensors *ts, const char *name, int float32_only,
                                       roberta_model **out);
void roberta_model_free(roberta_model *m);
const roberta_info *roberta_model_info(const roberta_model *m);

/* ids n x ROBERTA_CONTEXT (int32) -> emb n x embed_dim: text_projection(tanh(pooler(<s>
 * row))), NOT L2-normalised. The attention mask is the one CLAP's tokenizer gives with these
 * ids: every position up to the row's last id that is not ROBERTA_PAD (so a "<pad>" written in
 * a prompt, id 1 before </s>, is attended to, as Hugging Face's attention_mask says); every
 * id ROBERTA_PAD takes position 1 (create_position_ids_from_input_ids); a row of pads only
 * gets the output Hugging Face gives for an all-zero mask. Ids outside
 * 0..vocab-1 are refused (CMCR_EINVAL, naming row and position). Each batch of rows runs only
 * up to its longest real length (outputs of real tokens never see pads). bf16: products in
 * bfloat16 (CMCR_EUNSUPPORTED with the reason where unavailable). Thread-safe for concurrent
 * calls on one model. */
cmcr_status roberta_encode(const roberta_model *m, const int32_t *ids, int64_t n, int bf16, float *emb);

#endif
