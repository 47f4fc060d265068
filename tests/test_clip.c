/* test_clip.c - the CLIP towers (src/encoders/clip.c) against the PyTorch reference
 * (scripts/clip_reference.py --size small, fixture clip_small): every layout and weight
 * dtype within 1e-4, bf16 products within a loose bound, QuickGELU and exact GELU towers
 * (config.json, the override), and the refusals. */
#include "testutil.h"
#define CLIP_FIXTURE "clip_small"
#include "clip_testutil.h"
#include "nn/transformer.h"
#include "runtime/matmul.h"
#include "runtime/vmath.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sizes scripts/clip_reference.py gives its "small" and "small16" models. */
static void check_info(const clip_info *in, int small16)
{
    assert_int_equal(in->image_size, 224);
    assert_int_equal(in->patch_size, small16 ? 16 : 32);
    assert_int_equal(in->grid, small16 ? 14 : 7);
    assert_int_equal(in->vision_width, small16 ? 64 : 192);
    assert_int_equal(in->vision_layers, small16 ? 1 : 2);
    assert_int_equal(in->vision_heads, small16 ? 1 : 3);
    assert_int_equal(in->text_width, small16 ? 64 : 128);
    assert_int_equal(in->text_layers, small16 ? 1 : 3);
    assert_int_equal(in->text_heads, small16 ? 1 : 2);
    assert_int_equal(in->context, 77);
    assert_int_equal(in->vocab, 49408);
    assert_int_equal(in->embed_dim, small16 ? 32 : 96);
}

static void test_layouts_f32(void **state)
{
    (void)state;
    static const struct { const char *path, *layout, *model; } cases[] = {
        {"small/hf", "hf", "small"},                       /* folder: model.safetensors */
        {"small/hf/pytorch_model.bin", "hf", "small"},
        {"small/hf_bin", "hf", "small"},                   /* folder with only the .bin */
        {"small/openai.pt", "openai", "small"},
        {"small16/openai.pt", "openai", "small16"},
        {"small16/hf/model.safetensors", "hf", "small16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        clip_model *m = load_ok(cases[i].path, cases[i].layout);
        check_info(clip_model_info(m), strcmp(cases[i].model, "small16") == 0);
        refs r = load_refs(cases[i].model, "ref");
        expect_close(cases[i].path, run_towers(m, &r, 0));
        free_refs(&r);
        clip_model_free(m);
    }
}

/* fp16 and bf16 checkpoints: converted at load, equal to PyTorch on the same rounded weights. */
static void test_half_weights(void **state)
{
    (void)state;
    clip_model *m = load_ok("small/hf_fp16", "hf");
    refs r = load_refs("small", "ref_fp16");
    expect_close("fp16 safetensors", run_towers(m, &r, 0));
    free_refs(&r);
    clip_model_free(m);
    m = load_ok("small/openai_bf16.pt", "openai");
    r = load_refs("small", "ref_bf16");
    expect_close("bf16 .pt", run_towers(m, &r, 0));
    free_refs(&r);
    clip_model_free(m);
}

static void test_bf16_products(void **state)
{
    (void)state;
    clip_model *m = load_ok("small/hf", "hf");
    refs r = load_refs("small", "ref");
    if (mm_bf16_check() != CMCR_OK) {
        float emb[96];
        assert_int_equal(clip_encode_image(m, r.pixels, 1, 1, emb, NULL), CMCR_EUNSUPPORTED);
        assert_non_null(strstr(cmcr_last_error(), "bfloat16 products")); /* mm_bf16_check's reason */
        assert_int_equal(clip_encode_text(m, r.ids, 1, 1, emb), CMCR_EUNSUPPORTED);
        free_refs(&r);
        clip_model_free(m);
        tu_skip("bf16 products unavailable here (%s); checked that they are refused", cmcr_last_error());
    }
    errs e = run_towers(m, &r, 1);
    print_errs("bf16 products", e);
    /* Rounding to 8 bits per product: a few percent of the outputs' scale (about 1), far
     * below what would be a wrong weight or layer (errors of the order of 1). */
    assert_true(e.img < 0.1 && e.patch < 0.1 && e.txt < 0.1);
    assert_true(e.img_n < 0.03 && e.patch_n < 0.03 && e.txt_n < 0.03);
    free_refs(&r);
    clip_model_free(m);
}

/* Loaded float32 only: the same float32 embeddings, and bf16 products refused, naming the
 * file and why (no bfloat16 copy of the weights was kept). */
static void test_float32_only(void **state)
{
    (void)state;
    char *path = fx("small/hf");
    clip_model *m = NULL;
    refs r = load_refs("small", "ref");
    assert_int_equal(clip_model_load_with(path, &(clip_load_opts){NULL, 1}, &m), CMCR_OK);
    free(path);
    expect_close("float32 only", run_towers(m, &r, 0));
    float emb[96];
    assert_int_equal(clip_encode_image(m, r.pixels, 1, 1, emb, NULL), CMCR_EUNSUPPORTED);
    printf("MSG\t%s\n", cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), "model.safetensors"));
    assert_true(strstr(cmcr_last_error(), "without bfloat16 weights") || strstr(cmcr_last_error(), "bfloat16 products"));
    free_refs(&r);
    clip_model_free(m);
}

