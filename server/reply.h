/* Responses of a request, for every handler (any thread). A leaf: it
 * encodes frames into buffers and counts errors, nothing else. */
#ifndef DREAM_SERVER_REPLY_H
#define DREAM_SERVER_REPLY_H

#include "server/internal.h"

/* A framed response into out; a response too large for a frame becomes an
 * error response saying so. */
void srv_put_response(struct srv *s, struct dm_buf *out, Dream__V1__Response *resp);
/* Append a framed error response to out. */
void srv_put_error(struct srv *s, struct dm_buf *out, uint64_t request_id, int err,
                   const char *msg);
/* Answer r's request: a framed response into r->out. */
void srv_reply(struct srv_req *r, Dream__V1__Response *resp);
/* A framed error response into r->out, counted for r's type; r is done. */
void srv_req_error(struct srv_req *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A store error, worded for the client; `field` names the request field that
 * holds the dataset name. */
void srv_store_error(struct srv_req *r, int err, const char *field, const char *name);

#endif
