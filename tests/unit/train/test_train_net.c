/* Logistic, softmax and MLP: known answers on generated data, weights as
 * repeated rows, cancellation, per-epoch sources, determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "train/gauss.h"
#include "util.h"

#include <string.h>
#include <time.h>

static struct train_model *fit_ok(enum train_kind kind, const struct train_params *p,
                                  const struct train_problem *pb, const struct train_view *v)
{
        struct train_model *m = NULL;
        assert_int_equal(train_fit(kind, p, pb, v, NULL, NULL, &m), 0);
        assert_non_null(m);
        return m;
}

static double accuracy(const struct train_model *m, const struct train_view *v)
{
        struct train_metrics mt;
        assert_int_equal(train_evaluate(m, v, &mt), 0);
        assert_int_equal(mt.task, TRAIN_TASK_CLASSIFICATION);
        return mt.accuracy;
}

static void test_logistic_separable(void **state)
{
        (void)state;
        size_t n = 400;
        uint32_t d = 2;
        double centres[] = {-2, -2, 2, 2};
        float *x = malloc(n * d * 4), *y = malloc(n * 4);
        gen_blobs(n, d, 2, centres, 0.5, 1, x, y);
        /* Shift a feature far from 0 to exercise the standardisation. */
        for (size_t i = 0; i < n; i++)
                x[i * d + 1] += 1000;
        struct train_view v = {x, y, NULL, n, d, NULL};
        struct train_params p;
        struct train_problem pb = {.d = d};
        train_params_default(TRAIN_LOGISTIC, &p);
        p.solver = TRAIN_SOLVER_ADAM; /* epochs are Adam's */
        p.epochs = 30;
        p.batch = 32;
        p.lr = 0.05;
        struct train_model *m = fit_ok(TRAIN_LOGISTIC, &p, &pb, &v);
        assert_int_equal(m->n_classes, 2);
        assert_true(accuracy(m, &v) == 1.0);
        assert_int_equal(m->epochs_run, 30);
        assert_true(m->loss < 0.1);
        assert_int_equal(train_model_proba_width(m), 2);
        double val[2], pr[4];
        assert_int_equal(train_predict(m, x, 2, val, pr), 0);
        assert_true(val[0] == 0 && val[1] == 1);
        assert_true(pr[0] > 0.9 && pr[3] > 0.9);
        assert_true(fabs(pr[0] + pr[1] - 1) < 1e-12);
        train_model_free(m);
        free(x);
        free(y);
}

static void test_logistic_weights_as_repeats(void **state)
{
        (void)state;
        size_t n = 60, nr = 0;
        uint32_t d = 3;
        float *x = malloc(n * d * 4), *y = malloc(n * 4), *w = malloc(n * 4);
        struct rng r;
        rng_seed(&r, 9);
        for (size_t i = 0; i < n; i++) {
                double t = 0;
                for (uint32_t j = 0; j < d; j++) {
                        x[i * d + j] = (float)gauss(&r);
                        t += x[i * d + j] * (j + 1.0);
                }
                y[i] = t + gauss(&r) > 0 ? 1.0f : 0.0f; /* noisy: not separable */
                w[i] = (float)(1 + rng_below(&r, 3));
                nr += (size_t)w[i];
        }
        float *xr = malloc(nr * d * 4), *yr = malloc(nr * 4);
        size_t at = 0;
        for (size_t i = 0; i < n; i++)
                for (int c = 0; c < (int)w[i]; c++, at++) {
                        memcpy(xr + at * d, x + i * d, d * 4);
                        yr[at] = y[i];
                }
        struct train_view vw = {x, y, w, n, d, NULL}, vr = {xr, yr, NULL, nr, d, NULL},
                          vu = {x, y, NULL, n, d, NULL};
        struct train_params p;
        struct train_problem pb = {.d = d};
        train_params_default(TRAIN_LOGISTIC, &p);
        p.epochs = 50;
        p.batch = 1024; /* one full batch per epoch: same objective, same steps */
        p.l2 = 1e-2;
        struct train_model *a = fit_ok(TRAIN_LOGISTIC, &p, &pb, &vw);
        struct train_model *b = fit_ok(TRAIN_LOGISTIC, &p, &pb, &vr);
        struct train_model *u = fit_ok(TRAIN_LOGISTIC, &p, &pb, &vu);
        double pa[120], pbb[120], pu[120], va[60];
        assert_int_equal(train_predict(a, x, n, va, pa), 0);
        assert_int_equal(train_predict(b, x, n, va, pbb), 0);
        assert_int_equal(train_predict(u, x, n, va, pu), 0);
        double worst = 0, unweighted = 0;
        for (size_t i = 0; i < 2 * n; i++) {
                worst = fmax(worst, fabs(pa[i] - pbb[i]));
                unweighted = fmax(unweighted, fabs(pa[i] - pu[i]));
        }
        assert_true(worst < 1e-4);
        assert_true(unweighted > 1e-3); /* the weights do matter */
        assert_true(fabs(a->loss - b->loss) < 1e-5);
        train_model_free(a);
        train_model_free(b);
        train_model_free(u);
        free(x);
        free(y);
        free(w);
        free(xr);
        free(yr);
}

