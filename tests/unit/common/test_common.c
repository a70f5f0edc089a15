/* Errors, buffers, bounded reader and allocation failure injection. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
        /* Large buffers: aligned to 2 MiB from 4 MiB on, every byte usable;
         * small ones as malloc; both counted by the injection. */
        for (size_t n = 1; n <= (9u << 20); n = n * 3 + 1) {
                unsigned char *p = dm_alloc_large(n, 1);
                assert_non_null(p);
                if (n >= (4u << 20))
                        assert_int_equal((uintptr_t)p % (2u << 20), 0);
                memset(p, 0xa5, n);
                assert_int_equal(p[n - 1], 0xa5);
                dm_free(p);
        }
        assert_null(dm_alloc_large(SIZE_MAX / 2, 3));
        dm_alloc_fail_at(1, 1);
        assert_null(dm_alloc_large(8u << 20, 1));
        assert_null(dm_alloc_large(10, 1));
        dm_alloc_fail_at(0, 0);
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

/* Lines logged while stderr is a temporary file, read back. */
static void log_to_file(bool journal, enum dm_log_format format, char *out, size_t size)
{
        char path[] = "/tmp/dream-log-XXXXXX", js[64];
        int fd = mkstemp(path), saved = dup(2);
        struct stat st;
        ssize_t n;

        assert_true(fd >= 0 && saved >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        fflush(stderr);
        assert_int_equal(dup2(fd, 2), 2);
        snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + (journal ? 0 : 1));
        setenv("JOURNAL_STREAM", js, 1);
        assert_int_equal(dm_log_detect_journal(), journal);
        dm_log_set_format(format);
        dm_error("disk \"full\"\tnow");
        dm_warn("careful");
        dm_info("hello");
        dm_debug("not shown at info");
        fflush(stderr);
        dm_log_set_format(DM_LOG_TEXT);
        unsetenv("JOURNAL_STREAM");
        dm_log_detect_journal();
        assert_int_equal(dup2(saved, 2), 2);
        close(saved);
        n = pread(fd, out, size - 1, 0);
        assert_true(n > 0);
        out[n] = '\0';
        close(fd);
        unlink(path);
}

static void log_journal_and_json(void **state)
{
        enum dm_log_format f;
        char out[2048];

        (void)state;
        assert_int_equal(dm_log_format_parse("json", &f), 0);
        assert_int_equal(f, DM_LOG_JSON);
        assert_int_equal(dm_log_format_parse("xml", &f), DREAM_E_INVAL);
        /* stderr is the journal: syslog priorities first. */
        log_to_file(true, DM_LOG_TEXT, out, sizeof(out));
        assert_string_equal(out,
                            "<3>error: disk \"full\"\tnow\n<4>warn: careful\n<6>info: hello\n");
        /* JOURNAL_STREAM names another stream: plain text. */
        log_to_file(false, DM_LOG_TEXT, out, sizeof(out));
        assert_string_equal(out, "error: disk \"full\"\tnow\nwarn: careful\ninfo: hello\n");
        /* JSON lines, with and without the journal. */
        log_to_file(false, DM_LOG_JSON, out, sizeof(out));
        assert_true(strncmp(out, "{\"time\":\"", 9) == 0);
        assert_non_null(
            strstr(out, "Z\",\"level\":\"error\",\"message\":\"disk \\\"full\\\"\\u0009now\"}\n{"));
        assert_non_null(strstr(out, "\"level\":\"info\",\"message\":\"hello\"}\n"));
        log_to_file(true, DM_LOG_JSON, out, sizeof(out));
        assert_true(strncmp(out, "<3>{\"time\":", 11) == 0);
        assert_non_null(strstr(out, "\n<6>{\"time\":"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(error_table),     cmocka_unit_test(buffer_and_reader),
            cmocka_unit_test(alloc_injection), cmocka_unit_test(log_levels),
            cmocka_unit_test(par_shares),      cmocka_unit_test(log_journal_and_json),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
