/* Logistic and softmax regression by full-batch L-BFGS.
 *
 * Objective, in standardised units, with W the K x d weights (logistic: one
 * row, the binary case) and b the intercepts:
 *   f = sum_i w_i loss_i / sum_i w_i + l2 / 2 * |W|^2        (b unpenalised)
 * softmax: loss_i = LSE_k(z_ik + a / 2 * s_ik) - z_iy, z = W x_i + b,
 *          s_ik = sum_j v_ij W_kj^2 (v_i the row's variances / sd^2);
 * logistic: the same bound with a second class pinned at 0,
 *          loss_i = softplus(z_i + a / 2 * s_i) - y_i z_i.
 * With v = 0 both are the plain log-losses. The bound is the expected loss of
 * the rows a sample stands for, x ~ N(x_i, diag v_i), bounded by Jensen.
 * Gradients: dW = (P - Y)' diag(w) X + a ((diag(w) P)' V) o W, db = (P - Y)' w
 * (divided by sum w), P the probabilities of z + a s / 2.
 *
 * Rows are standardised block by block into float buffers and every product
 * is an SGEMM (two per block, four with variances); the block gradients are
 * summed in double, and the L-BFGS vectors (memory LBFGS_M) and the
 * backtracking Armijo line search (quadratic interpolation) are double.
 *
 * With problem->valid the hyper-parameters left at their defaults are chosen
 * on it by the weighted validation log-loss: first a in {1, 0.5, 0.25} (views
 * with variances) at the base l2, then l2 along {l2, 10 l2, 100 l2,
 * 1000 l2}, each fit warm-started from the previous one (a stronger l2
 * converges in fewer iterations: the path costs about 3 single fits).
 * Log-loss rather than accuracy: on a few thousand validation rows accuracy
 * moves in steps of 1 / rows and often ties between neighbouring values,
 * while the log-loss is smooth, is what the fit minimises, and punishes the
 * over-confidence that a too weak l2 or a too small a produces. */
#include "train/internal.h"

#include "common/alloc.h"
#include "common/err.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define LBFGS_M       10   /* correction pairs kept */
#define LBFGS_BLOCK   512  /* rows standardised at once */
#define LS_TRIES      40   /* line search steps before giving up */
#define ARMIJO_C1     1e-4 /* sufficient decrease */
#define N_A           3    /* variance weights tried */
#define N_L2          4    /* l2 values tried */
#define L2_GRID_RATIO 10.0 /* between two l2 values tried */

static const double a_grid[N_A] = {1.0, 0.5, 0.25};

struct lb {
        uint32_t d, K; /* K outputs: 1 (logistic) or the classes */
        int binary;
        size_t n_par; /* K * d + K */
        uint32_t block;
        float *xs, *vs;    /* block x d: standardised rows and variances */
        float *z, *s, *pw; /* block x K: outputs, variance terms, w * P */
        float *wf, *w2f;   /* K x d: weights and their squares */
        float *gf, *gvf;   /* K x d: block gradients */
        float *mean, *inv_sd, *inv_var;
        double *hs, *hy, *rho, *alpha; /* L-BFGS history */
        double *x, *g, *xn, *gn, *dir, *best;
        struct check ck;
        uint64_t bytes;
        uint64_t epoch, epochs; /* progress: iterations so far, planned */
        train_progress_fn progress;
        void *progress_ctx;
};

static void *lb_alloc(struct lb *L, size_t n, size_t size)
{
        void *p = dm_calloc(n ? n : 1, size);
        if (p)
                L->bytes += (uint64_t)n * size;
        return p;
}

/* Bytes of the working memory (also train_i_mem_lbfgs). */
static void lb_sizes(uint32_t d, uint32_t K, uint64_t n_rows, uint64_t *ret_params,
                     uint64_t *ret_act)
{
        uint64_t rows = n_rows < LBFGS_BLOCK ? n_rows : LBFGS_BLOCK;
        uint64_t n_par = sat_add(sat_mul(K, d), K);
        uint64_t floats = sat_add(sat_mul(4, sat_mul(K, d)), sat_mul(3, d));
        uint64_t doubles = sat_add(sat_mul(2 * LBFGS_M + 6, n_par), 2 * LBFGS_M);
        *ret_params = sat_add(sat_mul(floats, sizeof(float)), sat_mul(doubles, sizeof(double)));
        *ret_act = sat_mul(sat_mul(rows, sat_add(2 * (uint64_t)d, 3 * (uint64_t)K)), sizeof(float));
}