static void test_softmax_blobs(void **state)
{
        (void)state;
        size_t n = 900;
        uint32_t d = 4;
        double centres[] = {0, 0, 0, 0, 4, 4, 0, 0, 0, 4, 4, 4};
        float *x = malloc(n * d * 4), *y = malloc(n * 4), *xt = malloc(n * d * 4),
              *yt = malloc(n * 4);
        gen_blobs(n, d, 3, centres, 1.0, 2, x, y);
        gen_blobs(n, d, 3, centres, 1.0, 3, xt, yt);
        struct train_view v = {x, y, NULL, n, d, NULL}, vt = {xt, yt, NULL, n, d, NULL};
        struct train_params p;
        double classes[3] = {10, 20, 30};
        struct train_problem pb = {.d = d, .classes = classes};
        train_params_default(TRAIN_SOFTMAX, &p);
        p.batch = 32;
        struct train_model *m = fit_ok(TRAIN_SOFTMAX, &p, &pb, &v);
        assert_int_equal(m->n_classes, 3);
        assert_non_null(m->classes);
        assert_true(m->classes[2] == 30);
        assert_true(accuracy(m, &vt) > 0.95);
        train_model_free(m);
        /* Class values must be finite (they are exported and stored). */
        double bad[3] = {1, NAN, 3};
        pb.classes = bad;
        m = NULL;
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, NULL, NULL, &m), DREAM_E_INVAL);
        assert_null(m);
        free(x);
        free(y);
        free(xt);
        free(yt);
}

static void gen_xor(size_t n, uint64_t seed, float *x, float *y)
{
        struct rng r;
        rng_seed(&r, seed);
        for (size_t i = 0; i < n; i++) {
                int a = (int)(i & 1), b = (int)((i >> 1) & 1);
                x[i * 2] = (float)((a ? 1 : -1) + 0.25 * gauss(&r));
                x[i * 2 + 1] = (float)((b ? 1 : -1) + 0.25 * gauss(&r));
                y[i] = (float)(a ^ b);
        }
}

static void test_mlp_xor(void **state)
{
        (void)state;
        size_t n = 800;
        float *x = malloc(n * 2 * 4), *y = malloc(n * 4), *xt = malloc(n * 2 * 4),
              *yt = malloc(n * 4);
        gen_xor(n, 4, x, y);
        gen_xor(n, 5, xt, yt);
        struct train_view v = {x, y, NULL, n, 2, NULL}, vt = {xt, yt, NULL, n, 2, NULL};
        struct train_params p;
        struct train_problem pb = {.d = 2, .task = TRAIN_TASK_CLASSIFICATION};

        /* A linear model cannot do XOR... */
        train_params_default(TRAIN_LOGISTIC, &p);
        struct train_model *lin = fit_ok(TRAIN_LOGISTIC, &p, &pb, &v);
        assert_true(accuracy(lin, &vt) < 0.8);
        train_model_free(lin);

        /* ... one and two hidden layers can. */
        for (uint32_t layers = 1; layers <= 2; layers++) {
                train_params_default(TRAIN_MLP, &p);
                p.epochs = 60;
                p.batch = 32;
                p.lr = 0.01;
                assert_int_equal(train_hidden_parse(layers == 1 ? "16" : "16,8", &p), 0);
                struct train_model *m = fit_ok(TRAIN_MLP, &p, &pb, &v);
                assert_int_equal(m->n_layers, layers + 1);
                assert_int_equal(m->layers[0].out, 16);
                assert_int_equal(m->layers[layers].out, 2);
                assert_true(accuracy(m, &vt) > 0.97);
                assert_true(m->work_bytes > 0);
                train_model_free(m);
        }

        /* Missing task for mlp. */
        struct train_problem bad = {.d = 2};
        struct train_model *m = NULL;
        assert_int_equal(train_fit(TRAIN_MLP, &p, &bad, &v, NULL, NULL, &m), DREAM_E_INVAL);
        free(x);
        free(y);
        free(xt);
        free(yt);
}

