/* Stage 1's refinement (docs/method.md section 4, step c): the rows of the
 * sets in standardised units (refine_space), and Lloyd steps over one set's
 * groups, each row choosing among the centres nearest its group's. */
#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/par.h"
#include "storage/gd/gd.h"
#include "storage/gd/refine.h"

/* ---- Lloyd refinement -------------------------------------------------- */

/* Values [first, first + count) of a column as doubles, as gd_table_get
 * gives them (decimals below 2^53 by one correctly rounded division). */
void gd_column_range(const struct gd_col *c, uint64_t first, uint64_t count, double *out)
{
        const int64_t *v = c->v + first;
        const int64_t exact = INT64_C(1) << 53;
        switch (c->kind) {
        case GD_INT:
                for (uint64_t i = 0; i < count; i++)
                        out[i] = (double)v[i];
                break;
        case GD_DEC: {
                const double div = (double)gd_pow10[c->scale];
                for (uint64_t i = 0; i < count; i++)
                        out[i] = v[i] > -exact && v[i] < exact
                                     ? (double)v[i] / div
                                     : gd_value_f64(GD_DEC, c->scale, v[i]);
                break;
        }
        default:
                for (uint64_t i = 0; i < count; i++)
                        out[i] = gd_key_to_f64(v[i]);
        }
}

/* Above this many multiply-adds (groups^2 * dims for a class's neighbour
 * lists) a class is left as grouped: the refinement is for budgets where that
 * is cheap beside the training it saves. */
#define REFINE_MAX_WORK 4e9
#define SPACE_TILE_ROWS 64u /* table rows transposed at a time */
#define SPACE_TILE_COLS 16u /* columns of a tile: one cache line of floats per row */
#define NEAR_BATCH      8u  /* centres one row is compared with at a time */

int gd_refine_affordable(uint32_t groups, uint32_t dims)
{
        return (double)groups * (double)groups * (double)dims <= REFINE_MAX_WORK;
}

typedef float gd_v8f __attribute__((vector_size(32)));

/* The ifunc resolver of target_clones runs while the dynamic loader
 * relocates, before ThreadSanitizer's runtime is set up, and crashes in its
 * instrumentation: the TSan build keeps the default clone alone. x86-64-v3:
 * AVX2 and FMA. */
#if defined(__SANITIZE_THREAD__)
#define GD_CLONES
#else
#define GD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif

/* Squared distances from x to the NEAR_BATCH (8) points c[k] (d floats
 * each): x is read once for all eight, one accumulator of 8 floats per point
 * (eight independent chains: the multiply-adds overlap). */
GD_CLONES static void sqdist_batch(const float *x, const float *const *c, uint32_t d, float *out)
{
        const float *c0 = c[0], *c1 = c[1], *c2 = c[2], *c3 = c[3];
        const float *c4 = c[4], *c5 = c[5], *c6 = c[6], *c7 = c[7];
        gd_v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
        uint32_t f = 0;
#define GD_ACC(a, ck)                                                                              \
        do {                                                                                       \
                gd_v8f t;                                                                          \
                memcpy(&t, (ck) + f, sizeof(t));                                                   \
                t = xv - t;                                                                        \
                a += t * t;                                                                        \
        } while (0)
        for (; f + 8 <= d; f += 8) {
                gd_v8f xv;
                memcpy(&xv, x + f, sizeof(xv));
                GD_ACC(a0, c0);
                GD_ACC(a1, c1);
                GD_ACC(a2, c2);
                GD_ACC(a3, c3);
                GD_ACC(a4, c4);
                GD_ACC(a5, c5);
                GD_ACC(a6, c6);
                GD_ACC(a7, c7);
        }
#undef GD_ACC
        const gd_v8f acc[NEAR_BATCH] = {a0, a1, a2, a3, a4, a5, a6, a7};
        for (uint32_t k = 0; k < NEAR_BATCH; k++) {
                float s = 0;
                for (uint32_t g = f; g < d; g++) {
                        float t = x[g] - c[k][g];
                        s += t * t;
                }
                for (uint32_t l = 0; l < 8; l++)
                        s += acc[k][l];
                out[k] = s;
        }
}

