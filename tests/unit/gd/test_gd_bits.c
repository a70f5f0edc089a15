/* Bit entropy and BaseTree grouping (docs/method.md section 3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "gen.h"

/* A known test vector: six rows of eight bits, one 0/1 column per bit. */
static struct gd_table *vector_table(void)
{
        static const char *rows[] = {"10100110", "11011100", "01101011",
                                     "10001101", "01001101", "11011100"};
        struct gd_table *t;
        assert_int_equal(gd_table_new(6, 8, &t), 0);
        for (uint32_t j = 0; j < 8; j++) {
                for (uint64_t i = 0; i < 6; i++)
                        t->cols[j].v[i] = rows[i][j] - '0';
        }
        return t;
}

static struct gd_planes *planes_of(const struct gd_table *t)
{
        struct gd_colparam *p = calloc(t->n_cols, sizeof(*p));
        struct gd_planes *pl;
        assert_non_null(p);
        assert_int_equal(gd_prep_compute(t, p), 0);
        assert_int_equal(gd_planes_build(t, p, &pl), 0);
        free(p);
        return pl;
}

static void entropy_vector(void **state)
{
        (void)state;
        static const double want[8] = {0.9183, 0.9183, 0.9183, 0.9183, 0.6500, 0.6500, 0.9183, 1.0};
        struct gd_table *t = vector_table();
        struct gd_planes *p = planes_of(t);
        double h[8];
        assert_int_equal(p->n_bits, 8);
        assert_int_equal(gd_entropy(p, NULL, 0, h), 0);
        for (int b = 0; b < 8; b++)
                assert_float_equal(h[b], want[b], 1e-4);
        gd_planes_free(p);
        gd_table_free(t);
}

static void grouping_vector(void **state)
{
        (void)state;
        struct gd_table *t = vector_table();
        struct gd_planes *p = planes_of(t);
        struct gd_groups g;
        uint32_t cnt;
        assert_int_equal(gd_groups_init(&g, NULL, 6), 0);
        assert_int_equal(g.n_groups, 1);
        assert_int_equal(gd_groups_try(&g, p, 4, &cnt), 0);
        assert_int_equal(cnt, 2);
        gd_groups_commit(&g, cnt);
        assert_int_equal(gd_groups_try(&g, p, 5, &cnt), 0);
        assert_int_equal(cnt, 3);
        gd_groups_commit(&g, cnt);
        /* Rows 1 and 5 are identical: they must share a group. */
        assert_int_equal(g.gid[1], g.gid[5]);
        assert_int_equal(gd_groups_try(&g, p, 8, &cnt), DREAM_E_RANGE);
        gd_groups_release(&g);
        gd_planes_free(p);
        gd_table_free(t);
}

/* Adding bits never decreases the group count, on any bit order, for the
 * whole table and for a row subset; and a bit constant within the set never
 * changes the grouping. */
static void groups_never_decrease(void **state)
{
        (void)state;
        for (uint64_t seed = 1; seed <= 20; seed++) {
                struct gd_table *t = gen_table(GEN_MIXED, 500 + seed * 37, 6, seed);
                struct gd_planes *p = planes_of(t);
                uint64_t *rows = malloc(t->n_rows / 2 * sizeof(uint64_t));
                uint64_t st = seed * 7;
                for (uint64_t i = 0; i < t->n_rows / 2; i++)
                        rows[i] = i * 2;
                for (int subset = 0; subset < 2; subset++) {
                        struct gd_groups g;
                        uint64_t n = subset ? t->n_rows / 2 : t->n_rows;
                        assert_int_equal(gd_groups_init(&g, subset ? rows : NULL, n), 0);
                        uint32_t prev = 1;
                        for (int k = 0; k < 60; k++) {
                                uint32_t cnt, pos = (uint32_t)gen_below(&st, p->n_bits);
                                assert_int_equal(gd_groups_try(&g, p, pos, &cnt), 0);
                                assert_true(cnt >= prev);
                                assert_true(cnt <= 2 * prev);
                                assert_true(cnt <= n);
                                gd_groups_commit(&g, cnt);
                                prev = cnt;
                                for (uint64_t i = 0; i < n; i++)
                                        assert_true(g.gid[i] < cnt);
                        }
                        gd_groups_release(&g);
                }
                free(rows);
                gd_planes_free(p);
                gd_table_free(t);
        }
}

static void planes_match_codes(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_MIXED, 333, 7, 99);
        struct gd_colparam par[7];
        struct gd_planes *p;
        assert_int_equal(gd_prep_compute(t, par), 0);
        assert_int_equal(gd_planes_build(t, par, &p), 0);
        for (uint32_t j = 0; j < 7; j++) {
                unsigned w = par[j].width;
                assert_int_equal(p->col_start[j + 1] - p->col_start[j], w);
                for (uint64_t i = 0; i < t->n_rows; i++) {
                        uint64_t code = (uint64_t)t->cols[j].v[i] - (uint64_t)par[j].min;
                        for (unsigned b = 0; b < w; b++)
                                assert_int_equal(gd_planes_bit(p, p->col_start[j] + b, i),
                                                 (code >> (w - 1 - b)) & 1);
                }
        }
        gd_planes_free(p);
        gd_table_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(entropy_vector),
            cmocka_unit_test(grouping_vector),
            cmocka_unit_test(groups_never_decrease),
            cmocka_unit_test(planes_match_codes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
