/* Encoding, the container and random access: lossless on every column type,
 * corruption and truncation always detected (docs/method.md section 6, FORMAT.md). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "gen.h"

static struct dm_buf encode(const struct gd_table *t, int codec, struct gd_condensed *cond)
{
        struct gd_encode_opts o;
        struct gd_segment *s;
        struct dm_buf b;
        gd_encode_opts_default(&o);
        o.force_codec = codec;
        o.source_bytes = 12345;
        assert_int_equal(gd_segment_encode(t, &o, &s), 0);
        if (cond)
                gd_segment_set_condensed(s, cond);
        dm_buf_init(&b);
        assert_int_equal(gd_segment_serialize(s, &b), 0);
        struct gd_stats st;
        gd_segment_stats(s, &st);
        assert_int_equal(st.total_bytes, b.len);
        gd_segment_free(s);
        return b;
}

/* gd_cursor_features on rows [first, first + n) equals converting the
 * decoded cells one by one (bit for bit: NaN and -0.0 included). */
static void features_match(const struct gd_segment *s, const struct gd_table *t, int32_t skip,
                           uint64_t first, uint64_t n)
{
        const struct gd_colparam *p = gd_segment_params(s);
        uint32_t d = t->n_cols - (skip >= 0 ? 1 : 0);
        float *x = calloc(n * d + 1, sizeof(float));
        double *y = calloc(n + 1, sizeof(double));
        struct gd_cursor *c;
        assert_non_null(x);
        assert_non_null(y);
        assert_int_equal(gd_cursor_new(s, &c), 0);
        assert_int_equal(gd_cursor_features(c, first, n, skip, x, skip >= 0 ? y : NULL), 0);
        for (uint64_t i = 0; i < n; i++) {
                for (uint32_t j = 0, f = 0; j < t->n_cols; j++) {
                        double v = gd_value_f64(p[j].kind, p[j].scale, t->cols[j].v[first + i]);
                        float fv = (float)v;
                        if ((int32_t)j == skip) {
                                assert_memory_equal(&y[i], &v, sizeof(v));
                                continue;
                        }
                        assert_memory_equal(&x[i * d + f], &fv, sizeof(fv));
                        f++;
                }
        }
        gd_cursor_free(c);
        free(x);
        free(y);
}

static void roundtrip_one(const struct gd_table *t, int codec)
{
        struct dm_buf b = encode(t, codec, NULL);
        struct gd_segment *s;
        struct gd_table *out;
        assert_int_equal(gd_segment_open(b.data, b.len, &s), 0);
        assert_int_equal(gd_segment_verify(s), 0);
        assert_int_equal(gd_segment_decode(s, &out), 0);
        assert_true(gen_tables_equal(t, out));
        assert_int_equal(out->target, t->target);
        assert_int_equal(out->task, t->task);
        for (uint32_t j = 0; j < t->n_cols; j++)
                assert_string_equal(out->cols[j].name, t->cols[j].name);
        /* Training rows: every column, without the last, from the middle. */
        features_match(s, t, -1, 0, t->n_rows);
        features_match(s, t, (int32_t)t->n_cols - 1, 0, t->n_rows);
        features_match(s, t, 0, t->n_rows / 3, t->n_rows - t->n_rows / 3);
        struct gd_stats st;
        gd_segment_stats(s, &st);
        assert_int_equal(st.source_bytes, 12345);
        assert_int_equal(st.total_bytes, b.len);
        struct dm_buf again;
        dm_buf_init(&again);
        assert_int_equal(gd_segment_serialize(s, &again), 0);
        assert_int_equal(again.len, b.len);
        assert_memory_equal(again.data, b.data, b.len);
        dm_buf_release(&again);
        if (codec >= 0)
                assert_int_equal(st.codec, codec);
        gd_table_free(out);
        gd_segment_free(s);
        dm_buf_release(&b);
}

static void roundtrip_shapes(void **state)
{
        (void)state;
        static const struct {
                uint64_t n;
                uint32_t d;
        } sz[] = {{1, 1}, {1, 5}, {2, 1}, {64, 3}, {65, 3}, {1000, 9}, {20000, 7}, {50, 1000}};
        for (int shape = 0; shape < 3; shape++) {
                for (unsigned k = 0; k < sizeof(sz) / sizeof(*sz); k++) {
                        struct gd_table *t =
                            gen_table((enum gen_shape)shape, sz[k].n, sz[k].d, k + 1);
                        for (int codec = -1; codec <= 2; codec++)
                                roundtrip_one(t, codec);
                        gd_table_free(t);
                }
        }
}

