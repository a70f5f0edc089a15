/* Logistic and softmax by L-BFGS: the optimum against Newton's method in
 * double, the gradient of the variance bound against finite differences and
 * a direct double evaluation, v = 0 as plain training, iterations and
 * convergence, cancellation, the hyper-parameters chosen on validation
 * rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "util.h"

#include <string.h>
#include <time.h>

/* Overlapping classes: class c centred at c * 1.2 on feature c % d, sd 1;
 * feature j offset by 10 j and scaled by 1 + j (the standardisation). */
static void gen_overlap(size_t n, uint32_t d, uint32_t K, uint64_t seed, float *x, float *y,
                        float *w)
{
        struct rng r;
        rng_seed(&r, seed);
        for (size_t i = 0; i < n; i++) {
                uint32_t c = (uint32_t)rng_below(&r, K);
                for (uint32_t j = 0; j < d; j++) {
                        double v = gauss(&r) + (j == c % d ? 1.2 * (c + 1) : 0);
                        x[i * d + j] = (float)(10.0 * j + (1.0 + j) * v);
                }
                y[i] = (float)c;
                if (w)
                        w[i] = (float)(1 + rng_below(&r, 3));
        }
}

/* The objective of lbfgs.c in double, written from its definition. */
static double ref_objective(const struct train_model *m, const struct train_view *v, double a,
                            double l2, const double *th, double *g)
{
        uint32_t d = m->d, K = m->kind == TRAIN_LOGISTIC ? 1 : m->n_classes;
        size_t kd = (size_t)K * d, np = kd + K;
        double loss = 0, ws = 0, reg = 0;
        double *xs = malloc(d * sizeof(double)), *vs = malloc(d * sizeof(double));
        double *z = malloc(K * sizeof(double)), *u = malloc(K * sizeof(double));
        if (g)
                memset(g, 0, np * sizeof(double));
        for (size_t i = 0; i < v->n; i++) {
                double wi = v->w ? v->w[i] : 1;
                uint32_t y = (uint32_t)v->y[i];
                for (uint32_t j = 0; j < d; j++) {
                        xs[j] = (v->x[i * d + j] - m->mean[j]) / m->sd[j];
                        vs[j] = v->v ? v->v[i * d + j] / (m->sd[j] * m->sd[j]) : 0;
                }
                for (uint32_t k = 0; k < K; k++) {
                        double zz = th[kd + k], s = 0;
                        for (uint32_t j = 0; j < d; j++) {
                                zz += th[k * d + j] * xs[j];
                                s += vs[j] * th[k * d + j] * th[k * d + j];
                        }
                        z[k] = zz;
                        u[k] = zz + a * s / 2;
                }
                ws += wi;
                if (K == 1) {
                        double q = 1 / (1 + exp(-u[0]));
                        loss += wi * (log1p(exp(u[0])) - y * z[0]);
                        if (g) {
                                for (uint32_t j = 0; j < d; j++)
                                        g[j] += wi * ((q - y) * xs[j] + a * q * vs[j] * th[j]);
                                g[d] += wi * (q - y);
                        }
                        continue;
                }
                double mx = u[0], s = 0;
                for (uint32_t k = 1; k < K; k++)
                        mx = u[k] > mx ? u[k] : mx;
                for (uint32_t k = 0; k < K; k++)
                        s += exp(u[k] - mx);
                /* s >= 1: the largest term is exp(0) */
                // cppcheck-suppress invalidFunctionArg
                loss += wi * (mx + log(s) - z[y]);
                if (g)
                        for (uint32_t k = 0; k < K; k++) {
                                double p = exp(u[k] - mx) / s, e = p - (k == y);
                                for (uint32_t j = 0; j < d; j++)
                                        g[k * d + j] +=
                                            wi * (e * xs[j] + a * p * vs[j] * th[k * d + j]);
                                g[kd + k] += wi * e;
                        }
        }
        for (size_t c = 0; c < kd; c++)
                reg += th[c] * th[c];
        if (g) {
                for (size_t c = 0; c < np; c++)
                        g[c] /= ws;
                for (size_t c = 0; c < kd; c++)
                        g[c] += l2 * th[c];
        }
        free(xs);
        free(vs);
        free(z);
        free(u);
        return loss / ws + l2 / 2 * reg;
}

