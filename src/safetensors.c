/* PLACEHOLDER, to be replaced by the real implementation. */
#include "internal.h"
cmcr_status cmcr_safetensors_load(const char *path, cmcr_tensors **out) { *out = NULL; return cmcr_fail(CMCR_EUNSUPPORTED, "%s: safetensors not implemented yet", path); }
cmcr_status cmcr_safetensors_save(const cmcr_tensors *ts, const char *path) { (void)ts; return cmcr_fail(CMCR_EUNSUPPORTED, "%s: safetensors not implemented yet", path); }
