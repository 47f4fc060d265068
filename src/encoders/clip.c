/* clip.c - CLIP's vision and text towers (see clip.h and docs/encoders.md).
 *
 * Loading: the checkpoint is mapped by io/ (a .safetensors file: tensors_load_mapped; a .pt
 * file is read whole), its layout told by one key, its sizes read from a few shapes; then
 * every tensor is checked (present, float, the shape the sizes imply) before anything is
 * allocated, and copied in float32 into one block (q, k and v of the HF layout packed into one
 * qkv matrix; OpenAI's in x out projections transposed to PyTorch's out x in), checked finite,
 * its mapped pages released as it goes (tensors_release), and the checkpoint freed. */
#include "encoders/clip.h"
#include "encoders/bind.h"
#include "io/io.h"
#include "nn/transformer.h"
#include "runtime/file.h"
#include "runtime/half.h"
#include "runtime/matmul.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

/* Sizes beyond any CLIP: refused before they drive an allocation. */
#define CLIP_MAX_WIDTH 16384
#define CLIP_MAX_LAYERS 1000
#define CLIP_MAX_GRID 1024
#define CLIP_MAX_PATCH 1024
#define CLIP_MAX_CONTEXT 65536
#define CLIP_MAX_VOCAB (1 << 24)
/* Rows of one forward batch: a batch of sequences is cut into chunks of about this many
 * token rows, which bounds the scratch (about 15 floats x width per row: some 45 MB for
 * ViT-B/32) and keeps the products large enough to run at full speed (4096 and 512 rows
 * ran within noise of it). */
#define CLIP_CHUNK_ROWS 1024

typedef struct tower {
    tf_shape shape;
    int64_t layers, tokens; /* tokens: grid^2 + 1 (vision) or the context (text) */
    tf_block *blocks;
    float *pos;             /* tokens x width */
    tf_norm ln_pre;         /* vision only */
    tf_norm ln_post;        /* ln_post / ln_final */
    tf_linear proj;         /* embed x width, no bias */
} tower;

struct clip_model {
    clip_info info;
    char name[1024]; /* the file, printable, for messages */
    float *params;
    uint16_t *params16; /* the Linear weights in bfloat16; NULL without bf16 products */
    tower vis, txt;
    tf_linear patch; /* width x 3 P P, no bias: the patch convolution as one product */
    float *class_emb;
    float *tok;      /* vocab x text width */
};

/* ------------------------------------------------------------------ binding tensors */

/* What a missing tensor's message says the checkpoint is. */
static const char *layout_what(int hf)
{
    return hf ? "a CLIP checkpoint in the Hugging Face layout" : "a CLIP checkpoint in the OpenAI layout";
}

/* The packed qkv projection: HF keeps q, k and v apart (each w x w), OpenAI packs them. */
static cmcr_status bind_qkv(binder *b, tf_linear *l, int64_t w, const char *p)
{
    float *wt = bind_take(b, 3 * (uint64_t)w * (uint64_t)w), *bias = bind_take(b, 3 * (uint64_t)w);
    *l = (tf_linear){.w = wt, .b = bias, .in = w, .out = 3 * w};
    if (!b->layout) {
        cmcr_status st = bind_fmt(b, wt, 0, 3 * w, w, 0, 0, "%sattn.in_proj_weight", p);
        return st ? st : bind_fmt(b, bias, 0, 3 * w, 0, 0, 0, "%sattn.in_proj_bias", p);
    }
    for (int j = 0; j < 3; j++) {
        const char *q = &"qkv"[j];
        cmcr_status st = bind_fmt(b, wt ? wt + j * w * w : NULL, 0, w, w, 0, 0, "%sself_attn.%.1s_proj.weight", p, q);
        if (!st) st = bind_fmt(b, bias ? bias + j * w : NULL, 0, w, 0, 0, 0, "%sself_attn.%.1s_proj.bias", p, q);
        if (st) return st;
    }
    return CMCR_OK;
}

/* Layer i of a tower: HF "<tower>.encoder.layers.i.", OpenAI "<tower>transformer.resblocks.i.". */
static cmcr_status bind_block(binder *b, tf_block *blk, int64_t w, const char *prefix, int64_t i)
{
    char p[128], k[160];
    if (b->layout) snprintf(p, sizeof p, "%s.encoder.layers.%lld.", prefix, (long long)i);
    else snprintf(p, sizeof p, "%stransformer.resblocks.%lld.", prefix, (long long)i);
    const char *names[2][6] = {{"attn.out_proj", "ln_1", "ln_2", "mlp.c_fc", "mlp.c_proj"},
                               {"self_attn.out_proj", "layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"}};
    const char *const *n = names[b->layout];
    cmcr_status st = bind_qkv(b, &blk->qkv, w, p);
#define KEY(j) (snprintf(k, sizeof k, "%s%s", p, n[j]), k)
    if (!st) st = bind_linear(b, &blk->out, w, w, KEY(0));
    if (!st) st = bind_norm(b, &blk->ln1, w, KEY(1));
    if (!st) st = bind_norm(b, &blk->ln2, w, KEY(2));
    if (!st) st = bind_linear(b, &blk->fc1, 4 * w, w, KEY(3));
    if (!st) st = bind_linear(b, &blk->fc2, w, 4 * w, KEY(4));
#undef KEY
    return st;
}

