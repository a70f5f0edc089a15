/* Fashion-MNIST through the IDX reader and the codec: 60,000 (or 10,000)
 * images x 784 pixels plus labels, packed and unpacked bit-exactly. Skipped
 * (exit 77) when the dataset is not installed (apt package
 * dataset-fashion-mnist, /usr/share/datasets/fashion-mnist). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "client/read/read.h"
#include "common/buf.h"
#include "common/err.h"

#define DIR "/usr/share/datasets/fashion-mnist/"

static uint8_t *load_gz(const char *path, size_t *ret_len)
{
        gzFile f = gzopen(path, "rb");
        size_t cap = 1 << 20, n = 0;
        uint8_t *b;
        int k;

        if (!f)
                return NULL;
        b = malloc(cap);
        while (b && (k = gzread(f, b + n, (unsigned)(cap - n))) > 0) {
                n += (size_t)k;
                if (n == cap) {
                        uint8_t *nb = realloc(b, cap * 2);
                        if (!nb) {
                                free(b);
                                b = NULL;
                                break;
                        }
                        b = nb;
                        cap *= 2;
                }
        }
        gzclose(f);
        *ret_len = n;
        return b;
}

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "test_fmnist: check failed line %d: %s\n", __LINE__,       \
                                #cond);                                                            \
                        return 1;                                                                  \
                }                                                                                  \
        } while (0)

int main(int argc, char **argv)
{
        const char *set = argc > 1 ? argv[1] : "t10k";
        char ip[256], lp[256];
        size_t in, ln;
        uint8_t *img, *lab;
        struct gd_table *t = NULL, *back = NULL;
        struct gd_segment *seg = NULL, *opened = NULL;
        struct gd_encode_opts eo;
        struct read_error e;
        struct dm_buf out;
        int r;

        snprintf(ip, sizeof(ip), DIR "%s-images-idx3-ubyte.gz", set);
        snprintf(lp, sizeof(lp), DIR "%s-labels-idx1-ubyte.gz", set);
        img = load_gz(ip, &in);
        lab = load_gz(lp, &ln);
        if (!img || !lab) {
                printf("fashion-mnist not installed: skipped\n");
                free(img);
                free(lab);
                return 77;
        }
        r = read_idx(img, in, lab, ln, NULL, &e, &t);
        if (r < 0)
                fprintf(stderr, "read_idx: %s\n", e.msg);
        CHECK(r == 0);
        CHECK(t->n_cols == 785 && t->target == 784 && t->task == GD_TASK_CLASSIFICATION);
        CHECK(t->n_rows == (strcmp(set, "train") == 0 ? 60000u : 10000u));
        for (uint64_t i = 0; i < t->n_rows; i++)
                CHECK(t->cols[784].v[i] >= 0 && t->cols[784].v[i] <= 9);

        gd_encode_opts_default(&eo);
        eo.source_bytes = in + ln;
        CHECK(gd_segment_encode(t, &eo, &seg) == 0);
        dm_buf_init(&out);
        CHECK(gd_segment_serialize(seg, &out) == 0);
        CHECK(gd_segment_open(out.data, out.len, &opened) == 0);
        CHECK(gd_segment_decode(opened, &back) == 0);
        CHECK(back->n_rows == t->n_rows && back->n_cols == t->n_cols);
        for (uint32_t j = 0; j < t->n_cols; j++)
                CHECK(memcmp(back->cols[j].v, t->cols[j].v, t->n_rows * sizeof(int64_t)) == 0);
        printf("%s: %llu rows, idx %zu bytes -> dream %zu bytes\n", set,
               (unsigned long long)t->n_rows, in + ln, out.len);
        gd_table_free(back);
        gd_segment_free(opened);
        dm_buf_release(&out);
        gd_segment_free(seg);
        gd_table_free(t);
        free(img);
        free(lab);
        return 0;
}
