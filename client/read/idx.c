/* IDX reader (the MNIST / Fashion-MNIST format).
 *
 * Layout: magic 0x00 0x00 TT DD (TT element type, DD dimensions), DD
 * big-endian uint32 sizes, then the elements big-endian, row-major. The first
 * dimension is the sample count N; the rest make one row.
 */
#include <endian.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "client/read/read.h"
#include "client/read/read_internal.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"

enum idx_type {
        IDX_UBYTE = 0x08,
        IDX_SBYTE = 0x09,
        IDX_SHORT = 0x0B,
        IDX_INT = 0x0C,
        IDX_FLOAT = 0x0D,
        IDX_DOUBLE = 0x0E,
};

struct idx_arr {
        uint8_t type;
        uint8_t esize;
        uint8_t ndims;
        uint64_t n;   /* samples: the first dimension */
        uint64_t per; /* elements per sample: product of the other dimensions */
        const uint8_t *data;
};

static const char *src_name(enum read_source src)
{
        return src == READ_SRC_LABELS ? "labels" : "images";
}

static int parse_header(const uint8_t *b, size_t len, enum read_source src, struct read_error *err,
                        struct idx_arr *ret)
{
        struct idx_arr a = {0};
        uint32_t dims[DREAM_MAX_IDX_DIMS];
        size_t hdr, need, have;
        uint64_t total;

        if (!b || len < 4)
                return read_fail(err, DREAM_E_TRUNCATED, src, 0, 0,
                                 "%s: truncated idx header (%zu bytes)", src_name(src),
                                 b ? len : 0);
        if (b[0] != 0 || b[1] != 0)
                return read_fail(err, DREAM_E_FORMAT, src, 0, 0,
                                 "%s: bad magic 0x%02x%02x%02x%02x, not an idx file", src_name(src),
                                 b[0], b[1], b[2], b[3]);
        a.type = b[2];
        switch (a.type) {
        case IDX_UBYTE:
        case IDX_SBYTE:
                a.esize = 1;
                break;
        case IDX_SHORT:
                a.esize = 2;
                break;
        case IDX_INT:
        case IDX_FLOAT:
                a.esize = 4;
                break;
        case IDX_DOUBLE:
                a.esize = 8;
                break;
        default:
                return read_fail(err, DREAM_E_FORMAT, src, 0, 0,
                                 "%s: unknown idx element type 0x%02x", src_name(src), a.type);
        }
        a.ndims = b[3];
        if (a.ndims == 0 || a.ndims > DREAM_MAX_IDX_DIMS)
                return read_fail(err, DREAM_E_FORMAT, src, 0, 0,
                                 "%s: %u dimensions (expected 1 to %u)", src_name(src), a.ndims,
                                 DREAM_MAX_IDX_DIMS);
        hdr = 4 + 4 * (size_t)a.ndims;
        if (len < hdr)
                return read_fail(err, DREAM_E_TRUNCATED, src, 0, 0,
                                 "%s: truncated idx header (%zu of %zu bytes)", src_name(src), len,
                                 hdr);
        for (unsigned i = 0; i < a.ndims; i++) {
                uint32_t be;
                memcpy(&be, b + 4 + 4 * i, 4);
                dims[i] = be32toh(be);
        }
        a.n = dims[0];
        a.per = 1;
        for (unsigned i = 1; i < a.ndims; i++) {
                if (dims[i] == 0)
                        return read_fail(err, DREAM_E_EMPTY, src, 0, 0, "%s: dimension %u is zero",
                                         src_name(src), i + 1);
                if (__builtin_mul_overflow(a.per, (uint64_t)dims[i], &a.per) ||
                    a.per > DREAM_MAX_COLS)
                        return read_fail(err, DREAM_E_LIMIT, src, 0, 0,
                                         "%s: too many values per sample (limit %u)", src_name(src),
                                         DREAM_MAX_COLS);
        }
        if (__builtin_mul_overflow(a.n, a.per, &total) ||
            __builtin_mul_overflow(total, (uint64_t)a.esize, &total) || total > SIZE_MAX)
                return read_fail(err, DREAM_E_OVERFLOW, src, 0, 0, "%s: data size overflows",
                                 src_name(src));
        need = (size_t)total;
        have = len - hdr;
        if (have < need)
                return read_fail(err, DREAM_E_TRUNCATED, src, 0, 0,
                                 "%s: truncated data (%zu of %zu bytes)", src_name(src), have,
                                 need);
        if (have > need)
                return read_fail(err, DREAM_E_PARSE, src, 0, 0,
                                 "%s: %zu unexpected bytes after the data", src_name(src),
                                 have - need);
        if (a.n == 0)
                return read_fail(err, DREAM_E_EMPTY, src, 0, 0, "%s: no samples", src_name(src));
        if (a.n > DREAM_MAX_ROWS)
                return read_fail(err, DREAM_E_LIMIT, src, 0, 0, "%s: too many samples",
                                 src_name(src));
        a.data = b + hdr;
        *ret = a;
        return 0;
}

static int is_float(const struct idx_arr *a)
{
        return a->type == IDX_FLOAT || a->type == IDX_DOUBLE;
}

static int64_t get_int(const struct idx_arr *a, uint64_t i)
{
        const uint8_t *p = a->data + i * a->esize;
        switch (a->type) {
        case IDX_UBYTE:
                return p[0];
        case IDX_SBYTE:
                return (int8_t)p[0];
        case IDX_SHORT: {
                uint16_t u;
                memcpy(&u, p, 2);
                return (int16_t)be16toh(u);
        }
        default: {
                uint32_t u;
                memcpy(&u, p, 4);
                return (int32_t)be32toh(u);
        }
        }
}