/* Extreme values: full int64 range, one-bit columns, all-NaN, -0.0. */
static void roundtrip_extremes(void **state)
{
        (void)state;
        struct gd_table *t;
        assert_int_equal(gd_table_new(300, 5, &t), 0);
        for (uint64_t i = 0; i < 300; i++) {
                t->cols[0].v[i] = i % 2 ? INT64_MAX : INT64_MIN;
                t->cols[1].kind = GD_F64;
                t->cols[1].v[i] = gd_f64_to_key(i % 3 ? -0.0 : 0.0);
                t->cols[2].kind = GD_F64;
                t->cols[2].v[i] = gd_f64_to_key(NAN);
                t->cols[3].kind = GD_DEC;
                t->cols[3].scale = 9;
                t->cols[3].v[i] = (int64_t)i * -999999999;
                t->cols[4].v[i] = (int64_t)(i * 0x9e3779b97f4a7c15ULL);
        }
        for (int codec = -1; codec <= 2; codec++)
                roundtrip_one(t, codec);
        gd_table_free(t);
}

static void roundtrip_million_rows(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_SENSOR, 1000000, 4, 77);
        roundtrip_one(t, -1);
        gd_table_free(t);
}

static void random_access(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_MIXED, 30000, 7, 4);
        for (int codec = 0; codec <= 2; codec++) {
                struct dm_buf b = encode(t, codec, NULL);
                struct gd_segment *s;
                struct gd_cursor *c;
                int64_t v[7];
                uint64_t st = 5;
                assert_int_equal(gd_segment_open(b.data, b.len, &s), 0);
                assert_int_equal(gd_cursor_new(s, &c), 0);
                for (int k = 0; k < 2000; k++) {
                        uint64_t i = gen_below(&st, t->n_rows);
                        assert_int_equal(gd_cursor_row(c, i, v), 0);
                        for (uint32_t j = 0; j < 7; j++)
                                assert_true(v[j] == t->cols[j].v[i]);
                }
                assert_int_equal(gd_cursor_row(c, t->n_rows, v), DREAM_E_RANGE);
                /* Ranges that cross block boundaries. */
                struct gd_table *part;
                assert_int_equal(gd_table_new(5000, 7, &part), 0);
                for (uint64_t first = 0; first + 5000 <= t->n_rows; first += 4321) {
                        assert_int_equal(gd_cursor_range(c, first, 5000, part), 0);
                        for (uint32_t j = 0; j < 7; j++)
                                for (uint64_t i = 0; i < 5000; i++)
                                        assert_true(part->cols[j].v[i] == t->cols[j].v[first + i]);
                }
                assert_int_equal(gd_cursor_range(c, t->n_rows - 10, 11, part), DREAM_E_RANGE);
                /* Column by column, some columns skipped, from a cursor that
                 * last read elsewhere. */
                int64_t *cols[7] = {0};
                for (uint32_t j = 0; j < 7; j += 2)
                        cols[j] = part->cols[j].v;
                for (uint64_t first = 17; first + 5000 <= t->n_rows; first += 7777) {
                        for (uint32_t j = 1; j < 7; j += 2)
                                for (uint64_t i = 0; i < 5000; i++)
                                        part->cols[j].v[i] = -1;
                        assert_int_equal(gd_cursor_columns(c, first, 5000, cols), 0);
                        for (uint32_t j = 0; j < 7; j++)
                                for (uint64_t i = 0; i < 5000; i++)
                                        assert_true(part->cols[j].v[i] ==
                                                    (j % 2 ? -1 : t->cols[j].v[first + i]));
                }
                assert_int_equal(gd_cursor_columns(c, t->n_rows - 10, 11, cols), DREAM_E_RANGE);
                assert_int_equal(gd_cursor_columns(c, t->n_rows, 0, cols), 0);
                float fx[7];
                double fy;
                assert_int_equal(gd_cursor_features(c, 0, 1, 7, fx, NULL), DREAM_E_INVAL);
                assert_int_equal(gd_cursor_features(c, 0, 1, -1, fx, &fy), DREAM_E_INVAL);
                assert_int_equal(gd_cursor_features(c, t->n_rows, 1, -1, fx, NULL), DREAM_E_RANGE);
                gd_table_free(part);
                gd_cursor_free(c);
                gd_segment_free(s);
                dm_buf_release(&b);
        }
        gd_table_free(t);
}

