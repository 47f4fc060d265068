/* cmd_synth.c - cmcr synth: write the built-in synthetic two-MCR world. */
#include <stdio.h>
#include "cli.h"

#include <math.h>
#include <string.h>

/* Defaults shown in --help are printed from cmcr_synth_default_params(), so they cannot drift. */
typedef struct synth_defaults {
    char seed[24], dim_a[24], dim_b[24], latent[24], concepts[24], clusters[24], overlap[24], memory_a[24],
        memory_b[24], test[24], oracle[24], diag[24], gap[24], mcr_noise[24], instance_noise[24], distortion[24],
        shift[24], missing_frac[24];
} synth_defaults;

static void format_defaults(const cmcr_synth_params *p, synth_defaults *d)
{
#define DI(f, v) snprintf(d->f, sizeof d->f, "%lld", (long long)(v))
#define DD(f, v) snprintf(d->f, sizeof d->f, "%g", (v))
    DI(seed, p->seed);
    DI(dim_a, p->dim_a);
    DI(dim_b, p->dim_b);
    DI(latent, p->latent);
    DI(concepts, p->concepts);
    DI(clusters, p->clusters);
    DI(overlap, p->n_overlap);
    DI(memory_a, p->n_memory_a);
    DI(memory_b, p->n_memory_b);
    DI(test, p->n_test);
    DI(oracle, p->n_oracle);
    DI(diag, p->n_diag);
    DD(gap, p->gap);
    DD(mcr_noise, p->mcr_noise);
    DD(instance_noise, p->instance_noise);
    DD(distortion, p->distortion);
    DD(shift, p->shift);
    DD(missing_frac, p->missing_frac);
#undef DI
#undef DD
}

typedef struct synth_args {
    const char *out;
    long long seed, dim_a, dim_b, latent, concepts, clusters, overlap, memory_a, memory_b, test, oracle, diag;
    double gap, mcr_noise, instance_noise, distortion, shift, missing_frac;
} synth_args;

typedef struct real_range {
    const char *flag;
    double v, lo, hi;
} real_range;

/* Ranges match the library's checks; the library checks again (and the tensor size limit). */
static int check_ranges(const synth_args *a)
{
    const long long rows = 1LL << 28;
    cli_range ints[] = {
        {"seed", a->seed, 0, 9223372036854775807LL}, {"dim-a", a->dim_a, 8, 65536}, {"dim-b", a->dim_b, 8, 65536},
        {"latent", a->latent, 2, 4096}, {"concepts", a->concepts, 2, 1000000},
        {"clusters", a->clusters, 1, a->concepts}, {"overlap", a->overlap, 1, rows},
        {"memory-a", a->memory_a, 1, rows}, {"memory-b", a->memory_b, 1, rows}, {"test", a->test, 1, rows},
        {"oracle", a->oracle, 1, rows}, {"diag", a->diag, 2, 1000000}};
    real_range reals[] = {{"gap", a->gap, 0, 10},           {"mcr-noise", a->mcr_noise, 0, 10},
                          {"instance-noise", a->instance_noise, 0, 10}, {"distortion", a->distortion, 0, 10},
                          {"shift", a->shift, 0, 5},        {"missing-frac", a->missing_frac, 0, 0.5}};
    if (cli_check_ranges("synth", ints, sizeof ints / sizeof *ints)) return 2;
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++)
        if (!isfinite(reals[i].v) || reals[i].v < reals[i].lo || reals[i].v > reals[i].hi)
            return cli_error("synth", 2, "--%s must be between %g and %g (got %g)", reals[i].flag, reals[i].lo,
                             reals[i].hi, reals[i].v);
    return 0;
}

static cmcr_synth_params to_params(const synth_args *a)
{
    cmcr_synth_params p = cmcr_synth_default_params();
    p.seed = (uint64_t)a->seed;
    p.dim_a = a->dim_a;
    p.dim_b = a->dim_b;
    p.latent = a->latent;
    p.concepts = a->concepts;
    p.clusters = a->clusters;
    p.n_overlap = a->overlap;
    p.n_memory_a = a->memory_a;
    p.n_memory_b = a->memory_b;
    p.n_test = a->test;
    p.n_oracle = a->oracle;
    p.n_diag = a->diag;
    p.gap = a->gap;
    p.mcr_noise = a->mcr_noise;
    p.instance_noise = a->instance_noise;
    p.distortion = a->distortion;
    p.shift = a->shift;
    p.missing_frac = a->missing_frac;
    return p;
}

