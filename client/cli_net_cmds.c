/* dream ls, info, export, flush, drop, batch: commands on dreamd's
 * datasets; dream backup: a copy of dreamd's whole store. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli.h"
#include "common/alloc.h"
#include "common/err.h"
#include "dream/client.h"
#include "storage/gd/gd.h"

static const char *kind_name(enum dream_kind k)
{
        switch (k) {
        case DREAM_KIND_INT:
                return "int";
        case DREAM_KIND_DECIMAL:
                return "decimal";
        case DREAM_KIND_F64:
                return "f64";
        default:
                return "unknown";
        }
}

/* ---- ls ------------------------------------------------------------------ */

static const char ls_help[] = "usage: dream ls [-s ADDR] [--token-file F] [--json]\n"
                              "\n"
                              "List the datasets of dreamd: name, task, rows, columns and\n"
                              "bytes stored.\n"
                              "\n" CLI_NET_HELP "  -h, --help           this help\n"
                              "\n" CLI_NET_EXIT_HELP;

int cli_ls(int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_dataset_list *l = NULL;
        int r, rc;

        rc = cli_net_simple_args("ls", ls_help, "", argc, argv, &net, 0);
        if (rc >= 0)
                return rc;
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_dataset_list(cl, &l);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "cannot list the datasets");
                goto out;
        }
        if (net.json) {
                printf("[");
                for (size_t i = 0; i < l->n; i++) {
                        const struct dream_dataset_summary *d = &l->items[i];
                        printf("%s{\"dataset\":", i ? "," : "");
                        cli_json_str(stdout, d->name);
                        printf(",\"task\":\"%s\",\"rows\":%llu,\"columns\":%u,"
                               "\"stored_bytes\":%llu}",
                               cli_task_name(d->task), (unsigned long long)d->rows, d->columns,
                               (unsigned long long)d->stored_bytes);
                }
                printf("]\n");
        } else {
                printf("%-24s %-14s %12s %8s %12s\n", "NAME", "TASK", "ROWS", "COLUMNS", "STORED");
                for (size_t i = 0; i < l->n; i++) {
                        const struct dream_dataset_summary *d = &l->items[i];
                        const char *sz = cli_size(d->stored_bytes, 0);
                        printf("%-24s %-14s %12llu %8u %12s\n", d->name, cli_task_name(d->task),
                               (unsigned long long)d->rows, d->columns, sz);
                }
        }
        rc = CLI_OK;
out:
        dream_dataset_list_free(l);
        dream_close(cl);
        return rc;
}

/* ---- info ----------------------------------------------------------------- */

static const char info_help[] =
    "usage: dream info DATASET [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Show a dataset of dreamd: task and target, rows (sealed and staged),\n"
    "columns, segments, bytes stored, CSV bytes, bases, compression ratio and\n"
    "the schema.\n"
    "\n" CLI_NET_HELP "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

int cli_info(int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_dataset_info *d = NULL;
        const char *name;
        int r, rc;

        rc = cli_net_simple_args("info", info_help, "DATASET", argc, argv, &net, 1);
        if (rc >= 0)
                return rc;
        name = argv[optind];
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_dataset_describe(cl, name, &d);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "dataset '%s'", name);
                goto out;
        }
        if (net.json) {
                printf("{\"dataset\":");
                cli_json_str(stdout, d->name);
                printf(",\"task\":\"%s\",\"target\":", cli_task_name(d->task));
                cli_json_str(stdout, d->target);
                printf(",\"class_count\":%u,\"rows\":%llu,\"columns\":%u,\"segments\":%u,"
                       "\"staged_rows\":%llu,\"stored_bytes\":%llu,\"csv_bytes\":%llu,"
                       "\"bases\":%llu,\"ratio\":%.6g,\"created_unix\":%llu,\"schema\":[",
                       d->class_count, (unsigned long long)d->rows, d->columns, d->segments,
                       (unsigned long long)d->staged_rows, (unsigned long long)d->stored_bytes,
                       (unsigned long long)d->csv_bytes, (unsigned long long)d->bases, d->ratio,
                       (unsigned long long)d->created_unix);
                for (uint32_t j = 0; j < d->columns; j++) {
                        printf("%s{\"name\":", j ? "," : "");
                        cli_json_str(stdout, d->schema[j].name);
                        printf(",\"kind\":\"%s\",\"scale\":%u}", kind_name(d->schema[j].kind),
                               d->schema[j].scale);
                }
                printf("]}\n");
        } else {
                const char *a = cli_size(d->stored_bytes, 0), *b = cli_size(d->csv_bytes, 1);
                printf("dataset       %s\n", d->name);
                printf("task          %s", cli_task_name(d->task));
                if (d->target[0])
                        printf(" (target '%s'%s)", d->target,
                               d->task == DREAM_TASK_CLASSIFICATION && d->class_count ? "" : "");
                printf("\n");
                if (d->task == DREAM_TASK_CLASSIFICATION && d->class_count)
                        printf("classes       %u\n", d->class_count);
                printf("rows          %llu (%llu staged)\n", (unsigned long long)d->rows,
                       (unsigned long long)d->staged_rows);
                printf("columns       %u\n", d->columns);
                printf("segments      %u\n", d->segments);
                printf("bases         %llu\n", (unsigned long long)d->bases);
                printf("stored        %s\n", a);
                printf("as CSV        %s\n", b);
                printf("ratio         %.2fx\n", d->ratio);
        }
        rc = CLI_OK;
