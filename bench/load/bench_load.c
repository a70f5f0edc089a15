/* Load benchmark over loopback (issue 7, items 5 and 6; prints figures, never
 * a pass/fail test).
 *
 *   bench_load [-d DREAMD] [-t SECONDS] [-i INGESTERS] [-b STREAMERS]
 *              [-j TRAINERS] [-r ROWS] mixed
 *   bench_load [-d DREAMD] [-n SLOW_CONNS] [-q REQUESTS] slow
 *
 * Starts a real dreamd (DREAMD, default BUILD/server/dreamd next to this
 * executable's BUILD/bench/load/) on 127.0.0.1 port 0 with a temporary data
 * directory (removed at the end).
 *
 * mixed (default 60 s, 64 ingesters, 16 streamers, 2 trainers): each
 *   ingester sends 1,000-row blocks (9 columns) one at a time into one of 8
 *   datasets; each streamer reads GetBatches (rows mode, 1,024 rows, 16
 *   batches per request, a new seed each time) from a 200,000-row dataset;
 *   each trainer submits Train (softmax, condensed, 5 epochs) through
 *   libdream's raw dream_call and polls JobStatus until the job ends, then
 *   submits the next. Prints, per operation, the count, throughput and
 *   p50/p99/p99.9 latency, the errors by code (BUSY counted apart), and
 *   dreamd's peak RSS (VmHWM).
 * slow: the latency of a normal client (list + describe + a 1,000-row ingest,
 *   REQUESTS times, default 1,000) alone, then again while SLOW_CONNS
 *   (default 1,000) connections dribble one byte every 2 s and 100 more sit
 *   idle (deadlines raised so that they stay), and the ratio.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dream/client.h"
#include "tests/harness/daemon.h"
#include "proto/dream.pb-c.h"

#define N_FEAT     8
#define N_COLS     (N_FEAT + 1)
#define BLOCK_ROWS 1000u
#define N_DATASETS 8

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- dreamd ---------------------------------------------------------------- */

static struct tdaemon dreamd_d; /* the dreamd started here (tests/harness) */
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
        char self[PATH_MAX - 64];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash;

        if (n <= 0)
                return -1;
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (!slash)
                return -1;
        *slash = '\0'; /* BUILD/bench/load */
        snprintf(out, size, "%s/../../server/dreamd", self);
        return access(out, X_OK);
}

/* args: extra dreamd options, NULL-terminated. */
static int start_dreamd(const char *exe, const char *const *args)
{
        const char *all[40] = {"--log-level", "warn"};
        char log[sizeof(dreamd_d.dir) + 16];
        struct td_opts o = {.args = all, .log_path = log};
        int n = 2, r;

        for (int i = 0; args && args[i] && n < 39; i++)
                all[n++] = args[i];
        all[n] = NULL;
        setenv("DREAMD", exe, 1);
        td_mkdir(&dreamd_d, "/tmp/bench_load");
        o.data_dir = dreamd_d.data_dir;
        snprintf(log, sizeof(log), "%s/dreamd.log", dreamd_d.dir);
        r = td_launch(&dreamd_d, &o);
        if (r != 0) {
                fprintf(stderr, "bench_load: dreamd did not start (%d; log: %s)\n", r, log);
                return -1;
        }
        snprintf(dreamd_addr, sizeof(dreamd_addr), "%s", dreamd_d.addr);
        return 0;
}

static long dreamd_status_kb(const char *key)
{
        return td_status_kb(&dreamd_d, key);
}

/* ---- statistics -------------------------------------------------------------- */

struct lat {
        double *v;
        size_t n, cap;
        uint64_t rows;
        uint64_t errors, busy;
        char first_error[200];
};

static void lat_add(struct lat *l, double s)
{
        if (l->n == l->cap) {
                size_t nc = l->cap ? l->cap * 2 : 1024;
                double *nv = realloc(l->v, nc * sizeof(double));
                if (!nv)
                        return;
                l->v = nv;
                l->cap = nc;
        }
        l->v[l->n++] = s;
}

static void lat_error(struct lat *l, int r, const char *msg)
{
        if (r == DREAM_E_BUSY) {
                l->busy++;
                return;
        }
        if (!l->errors)
                snprintf(l->first_error, sizeof(l->first_error), "%s: %s", dream_errname(r),
                         msg ? msg : "");
        l->errors++;
}

