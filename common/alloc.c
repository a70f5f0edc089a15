#include "common/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Test-only injection state; zero (off) in production. */
static atomic_ulong fail_at;
static atomic_ulong counter;
static atomic_int fail_sticky;

void dm_alloc_fail_at(unsigned long nth, int sticky)
{
        atomic_store(&counter, 0);
        atomic_store(&fail_sticky, sticky);
        atomic_store(&fail_at, nth);
}

unsigned long dm_alloc_count(void)
{
        return atomic_load(&counter);
}

static int should_fail(void)
{
        unsigned long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
        unsigned long c = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed) + 1;
        if (at == 0)
                return 0;
        return c == at || (c > at && atomic_load(&fail_sticky));
}

void *dm_malloc(size_t size)
{
        if (should_fail())
                return NULL;
        return malloc(size ? size : 1);
}

void *dm_calloc(size_t n, size_t size)
{
        if (should_fail())
                return NULL;
        if (n == 0 || size == 0)
                n = size = 1;
        return calloc(n, size);
}

void *dm_realloc(void *p, size_t size)
{
        if (should_fail())
                return NULL;
        return realloc(p, size ? size : 1);
}

void *dm_mallocarray(size_t n, size_t size)
{
        size_t total;
        if (__builtin_mul_overflow(n, size, &total))
                return NULL;
        return dm_malloc(total);
}

void *dm_reallocarray(void *p, size_t n, size_t size)
{
        size_t total;
        if (__builtin_mul_overflow(n, size, &total))
                return NULL;
        return dm_realloc(p, total);
}

char *dm_strdup(const char *s)
{
        size_t len = strlen(s) + 1;
        char *d = dm_malloc(len);
        if (d)
                memcpy(d, s, len);
        return d;
}

void dm_free(void *p)
{
        free(p);
}

void *dm_alloc_large(size_t n, size_t size)
{
        const size_t huge = (size_t)2 << 20;
        size_t total, rounded;
        void *p;

        if (__builtin_mul_overflow(n, size, &total))
                return NULL;
        if (total < 2 * huge || total > SIZE_MAX - huge)
                return dm_malloc(total);
        if (should_fail())
                return NULL;
        rounded = (total + huge - 1) & ~(huge - 1);
        p = aligned_alloc(huge, rounded);
#ifdef MADV_HUGEPAGE
        if (p)
                (void)madvise(p, rounded, MADV_HUGEPAGE); /* advice only */
#endif
        return p;
}
