/* Helpers shared by the readers; not part of the API. */
#ifndef DREAM_READ_INTERNAL_H
#define DREAM_READ_INTERNAL_H

#include <stdint.h>

#include "client/read/read.h"

/* Fill *e (when not NULL) and return code. */
int read_fail(struct read_error *e, int code, enum read_source src, uint64_t line, uint32_t col,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
