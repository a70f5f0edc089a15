/* Integration tests of training jobs: a real dreamd on 127.0.0.1, port 0,
 * temp data dir, driven over the protocol.
 * Usage: test_jobs GROUP (models, lifecycle, restart, holdout,
 * holdout_condensed, defaults, refresh_cache, errors, drain, cancel, bounds).
 * DREAMD in the environment is the daemon's path. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "tclient.h"

/* Time bounds stretch under ThreadSanitizer, which slows the instrumented
 * training code (the step between two cancel checks) about fivefold. */
#if defined(__SANITIZE_THREAD__)
#define SLOWDOWN 5.0
#else
#define SLOWDOWN 1.0
#endif

#define OK    DREAM__V1__STATUS__STATUS_OK
#define N_REG 3000u
#define N_CLS 1500u

static uint64_t next_id = 1000;

/* ---- data ----------------------------------------------------------------- */

/* Regression: a, b in [-5, 5) and c in [-10, 10) in steps of 0.125, y = 2a - 3b + 0.5c + 1
 * plus noise in {-0.25, ..., 0.25}: every value is exact in float32, so
 * that full mode (float features) and exact mode (the store's sums of the
 * decimals) solve the same system. Stored as decimals with 3 digits. */
static int64_t reg_cell(uint64_t i, uint32_t col)
{
        uint64_t h = (i + 1) * 0x9e3779b97f4a7c15ull;
        int64_t a = ((int64_t)(i * 7919 % 80) - 40) * 125;
        int64_t b = ((int64_t)((h >> 20) % 80) - 40) * 125;
        int64_t c = ((int64_t)((h >> 40) % 80) - 40) * 500;
        int64_t noise = ((int64_t)((h >> 8) % 5) - 2) * 125;

        switch (col) {
        case 0:
                return a;
        case 1:
                return b;
        case 2:
                return c / 2;
        default:
                return 2 * a - 3 * b + c / 4 + 1000 + noise;
        }
}

/* Classification: two features around one of three centres, label 0..2
 * (or 0..1 with two classes). */
static int64_t cls_cell(uint64_t i, uint32_t col, uint32_t classes)
{
        uint64_t h = (i + 1) * 0xbf58476d1ce4e5b9ull;
        int64_t label = (int64_t)(i % classes);
        int64_t jitter = (int64_t)((h >> (col ? 32 : 12)) % 2001) - 1000; /* +-1.000 */

        if (col == 2)
                return label;
        return (col == 0 ? label * 6000 : (label % 2) * 6000 - label * 2000) + jitter;
}

static void create(struct tc *c, const char *name, uint32_t ncols, const char *const *names,
                   bool classification)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__CreateDataset cd = DREAM__V1__CREATE_DATASET__INIT;
        Dream__V1__ColumnSpec specs[8], *sp[8];
        proto_response *r;

        for (uint32_t i = 0; i < ncols; i++) {
                dream__v1__column_spec__init(&specs[i]);
                specs[i].name = (char *)names[i];
                specs[i].kind = classification && i == ncols - 1
                                    ? DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT
                                    : DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL;
                specs[i].scale = classification && i == ncols - 1 ? 0 : 3;
                sp[i] = &specs[i];
        }
        cd.name = (char *)name;
        cd.n_columns = ncols;
        cd.columns = sp;
        cd.target = (char *)names[ncols - 1];
        cd.task = classification ? DREAM__V1__TASK__TASK_CLASSIFICATION
                                 : DREAM__V1__TASK__TASK_REGRESSION;
        req.request_id = next_id++;
        req.body_case = DREAM__V1__REQUEST__BODY_CREATE_DATASET;
        req.create_dataset = &cd;
        r = tc_call(c, &req);
        CHECK(r->code == OK);
        proto_response_free(r);
}

/* Columns of rows [0, n) from cell(). */
struct cols {
        Dream__V1__Columns msg;
        Dream__V1__ColumnValues cv[8], *cvp[8];
};

static void cols_build(struct cols *k, uint32_t n, uint32_t ncols, bool int_last,
                       int64_t (*cell)(uint64_t, uint32_t, void *), void *arg)
{
        int64_t *v = malloc((size_t)n * 8);

        CHECK(v);
        dream__v1__columns__init(&k->msg);
        for (uint32_t j = 0; j < ncols; j++) {
                dream__v1__column_values__init(&k->cv[j]);
                k->cv[j].kind = int_last && j == ncols - 1
                                    ? DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT
                                    : DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL;
                k->cv[j].scale = int_last && j == ncols - 1 ? 0 : 3;
                for (uint32_t i = 0; i < n; i++)
                        v[i] = cell(i, j, arg);
                CHECK(proto_values_new(v, n, &k->cv[j].values) == 0);
                k->cvp[j] = &k->cv[j];
        }
        k->msg.n_rows = n;
        k->msg.n_columns = ncols;
        k->msg.columns = k->cvp;
        free(v);
}

static void cols_release(struct cols *k)
{
        for (uint32_t j = 0; j < k->msg.n_columns; j++)
                dm_free(k->cv[j].values.data);
}

static int64_t reg_cb(uint64_t i, uint32_t col, void *arg)
{
        (void)arg;
        return reg_cell(i, col);
}

static int64_t cls_cb(uint64_t i, uint32_t col, void *arg)
{
        return cls_cell(i, col, *(uint32_t *)arg);
}

static void ingest(struct tc *c, const char *name, struct cols *k)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Ingest in = DREAM__V1__INGEST__INIT;
        proto_response *r;

        in.dataset = (char *)name;
        in.rows = &k->msg;
        req.request_id = next_id++;
        req.body_case = DREAM__V1__REQUEST__BODY_INGEST;
        req.ingest = &in;
        r = tc_call(c, &req);
        CHECK(r->code == OK);
        proto_response_free(r);
}

static void make_reg(struct tc *c, const char *name)
{
        static const char *const names[] = {"a", "b", "c", "y"};
        struct cols k;

        create(c, name, 4, names, false);
        cols_build(&k, N_REG, 4, false, reg_cb, NULL);
        ingest(c, name, &k);
        cols_release(&k);
}

static void make_cls(struct tc *c, const char *name, uint32_t classes)
{
        static const char *const names[] = {"u", "v", "label"};
        struct cols k;

        create(c, name, 3, names, true);
        cols_build(&k, N_CLS, 3, true, cls_cb, &classes);
        ingest(c, name, &k);
        cols_release(&k);
}

/* ---- jobs ----------------------------------------------------------------- */

struct spec {
        const char *dataset;
        Dream__V1__ModelKind model;
        Dream__V1__TrainMode mode;
        uint64_t budget_rows;
        double budget_fraction;
        uint32_t epochs;
        double lr;
        uint32_t batch;
        const char *test;
        uint32_t hidden, hidden2; /* hidden2: a second hidden layer */
        uint32_t k;               /* k-means clusters */
        double holdout;           /* Train.holdout: 0 = the default share, < 0 = none */
        uint64_t seed;            /* 0: 7 */
        Dream__V1__Solver solver; /* logistic, softmax: 0 = the default (L-BFGS) */
        uint32_t patience;        /* mlp early stopping: 0 = the default */
        bool no_early_stop;       /* mlp: Train.early_stopping_off */
};

/* Submit; the response (caller frees). */
static proto_response *submit(struct tc *c, const struct spec *s)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Train tr = DREAM__V1__TRAIN__INIT;
        Dream__V1__Budget b = DREAM__V1__BUDGET__INIT;
        uint32_t hidden[2] = {s->hidden, s->hidden2};

        tr.dataset = (char *)s->dataset;
        tr.model = s->model;
        tr.mode = s->mode;
        if (s->budget_rows) {
                b.kind_case = DREAM__V1__BUDGET__KIND_ROWS;
                b.rows = s->budget_rows;
                tr.budget = &b;
        } else if (s->budget_fraction > 0) {
                b.kind_case = DREAM__V1__BUDGET__KIND_FRACTION;
                b.fraction = s->budget_fraction;
                tr.budget = &b;
        }
        tr.epochs = s->epochs;
        tr.lr = s->lr;
        tr.batch_size = s->batch;
        tr.seed = s->seed ? s->seed : 7;
        if (s->hidden) {
                tr.n_hidden = s->hidden2 ? 2 : 1;
                tr.hidden = hidden;
        }
        tr.k = s->k;
        tr.holdout = s->holdout;
        tr.solver = s->solver;
        tr.patience = s->patience;
        tr.early_stopping_off = s->no_early_stop;
        tr.test_dataset = (char *)(s->test ? s->test : "");
        req.request_id = next_id++;
        req.body_case = DREAM__V1__REQUEST__BODY_TRAIN;
        req.train = &tr;
        return tc_call(c, &req);
}

