/* The LMDB store: datasets, durable ingest, sealed EntroGeDe segments.
 *
 * One LMDB environment (a directory) holds every dataset. Rows are appended to
 * a dataset's staging area in one synchronous write transaction each; a seal
 * compresses staged rows with the codec (storage/gd) into an immutable segment
 * and swaps it in, in one transaction. Reads see segments plus staged rows.
 * Layout of the keys and values: storage/STORE.md.
 *
 * Thread safety: every function may be called from any thread on one
 * struct store. Writes are serialised (one writer at a time); reads run in
 * parallel and never hold a read transaction across a callback. No function
 * logs. Every function returns 0 or a negative error (common/err.h): notably
 * DREAM_E_NOTFOUND (no such dataset), DREAM_E_EXISTS, DREAM_E_SCHEMA,
 * DREAM_E_RANGE, DREAM_E_FULL (the map reached its configured maximum, or
 * the disk is full: ENOSPC, or a short write on a full filesystem; nothing of
 * the write was stored, reads keep working, a retry may succeed), DREAM_E_IO,
 * DREAM_E_CORRUPT / DREAM_E_CHECKSUM (bad stored data). Outputs are ret_* parameters, written only
 * on success.
 */
#ifndef DREAM_STORE_H
#define DREAM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "storage/gd/gd.h"

struct store;

/* Which commit a fault hook is asked about. */
enum store_fault_site {
        STORE_FAULT_COMMIT = 1, /* just before mdb_txn_commit of any write */
        /* A write failed with EIO: is the disk full? ENOSPC says yes (else
         * the data directory's filesystem is asked, statvfs). */
        STORE_FAULT_DISK_SPACE = 2,
};

struct store_opts {
        size_t map_initial;   /* bytes of the first map (0: 64 MiB) */
        size_t map_max;       /* bytes the map may grow to (0: 1 TiB) */
        uint64_t seal_rows;   /* staged rows that make a dataset ready to seal (0: 65536) */
        unsigned max_readers; /* concurrent read transactions (0: 256) */
        /* Bytes of opened segments kept for random reads (store_get_rows):
         * each counts twice its stored size (0: 64 MiB). */
        size_t segment_cache_bytes;
        /* Threads decoding one segment in store_read_all, store_read_features
         * and condensing (0: the online CPUs, at most 8). */
        unsigned read_threads;
        /* Test hook (house rule 12), NULL in production. Called before every
         * commit (site STORE_FAULT_COMMIT); a nonzero return makes that
         * commit fail as if LMDB had returned it: MDB_MAP_FULL, ENOSPC or EIO
         * (positive errno). The transaction is aborted; nothing of it is
         * stored. Also called at STORE_FAULT_DISK_SPACE (above). */
        int (*fault)(void *arg, enum store_fault_site site);
        void *fault_arg;
};

void store_opts_default(struct store_opts *o);

/* What store_file_check found in a store directory's data.mdb. */
struct store_file_info {
        uint64_t size;      /* bytes of data.mdb */
        uint64_t need;      /* bytes its newest meta page covers ((last page + 1) x page
                               size); 0 when no meta page could be read */
        uint32_t page_size; /* from meta page 0; 0 when unreadable */
        int bad_meta;       /* DREAM_E_FORMAT: the meta page (0 or 1) that is not
                               LMDB 0.9's; else -1 */
};

/* Examine `dir`/data.mdb without mapping it: its two LMDB meta pages (read
 * with pread) and its size. 0 when the file is whole; DREAM_E_NOTFOUND when
 * there is no data.mdb; DREAM_E_EMPTY when it has 0 bytes; DREAM_E_TRUNCATED
 * when it is shorter than its newest meta page says (mapping it would fault
 * on the missing pages); DREAM_E_FORMAT when a meta page is not LMDB 0.9's;
 * a negative errno when it cannot be read. *ret_info is written for 0,
 * DREAM_E_EMPTY, DREAM_E_TRUNCATED and DREAM_E_FORMAT (what was seen). */
