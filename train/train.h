/* Models trained on weighted sample sets (condensed samples, sampled or full
 * rows): linear and ridge regression in closed form (also exactly from
 * sufficient statistics), logistic and softmax regression by full-batch
 * L-BFGS to a tolerance (or Adam on mini-batches), a small MLP with Adam on
 * mini-batches, and weighted k-means.
 *
 * Condensed samples may carry the per-feature variance of the rows they
 * stand for (train_view.v). Logistic and softmax by L-BFGS then minimise an
 * upper bound of the expected loss of those rows (Gaussian with that
 * variance): sum_i w_i [LSE_k(z_ik + a/2 sum_j v_ij W_kj^2) - z_iy], with
 * v in standardised units; v = 0 is plain training. Validation rows
 * (train_problem.valid) choose the hyper-parameters left at their defaults:
 * a (params.var_scale) and l2 (see struct train_params), by validation
 * log-loss.
 *
 * This module is the only code of the project that includes cblas.h and
 * lapacke.h. It never logs and keeps no global state besides OpenBLAS's own
 * thread count (train_set_threads).
 *
 * Weighted loss throughout: a row of weight w counts as w copies of the row
 * (the objective is the weighted mean loss over the batch plus the L2 term).
 * Mini-batches are drawn by uniform shuffling and weighted inside the batch
 * (not drawn with probability proportional to weight).
 *
 * Features are standardised, z = (x - mean) / sd, with the exact dataset
 * statistics the caller gives (train_stats_from_sums) or else with weighted
 * statistics of the first view; the parameters are stored with the model and
 * every weight of the model lives in that standardised space.
 *
 * Precision: features arrive as float (float32 on the wire). Gradient models
 * and k-means compute in float (SGEMM: twice the throughput and half the
 * memory traffic of DGEMM, and mini-batch noise dwarfs float rounding);
 * closed-form solves, sufficient statistics, model weights and prediction are
 * double (or long double for the exact sums) since they are compared to
 * 1e-9. Fitting never copies the whole data set: rows are standardised block
 * by block (or batch by batch) as they are read.
 *
 * Fitting is deterministic for a given seed and OpenBLAS thread count.
 */
#ifndef DREAM_TRAIN_TRAIN_H
#define DREAM_TRAIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

enum train_kind {
        TRAIN_LINEAR = 1,   /* least squares, closed form */
        TRAIN_RIDGE = 2,    /* least squares + l2 * |theta|^2, closed form */
        TRAIN_LOGISTIC = 3, /* binary, labels 0/1, L-BFGS (or Adam) */
        TRAIN_SOFTMAX = 4,  /* multiclass, labels 0..K-1, L-BFGS (or Adam) */
        TRAIN_MLP = 5,      /* 1 or 2 ReLU hidden layers, softmax or squared head, Adam */
        TRAIN_KMEANS = 6,   /* weighted Lloyd, k-means++ seeding */
};

enum train_task {
        TRAIN_TASK_REGRESSION = 1,
        TRAIN_TASK_CLASSIFICATION = 2,
        TRAIN_TASK_CLUSTERING = 3,
};

/* "linear", "ridge", ... or NULL for an unknown kind. Static storage. */
const char *train_kind_name(enum train_kind kind);
/* 0 or DREAM_E_INVAL for an unknown name. */
int train_kind_parse(const char *name, enum train_kind *ret_kind);
/* The task a kind solves; TRAIN_MLP returns 0 (it depends on the problem). */
enum train_task train_kind_task(enum train_kind kind);

