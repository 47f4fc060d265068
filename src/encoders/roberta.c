/* roberta.c - CLAP's text tower: RoBERTa (post-LN BERT layers) and text_projection (see
 * roberta.h and docs/encoders.md, RoBERTa).
 *
 * Loading follows clip.c: sizes read from a few shapes, every tensor checked by the two-pass
 * binder (bind.h) before one float32 block is allocated and filled (query, key and value
 * packed into one qkv matrix per layer, so a layer's projections are one product).
 *
 * Forward: the prompts are ordered by real length (the last non-pad id + 1) and cut into
 * chunks of at most RB_CHUNK_ROWS token rows; each chunk runs up to its longest real length T,
 * the rows of a chunk T apart, so one long prompt does not make a batch of short ones run 77
 * rows. Pads are masked as keys (tf_attention_masked), so a real token's output does not
 * depend on how many pads follow it: running T rows instead of 77 changes nothing. */
#include "encoders/roberta.h"
#include "encoders/bind.h"
#include "io/io.h"
#include "nn/transformer.h"
#include "runtime/matmul.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sizes beyond any RoBERTa: refused before they drive an allocation. */
#define RB_MAX_WIDTH 16384
#define RB_MAX_LAYERS 1000
#define RB_MAX_VOCAB (1 << 24)
#define RB_MAX_POSITIONS 65536
#define RB_MAX_TYPES 1024
/* Token rows of one chunk: products of about this many rows run at full speed (as clip.c's
 * CLIP_CHUNK_ROWS), and the scratch stays bounded (about 9 x width + mlp floats per row). */
#define RB_CHUNK_ROWS 1024

#define P_EMB "text_branch.embeddings."
#define P_LAYER "text_branch.encoder.layer.%d."

struct roberta_model {
    roberta_info info;
    char name[1024]; /* the file, printable, for messages */
    float *params;
    uint16_t *params16; /* the Linear weights in bfloat16; NULL without bf16 products */
    tf_shape shape;
    tf_block *blocks;   /* ln1: attention.output.LayerNorm, ln2: output.LayerNorm */
    float *word, *pos, *type; /* vocab x width, positions x width, token types x width (row 0 used) */
    int32_t types;
    tf_norm ln_emb;
    tf_linear pooler, proj0, proj2;
};

/* ------------------------------------------------------------------ binding tensors */

/* query, key and value (each width x width) packed into one 3 width x width Linear. */
static cmcr_status bind_qkv(binder *b, tf_linear *l, int64_t w, const char *p)
{
    float *wt = bind_take(b, 3 * (uint64_t)w * (uint64_t)w), *bias = bind_take(b, 3 * (uint64_t)w);
    *l = (tf_linear){.w = wt, .b = bias, .in = w, .out = 3 * w};
    static const char *const names[3] = {"query", "key", "value"};
    for (int j = 0; j < 3; j++) {
        cmcr_status st = bind_fmt(b, wt ? wt + j * w * w : NULL, 0, w, w, 0, 0, "%sattention.self.%s.weight", p, names[j]);
        if (!st) st = bind_fmt(b, bias ? bias + j * w : NULL, 0, w, 0, 0, 0, "%sattention.self.%s.bias", p, names[j]);
        if (st) return st;
    }
    return CMCR_OK;
}

static cmcr_status bind_layer(binder *b, tf_block *blk, const roberta_info *in, int i)
{
    char p[96], k[160];
    snprintf(p, sizeof p, P_LAYER, i);
    const int64_t w = in->width, mlp = in->mlp;
    cmcr_status st = bind_qkv(b, &blk->qkv, w, p);
#define KEY(s) (snprintf(k, sizeof k, "%s%s", p, s), k)
    if (!st) st = bind_linear(b, &blk->out, w, w, KEY("attention.output.dense"));
    if (!st) st = bind_norm(b, &blk->ln1, w, KEY("attention.output.LayerNorm"));
    if (!st) st = bind_linear(b, &blk->fc1, mlp, w, KEY("intermediate.dense"));
    if (!st) st = bind_linear(b, &blk->fc2, w, mlp, KEY("output.dense"));
    if (!st) st = bind_norm(b, &blk->ln2, w, KEY("output.LayerNorm"));
#undef KEY
    return st;
}

