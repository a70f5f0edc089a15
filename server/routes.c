/* The route table (see routes.h) and what reads it on the worker pool. */
#include "server/routes.h"

#include "common/alloc.h"
#include "common/err.h"
#include "server/reply.h"

#define ROW(body) [DREAM__V1__REQUEST__BODY_##body]

#define READ_OR_INGEST (SRV_ROLE_READ | SRV_ROLE_INGEST) /* appending needs the schema */
#define READ_OR_TRAIN  (SRV_ROLE_READ | SRV_ROLE_TRAIN)

const struct srv_route srv_routes[SRV_ROUTES] = {
    /* session: after authentication, any role */
    ROW(HELLO) = {"hello", SRV_ROLES_ALL, SRV_ROUTE_LOOP | SRV_ROUTE_NOAUTH, NULL, srv_h_hello,
                  NULL},
    ROW(SERVER_INFO) = {"server_info", SRV_ROLES_ALL, SRV_ROUTE_LOOP, NULL, srv_h_server_info,
                        NULL},
    ROW(STATS) = {"stats", SRV_ROLE_ADMIN, 0, srv_h_stats, NULL, NULL},
    /* datasets */
    ROW(CREATE_DATASET) = {"create_dataset", SRV_ROLE_INGEST, SRV_ROUTE_ORDERED, srv_h_create, NULL,
                           NULL},
    ROW(LIST_DATASETS) = {"list_datasets", READ_OR_INGEST, 0, srv_h_list, NULL, NULL},
    ROW(DESCRIBE_DATASET) = {"describe_dataset", READ_OR_INGEST, 0, srv_h_describe, NULL, NULL},
    ROW(DROP_DATASET) = {"drop_dataset", SRV_ROLE_ADMIN, SRV_ROUTE_ORDERED, srv_h_drop, NULL, NULL},
    ROW(INGEST) = {"ingest", SRV_ROLE_INGEST, SRV_ROUTE_ORDERED, srv_h_ingest, NULL, NULL},
    ROW(FLUSH) = {"flush", SRV_ROLE_INGEST, SRV_ROUTE_ORDERED, srv_h_flush, NULL, NULL},
    ROW(EXPORT) = {"export", SRV_ROLE_READ, SRV_ROUTE_STREAM, srv_h_export, NULL, NULL},
    ROW(GET_BATCHES) = {"get_batches", SRV_ROLE_READ, SRV_ROUTE_STREAM, srv_h_batches, NULL,
                        srv_batch_state_free},
    ROW(BACKUP) = {"backup", SRV_ROLE_ADMIN, 0, srv_h_backup, NULL, NULL},
    /* training and jobs */
    ROW(TRAIN) = {"train", SRV_ROLE_TRAIN, 0, srv_h_train, NULL, NULL},
    ROW(JOB_LIST) = {"job_list", READ_OR_TRAIN, 0, srv_h_job_list, NULL, NULL},
    ROW(JOB_STATUS) = {"job_status", READ_OR_TRAIN, 0, srv_h_job_status, NULL, NULL},
    ROW(JOB_WATCH) = {"job_watch", READ_OR_TRAIN, SRV_ROUTE_LOOP, NULL, srv_h_job_watch, NULL},
    ROW(JOB_CANCEL) = {"job_cancel", SRV_ROLE_TRAIN, 0, srv_h_job_cancel, NULL, NULL},
    ROW(PREDICT) = {"predict", SRV_ROLE_READ, 0, srv_h_predict, NULL, NULL},
    ROW(GET_MODEL) = {"get_model", SRV_ROLE_READ, 0, srv_h_get_model, NULL, NULL},
};

_Static_assert(sizeof(srv_routes) / sizeof(srv_routes[0]) == SRV_ROUTES,
               "one route row per Request body number");
_Static_assert(SRV_ROUTES <= SRV_STATS_TYPES, "per-type counters cover every route");

const struct srv_route *srv_route(int body_case)
{
        if (body_case <= 0 || body_case >= (int)SRV_ROUTES || !srv_routes[body_case].name)
                return NULL;
        return &srv_routes[body_case];
}

bool srv_request_streams(const proto_request *req)
{
        const struct srv_route *rt = srv_route(req->body_case);

        return rt && (rt->flags & SRV_ROUTE_STREAM);
}

void srv_req_state_free(struct srv_req *r)
{
        const struct srv_route *rt;

        if (!r->state)
                return;
        rt = r->req ? srv_route(r->req->body_case) : NULL;
        if (rt && rt->state_free)
                rt->state_free(r->state);
        else
                dm_free(r->state);
        r->state = NULL;
}

void srv_req_work(struct srv_req *r)
{
        const struct srv_route *rt = srv_route(r->req->body_case);

        if (rt && rt->work)
                rt->work(r);
        else
                srv_req_error(r, DREAM_E_INTERNAL, "request: no handler");
}
