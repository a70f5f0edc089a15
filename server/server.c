/* dreamd's event loop: listeners, connections, framing, dispatch.
 *
 * Threads: everything in this file runs on the loop's thread, except the
 * job_work() functions of handlers.c, which run on libuv's worker pool and
 * touch only their own struct srv_req and the (thread-safe) store, and
 * seal_thread(), the server's own seal threads (store_seal only).
 *
 * Ownership: a connection is freed when its handle is closed and nothing
 * refers to it any more (refs: the handle, every pending write, every job in
 * flight). Write buffers belong to their write request until write_cb.
 */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "proto/frame.h"
#include "proto/status.h"
#include "proto/validate.h"
#include "server/internal.h"

static uint64_t now_ms(const struct srv *s)
{
        return uv_now(s->loop);
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
static void budget_unlink(struct srv_conn *c);
static void budget_wake(struct srv *s);

void srv_conn_close(struct srv_conn *c)
{
        struct srv *s = c->srv;

        if (c->closing)
                return;
        c->closing = true;
        if (c->reading)
                uv_read_stop(&c->h.stream);
        c->reading = false;
        srv_jobs_conn_closed(c);
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
static void conn_maybe_finish(struct srv_conn *c)
{
        if (c->closing)
                return;
        if ((c->close_after_flush || c->eof || c->srv->draining) && c->inflight == 0 &&
            c->writes_pending == 0)
                srv_conn_close(c);
}

static void read_start(struct srv_conn *c);

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
                srv_req_queue(j);
        }
}

static void resume_parked(struct srv_conn *c)
{
        while (c->parked && !c->closing && stream_may_run(c)) {
                struct srv_req *j = c->parked;
                c->parked = j->next_parked;
                j->next_parked = NULL;
                srv_req_queue(j);
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
                        read_start(c);
                }
                resume_parked(c);
                conn_maybe_finish(c);
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
        if (c->reading)
                uv_read_stop(&c->h.stream);
        c->reading = false;
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
                read_start(c);
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
                if (c->reading)
                        uv_read_stop(&c->h.stream);
                c->reading = false;
                conn_maybe_finish(c);
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
                conn_maybe_finish(c);
                return;
        }
        __atomic_fetch_add(&s->stats.bytes_in, (uint64_t)nread, __ATOMIC_RELAXED);
        c->last_activity_ms = now_ms(s);
        conn_process(c, frame_decoder_feed(&c->dec, buf->base, (size_t)nread));
}

static void read_start(struct srv_conn *c)
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

static void peer_name(struct srv_conn *c, bool is_unix)
{
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        char host[64];

        snprintf(c->peer, sizeof(c->peer), "unix");
        if (is_unix || uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) < 0)
                return;
        if (ss.ss_family == AF_INET) {
                struct sockaddr_in *a = (struct sockaddr_in *)&ss;
                uv_ip4_name(a, host, sizeof(host));
                snprintf(c->peer, sizeof(c->peer), "%s:%u", host, ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
                uv_ip6_name(a, host, sizeof(host));
                snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host, ntohs(a->sin6_port));
        }
}

/* ---- peers ------------------------------------------------------------------ */

static unsigned peer_hash(const char *key)
{
        uint32_t h = 2166136261u; /* FNV-1a */

        for (; *key; key++)
                h = (h ^ (unsigned char)*key) * 16777619u;
        return h % SRV_PEER_BUCKETS;
}

/* The entry of `key`, made when missing (NULL: out of memory). */
static struct srv_peer *peer_get(struct srv *s, const char *key)
{
        struct srv_peer **head = &s->peers[peer_hash(key)], *p;

        for (p = *head; p; p = p->next)
                if (strcmp(p->key, key) == 0)
                        return p;
        p = dm_calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        snprintf(p->key, sizeof(p->key), "%s", key);
        p->next = *head;
        *head = p;
        return p;
}

/* Forget the peers without connections whose wrong tokens are over a second
 * old (all of them when `all`). */
static void peers_prune(struct srv *s, bool all)
{
        uint64_t now = all ? 0 : now_ms(s);

        for (unsigned b = 0; b < SRV_PEER_BUCKETS; b++) {
                struct srv_peer **pp = &s->peers[b];

                while (*pp) {
                        struct srv_peer *p = *pp;

                        if (all ||
                            (p->conns == 0 && (p->failures == 0 || now - p->window_ms >= 1000))) {
                                *pp = p->next;
                                dm_free(p);
                        } else {
                                pp = &p->next;
                        }
                }
        }
}

