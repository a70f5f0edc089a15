/* CLI helpers: messages, exit codes, file loading, atomic output, progress. */
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "client/cli.h"
#include "common/alloc.h"
#include "common/err.h"
#include "storage/gd/gd.h"

void cli_error(const char *file, uint64_t line, uint32_t col, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (!file)
                fprintf(stderr, "dream: %s\n", msg);
        else if (line && col)
                fprintf(stderr, "dream: %s:%llu:%u: %s\n", file, (unsigned long long)line, col,
                        msg);
        else if (line)
                fprintf(stderr, "dream: %s:%llu: %s\n", file, (unsigned long long)line, msg);
        else
                fprintf(stderr, "dream: %s: %s\n", file, msg);
}

void cli_usage_error(const char *cmd, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "dream: %s (see 'dream %s --help')\n", msg, cmd ? cmd : "");
}

int cli_exit_for(int err, int dream_file)
{
        switch (err) {
        case 0:
                return CLI_OK;
        case DREAM_E_NOMEM:
        case DREAM_E_OVERFLOW:
        case DREAM_E_COMPRESS:
        case DREAM_E_NUMERIC:
        case DREAM_E_INVAL:
                return CLI_INTERNAL;
        case DREAM_E_FORMAT:
        case DREAM_E_TRUNCATED:
        case DREAM_E_CHECKSUM:
        case DREAM_E_CORRUPT:
                return dream_file ? CLI_CORRUPT : CLI_INPUT;
        default:
                return CLI_INPUT;
        }
}

/* ---- input ------------------------------------------------------------- */

