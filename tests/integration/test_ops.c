/* Operations of a real dreamd (DREAMD in the environment):
 *
 *   reload   dreamd started with --config FILE (token file, limits) and a
 *            --max-frame flag. The file rewritten with a bad value, then with
 *            a missing token file: SIGHUP keeps the running configuration
 *            (the old token works, the new one is refused) and the log names
 *            the file, line and key. Then a good file: the new token works,
 *            the old one is refused, a connection authenticated before stays
 *            so, max_connections applies, and the --max-frame flag still
 *            overrides the file's max_frame.
 *   metrics  --metrics-listen 127.0.0.1:0: GET /metrics is valid Prometheus
 *            text (HELP and TYPE before each family, dreamd_* names, numeric
 *            values); the counters of requests, errors by type, ingested rows
 *            and commits move after an ingest; the dataset gauges follow the
 *            snapshot; other paths are 404; Stats over RPC carries the same
 *            new fields. A non-loopback metrics_listen is refused at start.
 *   cli      --version prints it; --check-config reports every error of a
 *            file with its line (a misspelt key with the key meant) and
 *            exits 2 without opening the store, 0 for a good file; with
 *            JOURNAL_STREAM naming stderr, lines start with "<3>"; with
 *            --log-format json, lines are JSON objects.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "tclient.h"

static void msleep(int ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static void write_file(const char *path, const char *text)
{
        char tmp[512];
        FILE *f;

        /* Replaced atomically, as an editor or a config manager would. */
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "w");
        CHECK(f != NULL);
        fputs(text, f);
        CHECK(fclose(f) == 0);
        CHECK(rename(tmp, path) == 0);
}

static char *read_file(const char *path)
{
        static char buf[1 << 16];
        size_t n = 0;
        int fd = open(path, O_RDONLY);

        buf[0] = '\0';
        if (fd < 0)
                return buf;
        for (;;) {
                ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
                if (r <= 0)
                        break;
                n += (size_t)r;
        }
        buf[n] = '\0';
        close(fd);
        return buf;
}

/* Hello on a new connection: the response code, and max_frame_bytes. */
static int hello_code(uint16_t port, const char *token, uint32_t *ret_max_frame)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Hello h = DREAM__V1__HELLO__INIT;
        proto_response *resp;
        struct tc c;
        int code;

        tc_connect(&c, port);
        h.protocol_version = DREAM_PROTOCOL_VERSION;
        h.client_name = "test-ops";
        h.token = (char *)token;
        req.request_id = 1;
        req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
        req.hello = &h;
        /* Not tc_call: a refused connection answers with request_id 0. */
        CHECK(tc_send(&c, &req) == 0);
        CHECK(tc_recv(&c, &resp, 10000) == 1);
        code = (int)resp->code;
        if (getenv("TEST_OPS_VERBOSE")) /* debugging aid: every answer */
                fprintf(stderr, "hello '%s': code %d '%s'\n", token, code,
                        resp->message ? resp->message : "");
        if (ret_max_frame && resp->body_case == DREAM__V1__RESPONSE__BODY_HELLO)
                *ret_max_frame = resp->hello->max_frame_bytes;
        proto_response_free(resp);
        tc_close(&c);
        return code;
}

static proto_response *stats(struct tc *c, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Stats st = DREAM__V1__STATS__INIT;

        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_STATS;
        req.stats = &st;
        return tc_call(c, &req);
}

/* dreamd's stderr goes to `path` (spawned daemons inherit fd 2); returns the
 * saved descriptor for stderr_restore. */
static int stderr_to(const char *path)
{
        int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        CHECK(saved >= 0 && fd >= 0);
        CHECK(dup2(fd, 2) == 2);
        close(fd);
        return saved;
}

static void stderr_restore(int saved)
{
        CHECK(dup2(saved, 2) == 2);
        close(saved);
}

/* ---- reload ------------------------------------------------------------------ */

