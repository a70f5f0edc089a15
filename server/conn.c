/* Connections on the loop thread: reading and framing, the budget of frames
 * being received, dispatch through the route table, the request runner
 * (worker pool rounds, ordering of mutations, parked streams), writing with
 * backpressure, deadlines (the sweep timer), and the transport that
 * handlers use (transport.h).
 *
 * Ownership: a connection is freed when its handle is closed and nothing
 * refers to it any more (refs: the handle, every pending write, every
 * request in flight). Write buffers belong to their write request until
 * write_cb.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "proto/frame.h"
#include "proto/validate.h"
#include "server/auth.h"
#include "server/internal.h"
#include "server/reply.h"
#include "server/routes.h"
#include "server/transport.h"

static uint64_t now_ms(const struct srv *s)
{
        return uv_now(s->loop);
}

static void conn_pause(struct srv_conn *c)
{
        if (c->reading)
                uv_read_stop(&c->h.stream);
        c->reading = false;
}

/* ---- connections ---------------------------------------------------------- */

static void conn_unref(struct srv_conn *c)
{
        if (--c->refs > 0)
                return;
        frame_decoder_release(&c->dec);
        dm_free(c);
}

static void conn_close_cb(uv_handle_t *h)
{
        struct srv_conn *c = h->data;
        struct srv *s = c->srv;

        conn_unref(c);
        s->handles_open--;
        srv_maybe_stop(s);
}

static void req_free(struct srv_req *j);
static void req_queue(struct srv_req *j);
static void req_start(struct srv_conn *c, proto_request *req);
static void budget_unlink(struct srv_conn *c);
static void budget_wake(struct srv *s);

void srv_conn_close(struct srv_conn *c)
{
        struct srv *s = c->srv;

        if (c->closing)
                return;
        c->closing = true;
        conn_pause(c);
        srv_subsystems_conn_closed(c);
        /* Parked streams and waiting mutations are not on the worker pool:
         * end them here (their client is gone). */
        struct srv_req **queues[2] = {&c->parked, &c->ordered};
        for (int q = 0; q < 2; q++) {
                while (*queues[q]) {
                        struct srv_req *j = *queues[q];
                        *queues[q] = j->next_parked;
                        c->inflight--;
                        req_free(j);
                        conn_unref(c);
                }
        }
        if (c->prev)
                c->prev->next = c->next;
        else if (s->conns == c)
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = c->next = NULL;
        if (!c->refused)
                s->n_conns--;
        if (c->peer_ent)
                c->peer_ent->conns--;
        c->peer_ent = NULL;
        proto_request_free(c->held_hello);
        c->held_hello = NULL;
        budget_unlink(c);
        if (c->reserved) {
                s->buffered_reserved -= c->reserved;
                c->reserved = 0;
                budget_wake(s);
        }
        uv_close(&c->h.handle, conn_close_cb);
}

/* Close the connection once nothing more is owed to the client. */
void srv_conn_maybe_finish(struct srv_conn *c)
{
        if (c->closing)
                return;
        if ((c->close_after_flush || c->eof || c->srv->draining) && c->inflight == 0 &&
            c->writes_pending == 0)
                srv_conn_close(c);
}

/* A stream builds its next chunk only when the connection's output is below
 * the high mark and no other chunk of it is being built: memory per
 * connection stays within SRV_OUTPUT_HIGH + SRV_STREAM_ROUNDS chunks. */
static bool stream_may_run(const struct srv_conn *c)
{
        return c->streams_running < SRV_STREAM_ROUNDS && c->out_bytes < SRV_OUTPUT_HIGH;
}

/* The running mutation of c is over: start the next one, in request order,
 * so that pipelined creates, ingests, flushes and drops of one connection
 * apply in the order they were sent. */
static void run_next_ordered(struct srv_conn *c)
{
        c->ordered_busy = false;
        if (c->ordered && !c->closing) {
                struct srv_req *j = c->ordered;
                c->ordered = j->next_parked;
                j->next_parked = NULL;
                c->ordered_busy = true;
                req_queue(j);
        }
}

