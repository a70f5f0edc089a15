/* Ingest and batch-serving benchmark over loopback (issue 4; not a test).
 *
 *   bench_ingest [-d DREAMD] [-c CLIENTS] [-l LABEL] [-s] [-S SEAL_ROWS] CSV
 *   bench_ingest -a ADDR [-p PID] [-B DATASET] [-P PASSES] [-M MODES] [CSV]
 *
 * Starts a real dreamd (DREAMD, default: BUILD/server/dreamd next to this
 * executable's BUILD/bench/ingest/) on 127.0.0.1 port 0 with a temporary data
 * directory (removed at the end), then measures through libdream:
 *   1. one client: load + parse the CSV (read_csv), create the dataset,
 *      pipelined ingest (65,536-row requests, 8 in flight, as `dream ingest`),
 *      final flush (seal): rows/s and MB/s of CSV, end to end;
 *   2. the same CSV split in CLIENTS (default 8) line-aligned parts, one
 *      thread and one connection per part, each parsing and ingesting its
 *      part into its own dataset (-s: all into one dataset), then flushing;
 *   3. acknowledgement latency (send -> ack) of the pipelined requests, and
 *      of serial 1,024-row requests on an otherwise idle server;
 *   4. batch serving, batch size 1,024: rows (one epoch), condensed and
 *      sample (budget 0.01), each read to its end, cold then warm.
 * Prints one `key value` line per figure, then a summary against the targets.
 * With -a ADDR the daemon at ADDR is used (none is started); with -B only
 * step 4 runs, on DATASET (which must exist), PASSES times (for profiling a
 * running dreamd).
 * Generate the input with: BUILD/bench/gen_sensor 3000000 > sensor3m.csv
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/read/read.h"
#include "dream/client.h"
#include "storage/gd/gd.h"
#include "tests/harness/daemon.h"

#define BLOCK_ROWS   65536u /* rows per Ingest request, as the CLI */
#define BLOCK_BYTES  (8u << 20)
#define WINDOW       8u /* requests in flight, as the CLI */
#define MAX_CLIENTS  64
#define SERIAL_REQS  300u  /* serial latency probe: requests */
#define SERIAL_ROWS  1024u /* ... of this many rows */
#define BATCH_SIZE   1024u
#define BUDGET       0.01
#define TARGET_1C    500000.0
#define TARGET_ROWS  2000000.0
#define TARGET_RATIO 1.5

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "bench_ingest: WHAT NAME[: error]" */
static void die(const char *what, const char *name, int r)
{
        fprintf(stderr, "bench_ingest: %s %s", what, name);
        if (r)
                fprintf(stderr, ": %s", dream_strerror(r));
        fputc('\n', stderr);
}

/* ---- dreamd ---------------------------------------------------------------- */

static struct tdaemon dreamd_d; /* the dreamd started here (tests/harness) */
static pid_t cpu_pid = -1;      /* dreamd's pid for its CPU time (ours, or given by -p) */
static char dreamd_addr[300];

static void stop_dreamd(void)
{
        if (dreamd_d.pid > 0)
                td_stop(&dreamd_d);
        td_cleanup(&dreamd_d);
}

static void on_signal(int sig)
{
        (void)sig;
        td_kill_all();
        _exit(130);
}

static int find_dreamd(char *out, size_t size)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash;

        if (n <= 0)
                return -1;
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (!slash)
                return -1;
        *slash = '\0'; /* BUILD/bench/ingest */
        snprintf(out, size, "%s/../../server/dreamd", self);
        return access(out, X_OK);
}

static int start_dreamd(const char *exe, const char *seal_rows)
{
        const char *args[] = {"--log-level", "warn", seal_rows ? "--seal-rows" : NULL, seal_rows,
                              NULL};
        char log[sizeof(dreamd_d.dir) + 16];
        struct td_opts o = {.args = args, .log_path = log};
        int r;

        setenv("DREAMD", exe, 1);
        td_mkdir(&dreamd_d, "/tmp/bench_ingest");
        o.data_dir = dreamd_d.data_dir;
        snprintf(log, sizeof(log), "%s/dreamd.log", dreamd_d.dir);
        r = td_launch(&dreamd_d, &o);
        if (r != 0) {
                FILE *f = fopen(log, "r");
                fprintf(stderr, "bench_ingest: dreamd did not start (%d; its log below)\n", r);
                if (f) {
                        char line[400];
                        while (fgets(line, sizeof(line), f))
                                fputs(line, stderr);
                        fclose(f);
                }
                return -1;
        }
        cpu_pid = dreamd_d.pid;
        snprintf(dreamd_addr, sizeof(dreamd_addr), "%s", dreamd_d.addr);
        return 0;
}