/* Hyper-parameters. Get defaults from train_params_default, then change. */
struct train_params {
        uint32_t epochs;      /* passes over the data (gradient models): 20; mlp: 200, the
                                 maximum when early stopping is on (patience) */
        uint32_t batch;       /* rows per mini-batch: 256 */
        double lr;            /* Adam step size: 1e-3 */
        double l2;            /* ridge: lambda on the weighted sum of squares (1.0, as sklearn's
                                 Ridge alpha); gradient models: l2 / 2 * |W|^2 added to the
                                 weighted mean loss, biases unpenalised (logistic, softmax:
                                 TRAIN_L2_LINEAR_CLASSIFIER; mlp: 1e-4); linear: 0 */
        uint32_t n_hidden;    /* mlp hidden layers, 1 or 2: 1 */
        uint32_t hidden[2];   /* mlp hidden sizes: {128, 0} */
        uint32_t k;           /* k-means clusters: 8 */
        uint32_t max_iter;    /* k-means Lloyd iterations: 100 */
        double tol;           /* k-means: stop when the squared centre shift < tol: 1e-4 */
        uint64_t seed;        /* PRNG seed (initialisation, shuffling, seeding): 42 */
        uint32_t standardize; /* 1 = standardise features (default), 0 = use them raw */
        /* Logistic and softmax on one view (train_fit): */
        uint32_t solver;     /* TRAIN_SOLVER_LBFGS (0, default): full-batch L-BFGS to a
                                tolerance; TRAIN_SOLVER_ADAM: Adam on mini-batches for
                                `epochs` (train_fit_source and the MLP always use Adam; Adam
                                fits of logistic and softmax ignore view->v) */
        uint32_t lbfgs_iter; /* L-BFGS most iterations: 0 = TRAIN_LBFGS_ITER (300) */
        double lbfgs_tol;    /* L-BFGS stops when max |gradient| <= lbfgs_tol * max |gradient
                                at 0| (relative: the same on any scale of weights or rows):
                                0 = TRAIN_LBFGS_TOL (1e-2) */
        double var_scale;    /* a, the weight of the variance term (view->v given): 0 = chosen
                                on problem->valid among {0.25, 0.5, 1}, or 1 without it */
        uint32_t l2_fixed;   /* L-BFGS with problem->valid: 0 = l2 left at the kind's default
                                is chosen on valid among {l2, 10 l2, 100 l2, 1000 l2};
                                1 = l2 as given */
        uint32_t patience;   /* mlp early stopping, with problem->valid: stop after this many
                                epochs without a better validation score (classification:
                                error rate, then log-loss; regression: MSE) and keep the best
                                epoch's weights (epochs is then the maximum; when it
                                stops, model->converged is 1 and the kept epoch is
                                epochs_run - patience): 5; 0 = off */
};

enum train_solver {
        TRAIN_SOLVER_LBFGS = 0,
        TRAIN_SOLVER_ADAM = 1,
};

#define TRAIN_LBFGS_ITER 300
/* Default l2 of logistic and softmax: scikit-learn's LogisticRegression(C)
 * is l2 = 1 / (C * sum w) here, C = 1 on 60,000 rows is 1.7e-5; 1e-3 (C = 1
 * on 1,000 rows) converges in a third of the iterations on Fashion-MNIST and
 * scores 0.847 there against 0.837 (C = 1 to convergence) and 0.844
 * (scikit-learn stopped at its 100 iterations). */
#define TRAIN_L2_LINEAR_CLASSIFIER 1e-3
#define TRAIN_LBFGS_TOL            1e-2

void train_params_default(enum train_kind kind, struct train_params *ret_params);
/* 0, or DREAM_E_INVAL with *ret_msg (static string, may be NULL) naming the
 * bad value, e.g. "lr must be finite and > 0". */
int train_params_validate(enum train_kind kind, const struct train_params *params,
                          const char **ret_msg);
/* Parse "128" or "256,128" into params->n_hidden and hidden[]. 0 or
 * DREAM_E_INVAL. */
int train_hidden_parse(const char *s, struct train_params *params);

/* A weighted sample set. All arrays are borrowed; they must stay valid for
 * the duration of the call they are passed to. */
struct train_view {
        const float *x; /* n rows of d features, row-major */
        const float *y; /* n targets: a value (regression) or a class index 0..K-1 stored as
                           float (classification); NULL for k-means */
        const float *w; /* n weights, finite and >= 0, or NULL for all 1 */
        size_t n;
        uint32_t d;
        const float *v; /* n rows of d per-feature variances of the rows each sample stands for
                           (condensed samples: the group's population variance), raw feature
                           units, >= 0 and finite; NULL = all 0 */
};

/* Bytes of training data a view keeps resident (x, y, w and v). A job's
 * peak_train_bytes is the largest view it held (the sum of views held at
 * once) plus model->work_bytes, the fit's own working memory: fits never
 * copy the data, they standardise it block by block. */
size_t train_view_bytes(const struct train_view *view);