static void resume_parked(struct srv_conn *c)
{
        while (c->parked && !c->closing && stream_may_run(c)) {
                struct srv_req *j = c->parked;
                c->parked = j->next_parked;
                j->next_parked = NULL;
                req_queue(j);
        }
}

struct wreq {
        uv_write_t req;
        struct srv_conn *c;
        uint8_t *data; /* owned until write_cb */
        size_t len;
};

static void write_cb(uv_write_t *req, int status)
{
        struct wreq *w = (struct wreq *)req;
        struct srv_conn *c = w->c;

        c->out_bytes -= w->len;
        c->writes_pending--;
        c->last_write_ms = now_ms(c->srv);
        dm_free(w->data);
        dm_free(w);
        if (status < 0) {
                if (!c->closing && status != UV_ECANCELED)
                        dm_debug("connection %llu (%s): write failed: %s",
                                 (unsigned long long)c->id, c->peer, uv_strerror(status));
                srv_conn_close(c);
        } else if (!c->closing) {
                if (c->paused && c->out_bytes <= SRV_OUTPUT_LOW) {
                        c->paused = false;
                        srv_conn_read_start(c);
                }
                resume_parked(c);
                srv_conn_maybe_finish(c);
        }
        conn_unref(c);
}

/* Queue the framed bytes of `b` for writing (ownership moves; b is emptied). */
void srv_conn_write(struct srv_conn *c, struct dm_buf *b)
{
        struct srv *s = c->srv;
        struct wreq *w;
        uv_buf_t ub;
        int r;

        if (b->len == 0 || c->closing) {
                dm_buf_release(b);
                return;
        }
        w = dm_malloc(sizeof(*w));
        if (!w) {
                dm_buf_release(b);
                dm_error("connection %llu (%s): out of memory for a response, closing",
                         (unsigned long long)c->id, c->peer);
                srv_conn_close(c);
                return;
        }
        w->c = c;
        w->data = dm_buf_steal(b, &w->len);
        ub = uv_buf_init((char *)w->data, (unsigned)w->len);
        r = uv_write(&w->req, &c->h.stream, &ub, 1, write_cb);
        if (r < 0) {
                dm_free(w->data);
                dm_free(w);
                srv_conn_close(c);
                return;
        }
        if (c->writes_pending == 0)
                c->last_write_ms = now_ms(s);
        c->refs++;
        c->writes_pending++;
        c->out_bytes += w->len;
        __atomic_fetch_add(&s->stats.bytes_out, w->len, __ATOMIC_RELAXED);
        /* Backpressure: a client that does not read its responses stops
         * being read from. */
        if (c->out_bytes > SRV_OUTPUT_HIGH && c->reading) {
                uv_read_stop(&c->h.stream);
                c->reading = false;
                c->paused = true;
        }
}

void srv_conn_error(struct srv_conn *c, uint64_t request_id, int err, const char *msg)
{
        struct dm_buf b;

        dm_buf_init(&b);
        srv_put_error(c->srv, &b, request_id, err, msg);
        srv_conn_write(c, &b);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        struct srv_conn *c = h->data;

        (void)suggested;
        /* One read buffer per server: read_cb copies the bytes into the
         * connection's frame decoder before the next alloc_cb. */
        buf->base = (char *)c->srv->rbuf;
        buf->len = SRV_READ_BUFFER;
}

static void handle_frame(struct srv_conn *c, const uint8_t *msg, uint32_t len)
{
        struct srv *s = c->srv;
        proto_request *req = NULL;
        char err[512];
        int r;

        r = proto_request_unpack(msg, len, &req);
        if (r < 0) {
                __atomic_fetch_add(&s->stats.requests_total, 1, __ATOMIC_RELAXED);
                srv_stats_add(&s->stats.requests_by_type[0], 1);
                srv_stats_error(s, 0);
                snprintf(err, sizeof(err),
                         "request: %u bytes are not a valid dream.v1.Request (%s)", len,
                         dream_strerror(r));
                dm_debug("connection %llu (%s): %s", (unsigned long long)c->id, c->peer, err);
                srv_conn_error(c, 0, r, err);
                return;
        }
        __atomic_fetch_add(&s->stats.requests_total, 1, __ATOMIC_RELAXED);
        srv_stats_add(&s->stats.requests_by_type[srv_stats_type(req->body_case)], 1);
        r = proto_request_validate(req, err, sizeof(err));
        if (r < 0) {
                srv_stats_error(s, req->body_case);
                dm_debug("connection %llu (%s): request %llu refused: %s",
                         (unsigned long long)c->id, c->peer, (unsigned long long)req->request_id,
                         err);
                srv_conn_error(c, req->request_id, r, err);
                proto_request_free(req);
                return;
        }
        srv_dispatch(c, req); /* takes req */
}