/* A model shell standardised by the view's own statistics. */
static struct train_model *shell(enum train_kind kind, uint32_t d, uint32_t K,
                                 const struct train_view *v)
{
        struct train_model *m = NULL;
        struct train_problem pb = {.d = d};
        assert_int_equal(train_i_model_alloc(kind, d, &m), 0);
        m->params.standardize = 1;
        m->n_classes = K;
        m->task = TRAIN_TASK_CLASSIFICATION;
        assert_int_equal(train_i_model_set_standardisation(m, &pb, v), 0);
        return m;
}

static void theta_of(const struct train_model *m, double *th)
{
        const struct train_layer *l = &m->layers[0];
        memcpy(th, l->w, (size_t)l->in * l->out * sizeof(double));
        memcpy(th + (size_t)l->in * l->out, l->b, l->out * sizeof(double));
}

static double amax(const double *a, size_t n)
{
        double s = 0;
        for (size_t i = 0; i < n; i++)
                s = fmax(s, fabs(a[i]));
        return s;
}

/* Newton's method in double for the logistic objective (d + 1 unknowns). */
static void newton_logistic(const struct train_model *m, const struct train_view *v, double l2,
                            double *th)
{
        uint32_t d = m->d, np = d + 1;
        double *g = malloc(np * sizeof(double)), *H = malloc(np * np * sizeof(double));
        double *xs = malloc(np * sizeof(double));
        memset(th, 0, np * sizeof(double));
        for (int it = 0; it < 50; it++) {
                double ws = 0;
                ref_objective(m, v, 0, l2, th, g);
                memset(H, 0, np * np * sizeof(double));
                for (size_t i = 0; i < v->n; i++) {
                        double wi = v->w ? v->w[i] : 1, z = th[d];
                        for (uint32_t j = 0; j < d; j++) {
                                xs[j] = (v->x[i * d + j] - m->mean[j]) / m->sd[j];
                                z += th[j] * xs[j];
                        }
                        xs[d] = 1;
                        double q = 1 / (1 + exp(-z));
                        ws += wi;
                        for (uint32_t a = 0; a < np; a++)
                                for (uint32_t b = 0; b < np; b++)
                                        H[a * np + b] += wi * q * (1 - q) * xs[a] * xs[b];
                }
                for (uint32_t a = 0; a < np * np; a++)
                        H[a] /= ws;
                for (uint32_t j = 0; j < d; j++)
                        H[j * np + j] += l2;
                /* Solve H step = g by Gaussian elimination (H is SPD). */
                for (uint32_t c = 0; c < np; c++)
                        for (uint32_t r = c + 1; r < np; r++) {
                                double f = H[r * np + c] / H[c * np + c];
                                for (uint32_t k = c; k < np; k++)
                                        H[r * np + k] -= f * H[c * np + k];
                                g[r] -= f * g[c];
                        }
                for (uint32_t c = np; c-- > 0;) {
                        double s = g[c];
                        for (uint32_t k = c + 1; k < np; k++)
                                s -= H[c * np + k] * g[k];
                        g[c] = s / H[c * np + c];
                }
                for (uint32_t c = 0; c < np; c++)
                        th[c] -= g[c];
        }
        free(g);
        free(H);
        free(xs);
}

/* L-BFGS reaches the optimum: Newton's in double (logistic), a zero
 * gradient of the double objective and a long full-batch Adam run
 * (softmax). */
