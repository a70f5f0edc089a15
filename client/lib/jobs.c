/* libdream typed calls: training jobs, prediction, models, server metrics. */
#include <endian.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "client/lib/internal.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "proto/status.h"

/* ---- names ------------------------------------------------------------------------ */

static const char *const model_names[] = {
    NULL, "linear", "ridge", "logistic", "softmax", "mlp", "kmeans",
};
static const char *const mode_names[] = {
    "default", "condensed", "full", "sample", "refresh", "exact",
};
static const char *const state_names[] = {
    "unknown", "queued", "running", "done", "failed", "cancelled",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

const char *dream_model_name(enum dream_model m)
{
        return (unsigned)m < N_OF(model_names) && model_names[m] ? model_names[m] : "unknown";
}

const char *dream_train_mode_name(enum dream_train_mode m)
{
        return (unsigned)m < N_OF(mode_names) ? mode_names[m] : "unknown";
}

const char *dream_job_state_name(enum dream_job_state s)
{
        return (unsigned)s < N_OF(state_names) ? state_names[s] : "unknown";
}

int dream_model_parse(const char *s, enum dream_model *ret)
{
        for (unsigned i = 1; s && i < N_OF(model_names); i++) {
                if (strcmp(s, model_names[i]) == 0) {
                        *ret = (enum dream_model)i;
                        return 0;
                }
        }
        return DREAM_E_INVAL;
}

int dream_train_mode_parse(const char *s, enum dream_train_mode *ret)
{
        /* "default" is not a name a user gives. */
        for (unsigned i = 1; s && i < N_OF(mode_names); i++) {
                if (strcmp(s, mode_names[i]) == 0) {
                        *ret = (enum dream_train_mode)i;
                        return 0;
                }
        }
        return DREAM_E_INVAL;
}

static void copy_str(char *dst, size_t size, const char *s)
{
        snprintf(dst, size, "%s", s ? s : "");
}

void dream_free(void *p)
{
        dm_free(p);
}

/* ---- stats --------------------------------------------------------------------------- */

void dream_stats_release(struct dream_stats *s)
{
        size_t size;

        if (!s || s->size < sizeof(size_t))
                return;
        /* Only the members within the caller's size exist. */
        if (DCL_HAS(s, requests_by_type))
                dm_free(s->requests_by_type);
        if (DCL_HAS(s, dataset_stats))
                dm_free(s->dataset_stats);
        size = s->size < sizeof(*s) ? s->size : sizeof(*s);
        memset((char *)s + sizeof(size_t), 0, size - sizeof(size_t));
}

int dream_stats(struct dream_client *c, struct dream_stats *ret)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Stats m = DREAM__V1__STATS__INIT;
        const Dream__V1__StatsReply *s;
        struct dream_stats st = DREAM_INIT(struct dream_stats);
        proto_response *resp;
        int r;

        r = dcl_sized_check(c, "dream_stats", ret);
        if (r < 0)
                return r;
        req.body_case = DREAM__V1__REQUEST__BODY_STATS;
        req.stats = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_STATS, &resp);
        if (r < 0)
                return r;
        s = resp->stats;
        st.uptime_seconds = s->uptime_seconds;
        st.connections_open = s->connections_open;
        st.connections_total = s->connections_total;
        st.connections_refused = s->connections_refused;
        st.requests_total = s->requests_total;
        st.request_errors_total = s->request_errors_total;
        st.bytes_in = s->bytes_in;
        st.bytes_out = s->bytes_out;
        st.rows_ingested = s->rows_ingested;
        st.batches_served = s->batches_served;
        st.jobs_running = s->jobs_running;
        st.jobs_queued = s->jobs_queued;
        st.datasets = s->datasets;
        st.store_map_bytes = s->store_map_bytes;
        st.store_used_bytes = s->store_used_bytes;
        st.ingest_ack_p50_seconds = s->ingest_ack_p50_seconds;
        st.ingest_ack_p99_seconds = s->ingest_ack_p99_seconds;
        st.ingest_commits = s->ingest_commits;
        st.seals_total = s->seals_total;
        st.seal_seconds_total = s->seal_seconds_total;
        st.seal_errors_total = s->seal_errors_total;
        st.store_map_max_bytes = s->store_map_max_bytes;
        st.jobs_done = s->jobs_done;
        st.jobs_failed = s->jobs_failed;
        st.jobs_cancelled = s->jobs_cancelled;
        st.train_seconds_total = s->train_seconds_total;
        /* The arrays hold what the reply holds (already decoded). */
        if (s->n_requests_by_type) {
                st.requests_by_type =
                    dm_calloc(s->n_requests_by_type, sizeof(*st.requests_by_type));
                if (!st.requests_by_type)
                        goto nomem;
                st.n_requests_by_type = s->n_requests_by_type;
                for (size_t i = 0; i < s->n_requests_by_type; i++) {
                        const Dream__V1__RequestTypeStats *t = s->requests_by_type[i];
                        struct dream_request_stats *o = &st.requests_by_type[i];
                        copy_str(o->type, sizeof(o->type), t->type);
                        o->requests = t->requests;
                        o->errors = t->errors;
                }
        }
        if (s->n_dataset_stats) {
                st.dataset_stats = dm_calloc(s->n_dataset_stats, sizeof(*st.dataset_stats));
                if (!st.dataset_stats)
                        goto nomem;
                st.n_dataset_stats = s->n_dataset_stats;
                for (size_t i = 0; i < s->n_dataset_stats; i++) {
                        const Dream__V1__DatasetStats *d = s->dataset_stats[i];
                        struct dream_dataset_stats *o = &st.dataset_stats[i];
                        copy_str(o->name, sizeof(o->name), d->name);
                        o->stored_bytes = d->stored_bytes;
                        o->rows = d->rows;
                }
        }
        proto_response_free(resp);
        /* Arrays an older caller has no member for are not handed over. */
        if (!DCL_HAS(ret, requests_by_type))
                dm_free(st.requests_by_type);
        if (!DCL_HAS(ret, dataset_stats))
                dm_free(st.dataset_stats);
        dcl_sized_out(ret, &st, sizeof(st));
        return 0;