static int read_fd_all(int fd, uint8_t **ret, size_t *ret_len)
{
        size_t cap = 1 << 16, len = 0;
        uint8_t *b = dm_malloc(cap);
        if (!b)
                return DREAM_E_NOMEM;
        for (;;) {
                if (len == cap) {
                        uint8_t *nb;
                        if (cap >= DREAM_MAX_INFLATED) {
                                dm_free(b);
                                return DREAM_E_LIMIT;
                        }
                        nb = dm_realloc(b, cap * 2);
                        if (!nb) {
                                dm_free(b);
                                return DREAM_E_NOMEM;
                        }
                        b = nb;
                        cap *= 2;
                }
                ssize_t k = read(fd, b + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = -errno;
                        dm_free(b);
                        return e;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        *ret = b;
        *ret_len = len;
        return 0;
}

/* Inflate gzip data (one or more members). */
static int inflate_all(const uint8_t *in, size_t in_len, uint8_t **ret, size_t *ret_len)
{
        z_stream z;
        size_t cap, len = 0;
        uint8_t *b;
        int zr, r = 0;

        memset(&z, 0, sizeof(z));
        if (inflateInit2(&z, 15 + 16) != Z_OK)
                return DREAM_E_NOMEM;
        cap = in_len < ((size_t)1 << 40) / 4 ? in_len * 4 + 4096 : in_len;
        if (cap > DREAM_MAX_INFLATED)
                cap = DREAM_MAX_INFLATED;
        b = dm_malloc(cap);
        if (!b) {
                inflateEnd(&z);
                return DREAM_E_NOMEM;
        }
        z.next_in = (Bytef *)(uintptr_t)in;
        for (;;) {
                /* zlib counts in uInt: feed at most 1 GiB at a time. */
                if (z.avail_in == 0 && (size_t)((const uint8_t *)z.next_in - in) < in_len) {
                        size_t rest = in_len - (size_t)((const uint8_t *)z.next_in - in);
                        z.avail_in = (uInt)(rest > (1u << 30) ? (1u << 30) : rest);
                }
                if (len == cap) {
                        uint8_t *nb;
                        size_t ncap = cap * 2;
                        if (cap >= DREAM_MAX_INFLATED) {
                                r = DREAM_E_LIMIT;
                                break;
                        }
                        if (ncap > DREAM_MAX_INFLATED)
                                ncap = DREAM_MAX_INFLATED;
                        nb = dm_realloc(b, ncap);
                        if (!nb) {
                                r = DREAM_E_NOMEM;
                                break;
                        }
                        b = nb;
                        cap = ncap;
                }
                size_t room = cap - len;
                z.next_out = b + len;
                z.avail_out = (uInt)(room > (1u << 30) ? (1u << 30) : room);
                uInt before = z.avail_out;
                zr = inflate(&z, Z_NO_FLUSH);
                len += before - z.avail_out;
                if (zr == Z_STREAM_END) {
                        size_t used = (size_t)((const uint8_t *)z.next_in - in);
                        if (used >= in_len)
                                break;
                        /* Another gzip member follows. */
                        if (inflateReset(&z) != Z_OK) {
                                r = DREAM_E_CORRUPT;
                                break;
                        }
                        continue;
                }
                if (zr == Z_BUF_ERROR && z.avail_in == 0 &&
                    (size_t)((const uint8_t *)z.next_in - in) >= in_len) {
                        r = DREAM_E_TRUNCATED;
                        break;
                }
                if (zr == Z_MEM_ERROR) {
                        r = DREAM_E_NOMEM;
                        break;
                }
                if (zr != Z_OK && zr != Z_BUF_ERROR) {
                        r = DREAM_E_CORRUPT;
                        break;
                }
        }
        inflateEnd(&z);
        if (r < 0) {
                dm_free(b);
                return r;
        }
        *ret = b;
        *ret_len = len;
        return 0;
}

int cli_file_load(const char *path, struct cli_file *ret)
{
        struct cli_file f = {0};
        struct stat st;
        int fd, r = 0;

        if (strcmp(path, "-") == 0) {
                fd = STDIN_FILENO;
        } else {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
        }
        if (fstat(fd, &st) != 0) {
                r = -errno;
                goto out_close;
        }
        if (S_ISDIR(st.st_mode)) {
                r = -EISDIR;
                goto out_close;
        }
        if (S_ISREG(st.st_mode) && st.st_size > 0) {
                f.map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (f.map == MAP_FAILED) {
                        r = -errno;
                        f.map = NULL;
                        goto out_close;
                }
                f.map_len = (size_t)st.st_size;
                madvise(f.map, f.map_len, MADV_SEQUENTIAL);
                f.data = f.map;
                f.len = f.map_len;
        } else {
                r = read_fd_all(fd, &f.heap, &f.len);
                if (r < 0)
                        goto out_close;
                f.data = f.heap;
        }
        if (f.len >= 2 && f.data[0] == 0x1f && f.data[1] == 0x8b) {
                uint8_t *inflated;
                size_t n;
                r = inflate_all(f.data, f.len, &inflated, &n);
                if (r < 0) {
                        cli_file_release(&f);
                        goto out_close;
                }
                cli_file_release(&f);
                f.heap = inflated;
                f.data = inflated;
                f.len = n;
        }
        *ret = f;
out_close:
        if (fd != STDIN_FILENO)
                close(fd);
        return r;
}

void cli_file_release(struct cli_file *f)
{
        if (!f)
                return;
        if (f->map)
                munmap(f->map, f->map_len);
        dm_free(f->heap);
        memset(f, 0, sizeof(*f));
}

const char *cli_load_strerror(int err)
{
        switch (err) {
        case DREAM_E_TRUNCATED:
                return "truncated gzip data";
        case DREAM_E_CORRUPT:
                return "corrupt gzip data";
        case DREAM_E_LIMIT:
                return "input too large (inflated size limit exceeded)";
        default:
                return dream_strerror(err);
        }
}

int cli_dream_open(const char *path, struct cli_dream *ret)
{
        struct cli_dream d = {0};
        int r = cli_file_load(path, &d.file);
        if (r < 0) {
                cli_error(path, 0, 0, "cannot read: %s", cli_load_strerror(r));
                return r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
        }
        r = gd_segment_open(d.file.data, d.file.len, &d.seg);
        if (r < 0) {
                cli_error(path, 0, 0, "%s", dream_strerror(r));
                cli_file_release(&d.file);
                return cli_exit_for(r, 1);
        }
        *ret = d;
        return CLI_OK;
}

void cli_dream_close(struct cli_dream *d)
{
        if (!d)
                return;
        gd_segment_free(d->seg);
        d->seg = NULL;
        cli_file_release(&d->file);
}

/* ---- output ------------------------------------------------------------ */

#define OUT_BUF (1u << 20)

/* The temporary file being written, removed if a signal ends the process. */
static const char *volatile cleanup_path;

static void on_signal(int sig)
{
        const char *p = cleanup_path;
        if (p)
                unlink(p);
        signal(sig, SIG_DFL);
        raise(sig);
}

static void watch_signals(const char *tmp)
{
        static int installed;
        cleanup_path = tmp;
        if (!installed && tmp) {
                installed = 1;
                signal(SIGINT, on_signal);
                signal(SIGTERM, on_signal);
                signal(SIGHUP, on_signal);
                signal(SIGPIPE, SIG_IGN);
        }
}

/* Levenshtein distance of a and b, or 3 when it is more than 2 (or a name is
 * longer than 63 bytes): two rows of the table. */
static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b), row[2][64];

        if (la > 63 || lb > 63)
                return 3;
        for (size_t j = 0; j <= lb; j++)
                row[0][j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t *prev = row[(i - 1) & 1], *cur = row[i & 1];
                cur[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
                        size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
                        cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
                }
        }
        return row[la & 1][lb] > 2 ? 3 : row[la & 1][lb];
}

