/* The LMDB store (store.h): the parts not yet in their own files.
 * Layout of keys and values: STORE.md; the struct and the locks:
 * store_internal.h. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>
#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/limits.h"
#include "storage/store.h"
#include "storage/store_internal.h"

#define DEFAULT_MAP_INITIAL   ((size_t)64 << 20)
#define DEFAULT_MAP_MAX       ((size_t)1 << 40)
#define DEFAULT_SEAL_ROWS     65536u
#define DEFAULT_MAX_READERS   256u
#define DEFAULT_CHUNK_ROWS    65536u
#define DEFAULT_SEGMENT_CACHE ((size_t)64 << 20)
#define PURGE_KEYS_PER_TXN    4096u
#define GROUP_MAX             64 /* appends committed together at most */

/* ---- open / close ------------------------------------------------------------ */

void store_opts_default(struct store_opts *o)
{
        memset(o, 0, sizeof(*o));
        o->map_initial = DEFAULT_MAP_INITIAL;
        o->map_max = DEFAULT_MAP_MAX;
        o->seal_rows = DEFAULT_SEAL_ROWS;
        o->max_readers = DEFAULT_MAX_READERS;
        o->segment_cache_bytes = DEFAULT_SEGMENT_CACHE;
}

static int open_dbs(struct store *s)
{
        MDB_txn *txn;
        int rc;
        static const uint32_t version = FORMAT_VERSION;
        MDB_val k = {.mv_size = 6, .mv_data = (void *)"format"}, v;

        rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc)
                return store_i_lmdb_err(rc);
        if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->db_meta)) ||
            (rc = mdb_dbi_open(txn, "datasets", MDB_CREATE, &s->db_datasets)) ||
            (rc = mdb_dbi_open(txn, "counters", MDB_CREATE, &s->db_counters)) ||
            (rc = mdb_dbi_open(txn, "staged", MDB_CREATE, &s->db_staged)) ||
            (rc = mdb_dbi_open(txn, "segments", MDB_CREATE, &s->db_segments)) ||
            (rc = mdb_dbi_open(txn, "condensed", MDB_CREATE, &s->db_condensed)) ||
            (rc = mdb_dbi_open(txn, "suffstats", MDB_CREATE, &s->db_suffstats)) ||
            (rc = mdb_dbi_open(txn, "batches", MDB_CREATE, &s->db_batches)) ||
            (rc = mdb_dbi_open(txn, "jobs", MDB_CREATE, &s->db_jobs)))
                goto fail_abort;
        rc = mdb_get(txn, s->db_meta, &k, &v);
        if (rc == MDB_NOTFOUND) {
                uint8_t vb[4];
                dm_put_le32(vb, version);
                v = (MDB_val){.mv_size = 4, .mv_data = vb};
                rc = mdb_put(txn, s->db_meta, &k, &v, 0);
                if (rc)
                        goto fail_abort;
        } else if (rc) {
                goto fail_abort;
        } else if (v.mv_size != 4 || dm_get_le32(v.mv_data) != version) {
                mdb_txn_abort(txn);
                return DREAM_E_FORMAT;
        }
        return store_i_lmdb_err(mdb_txn_commit(txn));

fail_abort:
        mdb_txn_abort(txn);
        return store_i_lmdb_err(rc);
}

/* Ids whose drop was interrupted: meta keys "drop" + id BE32. */
static int resume_drops(struct store *s)
{
        for (;;) {
                MDB_txn *txn;
                MDB_cursor *cur;
                uint8_t kb[8] = {'d', 'r', 'o', 'p', 0, 0, 0, 0};
                MDB_val k = {.mv_size = 8, .mv_data = kb}, v;
                uint32_t id = 0;
                int r, rc;

                r = store_i_rtxn_begin(s, &txn);
                if (r < 0)
                        return r;
                rc = mdb_cursor_open(txn, s->db_meta, &cur);
                if (rc == 0) {
                        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
                        if (rc == 0 && k.mv_size == 8 && memcmp(k.mv_data, "drop", 4) == 0)
                                id = dm_get_be32((const uint8_t *)k.mv_data + 4);
                        if (rc == MDB_NOTFOUND)
                                rc = 0;
                        mdb_cursor_close(cur);
                }
                store_i_txn_end(s, txn);
                if (rc)
                        return store_i_lmdb_err(rc);
                if (id == 0)
                        return 0;
                r = store_i_purge_id(s, id);
                if (r < 0)
                        return r;
        }
}