static void condensed_stored(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_CLASSES, 2000, 4, 9);
        struct gd_condense_opts o = {.budget = {.count = 40}, .order = GD_ORDER_MSB};
        struct gd_condensed *c;
        assert_int_equal(gd_condense(t, &o, &c), 0);
        uint32_t m = c->m;
        double x0 = c->x[0], w_last = c->w[m - 1];
        struct dm_buf b = encode(t, -1, c);
        struct gd_segment *s;
        assert_int_equal(gd_segment_open(b.data, b.len, &s), 0);
        const struct gd_condensed *back = gd_segment_condensed(s);
        assert_non_null(back);
        assert_int_equal(back->m, m);
        assert_int_equal(back->d, 3);
        assert_float_equal(back->x[0], x0, 0);
        assert_float_equal(back->w[m - 1], w_last, 0);
        gd_segment_free(s);
        dm_buf_release(&b);
        gd_table_free(t);
}

/* Decode everything; 0 only if every value equals the original. */
static int decode_all(const uint8_t *p, size_t len, const struct gd_table *t)
{
        struct gd_segment *s;
        struct gd_table *out;
        int r = gd_segment_open(p, len, &s);
        if (r < 0)
                return r;
        r = gd_segment_decode(s, &out);
        gd_segment_free(s);
        if (r < 0)
                return r;
        r = gen_tables_equal(t, out) ? 0 : 1;
        gd_table_free(out);
        return r;
}

/* Every single-byte corruption and every truncation is reported as an error:
 * never a crash, never wrong rows. */
static void corruption_detected(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_MIXED, 200, 5, 21);
        struct gd_condense_opts o = {.budget = {.count = 10}, .order = GD_ORDER_MSB};
        for (int codec = 0; codec <= 2; codec++) {
                struct gd_condensed *c;
                assert_int_equal(gd_condense(t, &o, &c), 0);
                struct dm_buf b = encode(t, codec, c);
                uint8_t *copy = malloc(b.len);
                assert_int_equal(decode_all(b.data, b.len, t), 0);
                for (size_t i = 0; i < b.len; i++) {
                        memcpy(copy, b.data, b.len);
                        copy[i] ^= (uint8_t)(1u << (i % 8));
                        int r = decode_all(copy, b.len, t);
                        assert_true(r < 0);
                }
                for (size_t len = 0; len < b.len; len++) {
                        uint8_t *cut = malloc(len ? len : 1);
                        memcpy(cut, b.data, len);
                        int r = decode_all(cut, len, t);
                        assert_true(r < 0);
                        free(cut);
                }
                free(copy);
                dm_buf_release(&b);
        }
        gd_table_free(t);
}

static void error_kinds(void **state)
{
        (void)state;
        struct gd_segment *s;
        struct gd_table *t = gen_table(GEN_SENSOR, 100, 3, 2);
        struct dm_buf b = encode(t, -1, NULL);
        assert_int_equal(gd_segment_open((const uint8_t *)"hello world", 11, &s), DREAM_E_FORMAT);
        assert_int_equal(gd_segment_open(b.data, 5, &s), DREAM_E_TRUNCATED);
        assert_int_equal(gd_segment_open(b.data, 60, &s), DREAM_E_TRUNCATED);
        b.data[20] ^= 1;
        assert_int_equal(gd_segment_open(b.data, b.len, &s), DREAM_E_CHECKSUM);
        b.data[20] ^= 1;
        b.data[b.len - 1] ^= 1; /* inside the last record block */
        assert_int_equal(gd_segment_open(b.data, b.len, &s), 0);
        assert_int_equal(gd_segment_verify(s), DREAM_E_CHECKSUM);
        struct gd_table *out;
        assert_int_equal(gd_segment_decode(s, &out), DREAM_E_CHECKSUM);
        gd_segment_free(s);
        dm_buf_release(&b);
        gd_table_free(t);
}

/* Encode, serialize, open `good`, decode and condense, stopping at the first
 * error, which is returned; everything is freed either way. */
