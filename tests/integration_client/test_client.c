/* Integration tests of libdream and of the dream CLI's network commands
 * against a real dreamd (DREAMD in the environment; the CLI in DREAM),
 * started on 127.0.0.1 port 0 with a temporary data directory.
 *
 * Usage: test_client GROUP, GROUP one of: library, batches, cli, errors,
 * auth, resend. Each group starts its own daemon and stops it with SIGTERM,
 * expecting exit status 0. Failures abort with the line of the check. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dream/client.h"
#include "proto/dream.pb-c.h"

#include "harness.h"

/* ---- group: library ------------------------------------------------------------------ */

#define LIB_ROWS 5000u

static int64_t f64_bits(double x)
{
        int64_t b;
        memcpy(&b, &x, sizeof(b));
        return b;
}

struct lib_data {
        int64_t id[LIB_ROWS], dec[LIB_ROWS], f[LIB_ROWS], label[LIB_ROWS];
};

static void lib_fill(struct lib_data *x)
{
        for (uint32_t i = 0; i < LIB_ROWS; i++) {
                x->id[i] = i;
                x->dec[i] = (int64_t)(i * 37 % 2001) - 1000; /* -10.00..10.00, scale 2 */
                x->f[i] = f64_bits(i % 97 == 0 ? NAN : 1.0 / (i + 1));
                x->label[i] = i % 3;
        }
}

static void lib_rows(const struct lib_data *x, uint32_t first, uint32_t n, struct dream_values v[4],
                     struct dream_rows *r)
{
        v[0] = (struct dream_values){DREAM_KIND_INT, 0, x->id + first};
        v[1] = (struct dream_values){DREAM_KIND_DECIMAL, 2, x->dec + first};
        v[2] = (struct dream_values){DREAM_KIND_F64, 0, x->f + first};
        v[3] = (struct dream_values){DREAM_KIND_INT, 0, x->label + first};
        *r = (struct dream_rows){n, 4, v};
}

struct export_check {
        const struct lib_data *x;
        uint64_t next;
};

static int export_cb(void *arg, uint64_t first_row, const struct dream_rows *rows)
{
        struct export_check *e = arg;

        CHECK(first_row == e->next);
        CHECK(rows->n_cols == 4);
        for (uint32_t i = 0; i < rows->n_rows; i++) {
                uint64_t k = first_row + i;
                double dv;

                CHECK(rows->cols[0].v[i] == e->x->id[k]);
                /* The server may hold decimals at another scale: compare values. */
                dv = rows->cols[1].kind == DREAM_KIND_DECIMAL
                         ? (double)rows->cols[1].v[i] / pow(10, rows->cols[1].scale)
                         : (double)rows->cols[1].v[i];
                CHECK(fabs(dv - (double)e->x->dec[k] / 100) < 1e-9);
                CHECK(rows->cols[2].kind == DREAM_KIND_F64);
                CHECK(rows->cols[2].v[i] == e->x->f[k]);
                CHECK(rows->cols[3].v[i] == e->x->label[k]);
        }
        e->next += rows->n_rows;
        return 0;
}

static int raw_cb(void *arg, const void *resp, size_t len, int more)
{
        Dream__V1__Response *r = dream__v1__response__unpack(NULL, len, resp);
        CHECK(r != NULL);
        CHECK(!more);
        CHECK(r->body_case == DREAM__V1__RESPONSE__BODY_SERVER_INFO);
        CHECK(r->server_info->protocol_version == 1);
        *(int *)arg = 1;
        dream__v1__response__free_unpacked(r, NULL);
        return 0;
}

/* The schema of the "lib" dataset (and of the batches test's "b"). */
static const struct dream_column lib_cols[4] = {{"id", DREAM_KIND_INT, 0},
                                                {"dec", DREAM_KIND_DECIMAL, 2},
                                                {"f", DREAM_KIND_F64, 0},
                                                {"label", DREAM_KIND_INT, 0}};
static const struct dream_schema lib_schema = {.size = sizeof(struct dream_schema),
                                               .cols = lib_cols,
                                               .n_cols = 4,
                                               .target = "label",
                                               .task = DREAM_TASK_CLASSIFICATION,
                                               .class_count = 3};

