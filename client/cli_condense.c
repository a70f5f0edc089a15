/* dream condense: condensed samples of a .dream file as CSV. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client/cli.h"
#include "common/err.h"
#include "common/limits.h"
#include "storage/gd/gd.h"

static const char condense_help[] =
    "usage: dream condense FILE.dream [--budget B] [--order msb|entropy] [-o OUT.csv]\n"
    "\n"
    "Write the condensed samples (EntroGeDe stage 1) as CSV: the feature\n"
    "columns (the mean of each group, in the original units), the target\n"
    "column (mean target for regression, the class for classification) and\n"
    "'weight' (the number of rows the sample stands for).\n"
    "\n"
    "  -b, --budget B     at most B samples: a row count (92) or a fraction of\n"
    "                     the rows (0.01, 1%); without it, the samples stored\n"
    "                     in the file by 'dream pack --budget'\n"
    "      --order ORDER  bit order: msb (default) or entropy\n"
    "  -o, --output OUT   output file (default: standard output); written\n"
    "                     whole or not at all\n"
    "  -f, --force        overwrite an existing output file\n"
    "  -j, --json         then one JSON line on standard output: file, output,\n"
    "                     rows (samples), columns, output_bytes, source_rows,\n"
    "                     stored (the file's own samples) (needs -o)\n"
    "  -h, --help         this help\n"
    "\n"
    "Exit status: 0 ok, 1 usage, 2 bad input, 3 corrupt file, 4 internal error.\n";

/* Whether the segment has a column called `name`. */
static int has_column(const struct gd_segment *s, const char *name)
{
        for (uint32_t j = 0; j < gd_segment_cols(s); j++) {
                if (strcmp(gd_segment_col_name(s, j), name) == 0)
                        return 1;
        }
        return 0;
}

static void put_double(struct cli_out *o, double x)
{
        uint8_t *p = cli_out_room(o, GD_FMT_MAX);
        o->len += gd_format_value(GD_F64, 0, gd_f64_to_key(x), (char *)p);
}

int cli_condense(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"budget", required_argument, NULL, 'b'},
            {"order", required_argument, NULL, 'O'},
            {"output", required_argument, NULL, 'o'},
            {"force", no_argument, NULL, 'f'},
            {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct gd_condense_opts co = {.order = GD_ORDER_MSB};
        const char *path, *output = NULL;
        struct cli_dream d;
        struct gd_table *t = NULL;
        struct gd_condensed *made = NULL;
        const struct gd_condensed *cs;
        struct cli_out out;
        int have_budget = 0, c, r, rc, force = 0, json = 0;
        int32_t target;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":b:o:fjh", longopts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        json = 1;
                        break;
                case 'b':
                        if (cli_opt_budget("condense", optarg, &co.budget) != CLI_OK)
                                return CLI_USAGE;
                        have_budget = 1;
                        break;
                case 'O':
                        if (cli_opt_order("condense", optarg, &co.order) != CLI_OK)
                                return CLI_USAGE;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case 'f':
                        force = 1;
                        break;
                case 'h':
                        fputs(condense_help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error("condense", c, argv, longopts);
                }
        }
        if (optind != argc - 1) {
                cli_usage_error("condense", optind >= argc ? "missing FILE" : "too many arguments");
                return CLI_USAGE;
        }
        path = argv[optind];
        if (json && cli_json_needs_file("condense", output) != CLI_OK)
                return CLI_USAGE;
        if (cli_same_file(path, output)) {
                cli_usage_error("condense", "output '%s' would overwrite the input", output);
                return CLI_USAGE;
        }
        rc = cli_out_check("condense", output, force);
        if (rc != CLI_OK)
                return rc;
        rc = cli_dream_open(path, &d);
        if (rc != CLI_OK)
                return rc;
        target = gd_segment_target(d.seg);
        cs = gd_segment_condensed(d.seg);
        if (!have_budget && !cs) {
                cli_usage_error("condense", "'%s' stores no condensed samples: give --budget",
                                path);
                rc = CLI_USAGE;
                goto out;
        }
        if (have_budget) {
                r = gd_segment_decode(d.seg, &t);
                if (r == 0)
                        r = gd_condense(t, &co, &made);
                if (r < 0) {
                        cli_error(path, 0, 0, "cannot condense: %s", dream_strerror(r));
                        rc = cli_exit_for(r, 1);
                        goto out;
                }
                cs = made;
        }

        r = cli_out_open(&out, output);
        if (r < 0) {
                cli_error(output, 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        for (uint32_t k = 0; k < cs->d; k++) {
                if (k)
                        cli_out_write(&out, ",", 1);
                cli_out_csv_name(&out, gd_segment_col_name(d.seg, cs->feature_cols[k]));
        }
        if (target >= 0) {
                if (cs->d)
                        cli_out_write(&out, ",", 1);
                cli_out_csv_name(&out, gd_segment_col_name(d.seg, (uint32_t)target));
        }
        /* The weight column is "weight", or "_weight"... if a column has that name. */
        char wname[DREAM_MAX_NAME + 8] = "weight";
        while (has_column(d.seg, wname)) {
                size_t wl = strlen(wname);
                if (wl + 1 >= sizeof(wname))
                        break;
                memmove(wname + 1, wname, wl + 1);
                wname[0] = '_';
        }
        if (cs->d || target >= 0)
                cli_out_write(&out, ",", 1);
        cli_out_csv_name(&out, wname);
        cli_out_write(&out, "\n", 1);
        for (uint32_t i = 0; i < cs->m; i++) {
                for (uint32_t k = 0; k < cs->d; k++) {
                        put_double(&out, cs->x[(uint64_t)i * cs->d + k]);
                        cli_out_write(&out, ",", 1);
                }
                if (target >= 0) {
                        put_double(&out, cs->y[i]);
                        cli_out_write(&out, ",", 1);
                }
                put_double(&out, cs->w[i]);
                cli_out_write(&out, "\n", 1);
        }
        r = cli_out_commit(&out, 0);
        if (r < 0) {
                cli_error(output ? output : "-", 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        if (json) {
                cli_json_csv_result(path, output, cs->m, cs->d + (target >= 0) + 1);
                printf(",\"source_rows\":%llu,\"stored\":%s}\n",
                       (unsigned long long)gd_segment_rows(d.seg), made ? "false" : "true");
        }
        rc = CLI_OK;
out:
        gd_condensed_free(made);
        gd_table_free(t);
        cli_dream_close(&d);
        return rc;
}