/* Every tensor, checked (blocks == NULL: the checking pass) or copied. */
static cmcr_status bind_all(binder *b, roberta_model *m, tf_block *blocks)
{
    const roberta_info *in = &m->info;
    const int64_t w = in->width, E = in->embed_dim;
    m->word = bind_take(b, (uint64_t)in->vocab * (uint64_t)w);
    cmcr_status st = bind_fmt(b, m->word, 0, in->vocab, w, 0, 0, P_EMB "word_embeddings.weight");
    m->pos = bind_take(b, (uint64_t)in->positions * (uint64_t)w);
    if (!st) st = bind_fmt(b, m->pos, 0, in->positions, w, 0, 0, P_EMB "position_embeddings.weight");
    m->type = bind_take(b, (uint64_t)m->types * (uint64_t)w);
    if (!st) st = bind_fmt(b, m->type, 0, m->types, w, 0, 0, P_EMB "token_type_embeddings.weight");
    if (!st) st = bind_norm(b, &m->ln_emb, w, P_EMB "LayerNorm");
    for (int i = 0; !st && i < in->layers; i++) st = bind_layer(b, blocks ? &blocks[i] : &(tf_block){0}, in, i);
    if (!st) st = bind_linear(b, &m->pooler, w, w, "text_branch.pooler.dense");
    if (!st) st = bind_linear(b, &m->proj0, E, w, "text_projection.0");
    if (!st) st = bind_linear(b, &m->proj2, E, E, "text_projection.2");
    return st;
}

/* ------------------------------------------------------------------ sizes from shapes */

static cmcr_status read_sizes(const binder *b, roberta_model *m)
{
    roberta_info *in = &m->info;
    const char *word = P_EMB "word_embeddings.weight", *pos = P_EMB "position_embeddings.weight";
    /* the vocabulary holds at least <s> (0) and <pad> (1); 77 ids use positions up to 78 */
    cmcr_status st = bind_dim(b, word, 2, 0, ROBERTA_PAD + 1, RB_MAX_VOCAB, &in->vocab);
    if (!st) st = bind_dim(b, word, 2, 1, 1, RB_MAX_WIDTH, &in->width);
    if (!st) st = bind_dim(b, pos, 2, 0, ROBERTA_CONTEXT + ROBERTA_PAD + 1, RB_MAX_POSITIONS, &in->positions);
    if (!st) st = bind_dim(b, P_EMB "token_type_embeddings.weight", 2, 0, 1, RB_MAX_TYPES, &m->types);
    if (!st) st = bind_dim(b, "text_branch.encoder.layer.0.intermediate.dense.weight", 2, 0, 1, 4 * RB_MAX_WIDTH,
                           &in->mlp);
    if (!st) st = bind_dim(b, "text_projection.0.weight", 2, 0, 1, RB_MAX_WIDTH, &in->embed_dim);
    if (st) return st;
    if (in->width % 64 != 0)
        return core_fail(CMCR_EUNSUPPORTED, "%s: RoBERTa width %d is not a multiple of 64 (its heads are 64 wide)",
                         b->file, in->width);
    in->layers = bind_count(b, P_LAYER "attention.self.query.weight", RB_MAX_LAYERS);
    in->heads = in->width / 64;
    m->shape = (tf_shape){.width = in->width, .heads = in->heads, .mlp = in->mlp, .act = TF_GELU};
    return CMCR_OK;
}

/* The Linear weights in bfloat16, in one block. */
static cmcr_status make_bf16(roberta_model *m)
{
    tf_linear *fixed[] = {&m->pooler, &m->proj0, &m->proj2};
    tf_block *blocks[] = {m->blocks};
    int64_t nblocks[] = {m->info.layers};
    return bind_bf16_blocks(fixed, 3, blocks, nblocks, 1, m->name, &m->params16);
}

static cmcr_status build(roberta_model *m, const cmcr_tensors *ts)
{
    binder b = {.ts = ts, .file = m->name, .what = "CLAP's RoBERTa text tower"};
    cmcr_status st = read_sizes(&b, m);
    if (st) return st;
    if (m->info.layers < 1)
        return core_fail(CMCR_EFORMAT, "%s: the RoBERTa text tower has no layers (no '"
                         "text_branch.encoder.layer.0.attention.self.query.weight' key)", m->name);
    /* pass 1: check every tensor and count; nothing is allocated before it passes */
    st = bind_all(&b, m, NULL);
    if (st) return st;
    uint64_t floats = b.used;
    if (floats > SIZE_MAX / sizeof(float) || !(m->params = core_xmalloc((size_t)floats * sizeof(float))))
        return core_fail(CMCR_ENOMEM, "%s: out of memory for %llu weights", m->name, (unsigned long long)floats);
    if (!(m->blocks = calloc((size_t)m->info.layers, sizeof *m->blocks)))
        return core_fail(CMCR_ENOMEM, "%s: out of memory", m->name);
    b.base = m->params;
    b.used = 0;
    return bind_all(&b, m, m->blocks);
}