const char *cli_suggest(const char *word, const char *const *names, size_t n)
{
        const char *best = NULL;
        size_t best_d = 3;

        for (size_t i = 0; i < n; i++) {
                size_t d = edit_distance(word, names[i]);
                if (d > 0 && d < best_d) {
                        best = names[i];
                        best_d = d;
                }
        }
        return best;
}

const char *cli_suggest_option(const char *word, const struct option *longopts)
{
        const char *names[64];
        size_t n = 0;

        for (; longopts && longopts->name && n < 64; longopts++)
                names[n++] = longopts->name;
        return cli_suggest(word, names, n);
}

int cli_unknown_name(const char *cmd, const char *what, const char *value, const char *const *names,
                     size_t n)
{
        const char *hint = cli_suggest(value, names, n);
        char list[256];
        size_t len = 0;

        if (hint) {
                cli_usage_error(cmd, "unknown %s '%s' (did you mean '%s'?)", what, value, hint);
                return CLI_USAGE;
        }
        list[0] = 0;
        for (size_t i = 0; i < n && len < sizeof(list); i++) {
                int k = snprintf(list + len, sizeof(list) - len, "%s%s",
                                 i == 0       ? ""
                                 : i + 1 == n ? " or "
                                              : ", ",
                                 names[i]);
                if (k < 0)
                        break;
                len += (size_t)k;
        }
        cli_usage_error(cmd, "unknown %s '%s' (%s)", what, value, list);
        return CLI_USAGE;
}

int cli_bytes_exact;

const char *cli_size_text(uint64_t bytes, int exact, char *buf, size_t n)
{
        static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = (double)bytes;
        size_t u = 0;

        if (exact || bytes < 1024) {
                snprintf(buf, n, "%llu bytes", (unsigned long long)bytes);
                return buf;
        }
        v /= 1024.0;
        /* Move up a unit when the value would print as 1024.0 or more. */
        while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
                v /= 1024.0;
                u++;
        }
        snprintf(buf, n, "%.1f %s", v, units[u]);
        return buf;
}

const char *cli_size(uint64_t bytes, int slot)
{
        static char bufs[4][32];

        return cli_size_text(bytes, cli_bytes_exact, bufs[slot & 3], sizeof(bufs[0]));
}

