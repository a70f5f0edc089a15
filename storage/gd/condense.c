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
                        uint32_t *ret_gid, uint32_t *ret_groups, uint32_t *ret_bits_used)
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
        dm_free(h);
        gd_groups_release(&g);
        return r;
}

/* ---- Lloyd refinement -------------------------------------------------- */

/* Column j of the table as doubles into out (the n rows `rows`, or the first n). */
static void column_f64(const struct gd_table *t, uint32_t j, const uint64_t *rows, uint64_t n,
                       double *out)
{
        const struct gd_col *c = &t->cols[j];
        const double div = c->kind == GD_DEC ? (double)gd_pow10[c->scale] : 1.0;
        for (uint64_t i = 0; i < n; i++) {
                int64_t v = c->v[rows ? rows[i] : i];
                out[i] = c->kind == GD_F64 ? gd_key_to_f64(v) : (double)v / div;
        }
}

/* Above this many multiply-adds (groups^2 * d for a class's neighbour lists)
 * a class is left as grouped: the refinement is for budgets where that is
 * cheap beside the training it saves. */
#define REFINE_MAX_WORK      4e9
#define REFINE_DEFAULT_STEPS 6

static int refine_affordable(uint32_t groups, uint32_t d)
{
        return (double)groups * (double)groups * (double)d <= REFINE_MAX_WORK;
}

typedef float gd_v8f __attribute__((vector_size(32)));

/* The ifunc resolver of target_clones runs while the dynamic loader
 * relocates, before ThreadSanitizer's runtime is set up, and crashes in its
 * instrumentation: the TSan build keeps the default clone alone. */
#if defined(__SANITIZE_THREAD__)
#define GD_CLONES
#else
#define GD_CLONES __attribute__((target_clones("avx2", "default")))
#endif

/* Squared distance; 8-float vectors (AVX2 where the CPU has it). */
GD_CLONES static float sqdist(const float *a, const float *b, uint32_t d)
{
        gd_v8f acc0 = {0}, acc1 = {0};
        uint32_t f = 0;
        for (; f + 16 <= d; f += 16) {
                gd_v8f x0, y0, x1, y1;
                memcpy(&x0, a + f, sizeof(x0));
                memcpy(&y0, b + f, sizeof(y0));
                memcpy(&x1, a + f + 8, sizeof(x1));
                memcpy(&y1, b + f + 8, sizeof(y1));
                x0 -= y0;
                x1 -= y1;
                acc0 += x0 * x0;
                acc1 += x1 * x1;
        }
        if (f + 8 <= d) {
                gd_v8f x0, y0;
                memcpy(&x0, a + f, sizeof(x0));
                memcpy(&y0, b + f, sizeof(y0));
                x0 -= y0;
                acc1 += x0 * x0;
                f += 8;
        }
        acc0 += acc1;
        float s = 0;
        for (; f < d; f++) {
                float t = a[f] - b[f];
                s += t * t;
        }
        for (uint32_t l = 0; l < 8; l++)
                s += acc0[l];
        return s;
}

/* Offer candidate h at distance dist to a list of the T nearest (sorted). */
static void offer(uint32_t *nb, float *nd, uint32_t *have, uint32_t T, uint32_t h, float dist)
{
        if (*have == T && dist >= nd[T - 1])
                return;
        uint32_t at = *have < T ? (*have)++ : T - 1;
        while (at > 0 && nd[at - 1] > dist) {
                nd[at] = nd[at - 1];
                nb[at] = nb[at - 1];
                at--;
        }
        nd[at] = dist;
        nb[at] = h;
}

/* Refine the groups of one row subset (gid, *groups) with `steps` Lloyd
 * iterations in standardised units, each row choosing among the
 * GD_REFINE_NEIGHBOURS centres nearest its group's starting centre. Empty
 * groups are dropped and the labels made dense again. */
