/* What a handler may do to its connection, without touching libuv handles
 * or the connection's internals: write a response, close after the output
 * is flushed, pause and resume reading, see how many bytes are queued, and
 * keep a request open on the loop (a watch). Loop thread only. conn.c
 * implements it (srv_conn_transport); calls go through s->tx so that the
 * files that answer requests do not call back into conn.c. */
#ifndef DREAM_SERVER_TRANSPORT_H
#define DREAM_SERVER_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "server/internal.h"

struct srv_transport {
        /* Queue the framed bytes of b (taken; b is left empty). */
        void (*write)(struct srv_conn *c, struct dm_buf *b);
        /* Queue an error response (msg NULL: the error's own text). */
        void (*error)(struct srv_conn *c, uint64_t request_id, int err, const char *msg);
        /* Read nothing more; close once every response is written. */
        void (*close_after_flush)(struct srv_conn *c);
        void (*pause)(struct srv_conn *c);          /* stop reading */
        void (*resume)(struct srv_conn *c);         /* read again (unless it must not) */
        size_t (*queued)(const struct srv_conn *c); /* bytes written but not yet sent */
        bool (*closing)(const struct srv_conn *c);  /* closed or closing: writes are dropped */
        /* A request kept open on the loop (srv_req_new / srv_req_end). */
        struct srv_req *(*req_open)(struct srv_conn *c, proto_request *req);
        void (*req_close)(struct srv_req *r);
};

static inline void srv_tx_write(struct srv_conn *c, struct dm_buf *b)
{
        c->srv->tx->write(c, b);
}

static inline void srv_tx_error(struct srv_conn *c, uint64_t request_id, int err, const char *msg)
{
        c->srv->tx->error(c, request_id, err, msg);
}

static inline void srv_tx_close_after_flush(struct srv_conn *c)
{
        c->srv->tx->close_after_flush(c);
}

static inline void srv_tx_pause(struct srv_conn *c)
{
        c->srv->tx->pause(c);
}

static inline size_t srv_tx_queued(const struct srv_conn *c)
{
        return c->srv->tx->queued(c);
}

static inline bool srv_tx_closing(const struct srv_conn *c)
{
        return c->srv->tx->closing(c);
}

static inline struct srv_req *srv_tx_req_open(struct srv_conn *c, proto_request *req)
{
        return c->srv->tx->req_open(c, req);
}

static inline void srv_tx_req_close(struct srv_req *r)
{
        r->srv->tx->req_close(r);
}

#endif
