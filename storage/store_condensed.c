/* Condensed samples (STORE.md "Condensed cache"): the cached record, and
 * store_condensed, which builds an entry or finds it. */
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

#define MAGIC_COND 0x444e4344u /* "DCND" */

/* ---- records: condensed samples ------------------------------------------- */

/* Which rows were left out: 0 for none, else the XXH3-64 of their numbers as
 * little-endian u64, hashed in chunks (each chunk's hash seeds the next). */
static uint64_t exclusion_hash(const uint64_t *ex, uint64_t n)
{
        uint8_t chunk[8 * 512];
        uint64_t h = 0;
        for (uint64_t at = 0; at < n;) {
                size_t len = 0;
                for (; at < n && len < sizeof(chunk); at++, len += 8)
                        dm_put_le64(chunk + len, ex[at]);
                h = XXH3_64bits_withSeed(chunk, len, h);
        }
        return h;
}

/* id BE32, rows BE64, order u8, budget count BE64, budget fraction bits BE64,
 * fill u8, refine BE32, method u8, excluded rows BE64, their hash BE64:
 * entries of one dataset sort by row count, so stale ones come first. */
static MDB_val cond_key(uint8_t *buf, uint32_t id, uint64_t rows, const struct gd_condense_opts *o,
                        uint64_t ex_hash)
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
        dm_put_be64(buf + 35, o->n_exclude);
        dm_put_be64(buf + 43, ex_hash);
        return (MDB_val){.mv_size = COND_KEY_LEN, .mv_data = buf};
}

#define COND_HAS_V 1u /* flags: the variances follow (y, w) */

/* The checksum covers the key too (store_i_keyed_checksum): an entry moved to another
 * key (rows, budget, options) by damage is caught. */
