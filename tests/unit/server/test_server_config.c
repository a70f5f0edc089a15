/* dreamd configuration: every key, bad values, unknown keys with line
 * numbers, flags overriding the file, listen addresses and the loopback
 * rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/limits.h"
#include "server/config.h"

static int parse(struct srv_config *c, const char *text, char *err, size_t n)
{
        return srv_config_parse(c, text, strlen(text), "t.conf", err, n);
}

static void every_key(void **state)
{
        struct srv_config c;
        char err[512] = "";
        const char *text = "# a comment\n"
                           "\n"
                           "listen = 127.0.0.1:7000\n"
                           "listen = [::1]:7001\n"
                           "  listen=unix:/tmp/d.sock  \n"
                           "data_dir = /var/lib/dream\n"
                           "map_size_max = 1073741824\n"
                           "token_file = /etc/dream/tokens\n"
                           "port_file = /run/dreamd/listening\n"
                           "max_connections = 10\n"
                           "max_frame = 1048576\n"
                           "idle_timeout = 2.5\n"
                           "frame_timeout = 7\n"
                           "workers = 8\n"
                           "seal_rows = 5000\r\n"
                           "batch_cache_bytes = 0\n"
                           "jobs = 3\n"
                           "blas_threads = 2\n"
                           "job_queue = 9\n"
                           "metrics_listen = 127.0.0.1:9464\n"
                           "log_level = debug\n";

        (void)state;
        srv_config_init(&c);
        assert_int_equal(parse(&c, text, err, sizeof(err)), 0);
        assert_int_equal(c.n_listen, 3);
        assert_string_equal(c.listen[0], "127.0.0.1:7000");
        assert_string_equal(c.listen[1], "[::1]:7001");
        assert_string_equal(c.listen[2], "unix:/tmp/d.sock");
        assert_string_equal(c.data_dir, "/var/lib/dream");
        assert_int_equal(c.map_size_max, 1073741824ull);
        assert_string_equal(c.token_file, "/etc/dream/tokens");
        assert_string_equal(c.port_file, "/run/dreamd/listening");
        assert_int_equal(c.max_connections, 10);
        assert_int_equal(c.max_frame, 1048576);
        assert_true(c.idle_timeout == 2.5);
        assert_true(c.frame_timeout == 7.0);
        assert_int_equal(c.workers, 8);
        assert_int_equal(c.seal_rows, 5000);
        assert_int_equal(c.log_level, DM_LOG_DEBUG);
        assert_int_equal(c.batch_cache_bytes, 0);
        assert_int_equal(c.jobs, 3);
        assert_int_equal(c.blas_threads, 2);
        assert_int_equal(c.job_queue, 9);
        assert_string_equal(c.metrics_listen, "127.0.0.1:9464");
        assert_int_equal(srv_config_check(&c, err, sizeof(err)), 0);
        /* metrics_listen: IPv6 loopback; off clears it */
        assert_int_equal(parse(&c, "metrics_listen = [::1]:0\n", err, sizeof(err)), 0);
        assert_string_equal(c.metrics_listen, "[::1]:0");
        assert_int_equal(parse(&c, "metrics_listen = off\n", err, sizeof(err)), 0);
        assert_null(c.metrics_listen);
        srv_config_release(&c);
}

