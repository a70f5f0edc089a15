/* Internals shared by the files of train/. Not installed, not for callers.
 * Functions shared between files carry the train_i_ prefix; the static
 * inline helpers below are local to each file that includes this. */
#ifndef DREAM_TRAIN_INTERNAL_H
#define DREAM_TRAIN_INTERNAL_H

#include "train/train.h"

#include <math.h>
#include <stdint.h>

/* xoshiro256** seeded with splitmix64. */
struct rng {
        uint64_t s[4];
};

static inline uint64_t rng_splitmix(uint64_t *x)
{
        uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static inline void rng_seed(struct rng *r, uint64_t seed)
{
        for (int i = 0; i < 4; i++)
                r->s[i] = rng_splitmix(&seed);
}

static inline uint64_t rng_rotl(uint64_t x, int k)
{
        return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
        uint64_t *s = r->s;
        uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
        uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rng_rotl(s[3], 45);
        return result;
}

/* Size arithmetic that saturates at UINT64_MAX (memory estimates). */
static inline uint64_t sat_mul(uint64_t a, uint64_t b)
{
        uint64_t r;
        return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
        uint64_t r;
        return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Uniform in [0, 1). */
static inline double rng_unit(struct rng *r)
{
        return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0 (Lemire's multiply, bias < 2^-64 * n). */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
        return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* a = (x - mean) * inv_sd over d floats (vectorisable: no aliasing). */
static inline void stdz_row(float *restrict a, const float *restrict x, const float *restrict mean,
                            const float *restrict inv_sd, uint32_t d)
{
        for (uint32_t j = 0; j < d; j++)
                a[j] = (x[j] - mean[j]) * inv_sd[j];
}

/* Ask for the cache lines of a row about to be read. */
static inline void prefetch_row(const float *x, uint32_t d)
{
        const char *p = (const char *)x, *end = (const char *)(x + d);
        for (; p < end; p += 64)
                __builtin_prefetch(p, 0, 0);
}

/* Calls of progress within an epoch (see train_progress_fn): poll with the
 * work done since the last poll (multiply-adds, roughly); the clock is read
 * once enough work has been done, the callback once TRAIN_CHECK_SECONDS have
 * passed. */
struct check {
        train_progress_fn fn;
        void *ctx;
        double next;   /* monotonic seconds */
        uint64_t work; /* since the clock was last read */
};

void train_i_check_init(struct check *c, train_progress_fn fn, void *ctx);
/* Non-zero: the caller asked to stop. */
int train_i_check_poll(struct check *c, uint64_t work);

/* Allocate an empty model of a kind with d features and the standardisation
 * arrays (mean 0, sd 1). */
int train_i_model_alloc(enum train_kind kind, uint32_t d, struct train_model **ret_model);
/* Allocate layer i of in x out, zeroed. */
int train_i_model_layer_alloc(struct train_model *m, uint32_t i, uint32_t in, uint32_t out);

/* Fill m->mean/m->sd: from the problem, or weighted statistics of the view
 * (of the rows its samples stand for: the variance adds the weighted mean of
 * view->v), or 0/1 when params.standardize is 0. */
int train_i_model_set_standardisation(struct train_model *m, const struct train_problem *problem,
                                      const struct train_view *view);

/* Check a view's shape against d, its weights, and (needs_y) that y is given.
 * Returns DREAM_E_INVAL / DREAM_E_EMPTY. ret_wsum = total weight. */
int train_i_view_check(const struct train_view *v, uint32_t d, int needs_y, double *ret_wsum);

int train_i_fit_closed(struct train_model *m, const struct train_view *v,
                       train_progress_fn progress, void *progress_ctx);
int train_i_fit_net(struct train_model *m, const struct train_problem *problem,
                    const struct train_source *src, const struct train_view *first,
                    train_progress_fn progress, void *progress_ctx);
/* Logistic and softmax by full-batch L-BFGS on one view (train/lbfgs.c). */
int train_i_fit_lbfgs(struct train_model *m, const struct train_problem *problem,
                      const struct train_view *v, train_progress_fn progress, void *progress_ctx);
/* The L-BFGS objective (l2 included) and its gradient (may be NULL) at
 * theta (K x d weights then K biases; logistic K = 1) with variance weight a,
 * standardised by m (kind, d, n_classes, mean, sd). For tests. */
int train_i_lbfgs_objective(const struct train_model *m, const struct train_view *v, double a,
                            double l2, const double *theta, double *ret_f, double *ret_grad);
int train_i_fit_kmeans(struct train_model *m, const struct train_view *v,
                       train_progress_fn progress, void *progress_ctx);
/* Working memory of each fit (train_mem_estimate). */
void train_i_mem_closed(uint32_t d, struct train_mem *mem);
int train_i_mem_net(enum train_kind kind, const struct train_params *p, uint32_t d,
                    uint32_t n_classes, uint64_t n_rows, struct train_mem *mem);
void train_i_mem_lbfgs(enum train_kind kind, uint32_t d, uint32_t n_classes, uint64_t n_rows,
                       struct train_mem *mem);
void train_i_mem_kmeans(const struct train_params *p, uint32_t d, uint64_t n_rows,
                        struct train_mem *mem);

/* Predict for nets (1 layer linear/logistic/softmax and mlp) and k-means. */
int train_i_predict_net(const struct train_model *m, const float *x, size_t n, double *ret_value,
                        double *ret_proba);
int train_i_predict_kmeans(const struct train_model *m, const float *x, size_t n, double *ret_value,
                           double *ret_proba, double *ret_sqdist);

/* Finite check over a model's numbers. */
int train_i_model_finite(const struct train_model *m);

#endif
