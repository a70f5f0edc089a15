/* Sealing: staged batches copied out in a short read transaction, encoded
 * into a gd segment outside any transaction, swapped in in one write
 * transaction. One seal per dataset at a time: owns seal_lock, seal_done and
 * sealing[] (store_internal.h). */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

/* ---- sealing -------------------------------------------------------------------- */

struct seal_ctx {
        const char *name;
        uint32_t id;
        uint64_t first;           /* first row of the segment */
        uint64_t rows;            /* rows in the segment */
        uint32_t n_batches;       /* staged batches it covers, from `first` */
        uint64_t staged_bytes;    /* store_i_node_bytes of those batches */
        const struct dm_buf *seg; /* serialized segment */
        uint64_t bases;
        bool lost; /* out: another seal took these rows */
};

static int seal_fn(struct store *s, MDB_txn *txn, void *arg)
{
        struct seal_ctx *c = arg;
        struct schema_head h;
        struct counters cnt;
        MDB_cursor *cur;
        uint8_t kb[KEY_ID_U64];
        MDB_val k, v;
        uint64_t at = c->first;
        int r, rc;

        c->lost = false;
        r = store_i_ds_load(s, txn, c->name, &h, NULL, &cnt);
        if (r < 0)
                return r;
        if (h.id != c->id || cnt.sealed_rows != c->first || cnt.staged_rows < c->rows) {
                c->lost = true;
                return 0;
        }
        /* Re-check that the batches are still there, then delete them. */
        rc = mdb_cursor_open(txn, s->db_staged, &cur);
        if (rc)
                return store_i_lmdb_err(rc);
        for (uint32_t b = 0; b < c->n_batches; b++) {
                struct staged st;
                k = store_i_key_id_u64(kb, h.id, at);
                rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
                if (rc == MDB_NOTFOUND) {
                        c->lost = true;
                        break;
                }
                if (rc)
                        break;
                r = store_i_staged_decode(&v, false, &st);
                if (r < 0) {
                        mdb_cursor_close(cur);
                        return r;
                }
                at += st.n_rows;
                rc = mdb_cursor_del(cur, 0);
                if (rc)
                        break;
        }
        mdb_cursor_close(cur);
        if (rc && rc != MDB_NOTFOUND)
                return store_i_lmdb_err(rc);
        if (c->lost)
                return DREAM_E_BUSY; /* abort: nothing of this transaction stays */
        if (at != c->first + c->rows)
                return DREAM_E_CORRUPT;
        k = store_i_key_id_u64(kb, h.id, c->first);
        v = (MDB_val){.mv_size = c->seg->len, .mv_data = c->seg->data};
        r = store_i_lmdb_err(mdb_put(txn, s->db_segments, &k, &v, MDB_NOOVERWRITE));
        if (r < 0)
                return r == DREAM_E_EXISTS ? DREAM_E_CORRUPT : r;
        cnt.sealed_rows += c->rows;
        cnt.staged_rows -= c->rows;
        cnt.staged_batches -= c->n_batches;
        cnt.segments++;
        cnt.bases += c->bases;
        cnt.segment_bytes += c->seg->len;
        cnt.data_bytes -= c->staged_bytes;
        cnt.data_bytes += store_i_node_bytes(s, KEY_ID_U64, c->seg->len);
        return store_i_counters_put(s, txn, h.id, &cnt);
}

void store_i_free_parts(struct gd_table **parts, uint32_t n)
{
        if (!parts)
                return;
        for (uint32_t i = 0; i < n; i++)
                gd_table_free(parts[i]);
        dm_free(parts);
}

/* Copy the staged batches of one future segment (a short read txn).
 * *ret_table is NULL when there is nothing to seal. */
static int seal_collect(struct store *s, struct seal_ctx *c, bool force, struct store_schema *sc,
                        struct gd_table **ret_table)
{
        struct schema_head h;
        struct counters cnt;
        struct gd_table **parts = NULL;
        struct gd_table *t = NULL;
        uint32_t n_parts = 0, cap = 0;
        MDB_cursor *cur = NULL;
        MDB_txn *txn;
        uint8_t kb[KEY_ID_U64];
        MDB_val k, v;
        int r, rc;

        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_ds_load(s, txn, c->name, &h, sc, &cnt);
        if (r < 0)
                goto end;
        c->id = h.id;
        c->first = cnt.sealed_rows;
        c->rows = 0;
        c->n_batches = 0;
        c->staged_bytes = 0;
        if (cnt.staged_rows == 0 || (!force && cnt.staged_rows < s->opts.seal_rows))
                goto end;
        r = store_i_lmdb_err(mdb_cursor_open(txn, s->db_staged, &cur));
        if (r < 0)
                goto end;
        k = store_i_key_id_u64(kb, h.id, cnt.sealed_rows);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                struct staged st;
                if (k.mv_size != KEY_ID_U64 || dm_get_be32(k.mv_data) != h.id)
                        break;
                if (dm_get_be64((const uint8_t *)k.mv_data + 4) != c->first + c->rows) {
                        r = DREAM_E_CORRUPT;
                        goto end;
                }
                r = store_i_staged_decode(&v, true, &st);
                if (r == 0 && st.n_cols != h.n_cols)
                        r = DREAM_E_CORRUPT;
                if (r < 0)
                        goto end;
                if (c->rows && c->rows + st.n_rows > DREAM_MAX_SEGMENT_ROWS)
                        break;
                if (n_parts == cap) {
                        uint32_t ncap = cap ? cap * 2 : 16;
                        struct gd_table **np = dm_reallocarray(parts, ncap, sizeof(*np));
                        if (!np) {
                                r = DREAM_E_NOMEM;
                                goto end;
                        }
                        parts = np;
                        cap = ncap;
                }
                r = gd_table_new(st.n_rows, st.n_cols, &parts[n_parts]);
                if (r < 0)
                        goto end;
                store_i_staged_copy(&st, 0, st.n_rows, parts[n_parts], 0);
                n_parts++;
                c->rows += st.n_rows;
                c->n_batches++;
                c->staged_bytes += store_i_node_bytes(s, k.mv_size, v.mv_size);
                if (c->rows >= s->opts.seal_rows)
                        break;
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
                r = store_i_lmdb_err(rc);
                goto end;
        }
        if (c->rows == 0 || (!force && c->rows < s->opts.seal_rows)) {
                c->rows = 0;
                goto end;
        }
