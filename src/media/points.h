/* points.h - point clouds from files (.npy, the C-MCR demo's pickled-dict .npy, PLY, text)
 * and the checks every cloud passes (internal; docs/points.md has the formats, rules and
 * every refusal). */
#ifndef CMCR_MEDIA_POINTS_H
#define CMCR_MEDIA_POINTS_H

#include "runtime/core.h"

#define POINTS_MIN 32       /* fewer points than one neighbourhood: refused */
#define POINTS_MAX 10000000 /* more points than this: refused before anything is allocated for them */
/* The largest |value| a cloud may hold: squared distances between such points (2e18 squared,
 * times three) still fit in float32, as the grouping computes them. */
#define POINTS_MAX_ABS 1e18f
/* The largest file points_read_file reads (whole, into memory): 10M points of 6 columns of
 * text take about 1.5 GB. Larger files are refused (CMCR_ENOMEM) before they are read. */
#define POINTS_MAX_FILE_BYTES ((uint64_t)2 << 30)

typedef struct point_cloud {
    float *v;    /* n x width floats, row-major: x y z [r g b] per point; malloc'd */
    int64_t n;   /* points */
    int width;   /* 3 (xyz) or 6 (xyz + rgb, or xyz + normals from 6-column text) */
} point_cloud;


/* Read a cloud from a file; the format from its content, not its name: "\x93NUMPY" a .npy
 * (N x 3 or N x 6 float32/float64, or a 0-d object array holding a pickled dict with 'xyz'),
 * "ply\n" a PLY file, anything else text. Every failure is one line naming the file:
 * CMCR_EFORMAT malformed, CMCR_EUNSUPPORTED well-formed but not supported (a dtype other than
 * float32/float64, ...), CMCR_ESHAPE a shape that is no cloud (N x 4, fewer than POINTS_MIN
 * points), CMCR_EVALUE NaN/Inf or all points equal, CMCR_EIO I/O, CMCR_ENOMEM limits. On
 * success *out holds a cloud that passed points_check (free with points_free); on failure
 * *out is empty ({NULL, 0, 0}). */
cmcr_status points_read_file(const char *path, point_cloud *out);
/* The same from len bytes in memory (not modified, not kept); name is what messages call it. */
cmcr_status points_read_memory(const void *data, size_t len, const char *name, point_cloud *out);
/* Free pc's values and empty it; NULL or an empty cloud is fine. */
void points_free(point_cloud *pc);
/* The checks every cloud passes (also for clouds handed in through the API): width 3 or 6
 * (CMCR_ESHAPE); POINTS_MIN <= n (CMCR_ESHAPE) and n <= POINTS_MAX (CMCR_ENOMEM); every value
 * finite (CMCR_EVALUE, naming the first bad point index and column); not degenerate (all
 * points' xyz equal: CMCR_EVALUE). name is what messages call the cloud. */
cmcr_status points_check(const float *v, int64_t n, int width, const char *name);
/* Keep only x, y, z of each point (width 6 -> 3, in place; the memory is not shrunk): for
 * 6-column text whose last 3 columns are normals (ModelNet40), not colour. */
void points_keep_xyz(point_cloud *pc);

#endif