/* A projection without bias, stored out x in (HF "<key>.weight") or in x out (OpenAI). */
static cmcr_status bind_proj(binder *b, tf_linear *l, int64_t out, int64_t in, const char *hf_key,
                             const char *oa_key)
{
    float *w = bind_take(b, (uint64_t)out * (uint64_t)in);
    *l = (tf_linear){.w = w, .in = in, .out = out};
    if (b->layout) return bind_fmt(b, w, 0, out, in, 0, 0, "%s.weight", hf_key);
    return bind_fmt(b, w, 1, out, in, 0, 0, "%s", oa_key);
}

static cmcr_status bind_blocks(binder *b, tower *t, const char *name, tf_block *blocks)
{
    for (int64_t i = 0; i < t->layers; i++) {
        cmcr_status st = bind_block(b, blocks ? &blocks[i] : &(tf_block){0}, t->shape.width, name, i);
        if (st) return st;
    }
    return CMCR_OK;
}

static cmcr_status bind_vision(binder *b, clip_model *m, tf_block *blocks)
{
    const clip_info *in = &m->info;
    tower *t = &m->vis;
    const int64_t w = in->vision_width, P = in->patch_size;
    int hf = b->layout;
    float *pw = bind_take(b, (uint64_t)w * 3 * (uint64_t)(P * P));
    m->patch = (tf_linear){.w = pw, .in = 3 * P * P, .out = w};
    cmcr_status st = bind_fmt(b, pw, 0, w, 3, P, P, "%s", hf ? "vision_model.embeddings.patch_embedding.weight"
                                                         : "visual.conv1.weight");
    m->class_emb = bind_take(b, (uint64_t)w);
    if (!st) st = bind_fmt(b, m->class_emb, 0, w, 0, 0, 0, "%s", hf ? "vision_model.embeddings.class_embedding"
                                                                 : "visual.class_embedding");
    t->pos = bind_take(b, (uint64_t)(t->tokens * w));
    if (!st) st = bind_fmt(b, t->pos, 0, t->tokens, w, 0, 0, "%s", hf ? "vision_model.embeddings.position_embedding.weight"
                                                                   : "visual.positional_embedding");
    if (!st) st = bind_norm(b, &t->ln_pre, w, hf ? "vision_model.pre_layrnorm" : "visual.ln_pre");
    if (!st) st = bind_blocks(b, t, hf ? "vision_model" : "visual.", blocks);
    if (!st) st = bind_norm(b, &t->ln_post, w, hf ? "vision_model.post_layernorm" : "visual.ln_post");
    if (!st) st = bind_proj(b, &t->proj, in->embed_dim, w, "visual_projection", "visual.proj");
    return st;
}

static cmcr_status bind_text(binder *b, clip_model *m, tf_block *blocks)
{
    const clip_info *in = &m->info;
    tower *t = &m->txt;
    const int64_t w = in->text_width;
    int hf = b->layout;
    m->tok = bind_take(b, (uint64_t)in->vocab * (uint64_t)w);
    cmcr_status st = bind_fmt(b, m->tok, 0, in->vocab, w, 0, 0, "%s", hf ? "text_model.embeddings.token_embedding.weight"
                                                                      : "token_embedding.weight");
    t->pos = bind_take(b, (uint64_t)(t->tokens * w));
    if (!st) st = bind_fmt(b, t->pos, 0, t->tokens, w, 0, 0, "%s", hf ? "text_model.embeddings.position_embedding.weight"
                                                                   : "positional_embedding");
    if (!st) st = bind_blocks(b, t, hf ? "text_model" : "", blocks);
    if (!st) st = bind_norm(b, &t->ln_post, w, hf ? "text_model.final_layer_norm" : "ln_final");
    if (!st) st = bind_proj(b, &t->proj, in->embed_dim, w, "text_projection", "text_projection");
    return st;
}

/* ------------------------------------------------------------------ sizes from shapes */

/* Layers counted as consecutive indices whose first LayerNorm is present. */
static int32_t count_layers(const binder *b, int hf, const char *prefix)
{
    char fmt[160];
    snprintf(fmt, sizeof fmt, hf ? "%s.encoder.layers.%%d.layer_norm1.weight" : "%stransformer.resblocks.%%d.ln_1.weight",
             prefix);
    return bind_count(b, fmt, CLIP_MAX_LAYERS);
}

