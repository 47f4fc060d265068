/* report.c - cmcr demo's self-contained HTML report: the results table drawn as SVG bars and
 * the training-loss curves, with no script and no network access. */
#define _GNU_SOURCE /* open_memstream */
#include <stdio.h>
#include "cli.h"
#include "demo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void demo_curve_push(demo_curve *c, double loss)
{
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 256;
        double *p = realloc(c->loss, sizeof(double) * (size_t)cap);
        if (!p) return; /* the curve is illustrative: a dropped point is not an error */
        c->loss = p;
        c->cap = cap;
    }
    c->loss[c->n++] = loss;
}

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                                      "#7f7f7f", "#bcbd22"};

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

/* Horizontal bars of X->Y and Y->X Recall@k for every row. */
static void bars_svg(FILE *f, const demo_row *rows, int n, int k)
{
    static const char *const knames[3] = {"1", "5", "10"};
    int h = 34 * n + 50, left = 260, width = 420;
    fprintf(f, "<h3>Recall@%s (%%)</h3>\n<svg width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            knames[k], left + width + 80, h);
    for (int g = 0; g <= 4; g++) {
        int x = left + g * width / 4;
        fprintf(f, "<line x1=\"%d\" y1=\"20\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/><text x=\"%d\" y=\"14\" "
                   "text-anchor=\"middle\">%d</text>\n", x, x, h - 25, x, g * 25);
    }
    for (int i = 0; i < n; i++) {
        int y = 24 + 34 * i;
        double v[2] = {rows[i].xy.recall[k], rows[i].yx.recall[k]};
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, y + 18);
        html_escape(f, rows[i].name);
        fputs("</text>\n", f);
        for (int d = 0; d < 2; d++)
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"13\" fill=\"%s\"/><text x=\"%.1f\" y=\"%d\">"
                       "%.1f</text>\n", left, y + 14 * d, width * v[d], d ? "#ff7f0e" : "#1f77b4",
                    left + width * v[d] + 4, y + 11 + 14 * d, 100 * v[d]);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"10\" fill=\"#1f77b4\"/><text x=\"%d\" y=\"%d\">X -&gt; Y"
               "</text><rect x=\"%d\" y=\"%d\" width=\"12\" height=\"10\" fill=\"#ff7f0e\"/><text x=\"%d\" y=\"%d\">"
               "Y -&gt; X</text>\n</svg>\n",
            left, h - 16, left + 16, h - 7, left + 90, h - 16, left + 106, h - 7);
}

static void curves_svg(FILE *f, const demo_curve *c, int n)
{
    int W = 700, H = 320, L = 50, B = 30;
    double lo = INFINITY, hi = -INFINITY;
    int64_t maxn = 1;
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < c[i].n; j++) {
            lo = fmin(lo, c[i].loss[j]);
            hi = fmax(hi, c[i].loss[j]);
            maxn = c[i].n > maxn ? c[i].n : maxn;
        }
    if (!(hi > lo)) hi = lo + 1;
    fprintf(f, "<h3>Training loss per step</h3>\n<svg width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>"
               "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n"
               "<text x=\"4\" y=\"16\">%.2f</text><text x=\"4\" y=\"%d\">%.2f</text><text x=\"%d\" y=\"%d\" "
               "text-anchor=\"end\">step %lld</text>\n",
            W + 220, H, L, L, H - B, L, H - B, W, H - B, hi, H - B, lo, W, H - 8, (long long)maxn);
    for (int i = 0; i < n; i++) {
        fprintf(f, "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"%s\" points=\"", palette[i % 9]);
        for (int64_t j = 0; j < c[i].n; j++)
            fprintf(f, "%.1f,%.1f ", L + (double)(W - L) * (double)j / (double)(maxn > 1 ? maxn - 1 : 1),
                    10 + (H - B - 10) * (hi - c[i].loss[j]) / (hi - lo));
        fprintf(f, "\"/>\n<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
                W + 12, 20 + 18 * i, palette[i % 9], W + 28, 25 + 18 * i);
        html_escape(f, c[i].name);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
}

static void table_html(FILE *f, const demo_row *rows, int n)
{
    fputs("<table>\n<tr><th>method</th><th>X&rarr;Y R@1</th><th>R@5</th><th>R@10</th><th>Y&rarr;X R@1</th><th>R@5</th>"
          "<th>R@10</th></tr>\n", f);
    for (int i = 0; i < n; i++) {
        fputs("<tr><td>", f);
        html_escape(f, rows[i].name);
        fputs("</td>", f);
        for (int k = 0; k < 3; k++) fprintf(f, "<td>%.2f</td>", 100 * rows[i].xy.recall[k]);
        for (int k = 0; k < 3; k++) fprintf(f, "<td>%.2f</td>", 100 * rows[i].yx.recall[k]);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void write_html(FILE *f, const demo_opts *o, const cmcr_world *w, const demo_row *rows, int nrows,
                       const demo_curve *curves, int ncurves)
{
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cmcr demo</title>\n<style>body{font-family:"
          "sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px "
          "solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left;white-space:pre}</style>"
          "</head><body>\n<h1>cmcr demo: C-MCR on the built-in two-MCR world</h1>\n", f);
    fprintf(f, "<p>World seed %llu: %lld overlap pairs, memories of %lld and %lld rows, %lld held-out X-Y test pairs, "
               "widths %lld and %lld. Modality gap in A: matching X-S pairs cos %.2f vs same-modality neighbours "
               "%.2f. Projectors: preset %s, %lld epochs, batch %lld.</p>\n",
            (unsigned long long)o->world.seed, (long long)w->overlap_a.rows, (long long)w->memory_a.rows,
            (long long)w->memory_b.rows, (long long)w->test_x.rows, (long long)w->overlap_a.cols,
            (long long)w->overlap_b.cols, w->gap_cos_pair_a, w->gap_cos_same_a, o->preset, (long long)o->train.epochs,
            (long long)o->train.batch);
    table_html(f, rows, nrows);
    for (int k = 0; k < 3; k++) bars_svg(f, rows, nrows, k);
    curves_svg(f, curves, ncurves);
    fputs("</body></html>\n", f);
}

int demo_write_report(const demo_opts *o, const cmcr_world *w, const demo_row *rows, int nrows,
                      const demo_curve *curves, int ncurves)
{
    if (cmcr_mkdir_p(o->report_dir))
        return cli_error("demo", 1, "cannot create the report directory: %s", cmcr_last_error());
    char *html = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&html, &len);
    if (!mem) return cli_error("demo", 1, "out of memory writing the report");
    write_html(mem, o, w, rows, nrows, curves, ncurves);
    fclose(mem);
    char path[4200];
    snprintf(path, sizeof path, "%s/index.html", o->report_dir);
    int rc = cmcr_write_file(path, html, len) ? cli_fail("demo") : 0;
    free(html);
    return rc;
}
