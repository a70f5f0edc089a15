/* The end of a drain, through the subsystems' life cycle hooks (see
 * struct srv_subsystem). Loop thread. */
#include "common/log.h"
#include "server/internal.h"

void srv_subsystems_conn_closed(struct srv_conn *c)
{
        const struct srv *s = c->srv;

        for (uint32_t i = 0; i < s->n_subsys; i++)
                if (s->subsys[i].conn_closed)
                        s->subsys[i].conn_closed(c);
}

static void stop_done(uv_handle_t *h)
{
        struct srv *s = h->data;

        s->handles_open--;
        srv_maybe_stop(s);
}

void srv_maybe_stop(struct srv *s)
{
        if (!s->draining || s->stopped)
                return;
        if (s->conns || s->pending_work > 0)
                return;
        for (uint32_t i = 0; i < s->n_subsys; i++)
                if (s->subsys[i].idle && !s->subsys[i].idle(s))
                        return;
        for (uint32_t i = 0; i < s->n_subsys; i++)
                if (s->subsys[i].stop)
                        s->subsys[i].stop(s);
        if (!s->sweep_closed) {
                s->sweep_closed = true;
                uv_close((uv_handle_t *)&s->sweep, stop_done);
                return;
        }
        if (s->handles_open > 0)
                return;
        /* Every response is out and no work is queued: close the store. */
        s->stopped = true;
        store_close(s->store);
        s->store = NULL;
        dm_info("dreamd stopped: store closed");
        if (s->done)
                s->done(s, s->done_arg);
}
