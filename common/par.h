/* Work split over threads: the caller's thread takes the first share, new
 * threads the others, and the call returns when every share is done. When a
 * thread cannot be started its share runs on the caller's thread after the
 * first, so results never depend on whether threads were available. */
#ifndef DREAM_COMMON_PAR_H
#define DREAM_COMMON_PAR_H

#include <stddef.h>
#include <stdint.h>

/* fn(a) on this thread and fn(b) on a new one, both done on return. */
void dm_par2(void (*fn)(void *), void *a, void *b);
/* fn(items + k * size) for k in [0, n): k = 0 on this thread, the others on
 * new threads (up to DREAM_MAX_PAR_THREADS - 1 of them), all done on return.
 * Never allocates. */
void dm_par_each(void (*fn)(void *), void *items, size_t size, uint32_t n);

#endif