/* More sequences than one chunk (the towers cut batches into chunks of about 1024 token
 * rows): small16's 197-token images run 5 per chunk, 77-token texts 13 per chunk, and each
 * text chunk only up to its own last EOT. */
static void test_chunks(void **state)
{
    (void)state;
    clip_model *m = load_ok("small16/openai.pt", "openai");
    refs r = load_refs("small16", "ref");
    const int64_t n = 45, E = 32, S = 224, ctx = 77;
    float *pix = malloc(sizeof(float) * (size_t)(n * 3 * S * S)), *img = malloc(sizeof(float) * (size_t)(n * E));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(2 * n * ctx));
    float *txt = malloc(sizeof(float) * (size_t)(2 * n * E));
    assert_true(pix && img && ids && txt);
    for (int64_t i = 0; i < n; i++) memcpy(pix + i * 3 * S * S, r.pixels + i % r.n_img * 3 * S * S, sizeof(float) * 3 * S * S);
    for (int64_t i = 0; i < 2 * n; i++) memcpy(ids + i * ctx, r.ids + i % r.n_txt * ctx, sizeof(int32_t) * ctx);
    if (clip_encode_image(m, pix, n, 0, img, NULL)) fail_msg("%s", cmcr_last_error());
    if (clip_encode_text(m, ids, 2 * n, 0, txt)) fail_msg("%s", cmcr_last_error());
    double dn, d;
    for (int64_t i = 0; i < n; i++) {
        d = max_diff(img + i * E, r.img + i % r.n_img * E, E, E, &dn);
        assert_true(d < TOL);
    }
    for (int64_t i = 0; i < 2 * n; i++) {
        d = max_diff(txt + i * E, r.txt + i % r.n_txt * E, E, E, &dn);
        assert_true(d < TOL);
    }
    free(pix);
    free(img);
    free(ids);
    free(txt);
    free_refs(&r);
    clip_model_free(m);
}

typedef struct job {
    const clip_model *m;
    const refs *r;
    float *out;
    cmcr_status st;
} job;

static void *encode_job(void *arg)
{
    job *j = arg;
    for (int k = 0; k < 3 && !j->st; k++) j->st = clip_encode_text(j->m, j->r->ids, j->r->n_txt, 0, j->out);
    return NULL;
}

/* Concurrent calls on one model give the single-threaded results. */
static void test_concurrent(void **state)
{
    (void)state;
    clip_model *m = load_ok("small/openai.pt", "openai");
    refs r = load_refs("small", "ref");
    job jobs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (job){m, &r, malloc(sizeof(float) * (size_t)(r.n_txt * 96)), CMCR_OK};
        assert_non_null(jobs[i].out);
        assert_int_equal(pthread_create(&th[i], NULL, encode_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].st, CMCR_OK);
        double dn, d = max_diff(jobs[i].out, r.txt, r.n_txt * 96, 96, &dn);
        assert_true(d < TOL);
        free(jobs[i].out);
    }
    free_refs(&r);
    clip_model_free(m);
}