/* ---- the budget of frames being received ------------------------------------
 *
 * A frame larger than SRV_MAX_HELLO_FRAME is read only once its announced
 * size is reserved out of max_buffered_bytes (all connections together); a
 * connection whose frame does not fit stops being read (TCP backpressure) and
 * waits in order (FIFO) until earlier frames are taken out or their
 * connections close. A reserved frame can always complete, and at least one
 * frame is let through even when it alone is larger than the budget, so the
 * wait always ends (frame_timeout bounds how long a frame may take). Memory
 * held by received, unprocessed bytes is then at most max_buffered_bytes plus,
 * per connection, one small frame and one socket read. */

/* Reserve the frame at the head of c's decoder if it needs it and fits;
 * `head`: c is the first waiter. False: c has to wait. */
static bool budget_take(struct srv_conn *c, bool head)
{
        struct srv *s = c->srv;
        uint64_t need;

        if (c->reserved || frame_decoder_pending(&c->dec) < FRAME_HEADER_SIZE)
                return true;
        need = frame_header_get(c->dec.data + c->dec.pos);
        if (need <= SRV_MAX_HELLO_FRAME)
                return true;
        need += FRAME_HEADER_SIZE;
        if ((!head && s->budget_waiters) ||
            (s->buffered_reserved > 0 && s->buffered_reserved + need > s->cfg.max_buffered_bytes))
                return false;
        c->reserved = need;
        s->buffered_reserved += need;
        return true;
}

static void budget_wait(struct srv_conn *c)
{
        struct srv *s = c->srv;

        if (c->budget_wait)
                return;
        dm_debug("connection %llu (%s): frame waits for max_buffered_bytes (%llu of %llu "
                 "reserved)",
                 (unsigned long long)c->id, c->peer, (unsigned long long)s->buffered_reserved,
                 (unsigned long long)s->cfg.max_buffered_bytes);
        c->budget_wait = true;
        c->budget_next = NULL;
        *s->budget_tail = c;
        s->budget_tail = &c->budget_next;
        conn_pause(c);
}

static void budget_unlink(struct srv_conn *c)
{
        struct srv *s = c->srv;
        struct srv_conn **pp;

        if (!c->budget_wait)
                return;
        for (pp = &s->budget_waiters; *pp != c; pp = &(*pp)->budget_next)
                ;
        *pp = c->budget_next;
        if (s->budget_tail == &c->budget_next)
                s->budget_tail = pp;
        c->budget_next = NULL;
        c->budget_wait = false;
}

/* Let waiting connections read, in order, while their frames fit. */
static void budget_wake(struct srv *s)
{
        struct srv_conn *c;

        while ((c = s->budget_waiters) && budget_take(c, true)) {
                budget_unlink(c);
                c->frame_start_ms = now_ms(s); /* its frame deadline starts now */
                srv_conn_read_start(c);
        }
}

/* c's decoder keeps a large buffer after a large frame: give it back. */
static void conn_shrink(struct srv_conn *c)
{
        size_t n = frame_decoder_pending(&c->dec);

        if (c->dec.cap <= FRAME_KEEP_BYTES || c->reserved)
                return;
        if (n == 0) {
                frame_decoder_release(&c->dec);
        } else if (n <= SRV_READ_BUFFER) {
                /* The shared read buffer is free between reads. */
                memcpy(c->srv->rbuf, c->dec.data + c->dec.pos, n);
                frame_decoder_release(&c->dec);
                (void)frame_decoder_feed(&c->dec, c->srv->rbuf, n);
        }
}

