/* The dream CLI: shared helpers of the commands (cli_*.c).
 *
 * Exit codes, one-line error messages, whole-file loading (with .gz
 * inflation), an atomic buffered output writer, and a progress bar. */
#ifndef DREAM_CLI_H
#define DREAM_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/limits.h"
#include "dream/client.h"
#include "storage/gd/gd.h"

/* Exit codes of every command. */
enum cli_exit {
        CLI_OK = 0,
        CLI_USAGE = 1,    /* bad command line */
        CLI_INPUT = 2,    /* bad or unreadable input, unwritable output */
        CLI_CORRUPT = 3,  /* a .dream file is truncated, corrupt or not one */
        CLI_INTERNAL = 4, /* out of memory, codec failure */
        /* Commands that talk to dreamd (cli_net*.c): */
        CLI_UNREACHABLE = 5, /* cannot connect to dreamd, or the connection failed */
        CLI_AUTH = 6,        /* authentication refused (or required) */
        CLI_NOTFOUND = 7,    /* unknown dataset */
        CLI_SCHEMA = 8,      /* the input does not match the dataset's schema */
        CLI_SERVER = 9,      /* dreamd refused or failed the request otherwise */
        /* Training jobs waited for (dream train --wait): */
        CLI_JOB_FAILED = 10,    /* the job failed */
        CLI_JOB_CANCELLED = 11, /* the job was cancelled */
        CLI_FULL = 12,          /* the server's store is full: retry once space is freed */
};

