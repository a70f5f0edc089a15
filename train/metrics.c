/* Weighted evaluation metrics, streamed over row blocks. */
#include "train/internal.h"

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"

#include <math.h>
#include <string.h>

struct reg_acc {
        long double w, sse, sae, sy, syy;
};

static int reg_add(struct reg_acc *a, const float *y, const double *pred, const float *w, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                long double wi = w ? w[i] : 1.0f, yi = y[i], e = yi - pred[i];
                if (!isfinite(y[i]) || !isfinite(pred[i]) || !(wi >= 0))
                        return DREAM_E_INVAL;
                a->w += wi;
                a->sse += wi * e * e;
                a->sae += wi * fabsl(e);
                a->sy += wi * yi;
                a->syy += wi * yi * yi;
        }
        return 0;
}

static int reg_finish(const struct reg_acc *a, struct train_metrics *ret)
{
        struct train_metrics mt;
        if (!(a->w > 0))
                return DREAM_E_EMPTY;
        memset(&mt, 0, sizeof(mt));
        mt.task = TRAIN_TASK_REGRESSION;
        mt.weight = (double)a->w;
        mt.rmse = (double)sqrtl(a->sse / a->w);
        mt.mae = (double)(a->sae / a->w);
        long double sst = a->syy - a->sy * a->sy / a->w;
        if (sst > 0)
                mt.r2 = (double)(1 - a->sse / sst);
        else
                mt.r2 = a->sse == 0 ? 1.0 : 0.0;
        *ret = mt;
        return 0;
}

struct cls_acc {
        uint32_t k;
        double *tp, *fp, *fn;
        long double w, correct, ll;
};

static int cls_init(struct cls_acc *a, uint32_t k)
{
        memset(a, 0, sizeof(*a));
        a->k = k;
        a->tp = dm_calloc(k, sizeof(double));
        a->fp = dm_calloc(k, sizeof(double));
        a->fn = dm_calloc(k, sizeof(double));
        if (!a->tp || !a->fp || !a->fn)
                return DREAM_E_NOMEM;
        return 0;
}

static void cls_release(struct cls_acc *a)
{
        dm_free(a->tp);
        dm_free(a->fp);
        dm_free(a->fn);
}

static int cls_add(struct cls_acc *a, const float *y, const double *proba, const float *w, size_t n)
{
        uint32_t k = a->k;
        for (size_t i = 0; i < n; i++) {
                double wi = w ? w[i] : 1.0;
                const double *p = proba + i * k;
                float yf = y[i];
                uint32_t yi, best = 0;
                if (!(yf >= 0) || !(yf < (float)k) || yf != floorf(yf) || !(wi >= 0))
                        return DREAM_E_RANGE;
                yi = (uint32_t)yf;
                for (uint32_t c = 1; c < k; c++)
                        if (p[c] > p[best])
                                best = c;
                a->w += wi;
                if (best == yi) {
                        a->correct += wi;
                        a->tp[yi] += wi;
                } else {
                        a->fp[best] += wi;
                        a->fn[yi] += wi;
                }
                double py = p[yi];
                if (!(py >= 1e-15))
                        py = 1e-15;
                if (py > 1)
                        py = 1;
                a->ll -= wi * log(py);
        }
        return 0;
}

static int cls_finish(const struct cls_acc *a, struct train_metrics *ret)
{
        struct train_metrics mt;
        double f1 = 0;
        uint32_t present = 0;
        if (!(a->w > 0))
                return DREAM_E_EMPTY;
        memset(&mt, 0, sizeof(mt));
        mt.task = TRAIN_TASK_CLASSIFICATION;
        mt.weight = (double)a->w;
        mt.accuracy = (double)(a->correct / a->w);
        mt.logloss = (double)(a->ll / a->w);
        for (uint32_t c = 0; c < a->k; c++) {
                double den = 2 * a->tp[c] + a->fp[c] + a->fn[c];
                if (den > 0) {
                        f1 += 2 * a->tp[c] / den;
                        present++;
                }
        }
        mt.macro_f1 = present ? f1 / present : 0;
        *ret = mt;
        return 0;
}

int train_metrics_regression(const float *y, const double *pred, const float *w, size_t n,
                             struct train_metrics *ret_metrics)
{
        struct reg_acc a;
        int r;
        if (n > 0 && (!y || !pred))
                return DREAM_E_INVAL;
        memset(&a, 0, sizeof(a));
        r = reg_add(&a, y, pred, w, n);
        if (r < 0)
                return r;
        return reg_finish(&a, ret_metrics);
}

int train_metrics_classification(const float *y, const double *proba, uint32_t k, const float *w,
                                 size_t n, struct train_metrics *ret_metrics)
{
        struct cls_acc a;
        int r;
        if (k < 1 || k > DREAM_MAX_CLASSES || (n > 0 && (!y || !proba)))
                return DREAM_E_INVAL;
        r = cls_init(&a, k);
        if (r < 0)
                goto out_release;
        r = cls_add(&a, y, proba, w, n);
        if (r < 0)
                goto out_release;
        r = cls_finish(&a, ret_metrics);
out_release:
        cls_release(&a);
        return r;
}

#define EVAL_ROWS 4096
#define EVAL_WORK (1u << 26) /* multiply-adds per block at most (beyond one row) */

int train_evaluate(const struct train_model *m, const struct train_view *v,
                   struct train_metrics *ret_metrics)
{
        return train_evaluate_progress(m, v, NULL, NULL, ret_metrics);
}