static cmcr_status check_heads(const binder *b, const char *what, int32_t width, int32_t layers, int32_t *heads)
{
    if (width % 64 != 0)
        return core_fail(CMCR_EUNSUPPORTED, "%s: %s width %d is not a multiple of 64 (CLIP's heads are 64 wide)",
                         b->file, what, width);
    if (layers < 1)
        return core_fail(CMCR_EFORMAT, "%s: the %s tower has no layers (no '%s' key)", b->file, what,
                         b->layout ? "*.encoder.layers.0.layer_norm1.weight" : "*transformer.resblocks.0.ln_1.weight");
    *heads = width / 64;
    return CMCR_OK;
}

static cmcr_status read_sizes(const binder *b, clip_info *in)
{
    int hf = b->layout;
    int32_t vpos, vpos_w, p2;
    cmcr_status st = bind_dim(b, hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight", 4, 0, 1,
                            CLIP_MAX_WIDTH, &in->vision_width);
    if (!st) st = bind_dim(b, hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight", 4, 3, 1,
                         CLIP_MAX_PATCH, &in->patch_size);
    if (!st) st = bind_dim(b, hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight", 4, 2, 1,
                         CLIP_MAX_PATCH, &p2);
    const char *vp = hf ? "vision_model.embeddings.position_embedding.weight" : "visual.positional_embedding";
    if (!st) st = bind_dim(b, vp, 2, 0, 2, (int64_t)CLIP_MAX_GRID * CLIP_MAX_GRID + 1, &vpos);
    if (!st) st = bind_dim(b, vp, 2, 1, 1, CLIP_MAX_WIDTH, &vpos_w);
    if (st) return st;
    in->grid = (int32_t)lround(sqrt((double)(vpos - 1)));
    if (p2 != in->patch_size || (int64_t)in->grid * in->grid != vpos - 1)
        return core_fail(CMCR_ESHAPE, "%s: the patch embedding (%d x %d) and '%s' (%d rows: not a square grid + 1) "
                         "do not describe square patches of a square image", b->file, p2, in->patch_size, vp, vpos);
    in->image_size = in->grid * in->patch_size;
    const char *tok = hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight";
    const char *tp = hf ? "text_model.embeddings.position_embedding.weight" : "positional_embedding";
    st = bind_dim(b, tok, 2, 0, 2, CLIP_MAX_VOCAB, &in->vocab);
    if (!st) st = bind_dim(b, tok, 2, 1, 1, CLIP_MAX_WIDTH, &in->text_width);
    if (!st) st = bind_dim(b, tp, 2, 0, 1, CLIP_MAX_CONTEXT, &in->context);
    if (!st) st = hf ? bind_dim(b, "visual_projection.weight", 2, 0, 1, CLIP_MAX_WIDTH, &in->embed_dim)
                     : bind_dim(b, "visual.proj", 2, 1, 1, CLIP_MAX_WIDTH, &in->embed_dim);
    if (st) return st;
    in->vision_layers = count_layers(b, hf, hf ? "vision_model" : "visual.");
    in->text_layers = count_layers(b, hf, hf ? "text_model" : "");
    st = check_heads(b, "vision", in->vision_width, in->vision_layers, &in->vision_heads);
    return st ? st : check_heads(b, "text", in->text_width, in->text_layers, &in->text_heads);
}

static void set_towers(clip_model *m)
{
    const clip_info *in = &m->info;
    m->vis.shape = (tf_shape){.width = in->vision_width, .heads = in->vision_heads, .mlp = 4 * (int64_t)in->vision_width};
    m->vis.layers = in->vision_layers;
    m->vis.tokens = (int64_t)in->grid * in->grid + 1;
    m->txt.shape = (tf_shape){.width = in->text_width, .heads = in->text_heads, .mlp = 4 * (int64_t)in->text_width,
                              .causal = 1};
    m->txt.layers = in->text_layers;
    m->txt.tokens = in->context;
}

/* ------------------------------------------------------------------ activation */

/* The towers' MLP activation. Nothing in the weights tells QuickGELU from GELU: a Hugging
 * Face config.json beside them does (text_config / vision_config "hidden_act"), an explicit
 * choice (clip_load_opts) overrides it, and without either the towers keep OpenAI's
 * QuickGELU. */
typedef struct acts {
    tf_act vis, txt;
} acts;

#define CLIP_MAX_CONFIG (16u << 20) /* a config.json is a few kB */

static const char *act_name(tf_act a) { return a == TF_GELU ? "gelu" : "quick_gelu"; }