cmcr_status roberta_model_from_tensors_with(const cmcr_tensors *ts, const char *name, int float32_only, roberta_model **out)
{
    if (!ts || !name || !out) return core_fail(CMCR_EINVAL, "roberta_model_from_tensors: NULL argument");
    *out = NULL;
    roberta_model *m = calloc(1, sizeof *m);
    if (!m) return core_fail(CMCR_ENOMEM, "%s: out of memory", name);
    cmcr_printable(m->name, sizeof m->name, name);
    cmcr_status st = build(m, ts);
    if (!st && !float32_only && mm_bf16_check() == CMCR_OK) st = make_bf16(m);
    if (st) {
        roberta_model_free(m);
        return st;
    }
    *out = m;
    return CMCR_OK;
}

void roberta_model_free(roberta_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->params16);
    free(m->blocks);
    free(m);
}

cmcr_status roberta_model_from_tensors(const cmcr_tensors *ts, const char *name, roberta_model **out)
{
    return roberta_model_from_tensors_with(ts, name, 0, out);
}

const roberta_info *roberta_model_info(const roberta_model *m) { return m ? &m->info : NULL; }

/* ------------------------------------------------------------------ forward pass */

/* Scratch of one call: every buffer sized for RB_CHUNK_ROWS rows. */
typedef struct run {
    tf_prec prec;
    tf_scratch s;
    float *x;      /* rows x width: the residual stream */
    float *p1, *p2; /* rows x max(width, embed): the pooled rows and the projection */
    uint8_t *keys; /* rows: 1 for a real token */
    void *block;
} run;

static void run_free(run *r)
{
    if (r->prec.ctx) mm_ctx_free(r->prec.ctx);
    free(r->block);
}

/* Floats of one scratch member, rows x cols, accumulated into *total; false on overflow. */
static bool add_size(uint64_t rows, uint64_t cols, uint64_t *total, uint64_t *one)
{
    return core_mul_u64(rows, cols, one) && (*total += *one) >= *one;
}

static cmcr_status run_new(const roberta_model *m, int bf16, run *r)
{
    memset(r, 0, sizeof *r);
    const roberta_info *in = &m->info;
    const uint64_t R = RB_CHUNK_ROWS, w = (uint64_t)in->width, hd = 64, E = (uint64_t)in->embed_dim;
    uint64_t pw = w > E ? w : E, widest = pw > (uint64_t)in->mlp ? pw : (uint64_t)in->mlp;
    uint64_t total = 0, sz[8];
    /* attention's work: seqs x heads x tokens x (4 hd + tokens) floats, seqs x tokens <= R */
    bool ok = add_size(R, w, &total, &sz[0]) && add_size(R, w, &total, &sz[1]) && add_size(R, 3 * w, &total, &sz[2]) &&
              add_size(R, (uint64_t)in->mlp, &total, &sz[3]) &&
              add_size(R * (uint64_t)in->heads, 4 * hd + ROBERTA_CONTEXT, &total, &sz[4]) &&
              add_size(R, pw, &total, &sz[5]) && add_size(R, pw, &total, &sz[6]) &&
              add_size(R, bf16 ? widest / 2 + 1 : 0, &total, &sz[7]);
    if (!ok || total > SIZE_MAX / sizeof(float) - R ||
        !(r->block = core_xmalloc((size_t)total * sizeof(float) + (size_t)R)))
        return core_fail(CMCR_ENOMEM, "%s: out of memory for the forward pass (%llu floats)", m->name,
                         (unsigned long long)total);
    float *p = r->block;
    r->x = p, p += sz[0];
    r->s.h = p, p += sz[1];
    r->s.qkv = p, p += sz[2];
    r->s.mlp = p, p += sz[3];
    r->s.att = p, p += sz[4];
    r->p1 = p, p += sz[5];
    r->p2 = p, p += sz[6];
    r->prec.a16 = (uint16_t *)p, p += sz[7];
    r->keys = (uint8_t *)p;
    if (!bf16) return CMCR_OK;
    r->prec.bf16 = 1;
    cmcr_status st = mm_ctx_new(&r->prec.ctx);
    if (st) return core_fail(CMCR_EUNSUPPORTED, "%s: bf16: %s", m->name, cmcr_last_error());
    return CMCR_OK;
}

