/* Integration tests of reads pinned to a dataset: an export, a GetBatches
 * stream or a training job whose dataset is dropped and made again under the
 * same name while it runs ends with NOT_FOUND naming the dataset, and never
 * delivers a row of the new dataset.
 * Usage: test_pin GROUP (streams, job). DREAMD in the environment is the
 * daemon's path. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "tclient.h"

#define OK        DREAM__V1__STATUS__STATUS_OK
#define NOT_FOUND DREAM__V1__STATUS__STATUS_NOT_FOUND
#define NCOLS     8u
/* Rows of the dataset a stream starts on: more output than the server queues
 * for a client that does not read (8 MiB) plus a unix socket's buffer, for
 * the export (64 bytes a row) and the batches (32). */
#define OLD_ROWS 600000u
#define NEW_BASE 10000000u /* ids of the rows of the dataset made again */
#define NEW_ROWS 3000u

static uint64_t next_id = 1;

/* Column 0 is the row's id, the last the class (0..2), the others mixes. */
static int64_t cell(uint64_t id, uint32_t col)
{
        if (col == 0)
                return (int64_t)id;
        if (col == NCOLS - 1)
                return (int64_t)(id % 3);
        return (int64_t)((id * (2 * col + 1) + col) % 1000) - 500 + (int64_t)(id % 3) * 300;
}

static void call_ok(struct tc *c, Dream__V1__Request *req)
{
        proto_response *r;

        req->request_id = next_id++;
        r = tc_call(c, req);
        if (r->code != OK)
                fprintf(stderr, "request %d: %s\n", (int)req->body_case, r->message);
        CHECK(r->code == OK);
        proto_response_free(r);
}

/* Create `name` (dropping it first when `drop`) with rows of ids
 * base..base+n-1. */
static void make(struct tc *c, const char *name, bool drop, uint64_t base, uint32_t n)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__CreateDataset cd = DREAM__V1__CREATE_DATASET__INIT;
        Dream__V1__ColumnSpec specs[NCOLS], *sp[NCOLS];
        char names[NCOLS][8];
        int64_t *v = malloc((size_t)100000 * 8);

        CHECK(v);
        if (drop) {
                Dream__V1__DropDataset dr = DREAM__V1__DROP_DATASET__INIT;
                dr.name = (char *)name;
                req.body_case = DREAM__V1__REQUEST__BODY_DROP_DATASET;
                req.drop_dataset = &dr;
                call_ok(c, &req);
        }
        for (uint32_t j = 0; j < NCOLS; j++) {
                dream__v1__column_spec__init(&specs[j]);
                snprintf(names[j], sizeof(names[j]), "c%u", j);
                specs[j].name = names[j];
                specs[j].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
                sp[j] = &specs[j];
        }
        cd.name = (char *)name;
        cd.n_columns = NCOLS;
        cd.columns = sp;
        cd.target = names[NCOLS - 1];
        cd.task = DREAM__V1__TASK__TASK_CLASSIFICATION;
        req.body_case = DREAM__V1__REQUEST__BODY_CREATE_DATASET;
        req.create_dataset = &cd;
        call_ok(c, &req);
        for (uint32_t at = 0; at < n; at += 100000) {
                Dream__V1__Ingest in = DREAM__V1__INGEST__INIT;
                Dream__V1__Columns cols = DREAM__V1__COLUMNS__INIT;
                Dream__V1__ColumnValues cv[NCOLS], *cvp[NCOLS];
                uint32_t k = n - at < 100000 ? n - at : 100000;

                for (uint32_t j = 0; j < NCOLS; j++) {
                        dream__v1__column_values__init(&cv[j]);
                        cv[j].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
                        for (uint32_t i = 0; i < k; i++)
                                v[i] = cell(base + at + i, j);
                        CHECK(proto_values_new(v, k, &cv[j].values) == 0);
                        cvp[j] = &cv[j];
                }
                cols.n_rows = k;
                cols.n_columns = NCOLS;
                cols.columns = cvp;
                in.dataset = (char *)name;
                in.rows = &cols;
                req.body_case = DREAM__V1__REQUEST__BODY_INGEST;
                req.ingest = &in;
                call_ok(c, &req);
                for (uint32_t j = 0; j < NCOLS; j++)
                        dm_free(cv[j].values.data);
        }
        free(v);
}

