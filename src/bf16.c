/* bf16.c - bfloat16 matrix products through oneDNN's matmul primitive (see bf16.h). */
#include "bf16.h"

#include <stdlib.h>
#include <string.h>

int cmcr_bf16_support(void)
{
#ifdef CMCR_HAVE_DNNL
    return 1;
#else
    return 0;
#endif
}

void bf16_from_f32(const float *x, uint16_t *y, int64_t n)
{
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        u += 0x7fffu + ((u >> 16) & 1u);
        y[i] = (uint16_t)(u >> 16);
    }
}

#ifndef CMCR_HAVE_DNNL
cmcr_status bf16_ctx_new(bf16_ctx **out)
{
    *out = NULL;
    return cmcr_fail(CMCR_EINVAL, "bfloat16 products need oneDNN: this cmcr was built without it "
                     "(install libdnnl-dev and rebuild)");
}
void bf16_ctx_free(bf16_ctx *c) { (void)c; }
cmcr_status bf16_matmul(bf16_ctx *c, const uint16_t *a, const uint16_t *b, float *out, int64_t m, int64_t n,
                        int64_t k, int trans_b, float alpha, int accumulate)
{
    (void)c, (void)a, (void)b, (void)out, (void)m, (void)n, (void)k, (void)trans_b, (void)alpha, (void)accumulate;
    return cmcr_fail(CMCR_EINVAL, "bfloat16 products need oneDNN");
}
#else
#include <oneapi/dnnl/dnnl.h>

enum { CACHE = 6 };

typedef struct mm_prim {
    int64_t m, n, k;
    int trans_b, accumulate;
    float alpha;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t a, b, c;
} mm_prim;

struct bf16_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    mm_prim cache[CACHE];
    int used, next;
};

static cmcr_status dnnl_fail(dnnl_status_t s, const char *what)
{
    return cmcr_fail(s == dnnl_out_of_memory ? CMCR_ENOMEM : CMCR_EINVAL, "oneDNN: %s failed (status %d)", what,
                     (int)s);
}

cmcr_status bf16_ctx_new(bf16_ctx **out)
{
    *out = NULL;
    bf16_ctx *c = calloc(1, sizeof *c);
    if (!c) return cmcr_fail(CMCR_ENOMEM, "out of memory");
    dnnl_status_t s = dnnl_engine_create(&c->engine, dnnl_cpu, 0);
    if (s == dnnl_success) s = dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        bf16_ctx_free(c);
        return dnnl_fail(s, "creating a CPU engine");
    }
    *out = c;
    return CMCR_OK;
}

void bf16_ctx_free(bf16_ctx *c)
{
    if (!c) return;
    for (int i = 0; i < c->used; i++)
        if (c->cache[i].prim) dnnl_primitive_destroy(c->cache[i].prim);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    free(c);
}

static dnnl_status_t make_prim(bf16_ctx *c, mm_prim *p)
{
    dnnl_dims_t ad = {p->m, p->k}, bd = {p->k, p->n}, cd = {p->m, p->n};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&p->a, 2, ad, dnnl_bf16, dnnl_ab);
    /* B^T given as N x K rows is the K x N matrix in column-major ("ba") order */
    if (!s) s = dnnl_memory_desc_init_by_tag(&p->b, 2, bd, dnnl_bf16, p->trans_b ? dnnl_ba : dnnl_ab);
    if (!s) s = dnnl_memory_desc_init_by_tag(&p->c, 2, cd, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    if (!s) s = dnnl_matmul_desc_init(&md, &p->a, &p->b, NULL, &p->c);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (!s) s = dnnl_primitive_attr_create(&attr);
    if (!s && p->alpha != 1.0f) s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &p->alpha);
    if (!s && p->accumulate) {
        s = dnnl_post_ops_create(&po);
        if (!s) s = dnnl_post_ops_append_sum(po, 1.0f);
        if (!s) s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (!s) s = dnnl_primitive_desc_create(&pd, &md, attr, c->engine, NULL);
    if (!s) s = dnnl_primitive_create(&p->prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

/* The cached primitive for this shape, or a new one in a free (or the oldest) slot. */
static mm_prim *find_prim(bf16_ctx *c, const mm_prim *want, dnnl_status_t *s)
{
    for (int i = 0; i < c->used; i++) {
        mm_prim *p = &c->cache[i];
        if (p->prim && p->m == want->m && p->n == want->n && p->k == want->k && p->trans_b == want->trans_b &&
            p->accumulate == want->accumulate && p->alpha == want->alpha)
            return p;
    }
    mm_prim *p;
    if (c->used < CACHE) {
        p = &c->cache[c->used++];
    } else {
        p = &c->cache[c->next];
        c->next = (c->next + 1) % CACHE;
        if (p->prim) dnnl_primitive_destroy(p->prim);
    }
    *p = *want;
    p->prim = NULL;
    *s = make_prim(c, p);
    return *s == dnnl_success ? p : NULL;
}

cmcr_status bf16_matmul(bf16_ctx *c, const uint16_t *a, const uint16_t *b, float *out, int64_t m, int64_t n,
                        int64_t k, int trans_b, float alpha, int accumulate)
{
    mm_prim want = {m, n, k, trans_b != 0, accumulate != 0, alpha, NULL, {0}, {0}, {0}};
    dnnl_status_t s = dnnl_success;
    mm_prim *p = find_prim(c, &want, &s);
    if (!p) return dnnl_fail(s, "creating a bf16 matmul");
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    s = dnnl_memory_create(&ma, &p->a, c->engine, (void *)a);
    if (!s) s = dnnl_memory_create(&mb, &p->b, c->engine, (void *)b);
    if (!s) s = dnnl_memory_create(&mc, &p->c, c->engine, out);
    if (!s) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        s = dnnl_primitive_execute(p->prim, c->stream, 3, args);
    }
    if (!s) s = dnnl_stream_wait(c->stream);
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    return s ? dnnl_fail(s, "a bf16 matmul") : CMCR_OK;
}
#endif
