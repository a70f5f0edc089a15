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
#define INGEST_WINDOW_MAX  32         /* requests in flight at most (dreamd allows 64) */
/* Default requests in flight. dreamd applies one connection's ingests in
 * request order, so pipelining keeps the rows in file order. */
#define INGEST_WINDOW 8
#define STR_(x)       #x
#define STR(x)        STR_(x)

static const char ingest_help[] =
    "usage: dream ingest DATASET INPUT [--label COL] [--task TASK]\n"
    "                    [--format csv|idx] [--labels LABELS.idx] [--resume] [-q]\n"
    "                    [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Append the rows of a CSV or IDX file to a dataset of dreamd. The dataset\n"
    "is created with the input's schema (columns, kinds, target and task, by\n"
    "the same rules as 'dream pack') when it does not exist; otherwise the\n"
    "input must have the dataset's columns, in order. When the command created\n"
    "the dataset and fails before any row is committed, it drops it again.\n"
    "The target and task are set when the dataset is created: a --label or\n"
    "--task that differs from an existing dataset's is refused (exit 8).\n"
    "\n"
    "  -l, --label COL      target column (default: a column named 'label')\n"
    "  -t, --task TASK      regression, classification or auto (default auto)\n"
    "  -f, --format FMT     csv or idx (default: from the file name or content)\n"
    "      --labels FILE    IDX labels file for an IDX images input\n"
    "      --rows-per-request N  rows per request (default: up to 65536, about\n"
    "                       8 MB of values)\n"
    "      --window N       requests in flight, 1 to " STR(INGEST_WINDOW_MAX) " (default " STR(
        INGEST_WINDOW) ")\n"
                       "      --resume         continue an interrupted ingest of this input: the\n"
                       "                       rows it committed are not stored again, the rest\n"
                       "                       are appended (see below)\n"
                       "  -q, --quiet          print nothing on success\n" CLI_NET_HELP
                       "  -h, --help           this help\n"
                       "\n"
                       "Resuming: every request carries a batch id made from the input's columns,\n"
                       "the rows per request, the request's rows and where the input's first\n"
                       "request was committed; the server stores a batch id once. With --resume,\n"
                       "an earlier ingest of the same input (same first request's rows, same\n"
                       "--rows-per-request) into the dataset is found by its first request; the\n"
                       "requests it committed are skipped or re-sent as no-ops, the others are\n"
                       "appended. Rows appended by other clients meanwhile are kept; a request\n"
                       "whose rows changed in the input is appended. Without an earlier ingest of\n"
                       "the input, --resume appends the whole input. Only the first ingest of an\n"
                       "input into a dataset can be resumed: without --resume, the same input is\n"
                       "appended again, under batch ids of its own. A request that failed while\n"
                       "later ones were committed is appended after them (--window 1 keeps the\n"
                       "input's order). A full store exits 12: resume once space is freed.\n"
                       "\n" CLI_NET_EXIT_HELP;

/* Create the dataset from the table's schema. */
/* The wire task of a table read with its target and task. */
static enum dream_task table_task(const struct gd_table *t)
{
        return t->target < 0                       ? DREAM_TASK_NONE
               : t->task == GD_TASK_CLASSIFICATION ? DREAM_TASK_CLASSIFICATION
                                                   : DREAM_TASK_REGRESSION;
}

static int create_dataset(struct dream_client *c, const char *name, const struct gd_table *t)
{
        struct dream_column *cols;
        struct dream_schema s = DREAM_INIT(struct dream_schema);
        int r;

        cols = dm_calloc(t->n_cols, sizeof(*cols));
        if (!cols)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < t->n_cols; j++) {
                cols[j].name = t->cols[j].name;
                cols[j].kind = cli_wire_kind(t->cols[j].kind);
                cols[j].scale = t->cols[j].kind == GD_DEC ? t->cols[j].scale : 0;
        }
        s.cols = cols;
        s.n_cols = t->n_cols;
        s.target = t->target >= 0 ? t->cols[t->target].name : NULL;
        s.task = table_task(t);
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

/* An explicit --label or --task against an existing dataset's: a dataset's
 * target and task are set when it is created, so a different one would be
 * ignored. CLI_OK, or CLI_SCHEMA after saying so. */
