/* Unit tests of the LMDB store (storage/store.h). */
#include <errno.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "util.h"

struct fixture {
        char dir[64];
        struct store *s;
        struct store_opts opts;
        int fault_next;  /* returned by the fault hook once, then 0 */
        int fault_after; /* commits to let through before fault_next */
};

static int fault_hook(void *arg, enum store_fault_site site)
{
        struct fixture *f = arg;
        int r = f->fault_next;
        (void)site;
        if (f->fault_after > 0) {
                f->fault_after--;
                return 0;
        }
        f->fault_next = 0;
        return r;
}

static int setup_opts(void **state, size_t map_initial, size_t map_max, uint64_t seal_rows)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        tu_tmpdir(f->dir);
        store_opts_default(&f->opts);
        f->opts.map_initial = map_initial;
        f->opts.map_max = map_max;
        f->opts.seal_rows = seal_rows;
        f->opts.fault = fault_hook;
        f->opts.fault_arg = f;
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        *state = f;
        return 0;
}

static int setup(void **state)
{
        return setup_opts(state, 1u << 20, 1ull << 32, 1000);
}

static int setup_tiny(void **state)
{
        return setup_opts(state, 64u << 10, 512u << 10, 1u << 20);
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        store_close(f->s);
        tu_rmrf(f->dir);
        free(f);
        return 0;
}

static void create(struct store *s, const char *name)
{
        assert_int_equal(store_dataset_create(s, name, tu_schema()), 0);
}

static uint64_t append(struct store *s, const char *name, uint64_t k, uint64_t n, unsigned variant,
                       uint64_t batch_id)
{
        struct gd_table *t = tu_batch(k, n, variant);
        uint64_t first = UINT64_MAX;
        assert_int_equal(store_append(s, name, t, batch_id, &first, NULL), 0);
        gd_table_free(t);
        return first;
}

struct scan_state {
        uint64_t next;
        uint64_t chunks;
        bool ok;
};

static int scan_cb(const struct gd_table *chunk, uint64_t first_row, void *arg)
{
        struct scan_state *st = arg;
        if (first_row != st->next || !tu_rows_ok(chunk, first_row))
                st->ok = false;
        st->next = first_row + chunk->n_rows;
        st->chunks++;
        return 0;
}

/* store_read_features equals store_read_all's table converted cell by cell
 * (bit for bit), with and without the target apart. */
static void check_features(struct store *s, const char *name, const struct gd_table *t)
{
        const uint64_t n = t->n_rows;
        float *want_x = calloc(n * t->n_cols + 1, sizeof(float));
        double *want_y = calloc(n + 1, sizeof(double));
        assert_non_null(want_x);
        assert_non_null(want_y);
        for (int32_t skip = -1; skip <= t->target; skip += t->target + 1) {
                uint32_t d = t->n_cols - (skip >= 0 ? 1 : 0), f = 0;
                for (uint32_t j = 0; j < t->n_cols; j++) {
                        const struct gd_col *c = &t->cols[j];
                        for (uint64_t i = 0; i < n; i++) {
                                double v = gd_value_f64(c->kind, c->scale, c->v[i]);
                                if ((int32_t)j == skip)
                                        want_y[i] = v;
                                else
                                        want_x[i * d + f] = (float)v;
                        }
                        f += (int32_t)j != skip;
                }
                float *x = NULL;
                double *y = NULL;
                uint64_t got_n = 0;
                assert_int_equal(
                    store_read_features(s, name, 0, skip, &x, skip >= 0 ? &y : NULL, &got_n), 0);
                assert_int_equal(got_n, n);
                assert_memory_equal(x, want_x, n * d * sizeof(float));
                if (skip >= 0)
                        assert_memory_equal(y, want_y, n * sizeof(double));
                dm_free(x);
                dm_free(y);
        }
        free(want_x);
        free(want_y);
}

static void check_all_rows(struct store *s, const char *name, uint64_t rows)
{
        struct scan_state st = {.ok = true};
        struct gd_table *t = NULL;
        assert_int_equal(store_scan(s, name, 0, 0, UINT64_MAX, 777, scan_cb, &st), 0);
        assert_true(st.ok);
        assert_int_equal(st.next, rows);
        if (rows == 0) {
                assert_int_equal(store_read_all(s, name, 0, &t), DREAM_E_EMPTY);
                return;
        }
        assert_int_equal(store_read_all(s, name, 0, &t), 0);
        assert_int_equal(t->n_rows, rows);
        assert_true(tu_rows_ok(t, 0));
        check_features(s, name, t);
        gd_table_free(t);
}

static void check_row(struct store *s, const char *name, uint64_t row)
{
        int64_t v[TU_COLS];
        struct store_cellfmt fmt[TU_COLS];
        assert_int_equal(store_get_row(s, name, 0, TU_COLS, row, v, fmt), 0);
        for (uint32_t j = 0; j < TU_COLS; j++) {
                double got = gd_value_f64(fmt[j].kind, fmt[j].scale, v[j]);
                assert_true(got == tu_expect(row, j));
        }
}

/* Row `row` holds the values of k = offset + row. */
static void check_row_at(struct store *s, const char *name, uint64_t row, uint64_t offset)
{
        int64_t v[TU_COLS];
        struct store_cellfmt fmt[TU_COLS];
        assert_int_equal(store_get_row(s, name, 0, TU_COLS, row, v, fmt), 0);
        for (uint32_t j = 0; j < TU_COLS; j++)
                assert_true(gd_value_f64(fmt[j].kind, fmt[j].scale, v[j]) ==
                            tu_expect(offset + row, j));
}

/* ---- tests ------------------------------------------------------------------ */

