/* Limits that keep one client from starving the others (issue 11).
 *
 * Usage: test_limits GROUP
 *   prehello  token file: 16 connections announce a 60 MiB frame without a
 *             hello and send 4 MiB of it. Each is answered STATUS_PROTOCOL
 *             ("before authentication") and closed; dreamd's peak RSS
 *             (VmHWM) grows by less than 24 MiB; a right hello still works.
 *   budget    no token file, --max-frame 8 MiB, --max-buffered-bytes 16 MiB:
 *             16 connections announce an 8 MiB frame and send 7.5 MiB of it.
 *             Peak RSS grows by less than 48 MiB (not 16 x 7.5 MiB), a small
 *             request meanwhile is answered, the frames that were read time
 *             out with STATUS_TIMEOUT, and once the senders are gone an 8 MiB
 *             frame from a new client is read and answered.
 *   hellos    token file: a thread guesses wrong tokens flat out, first from
 *             127.0.0.2, then from 127.0.0.1; meanwhile a client on 127.0.0.1
 *             makes 40, then 5, hellos with the right token: all succeed.
 *   peerconns --max-connections 64, --max-peer-connections 16: 70 silent
 *             connections from 127.0.0.2 get 16 slots (the others BUSY);
 *             127.0.0.1 is still served; the silent ones are closed within
 *             frame_timeout (1 s) with STATUS_AUTH although they sent nothing.
 *   metrics   300 half-sent HTTP requests to /metrics from 127.0.0.1: GET
 *             /metrics from 127.0.0.2 still answers at once, and from
 *             127.0.0.1 within 5 s.
 * DREAMD in the environment is the daemon's path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tclient.h"

#define TOKEN "limits-test-token-27182"

/* Connect from `src` (a loopback address) to 127.0.0.1:port; -1 when the
 * connection failed. */
