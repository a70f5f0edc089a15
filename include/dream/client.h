/* libdream: a blocking C client for dreamd.
 *
 * One struct dream_client is one connection (TCP or a Unix socket). Calls
 * block, each wait bounded by the connection's timeouts (poll()). A client
 * is not thread-safe: use one per thread, or lock around it.
 *
 * Errors: every function that can fail returns int: 0 on success, else a
 * negative value: a negative errno for the transport (-ECONNREFUSED: nothing
 * listens at the address; -ENETUNREACH / -EHOSTUNREACH: unreachable;
 * -ENOENT: no such Unix socket; -ECONNRESET: the server closed the
 * connection), DREAM_E_NOTFOUND from dream_connect for a host name that does
 * not resolve (an unknown host), or a project code DREAM_E_* below: DREAM_E_TIMEOUT (a
 * timeout expired), DREAM_E_AUTH (authentication refused or required),
 * DREAM_E_PROTO (the server broke the protocol), or the status a server
 * answered with, mapped to its code (DREAM_E_NOTFOUND: unknown dataset,
 * DREAM_E_SCHEMA: the rows do not match the dataset's schema...).
 * dream_last_error() then holds a one-line explanation: the server's message
 * when the server refused the request. dream_strerror() names any code.
 * After a transport or protocol error the connection is unusable: every
 * later call fails with the same error; dream_close() it.
 *
 * Ownership: strings and arrays passed in are borrowed for the call only.
 * Data handed to callbacks is borrowed for the callback's duration. Structs
 * returned through ret_* pointers are owned by the caller and freed with the
 * matching _free function; every _free accepts NULL. ret_* outputs are
 * written only on success.
 *
 * ABI (libdream.so.1, symbol version nodes DREAM_1.x, docs/architecture.md):
 * a minor release only adds -- functions, enum values, fields at the end of
 * the structs that may grow -- and a program built against an older
 * <dream/client.h> keeps working with a newer libdream. Structs come in
 * three kinds:
 *  - Sized structs, allocated by the caller (options passed in, results
 *    filled in): their first field is `size_t size`, the sizeof the caller
 *    was compiled with. Set it with DREAM_INIT(struct dream_...) (which
 *    zeroes the rest) or the struct's (inline) _default function. The library reads
 *    and writes only the first `size` bytes: fields past an older caller's
 *    size are neither read (they take their 0 default) nor written. A size
 *    below sizeof(size_t) (say, a forgotten initialisation) fails with
 *    DREAM_E_INVAL; a newer caller's fields that this library does not know
 *    must be 0, else DREAM_E_INVAL (an option would be silently ignored).
 *  - Structs the library allocates and returns (through ret_** with a _free
 *    function, or borrowed by a callback): they grow at the end. Never
 *    allocate, copy by value or take sizeof of them.
 *  - Frozen structs, never changed: dream_addr, dream_column, dream_values,
 *    dream_rows (arrays the library indexes), dream_column_info,
 *    dream_dataset_summary, dream_request_stats, dream_dataset_stats (array
 *    elements the caller indexes) and dream_job_result (inside
 *    dream_job_info). New data comes in new fields of a growing struct or
 *    new calls.
 */
#ifndef DREAM_CLIENT_H
#define DREAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes ----------------------------------------------------------- */

/* Error codes: 0, a negative errno, or a DREAM_E_* code of <dream/err.h>. */
#include "err.h"

/* ---- version ----------------------------------------------------------------- */

/* DREAM_VERSION_MAJOR/_MINOR/_PATCH/_STRING/_NUMBER: compiled against. */
#include "dream/version.h"

/* The libdream running: DREAM_VERSION_NUMBER's encoding (0xMMmmpp) and
 * "MAJOR.MINOR.PATCH" (static). */
uint32_t dream_version(void);
const char *dream_version_string(void);

/* Initialiser of a sized struct (see ABI above): size set, the rest 0, e.g.
 * struct dream_flush_result fr = DREAM_INIT(struct dream_flush_result); */
#define DREAM_INIT(type)                                                                           \
        {                                                                                          \
                .size = sizeof(type)                                                               \
        }

/* ---- addresses and connections ---------------------------------------------- */

#define DREAM_DEFAULT_ADDR "127.0.0.1:7878"
#define DREAM_DEFAULT_PORT 7878u

/* A parsed address: "HOST:PORT" (HOST an IPv4 address or a name),
 * "[IPV6]:PORT", "unix:/path". HOST alone means port DREAM_DEFAULT_PORT.
 * Frozen. */
