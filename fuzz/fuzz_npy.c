/* fuzz_npy.c - libFuzzer target: an arbitrary .npy file through the whole-array loader
 * (cmcr_tensors_load_memory) and the streaming float32 row reader (cmcr_npy_reader_*). */
#include "cmcr.h"
#include "fuzz_common.h"
#include "io/io.h"
#include "runtime/file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{

    cmcr_tensors *ts = NULL;
    if (cmcr_tensors_load_memory(data, size, CMCR_FORMAT_NPY, "input.npy", &ts) == CMCR_OK) {
        size_t sum = 0;
        for (size_t i = 0; i < cmcr_tensors_count(ts); i++) {
            const cmcr_tensor *t = cmcr_tensors_at(ts, i);
            for (size_t b = 0; b < t->nbytes; b++) sum += ((const unsigned char *)t->data)[b];
        }
        (void)sum;
    }
    cmcr_tensors_free(ts);

    cmcr_npy_reader *r = NULL;
    FILE *f = file_open_memory(data, size);
    if (f && npy_reader_open_stream(f, "input.npy", &r) == CMCR_OK) {
        int64_t rows = cmcr_npy_reader_rows(r), cols = cmcr_npy_reader_cols(r);
        /* The reader checks the data against the file size, so cols is bounded by the input
         * unless rows == 0; cap the buffer anyway so that the harness never asks for more
         * than the file could hold. */
        if (rows >= 0 && cols >= 0 && cols <= (1 << 20)) {
            const int64_t block = 3; /* odd block size: exercises partial blocks */
            float *buf = malloc((size_t)(block * (cols ? cols : 1)) * sizeof(float));
            int64_t got = 0, total = 0;
            if (buf) {
                while (cmcr_npy_reader_read(r, buf, block, &got) == CMCR_OK && got > 0) {
                    total += got;
                    if (total > rows) abort(); /* more rows than the header promised */
                }
            }
            free(buf);
        }
        cmcr_npy_reader_close(r);
    }
    return 0;
}