/* ------------------------------------------------------------------ activations */

static void expect_fail_with(const char *label, const char *path, const clip_load_opts *o, cmcr_status want,
                             const char *needle, const char *needle2);
static void expect_fail(const char *label, const char *path, cmcr_status want, const char *needle, const char *needle2);

/* tf_gelu against the exact GELU in double (erf from libm), and tf_quickgelu against its
 * formula, over [-12, 12]: 200003 values, so the parallel chunks and an odd tail both run. */
static void test_activation_layers(void **state)
{
    (void)state;
    const int64_t n = 200003;
    float *x = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    float *q = malloc(sizeof(float) * (size_t)n);
    assert_true(x && g && q);
    for (int64_t i = 0; i < n; i++) g[i] = q[i] = x[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);
    tf_gelu(g, n);
    tf_quickgelu(q, n);
    double worst_g = 0, worst_q = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], eg = 0.5 * v * (1 + erf(v / sqrt(2.0))), eq = v / (1 + exp(-1.702 * v));
        double dg = fabs(g[i] - eg) / (1 + fabs(v)), dq = fabs(q[i] - eq) / (1 + fabs(v));
        worst_g = dg > worst_g || isnan(dg) ? dg : worst_g;
        worst_q = dq > worst_q || isnan(dq) ? dq : worst_q;
    }
    printf("GELU: max |error| / (1 + |x|) %.2e; QuickGELU %.2e\n", worst_g, worst_q);
    assert_true(worst_g < 2e-7);
    assert_true(worst_q < 2e-7);
    assert_true(g[n / 2] == 0.0f); /* x = 0 */
    /* the two differ by up to about 0.02: a test comparing them would see it */
    float a = -2.0f, b = -2.0f; /* -0.0455 and -0.0644 */
    tf_gelu(&a, 1);
    tf_quickgelu(&b, 1);
    assert_true(fabsf(a - b) > 0.01f);
    free(x);
    free(g);
    free(q);
}

static char warned[2048];

static void keep_warning(cmcr_log_level level, const char *message, void *user)
{
    (void)user;
    if (level == CMCR_LOG_WARN) snprintf(warned, sizeof warned, "%s", message);
}

static clip_model *load_act(const char *rel, const char *override, const char *want_act)
{
    char *p = fx(rel);
    clip_model *m = NULL;
    clip_load_opts o = {override, 0};
    if (clip_model_load_with(p, &o, &m)) fail_msg("%s", cmcr_last_error());
    assert_string_equal(clip_model_info(m)->activation, want_act);
    assert_string_equal(clip_model_info(m)->text_activation, want_act);
    free(p);
    return m;
}

/* A Hugging Face folder whose config.json says "gelu": within 1e-4 of PyTorch's nn.GELU()
 * model; the same weights as QuickGELU (the old behaviour) are far from it and equal to the
 * QuickGELU reference; the override turns an OpenAI state dict into the GELU model. */
static void test_gelu_model(void **state)
{
    (void)state;
    refs rg = load_refs("small", "ref_gelu"), rq = load_refs("small", "ref");
    clip_model *m = load_ok("small/hf_gelu", "hf");
    assert_string_equal(clip_model_info(m)->activation, "gelu");
    assert_string_equal(clip_model_info(m)->text_activation, "gelu");
    expect_close("GELU folder", run_towers(m, &rg, 0));
    clip_model_free(m);
    m = load_act("small/hf_gelu/model.safetensors", NULL, "gelu"); /* a file with config.json beside */
    expect_close("GELU file", run_towers(m, &rg, 0));
    clip_model_free(m);

    cmcr_set_log(keep_warning, NULL);
    warned[0] = 0;
    m = load_act("small/hf_gelu", "quick_gelu", "quick_gelu");
    cmcr_set_log(NULL, NULL);
    printf("WARN\t%s\n", warned);
    assert_non_null(strstr(warned, "config.json: hidden_act is gelu (vision) and gelu (text); using quick_gelu"));
    errs e = run_towers(m, &rg, 0);
    print_errs("GELU weights as QuickGELU, against the GELU reference", e);
    assert_true(e.img > 100 * TOL && e.patch > 100 * TOL && e.txt > 100 * TOL);
    expect_close("GELU weights as QuickGELU, against the QuickGELU reference", run_towers(m, &rq, 0));
    clip_model_free(m);

    m = load_ok("small/openai.pt", "openai"); /* no config.json beside: OpenAI's QuickGELU */
    assert_string_equal(clip_model_info(m)->activation, "quick_gelu");
    clip_model_free(m);
    m = load_ok("small/hf", "hf"); /* config.json: "quick_gelu" */
    assert_string_equal(clip_model_info(m)->activation, "quick_gelu");
    clip_model_free(m);
    cmcr_set_log(keep_warning, NULL);
    warned[0] = 0;
    m = load_act("small/openai.pt", "gelu", "gelu");
    cmcr_set_log(NULL, NULL);
    assert_string_equal(warned, ""); /* no config.json beside it: nothing contradicts the override */
    expect_close("OpenAI layout, gelu override", run_towers(m, &rg, 0));
    clip_model_free(m);
    free_refs(&rg);
    free_refs(&rq);
}

