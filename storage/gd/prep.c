/* Preprocessing parameters (docs/method.md section 2): per column min and width. The
 * scaling itself (decimal scale, float mapping) is already in the table's
 * representation; here v becomes the code (uint64)(v - min) < 2^width. */
#include "common/err.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

int gd_prep_compute_rows(const struct gd_table *t, const uint8_t *skip,
                         struct gd_colparam *ret_params)
{
        if (t->n_rows == 0)
                return DREAM_E_EMPTY;
        for (uint32_t j = 0; j < t->n_cols; j++) {
                const int64_t *v = t->cols[j].v;
                int64_t lo = INT64_MAX, hi = INT64_MIN;
                for (uint64_t i = 0; i < t->n_rows; i++) {
                        if (skip && skip[i])
                                continue;
                        lo = v[i] < lo ? v[i] : lo;
                        hi = v[i] > hi ? v[i] : hi;
                }
                if (lo > hi)
                        return DREAM_E_EMPTY; /* every row skipped */
                ret_params[j].kind = t->cols[j].kind;
                ret_params[j].scale = t->cols[j].scale;
                ret_params[j].min = lo;
                ret_params[j].width = gd_width_of((uint64_t)hi - (uint64_t)lo);
        }
        return 0;
}

int gd_prep_compute(const struct gd_table *t, struct gd_colparam *ret_params)
{
        return gd_prep_compute_rows(t, NULL, ret_params);
}