static void test_reference_optimum(void **state)
{
        (void)state;
        size_t n = 400;
        uint32_t d = 4, K = 3;
        float *x = malloc(n * d * 4), *y = malloc(n * 4), *w = malloc(n * 4);
        struct train_problem pb = {.d = d};
        struct train_params p;
        struct train_model *m = NULL, *ad = NULL;
        double th[16], ref[16], g[16];

        /* Logistic. */
        gen_overlap(n, d, 2, 5, x, y, w);
        struct train_view v = {x, y, w, n, d, NULL};
        train_params_default(TRAIN_LOGISTIC, &p);
        p.l2 = 1e-2;
        p.lbfgs_tol = 1e-5;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &m), 0);
        assert_int_equal(m->converged, 1);
        assert_true(m->iterations > 0 && m->iterations < 300);
        assert_int_equal(m->epochs_run, m->iterations);
        theta_of(m, th);
        newton_logistic(m, &v, p.l2, ref);
        ref_objective(m, &v, 0, p.l2, ref, g);
        assert_true(amax(g, d + 1) < 1e-12); /* Newton converged */
        for (uint32_t c = 0; c <= d; c++)
                assert_true(fabs(th[c] - ref[c]) < 1e-3 * (1 + fabs(ref[c])));
        ref_objective(m, &v, 0, p.l2, th, g);
        assert_true(amax(g, d + 1) < 1e-4);
        /* The reported loss is the objective without l2. */
        double reg = 0;
        for (uint32_t j = 0; j < d; j++)
                reg += th[j] * th[j];
        assert_true(fabs(m->loss - (ref_objective(m, &v, 0, p.l2, th, NULL) - p.l2 / 2 * reg)) <
                    1e-5);
        train_model_free(m);
        m = NULL;

        /* Softmax. */
        gen_overlap(n, d, K, 6, x, y, w);
        train_params_default(TRAIN_SOFTMAX, &p);
        p.lbfgs_tol = 1e-5;
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, NULL, NULL, &m), 0);
        assert_int_equal(m->converged, 1);
        theta_of(m, th);
        ref_objective(m, &v, 0, p.l2, th, g);
        assert_true(amax(g, K * d + K) < 1e-4);
        p.solver = TRAIN_SOLVER_ADAM;
        p.batch = (uint32_t)n;
        p.epochs = 4000;
        p.lr = 0.01;
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, NULL, NULL, &ad), 0);
        assert_int_equal(ad->params.solver, TRAIN_SOLVER_ADAM);
        assert_int_equal(ad->converged, 0);
        assert_int_equal(ad->iterations, 4000);
        theta_of(ad, ref);
        double fa = ref_objective(m, &v, 0, p.l2, ref, NULL),
               fl = ref_objective(m, &v, 0, p.l2, th, NULL);
        assert_true(fl <= fa + 1e-6); /* no worse than the long Adam run ... */
        assert_true(fa - fl < 1e-3);  /* ... which comes close */
        double pl[400 * 3], pa[400 * 3], val[400];
        assert_int_equal(train_predict(m, x, n, val, pl), 0);
        assert_int_equal(train_predict(ad, x, n, val, pa), 0);
        for (size_t i = 0; i < n * K; i++)
                assert_true(fabs(pl[i] - pa[i]) < 0.02);
        train_model_free(m);
        train_model_free(ad);
        free(x);
        free(y);
        free(w);
}

/* Variances of generated samples: 0 for a third of the rows. */
static void gen_var(size_t n, uint32_t d, uint64_t seed, float *v)
{
        struct rng r;
        rng_seed(&r, seed);
        for (size_t i = 0; i < n; i++)
                for (uint32_t j = 0; j < d; j++)
                        v[i * d + j] =
                            i % 3 == 0 ? 0.0f : (float)((1.0 + j) * (1.0 + j) * rng_unit(&r) * 2);
}

/* The gradient of the variance bound: against central differences of the
 * same objective and against the double evaluation. */
