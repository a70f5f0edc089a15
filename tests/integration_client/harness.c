/* The harness of the client integration tests: a real dreamd on 127.0.0.1
 * port 0 with a temporary data directory, the dream CLI run against it,
 * CSV comparison. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

void fail_now(void)
{
        td_kill_all();
        abort();
}

/* ---- the daemon -------------------------------------------------------------- */

void daemon_spawn(struct daemon *d, const char *listen, int with_unix, const char *token_file)
{
        daemon_spawn_args(d, listen, with_unix, token_file, NULL);
}

void daemon_spawn_args(struct daemon *d, const char *listen, int with_unix, const char *token_file,
                       const char *const *extra)
{
        const char *listens[3] = {listen, NULL, NULL}, *args[24];
        char log[300];
        struct td_opts o = {.data_dir = d->td.data_dir, .listen = listens, .args = args};
        int n = 0;

        snprintf(log, sizeof(log), "%s/dreamd.log", d->td.dir);
        o.log_path = log;
        if (with_unix) {
                snprintf(d->unix_addr, sizeof(d->unix_addr), "unix:%s/dreamd.sock", d->td.dir);
                listens[1] = d->unix_addr;
        }
        if (token_file) {
                args[n++] = "--token-file";
                args[n++] = token_file;
        }
        for (; extra && *extra; extra++) {
                CHECK(n < 23);
                args[n++] = *extra;
        }
        args[n] = NULL;
        if (td_launch(&d->td, &o) != 0) {
                fprintf(stderr, "dreamd did not start; see %s\n", log);
                fail_now();
        }
}

void daemon_start(struct daemon *d, const char *token_file)
{
        memset(d, 0, sizeof(*d));
        td_mkdir(&d->td, "/tmp/dream-client-test");
        daemon_spawn(d, "127.0.0.1:0", 1, token_file);
}

void daemon_halt(struct daemon *d)
{
        CHECK(td_stop(&d->td) == 0);
}

void daemon_stop(struct daemon *d)
{
        daemon_halt(d);
        td_cleanup(&d->td);
}

struct dream_client *client(const struct daemon *d, const char *token)
{
        struct dream_connect_opts o = DREAM_INIT(struct dream_connect_opts);
        struct dream_client *c = NULL;

        dream_connect_opts_default(&o);
        o.io_timeout_ms = 20000;
        o.client_name = "test_client";
        CHECK(dream_connect(d->td.addr, &o, &c) == 0);
        CHECK_OK(c, dream_hello(c, token, NULL));
        return c;
}

/* ---- running the CLI ----------------------------------------------------------- */

/* Run the dream CLI with DREAM_ADDR set; stdout into out (NUL-terminated,
 * may be NULL), stderr into err. Returns the exit status. */
pid_t cli_spawn(const struct daemon *d, va_list ap)
{
        const char *exe = getenv("DREAM");
        const char *argv[32];
        char outp[128], errp[128], env_addr[96];
        char *envp[256];
        int ne = 0;
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int n = 0;

        CHECK(exe != NULL);
        argv[n++] = exe;
        for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 31;)
                argv[n++] = a;
        argv[n] = NULL;
        snprintf(outp, sizeof(outp), "%s/cli.out", d->td.dir);
        snprintf(errp, sizeof(errp), "%s/cli.err", d->td.dir);
        snprintf(env_addr, sizeof(env_addr), "DREAM_ADDR=%s", d->td.addr);
        /* The environment (sanitizer options...) without DREAM_ADDR, plus ours. */
        for (char **e = environ; *e && ne < 254; e++)
                if (strncmp(*e, "DREAM_ADDR=", 11) != 0)
                        envp[ne++] = *e;
        envp[ne++] = env_addr;
        envp[ne] = NULL;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        CHECK(posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, envp) == 0);
        posix_spawn_file_actions_destroy(&fa);
        return pid;
}

/* Wait for a CLI started by cli_spawn: its output as for run_cli. */
int cli_wait(const struct daemon *d, pid_t pid, char *out, size_t out_size, char *err,
             size_t err_size)
{
        char outp[128], errp[128];
        int st;

        snprintf(outp, sizeof(outp), "%s/cli.out", d->td.dir);
        snprintf(errp, sizeof(errp), "%s/cli.err", d->td.dir);
        CHECK(waitpid(pid, &st, 0) == pid);
        for (int k = 0; k < 2; k++) {
                char *buf = k ? err : out;
                size_t size = k ? err_size : out_size;
                FILE *f;
                size_t got;

                if (!buf)
                        continue;
                f = fopen(k ? errp : outp, "r");
                CHECK(f != NULL);
                got = fread(buf, 1, size - 1, f);
                buf[got] = '\0';
                fclose(f);
        }
        CHECK(WIFEXITED(st));
        return WEXITSTATUS(st);
}

int run_cli(const struct daemon *d, char *out, size_t out_size, char *err, size_t err_size, ...)
{
        va_list ap;
        pid_t pid;

        va_start(ap, err_size);
        pid = cli_spawn(d, ap);
        va_end(ap);
        return cli_wait(d, pid, out, out_size, err, err_size);
}

pid_t run_cli_async(const struct daemon *d, ...)
{
        va_list ap;
        pid_t pid;

        va_start(ap, d);
        pid = cli_spawn(d, ap);
        va_end(ap);
        return pid;
}

/* ---- CSV comparison by numbers ---------------------------------------------------- */

char *slurp(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        char *b;
        long n;

        CHECK(f != NULL);
        CHECK(fseek(f, 0, SEEK_END) == 0);
        n = ftell(f);
        CHECK(n >= 0);
        rewind(f);
        b = malloc((size_t)n + 1);
        CHECK(b != NULL);
        CHECK(fread(b, 1, (size_t)n, f) == (size_t)n);
        b[n] = '\0';
        fclose(f);
        if (ret_len)
                *ret_len = (size_t)n;
        return b;
}

/* Same header line, then the same numbers cell by cell. */
void csv_same_numbers(const char *pa, const char *pb)
{
        char *a = slurp(pa, NULL), *b = slurp(pb, NULL);
        char *la = strchr(a, '\n'), *lb = strchr(b, '\n');
        char *p, *q;
        size_t cells = 0;

        CHECK(la && lb && la - a == lb - b && memcmp(a, b, (size_t)(la - a)) == 0);
        p = la + 1;
        q = lb + 1;
        while (*p && *q) {
                char *ep, *eq;
                double x = strtod(p, &ep), y = strtod(q, &eq);
                CHECK(ep != p && eq != q);
                CHECK(x == y || (isnan(x) && isnan(y)));
                CHECK(*ep == *eq);
                p = *ep ? ep + 1 : ep;
                q = *eq ? eq + 1 : eq;
                cells++;
        }
        CHECK(*p == '\0' && *q == '\0');
        CHECK(cells > 0);
        free(a);
        free(b);
}
