/* CSV reader: values, kinds, and every error with its exact line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/read/read.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"

static struct gd_table *parse_ok_opts(const char *s, const struct read_opts *o)
{
        struct gd_table *t = NULL;
        struct read_error e;
        int r = read_csv((const uint8_t *)s, strlen(s), o, &e, &t);
        if (r != 0)
                print_error("unexpected error %d at %llu:%u: %s\n", r, (unsigned long long)e.line,
                            e.column, e.msg);
        assert_int_equal(r, 0);
        assert_non_null(t);
        return t;
}

static struct gd_table *parse_ok(const char *s)
{
        return parse_ok_opts(s, NULL);
}

static void expect_err_len(const char *s, size_t len, const struct read_opts *o, int code,
                           uint64_t line, uint32_t col, const char *msg_part)
{
        struct gd_table *t = NULL;
        struct read_error e;
        int r = read_csv((const uint8_t *)s, len, o, &e, &t);
        if (r != code || e.line != line || e.column != col || !strstr(e.msg, msg_part))
                print_error("got %d (%s) at %llu:%u: %s\n", r, dream_errname(r),
                            (unsigned long long)e.line, e.column, e.msg);
        assert_int_equal(r, code);
        assert_null(t);
        assert_int_equal(e.code, code);
        assert_int_equal(e.line, line);
        assert_int_equal(e.column, col);
        assert_non_null(strstr(e.msg, msg_part));
}

static void expect_err(const char *s, int code, uint64_t line, uint32_t col, const char *msg_part)
{
        expect_err_len(s, strlen(s), NULL, code, line, col, msg_part);
}

static void test_ints(void **state)
{
        (void)state;
        struct gd_table *t = parse_ok("a,b\n1,2\n-3,40\n");
        assert_int_equal(t->n_rows, 2);
        assert_int_equal(t->n_cols, 2);
        assert_string_equal(t->cols[0].name, "a");
        assert_string_equal(t->cols[1].name, "b");
        assert_int_equal(t->cols[0].kind, GD_INT);
        assert_int_equal(t->cols[0].v[0], 1);
        assert_int_equal(t->cols[0].v[1], -3);
        assert_int_equal(t->cols[1].v[1], 40);
        assert_int_equal(t->target, -1);
        assert_int_equal(t->task, GD_TASK_NONE);
        gd_table_free(t);
}

static void test_negative_and_mixed_decimals(void **state)
{
        (void)state;
        struct gd_table *t = parse_ok("x,y\n-1.5,1\n-0.25,2.5\n2,3.125\n-0.001,+7\n");
        assert_int_equal(t->cols[0].kind, GD_DEC);
        assert_int_equal(t->cols[0].scale, 3);
        assert_int_equal(t->cols[0].v[0], -1500);
        assert_int_equal(t->cols[0].v[1], -250);
        assert_int_equal(t->cols[0].v[2], 2000);
        assert_int_equal(t->cols[0].v[3], -1);
        assert_int_equal(t->cols[1].kind, GD_DEC);
        assert_int_equal(t->cols[1].scale, 3);
        assert_int_equal(t->cols[1].v[0], 1000);
        assert_int_equal(t->cols[1].v[1], 2500);
        assert_int_equal(t->cols[1].v[2], 3125);
        assert_int_equal(t->cols[1].v[3], 7000);
        gd_table_free(t);
}

static void test_trailing_zeros(void **state)
{
        (void)state;
        /* "1016.60" is 1016.6 and "0.00000010" has 7 decimals; "2.0" is an
         * integer. */
        struct gd_table *t = parse_ok("p,q,r\n1016.60,2.0,.5\n3.10,4.000,5.\n0.00000010,0,0\n");
        assert_int_equal(t->cols[0].kind, GD_DEC);
        assert_int_equal(t->cols[0].scale, 7);
        assert_int_equal(t->cols[0].v[0], 10166000000LL);
        assert_int_equal(t->cols[0].v[2], 1);
        assert_int_equal(t->cols[1].kind, GD_INT);
        assert_int_equal(t->cols[1].v[1], 4);
        assert_int_equal(t->cols[2].kind, GD_DEC);
        assert_int_equal(t->cols[2].scale, 1);
        assert_int_equal(t->cols[2].v[0], 5);
        assert_int_equal(t->cols[2].v[1], 50);
        gd_table_free(t);
}

