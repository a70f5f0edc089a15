/* The route table: one row per request kind (Request.body of dream.proto),
 * indexed by its body case. Every fact the server needs about a kind is in
 * its row: the roles that may send it, how it runs (on the loop or on the
 * worker pool; ordered after the connection's earlier mutations; streamed
 * in several rounds) and the functions that answer it and free its state.
 * Adding a request is one row here and its handler (docs/adding-a-request.md).
 *
 * Validation stays in proto/validate.c (proto does not depend on server/).
 */
#ifndef DREAM_SERVER_ROUTES_H
#define DREAM_SERVER_ROUTES_H

#include <stdbool.h>

#include "server/internal.h"

/* Rows: body field numbers are below 90 (dream.proto groups end at 89). */
#define SRV_ROUTES 90u

#define SRV_ROUTE_LOOP 1u /* answered on the loop thread (loop), else on the pool (work) */
#define SRV_ROUTE_ORDERED                                                                          \
        2u                  /* a mutation: runs after the connection's earlier ones, one at a      \
                               time, and counts as a write for the watchdog */
#define SRV_ROUTE_STREAM 4u /* several responses: work runs once per round (see srv_req) */
#define SRV_ROUTE_NOAUTH 8u /* may come before authentication (hello) */

struct srv_route {
        const char *name; /* the body field of dream.proto */
        unsigned roles;   /* SRV_ROLE_* bits that may send it (admin always may);
                             SRV_ROLES_ALL: every connection */
        unsigned flags;   /* SRV_ROUTE_* */
        /* Worker thread: one round of the answer into r->out (sets r->done
         * with the last response). May touch only r, the store and __atomic
         * counters. */
        void (*work)(struct srv_req *r);
        /* Loop thread (SRV_ROUTE_LOOP): answer on c; true when it took req
         * (it is answered later), false when the caller frees req. */
        bool (*loop)(struct srv_conn *c, proto_request *req);
        void (*state_free)(void *state); /* r->state; NULL: dm_free */
};

extern const struct srv_route srv_routes[SRV_ROUTES];

/* The row of body_case, or NULL when the kind has none (unknown number). */
const struct srv_route *srv_route(int body_case);

/* handlers.c: datasets, stats, backup (worker thread). */
void srv_h_create(struct srv_req *r);
void srv_h_list(struct srv_req *r);
void srv_h_describe(struct srv_req *r);
void srv_h_drop(struct srv_req *r);
void srv_h_ingest(struct srv_req *r);
void srv_h_flush(struct srv_req *r);
void srv_h_export(struct srv_req *r);
void srv_h_stats(struct srv_req *r);
void srv_h_backup(struct srv_req *r);
/* session.c: hello, server_info (loop thread). */
bool srv_h_hello(struct srv_conn *c, proto_request *req);
bool srv_h_server_info(struct srv_conn *c, proto_request *req);
/* batches.c: one Batch per round (worker thread). */
void srv_h_batches(struct srv_req *r);
void srv_batch_state_free(void *state);
/* jobs_handlers.c: training jobs (worker thread). */
void srv_h_train(struct srv_req *r);
void srv_h_job_list(struct srv_req *r);
void srv_h_job_status(struct srv_req *r);
void srv_h_job_cancel(struct srv_req *r);
void srv_h_predict(struct srv_req *r);
void srv_h_get_model(struct srv_req *r);
/* jobs_watch.c: JobInfo streams (loop thread). */
bool srv_h_job_watch(struct srv_conn *c, proto_request *req);

#endif
