/* libdream core: connecting, framed I/O with poll() timeouts, matching
 * responses to pipelined requests, the generic calls. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/lib/internal.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "proto/status.h"

uint32_t dream_version(void)
{
        return DREAM_VERSION_NUMBER;
}

const char *dream_version_string(void)
{
        return DREAM_VERSION_STRING;
}

int dcl_sized_in(struct dream_client *c, const char *type, void *dst, const void *src, size_t known)
{
        size_t size;

        memcpy(&size, src, sizeof(size));
        if (size < sizeof(size_t)) {
                if (c)
                        dcl_set_err(c,
                                    "struct %s: size %zu is not its sizeof (initialise it with "
                                    "DREAM_INIT or its _default function)",
                                    type, size);
                return DREAM_E_INVAL;
        }
        for (size_t i = known; i < size; i++) {
                if (((const unsigned char *)src)[i] != 0) {
                        if (c)
                                dcl_set_err(c,
                                            "struct %s: sets a field this libdream (%s) does "
                                            "not know (byte %zu of %zu): upgrade libdream",
                                            type, DREAM_VERSION_STRING, i, size);
                        return DREAM_E_INVAL;
                }
        }
        memset(dst, 0, known);
        memcpy(dst, src, size < known ? size : known);
        return 0;
}

int dcl_sized_check(struct dream_client *c, const char *type, const void *p)
{
        size_t size;

        memcpy(&size, p, sizeof(size));
        if (size >= sizeof(size_t))
                return 0;
        dcl_set_err(c, "struct %s: size %zu is not its sizeof (initialise it with DREAM_INIT)",
                    type, size);
        return DREAM_E_INVAL;
}

void dcl_sized_out(void *dst, const void *src, size_t known)
{
        size_t size;

        memcpy(&size, dst, sizeof(size));
        if (size <= sizeof(size_t))
                return;
        if (size > known)
                size = known;
        memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
               size - sizeof(size_t));
}

void dcl_set_err(struct dream_client *c, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(c->err, sizeof(c->err), fmt, ap);
        va_end(ap);
}

int dcl_fail(struct dream_client *c, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(c->err, sizeof(c->err), fmt, ap);
        va_end(ap);
        c->broken = err;
        return err;
}

int dcl_begin(struct dream_client *c)
{
        if (c->broken)
                return c->broken;
        c->err[0] = '\0';
        return 0;
}

const char *dream_last_error(const struct dream_client *c)
{
        return c ? c->err : "";
}

uint32_t dream_max_frame(const struct dream_client *c)
{
        return c->max_frame;
}

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- in-flight ids and the stash ---------------------------------------------- */

static int inflight_add(struct dream_client *c, uint64_t id)
{
        if (c->n_inflight == c->cap_inflight) {
                size_t cap = c->cap_inflight ? c->cap_inflight * 2 : 16;
                uint64_t *p = dm_reallocarray(c->inflight, cap, sizeof(*p));
                if (!p)
                        return DREAM_E_NOMEM;
                c->inflight = p;
                c->cap_inflight = cap;
        }
        c->inflight[c->n_inflight++] = id;
        return 0;
}

static bool inflight_has(const struct dream_client *c, uint64_t id)
{
        for (size_t i = 0; i < c->n_inflight; i++)
                if (c->inflight[i] == id)
                        return true;
        return false;
}

static void inflight_remove(struct dream_client *c, uint64_t id)
{
        for (size_t i = 0; i < c->n_inflight; i++) {
                if (c->inflight[i] == id) {
                        c->inflight[i] = c->inflight[--c->n_inflight];
                        return;
                }
        }
}