static void check_gradient(enum train_kind kind, uint32_t K)
{
        size_t n = 300;
        uint32_t d = 5, out = kind == TRAIN_LOGISTIC ? 1 : K, np = out * d + out;
        float *x = malloc(n * d * 4), *y = malloc(n * 4), *w = malloc(n * 4),
              *vv = malloc(n * d * 4);
        double th[64], g[64], gref[64], f, fref, a = 0.7, l2 = 0.01;
        struct rng r;
        gen_overlap(n, d, K, 8, x, y, w);
        gen_var(n, d, 9, vv);
        struct train_view v = {x, y, w, n, d, vv};
        struct train_model *m = shell(kind, d, K, &v);
        rng_seed(&r, 10);
        for (uint32_t c = 0; c < np; c++)
                th[c] = 0.6 * gauss(&r);
        assert_int_equal(train_i_lbfgs_objective(m, &v, a, l2, th, &f, g), 0);
        fref = ref_objective(m, &v, a, l2, th, gref);
        assert_true(rel_diff(f, fref) < 1e-5);
        for (uint32_t c = 0; c < np; c++) {
                double h = 1e-3, fp, fm, t = th[c];
                th[c] = t + h;
                assert_int_equal(train_i_lbfgs_objective(m, &v, a, l2, th, &fp, NULL), 0);
                th[c] = t - h;
                assert_int_equal(train_i_lbfgs_objective(m, &v, a, l2, th, &fm, NULL), 0);
                th[c] = t;
                double fd = (fp - fm) / (2 * h);
                if (fabs(fd - g[c]) > 2e-3 + 1e-2 * fabs(g[c]))
                        fail_msg("%s: d/dtheta[%u] %g, finite difference %g", train_kind_name(kind),
                                 c, g[c], fd);
                assert_true(fabs(gref[c] - g[c]) < 1e-5 + 1e-4 * fabs(gref[c]));
        }
        /* The variance term raises the objective (Jensen) and vanishes at a = 0. */
        double f0, f0ref;
        assert_int_equal(train_i_lbfgs_objective(m, &v, 0, l2, th, &f0, NULL), 0);
        f0ref = ref_objective(m, &v, 0, l2, th, NULL);
        assert_true(rel_diff(f0, f0ref) < 1e-5);
        assert_true(f > f0);
        train_model_free(m);
        free(x);
        free(y);
        free(w);
        free(vv);
}

static void test_variance_gradient(void **state)
{
        (void)state;
        check_gradient(TRAIN_SOFTMAX, 4);
        check_gradient(TRAIN_LOGISTIC, 2);
}

/* v all 0 fits exactly what v NULL fits; with variances the weights shrink. */
static void test_zero_variance_is_plain(void **state)
{
        (void)state;
        size_t n = 500;
        uint32_t d = 3;
        float *x = malloc(n * d * 4), *y = malloc(n * 4), *zero = calloc(n * d, 4),
              *vv = malloc(n * d * 4);
        struct train_problem pb = {.d = d};
        struct train_params p;
        enum train_kind kinds[] = {TRAIN_SOFTMAX, TRAIN_LOGISTIC};
        gen_var(n, d, 4, vv);
        for (int k = 0; k < 2; k++) {
                struct train_model *a = NULL, *b = NULL, *c = NULL;
                uint32_t K = kinds[k] == TRAIN_LOGISTIC ? 2 : 3;
                gen_overlap(n, d, K, 3, x, y, NULL);
                struct train_view plain = {x, y, NULL, n, d, NULL}, zv = {x, y, NULL, n, d, zero},
                                  wv = {x, y, NULL, n, d, vv};
                train_params_default(kinds[k], &p);
                assert_int_equal(train_fit(kinds[k], &p, &pb, &plain, NULL, NULL, &a), 0);
                assert_int_equal(train_fit(kinds[k], &p, &pb, &zv, NULL, NULL, &b), 0);
                assert_int_equal(train_fit(kinds[k], &p, &pb, &wv, NULL, NULL, &c), 0);
                size_t cells = (size_t)a->layers[0].in * a->layers[0].out;
                assert_memory_equal(a->layers[0].w, b->layers[0].w, cells * sizeof(double));
                assert_memory_equal(a->layers[0].b, b->layers[0].b,
                                    a->layers[0].out * sizeof(double));
                assert_int_equal(a->iterations, b->iterations);
                assert_true(a->params.var_scale == 0); /* not used without variances */
                assert_true(a->loss == b->loss);
                assert_true(c->params.var_scale == 1); /* no validation rows: a = 1 */
                assert_int_equal(train_view_bytes(&wv), n * (2 * d + 1) * sizeof(float));
                double na = 0, nc = 0;
                for (size_t i = 0; i < cells; i++) {
                        na += a->layers[0].w[i] * a->layers[0].w[i];
                        nc += c->layers[0].w[i] * c->layers[0].w[i];
                }
                assert_true(nc < na); /* the variance term acts as a penalty */
                train_model_free(a);
                train_model_free(b);
                train_model_free(c);
        }
        /* Bad variances are refused. */
        {
                struct train_model *m = NULL;
                struct train_view bad = {x, y, NULL, n, d, vv};
                vv[7] = -1;
                train_params_default(TRAIN_SOFTMAX, &p);
                assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &bad, NULL, NULL, &m),
                                 DREAM_E_INVAL);
                vv[7] = NAN;
                assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &bad, NULL, NULL, &m),
                                 DREAM_E_INVAL);
                assert_null(m);
        }
        free(x);
        free(y);
        free(zero);
        free(vv);
}

