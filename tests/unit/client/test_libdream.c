/* libdream alone: address parsing, the error table of the public header,
 * and the matching of responses to pipelined requests, against a fake
 * server on the other end of a socketpair. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/lib/internal.h"
#include "common/alloc.h"
#include "common/err.h"
#include "proto/frame.h"
#include "proto/status.h"
#include "proto/validate.h"

/* ---- addresses ------------------------------------------------------------ */

static void test_addr_ok(void **state)
{
        struct dream_addr a;
        (void)state;

        assert_int_equal(dream_addr_parse("127.0.0.1:7878", &a), 0);
        assert_false(a.is_unix);
        assert_string_equal(a.host, "127.0.0.1");
        assert_int_equal(a.port, 7878);
        assert_int_equal(dream_addr_parse("[::1]:9", &a), 0);
        assert_string_equal(a.host, "::1");
        assert_int_equal(a.port, 9);
        assert_int_equal(dream_addr_parse("[fe80::1%lo]:65535", &a), 0);
        assert_string_equal(a.host, "fe80::1%lo");
        assert_int_equal(a.port, 65535);
        assert_int_equal(dream_addr_parse("localhost", &a), 0);
        assert_string_equal(a.host, "localhost");
        assert_int_equal(a.port, DREAM_DEFAULT_PORT);
        assert_int_equal(dream_addr_parse("[::1]", &a), 0);
        assert_int_equal(a.port, DREAM_DEFAULT_PORT);
        assert_int_equal(dream_addr_parse("unix:/run/dreamd/dreamd.sock", &a), 0);
        assert_true(a.is_unix);
        assert_string_equal(a.path, "/run/dreamd/dreamd.sock");
        assert_int_equal(dream_addr_parse("unix:rel.sock", &a), 0);
        assert_string_equal(a.path, "rel.sock");
}

static void test_addr_bad(void **state)
{
        static const char *const bad[] = {
            "",
            ":7878",
            "127.0.0.1:",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "h:-1",
            "h:12x",
            "::1:7878",
            "[::1",
            "[::1]x",
            "[]:1",
            "[1.2.3.4]:5",
            "unix:",
            "a b:1",
            "h:+5",
            "h:99999999999999999999",
        };
        struct dream_addr a;
        char longpath[200];
        (void)state;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (dream_addr_parse(bad[i], &a) != DREAM_E_INVAL)
                        fail_msg("accepted '%s'", bad[i]);
        }
        assert_int_equal(dream_addr_parse(NULL, &a), DREAM_E_INVAL);
        memset(longpath, 'x', sizeof(longpath) - 1);
        longpath[sizeof(longpath) - 1] = '\0';
        memcpy(longpath, "unix:/", 6);
        assert_int_equal(dream_addr_parse(longpath, &a), DREAM_E_INVAL);
}

/* The public error table: every code has its own message and name. */
static void test_error_table(void **state)
{
        (void)state;
#define CHECK_MSG(name, value, msg)                                                                \
        assert_string_equal(dream_strerror(value), msg);                                           \
        assert_string_equal(dream_errname(value), #name);
        DREAM_ERRORS(CHECK_MSG)
#undef CHECK_MSG
}

/* ---- a fake server ------------------------------------------------------------ */

struct fake {
        struct dream_client *c;
        int fd; /* the server's end */
        struct frame_decoder dec;
};

static void fake_open(struct fake *f, uint32_t io_timeout_ms)
{
        struct dream_connect_opts o = DREAM_INIT(struct dream_connect_opts);
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        dream_connect_opts_default(&o);
        o.io_timeout_ms = io_timeout_ms;
        assert_int_equal(dcl_client_from_fd(sv[0], &o, &f->c), 0);
        f->fd = sv[1];
        frame_decoder_init(&f->dec, 0);
}

static void fake_close(struct fake *f)
{
        dream_close(f->c);
        if (f->fd >= 0)
                close(f->fd);
        frame_decoder_release(&f->dec);
}

/* Read one request from the client; its id. */
static uint64_t fake_read_request(struct fake *f, Dream__V1__Request__BodyCase *ret_body)
{
        const uint8_t *msg;
        uint32_t len;
        uint8_t buf[4096];
        proto_request *req;
        uint64_t id;

        while (frame_decoder_next(&f->dec, &msg, &len) != 1) {
                ssize_t k = read(f->fd, buf, sizeof(buf));
                assert_true(k > 0);
                assert_int_equal(frame_decoder_feed(&f->dec, buf, (size_t)k), 0);
        }
        assert_int_equal(proto_request_unpack(msg, len, &req), 0);
        id = req->request_id;
        if (ret_body)
                *ret_body = req->body_case;
        proto_request_free(req);
        return id;
}

/* Send a Response: a ServerInfo body when code is OK. */
static void fake_reply(struct fake *f, uint64_t id, int err, const char *message, int more,
                       uint32_t tag)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__ServerInfoReply si = DREAM__V1__SERVER_INFO_REPLY__INIT;
        struct dm_buf b;

        resp.request_id = id;
        if (err) {
                proto_response_set_error(&resp, id, err, message);
        } else {
                resp.more = more;
                si.max_connections = tag;
                resp.body_case = DREAM__V1__RESPONSE__BODY_SERVER_INFO;
                resp.server_info = &si;
        }
        dm_buf_init(&b);
        assert_int_equal(frame_encode(&b, &resp.base, 0), 0);
        assert_int_equal(write(f->fd, b.data, b.len), (ssize_t)b.len);
        dm_buf_release(&b);
}

