/* Stage 1's refinement (docs/method.md section 4, step c): Lloyd steps over
 * the rows of one set in standardised units, and the space they work in.
 * Shared by condense.c and refine.c only. */
#ifndef DREAM_GD_REFINE_H
#define DREAM_GD_REFINE_H

#include <stddef.h>
#include <stdint.h>

#include "storage/gd/gd.h"

#define REFINE_DEFAULT_STEPS 6

/* Features standardised with the mean and population sd of the rows taking
 * part: z = (x - mean) / sd, as float; constant columns and columns with
 * non-finite statistics are not used. */
struct refine_space {
        uint32_t dims;    /* used feature columns: coordinates per row */
        uint32_t *used;   /* their table columns */
        double *mu, *inv; /* per used column */
        float *z;         /* coordinates of the rows taking part, in set order */
};

void gd_space_release(struct refine_space *sp);
/* Mean and 1 / sd of each of the d features fcols over the rows with
 * pos[i] != UINT32_MAX (n_in of them); the columns used. */
int gd_space_scale(const struct gd_table *t, const uint32_t *fcols, uint32_t d, const uint32_t *pos,
                   uint64_t n_in, uint32_t threads, struct refine_space *sp);
/* sp->z: the coordinates of every row taking part, row pos[i] for table row i. */
int gd_space_build(const struct gd_table *t, const uint32_t *pos, uint64_t n_in, uint32_t threads,
                   struct refine_space *sp);
/* Whether a set of `groups` groups is refined in `dims` dimensions: the
 * neighbour search is quadratic in its groups. */
int gd_refine_affordable(uint32_t groups, uint32_t dims);
/* Refine the groups of one set (gid, *groups) with `steps` Lloyd iterations
 * over its rows' coordinates z (n rows of d floats); empty groups are
 * dropped and the labels made dense again. */
int gd_refine_set(const float *z, uint32_t d, uint64_t n, uint32_t steps, uint32_t *gid,
                  uint32_t *groups);
/* Values [first, first + count) of a column as doubles, as gd_table_get
 * gives them (decimals below 2^53 by one correctly rounded division). */
void gd_column_range(const struct gd_col *c, uint64_t first, uint64_t count, double *out);

#endif
