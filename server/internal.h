/* Internals shared by the files of server/: the server, its connections,
 * requests in flight, and the functions each file offers the others. The
 * calls between files go one way (docs/architecture.md):
 *   server -> listen -> conn -> routes -> handlers, session, batches, jobs_*
 *          -> reply, auth, sealer, hooks (leaves)
 * Handlers reach their connection only through transport.h. */
#ifndef DREAM_SERVER_INTERNAL_H
#define DREAM_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "common/buf.h"
#include "proto/frame.h"
#include "proto/validate.h"
#include "server/config.h"
#include "server/server.h"
#include "storage/store.h"

struct srv_listener {
        union {
                uv_handle_t handle; /* first (house rule 9) */
                uv_stream_t stream;
                uv_tcp_t tcp;
                uv_pipe_t pipe;
        } h;
        struct srv *srv;
        bool is_unix;
        char name[160];      /* as bound, e.g. "127.0.0.1:40123" */
        char unix_path[108]; /* removed at shutdown */
};

struct srv_req;
struct srv_transport;
struct srv_subsystem;

/* What one peer (an IP address; for a unix socket, the peer's uid) holds:
 * its open connections, and its wrong tokens in the current second. */
struct srv_peer {
        struct srv_peer *next; /* srv->peers bucket */
        char key[64];
        uint32_t conns;
        uint32_t failures;  /* wrong tokens since window_ms */
        uint64_t window_ms; /* start of the second counted in failures */
};
#define SRV_PEER_BUCKETS 256u

/* Roles a token grants (proto Role; "admin" grants every role). */
#define SRV_ROLE_INGEST 1u /* create datasets, ingest, flush */
#define SRV_ROLE_READ   2u /* list, describe, export, batches, jobs, predict, model */
#define SRV_ROLE_TRAIN  4u /* submit and cancel training jobs (and see them) */
#define SRV_ROLE_ADMIN  8u /* everything, including drop, backup and stats */
#define SRV_ROLES_ALL   15u

struct srv_conn {
        union {
                uv_handle_t handle; /* first (house rule 9) */
                uv_stream_t stream;
                uv_tcp_t tcp;
                uv_pipe_t pipe;
        } h;
        struct srv *srv;
        struct srv_conn *prev, *next; /* srv->conns */
        struct frame_decoder dec;
        uint64_t id;
        char peer[80];
        uint32_t refs;            /* handle + pending writes + requests */
        uint32_t inflight;        /* requests not yet fully answered */
        uint32_t writes_pending;  /* uv_write requests outstanding */
        uint32_t streams_running; /* stream rounds on the worker pool */
        size_t out_bytes;         /* bytes queued for writing */
        uint64_t last_activity_ms;
        uint64_t last_write_ms;  /* last write completion (or start) */
        uint64_t frame_start_ms; /* a partial frame started; 0: none */
        uint64_t accepted_ms;    /* when the connection was accepted */
        uint32_t auth_failures;
        unsigned roles;               /* SRV_ROLE_* granted to this connection */
        struct srv_peer *peer_ent;    /* borrowed; counted in peer_ent->conns */
        uint64_t reserved;            /* max_buffered_bytes held by the frame being read */
        struct srv_conn *budget_next; /* srv->budget_waiters */
        proto_request *held_hello;    /* owned: a hello answered at held_until_ms */
        uint64_t held_until_ms;
        struct srv_req *parked;  /* streams waiting for their turn (FIFO) */
        struct srv_req *ordered; /* mutations waiting for the running one (FIFO) */
        bool ordered_busy;       /* a mutation of this connection is running */
        bool reading, paused, eof, closing, close_after_flush, refused, authed;
        bool budget_wait;     /* in srv->budget_waiters: reading waits for max_buffered_bytes */
        bool hello_released;  /* the held hello is being answered now */
        bool hello_throttled; /* ...and was held: a wrong token answers BUSY */
};