static int connect_client(struct dream_client **ret)
{
        struct dream_connect_opts o = DREAM_INIT(struct dream_connect_opts);
        int r;

        dream_connect_opts_default(&o);
        o.io_timeout_ms = 300000; /* a seal of 3M rows may take a while */
        o.client_name = "bench_ingest";
        r = dream_connect(dreamd_addr, &o, ret);
        if (r < 0)
                return r;
        r = dream_hello(*ret, NULL, NULL);
        if (r < 0) {
                dream_close(*ret);
                *ret = NULL;
        }
        return r;
}

/* ---- input ------------------------------------------------------------------- */

static int load_range(const char *path, off_t off, size_t len, uint8_t *dst)
{
        int fd = open(path, O_RDONLY);
        size_t done = 0;

        if (fd < 0)
                return -1;
        while (done < len) {
                ssize_t n = pread(fd, dst + done, len - done, off + (off_t)done);
                if (n <= 0) {
                        close(fd);
                        return -1;
                }
                done += (size_t)n;
        }
        close(fd);
        return 0;
}

static enum dream_kind kind_of(enum gd_kind k)
{
        return k == GD_INT ? DREAM_KIND_INT : k == GD_DEC ? DREAM_KIND_DECIMAL : DREAM_KIND_F64;
}

/* ---- one ingesting client ----------------------------------------------------- */

struct job {
        /* in */
        const char *path;
        size_t header_len; /* bytes of the header line, newline included */
        off_t off;         /* the part's first byte (after the header) */
        size_t len;        /* and its length */
        char dataset[64];
        const char *label;
        uint64_t id_base;
        int flush; /* seal at the end */
        /* out */
        int rc;
        uint64_t rows;
        double t_start, t_parsed, t_sent, t_done;
        double *lat; /* seconds, one per request */
        size_t n_lat;
};

static int create_dataset(struct dream_client *c, const char *name, const struct gd_table *t)
{
        struct dream_column cols[256];
        struct dream_schema s = DREAM_INIT(struct dream_schema);

        if (t->n_cols > 256)
                return DREAM_E_INVAL;
        for (uint32_t j = 0; j < t->n_cols; j++) {
                cols[j].name = t->cols[j].name;
                cols[j].kind = kind_of(t->cols[j].kind);
                cols[j].scale = t->cols[j].kind == GD_DEC ? t->cols[j].scale : 0;
        }
        s.cols = cols;
        s.n_cols = t->n_cols;
        s.target = t->target >= 0 ? t->cols[t->target].name : NULL;
        s.task = t->target < 0                       ? DREAM_TASK_NONE
                 : t->task == GD_TASK_CLASSIFICATION ? DREAM_TASK_CLASSIFICATION
                                                     : DREAM_TASK_REGRESSION;
        return dream_dataset_create(c, name, &s);
}