static void test_mlp_regression(void **state)
{
        (void)state;
        size_t n = 2000;
        float *x = malloc(n * 4), *y = malloc(n * 4);
        struct rng r;
        rng_seed(&r, 8);
        for (size_t i = 0; i < n; i++) {
                x[i] = (float)(6 * rng_unit(&r) - 3);
                y[i] = (float)(100 + 20 * sin(x[i]) + 0.5 * gauss(&r));
        }
        struct train_view v = {x, y, NULL, n, 1, NULL};
        struct train_params p;
        struct train_problem pb = {.d = 1, .task = TRAIN_TASK_REGRESSION};
        struct train_metrics mt;
        train_params_default(TRAIN_MLP, &p);
        p.epochs = 100;
        p.batch = 64;
        p.lr = 0.01;
        p.hidden[0] = 32;
        struct train_model *m = fit_ok(TRAIN_MLP, &p, &pb, &v);
        assert_int_equal(train_evaluate(m, &v, &mt), 0);
        assert_true(mt.r2 > 0.97);
        assert_true(fabs(m->y_mean - 100) < 2);
        assert_true(rel_diff(m->loss, mt.rmse * mt.rmse) < 0.5);
        train_model_free(m);
        free(x);
        free(y);
}

struct cancel_ctx {
        uint32_t calls, stop_at, last_epoch;
        double last_loss;
};

static int cancel_cb(void *ctx, uint32_t epoch, uint32_t epochs, double loss)
{
        struct cancel_ctx *c = ctx;
        (void)epochs;
        if (epoch == 0) /* a check within an epoch (test_cancel_within_epoch) */
                return 0;
        c->calls++;
        c->last_epoch = epoch;
        c->last_loss = loss;
        return c->stop_at && epoch >= c->stop_at;
}

static void test_cancel(void **state)
{
        (void)state;
        size_t n = 300;
        uint32_t d = 2;
        double centres[] = {-2, -2, 2, 2, 2, -2};
        float *x = malloc(n * d * 4), *y = malloc(n * 4);
        gen_blobs(n, d, 3, centres, 0.5, 1, x, y);
        struct train_view v = {x, y, NULL, n, d, NULL};
        struct train_params p;
        struct train_problem pb = {.d = d, .task = TRAIN_TASK_CLASSIFICATION};
        enum train_kind kinds[] = {TRAIN_SOFTMAX, TRAIN_MLP, TRAIN_KMEANS, TRAIN_RIDGE};
        for (size_t i = 0; i < 4; i++) {
                /* k-means may converge at its second iteration: stop it there. */
                struct cancel_ctx c = {.stop_at = kinds[i] == TRAIN_RIDGE    ? 1
                                                  : kinds[i] == TRAIN_KMEANS ? 2
                                                                             : 3};
                struct train_model *m = NULL;
                train_params_default(kinds[i], &p);
                p.epochs = 100;
                p.max_iter = 100;
                p.tol = 0;
                p.k = 3;
                assert_int_equal(train_fit(kinds[i], &p, &pb, &v, cancel_cb, &c, &m),
                                 DREAM_E_CANCELLED);
                assert_null(m);
                assert_int_equal(c.calls, c.stop_at);
                assert_int_equal(c.last_epoch, c.stop_at);
                /* Not cancelled: called once per epoch with the final loss. */
                c = (struct cancel_ctx){0};
                p.epochs = 5;
                assert_int_equal(train_fit(kinds[i], &p, &pb, &v, cancel_cb, &c, &m), 0);
                assert_true(c.calls >= 1);
                assert_int_equal(c.last_epoch, m->epochs_run);
                assert_true(c.last_loss == m->loss);
                train_model_free(m);
        }
        free(x);
        free(y);
}

struct src_ctx {
        const float *x, *y;
        size_t n;
        uint32_t d, calls, fail_at;
        uint32_t seen[16];
};

/* Each epoch a different half of the rows. */
static int halves_next(void *ctx, uint32_t epoch, struct train_view *ret)
{
        struct src_ctx *s = ctx;
        size_t h = s->n / 2, off = (epoch % 2) * h;
        if (s->fail_at && epoch == s->fail_at)
                return DREAM_E_IO;
        if (s->calls < 16)
                s->seen[s->calls] = epoch;
        s->calls++;
        ret->x = s->x + off * s->d;
        ret->y = s->y + off;
        ret->w = NULL;
        ret->n = epoch % 2 ? h : h - 50; /* the size may change from epoch to epoch */
        ret->d = s->d;
        return 0;
}

