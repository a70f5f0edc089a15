/* store_check: every record of every dataset, the meta records, keys of no
 * dataset, and the job records, verified in read transactions; problems
 * reported after the transactions closed. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

/* ---- check ------------------------------------------------------------------------ */

struct problem {
        char *dataset;
        const char *db;
        uint8_t key[COND_KEY_LEN + DREAM_MAX_NAME];
        size_t key_len;
        int err;
        const char *what;
};

struct problems {
        struct problem *p;
        uint64_t n, cap;
        int err; /* allocation failure while recording */
};

static void problem_add(struct problems *ps, const char *dataset, const char *db,
                        const MDB_val *key, int err, const char *what)
{
        struct problem *p;
        if (ps->n == ps->cap) {
                uint64_t ncap = ps->cap ? ps->cap * 2 : 16;
                struct problem *np = dm_reallocarray(ps->p, ncap, sizeof(*np));
                if (!np) {
                        ps->err = DREAM_E_NOMEM;
                        return;
                }
                ps->p = np;
                ps->cap = ncap;
        }
        p = &ps->p[ps->n];
        p->dataset = dm_strdup(dataset);
        if (!p->dataset) {
                ps->err = DREAM_E_NOMEM;
                return;
        }
        p->db = db;
        p->key_len = 0;
        if (key) {
                p->key_len = key->mv_size < sizeof(p->key) ? key->mv_size : sizeof(p->key);
                memcpy(p->key, key->mv_data, p->key_len);
        }
        p->err = err;
        p->what = what;
        ps->n++;
}

/* The batch id records of dataset `id`: each verifies (checksum, sizes),
 * lies within the rows appended, and when its rows are still staged, a
 * staged batch of exactly that many rows starts at its first row; their
 * count is the counters' batch_ids. */
static int check_batch_ids(struct store *s, MDB_txn *txn, const char *name, uint32_t id,
                           const struct counters *cnt, struct problems *ps)
{
        MDB_cursor *cur;
        uint8_t kb[KEY_ID_U64];
        MDB_val k = store_i_key_id(kb, id), v;
        uint64_t n = 0;
        int r, rc;

        r = store_i_lmdb_err(mdb_cursor_open(txn, s->db_batches, &cur));
        if (r < 0)
                return r;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                uint64_t first;
                uint32_t rows;
                const char *what = NULL;
                if (k.mv_size < KEY_ID || dm_get_be32(k.mv_data) != id)
                        break;
                n++;
                r = store_i_batch_decode(&k, &v, &first, &rows);
                if (r < 0) {
                        problem_add(ps, name, "batches", &k, r,
                                    r == DREAM_E_CHECKSUM ? "batch id record fails its checksum"
                                                          : "batch id record has a bad size");
                        continue;
                }
                if (rows == 0 || rows > DREAM_MAX_SEGMENT_ROWS || first > cnt->rows ||
                    rows > cnt->rows - first)
                        what = "batch id record points beyond the dataset's rows";
                else if (dm_get_be64((const uint8_t *)k.mv_data + 4) == 0)
                        what = "batch id record has batch id 0";
                else if (first >= cnt->sealed_rows) {
                        uint8_t sb[KEY_ID_U64];
                        MDB_val sk = store_i_key_id_u64(sb, id, first), sv;
                        struct staged st;
                        if (mdb_get(txn, s->db_staged, &sk, &sv) != 0 ||
                            store_i_staged_decode(&sv, false, &st) < 0 || st.n_rows != rows)
                                what = "batch id record does not match a staged batch";
                }
                if (what)
                        problem_add(ps, name, "batches", &k, DREAM_E_CORRUPT, what);
        }
        mdb_cursor_close(cur);
        if (rc && rc != MDB_NOTFOUND)
                return store_i_lmdb_err(rc);
        if (n != cnt->batch_ids)
                problem_add(ps, name, "counters", NULL, DREAM_E_CORRUPT,
                            "batch id count differs from the batch id records");
        return 0;
}

