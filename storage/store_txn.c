/* The store's LMDB errors and transactions: error mapping, read and write
 * transactions under map_lock, map growth on MDB_MAP_FULL, full disks, and
 * the stored-bytes estimate of a key/value pair. Owns map_lock, write_lock,
 * map_size and map_max (store_internal.h). */
#include <errno.h>
#include <sys/statvfs.h>

#include "common/err.h"
#include "storage/store_internal.h"

#define WRITE_RETRIES 64

/* ---- errors and transactions ---------------------------------------------- */

int store_i_lmdb_err(int rc)
{
        switch (rc) {
        case 0:
                return 0;
        case MDB_NOTFOUND:
                return DREAM_E_NOTFOUND;
        case MDB_KEYEXIST:
                return DREAM_E_EXISTS;
        case MDB_MAP_FULL:
                return DREAM_E_FULL;
        case MDB_CORRUPTED:
        case MDB_PAGE_NOTFOUND:
                return DREAM_E_CORRUPT;
        case MDB_VERSION_MISMATCH:
        case MDB_INVALID:
                return DREAM_E_FORMAT;
        case MDB_READERS_FULL:
                return DREAM_E_BUSY;
        case MDB_TXN_FULL:
        case MDB_DBS_FULL:
        case MDB_BAD_VALSIZE:
                return DREAM_E_LIMIT;
        case EIO:
                return DREAM_E_IO;
        case ENOMEM:
                return DREAM_E_NOMEM;
        default:
                return rc > 0 ? -rc : DREAM_E_IO;
        }
}

void store_i_refresh_map_size(struct store *s)
{
        MDB_envinfo info;
        if (mdb_env_info(s->env, &info) == 0)
                s->map_size = info.me_mapsize;
}

/* Another process grew the map: adopt its size (needs no live txn here). */
static int adopt_map_size(struct store *s)
{
        int rc;
        pthread_rwlock_wrlock(&s->map_lock);
        rc = mdb_env_set_mapsize(s->env, 0);
        if (rc == 0)
                store_i_refresh_map_size(s);
        pthread_rwlock_unlock(&s->map_lock);
        return store_i_lmdb_err(rc);
}

/* Begin a transaction with map_lock held shared; released by store_i_txn_end. */
static int txn_begin(struct store *s, unsigned flags, MDB_txn **ret, size_t *ret_map_size)
{
        for (int tries = 0; tries < WRITE_RETRIES; tries++) {
                MDB_txn *txn;
                int rc;
                pthread_rwlock_rdlock(&s->map_lock);
                rc = mdb_txn_begin(s->env, NULL, flags, &txn);
                if (rc == 0) {
                        if (ret_map_size)
                                *ret_map_size = s->map_size;
                        *ret = txn;
                        return 0;
                }
                pthread_rwlock_unlock(&s->map_lock);
                if (rc != MDB_MAP_RESIZED)
                        return store_i_lmdb_err(rc);
                rc = adopt_map_size(s);
                if (rc < 0)
                        return rc;
        }
        return DREAM_E_BUSY;
}

int store_i_rtxn_begin(struct store *s, MDB_txn **ret)
{
        return txn_begin(s, MDB_RDONLY, ret, NULL);
}

void store_i_txn_end(struct store *s, MDB_txn *txn)
{
        mdb_txn_abort(txn);
        pthread_rwlock_unlock(&s->map_lock);
}

/* Double the map (up to map_max) unless someone already grew it past
 * `seen`. DREAM_E_FULL at the maximum. */
static int grow_map(struct store *s, size_t seen)
{
        int r = 0;
        pthread_rwlock_wrlock(&s->map_lock);
        if (s->map_size > seen)
                goto unlock;
        if (s->map_size >= s->map_max) {
                r = DREAM_E_FULL;
                goto unlock;
        }
        size_t want = s->map_size > s->map_max / 2 ? s->map_max : s->map_size * 2;
        want -= want % s->page_size;
        if (want <= s->map_size) {
                r = DREAM_E_FULL;
                goto unlock;
        }
        r = store_i_lmdb_err(mdb_env_set_mapsize(s->env, want));
        if (r == 0)
                store_i_refresh_map_size(s);
unlock:
        pthread_rwlock_unlock(&s->map_lock);
        return r;
}

