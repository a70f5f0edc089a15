/* dreamd and systemd's notify protocol: with NOTIFY_SOCKET set, READY=1
 * arrives once the daemon accepts connections (a connection made right after
 * it is served), WATCHDOG=1 pings follow at half of WATCHDOG_USEC while the
 * loop turns, and SIGTERM sends STOPPING=1 before a clean exit. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tclient.h"

/* Next datagram from the notify socket, NUL-terminated, or "" on timeout. */
static void recv_notify(int fd, char *buf, size_t cap, int timeout_ms)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};
        buf[0] = '\0';
        if (poll(&p, 1, timeout_ms) == 1) {
                ssize_t n = recv(fd, buf, cap - 1, 0);
                buf[n > 0 ? n : 0] = '\0';
        }
}

int main(void)
{
        char dir[] = "/tmp/dreamd-notify-XXXXXX", path[64], msg[512];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct tdaemon d;
        struct tc c;
        int fd;

        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/notify", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        setenv("NOTIFY_SOCKET", path, 1);
        setenv("WATCHDOG_USEC", "200000", 1); /* pings every 100 ms */

        td_start(&d, NULL, NULL);
        /* The first message is READY=1 (with a STATUS line). */
        recv_notify(fd, msg, sizeof(msg), 20000);
        CHECK(strncmp(msg, "READY=1", 7) == 0);
        CHECK(strstr(msg, "STATUS=serving on") != NULL);
        /* Ready means accepting: a request right now is answered. */
        tc_connect(&c, d.port);
        tc_hello(&c, NULL, DREAM__V1__STATUS__STATUS_OK);
        tc_close(&c);
        /* Watchdog pings while the loop turns. */
        int pings = 0;
        for (int i = 0; i < 10 && pings < 3; i++) {
                recv_notify(fd, msg, sizeof(msg), 1000);
                pings += strcmp(msg, "WATCHDOG=1") == 0;
        }
        CHECK(pings >= 3);
        /* SIGTERM: STOPPING=1, then exit 0. */
        CHECK(kill(d.pid, SIGTERM) == 0);
        int stopping = 0;
        for (int i = 0; i < 20 && !stopping; i++) {
                recv_notify(fd, msg, sizeof(msg), 1000);
                stopping = strcmp(msg, "STOPPING=1") == 0;
        }
        CHECK(stopping);
        CHECK(td_wait(&d) == 0);
        td_cleanup(&d);
        close(fd);
        unlink(path);
        rmdir(dir);
        puts("notify: READY=1 before accepting, watchdog pings, STOPPING=1: ok");
        return 0;
}
