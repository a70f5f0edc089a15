/* Background seals on the server's own seal threads. Threads: seal_thread
 * runs store_seal only; everything else runs on the loop thread. */
#include <errno.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "server/internal.h"

/* Seals run on the server's own seal threads (SRV_SEAL_THREADS), never on
 * libuv's pool: a long seal does not hold a worker that requests need. The
 * queue is bounded (SRV_SEAL_QUEUE datasets queued or sealing; beyond, the
 * seal is skipped: the rows stay staged, durable and readable, and the next
 * append past seal_rows or a flush seals them). On a drain, queued seals are
 * dropped and running ones finish; the threads are joined once idle. Finished
 * seals reach the loop through the uv_async_t. */

static void seal_thread(void *arg)
{
        struct srv_sealer *sl = arg;
        struct srv *s = sl->srv;

        uv_mutex_lock(&sl->lock);
        for (;;) {
                struct srv_seal *sj = sl->queue;
                struct srv_stats *st = &s->stats;
                uint64_t t0;

                if (!sj) {
                        if (sl->stop)
                                break;
                        uv_cond_wait(&sl->cv, &sl->lock);
                        continue;
                }
                sl->queue = sj->qnext;
                if (!sl->queue)
                        sl->queue_tail = &sl->queue;
                sj->qnext = NULL;
                if (sl->abandon) {
                        sj->abandoned = true; /* draining: the rows stay staged */
                } else {
                        uv_mutex_unlock(&sl->lock);
                        t0 = uv_hrtime();
                        sj->r = store_seal(s->store, sj->dataset, false, &sj->sealed);
                        srv_stats_add(sj->r < 0 ? &st->seal_errors : &st->seals,
                                      sj->r < 0 || sj->sealed > 0);
                        srv_stats_add(&st->seal_ns, uv_hrtime() - t0);
                        uv_mutex_lock(&sl->lock);
                }
                sj->qnext = sl->done;
                sl->done = sj;
                uv_async_send(&sl->async);
        }
        uv_mutex_unlock(&sl->lock);
}

/* Loop thread: seals that finished. */
static void seal_after(uv_async_t *a)
{
        struct srv_sealer *sl = (struct srv_sealer *)a;
        struct srv *s = sl->srv;
        struct srv_seal *done, *sj;

        uv_mutex_lock(&sl->lock);
        done = sl->done;
        sl->done = NULL;
        uv_mutex_unlock(&sl->lock);
        while ((sj = done)) {
                struct srv_seal **pp;

                done = sj->qnext;
                if (sj->abandoned)
                        dm_debug("seal of dataset '%s' not run: shutting down (rows stay staged)",
                                 sj->dataset);
                else if (sj->r < 0)
                        dm_error("sealing dataset '%s' failed: %s", sj->dataset,
                                 dream_strerror(sj->r));
                else
                        dm_debug("sealed %llu rows of dataset '%s'", (unsigned long long)sj->sealed,
                                 sj->dataset);
                for (pp = &s->sealing; *pp; pp = &(*pp)->next)
                        if (*pp == sj) {
                                *pp = sj->next;
                                break;
                        }
                s->n_sealing--;
                dm_free(sj->dataset);
                dm_free(sj);
                s->pending_work--;
                srv_stats_add(&s->stats.writes_done, 1);
        }
        srv_maybe_stop(s);
}

static void sealer_close_cb(uv_handle_t *h)
{
        struct srv_sealer *sl = (struct srv_sealer *)h;
        struct srv *s = sl->srv;

        uv_cond_destroy(&sl->cv);
        uv_mutex_destroy(&sl->lock);
        dm_free(sl);
        s->handles_open--;
        srv_maybe_stop(s);
}

/* Start the seal threads (first seal of the server's life). */
static int sealer_start(struct srv *s)
{
        struct srv_sealer *sl = dm_calloc(1, sizeof(*sl));
        int r;

        if (!sl)
                return DREAM_E_NOMEM;
        sl->srv = s;
        sl->queue_tail = &sl->queue;
        if (uv_mutex_init(&sl->lock) < 0) {
                dm_free(sl);
                return DREAM_E_NOMEM;
        }
        if (uv_cond_init(&sl->cv) < 0) {
                uv_mutex_destroy(&sl->lock);
                dm_free(sl);
                return DREAM_E_NOMEM;
        }
        r = uv_async_init(s->loop, &sl->async, seal_after);
        if (r < 0) {
                uv_cond_destroy(&sl->cv);
                uv_mutex_destroy(&sl->lock);
                dm_free(sl);
                return -EIO;
        }
        s->handles_open++;
        s->sealer = sl;
        for (; sl->n_threads < SRV_SEAL_THREADS; sl->n_threads++) {
                r = uv_thread_create(&sl->threads[sl->n_threads], seal_thread, sl);
                if (r < 0)
                        break;
        }
        if (sl->n_threads == 0) {
                s->sealer = NULL;
                uv_close((uv_handle_t *)&sl->async, sealer_close_cb);
                return -EIO;
        }
        return 0;
}

/* Draining: drop the queued seals (their rows stay staged). */
void srv_sealer_drain(struct srv *s)
{
        struct srv_sealer *sl = s->sealer;

        if (!sl || sl->abandon)
                return;
        uv_mutex_lock(&sl->lock);
        sl->abandon = true;
        uv_mutex_unlock(&sl->lock);
}

/* Drained and no seal left: join the idle threads, close the handle. */
void srv_sealer_stop(struct srv *s)
{
        struct srv_sealer *sl = s->sealer;

        if (!sl)
                return;
        s->sealer = NULL;
        uv_mutex_lock(&sl->lock);
        sl->stop = true;
        uv_cond_broadcast(&sl->cv);
        uv_mutex_unlock(&sl->lock);
        for (uint32_t i = 0; i < sl->n_threads; i++)
                uv_thread_join(&sl->threads[i]);
        uv_close((uv_handle_t *)&sl->async, sealer_close_cb);
}

/* Schedule a background seal of `dataset`, unless one is already queued or
 * running (a running store_seal keeps sealing while enough rows are staged). */
void srv_seal_schedule(struct srv *s, const char *dataset)
{
        struct srv_sealer *sl;
        struct srv_seal *sj;

        for (sj = s->sealing; sj; sj = sj->next)
                if (strcmp(sj->dataset, dataset) == 0)
                        return;
        if (s->n_sealing >= SRV_SEAL_QUEUE) {
                dm_debug("seal queue full: dataset '%s' stays staged for now", dataset);
                return;
        }
        if (!s->sealer && sealer_start(s) < 0) {
                dm_error("cannot start the seal thread: dataset '%s' stays staged", dataset);
                return;
        }
        sj = dm_calloc(1, sizeof(*sj));
        if (!sj || !(sj->dataset = dm_strdup(dataset))) {
                dm_free(sj);
                dm_error("out of memory scheduling a seal of dataset '%s'", dataset);
                return;
        }
        sj->srv = s;
        sl = s->sealer;
        uv_mutex_lock(&sl->lock);
        *sl->queue_tail = sj;
        sl->queue_tail = &sj->qnext;
        uv_cond_signal(&sl->cv);
        uv_mutex_unlock(&sl->lock);
        s->pending_work++;
        s->n_sealing++;
        srv_stats_add(&s->stats.writes_queued, 1);
        sj->next = s->sealing;
        s->sealing = sj;
}
