/* Reads: random rows (store_get_rows, through the cache of opened
 * segments), chunked scans, and the whole dataset in one table. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

#define DEFAULT_CHUNK_ROWS 65536u

/* ---- reads ------------------------------------------------------------------------ */

/* Where a row lives, found in one read txn. For a segment, seg is opened
 * over the mapped bytes and valid only until the txn ends. */
struct loc {
        uint64_t first; /* first row of the container */
        uint64_t n;     /* its rows */
        struct gd_segment *seg;
        struct staged st;
        MDB_val key;
};

/* Greatest key <= (id, row) in dbi. */
static int seek_le(MDB_txn *txn, MDB_dbi dbi, uint32_t id, uint64_t row, MDB_val *ret_k,
                   MDB_val *ret_v)
{
        MDB_cursor *cur;
        uint8_t kb[KEY_ID_U64];
        MDB_val k = store_i_key_id_u64(kb, id, row), v;
        int rc;

        rc = mdb_cursor_open(txn, dbi, &cur);
        if (rc)
                return store_i_lmdb_err(rc);
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && !(k.mv_size == KEY_ID_U64 && memcmp(k.mv_data, kb, KEY_ID_U64) == 0))
                rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        else if (rc == MDB_NOTFOUND)
                rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
                return DREAM_E_CORRUPT; /* counters say the row exists */
        if (rc)
                return store_i_lmdb_err(rc);
        if (k.mv_size != KEY_ID_U64 || dm_get_be32(k.mv_data) != id)
                return DREAM_E_CORRUPT;
        *ret_k = k;
        *ret_v = v;
        return 0;
}

static int locate(struct store *s, MDB_txn *txn, uint32_t id, uint32_t n_cols,
                  const struct counters *cnt, uint64_t row, struct loc *ret)
{
        struct loc l = {0};
        MDB_val v;
        int r;

        if (row >= cnt->rows)
                return DREAM_E_RANGE;
        if (row < cnt->sealed_rows) {
                r = seek_le(txn, s->db_segments, id, row, &l.key, &v);
                if (r < 0)
                        return r;
                r = gd_segment_open(v.mv_data, v.mv_size, &l.seg);
                if (r < 0)
                        return r;
                l.n = gd_segment_rows(l.seg);
                if (gd_segment_cols(l.seg) != n_cols) {
                        gd_segment_free(l.seg);
                        return DREAM_E_CORRUPT;
                }
        } else {
                r = seek_le(txn, s->db_staged, id, row, &l.key, &v);
                if (r < 0)
                        return r;
                r = store_i_staged_decode(&v, false, &l.st);
                if (r < 0)
                        return r;
                if (l.st.n_cols != n_cols)
                        return DREAM_E_CORRUPT;
                l.n = l.st.n_rows;
        }
        l.first = dm_get_be64((const uint8_t *)l.key.mv_data + 4);
        if (row < l.first || row - l.first >= l.n) {
                gd_segment_free(l.seg);
                return DREAM_E_CORRUPT;
        }
        *ret = l;
        return 0;
}

struct row_ref {
        uint64_t row;
        size_t at; /* index in the caller's arrays */
};

static int cmp_row_ref(const void *a, const void *b)
{
        const struct row_ref *x = a, *y = b;

        if (x->row != y->row)
                return x->row < y->row ? -1 : 1;
        return x->at < y->at ? -1 : x->at > y->at;
}

int store_get_rows(struct store *s, const char *dataset, uint32_t id, uint32_t n_cols,
                   const uint64_t *rows, size_t n, int64_t *ret_values,
                   struct store_cellfmt *ret_fmt)
{
        struct schema_head h = {0};
        struct counters cnt;
        struct row_ref *refs = NULL, one;
        struct segc_entry *e = NULL;
        struct gd_cursor *cur = NULL;
        struct staged st;
        uint64_t c_first = 0, c_n = 0; /* the container in use: [c_first, c_first + c_n) */
        bool have = false;
        MDB_txn *txn;
        int r;