static void defaults(void **state)
{
        struct srv_config c;
        char err[256] = "";

        (void)state;
        srv_config_init(&c);
        assert_int_equal(c.n_listen, 0);
        assert_int_equal(c.max_frame, DREAM_MAX_FRAME_DEFAULT);
        assert_int_equal(c.max_connections, SRV_DEFAULT_CONNECTIONS);
        assert_int_equal(c.log_level, DM_LOG_INFO);
        assert_int_equal(c.idle_timeout, SRV_DEFAULT_IDLE_TIMEOUT);
        assert_int_equal(c.frame_timeout, SRV_DEFAULT_FRAME_TIMEOUT);
        assert_int_equal(c.workers, SRV_DEFAULT_WORKERS);
        assert_int_equal(c.jobs, SRV_DEFAULT_JOBS);
        assert_int_equal(c.blas_threads, SRV_DEFAULT_BLAS_THREADS);
        assert_int_equal(c.job_queue, SRV_DEFAULT_JOB_QUEUE);
        assert_int_equal(c.batch_cache_bytes, SRV_DEFAULT_BATCH_CACHE);
        assert_int_equal(c.map_size_max, 0);
        assert_int_equal(c.seal_rows, 0);
        assert_null(c.token_file);
        assert_null(c.metrics_listen);
        /* data_dir is required */
        assert_int_equal(srv_config_check(&c, err, sizeof(err)), DREAM_E_INVAL);
        assert_non_null(strstr(err, "data"));
        srv_config_release(&c);
        srv_config_release(NULL);
}

struct bad {
        const char *text;
        const char *expect; /* substring of the message */
};

static void bad_values(void **state)
{
        static const struct bad cases[] = {
            {"listen = 127.0.0.1\n", "t.conf:1: listen"},
            {"listen = localhost:80\n", "t.conf:1: listen"},
            {"listen = 127.0.0.1:65536\n", "listen"},
            {"listen = [::1:80\n", "listen"},
            {"listen = unix:\n", "listen"},
            {"data_dir =\n", "t.conf:1: data_dir"},
            {"map_size_max = 12\n", "map_size_max"},
            {"map_size_max = -5\n", "map_size_max"},
            {"max_connections = 0\n", "max_connections"},
            {"max_connections = 10x\n", "max_connections"},
            {"max_connections = 99999999999999999999999\n", "max_connections"},
            {"max_frame = 100\n", "max_frame"},
            {"max_frame = 4294967295\n", "max_frame"},
            {"idle_timeout = 0\n", "idle_timeout"},
            {"idle_timeout = nan\n", "idle_timeout"},
            {"idle_timeout = -1\n", "idle_timeout"},
            {"frame_timeout = abc\n", "frame_timeout"},
            {"workers = 0\n", "workers"},
            {"workers = 1025\n", "workers"},
            {"seal_rows = 0\n", "seal_rows"},
            {"seal_rows = 99999999999\n", "seal_rows"},
            {"log_level = loud\n", "log_level"},
            {"batch_cache_bytes = lots\n", "batch_cache_bytes"},
            {"batch_cache_bytes = -1\n", "batch_cache_bytes"},
            {"token_file =\n", "t.conf:1: token_file"},
            {"jobs = 0\n", "t.conf:1: jobs: bad value '0'"},
            {"jobs = 1025\n", "jobs"},
            {"blas_threads = 0\n", "blas_threads"},
            {"blas_threads = 257\n", "blas_threads"},
            {"job_queue = 0\n", "job_queue"},
            {"job_queue = many\n", "job_queue"},
            {"metrics_listen = 0.0.0.0:9464\n",
             "t.conf:1: metrics_listen: '0.0.0.0:9464' is not a loopback"},
            {"metrics_listen = 10.1.2.3:9464\n", "not a loopback"},
            {"metrics_listen = unix:/run/m.sock\n", "metrics_listen: bad address"},
            {"metrics_listen = 127.0.0.1\n", "metrics_listen: bad address"},
            {"metrics_listen =\n", "metrics_listen"},
            {"Workers = 2\n", "unknown key 'Workers'"},
            {"\n\n# x\nfoo = 1\n", "t.conf:4: unknown key 'foo'"},
            {"workers = 2\nlisten_on = 1\n", "t.conf:2: unknown key 'listen_on'"},
            {"workers\n", "t.conf:1: expected 'key = value'"},
            {" = 3\n", "t.conf:1: missing key"},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct srv_config c;
                char err[512] = "";
                int r;

                srv_config_init(&c);
                r = parse(&c, cases[i].text, err, sizeof(err));
                if (r >= 0 || !strstr(err, cases[i].expect))
                        fail_msg("case %zu '%s': r=%d err='%s'", i, cases[i].text, r, err);
                srv_config_release(&c);
        }
}

