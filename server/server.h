/* dreamd's server: listeners, connections, framing, dispatch and the request
 * handlers, on a caller-provided uv_loop_t. No global state: several servers
 * may run in one process, each on its own loop (tests do).
 *
 * Life cycle (all calls on the loop's thread):
 *   srv_new()      opens the store, reads the token file, binds and listens
 *                  (blocking steps, done before the loop runs);
 *   uv_run()       serves;
 *   srv_shutdown() stops accepting and reading, lets in-flight requests
 *                  finish and flush their responses, then closes every
 *                  handle and the store and calls `done`; the loop then runs
 *                  out of handles of this server;
 *   srv_free()     after `done` was called (or if srv_new's caller never ran
 *                  the loop: srv_shutdown + uv_run first).
 *
 * Blocking work (every store call, sealing, condensing) runs on libuv's
 * worker pool (uv_queue_work; its size comes from UV_THREADPOOL_SIZE, which
 * main() sets from the `workers` key before the first use).
 */
#ifndef DREAM_SERVER_SERVER_H
#define DREAM_SERVER_SERVER_H

#include "common/limits.h"

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "server/config.h"

/* Limits of the server (to move into common/limits.h). */
#define SRV_EXPORT_CHUNK_ROWS   65536u  /* default rows per ExportChunk */
#define SRV_BATCH_SIZE          256u    /* default rows per Batch */
#define SRV_DEFAULT_BUDGET      0.01    /* condensed/sample budget when none is given */
#define SRV_MIN_STEPS_PER_EPOCH 32u     /* default batch: at most rows / this (at least 1) */
#define SRV_DEFAULT_HOLDOUT     0.1     /* share of a job's rows set aside when none is given */
#define SRV_MAX_HOLDOUT_ROWS    100000u /* rows a job sets aside, at most */

struct srv;

/* cfg is copied (deep) and must have passed srv_config_check(). On failure
 * nothing is left open and errmsg says what failed, quoting names. */
int srv_new(uv_loop_t *loop, const struct srv_config *cfg, struct srv **ret, char *errmsg,
            size_t errmsg_size);

/* Listening addresses as bound ("127.0.0.1:40123", "[::1]:7878",
 * "unix:/run/dreamd.sock"); i < srv_listener_count(). Valid until srv_free. */
uint32_t srv_listener_count(const struct srv *s);
const char *srv_listener_name(const struct srv *s, uint32_t i);

typedef void (*srv_done_cb)(struct srv *s, void *arg);

/* Begin the drain described above; idempotent. `done` (may be NULL) is called
 * once, from the loop, when every handle is closed and the store is closed. */
void srv_shutdown(struct srv *s, srv_done_cb done, void *arg);

/* Frees the server; s may be NULL. Only after `done` (see above). */
void srv_free(struct srv *s);

/* reload.c. Apply a new configuration (SIGHUP). On the loop's thread.
 * new_cfg is borrowed (copied from). Checks it (srv_config_check), reads its
 * token file, and only when all of that succeeded applies, at once: the
 * limits max_connections, max_frame (new connections; responses),
 * idle_timeout, frame_timeout, batch_cache_bytes, job_queue; the tokens
 * (new hellos; authenticated connections stay so); log_level. Keys bound at
 * start (listen, data_dir, workers, jobs, blas_threads, map_size_max,
 * seal_rows, metrics_listen) that differ are logged as needing a restart and
 * not applied. 0, or an error with errmsg saying why; then nothing changed. */
int srv_reload(struct srv *s, const struct srv_config *new_cfg, char *errmsg, size_t size);

/* metrics.c. Writes queued (mutations on the worker pool: create, drop,
 * ingest, flush; background seals) and writes completed, since start (any
 * thread). The watchdog pings only while these make progress. */
void srv_write_progress(const struct srv *s, uint64_t *ret_queued, uint64_t *ret_done);

/* metrics.c. The Prometheus text endpoint: GET /metrics on `addr` (a
 * loopback IP:PORT, checked by the config; port 0 picks one), served by
 * libmicrohttpd's own thread, which only reads atomic counters and a
 * snapshot (datasets, map use) that a loop timer refreshes on the worker
 * pool every SRV_METRICS_REFRESH_MS. Start after srv_new, on the loop's
 * thread; *ret_name gets the bound address ("127.0.0.1:9464"), valid until
 * srv_metrics_stop. */
struct srv_metrics;
int srv_metrics_start(struct srv *s, const char *addr, struct srv_metrics **ret,
                      const char **ret_name, char *errmsg, size_t errmsg_size);
/* Stops serving (joins the HTTP thread) and releases m once its refresh in
 * flight, if any, is done. Before srv_shutdown's `done`; m may be NULL. */
void srv_metrics_stop(struct srv_metrics *m);

#endif
