/* probe.c - which encoder a checkpoint holds, told by a few key names (cmcr_encoder_kind). */
#include "io/io.h"
#include "runtime/core.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

/* Key names that identify each kind (any one suffices; the last found wins), after pt.c drops
 * "module.". */
static const struct {
    const char *kind, *key;
} KEYS[] = {
    {"clap", "audio_branch.patch_embed.proj.weight"},
    {"clap", "text_branch.embeddings.word_embeddings.weight"},
    {"clip", "vision_model.embeddings.patch_embedding.weight"},
    {"clip", "visual.conv1.weight"},
    {"clip", "text_model.embeddings.token_embedding.weight"},
    {"clip", "token_embedding.weight"},
    /* after CLIP's: ULIP's checkpoint also holds a CLIP-shaped text tower */
    {"pointbert", "point_encoder.encoder.first_conv.0.weight"},
    {"connection", "Head_A.net.0.weight"},  /* one-layer heads (ulip_clip.pt) */
    {"connection", "Head_A.net1.0.weight"}, /* two-layer heads (clap_clip.pt) */
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

static bool is_torchscript(const char *file)
{
    int err;
    zip_t *za = zip_open(file, ZIP_RDONLY, &err);
    if (!za) return false;
    bool yes = zip_name_locate(za, "constants.pkl", ZIP_FL_NODIR) >= 0;
    zip_discard(za);
    return yes;
}

static cmcr_status find_keys(const char *file, cmcr_format fmt, const char **keys, bool *found)
{
    if (fmt == CMCR_FORMAT_PT) return pt_find_keys(file, keys, N_KEYS, found);
    cmcr_tensors *ts = NULL;
    cmcr_status st = tensors_load_mapped(file, fmt, &ts); /* mapped: nothing is read but the header */
    for (size_t k = 0; !st && k < N_KEYS; k++) found[k] = cmcr_tensors_find(ts, keys[k]) != NULL;
    cmcr_tensors_free(ts);
    return st;
}

static cmcr_status kind_of_file(const char *file, const char *shown, const char **kind)
{
    cmcr_format fmt;
    const char *keys[N_KEYS];
    bool found[N_KEYS] = {0};
    cmcr_status st = cmcr_file_format(file, &fmt);
    if (st) return st;
    if (fmt == CMCR_FORMAT_NPY) return core_fail(CMCR_EFORMAT, "%s: a .npy array, not an encoder checkpoint", shown);
    if (fmt == CMCR_FORMAT_PT && is_torchscript(file)) return *kind = "clip", CMCR_OK; /* clip.c explains */
    for (size_t k = 0; k < N_KEYS; k++) keys[k] = KEYS[k].key;
    if ((st = find_keys(file, fmt, keys, found))) return st;
    for (size_t k = 0; k < N_KEYS; k++)
        if (found[k]) *kind = KEYS[k].kind;
    if (*kind && strcmp(*kind, "connection") == 0)
        return core_fail(CMCR_EUNSUPPORTED, "%s: a C-MCR connection (Head_A / Head_B), not an encoder: embed with the "
                         "encoders, then 'cmcr project' through it", shown);
    if (!*kind)
        return core_fail(CMCR_EFORMAT, "%s: not an encoder checkpoint cmcr knows (no CLIP key such as '%s', no "
                         "LAION-CLAP key such as '%s', no ULIP key such as '%s')", shown, KEYS[3].key, KEYS[0].key,
                         KEYS[6].key);
    return CMCR_OK;
}

cmcr_status cmcr_encoder_kind(const char *model, const char **kind)
{
    char shown[1024];
    struct stat sb;
    if (!model || !kind) return core_fail(CMCR_EINVAL, "cmcr_encoder_kind: NULL argument");
    *kind = NULL;
    cmcr_printable(shown, sizeof shown, model);
    if (stat(model, &sb) != 0) return core_fail(CMCR_EIO, "%s: cannot open model: %s", shown, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return *kind = "clip", CMCR_OK; /* a Hugging Face folder: CLIP's */
    cmcr_status st = kind_of_file(model, shown, kind);
    if (st) *kind = NULL;
    return st;
}
