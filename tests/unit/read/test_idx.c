/* IDX reader: element types, labels, scales of float data, bad headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "client/read/read.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"

struct ibuf {
        uint8_t b[4096];
        size_t n;
};

static void put_be32(struct ibuf *o, uint32_t v)
{
        o->b[o->n++] = (uint8_t)(v >> 24);
        o->b[o->n++] = (uint8_t)(v >> 16);
        o->b[o->n++] = (uint8_t)(v >> 8);
        o->b[o->n++] = (uint8_t)v;
}

static void put_header(struct ibuf *o, uint8_t type, unsigned ndims, const uint32_t *dims)
{
        o->n = 0;
        o->b[o->n++] = 0;
        o->b[o->n++] = 0;
        o->b[o->n++] = type;
        o->b[o->n++] = (uint8_t)ndims;
        for (unsigned i = 0; i < ndims; i++)
                put_be32(o, dims[i]);
}

static void put_f32(struct ibuf *o, float f)
{
        uint32_t u;
        memcpy(&u, &f, 4);
        put_be32(o, u);
}

static void put_f64(struct ibuf *o, double d)
{
        uint64_t u;
        memcpy(&u, &d, 8);
        put_be32(o, (uint32_t)(u >> 32));
        put_be32(o, (uint32_t)u);
}

/* 3 images of 2 x 2 ubyte pixels, and 3 labels. */
static void make_mnist(struct ibuf *img, struct ibuf *lab)
{
        const uint32_t d3[3] = {3, 2, 2};
        const uint32_t d1[1] = {3};
        put_header(img, 0x08, 3, d3);
        for (int i = 0; i < 12; i++)
                img->b[img->n++] = (uint8_t)(i * 20);
        put_header(lab, 0x08, 1, d1);
        lab->b[lab->n++] = 7;
        lab->b[lab->n++] = 0;
        lab->b[lab->n++] = 9;
}

static void test_ubyte_with_labels(void **state)
{
        (void)state;
        struct ibuf img, lab;
        struct gd_table *t = NULL;
        struct read_error e;
        make_mnist(&img, &lab);
        assert_int_equal(read_idx(img.b, img.n, lab.b, lab.n, NULL, &e, &t), 0);
        assert_int_equal(t->n_rows, 3);
        assert_int_equal(t->n_cols, 5);
        assert_string_equal(t->cols[0].name, "px0");
        assert_string_equal(t->cols[3].name, "px3");
        assert_string_equal(t->cols[4].name, "label");
        assert_int_equal(t->target, 4);
        assert_int_equal(t->task, GD_TASK_CLASSIFICATION);
        for (int i = 0; i < 3; i++)
                for (int k = 0; k < 4; k++) {
                        assert_int_equal(t->cols[k].kind, GD_INT);
                        assert_int_equal(t->cols[k].v[i], (i * 4 + k) * 20);
                }
        assert_int_equal(t->cols[4].v[0], 7);
        assert_int_equal(t->cols[4].v[2], 9);
        gd_table_free(t);

        /* Without labels. */
        assert_int_equal(read_idx(img.b, img.n, NULL, 0, NULL, &e, &t), 0);
        assert_int_equal(t->n_cols, 4);
        assert_int_equal(t->target, -1);
        gd_table_free(t);
}

static void test_signed_types(void **state)
{
        (void)state;
        struct ibuf o;
        struct gd_table *t = NULL;
        struct read_error e;
        const uint32_t d2[2] = {2, 1};

        put_header(&o, 0x09, 2, d2);
        o.b[o.n++] = 0xff;
        o.b[o.n++] = 0x7f;
        assert_int_equal(read_idx(o.b, o.n, NULL, 0, NULL, &e, &t), 0);
        assert_int_equal(t->cols[0].v[0], -1);
        assert_int_equal(t->cols[0].v[1], 127);
        gd_table_free(t);

        put_header(&o, 0x0B, 2, d2);
        o.b[o.n++] = 0x80;
        o.b[o.n++] = 0x00;
        o.b[o.n++] = 0x01;
        o.b[o.n++] = 0x02;
        assert_int_equal(read_idx(o.b, o.n, NULL, 0, NULL, &e, &t), 0);
        assert_int_equal(t->cols[0].v[0], -32768);
        assert_int_equal(t->cols[0].v[1], 258);
        gd_table_free(t);

        put_header(&o, 0x0C, 2, d2);
        put_be32(&o, 0xffffffffu);
        put_be32(&o, 0x7fffffffu);
        assert_int_equal(read_idx(o.b, o.n, NULL, 0, NULL, &e, &t), 0);
        assert_int_equal(t->cols[0].v[0], -1);
        assert_int_equal(t->cols[0].v[1], INT32_MAX);
        gd_table_free(t);
}

