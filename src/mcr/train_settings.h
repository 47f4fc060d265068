/* train_settings.h - the training settings: one line per scalar field of cmcr_train_params.
 *
 * Defaults (cmcr_train_default_params), validation (cmcr_trainer_new), the parameters' JSON in
 * checkpoints and models, and through cmcr_train_settings() the command line's flags, parsing
 * and --help are all generated from this table. A new setting is one field in
 * cmcr_train_params (include/cmcr.h) plus one line here.
 *
 * X(name, type, default, lo, hi, flag, words, stored, help)
 *   name     the field of cmcr_train_params, and its key in the JSON
 *   type     I64 (int64_t), INT (int), DOUBLE or BOOL (int, 0 or 1): checked against the
 *            field's C type at compile time (settings.c)
 *   lo, hi   the valid range, inclusive (HUGE_VAL: no upper bound)
 *   flag     the command-line flag, without "--"
 *   words    BOOL only: WORDS(w0, w1), the flag takes the word for 0 or for 1 (--schedule
 *            constant|cosine); NO_WORDS: the flag takes no value and sets the opposite of the
 *            default (--no-consistency turns consistency off, --intra-squared turns it on)
 *   stored   1: part of the JSON that defines a run's mathematics (checkpoints compare it);
 *            0: how or where this run works (threads, checkpoint interval)
 *   help     the flag's --help text
 * The JSON follows the table's order (stored ones), --help too (stored, then the others).
 *
 * Not in the table, because they are not one scalar each: shape_a, shape_b (head shapes,
 * from a preset and overrides), seed (uint64; a JSON string, as numbers lose 64-bit
 * precision), checkpoint_path and cache_dir (paths the program derives), mpi_comm. */
#ifndef CMCR_TRAIN_SETTINGS_H
#define CMCR_TRAIN_SETTINGS_H
#include "cmcr.h"

#define TRAIN_SETTINGS(X) \
    X(tau_mem, DOUBLE, 0.01, 1e-6, 1e6, "tau-mem", NO_WORDS, 1, \
      "memory aggregation temperature (semantic consistency)") \
    X(agg_top_k, I64, 0, 0, HUGE_VAL, "top-k", NO_WORDS, 1, \
      "aggregate only the k most similar memory rows (0 = full softmax)") \
    X(sigma2, DOUBLE, 0.004, 0, 100, "sigma2", NO_WORDS, 1, \
      "variance of the Gaussian noise (semantic completion)") \
    X(tau, DOUBLE, 0.01, 1e-6, 1e6, "tau", NO_WORDS, 1, "InfoNCE temperature") \
    X(lambda_intra, DOUBLE, 0.1, 0, 1e6, "lambda", NO_WORDS, 1, "weight of the intra-MCR alignment loss") \
    X(consistency, BOOL, 1, 0, 1, "no-consistency", NO_WORDS, 1, \
      "ablation: use s itself instead of memory aggregation") \
    X(completion, BOOL, 1, 0, 1, "no-completion", NO_WORDS, 1, "ablation: no noise on the inputs") \
    X(intra, BOOL, 1, 0, 1, "no-intra", NO_WORDS, 1, "ablation: no intra-MCR alignment loss") \
    X(pseudo_pair, BOOL, 1, 0, 1, "no-pseudo-pair", NO_WORDS, 1, \
      "ablation: no InfoNCE on the pseudo pair (x_A, y_B)") \
    X(intra_squared, BOOL, 0, 0, 1, "intra-squared", NO_WORDS, 1, "squared L2 distance in the intra loss") \
    X(batch, I64, 4096, 2, HUGE_VAL, "batch", NO_WORDS, 1, \
      "batch size (capped at the overlap rows; the last partial batch of an epoch is dropped)") \
    X(epochs, I64, 20, 1, HUGE_VAL, "epochs", NO_WORDS, 1, "passes over the overlap set") \
    X(lr, DOUBLE, 1e-3, 1e-12, 10, "lr", NO_WORDS, 1, "peak learning rate") \
    X(warmup_steps, I64, 0, 0, HUGE_VAL, "warmup", NO_WORDS, 1, "linear warm-up steps") \
    X(cosine, BOOL, 1, 0, 1, "schedule", WORDS("constant", "cosine"), 1, \
      "learning-rate schedule after warm-up: cosine or constant") \
    X(min_lr, DOUBLE, 0, 0, 10, "min-lr", NO_WORDS, 1, "final learning rate of the cosine schedule") \
    X(weight_decay, DOUBLE, 0, 0, 10, "weight-decay", NO_WORDS, 1, "weight decay on Linear weights") \
    X(adamw, BOOL, 0, 0, 1, "optimizer", WORDS("adam", "adamw"), 1, \
      "adam (L2 in the gradient) or adamw (decoupled decay)") \
    X(beta1, DOUBLE, 0.9, 0, 0.999999, "beta1", NO_WORDS, 1, "Adam beta1") \
    X(beta2, DOUBLE, 0.999, 0, 0.999999999, "beta2", NO_WORDS, 1, "Adam beta2") \
    X(adam_eps, DOUBLE, 1e-8, 1e-30, 1, "adam-eps", NO_WORDS, 1, "Adam epsilon") \
    X(bn_momentum, DOUBLE, 0.1, 0, 1, "bn-momentum", NO_WORDS, 1, "BatchNorm running-statistics momentum") \
    X(bf16, BOOL, 0, 0, 1, "precision", WORDS("f32", "bf16"), 1, \
      "matrix products of the step and of memory aggregation: f32, or bf16 (bfloat16 inputs, float32 sums and " \
      "results, everything else float32; about 1.7x faster with AVX512-BF16; aggregation with --top-k stays f32; " \
      "needs oneDNN, see cmcr info)") \
    X(threads, INT, 0, 0, 65536, "threads", NO_WORDS, 0, "threads for BLAS and OpenMP (0 = all cores)") \
    X(checkpoint_every, I64, 50, 0, HUGE_VAL, "checkpoint-every", NO_WORDS, 0, \
      "steps between checkpoints (0 = only at the end)")

/* A setting's field in p, and its value as a double (exact for integers within 2^53). */
void *train_setting_field(const cmcr_setting *s, cmcr_train_params *p);
double train_setting_value(const cmcr_setting *s, const cmcr_train_params *p);
/* CMCR_EINVAL naming the first setting of p outside its range. */
cmcr_status train_check_settings(const cmcr_train_params *p);
#endif
