/* Logistic regression, softmax regression and the MLP: one dense network
 * trainer (0, 1 or 2 ReLU hidden layers; sigmoid, softmax or squared-error
 * head) with Adam on shuffled mini-batches, every layer a float GEMM. The
 * weighted objective of a batch is sum_i w_i loss_i / sum_i w_i plus
 * l2 / 2 * |W|^2 (biases are not penalised).
 *
 * MLP only:
 * - Early stopping: with validation rows (problem->valid) and patience > 0,
 *   the validation score is computed after every epoch, batch by batch
 *   through the same buffers: classification, the weighted error rate with
 *   the log-loss breaking ties (the log-loss alone stops several epochs
 *   before the accuracy stops improving, as the net grows overconfident);
 *   regression, the MSE in target units. The weights of the best epoch are
 *   kept and the fit stops after `patience` epochs without a better score.
 * - Vicinal training: with view->v, every time a row enters a mini-batch its
 *   standardised features get sqrt(v) / sd * eps added, eps ~ N(0, 1) drawn
 *   from a stream of its own (seeded from the seed), so that the shuffling is
 *   that of the same fit without v, and v = 0 draws nothing. */
#include "train/gauss.h"
#include "train/internal.h"

#include "common/alloc.h"
#include "common/err.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

enum head { HEAD_SIGMOID, HEAD_SOFTMAX, HEAD_SQUARED };

#define MAX_LAYERS     3
#define PREFETCH_AHEAD 4 /* rows gathered ahead of use */

struct net {
        uint32_t n_layers;
        uint32_t in[MAX_LAYERS], out[MAX_LAYERS];
        float *w[MAX_LAYERS], *b[MAX_LAYERS];
        float *gw[MAX_LAYERS], *gb[MAX_LAYERS];
        float *mw[MAX_LAYERS], *vw[MAX_LAYERS], *mb[MAX_LAYERS], *vb[MAX_LAYERS];
        float *act[MAX_LAYERS + 1]; /* act[0]: batch input; act[l + 1]: output of layer l */
        float *delta[MAX_LAYERS];   /* gradient wrt the pre-activation of layer l */
        float *yb, *wb;             /* batch targets and weights */
        float *mean, *inv_sd;       /* standardisation as float */
        float *best;                /* early stopping: the best epoch's w and b, layer by layer */
        size_t n_params;            /* floats of every w and b */
        size_t *idx;                /* row order of the epoch */
        size_t idx_cap;
        uint32_t width[MAX_LAYERS + 1];
        uint32_t batch;    /* rows per mini-batch (hyper-parameter) */
        uint32_t rows_cap; /* rows the batch buffers hold: min(batch, largest view) */
        enum head head;
        uint64_t bytes;
};

static float *falloc(struct net *nt, size_t n)
{
        float *p = dm_calloc(n ? n : 1, sizeof(float));
        if (p)
                nt->bytes += n * sizeof(float);
        return p;
}

static void net_release(struct net *nt)
{
        for (int l = 0; l < MAX_LAYERS; l++) {
                dm_free(nt->w[l]);
                dm_free(nt->b[l]);
                dm_free(nt->gw[l]);
                dm_free(nt->gb[l]);
                dm_free(nt->mw[l]);
                dm_free(nt->vw[l]);
                dm_free(nt->mb[l]);
                dm_free(nt->vb[l]);
                dm_free(nt->delta[l]);
        }
        for (int l = 0; l <= MAX_LAYERS; l++)
                dm_free(nt->act[l]);
        dm_free(nt->yb);
        dm_free(nt->wb);
        dm_free(nt->mean);
        dm_free(nt->inv_sd);
        dm_free(nt->best);
        dm_free(nt->idx);
}

