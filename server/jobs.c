/* Training jobs of dreamd: a queue, runner threads, durable job records,
 * and the job RPCs (train, job_list, job_status, job_watch, job_cancel,
 * predict, get_model).
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
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "proto/status.h"
#include "server/internal.h"
#include "server/job_data.h"
#include "server/reply.h"
#include "server/routes.h"
#include "server/transport.h"
#include "train/train.h"

#define RECORD_MAGIC 0x314a4244u /* "DBJ1" little-endian */
#define RECORD_HEAD  20u         /* magic, target, n_cols, train length, info length */

struct job_result {
        enum train_task task;
        uint64_t rows_used, peak_bytes, evaluated;
        double prep_seconds, train_seconds;
        uint32_t epochs;
        bool has_metrics;
        struct train_metrics m;
};

struct tjob {
        struct tjob *next; /* newest first */
        uint64_t id;
        Dream__V1__Train *train; /* owned */
        Dream__V1__JobState state;
        uint64_t submitted_unix;
        double started, fit_started; /* monotonic seconds; 0: not yet */
        double elapsed;              /* final, once the job ended */
        uint32_t epoch, epochs;
        double loss;
        char *error; /* owned, FAILED / CANCELLED */
        int error_code;
        bool has_result;
        struct job_result res;
        int32_t target; /* of the training dataset, for predict */
        uint32_t n_cols;
        uint64_t version; /* bumped at every change, for watchers */
        bool cancel;
};

struct srv_jobs {
        struct srv *srv;
        pthread_mutex_t lock;
        pthread_cond_t cv;
        struct tjob *all;
        uint64_t next_id;
        uint32_t queued, running;
        uint64_t n_done, n_failed, n_cancelled;
        double train_seconds;
        pthread_t *threads;
        uint32_t n_threads;
        bool stopping, joined, async_closing;
        uv_async_t async;
        struct srv_req *watchers; /* loop only, linked by next_parked */
};

struct watch_state {
        uint64_t job_id, version;
};

