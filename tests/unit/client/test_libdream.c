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
        struct dream_connect_opts o;
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
        struct dream_connect_opts o;
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
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