static int net_init(struct net *nt, const struct train_model *m, struct rng *rng)
{
        const struct train_params *p = &m->params;
        uint32_t width[MAX_LAYERS + 1];
        uint32_t L = 0, out;
        size_t cells, total = 0;

        memset(nt, 0, sizeof(*nt));
        if (m->task == TRAIN_TASK_REGRESSION) {
                nt->head = HEAD_SQUARED;
                out = 1;
        } else if (m->kind == TRAIN_LOGISTIC) {
                nt->head = HEAD_SIGMOID;
                out = 1;
        } else {
                nt->head = HEAD_SOFTMAX;
                out = m->n_classes;
        }
        width[L++] = m->d;
        if (m->kind == TRAIN_MLP)
                for (uint32_t h = 0; h < p->n_hidden; h++)
                        width[L++] = p->hidden[h];
        width[L] = out;
        nt->n_layers = L;
        nt->batch = p->batch;
        memcpy(nt->width, width, sizeof(width));

        for (uint32_t l = 0; l < L; l++) {
                nt->in[l] = width[l];
                nt->out[l] = width[l + 1];
                if (__builtin_mul_overflow((size_t)width[l], (size_t)width[l + 1], &cells) ||
                    __builtin_add_overflow(total, cells, &total) || total > DREAM_MAX_MODEL_WEIGHTS)
                        return DREAM_E_LIMIT;
                nt->n_params += cells + width[l + 1];
        }
        for (uint32_t l = 0; l < L; l++) {
                size_t wc = (size_t)nt->in[l] * nt->out[l];
                nt->w[l] = falloc(nt, wc);
                nt->gw[l] = falloc(nt, wc);
                nt->mw[l] = falloc(nt, wc);
                nt->vw[l] = falloc(nt, wc);
                nt->b[l] = falloc(nt, nt->out[l]);
                nt->gb[l] = falloc(nt, nt->out[l]);
                nt->mb[l] = falloc(nt, nt->out[l]);
                nt->vb[l] = falloc(nt, nt->out[l]);
                if (!nt->w[l] || !nt->gw[l] || !nt->mw[l] || !nt->vw[l] || !nt->b[l] ||
                    !nt->gb[l] || !nt->mb[l] || !nt->vb[l])
                        return DREAM_E_NOMEM;
                /* Glorot uniform (as sklearn); biases start at 0. */
                double bound = sqrt(6.0 / ((double)nt->in[l] + nt->out[l]));
                for (size_t c = 0; c < wc; c++)
                        nt->w[l][c] = (float)((2 * rng_unit(rng) - 1) * bound);
        }
        nt->mean = falloc(nt, m->d);
        nt->inv_sd = falloc(nt, m->d);
        if (!nt->mean || !nt->inv_sd)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < m->d; j++) {
                nt->mean[j] = (float)m->mean[j];
                nt->inv_sd[j] = (float)(1.0 / m->sd[j]);
        }
        return 0;
}

/* Make the batch buffers (activations, deltas, targets, weights) hold
 * `rows` rows; they only grow. */
static int net_rows(struct net *nt, uint32_t rows)
{
        size_t per_row = 2, cells;
        if (rows <= nt->rows_cap)
                return 0;
        for (uint32_t l = 0; l <= nt->n_layers; l++)
                per_row += nt->width[l] + (l < nt->n_layers ? nt->out[l] : 0);
        if (__builtin_mul_overflow(per_row, (size_t)rows, &cells) ||
            cells > SIZE_MAX / sizeof(float))
                return DREAM_E_LIMIT;
        for (uint32_t l = 0; l <= nt->n_layers; l++) {
                dm_free(nt->act[l]);
                nt->act[l] = NULL;
                if (l < nt->n_layers) {
                        dm_free(nt->delta[l]);
                        nt->delta[l] = NULL;
                }
        }
        dm_free(nt->yb);
        dm_free(nt->wb);
        nt->bytes -= (uint64_t)nt->rows_cap * per_row * sizeof(float);
        nt->rows_cap = 0;
        nt->yb = falloc(nt, rows);
        nt->wb = falloc(nt, rows);
        if (!nt->yb || !nt->wb)
                return DREAM_E_NOMEM;
        for (uint32_t l = 0; l <= nt->n_layers; l++) {
                nt->act[l] = falloc(nt, (size_t)rows * nt->width[l]);
                if (!nt->act[l])
                        return DREAM_E_NOMEM;
                if (l < nt->n_layers) {
                        nt->delta[l] = falloc(nt, (size_t)rows * nt->out[l]);
                        if (!nt->delta[l])
                                return DREAM_E_NOMEM;
                }
        }
        nt->rows_cap = rows;
        return 0;
}

