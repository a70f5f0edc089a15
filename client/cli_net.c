/* Shared parts of the commands that talk to dreamd: options, connecting,
 * messages and exit codes, JSON strings. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/cli.h"
#include "common/alloc.h"
#include "common/err.h"
#include "dream/client.h"

int cli_net_opt(struct cli_net *n, int c, const char *arg)
{
        switch (c) {
        case 's':
                n->addr = arg;
                return 1;
        case 'T':
                n->token_file = arg;
                return 1;
        case 'J':
                n->json = 1;
                return 1;
        default:
                return 0;
        }
}

const char *cli_task_name(enum dream_task t)
{
        switch (t) {
        case DREAM_TASK_REGRESSION:
                return "regression";
        case DREAM_TASK_CLASSIFICATION:
                return "classification";
        default:
                return "none";
        }
}

double cli_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Exit code for a libdream error. */
static int exit_for(int err)
{
        switch (err) {
        case 0:
                return CLI_OK;
        case DREAM_E_AUTH:
        case DREAM_E_DENIED:
                return CLI_AUTH;
        case DREAM_E_NOTFOUND:
                return CLI_NOTFOUND;
        case DREAM_E_SCHEMA:
                return CLI_SCHEMA;
        case DREAM_E_TIMEOUT:
                return CLI_UNREACHABLE;
        case DREAM_E_NOMEM:
                return CLI_INTERNAL;
        case DREAM_E_FULL:
                return CLI_FULL;
        default:
                /* Negative errno values are the transport's. */
                return err > -4096 ? CLI_UNREACHABLE : CLI_SERVER;
        }
}

const char *cli_strip_field_path(const char *why)
{
        const char *p = why;
        int dot = 0;

        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
               *p == '_' || *p == '.' || *p == '[' || *p == ']') {
                dot |= *p == '.';
                p++;
        }
        return dot && p > why && p[-1] != '.' && p[0] == ':' && p[1] == ' ' ? p + 2 : why;
}