struct dream_addr {
        int is_unix;
        char path[108]; /* Unix socket path (is_unix) */
        char host[256]; /* host name or numeric address, without brackets */
        uint16_t port;
};

/* 0 or DREAM_E_INVAL (malformed, port out of 1..65535 -- 0 is refused --,
 * path or host too long). */
int dream_addr_parse(const char *s, struct dream_addr *ret);

/* Sized (DREAM_INIT or dream_connect_opts_default). */
struct dream_connect_opts {
        size_t size;
        uint32_t connect_timeout_ms; /* to connect; 0 = 5000 */
        uint32_t io_timeout_ms;      /* longest wait for the server to accept
                                        bytes or to send the next response;
                                        0 = 60000 */
        uint32_t max_frame;          /* largest frame sent or accepted, bytes;
                                        0 = 64 MiB; lowered to the server's
                                        own limit by dream_hello() */
        const char *client_name;     /* for the server's logs; NULL =
                                        "libdream/VERSION"; copied */
};

/* Defaults: size set, the rest zero. Inline, like DREAM_INIT, so that
 * only the caller's sizeof is written. */
static inline void dream_connect_opts_default(struct dream_connect_opts *o)
{
        struct dream_connect_opts d = DREAM_INIT(struct dream_connect_opts);
        *o = d;
}

struct dream_client;

/* Connect to addr (see dream_addr). opts may be NULL for the defaults
 * (DREAM_E_INVAL for a bad opts->size). On
 * failure nothing is returned; the error is one of those listed at the top.
 * No request is sent: call dream_hello() next (required when the server has
 * tokens configured). */
int dream_connect(const char *addr, const struct dream_connect_opts *opts,
                  struct dream_client **ret);

/* Close the connection and free the client; c may be NULL. */
void dream_close(struct dream_client *c);

/* One line explaining the last failure of a call on c (the server's message
 * when it refused a request), "" when none. Valid until the next call on c.
 * c may be NULL (returns ""). */
const char *dream_last_error(const struct dream_client *c);

/* Largest frame the client will send (after dream_hello: at most the
 * server's limit). Helps size ingest blocks. */
uint32_t dream_max_frame(const struct dream_client *c);

/* ---- session ------------------------------------------------------------------ */

/* Sized (DREAM_INIT). */
struct dream_hello_info {
        size_t size;
        uint32_t protocol_version;
        char server_version[64];
        int auth_required; /* the server has tokens configured */
        int authenticated; /* the token was accepted */
        uint32_t max_frame_bytes;
};

/* Say hello, with a bearer token (NULL or "" for none). DREAM_E_AUTH when
 * the server refused the token (or requires one). ret_info may be NULL. */
int dream_hello(struct dream_client *c, const char *token, struct dream_hello_info *ret_info);

/* ---- generic calls (serialized dream.v1 messages) ---------------------------- */

/* Send one serialized dream.v1.Request (len bytes, borrowed). The library
 * gives it a fresh request id (replacing any in the bytes) and returns it in
 * *ret_id. Requests may be pipelined: send several, then collect each
 * reply with dream_recv(), in any order. */
int dream_send(struct dream_client *c, const void *request, size_t len, uint64_t *ret_id);

/* Called once per Response of a request: the serialized dream.v1.Response
 * (borrowed for the call) and its `more` flag. A non-zero return stops the
 * delivery: the rest of the stream is read and discarded and dream_recv
 * returns that value. */
typedef int (*dream_response_fn)(void *arg, const void *response, size_t len, int more);

/* Receive every Response of request `id` (until more = false), calling fn
 * (may be NULL) for each, including an error Response. Returns 0, or the
 * error of an error Response (its message in dream_last_error), or a
 * transport error. Responses of other pipelined requests that arrive
 * meanwhile are kept for their own dream_recv. */
int dream_recv(struct dream_client *c, uint64_t id, dream_response_fn fn, void *arg);

/* dream_send + dream_recv. */
int dream_call(struct dream_client *c, const void *request, size_t len, dream_response_fn fn,
               void *arg);

/* ---- datasets ------------------------------------------------------------------- */

enum dream_task {
        DREAM_TASK_NONE = 0, /* no target column */
        DREAM_TASK_REGRESSION = 1,
        DREAM_TASK_CLASSIFICATION = 2,
};