/* Forward pass of `rows` rows already in act[0]. */
static void net_forward(struct net *nt, uint32_t rows)
{
        for (uint32_t l = 0; l < nt->n_layers; l++) {
                uint32_t in = nt->in[l], out = nt->out[l];
                float *a = nt->act[l], *z = nt->act[l + 1];
                const float *b = nt->b[l];
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out, (int)in,
                            1.0f, a, (int)in, nt->w[l], (int)in, 0.0f, z, (int)out);
                int relu = l + 1 < nt->n_layers;
                for (uint32_t i = 0; i < rows; i++) {
                        float *zi = z + (size_t)i * out;
                        if (relu) {
                                for (uint32_t k = 0; k < out; k++) {
                                        float v = zi[k] + b[k];
                                        zi[k] = v > 0 ? v : 0;
                                }
                        } else {
                                for (uint32_t k = 0; k < out; k++)
                                        zi[k] += b[k];
                        }
                }
        }
}

/* Loss of the batch (sum of w_i * loss_i) and the output delta. */
static double net_head(struct net *nt, uint32_t rows, double wsum, double y_mean, double y_sd)
{
        uint32_t L = nt->n_layers, K = nt->out[L - 1];
        const float *z = nt->act[L];
        float *dl = nt->delta[L - 1];
        double loss = 0;

        for (uint32_t i = 0; i < rows; i++) {
                double wi = nt->wb[i];
                float c = (float)(wi / wsum);
                const float *zi = z + (size_t)i * K;
                float *di = dl + (size_t)i * K;
                float y = nt->yb[i];
                switch (nt->head) {
                case HEAD_SIGMOID: {
                        float v = zi[0];
                        float p = 1.0f / (1.0f + expf(-v));
                        loss += wi * ((v > 0 ? v : 0) - v * y + log1pf(expf(-fabsf(v))));
                        di[0] = (p - y) * c;
                        break;
                }
                case HEAD_SOFTMAX: {
                        uint32_t yi = (uint32_t)y;
                        float mx = zi[0], s = 0;
                        for (uint32_t k = 1; k < K; k++)
                                mx = zi[k] > mx ? zi[k] : mx;
                        for (uint32_t k = 0; k < K; k++) {
                                di[k] = expf(zi[k] - mx);
                                s += di[k];
                        }
                        /* s >= 1: the largest term is expf(0) */
                        // cppcheck-suppress invalidFunctionArg
                        loss += wi * (logf(s) - (zi[yi] - mx));
                        float inv = c / s;
                        for (uint32_t k = 0; k < K; k++)
                                di[k] *= inv;
                        di[yi] -= c;
                        break;
                }
                case HEAD_SQUARED: {
                        float e = zi[0] - (float)((y - y_mean) / y_sd);
                        loss += wi * (double)e * e * y_sd * y_sd;
                        di[0] = e * c;
                        break;
                }
                }
        }
        return loss;
}

static void net_backward(struct net *nt, uint32_t rows, float l2)
{
        for (uint32_t l = nt->n_layers; l-- > 0;) {
                uint32_t in = nt->in[l], out = nt->out[l];
                float *d = nt->delta[l], *a = nt->act[l];
                size_t wc = (size_t)in * out;
                /* gW = D' A + l2 W (saxpy-free: sgemm with beta 1 on a copy of l2 W). */
                for (size_t c = 0; c < wc; c++)
                        nt->gw[l][c] = l2 * nt->w[l][c];
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)rows,
                            1.0f, d, (int)out, a, (int)in, 1.0f, nt->gw[l], (int)in);
                float *gb = nt->gb[l];
                memset(gb, 0, out * sizeof(float));
                for (uint32_t i = 0; i < rows; i++) {
                        const float *di = d + (size_t)i * out;
                        for (uint32_t k = 0; k < out; k++)
                                gb[k] += di[k];
                }
                if (l == 0)
                        break;
                /* D_{l-1} = (D_l W_l) * relu'(act[l]). */
                float *dp = nt->delta[l - 1];
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)in, (int)out,
                            1.0f, d, (int)out, nt->w[l], (int)in, 0.0f, dp, (int)in);
                size_t cells = (size_t)rows * in;
                for (size_t c = 0; c < cells; c++)
                        if (!(a[c] > 0))
                                dp[c] = 0;
        }
}