static void test_float_scales(void **state)
{
        (void)state;
        struct ibuf o;
        struct gd_table *t = NULL;
        struct read_error e;
        const uint32_t d2[2] = {3, 3};

        /* float: column 0 = integers (scale 0), column 1 = quarters (scale 2),
         * column 2 = 0.1f (no decimal scale reproduces the float exactly). */
        put_header(&o, 0x0D, 2, d2);
        const float f[9] = {1, 0.25f, 0.1f, -3, -0.5f, 1, 255, 0.75f, 2};
        for (int i = 0; i < 9; i++)
                put_f32(&o, f[i]);
        assert_int_equal(read_idx(o.b, o.n, NULL, 0, NULL, &e, &t), 0);
        assert_int_equal(t->cols[0].kind, GD_INT);
        assert_int_equal(t->cols[0].v[1], -3);
        assert_int_equal(t->cols[1].kind, GD_DEC);
        assert_int_equal(t->cols[1].scale, 2);
        assert_int_equal(t->cols[1].v[1], -50);
        assert_int_equal(t->cols[2].kind, GD_F64);
        for (int i = 0; i < 3; i++)
                for (int k = 0; k < 3; k++)
                        assert_true(gd_table_get(t, (uint64_t)i, (uint32_t)k) ==
                                    (double)f[i * 3 + k]);
        gd_table_free(t);

        /* double: 0.1 has scale 1; -0.0 and NaN need the raw bits. */
        const uint32_t d1[2] = {3, 2};
        put_header(&o, 0x0E, 2, d1);
        const double d[6] = {0.1, -0.0, 2.5, 1.0, -7.3, NAN};
        for (int i = 0; i < 6; i++)
                put_f64(&o, d[i]);
        assert_int_equal(read_idx(o.b, o.n, NULL, 0, NULL, &e, &t), 0);
        assert_int_equal(t->cols[0].kind, GD_DEC);
        assert_int_equal(t->cols[0].scale, 1);
        assert_int_equal(t->cols[0].v[2], -73);
        assert_int_equal(t->cols[1].kind, GD_F64);
        double back = gd_table_get(t, 0, 1);
        assert_memory_equal(&back, &d[1], sizeof(double));
        assert_true(gd_table_get(t, 2, 1) != gd_table_get(t, 2, 1));
        gd_table_free(t);
}

static void expect_idx_err(const struct ibuf *img, const struct ibuf *lab, int code,
                           enum read_source src, const char *part)
{
        struct gd_table *t = NULL;
        struct read_error e;
        int r = read_idx(img->b, img->n, lab ? lab->b : NULL, lab ? lab->n : 0, NULL, &e, &t);
        if (r != code || e.source != src || !strstr(e.msg, part))
                print_error("got %d (%s), source %d: %s\n", r, dream_errname(r), e.source, e.msg);
        assert_int_equal(r, code);
        assert_null(t);
        assert_int_equal(e.source, src);
        assert_int_equal(e.line, 0);
        assert_int_equal(e.column, 0);
        assert_non_null(strstr(e.msg, part));
}