/* Handle the complete frames in c's decoder (r: what feeding it returned),
 * then see that the frame being received has its share of the budget. */
static void conn_process(struct srv_conn *c, int r)
{
        struct srv *s = c->srv;
        const uint8_t *msg;
        uint32_t len;
        bool took = false, wake = false;

        for (;;) {
                bool was_authed = c->authed;

                if (r == 0)
                        r = frame_decoder_next(&c->dec, &msg, &len);
                if (r <= 0)
                        break;
                took = true;
                if (c->reserved) {
                        s->buffered_reserved -= c->reserved;
                        c->reserved = 0;
                        wake = true;
                }
                handle_frame(c, msg, len);
                /* Authenticated now: frames up to max_frame (as HelloReply
                 * announced). */
                if (c->authed && !was_authed)
                        c->dec.max_len = s->cfg.max_frame;
                if (c->closing || c->close_after_flush || s->draining || c->held_hello)
                        goto wake;
                r = 0;
        }
        if (r < 0) {
                char err[200];

                if (r == DREAM_E_LIMIT)
                        snprintf(err, sizeof(err),
                                 "frame: length %u exceeds the limit of %u bytes%s; closing",
                                 frame_decoder_bad_length(&c->dec), c->dec.max_len,
                                 c->authed ? ""
                                           : " before authentication (send hello with a valid "
                                             "token first)");
                else if (r == DREAM_E_EMPTY)
                        snprintf(err, sizeof(err), "frame: length 0 is not allowed; closing");
                else
                        snprintf(err, sizeof(err), "frame: %s; closing", dream_strerror(r));
                dm_info("connection %llu (%s): protocol error: %s", (unsigned long long)c->id,
                        c->peer, err);
                /* The stream is out of sync: answer, stop reading, close once
                 * the answer and the requests in flight are out. */
                srv_conn_error(c, 0, r == DREAM_E_NOMEM ? r : DREAM_E_PROTO, err);
                c->close_after_flush = true;
                conn_pause(c);
                srv_conn_maybe_finish(c);
                goto wake;
        }
        conn_shrink(c);
        if (frame_decoder_pending(&c->dec) == 0)
                c->frame_start_ms = 0;
        else if (took || c->frame_start_ms == 0)
                c->frame_start_ms = now_ms(s);
        if (!budget_take(c, false))
                budget_wait(c);
wake:
        if (wake)
                budget_wake(s);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        struct srv_conn *c = stream->data;
        struct srv *s = c->srv;

        if (nread == 0 || c->closing)
                return;
        if (nread < 0) {
                if (c->reading)
                        uv_read_stop(stream);
                c->reading = false;
                c->eof = true;
                if (nread != UV_EOF) {
                        dm_debug("connection %llu (%s): read failed: %s", (unsigned long long)c->id,
                                 c->peer, uv_strerror((int)nread));
                        srv_conn_close(c);
                        return;
                }
                if (frame_decoder_finish(&c->dec) == DREAM_E_TRUNCATED)
                        dm_debug("connection %llu (%s): closed inside a frame (%zu bytes)",
                                 (unsigned long long)c->id, c->peer,
                                 frame_decoder_pending(&c->dec));
                if (c->reserved) { /* the frame will not complete */
                        s->buffered_reserved -= c->reserved;
                        c->reserved = 0;
                        budget_wake(s);
                }
                srv_conn_maybe_finish(c);
                return;
        }
        __atomic_fetch_add(&s->stats.bytes_in, (uint64_t)nread, __ATOMIC_RELAXED);
        c->last_activity_ms = now_ms(s);
        conn_process(c, frame_decoder_feed(&c->dec, buf->base, (size_t)nread));
}

void srv_conn_read_start(struct srv_conn *c)
{
        int r;

        if (c->closing || c->reading || c->eof || c->close_after_flush || c->srv->draining ||
            c->paused || c->budget_wait || c->held_hello)
                return;
        r = uv_read_start(&c->h.stream, alloc_cb, read_cb);
        if (r < 0) {
                srv_conn_close(c);
                return;
        }
        c->reading = true;
}

