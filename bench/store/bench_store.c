/* Store benchmark (not a test): append throughput with sealing on, export
 * throughput, random-row latency, stored bytes against a gd serialized file
 * of the same rows.
 *
 *   bench_store [rows (default 2000000)] [batch rows (default 10000)]
 *
 * Rows have 9 columns shaped like a housing table: integers, decimals of 2-4
 * digits, a class target. A seal worker thread runs store_seal whenever an
 * append reports that a dataset is ready, as the server's worker pool will.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ftw.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "storage/store.h"

#define NCOLS 9u

static const char *names[NCOLS] = {"lon", "lat",    "age",    "rooms", "beds",
                                   "pop", "houses", "income", "value"};

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static struct gd_table *make_batch(uint64_t first, uint64_t n)
{
        struct gd_table *t;
        if (gd_table_new(n, NCOLS, &t) < 0)
                abort();
        for (uint32_t j = 0; j < NCOLS; j++)
                gd_table_set_name(t, j, names[j]);
        t->target = NCOLS - 1;
        t->task = GD_TASK_REGRESSION;
        static const uint8_t scale[NCOLS] = {2, 2, 0, 0, 0, 0, 0, 4, 0};
        for (uint32_t j = 0; j < NCOLS; j++) {
                t->cols[j].kind = scale[j] ? GD_DEC : GD_INT;
                t->cols[j].scale = scale[j];
        }
        for (uint64_t i = 0; i < n; i++) {
                uint64_t s = (first + i) * 0x9E3779B97F4A7C15ull + 1;
                uint64_t a = rng(&s), b = rng(&s), c = rng(&s);
                t->cols[0].v[i] = -12435 + (int64_t)(a % 1000);
                t->cols[1].v[i] = 3254 + (int64_t)(b % 900);
                t->cols[2].v[i] = 1 + (int64_t)(c % 52);
                t->cols[3].v[i] = 500 + (int64_t)(a >> 20) % 4000;
                t->cols[4].v[i] = t->cols[3].v[i] / 5 + (int64_t)(b >> 20) % 50;
                t->cols[5].v[i] = 300 + (int64_t)(c >> 20) % 3000;
                t->cols[6].v[i] = t->cols[5].v[i] / 3;
                t->cols[7].v[i] = 15000 + (int64_t)(a >> 40) % 120000;
                t->cols[8].v[i] = 100000 * (1 + (int64_t)(b >> 40) % 5);
        }
        return t;
}

struct sealer {
        struct store *s;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int pending;
        int stop;
        double busy;
        int err;
};

static void *seal_worker(void *arg)
{
        struct sealer *w = arg;
        pthread_mutex_lock(&w->mu);
        for (;;) {
                while (!w->pending && !w->stop)
                        pthread_cond_wait(&w->cv, &w->mu);
                if (!w->pending && w->stop)
                        break;
                w->pending = 0;
                pthread_mutex_unlock(&w->mu);
                double t0 = now();
                int r = store_seal(w->s, "bench", false, NULL);
                w->busy += now() - t0;
                pthread_mutex_lock(&w->mu);
                if (r < 0)
                        w->err = r;
        }
        pthread_mutex_unlock(&w->mu);
        return NULL;
}

struct export_ctx {
        uint64_t rows;
        uint64_t sum;
};

static int export_cb(const struct gd_table *chunk, uint64_t first_row, void *arg)
{
        struct export_ctx *e = arg;
        (void)first_row;
        for (uint32_t j = 0; j < chunk->n_cols; j++) {
                for (uint64_t i = 0; i < chunk->n_rows; i++)
                        e->sum += (uint64_t)chunk->cols[j].v[i];
        }
        e->rows += chunk->n_rows;
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

struct par {
        struct store *s;
        char name[16];
        struct gd_table **bt;
        uint64_t from, to;
        int err;
};

static void *par_appender(void *arg)
{
        struct par *p = arg;
        for (uint64_t b = p->from; b < p->to; b++) {
                uint64_t first;
                int r = store_append(p->s, p->name, p->bt[b], b + 1, &first, NULL);
                if (r < 0)
                        p->err = r;
        }
        return NULL;
}

/* Concurrent appenders, one dataset each, no sealing: group commit. */
static void bench_parallel(struct store *s, struct store_schema *sc, struct gd_table **bt,
                           uint64_t n_batches, uint64_t rows, int n_threads)
{
        struct par p[16];
        pthread_t th[16];
        double t0;
        for (int i = 0; i < n_threads; i++) {
                p[i] = (struct par){.s = s, .bt = bt};
                snprintf(p[i].name, sizeof(p[i].name), "par%d_%d", n_threads, i);
                p[i].from = n_batches * (uint64_t)i / (uint64_t)n_threads;
                p[i].to = n_batches * (uint64_t)(i + 1) / (uint64_t)n_threads;
                store_dataset_create(s, p[i].name, sc);
        }
        t0 = now();
        for (int i = 0; i < n_threads; i++)
                pthread_create(&th[i], NULL, par_appender, &p[i]);
        for (int i = 0; i < n_threads; i++)
                pthread_join(th[i], NULL);
        double dt = now() - t0;
        printf("append, %d concurrent appenders (group commit, no sealing): %.0f rows/s\n",
               n_threads, (double)rows / dt);
        for (int i = 0; i < n_threads; i++) {
                if (p[i].err)
                        printf("  appender %d: %s\n", i, dream_strerror(p[i].err));
        }
}