static void adam(float *restrict p, const float *restrict g, float *restrict mo, float *restrict ve,
                 size_t n, float lr_t)
{
        const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
        for (size_t c = 0; c < n; c++) {
                float gc = g[c];
                mo[c] = b1 * mo[c] + (1 - b1) * gc;
                ve[c] = b2 * ve[c] + (1 - b2) * gc * gc;
                p[c] -= lr_t * mo[c] / (sqrtf(ve[c]) + eps);
        }
}

static void net_step(struct net *nt, double lr, uint64_t t)
{
        double c1 = 1 - pow(0.9, (double)t), c2 = 1 - pow(0.999, (double)t);
        float lr_t = (float)(lr * sqrt(c2) / c1);
        for (uint32_t l = 0; l < nt->n_layers; l++) {
                adam(nt->w[l], nt->gw[l], nt->mw[l], nt->vw[l], (size_t)nt->in[l] * nt->out[l],
                     lr_t);
                adam(nt->b[l], nt->gb[l], nt->mb[l], nt->vb[l], nt->out[l], lr_t);
        }
}

/* Vicinal draw of one standardised row: a += sqrt(v) * inv_sd * eps where
 * v > 0 (a feature of variance 0 draws nothing). */
static void vicinal_row(float *restrict a, const float *restrict v, const float *restrict inv_sd,
                        uint32_t d, struct gauss *g)
{
        for (uint32_t j = 0; j < d; j++)
                if (v[j] > 0)
                        a[j] += sqrtf(v[j]) * inv_sd[j] * gauss_next(g);
}

static int check_variances(const struct train_view *v)
{
        size_t cells = v->n * (size_t)v->d;
        for (size_t c = 0; c < cells; c++)
                if (!(v->v[c] >= 0) || !isfinite(v->v[c]))
                        return DREAM_E_INVAL;
        return 0;
}

/* Copy every w and b into or out of nt->best. */
static void net_snapshot(struct net *nt, int restore)
{
        float *at = nt->best;
        for (uint32_t l = 0; l < nt->n_layers; l++) {
                size_t wc = (size_t)nt->in[l] * nt->out[l];
                float *parts[2] = {nt->w[l], nt->b[l]};
                size_t sizes[2] = {wc, nt->out[l]};
                for (int k = 0; k < 2; k++) {
                        if (restore)
                                memcpy(parts[k], at, sizes[k] * sizeof(float));
                        else
                                memcpy(at, parts[k], sizes[k] * sizeof(float));
                        at += sizes[k];
                }
        }
}

/* Weighted loss (sum of w_i * loss_i, without the L2 term) of the forward
 * outputs of `rows` rows: log-loss, or squared error in target units; adds
 * the weight of the misclassified rows to *err (classification). */
