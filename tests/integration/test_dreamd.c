/* Integration tests: a real dreamd on 127.0.0.1, port 0, temp data dir.
 * Usage: test_dreamd GROUP (basic, batches, batch_cache, seal_drain, auth, hostile, limits,
 * drain, unix, backup, backup_paths, check);
 * DREAMD in the environment is the daemon's path. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "tclient.h"

#define OK DREAM__V1__STATUS__STATUS_OK

static void msleep(int ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* ---- dataset helpers ------------------------------------------------------ */

/* Test dataset: id (INT, the row number), price (DECIMAL scale 2), x (F64),
 * label (INT, target, classification). */
#define NCOLS 4

static int64_t cell(uint64_t row, uint32_t col)
{
        switch (col) {
        case 0:
                return (int64_t)row;
        case 1:
                return (int64_t)(row * 37 % 100000) - 5000; /* cents */
        case 2: {
                double d = (double)row * 0.1 - 3.25;
                int64_t bits;
                if (row % 97 == 5)
                        d = -0.0;
                if (row % 89 == 7)
                        d = 1e300;
                memcpy(&bits, &d, 8);
                return bits;
        }
        default:
                return (int64_t)(row % 3);
        }
}

static Dream__V1__Response *create_ds(struct tc *c, const char *name, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__CreateDataset cd = DREAM__V1__CREATE_DATASET__INIT;
        Dream__V1__ColumnSpec specs[NCOLS], *sp[NCOLS];
        const char *names[NCOLS] = {"id", "price", "x", "label"};
        Dream__V1__ColumnKind kinds[NCOLS] = {
            DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT, DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL,
            DREAM__V1__COLUMN_KIND__COLUMN_KIND_F64, DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT};

        for (int i = 0; i < NCOLS; i++) {
                dream__v1__column_spec__init(&specs[i]);
                specs[i].name = (char *)names[i];
                specs[i].kind = kinds[i];
                specs[i].scale = i == 1 ? 2 : 0;
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

/* Build and send an Ingest of rows [first, first + n). */
static void send_ingest(struct tc *c, const char *name, uint64_t id, uint64_t batch_id,
                        uint64_t first, uint32_t n, uint32_t ncols)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Ingest in = DREAM__V1__INGEST__INIT;
        Dream__V1__Columns cols = DREAM__V1__COLUMNS__INIT;
        Dream__V1__ColumnValues cv[8], *cvp[8];
        int64_t *v = malloc((size_t)n * 8);

        CHECK(v && ncols <= 8);
        for (uint32_t j = 0; j < ncols; j++) {
                dream__v1__column_values__init(&cv[j]);
                cv[j].kind = j == 1   ? DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL
                             : j == 2 ? DREAM__V1__COLUMN_KIND__COLUMN_KIND_F64
                                      : DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
                cv[j].scale = j == 1 ? 2 : 0;
                for (uint32_t i = 0; i < n; i++)
                        v[i] = cell(first + i, j % NCOLS);
                CHECK(proto_values_new(v, n, &cv[j].values) == 0);
                cvp[j] = &cv[j];
        }
        cols.n_rows = n;
        cols.n_columns = ncols;
        cols.columns = cvp;
        in.dataset = (char *)name;
        in.client_batch_id = batch_id;
        in.rows = &cols;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_INGEST;
        req.ingest = &in;
        CHECK(tc_send(c, &req) == 0);
        for (uint32_t j = 0; j < ncols; j++)
                dm_free(cv[j].values.data);
        free(v);
}

static uint64_t rows_of(struct tc *c, const char *name)
{
        proto_response *r = tc_describe(c, name, 4242);
        uint64_t rows;

        CHECK(r->code == OK);
        rows = r->describe_dataset->rows;
        proto_response_free(r);
        return rows;
}

/* Poll DescribeDataset until `name` has at least `segments` sealed segments
 * (20 s at most); its staged rows then. */
static uint64_t wait_segments(struct tc *c, const char *name, uint32_t segments)
{
        for (int i = 0; i < 2000; i++) {
                proto_response *r = tc_describe(c, name, 4243);
                uint32_t have;
                uint64_t staged;

                CHECK(r->code == OK);
                have = r->describe_dataset->segments;
                staged = r->describe_dataset->staged_rows;
                proto_response_free(r);
                if (have >= segments)
                        return staged;
                msleep(10);
        }
        fprintf(stderr, "%s: fewer than %u segments after 20 s\n", name, segments);
        abort();
}

/* Export everything and check every cell against cell() of the row's id
 * (column 0): pipelined batches commit in any order, so row numbers follow
 * commits, not sends. Returns the ids in row order (malloc'd). */
static uint64_t *export_check(struct tc *c, const char *name, uint64_t expect_rows, uint32_t chunk)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Export ex = DREAM__V1__EXPORT__INIT;
        uint64_t next = 0, *ids = calloc(expect_rows + 1, sizeof(uint64_t));
        uint8_t *seen = calloc(expect_rows + 1, 1);
        bool more = true;
        int chunks = 0;

        ex.dataset = (char *)name;
        ex.chunk_rows = chunk;
        req.request_id = 77;
        req.body_case = DREAM__V1__REQUEST__BODY_EXPORT;
        req.export = &ex;
        CHECK(tc_send(c, &req) == 0);
        while (more) {
                proto_response *r = NULL;
                CHECK(tc_recv(c, &r, 20000) == 1);
                CHECK(r->request_id == 77);
                if (r->code != OK)
                        fprintf(stderr, "export: %s\n", r->message);
                CHECK(r->code == OK);
                CHECK(r->body_case == DREAM__V1__RESPONSE__BODY_EXPORT);
                more = r->more;
                if (r->export->rows) {
                        const Dream__V1__Columns *cols = r->export->rows;
                        int64_t *v[NCOLS];
                        CHECK(r->export->first_row == next);
                        CHECK(cols->n_columns == NCOLS);
                        CHECK(chunk == 0 || cols->n_rows <= chunk);
                        CHECK(next + cols->n_rows <= expect_rows);
                        for (uint32_t j = 0; j < NCOLS; j++) {
                                v[j] = malloc((size_t)cols->n_rows * 8);
                                CHECK(proto_values_read(&cols->columns[j]->values, cols->n_rows,
                                                        v[j]) == 0);
                        }
                        CHECK(cols->columns[0]->kind == DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT);
                        for (uint32_t i = 0; i < cols->n_rows; i++) {
                                uint64_t id = (uint64_t)v[0][i];
                                CHECK(id < expect_rows && !seen[id]);
                                seen[id] = 1;
                                ids[next + i] = id;
                                for (uint32_t j = 1; j < NCOLS; j++) {
                                        const Dream__V1__ColumnValues *cv = cols->columns[j];
                                        int64_t want = cell(id, j);
                                        if (cv->kind == DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL)
                                                for (uint32_t s = 2; s < cv->scale; s++)
                                                        want *= 10;
                                        if (v[j][i] != want) {
                                                fprintf(stderr,
                                                        "row %llu (id %llu) col %u: got %lld want "
                                                        "%lld (kind %d scale %u)\n",
                                                        (unsigned long long)(next + i),
                                                        (unsigned long long)id, j,
                                                        (long long)v[j][i], (long long)want,
                                                        (int)cv->kind, cv->scale);
                                                abort();
                                        }
                                }
                        }
                        for (uint32_t j = 0; j < NCOLS; j++)
                                free(v[j]);
                        next += cols->n_rows;
                }
                chunks++;
                proto_response_free(r);
        }
        CHECK(next == expect_rows);
        if (chunk)
                CHECK(chunks >= (int)(expect_rows / chunk));
        free(seen);
        return ids;
}

/* ---- basic: create, ingest (pipelined), describe, export, idempotency ----- */