/* Column means and population standard deviations from exact full-data
 * sums: mean = sum / count, sd = sqrt(sumsq / count - mean^2). Constant (or
 * numerically constant, or non-finite) columns get sd 1. ret_mean and ret_sd
 * are caller arrays of d doubles. 0 or DREAM_E_INVAL (count <= 0). */
int train_stats_from_sums(uint32_t d, long double count, const long double *sum,
                          const long double *sumsq, double *ret_mean, double *ret_sd);

/* What is being learnt, beside the rows. Borrowed during the fit only. */
struct train_problem {
        uint32_t d;            /* features per row */
        enum train_task task;  /* TRAIN_MLP only: regression or classification */
        uint32_t n_classes;    /* classification: K >= 2 (logistic: 2); 0 = max label + 1 of
                                  the first view */
        const double *classes; /* optional n_classes original target values, copied into the
                                  model for export; NULL = 0..K-1 */
        const double *mean;    /* optional d dataset column means ... */
        const double *sd;      /* ... and sds (> 0); both or neither. NULL = weighted
                                  statistics of the first view */
        double y_mean, y_sd;   /* optional target scale (mlp regression); y_sd <= 0 = from
                                  the first view */
        const struct train_view *valid; /* optional validation rows (raw units, y as in the
                                           training view, v NULL, w may be NULL): early
                                           stopping and the hyper-parameters chosen on it;
                                           NULL = none */
};

/* One layer: out = w * in + b, w is out x in row-major. */
struct train_layer {
        uint32_t in, out;
        double *w;
        double *b;
};

/* A fitted model. Owned by the caller (train_model_free); read-only.
 * Layers by kind:
 *   linear, ridge: 1 layer d -> 1 (coefficients, intercept)
 *   logistic:      1 layer d -> 1, P(class 1) = sigmoid(output)
 *   softmax:       1 layer d -> K, probabilities = softmax(output)
 *   mlp:           2 or 3 layers, ReLU between, head softmax (K) or identity (1) with the
 *                  prediction y_mean + y_sd * output
 *   kmeans:        1 layer d -> k, w = centres (standardised space), b = weight of each
 *                  cluster in the last Lloyd iteration */
struct train_model {
        enum train_kind kind;
        enum train_task task;
        uint32_t d;
        uint32_t n_classes; /* classification: K; otherwise 0 */
        struct train_params params;
        double *mean, *sd;   /* d each: standardisation (0 and 1 when not standardised) */
        double y_mean, y_sd; /* regression target scale (1 layer models: 0 and 1) */
        double *classes;     /* n_classes original target values, or NULL */
        uint32_t n_layers;
        struct train_layer layers[3];
        /* Facts about the fit (also serialised). */
        uint32_t epochs_run; /* epochs (or Lloyd iterations) completed */
        double loss;         /* last epoch's loss (see train_progress_fn) */
        uint64_t rows_used;  /* rows of the last epoch's view */
        uint64_t work_bytes; /* peak bytes of working memory of the fit beyond the views
                                (batches, activations, index, optimiser state) */
        uint32_t iterations; /* optimiser iterations (full-batch solvers) or epochs run */
        uint32_t converged;  /* 1 when the solver met its tolerance (closed forms: 1; MLP:
                                early stopping triggered; mini-batch Adam: 0) */
};

void train_model_free(struct train_model *model);
/* Width of the proba output of train_predict: K for classification, k for
 * k-means (one-hot), 0 for regression. */
uint32_t train_model_proba_width(const struct train_model *model);
/* k-means centre j in original feature units into ret_x (d doubles). */
int train_kmeans_centre(const struct train_model *model, uint32_t j, double *ret_x);

/* Called after each epoch (k-means: each Lloyd iteration; L-BFGS: each
 * iteration, counted over every value tried on validation rows, with epochs
 * the most iterations it may take, and once more with epochs = epoch when it
 * stops before them; closed forms: once)
 * with the 1-based epoch, the planned total and the epoch's loss: weighted
 * mean log-loss (classification), weighted MSE in target units
 * (regression) or inertia / total weight (k-means), without the L2 term.
 * Also called within an epoch with epoch 0 and loss NaN (a check only: no
 * epoch ended) once TRAIN_CHECK_SECONDS have passed since the last call, at
 * the end of a mini-batch or of a block of rows, so that a long epoch stops
 * soon after it is asked to. A non-zero return stops the fit with
 * DREAM_E_CANCELLED. */
