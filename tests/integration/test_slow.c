/* Slow and idle clients (issue 7, item 5): functional properties only (the
 * latency figures are in bench/load: bench_load slow).
 *
 * Usage: test_slow GROUP
 *   dribble  a dreamd with a token file, --frame-timeout 3, --idle-timeout 4
 *            and a connection cap: 1,000 connections dribble a frame one byte
 *            per second and 50 connect and never say anything; one normal
 *            client works meanwhile. The cap holds (one connection more is
 *            refused with STATUS_BUSY and closed); every dribbler is answered
 *            STATUS_TIMEOUT (frame deadline) or STATUS_AUTH (no hello within
 *            the same time) and closed, every silent one closed by then too;
 *            the normal client's requests
 *            all succeed; afterwards new connections are served.
 *   unauth   connections that never authenticate but keep sending requests
 *            (each answered STATUS_AUTH) are closed by a deadline too.
 * DREAMD in the environment is the daemon's path.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tclient.h"

#define N_DRIBBLE 1000
#define N_SILENT  50
#define N_UNAUTH  20
#define TOKEN     "slow-test-token-31415"

struct peer {
        struct tc c;
        bool open;
        bool got_timeout; /* a STATUS_TIMEOUT response arrived */
        int got_other;    /* other responses */
        double closed_at;
        size_t sent; /* bytes of the dribbled frame sent */
};