static void test_reload(void)
{
        char dir[] = "/tmp/dreamd-ops-XXXXXX", data[128], conf[128], tok1[128], tok2[128];
        char log[128], text[1024], want[256];
        const char *extra[8];
        struct tdaemon d;
        struct tc keep;
        uint32_t max_frame = 0;
        int saved, n = 0;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(data, sizeof(data), "%s/data", dir);
        snprintf(conf, sizeof(conf), "%s/dreamd.conf", dir);
        snprintf(tok1, sizeof(tok1), "%s/tokens1", dir);
        snprintf(tok2, sizeof(tok2), "%s/tokens2", dir);
        snprintf(log, sizeof(log), "%s/dreamd.log", dir);
        write_file(tok1, "old-token\n");
        write_file(tok2, "# rotated\nnew-token\n");
        snprintf(text, sizeof(text), "# test\ntoken_file = %s\nmax_frame = 2097152\n", tok1);
        write_file(conf, text);
        extra[n++] = "--config";
        extra[n++] = conf;
        extra[n++] = "--max-frame";
        extra[n++] = "1048576";
        extra[n] = NULL;
        saved = stderr_to(log);
        td_start(&d, data, extra);
        stderr_restore(saved);

        CHECK(hello_code(d.port, "old-token", &max_frame) == DREAM__V1__STATUS__STATUS_OK);
        CHECK(max_frame == 1048576); /* the flag overrides the file */
        CHECK(hello_code(d.port, "new-token", NULL) == DREAM__V1__STATUS__STATUS_AUTH);
        tc_connect(&keep, d.port);
        tc_hello(&keep, "old-token", DREAM__V1__STATUS__STATUS_OK);

        /* A bad value (line 3) with the new token file: nothing applies. */
        snprintf(text, sizeof(text), "token_file = %s\n\nmax_connections = 0\n", tok2);
        write_file(conf, text);
        CHECK(kill(d.pid, SIGHUP) == 0);
        snprintf(want, sizeof(want), "%s:3: max_connections: bad value '0'", conf);
        CHECK(td_log_has(log, want, 10000));
        CHECK(strstr(read_file(log), "configuration not reloaded") != NULL);
        CHECK(hello_code(d.port, "old-token", NULL) == DREAM__V1__STATUS__STATUS_OK);
        CHECK(hello_code(d.port, "new-token", NULL) == DREAM__V1__STATUS__STATUS_AUTH);

        /* An unknown key: the same. */
        snprintf(text, sizeof(text), "token_file = %s\nmax_conections = 5\n", tok2);
        write_file(conf, text);
        CHECK(kill(d.pid, SIGHUP) == 0);
        snprintf(want, sizeof(want), "%s:2: unknown key 'max_conections'", conf);
        CHECK(td_log_has(log, want, 10000));
        CHECK(hello_code(d.port, "new-token", NULL) == DREAM__V1__STATUS__STATUS_AUTH);

        /* A token file that does not exist: the old tokens stay. */
        snprintf(text, sizeof(text), "token_file = %s/missing\nmax_connections = 1\n", dir);
        write_file(conf, text);
        CHECK(kill(d.pid, SIGHUP) == 0);
        snprintf(want, sizeof(want), "cannot open token file '%s/missing'", dir);
        CHECK(td_log_has(log, want, 10000));
        CHECK(hello_code(d.port, "old-token", NULL) == DREAM__V1__STATUS__STATUS_OK);

        /* A good file: new token, max_connections 1, a restart-only key. */
        snprintf(text, sizeof(text),
                 "token_file = %s\nmax_connections = 1\nmax_frame = 4194304\nworkers = 7\n", tok2);
        write_file(conf, text);
        CHECK(kill(d.pid, SIGHUP) == 0);
        CHECK(td_log_has(log, "received SIGHUP: configuration reloaded from", 10000));
        CHECK(strstr(read_file(log), "'workers' changed: needs a restart") != NULL);
        /* `keep` (authenticated with the old token) still works and holds
         * the only connection slot: a new connection is refused. */
        {
                proto_response *r = stats(&keep, 7);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_OK);
                proto_response_free(r);
        }
        CHECK(hello_code(d.port, "new-token", NULL) == DREAM__V1__STATUS__STATUS_BUSY);
        tc_close(&keep);
        /* Once `keep` is gone, the new token works and the old one not. */
        for (int i = 0; i < 100; i++) {
                int code = hello_code(d.port, "new-token", &max_frame);
                if (code == DREAM__V1__STATUS__STATUS_OK)
                        break;
                CHECK(code == DREAM__V1__STATUS__STATUS_BUSY);
                msleep(50);
        }
        CHECK(max_frame == 1048576); /* --max-frame still overrides the file */
        for (int i = 0; i < 100; i++) {
                int code = hello_code(d.port, "old-token", NULL);
                if (code == DREAM__V1__STATUS__STATUS_AUTH)
                        break;
                CHECK(code == DREAM__V1__STATUS__STATUS_BUSY);
                CHECK(i < 99);
                msleep(50);
        }
        CHECK(td_stop(&d) == 0);
        td_rmtree(dir);
        puts("reload: bad file, unknown key and missing token file kept the running "
             "configuration; a good one rotated the tokens and the limits: ok");
}

