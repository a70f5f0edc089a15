/* dream ingest: parse a CSV or IDX input and append its rows to a dataset
 * of dreamd, creating the dataset (with the input's schema) when it does not
 * exist. Blocks of rows are pipelined: a window of several in flight, each
 * with a client batch id, so that a re-sent block is never stored twice. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/read/read.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "dream/client.h"
#include "storage/gd/gd.h"

#define INGEST_BLOCK_ROWS  65536u     /* most rows per Ingest request */
#define INGEST_BLOCK_BYTES (8u << 20) /* aim for about this many value bytes per request */
#define INGEST_RETRIES     5          /* reconnections after a lost connection */
#define INGEST_WINDOW_MAX  32u        /* requests in flight at most (dreamd allows 64) */
/* Default requests in flight. dreamd applies one connection's ingests in
 * request order, so pipelining keeps the rows in file order. */
#define INGEST_WINDOW 8u

static const char ingest_help[] =
    "usage: dream ingest DATASET INPUT [--label COL] [--task TASK]\n"
    "                    [--format csv|idx] [--labels LABELS.idx] [-q]\n"
    "                    [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Append the rows of a CSV or IDX file to a dataset of dreamd. The dataset\n"
    "is created with the input's schema (columns, kinds, target and task, by\n"
    "the same rules as 'dream pack') when it does not exist; otherwise the\n"
    "input must have the dataset's columns, in order.\n"
    "\n"
    "  -l, --label COL      target column (default: a column named 'label')\n"
    "  -t, --task TASK      regression, classification or auto (default auto)\n"
    "  -f, --format FMT     csv or idx (default: from the file name or content)\n"
    "      --labels FILE    IDX labels file for an IDX images input\n"
    "      --rows-per-request N  rows per request (default: up to 65536, about\n"
    "                       8 MB of values)\n"
    "      --window N       requests in flight, 1 to 32 (default 1; with more,\n"
    "                       this dreamd may store the blocks out of order)\n"
    "  -q, --quiet          print nothing on success\n" CLI_NET_HELP
    "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

/* Create the dataset from the table's schema. */
static int create_dataset(struct dream_client *c, const char *name, const struct gd_table *t)
{
        struct dream_column *cols;
        struct dream_schema s;
        int r;

        cols = dm_calloc(t->n_cols, sizeof(*cols));
        if (!cols)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < t->n_cols; j++) {
                cols[j].name = t->cols[j].name;
                cols[j].kind = cli_wire_kind(t->cols[j].kind);
                cols[j].scale = t->cols[j].kind == GD_DEC ? t->cols[j].scale : 0;
        }
        memset(&s, 0, sizeof(s));
        s.cols = cols;
        s.n_cols = t->n_cols;
        s.target = t->target >= 0 ? t->cols[t->target].name : NULL;
        s.task = t->target < 0                       ? DREAM_TASK_NONE
                 : t->task == GD_TASK_CLASSIFICATION ? DREAM_TASK_CLASSIFICATION
                                                     : DREAM_TASK_REGRESSION;
        r = dream_dataset_create(c, name, &s);
        dm_free(cols);
        return r;
}

/* The input's columns against an existing dataset's: a one-line reason in
 * why when they differ. */
static int schema_matches(const struct dream_dataset_info *info, const struct gd_table *t,
                          char *why, size_t why_size)
{
        if (info->columns != t->n_cols) {
                snprintf(why, why_size, "the dataset has %u columns, the input %u", info->columns,
                         t->n_cols);
                return 0;
        }
        for (uint32_t j = 0; j < t->n_cols; j++) {
                if (strcmp(info->schema[j].name, t->cols[j].name) != 0) {
                        snprintf(why, why_size,
                                 "column %u is '%s' in the dataset but '%s' in the input", j + 1,
                                 info->schema[j].name, t->cols[j].name);
                        return 0;
                }
        }
        return 1;
}

/* Progress line on a terminal: rows, MB/s, ETA. */
struct ingest_progress {
        int on;
        double start, last;
        uint64_t total_rows;
        double bytes_per_row; /* input bytes per row, for MB/s */
};

