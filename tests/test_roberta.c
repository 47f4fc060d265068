/* test_roberta.c - CLAP's RoBERTa text tower (src/encoders/roberta.c) against the PyTorch
 * reference (scripts/clap_ref_roberta.py --size small, fixture roberta_small: width 128, two
 * heads, two layers, embed 96): float32 within 1e-4, pads where the tokenizer never puts them,
 * chunked batches, concurrent calls, bf16 products within a loose bound, and the refusals
 * (missing, misshapen, non-float, non-finite tensors; sizes; ids). */
#include "testutil.h"
#define ROBERTA_FIXTURE "roberta_small"
#include "roberta_testutil.h"
#include "nn/transformer.h"
#include "runtime/matmul.h"

#include <pthread.h>

#define WEIGHTS "small/model.safetensors"

static void test_info_and_f32(void **state)
{
    (void)state;
    roberta_model *m = load_model(WEIGHTS);
    const roberta_info *in = roberta_model_info(m);
    assert_int_equal(in->vocab, 50265);
    assert_int_equal(in->positions, 514);
    assert_int_equal(in->width, 128);
    assert_int_equal(in->layers, 2);
    assert_int_equal(in->heads, 2);
    assert_int_equal(in->mlp, 512);
    assert_int_equal(in->embed_dim, 96);
    assert_true(encode_vs(m, "small/ids.npy", "small/emb.npy", 0, "float32") < TOL);
    roberta_model_free(m);
}

/* A pad between real tokens, a row of pads only, a pooled row that is a pad: as in HF. */
static void test_edge_pads(void **state)
{
    (void)state;
    roberta_model *m = load_model(WEIGHTS);
    assert_true(encode_vs(m, "small/edge_ids.npy", "small/edge_emb.npy", 0, "float32, odd pads") < TOL);
    roberta_model_free(m);
}

/* n prompts cycling through the fixture's (77-token ones included), so that a call is cut
 * into many chunks of different lengths; each row still matches its reference. */
static float *encode_cycled(const roberta_model *m, int64_t n, const int32_t *ids, int64_t k, int bf16)
{
    const int64_t E = roberta_model_info(m)->embed_dim;
    int32_t *big = malloc(sizeof(int32_t) * (size_t)(n * ROBERTA_CONTEXT));
    float *emb = malloc(sizeof(float) * (size_t)(n * E));
    assert_true(big && emb);
    for (int64_t i = 0; i < n; i++)
        memcpy(big + i * ROBERTA_CONTEXT, ids + (i % k) * ROBERTA_CONTEXT, sizeof(int32_t) * ROBERTA_CONTEXT);
    assert_int_equal(roberta_encode(m, big, n, bf16, emb), CMCR_OK);
    free(big);
    return emb;
}

static void test_chunks(void **state)
{
    (void)state;
    roberta_model *m = load_model(WEIGHTS);
    int64_t ni, ne, k;
    int32_t *ids = load_npy("small/ids.npy", &ni, &k);
    float *ref = load_npy("small/emb.npy", &ne, NULL);
    const int64_t E = roberta_model_info(m)->embed_dim, n = 101;
    float *emb = encode_cycled(m, n, ids, k, 0);
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double di = tu_max_abs_diff(emb + i * E, ref + (i % k) * E, E);
        d = di > d ? di : d;
    }
    printf("float32, %lld prompts in chunks: max |C - PyTorch| = %.3g\n", (long long)n, d);
    assert_true(d < TOL);
    assert_int_equal(roberta_encode(m, ids, 0, 0, emb), CMCR_OK); /* nothing to do */
    free(emb);
    free(ids);
    free(ref);
    roberta_model_free(m);
}

typedef struct job {
    const roberta_model *m;
    const int32_t *ids;
    int64_t k;
    float *emb;
} job;

static void *encode_job(void *arg)
{
    job *j = arg;
    j->emb = encode_cycled(j->m, 40, j->ids, j->k, 0);
    return NULL;
}

/* Two threads on one model: the same embeddings as one thread. */
static void test_concurrent(void **state)
{
    (void)state;
    roberta_model *m = load_model(WEIGHTS);
    int64_t ni, k;
    int32_t *ids = load_npy("small/ids.npy", &ni, &k);
    job a = {m, ids, k, NULL}, b = a;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, encode_job, &a), 0);
    encode_job(&b);
    assert_int_equal(pthread_join(t, NULL), 0);
    float *one = encode_cycled(m, 40, ids, k, 0);
    const int64_t E = roberta_model_info(m)->embed_dim;
    assert_true(tu_max_abs_diff(a.emb, one, 40 * E) == 0 && tu_max_abs_diff(b.emb, one, 40 * E) == 0);
    free(a.emb);
    free(b.emb);
    free(one);
    free(ids);
    roberta_model_free(m);
}