/* The held hello's time has come: answer it, then go on with what the client
 * sent after it. */
static void hello_release(struct srv_conn *c)
{
        proto_request *req = c->held_hello;

        c->held_hello = NULL;
        c->hello_released = true;
        srv_dispatch(c, req);
        c->hello_released = false;
        c->hello_throttled = false;
        if (c->closing || c->close_after_flush)
                return;
        conn_process(c, 0);
        srv_conn_read_start(c);
}

/* ---- deadlines ---------------------------------------------------------- */

void srv_conns_sweep(uv_timer_t *t)
{
        struct srv *s = t->data;
        uint64_t now = now_ms(s);
        uint64_t idle = (uint64_t)(s->cfg.idle_timeout * 1000.0);
        uint64_t frame = (uint64_t)(s->cfg.frame_timeout * 1000.0);
        struct srv_conn *c, *next;

        for (c = s->conns; c; c = next) {
                next = c->next;
                if (s->draining && now - s->drain_start_ms > frame) {
                        /* The drain deadline: a client that does not take its
                         * responses does not hold the shutdown forever. */
                        dm_warn("connection %llu (%s): closed at the end of the shutdown "
                                "deadline with %zu bytes unsent",
                                (unsigned long long)c->id, c->peer, c->out_bytes);
                        srv_conn_close(c);
                        continue;
                }
                if (c->held_hello) {
                        if (now >= c->held_until_ms)
                                hello_release(c);
                        continue;
                }
                if (c->writes_pending > 0 && now - c->last_write_ms > idle) {
                        dm_info("connection %llu (%s): closed, responses not read for %.0f s",
                                (unsigned long long)c->id, c->peer, s->cfg.idle_timeout);
                        srv_conn_close(c);
                        continue;
                }
                if (c->frame_start_ms && !c->close_after_flush && c->reading &&
                    now - c->frame_start_ms > frame) {
                        char msg[128];
                        snprintf(msg, sizeof(msg), "frame: not completed within %.3g s; closing",
                                 s->cfg.frame_timeout);
                        dm_info("connection %llu (%s): %s", (unsigned long long)c->id, c->peer,
                                msg);
                        uv_read_stop(&c->h.stream);
                        c->reading = false;
                        c->close_after_flush = true;
                        srv_conn_error(c, 0, DREAM_E_TIMEOUT, msg);
                        srv_conn_maybe_finish(c);
                        continue;
                }
                if (!c->authed && !c->close_after_flush && now - c->accepted_ms > frame) {
                        /* Requests do not keep an unauthenticated connection
                         * alive: it has frame_timeout to send a valid hello. */
                        char msg[128];
                        snprintf(msg, sizeof(msg),
                                 "authentication: no valid hello within %.3g s; closing",
                                 s->cfg.frame_timeout);
                        dm_info("connection %llu (%s): %s", (unsigned long long)c->id, c->peer,
                                msg);
                        conn_pause(c);
                        c->close_after_flush = true;
                        srv_conn_error(c, 0, DREAM_E_AUTH, msg);
                        srv_conn_maybe_finish(c);
                        continue;
                }
                if (!c->frame_start_ms && c->inflight == 0 && c->writes_pending == 0 &&
                    now - c->last_activity_ms > idle) {
                        dm_debug("connection %llu (%s): idle for %.0f s, closing",
                                 (unsigned long long)c->id, c->peer, s->cfg.idle_timeout);
                        srv_conn_close(c);
                }
        }
        srv_peers_prune(s, false);
}

/* ---- requests ------------------------------------------------------------- */

static void req_free(struct srv_req *j)
{
        if (!j)
                return;
        srv_req_state_free(j);
        proto_request_free(j->req);
        dm_buf_release(&j->out);
        dm_free(j);
}

static void req_work_cb(uv_work_t *w)
{
        srv_req_work(w->data);
}