/* Who a connection comes from: its IP address without the port; on a unix
 * socket, the peer's uid. */
static void peer_key(struct srv_conn *c, bool is_unix, char *key, size_t size)
{
        const char *colon = strrchr(c->peer, ':');
        struct ucred cr;
        socklen_t len = sizeof(cr);
        uv_os_fd_t fd;

        if (is_unix) {
                if (uv_fileno(&c->h.handle, &fd) == 0 &&
                    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
                        snprintf(key, size, "uid %u", (unsigned)cr.uid);
                else
                        snprintf(key, size, "unix");
                return;
        }
        snprintf(key, size, "%.*s", (int)(colon ? (size_t)(colon - c->peer) : strlen(c->peer)),
                 c->peer);
}

static void auth_windows(struct srv *s, struct srv_peer *p, uint64_t now)
{
        if (now - s->auth_window_ms >= 1000) {
                s->auth_window_ms = now;
                s->auth_window_failures = 0;
        }
        if (p && now - p->window_ms >= 1000) {
                p->window_ms = now;
                p->failures = 0;
        }
}

void srv_auth_failed(struct srv_conn *c)
{
        struct srv *s = c->srv;

        auth_windows(s, c->peer_ent, now_ms(s));
        s->auth_window_failures++;
        if (c->peer_ent)
                c->peer_ent->failures++;
}

/* Wrong tokens are throttled per peer, and the server-wide ceiling only
 * holds peers that failed themselves: a peer that sent no wrong token is
 * never held, and a right token is never refused (a held hello is compared
 * when its time comes, and succeeds if right). Holding the answer, rather
 * than answering BUSY at once, is what slows guessing: one guess per held
 * connection per SRV_AUTH_HOLD_MS, and a held wrong guess closes its
 * connection. */
bool srv_hello_hold(struct srv_conn *c, proto_request *req)
{
        struct srv *s = c->srv;
        struct srv_peer *p = c->peer_ent;
        uint64_t now = now_ms(s);

        if (!s->n_tokens || c->hello_released || !p)
                return false;
        auth_windows(s, p, now);
        if (p->failures < SRV_MAX_PEER_AUTH_FAILURES &&
            (p->failures == 0 || s->auth_window_failures < SRV_MAX_AUTH_FAILURES_PER_SECOND))
                return false;
        dm_debug("connection %llu (%s): hello held %u ms (%u wrong tokens from %s, %u from every "
                 "peer, in the last second)",
                 (unsigned long long)c->id, c->peer, SRV_AUTH_HOLD_MS, p->failures, p->key,
                 s->auth_window_failures);
        c->held_hello = req;
        c->held_until_ms = now + SRV_AUTH_HOLD_MS;
        c->hello_throttled = true;
        if (c->reading)
                uv_read_stop(&c->h.stream);
        c->reading = false;
        return true;
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
        read_start(c);
}

/* Answer BUSY to a connection just accepted and close it. */
static void conn_refuse(struct srv_conn *c, const char *msg)
{
        c->refused = true;
        __atomic_fetch_add(&c->srv->stats.connections_refused, 1, __ATOMIC_RELAXED);
        dm_warn("connection from %s refused: %s", c->peer, msg);
        c->close_after_flush = true;
        srv_conn_error(c, 0, DREAM_E_BUSY, msg);
        conn_maybe_finish(c);
}

static void on_connection(uv_stream_t *server, int status)
{
        struct srv_listener *l = server->data;
        struct srv *s = l->srv;
        struct srv_peer *p;
        struct srv_conn *c;
        int r;

        if (status < 0) {
                dm_warn("accept on '%s' failed: %s", l->name, uv_strerror(status));
                return;
        }
        if (s->draining)
                return;
        c = dm_calloc(1, sizeof(*c));
        if (!c) {
                dm_error("out of memory accepting a connection on '%s'", l->name);
                return;
        }
        c->srv = s;
        c->refs = 1;
        frame_decoder_init(&c->dec, s->cfg.max_frame);
        if (l->is_unix)
                r = uv_pipe_init(s->loop, &c->h.pipe, 0);
        else
                r = uv_tcp_init(s->loop, &c->h.tcp);
        if (r < 0) {
                frame_decoder_release(&c->dec);
                dm_free(c);
                return;
        }
        c->h.handle.data = c;
        s->handles_open++;
        c->id = ++s->next_conn_id;
        c->last_activity_ms = now_ms(s);
        if (uv_accept(server, &c->h.stream) < 0) {
                c->refused = true;
                srv_conn_close(c);
                return;
        }
        if (!l->is_unix)
                uv_tcp_nodelay(&c->h.tcp, 1);
        peer_name(c, l->is_unix);
        if (s->n_conns >= s->cfg.max_connections) {
                char msg[128];

                snprintf(msg, sizeof(msg), "server busy: connection limit of %u reached",
                         s->cfg.max_connections);
                conn_refuse(c, msg);
                return;
        }
        {
                char key[64], msg[192];

                peer_key(c, l->is_unix, key, sizeof(key));
                p = peer_get(s, key);
                if (!p || p->conns >= s->cfg.max_peer_conns) {
                        if (p)
                                snprintf(msg, sizeof(msg),
                                         "server busy: %u connections from %s already open "
                                         "(max_peer_connections); close some and retry",
                                         p->conns, key);
                        else
                                snprintf(msg, sizeof(msg), "server busy: out of memory");
                        conn_refuse(c, msg);
                        return;
                }
        }
        p->conns++;
        c->peer_ent = p;
        s->n_conns++;
        __atomic_fetch_add(&s->stats.connections_total, 1, __ATOMIC_RELAXED);
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        c->authed = s->n_tokens == 0;
        c->roles = c->authed ? SRV_ROLES_ALL : 0;
        /* Before a valid hello only a small frame: an unauthenticated peer
         * holds no more than that. */
        if (!c->authed && c->dec.max_len > SRV_MAX_HELLO_FRAME)
                c->dec.max_len = SRV_MAX_HELLO_FRAME;
        c->accepted_ms = now_ms(s);
        dm_debug("connection %llu from %s on '%s'", (unsigned long long)c->id, c->peer, l->name);
        read_start(c);
}

/* ---- timers ------------------------------------------------------------- */

static void sweep_cb(uv_timer_t *t)
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
                        conn_maybe_finish(c);
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
                        if (c->reading)
                                uv_read_stop(&c->h.stream);
                        c->reading = false;
                        c->close_after_flush = true;
                        srv_conn_error(c, 0, DREAM_E_AUTH, msg);
                        conn_maybe_finish(c);
                        continue;
                }
                if (!c->frame_start_ms && c->inflight == 0 && c->writes_pending == 0 &&
                    now - c->last_activity_ms > idle) {
                        dm_debug("connection %llu (%s): idle for %.0f s, closing",
                                 (unsigned long long)c->id, c->peer, s->cfg.idle_timeout);
                        srv_conn_close(c);
                }
        }
        peers_prune(s, false);
}