static void test_bad_files(void **state)
{
        (void)state;
        struct ibuf img, lab, x;

        make_mnist(&img, &lab);
        /* Truncated data, truncated header, trailing bytes. */
        x = img;
        x.n--;
        expect_idx_err(&x, &lab, DREAM_E_TRUNCATED, READ_SRC_DATA, "truncated data (11 of 12");
        x.n = 9;
        expect_idx_err(&x, &lab, DREAM_E_TRUNCATED, READ_SRC_DATA, "truncated idx header");
        x.n = 2;
        expect_idx_err(&x, &lab, DREAM_E_TRUNCATED, READ_SRC_DATA, "truncated idx header");
        x = lab;
        x.n--;
        expect_idx_err(&img, &x, DREAM_E_TRUNCATED, READ_SRC_LABELS, "labels: truncated data");
        x = img;
        x.b[x.n++] = 1;
        expect_idx_err(&x, &lab, DREAM_E_PARSE, READ_SRC_DATA, "1 unexpected bytes");

        /* Bad magic, type, dimension count. */
        x = img;
        x.b[0] = 0x1f;
        expect_idx_err(&x, &lab, DREAM_E_FORMAT, READ_SRC_DATA, "bad magic");
        x = img;
        x.b[2] = 0x0A;
        expect_idx_err(&x, &lab, DREAM_E_FORMAT, READ_SRC_DATA, "element type 0x0a");
        x = img;
        x.b[3] = 0;
        expect_idx_err(&x, &lab, DREAM_E_FORMAT, READ_SRC_DATA, "0 dimensions");
        x = img;
        x.b[3] = DREAM_MAX_IDX_DIMS + 1;
        expect_idx_err(&x, &lab, DREAM_E_FORMAT, READ_SRC_DATA, "dimensions");

        /* N mismatch between images and labels. */
        const uint32_t d1[1] = {2};
        put_header(&x, 0x08, 1, d1);
        x.b[x.n++] = 1;
        x.b[x.n++] = 2;
        expect_idx_err(&img, &x, DREAM_E_SCHEMA, READ_SRC_LABELS, "2 labels for 3 images");

        /* Labels with two values per sample. */
        const uint32_t d2[2] = {3, 2};
        put_header(&x, 0x08, 2, d2);
        x.n += 6;
        expect_idx_err(&img, &x, DREAM_E_SCHEMA, READ_SRC_LABELS, "one value per sample");

        /* Dimension product overflow and too many values per sample. */
        const uint32_t big[4] = {1, 0xffffffffu, 0xffffffffu, 0xffffffffu};
        put_header(&x, 0x08, 4, big);
        expect_idx_err(&x, NULL, DREAM_E_LIMIT, READ_SRC_DATA, "too many values");
        const uint32_t huge_n[2] = {0xffffffffu, 65536};
        put_header(&x, 0x0E, 2, huge_n);
        expect_idx_err(&x, NULL, DREAM_E_TRUNCATED, READ_SRC_DATA, "truncated data");
        const uint32_t zero[2] = {0, 4};
        put_header(&x, 0x08, 2, zero);
        expect_idx_err(&x, NULL, DREAM_E_EMPTY, READ_SRC_DATA, "no samples");
        const uint32_t zdim[2] = {4, 0};
        put_header(&x, 0x08, 2, zdim);
        expect_idx_err(&x, NULL, DREAM_E_EMPTY, READ_SRC_DATA, "dimension 2 is zero");
}

static void test_alloc_failures(void **state)
{
        (void)state;
        struct ibuf img, lab;
        unsigned long i;
        make_mnist(&img, &lab);
        for (i = 1; i < 100; i++) {
                struct gd_table *t = NULL;
                struct read_error e;
                dm_alloc_fail_at(i, 0);
                int r = read_idx(img.b, img.n, lab.b, lab.n, NULL, &e, &t);
                dm_alloc_fail_at(0, 0);
                if (r == 0) {
                        gd_table_free(t);
                        break;
                }
                assert_int_equal(r, DREAM_E_NOMEM);
                assert_null(t);
        }
        assert_true(i < 100);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ubyte_with_labels), cmocka_unit_test(test_signed_types),
            cmocka_unit_test(test_float_scales),      cmocka_unit_test(test_bad_files),
            cmocka_unit_test(test_alloc_failures),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