static void group_library(void)
{
        static struct lib_data x;
        struct daemon d;
        struct dream_client *c;
        struct dream_values v[4];
        struct dream_rows rows;
        struct dream_ingest_ack ack = DREAM_INIT(struct dream_ingest_ack);
        struct dream_dataset_info *info;
        struct dream_dataset_list *list;
        struct dream_flush_result fr = DREAM_INIT(struct dream_flush_result);
        struct export_check ec = {&x, 0};
        uint64_t ids[5], got;
        int seen = 0;

        lib_fill(&x);
        daemon_start(&d, NULL);
        c = client(&d, NULL);
        CHECK_OK(c, dream_dataset_create(c, "lib", &lib_schema));
        CHECK(dream_dataset_create(c, "lib", &lib_schema) == DREAM_E_EXISTS);
        CHECK(strstr(dream_last_error(c), "lib") != NULL);

        /* Five blocks of 1000 rows, one at a time, each acknowledged in
         * order (pipelining is tested below on several datasets). */
        for (uint32_t b = 0; b < 5; b++) {
                lib_rows(&x, b * 1000, 1000, v, &rows);
                CHECK_OK(c, dream_ingest(c, "lib", 100 + b, &rows, &ack));
                CHECK(ack.first_row == b * 1000 && ack.rows == 1000 && !ack.duplicate);
                CHECK(ack.client_batch_id == 100 + b);
        }
        /* Idempotent re-send: same batch id, nothing stored again. */
        lib_rows(&x, 2000, 1000, v, &rows);
        CHECK_OK(c, dream_ingest(c, "lib", 102, &rows, &ack));
        CHECK(ack.duplicate && ack.first_row == 2000 && ack.rows == 1000);

        CHECK_OK(c, dream_dataset_describe(c, "lib", &info));
        CHECK(strcmp(info->name, "lib") == 0 && strcmp(info->target, "label") == 0);
        CHECK(info->rows == LIB_ROWS && info->columns == 4);
        CHECK(info->task == DREAM_TASK_CLASSIFICATION);
        CHECK(strcmp(info->schema[1].name, "dec") == 0);
        CHECK(info->schema[1].kind == DREAM_KIND_DECIMAL && info->schema[1].scale == 2);
        dream_dataset_info_free(info);

        /* Export: every value back, in order, before and after sealing. */
        CHECK_OK(c, dream_export(c, "lib", 0, 0, export_cb, &ec, &got));
        CHECK(got == LIB_ROWS && ec.next == LIB_ROWS);
        CHECK_OK(c, dream_flush(c, "lib", &fr));
        CHECK(fr.rows_sealed == LIB_ROWS);
        CHECK_OK(c, dream_dataset_describe(c, "lib", &info));
        CHECK(info->segments >= 1 && info->staged_rows == 0 && info->rows == LIB_ROWS);
        dream_dataset_info_free(info);
        ec.next = 1234;
        CHECK_OK(c, dream_export(c, "lib", 1234, 100, export_cb, &ec, &got));
        CHECK(got == 100 && ec.next == 1334);
        ec.next = 0;
        CHECK_OK(c, dream_export(c, "lib", 0, 0, export_cb, &ec, &got));
        CHECK(got == LIB_ROWS);

        /* Pipelining: five requests to five datasets in flight, their
         * acknowledgements collected in reverse order. */
        for (int k = 0; k < 5; k++) {
                char name[16];
                snprintf(name, sizeof(name), "p%d", k);
                CHECK_OK(c, dream_dataset_create(c, name, &lib_schema));
        }
        for (int k = 0; k < 5; k++) {
                char name[16];
                snprintf(name, sizeof(name), "p%d", k);
                lib_rows(&x, (uint32_t)k * 100, 100 + (uint32_t)k, v, &rows);
                CHECK_OK(c, dream_ingest_send(c, name, 7, &rows, &ids[k]));
        }
        for (int k = 4; k >= 0; k--) {
                CHECK_OK(c, dream_ingest_wait(c, ids[k], &ack));
                CHECK(ack.rows == 100u + (uint32_t)k && ack.first_row == 0 && !ack.duplicate);
        }
        CHECK(dream_ingest_wait(c, ids[0], &ack) == DREAM_E_INVAL); /* already collected */

        CHECK_OK(c, dream_dataset_list(c, &list));
        CHECK(list->n == 6 && strcmp(list->items[0].name, "lib") == 0);
        CHECK(list->items[0].rows == LIB_ROWS && list->items[1].rows == 100);
        dream_dataset_list_free(list);

        /* Errors with the server's message; the connection stays usable. */
        CHECK(dream_dataset_describe(c, "nope", &info) == DREAM_E_NOTFOUND);
        CHECK(strstr(dream_last_error(c), "nope") != NULL);
        lib_rows(&x, 0, 10, v, &rows);
        rows.n_cols = 3;
        CHECK(dream_ingest(c, "lib", 0, &rows, &ack) == DREAM_E_SCHEMA);
        CHECK(dream_ingest(c, "nope", 0, &rows, &ack) == DREAM_E_NOTFOUND);
        CHECK(dream_export(c, "lib", LIB_ROWS + 1, 0, export_cb, &ec, &got) == DREAM_E_RANGE);

        /* The generic call with a serialized request. */
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__ServerInfo si = DREAM__V1__SERVER_INFO__INIT;
                uint8_t buf[64];
                size_t n;

                req.request_id = 999; /* replaced by the library */
                req.body_case = DREAM__V1__REQUEST__BODY_SERVER_INFO;
                req.server_info = &si;
                n = dream__v1__request__pack(&req, buf);
                CHECK_OK(c, dream_call(c, buf, n, raw_cb, &seen));
                CHECK(seen == 1);
        }

        CHECK_OK(c, dream_dataset_drop(c, "p0"));
        CHECK(dream_dataset_drop(c, "p0") == DREAM_E_NOTFOUND);
        dream_close(c);

        /* The same daemon over its Unix socket. */
        CHECK(dream_connect(d.unix_addr, NULL, &c) == 0);
        CHECK_OK(c, dream_hello(c, NULL, NULL));
        CHECK_OK(c, dream_dataset_list(c, &list));
        CHECK(list->n == 5);
        dream_dataset_list_free(list);
        dream_close(c);
        daemon_stop(&d);
}

