/* Bit-planes, bit entropy and BaseTree grouping (docs/method.md section 3). */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/par.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

/* 64x64 bit-matrix transpose (Hacker's Delight, 7-3): bit c of a[r] moves to
 * bit 63 - r of a[63 - c]. */
static void transpose64(uint64_t a[64])
{
        uint64_t m = 0x00000000FFFFFFFFULL;
        for (unsigned j = 32; j != 0; j >>= 1, m ^= m << j) {
                for (unsigned k = 0; k < 64; k = ((k | j) + 1) & ~j) {
                        uint64_t t = (a[k] ^ (a[k | j] >> j)) & m;
                        a[k] ^= t;
                        a[k | j] ^= t << j;
                }
        }
}

struct planes_share {
        const struct gd_table *t;
        const struct gd_colparam *params;
        struct gd_planes *p;
        uint32_t j0, j1; /* columns of this share */
};

static void planes_cols(void *arg)
{
        const struct planes_share *sh = arg;
        struct gd_planes *p = sh->p;
        const uint64_t n = p->n_rows;
        for (uint32_t j = sh->j0; j < sh->j1; j++) {
                const int64_t *v = sh->t->cols[j].v;
                const int64_t min = sh->params[j].min;
                const unsigned w = sh->params[j].width;
                const uint32_t pos = p->col_start[j];
                for (uint64_t base = 0; base < n; base += 64) {
                        uint64_t a[64];
                        unsigned cnt = (unsigned)(n - base < 64 ? n - base : 64);
                        uint64_t word_idx = base >> 6;
                        /* Row k goes to a[63 - k]; after the transpose, a[63 - s]
                         * holds code bit s of every row, row k at bit k. */
                        for (unsigned k = 0; k < 64; k++)
                                a[63 - k] = k < cnt ? gd_code(v[base + k], min) : 0;
                        transpose64(a);
                        for (unsigned b = 0; b < w; b++)
                                p->bits[(uint64_t)(pos + b) * p->words + word_idx] = a[64 - w + b];
                }
        }
}

int gd_planes_build_threads(const struct gd_table *t, const struct gd_colparam *params,
                            uint32_t threads, struct gd_planes **ret)
{
        struct gd_planes *p;
        uint64_t n = t->n_rows, total_bits = 0, plane_words;

        for (uint32_t j = 0; j < t->n_cols; j++)
                total_bits += params[j].width;
        if (total_bits > DREAM_MAX_CHUNK_BITS)
                return DREAM_E_LIMIT;
        p = dm_calloc(1, sizeof(*p));
        if (!p)
                return DREAM_E_NOMEM;
        p->n_rows = n;
        p->n_bits = (uint32_t)total_bits;
        p->words = (n + 63) / 64;
        p->n_cols = t->n_cols;
        p->col_start = dm_mallocarray((size_t)t->n_cols + 1, sizeof(uint32_t));
        if (__builtin_mul_overflow(p->words, total_bits ? total_bits : 1, &plane_words))
                goto fail_nomem;
        p->bits = dm_calloc(plane_words, sizeof(uint64_t));
        if (!p->col_start || !p->bits)
                goto fail_nomem;

        uint32_t pos = 0, half = 0;
        for (uint32_t j = 0; j < t->n_cols; j++) {
                p->col_start[j] = pos;
                pos += params[j].width;
                if (pos <= total_bits / 2)
                        half = j + 1; /* the first share: about half of the bits */
        }
        p->col_start[t->n_cols] = pos;
        struct planes_share sh[2] = {{t, params, p, 0, t->n_cols},
                                     {t, params, p, t->n_cols, t->n_cols}};
        if (threads > 1 && half > 0 && half < t->n_cols) {
                sh[0].j1 = half;
                sh[1].j0 = half;
                dm_par2(planes_cols, &sh[0], &sh[1]);
        } else {
                planes_cols(&sh[0]);
        }
        *ret = p;
        return 0;

fail_nomem:
        gd_planes_free(p);
        return DREAM_E_NOMEM;
}

int gd_planes_build(const struct gd_table *t, const struct gd_colparam *params,
                    struct gd_planes **ret)
{
        return gd_planes_build_threads(t, params, 1, ret);
}

