/* Training jobs of dreamd: the job table, durable job records, and running
 * jobs on runner threads (the files of the subsystem: jobs_internal.h).
 *
 * Threads. Jobs run on `jobs` runner threads of their own, not on libuv's
 * worker pool: a fit can take minutes and would otherwise hold a worker
 * that ingest and reads need. OpenBLAS uses `blas_threads` threads per call
 * (train_set_threads), so jobs * blas_threads bounds the cores training
 * takes. The job table is shared under one mutex; a runner tells the loop
 * about every change with a uv_async_t, and the loop sends JobInfo to the
 * watchers (job_watch streams live on the loop, they cost no thread).
 *
 * Durability. A job's record (the Train request, its JobInfo, the model
 * once done) is written to the store when it is queued, when it starts and
 * when it ends. At start-up queued jobs run again; a job that was running
 * when dreamd died is marked failed (it may be what killed it). On SIGTERM
 * running jobs are cancelled and recorded as such: fits and evaluations
 * check within an epoch, every TRAIN_CHECK_SECONDS beyond one mini-batch or
 * block of rows.
 *
 * Memory. A job's fit (train_mem_estimate) and the training data it holds
 * must fit in job_memory: checked at submit with what the dataset's counts
 * tell (all of it in full mode), again once the data is read.
 */

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "proto/status.h"
#include "server/job_data.h"
#include "server/jobs_internal.h"

