/* eval.h - evaluation internals shared with the tests. */
#ifndef CMCR_MCR_EVAL_H
#define CMCR_MCR_EVAL_H

#include "runtime/core.h"

/* For the tests: the same as cmcr_eval_retrieval with explicit
 * block sizes, so that small inputs exercise block edges and the shrinking of query blocks. */
cmcr_status eval_retrieval_blocked(const float *queries, int64_t nq, const float *gallery, int64_t ng,
                                   int64_t dim, const int64_t *query_labels, const int64_t *gallery_labels,
                                   int64_t query_block, int64_t gallery_block, int64_t rel_budget,
                                   const cmcr_retrieval_params *params, cmcr_retrieval_metrics *out);

#endif
