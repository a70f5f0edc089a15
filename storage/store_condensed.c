/* Condensed samples (STORE.md "Condensed cache"): the cached record, and
 * store_condensed, which builds an entry or finds it. */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

#define MAGIC_COND 0x444e4344u /* "DCND" */

/* ---- records: condensed samples ------------------------------------------- */

/* id BE32, rows BE64, order u8, budget count BE64, budget fraction bits BE64:
 * entries of one dataset sort by row count, so stale ones come first. */
static MDB_val cond_key(uint8_t *buf, uint32_t id, uint64_t rows, const struct gd_condense_opts *o)
{
        uint64_t fb;
        double f = o->budget.count ? 0.0 : o->budget.fraction;
        memcpy(&fb, &f, 8);
        dm_put_be32(buf, id);
        dm_put_be64(buf + 4, rows);
        buf[12] = (uint8_t)o->order;
        dm_put_be64(buf + 13, o->budget.count);
        dm_put_be64(buf + 21, fb);
        buf[29] = (uint8_t)o->fill;
        dm_put_be32(buf + 30, (uint32_t)o->refine);
        buf[34] = COND_METHOD;
        return (MDB_val){.mv_size = COND_KEY_LEN, .mv_data = buf};
}

/* The checksum covers the key too (store_i_keyed_checksum): an entry moved to another
 * key (rows, budget, options) by damage is caught. */
static int cond_encode(const MDB_val *k, const struct gd_condensed *c, struct dm_buf *out)
{
        int r = 0;
        uint64_t u;
        r |= dm_buf_put_le32(out, MAGIC_COND);
        r |= dm_buf_put_le32(out, FORMAT_VERSION);
        r |= dm_buf_put_le32(out, c->m);
        r |= dm_buf_put_le32(out, c->d);
        r |= dm_buf_put_le32(out, c->bits_used);
        r |= dm_buf_put_le32(out, 0);
        for (uint32_t j = 0; j < c->d && r == 0; j++)
                r |= dm_buf_put_le32(out, c->feature_cols[j]);
        if (r == 0)
                r = dm_buf_reserve(out, ((size_t)c->m * c->d + 2 * (size_t)c->m) * 8 + 8);
        for (size_t i = 0; i < (size_t)c->m * c->d && r == 0; i++) {
                memcpy(&u, &c->x[i], 8);
                r |= dm_buf_put_le64(out, u);
        }
        for (uint32_t i = 0; i < c->m && r == 0; i++) {
                memcpy(&u, &c->y[i], 8);
                r |= dm_buf_put_le64(out, u);
                memcpy(&u, &c->w[i], 8);
                r |= dm_buf_put_le64(out, u);
        }
        if (r == 0)
                r = dm_buf_put_le64(out, store_i_keyed_checksum(k, out->data, out->len));
        return r ? DREAM_E_NOMEM : 0;
}

int store_i_cond_decode(const MDB_val *k, const MDB_val *v, struct gd_condensed **ret)
{
        const uint8_t *p = v->mv_data;
        struct gd_condensed *c;
        uint64_t cells, need, u;
        uint32_t m, d;

        if (v->mv_size < 32 || dm_get_le32(p) != MAGIC_COND || dm_get_le32(p + 4) != FORMAT_VERSION)
                return DREAM_E_CORRUPT;
        m = dm_get_le32(p + 8);
        d = dm_get_le32(p + 12);
        if (d > DREAM_MAX_COLS || m > DREAM_MAX_SEGMENT_ROWS)
                return DREAM_E_CORRUPT;
        cells = (uint64_t)m * d;
        need = 24 + 4ull * d + 8 * cells + 16ull * m + 8;
        if (v->mv_size != need)
                return DREAM_E_CORRUPT;
        if (!store_i_checksum_ok(k, p, need - 8, dm_get_le64(p + need - 8)))
                return DREAM_E_CHECKSUM;
        if (gd_condensed_new(m, d, &c) < 0)
                return DREAM_E_NOMEM;
        c->bits_used = dm_get_le32(p + 16);
        p += 24;
        for (uint32_t j = 0; j < d; j++, p += 4)
                c->feature_cols[j] = dm_get_le32(p);
        for (uint64_t i = 0; i < cells; i++, p += 8) {
                u = dm_get_le64(p);
                memcpy(&c->x[i], &u, 8);
        }
        for (uint32_t i = 0; i < m; i++, p += 16) {
                u = dm_get_le64(p);
                memcpy(&c->y[i], &u, 8);
                u = dm_get_le64(p + 8);
                memcpy(&c->w[i], &u, 8);
        }
        *ret = c;
        return 0;
}