struct last {
        uint32_t epoch, epochs, calls;
        double loss;
};

static int last_cb(void *ctx, uint32_t epoch, uint32_t epochs, double loss)
{
        struct last *l = ctx;
        if (epoch == 0)
                return 0;
        l->epoch = epoch;
        l->epochs = epochs;
        l->loss = loss;
        l->calls++;
        return 0;
}

/* Iterations, convergence and the values used in model->params. */
static void test_iterations(void **state)
{
        (void)state;
        size_t n = 300;
        uint32_t d = 3;
        float *x = malloc(n * d * 4), *y = malloc(n * 4);
        struct train_problem pb = {.d = d};
        struct train_params p;
        struct train_model *m = NULL;
        gen_overlap(n, d, 3, 12, x, y, NULL);
        struct train_view v = {x, y, NULL, n, d, NULL};
        memset(&p, 0, sizeof(p)); /* zero-initialised: the defaults of the solver */
        p.epochs = 1;
        p.batch = 1;
        p.lr = 1;
        p.l2 = 1e-3;
        p.standardize = 1;
        struct last l = {0};
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, last_cb, &l, &m), 0);
        /* Once per iteration, then once more to say it is complete. */
        assert_int_equal(l.calls, m->iterations + 1);
        assert_int_equal(l.epoch, m->iterations);
        assert_int_equal(l.epochs, m->iterations);
        assert_true(l.loss == m->loss);
        assert_int_equal(m->params.solver, TRAIN_SOLVER_LBFGS);
        assert_int_equal(m->params.lbfgs_iter, TRAIN_LBFGS_ITER);
        assert_true(m->params.lbfgs_tol == TRAIN_LBFGS_TOL);
        assert_int_equal(m->converged, 1);
        assert_true(m->iterations > 1);
        assert_int_equal(m->epochs_run, m->iterations);
        assert_int_equal(m->rows_used, n);
        train_model_free(m);
        m = NULL;
        p.lbfgs_iter = 2;
        p.lbfgs_tol = 1e-9;
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, NULL, NULL, &m), 0);
        assert_int_equal(m->converged, 0);
        assert_int_equal(m->iterations, 2);
        train_model_free(m);
        m = NULL;
        /* Bad values are refused. */
        p.solver = 2;
        assert_int_equal(train_params_validate(TRAIN_SOFTMAX, &p, NULL), DREAM_E_INVAL);
        p.solver = 0;
        p.var_scale = -1;
        assert_int_equal(train_params_validate(TRAIN_SOFTMAX, &p, NULL), DREAM_E_INVAL);
        p.var_scale = NAN;
        assert_int_equal(train_params_validate(TRAIN_SOFTMAX, &p, NULL), DREAM_E_INVAL);
        p.var_scale = 0;
        p.lbfgs_tol = -1;
        assert_int_equal(train_params_validate(TRAIN_SOFTMAX, &p, NULL), DREAM_E_INVAL);
        free(x);
        free(y);
}

