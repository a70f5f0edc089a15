/* libFuzzer target: request dispatch against a real store (issue 7, item 4).
 *
 * Bytes are decoded and validated as dreamd does with a frame's message,
 * then the request runs through the server's handler (srv_req_work) to its
 * end, a stream round by round, against a store in a temporary directory
 * (on /dev/shm when there is one) that holds a dataset "houses" (the
 * 9-column schema of the message corpus: c0..c7 decimals, c8 a class
 * target) with a sealed segment and staged rows; it is made again whenever
 * an input dropped it or grew it past 100,000 rows.
 *
 * Invariants (abort on violation): every round ends; what a round writes
 * is a sequence of frames, each a Response that decodes and validates,
 * carries the request's id and either the request's body kind or an error
 * (which ends the answer); every frame but the last says more follows; a
 * request that is not a stream is answered by exactly one frame; a stream
 * ends within 100,000 rounds. Sanitizers catch the rest.
 *
 * Not dispatched: hello, server_info and job_watch (answered on the loop,
 * not by srv_req_work), backup (writes a path of the input) and train (its
 * job would run on a thread after the input returned): the other job
 * requests run against the (empty) job table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "server/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCOLS      9u
#define ROWS_MAX   100000u
#define ROUNDS_MAX 100000u

static struct srv srv;
static uv_loop_t loop;
static char dir[64];

static const struct store_schema *schema(void)
{
        static struct store_column cols[NCOLS];
        static char names[NCOLS][4];
        static struct store_schema sc;

        for (uint32_t i = 0; i < NCOLS; i++) {
                snprintf(names[i], sizeof(names[i]), "c%u", i);
                cols[i].name = names[i];
                cols[i].kind = i == NCOLS - 1 ? GD_INT : GD_DEC;
                cols[i].scale = i == NCOLS - 1 ? 0 : 2;
        }
        sc = (struct store_schema){.n_cols = NCOLS,
                                   .cols = cols,
                                   .target = NCOLS - 1,
                                   .task = GD_TASK_CLASSIFICATION,
                                   .n_classes = 4};
        return &sc;
}

static void append_rows(uint64_t first, uint64_t n)
{
        struct gd_table *t = NULL;
        uint64_t row0;

        if (gd_table_new(n, NCOLS, &t) < 0)
                abort();
        for (uint32_t c = 0; c < NCOLS; c++) {
                char name[4];
                snprintf(name, sizeof(name), "c%u", c);
                if (gd_table_set_name(t, c, name) < 0)
                        abort();
                t->cols[c].kind = c == NCOLS - 1 ? GD_INT : GD_DEC;
                t->cols[c].scale = c == NCOLS - 1 ? 0 : 2;
                for (uint64_t i = 0; i < n; i++)
                        t->cols[c].v[i] =
                            c == NCOLS - 1 ? (int64_t)((first + i) % 4)
                                           : (int64_t)((first + i) * 37 % 5000) - (int64_t)c * 100;
        }
        t->target = NCOLS - 1;
        t->task = GD_TASK_CLASSIFICATION;
        if (store_append(srv.store, "houses", t, 0, &row0, NULL) < 0)
                abort();
        gd_table_free(t);
}

/* "houses" as every input expects it. */
static void dataset_ready(void)
{
        struct store_info *info = NULL;
        int r = store_dataset_describe(srv.store, "houses", &info);

        if (r == 0 && info->rows <= ROWS_MAX) {
                store_info_free(info);
                return;
        }
        store_info_free(info);
        if (r == 0 && store_dataset_drop(srv.store, "houses") < 0)
                abort();
        if (store_dataset_create(srv.store, "houses", schema()) < 0)
                abort();
        append_rows(0, 200);
        if (store_seal(srv.store, "houses", true, NULL) < 0)
                abort();
        append_rows(200, 100); /* staged */
}

static void remove_dir(void)
{
        char path[128];

        store_close(srv.store);
        srv.store = NULL;
        snprintf(path, sizeof(path), "%s/data.mdb", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/lock.mdb", dir);
        unlink(path);
        rmdir(dir);
}

static void init_once(void)
{
        struct store_opts o;
        char err[256];
        struct stat sb;

        snprintf(dir, sizeof(dir), "%s/dream-fuzz-dispatch-XXXXXX",
                 stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir))
                abort();
        srv_config_init(&srv.cfg);
        srv.cfg.jobs = 1;
        srv.cfg.job_queue = 1;
        store_opts_default(&o);
        o.map_max = 256u << 20;
        if (store_open(dir, &o, &srv.store) < 0 || uv_loop_init(&loop) < 0)
                abort();
        srv.loop = &loop;
        if (srv_jobs_init(&srv, err, sizeof(err)) < 0)
                abort();
        atexit(remove_dir);
}

/* What a request's answers add up to across its rounds. */
struct answers {
        uint64_t id;
        int body;       /* the request's body number: a reply carries the same */
        uint32_t count; /* frames so far */
        bool last_more; /* the more flag of the last frame */
};

/* The frames of one round: each a Response to the request (its id; its body
 * kind, or an error without body). */
static void check_out(const struct dm_buf *out, struct answers *a)
{
        size_t at = 0;
        char err[256];

        while (at < out->len) {
                proto_response *resp = NULL;
                uint32_t len;

                if (out->len - at < 4)
                        abort();
                len = dm_get_be32(out->data + at);
                if (len > out->len - at - 4)
                        abort();
                if (proto_response_decode(out->data + at + 4, len, err, sizeof(err), &resp) < 0)
                        abort();
                if (resp->request_id != a->id)
                        abort();
                if (resp->code == DREAM__V1__STATUS__STATUS_OK ? (int)resp->body_case != a->body
                                                               : resp->more)
                        abort();
                a->count++;
                a->last_more = resp->more;
                proto_response_free(resp);
                at += 4 + (size_t)len;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int ready;
        proto_request *req = NULL;
        struct srv_req j;
        char err[256];
        uint32_t rounds = 0;
        struct answers a;

        if (!ready) {
                init_once();
                ready = 1;
        }
        if (proto_request_decode(data, size, err, sizeof(err), &req) < 0)
                return 0;
        switch (req->body_case) {
        case DREAM__V1__REQUEST__BODY_HELLO:
        case DREAM__V1__REQUEST__BODY_SERVER_INFO:
        case DREAM__V1__REQUEST__BODY_JOB_WATCH:
        case DREAM__V1__REQUEST__BODY_BACKUP:
        case DREAM__V1__REQUEST__BODY_TRAIN:
                proto_request_free(req);
                return 0;
        default:
                break;
        }
        dataset_ready();
        memset(&j, 0, sizeof(j));
        j.srv = &srv;
        j.req = req;
        j.request_id = req->request_id;
        j.stream = srv_request_streams(req);
        a = (struct answers){.id = j.request_id, .body = (int)req->body_case};
        dm_buf_init(&j.out);
        do {
                srv_req_work(&j);
                check_out(&j.out, &a);
                j.out.len = 0;
                if (++rounds > ROUNDS_MAX)
                        abort();
                /* Until the last round, every frame says more follows. */
                if (!j.done && a.count && !a.last_more)
                        abort();
        } while (!j.done);
        /* Answered, the last frame ends it, and one frame unless a stream. */
        if (a.count == 0 || a.last_more || (!j.stream && a.count != 1))
                abort();
        srv_req_state_free(&j);
        dm_buf_release(&j.out);
        proto_request_free(req);
        return 0;
}
