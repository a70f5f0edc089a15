/* Benchmark of the training data modes on one data file written by
 * make_data.py: full, condensed (gd_condense of storage/gd), sample (a uniform
 * random subset of the condensed set's size), stratified (a systematic
 * sample of as many real rows over the condensed grouping's strata, see
 * run_stratified) and refresh (each epoch a fresh random share of every
 * class) at each budget, one model, one run, with the
 * ratios to full. Not a test: prints figures.
 *
 *   bench_modes MODEL TRAIN.bin [TEST.bin] [--epochs E] [--batch B] [--lr X]
 *               [--l2 X] [--hidden H] [--k K] [--max-iter N] [--threads T]
 *               [--task reg|class] [--budgets 0.1,0.01] [--reps R] [--full-reps F]
 *               [--seed S]
 *               [--modes full,condensed,sample,stratified,refresh] [--cond SPEC]...
 *               [--solver lbfgs|adam] [--lbfgs-iter N] [--lbfgs-tol X] [--valid VALID.bin]
 *               [--var-scale A] [--l2-fixed 0|1] [--var 0|1]
 *               [--name NAME] [--json] [--patience N] [--valid-file VALID.bin (= --valid)]
 *
 * SPEC chooses gd_condense_opts for one `condensed` row (repeat --cond to
 * compare variants in the same run): comma-separated order=msb|entropy,
 * fill=default|none|split, refine=N (-1 = none, 0 = default); "default"
 * is the zero-initialised options.
 *
 * Every mode standardises with the full data's mean and sd (train_problem),
 * so modes differ only in their rows. The sampled and refreshed rows get
 * weight n / m (total weight n, as the condensed weights), which matters for
 * ridge only. Seconds are process CPU seconds of one thread (the machine may
 * be shared; wall seconds are printed too). Sample, refresh and condensed
 * with a seeded model are run --reps times with seeds S, S+1, ...; their
 * metric is the mean (min..max in the JSON). Full mode runs once (seed S),
 * or --full-reps times for a seeded model (k-means, whose k-means++ seeding
 * decides between local optima).
 *
 * Without TEST.bin the training file is the evaluation set (k-means).
 *
 * --valid VALID.bin gives every fit validation rows (problem->valid: the
 * L-BFGS fits choose l2, and with --var the variance weight, on them); keep
 * them out of TRAIN.bin. --var 1 gives the condensed samples their groups'
 * variances as gd_condense computes them (view->v). The table's last
 * columns are the l2 and a used by the last fit and its iterations.
 */
#include "bench/train/data.h"
#include "common/alloc.h"
#include "common/err.h"
#include "storage/gd/gd.h"
#include "train/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64 */
static uint64_t rnd(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
        return (uint64_t)(((unsigned __int128)rnd(s) * n) >> 64);
}

/* ---- the data as a gd_table --------------------------------------------- */

/* Smallest decimal scale 0..6 at which every value of the column reads back
 * as the same float; else 7 significant digits of the largest magnitude
 * (quantised: the bench's tables of generated floats). */
static uint8_t column_scale(const struct bench_data *dt, uint32_t j, int *ret_exact)
{
        double maxabs = 0;
        for (size_t i = 0; i < dt->n; i++) {
                double a = fabs((double)dt->x[i * dt->d + j]);
                if (a > maxabs)
                        maxabs = a;
        }
        for (uint8_t s = 0; s <= 6; s++) {
                double p = (double)gd_pow10[s];
                if (maxabs * p > 1e15)
                        break;
                size_t i;
                for (i = 0; i < dt->n; i++) {
                        float x = dt->x[i * dt->d + j];
                        if ((float)(round((double)x * p) / p) != x)
                                break;
                }
                if (i == dt->n) {
                        *ret_exact = 1;
                        return s;
                }
        }
        *ret_exact = 0;
        int s = 7 - (int)ceil(log10(maxabs > 1e-30 ? maxabs : 1));
        return (uint8_t)(s < 0 ? 0 : s > 9 ? 9 : s);
}

static int make_table(const struct bench_data *dt, enum train_task task, struct gd_table **ret,
                      uint32_t *ret_quantised)
{
        const int with_target = task != TRAIN_TASK_CLUSTERING;
        struct gd_table *t;
        uint32_t quantised = 0;
        int r = gd_table_new(dt->n, dt->d + (with_target ? 1 : 0), &t);
        if (r < 0)
                return r;
        for (uint32_t j = 0; j < dt->d; j++) {
                int exact;
                uint8_t s = column_scale(dt, j, &exact);
                double p = (double)gd_pow10[s];
                quantised += !exact;
                t->cols[j].kind = s ? GD_DEC : GD_INT;
                t->cols[j].scale = s;
                for (size_t i = 0; i < dt->n; i++)
                        t->cols[j].v[i] = llround((double)dt->x[i * dt->d + j] * p);
        }
        if (with_target) {
                struct gd_col *c = &t->cols[dt->d];
                t->target = (int32_t)dt->d;
                if (task == TRAIN_TASK_CLASSIFICATION) {
                        t->task = GD_TASK_CLASSIFICATION;
                        c->kind = GD_INT;
                        for (size_t i = 0; i < dt->n; i++)
                                c->v[i] = (int64_t)dt->y[i];
                } else {
                        t->task = GD_TASK_REGRESSION;
                        c->kind = GD_F64;
                        for (size_t i = 0; i < dt->n; i++)
                                c->v[i] = gd_f64_to_key((double)dt->y[i]);
                }
        }
        *ret = t;
        *ret_quantised = quantised;
        return 0;
}