static int act_parse(const char *s, tf_act *a)
{
    if (strcmp(s, "quick_gelu") == 0) *a = TF_QUICKGELU;
    else if (strcmp(s, "gelu") == 0) *a = TF_GELU;
    else return 0;
    return 1;
}

/* The config.json in the weights file's folder (malloc'd), NULL when out of memory. */
static char *config_beside(const char *file)
{
    const char *slash = strrchr(file, '/');
    size_t dir = slash ? (size_t)(slash - file) + 1 : 0, n = dir + sizeof "config.json";
    char *p = core_xmalloc(n);
    if (p) snprintf(p, n, "%.*sconfig.json", (int)dir, file);
    return p;
}

/* The member key of object o, or NULL: the last one when the key repeats, as Python's json
 * (Hugging Face's reader) keeps it; cJSON's own lookup returns the first. */
static const cJSON *member(const cJSON *o, const char *key)
{
    const cJSON *found = NULL;
    for (const cJSON *c = cJSON_IsObject(o) ? o->child : NULL; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0) found = c;
    return found;
}

/* One tower's hidden_act, as Hugging Face's CLIPConfig reads it: the legacy
 * "<tower>_config_dict" wins over "<tower>_config"; a missing section or key is
 * CLIPTextConfig's / CLIPVisionConfig's default, "quick_gelu". */
static cmcr_status tower_act(const cJSON *root, const char *which, const char *cfg, tf_act *a)
{
    char key[32], shown[256];
    snprintf(key, sizeof key, "%s_config_dict", which);
    const cJSON *sec = member(root, key);
    if (!cJSON_IsObject(sec)) {
        snprintf(key, sizeof key, "%s_config", which);
        sec = member(root, key);
    }
    *a = TF_QUICKGELU;
    if (!sec || cJSON_IsNull(sec)) return CMCR_OK;
    if (!cJSON_IsObject(sec)) return core_fail(CMCR_EFORMAT, "%s: '%s' is not a JSON object", cfg, key);
    const cJSON *h = member(sec, "hidden_act");
    if (!h) return CMCR_OK;
    if (!cJSON_IsString(h))
        return core_fail(CMCR_EFORMAT, "%s: '%s.hidden_act' is not a string", cfg, key);
    if (!act_parse(h->valuestring, a))
        return core_fail(CMCR_EUNSUPPORTED, "%s: '%s.hidden_act' is \"%s\"; cmcr's CLIP towers run \"quick_gelu\" and "
                         "\"gelu\" only", cfg, key, cmcr_printable(shown, sizeof shown, h->valuestring));
    return CMCR_OK;
}

/* Both towers' activations from config json (len bytes; cfg names it in messages). */
static cmcr_status parse_config(const char *json, size_t len, const char *cfg, acts *a)
{
    const char *at = NULL; /* this call's error position (cJSON_GetErrorPtr is process-wide) */
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &at, 0);
    if (!root) {
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : 0;
        return core_fail(CMCR_EFORMAT, "%s: not valid JSON (error near byte %zu); it is read for the towers' "
                         "activation (hidden_act)", cfg, off);
    }
    cmcr_status st = cJSON_IsObject(root) ? CMCR_OK : core_fail(CMCR_EFORMAT, "%s: not a JSON object", cfg);
    if (!st) st = tower_act(root, "vision", cfg, &a->vis);
    if (!st) st = tower_act(root, "text", cfg, &a->txt);
    cJSON_Delete(root);
    return st;
}

/* The activations for the weights in file: config.json beside it when there is one, else
 * QuickGELU; an override (quick_gelu or gelu, both towers) wins, with a warning where it
 * contradicts the config, whose problems then only warn too. */
static cmcr_status choose_acts(const char *file, const char *override, acts *a)
{
    char shown[1024], cfg[1024];
    tf_act want = TF_QUICKGELU;
    *a = (acts){TF_QUICKGELU, TF_QUICKGELU};
    if (override && !act_parse(override, &want))
        return core_fail(CMCR_EINVAL, "%s: activation '%s' is neither quick_gelu nor gelu",
                         cmcr_printable(shown, sizeof shown, file), cmcr_printable(cfg, sizeof cfg, override));
    char *path = config_beside(file);
    if (!path) return core_fail(CMCR_ENOMEM, "out of memory");
    cmcr_printable(cfg, sizeof cfg, path);
    struct stat sb;
    unsigned char *json = NULL;
    size_t len = 0;
    cmcr_status st = CMCR_OK;
    bool have = stat(path, &sb) == 0;
    if (have) {
        st = file_read_all(path, CLIP_MAX_CONFIG, &json, &len);
        if (!st) st = parse_config((const char *)json, len, cfg, a);
    }
    free(json);
    free(path);
    if (!override) return st;
    if (st) core_log(CMCR_LOG_WARN, "%s; using activation %s as asked", cmcr_last_error(), act_name(want));
    else if (have && (a->vis != want || a->txt != want))
        core_log(CMCR_LOG_WARN, "%s: hidden_act is %s (vision) and %s (text); using %s as asked", cfg,
                 act_name(a->vis), act_name(a->txt), act_name(want));
    *a = (acts){want, want};
    return CMCR_OK;
}

