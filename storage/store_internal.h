/* The store's insides, shared by the storage/store_*.c files behind
 * store.h. Layout of keys and values: STORE.md. Not installed, not for use
 * outside storage/.
 *
 * Names: functions shared between these files are store_i_*; functions used
 * by one file are static there and unprefixed.
 *
 * Files: store_txn.c (errors, transactions, map growth, store_i_write_txn),
 * store_records.c (checksums, schema, counters, batch id records, dataset
 * lookup), store_staged.c (staged batch records), store_suffstats.c
 * (sufficient statistics), store_condensed.c (condensed samples and their
 * cache), store_open.c (open, close, file check), store_datasets.c (create,
 * list, describe, drop, purge), store_append.c (append, group commit),
 * store_seal.c (sealing), store_read.c (reads and scans), store_segcache.c
 * (cache of opened segments), store_jobs.c, store_backup.c, store_check.c.
 *
 * Locking: every LMDB transaction of this process runs under map_lock held
 * shared; growing the map takes it exclusively (mdb_env_set_mapsize needs no
 * live transaction in the process). Writers are serialised by write_lock,
 * always taken before map_lock. No transaction is held across a callback.
 * seal_lock, group_lock and segc_lock each guard their own fields (below)
 * and are never held while a transaction begins or commits. */
#ifndef DREAM_STORAGE_STORE_INTERNAL_H
#define DREAM_STORAGE_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/bytes.h"
#include "common/limits.h"
#include "storage/store.h"

#define FORMAT_VERSION 1u

/* LMDB 0.9 page layout constants, for the stored-bytes estimate. */
#define LMDB_PAGEHDRSZ 16u
#define LMDB_NODESIZE  8u

#define SEALERS_MAX 64 /* datasets sealed at the same time (more wait) */

struct pending;    /* an append waiting for a group commit (store_append.c) */
struct segc_entry; /* an opened segment in the cache (store_segcache.c) */

/* One per store_open. The environment, the database handles, page_size,
 * node_max and opts are set by store_open (store_open.c) before the store is
 * shared and only read afterwards. Each other group of fields belongs to one
 * file and is guarded by the lock named with it. */
struct store {
        MDB_env *env;
        MDB_dbi db_meta, db_datasets, db_counters, db_staged, db_segments, db_condensed,
            db_suffstats, db_batches, db_jobs;
        /* store_txn.c: held shared by every transaction, exclusively to
         * resize the map (writer-preferring). */
        pthread_rwlock_t map_lock;
        /* store_txn.c: serialises write transactions; taken before map_lock. */
        pthread_mutex_t write_lock;
        /* store_seal.c: datasets being sealed (by name), so that concurrent
         * store_seal calls on one dataset do not encode the same rows twice.
         * seal_lock guards sealing[]; seal_done is signalled on release. */
        pthread_mutex_t seal_lock;
        pthread_cond_t seal_done;
        char sealing[SEALERS_MAX][DREAM_MAX_NAME + 1];
        /* store_append.c: group commit of concurrent appends
         * (append_grouped). group_lock guards queue, queue_tail and
         * group_leader; group_cv wakes the waiting appenders. */
        pthread_mutex_t group_lock;
        pthread_cond_t group_cv;
        struct pending *queue;
        struct pending **queue_tail;
        bool group_leader;
        /* store_segcache.c: opened segments kept for random reads
         * (store_get_rows). segc_lock guards segc, segc_bytes, segc_tick and
         * every entry's refs, spare, dead and tick. */
        pthread_mutex_t segc_lock;
        struct segc_entry *segc;
        size_t segc_bytes; /* charged for every entry, lent ones included */
        uint64_t segc_tick;
        size_t map_size; /* store_txn.c, under map_lock */
        size_t map_max;  /* store_txn.c, under map_lock */
        size_t page_size;
        size_t node_max; /* largest leaf node before overflow pages (LMDB's me_nodemax) */
        struct store_opts opts;
};

/* ---- keys (all integers in keys big-endian) ---- */

/* A batch id record: first row u64, rows u32, then (since keys are covered)
 * the keyed XXH3 of those 12 bytes; records of 12 bytes have none. */
#define BATCH_REC_OLD 12u
#define BATCH_REC     20u

/* Keys: dataset id BE32, then an optional BE64 (row, batch id...). */
#define KEY_ID     4u
#define KEY_ID_U64 12u

/* The key in buf (KEY_ID or KEY_ID_U64 bytes, owned by the caller). */
static inline MDB_val store_i_key_id(uint8_t *buf, uint32_t id)
{
        dm_put_be32(buf, id);
        return (MDB_val){.mv_size = KEY_ID, .mv_data = buf};
}