enum dream_kind {
        DREAM_KIND_INT = 1,     /* int64 */
        DREAM_KIND_DECIMAL = 2, /* int64 = value * 10^scale, scale 1..9 */
        DREAM_KIND_F64 = 3,     /* the IEEE-754 double's bits, as an int64 */
};

/* Frozen. */
struct dream_column {
        const char *name;
        enum dream_kind kind;
        uint32_t scale; /* DECIMAL: 1..9; otherwise 0 */
};

/* Sized (DREAM_INIT). */
struct dream_schema {
        size_t size;
        const struct dream_column *cols; /* n_cols, in row order */
        uint32_t n_cols;
        const char *target;   /* target column's name; NULL or "": none */
        enum dream_task task; /* with a target: regression or classification */
        uint32_t class_count; /* classification: classes, 0 = from the data */
};

/* Create a dataset. DREAM_E_EXISTS when it exists, DREAM_E_INVAL for a bad
 * name or schema. */
int dream_dataset_create(struct dream_client *c, const char *name,
                         const struct dream_schema *schema);

/* Delete a dataset. DREAM_E_NOTFOUND when there is none. */
int dream_dataset_drop(struct dream_client *c, const char *name);

/* Frozen. */
struct dream_column_info {
        char *name; /* owned by the dream_dataset_info */
        enum dream_kind kind;
        uint32_t scale;
};

/* `dream info`. Allocated by the library: grows at the end. */
struct dream_dataset_info {
        char *name;   /* owned */
        char *target; /* owned; "" when none */
        enum dream_task task;
        uint32_t class_count;
        uint64_t rows;         /* sealed + staged */
        uint32_t columns;      /* in the schema */
        uint32_t segments;     /* sealed segments */
        uint64_t staged_rows;  /* rows not yet sealed */
        uint64_t stored_bytes; /* on the server's disk */
        uint64_t csv_bytes;    /* the rows printed as CSV */
        uint64_t bases;        /* distinct bases over the sealed segments */
        double ratio;          /* csv_bytes / stored_bytes, 0 when empty */
        uint64_t created_unix;
        struct dream_column_info *schema; /* owned, `columns` entries */
};

/* DREAM_E_NOTFOUND for an unknown dataset. */
int dream_dataset_describe(struct dream_client *c, const char *name,
                           struct dream_dataset_info **ret);
void dream_dataset_info_free(struct dream_dataset_info *info);

/* Frozen. */
struct dream_dataset_summary {
        char *name; /* owned by the list */
        enum dream_task task;
        uint64_t rows;
        uint32_t columns;
        uint64_t stored_bytes;
};

/* Allocated by the library: grows at the end. */
struct dream_dataset_list {
        size_t n;
        struct dream_dataset_summary *items; /* owned, sorted by name */
};

int dream_dataset_list(struct dream_client *c, struct dream_dataset_list **ret);
void dream_dataset_list_free(struct dream_dataset_list *list);

/* Sized (DREAM_INIT). */
struct dream_flush_result {
        size_t size;
        uint32_t segments_sealed;
        uint64_t rows_sealed;
};

/* Seal the staged rows now. ret may be NULL. */
int dream_flush(struct dream_client *c, const char *name, struct dream_flush_result *ret);

/* ---- operations ----------------------------------------------------------------- */

/* Sized (DREAM_INIT). */
struct dream_backup_result {
        size_t size;
        uint64_t bytes; /* size of the copy (its data.mdb) */
        double seconds; /* time the server took */
};

/* Hot, compacted copy of the whole store while the server keeps serving.
 * `path` (borrowed for the call) is a directory on the server's host, seen
 * by the server: absolute, at most 4096 bytes, and either missing
 * (its parent must exist; it is created 0700) or an empty directory; the
 * server writes it as its own user. The copy holds every row acknowledged
 * before the call was made and opens as a store (dreamd --data-dir PATH).
 * Requires the admin role. ret may be NULL. DREAM_E_EXISTS (not new nor
 * empty), DREAM_E_NOTFOUND (no parent), DREAM_E_DENIED (not writable),
 * DREAM_E_INVAL (not absolute), DREAM_E_LIMIT (too long), ... */
int dream_backup(struct dream_client *c, const char *path, struct dream_backup_result *ret);

/* ---- rows: ingest and export ----------------------------------------------------- */

/* One column of a block of rows. Frozen. */
struct dream_values {
        enum dream_kind kind;
        uint32_t scale;   /* DECIMAL: 1..9 */
        const int64_t *v; /* n_rows values (see enum dream_kind) */
};