/* ---- listeners ---------------------------------------------------------- */

static void listener_close_cb(uv_handle_t *h)
{
        struct srv_listener *l = h->data;
        struct srv *s = l->srv;

        s->handles_open--;
        srv_maybe_stop(s);
}

static int listener_open(struct srv *s, const char *text, char *errmsg, size_t errmsg_size)
{
        struct srv_listener *l;
        struct srv_addr a;
        int r;

        r = srv_addr_parse(text, &a);
        if (r < 0)
                return srv_fail(errmsg, errmsg_size, r, "bad listen address '%s'", text);
        l = dm_calloc(1, sizeof(*l));
        if (!l)
                return DREAM_E_NOMEM;
        l->srv = s;
        l->is_unix = a.is_unix;
        if (a.is_unix) {
                struct stat st;

                r = uv_pipe_init(s->loop, &l->h.pipe, 0);
                if (r < 0)
                        goto free_l;
                /* A socket left by a previous run (stat/unlink: startup, before
                 * the loop serves anything). */
                if (lstat(a.path, &st) == 0 && S_ISSOCK(st.st_mode))
                        unlink(a.path);
                r = uv_pipe_bind(&l->h.pipe, a.path);
                snprintf(l->name, sizeof(l->name), "unix:%s", a.path);
                snprintf(l->unix_path, sizeof(l->unix_path), "%s", a.path);
        } else {
                struct sockaddr_storage ss;
                int len = sizeof(ss);

                r = uv_tcp_init(s->loop, &l->h.tcp);
                if (r < 0)
                        goto free_l;
                if (a.is_v6)
                        r = uv_ip6_addr(a.host, a.port, (struct sockaddr_in6 *)&ss);
                else
                        r = uv_ip4_addr(a.host, a.port, (struct sockaddr_in *)&ss);
                if (r == 0)
                        r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss,
                                        a.is_v6 ? UV_TCP_IPV6ONLY : 0);
                if (r == 0)
                        r = uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len);
                if (r == 0) {
                        uint16_t port = a.is_v6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                                : ntohs(((struct sockaddr_in *)&ss)->sin_port);
                        snprintf(l->name, sizeof(l->name), a.is_v6 ? "[%s]:%u" : "%s:%u", a.host,
                                 port);
                }
        }
        l->h.handle.data = l;
        s->handles_open++;
        s->listeners[s->n_listeners++] = l;
        if (r == 0)
                r = uv_listen(&l->h.stream, 511, on_connection);
        if (r < 0)
                return srv_fail(errmsg, errmsg_size, -EIO, "cannot listen on '%s': %s", text,
                                uv_strerror(r));
        return 0;