static void test_nine_decimals_and_int64_edges(void **state)
{
        (void)state;
        struct gd_table *t =
            parse_ok("a,b,c\n0.123456789,9223372036854775807,-9223372036854775808\n"
                     "-1,0,-0\n");
        assert_int_equal(t->cols[0].kind, GD_DEC);
        assert_int_equal(t->cols[0].scale, 9);
        assert_int_equal(t->cols[0].v[0], 123456789);
        assert_int_equal(t->cols[0].v[1], -1000000000LL);
        assert_int_equal(t->cols[1].kind, GD_INT);
        assert_true(t->cols[1].v[0] == INT64_MAX);
        assert_int_equal(t->cols[2].kind, GD_INT);
        assert_true(t->cols[2].v[0] == INT64_MIN);
        assert_int_equal(t->cols[2].v[1], 0);
        gd_table_free(t);
}

static void test_numbered_header(void **state)
{
        (void)state;
        /* numpy/pandas name unnamed columns 0, 1, 2...: a header. */
        struct gd_table *t = parse_ok("0,1,2\n5,6,7\n");
        assert_int_equal(t->n_rows, 1);
        assert_string_equal(t->cols[2].name, "2");
        gd_table_free(t);
}

static void test_constant_one_row_one_column(void **state)
{
        (void)state;
        struct gd_table *t = parse_ok("only\n42");
        assert_int_equal(t->n_rows, 1);
        assert_int_equal(t->n_cols, 1);
        assert_int_equal(t->cols[0].v[0], 42);
        gd_table_free(t);

        t = parse_ok("k,z\n7,1\n7,2\n7,3\n");
        for (int i = 0; i < 3; i++)
                assert_int_equal(t->cols[0].v[i], 7);
        gd_table_free(t);
}

static void test_thousand_columns(void **state)
{
        (void)state;
        char *s = malloc(64 * 1000 * 3);
        size_t n = 0;
        for (int j = 0; j < 1000; j++)
                n += (size_t)sprintf(s + n, "%sc%d", j ? "," : "", j);
        for (int i = 0; i < 2; i++) {
                s[n++] = '\n';
                for (int j = 0; j < 1000; j++)
                        n += (size_t)sprintf(s + n, "%s%d.%d", j ? "," : "", j * (i + 1), i);
        }
        s[n] = '\0';
        struct gd_table *t = parse_ok(s);
        assert_int_equal(t->n_cols, 1000);
        assert_int_equal(t->n_rows, 2);
        assert_string_equal(t->cols[999].name, "c999");
        assert_int_equal(t->cols[999].kind, GD_DEC);
        assert_int_equal(t->cols[999].v[0], 9990);
        assert_int_equal(t->cols[999].v[1], 19981);
        gd_table_free(t);
        free(s);
}

static void test_quoting_crlf_bom_blank(void **state)
{
        (void)state;
        struct gd_table *t = parse_ok(
            "\xef\xbb\xbf\"a b\",\"say \"\"hi\"\"\", c \r\n\"1\",\" 2 \", 3 \r\n\r\n4,5,6");
        assert_int_equal(t->n_rows, 2);
        assert_string_equal(t->cols[0].name, "a b");
        assert_string_equal(t->cols[1].name, "say \"hi\"");
        assert_string_equal(t->cols[2].name, "c");
        assert_int_equal(t->cols[1].v[0], 2);
        assert_int_equal(t->cols[2].v[0], 3);
        assert_int_equal(t->cols[2].v[1], 6);
        gd_table_free(t);
}

static void test_nan_inf(void **state)
{
        (void)state;
        struct gd_table *t = parse_ok("x\nnan\n1.5\n-inf\nInfinity\nNaN\nINF\n");
        assert_int_equal(t->cols[0].kind, GD_F64);
        assert_true(gd_table_get(t, 0, 0) != gd_table_get(t, 0, 0));
        assert_true(gd_table_get(t, 1, 0) == 1.5);
        assert_true(gd_table_get(t, 2, 0) < -1e308);
        assert_true(gd_table_get(t, 3, 0) > 1e308);
        assert_true(gd_table_get(t, 5, 0) > 1e308);
        gd_table_free(t);
}

static void test_f64_fallback(void **state)
{
        (void)state;
        /* Exponents, more than 9 decimals, int64 overflow at the column scale:
         * all stored as doubles that print back as the same number. */
        struct gd_table *t = parse_ok("e,d,o\n1e3,0.1234567890123,9000000000000000000\n"
                                      "-2.5E-3,1,0.5\n");
        for (int j = 0; j < 3; j++)
                assert_int_equal(t->cols[j].kind, GD_F64);
        assert_true(gd_table_get(t, 0, 0) == 1000.0);
        assert_true(gd_table_get(t, 1, 0) == -0.0025);
        assert_true(gd_table_get(t, 0, 1) == 0.1234567890123);
        assert_true(gd_table_get(t, 0, 2) == 9e18);
        assert_true(gd_table_get(t, 1, 2) == 0.5);
        gd_table_free(t);

        /* Not representable: a 25-digit integer, 2^63, 20 significant
         * decimals, an underflow, an overflow to inf. */
        expect_err("a,b\n1,2\n3,1234567890123456789012345\n", DREAM_E_INEXACT, 3, 2,
                   "cannot be stored exactly");
        expect_err("a\n9223372036854775808\n", DREAM_E_INEXACT, 2, 1, "'9223372036854775808'");
        expect_err("a\n1\n0.12345678901234567891\n", DREAM_E_INEXACT, 3, 1, "exactly");
        expect_err("a\n1e-400\n", DREAM_E_INEXACT, 2, 1, "exactly");
        expect_err("a\n1e400\n", DREAM_E_INEXACT, 2, 1, "exactly");
}