/* The condensed cache entries of dataset `id`: checksum and sizes, and keys
 * that name a row count the dataset had (1..rows), a known order and fill, a
 * budget (a count, or a fraction in (0, 1]), and the current method with an
 * exclusion leaving rows (hash 0 for none) or the previous method (method 2,
 * whose entries no lookup finds: they are deleted when an entry of the
 * dataset is next written). */
static int check_condensed(struct store *s, MDB_txn *txn, const char *name, uint32_t id,
                           const struct counters *cnt, struct problems *ps)
{
        MDB_cursor *cur;
        uint8_t kb[KEY_ID_U64];
        MDB_val k = store_i_key_id(kb, id), v;
        int r, rc;

        r = store_i_lmdb_err(mdb_cursor_open(txn, s->db_condensed, &cur));
        if (r < 0)
                return r;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                const uint8_t *kp = k.mv_data;
                struct gd_condensed *c = NULL;
                uint64_t rows, count, fb, n_ex = 0, ex_hash = 0;
                double frac;
                if (k.mv_size < KEY_ID || dm_get_be32(kp) != id)
                        break;
                if (k.mv_size != COND_KEY_LEN && k.mv_size != COND_KEY_LEN_2) {
                        problem_add(ps, name, "condensed", &k, DREAM_E_CORRUPT,
                                    "condensed key has a bad size");
                        continue;
                }
                rows = dm_get_be64(kp + 4);
                count = dm_get_be64(kp + 13);
                fb = dm_get_be64(kp + 21);
                memcpy(&frac, &fb, 8);
                if (k.mv_size == COND_KEY_LEN) {
                        n_ex = dm_get_be64(kp + 35);
                        ex_hash = dm_get_be64(kp + 43);
                }
                if (rows == 0 || rows > cnt->rows || kp[12] > GD_ORDER_ENTROPY ||
                    kp[29] > GD_FILL_SPLIT ||
                    kp[34] != (k.mv_size == COND_KEY_LEN ? COND_METHOD : 2) || n_ex >= rows ||
                    (n_ex == 0 && ex_hash != 0) ||
                    (count ? fb != 0 : !(frac > 0.0 && frac <= 1.0))) {
                        problem_add(ps, name, "condensed", &k, DREAM_E_CORRUPT,
                                    "condensed key is not one the store writes");
                        continue;
                }
                r = store_i_cond_decode(&k, &v, &c);
                if (r == 0 && c->m > rows - n_ex)
                        r = DREAM_E_CORRUPT;
                gd_condensed_free(c);
                if (r == DREAM_E_NOMEM) {
                        mdb_cursor_close(cur);
                        return r;
                }
                if (r < 0)
                        problem_add(ps, name, "condensed", &k, r,
                                    "condensed entry does not verify");
        }
        mdb_cursor_close(cur);
        if (rc && rc != MDB_NOTFOUND)
                return store_i_lmdb_err(rc);
        return 0;
}

