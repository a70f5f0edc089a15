/* Authentication: token file, roles, and throttling wrong tokens per peer
 * (see auth.h). Loop thread. */
#include "server/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "server/transport.h"

static uint64_t now_ms(const struct srv *s)
{
        return uv_now(s->loop);
}

/* ---- peers ------------------------------------------------------------------ */

static unsigned peer_hash(const char *key)
{
        uint32_t h = 2166136261u; /* FNV-1a */

        for (; *key; key++)
                h = (h ^ (unsigned char)*key) * 16777619u;
        return h % SRV_PEER_BUCKETS;
}

/* The entry of `key`, made when missing (NULL: out of memory). */
struct srv_peer *srv_peer_get(struct srv *s, const char *key)
{
        struct srv_peer **head = &s->peers[peer_hash(key)], *p;

        for (p = *head; p; p = p->next)
                if (strcmp(p->key, key) == 0)
                        return p;
        p = dm_calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        snprintf(p->key, sizeof(p->key), "%s", key);
        p->next = *head;
        *head = p;
        return p;
}

/* Forget the peers without connections whose wrong tokens are over a second
 * old (all of them when `all`). */
void srv_peers_prune(struct srv *s, bool all)
{
        uint64_t now = all ? 0 : now_ms(s);

        for (unsigned b = 0; b < SRV_PEER_BUCKETS; b++) {
                struct srv_peer **pp = &s->peers[b];

                while (*pp) {
                        struct srv_peer *p = *pp;

                        if (all ||
                            (p->conns == 0 && (p->failures == 0 || now - p->window_ms >= 1000))) {
                                *pp = p->next;
                                dm_free(p);
                        } else {
                                pp = &p->next;
                        }
                }
        }
}

static void auth_windows(struct srv *s, struct srv_peer *p, uint64_t now)
{
        if (now - s->auth_window_ms >= 1000) {
                s->auth_window_ms = now;
                s->auth_window_failures = 0;
        }
        if (p && now - p->window_ms >= 1000) {
                p->window_ms = now;
                p->failures = 0;
        }
}

void srv_auth_failed(struct srv_conn *c)
{
        struct srv *s = c->srv;

        auth_windows(s, c->peer_ent, now_ms(s));
        s->auth_window_failures++;
        if (c->peer_ent)
                c->peer_ent->failures++;
}

/* Wrong tokens are throttled per peer, and the server-wide ceiling only
 * holds peers that failed themselves: a peer that sent no wrong token is
 * never held, and a right token is never refused (a held hello is compared
 * when its time comes, and succeeds if right). Holding the answer, rather
 * than answering BUSY at once, is what slows guessing: one guess per held
 * connection per SRV_AUTH_HOLD_MS, and a held wrong guess closes its
 * connection. */
bool srv_hello_hold(struct srv_conn *c, proto_request *req)
{
        struct srv *s = c->srv;
        struct srv_peer *p = c->peer_ent;
        uint64_t now = now_ms(s);

        if (!s->n_tokens || c->hello_released || !p)
                return false;
        auth_windows(s, p, now);
        if (p->failures < SRV_MAX_PEER_AUTH_FAILURES &&
            (p->failures == 0 || s->auth_window_failures < SRV_MAX_AUTH_FAILURES_PER_SECOND))
                return false;
        dm_debug("connection %llu (%s): hello held %u ms (%u wrong tokens from %s, %u from every "
                 "peer, in the last second)",
                 (unsigned long long)c->id, c->peer, SRV_AUTH_HOLD_MS, p->failures, p->key,
                 s->auth_window_failures);
        c->held_hello = req;
        c->held_until_ms = now + SRV_AUTH_HOLD_MS;
        c->hello_throttled = true;
        srv_tx_pause(c);
        return true;
}

/* ---- tokens --------------------------------------------------------------- */

static const char *const role_words[] = {"ingest", "read", "train", "admin"};

/* A line is "TOKEN" (every role) or "ROLE[,ROLE...]:TOKEN" with roles from
 * role_words. A token holds no ':' of its own unless roles come first
 * ("admin:a:b" is the token "a:b"), and no space or tab: a typo in a role, an
 * empty role list or a space after the ':' is refused rather than read as a
 * token that never matches or that grants every role. Sets *ret_roles
 * (SRV_ROLE_* bits) and *ret_tok, or says why not in why. */
