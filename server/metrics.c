/* Operations metrics: the extended fields of StatsReply and the optional
 * Prometheus text endpoint (GET /metrics on a loopback port).
 *
 * The HTTP side is libmicrohttpd (Debian libmicrohttpd-dev): a small, long
 * maintained GNU HTTP server library that runs its own thread, bounds
 * connections and memory per connection, and needs no code of ours on the
 * socket. The endpoint has no authentication: the config accepts loopback
 * addresses only.
 *
 * Threads: the HTTP thread reads the atomic counters of struct srv_stats and
 * a snapshot under `lock`; it never touches libuv or the store. The snapshot
 * (datasets with their stored bytes and rows, map use, open connections,
 * uptime) is built on the worker pool (store reads) and on the loop
 * (connections, uptime), every SRV_METRICS_REFRESH_MS, by a loop timer.
 *
 * Ownership: struct srv_metrics is freed when its timer is closed and no
 * refresh is in flight (refs).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "server/internal.h"
#include "server/server.h"

#define SRV_METRICS_REFRESH_MS 2000u /* snapshot age of /metrics' dataset and map gauges */
/* A scrape sends its request at once and reads a few KiB: connections are
 * short. A client that opens many and sends half a request holds at most
 * SRV_METRICS_PER_IP of the slots (libmicrohttpd closes the others as soon as
 * it accepts them), each for SRV_METRICS_TIMEOUT, so a burst of them leaves
 * the endpoint free again within seconds. */
#define SRV_METRICS_CONNS   64u /* HTTP connections served at once */
#define SRV_METRICS_PER_IP  16u /* ...of them from one address */
#define SRV_METRICS_TIMEOUT 2u  /* seconds an HTTP connection may idle */

struct ds_stat {
        char *name; /* owned */
        uint64_t stored_bytes, rows;
};

struct snapshot {
        struct ds_stat *ds; /* owned */
        uint32_t n_ds;
        uint64_t map_bytes, map_used_bytes, map_max_bytes;
        uint64_t uptime_s;
        uint32_t conns_open;
        struct srv_jobs_stats jobs; /* jobs.c, read on the loop */
        bool valid;
};

struct srv_metrics {
        uv_timer_t timer; /* first (house rule 9) */
        uv_work_t work;
        struct srv *srv;
        struct MHD_Daemon *mhd;
        pthread_mutex_t lock; /* guards `snap` */
        struct snapshot snap; /* what the HTTP thread serves */
        struct snapshot next; /* being built by the worker */
        int next_r;
        unsigned refs; /* timer handle + refresh in flight */
        bool busy, stopping;
        char name[80];
};

/* ---- shared: datasets and map use (worker thread) ---------------------------- */

static void snapshot_release(struct snapshot *sn)
{
        for (uint32_t i = 0; i < sn->n_ds; i++)
                dm_free(sn->ds[i].name);
        dm_free(sn->ds);
        memset(sn, 0, sizeof(*sn));
}

/* Bytes of the LMDB data file: the high-water mark of the pages the map
 * uses (without MDB_WRITEMAP the file grows as pages are first written;
 * freed pages are reused inside it). 0 when it cannot be read. */