/* Check one dataset in one read transaction. */
static int check_dataset(struct store *s, const char *name, struct problems *ps)
{
        struct schema_head h;
        struct counters cnt;
        MDB_cursor *cur = NULL;
        MDB_txn *txn;
        uint8_t kb[KEY_ID_U64];
        MDB_val k, v, nk = store_i_name_key(name);
        uint64_t at = 0, segs = 0, batches = 0, sealed = 0;
        int r, rc;

        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_ds_load(s, txn, name, &h, NULL, &cnt);
        if (r == DREAM_E_NOTFOUND) {
                r = 0; /* dropped meanwhile */
                goto end;
        }
        if (r < 0) {
                problem_add(ps, name, "datasets", &nk, r, "bad schema or counters record");
                r = 0;
                goto end;
        }
        r = store_i_lmdb_err(mdb_cursor_open(txn, s->db_segments, &cur));
        if (r < 0)
                goto end;
        k = store_i_key_id(kb, h.id);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                struct gd_segment *seg = NULL;
                struct gd_table *t = NULL;
                if (k.mv_size < KEY_ID || dm_get_be32(k.mv_data) != h.id)
                        break;
                if (k.mv_size != KEY_ID_U64 || dm_get_be64((const uint8_t *)k.mv_data + 4) != at) {
                        problem_add(ps, name, "segments", &k, DREAM_E_CORRUPT,
                                    "segment does not start where the previous ended");
                        break;
                }
                r = gd_segment_open(v.mv_data, v.mv_size, &seg);
                if (r == 0)
                        r = gd_segment_verify(seg);
                if (r == 0 && gd_segment_cols(seg) != h.n_cols)
                        r = DREAM_E_CORRUPT;
                if (r == 0)
                        r = gd_segment_decode(seg, &t);
                if (r == 0 && t->n_rows != gd_segment_rows(seg))
                        r = DREAM_E_CORRUPT;
                if (r < 0) {
                        problem_add(ps, name, "segments", &k, r, "segment does not verify");
                        gd_table_free(t);
                        gd_segment_free(seg);
                        r = 0;
                        break; /* its row count is unknown: stop the walk here */
                }
                at += gd_segment_rows(seg);
                segs++;
                gd_table_free(t);
                gd_segment_free(seg);
        }
        sealed = at;
        mdb_cursor_close(cur);
        cur = NULL;
        if (rc && rc != MDB_NOTFOUND) {
                r = store_i_lmdb_err(rc);
                goto end;
        }
        if (sealed != cnt.sealed_rows || segs != cnt.segments)
                problem_add(ps, name, "counters", NULL, DREAM_E_CORRUPT,
                            "sealed rows or segment count differ from the segments");
        at = cnt.sealed_rows;
        r = store_i_lmdb_err(mdb_cursor_open(txn, s->db_staged, &cur));
        if (r < 0)
                goto end;
        k = store_i_key_id(kb, h.id);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                struct staged st;
                if (k.mv_size < KEY_ID || dm_get_be32(k.mv_data) != h.id)
                        break;
                if (k.mv_size != KEY_ID_U64 || dm_get_be64((const uint8_t *)k.mv_data + 4) != at) {
                        problem_add(ps, name, "staged", &k, DREAM_E_CORRUPT,
                                    "staged batch does not start where the previous ended");
                        break;
                }
                r = store_i_staged_decode(&v, true, &st);
                if (r == 0 && st.n_cols != h.n_cols)
                        r = DREAM_E_CORRUPT;
                if (r < 0) {
                        problem_add(ps, name, "staged", &k, r, "staged batch does not verify");
                        r = 0;
                        break;
                }
                at += st.n_rows;
                batches++;
        }
        mdb_cursor_close(cur);
        cur = NULL;
        if (rc && rc != MDB_NOTFOUND) {
                r = store_i_lmdb_err(rc);
                goto end;
        }
        if (at != cnt.rows || batches != cnt.staged_batches)
                problem_add(ps, name, "counters", NULL, DREAM_E_CORRUPT,
                            "row or batch count differs from the staged batches");
        k = store_i_key_id(kb, h.id);
        rc = mdb_get(txn, s->db_suffstats, &k, &v);
        if (rc == 0) {
                struct store_suffstats *st = NULL;
                r = store_i_suff_decode(&v, h.n_cols, h.target, &st);
                if (r == 0 && st->n != cnt.rows)
                        r = DREAM_E_CORRUPT;
                store_suffstats_free(st);
        } else {
                r = store_i_lmdb_err(rc);
        }
        if (r < 0)
                problem_add(ps, name, "suffstats", &k, r, "bad sufficient statistics");
        r = check_batch_ids(s, txn, name, h.id, &cnt, ps);
        if (r == 0)
                r = check_condensed(s, txn, name, h.id, &cnt, ps);
end:
        if (cur)
                mdb_cursor_close(cur);
        store_i_txn_end(s, txn);
        return r;
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

/* The meta records: "format" (the version), "next_id" (above every
 * dataset's and pending drop's id), "purged" (the last id purged) and the
 * drop markers ("drop" + id BE32, empty, of no live dataset), the creation
 * times ("ctim" + id BE32, LE64 seconds, of a live dataset); any other meta
 * key is reported. ids[0..n) are the datasets' ids, sorted. */
static int check_meta(struct store *s, MDB_txn *txn, const uint32_t *ids, size_t n,
                      struct problems *ps)
{
        uint32_t next_id = 0, max_id = n ? ids[n - 1] : 0;
        MDB_cursor *cur;
        MDB_val k = {.mv_size = 7, .mv_data = (void *)"next_id"}, v;
        int r, rc;

