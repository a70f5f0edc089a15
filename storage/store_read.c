/* Reads: random rows (store_get_rows, through the cache of opened
 * segments), chunked scans, and the whole dataset in one table. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/par.h"
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

/* The schema (names in sc: release with store_i_schema_release) and counters
 * of a dataset, in a read transaction of their own. */
static int load_dataset(struct store *s, const char *dataset, uint32_t id, struct schema_head *h,
                        struct store_schema *sc, struct counters *cnt)
{
        MDB_txn *txn;
        int r = store_name_check(dataset);

        if (r < 0)
                return r;
        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_ds_load_pinned(s, txn, dataset, id, h, sc, cnt);
        store_i_txn_end(s, txn);
        return r;
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

        if (!cb)
                return DREAM_E_INVAL;
        if (chunk_rows == 0)
                chunk_rows = DEFAULT_CHUNK_ROWS;
        r = load_dataset(s, dataset, id, &h, &sc, &cnt);
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

/* ---- reading every row -------------------------------------------------------------
 *
 * Rows are decoded straight into the result (a table, or training rows),
 * container after container, each in a short read transaction of its own (as
 * a scan: pinned to the dataset the read began on). A segment's rows are cut
 * into one piece per read thread, at block boundaries, decoded in parallel
 * column by column (gd_cursor_columns); the mapped bytes stay valid while
 * the transaction is open, and no thread but the caller's touches LMDB. */

/* What the rows are read into. */
struct read_out {
        uint32_t n_cols;
        int64_t **cols; /* table form: the result's columns */
        float *x;       /* training rows: x[row * d + f] */
        double *y;      /* training rows: column skip, or NULL */
        int32_t skip;
        uint32_t d;
};

/* Rows [first, first + n) of one container into rows [at, at + n) of out. */
struct piece {
        const struct read_out *out;
        const struct gd_segment *seg; /* NULL: the staged batch st */
        const struct staged *st;
        uint64_t first, n, at;
        int err;
};

/* Staged rows as training rows: through a small table, a few rows at a time. */
static int staged_features(const struct piece *p)
{
        const struct read_out *o = p->out;
        const uint64_t step = 256;
        struct gd_table *t = NULL;
        int r = gd_table_new(step, o->n_cols, &t);

        for (uint64_t done = 0; r == 0 && done < p->n; done += step) {
                uint64_t n = p->n - done < step ? p->n - done : step;
                store_i_staged_copy(p->st, p->first + done, n, t, 0);
                for (uint64_t i = 0; i < n; i++) {
                        float *x = o->x + (p->at + done + i) * o->d;
                        for (uint32_t j = 0, f = 0; j < o->n_cols; j++) {
                                const struct gd_col *c = &t->cols[j];
                                double v = gd_value_f64(c->kind, c->scale, c->v[i]);
                                if ((int32_t)j != o->skip)
                                        x[f++] = (float)v;
                                else if (o->y)
                                        o->y[p->at + done + i] = v;
                        }
                }
        }
        gd_table_free(t);
        return r;
}

static void piece_run(void *arg)
{
        struct piece *p = arg;
        const struct read_out *o = p->out;
        int64_t **cols = NULL;
        struct gd_cursor *cur = NULL;

        if (o->cols) {
                cols = dm_mallocarray(o->n_cols, sizeof(*cols));
                if (!cols) {
                        p->err = DREAM_E_NOMEM;
                        return;
                }
                for (uint32_t j = 0; j < o->n_cols; j++)
                        cols[j] = o->cols[j] + p->at;
        }
        if (!p->seg) {
                if (cols) {
                        /* The staged kinds are taken by the caller; the view's are
                         * not kept. */
                        struct gd_col *view = dm_calloc(o->n_cols, sizeof(*view));
                        struct gd_table t = {.n_rows = p->n, .n_cols = o->n_cols, .cols = view};
                        p->err = view ? 0 : DREAM_E_NOMEM;
                        for (uint32_t j = 0; view && j < o->n_cols; j++)
                                view[j].v = cols[j];
                        if (view)
                                store_i_staged_copy(p->st, p->first, p->n, &t, 0);
                        dm_free(view);
                } else {
                        p->err = staged_features(p);
                }
                dm_free(cols);
                return;
        }
        p->err = gd_cursor_new(p->seg, &cur);
        if (p->err == 0 && cols)
                p->err = gd_cursor_columns(cur, p->first, p->n, cols);
        else if (p->err == 0)
                p->err = gd_cursor_features(cur, p->first, p->n, o->skip, o->x + p->at * o->d,
                                            o->y ? o->y + p->at : NULL);
        gd_cursor_free(cur);
        dm_free(cols);
}

/* The kind and scale of every column of one container's rows [at, at + n). */
struct part_fmt {
        uint64_t at, n;
        struct store_cellfmt *fmt; /* n_cols, owned */
};

struct read_ctx {
        struct store *s;
        const char *dataset;
        uint32_t id; /* pinned */
        uint32_t n_cols;
        uint64_t end;
        struct read_out out;
        struct part_fmt *parts; /* table form only */
        uint32_t n_parts, cap_parts;
};

static unsigned read_threads(const struct store *s)
{
        unsigned n = s->opts.read_threads;
        if (n == 0) {
                long c = sysconf(_SC_NPROCESSORS_ONLN);
                n = c < 1 ? 1 : c > 8 ? 8 : (unsigned)c;
        }
        return n > DREAM_MAX_PAR_THREADS ? DREAM_MAX_PAR_THREADS : n;
}

static int note_part(struct read_ctx *c, const struct loc *l, uint64_t at, uint64_t n)
{
        struct part_fmt *pf;
        if (c->n_parts == c->cap_parts) {
                uint32_t ncap = c->cap_parts ? c->cap_parts * 2 : 16;
                struct part_fmt *np = dm_reallocarray(c->parts, ncap, sizeof(*np));
                if (!np)
                        return DREAM_E_NOMEM;
                c->parts = np;
                c->cap_parts = ncap;
        }
        pf = &c->parts[c->n_parts];
        pf->fmt = dm_mallocarray(c->n_cols, sizeof(*pf->fmt));
        if (!pf->fmt)
                return DREAM_E_NOMEM;
        pf->at = at;
        pf->n = n;
        for (uint32_t j = 0; j < c->n_cols; j++) {
                if (l->seg) {
                        const struct gd_colparam *p = gd_segment_params(l->seg);
                        pf->fmt[j] = (struct store_cellfmt){p[j].kind, p[j].scale};
                } else {
                        pf->fmt[j] = (struct store_cellfmt){store_i_staged_kind(&l->st, j),
                                                            store_i_staged_scale(&l->st, j)};
                }
        }
        c->n_parts++;
        return 0;
}

/* The rows of the container holding row pos, up to c->end, into c->out, in
 * one read transaction; *ret_n rows were read. */
static int read_container(struct read_ctx *c, uint64_t pos, uint64_t *ret_n)
{
        struct piece pieces[DREAM_MAX_PAR_THREADS];
        struct schema_head h;
        struct counters cnt;
        struct loc l = {0};
        MDB_txn *txn;
        uint64_t n, step = 0;
        uint32_t np = 0;
        int r = store_i_rtxn_begin(c->s, &txn);

        if (r < 0)
                return r;
        r = store_i_ds_load_pinned(c->s, txn, c->dataset, c->id, &h, NULL, &cnt);
        if (r == 0 && pos >= cnt.rows)
                r = DREAM_E_CORRUPT; /* rows never disappear while the dataset lives */
        if (r == 0)
                r = locate(c->s, txn, c->id, c->n_cols, &cnt, pos, &l);
        if (r < 0)
                goto end;
        n = l.first + l.n - pos;
        if (n > c->end - pos)
                n = c->end - pos;
        if (c->out.cols)
                r = note_part(c, &l, pos, n);
        if (r < 0)
                goto end;
        if (l.seg) {
                /* One piece per thread, cut at block boundaries. */
                struct gd_stats gs;
                unsigned threads = read_threads(c->s);
                gd_segment_stats(l.seg, &gs);
                step = (n + threads - 1) / threads;
                step = (step + gs.rows_per_block - 1) / gs.rows_per_block * gs.rows_per_block;
        }
        if (step == 0)
                step = n;
        for (uint64_t done = 0; done < n; done += step, np++) {
                pieces[np] = (struct piece){.out = &c->out,
                                            .seg = l.seg,
                                            .st = &l.st,
                                            .first = pos - l.first + done,
                                            .n = n - done < step ? n - done : step,
                                            .at = pos + done};
        }
        if (np == 1)
                piece_run(&pieces[0]);
        else
                dm_par_each(piece_run, pieces, sizeof(pieces[0]), np);
        for (uint32_t k = 0; k < np && r == 0; k++)
                r = pieces[k].err;
end:
        gd_segment_free(l.seg);
        store_i_txn_end(c->s, txn);
        if (r == 0)
                *ret_n = n;
        return r;
}

static uint8_t eff_scale(struct store_cellfmt f)
{
        return f.kind == GD_DEC ? f.scale : 0;
}

/* One kind and scale per column over the parts (store_table_concat). */
static int harmonise(struct read_ctx *c, struct gd_table *t)
{
        struct gd_table **views = NULL, *vt = NULL;
        struct gd_col *vcols = NULL;
        int r = 0;

        for (uint32_t j = 0; j < c->n_cols && r == 0; j++) {
                struct store_cellfmt f0 = c->parts[0].fmt[j];
                bool same = true;
                struct gd_table *one;

                for (uint32_t k = 1; k < c->n_parts && same; k++) {
                        struct store_cellfmt f = c->parts[k].fmt[j];
                        same = f.kind == f0.kind && eff_scale(f) == eff_scale(f0);
                }
                t->cols[j].kind = f0.kind;
                t->cols[j].scale = eff_scale(f0);
                if (same)
                        continue;
                /* Mixed kinds (batches preprocessed differently): one column
                 * view per part, concatenated the way store_read_all always has. */
                if (!views) {
                        views = dm_calloc(c->n_parts, sizeof(*views));
                        vt = dm_calloc(c->n_parts, sizeof(*vt));
                        vcols = dm_calloc(c->n_parts, sizeof(*vcols));
                        if (!views || !vt || !vcols) {
                                r = DREAM_E_NOMEM;
                                break;
                        }
                }
                for (uint32_t k = 0; k < c->n_parts; k++) {
                        vcols[k] = (struct gd_col){.name = t->cols[j].name,
                                                   .kind = c->parts[k].fmt[j].kind,
                                                   .scale = c->parts[k].fmt[j].scale,
                                                   .v = t->cols[j].v + c->parts[k].at};
                        vt[k] = (struct gd_table){
                            .n_rows = c->parts[k].n, .n_cols = 1, .cols = &vcols[k], .target = -1};
                        views[k] = &vt[k];
                }
                r = store_table_concat((const struct gd_table *const *)views, c->n_parts, &one);
                if (r < 0)
                        break;
                dm_free(t->cols[j].v);
                t->cols[j].v = one->cols[0].v;
                t->cols[j].kind = one->cols[0].kind;
                t->cols[j].scale = one->cols[0].scale;
                one->cols[0].v = NULL;
                gd_table_free(one);
        }
        dm_free(views);
        dm_free(vt);
        dm_free(vcols);
        return r;
}

/* Rows [0, min(rows, the dataset's)) into c->out, which begin() sets up
 * from the schema (names in sc) and the row count. */
static int
read_every_row(struct store *s, const char *dataset, uint32_t id, uint64_t rows, struct read_ctx *c,
               int (*begin)(struct read_ctx *c, const struct store_schema *sc, void *arg),
               void *arg)
{
        struct store_schema sc = {0};
        struct schema_head h = {0};
        struct counters cnt;
        int r = load_dataset(s, dataset, id, &h, &sc, &cnt);

        if (r < 0)
                goto out;
        c->s = s;
        c->dataset = dataset;
        c->id = h.id;
        c->n_cols = h.n_cols;
        c->end = rows < cnt.rows ? rows : cnt.rows;
        if (c->end == 0) {
                r = DREAM_E_EMPTY;
                goto out;
        }
        r = begin(c, &sc, arg);
        for (uint64_t pos = 0, n = 0; r == 0 && pos < c->end; pos += n)
                r = read_container(c, pos, &n);
out:
        store_i_schema_release(&sc);
        return r;
}

static int begin_table(struct read_ctx *c, const struct store_schema *sc, void *arg)
{
        struct gd_table **t = arg;
        /* Columns left unwritten (every row is decoded into them) and
         * advised before the first touch. */
        int r = gd_table_new(0, c->n_cols, t);
        for (uint32_t j = 0; j < c->n_cols && r == 0; j++) {
                r = gd_table_set_name(*t, j, sc->cols[j].name);
                dm_free((*t)->cols[j].v);
                (*t)->cols[j].v = dm_alloc_large(c->end, sizeof(int64_t));
                if (r == 0 && !(*t)->cols[j].v)
                        r = DREAM_E_NOMEM;
        }
        if (r < 0)
                return r;
        (*t)->n_rows = c->end;
        (*t)->target = sc->target;
        (*t)->task = sc->task;
        c->out.n_cols = c->n_cols;
        c->out.cols = dm_mallocarray(c->n_cols, sizeof(*c->out.cols));
        if (!c->out.cols)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < c->n_cols; j++)
                c->out.cols[j] = (*t)->cols[j].v;
        return 0;
}

