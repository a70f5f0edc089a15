/* Reading a command's input table: shared by pack (offline) and ingest. */
#include <stdio.h>
#include <string.h>

#include "client/cli.h"
#include "client/read/read.h"
#include "common/err.h"

int cli_has_suffix(const char *s, const char *suf)
{
        size_t n = strlen(s), m = strlen(suf);
        return n >= m && strcmp(s + n - m, suf) == 0;
}

/* IDX when the name says so (.idx, -ubyte, idx1/idx3) or, for other names
 * than .csv/.txt, when the bytes start with an IDX magic. */
static int guess_idx(const char *path, const struct cli_file *f)
{
        char name[4096];
        snprintf(name, sizeof(name), "%s", path);
        size_t n = strlen(name);
        if (cli_has_suffix(name, ".gz"))
                name[n - 3] = '\0';
        if (cli_has_suffix(name, ".csv") || cli_has_suffix(name, ".txt"))
                return 0;
        if (cli_has_suffix(name, ".idx") || cli_has_suffix(name, "-ubyte") ||
            strstr(name, "idx1") || strstr(name, "idx3"))
                return 1;
        return f->len >= 4 && f->data[0] == 0 && f->data[1] == 0 && f->data[2] >= 0x08 &&
               f->data[2] <= 0x0E;
}

int cli_read_table(const char *cmd, const char *input, const char *format, const char *labels_path,
                   struct read_opts *ro, struct cli_progress *prog, struct gd_table **ret_table,
                   uint64_t *ret_source_bytes)
{
        struct cli_file in = {0}, lab = {0};
        struct read_error re;
        struct gd_table *t = NULL;
        int is_idx, r, rc;

        r = cli_file_load(input, &in);
        if (r < 0) {
                cli_error(input, 0, 0, "cannot read: %s", cli_load_strerror(r));
                return r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
        }
        is_idx = format ? strcmp(format, "idx") == 0 : guess_idx(input, &in);
        if (labels_path && !is_idx) {
                cli_usage_error(cmd, "--labels needs an idx input");
                rc = CLI_USAGE;
                goto out;
        }
        if (labels_path) {
                r = cli_file_load(labels_path, &lab);
                if (r < 0) {
                        cli_error(labels_path, 0, 0, "cannot read: %s", cli_load_strerror(r));
                        rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                        goto out;
                }
        }
        cli_progress_init(prog, "reading", in.len + lab.len);
        ro->progress = cli_progress_cb;
        ro->progress_ctx = prog;
        if (is_idx)
                r = read_idx(in.data, in.len, labels_path ? lab.data : NULL, lab.len, ro, &re, &t);
        else
                r = read_csv(in.data, in.len, ro, &re, &t);
        if (r < 0) {
                cli_progress_end(prog);
                cli_error(re.source == READ_SRC_LABELS ? labels_path : input, re.line, re.column,
                          "%s", re.msg);
                rc = cli_exit_for(r, 0);
                goto out;
        }
        *ret_table = t;
        *ret_source_bytes = in.len + lab.len;
        rc = CLI_OK;
out:
        cli_file_release(&in);
        cli_file_release(&lab);
        return rc;
}

int cli_opt_input(const char *cmd, int c, const char *arg, struct cli_input_opts *o)
{
        switch (c) {
        case 'l':
                o->ro->label = arg;
                return 1;
        case 't':
                if (read_task_parse(arg, &o->ro->task) < 0) {
                        cli_usage_error(cmd, "unknown task '%s'", arg);
                        return -1;
                }
                return 1;
        case 'f':
                if (strcmp(arg, "csv") != 0 && strcmp(arg, "idx") != 0) {
                        cli_usage_error(cmd, "unknown format '%s'", arg);
                        return -1;
                }
                o->format = arg;
                return 1;
        case 'L':
                o->labels_path = arg;
                return 1;
        default:
                return 0;
        }
}