/* ---- modes ------------------------------------------------------------- */

struct ctx {
        enum train_kind kind;
        struct train_params params;
        struct train_problem pb;
        const struct bench_data *tr, *ev;
        enum train_task task;
        uint32_t n_classes;
        size_t *class_start; /* rows of each class: idx[class_start[c] .. class_start[c+1]) */
        size_t *class_idx;
        int var; /* condensed: give the fit each group's per-feature variance */
};

struct result {
        char mode[64];
        double budget;
        uint64_t rows_used;
        double prep_cpu, train_cpu, train_wall;
        uint64_t peak_bytes;
        double metric, metric_min, metric_max;
        uint32_t reps;
        int ok;
        double l2, var_scale; /* the last fit's values used (chosen on --valid rows) */
        uint32_t iterations;  /* the last fit's */
};

static double metric_of(const struct ctx *cx, const struct train_model *m)
{
        struct train_metrics mt = {0};
        struct train_view tv = {cx->ev->x, cx->task == TRAIN_TASK_CLUSTERING ? NULL : cx->ev->y,
                                NULL,      cx->ev->n,
                                cx->ev->d, NULL};
        if (train_evaluate(m, &tv, &mt) < 0)
                return NAN;
        switch (cx->task) {
        case TRAIN_TASK_REGRESSION:
                return mt.rmse;
        case TRAIN_TASK_CLASSIFICATION:
                return mt.accuracy;
        default:
                return mt.msd;
        }
}

static const char *metric_name(enum train_task t)
{
        return t == TRAIN_TASK_REGRESSION       ? "rmse"
               : t == TRAIN_TASK_CLASSIFICATION ? "accuracy"
                                                : "msd";
}

/* Fit on one view and fill the timing, memory and metric of one repetition. */
static int fit_view(const struct ctx *cx, uint64_t seed, const struct train_view *v,
                    struct result *res, double *ret_metric)
{
        struct train_params p = cx->params;
        struct train_model *m = NULL;
        p.seed = seed;
        double w0 = bench_now(), c0 = cpu();
        int r = train_fit(cx->kind, &p, &cx->pb, v, NULL, NULL, &m);
        double w1 = bench_now(), c1 = cpu();
        if (r < 0) {
                fprintf(stderr, "bench_modes: %s: fit failed: %s\n", res->mode, dream_strerror(r));
                return r;
        }
        res->train_cpu += c1 - c0;
        res->train_wall += w1 - w0;
        uint64_t peak = train_view_bytes(v) + m->work_bytes;
        if (peak > res->peak_bytes)
                res->peak_bytes = peak;
        res->rows_used = v->n;
        res->l2 = m->params.l2;
        res->var_scale = v->v ? m->params.var_scale : 0;
        res->iterations = m->iterations;
        *ret_metric = metric_of(cx, m);
        train_model_free(m);
        return 0;
}

static void add_metric(struct result *res, double v)
{
        if (res->reps == 0 || v < res->metric_min)
                res->metric_min = v;
        if (res->reps == 0 || v > res->metric_max)
                res->metric_max = v;
        res->metric += v;
        res->reps++;
}

static void finish(struct result *res)
{
        if (res->reps) {
                res->metric /= res->reps;
                res->prep_cpu /= res->reps;
                res->train_cpu /= res->reps;
                res->train_wall /= res->reps;
                res->ok = 1;
        }
}

/* Fit on m drawn rows (bx, by, bw) and add the repetition's metric. */
static int fit_rows(const struct ctx *cx, uint64_t seed, const float *bx, const float *by,
                    const float *bw, size_t m, struct result *res)
{
        double metric;
        struct train_view v = {bx,  cx->task == TRAIN_TASK_CLUSTERING ? NULL : by, bw, m, cx->tr->d,
                               NULL};
        int r = fit_view(cx, seed, &v, res, &metric);
        if (r == 0)
                add_metric(res, metric);
        return r;
}