static void test_basic(void)
{
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        bool seen[8] = {false};
        uint64_t first_row[4] = {0};
        const char *ds = "sensors";

        td_start(&d, NULL, (const char *const[]){"--seal-rows", "1500", NULL});
        tc_connect(&c, d.port);
        tc_hello(&c, NULL, OK);

        r = create_ds(&c, ds, 2);
        CHECK(r->code == OK);
        CHECK(strcmp(r->create_dataset->name, ds) == 0);
        proto_response_free(r);
        r = create_ds(&c, ds, 3);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_EXISTS);
        proto_response_free(r);

        /* Pipelined: 4 batches in flight, acks matched by id. */
        for (int b = 0; b < 4; b++)
                send_ingest(&c, ds, 100 + (uint64_t)b, 1 + (uint64_t)b, (uint64_t)b * 1000, 1000,
                            NCOLS);
        for (int b = 0; b < 4; b++) {
                r = NULL;
                CHECK(tc_recv(&c, &r, 20000) == 1);
                CHECK(r->code == OK);
                CHECK(r->request_id >= 100 && r->request_id < 104);
                CHECK(!seen[r->request_id - 100]);
                seen[r->request_id - 100] = true;
                CHECK(r->ingest->committed);
                CHECK(!r->ingest->duplicate);
                CHECK(r->ingest->rows == 1000);
                first_row[r->request_id - 100] = r->ingest->first_row;
                proto_response_free(r);
        }
        CHECK(rows_of(&c, ds) == 4000);

        /* Batch 2 again: not stored twice. */
        send_ingest(&c, ds, 200, 2, 1000, 1000, NCOLS);
        CHECK(tc_recv(&c, &r, 20000) == 1);
        CHECK(r->code == OK && r->request_id == 200);
        CHECK(r->ingest->duplicate);
        CHECK(r->ingest->client_batch_id == 2);
        CHECK(r->ingest->first_row == first_row[1]);
        proto_response_free(r);
        CHECK(rows_of(&c, ds) == 4000);

        /* Schema mismatch: 3 columns for a 4-column dataset. */
        send_ingest(&c, ds, 201, 0, 4000, 10, 3);
        CHECK(tc_recv(&c, &r, 20000) == 1);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_SCHEMA);
        CHECK(strstr(r->message, "ingest.rows") != NULL);
        proto_response_free(r);
        /* Unknown dataset. */
        send_ingest(&c, "nope", 202, 0, 0, 10, NCOLS);
        CHECK(tc_recv(&c, &r, 20000) == 1);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_NOT_FOUND);
        CHECK(strstr(r->message, "nope") != NULL);
        proto_response_free(r);

        {
                /* Each batch's rows sit where its acknowledgement said. */
                uint64_t *ids = export_check(&c, ds, 4000, 700);
                for (int b = 0; b < 4; b++)
                        for (int i = 0; i < 1000; i++)
                                CHECK(ids[first_row[b] + (uint64_t)i] ==
                                      (uint64_t)b * 1000 + (uint64_t)i);
                free(ids);
        }
        free(export_check(&c, ds, 4000, 0));

        /* Flush: everything sealed, export still identical. */
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Flush fl = DREAM__V1__FLUSH__INIT;
                fl.dataset = (char *)ds;
                req.request_id = 300;
                req.body_case = DREAM__V1__REQUEST__BODY_FLUSH;
                req.flush = &fl;
                r = tc_call(&c, &req);
                CHECK(r->code == OK);
                proto_response_free(r);
                r = tc_describe(&c, ds, 301);
                CHECK(r->code == OK);
                CHECK(r->describe_dataset->staged_rows == 0);
                CHECK(r->describe_dataset->segments >= 1);
                CHECK(r->describe_dataset->n_schema == NCOLS);
                CHECK(strcmp(r->describe_dataset->target, "label") == 0);
                proto_response_free(r);
        }
        free(export_check(&c, ds, 4000, 999));

        /* List, drop, describe unknown. */
        r = create_ds(&c, "other", 400);
        CHECK(r->code == OK);
        proto_response_free(r);
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__ListDatasets ld = DREAM__V1__LIST_DATASETS__INIT;
                req.request_id = 401;
                req.body_case = DREAM__V1__REQUEST__BODY_LIST_DATASETS;
                req.list_datasets = &ld;
                r = tc_call(&c, &req);
                CHECK(r->code == OK);
                CHECK(r->list_datasets->n_datasets == 2);
                CHECK(strcmp(r->list_datasets->datasets[0]->name, "other") == 0);
                CHECK(r->list_datasets->datasets[1]->rows == 4000);
                proto_response_free(r);
        }
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__DropDataset dr = DREAM__V1__DROP_DATASET__INIT;
                dr.name = "other";
                req.request_id = 402;
                req.body_case = DREAM__V1__REQUEST__BODY_DROP_DATASET;
                req.drop_dataset = &dr;
                r = tc_call(&c, &req);
                CHECK(r->code == OK);
                proto_response_free(r);
        }
        r = tc_describe(&c, "other", 403);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_NOT_FOUND);
        CHECK(strstr(r->message, "'other'") != NULL);
        proto_response_free(r);

        /* A training job is accepted (tests/integration/test_jobs.c has the rest). */
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Train tr = DREAM__V1__TRAIN__INIT;
                tr.dataset = (char *)ds;
                tr.model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR;
                req.request_id = 404;
                req.body_case = DREAM__V1__REQUEST__BODY_TRAIN;
                req.train = &tr;
                tr.test_dataset = "";
                r = tc_call(&c, &req);
                CHECK(r->code == OK && r->body_case == DREAM__V1__RESPONSE__BODY_TRAIN);
                CHECK(r->train->job_id > 0);
                proto_response_free(r);
        }
        /* Stats and server info. */
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Stats st = DREAM__V1__STATS__INIT;
                req.request_id = 405;
                req.body_case = DREAM__V1__REQUEST__BODY_STATS;
                req.stats = &st;
                r = tc_call(&c, &req);
                CHECK(r->code == OK);
                CHECK(r->stats->rows_ingested == 4000);
                CHECK(r->stats->datasets == 1);
                proto_response_free(r);
        }
        tc_close(&c);
        /* Restart on the same data: everything is still there. */
        CHECK(td_stop(&d) == 0);
        {
                struct tdaemon d2;
                td_start(&d2, d.data_dir, NULL);
                tc_connect(&c, d2.port);
                CHECK(rows_of(&c, ds) == 4000);
                free(export_check(&c, ds, 4000, 1234));
                tc_close(&c);
                CHECK(td_stop(&d2) == 0);
        }
        td_cleanup(&d);
}

/* ---- batches ---------------------------------------------------------------- */

struct stream {
        uint64_t *ids; /* row ids (feature 0) in order */
        size_t n;
        double wsum;
        uint8_t token[256];
        size_t token_len;
        int batches;
};

static void get_batches(struct tc *c, Dream__V1__GetBatches *gb, struct stream *out)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        bool more = true;

        req.request_id = 900;
        req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
        req.get_batches = gb;
        CHECK(tc_send(c, &req) == 0);
        while (more) {
                proto_response *r = NULL;
                Dream__V1__Batch *b;
                CHECK(tc_recv(c, &r, 20000) == 1);
                CHECK(r->request_id == 900);
                if (r->code != OK)
                        fprintf(stderr, "get_batches: %s\n", r->message);
                CHECK(r->code == OK);
                b = r->get_batches;
                CHECK(b->d == NCOLS - 1);
                out->ids = realloc(out->ids, (out->n + b->n + 1) * sizeof(uint64_t));
                for (uint32_t i = 0; i < b->n; i++) {
                        float f[NCOLS - 1], w = 1;
                        proto_f32_get(f, b->features.data + (size_t)i * (NCOLS - 1) * 4, NCOLS - 1);
                        if (b->weights.len)
                                proto_f32_get(&w, b->weights.data + (size_t)i * 4, 1);
                        out->ids[out->n++] = (uint64_t)llroundf(f[0]);
                        out->wsum += w;
                }
                CHECK(b->resume_token.len <= sizeof(out->token));
                memcpy(out->token, b->resume_token.data, b->resume_token.len);
                out->token_len = b->resume_token.len;
                out->batches++;
                more = r->more;
                proto_response_free(r);
        }
}

