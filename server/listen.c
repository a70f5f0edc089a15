/* Listeners (TCP and unix sockets) and accepting connections: the
 * connection limits (max_connections, max_peer_connections) and the peer
 * of each connection. Loop thread. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "server/auth.h"
#include "server/internal.h"

static void peer_name(struct srv_conn *c, bool is_unix)
{
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        char host[64];

        snprintf(c->peer, sizeof(c->peer), "unix");
        if (is_unix || uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) < 0)
                return;
        if (ss.ss_family == AF_INET) {
                struct sockaddr_in *a = (struct sockaddr_in *)&ss;
                uv_ip4_name(a, host, sizeof(host));
                snprintf(c->peer, sizeof(c->peer), "%s:%u", host, ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
                uv_ip6_name(a, host, sizeof(host));
                snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host, ntohs(a->sin6_port));
        }
}

/* Who a connection comes from: its IP address without the port; on a unix
 * socket, the peer's uid. */
static void peer_key(struct srv_conn *c, bool is_unix, char *key, size_t size)
{
        const char *colon = strrchr(c->peer, ':');
        struct ucred cr;
        socklen_t len = sizeof(cr);
        uv_os_fd_t fd;

        if (is_unix) {
                if (uv_fileno(&c->h.handle, &fd) == 0 &&
                    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
                        snprintf(key, size, "uid %u", (unsigned)cr.uid);
                else
                        snprintf(key, size, "unix");
                return;
        }
        snprintf(key, size, "%.*s", (int)(colon ? (size_t)(colon - c->peer) : strlen(c->peer)),
                 c->peer);
}

/* Answer BUSY to a connection just accepted and close it. */
static void conn_refuse(struct srv_conn *c, const char *msg)
{
        c->refused = true;
        __atomic_fetch_add(&c->srv->stats.connections_refused, 1, __ATOMIC_RELAXED);
        dm_warn("connection from %s refused: %s", c->peer, msg);
        c->close_after_flush = true;
        srv_conn_error(c, 0, DREAM_E_BUSY, msg);
        srv_conn_maybe_finish(c);
}

static void on_connection(uv_stream_t *server, int status)
{
        struct srv_listener *l = server->data;
        struct srv *s = l->srv;
        struct srv_peer *p;
        struct srv_conn *c;
        int r;

        if (status < 0) {
                dm_warn("accept on '%s' failed: %s", l->name, uv_strerror(status));
                return;
        }
        if (s->draining)
                return;
        c = dm_calloc(1, sizeof(*c));
        if (!c) {
                dm_error("out of memory accepting a connection on '%s'", l->name);
                return;
        }
        c->srv = s;
        c->refs = 1;
        frame_decoder_init(&c->dec, s->cfg.max_frame);
        if (l->is_unix)
                r = uv_pipe_init(s->loop, &c->h.pipe, 0);
        else
                r = uv_tcp_init(s->loop, &c->h.tcp);
        if (r < 0) {
                frame_decoder_release(&c->dec);
                dm_free(c);
                return;
        }
        c->h.handle.data = c;
        s->handles_open++;
        c->id = ++s->next_conn_id;
        c->last_activity_ms = uv_now(s->loop);
        if (uv_accept(server, &c->h.stream) < 0) {
                c->refused = true;
                srv_conn_close(c);
                return;
        }
        if (!l->is_unix)
                uv_tcp_nodelay(&c->h.tcp, 1);
        peer_name(c, l->is_unix);
        if (s->n_conns >= s->cfg.max_connections) {
                char msg[128];

                snprintf(msg, sizeof(msg), "server busy: connection limit of %u reached",
                         s->cfg.max_connections);
                conn_refuse(c, msg);
                return;
        }
        {
                char key[64], msg[192];

                peer_key(c, l->is_unix, key, sizeof(key));
                p = srv_peer_get(s, key);
                if (!p || p->conns >= s->cfg.max_peer_conns) {
                        if (p)
                                snprintf(msg, sizeof(msg),
                                         "server busy: %u connections from %s already open "
                                         "(max_peer_connections); close some and retry",
                                         p->conns, key);
                        else
                                snprintf(msg, sizeof(msg), "server busy: out of memory");
                        conn_refuse(c, msg);
                        return;
                }
        }
        p->conns++;
        c->peer_ent = p;
        s->n_conns++;
        __atomic_fetch_add(&s->stats.connections_total, 1, __ATOMIC_RELAXED);
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        c->authed = s->n_tokens == 0;
        c->roles = c->authed ? SRV_ROLES_ALL : 0;
        /* Before a valid hello only a small frame: an unauthenticated peer
         * holds no more than that. */
        if (!c->authed && c->dec.max_len > SRV_MAX_HELLO_FRAME)
                c->dec.max_len = SRV_MAX_HELLO_FRAME;
        c->accepted_ms = uv_now(s->loop);
        dm_debug("connection %llu from %s on '%s'", (unsigned long long)c->id, c->peer, l->name);
        srv_conn_read_start(c);
}

/* ---- listeners ---------------------------------------------------------- */

static void listener_close_cb(uv_handle_t *h)
{
        struct srv_listener *l = h->data;
        struct srv *s = l->srv;

        s->handles_open--;
        srv_maybe_stop(s);
}

int srv_listener_open(struct srv *s, const char *text, char *errmsg, size_t errmsg_size)
{
        struct srv_listener *l;
        struct srv_addr a;
        int r;

        r = srv_addr_parse(text, &a);
        if (r < 0)
                return srv_fail(errmsg, errmsg_size, r, "bad listen address '%s'", text);
        l = dm_calloc(1, sizeof(*l));
        if (!l)
                return DREAM_E_NOMEM;
        l->srv = s;
        l->is_unix = a.is_unix;
        if (a.is_unix) {
                struct stat st;

                r = uv_pipe_init(s->loop, &l->h.pipe, 0);
                if (r < 0)
                        goto free_l;
                /* A socket left by a previous run (stat/unlink: startup, before
                 * the loop serves anything). */
                if (lstat(a.path, &st) == 0 && S_ISSOCK(st.st_mode))
                        unlink(a.path);
                r = uv_pipe_bind(&l->h.pipe, a.path);
                snprintf(l->name, sizeof(l->name), "unix:%s", a.path);
                snprintf(l->unix_path, sizeof(l->unix_path), "%s", a.path);
        } else {
                struct sockaddr_storage ss;
                int len = sizeof(ss);

                r = uv_tcp_init(s->loop, &l->h.tcp);
                if (r < 0)
                        goto free_l;
                if (a.is_v6)
                        r = uv_ip6_addr(a.host, a.port, (struct sockaddr_in6 *)&ss);
                else
                        r = uv_ip4_addr(a.host, a.port, (struct sockaddr_in *)&ss);
                if (r == 0)
                        r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss,
                                        a.is_v6 ? UV_TCP_IPV6ONLY : 0);
                if (r == 0)
                        r = uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len);
                if (r == 0) {
                        uint16_t port = a.is_v6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                                : ntohs(((struct sockaddr_in *)&ss)->sin_port);
                        snprintf(l->name, sizeof(l->name), a.is_v6 ? "[%s]:%u" : "%s:%u", a.host,
                                 port);
                }
        }
        l->h.handle.data = l;
        s->handles_open++;
        s->listeners[s->n_listeners++] = l;
        if (r == 0)
                r = uv_listen(&l->h.stream, 511, on_connection);
        if (r < 0)
                return srv_fail(errmsg, errmsg_size, -EIO, "cannot listen on '%s': %s", text,
                                uv_strerror(r));
        return 0;
free_l:
        dm_free(l);
        return srv_fail(errmsg, errmsg_size, -EIO, "cannot listen on '%s': %s", text,
                        uv_strerror(r));
}

/* Stop accepting: close every listener, remove unix sockets. */
void srv_listeners_close(struct srv *s)
{
        for (uint32_t i = 0; i < s->n_listeners; i++) {
                struct srv_listener *l = s->listeners[i];
                if (l->unix_path[0])
                        unlink(l->unix_path);
                uv_close(&l->h.handle, listener_close_cb);
        }
}