/* A folder tu_tmpdir()/name holding small16's weights (a link) and config text. */
static char *config_folder(const char *name, const char *config)
{
    char *dir = tu_path(name), *w = fx("small16/hf/model.safetensors");
    assert_int_equal(tu_system("mkdir -p '%s' && ln -sf '%s' '%s/model.safetensors'", dir, w, dir), 0);
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    tu_write_file(cfg, config, strlen(config));
    free(w);
    return dir;
}

/* config.json refusals (one line naming it), missing keys as HF's defaults, and what the
 * override does with a config it cannot use. */
static void test_refuse_config(void **state)
{
    (void)state;
    char *d = config_folder("act_new", "{\"text_config\": {\"hidden_act\": \"gelu_new\"}}");
    expect_fail("hidden_act gelu_new", d, CMCR_EUNSUPPORTED, "config.json: 'text_config.hidden_act' is \"gelu_new\"",
                NULL);
    free(d);
    d = config_folder("act_relu", "{\"vision_config\": {\"hidden_act\": \"relu\"}, \"text_config\": {}}");
    expect_fail("hidden_act relu", d, CMCR_EUNSUPPORTED, "config.json: 'vision_config.hidden_act' is \"relu\"", NULL);
    free(d);
    /* the legacy *_config_dict wins over *_config, as in HF's CLIPConfig */
    d = config_folder("act_dict", "{\"text_config\": {\"hidden_act\": \"gelu\"}, "
                                  "\"text_config_dict\": {\"hidden_act\": \"silu\"}}");
    expect_fail("hidden_act in text_config_dict", d, CMCR_EUNSUPPORTED, "'text_config_dict.hidden_act' is \"silu\"",
                NULL);
    free(d);
    d = config_folder("act_num", "{\"vision_config\": {\"hidden_act\": 3}}");
    expect_fail("hidden_act a number", d, CMCR_EFORMAT, "config.json: 'vision_config.hidden_act' is not a string", NULL);
    free(d);
    d = config_folder("act_sec", "{\"vision_config\": \"gelu\"}");
    expect_fail("section not an object", d, CMCR_EFORMAT, "config.json: 'vision_config' is not a JSON object", NULL);
    free(d);
    d = config_folder("act_broken", "{\"text_config\": {\"hidden_act\": \"gelu\"");
    expect_fail("config.json not JSON", d, CMCR_EFORMAT, "config.json: not valid JSON", NULL);
    char file[4200], cfg[4200];
    snprintf(file, sizeof file, "%s/model.safetensors", d); /* the weights file: the same config beside it */
    snprintf(cfg, sizeof cfg, "%s/config.json: not valid JSON", d);
    clip_model *m = (clip_model *)1;
    assert_int_equal(clip_model_load(file, &m), CMCR_EFORMAT);
    assert_null(m);
    assert_non_null(strstr(cmcr_last_error(), cfg));
    /* an override still loads, and says why it ignored the config */
    cmcr_set_log(keep_warning, NULL);
    warned[0] = 0;
    assert_int_equal(clip_model_load_with(d, &(clip_load_opts){"gelu", 0}, &m), CMCR_OK);
    cmcr_set_log(NULL, NULL);
    printf("WARN\t%s\n", warned);
    assert_non_null(strstr(warned, "not valid JSON"));
    assert_non_null(strstr(warned, "using activation gelu as asked"));
    assert_string_equal(clip_model_info(m)->activation, "gelu");
    clip_model_free(m);
    expect_fail_with("unknown override", d, &(clip_load_opts){"swish", 0}, CMCR_EINVAL,
                     "activation 'swish' is neither quick_gelu nor gelu", NULL);
    free(d);
    /* no hidden_act, no sections, null sections: HF's default, quick_gelu */
    static const char *const defaults[] = {"{}", "{\"text_config\": null, \"vision_config\": {\"hidden_size\": 64}}",
                                           "{\"model_type\": \"clip\", \"text_config_dict\": null}"};
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) {
        d = config_folder("act_default", defaults[i]);
        assert_int_equal(clip_model_load(d, &m), CMCR_OK);
        assert_string_equal(clip_model_info(m)->activation, "quick_gelu");
        assert_string_equal(clip_model_info(m)->text_activation, "quick_gelu");
        clip_model_free(m);
        free(d);
    }
    /* a repeated key: the last one counts, as in Python's json */
    d = config_folder("act_repeat", "{\"text_config\": {\"hidden_act\": \"quick_gelu\", \"hidden_act\": \"gelu\"}, "
                                    "\"vision_config\": {\"hidden_act\": \"relu\"}, \"vision_config\": {}}");
    assert_int_equal(clip_model_load(d, &m), CMCR_OK);
    assert_string_equal(clip_model_info(m)->activation, "quick_gelu");
    assert_string_equal(clip_model_info(m)->text_activation, "gelu");
    clip_model_free(m);
    free(d);
    /* the towers may differ */
    d = config_folder("act_mixed", "{\"text_config\": {\"hidden_act\": \"gelu\"}}");
    assert_int_equal(clip_model_load(d, &m), CMCR_OK);
    assert_string_equal(clip_model_info(m)->activation, "quick_gelu");
    assert_string_equal(clip_model_info(m)->text_activation, "gelu");
    clip_model_free(m);
    free(d);
}

