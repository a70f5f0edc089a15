/* Training data of a job from the store (see job_data.h). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "server/job_data.h"
#include "server/server.h"

/* Sampling ranges above this share of the dataset read it sequentially
 * instead of row by row. */
#define SCAN_SHARE 50u
#define SCAN_CHUNK 65536u
/* Rows per store_get_rows call of the random-access path. */
#define READ_BLOCK_ROWS 4096u
/* Test classes absent from the training data that are still scored. */
#define MAX_UNKNOWN_CLASSES 1024u

static uint64_t splitmix(uint64_t *x)
{
        uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double uniform(uint64_t *state)
{
        return (double)(splitmix(state) >> 11) * 0x1.0p-53;
}

/* k of n items, uniformly, in increasing order (selection sampling, Knuth
 * algorithm S): out[0..k) gets indices into [0, n). */
static void choose_sorted(uint64_t n, uint64_t k, uint64_t *state, uint64_t *out)
{
        uint64_t chosen = 0;

        for (uint64_t i = 0; i < n && chosen < k; i++)
                if ((double)(n - i) * uniform(state) < (double)(k - chosen))
                        out[chosen++] = i;
}

void jd_rows_release(struct jd_rows *r)
{
        dm_free(r->x);
        dm_free(r->y);
        dm_free(r->w);
        dm_free(r->v);
        memset(r, 0, sizeof(*r));
}

size_t jd_rows_bytes(const struct jd_rows *r)
{
        size_t per = (size_t)r->d * (r->v ? 2 : 1) + (r->y ? 1 : 0) + (r->w ? 1 : 0);
        return r->n * per * sizeof(float);
}

static int rows_alloc(struct jd_rows *r, size_t n, uint32_t d, bool y, bool w)
{
        memset(r, 0, sizeof(*r));
        r->x = dm_mallocarray(n * (size_t)d + 1, sizeof(float));
        r->y = y ? dm_mallocarray(n + 1, sizeof(float)) : NULL;
        r->w = w ? dm_mallocarray(n + 1, sizeof(float)) : NULL;
        if (!r->x || (y && !r->y) || (w && !r->w)) {
                jd_rows_release(r);
                return DREAM_E_NOMEM;
        }
        r->cap = n;
        r->d = d;
        return 0;
}

void jd_rows_view(const struct jd_rows *r, struct train_view *ret_view)
{
        *ret_view =
            (struct train_view){.x = r->x, .y = r->y, .w = r->w, .n = r->n, .d = r->d, .v = r->v};
}

void jd_view(const struct jd_set *set, struct train_view *ret_view)
{
        jd_rows_view(&set->rows, ret_view);
}

int jd_table_features(const struct gd_table *t, int32_t skip, float **ret_x)
{
        uint32_t d = t->n_cols - (skip >= 0 ? 1 : 0);
        float *x = dm_mallocarray(t->n_rows * (size_t)d + 1, sizeof(float));
        uint32_t f = 0;

        if (!x)
                return DREAM_E_NOMEM;
        for (uint32_t c = 0; c < t->n_cols; c++) {
                const struct gd_col *col = &t->cols[c];
                if ((int32_t)c == skip)
                        continue;
                for (uint64_t i = 0; i < t->n_rows; i++)
                        x[i * d + f] = (float)gd_value_f64(col->kind, col->scale, col->v[i]);
                f++;
        }
        *ret_x = x;
        return 0;
}

/* ---- classes ---------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* Index of v in the sorted classes, or -1. */
static int64_t class_index(const double *classes, uint32_t k, double v)
{
        const double *p = bsearch(&v, classes, k, sizeof(double), cmp_double);
        return p ? p - classes : -1;
}

/* The sorted distinct values of v[0..n) into set->classes. */
static int classes_from(struct jd_set *set, const double *v, size_t n, char *errmsg,
                        size_t errmsg_size)
{
        double *sorted = dm_mallocarray(n + 1, sizeof(double));
        uint32_t k = 0;

        if (!sorted)
                return DREAM_E_NOMEM;
        memcpy(sorted, v, n * sizeof(double));
        qsort(sorted, n, sizeof(double), cmp_double);
        for (size_t i = 0; i < n; i++) {
                if (isnan(sorted[i])) {
                        dm_free(sorted);
                        snprintf(errmsg, errmsg_size, "dataset '%s': a target value is NaN",
                                 set->dataset);
                        return DREAM_E_INVAL;
                }
                if (k == 0 || sorted[i] != sorted[k - 1]) {
                        if (k == DREAM_MAX_CLASSES) {
                                dm_free(sorted);
                                snprintf(errmsg, errmsg_size,
                                         "dataset '%s': more than %u distinct target values",
                                         set->dataset, DREAM_MAX_CLASSES);
                                return DREAM_E_LIMIT;
                        }
                        sorted[k++] = sorted[i];
                }
        }
        set->classes = sorted;
        set->n_classes = k;
        return 0;
}

/* Targets (doubles) into y: class indices (classification) or values. */
static void targets_to(const struct jd_set *set, const double *v, size_t n, float *y)
{
        bool cls = set->problem.task == TRAIN_TASK_CLASSIFICATION;
        for (size_t i = 0; i < n; i++)
                y[i] = cls ? (float)class_index(set->classes, set->n_classes, v[i]) : (float)v[i];
}

/* ---- modes ------------------------------------------------------------------------ */

/* errmsg for a failed read of `what` of the training dataset. Every read is
 * pinned to the dataset the job began on: DREAM_E_NOTFOUND means it was
 * dropped (perhaps made again under its name) while the job ran. */
static void read_error(const struct jd_set *set, int r, const char *what, char *errmsg,
                       size_t errmsg_size)
{
        if (r == DREAM_E_NOTFOUND)
                snprintf(errmsg, errmsg_size,
                         "dataset '%s' was dropped while this job was reading %s; train again "
                         "to use the dataset now under that name",
                         set->dataset, what);
        else if (r == DREAM_E_RANGE)
                snprintf(errmsg, errmsg_size,
                         "dataset '%s': reading %s: a row is past its end (it had %llu rows when "
                         "the job began)",
                         set->dataset, what, (unsigned long long)set->dataset_rows);
        else
                snprintf(errmsg, errmsg_size, "dataset '%s': cannot read %s: %s", set->dataset,
                         what, dream_strerror(r));
}

/* The target of every row. */
static int target_values(const struct gd_table *t, int32_t target, double **ret_v)
{
        const struct gd_col *col = &t->cols[target];
        double *v = dm_mallocarray(t->n_rows + 1, sizeof(double));

        if (!v)
                return DREAM_E_NOMEM;
        for (uint64_t i = 0; i < t->n_rows; i++)
                v[i] = gd_value_f64(col->kind, col->scale, col->v[i]);
        *ret_v = v;
        return 0;
}

static void holdout_add(struct jd_set *set, const double *cells, double *feat);

/* full: every row of the dataset in one read of its segments, as float
 * features and, when supervised, double targets. */
struct full_read {
        float *x;
        double *tv;
        uint64_t n;
};

static void full_read_release(struct full_read *fr)
{
        dm_free(fr->x);
        dm_free(fr->tv);
        memset(fr, 0, sizeof(*fr));
}

static int full_read(struct jd_set *set, bool want_y, struct full_read *fr, char *errmsg,
                     size_t errmsg_size)
{
        int r = store_read_features(set->store, set->dataset, set->dataset_id, set->target, &fr->x,
                                    want_y && set->target >= 0 ? &fr->tv : NULL, &fr->n);

        if (r < 0) {
                read_error(set, r, "its rows", errmsg, errmsg_size);
                return r;
        }
        if (fr->n < set->dataset_rows) {
                snprintf(errmsg, errmsg_size, "dataset '%s': read %llu rows, expected %llu",
                         set->dataset, (unsigned long long)fr->n,
                         (unsigned long long)set->dataset_rows);
                return DREAM_E_CORRUPT;
        }
        return 0;
}

/* The holdout rows from the rows full mode read. Their features are the
 * float values training sees, so the holdout's sums taken out of the
 * standardisation statistics carry float rounding (a relative 6e-8 at most;
 * exact mode reads its holdout as doubles). */
static int holdout_from_rows(struct jd_set *set, const struct full_read *fr)
{
        double *cells = dm_mallocarray((size_t)set->n_cols + set->d + 1, sizeof(double));

        if (!cells)
                return DREAM_E_NOMEM;
        for (uint64_t h = 0; h < set->n_holdout; h++) {
                uint64_t i = set->holdout[h];
                const float *xi = fr->x + i * set->d;
                uint32_t f = 0;
                for (uint32_t c = 0; c < set->n_cols; c++)
                        cells[c] = (int32_t)c != set->target ? (double)xi[f++]
                                   : fr->tv                  ? fr->tv[i]
                                                             : 0.0;
                holdout_add(set, cells, cells + set->n_cols);
        }
        dm_free(cells);
        return 0;
}

/* full: the rows read but the holdout's into set->rows (features, and
 * targets when supervised); the read's arrays move into the set. */
static int mode_full(struct jd_set *set, struct full_read *fr, bool want_y, bool cls, char *errmsg,
                     size_t errmsg_size)
{
        const size_t d = set->d;
        uint64_t h = 0, kept = 0;
        int r = 0;

        for (uint64_t i = 0; i < fr->n; i++) {
                if (h < set->n_holdout && set->holdout[h] == i) {
                        h++;
                        continue;
                }
                if (kept != i) {
                        memmove(fr->x + kept * d, fr->x + i * d, d * sizeof(float));
                        if (fr->tv)
                                fr->tv[kept] = fr->tv[i];
                }
                kept++;
        }
        memset(&set->rows, 0, sizeof(set->rows));
        set->rows.x = fr->x;
        fr->x = NULL;
        set->rows.n = set->rows.cap = kept;
        set->rows.d = set->d;
        if (!want_y)
                return 0;
        set->rows.y = dm_mallocarray(kept + 1, sizeof(float));
        if (!set->rows.y)
                return DREAM_E_NOMEM;
        if (cls)
                r = classes_from(set, fr->tv, kept, errmsg, errmsg_size);
        if (r == 0)
                targets_to(set, fr->tv, kept, set->rows.y);
        return r;
}

static int mode_condensed(struct jd_set *set, const struct jd_request *rq, bool want_y, bool cls,
                          char *errmsg, size_t errmsg_size)
{
        uint64_t kept = set->dataset_rows - set->n_holdout;
        struct gd_condense_opts o;
        struct gd_condensed *c = NULL;
        bool any_v = false;
        int r;

        memset(&o, 0, sizeof(o));
        o.budget = rq->budget;
        o.order = rq->order;
        o.exclude = set->holdout;
        o.n_exclude = set->n_holdout;
        r = store_condensed(set->store, set->dataset, set->dataset_id, &o, &c, &set->prep_cached);
        if (r == DREAM_E_BUDGET) {
                snprintf(errmsg, errmsg_size,
                         "dataset '%s': a budget of %llu of its %llu training rows cannot hold one "
                         "condensed sample per class; raise the budget",
                         set->dataset, (unsigned long long)gd_budget_rows(&rq->budget, kept),
                         (unsigned long long)kept);
                return r;
        }
        if (r < 0) {
                read_error(set, r, "its rows to condense them", errmsg, errmsg_size);
                return r;
        }
        if (c->d != set->d) {
                snprintf(errmsg, errmsg_size,
                         "dataset '%s': condensed samples have %u features, the schema %u",
                         set->dataset, c->d, set->d);
                gd_condensed_free(c);
                return DREAM_E_CORRUPT;
        }
        for (size_t i = 0; c->v && !any_v && i < (size_t)c->m * set->d; i++)
                any_v = c->v[i] != 0;
        r = rows_alloc(&set->rows, c->m, set->d, want_y, true);
        /* The groups' variances: none kept when all are 0 (the same fit). */
        if (r == 0 && any_v) {
                set->rows.v = dm_mallocarray((size_t)c->m * set->d + 1, sizeof(float));
                if (!set->rows.v)
                        r = DREAM_E_NOMEM;
        }
        if (r == 0 && cls)
                r = classes_from(set, c->y, c->m, errmsg, errmsg_size);
        if (r == 0) {
                for (size_t i = 0; i < (size_t)c->m * set->d; i++)
                        set->rows.x[i] = (float)c->x[i];
                for (size_t i = 0; set->rows.v && i < (size_t)c->m * set->d; i++)
                        set->rows.v[i] = (float)c->v[i];
                for (uint32_t i = 0; i < c->m; i++)
                        set->rows.w[i] = (float)c->w[i];
                if (want_y)
                        targets_to(set, c->y, c->m, set->rows.y);
                set->rows.n = c->m;
        }
        gd_condensed_free(c);
        return r;
}

/* ---- the holdout ------------------------------------------------------------------- */

/* One holdout row (every column as a double) into set->valid, its target
 * into valid_tv, its features into the holdout's sums (and statistics). */
static void holdout_add(struct jd_set *set, const double *cells, double *feat)
{
        struct jd_rows *v = &set->valid;
        struct train_suffstats *st = set->ho_stats;
        uint32_t d = set->d, f = 0;
        double y = 0;

        for (uint32_t c = 0; c < set->n_cols; c++) {
                if ((int32_t)c == set->target) {
                        y = cells[c];
                        continue;
                }
                feat[f] = cells[c];
                v->x[v->n * d + f] = (float)cells[c];
                set->ho_sx[f] += cells[c];
                set->ho_sxx[f] += (long double)cells[c] * cells[c];
                f++;
        }
        if (set->valid_tv)
                set->valid_tv[v->n] = y;
        if (st) {
                st->n += 1;
                st->sum_y += y;
                st->sum_yy += (long double)y * y;
                for (uint32_t a = 0; a < d; a++) {
                        st->xy[a] += (long double)feat[a] * y;
                        for (uint32_t b = a; b < d; b++)
                                st->xx[(size_t)a * d + b] += (long double)feat[a] * feat[b];
                }
        }
        v->n++;
}

/* Fill rows[at..] with the given dataset rows (sorted row numbers): one
 * random read each, or one sequential scan when they are many. With cells
 * (n_cols + d doubles of scratch), the rows go to the holdout instead. */
struct pick {
        struct jd_set *set;
        const uint64_t *want;
        uint64_t n_want, next;
        size_t at;
        double *tv;    /* target values, parallel to rows */
        double *cells; /* holdout: one row's cells, then its features */
        int err;
};

/* Cell c of the next picked row. */
static void pick_cell(struct pick *p, uint32_t c, uint32_t *f, double val)
{
        if (p->cells)
                p->cells[c] = val;
        else if ((int32_t)c == p->set->target)
                p->tv[p->at] = val;
        else
                p->set->rows.x[p->at * p->set->d + (*f)++] = (float)val;
}

static void pick_end(struct pick *p)
{
        if (p->cells)
                holdout_add(p->set, p->cells, p->cells + p->set->n_cols);
        else
                p->at++;
}

static void pick_row(struct pick *p, const int64_t *v, const struct store_cellfmt *fmt)
{
        uint32_t f = 0;

        for (uint32_t c = 0; c < p->set->n_cols; c++)
                pick_cell(p, c, &f, gd_value_f64(fmt[c].kind, fmt[c].scale, v[c]));
        pick_end(p);
}

static int pick_cb(const struct gd_table *chunk, uint64_t first_row, void *arg)
{
        struct pick *p = arg;

        if (chunk->n_cols != p->set->n_cols)
                return DREAM_E_SCHEMA; /* dropped and made again with other columns */
        for (; p->next < p->n_want && p->want[p->next] < first_row + chunk->n_rows; p->next++) {
                uint64_t i = p->want[p->next] - first_row;
                uint32_t f = 0;

                for (uint32_t c = 0; c < chunk->n_cols; c++) {
                        const struct gd_col *col = &chunk->cols[c];
                        pick_cell(p, c, &f, gd_value_f64(col->kind, col->scale, col->v[i]));
                }
                pick_end(p);
        }
        return 0;
}

static int read_rows(struct jd_set *set, const uint64_t *want, uint64_t n_want, size_t at,
                     double *tv, double *cells)
{
        struct pick p = {
            .set = set, .want = want, .n_want = n_want, .at = at, .tv = tv, .cells = cells};
        uint64_t block = n_want < READ_BLOCK_ROWS ? n_want : READ_BLOCK_ROWS;
        int64_t *v;
        struct store_cellfmt *fmt;
        int r = 0;

        if (n_want == 0)
                return 0;
        if (n_want * SCAN_SHARE > set->dataset_rows)
                return store_scan(set->store, set->dataset, set->dataset_id, 0,
                                  want[n_want - 1] + 1, SCAN_CHUNK, pick_cb, &p);
        /* Random access, a block of rows per read transaction. */
        v = dm_mallocarray(block * set->n_cols, sizeof(int64_t));
        fmt = dm_mallocarray(block * set->n_cols, sizeof(*fmt));
        if (!v || !fmt)
                r = DREAM_E_NOMEM;
        for (uint64_t i = 0; i < n_want && r == 0; i += block) {
                uint64_t k = n_want - i < block ? n_want - i : block;
                r = store_get_rows(set->store, set->dataset, set->dataset_id, set->n_cols, want + i,
                                   k, v, fmt);
                for (uint64_t q = 0; r == 0 && q < k; q++)
                        pick_row(&p, v + q * set->n_cols, fmt + q * set->n_cols);
        }
        dm_free(v);
        dm_free(fmt);
        return r;
}

/* The holdout's row numbers: k = share * rows (at least 1, at most
 * SRV_MAX_HOLDOUT_ROWS) drawn by the seed, in increasing order; refused when
 * fewer than 2 rows would be left to train on. */
uint64_t jd_holdout_rows(double share, uint64_t n)
{
        uint64_t k;

        if (share <= 0 || n == 0)
                return 0;
        k = (uint64_t)llround(share * (double)n);
        if (k < 1)
                k = 1;
        return k > SRV_MAX_HOLDOUT_ROWS ? SRV_MAX_HOLDOUT_ROWS : k;
}

static int holdout_draw(struct jd_set *set, double share, char *errmsg, size_t errmsg_size)
{
        uint64_t n = set->dataset_rows, k = jd_holdout_rows(share, n);
        uint64_t state = set->seed ^ 0x686f6c646f7574ull; /* "holdout" */

        if (k == 0)
                return 0;
        if (n < k + 2) {
                snprintf(errmsg, errmsg_size,
                         "dataset '%s' has %llu rows: a holdout of %llu leaves fewer than 2 to "
                         "train on (lower the holdout share, or set none: a negative holdout, "
                         "--holdout 0 in dream train)",
                         set->dataset, (unsigned long long)n, (unsigned long long)k);
                return DREAM_E_EMPTY;
        }
        set->holdout = dm_mallocarray(k + 1, sizeof(uint64_t));
        if (!set->holdout)
                return DREAM_E_NOMEM;
        choose_sorted(n, k, &state, set->holdout);
        set->n_holdout = k;
        set->holdout_share = share;
        return 0;
}

/* The arrays the holdout rows and their sums go to; exact: its statistics too. */
static int holdout_alloc(struct jd_set *set, bool want_y, bool exact)
{
        int r;

        if (set->n_holdout == 0)
                return 0;
        r = rows_alloc(&set->valid, set->n_holdout, set->d, want_y, false);
        if (r < 0)
                return r;
        set->valid_tv =
            set->target >= 0 ? dm_mallocarray(set->n_holdout + 1, sizeof(double)) : NULL;
        set->ho_sx = dm_calloc(set->d + 1, sizeof(long double));
        set->ho_sxx = dm_calloc(set->d + 1, sizeof(long double));
        if ((set->target >= 0 && !set->valid_tv) || !set->ho_sx || !set->ho_sxx)
                return DREAM_E_NOMEM;
        return exact ? train_suffstats_new(set->d, &set->ho_stats) : 0;
}

/* The holdout rows from the store. */
static int holdout_read(struct jd_set *set, char *errmsg, size_t errmsg_size)
{
        double *cells = dm_mallocarray((size_t)set->n_cols + set->d + 1, sizeof(double));
        int r =
            cells ? read_rows(set, set->holdout, set->n_holdout, 0, NULL, cells) : DREAM_E_NOMEM;

        dm_free(cells);
        if (r < 0 && r != DREAM_E_NOMEM)
                read_error(set, r, "its holdout rows", errmsg, errmsg_size);
        return r;
}

/* The holdout rows from the store. A holdout a scan of every row would find
 * comes from one read of the segments as float rows, several times faster
 * than the scan; exact mode reads its rows as doubles. */
static int holdout_load(struct jd_set *set, bool exact, bool want_y, char *errmsg,
                        size_t errmsg_size)
{
        struct full_read fr = {0};
        int r;

        if (exact || set->n_holdout * SCAN_SHARE <= set->dataset_rows)
                return holdout_read(set, errmsg, errmsg_size);
        r = full_read(set, want_y, &fr, errmsg, errmsg_size);
        if (r == 0)
                r = holdout_from_rows(set, &fr);
        full_read_release(&fr);
        return r;
}

/* ---- the holdout cache ---- */

/* Most bytes of the one holdout kept between jobs. */
#define HOLDOUT_CACHE_BYTES (256u << 20)

struct jd_holdout_cache {
        pthread_mutex_t lock;
        bool full;
        uint32_t dataset_id, n_cols, d;
        int32_t target;
        uint64_t dataset_rows, seed, n;
        float *x;                   /* n * d */
        double *tv;                 /* n, or NULL without a target */
        long double *sx, *sxx;      /* d */
        struct train_suffstats *st; /* or NULL: read for a mode other than exact */
};

int jd_holdout_cache_new(struct jd_holdout_cache **ret)
{
        struct jd_holdout_cache *hc = dm_calloc(1, sizeof(*hc));

        if (!hc)
                return DREAM_E_NOMEM;
        pthread_mutex_init(&hc->lock, NULL);
        *ret = hc;
        return 0;
}

static void hc_clear(struct jd_holdout_cache *hc)
{
        dm_free(hc->x);
        dm_free(hc->tv);
        dm_free(hc->sx);
        dm_free(hc->sxx);
        train_suffstats_free(hc->st);
        hc->x = NULL;
        hc->tv = NULL;
        hc->sx = hc->sxx = NULL;
        hc->st = NULL;
        hc->full = false;
}

void jd_holdout_cache_free(struct jd_holdout_cache *hc)
{
        if (!hc)
                return;
        hc_clear(hc);
        pthread_mutex_destroy(&hc->lock);
        dm_free(hc);
}

static bool hc_matches(const struct jd_holdout_cache *hc, const struct jd_set *set)
{
        return hc->full && hc->dataset_id == set->dataset_id &&
               hc->dataset_rows == set->dataset_rows && hc->seed == set->seed &&
               hc->n == set->n_holdout && hc->n_cols == set->n_cols && hc->d == set->d &&
               hc->target == set->target && (hc->st || !set->ho_stats);
}

/* The holdout from the cache into set (allocated by holdout_alloc): true when
 * it was there. */
static bool holdout_from_cache(struct jd_set *set, struct jd_holdout_cache *hc)
{
        bool hit;

        if (!hc || set->n_holdout == 0)
                return false;
        pthread_mutex_lock(&hc->lock);
        hit = hc_matches(hc, set);
        if (hit) {
                uint32_t d = set->d;
                memcpy(set->valid.x, hc->x, hc->n * d * sizeof(float));
                if (set->valid_tv && hc->tv)
                        memcpy(set->valid_tv, hc->tv, hc->n * sizeof(double));
                memcpy(set->ho_sx, hc->sx, d * sizeof(long double));
                memcpy(set->ho_sxx, hc->sxx, d * sizeof(long double));
                if (set->ho_stats) {
                        struct train_suffstats *a = set->ho_stats, *b = hc->st;
                        a->n = b->n;
                        a->sum_y = b->sum_y;
                        a->sum_yy = b->sum_yy;
                        memcpy(a->xy, b->xy, d * sizeof(long double));
                        memcpy(a->xx, b->xx, (size_t)d * d * sizeof(long double));
                }
                set->valid.n = hc->n;
        }
        pthread_mutex_unlock(&hc->lock);
        return hit;
}

/* Keep a copy of the holdout just read (when it fits): best effort, a
 * failure to keep it costs the next job a read. */
static void holdout_to_cache(const struct jd_set *set, struct jd_holdout_cache *hc)
{
        uint32_t d = set->d;
        uint64_t n = set->valid.n;
        size_t bytes = n * d * sizeof(float) + n * sizeof(double) +
                       (set->ho_stats ? (size_t)d * d * sizeof(long double) : 0);

        if (!hc || n == 0 || n != set->n_holdout || bytes > HOLDOUT_CACHE_BYTES)
                return;
        pthread_mutex_lock(&hc->lock);
        if (hc_matches(hc, set)) { /* another job kept it meanwhile */
                pthread_mutex_unlock(&hc->lock);
                return;
        }
        hc_clear(hc);
        hc->x = dm_mallocarray(n * d + 1, sizeof(float));
        hc->tv = set->valid_tv ? dm_mallocarray(n + 1, sizeof(double)) : NULL;
        hc->sx = dm_mallocarray(d + 1, sizeof(long double));
        hc->sxx = dm_mallocarray(d + 1, sizeof(long double));
        if (set->ho_stats && train_suffstats_new(d, &hc->st) < 0)
                hc->st = NULL;
        if (!hc->x || (set->valid_tv && !hc->tv) || !hc->sx || !hc->sxx ||
            (set->ho_stats && !hc->st)) {
                hc_clear(hc);
                pthread_mutex_unlock(&hc->lock);
                return;
        }
        memcpy(hc->x, set->valid.x, n * d * sizeof(float));
        if (hc->tv)
                memcpy(hc->tv, set->valid_tv, n * sizeof(double));
        memcpy(hc->sx, set->ho_sx, d * sizeof(long double));
        memcpy(hc->sxx, set->ho_sxx, d * sizeof(long double));
        if (hc->st) {
                hc->st->n = set->ho_stats->n;
                hc->st->sum_y = set->ho_stats->sum_y;
                hc->st->sum_yy = set->ho_stats->sum_yy;
                memcpy(hc->st->xy, set->ho_stats->xy, d * sizeof(long double));
                memcpy(hc->st->xx, set->ho_stats->xx, (size_t)d * d * sizeof(long double));
        }
        hc->dataset_id = set->dataset_id;
        hc->dataset_rows = set->dataset_rows;
        hc->seed = set->seed;
        hc->n = n;
        hc->n_cols = set->n_cols;
        hc->d = d;
        hc->target = set->target;
        hc->full = true;
        pthread_mutex_unlock(&hc->lock);
}

/* Row number of the j-th row (0-based, increasing j) that is not in the
 * holdout; *h walks the holdout along. */
static uint64_t kept_row(const struct jd_set *set, uint64_t j, uint64_t *h)
{
        while (*h < set->n_holdout && set->holdout[*h] <= j + *h)
                (*h)++;
        return j + *h;
}

static int mode_sample(struct jd_set *set, const struct jd_request *rq, bool want_y, bool cls,
                       char *errmsg, size_t errmsg_size)
{
        uint64_t kept = set->dataset_rows - set->n_holdout, state = rq->seed, h = 0;
        uint64_t m = gd_budget_rows(&rq->budget, kept);
        uint64_t *want = dm_mallocarray(m + 1, sizeof(uint64_t));
        double *tv = dm_mallocarray(m + 1, sizeof(double));
        int r;

        r = want && tv ? rows_alloc(&set->rows, m, set->d, want_y, false) : DREAM_E_NOMEM;
        if (r == 0) {
                /* m of the rows left beside the holdout. */
                choose_sorted(kept, m, &state, want);
                for (uint64_t i = 0; i < m; i++)
                        want[i] = kept_row(set, want[i], &h);
                r = read_rows(set, want, m, 0, tv, NULL);
                if (r < 0)
                        read_error(set, r, "its sampled rows", errmsg, errmsg_size);
        }
        if (r == 0 && cls)
                r = classes_from(set, tv, m, errmsg, errmsg_size);
        if (r == 0) {
                if (want_y)
                        targets_to(set, tv, m, set->rows.y);
                set->rows.n = m;
        }
        dm_free(want);
        dm_free(tv);
        return r;
}

/* refresh: the row numbers of every class (one group without classes). */
struct group_scan {
        struct jd_set *set;
        double *tv;      /* every row's target */
        struct pick *ho; /* the holdout's rows, picked in the same pass (or NULL) */
};

static int target_cb(const struct gd_table *chunk, uint64_t first_row, void *arg)
{
        struct group_scan *g = arg;
        const struct gd_col *col;

        if (chunk->n_cols != g->set->n_cols)
                return DREAM_E_SCHEMA; /* dropped and made again with other columns */
        col = &chunk->cols[g->set->target];
        for (uint64_t i = 0; i < chunk->n_rows; i++)
                g->tv[first_row + i] = gd_value_f64(col->kind, col->scale, col->v[i]);
        return g->ho ? pick_cb(chunk, first_row, g->ho) : 0;
}

static int mode_refresh(struct jd_set *set, const struct jd_request *rq, bool want_y, bool cls,
                        char *errmsg, size_t errmsg_size)
{
        uint64_t n = set->dataset_rows, kept = n - set->n_holdout, total = 0, h;
        uint64_t m = gd_budget_rows(&rq->budget, kept);
        struct group_scan g = {.set = set};
        struct pick ho = {.set = set, .want = set->holdout, .n_want = set->n_holdout};
        int r = 0;

        set->fraction = (double)m / (double)kept;
        set->n_groups = 1;
        if (cls) {
                double *kept_tv;
                g.tv = dm_mallocarray(n + 1, sizeof(double));
                if (!g.tv)
                        return DREAM_E_NOMEM;
                /* The holdout's rows in the same pass (jd_prepare left them). */
                if (set->n_holdout && !set->holdout_cached) {
                        ho.cells = dm_mallocarray((size_t)set->n_cols + set->d + 1, sizeof(double));
                        if (!ho.cells) {
                                r = DREAM_E_NOMEM;
                                goto free_tv;
                        }
                        g.ho = &ho;
                }
                r = store_scan(set->store, set->dataset, set->dataset_id, 0, n, SCAN_CHUNK,
                               target_cb, &g);
                if (r < 0) {
                        read_error(set, r, "its targets", errmsg, errmsg_size);
                        goto free_tv;
                }
                /* The classes of the training rows (the holdout left out). */
                kept_tv = dm_mallocarray(kept + 1, sizeof(double));
                if (!kept_tv) {
                        r = DREAM_E_NOMEM;
                        goto free_tv;
                }
                h = 0;
                for (uint64_t j = 0; j < kept; j++)
                        kept_tv[j] = g.tv[kept_row(set, j, &h)];
                r = classes_from(set, kept_tv, kept, errmsg, errmsg_size);
                dm_free(kept_tv);
                if (r < 0)
                        goto free_tv;
                set->n_groups = set->n_classes;
        }
        set->group_rows = dm_calloc(set->n_groups, sizeof(uint64_t *));
        set->group_n = dm_calloc(set->n_groups, sizeof(uint64_t));
        if (!set->group_rows || !set->group_n) {
                r = DREAM_E_NOMEM;
                goto free_tv;
        }
        h = 0;
        for (uint64_t j = 0; j < kept; j++) {
                uint64_t i = kept_row(set, j, &h);
                set->group_n[cls ? class_index(set->classes, set->n_classes, g.tv[i]) : 0]++;
        }
        for (uint32_t k = 0; k < set->n_groups; k++) {
                set->group_rows[k] = dm_mallocarray(set->group_n[k] + 1, sizeof(uint64_t));
                if (!set->group_rows[k]) {
                        r = DREAM_E_NOMEM;
                        goto free_tv;
                }
                uint64_t per = (uint64_t)llround(set->fraction * (double)set->group_n[k]);
                total += per ? per : 1;
                set->group_n[k] = 0;
        }
        h = 0;
        for (uint64_t j = 0; j < kept; j++) {
                uint64_t i = kept_row(set, j, &h);
                uint32_t k = cls ? (uint32_t)class_index(set->classes, set->n_classes, g.tv[i]) : 0;
                set->group_rows[k][set->group_n[k]++] = i;
        }
        r = rows_alloc(&set->rows, total, set->d, want_y, false);
free_tv:
        dm_free(g.tv);
        dm_free(ho.cells);
        return r;
}

/* A drawn row and its group (its class index). */
struct row_k {
        uint64_t row;
        uint32_t k;
};

static int cmp_row_k(const void *a, const void *b)
{
        uint64_t x = ((const struct row_k *)a)->row, y = ((const struct row_k *)b)->row;
        return x < y ? -1 : x > y;
}

/* The drawn rows from the decoded copy: the cells the store would give, as
 * float (the batch cache's cells are (float)gd_value_f64, as here), the
 * class index from the row's group. */
static void gather_cached(struct jd_set *set, const struct row_k *pk, size_t n)
{
        uint32_t nc = set->n_cols, d = set->d;
        bool cls = set->problem.task == TRAIN_TASK_CLASSIFICATION;

        for (size_t i = 0; i < n; i++) {
                const float *src = set->cache_rows + pk[i].row * nc;
                float *x = set->rows.x + i * d;
                uint32_t f = 0;
                for (uint32_t c = 0; c < nc; c++) {
                        if ((int32_t)c == set->target) {
                                if (set->rows.y)
                                        set->rows.y[i] = cls ? (float)pk[i].k : src[c];
                                continue;
                        }
                        x[f++] = src[c];
                }
        }
}

static int refresh_epoch(void *ctx, uint32_t epoch, struct train_view *ret_view)
{
        struct jd_set *set = ctx;
        uint64_t state = set->seed ^ (0x5851f42d4c957f2dull * (epoch + 1)), *want;
        struct row_k *pk;
        double *tv;
        size_t at = 0;
        int r = 0;

        want = dm_mallocarray(set->rows.cap + 1, sizeof(uint64_t));
        tv = dm_mallocarray(set->rows.cap + 1, sizeof(double));
        pk = dm_mallocarray(set->rows.cap + 1, sizeof(*pk));
        if (!want || !tv || !pk)
                r = DREAM_E_NOMEM;
        /* Each group's share, drawn within the group, then all read in row
         * order (one pass over the segments they fall in). */
        for (uint32_t k = 0; k < set->n_groups && r == 0; k++) {
                uint64_t per = (uint64_t)llround(set->fraction * (double)set->group_n[k]);
                if (per == 0)
                        per = 1;
                if (per > set->group_n[k])
                        per = set->group_n[k];
                if (at + per > set->rows.cap)
                        per = set->rows.cap - at;
                choose_sorted(set->group_n[k], per, &state, want + at);
                for (uint64_t i = 0; i < per; i++)
                        pk[at + i] = (struct row_k){set->group_rows[k][want[at + i]], k};
                at += per;
        }
        if (r == 0) {
                qsort(pk, at, sizeof(*pk), cmp_row_k);
                if (set->cache_rows) {
                        gather_cached(set, pk, at);
                } else {
                        for (size_t i = 0; i < at; i++)
                                want[i] = pk[i].row;
                        r = read_rows(set, want, at, 0, tv, NULL);
                        if (r == 0 && set->rows.y)
                                targets_to(set, tv, at, set->rows.y);
                }
        }
        if (r == 0) {
                set->rows.n = at;
                jd_view(set, ret_view);
        } else {
                char what[64];
                snprintf(what, sizeof(what), "the rows of epoch %u", epoch + 1);
                read_error(set, r, what, set->errmsg, set->errmsg_size);
        }
        dm_free(want);
        dm_free(tv);
        dm_free(pk);
        return r;
}

void jd_source(struct jd_set *set, struct train_source *ret_source)
{
        ret_source->next_epoch = refresh_epoch;
        ret_source->ctx = set;
}

static int mode_exact(struct jd_set *set, const struct store_suffstats *st, char *errmsg,
                      size_t errmsg_size)
{
        const struct train_suffstats *ho = set->ho_stats;
        uint32_t d = set->d;
        int r;

        if (!st->xtx || !st->xty) {
                snprintf(errmsg, errmsg_size,
                         "mode exact: dataset '%s' has %u features; the store keeps X'X only up "
                         "to %u (use mode full or condensed)",
                         set->dataset, set->d, DREAM_MAX_SUFFSTATS_FEATURES);
                return DREAM_E_LIMIT;
        }
        r = train_suffstats_new(d, &set->stats);
        if (r < 0)
                return r;
        set->stats->n = (long double)st->n;
        set->stats->sum_y = st->sum_y;
        set->stats->sum_yy = st->sum_y2;
        for (uint32_t i = 0; i < d; i++) {
                set->stats->sum_x[i] = st->col_sum[st->feature_cols[i]];
                set->stats->sum_xx[i] = st->col_sum2[st->feature_cols[i]];
                set->stats->xy[i] = st->xty[i];
        }
        memcpy(set->stats->xx, st->xtx, (size_t)d * d * sizeof(long double));
        if (!ho)
                return 0;
        /* The holdout's rows taken out, in long double as the store sums them. */
        set->stats->n -= ho->n;
        set->stats->sum_y -= ho->sum_y;
        set->stats->sum_yy -= ho->sum_yy;
        for (uint32_t a = 0; a < d; a++) {
                set->stats->sum_x[a] -= set->ho_sx[a];
                set->stats->sum_xx[a] -= set->ho_sxx[a];
                set->stats->xy[a] -= ho->xy[a];
                for (uint32_t b = a; b < d; b++) {
                        long double v =
                            set->stats->xx[(size_t)a * d + b] - ho->xx[(size_t)a * d + b];
                        set->stats->xx[(size_t)a * d + b] = set->stats->xx[(size_t)b * d + a] = v;
                }
        }
        return 0;
}

/* ---- prepare ---------------------------------------------------------------------- */

static int exact_stats(struct jd_set *set, const struct store_suffstats *st)
{
        long double *sum = dm_mallocarray(set->d + 1, sizeof(long double));
        long double *sum2 = dm_mallocarray(set->d + 1, sizeof(long double));
        int r = DREAM_E_NOMEM;

        set->mean = dm_mallocarray(set->d + 1, sizeof(double));
        set->sd = dm_mallocarray(set->d + 1, sizeof(double));
        if (sum && sum2 && set->mean && set->sd) {
                /* The training rows' statistics: the holdout's taken out. */
                for (uint32_t i = 0; i < set->d; i++) {
                        sum[i] =
                            st->col_sum[st->feature_cols[i]] - (set->ho_sx ? set->ho_sx[i] : 0.0L);
                        sum2[i] = st->col_sum2[st->feature_cols[i]] -
                                  (set->ho_sxx ? set->ho_sxx[i] : 0.0L);
                }
                r = train_stats_from_sums(set->d, (long double)(st->n - set->valid.n), sum, sum2,
                                          set->mean, set->sd);
        }
        dm_free(sum);
        dm_free(sum2);
        return r;
}

/* The task the model learns on this dataset, or an error naming why the
 * model does not fit the data. */
static int task_for(const struct jd_set *set, const struct store_info *info, enum train_kind kind,
                    enum train_task *ret_task, char *errmsg, size_t errmsg_size)
{
        enum train_task need = train_kind_task(kind);
        enum train_task have = info->schema.target < 0 ? 0
                               : info->schema.task == GD_TASK_CLASSIFICATION
                                   ? TRAIN_TASK_CLASSIFICATION
                                   : TRAIN_TASK_REGRESSION;
        const char *kname = train_kind_name(kind);

        if (need == TRAIN_TASK_CLUSTERING) {
                *ret_task = need;
                return 0;
        }
        if (!have) {
                snprintf(errmsg, errmsg_size,
                         "model %s needs a target column; dataset '%s' has none (use kmeans)",
                         kname, set->dataset);
                return DREAM_E_SCHEMA;
        }
        if (need && need != have) {
                snprintf(errmsg, errmsg_size,
                         "model %s is for %s; dataset '%s' has a %s target (column '%s')", kname,
                         need == TRAIN_TASK_REGRESSION ? "regression" : "classification",
                         set->dataset,
                         have == TRAIN_TASK_REGRESSION ? "regression" : "classification",
                         info->schema.cols[info->schema.target].name);
                return DREAM_E_SCHEMA;
        }
        *ret_task = have;
        return 0;
}

/* Class indices of the holdout's targets (a class the training rows lack
 * gets K, K+1, ...), and the view of its rows of known classes for the fit. */
static int labels_of(const struct jd_set *set, const double *tv, size_t n, float *y,
                     uint64_t *ret_unknown, const char *what, char *errmsg, size_t errmsg_size);

static int holdout_finish(struct jd_set *set, char *errmsg, size_t errmsg_size)
{
        struct jd_rows *v = &set->valid, *k = &set->valid_known;
        int r;

        if (set->n_holdout == 0)
                return 0;
        if (v->y) {
                char what[DREAM_MAX_NAME + 32];
                snprintf(what, sizeof(what), "dataset '%s' (holdout)", set->dataset);
                r = labels_of(set, set->valid_tv, v->n, v->y, &set->valid_unknown, what, errmsg,
                              errmsg_size);
                if (r < 0)
                        return r;
        }
        dm_free(set->valid_tv);
        set->valid_tv = NULL;
        if (set->valid_unknown == 0) {
                jd_rows_view(v, &set->valid_view);
        } else {
                r = rows_alloc(k, v->n, set->d, true, false);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < v->n; i++) {
                        if (v->y[i] >= (float)set->n_classes)
                                continue;
                        memcpy(k->x + k->n * set->d, v->x + i * set->d, set->d * sizeof(float));
                        k->y[k->n++] = v->y[i];
                }
                jd_rows_view(k, &set->valid_view);
        }
        if (set->valid_view.n)
                set->problem.valid = &set->valid_view;
        return 0;
}