static void test_bf16(void **state)
{
    (void)state;
    roberta_model *m = load_model(WEIGHTS);
    if (mm_bf16_check() != CMCR_OK) {
        int32_t ids[ROBERTA_CONTEXT] = {0, 2};
        for (int i = 2; i < ROBERTA_CONTEXT; i++) ids[i] = ROBERTA_PAD;
        float emb[96];
        assert_int_equal(roberta_encode(m, ids, 1, 1, emb), CMCR_EUNSUPPORTED);
        assert_non_null(strstr(cmcr_last_error(), WEIGHTS));
        roberta_model_free(m);
        tu_skip("bf16 products unavailable here (%s); checked that they are refused", cmcr_last_error());
    }
    double d = encode_vs(m, "small/ids.npy", "small/emb.npy", 1, "bf16 products vs float32 PyTorch");
    double a = encode_vs(m, "small/ids.npy", "small/emb_bf16.npy", 1, "bf16 products vs PyTorch's bf16 autocast");
    assert_true(d < 0.05 && a < 0.05);
    roberta_model_free(m);
}

/* ------------------------------------------------------------------ refusals */

static void expect_refused(const cmcr_tensors *ts, const tu_edit *e, cmcr_status want, const char *needle)
{
    cmcr_tensors *bad = tu_edited(ts, e);
    roberta_model *m = (roberta_model *)1;
    cmcr_status st = roberta_model_from_tensors(bad, "clap.pt", &m);
    printf("refused: %s\n", cmcr_last_error());
    assert_int_equal(st, want);
    assert_null(m);
    assert_non_null(strstr(cmcr_last_error(), "clap.pt"));
    assert_non_null(strstr(cmcr_last_error(), needle));
    cmcr_tensors_free(bad);
}

