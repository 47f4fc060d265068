/* fuzz_image.c - libFuzzer target: an arbitrary file through the image decoder (JPEG or PNG,
 * image_decode_memory), then the CLIP crop at two sizes and the float conversion. */
#include "fuzz_common.h"
#include "media/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    image_rgb im;
    if (image_decode_memory(data, size, "input.img", &im) != CMCR_OK) {
        if (im.pixels) abort(); /* a refusal leaves nothing behind */
        return 0;
    }
    if (im.width < 1 || im.height < 1) abort();
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    enum { S = 224 };
    uint8_t *crop = malloc(S * S * 3);
    float *chw = malloc(3 * S * S * sizeof(float));
    if (crop && chw && image_clip_crop(&im, S, "input.img", crop) == CMCR_OK) image_to_chw(crop, S, mean, std, chw);
    if (crop) (void)image_clip_crop(&im, 5, "input.img", crop); /* a downscale for most inputs */
    free(chw);
    free(crop);
    image_rgb_free(&im);
    return 0;
}
