/* Integration tests of a damaged store and of backups through symbolic
 * links, with the real dreamd (DREAMD in the environment).
 * Usage: test_integrity GROUP
 *   truncated    data.mdb cut at several sizes (0 bytes to one page short):
 *                dreamd --check and a starting dreamd exit (no signal) with a
 *                non-zero status and a message naming the problem; nothing
 *                is created or changed
 *   backup_link  a backup into a directory whose data.mdb.partial is a
 *                symbolic link to the live data.mdb is refused; the store
 *                keeps serving, whole */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tclient.h"

#define OK DREAM__V1__STATUS__STATUS_OK

static proto_response *create_ds(struct tc *c, const char *name, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__CreateDataset cd = DREAM__V1__CREATE_DATASET__INIT;
        Dream__V1__ColumnSpec spec = DREAM__V1__COLUMN_SPEC__INIT, *sp = &spec;

        spec.name = "x";
        spec.kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
        cd.name = (char *)name;
        cd.n_columns = 1;
        cd.columns = &sp;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_CREATE_DATASET;
        req.create_dataset = &cd;
        return tc_call(c, &req);
}

/* A store of `n` datasets (some pages) in a new temp dir; stopped. */
static void make_store(struct tdaemon *d, int n)
{
        struct tc c;

        td_start(d, NULL, NULL);
        tc_connect(&c, d->port);
        for (int i = 0; i < n; i++) {
                char name[32];
                proto_response *r;
                snprintf(name, sizeof(name), "dataset_%03d_with_a_long_name", i);
                r = create_ds(&c, name, (uint64_t)i + 1);
                CHECK(r->code == OK);
                proto_response_free(r);
        }
        tc_close(&c);
        CHECK(td_stop(d) == 0);
}

/* Run dreamd with args (NULL-terminated) and the data dir; stdout and
 * stderr into out. The exit status, or -1000 - signal when killed by one. */
static int run_dreamd(const char *const *args, const char *data_dir, char *out, size_t size)
{
        const char *exe = getenv("DREAMD");
        const char *argv[16];
        int fds[2], st, n = 0;
        size_t len = 0;
        pid_t pid;

        CHECK(exe);
        argv[n++] = exe;
        for (int i = 0; args[i]; i++)
                argv[n++] = args[i];
        argv[n++] = "--data-dir";
        argv[n++] = data_dir;
        argv[n] = NULL;
        CHECK(pipe(fds) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                dup2(fds[1], 1);
                dup2(fds[1], 2);
                close(fds[0]);
                close(fds[1]);
                execv(exe, (char *const *)argv);
                _exit(127);
        }
        close(fds[1]);
        for (;;) {
                ssize_t r = read(fds[0], out + len, size - 1 - len);
                if (r <= 0 || (len += (size_t)r) == size - 1)
                        break;
        }
        out[len] = '\0';
        close(fds[0]);
        CHECK(waitpid(pid, &st, 0) == pid);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1000 - WTERMSIG(st);
}

static off_t size_of(const char *path)
{
        struct stat sb;

        CHECK(stat(path, &sb) == 0);
        return sb.st_size;
}

