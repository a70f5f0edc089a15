/* dream: the command-line client. Offline commands work on local files;
 * commands that talk to dreamd come with the client library. */
#include <stdio.h>
#include <string.h>

#include "client/cli.h"

static const char main_help[] =
    "usage: dream COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Offline commands (local files, no server):\n"
    "  pack      compress a CSV or IDX file losslessly into a .dream file\n"
    "  unpack    write the rows of a .dream file as CSV\n"
    "  inspect   show the shape, sizes and ratios of a .dream file\n"
    "  condense  write condensed samples (group means with weights) as CSV\n"
    "\n"
    "'dream COMMAND --help' describes each command.\n"
    "Exit status: 0 ok, 1 usage, 2 bad input, 3 corrupt file, 4 internal error.\n";

struct command {
        const char *name;
        int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"pack", cli_pack},
    {"unpack", cli_unpack},
    {"inspect", cli_inspect},
    {"condense", cli_condense},
};

int main(int argc, char **argv)
{
        if (argc < 2) {
                fputs(main_help, stderr);
                return CLI_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                fputs(main_help, stdout);
                return CLI_OK;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("dream %s\n", DREAM_VERSION);
                return CLI_OK;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].run(argc - 1, argv + 1);
        }
        fprintf(stderr, "dream: unknown command '%s' (see 'dream --help')\n", argv[1]);
        return CLI_USAGE;
}