/* ---- group: batches ------------------------------------------------------------------ */

struct batch_seen {
        uint8_t *count; /* per row id */
        uint32_t n_rows;
        uint64_t rows, batches;
        uint8_t token[DREAM_RESUME_TOKEN_MAX];
        size_t token_len;
        uint64_t position;
};

static int batch_cb(void *arg, const struct dream_batch *b)
{
        struct batch_seen *s = arg;

        CHECK(b->d == 3 && b->targets != NULL && b->weights == NULL);
        for (uint32_t i = 0; i < b->n; i++) {
                float id = b->features[(size_t)i * b->d];
                CHECK(id >= 0 && id < (float)s->n_rows && id == floorf(id));
                s->count[(uint32_t)id]++;
                CHECK(b->targets[i] == (float)((uint32_t)id % 3));
        }
        s->rows += b->n;
        s->batches++;
        s->position = b->position;
        CHECK(b->resume_token_len > 0 && b->resume_token_len <= sizeof(s->token));
        memcpy(s->token, b->resume_token, b->resume_token_len);
        s->token_len = b->resume_token_len;
        return 0;
}

static int stop_cb(void *arg, const struct dream_batch *b)
{
        (void)arg;
        (void)b;
        return 5;
}

static int condensed_cb(void *arg, const struct dream_batch *b)
{
        (void)arg;
        CHECK(b->n > 0 && b->d == 3 && b->weights != NULL);
        for (uint32_t i = 0; i < b->n; i++)
                CHECK(b->weights[i] >= 1);
        return 0;
}

static void group_batches(void)
{
        static struct lib_data x;
        struct daemon d;
        struct dream_client *c;
        struct dream_values v[4];
        struct dream_rows rows;
        struct dream_batch_opts o = DREAM_INIT(struct dream_batch_opts);
        struct batch_seen s;
        uint8_t count[LIB_ROWS];

        lib_fill(&x);
        for (uint32_t i = 0; i < LIB_ROWS; i++)
                x.f[i] = f64_bits(0.5); /* finite features */
        daemon_start(&d, NULL);
        c = client(&d, NULL);
        CHECK_OK(c, dream_dataset_create(c, "b", &lib_schema));
        lib_rows(&x, 0, LIB_ROWS, v, &rows);
        CHECK_OK(c, dream_ingest(c, "b", 1, &rows, NULL));

        /* rows mode: every row exactly once per epoch, for two epochs. */
        for (uint32_t epoch = 0; epoch < 2; epoch++) {
                memset(count, 0, sizeof(count));
                memset(&s, 0, sizeof(s));
                s.count = count;
                s.n_rows = LIB_ROWS;
                dream_batch_opts_default(&o);
                o.mode = DREAM_BATCH_ROWS;
                o.batch_size = 64;
                o.seed = 42;
                o.epoch = epoch;
                CHECK_OK(c, dream_get_batches(c, "b", &o, batch_cb, &s));
                CHECK(s.rows == LIB_ROWS && s.batches == (LIB_ROWS + 63) / 64);
                for (uint32_t i = 0; i < LIB_ROWS; i++)
                        CHECK(count[i] == 1);
        }

        /* Resume: 10 batches, then the rest from the token, on a new
         * connection: no row repeated or skipped. */
        memset(count, 0, sizeof(count));
        memset(&s, 0, sizeof(s));
        s.count = count;
        s.n_rows = LIB_ROWS;
        dream_batch_opts_default(&o);
        o.mode = DREAM_BATCH_ROWS;
        o.batch_size = 100;
        o.seed = 7;
        o.max_batches = 10;
        CHECK_OK(c, dream_get_batches(c, "b", &o, batch_cb, &s));
        CHECK(s.rows == 1000 && s.position == 1000);
        dream_close(c);
        c = client(&d, NULL);
        {
                uint8_t token[DREAM_RESUME_TOKEN_MAX];
                size_t len = s.token_len;

                memcpy(token, s.token, len);
                dream_batch_opts_default(&o);
                o.mode = DREAM_BATCH_ROWS;
                o.batch_size = 100;
                o.resume_token = token;
                o.resume_token_len = len;
                CHECK_OK(c, dream_get_batches(c, "b", &o, batch_cb, &s));
        }
        CHECK(s.rows == LIB_ROWS);
        for (uint32_t i = 0; i < LIB_ROWS; i++)
                CHECK(count[i] == 1);

        /* A callback stopping the stream: its value comes back and the
         * connection stays usable. */
        dream_batch_opts_default(&o);
        o.mode = DREAM_BATCH_ROWS;
        o.batch_size = 10;
        CHECK(dream_get_batches(c, "b", &o, stop_cb, NULL) == 5);
        {
                struct dream_dataset_info *info;
                CHECK_OK(c, dream_dataset_describe(c, "b", &info));
                CHECK(info->rows == LIB_ROWS);
                dream_dataset_info_free(info);
        }
        /* condensed and sample modes. */
        o.mode = DREAM_BATCH_SAMPLE;
        o.budget_rows = 500;
        o.batch_size = 100;
        memset(&s, 0, sizeof(s));
        memset(count, 0, sizeof(count));
        s.count = count;
        s.n_rows = LIB_ROWS;
        CHECK_OK(c, dream_get_batches(c, "b", &o, batch_cb, &s));
        CHECK(s.rows == 500);
        for (uint32_t i = 0; i < LIB_ROWS; i++)
                CHECK(count[i] <= 1);
        o.mode = DREAM_BATCH_CONDENSED;
        o.budget_rows = 0;
        o.budget_fraction = 0.05;
        CHECK_OK(c, dream_get_batches(c, "b", &o, condensed_cb, &s));
        dream_close(c);
        dream_close(NULL);
        daemon_stop(&d);
}

