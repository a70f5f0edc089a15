/* Operations of a running server, in-process on its own loop:
 *   - srv_reload: a configuration that does not check, a token file that is
 *     missing or empty, keep every running value; a good one applies every
 *     runtime key at once (limits, tokens, log level) and leaves the keys
 *     bound at start (listen, data_dir, workers, jobs, blas_threads,
 *     map_size_max, seal_rows, metrics_listen) as they were; removing the
 *     token file turns authentication off; a draining server refuses;
 *   - token-file lines with an unknown role, no role before ':' or a space
 *     in the token are refused, naming the file and line;
 *   - srv_stats_reply_fill: datasets, map use and per-type counters;
 *   - srv_write_progress reads the write counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"
#include "server/auth.h"
#include "server/internal.h"
#include "server/server.h"

struct fixture {
        uv_loop_t loop;
        char dir[64], data[96], tok1[96], tok2[96], empty[96];
        struct srv_config cfg;
        struct srv *s;
};

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        char err[512] = "";

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/dreamd-ops-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
        snprintf(f->tok1, sizeof(f->tok1), "%s/tok1", f->dir);
        snprintf(f->tok2, sizeof(f->tok2), "%s/tok2", f->dir);
        snprintf(f->empty, sizeof(f->empty), "%s/empty", f->dir);
        write_file(f->tok1, "# old\nsecret-one\n");
        write_file(f->tok2, "secret-two\nread:secret-three\n");
        write_file(f->empty, "# nothing\n\n");
        assert_int_equal(uv_loop_init(&f->loop), 0);
        srv_config_init(&f->cfg);
        assert_int_equal(srv_config_set(&f->cfg, "listen", "127.0.0.1:0", "t", err, sizeof(err)),
                         0);
        assert_int_equal(srv_config_set(&f->cfg, "data_dir", f->data, "t", err, sizeof(err)), 0);
        assert_int_equal(srv_config_set(&f->cfg, "token_file", f->tok1, "t", err, sizeof(err)), 0);
        assert_int_equal(srv_config_set(&f->cfg, "max_frame", "65536", "t", err, sizeof(err)), 0);
        assert_int_equal(srv_new(&f->loop, &f->cfg, &f->s, err, sizeof(err)), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[160];

        srv_shutdown(f->s, NULL, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        srv_free(f->s);
        assert_int_equal(uv_loop_close(&f->loop), 0);
        srv_config_release(&f->cfg);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        dm_log_set_level(DM_LOG_INFO);
        return 0;
}

/* A copy of the running configuration with one key changed. */
static void variant(const struct fixture *f, struct srv_config *c, const char *key,
                    const char *value)
{
        char err[512] = "";

        srv_config_init(c);
        assert_int_equal(srv_config_set(c, "listen", "127.0.0.1:0", "t", err, sizeof(err)), 0);
        assert_int_equal(srv_config_set(c, "data_dir", f->data, "t", err, sizeof(err)), 0);
        assert_int_equal(srv_config_set(c, "token_file", f->tok1, "t", err, sizeof(err)), 0);
        assert_int_equal(srv_config_set(c, "max_frame", "65536", "t", err, sizeof(err)), 0);
        if (key)
                assert_int_equal(srv_config_set(c, key, value, "t", err, sizeof(err)), 0);
}

static void unchanged(const struct fixture *f)
{
        const struct srv *s = f->s;

        assert_int_equal(s->cfg.max_frame, 65536);
        assert_int_equal(s->cfg.max_connections, SRV_DEFAULT_CONNECTIONS);
        assert_true(s->cfg.idle_timeout == SRV_DEFAULT_IDLE_TIMEOUT);
        assert_int_equal(s->n_tokens, 1);
        assert_true(srv_token_ok(s, "secret-one"));
        assert_false(srv_token_ok(s, "secret-two"));
        assert_string_equal(s->cfg.token_file, f->tok1);
}

