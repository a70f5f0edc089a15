/* SIGHUP: apply a new configuration to a running server.
 *
 * What changes at runtime: max_connections, max_peer_connections,
 * max_buffered_bytes (frames that wait see it when a frame is done), max_frame, idle_timeout,
 * frame_timeout, batch_cache_bytes, job_queue, job_memory, the tokens (token_file is read
 * again) and log_level. Everything that can fail (the checks, reading the
 * token file, copying strings) happens before the first field is changed, so
 * a reload applies completely or not at all. Keys bound at start (listen,
 * data_dir, workers, jobs, blas_threads, map_size_max, seal_rows,
 * metrics_listen) are compared and reported as needing a restart.
 *
 * Threads: srv_reload runs on the loop's thread, like every reader of the
 * tokens and of the loop-side limits. The two limits that worker threads read
 * (max_frame when encoding responses, batch_cache_bytes in batch streams) and
 * job_queue and job_memory are stored with __atomic builtins.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "server/auth.h"
#include "server/internal.h"
#include "server/server.h"

static bool str_differs(const char *a, const char *b)
{
        if (!a || !b)
                return a != b;
        return strcmp(a, b) != 0;
}

static bool listen_differs(const struct srv_config *run, const struct srv_config *c)
{
        /* The running copy has SRV_DEFAULT_LISTEN filled in (server.c). */
        if (c->n_listen == 0)
                return run->n_listen != 1 || strcmp(run->listen[0], SRV_DEFAULT_LISTEN) != 0;
        if (c->n_listen != run->n_listen)
                return true;
        for (uint32_t i = 0; i < c->n_listen; i++)
                if (strcmp(c->listen[i], run->listen[i]) != 0)
                        return true;
        return false;
}

static void needs_restart(const char *key, bool changed, uint32_t *count)
{
        if (!changed)
                return;
        dm_warn("reload: '%s' changed: needs a restart to take effect (the running value is kept)",
                key);
        (*count)++;
}

static const char *level_name(enum dm_log_level l)
{
        switch (l) {
        case DM_LOG_ERROR:
                return "error";
        case DM_LOG_WARN:
                return "warn";
        case DM_LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

static void free_tokens(char **tokens, uint32_t n)
{
        for (uint32_t i = 0; i < n; i++)
                dm_free(tokens[i]);
        dm_free(tokens);
}

int srv_reload(struct srv *s, const struct srv_config *c, char *errmsg, size_t size)
{
        struct srv_config *run = &s->cfg;
        struct srv *scratch = NULL;
        char *token_file = NULL, **old_tokens;
        uint32_t n_old, restart = 0;
        int r;

        if (s->draining)
                return srv_fail(errmsg, size, DREAM_E_CANCELLED, "the server is shutting down");
        r = srv_config_check(c, errmsg, size);
        if (r < 0)
                return r;
        /* The listeners stay those bound at start: without a token file,
         * they must all be loopback. */
        for (uint32_t i = 0; i < run->n_listen && !c->token_file; i++) {
                struct srv_addr a;

                if (srv_addr_parse(run->listen[i], &a) == 0 && !a.loopback)
                        return srv_fail(errmsg, size, DREAM_E_AUTH,
                                        "token_file: cannot be removed while listening on the "
                                        "non-loopback address '%s'",
                                        run->listen[i]);
        }
        /* Everything that may fail, before anything changes. */
        if (c->token_file) {
                scratch = dm_calloc(1, sizeof(*scratch));
                token_file = dm_strdup(c->token_file);
                if (!scratch || !token_file) {
                        r = srv_fail(errmsg, size, DREAM_E_NOMEM, "out of memory");
                        goto free_scratch;
                }
                r = srv_tokens_load(scratch, c->token_file, errmsg, size);
                if (r < 0)
                        goto free_scratch;
        }

        needs_restart("listen", listen_differs(run, c), &restart);
        needs_restart("data_dir", str_differs(run->data_dir, c->data_dir), &restart);
        needs_restart("workers", run->workers != c->workers, &restart);
        needs_restart("jobs", run->jobs != c->jobs, &restart);
        needs_restart("blas_threads", run->blas_threads != c->blas_threads, &restart);
        needs_restart("map_size_max", run->map_size_max != c->map_size_max, &restart);
        needs_restart("seal_rows", run->seal_rows != c->seal_rows, &restart);
        needs_restart("metrics_listen", str_differs(run->metrics_listen, c->metrics_listen),
                      &restart);

        /* Apply. A connection keeps the max_frame its HelloReply announced
         * (its frame decoder was sized at accept); new connections and every
         * response encoded from now on use the new one. */
        run->max_connections = c->max_connections;
        run->max_peer_conns = c->max_peer_conns;
        run->max_buffered_bytes = c->max_buffered_bytes;
        run->idle_timeout = c->idle_timeout;
        run->frame_timeout = c->frame_timeout;
        __atomic_store_n(&run->max_frame, c->max_frame, __ATOMIC_RELAXED);
        __atomic_store_n(&run->batch_cache_bytes, c->batch_cache_bytes, __ATOMIC_RELAXED);
        __atomic_store_n(&run->job_queue, c->job_queue, __ATOMIC_RELAXED);
        __atomic_store_n(&run->job_memory, c->job_memory, __ATOMIC_RELAXED);
        run->log_level = c->log_level;
        dm_log_set_level(c->log_level);
        dm_log_set_format(c->log_format);
        /* Tokens: new hellos are checked against the new set at once;
         * connections already authenticated stay so. */
        old_tokens = s->tokens;
        n_old = s->n_tokens;
        s->tokens = scratch ? scratch->tokens : NULL;
        s->n_tokens = scratch ? scratch->n_tokens : 0;
        if (scratch) {
                scratch->tokens = NULL;
                scratch->n_tokens = 0;
        }
        free_tokens(old_tokens, n_old);
        dm_free(run->token_file);
        run->token_file = token_file;
        token_file = NULL;

        dm_info("reload: applied: max_connections %u (%u per peer), max_buffered_bytes %llu, "
                "max_frame %u bytes, idle_timeout %g s, "
                "frame_timeout %g s, batch_cache_bytes %llu, job_queue %u, log_level %s, "
                "authentication %s (%u token%s)%s",
                run->max_connections, run->max_peer_conns,
                (unsigned long long)run->max_buffered_bytes, run->max_frame, run->idle_timeout,
                run->frame_timeout, (unsigned long long)run->batch_cache_bytes, run->job_queue,
                level_name(run->log_level), s->n_tokens ? "on" : "off", s->n_tokens,
                s->n_tokens == 1 ? "" : "s",
                restart ? "; some changed keys need a restart (see above)" : "");
        r = 0;
free_scratch:
        srv_free(scratch); /* frees a token set that was not swapped in */
        dm_free(token_file);
        return r;
}