static int cond_encode(const MDB_val *k, const struct gd_condensed *c, struct dm_buf *out)
{
        const size_t cells = (size_t)c->m * c->d;
        int r = 0;
        uint64_t u;
        r |= dm_buf_put_le32(out, MAGIC_COND);
        r |= dm_buf_put_le32(out, FORMAT_VERSION);
        r |= dm_buf_put_le32(out, c->m);
        r |= dm_buf_put_le32(out, c->d);
        r |= dm_buf_put_le32(out, c->bits_used);
        r |= dm_buf_put_le32(out, COND_HAS_V);
        for (uint32_t j = 0; j < c->d && r == 0; j++)
                r |= dm_buf_put_le32(out, c->feature_cols[j]);
        if (r == 0)
                r = dm_buf_reserve(out, (2 * cells + 2 * (size_t)c->m) * 8 + 8);
        for (size_t i = 0; i < cells && r == 0; i++) {
                memcpy(&u, &c->x[i], 8);
                r |= dm_buf_put_le64(out, u);
        }
        for (uint32_t i = 0; i < c->m && r == 0; i++) {
                memcpy(&u, &c->y[i], 8);
                r |= dm_buf_put_le64(out, u);
                memcpy(&u, &c->w[i], 8);
                r |= dm_buf_put_le64(out, u);
        }
        for (size_t i = 0; i < cells && r == 0; i++) {
                memcpy(&u, &c->v[i], 8);
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
        uint32_t m, d, flags;

        if (v->mv_size < 32 || dm_get_le32(p) != MAGIC_COND || dm_get_le32(p + 4) != FORMAT_VERSION)
                return DREAM_E_CORRUPT;
        m = dm_get_le32(p + 8);
        d = dm_get_le32(p + 12);
        flags = dm_get_le32(p + 20);
        if (d > DREAM_MAX_COLS || m > DREAM_MAX_SEGMENT_ROWS || flags > COND_HAS_V)
                return DREAM_E_CORRUPT;
        /* Keys of the current layout hold values with variances; keys of
         * method 2 (COND_KEY_LEN_2 bytes) values without. */
        if (flags != (k->mv_size == COND_KEY_LEN ? COND_HAS_V : 0))
                return DREAM_E_CORRUPT;
        cells = (uint64_t)m * d;
        need = 24 + 4ull * d + 8 * cells + 16ull * m + (flags ? 8 * cells : 0) + 8;
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
        for (uint64_t i = 0; flags && i < cells; i++, p += 8) {
                u = dm_get_le64(p);
                memcpy(&c->v[i], &u, 8);
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
        uint64_t ex_hash;
        const struct dm_buf *val;
};

/* An entry no lookup can find again: built on fewer rows (stale since an
 * append) or of an older key layout (another method). */
static bool cond_stale(const MDB_val *k, uint64_t rows)
{
        const uint8_t *kp = k->mv_data;
        return k->mv_size != COND_KEY_LEN || kp[34] != COND_METHOD || dm_get_be64(kp + 4) < rows;
}

static int cond_put_fn(struct store *s, MDB_txn *txn, void *arg)
{
        struct cond_ctx *c = arg;
        struct schema_head h;
        struct dm_buf stale;
        MDB_cursor *cur;
        uint8_t kb[COND_KEY_LEN];
        MDB_val k, v;
        int r, rc;

        r = store_i_ds_load(s, txn, c->name, &h, NULL, NULL);
        if (r < 0)
                return r;
        if (h.id != c->id)
                return DREAM_E_BUSY;
        /* Delete the dataset's entries that no lookup finds again (few:
         * one per option set asked for): their keys first, then each. */
        rc = mdb_cursor_open(txn, s->db_condensed, &cur);
        if (rc)
                return store_i_lmdb_err(rc);
        dm_buf_init(&stale);
        k = store_i_key_id(kb, c->id);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                if (k.mv_size < KEY_ID || dm_get_be32(k.mv_data) != c->id)
                        break;
                if (cond_stale(&k, c->rows) && (dm_buf_put_le32(&stale, (uint32_t)k.mv_size) < 0 ||
                                                dm_buf_append(&stale, k.mv_data, k.mv_size) < 0)) {
                        r = DREAM_E_NOMEM;
                        break;
                }
        }
        mdb_cursor_close(cur);
        if (r == 0 && rc && rc != MDB_NOTFOUND)
                r = store_i_lmdb_err(rc);
        for (size_t at = 0; r == 0 && at < stale.len;) {
                k.mv_size = dm_get_le32(stale.data + at);
                k.mv_data = stale.data + at + 4;
                at += 4 + k.mv_size;
                r = store_i_lmdb_err(mdb_del(txn, s->db_condensed, &k, NULL));
        }
        dm_buf_release(&stale);
        if (r < 0)
                return r;
        k = cond_key(kb, c->id, c->rows, c->opts, c->ex_hash);
        v = (MDB_val){.mv_size = c->val->len, .mv_data = c->val->data};
        return store_i_lmdb_err(mdb_put(txn, s->db_condensed, &k, &v, 0));
}

/* The exclusion names distinct rows of the dataset, sorted, and leaves some:
 * checked before the cache is asked (an entry is keyed by its hash). */
static int exclusion_check(const struct gd_condense_opts *o, uint64_t rows)
{
        if (o->n_exclude == 0)
                return 0;
        if (!o->exclude)
                return DREAM_E_INVAL;
        if (o->n_exclude >= rows)
                return DREAM_E_EMPTY;
        for (uint64_t e = 0; e < o->n_exclude; e++) {
                if (o->exclude[e] >= rows || (e > 0 && o->exclude[e] <= o->exclude[e - 1]))
                        return DREAM_E_INVAL;
        }
        return 0;
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

        uint64_t ex_hash = 0;

        r = store_name_check(dataset);
        if (r < 0 || !opts || opts->row_group)
                return r < 0 ? r : DREAM_E_INVAL;
        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_ds_load_pinned(s, txn, dataset, id, &h, NULL, &cnt);
        if (r == 0 && cnt.rows == 0)
                r = DREAM_E_EMPTY;
        if (r == 0)
                r = exclusion_check(opts, cnt.rows);
        if (r == 0) {
                ex_hash = exclusion_hash(opts->exclude, opts->n_exclude);
                k = cond_key(kb, h.id, cnt.rows, opts, ex_hash);
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
        k = cond_key(kb, h.id, cnt.rows, opts, ex_hash);
        if (cond_encode(&k, c, &buf) == 0) {
                struct cond_ctx cc = {.name = dataset,
                                      .id = h.id,
                                      .rows = cnt.rows,
                                      .opts = opts,
                                      .ex_hash = ex_hash,
                                      .val = &buf};
                (void)store_i_write_txn(s, cond_put_fn, &cc);
        }
        dm_buf_release(&buf);
        *ret = c;
        if (ret_cached)
                *ret_cached = false;
        return 0;
}