static void lat_merge(struct lat *into, const struct lat *from)
{
        for (size_t i = 0; i < from->n; i++)
                lat_add(into, from->v[i]);
        into->rows += from->rows;
        into->busy += from->busy;
        if (!into->errors && from->errors)
                memcpy(into->first_error, from->first_error, sizeof(into->first_error));
        into->errors += from->errors;
}

static int cmp_d(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double pct(const struct lat *l, double p)
{
        size_t i;
        if (!l->n)
                return 0;
        i = (size_t)(p * (double)(l->n - 1) + 0.5);
        return l->v[i];
}

static void lat_print(const char *name, struct lat *l, double seconds, const char *unit)
{
        qsort(l->v, l->n, sizeof(double), cmp_d);
        printf("%-12s %8zu ops %9.1f ops/s", name, l->n, (double)l->n / seconds);
        if (l->rows)
                printf(" %10.0f %s/s", (double)l->rows / seconds, unit);
        printf("  p50 %8.2f ms  p99 %8.2f ms  p99.9 %8.2f ms  errors %llu  busy %llu\n",
               pct(l, 0.5) * 1e3, pct(l, 0.99) * 1e3, pct(l, 0.999) * 1e3,
               (unsigned long long)l->errors, (unsigned long long)l->busy);
        if (l->errors)
                printf("%-12s first error: %s\n", "", l->first_error);
}

/* ---- clients -------------------------------------------------------------------- */

static int connect_one(struct dream_client **ret)
{
        struct dream_connect_opts o = DREAM_INIT(struct dream_connect_opts);
        struct dream_client *c = NULL;
        int r;

        dream_connect_opts_default(&o);
        o.io_timeout_ms = 120000;
        o.client_name = "bench_load";
        r = dream_connect(dreamd_addr, &o, &c);
        if (r == 0)
                r = dream_hello(c, NULL, NULL);
        if (r < 0) {
                dream_close(c);
                return r;
        }
        *ret = c;
        return 0;
}

static int create_ds(struct dream_client *c, const char *name)
{
        struct dream_column cols[N_COLS];
        static char names[N_COLS][8];
        struct dream_schema s = DREAM_INIT(struct dream_schema);

        for (int j = 0; j < N_COLS; j++) {
                if (j < N_FEAT)
                        snprintf(names[j], sizeof(names[j]), "f%d", j);
                else
                        snprintf(names[j], sizeof(names[j]), "label");
                cols[j].name = names[j];
                cols[j].kind = j < N_FEAT ? DREAM_KIND_DECIMAL : DREAM_KIND_INT;
                cols[j].scale = j < N_FEAT ? 2 : 0;
        }
        s.cols = cols;
        s.n_cols = N_COLS;
        s.target = "label";
        s.task = DREAM_TASK_CLASSIFICATION;
        s.class_count = 0;
        return dream_dataset_create(c, name, &s);
}

struct block {
        int64_t v[N_COLS][BLOCK_ROWS];
        struct dream_values cols[N_COLS];
        struct dream_rows rows;
};

static uint64_t rnd(uint64_t *s)
{
        uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
}

/* A learnable block: label = argmax-ish of two features, 4 classes. */
static void block_fill(struct block *b, uint64_t *seed)
{
        for (uint32_t i = 0; i < BLOCK_ROWS; i++) {
                int64_t f0 = (int64_t)(rnd(seed) % 2000) - 1000;
                int64_t f1 = (int64_t)(rnd(seed) % 2000) - 1000;
                for (int j = 0; j < N_FEAT; j++)
                        b->v[j][i] = j == 0 ? f0 : j == 1 ? f1 : (int64_t)(rnd(seed) % 500);
                b->v[N_FEAT][i] = (f0 > 0) * 2 + (f1 > 0);
        }
        for (int j = 0; j < N_COLS; j++)
                b->cols[j] = (struct dream_values){j < N_FEAT ? DREAM_KIND_DECIMAL : DREAM_KIND_INT,
                                                   j < N_FEAT ? 2u : 0u, b->v[j]};
        b->rows = (struct dream_rows){BLOCK_ROWS, N_COLS, b->cols};
}

static volatile int stop_all;

struct worker {
        pthread_t th;
        int idx;
        struct lat lat;
        struct lat lat2; /* trainers: submit latency */
        int train_unavailable;
        char train_msg[200];
};

static void *ingester(void *arg)
{
        struct worker *w = arg;
        struct dream_client *c = NULL;
        struct block *b = malloc(sizeof(*b));
        uint64_t seed = 1000 + (uint64_t)w->idx, bid = 0;
        char ds[32];
        int r = DREAM_E_NOMEM;

        snprintf(ds, sizeof(ds), "ingest%d", w->idx % N_DATASETS);
        if (!b || (r = connect_one(&c)) < 0) {
                lat_error(&w->lat, r, "connect");
                free(b);
                return NULL;
        }
        while (!stop_all) {
                double t0;
                block_fill(b, &seed);
                t0 = now();
                r = dream_ingest(c, ds, ((uint64_t)(w->idx + 1) << 32) | ++bid, &b->rows, NULL);
                if (r < 0) {
                        lat_error(&w->lat, r, dream_last_error(c));
                        if (r != DREAM_E_BUSY && r > -5000) /* transport: reconnect */
                                break;
                        continue;
                }
                lat_add(&w->lat, now() - t0);
                w->lat.rows += BLOCK_ROWS;
        }
        dream_close(c);
        free(b);
        return NULL;
}

struct stream_state {
        struct worker *w;
        double last;
};

static int on_batch(void *arg, const struct dream_batch *b)
{
        struct stream_state *s = arg;
        double t = now();

        lat_add(&s->w->lat, t - s->last);
        s->w->lat.rows += b->n;
        s->last = t;
        return stop_all ? 1 : 0;
}

static void *streamer(void *arg)
{
        struct worker *w = arg;
        struct dream_client *c = NULL;
        struct dream_batch_opts o = DREAM_INIT(struct dream_batch_opts);
        uint64_t seed = (uint64_t)w->idx * 7919;
        int r;

        if ((r = connect_one(&c)) < 0) {
                lat_error(&w->lat, r, "connect");
                return NULL;
        }
        while (!stop_all) {
                struct stream_state s = {w, now()};
                dream_batch_opts_default(&o);
                o.mode = DREAM_BATCH_ROWS;
                o.batch_size = 1024;
                o.seed = seed++;
                o.max_batches = 16;
                r = dream_get_batches(c, "stream", &o, on_batch, &s);
                if (r < 0 && r != 1) {
                        lat_error(&w->lat, r, dream_last_error(c));
                        if (r != DREAM_E_BUSY && r > -5000)
                                break;
                }
        }
        dream_close(c);
        return NULL;
}

/* ---- training through raw requests --------------------------------------------- */

struct reply {
        int code;
        uint64_t job_id;
        int state;
        char msg[200];
};

static int on_reply(void *arg, const void *resp, size_t len, int more)
{
        struct reply *rp = arg;
        Dream__V1__Response *r = dream__v1__response__unpack(NULL, len, resp);

        (void)more;
        if (!r)
                return 0;
        rp->code = (int)r->code;
        if (r->message)
                snprintf(rp->msg, sizeof(rp->msg), "%s", r->message);
        if (r->body_case == DREAM__V1__RESPONSE__BODY_TRAIN)
                rp->job_id = r->train->job_id;
        if (r->body_case == DREAM__V1__RESPONSE__BODY_JOB_STATUS)
                rp->state = (int)r->job_status->state;
        dream__v1__response__free_unpacked(r, NULL);
        return 0;
}

static int raw_call(struct dream_client *c, Dream__V1__Request *req, struct reply *rp)
{
        uint8_t buf[512];
        size_t n = dream__v1__request__get_packed_size(req);

        if (n > sizeof(buf))
                return DREAM_E_LIMIT;
        dream__v1__request__pack(req, buf);
        memset(rp, 0, sizeof(*rp));
        return dream_call(c, buf, n, on_reply, rp);
}

static void *trainer(void *arg)
{
        struct worker *w = arg;
        struct dream_client *c = NULL;
        int r;

        if ((r = connect_one(&c)) < 0) {
                lat_error(&w->lat, r, "connect");
                return NULL;
        }
        while (!stop_all) {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Train tr = DREAM__V1__TRAIN__INIT;
                struct reply rp;
                double t0 = now();

                tr.dataset = "stream";
                tr.model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX;
                tr.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED;
                tr.epochs = 5;
                tr.seed = (uint64_t)w->idx;
                req.body_case = DREAM__V1__REQUEST__BODY_TRAIN;
                req.train = &tr;
                r = raw_call(c, &req, &rp);
                if (r < 0) {
                        if (strstr(dream_last_error(c), "not implemented")) {
                                w->train_unavailable = 1;
                                snprintf(w->train_msg, sizeof(w->train_msg), "%s",
                                         dream_last_error(c));
                                break;
                        }
                        lat_error(&w->lat, r, dream_last_error(c));
                        if (r != DREAM_E_BUSY && r > -5000)
                                break;
                        usleep(100000);
                        continue;
                }
                lat_add(&w->lat2, now() - t0);
                /* Poll until the job ends. */
                for (;;) {
                        Dream__V1__Request q = DREAM__V1__REQUEST__INIT;
                        Dream__V1__JobStatus js = DREAM__V1__JOB_STATUS__INIT;
                        struct reply st;
                        js.job_id = rp.job_id;
                        q.body_case = DREAM__V1__REQUEST__BODY_JOB_STATUS;
                        q.job_status = &js;
                        r = raw_call(c, &q, &st);
                        if (r < 0) {
                                lat_error(&w->lat, r, dream_last_error(c));
                                break;
                        }
                        if (st.state == DREAM__V1__JOB_STATE__JOB_STATE_DONE) {
                                lat_add(&w->lat, now() - t0);
                                break;
                        }
                        if (st.state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED ||
                            st.state == DREAM__V1__JOB_STATE__JOB_STATE_CANCELLED) {
                                lat_error(&w->lat, DREAM_E_INTERNAL, "job failed or cancelled");
                                break;
                        }
                        if (stop_all)
                                break;
                        usleep(50000);
                }
        }
        dream_close(c);
        return NULL;
}

/* ---- mixed --------------------------------------------------------------------- */

static int run_mixed(double seconds, int n_ing, int n_str, int n_tr, uint64_t stream_rows)
{
        struct dream_client *c = NULL;
        struct worker *ws;
        struct block *b = malloc(sizeof(*b));
        struct lat ing = {0}, str = {0}, trn = {0}, sub = {0};
        uint64_t seed = 42;
        int n = n_ing + n_str + n_tr, r, unavailable = 0;
        char msg[200] = "";
        double t0, t1;
        long rss0;

        if (!b || connect_one(&c) < 0)
                return 1;
        r = create_ds(c, "stream");
        for (int i = 0; r == 0 && i < N_DATASETS; i++) {
                char name[32];
                snprintf(name, sizeof(name), "ingest%d", i);
                r = create_ds(c, name);
        }
        for (uint64_t k = 0; r == 0 && k < stream_rows / BLOCK_ROWS; k++) {
                block_fill(b, &seed);
                r = dream_ingest(c, "stream", k + 1, &b->rows, NULL);
        }
        if (r == 0)
                r = dream_flush(c, "stream", NULL);
        if (r < 0) {
                fprintf(stderr, "bench_load: setup: %s (%s)\n", dream_strerror(r),
                        dream_last_error(c));
                return 1;
        }
        dream_close(c);
        free(b);
        rss0 = dreamd_status_kb("VmRSS");
        printf("setup: 'stream' holds %llu rows (sealed); dreamd rss %ld kB\n",
               (unsigned long long)stream_rows, rss0);
        ws = calloc((size_t)n, sizeof(*ws));
        if (!ws)
                return 1;
        t0 = now();
        for (int i = 0; i < n; i++) {
                ws[i].idx = i;
                pthread_create(&ws[i].th, NULL,
                               i < n_ing           ? ingester
                               : i < n_ing + n_str ? streamer
                                                   : trainer,
                               &ws[i]);
        }
        while (now() - t0 < seconds)
                usleep(100000);
        stop_all = 1;
        for (int i = 0; i < n; i++)
                pthread_join(ws[i].th, NULL);
        t1 = now();
        for (int i = 0; i < n; i++) {
                struct lat *into = i < n_ing ? &ing : i < n_ing + n_str ? &str : &trn;
                lat_merge(into, &ws[i].lat);
                if (i >= n_ing + n_str) {
                        lat_merge(&sub, &ws[i].lat2);
                        if (ws[i].train_unavailable) {
                                unavailable++;
                                snprintf(msg, sizeof(msg), "%s", ws[i].train_msg);
                        }
                }
        }
        printf("mixed load: %d ingesters (%u-row blocks, %d datasets), %d streamers (rows mode, "
               "1024-row batches), %d trainers (softmax, condensed, 5 epochs) for %.1f s\n",
               n_ing, BLOCK_ROWS, N_DATASETS, n_str, n_tr, t1 - t0);
        lat_print("ingest", &ing, t1 - t0, "rows");
        lat_print("batch", &str, t1 - t0, "rows");
        if (unavailable == n_tr && n_tr) {
                printf("train        not run: the server answers \"%s\"\n", msg);
        } else {
                lat_print("train-submit", &sub, t1 - t0, "");
                lat_print("train-job", &trn, t1 - t0, "");
        }
        printf("errors total %llu (busy %llu)\n",
               (unsigned long long)(ing.errors + str.errors + trn.errors),
               (unsigned long long)(ing.busy + str.busy + trn.busy));
        printf("dreamd peak rss (VmHWM) %ld kB; rss now %ld kB\n", dreamd_status_kb("VmHWM"),
               dreamd_status_kb("VmRSS"));
        return 0;
}

/* ---- slow ------------------------------------------------------------------------ */

struct probe {
        struct lat list, describe, ingest;
};

static int probe_run(int requests, struct probe *p)
{
        struct dream_client *c = NULL;
        struct block *b = malloc(sizeof(*b));
        uint64_t seed = 9;
        static uint64_t bid = 1;

        memset(p, 0, sizeof(*p));
        if (!b || connect_one(&c) < 0)
                return -1;
        for (int i = 0; i < requests; i++) {
                struct dream_dataset_list *l = NULL;
                struct dream_dataset_info *info = NULL;
                double t0 = now();
                int r = dream_dataset_list(c, &l);
                if (r < 0)
                        lat_error(&p->list, r, dream_last_error(c));
                else
                        lat_add(&p->list, now() - t0);
                dream_dataset_list_free(l);
                t0 = now();
                r = dream_dataset_describe(c, "stream", &info);
                if (r < 0)
                        lat_error(&p->describe, r, dream_last_error(c));
                else
                        lat_add(&p->describe, now() - t0);
                dream_dataset_info_free(info);
                block_fill(b, &seed);
                t0 = now();
                r = dream_ingest(c, "stream", bid++, &b->rows, NULL);
                if (r < 0)
                        lat_error(&p->ingest, r, dream_last_error(c));
                else
                        lat_add(&p->ingest, now() - t0);
        }
        dream_close(c);
        free(b);
        qsort(p->list.v, p->list.n, sizeof(double), cmp_d);
        qsort(p->describe.v, p->describe.n, sizeof(double), cmp_d);
        qsort(p->ingest.v, p->ingest.n, sizeof(double), cmp_d);
        return 0;
}

static int slow_fds[4096];
static int n_slow_fds;

static void *dribbler(void *arg)
{
        (void)arg;
        /* One byte of a 1 MB frame's header, then of its body, every 2 s. */
        static const uint8_t hdr[4] = {0, 0x10, 0, 0};
        int step = 1;

        while (!stop_all) {
                for (int i = 0; i < 20 && !stop_all; i++)
                        usleep(100000);
                for (int i = 0; i < n_slow_fds - 100; i++) {
                        uint8_t byte = step < 4 ? hdr[step] : 0x08;
                        (void)send(slow_fds[i], &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                }
                step++;
        }
        return NULL;
}

static int run_slow(int n_slow, int requests)
{
        struct dream_client *c = NULL;
        struct probe p0, p1;
        struct sockaddr_in a;
        char host[64];
        unsigned port;
        pthread_t th;
        struct rlimit rl;
        int r;

        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (n_slow + 100 > (int)(sizeof(slow_fds) / sizeof(slow_fds[0])) - 8)
                n_slow = (int)(sizeof(slow_fds) / sizeof(slow_fds[0])) - 108;
        if (connect_one(&c) < 0 || create_ds(c, "stream") < 0)
                return 1;
        dream_close(c);
        if (probe_run(50, &p0) < 0) /* warm up */
                return 1;
        if (probe_run(requests, &p0) < 0)
                return 1;
        if (sscanf(dreamd_addr, "%63[^:]:%u", host, &port) != 2)
                return 1;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int i = 0; i < n_slow + 100; i++) {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
                        fprintf(stderr, "bench_load: slow connection %d: %s\n", i, strerror(errno));
                        if (fd >= 0)
                                close(fd);
                        break;
                }
                if (i < n_slow) {
                        uint8_t z = 0;
                        (void)send(fd, &z, 1, MSG_NOSIGNAL);
                }
                slow_fds[n_slow_fds++] = fd;
        }
        pthread_create(&th, NULL, dribbler, NULL);
        usleep(500000);
        r = probe_run(requests, &p1);
        stop_all = 1;
        pthread_join(th, NULL);
        if (r < 0)
                return 1;
        printf("normal client, %d requests of each kind, unloaded vs with %d dribbling + 100 idle "
               "connections open:\n",
               requests, n_slow_fds - 100);
        {
                struct lat *l0[3] = {&p0.list, &p0.describe, &p0.ingest};
                struct lat *l1[3] = {&p1.list, &p1.describe, &p1.ingest};
                const char *names[3] = {"list", "describe", "ingest-1000"};
                for (int k = 0; k < 3; k++)
                        printf("%-12s p50 %7.3f -> %7.3f ms (x%.2f)  p99 %7.3f -> %7.3f ms "
                               "(x%.2f)  errors %llu/%llu\n",
                               names[k], pct(l0[k], 0.5) * 1e3, pct(l1[k], 0.5) * 1e3,
                               pct(l1[k], 0.5) / pct(l0[k], 0.5), pct(l0[k], 0.99) * 1e3,
                               pct(l1[k], 0.99) * 1e3, pct(l1[k], 0.99) / pct(l0[k], 0.99),
                               (unsigned long long)l0[k]->errors,
                               (unsigned long long)l1[k]->errors);
        }
        printf("dreamd peak rss (VmHWM) %ld kB\n", dreamd_status_kb("VmHWM"));
        for (int i = 0; i < n_slow_fds; i++)
                close(slow_fds[i]);
        return 0;
}

