/* fuzz_clip_config.c - libFuzzer target: a Hugging Face config.json from memory through
 * clip_config_activations, the reader that decides the CLIP towers' activation (cJSON, the
 * text_config / vision_config sections and their legacy *_config_dict, hidden_act). On
 * success both activations must be one of the two the towers run; on failure the message
 * must be one line naming the input. fuzz/make_seeds.sh writes the seeds. */
#include "fuzz_common.h"
#include "encoders/clip.h"

#include <string.h>

static int known(const char *a) { return a && (strcmp(a, "quick_gelu") == 0 || strcmp(a, "gelu") == 0); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *vis = NULL, *txt = NULL;
    cmcr_status st = clip_config_activations((const char *)data, size, "config.json", &vis, &txt);
    if (st == CMCR_OK && !(known(vis) && known(txt))) abort();
    if (st != CMCR_OK) {
        const char *msg = cmcr_last_error();
        if (vis || txt || strncmp(msg, "config.json: ", 13) != 0 || strchr(msg, '\n')) abort();
    }
    return 0;
}
