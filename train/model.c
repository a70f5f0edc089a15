#include "train/internal.h"

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATS_BLOCK 4096

static const char *const kind_names[] = {
    [TRAIN_LINEAR] = "linear",   [TRAIN_RIDGE] = "ridge", [TRAIN_LOGISTIC] = "logistic",
    [TRAIN_SOFTMAX] = "softmax", [TRAIN_MLP] = "mlp",     [TRAIN_KMEANS] = "kmeans",
};

const char *train_kind_name(enum train_kind kind)
{
        if ((int)kind < TRAIN_LINEAR || (int)kind > TRAIN_KMEANS)
                return NULL;
        return kind_names[kind];
}

int train_kind_parse(const char *name, enum train_kind *ret_kind)
{
        if (!name)
                return DREAM_E_INVAL;
        for (int k = TRAIN_LINEAR; k <= TRAIN_KMEANS; k++) {
                if (strcmp(name, kind_names[k]) == 0) {
                        *ret_kind = (enum train_kind)k;
                        return 0;
                }
        }
        return DREAM_E_INVAL;
}

enum train_task train_kind_task(enum train_kind kind)
{
        switch (kind) {
        case TRAIN_LINEAR:
        case TRAIN_RIDGE:
                return TRAIN_TASK_REGRESSION;
        case TRAIN_LOGISTIC:
        case TRAIN_SOFTMAX:
                return TRAIN_TASK_CLASSIFICATION;
        case TRAIN_KMEANS:
                return TRAIN_TASK_CLUSTERING;
        case TRAIN_MLP:
        default:
                return 0;
        }
}

void train_params_default(enum train_kind kind, struct train_params *ret_params)
{
        struct train_params p = {
            .epochs = 20,
            .batch = 256,
            .lr = 1e-3,
            .l2 = 1e-4,
            .n_hidden = 1,
            .hidden = {128, 0},
            .k = 8,
            .max_iter = 100,
            .tol = 1e-4,
            .seed = 42,
            .standardize = 1,
            .solver = TRAIN_SOLVER_LBFGS,
            .lbfgs_iter = TRAIN_LBFGS_ITER,
            .lbfgs_tol = TRAIN_LBFGS_TOL,
            .patience = 5,
        };
        if (kind == TRAIN_MLP)
                p.epochs = 200; /* a maximum: early stopping ends the fit (train.h) */
        if (kind == TRAIN_LINEAR)
                p.l2 = 0;
        else if (kind == TRAIN_LOGISTIC || kind == TRAIN_SOFTMAX)
                p.l2 = TRAIN_L2_LINEAR_CLASSIFIER;
        else if (kind == TRAIN_RIDGE)
                p.l2 = 1.0;
        *ret_params = p;
}