/* ---- group: cli --------------------------------------------------------------------- */

static void write_csv(const char *path, uint32_t n, int variant)
{
        FILE *f = fopen(path, "w");

        CHECK(f != NULL);
        fprintf(f, variant ? "id,x,y\n" : "id,price,ratio,big,label\n");
        for (uint32_t i = 0; i < n; i++) {
                if (variant)
                        fprintf(f, "%u,%u,%u\n", i, i * 2, i * 3);
                else
                        fprintf(f, "%u,%d.%02u,%g,%lld,%u\n", i, (int)(i % 1000) - 500,
                                (i * 7) % 100, 1.0 / (i + 3), (long long)i * 1000003ll - 7, i % 4);
        }
        CHECK(fclose(f) == 0);
}

static void group_cli(void)
{
        static char out[1 << 16], err[1 << 12];
        struct daemon d;
        char in[160], exp[160], bat[160];
        int rc;

        daemon_start(&d, NULL);
        snprintf(in, sizeof(in), "%s/in.csv", d.td.dir);
        snprintf(exp, sizeof(exp), "%s/exp.csv", d.td.dir);
        snprintf(bat, sizeof(bat), "%s/bat.csv", d.td.dir);
        write_csv(in, 20000, 0);

        /* 7 requests pipelined 8 deep: the export below must keep file order. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "ds", in,
                     "--rows-per-request", "3000", "--window", "8", NULL);
        if (rc)
                fprintf(stderr, "%s", err);
        CHECK(rc == 0 && strstr(out, "ingested 20000 rows") != NULL);
        /* Appending the same file again (new batch ids: rows are added). */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "--json", "ingest", "ds2", in, NULL);
        CHECK(rc == 0 && strstr(out, "\"rows\":20000") && strstr(out, "\"created\":true"));
        /* The same input again into the same dataset, without --resume: its
         * first request is known there, so it goes under new batch ids. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "ds2", in, NULL);
        CHECK(rc == 0 && strstr(out, "ingested 20000 rows into dataset 'ds2'"));
        CHECK(strstr(out, "iB/s)\n") || strstr(out, " bytes/s)\n")); /* 1024-based rate */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "info", "ds2", "--json", NULL);
        CHECK(rc == 0 && strstr(out, "\"rows\":40000"));
        /* Sizes in text: 1024-based, or exact with --bytes. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "info", "ds2", NULL);
        CHECK(rc == 0 && strstr(out, " KiB\n"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "--bytes", "info", "ds2", NULL);
        CHECK(rc == 0 && strstr(out, " bytes\n") && !strstr(out, "iB\n"));

        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "info", "ds", "--json", NULL);
        CHECK(rc == 0);
        {
                static const char *const keys[] = {
                    "\"dataset\":\"ds\"", "\"task\":\"classification\"",
                    "\"rows\":20000",     "\"columns\":5",
                    "\"segments\":",      "\"staged_rows\":",
                    "\"stored_bytes\":",  "\"csv_bytes\":",
                    "\"bases\":",         "\"ratio\":",
                };
                for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                        CHECK(strstr(out, keys[i]) != NULL);
        }
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "export", "ds", "-f", "-o", exp, NULL);
        CHECK(rc == 0);
        csv_same_numbers(in, exp);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "flush", "ds", NULL);
        CHECK(rc == 0 && strstr(out, "20000 rows sealed"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "export", "ds", "-f", "-o", exp, NULL);
        CHECK(rc == 0);
        csv_same_numbers(in, exp);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "export", "ds", "--rows", "5:8", NULL);
        CHECK(rc == 0 && strncmp(out, "id,price,ratio,big,label\n5,", 27) == 0);
        CHECK(strstr(out, "\n7,") && !strstr(out, "\n8,"));

        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ls", "--json", NULL);
        CHECK(rc == 0 && strstr(out, "\"dataset\":\"ds\"") && strstr(out, "\"dataset\":\"ds2\""));

        /* batch, full mode (also spelt rows): every row once. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "batch", "ds", "--size", "333",
                     "--mode", "full", "--seed", "5", "-f", "-o", bat, "--json", NULL);
        CHECK(rc == 0 && strstr(out, "\"rows\":20000") && strstr(out, "\"mode\":\"full\""));
        {
                char *b = slurp(bat, NULL), *p = strchr(b, '\n');
                static uint8_t seen[20000];
                uint32_t lines = 0;

                CHECK(p && strncmp(b, "id,price,ratio,big,target\n", 26) == 0);
                for (p++; *p; lines++) {
                        long id = strtol(p, &p, 10);
                        CHECK(id >= 0 && id < 20000 && seen[id] == 0);
                        seen[id] = 1;
                        p = strchr(p, '\n');
                        CHECK(p);
                        p++;
                }
                CHECK(lines == 20000);
                free(b);
        }
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "batch", "ds", "--size", "10",
                     "--mode", "condensed", "--budget", "1%", NULL);
        CHECK(rc == 0 && strstr(out, ",weight\n"));

        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "drop", "ds2", "--json", NULL);
        CHECK(rc == 0 && strcmp(out, "{\"dataset\":\"ds2\",\"dropped\":true}\n") == 0);
        daemon_stop(&d);
}

/* ---- group: errors (distinct exit codes) --------------------------------------------- */

