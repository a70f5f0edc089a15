/* Stage 1 condensed samples (docs/method.md section 4). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "gen.h"

static void check_totals(const struct gd_table *t, const struct gd_condensed *c)
{
        /* Weights sum to n; weighted feature sums equal the column sums. */
        double wsum = 0;
        for (uint32_t g = 0; g < c->m; g++) {
                assert_true(c->w[g] >= 1.0);
                wsum += c->w[g];
        }
        assert_float_equal(wsum, (double)t->n_rows, 1e-9);
        for (uint32_t f = 0; f < c->d; f++) {
                double a = 0, b = 0;
                for (uint64_t i = 0; i < t->n_rows; i++)
                        a += gd_table_get(t, i, c->feature_cols[f]);
                for (uint32_t g = 0; g < c->m; g++)
                        b += c->x[(size_t)g * c->d + f] * c->w[g];
                assert_float_equal(a, b, 1e-6 * (fabs(a) + 1));
        }
}

static void never_exceeds_budget(void **state)
{
        (void)state;
        const char *budgets[] = {"1", "2", "5", "17", "100", "999", "0.01", "0.1", "0.5", "1.0"};
        for (int shape = 0; shape < 3; shape++) {
                struct gd_table *t = gen_table((enum gen_shape)shape, 3000, 5, 11 + shape);
                if (shape == GEN_MIXED)
                        t->task = GD_TASK_REGRESSION;
                for (int variant = 0; variant < 8; variant++) {
                        const int order = variant & 1;
                        const int32_t refines[] = {GD_REFINE_DEFAULT, GD_REFINE_NONE, 2,
                                                   GD_REFINE_DEFAULT};
                        const enum gd_fill fills[] = {GD_FILL_DEFAULT, GD_FILL_NONE, GD_FILL_SPLIT,
                                                      GD_FILL_NONE};
                        for (unsigned k = 0; k < sizeof(budgets) / sizeof(*budgets); k++) {
                                struct gd_condense_opts o = {.order = (enum gd_order)order,
                                                             .fill = fills[variant >> 1],
                                                             .refine = refines[variant >> 1]};
                                struct gd_condensed *c = NULL;
                                assert_int_equal(gd_budget_parse(budgets[k], &o.budget), 0);
                                uint64_t m = gd_budget_rows(&o.budget, t->n_rows);
                                int r = gd_condense(t, &o, &c);
                                if (shape == GEN_CLASSES && m < 4) {
                                        assert_int_equal(r, DREAM_E_BUDGET);
                                        continue;
                                }
                                assert_int_equal(r, 0);
                                assert_true(c->m <= m);
                                assert_true(c->m >= 1);
                                assert_int_equal(c->d, 4);
                                check_totals(t, c);
                                gd_condensed_free(c);
                        }
                }
                gd_table_free(t);
        }
}

/* Classification groups never mix classes: per class, the weights of the
 * samples labelled with it add up to the class size, and their weighted
 * feature means are the class means. */
static void classes_never_mixed(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_CLASSES, 5000, 6, 5);
        for (int order = 0; order < 2; order++) {
                struct gd_condense_opts o = {.budget = {.count = 60},
                                             .order = (enum gd_order)order};
                struct gd_condensed *c;
                assert_int_equal(gd_condense(t, &o, &c), 0);
                assert_true(c->m <= 60);
                for (int cls = 0; cls < 4; cls++) {
                        double n_cls = 0, w_cls = 0;
                        double sum_x = 0, wsum_x = 0;
                        for (uint64_t i = 0; i < t->n_rows; i++) {
                                if (t->cols[5].v[i] == cls) {
                                        n_cls += 1;
                                        sum_x += (double)t->cols[0].v[i];
                                }
                        }
                        for (uint32_t g = 0; g < c->m; g++) {
                                if (c->y[g] == cls) {
                                        w_cls += c->w[g];
                                        wsum_x += c->w[g] * c->x[(size_t)g * c->d];
                                }
                        }
                        assert_float_equal(n_cls, w_cls, 1e-9);
                        assert_float_equal(sum_x, wsum_x, 1e-6);
                }
                /* Every class gets at least one sample. */
                check_totals(t, c);
                gd_condensed_free(c);
        }
        gd_table_free(t);
}