int jd_prepare(struct store *store, const struct jd_request *rq, struct jd_set *ret_set,
               char *errmsg, size_t errmsg_size)
{
        struct jd_set *set = ret_set;
        struct store_info *info = NULL;
        struct store_suffstats *st = NULL;
        struct full_read fr = {0};
        enum train_task task;
        bool want_y, cls;
        int r;

        memset(set, 0, sizeof(*set));
        set->store = store;
        set->dataset = rq->dataset;
        set->seed = rq->seed;
        set->errmsg = errmsg;
        set->errmsg_size = errmsg_size;
        r = store_dataset_describe(store, rq->dataset, &info);
        if (r < 0) {
                snprintf(errmsg, errmsg_size, "dataset '%s': %s", rq->dataset,
                         r == DREAM_E_NOTFOUND ? "no such dataset" : dream_strerror(r));
                return r;
        }
        set->n_cols = info->schema.n_cols;
        set->target = info->schema.target;
        set->d = set->n_cols - (set->target >= 0 ? 1 : 0);
        set->dataset_rows = info->rows;
        set->dataset_id = info->id;
        set->test_dataset_id = rq->test_dataset_id;
        if (rq->dataset_id && info->id != rq->dataset_id) {
                snprintf(errmsg, errmsg_size,
                         "dataset '%s' was dropped and created again after this job was "
                         "submitted; train again to use the dataset now under that name",
                         rq->dataset);
                store_info_free(info);
                return DREAM_E_NOTFOUND;
        }
        r = task_for(set, info, rq->kind, &task, errmsg, errmsg_size);
        if (r == 0 && (info->rows == 0 || set->d == 0)) {
                snprintf(errmsg, errmsg_size, "dataset '%s' has %s", rq->dataset,
                         info->rows == 0 ? "no rows" : "no feature column");
                r = DREAM_E_EMPTY;
        }
        store_info_free(info);
        if (r < 0)
                return r;
        /* The target is read whenever the dataset has one: k-means ignores it
         * but reports on it nowhere, so it is skipped there. */
        want_y = task != TRAIN_TASK_CLUSTERING;
        cls = task == TRAIN_TASK_CLASSIFICATION;
        set->problem.task = task;
        r = holdout_draw(set, rq->holdout, errmsg, errmsg_size);
        if (r == 0)
                r = holdout_alloc(set, want_y, rq->mode == JD_EXACT);
        if (r < 0)
                goto fail;
        r = store_suffstats(store, rq->dataset, set->dataset_id, &st);
        if (r == 0 && st->d != set->d)
                r = DREAM_E_CORRUPT;
        if (r < 0) {
                read_error(set, r, "its statistics", errmsg, errmsg_size);
                goto fail;
        }
        /* The holdout's rows before the training rows (full mode: from the table
         * it reads): their sums come out of the training rows' statistics. */
        if (rq->mode == JD_FULL) {
                r = full_read(set, want_y, &fr, errmsg, errmsg_size);
                if (r < 0)
                        goto fail;
                set->holdout_cached = holdout_from_cache(set, rq->holdout_cache);
                if (!set->holdout_cached)
                        r = holdout_from_rows(set, &fr);
        } else if (set->n_holdout) {
                set->holdout_cached = holdout_from_cache(set, rq->holdout_cache);
                /* (refresh of classes picks them in its pass over the targets) */
                if (!set->holdout_cached && !(rq->mode == JD_REFRESH && cls))
                        r = holdout_load(set, rq->mode == JD_EXACT, want_y, errmsg, errmsg_size);
        }
        if (r < 0)
                goto fail;
        switch (rq->mode) {
        case JD_FULL:
                r = mode_full(set, &fr, want_y, cls, errmsg, errmsg_size);
                break;
        case JD_CONDENSED:
                r = mode_condensed(set, rq, want_y, cls, errmsg, errmsg_size);
                break;
        case JD_SAMPLE:
                r = mode_sample(set, rq, want_y, cls, errmsg, errmsg_size);
                break;
        case JD_REFRESH:
                r = mode_refresh(set, rq, want_y, cls, errmsg, errmsg_size);
                break;
        case JD_EXACT:
                r = mode_exact(set, st, errmsg, errmsg_size);
                break;
        default:
                snprintf(errmsg, errmsg_size, "mode: unknown (%d)", (int)rq->mode);
                r = DREAM_E_INVAL;
        }
        full_read_release(&fr);
        /* The statistics of the training rows: every holdout row is read now
         * (the modes use none of them). */
        if (r == 0 && !set->holdout_cached)
                holdout_to_cache(set, rq->holdout_cache);
        if (r == 0)
                r = exact_stats(set, st);
        if (r == 0)
                r = holdout_finish(set, errmsg, errmsg_size);
        if (r < 0) {
                if (r == DREAM_E_NOMEM)
                        snprintf(errmsg, errmsg_size, "dataset '%s': out of memory reading it",
                                 rq->dataset);
                goto fail;
        }
        if (cls && set->n_classes < 2) {
                snprintf(errmsg, errmsg_size,
                         "dataset '%s': the training rows hold %u class; at least 2 are needed",
                         rq->dataset, set->n_classes);
                r = DREAM_E_EMPTY;
                goto fail;
        }
        if (cls && rq->kind == TRAIN_LOGISTIC && set->n_classes != 2) {
                snprintf(errmsg, errmsg_size,
                         "model logistic is binary; dataset '%s' has %u classes (use softmax)",
                         rq->dataset, set->n_classes);
                r = DREAM_E_SCHEMA;
                goto fail;
        }
        store_suffstats_free(st);
        set->problem.d = set->d;
        set->problem.n_classes = cls ? set->n_classes : 0;
        set->problem.classes = cls ? set->classes : NULL;
        set->problem.mean = set->mean;
        set->problem.sd = set->sd;
        set->peak_view_bytes = jd_rows_bytes(&set->rows);
        return 0;
fail:
        full_read_release(&fr);
        store_suffstats_free(st);
        jd_release(set);
        return r;
}