/* Rows per class for m rows (largest remainders, at least 1 per class). */
static void class_shares(const struct ctx *cx, size_t m, size_t *ret)
{
        size_t given = 0, n = cx->tr->n, k = cx->n_classes;
        double *frac = dm_calloc(k, sizeof(double));
        for (size_t c = 0; c < k; c++) {
                size_t sz = cx->class_start[c + 1] - cx->class_start[c];
                double e = (double)m * (double)sz / (double)n;
                ret[c] = (size_t)floor(e);
                if (ret[c] < 1 && sz)
                        ret[c] = 1;
                if (ret[c] > sz)
                        ret[c] = sz;
                frac[c] = e - floor(e);
                given += ret[c];
        }
        while (given < m) {
                size_t best = k;
                for (size_t c = 0; c < k; c++) {
                        size_t sz = cx->class_start[c + 1] - cx->class_start[c];
                        if (ret[c] < sz && (best == k || frac[c] > frac[best]))
                                best = c;
                }
                if (best == k)
                        break;
                ret[best]++;
                frac[best] = -1;
                given++;
        }
        dm_free(frac);
}

/* Draw m distinct rows of [0, n) (partial Fisher-Yates on a scratch copy of
 * `pool`) and gather them into bx/by with weight `weight`. */
static void draw(const struct bench_data *tr, const size_t *pool, size_t n_pool, size_t m,
                 size_t *scratch, uint64_t *rs, float *bx, float *by, float *bw, float weight)
{
        memcpy(scratch, pool, n_pool * sizeof(size_t));
        for (size_t i = 0; i < m; i++) {
                size_t j = i + (size_t)rnd_below(rs, n_pool - i);
                size_t t = scratch[i];
                scratch[i] = scratch[j];
                scratch[j] = t;
                memcpy(bx + i * tr->d, tr->x + scratch[i] * tr->d, tr->d * sizeof(float));
                by[i] = tr->y[scratch[i]];
                bw[i] = weight;
        }
}

struct refresh_src {
        const struct ctx *cx;
        size_t m;
        size_t *shares, *scratch;
        float *bx, *by, *bw;
        uint64_t rs;
        double draw_cpu;
};

static int refresh_next(void *ctxp, uint32_t epoch, struct train_view *ret)
{
        struct refresh_src *s = ctxp;
        const struct ctx *cx = s->cx;
        const struct bench_data *tr = cx->tr;
        double c0 = cpu();
        size_t at = 0;
        (void)epoch;
        for (uint32_t c = 0; c < cx->n_classes; c++) {
                size_t sz = cx->class_start[c + 1] - cx->class_start[c];
                if (!s->shares[c])
                        continue;
                draw(tr, cx->class_idx + cx->class_start[c], sz, s->shares[c], s->scratch, &s->rs,
                     s->bx + at * tr->d, s->by + at, s->bw + at,
                     (float)((double)sz / (double)s->shares[c]));
                at += s->shares[c];
        }
        *ret = (struct train_view){
            s->bx, cx->task == TRAIN_TASK_CLUSTERING ? NULL : s->by, s->bw, at, tr->d, NULL};
        s->draw_cpu += cpu() - c0;
        return 0;
}