end:
        if (cur)
                mdb_cursor_close(cur);
        store_i_txn_end(s, txn);
        if (r == 0 && c->rows) {
                r = store_table_concat((const struct gd_table *const *)parts, n_parts, &t);
                for (uint32_t j = 0; r == 0 && j < sc->n_cols; j++)
                        r = gd_table_set_name(t, j, sc->cols[j].name);
                if (r == 0) {
                        t->target = sc->target;
                        t->task = sc->task;
                }
        }
        store_i_free_parts(parts, n_parts);
        if (r < 0) {
                gd_table_free(t);
                return r;
        }
        *ret_table = t;
        return 0;
}

/* Claim the right to seal `dataset`. Returns the slot, or -1 when another
 * thread is sealing it and !wait. With wait, waits for that seal to end. */
static int sealer_claim(struct store *s, const char *dataset, bool wait)
{
        int slot = -1;
        pthread_mutex_lock(&s->seal_lock);
        for (;;) {
                int busy = 0, free_slot = -1;
                for (int i = 0; i < SEALERS_MAX; i++) {
                        if (s->sealing[i][0] == 0) {
                                if (free_slot < 0)
                                        free_slot = i;
                        } else if (strcmp(s->sealing[i], dataset) == 0) {
                                busy = 1;
                        }
                }
                if (!busy && free_slot >= 0) {
                        strcpy(s->sealing[free_slot], dataset);
                        slot = free_slot;
                        break;
                }
                if (busy && !wait)
                        break;
                pthread_cond_wait(&s->seal_done, &s->seal_lock);
        }
        pthread_mutex_unlock(&s->seal_lock);
        return slot;
}

static void sealer_release(struct store *s, int slot)
{
        pthread_mutex_lock(&s->seal_lock);
        s->sealing[slot][0] = 0;
        pthread_cond_broadcast(&s->seal_done);
        pthread_mutex_unlock(&s->seal_lock);
}

static int seal_loop(struct store *s, const char *dataset, bool force, uint64_t *ret_sealed);

int store_seal(struct store *s, const char *dataset, bool force, uint64_t *ret_sealed)
{
        uint64_t sealed = 0;
        int r, slot;

        r = store_name_check(dataset);
        if (r < 0)
                return r;
        /* A seal already running on the dataset keeps sealing while enough
         * rows are staged: a non-forced call has nothing to add. A flush
         * waits for it, then seals what is left. */
        slot = sealer_claim(s, dataset, force);
        if (slot < 0) {
                if (ret_sealed)
                        *ret_sealed = 0;
                return 0;
        }
        r = seal_loop(s, dataset, force, &sealed);
        sealer_release(s, slot);
        if (r < 0)
                return r;
        if (ret_sealed)
                *ret_sealed = sealed;
        return 0;
}

static int seal_loop(struct store *s, const char *dataset, bool force, uint64_t *ret_sealed)
{
        uint64_t sealed = 0;
        int r;

        for (;;) {
                struct seal_ctx c = {.name = dataset};
                struct store_schema sc = {0};
                struct gd_table *t = NULL;
                struct gd_segment *seg = NULL;
                struct gd_encode_opts eo;
                struct gd_stats gs;
                struct dm_buf buf;
                bool had_rows;

                dm_buf_init(&buf);
                r = seal_collect(s, &c, force, &sc, &t);
                had_rows = t != NULL;
                if (r < 0 || !t)
                        goto next;
                gd_encode_opts_default(&eo); /* fast zstd level: ingest path */
                r = gd_segment_encode(t, &eo, &seg);
                if (r < 0)
                        goto next;
                r = gd_segment_serialize(seg, &buf);
                if (r < 0)
                        goto next;
                gd_segment_stats(seg, &gs);
                c.seg = &buf;
                c.bases = gs.n_bases;
                r = store_i_write_txn(s, seal_fn, &c);
                if (r == DREAM_E_BUSY && c.lost)
                        r = 0; /* another seal took these rows: done */
                else if (r == 0 && !c.lost)
                        sealed += c.rows;
        next:
                dm_buf_release(&buf);
                gd_segment_free(seg);
                gd_table_free(t);
                store_i_schema_release(&sc);
                if (r < 0)
                        return r;
                if (!had_rows || c.lost)
                        break;
        }
        if (ret_sealed)
                *ret_sealed = sealed;
        return 0;
}