static void group_errors(void)
{
        static char out[1 << 12], err[1 << 12];
        struct daemon d;
        struct sockaddr_in a;
        socklen_t alen = sizeof(a);
        char in[160], other[160], addr[64];
        int rc, fd;

        daemon_start(&d, NULL);
        snprintf(in, sizeof(in), "%s/in.csv", d.td.dir);
        snprintf(other, sizeof(other), "%s/other.csv", d.td.dir);
        write_csv(in, 100, 0);
        write_csv(other, 100, 1);

        /* Unreachable: a port nobody listens on. */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
        close(fd);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "-s", addr, "ls", NULL);
        CHECK(rc == 5 && strstr(err, "cannot connect") && strchr(err, '\n') == strrchr(err, '\n'));
        {
                struct dream_client *c = NULL;
                CHECK(dream_connect(addr, NULL, &c) == -ECONNREFUSED && c == NULL);
                CHECK(dream_connect("unix:/nonexistent/dreamd.sock", NULL, &c) == -ENOENT);
                CHECK(dream_connect("bad address", NULL, &c) == DREAM_E_INVAL);
        }
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "-s", "not an address", "ls", NULL);
        CHECK(rc == 1);

        /* Unknown dataset. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "info", "nope", NULL);
        CHECK(rc == 7 && strstr(err, "nope"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "export", "nope", NULL);
        CHECK(rc == 7);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "drop", "nope", NULL);
        CHECK(rc == 7);

        /* Schema mismatch: another table into an existing dataset. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "ds", in, NULL);
        CHECK(rc == 0);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "ds", other, NULL);
        CHECK(rc == 8 && strstr(err, "schema") && strchr(err, '\n') == strrchr(err, '\n'));
        /* Bad input and usage. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "ds", "/nonexistent.csv",
                     NULL);
        CHECK(rc == 2);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "batch", "ds", NULL);
        CHECK(rc == 1);
        daemon_stop(&d);
}

/* ---- group: resend: the daemon killed in the middle of an ingest ------------------- */