void jd_release(struct jd_set *set)
{
        if (!set)
                return;
        jd_rows_release(&set->rows);
        jd_rows_release(&set->valid);
        jd_rows_release(&set->valid_known);
        train_suffstats_free(set->stats);
        train_suffstats_free(set->ho_stats);
        for (uint32_t k = 0; set->group_rows && k < set->n_groups; k++)
                dm_free(set->group_rows[k]);
        dm_free(set->group_rows);
        dm_free(set->group_n);
        dm_free(set->mean);
        dm_free(set->sd);
        dm_free(set->classes);
        dm_free(set->holdout);
        dm_free(set->valid_tv);
        dm_free(set->ho_sx);
        dm_free(set->ho_sxx);
        memset(set, 0, sizeof(*set));
}

/* ---- test data -------------------------------------------------------------------- */

static int same_columns(const struct store_schema *a, const struct store_schema *b)
{
        if (a->n_cols != b->n_cols || a->target != b->target)
                return 0;
        for (uint32_t c = 0; c < a->n_cols; c++)
                if (strcmp(a->cols[c].name, b->cols[c].name) != 0)
                        return 0;
        return 1;
}

static void columns_text(const struct store_schema *sc, char *out, size_t size)
{
        size_t at = 0;

        out[0] = 0;
        for (uint32_t c = 0; c < sc->n_cols && at + 8 < size; c++) {
                int n = snprintf(out + at, size - at, "%s%s%s", c ? "," : "", sc->cols[c].name,
                                 (int32_t)c == sc->target ? "*" : "");
                if (n < 0 || (size_t)n >= size - at) {
                        snprintf(out + (size > 4 ? size - 4 : 0), 4, "...");
                        return;
                }
                at += (size_t)n;
        }
}

