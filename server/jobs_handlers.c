/* The job requests on the worker pool: train (checks and queues a job),
 * job_list, job_status, job_cancel, predict and get_model. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "server/job_data.h"
#include "server/jobs_internal.h"
#include "server/reply.h"
#include "server/routes.h"

/* ---- requests (worker pool) ------------------------------------------------------- */

static void reply_info(struct srv_req *j, struct tjob *t, int body)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        struct info_parts p;

        srv_job_info_fill(t, &p);
        resp.body_case = body;
        if (body == DREAM__V1__RESPONSE__BODY_JOB_STATUS)
                resp.job_status = &p.info;
        else
                resp.job_cancel = &p.info;
        srv_reply(j, &resp);
        j->done = true;
}

/* What is known of a job's size at submit, from the dataset's row and
 * column counts: k-means has no more clusters than rows, and a lower bound
 * of its memory fits in job_memory (full mode: all of it; other modes: the
 * model and what they hold per dataset row, the sample being unknown). */
static int submit_check(struct srv *s, const Dream__V1__Train *m, const struct store_info *a,
                        const struct train_params *params, char *errmsg, size_t errmsg_size)
{
        enum train_kind kind = (enum train_kind)m->model;
        uint32_t d = a->schema.n_cols - (a->schema.target >= 0 ? 1 : 0), n_classes = 0;
        enum jd_mode mode = (enum jd_mode)srv_job_default_mode(m, d);
        uint64_t fit_rows = 1, data = 0;
        struct train_params p = *params;

        uint64_t held;

        if (d == 0 || a->rows == 0)
                return 0; /* the job fails with the reason when it reads the data */
        held = jd_holdout_rows(srv_job_holdout_share(m), a->rows);
        if (a->rows < held + 2)
                return srv_fail(errmsg, errmsg_size, DREAM_E_EMPTY,
                                "dataset '%s' has %llu rows: a holdout of %llu leaves fewer than "
                                "2 to train on (lower the holdout share, or set none: a negative "
                                "holdout, --holdout 0 in dream train)",
                                m->dataset, (unsigned long long)a->rows, (unsigned long long)held);
        if (kind == TRAIN_KMEANS && p.k > a->rows)
                return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                "k-means: k = %u is larger than the %llu rows of dataset '%s'; "
                                "lower k",
                                p.k, (unsigned long long)a->rows, m->dataset);
        if (kind == TRAIN_SOFTMAX ||
            (kind == TRAIN_MLP && a->schema.task == GD_TASK_CLASSIFICATION))
                n_classes = 2; /* at least */
        if (mode == JD_FULL) {
                fit_rows = a->rows;
                data = a->rows * ((uint64_t)d + (kind != TRAIN_KMEANS)) * sizeof(float);
        } else if (mode == JD_REFRESH) {
                data = a->rows * sizeof(uint64_t);
        } else if (mode == JD_EXACT) {
                data = (uint64_t)d * d * sizeof(long double);
        }
        srv_job_default_batch(m, fit_rows, &p);
        return srv_job_memory_check(s, m, &p, d, n_classes, fit_rows, data, errmsg, errmsg_size);
}

/* Checks a Train request against its datasets (they exist, the test
 * dataset has the same columns) and its hyper-parameters; *ret_ids: the ids
 * of the training and test datasets (0 without one), to pin the job's reads
 * to; *ret_d: the training dataset's features. */
static int train_check(struct srv_req *j, const Dream__V1__Train *m, uint32_t ret_ids[2],
                       uint32_t *ret_d)
{
        struct store_info *a = NULL, *b = NULL;
        struct train_params p;
        const char *msg = NULL;
        char why[700];
        int r;

        srv_job_params_of(m, &p);
        r = train_params_validate((enum train_kind)m->model, &p, &msg);
        if (r < 0) {
                srv_req_error(j, r, "train: %s", msg ? msg : "invalid hyper-parameters");
                return r;
        }
        r = store_dataset_describe(j->srv->store, m->dataset, &a);
        if (r < 0) {
                srv_store_error(j, r, "train.dataset", m->dataset);
                return r;
        }
        r = submit_check(j->srv, m, a, &p, why, sizeof(why));
        if (r < 0) {
                srv_req_error(j, r, "train: %s", why);
                store_info_free(a);
                return r;
        }
        if (m->test_dataset[0]) {
                r = store_dataset_describe(j->srv->store, m->test_dataset, &b);
                if (r < 0) {
                        srv_store_error(j, r, "train.test_dataset", m->test_dataset);
                } else {
                        r = jd_columns_match(m->dataset, &a->schema, m->test_dataset, &b->schema,
                                             why, sizeof(why));
                        if (r < 0)
                                srv_req_error(j, r, "train.%s", why);
                }
        }
        if (r == 0) {
                ret_ids[0] = a->id;
                ret_ids[1] = b ? b->id : 0;
                *ret_d = a->schema.n_cols - (a->schema.target >= 0 ? 1 : 0);
        }
        store_info_free(a);
        store_info_free(b);
        return r;
}