out:
        dream_dataset_info_free(d);
        dream_close(cl);
        return rc;
}

/* ---- flush, drop ------------------------------------------------------------ */

static const char flush_help[] = "usage: dream flush DATASET [-s ADDR] [--token-file F] [--json]\n"
                                 "\n"
                                 "Seal a dataset's staged rows into compressed segments now.\n"
                                 "\n" CLI_NET_HELP "  -h, --help           this help\n"
                                 "\n" CLI_NET_EXIT_HELP;

int cli_flush(int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_flush_result fr = DREAM_INIT(struct dream_flush_result);
        const char *name;
        int r, rc;

        rc = cli_net_simple_args("flush", flush_help, "DATASET", argc, argv, &net, 1);
        if (rc >= 0)
                return rc;
        name = argv[optind];
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_flush(cl, name, &fr);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "cannot flush dataset '%s'", name);
                goto out;
        }
        if (net.json) {
                printf("{\"dataset\":");
                cli_json_str(stdout, name);
                printf(",\"rows_sealed\":%llu,\"segments_sealed\":%u}\n",
                       (unsigned long long)fr.rows_sealed, fr.segments_sealed);
        } else {
                printf("flushed '%s': %llu rows sealed into %u segment%s\n", name,
                       (unsigned long long)fr.rows_sealed, fr.segments_sealed,
                       fr.segments_sealed == 1 ? "" : "s");
        }
        rc = CLI_OK;
out:
        dream_close(cl);
        return rc;
}

static const char drop_help[] = "usage: dream drop DATASET [-s ADDR] [--token-file F] [--json]\n"
                                "\n"
                                "Delete a dataset of dreamd with all its rows.\n"
                                "\n" CLI_NET_HELP "  -h, --help           this help\n"
                                "\n" CLI_NET_EXIT_HELP;

int cli_drop(int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        const char *name;
        int r, rc;

        rc = cli_net_simple_args("drop", drop_help, "DATASET", argc, argv, &net, 1);
        if (rc >= 0)
                return rc;
        name = argv[optind];
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_dataset_drop(cl, name);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "cannot drop dataset '%s'", name);
                goto out;
        }
        if (net.json) {
                printf("{\"dataset\":");
                cli_json_str(stdout, name);
                printf(",\"dropped\":true}\n");
        } else {
                printf("dropped dataset '%s'\n", name);
        }
        rc = CLI_OK;
out:
        dream_close(cl);
        return rc;
}

/* ---- backup ------------------------------------------------------------------- */

static const char backup_help[] =
    "usage: dream backup PATH [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Copy dreamd's whole store (compacted) into directory PATH while it keeps\n"
    "serving; the copy holds every row acknowledged before the command and opens\n"
    "with 'dreamd --data-dir PATH'. PATH is on the server's host and written by\n"
    "dreamd as its own user: it must be absolute (it is not resolved against this\n"
    "directory), and either not exist yet (its parent must) or be an empty\n"
    "directory.\n"
    "\n" CLI_NET_HELP "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