static void test_batches(void)
{
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        const char *ds = "rows";
        const uint64_t n = 2500;

        td_start(&d, NULL, (const char *const[]){"--seal-rows", "1000", NULL});
        tc_connect(&c, d.port);
        r = create_ds(&c, ds, 1);
        CHECK(r->code == OK);
        proto_response_free(r);
        for (uint64_t b = 0; b < 5; b++) {
                send_ingest(&c, ds, 10 + b, 0, b * 500, 500, NCOLS);
                CHECK(tc_recv(&c, &r, 20000) == 1);
                CHECK(r->code == OK);
                proto_response_free(r);
        }
        /* A background seal ran: reads mix segments and staging. */
        CHECK(wait_segments(&c, ds, 2) == 500);

        /* rows: every row exactly once per epoch, shuffled. */
        struct stream full = {0}, full2 = {0}, e1 = {0};
        Dream__V1__GetBatches gb = DREAM__V1__GET_BATCHES__INIT;
        gb.dataset = (char *)ds;
        gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        gb.batch_size = 64;
        gb.seed = 7;
        get_batches(&c, &gb, &full);
        CHECK(full.n == n);
        {
                uint8_t *seen = calloc(n, 1);
                size_t in_order = 0;
                for (size_t i = 0; i < n; i++) {
                        CHECK(full.ids[i] < n);
                        CHECK(!seen[full.ids[i]]);
                        seen[full.ids[i]] = 1;
                        in_order += full.ids[i] == i;
                }
                CHECK(in_order < n / 10); /* shuffled */
                free(seen);
        }
        /* Deterministic; another epoch is another order. */
        get_batches(&c, &gb, &full2);
        CHECK(memcmp(full.ids, full2.ids, n * sizeof(uint64_t)) == 0);
        gb.epoch = 1;
        get_batches(&c, &gb, &e1);
        CHECK(e1.n == n && memcmp(full.ids, e1.ids, n * sizeof(uint64_t)) != 0);
        gb.epoch = 0;

        /* Resume: 3 batches, then continue from the token. */
        {
                struct stream a = {0}, b2 = {0}, s3 = {0};
                Dream__V1__GetBatches gr = DREAM__V1__GET_BATCHES__INIT;
                gb.max_batches = 3;
                get_batches(&c, &gb, &a);
                CHECK(a.batches == 3 && a.n == 3 * 64);
                gb.max_batches = 0;
                gr.dataset = (char *)ds;
                gr.batch_size = 100; /* the batch size may change on resume */
                gr.resume_token.data = a.token;
                gr.resume_token.len = a.token_len;
                get_batches(&c, &gr, &b2);
                CHECK(a.n + b2.n == n);
                CHECK(memcmp(a.ids, full.ids, a.n * 8) == 0);
                CHECK(memcmp(b2.ids, full.ids + a.n, b2.n * 8) == 0);
                /* start = position does the same */
                gb.start = 1000;
                get_batches(&c, &gb, &s3);
                CHECK(s3.n == n - 1000 && memcmp(s3.ids, full.ids + 1000, s3.n * 8) == 0);
                gb.start = 0;
                free(a.ids);
                free(b2.ids);
                free(s3.ids);
        }
        /* A forged token is refused. */
        {
                struct stream x = {0};
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__GetBatches gr = DREAM__V1__GET_BATCHES__INIT;
                uint8_t bad[48] = {1};
                (void)x;
                gr.dataset = (char *)ds;
                gr.resume_token.data = bad;
                gr.resume_token.len = sizeof(bad);
                req.request_id = 901;
                req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
                req.get_batches = &gr;
                r = tc_call(&c, &req);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_INVALID);
                proto_response_free(r);
        }
        /* sample: at most the budget, distinct rows, weights 1. */
        {
                struct stream s = {0};
                Dream__V1__Budget bu = DREAM__V1__BUDGET__INIT;
                bu.kind_case = DREAM__V1__BUDGET__KIND_ROWS;
                bu.rows = 300;
                gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_SAMPLE;
                gb.budget = &bu;
                get_batches(&c, &gb, &s);
                CHECK(s.n == 300);
                CHECK(fabs(s.wsum - 300) < 1e-6);
                uint8_t *seen = calloc(n, 1);
                for (size_t i = 0; i < s.n; i++) {
                        CHECK(s.ids[i] < n && !seen[s.ids[i]]);
                        seen[s.ids[i]] = 1;
                }
                free(seen);
                free(s.ids);
        }
        /* condensed: at most the budget, weights sum to the row count. */
        {
                struct stream s = {0};
                Dream__V1__Budget bu = DREAM__V1__BUDGET__INIT;
                bu.kind_case = DREAM__V1__BUDGET__KIND_ROWS;
                bu.rows = 100;
                gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_CONDENSED;
                gb.budget = &bu;
                gb.batch_size = 32;
                get_batches(&c, &gb, &s);
                CHECK(s.n > 0 && s.n <= 100 + 3); /* per-class rounding */
                CHECK(fabs(s.wsum - (double)n) < 1.0);
                free(s.ids);
        }
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        /* The same data read row by row (no decoded copy): the same stream. */
        {
                struct tdaemon d2;
                struct stream rr = {0};
                td_start(&d2, d.data_dir, (const char *const[]){"--batch-cache-bytes", "0", NULL});
                tc_connect(&c, d2.port);
                gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
                gb.budget = NULL;
                gb.batch_size = 64;
                gb.epoch = 0;
                get_batches(&c, &gb, &rr);
                CHECK(rr.n == n && memcmp(rr.ids, full.ids, n * sizeof(uint64_t)) == 0);
                free(rr.ids);
                tc_close(&c);
                CHECK(td_stop(&d2) == 0);
        }
        free(full.ids);
        free(full2.ids);
        free(e1.ids);
        td_cleanup(&d);
}

/* ---- auth --------------------------------------------------------------------- */

static void test_auth(void)
{
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        char tokpath[300];
        FILE *f;

        char dir[] = "/tmp/dreamd-tok-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        snprintf(tokpath, sizeof(tokpath), "%s/tokens", dir);
        f = fopen(tokpath, "w");
        CHECK(f != NULL);
        fprintf(f, "# tokens\nfirst-token-aaaa\nadmin,read:second-token-bbbb\n");
        fclose(f);
        td_start(&d, NULL, (const char *const[]){"--token-file", tokpath, NULL});

        tc_connect(&c, d.port);
        r = tc_describe(&c, "x", 5);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_AUTH);
        proto_response_free(r);
        {
                /* Everything but hello waits for authentication (issue 7). */
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__ServerInfo si = DREAM__V1__SERVER_INFO__INIT;
                req.request_id = 6;
                req.body_case = DREAM__V1__REQUEST__BODY_SERVER_INFO;
                req.server_info = &si;
                r = tc_call(&c, &req);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_AUTH);
                proto_response_free(r);
        }
        tc_hello(&c, "first-token-aaab", DREAM__V1__STATUS__STATUS_AUTH);
        tc_hello(&c, "", DREAM__V1__STATUS__STATUS_AUTH);
        r = tc_describe(&c, "x", 7);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_AUTH);
        proto_response_free(r);
        tc_hello(&c, "first-token-aaaa", OK);
        r = tc_describe(&c, "x", 8);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_NOT_FOUND);
        proto_response_free(r);
        tc_close(&c);

        /* The role prefix is stripped; the token itself is accepted. */
        tc_connect(&c, d.port);
        tc_hello(&c, "second-token-bbbb", OK);
        r = create_ds(&c, "authed", 9);
        CHECK(r->code == OK);
        proto_response_free(r);
        tc_close(&c);

        /* Too many wrong tokens: the connection is closed. */
        tc_connect(&c, d.port);
        for (int i = 0; i < 3; i++)
                tc_hello(&c, "guess", DREAM__V1__STATUS__STATUS_AUTH);
        CHECK(tc_wait_closed(&c, 5000));
        tc_close(&c);

        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
        unlink(tokpath);
        rmdir(dir);
}

/* ---- hostile clients ------------------------------------------------------------ */

static void served(uint16_t port)
{
        struct tc c;

        tc_connect(&c, port);
        tc_hello(&c, NULL, OK);
        tc_close(&c);
}