static void test_names(void **state)
{
        struct fixture *f = *state;
        char longname[DREAM_MAX_NAME + 2];
        struct store_column cols[2] = {{.name = "a"}, {.name = "a"}};
        struct store_schema bad = {.n_cols = 2, .cols = cols, .target = -1};

        assert_int_equal(store_name_check("iris_2.v-1"), 0);
        assert_int_equal(store_name_check(""), DREAM_E_INVAL);
        assert_int_equal(store_name_check("a b"), DREAM_E_INVAL);
        assert_int_equal(store_name_check("a/b"), DREAM_E_INVAL);
        assert_int_equal(store_name_check(".hidden"), DREAM_E_INVAL);
        assert_int_equal(store_name_check("-x"), DREAM_E_INVAL);
        memset(longname, 'a', sizeof(longname));
        longname[DREAM_MAX_NAME + 1] = 0;
        assert_int_equal(store_name_check(longname), DREAM_E_INVAL);
        longname[DREAM_MAX_NAME] = 0;
        assert_int_equal(store_name_check(longname), 0);

        assert_int_equal(store_dataset_create(f->s, "bad name", tu_schema()), DREAM_E_INVAL);
        create(f->s, "d1");
        assert_int_equal(store_dataset_create(f->s, "d1", tu_schema()), DREAM_E_EXISTS);
        assert_int_equal(store_dataset_create(f->s, "d2", &bad), DREAM_E_SCHEMA);
        cols[1].name = "b";
        bad.target = 1; /* target without task */
        assert_int_equal(store_dataset_create(f->s, "d2", &bad), DREAM_E_SCHEMA);
        bad.target = -1;
        assert_int_equal(store_dataset_create(f->s, "d2", &bad), 0);

        char **names;
        uint32_t n;
        assert_int_equal(store_dataset_list(f->s, &names, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(names[0], "d1");
        assert_string_equal(names[1], "d2");
        store_names_free(names, n);

        /* A batch with other column names is refused. */
        struct gd_table *t = tu_batch(0, 3, 0);
        uint64_t first;
        assert_int_equal(store_append(f->s, "d2", t, 0, &first, NULL), DREAM_E_SCHEMA);
        assert_int_equal(store_append(f->s, "nope", t, 0, &first, NULL), DREAM_E_NOTFOUND);
        gd_table_free(t);
}

static void test_harmonise(void **state)
{
        int64_t v;
        (void)state;
        assert_int_equal(store_value_convert(GD_INT, 0, 12, GD_DEC, 3, &v), 0);
        assert_int_equal(v, 12000);
        assert_int_equal(store_value_convert(GD_DEC, 3, 12500, GD_DEC, 1, &v), 0);
        assert_int_equal(v, 125);
        assert_int_equal(store_value_convert(GD_DEC, 3, 12501, GD_DEC, 1, &v), DREAM_E_INEXACT);
        assert_int_equal(store_value_convert(GD_INT, 0, INT64_MAX / 10, GD_DEC, 2, &v),
                         DREAM_E_INEXACT);
        assert_int_equal(store_value_convert(GD_F64, 0, gd_f64_to_key(2.5), GD_DEC, 1, &v), 0);
        assert_int_equal(v, 25);
        assert_int_equal(store_value_convert(GD_F64, 0, gd_f64_to_key(NAN), GD_INT, 0, &v),
                         DREAM_E_INEXACT);
        assert_int_equal(store_value_convert(GD_DEC, 2, -125, GD_F64, 0, &v), 0);
        assert_true(gd_key_to_f64(v) == -1.25);

        /* int + decimal(3) + id as decimal(2): columns widen to the max scale. */
        struct gd_table *a = tu_batch(0, 5, 0), *b = tu_batch(5, 5, 1), *c = tu_batch(10, 5, 2);
        const struct gd_table *parts[3] = {a, b, c};
        struct gd_table *t;
        assert_int_equal(store_table_concat(parts, 3, &t), 0);
        assert_int_equal(t->n_rows, 15);
        assert_int_equal(t->cols[0].kind, GD_DEC);
        assert_int_equal(t->cols[0].scale, 2);
        assert_int_equal(t->cols[1].kind, GD_DEC);
        assert_int_equal(t->cols[1].scale, 3);
        assert_int_equal(t->cols[2].kind, GD_F64);
        assert_int_equal(t->cols[3].kind, GD_INT);
        assert_true(tu_rows_ok(t, 0));
        gd_table_free(t);

        /* A value that overflows at the common scale: the column goes F64. */
        a->cols[0].v[0] = INT64_MAX / 2;
        a->cols[0].v[1] = 3;
        assert_int_equal(store_table_concat(parts, 3, &t), 0);
        assert_int_equal(t->cols[0].kind, GD_F64);
        assert_true(gd_table_get(t, 1, 0) == 3.0);
        assert_true(gd_table_get(t, 12, 0) == 12.0);
        gd_table_free(t);
        gd_table_free(a);
        gd_table_free(b);
        gd_table_free(c);

        /* The fast text length equals the printed length. */
        srand(7);
        for (int i = 0; i < 100000; i++) {
                char buf[GD_FMT_MAX];
                int64_t x = ((int64_t)rand() << 20) ^ rand();
                if (i & 1)
                        x = -x;
                if (i % 7 == 0)
                        x /= 1000;
                uint8_t sc = (uint8_t)(i % 10);
                enum gd_kind k = sc ? GD_DEC : GD_INT;
                assert_int_equal(store_cell_text_len(k, sc, x), gd_format_value(k, sc, x, buf));
        }
}

static void test_basic(void **state)
{
        struct fixture *f = *state;
        struct store_info *info;
        uint64_t sealed;
        bool needs;

        create(f->s, "ds");
        assert_int_equal(append(f->s, "ds", 0, 300, 0, 0), 0);
        assert_int_equal(append(f->s, "ds", 300, 500, 1, 0), 300);
        assert_int_equal(append(f->s, "ds", 800, 100, 2, 0), 800);
        check_all_rows(f->s, "ds", 900);
        for (uint64_t r = 0; r < 900; r += 37)
                check_row(f->s, "ds", r);
        int64_t v[TU_COLS];
        assert_int_equal(store_get_row(f->s, "ds", 0, TU_COLS, 900, v, NULL), DREAM_E_RANGE);

        assert_int_equal(store_dataset_describe(f->s, "ds", &info), 0);
        assert_int_equal(info->rows, 900);
        assert_int_equal(info->staged_rows, 900);
        assert_int_equal(info->staged_batches, 3);
        assert_int_equal(info->segments, 0);
        assert_int_equal(info->schema.n_cols, TU_COLS);
        assert_string_equal(info->schema.cols[2].name, "z");
        assert_int_equal(info->schema.target, 3);
        assert_true(info->raw_bytes > 900 * 8);
        assert_true(info->stored_bytes > 900 * TU_COLS);
        store_info_free(info);

        /* Not enough rows for a seal unless forced. */
        assert_int_equal(store_seal(f->s, "ds", false, &sealed), 0);
        assert_int_equal(sealed, 0);
        assert_int_equal(store_seal(f->s, "ds", true, &sealed), 0);
        assert_int_equal(sealed, 900);
        assert_int_equal(store_dataset_describe(f->s, "ds", &info), 0);
        assert_int_equal(info->rows, 900);
        assert_int_equal(info->staged_rows, 0);
        assert_int_equal(info->sealed_rows, 900);
        assert_int_equal(info->segments, 1);
        assert_true(info->bases > 0);
        assert_true(info->ratio > 0);
        store_info_free(info);
        check_all_rows(f->s, "ds", 900);
        for (uint64_t r = 0; r < 900; r += 13)
                check_row(f->s, "ds", r);

        /* Appends past seal_rows ask for a seal; segments + staged read back. */
        struct gd_table *t = tu_batch(900, 1200, 1);
        uint64_t first;
        assert_int_equal(store_append(f->s, "ds", t, 0, &first, &needs), 0);
        gd_table_free(t);
        assert_int_equal(first, 900);
        assert_true(needs);
        append(f->s, "ds", 2100, 50, 0, 0);
        check_all_rows(f->s, "ds", 2150);
        assert_int_equal(store_seal(f->s, "ds", false, &sealed), 0);
        assert_int_equal(sealed, 1200);
        check_all_rows(f->s, "ds", 2150);
        for (uint64_t r = 0; r < 2150; r += 11)
                check_row(f->s, "ds", r);
        uint64_t problems = 99;
        assert_int_equal(store_check(f->s, NULL, NULL, &problems), 0);
        assert_int_equal(problems, 0);

        /* Partial scans. */
        struct scan_state st = {.ok = true, .next = 850};
        assert_int_equal(store_scan(f->s, "ds", 0, 850, 1000, 64, scan_cb, &st), 0);
        assert_true(st.ok);
        assert_int_equal(st.next, 1850);
        assert_int_equal(store_scan(f->s, "ds", 0, 2151, 1, 64, scan_cb, &st), DREAM_E_RANGE);

        /* Survives a reopen. */
        store_close(f->s);
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        check_all_rows(f->s, "ds", 2150);

        /* Drop: gone, name reusable, space reused. */
        assert_int_equal(store_dataset_drop(f->s, "ds"), 0);
        assert_int_equal(store_dataset_describe(f->s, "ds", &info), DREAM_E_NOTFOUND);
        assert_int_equal(store_dataset_drop(f->s, "ds"), DREAM_E_NOTFOUND);
        create(f->s, "ds");
        assert_int_equal(store_dataset_describe(f->s, "ds", &info), 0);
        assert_int_equal(info->rows, 0);
        store_info_free(info);
        assert_int_equal(append(f->s, "ds", 0, 10, 0, 0), 0);
        check_all_rows(f->s, "ds", 10);
}

static void test_drop_reuses_space(void **state)
{
        struct fixture *f = *state;
        size_t map0;
        create(f->s, "a");
        for (int round = 0; round < 20; round++) {
                for (int i = 0; i < 10; i++)
                        append(f->s, "a", (uint64_t)i * 2000, 2000, 0, 0);
                assert_int_equal(store_dataset_drop(f->s, "a"), 0);
                create(f->s, "a");
                if (round == 2)
                        map0 = store_map_size(f->s);
        }
        /* 20 rounds of 20,000 rows x 40 bytes would need ~16 MB without reuse. */
        assert_int_equal(store_map_size(f->s), map0);
}

static void test_idempotent(void **state)
{
        struct fixture *f = *state;
        struct store_info *info;
        create(f->s, "ds");
        assert_int_equal(append(f->s, "ds", 0, 100, 0, 41), 0);
        assert_int_equal(append(f->s, "ds", 100, 50, 0, 42), 100);
        /* Re-sent: the original first row, nothing stored. */
        assert_int_equal(append(f->s, "ds", 0, 100, 0, 41), 0);
        assert_int_equal(append(f->s, "ds", 100, 50, 0, 42), 100);
        assert_int_equal(store_dataset_describe(f->s, "ds", &info), 0);
        assert_int_equal(info->rows, 150);
        store_info_free(info);
        /* Same id, different row count: refused. */
        struct gd_table *t = tu_batch(150, 7, 0);
        uint64_t first;
        assert_int_equal(store_append(f->s, "ds", t, 41, &first, NULL), DREAM_E_EXISTS);
        gd_table_free(t);
        /* Still idempotent after sealing. */
        assert_int_equal(store_seal(f->s, "ds", true, NULL), 0);
        assert_int_equal(append(f->s, "ds", 100, 50, 0, 42), 100);
        check_all_rows(f->s, "ds", 150);
}

struct race {
        struct store *s;
        int stop;
        uint64_t rows;
        uint64_t scans;
        bool ok;
};

static void *scanner(void *arg)
{
        struct race *r = arg;
        while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
                struct scan_state st = {.ok = true};
                if (store_scan(r->s, "ds", 0, 0, UINT64_MAX, 97, scan_cb, &st) != 0 || !st.ok ||
                    st.next != r->rows)
                        r->ok = false;
                int64_t v[TU_COLS];
                struct store_cellfmt fmt[TU_COLS];
                uint64_t row = (r->scans * 7919) % r->rows;
                if (store_get_row(r->s, "ds", 0, TU_COLS, row, v, fmt) != 0 ||
                    gd_value_f64(fmt[0].kind, fmt[0].scale, v[0]) != (double)row)
                        r->ok = false;
                __atomic_add_fetch(&r->scans, 1, __ATOMIC_RELEASE);
        }
        return NULL;
}

static void test_reads_during_seal(void **state)
{
        struct fixture *f = *state;
        struct race r = {.s = f->s, .ok = true};
        pthread_t th;
        uint64_t k = 0;

        create(f->s, "ds");
        for (int i = 0; i < 60; i++) {
                uint64_t n = 50 + (uint64_t)(i * 37) % 200;
                append(f->s, "ds", k, n, (unsigned)i % 3, 0);
                k += n;
        }
        r.rows = k;
        assert_int_equal(pthread_create(&th, NULL, scanner, &r), 0);
        /* Seal segment by segment (seal_rows = 1000) while the scanner runs. */
        uint64_t total = 0, sealed;
        while (__atomic_load_n(&r.scans, __ATOMIC_ACQUIRE) < 3)
                ;
        assert_int_equal(store_seal(f->s, "ds", true, &sealed), 0);
        total += sealed;
        uint64_t scans_during = __atomic_load_n(&r.scans, __ATOMIC_ACQUIRE);
        __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        assert_true(r.ok);
        assert_int_equal(total, k);
        assert_true(r.scans >= scans_during);
        struct store_info *info;
        assert_int_equal(store_dataset_describe(f->s, "ds", &info), 0);
        assert_true(info->segments >= 5);
        assert_int_equal(info->staged_rows, 0);
        store_info_free(info);
        check_all_rows(f->s, "ds", k);
}

static void test_appends_during_seal(void **state)
{
        struct fixture *f = *state;
        create(f->s, "ds");
        uint64_t k = 0;
        for (int i = 0; i < 20; i++) {
                append(f->s, "ds", k, 300, 0, 0);
                k += 300;
                assert_int_equal(store_seal(f->s, "ds", false, NULL), 0);
        }
        check_all_rows(f->s, "ds", k);
        assert_int_equal(store_seal(f->s, "ds", true, NULL), 0);
        check_all_rows(f->s, "ds", k);
}

static void test_condensed_cache(void **state)
{
        struct fixture *f = *state;
        struct gd_condense_opts o = {.budget = {.count = 12}, .order = GD_ORDER_MSB};
        struct gd_condensed *c1, *c2, *c3, *ref;
        struct gd_table *t;
        bool cached;

        create(f->s, "ds");
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &c1, &cached), DREAM_E_EMPTY);
        append(f->s, "ds", 0, 700, 0, 0);
        assert_int_equal(store_seal(f->s, "ds", true, NULL), 0);
        append(f->s, "ds", 700, 400, 1, 0);

        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &c1, &cached), 0);
        assert_false(cached);
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &c2, &cached), 0);
        assert_true(cached);
        /* Same as stage 1 over all decoded rows. */
        assert_int_equal(store_read_all(f->s, "ds", 0, &t), 0);
        assert_int_equal(gd_condense(t, &o, &ref), 0);
        gd_table_free(t);
        assert_int_equal(c2->m, ref->m);
        assert_int_equal(c2->d, ref->d);
        assert_memory_equal(c2->x, ref->x, sizeof(double) * ref->m * ref->d);
        assert_memory_equal(c2->w, ref->w, sizeof(double) * ref->m);
        assert_memory_equal(c2->y, ref->y, sizeof(double) * ref->m);
        assert_memory_equal(c2->v, ref->v, sizeof(double) * ref->m * ref->d);
        assert_memory_equal(c1->v, ref->v, sizeof(double) * ref->m * ref->d);
        double wsum = 0;
        for (uint32_t i = 0; i < c2->m; i++)
                wsum += c2->w[i];
        assert_true(wsum == 1100.0);
        gd_condensed_free(ref);

        /* An append makes the entry stale. */
        append(f->s, "ds", 1100, 10, 0, 0);
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &c3, &cached), 0);
        assert_false(cached);
        wsum = 0;
        for (uint32_t i = 0; i < c3->m; i++)
                wsum += c3->w[i];
        assert_true(wsum == 1110.0);
        gd_condensed_free(c3);
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &c3, &cached), 0);
        assert_true(cached);
        gd_condensed_free(c3);
        /* Other stage 1 options are other entries. */
        {
                struct gd_condense_opts o2 = o;
                o2.refine = GD_REFINE_NONE;
                assert_int_equal(store_condensed(f->s, "ds", 0, &o2, &c3, &cached), 0);
                assert_false(cached);
                gd_condensed_free(c3);
                o2.refine = o.refine;
                o2.fill = GD_FILL_NONE;
                assert_int_equal(store_condensed(f->s, "ds", 0, &o2, &c3, &cached), 0);
                assert_false(cached);
                gd_condensed_free(c3);
                assert_int_equal(store_condensed(f->s, "ds", 0, &o2, &c3, &cached), 0);
                assert_true(cached);
                gd_condensed_free(c3);
        }
        /* Another order is another entry. */
        o.order = GD_ORDER_ENTROPY;
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &c3, &cached), 0);
        assert_false(cached);
        gd_condensed_free(c3);
        gd_condensed_free(c1);
        gd_condensed_free(c2);
}

