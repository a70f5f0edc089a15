/* Appending a batch: the write transaction (staged batch, counters,
 * sufficient statistics, batch id), idempotent re-sends by batch id, and
 * the group commit of concurrent appends. Owns group_lock and the queue
 * (store_internal.h). */
#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "storage/store_internal.h"

#define GROUP_MAX 64 /* appends committed together at most */

/* ---- append ------------------------------------------------------------------- */

struct append_ctx {
        const char *name;
        uint32_t id;
        const struct gd_table *batch;
        uint64_t batch_id;
        uint64_t raw_bytes;
        const struct store_suffstats *part;
        const struct staged_plan *plan;
        uint64_t first_row;   /* out */
        uint64_t staged_rows; /* out */
        bool duplicate;       /* out */
};

static int append_fn(struct store *s, MDB_txn *txn, void *arg)
{
        struct append_ctx *c = arg;
        const struct gd_table *t = c->batch;
        struct schema_head h;
        struct counters cnt;
        struct store_suffstats *tot = NULL;
        struct dm_buf sb;
        uint8_t kb[KEY_ID_U64], bb[KEY_ID_U64], vb[BATCH_REC];
        MDB_val k, v;
        int r;

        c->duplicate = false;
        r = store_i_ds_load(s, txn, c->name, &h, NULL, &cnt);
        if (r < 0)
                return r;
        if (h.id != c->id)
                return DREAM_E_BUSY; /* dropped and re-created meanwhile */
        if (c->batch_id) {
                MDB_val bk = store_i_key_id_u64(bb, h.id, c->batch_id);
                r = store_i_lmdb_err(mdb_get(txn, s->db_batches, &bk, &v));
                if (r == 0) {
                        uint64_t first;
                        uint32_t rows;
                        r = store_i_batch_decode(&bk, &v, &first, &rows);
                        if (r < 0)
                                return r;
                        if (rows != t->n_rows)
                                return DREAM_E_EXISTS;
                        c->first_row = first;
                        c->staged_rows = cnt.staged_rows;
                        c->duplicate = true;
                        return 0;
                }
                if (r != DREAM_E_NOTFOUND)
                        return r;
        }
        if (cnt.rows + t->n_rows > DREAM_MAX_ROWS)
                return DREAM_E_LIMIT;
        c->first_row = cnt.rows;

        k = store_i_key_id_u64(kb, h.id, cnt.rows);
        v = (MDB_val){.mv_size = c->plan->len, .mv_data = NULL};
        r = store_i_lmdb_err(mdb_put(txn, s->db_staged, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE));
        if (r == DREAM_E_EXISTS)
                return DREAM_E_CORRUPT;
        if (r < 0)
                return r;
        store_i_staged_encode(t, c->plan, v.mv_data);

        /* Sufficient statistics: totals += this batch's partial sums. */
        k = store_i_key_id(kb, h.id);
        r = store_i_lmdb_err(mdb_get(txn, s->db_suffstats, &k, &v));
        if (r < 0)
                return r == DREAM_E_NOTFOUND ? DREAM_E_CORRUPT : r;
        r = store_i_suff_decode(&v, h.n_cols, h.target, &tot);
        if (r < 0)
                return r;
        store_i_suff_merge(tot, c->part);
        dm_buf_init(&sb);
        r = store_i_suff_encode(tot, &sb);
        if (r == 0) {
                v = (MDB_val){.mv_size = sb.len, .mv_data = sb.data};
                r = store_i_lmdb_err(mdb_put(txn, s->db_suffstats, &k, &v, 0));
        }
        dm_buf_release(&sb);
        store_suffstats_free(tot);
        if (r < 0)
                return r;

        if (c->batch_id) {
                MDB_val bk = store_i_key_id_u64(bb, h.id, c->batch_id);
                dm_put_le64(vb, cnt.rows);
                dm_put_le32(vb + 8, (uint32_t)t->n_rows);
                dm_put_le64(vb + BATCH_REC_OLD, store_i_keyed_checksum(&bk, vb, BATCH_REC_OLD));
                v = (MDB_val){.mv_size = BATCH_REC, .mv_data = vb};
                r = store_i_lmdb_err(mdb_put(txn, s->db_batches, &bk, &v, 0));
                if (r < 0)
                        return r;
                cnt.batch_ids++;
        }
        cnt.rows += t->n_rows;
        cnt.staged_rows += t->n_rows;
        cnt.staged_batches++;
        cnt.raw_bytes += c->raw_bytes;
        cnt.data_bytes += store_i_node_bytes(s, KEY_ID_U64, c->plan->len);
        c->staged_rows = cnt.staged_rows;
        return store_i_counters_put(s, txn, h.id, &cnt);
}

/* Group commit: appends that arrive while a commit is under way are
 * committed together by the next one, sharing its two fsyncs. Each runs in a
 * nested transaction, so one failing append (a batch id re-sent with another
 * row count...) does not fail the others; each caller returns only after the
 * commit that holds its rows. */
struct pending {
        struct append_ctx *c;
        int result;
        bool done;
        struct pending *next;
};