static void *run_job(void *arg)
{
        struct job *j = arg;
        struct dream_client *c = NULL;
        struct gd_table *t = NULL;
        struct read_opts ro;
        struct read_error re;
        struct dream_values vals[256];
        uint8_t *buf = NULL;
        uint64_t per_block, n_blocks, next = 0;
        uint64_t req[WINDOW];
        double sent_at[WINDOW];
        uint32_t head = 0, n_win = 0;
        int r;

        j->rc = -1;
        j->t_start = now();
        r = connect_client(&c);
        if (r < 0) {
                die("cannot connect to dreamd at", dreamd_addr, r);
                goto out;
        }
        buf = malloc(j->header_len + j->len + 1);
        if (!buf || load_range(j->path, 0, j->header_len, buf) < 0 ||
            load_range(j->path, j->off, j->len, buf + j->header_len) < 0) {
                die("cannot read", j->path, 0);
                goto out;
        }
        read_opts_default(&ro);
        ro.label = j->label;
        r = read_csv(buf, j->header_len + j->len, &ro, &re, &t);
        free(buf);
        buf = NULL;
        if (r < 0) {
                fprintf(stderr, "bench_ingest: %s: line %llu: %s\n", j->path,
                        (unsigned long long)re.line, re.msg);
                goto out;
        }
        if (t->n_cols > 256) {
                die("too many columns in", j->path, 0);
                goto out;
        }
        r = create_dataset(c, j->dataset, t);
        if (r < 0 && r != DREAM_E_EXISTS) {
                die("cannot create dataset", j->dataset, r);
                goto out;
        }
        for (uint32_t k = 0; k < t->n_cols; k++) {
                if (t->cols[k].kind != GD_F64)
                        continue;
                for (uint64_t i = 0; i < t->n_rows; i++) {
                        double d = gd_key_to_f64(t->cols[k].v[i]);
                        memcpy(&t->cols[k].v[i], &d, sizeof(d));
                }
        }
        j->t_parsed = now();

        per_block = BLOCK_BYTES;
        if (per_block > dream_max_frame(c) / 2)
                per_block = dream_max_frame(c) / 2;
        per_block /= (uint64_t)t->n_cols * 8;
        if (per_block > BLOCK_ROWS)
                per_block = BLOCK_ROWS;
        if (per_block == 0)
                per_block = 1;
        n_blocks = (t->n_rows + per_block - 1) / per_block;
        j->lat = calloc(n_blocks ? n_blocks : 1, sizeof(double));
        if (!j->lat)
                goto out;
        while (next < n_blocks || n_win > 0) {
                if (next < n_blocks && n_win < WINDOW) {
                        uint64_t first = next * per_block;
                        uint64_t count =
                            t->n_rows - first < per_block ? t->n_rows - first : per_block;
                        struct dream_rows rows = {(uint32_t)count, t->n_cols, vals};
                        uint32_t slot = (head + n_win) % WINDOW;

                        for (uint32_t k = 0; k < t->n_cols; k++) {
                                vals[k].kind = kind_of(t->cols[k].kind);
                                vals[k].scale = t->cols[k].kind == GD_DEC ? t->cols[k].scale : 0;
                                vals[k].v = t->cols[k].v + first;
                        }
                        sent_at[slot] = now();
                        r = dream_ingest_send(c, j->dataset, j->id_base + next, &rows, &req[slot]);
                        if (r < 0) {
                                die("ingest_send into", j->dataset, r);
                                goto out;
                        }
                        n_win++;
                        next++;
                        continue;
                }
                struct dream_ingest_ack ack = DREAM_INIT(struct dream_ingest_ack);
                r = dream_ingest_wait(c, req[head], &ack);
                if (r < 0) {
                        die("ingest into", j->dataset, r);
                        goto out;
                }
                j->lat[j->n_lat++] = now() - sent_at[head];
                j->rows += ack.rows;
                head = (head + 1) % WINDOW;
                n_win--;
        }
        j->t_sent = now();
        if (j->flush) {
                r = dream_flush(c, j->dataset, NULL);
                if (r < 0) {
                        die("flush of", j->dataset, r);
                        goto out;
                }
        }
        j->t_done = now();
        j->rc = 0;
out:
        free(buf);
        gd_table_free(t);
        dream_close(c);
        return NULL;
}

/* ---- figures ------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
        size_t i;

        if (n == 0)
                return 0;
        i = (size_t)(p * (double)(n - 1) + 0.5);
        return v[i < n ? i : n - 1];
}

static void print_lat(const char *key, double *v, size_t n)
{
        qsort(v, n, sizeof(*v), cmp_double);
        printf("%s_p50_ms %.3f\n", key, pct(v, n, 0.50) * 1e3);
        printf("%s_p99_ms %.3f\n", key, pct(v, n, 0.99) * 1e3);
        printf("%s_max_ms %.3f\n", key, n ? v[n - 1] * 1e3 : 0.0);
        printf("%s_requests %zu\n", key, n);
}

/* Split the CSV's body into n line-aligned parts. */
static int split(const char *path, size_t size, size_t header_len, int n, struct job *jobs)
{
        size_t start = header_len;

        for (int k = 0; k < n; k++) {
                size_t end = k == n - 1
                                 ? size
                                 : header_len + (size - header_len) * (size_t)(k + 1) / (size_t)n;
                if (end < start)
                        end = start;
                if (k < n - 1) { /* move end after the next newline */
                        char b[4096];
                        while (end < size) {
                                size_t m = size - end < sizeof(b) ? size - end : sizeof(b);
                                char *nl;
                                if (load_range(path, (off_t)end, m, (uint8_t *)b) < 0)
                                        return -1;
                                nl = memchr(b, '\n', m);
                                if (nl) {
                                        end += (size_t)(nl - b) + 1;
                                        break;
                                }
                                end += m;
                        }
                }
                jobs[k].off = (off_t)start;
                jobs[k].len = end - start;
                start = end;
        }
        return 0;
}