static void test_source(void **state)
{
        (void)state;
        size_t n = 400;
        uint32_t d = 2;
        double centres[] = {-2, -2, 2, 2};
        float *x = malloc(n * d * 4), *y = malloc(n * 4);
        gen_blobs(n, d, 2, centres, 0.5, 6, x, y);
        struct src_ctx s = {.x = x, .y = y, .n = n, .d = d};
        struct train_source src = {halves_next, &s};
        struct train_params p;
        struct train_problem pb = {.d = d};
        struct train_model *m = NULL;
        train_params_default(TRAIN_LOGISTIC, &p);
        p.epochs = 6;
        p.batch = 16;
        p.lr = 0.05;
        assert_int_equal(train_fit_source(TRAIN_LOGISTIC, &p, &pb, &src, NULL, NULL, &m), 0);
        assert_int_equal(s.calls, 6);
        for (uint32_t e = 0; e < 6; e++)
                assert_int_equal(s.seen[e], e);
        assert_int_equal(m->rows_used, n / 2);
        struct train_view v = {x, y, NULL, n, d, NULL};
        assert_true(accuracy(m, &v) > 0.99);
        train_model_free(m);
        m = NULL;
        /* One batch per epoch: the batch buffers grow with the views. */
        s.calls = 0;
        p.batch = 1000;
        p.epochs = 4;
        assert_int_equal(train_fit_source(TRAIN_LOGISTIC, &p, &pb, &src, NULL, NULL, &m), 0);
        assert_int_equal(s.calls, 4);
        train_model_free(m);
        m = NULL;
        /* An error from the source stops the fit with that error. */
        s.calls = 0;
        s.fail_at = 3;
        assert_int_equal(train_fit_source(TRAIN_LOGISTIC, &p, &pb, &src, NULL, NULL, &m),
                         DREAM_E_IO);
        assert_null(m);
        free(x);
        free(y);
}

static void test_deterministic(void **state)
{
        (void)state;
        size_t n = 500;
        float *x = malloc(n * 2 * 4), *y = malloc(n * 4);
        gen_xor(n, 4, x, y);
        struct train_view v = {x, y, NULL, n, 2, NULL};
        struct train_params p;
        struct train_problem pb = {.d = 2, .task = TRAIN_TASK_CLASSIFICATION};
        train_params_default(TRAIN_MLP, &p);
        p.epochs = 3;
        p.hidden[0] = 8;
        struct train_model *a = fit_ok(TRAIN_MLP, &p, &pb, &v);
        struct train_model *b = fit_ok(TRAIN_MLP, &p, &pb, &v);
        p.seed = 43;
        struct train_model *c = fit_ok(TRAIN_MLP, &p, &pb, &v);
        assert_memory_equal(a->layers[0].w, b->layers[0].w, 16 * sizeof(double));
        assert_memory_not_equal(a->layers[0].w, c->layers[0].w, 16 * sizeof(double));
        train_model_free(a);
        train_model_free(b);
        train_model_free(c);
        free(x);
        free(y);
}

