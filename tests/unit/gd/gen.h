/* Generated tables for the codec tests, from a fixed seed. */
#ifndef DREAM_TEST_GD_GEN_H
#define DREAM_TEST_GD_GEN_H

#include <stdint.h>

#include "common/err.h"
#include "storage/gd/gd.h"

/* splitmix64 */
uint64_t gen_next(uint64_t *state);
/* Uniform in [0, n). */
uint64_t gen_below(uint64_t *state, uint64_t n);

enum gen_shape {
        GEN_MIXED,   /* int, negative decimals, floats with NaN/Inf, constant */
        GEN_SENSOR,  /* smooth readings with noise, 2-3 decimals */
        GEN_CLASSES, /* integer features and a class target */
};

/* A table of n rows and d columns (last column the target unless d == 1). */
struct gd_table *gen_table(enum gen_shape shape, uint64_t n, uint32_t d, uint64_t seed);
/* 1 if the two tables hold the same columns, kinds, scales and values. */
int gen_tables_equal(const struct gd_table *a, const struct gd_table *b);

#endif
