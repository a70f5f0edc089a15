/* Address parsing: "HOST[:PORT]", "[IPV6][:PORT]", "unix:/path". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/lib/internal.h"
#include "common/err.h"

static int parse_port(const char *s, uint16_t *ret)
{
        unsigned long v;
        char *end;

        if (*s < '0' || *s > '9')
                return DREAM_E_INVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end != '\0' || v == 0 || v > 65535)
                return DREAM_E_INVAL;
        *ret = (uint16_t)v;
        return 0;
}

int dream_addr_parse(const char *s, struct dream_addr *ret)
{
        struct dream_addr a;
        const char *host, *port = NULL;
        size_t host_len;

        if (!s || !*s)
                return DREAM_E_INVAL;
        memset(&a, 0, sizeof(a));
        if (strncmp(s, "unix:", 5) == 0) {
                size_t n = strlen(s + 5);
                if (n == 0 || n >= sizeof(a.path))
                        return DREAM_E_INVAL;
                memcpy(a.path, s + 5, n + 1);
                a.is_unix = 1;
                *ret = a;
                return 0;
        }
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close == s + 1)
                        return DREAM_E_INVAL;
                host = s + 1;
                host_len = (size_t)(close - host);
                if (close[1] == ':')
                        port = close + 2;
                else if (close[1] != '\0')
                        return DREAM_E_INVAL;
                if (!memchr(host, ':', host_len))
                        return DREAM_E_INVAL; /* brackets are for IPv6 only */
        } else {
                const char *colon = strchr(s, ':');
                if (colon && strchr(colon + 1, ':'))
                        return DREAM_E_INVAL; /* bare IPv6: needs brackets */
                host = s;
                host_len = colon ? (size_t)(colon - s) : strlen(s);
                if (colon)
                        port = colon + 1;
        }
        if (host_len == 0 || host_len >= sizeof(a.host))
                return DREAM_E_INVAL;
        for (size_t i = 0; i < host_len; i++) {
                char ch = host[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':' ||
                      ch == '_' || ch == '%'))
                        return DREAM_E_INVAL;
        }
        memcpy(a.host, host, host_len);
        a.host[host_len] = '\0';
        a.port = DREAM_DEFAULT_PORT;
        if (port && parse_port(port, &a.port) < 0)
                return DREAM_E_INVAL;
        *ret = a;
        return 0;
}
