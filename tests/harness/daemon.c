#include "tests/harness/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TD_MAX_LIVE 16
#define TD_MAX_ARGS 64

/* Daemons started, killed if the process aborts (no orphans left behind). */
static volatile pid_t live[TD_MAX_LIVE];

void td_kill_all(void)
{
        for (int i = 0; i < TD_MAX_LIVE; i++)
                if (live[i] > 0)
                        kill(live[i], SIGKILL);
}

static void on_abort(int sig)
{
        td_kill_all();
        signal(sig, SIG_DFL);
        raise(sig);
}

static void track(pid_t pid, int add)
{
        for (int i = 0; i < TD_MAX_LIVE; i++) {
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

static void die(const char *what)
{
        fprintf(stderr, "daemon harness: %s\n", what);
        abort();
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first line from fd within the start timeout ("" on EOF or timeout):
 * 0, or 1 when the timeout passed. */
static int read_first_line(int fd, char *line, size_t size)
{
        int64_t deadline = now_ms() + TD_START_TIMEOUT_MS;
        size_t len = 0;

        while (len < size - 1) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int64_t left = deadline - now_ms();
                ssize_t r;

                if (left <= 0) {
                        line[len] = '\0';
                        return 1;
                }
                r = poll(&p, 1, (int)left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r == 0) {
                        line[len] = '\0';
                        return 1;
                }
                if (r < 0)
                        break;
                r = read(fd, line + len, 1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0 || line[len] == '\n')
                        break;
                len++;
        }
        line[len] = '\0';
        return 0;
}

static int reap(struct tdaemon *d)
{
        int st;

        if (waitpid(d->pid, &st, 0) != d->pid)
                die("waitpid failed");
        track(d->pid, 0);
        d->pid = 0;
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        fprintf(stderr, "dreamd died of signal %d\n", WTERMSIG(st));
        return -1;
}

void td_mkdir(struct tdaemon *d, const char *prefix)
{
        snprintf(d->dir, sizeof(d->dir), "%s-XXXXXX", prefix);
        if (!mkdtemp(d->dir))
                die("cannot make a temporary directory");
        snprintf(d->data_dir, sizeof(d->data_dir), "%s/data", d->dir);
}

int td_launch(struct tdaemon *d, const struct td_opts *o)
{
        static const char *const tcp0[] = {"127.0.0.1:0", NULL};
        const struct td_opts none = {0};
        const char *exe = getenv("DREAMD");
        const char *argv[TD_MAX_ARGS + 1];
        const char *const *listen;
        posix_spawn_file_actions_t fa;
        char line[512], *colon;
        int pipefd[2], n = 0, r, timed_out;
        unsigned port;

        if (!o)
                o = &none;
        if (!exe)
                die("DREAMD is not set");
        listen = o->listen ? o->listen : tcp0;
        d->pid = 0;
        if (!o->data_dir)
                td_mkdir(d, "/tmp/dreamd-test");
        else if (o->data_dir != d->data_dir)
                snprintf(d->data_dir, sizeof(d->data_dir), "%s", o->data_dir);
        argv[n++] = exe;
        for (int i = 0; listen[i] && n < TD_MAX_ARGS - 1; i++) {
                argv[n++] = "--listen";
                argv[n++] = listen[i];
        }
        argv[n++] = "--data-dir";
        argv[n++] = d->data_dir;
        for (int i = 0; o->args && o->args[i]; i++) {
                if (n == TD_MAX_ARGS)
                        die("too many dreamd arguments");
                argv[n++] = o->args[i];
        }
        argv[n] = NULL;
        if (pipe2(pipefd, O_CLOEXEC) != 0)
                die("pipe failed");
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        if (o->log_path)
                posix_spawn_file_actions_addopen(&fa, 2, o->log_path, O_WRONLY | O_CREAT | O_APPEND,
                                                 0600);
        r = posix_spawn(&d->pid, exe, &fa, NULL, (char *const *)argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[1]);
        d->port = 0; /* (listen may point at d->addr: a restart on the same address) */
        d->addr[0] = '\0';
        if (r != 0) {
                close(pipefd[0]);
                d->pid = 0;
                fprintf(stderr, "cannot start %s: %s\n", exe, strerror(r));
                return -2;
        }
        track(d->pid, 1);
        timed_out = read_first_line(pipefd[0], line, sizeof(line));
        close(pipefd[0]);
        colon = strrchr(line, ':');
        if (strncmp(line, "listening on ", 13) != 0 || !colon || sscanf(colon, ":%u", &port) != 1 ||
            strlen(line + 13) >= sizeof(d->addr)) {
                int st;
                if (timed_out) { /* alive but silent */
                        fprintf(stderr, "dreamd did not report its address in %d ms\n",
                                TD_START_TIMEOUT_MS);
                        td_kill(d);
                        return -2;
                }
                if (waitpid(d->pid, &st, 0) != d->pid)
                        die("waitpid failed");
                track(d->pid, 0);
                d->pid = 0;
                return WIFEXITED(st) ? (WEXITSTATUS(st) ? WEXITSTATUS(st) : 255) : -1;
        }
        d->port = (uint16_t)port;
        snprintf(d->addr, sizeof(d->addr), "%s", line + 13);
        return 0;
}

void td_start(struct tdaemon *d, const char *data_dir, const char *const *extra)
{
        struct td_opts o = {.data_dir = data_dir, .args = extra};
        int r;

        memset(d, 0, sizeof(*d));
        r = td_launch(d, &o);
        if (r != 0) {
                fprintf(stderr, "dreamd did not start (%d)\n", r);
                abort();
        }
}

int td_spawn(struct tdaemon *d, const char *data_dir, const char *listen, const char *const *extra,
             const char *log_path)
{
        const char *const one[] = {listen, NULL};
        struct td_opts o = {.data_dir = data_dir,
                            .listen = listen ? one : NULL,
                            .args = extra,
                            .log_path = log_path};

        memset(d, 0, sizeof(*d));
        return td_launch(d, &o);
}

void td_restart(struct tdaemon *d, const char *const *extra)
{
        struct td_opts o = {.data_dir = d->data_dir, .args = extra};

        if (d->pid > 0)
                die("td_restart of a running daemon");
        if (td_launch(d, &o) != 0)
                die("dreamd did not start again");
}

int td_stop(struct tdaemon *d)
{
        if (d->pid <= 0)
                return -1;
        kill(d->pid, SIGTERM);
        return reap(d);
}

int td_wait(struct tdaemon *d)
{
        if (d->pid <= 0)
                return -1;
        return reap(d);
}

void td_kill(struct tdaemon *d)
{
        int st;

        if (d->pid <= 0)
                return;
        kill(d->pid, SIGKILL);
        if (waitpid(d->pid, &st, 0) != d->pid)
                die("waitpid failed");
        track(d->pid, 0);
        d->pid = 0;
}

long td_status_kb(const struct tdaemon *d, const char *key)
{
        char path[64], line[256];
        size_t kl = strlen(key);
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
        f = fopen(path, "r");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
                        kb = strtol(line + kl + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return kb;
}

long td_rss_kb(const struct tdaemon *d)
{
        return td_status_kb(d, "VmRSS");
}

bool td_log_has(const char *log_path, const char *what, int timeout_ms)
{
        int64_t deadline = now_ms() + timeout_ms;

        for (;;) {
                FILE *f = fopen(log_path, "r");
                bool found = false;

                if (f) {
                        char line[4096];
                        while (!found && fgets(line, sizeof(line), f))
                                found = strstr(line, what) != NULL;
                        fclose(f);
                }
                if (found)
                        return true;
                if (now_ms() >= deadline)
                        return false;
                struct timespec ts = {0, 20 * 1000000L};
                nanosleep(&ts, NULL);
        }
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

void td_rmtree(const char *dir)
{
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void td_cleanup(struct tdaemon *d)
{
        if (d->dir[0])
                td_rmtree(d->dir);
        d->dir[0] = '\0';
}

int td_check(const char *dir, char *out, size_t out_size, int *ret_sig)
{
        const char *exe = getenv("DREAMD");
        char sink[4096];
        size_t len = 0;
        int fds[2], st;
        pid_t pid;

        if (!exe)
                die("DREAMD is not set");
        if (!out) {
                out = sink;
                out_size = sizeof(sink);
        }
        if (pipe(fds) != 0)
                die("pipe failed");
        pid = fork();
        if (pid < 0)
                die("fork failed");
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
        if (waitpid(pid, &st, 0) != pid)
                die("waitpid failed");
        if (ret_sig)
                *ret_sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
