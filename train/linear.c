/* Linear and ridge regression in closed form: weighted least squares with an
 * unpenalised intercept, theta = (Z'WZ + lambda I)^-1 Z'Wy over the
 * standardised features Z augmented with a column of ones, solved by
 * Cholesky (LAPACK dpotrf/dpotrs) with a condition check. Also the same
 * solution from sufficient statistics in O(d^2) memory.
 *
 * A sample that stands for several rows (view->v: their per-feature
 * variance around it) adds w diag(v) / sd^2 to Z'WZ: the expected squared
 * error over rows spread that way, so that a group of rows replaced by its
 * mean and population variance gives the normal equations of its rows. */
#include "train/internal.h"

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#define BLOCK_ROWS 256

/* Solve the (d+1) x (d+1) system a (upper triangle used) x = rhs, with
 * lambda added to the diagonal except the intercept (index 0). yy is
 * sum w y^2 and wsum sum w, to report the weighted MSE. Writes layer 0. */
static int solve_normal(struct train_model *m, double *a, double *rhs, double yy, double wsum)
{
        lapack_int n = (lapack_int)m->d + 1;
        size_t nn = (size_t)n * n;
        double lambda = m->kind == TRAIN_RIDGE ? m->params.l2 : 0.0;
        double *a0 = NULL, *theta = NULL;
        double anorm, rcond = 0, sse;
        lapack_int info;
        int r;

        a0 = dm_mallocarray(nn, sizeof(double));
        theta = dm_mallocarray((size_t)n, sizeof(double));
        if (!a0 || !theta) {
                r = DREAM_E_NOMEM;
                goto out_free;
        }
        /* Mirror the upper triangle so that a0 is the full unpenalised matrix. */
        for (lapack_int i = 0; i < n; i++)
                for (lapack_int j = i; j < n; j++)
                        a0[(size_t)i * n + j] = a0[(size_t)j * n + i] = a[(size_t)i * n + j];
        for (lapack_int j = 1; j < n; j++) {
                double *dj = &a[(size_t)j * n + j];
                if (*dj == 0 && rhs[j] == 0) {
                        /* An all-zero column (constant feature standardised to 0):
                         * pin its coefficient to 0 instead of failing. */
                        *dj = 1.0;
                        continue;
                }
                *dj += lambda;
        }
        /* Only the upper triangle is set (and used by LAPACK). */
        for (lapack_int i = 0; i < n; i++) {
                for (lapack_int j = i; j < n; j++) {
                        if (!isfinite(a[(size_t)i * n + j])) {
                                r = DREAM_E_NUMERIC;
                                goto out_free;
                        }
                }
        }
        anorm = LAPACKE_dlansy(LAPACK_ROW_MAJOR, '1', 'U', n, a, n);
        info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', n, a, n);
        if (info != 0) {
                r = info > 0 ? DREAM_E_NUMERIC : DREAM_E_INVAL;
                goto out_free;
        }
        info = LAPACKE_dpocon(LAPACK_ROW_MAJOR, 'U', n, a, n, anorm, &rcond);
        if (info != 0 || !(rcond > (double)n * DBL_EPSILON)) {
                r = DREAM_E_NUMERIC;
                goto out_free;
        }
        memcpy(theta, rhs, (size_t)n * sizeof(double));
        info = LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'U', n, 1, a, n, theta, 1);
        if (info != 0) {
                r = DREAM_E_NUMERIC;
                goto out_free;
        }
        /* SSE = y'Wy - 2 theta'Z'Wy + theta'Z'WZ theta. */
        sse = yy - 2 * cblas_ddot(n, theta, 1, rhs, 1);
        cblas_dsymv(CblasRowMajor, CblasUpper, n, 1.0, a0, n, theta, 1, 0.0, rhs, 1);
        sse += cblas_ddot(n, theta, 1, rhs, 1);
        m->loss = sse > 0 ? sse / wsum : 0.0;

        r = train_i_model_layer_alloc(m, 0, m->d, 1);
        if (r < 0)
                goto out_free;
        m->layers[0].b[0] = theta[0];
        memcpy(m->layers[0].w, theta + 1, (size_t)m->d * sizeof(double));
        r = 0;
out_free:
        dm_free(a0);
        dm_free(theta);
        return r;
}