int main(int argc, char **argv)
{
        char exe[PATH_MAX] = "";
        double seconds = 60;
        int n_ing = 64, n_str = 16, n_tr = 2, n_slow = 1000, requests = 1000, opt, rc;
        uint64_t stream_rows = 200000;
        const char *mode;

        while ((opt = getopt(argc, argv, "d:t:i:b:j:r:n:q:")) != -1) {
                switch (opt) {
                case 'd':
                        snprintf(exe, sizeof(exe), "%s", optarg);
                        break;
                case 't':
                        seconds = atof(optarg);
                        break;
                case 'i':
                        n_ing = atoi(optarg);
                        break;
                case 'b':
                        n_str = atoi(optarg);
                        break;
                case 'j':
                        n_tr = atoi(optarg);
                        break;
                case 'r':
                        stream_rows = strtoull(optarg, NULL, 10);
                        break;
                case 'n':
                        n_slow = atoi(optarg);
                        break;
                case 'q':
                        requests = atoi(optarg);
                        break;
                default:
                        fprintf(stderr, "usage: bench_load [-d DREAMD] [-t S] [-i N] [-b N] [-j N] "
                                        "[-r ROWS] mixed | [-n N] [-q N] slow\n");
                        return 2;
                }
        }
        mode = optind < argc ? argv[optind] : "mixed";
        if (!exe[0] && find_dreamd(exe, sizeof(exe)) < 0) {
                fprintf(stderr, "bench_load: dreamd not found; give -d DREAMD\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        printf("machine: %ld cores; dreamd %s\n", sysconf(_SC_NPROCESSORS_ONLN), exe);
        if (strcmp(mode, "slow") == 0) {
                const char *args[] = {"--frame-timeout",
                                      "600",
                                      "--idle-timeout",
                                      "600",
                                      "--max-connections",
                                      "5000",
                                      "--max-peer-connections", /* every client is 127.0.0.1 */
                                      "5000",
                                      NULL};
                if (start_dreamd(exe, args) < 0)
                        return 1;
                rc = run_slow(n_slow, requests);
        } else {
                const char *args[] = {"--max-connections", "1000", "--max-peer-connections", "1000",
                                      NULL};
                if (start_dreamd(exe, args) < 0)
                        return 1;
                rc = run_mixed(seconds, n_ing, n_str, n_tr, stream_rows);
        }
        stop_dreamd();
        return rc;
}
