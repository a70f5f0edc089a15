/* Sufficient statistics of a dataset (STORE.md "Sufficient statistics"):
 * computing a batch's partial sums, the stored record, store_suffstats. */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

#define MAGIC_SUFF 0x46555344u /* "DSUF" */

/* ---- records: sufficient statistics ---------------------------------------- */

void store_suffstats_free(struct store_suffstats *st)
{
        if (!st)
                return;
        dm_free(st->feature_cols);
        dm_free(st->col_sum);
        dm_free(st->col_sum2);
        dm_free(st->xtx);
        dm_free(st->xty);
        dm_free(st);
}

int store_i_suff_new(uint32_t n_cols, int32_t target, struct store_suffstats **ret)
{
        struct store_suffstats *st = dm_calloc(1, sizeof(*st));
        uint32_t d = target >= 0 ? n_cols - 1 : n_cols;
        if (!st)
                return DREAM_E_NOMEM;
        st->n_cols = n_cols;
        st->target = target;
        st->d = d;
        st->feature_cols = dm_mallocarray(d ? d : 1, sizeof(uint32_t));
        st->col_sum = dm_calloc(n_cols, sizeof(long double));
        st->col_sum2 = dm_calloc(n_cols, sizeof(long double));
        if (!st->feature_cols || !st->col_sum || !st->col_sum2)
                goto fail_free;
        for (uint32_t j = 0, k = 0; j < n_cols; j++) {
                if ((int32_t)j != target)
                        st->feature_cols[k++] = j;
        }
        if (d <= DREAM_MAX_SUFFSTATS_FEATURES) {
                st->xtx = dm_calloc(d ? (size_t)d * d : 1, sizeof(long double));
                if (!st->xtx)
                        goto fail_free;
                if (target >= 0) {
                        st->xty = dm_calloc(d ? d : 1, sizeof(long double));
                        if (!st->xty)
                                goto fail_free;
                }
        }
        *ret = st;
        return 0;

fail_free:
        store_suffstats_free(st);
        return DREAM_E_NOMEM;
}

/* Add the rows of t (the dataset's columns) to st. */
/* Sum of x[i] * y[i] in long double. The accumulators stay in x87
 * registers (a running long double in memory costs a slow 80-bit store and
 * reload per row); two of them break the add latency chain. */
static long double dot_ld(const double *x, const double *y, uint64_t n)
{
        long double a0 = 0, a1 = 0;
        uint64_t i = 0;
        for (; i + 1 < n; i += 2) {
                a0 += (long double)x[i] * y[i];
                a1 += (long double)x[i + 1] * y[i + 1];
        }
        if (i < n)
                a0 += (long double)x[i] * y[i];
        return a0 + a1;
}

static long double sum_ld(const double *x, uint64_t n)
{
        long double a0 = 0, a1 = 0;
        uint64_t i = 0;
        for (; i + 1 < n; i += 2) {
                a0 += x[i];
                a1 += x[i + 1];
        }
        if (i < n)
                a0 += x[i];
        return a0 + a1;
}

/* Add the rows of t (the dataset's columns) to st, column by column, in
 * blocks of SUFF_BLOCK rows (bounded scratch memory). */
#define SUFF_BLOCK 65536u