static void progress_draw(struct ingest_progress *p, uint64_t rows, int force)
{
        double now = cli_now(), el, rate, eta;
        char bar[31];
        int fill;

        if (!p->on || (!force && now - p->last < 0.1))
                return;
        p->last = now;
        el = now - p->start;
        rate = el > 0 ? (double)rows / el : 0;
        eta = rate > 0 ? (double)(p->total_rows - rows) / rate : 0;
        fill = p->total_rows ? (int)(rows * 30 / p->total_rows) : 30;
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, ' ', (size_t)(30 - fill));
        bar[30] = '\0';
        fprintf(stderr, "\r\033[Kingesting [%s] %llu/%llu rows  %.1f MB/s  ETA %.0fs", bar,
                (unsigned long long)rows, (unsigned long long)p->total_rows,
                rate * p->bytes_per_row / 1e6, eta);
        fflush(stderr);
}

static void progress_end(struct ingest_progress *p)
{
        if (p->on)
                fprintf(stderr, "\r\033[K");
        p->on = 0;
}

/* A random base for this run's batch ids: ids of different runs differ, ids
 * within a run are base + block index. */
static uint64_t batch_id_base(void)
{
        uint64_t b = 0;

        if (getrandom(&b, sizeof(b), 0) != sizeof(b))
                b = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(cli_now() * 1e9);
        b &= ~0xFFFFFFFFull; /* room for 2^32 blocks */
        return b ? b : 1ull << 32;
}

/* Errors after which the same blocks may be sent again on a new
 * connection: transport failures (negative errno), timeouts, busy. */
static int retryable(int r)
{
        return (r < 0 && r > -4096) || r == DREAM_E_TIMEOUT || r == DREAM_E_BUSY;
}

/* Close the failed connection and connect again, waiting 0.2, 0.4, 0.8...
 * seconds before each attempt while *retries < INGEST_RETRIES. */
static int reconnect(const struct cli_net *net, struct dream_client **cl, int err, int *retries,
                     uint64_t from_row)
{
        const char *why = dream_last_error(*cl);
        int rc = CLI_UNREACHABLE;

        fprintf(stderr, "dream: %s; reconnecting to re-send from row %llu\n",
                why && *why ? why : dream_strerror(err), (unsigned long long)from_row);
        dream_close(*cl);
        *cl = NULL;
        while (*retries < INGEST_RETRIES) {
                long ms = 200L << *retries;
                struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

                (*retries)++;
                nanosleep(&ts, NULL);
                rc = *retries < INGEST_RETRIES ? cli_net_try_connect(net, cl)
                                               : cli_net_connect(net, cl);
                if (rc != CLI_UNREACHABLE)
                        break;
        }
        return rc;
}

struct inflight {
        uint64_t req_id;
        uint64_t block;
};