/* A block of rows, column by column. Frozen. */
struct dream_rows {
        uint32_t n_rows;
        uint32_t n_cols;
        const struct dream_values *cols; /* n_cols */
};

/* Sized (DREAM_INIT). */
struct dream_ingest_ack {
        size_t size;
        uint64_t first_row;       /* row number of the block's first row */
        uint32_t rows;            /* rows of the block */
        int duplicate;            /* the batch id was committed before: not
                                     stored again */
        uint64_t client_batch_id; /* echoed */
};

/* Append a block of rows; returns once the server committed it. A non-zero
 * client_batch_id makes a re-send idempotent (use ids unique per dataset).
 * DREAM_E_NOTFOUND (no such dataset), DREAM_E_SCHEMA (columns do not match
 * the schema), DREAM_E_LIMIT (the block exceeds the frame limit: send
 * fewer rows). ret may be NULL. */
int dream_ingest(struct dream_client *c, const char *dataset, uint64_t client_batch_id,
                 const struct dream_rows *rows, struct dream_ingest_ack *ret);

/* Pipelined ingest: send the block and return at once with the request id;
 * collect the acknowledgement later with dream_ingest_wait (in any order).
 * Keep at most a few dozen in flight (the server answers DREAM_E_BUSY
 * beyond 64 per connection). */
int dream_ingest_send(struct dream_client *c, const char *dataset, uint64_t client_batch_id,
                      const struct dream_rows *rows, uint64_t *ret_id);
int dream_ingest_wait(struct dream_client *c, uint64_t id, struct dream_ingest_ack *ret);

/* Called per exported chunk, in row order; rows are borrowed for the call.
 * A non-zero return stops the export with that value. */
typedef int (*dream_rows_fn)(void *arg, uint64_t first_row, const struct dream_rows *rows);

/* Stream rows [first_row, first_row + row_count) (row_count 0: to the end)
 * losslessly, chunk by chunk. Kinds and scales may differ between chunks.
 * ret_rows (may be NULL): rows delivered. DREAM_E_RANGE when first_row is
 * past the end. */
int dream_export(struct dream_client *c, const char *dataset, uint64_t first_row,
                 uint64_t row_count, dream_rows_fn fn, void *arg, uint64_t *ret_rows);

/* ---- mini-batches ------------------------------------------------------------------ */

enum dream_batch_mode {
        DREAM_BATCH_DEFAULT = 0,   /* the server's default (condensed) */
        DREAM_BATCH_CONDENSED = 1, /* condensed samples, weights = group sizes */
        DREAM_BATCH_ROWS = 2,      /* every row once per epoch, shuffled */
        DREAM_BATCH_SAMPLE = 3,    /* uniform random subset of the budget */
};

#define DREAM_RESUME_TOKEN_MAX 256u

/* Sized (DREAM_INIT or dream_batch_opts_default). */
struct dream_batch_opts {
        size_t size;
        enum dream_batch_mode mode;
        uint32_t batch_size;    /* rows per batch; 0 = server default */
        double budget_fraction; /* condensed/sample: 0 < f <= 1; or */
        uint64_t budget_rows;   /* a row count; both 0 = server default */
        uint64_t seed;
        uint32_t epoch;
        uint64_t start;              /* rows of the epoch already served */
        const uint8_t *resume_token; /* from a dream_batch; replaces seed,
                                        epoch and start; NULL = none */
        size_t resume_token_len;     /* <= DREAM_RESUME_TOKEN_MAX */
        uint32_t max_batches;        /* 0 = to the end of the epoch */
};

/* Defaults: size set, the rest zero (inline). */
static inline void dream_batch_opts_default(struct dream_batch_opts *o)
{
        struct dream_batch_opts d = DREAM_INIT(struct dream_batch_opts);
        *o = d;
}

/* One mini-batch; arrays borrowed for the callback. Allocated by the
 * library: grows at the end. */
struct dream_batch {
        uint32_t n;                  /* rows */
        uint32_t d;                  /* features per row */
        const float *features;       /* n * d, row-major */
        const float *targets;        /* n, or NULL when the dataset has no target */
        const float *weights;        /* n, or NULL: all 1 */
        const uint8_t *resume_token; /* continue after this batch */
        size_t resume_token_len;
        uint64_t position; /* rows served in this epoch after this batch */
        uint32_t epoch;
};

