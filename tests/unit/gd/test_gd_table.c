/* Tables, value mapping and exact printing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gen.h"

static void check_fmt(enum gd_kind k, uint8_t scale, int64_t v, const char *want)
{
        char out[GD_FMT_MAX + 1];
        size_t n = gd_format_value(k, scale, v, out);
        out[n] = 0;
        assert_string_equal(out, want);
}

static void format_values(void **state)
{
        (void)state;
        check_fmt(GD_INT, 0, 0, "0");
        check_fmt(GD_INT, 0, -17, "-17");
        check_fmt(GD_INT, 0, INT64_MIN, "-9223372036854775808");
        check_fmt(GD_INT, 0, INT64_MAX, "9223372036854775807");
        check_fmt(GD_DEC, 2, 101660, "1016.6");
        check_fmt(GD_DEC, 2, 101600, "1016");
        check_fmt(GD_DEC, 3, -5, "-0.005");
        check_fmt(GD_DEC, 9, 1, "0.000000001");
        check_fmt(GD_DEC, 9, -1234567890123, "-1234.567890123");
        check_fmt(GD_DEC, 4, 0, "0");
        check_fmt(GD_F64, 0, gd_f64_to_key(0.1), "0.1");
        check_fmt(GD_F64, 0, gd_f64_to_key(NAN), "nan");
        check_fmt(GD_F64, 0, gd_f64_to_key(-INFINITY), "-inf");
        check_fmt(GD_F64, 0, gd_f64_to_key(INFINITY), "inf");
        check_fmt(GD_F64, 0, gd_f64_to_key(1e300), "1e+300");
        check_fmt(GD_F64, 0, gd_f64_to_key(-0.0), "-0");
}

/* Printed doubles read back bit-exactly. */
static void format_f64_roundtrip(void **state)
{
        (void)state;
        uint64_t st = 1;
        for (int k = 0; k < 100000; k++) {
                uint64_t bits = gen_next(&st);
                double x;
                memcpy(&x, &bits, 8);
                if (isnan(x))
                        continue;
                char out[GD_FMT_MAX + 1];
                size_t n = gd_format_value(GD_F64, 0, gd_f64_to_key(x), out);
                out[n] = 0;
                double y = strtod(out, NULL);
                assert_memory_equal(&x, &y, 8);
        }
}

static void key_order(void **state)
{
        (void)state;
        const double v[] = {-INFINITY, -1e300, -2.5, -1e-300, -0.0,
                            0.0,       1e-300, 3.0,  1e300,   INFINITY};
        for (unsigned i = 0; i + 1 < sizeof(v) / sizeof(*v); i++)
                assert_true(gd_f64_to_key(v[i]) < gd_f64_to_key(v[i + 1]));
        for (unsigned i = 0; i < sizeof(v) / sizeof(*v); i++) {
                double back = gd_key_to_f64(gd_f64_to_key(v[i]));
                assert_memory_equal(&back, &v[i], 8);
        }
        assert_float_equal(gd_value_f64(GD_DEC, 2, -12345), -123.45, 0);
}

static void guess_task(void **state)
{
        (void)state;
        struct gd_table *t;
        assert_int_equal(gd_table_new(1000, 3, &t), 0);
        for (uint64_t i = 0; i < 1000; i++) {
                t->cols[0].v[i] = (int64_t)(i % 256);
                t->cols[1].v[i] = (int64_t)(i % 257);
                t->cols[2].v[i] = (int64_t)(i % 3);
        }
        t->cols[2].kind = GD_DEC;
        t->cols[2].scale = 1;
        assert_int_equal(gd_table_guess_task(t, 0), GD_TASK_CLASSIFICATION);
        assert_int_equal(gd_table_guess_task(t, 1), GD_TASK_REGRESSION);
        assert_int_equal(gd_table_guess_task(t, 2), GD_TASK_REGRESSION);
        assert_int_equal(gd_table_find(t, "c1"), 1);
        assert_int_equal(gd_table_set_name(t, 1, "temp"), 0);
        assert_int_equal(gd_table_find(t, "temp"), 1);
        assert_int_equal(gd_table_find(t, "c1"), -1);
        gd_table_free(t);
        assert_int_equal(gd_table_new(10, 0, &t), DREAM_E_LIMIT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(format_values),
            cmocka_unit_test(format_f64_roundtrip),
            cmocka_unit_test(key_order),
            cmocka_unit_test(guess_task),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
