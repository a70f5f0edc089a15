#include "server/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "proto/frame.h"

int srv_fail(char *errmsg, size_t size, int code, const char *fmt, ...)
{
        va_list ap;

        if (errmsg && size) {
                va_start(ap, fmt);
                vsnprintf(errmsg, size, fmt, ap);
                va_end(ap);
        }
        return code;
}

void srv_config_init(struct srv_config *c)
{
        memset(c, 0, sizeof(*c));
        c->max_connections = SRV_DEFAULT_CONNECTIONS;
        c->max_peer_conns = SRV_DEFAULT_PEER_CONNS;
        c->max_frame = DREAM_MAX_FRAME_DEFAULT;
        c->max_buffered_bytes = SRV_DEFAULT_MAX_BUFFERED;
        c->idle_timeout = SRV_DEFAULT_IDLE_TIMEOUT;
        c->frame_timeout = SRV_DEFAULT_FRAME_TIMEOUT;
        c->workers = SRV_DEFAULT_WORKERS;
        c->jobs = SRV_DEFAULT_JOBS;
        c->blas_threads = SRV_DEFAULT_BLAS_THREADS;
        c->job_queue = SRV_DEFAULT_JOB_QUEUE;
        c->batch_cache_bytes = SRV_DEFAULT_BATCH_CACHE;
        c->job_memory = SRV_DEFAULT_JOB_MEMORY;
        c->log_level = DM_LOG_INFO;
}

static void clear_listen(struct srv_config *c)
{
        for (uint32_t i = 0; i < c->n_listen; i++) {
                dm_free(c->listen[i]);
                c->listen[i] = NULL;
        }
        c->n_listen = 0;
}

void srv_config_release(struct srv_config *c)
{
        if (!c)
                return;
        clear_listen(c);
        dm_free(c->data_dir);
        dm_free(c->token_file);
        dm_free(c->port_file);
        dm_free(c->config_file);
        dm_free(c->metrics_listen);
        srv_config_init(c);
}

/* Unsigned integer in [lo, hi], decimal only, no sign, no trailing junk. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *ret)
{
        unsigned long long v;
        char *end;

        if (!isdigit((unsigned char)s[0]))
                return DREAM_E_INVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || v < lo || v > hi)
                return DREAM_E_INVAL;
        *ret = v;
        return 0;
}

/* Seconds: a finite number in (0, 1e6]. */
static int parse_seconds(const char *s, double *ret)
{
        char *end;
        double v;

        if (!s[0])
                return DREAM_E_INVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno || *end || !isfinite(v) || v <= 0 || v > 1e6)
                return DREAM_E_INVAL;
        *ret = v;
        return 0;
}

static int set_str(char **dst, const char *v)
{
        char *s = dm_strdup(v);

        if (!s)
                return DREAM_E_NOMEM;
        dm_free(*dst);
        *dst = s;
        return 0;
}

/* Every key of the file, for suggestions on a misspelt one. */
static const char *const known_keys[] = {
    "listen",
    "data_dir",
    "token_file",
    "port_file",
    "log_level",
    "log_format",
    "map_size_max",
    "max_connections",
    "max_peer_connections",
    "max_buffered_bytes",
    "max_frame",
    "idle_timeout",
    "frame_timeout",
    "workers",
    "seal_rows",
    "jobs",
    "blas_threads",
    "job_queue",
    "batch_cache_bytes",
    "job_memory",
    "metrics_listen",
};

/* Levenshtein distance of a and b, both shorter than SRV_MAX_KEY_SUGGEST. */
static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b), row[SRV_MAX_KEY_SUGGEST + 1];

        if (la > SRV_MAX_KEY_SUGGEST || lb > SRV_MAX_KEY_SUGGEST)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];

                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        diag = up;
                        row[j] = best;
                }
        }
        return row[lb];
}

const char *srv_config_suggest(const char *key)
{
        const char *best = NULL;
        size_t best_d = SIZE_MAX, limit = strlen(key) / 3 + 1;

        if (limit > 3)
                limit = 3;
        for (size_t k = 0; k < sizeof(known_keys) / sizeof(known_keys[0]); k++) {
                size_t d = edit_distance(key, known_keys[k]);

                if (d < best_d) {
                        best_d = d;
                        best = known_keys[k];
                }
        }
        return best_d <= limit ? best : NULL;
}