void srv_h_train(struct srv_req *j)
{
        struct srv_jobs *J = j->srv->jobs;
        const Dream__V1__Train *m = j->req->train;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__TrainReply tr = DREAM__V1__TRAIN_REPLY__INIT;
        struct tjob *t;
        uint8_t *packed;
        uint32_t ids[2] = {0, 0}, d = 0;
        size_t len;
        int r;

        if (train_check(j, m, ids, &d) < 0)
                return;
        t = dm_calloc(1, sizeof(*t));
        len = dream__v1__train__get_packed_size(m);
        packed = dm_malloc(len + 1);
        if (t && packed) {
                dream__v1__train__pack(m, packed);
                t->train = dream__v1__train__unpack(NULL, len, packed);
        }
        dm_free(packed);
        if (!t || !t->train) {
                srv_job_free(t);
                srv_req_error(j, DREAM_E_NOMEM, "train: out of memory");
                return;
        }
        /* The mode it runs in, recorded: an unset mode is the model's default. */
        t->train->mode = srv_job_default_mode(t->train, d);
        t->state = DREAM__V1__JOB_STATE__JOB_STATE_QUEUED;
        {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                t->submitted_unix = (uint64_t)ts.tv_sec;
                t->submitted_real = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        }
        t->target = -1;
        t->dataset_id = ids[0];
        t->test_dataset_id = ids[1];
        pthread_mutex_lock(&J->lock);
        if (J->stopping || J->queued >= __atomic_load_n(&j->srv->cfg.job_queue, __ATOMIC_RELAXED)) {
                bool stopping = J->stopping;
                uint32_t queued = J->queued;
                pthread_mutex_unlock(&J->lock);
                srv_job_free(t);
                if (stopping)
                        srv_req_error(j, DREAM_E_CANCELLED, "train: dreamd is shutting down");
                else
                        srv_req_error(j, DREAM_E_BUSY,
                                      "train: %u jobs already queued (job_queue); retry later",
                                      queued);
                return;
        }
        t->id = J->next_id++;
        J->queued++; /* reserved; the job becomes visible once recorded */
        pthread_mutex_unlock(&J->lock);
        r = srv_job_persist(J, t, 0, NULL, 0);
        if (r < 0) {
                pthread_mutex_lock(&J->lock);
                J->queued--;
                pthread_mutex_unlock(&J->lock);
                srv_job_free(t);
                srv_req_error(j, r, "train: the job could not be recorded in the store (%s)",
                              dream_strerror(r));
                return;
        }
        dm_info("job %llu queued: %s on dataset '%s'", (unsigned long long)t->id,
                train_kind_name((enum train_kind)m->model), m->dataset);
        pthread_mutex_lock(&J->lock);
        t->next = J->all;
        J->all = t;
        pthread_cond_signal(&J->cv);
        pthread_mutex_unlock(&J->lock);
        tr.job_id = t->id;
        resp.body_case = DREAM__V1__RESPONSE__BODY_TRAIN;
        resp.train = &tr;
        srv_reply(j, &resp);
        j->done = true;
}