int store_i_suff_add(struct store_suffstats *st, const struct gd_table *t)
{
        uint32_t d = st->d, nc = st->n_cols;
        uint64_t blk = t->n_rows < SUFF_BLOCK ? t->n_rows : SUFF_BLOCK;
        double *x = dm_mallocarray(blk ? blk : 1, (size_t)nc * sizeof(double));
        if (!x)
                return DREAM_E_NOMEM;
        for (uint64_t at = 0; at < t->n_rows; at += blk) {
                uint64_t n = t->n_rows - at < blk ? t->n_rows - at : blk;
                for (uint32_t j = 0; j < nc; j++) {
                        const struct gd_col *c = &t->cols[j];
                        double *xj = x + (size_t)j * n;
                        for (uint64_t i = 0; i < n; i++)
                                xj[i] = gd_value_f64(c->kind, c->scale, c->v[at + i]);
                        st->col_sum[j] += sum_ld(xj, n);
                        st->col_sum2[j] += dot_ld(xj, xj, n);
                }
                if (!st->xtx)
                        continue;
                for (uint32_t a = 0; a < d; a++) {
                        const double *xa = x + (size_t)st->feature_cols[a] * n;
                        for (uint32_t b = a; b < d; b++)
                                st->xtx[(size_t)a * d + b] +=
                                    dot_ld(xa, x + (size_t)st->feature_cols[b] * n, n);
                        if (st->xty)
                                st->xty[a] += dot_ld(xa, x + (size_t)st->target * n, n);
                }
        }
        st->n += t->n_rows;
        dm_free(x);
        return 0;
}

/* Totals += partial (same shape). Only the upper triangle of xtx is kept
 * while accumulating; suff_finish mirrors it. */
void store_i_suff_merge(struct store_suffstats *tot, const struct store_suffstats *part)
{
        uint32_t d = tot->d;
        tot->n += part->n;
        for (uint32_t j = 0; j < tot->n_cols; j++) {
                tot->col_sum[j] += part->col_sum[j];
                tot->col_sum2[j] += part->col_sum2[j];
        }
        if (tot->xtx && part->xtx) {
                for (uint32_t a = 0; a < d; a++) {
                        for (uint32_t b = a; b < d; b++)
                                tot->xtx[(size_t)a * d + b] += part->xtx[(size_t)a * d + b];
                }
        }
        if (tot->xty && part->xty) {
                for (uint32_t a = 0; a < d; a++)
                        tot->xty[a] += part->xty[a];
        }
}

static void suff_finish(struct store_suffstats *st)
{
        uint32_t d = st->d;
        if (st->xtx) {
                for (uint32_t a = 0; a < d; a++) {
                        for (uint32_t b = 0; b < a; b++)
                                st->xtx[(size_t)a * d + b] = st->xtx[(size_t)b * d + a];
                }
        }
        if (st->target >= 0) {
                st->sum_y = st->col_sum[st->target];
                st->sum_y2 = st->col_sum2[st->target];
        }
}

/* A long double as two doubles (exact for the x87 64-bit mantissa). */
static void put_ld(struct dm_buf *b, long double x, int *r)
{
        double hi = (double)x;
        double lo = isfinite(hi) ? (double)(x - (long double)hi) : 0.0;
        uint64_t u;
        memcpy(&u, &hi, 8);
        *r |= dm_buf_put_le64(b, u);
        memcpy(&u, &lo, 8);
        *r |= dm_buf_put_le64(b, u);
}

static long double get_ld(const uint8_t *p)
{
        uint64_t u;
        double hi, lo;
        u = dm_get_le64(p);
        memcpy(&hi, &u, 8);
        u = dm_get_le64(p + 8);
        memcpy(&lo, &u, 8);
        return (long double)hi + (long double)lo;
}

int store_i_suff_encode(const struct store_suffstats *st, struct dm_buf *out)
{
        int r = 0;
        uint32_t d = st->d;
        r |= dm_buf_put_le32(out, MAGIC_SUFF);
        r |= dm_buf_put_le32(out, FORMAT_VERSION);
        r |= dm_buf_put_le32(out, st->n_cols);
        r |= dm_buf_put_le32(out, (uint32_t)st->target);
        r |= dm_buf_put_le32(out, st->xtx ? 1 : 0);
        r |= dm_buf_put_le32(out, 0);
        r |= dm_buf_put_le64(out, st->n);
        if (r == 0)
                r = dm_buf_reserve(out,
                                   ((size_t)2 * st->n_cols + (size_t)d * (d + 3) / 2) * 16 + 8);
        for (uint32_t j = 0; j < st->n_cols && r == 0; j++) {
                put_ld(out, st->col_sum[j], &r);
                put_ld(out, st->col_sum2[j], &r);
        }
        if (st->xtx) {
                for (uint32_t a = 0; a < d && r == 0; a++) {
                        for (uint32_t b = a; b < d; b++)
                                put_ld(out, st->xtx[(size_t)a * d + b], &r);
                }
        }
        if (st->xty) {
                for (uint32_t a = 0; a < d && r == 0; a++)
                        put_ld(out, st->xty[a], &r);
        }
        if (r == 0)
                r = dm_buf_put_le64(out, store_i_checksum(out->data, out->len));
        return r ? DREAM_E_NOMEM : 0;
}

