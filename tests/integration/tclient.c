#include "tclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void tc_connect(struct tc *c, uint16_t port)
{
        struct sockaddr_in a;
        int one = 1;

        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(c->fd >= 0);
        CHECK(connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        frame_decoder_init(&c->dec, UINT32_MAX - 4);
}

void tc_connect_unix(struct tc *c, const char *path)
{
        struct sockaddr_un a;

        memset(&a, 0, sizeof(a));
        a.sun_family = AF_UNIX;
        CHECK(strlen(path) < sizeof(a.sun_path));
        strcpy(a.sun_path, path);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(c->fd >= 0);
        CHECK(connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0);
        frame_decoder_init(&c->dec, UINT32_MAX - 4);
}

void tc_close(struct tc *c)
{
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        frame_decoder_release(&c->dec);
}

int tc_send_raw(struct tc *c, const void *p, size_t n)
{
        const uint8_t *b = p;

        while (n) {
                ssize_t r = send(c->fd, b, n, MSG_NOSIGNAL);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                b += r;
                n -= (size_t)r;
        }
        return 0;
}

int tc_send(struct tc *c, Dream__V1__Request *req)
{
        struct dm_buf b;
        int r;

        dm_buf_init(&b);
        CHECK(frame_encode(&b, &req->base, UINT32_MAX - 4) == 0);
        r = tc_send_raw(c, b.data, b.len);
        dm_buf_release(&b);
        return r;
}

static long long ms_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000ll + ts.tv_nsec / 1000000;
}

int tc_recv(struct tc *c, proto_response **ret, int timeout_ms)
{
        long long deadline = ms_now() + timeout_ms;
        static _Thread_local uint8_t buf[1 << 16]; /* (tests call from several threads) */

        for (;;) {
                const uint8_t *msg;
                uint32_t len;
                int r = frame_decoder_next(&c->dec, &msg, &len);

                CHECK(r >= 0);
                if (r == 1) {
                        char err[256];
                        proto_response *resp = NULL;
                        r = proto_response_decode(msg, len, err, sizeof(err), &resp);
                        if (r < 0) {
                                fprintf(stderr, "bad response: %s\n", err);
                                abort();
                        }
                        *ret = resp;
                        return 1;
                }
                long long left = deadline - ms_now();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd pfd = {c->fd, POLLIN, 0};
                r = poll(&pfd, 1, (int)left);
                if (r == 0)
                        return -ETIMEDOUT;
                ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return 0;
                CHECK(frame_decoder_feed(&c->dec, buf, (size_t)n) == 0);
        }
}

proto_response *tc_call(struct tc *c, Dream__V1__Request *req)
{
        proto_response *resp = NULL;

        CHECK(tc_send(c, req) == 0);
        CHECK(tc_recv(c, &resp, 20000) == 1);
        CHECK(resp->request_id == req->request_id);
        return resp;
}

bool tc_wait_closed(struct tc *c, int timeout_ms)
{
        long long deadline = ms_now() + timeout_ms;
        uint8_t buf[4096];

        for (;;) {
                long long left = deadline - ms_now();
                struct pollfd pfd = {c->fd, POLLIN, 0};
                if (left <= 0)
                        return false;
                if (poll(&pfd, 1, (int)left) <= 0)
                        return false;
                ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
                if (n <= 0)
                        return true;
        }
}

void tc_hello(struct tc *c, const char *token, int expect_code)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Hello h = DREAM__V1__HELLO__INIT;
        proto_response *resp;

        h.protocol_version = DREAM_PROTOCOL_VERSION;
        h.client_name = "integration-test";
        h.token = (char *)(token ? token : "");
        req.request_id = 1;
        req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
        req.hello = &h;
        resp = tc_call(c, &req);
        CHECK((int)resp->code == expect_code);
        proto_response_free(resp);
}

int tc_call_code(struct tc *c, Dream__V1__Request *req, int timeout_ms)
{
        int code = -2;

        if (tc_send(c, req) < 0)
                return -1;
        for (;;) {
                proto_response *resp = NULL;
                bool more;

                if (tc_recv(c, &resp, timeout_ms) != 1)
                        return -1;
                if (resp->request_id != req->request_id) {
                        proto_response_free(resp);
                        continue;
                }
                if (code == -2 || (code == 0 && resp->code != 0))
                        code = (int)resp->code;
                more = resp->more && resp->code == 0;
                proto_response_free(resp);
                if (!more)
                        return code;
        }
}

unsigned tc_failures;

double tc_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tc_raise_nofile(unsigned long want)
{
        struct rlimit rl;

        CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
        if (rl.rlim_cur >= want)
                return;
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
}

proto_response *tc_describe(struct tc *c, const char *name, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__DescribeDataset dd = DREAM__V1__DESCRIBE_DATASET__INIT;

        dd.name = (char *)name;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_DESCRIBE_DATASET;
        req.describe_dataset = &dd;
        return tc_call(c, &req);
}
