/* pointbert_api.c - the public PointBERT calls (include/cmcr.h): ULIP-2's point encoder and
 * its projection behind one handle. The network and the grouping are in pointbert.c and
 * pointgroup.c, the point-cloud files in media/points.c. */
#include "encoders/bind.h"
#include "encoders/pointbert.h"
#include "encoders/read_files.h"
#include "media/points.h"
#include "runtime/core.h"
#include "runtime/rng.h"

#include <stdlib.h>
#include <string.h>

struct cmcr_pointbert {
    pointbert_model *net;
    pointbert_info info;
    uint64_t seed; /* the FPS start: point 0 when 0 (docs/points.md) */
    int xyz_only;
};

/* The entries of a ULIP checkpoint the point encoder needs: the rest (an image ViT, a text
 * transformer) is never read. */
static const char *const ULIP_PREFIXES[] = {"point_encoder.", "pc_projection"};

cmcr_pointbert_options cmcr_pointbert_default_options(void)
{
    cmcr_pointbert_options o = {0, 0, 0};
    return o;
}

static cmcr_status load_net(cmcr_pointbert *p, const char *model, int float32_only)
{
    char shown[1024];
    cmcr_tensors *ts = NULL;
    cmcr_printable(shown, sizeof shown, model);
    cmcr_status st = bind_load_file(model, shown, "the ULIP checkpoint file (e.g. pointbert_ULIP-2.pt)", "ULIP",
                                    ULIP_PREFIXES, 2, &ts);
    if (!st && !cmcr_tensors_find(ts, "point_encoder.encoder.first_conv.0.weight"))
        st = core_fail(CMCR_EFORMAT, "%s: not a ULIP PointBERT checkpoint: no 'point_encoder.encoder.first_conv.0."
                       "weight' in its state_dict", shown);
    if (!st) st = pointbert_model_from_tensors_with(ts, shown, float32_only != 0, &p->net);
    cmcr_tensors_free(ts);
    if (!st) p->info = pointbert_get_info(p->net);
    return st;
}

cmcr_status cmcr_pointbert_load(const char *model, const cmcr_pointbert_options *opts, cmcr_pointbert **out)
{
    cmcr_pointbert_options o = opts ? *opts : cmcr_pointbert_default_options();
    if (!out) return core_fail(CMCR_EINVAL, "cmcr_pointbert_load: NULL argument");
    *out = NULL;
    if (!model || !*model) return core_fail(CMCR_EINVAL, "cmcr_pointbert_load: no model path");
    cmcr_pointbert *p = calloc(1, sizeof *p);
    if (!p) {
        char shown[1024];
        return core_fail(CMCR_ENOMEM, "%s: out of memory", cmcr_printable(shown, sizeof shown, model));
    }
    p->seed = o.seed;
    p->xyz_only = o.xyz_only;
    cmcr_status st = load_net(p, model, o.float32_only);
    if (st) {
        cmcr_pointbert_free(p);
        return st;
    }
    *out = p;
    return CMCR_OK;
}

void cmcr_pointbert_free(cmcr_pointbert *p)
{
    if (!p) return;
    pointbert_model_free(p->net);
    free(p);
}

cmcr_pointbert_info cmcr_pointbert_get_info(const cmcr_pointbert *p)
{
    if (!p) return (cmcr_pointbert_info){0};
    const pointbert_info *i = &p->info;
    cmcr_pointbert_info r = {i->out, i->width, PB_GROUPS, PB_GROUP_SIZE,
                             (int64_t)pointbert_group_floats(i->width), i->dim, i->depth, i->heads, i->encoder_dims};
    return r;
}

/* The first point FPS starts from: point 0, or one drawn from the seed and the cloud's size
 * (so a cloud's embedding does not depend on where it sits in the input). */
static int64_t fps_start(const cmcr_pointbert *p, int64_t n)
{
    return p->seed ? (int64_t)(rng_seed_mix(p->seed, (uint64_t)n, 0, 0) % (uint64_t)n) : 0;
}

/* The cloud's columns against the model's: xyz + rgb to a colour model, xyz to an xyz model
 * (with xyz_only, the first three of a wider cloud). */
