/* Preprocessing parameters (docs/method.md section 2): per column min and width. The
 * scaling itself (decimal scale, float mapping) is already in the table's
 * representation; here v becomes the code (uint64)(v - min) < 2^width. */
#include "common/err.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

int gd_prep_compute(const struct gd_table *t, struct gd_colparam *ret_params)
{
        if (t->n_rows == 0)
                return DREAM_E_EMPTY;
        for (uint32_t j = 0; j < t->n_cols; j++) {
                const int64_t *v = t->cols[j].v;
                int64_t lo = v[0], hi = v[0];
                for (uint64_t i = 1; i < t->n_rows; i++) {
                        lo = v[i] < lo ? v[i] : lo;
                        hi = v[i] > hi ? v[i] : hi;
                }
                ret_params[j].kind = t->cols[j].kind;
                ret_params[j].scale = t->cols[j].scale;
                ret_params[j].min = lo;
                ret_params[j].width = gd_width_of((uint64_t)hi - (uint64_t)lo);
        }
        return 0;
}