/* LMDB 0.9's data file (mdb.c): pages 0 and 1 are meta pages, each a page
 * header (pgno, pad u16, flags u16 with P_META, lower/upper u16) followed by
 * MDB_meta: magic u32, version u32, address (pointer), mapsize (size_t), the
 * free and main MDB_db (md_pad u32, md_flags u16, md_depth u16, five
 * pgno_t/size_t fields; the free DB's md_pad holds the page size), last
 * page number, txnid. Native byte order; LMDB uses the meta with the larger
 * txnid and maps every page up to its last page number. */
#define LMDB_MAGIC        0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_P_META       0x08u
#define LMDB_FLAGS_OFF    (sizeof(size_t) + 2u)
#define LMDB_META_OFF     (sizeof(size_t) + 8u)
#define LMDB_DB_SIZE      (8u + 5u * sizeof(size_t))
#define LMDB_PSIZE_OFF    (LMDB_META_OFF + 8u + sizeof(void *) + sizeof(size_t))
#define LMDB_LASTPG_OFF   (LMDB_PSIZE_OFF + 2u * LMDB_DB_SIZE)
#define LMDB_TXNID_OFF    (LMDB_LASTPG_OFF + sizeof(size_t))
#define LMDB_META_END     (LMDB_TXNID_OFF + sizeof(size_t))
#define LMDB_PSIZE_MIN    512u
#define LMDB_PSIZE_MAX    65536u

struct lmdb_meta {
        uint32_t psize;
        uint64_t last_pg, txnid;
};

/* Meta page i of the file at `off`: 0, DREAM_E_TRUNCATED (short file),
 * DREAM_E_FORMAT, or a negative errno. */
static int meta_read(int fd, off_t off, struct lmdb_meta *ret)
{
        uint8_t b[LMDB_META_END];
        uint16_t flags;
        uint32_t magic, version;
        size_t last_pg, txnid;
        ssize_t n;

        do
                n = pread(fd, b, sizeof(b), off);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t)n < sizeof(b))
                return DREAM_E_TRUNCATED;
        memcpy(&flags, b + LMDB_FLAGS_OFF, 2);
        memcpy(&magic, b + LMDB_META_OFF, 4);
        memcpy(&version, b + LMDB_META_OFF + 4, 4);
        memcpy(&ret->psize, b + LMDB_PSIZE_OFF, 4);
        memcpy(&last_pg, b + LMDB_LASTPG_OFF, sizeof(size_t));
        memcpy(&txnid, b + LMDB_TXNID_OFF, sizeof(size_t));
        if (!(flags & LMDB_P_META) || magic != LMDB_MAGIC || version != LMDB_DATA_VERSION ||
            ret->psize < LMDB_PSIZE_MIN || ret->psize > LMDB_PSIZE_MAX ||
            (ret->psize & (ret->psize - 1)) || last_pg < 1 || last_pg >= UINT64_MAX / ret->psize)
                return DREAM_E_FORMAT;
        ret->last_pg = last_pg;
        ret->txnid = txnid;
        return 0;
}

