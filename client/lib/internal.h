/* libdream internals shared by its source files (prefix dcl_, not
 * exported: the shared library exports dream_* only, libdream.map). */
#ifndef DREAM_CLIENT_LIB_INTERNAL_H
#define DREAM_CLIENT_LIB_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "dream/client.h"
#include "proto/frame.h"
#include "proto/validate.h"

#define DCL_CONNECT_TIMEOUT_MS 5000u       /* default connect timeout */
#define DCL_IO_TIMEOUT_MS      60000u      /* default wait for the server */
#define DCL_READ_BYTES         (64u << 10) /* bytes read from the socket at once */
#define DCL_MAX_STASHED        65536u      /* responses kept for other requests */
#define DCL_ERRMSG             512u        /* bytes of dream_last_error */

/* A response received for a request other than the one awaited. */
struct dcl_stashed {
        proto_response *resp; /* owned */
        struct dcl_stashed *next;
};

struct dream_client {
        int fd;
        struct frame_decoder dec;
        uint32_t max_frame;
        uint32_t io_timeout_ms;
        uint64_t next_id;
        uint64_t *inflight; /* ids of requests whose last response is not yet
                               taken; owned */
        size_t n_inflight, cap_inflight;
        struct dcl_stashed *head, *tail; /* FIFO of received responses */
        size_t n_stashed;
        int broken; /* sticky transport/protocol error, 0 while usable */
        char *name; /* owned: client name sent in hello */
        struct dm_buf out;
        uint8_t *rbuf; /* owned, DCL_READ_BYTES */
        char err[DCL_ERRMSG];
};

/* A client over an already connected socket fd (taken over: closed by
 * dream_close, and on failure). The socket is made non-blocking. Used by
 * dream_connect and by the unit tests (socketpair). */
int dcl_client_from_fd(int fd, const struct dream_connect_opts *opts, struct dream_client **ret);

/* Set dream_last_error. */
void dcl_set_err(struct dream_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Check the client is usable (0) or return its sticky error; clears the
 * last error message when usable. */
int dcl_begin(struct dream_client *c);

/* Give req a fresh id, frame and send it. 0, DREAM_E_LIMIT (larger than the
 * frame limit; the client stays usable), or a transport error. */
int dcl_send(struct dream_client *c, Dream__V1__Request *req, uint64_t *ret_id);

/* Take the next Response of request id (waiting for it). On success the
 * caller owns *ret (proto_response_free); when it has more = false the
 * request is no longer in flight. Only transport/protocol errors fail:
 * an error Response is returned like any other (see dcl_status). */
int dcl_recv(struct dream_client *c, uint64_t id, proto_response **ret);

/* 0 for a STATUS_OK response, else its mapped error (last error set to the
 * server's message). A body other than `body` (when the code is OK) is a
 * protocol error. */
int dcl_status(struct dream_client *c, const proto_response *resp,
               Dream__V1__Response__BodyCase body);

/* One request, one response with the given body (a streamed reply is a
 * protocol error). On success the caller owns *ret (proto_response_free). */
int dcl_call(struct dream_client *c, Dream__V1__Request *req, Dream__V1__Response__BodyCase body,
             proto_response **ret);

/* Receive and discard the rest of a stream whose last response was not yet
 * seen. Returns a transport error, or 0. */
int dcl_drain(struct dream_client *c, uint64_t id);

/* A Columns message over the caller's rows (borrowed on little-endian
 * hosts: they must outlive the message). `what` names the block in the
 * error ("an ingest block"). Release with dcl_cols_release. */
struct dcl_cols {
        Dream__V1__Columns msg;
        Dream__V1__ColumnValues *cv, **cvp;
        uint32_t n;
};
int dcl_cols_pack(struct dream_client *c, const struct dream_rows *rows, const char *what,
                  struct dcl_cols *ret);
void dcl_cols_release(struct dcl_cols *k);

/* Sized structs (client.h, ABI): a struct whose first field is the
 * caller's sizeof, `known` bytes for this library. */

/* Copy the caller's input struct src into dst (known bytes): the fields
 * within src's size, the others 0. DREAM_E_INVAL (message in c when not
 * NULL, naming `type`) when the size is below sizeof(size_t) or when src
 * sets a field past `known` (an option this library does not know). */
int dcl_sized_in(struct dream_client *c, const char *type, void *dst, const void *src,
                 size_t known);

/* 0 when the caller's output struct p has a usable size, else
 * DREAM_E_INVAL (message in c). */
int dcl_sized_check(struct dream_client *c, const char *type, const void *p);

/* Write the library's filled src (known bytes) into the caller's dst: the
 * fields within dst's size only; dst's size is kept. */
void dcl_sized_out(void *dst, const void *src, size_t known);

/* Whether a sized struct s (its size) holds the whole member m. */
#define DCL_HAS(s, m) ((s)->size >= offsetof(__typeof__(*(s)), m) + sizeof((s)->m))

/* Mark the client broken with err and a message; returns err. */
int dcl_fail(struct dream_client *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
