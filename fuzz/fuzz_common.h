/* fuzz_common.h - shared by the libFuzzer targets. Each input is parsed straight from memory:
 * through the public loaders from a buffer (cmcr_tensors_load_memory, cmcr_model_load_memory)
 * and, for the streaming .npy reader, a read-only stream over the buffer (file_open_memory). */
#ifndef CMCR_FUZZ_COMMON_H
#define CMCR_FUZZ_COMMON_H
#include "cmcr.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#endif