/* A serialized ServerInfo request. */
static size_t server_info_request(uint8_t *buf)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__ServerInfo si = DREAM__V1__SERVER_INFO__INIT;

        req.request_id = 12345; /* replaced by dream_send */
        req.body_case = DREAM__V1__REQUEST__BODY_SERVER_INFO;
        req.server_info = &si;
        return dream__v1__request__pack(&req, buf);
}

/* Collects the tags (max_connections) and more flags of responses. */
struct seen {
        uint32_t tags[8];
        int more[8];
        int n;
};

static int seen_cb(void *arg, const void *resp, size_t len, int more)
{
        struct seen *s = arg;
        Dream__V1__Response *r = dream__v1__response__unpack(NULL, len, resp);

        assert_non_null(r);
        assert_true(s->n < 8);
        s->tags[s->n] = r->body_case == DREAM__V1__RESPONSE__BODY_SERVER_INFO
                            ? r->server_info->max_connections
                            : 0;
        s->more[s->n] = more;
        s->n++;
        assert_int_equal(more, r->more);
        dream__v1__response__free_unpacked(r, NULL);
        return 0;
}

/* ---- matching ------------------------------------------------------------------- */

static void test_pipelined_out_of_order(void **state)
{
        struct fake f;
        uint8_t req[64];
        size_t n = server_info_request(req);
        uint64_t id[3], sid[3];
        struct seen s;
        Dream__V1__Request__BodyCase body;
        (void)state;

        fake_open(&f, 5000);
        for (int i = 0; i < 3; i++)
                assert_int_equal(dream_send(f.c, req, n, &id[i]), 0);
        assert_true(id[0] != id[1] && id[1] != id[2] && id[0] != 0);
        for (int i = 0; i < 3; i++) {
                sid[i] = fake_read_request(&f, &body);
                assert_int_equal(sid[i], id[i]); /* the library's ids, not 12345 */
                assert_int_equal(body, DREAM__V1__REQUEST__BODY_SERVER_INFO);
        }
        /* Replies interleaved: 3, 1 (stream part), 2, 1 (end). */
        fake_reply(&f, id[2], 0, NULL, 0, 30);
        fake_reply(&f, id[0], 0, NULL, 1, 10);
        fake_reply(&f, id[1], 0, NULL, 0, 20);
        fake_reply(&f, id[0], 0, NULL, 0, 11);

        memset(&s, 0, sizeof(s));
        assert_int_equal(dream_recv(f.c, id[1], seen_cb, &s), 0);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.tags[0], 20);
        memset(&s, 0, sizeof(s));
        assert_int_equal(dream_recv(f.c, id[0], seen_cb, &s), 0);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.tags[0], 10);
        assert_int_equal(s.more[0], 1);
        assert_int_equal(s.tags[1], 11);
        assert_int_equal(s.more[1], 0);
        memset(&s, 0, sizeof(s));
        assert_int_equal(dream_recv(f.c, id[2], seen_cb, &s), 0);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.tags[0], 30);
        /* Collected already: not in flight any more. */
        assert_int_equal(dream_recv(f.c, id[2], NULL, NULL), DREAM_E_INVAL);
        fake_close(&f);
}

