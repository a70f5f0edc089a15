/* dream pack: CSV or IDX -> .dream file. */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/read/read.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "storage/gd/gd.h"

static const char pack_help[] =
    "usage: dream pack INPUT [-o OUT.dream] [--label COL] [--task TASK]\n"
    "                  [--format csv|idx] [--labels LABELS.idx] [--budget B]\n"
    "                  [--order msb|entropy] [-q]\n"
    "\n"
    "Compress a table losslessly into a .dream file.\n"
    "\n"
    "INPUT is a CSV file with a header row and numeric cells, or an IDX images\n"
    "file (MNIST format); either may be gzip-compressed (.gz). '-' reads stdin.\n"
    "\n"
    "  -o, --output OUT     output file (default: INPUT's name without its\n"
    "                       extensions, plus .dream, in the current directory)\n"
    "      --force          overwrite an existing output file\n"
    "      --json           print the summary as one JSON object: input, file,\n"
    "                       rows, columns, input_bytes, stored_bytes, ratio\n"
    "  -l, --label COL      target column (default: a column named 'label')\n"
    "  -t, --task TASK      regression, classification or auto (default auto:\n"
    "                       classification when the target holds only integers\n"
    "                       with at most 256 distinct values)\n"
    "  -f, --format FMT     csv or idx (default: from the file name or content)\n"
    "      --labels FILE    IDX labels file for an IDX images input\n"
    "  -b, --budget B       also store condensed samples for this budget: a row\n"
    "                       count (92) or a fraction (0.01, 1%)\n"
    "      --order ORDER    bit order of the condensed samples: msb or entropy\n"
    "  -q, --quiet          print nothing on success\n"
    "  -h, --help           this help\n"
    "\n"
    "Exit status: 0 ok, 1 usage, 2 bad input, 3 corrupt file, 4 internal error.\n";

/* Base name without directory, .gz, and one more extension. Owned. */
static char *default_output(const char *input)
{
        char *copy = dm_strdup(input), *base, *out = NULL, *dot;
        if (!copy)
                return NULL;
        base = basename(copy);
        if (strcmp(input, "-") == 0 || base[0] == '\0' || strcmp(base, "/") == 0)
                base = "stdin";
        size_t n = strlen(base);
        if (cli_has_suffix(base, ".gz"))
                base[n - 3] = '\0';
        dot = strrchr(base, '.');
        if (dot && dot != base)
                *dot = '\0';
        out = dm_malloc(strlen(base) + sizeof(".dream"));
        if (out) {
                strcpy(out, base);
                strcat(out, ".dream");
        }
        dm_free(copy);
        return out;
}

/* Threads for compressing the record blocks: the online CPUs, at most 2
 * (more gains little: parsing and bit selection are single-threaded). */
static uint32_t encode_threads(void)
{
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n >= 2 ? 2u : 1u;
}

