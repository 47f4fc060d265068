/* clip.h - CLIP's vision and text towers (ViT-B/32, B/16, L/14 and other sizes), loaded from
 * Hugging Face or OpenAI/open_clip checkpoints; see docs/encoders.md. */
#ifndef CMCR_ENCODERS_CLIP_H
#define CMCR_ENCODERS_CLIP_H
#include "runtime/core.h"

#include <stdint.h>

typedef struct clip_model clip_model;
typedef struct clip_info {
    int32_t image_size, patch_size, grid;        /* 224, 32, 7 for ViT-B/32 */
    int32_t vision_width, vision_layers, vision_heads;
    int32_t text_width, text_layers, text_heads, context, vocab;
    int32_t embed_dim;                            /* 512 */
    const char *layout;                           /* "hf" or "openai" */
    /* The MLP activation, "quick_gelu" or "gelu": the vision tower's, and the text tower's
     * (the same unless a config.json gives the towers different ones). */
    const char *activation, *text_activation;
} clip_info;

/* How clip_model_load_with loads. activation: NULL to take each tower's from the config.json
 * beside the weights (Hugging Face's text_config / vision_config "hidden_act"; missing keys
 * are its default, "quick_gelu"), else QuickGELU (OpenAI's; nothing in a state dict tells);
 * or "quick_gelu" / "gelu" for both towers, whatever config.json says (a contradiction, or a
 * config.json that cannot be used, is logged as a warning). */
typedef struct clip_load_opts {
    const char *activation;
    /* 1: keep no bfloat16 copy of the weights (bf16 products are then refused); it costs half
     * the float32 weights' memory, made at load where bf16 products can run. */
    int float32_only;
} clip_load_opts;

/* Load weights: a Hugging Face model folder (model.safetensors, else pytorch_model.bin), or
 * one file (.safetensors / .bin / .pt) in the HF layout or the OpenAI/open_clip state-dict
 * layout. Layout and size detected from keys and shapes. fp16/bf16 weights converted at
 * load. Errors name the file and the tensor (missing, wrong shape with expected vs actual,
 * non-finite values). A TorchScript archive (OpenAI's ViT-B-32.pt) is refused with how to
 * turn it into a plain state dict. Where bf16 products can run (mm_bf16_check), the weight
 * matrices are also kept in bfloat16 (half as much memory again). A .safetensors file is
 * mapped while loading, not copied (env CMCR_NO_MMAP=1: read whole; docs/encoders.md, Memory). */
cmcr_status clip_model_load(const char *path, clip_model **out);
/* clip_model_load with options (o may be NULL: clip_model_load). The activation: see
 * clip_load_opts. A config.json beside the weights that is not JSON, has a non-string
 * hidden_act, or one other than "quick_gelu" / "gelu" ("gelu_new", "relu", ...) is refused
 * with a message naming it; so is an override other than those two. */
cmcr_status clip_model_load_with(const char *path, const clip_load_opts *o, clip_model **out);
/* The same from tensors already loaded (a checkpoint read from memory: the fuzz target);
 * name is what messages call them. ts is not kept. QuickGELU in both towers (no config). */
cmcr_status clip_model_from_tensors(const cmcr_tensors *ts, const char *name, clip_model **out);
/* The towers' activations ("quick_gelu" or "gelu"; NULL on failure) from the text of a
 * Hugging Face config.json (len bytes, not NUL-terminated; name is what messages call it):
 * what clip_model_load reads beside the weights, refusing the same things (the fuzz target
 * fuzz_clip_config). */
cmcr_status clip_config_activations(const char *json, size_t len, const char *name, const char **vision,
                                    const char **text);
void clip_model_free(clip_model *m);
const clip_info *clip_model_info(const clip_model *m);
/* Vision tower: pixels n x 3 x S x S (already normalised) -> emb n x embed_dim
 * (ln_post(class token) @ proj, NOT L2-normalised); patches (NULL or n x grid^2 x
 * embed_dim): each patch token through ln_post and proj. bf16: products in bfloat16
 * (CMCR_EUNSUPPORTED with mm_bf16_check's reason where unavailable). Thread-safe for
 * concurrent calls on one model. */
cmcr_status clip_encode_image(const clip_model *m, const float *pixels, int64_t n, int bf16, float *emb,
                              float *patches);
/* Text tower: ids n x context (int32; the first argmax = EOT position) -> emb n x embed_dim,
 * not normalised. Ids out of range refused. Rows after a sequence's EOT cannot change its
 * embedding (causal attention), so each batch runs only up to its last EOT. */
cmcr_status clip_encode_text(const clip_model *m, const int32_t *ids, int64_t n, int bf16, float *emb);

#endif