static void group_resend(void)
{
        static char out[1 << 12], err[1 << 12];
        struct daemon d;
        struct dream_client *c;
        struct dream_dataset_info *info = NULL;
        char in[160], exp[160];
        uint64_t rows = 0;
        int rc, killed = 0;
        pid_t cli;

        daemon_start(&d, NULL);
        snprintf(in, sizeof(in), "%s/in.csv", d.td.dir);
        snprintf(exp, sizeof(exp), "%s/exp.csv", d.td.dir);
        write_csv(in, 200000, 0);
        cli = run_cli_async(&d, "ingest", "rs", in, "--rows-per-request", "500", NULL);
        /* Wait until some rows, not all, are committed; then SIGKILL the
         * daemon (no drain) and start it again on the same port. */
        c = client(&d, NULL);
        for (int i = 0; i < 20000; i++) {
                int r = dream_dataset_describe(c, "rs", &info);
                CHECK(r == 0 || r == DREAM_E_NOTFOUND);
                rows = r == 0 ? info->rows : 0;
                dream_dataset_info_free(info);
                info = NULL;
                if (rows > 0)
                        break;
                usleep(1000);
        }
        dream_close(c);
        if (rows > 0 && rows < 200000) {
                td_kill(&d.td);
                daemon_spawn(&d, d.td.addr, 0, NULL);
                killed = 1;
        }
        rc = cli_wait(&d, cli, out, sizeof(out), err, sizeof(err));
        if (rc != 0)
                fprintf(stderr, "%s", err);
        CHECK(rc == 0 && strstr(out, "ingested 200000 rows"));
        if (killed)
                CHECK(strstr(err, "reconnecting") != NULL);
        else
                fprintf(stderr, "note: the ingest finished before the daemon could be killed\n");
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "export", "rs", "-f", "-o", exp, NULL);
        CHECK(rc == 0);
        csv_same_numbers(in, exp);
        daemon_stop(&d);
}

/* ---- group: full: a store that fills up, then --resume ------------------------------- */

/* n rows of random 64-bit-ish integers (EntroGeDe cannot shrink them much). */
static void write_random_csv(const char *path, uint32_t n)
{
        FILE *f = fopen(path, "w");
        uint64_t x = 12345;

        CHECK(f != NULL);
        fprintf(f, "id,a,b,c,label\n");
        for (uint32_t i = 0; i < n; i++) {
                uint64_t v[3];
                for (int k = 0; k < 3; k++) {
                        x = x * 6364136223846793005ull + 1442695040888963407ull;
                        v[k] = x >> 20;
                }
                fprintf(f, "%u,%llu,%llu,%llu,%u\n", i, (unsigned long long)v[0],
                        (unsigned long long)v[1], (unsigned long long)v[2], i % 4);
        }
        CHECK(fclose(f) == 0);
}

static int line_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of a file, sorted (header included); *ret_n lines. */
static char **sorted_lines(const char *path, char **ret_buf, size_t *ret_n)
{
        char *b = slurp(path, NULL), **v = NULL;
        size_t n = 0, cap = 0;

        for (char *p = b, *e; *p; p = e + 1) {
                e = strchr(p, '\n');
                CHECK(e != NULL);
                *e = '\0';
                if (n == cap) {
                        cap = cap ? 2 * cap : 1024;
                        v = realloc(v, cap * sizeof(*v));
                        CHECK(v != NULL);
                }
                v[n++] = p;
        }
        qsort(v, n, sizeof(*v), line_cmp);
        *ret_buf = b;
        *ret_n = n;
        return v;
}

/* The export holds exactly the input's rows, each once (in any order: a
 * request that failed while later ones in flight were committed is appended
 * after them by --resume). */
static void same_rows(const char *in, const char *exp)
{
        char *ba, *bb, **a, **b;
        size_t na, nb;

        a = sorted_lines(in, &ba, &na);
        b = sorted_lines(exp, &bb, &nb);
        if (na != nb)
                fprintf(stderr, "export has %zu lines, input %zu\n", nb, na);
        CHECK(na == nb);
        for (size_t i = 0; i < na; i++) {
                if (strcmp(a[i], b[i]) != 0)
                        fprintf(stderr, "differ: '%s' vs '%s'\n", a[i], b[i]);
                CHECK(strcmp(a[i], b[i]) == 0);
        }
        free(a);
        free(b);
        free(ba);
        free(bb);
}