        for (size_t i = 1; i < n; i++)
                if (ids[i] == ids[i - 1])
                        problem_add(ps, "", "datasets", NULL, DREAM_E_CORRUPT,
                                    "two datasets have the same id");
        rc = mdb_get(txn, s->db_meta, &k, &v);
        if (rc == 0 && v.mv_size == 4)
                next_id = dm_get_le32(v.mv_data);
        if ((rc == 0 && (v.mv_size != 4 || next_id <= max_id)) || (rc == MDB_NOTFOUND && n))
                problem_add(ps, "", "meta", &k, DREAM_E_CORRUPT,
                            "next dataset id is missing or not above every dataset's id");
        r = store_i_lmdb_err(mdb_cursor_open(txn, s->db_meta, &cur));
        if (r < 0)
                return r;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                const char *what = NULL;
                if (k.mv_size == 6 && memcmp(k.mv_data, "format", 6) == 0) {
                        if (v.mv_size != 4 || dm_get_le32(v.mv_data) != FORMAT_VERSION)
                                what = "store format version is damaged";
                } else if (k.mv_size == 7 && memcmp(k.mv_data, "next_id", 7) == 0) {
                        continue; /* checked above */
                } else if (k.mv_size == 7 && memcmp(k.mv_data, "purged", 7) == 0) {
                        /* The last id purged (tick_fn, store_datasets.c). */
                        if (v.mv_size != 4 || (next_id && dm_get_be32(v.mv_data) >= next_id))
                                what = "last purged id is damaged";
                } else if (k.mv_size == 8 && memcmp(k.mv_data, "drop", 4) == 0) {
                        uint32_t id = dm_get_be32((const uint8_t *)k.mv_data + 4);
                        if (v.mv_size != 0 || id == 0 || (next_id && id >= next_id) ||
                            bsearch(&id, ids, n, sizeof(uint32_t), cmp_u32))
                                what = "drop marker is damaged or names a live dataset";
                } else if (k.mv_size == 8 && memcmp(k.mv_data, "ctim", 4) == 0) {
                        /* A dataset's creation time (store_datasets.c). */
                        uint32_t id = dm_get_be32((const uint8_t *)k.mv_data + 4);
                        if (v.mv_size != 8 || !bsearch(&id, ids, n, sizeof(uint32_t), cmp_u32))
                                what = "creation time is damaged or names no dataset";
                } else {
                        what = "unknown meta key";
                }
                if (what)
                        problem_add(ps, "", "meta", &k, DREAM_E_CORRUPT, what);
        }
        mdb_cursor_close(cur);
        return rc != MDB_NOTFOUND ? store_i_lmdb_err(rc) : 0;
}

/* Dataset names (valid) and ids (unique), the meta records (check_meta),
 * then keys whose dataset id belongs to no dataset and no pending drop: one
 * seek per distinct id in each id-keyed database. */
