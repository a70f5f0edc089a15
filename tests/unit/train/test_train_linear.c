/* Linear and ridge: closed form vs a naive solver, exact statistics vs the
 * full closed form, weights as repeated rows, singular systems, bad
 * hyper-parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "util.h"

#include <string.h>

/* Naive weighted normal equations in long double with Gaussian elimination
 * (partial pivoting) over z = (x - mean) / sd with an unpenalised intercept.
 * Writes d + 1 values: intercept, then coefficients. */
static void naive_solve(const float *x, const float *y, const float *w, size_t n, uint32_t d,
                        const double *mean, const double *sd, double lambda, double *out)
{
        uint32_t m = d + 1;
        long double *a = calloc((size_t)m * (m + 1), sizeof(long double));
        long double *z = calloc(m, sizeof(long double));
        assert_non_null(a);
        assert_non_null(z);
        for (size_t i = 0; i < n; i++) {
                long double wi = w ? w[i] : 1;
                z[0] = 1;
                for (uint32_t j = 0; j < d; j++)
                        z[j + 1] = ((long double)x[i * d + j] - mean[j]) / sd[j];
                for (uint32_t r = 0; r < m; r++) {
                        for (uint32_t c = 0; c < m; c++)
                                a[r * (m + 1) + c] += wi * z[r] * z[c];
                        a[r * (m + 1) + m] += wi * z[r] * y[i];
                }
        }
        for (uint32_t j = 1; j < m; j++)
                a[j * (m + 1) + j] += lambda;
        for (uint32_t c = 0; c < m; c++) {
                uint32_t piv = c;
                for (uint32_t r = c + 1; r < m; r++)
                        if (fabsl(a[r * (m + 1) + c]) > fabsl(a[piv * (m + 1) + c]))
                                piv = r;
                for (uint32_t k = 0; k <= m; k++) {
                        long double t = a[c * (m + 1) + k];
                        a[c * (m + 1) + k] = a[piv * (m + 1) + k];
                        a[piv * (m + 1) + k] = t;
                }
                for (uint32_t r = 0; r < m; r++) {
                        if (r == c)
                                continue;
                        long double f = a[r * (m + 1) + c] / a[c * (m + 1) + c];
                        for (uint32_t k = c; k <= m; k++)
                                a[r * (m + 1) + k] -= f * a[c * (m + 1) + k];
                }
        }
        for (uint32_t r = 0; r < m; r++)
                out[r] = (double)(a[r * (m + 1) + m] / a[r * (m + 1) + r]);
        free(a);
        free(z);
}

static double model_max_rel(const struct train_model *m, const double *ref)
{
        double worst = rel_diff(m->layers[0].b[0], ref[0]);
        for (uint32_t j = 0; j < m->d; j++) {
                double r = rel_diff(m->layers[0].w[j], ref[j + 1]);
                if (r > worst)
                        worst = r;
        }
        return worst;
}

static void fit_one(enum train_kind kind, double l2, const struct train_view *v,
                    struct train_model **ret)
{
        struct train_params p;
        struct train_problem pb = {.d = v->d};
        train_params_default(kind, &p);
        if (kind == TRAIN_RIDGE)
                p.l2 = l2;
        assert_int_equal(train_fit(kind, &p, &pb, v, NULL, NULL, ret), 0);
}