int cli_pack(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'F'},
            {"json", no_argument, NULL, 'J'},         {"label", required_argument, NULL, 'l'},
            {"task", required_argument, NULL, 't'},   {"format", required_argument, NULL, 'f'},
            {"labels", required_argument, NULL, 'L'}, {"budget", required_argument, NULL, 'b'},
            {"order", required_argument, NULL, 'O'},  {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
        };
        const char *input, *output = NULL;
        char *out_owned = NULL;
        struct read_opts ro;
        struct cli_input_opts in = {.ro = &ro};
        struct gd_table *t = NULL;
        struct gd_segment *seg = NULL;
        struct gd_condensed *cond = NULL;
        struct gd_encode_opts eo;
        struct gd_condense_opts co = {.order = GD_ORDER_MSB};
        struct cli_progress prog;
        struct cli_out out;
        struct dm_buf buf;
        int have_budget = 0, quiet = 0, force = 0, json = 0, c, r, rc = CLI_INTERNAL;
        uint64_t source_bytes;

        read_opts_default(&ro);
        dm_buf_init(&buf);
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":o:l:t:f:b:qh", longopts, NULL)) != -1) {
                r = cli_opt_input("pack", c, optarg, &in);
                if (r < 0)
                        return CLI_USAGE;
                if (r > 0)
                        continue;
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case 'F':
                        force = 1;
                        break;
                case 'J':
                        json = 1;
                        break;
                case 'b':
                        if (cli_opt_budget("pack", optarg, &co.budget) != CLI_OK)
                                return CLI_USAGE;
                        have_budget = 1;
                        break;
                case 'O':
                        if (cli_opt_order("pack", optarg, &co.order) != CLI_OK)
                                return CLI_USAGE;
                        break;
                case 'q':
                        quiet = 1;
                        break;
                case 'h':
                        fputs(pack_help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error("pack", c, argv, longopts);
                }
        }
        if (optind != argc - 1) {
                cli_usage_error("pack", optind >= argc ? "missing INPUT" : "too many arguments");
                return CLI_USAGE;
        }
        input = argv[optind];
        if (!output) {
                out_owned = default_output(input);
                if (!out_owned) {
                        cli_error(NULL, 0, 0, "out of memory");
                        return CLI_INTERNAL;
                }
                output = out_owned;
        }

        if (cli_same_file(input, output) ||
            (in.labels_path && cli_same_file(in.labels_path, output))) {
                cli_usage_error("pack", "output '%s' would overwrite the input", output);
                rc = CLI_USAGE;
                goto out;
        }
        rc = cli_out_check("pack", output, force);
        if (rc != CLI_OK)
                goto out;
        rc =
            cli_read_table("pack", input, in.format, in.labels_path, &ro, &prog, &t, &source_bytes);
        if (rc != CLI_OK)
                goto out;
        rc = CLI_INTERNAL;

        if (t->n_rows > DREAM_MAX_SEGMENT_ROWS) {
                cli_error(input, 0, 0, "too many rows (%llu, limit %u per file)",
                          (unsigned long long)t->n_rows, DREAM_MAX_SEGMENT_ROWS);
                rc = CLI_INPUT;
                goto out;
        }
        cli_progress_note(&prog, "compressing");
        gd_encode_opts_default(&eo);
        eo.zstd_level = GD_ZSTD_ARCHIVE; /* a file: small tables at level 19 */
        eo.source_bytes = source_bytes;
        eo.threads = encode_threads();
        r = gd_segment_encode(t, &eo, &seg);
        if (r < 0) {
                cli_progress_end(&prog);
                cli_error(input, 0, 0, "cannot compress: %s", dream_strerror(r));
                rc = cli_exit_for(r, 0);
                goto out;
        }
        if (have_budget) {
                cli_progress_note(&prog, "condensing");
                r = gd_condense(t, &co, &cond);
                if (r < 0) {
                        cli_progress_end(&prog);
                        cli_error(input, 0, 0, "cannot condense: %s", dream_strerror(r));
                        rc = cli_exit_for(r, 0);
                        goto out;
                }
                gd_segment_set_condensed(seg, cond);
                cond = NULL;
        }
        cli_progress_note(&prog, "writing");
        r = gd_segment_serialize(seg, &buf);
        if (r < 0) {
                cli_progress_end(&prog);
                cli_error(output, 0, 0, "cannot serialize: %s", dream_strerror(r));
                goto out;
        }
        r = cli_out_open(&out, output);
        if (r == 0) {
                cli_out_write(&out, buf.data, buf.len);
                r = cli_out_commit(&out, 1);
        }
        cli_progress_end(&prog);
        if (r < 0) {
                cli_error(output, 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        if (json) {
                printf("{\"input\":");
                cli_json_str(stdout, input);
                printf(",\"file\":");
                cli_json_str(stdout, output);
                printf(",\"rows\":%llu,\"columns\":%u,\"input_bytes\":%llu,\"stored_bytes\":%zu,"
                       "\"ratio\":%.6g}\n",
                       (unsigned long long)t->n_rows, t->n_cols, (unsigned long long)source_bytes,
                       buf.len, buf.len ? (double)source_bytes / (double)buf.len : 0.0);
        } else if (!quiet) {
                const char *a = cli_size(source_bytes, 0), *b = cli_size(buf.len, 1);
                printf("packed '%s' -> '%s': %llu rows, %u columns, %s -> %s (%.2fx)\n", input,
                       output, (unsigned long long)t->n_rows, t->n_cols, a, b,
                       buf.len ? (double)source_bytes / (double)buf.len : 0.0);
        }
        rc = CLI_OK;
out:
        gd_condensed_free(cond);
        gd_segment_free(seg);
        gd_table_free(t);
        dm_buf_release(&buf);
        dm_free(out_owned);
        return rc;
}