/* bf16 products need oneDNN's (mm_bf16_check) and the bfloat16 weights made at load. */
static cmcr_status check_bf16(const roberta_model *m, int bf16) { return bind_check_bf16(m->name, m->params16, bf16); }

static cmcr_status check_ids(const roberta_model *m, const int32_t *ids, int64_t n)
{
    const int64_t ctx = ROBERTA_CONTEXT;
    for (int64_t i = 0; i < n * ctx; i++)
        if (ids[i] < 0 || ids[i] >= m->info.vocab)
            return core_fail(CMCR_EINVAL, "token ids: row %lld, position %lld: id %d is outside 0..%d (the vocabulary of "
                             "%s)", (long long)(i / ctx), (long long)(i % ctx), ids[i], m->info.vocab - 1, m->name);
    return CMCR_OK;
}

/* Rows a prompt needs: up to its last real id (1 for a row of pads only). */
static int64_t real_length(const int32_t *row)
{
    int64_t t = ROBERTA_CONTEXT;
    while (t > 1 && row[t - 1] == ROBERTA_PAD) t--;
    return t;
}

/* Row k of the chunk's prompt i (ids row which[i]): word + token type 0, then + position
 * (Hugging Face's order of the sums); positions count the ids other than <pad> from 2, every
 * <pad> takes 1 (padding_idx). The keys attended to are the tokenizer's attention mask: every
 * position up to the row's last id that is not <pad>, so a "<pad>" written inside a prompt
 * is attended to, as CLAP's tokenizer output says. */
static void embed_rows(const roberta_model *m, run *r, const int32_t *ids, const int64_t *which, int64_t seqs,
                       int64_t T)
{
    const int64_t w = m->info.width;
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < seqs; i++) {
        const int32_t *row = ids + which[i] * ROBERTA_CONTEXT;
        int64_t count = 0, last = -1;
        for (int64_t k = 0; k < ROBERTA_CONTEXT; k++)
            if (row[k] != ROBERTA_PAD) last = k;
        for (int64_t k = 0; k < T; k++) {
            int real = row[k] != ROBERTA_PAD;
            count += real;
            const float *we = m->word + (int64_t)row[k] * w, *pe = m->pos + (real ? ROBERTA_PAD + count : ROBERTA_PAD) * w;
            float *x = r->x + (i * T + k) * w;
            for (int64_t j = 0; j < w; j++) x[j] = (we[j] + m->type[j]) + pe[j];
            r->keys[i * T + k] = (uint8_t)(k <= last); /* the tokenizer's attention mask */
        }
    }
    tf_layernorm(r->x, r->x, &m->ln_emb, seqs * T, w);
}

/* x += y, then x = LayerNorm(x): a post-LN residual. */
static void add_norm(float *x, const float *y, const tf_norm *ln, int64_t rows, int64_t w)
{
    #pragma omp parallel for schedule(static) if (rows * w > 65536)
    for (int64_t i = 0; i < rows * w; i++) x[i] += y[i];
    tf_layernorm(x, x, ln, rows, w);
}

/* One BERT layer (post-LN): x = LN(x + out(attn(x))); x = LN(x + fc2(GELU(fc1(x)))). */
static cmcr_status layer_forward(const roberta_model *m, run *r, const tf_block *b, int64_t seqs, int64_t T)
{
    const int64_t rows = seqs * T, w = m->info.width;
    cmcr_status st = tf_linear_forward(&r->prec, r->s.qkv, r->x, &b->qkv, rows);
    if (st) return st;
    tf_attention_masked(r->s.h, r->s.qkv, &m->shape, seqs, T, r->keys, r->s.att);
    if ((st = tf_linear_forward(&r->prec, r->s.qkv, r->s.h, &b->out, rows))) return st;
    add_norm(r->x, r->s.qkv, &b->ln1, rows, w);
    if ((st = tf_linear_forward(&r->prec, r->s.mlp, r->x, &b->fc1, rows))) return st;
    tf_gelu(r->s.mlp, rows * m->info.mlp);
    if ((st = tf_linear_forward(&r->prec, r->s.qkv, r->s.mlp, &b->fc2, rows))) return st;
    add_norm(r->x, r->s.qkv, &b->ln2, rows, w);
    return CMCR_OK;
}