int srv_config_set(struct srv_config *c, const char *key, const char *value, const char *where,
                   char *errmsg, size_t errmsg_size)
{
        const char *hint;
        uint64_t u;
        double d;
        int r;

        if (strcmp(key, "listen") == 0) {
                struct srv_addr a;
                char *s;

                if (srv_addr_parse(value, &a) < 0)
                        return srv_fail(
                            errmsg, errmsg_size, DREAM_E_INVAL,
                            "%s: listen: bad address '%s' (expected IP:PORT, [IPV6]:PORT "
                            "or unix:/path)",
                            where, value);
                if (c->n_listen >= SRV_MAX_LISTEN)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_LIMIT,
                                        "%s: listen: more than %u addresses", where,
                                        SRV_MAX_LISTEN);
                s = dm_strdup(value);
                if (!s)
                        return DREAM_E_NOMEM;
                c->listen[c->n_listen++] = s;
                return 0;
        }
        if (strcmp(key, "data_dir") == 0 || strcmp(key, "token_file") == 0 ||
            strcmp(key, "port_file") == 0) {
                char **dst = key[0] == 'd'   ? &c->data_dir
                             : key[0] == 't' ? &c->token_file
                                             : &c->port_file;
                if (!value[0] || strlen(value) > DREAM_MAX_PATH)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: %s: empty or longer than %u bytes", where, key,
                                        DREAM_MAX_PATH);
                return set_str(dst, value);
        }
        if (strcmp(key, "map_size_max") == 0) {
                /* At least 1 MiB; LMDB needs room for its meta pages. */
                if (parse_u64(value, 1u << 20, UINT64_MAX, &u) < 0)
                        return srv_fail(
                            errmsg, errmsg_size, DREAM_E_INVAL,
                            "%s: map_size_max: bad value '%s' (bytes, at least 1048576)", where,
                            value);
                c->map_size_max = u;
                return 0;
        }
        if (strcmp(key, "max_connections") == 0 || strcmp(key, "max_peer_connections") == 0) {
                if (parse_u64(value, 1, SRV_MAX_CONNECTIONS, &u) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: %s: bad value '%s' (1..%u)", where, key, value,
                                        SRV_MAX_CONNECTIONS);
                if (key[4] == 'c')
                        c->max_connections = (uint32_t)u;
                else
                        c->max_peer_conns = (uint32_t)u;
                return 0;
        }
        if (strcmp(key, "max_buffered_bytes") == 0) {
                if (parse_u64(value, 1, UINT64_MAX, &u) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: max_buffered_bytes: bad value '%s' (bytes, > 0)",
                                        where, value);
                c->max_buffered_bytes = u;
                return 0;
        }
        if (strcmp(key, "max_frame") == 0) {
                if (parse_u64(value, SRV_MIN_FRAME, UINT32_MAX - FRAME_HEADER_SIZE, &u) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: max_frame: bad value '%s' (bytes, %u..%u)", where,
                                        value, SRV_MIN_FRAME, UINT32_MAX - FRAME_HEADER_SIZE);
                c->max_frame = (uint32_t)u;
                return 0;
        }
        if (strcmp(key, "idle_timeout") == 0 || strcmp(key, "frame_timeout") == 0) {
                if (parse_seconds(value, &d) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: %s: bad value '%s' (seconds, > 0)", where, key, value);
                if (key[0] == 'i')
                        c->idle_timeout = d;
                else
                        c->frame_timeout = d;
                return 0;
        }
        if (strcmp(key, "workers") == 0) {
                if (parse_u64(value, 1, SRV_MAX_WORKERS, &u) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: workers: bad value '%s' (1..%u)", where, value,
                                        SRV_MAX_WORKERS);
                c->workers = (uint32_t)u;
                return 0;
        }
        if (strcmp(key, "jobs") == 0 || strcmp(key, "blas_threads") == 0 ||
            strcmp(key, "job_queue") == 0) {
                uint32_t max = key[0] == 'b' ? SRV_MAX_BLAS_THREADS : SRV_MAX_JOBS;
                if (parse_u64(value, 1, max, &u) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: %s: bad value '%s' (1..%u)", where, key, value, max);
                if (key[0] == 'b')
                        c->blas_threads = (uint32_t)u;
                else if (strcmp(key, "jobs") == 0)
                        c->jobs = (uint32_t)u;
                else
                        c->job_queue = (uint32_t)u;
                return 0;
        }
        if (strcmp(key, "seal_rows") == 0) {
                if (parse_u64(value, 1, DREAM_MAX_SEGMENT_ROWS, &u) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: seal_rows: bad value '%s' (1..%u)", where, value,
                                        DREAM_MAX_SEGMENT_ROWS);
                c->seal_rows = u;
                return 0;
        }
        if (strcmp(key, "batch_cache_bytes") == 0) {
                if (parse_u64(value, 0, UINT64_MAX, &u) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: batch_cache_bytes: bad value '%s' (bytes)", where,
                                        value);
                c->batch_cache_bytes = u;
                return 0;
        }
        if (strcmp(key, "job_memory") == 0) {
                if (parse_u64(value, SRV_MIN_JOB_MEMORY, UINT64_MAX, &u) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: job_memory: bad value '%s' (bytes, at least %llu)",
                                        where, value, SRV_MIN_JOB_MEMORY);
                c->job_memory = u;
                return 0;
        }
        if (strcmp(key, "metrics_listen") == 0) {
                struct srv_addr a;

                if (strcmp(value, "off") == 0) {
                        dm_free(c->metrics_listen);
                        c->metrics_listen = NULL;
                        return 0;
                }
                if (srv_addr_parse(value, &a) < 0 || a.is_unix)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: metrics_listen: bad address '%s' (expected "
                                        "127.0.0.1:PORT, [::1]:PORT or off)",
                                        where, value);
                /* The endpoint has no authentication: loopback only. */
                if (!a.loopback)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: metrics_listen: '%s' is not a loopback address "
                                        "(the metrics endpoint has no authentication)",
                                        where, value);
                return set_str(&c->metrics_listen, value);
        }
        if (strcmp(key, "log_format") == 0) {
                enum dm_log_format f;

                if (dm_log_format_parse(value, &f) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "%s: log_format: bad value '%s' (text or json)", where,
                                        value);
                c->log_format = f;
                return 0;
        }
        if (strcmp(key, "log_level") == 0) {
                enum dm_log_level l;

                r = dm_log_level_parse(value, &l);
                if (r < 0)
                        return srv_fail(
                            errmsg, errmsg_size, DREAM_E_INVAL,
                            "%s: log_level: bad value '%s' (error, warn, info or debug)", where,
                            value);
                c->log_level = l;
                return 0;
        }
        hint = srv_config_suggest(key);
        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL, "%s: unknown key '%s'%s%s%s", where,
                        key, hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
}