void train_i_mem_lbfgs(enum train_kind kind, uint32_t d, uint32_t n_classes, uint64_t n_rows,
                       struct train_mem *mem)
{
        uint32_t K = kind == TRAIN_LOGISTIC ? 1 : n_classes < 2 ? 2 : n_classes;
        mem->weights = sat_add(sat_mul(K, d), K);
        lb_sizes(d, K, n_rows, &mem->params, &mem->activations);
        mem->rows = 0;
}

static void lb_release(struct lb *L)
{
        void *p[] = {L->xs,  L->vs,   L->z,      L->s,       L->pw,  L->wf,  L->w2f, L->gf,
                     L->gvf, L->mean, L->inv_sd, L->inv_var, L->hs,  L->hy,  L->rho, L->alpha,
                     L->x,   L->g,    L->xn,     L->gn,      L->dir, L->best};
        for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
                dm_free(p[i]);
}

static int lb_init(struct lb *L, const struct train_model *m, size_t n_rows)
{
        uint32_t d = m->d, K = m->kind == TRAIN_LOGISTIC ? 1 : m->n_classes;
        size_t kd = (size_t)K * d, n_par = kd + K;

        memset(L, 0, sizeof(*L));
        L->d = d;
        L->K = K;
        L->binary = m->kind == TRAIN_LOGISTIC;
        L->n_par = n_par;
        L->block = (uint32_t)(n_rows < LBFGS_BLOCK ? n_rows : LBFGS_BLOCK);
        L->xs = lb_alloc(L, (size_t)L->block * d, sizeof(float));
        L->vs = lb_alloc(L, (size_t)L->block * d, sizeof(float));
        L->z = lb_alloc(L, (size_t)L->block * K, sizeof(float));
        L->s = lb_alloc(L, (size_t)L->block * K, sizeof(float));
        L->pw = lb_alloc(L, (size_t)L->block * K, sizeof(float));
        L->wf = lb_alloc(L, kd, sizeof(float));
        L->w2f = lb_alloc(L, kd, sizeof(float));
        L->gf = lb_alloc(L, kd, sizeof(float));
        L->gvf = lb_alloc(L, kd, sizeof(float));
        L->mean = lb_alloc(L, d, sizeof(float));
        L->inv_sd = lb_alloc(L, d, sizeof(float));
        L->inv_var = lb_alloc(L, d, sizeof(float));
        L->hs = lb_alloc(L, LBFGS_M * n_par, sizeof(double));
        L->hy = lb_alloc(L, LBFGS_M * n_par, sizeof(double));
        L->rho = lb_alloc(L, LBFGS_M, sizeof(double));
        L->alpha = lb_alloc(L, LBFGS_M, sizeof(double));
        L->x = lb_alloc(L, n_par, sizeof(double));
        L->g = lb_alloc(L, n_par, sizeof(double));
        L->xn = lb_alloc(L, n_par, sizeof(double));
        L->gn = lb_alloc(L, n_par, sizeof(double));
        L->dir = lb_alloc(L, n_par, sizeof(double));
        L->best = lb_alloc(L, n_par, sizeof(double));
        if (!L->xs || !L->vs || !L->z || !L->s || !L->pw || !L->wf || !L->w2f || !L->gf ||
            !L->gvf || !L->mean || !L->inv_sd || !L->inv_var || !L->hs || !L->hy || !L->rho ||
            !L->alpha || !L->x || !L->g || !L->xn || !L->gn || !L->dir || !L->best)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < d; j++) {
                double inv = 1.0 / m->sd[j];
                L->mean[j] = (float)m->mean[j];
                L->inv_sd[j] = (float)inv;
                L->inv_var[j] = (float)(inv * inv);
        }
        return 0;
}

struct eval {
        double f;    /* objective */
        double loss; /* weighted mean loss (the bound with variances), no l2 */
        double acc;  /* weighted accuracy of argmax z */
};

/* Objective at th (K x d weights then K biases) over a view; g (may be NULL)
 * receives the gradient. a = 0 or v NULL: no variance term. */