static void test_error_response(void **state)
{
        struct fake f;
        uint8_t req[64];
        size_t n = server_info_request(req);
        uint64_t id;
        struct seen s;
        (void)state;

        fake_open(&f, 5000);
        assert_int_equal(dream_send(f.c, req, n, &id), 0);
        assert_int_equal(fake_read_request(&f, NULL), id);
        fake_reply(&f, id, DREAM_E_NOTFOUND, "describe_dataset.name: no dataset 'zz'", 0, 0);
        memset(&s, 0, sizeof(s));
        assert_int_equal(dream_recv(f.c, id, seen_cb, &s), DREAM_E_NOTFOUND);
        assert_int_equal(s.n, 1); /* the callback saw the error response too */
        assert_string_equal(dream_last_error(f.c), "describe_dataset.name: no dataset 'zz'");
        /* The connection stays usable after a refused request. */
        assert_int_equal(dream_send(f.c, req, n, &id), 0);
        assert_int_equal(fake_read_request(&f, NULL), id);
        fake_reply(&f, id, 0, NULL, 0, 1);
        assert_int_equal(dream_recv(f.c, id, NULL, NULL), 0);
        assert_string_equal(dream_last_error(f.c), "");
        fake_close(&f);
}

static void test_unknown_id_is_protocol_error(void **state)
{
        struct fake f;
        uint8_t req[64];
        size_t n = server_info_request(req);
        uint64_t id;
        (void)state;

        fake_open(&f, 5000);
        assert_int_equal(dream_send(f.c, req, n, &id), 0);
        fake_reply(&f, id + 77, 0, NULL, 0, 1);
        assert_int_equal(dream_recv(f.c, id, NULL, NULL), DREAM_E_PROTO);
        assert_non_null(strstr(dream_last_error(f.c), "not in flight"));
        /* Sticky: the stream is out of sync. */
        assert_int_equal(dream_send(f.c, req, n, &id), DREAM_E_PROTO);
        fake_close(&f);
}