static int alloc_pass(const struct gd_table *t, const struct dm_buf *good)
{
        struct gd_segment *s = NULL;
        struct gd_table *out = NULL;
        struct gd_condensed *c = NULL;
        struct gd_condense_opts o = {.budget = {.count = 20}, .order = GD_ORDER_ENTROPY};
        struct dm_buf b;
        dm_buf_init(&b);
        int r = gd_segment_encode(t, NULL, &s);
        if (r == 0) {
                r = gd_segment_serialize(s, &b);
                gd_segment_free(s);
                s = NULL;
        }
        if (r == 0)
                r = gd_segment_open(good->data, good->len, &s);
        if (r == 0)
                r = gd_segment_decode(s, &out);
        if (r == 0)
                r = gd_condense(t, &o, &c);
        gd_condensed_free(c);
        gd_table_free(out);
        gd_segment_free(s);
        dm_buf_release(&b);
        return r;
}

/* Allocation failure at every point of encode, serialize, open, decode and
 * condense: the allocations of a clean pass are counted, then each one in
 * turn fails, and each time the pass reports DREAM_E_NOMEM; never a crash or
 * a leak (checked by the sanitizer build). */
/* Under ThreadSanitizer a pass takes about a second: every 23rd allocation
 * (and the last) fails there; the plain, ASan and valgrind runs fail each. */
#if defined(__SANITIZE_THREAD__)
#define FAIL_STRIDE 23ul
#else
#define FAIL_STRIDE 1ul
#endif

static void allocation_failures(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_CLASSES, 500, 4, 3);
        struct dm_buf good = encode(t, -1, NULL);
        unsigned long total, nth;

        dm_alloc_fail_at(0, 0); /* injection off, count from 0 */
        assert_int_equal(alloc_pass(t, &good), 0);
        total = dm_alloc_count();
        assert_true(total > 30); /* every step allocates */
        for (unsigned long k = 1; k <= total; k += FAIL_STRIDE) {
                /* The last allocation is always among those failed. */
                nth = k + FAIL_STRIDE > total ? total : k;
                dm_alloc_fail_at(nth, 0);
                int r = alloc_pass(t, &good);
                unsigned long reached = dm_alloc_count();
                dm_alloc_fail_at(0, 0);
                assert_true(reached >= nth); /* the nth allocation was made, and failed */
                assert_int_equal(r, DREAM_E_NOMEM);
        }
        /* Nothing is left half-done: a pass without injection succeeds and
         * makes the same allocations. */
        assert_int_equal(alloc_pass(t, &good), 0);
        assert_int_equal(dm_alloc_count(), total);
        dm_buf_release(&good);
        gd_table_free(t);
}

/* Compressing the record blocks on several threads gives the same bytes. */
static void threads_same_bytes(void **state)
{
        (void)state;
        static const struct {
                uint64_t n;
                uint32_t d;
        } sz[] = {{1, 1}, {1000, 9}, {20000, 7}, {3000, 300}, {200000, 3}};
        for (int shape = 0; shape < 3; shape++) {
                for (unsigned k = 0; k < sizeof(sz) / sizeof(*sz); k++) {
                        struct gd_table *t =
                            gen_table((enum gen_shape)shape, sz[k].n, sz[k].d, k + 11);
                        for (int codec = -1; codec <= 2; codec++) {
                                struct dm_buf ref;
                                dm_buf_init(&ref);
                                for (uint32_t threads = 0; threads <= 3; threads++) {
                                        struct gd_encode_opts o;
                                        struct gd_segment *s;
                                        struct dm_buf b;
                                        gd_encode_opts_default(&o);
                                        o.force_codec = codec;
                                        o.threads = threads;
                                        assert_int_equal(gd_segment_encode(t, &o, &s), 0);
                                        dm_buf_init(&b);
                                        assert_int_equal(gd_segment_serialize(s, &b), 0);
                                        gd_segment_free(s);
                                        if (threads == 0) {
                                                ref = b;
                                                continue;
                                        }
                                        assert_int_equal(b.len, ref.len);
                                        assert_memory_equal(b.data, ref.data, b.len);
                                        dm_buf_release(&b);
                                }
                                dm_buf_release(&ref);
                        }
                        gd_table_free(t);
                }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(roundtrip_shapes),       cmocka_unit_test(roundtrip_extremes),
            cmocka_unit_test(roundtrip_million_rows), cmocka_unit_test(threads_same_bytes),
            cmocka_unit_test(random_access),          cmocka_unit_test(condensed_stored),
            cmocka_unit_test(corruption_detected),    cmocka_unit_test(error_kinds),
            cmocka_unit_test(allocation_failures),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