int cli_net_fail(struct dream_client *c, int err, const char *fmt, ...)
{
        const char *why = dream_last_error(c);
        char ctx[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(ctx, sizeof(ctx), fmt, ap);
        va_end(ap);
        if (!why || !*why)
                why = dream_strerror(err);
        why = cli_strip_field_path(why);
        /* "dataset 'x'" and "no dataset 'x'": say it once. */
        if (strstr(why, ctx))
                fprintf(stderr, "dream: %s\n", why);
        else
                fprintf(stderr, "dream: %s: %s\n", ctx, why);
        return exit_for(err);
}

/* The token: the file's first line without its line end and blanks. */
static int read_token(const char *path, char **ret)
{
        struct cli_file f;
        size_t a = 0, b;
        char *tok;
        int r;

        r = cli_file_load(path, &f);
        if (r < 0)
                return r;
        b = f.len;
        for (size_t i = 0; i < f.len; i++) {
                if (f.data[i] == '\n' || f.data[i] == '\r') {
                        b = i;
                        break;
                }
        }
        while (a < b && (f.data[a] == ' ' || f.data[a] == '\t'))
                a++;
        while (b > a && (f.data[b - 1] == ' ' || f.data[b - 1] == '\t'))
                b--;
        if (b - a > DREAM_MAX_TOKEN) {
                cli_file_release(&f);
                return DREAM_E_LIMIT;
        }
        tok = dm_malloc(b - a + 1);
        if (!tok) {
                cli_file_release(&f);
                return DREAM_E_NOMEM;
        }
        memcpy(tok, f.data + a, b - a);
        tok[b - a] = '\0';
        cli_file_release(&f);
        *ret = tok;
        return 0;
}

static int net_connect(const struct cli_net *n, int quiet, struct dream_client **ret)
{
        const char *addr = n->addr, *token_file = n->token_file;
        struct dream_connect_opts o = DREAM_INIT(struct dream_connect_opts);
        struct dream_client *c = NULL;
        struct dream_addr pa;
        char *token = NULL;
        int r, rc;

        if (!addr || !*addr)
                addr = getenv("DREAM_ADDR");
        if (!addr || !*addr)
                addr = DREAM_DEFAULT_ADDR;
        if (dream_addr_parse(addr, &pa) < 0) {
                fprintf(stderr,
                        "dream: invalid server address '%s' (expected HOST:PORT, [IPV6]:PORT or "
                        "unix:PATH)\n",
                        addr);
                return CLI_USAGE;
        }
        if (!token_file || !*token_file)
                token_file = getenv("DREAM_TOKEN_FILE");
        if (token_file && *token_file) {
                r = read_token(token_file, &token);
                if (r < 0) {
                        cli_error(token_file, 0, 0, "cannot read the token: %s",
                                  r == DREAM_E_LIMIT ? "token too long" : cli_load_strerror(r));
                        return r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                }
        }
        dream_connect_opts_default(&o);
        o.client_name = "dream-cli/" DREAM_VERSION;
        o.io_timeout_ms = n->io_timeout_ms;
        r = dream_connect(addr, &o, &c);
        if (r < 0 && quiet) {
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_UNREACHABLE;
                goto free_token;
        }
        if (r == DREAM_E_NOTFOUND) {
                fprintf(stderr,
                        "dream: cannot connect to dreamd at '%s': unknown host '%s' (the name "
                        "does not resolve; check it, or give an IP address)\n",
                        addr, pa.host);
                rc = CLI_UNREACHABLE;
                goto free_token;
        }
        if (r < 0) {
                fprintf(stderr, "dream: cannot connect to dreamd at '%s': %s%s\n", addr,
                        dream_strerror(r),
                        r == -ECONNREFUSED || r == -ENOENT ? " (is dreamd running?)" : "");
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_UNREACHABLE;
                goto free_token;
        }
        r = dream_hello(c, token, NULL);
        if (r < 0) {
                if (r == DREAM_E_AUTH) {
                        rc = cli_net_fail(c, r, "authentication refused by dreamd at '%s'", addr);
                } else if (r == DREAM_E_PROTO) {
                        /* Its first answer is no dreamd frame (an SSH banner,
                         * an HTTP reply...): another service on that port. */
                        fprintf(stderr,
                                "dream: '%s' is not a dreamd server: its answer to the greeting "
                                "is not in dreamd's protocol (is this the right port?)\n",
                                addr);
                        rc = CLI_UNREACHABLE;
                } else {
                        rc = cli_net_fail(c, r, "dreamd at '%s'", addr);
                }
                dream_close(c);
                goto free_token;
        }
        *ret = c;
        rc = CLI_OK;
free_token:
        if (token) {
                memset(token, 0, strlen(token));
                dm_free(token);
        }
        return rc;
}

int cli_net_connect(const struct cli_net *n, struct dream_client **ret)
{
        return net_connect(n, 0, ret);
}

int cli_net_try_connect(const struct cli_net *n, struct dream_client **ret)
{
        return net_connect(n, 1, ret);
}

void cli_json_str(FILE *f, const char *s)
{
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (*p < 0x20)
                                fprintf(f, "\\u%04x", *p);
                        else
                                fputc(*p, f);
                }
        }
        fputc('"', f);
}

int cli_net_simple_args(const char *cmd, const char *help, const char *what, int argc, char **argv,
                        struct cli_net *net, int n_args)
{
        static const struct option longopts[] = {
            {"help", no_argument, NULL, 'h'},
            CLI_NET_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h" CLI_NET_SHORTOPTS, longopts, NULL)) != -1) {
                if (cli_net_opt(net, c, optarg))
                        continue;
                switch (c) {
                case 'h':
                        fputs(help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error(cmd, c, argv, longopts);
                }
        }
        if (argc - optind > n_args) {
                cli_usage_error(cmd, "too many arguments");
                return CLI_USAGE;
        }
        if (argc - optind < n_args) {
                cli_usage_error(cmd, "missing %s", what);
                return CLI_USAGE;
        }
        return -1;
}

enum dream_kind cli_wire_kind(enum gd_kind k)
{
        return k == GD_INT ? DREAM_KIND_INT : k == GD_DEC ? DREAM_KIND_DECIMAL : DREAM_KIND_F64;
}

void cli_table_f64_to_wire(struct gd_table *t)
{
        for (uint32_t j = 0; j < t->n_cols; j++) {
                if (t->cols[j].kind != GD_F64)
                        continue;
                for (uint64_t i = 0; i < t->n_rows; i++) {
                        double d = gd_key_to_f64(t->cols[j].v[i]);
                        memcpy(&t->cols[j].v[i], &d, sizeof(d));
                }
        }
}

uint64_t cli_rows_per_request(struct dream_client *c, uint64_t target_bytes, uint64_t row_bytes,
                              uint64_t max_rows)
{
        uint64_t per;

        if (target_bytes > dream_max_frame(c) / 2)
                target_bytes = dream_max_frame(c) / 2;
        per = target_bytes / (row_bytes ? row_bytes : 1);
        if (per > max_rows)
                per = max_rows;
        return per ? per : 1;
}