static double mono(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CLOCK_REALTIME seconds: submission to end spans restarts of dreamd. */
static double wall_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool srv_job_terminal(Dream__V1__JobState st)
{
        return st == DREAM__V1__JOB_STATE__JOB_STATE_DONE ||
               st == DREAM__V1__JOB_STATE__JOB_STATE_FAILED ||
               st == DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED;
}

struct tjob *srv_job_find(struct srv_jobs *J, uint64_t id)
{
        for (struct tjob *t = J->all; t; t = t->next)
                if (t->id == id)
                        return t;
        return NULL;
}

void srv_job_free(struct tjob *t)
{
        if (!t)
                return;
        if (t->train)
                dream__v1__train__free_unpacked(t->train, NULL);
        dm_free(t->error);
        dm_free(t);
}

void srv_job_notify(struct srv_jobs *J)
{
        uv_async_send(&J->async);
}

/* ---- JobInfo -------------------------------------------------------------------- */

/* Fill p from t (lock held; p points into t until the lock is released). */
void srv_job_info_fill(const struct tjob *t, struct info_parts *p)
{
        Dream__V1__JobInfo *i = &p->info;
        double now = mono();

        dream__v1__job_info__init(i);
        i->job_id = t->id;
        i->state = t->state;
        i->dataset = t->train->dataset;
        i->model = t->train->model;
        i->mode = t->train->mode ? t->train->mode : DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED;
        /* Always set: full and exact use every training row. */
        dream__v1__budget__init(&p->budget);
        if (i->mode == DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL ||
            i->mode == DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT) {
                p->budget.kind_case = DREAM__V1__BUDGET__KIND_FRACTION;
                p->budget.fraction = 1.0;
        } else if (t->train->budget &&
                   t->train->budget->kind_case != DREAM__V1__BUDGET__KIND__NOT_SET) {
                p->budget = *t->train->budget;
        } else {
                p->budget.kind_case = DREAM__V1__BUDGET__KIND_FRACTION;
                p->budget.fraction = SRV_DEFAULT_BUDGET;
        }
        i->budget = &p->budget;
        i->epoch = t->epoch;
        i->epochs = t->epochs;
        i->loss = t->loss;
        i->elapsed_seconds = srv_job_terminal(t->state) ? t->elapsed
                             : t->started               ? now - t->started
                                                        : 0;
        i->eta_seconds = -1;
        if (t->state == DREAM__V1__JOB_STATE__JOB_STATE_RUNNING && t->epoch > 0 &&
            t->epochs >= t->epoch && t->fit_started > 0)
                i->eta_seconds = (now - t->fit_started) / t->epoch * (t->epochs - t->epoch);
        i->error = t->error && srv_job_terminal(t->state) ? t->error : (char *)"";
        i->error_code = i->error[0] ? proto_status_from_err(t->error_code) : 0;
        i->submitted_unix = t->submitted_unix;
        i->test_dataset = t->train->test_dataset;
        if (!t->has_result)
                return;
        dream__v1__job_result__init(&p->res);
        p->res.rows_used = t->res.rows_used;
        p->res.prep_seconds = t->res.prep_seconds;
        p->res.train_seconds = t->res.train_seconds;
        p->res.peak_train_bytes = t->res.peak_bytes;
        p->res.epochs = t->res.epochs;
        p->res.evaluated_rows = t->res.evaluated;
        p->res.evaluated_on = (char *)t->res.evaluated_on;
        p->res.holdout_share = t->res.holdout_share;
        p->res.holdout_rows = t->res.holdout_rows;
        p->res.fit_loss = t->res.fit_loss;
        p->res.iterations = t->res.iterations;
        p->res.converged = t->res.converged;
        p->res.wall_seconds = t->res.wall_seconds;
        p->res.prep_cached = t->res.prep_cached;
        p->res.l2 = t->res.l2;
        p->res.var_scale = t->res.var_scale;
        p->res.solver = (char *)t->res.solver;
        if (t->res.has_metrics) {
                switch (t->res.task) {
                case TRAIN_TASK_REGRESSION:
                        dream__v1__regression_metrics__init(&p->reg);
                        p->reg.rmse = t->res.m.rmse;
                        p->reg.mae = t->res.m.mae;
                        p->reg.r2 = t->res.m.r2;
                        p->res.metrics_case = DREAM__V1__JOB_RESULT__METRICS_REGRESSION;
                        p->res.regression = &p->reg;
                        break;
                case TRAIN_TASK_CLASSIFICATION:
                        dream__v1__classification_metrics__init(&p->cls);
                        p->cls.accuracy = t->res.m.accuracy;
                        p->cls.macro_f1 = t->res.m.macro_f1;
                        p->cls.logloss = t->res.m.logloss;
                        p->res.metrics_case = DREAM__V1__JOB_RESULT__METRICS_CLASSIFICATION;
                        p->res.classification = &p->cls;
                        break;
                case TRAIN_TASK_CLUSTERING:
                        dream__v1__cluster_metrics__init(&p->clu);
                        p->clu.inertia = t->res.m.inertia;
                        p->clu.mean_sq_distance = t->res.m.msd;
                        p->res.metrics_case = DREAM__V1__JOB_RESULT__METRICS_CLUSTER;
                        p->res.cluster = &p->clu;
                        break;
                }
        }
        i->result = &p->res;
}

/* ---- records ---------------------------------------------------------------------- */

/* Write t's record, built under the lock; `as` (when not 0) is the state
 * recorded instead of t's own (lock not held). */
int srv_job_record_build(struct srv_jobs *J, struct tjob *t, Dream__V1__JobState as,
                         const uint8_t *model, size_t model_len, uint8_t **ret, size_t *ret_len)
{
        struct info_parts p;
        size_t tl, il;
        uint8_t *rec;

        pthread_mutex_lock(&J->lock);
        srv_job_info_fill(t, &p);
        if (as) { /* the state t is about to take (finish) */
                p.info.state = as;
                p.info.elapsed_seconds = t->elapsed;
                p.info.eta_seconds = -1;
                p.info.error = t->error ? t->error : (char *)"";
                p.info.error_code = t->error ? proto_status_from_err(t->error_code) : 0;
        }
        tl = dream__v1__train__get_packed_size(t->train);
        il = dream__v1__job_info__get_packed_size(&p.info);
        rec = dm_malloc(RECORD_HEAD + tl + il + model_len + 1);
        if (rec) {
                dm_put_le32(rec, RECORD_MAGIC);
                dm_put_le32(rec + 4, (uint32_t)t->target);
                dm_put_le32(rec + 8, t->n_cols);
                dm_put_le32(rec + 12, (uint32_t)tl);
                dm_put_le32(rec + 16, (uint32_t)il);
                dm_put_le32(rec + 20, t->dataset_id);
                dm_put_le32(rec + 24, t->test_dataset_id);
                dream__v1__train__pack(t->train, rec + RECORD_HEAD);
                dream__v1__job_info__pack(&p.info, rec + RECORD_HEAD + tl);
        }
        pthread_mutex_unlock(&J->lock);
        if (!rec)
                return DREAM_E_NOMEM;
        if (model_len)
                memcpy(rec + RECORD_HEAD + tl + il, model, model_len);
        *ret = rec;
        *ret_len = RECORD_HEAD + tl + il + model_len;
        return 0;
}

/* Write t's record, built under the lock; `as` (when not 0) is the state
 * recorded instead of t's own (lock not held). */
int srv_job_persist(struct srv_jobs *J, struct tjob *t, Dream__V1__JobState as,
                    const uint8_t *model, size_t model_len)
{
        uint8_t *rec = NULL;
        size_t len = 0;
        int r = srv_job_record_build(J, t, as, model, model_len, &rec, &len);

        if (r == 0)
                r = store_job_put(J->srv->store, t->id, rec, len);
        dm_free(rec);
        if (r < 0)
                dm_error("job %llu: cannot write its record: %s", (unsigned long long)t->id,
                         dream_strerror(r));
        return r;
}

int srv_job_record_parse(const uint8_t *rec, size_t len, struct record *ret)
{
        size_t tl, il, head;

        if (len >= RECORD_HEAD &&
            (dm_get_le32(rec) == RECORD_MAGIC || dm_get_le32(rec) == RECORD_MAGIC_2))
                head = RECORD_HEAD;
        else if (len >= RECORD_HEAD_1 && dm_get_le32(rec) == RECORD_MAGIC_1)
                head = RECORD_HEAD_1;
        else
                return DREAM_E_FORMAT;
        tl = dm_get_le32(rec + 12);
        il = dm_get_le32(rec + 16);
        if (tl > len - head || il > len - head - tl)
                return DREAM_E_TRUNCATED;
        ret->target = (int32_t)dm_get_le32(rec + 4);
        ret->n_cols = dm_get_le32(rec + 8);
        ret->dataset_id = head == RECORD_HEAD ? dm_get_le32(rec + 20) : 0;
        ret->test_dataset_id = head == RECORD_HEAD ? dm_get_le32(rec + 24) : 0;
        ret->train = rec + head;
        ret->train_len = tl;
        ret->info = rec + head + tl;
        ret->info_len = il;
        ret->model = ret->info + il;
        ret->model_len = len - head - tl - il;
        return 0;
}

static void result_from_wire(struct tjob *t, const Dream__V1__JobResult *r)
{
        t->has_result = true;
        t->res.rows_used = r->rows_used;
        t->res.prep_seconds = r->prep_seconds;
        t->res.train_seconds = r->train_seconds;
        t->res.peak_bytes = r->peak_train_bytes;
        t->res.epochs = r->epochs;
        t->res.evaluated = r->evaluated_rows;
        snprintf(t->res.evaluated_on, sizeof(t->res.evaluated_on), "%s",
                 r->evaluated_on ? r->evaluated_on : "");
        t->res.holdout_share = r->holdout_share;
        t->res.holdout_rows = r->holdout_rows;
        t->res.fit_loss = r->fit_loss;
        t->res.iterations = r->iterations;
        t->res.converged = r->converged;
        t->res.wall_seconds = r->wall_seconds;
        t->res.prep_cached = r->prep_cached;
        t->res.l2 = r->l2;
        t->res.var_scale = r->var_scale;
        snprintf(t->res.solver, sizeof(t->res.solver), "%s", r->solver ? r->solver : "");
        t->res.has_metrics = true;
        switch (r->metrics_case) {
        case DREAM__V1__JOB_RESULT__METRICS_REGRESSION:
                t->res.task = TRAIN_TASK_REGRESSION;
                t->res.m.rmse = r->regression->rmse;
                t->res.m.mae = r->regression->mae;
                t->res.m.r2 = r->regression->r2;
                break;
        case DREAM__V1__JOB_RESULT__METRICS_CLASSIFICATION:
                t->res.task = TRAIN_TASK_CLASSIFICATION;
                t->res.m.accuracy = r->classification->accuracy;
                t->res.m.macro_f1 = r->classification->macro_f1;
                t->res.m.logloss = r->classification->logloss;
                break;
        case DREAM__V1__JOB_RESULT__METRICS_CLUSTER:
                t->res.task = TRAIN_TASK_CLUSTERING;
                t->res.m.inertia = r->cluster->inertia;
                t->res.m.msd = r->cluster->mean_sq_distance;
                break;
        default:
                t->res.has_metrics = false;
        }
}

int srv_job_load_cb(void *arg, uint64_t id, const void *bytes, size_t len, int err)
{
        struct load_ctx *lc = arg;
        struct srv_jobs *J = lc->J;
        Dream__V1__JobInfo *info = NULL;
        struct record rec = {0};
        struct tjob *t;

        if (id >= J->next_id)
                J->next_id = id + 1;
        if (err == 0)
                err = srv_job_record_parse(bytes, len, &rec);
        if (err < 0) {
                dm_error("job %llu: its record is damaged (%s); skipped", (unsigned long long)id,
                         dream_strerror(err));
                return 0;
        }
        t = dm_calloc(1, sizeof(*t));
        if (!t) {
                lc->err = DREAM_E_NOMEM;
                return DREAM_E_NOMEM;
        }
        t->train = dream__v1__train__unpack(NULL, rec.train_len, rec.train);
        info = dream__v1__job_info__unpack(NULL, rec.info_len, rec.info);
        if (!t->train || !info) {
                dm_error("job %llu: its record does not decode; skipped", (unsigned long long)id);
                if (info)
                        dream__v1__job_info__free_unpacked(info, NULL);
                srv_job_free(t);
                return 0;
        }
        t->id = id;
        t->target = rec.target;
        t->n_cols = rec.n_cols;
        t->dataset_id = rec.dataset_id;
        t->test_dataset_id = rec.test_dataset_id;
        t->state = info->state;
        t->submitted_unix = info->submitted_unix;
        t->submitted_real = (double)info->submitted_unix;
        t->epoch = info->epoch;
        t->epochs = info->epochs;
        t->loss = info->loss;
        t->elapsed = info->elapsed_seconds;
        if (info->error && info->error[0]) {
                t->error = dm_strdup(info->error);
                t->error_code = proto_status_to_err(info->error_code);
        }
        if (info->result)
                result_from_wire(t, info->result);
        dream__v1__job_info__free_unpacked(info, NULL);
        switch (t->state) {
        case DREAM__V1__JOB_STATE__JOB_STATE_QUEUED:
                J->queued++;
                break;
        case DREAM__V1__JOB_STATE__JOB_STATE_RUNNING:
                t->state = DREAM__V1__JOB_STATE__JOB_STATE_FAILED;
                dm_free(t->error);
                t->error = dm_strdup("interrupted: dreamd stopped while the job was running; "
                                     "submit it again");
                t->error_code = DREAM_E_CANCELLED;
                if (lc->n_fix < sizeof(lc->fix) / sizeof(lc->fix[0]))
                        lc->fix[lc->n_fix++] = id;
                J->n_failed++;
                break;
        case DREAM__V1__JOB_STATE__JOB_STATE_DONE:
                J->n_done++;
                J->train_seconds += t->res.train_seconds;
                break;
        case DREAM__V1__JOB_STATE__JOB_STATE_FAILED:
                J->n_failed++;
                break;
        default:
                J->n_cancelled++;
                break;
        }
        t->next = J->all; /* ascending ids: the list ends newest first */
        J->all = t;
        return 0;
}

/* ---- running a job ---------------------------------------------------------------- */

struct run_ctx {
        struct srv_jobs *J;
        struct tjob *t;
};

static int progress_cb(void *arg, uint32_t epoch, uint32_t epochs, double loss)
{
        struct run_ctx *rc = arg;
        bool stop;

        pthread_mutex_lock(&rc->J->lock);
        if (epoch == 0) { /* a check within an epoch: nothing to report */
                stop = rc->t->cancel || rc->J->stopping;
                pthread_mutex_unlock(&rc->J->lock);
                return stop ? 1 : 0;
        }
        rc->t->epoch = epoch;
        rc->t->epochs = epochs;
        rc->t->loss = loss;
        rc->t->version++;
        stop = rc->t->cancel || rc->J->stopping;
        pthread_mutex_unlock(&rc->J->lock);
        srv_job_notify(rc->J);
        return stop ? 1 : 0;
}

static void request_of(const Dream__V1__Train *m, struct jd_request *rq)
{
        memset(rq, 0, sizeof(*rq));
        rq->dataset = m->dataset;
        rq->kind = (enum train_kind)m->model;
        rq->mode = m->mode ? (enum jd_mode)m->mode : JD_CONDENSED;
        rq->order =
            m->order == DREAM__V1__BIT_ORDER__BIT_ORDER_ENTROPY ? GD_ORDER_ENTROPY : GD_ORDER_MSB;
        rq->seed = m->seed;
        rq->holdout = srv_job_holdout_share(m);
        rq->budget.fraction = SRV_DEFAULT_BUDGET;
        if (m->budget && m->budget->kind_case == DREAM__V1__BUDGET__KIND_FRACTION)
                rq->budget.fraction = m->budget->fraction;
        else if (m->budget && m->budget->kind_case == DREAM__V1__BUDGET__KIND_ROWS)
                rq->budget.count = m->budget->rows;
}

double srv_job_holdout_share(const Dream__V1__Train *m)
{
        return m->holdout < 0 ? 0 : m->holdout > 0 ? m->holdout : SRV_DEFAULT_HOLDOUT;
}

Dream__V1__TrainMode srv_job_default_mode(const Dream__V1__Train *m, uint32_t d)
{
        bool budget = m->budget && m->budget->kind_case != DREAM__V1__BUDGET__KIND__NOT_SET;

        if (m->mode)
                return m->mode;
        /* Least squares: the full-data solution from the store's statistics,
         * unless a budget asks for a reduced set (or X'X is not kept). */
        if ((m->model == DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR ||
             m->model == DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE) &&
            !budget && d <= DREAM_MAX_SUFFSTATS_FEATURES)
                return DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT;
        return DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED;
}

/* Hyper-parameters: the model's defaults, then every non-zero field. */
void srv_job_params_of(const Dream__V1__Train *m, struct train_params *p)
{
        train_params_default((enum train_kind)m->model, p);
        if (m->epochs)
                p->epochs = m->epochs;
        if (m->lr > 0)
                p->lr = m->lr;
        if (m->batch_size)
                p->batch = m->batch_size;
        if (m->l2 > 0)
                p->l2 = m->l2;
        if (m->k)
                p->k = m->k;
        if (m->n_hidden) {
                p->n_hidden = (uint32_t)m->n_hidden;
                p->hidden[0] = m->hidden[0];
                p->hidden[1] = m->n_hidden > 1 ? m->hidden[1] : 0;
        }
        if (m->solver == DREAM__V1__SOLVER__SOLVER_ADAM)
                p->solver = TRAIN_SOLVER_ADAM;
        if (m->patience)
                p->patience = m->patience;
        if (m->early_stopping_off)
                p->patience = 0;
        p->seed = m->seed;
}

/* How the fit ran (JobResult.solver); refresh fits by Adam on each epoch's rows. */
static const char *solver_name(enum train_kind kind, enum jd_mode mode,
                               const struct train_params *p)
{
        switch (kind) {
        case TRAIN_LINEAR:
        case TRAIN_RIDGE:
                return "closed form";
        case TRAIN_KMEANS:
                return "lloyd";
        case TRAIN_LOGISTIC:
        case TRAIN_SOFTMAX:
                return mode != JD_REFRESH && p->solver == TRAIN_SOLVER_LBFGS ? "lbfgs" : "adam";
        default:
                return "adam";
        }
}

static const char *mode_name(enum jd_mode mode)
{
        switch (mode) {
        case JD_FULL:
                return "full";
        case JD_SAMPLE:
                return "sample";
        case JD_REFRESH:
                return "refresh";
        case JD_EXACT:
                return "exact";
        default:
                return "condensed";
        }
}

/* The default batch, or fewer rows on a small training set (a condensed
 * set is one) so that an epoch still takes at least SRV_MIN_STEPS_PER_EPOCH
 * optimiser steps. */
void srv_job_default_batch(const Dream__V1__Train *m, uint64_t rows, struct train_params *p)
{
        uint64_t per = (rows + SRV_MIN_STEPS_PER_EPOCH - 1) / SRV_MIN_STEPS_PER_EPOCH;

        if (!m->batch_size && per < p->batch)
                p->batch = per ? (uint32_t)per : 1;
}

/* "4.1 GiB", "512 MiB", "12 KiB", "100 bytes". */
static const char *human_bytes(uint64_t b, char *buf, size_t size)
{
        static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = (double)b;
        int u = 0;

        while (v >= 1024 && u < 6) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%llu bytes", (unsigned long long)b);
        else
                snprintf(buf, size, v < 10 ? "%.1f %s" : "%.0f %s", v, unit[u]);
        return buf;
}

/* Check a job's memory against job_memory before it runs: the fit's
 * working memory for fit_rows rows per view plus data_bytes of training
 * data it holds. 0, or DREAM_E_LIMIT with the figures in errmsg. */
int srv_job_memory_check(struct srv *s, const Dream__V1__Train *m, const struct train_params *p,
                         uint32_t d, uint32_t n_classes, uint64_t fit_rows, uint64_t data_bytes,
                         char *errmsg, size_t errmsg_size)
{
        uint64_t limit = __atomic_load_n(&s->cfg.job_memory, __ATOMIC_RELAXED), total;
        enum train_kind kind = (enum train_kind)m->model;
        struct train_mem mem;
        char h[7][32];

        if (train_mem_estimate(kind, p, d, n_classes, fit_rows, &mem) < 0)
                return 0; /* bad parameters: train_params_validate or the fit says why */
        if (mem.weights > DREAM_MAX_MODEL_WEIGHTS)
                return srv_fail(errmsg, errmsg_size, DREAM_E_LIMIT,
                                "the %s model would have %llu weights; the limit is %llu (fewer "
                                "or smaller hidden layers, fewer clusters)",
                                train_kind_name(kind), (unsigned long long)mem.weights,
                                (unsigned long long)DREAM_MAX_MODEL_WEIGHTS);
        total = mem.total + data_bytes < mem.total ? UINT64_MAX : mem.total + data_bytes;
        if (total <= limit)
                return 0;
        return srv_fail(
            errmsg, errmsg_size, DREAM_E_LIMIT,
            "the job needs about %s (model %s, weights and optimiser state %s, "
            "activations %s, per-row state %s, training data %s); job_memory is "
            "%s: lower batch_size or the hidden sizes, use a condensed mode, or "
            "raise job_memory",
            human_bytes(total, h[0], sizeof(h[0])), human_bytes(mem.model, h[1], sizeof(h[1])),
            human_bytes(mem.params, h[2], sizeof(h[2])),
            human_bytes(mem.activations, h[3], sizeof(h[3])),
            human_bytes(mem.rows, h[4], sizeof(h[4])), human_bytes(data_bytes, h[5], sizeof(h[5])),
            human_bytes(limit, h[6], sizeof(h[6])));
}

/* The checks that need the training data, once it is read: k-means has
 * no more clusters than rows, and the job fits in job_memory. */
static int data_check(struct srv *s, const Dream__V1__Train *m, const struct jd_request *rq,
                      const struct train_params *p, const struct jd_set *set, char *errmsg,
                      size_t errmsg_size)
{
        const struct jd_rows *rows = &set->rows;
        uint64_t data;

        if (rq->kind == TRAIN_KMEANS && rq->mode != JD_REFRESH) {
                size_t positive = 0;
                for (size_t i = 0; i < rows->n; i++)
                        positive += !rows->w || rows->w[i] > 0;
                if (positive < p->k)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "k-means: k = %u is larger than the %zu training rows "
                                        "of dataset '%s' (%s mode); lower k%s",
                                        p->k, positive, m->dataset, mode_name(rq->mode),
                                        rq->mode == JD_FULL ? "" : " or raise the budget");
        }
        if (rq->mode == JD_EXACT)
                data = (uint64_t)set->d * set->d * sizeof(long double);
        else
                data = (uint64_t)rows->cap *
                       ((uint64_t)rows->d * (rows->v ? 2 : 1) + (rows->y ? 1 : 0) +
                        (rows->w ? 1 : 0)) *
                       sizeof(float);
        /* The holdout rows, held through the fit (its validation rows). */
        data += jd_rows_bytes(&set->valid) + jd_rows_bytes(&set->valid_known);
        if (rq->mode == JD_REFRESH) /* the row numbers of every class */
                data += set->dataset_rows * sizeof(uint64_t);
        return srv_job_memory_check(s, m, p, set->d, set->problem.n_classes,
                                    rq->mode == JD_REFRESH ? rows->cap : rows->n, data, errmsg,
                                    errmsg_size);
}