static double net_rows_loss(const struct net *nt, uint32_t rows, const float *y, const float *w,
                            double y_mean, double y_sd, double *err)
{
        uint32_t L = nt->n_layers, K = nt->out[L - 1];
        double loss = 0;
        for (uint32_t i = 0; i < rows; i++) {
                const float *zi = nt->act[L] + (size_t)i * K;
                double wi = w ? w[i] : 1.0, li;
                if (nt->head == HEAD_SQUARED) {
                        double e = y_mean + y_sd * (double)zi[0] - (double)y[i];
                        li = e * e;
                } else if (nt->head == HEAD_SIGMOID) {
                        double z = zi[0];
                        li = (z > 0 ? z : 0) - z * (double)y[i] + log1p(exp(-fabs(z)));
                        *err += (z >= 0) != (y[i] > 0.5f) ? wi : 0;
                } else {
                        double mx = zi[0], s = 0;
                        uint32_t best = 0;
                        for (uint32_t k = 1; k < K; k++)
                                if (zi[k] > zi[best])
                                        best = k;
                        mx = zi[best];
                        *err += best != (uint32_t)y[i] ? wi : 0;
                        for (uint32_t k = 0; k < K; k++)
                                s += exp((double)zi[k] - mx);
                        /* s >= 1: the largest term is exp(0) */
                        // cppcheck-suppress invalidFunctionArg
                        li = log(s) - ((double)zi[(uint32_t)y[i]] - mx);
                }
                loss += wi * li;
        }
        return loss;
}

/* Weighted mean loss and error rate (classification; 0 for regression) of
 * the network on a view, rows_cap rows at a time through the batch
 * buffers. DREAM_E_CANCELLED when asked to stop. */
static int net_view_loss(struct net *nt, const struct train_view *v, const struct train_model *m,
                         struct check *ck, uint64_t row_work, double *ret_loss, double *ret_err)
{
        double loss = 0, err = 0, wsum = 0;
        uint32_t d = m->d;
        for (size_t i0 = 0; i0 < v->n; i0 += nt->rows_cap) {
                uint32_t rows = (uint32_t)(v->n - i0 < nt->rows_cap ? v->n - i0 : nt->rows_cap);
                const float *w = v->w ? v->w + i0 : NULL;
                for (uint32_t i = 0; i < rows; i++) {
                        stdz_row(nt->act[0] + (size_t)i * d, v->x + (i0 + i) * d, nt->mean,
                                 nt->inv_sd, d);
                        wsum += w ? w[i] : 1.0;
                }
                net_forward(nt, rows);
                loss += net_rows_loss(nt, rows, v->y + i0, w, m->y_mean, m->y_sd, &err);
                if (train_i_check_poll(ck, sat_mul(row_work, rows)))
                        return DREAM_E_CANCELLED;
        }
        *ret_loss = loss / wsum;
        *ret_err = err / wsum;
        return 0;
}

int train_i_mem_net(enum train_kind kind, const struct train_params *p, uint32_t d,
                    uint32_t n_classes, uint64_t n_rows, struct train_mem *mem)
{
        uint64_t width[MAX_LAYERS + 1], per_row = 2, floats = 2 * (uint64_t)d, weights = 0;
        uint64_t rows = n_rows < p->batch ? n_rows : p->batch;
        uint32_t L = 0;

        width[L++] = d;
        if (kind == TRAIN_MLP)
                for (uint32_t h = 0; h < p->n_hidden && h < 2; h++)
                        width[L++] = p->hidden[h];
        /* outputs: 1 (regression, logistic) or the classes (at least 2) */
        width[L] = kind == TRAIN_LOGISTIC || (kind == TRAIN_MLP && n_classes == 0) ? 1
                   : n_classes < 2                                                 ? 2
                                                                                   : n_classes;
        for (uint32_t l = 0; l < L; l++) {
                uint64_t lw = sat_add(sat_mul(width[l], width[l + 1]), width[l + 1]);
                weights = sat_add(weights, lw);
                floats = sat_add(floats, sat_mul(4, lw)); /* w, b and their gradients, moments */
                per_row = sat_add(per_row, sat_add(width[l], width[l + 1])); /* act, delta */
        }
        per_row = sat_add(per_row, width[L]);     /* the output activations */
        if (kind == TRAIN_MLP && p->patience > 0) /* the best epoch's weights */
                floats = sat_add(floats, weights);
        mem->weights = weights;
        mem->params = sat_mul(floats, sizeof(float));
        mem->activations = sat_mul(sat_mul(rows, per_row), sizeof(float));
        mem->rows = sat_mul(n_rows, sizeof(size_t)); /* the epoch's row order */
        return 0;
}