static void same_samples(const struct gd_condensed *a, const struct gd_condensed *b)
{
        assert_int_equal(a->m, b->m);
        assert_int_equal(a->d, b->d);
        assert_memory_equal(a->x, b->x, sizeof(double) * a->m * a->d);
        assert_memory_equal(a->v, b->v, sizeof(double) * a->m * a->d);
        assert_memory_equal(a->w, b->w, sizeof(double) * a->m);
        assert_memory_equal(a->y, b->y, sizeof(double) * a->m);
}

/* b (freed) holds the samples gd_condense makes of t with o. */
static void same_as_built(const struct gd_table *t, const struct gd_condense_opts *o,
                          struct gd_condensed *b)
{
        struct gd_condensed *ref;
        assert_int_equal(gd_condense(t, o, &ref), 0);
        same_samples(b, ref);
        gd_condensed_free(ref);
        gd_condensed_free(b);
}

/* The exclusion is part of the entry's key: the same rows left out find the
 * entry (x, w, y and v as built), other rows (or none) are another entry;
 * a bad exclusion and a row_group array are refused before the cache. */
static void test_condensed_exclusion(void **state)
{
        struct fixture *f = *state;
        uint64_t ex1[] = {0, 5, 6, 300, 999}, ex2[] = {0, 5, 7, 300, 999}, bad[] = {5, 5};
        struct gd_condense_opts o = {.budget = {.fraction = 0.05}, .order = GD_ORDER_ENTROPY};
        struct gd_condensed *a, *b;
        struct gd_table *t;
        uint32_t rg[1000];
        bool cached;

        create(f->s, "ds");
        append(f->s, "ds", 0, 1000, 0, 0);
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &a, &cached), 0);
        assert_false(cached);
        o.exclude = ex1;
        o.n_exclude = 5;
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &b, &cached), 0);
        assert_false(cached);
        double wsum = 0;
        for (uint32_t g = 0; g < b->m; g++)
                wsum += b->w[g];
        assert_true(wsum == 995.0);
        assert_int_equal(store_read_all(f->s, "ds", 0, &t), 0);
        same_as_built(t, &o, b);
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &b, &cached), 0);
        assert_true(cached);
        same_as_built(t, &o, b);
        /* Other rows left out: another entry. */
        o.exclude = ex2;
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &b, &cached), 0);
        assert_false(cached);
        same_as_built(t, &o, b);
        /* Fewer of the same rows: another entry too. */
        o.exclude = ex1;
        o.n_exclude = 4;
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &b, &cached), 0);
        assert_false(cached);
        gd_condensed_free(b);
        /* None: the first entry, still there. */
        o.exclude = NULL;
        o.n_exclude = 0;
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &b, &cached), 0);
        assert_true(cached);
        same_samples(a, b);
        gd_condensed_free(b);
        gd_condensed_free(a);
        o.exclude = bad;
        o.n_exclude = 2;
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &b, &cached), DREAM_E_INVAL);
        ex2[4] = 1000; /* past the last row */
        o.exclude = ex2;
        o.n_exclude = 5;
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &b, &cached), DREAM_E_INVAL);
        o.exclude = NULL;
        o.n_exclude = 0;
        o.row_group = rg;
        assert_int_equal(store_condensed(f->s, "ds", 0, &o, &b, &cached), DREAM_E_INVAL);
        gd_table_free(t);
        uint64_t problems = UINT64_MAX;
        assert_int_equal(store_check(f->s, NULL, NULL, &problems), 0);
        assert_int_equal(problems, 0);
}

/* Equal to 1e-13 relative: the sums are long double (64-bit mantissa), which
 * valgrind emulates with a 53-bit one, so the bound leaves room for that while
 * a missing, doubled or wrong row still moves a sum far more. */
static bool close_ld(long double a, long double b)
{
        long double d = fabsl(a - b), m = fmaxl(fabsl(a), fabsl(b));
        return d <= m * 1e-13L || d < 1e-12L;
}

