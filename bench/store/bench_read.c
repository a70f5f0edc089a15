/* Read-path benchmark (not a test): how fast a dataset's rows come out of the
 * store (store_read_all, store_read_features) against the codec decoding the
 * same rows from one packed container, as `dream unpack` does.
 *
 *   bench_read fashion DIR [reps]   Fashion-MNIST train (IDX .gz files in DIR)
 *   bench_read synth ROWS [reps]    ROWS x 21 numeric columns (fixed seed)
 *
 * READ_THREADS=n in the environment sets store_opts.read_threads;
 * BENCH_ONLY=text times only the figures whose name holds text (for perf).
 *
 * The rows are appended to a new store in /tmp in batches of 10,000 and
 * sealed (a forced seal, as `dream flush`); the container is the whole table
 * encoded with the options of `dream pack`. Each figure is the best of reps
 * runs (default 5), wall and CPU (all threads) apart, after one untimed run
 * that checks the values. Rows per second and the ratios are printed.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "storage/store.h"

#define BATCH_ROWS 10000u

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int r)
{
        fprintf(stderr, "bench_read: %s: %s\n", what, r < 0 ? dream_strerror(r) : "failed");
        exit(1);
}

/* The IDX file at path (gzip'd) into a new buffer; its length in *ret_len. */
static uint8_t *read_gz(const char *path, size_t *ret_len)
{
        char cmd[4096];
        struct dm_buf b;
        FILE *f;
        uint8_t chunk[1 << 16];
        size_t n;

        snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", path);
        f = popen(cmd, "r");
        if (!f)
                die(path, -1);
        dm_buf_init(&b);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if (dm_buf_append(&b, chunk, n) < 0)
                        die("memory", DREAM_E_NOMEM);
        if (pclose(f) != 0 || b.len < 16)
                die(path, -1);
        *ret_len = b.len;
        return b.data;
}

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct gd_table *fashion(const char *dir)
{
        char p[4096];
        size_t ilen, llen;
        uint8_t *img, *lab;
        struct gd_table *t;
        uint32_t n, d;
        char name[32];

        snprintf(p, sizeof(p), "%s/train-images-idx3-ubyte.gz", dir);
        img = read_gz(p, &ilen);
        snprintf(p, sizeof(p), "%s/train-labels-idx1-ubyte.gz", dir);
        lab = read_gz(p, &llen);
        n = be32(img + 4);
        d = be32(img + 8) * be32(img + 12);
        if (ilen < 16 + (size_t)n * d || llen < 8 + (size_t)n)
                die("IDX sizes", -1);
        if (gd_table_new(n, d + 1, &t) < 0)
                die("memory", DREAM_E_NOMEM);
        for (uint32_t j = 0; j < d; j++) {
                snprintf(name, sizeof(name), "pixel%u", j);
                gd_table_set_name(t, j, name);
                for (uint32_t i = 0; i < n; i++)
                        t->cols[j].v[i] = img[16 + (size_t)i * d + j];
        }
        gd_table_set_name(t, d, "label");
        for (uint32_t i = 0; i < n; i++)
                t->cols[d].v[i] = lab[8 + i];
        t->target = (int32_t)d;
        t->task = GD_TASK_CLASSIFICATION;
        dm_free(img);
        dm_free(lab);
        return t;
}

