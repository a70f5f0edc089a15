/* Crash test: a child appends uniquely numbered rows and reports each
 * acknowledged batch on a pipe; the parent SIGKILLs it at a random moment,
 * reopens the store and checks every acknowledged row is there, once, intact,
 * and that nothing was invented. Seals run during the appends.
 * STORE_CRASH_SEED replays a run; STORE_CRASH_ITERATIONS (default 24) runs
 * more kills (the benchmark's longer run). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "util.h"

#define MAX_BATCHES 200000u
#define ITERATIONS  24

static uint64_t cum[MAX_BATCHES + 1]; /* first row of batch b */

static uint64_t batch_rows(uint64_t b)
{
        return 20 + (b * 7919) % 300;
}

static void child(const char *dir, uint64_t start, int fd)
{
        struct store_opts o;
        struct store *s;
        store_opts_default(&o);
        o.map_initial = 1u << 20;
        o.seal_rows = 1500;
        if (store_open(dir, &o, &s) < 0)
                _exit(2);
        for (uint64_t b = start; b < MAX_BATCHES; b++) {
                struct gd_table *t = tu_batch(cum[b], batch_rows(b), (unsigned)(b % 3));
                uint64_t first;
                bool needs;
                int r = store_append(s, "crash", t, b + 1, &first, &needs);
                gd_table_free(t);
                if (r < 0 || first != cum[b])
                        _exit(3);
                if (write(fd, &b, sizeof(b)) != sizeof(b))
                        _exit(4);
                if (needs && store_seal(s, "crash", false, NULL) < 0)
                        _exit(5);
        }
        _exit(0);
}

struct verify {
        uint64_t next;
        bool ok;
};

static int verify_cb(const struct gd_table *chunk, uint64_t first_row, void *arg)
{
        struct verify *v = arg;
        if (first_row != v->next || !tu_rows_ok(chunk, first_row))
                v->ok = false;
        v->next = first_row + chunk->n_rows;
        return 0;
}

static void test_crash(void **state)
{
        char dir[64];
        struct store *s;
        uint64_t acked = 0; /* batches 0..acked-1 acknowledged */
        unsigned seed = (unsigned)time(NULL);
        uint64_t seals_seen = 0;
        (void)state;

        if (getenv("STORE_CRASH_SEED"))
                seed = (unsigned)strtoul(getenv("STORE_CRASH_SEED"), NULL, 10);
        fprintf(stderr, "crash test seed %u (STORE_CRASH_SEED to replay)\n", seed);
        for (uint64_t b = 0; b < MAX_BATCHES; b++)
                cum[b + 1] = cum[b] + batch_rows(b);
        tu_tmpdir(dir);
        assert_int_equal(store_open(dir, NULL, &s), 0);
        assert_int_equal(store_dataset_create(s, "crash", tu_schema()), 0);
        store_close(s);

        int iterations = ITERATIONS;
        if (getenv("STORE_CRASH_ITERATIONS"))
                iterations = atoi(getenv("STORE_CRASH_ITERATIONS"));
        for (int it = 0; it < iterations; it++) {
                int fds[2];
                pid_t pid;
                int status;
                uint64_t b;
                ssize_t n;

                assert_int_equal(pipe(fds), 0);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        close(fds[0]);
                        child(dir, acked, fds[1]);
                }
                close(fds[1]);
                struct timespec ts = {.tv_sec = 0,
                                      .tv_nsec = (long)(20 + rand_r(&seed) % 250) * 1000000L};
                nanosleep(&ts, NULL);
                kill(pid, SIGKILL);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                if (!WIFSIGNALED(status))
                        fail_msg("child exited by itself with status %d", WEXITSTATUS(status));
                while ((n = read(fds[0], &b, sizeof(b))) == sizeof(b)) {
                        assert_true(b == acked); /* in order, each once */
                        acked = b + 1;
                }
                close(fds[0]);

                struct store_info *info;
                struct verify v = {.ok = true};
                uint64_t problems = 1;
                assert_int_equal(store_open(dir, NULL, &s), 0);
                assert_int_equal(store_dataset_describe(s, "crash", &info), 0);
                /* Every acknowledged batch, plus at most the one committed
                 * before its acknowledgement was written. */
                assert_true(info->rows == cum[acked] || info->rows == cum[acked + 1]);
                /* A committed but unacknowledged batch is re-sent by the next
                 * child with the same batch id: stored once. */
                uint64_t rows = info->rows;
                seals_seen = info->segments;
                store_info_free(info);
                assert_int_equal(store_scan(s, "crash", 0, 0, UINT64_MAX, 0, verify_cb, &v), 0);
                assert_true(v.ok);
                assert_int_equal(v.next, rows);
                assert_int_equal(store_check(s, NULL, NULL, &problems), 0);
                assert_int_equal(problems, 0);
                store_close(s);
        }
        fprintf(stderr, "crash test: %llu batches, %llu rows, %llu segments\n",
                (unsigned long long)acked, (unsigned long long)cum[acked],
                (unsigned long long)seals_seen);
        assert_true(seals_seen > 0);
        tu_rmrf(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_crash),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
