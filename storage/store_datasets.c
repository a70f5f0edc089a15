/* Datasets: create, list, describe (stored bytes), id, drop, and the purge
 * of a dropped dataset's keys. */
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

#define PURGE_KEYS_PER_TXN 4096u

/* ---- datasets ---------------------------------------------------------------- */

struct create_ctx {
        const char *name;
        const struct store_schema *schema;
        struct dm_buf suff;
};

static int create_fn(struct store *s, MDB_txn *txn, void *arg)
{
        struct create_ctx *c = arg;
        MDB_val k = {.mv_size = 7, .mv_data = (void *)"next_id"}, v, nk;
        struct dm_buf rec;
        struct counters cnt = {0};
        MDB_stat st;
        uint32_t id = 1;
        uint8_t kb[KEY_ID], ib[4];
        int r;

        r = store_i_lmdb_err(mdb_stat(txn, s->db_datasets, &st));
        if (r < 0)
                return r;
        if (st.ms_entries >= DREAM_MAX_DATASETS)
                return DREAM_E_LIMIT;
        r = store_i_lmdb_err(mdb_get(txn, s->db_meta, &k, &v));
        if (r == 0) {
                if (v.mv_size != 4)
                        return DREAM_E_CORRUPT;
                id = dm_get_le32(v.mv_data);
        } else if (r != DREAM_E_NOTFOUND) {
                return r;
        }
        if (id == 0 || id == UINT32_MAX)
                return DREAM_E_LIMIT;
        dm_put_le32(ib, id + 1);
        v = (MDB_val){.mv_size = 4, .mv_data = ib};
        r = store_i_lmdb_err(mdb_put(txn, s->db_meta, &k, &v, 0));
        if (r < 0)
                return r;

        dm_buf_init(&rec);
        nk = store_i_name_key(c->name);
        r = store_i_schema_encode(&nk, id, c->schema, &rec);
        if (r < 0)
                goto release;
        v = (MDB_val){.mv_size = rec.len, .mv_data = rec.data};
        r = store_i_lmdb_err(mdb_put(txn, s->db_datasets, &nk, &v, MDB_NOOVERWRITE));
        if (r < 0)
                goto release;
        r = store_i_counters_put(s, txn, id, &cnt);
        if (r < 0)
                goto release;
        {
                /* Creation time: meta "ctim" + id BE32 -> unix seconds LE64
                 * (datasets made before it have none and report 0). */
                uint8_t ck[8] = {'c', 't', 'i', 'm'}, cv[8];
                MDB_val ckv = {.mv_size = 8, .mv_data = ck}, cvv = {.mv_size = 8, .mv_data = cv};

                dm_put_be32(ck + 4, id);
                dm_put_le64(cv, (uint64_t)time(NULL));
                r = store_i_lmdb_err(mdb_put(txn, s->db_meta, &ckv, &cvv, 0));
                if (r < 0)
                        goto release;
        }
        nk = store_i_key_id(kb, id);
        v = (MDB_val){.mv_size = c->suff.len, .mv_data = c->suff.data};
        r = store_i_lmdb_err(mdb_put(txn, s->db_suffstats, &nk, &v, 0));
release:
        dm_buf_release(&rec);
        return r;
}

int store_dataset_create(struct store *s, const char *name, const struct store_schema *schema)
{
        struct create_ctx c = {.name = name, .schema = schema};
        struct store_suffstats *st = NULL;
        int r;

        r = store_name_check(name);
        if (r < 0)
                return r;
        r = store_i_schema_check(schema);
        if (r < 0)
                return r;
        dm_buf_init(&c.suff);
        r = store_i_suff_new(schema->n_cols, schema->target, &st);
        if (r < 0)
                goto release;
        r = store_i_suff_encode(st, &c.suff);
        if (r < 0)
                goto release;
        r = store_i_write_txn(s, create_fn, &c);
release:
        store_suffstats_free(st);
        dm_buf_release(&c.suff);
        return r;
}

void store_names_free(char **names, uint32_t count)
{
        if (!names)
                return;
        for (uint32_t i = 0; i < count; i++)
                dm_free(names[i]);
        dm_free(names);
}