static int check_labels(const struct train_view *v, uint32_t k)
{
        for (size_t i = 0; i < v->n; i++) {
                float y = v->y[i];
                if (!(y >= 0) || !(y < (float)k) || y != floorf(y))
                        return DREAM_E_RANGE;
        }
        return 0;
}

static int check_targets(const struct train_view *v)
{
        for (size_t i = 0; i < v->n; i++)
                if (!isfinite(v->y[i]))
                        return DREAM_E_INVAL;
        return 0;
}

/* Weighted mean and sd of the targets of a view. */
static void target_scale(const struct train_view *v, double *ret_mean, double *ret_sd)
{
        long double s = 0, ss = 0, ws = 0;
        for (size_t i = 0; i < v->n; i++) {
                long double w = v->w ? v->w[i] : 1.0f;
                s += w * v->y[i];
                ws += w;
        }
        long double mean = s / ws;
        for (size_t i = 0; i < v->n; i++) {
                long double w = v->w ? v->w[i] : 1.0f, e = v->y[i] - mean;
                ss += w * e * e;
        }
        double sd = (double)sqrtl(ss / ws);
        *ret_mean = (double)mean;
        *ret_sd = isfinite(sd) && sd > 0 ? sd : 1.0;
}

int train_i_fit_net(struct train_model *m, const struct train_problem *pb,
                    const struct train_source *src, const struct train_view *first,
                    train_progress_fn progress, void *progress_ctx)
{
        const struct train_params *p = &m->params;
        const struct train_view *valid = NULL;
        struct train_view v = *first;
        struct net nt;
        struct rng rng;
        struct gauss noise;
        struct check ck;
        uint64_t t = 0, step_work = 0, row_work = 0;
        uint32_t d = m->d, since_best = 0;
        double best_loss = INFINITY, best_err = INFINITY, best_fit_loss = NAN;
        int r;

        rng_seed(&rng, p->seed);
        gauss_init(&noise, p->seed ^ 0x5d2f0c8a7e1b3946ull); /* a stream of its own */
        if (m->kind == TRAIN_MLP && p->patience > 0 && pb->valid && pb->valid->n > 0) {
                double ws;
                valid = pb->valid;
                r = train_i_view_check(valid, d, 1, &ws);
                if (r == 0)
                        r = m->task == TRAIN_TASK_CLASSIFICATION ? check_labels(valid, m->n_classes)
                                                                 : check_targets(valid);
                if (r < 0)
                        return r;
        }
        if (m->task == TRAIN_TASK_REGRESSION) {
                if (pb->y_sd > 0 && isfinite(pb->y_sd) && isfinite(pb->y_mean)) {
                        m->y_mean = pb->y_mean;
                        m->y_sd = pb->y_sd;
                } else {
                        r = check_targets(first);
                        if (r < 0)
                                return r;
                        target_scale(first, &m->y_mean, &m->y_sd);
                }
        }
        r = net_init(&nt, m, &rng);
        if (r < 0)
                goto out_release;
        train_i_check_init(&ck, progress, progress_ctx);
        for (uint32_t l = 0; l < nt.n_layers; l++) { /* forward, backward, Adam per row */
                step_work = sat_add(step_work, (uint64_t)nt.in[l] * nt.out[l] * 3);
                row_work = sat_add(row_work, (uint64_t)nt.in[l] * nt.out[l]);
        }
        if (valid) {
                nt.best = falloc(&nt, nt.n_params);
                if (!nt.best) {
                        r = DREAM_E_NOMEM;
                        goto out_release;
                }
        }

        for (uint32_t e = 0; e < p->epochs; e++) {
                double wtot = 0, ltot = 0;
                if (e > 0) {
                        double ws;
                        memset(&v, 0, sizeof(v));
                        r = src->next_epoch(src->ctx, e, &v);
                        if (r < 0)
                                goto out_release;
                        r = train_i_view_check(&v, d, 1, &ws);
                        if (r < 0)
                                goto out_release;
                }
                r = m->task == TRAIN_TASK_CLASSIFICATION ? check_labels(&v, m->n_classes)
                                                         : check_targets(&v);
                if (r == 0 && v.v && m->kind == TRAIN_MLP)
                        r = check_variances(&v);
                if (r < 0)
                        goto out_release;
                if (v.n > nt.idx_cap) {
                        size_t *ni = dm_reallocarray(nt.idx, v.n, sizeof(size_t));
                        if (!ni) {
                                r = DREAM_E_NOMEM;
                                goto out_release;
                        }
                        nt.bytes += (v.n - nt.idx_cap) * sizeof(size_t);
                        nt.idx = ni;
                        nt.idx_cap = v.n;
                }
                r = net_rows(&nt, (uint32_t)(v.n < nt.batch ? v.n : nt.batch));
                if (r < 0)
                        goto out_release;
                for (size_t i = 0; i < v.n; i++)
                        nt.idx[i] = i;
                for (size_t i = v.n; i > 1; i--) {
                        size_t j = (size_t)rng_below(&rng, i);
                        size_t tmp = nt.idx[i - 1];
                        nt.idx[i - 1] = nt.idx[j];
                        nt.idx[j] = tmp;
                }
                for (size_t b0 = 0; b0 < v.n; b0 += nt.batch) {
                        uint32_t rows = (uint32_t)(v.n - b0 < nt.batch ? v.n - b0 : nt.batch);
                        double wsum = 0;
                        for (uint32_t i = 0; i < rows; i++) {
                                size_t ri = nt.idx[b0 + i];
                                if (i + PREFETCH_AHEAD < rows)
                                        prefetch_row(v.x + nt.idx[b0 + i + PREFETCH_AHEAD] * d, d);
                                stdz_row(nt.act[0] + (size_t)i * d, v.x + ri * d, nt.mean,
                                         nt.inv_sd, d);
                                if (v.v && m->kind == TRAIN_MLP)
                                        vicinal_row(nt.act[0] + (size_t)i * d, v.v + ri * d,
                                                    nt.inv_sd, d, &noise);
                                nt.yb[i] = v.y[ri];
                                nt.wb[i] = v.w ? v.w[ri] : 1.0f;
                                wsum += nt.wb[i];
                        }
                        if (!(wsum > 0))
                                continue;
                        net_forward(&nt, rows);
                        ltot += net_head(&nt, rows, wsum, m->y_mean, m->y_sd);
                        wtot += wsum;
                        net_backward(&nt, rows, (float)p->l2);
                        net_step(&nt, p->lr, ++t);
                        if (train_i_check_poll(&ck, sat_mul(step_work, rows))) {
                                r = DREAM_E_CANCELLED;
                                goto out_release;
                        }
                }
                m->loss = ltot / wtot;
                m->epochs_run = e + 1;
                m->rows_used = v.n;
                if (!isfinite(m->loss)) {
                        r = DREAM_E_NUMERIC;
                        goto out_release;
                }
                m->iterations = e + 1;
                if (valid) {
                        double vl, ve;
                        r = net_view_loss(&nt, valid, m, &ck, row_work, &vl, &ve);
                        if (r < 0)
                                goto out_release;
                        if (ve < best_err || (ve == best_err && vl < best_loss)) {
                                best_err = ve;
                                best_loss = vl;
                                best_fit_loss = m->loss;
                                since_best = 0;
                                net_snapshot(&nt, 0);
                        } else {
                                since_best++;
                        }
                }
                if (nt.bytes > m->work_bytes)
                        m->work_bytes = nt.bytes;
                if (progress && progress(progress_ctx, e + 1, p->epochs, m->loss)) {
                        r = DREAM_E_CANCELLED;
                        goto out_release;
                }
                if (valid && since_best >= p->patience) {
                        m->converged = 1;
                        break;
                }
        }
        if (valid && isfinite(best_err)) { /* keep the best epoch's weights */
                net_snapshot(&nt, 1);
                m->loss = best_fit_loss;
        }

        for (uint32_t l = 0; l < nt.n_layers; l++) {
                size_t wc = (size_t)nt.in[l] * nt.out[l];
                r = train_i_model_layer_alloc(m, l, nt.in[l], nt.out[l]);
                if (r < 0)
                        goto out_release;
                for (size_t c = 0; c < wc; c++)
                        m->layers[l].w[c] = nt.w[l][c];
                for (uint32_t c = 0; c < nt.out[l]; c++)
                        m->layers[l].b[c] = nt.b[l][c];
        }
        r = 0;
out_release:
        net_release(&nt);
        return r;
}