static void req_after_cb(uv_work_t *w, int status)
{
        struct srv_req *j = w->data;
        struct srv_conn *c = j->c;
        struct srv *s = c->srv;

        (void)status;
        s->pending_work--;
        c->last_activity_ms = now_ms(s); /* a long request does not count as idle time */
        if (j->stream)
                c->streams_running--;
        if (j->rows_ingested)
                __atomic_fetch_add(&s->stats.rows_ingested, j->rows_ingested, __ATOMIC_RELAXED);
        srv_stats_add(&s->stats.ingest_commits, j->rows_ingested > 0);
        srv_stats_add(&s->stats.writes_done, j->ordered);
        j->rows_ingested = 0;
        if (j->needs_seal && !s->draining)
                srv_seal_schedule(s, j->seal_dataset);
        j->needs_seal = false;
        srv_conn_write(c, &j->out);
        if (!j->done && !c->closing && s->draining) {
                srv_conn_error(c, j->request_id, DREAM_E_CANCELLED,
                               "server is shutting down; stream ended (resume later)");
                j->done = true;
        }
        if (j->done || c->closing) {
                bool ordered = j->ordered;
                srv_latency_record(&s->stats, j->req->body_case, uv_hrtime() - j->t0_ns);
                c->inflight--;
                req_free(j);
                if (ordered)
                        run_next_ordered(c);
                resume_parked(c);
                srv_conn_maybe_finish(c);
                conn_unref(c);
        } else {
                req_queue(j); /* next chunk, now or once its turn comes */
        }
        srv_maybe_stop(s);
}

static void req_queue(struct srv_req *j)
{
        struct srv_conn *c = j->c;
        struct srv *s = c->srv;
        int r;

        if (j->stream && !stream_may_run(c)) {
                struct srv_req **pp = &c->parked;
                while (*pp)
                        pp = &(*pp)->next_parked;
                j->next_parked = NULL;
                *pp = j;
                return;
        }
        j->work.data = j;
        r = uv_queue_work(s->loop, &j->work, req_work_cb, req_after_cb);
        if (r < 0) {
                srv_conn_error(c, j->request_id, DREAM_E_INTERNAL,
                               "cannot queue the request on the worker pool");
                bool ordered = j->ordered;
                c->inflight--;
                req_free(j);
                if (ordered)
                        run_next_ordered(c);
                srv_conn_maybe_finish(c);
                conn_unref(c);
                return;
        }
        if (j->stream)
                c->streams_running++;
        s->pending_work++;
        srv_stats_add(&s->stats.writes_queued, j->ordered);
}

struct srv_req *srv_req_new(struct srv_conn *c, proto_request *req)
{
        struct srv_req *j = dm_calloc(1, sizeof(*j));

        if (!j) {
                srv_conn_error(c, req->request_id, DREAM_E_NOMEM, NULL);
                proto_request_free(req);
                return NULL;
        }
        j->c = c;
        j->srv = c->srv;
        j->req = req;
        j->request_id = req->request_id;
        j->t0_ns = uv_hrtime();
        dm_buf_init(&j->out);
        c->inflight++;
        c->refs++;
        return j;
}

void srv_req_end(struct srv_req *j)
{
        struct srv_conn *c = j->c;

        c->inflight--;
        req_free(j);
        resume_parked(c);
        srv_conn_maybe_finish(c);
        conn_unref(c);
}

/* Start req (taken) on connection c: on the worker pool, after the
 * connection's earlier mutations if it is one. */
static void req_start(struct srv_conn *c, proto_request *req)
{
        const struct srv_route *rt = srv_route(req->body_case);
        struct srv_req *j = srv_req_new(c, req);
        static const struct srv_route none = {0};

        if (!j)
                return;
        if (!rt)
                rt = &none; /* srv_req_work answers "no handler" */
        j->stream = (rt->flags & SRV_ROUTE_STREAM) != 0;
        j->ordered = (rt->flags & SRV_ROUTE_ORDERED) != 0;
        j->uptime_s = (uv_now(c->srv->loop) - c->srv->start_ms) / 1000;
        j->conns_open = c->srv->n_conns;
        if (j->ordered) {
                if (c->ordered_busy) {
                        struct srv_req **pp = &c->ordered;
                        while (*pp)
                                pp = &(*pp)->next_parked;
                        *pp = j;
                        return;
                }
                c->ordered_busy = true;
        }
        req_queue(j);
}