/* Metrics of model on rows; `unknown` extra classes (test labels the
 * training data lacks) count as errors. */
static int evaluate(const struct train_model *model, const struct jd_rows *rows, uint64_t unknown,
                    struct run_ctx *rc, struct train_metrics *ret)
{
        struct train_view v;
        uint32_t k, kk;
        double *proba, *wide, *value;
        int r;

        jd_rows_view(rows, &v);
        if (model->task != TRAIN_TASK_CLASSIFICATION || unknown == 0)
                return train_evaluate_progress(model, &v, progress_cb, rc, ret);
        k = model->n_classes;
        kk = k + (uint32_t)unknown;
        proba = dm_mallocarray(rows->n * (size_t)k + 1, sizeof(double));
        wide = dm_calloc(rows->n * (size_t)kk + 1, sizeof(double));
        value = dm_mallocarray(rows->n + 1, sizeof(double));
        r = proba && wide && value ? train_predict(model, rows->x, rows->n, value, proba)
                                   : DREAM_E_NOMEM;
        if (r == 0) {
                for (size_t i = 0; i < rows->n; i++)
                        memcpy(wide + i * kk, proba + i * k, k * sizeof(double));
                r = train_metrics_classification(rows->y, wide, kk, rows->w, rows->n, ret);
        }
        dm_free(value);
        dm_free(proba);
        dm_free(wide);
        return r;
}

