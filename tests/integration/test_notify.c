/* dreamd and systemd's notify protocol: with NOTIFY_SOCKET set, READY=1
 * arrives once the daemon accepts connections (a connection made right after
 * it is served), WATCHDOG=1 pings follow at half of WATCHDOG_USEC while the
 * loop, the worker pool and the writes make progress (they keep coming while
 * writes are queued and completed: a dataset created and filled between
 * pings); a write stuck in its commit (this process holds LMDB's writer lock)
 * stops them, with a log line saying so, and they resume once it completes;
 * SIGTERM sends STOPPING=1 before a clean exit. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "tclient.h"

static void ingest_send(struct tc *c, const char *name, uint64_t id, uint32_t n);
static void ingest_wait(struct tc *c, uint64_t id);

/* A write on the worker pool: create dataset `name` (one INT column, the
 * target) and ingest n rows into it. */
static void write_some(struct tc *c, const char *name, uint32_t n)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__CreateDataset cd = DREAM__V1__CREATE_DATASET__INIT;
        Dream__V1__ColumnSpec spec = DREAM__V1__COLUMN_SPEC__INIT, *sp = &spec;
        proto_response *r;

        spec.name = "label";
        spec.kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
        cd.name = (char *)name;
        cd.n_columns = 1;
        cd.columns = &sp;
        cd.target = "label";
        cd.task = DREAM__V1__TASK__TASK_CLASSIFICATION;
        req.request_id = 2;
        req.body_case = DREAM__V1__REQUEST__BODY_CREATE_DATASET;
        req.create_dataset = &cd;
        r = tc_call(c, &req);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_OK);
        proto_response_free(r);
        ingest_send(c, name, 3, n);
        ingest_wait(c, 3);
}

/* Send (without waiting) an ingest of n rows into `name`. */
static void ingest_send(struct tc *c, const char *name, uint64_t id, uint32_t n)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Ingest in = DREAM__V1__INGEST__INIT;
        Dream__V1__Columns cols = DREAM__V1__COLUMNS__INIT;
        Dream__V1__ColumnValues cv = DREAM__V1__COLUMN_VALUES__INIT, *cvp = &cv;
        int64_t v[256];

        CHECK(n <= 256);
        for (uint32_t i = 0; i < n; i++)
                v[i] = i % 2;
        cv.kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
        CHECK(proto_values_new(v, n, &cv.values) == 0);
        cols.n_rows = n;
        cols.n_columns = 1;
        cols.columns = &cvp;
        in.dataset = (char *)name;
        in.rows = &cols;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_INGEST;
        req.ingest = &in;
        CHECK(tc_send(c, &req) == 0);
        dm_free(cv.values.data);
}

/* The acknowledgement of ingest `id`. */
static void ingest_wait(struct tc *c, uint64_t id)
{
        proto_response *r;

        CHECK(tc_recv(c, &r, 20000) == 1);
        CHECK(r->request_id == id && r->code == DREAM__V1__STATUS__STATUS_OK);
        CHECK(r->body_case == DREAM__V1__RESPONSE__BODY_INGEST && r->ingest->committed);
        proto_response_free(r);
}

/* Next datagram from the notify socket, NUL-terminated, or "" on timeout. */
static void recv_notify(int fd, char *buf, size_t cap, int timeout_ms)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};
        buf[0] = '\0';
        if (poll(&p, 1, timeout_ms) == 1) {
                ssize_t n = recv(fd, buf, cap - 1, 0);
                buf[n > 0 ? n : 0] = '\0';
        }
}

static uint64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* WATCHDOG=1 datagrams received during the next ms milliseconds. */
static int pings_during(int fd, int ms)
{
        uint64_t end = mono_ms() + (uint64_t)ms;
        char msg[512];
        int pings = 0;

        for (uint64_t now = mono_ms(); now < end; now = mono_ms()) {
                recv_notify(fd, msg, sizeof(msg), (int)(end - now));
                pings += strcmp(msg, "WATCHDOG=1") == 0;
        }
        return pings;
}

