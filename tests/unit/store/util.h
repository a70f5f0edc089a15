/* Helpers shared by the store tests. */
#ifndef DREAM_TEST_STORE_UTIL_H
#define DREAM_TEST_STORE_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/store.h"

#define TU_COLS 4u

/* Schema of the test datasets: id (int), x (decimal), z (double), y (target,
 * 3 classes). Static storage. */
const struct store_schema *tu_schema(void);

/* The value row k holds in column j, as a double. */
double tu_expect(uint64_t k, uint32_t j);

/* A batch of n rows for k = first_k..first_k+n-1. variant changes how the
 * values are represented (scales, kinds) without changing them. */
struct gd_table *tu_batch(uint64_t first_k, uint64_t n, unsigned variant);

/* True when every row i of t holds the values of k = first_k + i. */
bool tu_rows_ok(const struct gd_table *t, uint64_t first_k);

/* mkdtemp under /tmp into buf (at least 64 bytes). */
void tu_tmpdir(char *buf);
void tu_rmrf(const char *path);

#endif