static void test_suffstats(void **state)
{
        struct fixture *f = *state;
        struct store_suffstats *st;
        struct gd_table *t;

        create(f->s, "ds");
        append(f->s, "ds", 0, 500, 0, 0);
        append(f->s, "ds", 500, 400, 1, 0);
        assert_int_equal(store_seal(f->s, "ds", true, NULL), 0);
        append(f->s, "ds", 900, 100, 2, 0);
        append(f->s, "ds", 0, 500, 0, 0);      /* rows 1000..1499 repeat k 0..499 */
        append(f->s, "ds", 1500, 70000, 1, 0); /* more than one accumulation block */

        assert_int_equal(store_suffstats(f->s, "ds", 0, &st), 0);
        assert_int_equal(store_read_all(f->s, "ds", 0, &t), 0);
        assert_int_equal(st->n, t->n_rows);
        assert_int_equal(st->d, 3);
        assert_int_equal(st->target, 3);
        long double cs[TU_COLS] = {0}, xtx[3][3] = {{0}}, xty[3] = {0}, sy2 = 0;
        for (uint64_t i = 0; i < t->n_rows; i++) {
                double x[TU_COLS];
                for (uint32_t j = 0; j < TU_COLS; j++) {
                        x[j] = gd_table_get(t, i, j);
                        cs[j] += x[j];
                }
                for (int a = 0; a < 3; a++) {
                        for (int b = 0; b < 3; b++)
                                xtx[a][b] += (long double)x[a] * x[b];
                        xty[a] += (long double)x[a] * x[3];
                }
                sy2 += (long double)x[3] * x[3];
        }
        for (uint32_t j = 0; j < TU_COLS; j++)
                assert_true(close_ld(st->col_sum[j], cs[j]));
        for (int a = 0; a < 3; a++) {
                assert_int_equal(st->feature_cols[a], a);
                for (int b = 0; b < 3; b++)
                        assert_true(close_ld(st->xtx[a * 3 + b], xtx[a][b]));
                assert_true(close_ld(st->xty[a], xty[a]));
        }
        assert_true(close_ld(st->sum_y, cs[3]));
        assert_true(close_ld(st->sum_y2, sy2));
        /* Integer-valued sums are exact. */
        assert_true(st->col_sum[0] == cs[0]);
        assert_true(st->xtx[0] == xtx[0][0]);
        gd_table_free(t);
        store_suffstats_free(st);
}

static void test_map_full(void **state)
{
        struct fixture *f = *state;
        struct gd_table *t;
        uint64_t first, k = 0;
        int r = 0;

        create(f->s, "ds");
        create(f->s, "filler");
        for (int i = 0; i < 30; i++) {
                t = tu_batch(0, 500, 0);
                r = store_append(f->s, "filler", t, 0, &first, NULL);
                gd_table_free(t);
                if (r < 0)
                        break;
        }
        assert_int_equal(r, 0);
        for (int i = 0; i < 1000; i++) {
                t = tu_batch(k, 500, 0);
                r = store_append(f->s, "ds", t, 0, &first, NULL);
                gd_table_free(t);
                if (r < 0)
                        break;
                k += 500;
        }
        assert_int_equal(r, DREAM_E_FULL);
        assert_string_equal(dream_strerror(r), "store full: no room on disk or in the map");
        assert_true(k > 0);
        assert_true(store_map_size(f->s) <= 512u << 10);
        /* Reads still served. */
        check_all_rows(f->s, "ds", k);
        check_row(f->s, "ds", k - 1);
        /* Dropping a dataset gives its space back to the very next append
         * of the same size. */
        t = tu_batch(k, 500, 0);
        assert_int_equal(store_append(f->s, "ds", t, 0, &first, NULL), DREAM_E_FULL);
        assert_int_equal(store_dataset_drop(f->s, "filler"), 0);
        assert_int_equal(store_append(f->s, "ds", t, 0, &first, NULL), 0);
        assert_int_equal(first, k);
        gd_table_free(t);
        k += 500;
        /* Raise the maximum: appends resume. */
        assert_int_equal(store_set_map_max(f->s, 16u << 20), 0);
        for (int i = 0; i < 200 && store_map_size(f->s) <= 512u << 10; i++) {
                append(f->s, "ds", k, 500, 0, 0);
                k += 500;
        }
        assert_true(store_map_size(f->s) > 512u << 10);
        assert_int_equal(store_seal(f->s, "ds", true, NULL), 0);
        check_all_rows(f->s, "ds", k);
}

/* Keys in one database, read with LMDB directly (the store must be closed
 * or at least not writing). */
static size_t count_keys(const char *dir, const char *db)
{
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        MDB_stat st;
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
        assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
        assert_int_equal(mdb_stat(txn, dbi, &st), 0);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        return st.ms_entries;
}

/* The same with the fixture's store closed meanwhile (one process must not
 * open an LMDB environment twice). */
static size_t count_keys_open(struct fixture *f, const char *db)
{
        size_t n;
        store_close(f->s);
        n = count_keys(f->dir, db);
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        return n;
}

static void test_faults(void **state)
{
        struct fixture *f = *state;
        struct store_info *info;
        struct gd_table *t;
        uint64_t first;

        create(f->s, "ds");
        append(f->s, "ds", 0, 100, 0, 0);
        t = tu_batch(100, 100, 0);
        f->fault_next = EIO;
        assert_int_equal(store_append(f->s, "ds", t, 5, &first, NULL), DREAM_E_IO);
        f->fault_next = ENOSPC; /* a full disk: retryable, like a full map */
        assert_int_equal(store_append(f->s, "ds", t, 5, &first, NULL), DREAM_E_FULL);
        assert_int_equal(store_dataset_describe(f->s, "ds", &info), 0);
        assert_int_equal(info->rows, 100);
        store_info_free(info);
        int64_t v[TU_COLS];
        assert_int_equal(store_get_row(f->s, "ds", 0, TU_COLS, 100, v, NULL), DREAM_E_RANGE);
        /* An injected MDB_MAP_FULL grows the map and the retry commits. */
        size_t before = store_map_size(f->s);
        f->fault_next = MDB_MAP_FULL;
        assert_int_equal(store_append(f->s, "ds", t, 5, &first, NULL), 0);
        assert_int_equal(first, 100);
        assert_true(store_map_size(f->s) > before);
        gd_table_free(t);
        /* A failed seal commit leaves the staged rows in place. */
        f->fault_next = EIO;
        assert_int_equal(store_seal(f->s, "ds", true, NULL), DREAM_E_IO);
        check_all_rows(f->s, "ds", 200);
        assert_int_equal(store_seal(f->s, "ds", true, NULL), 0);
        check_all_rows(f->s, "ds", 200);
        /* A failed drop keeps the dataset. */
        f->fault_next = EIO;
        assert_int_equal(store_dataset_drop(f->s, "ds"), DREAM_E_IO);
        check_all_rows(f->s, "ds", 200);
        /* A drop whose key deletion fails is finished by the next open. */
        f->fault_after = 1;
        f->fault_next = EIO;
        assert_int_equal(store_dataset_drop(f->s, "ds"), 0);
        assert_int_equal(store_dataset_describe(f->s, "ds", &info), DREAM_E_NOTFOUND);
        /* count_keys_open reopens the store: the first call still sees the
         * keys, the reopen finishes the drop. */
        assert_true(count_keys_open(f, "segments") > 0);
        assert_int_equal(count_keys_open(f, "staged") + count_keys_open(f, "segments") +
                             count_keys_open(f, "counters") + count_keys_open(f, "suffstats") +
                             count_keys_open(f, "batches"),
                         0);
        create(f->s, "ds");
        append(f->s, "ds", 0, 10, 0, 0);
        check_all_rows(f->s, "ds", 10);
}

static void test_backup(void **state)
{
        struct fixture *f = *state;
        char dir[64];
        struct store *b;

        create(f->s, "ds");
        append(f->s, "ds", 0, 1500, 0, 0);
        assert_int_equal(store_seal(f->s, "ds", false, NULL), 0);
        append(f->s, "ds", 1500, 200, 1, 0);
        tu_tmpdir(dir);
        assert_int_equal(store_backup(f->s, dir), 0);
        append(f->s, "ds", 1700, 10, 1, 0); /* not in the backup */
        assert_int_equal(store_open(dir, NULL, &b), 0);
        check_all_rows(b, "ds", 1700);
        struct store_info *info;
        assert_int_equal(store_dataset_describe(b, "ds", &info), 0);
        assert_int_equal(info->rows, 1700);
        assert_int_equal(info->segments, 1);
        store_info_free(info);
        uint64_t problems = 1;
        assert_int_equal(store_check(b, NULL, NULL, &problems), 0);
        assert_int_equal(problems, 0);
        store_close(b);
        tu_rmrf(dir);
}

struct seen {
        int n;
        char db[32];
        int err;
};

static void problem_cb(const struct store_problem *p, void *arg)
{
        struct seen *s = arg;
        if (s->n++ == 0) {
                snprintf(s->db, sizeof(s->db), "%s", p->db);
                s->err = p->err;
        }
        /* Job records belong to no dataset. */
        assert_string_equal(p->dataset, strcmp(p->db, "jobs") == 0 ? "" : "ds");
}