static uint64_t map_used(const struct srv *s)
{
        char path[DREAM_MAX_PATH + 16];
        struct stat st;

        snprintf(path, sizeof(path), "%s/data.mdb", s->cfg.data_dir);
        return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static uint64_t map_max(const struct srv *s)
{
        struct store_opts so;

        if (s->cfg.map_size_max)
                return s->cfg.map_size_max;
        store_opts_default(&so);
        return so.map_max;
}

/* Datasets with their storage, and map use. Worker thread. */
static int snapshot_store(struct srv *s, struct snapshot *sn, char ***ret_names)
{
        char **names = NULL;
        uint32_t count = 0;
        int r;

        memset(sn, 0, sizeof(*sn));
        r = store_dataset_list(s->store, &names, &count);
        if (r < 0)
                return r;
        if (count) {
                sn->ds = dm_calloc(count, sizeof(*sn->ds));
                if (!sn->ds) {
                        store_names_free(names, count);
                        return DREAM_E_NOMEM;
                }
        }
        for (uint32_t i = 0; i < count; i++) {
                struct store_info *info = NULL;

                /* A dataset dropped since the list: left out. */
                if (store_dataset_describe(s->store, names[i], &info) < 0)
                        continue;
                sn->ds[sn->n_ds].name = names[i]; /* borrowed from names */
                sn->ds[sn->n_ds].stored_bytes = info->stored_bytes;
                sn->ds[sn->n_ds].rows = info->rows;
                sn->n_ds++;
                store_info_free(info);
        }
        sn->map_bytes = store_map_size(s->store);
        sn->map_used_bytes = map_used(s);
        sn->map_max_bytes = map_max(s);
        sn->valid = true;
        *ret_names = names;
        return (int)count;
}

/* Give the snapshot its own copies of the names (it outlives `names`). */
static int snapshot_own_names(struct snapshot *sn)
{
        for (uint32_t i = 0; i < sn->n_ds; i++) {
                sn->ds[i].name = dm_strdup(sn->ds[i].name);
                if (!sn->ds[i].name) {
                        for (uint32_t k = i + 1; k < sn->n_ds; k++)
                                sn->ds[k].name = NULL;
                        return DREAM_E_NOMEM;
                }
        }
        return 0;
}

/* ---- StatsReply ------------------------------------------------------------- */

static const char *type_name(unsigned t)
{
        const ProtobufCFieldDescriptor *f;

        if (t == 0)
                return "undecodable";
        f = protobuf_c_message_descriptor_get_field(&dream__v1__request__descriptor, t);
        return f ? f->name : "unknown";
}

int srv_stats_reply_fill(struct srv *s, Dream__V1__StatsReply *st, struct srv_stats_reply *ret_more)
{
        struct srv_stats *c = &s->stats;
        struct srv_stats_reply m;
        struct snapshot sn;
        uint32_t n_types = 0;
        int r;

        memset(&m, 0, sizeof(m));
        r = snapshot_store(s, &sn, &m.names);
        if (r < 0)
                return r;
        m.n_names = (uint32_t)r;
        m.datasets = dm_calloc(sn.n_ds ? sn.n_ds : 1, sizeof(*m.datasets));
        m.dataset_ptrs = dm_calloc(sn.n_ds ? sn.n_ds : 1, sizeof(*m.dataset_ptrs));
        m.types = dm_calloc(SRV_STATS_TYPES, sizeof(*m.types));
        m.type_ptrs = dm_calloc(SRV_STATS_TYPES, sizeof(*m.type_ptrs));
        if (!m.datasets || !m.dataset_ptrs || !m.types || !m.type_ptrs) {
                dm_free(sn.ds); /* names are borrowed from m.names */
                srv_stats_reply_release(&m);
                return DREAM_E_NOMEM;
        }
        for (uint32_t i = 0; i < sn.n_ds; i++) {
                Dream__V1__DatasetStats *d = &m.datasets[i];

                dream__v1__dataset_stats__init(d);
                d->name = sn.ds[i].name;
                d->stored_bytes = sn.ds[i].stored_bytes;
                d->rows = sn.ds[i].rows;
                m.dataset_ptrs[i] = d;
        }
        for (unsigned t = 0; t < SRV_STATS_TYPES; t++) {
                uint64_t req = __atomic_load_n(&c->requests_by_type[t], __ATOMIC_RELAXED);
                uint64_t err = __atomic_load_n(&c->errors_by_type[t], __ATOMIC_RELAXED);
                Dream__V1__RequestTypeStats *ts = &m.types[n_types];

                if (!req && !err)
                        continue;
                dream__v1__request_type_stats__init(ts);
                ts->type = (char *)type_name(t);
                ts->requests = req;
                ts->errors = err;
                m.type_ptrs[n_types++] = ts;
        }
        st->datasets = m.n_names;
        st->n_dataset_stats = sn.n_ds;
        st->dataset_stats = m.dataset_ptrs;
        st->n_requests_by_type = n_types;
        st->requests_by_type = m.type_ptrs;
        st->store_map_bytes = sn.map_bytes;
        st->store_used_bytes = sn.map_used_bytes;
        st->store_map_max_bytes = sn.map_max_bytes;
        st->ingest_commits = __atomic_load_n(&c->ingest_commits, __ATOMIC_RELAXED);
        st->seals_total = __atomic_load_n(&c->seals, __ATOMIC_RELAXED);
        st->ingest_ack_p50_seconds = srv_latency_quantile(c, DREAM__V1__REQUEST__BODY_INGEST, 0.50);
        st->ingest_ack_p99_seconds = srv_latency_quantile(c, DREAM__V1__REQUEST__BODY_INGEST, 0.99);
        st->seal_errors_total = __atomic_load_n(&c->seal_errors, __ATOMIC_RELAXED);
        st->seal_seconds_total = (double)__atomic_load_n(&c->seal_ns, __ATOMIC_RELAXED) / 1e9;
        {
                struct srv_jobs_stats js;

                srv_jobs_stats(s, &js);
                st->jobs_running = js.running;
                st->jobs_queued = js.queued;
                st->jobs_done = js.done;
                st->jobs_failed = js.failed;
                st->jobs_cancelled = js.cancelled;
                st->train_seconds_total = js.train_seconds;
        }
        dm_free(sn.ds); /* the names stay in m.names */
        *ret_more = m;
        return 0;
}

void srv_stats_reply_release(struct srv_stats_reply *more)
{
        if (!more)
                return;
        store_names_free(more->names, more->n_names);
        dm_free(more->datasets);
        dm_free(more->dataset_ptrs);
        dm_free(more->types);
        dm_free(more->type_ptrs);
        memset(more, 0, sizeof(*more));
}

void srv_write_progress(const struct srv *s, uint64_t *ret_queued, uint64_t *ret_done)
{
        *ret_queued = __atomic_load_n(&s->stats.writes_queued, __ATOMIC_RELAXED);
        *ret_done = __atomic_load_n(&s->stats.writes_done, __ATOMIC_RELAXED);
}

/* ---- the text exposition (HTTP thread) ------------------------------------------ */

static int put(struct dm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int put(struct dm_buf *b, const char *fmt, ...)
{
        char line[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(line)) /* every line is bounded well below */
                return DREAM_E_INTERNAL;
        return dm_buf_append(b, line, (size_t)n);
}

static int family(struct dm_buf *b, const char *name, const char *type, const char *help)
{
        return put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_escape(const char *in, char *out, size_t cap)
{
        size_t o = 0;

        for (; *in && o + 3 < cap; in++) {
                if (*in == '\\' || *in == '"' || *in == '\n') {
                        out[o++] = '\\';
                        out[o++] = *in == '\n' ? 'n' : *in;
                } else {
                        out[o++] = *in;
                }
        }
        out[o] = '\0';
}

/* Counters of struct srv_stats served as they are. */
static const struct {
        const char *name, *help;
        size_t off;
} counters[] = {
    {"dreamd_connections_total", "Connections accepted.",
     offsetof(struct srv_stats, connections_total)},
    {"dreamd_connections_refused_total", "Connections refused by the max_connections cap.",
     offsetof(struct srv_stats, connections_refused)},
    {"dreamd_received_bytes_total", "Bytes read from clients.",
     offsetof(struct srv_stats, bytes_in)},
    {"dreamd_sent_bytes_total", "Bytes written to clients.", offsetof(struct srv_stats, bytes_out)},
    {"dreamd_error_responses_total",
     "Error responses sent, including those of a connection rather than a request (frame "
     "errors, refusals, timeouts).",
     offsetof(struct srv_stats, request_errors_total)},
    {"dreamd_rows_ingested_total", "Rows committed by ingest requests.",
     offsetof(struct srv_stats, rows_ingested)},
    {"dreamd_ingest_commits_total", "Ingest requests committed (one LMDB write transaction each).",
     offsetof(struct srv_stats, ingest_commits)},
    {"dreamd_batches_served_total", "Batch replies sent.",
     offsetof(struct srv_stats, batches_served)},
    {"dreamd_seals_total", "Seals that sealed rows into segments, background and flush.",
     offsetof(struct srv_stats, seals)},
    {"dreamd_seal_errors_total", "Background seals that failed.",
     offsetof(struct srv_stats, seal_errors)},
};

static uint64_t load(const uint64_t *v)
{
        return __atomic_load_n(v, __ATOMIC_RELAXED);
}

const double srv_latency_bounds[SRV_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void srv_latency_record(struct srv_stats *st, int body_case, uint64_t ns)
{
        unsigned t = srv_stats_type(body_case), i = 0;
        double sec = (double)ns / 1e9;

        while (i < SRV_LATENCY_BUCKETS && sec > srv_latency_bounds[i])
                i++;
        srv_stats_add(&st->latency[t][i], 1);
        srv_stats_add(&st->latency_ns[t], ns);
}

double srv_latency_quantile(const struct srv_stats *st, int body_case, double q)
{
        unsigned t = srv_stats_type(body_case);
        uint64_t counts[SRV_LATENCY_BUCKETS + 1], total = 0, seen = 0;

        for (unsigned i = 0; i <= SRV_LATENCY_BUCKETS; i++) {
                counts[i] = load(&st->latency[t][i]);
                total += counts[i];
        }
        if (!total)
                return 0;
        for (unsigned i = 0; i <= SRV_LATENCY_BUCKETS; i++) {
                double rank = q * (double)total, lo, hi;

                if (!counts[i] || (double)(seen + counts[i]) < rank) {
                        seen += counts[i];
                        continue;
                }
                lo = i ? srv_latency_bounds[i - 1] : 0;
                if (i == SRV_LATENCY_BUCKETS) /* beyond the last bound: that bound */
                        return lo;
                hi = srv_latency_bounds[i];
                return lo + (hi - lo) * (rank - (double)seen) / (double)counts[i];
        }
        return srv_latency_bounds[SRV_LATENCY_BUCKETS - 1];
}

#ifndef DREAM_VERSION
#define DREAM_VERSION "0.0.0"
#endif

static int scalar(struct dm_buf *b, const char *name, const char *type, const char *help, double v);

/* The process_* family of Prometheus client libraries, from /proc/self:
 * CPU time and start time (stat), memory (statm), descriptors (fd, and the
 * RLIMIT_NOFILE soft limit). A value that cannot be read is left out. */
static int process(struct dm_buf *b)
{
        long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        unsigned long long utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
        char line[1024], *p;
        struct rlimit rl;
        FILE *f;
        DIR *dir;
        int r = 0;

        f = fopen("/proc/self/stat", "r");
        if (f) {
                /* Fields after the command name, which may hold spaces: from
                 * the last ')': 3 state ... 14 utime 15 stime ... 22 starttime. */
                if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')) &&
                    sscanf(p + 2,
                           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
                           "%*d %*d %*d %llu",
                           &utime, &stime, &start) == 3 &&
                    tck > 0) {
                        FILE *u = fopen("/proc/stat", "r");
                        unsigned long long btime = 0;

                        r = scalar(b, "process_cpu_seconds_total", "counter",
                                   "Total user and system CPU time spent in seconds.",
                                   (double)(utime + stime) / (double)tck);
                        while (u && fgets(line, sizeof(line), u))
                                if (sscanf(line, "btime %llu", &btime) == 1)
                                        break;
                        if (u)
                                fclose(u);
                        if (r == 0 && btime)
                                r = scalar(b, "process_start_time_seconds", "gauge",
                                           "Start time of the process since unix epoch in "
                                           "seconds.",
                                           (double)btime + (double)start / (double)tck);
                }
                fclose(f);
        }
        f = fopen("/proc/self/statm", "r");
        if (f) {
                if (r == 0 && fscanf(f, "%llu %llu", &vsize, &rss) == 2 && page > 0) {
                        r = scalar(b, "process_virtual_memory_bytes", "gauge",
                                   "Virtual memory size in bytes.", (double)vsize * (double)page);
                        if (r == 0)
                                r = scalar(b, "process_resident_memory_bytes", "gauge",
                                           "Resident memory size in bytes.",
                                           (double)rss * (double)page);
                }
                fclose(f);
        }
        dir = opendir("/proc/self/fd");
        if (dir) {
                unsigned long n = 0;
                const struct dirent *e;

                while ((e = readdir(dir)))
                        n += e->d_name[0] != '.';
                closedir(dir);
                if (r == 0) /* less the one opendir held */
                        r = scalar(b, "process_open_fds", "gauge",
                                   "Number of open file descriptors.", (double)(n ? n - 1 : 0));
        }
        if (r == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
                r = scalar(b, "process_max_fds", "gauge",
                           "Maximum number of open file descriptors.", (double)rl.rlim_cur);
        return r;
}

/* dreamd_request_duration_seconds: a histogram per request type seen. */
static int latency(struct dm_buf *b, const struct srv_stats *c)
{
        const char *name = "dreamd_request_duration_seconds";
        int r;

        r = family(b, name, "histogram",
                   "Time from a request's arrival to its last response queued, by request "
                   "type.");
        for (unsigned t = 0; r == 0 && t < SRV_STATS_TYPES; t++) {
                uint64_t cum = 0;

                for (unsigned i = 0; i <= SRV_LATENCY_BUCKETS; i++)
                        cum += load(&c->latency[t][i]);
                if (!cum)
                        continue;
                cum = 0;
                for (unsigned i = 0; r == 0 && i <= SRV_LATENCY_BUCKETS; i++) {
                        cum += load(&c->latency[t][i]);
                        if (i < SRV_LATENCY_BUCKETS)
                                r = put(b, "%s_bucket{type=\"%s\",le=\"%g\"} %llu\n", name,
                                        type_name(t), srv_latency_bounds[i],
                                        (unsigned long long)cum);
                        else
                                r = put(b, "%s_bucket{type=\"%s\",le=\"+Inf\"} %llu\n", name,
                                        type_name(t), (unsigned long long)cum);
                }
                if (r == 0)
                        r = put(b, "%s_sum{type=\"%s\"} %.9f\n%s_count{type=\"%s\"} %llu\n", name,
                                type_name(t), (double)load(&c->latency_ns[t]) / 1e9, name,
                                type_name(t), (unsigned long long)cum);
        }
        return r;
}

/* One family with a single unlabelled sample. */
static int scalar(struct dm_buf *b, const char *name, const char *type, const char *help, double v)
{
        int r = family(b, name, type, help);
        return r < 0 ? r : put(b, "%s %.17g\n", name, v);
}

/* Requests or errors by request type (types never seen are left out). */
static int by_type(struct dm_buf *b, const struct srv_stats *c, bool errors)
{
        const char *name = errors ? "dreamd_request_errors_total" : "dreamd_requests_total";
        int r;

        r = family(b, name, "counter",
                   errors ? "Requests answered with an error, by request type."
                          : "Requests decoded, by request type (undecodable: frames that were "
                            "not a Request).");
        for (unsigned t = 0; r == 0 && t < SRV_STATS_TYPES; t++) {
                uint64_t req = load(&c->requests_by_type[t]), err = load(&c->errors_by_type[t]);
                if (req || err)
                        r = put(b, "%s{type=\"%s\"} %llu\n", name, type_name(t),
                                (unsigned long long)(errors ? err : req));
        }
        return r;
}

static int datasets(struct dm_buf *b, const struct snapshot *sn, bool rows)
{
        const char *name = rows ? "dreamd_dataset_rows" : "dreamd_dataset_stored_bytes";
        char esc[2 * DREAM_MAX_NAME + 8];
        int r;

        r = family(b, name, "gauge",
                   rows ? "Rows of a dataset." : "Bytes of the LMDB store a dataset uses.");
        for (uint32_t i = 0; r == 0 && i < sn->n_ds; i++) {
                label_escape(sn->ds[i].name, esc, sizeof(esc));
                r = put(b, "%s{dataset=\"%s\"} %llu\n", name, esc,
                        (unsigned long long)(rows ? sn->ds[i].rows : sn->ds[i].stored_bytes));
        }
        return r;
}

static int jobs(struct dm_buf *b, const struct srv_jobs_stats *j)
{
        int r;

        r = family(b, "dreamd_jobs", "gauge", "Training jobs now, by state.");
        if (r == 0)
                r = put(b, "dreamd_jobs{state=\"queued\"} %u\ndreamd_jobs{state=\"running\"} %u\n",
                        j->queued, j->running);
        if (r == 0)
                r = family(b, "dreamd_jobs_finished_total", "counter",
                           "Training jobs ended since the store was created, by outcome.");
        if (r == 0)
                r = put(b,
                        "dreamd_jobs_finished_total{state=\"done\"} %llu\n"
                        "dreamd_jobs_finished_total{state=\"failed\"} %llu\n"
                        "dreamd_jobs_finished_total{state=\"cancelled\"} %llu\n",
                        (unsigned long long)j->done, (unsigned long long)j->failed,
                        (unsigned long long)j->cancelled);
        if (r == 0)
                r = scalar(b, "dreamd_train_seconds_total", "counter",
                           "Seconds spent fitting models, summed over the jobs done.",
                           j->train_seconds);
        return r;
}

/* The whole exposition. HTTP thread: atomics, and the snapshot under lock. */
static int render(struct srv_metrics *m, struct dm_buf *b)
{
        const struct srv_stats *c = &m->srv->stats;
        const struct snapshot *sn = &m->snap;
        int r = 0;

        for (size_t i = 0; r == 0 && i < sizeof(counters) / sizeof(counters[0]); i++) {
                const uint64_t *v = (const uint64_t *)((const char *)c + counters[i].off);
                r = scalar(b, counters[i].name, "counter", counters[i].help, (double)load(v));
        }
        if (r == 0)
                r = scalar(b, "dreamd_seal_seconds_total", "counter",
                           "Seconds spent in background seals.", (double)load(&c->seal_ns) / 1e9);
        if (r == 0)
                r = by_type(b, c, false);
        if (r == 0)
                r = by_type(b, c, true);
        if (r == 0)
                r = latency(b, c);
        if (r == 0)
                r = family(b, "dreamd_build_info", "gauge",
                           "Always 1; the version of dreamd in its label.");
        if (r == 0)
                r = put(b, "dreamd_build_info{version=\"%s\"} 1\n", DREAM_VERSION);
        if (r == 0)
                r = process(b);

        pthread_mutex_lock(&m->lock);
        if (r == 0 && sn->valid) {
                const struct {
                        const char *name, *help;
                        double v;
                } gauges[] = {
                    {"dreamd_uptime_seconds", "Seconds since dreamd started.",
                     (double)sn->uptime_s},
                    {"dreamd_connections_open", "Connections open.", (double)sn->conns_open},
                    {"dreamd_datasets", "Datasets in the store.", (double)sn->n_ds},
                    {"dreamd_store_map_bytes", "Current size of the LMDB map.",
                     (double)sn->map_bytes},
                    {"dreamd_store_map_used_bytes",
                     "Bytes of the LMDB data file (high-water mark of the pages used).",
                     (double)sn->map_used_bytes},
                    {"dreamd_store_map_max_bytes", "Size the LMDB map may grow to (map_size_max).",
                     (double)sn->map_max_bytes},
                };

                for (size_t i = 0; r == 0 && i < sizeof(gauges) / sizeof(gauges[0]); i++)
                        r = scalar(b, gauges[i].name, "gauge", gauges[i].help, gauges[i].v);
                if (r == 0)
                        r = datasets(b, sn, false);
                if (r == 0)
                        r = datasets(b, sn, true);
                if (r == 0)
                        r = jobs(b, &sn->jobs);
        }
        pthread_mutex_unlock(&m->lock);
        return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
        struct srv_metrics *m = cls;
        struct MHD_Response *resp;
        enum MHD_Result ret;
        unsigned status = MHD_HTTP_OK;
        struct dm_buf b;
        const char *type = "text/plain; version=0.0.4; charset=utf-8";

        (void)version;
        (void)upload_data;
        if (*req_cls == NULL) { /* first call: headers only */
                *req_cls = m;
                return MHD_YES;
        }
        if (*upload_data_size) { /* a body: not read */
                *upload_data_size = 0;
                return MHD_YES;
        }
        dm_buf_init(&b);
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
                status = MHD_HTTP_METHOD_NOT_ALLOWED;
                (void)put(&b, "only GET /metrics\n");
        } else if (strcmp(url, "/metrics") != 0) {
                status = MHD_HTTP_NOT_FOUND;
                (void)put(&b, "not found: dreamd serves /metrics\n");
        } else if (render(m, &b) < 0) {
                status = MHD_HTTP_INTERNAL_SERVER_ERROR;
                b.len = 0;
                (void)put(&b, "out of memory\n");
        }
        resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
        dm_buf_release(&b);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* ---- the snapshot (loop + worker) ------------------------------------------------ */

static void metrics_unref(struct srv_metrics *m)
{
        if (--m->refs > 0)
                return;
        snapshot_release(&m->snap);
        snapshot_release(&m->next);
        pthread_mutex_destroy(&m->lock);
        dm_free(m);
}

static void refresh_work(uv_work_t *w)
{
        struct srv_metrics *m = w->data;
        char **names = NULL;
        int r;

        r = snapshot_store(m->srv, &m->next, &names);
        if (r >= 0) {
                uint32_t count = (uint32_t)r;

                r = snapshot_own_names(&m->next);
                store_names_free(names, count);
        }
        m->next_r = r < 0 ? r : 0;
}

static void refresh_after(uv_work_t *w, int status)
{
        struct srv_metrics *m = w->data;
        struct srv *s = m->srv;
        struct snapshot old;

        m->busy = false;
        s->pending_work--;
        if (status == 0 && m->next_r == 0 && !m->stopping) {
                m->next.uptime_s = (uv_now(s->loop) - s->start_ms) / 1000;
                m->next.conns_open = s->n_conns;
                srv_jobs_stats(s, &m->next.jobs);
                pthread_mutex_lock(&m->lock);
                old = m->snap;
                m->snap = m->next;
                pthread_mutex_unlock(&m->lock);
                memset(&m->next, 0, sizeof(m->next));
                snapshot_release(&old);
        } else {
                if (m->next_r < 0)
                        dm_debug("metrics: snapshot not refreshed: %s", dream_strerror(m->next_r));
                snapshot_release(&m->next);
        }
        metrics_unref(m);
        srv_maybe_stop(s);
}

static void refresh_cb(uv_timer_t *t)
{
        struct srv_metrics *m = t->data;
        struct srv *s = m->srv;

        if (m->busy || m->stopping || s->draining)
                return;
        m->work.data = m;
        if (uv_queue_work(s->loop, &m->work, refresh_work, refresh_after) < 0)
                return;
        m->busy = true;
        m->refs++;
        s->pending_work++; /* the store stays open until the refresh is done */
}

static void timer_close_cb(uv_handle_t *h)
{
        metrics_unref(h->data);
}

int srv_metrics_start(struct srv *s, const char *addr, struct srv_metrics **ret,
                      const char **ret_name, char *errmsg, size_t errmsg_size)
{
        struct sockaddr_storage ss;
        const union MHD_DaemonInfo *info;
        struct srv_metrics *m;
        struct srv_addr a;
        unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;
        int r;

        r = srv_addr_parse(addr, &a);
        if (r < 0 || a.is_unix || !a.loopback)
                return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                "metrics_listen: '%s' is not a loopback IP:PORT", addr);
        memset(&ss, 0, sizeof(ss));
        if (a.is_v6) {
                r = uv_ip6_addr(a.host, a.port, (struct sockaddr_in6 *)&ss);
                flags |= MHD_USE_IPv6;
        } else {
                r = uv_ip4_addr(a.host, a.port, (struct sockaddr_in *)&ss);
        }
        if (r < 0)
                return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                "metrics_listen: bad address '%s'", addr);
        m = dm_calloc(1, sizeof(*m));
        if (!m)
                return srv_fail(errmsg, errmsg_size, DREAM_E_NOMEM, "out of memory");
        m->srv = s;
        pthread_mutex_init(&m->lock, NULL);
        m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR,
                                  (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                                  (unsigned)SRV_METRICS_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                  (unsigned)SRV_METRICS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)SRV_METRICS_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                  (size_t)65536, MHD_OPTION_END);
        if (!m->mhd) {
                r = srv_fail(errmsg, errmsg_size, -EIO,
                             "metrics_listen: cannot serve /metrics on '%s' (address in use?)",
                             addr);
                pthread_mutex_destroy(&m->lock);
                dm_free(m);
                return r;
        }
        info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
        snprintf(m->name, sizeof(m->name), a.is_v6 ? "[%s]:%u" : "%s:%u", a.host,
                 info ? info->port : a.port);
        uv_timer_init(s->loop, &m->timer);
        m->timer.data = m;
        m->refs = 1;
        uv_timer_start(&m->timer, refresh_cb, 0, SRV_METRICS_REFRESH_MS);
        *ret_name = m->name;
        *ret = m;
        return 0;
}

void srv_metrics_stop(struct srv_metrics *m)
{
        if (!m || m->stopping)
                return;
        m->stopping = true;
        MHD_stop_daemon(m->mhd); /* joins the HTTP thread */
        m->mhd = NULL;
        uv_close((uv_handle_t *)&m->timer, timer_close_cb);
}
