/* dream unpack: .dream file -> CSV with the original header. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli.h"
#include "common/alloc.h"
#include "common/err.h"
#include "storage/gd/gd.h"

static const char unpack_help[] =
    "usage: dream unpack FILE.dream [-o OUT.csv] [--rows A:B]\n"
    "\n"
    "Write the rows of a .dream file as CSV with the original header. Every\n"
    "value prints as the number that was packed (1016.60 may print as 1016.6).\n"
    "\n"
    "  -o, --output OUT   output file (default: standard output); written\n"
    "                     whole or not at all\n"
    "  -r, --rows A:B     only rows A (included) to B (excluded), 0-based;\n"
    "                     A or B may be left out: '10:', ':100'\n"
    "  -h, --help         this help\n"
    "\n"
    "Exit status: 0 ok, 1 usage, 2 bad input, 3 corrupt file, 4 internal error.\n";

/* Rows decoded per step: about 4M values at a time. */
static uint64_t step_rows(uint32_t n_cols)
{
        uint64_t s = (4u << 20) / (n_cols ? n_cols : 1);
        return s < 1 ? 1 : (s > 65536 ? 65536 : s);
}

int cli_unpack(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"rows", required_argument, NULL, 'r'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *path, *output = NULL, *rows = NULL;
        struct cli_dream d;
        struct gd_cursor *cur = NULL;
        struct gd_table *t = NULL;
        struct cli_out out;
        int out_open = 0, c, r, rc = CLI_INTERNAL;
        uint64_t a, b, n, step;
        uint32_t n_cols;
        const struct gd_colparam *params;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":o:r:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case 'r':
                        rows = optarg;
                        break;
                case 'h':
                        fputs(unpack_help, stdout);
                        return CLI_OK;
                case ':':
                        cli_usage_error("unpack", "option '%s' needs a value", argv[optind - 1]);
                        return CLI_USAGE;
                default:
                        cli_usage_error("unpack", "unknown option '%s'", argv[optind - 1]);
                        return CLI_USAGE;
                }
        }
        if (optind != argc - 1) {
                cli_usage_error("unpack", optind >= argc ? "missing FILE" : "too many arguments");
                return CLI_USAGE;
        }
        path = argv[optind];
        if (cli_same_file(path, output)) {
                cli_usage_error("unpack", "output '%s' would overwrite the input", output);
                return CLI_USAGE;
        }
        rc = cli_dream_open(path, &d);
        if (rc != CLI_OK)
                return rc;
        n = gd_segment_rows(d.seg);
        n_cols = gd_segment_cols(d.seg);
        params = gd_segment_params(d.seg);
        a = 0;
        b = n;
        if (rows && (cli_parse_rows(rows, n, &a, &b) < 0 || a > b || b > n)) {
                cli_usage_error("unpack", "invalid --rows '%s' (the file has %llu rows)", rows,
                                (unsigned long long)n);
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
        for (uint32_t j = 0; j < n_cols; j++) {
                if (j)
                        cli_out_write(&out, ",", 1);
                cli_out_csv_name(&out, gd_segment_col_name(d.seg, j));
        }
        cli_out_write(&out, "\n", 1);

        step = step_rows(n_cols);
        if (b - a < step)
                step = b - a ? b - a : 1;
        r = gd_cursor_new(d.seg, &cur);
        if (r == 0)
                r = gd_table_new(step, n_cols, &t);
        if (r < 0) {
                cli_error(path, 0, 0, "cannot decode: %s", dream_strerror(r));
                rc = cli_exit_for(r, 1);
                goto out;
        }
        for (uint64_t first = a; first < b; first += step) {
                uint64_t count = b - first < step ? b - first : step;
                r = gd_cursor_range(cur, first, count, t);
                if (r < 0) {
                        cli_error(path, 0, 0, "cannot decode rows %llu to %llu: %s",
                                  (unsigned long long)first, (unsigned long long)(first + count),
                                  dream_strerror(r));
                        rc = cli_exit_for(r, 1);
                        goto out;
                }
                for (uint64_t i = 0; i < count; i++) {
                        for (uint32_t j = 0; j < n_cols; j++) {
                                uint8_t *p = cli_out_room(&out, GD_FMT_MAX + 1);
                                size_t k = gd_format_value(params[j].kind, params[j].scale,
                                                           t->cols[j].v[i], (char *)p);
                                p[k] = j + 1 < n_cols ? ',' : '\n';
                                out.len += k + 1;
                        }
                }
                if (out.err)
                        break;
        }
        r = cli_out_commit(&out, 0);
        out_open = 0;
        if (r < 0) {
                cli_error(output ? output : "-", 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        rc = CLI_OK;
out:
        if (out_open)
                cli_out_abort(&out);
        gd_table_free(t);
        gd_cursor_free(cur);
        cli_dream_close(&d);
        return rc;
}