int train_evaluate_progress(const struct train_model *m, const struct train_view *v,
                            train_progress_fn progress, void *progress_ctx,
                            struct train_metrics *ret_metrics)
{
        struct reg_acc ra;
        struct cls_acc ca;
        double *value = NULL, *proba = NULL, *sq = NULL;
        long double inertia = 0, wsum = 0;
        uint64_t weights = 1;
        size_t block;
        struct check ck;
        uint32_t pw;
        double ws;
        int r;

        if (!m || !v || !ret_metrics)
                return DREAM_E_INVAL;
        /* Blocks of rows small enough that a wide model checks progress often. */
        for (uint32_t l = 0; l < m->n_layers && l < 3; l++)
                weights = sat_add(weights, (uint64_t)m->layers[l].in * m->layers[l].out);
        block = weights >= EVAL_WORK ? 1 : EVAL_WORK / weights;
        if (block > EVAL_ROWS)
                block = EVAL_ROWS;
        train_i_check_init(&ck, progress, progress_ctx);
        r = train_i_view_check(v, m->d, m->task != TRAIN_TASK_CLUSTERING, &ws);
        if (r < 0)
                return r;
        memset(&ra, 0, sizeof(ra));
        memset(&ca, 0, sizeof(ca));
        pw = train_model_proba_width(m);
        value = dm_mallocarray(EVAL_ROWS, sizeof(double));
        sq = dm_mallocarray(EVAL_ROWS, sizeof(double));
        if (!value || !sq) {
                r = DREAM_E_NOMEM;
                goto out_free;
        }
        if (m->task == TRAIN_TASK_CLASSIFICATION) {
                proba = dm_mallocarray((size_t)EVAL_ROWS * pw, sizeof(double));
                if (!proba) {
                        r = DREAM_E_NOMEM;
                        goto out_free;
                }
                r = cls_init(&ca, pw);
                if (r < 0)
                        goto out_free;
        }
        for (size_t i0 = 0; i0 < v->n; i0 += block) {
                size_t rows = v->n - i0 < block ? v->n - i0 : block;
                const float *x = v->x + i0 * m->d;
                if (train_i_check_poll(&ck, sat_mul(rows, weights))) {
                        r = DREAM_E_CANCELLED;
                        goto out_free;
                }
                const float *w = v->w ? v->w + i0 : NULL;
                if (m->task == TRAIN_TASK_CLUSTERING) {
                        r = train_i_predict_kmeans(m, x, rows, value, NULL, sq);
                        if (r < 0)
                                goto out_free;
                        for (size_t i = 0; i < rows; i++) {
                                long double wi = w ? w[i] : 1.0f;
                                inertia += wi * sq[i];
                                wsum += wi;
                        }
                        continue;
                }
                r = train_i_predict_net(m, x, rows, value, proba);
                if (r < 0)
                        goto out_free;
                if (m->task == TRAIN_TASK_CLASSIFICATION)
                        r = cls_add(&ca, v->y + i0, proba, w, rows);
                else
                        r = reg_add(&ra, v->y + i0, value, w, rows);
                if (r < 0)
                        goto out_free;
        }
        if (m->task == TRAIN_TASK_CLUSTERING) {
                struct train_metrics mt;
                memset(&mt, 0, sizeof(mt));
                mt.task = TRAIN_TASK_CLUSTERING;
                mt.weight = (double)wsum;
                mt.inertia = (double)inertia;
                mt.msd = (double)(inertia / wsum);
                *ret_metrics = mt;
                r = 0;
        } else if (m->task == TRAIN_TASK_CLASSIFICATION) {
                r = cls_finish(&ca, ret_metrics);
        } else {
                r = reg_finish(&ra, ret_metrics);
        }
out_free:
        cls_release(&ca);
        dm_free(value);
        dm_free(proba);
        dm_free(sq);
        return r;
}

int train_evaluate_suffstats(const struct train_model *m, const struct train_suffstats *st,
                             struct train_metrics *ret_metrics)
{
        const struct train_layer *ly;
        long double *a, c, sse, sst;
        uint32_t d;

        if (!m || !st || !ret_metrics || m->task != TRAIN_TASK_REGRESSION || m->n_layers != 1 ||
            m->d != st->d || !(st->n > 0))
                return DREAM_E_INVAL;
        d = m->d;
        ly = &m->layers[0];
        a = dm_mallocarray(d + 1, sizeof(long double));
        if (!a)
                return DREAM_E_NOMEM;
        /* prediction = c + sum_j a_j x_j in raw units */
        c = (long double)m->y_mean + (long double)m->y_sd * ly->b[0];
        for (uint32_t j = 0; j < d; j++) {
                a[j] = (long double)m->y_sd * ly->w[j] / m->sd[j];
                c -= a[j] * m->mean[j];
        }
        /* sum w (y - c - a.x)^2 expanded over the sums */
        sse = st->sum_yy - 2 * c * st->sum_y + c * c * st->n;
        for (uint32_t j = 0; j < d; j++) {
                long double axx = 0;
                for (uint32_t k = 0; k < d; k++)
                        axx += a[k] * st->xx[(size_t)j * d + k];
                sse += -2 * a[j] * st->xy[j] + 2 * c * a[j] * st->sum_x[j] + a[j] * axx;
        }
        dm_free(a);
        if (sse < 0)
                sse = 0; /* rounding of a near-perfect fit */
        sst = st->sum_yy - st->sum_y * st->sum_y / st->n;
        memset(ret_metrics, 0, sizeof(*ret_metrics));
        ret_metrics->task = TRAIN_TASK_REGRESSION;
        ret_metrics->weight = (double)st->n;
        ret_metrics->rmse = (double)sqrtl(sse / st->n);
        ret_metrics->mae = NAN;
        ret_metrics->r2 = sst > 0 ? (double)(1 - sse / sst) : 0;
        return 0;
}