static double now_seconds(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct slow_ctx {
        double start, asked; /* monotonic seconds; asked: when it first returned 1 */
        uint32_t epochs_seen, checks;
};

/* Asks to stop from 0.2 s after the start of the fit on. */
static int slow_cb(void *ctx, uint32_t epoch, uint32_t epochs, double loss)
{
        struct slow_ctx *c = ctx;
        double now = now_seconds();
        (void)epochs;
        if (epoch == 0) {
                assert_true(isnan(loss));
                c->checks++;
        } else {
                c->epochs_seen++;
        }
        if (now - c->start < 0.2)
                return 0;
        if (c->asked == 0)
                c->asked = now;
        return 1;
}

/* An epoch of seconds (a wide MLP on 20000 rows) stops within a few
 * mini-batches of being asked to, not at the end of the epoch. */
static void test_cancel_within_epoch(void **state)
{
        (void)state;
        size_t n = 20000;
        uint32_t d = 8;
        float *x = malloc(n * d * 4), *y = malloc(n * 4);
        struct train_view v = {x, y, NULL, n, d, NULL};
        struct train_params p;
        struct train_problem pb = {.d = d, .task = TRAIN_TASK_REGRESSION};
        struct train_model *m = NULL;
        struct slow_ctx c = {0};
        double end;
        gen_regression(n, d, 11, x, y, NULL);
        train_params_default(TRAIN_MLP, &p);
        p.n_hidden = 2;
        p.hidden[0] = p.hidden[1] = 512;
        p.batch = 32;
        p.epochs = 1000;
        c.start = now_seconds();
        assert_int_equal(train_fit(TRAIN_MLP, &p, &pb, &v, slow_cb, &c, &m), DREAM_E_CANCELLED);
        end = now_seconds();
        assert_null(m);
        print_message("cancel within an epoch: stopped %.3f s after asked, %u checks, %u epochs\n",
                      end - c.asked, c.checks, c.epochs_seen);
        assert_true(c.asked > 0);
        assert_int_equal(c.epochs_seen, 0); /* the first epoch had not ended */
        assert_true(c.checks > 0);
        assert_true(end - c.asked < 2.0);
        /* Evaluating the same wide model on every row stops too. */
        {
                struct train_view few = {x, y, NULL, 64, d, NULL};
                struct train_metrics mt;
                p.epochs = 1;
                assert_int_equal(train_fit(TRAIN_MLP, &p, &pb, &few, NULL, NULL, &m), 0);
                c = (struct slow_ctx){.start = now_seconds() - 1}; /* asks at once */
                assert_int_equal(train_evaluate_progress(m, &v, slow_cb, &c, &mt),
                                 DREAM_E_CANCELLED);
                end = now_seconds();
                print_message("cancel within an evaluation: stopped %.3f s after asked\n",
                              end - c.asked);
                assert_int_equal(c.checks, 1);
                assert_true(end - c.asked < 2.0);
                assert_int_equal(train_evaluate_progress(m, &few, NULL, NULL, &mt), 0);
                train_model_free(m);
        }
        free(x);
        free(y);
}

/* train_mem_estimate against the bytes each fit counts as it allocates
 * (model->work_bytes) and the model it returns. */
static void test_mem_estimate(void **state)
{
        (void)state;
        size_t n = 700;
        uint32_t d = 3;
        float *x = malloc(n * d * 4), *y = malloc(n * 4);
        double centres[] = {-2, -2, 0, 2, 2, 1, 2, -2, 3};
        struct train_view v = {x, y, NULL, n, d, NULL};
        struct {
                enum train_kind kind;
                enum train_task task;
                uint32_t n_hidden, h0, h1, batch;
        } cases[] = {
            {TRAIN_LOGISTIC, TRAIN_TASK_CLASSIFICATION, 0, 0, 0, 64},
            {TRAIN_SOFTMAX, TRAIN_TASK_CLASSIFICATION, 0, 0, 0, 1000}, /* batch > rows */
            {TRAIN_MLP, TRAIN_TASK_CLASSIFICATION, 1, 40, 0, 100},
            {TRAIN_MLP, TRAIN_TASK_REGRESSION, 2, 30, 20, 7},
            {TRAIN_KMEANS, TRAIN_TASK_CLUSTERING, 0, 0, 0, 0},
            {TRAIN_LINEAR, TRAIN_TASK_REGRESSION, 0, 0, 0, 0},
            {TRAIN_RIDGE, TRAIN_TASK_REGRESSION, 0, 0, 0, 0},
        };
        gen_blobs(n, d, 3, centres, 0.5, 3, x, y);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct train_params p;
                struct train_problem pb = {.d = d, .task = cases[i].task};
                struct train_model *m = NULL;
                struct train_mem mem;
                uint64_t model_bytes = 2 * (uint64_t)d * sizeof(double), weights = 0;
                uint32_t k;
                train_params_default(cases[i].kind, &p);
                p.epochs = 2;
                p.k = 5;
                p.max_iter = 3;
                if (cases[i].batch)
                        p.batch = cases[i].batch;
                if (cases[i].n_hidden) {
                        p.n_hidden = cases[i].n_hidden;
                        p.hidden[0] = cases[i].h0;
                        p.hidden[1] = cases[i].h1;
                }
                if (cases[i].kind == TRAIN_LOGISTIC) /* two classes */
                        for (size_t r = 0; r < n; r++)
                                y[r] = y[r] > 0 ? 1.0f : 0.0f;
                pb.valid = &v; /* early stopping keeps a copy of the best weights */
                assert_int_equal(train_fit(cases[i].kind, &p, &pb, &v, NULL, NULL, &m), 0);
                k = cases[i].task == TRAIN_TASK_CLASSIFICATION ? m->n_classes : 0;
                assert_int_equal(train_mem_estimate(cases[i].kind, &p, d, k, n, &mem), 0);
                assert_int_equal(mem.params + mem.activations + mem.rows, m->work_bytes);
                for (uint32_t l = 0; l < m->n_layers; l++)
                        weights += (uint64_t)m->layers[l].in * m->layers[l].out + m->layers[l].out;
                assert_int_equal(mem.weights, weights);
                model_bytes += weights * sizeof(double) + (uint64_t)k * sizeof(double);
                assert_int_equal(mem.model, model_bytes);
                assert_int_equal(mem.total, mem.model + mem.params + mem.activations + mem.rows);
                train_model_free(m);
                gen_blobs(n, d, 3, centres, 0.5, 3, x, y);
        }
        /* The case of the issue: 65536 hidden units, batch 8192, 2 features. */
        {
                struct train_params p;
                struct train_mem mem;
                train_params_default(TRAIN_MLP, &p);
                p.hidden[0] = 65536;
                p.batch = 8192;
                assert_int_equal(train_mem_estimate(TRAIN_MLP, &p, 2, 0, 100000, &mem), 0);
                assert_true(mem.activations > (4ull << 30)); /* act and delta of 8192 x 65536 */
                assert_true(mem.total > mem.activations);
        }
        /* Saturates instead of wrapping. */
        {
                struct train_params p;
                struct train_mem mem;
                train_params_default(TRAIN_KMEANS, &p);
                p.k = 65536;
                assert_int_equal(train_mem_estimate(TRAIN_KMEANS, &p, 4096, 0, UINT64_MAX, &mem),
                                 0);
                assert_true(mem.total == UINT64_MAX);
                assert_int_equal(train_mem_estimate(TRAIN_KMEANS, &p, 0, 0, 1, &mem),
                                 DREAM_E_INVAL);
        }
        free(x);
        free(y);
}