static void test_wls_matches_naive(void **state)
{
        (void)state;
        size_t n = 300;
        uint32_t d = 5;
        float *x = malloc(n * d * sizeof(float)), *y = malloc(n * 4), *w = malloc(n * 4);
        double ref[6];
        gen_regression(n, d, 7, x, y, w);
        struct train_view v = {x, y, w, n, d, NULL};
        for (int kind = TRAIN_LINEAR; kind <= TRAIN_RIDGE; kind++) {
                struct train_model *m = NULL;
                double l2 = kind == TRAIN_RIDGE ? 25.0 : 0.0;
                fit_one((enum train_kind)kind, l2, &v, &m);
                naive_solve(x, y, w, n, d, m->mean, m->sd, l2, ref);
                assert_true(model_max_rel(m, ref) < 1e-9);
                assert_true(m->loss > 0 && m->loss < 1);
                /* The model's standardisation is the weighted column statistics. */
                double s = 0, ws = 0;
                for (size_t i = 0; i < n; i++) {
                        s += (double)w[i] * x[i * d + 2];
                        ws += w[i];
                }
                assert_true(rel_diff(m->mean[2], s / ws) < 1e-12);
                train_model_free(m);
        }
        free(x);
        free(y);
        free(w);
}

static void test_exact_equals_full(void **state)
{
        (void)state;
        size_t n = 5000, half = 1700;
        uint32_t d = 6;
        float *x = malloc(n * d * sizeof(float)), *y = malloc(n * 4), *w = malloc(n * 4);
        gen_regression(n, d, 11, x, y, w);
        struct train_view v = {x, y, w, n, d, NULL};
        struct train_view v1 = {x, y, w, half, d, NULL};
        struct train_view v2 = {x + half * d, y + half, w + half, n - half, d, NULL};
        struct train_suffstats *s = NULL, *s2 = NULL;
        assert_int_equal(train_suffstats_new(d, &s), 0);
        assert_int_equal(train_suffstats_new(d, &s2), 0);
        assert_int_equal(train_suffstats_add(s, &v1), 0);
        assert_int_equal(train_suffstats_add(s2, &v2), 0);
        assert_int_equal(train_suffstats_merge(s, s2), 0);
        for (int kind = TRAIN_LINEAR; kind <= TRAIN_RIDGE; kind++) {
                struct train_model *full = NULL, *ex = NULL;
                struct train_params p;
                struct train_problem pb = {.d = d};
                double l2 = kind == TRAIN_RIDGE ? 100.0 : 0.0, ref[7];
                fit_one((enum train_kind)kind, l2, &v, &full);
                train_params_default((enum train_kind)kind, &p);
                p.l2 = l2;
                assert_int_equal(
                    train_fit_exact((enum train_kind)kind, &p, &pb, s, NULL, NULL, &ex), 0);
                ref[0] = full->layers[0].b[0];
                memcpy(ref + 1, full->layers[0].w, d * sizeof(double));
                assert_true(model_max_rel(ex, ref) < 1e-9);
                for (uint32_t j = 0; j < d; j++) {
                        assert_true(rel_diff(ex->mean[j], full->mean[j]) < 1e-12);
                        assert_true(rel_diff(ex->sd[j], full->sd[j]) < 1e-9);
                }
                assert_true(rel_diff(ex->loss, full->loss) < 1e-6);
                /* Metrics from the statistics equal those over the rows. */
                {
                        struct train_metrics ms, mr;
                        assert_int_equal(train_evaluate_suffstats(ex, s, &ms), 0);
                        assert_int_equal(train_evaluate(ex, &v, &mr), 0);
                        assert_true(rel_diff(ms.rmse, mr.rmse) < 1e-6);
                        assert_true(rel_diff(ms.r2, mr.r2) < 1e-9);
                        assert_true(isnan(ms.mae));
                }
                /* Same predictions. */
                double p1[10], p2[10];
                assert_int_equal(train_predict(full, x, 10, p1, NULL), 0);
                assert_int_equal(train_predict(ex, x, 10, p2, NULL), 0);
                for (int i = 0; i < 10; i++)
                        assert_true(rel_diff(p1[i], p2[i]) < 1e-9);
                /* And with the dataset standardisation given explicitly. */
                struct train_model *ex2 = NULL;
                pb.mean = full->mean;
                pb.sd = full->sd;
                assert_int_equal(
                    train_fit_exact((enum train_kind)kind, &p, &pb, s, NULL, NULL, &ex2), 0);
                assert_true(model_max_rel(ex2, ref) < 1e-9);
                train_model_free(ex2);
                train_model_free(full);
                train_model_free(ex);
        }
        /* Ridge actually shrinks. */
        {
                struct train_model *lin = NULL, *rid = NULL;
                fit_one(TRAIN_LINEAR, 0, &v, &lin);
                fit_one(TRAIN_RIDGE, 1e4, &v, &rid);
                assert_true(fabs(rid->layers[0].w[0]) < fabs(lin->layers[0].w[0]));
                train_model_free(lin);
                train_model_free(rid);
        }
        train_suffstats_free(s);
        train_suffstats_free(s2);
        train_suffstats_free(NULL);
        free(x);
        free(y);
        free(w);
}