static void test_refuse_tensors(void **state)
{
    (void)state;
    cmcr_tensors *ts = load_weights(WEIGHTS);
    const char *q0 = "text_branch.encoder.layer.0.attention.self.key.weight";
    static const char *const required[] = {"text_branch.encoder.layer.1.output.LayerNorm.bias",
                                           "text_branch.encoder.layer.1.attention.self.value.bias",
                                           "text_branch.pooler.dense.weight", "text_projection.2.weight",
                                           "text_branch.embeddings.token_type_embeddings.weight",
                                           "text_branch.embeddings.word_embeddings.weight"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        expect_refused(ts, &(tu_edit){.drop = required[i]}, CMCR_EFORMAT, required[i]);
    expect_refused(ts, &(tu_edit){.change = q0, .dtype = CMCR_F32, .ndim = 2, .shape = {128, 64}, .fill = 0.5f},
                   CMCR_ESHAPE, "expected [128, 128]");
    expect_refused(ts, &(tu_edit){.change = q0, .dtype = CMCR_I64, .ndim = 2, .shape = {128, 128}}, CMCR_EFORMAT,
                   "expected floating point");
    expect_refused(ts, &(tu_edit){.change = q0, .dtype = CMCR_F32, .ndim = 2, .shape = {128, 128}, .fill = NAN},
                   CMCR_EVALUE, q0);
    expect_refused(ts, &(tu_edit){.change = "text_projection.0.bias", .dtype = CMCR_F32, .ndim = 1, .shape = {96},
                               .fill = INFINITY}, CMCR_EVALUE, "text_projection.0.bias");
    /* sizes: too few positions for 77 ids, a width not of 64-wide heads, no layer 0 */
    expect_refused(ts, &(tu_edit){.change = "text_branch.embeddings.position_embeddings.weight", .dtype = CMCR_F32,
                               .ndim = 2, .shape = {78, 128}, .fill = 0.5f}, CMCR_EUNSUPPORTED, "outside 79..");
    expect_refused(ts, &(tu_edit){.change = "text_branch.embeddings.word_embeddings.weight", .dtype = CMCR_F32,
                               .ndim = 2, .shape = {50265, 100}, .fill = 0.5f}, CMCR_EUNSUPPORTED, "multiple of 64");
    expect_refused(ts, &(tu_edit){.drop = "text_branch.encoder.layer.0.attention.self.query.weight"}, CMCR_EFORMAT,
                   "no layers");
    expect_refused(ts, &(tu_edit){.change = "text_branch.embeddings.word_embeddings.weight", .dtype = CMCR_F32,
                               .ndim = 1, .shape = {50265}, .fill = 0.5f}, CMCR_ESHAPE, "expected 2 dimensions");
    /* position_ids is never required: the same embeddings without it */
    cmcr_tensors *no_pos = tu_edited(ts, &(tu_edit){.drop = "text_branch.embeddings.position_ids"});
    roberta_model *m = NULL;
    assert_int_equal(roberta_model_from_tensors(no_pos, "no position_ids", &m), CMCR_OK);
    assert_true(encode_vs(m, "small/ids.npy", "small/emb.npy", 0, "float32 without position_ids") < TOL);
    roberta_model_free(m);
    cmcr_tensors_free(no_pos);
    cmcr_tensors_free(ts);
    assert_int_equal(roberta_model_from_tensors(NULL, "x", &m), CMCR_EINVAL);
}

static void test_refuse_ids(void **state)
{
    (void)state;
    roberta_model *m = load_model(WEIGHTS);
    int32_t ids[2 * ROBERTA_CONTEXT];
    float emb[2 * 96];
    for (int i = 0; i < 2 * ROBERTA_CONTEXT; i++) ids[i] = ROBERTA_PAD;
    ids[0] = ids[ROBERTA_CONTEXT] = 0;
    static const int32_t bad[] = {50265, -1, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ids[ROBERTA_CONTEXT + 5] = bad[i];
        assert_int_equal(roberta_encode(m, ids, 2, 0, emb), CMCR_EINVAL);
        printf("refused: %s\n", cmcr_last_error());
        assert_non_null(strstr(cmcr_last_error(), "row 1, position 5"));
        assert_non_null(strstr(cmcr_last_error(), "0..50264"));
    }
    ids[ROBERTA_CONTEXT + 5] = 50264; /* the last id is fine */
    assert_int_equal(roberta_encode(m, ids, 2, 0, emb), CMCR_OK);
    assert_int_equal(roberta_encode(m, ids, -1, 0, emb), CMCR_EINVAL);
    assert_int_equal(roberta_encode(m, NULL, 1, 0, emb), CMCR_EINVAL);
    assert_int_equal(roberta_encode(NULL, ids, 1, 0, emb), CMCR_EINVAL);
    roberta_model_free(m);
}

/* tf_attention_masked with no mask is tf_attention, bit for bit (CLIP's path unchanged), and
 * masking keys equals dropping them. */
static void test_masked_attention(void **state)
{
    (void)state;
    enum { T = 5, W = 128 };
    tf_shape s = {.width = W, .heads = 2, .mlp = 4 * W};
    uint64_t sz[4];
    assert_true(tf_scratch_sizes(&s, 1, T, sz));
    float *qkv = malloc(sizeof(float) * T * 3 * W), *a = malloc(sizeof(float) * T * W),
          *b = malloc(sizeof(float) * T * W), *c = malloc(sizeof(float) * T * W),
          *work = malloc(sizeof(float) * sz[3]);
    assert_true(qkv && a && b && c && work);
    for (int i = 0; i < T * 3 * W; i++) qkv[i] = sinf(0.37f * (float)i);
    tf_attention(a, qkv, &s, 1, T, work);
    tf_attention_masked(b, qkv, &s, 1, T, NULL, work);
    assert_memory_equal(a, b, sizeof(float) * T * W);
    /* keys 3 and 4 masked: rows 0..2 as attention over the first three rows alone */
    const uint8_t keep[T] = {1, 1, 1, 0, 0};
    tf_attention_masked(b, qkv, &s, 1, T, keep, work);
    tf_attention(c, qkv, &s, 1, 3, work);
    double d = tu_max_abs_diff(b, c, 3 * W);
    printf("masked attention vs dropped keys: %.3g\n", d);
    assert_true(d < 1e-6);
    free(qkv), free(a), free(b), free(c), free(work);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_and_f32),    cmocka_unit_test(test_edge_pads),
        cmocka_unit_test(test_chunks),          cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_bf16),            cmocka_unit_test(test_refuse_tensors),
        cmocka_unit_test(test_refuse_ids),      cmocka_unit_test(test_masked_attention),
    };
    return tu_run_group(tests);
}