free_l:
        dm_free(l);
        return srv_fail(errmsg, errmsg_size, -EIO, "cannot listen on '%s': %s", text,
                        uv_strerror(r));
}

/* ---- tokens --------------------------------------------------------------- */

static const char *const role_words[] = {"ingest", "read", "train", "admin"};

/* A line is "TOKEN" (every role) or "ROLE[,ROLE...]:TOKEN" with roles from
 * role_words. A token holds no ':' of its own unless roles come first
 * ("admin:a:b" is the token "a:b"), and no space or tab: a typo in a role, an
 * empty role list or a space after the ':' is refused rather than read as a
 * token that never matches or that grants every role. Sets *ret_roles
 * (SRV_ROLE_* bits) and *ret_tok, or says why not in why. */
static int parse_token_line(const char *line, unsigned *ret_roles, const char **ret_tok, char *why,
                            size_t why_size)
{
        const char *colon = strchr(line, ':');
        const char *p = line, *tok = line;
        unsigned roles = SRV_ROLES_ALL;

        if (colon) {
                roles = 0;
                tok = colon + 1;
                if (colon == line)
                        return srv_fail(why, why_size, DREAM_E_INVAL,
                                        "no role before ':' (write ROLE[,ROLE...]:TOKEN with "
                                        "roles ingest, read, train, admin; or the token alone "
                                        "for every role)");
                for (;;) { /* p < colon: every role ends at ',' or at colon */
                        size_t n = strcspn(p, ",:");
                        bool known = false;

                        for (size_t i = 0; i < sizeof(role_words) / sizeof(role_words[0]); i++)
                                if (strlen(role_words[i]) == n &&
                                    strncmp(p, role_words[i], n) == 0) {
                                        known = true;
                                        roles |= 1u << i;
                                }
                        if (!known)
                                return srv_fail(why, why_size, DREAM_E_INVAL,
                                                "unknown role '%.*s' before ':' (roles: ingest, "
                                                "read, train, admin; a token alone may not "
                                                "contain ':')",
                                                (int)(n < 32 ? n : 32), p);
                        p += n;
                        if (*p != ',')
                                break;
                        p++;
                }
        }
        if (!tok[0])
                return srv_fail(why, why_size, DREAM_E_INVAL, "empty token");
        if (strpbrk(tok, " \t"))
                return srv_fail(
                    why, why_size, DREAM_E_INVAL, "the token contains a space or tab (%s)",
                    tok == line ? "write ROLE:TOKEN without spaces" : "no space may follow ':'");
        if (strlen(tok) > DREAM_MAX_TOKEN)
                return srv_fail(why, why_size, DREAM_E_INVAL, "token longer than %u bytes",
                                DREAM_MAX_TOKEN);
        *ret_roles = roles;
        *ret_tok = tok;
        return 0;
}