/* Flip one byte of the first value of `db` with LMDB directly. */
static void corrupt_first(const char *dir, const char *db, size_t at_from_end)
{
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        MDB_cursor *cur;
        MDB_val k, v;
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
        assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
        assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
        assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
        uint8_t *copy = malloc(v.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        copy[v.mv_size - at_from_end] ^= 0x10;
        uint8_t key[64];
        memcpy(key, k.mv_data, k.mv_size);
        k.mv_data = key;
        v.mv_data = copy;
        mdb_cursor_close(cur);
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
        free(copy);
}

static void test_check_corrupt(void **state)
{
        struct fixture *f = *state;
        struct seen seen = {0};
        uint64_t problems;

        create(f->s, "ds");
        append(f->s, "ds", 0, 1200, 0, 0);
        assert_int_equal(store_seal(f->s, "ds", false, NULL), 0);
        append(f->s, "ds", 1200, 100, 0, 0);
        assert_int_equal(store_check(f->s, problem_cb, &seen, &problems), 0);
        assert_int_equal(problems, 0);
        store_close(f->s);
        f->s = NULL;
        corrupt_first(f->dir, "segments", 100);
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        assert_int_equal(store_check(f->s, problem_cb, &seen, &problems), 0);
        assert_true(problems >= 1);
        assert_string_equal(seen.db, "segments");
        assert_true(seen.err == DREAM_E_CHECKSUM || seen.err == DREAM_E_CORRUPT);

        store_close(f->s);
        f->s = NULL;
        corrupt_first(f->dir, "staged", 20);
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        memset(&seen, 0, sizeof(seen));
        assert_int_equal(store_check(f->s, problem_cb, &seen, &problems), 0);
        assert_true(problems >= 2);
        /* The corrupt staged batch is refused by a seal. */
        assert_int_equal(store_seal(f->s, "ds", true, NULL), DREAM_E_CHECKSUM);
}

struct job_seen {
        uint64_t ids[8];
        size_t lens[8];
        int errs[8];
        uint32_t n;
};

static int job_cb(void *arg, uint64_t id, const void *rec, size_t len, int err)
{
        struct job_seen *js = arg;
        if (js->n < 8) {
                js->ids[js->n] = id;
                js->lens[js->n] = len;
                js->errs[js->n] = err;
                js->n++;
        }
        assert_true(err < 0 ? rec == NULL : (len == 0 || rec != NULL));
        return 0;
}

/* Job records: put, overwrite, get, list in id order, delete, survive a
 * reopen, damage found by store_check. */
static void test_job_records(void **state)
{
        struct fixture *f = *state;
        struct job_seen js = {0};
        char big[3000];
        void *rec = NULL;
        size_t len = 0;
        uint64_t problems;
        struct seen seen = {0};

        memset(big, 'j', sizeof(big));
        assert_int_equal(store_job_put(f->s, 0, "x", 1), DREAM_E_INVAL);
        assert_int_equal(store_job_get(f->s, 7, &rec, &len), DREAM_E_NOTFOUND);
        assert_int_equal(store_job_put(f->s, 300, big, sizeof(big)), 0);
        assert_int_equal(store_job_put(f->s, 7, "first", 5), 0);
        assert_int_equal(store_job_put(f->s, 7, "second", 6), 0);
        assert_int_equal(store_job_put(f->s, 9, NULL, 0), 0);
        assert_int_equal(store_job_get(f->s, 7, &rec, &len), 0);
        assert_int_equal(len, 6);
        assert_memory_equal(rec, "second", 6);
        dm_free(rec);
        assert_int_equal(store_job_list(f->s, job_cb, &js), 0);
        assert_int_equal(js.n, 3);
        assert_int_equal(js.ids[0], 7);
        assert_int_equal(js.ids[1], 9);
        assert_int_equal(js.ids[2], 300);
        assert_int_equal(js.lens[2], sizeof(big));
        assert_int_equal(store_job_delete(f->s, 9), 0);
        assert_int_equal(store_job_delete(f->s, 9), DREAM_E_NOTFOUND);
        assert_int_equal(store_check(f->s, problem_cb, &seen, &problems), 0);
        assert_int_equal(problems, 0);

        store_close(f->s);
        f->s = NULL;
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        assert_int_equal(store_job_get(f->s, 300, &rec, &len), 0);
        assert_int_equal(len, sizeof(big));
        assert_memory_equal(rec, big, sizeof(big));
        dm_free(rec);

        store_close(f->s);
        f->s = NULL;
        corrupt_first(f->dir, "jobs", 3);
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        assert_int_equal(store_check(f->s, problem_cb, &seen, &problems), 0);
        assert_int_equal(problems, 1);
        assert_string_equal(seen.db, "jobs");
        assert_int_equal(seen.err, DREAM_E_CHECKSUM);
        memset(&js, 0, sizeof(js));
        assert_int_equal(store_job_list(f->s, job_cb, &js), 0);
        assert_int_equal(js.n, 2);
        assert_int_equal(js.errs[0], DREAM_E_CHECKSUM); /* id 7, first in the file */
        assert_int_equal(store_job_get(f->s, 7, &rec, &len), DREAM_E_CHECKSUM);
}

struct worker {
        struct store *s;
        const char *name;
        int batches;
        int *stop;
        bool ok;
        uint64_t rows;
};

static void *appender(void *arg)
{
        struct worker *w = arg;
        for (int b = 0; b < w->batches; b++) {
                struct gd_table *t = tu_batch(w->rows, 400, (unsigned)b % 3);
                uint64_t first;
                bool needs;
                if (store_append(w->s, w->name, t, (uint64_t)b + 1, &first, &needs) != 0 ||
                    first != w->rows)
                        w->ok = false;
                gd_table_free(t);
                w->rows += 400;
                if (needs && store_seal(w->s, w->name, false, NULL) != 0)
                        w->ok = false;
        }
        return NULL;
}

static void *reader(void *arg)
{
        struct worker *w = arg;
        while (!__atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) {
                struct scan_state st = {.ok = true};
                int r = store_scan(w->s, w->name, 0, 0, UINT64_MAX, 333, scan_cb, &st);
                if ((r != 0 && r != DREAM_E_NOTFOUND) || !st.ok)
                        w->ok = false;
                w->rows++;
        }
        return NULL;
}

/* Two appenders (sealing as asked), two scanners, a map that starts tiny and
 * grows many times while reads run. */
static void test_concurrent_growth(void **state)
{
        struct fixture *f = *state;
        int stop = 0;
        struct worker w[4] = {
            {.s = f->s, .name = "a", .batches = 60, .stop = &stop, .ok = true},
            {.s = f->s, .name = "b", .batches = 60, .stop = &stop, .ok = true},
            {.s = f->s, .name = "a", .stop = &stop, .ok = true},
            {.s = f->s, .name = "b", .stop = &stop, .ok = true},
        };
        pthread_t th[4];
        size_t before = store_map_size(f->s);

        create(f->s, "a");
        create(f->s, "b");
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&th[i], NULL, i < 2 ? appender : reader, &w[i]), 0);
        pthread_join(th[0], NULL);
        pthread_join(th[1], NULL);
        __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
        pthread_join(th[2], NULL);
        pthread_join(th[3], NULL);
        for (int i = 0; i < 4; i++)
                assert_true(w[i].ok);
        assert_true(w[2].rows > 0 && w[3].rows > 0);
        assert_true(store_map_size(f->s) >= 4 * before);
        check_all_rows(f->s, "a", 24000);
        check_all_rows(f->s, "b", 24000);
        uint64_t problems = 1;
        assert_int_equal(store_check(f->s, NULL, NULL, &problems), 0);
        assert_int_equal(problems, 0);
}

/* Every allocation of an append, a seal and a scan failing in turn: an error
 * (never a crash or a leak), and the store stays consistent. */
static void test_alloc_failures(void **state)
{
        struct fixture *f = *state;
        struct gd_table *t = tu_batch(0, 1200, 1);
        uint64_t rows = 0, first;
        int r;

        create(f->s, "ds");
        for (unsigned long n = 1;; n++) {
                dm_alloc_fail_at(n, 0);
                r = store_append(f->s, "ds", t, 9, &first, NULL);
                dm_alloc_fail_at(0, 0);
                if (r == 0)
                        break;
                assert_int_equal(r, DREAM_E_NOMEM);
        }
        rows = 1200;
        check_all_rows(f->s, "ds", rows);
        for (unsigned long n = 1;; n++) {
                uint64_t sealed = 0;
                dm_alloc_fail_at(n, 0);
                r = store_seal(f->s, "ds", true, &sealed);
                dm_alloc_fail_at(0, 0);
                if (r == 0)
                        break;
                assert_int_equal(r, DREAM_E_NOMEM);
                check_all_rows(f->s, "ds", rows);
        }
        check_all_rows(f->s, "ds", rows);
        /* The scan: count the allocations of a clean one, then fail each in
         * turn; at least one failure reported, and past the last a success. */
        unsigned long total, failed = 0;
        {
                struct scan_state st = {.ok = true};
                dm_alloc_fail_at(0, 0);
                assert_int_equal(store_scan(f->s, "ds", 0, 0, UINT64_MAX, 500, scan_cb, &st), 0);
                total = dm_alloc_count();
                assert_true(total > 0);
        }
        for (unsigned long n = 1; n <= total + 1; n++) {
                struct scan_state st = {.ok = true};
                dm_alloc_fail_at(n, 0);
                r = store_scan(f->s, "ds", 0, 0, UINT64_MAX, 500, scan_cb, &st);
                dm_alloc_fail_at(0, 0);
                assert_true(r == 0 || r == DREAM_E_NOMEM);
                failed += r == DREAM_E_NOMEM;
                if (n == total + 1)
                        assert_int_equal(r, 0);
        }
        assert_true(failed > 0);
        gd_table_free(t);
        uint64_t problems = 1;
        assert_int_equal(store_check(f->s, NULL, NULL, &problems), 0);
        assert_int_equal(problems, 0);
}

