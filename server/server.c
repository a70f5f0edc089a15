/* dreamd's server life cycle (server.h): srv_new, srv_shutdown, srv_free,
 * and the table of subsystems whose hooks they call. The rest is in
 * listen.c (accepting), conn.c (connections, dispatch, request runner),
 * routes.c (what each request kind is), and the handler files.
 *
 * Threads: everything here runs on the loop's thread. Requests run on
 * libuv's worker pool (conn.c), seals on the server's seal threads
 * (sealer.c), training jobs on their runner threads (jobs_queue.c).
 */
#include "server/server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "server/auth.h"
#include "server/internal.h"
#include "server/transport.h"

/* In order: started in this order, drained, stopped and freed in it too. */
static const struct srv_subsystem subsystems[] = {
    {.name = "jobs",
     .start = srv_jobs_init,
     .drain = srv_jobs_shutdown,
     .idle = srv_jobs_idle,
     .conn_closed = srv_jobs_conn_closed,
     .free = srv_jobs_free},
    {.name = "sealer", .drain = srv_sealer_drain, .stop = srv_sealer_stop},
    {.name = "batch cache", .free = srv_batches_free},
};

static int config_copy(struct srv_config *dst, const struct srv_config *src)
{
        *dst = *src;
        dst->n_listen = 0;
        dst->data_dir = dst->token_file = dst->port_file = dst->config_file = NULL;
        dst->metrics_listen = NULL;
        for (uint32_t i = 0; i < src->n_listen; i++) {
                dst->listen[i] = dm_strdup(src->listen[i]);
                if (!dst->listen[i])
                        return DREAM_E_NOMEM;
                dst->n_listen++;
        }
        if (!dst->n_listen) {
                dst->listen[0] = dm_strdup(SRV_DEFAULT_LISTEN);
                if (!dst->listen[0])
                        return DREAM_E_NOMEM;
                dst->n_listen = 1;
        }
        if ((src->data_dir && !(dst->data_dir = dm_strdup(src->data_dir))) ||
            (src->token_file && !(dst->token_file = dm_strdup(src->token_file))) ||
            (src->metrics_listen && !(dst->metrics_listen = dm_strdup(src->metrics_listen))))
                return DREAM_E_NOMEM;
        return 0;
}

int srv_new(uv_loop_t *loop, const struct srv_config *cfg, struct srv **ret, char *errmsg,
            size_t errmsg_size)
{
        struct store_opts so;
        struct srv *s;
        int r;

        s = dm_calloc(1, sizeof(*s));
        if (!s)
                return srv_fail(errmsg, errmsg_size, DREAM_E_NOMEM, "out of memory");
        s->loop = loop;
        s->tx = &srv_conn_transport;
        s->subsys = subsystems;
        s->n_subsys = sizeof(subsystems) / sizeof(subsystems[0]);
        s->budget_tail = &s->budget_waiters;
        s->rbuf = dm_malloc(SRV_READ_BUFFER);
        r = s->rbuf ? config_copy(&s->cfg, cfg) : DREAM_E_NOMEM;
        if (r < 0) {
                srv_fail(errmsg, errmsg_size, r, "out of memory");
                goto free_s;
        }
        if (s->cfg.token_file) {
                r = srv_tokens_load(s, s->cfg.token_file, errmsg, errmsg_size);
                if (r < 0)
                        goto free_s;
        }
        store_opts_default(&so);
        if (s->cfg.map_size_max)
                so.map_max = s->cfg.map_size_max;
        if (so.map_initial > so.map_max)
                so.map_initial = so.map_max;
        if (s->cfg.seal_rows)
                so.seal_rows = s->cfg.seal_rows;
        r = store_open(s->cfg.data_dir, &so, &s->store);
        if (r < 0) {
                srv_fail(errmsg, errmsg_size, r, "cannot open the store in '%s': %s",
                         s->cfg.data_dir, dream_strerror(r));
                goto free_s;
        }
        r = uv_timer_init(loop, &s->sweep);
        if (r < 0) {
                srv_fail(errmsg, errmsg_size, -EIO, "uv_timer_init: %s", uv_strerror(r));
                goto close_store;
        }
        s->sweep.data = s;
        s->handles_open++;
        s->start_ms = uv_now(loop);
        uv_timer_start(&s->sweep, srv_conns_sweep, 100, 100);
        for (uint32_t i = 0; i < s->n_subsys; i++) {
                if (!subsystems[i].start)
                        continue;
                r = subsystems[i].start(s, errmsg, errmsg_size);
                if (r < 0)
                        goto shutdown;
        }
        for (uint32_t i = 0; i < s->cfg.n_listen; i++) {
                r = srv_listener_open(s, s->cfg.listen[i], errmsg, errmsg_size);
                if (r < 0)
                        goto shutdown;
        }
        *ret = s;
        return 0;

shutdown:
        /* Handles exist: close them and let them finish on the loop. */
        srv_shutdown(s, NULL, NULL);
        while (!s->stopped && uv_run(loop, UV_RUN_ONCE))
                ;
        srv_free(s);
        return r;
close_store:
        store_close(s->store);
free_s:
        srv_free(s);
        return r;
}

uint32_t srv_listener_count(const struct srv *s)
{
        return s->n_listeners;
}

const char *srv_listener_name(const struct srv *s, uint32_t i)
{
        return s->listeners[i]->name;
}

void srv_shutdown(struct srv *s, srv_done_cb done, void *arg)
{
        if (s->draining)
                return;
        s->draining = true;
        s->drain_start_ms = uv_now(s->loop);
        s->done = done;
        s->done_arg = arg;
        for (uint32_t i = 0; i < s->n_subsys; i++)
                if (s->subsys[i].drain)
                        s->subsys[i].drain(s);
        srv_listeners_close(s);
        srv_conns_drain(s);
        srv_maybe_stop(s);
}

void srv_free(struct srv *s)
{
        if (!s)
                return;
        for (uint32_t i = 0; i < s->n_listeners; i++)
                dm_free(s->listeners[i]);
        for (uint32_t i = 0; i < s->n_tokens; i++)
                dm_free(s->tokens[i]);
        dm_free(s->tokens);
        srv_peers_prune(s, true);
        dm_free(s->rbuf);
        for (uint32_t i = 0; i < s->n_subsys; i++)
                if (s->subsys[i].free)
                        s->subsys[i].free(s);
        store_close(s->store);
        srv_config_release(&s->cfg);
        dm_free(s);
}