/* ---- metrics ----------------------------------------------------------------- */

#define NCOLS 2

static proto_response *create_ds(struct tc *c, const char *name, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__CreateDataset cd = DREAM__V1__CREATE_DATASET__INIT;
        Dream__V1__ColumnSpec specs[NCOLS], *sp[NCOLS];
        const char *names[NCOLS] = {"x", "label"};

        for (int i = 0; i < NCOLS; i++) {
                dream__v1__column_spec__init(&specs[i]);
                specs[i].name = (char *)names[i];
                specs[i].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
                sp[i] = &specs[i];
        }
        cd.name = (char *)name;
        cd.n_columns = NCOLS;
        cd.columns = sp;
        cd.target = "label";
        cd.task = DREAM__V1__TASK__TASK_CLASSIFICATION;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_CREATE_DATASET;
        req.create_dataset = &cd;
        return tc_call(c, &req);
}

static proto_response *ingest(struct tc *c, const char *name, uint64_t id, uint32_t n)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Ingest in = DREAM__V1__INGEST__INIT;
        Dream__V1__Columns cols = DREAM__V1__COLUMNS__INIT;
        Dream__V1__ColumnValues cv[NCOLS], *cvp[NCOLS];
        int64_t *v = malloc((size_t)n * 8);
        proto_response *r;

        CHECK(v != NULL);
        for (uint32_t j = 0; j < NCOLS; j++) {
                dream__v1__column_values__init(&cv[j]);
                cv[j].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
                for (uint32_t i = 0; i < n; i++)
                        v[i] = j == 0 ? (int64_t)i * 7 : (int64_t)(i % 3);
                CHECK(proto_values_new(v, n, &cv[j].values) == 0);
                cvp[j] = &cv[j];
        }
        cols.n_rows = n;
        cols.n_columns = NCOLS;
        cols.columns = cvp;
        in.dataset = (char *)name;
        in.rows = &cols;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_INGEST;
        req.ingest = &in;
        r = tc_call(c, &req);
        for (uint32_t j = 0; j < NCOLS; j++)
                dm_free(cv[j].values.data);
        free(v);
        return r;
}