static uint64_t rng(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* 20 features (integers, decimals of 1-4 digits, a few discrete) and a
 * regression target of 2 decimals. */
static struct gd_table *synth(uint64_t n)
{
        struct gd_table *t;
        uint64_t s = 42;
        char name[32];

        if (gd_table_new(n, 21, &t) < 0)
                die("memory", DREAM_E_NOMEM);
        for (uint32_t j = 0; j < 21; j++) {
                snprintf(name, sizeof(name), j == 20 ? "y" : "x%u", j);
                gd_table_set_name(t, j, name);
                t->cols[j].scale = (uint8_t)(j == 20 ? 2 : j % 5);
                t->cols[j].kind = t->cols[j].scale ? GD_DEC : GD_INT;
        }
        for (uint64_t i = 0; i < n; i++) {
                int64_t y = 0;
                for (uint32_t j = 0; j < 20; j++) {
                        uint64_t a = rng(&s);
                        int64_t v = j < 4 ? (int64_t)(a % 8) : (int64_t)(a % 100000) - 50000;
                        t->cols[j].v[i] = v;
                        y += (int64_t)(j + 1) * (v % 1000);
                }
                t->cols[20].v[i] = y + (int64_t)(rng(&s) % 2001) - 1000;
        }
        t->target = 20;
        t->task = GD_TASK_REGRESSION;
        return t;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static struct gd_table *slice(const struct gd_table *t, uint64_t first, uint64_t n)
{
        struct gd_table *b;
        if (gd_table_new(n, t->n_cols, &b) < 0)
                die("memory", DREAM_E_NOMEM);
        for (uint32_t j = 0; j < t->n_cols; j++) {
                gd_table_set_name(b, j, t->cols[j].name);
                b->cols[j].kind = t->cols[j].kind;
                b->cols[j].scale = t->cols[j].scale;
                memcpy(b->cols[j].v, t->cols[j].v + first, n * sizeof(int64_t));
        }
        b->target = t->target;
        b->task = t->task;
        return b;
}

static void check_same(const struct gd_table *a, const struct gd_table *b, const char *what)
{
        if (a->n_rows != b->n_rows || a->n_cols != b->n_cols)
                die(what, DREAM_E_CORRUPT);
        for (uint32_t j = 0; j < a->n_cols; j++)
                for (uint64_t i = 0; i < a->n_rows; i++)
                        if (gd_table_get(a, i, j) != gd_table_get(b, i, j))
                                die(what, DREAM_E_CORRUPT);
}

/* ---- what is timed ---- */

struct ctx {
        struct store *s;
        const struct gd_table *t; /* the rows appended */
        struct gd_segment *seg;   /* the container */
        const struct dm_buf *bytes;
        int64_t *row;
        uint64_t sink;
        int verify; /* compare what was read with t (outside the timed runs) */
};

static double cpu(void)
{
        struct rusage u;
        getrusage(RUSAGE_SELF, &u);
        return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
               ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) * 1e-6;
}

/* Best wall and CPU seconds of reps runs of fn; prints them and returns the
 * wall (0 when BENCH_ONLY leaves it out). */
static double measure(const char *what, void (*fn)(struct ctx *), struct ctx *c, int reps)
{
        double wall = 1e30, cpus = 1e30;
        const char *only = getenv("BENCH_ONLY");
        if (only && !strstr(what, only))
                return 0;
        c->verify = 1; /* one untimed run that checks the values */
        fn(c);
        c->verify = 0;
        for (int k = 0; k < reps; k++) {
                double w0 = now(), c0 = cpu();
                fn(c);
                double dw = now() - w0, dc = cpu() - c0;
                wall = dw < wall ? dw : wall;
                cpus = dc < cpus ? dc : cpus;
        }
        printf("%-34s %8.3f %8.3f %11.0f %9.1f\n", what, wall, cpus, (double)c->t->n_rows / wall,
               (double)c->t->n_rows * c->t->n_cols / wall / 1e6);
        return wall;
}

/* What dream unpack does before printing: one row at a time from a cursor. */
static void run_rows(struct ctx *c)
{
        struct gd_cursor *cur;
        int r = gd_cursor_new(c->seg, &cur);
        for (uint64_t i = 0; r == 0 && i < c->t->n_rows; i++) {
                r = gd_cursor_row(cur, i, c->row);
                c->sink += (uint64_t)c->row[i % c->t->n_cols];
        }
        if (r < 0)
                die("gd_cursor_row", r);
        gd_cursor_free(cur);
}

/* Opening the container: header, checksums, the dictionary unpacked. */
static void run_open(struct ctx *c)
{
        struct gd_segment *seg;
        int r = gd_segment_open(c->bytes->data, c->bytes->len, &seg);
        if (r < 0)
                die("gd_segment_open", r);
        gd_segment_free(seg);
}

static void run_decode(struct ctx *c)
{
        struct gd_table *got;
        int r = gd_segment_decode(c->seg, &got);
        if (r < 0)
                die("gd_segment_decode", r);
        if (c->verify)
                check_same(c->t, got, "gd_segment_decode returned other values");
        gd_table_free(got);
}

static void run_read_all(struct ctx *c)
{
        struct gd_table *got;
        int r = store_read_all(c->s, "ds", 0, &got);
        if (r < 0)
                die("store_read_all", r);
        if (c->verify)
                check_same(c->t, got, "store_read_all returned other values");
        gd_table_free(got);
}

/* A table's cells as float rows, the target apart, as a training job makes
 * them from store_read_all's table. */
static void table_features(const struct gd_table *t, float **ret_x, double **ret_y)
{
        uint32_t d = t->n_cols - 1;
        float *x = dm_mallocarray(t->n_rows * (size_t)d + 1, sizeof(float));
        double *y = dm_mallocarray(t->n_rows + 1, sizeof(double));
        for (uint32_t j = 0, f = 0; j < t->n_cols; j++) {
                const struct gd_col *col = &t->cols[j];
                if ((int32_t)j == t->target) {
                        for (uint64_t i = 0; i < t->n_rows; i++)
                                y[i] = gd_value_f64(col->kind, col->scale, col->v[i]);
                        continue;
                }
                for (uint64_t i = 0; i < t->n_rows; i++)
                        x[i * d + f] = (float)gd_value_f64(col->kind, col->scale, col->v[i]);
                f++;
        }
        *ret_x = x;
        *ret_y = y;
}

static float *ref_x;
static double *ref_y;

static void run_read_all_features(struct ctx *c)
{
        struct gd_table *got;
        int r = store_read_all(c->s, "ds", 0, &got);
        if (r < 0)
                die("store_read_all", r);
        dm_free(ref_x);
        dm_free(ref_y);
        table_features(got, &ref_x, &ref_y);
        gd_table_free(got);
}

static void run_features(struct ctx *c)
{
        float *x;
        double *y;
        uint64_t n;
        int r = store_read_features(c->s, "ds", 0, c->t->target, &x, &y, &n);
        if (r < 0)
                die("store_read_features", r);
        if (c->verify && n != c->t->n_rows)
                die("store_read_features returned other rows", DREAM_E_CORRUPT);
        if (c->verify && ref_x &&
            (memcmp(x, ref_x, n * (c->t->n_cols - 1) * sizeof(float)) != 0 ||
             memcmp(y, ref_y, n * sizeof(double)) != 0))
                die("store_read_features returned other values", DREAM_E_CORRUPT);
        dm_free(x);
        dm_free(y);
}

int main(int argc, char **argv)
{
        char dir[] = "/tmp/dream-bench-read-XXXXXX";
        struct store_schema sc = {0};
        struct store *s;
        struct gd_table *t;
        struct store_info *info;
        struct ctx ctx = {0};
        int reps, r;
        double t0;

        if (argc < 3 || (strcmp(argv[1], "fashion") != 0 && strcmp(argv[1], "synth") != 0)) {
                fprintf(stderr, "usage: bench_read fashion DIR [reps] | synth ROWS [reps]\n");
                return 2;
        }
        reps = argc > 3 ? atoi(argv[3]) : 5;
        if (reps < 1)
                reps = 1;
        t = strcmp(argv[1], "fashion") == 0 ? fashion(argv[2]) : synth(strtoull(argv[2], NULL, 10));
        const uint64_t n = t->n_rows;
        const uint32_t nc = t->n_cols;

        /* ---- the store ---- */
        if (!mkdtemp(dir))
                die("mkdtemp", -1);
        sc.n_cols = nc;
        sc.target = t->target;
        sc.task = t->task;
        sc.n_classes = t->task == GD_TASK_CLASSIFICATION ? 10 : 0;
        sc.cols = dm_calloc(nc, sizeof(*sc.cols));
        for (uint32_t j = 0; j < nc; j++)
                sc.cols[j] = (struct store_column){.name = t->cols[j].name, .kind = GD_INT};
        struct store_opts so;
        store_opts_default(&so);
        if (getenv("READ_THREADS"))
                so.read_threads = (unsigned)atoi(getenv("READ_THREADS"));
        if ((r = store_open(dir, &so, &s)) < 0 || (r = store_dataset_create(s, "ds", &sc)) < 0)
                die("store", r);
        t0 = now();
        for (uint64_t f = 0; f < n; f += BATCH_ROWS) {
                struct gd_table *b = slice(t, f, n - f < BATCH_ROWS ? n - f : BATCH_ROWS);
                uint64_t first;
                bool seal = false;
                r = store_append(s, "ds", b, 0, &first, &seal);
                gd_table_free(b);
                if (r == 0 && seal)
                        r = store_seal(s, "ds", false, NULL);
                if (r < 0)
                        die("append", r);
        }
        if ((r = store_seal(s, "ds", true, NULL)) < 0)
                die("seal", r);
        if ((r = store_dataset_describe(s, "ds", &info)) < 0)
                die("describe", r);
        printf("table: %llu rows x %u columns; store: %llu segments, %.1f MB, ingest+seal %.2f s\n",
               (unsigned long long)n, nc, (unsigned long long)info->segments,
               (double)info->stored_bytes / 1e6, now() - t0);
        store_info_free(info);

        /* ---- the container, as `dream pack` writes it ---- */
        struct gd_encode_opts eo;
        struct gd_segment *seg;
        struct dm_buf bytes;
        struct gd_stats gs;
        gd_encode_opts_default(&eo);
        eo.zstd_level = GD_ZSTD_ARCHIVE;
        eo.threads = 2;
        dm_buf_init(&bytes);
        if ((r = gd_segment_encode(t, &eo, &seg)) < 0 ||
            (r = gd_segment_serialize(seg, &bytes)) < 0)
                die("encode", r);
        gd_segment_free(seg);
        if ((r = gd_segment_open(bytes.data, bytes.len, &ctx.seg)) < 0)
                die("open", r);
        gd_segment_stats(ctx.seg, &gs);
        printf("container: %.1f MB, codec %s, %u bases, %u base bits of %u, %u rows per block\n",
               (double)gs.total_bytes / 1e6, gd_block_codec_name(gs.codec), gs.n_bases,
               gs.n_base_bits, gs.l_c, gs.rows_per_block);
        ctx.s = s;
        ctx.t = t;
        ctx.bytes = &bytes;
        ctx.row = dm_mallocarray(nc, sizeof(int64_t));

        printf("%-34s %8s %8s %11s %9s\n", "best of runs", "wall s", "cpu s", "rows/s", "Mcells/s");
        double codec = measure("codec row by row (dream unpack)", run_rows, &ctx, reps);
        measure("codec gd_segment_open", run_open, &ctx, reps);
        measure("codec gd_segment_decode", run_decode, &ctx, reps);
        double all = measure("store_read_all", run_read_all, &ctx, reps);
        double all_f = measure("store_read_all + float rows", run_read_all_features, &ctx, reps);
        double feat = measure("store_read_features", run_features, &ctx, reps);
        if (codec > 0 && all > 0 && all_f > 0 && feat > 0)
                printf("store_read_all: %.2fx the codec's row-by-row rate; float rows: "
                       "store_read_features %.2fx store_read_all + conversion\n",
                       codec / all, all_f / feat);

        dm_free(ctx.row);
        gd_segment_free(ctx.seg);
        dm_buf_release(&bytes);
        gd_table_free(t);
        dm_free(sc.cols);
        store_close(s);
        nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        return 0;
}