static void test_label_and_task(void **state)
{
        (void)state;
        struct read_opts o;
        struct gd_table *t = parse_ok("f,label\n0.5,1\n1.5,0\n2.5,1\n");
        assert_int_equal(t->target, 1);
        assert_int_equal(t->task, GD_TASK_CLASSIFICATION);
        gd_table_free(t);

        t = parse_ok("f,label\n0.5,1.25\n1.5,0\n");
        assert_int_equal(t->task, GD_TASK_REGRESSION);
        gd_table_free(t);

        read_opts_default(&o);
        o.label = "f";
        o.task = READ_TASK_REGRESSION;
        t = parse_ok_opts("f,label\n1,1\n2,0\n", &o);
        assert_int_equal(t->target, 0);
        assert_int_equal(t->task, GD_TASK_REGRESSION);
        gd_table_free(t);

        o.label = "y";
        expect_err_len("a,b\n1,2\n", 8, &o, DREAM_E_NOTFOUND, 1, 0, "label column 'y' not found");

        enum read_task task;
        assert_int_equal(read_task_parse("classification", &task), 0);
        assert_int_equal(task, READ_TASK_CLASSIFICATION);
        assert_int_equal(read_task_parse("bogus", &task), DREAM_E_INVAL);
}

static void test_errors(void **state)
{
        (void)state;
        expect_err("", DREAM_E_EMPTY, 0, 0, "empty file");
        expect_err("\n\r\n\n", DREAM_E_EMPTY, 0, 0, "empty file");
        expect_err("a,b\n", DREAM_E_EMPTY, 1, 0, "no data rows");
        expect_err("\n\na,b\n\n", DREAM_E_EMPTY, 3, 0, "no data rows");
        expect_err("1,2\n3,4\n", DREAM_E_PARSE, 1, 0, "missing header");
        expect_err("0,2\n3,4\n", DREAM_E_PARSE, 1, 0, "missing header");
        expect_err("1.5\n3\n", DREAM_E_PARSE, 1, 0, "missing header");
        expect_err("a,b,c\n1,2,3\n4,5\n", DREAM_E_SCHEMA, 3, 3, "expected 3 cells, found 2");
        expect_err("a,b\n1,2,3,4\n", DREAM_E_SCHEMA, 2, 3, "expected 2 cells, found 4");
        expect_err("a,b\n1,x1\n", DREAM_E_PARSE, 2, 2, "non-numeric cell 'x1'");
        expect_err("a,b\n1,2\n\n3,1-2\n", DREAM_E_PARSE, 4, 2, "non-numeric cell '1-2'");
        expect_err("a,b\n1,\"abc\"\n", DREAM_E_PARSE, 2, 2, "non-numeric cell 'abc'");
        expect_err("a,b\n1,0x10\n", DREAM_E_PARSE, 2, 2, "non-numeric cell '0x10'");
        expect_err("a,b\n1,1e\n", DREAM_E_PARSE, 2, 2, "non-numeric cell '1e'");
        expect_err("a,b\n1,-\n", DREAM_E_PARSE, 2, 2, "non-numeric cell '-'");
        expect_err("a,b\n1,nanx\n", DREAM_E_PARSE, 2, 2, "non-numeric");
        expect_err("a,b\n1,\n", DREAM_E_PARSE, 2, 2, "empty cell");
        expect_err("a,b\n,1\n", DREAM_E_PARSE, 2, 1, "empty cell");
        expect_err("a,b\n1,\"\"\n", DREAM_E_PARSE, 2, 2, "empty cell");
        expect_err("a,b\n1,  \n", DREAM_E_PARSE, 2, 2, "empty cell");
        expect_err("a\n\"1\n2\n", DREAM_E_PARSE, 2, 1, "unterminated quote");
        expect_err("a,\"b\n", DREAM_E_PARSE, 1, 2, "unterminated quote");
        expect_err("a,b,a\n1,2,3\n", DREAM_E_PARSE, 1, 3, "duplicate column name 'a'");
        expect_err("a,,b\n1,2,3\n", DREAM_E_PARSE, 1, 2, "empty column name");
        expect_err("a,\"\"\n1,2\n", DREAM_E_PARSE, 1, 2, "empty column name");
        expect_err("a,\"b\"c\n1,2\n", DREAM_E_PARSE, 1, 2, "closing quote");
        expect_err("a\n1\r2\n", DREAM_E_PARSE, 2, 1, "non-numeric cell '1\\x0d2'");
        expect_err_len("a,b\n1,2\0\n", 9, NULL, DREAM_E_PARSE, 2, 2, "non-numeric cell '2\\x00'");

        /* Cell too long: 200 digits. */
        char buf[512];
        strcpy(buf, "a\n");
        memset(buf + 2, '7', 200);
        strcpy(buf + 202, "\n");
        expect_err(buf, DREAM_E_LIMIT, 2, 1, "cell too long");

        /* Column name too long. */
        memset(buf, 'n', 300);
        strcpy(buf + 300, "\n1\n");
        expect_err(buf, DREAM_E_LIMIT, 1, 1, "column name too long");
}