static void too_many_listen(void **state)
{
        struct srv_config c;
        char err[256];

        (void)state;
        srv_config_init(&c);
        for (unsigned i = 0; i < SRV_MAX_LISTEN; i++)
                assert_int_equal(srv_config_set(&c, "listen", "127.0.0.1:1", "x", err, sizeof(err)),
                                 0);
        assert_int_equal(srv_config_set(&c, "listen", "127.0.0.1:1", "x", err, sizeof(err)),
                         DREAM_E_LIMIT);
        srv_config_release(&c);
}

static void long_line(void **state)
{
        struct srv_config c;
        char err[256] = "";
        size_t n = SRV_MAX_CONFIG_LINE + 10;
        char *text = malloc(n + 1);

        (void)state;
        memset(text, 'a', n);
        text[n] = '\0';
        srv_config_init(&c);
        assert_int_equal(parse(&c, text, err, sizeof(err)), DREAM_E_LIMIT);
        assert_non_null(strstr(err, "t.conf:1"));
        srv_config_release(&c);
        free(text);
}

static void addresses(void **state)
{
        struct srv_addr a;

        (void)state;
        assert_int_equal(srv_addr_parse("127.0.0.1:7878", &a), 0);
        assert_true(a.loopback && !a.is_v6 && !a.is_unix && a.port == 7878);
        assert_int_equal(srv_addr_parse("127.1.2.3:0", &a), 0);
        assert_true(a.loopback && a.port == 0);
        assert_int_equal(srv_addr_parse("[::1]:7878", &a), 0);
        assert_true(a.loopback && a.is_v6);
        assert_int_equal(srv_addr_parse("0.0.0.0:7878", &a), 0);
        assert_false(a.loopback);
        assert_int_equal(srv_addr_parse("[::]:1", &a), 0);
        assert_false(a.loopback);
        assert_int_equal(srv_addr_parse("10.0.0.1:80", &a), 0);
        assert_false(a.loopback);
        assert_int_equal(srv_addr_parse("unix:/run/x.sock", &a), 0);
        assert_true(a.is_unix && a.loopback);
        assert_string_equal(a.path, "/run/x.sock");
        assert_int_equal(srv_addr_parse("::1:80", &a), DREAM_E_INVAL);
        assert_int_equal(srv_addr_parse("127.0.0.1:", &a), DREAM_E_INVAL);
        assert_int_equal(srv_addr_parse(":80", &a), DREAM_E_INVAL);
        assert_int_equal(srv_addr_parse("127.0.0.1:+80", &a), DREAM_E_INVAL);
}

static void non_loopback_needs_token(void **state)
{
        struct srv_config c;
        char err[512] = "";

        (void)state;
        srv_config_init(&c);
        assert_int_equal(parse(&c, "data_dir = /d\nlisten = 0.0.0.0:7878\n", err, sizeof(err)), 0);
        assert_int_equal(srv_config_check(&c, err, sizeof(err)), DREAM_E_AUTH);
        assert_non_null(strstr(err, "0.0.0.0:7878"));
        assert_non_null(strstr(err, "token"));
        assert_int_equal(parse(&c, "token_file = /t\n", err, sizeof(err)), 0);
        assert_int_equal(srv_config_check(&c, err, sizeof(err)), 0);
        srv_config_release(&c);
}