/* ------------------------------------------------------------------ refusals */

static void expect_fail_with(const char *label, const char *path, const clip_load_opts *o, cmcr_status want,
                             const char *needle, const char *needle2)
{
    clip_model *m = (clip_model *)1;
    cmcr_status got = clip_model_load_with(path, o, &m);
    const char *msg = cmcr_last_error();
    printf("MSG\t%s\t%s\t%s\n", label, cmcr_status_name(got), msg);
    assert_null(m);
    assert_int_equal(got, want);
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, needle));
    if (needle2) assert_non_null(strstr(msg, needle2));
    assert_null(strchr(msg, '\n'));
}

static void expect_fail(const char *label, const char *path, cmcr_status want, const char *needle, const char *needle2)
{
    expect_fail_with(label, path, NULL, want, needle, needle2);
}

/* small16's OpenAI checkpoint rewritten as safetensors to out, without tensor drop, with
 * tensor grow's first dimension one larger, with a NaN in tensor poison. */
static char *rewrite(const char *name, const char *drop, const char *grow, const char *poison)
{
    char *src = fx("small16/openai.pt"), *out = tu_path(name);
    cmcr_tensors *ts = NULL, *o = cmcr_tensors_new();
    assert_int_equal(cmcr_tensors_load(src, CMCR_FORMAT_PT, &ts), CMCR_OK);
    for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
        const cmcr_tensor *t = cmcr_tensors_at(ts, i);
        int64_t shape[CMCR_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        void *data = t->data;
        if (drop && strcmp(t->name, drop) == 0) continue;
        if (grow && strcmp(t->name, grow) == 0) {
            shape[0]++;
            data = calloc(1, t->nbytes / (size_t)t->shape[0] * (size_t)shape[0]);
            assert_non_null(data);
        }
        if (poison && strcmp(t->name, poison) == 0) {
            assert_int_equal(t->dtype, CMCR_F32);
            ((float *)t->data)[5] = NAN;
        }
        assert_int_equal(cmcr_tensors_add(o, t->name, t->dtype, t->ndim, shape, data), CMCR_OK);
        if (data != t->data) free(data);
    }
    assert_int_equal(cmcr_tensors_save(o, out, CMCR_FORMAT_SAFETENSORS), CMCR_OK);
    cmcr_tensors_free(ts);
    cmcr_tensors_free(o);
    free(src);
    return out;
}