/* served(), once the server has noticed a closed connection and has room
 * under its connection cap again (BUSY before that; 10 s at most). */
static void served_when_room(uint16_t port)
{
        for (int i = 0; i < 1000; i++) {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Hello h = DREAM__V1__HELLO__INIT;
                proto_response *r = NULL;
                struct tc c;
                int code;

                h.protocol_version = DREAM_PROTOCOL_VERSION;
                h.client_name = "integration-test";
                h.token = "";
                req.request_id = 1;
                req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
                req.hello = &h;
                tc_connect(&c, port);
                code = tc_send(&c, &req);
                CHECK(code == 0 || code == -EPIPE || code == -ECONNRESET);
                CHECK(tc_recv(&c, &r, 5000) == 1);
                code = (int)r->code;
                proto_response_free(r);
                tc_close(&c);
                if (code == OK)
                        return;
                CHECK(code == DREAM__V1__STATUS__STATUS_BUSY);
                msleep(10);
        }
        fprintf(stderr, "still BUSY after 10 s\n");
        abort();
}

static void expect_error_then_close(uint16_t port, const void *bytes, size_t n, int code)
{
        struct tc c;
        proto_response *r = NULL;

        tc_connect(&c, port);
        CHECK(tc_send_raw(&c, bytes, n) == 0);
        CHECK(tc_recv(&c, &r, 5000) == 1);
        CHECK((int)r->code == code);
        CHECK(r->request_id == 0);
        proto_response_free(r);
        CHECK(tc_wait_closed(&c, 5000));
        tc_close(&c);
}

static void test_hostile(void)
{
        struct tdaemon d;
        struct tc c;
        proto_response *r;

        td_start(&d, NULL,
                 (const char *const[]){"--max-frame", "65536", "--frame-timeout", "1",
                                       "--idle-timeout", "2", NULL});
        served(d.port);

        /* Oversize length (limit + 1, 2^31, 2^32 - 1), and length 0. */
        {
                const uint8_t big1[] = {0x00, 0x01, 0x00, 0x01};
                const uint8_t big2[] = {0x80, 0x00, 0x00, 0x00};
                const uint8_t big3[] = {0xff, 0xff, 0xff, 0xff};
                const uint8_t zero[] = {0, 0, 0, 0};
                expect_error_then_close(d.port, big1, 4, DREAM__V1__STATUS__STATUS_PROTOCOL);
                expect_error_then_close(d.port, big2, 4, DREAM__V1__STATUS__STATUS_PROTOCOL);
                expect_error_then_close(d.port, big3, 4, DREAM__V1__STATUS__STATUS_PROTOCOL);
                expect_error_then_close(d.port, zero, 4, DREAM__V1__STATUS__STATUS_PROTOCOL);
                served(d.port);
        }
        /* An HTTP request: its first 4 bytes read as a 1.2 GB length. */
        {
                const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
                expect_error_then_close(d.port, http, sizeof(http) - 1,
                                        DREAM__V1__STATUS__STATUS_PROTOCOL);
        }
        /* A frame of exactly the limit is read (and its oversized field
         * refused by validation, naming it); limit + 1 is not. */
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Hello h = DREAM__V1__HELLO__INIT;
                char *name = malloc(65536);
                size_t len = 65000;
                struct dm_buf b;

                memset(name, 'n', 65536);
                h.protocol_version = 1;
                h.client_name = name;
                req.request_id = 9;
                req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
                req.hello = &h;
                for (;; len++) {
                        name[len] = '\0';
                        if (dream__v1__request__get_packed_size(&req) >= 65536)
                                break;
                        name[len] = 'n';
                }
                CHECK(dream__v1__request__get_packed_size(&req) == 65536);
                dm_buf_init(&b);
                CHECK(frame_encode(&b, &req.base, 0) == 0);
                tc_connect(&c, d.port);
                CHECK(tc_send_raw(&c, b.data, b.len) == 0);
                CHECK(tc_recv(&c, &r, 5000) == 1);
                CHECK(r->request_id == 9 && r->code == DREAM__V1__STATUS__STATUS_LIMIT);
                CHECK(strstr(r->message, "client_name") != NULL);
                proto_response_free(r);
                tc_hello(&c, NULL, OK);
                tc_close(&c);
                /* one byte more */
                name[len] = 'n';
                name[len + 1] = '\0';
                dm_buf_release(&b);
                dm_buf_init(&b);
                CHECK(frame_encode(&b, &req.base, 0) == 0);
                CHECK(b.len == 4 + 65537);
                expect_error_then_close(d.port, b.data, b.len, DREAM__V1__STATUS__STATUS_PROTOCOL);
                dm_buf_release(&b);
                free(name);
                served(d.port);
        }
        /* Garbage inside a well-formed frame: an error, the connection lives. */
        {
                uint8_t g[4 + 12] = {0,    0,    0,    12,   0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
                tc_connect(&c, d.port);
                CHECK(tc_send_raw(&c, g, sizeof(g)) == 0);
                CHECK(tc_recv(&c, &r, 5000) == 1);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_PARSE);
                proto_response_free(r);
                tc_hello(&c, NULL, OK);
                tc_close(&c);
        }
        /* Empty body, and an unknown body field (field 99, varint). */
        {
                uint8_t e[] = {0, 0, 0, 2, 0x08, 0x2a};                   /* request_id 42 */
                uint8_t u[] = {0, 0, 0, 5, 0x08, 0x2b, 0x98, 0x06, 0x01}; /* id 43, field 99 */
                tc_connect(&c, d.port);
                CHECK(tc_send_raw(&c, e, sizeof(e)) == 0);
                CHECK(tc_recv(&c, &r, 5000) == 1);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_PROTOCOL && r->request_id == 42);
                CHECK(strstr(r->message, "body") != NULL);
                proto_response_free(r);
                CHECK(tc_send_raw(&c, u, sizeof(u)) == 0);
                CHECK(tc_recv(&c, &r, 5000) == 1);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_PROTOCOL && r->request_id == 43);
                proto_response_free(r);
                tc_hello(&c, NULL, OK);
                tc_close(&c);
        }
        /* Truncated frame, then the client goes away. */
        {
                uint8_t t[] = {0, 0, 0, 100, 1, 2, 3};
                tc_connect(&c, d.port);
                CHECK(tc_send_raw(&c, t, sizeof(t)) == 0);
                tc_close(&c);
                served(d.port);
        }
        /* A frame dribbled one byte at a time completes. */
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Hello h = DREAM__V1__HELLO__INIT;
                struct dm_buf b;
                h.protocol_version = 1;
                h.client_name = "dribbler-with-a-longer-name";
                req.request_id = 55;
                req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
                req.hello = &h;
                dm_buf_init(&b);
                CHECK(frame_encode(&b, &req.base, 0) == 0);
                tc_connect(&c, d.port);
                for (size_t i = 0; i < b.len; i++) {
                        CHECK(tc_send_raw(&c, b.data + i, 1) == 0);
                        msleep(10);
                }
                CHECK(tc_recv(&c, &r, 5000) == 1);
                CHECK(r->code == OK && r->request_id == 55);
                proto_response_free(r);
                dm_buf_release(&b);
                tc_close(&c);
        }
        /* A frame that is never finished: closed by the frame deadline (1 s). */
        {
                uint8_t t[] = {0, 0, 0, 50, 8};
                tc_connect(&c, d.port);
                CHECK(tc_send_raw(&c, t, sizeof(t)) == 0);
                CHECK(tc_recv(&c, &r, 5000) == 1);
                CHECK(r->code == DREAM__V1__STATUS__STATUS_TIMEOUT);
                proto_response_free(r);
                CHECK(tc_wait_closed(&c, 5000));
                tc_close(&c);
        }
        /* An idle connection is closed by the idle timeout (2 s). */
        {
                tc_connect(&c, d.port);
                tc_hello(&c, NULL, OK);
                CHECK(tc_wait_closed(&c, 6000));
                tc_close(&c);
        }
        served(d.port);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