static uint64_t submit_ok(struct tc *c, const struct spec *s)
{
        proto_response *r = submit(c, s);
        uint64_t id;

        if (r->code != OK)
                fprintf(stderr, "train: %s\n", r->message);
        CHECK(r->code == OK && r->body_case == DREAM__V1__RESPONSE__BODY_TRAIN);
        id = r->train->job_id;
        CHECK(id > 0);
        proto_response_free(r);
        return id;
}

/* JobStatus (the response; caller frees). */
static proto_response *status(struct tc *c, uint64_t job, bool cancel)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__JobStatus st = DREAM__V1__JOB_STATUS__INIT;
        Dream__V1__JobCancel jc = DREAM__V1__JOB_CANCEL__INIT;

        req.request_id = next_id++;
        if (cancel) {
                jc.job_id = job;
                req.body_case = DREAM__V1__REQUEST__BODY_JOB_CANCEL;
                req.job_cancel = &jc;
        } else {
                st.job_id = job;
                req.body_case = DREAM__V1__REQUEST__BODY_JOB_STATUS;
                req.job_status = &st;
        }
        return tc_call(c, &req);
}

/* Watch a job to its end: the final JobInfo (caller frees the response).
 * Checks epochs never go back and that more = false comes last. */
static proto_response *watch(struct tc *c, uint64_t job, int *ret_updates)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__JobWatch jw = DREAM__V1__JOB_WATCH__INIT;
        uint64_t id = next_id++;
        uint32_t last_epoch = 0;
        int updates = 0;

        jw.job_id = job;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_JOB_WATCH;
        req.job_watch = &jw;
        CHECK(tc_send(c, &req) == 0);
        for (;;) {
                proto_response *r = NULL;
                CHECK(tc_recv(c, &r, 60000) == 1);
                if (r->request_id != id) {
                        proto_response_free(r);
                        continue;
                }
                if (r->code != OK || !r->more) {
                        if (ret_updates)
                                *ret_updates = updates;
                        return r;
                }
                CHECK(r->body_case == DREAM__V1__RESPONSE__BODY_JOB_WATCH);
                CHECK(r->job_watch->job_id == job);
                CHECK(r->job_watch->epoch >= last_epoch);
                last_epoch = r->job_watch->epoch;
                updates++;
                proto_response_free(r);
        }
}

static const Dream__V1__JobInfo *done_info(proto_response *r)
{
        CHECK(r->code == OK);
        CHECK(r->body_case == DREAM__V1__RESPONSE__BODY_JOB_WATCH ||
              r->body_case == DREAM__V1__RESPONSE__BODY_JOB_STATUS);
        {
                const Dream__V1__JobInfo *i = r->body_case == DREAM__V1__RESPONSE__BODY_JOB_WATCH
                                                  ? r->job_watch
                                                  : r->job_status;
                if (i->state != DREAM__V1__JOB_STATE__JOB_STATE_DONE)
                        fprintf(stderr, "job %llu: state %d: %s\n", (unsigned long long)i->job_id,
                                i->state, i->error);
                CHECK(i->state == DREAM__V1__JOB_STATE__JOB_STATE_DONE);
                CHECK(i->result);
                return i;
        }
}

/* Predict with features (n x d floats); values into out (n doubles). */
static proto_response *predict_matrix(struct tc *c, uint64_t job, const float *x, uint32_t n,
                                      uint32_t d)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Predict p = DREAM__V1__PREDICT__INIT;
        Dream__V1__FloatMatrix fm = DREAM__V1__FLOAT_MATRIX__INIT;
        proto_response *r;

        fm.n = n;
        fm.d = d;
        CHECK(proto_f32_new(x, (size_t)n * d, &fm.values) == 0);
        p.job_id = job;
        p.input_case = DREAM__V1__PREDICT__INPUT_FEATURES;
        p.features = &fm;
        req.request_id = next_id++;
        req.body_case = DREAM__V1__REQUEST__BODY_PREDICT;
        req.predict = &p;
        r = tc_call(c, &req);
        dm_free(fm.values.data);
        return r;
}

static void predict_features(struct tc *c, uint64_t job, const float *x, uint32_t n, uint32_t d,
                             double *out, uint32_t *ret_classes)
{
        proto_response *r = predict_matrix(c, job, x, n, d);

        if (r->code != OK)
                fprintf(stderr, "predict: %s\n", r->message);
        CHECK(r->code == OK && r->predict->n == n && r->predict->values.len == (size_t)n * 8);
        for (uint32_t i = 0; i < n; i++) {
                uint64_t bits = dm_get_le64(r->predict->values.data + (size_t)i * 8);
                memcpy(&out[i], &bits, 8);
        }
        if (ret_classes)
                *ret_classes = r->predict->classes;
        proto_response_free(r);
}

/* Predict with raw rows (the dataset's columns, target included). */
static proto_response *predict_rows(struct tc *c, uint64_t job, struct cols *k)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Predict p = DREAM__V1__PREDICT__INIT;

        p.job_id = job;
        p.input_case = DREAM__V1__PREDICT__INPUT_ROWS;
        p.rows = &k->msg;
        req.request_id = next_id++;
        req.body_case = DREAM__V1__REQUEST__BODY_PREDICT;
        req.predict = &p;
        return tc_call(c, &req);
}

static float reg_feature(uint64_t i, uint32_t f)
{
        return (float)((double)reg_cell(i, f) / 1000.0);
}

static void reg_features(float *x, uint32_t n)
{
        for (uint32_t i = 0; i < n; i++)
                for (uint32_t f = 0; f < 3; f++)
                        x[i * 3 + f] = reg_feature(i, f);
}

/* The features of "three" (N_CLS rows of 2). */
static void cls_features(float *x)
{
        for (uint32_t i = 0; i < N_CLS; i++)
                for (uint32_t f = 0; f < 2; f++)
                        x[i * 2 + f] = (float)((double)cls_cell(i, f, 3) / 1000.0);
}

static double max_rel_diff(const double *a, const double *b, uint32_t n)
{
        double m = 0;
        for (uint32_t i = 0; i < n; i++) {
                double d = fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i]));
                if (d > m)
                        m = d;
        }
        return m;
}

static void start(struct tdaemon *d, const char *dir, struct tc *c)
{
        static const char *const extra[] = {"--jobs", "1", NULL};
        td_start(d, dir, extra);
        tc_connect(c, d->port);
}

/* ---- groups --------------------------------------------------------------- */

/* Known answers: linear fits the generating plane; exact = full to 1e-9;
 * condensed at a budget >= distinct rows = full; logistic separates two
 * blobs; softmax three; k-means finds the blobs; mlp learns. */