int cli_backup(int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_backup_result br = DREAM_INIT(struct dream_backup_result);
        const char *path;
        int r, rc;

        rc = cli_net_simple_args("backup", backup_help, "PATH", argc, argv, &net, 1);
        if (rc >= 0)
                return rc;
        path = argv[optind];
        if (path[0] != '/') {
                cli_usage_error("backup",
                                "PATH '%s' is not absolute: give the full path of a directory on "
                                "the server's host",
                                path);
                return CLI_USAGE;
        }
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        {
                /* One call with no progress from the server: on a terminal,
                 * a line says what is running until it returns. */
                struct cli_progress prog;
                cli_progress_init(&prog, "backup", CLI_PROGRESS_MIN + 1);
                cli_progress_note(&prog, "backing up the store (a compacted copy)");
                r = dream_backup(cl, path, &br);
                cli_progress_end(&prog);
        }
        if (r < 0) {
                rc = cli_net_fail(cl, r, "cannot back up to '%s'", path);
                /* Not a dataset: a missing parent directory is "another error". */
                if (r == DREAM_E_NOTFOUND)
                        rc = CLI_SERVER;
                goto out;
        }
        if (net.json) {
                printf("{\"path\":");
                cli_json_str(stdout, path);
                printf(",\"bytes\":%llu,\"seconds\":%.3f}\n", (unsigned long long)br.bytes,
                       br.seconds);
        } else {
                printf("backup written to '%s': %s in %.2f s\n", path, cli_size(br.bytes, 0),
                       br.seconds);
        }
        rc = CLI_OK;
out:
        dream_close(cl);
        return rc;
}

/* ---- export ------------------------------------------------------------------- */

static const char export_help[] =
    "usage: dream export DATASET [-o OUT.csv] [--rows A:B]\n"
    "                    [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Write the rows of a dataset of dreamd as CSV with its header, losslessly:\n"
    "every value prints as the number that was ingested (1016.60 may print as\n"
    "1016.6), as 'dream unpack' does.\n"
    "\n"
    "  -o, --output OUT     output file (default: standard output); written\n"
    "                       whole or not at all\n"
    "  -f, --force          overwrite an existing output file\n"
    "  -r, --rows A:B       only rows A (included) to B (excluded), 0-based;\n"
    "                       A or B may be left out: '10:', ':100'\n" CLI_NET_HELP
    "                       (export: the summary goes to standard error when\n"
    "                       the rows go to standard output)\n"
    "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

static enum gd_kind gd_kind_of(enum dream_kind k)
{
        return k == DREAM_KIND_INT ? GD_INT : k == DREAM_KIND_DECIMAL ? GD_DEC : GD_F64;
}

struct export_ctx {
        struct cli_out *out;
        struct cli_progress prog; /* rows written of [first, first + total) */
        uint64_t first, total;
};

static int write_rows(void *arg, uint64_t first_row, const struct dream_rows *rows)
{
        struct export_ctx *x = arg;
        struct cli_out *out = x->out;

        for (uint32_t i = 0; i < rows->n_rows; i++) {
                for (uint32_t j = 0; j < rows->n_cols; j++) {
                        const struct dream_values *cv = &rows->cols[j];
                        uint8_t *p = cli_out_room(out, GD_FMT_MAX + 1);
                        int64_t v = cv->v[i];
                        size_t k;

                        if (cv->kind == DREAM_KIND_F64) {
                                double d;
                                memcpy(&d, &v, sizeof(d));
                                v = gd_f64_to_key(d);
                        }
                        k = gd_format_value(gd_kind_of(cv->kind), (uint8_t)cv->scale, v, (char *)p);
                        p[k] = j + 1 < rows->n_cols ? ',' : '\n';
                        out->len += k + 1;
                }
        }
        cli_progress_cb(&x->prog, first_row + rows->n_rows - x->first, x->total);
        return out->err ? 1 : 0;
}