static void group_full(void)
{
        static char out[1 << 12], err[1 << 12];
        static const char *const small[] = {"--map-size-max", "2097152", NULL};
        static const char *const big[] = {"--map-size-max", "16777216", NULL};
        struct daemon d;
        char in[160], exp[160];
        unsigned long long n = 0;
        const char *p;
        int rc;

        memset(&d, 0, sizeof(d));
        td_mkdir(&d.td, "/tmp/dream-client-test");
        daemon_spawn_args(&d, "127.0.0.1:0", 0, NULL, small);
        snprintf(in, sizeof(in), "%s/in.csv", d.td.dir);
        snprintf(exp, sizeof(exp), "%s/exp.csv", d.td.dir);
        write_random_csv(in, 100000); /* about 3.4 MB of values: more than the map */

        /* Full: its own exit code, what to do, and how many rows are in. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "ds", in,
                     "--rows-per-request", "1000", NULL);
        if (rc != 12)
                fprintf(stderr, "ingest into a full store: exit %d: %s", rc, err);
        CHECK(rc == 12);
        CHECK(strstr(err, "the store is full (dataset 'ds')") != NULL);
        CHECK(strstr(err, "retryable once space is freed") != NULL);
        p = strstr(err, "\ndream: ");
        CHECK(p && sscanf(p, "\ndream: %llu rows of", &n) == 1);
        CHECK(strstr(p, "were committed to dataset 'ds'; run the same command with --resume to "
                        "continue\n") != NULL);
        CHECK(n > 0 && n < 100000);

        /* A new dataset whose first request is refused is not left behind;
         * one that holds rows is kept when --resume fails again. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "ds2", in,
                     "--rows-per-request", "20000", NULL);
        CHECK(rc == 12 && strstr(err, "removed the empty dataset 'ds2' this command created"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "info", "ds2", NULL);
        CHECK(rc == 7);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "ds", in,
                     "--rows-per-request", "1000", "--resume", NULL);
        CHECK(rc == 12 && strstr(err, "--resume to continue") && !strstr(err, "removed"));

        /* A bigger map: --resume appends the rest, each row once. */
        daemon_halt(&d);
        daemon_spawn_args(&d, d.td.addr, 0, NULL, big);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "--json", "ingest", "ds", in,
                     "--rows-per-request", "1000", "--resume", NULL);
        if (rc != 0)
                fprintf(stderr, "resume: exit %d: %s", rc, err);
        CHECK(rc == 0 && strstr(out, "\"rows\":100000") && strstr(out, "\"resumed\":true"));
        {
                unsigned long long appended = 0, skipped = 0;
                p = strstr(out, "\"appended_rows\":");
                CHECK(p && sscanf(p, "\"appended_rows\":%llu,\"skipped_rows\":%llu", &appended,
                                  &skipped) == 2);
                /* The committed requests but the last 32 (and block 0) were
                 * not sent again. */
                CHECK(appended <= 100000 - n && appended > 0);
                CHECK(skipped > 0 && skipped <= n);
        }
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "export", "ds", "-f", "-o", exp, NULL);
        CHECK(rc == 0);
        same_rows(in, exp);
        /* Once more: nothing left to append. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "--json", "ingest", "ds", in,
                     "--rows-per-request", "1000", "--resume", NULL);
        CHECK(rc == 0 && strstr(out, "\"rows\":100000") && strstr(out, "\"appended_rows\":0,"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "export", "ds", "-f", "-o", exp, NULL);
        CHECK(rc == 0);
        same_rows(in, exp);
        daemon_stop(&d);
}

/* ---- group: usability: what the CLI says when users trip ----------------------------- */

/* Exit code rc and, when want is not NULL, want in the text. */
#define CHECK_CLI(rc_, want_code, text, want)                                                      \
        do {                                                                                       \
                if ((rc_) != (want_code) || ((want) && !strstr((text), (want)))) {                 \
                        fprintf(stderr, "exit %d, want %d; output: %s\n", (rc_), (want_code),      \
                                (text));                                                           \
                        CHECK(0);                                                                  \
                }                                                                                  \
        } while (0)

static void group_usability(void)
{
        static char out[1 << 14], err[1 << 12];
        struct daemon d;
        char in[160];
        FILE *f;
        int rc;

        daemon_start(&d, NULL);
        snprintf(in, sizeof(in), "%s/t.csv", d.td.dir);
        f = fopen(in, "w");
        CHECK(f != NULL);
        fprintf(f, "x,y,target\n");
        for (int i = 0; i < 50; i++)
                fprintf(f, "%d,%d,%d\n", i, i * 3, i % 2);
        CHECK(fclose(f) == 0);

        /* 1: no column named 'label': ingest says there is no target... */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "nt", in, NULL);
        CHECK_CLI(rc, 0, out, "no target column");
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "nt2", in, "--json", NULL);
        CHECK_CLI(rc, 0, out, "\"target\":null,\"task\":\"none\"");
        /* ...and a --label that disagrees with the dataset is refused. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "nt", in, "--label",
                     "target", NULL);
        CHECK_CLI(rc, 8, err, "--label 'target' does not match dataset 'nt', whose target is none");
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "wt", in, "--label",
                     "target", NULL);
        CHECK_CLI(rc, 0, out, "target 'target', task classification");
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "wt", in, "--label", "y",
                     NULL);
        CHECK_CLI(rc, 8, err, "whose target is 'target'");
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "wt", in, "--label",
                     "target", "--task", "regression", NULL);
        CHECK_CLI(rc, 8, err, "--task regression does not match");
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "wt", in, "--label",
                     "target", NULL);
        CHECK_CLI(rc, 0, out, "target 'target', task classification");

        /* 3: an unknown host is not "No route to host"... */
        {
                struct dream_client *c = NULL;
                /* (an empty label: refused by the resolver without a query) */
                CHECK(dream_connect("nosuch..invalid:7878", NULL, &c) == DREAM_E_NOTFOUND);
        }
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "-s", "nosuch..invalid:7878", "ls",
                     NULL);
        CHECK_CLI(rc, 5, err, "unknown host 'nosuch..invalid'");
        /* ...another service on the port is not "a frame of 1397966893 bytes"... */
        {
                struct sockaddr_in a;
                socklen_t alen = sizeof(a);
                char addr[64];
                int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd;
                pid_t pid;

                memset(&a, 0, sizeof(a));
                a.sin_family = AF_INET;
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
                CHECK(listen(lfd, 1) == 0 && getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
                snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
                pid = run_cli_async(&d, "-s", addr, "ls", NULL);
                cfd = accept(lfd, NULL, NULL);
                CHECK(cfd >= 0);
                CHECK(write(cfd, "SSH-2.0-OpenSSH_9.6\r\n", 21) == 21);
                rc = cli_wait(&d, pid, out, sizeof(out), err, sizeof(err));
                close(cfd);
                close(lfd);
                CHECK_CLI(rc, 5, err, "is not a dreamd server");
        }
        /* ...and the server's messages carry no wire field path. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "info", "nosuch", NULL);
        CHECK_CLI(rc, 7, err, "dream: no dataset 'nosuch'\n");
        CHECK(strchr(err, '.') == NULL);
        /* USABILITY_MORE */
        daemon_stop(&d);
}