int store_file_check(const char *dir, struct store_file_info *ret_info);

/* Open (creating if needed) the store in directory `dir` (created 0700 when
 * missing). An existing data.mdb must pass store_file_check: an empty or
 * truncated one is never mapped nor replaced by a new store (its error is
 * returned). Clears reader slots left by dead processes and finishes drops
 * interrupted by a crash. `opts` may be NULL (defaults); it is copied. */
int store_open(const char *dir, const struct store_opts *opts, struct store **ret);
/* No call may be running on the store. Accepts NULL. */
void store_close(struct store *s);

/* Raise (or lower) the map maximum; appends that failed with DREAM_E_FULL may
 * succeed afterwards. The map never shrinks. */
int store_set_map_max(struct store *s, size_t map_max);
/* Current map size in bytes. */
size_t store_map_size(struct store *s);

/* ---- datasets ------------------------------------------------------------ */

struct store_column {
        char *name;        /* 1..DREAM_MAX_NAME bytes, no control characters */
        enum gd_kind kind; /* hint only: every segment has its own parameters */
        uint8_t scale;     /* hint only */
};

struct store_schema {
        uint32_t n_cols;
        struct store_column *cols; /* n_cols entries */
        int32_t target;            /* column index of the target, or -1 */
        enum gd_task task;         /* GD_TASK_NONE when target < 0 */
        uint32_t n_classes;        /* classification: number of classes, else 0 */
};

/* Dataset names: 1..DREAM_MAX_NAME bytes of [A-Za-z0-9_.-], not starting with
 * '.' or '-'. 0 or DREAM_E_INVAL. */
int store_name_check(const char *name);

/* Create a dataset. The schema is borrowed (copied). Column names must be
 * unique. DREAM_E_EXISTS if the name is taken, DREAM_E_INVAL for a bad name,
 * DREAM_E_SCHEMA for a bad schema. */
int store_dataset_create(struct store *s, const char *name, const struct store_schema *schema);

/* Names of every dataset, sorted. *ret_names is an owned array of owned
 * strings: free with store_names_free(). */
int store_dataset_list(struct store *s, char ***ret_names, uint32_t *ret_count);
void store_names_free(char **names, uint32_t count);

struct store_info {
        char *name; /* owned */
        uint32_t id;
        struct store_schema schema; /* owned: free with store_info_free */
        uint64_t rows;              /* rows appended (global row numbers 0..rows-1) */
        uint64_t sealed_rows;       /* rows in segments (always a prefix) */
        uint64_t staged_rows;       /* rows still staged */
        uint64_t staged_batches;
        uint64_t segments;
        uint64_t bases;         /* distinct bases summed over the segments */
        uint64_t stored_bytes;  /* LMDB bytes the dataset uses (STORE.md) */
        uint64_t segment_bytes; /* serialized segments, summed */
        uint64_t raw_bytes;     /* CSV-equivalent bytes of every row appended */
        double ratio;           /* raw_bytes / stored_bytes (0 when empty) */
        uint64_t created_unix;  /* creation time; 0 for datasets made before it was kept */
};

int store_dataset_describe(struct store *s, const char *name, struct store_info **ret);
void store_info_free(struct store_info *info);

/* Delete the dataset and all its keys. The name disappears at once (one
 * commit: after it, the call succeeds); the keys are then deleted in bounded
 * transactions, finished by store_open after a crash or a failed write.
 * Freed pages are reused by LMDB. */
int store_dataset_drop(struct store *s, const char *name);

/* ---- ingest -------------------------------------------------------------- */