/* LMDB turns a short write (a filesystem that filled up during the write)
 * into EIO. Such an EIO is a full disk when the data directory's filesystem
 * has less than this left for the store's user. */
#define DISK_FULL_BYTES ((uint64_t)1 << 20)

static bool disk_full(struct store *s)
{
        struct statvfs v;
        const char *dir;

        if (s->opts.fault && s->opts.fault(s->opts.fault_arg, STORE_FAULT_DISK_SPACE) == ENOSPC)
                return true;
        if (mdb_env_get_path(s->env, &dir) != 0 || statvfs(dir, &v) < 0)
                return false;
        return (uint64_t)v.f_bavail * v.f_frsize < DISK_FULL_BYTES;
}

/* A write that failed for lack of disk space (ENOSPC, EDQUOT, or EIO from a
 * short write on a full filesystem) is DREAM_E_FULL: retryable, like a full
 * map; nothing of the transaction was stored. */
static int disk_err(struct store *s, int r)
{
        if (r == DREAM_E_IO && disk_full(s))
                return DREAM_E_FULL;
        if (r == -ENOSPC || r == -EDQUOT)
                return DREAM_E_FULL;
        return r;
}

/* Run fn in a write transaction and commit it, growing the map and retrying
 * the whole transaction on MDB_MAP_FULL. fn returns 0 or an error (then the
 * transaction is aborted); it must be safe to run again. Returns only after
 * the commit reached the disk (LMDB synchronous commit). */
int store_i_write_txn(struct store *s, store_i_write_fn fn, void *ctx)
{
        int r = 0;
        pthread_mutex_lock(&s->write_lock);
        for (int tries = 0; tries < WRITE_RETRIES; tries++) {
                MDB_txn *txn;
                size_t seen;
                int rc;

                r = txn_begin(s, 0, &txn, &seen);
                if (r < 0)
                        break;
                r = fn(s, txn, ctx);
                if (r < 0) {
                        store_i_txn_end(s, txn);
                } else {
                        rc = s->opts.fault ? s->opts.fault(s->opts.fault_arg, STORE_FAULT_COMMIT)
                                           : 0;
                        if (rc) {
                                mdb_txn_abort(txn);
                        } else {
                                rc = mdb_txn_commit(txn);
                        }
                        pthread_rwlock_unlock(&s->map_lock);
                        r = store_i_lmdb_err(rc);
                }
                /* Here DREAM_E_FULL is a full map (a full disk is -ENOSPC or
                 * DREAM_E_IO until disk_err below). */
                if (r != DREAM_E_FULL)
                        break;
                r = grow_map(s, seen);
                if (r < 0)
                        break;
                r = DREAM_E_FULL;
        }
        pthread_mutex_unlock(&s->write_lock);
        return disk_err(s, r);
}

/* Bytes the pair occupies in LMDB: the leaf node (header, key, value or the
 * overflow page number, slot) plus whole overflow pages for a big value. */
uint64_t store_i_node_bytes(const struct store *s, size_t klen, size_t vlen)
{
        size_t leaf = LMDB_NODESIZE + klen + vlen;
        uint64_t over = 0;
        if (leaf > s->node_max) {
                leaf = LMDB_NODESIZE + klen + sizeof(uint64_t);
                over = ((LMDB_PAGEHDRSZ - 1 + vlen) / s->page_size + 1) * s->page_size;
        }
        return over + ((leaf + 1) & ~(size_t)1) + 2;
}

int store_set_map_max(struct store *s, size_t map_max)
{
        if (!s || map_max == 0)
                return DREAM_E_INVAL;
        pthread_rwlock_wrlock(&s->map_lock);
        s->map_max = map_max;
        pthread_rwlock_unlock(&s->map_lock);
        return 0;
}

size_t store_map_size(struct store *s)
{
        size_t n;
        pthread_rwlock_rdlock(&s->map_lock);
        n = s->map_size;
        pthread_rwlock_unlock(&s->map_lock);
        return n;
}