/* A non-zero return stops the stream with that value. */
typedef int (*dream_batch_fn)(void *arg, const struct dream_batch *b);

/* Stream mini-batches of a dataset. opts may be NULL for the defaults. */
int dream_get_batches(struct dream_client *c, const char *dataset,
                      const struct dream_batch_opts *opts, dream_batch_fn fn, void *arg);

/* ---- server metrics ------------------------------------------------------------------ */

#define DREAM_NAME_MAX 128u /* bytes of a dataset name */

/* Requests of one type (StatsReply.requests_by_type). Frozen. */
struct dream_request_stats {
        char type[48];     /* the request's name, e.g. "ingest" (truncated) */
        uint64_t requests; /* decoded since start */
        uint64_t errors;   /* answered with an error */
};

/* Storage of one dataset (StatsReply.dataset_stats). Frozen. */
struct dream_dataset_stats {
        char name[DREAM_NAME_MAX + 1];
        uint64_t stored_bytes; /* bytes of LMDB the dataset uses */
        uint64_t rows;         /* rows appended */
};

/* `dream stats` (requires the admin role). Counters are since the server
 * started unless said otherwise. Sized (DREAM_INIT). */
struct dream_stats {
        size_t size;
        uint64_t uptime_seconds;       /* seconds since start */
        uint32_t connections_open;     /* connections now */
        uint64_t connections_total;    /* accepted since start */
        uint64_t connections_refused;  /* refused by the connection cap */
        uint64_t requests_total;       /* requests decoded since start */
        uint64_t request_errors_total; /* requests answered with an error */
        uint64_t bytes_in;             /* bytes read from clients */
        uint64_t bytes_out;            /* bytes written to clients */
        uint64_t rows_ingested;        /* rows committed since start */
        uint64_t batches_served;       /* mini-batches sent since start */
        uint32_t jobs_running;         /* training jobs running now */
        uint32_t jobs_queued;          /* training jobs waiting */
        uint32_t datasets;             /* datasets in the store */
        uint64_t store_map_bytes;      /* LMDB map size */
        uint64_t store_used_bytes;     /* bytes used in the map */
        double ingest_ack_p50_seconds; /* median ingest acknowledgement latency */
        double ingest_ack_p99_seconds; /* its 99th percentile */
        uint64_t ingest_commits;       /* Ingest requests committed */
        uint64_t seals_total;          /* background seals that sealed rows */
        double seal_seconds_total;     /* seconds spent in them */
        uint64_t seal_errors_total;    /* background seals that failed */
        uint64_t store_map_max_bytes;  /* bytes the LMDB map may grow to */
        uint64_t jobs_done;            /* training jobs done, since the store
                                          was created */
        uint64_t jobs_failed;          /* ... failed (same) */
        uint64_t jobs_cancelled;       /* ... cancelled (same) */
        double train_seconds_total;    /* seconds spent fitting (same) */
        size_t n_requests_by_type;
        struct dream_request_stats *requests_by_type; /* owned: per request type seen */
        size_t n_dataset_stats;
        struct dream_dataset_stats *dataset_stats; /* owned: per dataset */
};

/* Fill *ret (release it with dream_stats_release). DREAM_E_DENIED without
 * the admin role. */
int dream_stats(struct dream_client *c, struct dream_stats *ret);
/* Free the arrays of a filled dream_stats (and zero it but its size); s
 * may be NULL. */
void dream_stats_release(struct dream_stats *s);

/* ---- training jobs ---------------------------------------------------------------------- */

enum dream_model {
        DREAM_MODEL_LINEAR = 1,   /* least squares, closed form */
        DREAM_MODEL_RIDGE = 2,    /* L2-regularised least squares, closed form */
        DREAM_MODEL_LOGISTIC = 3, /* binary logistic regression */
        DREAM_MODEL_SOFTMAX = 4,  /* multinomial logistic regression */
        DREAM_MODEL_MLP = 5,      /* multilayer perceptron, 1 or 2 hidden layers */
        DREAM_MODEL_KMEANS = 6,   /* k-means clustering */
};

enum dream_train_mode {
        DREAM_TRAIN_DEFAULT = 0,   /* the server's default: linear and ridge exact (condensed with
                                      a budget), the other models condensed */
        DREAM_TRAIN_CONDENSED = 1, /* condensed samples of the budget */
        DREAM_TRAIN_FULL = 2,      /* every row, decoded */
        DREAM_TRAIN_SAMPLE = 3,    /* uniform random subset, condensed set's size */
        DREAM_TRAIN_REFRESH = 4,   /* fresh random budget share per class per epoch */
        DREAM_TRAIN_EXACT = 5,     /* linear/ridge from sufficient statistics */
};