static int lb_eval(struct lb *L, const struct train_view *v, double a, double l2, const double *th,
                   double *g, struct eval *ret)
{
        uint32_t d = L->d, K = L->K;
        size_t kd = (size_t)K * d;
        const double *bias = th + kd;
        int var = v->v && a > 0;
        long double loss = 0, wsum = 0, hits = 0;
        uint64_t work = (uint64_t)kd * (var ? 4 : 2) + (uint64_t)d * 2;

        for (size_t c = 0; c < kd; c++) {
                L->wf[c] = (float)th[c];
                L->w2f[c] = (float)(th[c] * th[c]);
        }
        if (g)
                memset(g, 0, L->n_par * sizeof(double));
        for (size_t i0 = 0; i0 < v->n; i0 += L->block) {
                int rows = (int)(v->n - i0 < L->block ? v->n - i0 : L->block);
                for (int i = 0; i < rows; i++) {
                        size_t r = i0 + (size_t)i;
                        stdz_row(L->xs + (size_t)i * d, v->x + r * d, L->mean, L->inv_sd, d);
                        if (var) {
                                const float *vi = v->v + r * d;
                                float *o = L->vs + (size_t)i * d;
                                for (uint32_t j = 0; j < d; j++)
                                        o[j] = vi[j] * L->inv_var[j];
                        }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)K, (int)d, 1.0f,
                            L->xs, (int)d, L->wf, (int)d, 0.0f, L->z, (int)K);
                if (var)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)K, (int)d,
                                    1.0f, L->vs, (int)d, L->w2f, (int)d, 0.0f, L->s, (int)K);
                /* z becomes the delta w_i (P - Y), pw = w_i P. */
                for (int i = 0; i < rows; i++) {
                        size_t r = i0 + (size_t)i;
                        double wi = v->w ? v->w[r] : 1.0;
                        uint32_t y = (uint32_t)v->y[r];
                        float *zi = L->z + (size_t)i * K, *pwi = L->pw + (size_t)i * K;
                        const float *si = L->s + (size_t)i * K;
                        wsum += wi;
                        if (L->binary) {
                                double zz = zi[0] + bias[0];
                                double u = var ? zz + 0.5 * a * si[0] : zz;
                                double q = 1.0 / (1.0 + exp(-u));
                                loss += wi * ((u > 0 ? u : 0) + log1p(exp(-fabs(u))) - y * zz);
                                hits += (zz >= 0) == (y == 1) ? wi : 0;
                                zi[0] = (float)(wi * (q - y));
                                pwi[0] = (float)(wi * q);
                                continue;
                        }
                        double mx = -INFINITY, zy = zi[y] + bias[y], s = 0, zbest = -INFINITY;
                        uint32_t best = 0;
                        for (uint32_t k = 0; k < K; k++) {
                                double zz = zi[k] + bias[k];
                                if (zz > zbest) {
                                        zbest = zz;
                                        best = k;
                                }
                                double u = var ? zz + 0.5 * a * si[k] : zz;
                                pwi[k] = (float)u; /* scratch */
                                mx = u > mx ? u : mx;
                        }
                        for (uint32_t k = 0; k < K; k++)
                                s += exp(pwi[k] - mx);
                        /* s >= 1: the largest term is exp(0) */
                        // cppcheck-suppress invalidFunctionArg
                        loss += wi * (mx + log(s) - zy);
                        hits += best == y ? wi : 0;
                        for (uint32_t k = 0; k < K; k++) {
                                double p = exp(pwi[k] - mx) / s;
                                pwi[k] = (float)(wi * p);
                                zi[k] = (float)(wi * (p - (k == y)));
                        }
                }
                if (g) {
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)d, rows,
                                    1.0f, L->z, (int)K, L->xs, (int)d, 0.0f, L->gf, (int)d);
                        for (size_t c = 0; c < kd; c++)
                                g[c] += L->gf[c];
                        for (int i = 0; i < rows; i++)
                                for (uint32_t k = 0; k < K; k++)
                                        g[kd + k] += L->z[(size_t)i * K + k];
                        if (var) {
                                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)d,
                                            rows, 1.0f, L->pw, (int)K, L->vs, (int)d, 0.0f, L->gvf,
                                            (int)d);
                                for (size_t c = 0; c < kd; c++)
                                        g[c] += a * L->gvf[c] * th[c];
                        }
                }
                if (train_i_check_poll(&L->ck, sat_mul(work, (uint64_t)rows)))
                        return DREAM_E_CANCELLED;
        }
        if (!(wsum > 0))
                return DREAM_E_EMPTY;
        double ws = (double)wsum, reg = 0;
        for (size_t c = 0; c < kd; c++)
                reg += th[c] * th[c];
        ret->loss = (double)(loss / wsum);
        ret->f = ret->loss + 0.5 * l2 * reg;
        ret->acc = (double)(hits / wsum);
        if (g) {
                for (size_t c = 0; c < L->n_par; c++)
                        g[c] /= ws;
                for (size_t c = 0; c < kd; c++)
                        g[c] += l2 * th[c];
        }
        return isfinite(ret->f) ? 0 : DREAM_E_NUMERIC;
}