void gd_planes_free(struct gd_planes *p)
{
        if (!p)
                return;
        dm_free(p->bits);
        dm_free(p->col_start);
        dm_free(p);
}

static double binary_entropy(uint64_t ones, uint64_t n)
{
        if (ones == 0 || ones == n)
                return 0.0;
        double q = (double)ones / (double)n;
        return -q * log2(q) - (1.0 - q) * log2(1.0 - q);
}

int gd_entropy(const struct gd_planes *p, const uint64_t *rows, uint64_t n_rows, double *ret_h)
{
        if (!rows)
                n_rows = p->n_rows;
        if (n_rows == 0)
                return DREAM_E_EMPTY;
        for (uint32_t b = 0; b < p->n_bits; b++) {
                const uint64_t *plane = p->bits + (uint64_t)b * p->words;
                uint64_t ones = 0;
                if (rows) {
                        for (uint64_t i = 0; i < n_rows; i++)
                                ones += (plane[rows[i] >> 6] >> (rows[i] & 63)) & 1u;
                } else {
                        for (uint64_t w = 0; w < p->words; w++)
                                ones += (uint64_t)__builtin_popcountll(plane[w]);
                }
                ret_h[b] = binary_entropy(ones, n_rows);
        }
        return 0;
}

int gd_groups_init(struct gd_groups *g, const uint64_t *rows, uint64_t n)
{
        memset(g, 0, sizeof(*g));
        if (n > UINT32_MAX)
                return DREAM_E_LIMIT;
        g->n = n;
        g->rows = rows;
        g->gid = dm_calloc(n ? n : 1, sizeof(uint32_t));
        g->next = dm_mallocarray(n ? n : 1, sizeof(uint32_t));
        if (!g->gid || !g->next) {
                gd_groups_release(g);
                return DREAM_E_NOMEM;
        }
        g->n_groups = n ? 1 : 0;
        return 0;
}

void gd_groups_release(struct gd_groups *g)
{
        if (!g)
                return;
        dm_free(g->gid);
        dm_free(g->next);
        dm_free(g->map);
        memset(g, 0, sizeof(*g));
}

int gd_groups_try(struct gd_groups *g, const struct gd_planes *p, uint32_t pos, uint32_t *ret_count)
{
        const uint64_t *plane = p->bits + (uint64_t)pos * p->words;
        uint64_t need = (uint64_t)g->n_groups * 2;
        uint32_t count = 0;

        if (pos >= p->n_bits)
                return DREAM_E_RANGE;
        if (need > g->map_cap) {
                int32_t *m = dm_reallocarray(g->map, need, sizeof(int32_t));
                if (!m)
                        return DREAM_E_NOMEM;
                g->map = m;
                g->map_cap = need;
        }
        memset(g->map, 0xff, need * sizeof(int32_t));

        int32_t *map = g->map;
        const uint32_t *gid = g->gid;
        uint32_t *next = g->next;
        if (g->rows) {
                for (uint64_t i = 0; i < g->n; i++) {
                        uint64_t r = g->rows[i];
                        uint64_t key = 2 * (uint64_t)gid[i] + ((plane[r >> 6] >> (r & 63)) & 1u);
                        if (map[key] < 0)
                                map[key] = (int32_t)count++;
                        next[i] = (uint32_t)map[key];
                }
        } else {
                for (uint64_t w = 0; w * 64 < g->n; w++) {
                        uint64_t word = plane[w];
                        uint64_t end = g->n - w * 64 < 64 ? g->n - w * 64 : 64;
                        for (uint64_t k = 0; k < end; k++) {
                                uint64_t i = w * 64 + k;
                                uint64_t key = 2 * (uint64_t)gid[i] + ((word >> k) & 1u);
                                if (map[key] < 0)
                                        map[key] = (int32_t)count++;
                                next[i] = (uint32_t)map[key];
                        }
                }
        }
        *ret_count = count;
        return 0;
}

void gd_groups_commit(struct gd_groups *g, uint32_t count)
{
        uint32_t *tmp = g->gid;
        g->gid = g->next;
        g->next = tmp;
        g->n_groups = count;
}
