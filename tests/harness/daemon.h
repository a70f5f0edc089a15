/* Starting and stopping a real dreamd for the tests and benchmarks: a
 * temporary data directory, 127.0.0.1 port 0 (the bound port read from the
 * daemon's first stdout line, "listening on HOST:PORT"), SIGTERM and the exit
 * status, SIGKILL, a restart on the same data directory, cleanup. The
 * executable is $DREAMD. Daemons still running when the process aborts are
 * killed, so that a failed check leaves none behind. */
#ifndef DREAM_TESTS_HARNESS_DAEMON_H
#define DREAM_TESTS_HARNESS_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How long a daemon may take to report its port (slow under sanitizers). */
#define TD_START_TIMEOUT_MS 120000

struct tdaemon {
        pid_t pid;     /* 0 when not running */
        uint16_t port; /* of the first listen address */
        char addr[64]; /* the first listen address as reported: "127.0.0.1:PORT" */
        char dir[64];  /* the temporary directory made by the start ("" if none) */
        char data_dir[300];
};

struct td_opts {
        const char *data_dir;      /* NULL: DIR/data in a new temporary DIR */
        const char *const *listen; /* NULL-terminated; NULL: 127.0.0.1:0 alone */
        const char *const *args;   /* more dreamd arguments, NULL-terminated */
        const char *log_path;      /* its stderr, appended to (NULL: inherited) */
};

/* A new temporary d->dir named PREFIX-XXXXXX, and d->data_dir = DIR/data
 * (made by dreamd). Aborts on failure. */
void td_mkdir(struct tdaemon *d, const char *prefix);

/* Start dreamd as `o` says (may be NULL; the listen addresses may point
 * into d->addr, to start again on the same address). 0 once it reported its address;
 * else the exit status of a daemon that exited without listening (> 0; -1
 * for a signal), or -2 when it could not be started or did not report in
 * TD_START_TIMEOUT_MS (it is killed then). d->dir is kept when data_dir is
 * given, so a restart on d->data_dir keeps the directory to clean up. */
int td_launch(struct tdaemon *d, const struct td_opts *o);
/* td_launch with the data directory (NULL: a new one) and extra arguments;
 * aborts unless the daemon listens. */
void td_start(struct tdaemon *d, const char *data_dir, const char *const *extra);
/* td_launch with one listen address (NULL: 127.0.0.1:0) and a log path. */
int td_spawn(struct tdaemon *d, const char *data_dir, const char *listen, const char *const *extra,
             const char *log_path);
/* Start again on d->data_dir (after td_stop or td_kill) with extra
 * arguments; aborts unless it listens. */
void td_restart(struct tdaemon *d, const char *const *extra);
/* SIGTERM and wait: the exit status (-1 for a signal, or when not running). */
int td_stop(struct tdaemon *d);
/* Wait for the daemon to exit (after a signal sent by the caller). */
int td_wait(struct tdaemon *d);
/* SIGKILL and reap. */
void td_kill(struct tdaemon *d);
/* SIGKILL every daemon still running (from a signal handler too). */
void td_kill_all(void);
/* A line of /proc/PID/status in KiB ("VmRSS", "VmHWM"...), -1 if absent. */
long td_status_kb(const struct tdaemon *d, const char *key);
/* Resident memory of the daemon in KiB. */
long td_rss_kb(const struct tdaemon *d);
/* Poll the file at log_path (a daemon's log) until it holds `what`: true,
 * or false after timeout_ms. For what a signal makes the daemon do. */
bool td_log_has(const char *log_path, const char *what, int timeout_ms);
/* Remove d->dir (when the start made it). */
void td_cleanup(struct tdaemon *d);
/* Remove a directory tree. */
void td_rmtree(const char *dir);
/* Run `dreamd --check --data-dir DIR` (stdout into out, may be NULL); the exit
 * status, -1 for a signal (its number in *ret_sig when not NULL). */
int td_check(const char *dir, char *out, size_t out_size, int *ret_sig);

#endif