cmcr_status clip_config_activations(const char *json, size_t len, const char *name, const char **vision,
                                    const char **text)
{
    acts a = {TF_QUICKGELU, TF_QUICKGELU};
    if (!json || !name || !vision || !text) return core_fail(CMCR_EINVAL, "clip_config_activations: NULL argument");
    char shown[1024];
    cmcr_status st = parse_config(json, len, cmcr_printable(shown, sizeof shown, name), &a);
    *vision = st ? NULL : act_name(a.vis);
    *text = st ? NULL : act_name(a.txt);
    return st;
}

static void set_acts(clip_model *m, const acts *a)
{
    m->vis.shape.act = a->vis;
    m->txt.shape.act = a->txt;
    m->info.activation = act_name(a->vis);
    m->info.text_activation = act_name(a->txt);
}

/* ------------------------------------------------------------------ loading */

/* The file to read for path: path itself, or in a folder its model.safetensors, else its
 * pytorch_model.bin (malloc'd). */
static cmcr_status resolve(const char *path, char **file)
{
    struct stat sb;
    char shown[1024];
    if (stat(path, &sb) != 0)
        return core_fail(CMCR_EIO, "%s: %s", cmcr_printable(shown, sizeof shown, path), strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        *file = core_strdup(path);
        return *file ? CMCR_OK : core_fail(CMCR_ENOMEM, "out of memory");
    }
    static const char *const names[] = {"model.safetensors", "pytorch_model.bin"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(path) + strlen(names[i]) + 2;
        char *f = core_xmalloc(n);
        if (!f) return core_fail(CMCR_ENOMEM, "out of memory");
        snprintf(f, n, "%s/%s", path, names[i]);
        if (stat(f, &sb) == 0) {
            *file = f;
            return CMCR_OK;
        }
        free(f);
    }
    return core_fail(CMCR_EIO, "%s: a folder without model.safetensors or pytorch_model.bin",
                     cmcr_printable(shown, sizeof shown, path));
}

/* TorchScript archives (torch.jit.save) hold constants.pkl and code/ beside data.pkl; their
 * data.pkl builds TorchScript objects, which the state-dict reader refuses. */
static int is_torchscript(const char *file)
{
    int err;
    zip_t *za = zip_open(file, ZIP_RDONLY, &err);
    if (!za) return 0;
    int yes = zip_name_locate(za, "constants.pkl", ZIP_FL_NODIR) >= 0;
    zip_discard(za);
    return yes;
}

static cmcr_status read_checkpoint(const char *file, const char *name, cmcr_tensors **ts)
{
    cmcr_format fmt;
    cmcr_status st = cmcr_file_format(file, &fmt);
    if (!st && fmt == CMCR_FORMAT_PT && is_torchscript(file))
        return core_fail(CMCR_EUNSUPPORTED, "%s: a TorchScript archive (torch.jit.save), not a state dict; convert it "
                         "once with: python3 -c \"import torch; torch.save(torch.jit.load('%s', map_location='cpu')"
                         ".state_dict(), 'clip_state_dict.pt')\"", name, name);
    if (!st && fmt == CMCR_FORMAT_NPY)
        return core_fail(CMCR_EFORMAT, "%s: a .npy array, not a CLIP checkpoint", name);
    return st ? st : tensors_load_mapped(file, fmt, ts);
}

/* The Linear weights in bfloat16, in one block. */
static cmcr_status make_bf16(clip_model *m, tf_block *vb, tf_block *tb)
{
    tf_linear *fixed[] = {&m->patch, &m->vis.proj, &m->txt.proj};
    tf_block *blocks[] = {vb, tb};
    int64_t nblocks[] = {m->vis.layers, m->txt.layers};
    return bind_bf16_blocks(fixed, 3, blocks, nblocks, 2, m->name, &m->params16);
}