static void test_garbage_and_eof(void **state)
{
        struct fake f;
        uint8_t req[64];
        size_t n = server_info_request(req);
        uint64_t id;
        static const uint8_t junk[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
        (void)state;

        fake_open(&f, 5000);
        assert_int_equal(dream_send(f.c, req, n, &id), 0);
        assert_int_equal(write(f.fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
        assert_int_equal(dream_recv(f.c, id, NULL, NULL), DREAM_E_PROTO);
        fake_close(&f);

        fake_open(&f, 5000);
        assert_int_equal(dream_send(f.c, req, n, &id), 0);
        close(f.fd);
        f.fd = -1;
        assert_int_equal(dream_recv(f.c, id, NULL, NULL), -ECONNRESET);
        assert_non_null(strstr(dream_last_error(f.c), "closed"));
        fake_close(&f);
}

static void test_timeout(void **state)
{
        struct fake f;
        uint8_t req[64];
        size_t n = server_info_request(req);
        uint64_t id;
        (void)state;

        fake_open(&f, 50);
        assert_int_equal(dream_send(f.c, req, n, &id), 0);
        assert_int_equal(dream_recv(f.c, id, NULL, NULL), DREAM_E_TIMEOUT);
        assert_non_null(strstr(dream_last_error(f.c), "50 ms"));
        fake_close(&f);
}

static void test_frame_limit(void **state)
{
        struct fake f;
        struct dream_connect_opts o = DREAM_INIT(struct dream_connect_opts);
        static uint8_t big[8192];
        uint64_t id;
        int sv[2];
        (void)state;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        dream_connect_opts_default(&o);
        o.max_frame = 4096;
        assert_int_equal(dcl_client_from_fd(sv[0], &o, &f.c), 0);
        f.fd = sv[1];
        frame_decoder_init(&f.dec, 0);
        assert_int_equal(dream_max_frame(f.c), 4096);
        assert_int_equal(dream_send(f.c, big, sizeof(big), &id), DREAM_E_LIMIT);
        /* Not sent, and the client stays usable. */
        assert_int_equal(dream_send(f.c, big, 100, &id), 0);
        fake_close(&f);
}

/* Allocation failure at every step of creating a client, sending and
 * receiving: an error, never a crash or a leak (ASan builds check leaks). */
static void test_alloc_failures(void **state)
{
        uint8_t req[64];
        size_t n = server_info_request(req);
        int hit;
        (void)state;

        for (unsigned long nth = 1, done = 0; !done; nth++) {
                struct dream_client *c = NULL;
                int sv[2], r;

                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
                dm_alloc_fail_at(nth, 0);
                r = dcl_client_from_fd(sv[0], NULL, &c);
                hit = dm_alloc_count() >= nth;
                dm_alloc_fail_at(0, 0);
                if (!hit) {
                        assert_int_equal(r, 0);
                        done = 1;
                } else {
                        assert_true(r == 0 || r == DREAM_E_NOMEM);
                }
                dream_close(c);
                close(sv[1]);
        }
        for (unsigned long nth = 1, done = 0; !done; nth++) {
                struct fake f;
                uint64_t id = 0;
                int r;

                fake_open(&f, 5000);
                dm_alloc_fail_at(nth, 0);
                r = dream_send(f.c, req, n, &id);
                hit = dm_alloc_count() >= nth;
                dm_alloc_fail_at(0, 0);
                assert_true(r == 0 || (hit && r == DREAM_E_NOMEM));
                if (r == 0) {
                        assert_int_equal(fake_read_request(&f, NULL), id);
                        fake_reply(&f, id, 0, NULL, 1, 1);
                        fake_reply(&f, id, 0, NULL, 0, 2);
                        dm_alloc_fail_at(nth, 0);
                        r = dream_recv(f.c, id, NULL, NULL);
                        hit = hit || dm_alloc_count() >= nth;
                        dm_alloc_fail_at(0, 0);
                        assert_true(r == 0 || r == DREAM_E_NOMEM);
                }
                done = !hit;
                fake_close(&f);
        }
}

/* ---- typed job calls against the fake server ---------------------------------------- */

/* Send a Response as is. */
static void fake_send(struct fake *f, Dream__V1__Response *resp)
{
        struct dm_buf b;

        dm_buf_init(&b);
        assert_int_equal(frame_encode(&b, &resp->base, 0), 0);
        assert_int_equal(write(f->fd, b.data, b.len), (ssize_t)b.len);
        dm_buf_release(&b);
}

/* Read the next request, unpacked (proto_request_free). */
static proto_request *fake_take_request(struct fake *f)
{
        const uint8_t *msg;
        uint32_t len;
        uint8_t buf[4096];
        proto_request *req;

        while (frame_decoder_next(&f->dec, &msg, &len) != 1) {
                ssize_t k = read(f->fd, buf, sizeof(buf));
                assert_true(k > 0);
                assert_int_equal(frame_decoder_feed(&f->dec, buf, (size_t)k), 0);
        }
        assert_int_equal(proto_request_unpack(msg, len, &req), 0);
        return req;
}

/* A fresh client numbers its requests 1, 2, ...: replies can be written
 * before the blocking call that reads them. */
static void test_train_request(void **state)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__TrainReply tr = DREAM__V1__TRAIN_REPLY__INIT;
        struct dream_train_opts o = DREAM_INIT(struct dream_train_opts);
        proto_request *req;
        struct fake f;
        uint64_t job = 0;
        (void)state;

        fake_open(&f, 5000);
        dream_train_opts_default(&o);
        assert_int_equal(o.seed, DREAM_TRAIN_DEFAULT_SEED);
        assert_int_equal(o.epochs, 0);
        /* No model: refused before sending. */
        assert_int_equal(dream_train(f.c, "d", &o, &job), DREAM_E_INVAL);
        o.model = DREAM_MODEL_SOFTMAX;
        o.mode = DREAM_TRAIN_SAMPLE;
        o.budget_rows = 500;
        o.epochs = 5;
        o.lr = 0.01;
        o.batch_size = 32;
        o.l2 = 0.5;
        o.seed = 0;
        o.test_dataset = "iris_test";
        o.order = DREAM_ORDER_ENTROPY;
        o.solver = DREAM_SOLVER_ADAM;
        resp.request_id = 1;
        resp.body_case = DREAM__V1__RESPONSE__BODY_TRAIN;
        resp.train = &tr;
        tr.job_id = 7;
        fake_send(&f, &resp);
        assert_int_equal(dream_train(f.c, "iris", &o, &job), 0);
        assert_int_equal(job, 7);
        req = fake_take_request(&f);
        assert_int_equal(req->body_case, DREAM__V1__REQUEST__BODY_TRAIN);
        assert_string_equal(req->train->dataset, "iris");
        assert_int_equal(req->train->model, DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX);
        assert_int_equal(req->train->mode, DREAM__V1__TRAIN_MODE__TRAIN_MODE_SAMPLE);
        assert_non_null(req->train->budget);
        assert_int_equal(req->train->budget->kind_case, DREAM__V1__BUDGET__KIND_ROWS);
        assert_int_equal(req->train->budget->rows, 500);
        assert_int_equal(req->train->epochs, 5);
        assert_true(req->train->lr == 0.01);
        assert_int_equal(req->train->batch_size, 32);
        assert_true(req->train->l2 == 0.5);
        assert_int_equal(req->train->seed, 0);
        assert_int_equal(req->train->n_hidden, 0);
        assert_int_equal(req->train->k, 0);
        assert_string_equal(req->train->test_dataset, "iris_test");
        assert_int_equal(req->train->order, DREAM__V1__BIT_ORDER__BIT_ORDER_ENTROPY);
        assert_int_equal(req->train->solver, DREAM__V1__SOLVER__SOLVER_ADAM);
        assert_int_equal(req->train->patience, 0);
        assert_false(req->train->early_stopping_off);
        proto_request_free(req);

        /* mlp with two hidden layers and a budget fraction; defaults stay 0. */
        dream_train_opts_default(&o);
        o.model = DREAM_MODEL_MLP;
        o.n_hidden = 2;
        o.hidden[0] = 256;
        o.hidden[1] = 128;
        o.budget_fraction = 0.1;
        resp.request_id = 2;
        tr.job_id = 8;
        fake_send(&f, &resp);
        assert_int_equal(dream_train(f.c, "fm", &o, &job), 0);
        assert_int_equal(job, 8);
        req = fake_take_request(&f);
        assert_int_equal(req->train->n_hidden, 2);
        assert_int_equal(req->train->hidden[0], 256);
        assert_int_equal(req->train->hidden[1], 128);
        assert_int_equal(req->train->budget->kind_case, DREAM__V1__BUDGET__KIND_FRACTION);
        assert_true(req->train->budget->fraction == 0.1);
        assert_int_equal(req->train->mode, 0);
        assert_int_equal(req->train->epochs, 0);
        assert_int_equal(req->train->seed, DREAM_TRAIN_DEFAULT_SEED);
        assert_string_equal(req->train->test_dataset, "");
        assert_int_equal(req->train->solver, 0);
        proto_request_free(req);

        /* patience, early stopping off; and a caller built before these
         * fields (its size ends at holdout) sends them as 0. */
        o.patience = 9;
        o.early_stopping_off = 1;
        resp.request_id = 3;
        tr.job_id = 9;
        fake_send(&f, &resp);
        assert_int_equal(dream_train(f.c, "fm", &o, &job), 0);
        req = fake_take_request(&f);
        assert_int_equal(req->train->patience, 9);
        assert_true(req->train->early_stopping_off);
        proto_request_free(req);
        o.size = offsetof(struct dream_train_opts, solver);
        o.solver = DREAM_SOLVER_ADAM;
        resp.request_id = 4;
        fake_send(&f, &resp);
        assert_int_equal(dream_train(f.c, "fm", &o, &job), 0);
        req = fake_take_request(&f);
        assert_int_equal(req->train->solver, 0);
        assert_int_equal(req->train->patience, 0);
        assert_false(req->train->early_stopping_off);
        proto_request_free(req);
        o.size = sizeof(o);

        /* A job id 0 is a protocol error. */
        resp.request_id = 5;
        tr.job_id = 0;
        fake_send(&f, &resp);
        assert_int_equal(dream_train(f.c, "fm", &o, &job), DREAM_E_PROTO);
        fake_close(&f);
}

static int count_cb(void *arg, const struct dream_job_info *j)
{
        int *n = arg;
        assert_int_equal(j->id, 5);
        (*n)++;
        return 0;
}

static void test_job_watch(void **state)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__JobInfo ji = DREAM__V1__JOB_INFO__INIT;
        Dream__V1__JobResult jr = DREAM__V1__JOB_RESULT__INIT;
        Dream__V1__ClassificationMetrics cm = DREAM__V1__CLASSIFICATION_METRICS__INIT;
        Dream__V1__Budget b = DREAM__V1__BUDGET__INIT;
        struct dream_job_info last = DREAM_INIT(struct dream_job_info);
        struct fake f;
        proto_request *req;
        int n = 0;
        (void)state;

        fake_open(&f, 5000);
        resp.request_id = 1;
        resp.body_case = DREAM__V1__RESPONSE__BODY_JOB_WATCH;
        resp.job_watch = &ji;
        ji.job_id = 5;
        ji.dataset = "iris";
        ji.model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX;
        ji.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED;
        b.kind_case = DREAM__V1__BUDGET__KIND_FRACTION;
        b.fraction = 0.25;
        ji.budget = &b;
        ji.epochs = 20;
        ji.state = DREAM__V1__JOB_STATE__JOB_STATE_QUEUED;
        ji.eta_seconds = -1;
        resp.more = 1;
        fake_send(&f, &resp);
        ji.state = DREAM__V1__JOB_STATE__JOB_STATE_RUNNING;
        ji.epoch = 1;
        ji.loss = 0.5;
        fake_send(&f, &resp);
        ji.state = DREAM__V1__JOB_STATE__JOB_STATE_DONE;
        ji.epoch = 20;
        ji.loss = 0.1;
        ji.result = &jr;
        jr.rows_used = 38;
        jr.prep_seconds = 0.25;
        jr.train_seconds = 0.5;
        jr.peak_train_bytes = 4096;
        jr.epochs = 20;
        jr.metrics_case = DREAM__V1__JOB_RESULT__METRICS_CLASSIFICATION;
        jr.classification = &cm;
        cm.accuracy = 0.96;
        cm.macro_f1 = 0.95;
        cm.logloss = 0.125;
        resp.more = 0;
        fake_send(&f, &resp);
        assert_int_equal(dream_job_watch(f.c, 5, count_cb, &n, &last), 0);
        assert_int_equal(n, 3);
        assert_int_equal(last.state, DREAM_JOB_DONE);
        assert_string_equal(last.dataset, "iris");
        assert_int_equal(last.model, DREAM_MODEL_SOFTMAX);
        assert_true(last.budget_fraction == 0.25);
        assert_int_equal(last.budget_rows, 0);
        assert_true(last.has_result);
        assert_int_equal(last.result.metrics, DREAM_METRICS_CLASSIFICATION);
        assert_true(last.result.accuracy == 0.96 && last.result.logloss == 0.125);
        assert_int_equal(last.result.rows_used, 38);
        assert_int_equal(last.error_code, 0);
        req = fake_take_request(&f);
        assert_int_equal(req->body_case, DREAM__V1__REQUEST__BODY_JOB_WATCH);
        assert_int_equal(req->job_watch->job_id, 5);
        proto_request_free(req);

        /* A failed job: its status mapped to an error code; status call. */
        ji.state = DREAM__V1__JOB_STATE__JOB_STATE_FAILED;
        ji.error = "train.lr: divergence";
        ji.error_code = DREAM__V1__STATUS__STATUS_NUMERIC;
        ji.result = NULL;
        resp.request_id = 2;
        resp.body_case = DREAM__V1__RESPONSE__BODY_JOB_STATUS;
        resp.job_watch = NULL;
        resp.job_status = &ji;
        fake_send(&f, &resp);
        assert_int_equal(dream_job_status(f.c, 5, &last), 0);
        assert_int_equal(last.state, DREAM_JOB_FAILED);
        assert_int_equal(last.error_code, DREAM_E_NUMERIC);
        assert_string_equal(last.error, "train.lr: divergence");
        assert_false(last.has_result);
        /* Job id 0 is refused before sending. */
        assert_int_equal(dream_job_status(f.c, 0, &last), DREAM_E_INVAL);
        /* An unknown job. */
        fake_reply(&f, 3, DREAM_E_NOTFOUND, "job_status.job_id: no job 9", 0, 0);
        assert_int_equal(dream_job_status(f.c, 9, &last), DREAM_E_NOTFOUND);
        assert_string_equal(dream_last_error(f.c), "job_status.job_id: no job 9");
        fake_close(&f);
}

static void test_predict_model_stats(void **state)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__PredictReply pr = DREAM__V1__PREDICT_REPLY__INIT;
        Dream__V1__ModelReply mr = DREAM__V1__MODEL_REPLY__INIT;
        Dream__V1__StatsReply sr = DREAM__V1__STATS_REPLY__INIT;
        Dream__V1__RequestTypeStats rt[2] = {DREAM__V1__REQUEST_TYPE_STATS__INIT,
                                             DREAM__V1__REQUEST_TYPE_STATS__INIT};
        Dream__V1__RequestTypeStats *rtp[2];
        Dream__V1__DatasetStats ds = DREAM__V1__DATASET_STATS__INIT, *dsp[1];
        static const int64_t col0[2] = {1, 2}, col1[2] = {150, 275};
        const struct dream_values vals[2] = {{DREAM_KIND_INT, 0, col0},
                                             {DREAM_KIND_DECIMAL, 2, col1}};
        const struct dream_rows rows = {2, 2, vals};
        const double values[2] = {1.5, -2};
        const float scores[6] = {0.25f, 0.5f, 0.25f, 1, 0, 0};
        uint8_t vb[16], sb[24];
        struct dream_prediction *p = NULL;
        struct dream_stats st = DREAM_INIT(struct dream_stats);
        proto_request *req;
        struct fake f;
        char *json = NULL;
        size_t len = 0;
        int64_t got[2];
        (void)state;

        fake_open(&f, 5000);
        for (int i = 0; i < 2; i++) {
                uint64_t u;
                memcpy(&u, &values[i], 8);
                for (int k = 0; k < 8; k++)
                        vb[i * 8 + k] = (uint8_t)(u >> (8 * k));
        }
        proto_f32_put(sb, scores, 6);
        resp.request_id = 1;
        resp.body_case = DREAM__V1__RESPONSE__BODY_PREDICT;
        resp.predict = &pr;
        pr.n = 2;
        pr.values.data = vb;
        pr.values.len = 16;
        pr.classes = 3;
        pr.scores.data = sb;
        pr.scores.len = 24;
        fake_send(&f, &resp);
        assert_int_equal(dream_predict(f.c, 4, &rows, &p), 0);
        assert_int_equal(p->n, 2);
        assert_int_equal(p->classes, 3);
        assert_true(p->values[0] == 1.5 && p->values[1] == -2);
        assert_true(p->scores[1] == 0.5f && p->scores[3] == 1);
        dream_prediction_free(p);
        p = NULL;
        req = fake_take_request(&f);
        assert_int_equal(req->body_case, DREAM__V1__REQUEST__BODY_PREDICT);
        assert_int_equal(req->predict->job_id, 4);
        assert_int_equal(req->predict->input_case, DREAM__V1__PREDICT__INPUT_ROWS);
        assert_int_equal(req->predict->rows->n_rows, 2);
        assert_int_equal(req->predict->rows->n_columns, 2);
        assert_int_equal(req->predict->rows->columns[1]->kind,
                         DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL);
        assert_int_equal(req->predict->rows->columns[1]->scale, 2);
        assert_int_equal(proto_values_read(&req->predict->rows->columns[1]->values, 2, got), 0);
        assert_true(got[0] == 150 && got[1] == 275);
        proto_request_free(req);

        /* Fewer rows predicted than sent: a protocol error. */
        pr.n = 1;
        pr.values.len = 8;
        pr.classes = 0;
        pr.scores.len = 0;
        resp.request_id = 2;
        fake_send(&f, &resp);
        assert_int_equal(dream_predict(f.c, 4, &rows, &p), DREAM_E_PROTO);
        fake_close(&f);

        fake_open(&f, 5000);
        resp.request_id = 1;
        resp.body_case = DREAM__V1__RESPONSE__BODY_GET_MODEL;
        resp.get_model = &mr;
        mr.json = "{\"format\":\"dream-model\"}";
        fake_send(&f, &resp);
        assert_int_equal(dream_get_model(f.c, 4, &json, &len), 0);
        assert_string_equal(json, "{\"format\":\"dream-model\"}");
        assert_int_equal(len, strlen(json));
        dream_free(json);

        resp.request_id = 2;
        resp.body_case = DREAM__V1__RESPONSE__BODY_STATS;
        resp.stats = &sr;
        sr.uptime_seconds = 11;
        sr.connections_open = 2;
        sr.jobs_running = 1;
        sr.jobs_queued = 3;
        sr.store_used_bytes = 1u << 20;
        sr.ingest_ack_p99_seconds = 0.5;
        sr.jobs_cancelled = 4;
        sr.train_seconds_total = 1.5;
        sr.n_requests_by_type = 2;
        sr.requests_by_type = rtp;
        rtp[0] = &rt[0];
        rtp[1] = &rt[1];
        rt[0].type = "hello";
        rt[0].requests = 3;
        rt[1].type = "stats";
        rt[1].requests = 1;
        rt[1].errors = 1;
        sr.n_dataset_stats = 1;
        sr.dataset_stats = dsp;
        dsp[0] = &ds;
        ds.name = "iris";
        ds.rows = 150;
        ds.stored_bytes = 8192;
        fake_send(&f, &resp);
        assert_int_equal(dream_stats(f.c, &st), 0);
        assert_int_equal(st.jobs_cancelled, 4);
        assert_true(st.train_seconds_total == 1.5);
        assert_int_equal(st.n_requests_by_type, 2);
        assert_string_equal(st.requests_by_type[1].type, "stats");
        assert_int_equal(st.requests_by_type[1].errors, 1);
        assert_int_equal(st.n_dataset_stats, 1);
        assert_string_equal(st.dataset_stats[0].name, "iris");
        assert_int_equal(st.dataset_stats[0].rows, 150);
        assert_int_equal(st.uptime_seconds, 11);
        assert_int_equal(st.connections_open, 2);
        assert_int_equal(st.jobs_running, 1);
        assert_int_equal(st.jobs_queued, 3);
        assert_int_equal(st.store_used_bytes, 1u << 20);
        assert_true(st.ingest_ack_p99_seconds == 0.5);
        dream_stats_release(&st);
        assert_null(st.requests_by_type);
        dream_stats_release(NULL);
        fake_close(&f);
}

