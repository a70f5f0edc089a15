/* Training jobs: life cycle of the subsystem (its hooks in server.c's
 * table) and its counters. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "server/jobs_internal.h"
#include "server/transport.h"

/* ---- life cycle ------------------------------------------------------------------- */

int srv_jobs_init(struct srv *s, char *errmsg, size_t errmsg_size)
{
        struct srv_jobs *J = dm_calloc(1, sizeof(*J));
        struct load_ctx lc = {0};
        uint32_t resuming;
        int r;

        if (!J) {
                snprintf(errmsg, errmsg_size, "out of memory");
                return DREAM_E_NOMEM;
        }
        J->srv = s;
        J->next_id = 1;
        if (jd_holdout_cache_new(&J->holdout_cache) < 0) {
                dm_free(J);
                snprintf(errmsg, errmsg_size, "out of memory");
                return DREAM_E_NOMEM;
        }
        pthread_mutex_init(&J->lock, NULL);
        pthread_cond_init(&J->cv, NULL);
        s->jobs = J;
        lc.J = J;
        r = store_job_list(s->store, srv_job_load_cb, &lc);
        if (r == 0 && lc.err)
                r = lc.err;
        if (r < 0) {
                snprintf(errmsg, errmsg_size, "cannot read the job records: %s", dream_strerror(r));
                return r;
        }
        for (uint32_t i = 0; i < lc.n_fix; i++)
                (void)srv_job_persist(J, srv_job_find(J, lc.fix[i]), 0, NULL, 0);
        r = uv_async_init(s->loop, &J->async, srv_jobs_async_cb);
        if (r < 0) {
                snprintf(errmsg, errmsg_size, "uv_async_init: %s", uv_strerror(r));
                J->joined = J->async_closing = true;
                return DREAM_E_INTERNAL;
        }
        J->async.data = s;
        s->handles_open++;
        train_set_threads((int)s->cfg.blas_threads);
        J->threads = dm_calloc(s->cfg.jobs, sizeof(pthread_t));
        if (!J->threads) {
                snprintf(errmsg, errmsg_size, "out of memory");
                return DREAM_E_NOMEM;
        }
        /* Read before the runners start: they take jobs off the queue. */
        resuming = J->queued;
        for (uint32_t i = 0; i < s->cfg.jobs; i++) {
                r = pthread_create(&J->threads[i], NULL, srv_job_runner, J);
                if (r != 0) {
                        snprintf(errmsg, errmsg_size, "cannot start a job thread: %s", strerror(r));
                        return DREAM_E_INTERNAL;
                }
                J->n_threads++;
        }
        if (resuming)
                dm_info("%u queued jobs resume", resuming);
        return 0;
}

void srv_jobs_shutdown(struct srv *s)
{
        struct srv_jobs *J = s->jobs;
        struct srv_req *w;

        if (!J)
                return;
        pthread_mutex_lock(&J->lock);
        J->stopping = true;
        for (struct tjob *t = J->all; t; t = t->next)
                if (t->state == DREAM__V1__JOB_STATE__JOB_STATE_RUNNING)
                        t->cancel = true;
        pthread_cond_broadcast(&J->cv);
        pthread_mutex_unlock(&J->lock);
        while ((w = J->watchers)) {
                J->watchers = w->next_parked;
                w->next_parked = NULL;
                srv_stats_error(s, DREAM__V1__REQUEST__BODY_JOB_WATCH);
                srv_tx_error(w->c, w->request_id, DREAM_E_CANCELLED,
                             "server is shutting down; watch ended (the job is kept)");
                srv_tx_req_close(w);
        }
}

static void async_close_cb(uv_handle_t *h)
{
        struct srv *s = h->data;

        s->handles_open--;
        srv_maybe_stop(s);
}

bool srv_jobs_idle(struct srv *s)
{
        struct srv_jobs *J = s->jobs;
        uint32_t running;

        if (!J)
                return true;
        pthread_mutex_lock(&J->lock);
        running = J->running;
        pthread_mutex_unlock(&J->lock);
        if (running)
                return false;
        if (!J->joined) {
                for (uint32_t i = 0; i < J->n_threads; i++)
                        pthread_join(J->threads[i], NULL);
                J->joined = true;
        }
        if (!J->async_closing) {
                J->async_closing = true;
                uv_close((uv_handle_t *)&J->async, async_close_cb);
        }
        return true;
}

void srv_jobs_free(struct srv *s)
{
        struct srv_jobs *J = s->jobs;

        if (!J)
                return;
        if (!J->joined) {
                pthread_mutex_lock(&J->lock);
                J->stopping = true;
                pthread_cond_broadcast(&J->cv);
                pthread_mutex_unlock(&J->lock);
                for (uint32_t i = 0; i < J->n_threads; i++)
                        pthread_join(J->threads[i], NULL);
        }
        while (J->all) {
                struct tjob *t = J->all;
                J->all = t->next;
                srv_job_free(t);
        }
        dm_free(J->threads);
        jd_holdout_cache_free(J->holdout_cache);
        pthread_mutex_destroy(&J->lock);
        pthread_cond_destroy(&J->cv);
        dm_free(J);
        s->jobs = NULL;
}

void srv_jobs_stats(struct srv *s, struct srv_jobs_stats *ret)
{
        struct srv_jobs *J = s->jobs;

        memset(ret, 0, sizeof(*ret));
        if (!J)
                return;
        pthread_mutex_lock(&J->lock);
        ret->queued = J->queued;
        ret->running = J->running;
        ret->done = J->n_done;
        ret->failed = J->n_failed;
        ret->cancelled = J->n_cancelled;
        ret->train_seconds = J->train_seconds;
        pthread_mutex_unlock(&J->lock);
}