static void g_models(void)
{
        struct tdaemon d;
        struct tc c;
        float *x = malloc(N_REG * 3 * sizeof(float));
        double *p_full = malloc(N_REG * 8), *p_exact = malloc(N_REG * 8);
        double *p_cond = malloc(N_REG * 8);
        proto_response *r;
        const Dream__V1__JobInfo *i;
        uint64_t full, exact, cond, full0, rfull, rexact;

        CHECK(x && p_full && p_exact && p_cond);
        start(&d, NULL, &c);
        make_reg(&c, "reg");
        make_cls(&c, "two", 2);
        make_cls(&c, "three", 3);
        reg_features(x, N_REG);

        full = submit_ok(&c, &(struct spec){.dataset = "reg",
                                            .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                            .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL});
        exact = submit_ok(&c, &(struct spec){.dataset = "reg",
                                             .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                             .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT});
        /* Condensed at a budget >= the rows against full, both without a holdout. */
        cond = submit_ok(&c, &(struct spec){.dataset = "reg",
                                            .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                            .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED,
                                            .budget_rows = N_REG,
                                            .holdout = -1});
        full0 = submit_ok(&c, &(struct spec){.dataset = "reg",
                                             .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                             .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                             .holdout = -1});
        rfull = submit_ok(&c, &(struct spec){.dataset = "reg",
                                             .model = DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE,
                                             .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL});
        rexact = submit_ok(&c, &(struct spec){.dataset = "reg",
                                              .model = DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE,
                                              .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT});
        r = watch(&c, full, NULL);
        i = done_info(r);
        CHECK(i->result->metrics_case == DREAM__V1__JOB_RESULT__METRICS_REGRESSION);
        CHECK(i->result->regression->r2 > 0.999);
        CHECK(i->result->regression->rmse < 0.2); /* noise: rms 0.177 */
        /* The default holdout: 10% of the rows, never trained on, scored on. */
        CHECK(i->result->holdout_rows == N_REG / 10 && i->result->holdout_share == 0.1);
        CHECK(i->result->rows_used == N_REG - N_REG / 10);
        CHECK(i->result->evaluated_rows == N_REG / 10);
        CHECK(strcmp(i->result->evaluated_on, "holdout") == 0);
        CHECK(i->result->peak_train_bytes >= (N_REG - N_REG / 10) * 4 * sizeof(float));
        proto_response_free(r);
        {
                const uint64_t rest[] = {exact, cond, full0, rfull, rexact};
                for (size_t j = 0; j < sizeof(rest) / sizeof(rest[0]); j++) {
                        r = watch(&c, rest[j], NULL);
                        (void)done_info(r);
                        proto_response_free(r);
                }
        }
        /* exact takes the holdout's statistics out of the store's: the
         * same fit as full on the rows left. */
        predict_features(&c, full, x, N_REG, 3, p_full, NULL);
        predict_features(&c, exact, x, N_REG, 3, p_exact, NULL);
        fprintf(stderr, "linear: exact vs full (holdout out of both) %.3g\n",
                max_rel_diff(p_exact, p_full, N_REG));
        CHECK(max_rel_diff(p_exact, p_full, N_REG) < 1e-9);
        predict_features(&c, full0, x, N_REG, 3, p_full, NULL);
        predict_features(&c, cond, x, N_REG, 3, p_cond, NULL);
        fprintf(stderr, "linear: condensed (budget = rows) vs full, no holdout %.3g\n",
                max_rel_diff(p_cond, p_full, N_REG));
        CHECK(max_rel_diff(p_cond, p_full, N_REG) < 1e-6);
        predict_features(&c, full, x, N_REG, 3, p_full, NULL);
        /* The plane itself: y ~ 2a - 3b + 0.5c + 1. */
        for (uint32_t k = 0; k < 50; k++)
                CHECK(fabs(p_full[k] - (2.0 * x[k * 3] - 3.0 * x[k * 3 + 1] + 0.5 * x[k * 3 + 2] +
                                        1.0)) < 0.05);
        predict_features(&c, rfull, x, N_REG, 3, p_full, NULL);
        predict_features(&c, rexact, x, N_REG, 3, p_exact, NULL);
        CHECK(max_rel_diff(p_exact, p_full, N_REG) < 1e-9);

        /* Classifiers and k-means on blobs, evaluated on their own rows. */
        struct {
                const char *ds;
                Dream__V1__ModelKind m;
                Dream__V1__TrainMode mode;
                double min_acc;
        } cl[] = {
            {"two", DREAM__V1__MODEL_KIND__MODEL_KIND_LOGISTIC,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL, 0.99},
            {"three", DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED, 0.97},
            {"three", DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_SAMPLE, 0.97},
            {"three", DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_REFRESH, 0.97},
            {"three", DREAM__V1__MODEL_KIND__MODEL_KIND_MLP, DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
             0.97},
        };
        for (size_t k = 0; k < sizeof(cl) / sizeof(cl[0]); k++) {
                uint64_t job = submit_ok(
                    &c, &(struct spec){
                            .dataset = cl[k].ds,
                            .model = cl[k].m,
                            .mode = cl[k].mode,
                            .budget_fraction = 0.2,
                            .epochs = 60,
                            .lr = 0.05,
                            .batch = 32,
                            .hidden = cl[k].m == DREAM__V1__MODEL_KIND__MODEL_KIND_MLP ? 16 : 0});
                r = watch(&c, job, NULL);
                i = done_info(r);
                CHECK(i->result->metrics_case == DREAM__V1__JOB_RESULT__METRICS_CLASSIFICATION);
                fprintf(stderr, "%s %d mode %d: accuracy %.4f rows_used %llu\n", cl[k].ds, cl[k].m,
                        cl[k].mode, i->result->classification->accuracy,
                        (unsigned long long)i->result->rows_used);
                CHECK(i->result->classification->accuracy >= cl[k].min_acc);
                if (cl[k].mode != DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL)
                        CHECK(i->result->rows_used <= N_CLS / 5 + 3);
                proto_response_free(r);
        }
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Train tr = DREAM__V1__TRAIN__INIT;
                uint64_t job;
                float centre[3][2];
                double cid[3];

                tr.dataset = "three";
                tr.model = DREAM__V1__MODEL_KIND__MODEL_KIND_KMEANS;
                tr.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL;
                tr.k = 3;
                tr.test_dataset = "";
                req.request_id = next_id++;
                req.body_case = DREAM__V1__REQUEST__BODY_TRAIN;
                req.train = &tr;
                r = tc_call(&c, &req);
                CHECK(r->code == OK);
                job = r->train->job_id;
                proto_response_free(r);
                r = watch(&c, job, NULL);
                i = done_info(r);
                CHECK(i->result->metrics_case == DREAM__V1__JOB_RESULT__METRICS_CLUSTER);
                CHECK(i->result->cluster->mean_sq_distance < 0.1); /* standardised space */
                proto_response_free(r);
                /* The three blob centres land in three different clusters. */
                for (int k = 0; k < 3; k++) {
                        centre[k][0] = (float)(k * 6.0);
                        centre[k][1] = (float)((k % 2) * 6.0 - k * 2.0);
                }
                predict_features(&c, job, &centre[0][0], 3, 2, cid, NULL);
                CHECK(cid[0] != cid[1] && cid[1] != cid[2] && cid[0] != cid[2]);
        }
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
        free(x);
        free(p_full);
        free(p_exact);
        free(p_cond);
}

