/* dream inspect: what a .dream file holds and how big each part is. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "client/cli.h"
#include "common/err.h"
#include "storage/gd/gd.h"

static const char inspect_help[] =
    "usage: dream inspect FILE.dream [--json]\n"
    "\n"
    "Print the shape of a .dream file (rows, columns, task; per column the\n"
    "kind, decimal scale, minimum and bit width), the EntroGeDe figures (l_c,\n"
    "base bits |B|, bases n_b, S(B)), the bytes of each part, and the\n"
    "compression ratios to the source CSV, to fixed-width binary\n"
    "(ceil(rows * l_c / 8) bytes) and to float32 (rows * columns * 4 bytes).\n"
    "\n"
    "  -j, --json   one JSON object instead of text\n"
    "  -h, --help   this help\n"
    "\n"
    "Exit status: 0 ok, 1 usage, 2 bad input, 3 corrupt file, 4 internal error.\n";

static const char *kind_name(enum gd_kind k)
{
        switch (k) {
        case GD_INT:
                return "int";
        case GD_DEC:
                return "dec";
        case GD_F64:
                return "f64";
        }
        return "?";
}

static const char *task_name(enum gd_task t)
{
        switch (t) {
        case GD_TASK_REGRESSION:
                return "regression";
        case GD_TASK_CLASSIFICATION:
                return "classification";
        case GD_TASK_NONE:
                break;
        }
        return "none";
}

static void json_string(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch < 0x20)
                        fprintf(f, "\\u%04x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

/* A number formatted by gd_format_value as JSON: a string for nan/inf. */
static void json_value(FILE *f, const char *num)
{
        if (strchr(num, 'n'))
                json_string(f, num);
        else
                fputs(num, f);
}

static double ratio(uint64_t ref, uint64_t stored)
{
        return stored ? (double)ref / (double)stored : 0.0;
}