static int parse_token_line(const char *line, unsigned *ret_roles, const char **ret_tok, char *why,
                            size_t why_size)
{
        const char *colon = strchr(line, ':');
        const char *p = line, *tok = line;
        unsigned roles = SRV_ROLES_ALL;

        if (colon) {
                roles = 0;
                tok = colon + 1;
                if (colon == line)
                        return srv_fail(why, why_size, DREAM_E_INVAL,
                                        "no role before ':' (write ROLE[,ROLE...]:TOKEN with "
                                        "roles ingest, read, train, admin; or the token alone "
                                        "for every role)");
                for (;;) { /* p < colon: every role ends at ',' or at colon */
                        size_t n = strcspn(p, ",:");
                        bool known = false;

                        for (size_t i = 0; i < sizeof(role_words) / sizeof(role_words[0]); i++)
                                if (strlen(role_words[i]) == n &&
                                    strncmp(p, role_words[i], n) == 0) {
                                        known = true;
                                        roles |= 1u << i;
                                }
                        if (!known)
                                return srv_fail(why, why_size, DREAM_E_INVAL,
                                                "unknown role '%.*s' before ':' (roles: ingest, "
                                                "read, train, admin; a token alone may not "
                                                "contain ':')",
                                                (int)(n < 32 ? n : 32), p);
                        p += n;
                        if (*p != ',')
                                break;
                        p++;
                }
        }
        if (!tok[0])
                return srv_fail(why, why_size, DREAM_E_INVAL, "empty token");
        if (strpbrk(tok, " \t"))
                return srv_fail(
                    why, why_size, DREAM_E_INVAL, "the token contains a space or tab (%s)",
                    tok == line ? "write ROLE:TOKEN without spaces" : "no space may follow ':'");
        if (strlen(tok) > DREAM_MAX_TOKEN)
                return srv_fail(why, why_size, DREAM_E_INVAL, "token longer than %u bytes",
                                DREAM_MAX_TOKEN);
        *ret_roles = roles;
        *ret_tok = tok;
        return 0;
}

int srv_tokens_load(struct srv *s, const char *path, char *errmsg, size_t errmsg_size)
{
        struct dm_buf b;
        char chunk[4096], why[256];
        size_t pos = 0;
        unsigned lineno = 0;
        int fd, r = 0;

        dm_buf_init(&b);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return srv_fail(errmsg, errmsg_size, -errno, "cannot open token file '%s': %s",
                                path, strerror(errno));
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = srv_fail(errmsg, errmsg_size, -errno, "cannot read token file '%s': %s",
                                     path, strerror(errno));
                        goto release;
                }
                if (n == 0)
                        break;
                if (b.len + (size_t)n > SRV_MAX_TOKEN_FILE_BYTES) {
                        r = srv_fail(errmsg, errmsg_size, DREAM_E_LIMIT,
                                     "token file '%s': larger than %u bytes", path,
                                     SRV_MAX_TOKEN_FILE_BYTES);
                        goto release;
                }
                r = dm_buf_append(&b, chunk, (size_t)n);
                if (r < 0)
                        goto release;
        }
        s->tokens = dm_calloc(SRV_MAX_TOKENS, sizeof(*s->tokens));
        if (!s->tokens) {
                r = DREAM_E_NOMEM;
                goto release;
        }
        while (pos < b.len) {
                const uint8_t *nl = memchr(b.data + pos, '\n', b.len - pos);
                size_t n = nl ? (size_t)(nl - (b.data + pos)) : b.len - pos;
                char *line = dm_malloc(n + 1);
                const char *tok;
                unsigned roles = 0;
                char *e;

                lineno++;
                if (!line) {
                        r = DREAM_E_NOMEM;
                        goto release;
                }
                memcpy(line, b.data + pos, n);
                line[n] = '\0';
                pos += n + (nl ? 1 : 0);
                e = line + strlen(line);
                while (e > line && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                        *--e = '\0';
                tok = line;
                while (*tok == ' ' || *tok == '\t')
                        tok++;
                if (!tok[0] || tok[0] == '#') {
                        dm_free(line);
                        continue;
                }
                r = parse_token_line(tok, &roles, &tok, why, sizeof(why));
                if (r == 0 && s->n_tokens >= SRV_MAX_TOKENS)
                        r = srv_fail(why, sizeof(why), DREAM_E_LIMIT, "more than %u tokens",
                                     SRV_MAX_TOKENS);
                if (r < 0) {
                        dm_free(line);
                        srv_fail(errmsg, errmsg_size, r, "token file '%s', line %u: %s", path,
                                 lineno, why);
                        goto release;
                }
                /* Stored as one byte of role bits, then the token. */
                s->tokens[s->n_tokens] = dm_malloc(strlen(tok) + 2);
                if (!s->tokens[s->n_tokens]) {
                        dm_free(line);
                        r = DREAM_E_NOMEM;
                        goto release;
                }
                s->tokens[s->n_tokens][0] = (char)roles;
                memcpy(s->tokens[s->n_tokens] + 1, tok, strlen(tok) + 1);
                dm_free(line);
                s->n_tokens++;
        }
        if (s->n_tokens == 0)
                r = srv_fail(errmsg, errmsg_size, DREAM_E_INVAL, "token file '%s': no token in it",
                             path);
release:
        dm_buf_release(&b);
        close(fd);
        return r;
}

/* Constant time in the contents of `given`: every configured token is
 * compared over its own full length, with no early exit. */
unsigned srv_token_roles(const struct srv *s, const char *given)
{
        size_t glen = strlen(given);
        unsigned roles = 0;

        for (uint32_t t = 0; t < s->n_tokens; t++) {
                const char *tok = s->tokens[t] + 1;
                size_t tlen = strlen(tok);
                unsigned diff = (unsigned)(tlen != glen);

                for (size_t i = 0; i < tlen; i++)
                        diff |= (unsigned char)tok[i] ^ (unsigned char)given[glen ? i % glen : 0];
                /* all ones when equal, else 0: no branch on the contents */
                roles |= (unsigned char)s->tokens[t][0] & (0u - (unsigned)(diff == 0));
        }
        return roles;
}

bool srv_token_ok(const struct srv *s, const char *given)
{
        return srv_token_roles(s, given) != 0;
}
