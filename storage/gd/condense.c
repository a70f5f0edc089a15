/* Stage 1: condensed samples for learning (spec section 4). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

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

void gd_condensed_free(struct gd_condensed *c)
{
        if (!c)
                return;
        dm_free(c->feature_cols);
        dm_free(c->x);
        dm_free(c->y);
        dm_free(c->w);
        dm_free(c);
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

/* Group one row subset under budget m; ret_gid gets each row's group and
 * ret_groups the count. */
static int group_subset(const struct gd_planes *p, const struct gd_table *t, const uint64_t *rows,
                        uint64_t n, uint64_t m, enum gd_order order, uint32_t *ret_gid,
                        uint32_t *ret_groups, uint32_t *ret_bits_used)
{
        struct gd_groups g;
        double *h = NULL;
        uint32_t *bits = NULL, n_bits = 0, used = 0;
        int r;

        r = gd_groups_init(&g, rows, n);
        if (r < 0)
                return r;
        h = dm_mallocarray(p->n_bits ? p->n_bits : 1, sizeof(double));
        bits = dm_mallocarray(p->n_bits ? p->n_bits : 1, sizeof(uint32_t));
        if (!h || !bits) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        r = gd_entropy(p, rows, n, h);
        if (r < 0)
                goto out;
        r = bit_order(p, t, order, h, bits, &n_bits);
        if (r < 0)
                goto out;
        for (uint32_t i = 0; i < n_bits && g.n_groups < n; i++) {
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
        *ret_bits_used = used;
out:
        dm_free(bits);
        dm_free(h);
        gd_groups_release(&g);
        return r;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

/* Class index of every row (classes = sorted distinct target values). */
static int classify(const struct gd_table *t, uint32_t *ret_cls, int64_t **ret_vals,
                    uint32_t *ret_k)
{
        const int64_t *v = t->cols[t->target].v;
        int64_t *vals = dm_mallocarray(t->n_rows, sizeof(int64_t));
        uint64_t k = 0;
        if (!vals)
                return DREAM_E_NOMEM;
        memcpy(vals, v, t->n_rows * sizeof(int64_t));
        qsort(vals, t->n_rows, sizeof(int64_t), cmp_i64);
        for (uint64_t i = 0; i < t->n_rows; i++) {
                if (i == 0 || vals[i] != vals[k - 1])
                        vals[k++] = vals[i];
        }
        if (k > UINT32_MAX) {
                dm_free(vals);
                return DREAM_E_LIMIT;
        }
        for (uint64_t i = 0; i < t->n_rows; i++) {
                const int64_t *hit = bsearch(&v[i], vals, k, sizeof(int64_t), cmp_i64);
                ret_cls[i] = (uint32_t)(hit - vals);
        }
        *ret_vals = vals;
        *ret_k = (uint32_t)k;
        return 0;
}

/* Share m among classes in proportion to their sizes, each at least 1 and
 * the total exactly m (largest remainders). */
static void share_budget(const uint64_t *sizes, uint32_t k, uint64_t n, uint64_t m, uint64_t *ret_m)
{
        uint64_t given = 0, rest = m - k;
        double *frac = dm_mallocarray(k, sizeof(double));
        for (uint32_t c = 0; c < k; c++) {
                double exact = (double)rest * (double)sizes[c] / (double)n;
                ret_m[c] = 1 + (uint64_t)floor(exact);
                if (frac)
                        frac[c] = exact - floor(exact);
                given += ret_m[c];
        }
        while (given < m) {
                uint32_t best = 0;
                for (uint32_t c = 1; c < k; c++) {
                        if (frac ? frac[c] > frac[best] : sizes[c] > sizes[best])
                                best = c;
                }
                ret_m[best]++;
                if (frac)
                        frac[best] = -1.0;
                given++;
        }
        dm_free(frac);
}

int gd_condense(const struct gd_table *t, const struct gd_condense_opts *opts,
                struct gd_condensed **ret)
{
        const uint64_t n = t->n_rows;
        struct gd_colparam *params = NULL;
        struct gd_planes *p = NULL;
        struct gd_condensed *c = NULL;
        uint32_t *cls = NULL, *gid = NULL, k = 1, total = 0;
        uint64_t *order = NULL, *sizes = NULL, *budget = NULL, *start = NULL;
        uint32_t *first_group = NULL;
        int64_t *class_vals = NULL;
        double *sum_y = NULL;
        int r;

        if (n == 0)
                return DREAM_E_EMPTY;
        if (n > UINT32_MAX)
                return DREAM_E_LIMIT;
        const int classwise = t->target >= 0 && t->task == GD_TASK_CLASSIFICATION;
        const uint64_t m = gd_budget_rows(&opts->budget, n);

        params = dm_mallocarray(t->n_cols, sizeof(*params));
        cls = dm_calloc(n, sizeof(uint32_t));
        gid = dm_mallocarray(n, sizeof(uint32_t));
        order = dm_mallocarray(n, sizeof(uint64_t));
        c = dm_calloc(1, sizeof(*c));
        if (!params || !cls || !gid || !order || !c) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        r = gd_prep_compute(t, params);
        if (r < 0)
                goto out;
        r = gd_planes_build(t, params, &p);
        if (r < 0)
                goto out;
        if (classwise) {
                r = classify(t, cls, &class_vals, &k);
                if (r < 0)
                        goto out;
        }
        if (m < k) {
                r = DREAM_E_BUDGET; /* every class needs at least one sample */
                goto out;
        }
        sizes = dm_calloc(k, sizeof(uint64_t));
        budget = dm_calloc(k, sizeof(uint64_t));
        start = dm_calloc((size_t)k + 1, sizeof(uint64_t));
        first_group = dm_calloc((size_t)k + 1, sizeof(uint32_t));
        if (!sizes || !budget || !start || !first_group) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        /* Rows ordered by class (counting sort, stable). */
        for (uint64_t i = 0; i < n; i++)
                sizes[cls[i]]++;
        for (uint32_t q = 0; q < k; q++)
                start[q + 1] = start[q] + sizes[q];
        {
                uint64_t *fill = dm_mallocarray(k, sizeof(uint64_t));
                if (!fill) {
                        r = DREAM_E_NOMEM;
                        goto out;
                }
                memcpy(fill, start, k * sizeof(uint64_t));
                for (uint64_t i = 0; i < n; i++)
                        order[fill[cls[i]]++] = i;
                dm_free(fill);
        }
        if (k == 1)
                budget[0] = m;
        else
                share_budget(sizes, k, n, m, budget);

        for (uint32_t q = 0; q < k; q++) {
                uint32_t groups, used;
                const uint64_t *rows = k == 1 ? NULL : order + start[q];
                r = group_subset(p, t, rows, sizes[q], budget[q], opts->order, gid + start[q],
                                 &groups, &used);
                if (r < 0)
                        goto out;
                first_group[q] = total;
                total += groups;
                c->bits_used += used;
        }
        first_group[k] = total;

        /* Means of each group in original units. */
        uint32_t d = t->n_cols - (t->target >= 0 ? 1 : 0);
        size_t cells;
        if (__builtin_mul_overflow((size_t)total, (size_t)d, &cells)) {
                r = DREAM_E_OVERFLOW;
                goto out;
        }
        c->m = total;
        c->d = d;
        c->feature_cols = dm_mallocarray(d ? d : 1, sizeof(uint32_t));
        c->x = dm_calloc(cells ? cells : 1, sizeof(double));
        c->y = dm_calloc(total, sizeof(double));
        c->w = dm_calloc(total, sizeof(double));
        sum_y = dm_calloc(total, sizeof(double));
        if (!c->feature_cols || !c->x || !c->y || !c->w || !sum_y) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        for (uint32_t j = 0, f = 0; j < t->n_cols; j++) {
                if ((int32_t)j != t->target)
                        c->feature_cols[f++] = j;
        }
        for (uint32_t q = 0; q < k; q++) {
                for (uint64_t s = start[q]; s < start[q + 1]; s++) {
                        uint64_t i = k == 1 ? s : order[s];
                        uint32_t g = first_group[q] + gid[s];
                        double *row = c->x + (size_t)g * d;
                        for (uint32_t f = 0; f < d; f++)
                                row[f] += gd_table_get(t, i, c->feature_cols[f]);
                        if (t->target >= 0)
                                sum_y[g] += gd_table_get(t, i, (uint32_t)t->target);
                        c->w[g] += 1.0;
                }
        }
        for (uint32_t g = 0; g < total; g++) {
                double *row = c->x + (size_t)g * d;
                for (uint32_t f = 0; f < d; f++)
                        row[f] /= c->w[g];
                c->y[g] = sum_y[g] / c->w[g];
        }
        if (classwise) {
                const struct gd_col *tc = &t->cols[t->target];
                for (uint32_t q = 0; q < k; q++) {
                        double yv = gd_value_f64(tc->kind, tc->scale, class_vals[q]);
                        for (uint32_t g = first_group[q]; g < first_group[q + 1]; g++)
                                c->y[g] = yv;
                }
        }
        *ret = c;
        c = NULL;
        r = 0;
out:
        dm_free(sum_y);
        dm_free(first_group);
        dm_free(start);
        dm_free(budget);
        dm_free(sizes);
        dm_free(class_vals);
        dm_free(order);
        dm_free(gid);
        dm_free(cls);
        gd_planes_free(p);
        dm_free(params);
        gd_condensed_free(c);
        return r;
}