int train_params_validate(enum train_kind kind, const struct train_params *p, const char **ret_msg)
{
        const char *msg = NULL;

        if (!train_kind_name(kind))
                msg = "unknown model kind";
        else if (!p)
                msg = "no hyper-parameters";
        else if (p->standardize > 1)
                msg = "standardize must be 0 or 1";
        else if (kind == TRAIN_LINEAR && p->l2 != 0)
                msg = "l2 must be 0 for linear (use ridge)";
        else if (!isfinite(p->l2) || p->l2 < 0)
                msg = "l2 must be finite and >= 0";
        else if (p->solver > TRAIN_SOLVER_ADAM)
                msg = "solver must be lbfgs (0) or adam (1)";
        else if (p->lbfgs_iter > DREAM_MAX_EPOCHS)
                msg = "lbfgs_iter must be between 0 (default) and 1000000";
        else if (!isfinite(p->lbfgs_tol) || p->lbfgs_tol < 0)
                msg = "lbfgs_tol must be finite and >= 0";
        else if (!isfinite(p->var_scale) || p->var_scale < 0)
                msg = "var_scale must be finite and >= 0";
        else if (p->l2_fixed > 1)
                msg = "l2_fixed must be 0 or 1";
        else if (kind == TRAIN_LOGISTIC || kind == TRAIN_SOFTMAX || kind == TRAIN_MLP) {
                if (p->epochs == 0 || p->epochs > DREAM_MAX_EPOCHS)
                        msg = "epochs must be between 1 and 1000000";
                else if (p->batch == 0 || p->batch > DREAM_MAX_BATCH_SIZE)
                        msg = "batch must be between 1 and 1048576";
                else if (!isfinite(p->lr) || p->lr <= 0)
                        msg = "lr must be finite and > 0";
                else if (kind == TRAIN_MLP) {
                        if (p->n_hidden < 1 || p->n_hidden > 2)
                                msg = "mlp needs 1 or 2 hidden layers";
                        else if (p->hidden[0] == 0 || p->hidden[0] > DREAM_MAX_HIDDEN_WIDTH ||
                                 (p->n_hidden == 2 &&
                                  (p->hidden[1] == 0 || p->hidden[1] > DREAM_MAX_HIDDEN_WIDTH)))
                                msg = "hidden layer sizes must be between 1 and 65536";
                }
        } else if (kind == TRAIN_KMEANS) {
                if (p->k == 0 || p->k > DREAM_MAX_K)
                        msg = "k must be between 1 and 65536";
                else if (p->max_iter == 0 || p->max_iter > DREAM_MAX_EPOCHS)
                        msg = "max_iter must be between 1 and 1000000";
                else if (!isfinite(p->tol) || p->tol < 0)
                        msg = "tol must be finite and >= 0";
        }
        if (msg) {
                if (ret_msg)
                        *ret_msg = msg;
                return DREAM_E_INVAL;
        }
        return 0;
}

int train_hidden_parse(const char *s, struct train_params *params)
{
        uint32_t h[2] = {0, 0};
        uint32_t n = 0;
        const char *p = s;

        if (!s || !*s)
                return DREAM_E_INVAL;
        for (;;) {
                char *end;
                unsigned long v;
                if (n == 2 || *p < '0' || *p > '9')
                        return DREAM_E_INVAL;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno || v == 0 || v > DREAM_MAX_HIDDEN_WIDTH)
                        return DREAM_E_INVAL;
                h[n++] = (uint32_t)v;
                if (*end == '\0')
                        break;
                if (*end != ',')
                        return DREAM_E_INVAL;
                p = end + 1;
        }
        params->n_hidden = n;
        params->hidden[0] = h[0];
        params->hidden[1] = h[1];
        return 0;
}

size_t train_view_bytes(const struct train_view *v)
{
        size_t cells, bytes;
        if (!v)
                return 0;
        size_t per_row = (size_t)v->d * (v->v ? 2 : 1) + (v->y ? 1 : 0) + (v->w ? 1 : 0);
        if (__builtin_mul_overflow(v->n, per_row, &cells) ||
            __builtin_mul_overflow(cells, sizeof(float), &bytes))
                return SIZE_MAX;
        return bytes;
}

int train_stats_from_sums(uint32_t d, long double count, const long double *sum,
                          const long double *sumsq, double *ret_mean, double *ret_sd)
{
        if (!(count > 0) || !isfinite((double)count) || (d > 0 && (!sum || !sumsq)))
                return DREAM_E_INVAL;
        for (uint32_t j = 0; j < d; j++) {
                long double mean = sum[j] / count;
                long double var = sumsq[j] / count - mean * mean;
                double sd = var > 0 ? (double)sqrtl(var) : 0.0;
                /* Relative to the column's magnitude, a variance at rounding
                 * level is a constant column. */
                long double scale = sumsq[j] / count;
                if (!isfinite(sd) || !(var > scale * 1e-15L) || sd == 0)
                        sd = 1.0;
                ret_mean[j] = isfinite((double)mean) ? (double)mean : 0.0;
                ret_sd[j] = sd;
        }
        return 0;
}

int train_i_model_alloc(enum train_kind kind, uint32_t d, struct train_model **ret_model)
{
        struct train_model *m = dm_calloc(1, sizeof(*m));
        if (!m)
                return DREAM_E_NOMEM;
        m->kind = kind;
        m->d = d;
        m->y_sd = 1.0;
        m->mean = dm_calloc(d ? d : 1, sizeof(double));
        m->sd = dm_mallocarray(d ? d : 1, sizeof(double));
        if (!m->mean || !m->sd) {
                train_model_free(m);
                return DREAM_E_NOMEM;
        }
        for (uint32_t j = 0; j < d; j++)
                m->sd[j] = 1.0;
        *ret_model = m;
        return 0;
}

