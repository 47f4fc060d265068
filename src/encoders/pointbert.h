/* pointbert.h - ULIP-2's point-cloud tower: PointBERT's PointTransformer (grouping, mini-PointNet,
 * transformer) and ULIP's pc_projection, in eval mode; see docs/encoders.md, ULIP-2 PointBERT.
 *
 * A cloud is n points of `width` floats (x y z, then r g b when width is 6). It is grouped
 * first (pointbert_group: farthest point sampling of PB_GROUPS centres, the PB_GROUP_SIZE
 * nearest points of each), then encoded (pointbert_encode) into the 512-vector
 * point_encoder(pc) @ pc_projection, NOT L2-normalised. */
#ifndef CMCR_ENCODERS_POINTBERT_H
#define CMCR_ENCODERS_POINTBERT_H
#include "runtime/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_GROUPS 512
#define PB_GROUP_SIZE 32

typedef struct pointbert_model pointbert_model;
typedef struct pointbert_info {
    int32_t width;        /* 3 (xyz) or 6 (xyz rgb): first_conv.0's inputs */
    int32_t encoder_dims; /* E, 256: second_conv.3's outputs */
    int32_t dim;          /* D, 384: reduce_dim's outputs, the transformer's width */
    int32_t depth;        /* 12 or 18: blocks counted */
    int32_t heads;        /* D / 64 */
    int32_t mlp;          /* 4 D: mlp.fc1's outputs */
    int32_t out;          /* 512: pc_projection's columns */
} pointbert_info;

/* The tower from a ULIP state dict without its "module." prefix: point_encoder.* and
 * pc_projection (other keys, e.g. the image and text towers', are ignored). Sizes come from
 * shapes (width from first_conv.0, E from second_conv.3, D from reduce_dim, the MLP from
 * blocks.0's fc1, out from pc_projection, depth by counting blocks); heads are D / 64 (D must
 * be a multiple of 64; the checkpoint does not store them). The mini-PointNet's 128/256/512
 * widths are checked. Every tensor is checked (present, floating point, the shape the sizes
 * imply, finite) before anything is allocated (BatchNorm variances, >= 0, as they are copied);
 * errors name `file` and the tensor. The BatchNorms are folded into the convolutions before them. Where bf16
 * products can run (mm_bf16_check) and !float32_only, the Linear and convolution weights are
 * also kept in bfloat16. ts is not kept. */
cmcr_status pointbert_model_from_tensors(const cmcr_tensors *ts, const char *file, pointbert_model **out);
cmcr_status pointbert_model_from_tensors_with(const cmcr_tensors *ts, const char *file, bool float32_only,
                                              pointbert_model **out);
void pointbert_model_free(pointbert_model *m);
/* The sizes (all zero for NULL). */
pointbert_info pointbert_get_info(const pointbert_model *m);

/* Floats of one cloud's grouped input: PB_GROUPS * PB_GROUP_SIZE * width (neighbourhoods)
 * + PB_GROUPS * 3 (centres). */
size_t pointbert_group_floats(int width);

/* points_fps and points_knn fail with CMCR_ENOMEM (scratch: 16 bytes a point for FPS, 8 a
 * point per thread for kNN) or CMCR_EINVAL (the arguments outside what is stated below, e.g.
 * k > n, a centre or start outside 0..n-1, stride < 3, n > INT32_MAX: indices are int32).
 *
 * Farthest point sampling (C-MCR's misc.fps, started at `start` instead of a random index):
 * m indices into out. Squared distances are float32 ((dx*dx + dy*dy) + dz*dz, never fused),
 * so the indices are the reference's exactly; ties go to the lowest index. n >= 1, start in
 * 0..n-1, points finite; with n < m the centres repeat as the algorithm gives them. */
cmcr_status points_fps(const float *v, int64_t n, int stride, int64_t start, int32_t m, int32_t *out);
/* For each of the m centres (indices into v), the k nearest points (k <= n): the k smallest
 * squared distances computed in double from the float coordinates, ties to the lower index,
 * in increasing (distance, index) order, into out (m x k). Parallel over the centres. */
cmcr_status points_knn(const float *v, int64_t n, int stride, const int32_t *centres, int32_t m, int32_t k,
                       int32_t *out);

/* One cloud (n x width, finite: the caller checked) grouped into out (pointbert_group_floats):
 * per group, its PB_GROUP_SIZE neighbours' xyz minus the centre's (then their rgb, uncentred,
 * for width 6); after all groups, the PB_GROUPS centres' xyz. centre_idx (PB_GROUPS) and
 * knn_idx (PB_GROUPS x PB_GROUP_SIZE) receive the indices when not NULL. Fails (CMCR_EINVAL)
 * for n < PB_GROUP_SIZE or n > INT32_MAX, width not 3 or 6, start outside 0..n-1. */
cmcr_status pointbert_group(const float *v, int64_t n, int width, int64_t start, float *out, int32_t *centre_idx,
                            int32_t *knn_idx);

/* count grouped clouds (count x pointbert_group_floats(width)) -> emb count x out, NOT
 * normalised. Non-finite input is refused, naming the cloud. bf16: the products in bfloat16
 * (CMCR_EUNSUPPORTED with the reason where they cannot run); max-pooling, norms, attention and
 * sums stay float32. Scratch is allocated per call and bounded whatever the count: the
 * mini-PointNet runs 128 groups at a time (4,096 point rows: 19 MB at E = 256) and the
 * transformer 2 clouds at a time (1,026 token rows: 17 MB of activations and 19 MB of
 * attention scores at D = 384); about 55 MB in all at full size (4 MB more with bf16).
 * Products and loops run in parallel with OpenMP inside; concurrent calls on one model are
 * safe. */
cmcr_status pointbert_encode(const pointbert_model *m, const float *groups, int64_t count, int bf16, float *emb);

#endif
