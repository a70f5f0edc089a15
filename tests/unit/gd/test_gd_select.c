/* Stage 2 base-bit selection and the size of plain records (docs/method.md sections 5, 6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "gen.h"

static struct gd_planes *planes_of(const struct gd_table *t)
{
        struct gd_colparam *p = calloc(t->n_cols, sizeof(*p));
        struct gd_planes *pl;
        assert_int_equal(gd_prep_compute(t, p), 0);
        assert_int_equal(gd_planes_build(t, p, &pl), 0);
        free(p);
        return pl;
}

/* The chosen prefix has the smallest S among all prefixes of the
 * ascending-entropy order, recomputed here independently. */
static void selection_is_best_prefix(void **state)
{
        (void)state;
        for (uint64_t seed = 1; seed <= 8; seed++) {
                struct gd_table *t =
                    gen_table(seed % 2 ? GEN_CLASSES : GEN_SENSOR, 2000 + 111 * seed, 4, seed);
                struct gd_planes *p = planes_of(t);
                struct gd_selection sel;
                double *h = calloc(p->n_bits, sizeof(double));
                assert_int_equal(gd_select(p, 0, &sel), 0);
                assert_int_equal(gd_entropy(p, NULL, 0, h), 0);

                /* Independent ascending-entropy order (selection sort, ties by position). */
                uint32_t *ord = calloc(p->n_bits, sizeof(uint32_t)), n_ord = 0, n_const = 0;
                uint8_t *used = calloc(p->n_bits, 1);
                for (uint32_t b = 0; b < p->n_bits; b++)
                        n_const += h[b] == 0.0;
                for (uint32_t k = 0; k < p->n_bits - n_const; k++) {
                        int best = -1;
                        for (uint32_t b = 0; b < p->n_bits; b++) {
                                if (h[b] == 0.0 || used[b])
                                        continue;
                                if (best < 0 || h[b] < h[best])
                                        best = (int)b;
                        }
                        used[best] = 1;
                        ord[n_ord++] = (uint32_t)best;
                }
                struct gd_groups g;
                assert_int_equal(gd_groups_init(&g, NULL, t->n_rows), 0);
                uint64_t best_s = gd_size_bits(t->n_rows, p->n_bits, n_const, 1);
                for (uint32_t k = 0; k < n_ord; k++) {
                        uint32_t cnt;
                        assert_int_equal(gd_groups_try(&g, p, ord[k], &cnt), 0);
                        gd_groups_commit(&g, cnt);
                        uint64_t s = gd_size_bits(t->n_rows, p->n_bits, n_const + k + 1, cnt);
                        if (s < best_s)
                                best_s = s;
                }
                assert_int_equal(sel.s_bits, best_s);
                /* base_of is a dense labelling consistent with the base bits. */
                for (uint64_t i = 0; i < t->n_rows; i++)
                        assert_true(sel.base_of[i] < sel.n_bases);
                for (uint64_t i = 1; i < t->n_rows; i++) {
                        int same_base = 1;
                        for (uint32_t b = 0; b < p->n_bits && same_base; b++) {
                                if (sel.is_base[b] &&
                                    gd_planes_bit(p, b, i) != gd_planes_bit(p, b, i - 1))
                                        same_base = 0;
                        }
                        assert_int_equal(same_base, sel.base_of[i] == sel.base_of[i - 1]);
                }
                gd_groups_release(&g);
                free(used);
                free(ord);
                free(h);
                gd_selection_release(&sel);
                gd_planes_free(p);
                gd_table_free(t);
        }
}

static void patience_never_better(void **state)
{
        (void)state;
        struct gd_table *t = gen_table(GEN_SENSOR, 20000, 5, 3);
        struct gd_planes *p = planes_of(t);
        struct gd_selection full, fast;
        assert_int_equal(gd_select(p, 0, &full), 0);
        assert_int_equal(gd_select(p, 4, &fast), 0);
        assert_true(fast.s_bits >= full.s_bits);
        assert_true(fast.bits_scanned <= full.bits_scanned);
        gd_selection_release(&full);
        gd_selection_release(&fast);
        gd_planes_free(p);
        gd_table_free(t);
}

/* Plain records plus the dictionary's base bits are exactly S(B). */
static void record_bytes_equal_s(void **state)
{
        (void)state;
        const uint64_t sizes[] = {1, 7, 1000, 30011};
        for (unsigned k = 0; k < 4; k++) {
                struct gd_table *t = gen_table(GEN_MIXED, sizes[k], 6, k + 1);
                struct gd_encode_opts o;
                struct gd_segment *s;
                struct gd_stats st;
                gd_encode_opts_default(&o);
                o.force_codec = GD_BLOCK_PLAIN;
                assert_int_equal(gd_segment_encode(t, &o, &s), 0);
                gd_segment_stats(s, &st);
                uint32_t id_bits = 0;
                while ((1ull << id_bits) < st.n_bases)
                        id_bits++;
                assert_int_equal(st.record_bits, st.l_c - st.n_base_bits + id_bits);
                assert_int_equal((uint64_t)st.record_bits * st.n_rows +
                                     (uint64_t)st.n_bases * st.n_base_bits,
                                 st.s_bits);
                /* Stored plain bytes: each block rounded up to whole bytes. */
                uint64_t want = 0;
                for (uint64_t first = 0; first < st.n_rows; first += st.rows_per_block) {
                        uint64_t rows = st.n_rows - first < st.rows_per_block ? st.n_rows - first
                                                                              : st.rows_per_block;
                        want += (rows * st.record_bits + 7) / 8;
                }
                assert_int_equal(st.plain_records_bytes, want);
                assert_int_equal(st.records_bytes, want + 8ull * st.n_blocks);
                assert_true(st.plain_records_bytes * 8 - (uint64_t)st.record_bits * st.n_rows <
                            8ull * st.n_blocks);
                gd_segment_free(s);
                gd_table_free(t);
        }
}

static void constant_table_one_base(void **state)
{
        (void)state;
        struct gd_table *t;
        assert_int_equal(gd_table_new(1000, 3, &t), 0);
        for (uint32_t j = 0; j < 3; j++)
                for (uint64_t i = 0; i < 1000; i++)
                        t->cols[j].v[i] = -7;
        struct gd_planes *p = planes_of(t);
        struct gd_selection sel;
        assert_int_equal(gd_select(p, 0, &sel), 0);
        assert_int_equal(sel.n_bases, 1);
        assert_int_equal(sel.n_base_bits, p->n_bits);
        assert_int_equal(sel.s_bits, p->n_bits);
        gd_selection_release(&sel);
        gd_planes_free(p);
        gd_table_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(selection_is_best_prefix),
            cmocka_unit_test(patience_never_better),
            cmocka_unit_test(record_bytes_equal_s),
            cmocka_unit_test(constant_table_one_base),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