void train_i_mem_closed(uint32_t d, struct train_mem *mem)
{
        uint64_t n1 = (uint64_t)d + 1;
        mem->weights = n1;
        mem->params = (n1 * n1 * 2 + n1 * 4) * sizeof(double);
        mem->activations = (n1 * BLOCK_ROWS + BLOCK_ROWS) * sizeof(double);
}

int train_i_fit_closed(struct train_model *m, const struct train_view *v,
                       train_progress_fn progress, void *progress_ctx)
{
        uint32_t d = m->d;
        size_t n1 = (size_t)d + 1;
        double *a = NULL, *rhs = NULL, *zb = NULL, *yb = NULL, *inv = NULL, *vsum = NULL;
        double yy = 0, wsum = 0;
        struct check ck;
        int r;

        if (n1 * n1 > DREAM_MAX_MODEL_WEIGHTS)
                return DREAM_E_LIMIT;
        a = dm_calloc(n1 * n1, sizeof(double));
        rhs = dm_calloc(n1, sizeof(double));
        zb = dm_mallocarray(n1 * BLOCK_ROWS, sizeof(double));
        yb = dm_mallocarray(BLOCK_ROWS, sizeof(double));
        inv = dm_mallocarray(d, sizeof(double));
        vsum = dm_calloc(d, sizeof(double));
        if (!a || !rhs || !zb || !yb || !inv || !vsum) {
                r = DREAM_E_NOMEM;
                goto out_free;
        }
        {
                struct train_mem mem;
                train_i_mem_closed(d, &mem);
                m->work_bytes = mem.params + mem.activations;
        }
        for (uint32_t j = 0; j < d; j++)
                inv[j] = 1.0 / m->sd[j];
        train_i_check_init(&ck, progress, progress_ctx);

        for (size_t i0 = 0; i0 < v->n; i0 += BLOCK_ROWS) {
                size_t rows = v->n - i0 < BLOCK_ROWS ? v->n - i0 : BLOCK_ROWS;
                for (size_t i = 0; i < rows; i++) {
                        double w = v->w ? v->w[i0 + i] : 1.0;
                        double sw = sqrt(w);
                        const float *x = v->x + (i0 + i) * (size_t)d;
                        double *z = zb + i * n1;
                        z[0] = sw;
                        for (uint32_t j = 0; j < d; j++)
                                z[j + 1] = sw * (((double)x[j] - m->mean[j]) * inv[j]);
                        yb[i] = sw * (double)v->y[i0 + i];
                        yy += yb[i] * yb[i];
                        wsum += w;
                        if (v->v) {
                                const float *vi = v->v + (i0 + i) * (size_t)d;
                                for (uint32_t j = 0; j < d; j++) {
                                        if (!(vi[j] >= 0) || !isfinite(vi[j])) {
                                                r = DREAM_E_INVAL;
                                                goto out_free;
                                        }
                                        vsum[j] += w * (double)vi[j];
                                }
                        }
                }
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n1, (int)rows, 1.0, zb,
                            (int)n1, 1.0, a, (int)n1);
                cblas_dgemv(CblasRowMajor, CblasTrans, (int)rows, (int)n1, 1.0, zb, (int)n1, yb, 1,
                            1.0, rhs, 1);
                if (train_i_check_poll(&ck, (uint64_t)rows * n1 * n1)) {
                        r = DREAM_E_CANCELLED;
                        goto out_free;
                }
        }
        for (uint32_t j = 0; j < d; j++) /* within-sample spread, standardised */
                a[(j + 1) * n1 + j + 1] += vsum[j] * inv[j] * inv[j];
        r = solve_normal(m, a, rhs, yy, wsum);
out_free:
        dm_free(a);
        dm_free(rhs);
        dm_free(zb);
        dm_free(yb);
        dm_free(inv);
        dm_free(vsum);
        return r;
}

int train_suffstats_new(uint32_t d, struct train_suffstats **ret_stats)
{
        struct train_suffstats *s;
        size_t dd;
        if (d == 0 || d > DREAM_MAX_COLS)
                return DREAM_E_INVAL;
        if (__builtin_mul_overflow((size_t)d, (size_t)d, &dd) || dd > DREAM_MAX_MODEL_WEIGHTS)
                return DREAM_E_LIMIT;
        s = dm_calloc(1, sizeof(*s));
        if (!s)
                return DREAM_E_NOMEM;
        s->d = d;
        s->sum_x = dm_calloc(d, sizeof(long double));
        s->sum_xx = dm_calloc(d, sizeof(long double));
        s->xy = dm_calloc(d, sizeof(long double));
        s->xx = dm_calloc(dd, sizeof(long double));
        if (!s->sum_x || !s->sum_xx || !s->xy || !s->xx) {
                train_suffstats_free(s);
                return DREAM_E_NOMEM;
        }
        *ret_stats = s;
        return 0;
}