static double mono(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool terminal(Dream__V1__JobState st)
{
        return st == DREAM__V1__JOB_STATE__JOB_STATE_DONE ||
               st == DREAM__V1__JOB_STATE__JOB_STATE_FAILED ||
               st == DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED;
}

static struct tjob *find(struct srv_jobs *J, uint64_t id)
{
        for (struct tjob *t = J->all; t; t = t->next)
                if (t->id == id)
                        return t;
        return NULL;
}

static void tjob_free(struct tjob *t)
{
        if (!t)
                return;
        if (t->train)
                dream__v1__train__free_unpacked(t->train, NULL);
        dm_free(t->error);
        dm_free(t);
}

static void notify(struct srv_jobs *J)
{
        uv_async_send(&J->async);
}

/* ---- JobInfo -------------------------------------------------------------------- */

/* Everything a JobInfo points to, so that it can live on the stack. */
struct info_parts {
        Dream__V1__JobInfo info;
        Dream__V1__JobResult res;
        Dream__V1__RegressionMetrics reg;
        Dream__V1__ClassificationMetrics cls;
        Dream__V1__ClusterMetrics clu;
};

/* Fill p from t (lock held; p points into t until the lock is released). */
static void info_fill(const struct tjob *t, struct info_parts *p)
{
        Dream__V1__JobInfo *i = &p->info;
        double now = mono();

        dream__v1__job_info__init(i);
        i->job_id = t->id;
        i->state = t->state;
        i->dataset = t->train->dataset;
        i->model = t->train->model;
        i->mode = t->train->mode ? t->train->mode : DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED;
        i->budget = t->train->budget;
        i->epoch = t->epoch;
        i->epochs = t->epochs;
        i->loss = t->loss;
        i->elapsed_seconds = terminal(t->state) ? t->elapsed : t->started ? now - t->started : 0;
        i->eta_seconds = -1;
        if (t->state == DREAM__V1__JOB_STATE__JOB_STATE_RUNNING && t->epoch > 0 &&
            t->epochs >= t->epoch && t->fit_started > 0)
                i->eta_seconds = (now - t->fit_started) / t->epoch * (t->epochs - t->epoch);
        i->error = t->error && terminal(t->state) ? t->error : (char *)"";
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
static int persist(struct srv_jobs *J, struct tjob *t, Dream__V1__JobState as, const uint8_t *model,
                   size_t model_len)
{
        struct info_parts p;
        size_t tl, il;
        uint8_t *rec;
        int r;

        pthread_mutex_lock(&J->lock);
        info_fill(t, &p);
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
                dream__v1__train__pack(t->train, rec + RECORD_HEAD);
                dream__v1__job_info__pack(&p.info, rec + RECORD_HEAD + tl);
        }
        pthread_mutex_unlock(&J->lock);
        if (!rec)
                return DREAM_E_NOMEM;
        if (model_len)
                memcpy(rec + RECORD_HEAD + tl + il, model, model_len);
        r = store_job_put(J->srv->store, t->id, rec, RECORD_HEAD + tl + il + model_len);
        dm_free(rec);
        if (r < 0)
                dm_error("job %llu: cannot write its record: %s", (unsigned long long)t->id,
                         dream_strerror(r));
        return r;
}

struct record {
        int32_t target;
        uint32_t n_cols;
        const uint8_t *train, *info, *model;
        size_t train_len, info_len, model_len;
};

static int record_parse(const uint8_t *rec, size_t len, struct record *ret)
{
        size_t tl, il;

        if (len < RECORD_HEAD || dm_get_le32(rec) != RECORD_MAGIC)
                return DREAM_E_FORMAT;
        tl = dm_get_le32(rec + 12);
        il = dm_get_le32(rec + 16);
        if (tl > len - RECORD_HEAD || il > len - RECORD_HEAD - tl)
                return DREAM_E_TRUNCATED;
        ret->target = (int32_t)dm_get_le32(rec + 4);
        ret->n_cols = dm_get_le32(rec + 8);
        ret->train = rec + RECORD_HEAD;
        ret->train_len = tl;
        ret->info = rec + RECORD_HEAD + tl;
        ret->info_len = il;
        ret->model = ret->info + il;
        ret->model_len = len - RECORD_HEAD - tl - il;
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

struct load_ctx {
        struct srv_jobs *J;
        uint64_t fix[SRV_MAX_JOBS]; /* jobs that were running (at most `jobs` of them):
                                       marked failed after the walk */
        uint32_t n_fix;
        int err;
};

static int load_cb(void *arg, uint64_t id, const void *bytes, size_t len, int err)
{
        struct load_ctx *lc = arg;
        struct srv_jobs *J = lc->J;
        Dream__V1__JobInfo *info = NULL;
        struct record rec = {0};
        struct tjob *t;

        if (id >= J->next_id)
                J->next_id = id + 1;
        if (err == 0)
                err = record_parse(bytes, len, &rec);
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
                tjob_free(t);
                return 0;
        }
        t->id = id;
        t->target = rec.target;
        t->n_cols = rec.n_cols;
        t->state = info->state;
        t->submitted_unix = info->submitted_unix;
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
        notify(rc->J);
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
        rq->budget.fraction = SRV_DEFAULT_BUDGET;
        if (m->budget && m->budget->kind_case == DREAM__V1__BUDGET__KIND_FRACTION)
                rq->budget.fraction = m->budget->fraction;
        else if (m->budget && m->budget->kind_case == DREAM__V1__BUDGET__KIND_ROWS)
                rq->budget.count = m->budget->rows;
}

/* Hyper-parameters: the model's defaults, then every non-zero field. */
static void params_of(const Dream__V1__Train *m, struct train_params *p)
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
        p->seed = m->seed;
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
static void default_batch(const Dream__V1__Train *m, uint64_t rows, struct train_params *p)
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
static int memory_check(struct srv *s, const Dream__V1__Train *m, const struct train_params *p,
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
                       ((uint64_t)rows->d + (rows->y ? 1 : 0) + (rows->w ? 1 : 0)) * sizeof(float);
        if (rq->mode == JD_REFRESH) /* the row numbers of every class */
                data += set->dataset_rows * sizeof(uint64_t);
        return memory_check(s, m, p, set->d, set->problem.n_classes,
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
        double *proba, *wide;
        int r;

        jd_rows_view(rows, &v);
        if (model->task != TRAIN_TASK_CLASSIFICATION || unknown == 0)
                return train_evaluate_progress(model, &v, progress_cb, rc, ret);
        k = model->n_classes;
        kk = k + (uint32_t)unknown;
        proba = dm_mallocarray(rows->n * (size_t)k + 1, sizeof(double));
        wide = dm_calloc(rows->n * (size_t)kk + 1, sizeof(double));
        r = proba && wide ? train_predict(model, rows->x, rows->n, NULL, proba) : DREAM_E_NOMEM;
        if (r == 0) {
                for (size_t i = 0; i < rows->n; i++)
                        memcpy(wide + i * kk, proba + i * k, k * sizeof(double));
                r = train_metrics_classification(rows->y, wide, kk, rows->w, rows->n, ret);
        }
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
        r = persist(J, t, state, model, model_len);
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
                (void)persist(J, t, state, NULL, 0);
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
        finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED, DREAM_E_CANCELLED,
               J->stopping ? "cancelled: dreamd shut down" : "cancelled by request", NULL, 0);
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
        uint64_t unknown = 0;
        uint8_t *bytes = NULL;
        size_t len = 0;
        char err[640];
        double t0;
        int r;

        request_of(m, &rq);
        params_of(m, &params);
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
        default_batch(m, rq.mode == JD_REFRESH ? set.rows.cap : set.rows.n, &params);
        r = data_check(J->srv, m, &rq, &params, &set, err, sizeof(err));
        if (r < 0) {
                finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_FAILED, r, err, NULL, 0);
                goto release;
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
        /* exact: every row, through its statistics */
        res.rows_used = rq.mode == JD_EXACT ? set.dataset_rows : model->rows_used;
        res.epochs = model->epochs_run;
        res.peak_bytes = (rq.mode == JD_EXACT ? (uint64_t)set.d * set.d * sizeof(long double)
                                              : (uint64_t)set.peak_view_bytes) +
                         model->work_bytes;
        if (m->test_dataset[0]) {
                r = jd_test(store, &set, m->dataset, m->test_dataset, &test, &unknown, err,
                            sizeof(err));
                if (r == 0) {
                        r = evaluate(model, &test, unknown, &rc, &res.m);
                        res.evaluated = test.n;
                }
        } else if (rq.mode != JD_EXACT) {
                r = evaluate(model, &set.rows, 0, &rc, &res.m);
        } else { /* from the statistics: no row is read (mae needs the rows: NaN) */
                r = train_evaluate_suffstats(model, set.stats, &res.m);
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
        t->res = res;
        t->has_result = true;
        pthread_mutex_unlock(&J->lock);
        finish(J, t, DREAM__V1__JOB_STATE__JOB_STATE_DONE, 0, NULL, bytes, len);
release:
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

static void *runner(void *arg)
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
                notify(J);
                dm_info("job %llu started: %s on dataset '%s'", (unsigned long long)t->id,
                        train_kind_name((enum train_kind)t->train->model), t->train->dataset);
                (void)persist(J, t, 0, NULL, 0);
                run(J, t);
                pthread_mutex_lock(&J->lock);
                J->running--;
                pthread_mutex_unlock(&J->lock);
                notify(J);
                pthread_mutex_lock(&J->lock);
        }
        pthread_mutex_unlock(&J->lock);
        return NULL;
}

/* ---- watchers (loop thread) ------------------------------------------------------- */

static void watcher_unlink(struct srv_jobs *J, struct srv_req *w)
{
        for (struct srv_req **pp = &J->watchers; *pp; pp = &(*pp)->next_parked)
                if (*pp == w) {
                        *pp = w->next_parked;
                        w->next_parked = NULL;
                        return;
                }
}

/* Send w its job's JobInfo if it changed (or `force`). True when the job
 * has ended (the last JobInfo was sent). */
static bool watcher_send(struct srv_jobs *J, struct srv_req *w, bool force)
{
        struct watch_state *ws = w->state;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        struct info_parts p;
        struct tjob *t;
        bool end;

        pthread_mutex_lock(&J->lock);
        t = find(J, ws->job_id);
        end = terminal(t->state);
        if (force || end || (t->version != ws->version && srv_tx_queued(w->c) < SRV_OUTPUT_HIGH)) {
                ws->version = t->version;
                info_fill(t, &p);
                resp.more = !end;
                resp.body_case = DREAM__V1__RESPONSE__BODY_JOB_WATCH;
                resp.job_watch = &p.info;
                srv_reply(w, &resp);
        }
        pthread_mutex_unlock(&J->lock);
        srv_tx_write(w->c, &w->out);
        return end;
}

static void async_cb(uv_async_t *h)
{
        struct srv *s = h->data;
        struct srv_jobs *J = s->jobs;
        struct srv_req *w = J->watchers, *next;

        /* Off the list while sending: a failed write closes the connection,
         * and srv_jobs_conn_closed must not end a watcher this walk holds. */
        J->watchers = NULL;
        for (; w; w = next) {
                next = w->next_parked;
                w->next_parked = NULL;
                if (watcher_send(J, w, false) || srv_tx_closing(w->c)) {
                        srv_tx_req_close(w);
                } else {
                        w->next_parked = J->watchers;
                        J->watchers = w;
                }
        }
        if (s->draining)
                srv_maybe_stop(s);
}

bool srv_h_job_watch(struct srv_conn *c, proto_request *req)
{
        struct srv_jobs *J = c->srv->jobs;
        uint64_t id = req->job_watch->job_id;
        struct watch_state *ws;
        struct srv_req *w = srv_tx_req_open(c, req);
        bool exists;

        if (!w)
                return true; /* answered, req freed */
        pthread_mutex_lock(&J->lock);
        exists = find(J, id) != NULL;
        pthread_mutex_unlock(&J->lock);
        ws = dm_calloc(1, sizeof(*ws));
        if (!exists || !ws) {
                dm_free(ws);
                srv_stats_error(c->srv, DREAM__V1__REQUEST__BODY_JOB_WATCH);
                srv_tx_error(c, w->request_id, exists ? DREAM_E_NOMEM : DREAM_E_NOTFOUND,
                             exists ? NULL : "job_watch.job_id: no such job");
                srv_tx_req_close(w);
                return true; /* req was taken */
        }
        ws->job_id = id;
        w->state = ws;
        if (watcher_send(J, w, true) || srv_tx_closing(w->c)) {
                srv_tx_req_close(w);
                return true; /* req was taken */
        }
        w->next_parked = J->watchers;
        J->watchers = w;
        return true;
}

void srv_jobs_conn_closed(struct srv_conn *c)
{
        struct srv_jobs *J = c->srv->jobs;
        struct srv_req *w, *next;

        if (!J)
                return;
        for (w = J->watchers; w; w = next) {
                next = w->next_parked;
                if (w->c == c) {
                        watcher_unlink(J, w);
                        srv_tx_req_close(w);
                }
        }
}

/* ---- requests (worker pool) ------------------------------------------------------- */

static void reply_info(struct srv_req *j, struct tjob *t, int body)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        struct info_parts p;

        info_fill(t, &p);
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
        enum jd_mode mode = m->mode ? (enum jd_mode)m->mode : JD_CONDENSED;
        uint32_t d = a->schema.n_cols - (a->schema.target >= 0 ? 1 : 0), n_classes = 0;
        uint64_t fit_rows = 1, data = 0;
        struct train_params p = *params;

        if (d == 0 || a->rows == 0)
                return 0; /* the job fails with the reason when it reads the data */
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
        default_batch(m, fit_rows, &p);
        return memory_check(s, m, &p, d, n_classes, fit_rows, data, errmsg, errmsg_size);
}