        r = store_name_check(dataset);
        if (r < 0)
                return r;
        if (n == 0)
                return 0;
        if (!rows || !ret_values)
                return DREAM_E_INVAL;
        if (n == 1) {
                one = (struct row_ref){rows[0], 0};
                refs = &one;
        } else {
                /* In row order: every container is located and opened once, and
                 * rows of one block are decoded from it once. */
                refs = dm_mallocarray(n, sizeof(*refs));
                if (!refs)
                        return DREAM_E_NOMEM;
                for (size_t i = 0; i < n; i++)
                        refs[i] = (struct row_ref){rows[i], i};
                qsort(refs, n, sizeof(*refs), cmp_row_ref);
        }
        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                goto free_refs;
        r = store_i_ds_load_pinned(s, txn, dataset, id, &h, NULL, &cnt);
        if (r == 0 && h.n_cols != n_cols)
                r = DREAM_E_SCHEMA; /* dropped and made again with other columns */
        for (size_t k = 0; r == 0 && k < n; k++) {
                uint64_t row = refs[k].row;
                int64_t *out = ret_values + refs[k].at * h.n_cols;
                struct store_cellfmt *fmt = ret_fmt ? ret_fmt + refs[k].at * h.n_cols : NULL;

                if (row >= cnt.rows) {
                        r = DREAM_E_RANGE;
                        break;
                }
                if (!have || row < c_first || row - c_first >= c_n) {
                        MDB_val key, v;

                        store_i_segc_put(s, e, cur);
                        e = NULL;
                        cur = NULL;
                        have = false;
                        if (row < cnt.sealed_rows) {
                                r = seek_le(txn, s->db_segments, h.id, row, &key, &v);
                                if (r < 0)
                                        break;
                                c_first = dm_get_be64((const uint8_t *)key.mv_data + 4);
                                r = store_i_segc_get(s, h.id, c_first, &v, &e, &cur);
                                if (r < 0)
                                        break;
                                c_n = gd_segment_rows(store_i_segc_segment(e));
                                if (gd_segment_cols(store_i_segc_segment(e)) != h.n_cols)
                                        r = DREAM_E_CORRUPT;
                        } else {
                                r = seek_le(txn, s->db_staged, h.id, row, &key, &v);
                                if (r == 0)
                                        r = store_i_staged_decode(&v, false, &st);
                                if (r == 0 && st.n_cols != h.n_cols)
                                        r = DREAM_E_CORRUPT;
                                c_first =
                                    r == 0 ? dm_get_be64((const uint8_t *)key.mv_data + 4) : 0;
                                c_n = r == 0 ? st.n_rows : 0;
                        }
                        if (r == 0 && (row < c_first || row - c_first >= c_n))
                                r = DREAM_E_CORRUPT;
                        if (r < 0)
                                break;
                        have = true;
                }
                if (e) {
                        r = gd_cursor_row(cur, row - c_first, out);
                        if (r == 0 && fmt) {
                                const struct gd_colparam *p =
                                    gd_segment_params(store_i_segc_segment(e));
                                for (uint32_t j = 0; j < h.n_cols; j++) {
                                        fmt[j].kind = p[j].kind;
                                        fmt[j].scale = p[j].scale;
                                }
                        }
                } else {
                        store_i_staged_row(&st, row - c_first, out);
                        for (uint32_t j = 0; fmt && j < h.n_cols; j++) {
                                fmt[j].kind = store_i_staged_kind(&st, j);
                                fmt[j].scale = store_i_staged_scale(&st, j);
                        }
                }
        }
        store_i_segc_put(s, e, cur);
        store_i_txn_end(s, txn);
free_refs:
        if (refs != &one)
                dm_free(refs);
        return r;
}

int store_get_row(struct store *s, const char *dataset, uint32_t id, uint32_t n_cols, uint64_t row,
                  int64_t *ret_values, struct store_cellfmt *ret_fmt)
{
        return store_get_rows(s, dataset, id, n_cols, &row, 1, ret_values, ret_fmt);
}

