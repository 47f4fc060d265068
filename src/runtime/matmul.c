/* matmul.c - float32 and bfloat16 matrix products (see matmul.h): oneDNN's matmul primitive
 * where the build has it, OpenBLAS for float32 otherwise. */
#include "runtime/matmul.h"
#include "runtime/half.h"
#include "runtime/vmath.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

int cmcr_bf16_support(void) { return mm_bf16_check() == CMCR_OK; }

/* One thread's share, vectorised (clones for AVX-512 and AVX2; the results are the same bits
 * on every path). */
CMCR_VECTOR_CLONES
static void bf16_from_f32_range(const float *x, uint16_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = half_f32_to_bf16(x[i]);
}

void mm_bf16_from_f32(const float *x, uint16_t *y, int64_t n)
{
    enum { CHUNK = 16384 };
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i += CHUNK) bf16_from_f32_range(x + i, y + i, n - i < CHUNK ? n - i : CHUNK);
}

static void blas_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       const float *b, float beta, float *c)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m,
                (int)n, (int)k, alpha, a, trans_a ? (int)m : (int)k, b, trans_b ? (int)k : (int)n, beta, c, (int)n);
}

static void blas_linear(const float *x, const float *w, const float *bias, int64_t rows, int64_t in, int64_t out,
                        float *y)
{
    #pragma omp parallel for schedule(static) if (rows * out > 65536)
    for (int64_t r = 0; r < rows; r++) memcpy(y + r * out, bias, (size_t)out * sizeof(float));
    blas_sgemm(0, 1, rows, out, in, 1.0f, x, w, 1.0f, y);
}

#ifndef CMCR_HAVE_DNNL
const char *cmcr_gemm_backend(void) { return "OpenBLAS"; }
const char *cmcr_gemm_kernels(void) { return cmcr_blas_core(); }

cmcr_status mm_bf16_check(void)
{
    return core_fail(CMCR_EINVAL, "bfloat16 products need oneDNN: this cmcr was built without it "
                     "(install libdnnl-dev and rebuild)");
}

void mm_linear(const float *x, const float *w, const float *bias, int64_t rows, int64_t in, int64_t out, float *y)
{
    if (rows > 0 && out > 0) blas_linear(x, w, bias, rows, in, out, y);
}

void mm_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                const float *b, float beta, float *c)
{
    if (m > 0 && n > 0) blas_sgemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
}

static int bf16_run(const mm_prec *p, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, const float *b, float beta, const float *bias, float *c)
{
    (void)p, (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)b, (void)beta;
    (void)bias, (void)c;
    return 0;
}

cmcr_status mm_ctx_new(mm_ctx **out)
{
    *out = NULL;
    return mm_bf16_check();
}
void mm_ctx_free(mm_ctx *c) { (void)c; }
cmcr_status mm_bf16_matmul(mm_ctx *c, const uint16_t *a, const uint16_t *b, float *out, int64_t m, int64_t n,
                        int64_t k, int trans_b, float alpha, int accumulate)
{
    (void)c, (void)a, (void)b, (void)out, (void)m, (void)n, (void)k, (void)trans_b, (void)alpha, (void)accumulate;
    return core_fail(CMCR_EINVAL, "bfloat16 products need oneDNN");
}
#else
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>

/* Primitives kept per context: training uses about 10 shapes per head layout. */
enum { CACHE = 16 };

typedef struct mm_prim {
    dnnl_data_type_t type; /* of the inputs; results are float32 */
    int64_t m, n, k;
    int trans_a, trans_b, accumulate, bias; /* bias: a float32 row added to every row */
    float alpha;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t a, b, c, bias_md;
} mm_prim;

struct mm_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    mm_prim cache[CACHE];
    int used, next;
};

static cmcr_status dnnl_fail(dnnl_status_t s, const char *what)
{
    return core_fail(s == dnnl_out_of_memory ? CMCR_ENOMEM : CMCR_EINVAL, "oneDNN: %s failed (status %d)", what,
                     (int)s);
}