nomem:
        dream_stats_release(&st);
        proto_response_free(resp);
        dcl_set_err(c, "out of memory");
        return DREAM_E_NOMEM;
}

/* ---- jobs ------------------------------------------------------------------------------ */

int dream_train(struct dream_client *c, const char *dataset, const struct dream_train_opts *opts,
                uint64_t *ret_job_id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Train m = DREAM__V1__TRAIN__INIT;
        Dream__V1__Budget budget = DREAM__V1__BUDGET__INIT;
        struct dream_train_opts o;
        uint32_t hidden[2];
        proto_response *resp;
        uint64_t id;
        int r;

        r = dcl_begin(c);
        if (r == 0 && opts) {
                /* A field the caller's size leaves out is 0, like in
                 * DREAM_INIT: the server's default, seed 0 included. */
                r = dcl_sized_in(c, "dream_train_opts", &o, opts, sizeof(o));
                opts = &o;
        }
        if (r < 0)
                return r;
        if (!dataset || !*dataset) {
                dcl_set_err(c, "a dataset name is required");
                return DREAM_E_INVAL;
        }
        if (!opts || opts->model < DREAM_MODEL_LINEAR || opts->model > DREAM_MODEL_KMEANS) {
                dcl_set_err(c, "a model kind is required");
                return DREAM_E_INVAL;
        }
        if (opts->n_hidden > 2) {
                dcl_set_err(c, "an mlp has 1 or 2 hidden layers, not %u", opts->n_hidden);
                return DREAM_E_INVAL;
        }
        m.dataset = (char *)dataset;
        m.model = (Dream__V1__ModelKind)opts->model;
        m.mode = (Dream__V1__TrainMode)opts->mode;
        if (opts->budget_fraction > 0) {
                budget.kind_case = DREAM__V1__BUDGET__KIND_FRACTION;
                budget.fraction = opts->budget_fraction;
                m.budget = &budget;
        } else if (opts->budget_rows > 0) {
                budget.kind_case = DREAM__V1__BUDGET__KIND_ROWS;
                budget.rows = opts->budget_rows;
                m.budget = &budget;
        }
        m.epochs = opts->epochs;
        m.lr = opts->lr;
        m.batch_size = opts->batch_size;
        memcpy(hidden, opts->hidden, sizeof(hidden));
        m.n_hidden = opts->n_hidden;
        m.hidden = opts->n_hidden ? hidden : NULL;
        m.k = opts->k;
        m.l2 = opts->l2;
        m.seed = opts->seed;
        m.test_dataset = (char *)(opts->test_dataset ? opts->test_dataset : "");
        m.order = (Dream__V1__BitOrder)opts->order;
        m.holdout = opts->holdout;
        m.solver = (Dream__V1__Solver)opts->solver;
        m.patience = opts->patience;
        m.early_stopping_off = opts->early_stopping_off != 0;
        req.body_case = DREAM__V1__REQUEST__BODY_TRAIN;
        req.train = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_TRAIN, &resp);
        if (r < 0)
                return r;
        id = resp->train->job_id;
        proto_response_free(resp);
        if (id == 0)
                return dcl_fail(c, DREAM_E_PROTO, "the server gave the job id 0");
        *ret_job_id = id;
        return 0;
}

