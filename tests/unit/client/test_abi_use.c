/* A program using libdream as an installed library would: only
 * <dream/client.h> on the include path (no project header), linked with the
 * shared libdream.so. Checks the compile-time version against the library
 * run, and that sized option structs are honoured to the caller's size: an
 * older caller's fields are read, nothing past them; a newer caller's
 * unknown options are refused unless 0 (client.h, ABI). No server: a
 * listening Unix socket accepts the connection. */
#include <dream/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        failures++;                                                                \
                }                                                                                  \
        } while (0)

/* A caller compiled with a newer header: one more option at the end. */
struct newer_connect_opts {
        struct dream_connect_opts o;
        unsigned long long future_option;
};

int main(void)
{
        char dir[] = "/tmp/dream-abi-XXXXXX", addr[128], num[32];
        struct sockaddr_un sun;
        struct dream_connect_opts o = DREAM_INIT(struct dream_connect_opts);
        struct newer_connect_opts n;
        struct dream_client *c = NULL;
        int lfd;

        /* The version compiled against is the version run. */
        CHECK(dream_version() == DREAM_VERSION_NUMBER);
        CHECK(strcmp(dream_version_string(), DREAM_VERSION_STRING) == 0);
        snprintf(num, sizeof(num), "%d.%d.%d", DREAM_VERSION_MAJOR, DREAM_VERSION_MINOR,
                 DREAM_VERSION_PATCH);
        CHECK(strcmp(num, dream_version_string()) == 0);
        CHECK(DREAM_VERSION_NUMBER ==
              ((DREAM_VERSION_MAJOR << 16) | (DREAM_VERSION_MINOR << 8) | DREAM_VERSION_PATCH));
        CHECK(o.size == sizeof(o) && o.client_name == NULL);

        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", dir);
        snprintf(addr, sizeof(addr), "unix:%s", sun.sun_path);
        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (lfd < 0 || bind(lfd, (const struct sockaddr *)&sun, sizeof(sun)) < 0 ||
            listen(lfd, 8) < 0) {
                perror("listen");
                return 1;
        }

        /* A forgotten initialisation. */
        o.size = 0;
        CHECK(dream_connect(addr, &o, &c) == DREAM_E_INVAL && c == NULL);

        /* An older caller whose struct ends before client_name: the bytes
         * past its size (here a pointer that must not be followed) are not
         * read. */
        memset(&o, 0xff, sizeof(o));
        o.size = offsetof(struct dream_connect_opts, client_name);
        o.connect_timeout_ms = 2000;
        o.io_timeout_ms = 2000;
        o.max_frame = 0;
        CHECK(dream_connect(addr, &o, &c) == 0);
        CHECK(c != NULL && dream_max_frame(c) > 0);
        dream_close(c);
        c = NULL;

        /* A newer caller: an option this library does not know is refused
         * while set, accepted while 0 (its default). */
        memset(&n, 0, sizeof(n));
        n.o.size = sizeof(n);
        n.future_option = 1;
        CHECK(dream_connect(addr, &n.o, &c) == DREAM_E_INVAL && c == NULL);
        n.future_option = 0;
        CHECK(dream_connect(addr, &n.o, &c) == 0 && c != NULL);
        dream_close(c);

        close(lfd);
        unlink(sun.sun_path);
        rmdir(dir);
        if (failures)
                return 1;
        printf("libdream %s (compiled against %s): ok\n", dream_version_string(),
               DREAM_VERSION_STRING);
        return 0;
}