/* Regression: sample targets are the mean of their members' targets, so the
 * weighted target sum is the column sum. */
static void regression_targets_averaged(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_SENSOR, 4000, 4, 8);
        struct gd_condense_opts o = {.budget = {.fraction = 0.05}, .order = GD_ORDER_MSB};
        struct gd_condensed *c;
        assert_int_equal(gd_condense(t, &o, &c), 0);
        double a = 0, b = 0;
        for (uint64_t i = 0; i < t->n_rows; i++)
                a += gd_table_get(t, i, 3);
        for (uint32_t g = 0; g < c->m; g++)
                b += c->y[g] * c->w[g];
        assert_float_equal(a, b, 1e-6 * fabs(a));
        assert_true(c->m > 1);
        gd_condensed_free(c);
        gd_table_free(t);
}

/* A budget of n rows on data with few distinct rows gives one sample per
 * distinct feature vector, each equal to it. */
static void full_budget_gives_distinct_rows(void **state)
{
        (void)state;
        struct gd_table *t;
        assert_int_equal(gd_table_new(600, 3, &t), 0);
        for (uint64_t i = 0; i < 600; i++) {
                t->cols[0].v[i] = (int64_t)(i % 6);
                t->cols[1].v[i] = (int64_t)(i % 4) * 10 - 15;
                t->cols[2].v[i] = (int64_t)i; /* target: not grouped on */
        }
        t->target = 2;
        t->task = GD_TASK_REGRESSION;
        struct gd_condense_opts o = {.budget = {.fraction = 1.0}, .order = GD_ORDER_ENTROPY};
        struct gd_condensed *c;
        assert_int_equal(gd_condense(t, &o, &c), 0);
        assert_int_equal(c->m, 12); /* lcm(6, 4) distinct (i%6, i%4) pairs */
        for (uint32_t g = 0; g < c->m; g++) {
                assert_float_equal(c->w[g], 50.0, 0);
                double x0 = c->x[(size_t)g * 2], x1 = c->x[(size_t)g * 2 + 1];
                assert_float_equal(x0, round(x0), 0);
                assert_float_equal(x1, round(x1), 0);
        }
        check_totals(t, c);
        gd_condensed_free(c);
        gd_table_free(t);
}

/* Within-group sum of squared distances to the group means, each feature
 * scaled by its sd over the table (the units the refinement works in). */
static double within_sse(const struct gd_table *t, const struct gd_condense_opts *o,
                         uint32_t *ret_m)
{
        struct gd_condensed *c;
        assert_int_equal(gd_condense(t, o, &c), 0);
        /* For a partition with its means: SSE = sum x^2 - sum_g w_g mean_g^2. */
        double sse = 0;
        for (uint32_t f = 0; f < c->d; f++) {
                uint32_t col = c->feature_cols[f];
                double s = 0, ss = 0, between = 0;
                for (uint64_t i = 0; i < t->n_rows; i++) {
                        double v = gd_table_get(t, i, col);
                        s += v;
                        ss += v * v;
                }
                double mean = s / (double)t->n_rows;
                double var = ss / (double)t->n_rows - mean * mean;
                for (uint32_t g = 0; g < c->m; g++) {
                        double v = c->x[(size_t)g * c->d + f];
                        between += c->w[g] * v * v;
                }
                if (var > 0)
                        sse += (ss - between) / var;
        }
        *ret_m = c->m;
        gd_condensed_free(c);
        return sse;
}

/* The default fills the budget: exactly m_max samples when the rows allow
 * it, where step a alone stops at the first bit that would exceed it. */
static void fill_uses_the_budget(void **state)
{
        (void)state;
        int short_of_budget = 0;
        for (int shape = GEN_SENSOR; shape <= GEN_CLASSES; shape++) {
                struct gd_table *t = gen_table((enum gen_shape)shape, 4000, 5, 21);
                const uint64_t budgets[] = {7, 40, 333, 1000};
                for (unsigned k = 0; k < 4; k++) {
                        struct gd_condense_opts none = {.budget = {.count = budgets[k]},
                                                        .fill = GD_FILL_NONE,
                                                        .refine = GD_REFINE_NONE};
                        struct gd_condense_opts split = none;
                        split.fill = GD_FILL_DEFAULT;
                        struct gd_condensed *a, *b;
                        assert_int_equal(gd_condense(t, &none, &a), 0);
                        assert_int_equal(gd_condense(t, &split, &b), 0);
                        assert_int_equal(b->m, budgets[k]);
                        assert_true(a->m <= b->m);
                        short_of_budget += a->m < budgets[k];
                        check_totals(t, b);
                        gd_condensed_free(a);
                        gd_condensed_free(b);
                }
                gd_table_free(t);
        }
        assert_true(short_of_budget >= 4); /* whole bits leave budget unused */
}