void train_suffstats_free(struct train_suffstats *s)
{
        if (!s)
                return;
        dm_free(s->sum_x);
        dm_free(s->sum_xx);
        dm_free(s->xy);
        dm_free(s->xx);
        dm_free(s);
}

int train_suffstats_add(struct train_suffstats *s, const struct train_view *v)
{
        uint32_t d;
        double *xb = NULL, *t = NULL, *u = NULL, *g = NULL;
        int r = 0;

        if (!s || !v || v->d != s->d || (v->n > 0 && (!v->x || !v->y)))
                return DREAM_E_INVAL;
        if (v->n == 0)
                return 0;
        d = s->d;
        /* Check every weight and variance first so that a bad view changes
         * nothing. */
        for (size_t i = 0; v->w && i < v->n; i++)
                if (!(v->w[i] >= 0) || !isfinite(v->w[i]))
                        return DREAM_E_INVAL;
        for (size_t c = 0; v->v && c < v->n * (size_t)d; c++)
                if (!(v->v[c] >= 0) || !isfinite(v->v[c]))
                        return DREAM_E_INVAL;
        xb = dm_mallocarray((size_t)d * BLOCK_ROWS, sizeof(double));
        t = dm_mallocarray((size_t)d * d, sizeof(double));
        u = dm_mallocarray((size_t)2 * BLOCK_ROWS, sizeof(double));
        g = dm_mallocarray((size_t)2 * d, sizeof(double));
        if (!xb || !t || !u || !g) {
                r = DREAM_E_NOMEM;
                goto out_free;
        }
        /* Per block of rows, in double: T = Xs'Xs and G = Xs'[s, s*y] with
         * Xs the rows scaled by s = sqrt(w); the block sums are then added in
         * long double. */
        for (size_t i0 = 0; i0 < v->n; i0 += BLOCK_ROWS) {
                size_t rows = v->n - i0 < BLOCK_ROWS ? v->n - i0 : BLOCK_ROWS;
                for (size_t i = 0; i < rows; i++) {
                        float wf = v->w ? v->w[i0 + i] : 1.0f;
                        long double w = wf, y = v->y[i0 + i];
                        const float *x = v->x + (i0 + i) * (size_t)d;
                        double sw = sqrt((double)wf);
                        s->n += w;
                        s->sum_y += w * y;
                        s->sum_yy += w * y * y;
                        u[i * 2] = sw;
                        u[i * 2 + 1] = sw * (double)v->y[i0 + i];
                        for (uint32_t j = 0; j < d; j++)
                                xb[i * d + j] = sw * (double)x[j];
                }
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)rows, 1.0, xb,
                            (int)d, 0.0, t, (int)d);
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, 2, (int)rows, 1.0, xb,
                            (int)d, u, 2, 0.0, g, 2);
                /* The rows a sample stands for add w v to the diagonal. */
                for (size_t i = 0; v->v && i < rows; i++) {
                        double w = v->w ? v->w[i0 + i] : 1.0;
                        const float *vi = v->v + (i0 + i) * (size_t)d;
                        for (uint32_t j = 0; j < d; j++)
                                t[(size_t)j * d + j] += w * (double)vi[j];
                }
                for (uint32_t i = 0; i < d; i++) {
                        s->sum_x[i] += g[i * 2];
                        s->xy[i] += g[i * 2 + 1];
                        s->sum_xx[i] += t[(size_t)i * d + i];
                        for (uint32_t j = i; j < d; j++)
                                s->xx[(size_t)i * d + j] += t[(size_t)i * d + j];
                }
        }
        /* Keep both triangles. */
        for (uint32_t i = 0; i < d; i++)
                for (uint32_t j = 0; j < i; j++)
                        s->xx[(size_t)i * d + j] = s->xx[(size_t)j * d + i];
out_free:
        dm_free(xb);
        dm_free(t);
        dm_free(u);
        dm_free(g);
        return r;
}

