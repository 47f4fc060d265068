/* PLACEHOLDER, to be replaced by the real implementation. */
#include "internal.h"
cmcr_status cmcr_npy_load(const char *path, cmcr_tensors **out) { *out = NULL; return cmcr_fail(CMCR_EUNSUPPORTED, "%s: npy not implemented yet", path); }
cmcr_status cmcr_npy_save(const cmcr_tensor *t, const char *path) { (void)t; return cmcr_fail(CMCR_EUNSUPPORTED, "%s: npy not implemented yet", path); }
cmcr_status cmcr_npy_reader_open(const char *path, cmcr_npy_reader **out) { *out = NULL; return cmcr_fail(CMCR_EUNSUPPORTED, "%s: npy not implemented yet", path); }
int64_t cmcr_npy_reader_rows(const cmcr_npy_reader *r) { (void)r; return 0; }
int64_t cmcr_npy_reader_cols(const cmcr_npy_reader *r) { (void)r; return 0; }
cmcr_status cmcr_npy_reader_read(cmcr_npy_reader *r, float *out, int64_t max_rows, int64_t *got) { (void)r; (void)out; (void)max_rows; *got = 0; return CMCR_EUNSUPPORTED; }
void cmcr_npy_reader_close(cmcr_npy_reader *r) { (void)r; }
cmcr_status cmcr_npy_writer_open(const char *path, int64_t cols, cmcr_npy_writer **out) { (void)cols; *out = NULL; return cmcr_fail(CMCR_EUNSUPPORTED, "%s: npy not implemented yet", path); }
cmcr_status cmcr_npy_writer_write(cmcr_npy_writer *w, const float *rows, int64_t n) { (void)w; (void)rows; (void)n; return CMCR_EUNSUPPORTED; }
cmcr_status cmcr_npy_writer_commit(cmcr_npy_writer *w) { (void)w; return CMCR_EUNSUPPORTED; }
void cmcr_npy_writer_abort(cmcr_npy_writer *w) { (void)w; }