struct cancel {
        uint32_t epochs_seen, checks, stop_at;
};

static int cancel_cb(void *ctx, uint32_t epoch, uint32_t epochs, double loss)
{
        struct cancel *c = ctx;
        if (epoch == 0) {
                assert_true(isnan(loss));
                c->checks++;
                return c->stop_at == 0;
        }
        assert_int_equal(epochs, 100000);
        assert_int_equal(epoch, c->epochs_seen + 1);
        c->epochs_seen++;
        if (c->stop_at == 0 && epoch == 1) { /* let the next check come due */
                struct timespec ts = {0, (long)(TRAIN_CHECK_SECONDS * 2e9)};
                nanosleep(&ts, NULL);
        }
        return c->stop_at && epoch >= c->stop_at;
}

/* Once per iteration (epoch = iteration), and within an iteration. */
static void test_cancel(void **state)
{
        (void)state;
        size_t n = 20000;
        uint32_t d = 20;
        float *x = malloc(n * d * 4), *y = malloc(n * 4);
        struct train_problem pb = {.d = d};
        struct train_params p;
        struct train_model *m = NULL;
        struct cancel c = {.stop_at = 3};
        gen_overlap(n, d, 4, 13, x, y, NULL);
        struct train_view v = {x, y, NULL, n, d, NULL};
        train_params_default(TRAIN_SOFTMAX, &p);
        p.lbfgs_iter = 100000;
        p.lbfgs_tol = 1e-12;
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, cancel_cb, &c, &m),
                         DREAM_E_CANCELLED);
        assert_null(m);
        assert_int_equal(c.epochs_seen, 3);
        c = (struct cancel){.stop_at = 0};
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, cancel_cb, &c, &m),
                         DREAM_E_CANCELLED);
        assert_null(m);
        assert_true(c.checks >= 1);
        assert_true(c.epochs_seen <= 1);
        free(x);
        free(y);
}

static double valid_logloss(const struct train_model *m, const struct train_view *v)
{
        struct train_metrics mt;
        assert_int_equal(train_evaluate(m, v, &mt), 0);
        return mt.logloss;
}

/* Few rows, many noise features: a stronger l2 is better on validation
 * rows, and the choice finds it; condensed-like samples with variances: the
 * chosen a is the best of the three on validation rows. */
