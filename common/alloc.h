/* Allocation with failure injection.
 *
 * All project code allocates through these so that tests can make the Nth
 * allocation fail (house rule 12). They behave like malloc/calloc/realloc/free
 * and return NULL on failure; they never abort. dm_mallocarray and
 * dm_reallocarray check the multiplication for overflow.
 */
#ifndef DREAM_COMMON_ALLOC_H
#define DREAM_COMMON_ALLOC_H

#include <stddef.h>

void *dm_malloc(size_t size);
void *dm_calloc(size_t n, size_t size);
void *dm_realloc(void *p, size_t size);
void *dm_mallocarray(size_t n, size_t size);
void *dm_reallocarray(void *p, size_t n, size_t size);
char *dm_strdup(const char *s);
/* n elements of size bytes for a large buffer that is written soon after
 * (a decoded table, training rows), uninitialised: from 4 MiB on, aligned to
 * 2 MiB, its length rounded up to 2 MiB, and advised for transparent huge
 * pages (Linux, where they are left to the program), which spares a page
 * fault per 4 KiB on first touch; smaller, as dm_mallocarray. Free with
 * dm_free. */
void *dm_alloc_large(size_t n, size_t size);
void dm_free(void *p);

/* Test hook: make the allocation with 1-based index `nth` (counted from this
 * call, across all threads) and every later one fail while `sticky` is set,
 * or only that one otherwise. nth == 0 disables injection. */
void dm_alloc_fail_at(unsigned long nth, int sticky);

/* Number of allocations attempted since the last dm_alloc_fail_at(). */
unsigned long dm_alloc_count(void);

#endif