static int setup_growing(void **state)
{
        return setup_opts(state, 64u << 10, 1ull << 32, 2000);
}

static void orphan_cb(const struct store_problem *p, void *arg)
{
        int *n = arg;
        if (strcmp(p->db, "segments") == 0 && p->key_len == 12 && p->key[3] == 99 &&
            strcmp(p->dataset, "") == 0)
                (*n)++;
}

/* A key whose dataset does not exist is reported. */
static void test_check_orphan(void **state)
{
        struct fixture *f = *state;
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        uint8_t key[12] = {0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0};
        MDB_val k = {.mv_size = 12, .mv_data = key}, v = {.mv_size = 3, .mv_data = "abc"};
        uint64_t problems;
        int found = 0;

        create(f->s, "ds");
        append(f->s, "ds", 0, 10, 0, 0);
        store_close(f->s);
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
        assert_int_equal(mdb_env_open(env, f->dir, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, "segments", 0, &dbi), 0);
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        assert_int_equal(store_check(f->s, orphan_cb, &found, &problems), 0);
        assert_int_equal(problems, 1);
        assert_int_equal(found, 1);
        check_all_rows(f->s, "ds", 10);
}

struct sealer_arg {
        struct store *s;
        uint64_t sealed;
        int r;
};

static void *sealer(void *arg)
{
        struct sealer_arg *a = arg;
        a->r = store_seal(a->s, "ds", false, &a->sealed);
        return NULL;
}