/* Few noisy rows and a wide net: the validation score improves, then
 * worsens as the net learns the noise. Classification (a disc with a fifth
 * of the labels flipped) or regression (a sine with noise). */
static void gen_overfit(int regression, size_t n, uint64_t seed, float *x, float *y)
{
        struct rng r;
        rng_seed(&r, seed);
        for (size_t i = 0; i < n; i++) {
                double a = 4 * rng_unit(&r) - 2, b = 4 * rng_unit(&r) - 2;
                x[i * 2] = (float)a;
                x[i * 2 + 1] = (float)b;
                if (regression)
                        y[i] = (float)(10 + 3 * sin(2 * a) + 2 * gauss(&r));
                else
                        y[i] = (float)((a * a + b * b < 2.5) != (rng_unit(&r) < 0.2));
        }
}

/* The early-stopping score: MSE, or the error rate. */
static double view_score(const struct train_model *m, const struct train_view *v)
{
        struct train_metrics mt;
        assert_int_equal(train_evaluate(m, v, &mt), 0);
        return m->task == TRAIN_TASK_REGRESSION ? mt.rmse * mt.rmse : 1 - mt.accuracy;
}

/* Early stopping stops, keeps the best epoch's weights (those of the same
 * fit run for exactly that many epochs), reports it; patience 0 runs every
 * epoch. */
static void test_mlp_early_stopping(void **state)
{
        (void)state;
        size_t n = 60, nv = 2000;
        float *x = malloc(n * 2 * 4), *y = malloc(n * 4), *xv = malloc(nv * 2 * 4),
              *yv = malloc(nv * 4);
        for (int reg = 0; reg <= 1; reg++) {
                gen_overfit(reg, n, 11, x, y);
                gen_overfit(reg, nv, 12, xv, yv);
                struct train_view v = {x, y, NULL, n, 2, NULL}, vv = {xv, yv, NULL, nv, 2, NULL};
                struct train_problem pb = {.d = 2,
                                           .task = reg ? TRAIN_TASK_REGRESSION
                                                       : TRAIN_TASK_CLASSIFICATION,
                                           .valid = &vv};
                struct train_params p;
                struct cancel_ctx cc = {0};
                struct train_model *m = NULL;
                train_params_default(TRAIN_MLP, &p);
                p.epochs = 3000;
                p.batch = 8;
                p.lr = reg ? 0.01 : 0.001;
                p.hidden[0] = 256;
                p.patience = 10;
                assert_int_equal(train_fit(TRAIN_MLP, &p, &pb, &v, cancel_cb, &cc, &m), 0);
                assert_int_equal(m->converged, 1);
                assert_true(m->epochs_run > p.patience && m->epochs_run < p.epochs);
                assert_int_equal(m->iterations, m->epochs_run);
                assert_int_equal(cc.calls, m->epochs_run); /* progress after every epoch */
                uint32_t best = m->epochs_run - p.patience;
                assert_true(best >= 5); /* the validation loss fell first */

                /* The same fit for `best` epochs, and for every epoch run. */
                struct train_params q = p;
                q.patience = 0;
                q.epochs = best;
                struct train_model *at_best = fit_ok(TRAIN_MLP, &q, &pb, &v);
                q.epochs = m->epochs_run;
                struct train_model *at_end = fit_ok(TRAIN_MLP, &q, &pb, &v);
                assert_int_equal(at_best->epochs_run, best);
                assert_int_equal(at_end->epochs_run, m->epochs_run);
                assert_int_equal(at_end->converged, 0);
                for (uint32_t l = 0; l < m->n_layers; l++) {
                        size_t wc = (size_t)m->layers[l].in * m->layers[l].out;
                        assert_memory_equal(m->layers[l].w, at_best->layers[l].w, wc * 8);
                        assert_memory_equal(m->layers[l].b, at_best->layers[l].b,
                                            m->layers[l].out * 8);
                }
                assert_true(m->loss == at_best->loss); /* the kept epoch's training loss */
                /* (predictions in double, the fit's scores in float: a row on the
                 * boundary may differ) */
                assert_true(view_score(m, &vv) < view_score(at_end, &vv) + 1e-3);
                assert_true(m->loss > at_end->loss); /* the training loss kept falling */
                train_model_free(at_best);
                train_model_free(at_end);
                train_model_free(m);

                /* patience 0, or no validation rows: every epoch. */
                p.epochs = 40;
                for (int c = 0; c < 2; c++) {
                        struct train_problem pc = pb;
                        struct train_params pp = p;
                        if (c == 0)
                                pp.patience = 0;
                        else
                                pc.valid = NULL;
                        m = fit_ok(TRAIN_MLP, &pp, &pc, &v);
                        assert_int_equal(m->epochs_run, 40);
                        assert_int_equal(m->iterations, 40);
                        assert_int_equal(m->converged, 0);
                        train_model_free(m);
                }

                /* Bad validation rows. */
                struct train_view bad = vv;
                bad.d = 3;
                pb.valid = &bad;
                m = NULL;
                assert_int_equal(train_fit(TRAIN_MLP, &p, &pb, &v, NULL, NULL, &m), DREAM_E_INVAL);
                if (!reg) {
                        bad = vv;
                        yv[5] = 7;
                        pb.valid = &bad;
                        assert_int_equal(train_fit(TRAIN_MLP, &p, &pb, &v, NULL, NULL, &m),
                                         DREAM_E_RANGE);
                }
                assert_null(m);
        }
        free(x);
        free(y);
        free(xv);
        free(yv);
}