static char *trim(char *s)
{
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
                *--e = '\0';
        return s;
}

/* Parse text; with report, every error of the file goes to it (and
 * *ret_errors counts them) and parsing goes on with the next line; without,
 * the first error is returned. */
static int parse_text(struct srv_config *c, const char *text, size_t len, const char *fname,
                      char *errmsg, size_t errmsg_size, srv_config_report_fn report, void *arg,
                      unsigned *ret_errors)
{
        char line[SRV_MAX_CONFIG_LINE];
        size_t pos = 0;
        unsigned lineno = 0;
        int first = 0;

        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
                char where[DREAM_MAX_PATH + 32];
                char *s, *eq, *key, *value;
                int r = 0;

                lineno++;
                snprintf(where, sizeof(where), "%s:%u", fname, lineno);
                pos += n + (nl ? 1 : 0);
                if (n >= sizeof(line)) {
                        r = srv_fail(errmsg, errmsg_size, DREAM_E_LIMIT,
                                     "%s: line longer than %zu bytes", where, sizeof(line) - 1);
                        goto next;
                }
                memcpy(line, text + pos - n - (nl ? 1 : 0), n);
                line[n] = '\0';
                if (memchr(line, '\0', n)) {
                        r = srv_fail(errmsg, errmsg_size, DREAM_E_INVAL, "%s: NUL byte", where);
                        goto next;
                }
                s = trim(line);
                if (!s[0] || s[0] == '#')
                        continue;
                eq = strchr(s, '=');
                if (!eq) {
                        r = srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                     "%s: expected 'key = value'", where);
                        goto next;
                }
                *eq = '\0';
                key = trim(s);
                value = trim(eq + 1);
                if (!key[0]) {
                        r = srv_fail(errmsg, errmsg_size, DREAM_E_INVAL, "%s: missing key", where);
                        goto next;
                }
                r = srv_config_set(c, key, value, where, errmsg, errmsg_size);
        next:
                if (r == DREAM_E_NOMEM || (r < 0 && !report))
                        return r;
                if (r < 0) {
                        report(errmsg, arg);
                        (*ret_errors)++;
                        if (!first)
                                first = r;
                }
        }
        return first;
}