/* Watch, cancel a running job, cancel a queued one, predict from rows. */
static void g_lifecycle(void)
{
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        uint64_t long_job, queued, small;
        int updates = 0;
        uint32_t classes = 3, ncls = 0;
        struct cols k;
        double *p = malloc(N_CLS * 8);

        start(&d, NULL, &c);
        make_reg(&c, "reg");
        make_cls(&c, "three", 3);
        small = submit_ok(&c, &(struct spec){.dataset = "three",
                                             .model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
                                             .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                             .epochs = 40,
                                             .lr = 0.05,
                                             .batch = 64});
        r = watch(&c, small, &updates);
        CHECK(strcmp(done_info(r)->result->solver, "lbfgs") == 0); /* the default */
        /* L-BFGS: the iterations it took (epochs are Adam's) */
        CHECK(r->job_watch->epoch >= 1 && r->job_watch->epoch == r->job_watch->epochs);
        proto_response_free(r);
        fprintf(stderr, "watch: %d progress updates before the end\n", updates);

        /* Predict from raw rows, with the target column in them. */
        cols_build(&k, N_CLS, 3, true, cls_cb, &classes);
        r = predict_rows(&c, small, &k);
        CHECK(r->code == OK && r->predict->n == N_CLS);
        ncls = r->predict->classes;
        CHECK(ncls == 3 && r->predict->scores.len == (size_t)N_CLS * 3 * 4);
        {
                uint32_t right = 0;
                for (uint32_t i = 0; i < N_CLS; i++) {
                        uint64_t bits = dm_get_le64(r->predict->values.data + (size_t)i * 8);
                        memcpy(&p[i], &bits, 8);
                        right += p[i] == (double)cls_cell(i, 2, 3);
                }
                CHECK(right > N_CLS * 97 / 100);
        }
        proto_response_free(r);
        cols_release(&k);

        /* A long job, then a queued one behind it (one job at a time). */
        long_job = submit_ok(&c, &(struct spec){.dataset = "reg",
                                                .model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP,
                                                .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                                .epochs = 100000,
                                                .batch = 16,
                                                .hidden = 64,
                                                /* runs until cancelled */
                                                .no_early_stop = true});
        queued = submit_ok(&c, &(struct spec){.dataset = "reg",
                                              .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                              .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL});
        for (int tries = 0;; tries++) {
                r = status(&c, long_job, false);
                CHECK(r->code == OK);
                if (r->job_status->state == DREAM__V1__JOB_STATE__JOB_STATE_RUNNING &&
                    r->job_status->epoch >= 1) {
                        CHECK(r->job_status->eta_seconds > 0);
                        proto_response_free(r);
                        break;
                }
                proto_response_free(r);
                CHECK(tries < 600);
                usleep(50000);
        }
        r = status(&c, queued, true);
        CHECK(r->code == OK && r->job_cancel->state == DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED);
        proto_response_free(r);
        r = status(&c, long_job, true);
        CHECK(r->code == OK && r->job_cancel->state == DREAM__V1__JOB_STATE__JOB_STATE_RUNNING);
        proto_response_free(r);
        r = watch(&c, long_job, NULL);
        CHECK(r->code == OK && r->job_watch->state == DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED);
        CHECK(r->job_watch->epoch < 100000);
        CHECK(strstr(r->job_watch->error, "cancelled"));
        proto_response_free(r);
        /* Cancelled jobs have no model. */
        {
                float x[3] = {0, 0, 0};
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__GetModel gm = DREAM__V1__GET_MODEL__INIT;
                gm.job_id = long_job;
                req.request_id = next_id++;
                req.body_case = DREAM__V1__REQUEST__BODY_GET_MODEL;
                req.get_model = &gm;
                CHECK(tc_call_code(&c, &req, 10000) == DREAM__V1__STATUS__STATUS_INVALID);
                (void)x;
        }
        /* The list is newest first. */
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__JobList jl = DREAM__V1__JOB_LIST__INIT;
                req.request_id = next_id++;
                req.body_case = DREAM__V1__REQUEST__BODY_JOB_LIST;
                req.job_list = &jl;
                r = tc_call(&c, &req);
                CHECK(r->code == OK && r->job_list->n_jobs == 3);
                CHECK(r->job_list->jobs[0]->job_id == queued);
                CHECK(r->job_list->jobs[2]->job_id == small);
                proto_response_free(r);
        }
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
        free(p);
}

/* A finished model survives a restart: same predictions, same JSON. */
static void g_restart(void)
{
        struct tdaemon d, d2;
        struct tc c;
        proto_response *r;
        float *x = malloc(N_REG * 3 * sizeof(float));
        double *a = malloc(N_REG * 8), *b = malloc(N_REG * 8);
        char *json, want[64];
        uint64_t job, failed, rows_used;
        Dream__V1__JobResult before;
        Dream__V1__RegressionMetrics before_reg;

        start(&d, NULL, &c);
        make_reg(&c, "reg");
        reg_features(x, N_REG);
        job = submit_ok(&c, &(struct spec){.dataset = "reg",
                                           .model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP,
                                           .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED,
                                           .budget_fraction = 0.1,
                                           .epochs = 5,
                                           .hidden = 8});
        r = watch(&c, job, NULL);
        rows_used = done_info(r)->result->rows_used;
        before = *done_info(r)->result;
        before.evaluated_on = strdup(before.evaluated_on);
        CHECK(before.regression);
        before_reg = *before.regression;
        before.regression = &before_reg;
        proto_response_free(r);
        predict_features(&c, job, x, N_REG, 3, a, NULL);
        failed = submit_ok(&c, &(struct spec){.dataset = "reg",
                                              .model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
                                              .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL});
        r = watch(&c, failed, NULL);
        CHECK(r->code == OK && r->job_watch->state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED);
        proto_response_free(r);
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__GetModel gm = DREAM__V1__GET_MODEL__INIT;
                gm.job_id = job;
                req.request_id = next_id++;
                req.body_case = DREAM__V1__REQUEST__BODY_GET_MODEL;
                req.get_model = &gm;
                r = tc_call(&c, &req);
                CHECK(r->code == OK && strstr(r->get_model->json, "\"mlp\""));
                /* No batch asked on a 300-row condensed set: rows / 32 per
                 * mini-batch, not the default 256. */
                snprintf(want, sizeof(want), "\"batch\":%llu",
                         (unsigned long long)(rows_used + 31) / 32);
                CHECK(rows_used > 0 && rows_used < 32 * 256 && strstr(r->get_model->json, want));
                json = strdup(r->get_model->json);
                proto_response_free(r);
        }
        tc_close(&c);
        CHECK(td_stop(&d) == 0);

        start(&d2, d.data_dir, &c);
        r = status(&c, job, false);
        {
                /* The record keeps every result field. */
                const Dream__V1__JobResult *after = done_info(r)->result;
                CHECK(strcmp(after->evaluated_on, before.evaluated_on) == 0 &&
                      strcmp(after->evaluated_on, "holdout") == 0);
                CHECK(after->holdout_rows == before.holdout_rows && after->holdout_rows > 0);
                CHECK(after->holdout_share == before.holdout_share);
                CHECK(after->fit_loss == before.fit_loss && after->l2 == before.l2);
                CHECK(after->wall_seconds == before.wall_seconds && after->wall_seconds > 0);
                CHECK(after->prep_seconds == before.prep_seconds);
                CHECK(after->iterations == before.iterations);
                CHECK(after->converged == before.converged);
                CHECK(after->prep_cached == before.prep_cached);
                CHECK(after->evaluated_rows == before.evaluated_rows);
                CHECK(after->regression->rmse == before.regression->rmse);
                CHECK(done_info(r)->budget->fraction == 0.1);
                free(before.evaluated_on);
        }
        proto_response_free(r);
        predict_features(&c, job, x, N_REG, 3, b, NULL);
        CHECK(memcmp(a, b, N_REG * 8) == 0);
        r = status(&c, failed, false); /* a failure keeps its reason */
        CHECK(r->code == OK && r->job_status->state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED);
        CHECK(strstr(r->job_status->error, "regression target"));
        CHECK(r->job_status->error_code == DREAM__V1__STATUS__STATUS_SCHEMA);
        proto_response_free(r);
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__GetModel gm = DREAM__V1__GET_MODEL__INIT;
                gm.job_id = job;
                req.request_id = next_id++;
                req.body_case = DREAM__V1__REQUEST__BODY_GET_MODEL;
                req.get_model = &gm;
                r = tc_call(&c, &req);
                CHECK(r->code == OK && strcmp(r->get_model->json, json) == 0);
                proto_response_free(r);
        }
        /* New jobs get new ids. */
        CHECK(submit_ok(&c, &(struct spec){.dataset = "reg",
                                           .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                           .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT}) > job);
        tc_close(&c);
        CHECK(td_stop(&d2) == 0);
        td_cleanup(&d);
        free(json);
        free(x);
        free(a);
        free(b);
}

/* A linear model of "reg" from its statistics, done. */
static uint64_t linear_exact_done(struct tc *c)
{
        uint64_t job =
            submit_ok(c, &(struct spec){.dataset = "reg",
                                        .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                        .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT});
        proto_response *r = watch(c, job, NULL);

        (void)done_info(r);
        proto_response_free(r);
        return job;
}

static int submit_code(struct tc *c, const struct spec *s, char *msg, size_t size)
{
        proto_response *r = submit(c, s);
        int code = r->code;

        snprintf(msg, size, "%s", r->message);
        proto_response_free(r);
        return code;
}