static int models_equal(const struct train_model *a, const struct train_model *b)
{
        if (a->n_layers != b->n_layers || a->loss != b->loss)
                return 0;
        for (uint32_t l = 0; l < a->n_layers; l++) {
                size_t wc = (size_t)a->layers[l].in * a->layers[l].out;
                if (memcmp(a->layers[l].w, b->layers[l].w, wc * 8) ||
                    memcmp(a->layers[l].b, b->layers[l].b, a->layers[l].out * 8))
                        return 0;
        }
        return 1;
}

/* Vicinal draws (view->v): deterministic by seed, v = 0 is the plain fit
 * bit for bit, a bad variance is refused. */
static void test_mlp_vicinal(void **state)
{
        (void)state;
        size_t n = 400;
        float *x = malloc(n * 2 * 4), *y = malloc(n * 4), *var = malloc(n * 2 * 4),
              *zero = calloc(n * 2, 4);
        gen_xor(n, 4, x, y);
        struct rng r;
        rng_seed(&r, 9);
        for (size_t c = 0; c < n * 2; c++)
                var[c] = (float)(0.05 * rng_unit(&r));
        var[3] = 0; /* a feature of a one-row group */
        struct train_problem pb = {.d = 2, .task = TRAIN_TASK_CLASSIFICATION};
        struct train_params p;
        train_params_default(TRAIN_MLP, &p);
        p.epochs = 30;
        p.batch = 32;
        p.lr = 0.01;
        p.hidden[0] = 16;
        struct train_view plain = {x, y, NULL, n, 2, NULL};
        struct train_view v0 = {x, y, NULL, n, 2, zero};
        struct train_view vv = {x, y, NULL, n, 2, var};
        struct train_model *a = fit_ok(TRAIN_MLP, &p, &pb, &plain);
        struct train_model *b = fit_ok(TRAIN_MLP, &p, &pb, &v0);
        struct train_model *c = fit_ok(TRAIN_MLP, &p, &pb, &vv);
        struct train_model *d = fit_ok(TRAIN_MLP, &p, &pb, &vv);
        p.seed = 43;
        struct train_model *e = fit_ok(TRAIN_MLP, &p, &pb, &vv);
        assert_true(models_equal(a, b)); /* v = 0 draws nothing */
        assert_true(models_equal(c, d)); /* same seed, same draws */
        assert_false(models_equal(a, c));
        assert_false(models_equal(c, e));
        assert_true(accuracy(c, &plain) > 0.97); /* the noise is small: still learns XOR */
        /* The draws are in standardised units: features 4 times larger with
         * 16 times the variance (exact in float) give the same network. */
        float *x4 = malloc(n * 2 * 4), *var16 = malloc(n * 2 * 4);
        for (size_t k = 0; k < n * 2; k++) {
                x4[k] = 4 * x[k];
                var16[k] = 16 * var[k];
        }
        struct train_view v4 = {x4, y, NULL, n, 2, var16};
        p.seed = 42;
        struct train_model *f = fit_ok(TRAIN_MLP, &p, &pb, &v4);
        assert_true(models_equal(c, f));
        train_model_free(f);
        free(x4);
        free(var16);
        train_model_free(a);
        train_model_free(b);
        train_model_free(c);
        train_model_free(d);
        train_model_free(e);

        /* Negative, NaN or infinite variances. */
        float bad_values[] = {-1.0f, NAN, INFINITY};
        for (int k = 0; k < 3; k++) {
                struct train_model *m = NULL;
                var[7] = bad_values[k];
                assert_int_equal(train_fit(TRAIN_MLP, &p, &pb, &vv, NULL, NULL, &m), DREAM_E_INVAL);
                assert_null(m);
        }
        free(x);
        free(y);
        free(var);
        free(zero);
}