static void test_truncated(void)
{
        static const char *const check[] = {"--check", NULL};
        static const char *const serve[] = {"--listen", "127.0.0.1:0", NULL};
        struct tdaemon d;
        char live[400], dir[400], cut[500], out[4096];
        off_t size, lens[6];

        make_store(&d, 200);
        snprintf(live, sizeof(live), "%s/data.mdb", d.data_dir);
        size = size_of(live);
        CHECK(size >= 16 * 4096);
        CHECK(run_dreamd(check, d.data_dir, out, sizeof(out)) == 0);
        lens[0] = 0;
        lens[1] = 4096;
        lens[2] = 8192;
        lens[3] = size / 2;
        lens[4] = size - 4096;
        lens[5] = size - 1;
        snprintf(dir, sizeof(dir), "%s/cut", d.dir);
        CHECK(mkdir(dir, 0700) == 0);
        snprintf(cut, sizeof(cut), "%s/data.mdb", dir);
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                const char *words = lens[i] == 0 ? "is empty" : "truncated";
                int in = open(live, O_RDONLY), o = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                char buf[4096];
                off_t done = 0;
                int st;

                CHECK(in >= 0 && o >= 0);
                while (done < lens[i]) {
                        size_t want = lens[i] - done < 4096 ? (size_t)(lens[i] - done) : 4096;
                        ssize_t n = read(in, buf, want);
                        CHECK(n > 0 && write(o, buf, (size_t)n) == n);
                        done += n;
                }
                close(in);
                CHECK(close(o) == 0);

                st = run_dreamd(check, dir, out, sizeof(out));
                fprintf(stderr, "--check, data.mdb cut to %lld bytes: exit %d: %s",
                        (long long)lens[i], st, out);
                CHECK(st == 1);
                CHECK(strstr(out, words) != NULL && strstr(out, dir) != NULL);
                st = run_dreamd(serve, dir, out, sizeof(out));
                fprintf(stderr, "start, data.mdb cut to %lld bytes: exit %d: %s",
                        (long long)lens[i], st, out);
                /* Exit 2: systemd's RestartPreventExitStatus, no crash loop. */
                CHECK(st == 2);
                CHECK(strstr(out, words) != NULL && strstr(out, "restore") != NULL);
                CHECK(strstr(out, "listening") == NULL);
                CHECK(size_of(cut) == lens[i]);
        }
        /* No data.mdb: --check says so and creates nothing. */
        CHECK(unlink(cut) == 0);
        CHECK(run_dreamd(check, dir, out, sizeof(out)) == 2);
        CHECK(strstr(out, "no data.mdb") != NULL);
        CHECK(access(cut, F_OK) < 0 && errno == ENOENT);
        td_cleanup(&d);
}

static void test_backup_link(void)
{
        struct tdaemon d;
        struct tc c;
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Backup b = DREAM__V1__BACKUP__INIT;
        proto_response *r;
        char tmp[256], data[300], live[400], bk[400], part[500], out[4096];
        off_t before;

        make_store(&d, 20);
        snprintf(tmp, sizeof(tmp), "%s", d.dir);
        snprintf(data, sizeof(data), "%s", d.data_dir);
        td_start(&d, data, NULL); /* the same store again */
        snprintf(live, sizeof(live), "%s/data.mdb", d.data_dir);
        before = size_of(live);
        snprintf(bk, sizeof(bk), "%s/bk", tmp);
        CHECK(mkdir(bk, 0700) == 0);
        snprintf(part, sizeof(part), "%s/data.mdb.partial", bk);
        CHECK(symlink(live, part) == 0);
        tc_connect(&c, d.port);
        b.path = bk;
        req.request_id = 1;
        req.body_case = DREAM__V1__REQUEST__BODY_BACKUP;
        req.backup = &b;
        r = tc_call(&c, &req);
        fprintf(stderr, "backup through a link: code %d: %s\n", (int)r->code, r->message);
        CHECK(r->code == DREAM__V1__STATUS__STATUS_DENIED);
        CHECK(strstr(r->message, "symbolic link") != NULL);
        proto_response_free(r);
        CHECK(size_of(live) == before);
        /* Still serving, the store whole. */
        r = create_ds(&c, "after", 2);
        CHECK(r->code == OK);
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        {
                static const char *const check[] = {"--check", NULL};
                CHECK(run_dreamd(check, data, out, sizeof(out)) == 0);
        }
        td_rmtree(tmp);
}

int main(int argc, char **argv)
{
        const char *g = argc > 1 ? argv[1] : "";

        if (strcmp(g, "truncated") == 0)
                test_truncated();
        else if (strcmp(g, "backup_link") == 0)
                test_backup_link();
        else {
                fprintf(stderr, "usage: test_integrity truncated|backup_link\n");
                return 2;
        }
        fprintf(stderr, "%s: ok\n", g);
        return 0;
}