typedef int (*train_progress_fn)(void *ctx, uint32_t epoch, uint32_t epochs, double loss);

#define TRAIN_CHECK_SECONDS                                                                        \
        0.05 /* most time between two progress calls, beyond one                                   \
                mini-batch or block of rows */

/* Rows drawn per epoch (the `refresh` mode). next_epoch is called before each
 * epoch (0-based) and fills *ret_view; the view's arrays must stay valid until
 * the next call or until the fit returns. A negative return aborts the fit
 * with that error. Closed forms and k-means ask for epoch 0 only. */
struct train_source {
        int (*next_epoch)(void *ctx, uint32_t epoch, struct train_view *ret_view);
        void *ctx;
};

/* Fit a model on one view (used for every epoch). progress may be NULL.
 * Errors: DREAM_E_INVAL (bad parameters, shapes, weights or labels),
 * DREAM_E_EMPTY (no rows or zero total weight), DREAM_E_RANGE (label out of
 * range), DREAM_E_NUMERIC (singular system, divergence), DREAM_E_CANCELLED,
 * DREAM_E_NOMEM, DREAM_E_LIMIT. */
int train_fit(enum train_kind kind, const struct train_params *params,
              const struct train_problem *problem, const struct train_view *view,
              train_progress_fn progress, void *progress_ctx, struct train_model **ret_model);
/* Same, drawing each epoch's rows from a source. */
int train_fit_source(enum train_kind kind, const struct train_params *params,
                     const struct train_problem *problem, const struct train_source *source,
                     train_progress_fn progress, void *progress_ctx,
                     struct train_model **ret_model);

/* Sufficient statistics of weighted least squares in raw feature units:
 * n = sum w, sum_x = sum w x, xx = sum w x x' (d x d row-major, symmetric,
 * both triangles), xy = sum w x y, sum_y = sum w y, sum_yy = sum w y^2.
 * Public so that the store can fill it from its own exact sums: get one from
 * train_suffstats_new (which owns and zeroes the arrays) and add into it.
 * Memory is O(d^2) whatever the row count. */
struct train_suffstats {
        uint32_t d;
        long double n;
        long double sum_y, sum_yy;
        long double *sum_x;  /* d */
        long double *sum_xx; /* d: sum w x^2 (the diagonal of xx, kept for standardisation) */
        long double *xx;     /* d * d */
        long double *xy;     /* d */
};

int train_suffstats_new(uint32_t d, struct train_suffstats **ret_stats);
void train_suffstats_free(struct train_suffstats *stats);
/* Add a view's rows (view->y required); with view->v, each sample adds
 * w v to the diagonal of xx and to sum_xx (the second moments of the rows it
 * stands for). On DREAM_E_INVAL (bad weight or variance) the statistics are
 * unchanged; on DREAM_E_NOMEM they are unchanged too. */
int train_suffstats_add(struct train_suffstats *stats, const struct train_view *view);
int train_suffstats_merge(struct train_suffstats *dst, const struct train_suffstats *src);
/* Fit linear or ridge from statistics alone; equals train_fit on the rows
 * the statistics were built from (to ~1e-9 relative). problem->mean/sd NULL
 * = the statistics' own means and sds. */
int train_fit_exact(enum train_kind kind, const struct train_params *params,
                    const struct train_problem *problem, const struct train_suffstats *stats,
                    train_progress_fn progress, void *progress_ctx, struct train_model **ret_model);

/* Predict n rows of model->d features (row-major). ret_value[i] is the
 * regression value, the class index or the cluster id; ret_proba (may be
 * NULL) receives n * train_model_proba_width() probabilities. Both are
 * caller arrays. */
int train_predict(const struct train_model *model, const float *x, size_t n, double *ret_value,
                  double *ret_proba);

/* Evaluation results; fields of other tasks are 0. */
struct train_metrics {
        enum train_task task;
        double weight;                      /* rows (total weight) evaluated */
        double rmse, mae, r2;               /* regression */
        double accuracy, macro_f1, logloss; /* classification */
        double inertia, msd;                /* k-means (standardised space): sum of w * squared
                                               distance to the nearest centre, and / weight */
};