static dnnl_status_t ctx_create(mm_ctx **out)
{
    *out = NULL;
    mm_ctx *c = calloc(1, sizeof *c);
    if (!c) return dnnl_out_of_memory;
    dnnl_status_t s = dnnl_engine_create(&c->engine, dnnl_cpu, 0);
    if (s == dnnl_success) s = dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        mm_ctx_free(c);
        return s;
    }
    *out = c;
    return dnnl_success;
}

cmcr_status mm_ctx_new(mm_ctx **out)
{
    *out = NULL;
    cmcr_status st = mm_bf16_check();
    if (st) return st;
    dnnl_status_t s = ctx_create(out);
    return s == dnnl_success ? CMCR_OK : dnnl_fail(s, "creating a CPU engine");
}

void mm_ctx_free(mm_ctx *c)
{
    if (!c) return;
    for (int i = 0; i < c->used; i++)
        if (c->cache[i].prim) dnnl_primitive_destroy(c->cache[i].prim);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    free(c);
}

static dnnl_status_t make_prim(mm_ctx *c, mm_prim *p)
{
    dnnl_dims_t ad = {p->m, p->k}, bd = {p->k, p->n}, cd = {p->m, p->n};
    /* a transposed operand stored row-major is the plain one in column-major ("ba") order */
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&p->a, 2, ad, p->type, p->trans_a ? dnnl_ba : dnnl_ab);
    if (!s) s = dnnl_memory_desc_init_by_tag(&p->b, 2, bd, p->type, p->trans_b ? dnnl_ba : dnnl_ab);
    if (!s) s = dnnl_memory_desc_init_by_tag(&p->c, 2, cd, dnnl_f32, dnnl_ab);
    dnnl_dims_t bias_d = {1, p->n};
    if (!s && p->bias) s = dnnl_memory_desc_init_by_tag(&p->bias_md, 2, bias_d, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    if (!s) s = dnnl_matmul_desc_init(&md, &p->a, &p->b, p->bias ? &p->bias_md : NULL, &p->c);
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

static int same_prim(const mm_prim *p, const mm_prim *q)
{
    return p->type == q->type && p->m == q->m && p->n == q->n && p->k == q->k && p->trans_a == q->trans_a &&
           p->trans_b == q->trans_b && p->accumulate == q->accumulate && p->bias == q->bias && p->alpha == q->alpha;
}

/* The cached primitive for this shape, or a new one in a free (or the oldest) slot. */
static mm_prim *find_prim(mm_ctx *c, const mm_prim *want, dnnl_status_t *s)
{
    for (int i = 0; i < c->used; i++)
        if (c->cache[i].prim && same_prim(&c->cache[i], want)) return &c->cache[i];
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

/* Runs the product (bias: want->bias's row); a failure comes before anything is written to
 * out. */
static dnnl_status_t run(mm_ctx *c, const mm_prim *want, const void *a, const void *b, const float *bias,
                         float *out)
{
    dnnl_status_t s = dnnl_success;
    mm_prim *p = find_prim(c, want, &s);
    if (!p) return s;
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, mbias = NULL;
    s = dnnl_memory_create(&ma, &p->a, c->engine, (void *)a);
    if (!s) s = dnnl_memory_create(&mb, &p->b, c->engine, (void *)b);
    if (!s) s = dnnl_memory_create(&mc, &p->c, c->engine, out);
    if (!s && p->bias) s = dnnl_memory_create(&mbias, &p->bias_md, c->engine, (void *)bias);
    if (!s) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc},
                                   {DNNL_ARG_BIAS, mbias}};
        s = dnnl_primitive_execute(p->prim, c->stream, p->bias ? 4 : 3, args);
    }
    if (!s) s = dnnl_stream_wait(c->stream);
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    if (mbias) dnnl_memory_destroy(mbias);
    return s;
}

cmcr_status mm_bf16_matmul(mm_ctx *c, const uint16_t *a, const uint16_t *b, float *out, int64_t m, int64_t n,
                        int64_t k, int trans_b, float alpha, int accumulate)
{
    mm_prim want = {.type = dnnl_bf16, .m = m, .n = n, .k = k, .trans_b = trans_b != 0,
                    .accumulate = accumulate != 0, .alpha = alpha};
    dnnl_status_t s = run(c, &want, a, b, NULL, out);
    return s ? dnnl_fail(s, "a bf16 matmul") : CMCR_OK;
}