static void reload_refused(void **state)
{
        struct fixture *f = *state;
        struct srv_config c;
        char err[512];

        /* A token file that is missing: named in the message. */
        variant(f, &c, "token_file", "/nonexistent/tokens");
        srv_config_set(&c, "max_frame", "1048576", "t", err, sizeof(err));
        err[0] = '\0';
        assert_true(srv_reload(f->s, &c, err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "/nonexistent/tokens"));
        srv_config_release(&c);
        unchanged(f);

        /* A token file without a token. */
        variant(f, &c, "token_file", f->empty);
        srv_config_set(&c, "idle_timeout", "5", "t", err, sizeof(err));
        assert_int_equal(srv_reload(f->s, &c, err, sizeof(err)), DREAM_E_INVAL);
        assert_non_null(strstr(err, "no token"));
        srv_config_release(&c);
        unchanged(f);

        /* A configuration that does not check (no data directory). */
        srv_config_init(&c);
        srv_config_set(&c, "max_connections", "3", "t", err, sizeof(err));
        assert_int_equal(srv_reload(f->s, &c, err, sizeof(err)), DREAM_E_INVAL);
        assert_non_null(strstr(err, "data"));
        srv_config_release(&c);
        unchanged(f);
}

static void reload_applies(void **state)
{
        struct fixture *f = *state;
        struct srv *s = f->s;
        struct srv_config c;
        char err[512] = "";
        const char *const set[][2] = {
            {"token_file", f->tok2},
            {"max_frame", "1048576"},
            {"max_connections", "7"},
            {"idle_timeout", "12.5"},
            {"frame_timeout", "3"},
            {"batch_cache_bytes", "99"},
            {"job_queue", "5"},
            {"log_level", "warn"},
            {"workers", "9"},
            {"jobs", "4"},
            {"blas_threads", "3"},
            {"seal_rows", "100"},
            {"map_size_max", "8388608"},
            {"listen", "127.0.0.1:1"},
            {"metrics_listen", "127.0.0.1:9"},
        };
        uint32_t workers = s->cfg.workers, jobs = s->cfg.jobs, blas = s->cfg.blas_threads;

        variant(f, &c, NULL, NULL);
        for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
                assert_int_equal(srv_config_set(&c, set[i][0], set[i][1], "t", err, sizeof(err)),
                                 0);
        assert_int_equal(srv_reload(s, &c, err, sizeof(err)), 0);
        srv_config_release(&c);
        /* Runtime keys: applied. */
        assert_int_equal(s->cfg.max_frame, 1048576);
        assert_int_equal(s->cfg.max_connections, 7);
        assert_true(s->cfg.idle_timeout == 12.5);
        assert_true(s->cfg.frame_timeout == 3.0);
        assert_int_equal(s->cfg.batch_cache_bytes, 99);
        assert_int_equal(s->cfg.job_queue, 5);
        assert_int_equal(dm_log_get_level(), DM_LOG_WARN);
        assert_int_equal(s->n_tokens, 2);
        assert_true(srv_token_ok(s, "secret-two"));
        assert_true(srv_token_ok(s, "secret-three")); /* role prefix stripped */
        assert_false(srv_token_ok(s, "secret-one"));
        assert_string_equal(s->cfg.token_file, f->tok2);
        /* Keys bound at start: kept. */
        assert_int_equal(s->cfg.workers, workers);
        assert_int_equal(s->cfg.jobs, jobs);
        assert_int_equal(s->cfg.blas_threads, blas);
        assert_int_equal(s->cfg.seal_rows, 0);
        assert_int_equal(s->cfg.map_size_max, 0);
        assert_int_equal(s->cfg.n_listen, 1);
        assert_string_equal(s->cfg.listen[0], "127.0.0.1:0");
        assert_null(s->cfg.metrics_listen);
        assert_string_equal(s->cfg.data_dir, f->data);

        /* No token file any more: authentication off (loopback listener). */
        srv_config_init(&c);
        srv_config_set(&c, "data_dir", f->data, "t", err, sizeof(err));
        assert_int_equal(srv_reload(s, &c, err, sizeof(err)), 0);
        srv_config_release(&c);
        assert_int_equal(s->n_tokens, 0);
        assert_null(s->cfg.token_file);
        assert_int_equal(s->cfg.max_frame, DREAM_MAX_FRAME_DEFAULT);

        /* Draining: refused. */
        srv_shutdown(s, NULL, NULL);
        variant(f, &c, NULL, NULL);
        assert_int_equal(srv_reload(s, &c, err, sizeof(err)), DREAM_E_CANCELLED);
        srv_config_release(&c);
        assert_int_equal(s->n_tokens, 0);
}

