/* job_watch streams: JobInfo of a job each time it changes, sent on the
 * loop thread (a watch costs no thread). */

#include <pthread.h>

#include "common/alloc.h"
#include "common/err.h"
#include "server/jobs_internal.h"
#include "server/reply.h"
#include "server/routes.h"
#include "server/transport.h"

struct watch_state {
        uint64_t job_id, version;
};

/* ---- watchers (loop thread) ------------------------------------------------------- */

static void watcher_unlink(struct srv_jobs *J, struct srv_req *w)
{
        for (struct srv_req **pp = &J->watchers; *pp; pp = &(*pp)->next_parked)
                if (*pp == w) {
                        *pp = w->next_parked;
                        w->next_parked = NULL;
                        return;
                }
}

/* Send w its job's JobInfo if it changed (or `force`). True when the job
 * has ended (the last JobInfo was sent). */
static bool watcher_send(struct srv_jobs *J, struct srv_req *w, bool force)
{
        struct watch_state *ws = w->state;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        struct info_parts p;
        struct tjob *t;
        bool end;

        pthread_mutex_lock(&J->lock);
        t = srv_job_find(J, ws->job_id);
        end = srv_job_terminal(t->state);
        if (force || end || (t->version != ws->version && srv_tx_queued(w->c) < SRV_OUTPUT_HIGH)) {
                ws->version = t->version;
                srv_job_info_fill(t, &p);
                resp.more = !end;
                resp.body_case = DREAM__V1__RESPONSE__BODY_JOB_WATCH;
                resp.job_watch = &p.info;
                srv_reply(w, &resp);
        }
        pthread_mutex_unlock(&J->lock);
        srv_tx_write(w->c, &w->out);
        return end;
}

void srv_jobs_async_cb(uv_async_t *h)
{
        struct srv *s = h->data;
        struct srv_jobs *J = s->jobs;
        struct srv_req *w = J->watchers, *next;

        /* Off the list while sending: a failed write closes the connection,
         * and srv_jobs_conn_closed must not end a watcher this walk holds. */
        J->watchers = NULL;
        for (; w; w = next) {
                next = w->next_parked;
                w->next_parked = NULL;
                if (watcher_send(J, w, false) || srv_tx_closing(w->c)) {
                        srv_tx_req_close(w);
                } else {
                        w->next_parked = J->watchers;
                        J->watchers = w;
                }
        }
        if (s->draining)
                srv_maybe_stop(s);
}

bool srv_h_job_watch(struct srv_conn *c, proto_request *req)
{
        struct srv_jobs *J = c->srv->jobs;
        uint64_t id = req->job_watch->job_id;
        struct watch_state *ws;
        struct srv_req *w = srv_tx_req_open(c, req);
        bool exists;

        if (!w)
                return true; /* answered, req freed */
        pthread_mutex_lock(&J->lock);
        exists = srv_job_find(J, id) != NULL;
        pthread_mutex_unlock(&J->lock);
        ws = dm_calloc(1, sizeof(*ws));
        if (!exists || !ws) {
                dm_free(ws);
                srv_stats_error(c->srv, DREAM__V1__REQUEST__BODY_JOB_WATCH);
                srv_tx_error(c, w->request_id, exists ? DREAM_E_NOMEM : DREAM_E_NOTFOUND,
                             exists ? NULL : "job_watch.job_id: no such job");
                srv_tx_req_close(w);
                return true; /* req was taken */
        }
        ws->job_id = id;
        w->state = ws;
        if (watcher_send(J, w, true) || srv_tx_closing(w->c)) {
                srv_tx_req_close(w);
                return true; /* req was taken */
        }
        w->next_parked = J->watchers;
        J->watchers = w;
        return true;
}

void srv_jobs_conn_closed(struct srv_conn *c)
{
        struct srv_jobs *J = c->srv->jobs;
        struct srv_req *w, *next;

        if (!J)
                return;
        for (w = J->watchers; w; w = next) {
                next = w->next_parked;
                if (w->c == c) {
                        watcher_unlink(J, w);
                        srv_tx_req_close(w);
                }
        }
}