/* Append the rows of `batch` (borrowed) to the dataset, durably: returns after
 * the synchronous commit. The batch must have the schema's columns, with the
 * same names, in order; its kinds and scales may differ from earlier batches.
 * The batch's target and task are ignored (the schema's hold). Rows get the
 * next consecutive row numbers: *ret_first_row is the first. batch_id != 0
 * makes the append idempotent: a batch id seen before stores nothing and
 * returns the first row it got then (DREAM_E_EXISTS if its row count differs).
 * Concurrent appends (to any datasets) are committed together, one nested
 * transaction each, sharing the commit's fsyncs (group commit); each call
 * still returns only after the commit holding its rows, with its own result.
 * *ret_needs_seal (may be NULL) is set when staged rows reached seal_rows:
 * the caller should run store_seal (on a worker). Limits: at most
 * DREAM_MAX_SEGMENT_ROWS rows and DREAM_MAX_STAGED_BATCH_BYTES of values. */
int store_append(struct store *s, const char *dataset, const struct gd_table *batch,
                 uint64_t batch_id, uint64_t *ret_first_row, bool *ret_needs_seal);

/* Compress staged rows into segments of about seal_rows rows each: while
 * staged rows >= seal_rows, or while any are staged when `force` is set (a
 * flush). Encoding runs outside any transaction; each segment is swapped in
 * with one short write transaction, so appends wait for at most one commit.
 * Safe to run concurrently with appends, reads and other seals: while one
 * call seals a dataset, another non-forced call on it returns at once (the
 * running one keeps going while enough rows are staged) and a forced one
 * waits for it, then seals the rest. *ret_sealed (may be NULL) receives the
 * number of rows sealed by this call. */
int store_seal(struct store *s, const char *dataset, bool force, uint64_t *ret_sealed);

/* ---- reads --------------------------------------------------------------- */

/* Every read names its dataset and may pin it: `id` is the dataset's id
 * (store_dataset_id, store_info.id) taken when a long read (a stream, a job)
 * began, and the read answers DREAM_E_NOTFOUND once that dataset is dropped,
 * even when its name was given to a new dataset since (ids are never
 * reused). The check is made in the read transaction that reads the rows.
 * id 0 reads whichever dataset the name names at the time. */

/* The id of the dataset `name` names now. DREAM_E_NOTFOUND. */
int store_dataset_id(struct store *s, const char *name, uint32_t *ret_id);

/* How a returned int64 value is to be read (gd_value_f64, gd_format_value). */
struct store_cellfmt {
        enum gd_kind kind;
        uint8_t scale;
};

/* Row `row` into ret_values (n_cols values) and, when ret_fmt is not NULL,
 * the kind and scale of each (n_cols entries). n_cols is the caller's
 * column count (what its arrays are sized for): DREAM_E_SCHEMA when the
 * dataset has another (it was dropped and made again). DREAM_E_RANGE past
 * the end. */
int store_get_row(struct store *s, const char *dataset, uint32_t id, uint32_t n_cols, uint64_t row,
                  int64_t *ret_values, struct store_cellfmt *ret_fmt);

/* Rows rows[0..n) (any order, repeats allowed) in one read transaction, n_cols
 * as for store_get_row: row
 * rows[i] into ret_values[i * n_cols ...] and, when ret_fmt is not NULL, the
 * kinds and scales of its cells into ret_fmt[i * n_cols ...]. Rows are read
 * in row order, each segment opened once: sealed ones come from a cache of
 * opened segments shared by every reader of the store (segment_cache_bytes;
 * a drop empties it of the dataset's entries). DREAM_E_RANGE when a row is
 * past the end; on an error the outputs hold an unspecified part. */
int store_get_rows(struct store *s, const char *dataset, uint32_t id, uint32_t n_cols,
                   const uint64_t *rows, size_t n, int64_t *ret_values,
                   struct store_cellfmt *ret_fmt);

/* Called for each chunk of a scan, in row order: `chunk` holds rows
 * [first_row, first_row + chunk->n_rows) of the dataset, with the schema's
 * names, target and task. Kinds and scales may differ between chunks. The
 * chunk is borrowed until the callback returns; no transaction is open. A
 * nonzero return stops the scan and is returned by store_scan. */