/* ---- limits: slow reader, pipelining, connection cap ----------------------------- */

static void test_limits(void)
{
        struct tdaemon d;
        struct tc c, lazy, conns[4];
        proto_response *r;
        const char *ds = "big";
        long rss0, rss1;

        td_start(&d, NULL, (const char *const[]){"--max-connections", "4", NULL});
        tc_connect(&c, d.port);
        r = create_ds(&c, ds, 1);
        CHECK(r->code == OK);
        proto_response_free(r);
        for (uint64_t b = 0; b < 8; b++) {
                send_ingest(&c, ds, 10 + b, 0, b * 10000, 10000, NCOLS);
                CHECK(tc_recv(&c, &r, 20000) == 1);
                CHECK(r->code == OK);
                proto_response_free(r);
        }
        /* Pipelining: 150 requests in flight, each answered once, by id;
         * beyond the in-flight limit some may be BUSY. */
        {
                uint8_t seen[150] = {0};
                int busy = 0;
                for (uint64_t i = 0; i < 150; i++) {
                        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                        Dream__V1__DescribeDataset dd = DREAM__V1__DESCRIBE_DATASET__INIT;
                        dd.name = (char *)ds;
                        req.request_id = 1000 + i;
                        req.body_case = DREAM__V1__REQUEST__BODY_DESCRIBE_DATASET;
                        req.describe_dataset = &dd;
                        CHECK(tc_send(&c, &req) == 0);
                }
                for (int i = 0; i < 150; i++) {
                        CHECK(tc_recv(&c, &r, 20000) == 1);
                        CHECK(r->request_id >= 1000 && r->request_id < 1150);
                        CHECK(!seen[r->request_id - 1000]);
                        seen[r->request_id - 1000] = 1;
                        if (r->code == DREAM__V1__STATUS__STATUS_BUSY)
                                busy++;
                        else
                                CHECK(r->code == OK && r->describe_dataset->rows == 80000);
                        proto_response_free(r);
                }
                fprintf(stderr, "pipelining: %d of 150 busy\n", busy);
        }

        /* A client that never reads: 60 exports of 80000 rows (~2.6 MB each). */
        rss0 = td_rss_kb(&d);
        tc_connect(&lazy, d.port);
        for (uint64_t i = 0; i < 60; i++) {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Export ex = DREAM__V1__EXPORT__INIT;
                ex.dataset = (char *)ds;
                req.request_id = 5000 + i;
                req.body_case = DREAM__V1__REQUEST__BODY_EXPORT;
                req.export = &ex;
                CHECK(tc_send(&lazy, &req) == 0);
        }
        /* Until the daemon stops taking on more for it: its resident memory
         * grows by less than 1 MiB over half a second (10 s at most). */
        rss1 = td_rss_kb(&d);
        for (int i = 0, still = 0; i < 100 && still < 5; i++) {
                long now;
                msleep(100);
                now = td_rss_kb(&d);
                still = now - rss1 < 1024 ? still + 1 : 0;
                if (still == 0)
                        rss1 = now;
        }
        rss1 = td_rss_kb(&d);
        fprintf(stderr, "slow reader: rss %ld kB -> %ld kB\n", rss0, rss1);
        CHECK(rss1 - rss0 < 96 * 1024); /* the 150 MB asked for is not buffered */
        /* Others are still served meanwhile. */
        CHECK(rows_of(&c, ds) == 80000);
        served(d.port);
        tc_close(&lazy);
        served(d.port);

        /* Connection cap: c holds one, three more fit, the fifth is refused. */
        for (int i = 0; i < 3; i++) {
                tc_connect(&conns[i], d.port);
                tc_hello(&conns[i], NULL, OK);
        }
        tc_connect(&conns[3], d.port);
        CHECK(tc_recv(&conns[3], &r, 5000) == 1);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_BUSY);
        proto_response_free(r);
        CHECK(tc_wait_closed(&conns[3], 5000));
        tc_close(&conns[3]);
        tc_close(&conns[0]);
        served_when_room(d.port);
        for (int i = 1; i < 3; i++)
                tc_close(&conns[i]);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

/* ---- drain: SIGTERM with ingests in flight ------------------------------------------ */

static void test_drain(void)
{
        struct tdaemon d, d2;
        struct tc c;
        proto_response *r;
        const char *ds = "drain";
        uint64_t acked = 0;
        int rc;

        struct tc lazy, streamer;
        td_start(&d, NULL, (const char *const[]){"--frame-timeout", "2", NULL});
        tc_connect(&c, d.port);
        r = create_ds(&c, ds, 1);
        CHECK(r->code == OK);
        proto_response_free(r);
        /* Some data for streams that are running at SIGTERM. */
        for (uint64_t b = 0; b < 5; b++) {
                send_ingest(&c, ds, 10 + b, 1000 + b, 100000 + b * 20000, 20000, NCOLS);
                CHECK(tc_recv(&c, &r, 20000) == 1);
                CHECK(r->code == OK);
                acked += r->ingest->rows;
                proto_response_free(r);
        }
        /* A client that never reads, with exports queued. */
        tc_connect(&lazy, d.port);
        for (uint64_t i = 0; i < 20; i++) {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__Export ex = DREAM__V1__EXPORT__INIT;
                ex.dataset = (char *)ds;
                ex.chunk_rows = 1000;
                req.request_id = 500 + i;
                req.body_case = DREAM__V1__REQUEST__BODY_EXPORT;
                req.export = &ex;
                CHECK(tc_send(&lazy, &req) == 0);
        }
        /* A client streaming small batches. */
        tc_connect(&streamer, d.port);
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__GetBatches gb = DREAM__V1__GET_BATCHES__INIT;
                gb.dataset = (char *)ds;
                gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
                gb.batch_size = 1;
                req.request_id = 600;
                req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
                req.get_batches = &gb;
                CHECK(tc_send(&streamer, &req) == 0);
                CHECK(tc_recv(&streamer, &r, 20000) == 1);
                CHECK(r->code == OK && r->more);
                proto_response_free(r);
        }
        for (uint64_t b = 0; b < 40; b++)
                send_ingest(&c, ds, 100 + b, 1 + b, b * 2000, 2000, NCOLS);
        /* SIGTERM once the first acknowledgement is in: the others are in
         * flight, queued or unread. */
        r = NULL;
        CHECK(tc_recv(&c, &r, 20000) == 1);
        CHECK(r->code == OK);
        acked += r->ingest->rows;
        proto_response_free(r);
        kill(d.pid, SIGTERM);
        /* Every response that arrives is complete; then the server closes. */
        for (;;) {
                r = NULL;
                int got = tc_recv(&c, &r, 20000);
                CHECK(got != -ETIMEDOUT);
                if (got == 0)
                        break;
                if (r->code == OK)
                        acked += r->ingest->rows;
                else
                        fprintf(stderr, "drain: %s\n", r->message);
                proto_response_free(r);
        }
        tc_close(&c);
        /* The stream ends with an explicit status (or completes). */
        for (;;) {
                r = NULL;
                int got = tc_recv(&streamer, &r, 20000);
                CHECK(got == 1);
                CHECK(r->request_id == 600);
                if (!r->more) {
                        CHECK(r->code == OK || r->code == DREAM__V1__STATUS__STATUS_CANCELLED);
                        proto_response_free(r);
                        break;
                }
                proto_response_free(r);
        }
        CHECK(tc_wait_closed(&streamer, 20000));
        tc_close(&streamer);
        /* The non-reader does not hold the shutdown beyond its deadline. */
        rc = td_wait(&d);
        tc_close(&lazy);
        CHECK(rc == 0);
        fprintf(stderr, "drain: %llu rows acknowledged\n", (unsigned long long)acked);
        /* Restart: every acknowledged row is there. Requests the server had
         * not read when SIGTERM came are not stored (whole batches only); an
         * acknowledgement can still be lost in transit when the server
         * closes a socket holding unread requests (TCP reset), so stored >=
         * acknowledged, never less. */
        td_start(&d2, d.data_dir, NULL);
        tc_connect(&c, d2.port);
        {
                uint64_t stored = rows_of(&c, ds);
                fprintf(stderr, "drain: %llu rows stored\n", (unsigned long long)stored);
                CHECK(stored >= acked && stored % 2000 == 0 && stored <= 180000);
        }
        tc_close(&c);
        CHECK(td_stop(&d2) == 0);
        td_cleanup(&d);
}