enum dream_order {
        DREAM_ORDER_DEFAULT = 0, /* the server's default (msb) */
        DREAM_ORDER_MSB = 1,     /* most significant bits first */
        DREAM_ORDER_ENTROPY = 2, /* highest-entropy bits first */
};

/* How logistic and softmax are fitted (mode refresh and the mlp: Adam). */
enum dream_solver {
        DREAM_SOLVER_DEFAULT = 0, /* the server's default (lbfgs) */
        DREAM_SOLVER_LBFGS = 1,   /* full-batch L-BFGS to a tolerance (epochs, lr and
                                     batch_size unused) */
        DREAM_SOLVER_ADAM = 2,    /* Adam on mini-batches for `epochs` */
};

/* The hyper-parameters dreamd applies to a field left 0 (its
 * train_params_default; `dream train --help` prints these, and
 * tests/unit/client checks them against the server's table). */
#define DREAM_TRAIN_DEFAULT_EPOCHS     20u  /* logistic, softmax by Adam */
#define DREAM_TRAIN_DEFAULT_EPOCHS_MLP 200u /* mlp: the most, with early stopping */
#define DREAM_TRAIN_DEFAULT_PATIENCE                                                               \
        5u                                   /* mlp early stopping: epochs without a better        \
                                                validation score */
#define DREAM_TRAIN_DEFAULT_BATCH    256u    /* mini-batch rows */
#define DREAM_TRAIN_DEFAULT_LR       1e-3    /* Adam step size */
#define DREAM_TRAIN_DEFAULT_L2       1e-4    /* mlp */
#define DREAM_TRAIN_DEFAULT_L2_LOGIT 1e-3    /* logistic, softmax */
#define DREAM_TRAIN_DEFAULT_L2_RIDGE 1.0     /* ridge */
#define DREAM_TRAIN_DEFAULT_HIDDEN   128u    /* mlp: one hidden layer */
#define DREAM_TRAIN_DEFAULT_K        8u      /* k-means clusters */
#define DREAM_TRAIN_DEFAULT_MAX_ITER 100u    /* k-means Lloyd iterations */
#define DREAM_TRAIN_DEFAULT_SEED     42u     /* random seed */
#define DREAM_TRAIN_DEFAULT_BUDGET   0.01    /* condensed/sample/refresh: fraction */
#define DREAM_TRAIN_DEFAULT_HOLDOUT  0.1     /* share of the rows set aside and scored on */
#define DREAM_TRAIN_MAX_HOLDOUT_ROWS 100000u /* rows set aside, at most */

/* A training job's request. Zero fields take the server's defaults (above),
 * except seed: it is sent as is (0 is a valid seed). Sized
 * (dream_train_opts_default, or DREAM_INIT: then seed is 0). */
struct dream_train_opts {
        size_t size;
        enum dream_model model;     /* required */
        enum dream_train_mode mode; /* DREAM_TRAIN_DEFAULT: condensed */
        double budget_fraction;     /* 0 < f <= 1; or */
        uint64_t budget_rows;       /* a row count; both 0 = the default */
        uint32_t epochs;            /* passes over the data */
        double lr;                  /* learning rate, finite, >= 0 */
        uint32_t batch_size;        /* mini-batch rows */
        uint32_t n_hidden;          /* mlp: 0 (default), 1 or 2 layers ... */
        uint32_t hidden[2];         /* ... of these widths */
        uint32_t k;                 /* kmeans: clusters */
        double l2;                  /* L2 penalty, finite, >= 0 */
        uint64_t seed;              /* random seed */
        const char *test_dataset;   /* evaluate on it; NULL or "": none */
        enum dream_order order;     /* condensed: bit order of the grouping */
        double holdout;             /* share of the rows set aside (drawn by the seed, at most
                                       DREAM_TRAIN_MAX_HOLDOUT_ROWS), never trained on: the
                                       metrics are on them without a test dataset; < 1;
                                       0 = DREAM_TRAIN_DEFAULT_HOLDOUT, negative = none */
        enum dream_solver solver;   /* logistic, softmax: how they are fitted */
        uint32_t patience;          /* mlp early stopping on the holdout: stop after this many
                                       epochs without a better score (epochs is then the most);
                                       0 = DREAM_TRAIN_DEFAULT_PATIENCE */
        int early_stopping_off;     /* mlp: non-zero = run every epoch (patience 0); no
                                       holdout means no early stopping too */
};