/* Failing jobs say why. */
static void g_errors(void)
{
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        char msg[512];
        uint64_t job;
        static const char *const other[] = {"a", "b", "y"};
        static const char *const renamed[] = {"a", "b", "c2", "y"};
        struct cols k;
        uint32_t classes = 3;

        start(&d, NULL, &c);
        make_reg(&c, "reg");
        make_cls(&c, "three", 3);
        create(&c, "other", 3, other, false);
        create(&c, "renamed", 4, renamed, false);

        CHECK(submit_code(&c,
                          &(struct spec){.dataset = "nope",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL},
                          msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_NOT_FOUND);
        CHECK(strstr(msg, "nope"));
        CHECK(submit_code(&c,
                          &(struct spec){.dataset = "reg",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                         .test = "other"},
                          msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_SCHEMA);
        CHECK(strstr(msg, "other"));
        /* Same count and target, another name: refused at submit too. */
        CHECK(submit_code(&c,
                          &(struct spec){.dataset = "reg",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                         .test = "renamed"},
                          msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_SCHEMA);
        CHECK(strstr(msg, "renamed") && strstr(msg, "c2"));
        CHECK(submit_code(&c,
                          &(struct spec){.dataset = "reg",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                         .test = "missing"},
                          msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_NOT_FOUND);
        CHECK(submit_code(&c,
                          &(struct spec){.dataset = "reg",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LOGISTIC,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT},
                          msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_INVALID);
        CHECK(submit_code(&c,
                          &(struct spec){.dataset = "reg",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                         .lr = NAN},
                          msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_INVALID);
        CHECK(strstr(msg, "lr"));

        /* Accepted, then failed with a reason. */
        struct {
                const char *ds;
                Dream__V1__ModelKind m;
                const char *why;
        } bad[] = {
            {"three", DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR, "classification"},
            {"three", DREAM__V1__MODEL_KIND__MODEL_KIND_LOGISTIC, "binary"},
            {"reg", DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX, "regression"},
            {"other", DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR, "no rows"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                job = submit_ok(&c, &(struct spec){.dataset = bad[i].ds,
                                                   .model = bad[i].m,
                                                   .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL});
                r = watch(&c, job, NULL);
                CHECK(r->code == OK);
                fprintf(stderr, "job %llu: %s\n", (unsigned long long)job, r->job_watch->error);
                CHECK(r->job_watch->state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED);
                CHECK(strstr(r->job_watch->error, bad[i].why));
                CHECK(r->job_watch->error_code != OK);
                proto_response_free(r);
        }
        /* Predict: a failed job has no model; unknown jobs; wrong shapes. */
        cols_build(&k, 10, 3, true, cls_cb, &classes);
        r = predict_rows(&c, job, &k);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_INVALID && strstr(r->message, "failed"));
        proto_response_free(r);
        r = predict_rows(&c, 99999, &k);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_NOT_FOUND);
        proto_response_free(r);
        job = linear_exact_done(&c);
        k.msg.n_columns = 2; /* the model takes 3 features (or 4 with y) */
        r = predict_rows(&c, job, &k);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_SCHEMA && strstr(r->message, "3 features"));
        proto_response_free(r);
        k.msg.n_columns = 3;
        cols_release(&k);
        r = status(&c, 424242, false);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_NOT_FOUND);
        proto_response_free(r);
        r = watch(&c, 424242, NULL);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_NOT_FOUND);
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

/* SIGTERM with a running job and a watcher: the watch ends, the job is
 * recorded as cancelled, dreamd exits 0; a queued job runs after the
 * restart. */
static void g_drain(void)
{
        struct tdaemon d, d2;
        struct tc c, w;
        proto_response *r;
        uint64_t job, queued;
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__JobWatch jw = DREAM__V1__JOB_WATCH__INIT;

        start(&d, NULL, &c);
        make_reg(&c, "reg");
        job = submit_ok(&c, &(struct spec){.dataset = "reg",
                                           .model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP,
                                           .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                           .epochs = 100000,
                                           .batch = 16,
                                           .hidden = 64,
                                           .no_early_stop = true});
        queued = submit_ok(&c, &(struct spec){.dataset = "reg",
                                              .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                              .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT});
        tc_connect(&w, d.port);
        jw.job_id = job;
        req.request_id = 5;
        req.body_case = DREAM__V1__REQUEST__BODY_JOB_WATCH;
        req.job_watch = &jw;
        CHECK(tc_send(&w, &req) == 0);
        for (;;) { /* until it runs */
                CHECK(tc_recv(&w, &r, 30000) == 1);
                CHECK(r->code == OK && r->more);
                if (r->job_watch->epoch >= 1) {
                        proto_response_free(r);
                        break;
                }
                proto_response_free(r);
        }
        kill(d.pid, SIGTERM);
        for (;;) {
                CHECK(tc_recv(&w, &r, 30000) == 1);
                if (r->code != OK) {
                        CHECK(r->code == DREAM__V1__STATUS__STATUS_CANCELLED && !r->more);
                        proto_response_free(r);
                        break;
                }
                proto_response_free(r);
        }
        tc_close(&w);
        tc_close(&c);
        CHECK(td_wait(&d) == 0);

        start(&d2, d.data_dir, &c);
        r = status(&c, job, false);
        CHECK(r->code == OK && r->job_status->state == DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED);
        CHECK(strstr(r->job_status->error, "shut down"));
        proto_response_free(r);
        r = watch(&c, queued, NULL);
        (void)done_info(r);
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d2) == 0);
        td_cleanup(&d);
}

static double mono_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An MLP whose first epoch takes seconds (2048 x 2048 hidden units on 3000
 * rows), once it has been fitting for half a second. */
static uint64_t start_slow_job(struct tc *c)
{
        uint64_t job = submit_ok(c, &(struct spec){.dataset = "reg",
                                                   .model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP,
                                                   .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                                   .epochs = 1000,
                                                   .batch = 64,
                                                   .hidden = 2048,
                                                   .hidden2 = 2048,
                                                   .no_early_stop = true});
        for (int tries = 0;; tries++) {
                proto_response *r = status(c, job, false);
                CHECK(r->code == OK);
                if (r->job_status->state == DREAM__V1__JOB_STATE__JOB_STATE_RUNNING &&
                    r->job_status->elapsed_seconds >= 0.5) {
                        CHECK(r->job_status->epoch == 0); /* inside its first epoch */
                        proto_response_free(r);
                        return job;
                }
                proto_response_free(r);
                CHECK(tries < 600);
                usleep(20000);
        }
}

/* Cancel and SIGTERM stop a job inside a long epoch within a bound, not at
 * the end of the epoch. */
static void g_cancel(void)
{
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        uint64_t job;
        double t0, cancel_s, drain_s;

        start(&d, NULL, &c);
        make_reg(&c, "reg");
        job = start_slow_job(&c);
        t0 = mono_now();
        r = status(&c, job, true);
        CHECK(r->code == OK);
        proto_response_free(r);
        r = watch(&c, job, NULL);
        cancel_s = mono_now() - t0;
        fprintf(stderr, "cancel of a running mlp 2048,2048: %.3f s\n", cancel_s);
        CHECK(r->code == OK && r->job_watch->state == DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED);
        CHECK(r->job_watch->epoch == 0);
        proto_response_free(r);
        CHECK(cancel_s < 2.0 * SLOWDOWN);

        (void)start_slow_job(&c);
        tc_close(&c);
        t0 = mono_now();
        kill(d.pid, SIGTERM);
        CHECK(td_wait(&d) == 0);
        drain_s = mono_now() - t0;
        fprintf(stderr, "SIGTERM drain with a running mlp 2048,2048: %.3f s\n", drain_s);
        CHECK(drain_s < 5.0);
        td_cleanup(&d);
}

/* Limits known before a job runs: its memory (job_memory), k-means' k
 * against the rows; predict refuses non-finite features. */
static void g_bounds(void)
{
        static const char *const extra[] = {"--jobs", "1", "--job-memory", "268435456", NULL};
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        char msg[1024];
        uint64_t job;
        float x[4 * 3] = {0};

        td_start(&d, NULL, extra);
        tc_connect(&c, d.port);
        make_reg(&c, "reg");
        make_cls(&c, "three", 3);

        /* Full mode: everything is known at submit. 3000 rows x 65536 units of
         * activations and deltas are 1.5 GiB. */
        CHECK(submit_code(&c,
                          &(struct spec){.dataset = "reg",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                         .batch = 8192,
                                         .hidden = 65536},
                          msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_LIMIT);
        fprintf(stderr, "refused at submit: %s\n", msg);
        CHECK(strstr(msg, "needs about 1.5 GiB") && strstr(msg, "activations 1.5 GiB") &&
              strstr(msg, "job_memory is 256 MiB"));
        /* Condensed: the sample's size is known once it is read; the job fails. */
        job = submit_ok(&c, &(struct spec){.dataset = "reg",
                                           .model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP,
                                           .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED,
                                           .budget_rows = 3000,
                                           .batch = 8192,
                                           .hidden = 65536});
        r = watch(&c, job, NULL);
        CHECK(r->code == OK && r->job_watch->state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED);
        fprintf(stderr, "failed once the data was read: %s\n", r->job_watch->error);
        CHECK(r->job_watch->error_code == DREAM__V1__STATUS__STATUS_LIMIT);
        CHECK(strstr(r->job_watch->error, "needs about") &&
              strstr(r->job_watch->error, "job_memory is 256 MiB"));
        proto_response_free(r);
        /* Too many weights for any model. */
        CHECK(submit_code(&c,
                          &(struct spec){.dataset = "reg",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED,
                                         .hidden = 65536,
                                         .hidden2 = 65536},
                          msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_LIMIT);
        CHECK(strstr(msg, "weights; the limit is"));

        /* k-means: more clusters than rows. */
        CHECK(submit_code(&c,
                          &(struct spec){.dataset = "three",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_KMEANS,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                         .k = 2000},
                          msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_INVALID);
        CHECK(strstr(msg, "k = 2000 is larger than the 1500 rows of dataset 'three'"));
        job = submit_ok(&c, &(struct spec){.dataset = "three",
                                           .model = DREAM__V1__MODEL_KIND__MODEL_KIND_KMEANS,
                                           .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED,
                                           .budget_rows = 12,
                                           .k = 50});
        r = watch(&c, job, NULL);
        CHECK(r->code == OK && r->job_watch->state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED);
        fprintf(stderr, "k-means: %s\n", r->job_watch->error);
        CHECK(strstr(r->job_watch->error, "k = 50 is larger than the") &&
              strstr(r->job_watch->error, "training rows"));
        proto_response_free(r);

        /* Predict: NaN and infinite features name the row and column. */
        job = linear_exact_done(&c);
        x[2 * 3 + 1] = NAN; /* row 3, column 2 */
        r = predict_matrix(&c, job, x, 4, 3);
        fprintf(stderr, "predict: %s\n", r->message);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_INVALID);
        CHECK(strstr(r->message, "predict.features: row 3, column 2 is NaN"));
        proto_response_free(r);
        {
                double cells[3][2] = {{1, 2}, {3, 4}, {5, 1e300}};
                struct cols k;
                cols_build(&k, 2, 3, false, reg_cb, NULL);
                for (uint32_t j = 0; j < 3; j++) {
                        int64_t v[2];
                        dm_free(k.cv[j].values.data);
                        k.cv[j].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_F64;
                        k.cv[j].scale = 0;
                        memcpy(&v[0], &cells[j][0], 8);
                        memcpy(&v[1], &cells[j][1], 8);
                        CHECK(proto_values_new(v, 2, &k.cv[j].values) == 0);
                }
                r = predict_rows(&c, job, &k);
                fprintf(stderr, "predict: %s\n", r->message);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_INVALID);
                CHECK(
                    strstr(r->message, "predict.rows: row 2, column 3 is out of the float range"));
                proto_response_free(r);
                cells[1][0] = -INFINITY;
                dm_free(k.cv[1].values.data);
                {
                        int64_t v[2];
                        memcpy(v, cells[1], 16);
                        CHECK(proto_values_new(v, 2, &k.cv[1].values) == 0);
                }
                r = predict_rows(&c, job, &k);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_INVALID);
                CHECK(strstr(r->message, "predict.rows: row 1, column 2 is infinite"));
                proto_response_free(r);
                cols_release(&k);
        }
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

/* A finished job's JobInfo (caller frees the response). */
static proto_response *run_done(struct tc *c, const struct spec *s, const Dream__V1__JobInfo **ret)
{
        proto_response *r = watch(c, submit_ok(c, s), NULL);

        *ret = done_info(r);
        return r;
}

/* The holdout: the same rows for a seed in every mode, excluded from
 * training in every mode (a linear fit on all the rows left equals full
 * mode's only when the holdout is out of both), scored on; none with
 * holdout < 0 (every row scored); with a test dataset still set aside. */
static void g_holdout(void)
{
        struct tdaemon d;
        struct tc c;
        float *x = malloc(N_REG * 3 * sizeof(float));
        double *p_full = malloc(N_REG * 8), *p = malloc(N_REG * 8);
        proto_response *r[5];
        const Dream__V1__JobInfo *i[5];
        const Dream__V1__TrainMode modes[] = {
            DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL, DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT,
            DREAM__V1__TRAIN_MODE__TRAIN_MODE_SAMPLE, DREAM__V1__TRAIN_MODE__TRAIN_MODE_REFRESH};
        uint64_t job[4];

        CHECK(x && p_full && p);
        start(&d, NULL, &c);
        make_reg(&c, "reg");
        make_reg(&c, "reg_test");
        make_cls(&c, "three", 3);
        reg_features(x, N_REG);
        /* sample and refresh at a budget of every row left: all of them. */
        for (int k = 0; k < 4; k++)
                job[k] =
                    submit_ok(&c, &(struct spec){.dataset = "reg",
                                                 .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                                 .mode = modes[k],
                                                 .budget_fraction = k >= 2 ? 1.0 : 0});
        for (int k = 0; k < 4; k++) {
                r[k] = watch(&c, job[k], NULL);
                i[k] = done_info(r[k]);
                CHECK(i[k]->result->holdout_rows == N_REG / 10);
                CHECK(i[k]->result->evaluated_rows == N_REG / 10);
                CHECK(strcmp(i[k]->result->evaluated_on, "holdout") == 0);
                CHECK(i[k]->budget && i[k]->budget->kind_case == DREAM__V1__BUDGET__KIND_FRACTION &&
                      i[k]->budget->fraction == 1.0);
                CHECK(i[k]->result->rows_used == N_REG - N_REG / 10);
                CHECK(i[k]->result->wall_seconds >= i[k]->result->train_seconds);
                CHECK(isfinite(i[k]->result->fit_loss));
        }
        predict_features(&c, job[0], x, N_REG, 3, p_full, NULL);
        for (int k = 1; k < 4; k++) {
                predict_features(&c, job[k], x, N_REG, 3, p, NULL);
                fprintf(stderr, "holdout: mode %d vs full %.3g, rmse %.9g vs %.9g\n", modes[k],
                        max_rel_diff(p, p_full, N_REG), i[k]->result->regression->rmse,
                        i[0]->result->regression->rmse);
                CHECK(max_rel_diff(p, p_full, N_REG) < (k == 1 ? 1e-9 : 1e-6));
                /* The same model on the same rows: the same score. */
                CHECK(fabs(i[k]->result->regression->rmse - i[0]->result->regression->rmse) <
                      1e-6 * i[0]->result->regression->rmse);
        }
        for (int k = 0; k < 4; k++)
                proto_response_free(r[k]);

        /* Classes: refresh picks the holdout in its pass over the targets;
         * at a budget of every row left it trains on the rows full mode does,
         * and is scored on the same rows. */
        {
                uint64_t jf, jr;
                float xc[N_CLS * 2];
                double pf[N_CLS], pr[N_CLS];
                cls_features(xc);
                r[0] = run_done(&c,
                                &(struct spec){.dataset = "three",
                                               .model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
                                               .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                               .epochs = 3,
                                               .solver = DREAM__V1__SOLVER__SOLVER_ADAM},
                                &i[0]);
                r[1] = run_done(&c,
                                &(struct spec){.dataset = "three",
                                               .model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
                                               .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_REFRESH,
                                               .budget_fraction = 1.0,
                                               .epochs = 3},
                                &i[1]);
                jf = i[0]->job_id;
                jr = i[1]->job_id;
                CHECK(i[1]->result->rows_used == N_CLS - N_CLS / 10);
                CHECK(strcmp(i[0]->result->solver, "adam") == 0);
                CHECK(strcmp(i[1]->result->solver, "adam") == 0);
                CHECK(i[1]->result->evaluated_rows == N_CLS / 10);
                fprintf(stderr, "holdout: softmax refresh (all rows left) %.9g vs full %.9g\n",
                        i[1]->result->classification->logloss,
                        i[0]->result->classification->logloss);
                predict_features(&c, jf, xc, N_CLS, 2, pf, NULL);
                predict_features(&c, jr, xc, N_CLS, 2, pr, NULL);
                CHECK(memcmp(pf, pr, sizeof(pf)) == 0);
                CHECK(i[1]->result->classification->logloss ==
                      i[0]->result->classification->logloss);
                proto_response_free(r[0]);
                proto_response_free(r[1]);
        }

        /* MLP early stopping on the holdout: patience 1 stops at the first
         * epoch without a better score; early_stopping_off runs every epoch. */
        {
                const struct spec mlp = {.dataset = "reg",
                                         .model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP,
                                         .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                         .epochs = 200,
                                         .lr = 0.05,
                                         .batch = 16,
                                         .hidden = 8};
                struct spec s1 = mlp, off = mlp;
                s1.patience = 1;
                off.epochs = 40;
                off.no_early_stop = true;
                r[0] = run_done(&c, &s1, &i[0]);
                r[1] = run_done(&c, &off, &i[1]);
                fprintf(stderr, "holdout: mlp patience 1: %u epochs (converged %d); off: %u\n",
                        i[0]->result->epochs, i[0]->result->converged, i[1]->result->epochs);
                CHECK(i[0]->result->converged && i[0]->result->epochs < 200);
                CHECK(!i[1]->result->converged && i[1]->result->epochs == 40);
                CHECK(strcmp(i[1]->result->solver, "adam") == 0);
                proto_response_free(r[0]);
                proto_response_free(r[1]);
        }

        /* Another seed, other rows set aside: another fit. */
        r[0] = run_done(&c,
                        &(struct spec){.dataset = "reg",
                                       .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                       .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                       .seed = 8},
                        &i[0]);
        predict_features(&c, r[0]->job_watch->job_id, x, N_REG, 3, p, NULL);
        CHECK(max_rel_diff(p, p_full, N_REG) > 1e-7);
        proto_response_free(r[0]);

        /* No holdout: every row trained on and scored, condensed too (its
         * metrics on the dataset's rows, not on the samples). */
        r[0] = run_done(&c,
                        &(struct spec){.dataset = "reg",
                                       .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                       .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                       .holdout = -1},
                        &i[0]);
        CHECK(i[0]->result->holdout_rows == 0 && i[0]->result->holdout_share == 0);
        CHECK(i[0]->result->rows_used == N_REG && i[0]->result->evaluated_rows == N_REG);
        CHECK(strcmp(i[0]->result->evaluated_on, "training rows") == 0);
        proto_response_free(r[0]);
        r[0] = run_done(&c,
                        &(struct spec){.dataset = "three",
                                       .model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
                                       .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED,
                                       .budget_fraction = 0.05,
                                       .epochs = 5,
                                       .holdout = -1},
                        &i[0]);
        CHECK(i[0]->result->rows_used < N_CLS / 10);
        CHECK(i[0]->result->evaluated_rows == N_CLS);
        CHECK(strcmp(i[0]->result->evaluated_on, "training rows") == 0);
        CHECK(i[0]->budget && i[0]->budget->fraction == 0.05);
        proto_response_free(r[0]);

        /* A test dataset: scored there, the holdout still left out. */
        r[0] = run_done(&c,
                        &(struct spec){.dataset = "reg",
                                       .model = DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE,
                                       .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                       .test = "reg_test"},
                        &i[0]);
        CHECK(strcmp(i[0]->result->evaluated_on, "test dataset 'reg_test'") == 0);
        CHECK(i[0]->result->evaluated_rows == N_REG && i[0]->result->holdout_rows == N_REG / 10);
        CHECK(i[0]->result->rows_used == N_REG - N_REG / 10);
        CHECK(i[0]->result->l2 == 1.0); /* ridge's default */
        proto_response_free(r[0]);

        /* An explicit share; a holdout that leaves fewer than 2 rows fails. */
        r[0] = run_done(&c,
                        &(struct spec){.dataset = "three",
                                       .model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
                                       .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                       .epochs = 2,
                                       .holdout = 0.2},
                        &i[0]);
        CHECK(i[0]->result->holdout_share == 0.2 && i[0]->result->holdout_rows == N_CLS / 5);
        CHECK(i[0]->result->rows_used == N_CLS - N_CLS / 5);
        proto_response_free(r[0]);
        {
                static const char *const names[] = {"a", "b", "c", "y"};
                struct cols k;
                char msg[256];

                create(&c, "tiny", 4, names, false);
                cols_build(&k, 2, 4, false, reg_cb, NULL);
                ingest(&c, "tiny", &k);
                cols_release(&k);
                CHECK(submit_code(&c,
                                  &(struct spec){.dataset = "tiny",
                                                 .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                                 .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL},
                                  msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_EMPTY);
                fprintf(stderr, "tiny: %s\n", msg);
                CHECK(strstr(msg, "holdout of 1 leaves fewer than 2"));
                /* Without a holdout it trains, scored on its 2 rows. */
                r[0] = run_done(&c,
                                &(struct spec){.dataset = "tiny",
                                               .model = DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE,
                                               .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                               .holdout = -1},
                                &i[0]);
                CHECK(i[0]->result->evaluated_rows == 2);
                proto_response_free(r[0]);
                CHECK(submit_code(&c,
                                  &(struct spec){.dataset = "reg",
                                                 .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                                 .holdout = 1.0},
                                  msg, sizeof(msg)) == DREAM__V1__STATUS__STATUS_INVALID);
                CHECK(strstr(msg, "train.holdout"));
        }
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
        free(x);
        free(p_full);
        free(p);
}

/* An unset mode: linear and ridge exact (condensed with a budget), the
 * others condensed; the budget in JobInfo is always set. */
static void g_defaults(void)
{
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        const Dream__V1__JobInfo *i;
        struct {
                const char *ds;
                Dream__V1__ModelKind m;
                double budget;
                Dream__V1__TrainMode want;
                double want_budget;
        } cases[] = {
            {"reg", DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR, 0,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT, 1.0},
            {"reg", DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE, 0,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT, 1.0},
            {"reg", DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR, 0.1,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED, 0.1},
            {"three", DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX, 0,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED, 0.01},
            {"two", DREAM__V1__MODEL_KIND__MODEL_KIND_LOGISTIC, 0,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED, 0.01},
            {"three", DREAM__V1__MODEL_KIND__MODEL_KIND_MLP, 0,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED, 0.01},
            {"three", DREAM__V1__MODEL_KIND__MODEL_KIND_KMEANS, 0,
             DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED, 0.01},
        };

        start(&d, NULL, &c);
        make_reg(&c, "reg");
        make_cls(&c, "two", 2);
        make_cls(&c, "three", 3);
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                uint64_t id = submit_ok(
                    &c, &(struct spec){
                            .dataset = cases[k].ds,
                            .model = cases[k].m,
                            .budget_fraction = cases[k].budget,
                            .epochs = 2,
                            .hidden = cases[k].m == DREAM__V1__MODEL_KIND__MODEL_KIND_MLP ? 4 : 0,
                            .k = cases[k].m == DREAM__V1__MODEL_KIND__MODEL_KIND_KMEANS ? 2 : 0});
                r = status(&c, id, false); /* as queued: the mode it will run in */
                CHECK(r->code == OK && r->job_status->mode == cases[k].want);
                CHECK(r->job_status->budget &&
                      r->job_status->budget->kind_case == DREAM__V1__BUDGET__KIND_FRACTION &&
                      r->job_status->budget->fraction == cases[k].want_budget);
                proto_response_free(r);
                r = watch(&c, id, NULL);
                i = done_info(r);
                CHECK(i->mode == cases[k].want);
                CHECK(strcmp(i->result->evaluated_on, "holdout") == 0);
                proto_response_free(r);
        }
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

/* Condensed mode leaves the holdout out of its groups (store_condensed's
 * exclusion): at a budget of every row, its linear fit equals full mode's
 * on the rows left, and it is scored on the same rows. */
static void g_holdout_condensed(void)
{
        struct tdaemon d;
        struct tc c;
        float *x = malloc(N_REG * 3 * sizeof(float));
        double *p_full = malloc(N_REG * 8), *p = malloc(N_REG * 8);
        const Dream__V1__JobInfo *i, *f;
        proto_response *r, *rf;

        CHECK(x && p_full && p);
        start(&d, NULL, &c);
        make_reg(&c, "reg");
        reg_features(x, N_REG);
        rf = run_done(&c,
                      &(struct spec){.dataset = "reg",
                                     .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                     .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL},
                      &f);
        r = run_done(&c,
                     &(struct spec){.dataset = "reg",
                                    .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                    .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED,
                                    .budget_rows = N_REG},
                     &i);
        CHECK(i->result->holdout_rows == N_REG / 10 && i->result->evaluated_rows == N_REG / 10);
        predict_features(&c, rf->job_watch->job_id, x, N_REG, 3, p_full, NULL);
        predict_features(&c, r->job_watch->job_id, x, N_REG, 3, p, NULL);
        fprintf(stderr, "holdout: condensed (budget = rows) vs full %.3g\n",
                max_rel_diff(p, p_full, N_REG));
        CHECK(max_rel_diff(p, p_full, N_REG) < 1e-6);
        CHECK(fabs(i->result->regression->rmse - f->result->regression->rmse) <
              1e-6 * f->result->regression->rmse);
        proto_response_free(r);
        proto_response_free(rf);

        /* A test dataset with a class the training rows lack: its rows count
         * as errors, the job is done. */
        make_cls(&c, "two", 2);
        make_cls(&c, "three", 3);
        r = run_done(&c,
                     &(struct spec){.dataset = "two",
                                    .model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
                                    .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                    .test = "three"},
                     &i);
        CHECK(i->result->evaluated_rows == N_CLS);
        CHECK(i->result->classification->accuracy < 0.9);
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
        free(x);
        free(p_full);
        free(p);
}

/* Read a rows-mode batch stream of a dataset to its end (the first one
 * decodes the dataset into the server's batch cache). */
static void stream_rows(struct tc *c, const char *ds)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__GetBatches gb = DREAM__V1__GET_BATCHES__INIT;
        uint64_t id = next_id++;

        gb.dataset = (char *)ds;
        gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        gb.batch_size = 500;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
        req.get_batches = &gb;
        CHECK(tc_send(c, &req) == 0);
        for (;;) {
                proto_response *r = NULL;
                bool more;
                CHECK(tc_recv(c, &r, 60000) == 1);
                CHECK(r->request_id == id && r->code == OK);
                more = r->more;
                proto_response_free(r);
                if (!more)
                        return;
        }
}

/* refresh draws each epoch's rows from the batch cache once it holds the
 * dataset: the same rows, the same model as from the store. The holdout
 * read by a job serves the next job of its dataset and seed. */
static void g_refresh_cache(void)
{
        struct tdaemon d;
        struct tc c;
        char log[128];
        float *x = malloc(N_REG * 3 * sizeof(float)), xc[N_CLS * 2];
        double *a = malloc(N_REG * 8), *b = malloc(N_REG * 8), ca[N_CLS], cb[N_CLS];
        const struct spec lin = {.dataset = "reg",
                                 .model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP,
                                 .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_REFRESH,
                                 .budget_fraction = 0.2,
                                 .epochs = 3,
                                 .hidden = 8};
        const struct spec sm = {.dataset = "three",
                                .model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX,
                                .mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_REFRESH,
                                .budget_fraction = 0.2,
                                .epochs = 3};
        const Dream__V1__JobInfo *i;
        proto_response *r;
        uint64_t job;

        CHECK(x && a && b);
        td_mkdir(&d, "/tmp/dreamd-test");
        snprintf(log, sizeof(log), "%s/dreamd.log", d.dir);
        CHECK(td_launch(&d, &(struct td_opts){.data_dir = d.data_dir,
                                              .args = (const char *const[]){"--jobs", "1", NULL},
                                              .log_path = log}) == 0);
        tc_connect(&c, d.port);
        make_reg(&c, "reg");
        make_cls(&c, "three", 3);
        reg_features(x, N_REG);
        cls_features(xc);
        /* From the store first. */
        r = run_done(&c, &lin, &i);
        job = i->job_id;
        proto_response_free(r);
        predict_features(&c, job, x, N_REG, 3, a, NULL);
        r = run_done(&c, &sm, &i);
        job = i->job_id;
        proto_response_free(r);
        predict_features(&c, job, xc, N_CLS, 2, ca, NULL);
        CHECK(!td_log_has(log, "from the batch cache", 0));
        /* Then from the decoded copies. */
        stream_rows(&c, "reg");
        stream_rows(&c, "three");
        r = run_done(&c, &lin, &i);
        job = i->job_id;
        CHECK(strcmp(i->result->evaluated_on, "holdout") == 0);
        proto_response_free(r);
        predict_features(&c, job, x, N_REG, 3, b, NULL);
        CHECK(memcmp(a, b, N_REG * 8) == 0);
        r = run_done(&c, &sm, &i);
        job = i->job_id;
        proto_response_free(r);
        predict_features(&c, job, xc, N_CLS, 2, cb, NULL);
        CHECK(memcmp(ca, cb, sizeof(ca)) == 0);
        CHECK(td_log_has(log, "refresh draws its rows from the batch cache", 10000));

        /* The holdout of the last job is kept for the next of its dataset and
         * seed (exact needs its statistics too): the same fits. */
        {
                const Dream__V1__TrainMode seq[] = {DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL,
                                                    DREAM__V1__TRAIN_MODE__TRAIN_MODE_SAMPLE,
                                                    DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT,
                                                    DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL};
                const bool kept[] = {false, true, false, true};
                uint64_t ids[4];
                char line[128];

                for (int k = 0; k < 4; k++) {
                        r = run_done(
                            &c,
                            &(struct spec){.dataset = "reg",
                                           .model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR,
                                           .mode = seq[k],
                                           .budget_fraction = k == 1 ? 1.0 : 0},
                            &i);
                        ids[k] = i->job_id;
                        CHECK(i->result->holdout_rows == N_REG / 10);
                        proto_response_free(r);
                        predict_features(&c, ids[k], x, N_REG, 3, k ? b : a, NULL);
                        if (k)
                                CHECK(max_rel_diff(b, a, N_REG) < 1e-6);
                }
                /* Logged in job order: the last one's line once all are there. */
                snprintf(line, sizeof(line), "job %llu: its %u holdout rows",
                         (unsigned long long)ids[3], N_REG / 10);
                CHECK(td_log_has(log, line, 10000));
                for (int k = 0; k < 4; k++) {
                        snprintf(line, sizeof(line), "job %llu: its %u holdout rows",
                                 (unsigned long long)ids[k], N_REG / 10);
                        CHECK(td_log_has(log, line, 0) == kept[k]);
                }
        }
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
        free(x);
        free(a);
        free(b);
}

int main(int argc, char **argv)
{
        const char *g = argc > 1 ? argv[1] : "";

        signal(SIGPIPE, SIG_IGN);
        if (strcmp(g, "models") == 0)
                g_models();
        else if (strcmp(g, "lifecycle") == 0)
                g_lifecycle();
        else if (strcmp(g, "restart") == 0)
                g_restart();
        else if (strcmp(g, "holdout") == 0)
                g_holdout();
        else if (strcmp(g, "holdout_condensed") == 0)
                g_holdout_condensed();
        else if (strcmp(g, "refresh_cache") == 0)
                g_refresh_cache();
        else if (strcmp(g, "defaults") == 0)
                g_defaults();
        else if (strcmp(g, "errors") == 0)
                g_errors();
        else if (strcmp(g, "drain") == 0)
                g_drain();
        else if (strcmp(g, "cancel") == 0)
                g_cancel();
        else if (strcmp(g, "bounds") == 0)
                g_bounds();
        else {
                fprintf(stderr, "usage: test_jobs "
                                "models|lifecycle|restart|holdout|defaults|refresh_cache|errors|"
                                "drain|cancel|bounds\n");
                return 2;
        }
        fprintf(stderr, "test_jobs %s: ok\n", g);
        return 0;
}