int train_suffstats_merge(struct train_suffstats *dst, const struct train_suffstats *src)
{
        uint32_t d;
        if (!dst || !src || dst->d != src->d)
                return DREAM_E_INVAL;
        d = dst->d;
        dst->n += src->n;
        dst->sum_y += src->sum_y;
        dst->sum_yy += src->sum_yy;
        for (uint32_t j = 0; j < d; j++) {
                dst->sum_x[j] += src->sum_x[j];
                dst->sum_xx[j] += src->sum_xx[j];
                dst->xy[j] += src->xy[j];
        }
        for (size_t c = 0; c < (size_t)d * d; c++)
                dst->xx[c] += src->xx[c];
        return 0;
}

int train_fit_exact(enum train_kind kind, const struct train_params *params,
                    const struct train_problem *pb, const struct train_suffstats *s,
                    train_progress_fn progress, void *progress_ctx, struct train_model **ret_model)
{
        struct train_model *m = NULL;
        double *a = NULL, *rhs = NULL;
        uint32_t d;
        size_t n1;
        int r;

        if ((kind != TRAIN_LINEAR && kind != TRAIN_RIDGE) || !params || !pb || !s || !ret_model)
                return DREAM_E_INVAL;
        r = train_params_validate(kind, params, NULL);
        if (r < 0)
                return r;
        d = s->d;
        if (pb->d != d || d == 0 || !s->sum_x || !s->sum_xx || !s->xx || !s->xy)
                return DREAM_E_INVAL;
        if (!(s->n > 0))
                return DREAM_E_EMPTY;
        n1 = (size_t)d + 1;
        if (n1 * n1 > DREAM_MAX_MODEL_WEIGHTS)
                return DREAM_E_LIMIT;

        r = train_i_model_alloc(kind, d, &m);
        if (r < 0)
                return r;
        m->task = TRAIN_TASK_REGRESSION;
        m->params = *params;
        m->params.n_hidden = 0;
        m->params.hidden[0] = m->params.hidden[1] = 0;
        if (params->standardize) {
                if (pb->mean || pb->sd) {
                        struct train_view none = {0};
                        r = train_i_model_set_standardisation(m, pb, &none);
                } else {
                        r = train_stats_from_sums(d, s->n, s->sum_x, s->sum_xx, m->mean, m->sd);
                }
                if (r < 0)
                        goto out_free;
        }

        a = dm_mallocarray(n1 * n1, sizeof(double));
        rhs = dm_mallocarray(n1, sizeof(double));
        if (!a || !rhs) {
                r = DREAM_E_NOMEM;
                goto out_free;
        }
        m->work_bytes = (n1 * n1 * 2 + n1 * 2) * sizeof(double);
        /* With z = (x - mu) / sd:
         *   sum w z_i z_j = (xx_ij - mu_i sx_j - sx_i mu_j + n mu_i mu_j) / (sd_i sd_j)
         *   sum w z_i     = (sx_i - n mu_i) / sd_i
         *   sum w z_i y   = (xy_i - mu_i sy) / sd_i                                   */
        a[0] = (double)s->n;
        rhs[0] = (double)s->sum_y;
        for (uint32_t i = 0; i < d; i++) {
                long double mi = m->mean[i], si = m->sd[i];
                a[i + 1] = (double)((s->sum_x[i] - s->n * mi) / si);
                rhs[i + 1] = (double)((s->xy[i] - mi * s->sum_y) / si);
                for (uint32_t j = i; j < d; j++) {
                        long double mj = m->mean[j], sj = m->sd[j];
                        long double v = s->xx[(size_t)i * d + j] - mi * s->sum_x[j] -
                                        s->sum_x[i] * mj + s->n * mi * mj;
                        a[(i + 1) * n1 + j + 1] = (double)(v / (si * sj));
                }
        }
        r = solve_normal(m, a, rhs, (double)s->sum_yy, (double)s->n);
        if (r < 0)
                goto out_free;
        if (!train_i_model_finite(m)) {
                r = DREAM_E_NUMERIC;
                goto out_free;
        }
        m->epochs_run = 1;
        m->rows_used = 0;
        if (progress && progress(progress_ctx, 1, 1, m->loss)) {
                r = DREAM_E_CANCELLED;
                goto out_free;
        }
        *ret_model = m;
        m = NULL;
out_free:
        dm_free(a);
        dm_free(rhs);
        train_model_free(m);
        return r;
}