/* GET path over a socket: the status code; the body into body. */
static int http_get(uint16_t port, const char *path, char *body, size_t cap)
{
        static char buf[1 << 18];
        struct sockaddr_in a;
        char req[256];
        size_t n = 0;
        int fd, status = 0;
        char *p;

        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
        CHECK(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
        for (;;) {
                ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                n += (size_t)r;
                CHECK(n < sizeof(buf) - 1);
        }
        buf[n] = '\0';
        close(fd);
        CHECK(sscanf(buf, "HTTP/1.%*d %d", &status) == 1);
        p = strstr(buf, "\r\n\r\n");
        CHECK(p != NULL);
        if (status == 200)
                CHECK(strstr(buf, "Content-Type: text/plain; version=0.0.4") != NULL);
        snprintf(body, cap, "%s", p + 4);
        return status;
}

/* Prometheus text exposition format 0.0.4, as dreamd writes it: every family
 * "# HELP name ..." then "# TYPE name counter|gauge", once; samples
 * "name[{label="value",...}] number" of the family just declared. */
static void check_exposition(const char *text)
{
        char fam[128] = "", seen[8192] = " ";
        const char *line = text;
        bool helped = false, histogram = false;

        CHECK(text[0] != '\0');
        CHECK(text[strlen(text) - 1] == '\n');
        while (*line) {
                const char *nl = strchr(line, '\n');
                char l[1024], name[128], type[32];
                size_t len = (size_t)(nl - line);

                CHECK(nl != NULL && len < sizeof(l));
                memcpy(l, line, len);
                l[len] = '\0';
                line = nl + 1;
                if (sscanf(l, "# HELP %127s", name) == 1) {
                        char key[140];
                        CHECK(strncmp(name, "dreamd_", 7) == 0 ||
                              strncmp(name, "process_", 8) == 0);
                        CHECK(strlen(l) > strlen("# HELP ") + strlen(name) + 1);
                        snprintf(key, sizeof(key), " %s ", name);
                        CHECK(strstr(seen, key) == NULL); /* each family once */
                        CHECK(strlen(seen) + strlen(key) < sizeof(seen));
                        strcat(seen, key + 1);
                        snprintf(fam, sizeof(fam), "%s", name);
                        helped = true;
                        continue;
                }
                if (sscanf(l, "# TYPE %127s %31s", name, type) == 2) {
                        CHECK(helped && strcmp(name, fam) == 0);
                        CHECK(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                              strcmp(type, "histogram") == 0);
                        histogram = strcmp(type, "histogram") == 0;
                        helped = false;
                        continue;
                }
                CHECK(l[0] != '#');
                {
                        size_t nlen = strcspn(l, "{ ");
                        const char *v = l + nlen;
                        char *end;

                        CHECK(fam[0] && !helped);
                        /* A histogram's samples: name_bucket, name_sum, name_count. */
                        CHECK(strncmp(l, fam, strlen(fam)) == 0);
                        CHECK(nlen == strlen(fam) ||
                              (histogram &&
                               (strncmp(l + strlen(fam), "_bucket", nlen - strlen(fam)) == 0 ||
                                strncmp(l + strlen(fam), "_sum", nlen - strlen(fam)) == 0 ||
                                strncmp(l + strlen(fam), "_count", nlen - strlen(fam)) == 0)));
                        if (*v == '{') {
                                /* label="value"(,label="value")* */
                                v++;
                                while (*v != '}') {
                                        CHECK((*v >= 'a' && *v <= 'z') || *v == '_');
                                        while ((*v >= 'a' && *v <= 'z') || *v == '_')
                                                v++;
                                        CHECK(v[0] == '=' && v[1] == '"');
                                        v += 2;
                                        while (*v && *v != '"')
                                                v += v[0] == '\\' && v[1] ? 2 : 1;
                                        CHECK(*v == '"');
                                        v++;
                                        if (*v == ',')
                                                v++;
                                }
                                v++;
                        }
                        CHECK(*v == ' ');
                        strtod(v + 1, &end);
                        CHECK(end != v + 1 && *end == '\0');
                }
        }
}

/* The value of the sample "name" (with its labels), -1 when absent. */
static double sample(const char *text, const char *name)
{
        char key[256];
        const char *p = text;

        snprintf(key, sizeof(key), "\n%s ", name);
        if (strncmp(text, key + 1, strlen(key + 1)) == 0)
                return strtod(text + strlen(key + 1), NULL);
        p = strstr(text, key);
        return p ? strtod(p + strlen(key), NULL) : -1;
}

static void test_metrics(void)
{
        static char body[1 << 18];
        char dir[] = "/tmp/dreamd-ops-XXXXXX", data[128], pf[128], cmd[512];
        const char *extra[8], *exe = getenv("DREAMD");
        struct tdaemon d;
        unsigned mport = 0;
        struct tc c;
        proto_response *r;
        char *line;
        uint64_t t_created;
        int n = 0;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(data, sizeof(data), "%s/data", dir);
        snprintf(pf, sizeof(pf), "%s/port", dir);

        /* Not on a non-loopback address: refused at start (exit 2). */
        snprintf(cmd, sizeof(cmd),
                 "'%s' --data-dir '%s' --listen 127.0.0.1:0 --metrics-listen 0.0.0.0:0 "
                 "2>/dev/null >/dev/null",
                 exe, data);
        {
                int st = system(cmd);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        }

        extra[n++] = "--metrics-listen";
        extra[n++] = "127.0.0.1:0";
        extra[n++] = "--port-file";
        extra[n++] = pf;
        extra[n] = NULL;
        td_start(&d, data, extra);
        line = strstr(read_file(pf), "metrics on http://127.0.0.1:");
        CHECK(line != NULL);
        CHECK(sscanf(line, "metrics on http://127.0.0.1:%u/metrics", &mport) == 1);

        CHECK(http_get((uint16_t)mport, "/metrics", body, sizeof(body)) == 200);
        check_exposition(body);
        CHECK(sample(body, "dreamd_rows_ingested_total") == 0);
        CHECK(sample(body, "dreamd_ingest_commits_total") == 0);
        CHECK(sample(body, "dreamd_requests_total{type=\"ingest\"}") == -1);
        CHECK(http_get((uint16_t)mport, "/nope", body, sizeof(body)) == 404);

        tc_connect(&c, d.port);
        t_created = (uint64_t)time(NULL);
        r = create_ds(&c, "m1", 2);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_OK);
        proto_response_free(r);
        /* DescribeDataset carries the creation time. */
        r = tc_describe(&c, "m1", 7);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_OK);
        CHECK(r->describe_dataset->created_unix >= t_created &&
              r->describe_dataset->created_unix <= (uint64_t)time(NULL));
        proto_response_free(r);
        r = ingest(&c, "m1", 3, 100);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_OK && r->ingest->committed);
        proto_response_free(r);
        r = ingest(&c, "nope", 4, 10);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_NOT_FOUND);
        proto_response_free(r);

        CHECK(http_get((uint16_t)mport, "/metrics", body, sizeof(body)) == 200);
        check_exposition(body);
        CHECK(sample(body, "dreamd_rows_ingested_total") == 100);
        CHECK(sample(body, "dreamd_ingest_commits_total") == 1);
        CHECK(sample(body, "dreamd_requests_total{type=\"ingest\"}") == 2);
        CHECK(sample(body, "dreamd_request_errors_total{type=\"ingest\"}") == 1);
        CHECK(sample(body, "dreamd_requests_total{type=\"create_dataset\"}") == 1);
        CHECK(sample(body, "dreamd_request_errors_total{type=\"create_dataset\"}") == 0);
        CHECK(sample(body, "dreamd_received_bytes_total") > 0);
        CHECK(sample(body, "dreamd_connections_total") == 1);
        /* The dataset gauges come from a snapshot refreshed every 2 s. */
        for (int i = 0; i < 100 && sample(body, "dreamd_dataset_rows{dataset=\"m1\"}") != 100;
             i++) {
                msleep(100);
                CHECK(http_get((uint16_t)mport, "/metrics", body, sizeof(body)) == 200);
        }
        check_exposition(body);
        CHECK(sample(body, "dreamd_dataset_rows{dataset=\"m1\"}") == 100);
        CHECK(sample(body, "dreamd_dataset_stored_bytes{dataset=\"m1\"}") > 0);
        CHECK(sample(body, "dreamd_datasets") == 1);
        CHECK(sample(body, "dreamd_store_map_bytes") > 0);
        CHECK(sample(body, "dreamd_store_map_used_bytes") > 0);
        CHECK(sample(body, "dreamd_store_map_max_bytes") >= sample(body, "dreamd_store_map_bytes"));
        CHECK(sample(body, "dreamd_connections_open") == 1);
        CHECK(sample(body, "dreamd_jobs{state=\"running\"}") == 0);
        CHECK(sample(body, "dreamd_jobs{state=\"queued\"}") == 0);
        CHECK(sample(body, "dreamd_jobs_finished_total{state=\"done\"}") == 0);
        CHECK(sample(body, "dreamd_train_seconds_total") == 0);
        /* Request latency histograms, the build and the process. */
        CHECK(sample(body, "dreamd_request_duration_seconds_count{type=\"ingest\"}") == 2);
        CHECK(sample(body, "dreamd_request_duration_seconds_bucket{type=\"ingest\",le=\"+Inf\"}") ==
              2);
        CHECK(sample(body, "dreamd_request_duration_seconds_bucket{type=\"ingest\",le=\"10\"}") <=
              2);
        CHECK(sample(body, "dreamd_request_duration_seconds_sum{type=\"ingest\"}") > 0);
        CHECK(sample(body, "dreamd_request_duration_seconds_count{type=\"create_dataset\"}") == 1);
        CHECK(strstr(body, "\ndreamd_build_info{version=\"") != NULL);
        CHECK(sample(body, "process_cpu_seconds_total") >= 0);
        CHECK(sample(body, "process_resident_memory_bytes") > 0);
        CHECK(sample(body, "process_virtual_memory_bytes") > 0);
        CHECK(sample(body, "process_open_fds") > 2);
        CHECK(sample(body, "process_max_fds") > 0);
        CHECK(sample(body, "process_start_time_seconds") > 1.6e9);
        CHECK(sample(body, "dreamd_seals_total") == 0);

        /* A flush that seals rows counts as a seal. */
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Flush fl = DREAM__V1__FLUSH__INIT;

                fl.dataset = "m1";
                req.request_id = 6;
                req.body_case = DREAM__V1__REQUEST__BODY_FLUSH;
                req.flush = &fl;
                r = tc_call(&c, &req);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_OK && r->flush->rows_sealed == 100);
                proto_response_free(r);
        }
        CHECK(http_get((uint16_t)mport, "/metrics", body, sizeof(body)) == 200);
        CHECK(sample(body, "dreamd_seals_total") == 1);

        /* The same counters over RPC. */
        r = stats(&c, 5);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_OK);
        CHECK(r->stats->ingest_commits == 1);
        CHECK(r->stats->seals_total == 1);
        CHECK(r->stats->ingest_ack_p50_seconds > 0);
        CHECK(r->stats->ingest_ack_p99_seconds >= r->stats->ingest_ack_p50_seconds);
        CHECK(r->stats->datasets == 1);
        CHECK(r->stats->n_dataset_stats == 1);
        CHECK(strcmp(r->stats->dataset_stats[0]->name, "m1") == 0);
        CHECK(r->stats->dataset_stats[0]->rows == 100);
        CHECK(r->stats->dataset_stats[0]->stored_bytes > 0);
        CHECK(r->stats->store_used_bytes > 0);
        CHECK(r->stats->store_map_max_bytes >= r->stats->store_map_bytes);
        {
                bool seen = false;
                for (size_t i = 0; i < r->stats->n_requests_by_type; i++) {
                        const Dream__V1__RequestTypeStats *t = r->stats->requests_by_type[i];
                        if (strcmp(t->type, "ingest") == 0) {
                                CHECK(t->requests == 2 && t->errors == 1);
                                seen = true;
                        }
                }
                CHECK(seen);
        }
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_rmtree(dir);
        puts("metrics: /metrics is valid exposition text, counters move after an ingest, "
             "Stats carries the same: ok");
}