static void flags_override_file(void **state)
{
        struct srv_config c;
        char path[] = "/tmp/dreamd-conf-XXXXXX";
        char err[512] = "";
        bool help;
        int fd;

        (void)state;
        fd = mkstemp(path);
        assert_true(fd >= 0);
        dprintf(fd, "listen = 127.0.0.1:1\nlisten = 127.0.0.1:2\nworkers = 3\ndata_dir = /a\n"
                    "log_level = warn\n");
        close(fd);
        {
                char *argv[] = {"dreamd",   "--workers", "5",          "--config", path,
                                "--listen", "[::1]:9",   "--data-dir", "/b",       NULL};
                srv_config_init(&c);
                assert_int_equal(srv_config_from_args(&c, 9, argv, &help, err, sizeof(err)), 0);
                assert_false(help);
                assert_int_equal(c.workers, 5);
                assert_int_equal(c.n_listen, 1);
                assert_string_equal(c.listen[0], "[::1]:9");
                assert_string_equal(c.data_dir, "/b");
                assert_int_equal(c.log_level, DM_LOG_WARN);
                assert_string_equal(c.config_file, path);
                srv_config_release(&c);
        }
        {
                char *argv[] = {"dreamd", "--config", path, NULL};
                srv_config_init(&c);
                assert_int_equal(srv_config_from_args(&c, 3, argv, &help, err, sizeof(err)), 0);
                assert_int_equal(c.n_listen, 2);
                assert_int_equal(c.workers, 3);
                srv_config_release(&c);
        }
        {
                char *argv[] = {"dreamd", "--bogus", "1", NULL};
                srv_config_init(&c);
                assert_int_equal(srv_config_from_args(&c, 3, argv, &help, err, sizeof(err)),
                                 DREAM_E_INVAL);
                assert_non_null(strstr(err, "--bogus"));
                srv_config_release(&c);
        }
        {
                char *argv[] = {"dreamd", "--workers", NULL};
                srv_config_init(&c);
                assert_int_equal(srv_config_from_args(&c, 2, argv, &help, err, sizeof(err)),
                                 DREAM_E_INVAL);
                srv_config_release(&c);
        }
        {
                char *argv[] = {"dreamd", "--max-frame", "12", NULL};
                srv_config_init(&c);
                assert_int_equal(srv_config_from_args(&c, 3, argv, &help, err, sizeof(err)),
                                 DREAM_E_INVAL);
                assert_non_null(strstr(err, "option --max-frame"));
                srv_config_release(&c);
        }
        {
                char *argv[] = {"dreamd", "--config", "/nonexistent/dreamd.conf", NULL};
                srv_config_init(&c);
                assert_true(srv_config_from_args(&c, 3, argv, &help, err, sizeof(err)) < 0);
                assert_non_null(strstr(err, "/nonexistent/dreamd.conf"));
                srv_config_release(&c);
        }
        {
                char *argv[] = {"dreamd", "--help", NULL};
                srv_config_init(&c);
                assert_int_equal(srv_config_from_args(&c, 2, argv, &help, err, sizeof(err)), 0);
                assert_true(help);
                srv_config_release(&c);
        }
        /* A bad line in the file names file and line. */
        fd = open(path, O_WRONLY | O_TRUNC);
        dprintf(fd, "workers = 3\n\nnope = 1\n");
        close(fd);
        {
                char *argv[] = {"dreamd", "--config", path, NULL};
                char want[128];
                srv_config_init(&c);
                assert_int_equal(srv_config_from_args(&c, 3, argv, &help, err, sizeof(err)),
                                 DREAM_E_INVAL);
                snprintf(want, sizeof(want), "%s:3: unknown key 'nope'", path);
                assert_string_equal(err, want);
                srv_config_release(&c);
        }
        unlink(path);
}

