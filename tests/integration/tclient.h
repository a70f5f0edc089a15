/* Test helpers for the integration tests: start a real dreamd (DREAMD in the
 * environment) on 127.0.0.1 port 0 with a temporary data directory, and a
 * small blocking client speaking frames over a socket (proto/). To be
 * replaced by libdream once it exists. */
#ifndef DREAM_TESTS_TCLIENT_H
#define DREAM_TESTS_TCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/frame.h"
#include "proto/status.h"
#include "proto/validate.h"

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

struct tdaemon {
        pid_t pid;
        uint16_t port;
        char dir[256]; /* temp dir (data under dir/data) */
        char data_dir[300];
        int err_fd; /* unused */
};

/* Start dreamd with --listen 127.0.0.1:0 --data-dir D plus extra args
 * (NULL-terminated). When data_dir is NULL a new temp dir is made. */
void td_start(struct tdaemon *d, const char *data_dir, const char *const *extra);
/* SIGTERM and wait: the exit status (or -1 for a signal). */
int td_stop(struct tdaemon *d);
/* Wait for the daemon to exit (after a signal sent by the test). */
int td_wait(struct tdaemon *d);
/* Resident memory of the daemon in KiB. */
long td_rss_kb(const struct tdaemon *d);
/* Remove the temp dir. */
void td_cleanup(struct tdaemon *d);

struct tc {
        int fd;
        struct frame_decoder dec;
};

/* Connect to 127.0.0.1:port; aborts on failure. */
void tc_connect(struct tc *c, uint16_t port);
/* Connect to a unix socket; aborts on failure. */
void tc_connect_unix(struct tc *c, const char *path);
void tc_close(struct tc *c);
/* Write all bytes; returns 0 or -errno (EPIPE when the server closed). */
int tc_send_raw(struct tc *c, const void *p, size_t n);
/* Frame and send a request. */
int tc_send(struct tc *c, Dream__V1__Request *req);
/* Receive one response (decoded and validated): 1, 0 on EOF, -ETIMEDOUT. */
int tc_recv(struct tc *c, proto_response **ret, int timeout_ms);
/* Send + receive one response for it (aborts on EOF/timeout). */
proto_response *tc_call(struct tc *c, Dream__V1__Request *req);
/* True when the server closed the connection within timeout_ms (EOF or reset),
 * reading and discarding any responses before it. */
bool tc_wait_closed(struct tc *c, int timeout_ms);

/* Request builders (static storage in the caller's structs). */
void tc_hello(struct tc *c, const char *token, int expect_code);

/* Like td_start, without aborting: the daemon's listen addresses are `listen`
 * (NULL: 127.0.0.1:0), its stderr goes to log_path (NULL: inherited). Returns
 * 0 once dreamd printed "listening on HOST:PORT" (d->port set), or the exit
 * status (> 0; -1 for a signal) of a dreamd that exited without listening. */
int td_spawn(struct tdaemon *d, const char *data_dir, const char *listen, const char *const *extra,
             const char *log_path);
/* SIGKILL and reap (the crash of the trials). */
void td_kill(struct tdaemon *d);
/* Run `dreamd --check --data-dir DIR` (stdout into out, may be NULL); the exit
 * status, -1 for a signal (its number in *ret_sig when not NULL). */
int td_check(const char *dir, char *out, size_t out_size, int *ret_sig);
/* Read every Response of request `id` until more = false: the first non-OK
 * code (or OK), -1 on EOF or a timeout. Other request ids are skipped. */
int tc_call_code(struct tc *c, Dream__V1__Request *req, int timeout_ms);
/* Remove a directory tree. */
void td_rmtree(const char *dir);

#endif