/* Groups of identical rows cannot be split: the fill stops at the number of
 * distinct feature vectors, each sample equal to its rows. */
static void fill_stops_at_distinct_rows(void **state)
{
        (void)state;
        struct gd_table *t;
        assert_int_equal(gd_table_new(500, 3, &t), 0);
        for (uint64_t i = 0; i < 500; i++) {
                t->cols[0].v[i] = (int64_t)(i % 5) * 7;
                t->cols[1].v[i] = (int64_t)(i % 5) - 2;
                t->cols[2].v[i] = (int64_t)(i % 2); /* class */
        }
        t->target = 2;
        t->task = GD_TASK_CLASSIFICATION;
        struct gd_condense_opts o = {.budget = {.count = 40}};
        struct gd_condensed *c;
        assert_int_equal(gd_condense(t, &o, &c), 0);
        assert_int_equal(c->m, 10); /* 5 feature vectors x 2 classes */
        for (uint32_t g = 0; g < c->m; g++) {
                assert_float_equal(c->w[g], 50.0, 0);
                double x0 = c->x[(size_t)g * 2];
                assert_float_equal(x0, round(x0), 0);
        }
        check_totals(t, c);
        gd_condensed_free(c);
        gd_table_free(t);
}

/* Lloyd steps never increase the within-group scatter (each row moves only
 * to a nearer centre, each centre then moves to its rows' mean), and they
 * reduce it on spread data; classes stay unmixed (classes_never_mixed runs
 * with the default, which refines). */
static void refine_reduces_scatter(void **state)
{
        (void)state;
        for (int shape = GEN_SENSOR; shape <= GEN_CLASSES; shape++) {
                struct gd_table *t = gen_table((enum gen_shape)shape, 3000, 6, 33);
                const uint64_t budgets[] = {12, 90, 300};
                for (unsigned k = 0; k < 3; k++) {
                        struct gd_condense_opts o = {.budget = {.count = budgets[k]},
                                                     .refine = GD_REFINE_NONE};
                        uint32_t m0, m1, m2;
                        double s0 = within_sse(t, &o, &m0);
                        o.refine = 1;
                        double s1 = within_sse(t, &o, &m1);
                        o.refine = 6;
                        double s2 = within_sse(t, &o, &m2);
                        assert_true(s1 <= s0 * (1 + 1e-9));
                        assert_true(s2 <= s1 * (1 + 1e-9));
                        assert_true(s2 < 0.99 * s0);
                        assert_true(m1 <= m0 && m2 <= m0 && m0 <= budgets[k]);
                        /* Refinement keeps nearly every group alive. */
                        assert_true(m2 >= m0 * 9 / 10);
                }
                gd_table_free(t);
        }
}

/* Population variance of each sample's rows, per feature, as two passes
 * over the rows give it (row_group says which rows). */