int cli_inspect(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct cli_dream d;
        struct gd_stats st;
        const struct gd_colparam *params;
        const struct gd_condensed *cond;
        const char *path;
        int json = 0, c, rc;
        uint64_t fixed, f32, s_bytes;
        int32_t target;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        json = 1;
                        break;
                case 'h':
                        fputs(inspect_help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error("inspect", c, argv, longopts);
                }
        }
        if (optind != argc - 1) {
                cli_usage_error("inspect", optind >= argc ? "missing FILE" : "too many arguments");
                return CLI_USAGE;
        }
        path = argv[optind];
        rc = cli_dream_open(path, &d);
        if (rc != CLI_OK)
                return rc;
        gd_segment_stats(d.seg, &st);
        params = gd_segment_params(d.seg);
        target = gd_segment_target(d.seg);
        cond = gd_segment_condensed(d.seg);
        fixed = (st.n_rows * (uint64_t)st.l_c + 7) / 8;
        f32 = st.n_rows * (uint64_t)st.n_cols * 4;
        s_bytes = (st.s_bits + 7) / 8;

        if (json) {
                FILE *f = stdout;
                fputs("{\"file\":", f);
                json_string(f, path);
                fprintf(f, ",\"rows\":%llu,\"columns\":%u,\"task\":\"%s\",\"target\":",
                        (unsigned long long)st.n_rows, st.n_cols,
                        task_name(gd_segment_task(d.seg)));
                if (target >= 0)
                        json_string(f, gd_segment_col_name(d.seg, (uint32_t)target));
                else
                        fputs("null", f);
                fprintf(f,
                        ",\"l_c\":%u,\"base_bits\":%u,\"bases\":%u,\"record_bits\":%u,"
                        "\"rows_per_block\":%u,\"blocks\":%u,\"codec\":\"%s\","
                        "\"s_bits\":%llu,\"s_bytes\":%llu",
                        st.l_c, st.n_base_bits, st.n_bases, st.record_bits, st.rows_per_block,
                        st.n_blocks, gd_block_codec_name(st.codec), (unsigned long long)st.s_bits,
                        (unsigned long long)s_bytes);
                fprintf(f,
                        ",\"bytes\":{\"header\":%llu,\"dictionary\":%llu,\"records\":%llu,"
                        "\"plain_records\":%llu,\"condensed\":%llu,\"total\":%llu}",
                        (unsigned long long)st.header_bytes, (unsigned long long)st.dict_bytes,
                        (unsigned long long)st.records_bytes,
                        (unsigned long long)st.plain_records_bytes,
                        (unsigned long long)st.condensed_bytes, (unsigned long long)st.total_bytes);
                fprintf(f,
                        ",\"source_bytes\":%llu,\"fixed_width_bytes\":%llu,"
                        "\"float32_bytes\":%llu,\"ratio\":{\"source\":",
                        (unsigned long long)st.source_bytes, (unsigned long long)fixed,
                        (unsigned long long)f32);
                if (st.source_bytes)
                        fprintf(f, "%.4f", ratio(st.source_bytes, st.total_bytes));
                else
                        fputs("null", f);
                fprintf(f, ",\"fixed_width\":%.4f,\"float32\":%.4f,\"s_bits\":%.4f}",
                        ratio(fixed, st.total_bytes), ratio(f32, st.total_bytes),
                        ratio(s_bytes, st.total_bytes));
                fputs(",\"condensed_samples\":", f);
                if (cond)
                        fprintf(f, "%u", cond->m);
                else
                        fputs("null", f);
                fputs(",\"cols\":[", f);
                for (uint32_t j = 0; j < st.n_cols; j++) {
                        char minbuf[GD_FMT_MAX + 1];
                        size_t k =
                            gd_format_value(params[j].kind, params[j].scale, params[j].min, minbuf);
                        minbuf[k] = '\0';
                        fputs(j ? ",{\"name\":" : "{\"name\":", f);
                        json_string(f, gd_segment_col_name(d.seg, j));
                        fprintf(f,
                                ",\"kind\":\"%s\",\"scale\":%u,\"min\":", kind_name(params[j].kind),
                                params[j].scale);
                        json_value(f, minbuf);
                        fprintf(f, ",\"width\":%u,\"target\":%s}", params[j].width,
                                (int32_t)j == target ? "true" : "false");
                }
                fputs("]}\n", f);
        } else {
                printf("file          %s\n", path);
                printf("rows          %llu\n", (unsigned long long)st.n_rows);
                if (target >= 0)
                        printf("columns       %u (%u features + target '%s')\n", st.n_cols,
                               st.n_cols - 1, gd_segment_col_name(d.seg, (uint32_t)target));
                else
                        printf("columns       %u (no target)\n", st.n_cols);
                printf("task          %s\n", task_name(gd_segment_task(d.seg)));
                printf("l_c           %u bits per row\n", st.l_c);
                printf("base bits |B| %u\n", st.n_base_bits);
                printf("bases n_b     %u\n", st.n_bases);
                printf("record        %u bits per row\n", st.record_bits);
                printf("blocks        %u of %u rows, %s\n", st.n_blocks, st.rows_per_block,
                       gd_block_codec_name(st.codec));
                printf("S(B)          %llu bits = %s\n", (unsigned long long)st.s_bits,
                       cli_size(s_bytes, 0));
                printf("parts         header %s, dictionary %s, records %s",
                       cli_size(st.header_bytes, 0), cli_size(st.dict_bytes, 1),
                       cli_size(st.records_bytes, 2));
                printf(" (plain %s), condensed %s\n", cli_size(st.plain_records_bytes, 0),
                       cli_size(st.condensed_bytes, 1));
                printf("stored        %s\n", cli_size(st.total_bytes, 0));
                if (st.source_bytes)
                        printf("vs source     %.2fx (%s)\n", ratio(st.source_bytes, st.total_bytes),
                               cli_size(st.source_bytes, 0));
                else
                        printf("vs source     unknown\n");
                printf("vs fixed      %.2fx (%s)\n", ratio(fixed, st.total_bytes),
                       cli_size(fixed, 0));
                printf("vs float32    %.2fx (%s)\n", ratio(f32, st.total_bytes), cli_size(f32, 0));
                if (cond)
                        printf("condensed     %u samples of %u features\n", cond->m, cond->d);
                else
                        printf("condensed     none stored\n");
                printf("\n%-24s %-4s %5s %22s %5s\n", "column", "kind", "scale", "min", "width");
                for (uint32_t j = 0; j < st.n_cols; j++) {
                        char minbuf[GD_FMT_MAX + 1];
                        size_t k =
                            gd_format_value(params[j].kind, params[j].scale, params[j].min, minbuf);
                        minbuf[k] = '\0';
                        printf("%-24s %-4s %5u %22s %5u%s\n", gd_segment_col_name(d.seg, j),
                               kind_name(params[j].kind), params[j].scale, minbuf, params[j].width,
                               (int32_t)j == target ? "  (target)" : "");
                }
        }
        rc = CLI_OK;
        if (fflush(stdout) != 0 || ferror(stdout)) {
                cli_error(NULL, 0, 0, "cannot write to standard output");
                rc = CLI_INPUT;
        }
        cli_dream_close(&d);
        return rc;
}