/* Squared distances from x to n points (c[k]); batches padded with x. */
static void sqdist_many(const float *x, const float *const *c, uint32_t n, uint32_t d, float *out)
{
        const float *pad[NEAR_BATCH];
        float tmp[NEAR_BATCH];
        uint32_t k = 0;
        for (; k + NEAR_BATCH <= n; k += NEAR_BATCH)
                sqdist_batch(x, c + k, d, out + k);
        if (k == n)
                return;
        for (uint32_t j = 0; j < NEAR_BATCH; j++)
                pad[j] = k + j < n ? c[k + j] : x;
        sqdist_batch(x, pad, d, tmp);
        memcpy(out + k, tmp, (n - k) * sizeof(float));
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

/* State of the Lloyd steps over one set. */
struct lloyd {
        const float *z; /* n rows of d */
        uint64_t n;
        uint32_t d, G, T;
        uint32_t *gid;
        double *sum;       /* G x d: sums of each group's rows */
        uint32_t *cnt;     /* rows per group */
        uint8_t *alive;    /* group had rows when its centre was computed */
        float *cen;        /* G x d */
        float *old;        /* G x d: the previous centres */
        float *drift;      /* G: how far each centre moved (distance) */
        float *nb_drift;   /* G: largest drift among its neighbours */
        uint32_t *nbr;     /* G x T: neighbour lists, each group first in its own */
        float *nbd;        /* G x T: squared distance from the centre to each */
        float *up, *lo;    /* n: bounds on the distance to the own centre, to the others */
        const float **ptr; /* scratch: max(G, T) points */
        float *dist;       /* scratch: max(G, T) distances */
        uint32_t *have;    /* scratch: G */
        uint32_t *gstart;  /* G + 1: first member of each group in perm */
        uint32_t *perm;    /* n: rows ordered by group */
};

/* Centres from the sums; drift of each centre and of its neighbours. */
static void lloyd_centres(struct lloyd *L, int first)
{
        const uint32_t d = L->d;
        float *tmp = L->old;
        L->old = L->cen;
        L->cen = tmp;
        for (uint32_t g = 0; g < L->G; g++) {
                float *c = L->cen + (size_t)g * d;
                const float *o = L->old + (size_t)g * d;
                const double *s = L->sum + (size_t)g * d;
                L->alive[g] = L->cnt[g] > 0;
                if (!L->cnt[g]) {
                        memcpy(c, o, d * sizeof(float)); /* empty: kept */
                        L->drift[g] = 0;
                        continue;
                }
                float dd = 0;
                for (uint32_t f = 0; f < d; f++) {
                        c[f] = (float)(s[f] / L->cnt[g]);
                        dd += (c[f] - o[f]) * (c[f] - o[f]);
                }
                L->drift[g] = first ? 0 : sqrtf(dd);
        }
        if (first)
                return; /* no neighbour lists yet */
        for (uint32_t g = 0; g < L->G; g++) {
                float mx = 0;
                for (uint32_t k = 1; k < L->T; k++) {
                        uint32_t h = L->nbr[(size_t)g * L->T + k];
                        if (L->alive[h] && L->drift[h] > mx)
                                mx = L->drift[h];
                }
                L->nb_drift[g] = mx;
        }
}

/* Each centre's T nearest centres, itself first; each pair's distance
 * computed once and offered to both lists. Centres are taken NEAR_BATCH at
 * a time against tiles of NEAR_BATCH centres, which stay in cache. */
static void lloyd_neighbours(struct lloyd *L)
{
        const uint32_t G = L->G, T = L->T, d = L->d;
        uint32_t *have = L->have;
        float dist[NEAR_BATCH];
        memset(have, 0, G * sizeof(uint32_t));
        for (uint32_t g = 0; g < G; g++)
                offer(L->nbr + (size_t)g * T, L->nbd + (size_t)g * T, &have[g], T, g, -1.0f);
        for (uint32_t g0 = 0; g0 < G; g0 += NEAR_BATCH) {
                const uint32_t g1 = G - g0 < NEAR_BATCH ? G : g0 + NEAR_BATCH;
                for (uint32_t h0 = g0; h0 < G; h0 += NEAR_BATCH) {
                        const uint32_t m = G - h0 < NEAR_BATCH ? G - h0 : NEAR_BATCH;
                        for (uint32_t k = 0; k < m; k++)
                                L->ptr[k] = L->cen + (size_t)(h0 + k) * d;
                        for (uint32_t g = g0; g < g1; g++) {
                                sqdist_many(L->cen + (size_t)g * d, L->ptr, m, d, dist);
                                for (uint32_t k = 0; k < m; k++) {
                                        const uint32_t h = h0 + k;
                                        if (h <= g)
                                                continue;
                                        offer(L->nbr + (size_t)g * T, L->nbd + (size_t)g * T,
                                              &have[g], T, h, dist[k]);
                                        offer(L->nbr + (size_t)h * T, L->nbd + (size_t)h * T,
                                              &have[h], T, g, dist[k]);
                                }
                        }
                }
        }
}

/* s += z, s -= z (a row into a group's sums). */
GD_CLONES static void row_add(double *restrict s, const float *restrict z, uint32_t d)
{
        for (uint32_t f = 0; f < d; f++)
                s[f] += z[f];
}

GD_CLONES static void row_sub(double *restrict s, const float *restrict z, uint32_t d)
{
        for (uint32_t f = 0; f < d; f++)
                s[f] -= z[f];
}

static void lloyd_move(struct lloyd *L, uint64_t i, uint32_t from, uint32_t to)
{
        const float *zi = L->z + i * L->d;
        row_sub(L->sum + (size_t)from * L->d, zi, L->d);
        row_add(L->sum + (size_t)to * L->d, zi, L->d);
        L->cnt[from]--;
        L->cnt[to]++;
        L->gid[i] = to;
}

/* One assignment step: every row moves to the nearest of its group's
 * neighbour centres. Rows whose bounds show that none is nearer are not
 * measured (Hamerly): up >= the distance to the own centre, lo <= the
 * distance to every other neighbour, moved on by the centres' drifts. A
 * neighbour h cannot be nearer than the own centre g when d(g, h) >=
 * 2 d(x, g) (triangle inequality); then d(x, h) >= d(g, h) - d(x, g).
 * Returns the rows moved. */
static uint64_t lloyd_assign(struct lloyd *L, int first)
{
        const uint32_t T = L->T, d = L->d;
        uint64_t moved = 0;
        /* Rows group by group: a group's rows share its neighbours, whose
         * centres stay in cache from one row to the next. */
        memset(L->gstart, 0, ((size_t)L->G + 1) * sizeof(uint32_t));
        for (uint64_t i = 0; i < L->n; i++)
                L->gstart[L->gid[i] + 1]++;
        for (uint32_t g = 0; g < L->G; g++)
                L->gstart[g + 1] += L->gstart[g];
        memcpy(L->have, L->gstart, L->G * sizeof(uint32_t));
        for (uint64_t i = 0; i < L->n; i++)
                L->perm[L->have[L->gid[i]]++] = (uint32_t)i;
        for (uint64_t at = 0; at < L->n; at++) {
                const uint64_t i = L->perm[at];
                if (at + 1 < L->n) {
                        /* The next row is elsewhere in z: fetch it meanwhile. */
                        const char *nx = (const char *)(L->z + (size_t)L->perm[at + 1] * d);
                        for (size_t b = 0; b < (size_t)d * sizeof(float); b += 64)
                                __builtin_prefetch(nx + b);
                }
                const uint32_t g = L->gid[i];
                const uint32_t *nb = L->nbr + (size_t)g * T;
                const float *nd = L->nbd + (size_t)g * T;
                const float *zi = L->z + i * d;
                if (!first) {
                        L->up[i] += L->drift[g];
                        L->lo[i] -= L->nb_drift[g];
                        if (L->up[i] <= L->lo[i])
                                continue;
                }
                /* The own centre first; then only the neighbours the
                 * triangle inequality leaves. */
                float own;
                L->ptr[0] = L->cen + (size_t)g * d;
                sqdist_many(zi, L->ptr, 1, d, &own);
                const float u = sqrtf(own);
                if (!first && u <= L->lo[i]) {
                        L->up[i] = u;
                        continue;
                }
                float lo = INFINITY;
                uint32_t m = 0;
                for (uint32_t k = 1; k < T; k++) {
                        if (!L->alive[nb[k]])
                                continue;
                        if (nd[k] >= 4.0f * own) {
                                float b = sqrtf(nd[k]) - u;
                                lo = b < lo ? b : lo;
                                continue;
                        }
                        L->ptr[m++] = L->cen + (size_t)nb[k] * d;
                }
                sqdist_many(zi, L->ptr, m, d, L->dist);
                uint32_t best = g;
                float bd = own, nearest = INFINITY;
                for (uint32_t k = 1, j = 0; k < T; k++) {
                        if (!L->alive[nb[k]] || nd[k] >= 4.0f * own)
                                continue;
                        const float dist = L->dist[j++];
                        nearest = dist < nearest ? dist : nearest;
                        if (dist < bd) {
                                bd = dist;
                                best = nb[k];
                        }
                }
                if (best == g) {
                        const float b = sqrtf(nearest);
                        L->up[i] = u;
                        L->lo[i] = b < lo ? b : lo;
                        continue;
                }
                /* The row now has another group's neighbours: measure all
                 * of them next step. */
                L->up[i] = INFINITY;
                L->lo[i] = 0;
                lloyd_move(L, i, g, best);
                moved++;
        }
        return moved;
}

/* Refine the groups of one set (gid, *groups) with `steps` Lloyd iterations
 * over its rows' coordinates z (n rows of d floats), each row choosing among
 * the GD_REFINE_NEIGHBOURS centres nearest its group's starting centre.
 * Empty groups are dropped and the labels made dense again. */
int gd_refine_set(const float *z, uint32_t d, uint64_t n, uint32_t steps, uint32_t *gid,
                  uint32_t *groups)
{
        const uint32_t G = *groups;
        struct lloyd L = {.z = z, .n = n, .d = d, .G = G, .gid = gid};
        int r = DREAM_E_NOMEM;

        if (G < 2 || d == 0 || !gd_refine_affordable(G, d))
                return 0;
        L.T = G < GD_REFINE_NEIGHBOURS ? G : GD_REFINE_NEIGHBOURS;
        size_t cc;
        if (__builtin_mul_overflow((size_t)G, (size_t)d, &cc))
                return DREAM_E_OVERFLOW;
        L.sum = dm_calloc(cc, sizeof(double));
        L.cen = dm_calloc(cc, sizeof(float));
        L.old = dm_calloc(cc, sizeof(float));
        L.cnt = dm_calloc(G, sizeof(uint32_t));
        L.alive = dm_calloc(G, 1);
        L.drift = dm_calloc(G, sizeof(float));
        L.nb_drift = dm_calloc(G, sizeof(float));
        L.nbr = dm_mallocarray((size_t)G * L.T, sizeof(uint32_t));
        L.nbd = dm_mallocarray((size_t)G * L.T, sizeof(float));
        L.up = dm_mallocarray(n, sizeof(float));
        L.lo = dm_mallocarray(n, sizeof(float));
        L.ptr = dm_mallocarray(G, sizeof(*L.ptr));
        L.dist = dm_mallocarray(G, sizeof(float));
        L.have = dm_mallocarray(G, sizeof(uint32_t));
        L.gstart = dm_mallocarray((size_t)G + 1, sizeof(uint32_t));
        L.perm = dm_mallocarray(n, sizeof(uint32_t));
        if (!L.sum || !L.cen || !L.old || !L.cnt || !L.alive || !L.drift || !L.nb_drift || !L.nbr ||
            !L.nbd || !L.up || !L.lo || !L.ptr || !L.dist || !L.have || !L.gstart || !L.perm)
                goto out;
        for (uint64_t i = 0; i < n; i++) {
                row_add(L.sum + (size_t)gid[i] * d, z + i * d, d);
                L.cnt[gid[i]]++;
        }
        lloyd_centres(&L, 1);
        if (steps > 0)
                lloyd_neighbours(&L);
        for (uint32_t step = 0; step < steps; step++) {
                for (uint32_t g = 0; g < G; g++) {
                        for (uint32_t k = 0; k < L.T; k++)
                                L.ptr[k] = L.cen + (size_t)L.nbr[(size_t)g * L.T + k] * d;
                        sqdist_many(L.cen + (size_t)g * d, L.ptr, L.T, d, L.nbd + (size_t)g * L.T);
                }
                uint64_t moved = lloyd_assign(&L, step == 0);
                if (!moved)
                        break;
                lloyd_centres(&L, 0);
        }
        /* Drop empty groups. */
        uint32_t *label = L.have, live = 0;
        for (uint32_t g = 0; g < G; g++)
                label[g] = L.cnt[g] ? live++ : UINT32_MAX;
        for (uint64_t i = 0; i < n; i++)
                gid[i] = label[gid[i]];
        *groups = live;
        r = 0;
out:
        dm_free(L.perm);
        dm_free(L.gstart);
        dm_free(L.have);
        dm_free(L.dist);
        dm_free(L.ptr);
        dm_free(L.lo);
        dm_free(L.up);
        dm_free(L.nbd);
        dm_free(L.nbr);
        dm_free(L.nb_drift);
        dm_free(L.drift);
        dm_free(L.alive);
        dm_free(L.cnt);
        dm_free(L.old);
        dm_free(L.cen);
        dm_free(L.sum);
        return r;
}

/* ---- the space the refinement measures in ------------------------------ */

void gd_space_release(struct refine_space *sp)
{
        dm_free(sp->used);
        dm_free(sp->mu);
        dm_free(sp->inv);
        dm_free(sp->z);
        memset(sp, 0, sizeof(*sp));
}

struct scale_share {
        const struct gd_table *t;
        const uint32_t *fcols;
        const uint32_t *pos;
        uint64_t n_in;
        uint32_t f0, f1;  /* features of this share */
        double *mu, *inv; /* per feature; inv 0: not used */
        int r;
};

/* Mean and 1 / sd of the features [f0, f1) over the rows with pos[i] !=
 * UINT32_MAX (n_in of them); 1 / sd is 0 for a constant column or one with
 * non-finite statistics. */
static void scale_features(void *arg)
{
        struct scale_share *sh = arg;
        const uint64_t n = sh->t->n_rows;
        double *col = dm_mallocarray(n, sizeof(double));
        if (!col) {
                sh->r = DREAM_E_NOMEM;
                return;
        }
        for (uint32_t f = sh->f0; f < sh->f1; f++) {
                double s = 0, ss = 0;
                gd_column_range(&sh->t->cols[sh->fcols[f]], 0, n, col);
                for (uint64_t i = 0; i < n; i++)
                        s += sh->pos[i] != UINT32_MAX ? col[i] : 0.0;
                const double mu = s / (double)sh->n_in;
                for (uint64_t i = 0; i < n; i++) {
                        double v = sh->pos[i] != UINT32_MAX ? col[i] - mu : 0.0;
                        ss += v * v;
                }
                const double sd = sqrt(ss / (double)sh->n_in);
                sh->mu[f] = mu;
                sh->inv[f] = isfinite(mu) && sd > 0 && isfinite(sd) ? 1.0 / sd : 0.0;
        }
        dm_free(col);
}

/* The used columns with their mean and 1 / sd. */
int gd_space_scale(const struct gd_table *t, const uint32_t *fcols, uint32_t d, const uint32_t *pos,
                   uint64_t n_in, uint32_t threads, struct refine_space *sp)
{
        sp->used = dm_mallocarray(d ? d : 1, sizeof(uint32_t));
        sp->mu = dm_mallocarray(d ? d : 1, sizeof(double));
        sp->inv = dm_mallocarray(d ? d : 1, sizeof(double));
        if (!sp->used || !sp->mu || !sp->inv)
                return DREAM_E_NOMEM;
        const uint32_t half = threads > 1 && d > 1 ? d / 2 : d;
        struct scale_share sh[2] = {{t, fcols, pos, n_in, 0, half, sp->mu, sp->inv, 0},
                                    {t, fcols, pos, n_in, half, d, sp->mu, sp->inv, 0}};
        if (half < d)
                dm_par2(scale_features, &sh[0], &sh[1]);
        else
                scale_features(&sh[0]);
        if (sh[0].r < 0 || sh[1].r < 0)
                return DREAM_E_NOMEM;
        for (uint32_t f = 0; f < d; f++) {
                if (sp->inv[f] == 0)
                        continue;
                sp->used[sp->dims] = fcols[f];
                sp->mu[sp->dims] = sp->mu[f];
                sp->inv[sp->dims] = sp->inv[f];
                sp->dims++;
        }
        return 0;
}

struct space_share {
        const struct gd_table *t;
        const struct refine_space *sp;
        const uint32_t *pos;
        uint64_t first, end; /* table rows of this share */
};

/* Coordinates of the rows [first, end) of the table that take part, by
 * tiles of SPACE_TILE_ROWS rows and SPACE_TILE_COLS columns: the tile's
 * values are read column by column and written row by row, whole cache
 * lines at a time. */
static void space_rows(void *arg)
{
        const struct space_share *sh = arg;
        const struct refine_space *sp = sh->sp;
        const uint32_t dims = sp->dims;
        double col[SPACE_TILE_COLS][SPACE_TILE_ROWS];

        for (uint64_t b0 = sh->first; b0 < sh->end; b0 += SPACE_TILE_ROWS) {
                const uint64_t cnt =
                    sh->end - b0 < SPACE_TILE_ROWS ? sh->end - b0 : SPACE_TILE_ROWS;
                for (uint32_t u0 = 0; u0 < dims; u0 += SPACE_TILE_COLS) {
                        const uint32_t nu =
                            dims - u0 < SPACE_TILE_COLS ? dims - u0 : SPACE_TILE_COLS;
                        for (uint32_t u = 0; u < nu; u++) {
                                const double mu = sp->mu[u0 + u], inv = sp->inv[u0 + u];
                                gd_column_range(&sh->t->cols[sp->used[u0 + u]], b0, cnt, col[u]);
                                for (uint64_t k = 0; k < cnt; k++) {
                                        /* Huge values are clamped into float range. */
                                        double v = (col[u][k] - mu) * inv;
                                        col[u][k] = v > 1e30 ? 1e30 : v < -1e30 ? -1e30 : v;
                                }
                        }
                        for (uint64_t k = 0; k < cnt; k++) {
                                const uint32_t at = sh->pos[b0 + k];
                                if (at == UINT32_MAX)
                                        continue;
                                float *zr = sp->z + (size_t)at * dims + u0;
                                for (uint32_t u = 0; u < nu; u++)
                                        zr[u] = (float)col[u][k];
                        }
                }
        }
}

/* Ask for transparent huge pages over a large buffer not touched yet: its
 * first writes then fault once per 2 MiB rather than once per page (page
 * faults are what filling a fresh buffer of hundreds of MiB costs most on
 * virtual machines). A hint: nothing changes if the kernel declines. */
static void want_huge_pages(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
        const uintptr_t huge = (uintptr_t)2 << 20;
        const uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
        const uintptr_t e = ((uintptr_t)p + len) & ~(huge - 1);
        if (len >= 2 * huge && e > a)
                (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
        (void)p;
        (void)len;
#endif
}

/* The coordinates of every row taking part (pos: its index in set order). */
int gd_space_build(const struct gd_table *t, const uint32_t *pos, uint64_t n_in, uint32_t threads,
                   struct refine_space *sp)
{
        size_t cells;
        if (__builtin_mul_overflow((size_t)n_in, (size_t)sp->dims, &cells))
                return DREAM_E_OVERFLOW;
        sp->z = dm_mallocarray(cells ? cells : 1, sizeof(float));
        if (!sp->z)
                return DREAM_E_NOMEM;
        want_huge_pages(sp->z, cells * sizeof(float));
        struct space_share sh[2];
        const uint64_t n = t->n_rows, half = threads > 1 ? n / 2 : n;
        sh[0] = (struct space_share){t, sp, pos, 0, half};
        sh[1] = (struct space_share){t, sp, pos, half, n};
        if (half < n)
                dm_par2(space_rows, &sh[0], &sh[1]);
        else
                space_rows(&sh[0]);
        return 0;
}