static void stats_fill(void **state)
{
        struct fixture *f = *state;
        struct srv *s = f->s;
        Dream__V1__StatsReply st = DREAM__V1__STATS_REPLY__INIT;
        struct srv_stats_reply more;
        uint64_t q, d;
        bool ingest = false, undecodable = false;

        srv_stats_add(&s->stats.requests_by_type[srv_stats_type(DREAM__V1__REQUEST__BODY_INGEST)],
                      3);
        srv_stats_error(s, DREAM__V1__REQUEST__BODY_INGEST);
        srv_stats_error(s, 0);
        srv_stats_add(&s->stats.seal_ns, 1500000000ull);
        srv_stats_add(&s->stats.seals, 2);
        assert_int_equal(srv_stats_type(1000), 0);
        assert_int_equal(srv_stats_type(-1), 0);
        assert_int_equal(srv_stats_reply_fill(s, &st, &more), 0);
        assert_int_equal(st.datasets, 0);
        assert_int_equal(st.n_dataset_stats, 0);
        assert_true(st.store_map_bytes > 0);
        assert_true(st.store_used_bytes > 0);
        assert_true(st.store_map_max_bytes >= st.store_map_bytes);
        assert_int_equal(st.seals_total, 2);
        assert_true(st.seal_seconds_total > 1.49 && st.seal_seconds_total < 1.51);
        assert_int_equal(st.n_requests_by_type, 2);
        for (size_t i = 0; i < st.n_requests_by_type; i++) {
                const Dream__V1__RequestTypeStats *t = st.requests_by_type[i];
                if (strcmp(t->type, "ingest") == 0) {
                        ingest = true;
                        assert_int_equal(t->requests, 3);
                        assert_int_equal(t->errors, 1);
                }
                if (strcmp(t->type, "undecodable") == 0) {
                        undecodable = true;
                        assert_int_equal(t->requests, 0);
                        assert_int_equal(t->errors, 1);
                }
        }
        assert_true(ingest && undecodable);
        srv_stats_reply_release(&more);
        srv_stats_reply_release(NULL);
        srv_write_progress(s, &q, &d);
        assert_int_equal(q, 0);
        assert_int_equal(d, 0);
}

/* Token-file lines that cannot mean what they seem are refused, naming the
 * file and line; the running tokens stay. */
static void token_lines_refused(void **state)
{
        static const char *const bad[][2] = {
            {"good-one\nraed:TOK-A\n", "unknown role 'raed'"},
            {"# c\n:TOK-B\n", "no role before ':'"},
            {"read: TOK-C\n", "space"},
            {"tok en\n", "space"},
            {"read,:TOK-D\n", "unknown role ''"},
            {"admin:\n", "empty token"},
        };
        static const unsigned line[] = {2, 2, 1, 1, 1, 1};
        struct fixture *f = *state;
        char path[128], err[512], want[160];
        struct srv_config c;

        snprintf(path, sizeof(path), "%s/bad", f->dir);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                write_file(path, bad[i][0]);
                variant(f, &c, "token_file", path);
                err[0] = '\0';
                assert_int_equal(srv_reload(f->s, &c, err, sizeof(err)), DREAM_E_INVAL);
                snprintf(want, sizeof(want), "token file '%s', line %u: ", path, line[i]);
                assert_non_null(strstr(err, want));
                assert_non_null(strstr(err, bad[i][1]));
                srv_config_release(&c);
                unchanged(f);
        }
        /* A colon inside a token is fine after a role list. */
        write_file(path, "admin:a:b\n");
        variant(f, &c, "token_file", path);
        assert_int_equal(srv_reload(f->s, &c, err, sizeof(err)), 0);
        srv_config_release(&c);
        assert_true(srv_token_ok(f->s, "a:b"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(reload_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(reload_applies, setup, teardown),
            cmocka_unit_test_setup_teardown(stats_fill, setup, teardown),
            cmocka_unit_test_setup_teardown(token_lines_refused, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