static void check_variances(const struct gd_table *t, const struct gd_condensed *c,
                            const uint32_t *row_group)
{
        double *mean = calloc((size_t)c->m * c->d, sizeof(double));
        double *var = calloc((size_t)c->m * c->d, sizeof(double));
        double *cnt = calloc(c->m, sizeof(double));
        assert_non_null(mean);
        assert_non_null(var);
        assert_non_null(cnt);
        for (uint64_t i = 0; i < t->n_rows; i++) {
                uint32_t g = row_group[i];
                if (g == UINT32_MAX)
                        continue;
                assert_true(g < c->m);
                cnt[g] += 1;
                for (uint32_t f = 0; f < c->d; f++)
                        mean[(size_t)g * c->d + f] += gd_table_get(t, i, c->feature_cols[f]);
        }
        for (uint32_t g = 0; g < c->m; g++) {
                assert_float_equal(cnt[g], c->w[g], 0);
                for (uint32_t f = 0; f < c->d; f++)
                        mean[(size_t)g * c->d + f] /= cnt[g];
        }
        for (uint64_t i = 0; i < t->n_rows; i++) {
                uint32_t g = row_group[i];
                if (g == UINT32_MAX)
                        continue;
                for (uint32_t f = 0; f < c->d; f++) {
                        double e =
                            gd_table_get(t, i, c->feature_cols[f]) - mean[(size_t)g * c->d + f];
                        var[(size_t)g * c->d + f] += e * e / cnt[g];
                }
        }
        for (size_t k = 0; k < (size_t)c->m * c->d; k++) {
                const double v = c->v[k], ref = var[k], mu = mean[k];
                assert_true(v >= 0 && isfinite(v));
                if (!isfinite(ref) || !isfinite(mu)) {
                        assert_true(v == 0); /* not known */
                        continue;
                }
                assert_float_equal(c->x[k], mu, 1e-12 * (fabs(mu) + 1));
                /* The reference's own rounding: a few ulps of the mean, squared. */
                assert_float_equal(v, ref, 1e-9 * ref + 1e-29 * mu * mu + 1e-300);
                if (cnt[k / c->d] == 1)
                        assert_true(v == 0);
        }
        free(cnt);
        free(var);
        free(mean);
}

/* c->v is each group's per-feature population variance in raw units, on
 * every shape (non-finite cells: 0) and with or without refinement. */
static void variance_of_groups(void **state)
{
        (void)state;
        for (int shape = 0; shape < 3; shape++) {
                struct gd_table *t = gen_table((enum gen_shape)shape, 2000, 5, 21 + shape);
                uint32_t *rg = malloc(t->n_rows * sizeof(uint32_t));
                assert_non_null(rg);
                const int32_t refines[] = {GD_REFINE_DEFAULT, GD_REFINE_NONE};
                for (int k = 0; k < 2; k++) {
                        struct gd_condense_opts o = {
                            .budget = {.fraction = 0.05}, .refine = refines[k], .row_group = rg};
                        struct gd_condensed *c;
                        assert_int_equal(gd_condense(t, &o, &c), 0);
                        check_variances(t, c, rg);
                        gd_condensed_free(c);
                }
                free(rg);
                gd_table_free(t);
        }
}

/* Values far from zero with a small spread (a decimal column near 1e8 with
 * steps of 0.001): sums of squares taken from zero lose every digit of the
 * variance, the shifted sums keep it. */
static void variance_far_from_zero(void **state)
{
        (void)state;
        struct gd_table *t;
        const uint64_t n = 3000;
        assert_int_equal(gd_table_new(n, 2, &t), 0);
        uint64_t st = 99;
        t->cols[0].kind = GD_DEC;
        t->cols[0].scale = 3;
        for (uint64_t i = 0; i < n; i++) {
                t->cols[0].v[i] = 100000000000LL + (int64_t)gen_below(&st, 9);
                t->cols[1].v[i] = (int64_t)(i % 3);
        }
        t->target = 1;
        t->task = GD_TASK_CLASSIFICATION;
        uint32_t *rg = malloc(n * sizeof(uint32_t));
        assert_non_null(rg);
        struct gd_condense_opts o = {.budget = {.count = 3}, .row_group = rg};
        struct gd_condensed *c;
        assert_int_equal(gd_condense(t, &o, &c), 0);
        check_variances(t, c, rg);
        /* One group per class, uniform on 9 steps of 0.001: variance
         * 80/12 * 1e-6. */
        assert_int_equal(c->m, 3);
        for (uint32_t g = 0; g < c->m; g++)
                assert_float_equal(c->v[g], 6.67e-6, 1e-6);
        gd_condensed_free(c);
        free(rg);
        gd_table_free(t);
}

