/* Job records: the daemon's opaque job records, keyed by job id, each
 * behind a keyed checksum. */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

/* ---- job records ------------------------------------------------------------------ */

/* Value: XXH3-64 of the record (LE64), then the record. Key: job id BE64. */
#define JOB_SUM_LEN 8u

MDB_val store_i_job_key(uint8_t *buf, uint64_t id)
{
        dm_put_be64(buf, id);
        return (MDB_val){.mv_size = 8, .mv_data = buf};
}

static int job_value(const MDB_val *k, const MDB_val *v, const uint8_t **ret_rec, size_t *ret_len)
{
        const uint8_t *p = v->mv_data;

        if (v->mv_size < JOB_SUM_LEN)
                return DREAM_E_TRUNCATED;
        if (!store_i_checksum_ok(k, p + JOB_SUM_LEN, v->mv_size - JOB_SUM_LEN, dm_get_le64(p)))
                return DREAM_E_CHECKSUM;
        *ret_rec = p + JOB_SUM_LEN;
        *ret_len = v->mv_size - JOB_SUM_LEN;
        return 0;
}

struct job_put_ctx {
        uint64_t id;
        const void *rec;
        size_t len;
        bool del;
};

static int job_put_fn(struct store *s, MDB_txn *txn, void *arg)
{
        struct job_put_ctx *c = arg;
        uint8_t kb[8];
        MDB_val k = store_i_job_key(kb, c->id), v = {.mv_size = JOB_SUM_LEN + c->len};
        int rc;

        if (c->del)
                return store_i_lmdb_err(mdb_del(txn, s->db_jobs, &k, NULL));
        rc = mdb_put(txn, s->db_jobs, &k, &v, MDB_RESERVE);
        if (rc)
                return store_i_lmdb_err(rc);
        dm_put_le64(v.mv_data, store_i_keyed_checksum(&k, c->rec, c->len));
        if (c->len)
                memcpy((uint8_t *)v.mv_data + JOB_SUM_LEN, c->rec, c->len);
        return 0;
}

int store_job_put(struct store *s, uint64_t id, const void *rec, size_t len)
{
        struct job_put_ctx c = {.id = id, .rec = rec, .len = len};

        if (id == 0 || (len && !rec) || len > DREAM_MAX_JOB_RECORD)
                return DREAM_E_INVAL;
        return store_i_write_txn(s, job_put_fn, &c);
}

int store_job_delete(struct store *s, uint64_t id)
{
        struct job_put_ctx c = {.id = id, .del = true};

        if (id == 0)
                return DREAM_E_INVAL;
        return store_i_write_txn(s, job_put_fn, &c);
}

int store_job_get(struct store *s, uint64_t id, void **ret_rec, size_t *ret_len)
{
        uint8_t kb[8];
        MDB_val k = store_i_job_key(kb, id), v;
        const uint8_t *rec;
        size_t len = 0;
        MDB_txn *txn;
        void *copy = NULL;
        int r;

        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_lmdb_err(mdb_get(txn, s->db_jobs, &k, &v));
        if (r == 0)
                r = job_value(&k, &v, &rec, &len);
        if (r == 0) {
                copy = dm_malloc(len ? len : 1);
                if (!copy)
                        r = DREAM_E_NOMEM;
                else if (len)
                        memcpy(copy, rec, len);
        }
        store_i_txn_end(s, txn);
        if (r < 0)
                return r;
        *ret_rec = copy;
        *ret_len = len;
        return 0;
}

int store_job_list(struct store *s, store_job_cb cb, void *arg)
{
        MDB_cursor *cur;
        MDB_txn *txn;
        MDB_val k, v;
        int r, rc;

        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_lmdb_err(mdb_cursor_open(txn, s->db_jobs, &cur));
        if (r < 0) {
                store_i_txn_end(s, txn);
                return r;
        }
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && r == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                const uint8_t *rec;
                size_t len;

                /* A damaged key or value is reported like any damaged
                 * record (id 0 when the key is not an id) and the walk
                 * goes on. */
                r = k.mv_size != 8 ? DREAM_E_CORRUPT : job_value(&k, &v, &rec, &len);
                r = cb(arg, k.mv_size == 8 ? dm_get_be64(k.mv_data) : 0, r < 0 ? NULL : rec,
                       r < 0 ? 0 : len, r);
        }
        if (r == 0 && rc != MDB_NOTFOUND)
                r = store_i_lmdb_err(rc);
        mdb_cursor_close(cur);
        store_i_txn_end(s, txn);
        return r;
}