/* ---- unix socket, port file, config file, SIGHUP ------------------------------------ */

static void test_unix(void)
{
        struct tdaemon d;
        struct tc c;
        char dir[] = "/tmp/dreamd-unix-XXXXXX", sock[128], portf[128], conf[128], line[256];
        char log[128];
        char tcp_line[64];
        FILE *f;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(sock, sizeof(sock), "%s/d.sock", dir);
        snprintf(portf, sizeof(portf), "%s/port", dir);
        snprintf(conf, sizeof(conf), "%s/dreamd.conf", dir);
        f = fopen(conf, "w");
        CHECK(f != NULL);
        fprintf(f, "# test config\nlog_level = info\nidle_timeout = 60\nworkers = 2\n");
        fclose(f);
        char listen_arg[160];
        snprintf(listen_arg, sizeof(listen_arg), "unix:%s", sock);
        snprintf(log, sizeof(log), "%s/dreamd.log", dir);
        CHECK(td_spawn(&d, NULL, NULL,
                       (const char *const[]){"--listen", listen_arg, "--port-file", portf,
                                             "--config", conf, NULL},
                       log) == 0);
        /* The port file lists both listeners. */
        f = fopen(portf, "r");
        CHECK(f != NULL);
        CHECK(fgets(line, sizeof(line), f) != NULL);
        snprintf(tcp_line, sizeof(tcp_line), "listening on 127.0.0.1:%u\n", d.port);
        CHECK(strcmp(line, tcp_line) == 0);
        CHECK(fgets(line, sizeof(line), f) != NULL);
        CHECK(strncmp(line, "listening on unix:", 18) == 0);
        fclose(f);

        tc_connect_unix(&c, sock);
        tc_hello(&c, NULL, OK);
        {
                proto_response *r = create_ds(&c, "viaunix", 2);
                CHECK(r->code == OK);
                proto_response_free(r);
        }
        tc_close(&c);
        /* SIGHUP: reload the log level from the file; the daemon lives on. */
        f = fopen(conf, "w");
        fprintf(f, "log_level = debug\n");
        fclose(f);
        kill(d.pid, SIGHUP);
        CHECK(td_log_has(log, "received SIGHUP: configuration reloaded", 10000));
        tc_connect(&c, d.port);
        CHECK(rows_of(&c, "viaunix") == 0);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        CHECK(access(sock, F_OK) != 0); /* the socket is removed at exit */
        /* A non-loopback address without a token file: refused at start. */
        {
                int st;
                pid_t pid = fork();
                CHECK(pid >= 0);
                if (pid == 0) {
                        execl(getenv("DREAMD"), "dreamd", "--listen", "0.0.0.0:0", "--data-dir",
                              d.data_dir, (char *)NULL);
                        _exit(127);
                }
                CHECK(waitpid(pid, &st, 0) == pid);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        }
        td_cleanup(&d);
        unlink(portf);
        unlink(conf);
        rmdir(dir);
}

/* ---- backup and check ------------------------------------------------------------ */

static proto_response *backup_call(struct tc *c, const char *path, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Backup b = DREAM__V1__BACKUP__INIT;

        b.path = (char *)path;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_BACKUP;
        req.backup = &b;
        return tc_call(c, &req);
}

static void flush_ds(struct tc *c, const char *name, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Flush fl = DREAM__V1__FLUSH__INIT;
        proto_response *r;

        fl.dataset = (char *)name;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_FLUSH;
        req.flush = &fl;
        r = tc_call(c, &req);
        CHECK(r->code == OK);
        proto_response_free(r);
}

#define LIVE_BATCH 500u

/* Child process: ingest batch k = rows [k * LIVE_BATCH, (k + 1) * LIVE_BATCH)
 * one at a time, and after each acknowledgement write k to fd. Runs until
 * killed (or the server goes away). */
static void __attribute__((noreturn)) ingest_forever(uint16_t port, const char *ds, int fd)
{
        struct tc c;

        tc_connect(&c, port);
        for (uint64_t k = 0;; k++) {
                proto_response *r = NULL;
                send_ingest(&c, ds, 1000 + k, k + 1, k * LIVE_BATCH, LIVE_BATCH, NCOLS);
                if (tc_recv(&c, &r, 20000) != 1)
                        _exit(3);
                if (r->code != OK) {
                        fprintf(stderr, "ingest batch %llu: %s\n", (unsigned long long)k,
                                r->message);
                        _exit(4);
                }
                proto_response_free(r);
                if (write(fd, &k, sizeof(k)) != (ssize_t)sizeof(k))
                        _exit(0);
        }
}

/* Acknowledgements the child reported so far (non-blocking); returns the
 * count of batches acknowledged (highest k + 1). */
static uint64_t drain_acks(int fd, uint64_t acked)
{
        uint64_t k;

        while (read(fd, &k, sizeof(k)) == (ssize_t)sizeof(k)) {
                CHECK(k == acked);
                acked = k + 1;
        }
        return acked;
}

/* Backup under concurrent ingest: every batch acknowledged before the backup
 * request was sent is in the copy, identical; the copy opens with a second
 * dreamd and passes dreamd --check. */
static void test_backup(void)
{
        const char *seal[] = {"--seal-rows", "3000", NULL};
        const char *ds = "live";
        struct tdaemon d, d2;
        struct tc c, c2;
        proto_response *r;
        char bdir[400], out[8192];
        uint64_t acked = 0, before, rows;
        int fds[2];
        pid_t child;

        td_start(&d, NULL, seal);
        tc_connect(&c, d.port);
        r = create_ds(&c, ds, 1);
        CHECK(r->code == OK);
        proto_response_free(r);

        CHECK(pipe2(fds, O_NONBLOCK) == 0);
        child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                close(fds[0]);
                ingest_forever(d.port, ds, fds[1]);
        }
        close(fds[1]);
        /* Let the ingest run (some batches sealed into segments) first. */
        for (int i = 0; i < 4000 && acked < 40; i++) {
                msleep(5);
                acked = drain_acks(fds[0], acked);
        }
        CHECK(acked >= 40);

        snprintf(bdir, sizeof(bdir), "%s/backup", d.dir);
        before = drain_acks(fds[0], acked);
        r = backup_call(&c, bdir, 2);
        if (r->code != OK)
                fprintf(stderr, "backup: %s\n", r->message);
        CHECK(r->code == OK);
        CHECK(r->body_case == DREAM__V1__RESPONSE__BODY_BACKUP);
        CHECK(r->backup->bytes > 0);
        proto_response_free(r);

        /* The ingest went on during and after the backup. */
        acked = before;
        for (int i = 0; i < 2000 && acked < before + 5; i++) {
                msleep(5);
                acked = drain_acks(fds[0], acked);
        }
        CHECK(acked >= before + 5);
        kill(child, SIGKILL);
        CHECK(waitpid(child, NULL, 0) == child);
        close(fds[0]);
        /* The live store has more rows than the copy needs to have. */
        CHECK(rows_of(&c, ds) >= acked * LIVE_BATCH);
        tc_close(&c);

        /* The copy, served by a second dreamd: batches commit one at a time in
         * order, so it holds ids [0, rows) exactly, with rows covering every
         * batch acknowledged before the request. */
        td_start(&d2, bdir, NULL);
        tc_connect(&c2, d2.port);
        rows = rows_of(&c2, ds);
        fprintf(stderr, "backup: %llu batches acknowledged before, %llu rows in the copy\n",
                (unsigned long long)before, (unsigned long long)rows);
        CHECK(rows >= before * LIVE_BATCH);
        CHECK(rows % LIVE_BATCH == 0);
        free(export_check(&c2, ds, rows, 0));
        tc_close(&c2);
        CHECK(td_stop(&d2) == 0);
        CHECK(td_check(bdir, out, sizeof(out), NULL) == 0);

        /* A second backup into an existing empty directory works too. */
        snprintf(bdir, sizeof(bdir), "%s/empty", d.dir);
        CHECK(mkdir(bdir, 0700) == 0);
        tc_connect(&c, d.port);
        r = backup_call(&c, bdir, 3);
        CHECK(r->code == OK);
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_check(bdir, out, sizeof(out), NULL) == 0);

        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