/* Sized result structs (client.h, ABI): a caller compiled with an older,
 * smaller struct gets the fields it has filled and nothing written past
 * its size; arrays it has no member for are not handed over (nor leaked); a
 * forgotten size is refused before anything is sent. */
static void test_sized_results(void **state)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__FlushReply fl = DREAM__V1__FLUSH_REPLY__INIT;
        Dream__V1__StatsReply sr = DREAM__V1__STATS_REPLY__INIT;
        Dream__V1__DatasetStats ds = DREAM__V1__DATASET_STATS__INIT, *dsp[1] = {&ds};
        union {
                struct dream_flush_result r;
                unsigned char b[sizeof(struct dream_flush_result)];
        } fr;
        union {
                struct dream_stats s;
                unsigned char b[sizeof(struct dream_stats)];
        } st;
        const size_t fr_old = offsetof(struct dream_flush_result, rows_sealed);
        const size_t st_old = offsetof(struct dream_stats, n_requests_by_type);
        struct fake f;
        (void)state;

        fake_open(&f, 5000);
        memset(&fr, 0xaa, sizeof(fr));
        fr.r.size = 0;
        assert_int_equal(dream_flush(f.c, "d", &fr.r), DREAM_E_INVAL);
        assert_non_null(strstr(dream_last_error(f.c), "DREAM_INIT"));

        resp.request_id = 1; /* the refused call sent nothing */
        resp.body_case = DREAM__V1__RESPONSE__BODY_FLUSH;
        resp.flush = &fl;
        fl.segments_sealed = 3;
        fl.rows_sealed = 4000;
        fake_send(&f, &resp);
        fr.r.size = fr_old;
        assert_int_equal(dream_flush(f.c, "d", &fr.r), 0);
        assert_int_equal(fr.r.size, fr_old);
        assert_int_equal(fr.r.segments_sealed, 3);
        for (size_t i = fr_old; i < sizeof(fr); i++)
                assert_int_equal(fr.b[i], 0xaa);

        resp.request_id = 2;
        resp.body_case = DREAM__V1__RESPONSE__BODY_STATS;
        resp.stats = &sr;
        sr.uptime_seconds = 11;
        sr.train_seconds_total = 1.5;
        sr.n_dataset_stats = 1;
        sr.dataset_stats = dsp;
        ds.name = "iris";
        fake_send(&f, &resp);
        memset(&st, 0xaa, sizeof(st));
        st.s.size = st_old;
        assert_int_equal(dream_stats(f.c, &st.s), 0);
        assert_int_equal(st.s.uptime_seconds, 11);
        assert_true(st.s.train_seconds_total == 1.5);
        for (size_t i = st_old; i < sizeof(st); i++)
                assert_int_equal(st.b[i], 0xaa);
        dream_stats_release(&st.s);
        assert_int_equal(st.s.size, st_old);
        assert_int_equal(st.s.uptime_seconds, 0);
        for (size_t i = st_old; i < sizeof(st); i++)
                assert_int_equal(st.b[i], 0xaa);
        fake_close(&f);
}