/* MLP regression on weighted samples: the target scale is that of the rows
 * the weights stand for (a weight of k = k copies of the row). */
static void test_mlp_regression_weighted_scale(void **state)
{
        (void)state;
        size_t n = 50, nr = 0;
        float x[50], y[50], w[50], xr[50 * 4], yr[50 * 4];
        struct rng r;
        rng_seed(&r, 31);
        for (size_t i = 0; i < n; i++) {
                x[i] = (float)rng_unit(&r);
                y[i] = (float)(1000 + 50 * x[i] + 20 * gauss(&r));
                w[i] = (float)(1 + rng_below(&r, 4));
                for (int c = 0; c < (int)w[i]; c++, nr++) {
                        xr[nr] = x[i];
                        yr[nr] = y[i];
                }
        }
        struct train_view vw = {x, y, w, n, 1, NULL}, vr = {xr, yr, NULL, nr, 1, NULL};
        struct train_problem pb = {.d = 1, .task = TRAIN_TASK_REGRESSION};
        struct train_params p;
        train_params_default(TRAIN_MLP, &p);
        p.epochs = 2;
        p.hidden[0] = 4;
        struct train_model *a = fit_ok(TRAIN_MLP, &p, &pb, &vw);
        struct train_model *b = fit_ok(TRAIN_MLP, &p, &pb, &vr);
        assert_true(rel_diff(a->y_mean, b->y_mean) < 1e-12);
        assert_true(rel_diff(a->y_sd, b->y_sd) < 1e-12);
        assert_true(rel_diff(a->mean[0], b->mean[0]) < 1e-12);
        assert_true(rel_diff(a->sd[0], b->sd[0]) < 1e-12);
        train_model_free(a);
        train_model_free(b);
}

/* The ziggurat's deviates are standard normal: moments, the share within
 * one sd and in the tail beyond its start (exact values of the normal
 * distribution; bounds of about 5 standard errors on 10^6 draws). */
static void test_gauss(void **state)
{
        (void)state;
        struct gauss g;
        const size_t n = 1000000;
        double s1 = 0, s2 = 0, s4 = 0, within = 0, tail = 0, left = 0;
        gauss_init(&g, 5);
        for (size_t i = 0; i < n; i++) {
                double x = gauss_next(&g);
                s1 += x;
                s2 += x * x;
                s4 += x * x * x * x;
                within += fabs(x) < 1;
                tail += fabs(x) > ZIG_R;
                left += x < -1.5;
        }
        assert_true(fabs(s1 / n) < 0.005);
        assert_true(fabs(s2 / n - 1) < 0.007);
        assert_true(fabs(s4 / n - 3) < 0.05);
        assert_true(fabs(within / n - 0.682689) < 0.0025);
        assert_true(fabs(left / n - 0.0668072) < 0.0013);
        assert_true(fabs(tail / n - 5.7623e-4) < 1.3e-4);
        /* Deterministic by seed. */
        struct gauss a, b;
        gauss_init(&a, 77);
        gauss_init(&b, 77);
        for (int i = 0; i < 1000; i++)
                assert_true(gauss_next(&a) == gauss_next(&b));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_logistic_separable),
            cmocka_unit_test(test_logistic_weights_as_repeats),
            cmocka_unit_test(test_softmax_blobs),
            cmocka_unit_test(test_mlp_xor),
            cmocka_unit_test(test_mlp_regression),
            cmocka_unit_test(test_cancel),
            cmocka_unit_test(test_cancel_within_epoch),
            cmocka_unit_test(test_mem_estimate),
            cmocka_unit_test(test_source),
            cmocka_unit_test(test_deterministic),
            cmocka_unit_test(test_mlp_early_stopping),
            cmocka_unit_test(test_mlp_vicinal),
            cmocka_unit_test(test_gauss),
            cmocka_unit_test(test_mlp_regression_weighted_scale),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
