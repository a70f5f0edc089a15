#include "tclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Daemons started, killed if the test aborts (no orphans left behind). */
static pid_t live[16];

static void on_abort(int sig)
{
        for (int i = 0; i < 16; i++)
                if (live[i] > 0)
                        kill(live[i], SIGKILL);
        signal(sig, SIG_DFL);
        raise(sig);
}

static void track(pid_t pid, bool add)
{
        for (int i = 0; i < 16; i++) {
                if (add && live[i] == 0) {
                        live[i] = pid;
                        signal(SIGABRT, on_abort);
                        return;
                }
                if (!add && live[i] == pid) {
                        live[i] = 0;
                        return;
                }
        }
}

void td_start(struct tdaemon *d, const char *data_dir, const char *const *extra)
{
        const char *exe = getenv("DREAMD");
        const char *argv[64];
        posix_spawn_file_actions_t fa;
        char line[256];
        size_t len = 0;
        int pipefd[2], n = 0;
        unsigned port;

        CHECK(exe != NULL);
        memset(d, 0, sizeof(d[0]));
        if (data_dir) {
                snprintf(d->data_dir, sizeof(d->data_dir), "%s", data_dir);
        } else {
                snprintf(d->dir, sizeof(d->dir), "/tmp/dreamd-test-XXXXXX");
                CHECK(mkdtemp(d->dir) != NULL);
                snprintf(d->data_dir, sizeof(d->data_dir), "%s/data", d->dir);
        }
        argv[n++] = exe;
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
        argv[n++] = "--data-dir";
        argv[n++] = d->data_dir;
        for (int i = 0; extra && extra[i] && n < 62; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        CHECK(posix_spawn(&d->pid, exe, &fa, NULL, (char *const *)argv, environ) == 0);
        posix_spawn_file_actions_destroy(&fa);
        track(d->pid, true);
        close(pipefd[1]);
        /* The first stdout line: "listening on 127.0.0.1:PORT". */
        while (len < sizeof(line) - 1) {
                ssize_t r = read(pipefd[0], line + len, 1);
                if (r <= 0)
                        break;
                if (line[len] == '\n')
                        break;
                len++;
        }
        line[len] = '\0';
        close(pipefd[0]);
        if (sscanf(line, "listening on 127.0.0.1:%u", &port) != 1) {
                fprintf(stderr, "dreamd did not report its port (got '%s')\n", line);
                abort();
        }
        d->port = (uint16_t)port;
}

int td_stop(struct tdaemon *d)
{
        if (d->pid <= 0)
                return -1;
        kill(d->pid, SIGTERM);
        return td_wait(d);
}

int td_wait(struct tdaemon *d)
{
        int st;

        CHECK(waitpid(d->pid, &st, 0) == d->pid);
        track(d->pid, false);
        d->pid = 0;
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        fprintf(stderr, "dreamd died of signal %d\n", WTERMSIG(st));
        return -1;
}

long td_rss_kb(const struct tdaemon *d)
{
        char path[64], line[256];
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
        f = fopen(path, "r");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

void td_cleanup(struct tdaemon *d)
{
        if (d->dir[0])
                nftw(d->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

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
        static uint8_t buf[1 << 16];

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

/* ---- added for the crash, roles and slow-client tests ---------------------- */

int td_spawn(struct tdaemon *d, const char *data_dir, const char *listen, const char *const *extra,
             const char *log_path)
{
        const char *exe = getenv("DREAMD");
        const char *argv[64];
        posix_spawn_file_actions_t fa;
        char line[512];
        size_t len = 0;
        int pipefd[2], n = 0, st;
        unsigned port;
        const char *colon;

        CHECK(exe != NULL);
        memset(d, 0, sizeof(d[0]));
        if (data_dir) {
                snprintf(d->data_dir, sizeof(d->data_dir), "%s", data_dir);
        } else {
                snprintf(d->dir, sizeof(d->dir), "/tmp/dreamd-test-XXXXXX");
                CHECK(mkdtemp(d->dir) != NULL);
                snprintf(d->data_dir, sizeof(d->data_dir), "%s/data", d->dir);
        }
        argv[n++] = exe;
        argv[n++] = "--listen";
        argv[n++] = listen ? listen : "127.0.0.1:0";
        argv[n++] = "--data-dir";
        argv[n++] = d->data_dir;
        for (int i = 0; extra && extra[i] && n < 62; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        if (log_path)
                posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND,
                                                 0600);
        CHECK(posix_spawn(&d->pid, exe, &fa, NULL, (char *const *)argv, environ) == 0);
        posix_spawn_file_actions_destroy(&fa);
        track(d->pid, true);
        close(pipefd[1]);
        while (len < sizeof(line) - 1) {
                ssize_t r = read(pipefd[0], line + len, 1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0 || line[len] == '\n')
                        break;
                len++;
        }
        line[len] = '\0';
        close(pipefd[0]);
        colon = strrchr(line, ':');
        if (strncmp(line, "listening on ", 13) != 0 || !colon || sscanf(colon, ":%u", &port) != 1) {
                CHECK(waitpid(d->pid, &st, 0) == d->pid);
                track(d->pid, false);
                d->pid = 0;
                return WIFEXITED(st) ? (WEXITSTATUS(st) ? WEXITSTATUS(st) : 255) : -1;
        }
        d->port = (uint16_t)port;
        return 0;
}

void td_kill(struct tdaemon *d)
{
        int st;

        if (d->pid <= 0)
                return;
        kill(d->pid, SIGKILL);
        CHECK(waitpid(d->pid, &st, 0) == d->pid);
        track(d->pid, false);
        d->pid = 0;
}

int td_check(const char *dir, char *out, size_t out_size, int *ret_sig)
{
        const char *exe = getenv("DREAMD");
        char sink[4096];
        size_t len = 0;
        int fds[2], st;
        pid_t pid;

        CHECK(exe != NULL);
        if (!out) {
                out = sink;
                out_size = sizeof(sink);
        }
        CHECK(pipe(fds) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                dup2(fds[1], 1);
                close(fds[0]);
                close(fds[1]);
                execl(exe, exe, "--check", "--data-dir", dir, (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        for (;;) {
                ssize_t n = read(fds[0], out + len, out_size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (len == out_size - 1)
                        break;
        }
        out[len] = '\0';
        close(fds[0]);
        CHECK(waitpid(pid, &st, 0) == pid);
        if (ret_sig)
                *ret_sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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

void td_rmtree(const char *dir)
{
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