static int run_sample(const struct ctx *cx, size_t m, uint32_t reps, uint64_t seed,
                      struct result *res)
{
        const struct bench_data *tr = cx->tr;
        float *bx = dm_mallocarray(m * tr->d, sizeof(float));
        float *by = dm_mallocarray(m, sizeof(float)), *bw = dm_mallocarray(m, sizeof(float));
        size_t *scratch = dm_mallocarray(tr->n, sizeof(size_t));
        int r = DREAM_E_NOMEM;
        if (!bx || !by || !bw || !scratch)
                goto out;
        for (uint32_t k = 0; k < reps; k++) {
                uint64_t rs = seed + 1000003ull * (k + 1);
                double c0 = cpu();
                draw(tr, cx->class_idx, tr->n, m, scratch, &rs, bx, by, bw,
                     (float)((double)tr->n / (double)m));
                res->prep_cpu += cpu() - c0;
                r = fit_rows(cx, seed + k, bx, by, bw, m, res);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        dm_free(bx);
        dm_free(by);
        dm_free(bw);
        dm_free(scratch);
        return r;
}

static int run_refresh(const struct ctx *cx, size_t m, uint32_t reps, uint64_t seed,
                       struct result *res)
{
        const struct bench_data *tr = cx->tr;
        struct refresh_src s = {.cx = cx};
        s.shares = dm_calloc(cx->n_classes, sizeof(size_t));
        s.scratch = dm_mallocarray(tr->n, sizeof(size_t));
        s.bx = dm_mallocarray(m * tr->d, sizeof(float));
        s.by = dm_mallocarray(m, sizeof(float));
        s.bw = dm_mallocarray(m, sizeof(float));
        int r = DREAM_E_NOMEM;
        if (!s.shares || !s.scratch || !s.bx || !s.by || !s.bw)
                goto out;
        class_shares(cx, m, s.shares);
        for (uint32_t k = 0; k < reps; k++) {
                struct train_params p = cx->params;
                struct train_model *mod = NULL;
                struct train_source src = {refresh_next, &s};
                p.seed = seed + k;
                s.rs = seed + 7777777ull * (k + 1);
                s.draw_cpu = 0;
                double w0 = bench_now(), c0 = cpu();
                r = train_fit_source(cx->kind, &p, &cx->pb, &src, NULL, NULL, &mod);
                double w1 = bench_now(), c1 = cpu();
                if (r < 0) {
                        fprintf(stderr, "bench_modes: refresh: fit failed: %s\n",
                                dream_strerror(r));
                        goto out;
                }
                struct train_view v = {s.bx, s.by, s.bw, mod->rows_used, tr->d, NULL};
                uint64_t peak = train_view_bytes(&v) + mod->work_bytes;
                if (peak > res->peak_bytes)
                        res->peak_bytes = peak;
                res->rows_used = mod->rows_used;
                res->l2 = mod->params.l2;
                res->iterations = mod->iterations;
                res->prep_cpu += s.draw_cpu;
                res->train_cpu += c1 - c0 - s.draw_cpu;
                res->train_wall += w1 - w0 - s.draw_cpu;
                add_metric(res, metric_of(cx, mod));
                train_model_free(mod);
        }
        r = 0;
out:
        dm_free(s.shares);
        dm_free(s.scratch);
        dm_free(s.bx);
        dm_free(s.by);
        dm_free(s.bw);
        return r;
}

static int parse_spec(const char *spec, struct gd_condense_opts *o)
{
        char buf[256], *save = NULL;
        if (strlen(spec) >= sizeof(buf))
                return -1;
        strcpy(buf, spec);
        if (strcmp(buf, "default") == 0)
                return 0;
        for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                if (!eq)
                        return -1;
                *eq++ = 0;
                if (strcmp(kv, "order") == 0) {
                        if (strcmp(eq, "msb") == 0)
                                o->order = GD_ORDER_MSB;
                        else if (strcmp(eq, "entropy") == 0)
                                o->order = GD_ORDER_ENTROPY;
                        else
                                return -1;
                } else if (strcmp(kv, "fill") == 0) {
                        if (strcmp(eq, "default") == 0)
                                o->fill = GD_FILL_DEFAULT;
                        else if (strcmp(eq, "none") == 0)
                                o->fill = GD_FILL_NONE;
                        else if (strcmp(eq, "split") == 0)
                                o->fill = GD_FILL_SPLIT;
                        else
                                return -1;
                } else if (strcmp(kv, "refine") == 0) {
                        o->refine = atoi(eq);
                } else {
                        return -1;
                }
        }
        return 0;
}

static int run_condensed(const struct ctx *cx, const struct gd_table *t, double budget,
                         size_t m_min, const struct gd_condense_opts *base, uint32_t reps,
                         uint64_t seed, struct result *res, size_t *ret_m)
{
        struct gd_condense_opts o = *base;
        struct gd_condensed *c = NULL;
        const uint32_t d = cx->tr->d;
        uint64_t m_max = gd_budget_rows(&(struct gd_budget){.fraction = budget}, cx->tr->n);
        if (m_max < m_min)
                o.budget = (struct gd_budget){.count = m_min};
        else
                o.budget = (struct gd_budget){.fraction = budget};
        double c0 = cpu();
        int r = gd_condense(t, &o, &c);
        double c1 = cpu();
        if (r < 0) {
                fprintf(stderr, "bench_modes: gd_condense: %s\n", dream_strerror(r));
                return r;
        }
        float *x = dm_mallocarray((size_t)c->m * d, sizeof(float));
        float *y = dm_mallocarray(c->m, sizeof(float)), *w = dm_mallocarray(c->m, sizeof(float));
        float *v = cx->var ? dm_mallocarray((size_t)c->m * d, sizeof(float)) : NULL;
        if (!x || !y || !w || (cx->var && !v)) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        for (size_t i = 0; i < (size_t)c->m * d; i++) {
                x[i] = (float)c->x[i];
                if (v)
                        v[i] = (float)c->v[i]; /* the groups' variances from gd_condense */
        }
        for (uint32_t i = 0; i < c->m; i++) {
                y[i] = (float)c->y[i];
                w[i] = (float)c->w[i];
        }
        struct train_view tv = {x, cx->task == TRAIN_TASK_CLUSTERING ? NULL : y, w, c->m, d, v};
        *ret_m = c->m;
        for (uint32_t k = 0; k < reps; k++) {
                double metric;
                res->prep_cpu += c1 - c0;
                r = fit_view(cx, seed + k, &tv, res, &metric);
                if (r < 0)
                        goto out;
                add_metric(res, metric);
        }
out:
        dm_free(v);
        dm_free(x);
        dm_free(y);
        dm_free(w);
        gd_condensed_free(c);
        return r;
}

/* Stratified real rows: the strata are the (class, group) cells of the
 * condensed grouping (gd_condense_opts.row_group), rows listed stratum by
 * stratum; a systematic sample of m rows over that list (a random start in
 * [0, n/m), then every n/m-th row) allocates each stratum its share of m
 * (floor or ceiling), and each drawn row is weighted by its stratum's size
 * over the rows drawn from it. m is the condensed set's size. */