static void test_weights_as_repeats(void **state)
{
        (void)state;
        size_t n = 120, nr = 0;
        uint32_t d = 4;
        float *x = malloc(n * d * sizeof(float)), *y = malloc(n * 4), *w = malloc(n * 4);
        gen_regression(n, d, 3, x, y, w);
        for (size_t i = 0; i < n; i++)
                nr += (size_t)w[i];
        float *xr = malloc(nr * d * sizeof(float)), *yr = malloc(nr * 4);
        size_t at = 0;
        for (size_t i = 0; i < n; i++)
                for (int c = 0; c < (int)w[i]; c++, at++) {
                        memcpy(xr + at * d, x + i * d, d * sizeof(float));
                        yr[at] = y[i];
                }
        struct train_view vw = {x, y, w, n, d, NULL}, vr = {xr, yr, NULL, nr, d, NULL};
        for (int kind = TRAIN_LINEAR; kind <= TRAIN_RIDGE; kind++) {
                struct train_model *a = NULL, *b = NULL;
                fit_one((enum train_kind)kind, 5.0, &vw, &a);
                fit_one((enum train_kind)kind, 5.0, &vr, &b);
                double ref[5];
                ref[0] = b->layers[0].b[0];
                memcpy(ref + 1, b->layers[0].w, d * sizeof(double));
                assert_true(model_max_rel(a, ref) < 1e-9);
                train_model_free(a);
                train_model_free(b);
        }
        free(x);
        free(y);
        free(w);
        free(xr);
        free(yr);
}

static void test_singular_and_constant(void **state)
{
        (void)state;
        size_t n = 50;
        uint32_t d = 3;
        float x[150], y[50];
        struct rng r;
        rng_seed(&r, 5);
        for (size_t i = 0; i < n; i++) {
                x[i * d] = (float)gauss(&r);
                x[i * d + 1] = 2 * x[i * d]; /* collinear */
                x[i * d + 2] = (float)gauss(&r);
                y[i] = x[i * d] + x[i * d + 2];
        }
        struct train_view v = {x, y, NULL, n, d, NULL};
        struct train_params p;
        struct train_problem pb = {.d = d};
        struct train_model *m = NULL;
        train_params_default(TRAIN_LINEAR, &p);
        assert_int_equal(train_fit(TRAIN_LINEAR, &p, &pb, &v, NULL, NULL, &m), DREAM_E_NUMERIC);
        assert_null(m);
        train_params_default(TRAIN_RIDGE, &p);
        assert_int_equal(train_fit(TRAIN_RIDGE, &p, &pb, &v, NULL, NULL, &m), 0);
        train_model_free(m);
        m = NULL;
        /* A constant column gets coefficient 0 instead of failing. */
        for (size_t i = 0; i < n; i++)
                x[i * d + 1] = 4.0f;
        train_params_default(TRAIN_LINEAR, &p);
        assert_int_equal(train_fit(TRAIN_LINEAR, &p, &pb, &v, NULL, NULL, &m), 0);
        assert_true(m->sd[1] == 1.0);
        assert_true(m->layers[0].w[1] == 0.0);
        assert_true(fabs(m->layers[0].w[0] - m->sd[0]) < 1e-4); /* y = x0 + x2 */
        train_model_free(m);
}

