/* htsat.h - HTSAT-tiny, LAION-CLAP's audio tower (630k-fusion-best.pt: enable_fusion, 'aff_2d'),
 * in eval mode, with CLAP's audio_projection; see docs/encoders.md, HTSAT.
 *
 * Input per clip: mel_fusion, 4 x 1001 x 64 float32 (channels x frames x mel bins, log-mel in
 * dB) and a flag `longer`. A short clip's 4 channels are equal; a long clip's channel 0 is the
 * whole clip shrunk to 1001 frames, channels 1-3 three chunks of it (the audio front end makes
 * both). Output: the 512-vector of audio_projection, NOT L2-normalised. */
#ifndef CMCR_ENCODERS_HTSAT_H
#define CMCR_ENCODERS_HTSAT_H
#include "runtime/core.h"

#include <stdint.h>

/* HTSAT-tiny's input constants (refused otherwise, with a message). */
#define HTSAT_CHANNELS 4
#define HTSAT_FRAMES 1001
#define HTSAT_MELS 64
#define HTSAT_MAX_STAGES 5 /* the reference's pooling needs the last map 4 or more high */

typedef struct htsat_model htsat_model;
typedef struct htsat_info {
    int32_t embed;                     /* 96: the patch embedding's width */
    int32_t stages;                    /* 4 */
    int32_t depths[HTSAT_MAX_STAGES];  /* 2 2 6 2 */
    int32_t heads[HTSAT_MAX_STAGES];   /* 4 8 16 32 */
    int32_t window;                    /* 8 (a stage whose map is no larger uses the map, unshifted) */
    int32_t width;                     /* 768: the last stage's, embed * 2^(stages - 1) */
    int32_t hidden, embed_dim;         /* 512, 512: audio_projection.0 and .2 */
    int32_t classes;                   /* 527: tscam_conv and head (checked, not computed) */
} htsat_info;

/* The model from a state dict whose keys are the checkpoint's without 'module.'
 * (audio_branch.*, audio_projection.*; other keys are ignored). Sizes come from shapes: the
 * embedding width from patch_embed.proj, stages and depths by counting blocks, heads from the
 * bias tables, the window from the first one. Every tensor is checked (present, floating
 * point, the shape the sizes imply, finite) before anything is allocated; errors name `name`
 * and the tensor. relative_position_index and the shifted blocks' attn_mask are optional; when
 * present they must equal Swin's (recomputed here). BatchNorm layers are folded into scales
 * (bn0) or into the 1x1 convolutions (AFF). Where bf16 products can run (mm_bf16_check), the
 * Linear weights are also kept in bfloat16. ts is not kept. */
cmcr_status htsat_model_from_tensors(const cmcr_tensors *ts, const char *name, htsat_model **out);
/* The same; float32_only: no bfloat16 copy of the weights (bf16 products are then refused),
 * which saves half the float32 weights' memory. */
cmcr_status htsat_model_from_tensors_with(const cmcr_tensors *ts, const char *name, int float32_only,
                                       htsat_model **out);
void htsat_model_free(htsat_model *m);
const htsat_info *htsat_model_info(const htsat_model *m);

/* n clips: mel_fusion n x 4 x 1001 x 64, longer n flags (0 / nonzero) -> emb n x embed_dim
 * (not normalised). Non-finite input is refused, naming the clip. bf16: the Linear products in
 * bfloat16 (CMCR_EUNSUPPORTED with the reason where they cannot run); attention, norms and
 * sums stay float32. Thread-safe for concurrent calls on one model: scratch is allocated per
 * call (about 14 MB per clip of a chunk at full size). */
cmcr_status htsat_encode(const htsat_model *m, const float *mel_fusion, const uint8_t *longer, int64_t n, int bf16,
                         float *emb);

/* PyTorch's F.interpolate(mode="bicubic", align_corners=True) along the rows of x (t_in x
 * cols) to t_out rows (t_out x cols); the columns keep their size, which in PyTorch's 2-D
 * kernel is an exact identity (weights 0, 1, 0, 0). Cubic convolution with A = -0.75, indices
 * clamped at the borders, PyTorch's float index arithmetic (the fraction taken with a single
 * rounding, as its build fuses it). t_in, t_out >= 1. */
void htsat_bicubic_rows(float *y, const float *x, int64_t t_in, int64_t t_out, int64_t cols);

#endif
