/* Opening and closing a store: options, the named databases, resuming
 * interrupted drops, and the check of data.mdb's meta pages before LMDB maps
 * the file. Sets the fields of struct store that are read-only afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

#define DEFAULT_MAP_INITIAL   ((size_t)64 << 20)
#define DEFAULT_MAP_MAX       ((size_t)1 << 40)
#define DEFAULT_SEAL_ROWS     65536u
#define DEFAULT_MAX_READERS   256u
#define DEFAULT_SEGMENT_CACHE ((size_t)64 << 20)

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