static int group_fn(struct store *s, MDB_txn *txn, void *arg)
{
        struct pending *p;
        for (p = arg; p; p = p->next)
                p->result = DREAM_E_IO;
        for (p = arg; p; p = p->next) {
                MDB_txn *child;
                int r = store_i_lmdb_err(mdb_txn_begin(s->env, txn, 0, &child));
                if (r < 0)
                        return r;
                r = append_fn(s, child, p->c);
                if (r < 0) {
                        mdb_txn_abort(child);
                        if (r == DREAM_E_FULL)
                                return r; /* grow the map, run the group again */
                        if (r == DREAM_E_IO || r == -ENOSPC || r == -EDQUOT)
                                return r; /* a failed write (a spill): the whole group fails */
                        p->result = r;
                        continue;
                }
                r = store_i_lmdb_err(mdb_txn_commit(child));
                if (r < 0)
                        return r;
                p->result = 0;
        }
        return 0;
}

static int append_grouped(struct store *s, struct append_ctx *c)
{
        struct pending me = {.c = c, .result = DREAM_E_IO};

        pthread_mutex_lock(&s->group_lock);
        *s->queue_tail = &me;
        /* `me` lives on this stack until it is done: the leader takes it off
         * the queue (and resets queue_tail) before it sets me.done. */
        // cppcheck-suppress autoVariables
        s->queue_tail = &me.next;
        while (!me.done) {
                struct pending *group, *p, *next;
                unsigned n = 1;
                int r;

                if (s->group_leader) {
                        pthread_cond_wait(&s->group_cv, &s->group_lock);
                        continue;
                }
                /* Lead: take up to GROUP_MAX waiting appends, oldest first. */
                group = s->queue;
                for (p = group; p->next && n < GROUP_MAX; p = p->next)
                        n++;
                s->queue = p->next;
                p->next = NULL;
                if (!s->queue)
                        s->queue_tail = &s->queue;
                s->group_leader = true;
                pthread_mutex_unlock(&s->group_lock);
                r = store_i_write_txn(s, group_fn, group);
                pthread_mutex_lock(&s->group_lock);
                for (p = group; p; p = next) {
                        next = p->next; /* p may vanish once done */
                        if (r < 0)
                                p->result = r;
                        p->done = true;
                }
                s->group_leader = false;
                pthread_cond_broadcast(&s->group_cv);
        }
        pthread_mutex_unlock(&s->group_lock);
        return me.result;
}

/* Check a batch against the dataset's schema (names in order). */
static int batch_check(const struct gd_table *t, const struct store_schema *sc)
{
        if (!t || t->n_cols != sc->n_cols || !t->cols)
                return DREAM_E_SCHEMA;
        if (t->n_rows == 0 || t->n_rows > DREAM_MAX_SEGMENT_ROWS)
                return t->n_rows ? DREAM_E_LIMIT : DREAM_E_EMPTY;
        for (uint32_t j = 0; j < t->n_cols; j++) {
                const struct gd_col *c = &t->cols[j];
                if (!c->name || strcmp(c->name, sc->cols[j].name) != 0 || c->kind > GD_F64 ||
                    (c->kind == GD_DEC && (c->scale < 1 || c->scale > DREAM_MAX_SCALE)) || !c->v)
                        return DREAM_E_SCHEMA;
        }
        return 0;
}

int store_append(struct store *s, const char *dataset, const struct gd_table *batch,
                 uint64_t batch_id, uint64_t *ret_first_row, bool *ret_needs_seal)
{
        struct append_ctx c = {.name = dataset, .batch = batch, .batch_id = batch_id};
        struct store_schema sc = {0};
        struct store_suffstats *part = NULL;
        struct staged_plan plan = {0};
        struct schema_head h;
        MDB_txn *txn;
        int r;

        r = store_name_check(dataset);
        if (r < 0)
                return r;
        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_ds_load(s, txn, dataset, &h, &sc, NULL);
        store_i_txn_end(s, txn);
        if (r < 0)
                return r;
        r = batch_check(batch, &sc);
        if (r < 0)
                goto release;
        r = store_i_staged_plan_make(batch, &plan);
        if (r < 0)
                goto release;
        c.plan = &plan;
        c.id = h.id;
        /* Everything that needs no transaction is computed here, so that the
         * write transaction stays short. */
        for (uint32_t j = 0; j < batch->n_cols; j++) {
                const struct gd_col *col = &batch->cols[j];
                for (uint64_t i = 0; i < batch->n_rows; i++)
                        c.raw_bytes += store_cell_text_len(col->kind, col->scale, col->v[i]);
        }
        c.raw_bytes += batch->n_rows * batch->n_cols; /* separators and newline */
        r = store_i_suff_new(h.n_cols, h.target, &part);
        if (r < 0)
                goto release;
        r = store_i_suff_add(part, batch);
        if (r < 0)
                goto release;
        c.part = part;
        r = append_grouped(s, &c);
        if (r < 0)
                goto release;
        *ret_first_row = c.first_row;
        if (ret_needs_seal)
                *ret_needs_seal = c.staged_rows >= s->opts.seal_rows;
release:
        store_i_staged_plan_release(&plan);
        store_suffstats_free(part);
        store_i_schema_release(&sc);
        return r;
}