/* Rows [0, rows) in one harmonised table. */
int store_i_read_rows(struct store *s, const char *dataset, uint32_t id, uint64_t rows,
                      struct gd_table **ret)
{
        struct read_ctx c = {0};
        struct gd_table *t = NULL;
        int r = read_every_row(s, dataset, id, rows, &c, begin_table, &t);

        if (r == 0)
                r = harmonise(&c, t);
        for (uint32_t k = 0; k < c.n_parts; k++)
                dm_free(c.parts[k].fmt);
        dm_free(c.parts);
        dm_free(c.out.cols);
        if (r < 0) {
                gd_table_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

int store_read_all(struct store *s, const char *dataset, uint32_t id, struct gd_table **ret)
{
        return store_i_read_rows(s, dataset, id, UINT64_MAX, ret);
}

struct features_arg {
        int32_t skip;
        bool want_y;
};

static int begin_features(struct read_ctx *c, const struct store_schema *sc, void *arg)
{
        const struct features_arg *a = arg;
        (void)sc;
        if (a->skip >= (int32_t)c->n_cols)
                return DREAM_E_SCHEMA;
        c->out.n_cols = c->n_cols;
        c->out.skip = a->skip;
        c->out.d = c->n_cols - (a->skip >= 0 ? 1 : 0);
        c->out.x = dm_alloc_large(c->end * c->out.d + 1, sizeof(float));
        if (a->want_y)
                c->out.y = dm_alloc_large(c->end + 1, sizeof(double));
        return c->out.x && (!a->want_y || c->out.y) ? 0 : DREAM_E_NOMEM;
}

int store_read_features(struct store *s, const char *dataset, uint32_t id, int32_t skip,
                        float **ret_x, double **ret_y, uint64_t *ret_n)
{
        struct read_ctx c = {0};
        struct features_arg a = {.skip = skip < 0 ? -1 : skip, .want_y = ret_y != NULL};
        int r;

        if (!ret_x || !ret_n || (ret_y && skip < 0))
                return DREAM_E_INVAL;
        r = read_every_row(s, dataset, id, UINT64_MAX, &c, begin_features, &a);
        if (r < 0) {
                dm_free(c.out.x);
                dm_free(c.out.y);
                return r;
        }
        *ret_x = c.out.x;
        if (ret_y)
                *ret_y = c.out.y;
        *ret_n = c.end;
        return 0;
}