static cmcr_status build(clip_model *m, const cmcr_tensors *ts, int hf)
{
    binder b = {.ts = ts, .file = m->name, .what = layout_what(hf), .layout = hf};
    cmcr_status st = read_sizes(&b, &m->info);
    if (st) return st;
    set_towers(m);
    /* pass 1: check every tensor and count; nothing is allocated before it passes */
    st = bind_vision(&b, m, NULL);
    if (!st) st = bind_text(&b, m, NULL);
    if (st) return st;
    uint64_t floats = b.used, blocks = (uint64_t)m->vis.layers + (uint64_t)m->txt.layers;
    if (floats > SIZE_MAX / sizeof(float) || !(m->params = core_xmalloc((size_t)floats * sizeof(float))))
        return core_fail(CMCR_ENOMEM, "%s: out of memory for %llu weights", m->name, (unsigned long long)floats);
    tf_block *bl = calloc(blocks, sizeof *bl);
    if (!bl) return core_fail(CMCR_ENOMEM, "%s: out of memory", m->name);
    m->vis.blocks = bl;
    m->txt.blocks = bl + m->vis.layers;
    b.base = m->params;
    b.used = 0;
    st = bind_vision(&b, m, m->vis.blocks);
    return st ? st : bind_text(&b, m, m->txt.blocks);
}

/* The model of ts in float32 (no bfloat16 weights yet). */
static cmcr_status from_tensors(const cmcr_tensors *ts, const char *name, clip_model **out)
{
    *out = NULL;
    clip_model *m = calloc(1, sizeof *m);
    if (!m) return core_fail(CMCR_ENOMEM, "out of memory");
    cmcr_printable(m->name, sizeof m->name, name);
    int hf = cmcr_tensors_find(ts, "vision_model.embeddings.patch_embedding.weight") != NULL;
    m->info.layout = hf ? "hf" : "openai";
    m->info.activation = m->info.text_activation = "quick_gelu";
    cmcr_status st = CMCR_OK;
    if (!hf && !cmcr_tensors_find(ts, "visual.conv1.weight"))
        st = core_fail(CMCR_EFORMAT, "%s: not a CLIP checkpoint: neither 'vision_model.embeddings.patch_embedding"
                       ".weight' (Hugging Face) nor 'visual.conv1.weight' (OpenAI) is in it", m->name);
    if (!st) st = build(m, ts, hf);
    if (st) {
        clip_model_free(m);
        return st;
    }
    *out = m;
    return CMCR_OK;
}

/* The bfloat16 weights, where bf16 products can run; on failure frees *m. */
static cmcr_status add_bf16(clip_model **m)
{
    cmcr_status st = mm_bf16_check() == CMCR_OK ? make_bf16(*m, (*m)->vis.blocks, (*m)->txt.blocks) : CMCR_OK;
    if (st) {
        clip_model_free(*m);
        *m = NULL;
    }
    return st;
}

cmcr_status clip_model_from_tensors(const cmcr_tensors *ts, const char *name, clip_model **out)
{
    if (!ts || !name || !out) return core_fail(CMCR_EINVAL, "clip_model_from_tensors: NULL argument");
    cmcr_status st = from_tensors(ts, name, out);
    return st ? st : add_bf16(out);
}

/* The checkpoint is freed before the bfloat16 weights are made. A mapped .safetensors file
 * costs no copy (its pages are released once converted): about one copy of the weights, the
 * float32 model, is held at once; a .pt file (or CMCR_NO_MMAP=1) costs two, the file's tensors
 * and the float32 model. */
cmcr_status clip_model_load_with(const char *path, const clip_load_opts *o, clip_model **out)
{
    if (!path || !out) return core_fail(CMCR_EINVAL, "clip_model_load: NULL argument");
    *out = NULL;
    char *file = NULL, name[1024];
    cmcr_tensors *ts = NULL;
    acts act;
    cmcr_status st = resolve(path, &file);
    if (st) return st;
    cmcr_printable(name, sizeof name, file);
    st = choose_acts(file, o ? o->activation : NULL, &act); /* before the (large) read */
    if (!st) st = read_checkpoint(file, name, &ts);
    if (!st) st = from_tensors(ts, file, out);
    if (!st) set_acts(*out, &act);
    cmcr_tensors_free(ts);
    free(file);
    return st || (o && o->float32_only) ? st : add_bf16(out);
}

cmcr_status clip_model_load(const char *path, clip_model **out) { return clip_model_load_with(path, NULL, out); }

void clip_model_free(clip_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->params16);
    free(m->vis.blocks); /* the text tower's blocks share the allocation */
    free(m);
}

const clip_info *clip_model_info(const clip_model *m) { return m ? &m->info : NULL; }

/* ------------------------------------------------------------------ forward passes */

/* Scratch of one chunk of `seqs` sequences of `tokens` rows of a tower. */
typedef struct run {
    tf_prec prec;
    tf_scratch s;
    float *x;     /* seqs x tokens x width: the residual stream */
    float *extra; /* the vision tower's patch matrix, or the projected patch tokens */
    void *block;
} run;

static void run_free(run *r)
{
    if (r->prec.ctx) mm_ctx_free(r->prec.ctx);
    free(r->block);
}