/* Counters of StatsReply and /metrics: written and read with __atomic builtins
 * (any thread). Per request type: indexed by srv_stats_type(body_case); 0 holds
 * frames that did not decode as a Request. */
#define SRV_STATS_TYPES     96 /* Request body field numbers are below 90 (dream.proto) */
#define SRV_LATENCY_BUCKETS 14 /* finite buckets of the request latency histograms */
struct srv_stats {
        uint64_t connections_total, connections_refused, requests_total, request_errors_total;
        uint64_t bytes_in, bytes_out, rows_ingested, batches_served;
        uint64_t ingest_commits, seals, seal_errors, seal_ns;
        uint64_t writes_queued, writes_done; /* mutations and seals: watchdog progress */
        uint64_t requests_by_type[SRV_STATS_TYPES], errors_by_type[SRV_STATS_TYPES];
        /* Request durations, arrival to last response queued, by type:
         * counts per bucket of srv_latency_bounds (not cumulative; the last
         * is +Inf), and the sum in ns. */
        uint64_t latency[SRV_STATS_TYPES][SRV_LATENCY_BUCKETS + 1];
        uint64_t latency_ns[SRV_STATS_TYPES];
};

/* Upper bounds of the latency buckets, in seconds (metrics.c). */
extern const double srv_latency_bounds[SRV_LATENCY_BUCKETS];

/* A request of type body_case took ns nanoseconds (any thread). */
void srv_latency_record(struct srv_stats *st, int body_case, uint64_t ns);

/* Quantile q (0..1) of the durations of type body_case, in seconds,
 * interpolated within its bucket; 0 when none. */
double srv_latency_quantile(const struct srv_stats *st, int body_case, double q);

static inline unsigned srv_stats_type(int body_case)
{
        return body_case > 0 && body_case < (int)SRV_STATS_TYPES ? (unsigned)body_case : 0;
}