/* mm_sgemm's contexts: one per calling thread, made on first use, freed when the thread
 * ends (the main thread's at process exit, by the system). */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static int use_blas, have_key; /* use_blas: float32 through OpenBLAS */

static void ctx_destroy(void *c) { mm_ctx_free(c); }

static void gemm_init(void)
{
    const char *e = getenv("CMCR_GEMM");
    have_key = pthread_key_create(&ctx_key, ctx_destroy) == 0;
    use_blas = (e && strcmp(e, "openblas") == 0) || !have_key;
}

const char *cmcr_gemm_backend(void)
{
    pthread_once(&ctx_once, gemm_init);
    return use_blas ? "OpenBLAS" : "oneDNN";
}

/* The implementation oneDNN picks for a 256 x 256 x 256 product of the given input type. */
static const char *impl_name(dnnl_engine_t engine, dnnl_data_type_t type, char *buf, size_t n)
{
    mm_prim p = {.type = type, .m = 256, .n = 256, .k = 256, .trans_b = 1, .alpha = 1.0f};
    dnnl_dims_t d = {256, 256};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&p.a, 2, d, type, dnnl_ab);
    if (!s) s = dnnl_memory_desc_init_by_tag(&p.b, 2, d, type, dnnl_ba);
    if (!s) s = dnnl_memory_desc_init_by_tag(&p.c, 2, d, dnnl_f32, dnnl_ab);
    if (!s) s = dnnl_matmul_desc_init(&md, &p.a, &p.b, NULL, &p.c);
    if (!s) s = dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL);
    if (!s) s = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(buf, n, "%s", !s && impl ? impl : "unavailable");
    if (pd) dnnl_primitive_desc_destroy(pd);
    return buf;
}

/* oneDNN's implementations on this CPU, found once: f32 and bf16 (bf16 "unavailable" when
 * it has none, e.g. below AVX-512). */
static char impl_f32[64], impl_bf16[64];
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void impl_init(void)
{
    dnnl_engine_t engine;
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) {
        snprintf(impl_f32, sizeof impl_f32, "unavailable");
        snprintf(impl_bf16, sizeof impl_bf16, "unavailable");
        return;
    }
    impl_name(engine, dnnl_f32, impl_f32, sizeof impl_f32);
    impl_name(engine, dnnl_bf16, impl_bf16, sizeof impl_bf16);
    dnnl_engine_destroy(engine);
}

cmcr_status mm_bf16_check(void)
{
    pthread_once(&impl_once, impl_init);
    if (strcmp(impl_bf16, "unavailable") == 0)
        return core_fail(CMCR_EINVAL, "bfloat16 products are not available on this CPU: oneDNN has no bf16 matrix "
                         "product for it (it needs AVX-512)");
    return CMCR_OK;
}

static char kernels[160];
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

static void kernels_init(void)
{
    pthread_once(&impl_once, impl_init);
    if (use_blas) snprintf(kernels, sizeof kernels, "%s", cmcr_blas_core());
    else snprintf(kernels, sizeof kernels, "float32 %s, bfloat16 %s", impl_f32, impl_bf16);
}

const char *cmcr_gemm_kernels(void)
{
    pthread_once(&ctx_once, gemm_init);
    pthread_once(&kernels_once, kernels_init);
    return kernels;
}

static mm_ctx *thread_ctx(void)
{
    mm_ctx *c = pthread_getspecific(ctx_key);
    if (!c && ctx_create(&c) == dnnl_success && pthread_setspecific(ctx_key, c) != 0) {
        mm_ctx_free(c);
        c = NULL;
    }
    return c;
}

/* A float32 product through this thread's oneDNN context; 0 when it did not run (OpenBLAS
 * chosen, k = 0, or a shape oneDNN refuses or has no memory for): then the caller's OpenBLAS
 * path does it. */
static int run_f32(const mm_prim *want, const void *a, const void *b, const float *bias, float *c)
{
    pthread_once(&ctx_once, gemm_init);
    mm_ctx *ctx = use_blas || want->k <= 0 ? NULL : thread_ctx();
    return ctx && run(ctx, want, a, b, bias, c) == dnnl_success;
}