/* The commands: argv[0] is the command name. Each returns an exit code. */
int cli_pack(int argc, char **argv);
int cli_unpack(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_condense(int argc, char **argv);
/* Network commands (cli_net*.c). */
int cli_ingest(int argc, char **argv);
int cli_ls(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_flush(int argc, char **argv);
int cli_drop(int argc, char **argv);
int cli_backup(int argc, char **argv);
int cli_batch(int argc, char **argv);
/* Training jobs, prediction, models, metrics (cli_train.c). */
int cli_train(int argc, char **argv);
int cli_jobs(int argc, char **argv);
int cli_job(int argc, char **argv);
int cli_cancel(int argc, char **argv);
int cli_predict(int argc, char **argv);
int cli_model(int argc, char **argv);
int cli_stats(int argc, char **argv);

/* "dream: FILE:LINE:COL: message" on stderr, one line; LINE and COL are left
 * out when 0, FILE when NULL. */
void cli_error(const char *file, uint64_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "dream: message" (usage errors) and the hint to run --help. */
void cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Exit code for an error from the readers or the codec while reading input
 * (2), from gd_segment_open/decoding (3 when `dream_file`), else 4. */
int cli_exit_for(int err, int dream_file);

/* ---- input ------------------------------------------------------------- */

/* A whole input file in memory: mapped read-only, or read into a buffer
 * (pipes, "-" for stdin, inflated .gz). */
struct cli_file {
        const uint8_t *data;
        size_t len;
        void *map; /* owned mapping, or NULL */
        size_t map_len;
        uint8_t *heap; /* owned buffer, or NULL */
};

/* Load `path` ("-" = stdin). Gzip data (by its magic bytes) is inflated, up
 * to DREAM_MAX_INFLATED bytes. 0, a negative errno, DREAM_E_NOMEM,
 * DREAM_E_LIMIT, DREAM_E_TRUNCATED or DREAM_E_CORRUPT (bad gzip). */
int cli_file_load(const char *path, struct cli_file *ret);
void cli_file_release(struct cli_file *f);
/* Message for a cli_file_load error ("cannot open: ...", "corrupt gzip
 * data"...), static storage. */
const char *cli_load_strerror(int err);

/* An opened .dream file: the bytes and the segment over them. */
struct gd_segment;
struct cli_dream {
        struct cli_file file;
        struct gd_segment *seg;
};
/* Load and open a .dream file; on failure print the error and return the
 * exit code (2 unreadable, 3 corrupt, 4 internal), else CLI_OK. */
int cli_dream_open(const char *path, struct cli_dream *ret);
void cli_dream_close(struct cli_dream *d);

/* ---- output ------------------------------------------------------------ */

/* Buffered output that appears whole or not at all: written to
 * PATH.tmp-XXXXXX then renamed over PATH by cli_out_commit. "-" (or NULL)
 * writes to stdout directly. */
struct cli_out {
        int fd;
        int is_stdout;
        char *path; /* owned */
        char *tmp;  /* owned, NULL for stdout */
        uint8_t *buf;
        size_t len;
        size_t cap;
        int err; /* first write error (negative errno), sticky */
};

int cli_out_open(struct cli_out *o, const char *path);
void cli_out_flush(struct cli_out *o);
/* Room for n (<= 64 KiB) more bytes at o->buf + o->len. */
static inline uint8_t *cli_out_room(struct cli_out *o, size_t n)
{
        if (o->cap - o->len < n)
                cli_out_flush(o);
        return o->buf + o->len;
}
void cli_out_write(struct cli_out *o, const void *p, size_t n);
/* Flush, optionally fsync, rename into place. 0 or a negative errno; on
 * failure the temporary file is removed. Releases o either way. */
int cli_out_commit(struct cli_out *o, int durable);
/* Remove the temporary file and release o. Accepts a released o. */
void cli_out_abort(struct cli_out *o);

/* --bytes (a global option): sizes in text output as exact byte counts. */
extern int cli_bytes_exact;
/* A size for text output into buf: "812 bytes" below 1 KiB, else 1024-based
 * with one decimal ("14.1 KiB", "7.8 MiB", "2.0 GiB", "1.5 TiB"), or the
 * exact "N bytes" when `exact`. JSON output keeps the raw byte count. */
const char *cli_size_text(uint64_t bytes, int exact, char *buf, size_t n);
/* The same with the --bytes setting, into a static buffer per call slot
 * (slot 0..3), for up to four sizes in one printf. */
const char *cli_size(uint64_t bytes, int slot);

/* The name of `names` (n of them) closest to `word` by edit distance
 * (Levenshtein), when at most 2 edits away and not `word` itself; else NULL.
 * For "did you mean X?" after a misspelt command, option, model or mode. */
const char *cli_suggest(const char *word, const char *const *names, size_t n);
/* The same over a getopt_long table (names without "--"). */
const char *cli_suggest_option(const char *word, const struct option *longopts);

/* "unknown WHAT 'value' (did you mean 'X'?)" for a value near one of
 * `names`, else "unknown WHAT 'value' (a, b or c)", as a usage error of cmd;
 * returns CLI_USAGE. */
int cli_unknown_name(const char *cmd, const char *what, const char *value, const char *const *names,
                     size_t n);

/* An output file (not "-" nor NULL) that exists is replaced only when
 * `force` (--force): CLI_OK, or CLI_INPUT after saying so. */
int cli_out_check(const char *cmd, const char *path, int force);

/* Whether `out` names the same existing file as `in` (so that writing it
 * would replace the input). */
int cli_same_file(const char *in, const char *out);

/* Write a CSV header field, quoted when it holds a comma, quote, blank edge
 * or line break. */
void cli_out_csv_name(struct cli_out *o, const char *name);

/* --json of the offline commands that write a CSV (unpack, condense): a
 * usage error naming cmd when the CSV would go to standard output too
 * (CLI_USAGE), else CLI_OK. */
int cli_json_needs_file(const char *cmd, const char *output);
/* The start of their JSON line on stdout: {"file":FILE.dream,"output":OUT,
 * "rows":R,"columns":C,"output_bytes":B (OUT's size); the caller adds its
 * own fields and "}\n". */
void cli_json_csv_result(const char *file, const char *output, uint64_t rows, uint32_t columns);

/* ---- progress ---------------------------------------------------------- */

/* A progress bar on stderr, shown only when stderr is a terminal and the
 * input is larger than CLI_PROGRESS_MIN bytes. */
#define CLI_PROGRESS_MIN (16ull << 20)
struct cli_progress {
        int on;
        int last; /* last percentage drawn */
        const char *what;
};
void cli_progress_init(struct cli_progress *p, const char *what, uint64_t input_bytes);
/* read_progress_fn-compatible. */
void cli_progress_cb(void *ctx, uint64_t done, uint64_t total);
void cli_progress_note(struct cli_progress *p, const char *what);
void cli_progress_end(struct cli_progress *p);

/* ---- input tables (cli_input.c) ---------------------------------------- */

struct gd_table;
struct read_opts;
/* 1 if s ends with suf. */
int cli_has_suffix(const char *s, const char *suf);
/* Read INPUT, a CSV or an IDX file (format "csv" or "idx", or NULL to guess
 * from the name and the first bytes) with an optional IDX labels file, into a
 * new table, showing `prog` (initialised here and left running on success).
 * Errors are printed with file, line and column. Returns CLI_OK, setting
 * *ret_table (caller frees) and *ret_source_bytes, or an exit code. */
int cli_read_table(const char *cmd, const char *input, const char *format, const char *labels_path,
                   struct read_opts *ro, struct cli_progress *prog, struct gd_table **ret_table,
                   uint64_t *ret_source_bytes);

/* What the input options (-l/--label, -t/--task, -f/--format, --labels as
 * 'L') of pack and ingest set. */
struct cli_input_opts {
        struct read_opts *ro;    /* borrowed: label and task go there */
        const char *format;      /* NULL: guess */
        const char *labels_path; /* NULL: none */
};
/* Option c (with its argument) if it is an input option: 1 when taken, 0
 * when c is another option, -1 after a usage error naming cmd. */
int cli_opt_input(const char *cmd, int c, const char *arg, struct cli_input_opts *o);

/* ---- network commands (cli_net.c) ------------------------------------- */

struct dream_client;

/* Options every network command takes. */
struct cli_net {
        const char *addr;       /* -s/--server; NULL: $DREAM_ADDR or the default */
        const char *token_file; /* --token-file; NULL: $DREAM_TOKEN_FILE or none */
        int json;               /* --json */
        uint32_t io_timeout_ms; /* longest wait for dreamd; 0 = libdream's default */
};

/* getopt_long entries of the options above (to copy into a command's
 * table) and their short-option string. */
#define CLI_NET_SHORTOPTS "s:"
/* clang-format off */
#define CLI_NET_LONGOPTS                                                                           \
        {"server", required_argument, NULL, 's'},                                                  \
        {"token-file", required_argument, NULL, 'T'},                                              \
        {"json", no_argument, NULL, 'J'}
/* clang-format on */
/* The help text of these options. */
#define CLI_NET_HELP                                                                               \
        "  -s, --server ADDR    dreamd address: HOST:PORT, [IPV6]:PORT or unix:PATH\n"             \
        "                       (default: $DREAM_ADDR, else 127.0.0.1:7878)\n"                     \
        "      --token-file F   authenticate with the token in file F\n"                           \
        "                       (default: $DREAM_TOKEN_FILE)\n"                                    \
        "      --json           machine-readable output (one JSON document)\n"
#define CLI_NET_EXIT_HELP                                                                          \
        "Exit status: 0 ok, 1 usage, 2 bad input, 4 internal error, 5 dreamd\n"                    \
        "unreachable, 6 authentication refused, 7 unknown dataset or job, 8 schema\n"              \
        "mismatch, 9 other error reported by dreamd, 12 the server's store is full\n"              \
        "(retry once space is freed).\n"

/* Handle option c of CLI_NET_LONGOPTS: 1 when it was one of them. */
int cli_net_opt(struct cli_net *n, int c, const char *arg);
/* The wire kind of a table column kind. */
enum dream_kind cli_wire_kind(enum gd_kind k);
/* F64 cells travel as IEEE-754 bits: convert the table's keys in place. */
void cli_table_f64_to_wire(struct gd_table *t);
/* Rows per request: about target_bytes (at most half the server's frame
 * limit) of row_bytes each, at most max_rows, at least 1. */
uint64_t cli_rows_per_request(struct dream_client *c, uint64_t target_bytes, uint64_t row_bytes,
                              uint64_t max_rows);
/* The options of a simple server command (the net options and -h) and
 * exactly n_args positional arguments, named `what` in the message when
 * missing. -1 to go on, else the exit code. */
int cli_net_simple_args(const char *cmd, const char *help, const char *what, int argc, char **argv,
                        struct cli_net *net, int n_args);

/* Connect and say hello (with the token). On failure print one line and
 * return the exit code (5 unreachable, 6 auth, 1 bad address, 2 unreadable
 * token file); else CLI_OK and *ret. */
int cli_net_connect(const struct cli_net *n, struct dream_client **ret);

/* The same, printing nothing when the daemon cannot be reached (returns
 * CLI_UNREACHABLE); other failures are printed. */
int cli_net_try_connect(const struct cli_net *n, struct dream_client **ret);

/* Print "dream: CONTEXT: why" for an error of a call on c and return the
 * exit code for it. */
int cli_net_fail(struct dream_client *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "regression", "classification" or "none". */
const char *cli_task_name(enum dream_task t);

/* A server message without a leading wire field path ("describe_dataset.name:
 * no dataset 'x'" -> "no dataset 'x'"): a pointer into why. */
const char *cli_strip_field_path(const char *why);

/* Write s as a JSON string (quoted, escaped) to f. */
void cli_json_str(FILE *f, const char *s);

/* "A:B", "A:", ":B" -> [A, B) within n rows. 0 or -1. */
int cli_parse_rows(const char *s, uint64_t n, uint64_t *ret_a, uint64_t *ret_b);
/* --budget and --order values: CLI_OK, or CLI_USAGE after a usage message. */
int cli_opt_budget(const char *cmd, const char *arg, struct gd_budget *ret);
int cli_opt_order(const char *cmd, const char *arg, enum gd_order *ret);
/* The usage message for getopt's ':' (missing value) or '?' (unknown option)
 * case of `cmd`, with "did you mean '--X'?" for a misspelt long option of
 * `longopts`; returns CLI_USAGE. Call with the getopt result c. */
int cli_opt_error(const char *cmd, int c, char **argv, const struct option *longopts);

/* Seconds on a monotonic clock. */
double cli_now(void);

/* ---- training jobs: option parsing and output (cli_jobfmt.c) --------- */

/* Exit status of the job commands (CLI_NET_EXIT_HELP and 10, 11). */
#define CLI_JOB_EXIT_HELP                                                                          \
        "Exit status: 0 ok, 1 usage, 2 bad input, 4 internal error, 5 dreamd\n"                    \
        "unreachable, 6 authentication refused, 7 unknown dataset or job, 8 schema\n"              \
        "mismatch, 9 other error reported by dreamd, 10 the job failed, 11 the job\n"              \
        "was cancelled, 12 the server's store is full (retry once space is freed).\n"

/* `dream train` arguments. */
struct cli_train_args {
        struct cli_net net;
        const char *dataset;
        struct dream_train_opts opts; /* 0 fields: the server's defaults */
        int wait;                     /* --wait */
};

/* Print the help of `dream train` (defaults from <dream/client.h>). */
void cli_train_help(FILE *f);

/* Parse `dream train` (argv[0] is "train"). -1: parsed into *ret, go on;
 * else the exit code: CLI_OK after --help (printed on stdout), CLI_USAGE
 * after a usage message on stderr. */
int cli_train_parse(int argc, char **argv, struct cli_train_args *ret);

/* A job id argument: 0 or -1 (not a positive integer). */
int cli_parse_job_id(const char *s, uint64_t *ret);

/* A double as JSON: the shortest form that reads back, null when not
 * finite. */
void cli_json_num(FILE *f, double x);

/* One job as a JSON object (no newline), always with the same keys: job,
 * state, dataset, model, mode, budget, budget_kind, test_dataset, epoch,
 * epochs, epochs_planned, loss, elapsed_seconds, eta_seconds,
 * submitted_unix, rows_used, prep_seconds, train_seconds, peak_train_bytes,
 * evaluated_rows, metrics, error, error_code (null when not known). */
void cli_job_json(FILE *f, const struct dream_job_info *j);

/* One job as "key  value" lines. */
void cli_job_text(FILE *f, const struct dream_job_info *j);

/* "0.01" (a fraction), "5000 rows", or "-" (no budget) into out. */
void cli_budget_str(char *out, size_t n, double fraction, uint64_t rows);

/* Exit code of a finished job: CLI_OK (done), CLI_JOB_FAILED,
 * CLI_JOB_CANCELLED; CLI_SERVER for a state that is not final. */
int cli_job_exit(const struct dream_job_info *j);
/* Why a job failed: its error text, else the text of its error code. */
const char *cli_job_error(const struct dream_job_info *j);

/* The class values of a model JSON (its "classes" array) as K strings:
 * 0 with *ret_names (dm_malloc'd array of dm_malloc'd strings, free with
 * cli_names_free) when the array holds exactly k numbers; -1 when it is
 * null, missing or malformed (use the class indices). */
int cli_model_class_names(const char *json, uint32_t k, char ***ret_names);
void cli_names_free(char **names, uint32_t k);

/* `dream stats` output. */
void cli_stats_json(FILE *f, const struct dream_stats *s);
void cli_stats_text(FILE *f, const struct dream_stats *s);

#endif