int jd_columns_match(const char *train_name, const struct store_schema *train,
                     const char *test_name, const struct store_schema *test, char *errmsg,
                     size_t errmsg_size)
{
        char a[256], b[256];

        if (same_columns(train, test))
                return 0;
        columns_text(test, a, sizeof(a));
        columns_text(train, b, sizeof(b));
        snprintf(errmsg, errmsg_size,
                 "test dataset '%s' has columns (%s) but training dataset '%s' has (%s) "
                 "(* = target)",
                 test_name, a, train_name, b);
        return DREAM_E_SCHEMA;
}

static int labels_of(const struct jd_set *set, const double *tv, size_t n, float *y,
                     uint64_t *ret_unknown, const char *what, char *errmsg, size_t errmsg_size)
{
        double *extra = NULL;
        uint64_t n_extra = 0;

        *ret_unknown = 0;
        if (set->problem.task != TRAIN_TASK_CLASSIFICATION) {
                for (size_t i = 0; i < n; i++)
                        y[i] = (float)tv[i];
                return 0;
        }
        /* Classes the training data lacks get indices K, K+1, ...: the model
         * never predicts them, so they count as errors. */
        extra = dm_mallocarray(n + 1, sizeof(double));
        if (!extra)
                return DREAM_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
                int64_t k = class_index(set->classes, set->n_classes, tv[i]);
                if (k < 0) {
                        uint64_t e = 0;
                        while (e < n_extra && extra[e] != tv[i])
                                e++;
                        if (e == n_extra && n_extra == MAX_UNKNOWN_CLASSES) {
                                snprintf(errmsg, errmsg_size,
                                         "%s: more than %u target values the training data "
                                         "does not have",
                                         what, MAX_UNKNOWN_CLASSES);
                                dm_free(extra);
                                return DREAM_E_LIMIT;
                        }
                        if (e == n_extra)
                                extra[n_extra++] = tv[i];
                        k = (int64_t)(set->n_classes + e);
                }
                y[i] = (float)k;
        }
        dm_free(extra);
        *ret_unknown = n_extra;
        return 0;
}