static double dot(const double *a, const double *b, size_t n)
{
        double s = 0;
        for (size_t i = 0; i < n; i++)
                s += a[i] * b[i];
        return s;
}

static double amax(const double *a, size_t n)
{
        double s = 0;
        for (size_t i = 0; i < n; i++)
                s = fabs(a[i]) > s ? fabs(a[i]) : s;
        return s;
}

struct run {
        uint32_t iterations;
        int converged;
        double loss;
};

/* Minimise from L->x (warm start) for at most maxit iterations, until
 * max |g| <= tol * *gscale. *gscale 0: set from the first gradient (the
 * start at 0, where the gradient depends on neither l2 nor a). */
static int lb_minimise(struct lb *L, const struct train_view *v, double a, double l2,
                       uint32_t maxit, double tol, double *gscale, struct run *ret)
{
        size_t n = L->n_par;
        uint32_t hist = 0, head = 0; /* pairs kept, next slot */
        struct eval e, en;
        int r;

        memset(ret, 0, sizeof(*ret));
        r = lb_eval(L, v, a, l2, L->x, L->g, &e);
        if (r < 0)
                return r;
        ret->loss = e.loss;
        if (!(*gscale > 0)) {
                *gscale = amax(L->g, n);
                if (!(*gscale > 0))
                        *gscale = 1;
        }
        double gtol = tol * *gscale;
        for (uint32_t it = 0; it < maxit; it++) {
                if (amax(L->g, n) <= gtol) {
                        ret->converged = 1;
                        break;
                }
                /* Two-loop recursion: dir = -H g. */
                for (size_t c = 0; c < n; c++)
                        L->dir[c] = -L->g[c];
                for (uint32_t h = 0; h < hist; h++) {
                        uint32_t k = (head + LBFGS_M - 1 - h) % LBFGS_M;
                        L->alpha[k] = L->rho[k] * dot(L->hs + k * n, L->dir, n);
                        for (size_t c = 0; c < n; c++)
                                L->dir[c] -= L->alpha[k] * L->hy[k * n + c];
                }
                double step = 1.0;
                if (hist > 0) {
                        uint32_t k = (head + LBFGS_M - 1) % LBFGS_M;
                        double yy = dot(L->hy + k * n, L->hy + k * n, n);
                        double gamma = 1.0 / (L->rho[k] * yy);
                        for (size_t c = 0; c < n; c++)
                                L->dir[c] *= gamma;
                } else {
                        double gn = sqrt(dot(L->g, L->g, n));
                        step = gn > 1 ? 1.0 / gn : 1.0;
                }
                for (uint32_t h = hist; h-- > 0;) {
                        uint32_t k = (head + LBFGS_M - 1 - h) % LBFGS_M;
                        double beta = L->rho[k] * dot(L->hy + k * n, L->dir, n);
                        for (size_t c = 0; c < n; c++)
                                L->dir[c] += (L->alpha[k] - beta) * L->hs[k * n + c];
                }
                double gd = dot(L->g, L->dir, n);
                if (!(gd < 0)) { /* not a descent direction: restart from the gradient */
                        hist = 0;
                        for (size_t c = 0; c < n; c++)
                                L->dir[c] = -L->g[c];
                        gd = -dot(L->g, L->g, n);
                        double gn = sqrt(-gd);
                        step = gn > 1 ? 1.0 / gn : 1.0;
                }
                /* Backtracking Armijo with quadratic interpolation. */
                int ok = 0;
                for (int t = 0; t < LS_TRIES; t++) {
                        for (size_t c = 0; c < n; c++)
                                L->xn[c] = L->x[c] + step * L->dir[c];
                        r = lb_eval(L, v, a, l2, L->xn, L->gn, &en);
                        if (r == DREAM_E_NUMERIC) {
                                step *= 0.1;
                                continue;
                        }
                        if (r < 0)
                                return r;
                        if (en.f <= e.f + ARMIJO_C1 * step * gd) {
                                ok = 1;
                                break;
                        }
                        double q = -gd * step * step / (2 * (en.f - e.f - gd * step));
                        step = q > 0.1 * step && q < 0.5 * step ? q
                               : q <= 0.1 * step                ? 0.1 * step
                                                                : 0.5 * step;
                }
                if (!ok)
                        break; /* no decrease left at float precision: keep x */
                /* The pair (s, y); skipped unless the curvature is positive. */
                double *hs = L->hs + (size_t)head * n, *hy = L->hy + (size_t)head * n;
                for (size_t c = 0; c < n; c++) {
                        hs[c] = L->xn[c] - L->x[c];
                        hy[c] = L->gn[c] - L->g[c];
                }
                double sy = dot(hs, hy, n);
                if (sy > 1e-12 * sqrt(dot(hs, hs, n) * dot(hy, hy, n)) && sy > 0) {
                        L->rho[head] = 1.0 / sy;
                        head = (head + 1) % LBFGS_M;
                        if (hist < LBFGS_M)
                                hist++;
                }
                memcpy(L->x, L->xn, n * sizeof(double));
                memcpy(L->g, L->gn, n * sizeof(double));
                e = en;
                ret->iterations = it + 1;
                ret->loss = e.loss;
                L->epoch++;
                if (L->progress &&
                    L->progress(
                        L->progress_ctx, (uint32_t)(L->epoch < UINT32_MAX ? L->epoch : UINT32_MAX),
                        (uint32_t)(L->epochs < UINT32_MAX ? L->epochs : UINT32_MAX), e.loss))
                        return DREAM_E_CANCELLED;
        }
        if (!ret->converged && amax(L->g, n) <= gtol)
                ret->converged = 1;
        return 0;
}

