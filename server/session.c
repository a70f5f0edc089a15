/* The session requests, answered on the loop thread without the store:
 * hello (authentication, roles) and server_info. */
#include <stdio.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "server/auth.h"
#include "server/reply.h"
#include "server/routes.h"
#include "server/transport.h"

#ifndef DREAM_VERSION
#define DREAM_VERSION "0.0.0"
#endif

/* The roles of a connection as a wire list; returns the count. */
static size_t wire_roles(unsigned roles, Dream__V1__Role out[4])
{
        static const Dream__V1__Role all[4] = {
            DREAM__V1__ROLE__ROLE_INGEST, DREAM__V1__ROLE__ROLE_READ, DREAM__V1__ROLE__ROLE_TRAIN,
            DREAM__V1__ROLE__ROLE_ADMIN};
        size_t n = 0;

        for (unsigned i = 0; i < 4; i++)
                if (roles & (1u << i))
                        out[n++] = all[i];
        return n;
}

/* Any of these roles allows the request (admin allows everything). */
/* Send resp, the answer to req, on c. */
static void answer(struct srv_conn *c, const proto_request *req, Dream__V1__Response *resp)
{
        struct dm_buf b;

        resp->request_id = req->request_id;
        dm_buf_init(&b);
        srv_put_response(c->srv, &b, resp);
        srv_tx_write(c, &b);
}

static void hello_answer(struct srv_conn *c, const proto_request *req)
{
        struct srv *s = c->srv;
        const Dream__V1__Hello *h = req->hello;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__HelloReply hr = DREAM__V1__HELLO_REPLY__INIT;
        Dream__V1__Role roles[4];

        if (s->n_tokens) {
                /* Compared in constant time, always: a right token is never
                 * refused (srv_hello_hold only delays the answer). */
                unsigned granted = srv_token_roles(s, h->token ? h->token : "");

                if (!granted) {
                        srv_auth_failed(c);
                        c->auth_failures++;
                        dm_warn("connection %llu (%s): authentication failed (client '%.64s', "
                                "%u failures)",
                                (unsigned long long)c->id, c->peer,
                                h->client_name ? h->client_name : "", c->auth_failures);
                        srv_stats_error(c->srv, req->body_case);
                        if (c->hello_throttled)
                                srv_tx_error(c, req->request_id, DREAM_E_BUSY,
                                             "hello: too many wrong tokens from this address; "
                                             "answered after a delay; closing");
                        else
                                srv_tx_error(
                                    c, req->request_id, DREAM_E_AUTH,
                                    h->token && h->token[0]
                                        ? "hello.token: not accepted"
                                        : "hello.token: missing; this server requires a token");
                        if (c->auth_failures >= SRV_MAX_AUTH_FAILURES || c->hello_throttled) {
                                /* Rate limit: a new connection per few guesses. */
                                srv_tx_close_after_flush(c);
                        }
                        return;
                }
                c->authed = true;
                c->roles = granted;
        }
        hr.protocol_version = DREAM_PROTOCOL_VERSION;
        hr.server_version = DREAM_VERSION;
        hr.auth_required = s->n_tokens > 0;
        hr.authenticated = c->authed;
        hr.n_granted_roles = wire_roles(c->roles, roles);
        hr.granted_roles = roles;
        hr.max_frame_bytes = s->cfg.max_frame;
        resp.body_case = DREAM__V1__RESPONSE__BODY_HELLO;
        resp.hello = &hr;
        answer(c, req, &resp);
}

bool srv_h_hello(struct srv_conn *c, proto_request *req)
{
        if (srv_hello_hold(c, req))
                return true; /* answered later (srv_hello_hold took req) */
        hello_answer(c, req);
        return false;
}

bool srv_h_server_info(struct srv_conn *c, proto_request *req)
{
        struct srv *s = c->srv;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__ServerInfoReply si = DREAM__V1__SERVER_INFO_REPLY__INIT;

        si.server_version = DREAM_VERSION;
        si.protocol_version = DREAM_PROTOCOL_VERSION;
        si.max_frame_bytes = s->cfg.max_frame;
        si.max_batch_rows = DREAM_MAX_BATCH_ROWS;
        si.max_connections = s->cfg.max_connections;
        si.max_jobs = s->cfg.jobs;
        si.worker_threads = s->cfg.workers;
        si.auth_required = s->n_tokens > 0;
        si.uptime_seconds = (uv_now(s->loop) - s->start_ms) / 1000;
        resp.body_case = DREAM__V1__RESPONSE__BODY_SERVER_INFO;
        resp.server_info = &si;
        answer(c, req, &resp);
        return false;
}