int store_file_check(const char *dir, struct store_file_info *ret_info)
{
        char path[DREAM_MAX_PATH + 16];
        struct store_file_info info = {.bad_meta = -1};
        struct lmdb_meta m[2];
        struct stat sb;
        int fd, r;

        if (!dir || strlen(dir) > DREAM_MAX_PATH)
                return DREAM_E_INVAL;
        snprintf(path, sizeof(path), "%s/data.mdb", dir);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? DREAM_E_NOTFOUND : -errno;
        if (fstat(fd, &sb) < 0) {
                r = -errno;
                goto close_fd;
        }
        if (!S_ISREG(sb.st_mode)) {
                r = DREAM_E_FORMAT;
                goto close_fd;
        }
        info.size = (uint64_t)sb.st_size;
        r = info.size ? meta_read(fd, 0, &m[0]) : DREAM_E_EMPTY;
        if (r == 0) {
                info.page_size = m[0].psize;
                r = meta_read(fd, (off_t)m[0].psize, &m[1]);
                if (r == DREAM_E_FORMAT)
                        info.bad_meta = 1;
                if (r == 0 && m[1].psize != m[0].psize) {
                        r = DREAM_E_FORMAT;
                        info.bad_meta = 1;
                }
        } else if (r == DREAM_E_FORMAT) {
                info.bad_meta = 0;
        }
        if (r == 0) {
                const struct lmdb_meta *cur = m[1].txnid > m[0].txnid ? &m[1] : &m[0];
                info.need = (cur->last_pg + 1) * cur->psize;
                if (info.size < info.need)
                        r = DREAM_E_TRUNCATED;
        } else if (r == DREAM_E_TRUNCATED) {
                /* Not even both meta pages. */
                info.need = 2u * (uint64_t)info.page_size;
        }
        if (r == 0 || r == DREAM_E_EMPTY || r == DREAM_E_TRUNCATED || r == DREAM_E_FORMAT)
                *ret_info = info;
close_fd:
        close(fd);
        return r;
}

int store_open(const char *dir, const struct store_opts *opts, struct store **ret)
{
        struct store *s;
        pthread_rwlockattr_t attr;
        MDB_stat st;
        int r, rc, dead;

        if (!dir)
                return DREAM_E_INVAL;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        {
                /* An existing data.mdb must be whole: LMDB maps it as its meta
                 * page describes (a missing page is a SIGBUS) and would turn an
                 * empty one into a new, empty store. */
                struct store_file_info fi;
                r = store_file_check(dir, &fi);
                if (r < 0 && r != DREAM_E_NOTFOUND)
                        return r;
        }
        s = dm_calloc(1, sizeof(*s));
        if (!s)
                return DREAM_E_NOMEM;
        store_opts_default(&s->opts);
        if (opts) {
                s->opts = *opts;
                if (!s->opts.map_initial)
                        s->opts.map_initial = DEFAULT_MAP_INITIAL;
                if (!s->opts.map_max)
                        s->opts.map_max = DEFAULT_MAP_MAX;
                if (!s->opts.seal_rows)
                        s->opts.seal_rows = DEFAULT_SEAL_ROWS;
                if (!s->opts.max_readers)
                        s->opts.max_readers = DEFAULT_MAX_READERS;
                if (!s->opts.segment_cache_bytes)
                        s->opts.segment_cache_bytes = DEFAULT_SEGMENT_CACHE;
        }
        if (s->opts.seal_rows > DREAM_MAX_SEGMENT_ROWS)
                s->opts.seal_rows = DREAM_MAX_SEGMENT_ROWS;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&s->map_lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        pthread_mutex_init(&s->write_lock, NULL);
        pthread_mutex_init(&s->seal_lock, NULL);
        pthread_mutex_init(&s->group_lock, NULL);
        pthread_cond_init(&s->group_cv, NULL);
        pthread_mutex_init(&s->segc_lock, NULL);
        s->queue_tail = &s->queue;
        pthread_cond_init(&s->seal_done, NULL);

        rc = mdb_env_create(&s->env);
        if (rc) {
                s->env = NULL;
                r = store_i_lmdb_err(rc);
                goto fail_free;
        }
        if ((rc = mdb_env_set_maxdbs(s->env, 16)) ||
            (rc = mdb_env_set_maxreaders(s->env, s->opts.max_readers)) ||
            (rc = mdb_env_set_mapsize(s->env, s->opts.map_initial)) ||
            (rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600))) {
                r = store_i_lmdb_err(rc);
                goto fail_free;
        }
        if ((rc = mdb_env_stat(s->env, &st))) {
                r = store_i_lmdb_err(rc);
                goto fail_free;
        }
        s->page_size = st.ms_psize;
        s->node_max = (((s->page_size - LMDB_PAGEHDRSZ) / 2) & ~(size_t)1) - 2;
        store_i_refresh_map_size(s);
        s->map_max = s->opts.map_max;
        mdb_reader_check(s->env, &dead);
        r = open_dbs(s);
        if (r < 0)
                goto fail_free;
        r = resume_drops(s);
        if (r < 0)
                goto fail_free;
        *ret = s;
        return 0;