static int connect_from(const char *src, uint16_t port)
{
        struct sockaddr_in a, b;
        int fd, one = 1;

        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        memset(&b, 0, sizeof(b));
        b.sin_family = AF_INET;
        CHECK(inet_pton(AF_INET, src, &b.sin_addr) == 1);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(bind(fd, (struct sockaddr *)&b, sizeof(b)) == 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
                close(fd);
                return -1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

static void tc_from(struct tc *c, const char *src, uint16_t port)
{
        c->fd = connect_from(src, port);
        CHECK(c->fd >= 0);
        frame_decoder_init(&c->dec, UINT32_MAX - 4);
}

static int hello_code(struct tc *c, const char *token, uint64_t id, int timeout_ms)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Hello h = DREAM__V1__HELLO__INIT;

        h.protocol_version = DREAM_PROTOCOL_VERSION;
        h.client_name = "limits-test";
        h.token = (char *)token;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
        req.hello = &h;
        return tc_call_code(c, &req, timeout_ms);
}

static int list_code(struct tc *c, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__ListDatasets ld = DREAM__V1__LIST_DATASETS__INIT;

        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_LIST_DATASETS;
        req.list_datasets = &ld;
        return tc_call_code(c, &req, 10000);
}

static void start(struct tdaemon *d, char *dir, bool tokens, const char *const *more)
{
        char tokpath[300], data[300];
        const char *extra[32];
        int n = 0;

        snprintf(tokpath, sizeof(tokpath), "%s/tokens", dir);
        snprintf(data, sizeof(data), "%s/data", dir);
        if (tokens) {
                FILE *f = fopen(tokpath, "w");
                CHECK(f && fprintf(f, "%s\n", TOKEN) > 0 && fclose(f) == 0);
                extra[n++] = "--token-file";
                extra[n++] = tokpath;
        }
        extra[n++] = "--log-level";
        extra[n++] = "error";
        for (; more && *more; more++)
                extra[n++] = *more;
        extra[n] = NULL;
        CHECK(td_spawn(d, data, NULL, extra, NULL) == 0);
}

/* ---- large frames -------------------------------------------------------- */

struct sender {
        struct tc c;
        size_t sent, target;
        bool open;
        int code; /* first response's status, -1 none */
        char msg[200];
};

/* Read what is there without blocking: the first response, or the close. */
static void sender_pump(struct sender *p)
{
        uint8_t buf[4096];

        while (p->open) {
                ssize_t n = recv(p->c.fd, buf, sizeof(buf), MSG_DONTWAIT);
                const uint8_t *msg;
                uint32_t len;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                if (n <= 0) {
                        p->open = false;
                        return;
                }
                CHECK(frame_decoder_feed(&p->c.dec, buf, (size_t)n) == 0);
                while (frame_decoder_next(&p->c.dec, &msg, &len) == 1) {
                        proto_response *resp = NULL;
                        char err[128];

                        CHECK(proto_response_decode(msg, len, err, sizeof(err), &resp) == 0);
                        if (p->code < 0) {
                                p->code = (int)resp->code;
                                snprintf(p->msg, sizeof(p->msg), "%s",
                                         resp->message ? resp->message : "");
                        }
                        proto_response_free(resp);
                }
        }
}

/* Open n connections, each announcing a frame of `announce` bytes and
 * sending `target` bytes of it (what the kernel takes without blocking for
 * 0.5 s counts as sent). */
static void senders_run(struct sender *ps, int n, uint16_t port, uint32_t announce, size_t target)
{
        static uint8_t junk[1 << 16];
        double idle_since = 0;

        memset(junk, 0x5a, sizeof(junk));
        for (int i = 0; i < n; i++) {
                uint8_t hdr[FRAME_HEADER_SIZE];

                tc_from(&ps[i].c, "127.0.0.1", port);
                ps[i].open = true;
                ps[i].code = -1;
                ps[i].target = target;
                frame_header_put(hdr, announce);
                CHECK(tc_send_raw(&ps[i].c, hdr, sizeof(hdr)) == 0);
                CHECK(fcntl(ps[i].c.fd, F_SETFL, O_NONBLOCK) == 0);
        }
        for (;;) {
                bool progress = false, left = false;

                for (int i = 0; i < n; i++) {
                        struct sender *p = &ps[i];
                        size_t k;
                        ssize_t w;

                        sender_pump(p);
                        if (!p->open || p->sent >= p->target)
                                continue;
                        left = true;
                        k = p->target - p->sent < sizeof(junk) ? p->target - p->sent : sizeof(junk);
                        w = send(p->c.fd, junk, k, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (w > 0) {
                                p->sent += (size_t)w;
                                progress = true;
                        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                                   errno != EINTR) {
                                p->open = false; /* closed by the server */
                        }
                }
                if (!left)
                        break;
                if (progress) {
                        idle_since = 0;
                } else if (idle_since == 0) {
                        idle_since = tc_now();
                } else if (tc_now() - idle_since > 0.5) {
                        break;
                } else {
                        struct timespec ts = {0, 2 * 1000000L};
                        nanosleep(&ts, NULL);
                }
        }
}

#define N_PRE 16

static void test_prehello(void)
{
        static struct sender ps[N_PRE];
        char dir[] = "/tmp/dreamd-limits-XXXXXX";
        struct tdaemon d;
        long before, peak;
        unsigned closed = 0, clear = 0;
        struct tc c;
        double t0;

        CHECK(mkdtemp(dir) != NULL);
        start(&d, dir, true, NULL);
        before = td_status_kb(&d, "VmRSS");
        CHECK(before > 0);
        senders_run(ps, N_PRE, d.port, 60u << 20, 4u << 20);
        t0 = tc_now();
        while (tc_now() - t0 < 5) {
                unsigned open = 0;
                for (int i = 0; i < N_PRE; i++) {
                        sender_pump(&ps[i]);
                        open += ps[i].open;
                }
                if (!open)
                        break;
                usleep(10000);
        }
        peak = td_status_kb(&d, "VmHWM");
        CHECK(peak > 0);
        for (int i = 0; i < N_PRE; i++) {
                closed += !ps[i].open;
                clear += ps[i].code == DREAM__V1__STATUS__STATUS_PROTOCOL &&
                         strstr(ps[i].msg, "before authentication") != NULL;
                tc_close(&ps[i].c);
        }
        if (peak - before > 24 * 1024)
                FAILF("peak RSS grew by %ld KiB with %d unauthenticated 60 MiB frames",
                      peak - before, N_PRE);
        if (closed != N_PRE || clear != N_PRE)
                FAILF(
                    "%u of %d closed, %u answered STATUS_PROTOCOL 'before authentication' (first: "
                    "%d '%s')",
                    closed, N_PRE, clear, ps[0].code, ps[0].msg);
        tc_from(&c, "127.0.0.1", d.port);
        if (hello_code(&c, TOKEN, 1, 10000) != DREAM__V1__STATUS__STATUS_OK)
                FAILF("a right hello after the attack failed");
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        td_rmtree(dir);
        fprintf(stderr,
                "prehello: RSS %ld KiB before, peak %ld KiB with %d x 4 MiB sent of 60 MiB "
                "frames; %u closed with a clear error\n",
                before, peak, N_PRE, clear);
}

#define N_BUDGET 16

static void test_budget(void)
{
        static struct sender ps[N_BUDGET];
        char dir[] = "/tmp/dreamd-limits-XXXXXX";
        const char *more[] = {"--max-frame", "8388608",         "--max-buffered-bytes",
                              "16777216",    "--frame-timeout", "1.5",
                              NULL};
        struct tdaemon d;
        long before, peak;
        unsigned timeouts = 0;
        struct tc c;
        double t0;
        int code;

        CHECK(mkdtemp(dir) != NULL);
        start(&d, dir, false, more);
        before = td_status_kb(&d, "VmRSS");
        CHECK(before > 0);
        senders_run(ps, N_BUDGET, d.port, 8u << 20, (15u << 20) / 2);
        peak = td_status_kb(&d, "VmHWM");
        CHECK(peak > 0);
        if (peak - before > 48 * 1024)
                FAILF("peak RSS grew by %ld KiB with %d x 7.5 MiB of 8 MiB frames (budget 16 MiB)",
                      peak - before, N_BUDGET);
        /* A small request is not held up by the budget. */
        tc_from(&c, "127.0.0.1", d.port);
        code = list_code(&c, 7);
        if (code != DREAM__V1__STATUS__STATUS_OK)
                FAILF("a small request during the attack answered %d", code);
        tc_close(&c);
        /* The frames that were read time out and their connections close
         * with a clear error. */
        t0 = tc_now();
        while (tc_now() - t0 < 4 && timeouts < 2) {
                timeouts = 0;
                for (int i = 0; i < N_BUDGET; i++) {
                        sender_pump(&ps[i]);
                        timeouts += ps[i].code == DREAM__V1__STATUS__STATUS_TIMEOUT &&
                                    strstr(ps[i].msg, "not completed") != NULL;
                }
                usleep(10000);
        }
        if (timeouts < 2)
                FAILF("%u of the frames being read were closed with STATUS_TIMEOUT", timeouts);
        for (int i = 0; i < N_BUDGET; i++)
                tc_close(&ps[i].c);
        /* A full-size frame is read again once the senders are gone: junk
         * that is not a Request, answered as such. */
        {
                static uint8_t big[(8u << 20) + FRAME_HEADER_SIZE];
                proto_response *r = NULL;

                memset(big, 0xff, sizeof(big));
                frame_header_put(big, 8u << 20);
                tc_from(&c, "127.0.0.1", d.port);
                CHECK(tc_send_raw(&c, big, sizeof(big)) == 0);
                if (tc_recv(&c, &r, 10000) != 1 || !strstr(r->message, "not a valid"))
                        FAILF("an 8 MiB frame after the attack: %s", r ? r->message : "no answer");
                proto_response_free(r);
                tc_close(&c);
        }
        CHECK(td_stop(&d) == 0);
        td_rmtree(dir);
        fprintf(stderr,
                "budget: RSS %ld KiB before, peak %ld KiB with %d x 7.5 MiB sent of 8 MiB frames "
                "(budget 16 MiB); %u closed with STATUS_TIMEOUT\n",
                before, peak, N_BUDGET, timeouts);
}

/* ---- wrong tokens ------------------------------------------------------------ */

struct guesser {
        uint16_t port;
        const char *src;
        atomic_bool stop; /* set by the main thread */
        unsigned guesses, busy;
};

static void *guess_thread(void *arg)
{
        struct guesser *g = arg;
        uint64_t id = 1;

        while (!g->stop) {
                struct tc c;

                c.fd = connect_from(g->src, g->port);
                if (c.fd < 0)
                        continue;
                frame_decoder_init(&c.dec, UINT32_MAX - 4);
                for (int i = 0; i < 3 && !g->stop; i++) {
                        int code = hello_code(&c, "wrong-guess", id++, 5000);
                        if (code == DREAM__V1__STATUS__STATUS_AUTH)
                                g->guesses++;
                        else if (code == DREAM__V1__STATUS__STATUS_BUSY)
                                g->busy++;
                        if (code != DREAM__V1__STATUS__STATUS_AUTH)
                                break;
                }
                tc_close(&c);
        }
        return NULL;
}

static unsigned right_hellos(uint16_t port, int n, double *ret_max)
{
        unsigned ok = 0;

        *ret_max = 0;
        for (int i = 0; i < n; i++) {
                struct tc c;
                double t = tc_now();

                tc_from(&c, "127.0.0.1", port);
                ok += hello_code(&c, TOKEN, 1, 5000) == DREAM__V1__STATUS__STATUS_OK;
                tc_close(&c);
                if (tc_now() - t > *ret_max)
                        *ret_max = tc_now() - t;
                usleep(20000);
        }
        return ok;
}

static void test_hellos(void)
{
        char dir[] = "/tmp/dreamd-limits-XXXXXX";
        const char *srcs[2] = {"127.0.0.2", "127.0.0.1"};
        const int n[2] = {40, 3};
        struct tdaemon d;

        CHECK(mkdtemp(dir) != NULL);
        start(&d, dir, true, NULL);
        for (int k = 0; k < 2; k++) {
                struct guesser g = {.port = d.port, .src = srcs[k]};
                pthread_t th;
                unsigned ok;
                double slowest;

                CHECK(pthread_create(&th, NULL, guess_thread, &g) == 0);
                usleep(300000); /* the guessing is under way */
                ok = right_hellos(d.port, n[k], &slowest);
                g.stop = true;
                CHECK(pthread_join(th, NULL) == 0);
                if (ok != (unsigned)n[k])
                        FAILF("guessing from %s: %u of %d right hellos from 127.0.0.1 succeeded",
                              srcs[k], ok, n[k]);
                if (g.busy == 0)
                        FAILF("guessing from %s: %u wrong tokens compared, none held", srcs[k],
                              g.guesses);
                fprintf(stderr,
                        "hellos: guessing from %s (%u compared, %u held and refused): %u of %d "
                        "right hellos ok, slowest %.2f s\n",
                        srcs[k], g.guesses, g.busy, ok, n[k], slowest);
                if (k == 0)
                        usleep(1100000); /* the guesser's second is over */
        }
        CHECK(td_stop(&d) == 0);
        td_rmtree(dir);
}

/* ---- connections per peer -------------------------------------------------- */

#define N_SILENT 70

static void test_peerconns(void)
{
        static struct sender ps[N_SILENT];
        char dir[] = "/tmp/dreamd-limits-XXXXXX";
        const char *more[] = {"--max-connections",
                              "64",
                              "--max-peer-connections",
                              "16",
                              "--frame-timeout",
                              "1",
                              NULL};
        unsigned busy = 0, authclosed = 0, open = 0;
        struct tdaemon d;
        struct tc c;
        double t0;

        tc_raise_nofile(1024);
        CHECK(mkdtemp(dir) != NULL);
        start(&d, dir, true, more);
        for (int i = 0; i < N_SILENT; i++) {
                tc_from(&ps[i].c, "127.0.0.2", d.port);
                ps[i].open = true;
                ps[i].code = -1;
        }
        tc_from(&c, "127.0.0.1", d.port);
        if (hello_code(&c, TOKEN, 1, 5000) != DREAM__V1__STATUS__STATUS_OK)
                FAILF("127.0.0.1 was not served while 127.0.0.2 held %d connections", N_SILENT);
        tc_close(&c);
        t0 = tc_now();
        do {
                open = 0;
                for (int i = 0; i < N_SILENT; i++) {
                        sender_pump(&ps[i]);
                        open += ps[i].open;
                }
                usleep(10000);
        } while (open && tc_now() - t0 < 4);
        for (int i = 0; i < N_SILENT; i++) {
                busy += ps[i].code == DREAM__V1__STATUS__STATUS_BUSY &&
                        strstr(ps[i].msg, "127.0.0.2") != NULL;
                authclosed += ps[i].code == DREAM__V1__STATUS__STATUS_AUTH &&
                              strstr(ps[i].msg, "within") != NULL;
                tc_close(&ps[i].c);
        }
        if (busy != N_SILENT - 16 || authclosed != 16 || open)
                FAILF("%u refused BUSY naming 127.0.0.2 (expected %d), %u closed for no hello "
                      "(expected 16), %u still open after 4 s",
                      busy, N_SILENT - 16, authclosed, open);
        CHECK(td_stop(&d) == 0);
        td_rmtree(dir);
        fprintf(stderr,
                "peerconns: %u refused BUSY, %u silent closed by frame_timeout, 127.0.0.1 "
                "served\n",
                busy, authclosed);
}

/* ---- /metrics ------------------------------------------------------------------ */

#define N_HALF 300

/* GET /metrics from src with a short deadline: the HTTP status, or -1. */
static int http_status(const char *src, uint16_t port, int timeout_ms)
{
        static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        char buf[4096];
        size_t len = 0;
        int fd = connect_from(src, port), status = -1;
        double t0 = tc_now();

        if (fd < 0)
                return -1;
        if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
                goto out;
        while (len < sizeof(buf) - 1) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int left = timeout_ms - (int)((tc_now() - t0) * 1000);
                ssize_t n;

                if (left <= 0 || poll(&p, 1, left) <= 0)
                        break;
                n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
                if (n <= 0)
                        break;
                len += (size_t)n;
                buf[len] = '\0';
                if (sscanf(buf, "HTTP/1.%*d %d", &status) == 1)
                        break;
        }
out:
        close(fd);
        return status;
}

static void test_metrics(void)
{
        static int fds[N_HALF];
        char dir[] = "/tmp/dreamd-limits-XXXXXX", pf[300], text[1024];
        const char *more[] = {"--metrics-listen", "127.0.0.1:0", "--port-file", pf, NULL};
        unsigned mport = 0, opened = 0;
        double t0, other = -1, same = -1;
        struct tdaemon d;
        const char *line;
        FILE *f;
        size_t n;

        tc_raise_nofile(2048);
        CHECK(mkdtemp(dir) != NULL);
        snprintf(pf, sizeof(pf), "%s/port", dir);
        start(&d, dir, false, more);
        f = fopen(pf, "r");
        CHECK(f != NULL);
        n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
        line = strstr(text, "metrics on http://127.0.0.1:");
        CHECK(line && sscanf(line, "metrics on http://127.0.0.1:%u/metrics", &mport) == 1);
        CHECK(http_status("127.0.0.1", (uint16_t)mport, 5000) == 200);
        for (int i = 0; i < N_HALF; i++) {
                static const char half[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
                fds[i] = connect_from("127.0.0.1", (uint16_t)mport);
                if (fds[i] < 0)
                        continue;
                opened++;
                (void)send(fds[i], half, sizeof(half) - 1, MSG_NOSIGNAL);
        }
        t0 = tc_now();
        while (tc_now() - t0 < 8 && (other < 0 || same < 0)) {
                if (other < 0 && http_status("127.0.0.2", (uint16_t)mport, 500) == 200)
                        other = tc_now() - t0;
                if (same < 0 && http_status("127.0.0.1", (uint16_t)mport, 500) == 200)
                        same = tc_now() - t0;
        }
        if (other < 0 || other > 1.5)
                FAILF("/metrics from 127.0.0.2 during %u half-sent requests: %s %.1f s", opened,
                      other < 0 ? "not served in" : "served after", other < 0 ? 8.0 : other);
        if (same < 0 || same > 5)
                FAILF("/metrics from 127.0.0.1 during %u half-sent requests: %s %.1f s", opened,
                      same < 0 ? "not served in" : "served after", same < 0 ? 8.0 : same);
        for (int i = 0; i < N_HALF; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        CHECK(td_stop(&d) == 0);
        td_rmtree(dir);
        fprintf(stderr,
                "metrics: %u half-sent requests from 127.0.0.1; /metrics served to 127.0.0.2 "
                "after %.2f s, to 127.0.0.1 after %.2f s\n",
                opened, other, same);
}

int main(int argc, char **argv)
{
        const char *g = argc > 1 ? argv[1] : "";

        signal(SIGPIPE, SIG_IGN);
        if (strcmp(g, "prehello") == 0)
                test_prehello();
        else if (strcmp(g, "budget") == 0)
                test_budget();
        else if (strcmp(g, "hellos") == 0)
                test_hellos();
        else if (strcmp(g, "peerconns") == 0)
                test_peerconns();
        else if (strcmp(g, "metrics") == 0)
                test_metrics();
        else {
                fprintf(stderr, "usage: test_limits prehello|budget|hellos|peerconns|metrics\n");
                return 2;
        }
        if (tc_failures) {
                fprintf(stderr, "%s: %u failures\n", g, tc_failures);
                return 1;
        }
        fprintf(stderr, "%s: ok\n", g);
        return 0;
}