static inline MDB_val store_i_key_id_u64(uint8_t *buf, uint32_t id, uint64_t x)
{
        dm_put_be32(buf, id);
        dm_put_be64(buf + 4, x);
        return (MDB_val){.mv_size = KEY_ID_U64, .mv_data = buf};
}

/* ---- errors and transactions (store_txn.c) ---- */

/* An LMDB return code as 0 or a negative DREAM_E_* / errno. */
int store_i_lmdb_err(int rc);
/* map_size from the environment; the caller holds map_lock exclusively or
 * has not shared the store yet. */
void store_i_refresh_map_size(struct store *s);
/* A read transaction with map_lock held shared; end it with store_i_txn_end. */
int store_i_rtxn_begin(struct store *s, MDB_txn **ret);
void store_i_txn_end(struct store *s, MDB_txn *txn);

typedef int (*store_i_write_fn)(struct store *s, MDB_txn *txn, void *ctx);
/* Run fn in a write transaction and commit it, growing the map and retrying
 * the whole transaction on MDB_MAP_FULL; fn must be safe to run again.
 * Returns after the commit reached the disk. */
int store_i_write_txn(struct store *s, store_i_write_fn fn, void *ctx);
/* Bytes a key/value pair occupies in LMDB (STORE.md "Stored bytes"). */
uint64_t store_i_node_bytes(const struct store *s, size_t klen, size_t vlen);

/* ---- records (store_records.c) ---- */

/* XXH3-64 of the bytes; keyed: seeded with the XXH3-64 of the key. */
uint64_t store_i_checksum(const void *p, size_t n);
uint64_t store_i_keyed_checksum(const MDB_val *k, const void *p, size_t n);
/* A stored checksum: keyed, or (records written before keys were covered)
 * of the value alone. */
bool store_i_checksum_ok(const MDB_val *k, const void *p, size_t n, uint64_t stored);

/* Frees the columns of sc (not sc itself) and zeroes it. */
void store_i_schema_release(struct store_schema *sc);
/* 0, or DREAM_E_SCHEMA for a schema the store does not accept. */
int store_i_schema_check(const struct store_schema *sc);
/* Appends the schema record of dataset id, keyed by k, to out. */
int store_i_schema_encode(const MDB_val *k, uint32_t id, const struct store_schema *sc,
                          struct dm_buf *out);

/* The fixed part of a schema record. */
struct schema_head {
        uint32_t id;
        uint32_t n_cols;
        int32_t target;
        enum gd_task task;
        uint32_t n_classes;
};

/* Parse a schema record; names only when sc != NULL (owned by sc: release
 * with store_i_schema_release). Checks the checksum. */
int store_i_schema_decode(const MDB_val *k, const MDB_val *v, struct schema_head *ret_head,
                          struct store_schema *sc);

/* The counters record of a dataset (STORE.md). */
struct counters {
        uint64_t rows;
        uint64_t sealed_rows;
        uint64_t staged_rows;
        uint64_t staged_batches;
        uint64_t segments;
        uint64_t raw_bytes;
        uint64_t bases;
        uint64_t data_bytes; /* store_i_node_bytes of staged batches and segments */
        uint64_t segment_bytes;
        uint64_t batch_ids;
};

#define N_COUNTERS   10u
#define COUNTERS_LEN (8u + N_COUNTERS * 8u + 8u)

/* Parse a batch id record (key and value): its first row and row count. */
int store_i_batch_decode(const MDB_val *k, const MDB_val *v, uint64_t *ret_first,
                         uint32_t *ret_rows);

/* The key of dataset `name` in `datasets` (borrows name). */
MDB_val store_i_name_key(const char *name);
/* Schema head (and names when sc) and counters (when ret_counters) of a
 * dataset, inside txn. */
int store_i_ds_load(struct store *s, MDB_txn *txn, const char *name, struct schema_head *ret_head,
                    struct store_schema *sc, struct counters *ret_counters);
/* store_i_ds_load for a read pinned to dataset `id` (0: whichever the name
 * names): DREAM_E_NOTFOUND when the name names another dataset now. */
int store_i_ds_load_pinned(struct store *s, MDB_txn *txn, const char *name, uint32_t id,
                           struct schema_head *ret_head, struct store_schema *sc,
                           struct counters *ret_counters);
int store_i_counters_put(struct store *s, MDB_txn *txn, uint32_t id, const struct counters *c);

/* ---- staged batches (store_staged.c) ---- */

/* A parsed staged value; the pointers borrow the value (valid while its
 * transaction lives). */