static int target_matches(const struct dream_dataset_info *info, const struct read_opts *ro,
                          const char *input, const char *dataset)
{
        const char *has = info->target[0] ? info->target : NULL;

        if (ro->label && (!has || strcmp(ro->label, has) != 0)) {
                fprintf(stderr,
                        "dream: %s: --label '%s' does not match dataset '%s', whose target is "
                        "%s%s%s: a dataset's target is set when it is created (ingest into a new "
                        "dataset, or drop this one first)\n",
                        input, ro->label, dataset, has ? "'" : "", has ? has : "none",
                        has ? "'" : "");
                return CLI_SCHEMA;
        }
        if (ro->task != READ_TASK_AUTO && has &&
            (ro->task == READ_TASK_CLASSIFICATION) != (info->task == DREAM_TASK_CLASSIFICATION)) {
                fprintf(stderr,
                        "dream: %s: --task %s does not match dataset '%s', whose task is %s: a "
                        "dataset's task is set when it is created (ingest into a new dataset, "
                        "or drop this one first)\n",
                        input,
                        ro->task == READ_TASK_CLASSIFICATION ? "classification" : "regression",
                        dataset, cli_task_name(info->task));
                return CLI_SCHEMA;
        }
        return CLI_OK;
}

/* Progress line on a terminal: rows, input bytes per second, ETA. */
struct ingest_progress {
        int on;
        double start, last;
        uint64_t total_rows;
        double bytes_per_row; /* input bytes per row, for the rate */
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
        fprintf(stderr, "\r\033[Kingesting [%s] %llu/%llu rows  %s/s  ETA %.0fs", bar,
                (unsigned long long)rows, (unsigned long long)p->total_rows,
                cli_size((uint64_t)(rate * p->bytes_per_row), 0), eta);
        fflush(stderr);
}

static void progress_end(struct ingest_progress *p)
{
        if (p->on)
                fprintf(stderr, "\r\033[K");
        p->on = 0;
}

/* ---- batch ids ----------------------------------------------------------------------
 *
 * A block's batch id is a hash of the input's schema, the rows per request,
 * the block's index and values, and a salt: 0 for block 0; for the others,
 * 1 + the row at which block 0 was committed. So block 0 of an input is
 * recognised by the store whenever it was committed into the dataset before,
 * and the ack of a re-sent block 0 gives the first row of that earlier
 * ingest, hence the ids of all its blocks: --resume re-sends them as no-ops.
 * Blocks >= 1 of a new ingest are salted by its own, new first row, so they
 * never match blocks of another ingest. */

static uint64_t mix(uint64_t h, uint64_t v)
{
        h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
        h *= 0xBF58476D1CE4E5B9ull;
        return h ^ (h >> 31);
}

static uint64_t block_id(const struct gd_table *t, uint64_t per_block, uint64_t block,
                         uint64_t salt)
{
        uint64_t first = block * per_block;
        uint64_t n = t->n_rows - first < per_block ? t->n_rows - first : per_block;
        uint64_t h = mix(mix(mix(salt, per_block), block), t->n_cols);

        for (uint32_t j = 0; j < t->n_cols; j++) {
                const struct gd_col *col = &t->cols[j];
                for (const char *p = col->name; *p; p++)
                        h = mix(h, (uint8_t)*p);
                h = mix(h, ((uint64_t)cli_wire_kind(col->kind) << 32) |
                               (col->kind == GD_DEC ? col->scale : 0));
                for (uint64_t i = 0; i < n; i++)
                        h = mix(h, (uint64_t)col->v[first + i]);
        }
        return h ? h : 1;
}

/* A random salt, for an ingest of an input whose block 0 the dataset already
 * holds (appended again without --resume). */