/* Size set, zeros but seed = DREAM_TRAIN_DEFAULT_SEED (inline); set
 * model. */
static inline void dream_train_opts_default(struct dream_train_opts *o)
{
        struct dream_train_opts d = DREAM_INIT(struct dream_train_opts);
        d.seed = DREAM_TRAIN_DEFAULT_SEED;
        *o = d;
}

/* Submit a job training a model on `dataset`; returns once it is queued,
 * with its id (> 0). DREAM_E_NOTFOUND (no such dataset), DREAM_E_INVAL (a
 * bad hyper-parameter, named in dream_last_error), DREAM_E_BUSY (the
 * job queue is full), DREAM_E_DENIED (no train role). */
int dream_train(struct dream_client *c, const char *dataset, const struct dream_train_opts *opts,
                uint64_t *ret_job_id);

enum dream_job_state {
        DREAM_JOB_UNKNOWN = 0, /* never sent by a server */
        DREAM_JOB_QUEUED = 1,
        DREAM_JOB_RUNNING = 2,
        DREAM_JOB_DONE = 3,
        DREAM_JOB_FAILED = 4,
        DREAM_JOB_CANCELLED = 5,
};

enum dream_metrics_kind {
        DREAM_METRICS_NONE = 0,
        DREAM_METRICS_REGRESSION = 1,     /* rmse, mae, r2 */
        DREAM_METRICS_CLASSIFICATION = 2, /* accuracy, macro_f1, logloss */
        DREAM_METRICS_CLUSTER = 3,        /* inertia, mean_sq_distance */
};

/* Result of a finished job. Frozen (inside dream_job_info). */
struct dream_job_result {
        uint64_t rows_used;                 /* training samples seen per epoch */
        double prep_seconds;                /* condensing or decoding time */
        double train_seconds;               /* fitting time */
        uint64_t peak_train_bytes;          /* bytes of training data resident in fitting */
        uint32_t epochs;                    /* epochs run */
        uint64_t evaluated_rows;            /* rows of the test dataset (0: none) */
        enum dream_metrics_kind metrics;    /* on the test dataset, else on the training data */
        double rmse, mae, r2;               /* DREAM_METRICS_REGRESSION */
        double accuracy, macro_f1, logloss; /* DREAM_METRICS_CLASSIFICATION */
        double inertia, mean_sq_distance;   /* DREAM_METRICS_CLUSTER */
};

#define DREAM_JOB_ERROR_MAX 512u /* bytes kept of a job's error message */

/* A job as the server reports it. Plain data: no pointers, nothing to free.
 * Sized (DREAM_INIT) when the caller passes it; the library's own (list
 * items, callbacks) have the library's size. */
struct dream_job_info {
        size_t size;
        uint64_t id;
        enum dream_job_state state;
        char dataset[DREAM_NAME_MAX + 1];      /* training dataset */
        char test_dataset[DREAM_NAME_MAX + 1]; /* evaluation dataset, "" = none */
        enum dream_model model;
        enum dream_train_mode mode;
        double budget_fraction; /* the budget in effect: a fraction, or */
        uint64_t budget_rows;   /* a row count; both 0 when none applies */
        uint32_t epoch;         /* epochs completed */
        uint32_t epochs;        /* epochs planned */
        double loss;            /* training loss after the last epoch */
        double elapsed_seconds; /* since the job started running */
        double eta_seconds;     /* estimated seconds left; < 0 when unknown */
        uint64_t submitted_unix;
        int error_code;                  /* FAILED: the failure as a DREAM_E_* code, else 0 */
        char error[DREAM_JOB_ERROR_MAX]; /* FAILED: why (truncated), else "" */
        int has_result;                  /* DONE: result is set */
        struct dream_job_result result;
        /* DONE (has_result), beside result: what the metrics are on, and
         * facts of the fit that are not results. */
        char evaluated_on[DREAM_NAME_MAX + 32]; /* "test dataset 'NAME'", "holdout" or
                                                   "training rows" ("" from an older server) */
        double holdout_share;                   /* share of the rows set aside; 0: none */
        uint64_t holdout_rows;                  /* rows set aside (never trained on) */
        double fit_loss;     /* last loss on the fit's own samples (condensed: the samples) */
        uint32_t iterations; /* optimiser iterations (or epochs) run */
        int converged;       /* the solver met its tolerance */
        double wall_seconds; /* submission to the end of the job */
        int prep_cached;     /* condensed: the samples came from the server's cache */
        double l2;           /* L2 penalty the fit used */
        double var_scale;    /* weight of the samples' variance term (condensed); 0: none */
        char solver[16];     /* how the fit ran: "lbfgs", "adam", "closed form", "lloyd"
                                ("" from an older server) */
};