/* Concurrent seals of one dataset: rows sealed once, none lost. */
static void test_concurrent_seals(void **state)
{
        struct fixture *f = *state;
        struct sealer_arg a[3] = {{.s = f->s}, {.s = f->s}, {.s = f->s}};
        pthread_t th[3];
        create(f->s, "ds");
        for (int i = 0; i < 10; i++)
                append(f->s, "ds", (uint64_t)i * 700, 700, (unsigned)i % 3, 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(pthread_create(&th[i], NULL, sealer, &a[i]), 0);
        for (int i = 0; i < 3; i++)
                pthread_join(th[i], NULL);
        assert_int_equal(a[0].r | a[1].r | a[2].r, 0);
        assert_int_equal(a[0].sealed + a[1].sealed + a[2].sealed, 7000);
        check_all_rows(f->s, "ds", 7000);
        struct store_info *info;
        assert_int_equal(store_dataset_describe(f->s, "ds", &info), 0);
        assert_int_equal(info->sealed_rows, 7000);
        store_info_free(info);
}

struct same_ds {
        struct store *s;
        unsigned idx;
        uint64_t firsts[40];
        bool ok;
};

static void *same_appender(void *arg)
{
        struct same_ds *a = arg;
        for (unsigned b = 0; b < 40; b++) {
                uint64_t k = (uint64_t)a->idx * 1000000 + b * 100;
                struct gd_table *t = tu_batch(k, 100, b % 3);
                if (store_append(a->s, "ds", t, k + 1, &a->firsts[b], NULL) != 0)
                        a->ok = false;
                gd_table_free(t);
        }
        return NULL;
}

/* Concurrent appends to one dataset (group commits): each batch gets its own
 * consecutive rows, no overlap, no gap, contents intact. */
static void test_concurrent_appends(void **state)
{
        struct fixture *f = *state;
        struct same_ds a[4];
        pthread_t th[4];
        struct gd_table *t;
        uint8_t *used = calloc(16000, 1);

        create(f->s, "ds");
        for (unsigned i = 0; i < 4; i++) {
                a[i] = (struct same_ds){.s = f->s, .idx = i, .ok = true};
                assert_int_equal(pthread_create(&th[i], NULL, same_appender, &a[i]), 0);
        }
        for (unsigned i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        assert_int_equal(store_read_all(f->s, "ds", 0, &t), 0);
        assert_int_equal(t->n_rows, 16000);
        for (unsigned i = 0; i < 4; i++) {
                assert_true(a[i].ok);
                for (unsigned b = 0; b < 40; b++) {
                        uint64_t first = a[i].firsts[b], k = (uint64_t)i * 1000000 + b * 100;
                        assert_true(first % 100 == 0 && first < 16000);
                        assert_false(used[first]);
                        used[first] = 1;
                        for (uint64_t r = 0; r < 100; r++) {
                                for (uint32_t j = 0; j < TU_COLS; j++)
                                        assert_true(gd_table_get(t, first + r, j) ==
                                                    tu_expect(k + r, j));
                        }
                }
        }
        gd_table_free(t);
        free(used);
}

struct bg_append {
        struct store *s;
        int batches;
        bool ok;
};

static void *bg_appender(void *arg)
{
        struct bg_append *a = arg;
        for (int b = 0; b < a->batches; b++) {
                struct gd_table *t = tu_batch((uint64_t)b * 300, 300, 0);
                uint64_t first;
                bool needs;
                if (store_append(a->s, "ds", t, 0, &first, &needs) != 0 ||
                    first != (uint64_t)b * 300)
                        a->ok = false;
                gd_table_free(t);
                if (needs && store_seal(a->s, "ds", false, NULL) != 0)
                        a->ok = false;
        }
        return NULL;
}

/* A hot backup taken while appends and seals run is a consistent prefix. */
static void test_hot_backup(void **state)
{
        struct fixture *f = *state;
        struct bg_append a = {.s = f->s, .batches = 40, .ok = true};
        pthread_t th;
        char dir[64];
        struct store *b;
        struct store_info *info;
        uint64_t problems = 1;

        create(f->s, "ds");
        assert_int_equal(pthread_create(&th, NULL, bg_appender, &a), 0);
        for (int i = 0; i < 10000; i++) { /* let some rows and a seal land first */
                struct timespec ms = {.tv_nsec = 1000000};
                assert_int_equal(store_dataset_describe(f->s, "ds", &info), 0);
                problems = info->segments;
                store_info_free(info);
                if (problems)
                        break;
                nanosleep(&ms, NULL);
        }
        problems = 1;
        tu_tmpdir(dir);
        assert_int_equal(store_backup(f->s, dir), 0);
        pthread_join(th, NULL);
        assert_true(a.ok);
        assert_int_equal(store_open(dir, NULL, &b), 0);
        assert_int_equal(store_dataset_describe(b, "ds", &info), 0);
        assert_true(info->rows % 300 == 0 && info->rows <= 12000);
        check_all_rows(b, "ds", info->rows);
        store_info_free(info);
        assert_int_equal(store_check(b, NULL, NULL, &problems), 0);
        assert_int_equal(problems, 0);
        store_close(b);
        tu_rmrf(dir);
        check_all_rows(f->s, "ds", 12000);
}

/* Allocation failures in open and create: an error, no leak, and the store
 * opens and works afterwards. */
static void test_alloc_open_create(void **state)
{
        struct fixture *f = *state;
        int r;
        store_close(f->s);
        f->s = NULL;
        for (unsigned long n = 1;; n++) {
                dm_alloc_fail_at(n, 0);
                r = store_open(f->dir, &f->opts, &f->s);
                dm_alloc_fail_at(0, 0);
                if (r == 0)
                        break;
                assert_int_equal(r, DREAM_E_NOMEM);
        }
        for (unsigned long n = 1;; n++) {
                dm_alloc_fail_at(n, 0);
                r = store_dataset_create(f->s, "ds", tu_schema());
                dm_alloc_fail_at(0, 0);
                if (r == 0)
                        break;
                assert_int_equal(r, DREAM_E_NOMEM);
        }
        append(f->s, "ds", 0, 10, 0, 0);
        check_all_rows(f->s, "ds", 10);
}

/* ---- random reads through the segment cache (store_get_rows) ------------------ */

static uint64_t lcg(uint64_t *x)
{
        *x = *x * 6364136223846793005ull + 1442695040888963407ull;
        return *x >> 33;
}

/* Rows rows[0..n) of `name` hold the values of k = offset + row. */
static bool rows_hold(struct store *s, const char *name, const uint64_t *rows, size_t n,
                      uint64_t offset)
{
        int64_t *v = calloc(n * TU_COLS, sizeof(*v));
        struct store_cellfmt *fmt = calloc(n * TU_COLS, sizeof(*fmt));
        bool ok = v && fmt && store_get_rows(s, name, 0, TU_COLS, rows, n, v, fmt) == 0;

        for (size_t i = 0; ok && i < n; i++)
                for (uint32_t j = 0; j < TU_COLS; j++)
                        if (gd_value_f64(fmt[i * TU_COLS + j].kind, fmt[i * TU_COLS + j].scale,
                                         v[i * TU_COLS + j]) != tu_expect(offset + rows[i], j))
                                ok = false;
        free(v);
        free(fmt);
        return ok;
}

/* Segments and staged rows, any order, repeats: each row as scanned. */
static void test_get_rows(void **state)
{
        struct fixture *f = *state;
        uint64_t k = 0, x = 42, rows[3000], sealed;
        int64_t v[2 * TU_COLS];

        create(f->s, "ds");
        for (int i = 0; i < 40; i++) {
                uint64_t n = 50 + (uint64_t)(i * 37) % 200;
                append(f->s, "ds", k, n, (unsigned)i % 3, 0);
                k += n;
        }
        assert_int_equal(store_seal(f->s, "ds", false, &sealed), 0); /* leaves some staged */
        assert_true(sealed > 0 && sealed < k);
        for (size_t i = 0; i < 3000; i++)
                rows[i] = i % 7 == 0 && i > 0 ? rows[i / 2] : lcg(&x) % k;
        assert_true(rows_hold(f->s, "ds", rows, 3000, 0));
        assert_true(rows_hold(f->s, "ds", rows + 17, 1, 0));
        /* Every row once, in order and reversed. */
        for (uint64_t r = 0; r < k; r += 1000) {
                uint64_t m = k - r < 1000 ? k - r : 1000;
                for (uint64_t i = 0; i < m; i++)
                        rows[i] = r + (i % 2 ? m - 1 - i / 2 : i / 2);
                assert_true(rows_hold(f->s, "ds", rows, (size_t)m, 0));
        }
        rows[0] = 5;
        rows[1] = k;
        assert_int_equal(store_get_rows(f->s, "ds", 0, TU_COLS, rows, 2, v, NULL), DREAM_E_RANGE);
        assert_int_equal(store_get_rows(f->s, "ds", 0, TU_COLS, rows, 0, v, NULL), 0);
        assert_int_equal(store_get_rows(f->s, "nope", 0, TU_COLS, rows, 1, v, NULL),
                         DREAM_E_NOTFOUND);
        /* Arrays sized for another column count (the dataset was made again
         * with other columns): refused, nothing written past them. */
        assert_int_equal(store_get_rows(f->s, "ds", 0, TU_COLS + 1, rows, 1, v, NULL),
                         DREAM_E_SCHEMA);
        check_all_rows(f->s, "ds", k);
}

/* A dataset dropped and made again under the same name: reads through the
 * cache return the new rows, whatever was cached of the old ones; the same
 * with a cache too small for one segment and one that must evict. */
static void test_segment_cache_drop(void **state)
{
        struct fixture *f = *state;
        size_t sizes[3] = {0, 1, 24u << 10};
        uint64_t rows[500], x = 7, first;

        for (int round = 0; round < 3; round++) {
                store_close(f->s);
                f->opts.segment_cache_bytes = sizes[round];
                assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
                for (uint64_t gen = 0; gen < 3; gen++) {
                        uint64_t off = gen * 100000 + (uint64_t)round * 1000000;
                        if (gen > 0 || round > 0)
                                assert_int_equal(store_dataset_drop(f->s, "ds"), 0);
                        create(f->s, "ds");
                        for (int i = 0; i < 5; i++) {
                                struct gd_table *t =
                                    tu_batch(off + (uint64_t)i * 700, 700, (unsigned)(i + gen) % 3);
                                assert_int_equal(store_append(f->s, "ds", t, 0, &first, NULL), 0);
                                gd_table_free(t);
                        }
                        assert_int_equal(store_seal(f->s, "ds", true, NULL), 0);
                        for (int pass = 0; pass < 2; pass++) { /* cold, then cached */
                                for (size_t i = 0; i < 500; i++)
                                        rows[i] = lcg(&x) % 3500;
                                assert_true(rows_hold(f->s, "ds", rows, 500, off));
                                check_row_at(f->s, "ds", 3499, off);
                        }
                }
        }
}

/* A scan whose callback drops "ds" after its first chunk and makes it again
 * with other rows (k from 1000000): the scan must end with NOTFOUND, having
 * delivered nothing of the new dataset, whether pinned or not. */
struct swap_scan {
        struct store *s;
        struct scan_state st;
        uint64_t new_rows;
};

static int swap_cb(const struct gd_table *chunk, uint64_t first_row, void *arg)
{
        struct swap_scan *w = arg;
        uint64_t first;

        scan_cb(chunk, first_row, &w->st);
        if (w->st.chunks == 1) {
                assert_int_equal(store_dataset_drop(w->s, "ds"), 0);
                create(w->s, "ds");
                for (uint64_t at = 0; at < w->new_rows; at += 700) {
                        struct gd_table *t = tu_batch(1000000 + at, 700, 1);
                        assert_int_equal(store_append(w->s, "ds", t, 0, &first, NULL), 0);
                        gd_table_free(t);
                }
                assert_int_equal(store_seal(w->s, "ds", true, NULL), 0);
        }
        return 0;
}

static void fill_ds(struct store *s, uint64_t k0, uint64_t n)
{
        uint64_t first;

        create(s, "ds");
        for (uint64_t at = 0; at < n; at += 700) {
                struct gd_table *t = tu_batch(k0 + at, 700, (unsigned)(at / 700) % 2);
                assert_int_equal(store_append(s, "ds", t, 0, &first, NULL), 0);
                gd_table_free(t);
        }
        assert_int_equal(store_seal(s, "ds", false, NULL), 0); /* segments and staged rows */
}

/* Reads pinned to a dataset id answer NOTFOUND once it is dropped, also when
 * its name was given to a new dataset with more rows; unpinned ones (id 0)
 * read the new one. */
static void test_pinned_reads(void **state)
{
        struct fixture *f = *state;
        struct gd_condense_opts o = {.budget = {0, 50}, .order = GD_ORDER_ENTROPY};
        struct gd_condensed *c = NULL;
        struct store_suffstats *st = NULL;
        struct gd_table *t = NULL;
        struct scan_state sc = {.ok = true};
        uint64_t rows[3] = {5, 1500, 2099};
        int64_t v[3 * TU_COLS];
        uint32_t id, id2;

        assert_int_equal(store_dataset_id(f->s, "ds", &id), DREAM_E_NOTFOUND);
        assert_int_equal(store_dataset_id(f->s, "bad name", &id), DREAM_E_INVAL);
        fill_ds(f->s, 0, 2100);
        assert_int_equal(store_dataset_id(f->s, "ds", &id), 0);
        assert_true(id > 0);
        assert_int_equal(store_get_rows(f->s, "ds", id, TU_COLS, rows, 3, v, NULL), 0);
        assert_int_equal(v[2 * TU_COLS], 2099);
        assert_int_equal(store_scan(f->s, "ds", id, 0, UINT64_MAX, 300, scan_cb, &sc), 0);
        assert_true(sc.ok);
        assert_int_equal(sc.next, 2100);
        assert_int_equal(store_read_all(f->s, "ds", id, &t), 0);
        gd_table_free(t);
        assert_int_equal(store_condensed(f->s, "ds", id, &o, &c, NULL), 0);
        gd_condensed_free(c);
        assert_int_equal(store_suffstats(f->s, "ds", id, &st), 0);
        store_suffstats_free(st);

        /* Dropped and made again with more rows under the same name. */
        assert_int_equal(store_dataset_drop(f->s, "ds"), 0);
        fill_ds(f->s, 500000, 2800);
        assert_int_equal(store_dataset_id(f->s, "ds", &id2), 0);
        assert_true(id2 != id);
        assert_int_equal(store_get_rows(f->s, "ds", id, TU_COLS, rows, 3, v, NULL),
                         DREAM_E_NOTFOUND);
        assert_int_equal(store_get_row(f->s, "ds", id, TU_COLS, 5, v, NULL), DREAM_E_NOTFOUND);
        sc = (struct scan_state){.ok = true};
        assert_int_equal(store_scan(f->s, "ds", id, 0, UINT64_MAX, 300, scan_cb, &sc),
                         DREAM_E_NOTFOUND);
        assert_int_equal(sc.chunks, 0);
        assert_int_equal(store_read_all(f->s, "ds", id, &t), DREAM_E_NOTFOUND);
        assert_int_equal(store_condensed(f->s, "ds", id, &o, &c, NULL), DREAM_E_NOTFOUND);
        assert_int_equal(store_suffstats(f->s, "ds", id, &st), DREAM_E_NOTFOUND);
        /* The new dataset, pinned to its own id or not. */
        assert_int_equal(store_get_rows(f->s, "ds", id2, TU_COLS, rows, 3, v, NULL), 0);
        assert_int_equal(v[2 * TU_COLS], 500000 + 2099);
        assert_int_equal(store_get_rows(f->s, "ds", 0, TU_COLS, rows, 3, v, NULL), 0);
        assert_int_equal(v[0], 500005);
        assert_int_equal(store_suffstats(f->s, "ds", id2, &st), 0);
        assert_int_equal(st->n, 2800);
        store_suffstats_free(st);
        /* Dropped for good. */
        assert_int_equal(store_dataset_drop(f->s, "ds"), 0);
        assert_int_equal(store_get_row(f->s, "ds", id2, TU_COLS, 5, v, NULL), DREAM_E_NOTFOUND);

        /* A drop (its segments purged) and a create between two chunks of a
         * scan, pinned or not: NOTFOUND after the first chunk, no new row. */
        for (int pinned = 0; pinned < 2; pinned++) {
                struct swap_scan w = {.s = f->s, .st = {.ok = true}, .new_rows = 3500};

                fill_ds(f->s, 0, 2100);
                assert_int_equal(store_dataset_id(f->s, "ds", &id), 0);
                assert_int_equal(
                    store_scan(f->s, "ds", pinned ? id : 0, 0, UINT64_MAX, 300, swap_cb, &w),
                    DREAM_E_NOTFOUND);
                assert_true(w.st.ok);
                assert_int_equal(w.st.chunks, 1);
                assert_int_equal(w.st.next, 300);
                assert_int_equal(store_dataset_drop(f->s, "ds"), 0);
        }
}

struct cache_reader_arg {
        struct store *s;
        uint64_t seed;
        unsigned iters;
        uint64_t rows; /* rows of "ds" present at start */
        bool ok;
};

/* Reads "ds" (rows only grow) and "tmp" (dropped and made again: each
 * incarnation holds k = offset + row for one offset, found from column 0). */
static void *cache_reader(void *arg)
{
        struct cache_reader_arg *a = arg;
        uint64_t rows[64], x = a->seed;
        int64_t v[64 * TU_COLS];
        struct store_cellfmt fmt[64 * TU_COLS];

        for (unsigned it = 0; it < a->iters; it++) {
                for (int i = 0; i < 64; i++)
                        rows[i] = lcg(&x) % a->rows;
                if (!rows_hold(a->s, "ds", rows, 64, 0))
                        a->ok = false;
                for (int i = 0; i < 64; i++)
                        rows[i] = lcg(&x) % 1400;
                int r = store_get_rows(a->s, "tmp", 0, TU_COLS, rows, 64, v, fmt);
                if (r == DREAM_E_NOTFOUND || r == DREAM_E_RANGE)
                        continue; /* between drop and refill */
                if (r != 0) {
                        a->ok = false;
                        continue;
                }
                uint64_t off = (uint64_t)gd_value_f64(fmt[0].kind, fmt[0].scale, v[0]) - rows[0];
                for (int i = 0; i < 64; i++)
                        for (uint32_t j = 0; j < TU_COLS; j++)
                                if (gd_value_f64(fmt[i * TU_COLS + j].kind,
                                                 fmt[i * TU_COLS + j].scale,
                                                 v[i * TU_COLS + j]) != tu_expect(off + rows[i], j))
                                        a->ok = false;
        }
        return NULL;
}

/* Concurrent readers sharing cached segments while another thread appends,
 * seals, drops and re-creates. */
static void test_segment_cache_concurrent(void **state)
{
        struct fixture *f = *state;
        struct cache_reader_arg a[4];
        pthread_t th[4];
        uint64_t k = 0, first;

        store_close(f->s);
        f->opts.segment_cache_bytes = 40u << 10; /* a few segments: evictions while in use */
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        create(f->s, "ds");
        for (int i = 0; i < 10; i++, k += 700)
                append(f->s, "ds", k, 700, (unsigned)i % 3, 0);
        assert_int_equal(store_seal(f->s, "ds", false, NULL), 0);
        for (int i = 0; i < 4; i++) {
                a[i] = (struct cache_reader_arg){
                    .s = f->s, .seed = (uint64_t)i + 1, .iters = 150, .rows = k, .ok = true};
                assert_int_equal(pthread_create(&th[i], NULL, cache_reader, &a[i]), 0);
        }
        for (uint64_t gen = 0; gen < 6; gen++) {
                if (gen > 0)
                        assert_int_equal(store_dataset_drop(f->s, "tmp"), 0);
                create(f->s, "tmp");
                for (int i = 0; i < 2; i++) {
                        struct gd_table *t = tu_batch(gen * 100000 + (uint64_t)i * 700, 700, 0);
                        assert_int_equal(store_append(f->s, "tmp", t, 0, &first, NULL), 0);
                        gd_table_free(t);
                }
                assert_int_equal(store_seal(f->s, "tmp", true, NULL), 0);
                append(f->s, "ds", k, 700, (unsigned)gen % 3, 0);
                k += 700;
                assert_int_equal(store_seal(f->s, "ds", false, NULL), 0);
        }
        for (int i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                assert_true(a[i].ok);
        }
        check_all_rows(f->s, "ds", k);
}

static int setup_threads(void **state)
{
        int r = setup_opts(state, 1u << 20, 1ull << 32, 8000);
        struct fixture *f = *state;
        /* Three pieces per segment (whatever the machine), and a reopen
         * with them. */
        store_close(f->s);
        f->opts.read_threads = 3;
        assert_int_equal(store_open(f->dir, &f->opts, &f->s), 0);
        return r;
}

/* Whole-dataset reads: segments cut into pieces read by several threads,
 * mixed kinds (harmonised in the table), staged rows after the segments,
 * the errors, and every allocation failing in turn. */
static void test_read_all_pieces(void **state)
{
        struct fixture *f = *state;
        float *x = NULL;
        double *y = NULL;
        uint64_t n = 0, sealed;
        struct gd_table *t;
        int r;

        create(f->s, "ds");
        assert_int_equal(store_read_features(f->s, "ds", 0, 3, &x, &y, &n), DREAM_E_EMPTY);
        assert_int_equal(store_read_features(f->s, "nope", 0, 3, &x, &y, &n), DREAM_E_NOTFOUND);
        for (int i = 0; i < 7; i++)
                append(f->s, "ds", (uint64_t)i * 3000, 3000, (unsigned)i % 3, 0);
        assert_int_equal(store_seal(f->s, "ds", false, &sealed), 0);
        assert_true(sealed >= 16000);
        append(f->s, "ds", 21000, 77, 2, 0);
        check_all_rows(f->s, "ds", 21077);
        assert_int_equal(store_read_features(f->s, "ds", 0, -1, &x, &y, &n), DREAM_E_INVAL);
        assert_int_equal(store_read_features(f->s, "ds", 0, 4, &x, NULL, &n), DREAM_E_SCHEMA);
        assert_int_equal(store_read_features(f->s, "ds", 0, 3, NULL, NULL, &n), DREAM_E_INVAL);

        unsigned long total, failed = 0;
        dm_alloc_fail_at(0, 0);
        assert_int_equal(store_read_all(f->s, "ds", 0, &t), 0);
        gd_table_free(t);
        assert_int_equal(store_read_features(f->s, "ds", 0, 3, &x, &y, &n), 0);
        dm_free(x);
        dm_free(y);
        total = dm_alloc_count();
        for (unsigned long k = 1; k <= total + 1; k++) {
                dm_alloc_fail_at(k, 0);
                r = store_read_all(f->s, "ds", 0, &t);
                dm_alloc_fail_at(0, 0);
                assert_true(r == 0 || r == DREAM_E_NOMEM);
                failed += r == DREAM_E_NOMEM;
                if (r == 0) {
                        assert_true(tu_rows_ok(t, 0));
                        gd_table_free(t);
                }
                dm_alloc_fail_at(k, 0);
                r = store_read_features(f->s, "ds", 0, 3, &x, &y, &n);
                dm_alloc_fail_at(0, 0);
                assert_true(r == 0 || r == DREAM_E_NOMEM);
                failed += r == DREAM_E_NOMEM;
                if (r == 0) {
                        dm_free(x);
                        dm_free(y);
                }
        }
        assert_true(failed > 0);
        check_all_rows(f->s, "ds", 21077);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_names, setup, teardown),
            cmocka_unit_test(test_harmonise),
            cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
            cmocka_unit_test_setup_teardown(test_drop_reuses_space, setup, teardown),
            cmocka_unit_test_setup_teardown(test_idempotent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reads_during_seal, setup, teardown),
            cmocka_unit_test_setup_teardown(test_appends_during_seal, setup, teardown),
            cmocka_unit_test_setup_teardown(test_condensed_cache, setup, teardown),
            cmocka_unit_test_setup_teardown(test_condensed_exclusion, setup, teardown),
            cmocka_unit_test_setup_teardown(test_suffstats, setup, teardown),
            cmocka_unit_test_setup_teardown(test_job_records, setup, teardown),
            cmocka_unit_test_setup_teardown(test_map_full, setup_tiny, teardown),
            cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
            cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
            cmocka_unit_test_setup_teardown(test_check_corrupt, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_growth, setup_growing, teardown),
            cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
            cmocka_unit_test_setup_teardown(test_check_orphan, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_seals, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
            cmocka_unit_test_setup_teardown(test_hot_backup, setup, teardown),
            cmocka_unit_test_setup_teardown(test_alloc_open_create, setup, teardown),
            cmocka_unit_test_setup_teardown(test_get_rows, setup, teardown),
            cmocka_unit_test_setup_teardown(test_segment_cache_drop, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pinned_reads, setup, teardown),
            cmocka_unit_test_setup_teardown(test_segment_cache_concurrent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_read_all_pieces, setup_threads, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