/* Serial latency probe: SERIAL_REQS blocking ingests of SERIAL_ROWS rows. */
static int serial_latency(double *lat)
{
        struct dream_client *c = NULL;
        struct dream_column cols[9];
        struct dream_schema s = DREAM_INIT(struct dream_schema);
        struct dream_values vals[9];
        int64_t *v;
        char names[9][8];
        int r;

        r = connect_client(&c);
        if (r < 0)
                return r;
        v = calloc((size_t)SERIAL_ROWS * 9, sizeof(*v));
        if (!v) {
                dream_close(c);
                return DREAM_E_NOMEM;
        }
        for (uint32_t k = 0; k < 9; k++) {
                snprintf(names[k], sizeof(names[k]), "c%u", k);
                cols[k] = (struct dream_column){names[k], DREAM_KIND_DECIMAL, 2};
                vals[k] = (struct dream_values){DREAM_KIND_DECIMAL, 2, v + (size_t)k * SERIAL_ROWS};
                for (uint32_t i = 0; i < SERIAL_ROWS; i++)
                        v[(size_t)k * SERIAL_ROWS + i] = (int64_t)((i * 2654435761u + k) % 100000);
        }
        s.cols = cols;
        s.n_cols = 9;
        r = dream_dataset_create(c, "serial", &s);
        for (uint32_t q = 0; r == 0 && q < SERIAL_REQS; q++) {
                struct dream_rows rows = {SERIAL_ROWS, 9, vals};
                double t0 = now();
                r = dream_ingest(c, "serial", 1000 + q, &rows, NULL);
                lat[q] = now() - t0;
        }
        free(v);
        dream_close(c);
        return r;
}

struct serve {
        uint64_t samples, batches;
        double sink;
        double t_first; /* first Batch received */
};

static int on_batch(void *arg, const struct dream_batch *b)
{
        struct serve *s = arg;
        size_t n = (size_t)b->n * b->d;
        float acc = 0;

        for (size_t i = 0; i < n; i++) /* touch every feature, as a trainer would */
                acc += b->features[i];
        s->sink += acc;
        if (s->batches == 0)
                s->t_first = now();
        s->samples += b->n;
        s->batches++;
        return 0;
}

/* CPU seconds (user + system) dreamd has used so far, or -1 when unknown:
 * on a shared machine a steadier figure than the wall clock. */