/* srv_shutdown: no new requests. Requests in flight finish and their
 * responses are flushed before each connection closes. */
void srv_conns_drain(struct srv *s)
{
        struct srv_conn *c, *next;

        for (c = s->conns; c; c = next) {
                next = c->next;
                conn_pause(c);
                /* Streams waiting for the client to drain: end them. */
                while (c->parked) {
                        struct srv_req *j = c->parked;
                        c->parked = j->next_parked;
                        srv_conn_error(c, j->request_id, DREAM_E_CANCELLED,
                                       "server is shutting down; stream ended (resume later)");
                        c->inflight--;
                        req_free(j);
                        conn_unref(c);
                }
                srv_conn_maybe_finish(c);
        }
}

/* ---- dispatch ------------------------------------------------------------- */

static void roles_text(unsigned roles, char *out, size_t size)
{
        static const char *const names[4] = {"ingest", "read", "train", "admin"};
        size_t at = 0;

        out[0] = '\0';
        for (unsigned i = 0; i < 4; i++)
                if (roles & (1u << i)) {
                        int n = snprintf(out + at, size - at, "%s%s", at ? "," : "", names[i]);
                        if (n < 0 || (size_t)n >= size - at)
                                return;
                        at += (size_t)n;
                }
}

void srv_dispatch(struct srv_conn *c, proto_request *req)
{
        const struct srv_route *rt = srv_route(req->body_case);
        unsigned need = rt ? rt->roles : SRV_ROLE_ADMIN; /* any of these roles, or admin */
        char msg[256];

        if (c->inflight >= SRV_MAX_INFLIGHT) {
                snprintf(msg, sizeof(msg),
                         "busy: %u requests already in progress on this connection; retry later",
                         SRV_MAX_INFLIGHT);
                srv_stats_error(c->srv, req->body_case);
                srv_conn_error(c, req->request_id, DREAM_E_BUSY, msg);
                goto free_req;
        }
        if (!c->authed && !(rt && (rt->flags & SRV_ROUTE_NOAUTH))) {
                srv_stats_error(c->srv, req->body_case);
                srv_conn_error(c, req->request_id, DREAM_E_AUTH,
                               "authentication required: send hello with a valid token first");
                goto free_req;
        }
        if (need != SRV_ROLES_ALL && !(c->roles & (need | SRV_ROLE_ADMIN))) {
                char have[64], want[64];
                roles_text(c->roles, have, sizeof(have));
                roles_text(need, want, sizeof(want));
                snprintf(msg, sizeof(msg),
                         "permission denied: this request needs role %s%s; the "
                         "token grants %s",
                         want, need == SRV_ROLE_ADMIN ? "" : " (or admin)",
                         have[0] ? have : "none");
                srv_stats_error(c->srv, req->body_case);
                srv_conn_error(c, req->request_id, DREAM_E_DENIED, msg);
                goto free_req;
        }
        if (rt && (rt->flags & SRV_ROUTE_LOOP)) {
                if (rt->loop(c, req))
                        return; /* taken: answered later */
                goto free_req;
        }
        req_start(c, req);
        return;
free_req:
        proto_request_free(req);
}

/* ---- the transport (transport.h) ------------------------------------------ */

static void tx_close_after_flush(struct srv_conn *c)
{
        c->close_after_flush = true;
        conn_pause(c);
}

static size_t tx_queued(const struct srv_conn *c)
{
        return c->out_bytes;
}

static bool tx_closing(const struct srv_conn *c)
{
        return c->closing;
}

const struct srv_transport srv_conn_transport = {
    .write = srv_conn_write,
    .error = srv_conn_error,
    .close_after_flush = tx_close_after_flush,
    .pause = conn_pause,
    .resume = srv_conn_read_start,
    .queued = tx_queued,
    .closing = tx_closing,
    .req_open = srv_req_new,
    .req_close = srv_req_end,
};