struct staged {
        uint32_t n_rows;
        uint32_t n_cols;
        const uint8_t *desc; /* n_cols descriptors */
        const uint8_t *data; /* packed columns */
};

/* Packing parameters of a batch, computed before the write transaction. */
struct staged_plan {
        size_t len;
        uint8_t *width; /* n_cols, owned */
        int64_t *min;   /* n_cols, owned */
};

void store_i_staged_plan_release(struct staged_plan *p);
int store_i_staged_plan_make(const struct gd_table *t, struct staged_plan *ret);
/* Writes the record of t into out (p->len bytes). */
void store_i_staged_encode(const struct gd_table *t, const struct staged_plan *p, uint8_t *out);
/* Parse a staged value; verify = also check the checksum (costs a pass). */
int store_i_staged_decode(const MDB_val *v, bool verify, struct staged *ret);
enum gd_kind store_i_staged_kind(const struct staged *st, uint32_t j);
uint8_t store_i_staged_scale(const struct staged *st, uint32_t j);
/* Row `row` of every column into ret_v. */
void store_i_staged_row(const struct staged *st, uint64_t row, int64_t *ret_v);
/* Copy rows [first, first + n) of a staged batch into t's rows [at, at + n),
 * setting t's kinds and scales. */
void store_i_staged_copy(const struct staged *st, uint64_t first, uint64_t n, struct gd_table *t,
                         uint64_t at);

/* ---- sufficient statistics (store_suffstats.c) ---- */

/* Zeroed statistics for a dataset of n_cols columns and target. */
int store_i_suff_new(uint32_t n_cols, int32_t target, struct store_suffstats **ret);
/* Add the rows of t (the dataset's columns) to st. */
int store_i_suff_add(struct store_suffstats *st, const struct gd_table *t);
/* Totals += partial (same shape), upper triangle of xtx only. */
void store_i_suff_merge(struct store_suffstats *tot, const struct store_suffstats *part);
int store_i_suff_encode(const struct store_suffstats *st, struct dm_buf *out);
/* Parse a suffstats record for a dataset of n_cols columns and target
 * (upper triangle of xtx only). */
int store_i_suff_decode(const MDB_val *v, uint32_t n_cols, int32_t target,
                        struct store_suffstats **ret);

/* ---- condensed samples (store_condensed.c) ---- */

/* id, rows, order, count, fraction, fill, refine, method, excluded rows and
 * their hash: an entry is only ever found by the options it was built with.
 * Method 3: stage 1 with the exclusion, values with the groups' variances.
 * Keys of method 2 (no exclusion, values without variances) were
 * COND_KEY_LEN_2 bytes long, those of method 1 29. */
#define COND_KEY_LEN   51u
#define COND_KEY_LEN_2 35u
#define COND_METHOD    3u

int store_i_cond_decode(const MDB_val *k, const MDB_val *v, struct gd_condensed **ret);

/* ---- datasets (store_datasets.c) ---- */

/* Delete every key of dataset id, then its drop marker (resumable). */
int store_i_purge_id(struct store *s, uint32_t id);

/* ---- sealing (store_seal.c) ---- */

/* Frees parts[0..n) and the array (NULL accepted). */
void store_i_free_parts(struct gd_table **parts, uint32_t n);

/* ---- reads (store_read.c) ---- */

/* Rows [0, rows) of the dataset in one harmonised table (owned by the caller). */
int store_i_read_rows(struct store *s, const char *dataset, uint32_t id, uint64_t rows,
                      struct gd_table **ret);

/* ---- cache of opened segments (store_segcache.c) ---- */

/* The segment stored at key (id, first) with value v (inside the caller's
 * read transaction), opened, with a cursor: from the cache, or copied and
 * opened now. Release both with store_i_segc_put. */
int store_i_segc_get(struct store *s, uint32_t id, uint64_t first, const MDB_val *v,
                     struct segc_entry **ret, struct gd_cursor **ret_cur);
/* The opened segment of an entry got from store_i_segc_get (valid until put). */
const struct gd_segment *store_i_segc_segment(const struct segc_entry *e);
void store_i_segc_put(struct store *s, struct segc_entry *e, struct gd_cursor *cur);
/* Drop the entries of dataset id (those in use go with their last reader). */
void store_i_segc_forget(struct store *s, uint32_t id);
/* Every entry, at close (no reader left). */
void store_i_segc_free_all(struct store *s);

/* ---- job records (store_jobs.c) ---- */

/* The key of job id in buf (8 bytes, owned by the caller). */
MDB_val store_i_job_key(uint8_t *buf, uint64_t id);

#endif