/* Take the first stashed response of id, or NULL. */
static proto_response *stash_take(struct dream_client *c, uint64_t id)
{
        struct dcl_stashed **pp = &c->head, *prev = NULL;

        for (struct dcl_stashed *e = c->head; e; prev = e, pp = &e->next, e = e->next) {
                if (e->resp->request_id != id)
                        continue;
                proto_response *r = e->resp;
                *pp = e->next;
                if (c->tail == e)
                        c->tail = prev;
                dm_free(e);
                c->n_stashed--;
                return r;
        }
        return NULL;
}

/* Decode one frame and keep its response. */
static int stash_frame(struct dream_client *c, const uint8_t *msg, uint32_t len)
{
        char why[256];
        proto_response *resp;
        struct dcl_stashed *e;
        int r;

        r = proto_response_decode(msg, len, why, sizeof(why), &resp);
        if (r == DREAM_E_NOMEM)
                return dcl_fail(c, r, "out of memory decoding a response");
        if (r < 0)
                return dcl_fail(c, DREAM_E_PROTO, "malformed response from the server: %s", why);
        if (resp->request_id == 0 || !inflight_has(c, resp->request_id)) {
                /* Request id 0: the server could not read a frame of ours. */
                if (resp->code != DREAM__V1__STATUS__STATUS_OK && resp->message && resp->message[0])
                        dcl_fail(c, DREAM_E_PROTO, "server: %s", resp->message);
                else
                        dcl_fail(c, DREAM_E_PROTO,
                                 "response for request %llu, which is not in flight",
                                 (unsigned long long)resp->request_id);
                proto_response_free(resp);
                return c->broken;
        }
        if (c->n_stashed >= DCL_MAX_STASHED) {
                proto_response_free(resp);
                return dcl_fail(c, DREAM_E_LIMIT, "more than %u responses waiting to be read",
                                DCL_MAX_STASHED);
        }
        e = dm_malloc(sizeof(*e));
        if (!e) {
                proto_response_free(resp);
                return dcl_fail(c, DREAM_E_NOMEM, "out of memory");
        }
        e->resp = resp;
        e->next = NULL;
        if (c->tail)
                c->tail->next = e;
        else
                c->head = e;
        c->tail = e;
        c->n_stashed++;
        return 0;
}

/* Read what the socket has (it is readable) and stash every complete
 * response. */
static int pump(struct dream_client *c)
{
        const uint8_t *msg;
        uint32_t len;
        ssize_t k;
        int r;

        for (;;) {
                k = recv(c->fd, c->rbuf, DCL_READ_BYTES, 0);
                if (k >= 0 || errno != EINTR)
                        break;
        }
        if (k < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return 0;
                if (errno != ECONNRESET)
                        return dcl_fail(c, -errno, "connection lost: %s", strerror(errno));
        }
        if (k <= 0)
                return dcl_fail(c, -ECONNRESET, "connection closed by the server");
        r = frame_decoder_feed(&c->dec, c->rbuf, (size_t)k);
        while (r == 0 && (r = frame_decoder_next(&c->dec, &msg, &len)) == 1)
                r = stash_frame(c, msg, len);
        if (r == DREAM_E_LIMIT)
                return dcl_fail(c, DREAM_E_PROTO,
                                "the server sent a frame of %u bytes, over the limit of %u",
                                frame_decoder_bad_length(&c->dec), c->max_frame);
        if (r < 0 && !c->broken)
                return dcl_fail(c, r == DREAM_E_NOMEM ? r : DREAM_E_PROTO,
                                "bad frame from the server: %s", dream_strerror(r));
        return r < 0 ? r : 0;
}

/* Wait for events on the socket, up to the io timeout. */
static int wait_fd(struct dream_client *c, short events, short *ret_revents)
{
        struct pollfd p = {.fd = c->fd, .events = events};
        int k;

        do
                k = poll(&p, 1, (int)c->io_timeout_ms);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return dcl_fail(c, -errno, "poll: %s", strerror(errno));
        if (k == 0)
                return dcl_fail(c, DREAM_E_TIMEOUT, "no reply from the server within %u ms",
                                c->io_timeout_ms);
        *ret_revents = p.revents;
        return 0;
}