#define PREDICT_ROWS 256

int train_i_predict_net(const struct train_model *m, const float *x, size_t n, double *ret_value,
                        double *ret_proba)
{
        uint32_t d = m->d, maxw = d;
        double *buf[2] = {NULL, NULL};
        int r = 0;

        if (m->n_layers == 0 || m->n_layers > MAX_LAYERS || m->layers[0].in != d)
                return DREAM_E_INVAL;
        for (uint32_t l = 0; l < m->n_layers; l++)
                if (m->layers[l].out > maxw)
                        maxw = m->layers[l].out;
        buf[0] = dm_mallocarray((size_t)maxw * PREDICT_ROWS, sizeof(double));
        buf[1] = dm_mallocarray((size_t)maxw * PREDICT_ROWS, sizeof(double));
        if (!buf[0] || !buf[1]) {
                r = DREAM_E_NOMEM;
                goto out_free;
        }
        for (size_t i0 = 0; i0 < n; i0 += PREDICT_ROWS) {
                int rows = (int)(n - i0 < PREDICT_ROWS ? n - i0 : PREDICT_ROWS);
                double *a = buf[0], *z = buf[1];
                for (int i = 0; i < rows; i++) {
                        const float *xi = x + (i0 + (size_t)i) * d;
                        for (uint32_t j = 0; j < d; j++)
                                a[(size_t)i * d + j] = ((double)xi[j] - m->mean[j]) / m->sd[j];
                }
                for (uint32_t l = 0; l < m->n_layers; l++) {
                        const struct train_layer *ly = &m->layers[l];
                        int in = (int)ly->in, out = (int)ly->out;
                        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0, a,
                                    in, ly->w, in, 0.0, z, out);
                        int relu = l + 1 < m->n_layers;
                        for (int i = 0; i < rows; i++)
                                for (int k = 0; k < out; k++) {
                                        double v = z[(size_t)i * out + k] + ly->b[k];
                                        z[(size_t)i * out + k] = relu && v < 0 ? 0 : v;
                                }
                        double *tmp = a;
                        a = z;
                        z = tmp;
                }
                /* a holds the outputs. */
                uint32_t K = m->layers[m->n_layers - 1].out;
                for (int i = 0; i < rows; i++) {
                        size_t row = i0 + (size_t)i;
                        const double *o = a + (size_t)i * K;
                        if (m->task == TRAIN_TASK_REGRESSION) {
                                ret_value[row] = m->y_mean + m->y_sd * o[0];
                        } else if (m->kind == TRAIN_LOGISTIC) {
                                double p1 = 1.0 / (1.0 + exp(-o[0]));
                                ret_value[row] = p1 >= 0.5 ? 1 : 0;
                                if (ret_proba) {
                                        ret_proba[row * 2] = 1 - p1;
                                        ret_proba[row * 2 + 1] = p1;
                                }
                        } else {
                                double mx = o[0], s = 0;
                                uint32_t best = 0;
                                for (uint32_t k = 1; k < K; k++)
                                        if (o[k] > mx) {
                                                mx = o[k];
                                                best = k;
                                        }
                                for (uint32_t k = 0; k < K; k++)
                                        s += exp(o[k] - mx);
                                ret_value[row] = best;
                                if (ret_proba)
                                        for (uint32_t k = 0; k < K; k++)
                                                ret_proba[row * K + k] = exp(o[k] - mx) / s;
                        }
                }
        }
out_free:
        dm_free(buf[0]);
        dm_free(buf[1]);
        return r;
}