static double get_float(const struct idx_arr *a, uint64_t i)
{
        const uint8_t *p = a->data + i * a->esize;
        if (a->type == IDX_FLOAT) {
                uint32_t u;
                float f;
                memcpy(&u, p, 4);
                u = be32toh(u);
                memcpy(&f, &u, 4);
                return f;
        } else {
                uint64_t u;
                double d;
                memcpy(&u, p, 8);
                u = be64toh(u);
                memcpy(&d, &u, 8);
                return d;
        }
}

static const double pow10_d[10] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

/* Whether x is stored exactly at scale s: the decoded value (gd_value_f64)
 * equals x bit for bit. */
static int fits_scale(double x, unsigned s, int64_t *ret_v)
{
        double y, back;
        int64_t v;

        if (!isfinite(x))
                return 0;
        y = x * pow10_d[s];
        if (!(fabs(y) < 9007199254740992.0)) /* 2^53 */
                return 0;
        v = llround(y);
        back = gd_value_f64(s ? GD_DEC : GD_INT, (uint8_t)s, v);
        if (memcmp(&back, &x, sizeof(x)) != 0)
                return 0;
        *ret_v = v;
        return 1;
}

/* Column k of array a (stride a->per) into col. */
static void fill_col(struct gd_col *col, const struct idx_arr *a, uint64_t k)
{
        unsigned s = 0;
        int64_t v;
        uint64_t i;

        if (!is_float(a)) {
                col->kind = GD_INT;
                col->scale = 0;
                if (a->type == IDX_UBYTE) {
                        const uint8_t *p = a->data + k;
                        for (i = 0; i < a->n; i++)
                                col->v[i] = p[i * a->per];
                } else {
                        for (i = 0; i < a->n; i++)
                                col->v[i] = get_int(a, i * a->per + k);
                }
                return;
        }
        /* Smallest scale that fits every value; fits_scale is monotone in s
         * for |x * 10^s| < 2^53, and the second loop checks it anyway. */
        for (i = 0; i < a->n && s <= DREAM_MAX_SCALE; i++) {
                double x = get_float(a, i * a->per + k);
                while (s <= DREAM_MAX_SCALE && !fits_scale(x, s, &v))
                        s++;
        }
        if (s <= DREAM_MAX_SCALE) {
                for (i = 0; i < a->n; i++) {
                        if (!fits_scale(get_float(a, i * a->per + k), s, &col->v[i]))
                                break;
                }
                if (i == a->n) {
                        col->kind = s ? GD_DEC : GD_INT;
                        col->scale = (uint8_t)s;
                        return;
                }
        }
        col->kind = GD_F64;
        col->scale = 0;
        for (i = 0; i < a->n; i++)
                col->v[i] = gd_f64_to_key(get_float(a, i * a->per + k));
}

int read_idx(const uint8_t *images, size_t images_len, const uint8_t *labels, size_t labels_len,
             const struct read_opts *opts, struct read_error *err, struct gd_table **ret)
{
        struct idx_arr img, lab;
        struct gd_table *t = NULL;
        uint32_t n_cols;
        int r;

        if (err)
                memset(err, 0, sizeof(*err));
        r = parse_header(images, images_len, READ_SRC_DATA, err, &img);
        if (r < 0)
                return r;
        if (labels) {
                r = parse_header(labels, labels_len, READ_SRC_LABELS, err, &lab);
                if (r < 0)
                        return r;
                if (lab.per != 1)
                        return read_fail(err, DREAM_E_SCHEMA, READ_SRC_LABELS, 0, 0,
                                         "labels: expected one value per sample, found %llu",
                                         (unsigned long long)lab.per);
                if (lab.n != img.n)
                        return read_fail(err, DREAM_E_SCHEMA, READ_SRC_LABELS, 0, 0,
                                         "labels: %llu labels for %llu images",
                                         (unsigned long long)lab.n, (unsigned long long)img.n);
        }
        n_cols = (uint32_t)img.per + (labels ? 1u : 0u);
        if (n_cols > DREAM_MAX_COLS)
                return read_fail(err, DREAM_E_LIMIT, READ_SRC_DATA, 0, 0,
                                 "images: too many values per sample (limit %u)",
                                 DREAM_MAX_COLS - 1);
        r = gd_table_new(img.n, n_cols, &t);
        if (r < 0)
                return read_fail(err, r, READ_SRC_DATA, 0, 0, "cannot allocate the table: %s",
                                 dream_strerror(r));
        for (uint32_t k = 0; k < (uint32_t)img.per; k++) {
                char name[24];
                snprintf(name, sizeof(name), "px%u", k);
                r = gd_table_set_name(t, k, name);
                if (r < 0)
                        goto fail_table;
                if (opts && opts->progress && (k & 63) == 0)
                        opts->progress(opts->progress_ctx, (uint64_t)k * img.n * img.esize,
                                       images_len);
                fill_col(&t->cols[k], &img, k);
        }
        if (labels) {
                uint32_t k = (uint32_t)img.per;
                r = gd_table_set_name(t, k, "label");
                if (r < 0)
                        goto fail_table;
                fill_col(&t->cols[k], &lab, 0);
                t->target = (int32_t)k;
                if (opts && opts->task == READ_TASK_REGRESSION)
                        t->task = GD_TASK_REGRESSION;
                else
                        t->task = GD_TASK_CLASSIFICATION;
        }
        if (opts && opts->progress)
                opts->progress(opts->progress_ctx, images_len, images_len);
        *ret = t;
        return 0;

fail_table:
        gd_table_free(t);
        return read_fail(err, r, READ_SRC_DATA, 0, 0, "cannot build the table: %s",
                         dream_strerror(r));
}