static int write_all(struct dream_client *c, const uint8_t *p, size_t n)
{
        short rev;
        int r;

        while (n > 0) {
                ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
                if (k > 0) {
                        p += k;
                        n -= (size_t)k;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                        return dcl_fail(c, -errno, "connection lost: %s", strerror(errno));
                /* Full: read meanwhile, so that a server blocked on writing
                 * its responses to us never deadlocks with us. */
                r = wait_fd(c, POLLOUT | POLLIN, &rev);
                if (r < 0)
                        return r;
                if (rev & (POLLIN | POLLHUP | POLLERR)) {
                        r = pump(c);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- sending and receiving ------------------------------------------------------ */

int dcl_send(struct dream_client *c, Dream__V1__Request *req, uint64_t *ret_id)
{
        uint64_t id = c->next_id;
        int r;

        req->request_id = id;
        c->out.len = 0;
        r = frame_encode(&c->out, &req->base, c->max_frame);
        if (r == DREAM_E_LIMIT) {
                dcl_set_err(c, "request of %zu bytes exceeds the frame limit of %u bytes",
                            dream__v1__request__get_packed_size(req), c->max_frame);
                return r;
        }
        if (r < 0) {
                dcl_set_err(c, "cannot encode the request: %s", dream_strerror(r));
                return r;
        }
        r = inflight_add(c, id);
        if (r < 0) {
                dcl_set_err(c, "out of memory");
                return r;
        }
        c->next_id++;
        r = write_all(c, c->out.data, c->out.len);
        if (c->out.cap > (1u << 20)) {
                dm_buf_release(&c->out);
                dm_buf_init(&c->out);
        }
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int dcl_recv(struct dream_client *c, uint64_t id, proto_response **ret)
{
        proto_response *resp;
        short rev;
        int r;

        if (c->broken)
                return c->broken;
        if (!inflight_has(c, id)) {
                dcl_set_err(c, "request %llu is not in flight", (unsigned long long)id);
                return DREAM_E_INVAL;
        }
        while (!(resp = stash_take(c, id))) {
                r = wait_fd(c, POLLIN, &rev);
                if (r == 0)
                        r = pump(c);
                if (r < 0)
                        return r;
        }
        if (!resp->more)
                inflight_remove(c, id);
        *ret = resp;
        return 0;
}

int dcl_status(struct dream_client *c, const proto_response *resp,
               Dream__V1__Response__BodyCase body)
{
        if (resp->code != DREAM__V1__STATUS__STATUS_OK) {
                int err = proto_status_to_err(resp->code);
                if (err == 0)
                        err = DREAM_E_PROTO;
                if (resp->message && resp->message[0])
                        dcl_set_err(c, "%s", resp->message);
                else
                        dcl_set_err(c, "%s", proto_status_message(resp->code));
                return err;
        }
        if (body && resp->body_case != body) {
                dcl_set_err(c, "the server answered with an unexpected message (body %d)",
                            (int)resp->body_case);
                return DREAM_E_PROTO;
        }
        return 0;
}

int dcl_drain(struct dream_client *c, uint64_t id)
{
        proto_response *resp;
        int r;

        while (inflight_has(c, id)) {
                r = dcl_recv(c, id, &resp);
                if (r < 0)
                        return r;
                proto_response_free(resp);
        }
        return 0;
}

/* ---- generic calls ------------------------------------------------------------------ */

int dream_send(struct dream_client *c, const void *request, size_t len, uint64_t *ret_id)
{
        uint8_t tail[11];
        size_t n = 0, total;
        uint64_t id;
        int r;

        r = dcl_begin(c);
        if (r < 0)
                return r;
        id = c->next_id;
        /* Field 1 (request_id, varint) appended: the last value of a scalar
         * field wins, so this replaces any id in the bytes. */
        tail[n++] = 0x08;
        for (uint64_t v = id;; v >>= 7) {
                tail[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
                if (v < 0x80)
                        break;
        }
        if (__builtin_add_overflow(len, n, &total) || total > c->max_frame) {
                dcl_set_err(c, "request of %zu bytes exceeds the frame limit of %u bytes", len,
                            c->max_frame);
                return DREAM_E_LIMIT;
        }
        c->out.len = 0;
        r = dm_buf_reserve(&c->out, FRAME_HEADER_SIZE + total);
        if (r == 0)
                r = inflight_add(c, id);
        if (r < 0) {
                dcl_set_err(c, "out of memory");
                return r;
        }
        frame_header_put(c->out.data, (uint32_t)total);
        if (len)
                memcpy(c->out.data + FRAME_HEADER_SIZE, request, len);
        memcpy(c->out.data + FRAME_HEADER_SIZE + len, tail, n);
        c->out.len = FRAME_HEADER_SIZE + total;
        c->next_id++;
        r = write_all(c, c->out.data, c->out.len);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int dream_recv(struct dream_client *c, uint64_t id, dream_response_fn fn, void *arg)
{
        proto_response *resp = NULL;
        uint8_t *packed = NULL;
        int r, rc = 0, status = 0;

        r = dcl_begin(c);
        if (r < 0)
                return r;
        for (;;) {
                bool more;

                r = dcl_recv(c, id, &resp);
                if (r < 0)
                        goto free_packed;
                more = resp->more;
                status = dcl_status(c, resp, DREAM__V1__RESPONSE__BODY__NOT_SET);
                if (fn && rc == 0) {
                        size_t n = dream__v1__response__get_packed_size(resp);
                        uint8_t *p = dm_realloc(packed, n ? n : 1);
                        if (!p) {
                                proto_response_free(resp);
                                rc = DREAM_E_NOMEM;
                                dcl_set_err(c, "out of memory");
                                r = dcl_drain(c, id);
                                goto free_packed;
                        }
                        packed = p;
                        dream__v1__response__pack(resp, packed);
                        rc = fn(arg, packed, n, more);
                }
                proto_response_free(resp);
                if (!more)
                        break;
        }
        r = status < 0 ? status : rc;
free_packed:
        dm_free(packed);
        return r < 0 ? r : (rc ? rc : r);
}

int dream_call(struct dream_client *c, const void *request, size_t len, dream_response_fn fn,
               void *arg)
{
        uint64_t id;
        int r = dream_send(c, request, len, &id);

        if (r < 0)
                return r;
        return dream_recv(c, id, fn, arg);
}

/* ---- connecting -------------------------------------------------------------------- */

int dcl_client_from_fd(int fd, const struct dream_connect_opts *opts, struct dream_client **ret)
{
        struct dream_client *c;
        const char *name =
            opts && opts->client_name ? opts->client_name : "libdream/" DREAM_VERSION_STRING;
        int fl;

        c = dm_calloc(1, sizeof(*c));
        if (!c)
                goto nomem;
        c->fd = fd;
        c->max_frame = opts && opts->max_frame ? opts->max_frame : DREAM_MAX_FRAME_DEFAULT;
        if (c->max_frame > UINT32_MAX - FRAME_HEADER_SIZE)
                c->max_frame = UINT32_MAX - FRAME_HEADER_SIZE;
        c->io_timeout_ms = opts && opts->io_timeout_ms ? opts->io_timeout_ms : DCL_IO_TIMEOUT_MS;
        if (c->io_timeout_ms > INT32_MAX)
                c->io_timeout_ms = INT32_MAX;
        c->next_id = 1;
        frame_decoder_init(&c->dec, c->max_frame);
        dm_buf_init(&c->out);
        c->name = dm_strdup(name);
        c->rbuf = dm_malloc(DCL_READ_BYTES);
        if (!c->name || !c->rbuf) {
                dream_close(c);
                return DREAM_E_NOMEM;
        }
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
                int e = -errno;
                dream_close(c);
                return e;
        }
        *ret = c;
        return 0;
nomem:
        close(fd);
        return DREAM_E_NOMEM;
}

/* Finish a non-blocking connect within the remaining time. */
static int connect_wait(int fd, uint64_t deadline)
{
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        socklen_t len = sizeof(int);
        int k, soerr = 0;

        for (;;) {
                uint64_t now = now_ms();
                if (now >= deadline)
                        return DREAM_E_TIMEOUT;
                k = poll(&p, 1, (int)(deadline - now));
                if (k > 0)
                        break;
                if (k == 0)
                        return DREAM_E_TIMEOUT;
                if (errno != EINTR)
                        return -errno;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
                return -errno;
        return soerr ? -soerr : 0;
}

static int connect_one(int family, const struct sockaddr *sa, socklen_t salen, uint64_t deadline,
                       int *ret_fd)
{
        int fd, r;

        fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, sa, salen) == 0) {
                r = 0;
        } else if (errno == EINPROGRESS || errno == EAGAIN || errno == EINTR) {
                r = connect_wait(fd, deadline);
        } else {
                r = -errno;
        }
        if (r < 0) {
                close(fd);
                return r;
        }
        if (family != AF_UNIX) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        *ret_fd = fd;
        return 0;
}

int dream_connect(const char *addr, const struct dream_connect_opts *opts,
                  struct dream_client **ret)
{
        struct dream_addr a;
        struct dream_connect_opts o;
        uint64_t deadline;
        int fd = -1, r;

        dream_connect_opts_default(&o);
        if (opts) {
                r = dcl_sized_in(NULL, "dream_connect_opts", &o, opts, sizeof(o));
                if (r < 0)
                        return r;
        }
        deadline =
            now_ms() + (o.connect_timeout_ms ? o.connect_timeout_ms : DCL_CONNECT_TIMEOUT_MS);
        r = dream_addr_parse(addr, &a);
        if (r < 0)
                return r;
        if (a.is_unix) {
                struct sockaddr_un sun;

                memset(&sun, 0, sizeof(sun));
                sun.sun_family = AF_UNIX;
                memcpy(sun.sun_path, a.path, strlen(a.path) + 1);
                r = connect_one(AF_UNIX, (const struct sockaddr *)&sun, sizeof(sun), deadline, &fd);
        } else {
                struct addrinfo hints, *res = NULL;
                char port[8];

                memset(&hints, 0, sizeof(hints));
                hints.ai_family = AF_UNSPEC;
                hints.ai_socktype = SOCK_STREAM;
                hints.ai_flags = AI_NUMERICSERV;
                snprintf(port, sizeof(port), "%u", a.port);
                r = getaddrinfo(a.host, port, &hints, &res);
                if (r != 0) /* the name does not resolve: an unknown host */
                        return r == EAI_MEMORY                ? DREAM_E_NOMEM
                               : r == EAI_SYSTEM && errno > 0 ? -errno
                                                              : DREAM_E_NOTFOUND;
                r = -EHOSTUNREACH;
                for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                        r = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline, &fd);
                        if (r == 0 || r == DREAM_E_TIMEOUT)
                                break;
                }
                freeaddrinfo(res);
        }
        if (r < 0)
                return r;
        return dcl_client_from_fd(fd, &o, ret);
}

void dream_close(struct dream_client *c)
{
        struct dcl_stashed *e, *next;

        if (!c)
                return;
        if (c->fd >= 0)
                close(c->fd);
        for (e = c->head; e; e = next) {
                next = e->next;
                proto_response_free(e->resp);
                dm_free(e);
        }
        frame_decoder_release(&c->dec);
        dm_buf_release(&c->out);
        dm_free(c->inflight);
        dm_free(c->name);
        dm_free(c->rbuf);
        dm_free(c);
}