/* The rest of a stream (first response already in *first): every row must
 * be of the old dataset, and the stream must end with NOT_FOUND naming the
 * dataset. Returns the rows received. */
static uint64_t read_to_error(struct tc *c, proto_response *r, const char *what, const char *name)
{
        uint64_t rows = 0;
        char quoted[64];

        snprintf(quoted, sizeof(quoted), "dataset '%s' was dropped", name);
        for (;;) {
                if (r->code != OK) {
                        fprintf(stderr, "%s ends: %s\n", what, r->message);
                        CHECK(r->code == NOT_FOUND);
                        CHECK(strstr(r->message, quoted) != NULL);
                        proto_response_free(r);
                        return rows;
                }
                CHECK(r->more); /* the old dataset never ends the stream */
                if (r->body_case == DREAM__V1__RESPONSE__BODY_EXPORT) {
                        const Dream__V1__Columns *cols = r->export->rows;
                        int64_t *v = malloc((size_t)cols->n_rows * 8 + 8);

                        CHECK(v && r->export->first_row == rows);
                        CHECK(proto_values_read(&cols->columns[0]->values, cols->n_rows, v) == 0);
                        for (uint32_t i = 0; i < cols->n_rows; i++)
                                CHECK(v[i] == (int64_t)(rows + i)); /* old rows, in order */
                        rows += cols->n_rows;
                        free(v);
                } else {
                        const Dream__V1__Batch *b = r->get_batches;

                        CHECK(r->body_case == DREAM__V1__RESPONSE__BODY_GET_BATCHES);
                        CHECK(b->d == NCOLS - 1);
                        for (uint32_t i = 0; i < b->n; i++) {
                                float f;
                                proto_f32_get(&f, b->features.data + (size_t)i * b->d * 4, 1);
                                CHECK(f >= 0 && f < (float)OLD_ROWS); /* never a new id */
                        }
                        rows += b->n;
                }
                proto_response_free(r);
                r = NULL;
                CHECK(tc_recv(c, &r, 30000) == 1);
        }
}

/* An export and a rows stream (served from the decoded copy) that the
 * client stopped reading, so that backpressure parks them; the dataset is
 * dropped and made again with other rows; once read again, each stream ends
 * with NOT_FOUND after old rows only. (Batches read from the store, without
 * a copy, are pinned by store_get_rows: tests/unit/store.) */
static void g_streams(void)
{
        struct tdaemon d;
        struct tc c, ex, gb;
        char dir[] = "/tmp/dreamd-pin-XXXXXX", sock[64], listen[80];
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Export e = DREAM__V1__EXPORT__INIT;
        Dream__V1__GetBatches g = DREAM__V1__GET_BATCHES__INIT;
        proto_response *first_ex = NULL, *first_gb = NULL;
        uint64_t n_ex, n_gb;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(sock, sizeof(sock), "%s/d.sock", dir);
        snprintf(listen, sizeof(listen), "unix:%s", sock);
        td_start(&d, NULL,
                 (const char *const[]){"--listen", listen, "--seal-rows", "200000", NULL});
        tc_connect(&c, d.port);
        make(&c, "pin", false, 0, OLD_ROWS);

        /* Unix sockets: little buffered in the kernel beyond the
         * server's own queue. */
        tc_connect_unix(&ex, sock);
        tc_connect_unix(&gb, sock);
        e.dataset = "pin";
        req.request_id = 500;
        req.body_case = DREAM__V1__REQUEST__BODY_EXPORT;
        req.export = &e;
        CHECK(tc_send(&ex, &req) == 0);
        g.dataset = "pin";
        g.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        g.batch_size = 1000;
        g.seed = 5;
        req.request_id = 501;
        req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
        req.export = NULL;
        req.get_batches = &g;
        CHECK(tc_send(&gb, &req) == 0);
        /* Both began (their first response is here), then stop reading. */
        CHECK(tc_recv(&ex, &first_ex, 30000) == 1);
        CHECK(tc_recv(&gb, &first_gb, 30000) == 1);
        CHECK(first_ex->code == OK && first_gb->code == OK);

        make(&c, "pin", true, NEW_BASE, NEW_ROWS);

        n_ex = read_to_error(&ex, first_ex, "export", "pin");
        n_gb = read_to_error(&gb, first_gb, "get_batches", "pin");
        fprintf(stderr, "%llu rows exported, %llu rows in batches\n", (unsigned long long)n_ex,
                (unsigned long long)n_gb);
        CHECK(n_ex < OLD_ROWS && n_gb < OLD_ROWS);
        tc_close(&ex);
        tc_close(&gb);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
        td_rmtree(dir);
}