/* A JobInfo message into the public struct. */
static void job_info_from(const Dream__V1__JobInfo *ji, struct dream_job_info *out)
{
        memset(out, 0, sizeof(*out));
        out->size = sizeof(*out);
        out->id = ji->job_id;
        out->state = (enum dream_job_state)ji->state;
        copy_str(out->dataset, sizeof(out->dataset), ji->dataset);
        copy_str(out->test_dataset, sizeof(out->test_dataset), ji->test_dataset);
        out->model = (enum dream_model)ji->model;
        out->mode = (enum dream_train_mode)ji->mode;
        if (ji->budget && ji->budget->kind_case == DREAM__V1__BUDGET__KIND_FRACTION)
                out->budget_fraction = ji->budget->fraction;
        else if (ji->budget && ji->budget->kind_case == DREAM__V1__BUDGET__KIND_ROWS)
                out->budget_rows = ji->budget->rows;
        out->epoch = ji->epoch;
        out->epochs = ji->epochs;
        out->loss = ji->loss;
        out->elapsed_seconds = ji->elapsed_seconds;
        out->eta_seconds = ji->eta_seconds;
        out->submitted_unix = ji->submitted_unix;
        if (ji->error_code != DREAM__V1__STATUS__STATUS_OK) {
                out->error_code = proto_status_to_err(ji->error_code);
                if (out->error_code == 0)
                        out->error_code = DREAM_E_INTERNAL;
        }
        copy_str(out->error, sizeof(out->error), ji->error);
        if (out->state == DREAM_JOB_FAILED && out->error_code == 0)
                out->error_code = DREAM_E_INTERNAL;
        if (ji->result) {
                const Dream__V1__JobResult *jr = ji->result;
                struct dream_job_result *r = &out->result;

                out->has_result = 1;
                r->rows_used = jr->rows_used;
                r->prep_seconds = jr->prep_seconds;
                r->train_seconds = jr->train_seconds;
                r->peak_train_bytes = jr->peak_train_bytes;
                r->epochs = jr->epochs;
                r->evaluated_rows = jr->evaluated_rows;
                copy_str(out->evaluated_on, sizeof(out->evaluated_on), jr->evaluated_on);
                out->holdout_share = jr->holdout_share;
                out->holdout_rows = jr->holdout_rows;
                out->fit_loss = jr->fit_loss;
                out->iterations = jr->iterations;
                out->converged = jr->converged != 0;
                out->wall_seconds = jr->wall_seconds;
                out->prep_cached = jr->prep_cached != 0;
                out->l2 = jr->l2;
                out->var_scale = jr->var_scale;
                copy_str(out->solver, sizeof(out->solver), jr->solver);
                switch (jr->metrics_case) {
                case DREAM__V1__JOB_RESULT__METRICS_REGRESSION:
                        r->metrics = DREAM_METRICS_REGRESSION;
                        r->rmse = jr->regression->rmse;
                        r->mae = jr->regression->mae;
                        r->r2 = jr->regression->r2;
                        break;
                case DREAM__V1__JOB_RESULT__METRICS_CLASSIFICATION:
                        r->metrics = DREAM_METRICS_CLASSIFICATION;
                        r->accuracy = jr->classification->accuracy;
                        r->macro_f1 = jr->classification->macro_f1;
                        r->logloss = jr->classification->logloss;
                        break;
                case DREAM__V1__JOB_RESULT__METRICS_CLUSTER:
                        r->metrics = DREAM_METRICS_CLUSTER;
                        r->inertia = jr->cluster->inertia;
                        r->mean_sq_distance = jr->cluster->mean_sq_distance;
                        break;
                default:
                        r->metrics = DREAM_METRICS_NONE;
                }
        }
}