int cli_ingest(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"label", required_argument, NULL, 'l'},
            {"task", required_argument, NULL, 't'},
            {"format", required_argument, NULL, 'f'},
            {"labels", required_argument, NULL, 'L'},
            {"rows-per-request", required_argument, NULL, 'R'},
            {"window", required_argument, NULL, 'W'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            CLI_NET_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        struct cli_net net = {0};
        const char *dataset, *input;
        struct read_opts ro;
        struct cli_input_opts in = {.ro = &ro};
        struct gd_table *t = NULL;
        struct dream_client *cl = NULL;
        struct dream_dataset_info *info = NULL;
        struct dream_values *vals = NULL;
        struct cli_progress prog;
        struct ingest_progress ip = {0};
        struct inflight win[INGEST_WINDOW_MAX];
        uint64_t source_bytes, per_block = 0, n_blocks, next = 0, acked_rows = 0, dup_rows = 0;
        uint64_t id_base;
        uint32_t n_win = 0, head = 0, window = INGEST_WINDOW;
        int quiet = 0, created = 0, retries = 0, ip_on, c, r, rc = CLI_INTERNAL;
        double t0;
        char why[512];

        read_opts_default(&ro);
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":l:t:f:qh" CLI_NET_SHORTOPTS, longopts, NULL)) != -1) {
                if (cli_net_opt(&net, c, optarg))
                        continue;
                r = cli_opt_input("ingest", c, optarg, &in);
                if (r < 0)
                        return CLI_USAGE;
                if (r > 0)
                        continue;
                switch (c) {
                case 'R': {
                        char *end;
                        unsigned long long v = strtoull(optarg, &end, 10);
                        if (*end || v == 0 || v > DREAM_MAX_BATCH_ROWS || optarg[0] == '-') {
                                cli_usage_error("ingest", "invalid --rows-per-request '%s'",
                                                optarg);
                                return CLI_USAGE;
                        }
                        per_block = v;
                        break;
                }
                case 'W': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v == 0 || v > INGEST_WINDOW_MAX || optarg[0] == '-') {
                                cli_usage_error("ingest", "invalid --window '%s' (1 to %u)", optarg,
                                                INGEST_WINDOW_MAX);
                                return CLI_USAGE;
                        }
                        window = (uint32_t)v;
                        break;
                }
                case 'q':
                        quiet = 1;
                        break;
                case 'h':
                        fputs(ingest_help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error("ingest", c, argv);
                }
        }
        if (argc - optind != 2) {
                cli_usage_error("ingest", argc - optind < 2 ? "missing DATASET or INPUT"
                                                            : "too many arguments");
                return CLI_USAGE;
        }
        dataset = argv[optind];
        input = argv[optind + 1];
        t0 = cli_now();

        /* Connect first: an unreachable daemon fails before a long parse. */
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        rc = CLI_INTERNAL;

        rc = cli_read_table("ingest", input, in.format, in.labels_path, &ro, &prog, &t,
                            &source_bytes);
        if (rc != CLI_OK)
                goto out;
        cli_progress_end(&prog);
        rc = CLI_INTERNAL;

        /* The dataset: create it, or check the input has its columns. */
        r = dream_dataset_describe(cl, dataset, &info);
        if (r == DREAM_E_NOTFOUND) {
                r = create_dataset(cl, dataset, t);
                if (r == 0)
                        created = 1;
                else if (r == DREAM_E_EXISTS) /* created meanwhile by another client */
                        r = dream_dataset_describe(cl, dataset, &info);
                if (r < 0) {
                        rc = cli_net_fail(cl, r, "cannot create dataset '%s'", dataset);
                        goto out;
                }
        } else if (r < 0) {
                rc = cli_net_fail(cl, r, "dataset '%s'", dataset);
                goto out;
        }
        if (info && !schema_matches(info, t, why, sizeof(why))) {
                fprintf(stderr, "dream: %s: input does not match the schema of dataset '%s': %s\n",
                        input, dataset, why);
                rc = CLI_SCHEMA;
                goto out;
        }

        cli_table_f64_to_wire(t);
        if (!per_block)
                per_block = cli_rows_per_request(cl, INGEST_BLOCK_BYTES, (uint64_t)t->n_cols * 8,
                                                 INGEST_BLOCK_ROWS);
        n_blocks = t->n_rows ? (t->n_rows + per_block - 1) / per_block : 0;
        vals = dm_calloc(t->n_cols, sizeof(*vals));
        if (!vals) {
                cli_error(NULL, 0, 0, "out of memory");
                goto out;
        }
        id_base = batch_id_base();
        ip_on = !quiet && !net.json && isatty(STDERR_FILENO) && source_bytes > CLI_PROGRESS_MIN;
        ip.on = ip_on;
        ip.start = ip.last = cli_now();
        ip.total_rows = t->n_rows;
        ip.bytes_per_row = t->n_rows ? (double)source_bytes / (double)t->n_rows : 0;

        /* Pipeline: keep up to `window` blocks in flight; collect the
         * oldest acknowledgement before sending more. */
        while (next < n_blocks || n_win > 0) {
                if (next < n_blocks && n_win < window) {
                        uint64_t first = next * per_block;
                        uint64_t count =
                            t->n_rows - first < per_block ? t->n_rows - first : per_block;
                        struct dream_rows rows = {(uint32_t)count, t->n_cols, vals};
                        uint64_t req;

                        for (uint32_t j = 0; j < t->n_cols; j++) {
                                vals[j].kind = cli_wire_kind(t->cols[j].kind);
                                vals[j].scale = t->cols[j].kind == GD_DEC ? t->cols[j].scale : 0;
                                vals[j].v = t->cols[j].v + first;
                        }
                        r = dream_ingest_send(cl, dataset, id_base + next, &rows, &req);
                        if (r < 0 && retryable(r) && retries < INGEST_RETRIES) {
                                uint64_t oldest = n_win ? win[head].block : next;
                                progress_end(&ip);
                                rc = reconnect(&net, &cl, r, &retries, oldest * per_block);
                                if (rc != CLI_OK)
                                        goto out;
                                next = oldest;
                                ip.on = ip_on;
                                n_win = 0;
                                head = 0;
                                continue;
                        }
                        if (r < 0) {
                                progress_end(&ip);
                                rc = cli_net_fail(cl, r, "cannot send rows %llu to %llu",
                                                  (unsigned long long)first,
                                                  (unsigned long long)(first + count));
                                goto out;
                        }
                        win[(head + n_win) % window] = (struct inflight){req, next};
                        n_win++;
                        next++;
                        continue;
                }
                struct dream_ingest_ack ack;
                struct inflight f = win[head];
                head = (head + 1) % window;
                n_win--;
                r = dream_ingest_wait(cl, f.req_id, &ack);
                if (r < 0 && retryable(r) && retries < INGEST_RETRIES) {
                        /* Re-send from the oldest unacknowledged block: the
                         * batch ids make blocks committed meanwhile count
                         * once (acknowledged as duplicates). */
                        progress_end(&ip);
                        rc = reconnect(&net, &cl, r, &retries, f.block * per_block);
                        if (rc != CLI_OK)
                                goto out;
                        next = f.block;
                        n_win = 0;
                        head = 0;
                        ip.on = ip_on;
                        continue;
                }
                if (r < 0) {
                        progress_end(&ip);
                        rc = cli_net_fail(cl, r, "ingest into dataset '%s' failed at row %llu",
                                          dataset, (unsigned long long)(f.block * per_block));
                        if (acked_rows + dup_rows)
                                fprintf(stderr, "dream: %llu rows before it were committed\n",
                                        (unsigned long long)(acked_rows + dup_rows));
                        goto out;
                }
                if (ack.duplicate)
                        dup_rows += ack.rows;
                else
                        acked_rows += ack.rows;
                retries = 0;
                progress_draw(&ip, acked_rows + dup_rows, 0);
        }
        progress_end(&ip);
        {
                double secs = cli_now() - t0;
                if (net.json) {
                        printf("{\"dataset\":");
                        cli_json_str(stdout, dataset);
                        printf(
                            ",\"created\":%s,\"rows\":%llu,\"resent_rows\":%llu,"
                            "\"columns\":%u,\"requests\":%llu,\"seconds\":%.3f,"
                            "\"input_bytes\":%llu}\n",
                            created ? "true" : "false", (unsigned long long)(acked_rows + dup_rows),
                            (unsigned long long)dup_rows, t->n_cols, (unsigned long long)n_blocks,
                            secs, (unsigned long long)source_bytes);
                } else if (!quiet) {
                        printf("ingested %llu rows into %sdataset '%s' in %.2f s (%.0f rows/s, "
                               "%.1f MB/s)\n",
                               (unsigned long long)(acked_rows + dup_rows), created ? "new " : "",
                               dataset, secs,
                               secs > 0 ? (double)(acked_rows + dup_rows) / secs : 0.0,
                               secs > 0 ? (double)source_bytes / secs / 1e6 : 0.0);
                        if (dup_rows)
                                printf("%llu of them were re-sent after a reconnection and "
                                       "stored once\n",
                                       (unsigned long long)dup_rows);
                }
        }
        rc = CLI_OK;
out:
        dm_free(vals);
        dream_dataset_info_free(info);
        dream_close(cl);
        gd_table_free(t);
        return rc;
}
