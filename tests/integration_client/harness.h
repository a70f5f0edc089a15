/* The harness of the client integration tests (harness.c). */
#ifndef DREAM_TESTS_INTEGRATION_CLIENT_HARNESS_H
#define DREAM_TESTS_INTEGRATION_CLIENT_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "dream/client.h"
#include "tests/harness/daemon.h"

/* Kill the running daemons and abort. */
void fail_now(void) __attribute__((noreturn));

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        fail_now();                                                                \
                }                                                                                  \
        } while (0)

#define CHECK_OK(c, expr)                                                                          \
        do {                                                                                       \
                int r_ = (expr);                                                                   \
                if (r_ != 0) {                                                                     \
                        fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #expr,         \
                                dream_strerror(r_), dream_last_error(c));                          \
                        fail_now();                                                                \
                }                                                                                  \
        } while (0)

struct daemon {
        struct tdaemon td;   /* its log: DIR/dreamd.log */
        char unix_addr[128]; /* "unix:DIR/dreamd.sock", also listened on */
};

/* Start dreamd on `listen` (a TCP address, reported on its first stdout
 * line; may be d->td.addr), plus the Unix socket when with_unix, with
 * d->td.data_dir. */
void daemon_spawn(struct daemon *d, const char *listen, int with_unix, const char *token_file);
/* The same with more dreamd arguments (NULL-terminated; extra may be NULL). */
void daemon_spawn_args(struct daemon *d, const char *listen, int with_unix, const char *token_file,
                       const char *const *extra);
/* A new temporary directory and dreamd on 127.0.0.1 port 0 (and a Unix
 * socket). */
void daemon_start(struct daemon *d, const char *token_file);
/* SIGTERM, expect exit status 0, keep the directory (to start it again). */
void daemon_halt(struct daemon *d);
/* daemon_halt, then remove the directory. */
void daemon_stop(struct daemon *d);
/* A connected client, hello done. */
struct dream_client *client(const struct daemon *d, const char *token);

/* The dream CLI (DREAM) with DREAM_ADDR set to the daemon; arguments end
 * with NULL. stdout into out (NUL-terminated, may be NULL), stderr into err.
 * Returns the exit status. */
int run_cli(const struct daemon *d, char *out, size_t out_size, char *err, size_t err_size, ...);
/* Start the CLI, and wait for it (output as for run_cli). */
pid_t run_cli_async(const struct daemon *d, ...);
pid_t cli_spawn(const struct daemon *d, va_list ap);
int cli_wait(const struct daemon *d, pid_t pid, char *out, size_t out_size, char *err,
             size_t err_size);

/* A whole file, NUL-terminated (free()). */
char *slurp(const char *path, size_t *ret_len);
/* Same header line, then the same numbers cell by cell. */
void csv_same_numbers(const char *pa, const char *pb);

#endif
