/* gallery.h - the gallery file's names (docs/search.md), for gallery.c and the tests. The
 * public calls are cmcr_gallery_* in include/cmcr.h. */
#ifndef CMCR_SEARCH_GALLERY_H
#define CMCR_SEARCH_GALLERY_H

#define GALLERY_FORMAT "cmcr-gallery"
#define GALLERY_VERSION "1"

/* The tensors, in the order they are written (embeddings first: their data starts at an
 * offset that is a multiple of 8, so a mapped gallery's rows are float-aligned). */
#define GALLERY_EMBEDDINGS "embeddings"     /* F32 [N, D] */
#define GALLERY_HASH "content_hash"         /* I64 [N], the u64 bits of cmcr_fingerprint_path */
#define GALLERY_SIZE "size"                 /* I64 [N] */
#define GALLERY_MTIME "mtime_ns"            /* I64 [N] */
#define GALLERY_MODALITY "modality"         /* I32 [N], cmcr_modality */
#define GALLERY_PATHS "paths"               /* U8 [bytes]: N absolute paths, each ending with NUL */

/* The metadata the writer sets itself; the rest is the caller's. */
#define GALLERY_META_FORMAT "format"
#define GALLERY_META_VERSION "version"
#define GALLERY_META_DIM "dim"
#define GALLERY_META_ROWS "rows"

#endif