/* End t: its record first, then the state others see, so that a client
 * told "done" finds the model in the store. */
static void finish(struct srv_jobs *J, struct tjob *t, Dream__V1__JobState state, int err,
                   const char *msg, const uint8_t *model, size_t model_len)
{
        char why[256];
        int r;

        pthread_mutex_lock(&J->lock);
        if (msg) {
                dm_free(t->error);
                t->error = dm_strdup(msg);
                t->error_code = err;
        }
        t->elapsed = mono() - t->started;
        pthread_mutex_unlock(&J->lock);
        r = srv_job_persist(J, t, state, model, model_len);
        if (r < 0 && state == DREAM__V1__JOB_STATE__JOB_STATE_DONE) {
                /* Done but not kept: a model nobody can read is a failure. */
                snprintf(why, sizeof(why),
                         "the finished model could not be recorded in the store: %s",
                         dream_strerror(r));
                msg = why;
                state = DREAM__V1__JOB_STATE__JOB_STATE_FAILED;
                pthread_mutex_lock(&J->lock);
                dm_free(t->error);
                t->error = dm_strdup(why);
                t->error_code = r;
                pthread_mutex_unlock(&J->lock);
                (void)srv_job_persist(J, t, state, NULL, 0);
        }
        pthread_mutex_lock(&J->lock);
        t->state = state;
        t->version++;
        if (state == DREAM__V1__JOB_STATE__JOB_STATE_DONE) {
                J->n_done++;
                J->train_seconds += t->res.train_seconds;
        } else if (state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED) {
                J->n_failed++;
        } else {
                J->n_cancelled++;
        }
        pthread_mutex_unlock(&J->lock);
        if (state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED)
                dm_warn("job %llu failed: %s", (unsigned long long)t->id, msg ? msg : "");
        else
                dm_info("job %llu %s", (unsigned long long)t->id,
                        state == DREAM__V1__JOB_STATE__JOB_STATE_DONE ? "done" : "cancelled");
}