int srv_tokens_load(struct srv *s, const char *path, char *errmsg, size_t errmsg_size)
{
        struct dm_buf b;
        char chunk[4096], why[256];
        size_t pos = 0;
        unsigned lineno = 0;
        int fd, r = 0;

        dm_buf_init(&b);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return srv_fail(errmsg, errmsg_size, -errno, "cannot open token file '%s': %s",
                                path, strerror(errno));
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = srv_fail(errmsg, errmsg_size, -errno, "cannot read token file '%s': %s",
                                     path, strerror(errno));
                        goto release;
                }
                if (n == 0)
                        break;
                if (b.len + (size_t)n > SRV_MAX_TOKEN_FILE_BYTES) {
                        r = srv_fail(errmsg, errmsg_size, DREAM_E_LIMIT,
                                     "token file '%s': larger than %u bytes", path,
                                     SRV_MAX_TOKEN_FILE_BYTES);
                        goto release;
                }
                r = dm_buf_append(&b, chunk, (size_t)n);
                if (r < 0)
                        goto release;
        }
        s->tokens = dm_calloc(SRV_MAX_TOKENS, sizeof(*s->tokens));
        if (!s->tokens) {
                r = DREAM_E_NOMEM;
                goto release;
        }
        while (pos < b.len) {
                const uint8_t *nl = memchr(b.data + pos, '\n', b.len - pos);
                size_t n = nl ? (size_t)(nl - (b.data + pos)) : b.len - pos;
                char *line = dm_malloc(n + 1);
                const char *tok;
                unsigned roles = 0;
                char *e;

                lineno++;
                if (!line) {
                        r = DREAM_E_NOMEM;
                        goto release;
                }
                memcpy(line, b.data + pos, n);
                line[n] = '\0';
                pos += n + (nl ? 1 : 0);
                e = line + strlen(line);
                while (e > line && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                        *--e = '\0';
                tok = line;
                while (*tok == ' ' || *tok == '\t')
                        tok++;
                if (!tok[0] || tok[0] == '#') {
                        dm_free(line);
                        continue;
                }
                r = parse_token_line(tok, &roles, &tok, why, sizeof(why));
                if (r == 0 && s->n_tokens >= SRV_MAX_TOKENS)
                        r = srv_fail(why, sizeof(why), DREAM_E_LIMIT, "more than %u tokens",
                                     SRV_MAX_TOKENS);
                if (r < 0) {
                        dm_free(line);
                        srv_fail(errmsg, errmsg_size, r, "token file '%s', line %u: %s", path,
                                 lineno, why);
                        goto release;
                }
                /* Stored as one byte of role bits, then the token. */
                s->tokens[s->n_tokens] = dm_malloc(strlen(tok) + 2);
                if (!s->tokens[s->n_tokens]) {
                        dm_free(line);
                        r = DREAM_E_NOMEM;
                        goto release;
                }
                s->tokens[s->n_tokens][0] = (char)roles;
                memcpy(s->tokens[s->n_tokens] + 1, tok, strlen(tok) + 1);
                dm_free(line);
                s->n_tokens++;
        }
        if (s->n_tokens == 0)
                r = srv_fail(errmsg, errmsg_size, DREAM_E_INVAL, "token file '%s': no token in it",
                             path);
release:
        dm_buf_release(&b);
        close(fd);
        return r;
}

/* Constant time in the contents of `given`: every configured token is
 * compared over its own full length, with no early exit. */
unsigned srv_token_roles(const struct srv *s, const char *given)
{
        size_t glen = strlen(given);
        unsigned roles = 0;

        for (uint32_t t = 0; t < s->n_tokens; t++) {
                const char *tok = s->tokens[t] + 1;
                size_t tlen = strlen(tok);
                unsigned diff = (unsigned)(tlen != glen);

                for (size_t i = 0; i < tlen; i++)
                        diff |= (unsigned char)tok[i] ^ (unsigned char)given[glen ? i % glen : 0];
                /* all ones when equal, else 0: no branch on the contents */
                roles |= (unsigned char)s->tokens[t][0] & (0u - (unsigned)(diff == 0));
        }
        return roles;
}

bool srv_token_ok(const struct srv *s, const char *given)
{
        return srv_token_roles(s, given) != 0;
}

/* ---- life cycle ----------------------------------------------------------- */

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

static void stop_done(uv_handle_t *h)
{
        struct srv *s = h->data;

        s->handles_open--;
        srv_maybe_stop(s);
}

static void sealer_abandon(struct srv *s); /* sealing, below */
static void sealer_stop(struct srv *s);