/* The table without the rows of `ex` (sorted). */
static struct gd_table *without_rows(const struct gd_table *t, const uint64_t *ex, uint64_t n_ex)
{
        struct gd_table *u;
        assert_int_equal(gd_table_new(t->n_rows - n_ex, t->n_cols, &u), 0);
        for (uint32_t j = 0; j < t->n_cols; j++) {
                u->cols[j].kind = t->cols[j].kind;
                u->cols[j].scale = t->cols[j].scale;
                for (uint64_t i = 0, e = 0, at = 0; i < t->n_rows; i++) {
                        if (e < n_ex && ex[e] == i) {
                                e++;
                                continue;
                        }
                        u->cols[j].v[at++] = t->cols[j].v[i];
                }
        }
        u->target = t->target;
        u->task = t->task;
        return u;
}

static void assert_same_samples(const struct gd_condensed *a, const struct gd_condensed *b)
{
        assert_int_equal(a->m, b->m);
        assert_int_equal(a->d, b->d);
        assert_int_equal(a->bits_used, b->bits_used);
        assert_memory_equal(a->feature_cols, b->feature_cols, sizeof(uint32_t) * a->d);
        assert_memory_equal(a->x, b->x, sizeof(double) * a->m * a->d);
        assert_memory_equal(a->v, b->v, sizeof(double) * a->m * a->d);
        assert_memory_equal(a->w, b->w, sizeof(double) * a->m);
        assert_memory_equal(a->y, b->y, sizeof(double) * a->m);
}

/* Excluded rows belong to no group: the samples are exactly those of the
 * table without them (budget from the rows left, weights summing to them),
 * and row_group marks them UINT32_MAX. */
static void exclusion_is_removal(void **state)
{
        (void)state;
        for (int shape = 0; shape < 3; shape++) {
                struct gd_table *t = gen_table((enum gen_shape)shape, 3000, 6, 40 + shape);
                uint64_t ex[400], n_ex = 0, st = 7 + (uint64_t)shape;
                for (uint64_t i = 0; i < t->n_rows && n_ex < 400; i++) {
                        if (gen_below(&st, 10) == 0 || i == 0 || i == t->n_rows - 1)
                                ex[n_ex++] = i;
                }
                struct gd_table *u = without_rows(t, ex, n_ex);
                uint32_t *rg = malloc(t->n_rows * sizeof(uint32_t));
                assert_non_null(rg);
                const struct gd_budget budgets[] = {{.fraction = 0.1}, {.count = 37}};
                for (int k = 0; k < 2; k++) {
                        struct gd_condense_opts o = {.budget = budgets[k], .order = k};
                        struct gd_condensed *a, *b;
                        assert_int_equal(gd_condense(u, &o, &b), 0);
                        o.exclude = ex;
                        o.n_exclude = n_ex;
                        o.row_group = rg;
                        assert_int_equal(gd_condense(t, &o, &a), 0);
                        assert_same_samples(a, b);
                        assert_true(a->m <= gd_budget_rows(&o.budget, t->n_rows - n_ex));
                        double wsum = 0;
                        for (uint32_t g = 0; g < a->m; g++)
                                wsum += a->w[g];
                        assert_true(wsum == (double)(t->n_rows - n_ex));
                        for (uint64_t e = 0; e < n_ex; e++)
                                assert_int_equal(rg[ex[e]], UINT32_MAX);
                        check_variances(t, a, rg);
                        gd_condensed_free(a);
                        gd_condensed_free(b);
                }
                free(rg);
                gd_table_free(u);
                gd_table_free(t);
        }
}

/* An exclusion that is not sorted, distinct and within the table is
 * refused; one that leaves no row is DREAM_E_EMPTY. */
static void exclusion_checked(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_CLASSES, 50, 3, 1);
        struct gd_condensed *c = NULL;
        uint64_t unsorted[] = {3, 2}, dup[] = {4, 4}, out[] = {1, 50}, all[50];
        for (uint64_t i = 0; i < 50; i++)
                all[i] = i;
        struct gd_condense_opts o = {.budget = {.count = 10}};
        o.exclude = unsorted;
        o.n_exclude = 2;
        assert_int_equal(gd_condense(t, &o, &c), DREAM_E_INVAL);
        o.exclude = dup;
        assert_int_equal(gd_condense(t, &o, &c), DREAM_E_INVAL);
        o.exclude = out;
        assert_int_equal(gd_condense(t, &o, &c), DREAM_E_INVAL);
        o.exclude = NULL;
        assert_int_equal(gd_condense(t, &o, &c), DREAM_E_INVAL);
        o.exclude = all;
        o.n_exclude = 50;
        assert_int_equal(gd_condense(t, &o, &c), DREAM_E_EMPTY);
        o.n_exclude = 49; /* one row left: one class, one sample */
        assert_int_equal(gd_condense(t, &o, &c), 0);
        assert_int_equal(c->m, 1);
        assert_true(c->w[0] == 1.0);
        assert_true(c->v[0] == 0 && c->v[1] == 0);
        gd_condensed_free(c);
        gd_table_free(t);
}