static void test_bad_params(void **state)
{
        (void)state;
        struct train_params p;
        const char *msg = NULL;

        train_params_default(TRAIN_LOGISTIC, &p);
        assert_int_equal(train_params_validate(TRAIN_LOGISTIC, &p, &msg), 0);
        p.lr = -0.1;
        assert_int_equal(train_params_validate(TRAIN_LOGISTIC, &p, &msg), DREAM_E_INVAL);
        assert_non_null(msg);
        assert_non_null(strstr(msg, "lr"));
        p.lr = NAN;
        assert_int_equal(train_params_validate(TRAIN_LOGISTIC, &p, &msg), DREAM_E_INVAL);

        train_params_default(TRAIN_MLP, &p);
        p.hidden[0] = 0;
        msg = NULL;
        assert_int_equal(train_params_validate(TRAIN_MLP, &p, &msg), DREAM_E_INVAL);
        assert_non_null(strstr(msg, "hidden"));
        train_params_default(TRAIN_MLP, &p);
        p.n_hidden = 3;
        assert_int_equal(train_params_validate(TRAIN_MLP, &p, &msg), DREAM_E_INVAL);
        train_params_default(TRAIN_MLP, &p);
        p.epochs = 0;
        assert_int_equal(train_params_validate(TRAIN_MLP, &p, &msg), DREAM_E_INVAL);
        assert_non_null(strstr(msg, "epochs"));
        train_params_default(TRAIN_MLP, &p);
        p.batch = 0;
        assert_int_equal(train_params_validate(TRAIN_MLP, &p, &msg), DREAM_E_INVAL);
        train_params_default(TRAIN_SOFTMAX, &p);
        p.l2 = -1;
        assert_int_equal(train_params_validate(TRAIN_SOFTMAX, &p, &msg), DREAM_E_INVAL);
        assert_non_null(strstr(msg, "l2"));
        train_params_default(TRAIN_KMEANS, &p);
        p.k = 0;
        assert_int_equal(train_params_validate(TRAIN_KMEANS, &p, &msg), DREAM_E_INVAL);
        assert_non_null(strstr(msg, "k "));
        train_params_default(TRAIN_LINEAR, &p);
        p.l2 = 1;
        assert_int_equal(train_params_validate(TRAIN_LINEAR, &p, &msg), DREAM_E_INVAL);
        assert_int_equal(train_params_validate((enum train_kind)99, &p, &msg), DREAM_E_INVAL);

        /* train_fit refuses them too, before touching the data. */
        float x[4] = {0, 1, 2, 3}, y[4] = {0, 1, 0, 1};
        struct train_view v = {x, y, NULL, 4, 1, NULL};
        struct train_problem pb = {.d = 1};
        struct train_model *m = NULL;
        train_params_default(TRAIN_LOGISTIC, &p);
        p.lr = -1;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &m), DREAM_E_INVAL);
        assert_null(m);
        /* Bad shapes, weights, labels. */
        train_params_default(TRAIN_LOGISTIC, &p);
        pb.d = 2;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &m), DREAM_E_INVAL);
        pb.d = 1;
        float wneg[4] = {1, -1, 1, 1};
        v.w = wneg;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &m), DREAM_E_INVAL);
        float wzero[4] = {0, 0, 0, 0};
        v.w = wzero;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &m), DREAM_E_EMPTY);
        v.w = NULL;
        float ybad[4] = {0, 1, 2, 1};
        v.y = ybad;
        assert_int_equal(train_fit(TRAIN_LOGISTIC, &p, &pb, &v, NULL, NULL, &m), DREAM_E_RANGE);
        float yfrac[4] = {0, 0.5f, 1, 1};
        v.y = yfrac;
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, NULL, NULL, &m), DREAM_E_RANGE);
        v.n = 0;
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, NULL, NULL, &m), DREAM_E_EMPTY);
        assert_null(m);

        /* Hidden sizes. */
        train_params_default(TRAIN_MLP, &p);
        assert_int_equal(train_hidden_parse("256,128", &p), 0);
        assert_int_equal(p.n_hidden, 2);
        assert_int_equal(p.hidden[0], 256);
        assert_int_equal(p.hidden[1], 128);
        assert_int_equal(train_hidden_parse("64", &p), 0);
        assert_int_equal(p.n_hidden, 1);
        assert_int_equal(train_hidden_parse("0", &p), DREAM_E_INVAL);
        assert_int_equal(train_hidden_parse("1,2,3", &p), DREAM_E_INVAL);
        assert_int_equal(train_hidden_parse("12,", &p), DREAM_E_INVAL);
        assert_int_equal(train_hidden_parse("-4", &p), DREAM_E_INVAL);
        assert_int_equal(train_hidden_parse("99999999", &p), DREAM_E_INVAL);
        assert_int_equal(train_hidden_parse("", &p), DREAM_E_INVAL);

        enum train_kind k;
        assert_int_equal(train_kind_parse("ridge", &k), 0);
        assert_int_equal(k, TRAIN_RIDGE);
        assert_int_equal(train_kind_parse("svm", &k), DREAM_E_INVAL);
        assert_string_equal(train_kind_name(TRAIN_KMEANS), "kmeans");
}