static double dreamd_cpu(void)
{
        char path[64], buf[1024], *p;
        unsigned long ut, st;
        FILE *f;
        size_t n;

        if (cpu_pid <= 0)
                return -1;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)cpu_pid);
        f = fopen(path, "r");
        if (!f)
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')'); /* the command may hold spaces */
        if (!p ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                return -1;
        return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int serve_mode(const char *ds, enum dream_batch_mode mode, const char *name, int pass,
                      double *ret_rate)
{
        struct dream_client *c = NULL;
        struct dream_batch_opts o = DREAM_INIT(struct dream_batch_opts);
        struct serve s = {0};
        double t0, el, cpu0, cpu1;
        int r;

        r = connect_client(&c);
        if (r < 0)
                return r;
        dream_batch_opts_default(&o);
        o.mode = mode;
        o.batch_size = BATCH_SIZE;
        if (mode != DREAM_BATCH_ROWS)
                o.budget_fraction = BUDGET;
        o.seed = 7;
        cpu0 = dreamd_cpu();
        t0 = now();
        r = dream_get_batches(c, ds, &o, on_batch, &s);
        el = now() - t0;
        cpu1 = dreamd_cpu();
        if (r < 0) {
                fprintf(stderr, "bench_ingest: get_batches %s: %s (%s)\n", name, dream_strerror(r),
                        dream_last_error(c));
                dream_close(c);
                return r;
        }
        dream_close(c);
        *ret_rate = el > 0 ? (double)s.samples / el : 0;
        printf("batches_%s_%s_samples %llu\n", name, pass ? "warm" : "cold",
               (unsigned long long)s.samples);
        printf("batches_%s_%s_seconds %.3f\n", name, pass ? "warm" : "cold", el);
        printf("batches_%s_%s_first_batch_seconds %.3f\n", name, pass ? "warm" : "cold",
               s.t_first - t0);
        printf("batches_%s_%s_samples_per_s %.0f\n", name, pass ? "warm" : "cold", *ret_rate);
        if (cpu0 >= 0 && cpu1 >= 0)
                printf("batches_%s_%s_dreamd_cpu_seconds %.2f\n", name, pass ? "warm" : "cold",
                       cpu1 - cpu0);
        return 0;
}

static const char usage[] =
    "usage: bench_ingest [-d DREAMD] [-c CLIENTS] [-l LABEL] [-s] [-S ROWS] CSV\n"
    "  -d DREAMD   dreamd executable (default: BUILD/server/dreamd)\n"
    "  -c N        concurrent clients of the second run (default 8, at most 64)\n"
    "  -l LABEL    target column (default: none, as `dream ingest`)\n"
    "  -s          the clients of the second run share one dataset\n"
    "  -S ROWS     pass --seal-rows ROWS to dreamd (default: dreamd's own)\n"
    "  -a ADDR     use the dreamd listening at ADDR (none is started)\n"
    "  -B DATASET  only serve batches from DATASET (with -a; no CSV needed)\n"
    "  -P PASSES   passes of the batch serving (default 2: cold, warm; 0: none)\n"
    "  -p PID      with -a: the daemon's pid, to report its CPU time\n"
    "  -M MODES    with -B: the modes served, e.g. sample (default rows,condensed,sample)\n";

int main(int argc, char **argv)
{
        char dreamd[PATH_MAX + 32] = "";
        const char *csv, *label = NULL, *seal_rows = NULL, *batch_only = NULL;
        const char *modes = "rows,condensed,sample";
        int n_clients = 8, shared = 0, opt, rc = 1, passes = 2;
        struct stat st;
        size_t header_len = 0;
        struct job one = {0}, *many = NULL;
        pthread_t th[MAX_CLIENTS];
        double lat_serial[SERIAL_REQS];
        double cpu_a, cpu_b;
        double e1, rate1 = 0, mb1, rate8 = 0, e8, rows_rate = 0, cond_rate = 0, samp_rate = 0;
        uint64_t rows8 = 0;

        while ((opt = getopt(argc, argv, "d:c:l:sS:a:B:P:p:M:h")) != -1) {
                switch (opt) {
                case 'M':
                        modes = optarg;
                        break;
                case 'p':
                        cpu_pid = (pid_t)atoi(optarg);
                        break;
                case 'a':
                        snprintf(dreamd_addr, sizeof(dreamd_addr), "%s", optarg);
                        break;
                case 'B':
                        batch_only = optarg;
                        break;
                case 'P':
                        passes = atoi(optarg);
                        if (passes < 0 || passes > 100) {
                                fputs(usage, stderr);
                                return 2;
                        }
                        break;
                case 'd':
                        snprintf(dreamd, sizeof(dreamd), "%s", optarg);
                        break;
                case 'c':
                        n_clients = atoi(optarg);
                        if (n_clients < 1 || n_clients > MAX_CLIENTS) {
                                fputs(usage, stderr);
                                return 2;
                        }
                        break;
                case 'l':
                        label = optarg;
                        break;
                case 's':
                        shared = 1;
                        break;
                case 'S':
                        seal_rows = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (batch_only && dreamd_addr[0]) {
                signal(SIGPIPE, SIG_IGN);
                for (int pass = 0; pass < passes; pass++) {
                        double r1 = 0, r2 = 0, r3 = 0;
                        if ((strstr(modes, "rows") &&
                             serve_mode(batch_only, DREAM_BATCH_ROWS, "rows", pass, &r1) < 0) ||
                            (strstr(modes, "condensed") &&
                             serve_mode(batch_only, DREAM_BATCH_CONDENSED, "condensed", pass, &r2) <
                                 0) ||
                            (strstr(modes, "sample") &&
                             serve_mode(batch_only, DREAM_BATCH_SAMPLE, "sample", pass, &r3) < 0))
                                return 1;
                }
                return 0;
        }
        if (argc - optind != 1 || batch_only) {
                fputs(usage, stderr);
                return 2;
        }
        csv = argv[optind];
        if (!dreamd_addr[0] && !dreamd[0] && find_dreamd(dreamd, sizeof(dreamd)) < 0) {
                fprintf(stderr, "bench_ingest: no dreamd next to this build; give -d DREAMD\n");
                return 2;
        }
        if (stat(csv, &st) < 0 || st.st_size <= 0) {
                fprintf(stderr, "bench_ingest: cannot stat %s\n", csv);
                return 2;
        }
        {
                char b[65536];
                size_t m = (size_t)st.st_size < sizeof(b) ? (size_t)st.st_size : sizeof(b);
                char *nl;
                if (load_range(csv, 0, m, (uint8_t *)b) < 0 || !(nl = memchr(b, '\n', m))) {
                        fprintf(stderr, "bench_ingest: %s: no header line\n", csv);
                        return 2;
                }
                header_len = (size_t)(nl - b) + 1;
        }
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);
        if (!dreamd_addr[0] && start_dreamd(dreamd, seal_rows) < 0)
                goto out;
        printf("dreamd %s\naddress %s\nseal_rows %s\ncsv %s\ncsv_bytes %lld\n", dreamd, dreamd_addr,
               seal_rows ? seal_rows : "default", csv, (long long)st.st_size);
        fflush(stdout);

        /* 1. one client, end to end. */
        one.path = csv;
        one.header_len = header_len;
        one.off = (off_t)header_len;
        one.len = (size_t)st.st_size - header_len;
        snprintf(one.dataset, sizeof(one.dataset), "one");
        one.label = label;
        one.id_base = 1ull << 32;
        one.flush = 1;
        cpu_a = dreamd_cpu();
        run_job(&one);
        cpu_b = dreamd_cpu();
        if (one.rc < 0)
                goto out;
        e1 = one.t_done - one.t_start;
        rate1 = (double)one.rows / e1;
        mb1 = (double)st.st_size / e1 / 1e6;
        printf("ingest_1client_rows %llu\n", (unsigned long long)one.rows);
        printf("ingest_1client_seconds %.3f\n", e1);
        printf("ingest_1client_parse_seconds %.3f\n", one.t_parsed - one.t_start);
        printf("ingest_1client_send_seconds %.3f\n", one.t_sent - one.t_parsed);
        printf("ingest_1client_seal_seconds %.3f\n", one.t_done - one.t_sent);
        printf("ingest_1client_rows_per_s %.0f\n", rate1);
        if (cpu_a >= 0 && cpu_b >= 0)
                printf("ingest_1client_dreamd_cpu_seconds %.2f\n", cpu_b - cpu_a);
        printf("ingest_1client_csv_mb_per_s %.1f\n", mb1);
        printf("ingest_1client_send_only_rows_per_s %.0f\n",
               (double)one.rows / (one.t_sent - one.t_parsed));
        printf("target_ingest_1client_rows_per_s %.0f\n", TARGET_1C);
        print_lat("ack_1client_pipelined", one.lat, one.n_lat);
        fflush(stdout);

        /* 3b. serial latency on an idle server. */
        if (serial_latency(lat_serial) < 0)
                fprintf(stderr, "bench_ingest: serial latency probe failed\n");
        else
                print_lat("ack_serial_1024rows", lat_serial, SERIAL_REQS);
        fflush(stdout);

        /* 4. batch serving from the sealed dataset of run 1. */
        for (int pass = 0; pass < passes; pass++) {
                double r1 = 0, r2 = 0, r3 = 0;
                if (serve_mode("one", DREAM_BATCH_ROWS, "rows", pass, &r1) < 0 ||
                    serve_mode("one", DREAM_BATCH_CONDENSED, "condensed", pass, &r2) < 0 ||
                    serve_mode("one", DREAM_BATCH_SAMPLE, "sample", pass, &r3) < 0)
                        goto out;
                if (r1 > rows_rate)
                        rows_rate = r1;
                if (r2 > cond_rate)
                        cond_rate = r2;
                if (r3 > samp_rate)
                        samp_rate = r3;
        }
        printf("target_batches_rows_samples_per_s %.0f\n", TARGET_ROWS);
        fflush(stdout);

        /* 2. n clients at once. */
        many = calloc((size_t)n_clients, sizeof(*many));
        if (!many || split(csv, (size_t)st.st_size, header_len, n_clients, many) < 0)
                goto out;
        for (int k = 0; k < n_clients; k++) {
                many[k].path = csv;
                many[k].header_len = header_len;
                if (shared)
                        snprintf(many[k].dataset, sizeof(many[k].dataset), "many");
                else
                        snprintf(many[k].dataset, sizeof(many[k].dataset), "many%d", k);
                many[k].label = label;
                many[k].id_base = (uint64_t)(k + 2) << 32;
                many[k].flush = !shared;
        }
        {
                double t0 = now(), *all, c0 = dreamd_cpu();
                size_t n_all = 0;
                int ok = 1;

                for (int k = 0; k < n_clients; k++)
                        if (pthread_create(&th[k], NULL, run_job, &many[k]) != 0) {
                                fprintf(stderr, "bench_ingest: pthread_create failed\n");
                                n_clients = k;
                                ok = 0;
                                break;
                        }
                for (int k = 0; k < n_clients; k++)
                        pthread_join(th[k], NULL);
                for (int k = 0; k < n_clients; k++) {
                        ok &= many[k].rc == 0;
                        rows8 += many[k].rows;
                        n_all += many[k].n_lat;
                }
                if (ok && shared) {
                        struct dream_client *c = NULL;
                        int r = connect_client(&c);
                        if (r == 0)
                                r = dream_flush(c, "many", NULL);
                        dream_close(c);
                        if (r < 0) {
                                die("flush of", "many", r);
                                ok = 0;
                        }
                }
                e8 = now() - t0;
                if (!ok)
                        goto out;
                rate8 = (double)rows8 / e8;
                printf("ingest_%dclients_dataset %s\n", n_clients, shared ? "shared" : "one_each");
                printf("ingest_%dclients_rows %llu\n", n_clients, (unsigned long long)rows8);
                printf("ingest_%dclients_seconds %.3f\n", n_clients, e8);
                printf("ingest_%dclients_rows_per_s %.0f\n", n_clients, rate8);
                if (c0 >= 0)
                        printf("ingest_%dclients_dreamd_cpu_seconds %.2f\n", n_clients,
                               dreamd_cpu() - c0);
                printf("ingest_%dclients_csv_mb_per_s %.1f\n", n_clients,
                       (double)st.st_size / e8 / 1e6);
                printf("ingest_%dclients_ratio_to_1client %.2f\n", n_clients, rate8 / rate1);
                printf("target_ingest_%dclients_ratio %.2f\n", n_clients, TARGET_RATIO);
                all = calloc(n_all ? n_all : 1, sizeof(double));
                if (all) {
                        n_all = 0;
                        for (int k = 0; k < n_clients; k++) {
                                memcpy(all + n_all, many[k].lat, many[k].n_lat * sizeof(double));
                                n_all += many[k].n_lat;
                        }
                        char key[64];
                        snprintf(key, sizeof(key), "ack_%dclients_pipelined", n_clients);
                        print_lat(key, all, n_all);
                        free(all);
                }
        }

        printf("\nsummary (loopback, %s):\n", dreamd_addr);
        printf("  1 client end to end:  %9.0f rows/s, %6.1f MB/s CSV   target >= %.0f rows/s: %s\n",
               rate1, mb1, TARGET_1C, rate1 >= TARGET_1C ? "met" : "NOT met");
        printf("  %d clients:            %9.0f rows/s, %.2fx one client  target >= %.1fx: %s\n",
               n_clients, rate8, rate8 / rate1, TARGET_RATIO,
               rate8 / rate1 >= TARGET_RATIO ? "met" : "NOT met");
        printf("  rows batches:         %9.0f samples/s (best pass)  target >= %.0f: %s\n",
               rows_rate, TARGET_ROWS, rows_rate >= TARGET_ROWS ? "met" : "NOT met");
        printf("  condensed batches:    %9.0f samples/s; sample batches: %.0f samples/s\n",
               cond_rate, samp_rate);
        rc = 0;
out:
        if (many)
                for (int k = 0; k < n_clients; k++)
                        free(many[k].lat);
        free(many);
        free(one.lat);
        stop_dreamd();
        return rc;
}