typedef int (*store_scan_cb)(const struct gd_table *chunk, uint64_t first_row, void *arg);

/* Rows [first, first + count) in order (count is clipped to the rows present
 * when the scan starts; UINT64_MAX = to the end), in chunks of at most
 * chunk_rows rows (0: 65536). Every row is delivered exactly once, even while
 * seals commit. DREAM_E_RANGE when first > rows. Each chunk is read in its
 * own transaction, pinned to the dataset the scan began on (with id 0 too):
 * a drop between chunks ends the scan with DREAM_E_NOTFOUND. */
int store_scan(struct store *s, const char *dataset, uint32_t id, uint64_t first, uint64_t count,
               uint32_t chunk_rows, store_scan_cb cb, void *arg);

/* Every row of the dataset in one table (kinds harmonised, names, target and
 * task of the schema). Memory: rows x cols x 8 bytes. Rows are decoded
 * straight into the table, column by column, each segment by read_threads
 * threads (store_opts). DREAM_E_EMPTY when the dataset has no rows. */
int store_read_all(struct store *s, const char *dataset, uint32_t id, struct gd_table **ret);

/* Every row of the dataset as training rows, decoded straight from the
 * segments (no table in between): *ret_x (owned, dm_free) holds rows of d
 * floats, row i at ret_x[i * d], the columns but `skip` in order (d =
 * n_cols, less one when skip >= 0); when ret_y is not NULL, *ret_y (owned)
 * holds column `skip` as doubles. Each value is (float)gd_value_f64 (or the
 * double) of the stored cell: what converting store_read_all's table gives.
 * *ret_n rows. DREAM_E_INVAL for ret_y without skip, DREAM_E_SCHEMA for a
 * skip past the columns, DREAM_E_EMPTY with no rows. Memory: rows x d x 4
 * (+ rows x 8) bytes. */
int store_read_features(struct store *s, const char *dataset, uint32_t id, int32_t skip,
                        float **ret_x, double **ret_y, uint64_t *ret_n);

/* ---- learning ------------------------------------------------------------ */

/* The reads below take `id` as the reads above do (0: not pinned). */

/* Condensed samples (stage 1) over all rows of the dataset, built once per
 * (budget, order, row count) and cached in the store; an append makes the
 * cached entry stale (deleted when a newer one is written). *ret is owned by
 * the caller: gd_condensed_free(). *ret_cached (may be NULL) tells whether it
 * came from the cache. DREAM_E_EMPTY when the dataset has no rows. */
int store_condensed(struct store *s, const char *dataset, uint32_t id,
                    const struct gd_condense_opts *opts, struct gd_condensed **ret,
                    bool *ret_cached);

/* Exact sufficient statistics of all rows, updated with every append in the
 * same transaction. Features are all columns but the target, in order, as
 * doubles (gd_value_f64). Sums are accumulated in long double. A NaN or
 * infinity in a column makes the sums that include it non-finite. */
struct store_suffstats {
        uint64_t n; /* rows */
        uint32_t n_cols;
        int32_t target;         /* -1 without target */
        uint32_t d;             /* features */
        uint32_t *feature_cols; /* owned, d: source column of each feature */
        long double *col_sum;   /* owned, n_cols: sum of every column */
        long double *col_sum2;  /* owned, n_cols: sum of squares of every column */
        long double *xtx;       /* owned, d * d row-major symmetric, or NULL when
                                   d > DREAM_MAX_SUFFSTATS_FEATURES */
        long double *xty;       /* owned, d, or NULL (no target, or d too large) */
        long double sum_y;      /* = col_sum[target] (0 without target) */
        long double sum_y2;
};

int store_suffstats(struct store *s, const char *dataset, uint32_t id,
                    struct store_suffstats **ret);