static void test_stats_from_sums(void **state)
{
        (void)state;
        /* Column 0: 1,2,3,4 -> mean 2.5, sd sqrt(1.25); column 1 constant 7. */
        long double sum[2] = {10, 28}, sumsq[2] = {30, 196};
        double mean[2], sd[2];
        assert_int_equal(train_stats_from_sums(2, 4, sum, sumsq, mean, sd), 0);
        assert_true(fabs(mean[0] - 2.5) < 1e-15);
        assert_true(fabs(sd[0] - sqrt(1.25)) < 1e-15);
        assert_true(fabs(mean[1] - 7) < 1e-15);
        assert_true(sd[1] == 1.0);
        assert_int_equal(train_stats_from_sums(2, 0, sum, sumsq, mean, sd), DREAM_E_INVAL);

        float x[4] = {1, 2, 3, 4};
        struct train_view v = {x, x, NULL, 4, 1, NULL};
        assert_int_equal(train_view_bytes(&v), 4 * 2 * sizeof(float));
        v.v = x; /* the variances count too */
        assert_int_equal(train_view_bytes(&v), 4 * 3 * sizeof(float));
}

/* A sample standing for rows (view->v, their population variance) gives
 * the fit of those rows. The rows of a group are mu + a o s for the 2^d sign
 * vectors s, all with the group's target: their mean is mu, their variance
 * a^2 and their covariance diagonal, so that the group's normal equations
 * are exactly those of its rows (every value is exact in float). */