int srv_config_parse(struct srv_config *c, const char *text, size_t len, const char *fname,
                     char *errmsg, size_t errmsg_size)
{
        return parse_text(c, text, len, fname, errmsg, errmsg_size, NULL, NULL, NULL);
}

int srv_config_parse_all(struct srv_config *c, const char *text, size_t len, const char *fname,
                         srv_config_report_fn report, void *arg, unsigned *ret_errors)
{
        char msg[DREAM_MAX_PATH + 512];

        *ret_errors = 0;
        return parse_text(c, text, len, fname, msg, sizeof(msg), report, arg, ret_errors);
}

int srv_config_read(const char *path, char **ret_text, size_t *ret_len, char *errmsg,
                    size_t errmsg_size)
{
        char *text = NULL;
        size_t len = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return srv_fail(errmsg, errmsg_size, -errno, "cannot open config file '%s': %s",
                                path, strerror(errno));
        text = dm_malloc(SRV_MAX_CONFIG_BYTES + 1);
        if (!text) {
                r = DREAM_E_NOMEM;
                goto close_fd;
        }
        for (;;) {
                ssize_t n = read(fd, text + len, SRV_MAX_CONFIG_BYTES + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = srv_fail(errmsg, errmsg_size, -errno,
                                     "cannot read config file '%s': %s", path, strerror(errno));
                        goto free_text;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > SRV_MAX_CONFIG_BYTES) {
                        r = srv_fail(errmsg, errmsg_size, DREAM_E_LIMIT,
                                     "config file '%s': larger than %u bytes", path,
                                     SRV_MAX_CONFIG_BYTES);
                        goto free_text;
                }
        }
        *ret_text = text;
        *ret_len = len;
        text = NULL;
        r = 0;
free_text:
        dm_free(text);
close_fd:
        close(fd);
        return r;
}

int srv_config_load(struct srv_config *c, const char *path, char *errmsg, size_t errmsg_size)
{
        char *text = NULL;
        size_t len = 0;
        int r;

        r = srv_config_read(path, &text, &len, errmsg, errmsg_size);
        if (r < 0)
                return r;
        r = srv_config_parse(c, text, len, path, errmsg, errmsg_size);
        if (r == 0)
                r = set_str(&c->config_file, path);
        dm_free(text);
        return r;
}

struct flag {
        const char *name;
        const char *key;
};

static const struct flag flags[] = {
    {"--listen", "listen"},
    {"--data-dir", "data_dir"},
    {"--token-file", "token_file"},
    {"--port-file", "port_file"},
    {"--log-level", "log_level"},
    {"--log-format", "log_format"},
    {"--map-size-max", "map_size_max"},
    {"--max-connections", "max_connections"},
    {"--max-peer-connections", "max_peer_connections"},
    {"--max-buffered-bytes", "max_buffered_bytes"},
    {"--max-frame", "max_frame"},
    {"--idle-timeout", "idle_timeout"},
    {"--frame-timeout", "frame_timeout"},
    {"--workers", "workers"},
    {"--seal-rows", "seal_rows"},
    {"--jobs", "jobs"},
    {"--blas-threads", "blas_threads"},
    {"--job-queue", "job_queue"},
    {"--batch-cache-bytes", "batch_cache_bytes"},
    {"--job-memory", "job_memory"},
    {"--metrics-listen", "metrics_listen"},
};

int srv_config_from_args(struct srv_config *c, int argc, char **argv, bool *ret_help, char *errmsg,
                         size_t errmsg_size)
{
        bool listen_cleared = false;
        int r;

        *ret_help = false;
        /* Pass 1: --help and --config. */
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        *ret_help = true;
                        return 0;
                }
                if (strcmp(argv[i], "--config") == 0) {
                        if (i + 1 >= argc)
                                return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                                "--config: missing value");
                        r = srv_config_load(c, argv[++i], errmsg, errmsg_size);
                        if (r < 0)
                                return r;
                }
        }
        /* Pass 2: every other flag overrides the file. */
        for (int i = 1; i < argc; i++) {
                const struct flag *f = NULL;
                char where[64];

                if (strcmp(argv[i], "--config") == 0) {
                        i++;
                        continue;
                }
                for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
                        if (strcmp(argv[i], flags[k].name) == 0)
                                f = &flags[k];
                if (!f)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "unknown option '%s' (see --help)", argv[i]);
                if (i + 1 >= argc)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL, "%s: missing value",
                                        f->name);
                if (strcmp(f->key, "listen") == 0 && !listen_cleared) {
                        clear_listen(c);
                        listen_cleared = true;
                }
                snprintf(where, sizeof(where), "option %s", f->name);
                r = srv_config_set(c, f->key, argv[++i], where, errmsg, errmsg_size);
                if (r < 0)
                        return r;
        }
        return 0;
}