fail_free:
        store_close(s);
        return r;
}

void store_close(struct store *s)
{
        if (!s)
                return;
        store_i_segc_free_all(s);
        if (s->env)
                mdb_env_close(s->env);
        pthread_rwlock_destroy(&s->map_lock);
        pthread_mutex_destroy(&s->write_lock);
        pthread_mutex_destroy(&s->seal_lock);
        pthread_mutex_destroy(&s->group_lock);
        pthread_cond_destroy(&s->group_cv);
        pthread_cond_destroy(&s->seal_done);
        pthread_mutex_destroy(&s->segc_lock);
        dm_free(s);
}

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

/* ---- sealing -------------------------------------------------------------------- */

struct seal_ctx {
        const char *name;
        uint32_t id;
        uint64_t first;           /* first row of the segment */
        uint64_t rows;            /* rows in the segment */
        uint32_t n_batches;       /* staged batches it covers, from `first` */
        uint64_t staged_bytes;    /* node_bytes of those batches */
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

/* ---- cache of opened segments ----------------------------------------------------- */

/* A segment opened for random reads, over its own copy of the stored bytes
 * (a mapped value is valid only inside its transaction, and the map may move
 * when it grows). Segments are immutable and keyed by (dataset id, first
 * row); ids are never reused, and a drop marks the dataset's entries dead.
 * Entries are shared: refs counts the readers using one (under segc_lock). */
struct segc_entry {
        uint32_t id;
        uint64_t first;
        uint8_t *bytes; /* owned: the serialized segment */
        size_t len;
        size_t charge;           /* bytes counted in segc_bytes */
        struct gd_segment *seg;  /* opened over bytes */
        struct gd_cursor *spare; /* a cursor (with its decoded block) for the next reader */
        uint32_t refs;
        bool dead; /* dropped or evicted: freed when refs reach 0 */
        uint64_t tick;
        struct segc_entry *next;
};

static void segc_entry_free(struct segc_entry *e)
{
        if (!e)
                return;
        gd_cursor_free(e->spare);
        gd_segment_free(e->seg);
        dm_free(e->bytes);
        dm_free(e);
}

/* Unlink e (under segc_lock); the caller frees it when refs == 0. */
static void segc_unlink(struct store *s, struct segc_entry *e)
{
        struct segc_entry **pp;

        for (pp = &s->segc; *pp; pp = &(*pp)->next)
                if (*pp == e) {
                        *pp = e->next;
                        s->segc_bytes -= e->charge;
                        break;
                }
        e->dead = true;
}

/* Evict unused entries, least recently used first, until the cache fits. */
static void segc_trim(struct store *s)
{
        while (s->segc_bytes > s->opts.segment_cache_bytes) {
                struct segc_entry *e, *lru = NULL;
                for (e = s->segc; e; e = e->next)
                        if (e->refs == 0 && (!lru || e->tick < lru->tick))
                                lru = e;
                if (!lru)
                        break;
                segc_unlink(s, lru);
                segc_entry_free(lru);
        }
}

void store_i_segc_forget(struct store *s, uint32_t id)
{
        struct segc_entry *e, *next;

        pthread_mutex_lock(&s->segc_lock);
        for (e = s->segc; e; e = next) {
                next = e->next;
                if (e->id != id)
                        continue;
                segc_unlink(s, e);
                if (e->refs == 0)
                        segc_entry_free(e);
        }
        pthread_mutex_unlock(&s->segc_lock);
}

void store_i_segc_free_all(struct store *s)
{
        struct segc_entry *e, *next;

        for (e = s->segc; e; e = next) {
                next = e->next;
                segc_entry_free(e);
        }
        s->segc = NULL;
        s->segc_bytes = 0;
}

/* The segment stored at key (id, first) with value v (inside the caller's
 * read transaction), opened, with a cursor: from the cache, or copied and
 * opened now. Release both with segc_put. */
int store_i_segc_get(struct store *s, uint32_t id, uint64_t first, const MDB_val *v,
                     struct segc_entry **ret, struct gd_cursor **ret_cur)
{
        struct segc_entry *e, *mine = NULL;
        struct gd_cursor *cur = NULL;
        size_t head = v->mv_size < 64 ? v->mv_size : 64;
        int r;

