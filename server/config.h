/* dreamd configuration: defaults, the `key = value` file, command-line flags.
 *
 * The only mutable global state of the daemon besides logging lives in one
 * struct srv_config, owned by main() and borrowed (copied) by the server.
 * Parsing never logs: failures return a project error code and write a
 * message naming the file, line and key (or the flag) into errmsg.
 */
#ifndef DREAM_SERVER_CONFIG_H
#define DREAM_SERVER_CONFIG_H

#include "common/limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define SRV_DEFAULT_LISTEN        "127.0.0.1:7878" /* when none is given */
#define SRV_DEFAULT_CONNECTIONS   1024u            /* connection cap */
#define SRV_DEFAULT_IDLE_TIMEOUT  300.0            /* seconds without a request */
#define SRV_DEFAULT_FRAME_TIMEOUT 30.0             /* seconds to complete a started frame */
#define SRV_DEFAULT_WORKERS       4u               /* worker threads */
#define SRV_DEFAULT_JOBS          1u               /* training jobs running at once */
#define SRV_DEFAULT_BLAS_THREADS  1u               /* OpenBLAS threads of a job */
#define SRV_DEFAULT_JOB_QUEUE     64u              /* jobs queued before BUSY */
#define SRV_DEFAULT_PEER_CONNS    128u             /* per peer address (unix: uid) */
#define SRV_DEFAULT_MAX_BUFFERED  (512ull << 20)   /* bytes of frames being received */
#define SRV_DEFAULT_BATCH_CACHE                                                                    \
        (256ull << 20) /* rows/sample streams: decode a dataset once up to this */
#define SRV_DEFAULT_JOB_MEMORY (2ull << 30) /* bytes a training job may need (job_memory) */
#define SRV_MIN_JOB_MEMORY     (1ull << 20) /* smallest job_memory accepted */

struct srv_config {
        char *listen[SRV_MAX_LISTEN]; /* owned strings; n_listen == 0: SRV_DEFAULT_LISTEN */
        uint32_t n_listen;
        char *data_dir;        /* owned; required */
        uint64_t map_size_max; /* bytes the LMDB map may grow to; 0 = store default */
        char *token_file;      /* owned or NULL: no authentication */
        char *port_file;       /* owned or NULL (flag only) */
        char *config_file;     /* owned or NULL: the file read, for messages */
        uint32_t max_connections;
        uint32_t max_peer_conns; /* connections from one peer address (unix: uid) */
        uint32_t max_frame;      /* bytes; DREAM_MAX_FRAME_DEFAULT */
        /* Frames larger than SRV_MAX_HELLO_FRAME being received, all
         * connections, in bytes; beyond, reading waits (one always may). */
        uint64_t max_buffered_bytes;
        double idle_timeout;  /* seconds > 0 */
        double frame_timeout; /* seconds > 0 */
        uint32_t workers;
        uint64_t seal_rows;         /* 0 = store default */
        uint64_t batch_cache_bytes; /* rows/sample streams decode the dataset once when it is at
                                       most this big, else read row by row (0: always) */
        uint32_t jobs;              /* training jobs running at once */
        uint32_t blas_threads;      /* OpenBLAS threads each job uses */
        uint32_t job_queue;         /* queued jobs beyond which Train answers BUSY */
        uint64_t job_memory;        /* bytes a job's fit and data may need, estimated before it
                                       starts (train_mem_estimate); beyond: LIMIT */
        enum dm_log_level log_level;
        enum dm_log_format log_format; /* text or json lines */
        char *metrics_listen;          /* owned or NULL: no /metrics endpoint; a loopback IP:PORT */
};

/* Defaults. Allocates nothing. */
void srv_config_init(struct srv_config *c);
/* Frees the owned strings; c may be NULL. */
void srv_config_release(struct srv_config *c);

/* Set one key from its text value (as in the file). `where` prefixes the
 * message (e.g. "dreamd.conf:12"). 0, DREAM_E_INVAL (unknown key or bad
 * value), DREAM_E_LIMIT (too many listen addresses), DREAM_E_NOMEM.
 * A `listen` key appends an address. */
int srv_config_set(struct srv_config *c, const char *key, const char *value, const char *where,
                   char *errmsg, size_t errmsg_size);

/* Parse a whole config text (len bytes, borrowed). `fname` names it in
 * messages: "FILE:LINE: ...". Lines: `key = value`, blank lines, and
 * comments starting with '#'. */
int srv_config_parse(struct srv_config *c, const char *text, size_t len, const char *fname,
                     char *errmsg, size_t errmsg_size);

/* Called with each error message of srv_config_parse_all. */
typedef void (*srv_config_report_fn)(const char *msg, void *arg);

/* Like srv_config_parse, but goes on past errors: each is given to report
 * ("FILE:LINE: ...") and counted in *ret_errors. Returns the first error
 * (0 when none), DREAM_E_NOMEM at once. */
int srv_config_parse_all(struct srv_config *c, const char *text, size_t len, const char *fname,
                         srv_config_report_fn report, void *arg, unsigned *ret_errors);

/* The known key nearest to a misspelt one (edit distance at most about a
 * third of its length), or NULL. Static storage. */
const char *srv_config_suggest(const char *key);

/* Read a config file (at most SRV_MAX_CONFIG_BYTES) into *ret_text (owned,
 * dm_free) and *ret_len. */
int srv_config_read(const char *path, char **ret_text, size_t *ret_len, char *errmsg,
                    size_t errmsg_size);

/* Read and parse a file (at most SRV_MAX_CONFIG_BYTES). */
int srv_config_load(struct srv_config *c, const char *path, char *errmsg, size_t errmsg_size);

/* Command line: --config FILE is read first, then every other flag
 * overrides it (--listen given on the command line replaces the file's
 * list). Flags: --listen ADDR (repeatable), --data-dir DIR, --config FILE,
 * --token-file F, --port-file F, --log-level L, plus one flag per config key
 * (--max-connections N, ...). *ret_help is set for --help / -h.
 * --check (verify the store and exit) is main()'s, not a config key: main
 * takes it out of argv before calling this. */
int srv_config_from_args(struct srv_config *c, int argc, char **argv, bool *ret_help, char *errmsg,
                         size_t errmsg_size);

/* Final checks: data_dir set; every listen address parses; a non-loopback
 * address needs a token file. */
int srv_config_check(const struct srv_config *c, char *errmsg, size_t errmsg_size);

/* A parsed listen address. */
struct srv_addr {
        bool is_unix;
        char path[108]; /* unix socket path */
        char host[64];  /* numeric IPv4 or IPv6 (without brackets) */
        uint16_t port;
        bool is_v6;
        bool loopback; /* 127.0.0.0/8, ::1 or a unix socket */
};

/* "unix:/path", "127.0.0.1:7878", "[::1]:7878". 0 or DREAM_E_INVAL. */
int srv_addr_parse(const char *s, struct srv_addr *ret);

/* Usage text for --help. Static storage. */
const char *srv_config_usage(void);

/* Write a message into errmsg (when given) and return code: the error
 * reporting of the server module's functions that take an errmsg buffer. */
int srv_fail(char *errmsg, size_t size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
