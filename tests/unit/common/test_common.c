/* Errors, buffers, bounded reader and allocation failure injection. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/par.h"

static void error_table(void **state)
{
        (void)state;
        assert_string_equal(dream_strerror(0), "success");
        assert_string_equal(dream_strerror(DREAM_E_FULL),
                            "store full: no room on disk or in the map");
        assert_string_equal(dream_errname(DREAM_E_CHECKSUM), "DREAM_E_CHECKSUM");
        assert_string_equal(dream_strerror(-ENOENT), strerror(ENOENT));
        assert_string_equal(dream_errname(-ENOENT), "ENOENT");
        assert_string_equal(dream_strerror(-99999), "unknown error");
}

static void buffer_and_reader(void **state)
{
        (void)state;
        struct dm_buf b;
        struct dm_rd rd;
        uint8_t u8;
        uint32_t u32;
        uint64_t u64;
        const uint8_t *p;
        dm_buf_init(&b);
        for (int i = 0; i < 1000; i++)
                assert_int_equal(dm_buf_put_le32(&b, (uint32_t)i), 0);
        assert_int_equal(dm_buf_put_le64(&b, 0x0102030405060708ULL), 0);
        assert_int_equal(dm_buf_put_u8(&b, 7), 0);
        assert_int_equal(b.len, 4009);
        assert_int_equal(b.data[4000], 0x08); /* little-endian */
        dm_rd_init(&rd, b.data, b.len);
        for (int i = 0; i < 1000; i++) {
                assert_int_equal(dm_rd_le32(&rd, &u32), 0);
                assert_int_equal(u32, i);
        }
        assert_int_equal(dm_rd_le64(&rd, &u64), 0);
        assert_true(u64 == 0x0102030405060708ULL);
        assert_int_equal(dm_rd_u8(&rd, &u8), 0);
        assert_int_equal(u8, 7);
        assert_int_equal(dm_rd_u8(&rd, &u8), DREAM_E_TRUNCATED);
        assert_int_equal(dm_rd_bytes(&rd, SIZE_MAX, &p), DREAM_E_TRUNCATED);
        size_t len;
        uint8_t *owned = dm_buf_steal(&b, &len);
        assert_int_equal(len, 4009);
        assert_null(b.data);
        dm_free(owned);
        assert_int_equal(dm_buf_reserve(&b, SIZE_MAX), DREAM_E_OVERFLOW);
        dm_buf_release(&b);
        dm_buf_release(NULL);
}

static void alloc_injection(void **state)
{
        (void)state;
        dm_alloc_fail_at(3, 0);
        void *a = dm_malloc(8), *b = dm_malloc(8), *c = dm_malloc(8), *d = dm_malloc(8);
        assert_non_null(a);
        assert_non_null(b);
        assert_null(c);
        assert_non_null(d);
        dm_free(a);
        dm_free(b);
        dm_free(d);
        dm_alloc_fail_at(1, 1);
        assert_null(dm_malloc(1));
        assert_null(dm_calloc(1, 1));
        assert_null(dm_strdup("x"));
        dm_alloc_fail_at(0, 0);
        assert_null(dm_mallocarray(SIZE_MAX / 2, 3));
        a = dm_strdup("hello");
        assert_string_equal(a, "hello");
        dm_free(a);
        dm_free(NULL);
}

struct share {
        pthread_t by;
        uint64_t sum;
        uint32_t from, to;
};

static void add_range(void *p)
{
        struct share *s = p;

        s->by = pthread_self();
        for (uint32_t i = s->from; i < s->to; i++)
                s->sum += i;
}

/* Every share done exactly once; the first on the calling thread, the
 * others on their own up to DREAM_MAX_PAR_THREADS, the rest on the caller. */
static void par_shares(void **state)
{
        struct share a = {.from = 0, .to = 1000}, b = {.from = 1000, .to = 3000};
        struct share s[DREAM_MAX_PAR_THREADS + 2];
        const uint32_t n = DREAM_MAX_PAR_THREADS + 2;
        uint64_t sum = 0;

        (void)state;
        dm_par2(add_range, &a, &b);
        assert_int_equal(a.sum + b.sum, 2999ull * 3000 / 2);
        assert_true(pthread_equal(a.by, pthread_self()));
        assert_false(pthread_equal(b.by, pthread_self()));
        memset(s, 0, sizeof(s));
        for (uint32_t k = 0; k < n; k++) {
                s[k].from = k * 100;
                s[k].to = (k + 1) * 100;
        }
        dm_par_each(add_range, s, sizeof(s[0]), n);
        for (uint32_t k = 0; k < n; k++) {
                sum += s[k].sum;
                assert_true(pthread_equal(s[k].by, pthread_self()) ==
                            (k == 0 || k >= DREAM_MAX_PAR_THREADS));
        }
        assert_int_equal(sum, (uint64_t)(n * 100 - 1) * (n * 100) / 2);
        dm_par_each(add_range, s, sizeof(s[0]), 0);
}

static void log_levels(void **state)
{
        (void)state;
        enum dm_log_level l;
        assert_int_equal(dm_log_level_parse("debug", &l), 0);
        assert_int_equal(l, DM_LOG_DEBUG);
        assert_int_equal(dm_log_level_parse("loud", &l), DREAM_E_INVAL);
        dm_log_set_level(DM_LOG_WARN);
        assert_int_equal(dm_log_get_level(), DM_LOG_WARN);
        dm_log_set_level(DM_LOG_INFO);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(error_table),     cmocka_unit_test(buffer_and_reader),
            cmocka_unit_test(alloc_injection), cmocka_unit_test(log_levels),
            cmocka_unit_test(par_shares),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