/* Every row of a table with the training set's columns into rows. */
static int rows_from_table(const struct jd_set *set, const struct gd_table *t, const char *what,
                           struct jd_rows *ret_rows, uint64_t *ret_unknown, char *errmsg,
                           size_t errmsg_size)
{
        struct jd_rows rows = {0};
        double *tv = NULL;
        int r;

        *ret_unknown = 0;
        r = jd_table_features(t, set->target, &rows.x);
        rows.n = rows.cap = t->n_rows;
        rows.d = set->d;
        if (r == 0 && set->problem.task != TRAIN_TASK_CLUSTERING) {
                rows.y = dm_mallocarray(t->n_rows + 1, sizeof(float));
                r = rows.y ? target_values(t, set->target, &tv) : DREAM_E_NOMEM;
                if (r == 0)
                        r = labels_of(set, tv, t->n_rows, rows.y, ret_unknown, what, errmsg,
                                      errmsg_size);
        }
        dm_free(tv);
        if (r < 0) {
                if (r == DREAM_E_NOMEM)
                        snprintf(errmsg, errmsg_size, "%s: out of memory", what);
                jd_rows_release(&rows);
                return r;
        }
        *ret_rows = rows;
        return 0;
}

int jd_all_rows(struct store *store, const struct jd_set *set, struct jd_rows *ret_rows,
                uint64_t *ret_unknown, char *errmsg, size_t errmsg_size)
{
        struct gd_table *t = NULL;
        char what[DREAM_MAX_NAME + 16];
        int r = store_read_all(store, set->dataset, set->dataset_id, &t);

        if (r < 0) {
                read_error(set, r, "its rows to evaluate the model on them", errmsg, errmsg_size);
                return r;
        }
        snprintf(what, sizeof(what), "dataset '%s'", set->dataset);
        r = rows_from_table(set, t, what, ret_rows, ret_unknown, errmsg, errmsg_size);
        gd_table_free(t);
        return r;
}