int main(int argc, char **argv)
{
        uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
        uint64_t batch = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000;
        char dir[] = "/tmp/dream-bench-store-XXXXXX";
        struct store_schema sc = {.n_cols = NCOLS, .target = NCOLS - 1, .task = GD_TASK_REGRESSION};
        struct store_column cols[NCOLS];
        struct sealer w = {.err = 0};
        struct store *s;
        struct store_info *info;
        pthread_t th;
        double t0, t_append, t_total;
        int r;

        if (!mkdtemp(dir))
                return 1;
        for (uint32_t j = 0; j < NCOLS; j++)
                cols[j] = (struct store_column){.name = (char *)names[j], .kind = GD_INT};
        sc.cols = cols;
        if ((r = store_open(dir, NULL, &s)) < 0 ||
            (r = store_dataset_create(s, "bench", &sc)) < 0) {
                fprintf(stderr, "bench_store: %s\n", dream_strerror(r));
                return 1;
        }
        /* Batches are generated up front: the figure is the store's. */
        uint64_t n_batches = (rows + batch - 1) / batch;
        struct gd_table **bt = calloc(n_batches, sizeof(*bt));
        for (uint64_t b = 0; b < n_batches; b++) {
                uint64_t n = rows - b * batch < batch ? rows - b * batch : batch;
                bt[b] = make_batch(b * batch, n);
        }
        w.s = s;
        pthread_mutex_init(&w.mu, NULL);
        pthread_cond_init(&w.cv, NULL);
        pthread_create(&th, NULL, seal_worker, &w);

        t0 = now();
        for (uint64_t b = 0; b < n_batches; b++) {
                uint64_t first;
                bool needs;
                r = store_append(s, "bench", bt[b], b + 1, &first, &needs);
                if (r < 0) {
                        fprintf(stderr, "bench_store: append: %s\n", dream_strerror(r));
                        return 1;
                }
                if (needs) {
                        pthread_mutex_lock(&w.mu);
                        w.pending = 1;
                        pthread_cond_signal(&w.cv);
                        pthread_mutex_unlock(&w.mu);
                }
        }
        t_append = now() - t0;
        pthread_mutex_lock(&w.mu);
        w.stop = 1;
        pthread_cond_signal(&w.cv);
        pthread_mutex_unlock(&w.mu);
        pthread_join(th, NULL);
        r = store_seal(s, "bench", true, NULL);
        t_total = now() - t0;
        if (r < 0 || w.err < 0) {
                fprintf(stderr, "bench_store: seal: %s\n", dream_strerror(r < 0 ? r : w.err));
                return 1;
        }
        store_dataset_describe(s, "bench", &info);
        printf("rows %llu, %u columns, batches of %llu\n", (unsigned long long)rows, NCOLS,
               (unsigned long long)batch);
        printf("append (sealing on, synchronous commits): %.0f rows/s, %.1f MB/s CSV-equivalent\n",
               (double)rows / t_append, (double)info->raw_bytes / t_append / 1e6);
        printf("append + final flush: %.2f s; seal worker busy %.2f s\n", t_total, w.busy);
        printf("segments %llu, bases %llu, stored %llu bytes (segments %llu), raw CSV %llu bytes, "
               "ratio %.2f\n",
               (unsigned long long)info->segments, (unsigned long long)info->bases,
               (unsigned long long)info->stored_bytes, (unsigned long long)info->segment_bytes,
               (unsigned long long)info->raw_bytes, info->ratio);

        /* Export. */
        struct export_ctx e = {0};
        t0 = now();
        store_scan(s, "bench", 0, 0, UINT64_MAX, 0, export_cb, &e);
        double t_exp = now() - t0;
        printf("export (scan, decode): %.0f rows/s, %.1f MB/s CSV-equivalent\n",
               (double)e.rows / t_exp, (double)info->raw_bytes / t_exp / 1e6);

        /* Random rows. */
        uint64_t seed = 42;
        int64_t v[NCOLS];
        int n_get = 20000;
        t0 = now();
        for (int i = 0; i < n_get; i++) {
                if (store_get_row(s, "bench", 0, NCOLS, rng(&seed) % rows, v, NULL) < 0)
                        return 1;
        }
        double t_get = now() - t0;
        printf("random row: %.1f us mean over %d\n", t_get / n_get * 1e6, n_get);

        /* Random rows read 1,024 at a time (store_get_rows: one transaction,
         * rows sorted, each segment from the cache of opened segments). */
        {
                enum { PER = 1024, CALLS = 20 };
                uint64_t *idx = malloc(PER * sizeof(*idx));
                int64_t *vals = malloc((size_t)PER * NCOLS * sizeof(*vals));
                if (!idx || !vals)
                        return 1;
                t0 = now();
                for (int i = 0; i < CALLS; i++) {
                        for (int k = 0; k < PER; k++)
                                idx[k] = rng(&seed) % rows;
                        if (store_get_rows(s, "bench", 0, NCOLS, idx, PER, vals, NULL) < 0)
                                return 1;
                }
                double t_rows = now() - t0;
                printf("random rows, %d per call: %.2f us per row over %d\n", PER,
                       t_rows / (PER * CALLS) * 1e6, PER * CALLS);
                free(idx);
                free(vals);
        }

        /* The same rows as one gd file (segments of 65536 rows, as sealed). */
        uint64_t file_bytes = 0;
        for (uint64_t at = 0; at < rows; at += 65536) {
                uint64_t n = rows - at < 65536 ? rows - at : 65536;
                struct gd_table *t = make_batch(at, n);
                struct gd_segment *seg;
                struct gd_encode_opts eo;
                struct dm_buf buf;
                gd_encode_opts_default(&eo);
                dm_buf_init(&buf);
                if (gd_segment_encode(t, &eo, &seg) == 0 && gd_segment_serialize(seg, &buf) == 0)
                        file_bytes += buf.len;
                dm_buf_release(&buf);
                gd_segment_free(seg);
                gd_table_free(t);
        }
        printf("gd segments of the same rows: %llu bytes; store/gd = %.3f\n",
               (unsigned long long)file_bytes, (double)info->stored_bytes / (double)file_bytes);

        bench_parallel(s, &sc, bt, n_batches, rows, 1);
        bench_parallel(s, &sc, bt, n_batches, rows, 4);

        store_info_free(info);
        for (uint64_t b = 0; b < n_batches; b++)
                gd_table_free(bt[b]);
        free(bt);
        store_close(s);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}