static uint64_t random_salt(void)
{
        uint64_t b = 0;

        if (getrandom(&b, sizeof(b), 0) != sizeof(b))
                b = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(cli_now() * 1e9);
        return b | 1ull << 63; /* never 1 + a row number */
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

/* One run of `dream ingest`. */
struct ingest {
        const struct cli_net *net;
        struct dream_client *cl;
        const char *dataset;
        const struct gd_table *t;
        struct dream_values *vals; /* n_cols, pointing into t for the block sent */
        uint64_t per_block, n_blocks;
        uint64_t salt0;     /* of block 0: 0, or random when appended again */
        uint64_t salt;      /* of blocks >= 1 */
        uint64_t new_rows;  /* acknowledged as newly stored */
        uint64_t dup_rows;  /* acknowledged as committed before (batch id known) */
        uint64_t skip_rows; /* not sent: committed by the run --resume continues */
        uint64_t fail_row;  /* input row of the block that failed */
        int retries;
        struct ingest_progress ip;
        int ip_on;
};

static uint64_t committed(const struct ingest *g)
{
        return g->new_rows + g->dup_rows + g->skip_rows;
}

static int send_block(struct ingest *g, uint64_t block, uint64_t *ret_req)
{
        const struct gd_table *t = g->t;
        uint64_t first = block * g->per_block;
        uint64_t count = t->n_rows - first < g->per_block ? t->n_rows - first : g->per_block;
        struct dream_rows rows = {(uint32_t)count, t->n_cols, g->vals};

        for (uint32_t j = 0; j < t->n_cols; j++)
                g->vals[j].v = t->cols[j].v + first;
        return dream_ingest_send(g->cl, g->dataset,
                                 block_id(t, g->per_block, block, block ? g->salt : g->salt0),
                                 &rows, ret_req);
}

/* The error of a request that failed for good; a full store says so and
 * that the command can be resumed once space is freed. */
static int ingest_fail(struct ingest *g, int r, uint64_t block)
{
        const char *why = dream_last_error(g->cl);

        progress_end(&g->ip);
        g->fail_row = block * g->per_block;
        if (r != DREAM_E_FULL)
                return cli_net_fail(g->cl, r, "ingest into dataset '%s' failed at input row %llu",
                                    g->dataset, (unsigned long long)g->fail_row);
        fprintf(
            stderr,
            "dream: the store is full (dataset '%s'): %s; the rows from input row %llu on were "
            "not all stored; this is retryable once space is freed on the server (drop a dataset, "
            "or restart dreamd with a larger map_size_max or on a bigger disk)\n",
            g->dataset, why && *why ? why : dream_strerror(r), (unsigned long long)g->fail_row);
        return CLI_FULL;
}

static void count_ack(struct ingest *g, const struct dream_ingest_ack *ack)
{
        if (ack->duplicate)
                g->dup_rows += ack->rows;
        else
                g->new_rows += ack->rows;
        g->retries = 0;
        progress_draw(&g->ip, committed(g), 0);
}

/* Send one block and wait for its ack, re-sending after a lost connection
 * (own_dup then tells whether a duplicate ack may be this run's own
 * earlier send). CLI_OK, or the exit code after the error was printed. */
static int send_one(struct ingest *g, uint64_t block, struct dream_ingest_ack *ret,
                    int *ret_own_dup)
{
        uint64_t req;
        int sent = 0, r, rc;

        for (;;) {
                r = send_block(g, block, &req);
                if (r == 0) {
                        sent++;
                        r = dream_ingest_wait(g->cl, req, ret);
                }
                if (r == 0)
                        break;
                if (!retryable(r) || g->retries >= INGEST_RETRIES)
                        return ingest_fail(g, r, block);
                progress_end(&g->ip);
                rc = reconnect(g->net, &g->cl, r, &g->retries, block * g->per_block);
                if (rc != CLI_OK)
                        return rc;
                g->ip.on = g->ip_on;
        }
        *ret_own_dup = sent > 1;
        return CLI_OK;
}

/* Pipeline blocks [from, n_blocks): keep up to `window` in flight; collect
 * the oldest acknowledgement before sending more. After a failure, the acks
 * of the blocks still in flight are collected, to count what was committed. */
static int pipeline(struct ingest *g, uint64_t from, uint32_t window)
{
        struct inflight win[INGEST_WINDOW_MAX];
        struct dream_ingest_ack ack = DREAM_INIT(struct dream_ingest_ack);
        uint64_t next = from;
        uint32_t n_win = 0, head = 0;
        int r, rc = CLI_OK;

        while (next < g->n_blocks || n_win > 0) {
                if (rc == CLI_OK && next < g->n_blocks && n_win < window) {
                        uint64_t req;
                        r = send_block(g, next, &req);
                        if (r < 0 && retryable(r) && g->retries < INGEST_RETRIES) {
                                uint64_t oldest = n_win ? win[head].block : next;
                                progress_end(&g->ip);
                                rc = reconnect(g->net, &g->cl, r, &g->retries,
                                               oldest * g->per_block);
                                if (rc != CLI_OK)
                                        return rc;
                                next = oldest;
                                g->ip.on = g->ip_on;
                                n_win = 0;
                                head = 0;
                                continue;
                        }
                        if (r < 0) {
                                rc = ingest_fail(g, r, next);
                                if (retryable(r))
                                        return rc; /* nothing more to collect */
                                continue;
                        }
                        win[(head + n_win) % window] = (struct inflight){req, next};
                        n_win++;
                        next++;
                        continue;
                }
                if (n_win == 0)
                        break;
                struct inflight f = win[head];
                head = (head + 1) % window;
                n_win--;
                r = dream_ingest_wait(g->cl, f.req_id, &ack);
                if (rc != CLI_OK) { /* draining after a failure */
                        if (r == 0)
                                count_ack(g, &ack);
                        else if (retryable(r))
                                return rc;
                        continue;
                }
                if (r < 0 && retryable(r) && g->retries < INGEST_RETRIES) {
                        /* Re-send from the oldest unacknowledged block: the
                         * batch ids make blocks committed meanwhile count
                         * once (acknowledged as duplicates). */
                        progress_end(&g->ip);
                        rc = reconnect(g->net, &g->cl, r, &g->retries, f.block * g->per_block);
                        if (rc != CLI_OK)
                                return rc;
                        next = f.block;
                        n_win = 0;
                        head = 0;
                        g->ip.on = g->ip_on;
                        continue;
                }
                if (r < 0) {
                        rc = ingest_fail(g, r, f.block);
                        if (retryable(r))
                                return rc;
                        continue;
                }
                count_ack(g, &ack);
        }
        return rc;
}

/* --resume, after block 0 came back as committed before at first_row f0 by
 * an earlier ingest of the same input: the blocks that ingest committed
 * are, if nothing else was appended since, the dataset's last rows - f0.
 * Skip them but the last INGEST_WINDOW_MAX (a failed window may have left a
 * gap there: re-sent, each is a no-op or fills the gap); the first one sent
 * must come back committed at f0 + its offset, else everything is re-sent
 * from block 1. *ret_from: the block to go on from. */
static int resume_from(struct ingest *g, uint64_t f0, uint64_t dataset_rows, uint64_t *ret_from)
{
        struct dream_ingest_ack ack = DREAM_INIT(struct dream_ingest_ack);
        uint64_t k, a, done = dataset_rows > f0 ? dataset_rows - f0 : 0;
        int own, rc;

        *ret_from = 1;
        k = done >= g->t->n_rows ? g->n_blocks : done / g->per_block;
        if (k <= INGEST_WINDOW_MAX + 1)
                return CLI_OK;
        a = k - INGEST_WINDOW_MAX;
        rc = send_one(g, a, &ack, &own);
        if (rc != CLI_OK)
                return rc;
        if (ack.duplicate && ack.first_row == f0 + a * g->per_block) {
                g->skip_rows += (a - 1) * g->per_block;
                count_ack(g, &ack);
                *ret_from = a + 1;
                return CLI_OK;
        }
        fprintf(stderr,
                "dream: dataset '%s' does not hold the input's rows 0 to %llu in one run from "
                "row %llu: re-sending them all (rows already committed are not stored again)\n",
                g->dataset, (unsigned long long)(a * g->per_block), (unsigned long long)f0);
        /* The block is committed now: re-sent below, it counts then. */
        return CLI_OK;
}

/* The failed command created the dataset and nothing is in it: drop it, so
 * that no empty dataset is left behind. Checks it is still empty. */
static void drop_if_empty(struct ingest *g)
{
        struct dream_dataset_info *info = NULL;

        if (!g->cl && cli_net_try_connect(g->net, &g->cl) != CLI_OK)
                return;
        if (dream_dataset_describe(g->cl, g->dataset, &info) != 0)
                return;
        if (info->rows == 0 && dream_dataset_drop(g->cl, g->dataset) == 0)
                fprintf(stderr, "dream: removed the empty dataset '%s' this command created\n",
                        g->dataset);
        dream_dataset_info_free(info);
}

int cli_ingest(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"label", required_argument, NULL, 'l'},
            {"task", required_argument, NULL, 't'},
            {"format", required_argument, NULL, 'f'},
            {"labels", required_argument, NULL, 'L'},
            {"rows-per-request", required_argument, NULL, 'R'},
            {"window", required_argument, NULL, 'W'},
            {"resume", no_argument, NULL, 'r'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            CLI_NET_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        struct cli_net net = {0};
        const char *input;
        struct read_opts ro;
        struct cli_input_opts in = {.ro = &ro};
        struct gd_table *t = NULL;
        struct dream_dataset_info *info = NULL;
        struct cli_progress prog;
        struct ingest g = {.net = &net};
        struct dream_ingest_ack ack = DREAM_INIT(struct dream_ingest_ack);
        uint64_t source_bytes, from = 0, dataset_rows = 0;
        uint32_t window = INGEST_WINDOW;
        int quiet = 0, resume = 0, created = 0, own, c, r, rc = CLI_INTERNAL;
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
                        g.per_block = v;
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
                case 'r':
                        resume = 1;
                        break;
                case 'q':
                        quiet = 1;
                        break;
                case 'h':
                        fputs(ingest_help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error("ingest", c, argv, longopts);
                }
        }
        if (argc - optind != 2) {
                cli_usage_error("ingest", argc - optind < 2 ? "missing DATASET or INPUT"
                                                            : "too many arguments");
                return CLI_USAGE;
        }
        g.dataset = argv[optind];
        input = argv[optind + 1];
        t0 = cli_now();

        /* Connect first: an unreachable daemon fails before a long parse. */
        rc = cli_net_connect(&net, &g.cl);
        if (rc != CLI_OK)
                return rc;
        rc = CLI_INTERNAL;

        rc = cli_read_table("ingest", input, in.format, in.labels_path, &ro, &prog, &t,
                            &source_bytes);
        if (rc != CLI_OK)
                goto out;
        cli_progress_end(&prog);
        rc = CLI_INTERNAL;
        g.t = t;

        /* The dataset: create it, or check the input has its columns. */
        r = dream_dataset_describe(g.cl, g.dataset, &info);
        if (r == DREAM_E_NOTFOUND) {
                r = create_dataset(g.cl, g.dataset, t);
                if (r == 0)
                        created = 1;
                else if (r == DREAM_E_EXISTS) /* created meanwhile by another client */
                        r = dream_dataset_describe(g.cl, g.dataset, &info);
                if (r < 0) {
                        rc = r == DREAM_E_FULL
                                 ? ingest_fail(&g, r, 0)
                                 : cli_net_fail(g.cl, r, "cannot create dataset '%s'", g.dataset);
                        goto out;
                }
        } else if (r < 0) {
                rc = cli_net_fail(g.cl, r, "dataset '%s'", g.dataset);
                goto out;
        }
        if (info && !schema_matches(info, t, why, sizeof(why))) {
                fprintf(stderr, "dream: %s: input does not match the schema of dataset '%s': %s\n",
                        input, g.dataset, why);
                rc = CLI_SCHEMA;
                goto out;
        }
        if (info) {
                rc = target_matches(info, &ro, input, g.dataset);
                if (rc != CLI_OK)
                        goto out;
                rc = CLI_INTERNAL;
                dataset_rows = info->rows;
        }

        cli_table_f64_to_wire(t);
        if (!g.per_block)
                g.per_block = cli_rows_per_request(g.cl, INGEST_BLOCK_BYTES,
                                                   (uint64_t)t->n_cols * 8, INGEST_BLOCK_ROWS);
        g.n_blocks = t->n_rows ? (t->n_rows + g.per_block - 1) / g.per_block : 0;
        g.vals = dm_calloc(t->n_cols, sizeof(*g.vals));
        if (!g.vals) {
                cli_error(NULL, 0, 0, "out of memory");
                goto out;
        }
        for (uint32_t j = 0; j < t->n_cols; j++) {
                g.vals[j].kind = cli_wire_kind(t->cols[j].kind);
                g.vals[j].scale = t->cols[j].kind == GD_DEC ? t->cols[j].scale : 0;
        }
        g.ip_on = !quiet && !net.json && isatty(STDERR_FILENO) && source_bytes > CLI_PROGRESS_MIN;
        g.ip.on = g.ip_on;
        g.ip.start = g.ip.last = cli_now();
        g.ip.total_rows = t->n_rows;
        g.ip.bytes_per_row = t->n_rows ? (double)source_bytes / (double)t->n_rows : 0;

        /* Block 0 alone first: its ack says whether (and where) the dataset
         * already holds it from an earlier ingest of this input, which sets
         * the batch ids of the other blocks (see block_id). */
        if (g.n_blocks) {
                rc = send_one(&g, 0, &ack, &own);
                if (rc != CLI_OK)
                        goto failed;
                rc = CLI_INTERNAL;
                if (!ack.duplicate || own) {
                        count_ack(&g, &ack);
                        g.salt = ack.first_row + 1;
                        from = 1;
                        if (resume && dataset_rows > 0 && !ack.duplicate)
                                fprintf(stderr,
                                        "dream: dataset '%s' held %llu rows but no earlier ingest "
                                        "of this input (same first %llu rows, same "
                                        "--rows-per-request): all its rows are appended\n",
                                        g.dataset, (unsigned long long)dataset_rows,
                                        (unsigned long long)ack.rows);
                } else if (resume) {
                        count_ack(&g, &ack);
                        g.salt = ack.first_row + 1;
                        rc = resume_from(&g, ack.first_row, dataset_rows, &from);
                        if (rc != CLI_OK)
                                goto failed;
                } else {
                        /* The same input again without --resume: appended
                         * again, under batch ids of its own. */
                        g.salt0 = g.salt = random_salt();
                        from = 0;
                }
        }
        rc = pipeline(&g, from, window);
        if (rc != CLI_OK)
                goto failed;
        progress_end(&g.ip);
        {
                double secs = cli_now() - t0;
                uint64_t done = committed(&g), already = g.dup_rows + g.skip_rows;
                /* What the dataset's target and task are (set at its creation). */
                const char *target = info             ? (info->target[0] ? info->target : NULL)
                                     : t->target >= 0 ? t->cols[t->target].name
                                                      : NULL;
                enum dream_task task = info ? info->task : table_task(t);
                if (net.json) {
                        printf("{\"dataset\":");
                        cli_json_str(stdout, g.dataset);
                        printf(",\"created\":%s,\"rows\":%llu,\"resent_rows\":%llu,"
                               "\"resumed\":%s,\"appended_rows\":%llu,\"skipped_rows\":%llu,"
                               "\"columns\":%u,\"requests\":%llu,\"seconds\":%.3f,"
                               "\"input_bytes\":%llu",
                               created ? "true" : "false", (unsigned long long)done,
                               (unsigned long long)g.dup_rows, resume ? "true" : "false",
                               (unsigned long long)g.new_rows, (unsigned long long)g.skip_rows,
                               t->n_cols, (unsigned long long)g.n_blocks, secs,
                               (unsigned long long)source_bytes);
                        printf(",\"target\":");
                        if (target)
                                cli_json_str(stdout, target);
                        else
                                printf("null");
                        printf(",\"task\":\"%s\"}\n", cli_task_name(task));
                } else if (!quiet) {
                        printf("ingested %llu rows into %sdataset '%s' in %.2f s (%.0f rows/s, "
                               "%s/s)\n",
                               (unsigned long long)done, created ? "new " : "", g.dataset, secs,
                               secs > 0 ? (double)done / secs : 0.0,
                               cli_size(secs > 0 ? (uint64_t)((double)source_bytes / secs) : 0, 0));
                        if (target)
                                printf("target '%s', task %s\n", target, cli_task_name(task));
                        else
                                printf("no target column: only kmeans trains on it (a dataset's "
                                       "target is set when it is created: a column named 'label', "
                                       "or --label COL)\n");
                        if (resume)
                                printf("resumed: %llu of them were already committed, %llu "
                                       "appended now\n",
                                       (unsigned long long)already, (unsigned long long)g.new_rows);
                        else if (g.dup_rows)
                                printf("%llu of them were re-sent after a reconnection and "
                                       "stored once\n",
                                       (unsigned long long)g.dup_rows);
                }
        }
        rc = CLI_OK;
        goto out;
failed:
        /* Say what was committed and how to go on; leave no empty dataset. */
        progress_end(&g.ip);
        if (committed(&g) > 0)
                fprintf(stderr,
                        "dream: %llu rows of '%s' were committed to dataset '%s'; run the same "
                        "command with --resume to continue\n",
                        (unsigned long long)committed(&g), input, g.dataset);
        else if (created)
                drop_if_empty(&g);
out:
        dm_free(g.vals);
        dream_dataset_info_free(info);
        dream_close(g.cl);
        gd_table_free(t);
        return rc;
}