/* Every flag sets its key, and overrides the file's value. */
static void flags_every_key(void **state)
{
        struct srv_config c;
        char path[] = "/tmp/dreamd-conf-XXXXXX";
        char err[512] = "";
        bool help;
        int fd;

        (void)state;
        fd = mkstemp(path);
        assert_true(fd >= 0);
        dprintf(fd, "jobs = 2\nblas_threads = 2\njob_queue = 2\nmetrics_listen = 127.0.0.1:1\n"
                    "max_frame = 8192\nidle_timeout = 2\nframe_timeout = 2\n"
                    "max_connections = 2\nbatch_cache_bytes = 2\nmap_size_max = 2097152\n"
                    "seal_rows = 2\ntoken_file = /t2\nport_file = /p2\nlog_level = warn\n");
        close(fd);
        {
                char *argv[] = {"dreamd",  "--config",
                                path,      "--jobs",
                                "5",       "--blas-threads",
                                "6",       "--job-queue",
                                "7",       "--metrics-listen",
                                "off",     "--max-frame",
                                "16384",   "--idle-timeout",
                                "1.5",     "--frame-timeout",
                                "0.5",     "--max-connections",
                                "9",       "--batch-cache-bytes",
                                "0",       "--map-size-max",
                                "4194304", "--seal-rows",
                                "10",      "--token-file",
                                "/t",      "--port-file",
                                "/p",      "--log-level",
                                "error",   "--data-dir",
                                "/d",      NULL};
                int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;

                srv_config_init(&c);
                assert_int_equal(srv_config_from_args(&c, argc, argv, &help, err, sizeof(err)), 0);
                assert_int_equal(c.jobs, 5);
                assert_int_equal(c.blas_threads, 6);
                assert_int_equal(c.job_queue, 7);
                assert_null(c.metrics_listen);
                assert_int_equal(c.max_frame, 16384);
                assert_true(c.idle_timeout == 1.5);
                assert_true(c.frame_timeout == 0.5);
                assert_int_equal(c.max_connections, 9);
                assert_int_equal(c.batch_cache_bytes, 0);
                assert_int_equal(c.map_size_max, 4194304);
                assert_int_equal(c.seal_rows, 10);
                assert_string_equal(c.token_file, "/t");
                assert_string_equal(c.port_file, "/p");
                assert_int_equal(c.log_level, DM_LOG_ERROR);
                assert_string_equal(c.data_dir, "/d");
                srv_config_release(&c);
        }
        {
                char *argv[] = {"dreamd", "--metrics-listen", "0.0.0.0:9464", NULL};
                srv_config_init(&c);
                assert_int_equal(srv_config_from_args(&c, 3, argv, &help, err, sizeof(err)),
                                 DREAM_E_INVAL);
                assert_non_null(strstr(err, "option --metrics-listen: metrics_listen"));
                srv_config_release(&c);
        }
        /* The usage text names every flag. */
        assert_non_null(strstr(srv_config_usage(), "--metrics-listen"));
        assert_non_null(strstr(srv_config_usage(), "--job-queue"));
        unlink(path);
}

static void report_count(const char *msg, void *arg)
{
        (void)msg;
        (*(unsigned *)arg)++;
}

/* Every error of a file, and the key meant by a misspelt one. */
static void all_errors_and_hints(void **state)
{
        static const char text[] = "max_frme = 65536\nworkers = 0\nbad line\njobs = 2\n";
        struct srv_config c;
        unsigned seen = 0, errors = 0;

        (void)state;
        assert_string_equal(srv_config_suggest("max_frme"), "max_frame");
        assert_string_equal(srv_config_suggest("log_levle"), "log_level");
        assert_string_equal(srv_config_suggest("datadir"), "data_dir");
        assert_null(srv_config_suggest("colour"));
        srv_config_init(&c);
        assert_int_equal(srv_config_parse_all(&c, text, sizeof(text) - 1, "f.conf", report_count,
                                              &seen, &errors),
                         DREAM_E_INVAL);
        assert_int_equal(errors, 3);
        assert_int_equal(seen, 3);
        assert_int_equal(c.jobs, 2); /* the good lines still apply */
        srv_config_release(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(every_key),
            cmocka_unit_test(defaults),
            cmocka_unit_test(bad_values),
            cmocka_unit_test(too_many_listen),
            cmocka_unit_test(long_line),
            cmocka_unit_test(addresses),
            cmocka_unit_test(non_loopback_needs_token),
            cmocka_unit_test(flags_override_file),
            cmocka_unit_test(flags_every_key),
            cmocka_unit_test(all_errors_and_hints),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