/* Send a JobWatch of `job`; returns its request id. */
static uint64_t watch(struct tc *c, uint64_t job)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__JobWatch jw = DREAM__V1__JOB_WATCH__INIT;

        jw.job_id = job;
        req.request_id = next_id++;
        req.body_case = DREAM__V1__REQUEST__BODY_JOB_WATCH;
        req.job_watch = &jw;
        CHECK(tc_send(c, &req) == 0);
        return req.request_id;
}

/* A refresh job (rows read from the store every epoch) whose dataset is
 * dropped and made again after its first epoch fails with NOT_FOUND naming
 * the dataset, instead of training on the new rows. */
static void g_job(void)
{
        struct tdaemon d;
        struct tc c;
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Train tr = DREAM__V1__TRAIN__INIT;
        Dream__V1__Budget b = DREAM__V1__BUDGET__INIT;
        proto_response *r;
        uint64_t job, watch_id;
        uint32_t dropped_at = 0; /* epoch seen when the dataset was dropped */

        td_start(&d, NULL, NULL);
        tc_connect(&c, d.port);
        make(&c, "jobs", false, 0, 20000);
        tr.dataset = "jobs";
        tr.model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX;
        tr.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_REFRESH;
        b.kind_case = DREAM__V1__BUDGET__KIND_FRACTION;
        b.fraction = 0.5;
        tr.budget = &b;
        tr.epochs = 100000; /* far more than the test lets it run */
        tr.seed = 7;
        tr.test_dataset = "";
        req.request_id = next_id++;
        req.body_case = DREAM__V1__REQUEST__BODY_TRAIN;
        req.train = &tr;
        r = tc_call(&c, &req);
        CHECK(r->code == OK && r->body_case == DREAM__V1__RESPONSE__BODY_TRAIN);
        job = r->train->job_id;
        proto_response_free(r);

        watch_id = watch(&c, job);
        for (;;) {
                r = NULL;
                CHECK(tc_recv(&c, &r, 30000) == 1);
                if (r->request_id != watch_id) {
                        proto_response_free(r);
                        continue;
                }
                CHECK(r->code == OK && r->body_case == DREAM__V1__RESPONSE__BODY_JOB_WATCH);
                if (!r->more)
                        break;
                if (!dropped_at && r->job_watch->epoch >= 1) {
                        /* Running: another connection drops and re-creates. */
                        struct tc c2;
                        tc_connect(&c2, d.port);
                        make(&c2, "jobs", true, NEW_BASE, 30000);
                        tc_close(&c2);
                        dropped_at = r->job_watch->epoch;
                }
                /* Its next epoch reads the dropped dataset: it must not
                 * train on for long. */
                CHECK(!dropped_at || r->job_watch->epoch < dropped_at + 100);
                proto_response_free(r);
        }
        fprintf(stderr, "job: %s\n", r->job_watch->error);
        CHECK(dropped_at);
        CHECK(r->job_watch->state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED);
        CHECK(r->job_watch->error_code == NOT_FOUND);
        CHECK(strstr(r->job_watch->error, "dataset 'jobs' was dropped while this job was reading"));
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

/* Submit a softmax job on `name`; returns its id. */
static uint64_t submit(struct tc *c, const char *name, Dream__V1__TrainMode mode, uint32_t epochs)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Train tr = DREAM__V1__TRAIN__INIT;
        proto_response *r;
        uint64_t job;

        tr.dataset = (char *)name;
        tr.model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX;
        tr.mode = mode;
        tr.epochs = epochs;
        tr.seed = 3;
        tr.test_dataset = "";
        req.request_id = next_id++;
        req.body_case = DREAM__V1__REQUEST__BODY_TRAIN;
        req.train = &tr;
        r = tc_call(c, &req);
        CHECK(r->code == OK && r->body_case == DREAM__V1__RESPONSE__BODY_TRAIN);
        job = r->train->job_id;
        proto_response_free(r);
        return job;
}