static int check_view_labels(const struct train_view *v, uint32_t d, uint32_t n_classes)
{
        double ws;
        int r = train_i_view_check(v, d, 1, &ws);
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n; i++) {
                float y = v->y[i];
                if (!(y >= 0) || !(y < (float)n_classes) || y != floorf(y))
                        return DREAM_E_RANGE;
        }
        if (v->v) {
                size_t cells = v->n * (size_t)d;
                for (size_t c = 0; c < cells; c++)
                        if (!isfinite(v->v[c]) || v->v[c] < 0)
                                return DREAM_E_INVAL;
        }
        return 0;
}

/* The candidates of a fit: the best so far and the work done. */
struct search {
        const struct train_view *v, *valid;
        uint32_t maxit;
        double tol, gscale;
        double best_score; /* validation log-loss */
        struct run best_run;
        uint32_t total_it;
};

/* Fit from L->x at (a, l2); 1 when it is the best so far (then in L->best),
 * 0 when not, or an error. Without validation rows every fit is the best. */
static int try_fit(struct lb *L, struct search *S, double a, double l2)
{
        struct run run;
        struct eval ev = {.loss = 0};
        int r = lb_minimise(L, S->v, S->v->v ? a : 0, l2, S->maxit, S->tol, &S->gscale, &run);
        if (r < 0)
                return r;
        S->total_it += run.iterations;
        if (S->valid) {
                r = lb_eval(L, S->valid, 0, 0, L->x, NULL, &ev);
                if (r < 0)
                        return r;
        }
        if (!(ev.loss < S->best_score))
                return 0;
        S->best_score = ev.loss;
        S->best_run = run;
        memcpy(L->best, L->x, L->n_par * sizeof(double));
        return 1;
}