static int check_job_id(struct dream_client *c, uint64_t job_id)
{
        if (job_id == 0) {
                dcl_set_err(c, "job ids start at 1");
                return DREAM_E_INVAL;
        }
        return 0;
}

/* JobStatus or JobCancel: both answer the job's JobInfo. */
static int job_call(struct dream_client *c, uint64_t job_id, bool cancel,
                    struct dream_job_info *ret)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__JobStatus st = DREAM__V1__JOB_STATUS__INIT;
        Dream__V1__JobCancel jc = DREAM__V1__JOB_CANCEL__INIT;
        proto_response *resp;
        int r;

        r = check_job_id(c, job_id);
        if (r == 0 && ret)
                r = dcl_sized_check(c, "dream_job_info", ret);
        if (r < 0)
                return r;
        if (cancel) {
                jc.job_id = job_id;
                req.body_case = DREAM__V1__REQUEST__BODY_JOB_CANCEL;
                req.job_cancel = &jc;
        } else {
                st.job_id = job_id;
                req.body_case = DREAM__V1__REQUEST__BODY_JOB_STATUS;
                req.job_status = &st;
        }
        r = dcl_call(c, &req,
                     cancel ? DREAM__V1__RESPONSE__BODY_JOB_CANCEL
                            : DREAM__V1__RESPONSE__BODY_JOB_STATUS,
                     &resp);
        if (r < 0)
                return r;
        if (ret) {
                struct dream_job_info info;

                job_info_from(cancel ? resp->job_cancel : resp->job_status, &info);
                dcl_sized_out(ret, &info, sizeof(info));
        }
        proto_response_free(resp);
        return 0;
}

int dream_job_status(struct dream_client *c, uint64_t job_id, struct dream_job_info *ret)
{
        return job_call(c, job_id, false, ret);
}

int dream_job_cancel(struct dream_client *c, uint64_t job_id, struct dream_job_info *ret)
{
        return job_call(c, job_id, true, ret);
}

void dream_job_list_free(struct dream_job_list *list)
{
        if (!list)
                return;
        for (size_t i = 0; list->items && i < list->n; i++)
                dm_free(list->items[i]);
        dm_free(list->items);
        dm_free(list);
}

int dream_jobs(struct dream_client *c, struct dream_job_list **ret)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__JobList m = DREAM__V1__JOB_LIST__INIT;
        const Dream__V1__JobListReply *lr;
        struct dream_job_list *list = NULL;
        proto_response *resp;
        int r;

        req.body_case = DREAM__V1__REQUEST__BODY_JOB_LIST;
        req.job_list = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_JOB_LIST, &resp);
        if (r < 0)
                return r;
        lr = resp->job_list;
        list = dm_calloc(1, sizeof(*list));
        if (list)
                list->items = dm_calloc(lr->n_jobs ? lr->n_jobs : 1, sizeof(*list->items));
        if (!list || !list->items) {
                dream_job_list_free(list);
                proto_response_free(resp);
                dcl_set_err(c, "out of memory");
                return DREAM_E_NOMEM;
        }
        for (size_t i = 0; i < lr->n_jobs; i++) {
                list->items[i] = dm_malloc(sizeof(*list->items[i]));
                if (!list->items[i]) {
                        dream_job_list_free(list);
                        proto_response_free(resp);
                        dcl_set_err(c, "out of memory");
                        return DREAM_E_NOMEM;
                }
                list->n = i + 1;
                job_info_from(lr->jobs[i], list->items[i]);
        }
        proto_response_free(resp);
        *ret = list;
        return 0;
}