void mm_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                const float *b, float beta, float *c)
{
    if (m <= 0 || n <= 0) return;
    mm_prim want = {.type = dnnl_f32, .m = m, .n = n, .k = k, .trans_a = trans_a != 0, .trans_b = trans_b != 0,
                    .accumulate = beta != 0.0f, .alpha = alpha};
    if ((beta == 0.0f || beta == 1.0f) && run_f32(&want, a, b, NULL, c)) return;
    blas_sgemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
}

void mm_linear(const float *x, const float *w, const float *bias, int64_t rows, int64_t in, int64_t out, float *y)
{
    if (rows <= 0 || out <= 0) return;
    mm_prim want = {.type = dnnl_f32, .m = rows, .n = out, .k = in, .trans_b = 1, .bias = 1, .alpha = 1.0f};
    if (!run_f32(&want, x, w, bias, y)) blas_linear(x, w, bias, rows, in, out, y);
}

/* Rounds a (m x k) and b (k x n) into p's scratch, as stored (transposed or not), and runs the
 * bf16 product; 0 when it did not run (then nothing was written to c). */
static int bf16_run(const mm_prec *p, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, const float *b, float beta, const float *bias, float *c)
{
    pthread_once(&ctx_once, gemm_init);
    mm_ctx *ctx = have_key && k > 0 && (beta == 0.0f || beta == 1.0f) ? thread_ctx() : NULL;
    if (!ctx) return 0;
    if (!p->a_rounded) mm_bf16_from_f32(a, p->sa, m * k);
    mm_bf16_from_f32(b, p->sb, k * n);
    mm_prim want = {.type = dnnl_bf16, .m = m, .n = n, .k = k, .trans_a = trans_a != 0, .trans_b = trans_b != 0,
                    .accumulate = beta != 0.0f, .bias = bias != NULL, .alpha = alpha};
    return run(ctx, &want, p->sa, p->sb, bias, c) == dnnl_success;
}
#endif

static _Atomic long long fallbacks; /* bf16 products that ran in float32 instead */

long long mm_prec_fallbacks(void) { return fallbacks; }

/* Whether the bf16 product ran; counts it when it was asked for and did not. */
static int ran_bf16(const mm_prec *p, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, const float *b, float beta, const float *bias, float *c)
{
    if (!p->bf16) return 0;
    if (bf16_run(p, trans_a, trans_b, m, n, k, alpha, a, b, beta, bias, c)) return 1;
    fallbacks++;
    return 0;
}

void mm_prec_gemm(const mm_prec *p, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, const float *b, float beta, float *c)
{
    if (m <= 0 || n <= 0) return;
    if (!ran_bf16(p, trans_a, trans_b, m, n, k, alpha, a, b, beta, NULL, c))
        mm_sgemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
}

void mm_prec_linear(const mm_prec *p, const float *x, const float *w, const float *bias, int64_t rows, int64_t in,
                 int64_t out, float *y)
{
    if (rows <= 0 || out <= 0) return;
    if (!ran_bf16(p, 0, 1, rows, out, in, 1.0f, x, w, 0.0f, bias, y)) mm_linear(x, w, bias, rows, in, out, y);
}

/* ------------------------------------------------------------------ OpenBLAS kernels */

const char *cmcr_blas_core(void) { return openblas_get_corename(); }
int cmcr_blas_threads(void) { return openblas_get_num_threads(); }

const char *mm_blas_pick_core(const char *current, int has_avx512, int has_avx2_fma)
{
    /* OpenBLAS's generic fallbacks for x86-64 CPUs it does not know. */
    static const char *const slow[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
                                       "Katmai", "Coppermine", "Northwood", "Banias", "Barcelona", "Opteron"};
    int is_slow = 0;
    for (size_t i = 0; i < sizeof slow / sizeof *slow; i++)
        if (current && strcmp(current, slow[i]) == 0) is_slow = 1;
    if (!is_slow) return NULL;
    if (has_avx512) return "SkylakeX";
    if (has_avx2_fma) return "Haswell";
    return NULL;
}

const char *cmcr_blas_better_core(const char *current)
{
    if (getenv("OPENBLAS_CORETYPE")) return NULL; /* never override the user's choice */
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return mm_blas_pick_core(current ? current : openblas_get_corename(), avx512, avx2);
}
