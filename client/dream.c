/* dream: the command-line client. Offline commands work on local files;
 * the others talk to dreamd through libdream. */
#include <stdio.h>
#include <string.h>

#include "client/cli.h"
#include "common/alloc.h"

static const char main_help[] =
    "usage: dream [-s ADDR] [--token-file F] [--json] COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Offline commands (local files, no server):\n"
    "  pack      compress a CSV or IDX file losslessly into a .dream file\n"
    "  unpack    write the rows of a .dream file as CSV\n"
    "  inspect   show the shape, sizes and ratios of a .dream file\n"
    "  condense  write condensed samples (group means with weights) as CSV\n"
    "\n"
    "Commands on a dreamd server:\n"
    "  ingest    append a CSV or IDX file to a dataset (created if needed)\n"
    "  ls        list the datasets\n"
    "  info      show a dataset: rows, columns, segments, bytes, ratio\n"
    "  export    write a dataset's rows as CSV, losslessly\n"
    "  flush     seal a dataset's staged rows now\n"
    "  drop      delete a dataset\n"
    "  batch     stream mini-batches (condensed, rows or sample) as CSV\n"
    "  backup    copy the whole store, compacted, into a server-side directory\n"
    "  stats     show dreamd's metrics\n"
    "\n"
    "Training on a dreamd server:\n"
    "  train     submit a job training a model on a dataset (--wait: follow it)\n"
    "  jobs      list the training jobs\n"
    "  job       show a job: state, progress, result and metrics\n"
    "  cancel    stop a training job\n"
    "  predict   predict a CSV file's rows with a finished job's model\n"
    "  model     write a finished job's model as JSON\n"
    "\n"
    "Options of the server commands (before or after COMMAND):\n"
    "  -s, --server ADDR    HOST:PORT, [IPV6]:PORT or unix:PATH (default:\n"
    "                       $DREAM_ADDR, else 127.0.0.1:7878)\n"
    "      --token-file F   authenticate with the token in file F (default:\n"
    "                       $DREAM_TOKEN_FILE)\n"
    "      --json           machine-readable output\n"
    "\n"
    "Options of every command (anywhere before a lone '--'):\n"
    "      --bytes          sizes as exact byte counts (default: KiB, MiB, GiB\n"
    "                       with one decimal); JSON always has byte counts\n"
    "\n"
    "'dream COMMAND --help' or 'dream help COMMAND' describes each command.\n"
    "Exit status: 0 ok, 1 usage, 2 bad input, 3 corrupt file, 4 internal error,\n"
    "5 dreamd unreachable (or the connection failed), 6 authentication refused,\n"
    "7 unknown dataset or job, 8 input does not match the dataset's schema, 9\n"
    "another error reported by dreamd, 10 the training job failed, 11 the\n"
    "training job was cancelled, 12 the server's store is full (retry once\n"
    "space is freed).\n";

struct command {
        const char *name;
        int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"pack", cli_pack},         {"unpack", cli_unpack}, {"inspect", cli_inspect},
    {"condense", cli_condense}, {"ingest", cli_ingest}, {"ls", cli_ls},
    {"info", cli_info},         {"export", cli_export}, {"flush", cli_flush},
    {"drop", cli_drop},         {"batch", cli_batch},   {"backup", cli_backup},
    {"stats", cli_stats},       {"train", cli_train},   {"jobs", cli_jobs},
    {"job", cli_job},           {"cancel", cli_cancel}, {"predict", cli_predict},
    {"model", cli_model},
};

/* "unknown command", with the closest command name when one is near. */
static int unknown_command(const char *name)
{
        const char *names[sizeof(commands) / sizeof(commands[0])], *hint;

        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                names[i] = commands[i].name;
        hint = cli_suggest(name, names, sizeof(commands) / sizeof(commands[0]));
        if (hint)
                fprintf(stderr,
                        "dream: unknown command '%s' (did you mean '%s'? see 'dream --help')\n",
                        name, hint);
        else
                fprintf(stderr, "dream: unknown command '%s' (see 'dream --help')\n", name);
        return CLI_USAGE;
}

/* Number of argv entries (from i) that are a global option before the
 * command: 2 for "-s ADDR", 1 for "--json" or "--server=ADDR", 0 if none. */
static int global_opt(int argc, char **argv, int i)
{
        const char *a = argv[i];

        if (strcmp(a, "--json") == 0 || strncmp(a, "--server=", 9) == 0 ||
            strncmp(a, "--token-file=", 13) == 0 || (strncmp(a, "-s", 2) == 0 && a[2]))
                return 1;
        if ((strcmp(a, "-s") == 0 || strcmp(a, "--server") == 0 ||
             strcmp(a, "--token-file") == 0) &&
            i + 1 < argc)
                return 2;
        return 0;
}

int main(int argc, char **argv)
{
        char **args = NULL;
        int first = 1, k, rc;

        /* --bytes, wherever it is before "--", is taken out of argv here. */
        int n = 1;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0) {
                        while (i < argc)
                                argv[n++] = argv[i++];
                        break;
                }
                if (strcmp(argv[i], "--bytes") == 0)
                        cli_bytes_exact = 1;
                else
                        argv[n++] = argv[i];
        }
        argv[n] = NULL;
        argc = n;

        /* Global options before the command move after it: "dream -s A ls"
         * runs as "dream ls -s A". */
        while (first < argc && (k = global_opt(argc, argv, first)) > 0)
                first += k;
        if (first > 1 && first < argc) {
                args = dm_calloc((size_t)argc + 1, sizeof(*args));
                if (!args) {
                        fputs("dream: out of memory\n", stderr);
                        return CLI_INTERNAL;
                }
                args[0] = argv[0];
                args[1] = argv[first];
                for (int i = 1; i < first; i++)
                        args[i + 1] = argv[i];
                for (int i = first + 1; i < argc; i++)
                        args[i] = argv[i];
                argv = args;
        } else if (first > 1) {
                fputs("dream: missing COMMAND (see 'dream --help')\n", stderr);
                return CLI_USAGE;
        }
        if (argc < 2) {
                fputs(main_help, stderr);
                rc = CLI_USAGE;
                goto out;
        }
        if (strcmp(argv[1], "help") == 0 && argc >= 3) {
                /* "dream help CMD" is "dream CMD --help". */
                static char help_opt[] = "--help";
                char *help_argv[] = {argv[2], help_opt, NULL};
                for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                        if (strcmp(argv[2], commands[i].name) == 0) {
                                rc = commands[i].run(2, help_argv);
                                goto out;
                        }
                }
                rc = unknown_command(argv[2]);
                goto out;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                fputs(main_help, stdout);
                rc = CLI_OK;
                goto out;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("dream %s\n", DREAM_VERSION);
                rc = CLI_OK;
                goto out;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                if (strcmp(argv[1], commands[i].name) == 0) {
                        rc = commands[i].run(argc - 1, argv + 1);
                        goto out;
                }
        }
        rc = unknown_command(argv[1]);
out:
        dm_free(args);
        return rc;
}