int dream_job_watch(struct dream_client *c, uint64_t job_id, dream_job_fn fn, void *arg,
                    struct dream_job_info *ret_last)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__JobWatch m = DREAM__V1__JOB_WATCH__INIT;
        struct dream_job_info info;
        uint64_t id;
        int r, seen = 0;

        r = dcl_begin(c);
        if (r == 0)
                r = check_job_id(c, job_id);
        if (r == 0 && ret_last)
                r = dcl_sized_check(c, "dream_job_info", ret_last);
        if (r < 0)
                return r;
        m.job_id = job_id;
        req.body_case = DREAM__V1__REQUEST__BODY_JOB_WATCH;
        req.job_watch = &m;
        r = dcl_send(c, &req, &id);
        if (r < 0)
                return r;
        for (bool more = true; more;) {
                proto_response *resp;

                r = dcl_recv(c, id, &resp);
                if (r < 0)
                        return r;
                more = resp->more;
                r = dcl_status(c, resp, DREAM__V1__RESPONSE__BODY_JOB_WATCH);
                if (r == 0) {
                        job_info_from(resp->job_watch, &info);
                        seen = 1;
                }
                proto_response_free(resp);
                if (r < 0) {
                        /* An error Response ends its stream (more = false);
                         * a wrong body does not: the connection is done. */
                        if (more)
                                dcl_fail(c, r, "%s", dream_last_error(c));
                        return r;
                }
                if (fn) {
                        int rc = fn(arg, &info);
                        if (rc != 0) {
                                if (more)
                                        dcl_fail(c, DREAM_E_CANCELLED,
                                                 "the watch of job %llu was stopped while the "
                                                 "server streams it: reconnect",
                                                 (unsigned long long)job_id);
                                return rc;
                        }
                }
        }
        if (!seen)
                return dcl_fail(c, DREAM_E_PROTO, "job watch ended without a state");
        if (ret_last)
                dcl_sized_out(ret_last, &info, sizeof(info));
        return 0;
}

/* ---- predict ------------------------------------------------------------------------------ */

void dream_prediction_free(struct dream_prediction *p)
{
        if (!p)
                return;
        dm_free(p->values);
        dm_free(p->scores);
        dm_free(p);
}

/* The reply into a new dream_prediction (shapes were validated by
 * proto_response_decode: values n * 8 bytes, scores 0 or n * classes * 4). */
static int prediction_from(struct dream_client *c, const Dream__V1__PredictReply *pr,
                           uint32_t n_sent, struct dream_prediction **ret)
{
        struct dream_prediction *p;
        size_t ns = (size_t)pr->n * pr->classes;

        if (pr->n != n_sent)
                return dcl_fail(c, DREAM_E_PROTO, "%u rows predicted for %u sent", pr->n, n_sent);
        if (pr->classes && pr->scores.len == 0)
                return dcl_fail(c, DREAM_E_PROTO, "prediction: %u classes but no scores",
                                pr->classes);
        p = dm_calloc(1, sizeof(*p));
        if (!p)
                goto nomem;
        p->n = pr->n;
        p->values = dm_mallocarray(pr->n ? pr->n : 1, sizeof(double));
        if (!p->values)
                goto nomem;
        for (uint32_t i = 0; i < pr->n; i++) {
                uint64_t u;
                memcpy(&u, pr->values.data + (size_t)i * 8, 8);
                u = le64toh(u);
                memcpy(&p->values[i], &u, 8);
        }
        if (pr->classes && pr->scores.len) {
                p->classes = pr->classes;
                p->scores = dm_mallocarray(ns ? ns : 1, sizeof(float));
                if (!p->scores)
                        goto nomem;
                proto_f32_get(p->scores, pr->scores.data, ns);
        }
        *ret = p;
        return 0;
nomem:
        dream_prediction_free(p);
        dcl_set_err(c, "out of memory");
        return DREAM_E_NOMEM;
}