static void test_refuse_damaged(void **state)
{
    (void)state;
    char *p = rewrite("missing.safetensors", "transformer.resblocks.0.mlp.c_fc.bias", NULL, NULL);
    expect_fail("missing tensor", p, CMCR_EFORMAT, "missing tensor 'transformer.resblocks.0.mlp.c_fc.bias'", NULL);
    free(p);
    p = rewrite("shape.safetensors", NULL, "visual.transformer.resblocks.0.attn.in_proj_weight", NULL);
    expect_fail("wrong shape", p, CMCR_ESHAPE, "tensor 'visual.transformer.resblocks.0.attn.in_proj_weight' has shape "
                "[193, 64], expected [192, 64]", NULL);
    free(p);
    p = rewrite("nan.safetensors", NULL, NULL, "visual.proj");
    expect_fail("NaN weight", p, CMCR_EVALUE, "tensor 'visual.proj'", "NaN");
    free(p);
    p = rewrite("nan_qkv.safetensors", NULL, NULL, "transformer.resblocks.0.attn.in_proj_weight");
    expect_fail("NaN weight", p, CMCR_EVALUE, "tensor 'transformer.resblocks.0.attn.in_proj_weight': row 0 contains NaN "
                "(column 5)", NULL);
    free(p);
    p = rewrite("notclip.safetensors", "visual.conv1.weight", NULL, NULL);
    expect_fail("not CLIP", p, CMCR_EFORMAT, "not a CLIP checkpoint", NULL);
    free(p);
}

/* A checkpoint of only the tensors the sizes are read from (zeros), vision width w. */
static char *sizes_only(const char *name, int64_t w)
{
    static const struct { const char *key; int ndim; int64_t shape[4]; } keys[] = {
        {"visual.conv1.weight", 4, {0, 3, 4, 4}}, {"visual.positional_embedding", 2, {5, 0}},
        {"token_embedding.weight", 2, {16, 64}},  {"positional_embedding", 2, {8, 64}},
        {"visual.proj", 2, {0, 8}},
    };
    cmcr_tensors *ts = cmcr_tensors_new();
    float *zeros = calloc((size_t)(48 * w + 1024), sizeof(float));
    assert_true(ts && zeros);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        int64_t shape[4];
        memcpy(shape, keys[i].shape, sizeof shape);
        for (int d = 0; d < keys[i].ndim; d++) shape[d] = shape[d] ? shape[d] : w;
        assert_int_equal(cmcr_tensors_add(ts, keys[i].key, CMCR_F32, keys[i].ndim, shape, zeros), CMCR_OK);
    }
    char *out = tu_path(name);
    assert_int_equal(cmcr_tensors_save(ts, out, CMCR_FORMAT_SAFETENSORS), CMCR_OK);
    cmcr_tensors_free(ts);
    free(zeros);
    return out;
}

/* Sizes read from shapes: a width that is not a multiple of 64, then (width 64) no layers. */
static void test_refuse_sizes(void **state)
{
    (void)state;
    char *p = sizes_only("w100.safetensors", 100);
    expect_fail("width not a multiple of 64", p, CMCR_EUNSUPPORTED, "vision width 100 is not a multiple of 64", NULL);
    free(p);
    p = sizes_only("nolayers.safetensors", 64);
    expect_fail("no layers", p, CMCR_EFORMAT, "the vision tower has no layers", NULL);
    free(p);
}

