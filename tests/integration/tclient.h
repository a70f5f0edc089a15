/* Test helpers for the integration tests: the daemon harness (daemon.h:
 * a real dreamd on 127.0.0.1 port 0 with a temporary data directory), and a
 * small blocking client speaking frames over a socket (proto/). */
#ifndef DREAM_TESTS_TCLIENT_H
#define DREAM_TESTS_TCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/harness/daemon.h"
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

/* A failure that lets the test go on (it exits non-zero at the end when
 * tc_failures > 0). */
extern unsigned tc_failures;
#define FAILF(...)                                                                                 \
        do {                                                                                       \
                tc_failures++;                                                                     \
                fprintf(stderr, "FAIL: " __VA_ARGS__);                                             \
                fputc('\n', stderr);                                                               \
        } while (0)

/* Monotonic seconds. */
double tc_now(void);
/* Raise the soft limit of open files to `want` (or the hard limit). */
void tc_raise_nofile(unsigned long want);

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
/* DescribeDataset of name, as request id. */
proto_response *tc_describe(struct tc *c, const char *name, uint64_t id);
/* True when the server closed the connection within timeout_ms (EOF or reset),
 * reading and discarding any responses before it. */
bool tc_wait_closed(struct tc *c, int timeout_ms);

/* Request builders (static storage in the caller's structs). */
void tc_hello(struct tc *c, const char *token, int expect_code);

/* Read every Response of request `id` until more = false: the first non-OK
 * code (or OK), -1 on EOF or a timeout. Other request ids are skipped. */
int tc_call_code(struct tc *c, Dream__V1__Request *req, int timeout_ms);

#endif