static int predict_call(struct dream_client *c, Dream__V1__Predict *m, uint32_t n,
                        struct dream_prediction **ret)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        proto_response *resp;
        int r;

        req.body_case = DREAM__V1__REQUEST__BODY_PREDICT;
        req.predict = m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_PREDICT, &resp);
        if (r < 0)
                return r;
        r = prediction_from(c, resp->predict, n, ret);
        proto_response_free(resp);
        return r;
}

int dream_predict(struct dream_client *c, uint64_t job_id, const struct dream_rows *rows,
                  struct dream_prediction **ret)
{
        Dream__V1__Predict m = DREAM__V1__PREDICT__INIT;
        struct dcl_cols cols;
        int r;

        r = dcl_begin(c);
        if (r == 0)
                r = check_job_id(c, job_id);
        if (r == 0)
                r = dcl_cols_pack(c, rows, "a prediction block", &cols);
        if (r < 0)
                return r;
        m.job_id = job_id;
        m.input_case = DREAM__V1__PREDICT__INPUT_ROWS;
        m.rows = &cols.msg;
        r = predict_call(c, &m, rows->n_rows, ret);
        dcl_cols_release(&cols);
        return r;
}

int dream_predict_features(struct dream_client *c, uint64_t job_id, const float *x, uint32_t n,
                           uint32_t d, struct dream_prediction **ret)
{
        Dream__V1__Predict m = DREAM__V1__PREDICT__INIT;
        Dream__V1__FloatMatrix fm = DREAM__V1__FLOAT_MATRIX__INIT;
        size_t count;
        int r;

        r = dcl_begin(c);
        if (r == 0)
                r = check_job_id(c, job_id);
        if (r < 0)
                return r;
        if (!x || n == 0 || d == 0 || n > DREAM_MAX_BATCH_ROWS || d > DREAM_MAX_COLS ||
            __builtin_mul_overflow((size_t)n, (size_t)d, &count)) {
                dcl_set_err(c, "a feature block needs 1 to %u rows of 1 to %u features",
                            DREAM_MAX_BATCH_ROWS, DREAM_MAX_COLS);
                return DREAM_E_INVAL;
        }
        fm.n = n;
        fm.d = d;
#if __BYTE_ORDER == __LITTLE_ENDIAN
        fm.values.data = (uint8_t *)(uintptr_t)x;
        fm.values.len = count * sizeof(float);
#else
        r = proto_f32_new(x, count, &fm.values);
        if (r < 0) {
                dcl_set_err(c, "out of memory");
                return r;
        }
#endif
        m.job_id = job_id;
        m.input_case = DREAM__V1__PREDICT__INPUT_FEATURES;
        m.features = &fm;
        r = predict_call(c, &m, n, ret);
#if __BYTE_ORDER != __LITTLE_ENDIAN
        dm_free(fm.values.data);
#endif
        return r;
}

/* ---- models ---------------------------------------------------------------------------------- */

int dream_get_model(struct dream_client *c, uint64_t job_id, char **ret_json, size_t *ret_len)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__GetModel m = DREAM__V1__GET_MODEL__INIT;
        proto_response *resp;
        char *json;
        size_t len;
        int r;

        r = check_job_id(c, job_id);
        if (r < 0)
                return r;
        m.job_id = job_id;
        req.body_case = DREAM__V1__REQUEST__BODY_GET_MODEL;
        req.get_model = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_GET_MODEL, &resp);
        if (r < 0)
                return r;
        len = resp->get_model->json ? strlen(resp->get_model->json) : 0;
        json = dm_malloc(len + 1);
        if (!json) {
                proto_response_free(resp);
                dcl_set_err(c, "out of memory");
                return DREAM_E_NOMEM;
        }
        memcpy(json, len ? resp->get_model->json : "", len + 1);
        proto_response_free(resp);
        *ret_json = json;
        if (ret_len)
                *ret_len = len;
        return 0;
}