/* Check a Train request against the store (datasets exist, the test
 * dataset has the same columns) and its hyper-parameters. */
static int train_check(struct srv_req *j, const Dream__V1__Train *m)
{
        struct store_info *a = NULL, *b = NULL;
        struct train_params p;
        const char *msg = NULL;
        char why[700];
        int r;

        params_of(m, &p);
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
        size_t len;
        int r;

        if (train_check(j, m) < 0)
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
                tjob_free(t);
                srv_req_error(j, DREAM_E_NOMEM, "train: out of memory");
                return;
        }
        t->state = DREAM__V1__JOB_STATE__JOB_STATE_QUEUED;
        t->submitted_unix = (uint64_t)time(NULL);
        t->target = -1;
        pthread_mutex_lock(&J->lock);
        if (J->stopping || J->queued >= __atomic_load_n(&j->srv->cfg.job_queue, __ATOMIC_RELAXED)) {
                bool stopping = J->stopping;
                uint32_t queued = J->queued;
                pthread_mutex_unlock(&J->lock);
                tjob_free(t);
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
        r = persist(J, t, 0, NULL, 0);
        if (r < 0) {
                pthread_mutex_lock(&J->lock);
                J->queued--;
                pthread_mutex_unlock(&J->lock);
                tjob_free(t);
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
                        info_fill(t, &parts[i]);
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
        t = find(J, id);
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
        r = persist_it ? persist(J, t, 0, NULL, 0) : 0;
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
                notify(J);
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
        t = find(J, id);
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
                r = record_parse(bytes, len, ret_rec);
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

/* ---- life cycle ------------------------------------------------------------------- */

int srv_jobs_init(struct srv *s, char *errmsg, size_t errmsg_size)
{
        struct srv_jobs *J = dm_calloc(1, sizeof(*J));
        struct load_ctx lc = {0};
        int r;

        if (!J) {
                snprintf(errmsg, errmsg_size, "out of memory");
                return DREAM_E_NOMEM;
        }
        J->srv = s;
        J->next_id = 1;
        pthread_mutex_init(&J->lock, NULL);
        pthread_cond_init(&J->cv, NULL);
        s->jobs = J;
        lc.J = J;
        r = store_job_list(s->store, load_cb, &lc);
        if (r == 0 && lc.err)
                r = lc.err;
        if (r < 0) {
                snprintf(errmsg, errmsg_size, "cannot read the job records: %s", dream_strerror(r));
                return r;
        }
        for (uint32_t i = 0; i < lc.n_fix; i++)
                (void)persist(J, find(J, lc.fix[i]), 0, NULL, 0);
        r = uv_async_init(s->loop, &J->async, async_cb);
        if (r < 0) {
                snprintf(errmsg, errmsg_size, "uv_async_init: %s", uv_strerror(r));
                J->joined = J->async_closing = true;
                return DREAM_E_INTERNAL;
        }
        J->async.data = s;
        s->handles_open++;
        train_set_threads((int)s->cfg.blas_threads);
        J->threads = dm_calloc(s->cfg.jobs, sizeof(pthread_t));
        if (!J->threads) {
                snprintf(errmsg, errmsg_size, "out of memory");
                return DREAM_E_NOMEM;
        }
        for (uint32_t i = 0; i < s->cfg.jobs; i++) {
                r = pthread_create(&J->threads[i], NULL, runner, J);
                if (r != 0) {
                        snprintf(errmsg, errmsg_size, "cannot start a job thread: %s", strerror(r));
                        return DREAM_E_INTERNAL;
                }
                J->n_threads++;
        }
        if (J->queued)
                dm_info("%u queued jobs resume", J->queued);
        return 0;
}

void srv_jobs_shutdown(struct srv *s)
{
        struct srv_jobs *J = s->jobs;
        struct srv_req *w;

        if (!J)
                return;
        pthread_mutex_lock(&J->lock);
        J->stopping = true;
        for (struct tjob *t = J->all; t; t = t->next)
                if (t->state == DREAM__V1__JOB_STATE__JOB_STATE_RUNNING)
                        t->cancel = true;
        pthread_cond_broadcast(&J->cv);
        pthread_mutex_unlock(&J->lock);
        while ((w = J->watchers)) {
                J->watchers = w->next_parked;
                w->next_parked = NULL;
                srv_stats_error(s, DREAM__V1__REQUEST__BODY_JOB_WATCH);
                srv_tx_error(w->c, w->request_id, DREAM_E_CANCELLED,
                             "server is shutting down; watch ended (the job is kept)");
                srv_tx_req_close(w);
        }
}

static void async_close_cb(uv_handle_t *h)
{
        struct srv *s = h->data;

        s->handles_open--;
        srv_maybe_stop(s);
}

bool srv_jobs_idle(struct srv *s)
{
        struct srv_jobs *J = s->jobs;
        uint32_t running;

        if (!J)
                return true;
        pthread_mutex_lock(&J->lock);
        running = J->running;
        pthread_mutex_unlock(&J->lock);
        if (running)
                return false;
        if (!J->joined) {
                for (uint32_t i = 0; i < J->n_threads; i++)
                        pthread_join(J->threads[i], NULL);
                J->joined = true;
        }
        if (!J->async_closing) {
                J->async_closing = true;
                uv_close((uv_handle_t *)&J->async, async_close_cb);
        }
        return true;
}

void srv_jobs_free(struct srv *s)
{
        struct srv_jobs *J = s->jobs;

        if (!J)
                return;
        if (!J->joined) {
                pthread_mutex_lock(&J->lock);
                J->stopping = true;
                pthread_cond_broadcast(&J->cv);
                pthread_mutex_unlock(&J->lock);
                for (uint32_t i = 0; i < J->n_threads; i++)
                        pthread_join(J->threads[i], NULL);
        }
        while (J->all) {
                struct tjob *t = J->all;
                J->all = t->next;
                tjob_free(t);
        }
        dm_free(J->threads);
        pthread_mutex_destroy(&J->lock);
        pthread_cond_destroy(&J->cv);
        dm_free(J);
        s->jobs = NULL;
}

void srv_jobs_stats(struct srv *s, struct srv_jobs_stats *ret)
{
        struct srv_jobs *J = s->jobs;

        memset(ret, 0, sizeof(*ret));
        if (!J)
                return;
        pthread_mutex_lock(&J->lock);
        ret->queued = J->queued;
        ret->running = J->running;
        ret->done = J->n_done;
        ret->failed = J->n_failed;
        ret->cancelled = J->n_cancelled;
        ret->train_seconds = J->train_seconds;
        pthread_mutex_unlock(&J->lock);
}