void srv_h_job_list(struct srv_req *j)
{
        struct srv_jobs *J = j->srv->jobs;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__JobListReply lr = DREAM__V1__JOB_LIST_REPLY__INIT;
        struct info_parts *parts = NULL;
        Dream__V1__JobInfo **infos = NULL;
        size_t n = 0;

        pthread_mutex_lock(&J->lock);
        for (struct tjob *t = J->all; t; t = t->next)
                n++;
        parts = dm_mallocarray(n + 1, sizeof(*parts));
        infos = dm_mallocarray(n + 1, sizeof(*infos));
        if (parts && infos) {
                size_t i = 0;
                for (struct tjob *t = J->all; t; t = t->next, i++) {
                        srv_job_info_fill(t, &parts[i]);
                        infos[i] = &parts[i].info;
                }
                lr.n_jobs = n;
                lr.jobs = infos;
                resp.body_case = DREAM__V1__RESPONSE__BODY_JOB_LIST;
                resp.job_list = &lr;
                srv_reply(j, &resp);
                j->done = true;
        }
        pthread_mutex_unlock(&J->lock);
        dm_free(parts);
        dm_free(infos);
        if (!j->done)
                srv_req_error(j, DREAM_E_NOMEM, "job_list: out of memory");
}

static void h_job_status(struct srv_req *j, uint64_t id, bool cancel)
{
        struct srv_jobs *J = j->srv->jobs;
        const char *field = cancel ? "job_cancel.job_id" : "job_status.job_id";
        bool persist_it = false;
        struct tjob *t;
        int r;

        pthread_mutex_lock(&J->lock);
        t = srv_job_find(J, id);
        if (t && cancel && t->state == DREAM__V1__JOB_STATE__JOB_STATE_QUEUED) {
                t->state = DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED;
                dm_free(t->error);
                t->error = dm_strdup("cancelled by request before it started");
                t->error_code = DREAM_E_CANCELLED;
                t->version++;
                J->queued--;
                J->n_cancelled++;
                persist_it = true;
        } else if (t && cancel && t->state == DREAM__V1__JOB_STATE__JOB_STATE_RUNNING) {
                t->cancel = true; /* the fit stops at its next check */
        }
        pthread_mutex_unlock(&J->lock);
        if (!t) {
                srv_req_error(j, DREAM_E_NOTFOUND, "%s: no job %llu", field,
                              (unsigned long long)id);
                return;
        }
        r = persist_it ? srv_job_persist(J, t, 0, NULL, 0) : 0;
        pthread_mutex_lock(&J->lock);
        if (r < 0) { /* not recorded: it stays queued (it would run after a restart) */
                t->state = DREAM__V1__JOB_STATE__JOB_STATE_QUEUED;
                dm_free(t->error);
                t->error = NULL;
                t->version++;
                J->queued++;
                J->n_cancelled--;
                pthread_cond_signal(&J->cv);
        } else {
                reply_info(j, t,
                           cancel ? DREAM__V1__RESPONSE__BODY_JOB_CANCEL
                                  : DREAM__V1__RESPONSE__BODY_JOB_STATUS);
        }
        pthread_mutex_unlock(&J->lock);
        if (r < 0)
                srv_req_error(j, r,
                              "%s: job %llu stays queued: its cancellation could not be recorded "
                              "(%s)",
                              field, (unsigned long long)id, dream_strerror(r));
        if (cancel)
                srv_job_notify(J);
}

/* The model of a finished job, or an error answered to j. */
static int load_model(struct srv_req *j, uint64_t id, const char *field,
                      struct train_model **ret_model, struct record *ret_rec, void **ret_bytes)
{
        struct srv_jobs *J = j->srv->jobs;
        Dream__V1__JobState state = 0;
        struct tjob *t;
        void *bytes = NULL;
        size_t len = 0;
        int r;

        pthread_mutex_lock(&J->lock);
        t = srv_job_find(J, id);
        if (t)
                state = t->state;
        pthread_mutex_unlock(&J->lock);
        if (!t) {
                srv_req_error(j, DREAM_E_NOTFOUND, "%s: no job %llu", field,
                              (unsigned long long)id);
                return DREAM_E_NOTFOUND;
        }
        if (state != DREAM__V1__JOB_STATE__JOB_STATE_DONE) {
                srv_req_error(j, DREAM_E_INVAL, "%s: job %llu has no model (it is %s)", field,
                              (unsigned long long)id,
                              state == DREAM__V1__JOB_STATE__JOB_STATE_QUEUED    ? "queued"
                              : state == DREAM__V1__JOB_STATE__JOB_STATE_RUNNING ? "running"
                              : state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED  ? "failed"
                                                                                 : "cancelled");
                return DREAM_E_INVAL;
        }
        r = store_job_get(j->srv->store, id, &bytes, &len);
        if (r == 0)
                r = srv_job_record_parse(bytes, len, ret_rec);
        if (r == 0)
                r = train_model_from_bytes(ret_rec->model, ret_rec->model_len, ret_model);
        if (r < 0) {
                dm_free(bytes);
                srv_req_error(j, r, "%s: the model of job %llu cannot be read: %s", field,
                              (unsigned long long)id, dream_strerror(r));
                return r;
        }
        *ret_bytes = bytes;
        return 0;
}

