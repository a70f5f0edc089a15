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
 * connection), or a project code DREAM_E_* below: DREAM_E_TIMEOUT (a
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

/* ---- addresses and connections ---------------------------------------------- */

#define DREAM_DEFAULT_ADDR "127.0.0.1:7878"
#define DREAM_DEFAULT_PORT 7878u

/* A parsed address: "HOST:PORT" (HOST an IPv4 address or a name),
 * "[IPV6]:PORT", "unix:/path". HOST alone means port DREAM_DEFAULT_PORT. */
struct dream_addr {
        int is_unix;
        char path[108]; /* Unix socket path (is_unix) */
        char host[256]; /* host name or numeric address, without brackets */
        uint16_t port;
};

/* 0 or DREAM_E_INVAL (malformed, port out of 1..65535 -- 0 is refused --,
 * path or host too long). */
int dream_addr_parse(const char *s, struct dream_addr *ret);

struct dream_connect_opts {
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

/* Defaults (all zero). */
void dream_connect_opts_default(struct dream_connect_opts *o);

struct dream_client;

/* Connect to addr (see dream_addr). opts may be NULL for the defaults. On
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

struct dream_hello_info {
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

struct dream_column {
        const char *name;
        enum dream_kind kind;
        uint32_t scale; /* DECIMAL: 1..9; otherwise 0 */
};

struct dream_schema {
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

struct dream_column_info {
        char *name; /* owned by the dream_dataset_info */
        enum dream_kind kind;
        uint32_t scale;
};

/* `dream info`. */
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

struct dream_dataset_summary {
        char *name; /* owned by the list */
        enum dream_task task;
        uint64_t rows;
        uint32_t columns;
        uint64_t stored_bytes;
};

struct dream_dataset_list {
        size_t n;
        struct dream_dataset_summary *items; /* owned, sorted by name */
};

int dream_dataset_list(struct dream_client *c, struct dream_dataset_list **ret);
void dream_dataset_list_free(struct dream_dataset_list *list);

struct dream_flush_result {
        uint32_t segments_sealed;
        uint64_t rows_sealed;
};

/* Seal the staged rows now. ret may be NULL. */
int dream_flush(struct dream_client *c, const char *name, struct dream_flush_result *ret);

/* ---- operations ----------------------------------------------------------------- */

struct dream_backup_result {
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

/* One column of a block of rows. */
struct dream_values {
        enum dream_kind kind;
        uint32_t scale;   /* DECIMAL: 1..9 */
        const int64_t *v; /* n_rows values (see enum dream_kind) */
};

/* A block of rows, column by column. */
struct dream_rows {
        uint32_t n_rows;
        uint32_t n_cols;
        const struct dream_values *cols; /* n_cols */
};

struct dream_ingest_ack {
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

struct dream_batch_opts {
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

void dream_batch_opts_default(struct dream_batch_opts *o);

/* One mini-batch; arrays borrowed for the callback. */
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

#ifdef __cplusplus
}
#endif

#endif