static void print_summary(const cmcr_world *w, const char *dir, double gen_s, double save_s)
{
    const cmcr_synth_params *p = &w->params;
    printf("wrote the synthetic two-MCR world (seed %llu) to %s (generated in %.2f s, saved in %.2f s)\n",
           (unsigned long long)p->seed, dir, gen_s, save_s);
    printf("  MCR A: X and S, width %lld; MCR B: S and Y, width %lld; %lld concepts in %lld clusters, latent %lld\n",
           (long long)p->dim_a, (long long)p->dim_b, (long long)p->concepts, (long long)p->clusters,
           (long long)p->latent);
    printf("  overlap %lld (S in A and in B), memory_a %lld (X), memory_b %lld (Y), %lld concepts missing from each "
           "memory\n", (long long)p->n_overlap, (long long)p->n_memory_a, (long long)p->n_memory_b,
           (long long)w->n_missing);
    printf("  test %lld (X, Y) pairs, oracle %lld (X, Y) pairs\n", (long long)p->n_test, (long long)p->n_oracle);
    printf("  modality gap in A: matching X-S pairs cos %.2f, same-modality neighbours (same concept) cos %.2f "
           "(non-matching X-S "
           "%.2f)\n", w->gap_cos_pair_a, w->gap_cos_same_a, w->gap_cos_cross_a);
    printf("  modality gap in B: matching S-Y pairs cos %.2f, same-modality neighbours (same concept) cos %.2f "
           "(non-matching S-Y "
           "%.2f)\n", w->gap_cos_pair_b, w->gap_cos_same_b, w->gap_cos_cross_b);
    if (isfinite(w->ab_cos))
        printf("  A vs B, same item: cos %.2f (unrelated spaces: no connection before training)\n", w->ab_cos);
}

int cmd_synth(int argc, char **argv)
{
    cmcr_synth_params dp = cmcr_synth_default_params();
    synth_defaults d;
    synth_args a;
    format_defaults(&dp, &d);
    cli_opt opts[] = {
        {"out", OPT_STR, &a.out, NULL, "output directory (created if missing)"},
        {"seed", OPT_INT, &a.seed, d.seed, "random seed (the same seed gives the same files)"},
        {"dim-a", OPT_INT, &a.dim_a, d.dim_a, "embedding width of MCR A"},
        {"dim-b", OPT_INT, &a.dim_b, d.dim_b, "embedding width of MCR B"},
        {"latent", OPT_INT, &a.latent, d.latent, "dimension of the shared latent semantics"},
        {"concepts", OPT_INT, &a.concepts, d.concepts, "number of concepts (classes)"},
        {"clusters", OPT_INT, &a.clusters, d.clusters, "clusters of confusable concepts"},
        {"overlap", OPT_INT, &a.overlap, d.overlap, "overlap items (S embedded by both MCRs)"},
        {"memory-a", OPT_INT, &a.memory_a, d.memory_a, "unpaired X embeddings in A"},
        {"memory-b", OPT_INT, &a.memory_b, d.memory_b, "unpaired Y embeddings in B"},
        {"test", OPT_INT, &a.test, d.test, "held-out (X, Y) test pairs"},
        {"oracle", OPT_INT, &a.oracle, d.oracle, "(X, Y) pairs for the paired-oracle baseline"},
        {"diag", OPT_INT, &a.diag, d.diag, "diagnostic items used to measure the modality gap"},
        {"gap", OPT_DOUBLE, &a.gap, d.gap, "cone offset of each modality (1: matching pair cos ~0.3 as in CLIP; 0: none)"},
        {"distortion", OPT_DOUBLE, &a.distortion, d.distortion,
         "per-modality anisotropic distortion and nuisance (0: the gap is a pure shift)"},
        {"mcr-noise", OPT_DOUBLE, &a.mcr_noise, d.mcr_noise, "misalignment inside each MCR (0: perfect MCRs)"},
        {"instance-noise", OPT_DOUBLE, &a.instance_noise, d.instance_noise, "variation of items within a concept"},
        {"shift", OPT_DOUBLE, &a.shift, d.shift, "concept-proportion shift between sets (0: all uniform)"},
        {"missing-frac", OPT_DOUBLE, &a.missing_frac, d.missing_frac,
         "fraction of concepts absent from each memory (disjoint for A and B; at most 0.5)"},
        {0}};
    cli_cmd cmd = {"synth", "", "Write the built-in synthetic two-MCR world (MCR A: X and S; MCR B: S and Y) as "
                   ".npy files plus world.json; see docs/synthetic-world.md.", 0, opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc >= 0) return rc;
    rc = check_ranges(&a);
    if (rc) return rc;
    cmcr_synth_params p = to_params(&a);
    cmcr_world w;
    double t0 = cmcr_now_seconds();
    if (cmcr_synth_generate(&p, &w)) return cli_fail("synth");
    double t1 = cmcr_now_seconds();
    if (cmcr_world_save(&w, a.out)) {
        cmcr_world_free(&w);
        return cli_fail("synth");
    }
    print_summary(&w, a.out, t1 - t0, cmcr_now_seconds() - t1);
    cmcr_world_free(&w);
    return 0;
}