/* ---- condensed samples ----------------------------------------------------------- */

struct cond_ctx {
        const char *name;
        uint32_t id;
        uint64_t rows;
        const struct gd_condense_opts *opts;
        const struct dm_buf *val;
};

static int cond_put_fn(struct store *s, MDB_txn *txn, void *arg)
{
        struct cond_ctx *c = arg;
        struct schema_head h;
        MDB_cursor *cur;
        uint8_t kb[COND_KEY_LEN];
        MDB_val k, v;
        int r, rc;

        r = store_i_ds_load(s, txn, c->name, &h, NULL, NULL);
        if (r < 0)
                return r;
        if (h.id != c->id)
                return DREAM_E_BUSY;
        /* Delete entries built on fewer rows (stale since an append) and
         * entries of an older key layout (another method). */
        rc = mdb_cursor_open(txn, s->db_condensed, &cur);
        if (rc)
                return store_i_lmdb_err(rc);
        for (;;) {
                k = store_i_key_id(kb, c->id);
                rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
                if (rc || k.mv_size < KEY_ID_U64 || dm_get_be32(k.mv_data) != c->id ||
                    (k.mv_size == COND_KEY_LEN &&
                     dm_get_be64((const uint8_t *)k.mv_data + 4) >= c->rows))
                        break;
                rc = mdb_cursor_del(cur, 0);
                if (rc)
                        break;
        }
        mdb_cursor_close(cur);
        if (rc && rc != MDB_NOTFOUND)
                return store_i_lmdb_err(rc);
        k = cond_key(kb, c->id, c->rows, c->opts);
        v = (MDB_val){.mv_size = c->val->len, .mv_data = c->val->data};
        return store_i_lmdb_err(mdb_put(txn, s->db_condensed, &k, &v, 0));
}

int store_condensed(struct store *s, const char *dataset, uint32_t id,
                    const struct gd_condense_opts *opts, struct gd_condensed **ret,
                    bool *ret_cached)
{
        struct schema_head h = {0};
        struct counters cnt;
        struct gd_condensed *c = NULL;
        struct gd_table *t = NULL;
        struct dm_buf buf;
        uint8_t kb[COND_KEY_LEN];
        MDB_txn *txn;
        MDB_val k, v;
        int r;

        r = store_name_check(dataset);
        if (r < 0 || !opts)
                return r < 0 ? r : DREAM_E_INVAL;
        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_ds_load_pinned(s, txn, dataset, id, &h, NULL, &cnt);
        if (r == 0 && cnt.rows == 0)
                r = DREAM_E_EMPTY;
        if (r == 0) {
                k = cond_key(kb, h.id, cnt.rows, opts);
                r = store_i_lmdb_err(mdb_get(txn, s->db_condensed, &k, &v));
                if (r == 0)
                        r = store_i_cond_decode(&k, &v, &c);
                else if (r == DREAM_E_NOTFOUND)
                        r = 1; /* build it */
        }
        store_i_txn_end(s, txn);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = c;
                if (ret_cached)
                        *ret_cached = true;
                return 0;
        }
        r = store_i_read_rows(s, dataset, h.id, cnt.rows, &t);
        if (r < 0)
                return r;
        r = gd_condense(t, opts, &c);
        gd_table_free(t);
        if (r < 0)
                return r;
        /* Caching is an optimisation: a failure to store the entry (map full,
         * concurrent drop) does not fail the call. */
        dm_buf_init(&buf);
        k = cond_key(kb, h.id, cnt.rows, opts);
        if (cond_encode(&k, c, &buf) == 0) {
                struct cond_ctx cc = {
                    .name = dataset, .id = h.id, .rows = cnt.rows, .opts = opts, .val = &buf};
                (void)store_i_write_txn(s, cond_put_fn, &cc);
        }
        dm_buf_release(&buf);
        *ret = c;
        if (ret_cached)
                *ret_cached = false;
        return 0;
}