/* ---- cli ------------------------------------------------------------------------ */

/* Runs dreamd with args (shell words, quoted by the caller); its stdout and
 * stderr go to out. The exit status. */
static int run_dreamd(const char *args, const char *out)
{
        char cmd[2048];
        int st;

        snprintf(cmd, sizeof(cmd), "'%s' %s >'%s' 2>&1", getenv("DREAMD"), args, out);
        st = system(cmd);
        CHECK(st != -1 && WIFEXITED(st));
        return WEXITSTATUS(st);
}

static void test_cli(void)
{
        char dir[256], conf[320], out[320], args[1024];
        const char *text;

        snprintf(dir, sizeof(dir), "/tmp/dream-ops-cli-XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
        snprintf(conf, sizeof(conf), "%s/dreamd.conf", dir);
        snprintf(out, sizeof(out), "%s/out", dir);

        CHECK(run_dreamd("--version", out) == 0);
        CHECK(strncmp(read_file(out), "dreamd ", 7) == 0);

        /* Four errors, each reported with its line; the store is not opened
         * (data_dir does not exist). */
        write_file(conf, "# dreamd.conf\n"
                         "max_frme = 65536\n"
                         "workers = 0\n"
                         "listen = 127.0.0.1:0\n"
                         "no equals sign here\n"
                         "idle_timeout = soon\n"
                         "data_dir = /nonexistent/dream-ops-cli\n");
        snprintf(args, sizeof(args), "--check-config --config '%s'", conf);
        CHECK(run_dreamd(args, out) == 2);
        text = read_file(out);
        CHECK(strstr(text, "dreamd.conf:2: unknown key 'max_frme' (did you mean 'max_frame'?)"));
        CHECK(strstr(text, "dreamd.conf:3: workers: bad value '0'"));
        CHECK(strstr(text, "dreamd.conf:5: expected 'key = value'"));
        CHECK(strstr(text, "dreamd.conf:6: idle_timeout: bad value 'soon'"));
        CHECK(strstr(text, "4 errors"));
        CHECK(access("/nonexistent/dream-ops-cli", F_OK) != 0);

        /* stderr is the journal (JOURNAL_STREAM names its device:inode):
         * each line starts with its syslog priority. */
        {
                struct stat st;
                char js[64];

                write_file(out, "");
                CHECK(stat(out, &st) == 0);
                snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
                         (unsigned long long)st.st_ino);
                setenv("JOURNAL_STREAM", js, 1);
                CHECK(run_dreamd(args, out) == 2);
                unsetenv("JOURNAL_STREAM");
                text = read_file(out);
                CHECK(strncmp(text, "<3>error: ", 10) == 0);
                CHECK(strstr(text, "\n<3>error: ") != NULL);
        }
        /* --log-format json: one JSON object per line. */
        snprintf(args, sizeof(args), "--check --log-format json --data-dir '%s'", dir);
        CHECK(run_dreamd(args, out) == 2);
        text = read_file(out);
        CHECK(strncmp(text, "{\"time\":\"", 9) == 0);
        CHECK(strstr(text, "\",\"level\":\"error\",\"message\":\"check: no store in "));
        snprintf(args, sizeof(args), "--check-config --config '%s'", conf);

        /* A good file: 0, and still no store made. */
        write_file(conf, "max_frame = 65536\ndata_dir = /nonexistent/dream-ops-cli\n");
        CHECK(run_dreamd(args, out) == 0);
        CHECK(strstr(read_file(out), "ok"));
        CHECK(access("/nonexistent/dream-ops-cli", F_OK) != 0);

        td_rmtree(dir);
        puts("cli: --version, --check-config reports every error with its line: ok");
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: test_ops reload|metrics|cli\n");
                return 2;
        }
        if (strcmp(argv[1], "reload") == 0)
                test_reload();
        else if (strcmp(argv[1], "metrics") == 0)
                test_metrics();
        else if (strcmp(argv[1], "cli") == 0)
                test_cli();
        else
                return 2;
        return 0;
}