void srv_maybe_stop(struct srv *s)
{
        if (!s->draining || s->stopped)
                return;
        sealer_abandon(s); /* queued seals are dropped: staged rows are durable */
        if (s->conns || s->pending_work > 0 || !srv_jobs_idle(s))
                return;
        sealer_stop(s); /* no seal left: join the seal threads */
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
        uv_timer_start(&s->sweep, sweep_cb, 100, 100);
        r = srv_jobs_init(s, errmsg, errmsg_size);
        if (r < 0)
                goto shutdown;
        for (uint32_t i = 0; i < s->cfg.n_listen; i++) {
                r = listener_open(s, s->cfg.listen[i], errmsg, errmsg_size);
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
        struct srv_conn *c, *next;

        if (s->draining)
                return;
        s->draining = true;
        s->drain_start_ms = now_ms(s);
        s->done = done;
        s->done_arg = arg;
        srv_jobs_shutdown(s);
        for (uint32_t i = 0; i < s->n_listeners; i++) {
                struct srv_listener *l = s->listeners[i];
                if (l->unix_path[0])
                        unlink(l->unix_path);
                uv_close(&l->h.handle, listener_close_cb);
        }
        /* No new requests: stop reading; requests in flight finish and their
         * responses are flushed before each connection closes. */
        for (c = s->conns; c; c = next) {
                next = c->next;
                if (c->reading)
                        uv_read_stop(&c->h.stream);
                c->reading = false;
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
                conn_maybe_finish(c);
        }
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
        peers_prune(s, true);
        dm_free(s->rbuf);
        srv_jobs_free(s);
        srv_batch_cache_free(s->batch_cache);
        store_close(s->store);
        srv_config_release(&s->cfg);
        dm_free(s);
}

/* ---- jobs ----------------------------------------------------------------- */

static void req_free(struct srv_req *j)
{
        if (!j)
                return;
        srv_req_state_free(j);
        proto_request_free(j->req);
        dm_buf_release(&j->out);
        dm_free(j);
}

/* ---- sealing ---------------------------------------------------------------- */

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
static void sealer_abandon(struct srv *s)
{
        struct srv_sealer *sl = s->sealer;

        if (!sl || sl->abandon)
                return;
        uv_mutex_lock(&sl->lock);
        sl->abandon = true;
        uv_mutex_unlock(&sl->lock);
}

/* Drained and no seal left: join the idle threads, close the handle. */
static void sealer_stop(struct srv *s)
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
static void seal_schedule(struct srv *s, const char *dataset)
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
                seal_schedule(s, j->seal_dataset);
        j->needs_seal = false;
        srv_conn_write(c, &j->out);
        if (!j->done && !c->closing && s->draining) {
                srv_conn_error(c, j->request_id, DREAM_E_CANCELLED,
                               "server is shutting down; stream ended (resume later)");
                j->done = true;
        }
        if (j->done || c->closing) {
                bool ordered = j->ordered;
                c->inflight--;
                req_free(j);
                if (ordered)
                        run_next_ordered(c);
                resume_parked(c);
                conn_maybe_finish(c);
                conn_unref(c);
        } else {
                srv_req_queue(j); /* next chunk, now or once its turn comes */
        }
        srv_maybe_stop(s);
}

void srv_req_queue(struct srv_req *j)
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
                conn_maybe_finish(c);
                conn_unref(c);
                return;
        }
        if (j->stream)
                c->streams_running++;
        s->pending_work++;
        srv_stats_add(&s->stats.writes_queued, j->ordered);
}

bool srv_request_streams(const proto_request *req)
{
        return req->body_case == DREAM__V1__REQUEST__BODY_EXPORT ||
               req->body_case == DREAM__V1__REQUEST__BODY_GET_BATCHES;
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
        conn_maybe_finish(c);
        conn_unref(c);
}

/* Start a job for req (taken) on connection c. */
void srv_req_start(struct srv_conn *c, proto_request *req)
{
        struct srv_req *j = srv_req_new(c, req);

        if (!j)
                return;
        j->stream = srv_request_streams(req);
        j->uptime_s = (uv_now(c->srv->loop) - c->srv->start_ms) / 1000;
        j->conns_open = c->srv->n_conns;
        switch (req->body_case) {
        case DREAM__V1__REQUEST__BODY_CREATE_DATASET:
        case DREAM__V1__REQUEST__BODY_DROP_DATASET:
        case DREAM__V1__REQUEST__BODY_INGEST:
        case DREAM__V1__REQUEST__BODY_FLUSH:
                j->ordered = true;
                break;
        default:
                break;
        }
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
        srv_req_queue(j);
}