static void finish_cancelled(struct srv_jobs *J, struct tjob *t)
{
        bool stopping;

        pthread_mutex_lock(&J->lock); /* srv_jobs_shutdown sets it under the lock */
        stopping = J->stopping;
        pthread_mutex_unlock(&J->lock);
        finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED, DREAM_E_CANCELLED,
               stopping ? "cancelled: dreamd shut down" : "cancelled by request", NULL, 0);
}

static void run(struct srv_jobs *J, struct tjob *t)
{
        const Dream__V1__Train *m = t->train;
        struct store *store = J->srv->store;
        struct run_ctx rc = {.J = J, .t = t};
        struct jd_request rq;
        struct train_params params;
        struct jd_set set;
        struct train_model *model = NULL;
        struct job_result res = {0};
        struct jd_rows test = {0};
        void *cache_ref = NULL;
        uint64_t unknown = 0;
        uint8_t *bytes = NULL;
        size_t len = 0;
        char err[640];
        double t0;
        int r;

        request_of(m, &rq);
        rq.holdout_cache = J->holdout_cache;
        rq.dataset_id = t->dataset_id;
        rq.test_dataset_id = t->test_dataset_id;
        srv_job_params_of(m, &params);
        pthread_mutex_lock(&J->lock); /* planned until the fit reports */
        t->epochs = rq.kind == TRAIN_KMEANS                             ? params.max_iter
                    : rq.kind == TRAIN_LINEAR || rq.kind == TRAIN_RIDGE ? 1
                                                                        : params.epochs;
        pthread_mutex_unlock(&J->lock);
        t0 = mono();
        r = jd_prepare(store, &rq, &set, err, sizeof(err));
        if (r < 0) {
                finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_FAILED, r, err, NULL, 0);
                return;
        }
        res.prep_seconds = mono() - t0;
        if (set.holdout_cached)
                dm_info("job %llu: its %llu holdout rows from the previous job's read",
                        (unsigned long long)t->id, (unsigned long long)set.n_holdout);
        srv_job_default_batch(m, rq.mode == JD_REFRESH ? set.rows.cap : set.rows.n, &params);
        r = data_check(J->srv, m, &rq, &params, &set, err, sizeof(err));
        if (r < 0) {
                finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_FAILED, r, err, NULL, 0);
                goto release;
        }
        /* refresh: a decoded copy the batch cache holds (get_batches streams
         * made it) serves each epoch's rows instead of reads from the store. */
        if (rq.mode == JD_REFRESH) {
                set.cache_rows = srv_batch_cache_peek(J->srv, m->dataset, set.dataset_id,
                                                      set.dataset_rows, set.n_cols, &cache_ref);
                if (set.cache_rows)
                        dm_info("job %llu: refresh draws its rows from the batch cache",
                                (unsigned long long)t->id);
        }
        pthread_mutex_lock(&J->lock);
        t->target = set.target;
        t->n_cols = set.n_cols;
        t->fit_started = mono();
        pthread_mutex_unlock(&J->lock);
        t0 = mono();
        if (rq.mode == JD_EXACT) {
                r = train_fit_exact(rq.kind, &params, &set.problem, set.stats, progress_cb, &rc,
                                    &model);
        } else if (rq.mode == JD_REFRESH) {
                struct train_source src;
                jd_source(&set, &src);
                err[0] = 0;
                r = train_fit_source(rq.kind, &params, &set.problem, &src, progress_cb, &rc,
                                     &model);
        } else {
                struct train_view v;
                jd_view(&set, &v);
                r = train_fit(rq.kind, &params, &set.problem, &v, progress_cb, &rc, &model);
        }
        res.train_seconds = mono() - t0;
        if (r == DREAM_E_CANCELLED) {
                finish_cancelled(J, t);
                goto release;
        }
        if (r < 0) {
                if (rq.mode != JD_REFRESH || !err[0])
                        snprintf(err, sizeof(err), "fitting %s on dataset '%s' failed: %s",
                                 train_kind_name(rq.kind), m->dataset, dream_strerror(r));
                finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_FAILED, r, err, NULL, 0);
                goto release;
        }
        res.task = model->task;
        /* exact: every training row, through its statistics */
        res.rows_used = rq.mode == JD_EXACT ? set.dataset_rows - set.n_holdout : model->rows_used;
        res.epochs = model->epochs_run;
        res.iterations = model->iterations;
        res.converged = model->converged != 0;
        res.fit_loss = model->loss;
        res.l2 = model->params.l2;
        res.var_scale = model->params.var_scale;
        snprintf(res.solver, sizeof(res.solver), "%s", solver_name(rq.kind, rq.mode, &params));
        res.prep_cached = set.prep_cached;
        res.holdout_share = set.holdout_share;
        res.holdout_rows = set.n_holdout;
        res.peak_bytes = (rq.mode == JD_EXACT ? (uint64_t)set.d * set.d * sizeof(long double)
                                              : (uint64_t)set.peak_view_bytes) +
                         model->work_bytes;
        /* Metrics on real rows the fit never saw: the test dataset, else the
         * holdout; without either, on every row of the dataset (never on
         * condensed samples). */
        if (m->test_dataset[0]) {
                snprintf(res.evaluated_on, sizeof(res.evaluated_on), "test dataset '%s'",
                         m->test_dataset);
                r = jd_test(store, &set, m->dataset, m->test_dataset, &test, &unknown, err,
                            sizeof(err));
                if (r == 0) {
                        r = evaluate(model, &test, unknown, &rc, &res.m);
                        res.evaluated = test.n;
                }
        } else if (set.n_holdout) {
                snprintf(res.evaluated_on, sizeof(res.evaluated_on), "holdout");
                r = evaluate(model, &set.valid, set.valid_unknown, &rc, &res.m);
                res.evaluated = set.valid.n;
        } else if (rq.mode == JD_FULL) {
                snprintf(res.evaluated_on, sizeof(res.evaluated_on), "training rows");
                r = evaluate(model, &set.rows, 0, &rc, &res.m);
                res.evaluated = set.rows.n;
        } else if (rq.mode == JD_EXACT) {
                /* From the statistics: no row is read (mae needs the rows: NaN). */
                snprintf(res.evaluated_on, sizeof(res.evaluated_on), "training rows");
                r = train_evaluate_suffstats(model, set.stats, &res.m);
                res.evaluated = set.dataset_rows;
        } else {
                snprintf(res.evaluated_on, sizeof(res.evaluated_on), "training rows");
                r = jd_all_rows(store, &set, &test, &unknown, err, sizeof(err));
                if (r == 0) {
                        r = evaluate(model, &test, unknown, &rc, &res.m);
                        res.evaluated = test.n;
                }
        }
        if (r == DREAM_E_CANCELLED) { /* while evaluating: as cancelled as while fitting */
                finish_cancelled(J, t);
                goto release;
        }
        if (r < 0) {
                if (r != DREAM_E_SCHEMA && r != DREAM_E_NOTFOUND && r != DREAM_E_LIMIT)
                        snprintf(err, sizeof(err), "evaluating on %s '%s' failed: %s",
                                 m->test_dataset[0] ? "test dataset" : "dataset",
                                 m->test_dataset[0] ? m->test_dataset : m->dataset,
                                 dream_strerror(r));
                finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_FAILED, r, err, NULL, 0);
                goto release;
        }
        res.has_metrics = true;
        r = train_model_to_bytes(model, &bytes, &len);
        if (r < 0) {
                snprintf(err, sizeof(err), "the model cannot be serialised: %s", dream_strerror(r));
                finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_FAILED, r, err, NULL, 0);
                goto release;
        }
        pthread_mutex_lock(&J->lock);
        res.wall_seconds = wall_now() - t->submitted_real;
        if (res.wall_seconds < 0)
                res.wall_seconds = 0;
        t->res = res;
        t->has_result = true;
        pthread_mutex_unlock(&J->lock);
        finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_DONE, 0, NULL, bytes, len);