        pthread_mutex_lock(&s->segc_lock);
        for (e = s->segc; e; e = e->next)
                if (e->id == id && e->first == first)
                        break;
        /* Same key, other bytes: impossible while ids are not reused, but a
         * stale entry must never be read. */
        if (e && (e->len != v->mv_size || memcmp(e->bytes, v->mv_data, head) != 0)) {
                segc_unlink(s, e);
                if (e->refs == 0)
                        segc_entry_free(e);
                e = NULL;
        }
        if (e) {
                e->refs++;
                e->tick = ++s->segc_tick;
                cur = e->spare;
                e->spare = NULL;
                pthread_mutex_unlock(&s->segc_lock);
                goto have;
        }
        pthread_mutex_unlock(&s->segc_lock);

        mine = dm_calloc(1, sizeof(*mine));
        if (!mine)
                return DREAM_E_NOMEM;
        mine->id = id;
        mine->first = first;
        mine->len = v->mv_size;
        mine->bytes = dm_malloc(v->mv_size ? v->mv_size : 1);
        if (!mine->bytes) {
                segc_entry_free(mine);
                return DREAM_E_NOMEM;
        }
        memcpy(mine->bytes, v->mv_data, v->mv_size);
        r = gd_segment_open(mine->bytes, mine->len, &mine->seg);
        if (r < 0) {
                segc_entry_free(mine);
                return r;
        }
        /* The copy, and about as much again for the opened dictionary. */
        mine->charge = 2 * mine->len + 4096;
        mine->refs = 1;
        pthread_mutex_lock(&s->segc_lock);
        for (e = s->segc; e; e = e->next) /* opened meanwhile by another reader? */
                if (e->id == id && e->first == first)
                        break;
        if (e && e->len == mine->len && memcmp(e->bytes, mine->bytes, head) == 0) {
                e->refs++;
                e->tick = ++s->segc_tick;
                cur = e->spare;
                e->spare = NULL;
                pthread_mutex_unlock(&s->segc_lock);
                segc_entry_free(mine);
                goto have;
        }
        e = mine;
        e->tick = ++s->segc_tick;
        if (e->charge <= s->opts.segment_cache_bytes) {
                e->next = s->segc;
                s->segc = e;
                s->segc_bytes += e->charge;
                segc_trim(s);
        } else {
                e->dead = true; /* larger than the cache: this reader's only */
        }
        pthread_mutex_unlock(&s->segc_lock);
have:
        if (!cur) {
                r = gd_cursor_new(e->seg, &cur);
                if (r < 0) {
                        pthread_mutex_lock(&s->segc_lock);
                        bool last = --e->refs == 0 && e->dead;
                        pthread_mutex_unlock(&s->segc_lock);
                        if (last)
                                segc_entry_free(e);
                        return r;
                }
        }
        *ret = e;
        *ret_cur = cur;
        return 0;
}

const struct gd_segment *store_i_segc_segment(const struct segc_entry *e)
{
        return e->seg;
}

void store_i_segc_put(struct store *s, struct segc_entry *e, struct gd_cursor *cur)
{
        bool last;

        if (!e)
                return;
        pthread_mutex_lock(&s->segc_lock);
        if (!e->dead && !e->spare) {
                e->spare = cur; /* kept with its decoded block */
                cur = NULL;
        }
        last = --e->refs == 0 && e->dead;
        if (!e->dead)
                segc_trim(s);
        pthread_mutex_unlock(&s->segc_lock);
        gd_cursor_free(cur);
        if (last)
                segc_entry_free(e);
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

/* ---- check ------------------------------------------------------------------------ */

/* ---- operations ------------------------------------------------------------------- */

/* Put the finished copy's name in place without replacing anything that
 * appeared there meanwhile (RENAME_NOREPLACE; link + unlink where the
 * filesystem lacks it). */
static int rename_noreplace(int dfd, const char *from, const char *to)
{
        if (renameat2(dfd, from, dfd, to, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        if (linkat(dfd, from, dfd, to, 0) < 0)
                return -errno;
        (void)unlinkat(dfd, from, 0);
        return 0;
}

/* The copy is written as data.mdb.partial, synced, then renamed to
 * data.mdb and the directory synced: a copy interrupted at any point (a
 * kill, a full disk) leaves no data.mdb, so nothing ever opens a partial
 * store. Nothing is written through a symbolic link: the directory is
 * opened with O_NOFOLLOW and every name in it is used relative to that
 * descriptor; a data.mdb.partial left by an interrupted copy is removed
 * only when it is a regular file (removing a name never touches another
 * file's data), and the copy goes to a file this call creates (O_EXCL,
 * checked with fstat); the final name is never replaced. */
int store_backup(struct store *s, const char *path)
{
        static const char part[] = "data.mdb.partial", final[] = "data.mdb";
        struct stat sb;
        int fd, dfd, rc, r = 0;

        if (!path || strlen(path) > DREAM_MAX_PATH)
                return DREAM_E_INVAL;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode))
                        r = -ELOOP;
                return r;
        }
        if (fstatat(dfd, final, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
                r = -EEXIST;
                goto close_dir;
        }
        if (errno != ENOENT) {
                r = -errno;
                goto close_dir;
        }
        if (fstatat(dfd, part, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!S_ISREG(sb.st_mode)) {
                        r = S_ISLNK(sb.st_mode) ? -ELOOP : -EEXIST;
                        goto close_dir;
                }
                if (unlinkat(dfd, part, 0) < 0 && errno != ENOENT) {
                        r = -errno;
                        goto close_dir;
                }
        }
        fd = openat(dfd, part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = errno == EEXIST ? -EEXIST : -errno;
                goto close_dir;
        }
        if (fstat(fd, &sb) < 0)
                r = -errno;
        else if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1 || sb.st_size != 0)
                r = -EEXIST; /* not the new, empty file this call created */
        if (r == 0) {
                pthread_rwlock_rdlock(&s->map_lock);
                rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
                pthread_rwlock_unlock(&s->map_lock);
                r = store_i_lmdb_err(rc);
        }
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0)
                r = rename_noreplace(dfd, part, final);
        if (r < 0) {
                (void)unlinkat(dfd, part, 0);
                goto close_dir;
        }
        /* The copy is complete once renamed: syncing the directory makes
         * the name durable, and a failure there is not a failed copy (a
         * retry would only find data.mdb already there). */
        (void)fsync(dfd);
close_dir:
        close(dfd);
        return r;
}

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
 * that name a row count the dataset had (1..rows), a known method, order
 * and fill, and a budget (a count, or a fraction in (0, 1]). */
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
                uint64_t rows, count, fb;
                double frac;
                if (k.mv_size < KEY_ID || dm_get_be32(kp) != id)
                        break;
                if (k.mv_size != COND_KEY_LEN) {
                        problem_add(ps, name, "condensed", &k, DREAM_E_CORRUPT,
                                    "condensed key has a bad size");
                        continue;
                }
                rows = dm_get_be64(kp + 4);
                count = dm_get_be64(kp + 13);
                fb = dm_get_be64(kp + 21);
                memcpy(&frac, &fb, 8);
                if (rows == 0 || rows > cnt->rows || kp[12] > GD_ORDER_ENTROPY ||
                    kp[29] > GD_FILL_SPLIT || kp[34] != COND_METHOD ||
                    (count ? fb != 0 : !(frac > 0.0 && frac <= 1.0))) {
                        problem_add(ps, name, "condensed", &k, DREAM_E_CORRUPT,
                                    "condensed key is not one the store writes");
                        continue;
                }
                r = store_i_cond_decode(&k, &v, &c);
                if (r == 0 && c->m > rows)
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
 * drop markers ("drop" + id BE32, empty, of no live dataset); any other meta
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
                        /* The last id purged (tick_fn). */
                        if (v.mv_size != 4 || (next_id && dm_get_be32(v.mv_data) >= next_id))
                                what = "last purged id is damaged";
                } else if (k.mv_size == 8 && memcmp(k.mv_data, "drop", 4) == 0) {
                        uint32_t id = dm_get_be32((const uint8_t *)k.mv_data + 4);
                        if (v.mv_size != 0 || id == 0 || (next_id && id >= next_id) ||
                            bsearch(&id, ids, n, sizeof(uint32_t), cmp_u32))
                                what = "drop marker is damaged or names a live dataset";
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