static void test_job_names(void **state)
{
        enum dream_model m;
        enum dream_train_mode md;
        (void)state;

        assert_string_equal(dream_model_name(DREAM_MODEL_KMEANS), "kmeans");
        assert_string_equal(dream_model_name((enum dream_model)0), "unknown");
        assert_string_equal(dream_model_name((enum dream_model)99), "unknown");
        assert_string_equal(dream_train_mode_name(DREAM_TRAIN_EXACT), "exact");
        assert_string_equal(dream_job_state_name(DREAM_JOB_CANCELLED), "cancelled");
        assert_int_equal(dream_model_parse("ridge", &m), 0);
        assert_int_equal(m, DREAM_MODEL_RIDGE);
        assert_int_equal(dream_model_parse("Ridge", &m), DREAM_E_INVAL);
        assert_int_equal(dream_train_mode_parse("refresh", &md), 0);
        assert_int_equal(md, DREAM_TRAIN_REFRESH);
        assert_int_equal(dream_train_mode_parse("default", &md), DREAM_E_INVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_addr_ok),
            cmocka_unit_test(test_addr_bad),
            cmocka_unit_test(test_error_table),
            cmocka_unit_test(test_pipelined_out_of_order),
            cmocka_unit_test(test_error_response),
            cmocka_unit_test(test_unknown_id_is_protocol_error),
            cmocka_unit_test(test_garbage_and_eof),
            cmocka_unit_test(test_timeout),
            cmocka_unit_test(test_frame_limit),
            cmocka_unit_test(test_alloc_failures),
            cmocka_unit_test(test_train_request),
            cmocka_unit_test(test_job_watch),
            cmocka_unit_test(test_predict_model_stats),
            cmocka_unit_test(test_job_names),
            cmocka_unit_test(test_sized_results),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