int train_i_model_layer_alloc(struct train_model *m, uint32_t i, uint32_t in, uint32_t out)
{
        size_t cells;
        struct train_layer *l = &m->layers[i];
        if (__builtin_mul_overflow((size_t)in, (size_t)out, &cells) ||
            cells > DREAM_MAX_MODEL_WEIGHTS)
                return DREAM_E_LIMIT;
        l->in = in;
        l->out = out;
        l->w = dm_calloc(cells ? cells : 1, sizeof(double));
        l->b = dm_calloc(out ? out : 1, sizeof(double));
        if (!l->w || !l->b)
                return DREAM_E_NOMEM;
        if (m->n_layers < i + 1)
                m->n_layers = i + 1;
        return 0;
}

void train_model_free(struct train_model *m)
{
        if (!m)
                return;
        for (int i = 0; i < 3; i++) {
                dm_free(m->layers[i].w);
                dm_free(m->layers[i].b);
        }
        dm_free(m->mean);
        dm_free(m->sd);
        dm_free(m->classes);
        dm_free(m);
}

int train_i_model_finite(const struct train_model *m)
{
        for (uint32_t i = 0; i < m->n_layers; i++) {
                const struct train_layer *l = &m->layers[i];
                size_t cells = (size_t)l->in * l->out;
                for (size_t c = 0; c < cells; c++)
                        if (!isfinite(l->w[c]))
                                return 0;
                for (uint32_t c = 0; c < l->out; c++)
                        if (!isfinite(l->b[c]))
                                return 0;
        }
        return isfinite(m->y_mean) && isfinite(m->y_sd);
}

uint32_t train_model_proba_width(const struct train_model *m)
{
        if (m->task == TRAIN_TASK_CLASSIFICATION)
                return m->n_classes;
        if (m->kind == TRAIN_KMEANS)
                return m->layers[0].out;
        return 0;
}

int train_kmeans_centre(const struct train_model *m, uint32_t j, double *ret_x)
{
        if (!m || m->kind != TRAIN_KMEANS || j >= m->layers[0].out)
                return DREAM_E_INVAL;
        for (uint32_t c = 0; c < m->d; c++)
                ret_x[c] = m->mean[c] + m->sd[c] * m->layers[0].w[(size_t)j * m->d + c];
        return 0;
}

int train_i_view_check(const struct train_view *v, uint32_t d, int needs_y, double *ret_wsum)
{
        double wsum = 0;
        if (!v || v->d != d || (v->n > 0 && !v->x) || (needs_y && v->n > 0 && !v->y))
                return DREAM_E_INVAL;
        if (v->n == 0)
                return DREAM_E_EMPTY;
        if (v->w) {
                for (size_t i = 0; i < v->n; i++) {
                        if (!isfinite(v->w[i]) || v->w[i] < 0)
                                return DREAM_E_INVAL;
                        wsum += v->w[i];
                }
        } else {
                wsum = (double)v->n;
        }
        if (!(wsum > 0))
                return DREAM_E_EMPTY;
        *ret_wsum = wsum;
        return 0;
}