/* Bad backup paths: a clear error each, nothing written. */
static void test_backup_paths(void)
{
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        char path[5000];
        struct stat sb;
        struct {
                const char *suffix; /* appended to the temp dir; NULL: path as is */
                const char *path;
                int code;
                const char *words;
        } cases[] = {
            {NULL, "relative/dir", DREAM__V1__STATUS__STATUS_INVALID, "not an absolute path"},
            {NULL, "", DREAM__V1__STATUS__STATUS_INVALID, "backup.path"},
            {"/data", NULL, DREAM__V1__STATUS__STATUS_EXISTS, "is not empty"},
            {"/file", NULL, DREAM__V1__STATUS__STATUS_EXISTS, "not a directory"},
            {"/no/such/dir", NULL, DREAM__V1__STATUS__STATUS_NOT_FOUND,
             "parent directory does not exist"},
        };

        td_start(&d, NULL, NULL);
        tc_connect(&c, d.port);
        snprintf(path, sizeof(path), "%s/file", d.dir);
        {
                FILE *f = fopen(path, "w");
                CHECK(f && fputs("x", f) >= 0 && fclose(f) == 0);
        }
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (cases[i].suffix)
                        snprintf(path, sizeof(path), "%s%s", d.dir, cases[i].suffix);
                else
                        snprintf(path, sizeof(path), "%s", cases[i].path);
                r = backup_call(&c, path, 10 + i);
                if ((int)r->code != cases[i].code || !strstr(r->message, cases[i].words))
                        fprintf(stderr, "backup '%s': code %d, '%s'\n", path, (int)r->code,
                                r->message);
                CHECK((int)r->code == cases[i].code);
                CHECK(strstr(r->message, cases[i].words) != NULL);
                proto_response_free(r);
        }
        /* Too long: DREAM_MAX_PATH + 1 bytes. */
        memset(path, 'a', 4097);
        path[0] = '/';
        path[4097] = '\0';
        r = backup_call(&c, path, 20);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_LIMIT);
        CHECK(strstr(r->message, "backup.path") != NULL);
        proto_response_free(r);
        /* Nothing was left behind by the failures. */
        snprintf(path, sizeof(path), "%s/no", d.dir);
        CHECK(stat(path, &sb) < 0 && errno == ENOENT);
        snprintf(path, sizeof(path), "%s/file", d.dir);
        CHECK(stat(path, &sb) == 0 && sb.st_size == 1);
        /* The connection still serves. */
        r = create_ds(&c, "still", 30);
        CHECK(r->code == OK);
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

/* dreamd --check: 0 on a healthy store, 1 naming the dataset when a byte of
 * a sealed segment is flipped, 2 when there is no store. */
static void test_check(void)
{
        const char *ds = "pattern";
        struct tdaemon d;
        struct tc c;
        proto_response *r;
        char path[400], out[8192];
        uint8_t *buf = NULL;
        size_t n = 0, cap = 0, hits = 0;
        FILE *f;
        static const uint8_t magic[8] = {'D', 'R', 'E', 'A', 'M', 'G', 'D', 1};

        td_start(&d, NULL, NULL);
        tc_connect(&c, d.port);
        r = create_ds(&c, ds, 1);
        CHECK(r->code == OK);
        proto_response_free(r);
        send_ingest(&c, ds, 2, 1, 0, 5000, NCOLS);
        CHECK(tc_recv(&c, &r, 20000) == 1 && r->code == OK);
        proto_response_free(r);
        flush_ds(&c, ds, 3);
        /* Staged rows too: the check reads both. */
        send_ingest(&c, ds, 4, 2, 5000, 100, NCOLS);
        CHECK(tc_recv(&c, &r, 20000) == 1 && r->code == OK);
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);

        CHECK(td_check(d.data_dir, out, sizeof(out), NULL) == 0);
        CHECK(strstr(out, "ok") != NULL);

        /* Flip one byte well inside every copy of the segment container. */
        snprintf(path, sizeof(path), "%s/data.mdb", d.data_dir);
        f = fopen(path, "rb");
        CHECK(f);
        for (;;) {
                if (n == cap) {
                        cap = cap ? cap * 2 : (1u << 20);
                        buf = realloc(buf, cap);
                        CHECK(buf);
                }
                size_t got = fread(buf + n, 1, cap - n, f);
                if (got == 0)
                        break;
                n += got;
        }
        fclose(f);
        for (size_t i = 0; i + sizeof(magic) + 300 < n; i++)
                if (memcmp(buf + i, magic, sizeof(magic)) == 0) {
                        buf[i + 200] ^= 0x55;
                        hits++;
                }
        CHECK(hits >= 1);
        f = fopen(path, "r+b");
        CHECK(f && fwrite(buf, 1, n, f) == n && fclose(f) == 0);
        free(buf);

        CHECK(td_check(d.data_dir, out, sizeof(out), NULL) == 1);
        fprintf(stderr, "check on the damaged store:\n%s", out);
        CHECK(strstr(out, "'pattern'") != NULL);
        CHECK(strstr(out, "problem") != NULL);

        /* No store: exit 2, and nothing created. */
        snprintf(path, sizeof(path), "%s/none", d.dir);
        CHECK(td_check(path, out, sizeof(out), NULL) == 2);
        {
                struct stat sb;
                CHECK(stat(path, &sb) < 0 && errno == ENOENT);
        }
        td_cleanup(&d);
}

/* ---- the shared batch cache ---------------------------------------------------- */

/* The rest of a get_batches stream already sent on c; every value checked
 * against the row's cells (float32 of each, the target last). */
static void recv_batches(struct tc *c, struct stream *out)
{
        bool more = true;

        while (more) {
                proto_response *r = NULL;
                Dream__V1__Batch *b;
                CHECK(tc_recv(c, &r, 20000) == 1);
                CHECK(r->code == OK);
                b = r->get_batches;
                out->ids = realloc(out->ids, (out->n + b->n + 1) * sizeof(uint64_t));
                CHECK(b->d == NCOLS - 1 && b->targets.len == (size_t)b->n * 4);
                for (uint32_t i = 0; i < b->n; i++) {
                        float f[NCOLS - 1], y;
                        uint64_t id;
                        double x;
                        int64_t bits;
                        proto_f32_get(f, b->features.data + (size_t)i * (NCOLS - 1) * 4, NCOLS - 1);
                        proto_f32_get(&y, b->targets.data + (size_t)i * 4, 1);
                        id = (uint64_t)llroundf(f[0]);
                        bits = cell(id, 2);
                        memcpy(&x, &bits, 8);
                        CHECK(f[1] == (float)(double)((long double)cell(id, 1) / 100.0L));
                        CHECK(f[2] == (float)x);
                        CHECK(y == (float)cell(id, 3));
                        out->ids[out->n++] = id;
                }
                out->batches++;
                more = r->more;
                proto_response_free(r);
        }
}

/* Every id of [lo, lo + n) exactly once in s. */
static void check_once(const struct stream *s, uint64_t lo, uint64_t n)
{
        uint8_t *seen = calloc(n, 1);

        CHECK(seen && s->n == n);
        for (size_t i = 0; i < s->n; i++) {
                CHECK(s->ids[i] >= lo && s->ids[i] - lo < n);
                CHECK(!seen[s->ids[i] - lo]);
                seen[s->ids[i] - lo] = 1;
        }
        free(seen);
}

static void ingest_ok(struct tc *c, const char *ds, uint64_t first, uint32_t n)
{
        proto_response *r;

        send_ingest(c, ds, 77, 0, first, n, NCOLS);
        CHECK(tc_recv(c, &r, 20000) == 1);
        CHECK(r->code == OK);
        proto_response_free(r);
}