/* Read what is there without blocking: responses, or the close. */
static void pump(struct peer *p, double t)
{
        uint8_t buf[4096];

        for (;;) {
                ssize_t n = recv(p->c.fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                if (n <= 0) {
                        p->open = false;
                        p->closed_at = t;
                        return;
                }
                CHECK(frame_decoder_feed(&p->c.dec, buf, (size_t)n) == 0);
                for (;;) {
                        const uint8_t *msg;
                        uint32_t len;
                        proto_response *resp = NULL;
                        char err[128];

                        if (frame_decoder_next(&p->c.dec, &msg, &len) != 1)
                                break;
                        CHECK(proto_response_decode(msg, len, err, sizeof(err), &resp) == 0);
                        /* The frame deadline, or the authentication deadline
                         * (also frame_timeout) of a connection without hello:
                         * whichever the sweep sees first. */
                        if (resp->code == DREAM__V1__STATUS__STATUS_TIMEOUT ||
                            (resp->code == DREAM__V1__STATUS__STATUS_AUTH &&
                             strstr(resp->message, "within")))
                                p->got_timeout = true;
                        else
                                p->got_other++;
                        proto_response_free(resp);
                }
        }
}

static bool normal_call(struct tc *c, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__ListDatasets ld = DREAM__V1__LIST_DATASETS__INIT;

        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_LIST_DATASETS;
        req.list_datasets = &ld;
        return tc_call_code(c, &req, 20000) == DREAM__V1__STATUS__STATUS_OK;
}

static void start(struct tdaemon *d, char *dir, const char *max_conns)
{
        char tokpath[300], data[300];
        FILE *f;

        snprintf(tokpath, sizeof(tokpath), "%s/tokens", dir);
        snprintf(data, sizeof(data), "%s/data", dir);
        f = fopen(tokpath, "w");
        CHECK(f && fprintf(f, "%s\n", TOKEN) > 0 && fclose(f) == 0);
        {
                const char *extra[] = {"--token-file",
                                       tokpath,
                                       "--frame-timeout",
                                       "3",
                                       "--idle-timeout",
                                       "4",
                                       "--max-connections",
                                       max_conns,
                                       "--max-peer-connections", /* all from 127.0.0.1 */
                                       max_conns,
                                       "--log-level",
                                       "warn",
                                       NULL};
                CHECK(td_spawn(d, data, NULL, extra, NULL) == 0);
        }
}

static void test_dribble(void)
{
        static struct peer peers[N_DRIBBLE + N_SILENT];
        const int n = N_DRIBBLE + N_SILENT;
        /* A frame of a Hello, announced in full, sent one byte per second. */
        const uint8_t frame[16] = {0, 0, 0, 12, 0x08, 0x01, 0x82, 0x01, 0x07, 0x08, 0x01};
        char dir[] = "/tmp/dreamd-slow-XXXXXX", cap[16];
        struct tdaemon d;
        struct tc normal, extra;
        proto_response *r = NULL;
        double t0, last_tick, last_normal;
        unsigned normal_ok = 0, normal_bad = 0, open_left;
        double max_dribble = 0, max_silent = 0;

        CHECK(mkdtemp(dir) != NULL);
        tc_raise_nofile(4096);
        /* The cap: exactly the connections of this test. */
        snprintf(cap, sizeof(cap), "%d", n + 1);
        start(&d, dir, cap);
        tc_connect(&normal, d.port);
        tc_hello(&normal, TOKEN, DREAM__V1__STATUS__STATUS_OK);
        t0 = tc_now();
        for (int i = 0; i < n; i++) {
                tc_connect(&peers[i].c, d.port);
                peers[i].open = true;
                if (i < N_DRIBBLE) {
                        CHECK(tc_send_raw(&peers[i].c, frame, 1) == 0);
                        peers[i].sent = 1;
                }
        }
        fprintf(stderr, "dribble: %d connections opened in %.2f s\n", n, tc_now() - t0);
        /* Let the loop accept the backlog, then one more is refused. */
        CHECK(normal_call(&normal, 2));
        tc_connect(&extra, d.port);
        if (tc_recv(&extra, &r, 5000) != 1 || r->code != DREAM__V1__STATUS__STATUS_BUSY)
                FAILF("connection %d beyond the cap of %s was not refused with STATUS_BUSY", n + 2,
                      cap);
        else if (!tc_wait_closed(&extra, 5000))
                FAILF("the refused connection was not closed");
        if (r)
                proto_response_free(r);
        tc_close(&extra);

        last_tick = last_normal = tc_now();
        for (;;) {
                double t = tc_now();
                open_left = 0;
                for (int i = 0; i < n; i++) {
                        if (!peers[i].open)
                                continue;
                        pump(&peers[i], t - t0);
                        if (peers[i].open)
                                open_left++;
                }
                if (open_left == 0 || t - t0 > 12)
                        break;
                if (t - last_tick >= 1.0) {
                        for (int i = 0; i < N_DRIBBLE; i++)
                                if (peers[i].open && peers[i].sent < sizeof(frame) - 1) {
                                        if (tc_send_raw(&peers[i].c, frame + peers[i].sent, 1) == 0)
                                                peers[i].sent++;
                                }
                        last_tick = t;
                }
                if (t - last_normal >= 0.2) {
                        if (normal_call(&normal, 3))
                                normal_ok++;
                        else
                                normal_bad++;
                        last_normal = t;
                }
                {
                        struct timespec ts = {0, 20 * 1000000L};
                        nanosleep(&ts, NULL);
                }
        }
        if (open_left)
                FAILF("%u slow or silent connections still open after 12 s", open_left);
        {
                unsigned no_timeout = 0;
                for (int i = 0; i < n; i++) {
                        if (i < N_DRIBBLE) {
                                if (!peers[i].got_timeout)
                                        no_timeout++;
                                if (peers[i].closed_at > max_dribble)
                                        max_dribble = peers[i].closed_at;
                        } else if (peers[i].closed_at > max_silent) {
                                max_silent = peers[i].closed_at;
                        }
                        if (peers[i].got_other && i < N_DRIBBLE)
                                FAILF("connection %d got %d unexpected responses", i,
                                      peers[i].got_other);
                }
                if (no_timeout)
                        FAILF("%u dribblers closed without a STATUS_TIMEOUT answer", no_timeout);
        }
        if (normal_bad)
                FAILF("the normal client had %u failed requests", normal_bad);
        /* The normal client is still connected and served; new ones too. */
        if (!normal_call(&normal, 4))
                FAILF("the normal client is not served after the storm");
        for (int i = 0; i < 3; i++) {
                tc_connect(&extra, d.port);
                tc_hello(&extra, TOKEN, DREAM__V1__STATUS__STATUS_OK);
                tc_close(&extra);
        }
        for (int i = 0; i < n; i++)
                tc_close(&peers[i].c);
        tc_close(&normal);
        CHECK(td_stop(&d) == 0);
        td_rmtree(dir);
        fprintf(stderr,
                "dribble: %d dribblers closed by %.1f s (frame deadline 3 s), %d silent by %.1f s "
                "(idle deadline 4 s); cap %s held; normal client %u requests ok, %u failed\n",
                N_DRIBBLE, max_dribble, N_SILENT, max_silent, cap, normal_ok, normal_bad);
}

static void test_unauth(void)
{
        static struct peer peers[N_UNAUTH];
        char dir[] = "/tmp/dreamd-unauth-XXXXXX";
        struct tdaemon d;
        double t0, last = 0, max_closed = 0;
        unsigned open_left = 0;
        uint64_t id = 1;

        CHECK(mkdtemp(dir) != NULL);
        start(&d, dir, "100");
        for (int i = 0; i < N_UNAUTH; i++) {
                tc_connect(&peers[i].c, d.port);
                peers[i].open = true;
        }
        t0 = tc_now();
        /* Every 0.5 s a request without hello (STATUS_AUTH each): activity,
         * never authenticated. A deadline must close them: 12 s is three
         * times the idle deadline. */
        for (;;) {
                double t = tc_now();
                open_left = 0;
                for (int i = 0; i < N_UNAUTH; i++) {
                        if (!peers[i].open)
                                continue;
                        pump(&peers[i], t - t0);
                        if (peers[i].open)
                                open_left++;
                        else if (peers[i].closed_at > max_closed)
                                max_closed = peers[i].closed_at;
                }
                if (open_left == 0 || t - t0 > 12)
                        break;
                if (t - last >= 0.5) {
                        for (int i = 0; i < N_UNAUTH; i++) {
                                Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
                                Dream__V1__ListDatasets ld = DREAM__V1__LIST_DATASETS__INIT;
                                req.request_id = id++;
                                req.body_case = DREAM__V1__REQUEST__BODY_LIST_DATASETS;
                                req.list_datasets = &ld;
                                if (peers[i].open)
                                        (void)tc_send(&peers[i].c, &req);
                        }
                        last = t;
                }
                {
                        struct timespec ts = {0, 20 * 1000000L};
                        nanosleep(&ts, NULL);
                }
        }
        if (open_left)
                FAILF("%u of %d connections that never authenticate (a request every 0.5 s, "
                      "each answered STATUS_AUTH) are still open after 12 s: no deadline closes "
                      "them",
                      open_left, N_UNAUTH);
        for (int i = 0; i < N_UNAUTH; i++)
                tc_close(&peers[i].c);
        CHECK(td_stop(&d) == 0);
        td_rmtree(dir);
        fprintf(stderr, "unauth: %u of %d still open after 12 s; last closed at %.1f s\n",
                open_left, N_UNAUTH, max_closed);
}

int main(int argc, char **argv)
{
        const char *g = argc > 1 ? argv[1] : "";

        signal(SIGPIPE, SIG_IGN);
        if (strcmp(g, "dribble") == 0)
                test_dribble();
        else if (strcmp(g, "unauth") == 0)
                test_unauth();
        else {
                fprintf(stderr, "usage: test_slow dribble|unauth\n");
                return 2;
        }
        if (tc_failures) {
                fprintf(stderr, "%s: %u failures\n", g, tc_failures);
                return 1;
        }
        fprintf(stderr, "%s: ok\n", g);
        return 0;
}