int cli_export(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"force", no_argument, NULL, 'f'},
            {"rows", required_argument, NULL, 'r'},
            {"help", no_argument, NULL, 'h'},
            CLI_NET_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_dataset_info *d = NULL;
        const char *name, *output = NULL, *rows_arg = NULL;
        struct cli_out out;
        uint64_t a, b, got = 0;
        int out_open = 0, force = 0, c, r, rc;
        double t0 = cli_now();

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":o:r:fh" CLI_NET_SHORTOPTS, longopts, NULL)) != -1) {
                if (cli_net_opt(&net, c, optarg))
                        continue;
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case 'f':
                        force = 1;
                        break;
                case 'r':
                        rows_arg = optarg;
                        break;
                case 'h':
                        fputs(export_help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error("export", c, argv, longopts);
                }
        }
        if (argc - optind != 1) {
                cli_usage_error("export",
                                optind >= argc ? "missing DATASET" : "too many arguments");
                return CLI_USAGE;
        }
        name = argv[optind];
        rc = cli_out_check("export", output, force);
        if (rc != CLI_OK)
                return rc;
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_dataset_describe(cl, name, &d);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "dataset '%s'", name);
                goto out;
        }
        a = 0;
        b = d->rows;
        if (rows_arg && (cli_parse_rows(rows_arg, d->rows, &a, &b) < 0 || a > b || b > d->rows)) {
                cli_usage_error("export", "invalid --rows '%s' (dataset '%s' has %llu rows)",
                                rows_arg, name, (unsigned long long)d->rows);
                rc = CLI_USAGE;
                goto out;
        }
        r = cli_out_open(&out, output);
        if (r < 0) {
                cli_error(output, 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        out_open = 1;
        for (uint32_t j = 0; j < d->columns; j++) {
                if (j)
                        cli_out_write(&out, ",", 1);
                cli_out_csv_name(&out, d->schema[j].name);
        }
        cli_out_write(&out, "\n", 1);
        if (b > a) {
                struct export_ctx x = {.out = &out, .first = a, .total = b - a};

                /* Bytes as the store's 8-byte cells: the bar shows for
                 * exports of more than about 16 MiB of values. */
                cli_progress_init(&x.prog, "export", (b - a) * d->columns * 8);
                r = dream_export(cl, name, a, b - a, write_rows, &x, &got);
                cli_progress_end(&x.prog);
                if (r > 0)
                        r = 0; /* a write error: reported by the commit below */
                if (r < 0) {
                        rc = cli_net_fail(cl, r, "cannot export dataset '%s'", name);
                        goto out;
                }
                if (got != b - a && !out.err) {
                        fprintf(stderr, "dream: dataset '%s': got %llu rows, expected %llu\n", name,
                                (unsigned long long)got, (unsigned long long)(b - a));
                        rc = CLI_SERVER;
                        goto out;
                }
        }
        r = cli_out_commit(&out, 0);
        out_open = 0;
        if (r < 0) {
                cli_error(output ? output : "-", 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        if (net.json) {
                FILE *f = output && strcmp(output, "-") != 0 ? stdout : stderr;
                fprintf(f, "{\"dataset\":");
                cli_json_str(f, name);
                fprintf(f, ",\"first_row\":%llu,\"rows\":%llu,\"columns\":%u,\"seconds\":%.3f}\n",
                        (unsigned long long)a, (unsigned long long)got, d->columns, cli_now() - t0);
        }
        rc = CLI_OK;
out:
        if (out_open)
                cli_out_abort(&out);
        dream_dataset_info_free(d);
        dream_close(cl);
        return rc;
}

/* ---- batch ---------------------------------------------------------------------- */

static const char batch_help[] =
    "usage: dream batch DATASET --size N [--mode condensed|full|sample]\n"
    "                   [--budget B] [--seed S] [--epoch E] [--max-batches K]\n"
    "                   [-o OUT.csv] [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Stream mini-batches of a dataset of dreamd and write them as CSV: the\n"
    "features (float32), then 'target' and 'weight' columns when the batches\n"
    "have them, one line per sample, batch after batch.\n"
    "\n"
    "  -n, --size N         samples per batch (required)\n"
    "  -m, --mode MODE      condensed (default: condensed samples of the\n"
    "                       budget, weights = group sizes), full (or rows: every\n"
    "                       row once per epoch, shuffled by seed and epoch) or\n"
    "                       sample (a uniform random subset of the budget)\n"
    "  -b, --budget B       condensed/sample: a row count (92) or a fraction\n"
    "                       (0.01, 1%); default: the server's\n"
    "      --seed S         shuffling and sampling seed (default 0)\n"
    "      --epoch E        epoch number (default 0)\n"
    "      --max-batches K  stop after K batches (default: the whole epoch)\n"
    "  -o, --output OUT     output file (default: standard output); written\n"
    "                       whole or not at all\n"
    "  -f, --force          overwrite an existing output file\n" CLI_NET_HELP
    "                       (batch: the summary goes to standard error when\n"
    "                       the rows go to standard output)\n"
    "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

struct batch_ctx {
        struct cli_out *out;
        uint64_t batches, rows;
        uint32_t d;
        int header_done;
        const struct dream_dataset_info *info;
        uint8_t token[DREAM_RESUME_TOKEN_MAX];
        size_t token_len;
        uint64_t position;
        uint32_t epoch;
        struct cli_progress prog; /* rows of at most `expect` (the dataset's, or max-batches') */
        uint64_t expect;
};

static void put_float(struct cli_out *o, float v, char sep)
{
        uint8_t *p = cli_out_room(o, 48);
        int k = snprintf((char *)p, 48, "%.9g", (double)v);
        p[k] = (uint8_t)sep;
        o->len += (size_t)k + 1;
}

static void batch_header(struct batch_ctx *x, const struct dream_batch *b)
{
        const struct dream_dataset_info *d = x->info;
        uint32_t f = 0;
        int named = d->columns == b->d + (d->target[0] ? 1u : 0u);

        for (uint32_t j = 0; named && j < d->columns; j++) {
                if (d->target[0] && strcmp(d->schema[j].name, d->target) == 0)
                        continue;
                if (f)
                        cli_out_write(x->out, ",", 1);
                cli_out_csv_name(x->out, d->schema[j].name);
                f++;
        }
        for (; !named && f < b->d; f++) {
                char nm[32];
                snprintf(nm, sizeof(nm), "%sx%u", f ? "," : "", f);
                cli_out_write(x->out, nm, strlen(nm));
        }
        if (b->targets)
                cli_out_write(x->out, b->d ? ",target" : "target", b->d ? 7 : 6);
        if (b->weights)
                cli_out_write(x->out, ",weight", 7);
        cli_out_write(x->out, "\n", 1);
        x->header_done = 1;
}

static int write_batch(void *arg, const struct dream_batch *b)
{
        struct batch_ctx *x = arg;

        if (!x->header_done)
                batch_header(x, b);
        for (uint32_t i = 0; i < b->n; i++) {
                for (uint32_t f = 0; f < b->d; f++)
                        put_float(x->out, b->features[(size_t)i * b->d + f],
                                  f + 1 < b->d || b->targets || b->weights ? ',' : '\n');
                if (b->targets)
                        put_float(x->out, b->targets[i], b->weights ? ',' : '\n');
                if (b->weights)
                        put_float(x->out, b->weights[i], '\n');
        }
        x->batches++;
        x->rows += b->n;
        cli_progress_cb(&x->prog, x->rows < x->expect ? x->rows : x->expect, x->expect);
        x->position = b->position;
        x->epoch = b->epoch;
        x->token_len = b->resume_token_len <= sizeof(x->token) ? b->resume_token_len : 0;
        memcpy(x->token, b->resume_token, x->token_len);
        return x->out->err ? 1 : 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
        char *end;
        unsigned long long v;

        if (*s < '0' || *s > '9')
                return -1;
        v = strtoull(s, &end, 10);
        if (*end || v > max)
                return -1;
        *ret = v;
        return 0;
}

int cli_batch(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"size", required_argument, NULL, 'n'},
            {"mode", required_argument, NULL, 'm'},
            {"budget", required_argument, NULL, 'b'},
            {"seed", required_argument, NULL, 'S'},
            {"epoch", required_argument, NULL, 'E'},
            {"max-batches", required_argument, NULL, 'K'},
            {"output", required_argument, NULL, 'o'},
            {"force", no_argument, NULL, 'f'},
            {"help", no_argument, NULL, 'h'},
            CLI_NET_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_dataset_info *d = NULL;
        struct dream_batch_opts bo = DREAM_INIT(struct dream_batch_opts);
        struct batch_ctx x;
        struct cli_out out;
        struct gd_budget budget;
        static const char *const batch_modes[] = {"condensed", "full", "sample"};
        const char *name, *output = NULL, *mode = "condensed";
        uint64_t v;
        int have_size = 0, out_open = 0, force = 0, c, r, rc;

        dream_batch_opts_default(&bo);
        bo.mode = DREAM_BATCH_CONDENSED;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":n:m:b:o:fh" CLI_NET_SHORTOPTS, longopts, NULL)) !=
               -1) {
                if (cli_net_opt(&net, c, optarg))
                        continue;
                switch (c) {
                case 'n':
                        if (parse_u64(optarg, 1u << 20, &v) < 0 || v == 0) {
                                cli_usage_error("batch", "invalid --size '%s' (1 to 1048576)",
                                                optarg);
                                return CLI_USAGE;
                        }
                        bo.batch_size = (uint32_t)v;
                        have_size = 1;
                        break;
                case 'm':
                        if (strcmp(optarg, "condensed") == 0)
                                bo.mode = DREAM_BATCH_CONDENSED;
                        /* "full" is train's name for rows: both spellings work in both. */
                        else if (strcmp(optarg, "full") == 0 || strcmp(optarg, "rows") == 0)
                                bo.mode = DREAM_BATCH_ROWS;
                        else if (strcmp(optarg, "sample") == 0)
                                bo.mode = DREAM_BATCH_SAMPLE;
                        else
                                return cli_unknown_name("batch", "mode", optarg, batch_modes,
                                                        sizeof(batch_modes) /
                                                            sizeof(batch_modes[0]));
                        mode = bo.mode == DREAM_BATCH_ROWS ? "full" : optarg;
                        break;
                case 'b':
                        if (cli_opt_budget("batch", optarg, &budget) != CLI_OK)
                                return CLI_USAGE;
                        bo.budget_rows = budget.count;
                        bo.budget_fraction = budget.count ? 0 : budget.fraction;
                        break;
                case 'S':
                        if (parse_u64(optarg, UINT64_MAX, &bo.seed) < 0) {
                                cli_usage_error("batch", "invalid --seed '%s'", optarg);
                                return CLI_USAGE;
                        }
                        break;
                case 'E':
                        if (parse_u64(optarg, UINT32_MAX, &v) < 0) {
                                cli_usage_error("batch", "invalid --epoch '%s'", optarg);
                                return CLI_USAGE;
                        }
                        bo.epoch = (uint32_t)v;
                        break;
                case 'K':
                        if (parse_u64(optarg, UINT32_MAX, &v) < 0) {
                                cli_usage_error("batch", "invalid --max-batches '%s'", optarg);
                                return CLI_USAGE;
                        }
                        bo.max_batches = (uint32_t)v;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case 'f':
                        force = 1;
                        break;
                case 'h':
                        fputs(batch_help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error("batch", c, argv, longopts);
                }
        }
        if (argc - optind != 1) {
                cli_usage_error("batch", optind >= argc ? "missing DATASET" : "too many arguments");
                return CLI_USAGE;
        }
        if (!have_size) {
                cli_usage_error("batch", "missing --size N");
                return CLI_USAGE;
        }
        name = argv[optind];
        rc = cli_out_check("batch", output, force);
        if (rc != CLI_OK)
                return rc;
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_dataset_describe(cl, name, &d);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "dataset '%s'", name);
                goto out;
        }
        r = cli_out_open(&out, output);
        if (r < 0) {
                cli_error(output, 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        out_open = 1;
        memset(&x, 0, sizeof(x));
        x.out = &out;
        x.info = d;
        x.expect = d->rows;
        if (bo.max_batches && bo.batch_size && (uint64_t)bo.max_batches * bo.batch_size < x.expect)
                x.expect = (uint64_t)bo.max_batches * bo.batch_size;
        cli_progress_init(&x.prog, "batches", x.expect * d->columns * 4);
        r = dream_get_batches(cl, name, &bo, write_batch, &x);
        cli_progress_end(&x.prog);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "cannot get batches of dataset '%s'", name);
                goto out;
        }
        r = cli_out_commit(&out, 0);
        out_open = 0;
        if (r < 0) {
                cli_error(output ? output : "-", 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        if (net.json) {
                FILE *f = output && strcmp(output, "-") != 0 ? stdout : stderr;
                fprintf(f, "{\"dataset\":");
                cli_json_str(f, name);
                fprintf(f,
                        ",\"mode\":\"%s\",\"batches\":%llu,\"rows\":%llu,\"epoch\":%u,"
                        "\"position\":%llu,\"resume_token\":\"",
                        mode, (unsigned long long)x.batches, (unsigned long long)x.rows, x.epoch,
                        (unsigned long long)x.position);
                for (size_t i = 0; i < x.token_len; i++)
                        fprintf(f, "%02x", x.token[i]);
                fprintf(f, "\"}\n");
        }
        rc = CLI_OK;
out:
        if (out_open)
                cli_out_abort(&out);
        dream_dataset_info_free(d);
        dream_close(cl);
        return rc;
}