static void test_choice_on_valid(void **state)
{
        (void)state;
        size_t n = 60, nv = 4000;
        uint32_t d = 30;
        float *x = malloc(n * d * 4), *y = malloc(n * 4), *xv = malloc(nv * d * 4),
              *yv = malloc(nv * 4);
        struct train_params p;
        struct train_model *fixed = NULL, *chosen = NULL;
        gen_overlap(n, d, 2, 21, x, y, NULL);
        gen_overlap(nv, d, 2, 22, xv, yv, NULL);
        struct train_view v = {x, y, NULL, n, d, NULL}, vv = {xv, yv, NULL, nv, d, NULL};
        struct train_problem pb = {.d = d, .valid = &vv};
        train_params_default(TRAIN_LOGISTIC, &p);
        p.l2_fixed = 1;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &fixed), 0);
        assert_true(fixed->params.l2 == TRAIN_L2_LINEAR_CLASSIFIER);
        p.l2_fixed = 0;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &chosen), 0);
        print_message("l2 chosen %g: valid log-loss %.4f against %.4f at %g\n", chosen->params.l2,
                      valid_logloss(chosen, &vv), valid_logloss(fixed, &vv), fixed->params.l2);
        assert_true(chosen->params.l2 > fixed->params.l2);
        assert_true(valid_logloss(chosen, &vv) < valid_logloss(fixed, &vv) - 0.01);
        assert_true(chosen->iterations > fixed->iterations); /* the path counts */
        /* Empty validation rows count as none; rows of another width are refused. */
        train_model_free(chosen);
        chosen = NULL;
        vv.n = 0;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &chosen), 0);
        assert_true(chosen->params.l2 == TRAIN_L2_LINEAR_CLASSIFIER);
        vv.n = nv;
        vv.d = d - 1;
        train_model_free(chosen);
        chosen = NULL;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &chosen),
                         DREAM_E_INVAL);
        vv.d = d;
        /* An l2 the caller set is kept. */
        train_model_free(chosen);
        chosen = NULL;
        p.l2 = 0.5;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &chosen), 0);
        assert_true(chosen->params.l2 == 0.5);
        train_model_free(chosen);
        train_model_free(fixed);
        chosen = fixed = NULL;

        /* Samples standing for groups: each sample is the mean of a group of
         * rows, with the group's variance. */
        {
                size_t g = 200, per = 20;
                uint32_t dd = 4;
                float *mx = calloc(g * dd, 4), *my = malloc(g * 4), *mw = malloc(g * 4),
                      *mv = calloc(g * dd, 4), *row = malloc(per * dd * 4);
                double best = INFINITY, ll[3];
                const double as[3] = {1, 0.5, 0.25};
                struct rng rr;
                rng_seed(&rr, 31);
                for (size_t i = 0; i < g; i++) {
                        uint32_t c = (uint32_t)(i % 3);
                        my[i] = (float)c;
                        mw[i] = (float)per;
                        for (size_t r = 0; r < per; r++)
                                for (uint32_t j = 0; j < dd; j++) {
                                        double e = gauss(&rr) + (j == c % dd ? 1.2 * (c + 1) : 0);
                                        row[r * dd + j] = (float)(10.0 * j + (1.0 + j) * e);
                                        mx[i * dd + j] += row[r * dd + j] / (float)per;
                                }
                        for (size_t r = 0; r < per; r++)
                                for (uint32_t j = 0; j < dd; j++) {
                                        float e = row[r * dd + j] - mx[i * dd + j];
                                        mv[i * dd + j] += e * e / (float)per;
                                }
                }
                float *gx = malloc(nv * dd * 4), *gy = malloc(nv * 4);
                gen_overlap(nv, dd, 3, 23, gx, gy, NULL);
                struct train_view cv = {mx, my, mw, g, dd, mv}, gv = {gx, gy, NULL, nv, dd, NULL};
                struct train_problem cpb = {.d = dd, .valid = &gv};
                train_params_default(TRAIN_SOFTMAX, &p);
                p.l2_fixed = 1;
                p.lbfgs_tol = 1e-5;
                for (int i = 0; i < 3; i++) {
                        struct train_model *m = NULL;
                        p.var_scale = as[i];
                        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &cpb, &cv, NULL, NULL, &m),
                                         0);
                        ll[i] = valid_logloss(m, &gv);
                        best = fmin(best, ll[i]);
                        train_model_free(m);
                }
                p.var_scale = 0;
                assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &cpb, &cv, NULL, NULL, &chosen), 0);
                print_message("a chosen %g: valid log-loss %.4f (a = 1, 0.5, 0.25: %.4f %.4f "
                              "%.4f)\n",
                              chosen->params.var_scale, valid_logloss(chosen, &gv), ll[0], ll[1],
                              ll[2]);
                assert_true(chosen->params.var_scale == 1 || chosen->params.var_scale == 0.5 ||
                            chosen->params.var_scale == 0.25);
                assert_true(valid_logloss(chosen, &gv) < best + 1e-3);
                train_model_free(chosen);
                free(mx);
                free(my);
                free(mw);
                free(mv);
                free(row);
                free(gx);
                free(gy);
        }
        free(x);
        free(y);
        free(xv);
        free(yv);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_reference_optimum),
            cmocka_unit_test(test_variance_gradient),
            cmocka_unit_test(test_zero_variance_is_plain),
            cmocka_unit_test(test_iterations),
            cmocka_unit_test(test_cancel),
            cmocka_unit_test(test_choice_on_valid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
