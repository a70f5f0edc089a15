/* Authentication: the token file, its roles, and the throttling of wrong
 * tokens per peer (an IP address; for a unix socket, the peer's uid).
 * Loop thread. */
#ifndef DREAM_SERVER_AUTH_H
#define DREAM_SERVER_AUTH_H

#include <stdbool.h>

#include "server/internal.h"

/* Read a token file into s->tokens / s->n_tokens (reload.c loads into a
 * scratch struct srv, then swaps). */
int srv_tokens_load(struct srv *s, const char *path, char *errmsg, size_t errmsg_size);
/* Roles (SRV_ROLE_* bits) of the token equal to `given`, 0 for none.
 * Constant time in the contents of `given`. */
unsigned srv_token_roles(const struct srv *s, const char *given);
bool srv_token_ok(const struct srv *s, const char *given);
/* Hello on c (token file set): true when the hello is held (taken; its answer
 * comes SRV_AUTH_HOLD_MS later) because c's peer sent too many wrong tokens,
 * or every peer together did and c's peer is one of them. A right token is
 * never refused: it is only answered later. */
bool srv_hello_hold(struct srv_conn *c, proto_request *req);
/* A wrong token on c: counted for its peer and for the server. */
void srv_auth_failed(struct srv_conn *c);
/* The entry of peer `key`, made when missing (NULL: out of memory). */
struct srv_peer *srv_peer_get(struct srv *s, const char *key);
/* Forget the peers without connections whose wrong tokens are over a second
 * old (all of them when `all`). */
void srv_peers_prune(struct srv *s, bool all);

#endif