int train_i_model_set_standardisation(struct train_model *m, const struct train_problem *pb,
                                      const struct train_view *v)
{
        uint32_t d = m->d;
        int r = 0;
        long double *acc = NULL;
        double *blk = NULL;

        if (!m->params.standardize)
                return 0; /* mean 0, sd 1 from train_i_model_alloc */
        if (pb->mean || pb->sd) {
                if (!pb->mean || !pb->sd)
                        return DREAM_E_INVAL;
                for (uint32_t j = 0; j < d; j++) {
                        if (!isfinite(pb->mean[j]) || !isfinite(pb->sd[j]) || !(pb->sd[j] > 0))
                                return DREAM_E_INVAL;
                        m->mean[j] = pb->mean[j];
                        m->sd[j] = pb->sd[j];
                }
                return 0;
        }
        /* Weighted statistics of the view, two passes for accuracy. Rows
         * are summed in double over blocks (vectorised across columns) and
         * the block sums in long double. */
        acc = dm_calloc((size_t)d * 2 + 1, sizeof(long double));
        blk = dm_calloc((size_t)d * 2 + 1, sizeof(double));
        if (!acc || !blk) {
                dm_free(acc);
                dm_free(blk);
                return DREAM_E_NOMEM;
        }
        long double *s = acc, *ss = acc + d, wsum = 0;
        double *mu = blk + d;
        for (int pass = 0; pass < 2; pass++) {
                long double *tot = pass == 0 ? s : ss;
                for (size_t i0 = 0; i0 < v->n; i0 += STATS_BLOCK) {
                        size_t end = v->n - i0 < STATS_BLOCK ? v->n : i0 + STATS_BLOCK;
                        memset(blk, 0, d * sizeof(double));
                        for (size_t i = i0; i < end; i++) {
                                double w = v->w ? v->w[i] : 1.0;
                                const float *x = v->x + i * (size_t)d;
                                if (pass == 0) {
                                        wsum += w;
                                        for (uint32_t j = 0; j < d; j++)
                                                blk[j] += w * x[j];
                                } else {
                                        /* The rows a sample stands for: + w v. */
                                        const float *vi = v->v ? v->v + i * (size_t)d : NULL;
                                        for (uint32_t j = 0; j < d; j++) {
                                                double e = x[j] - mu[j];
                                                blk[j] += w * (e * e + (vi ? vi[j] : 0.0f));
                                        }
                                }
                        }
                        for (uint32_t j = 0; j < d; j++)
                                tot[j] += blk[j];
                }
                if (pass == 0) {
                        if (!(wsum > 0)) {
                                r = DREAM_E_EMPTY;
                                goto out_free;
                        }
                        for (uint32_t j = 0; j < d; j++) {
                                s[j] /= wsum;
                                mu[j] = (double)s[j];
                        }
                }
        }
        for (uint32_t j = 0; j < d; j++) {
                /* Correct for the mean having been rounded to double. */
                long double dm = s[j] - mu[j];
                long double var = ss[j] / wsum - dm * dm;
                double mean = (double)s[j];
                double sd = var > 0 ? (double)sqrtl(var) : 0.0;
                if (!isfinite(mean))
                        mean = 0;
                /* Same rule as train_stats_from_sums. */
                if (!isfinite(sd) || !(var > (var + s[j] * s[j]) * 1e-15L) || sd == 0)
                        sd = 1.0;
                m->mean[j] = mean;
                m->sd[j] = sd;
        }
out_free:
        dm_free(acc);
        dm_free(blk);
        return r;
}

#define CHECK_WORK (1u << 22) /* multiply-adds between two reads of the clock */

