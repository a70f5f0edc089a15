/* dream unpack: .dream file -> CSV with the original header. */
#include <errno.h>
#include <unistd.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/cli.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/par.h"
#include "storage/gd/gd.h"

static const char unpack_help[] =
    "usage: dream unpack FILE.dream [-o OUT.csv] [--rows A:B]\n"
    "\n"
    "Write the rows of a .dream file as CSV with the original header. Every\n"
    "value prints as the number that was packed (1016.60 may print as 1016.6).\n"
    "\n"
    "  -o, --output OUT   output file (default: standard output); written\n"
    "                     whole or not at all\n"
    "  -f, --force        overwrite an existing output file\n"
    "  -r, --rows A:B     only rows A (included) to B (excluded), 0-based;\n"
    "                     A or B may be left out: '10:', ':100'\n"
    "  -j, --json         then one JSON line on standard output: file, output,\n"
    "                     rows, columns, output_bytes, first_row (needs -o)\n"
    "  -h, --help         this help\n"
    "\n"
    "Exit status: 0 ok, 1 usage, 2 bad input, 3 corrupt file, 4 internal error.\n";

/* Rows decoded per step: about 4M values at a time. */
static uint64_t step_rows(uint32_t n_cols)
{
        uint64_t s = (4u << 20) / (n_cols ? n_cols : 1);
        return s < 1 ? 1 : (s > 65536 ? 65536 : s);
}

/* One chunk of rows decoded and printed as CSV into its own buffer, so that
 * two chunks can be prepared at once (decoding and printing are most of
 * unpack's time); each part has its own cursor (block cache). */
struct part {
        const struct gd_segment *seg;
        struct gd_cursor *cur;
        int64_t *v; /* one decoded row */
        struct dm_buf text;
        uint64_t first, count;
        int err;
};

static void format_part(void *arg)
{
        struct part *p = arg;
        const struct gd_colparam *params = gd_segment_params(p->seg);
        const uint32_t n_cols = gd_segment_cols(p->seg);
        const size_t row_max = (size_t)n_cols * (GD_FMT_MAX + 1);

        p->text.len = 0;
        p->err = 0;
        /* Row by row straight from the cursor: a column-major table in between
         * costs a cache miss per column per row on wide rows. */
        for (uint64_t i = 0; p->err == 0 && i < p->count; i++) {
                p->err = gd_cursor_row(p->cur, p->first + i, p->v);
                if (p->err == 0)
                        p->err = dm_buf_reserve(&p->text, row_max);
                if (p->err < 0)
                        break;
                char *o = (char *)p->text.data + p->text.len;
                size_t k = 0;
                for (uint32_t j = 0; j < n_cols; j++) {
                        k += gd_format_value(params[j].kind, params[j].scale, p->v[j], o + k);
                        o[k++] = j + 1 < n_cols ? ',' : '\n';
                }
                p->text.len += k;
        }
}

static int part_init(struct part *p, const struct gd_segment *seg)
{
        p->seg = seg;
        p->v = dm_mallocarray(gd_segment_cols(seg), sizeof(int64_t));
        return p->v ? gd_cursor_new(seg, &p->cur) : DREAM_E_NOMEM;
}

static void part_release(struct part *p)
{
        gd_cursor_free(p->cur);
        dm_free(p->v);
        dm_buf_release(&p->text);
}

int cli_unpack(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'f'},
            {"rows", required_argument, NULL, 'r'},   {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
        };
        const char *path, *output = NULL, *rows = NULL;
        struct cli_dream d;
        struct part parts[2] = {0}; /* zeroed: part_release is safe on both */
        int n_parts = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;
        struct cli_out out;
        int out_open = 0, force = 0, json = 0, c, r, rc = CLI_INTERNAL;
        uint64_t a, b, n, step;
        uint32_t n_cols;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":o:r:fjh", longopts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        json = 1;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case 'f':
                        force = 1;
                        break;
                case 'r':
                        rows = optarg;
                        break;
                case 'h':
                        fputs(unpack_help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error("unpack", c, argv, longopts);
                }
        }
        if (optind != argc - 1) {
                cli_usage_error("unpack", optind >= argc ? "missing FILE" : "too many arguments");
                return CLI_USAGE;
        }
        path = argv[optind];
        if (json && cli_json_needs_file("unpack", output) != CLI_OK)
                return CLI_USAGE;
        if (cli_same_file(path, output)) {
                cli_usage_error("unpack", "output '%s' would overwrite the input", output);
                return CLI_USAGE;
        }
        rc = cli_out_check("unpack", output, force);
        if (rc != CLI_OK)
                return rc;
        rc = cli_dream_open(path, &d);
        if (rc != CLI_OK)
                return rc;
        n = gd_segment_rows(d.seg);
        n_cols = gd_segment_cols(d.seg);
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
        r = 0;
        for (int k = 0; k < n_parts && r == 0; k++)
                r = part_init(&parts[k], d.seg);
        if (r < 0) {
                cli_error(path, 0, 0, "cannot decode: %s", dream_strerror(r));
                rc = cli_exit_for(r, 1);
                goto out;
        }
        /* Rounds of n_parts chunks: the second on a thread while this one
         * does the first; written in order. */
        for (uint64_t first = a; first < b && !out.err; first += step * (uint64_t)n_parts) {
                int used = 0;
                for (int k = 0; k < n_parts && first + step * (uint64_t)k < b; k++) {
                        uint64_t f = first + step * (uint64_t)k;
                        parts[k].first = f;
                        parts[k].count = b - f < step ? b - f : step;
                        used++;
                }
                if (used == 2)
                        dm_par2(format_part, &parts[0], &parts[1]);
                else
                        format_part(&parts[0]);
                for (int k = 0; k < used; k++) {
                        if (parts[k].err < 0) {
                                cli_error(path, 0, 0, "cannot decode rows %llu to %llu: %s",
                                          (unsigned long long)parts[k].first,
                                          (unsigned long long)(parts[k].first + parts[k].count),
                                          dream_strerror(parts[k].err));
                                rc = cli_exit_for(parts[k].err, 1);
                                goto out;
                        }
                        cli_out_write(&out, parts[k].text.data, parts[k].text.len);
                }
        }
        r = cli_out_commit(&out, 0);
        out_open = 0;
        if (r < 0) {
                cli_error(output ? output : "-", 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        if (json) {
                cli_json_csv_result(path, output, b - a, n_cols);
                printf(",\"first_row\":%llu}\n", (unsigned long long)a);
        }
        rc = CLI_OK;
out:
        if (out_open)
                cli_out_abort(&out);
        for (int k = 0; k < 2; k++)
                part_release(&parts[k]);
        cli_dream_close(&d);
        return rc;
}

int cli_json_needs_file(const char *cmd, const char *output)
{
        if (output && strcmp(output, "-") != 0)
                return CLI_OK;
        cli_usage_error(cmd, "--json needs -o FILE (the CSV would share standard output)");
        return CLI_USAGE;
}

void cli_json_csv_result(const char *file, const char *output, uint64_t rows, uint32_t columns)
{
        struct stat st;

        printf("{\"file\":");
        cli_json_str(stdout, file);
        printf(",\"output\":");
        cli_json_str(stdout, output);
        printf(",\"rows\":%llu,\"columns\":%u,\"output_bytes\":%llu", (unsigned long long)rows,
               columns, stat(output, &st) == 0 ? (unsigned long long)st.st_size : 0ull);
}