/* Streams share one decoded copy per (dataset, row count): a stream started
 * after an append sees the new rows, one started after a drop and re-create
 * the new dataset; concurrent streams each get every row once; a resume
 * token made before an append continues the old epoch exactly. */
static void test_batch_cache(void)
{
        struct tdaemon d;
        struct tc c, cc[3];
        proto_response *r;
        const char *ds = "bc";
        Dream__V1__GetBatches gb = DREAM__V1__GET_BATCHES__INIT;
        struct stream a = {0}, a2 = {0}, part = {0}, rest = {0}, b = {0}, conc[3] = {{0}},
                      smp = {0}, fresh = {0};

        td_start(&d, NULL, (const char *const[]){"--seal-rows", "1000", NULL});
        tc_connect(&c, d.port);
        r = create_ds(&c, ds, 1);
        CHECK(r->code == OK);
        proto_response_free(r);
        for (uint64_t k = 0; k < 4; k++)
                ingest_ok(&c, ds, k * 500, 500);
        wait_segments(&c, ds, 2);
        gb.dataset = (char *)ds;
        gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        gb.batch_size = 100;
        gb.seed = 3;
        get_batches(&c, &gb, &a); /* decodes the copy */
        check_once(&a, 0, 2000);
        get_batches(&c, &gb, &a2); /* from it */
        CHECK(a2.n == 2000 && memcmp(a.ids, a2.ids, 2000 * sizeof(uint64_t)) == 0);
        gb.max_batches = 4;
        get_batches(&c, &gb, &part);
        gb.max_batches = 0;

        /* An append: new streams see 2700 rows, each once. */
        ingest_ok(&c, ds, 2000, 700);
        get_batches(&c, &gb, &b);
        check_once(&b, 0, 2700);
        {
                Dream__V1__Budget bu = DREAM__V1__BUDGET__INIT;
                size_t high = 0;
                bu.kind_case = DREAM__V1__BUDGET__KIND_ROWS;
                bu.rows = 2600;
                gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_SAMPLE;
                gb.budget = &bu;
                get_batches(&c, &gb, &smp);
                CHECK(smp.n == 2600);
                for (size_t i = 0; i < smp.n; i++)
                        high += smp.ids[i] >= 2000;
                CHECK(high > 0); /* the sample draws from the appended rows too */
                gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
                gb.budget = NULL;
        }
        /* The token of the 2000-row epoch continues it, and only it. */
        {
                Dream__V1__GetBatches gr = DREAM__V1__GET_BATCHES__INIT;
                gr.dataset = (char *)ds;
                gr.batch_size = 128;
                gr.resume_token.data = part.token;
                gr.resume_token.len = part.token_len;
                get_batches(&c, &gr, &rest);
                CHECK(part.n == 400 && part.n + rest.n == 2000);
                CHECK(memcmp(part.ids, a.ids, part.n * 8) == 0);
                CHECK(memcmp(rest.ids, a.ids + part.n, rest.n * 8) == 0);
        }
        /* Concurrent streams (one decodes, the others wait for it or read it). */
        ingest_ok(&c, ds, 2700, 300);
        for (int i = 0; i < 3; i++) {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                tc_connect(&cc[i], d.port);
                gb.seed = 10 + (uint64_t)i;
                req.request_id = 900;
                req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
                req.get_batches = &gb;
                CHECK(tc_send(&cc[i], &req) == 0);
        }
        for (int i = 0; i < 3; i++) {
                recv_batches(&cc[i], &conc[i]); /* checks every value too */
                check_once(&conc[i], 0, 3000);
                tc_close(&cc[i]);
        }
        CHECK(memcmp(conc[0].ids, conc[1].ids, 3000 * 8) != 0);

        /* Dropped and made again under the same name: the new rows only. */
        {
                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                Dream__V1__DropDataset dr = DREAM__V1__DROP_DATASET__INIT;
                dr.name = (char *)ds;
                req.request_id = 402;
                req.body_case = DREAM__V1__REQUEST__BODY_DROP_DATASET;
                req.drop_dataset = &dr;
                r = tc_call(&c, &req);
                CHECK(r->code == OK);
                proto_response_free(r);
        }
        r = create_ds(&c, ds, 2);
        CHECK(r->code == OK);
        proto_response_free(r);
        ingest_ok(&c, ds, 5000, 3000); /* the same row count as before the drop */
        gb.seed = 3;
        get_batches(&c, &gb, &fresh);
        check_once(&fresh, 5000, 3000);

        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
        free(a.ids);
        free(a2.ids);
        free(part.ids);
        free(rest.ids);
        free(b.ids);
        free(smp.ids);
        free(fresh.ids);
        for (int i = 0; i < 3; i++)
                free(conc[i].ids);
}

/* Seals run on the server's seal threads: sixteen datasets past seal_rows at
 * once, then SIGTERM while seals may still be queued or running: the daemon
 * drains (running seals finish, queued ones are dropped: their rows stay
 * staged), exits 0, and every row is there after a restart. */
static void test_seal_drain(void)
{
        enum { NDS = 16, ROWS = 60000 };
        struct tdaemon d, d2;
        struct tc c;
        proto_response *r;
        char name[NDS][16];
        struct stream s = {0};
        Dream__V1__GetBatches gb = DREAM__V1__GET_BATCHES__INIT;

        td_start(&d, NULL, (const char *const[]){"--seal-rows", "20000", NULL});
        tc_connect(&c, d.port);
        for (int i = 0; i < NDS; i++) {
                snprintf(name[i], sizeof(name[i]), "s%d", i);
                r = create_ds(&c, name[i], 1);
                CHECK(r->code == OK);
                proto_response_free(r);
        }
        /* Pipelined: the seals queue up faster than two threads run them. */
        for (int i = 0; i < NDS; i++)
                send_ingest(&c, name[i], 100 + (uint64_t)i, 0, 0, ROWS, NCOLS);
        for (int q = 0; q < NDS; q++) {
                CHECK(tc_recv(&c, &r, 20000) == 1);
                CHECK(r->code == OK);
                proto_response_free(r);
        }
        r = tc_describe(&c, "s0", 5); /* answered while seals run */
        CHECK(r->code == OK && r->describe_dataset->rows == ROWS);
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);

        td_start(&d2, d.data_dir, NULL);
        tc_connect(&c, d2.port);
        for (int i = 0; i < NDS; i++)
                CHECK(rows_of(&c, name[i]) == ROWS);
        gb.dataset = name[NDS - 1];
        gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        gb.batch_size = 4000;
        get_batches(&c, &gb, &s);
        check_once(&s, 0, ROWS);
        free(s.ids);
        tc_close(&c);
        CHECK(td_stop(&d2) == 0);
        td_cleanup(&d);
}

int main(int argc, char **argv)
{
        const char *g = argc > 1 ? argv[1] : "";

        signal(SIGPIPE, SIG_IGN);
        if (strcmp(g, "basic") == 0)
                test_basic();
        else if (strcmp(g, "batches") == 0)
                test_batches();
        else if (strcmp(g, "batch_cache") == 0)
                test_batch_cache();
        else if (strcmp(g, "seal_drain") == 0)
                test_seal_drain();
        else if (strcmp(g, "auth") == 0)
                test_auth();
        else if (strcmp(g, "hostile") == 0)
                test_hostile();
        else if (strcmp(g, "limits") == 0)
                test_limits();
        else if (strcmp(g, "drain") == 0)
                test_drain();
        else if (strcmp(g, "unix") == 0)
                test_unix();
        else if (strcmp(g, "backup") == 0)
                test_backup();
        else if (strcmp(g, "backup_paths") == 0)
                test_backup_paths();
        else if (strcmp(g, "check") == 0)
                test_check();
        else {
                fprintf(stderr,
                        "usage: test_dreamd basic|batches|batch_cache|seal_drain|auth|hostile|"
                        "limits|drain|unix|backup|"
                        "backup_paths|check\n");
                return 2;
        }
        fprintf(stderr, "%s: ok\n", g);
        return 0;
}