/* Weighted metrics (w NULL = all 1) of predictions against targets.
 * Classification: predicted class = argmax of proba (n x k), labels are class
 * indices; macro-F1 averages the F1 of every class that occurs in the labels
 * or the predictions (as sklearn); log-loss clips p to [1e-15, 1]. */
int train_metrics_regression(const float *y, const double *pred, const float *w, size_t n,
                             struct train_metrics *ret_metrics);
int train_metrics_classification(const float *y, const double *proba, uint32_t k, const float *w,
                                 size_t n, struct train_metrics *ret_metrics);
/* Evaluate a model on a view (k-means: view->y is ignored). */
int train_evaluate(const struct train_model *model, const struct train_view *view,
                   struct train_metrics *ret_metrics);
/* Same, calling progress with epoch 0 and loss NaN as fits do within an
 * epoch (rows are predicted in blocks small enough for a wide model); a
 * non-zero return stops with DREAM_E_CANCELLED. */
int train_evaluate_progress(const struct train_model *model, const struct train_view *view,
                            train_progress_fn progress, void *progress_ctx,
                            struct train_metrics *ret_metrics);

/* Serialisation: versioned little-endian bytes with a checksum, for LMDB.
 * *ret_bytes is allocated with dm_malloc; the caller frees it with dm_free.
 * Decoding trusts nothing: every count is checked against the limits and
 * the remaining length before anything is allocated. Errors: DREAM_E_FORMAT
 * (magic, version), DREAM_E_TRUNCATED, DREAM_E_CHECKSUM, DREAM_E_CORRUPT,
 * DREAM_E_LIMIT, DREAM_E_NOMEM. */
#define TRAIN_MODEL_VERSION 2 /* written; versions 1 to it are read */
int train_model_to_bytes(const struct train_model *model, uint8_t **ret_bytes, size_t *ret_len);
int train_model_from_bytes(const void *bytes, size_t len, struct train_model **ret_model);
/* JSON export documented in train/MODEL_JSON.md. NUL-terminated, dm_malloc'd;
 * ret_len excludes the NUL. */
int train_model_to_json(const struct train_model *model, char **ret_json, size_t *ret_len);

/* Weighted RMSE and R^2 of a one-layer regression model (linear, ridge) on
 * the rows summarised by stats, computed from the sums alone (O(d^2)); mae
 * is NaN (it needs the rows). DREAM_E_INVAL for another model or d. */
int train_evaluate_suffstats(const struct train_model *model, const struct train_suffstats *stats,
                             struct train_metrics *ret_metrics);

/* Working memory of a fit, in bytes, before it starts: what train_fit
 * allocates for the kind and hyper-parameters (logistic and softmax: the
 * solver's; train_fit_source always fits them by Adam: ask with
 * TRAIN_SOLVER_ADAM) on d features, n_classes
 * outputs (classification; 0 for regression and k-means) and n_rows rows per
 * view (the mini-batch buffers hold min(batch, n_rows) rows). Equals
 * model->work_bytes of the fit plus the fitted model. The views' own bytes
 * (train_view_bytes) are the caller's. Sizes saturate at UINT64_MAX. */
struct train_mem {
        uint64_t weights;     /* numbers of the model (weights, biases, centres) */
        uint64_t model;       /* the fitted model (double) */
        uint64_t params;      /* float copies of the weights, gradients and Adam moments
                                 (nets; mlp with patience > 0: and of the best epoch's
                                 weights, which a fit without validation rows does not
                                 allocate), the L-BFGS vectors and history (double), centres
                                 and their sums (k-means), the normal matrices (closed forms) */
        uint64_t activations; /* mini-batch activations and deltas (nets), row blocks (L-BFGS:
                                 standardised rows, variances and outputs) */
        uint64_t rows;        /* per row of a view: the shuffled order (nets), the seeding
                                 distances (k-means) */
        uint64_t total;
};

/* 0, or DREAM_E_INVAL (unknown kind, bad hyper-parameters, d == 0). */
int train_mem_estimate(enum train_kind kind, const struct train_params *params, uint32_t d,
                       uint32_t n_classes, uint64_t n_rows, struct train_mem *ret_mem);

/* OpenBLAS threads for every later BLAS call of the process (n >= 1). */
void train_set_threads(int n);
int train_get_threads(void);

#endif