void store_suffstats_free(struct store_suffstats *st);

/* ---- job records ---------------------------------------------------------- */

/* Opaque records of the daemon's training jobs (state, result, model),
 * keyed by job id > 0, each with a checksum; written durably (synchronous
 * commit). At most DREAM_MAX_JOB_RECORD bytes. */
int store_job_put(struct store *s, uint64_t id, const void *rec, size_t len);
int store_job_delete(struct store *s, uint64_t id); /* DREAM_E_NOTFOUND */
/* A copy of the record (dm_malloc'd; the caller dm_free's it).
 * DREAM_E_NOTFOUND, DREAM_E_CHECKSUM, DREAM_E_TRUNCATED. */
int store_job_get(struct store *s, uint64_t id, void **ret_rec, size_t *ret_len);
/* Called for every record in ascending id order inside one read
 * transaction; rec is borrowed for the call. A damaged record comes with
 * rec NULL and err < 0 (else err 0): DREAM_E_CHECKSUM, DREAM_E_TRUNCATED,
 * or DREAM_E_CORRUPT with id 0 for a key that is not a job id. A non-zero return stops the walk and
 * is returned. */
typedef int (*store_job_cb)(void *arg, uint64_t id, const void *rec, size_t len, int err);
int store_job_list(struct store *s, store_job_cb cb, void *arg);

/* ---- operations ---------------------------------------------------------- */

/* Hot backup with compaction (mdb_env_copy2, MDB_CP_COMPACT) into directory
 * `path`, created 0700 if missing (it must be empty). Writers that need the map
 * to grow wait until the copy ends. */
int store_backup(struct store *s, const char *path);

/* One problem found by store_check. All pointers are borrowed for the call. */
struct store_problem {
        const char *dataset; /* name, or "" when the key belongs to no dataset */
        const char *db;      /* LMDB database name ("segments", "staged"...) */
        const uint8_t *key;
        size_t key_len;
        int err;          /* DREAM_E_CHECKSUM, DREAM_E_CORRUPT, ... */
        const char *what; /* static description */
};

typedef void (*store_problem_cb)(const struct store_problem *p, void *arg);

/* Walk every dataset: open and verify every segment (every checksum, rows
 * decodable), every staged batch (checksum, sizes), row continuity and
 * counters; then report keys that belong to no dataset (dataset ""). Each problem is reported to cb
 * (may be NULL) after the read transaction closed; *ret_problems counts them. Returns 0 when the
 * walk completed, whatever it found. */
int store_check(struct store *s, store_problem_cb cb, void *arg, uint64_t *ret_problems);

/* ---- helpers shared within storage/ (and used by tests) ----------------- */

/* Convert one stored value to another kind/scale exactly, or DREAM_E_INEXACT
 * (int64 overflow of a rescale; int to double beyond 2^53; a double that is
 * not a whole multiple of 10^-scale...). Widening a decimal's scale is exact
 * while it fits; GD_F64 targets accept every finite decimal value rounded to
 * the nearest double (exact when it has at most 15 significant digits). */
int store_value_convert(enum gd_kind from_kind, uint8_t from_scale, int64_t v, enum gd_kind to_kind,
                        uint8_t to_scale, int64_t *ret);

/* Concatenate the rows of n_parts tables (borrowed; same column count) into a
 * new table, harmonising each column: the largest scale of its parts, as
 * GD_INT (scale 0) or GD_DEC; GD_F64 when a part is GD_F64 or a value does not
 * fit int64 at that scale. Names, target and task are those of parts[0]. */
int store_table_concat(const struct gd_table *const *parts, uint32_t n_parts,
                       struct gd_table **ret);

/* Bytes the cell prints as (gd_format_value), fast for GD_INT and GD_DEC. */
size_t store_cell_text_len(enum gd_kind kind, uint8_t scale, int64_t v);

#endif