release:
        srv_batch_cache_put(J->srv, cache_ref);
        dm_free(bytes);
        jd_rows_release(&test);
        train_model_free(model);
        jd_release(&set);
}

/* The oldest queued job, or NULL (lock held). */
static struct tjob *next_queued(struct srv_jobs *J)
{
        struct tjob *found = NULL;

        for (struct tjob *t = J->all; t; t = t->next)
                if (t->state == DREAM__V1__JOB_STATE__JOB_STATE_QUEUED)
                        found = t;
        return found;
}

void *srv_job_runner(void *arg)
{
        struct srv_jobs *J = arg;

        pthread_mutex_lock(&J->lock);
        for (;;) {
                struct tjob *t = NULL;

                while (!J->stopping && !(t = next_queued(J)))
                        pthread_cond_wait(&J->cv, &J->lock);
                if (J->stopping)
                        break;
                t->state = DREAM__V1__JOB_STATE__JOB_STATE_RUNNING;
                t->started = mono();
                t->version++;
                J->queued--;
                J->running++;
                pthread_mutex_unlock(&J->lock);
                srv_job_notify(J);
                dm_info("job %llu started: %s on dataset '%s'", (unsigned long long)t->id,
                        train_kind_name((enum train_kind)t->train->model), t->train->dataset);
                (void)srv_job_persist(J, t, 0, NULL, 0);
                run(J, t);
                pthread_mutex_lock(&J->lock);
                J->running--;
                pthread_mutex_unlock(&J->lock);
                srv_job_notify(J);
                pthread_mutex_lock(&J->lock);
        }
        pthread_mutex_unlock(&J->lock);
        return NULL;
}