static double wire_value(const Dream__V1__ColumnValues *cv, int64_t v)
{
        double d;

        switch (cv->kind) {
        case DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL:
                return gd_value_f64(GD_DEC, (uint8_t)cv->scale, v);
        case DREAM__V1__COLUMN_KIND__COLUMN_KIND_F64:
                memcpy(&d, &v, sizeof(d));
                return d;
        default:
                return (double)v;
        }
}

/* Predict input rows as model features: rows in the training dataset's
 * schema (target included or not) or a ready float matrix. */
static int predict_features(struct srv_req *j, const Dream__V1__Predict *m,
                            const struct record *rec, uint32_t d, float **ret_x, uint32_t *ret_n)
{
        float *x;
        int64_t *v;
        uint32_t n, skip = UINT32_MAX;
        int r = 0;

        if (m->input_case == DREAM__V1__PREDICT__INPUT_FEATURES) {
                const Dream__V1__FloatMatrix *f = m->features;
                if (f->d != d) {
                        srv_req_error(j, DREAM_E_SCHEMA,
                                      "predict.features: %u columns, the model takes %u", f->d, d);
                        return DREAM_E_SCHEMA;
                }
                x = dm_mallocarray((size_t)f->n * d + 1, sizeof(float));
                if (!x || proto_f32_read(&f->values, (size_t)f->n * d, x) < 0) {
                        dm_free(x);
                        srv_req_error(j, x ? DREAM_E_SCHEMA : DREAM_E_NOMEM,
                                      "predict.features: values do not hold %u x %u floats", f->n,
                                      d);
                        return x ? DREAM_E_SCHEMA : DREAM_E_NOMEM;
                }
                for (size_t c = 0; c < (size_t)f->n * d; c++) {
                        if (!isfinite(x[c])) {
                                srv_req_error(j, DREAM_E_INVAL,
                                              "predict.features: row %zu, column %zu is %s; "
                                              "features must be finite numbers",
                                              c / d + 1, c % d + 1,
                                              isnan(x[c]) ? "NaN" : "infinite");
                                dm_free(x);
                                return DREAM_E_INVAL;
                        }
                }
                *ret_x = x;
                *ret_n = f->n;
                return 0;
        }
        n = m->rows->n_rows;
        if (m->rows->n_columns == d + 1 && rec->target >= 0 && rec->n_cols == d + 1) {
                skip = (uint32_t)rec->target;
        } else if (m->rows->n_columns != d) {
                srv_req_error(j, DREAM_E_SCHEMA,
                              "predict.rows: %zu columns; the model takes %u features (or %u "
                              "columns with the target)",
                              m->rows->n_columns, d, d + 1);
                return DREAM_E_SCHEMA;
        }
        x = dm_mallocarray((size_t)n * d + 1, sizeof(float));
        v = dm_mallocarray((size_t)n + 1, sizeof(int64_t));
        if (!x || !v)
                r = DREAM_E_NOMEM;
        for (uint32_t c = 0, f = 0; r == 0 && c < m->rows->n_columns; c++) {
                const Dream__V1__ColumnValues *cv = m->rows->columns[c];
                if (c == skip)
                        continue;
                r = proto_values_read(&cv->values, n, v);
                if (r < 0) {
                        srv_req_error(j, r, "predict.rows.columns[%u]: %s", c, dream_strerror(r));
                        break;
                }
                for (uint32_t i = 0; r == 0 && i < n; i++) {
                        double val = wire_value(cv, v[i]);
                        x[(size_t)i * d + f] = (float)val;
                        if (!isfinite(x[(size_t)i * d + f])) {
                                r = DREAM_E_INVAL;
                                srv_req_error(j, r,
                                              "predict.rows: row %u, column %u is %s; features "
                                              "must be finite numbers%s",
                                              i + 1, c + 1,
                                              isnan(val)      ? "NaN"
                                              : isfinite(val) ? "out of the float range"
                                                              : "infinite",
                                              isfinite(val) ? " within +-3.4e38" : "");
                        }
                }
                f++;
        }
        dm_free(v);
        if (r < 0) {
                if (r == DREAM_E_NOMEM)
                        srv_req_error(j, r, "predict: out of memory");
                dm_free(x);
                return r;
        }
        *ret_x = x;
        *ret_n = n;
        return 0;
}