/* Sizes of the scratch for chunks of seqs sequences; extra floats on top (vision). */
static cmcr_status run_new(const clip_model *m, const tower *t, int bf16, int64_t seqs, uint64_t extra, run *r)
{
    memset(r, 0, sizeof *r);
    uint64_t sz[4], a16;
    int64_t widest = t->shape.mlp > m->patch.in ? t->shape.mlp : m->patch.in;
    if (!tf_scratch_sizes(&t->shape, seqs, t->tokens, sz) ||
        !core_mul_u64((uint64_t)(seqs * t->tokens), (uint64_t)widest, &a16))
        return core_fail(CMCR_ENOMEM, "%s: scratch size overflows", m->name);
    uint64_t x = sz[0]; /* the residual stream: as many floats as h */
    uint64_t total = x + sz[0] + sz[1] + sz[2] + sz[3] + extra + (bf16 ? a16 / 2 + 1 : 0);
    if (total > SIZE_MAX / sizeof(float) || !(r->block = core_xmalloc((size_t)total * sizeof(float))))
        return core_fail(CMCR_ENOMEM, "%s: out of memory for the forward pass (%llu floats)", m->name,
                         (unsigned long long)total);
    float *p = r->block;
    r->x = p, p += x;
    r->s.h = p, p += sz[0];
    r->s.qkv = p, p += sz[1];
    r->s.mlp = p, p += sz[2];
    r->s.att = p, p += sz[3];
    r->extra = p, p += extra;
    if (!bf16) return CMCR_OK;
    r->prec.bf16 = 1;
    r->prec.a16 = (uint16_t *)p;
    cmcr_status st = mm_ctx_new(&r->prec.ctx);
    if (st) return core_fail(CMCR_EUNSUPPORTED, "%s: bf16: %s", m->name, cmcr_last_error());
    return CMCR_OK;
}

/* bf16 products need oneDNN's (mm_bf16_check) and the bfloat16 weights made at load. */
static cmcr_status check_bf16(const clip_model *m, int bf16) { return bind_check_bf16(m->name, m->params16, bf16); }

static cmcr_status run_blocks(const tower *t, run *r, int64_t seqs, int64_t tokens)
{
    for (int64_t l = 0; l < t->layers; l++) {
        cmcr_status st = tf_block_forward(&r->prec, r->x, &t->blocks[l], &t->shape, seqs, tokens, &r->s);
        if (st) return st;
    }
    return CMCR_OK;
}

/* Rows rows (stride width apart, from src) through the final LayerNorm and the projection. */
static cmcr_status project(const tower *t, run *r, const float *src, int64_t rows, float *out)
{
    tf_layernorm(r->s.h, src, &t->ln_post, rows, t->shape.width);
    return tf_linear_forward(&r->prec, out, r->s.h, &t->proj, rows);
}

/* pixels (seqs images) -> the patch matrix: one row per patch, its 3 x P x P values in the
 * order of the convolution's weight (channel, row, column). */
static void patch_matrix(const clip_model *m, const float *pixels, int64_t seqs, float *pm)
{
    const int64_t P = m->info.patch_size, g = m->info.grid, S = m->info.image_size, cols = 3 * P * P;
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < seqs * g * g; r++) {
        int64_t img = r / (g * g), gy = r % (g * g) / g, gx = r % g;
        float *row = pm + r * cols;
        for (int64_t c = 0; c < 3; c++)
            for (int64_t ky = 0; ky < P; ky++)
                memcpy(row + (c * P + ky) * P, pixels + ((img * 3 + c) * S + gy * P + ky) * S + gx * P,
                       (size_t)P * sizeof(float));
    }
}

static cmcr_status image_chunk(const clip_model *m, run *r, const float *pixels, int64_t seqs, float *emb,
                               float *patches)
{
    const tower *t = &m->vis;
    const int64_t w = t->shape.width, T = t->tokens, g2 = T - 1, E = m->info.embed_dim;
    patch_matrix(m, pixels, seqs, r->extra);
    cmcr_status st = tf_linear_forward(&r->prec, r->s.mlp, r->extra, &m->patch, seqs * g2);
    if (st) return st;
    #pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < seqs * T; row++) {
        int64_t i = row / T, k = row % T;
        const float *src = k ? r->s.mlp + (i * g2 + k - 1) * w : m->class_emb;
        for (int64_t j = 0; j < w; j++) r->x[row * w + j] = src[j] + t->pos[k * w + j];
    }
    tf_layernorm(r->x, r->x, &t->ln_pre, seqs * T, w);
    st = run_blocks(t, r, seqs, T);
    if (st) return st;
    if (!patches) {
        for (int64_t i = 0; i < seqs; i++) memcpy(r->s.qkv + i * w, r->x + i * T * w, (size_t)w * sizeof(float));
        return project(t, r, r->s.qkv, seqs, emb);
    }
    st = project(t, r, r->x, seqs * T, r->extra);
    for (int64_t i = 0; !st && i < seqs; i++) {
        memcpy(emb + i * E, r->extra + i * T * E, (size_t)E * sizeof(float));
        memcpy(patches + i * g2 * E, r->extra + (i * T + 1) * E, (size_t)(g2 * E) * sizeof(float));
    }
    return st;
}