static void test_too_many_columns(void **state)
{
        (void)state;
        size_t n = 0, cap = (size_t)(DREAM_MAX_COLS + 1) * 8 + 16;
        char *s = malloc(cap);
        for (uint32_t j = 0; j < DREAM_MAX_COLS + 1; j++)
                n += (size_t)sprintf(s + n, "%sc%u", j ? "," : "", j);
        strcpy(s + n, "\n");
        expect_err(s, DREAM_E_LIMIT, 1, DREAM_MAX_COLS + 1, "too many columns");
        free(s);
}

static void test_alloc_failures(void **state)
{
        (void)state;
        const char *s = "a,b,label\n1.5,2,0\n3,4e2,1\n";
        unsigned long i;
        /* Every allocation failing in turn: an error, never a crash or a leak. */
        for (i = 1; i < 200; i++) {
                struct gd_table *t = NULL;
                struct read_error e;
                dm_alloc_fail_at(i, 0);
                int r = read_csv((const uint8_t *)s, strlen(s), NULL, &e, &t);
                dm_alloc_fail_at(0, 0);
                if (r == 0) {
                        gd_table_free(t);
                        break;
                }
                assert_int_equal(r, DREAM_E_NOMEM);
                assert_null(t);
        }
        assert_true(i < 200);
}

/* Past 8 MiB the rows are parsed in two halves, the second on another
 * thread: the same table as one pass, blank lines in the first half
 * included, and an error in the second half at its line. */
static void test_split_halves(void **state)
{
        const uint64_t rows = 1000000;
        size_t cap = 16u << 20, len = 0;
        char *s = malloc(cap);
        struct gd_table *t = NULL;
        struct read_error e;

        (void)state;
        assert_non_null(s);
        len += (size_t)sprintf(s, "a,b\n");
        for (uint64_t i = 0; i < rows; i++) {
                if (i == 10)
                        s[len++] = '\n'; /* a blank line: the second half's rows move down */
                len += (size_t)sprintf(s + len, "%llu,%llu\n", (unsigned long long)i,
                                       (unsigned long long)(i % 97));
        }
        assert_true(len > (9u << 20) && len < cap);
        assert_int_equal(read_csv((const uint8_t *)s, len, NULL, &e, &t), 0);
        assert_int_equal(t->n_rows, rows);
        for (uint64_t i = 0; i < rows; i += 9973) {
                assert_int_equal(t->cols[0].v[i], (int64_t)i);
                assert_int_equal(t->cols[1].v[i], (int64_t)(i % 97));
        }
        assert_int_equal(t->cols[0].v[rows - 1], (int64_t)(rows - 1));
        gd_table_free(t);
        t = NULL;
        /* Row 900000 (line 900003: the header and the blank line before it). */
        char *bad = strstr(s, "\n900000,");
        assert_non_null(bad);
        bad[1] = 'x';
        assert_true(read_csv((const uint8_t *)s, len, NULL, &e, &t) < 0);
        assert_null(t);
        assert_int_equal(e.line, 900003);
        assert_int_equal(e.column, 1);
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ints),
            cmocka_unit_test(test_negative_and_mixed_decimals),
            cmocka_unit_test(test_trailing_zeros),
            cmocka_unit_test(test_nine_decimals_and_int64_edges),
            cmocka_unit_test(test_numbered_header),
            cmocka_unit_test(test_constant_one_row_one_column),
            cmocka_unit_test(test_thousand_columns),
            cmocka_unit_test(test_quoting_crlf_bom_blank),
            cmocka_unit_test(test_nan_inf),
            cmocka_unit_test(test_f64_fallback),
            cmocka_unit_test(test_label_and_task),
            cmocka_unit_test(test_errors),
            cmocka_unit_test(test_too_many_columns),
            cmocka_unit_test(test_alloc_failures),
            cmocka_unit_test(test_split_halves),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