static bool file_has(const char *path, const char *what)
{
        static char buf[1 << 16];
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        return strstr(buf, what) != NULL;
}

int main(void)
{
        char dir[] = "/tmp/dreamd-notify-XXXXXX", path[64], msg[512], log[64];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct tdaemon d;
        struct tc c;
        int fd, saved, log_fd;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/notify", dir);
        snprintf(log, sizeof(log), "%s/dreamd.log", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        setenv("NOTIFY_SOCKET", path, 1);
        setenv("WATCHDOG_USEC", "200000", 1); /* pings every 100 ms */

        /* dreamd's stderr (inherited) into the log file. */
        saved = dup(2);
        log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(saved >= 0 && log_fd >= 0 && dup2(log_fd, 2) == 2);
        close(log_fd);
        td_start(&d, NULL, NULL);
        CHECK(dup2(saved, 2) == 2);
        close(saved);
        /* The first message is READY=1 (with a STATUS line). */
        recv_notify(fd, msg, sizeof(msg), 20000);
        CHECK(strncmp(msg, "READY=1", 7) == 0);
        CHECK(strstr(msg, "STATUS=serving on") != NULL);
        /* Ready means accepting: a request right now is answered. */
        tc_connect(&c, d.port);
        tc_hello(&c, NULL, DREAM__V1__STATUS__STATUS_OK);
        /* Watchdog pings while the loop turns. */
        int pings = 0;
        for (int i = 0; i < 10 && pings < 3; i++) {
                recv_notify(fd, msg, sizeof(msg), 1000);
                pings += strcmp(msg, "WATCHDOG=1") == 0;
        }
        CHECK(pings >= 3);
        /* ... and while writes go through the worker pool (the probe and the
         * write heartbeat see progress). */
        for (int round = 0; round < 4; round++) {
                char name[16];

                snprintf(name, sizeof(name), "w%d", round);
                write_some(&c, name, 200);
                pings = 0;
                for (int i = 0; i < 10 && pings < 2; i++) {
                        recv_notify(fd, msg, sizeof(msg), 1000);
                        pings += strcmp(msg, "WATCHDOG=1") == 0;
                }
                CHECK(pings >= 2);
        }
        /* A write stuck in its commit: with LMDB's writer lock held here,
         * dreamd's next ingest waits. Once no write has completed for
         * WATCHDOG_USEC (200 ms) the pings stop; they resume when the lock
         * is released and the ingest commits. */
        {
                MDB_env *env;
                MDB_txn *txn;

                CHECK(mdb_env_create(&env) == 0);
                CHECK(mdb_env_open(env, d.data_dir, MDB_NOTLS, 0600) == 0);
                CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
                ingest_send(&c, "w0", 9, 100);
                (void)pings_during(fd, 700); /* the stall is noticed */
                CHECK(pings_during(fd, 1200) == 0);
                CHECK(file_has(log, "watchdog: no queued write or seal has completed"));
                mdb_txn_abort(txn);
                ingest_wait(&c, 9);
                CHECK(pings_during(fd, 1000) >= 2);
                CHECK(file_has(log, "watchdog: progress again"));
                mdb_env_close(env);
        }
        tc_close(&c);
        /* SIGTERM: STOPPING=1, then exit 0. */
        CHECK(kill(d.pid, SIGTERM) == 0);
        int stopping = 0;
        for (int i = 0; i < 20 && !stopping; i++) {
                recv_notify(fd, msg, sizeof(msg), 1000);
                stopping = strcmp(msg, "STOPPING=1") == 0;
        }
        CHECK(stopping);
        CHECK(td_wait(&d) == 0);
        td_cleanup(&d);
        close(fd);
        unlink(path);
        unlink(log);
        rmdir(dir);
        puts("notify: READY=1 before accepting, watchdog pings (idle and while writing, "
             "not while a write is stuck), STOPPING=1: ok");
        return 0;
}