static int64_t chunk_seqs(int64_t n, int64_t tokens)
{
    int64_t c = CLIP_CHUNK_ROWS / tokens;
    c = c < 1 ? 1 : c;
    return n < c ? n : c;
}

cmcr_status clip_encode_image(const clip_model *m, const float *pixels, int64_t n, int bf16, float *emb,
                              float *patches)
{
    if (!m || (n > 0 && (!pixels || !emb)) || n < 0)
        return core_fail(CMCR_EINVAL, "clip_encode_image: NULL argument or negative count");
    cmcr_status st = check_bf16(m, bf16);
    if (st || n == 0) return st;
    const int64_t T = m->vis.tokens, S = m->info.image_size, E = m->info.embed_dim;
    int64_t seqs = chunk_seqs(n, T);
    uint64_t pm = (uint64_t)(seqs * (T - 1) * m->patch.in), pe = (uint64_t)(seqs * T * E);
    run r;
    st = run_new(m, &m->vis, bf16, seqs, pm > pe ? pm : pe, &r);
    for (int64_t i = 0; !st && i < n; i += seqs) {
        int64_t k = n - i < seqs ? n - i : seqs;
        st = image_chunk(m, &r, pixels + i * 3 * S * S, k, emb + i * E, patches ? patches + i * (T - 1) * E : NULL);
    }
    run_free(&r);
    return st;
}

/* The first position of the row's largest id (its EOT), as torch.argmax. */
static int64_t eot_of(const int32_t *row, int64_t ctx)
{
    int64_t best = 0;
    for (int64_t t = 1; t < ctx; t++)
        if (row[t] > row[best]) best = t;
    return best;
}

static cmcr_status check_ids(const clip_model *m, const int32_t *ids, int64_t n)
{
    const int64_t ctx = m->info.context;
    for (int64_t i = 0; i < n * ctx; i++)
        if (ids[i] < 0 || ids[i] >= m->info.vocab)
            return core_fail(CMCR_EINVAL, "token ids: row %lld, position %lld: id %d is outside 0..%d (the vocabulary of "
                             "%s)", (long long)(i / ctx), (long long)(i % ctx), ids[i], m->info.vocab - 1, m->name);
    return CMCR_OK;
}

/* Runs the chunk only up to its last EOT: with causal attention the rows after a sequence's
 * EOT never reach its EOT row, the one pooled. */
static cmcr_status text_chunk(const clip_model *m, run *r, const int32_t *ids, int64_t seqs, float *emb)
{
    const tower *t = &m->txt;
    const int64_t w = t->shape.width, ctx = t->tokens;
    int64_t T = 1;
    for (int64_t i = 0; i < seqs; i++) {
        int64_t e = eot_of(ids + i * ctx, ctx) + 1;
        T = e > T ? e : T;
    }
    #pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < seqs * T; row++) {
        int64_t i = row / T, k = row % T;
        const float *te = m->tok + (int64_t)ids[i * ctx + k] * w;
        for (int64_t j = 0; j < w; j++) r->x[row * w + j] = te[j] + t->pos[k * w + j];
    }
    cmcr_status st = run_blocks(t, r, seqs, T);
    if (st) return st;
    for (int64_t i = 0; i < seqs; i++)
        memcpy(r->s.qkv + i * w, r->x + (i * T + eot_of(ids + i * ctx, ctx)) * w, (size_t)w * sizeof(float));
    return project(t, r, r->s.qkv, seqs, emb);
}

cmcr_status clip_encode_text(const clip_model *m, const int32_t *ids, int64_t n, int bf16, float *emb)
{
    if (!m || (n > 0 && (!ids || !emb)) || n < 0)
        return core_fail(CMCR_EINVAL, "clip_encode_text: NULL argument or negative count");
    cmcr_status st = check_bf16(m, bf16);
    if (!st) st = check_ids(m, ids, n);
    if (st || n == 0) return st;
    const int64_t ctx = m->txt.tokens, E = m->info.embed_dim;
    int64_t seqs = chunk_seqs(n, ctx);
    run r;
    st = run_new(m, &m->txt, bf16, seqs, 0, &r);
    for (int64_t i = 0; !st && i < n; i += seqs) {
        int64_t k = n - i < seqs ? n - i : seqs;
        st = text_chunk(m, &r, ids + i * ctx, k, emb + i * E);
    }
    run_free(&r);
    return st;
}