int store_dataset_list(struct store *s, char ***ret_names, uint32_t *ret_count)
{
        MDB_txn *txn;
        MDB_cursor *cur = NULL;
        MDB_val k, v;
        MDB_stat st;
        char **names = NULL;
        uint32_t n = 0;
        size_t cap;
        int r, rc;

        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_lmdb_err(mdb_stat(txn, s->db_datasets, &st));
        if (r < 0)
                goto end;
        cap = st.ms_entries;
        names = dm_calloc(cap ? cap : 1, sizeof(char *));
        if (!names) {
                r = DREAM_E_NOMEM;
                goto end;
        }
        r = store_i_lmdb_err(mdb_cursor_open(txn, s->db_datasets, &cur));
        if (r < 0)
                goto end;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < cap;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                if (k.mv_size == 0 || k.mv_size > DREAM_MAX_NAME) {
                        r = DREAM_E_CORRUPT;
                        goto end;
                }
                names[n] = dm_malloc(k.mv_size + 1);
                if (!names[n]) {
                        r = DREAM_E_NOMEM;
                        goto end;
                }
                memcpy(names[n], k.mv_data, k.mv_size);
                names[n][k.mv_size] = 0;
                n++;
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
                r = store_i_lmdb_err(rc);
end:
        if (cur)
                mdb_cursor_close(cur);
        store_i_txn_end(s, txn);
        if (r < 0) {
                store_names_free(names, n);
                return r;
        }
        *ret_names = names;
        *ret_count = n;
        return 0;
}

void store_info_free(struct store_info *info)
{
        if (!info)
                return;
        dm_free(info->name);
        store_i_schema_release(&info->schema);
        dm_free(info);
}

/* Bytes of every key of the dataset in one id-prefixed database. */
static int prefix_bytes(struct store *s, MDB_txn *txn, MDB_dbi dbi, uint32_t id,
                        uint64_t *ret_bytes)
{
        MDB_cursor *cur;
        uint8_t kb[KEY_ID];
        MDB_val k = store_i_key_id(kb, id), v;
        uint64_t total = 0;
        int rc;

        rc = mdb_cursor_open(txn, dbi, &cur);
        if (rc)
                return store_i_lmdb_err(rc);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                if (k.mv_size < KEY_ID || dm_get_be32(k.mv_data) != id)
                        break;
                total += store_i_node_bytes(s, k.mv_size, v.mv_size);
        }
        mdb_cursor_close(cur);
        if (rc != 0 && rc != MDB_NOTFOUND)
                return store_i_lmdb_err(rc);
        *ret_bytes = total;
        return 0;
}

int store_dataset_describe(struct store *s, const char *name, struct store_info **ret)
{
        struct store_info *info;
        struct schema_head h;
        struct counters c;
        MDB_txn *txn;
        MDB_val k, v;
        uint8_t kb[KEY_ID];
        uint64_t cond_bytes = 0;
        int r;

        r = store_name_check(name);
        if (r < 0)
                return r;
        info = dm_calloc(1, sizeof(*info));
        if (!info)
                return DREAM_E_NOMEM;
        info->name = dm_strdup(name);
        if (!info->name) {
                r = DREAM_E_NOMEM;
                goto fail_free;
        }
        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                goto fail_free;
        r = store_i_ds_load(s, txn, name, &h, &info->schema, &c);
        if (r < 0)
                goto end;
        info->stored_bytes = c.data_bytes;
        k = store_i_name_key(name);
        if (mdb_get(txn, s->db_datasets, &k, &v) == 0)
                info->stored_bytes += store_i_node_bytes(s, k.mv_size, v.mv_size);
        k = store_i_key_id(kb, h.id);
        info->stored_bytes += store_i_node_bytes(s, KEY_ID, COUNTERS_LEN);
        if (mdb_get(txn, s->db_suffstats, &k, &v) == 0)
                info->stored_bytes += store_i_node_bytes(s, KEY_ID, v.mv_size);
        info->stored_bytes += c.batch_ids * store_i_node_bytes(s, KEY_ID_U64, BATCH_REC);
        r = prefix_bytes(s, txn, s->db_condensed, h.id, &cond_bytes);
        info->stored_bytes += cond_bytes;
        {
                uint8_t ck[8] = {'c', 't', 'i', 'm'};
                MDB_val ckv = {.mv_size = 8, .mv_data = ck}, cv;

                dm_put_be32(ck + 4, h.id);
                if (r == 0 && mdb_get(txn, s->db_meta, &ckv, &cv) == 0 && cv.mv_size == 8)
                        info->created_unix = dm_get_le64(cv.mv_data);
        }
end:
        store_i_txn_end(s, txn);
        if (r < 0)
                goto fail_free;
        info->id = h.id;
        info->rows = c.rows;
        info->sealed_rows = c.sealed_rows;
        info->staged_rows = c.staged_rows;
        info->staged_batches = c.staged_batches;
        info->segments = c.segments;
        info->bases = c.bases;
        info->segment_bytes = c.segment_bytes;
        info->raw_bytes = c.raw_bytes;
        info->ratio =
            info->stored_bytes && c.rows ? (double)c.raw_bytes / (double)info->stored_bytes : 0.0;
        *ret = info;
        return 0;

fail_free:
        store_info_free(info);
        return r;
}

struct drop_ctx {
        const char *name;
        uint32_t id;
};

