/* Codec measurements on one packed file, printed as `key value` lines:
 * stage 2 selection time (all bits and with patience), stage 1 time at a
 * budget in both bit orders, stored size at several zstd levels, random row
 * latency, and optionally the column-wise binary of the rows (each column's
 * codes v - min in the smallest of 1, 2, 4 or 8 bytes, little-endian, column
 * after column) for the general-purpose compressors.
 *
 * Usage: codec_stats FILE.dream [--colbin OUT] [--budget B] [--levels]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "storage/gd/gd.h"

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int r)
{
        fprintf(stderr, "codec_stats: %s: %s\n", what, dream_strerror(r));
        exit(1);
}

static int write_colbin(const struct gd_table *t, const char *path)
{
        struct gd_colparam *p = calloc(t->n_cols, sizeof(*p));
        FILE *f = fopen(path, "wb");
        if (!p || !f)
                return -1;
        gd_prep_compute(t, p);
        for (uint32_t j = 0; j < t->n_cols; j++) {
                unsigned bytes = p[j].width <= 8    ? 1
                                 : p[j].width <= 16 ? 2
                                 : p[j].width <= 32 ? 4
                                                    : 8;
                for (uint64_t i = 0; i < t->n_rows; i++) {
                        uint64_t c = (uint64_t)t->cols[j].v[i] - (uint64_t)p[j].min;
                        fwrite(&c, bytes, 1, f); /* little-endian host */
                }
        }
        free(p);
        return fclose(f);
}

static void time_select(const struct gd_table *t, uint32_t patience)
{
        struct gd_colparam *p = calloc(t->n_cols, sizeof(*p));
        struct gd_planes *pl = NULL;
        struct gd_selection sel = {0};
        double t0 = now();
        int r = gd_prep_compute(t, p);
        r = r ? r : gd_planes_build(t, p, &pl);
        double t1 = now();
        r = r ? r : gd_select(pl, patience, &sel);
        if (r)
                die("select", r);
        double t2 = now();
        printf("select_p%u_seconds %.3f\nselect_p%u_planes_seconds %.3f\nselect_p%u_s_bytes %llu\n"
               "select_p%u_bits_scanned %u\nselect_p%u_bases %u\n",
               patience, t2 - t0, patience, t1 - t0, patience, (unsigned long long)(sel.s_bits / 8),
               patience, sel.bits_scanned, patience, sel.n_bases);
        gd_selection_release(&sel);
        gd_planes_free(pl);
        free(p);
}

int main(int argc, char **argv)
{
        const char *colbin = NULL, *budget = "0.01";
        int levels = 0;
        if (argc < 2) {
                fprintf(stderr,
                        "usage: codec_stats FILE.dream [--colbin OUT] [--budget B] [--levels]\n");
                return 1;
        }
        for (int i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "--colbin") && i + 1 < argc)
                        colbin = argv[++i];
                else if (!strcmp(argv[i], "--budget") && i + 1 < argc)
                        budget = argv[++i];
                else if (!strcmp(argv[i], "--levels"))
                        levels = 1;
        }
        int fd = open(argv[1], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
                perror(argv[1]);
                return 1;
        }
        const uint8_t *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        struct gd_segment *s;
        struct gd_table *t;
        int r = gd_segment_open(data, (size_t)st.st_size, &s);
        if (r)
                die("open", r);
        double t0 = now();
        r = gd_segment_decode(s, &t);
        if (r)
                die("decode", r);
        printf("rows %llu\ncols %u\ndecode_seconds %.3f\n", (unsigned long long)t->n_rows,
               t->n_cols, now() - t0);

        /* Random rows: each from a fresh random position (mostly a block miss). */
        struct gd_cursor *c;
        int64_t *v = calloc(t->n_cols, sizeof(int64_t));
        gd_cursor_new(s, &c);
        uint64_t x = 88172645463325252ULL;
        const int reps = 20000;
        t0 = now();
        for (int k = 0; k < reps; k++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if ((r = gd_cursor_row(c, x % t->n_rows, v)) != 0)
                        die("row", r);
        }
        printf("random_row_us %.2f\n", (now() - t0) / reps * 1e6);
        gd_cursor_free(c);
        free(v);

        time_select(t, 0);
        time_select(t, 16);

        struct gd_condense_opts co = {.order = GD_ORDER_MSB};
        if ((r = gd_budget_parse(budget, &co.budget)) != 0)
                die("budget", r);
        for (int order = 0; order < 2; order++) {
                struct gd_condensed *cd;
                co.order = (enum gd_order)order;
                t0 = now();
                r = gd_condense(t, &co, &cd);
                if (r == DREAM_E_BUDGET) { /* fewer samples than classes */
                        printf("condense_%s_seconds n/a\n", order ? "entropy" : "msb");
                        continue;
                }
                if (r != 0)
                        die("condense", r);
                printf("condense_%s_seconds %.3f\ncondense_%s_samples %u\n",
                       order ? "entropy" : "msb", now() - t0, order ? "entropy" : "msb", cd->m);
                gd_condensed_free(cd);
        }
        if (levels) {
                const int lv[] = {1, 3, 6, 9, 19};
                const uint32_t bb[] = {8192, 16384, 32768, 65536};
                for (unsigned k = 0; k < sizeof(bb) / sizeof(*bb); k++) {
                        struct gd_encode_opts o;
                        struct gd_segment *e;
                        struct gd_stats es;
                        struct gd_cursor *cur;
                        int64_t *row = calloc(t->n_cols, sizeof(int64_t));
                        gd_encode_opts_default(&o);
                        o.block_bytes = bb[k];
                        if ((r = gd_segment_encode(t, &o, &e)) != 0)
                                die("encode", r);
                        gd_segment_stats(e, &es);
                        gd_cursor_new(e, &cur);
                        t0 = now();
                        for (int q = 0; q < reps; q++) {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                gd_cursor_row(cur, x % t->n_rows, row);
                        }
                        printf("block%u_bytes %llu\nblock%u_random_row_us %.2f\n", bb[k],
                               (unsigned long long)es.total_bytes, bb[k],
                               (now() - t0) / reps * 1e6);
                        gd_cursor_free(cur);
                        gd_segment_free(e);
                        free(row);
                }
                for (unsigned k = 0; k < sizeof(lv) / sizeof(*lv); k++) {
                        struct gd_encode_opts o;
                        struct gd_segment *e;
                        struct gd_stats es;
                        gd_encode_opts_default(&o);
                        o.zstd_level = lv[k];
                        o.force_codec = GD_BLOCK_ZSTD;
                        t0 = now();
                        if ((r = gd_segment_encode(t, &o, &e)) != 0)
                                die("encode", r);
                        gd_segment_stats(e, &es);
                        printf("zstd%d_bytes %llu\nzstd%d_encode_seconds %.3f\n", lv[k],
                               (unsigned long long)es.total_bytes, lv[k], now() - t0);
                        gd_segment_free(e);
                }
        }
        if (colbin && write_colbin(t, colbin) != 0) {
                perror(colbin);
                return 1;
        }
        gd_table_free(t);
        gd_segment_free(s);
        return 0;
}