/* The <s> rows -> tanh(pooler) -> text_projection (Linear, ReLU, Linear) -> emb rows which[]. */
static cmcr_status pool_project(const roberta_model *m, run *r, const int64_t *which, int64_t seqs, int64_t T,
                                float *emb)
{
    const int64_t w = m->info.width, E = m->info.embed_dim;
    for (int64_t i = 0; i < seqs; i++) memcpy(r->p1 + i * w, r->x + i * T * w, (size_t)w * sizeof(float));
    cmcr_status st = tf_linear_forward(&r->prec, r->p2, r->p1, &m->pooler, seqs);
    if (st) return st;
    for (int64_t i = 0; i < seqs * w; i++) r->p2[i] = tanhf(r->p2[i]);
    if ((st = tf_linear_forward(&r->prec, r->p1, r->p2, &m->proj0, seqs))) return st;
    for (int64_t i = 0; i < seqs * E; i++) r->p1[i] = r->p1[i] > 0 ? r->p1[i] : 0;
    if ((st = tf_linear_forward(&r->prec, r->p2, r->p1, &m->proj2, seqs))) return st;
    for (int64_t i = 0; i < seqs; i++) memcpy(emb + which[i] * E, r->p2 + i * E, (size_t)E * sizeof(float));
    return CMCR_OK;
}

static cmcr_status chunk_forward(const roberta_model *m, run *r, const int32_t *ids, const int64_t *which,
                                 int64_t seqs, int64_t T, float *emb)
{
    embed_rows(m, r, ids, which, seqs, T);
    for (int64_t l = 0; l < m->info.layers; l++) {
        cmcr_status st = layer_forward(m, r, &m->blocks[l], seqs, T);
        if (st) return st;
    }
    return pool_project(m, r, which, seqs, T, emb);
}

typedef struct by_len {
    int64_t len, row;
} by_len;

static int cmp_len(const void *a, const void *b)
{
    const by_len *x = a, *y = b;
    return x->len != y->len ? (x->len > y->len) - (x->len < y->len) : (x->row > y->row) - (x->row < y->row);
}

/* The rows in order of real length, shortest first, in rows (n); order (n) their indices. */
static void order_by_length(const int32_t *ids, int64_t n, by_len *rows, int64_t *order)
{
    for (int64_t i = 0; i < n; i++) rows[i] = (by_len){real_length(ids + i * ROBERTA_CONTEXT), i};
    qsort(rows, (size_t)n, sizeof *rows, cmp_len);
    for (int64_t i = 0; i < n; i++) order[i] = rows[i].row;
}

cmcr_status roberta_encode(const roberta_model *m, const int32_t *ids, int64_t n, int bf16, float *emb)
{
    if (!m || (n > 0 && (!ids || !emb)) || n < 0)
        return core_fail(CMCR_EINVAL, "roberta_encode: NULL argument or negative count");
    cmcr_status st = check_bf16(m, bf16);
    if (!st) st = check_ids(m, ids, n);
    if (st || n == 0) return st;
    by_len *rows = (uint64_t)n > SIZE_MAX / sizeof(by_len) ? NULL : core_xmalloc((size_t)n * sizeof *rows);
    int64_t *order = rows ? core_xmalloc((size_t)n * sizeof *order) : NULL;
    run r = {0};
    st = order ? run_new(m, bf16, &r) : core_fail(CMCR_ENOMEM, "%s: out of memory for %lld prompts", m->name,
                                                   (long long)n);
    if (!st) order_by_length(ids, n, rows, order);
    /* chunks: as many prompts as fit RB_CHUNK_ROWS rows at the chunk's longest (last) length */
    for (int64_t i = 0; !st && i < n;) {
        int64_t k = 1;
        while (i + k < n && (k + 1) * rows[i + k].len <= RB_CHUNK_ROWS) k++;
        st = chunk_forward(m, &r, ids, order + i, k, rows[i + k - 1].len, emb);
        i += k;
    }
    run_free(&r);
    free(rows);
    free(order);
    return st;
}