/* "linear"..., "condensed"..., "queued"...: static strings, "unknown" for a
 * value outside the enum. */
const char *dream_model_name(enum dream_model m);
const char *dream_train_mode_name(enum dream_train_mode m);
const char *dream_job_state_name(enum dream_job_state s);
/* Names back to values: 0 or DREAM_E_INVAL. */
int dream_model_parse(const char *s, enum dream_model *ret);
int dream_train_mode_parse(const char *s, enum dream_train_mode *ret);

/* A job's state. DREAM_E_NOTFOUND for an unknown job. */
int dream_job_status(struct dream_client *c, uint64_t job_id, struct dream_job_info *ret);

/* Allocated by the library: grows at the end. */
struct dream_job_list {
        size_t n;
        struct dream_job_info **items; /* owned, newest first (pointers: a
                                          dream_job_info may grow) */
};

int dream_jobs(struct dream_client *c, struct dream_job_list **ret);
void dream_job_list_free(struct dream_job_list *list);

/* Called with each JobInfo of a watch (borrowed for the call). A non-zero
 * return stops the watch with that value; the server keeps streaming, so
 * the connection is then unusable (dream_close it). */
typedef int (*dream_job_fn)(void *arg, const struct dream_job_info *info);

/* Follow a job: fn (may be NULL) is called at every epoch and state change,
 * until the job is done, failed or cancelled; returns then with its last
 * state in *ret_last (may be NULL). A job already finished gives one call.
 * Each wait is bounded by the io timeout of the connection: connect with a
 * long one (dream_connect_opts.io_timeout_ms) to watch slow epochs. */
int dream_job_watch(struct dream_client *c, uint64_t job_id, dream_job_fn fn, void *arg,
                    struct dream_job_info *ret_last);

/* Ask a job to stop (within one epoch); *ret (may be NULL) is its state
 * right after the request (it may still be RUNNING: dream_job_watch to see
 * it end). DREAM_E_NOTFOUND for an unknown job. */
int dream_job_cancel(struct dream_client *c, uint64_t job_id, struct dream_job_info *ret);

/* Predictions for n rows. Allocated by the library: grows at the end. */
struct dream_prediction {
        uint32_t n;       /* rows predicted */
        uint32_t classes; /* classification: probabilities per row, else 0 */
        double *values;   /* owned, n: regression value, class label (the
                             target's value) or cluster index */
        float *scores;    /* owned, n * classes probabilities, row-major, in
                             the order of the model's classes; NULL when
                             classes == 0 */
};

void dream_prediction_free(struct dream_prediction *p);

/* Predict with the model of a finished job, from raw rows in the training
 * dataset's schema: every column in order, with or without the target
 * column (kinds and scales may differ from the schema's, as for
 * dream_ingest). The block must fit the frame limit (DREAM_E_LIMIT: send
 * fewer rows), at most 16777216 rows. DREAM_E_NOTFOUND (no such job or
 * model), DREAM_E_SCHEMA (columns do not match), DREAM_E_INVAL (the job is
 * not done). */
int dream_predict(struct dream_client *c, uint64_t job_id, const struct dream_rows *rows,
                  struct dream_prediction **ret);

/* The same from already built features: n rows of d float32 (row-major,
 * d = the model's inputs, in the dataset's column order without the
 * target). */
int dream_predict_features(struct dream_client *c, uint64_t job_id, const float *x, uint32_t n,
                           uint32_t d, struct dream_prediction **ret);

/* The model of a finished job as a JSON document (train/MODEL_JSON.md):
 * *ret_json is NUL-terminated, owned by the caller (dream_free);
 * *ret_len (may be NULL) its length. */
int dream_get_model(struct dream_client *c, uint64_t job_id, char **ret_json, size_t *ret_len);

/* Free a buffer returned by libdream (dream_get_model). p may be NULL. */
void dream_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