/* The samples do not depend on the number of threads. */
static void threads_same_samples(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_CLASSES, 6000, 9, 77);
        struct gd_condense_opts o = {.budget = {.fraction = 0.1}, .threads = 1};
        struct gd_condensed *a, *b;
        assert_int_equal(gd_condense(t, &o, &a), 0);
        for (uint32_t th = 2; th <= 5; th += 3) {
                o.threads = th;
                assert_int_equal(gd_condense(t, &o, &b), 0);
                assert_same_samples(a, b);
                gd_condensed_free(b);
        }
        gd_condensed_free(a);
        gd_table_free(t);
}

/* Same input, same samples (the store caches them by budget and order). */
static void deterministic(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_CLASSES, 2500, 5, 3);
        struct gd_condense_opts o = {.budget = {.fraction = 0.1}};
        struct gd_condensed *a, *b;
        assert_int_equal(gd_condense(t, &o, &a), 0);
        assert_int_equal(gd_condense(t, &o, &b), 0);
        assert_int_equal(a->m, b->m);
        assert_memory_equal(a->x, b->x, sizeof(double) * a->m * a->d);
        assert_memory_equal(a->w, b->w, sizeof(double) * a->m);
        assert_memory_equal(a->y, b->y, sizeof(double) * a->m);
        assert_memory_equal(a->v, b->v, sizeof(double) * a->m * a->d);
        gd_condensed_free(a);
        gd_condensed_free(b);
        gd_table_free(t);
}

static void budget_parse(void **state)
{
        (void)state;
        struct gd_budget b;
        assert_int_equal(gd_budget_parse("0.01", &b), 0);
        assert_float_equal(b.fraction, 0.01, 0);
        assert_int_equal(b.count, 0);
        assert_int_equal(gd_budget_parse("92", &b), 0);
        assert_int_equal(b.count, 92);
        assert_int_equal(gd_budget_parse("5%", &b), 0);
        assert_float_equal(b.fraction, 0.05, 1e-15);
        assert_int_equal(gd_budget_parse("1.0", &b), 0);
        assert_int_equal(gd_budget_rows(&b, 77), 77);
        assert_int_equal(gd_budget_parse("0", &b), DREAM_E_BUDGET);
        assert_int_equal(gd_budget_parse("-3", &b), DREAM_E_BUDGET);
        assert_int_equal(gd_budget_parse("1.5", &b), DREAM_E_BUDGET);
        assert_int_equal(gd_budget_parse("abc", &b), DREAM_E_BUDGET);
        assert_int_equal(gd_budget_parse("", &b), DREAM_E_BUDGET);
        assert_int_equal(gd_budget_parse("12x", &b), DREAM_E_BUDGET);
        assert_int_equal(gd_budget_parse("0.0", &b), DREAM_E_BUDGET);
        b = (struct gd_budget){.count = 500};
        assert_int_equal(gd_budget_rows(&b, 100), 100);
        b = (struct gd_budget){.fraction = 0.001};
        assert_int_equal(gd_budget_rows(&b, 100), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(never_exceeds_budget),
            cmocka_unit_test(classes_never_mixed),
            cmocka_unit_test(regression_targets_averaged),
            cmocka_unit_test(full_budget_gives_distinct_rows),
            cmocka_unit_test(fill_uses_the_budget),
            cmocka_unit_test(fill_stops_at_distinct_rows),
            cmocka_unit_test(refine_reduces_scatter),
            cmocka_unit_test(deterministic),
            cmocka_unit_test(variance_of_groups),
            cmocka_unit_test(variance_far_from_zero),
            cmocka_unit_test(exclusion_is_removal),
            cmocka_unit_test(exclusion_checked),
            cmocka_unit_test(threads_same_samples),
            cmocka_unit_test(budget_parse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