int train_i_fit_lbfgs(struct train_model *m, const struct train_problem *pb,
                      const struct train_view *v, train_progress_fn progress, void *progress_ctx)
{
        struct train_params *p = &m->params;
        /* No validation rows: as if none were given. */
        const struct train_view *valid = pb->valid && pb->valid->n ? pb->valid : NULL;
        struct train_params def;
        struct lb L;
        struct run best_run;
        uint32_t maxit = p->lbfgs_iter ? p->lbfgs_iter : TRAIN_LBFGS_ITER;
        double tol = p->lbfgs_tol > 0 ? p->lbfgs_tol : TRAIN_LBFGS_TOL;
        double l2 = p->l2, a = p->var_scale > 0 ? p->var_scale : 1.0;
        uint32_t total_it;
        int choose_a, choose_l2, r;

        r = check_view_labels(v, m->d, m->n_classes);
        if (r < 0)
                return r;
        if (valid) {
                if (valid->v)
                        return DREAM_E_INVAL;
                r = check_view_labels(valid, m->d, m->n_classes);
                if (r < 0)
                        return r;
        }
        train_params_default(m->kind, &def);
        choose_a = valid && v->v && !(p->var_scale > 0);
        choose_l2 = valid && !p->l2_fixed && p->l2 == def.l2 && p->l2 > 0;

        r = lb_init(&L, m, v->n);
        if (r < 0)
                goto out_release;
        train_i_check_init(&L.ck, progress, progress_ctx);
        L.progress = progress;
        L.progress_ctx = progress_ctx;
        L.epochs = (uint64_t)maxit * ((choose_a ? N_A : 1) + (choose_l2 ? N_L2 - 1 : 0));

        /* Every candidate warm-starts from the previous one; the best by
         * validation log-loss (or the only one) is kept in L.best. */
        struct search S = {
            .v = v, .valid = valid, .maxit = maxit, .tol = tol, .best_score = INFINITY};
        uint32_t na = choose_a ? N_A : 1, nl = choose_l2 ? N_L2 : 1;
        double best_a = a, best_l2 = l2;
        for (uint32_t ia = 0; ia < na; ia++) {
                double ca = choose_a ? a_grid[ia] : a;
                r = try_fit(&L, &S, ca, l2);
                if (r < 0)
                        goto out_release;
                if (r == 1)
                        best_a = ca;
        }
        a = best_a;
        memcpy(L.x, L.best, L.n_par * sizeof(double));
        for (uint32_t il = 1; il < nl; il++) {
                double cl = l2 * pow(L2_GRID_RATIO, il);
                r = try_fit(&L, &S, a, cl);
                if (r < 0)
                        goto out_release;
                if (r == 1)
                        best_l2 = cl;
        }
        l2 = best_l2;
        best_run = S.best_run;
        total_it = S.total_it;

        p->solver = TRAIN_SOLVER_LBFGS;
        p->lbfgs_iter = maxit;
        p->lbfgs_tol = tol;
        p->l2 = l2;
        p->var_scale = v->v ? a : p->var_scale; /* a is used with variances only */
        m->iterations = total_it;
        m->epochs_run = total_it;
        m->converged = (uint32_t)best_run.converged;
        m->loss = best_run.loss;
        m->rows_used = v->n;
        m->work_bytes = L.bytes;
        if (!isfinite(m->loss)) {
                r = DREAM_E_NUMERIC;
                goto out_release;
        }
        /* Stopped before the most: a last call says the fit is complete. */
        if (progress && total_it > 0 && total_it < L.epochs &&
            progress(progress_ctx, total_it, total_it, m->loss)) {
                r = DREAM_E_CANCELLED;
                goto out_release;
        }
        r = train_i_model_layer_alloc(m, 0, m->d, L.K);
        if (r < 0)
                goto out_release;
        memcpy(m->layers[0].w, L.best, (size_t)L.K * m->d * sizeof(double));
        memcpy(m->layers[0].b, L.best + (size_t)L.K * m->d, L.K * sizeof(double));
        r = 0;
out_release:
        lb_release(&L);
        return r;
}

int train_i_lbfgs_objective(const struct train_model *m, const struct train_view *v, double a,
                            double l2, const double *theta, double *ret_f, double *ret_grad)
{
        struct lb L;
        struct eval e;
        int r = lb_init(&L, m, v->n);
        if (r == 0) {
                train_i_check_init(&L.ck, NULL, NULL);
                r = lb_eval(&L, v, a, l2, theta, ret_grad, &e);
        }
        if (r == 0)
                *ret_f = e.f;
        lb_release(&L);
        return r;
}