static inline void srv_stats_add(uint64_t *counter, uint64_t n)
{
        __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* An error answer to a request of type body_case (0: undecodable). */
#define srv_stats_error(s, body_case)                                                              \
        srv_stats_add(&(s)->stats.errors_by_type[srv_stats_type(body_case)], 1)

/* A background seal of one dataset, queued for or running on a seal thread
 * (sealer.c). */
struct srv_seal {
        struct srv *srv;
        char *dataset; /* owned */
        int r;
        uint64_t sealed;
        bool abandoned;         /* not run: the server was draining */
        struct srv_seal *next;  /* srv->sealing (loop thread) */
        struct srv_seal *qnext; /* srv_sealer queue or done list (under its lock) */
};

#define SRV_SEAL_THREADS 2u  /* the server's seal threads (not libuv's pool) */
#define SRV_SEAL_QUEUE   64u /* datasets queued or sealing; more are left staged */

struct srv_sealer {
        uv_async_t async; /* first (house rule 9): seals finished, for the loop */
        struct srv *srv;
        uv_thread_t threads[SRV_SEAL_THREADS];
        uint32_t n_threads;
        uv_mutex_t lock; /* guards the fields below */
        uv_cond_t cv;
        struct srv_seal *queue, **queue_tail;
        struct srv_seal *done;
        bool abandon; /* draining: queued seals are not run */
        bool stop;    /* threads exit when the queue is empty */
};

struct srv {
        uv_loop_t *loop;
        struct srv_config cfg; /* owned copy */
        struct store *store;
        char **tokens; /* owned */
        uint32_t n_tokens;
        struct srv_listener *listeners[SRV_MAX_LISTEN];
        uint32_t n_listeners;
        uv_timer_t sweep;
        struct srv_conn *conns;
        uint32_t n_conns;
        uint64_t next_conn_id;
        uint64_t pending_work; /* uv_queue_work requests outstanding */
        uint32_t handles_open;
        struct srv_seal *sealing;
        uint32_t n_sealing;        /* entries of sealing */
        struct srv_sealer *sealer; /* seal threads, started by the first seal (sealer.c) */
        uint8_t *rbuf;             /* SRV_READ_BUFFER bytes, shared by every read */
        uint64_t start_ms, drain_start_ms;
        bool draining, sweep_closed, stopped;
        srv_done_cb done;
        void *done_arg;
        struct srv_stats stats;              /* updated with __atomic builtins */
        uint64_t batch_cache_bytes;          /* rows decoded for batch streams (__atomic) */
        struct srv_batch_cache *batch_cache; /* batches.c: made on first use (__atomic) */
        struct srv_jobs *jobs;               /* training jobs (jobs.c) */
        const struct srv_transport *tx;      /* conn.c: what handlers may do to a conn */
        const struct srv_subsystem *subsys;  /* server.c: life cycle hooks, in order */
        uint32_t n_subsys;
        uint64_t auth_window_ms;                  /* start of the second counted below */
        uint32_t auth_window_failures;            /* failed hellos in it, all connections */
        struct srv_peer *peers[SRV_PEER_BUCKETS]; /* owned: peers with connections or failures */
        uint64_t buffered_reserved;               /* sum of conn->reserved */
        struct srv_conn *budget_waiters, **budget_tail; /* FIFO of conns waiting to read */
};

/* One request in progress. The worker part (srv_req_work) reads req and the
 * store and appends framed responses to out; the loop writes them. A stream
 * keeps its state in `state` and is queued again for each chunk. */
struct srv_req {
        uv_work_t work;
        struct srv_conn *c; /* loop side only */
        struct srv *srv;
        proto_request *req; /* owned */
        uint64_t request_id;
        struct dm_buf out; /* framed responses of this round */
        bool done;         /* the last response is in out */
        bool stream;       /* export / get_batches: one chunk per round */
        void *state;       /* stream state, owned (srv_req_state_free) */
        uint64_t rows_ingested;
        bool needs_seal;
        char *seal_dataset;          /* borrowed from req */
        bool ordered;                /* a mutation: runs after the connection's earlier ones */
        struct srv_req *next_parked; /* link in c->parked or c->ordered */
        uint64_t uptime_s;           /* stats: captured on the loop */
        uint32_t conns_open;         /* stats: captured on the loop */
        uint64_t t0_ns;              /* uv_hrtime() when the request arrived */
};

/* Subsystems of a server (jobs, seal threads, the batch cache): their life
 * cycle hooks, called in table order by server.c and hooks.c. Every hook may
 * be NULL. */
struct srv_subsystem {
        const char *name;
        /* srv_new, after the store is open and before the listeners. */
        int (*start)(struct srv *s, char *errmsg, size_t errmsg_size);
        void (*drain)(struct srv *s);            /* srv_shutdown: stop taking work */
        bool (*idle)(struct srv *s);             /* draining: true once it no longer uses
                                                    the store (may join threads) */
        void (*stop)(struct srv *s);             /* all idle: join threads, close handles */
        void (*conn_closed)(struct srv_conn *c); /* c is closing: drop what refers to it */
        void (*free)(struct srv *s);             /* srv_free */
};

/* hooks.c: the drain's end. Once draining and nothing is left (no
 * connection, no queued work, every subsystem idle), stops the subsystems,
 * closes the sweep timer and the store, and calls the done callback. Any
 * file may call it after finishing work; it calls nothing by name. */
void srv_maybe_stop(struct srv *s);
/* Tell every subsystem that c is closing. */
void srv_subsystems_conn_closed(struct srv_conn *c);

/* conn.c: connections (reading, frames, the request runner, dispatch). */
extern const struct srv_transport srv_conn_transport; /* transport.h */
void srv_conn_close(struct srv_conn *c);
void srv_conn_write(struct srv_conn *c, struct dm_buf *b);
void srv_conn_error(struct srv_conn *c, uint64_t request_id, int err, const char *msg);
/* Close once nothing more is owed to the client (refused, drained, eof). */
void srv_conn_maybe_finish(struct srv_conn *c);
/* Start reading c (accepted, or a pause is over), unless it must not read. */
void srv_conn_read_start(struct srv_conn *c);
/* The timer that enforces idle, frame and authentication deadlines and
 * answers held hellos (every 100 ms). */
void srv_conns_sweep(uv_timer_t *t);
/* srv_shutdown: stop reading every connection, end parked streams. */
void srv_conns_drain(struct srv *s);
/* Checks (in-flight cap, authentication, roles: the route table) and runs
 * req (taken) on the loop or on the worker pool. */
void srv_dispatch(struct srv_conn *c, proto_request *req);
/* A request record for req (taken) on c, counted in flight, not queued
 * anywhere; NULL after answering an out-of-memory error. End it with
 * srv_req_end. */
struct srv_req *srv_req_new(struct srv_conn *c, proto_request *req);
/* Done with a request that is not on the worker pool: write nothing more,
 * free it, let the connection go on (or close when it is finished). */
void srv_req_end(struct srv_req *r);

/* routes.c: what reads the route table on the worker pool (routes.h). */
bool srv_request_streams(const proto_request *req); /* export, get_batches */
void srv_req_work(struct srv_req *r);               /* worker thread: one round */
void srv_req_state_free(struct srv_req *r);

/* listen.c: listeners and accepting connections. */
int srv_listener_open(struct srv *s, const char *text, char *errmsg, size_t errmsg_size);
void srv_listeners_close(struct srv *s);

/* sealer.c: background seals on the server's seal threads. */
void srv_seal_schedule(struct srv *s, const char *dataset);
void srv_sealer_drain(struct srv *s); /* queued seals are dropped (rows stay staged) */
void srv_sealer_stop(struct srv *s);  /* no seal left: join the threads */

/* metrics.c: the parts of a StatsReply beyond the plain counters (datasets,
 * per-dataset storage, per-type requests, seals, map use, jobs). Worker
 * thread: reads the store. The arrays it points st at are owned by *ret_more
 * until srv_stats_reply_release (after the reply is encoded). */
struct srv_stats_reply {
        Dream__V1__RequestTypeStats *types, **type_ptrs;
        Dream__V1__DatasetStats *datasets, **dataset_ptrs;
        char **names; /* owned (store_names_free) */
        uint32_t n_names;
};
int srv_stats_reply_fill(struct srv *s, Dream__V1__StatsReply *st,
                         struct srv_stats_reply *ret_more);
void srv_stats_reply_release(struct srv_stats_reply *more);

/* jobs.c: training jobs (the files: jobs_internal.h). init after the store
 * is open; shutdown when draining (cancels running jobs, ends watches); idle
 * tells srv_maybe_stop whether job threads still use the store (and then
 * joins them). */
struct srv_jobs_stats {
        uint32_t queued, running;
        uint64_t done, failed, cancelled; /* since the store was created */
        double train_seconds;             /* fitting time of the done jobs */
};
int srv_jobs_init(struct srv *s, char *errmsg, size_t errmsg_size);
void srv_jobs_shutdown(struct srv *s);
bool srv_jobs_idle(struct srv *s);
void srv_jobs_free(struct srv *s);
void srv_jobs_stats(struct srv *s, struct srv_jobs_stats *ret);
/* jobs_watch.c, loop thread: c is closing; end its watches. */
void srv_jobs_conn_closed(struct srv_conn *c);

/* batches.c (handlers in routes.h) */
void srv_batches_free(struct srv *s); /* the batch cache; no stream may be left */
/* A ready cached copy of the first `rows` rows (at least) of dataset (name,
 * id), as float32 rows of n_cols cells (the target in its column, each cell
 * (float)gd_value_f64), held until srv_batch_cache_put(*ret_ref); NULL when
 * the cache has none ready (nothing is decoded for the caller). */
const float *srv_batch_cache_peek(struct srv *s, const char *name, uint32_t id, uint64_t rows,
                                  uint32_t n_cols, void **ret_ref);
void srv_batch_cache_put(struct srv *s, void *ref);

#endif