int jd_test(struct store *store, const struct jd_set *set, const char *train_name,
            const char *test_name, struct jd_rows *ret_rows, uint64_t *ret_unknown, char *errmsg,
            size_t errmsg_size)
{
        struct store_info *tr = NULL, *te = NULL;
        struct gd_table *t = NULL;
        char what[DREAM_MAX_NAME + 32];
        int r;

        r = store_dataset_describe(store, test_name, &te);
        if (r == 0 && set->test_dataset_id && te->id != set->test_dataset_id) {
                snprintf(errmsg, errmsg_size,
                         "test dataset '%s' was dropped and created again after this job was "
                         "submitted; train again to evaluate on the dataset now under that name",
                         test_name);
                store_info_free(te);
                return DREAM_E_NOTFOUND;
        }
        if (r < 0) {
                snprintf(errmsg, errmsg_size, "test dataset '%s': %s", test_name,
                         r == DREAM_E_NOTFOUND ? "no such dataset" : dream_strerror(r));
                return r;
        }
        /* The columns the model was trained on: those of the training
         * dataset the job read, not of one made since under its name. */
        r = store_dataset_describe(store, train_name, &tr);
        if (r == 0 && tr->id != set->dataset_id)
                r = DREAM_E_NOTFOUND;
        if (r == 0)
                r = jd_columns_match(train_name, &tr->schema, test_name, &te->schema, errmsg,
                                     errmsg_size);
        else
                read_error(set, r, "its columns to check the test dataset's", errmsg, errmsg_size);
        if (r == 0) {
                /* Pinned: the test dataset whose columns were just checked. */
                r = store_read_all(store, test_name, te->id, &t);
                if (r == DREAM_E_NOTFOUND)
                        snprintf(errmsg, errmsg_size,
                                 "test dataset '%s' was dropped while this job was reading it; "
                                 "train again to evaluate on the dataset now under that name",
                                 test_name);
                else if (r < 0)
                        snprintf(errmsg, errmsg_size, "test dataset '%s': cannot read it: %s",
                                 test_name, dream_strerror(r));
        }
        if (r == 0) {
                snprintf(what, sizeof(what), "test dataset '%s'", test_name);
                r = rows_from_table(set, t, what, ret_rows, ret_unknown, errmsg, errmsg_size);
        }
        gd_table_free(t);
        store_info_free(tr);
        store_info_free(te);
        return r;
}