int cli_out_check(const char *cmd, const char *path, int force)
{
        struct stat st;

        if (force || !path || strcmp(path, "-") == 0 || lstat(path, &st) != 0)
                return CLI_OK;
        fprintf(stderr, "dream: %s: output '%s' already exists (give --force to overwrite it)\n",
                cmd, path);
        return CLI_INPUT;
}

int cli_out_open(struct cli_out *o, const char *path)
{
        memset(o, 0, sizeof(*o));
        o->fd = -1;
        o->buf = dm_malloc(OUT_BUF);
        if (!o->buf)
                return DREAM_E_NOMEM;
        o->cap = OUT_BUF;
        if (!path || strcmp(path, "-") == 0) {
                o->fd = STDOUT_FILENO;
                o->is_stdout = 1;
                return 0;
        }
        size_t n = strlen(path);
        o->path = dm_strdup(path);
        o->tmp = dm_malloc(n + sizeof(".tmp-XXXXXX"));
        if (!o->path || !o->tmp) {
                cli_out_abort(o);
                return DREAM_E_NOMEM;
        }
        memcpy(o->tmp, path, n);
        memcpy(o->tmp + n, ".tmp-XXXXXX", sizeof(".tmp-XXXXXX"));
        o->fd = mkostemp(o->tmp, O_CLOEXEC);
        if (o->fd < 0) {
                int e = -errno;
                dm_free(o->tmp);
                o->tmp = NULL;
                cli_out_abort(o);
                return e;
        }
        watch_signals(o->tmp);
        /* mkstemp makes 0600; give the file the usual mode. */
        mode_t mask = umask(0);
        umask(mask);
        fchmod(o->fd, 0666 & ~mask);
        return 0;
}

void cli_out_flush(struct cli_out *o)
{
        size_t off = 0;
        while (off < o->len && !o->err) {
                ssize_t k = write(o->fd, o->buf + off, o->len - off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        o->err = -errno;
                        break;
                }
                off += (size_t)k;
        }
        o->len = 0;
}

void cli_out_write(struct cli_out *o, const void *p, size_t n)
{
        const uint8_t *s = p;
        while (n > 0) {
                if (o->len == o->cap)
                        cli_out_flush(o);
                size_t k = o->cap - o->len < n ? o->cap - o->len : n;
                memcpy(o->buf + o->len, s, k);
                o->len += k;
                s += k;
                n -= k;
        }
}

static void out_release(struct cli_out *o)
{
        if (o->fd >= 0 && !o->is_stdout)
                close(o->fd);
        o->fd = -1;
        dm_free(o->buf);
        dm_free(o->path);
        dm_free(o->tmp);
        o->buf = NULL;
        o->path = NULL;
        o->tmp = NULL;
        watch_signals(NULL);
}

int cli_out_commit(struct cli_out *o, int durable)
{
        int r;
        cli_out_flush(o);
        r = o->err;
        if (o->is_stdout) {
                out_release(o);
                return r;
        }
        if (r == 0 && durable && fsync(o->fd) != 0)
                r = -errno;
        if (r == 0 && close(o->fd) != 0)
                r = -errno;
        o->fd = -1;
        if (r == 0 && rename(o->tmp, o->path) != 0)
                r = -errno;
        if (r < 0)
                unlink(o->tmp);
        out_release(o);
        return r;
}

void cli_out_abort(struct cli_out *o)
{
        if (!o)
                return;
        if (o->tmp && o->fd >= 0) {
                close(o->fd);
                o->fd = -1;
                unlink(o->tmp);
        }
        out_release(o);
}