static int check_orphans(struct store *s, struct problems *ps)
{
        struct {
                MDB_dbi dbi;
                const char *name;
        } dbs[] = {{s->db_counters, "counters"},   {s->db_staged, "staged"},
                   {s->db_segments, "segments"},   {s->db_condensed, "condensed"},
                   {s->db_suffstats, "suffstats"}, {s->db_batches, "batches"}};
        uint32_t *ids = NULL;
        size_t n = 0, cap;
        MDB_cursor *cur = NULL;
        MDB_txn *txn;
        MDB_stat st;
        MDB_val k, v;
        int r, rc;

        r = store_i_rtxn_begin(s, &txn);
        if (r < 0)
                return r;
        r = store_i_lmdb_err(mdb_stat(txn, s->db_datasets, &st));
        if (r < 0)
                goto end;
        cap = st.ms_entries + 1;
        ids = dm_mallocarray(cap, sizeof(uint32_t));
        if (!ids) {
                r = DREAM_E_NOMEM;
                goto end;
        }
        r = store_i_lmdb_err(mdb_cursor_open(txn, s->db_datasets, &cur));
        if (r < 0)
                goto end;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < cap;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                char name[DREAM_MAX_NAME + 1];
                struct schema_head h;
                if (k.mv_size == 0 || k.mv_size > DREAM_MAX_NAME) {
                        name[0] = '\0';
                } else {
                        memcpy(name, k.mv_data, k.mv_size);
                        name[k.mv_size] = '\0';
                }
                if (strlen(name) != k.mv_size || store_name_check(name) < 0)
                        problem_add(ps, "", "datasets", &k, DREAM_E_CORRUPT,
                                    "dataset name is not valid");
                if (store_i_schema_decode(&k, &v, &h, NULL) == 0)
                        ids[n++] = h.id; /* else reported by check_dataset */
        }
        mdb_cursor_close(cur);
        cur = NULL;
        qsort(ids, n, sizeof(uint32_t), cmp_u32);
        r = check_meta(s, txn, ids, n, ps);
        if (r < 0)
                goto end;
        for (size_t d = 0; d < sizeof(dbs) / sizeof(dbs[0]); d++) {
                uint8_t kb[KEY_ID];
                uint32_t id = 0;
                r = store_i_lmdb_err(mdb_cursor_open(txn, dbs[d].dbi, &cur));
                if (r < 0)
                        goto end;
                for (;;) {
                        uint8_t mk[8] = {'d', 'r', 'o', 'p'};
                        MDB_val mkv = {.mv_size = 8, .mv_data = mk}, mv;
                        k = store_i_key_id(kb, id);
                        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
                        if (rc)
                                break;
                        if (k.mv_size < KEY_ID) {
                                problem_add(ps, "", dbs[d].name, &k, DREAM_E_CORRUPT,
                                            "key too short");
                                break;
                        }
                        id = dm_get_be32(k.mv_data);
                        dm_put_be32(mk + 4, id);
                        if (!bsearch(&id, ids, n, sizeof(uint32_t), cmp_u32) &&
                            mdb_get(txn, s->db_meta, &mkv, &mv) != 0)
                                problem_add(ps, "", dbs[d].name, &k, DREAM_E_CORRUPT,
                                            "key of no dataset");
                        if (id == UINT32_MAX)
                                break;
                        id++;
                }
                mdb_cursor_close(cur);
                cur = NULL;
                if (rc && rc != MDB_NOTFOUND) {
                        r = store_i_lmdb_err(rc);
                        goto end;
                }
        }
end:
        if (cur)
                mdb_cursor_close(cur);
        store_i_txn_end(s, txn);
        dm_free(ids);
        return r;
}

static int check_job_cb(void *arg, uint64_t id, const void *rec, size_t len, int err)
{
        uint8_t kb[8];
        MDB_val k = store_i_job_key(kb, id);

        (void)rec;
        (void)len;
        if (err < 0)
                problem_add(arg, "", "jobs", &k, err,
                            err == DREAM_E_CHECKSUM ? "job record fails its checksum"
                                                    : "job record is damaged (key or length)");
        return 0;
}

int store_check(struct store *s, store_problem_cb cb, void *arg, uint64_t *ret_problems)
{
        struct problems ps = {0};
        char **names = NULL;
        uint32_t n = 0;
        int r;

        r = store_dataset_list(s, &names, &n);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < n && r == 0; i++)
                r = check_dataset(s, names[i], &ps);
        if (r == 0)
                r = check_orphans(s, &ps);
        if (r == 0)
                r = store_job_list(s, check_job_cb, &ps);
        if (r == 0 && ps.err)
                r = ps.err;
        for (uint64_t i = 0; i < ps.n; i++) {
                struct store_problem p = {.dataset = ps.p[i].dataset,
                                          .db = ps.p[i].db,
                                          .key = ps.p[i].key,
                                          .key_len = ps.p[i].key_len,
                                          .err = ps.p[i].err,
                                          .what = ps.p[i].what};
                if (cb && r == 0)
                        cb(&p, arg);
                dm_free(ps.p[i].dataset);
        }
        dm_free(ps.p);
        store_names_free(names, n);
        if (r < 0)
                return r;
        if (ret_problems)
                *ret_problems = ps.n;
        return 0;
}
