/* demo.h - shared between cmcr demo and its HTML report. */
#ifndef CMCR_DEMO_H
#define CMCR_DEMO_H
#include "cmcr.h"
#include <stdio.h>

typedef struct demo_opts {
    cmcr_synth_params world;
    cmcr_train_params train;
    const char *report_dir, *preset;
} demo_opts;

typedef struct demo_row {
    char name[64];
    cmcr_retrieval_metrics xy, yx;
    double seconds;
} demo_row;

/* Loss per step of one training run. */
typedef struct demo_curve {
    char name[64];
    double *loss;
    int64_t n, cap;
} demo_curve;

void demo_curve_push(demo_curve *c, double loss);
/* Write DIR/index.html: the table as SVG bars and the loss curves, self-contained. */
int demo_write_report(const demo_opts *o, const cmcr_world *w, const demo_row *rows, int nrows,
                      const demo_curve *curves, int ncurves);
#endif