static double mono_seconds(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void train_i_check_init(struct check *c, train_progress_fn fn, void *ctx)
{
        c->fn = fn;
        c->ctx = ctx;
        c->work = 0;
        c->next = fn ? mono_seconds() + TRAIN_CHECK_SECONDS : 0;
}

int train_i_check_poll(struct check *c, uint64_t work)
{
        double now;

        if (!c->fn)
                return 0;
        c->work = sat_add(c->work, work);
        if (c->work < CHECK_WORK)
                return 0;
        c->work = 0;
        now = mono_seconds();
        if (now < c->next)
                return 0;
        c->next = now + TRAIN_CHECK_SECONDS;
        return c->fn(c->ctx, 0, 0, NAN);
}

int train_mem_estimate(enum train_kind kind, const struct train_params *params, uint32_t d,
                       uint32_t n_classes, uint64_t n_rows, struct train_mem *ret_mem)
{
        struct train_mem mem = {0};
        int r;

        if (!params || !ret_mem || d == 0 || train_params_validate(kind, params, NULL) < 0)
                return DREAM_E_INVAL;
        switch (kind) {
        case TRAIN_LINEAR:
        case TRAIN_RIDGE:
                train_i_mem_closed(d, &mem);
                break;
        case TRAIN_KMEANS:
                train_i_mem_kmeans(params, d, n_rows, &mem);
                break;
        case TRAIN_LOGISTIC:
        case TRAIN_SOFTMAX:
                if (params->solver == TRAIN_SOLVER_LBFGS) {
                        train_i_mem_lbfgs(kind, d, n_classes, n_rows, &mem);
                        break;
                }
                r = train_i_mem_net(kind, params, d, n_classes, n_rows, &mem);
                if (r < 0)
                        return r;
                break;
        default:
                r = train_i_mem_net(kind, params, d, n_classes, n_rows, &mem);
                if (r < 0)
                        return r;
                break;
        }
        /* Every model keeps the standardisation and the class values. */
        mem.model = sat_add(sat_mul(mem.weights, sizeof(double)),
                            sat_mul((uint64_t)2 * d + n_classes, sizeof(double)));
        mem.total = sat_add(sat_add(mem.model, mem.params), sat_add(mem.activations, mem.rows));
        *ret_mem = mem;
        return 0;
}

/* Source over one fixed view. */
static int fixed_next(void *ctx, uint32_t epoch, struct train_view *ret_view)
{
        (void)epoch;
        *ret_view = *(const struct train_view *)ctx;
        return 0;
}

static int fit_any(enum train_kind kind, const struct train_params *params,
                   const struct train_problem *pb, const struct train_source *src, int fixed,
                   train_progress_fn progress, void *progress_ctx, struct train_model **ret_model);

int train_fit(enum train_kind kind, const struct train_params *params,
              const struct train_problem *problem, const struct train_view *view,
              train_progress_fn progress, void *progress_ctx, struct train_model **ret_model)
{
        struct train_source src = {fixed_next, (void *)view};
        if (!view)
                return DREAM_E_INVAL;
        return fit_any(kind, params, problem, &src, 1, progress, progress_ctx, ret_model);
}

static int labels_max(const struct train_view *v, uint32_t *ret_max)
{
        uint32_t mx = 0;
        for (size_t i = 0; i < v->n; i++) {
                float y = v->y[i];
                if (!(y >= 0) || y >= (float)DREAM_MAX_CLASSES || y != floorf(y))
                        return DREAM_E_RANGE;
                if ((uint32_t)y > mx)
                        mx = (uint32_t)y;
        }
        *ret_max = mx;
        return 0;
}

int train_fit_source(enum train_kind kind, const struct train_params *params,
                     const struct train_problem *pb, const struct train_source *src,
                     train_progress_fn progress, void *progress_ctx, struct train_model **ret_model)
{
        return fit_any(kind, params, pb, src, 0, progress, progress_ctx, ret_model);
}

/* fixed: src returns one view for every epoch (train_fit), which full-batch
 * solvers need. */
static int fit_any(enum train_kind kind, const struct train_params *params,
                   const struct train_problem *pb, const struct train_source *src, int fixed,
                   train_progress_fn progress, void *progress_ctx, struct train_model **ret_model)
{
        struct train_model *m = NULL;
        struct train_view first;
        enum train_task task;
        double wsum;
        int r;

        if (!params || !pb || !src || !src->next_epoch || !ret_model)
                return DREAM_E_INVAL;
        r = train_params_validate(kind, params, NULL);
        if (r < 0)
                return r;
        if (pb->d == 0 || pb->d > DREAM_MAX_COLS)
                return DREAM_E_INVAL;
        task = train_kind_task(kind);
        if (kind == TRAIN_MLP) {
                task = pb->task;
                if (task != TRAIN_TASK_REGRESSION && task != TRAIN_TASK_CLASSIFICATION)
                        return DREAM_E_INVAL;
        }
        if (pb->n_classes > DREAM_MAX_CLASSES)
                return DREAM_E_LIMIT;

        memset(&first, 0, sizeof(first));
        r = src->next_epoch(src->ctx, 0, &first);
        if (r < 0)
                return r;
        r = train_i_view_check(&first, pb->d, task != TRAIN_TASK_CLUSTERING, &wsum);
        if (r < 0)
                return r;

        r = train_i_model_alloc(kind, pb->d, &m);
        if (r < 0)
                return r;
        m->task = task;
        m->params = *params;
        if (kind != TRAIN_MLP) {
                m->params.n_hidden = 0;
                m->params.hidden[0] = m->params.hidden[1] = 0;
        } else if (m->params.n_hidden == 1) {
                m->params.hidden[1] = 0;
        }
        r = train_i_model_set_standardisation(m, pb, &first);
        if (r < 0)
                goto out_free_model;

        if (task == TRAIN_TASK_CLASSIFICATION) {
                uint32_t mx;
                r = labels_max(&first, &mx);
                if (r < 0)
                        goto out_free_model;
                m->n_classes = pb->n_classes ? pb->n_classes : mx + 1;
                if (kind == TRAIN_LOGISTIC && m->n_classes != 2) {
                        r = m->n_classes > 2 ? DREAM_E_RANGE : DREAM_E_INVAL;
                        goto out_free_model;
                }
                if (m->n_classes < 2) {
                        r = DREAM_E_INVAL;
                        goto out_free_model;
                }
                if (mx >= m->n_classes) {
                        r = DREAM_E_RANGE;
                        goto out_free_model;
                }
                if (pb->classes) {
                        for (uint32_t c = 0; c < m->n_classes; c++) {
                                if (!isfinite(pb->classes[c])) {
                                        r = DREAM_E_INVAL;
                                        goto out_free_model;
                                }
                        }
                        m->classes = dm_mallocarray(m->n_classes, sizeof(double));
                        if (!m->classes) {
                                r = DREAM_E_NOMEM;
                                goto out_free_model;
                        }
                        memcpy(m->classes, pb->classes, m->n_classes * sizeof(double));
                }
        }

        switch (kind) {
        case TRAIN_LINEAR:
        case TRAIN_RIDGE:
                r = train_i_fit_closed(m, &first, progress, progress_ctx);
                if (r == 0) {
                        m->epochs_run = 1;
                        m->rows_used = first.n;
                        if (progress && progress(progress_ctx, 1, 1, m->loss))
                                r = DREAM_E_CANCELLED;
                }
                break;
        case TRAIN_KMEANS:
                r = train_i_fit_kmeans(m, &first, progress, progress_ctx);
                break;
        case TRAIN_LOGISTIC:
        case TRAIN_SOFTMAX:
                if (fixed && m->params.solver == TRAIN_SOLVER_LBFGS) {
                        r = train_i_fit_lbfgs(m, pb, &first, progress, progress_ctx);
                        break;
                }
                m->params.solver = TRAIN_SOLVER_ADAM;
                r = train_i_fit_net(m, pb, src, &first, progress, progress_ctx);
                break;
        default:
                m->params.solver = TRAIN_SOLVER_ADAM;
                r = train_i_fit_net(m, pb, src, &first, progress, progress_ctx);
                break;
        }
        if (r == 0 && m->iterations == 0)
                m->iterations = m->epochs_run;
        if (r == 0 && (kind == TRAIN_LINEAR || kind == TRAIN_RIDGE))
                m->converged = 1;
        if (r < 0)
                goto out_free_model;
        if (!train_i_model_finite(m)) {
                r = DREAM_E_NUMERIC;
                goto out_free_model;
        }
        *ret_model = m;
        return 0;

out_free_model:
        train_model_free(m);
        return r;
}

int train_predict(const struct train_model *m, const float *x, size_t n, double *ret_value,
                  double *ret_proba)
{
        if (!m || (n > 0 && (!x || !ret_value)))
                return DREAM_E_INVAL;
        if (n == 0)
                return 0;
        if (m->kind == TRAIN_KMEANS)
                return train_i_predict_kmeans(m, x, n, ret_value, ret_proba, NULL);
        return train_i_predict_net(m, x, n, ret_value, ret_proba);
}

void train_set_threads(int n)
{
        if (n < 1)
                n = 1;
        openblas_set_num_threads(n);
}

int train_get_threads(void)
{
        return openblas_get_num_threads();
}
