/* Internals shared by server.c (loop, connections) and handlers.c. */
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

struct srv_job;

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
        uint32_t refs;            /* handle + pending writes + jobs */
        uint32_t inflight;        /* requests not yet fully answered */
        uint32_t writes_pending;  /* uv_write requests outstanding */
        uint32_t streams_running; /* stream rounds on the worker pool */
        size_t out_bytes;         /* bytes queued for writing */
        uint64_t last_activity_ms;
        uint64_t last_write_ms;  /* last write completion (or start) */
        uint64_t frame_start_ms; /* a partial frame started; 0: none */
        uint32_t auth_failures;
        struct srv_job *parked;  /* streams waiting for their turn (FIFO) */
        struct srv_job *ordered; /* mutations waiting for the running one (FIFO) */
        bool ordered_busy;       /* a mutation of this connection is running */
        bool reading, paused, eof, closing, close_after_flush, refused, authed;
};

struct srv_stats {
        uint64_t connections_total, connections_refused, requests_total, request_errors_total;
        uint64_t bytes_in, bytes_out, rows_ingested, batches_served;
};

struct srv_seal {
        uv_work_t work;
        struct srv *srv;
        char *dataset; /* owned */
        int r;
        uint64_t sealed;
        struct srv_seal *next;
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
        uint8_t *rbuf; /* SRV_READ_BUFFER bytes, shared by every read */
        uint64_t start_ms, drain_start_ms;
        bool draining, sweep_closed, stopped;
        srv_done_cb done;
        void *done_arg;
        struct srv_stats stats;     /* updated with __atomic builtins */
        uint64_t batch_cache_bytes; /* rows decoded for batch streams (__atomic) */
};

/* One request in progress. The worker part (srv_job_work) reads req and the
 * store and appends framed responses to out; the loop writes them. A stream
 * keeps its state in `state` and is queued again for each chunk. */
struct srv_job {
        uv_work_t work;
        struct srv_conn *c; /* loop side only */
        struct srv *srv;
        proto_request *req; /* owned */
        uint64_t request_id;
        struct dm_buf out; /* framed responses of this round */
        bool done;         /* the last response is in out */
        bool stream;       /* export / get_batches: one chunk per round */
        void *state;       /* stream state, owned (srv_job_state_free) */
        uint64_t rows_ingested;
        bool needs_seal;
        char *seal_dataset;          /* borrowed from req */
        bool ordered;                /* a mutation: runs after the connection's earlier ones */
        struct srv_job *next_parked; /* link in c->parked or c->ordered */
        uint64_t uptime_s;           /* stats: captured on the loop */
        uint32_t conns_open;         /* stats: captured on the loop */
};

/* server.c */
void srv_conn_close(struct srv_conn *c);
void srv_conn_write(struct srv_conn *c, struct dm_buf *b);
void srv_conn_error(struct srv_conn *c, uint64_t request_id, int err, const char *msg);
void srv_job_start(struct srv_conn *c, proto_request *req);
void srv_job_queue(struct srv_job *j);
void srv_maybe_stop(struct srv *s);
bool srv_token_ok(const struct srv *s, const char *given);

/* handlers.c */
/* Answer j's request: a framed response into j->out. */
void srv_reply(struct srv_job *j, Dream__V1__Response *resp);
/* A framed error response into j->out; the job is done. */
void srv_job_error(struct srv_job *j, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A store error, worded for the client; `field` names the request field that
 * holds the dataset name. */
void srv_store_error(struct srv_job *j, int err, const char *field, const char *name);
void srv_dispatch(struct srv_conn *c, proto_request *req); /* takes req */
void srv_job_work(struct srv_job *j);                      /* worker thread */
void srv_job_state_free(struct srv_job *j);
/* Append a framed error response to out (any thread). */
void srv_put_error(struct srv *s, struct dm_buf *out, uint64_t request_id, int err,
                   const char *msg);

/* batches.c */
void srv_h_batches(struct srv_job *j); /* worker thread: one Batch per round */
void srv_batch_state_free(void *state);

#endif