static int run_stratified(const struct ctx *cx, const struct gd_table *t, double budget,
                          size_t m_min, const struct gd_condense_opts *base, uint32_t reps,
                          uint64_t seed, struct result *res)
{
        const struct bench_data *tr = cx->tr;
        struct gd_condense_opts o = *base;
        struct gd_condensed *c = NULL;
        uint64_t m_max = gd_budget_rows(&(struct gd_budget){.fraction = budget}, tr->n);
        if (m_max < m_min)
                o.budget = (struct gd_budget){.count = m_min};
        else
                o.budget = (struct gd_budget){.fraction = budget};
        uint32_t *rg = dm_mallocarray(tr->n, sizeof(uint32_t));
        size_t *list = dm_mallocarray(tr->n, sizeof(size_t));
        float *bx = NULL, *by = NULL, *bw = NULL;
        size_t *start = NULL, *drawn = NULL, *pick = NULL;
        int r = DREAM_E_NOMEM;
        if (!rg || !list)
                goto out;
        o.row_group = rg;
        double c0 = cpu();
        r = gd_condense(t, &o, &c);
        if (r < 0)
                goto out;
        const size_t m = c->m, G = c->m;
        start = dm_calloc(G + 1, sizeof(size_t));
        drawn = dm_calloc(G, sizeof(size_t));
        pick = dm_mallocarray(m, sizeof(size_t));
        bx = dm_mallocarray(m * tr->d, sizeof(float));
        by = dm_mallocarray(m, sizeof(float));
        bw = dm_mallocarray(m, sizeof(float));
        r = DREAM_E_NOMEM;
        if (!start || !drawn || !pick || !bx || !by || !bw)
                goto out;
        /* Rows stratum by stratum (counting sort; table order within). */
        for (size_t i = 0; i < tr->n; i++)
                start[rg[i] + 1]++;
        for (size_t g = 0; g < G; g++)
                start[g + 1] += start[g];
        memcpy(drawn, start, G * sizeof(size_t));
        for (size_t i = 0; i < tr->n; i++)
                list[drawn[rg[i]]++] = i;
        double prep0 = cpu() - c0;
        for (uint32_t k = 0; k < reps; k++) {
                uint64_t rs = seed + 2000003ull * (k + 1);
                double c1 = cpu();
                const double step = (double)tr->n / (double)m;
                const double u = step * (double)(rnd(&rs) >> 11) / 9007199254740992.0;
                memset(drawn, 0, G * sizeof(size_t));
                for (size_t j = 0; j < m; j++) {
                        size_t at = (size_t)(u + step * (double)j);
                        pick[j] = at < tr->n ? at : tr->n - 1;
                }
                /* Rows drawn per stratum (the stratum of list position p is
                 * found by walking start, as picks ascend). */
                size_t gs = 0;
                for (size_t j = 0; j < m; j++) {
                        while (start[gs + 1] <= pick[j])
                                gs++;
                        drawn[gs]++;
                        pick[j] = pick[j] | ((size_t)gs << 32);
                }
                for (size_t j = 0; j < m; j++) {
                        const size_t g = pick[j] >> 32, row = list[pick[j] & 0xffffffffu];
                        memcpy(bx + j * tr->d, tr->x + row * tr->d, tr->d * sizeof(float));
                        by[j] = tr->y[row];
                        bw[j] = (float)((double)(start[g + 1] - start[g]) / (double)drawn[g]);
                }
                res->prep_cpu += prep0 + (cpu() - c1);
                r = fit_rows(cx, seed + k, bx, by, bw, m, res);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        if (r < 0)
                fprintf(stderr, "bench_modes: stratified: %s\n", dream_strerror(r));
        dm_free(bx);
        dm_free(by);
        dm_free(bw);
        dm_free(pick);
        dm_free(drawn);
        dm_free(start);
        dm_free(list);
        dm_free(rg);
        gd_condensed_free(c);
        return r;
}

/* A mode whose fit failed (e.g. linear on fewer samples than features). */
static void print_failed(const struct ctx *cx, const char *name, const struct result *res, int r,
                         int json)
{
        if (json)
                printf("{\"data\":\"%s\",\"model\":\"%s\",\"mode\":\"%s\",\"budget\":%g,"
                       "\"error\":\"%s\"}\n",
                       name, train_kind_name(cx->kind), res->mode, res->budget, dream_strerror(r));
        else
                printf("| %s | %s | %s | %g%% | failed: %s | | | | | | | | |\n", name,
                       train_kind_name(cx->kind), res->mode, res->budget * 100, dream_strerror(r));
}

static void print_row(const struct ctx *cx, const char *name, const struct result *full,
                      const struct result *res, int json)
{
        if (!res->ok)
                return;
        double speed = res->train_cpu > 0 ? full->train_cpu / res->train_cpu : INFINITY;
        double speed_prep = full->train_cpu / (res->train_cpu + res->prep_cpu);
        double memr = (double)full->peak_bytes / (double)res->peak_bytes;
        double delta = res->metric - full->metric;
        if (json) {
                printf("{\"data\":\"%s\",\"model\":\"%s\",\"mode\":\"%s\",\"budget\":%g,"
                       "\"rows_used\":%llu,\"prep_seconds\":%.4f,\"train_seconds\":%.4f,"
                       "\"train_wall_seconds\":%.4f,\"peak_train_bytes\":%llu,\"%s\":%.6g,"
                       "\"metric_min\":%.6g,\"metric_max\":%.6g,\"reps\":%u,\"speedup\":%.3g,"
                       "\"speedup_with_prep\":%.3g,\"memory_ratio\":%.3g,\"delta\":%.6g,"
                       "\"l2\":%.3g,\"var_scale\":%.3g,\"iterations\":%u}\n",
                       name, train_kind_name(cx->kind), res->mode, res->budget,
                       (unsigned long long)res->rows_used, res->prep_cpu, res->train_cpu,
                       res->train_wall, (unsigned long long)res->peak_bytes, metric_name(cx->task),
                       res->metric, res->metric_min, res->metric_max, res->reps, speed, speed_prep,
                       memr, delta, res->l2, res->var_scale, res->iterations);
                return;
        }
        char b[32] = "-";
        if (res->budget > 0)
                snprintf(b, sizeof(b), "%g%%", res->budget * 100);
        printf("| %s | %s | %s | %s | %llu | %.3f | %.4f | %llu | %.4f | %.1fx | %.1fx | %.1fx | "
               "%+.4f | %.3g | %.3g | %u |\n",
               name, train_kind_name(cx->kind), res->mode, b, (unsigned long long)res->rows_used,
               res->prep_cpu, res->train_cpu, (unsigned long long)res->peak_bytes, res->metric,
               speed, speed_prep, memr, delta, res->l2, res->var_scale, res->iterations);
}

int main(int argc, char **argv)
{
        enum train_kind kind;
        struct ctx cx = {0};
        struct bench_data tr = {0}, te = {0}, va = {0};
        struct train_view vview = {0};
        const char *valid = NULL;
        const char *test = NULL, *name = NULL, *budgets_s = "0.1,0.01",
                   *modes = "full,condensed,sample,stratified,refresh";
        const char *specs[16];
        uint32_t n_specs = 0, reps = 3, full_reps = 1;
        uint64_t seed = 42;
        int json = 0, threads = 1, task_set = 0, r;

        if (argc < 3 || train_kind_parse(argv[1], &kind) < 0) {
                fprintf(stderr, "usage: bench_modes MODEL TRAIN.bin [TEST.bin] [options]\n");
                return 2;
        }
        cx.kind = kind;
        train_params_default(kind, &cx.params);
        cx.task = kind == TRAIN_MLP ? TRAIN_TASK_CLASSIFICATION : train_kind_task(kind);
        for (int i = 3; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
                if (strcmp(a, "--json") == 0) {
                        json = 1;
                        continue;
                }
                if (a[0] != '-') {
                        test = a;
                        continue;
                }
                i++;
                if (strcmp(a, "--epochs") == 0)
                        cx.params.epochs = (uint32_t)atoi(v);
                else if (strcmp(a, "--batch") == 0)
                        cx.params.batch = (uint32_t)atoi(v);
                else if (strcmp(a, "--lr") == 0)
                        cx.params.lr = atof(v);
                else if (strcmp(a, "--l2") == 0)
                        cx.params.l2 = atof(v);
                else if (strcmp(a, "--hidden") == 0) {
                        if (train_hidden_parse(v, &cx.params) < 0)
                                return 2;
                } else if (strcmp(a, "--k") == 0)
                        cx.params.k = (uint32_t)atoi(v);
                else if (strcmp(a, "--max-iter") == 0)
                        cx.params.max_iter = (uint32_t)atoi(v);
                else if (strcmp(a, "--patience") == 0)
                        cx.params.patience = (uint32_t)atoi(v);
                else if (strcmp(a, "--valid-file") == 0)
                        valid = v;
                else if (strcmp(a, "--threads") == 0)
                        threads = atoi(v);
                else if (strcmp(a, "--solver") == 0)
                        cx.params.solver =
                            strcmp(v, "adam") == 0 ? TRAIN_SOLVER_ADAM : TRAIN_SOLVER_LBFGS;
                else if (strcmp(a, "--lbfgs-iter") == 0)
                        cx.params.lbfgs_iter = (uint32_t)atoi(v);
                else if (strcmp(a, "--lbfgs-tol") == 0)
                        cx.params.lbfgs_tol = atof(v);
                else if (strcmp(a, "--var-scale") == 0)
                        cx.params.var_scale = atof(v);
                else if (strcmp(a, "--l2-fixed") == 0)
                        cx.params.l2_fixed = (uint32_t)atoi(v);
                else if (strcmp(a, "--var") == 0)
                        cx.var = atoi(v);
                else if (strcmp(a, "--valid") == 0)
                        valid = v;
                else if (strcmp(a, "--task") == 0) {
                        cx.task = strcmp(v, "reg") == 0 ? TRAIN_TASK_REGRESSION
                                                        : TRAIN_TASK_CLASSIFICATION;
                        task_set = 1;
                } else if (strcmp(a, "--budgets") == 0)
                        budgets_s = v;
                else if (strcmp(a, "--reps") == 0)
                        reps = (uint32_t)atoi(v);
                else if (strcmp(a, "--full-reps") == 0)
                        full_reps = (uint32_t)atoi(v);
                else if (strcmp(a, "--seed") == 0)
                        seed = strtoull(v, NULL, 10);
                else if (strcmp(a, "--modes") == 0)
                        modes = v;
                else if (strcmp(a, "--name") == 0)
                        name = v;
                else if (strcmp(a, "--cond") == 0 && n_specs < 16)
                        specs[n_specs++] = v;
                else {
                        fprintf(stderr, "bench_modes: unknown option '%s'\n", a);
                        return 2;
                }
        }
        (void)task_set;
        if (reps < 1)
                reps = 1;
        if (full_reps < 1)
                full_reps = 1;
        if (n_specs == 0)
                specs[n_specs++] = "default";
        if (threads > 0)
                train_set_threads(threads);
        if (bench_data_load(argv[2], &tr) < 0 || (test && bench_data_load(test, &te) < 0) ||
            (valid && bench_data_load(valid, &va) < 0)) {
                fprintf(stderr, "bench_modes: cannot read the data files\n");
                return 1;
        }
        if (!name) {
                const char *b = strrchr(argv[2], '/');
                name = b ? b + 1 : argv[2];
        }
        cx.tr = &tr;
        cx.ev = test ? &te : &tr;

        /* Full-data standardisation for every mode. */
        double *mean = dm_calloc(tr.d, sizeof(double)), *sd = dm_calloc(tr.d, sizeof(double));
        long double *s1 = dm_calloc(tr.d, sizeof(long double)),
                    *s2 = dm_calloc(tr.d, sizeof(long double));
        long double ys = 0, yss = 0;
        for (size_t i = 0; i < tr.n; i++) {
                for (uint32_t j = 0; j < tr.d; j++) {
                        long double v = tr.x[i * tr.d + j];
                        s1[j] += v;
                        s2[j] += v * v;
                }
                ys += tr.y[i];
                yss += (long double)tr.y[i] * tr.y[i];
        }
        train_stats_from_sums(tr.d, (long double)tr.n, s1, s2, mean, sd);
        cx.pb.d = tr.d;
        if (valid) {
                vview = (struct train_view){va.x, va.y, NULL, va.n, va.d, NULL};
                cx.pb.valid = &vview;
        }
        cx.pb.mean = mean;
        cx.pb.sd = sd;
        if (kind == TRAIN_MLP)
                cx.pb.task = cx.task;
        if (cx.task == TRAIN_TASK_REGRESSION) {
                long double ym = ys / tr.n;
                cx.pb.y_mean = (double)ym;
                cx.pb.y_sd = sqrt((double)(yss / tr.n - ym * ym));
        }
        /* Rows by class (one class without labels). */
        cx.class_idx = dm_mallocarray(tr.n, sizeof(size_t));
        if (cx.task == TRAIN_TASK_CLASSIFICATION) {
                uint32_t k = 0;
                for (size_t i = 0; i < tr.n; i++)
                        if ((uint32_t)tr.y[i] + 1 > k)
                                k = (uint32_t)tr.y[i] + 1;
                cx.n_classes = k;
                cx.pb.n_classes = kind == TRAIN_LOGISTIC ? 2 : k;
        } else {
                cx.n_classes = 1;
        }
        cx.class_start = dm_calloc(cx.n_classes + 1, sizeof(size_t));
        {
                size_t *fill = dm_calloc(cx.n_classes + 1, sizeof(size_t));
                for (size_t i = 0; i < tr.n; i++)
                        cx.class_start[(cx.n_classes > 1 ? (uint32_t)tr.y[i] : 0) + 1]++;
                for (uint32_t c = 0; c < cx.n_classes; c++)
                        cx.class_start[c + 1] += cx.class_start[c];
                memcpy(fill, cx.class_start, cx.n_classes * sizeof(size_t));
                for (size_t i = 0; i < tr.n; i++)
                        cx.class_idx[fill[cx.n_classes > 1 ? (uint32_t)tr.y[i] : 0]++] = i;
                dm_free(fill);
        }

        struct gd_table *t = NULL;
        uint32_t quantised = 0;
        double tb0 = cpu();
        r = make_table(&tr, cx.task, &t, &quantised);
        double tb1 = cpu();
        if (r < 0) {
                fprintf(stderr, "bench_modes: table: %s\n", dream_strerror(r));
                return 1;
        }
        const int seeded = kind != TRAIN_LINEAR && kind != TRAIN_RIDGE;
        if (!json) {
                printf("data %s: n %zu, d %u, eval rows %zu, model %s, epochs %u, reps %u, "
                       "classes %u, table %.2f s (%u quantised columns), metric %s\n",
                       name, tr.n, tr.d, cx.ev->n, train_kind_name(kind), cx.params.epochs, reps,
                       cx.task == TRAIN_TASK_CLASSIFICATION ? cx.n_classes : 0, tb1 - tb0,
                       quantised, metric_name(cx.task));
                printf("| data | model | mode | budget | rows_used | prep_s | train_s | "
                       "peak_train_bytes | %s | speed-up | with prep | memory | delta | l2 | a | "
                       "iterations |\n",
                       metric_name(cx.task));
                printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        }

        struct result full = {0};
        snprintf(full.mode, sizeof(full.mode), "full");
        {
                struct train_view v = {
                    tr.x, cx.task == TRAIN_TASK_CLUSTERING ? NULL : tr.y, NULL, tr.n, tr.d, NULL};
                for (uint32_t k = 0; k < (seeded ? full_reps : 1); k++) {
                        double metric;
                        r = fit_view(&cx, seed + k, &v, &full, &metric);
                        if (r < 0)
                                return 1;
                        add_metric(&full, metric);
                }
                finish(&full);
        }
        print_row(&cx, name, &full, &full, json);
        fflush(stdout);

        char bl[128];
        snprintf(bl, sizeof(bl), "%s", budgets_s);
        char *save = NULL;
        for (char *bs = strtok_r(bl, ",", &save); bs; bs = strtok_r(NULL, ",", &save)) {
                double budget = atof(bs);
                size_t m_min = cx.task == TRAIN_TASK_CLASSIFICATION ? cx.n_classes : 1;
                size_t m = 0;
                for (uint32_t sI = 0; sI < n_specs; sI++) {
                        struct gd_condense_opts o = {0};
                        struct result res = {0};
                        if (!strstr(modes, "condensed"))
                                break;
                        if (parse_spec(specs[sI], &o) < 0) {
                                fprintf(stderr, "bench_modes: bad --cond '%s'\n", specs[sI]);
                                return 2;
                        }
                        res.budget = budget;
                        snprintf(res.mode, sizeof(res.mode), "condensed%s%s%s",
                                 n_specs > 1 ? "[" : "", n_specs > 1 ? specs[sI] : "",
                                 n_specs > 1 ? "]" : "");
                        size_t mc = 0;
                        r = run_condensed(&cx, t, budget, m_min, &o, seeded ? reps : 1, seed, &res,
                                          &mc);
                        if (sI == 0)
                                m = mc;
                        if (r < 0) {
                                print_failed(&cx, name, &res, r, json);
                                continue;
                        }
                        finish(&res);
                        print_row(&cx, name, &full, &res, json);
                        fflush(stdout);
                }
                if (m == 0) {
                        m = gd_budget_rows(&(struct gd_budget){.fraction = budget}, tr.n);
                        if (m < m_min)
                                m = m_min;
                }
                if (strstr(modes, "sample")) {
                        struct result res = {.budget = budget};
                        snprintf(res.mode, sizeof(res.mode), "sample");
                        r = run_sample(&cx, m, reps, seed, &res);
                        if (r < 0)
                                print_failed(&cx, name, &res, r, json);
                        finish(&res);
                        print_row(&cx, name, &full, &res, json);
                        fflush(stdout);
                }
                if (strstr(modes, "stratified")) {
                        struct gd_condense_opts o = {0};
                        struct result res = {.budget = budget};
                        snprintf(res.mode, sizeof(res.mode), "stratified");
                        (void)parse_spec(specs[0], &o);
                        r = run_stratified(&cx, t, budget, m_min, &o, reps, seed, &res);
                        if (r < 0)
                                print_failed(&cx, name, &res, r, json);
                        finish(&res);
                        print_row(&cx, name, &full, &res, json);
                        fflush(stdout);
                }
                if (strstr(modes, "refresh")) {
                        struct result res = {.budget = budget};
                        snprintf(res.mode, sizeof(res.mode), "refresh");
                        r = run_refresh(&cx, m, reps, seed, &res);
                        if (r < 0)
                                print_failed(&cx, name, &res, r, json);
                        finish(&res);
                        print_row(&cx, name, &full, &res, json);
                        fflush(stdout);
                }
        }
        gd_table_free(t);
        dm_free(cx.class_idx);
        dm_free(cx.class_start);
        dm_free(mean);
        dm_free(sd);
        dm_free(s1);
        dm_free(s2);
        bench_data_release(&tr);
        bench_data_release(&te);
        bench_data_release(&va);
        return 0;
}