static void test_refuse_files(void **state)
{
    (void)state;
    char *ts = fx("small/torchscript.pt");
    expect_fail("TorchScript", ts, CMCR_EUNSUPPORTED, "TorchScript", "state_dict()");
    free(ts);
    /* a truncated safetensors file (half of it) */
    char *src = fx("small16/hf/model.safetensors"), *cut = tu_path("cut.safetensors");
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    tu_write_file(cut, buf, (size_t)n / 2);
    expect_fail("truncated safetensors", cut, CMCR_EFORMAT, "go past the end of the data", NULL);
    free(buf);
    free(cut);
    free(src);
    /* a truncated .pt (zip) file */
    src = fx("small16/openai.pt");
    cut = tu_path("cut.pt");
    assert_int_equal(tu_system("head -c 1000000 '%s' > '%s'", src, cut), 0);
    expect_fail("truncated .pt", cut, CMCR_EFORMAT, "truncated", NULL);
    free(cut);
    free(src);
    /* a folder without weights */
    const char *dir = tu_tmpdir();
    char *empty = tu_path("empty");
    assert_int_equal(tu_system("mkdir -p '%s'", empty), 0);
    expect_fail("no weights", empty, CMCR_EIO, "without model.safetensors or pytorch_model.bin", NULL);
    free(empty);
    (void)dir;
}

static void test_refuse_ids(void **state)
{
    (void)state;
    clip_model *m = load_ok("small16/openai.pt", "openai");
    refs r = load_refs("small16", "ref");
    float emb[3 * 32];
    int32_t *ids = malloc(sizeof(int32_t) * 77 * 2);
    assert_non_null(ids);
    memcpy(ids, r.ids, sizeof(int32_t) * 77 * 2);
    ids[77 + 4] = 49408;
    assert_int_equal(clip_encode_text(m, ids, 2, 0, emb), CMCR_EINVAL);
    printf("MSG\tids out of range\t%s\n", cmcr_last_error());
    assert_non_null(strstr(cmcr_last_error(), "row 1, position 4: id 49408 is outside 0..49407"));
    ids[77 + 4] = -1;
    assert_int_equal(clip_encode_text(m, ids, 2, 0, emb), CMCR_EINVAL);
    assert_non_null(strstr(cmcr_last_error(), "id -1 is outside"));
    free(ids);
    free_refs(&r);
    clip_model_free(m);
}

/* A .safetensors checkpoint mapped (the default) and read whole (CMCR_NO_MMAP=1) gives the
 * same model: bit-identical outputs, float32 and float16 weights. */
static void test_mapped_same(void **state)
{
    (void)state;
    static const char *const paths[] = {"small/hf", "small/hf_fp16"};
    refs r = load_refs("small", "ref");
    int64_t ni = r.n_img * 96, nt = r.n_txt * 96;
    float *out = malloc(sizeof(float) * (size_t)(2 * (ni + nt)));
    assert_non_null(out);
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        for (int read = 0; read < 2; read++) {
            if (read) assert_int_equal(setenv("CMCR_NO_MMAP", "1", 1), 0);
            clip_model *m = load_ok(paths[i], "hf");
            assert_int_equal(unsetenv("CMCR_NO_MMAP"), 0);
            float *o = out + read * (ni + nt);
            assert_int_equal(clip_encode_image(m, r.pixels, r.n_img, 0, o, NULL), CMCR_OK);
            assert_int_equal(clip_encode_text(m, r.ids, r.n_txt, 0, o + ni), CMCR_OK);
            clip_model_free(m);
        }
        assert_memory_equal(out, out + ni + nt, sizeof(float) * (size_t)(ni + nt));
    }
    free(out);
    free_refs(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layouts_f32),   cmocka_unit_test(test_half_weights),
        cmocka_unit_test(test_bf16_products), cmocka_unit_test(test_float32_only),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_concurrent),    cmocka_unit_test(test_refuse_damaged),
        cmocka_unit_test(test_refuse_files),  cmocka_unit_test(test_refuse_ids),
        cmocka_unit_test(test_refuse_sizes),  cmocka_unit_test(test_activation_layers),
        cmocka_unit_test(test_gelu_model),    cmocka_unit_test(test_refuse_config),
        cmocka_unit_test(test_mapped_same),
    };
    return tu_run_group(tests);
}
