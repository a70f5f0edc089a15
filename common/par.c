#include "common/par.h"

#include <pthread.h>
#include <stdbool.h>

#include "common/limits.h"

struct par_call {
        void (*fn)(void *);
        void *arg;
};

static void *par_main(void *p)
{
        struct par_call *c = p;

        c->fn(c->arg);
        return NULL;
}

void dm_par2(void (*fn)(void *), void *a, void *b)
{
        struct par_call cb = {.fn = fn, .arg = b};
        pthread_t th;
        bool started = pthread_create(&th, NULL, par_main, &cb) == 0;

        fn(a);
        if (started)
                pthread_join(th, NULL);
        else
                fn(b);
}

void dm_par_each(void (*fn)(void *), void *items, size_t size, uint32_t n)
{
        struct par_call calls[DREAM_MAX_PAR_THREADS];
        pthread_t th[DREAM_MAX_PAR_THREADS];
        bool started[DREAM_MAX_PAR_THREADS] = {0};
        char *base = items;

        if (n == 0)
                return;
        for (uint32_t k = 1; k < n && k < DREAM_MAX_PAR_THREADS; k++) {
                calls[k] = (struct par_call){.fn = fn, .arg = base + k * size};
                started[k] = pthread_create(&th[k], NULL, par_main, &calls[k]) == 0;
        }
        fn(base);
        for (uint32_t k = 1; k < n; k++) {
                if (k < DREAM_MAX_PAR_THREADS && started[k])
                        pthread_join(th[k], NULL);
                else /* no thread: its share runs here */
                        fn(base + k * size);
        }
}