static void test_variance_equals_members(void **state)
{
        (void)state;
        enum { G = 40, D = 3, M = 1 << D };
        float x[G * D], y[G], w[G], v[G * D], xm[G * M * D], ym[G * M], wm[G * M];
        const float steps[] = {0, 0.25f, 0.5f, 1, 2};
        struct rng r;
        rng_seed(&r, 21);
        for (size_t g = 0; g < G; g++) {
                float a[D], c = (float)(1 + rng_below(&r, 3));
                y[g] = (float)(rng_below(&r, 400)) / 4 - 20;
                w[g] = c * M;
                for (uint32_t j = 0; j < D; j++) {
                        x[g * D + j] = (float)(rng_below(&r, 200)) / 8 + 10.0f * j;
                        a[j] = steps[rng_below(&r, 5)];
                        v[g * D + j] = a[j] * a[j];
                }
                for (uint32_t k = 0; k < M; k++) {
                        size_t row = g * M + k;
                        for (uint32_t j = 0; j < D; j++)
                                xm[row * D + j] = x[g * D + j] + ((k >> j) & 1 ? a[j] : -a[j]);
                        ym[row] = y[g];
                        wm[row] = c;
                }
        }
        struct train_view vg = {x, y, w, G, D, v}, vm = {xm, ym, wm, G * M, D, NULL};
        struct train_view bare = {x, y, w, G, D, NULL};
        for (int kind = TRAIN_LINEAR; kind <= TRAIN_RIDGE; kind++) {
                struct train_model *a = NULL, *b = NULL, *c = NULL, *e = NULL;
                struct train_suffstats *sg = NULL, *sm = NULL;
                struct train_params p;
                struct train_problem pb = {.d = D};
                double ref[D + 1];
                fit_one((enum train_kind)kind, 5.0, &vg, &a);
                fit_one((enum train_kind)kind, 5.0, &vm, &b);
                ref[0] = b->layers[0].b[0];
                memcpy(ref + 1, b->layers[0].w, D * sizeof(double));
                assert_true(model_max_rel(a, ref) < 1e-9);
                assert_true(rel_diff(a->loss, b->loss) < 1e-9);
                for (uint32_t j = 0; j < D; j++) { /* the rows' standardisation */
                        assert_true(rel_diff(a->mean[j], b->mean[j]) < 1e-12);
                        assert_true(rel_diff(a->sd[j], b->sd[j]) < 1e-12);
                }
                /* Without the variance it is another fit. */
                fit_one((enum train_kind)kind, 5.0, &bare, &c);
                assert_true(model_max_rel(c, ref) > 1e-4);

                /* The same through sufficient statistics. */
                assert_int_equal(train_suffstats_new(D, &sg), 0);
                assert_int_equal(train_suffstats_new(D, &sm), 0);
                assert_int_equal(train_suffstats_add(sg, &vg), 0);
                assert_int_equal(train_suffstats_add(sm, &vm), 0);
                for (uint32_t i = 0; i < D * D; i++)
                        assert_true(rel_diff((double)sg->xx[i], (double)sm->xx[i]) < 1e-12);
                for (uint32_t j = 0; j < D; j++)
                        assert_true(rel_diff((double)sg->sum_xx[j], (double)sm->sum_xx[j]) < 1e-12);
                train_params_default((enum train_kind)kind, &p);
                if (kind == TRAIN_RIDGE)
                        p.l2 = 5.0;
                assert_int_equal(
                    train_fit_exact((enum train_kind)kind, &p, &pb, sg, NULL, NULL, &e), 0);
                assert_true(model_max_rel(e, ref) < 1e-9);
                train_model_free(a);
                train_model_free(b);
                train_model_free(c);
                train_model_free(e);

                /* A bad variance is refused and leaves the statistics as they were. */
                long double n0 = sg->n, xx0 = sg->xx[0];
                float v4 = v[4];
                v[4] = -1.0f;
                a = NULL;
                assert_int_equal(train_fit((enum train_kind)kind, &p, &pb, &vg, NULL, NULL, &a),
                                 DREAM_E_INVAL);
                assert_null(a);
                assert_int_equal(train_suffstats_add(sg, &vg), DREAM_E_INVAL);
                v[4] = NAN;
                assert_int_equal(train_suffstats_add(sg, &vg), DREAM_E_INVAL);
                assert_true(sg->n == n0 && sg->xx[0] == xx0);
                v[4] = v4;
                train_suffstats_free(sg);
                train_suffstats_free(sm);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_wls_matches_naive),
            cmocka_unit_test(test_exact_equals_full),
            cmocka_unit_test(test_weights_as_repeats),
            cmocka_unit_test(test_singular_and_constant),
            cmocka_unit_test(test_bad_params),
            cmocka_unit_test(test_stats_from_sums),
            cmocka_unit_test(test_variance_equals_members),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