static int drop_fn(struct store *s, MDB_txn *txn, void *arg)
{
        struct drop_ctx *c = arg;
        struct schema_head h;
        MDB_val k = store_i_name_key(c->name), v = {.mv_size = 0, .mv_data = NULL};
        uint8_t mk[8] = {'d', 'r', 'o', 'p'};
        int r;

        r = store_i_ds_load(s, txn, c->name, &h, NULL, NULL);
        if (r < 0)
                return r;
        r = store_i_lmdb_err(mdb_del(txn, s->db_datasets, &k, NULL));
        if (r < 0)
                return r;
        {
                uint8_t ck[8] = {'c', 't', 'i', 'm'};
                MDB_val ckv = {.mv_size = 8, .mv_data = ck};
                int rc;

                dm_put_be32(ck + 4, h.id);
                rc = mdb_del(txn, s->db_meta, &ckv, NULL);
                if (rc != 0 && rc != MDB_NOTFOUND)
                        return store_i_lmdb_err(rc);
        }
        dm_put_be32(mk + 4, h.id);
        k = (MDB_val){.mv_size = 8, .mv_data = mk};
        c->id = h.id;
        return store_i_lmdb_err(mdb_put(txn, s->db_meta, &k, &v, 0));
}

struct purge_ctx {
        uint32_t id;
        bool done;
};

/* Delete up to PURGE_KEYS_PER_TXN keys of the id; done when none remain
 * (then the drop marker goes too). */
static int purge_fn(struct store *s, MDB_txn *txn, void *arg)
{
        struct purge_ctx *c = arg;
        MDB_dbi dbis[] = {s->db_staged,    s->db_segments, s->db_condensed,
                          s->db_suffstats, s->db_batches,  s->db_counters};
        unsigned budget = PURGE_KEYS_PER_TXN;
        int rc = 0;

        c->done = false;
        for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]) && budget; i++) {
                MDB_cursor *cur;
                uint8_t kb[KEY_ID];
                MDB_val k = store_i_key_id(kb, c->id), v;
                rc = mdb_cursor_open(txn, dbis[i], &cur);
                if (rc)
                        return store_i_lmdb_err(rc);
                /* Re-seek after each delete: a cursor left past the last
                 * key by mdb_cursor_del cannot be read with GET_CURRENT. */
                for (; budget; budget--) {
                        k = store_i_key_id(kb, c->id);
                        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
                        if (rc || k.mv_size < KEY_ID || dm_get_be32(k.mv_data) != c->id)
                                break;
                        rc = mdb_cursor_del(cur, 0);
                        if (rc)
                                break;
                }
                mdb_cursor_close(cur);
                if (rc != 0 && rc != MDB_NOTFOUND)
                        return store_i_lmdb_err(rc);
        }
        if (budget) {
                uint8_t mk[8] = {'d', 'r', 'o', 'p'};
                MDB_val k = {.mv_size = 8, .mv_data = mk};
                dm_put_be32(mk + 4, c->id);
                rc = mdb_del(txn, s->db_meta, &k, NULL);
                if (rc != 0 && rc != MDB_NOTFOUND)
                        return store_i_lmdb_err(rc);
                c->done = true;
        }
        return 0;
}

/* A small commit after a purge: LMDB reuses the pages a transaction freed
 * only once a later transaction has committed (the last snapshot stays
 * readable), so without it the space of a dropped dataset would come back
 * only with the next successful write, which a full map refuses. */
static int tick_fn(struct store *s, MDB_txn *txn, void *arg)
{
        MDB_val k = {.mv_size = 7, .mv_data = (void *)"purged"}, v;
        uint8_t vb[4];

        dm_put_be32(vb, *(const uint32_t *)arg);
        v = (MDB_val){.mv_size = 4, .mv_data = vb};
        return store_i_lmdb_err(mdb_put(txn, s->db_meta, &k, &v, 0));
}

int store_i_purge_id(struct store *s, uint32_t id)
{
        struct purge_ctx c = {.id = id};
        do {
                int r = store_i_write_txn(s, purge_fn, &c);
                if (r < 0)
                        return r;
        } while (!c.done);
        return store_i_write_txn(s, tick_fn, &id);
}

int store_dataset_drop(struct store *s, const char *name)
{
        struct drop_ctx c = {.name = name};
        int r = store_name_check(name);
        if (r < 0)
                return r;
        r = store_i_write_txn(s, drop_fn, &c);
        if (r < 0)
                return r;
        /* The dataset is gone once drop_fn committed; a failure to delete its
         * keys now leaves the drop marker, and store_open finishes the job. */
        store_i_segc_forget(s, c.id);
        (void)store_i_purge_id(s, c.id);
        return 0;
}

int store_dataset_id(struct store *s, const char *name, uint32_t *ret_id)
{
        struct schema_head h;
        MDB_txn *txn;
        int r;

        r = store_name_check(name);
        if (r < 0)
                return r;
        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_ds_load(s, txn, name, &h, NULL, NULL);
        store_i_txn_end(s, txn);
        if (r < 0)
                return r;
        *ret_id = h.id;
        return 0;
}