int cli_same_file(const char *in, const char *out)
{
        struct stat a, b;
        if (!in || !out || strcmp(out, "-") == 0 || stat(in, &a) != 0 || stat(out, &b) != 0)
                return 0;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void cli_out_csv_name(struct cli_out *o, const char *name)
{
        size_t n = strlen(name);
        int quote = n == 0 || name[0] == ' ' || name[0] == '\t' || name[n - 1] == ' ' ||
                    name[n - 1] == '\t' || strpbrk(name, ",\"\r\n") != NULL;
        if (!quote) {
                cli_out_write(o, name, n);
                return;
        }
        cli_out_write(o, "\"", 1);
        for (const char *p = name; *p; p++) {
                if (*p == '"')
                        cli_out_write(o, "\"", 1);
                cli_out_write(o, p, 1);
        }
        cli_out_write(o, "\"", 1);
}

/* ---- progress ---------------------------------------------------------- */

void cli_progress_init(struct cli_progress *p, const char *what, uint64_t input_bytes)
{
        p->on = input_bytes > CLI_PROGRESS_MIN && isatty(STDERR_FILENO);
        p->last = -1;
        p->what = what;
}

void cli_progress_cb(void *ctx, uint64_t done, uint64_t total)
{
        struct cli_progress *p = ctx;
        char bar[41];
        int pct, fill;

        if (!p->on || total == 0)
                return;
        pct = (int)(done * 100 / total);
        if (pct > 100)
                pct = 100;
        if (pct == p->last)
                return;
        p->last = pct;
        fill = pct * 40 / 100;
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, ' ', (size_t)(40 - fill));
        bar[40] = '\0';
        fprintf(stderr, "\r%-12s [%s] %3d%%", p->what, bar, pct);
        fflush(stderr);
}

void cli_progress_note(struct cli_progress *p, const char *what)
{
        if (!p->on)
                return;
        fprintf(stderr, "\r\033[K%s...", what);
        fflush(stderr);
        p->last = -1;
}

void cli_progress_end(struct cli_progress *p)
{
        if (!p->on)
                return;
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        p->on = 0;
}

int cli_parse_rows(const char *s, uint64_t n, uint64_t *ret_a, uint64_t *ret_b)
{
        const char *colon = strchr(s, ':');
        uint64_t a = 0, b = n;
        char *end;

        if (!colon)
                return -1;
        if (colon != s) {
                if (*s < '0' || *s > '9')
                        return -1;
                errno = 0;
                a = strtoull(s, &end, 10);
                if (errno || end != colon)
                        return -1;
        }
        if (colon[1] != '\0') {
                if (colon[1] < '0' || colon[1] > '9')
                        return -1;
                errno = 0;
                b = strtoull(colon + 1, &end, 10);
                if (errno || *end != '\0')
                        return -1;
        }
        *ret_a = a;
        *ret_b = b;
        return 0;
}

int cli_opt_budget(const char *cmd, const char *arg, struct gd_budget *ret)
{
        if (gd_budget_parse(arg, ret) < 0) {
                cli_usage_error(cmd, "invalid budget '%s' (a fraction such as 0.01, or a count)",
                                arg);
                return CLI_USAGE;
        }
        return CLI_OK;
}

int cli_opt_order(const char *cmd, const char *arg, enum gd_order *ret)
{
        if (strcmp(arg, "msb") == 0) {
                *ret = GD_ORDER_MSB;
        } else if (strcmp(arg, "entropy") == 0) {
                *ret = GD_ORDER_ENTROPY;
        } else {
                cli_usage_error(cmd, "unknown order '%s' (msb or entropy)", arg);
                return CLI_USAGE;
        }
        return CLI_OK;
}

int cli_opt_error(const char *cmd, int c, char **argv, const struct option *longopts)
{
        const char *arg = argv[optind - 1], *hint = NULL;
        char word[64];

        if (c == ':') {
                cli_usage_error(cmd, "option '%s' needs a value", arg);
                return CLI_USAGE;
        }
        if (strncmp(arg, "--", 2) == 0) {
                /* "--name=value": the name alone. */
                snprintf(word, sizeof(word), "%.*s", (int)strcspn(arg + 2, "="), arg + 2);
                hint = cli_suggest_option(word, longopts);
        }
        if (hint)
                cli_usage_error(cmd, "unknown option '%s' (did you mean '--%s'?)", arg, hint);
        else
                cli_usage_error(cmd, "unknown option '%s'", arg);
        return CLI_USAGE;
}