static int refine_subset(const struct gd_table *t, const uint32_t *fcols, uint32_t d,
                         const double *mu, const double *inv_sd, const uint64_t *rows, uint64_t n,
                         uint32_t steps, uint32_t *gid, uint32_t *groups)
{
        const uint32_t G = *groups;
        const uint32_t T = G < GD_REFINE_NEIGHBOURS ? G : GD_REFINE_NEIGHBOURS;
        float *z = NULL, *cen = NULL, *nbd = NULL;
        double *sum = NULL;
        uint32_t *cnt = NULL, *nbr = NULL, *label = NULL, *have = NULL;
        int r = DREAM_E_NOMEM;

        if (G < 2 || d == 0 || !refine_affordable(G, d))
                return 0;
        size_t zc, cc;
        if (__builtin_mul_overflow((size_t)n, (size_t)d, &zc) ||
            __builtin_mul_overflow((size_t)G, (size_t)d, &cc))
                return DREAM_E_OVERFLOW;
        z = dm_mallocarray(zc, sizeof(float));
        cen = dm_mallocarray(cc, sizeof(float));
        sum = dm_mallocarray(cc, sizeof(double));
        cnt = dm_mallocarray(G, sizeof(uint32_t));
        nbr = dm_mallocarray((size_t)G * T, sizeof(uint32_t));
        have = dm_mallocarray(G, sizeof(uint32_t));
        label = dm_mallocarray(G, sizeof(uint32_t));
        nbd = dm_mallocarray((size_t)G * T, sizeof(float));
        if (!z || !cen || !sum || !cnt || !nbr || !have || !label || !nbd)
                goto out;
        {
                double *col = dm_mallocarray(n, sizeof(double));
                if (!col)
                        goto out;
                for (uint32_t f = 0; f < d; f++) {
                        column_f64(t, fcols[f], rows, n, col);
                        for (uint64_t i = 0; i < n; i++) {
                                /* Constant or non-finite columns (inv_sd 0) do not
                                 * count; huge values are clamped into float range. */
                                double v = inv_sd[f] > 0 ? (col[i] - mu[f]) * inv_sd[f] : 0.0;
                                z[i * d + f] = (float)(v > 1e30 ? 1e30 : v < -1e30 ? -1e30 : v);
                        }
                }
                dm_free(col);
        }
        for (uint32_t step = 0; step <= steps; step++) {
                /* Centres: means of the current groups (empty: kept). */
                memset(sum, 0, cc * sizeof(double));
                memset(cnt, 0, G * sizeof(uint32_t));
                for (uint64_t i = 0; i < n; i++) {
                        double *sg = sum + (size_t)gid[i] * d;
                        const float *zi = z + i * d;
                        for (uint32_t f = 0; f < d; f++)
                                sg[f] += zi[f];
                        cnt[gid[i]]++;
                }
                for (uint32_t g = 0; g < G; g++) {
                        if (!cnt[g])
                                continue;
                        for (uint32_t f = 0; f < d; f++)
                                cen[(size_t)g * d + f] = (float)(sum[(size_t)g * d + f] / cnt[g]);
                }
                if (step == steps)
                        break;
                if (step == 0) {
                        /* Each centre's T nearest centres, itself first; each
                         * pair's distance computed once, offered to both lists
                         * (nbd holds the lists' distances meanwhile). */
                        memset(have, 0, G * sizeof(uint32_t));
                        for (uint32_t g = 0; g < G; g++)
                                offer(nbr + (size_t)g * T, nbd + (size_t)g * T, &have[g], T, g,
                                      -1.0f);
                        for (uint32_t g = 0; g < G; g++) {
                                for (uint32_t h = g + 1; h < G; h++) {
                                        float dist =
                                            sqdist(cen + (size_t)g * d, cen + (size_t)h * d, d);
                                        offer(nbr + (size_t)g * T, nbd + (size_t)g * T, &have[g], T,
                                              h, dist);
                                        offer(nbr + (size_t)h * T, nbd + (size_t)h * T, &have[h], T,
                                              g, dist);
                                }
                        }
                }
                /* Distance from each centre to its neighbours: a neighbour h
                 * cannot be nearer to x than x's centre g when
                 * d(g, h) >= 2 d(x, g) (triangle inequality). */
                for (uint32_t g = 0; g < G; g++) {
                        for (uint32_t k = 0; k < T; k++) {
                                uint32_t h = nbr[(size_t)g * T + k];
                                nbd[(size_t)g * T + k] =
                                    sqdist(cen + (size_t)g * d, cen + (size_t)h * d, d);
                        }
                }
                uint64_t moved = 0;
                for (uint64_t i = 0; i < n; i++) {
                        const uint32_t *nb = nbr + (size_t)gid[i] * T;
                        const float *nd = nbd + (size_t)gid[i] * T;
                        const float *zi = z + i * d;
                        uint32_t best = gid[i];
                        const float own = sqdist(zi, cen + (size_t)best * d, d);
                        float bd = own;
                        for (uint32_t k = 0; k < T; k++) {
                                if (nb[k] == gid[i] || !cnt[nb[k]] || nd[k] >= 4.0f * own)
                                        continue;
                                float dist = sqdist(zi, cen + (size_t)nb[k] * d, d);
                                if (dist < bd) {
                                        bd = dist;
                                        best = nb[k];
                                }
                        }
                        moved += best != gid[i];
                        gid[i] = best;
                }
                if (!moved)
                        break;
        }
        /* Drop empty groups. */
        uint32_t live = 0;
        for (uint32_t g = 0; g < G; g++)
                label[g] = cnt[g] ? live++ : UINT32_MAX;
        for (uint64_t i = 0; i < n; i++)
                gid[i] = label[gid[i]];
        *groups = live;
        r = 0;
out:
        dm_free(nbd);
        dm_free(label);
        dm_free(have);
        dm_free(nbr);
        dm_free(cnt);
        dm_free(sum);
        dm_free(cen);
        dm_free(z);
        return r;
}

