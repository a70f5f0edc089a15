/* Stage 1: condensed samples for learning (docs/method.md section 4).
 *
 * Within each class (or over all rows without classes):
 * 1. whole bits of the order split every group while the count stays within
 *    the class's share of m_max;
 * 2. fill: the largest group is split by its next bit of the order that is
 *    not constant in it, one at a time, up to the share (GD_FILL_SPLIT);
 * 3. refine: a few Lloyd steps move rows between neighbouring groups to the
 *    nearest mean in standardised units (GD_REFINE_*);
 * then each group gives its mean, weighted by its size. Groups never mix
 * classes, weights sum to n, and there are never more than m_max samples.
 * What each step gained (and what was tried and dropped) is measured by
 * bench/train/bench_modes and recorded in BENCHMARKS.md, "Training modes". */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/par.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"
#include "storage/gd/refine.h"

int gd_budget_parse(const char *s, struct gd_budget *ret)
{
        char *end;
        struct gd_budget b = {0};

        if (!s || !*s)
                return DREAM_E_BUDGET;
        if (strchr(s, '.') || strchr(s, '%') || strchr(s, 'e') || strchr(s, 'E')) {
                double f = strtod(s, &end);
                if (*end == '%') {
                        f /= 100.0;
                        end++;
                }
                if (*end || !(f > 0.0) || f > 1.0)
                        return DREAM_E_BUDGET;
                b.fraction = f;
        } else {
                if (*s == '-' || *s == '+')
                        return DREAM_E_BUDGET;
                unsigned long long c = strtoull(s, &end, 10);
                if (*end || c == 0)
                        return DREAM_E_BUDGET;
                b.count = c;
        }
        *ret = b;
        return 0;
}

uint64_t gd_budget_rows(const struct gd_budget *b, uint64_t n)
{
        uint64_t m = b->count ? b->count : (uint64_t)floor(b->fraction * (double)n);
        if (m < 1)
                m = 1;
        return m > n ? n : m;
}

struct bit_rank {
        double h;
        uint32_t pos;
};