int srv_addr_parse(const char *s, struct srv_addr *ret)
{
        struct srv_addr a;
        const char *colon, *host, *host_end;
        uint64_t port;

        memset(&a, 0, sizeof(a));
        if (strncmp(s, "unix:", 5) == 0) {
                size_t n = strlen(s + 5);
                if (n == 0 || n >= sizeof(a.path))
                        return DREAM_E_INVAL;
                memcpy(a.path, s + 5, n + 1);
                a.is_unix = true;
                a.loopback = true;
                *ret = a;
                return 0;
        }
        if (s[0] == '[') {
                host = s + 1;
                host_end = strchr(host, ']');
                if (!host_end || host_end[1] != ':')
                        return DREAM_E_INVAL;
                colon = host_end + 1;
                a.is_v6 = true;
        } else {
                host = s;
                colon = strrchr(s, ':');
                if (!colon)
                        return DREAM_E_INVAL;
                host_end = colon;
        }
        if (host_end == host || (size_t)(host_end - host) >= sizeof(a.host))
                return DREAM_E_INVAL;
        memcpy(a.host, host, (size_t)(host_end - host));
        a.host[host_end - host] = '\0';
        if (parse_u64(colon + 1, 0, 65535, &port) < 0)
                return DREAM_E_INVAL;
        a.port = (uint16_t)port;
        if (a.is_v6) {
                struct in6_addr in6;
                if (inet_pton(AF_INET6, a.host, &in6) != 1)
                        return DREAM_E_INVAL;
                a.loopback = memcmp(&in6, &in6addr_loopback, sizeof(in6)) == 0;
        } else {
                struct in_addr in4;
                if (inet_pton(AF_INET, a.host, &in4) != 1)
                        return DREAM_E_INVAL;
                a.loopback = (ntohl(in4.s_addr) >> 24) == 127;
        }
        *ret = a;
        return 0;
}

int srv_config_check(const struct srv_config *c, char *errmsg, size_t errmsg_size)
{
        if (!c->data_dir)
                return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                "no data directory: give --data-dir DIR or data_dir in the config");
        for (uint32_t i = 0; i < c->n_listen; i++) {
                struct srv_addr a;
                if (srv_addr_parse(c->listen[i], &a) < 0)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_INVAL,
                                        "bad listen address '%s'", c->listen[i]);
                if (!a.loopback && !c->token_file)
                        return srv_fail(errmsg, errmsg_size, DREAM_E_AUTH,
                                        "refusing to listen on non-loopback address '%s' without "
                                        "authentication: configure a token file (--token-file or "
                                        "token_file)",
                                        c->listen[i]);
        }
        return 0;
}

const char *srv_config_usage(void)
{
        return "usage: dreamd --data-dir DIR [options]\n"
               "       dreamd --check --data-dir DIR [--config FILE]\n"
               "  --listen ADDR          127.0.0.1:PORT, [::1]:PORT or unix:/path; repeatable\n"
               "                         (default " SRV_DEFAULT_LISTEN "; port 0 = any)\n"
               "  --data-dir DIR         store directory (required)\n"
               "  --config FILE          key = value file; flags override it\n"
               "  --check                verify every checksum of the store and exit\n"
               "  --check-config         report every error of the configuration and exit\n"
               "                         (0 fine, 2 not); does not open the store\n"
               "  --version              print the version and exit\n"
               "                         (0 clean, 1 damage found, 2 cannot open); no listening\n"
               "  --token-file F         one token per line; enables authentication\n"
               "  --port-file F          write the listening addresses here\n"
               "  --log-level L          error, warn, info (default) or debug\n"
               "  --log-format F         text (default) or json: one object per line\n"
               "  --map-size-max BYTES   --max-connections N  --max-frame BYTES\n"
               "  --max-peer-connections N  --max-buffered-bytes BYTES\n"
               "  --idle-timeout SEC     --frame-timeout SEC  --workers N  --seal-rows N\n"
               "  --batch-cache-bytes BYTES  --jobs N  --blas-threads N  --job-queue N\n"
               "  --job-memory BYTES     memory a training job may need (default 2 GiB)\n"
               "  --metrics-listen ADDR  serve Prometheus /metrics on this loopback\n"
               "                         address (127.0.0.1:PORT or [::1]:PORT; off)\n";
}