/* Column means and 1 / sd of the features (0 for constant columns). */
static int feature_scale(const struct gd_table *t, const uint32_t *fcols, uint32_t d,
                         double **ret_mu, double **ret_inv)
{
        double *mu = dm_calloc(d ? d : 1, sizeof(double));
        double *inv = dm_calloc(d ? d : 1, sizeof(double));
        double *col = dm_mallocarray(t->n_rows, sizeof(double));
        if (!mu || !inv || !col) {
                dm_free(col);
                dm_free(mu);
                dm_free(inv);
                return DREAM_E_NOMEM;
        }
        for (uint32_t f = 0; f < d; f++) {
                double s = 0, ss = 0;
                column_f64(t, fcols[f], NULL, t->n_rows, col);
                for (uint64_t i = 0; i < t->n_rows; i++)
                        s += col[i];
                mu[f] = s / (double)t->n_rows;
                for (uint64_t i = 0; i < t->n_rows; i++) {
                        double v = col[i] - mu[f];
                        ss += v * v;
                }
                double sd = sqrt(ss / (double)t->n_rows);
                inv[f] = sd > 0 && isfinite(sd) ? 1.0 / sd : 0.0;
                if (!isfinite(mu[f]))
                        mu[f] = 0, inv[f] = 0;
        }
        dm_free(col);
        *ret_mu = mu;
        *ret_inv = inv;
        return 0;
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
        const enum gd_fill fill = opts->fill == GD_FILL_DEFAULT ? GD_FILL_SPLIT : opts->fill;
        const int32_t steps = opts->refine == GD_REFINE_DEFAULT ? REFINE_DEFAULT_STEPS
                              : opts->refine < 0                ? 0
                              : opts->refine > 100              ? 100
                                                                : opts->refine;
        double *mu = NULL, *inv_sd = NULL;

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
                uint64_t *at = dm_mallocarray(k, sizeof(uint64_t));
                if (!at) {
                        r = DREAM_E_NOMEM;
                        goto out;
                }
                memcpy(at, start, k * sizeof(uint64_t));
                for (uint64_t i = 0; i < n; i++)
                        order[at[cls[i]]++] = i;
                dm_free(at);
        }
        if (k == 1) {
                budget[0] = m;
        } else {
                r = share_budget(sizes, k, n, m, budget);
                if (r < 0)
                        goto out;
        }

        const uint32_t d = t->n_cols - (t->target >= 0 ? 1 : 0);
        c->feature_cols = dm_mallocarray(d ? d : 1, sizeof(uint32_t));
        if (!c->feature_cols) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        for (uint32_t j = 0, f = 0; j < t->n_cols; j++) {
                if ((int32_t)j != t->target)
                        c->feature_cols[f++] = j;
        }
        for (uint32_t q = 0; q < k; q++) {
                uint32_t groups, used;
                const uint64_t *rows = k == 1 ? NULL : order + start[q];
                r = group_subset(p, t, rows, sizes[q], budget[q], opts->order, fill, gid + start[q],
                                 &groups, &used);
                if (r < 0)
                        goto out;
                if (steps > 0 && groups >= 2 && refine_affordable(groups, d) && !mu) {
                        r = feature_scale(t, c->feature_cols, d, &mu, &inv_sd);
                        if (r < 0)
                                goto out;
                }
                if (steps > 0) {
                        r = refine_subset(t, c->feature_cols, d, mu, inv_sd, rows, sizes[q],
                                          (uint32_t)steps, gid + start[q], &groups);
                        if (r < 0)
                                goto out;
                }
                first_group[q] = total;
                total += groups;
                c->bits_used += used;
        }
        first_group[k] = total;

        /* Means of each group in original units. */
        size_t cells;
        if (__builtin_mul_overflow((size_t)total, (size_t)d, &cells)) {
                r = DREAM_E_OVERFLOW;
                goto out;
        }
        c->m = total;
        c->d = d;
        c->x = dm_calloc(cells ? cells : 1, sizeof(double));
        c->y = dm_calloc(total, sizeof(double));
        c->w = dm_calloc(total, sizeof(double));
        sum_y = dm_calloc(total, sizeof(double));
        if (!c->x || !c->y || !c->w || !sum_y) {
                r = DREAM_E_NOMEM;
                goto out;
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
        dm_free(inv_sd);
        dm_free(mu);
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