static int cmp_desc(const void *a, const void *b)
{
        const struct bit_rank *x = a, *y = b;
        if (x->h != y->h)
                return x->h > y->h ? -1 : 1;
        return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

/* The feature bits of a row subset in the order they are added. */
static int bit_order(const struct gd_planes *p, const struct gd_table *t, enum gd_order order,
                     const double *h, uint32_t *ret_bits, uint32_t *ret_n)
{
        uint32_t cnt = 0;
        if (order == GD_ORDER_ENTROPY) {
                struct bit_rank *rk = dm_mallocarray(p->n_bits ? p->n_bits : 1, sizeof(*rk));
                if (!rk)
                        return DREAM_E_NOMEM;
                for (uint32_t j = 0; j < t->n_cols; j++) {
                        if ((int32_t)j == t->target)
                                continue;
                        for (uint32_t b = p->col_start[j]; b < p->col_start[j + 1]; b++) {
                                if (h[b] > 0.0)
                                        rk[cnt++] = (struct bit_rank){h[b], b};
                        }
                }
                qsort(rk, cnt, sizeof(*rk), cmp_desc);
                for (uint32_t i = 0; i < cnt; i++)
                        ret_bits[i] = rk[i].pos;
                dm_free(rk);
        } else {
                /* msb: round-robin over columns, each time the column's next most
                 * significant bit that is not constant in the subset. */
                int more = 1;
                for (uint32_t round = 0; more; round++) {
                        more = 0;
                        for (uint32_t j = 0; j < t->n_cols; j++) {
                                uint32_t w = p->col_start[j + 1] - p->col_start[j];
                                if ((int32_t)j == t->target || round >= w)
                                        continue;
                                more = 1;
                                uint32_t b = p->col_start[j] + round;
                                if (h[b] > 0.0)
                                        ret_bits[cnt++] = b;
                        }
                }
        }
        *ret_n = cnt;
        return 0;
}

/* ---- filling the budget ------------------------------------------------ */

struct split_group {
        uint32_t start, len; /* members: perm[start .. start + len) */
        uint32_t next;       /* first bit of the rest of the order still to try */
};

/* Max-heap of group ids by size (ties: lower id first, for determinism). */
static int heap_before(const struct split_group *gs, uint32_t a, uint32_t b)
{
        return gs[a].len != gs[b].len ? gs[a].len > gs[b].len : a < b;
}

static void heap_push(uint32_t *heap, uint32_t *len, const struct split_group *gs, uint32_t id)
{
        uint32_t i = (*len)++;
        heap[i] = id;
        while (i > 0) {
                uint32_t up = (i - 1) / 2;
                if (!heap_before(gs, heap[i], heap[up]))
                        break;
                uint32_t tmp = heap[i];
                heap[i] = heap[up];
                heap[up] = tmp;
                i = up;
        }
}

static uint32_t heap_pop(uint32_t *heap, uint32_t *len, const struct split_group *gs)
{
        uint32_t top = heap[0], i = 0;
        heap[0] = heap[--(*len)];
        for (;;) {
                uint32_t l = 2 * i + 1, r = l + 1, best = i;
                if (l < *len && heap_before(gs, heap[l], heap[best]))
                        best = l;
                if (r < *len && heap_before(gs, heap[r], heap[best]))
                        best = r;
                if (best == i)
                        break;
                uint32_t tmp = heap[i];
                heap[i] = heap[best];
                heap[best] = tmp;
                i = best;
        }
        return top;
}

/* Use the budget the whole-bit stage left: split the largest group by the
 * first bit of the rest of the order (`bits`, from the bit that would have
 * exceeded m) that is not constant in it, one group at a time, until m
 * groups or no group can be split. gid (n entries, labels < *groups) is
 * updated in place; existing labels keep their rows' first part. */
static int fill_split(const struct gd_planes *p, const uint64_t *rows, uint64_t n, uint64_t m,
                      const uint32_t *bits, uint32_t n_bits, uint32_t *gid, uint32_t *groups)
{
        uint32_t g0 = *groups, ng = g0, heap_len = 0;
        uint32_t *perm = dm_mallocarray(n, sizeof(uint32_t));
        uint32_t *heap = dm_mallocarray(m, sizeof(uint32_t));
        struct split_group *gs = dm_calloc(m, sizeof(*gs));
        int r = DREAM_E_NOMEM;

        if (!perm || !heap || !gs)
                goto out;
        /* Members of each group contiguous in perm (counting sort). */
        for (uint64_t i = 0; i < n; i++)
                gs[gid[i]].len++;
        for (uint32_t q = 1; q < g0; q++)
                gs[q].start = gs[q - 1].start + gs[q - 1].len;
        for (uint32_t q = 0; q < g0; q++)
                gs[q].len = 0;
        for (uint64_t i = 0; i < n; i++) {
                struct split_group *sg = &gs[gid[i]];
                perm[sg->start + sg->len++] = (uint32_t)i;
        }
        for (uint32_t q = 0; q < g0; q++) {
                if (gs[q].len > 1)
                        heap_push(heap, &heap_len, gs, q);
        }
        while (ng < m && heap_len > 0) {
                uint32_t q = heap_pop(heap, &heap_len, gs);
                struct split_group *sg = &gs[q];
                uint32_t *mem = perm + sg->start;
                for (uint32_t b = sg->next; b < n_bits; b++) {
                        uint32_t ones = 0;
                        for (uint32_t k = 0; k < sg->len; k++) {
                                uint64_t row = rows ? rows[mem[k]] : mem[k];
                                ones += (uint32_t)gd_planes_bit(p, bits[b], row);
                        }
                        if (ones == 0 || ones == sg->len)
                                continue;
                        /* Zeros first (they stay group q), ones become group ng. */
                        uint32_t lo = 0, hi = sg->len;
                        while (lo < hi) {
                                uint64_t row = rows ? rows[mem[lo]] : mem[lo];
                                if (gd_planes_bit(p, bits[b], row)) {
                                        uint32_t tmp = mem[lo];
                                        mem[lo] = mem[--hi];
                                        mem[hi] = tmp;
                                } else {
                                        lo++;
                                }
                        }
                        gs[ng] = (struct split_group){sg->start + lo, sg->len - lo, b + 1};
                        sg->len = lo;
                        sg->next = b + 1;
                        for (uint32_t k = 0; k < gs[ng].len; k++)
                                gid[perm[gs[ng].start + k]] = ng;
                        if (sg->len > 1)
                                heap_push(heap, &heap_len, gs, q);
                        if (gs[ng].len > 1)
                                heap_push(heap, &heap_len, gs, ng);
                        ng++;
                        break;
                }
                /* A group no bit splits is rows with equal features: final. */
        }
        *groups = ng;
        r = 0;
out:
        dm_free(gs);
        dm_free(heap);
        dm_free(perm);
        return r;
}

/* Group one row subset under budget m; ret_gid gets each row's group and
 * ret_groups the count. */
static int group_subset(const struct gd_planes *p, const struct gd_table *t, const uint64_t *rows,
                        uint64_t n, uint64_t m, enum gd_order order, enum gd_fill fill,
                        const double *h, uint32_t *ret_gid, uint32_t *ret_groups,
                        uint32_t *ret_bits_used)
{
        struct gd_groups g;
        uint32_t *bits = NULL, n_bits = 0, used = 0;
        int r;

        r = gd_groups_init(&g, rows, n);
        if (r < 0)
                return r;
        bits = dm_mallocarray(p->n_bits ? p->n_bits : 1, sizeof(uint32_t));
        if (!bits) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        r = bit_order(p, t, order, h, bits, &n_bits);
        if (r < 0)
                goto out;
        uint32_t i;
        for (i = 0; i < n_bits && g.n_groups < n; i++) {
                uint32_t cnt;
                r = gd_groups_try(&g, p, bits[i], &cnt);
                if (r < 0)
                        goto out;
                if (cnt > m)
                        break; /* never exceed the budget */
                gd_groups_commit(&g, cnt);
                used++;
        }
        memcpy(ret_gid, g.gid, n * sizeof(uint32_t));
        *ret_groups = g.n_groups;
        if (fill != GD_FILL_NONE && i < n_bits && g.n_groups < m) {
                r = fill_split(p, rows, n, m, bits + i, n_bits - i, ret_gid, ret_groups);
                if (r < 0)
                        goto out;
        }
        *ret_bits_used = used;
out:
        dm_free(bits);
        gd_groups_release(&g);
        return r;
}

/* Entropy of every bit over the rows of one set: through a bitset of the
 * set's rows (one AND and popcount per word of a plane) when the set is dense
 * enough, else row by row (gd_entropy). mask: p->words words of scratch. */
static int set_entropy(const struct gd_planes *p, const uint64_t *rows, uint64_t n, uint64_t *mask,
                       double *ret_h)
{
        if (n < p->words)
                return gd_entropy(p, rows, n, ret_h);
        if (n == 0)
                return DREAM_E_EMPTY;
        memset(mask, 0, p->words * sizeof(uint64_t));
        for (uint64_t i = 0; i < n; i++)
                mask[rows[i] >> 6] |= 1ull << (rows[i] & 63);
        for (uint32_t b = 0; b < p->n_bits; b++) {
                const uint64_t *plane = p->bits + (uint64_t)b * p->words;
                uint64_t ones = 0;
                for (uint64_t w = 0; w < p->words; w++)
                        ones += (uint64_t)__builtin_popcountll(plane[w] & mask[w]);
                if (ones == 0 || ones == n) {
                        ret_h[b] = 0.0;
                } else {
                        double q = (double)ones / (double)n;
                        ret_h[b] = -q * log2(q) - (1.0 - q) * log2(1.0 - q);
                }
        }
        return 0;
}

/* ---- classes and budget -------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

/* Class index of every row taking part (classes = the sorted distinct
 * target values of those rows); rows left out get UINT32_MAX. */
static int classify(const struct gd_table *t, const uint8_t *out_row, uint32_t *ret_cls,
                    int64_t **ret_vals, uint32_t *ret_k)
{
        const int64_t *v = t->cols[t->target].v;
        int64_t *vals = dm_mallocarray(t->n_rows, sizeof(int64_t));
        uint64_t k = 0, cnt = 0;
        if (!vals)
                return DREAM_E_NOMEM;
        for (uint64_t i = 0; i < t->n_rows; i++) {
                if (!out_row || !out_row[i])
                        vals[cnt++] = v[i];
        }
        qsort(vals, cnt, sizeof(int64_t), cmp_i64);
        for (uint64_t i = 0; i < cnt; i++) {
                if (i == 0 || vals[i] != vals[k - 1])
                        vals[k++] = vals[i];
        }
        if (k > UINT32_MAX) {
                dm_free(vals);
                return DREAM_E_LIMIT;
        }
        for (uint64_t i = 0; i < t->n_rows; i++) {
                if (out_row && out_row[i]) {
                        ret_cls[i] = UINT32_MAX;
                        continue;
                }
                const int64_t *hit = bsearch(&v[i], vals, k, sizeof(int64_t), cmp_i64);
                ret_cls[i] = (uint32_t)(hit - vals);
        }
        *ret_vals = vals;
        *ret_k = (uint32_t)k;
        return 0;
}

/* Share m among classes in proportion to their sizes, each at least 1 and
 * the total exactly m (largest remainders). DREAM_E_NOMEM rather than another
 * share when memory runs out, so that the samples never depend on it. */
static int share_budget(const uint64_t *sizes, uint32_t k, uint64_t n, uint64_t m, uint64_t *ret_m)
{
        uint64_t given = 0, rest = m - k;
        double *frac = dm_mallocarray(k, sizeof(double));
        if (!frac)
                return DREAM_E_NOMEM;
        for (uint32_t c = 0; c < k; c++) {
                double exact = (double)rest * (double)sizes[c] / (double)n;
                ret_m[c] = 1 + (uint64_t)floor(exact);
                frac[c] = exact - floor(exact);
                given += ret_m[c];
        }
        while (given < m) {
                uint32_t best = 0;
                for (uint32_t c = 1; c < k; c++) {
                        if (frac[c] > frac[best])
                                best = c;
                }
                ret_m[best]++;
                frac[best] = -1.0;
                given++;
        }
        dm_free(frac);
        return 0;
}

/* ---- per set work ---------------------------------------------------------- */

struct set_job {
        const uint64_t *rows; /* the set's rows, ascending */
        uint64_t n, m;        /* rows, budget */
        uint32_t *gid;        /* n: group of each row */
        uint32_t groups, bits_used;
        int r;
};

struct sets {
        const struct gd_table *t;
        const struct gd_planes *p;
        const struct gd_condense_opts *opts;
        enum gd_fill fill;
        uint32_t steps;
        uint32_t d;                    /* features */
        const struct refine_space *sp; /* NULL: grouping; else refining */
        const uint64_t *start;         /* first row of each set, in set order */
        struct set_job *jobs;
        uint32_t k;
        atomic_uint next;
};

static int group_set(const struct sets *ss, struct set_job *j)
{
        const struct gd_planes *p = ss->p;
        double *h = dm_mallocarray(p->n_bits ? p->n_bits : 1, sizeof(double));
        uint64_t *mask = dm_mallocarray(p->words ? p->words : 1, sizeof(uint64_t));
        int r = DREAM_E_NOMEM;
        if (h && mask)
                r = set_entropy(p, j->rows, j->n, mask, h);
        if (r == 0)
                r = group_subset(p, ss->t, j->rows, j->n, j->m, ss->opts->order, ss->fill, h,
                                 j->gid, &j->groups, &j->bits_used);
        dm_free(mask);
        dm_free(h);
        return r;
}

/* A worker: takes the next set until none is left. */
static void sets_worker(void *arg)
{
        struct sets *ss = *(struct sets **)arg;
        for (;;) {
                uint32_t q = atomic_fetch_add(&ss->next, 1);
                if (q >= ss->k)
                        return;
                struct set_job *j = &ss->jobs[q];
                if (!ss->sp)
                        j->r = group_set(ss, j);
                else if (gd_refine_affordable(j->groups, ss->d)) /* on all features */
                        j->r = gd_refine_set(ss->sp->z + (size_t)ss->start[q] * ss->sp->dims,
                                             ss->sp->dims, j->n, ss->steps, j->gid, &j->groups);
        }
}

static int sets_run(struct sets *ss, uint32_t threads)
{
        struct sets *w[DREAM_MAX_PAR_THREADS];
        uint32_t n = threads < ss->k ? threads : ss->k;
        if (n > DREAM_MAX_PAR_THREADS)
                n = DREAM_MAX_PAR_THREADS;
        for (uint32_t i = 0; i < n; i++)
                w[i] = ss;
        atomic_store(&ss->next, 0);
        dm_par_each(sets_worker, w, sizeof(w[0]), n ? n : 1);
        for (uint32_t q = 0; q < ss->k; q++) {
                if (ss->jobs[q].r < 0)
                        return ss->jobs[q].r;
        }
        return 0;
}

#define SAMPLE_BLOCK_ROWS 2048u /* column values converted at a time */

/* ---- samples --------------------------------------------------------------- */

struct sample_share {
        const struct gd_table *t;
        struct gd_condensed *c;
        const uint32_t *grp;   /* sample of each table row, UINT32_MAX: none */
        const uint64_t *first; /* first row of each sample */
        uint32_t f0, f1;       /* features of this share */
        int r;
};

/* Mean and population variance of each sample's rows for the features
 * [f0, f1), one pass over each column: plain sums for the mean, sums and
 * sums of squares shifted by the sample's first row for the variance (no
 * cancellation when the spread is small beside the values). */
static void sample_features(void *arg)
{
        struct sample_share *sh = arg;
        struct gd_condensed *c = sh->c;
        const uint64_t n = sh->t->n_rows;
        const uint32_t m = c->m, d = c->d;
        double col[SAMPLE_BLOCK_ROWS];
        double *acc = dm_mallocarray((size_t)m * 4, sizeof(double));
        if (!acc) {
                sh->r = DREAM_E_NOMEM;
                return;
        }
        for (uint32_t f = sh->f0; f < sh->f1; f++) {
                memset(acc, 0, (size_t)m * 4 * sizeof(double));
                /* Rows in table order: a sample's first row comes first and
                 * sets its shift. */
                for (uint64_t b0 = 0; b0 < n; b0 += SAMPLE_BLOCK_ROWS) {
                        const uint64_t cnt =
                            n - b0 < SAMPLE_BLOCK_ROWS ? n - b0 : SAMPLE_BLOCK_ROWS;
                        gd_column_range(&sh->t->cols[c->feature_cols[f]], b0, cnt, col);
                        for (uint64_t k = 0; k < cnt; k++) {
                                const uint32_t g = sh->grp[b0 + k];
                                if (g == UINT32_MAX)
                                        continue;
                                double *a = acc + 4 * (size_t)g; /* shift, sum, shifted
                                                                    sum and squares */
                                const double x = col[k];
                                if (b0 + k == sh->first[g])
                                        a[0] = x;
                                const double e = x - a[0];
                                a[1] += x;
                                a[2] += e;
                                a[3] += e * e;
                        }
                }
                for (uint32_t g = 0; g < m; g++) {
                        const double *a = acc + 4 * (size_t)g, w = c->w[g];
                        double var = (a[3] - a[2] * a[2] / w) / w;
                        c->x[(size_t)g * d + f] = a[1] / w;
                        c->v[(size_t)g * d + f] = var > 0 && isfinite(var) ? var : 0.0;
                }
        }
        dm_free(acc);
}

/* x, v and w of every sample (y: the caller). */
static int sample_stats(const struct gd_table *t, const uint32_t *grp, uint32_t threads,
                        struct gd_condensed *c)
{
        uint64_t *first = dm_mallocarray(c->m ? c->m : 1, sizeof(uint64_t));
        if (!first)
                return DREAM_E_NOMEM;
        for (uint32_t g = 0; g < c->m; g++)
                c->w[g] = 0;
        for (uint64_t i = t->n_rows; i-- > 0;) {
                if (grp[i] == UINT32_MAX)
                        continue;
                first[grp[i]] = i;
                c->w[grp[i]] += 1.0;
        }
        const uint32_t half = threads > 1 && c->d > 1 ? c->d / 2 : c->d;
        struct sample_share sh[2] = {{t, c, grp, first, 0, half, 0},
                                     {t, c, grp, first, half, c->d, 0}};
        if (half < c->d)
                dm_par2(sample_features, &sh[0], &sh[1]);
        else
                sample_features(&sh[0]);
        dm_free(first);
        return sh[0].r < 0 ? sh[0].r : sh[1].r;
}

/* ---- stage 1 ----------------------------------------------------------------- */

#define DEFAULT_THREADS 4u

static uint32_t threads_of(const struct gd_condense_opts *o)
{
        if (o->threads)
                return o->threads > DREAM_MAX_PAR_THREADS ? DREAM_MAX_PAR_THREADS : o->threads;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        return cpus < 1 ? 1 : cpus > DEFAULT_THREADS ? DEFAULT_THREADS : (uint32_t)cpus;
}

/* The exclusion: sorted, distinct, within the table. */
static int exclusion_mask(const struct gd_table *t, const struct gd_condense_opts *o, uint8_t **ret)
{
        *ret = NULL;
        if (o->n_exclude == 0)
                return 0;
        if (!o->exclude)
                return DREAM_E_INVAL;
        if (o->n_exclude >= t->n_rows)
                return DREAM_E_EMPTY;
        uint8_t *out_row = dm_calloc(t->n_rows, 1);
        if (!out_row)
                return DREAM_E_NOMEM;
        for (uint64_t e = 0; e < o->n_exclude; e++) {
                if (o->exclude[e] >= t->n_rows || (e > 0 && o->exclude[e] <= o->exclude[e - 1])) {
                        dm_free(out_row);
                        return DREAM_E_INVAL;
                }
                out_row[o->exclude[e]] = 1;
        }
        *ret = out_row;
        return 0;
}

int gd_condense(const struct gd_table *t, const struct gd_condense_opts *opts,
                struct gd_condensed **ret)
{
        const uint64_t n = t->n_rows;
        struct gd_colparam *params = NULL;
        struct gd_planes *p = NULL;
        struct gd_condensed *c = NULL;
        struct refine_space sp = {0};
        struct sets ss = {0};
        uint32_t *cls = NULL, *gid = NULL, *grp = NULL, k = 1, total = 0;
        uint64_t *order = NULL, *sizes = NULL, *start = NULL;
        uint32_t *first_group = NULL;
        int64_t *class_vals = NULL;
        uint8_t *out_row = NULL;
        int r;

        if (n == 0)
                return DREAM_E_EMPTY;
        if (n > UINT32_MAX - 1)
                return DREAM_E_LIMIT;
        r = exclusion_mask(t, opts, &out_row);
        if (r < 0)
                return r;
        const uint64_t n_in = n - opts->n_exclude;
        const int classwise = t->target >= 0 && t->task == GD_TASK_CLASSIFICATION;
        const uint64_t m = gd_budget_rows(&opts->budget, n_in);
        const uint32_t threads = threads_of(opts);
        ss.t = t;
        ss.opts = opts;
        ss.fill = opts->fill == GD_FILL_DEFAULT ? GD_FILL_SPLIT : opts->fill;
        ss.steps = opts->refine == GD_REFINE_DEFAULT ? REFINE_DEFAULT_STEPS
                   : opts->refine < 0                ? 0
                   : opts->refine > 100              ? 100
                                                     : (uint32_t)opts->refine;

        params = dm_mallocarray(t->n_cols, sizeof(*params));
        cls = dm_calloc(n, sizeof(uint32_t));
        gid = dm_mallocarray(n_in, sizeof(uint32_t));
        grp = dm_mallocarray(n, sizeof(uint32_t));
        order = dm_mallocarray(n_in, sizeof(uint64_t));
        if (!params || !cls || !gid || !grp || !order) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        /* The bits' min and width over the rows taking part: the bits of
         * the table without the rows left out. */
        r = gd_prep_compute_rows(t, out_row, params);
        if (r == 0)
                r = gd_planes_build_threads(t, params, threads, &p);
        if (r == 0 && classwise)
                r = classify(t, out_row, cls, &class_vals, &k);
        else if (r == 0 && out_row)
                for (uint64_t i = 0; i < n; i++)
                        cls[i] = out_row[i] ? UINT32_MAX : 0;
        if (r < 0)
                goto out;
        if (m < k) {
                r = DREAM_E_BUDGET; /* every class needs at least one sample */
                goto out;
        }
        sizes = dm_calloc(k, sizeof(uint64_t));
        start = dm_calloc((size_t)k + 1, sizeof(uint64_t));
        first_group = dm_calloc((size_t)k + 1, sizeof(uint32_t));
        ss.jobs = dm_calloc(k, sizeof(*ss.jobs));
        if (!sizes || !start || !first_group || !ss.jobs) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        /* Rows taking part ordered by class (counting sort, stable); grp
         * holds each row's place in that order meanwhile. */
        for (uint64_t i = 0; i < n; i++) {
                if (cls[i] != UINT32_MAX)
                        sizes[cls[i]]++;
        }
        for (uint32_t q = 0; q < k; q++)
                start[q + 1] = start[q] + sizes[q];
        {
                uint64_t *at = dm_mallocarray(k, sizeof(uint64_t));
                if (!at) {
                        r = DREAM_E_NOMEM;
                        goto out;
                }
                memcpy(at, start, k * sizeof(uint64_t));
                for (uint64_t i = 0; i < n; i++) {
                        if (cls[i] == UINT32_MAX) {
                                grp[i] = UINT32_MAX;
                                continue;
                        }
                        grp[i] = (uint32_t)at[cls[i]];
                        order[at[cls[i]]++] = i;
                }
                dm_free(at);
        }
        {
                uint64_t *budget = dm_calloc(k, sizeof(uint64_t));
                if (!budget) {
                        r = DREAM_E_NOMEM;
                        goto out;
                }
                if (k == 1)
                        budget[0] = m;
                else
                        r = share_budget(sizes, k, n_in, m, budget);
                for (uint32_t q = 0; q < k; q++)
                        ss.jobs[q] = (struct set_job){.rows = order + start[q],
                                                      .n = sizes[q],
                                                      .m = budget[q],
                                                      .gid = gid + start[q]};
                dm_free(budget);
                if (r < 0)
                        goto out;
        }

        const uint32_t d = t->n_cols - (t->target >= 0 ? 1 : 0);
        uint32_t *fcols = dm_mallocarray(d ? d : 1, sizeof(uint32_t));
        if (!fcols) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        for (uint32_t j = 0, f = 0; j < t->n_cols; j++) {
                if ((int32_t)j != t->target)
                        fcols[f++] = j;
        }
        /* Groups of every set, then (when some set has groups to refine)
         * the rows' coordinates and the Lloyd steps. */
        ss.p = p;
        ss.k = k;
        ss.d = d;
        ss.start = start;
        r = sets_run(&ss, threads);
        uint32_t refinable = 0;
        for (uint32_t q = 0; q < k && r == 0; q++)
                refinable += ss.jobs[q].groups >= 2 && gd_refine_affordable(ss.jobs[q].groups, d);
        if (r == 0 && ss.steps > 0 && refinable && d > 0) {
                r = gd_space_scale(t, fcols, d, grp, n_in, threads, &sp);
                if (r == 0 && sp.dims > 0)
                        r = gd_space_build(t, grp, n_in, threads, &sp);
                if (r == 0 && sp.dims > 0) {
                        ss.sp = &sp;
                        r = sets_run(&ss, threads);
                }
        }
        if (r < 0) {
                dm_free(fcols);
                goto out;
        }
        for (uint32_t q = 0; q < k; q++) {
                first_group[q] = total;
                total += ss.jobs[q].groups;
        }
        first_group[k] = total;

        size_t cells;
        if (__builtin_mul_overflow((size_t)total, (size_t)d, &cells)) {
                dm_free(fcols);
                r = DREAM_E_OVERFLOW;
                goto out;
        }
        r = gd_condensed_new(total, d, &c);
        if (r < 0) {
                dm_free(fcols);
                goto out;
        }
        memcpy(c->feature_cols, fcols, d * sizeof(uint32_t));
        dm_free(fcols);
        for (uint32_t q = 0; q < k; q++)
                c->bits_used += ss.jobs[q].bits_used;
        /* The sample of each row. */
        for (uint64_t i = 0; i < n; i++) {
                if (cls[i] != UINT32_MAX)
                        grp[i] = first_group[cls[i]] + gid[grp[i]];
        }
        r = sample_stats(t, grp, threads, c);
        if (r < 0)
                goto out;
        if (classwise) {
                const struct gd_col *tc = &t->cols[t->target];
                for (uint32_t q = 0; q < k; q++) {
                        double yv = gd_value_f64(tc->kind, tc->scale, class_vals[q]);
                        for (uint32_t g = first_group[q]; g < first_group[q + 1]; g++)
                                c->y[g] = yv;
                }
        } else {
                for (uint32_t g = 0; g < total; g++)
                        c->y[g] = 0;
                if (t->target >= 0) {
                        const struct gd_col *tc = &t->cols[t->target];
                        for (uint64_t i = 0; i < n; i++) {
                                if (grp[i] != UINT32_MAX)
                                        c->y[grp[i]] += gd_value_f64(tc->kind, tc->scale, tc->v[i]);
                        }
                        for (uint32_t g = 0; g < total; g++)
                                c->y[g] /= c->w[g];
                }
        }
        if (opts->row_group)
                memcpy(opts->row_group, grp, n * sizeof(uint32_t));
        *ret = c;
        c = NULL;
        r = 0;
out:
        gd_space_release(&sp);
        dm_free(ss.jobs);
        dm_free(first_group);
        dm_free(start);
        dm_free(sizes);
        dm_free(class_vals);
        dm_free(order);
        dm_free(grp);
        dm_free(gid);
        dm_free(cls);
        dm_free(out_row);
        gd_planes_free(p);
        dm_free(params);
        gd_condensed_free(c);
        return r;
}