void srv_h_predict(struct srv_req *j)
{
        const Dream__V1__Predict *m = j->req->predict;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__PredictReply pr = DREAM__V1__PREDICT_REPLY__INIT;
        struct train_model *model = NULL;
        struct record rec = {0};
        void *bytes = NULL;
        float *x = NULL, *scores = NULL;
        double *values = NULL, *proba = NULL;
        uint8_t *vb = NULL, *sb = NULL;
        uint32_t n = 0, k = 0;
        int r;

        if (load_model(j, m->job_id, "predict.job_id", &model, &rec, &bytes) < 0)
                return;
        if (predict_features(j, m, &rec, model->d, &x, &n) < 0)
                goto free_all;
        if (model->task == TRAIN_TASK_CLASSIFICATION)
                k = model->n_classes;
        values = dm_mallocarray((size_t)n + 1, sizeof(double));
        proba = k ? dm_mallocarray((size_t)n * k + 1, sizeof(double)) : NULL;
        scores = k ? dm_mallocarray((size_t)n * k + 1, sizeof(float)) : NULL;
        vb = dm_mallocarray((size_t)n + 1, 8);
        sb = k ? dm_mallocarray((size_t)n * k + 1, 4) : NULL;
        if (!values || !vb || (k && (!proba || !scores || !sb))) {
                srv_req_error(j, DREAM_E_NOMEM, "predict: out of memory");
                goto free_all;
        }
        r = train_predict(model, x, n, values, proba);
        if (r < 0) {
                srv_req_error(j, r, "predict: %s", dream_strerror(r));
                goto free_all;
        }
        for (uint32_t i = 0; i < n; i++) {
                double v = values[i];
                uint64_t bits;
                if (k && model->classes)
                        v = model->classes[(uint32_t)values[i]];
                memcpy(&bits, &v, sizeof(bits));
                dm_put_le64(vb + (size_t)i * 8, bits);
        }
        for (size_t i = 0; k && i < (size_t)n * k; i++)
                scores[i] = (float)proba[i];
        if (k)
                proto_f32_put(sb, scores, (size_t)n * k);
        pr.n = n;
        pr.values.data = vb;
        pr.values.len = (size_t)n * 8;
        pr.classes = k;
        pr.scores.data = sb;
        pr.scores.len = sb ? (size_t)n * k * 4 : 0;
        resp.body_case = DREAM__V1__RESPONSE__BODY_PREDICT;
        resp.predict = &pr;
        srv_reply(j, &resp);
        j->done = true;
free_all:
        dm_free(x);
        dm_free(values);
        dm_free(proba);
        dm_free(scores);
        dm_free(vb);
        dm_free(sb);
        dm_free(bytes);
        train_model_free(model);
}

void srv_h_get_model(struct srv_req *j)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__ModelReply mr = DREAM__V1__MODEL_REPLY__INIT;
        struct train_model *model = NULL;
        struct record rec = {0};
        void *bytes = NULL;
        char *json = NULL;
        size_t len;
        int r;

        if (load_model(j, j->req->get_model->job_id, "get_model.job_id", &model, &rec, &bytes) < 0)
                return;
        r = train_model_to_json(model, &json, &len);
        if (r < 0) {
                srv_req_error(j, r, "get_model: %s", dream_strerror(r));
        } else {
                mr.json = json;
                resp.body_case = DREAM__V1__RESPONSE__BODY_GET_MODEL;
                resp.get_model = &mr;
                srv_reply(j, &resp);
                j->done = true;
        }
        dm_free(json);
        dm_free(bytes);
        train_model_free(model);
}

void srv_h_job_status(struct srv_req *j)
{
        h_job_status(j, j->req->job_status->job_id, false);
}

void srv_h_job_cancel(struct srv_req *j)
{
        h_job_status(j, j->req->job_cancel->job_id, true);
}