/* A job waiting in the queue is pinned to the dataset it was submitted on:
 * dropped and made again before the job starts, the job fails with
 * NOT_FOUND instead of training on the new rows. */
static void g_queued(void)
{
        struct tdaemon d;
        struct tc c;
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__JobCancel jc = DREAM__V1__JOB_CANCEL__INIT;
        proto_response *r;
        uint64_t hold, queued, watch_id;

        td_start(&d, NULL, (const char *const[]){"--jobs", "1", NULL});
        tc_connect(&c, d.port);
        make(&c, "hold", false, 0, 3000);
        make(&c, "q", false, 0, 3000);
        /* The only runner is busy with `hold`: the next job waits. */
        hold = submit(&c, "hold", DREAM__V1__TRAIN_MODE__TRAIN_MODE_REFRESH, 100000);
        queued = submit(&c, "q", DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL, 1);
        make(&c, "q", true, NEW_BASE, 3000);
        jc.job_id = hold;
        req.request_id = next_id++;
        req.body_case = DREAM__V1__REQUEST__BODY_JOB_CANCEL;
        req.job_cancel = &jc;
        call_ok(&c, &req);

        watch_id = watch(&c, queued);
        for (;;) {
                r = NULL;
                CHECK(tc_recv(&c, &r, 30000) == 1);
                CHECK(r->request_id == watch_id && r->code == OK);
                if (!r->more)
                        break;
                proto_response_free(r);
        }
        fprintf(stderr, "queued job: %s\n", r->job_watch->error);
        CHECK(r->job_watch->state == DREAM__V1__JOB_STATE__JOB_STATE_FAILED);
        CHECK(r->job_watch->error_code == NOT_FOUND);
        CHECK(strstr(r->job_watch->error, "dataset 'q' was dropped and created again after"));
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

/* A resume token names the dataset it was made on: after a drop and create
 * under the same name (same row count, so only the id differs) it is
 * refused with NOT_FOUND instead of continuing on the new rows. */
static void g_token(void)
{
        struct tdaemon d;
        struct tc c;
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__GetBatches g = DREAM__V1__GET_BATCHES__INIT;
        proto_response *r = NULL;
        uint8_t token[256];
        size_t token_len;

        td_start(&d, NULL, NULL);
        tc_connect(&c, d.port);
        make(&c, "tok", false, 0, NEW_ROWS);
        g.dataset = "tok";
        g.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        g.batch_size = 100;
        g.max_batches = 1;
        req.request_id = 600;
        req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
        req.get_batches = &g;
        r = tc_call(&c, &req);
        CHECK(r->code == OK && !r->more && r->get_batches->resume_token.len > 0);
        token_len = r->get_batches->resume_token.len;
        CHECK(token_len <= sizeof(token));
        memcpy(token, r->get_batches->resume_token.data, token_len);
        proto_response_free(r);

        /* The same token resumes while the dataset is the same one. */
        g.max_batches = 1;
        g.resume_token.data = token;
        g.resume_token.len = token_len;
        req.request_id = 601;
        r = tc_call(&c, &req);
        CHECK(r->code == OK);
        proto_response_free(r);

        make(&c, "tok", true, NEW_BASE, NEW_ROWS);
        req.request_id = 602;
        r = tc_call(&c, &req);
        if (r->code != NOT_FOUND)
                fprintf(stderr, "resume after re-create: %d %s\n", r->code, r->message);
        CHECK(r->code == NOT_FOUND);
        CHECK(strstr(r->message, "'tok'") && strstr(r->message, "dropped"));
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_cleanup(&d);
}

int main(int argc, char **argv)
{
        const char *g = argc > 1 ? argv[1] : "";

        signal(SIGPIPE, SIG_IGN);
        if (strcmp(g, "streams") == 0)
                g_streams();
        else if (strcmp(g, "job") == 0)
                g_job();
        else if (strcmp(g, "token") == 0)
                g_token();
        else if (strcmp(g, "queued") == 0)
                g_queued();
        else {
                fprintf(stderr, "usage: test_pin streams|job|token|queued\n");
                return 2;
        }
        fprintf(stderr, "%s: ok\n", g);
        return 0;
}