static cmcr_status match_width(const cmcr_pointbert *p, int width, const char *name, int *use)
{
    char shown[1024];
    *use = width;
    if (width == p->info.width) return CMCR_OK;
    if (width > 3 && p->info.width == 3 && p->xyz_only) return *use = 3, CMCR_OK;
    cmcr_printable(shown, sizeof shown, name);
    if (width > 3)
        return core_fail(CMCR_ESHAPE, "%s: the cloud has %d columns per point but the model takes xyz only (3); "
                         "to use the first three (e.g. ModelNet40's x,y,z,nx,ny,nz), ask for xyz only (--xyz-only)",
                         shown, width);
    return core_fail(CMCR_ESHAPE, "%s: the cloud has xyz only (3 columns) but the model takes xyz + rgb (6)", shown);
}

/* A cloud that passed points_check, grouped into input with its columns matched to the model's. */
static cmcr_status group_checked(const cmcr_pointbert *p, const float *points, int64_t n, int width, const char *name,
                                 float *input)
{
    int use;
    char shown[1024];
    cmcr_printable(shown, sizeof shown, name);
    cmcr_status st = match_width(p, width, name, &use);
    if (st) return st;
    if (use == width) return pointbert_group(points, n, width, fps_start(p, n), input, NULL, NULL);
    float *xyz = core_xmalloc((size_t)n * 3 * sizeof *xyz); /* n <= POINTS_MAX: no overflow */
    if (!xyz) return core_fail(CMCR_ENOMEM, "%s: out of memory", shown);
    for (int64_t i = 0; i < n; i++) memcpy(xyz + 3 * i, points + (size_t)i * width, 3 * sizeof *xyz);
    st = pointbert_group(xyz, n, 3, fps_start(p, n), input, NULL, NULL);
    free(xyz);
    return st;
}

cmcr_status cmcr_pointbert_group(const cmcr_pointbert *p, const float *points, int64_t n, int width,
                                 const char *name, float *input)
{
    if (!p || !points || !name || !input) return core_fail(CMCR_EINVAL, "cmcr_pointbert_group: NULL argument");
    char shown[1024];
    cmcr_status st = points_check(points, n, width, cmcr_printable(shown, sizeof shown, name));
    return st ? st : group_checked(p, points, n, width, name, input);
}

cmcr_status cmcr_pointbert_cloud(const cmcr_pointbert *p, const char *path, float *input)
{
    if (!p || !path || !input) return core_fail(CMCR_EINVAL, "cmcr_pointbert_cloud: NULL argument");
    point_cloud pc = {0};
    cmcr_status st = points_read_file(path, &pc); /* checked as it is read */
    if (!st) st = group_checked(p, pc.v, pc.n, pc.width, path, input);
    points_free(&pc);
    return st;
}

cmcr_status cmcr_pointbert_cloud_memory(const cmcr_pointbert *p, const void *data, size_t len, const char *name,
                                        float *input)
{
    if (!p || !data || !input) return core_fail(CMCR_EINVAL, "cmcr_pointbert_cloud_memory: NULL argument");
    if (!name) name = "(memory)";
    point_cloud pc = {0};
    cmcr_status st = points_read_memory(data, len, name, &pc); /* checked as it is read */
    if (!st) st = group_checked(p, pc.v, pc.n, pc.width, name, input);
    points_free(&pc);
    return st;
}

static cmcr_status read_cloud(const void *ctx, const char *path, float *input, unsigned char *flag)
{
    (void)flag;
    return cmcr_pointbert_cloud(ctx, path, input);
}

cmcr_status cmcr_pointbert_clouds(const cmcr_pointbert *p, const char *const *paths, int64_t n, float *input,
                                  unsigned char *ok)
{
    if (!p || !paths || !input || !ok || n < 0)
        return core_fail(CMCR_EINVAL, "cmcr_pointbert_clouds: NULL argument or negative count");
    return read_files(read_cloud, p, paths, n, input, pointbert_group_floats(p->info.width), NULL, ok);
}

cmcr_status cmcr_pointbert_embed(const cmcr_pointbert *p, const float *input, int64_t n, int bf16, int normalize,
                                 float *emb)
{
    if (!p || n < 0 || (n > 0 && (!input || !emb))) return core_fail(CMCR_EINVAL, "cmcr_pointbert_embed: NULL argument");
    cmcr_status st = pointbert_encode(p->net, input, n, bf16, emb);
    if (!st && normalize) cmcr_normalize_rows(emb, n, p->info.out);
    return st;
}
