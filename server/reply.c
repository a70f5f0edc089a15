/* Responses of a request (see reply.h). */
#include "server/reply.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/err.h"
#include "proto/status.h"

void srv_put_error(struct srv *s, struct dm_buf *out, uint64_t request_id, int err, const char *msg)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;

        proto_response_set_error(&resp, request_id, err, msg);
        __atomic_fetch_add(&s->stats.request_errors_total, 1, __ATOMIC_RELAXED);
        /* Only DREAM_E_NOMEM can fail here: then nothing is sent. */
        (void)frame_encode(out, &resp.base, __atomic_load_n(&s->cfg.max_frame, __ATOMIC_RELAXED));
}

void srv_put_response(struct srv *s, struct dm_buf *out, Dream__V1__Response *resp)
{
        int r =
            frame_encode(out, &resp->base, __atomic_load_n(&s->cfg.max_frame, __ATOMIC_RELAXED));

        if (r < 0) {
                char msg[160];
                snprintf(msg, sizeof(msg), "response: cannot be sent (%s)", dream_strerror(r));
                srv_put_error(s, out, resp->request_id, r, msg);
        }
}

void srv_req_error(struct srv_req *j, int err, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        srv_stats_error(j->srv, j->req->body_case);
        srv_put_error(j->srv, &j->out, j->request_id, err, msg);
        j->done = true;
}

/* A store error, worded for the client. `field` names the request field that
 * holds the dataset name. */
void srv_store_error(struct srv_req *j, int err, const char *field, const char *name)
{
        switch (err) {
        case DREAM_E_NOTFOUND:
                srv_req_error(j, err, "%s: no dataset '%s'", field, name);
                break;
        case DREAM_E_EXISTS:
                srv_req_error(j, err, "%s: dataset '%s' already exists", field, name);
                break;
        case DREAM_E_FULL:
                srv_req_error(j, err,
                              "dataset '%s': store full (the map size limit map_size_max was "
                              "reached, or the data directory's disk is full); free space or "
                              "raise map_size_max, then retry",
                              name);
                break;
        default:
                srv_req_error(j, err, "dataset '%s': %s", name, dream_strerror(err));
                break;
        }
}

void srv_reply(struct srv_req *j, Dream__V1__Response *resp)
{
        resp->request_id = j->request_id;
        srv_put_response(j->srv, &j->out, resp);
}
