/* localise.c - the space, the CLIP side and the map that cmcr localise and cmcr eval
 * localisation share (localise.h). */
#include <stdio.h>
#include "localise.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

void loc_space_opts(loc_flags *f, bool texts, cli_opt *opts, int *n)
{
    opts[(*n)++] = (cli_opt){"model", OPT_STR, &f->model, NULL, "the C-MCR connection (.safetensors or .pt), e.g. "
                             "clap_clip.pt (side a LAION-CLAP, side b CLIP)"};
    opts[(*n)++] = (cli_opt){"encoder-a", OPT_STR, &f->encoder[0], "", "side a's encoder checkpoint (CLIP, LAION-CLAP "
                             "or ULIP's PointBERT)"};
    opts[(*n)++] = (cli_opt){"encoder-b", OPT_STR, &f->encoder[1], "", "side b's encoder checkpoint"};
    if (texts) {
        opts[(*n)++] = (cli_opt){"tokenizer-a", OPT_STR, &f->tokenizer[0], "", "side a's tokenizer; default: found "
                                 "beside its weights"};
        opts[(*n)++] = (cli_opt){"tokenizer-b", OPT_STR, &f->tokenizer[1], "", "side b's tokenizer; default: found "
                                 "beside its weights"};
        opts[(*n)++] = (cli_opt){"text-side", OPT_STR, &f->text_side, "", "a or b: the side whose text tower embeds "
                                 "--text; default: the first side whose encoder has one"};
    }
    opts[(*n)++] = (cli_opt){"precision", OPT_STR, &f->precision, "f32", "f32 or bf16 products in the encoders"};
    opts[(*n)++] = (cli_opt){"batch", OPT_INT, &f->batch, "16", "inputs per forward pass"};
    opts[(*n)++] = (cli_opt){"seed", OPT_INT, &f->seed, "0", "LAION-CLAP's chunk starts of clips longer than 10 s "
                             "(docs/audio.md)"};
    opts[(*n)++] = (cli_opt){"quiet", OPT_FLAG, &f->quiet, "", "no progress or summary lines on stderr"};
}

int loc_open(const char *cmd, const loc_flags *f, space *s, loc_grid *g)
{
    *g = (loc_grid){.side = -1};
    if (cli_check_precision(cmd, f->precision)) return 2;
    cli_range r[] = {{"batch", f->batch, 1, 4096}, {"seed", f->seed, 0, LLONG_MAX}};
    if (cli_check_ranges(cmd, r, 2)) return 2;
    space_opts o = {.cmd = cmd, .model = f->model, .encoder = {f->encoder[0], f->encoder[1]},
                    .tokenizer = {f->tokenizer[0], f->tokenizer[1]}, .text_side = f->text_side,
                    .precision = f->precision, .batch = f->batch, .seed = f->seed, .quiet = f->quiet};
    if (space_open(&o, s)) return 1;
    int side = space_side_of(s, CMCR_IMAGE);
    if (side < 0)
        return cli_error(cmd, 2, "localisation needs a CLIP side (the image's patches come from it): give CLIP "
                         "weights as --encoder-a or --encoder-b (side b of clap_clip.pt)");
    if (space_load_side(s, side)) return 1;
    int32_t p = space_patches(s), k = 1;
    while ((k + 1) * (k + 1) <= p) k++;
    if (k * k != p) return cli_error(cmd, 1, "%s: %d patches per image do not make a square grid", f->encoder[side], p);
    *g = (loc_grid){side, k, k, cmcr_clip_get_info(s->enc[side].m).image_size};
    return 0;
}

void loc_map(const space *s, const loc_grid *g, const float *query, const float *patches, float *map)
{
    cmcr_localise_map(query, patches, g->gh, g->gw, s->dim, map);
}

int loc_read_file(const char *cmd, const char *path, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return encode_path_error(cmd, "%s: cannot open", path);
    size_t cap = 0, n = 0, got;
    unsigned char chunk[65536];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n + got > cap) {
            cap = (n + got) * 2;
            unsigned char *b = realloc(*buf, cap);
            if (!b) {
                fclose(f);
                free(*buf);
                *buf = NULL;
                return encode_path_error(cmd, "%s: out of memory reading it", path);
            }
            *buf = b;
        }
        memcpy(*buf + n, chunk, got);
        n += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(*buf);
        *buf = NULL;
        return encode_path_error(cmd, "%s: read error", path);
    }
    *len = n;
    return 0;
}