int store_scan(struct store *s, const char *dataset, uint32_t id, uint64_t first, uint64_t count,
               uint32_t chunk_rows, store_scan_cb cb, void *arg)
{
        struct store_schema sc = {0};
        struct schema_head h = {0};
        struct counters cnt;
        struct gd_table *chunk = NULL;
        uint64_t end, pos;
        MDB_txn *txn;
        int r;

        r = store_name_check(dataset);
        if (r < 0 || !cb)
                return r < 0 ? r : DREAM_E_INVAL;
        if (chunk_rows == 0)
                chunk_rows = DEFAULT_CHUNK_ROWS;
        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_ds_load_pinned(s, txn, dataset, id, &h, &sc, &cnt);
        store_i_txn_end(s, txn);
        if (r < 0)
                goto release;
        if (first > cnt.rows) {
                r = DREAM_E_RANGE;
                goto release;
        }
        end = count > cnt.rows - first ? cnt.rows : first + count;
        if (end == first)
                goto release;
        if (end - first < chunk_rows)
                chunk_rows = (uint32_t)(end - first);
        r = gd_table_new(chunk_rows, sc.n_cols, &chunk);
        if (r < 0)
                goto release;
        for (uint32_t j = 0; j < sc.n_cols && r == 0; j++)
                r = gd_table_set_name(chunk, j, sc.cols[j].name);
        if (r < 0)
                goto release;
        chunk->target = sc.target;
        chunk->task = sc.task;

        for (pos = first; pos < end;) {
                struct schema_head h2;
                struct loc l;
                uint64_t n;

                r = store_i_rtxn_begin(s, &txn);
                if (r < 0)
                        goto release;
                /* Pinned to the dataset of the first transaction: a drop
                 * (and a create under the name) between chunks ends the
                 * scan here, before the purged keys are looked for. */
                r = store_i_ds_load_pinned(s, txn, dataset, h.id, &h2, NULL, &cnt);
                if (r == 0)
                        r = locate(s, txn, h.id, h.n_cols, &cnt, pos, &l);
                if (r < 0) {
                        store_i_txn_end(s, txn);
                        goto release;
                }
                n = l.first + l.n - pos;
                if (n > end - pos)
                        n = end - pos;
                if (n > chunk_rows)
                        n = chunk_rows;
                chunk->n_rows = n;
                if (l.seg) {
                        struct gd_cursor *cur;
                        r = gd_cursor_new(l.seg, &cur);
                        if (r == 0) {
                                r = gd_cursor_range(cur, pos - l.first, n, chunk);
                                gd_cursor_free(cur);
                        }
                        if (r == 0) {
                                const struct gd_colparam *p = gd_segment_params(l.seg);
                                for (uint32_t j = 0; j < h.n_cols; j++) {
                                        chunk->cols[j].kind = p[j].kind;
                                        chunk->cols[j].scale = p[j].scale;
                                }
                        }
                        gd_segment_free(l.seg);
                } else {
                        store_i_staged_copy(&l.st, pos - l.first, n, chunk, 0);
                }
                store_i_txn_end(s, txn);
                if (r < 0)
                        goto release;
                chunk->target = sc.target;
                chunk->task = sc.task;
                r = cb(chunk, pos, arg);
                if (r != 0)
                        goto release;
                pos += n;
        }
release:
        gd_table_free(chunk);
        store_i_schema_release(&sc);
        return r;
}

struct collect_ctx {
        struct gd_table **parts;
        uint32_t n, cap;
};

static int collect_cb(const struct gd_table *chunk, uint64_t first_row, void *arg)
{
        struct collect_ctx *c = arg;
        struct gd_table *t;
        int r;
        (void)first_row;
        if (c->n == c->cap) {
                uint32_t ncap = c->cap ? c->cap * 2 : 16;
                struct gd_table **np = dm_reallocarray(c->parts, ncap, sizeof(*np));
                if (!np)
                        return DREAM_E_NOMEM;
                c->parts = np;
                c->cap = ncap;
        }
        r = gd_table_new(chunk->n_rows, chunk->n_cols, &t);
        if (r < 0)
                return r;
        for (uint32_t j = 0; j < chunk->n_cols; j++) {
                t->cols[j].kind = chunk->cols[j].kind;
                t->cols[j].scale = chunk->cols[j].scale;
                memcpy(t->cols[j].v, chunk->cols[j].v, chunk->n_rows * sizeof(int64_t));
        }
        if (c->n == 0) {
                for (uint32_t j = 0; j < chunk->n_cols && r == 0; j++)
                        r = gd_table_set_name(t, j, chunk->cols[j].name);
                t->target = chunk->target;
                t->task = chunk->task;
                if (r < 0) {
                        gd_table_free(t);
                        return r;
                }
        }
        c->parts[c->n++] = t;
        return 0;
}

/* Rows [0, rows) in one harmonised table. */
int store_i_read_rows(struct store *s, const char *dataset, uint32_t id, uint64_t rows,
                      struct gd_table **ret)
{
        struct collect_ctx c = {0};
        int r = store_scan(s, dataset, id, 0, rows, DEFAULT_CHUNK_ROWS, collect_cb, &c);
        if (r == 0 && c.n == 0)
                r = DREAM_E_EMPTY;
        if (r == 0)
                r = store_table_concat((const struct gd_table *const *)c.parts, c.n, ret);
        store_i_free_parts(c.parts, c.n);
        return r;
}

int store_read_all(struct store *s, const char *dataset, uint32_t id, struct gd_table **ret)
{
        return store_i_read_rows(s, dataset, id, UINT64_MAX, ret);
}