/* ---- group: auth ----------------------------------------------------------------------- */

static void group_auth(void)
{
        static char out[1 << 12], err[1 << 12];
        struct daemon d;
        char tok[160], bad[160], path[64];
        struct dream_client *c;
        struct dream_connect_opts o = DREAM_INIT(struct dream_connect_opts);
        struct dream_hello_info hi = DREAM_INIT(struct dream_hello_info);
        struct dream_dataset_list *l;
        FILE *f;
        int rc;

        snprintf(path, sizeof(path), "/tmp/dream-client-tok-XXXXXX");
        CHECK(mkdtemp(path) != NULL);
        snprintf(tok, sizeof(tok), "%s/token", path);
        snprintf(bad, sizeof(bad), "%s/bad", path);
        f = fopen(tok, "w");
        CHECK(f && fputs("s3cret-token-0123456789\n", f) >= 0 && fclose(f) == 0);
        f = fopen(bad, "w");
        CHECK(f && fputs("wrong\n", f) >= 0 && fclose(f) == 0);
        daemon_start(&d, tok);

        dream_connect_opts_default(&o);
        CHECK(dream_connect(d.td.addr, &o, &c) == 0);
        CHECK(dream_dataset_list(c, &l) == DREAM_E_AUTH); /* before hello */
        CHECK(dream_hello(c, "wrong", &hi) == DREAM_E_AUTH);
        CHECK(strstr(dream_last_error(c), "token") != NULL);
        dream_close(c);
        CHECK(dream_connect(d.td.addr, &o, &c) == 0);
        CHECK_OK(c, dream_hello(c, "s3cret-token-0123456789", &hi));
        CHECK(hi.auth_required && hi.authenticated && hi.protocol_version == 1);
        CHECK_OK(c, dream_dataset_list(c, &l));
        dream_dataset_list_free(l);
        dream_close(c);

        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ls", NULL);
        CHECK(rc == 6 && strstr(err, "authentication"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ls", "--token-file", bad, NULL);
        CHECK(rc == 6);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "--token-file", tok, "ls", NULL);
        CHECK(rc == 0);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ls", "--token-file",
                     "/nonexistent-token", NULL);
        CHECK(rc == 2);
        /* $DREAM_TOKEN_FILE beside $DREAM_ADDR; --token-file wins over it. */
        CHECK(setenv("DREAM_TOKEN_FILE", tok, 1) == 0);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ls", NULL);
        CHECK(rc == 0);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ls", "--token-file", bad, NULL);
        CHECK(rc == 6);
        CHECK(setenv("DREAM_TOKEN_FILE", bad, 1) == 0);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ls", NULL);
        CHECK(rc == 6);
        CHECK(unsetenv("DREAM_TOKEN_FILE") == 0);
        daemon_stop(&d);
        unlink(tok);
        unlink(bad);
        rmdir(path);
}

int main(int argc, char **argv)
{
        signal(SIGPIPE, SIG_IGN);
        if (argc != 2) {
                fprintf(
                    stderr,
                    "usage: test_client library|batches|cli|errors|auth|resend|full|usability\n");
                return 2;
        }
        if (strcmp(argv[1], "library") == 0)
                group_library();
        else if (strcmp(argv[1], "batches") == 0)
                group_batches();
        else if (strcmp(argv[1], "cli") == 0)
                group_cli();
        else if (strcmp(argv[1], "errors") == 0)
                group_errors();
        else if (strcmp(argv[1], "auth") == 0)
                group_auth();
        else if (strcmp(argv[1], "resend") == 0)
                group_resend();
        else if (strcmp(argv[1], "full") == 0)
                group_full();
        else if (strcmp(argv[1], "usability") == 0)
                group_usability();
        else
                return 2;
        return 0;
}