/* Parse a suffstats record for a dataset of n_cols columns and target. The
 * upper triangle only is filled (suff_finish mirrors it). */
int store_i_suff_decode(const MDB_val *v, uint32_t n_cols, int32_t target,
                        struct store_suffstats **ret)
{
        const uint8_t *p = v->mv_data;
        struct store_suffstats *st = NULL;
        size_t need;
        uint32_t d;
        int r;

        if (v->mv_size < 40 || dm_get_le32(p) != MAGIC_SUFF ||
            dm_get_le32(p + 4) != FORMAT_VERSION || dm_get_le32(p + 8) != n_cols ||
            (int32_t)dm_get_le32(p + 12) != target)
                return DREAM_E_CORRUPT;
        if (dm_get_le64(p + v->mv_size - 8) != store_i_checksum(p, v->mv_size - 8))
                return DREAM_E_CHECKSUM;
        r = store_i_suff_new(n_cols, target, &st);
        if (r < 0)
                return r;
        d = st->d;
        need = 32 + (size_t)2 * n_cols * 16 + 8;
        if (st->xtx)
                need += (size_t)d * (d + 1) / 2 * 16;
        if (st->xty)
                need += (size_t)d * 16;
        if ((dm_get_le32(p + 16) != 0) != (st->xtx != NULL) || v->mv_size != need) {
                store_suffstats_free(st);
                return DREAM_E_CORRUPT;
        }
        st->n = dm_get_le64(p + 24);
        p += 32;
        for (uint32_t j = 0; j < n_cols; j++, p += 32) {
                st->col_sum[j] = get_ld(p);
                st->col_sum2[j] = get_ld(p + 16);
        }
        if (st->xtx) {
                for (uint32_t a = 0; a < d; a++) {
                        for (uint32_t b = a; b < d; b++, p += 16)
                                st->xtx[(size_t)a * d + b] = get_ld(p);
                }
        }
        if (st->xty) {
                for (uint32_t a = 0; a < d; a++, p += 16)
                        st->xty[a] = get_ld(p);
        }
        *ret = st;
        return 0;
}

/* ---- sufficient statistics ------------------------------------------------------- */

int store_suffstats(struct store *s, const char *dataset, uint32_t id, struct store_suffstats **ret)
{
        struct schema_head h = {0};
        struct store_suffstats *st = NULL;
        uint8_t kb[KEY_ID];
        MDB_txn *txn;
        MDB_val k, v;
        int r;

        r = store_name_check(dataset);
        if (r < 0)
                return r;
        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_ds_load_pinned(s, txn, dataset, id, &h, NULL, NULL);
        if (r == 0) {
                k = store_i_key_id(kb, h.id);
                r = store_i_lmdb_err(mdb_get(txn, s->db_suffstats, &k, &v));
                if (r == DREAM_E_NOTFOUND)
                        r = DREAM_E_CORRUPT;
                if (r == 0)
                        r = store_i_suff_decode(&v, h.n_cols, h.target, &st);
        }
        store_i_txn_end(s, txn);
        if (r < 0)
                return r;
        suff_finish(st);
        *ret = st;
        return 0;
}
