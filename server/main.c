/* dreamd: the daemon's entry point. Parses the configuration, opens the
 * server on its own loop, starts the optional /metrics endpoint, handles
 * signals (SIGTERM/SIGINT: drain and exit 0; SIGHUP: read the configuration
 * again, the file then the same command-line flags, and apply what can change
 * at runtime: srv_reload), and pings systemd's watchdog while the loop, the
 * worker pool and the writes make progress. With --check it only verifies
 * the store (store_check) and exits: 0 clean, 1 damaged, 2 usage or open
 * error. --check-config reports every error of the configuration and exits
 * (0 fine, 2 not); --version prints the version. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "server/config.h"
#include "server/server.h"
#include "storage/store.h"

#ifndef DREAM_VERSION
#define DREAM_VERSION "0.0.0"
#endif

struct daemon {
        uv_signal_t sigterm, sigint, sighup; /* handles first in their own structs */
        uv_timer_t watchdog;                 /* systemd watchdog pings, when asked for */
        uv_work_t probe;                     /* a no-op on the worker pool: is it turning? */
        bool watchdog_on, probe_busy, stalled;
        uint64_t watchdog_ms;       /* WATCHDOG_USEC in ms: the longest stall tolerated */
        uint64_t probe_queued_ms;   /* when the probe in flight was queued */
        uint64_t writes_done_seen;  /* srv_write_progress at the last tick */
        uint64_t write_progress_ms; /* last time a write completed or none was queued */
        struct srv *srv;
        struct srv_metrics *metrics; /* NULL: no metrics_listen */
        const struct srv_config *cfg;
        int argc;    /* the command line without --check, read again on SIGHUP */
        char **argv; /* owned array, borrowed strings */
        bool stopping;
};

static void on_done(struct srv *s, void *arg)
{
        struct daemon *d = arg;

        (void)s;
        if (d->watchdog_on)
                uv_close((uv_handle_t *)&d->watchdog, NULL);
        d->watchdog_on = false;
        uv_close((uv_handle_t *)&d->sigterm, NULL);
        uv_close((uv_handle_t *)&d->sigint, NULL);
        uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
        struct daemon *d = h->data;

        if (d->stopping) {
                dm_info("received %s again: still draining", strsignal(signum));
                return;
        }
        d->stopping = true;
        sd_notify(0, "STOPPING=1");
        dm_info("received %s: no new requests, finishing those in progress",
                signum == SIGTERM ? "SIGTERM" : "SIGINT");
        srv_metrics_stop(d->metrics);
        d->metrics = NULL;
        srv_shutdown(d->srv, on_done, d);
}

static void probe_work(uv_work_t *w)
{
        (void)w;
}

static void probe_after(uv_work_t *w, int status)
{
        struct daemon *d = w->data;

        (void)status;
        d->probe_busy = false;
}

/* systemd's watchdog (WatchdogSec= in the unit), pinged at half its
 * interval, only while dreamd makes progress:
 *   - the loop turns (a loop blocked by a stuck call never gets here);
 *   - the worker pool turns: a no-op queued at one tick came back within the
 *     watchdog interval;
 *   - the writes move: a queued mutation or seal completed within the
 *     interval, or none was queued.
 * Otherwise the ping is skipped, and systemd restarts dreamd once the
 * interval passes without one. */
static void on_watchdog(uv_timer_t *t)
{
        struct daemon *d = t->data;
        uint64_t now = uv_now(t->loop), queued, done;
        const char *stuck = NULL;

        if (d->probe_busy) {
                if (now - d->probe_queued_ms > d->watchdog_ms)
                        stuck = "the worker pool has not run a queued task";
        } else if (uv_queue_work(t->loop, &d->probe, probe_work, probe_after) == 0) {
                d->probe_busy = true;
                d->probe_queued_ms = now;
        }
        srv_write_progress(d->srv, &queued, &done);
        if (done != d->writes_done_seen || queued == done) {
                d->writes_done_seen = done;
                d->write_progress_ms = now;
        } else if (now - d->write_progress_ms > d->watchdog_ms) {
                stuck = "no queued write or seal has completed";
        }
        if (stuck) {
                if (!d->stalled)
                        dm_error("watchdog: %s for more than %llu ms: not pinging systemd", stuck,
                                 (unsigned long long)d->watchdog_ms);
                d->stalled = true;
                return;
        }
        if (d->stalled)
                dm_warn("watchdog: progress again, pinging systemd");
        d->stalled = false;
        sd_notify(0, "WATCHDOG=1");
}

/* Read the whole configuration again (the file, then the command-line flags,
 * which keep overriding it) and apply it; a configuration that does not
 * parse or check is not applied at all. Reading the small config and token
 * files blocks the loop briefly (bounded by SRV_MAX_CONFIG_BYTES and
 * SRV_MAX_TOKEN_FILE_BYTES), once per SIGHUP. */
static void on_sighup(uv_signal_t *h, int signum)
{
        struct daemon *d = h->data;
        struct srv_config c;
        char err[1024];
        bool help;
        int r;

        (void)signum;
        if (d->stopping)
                return;
        srv_config_init(&c);
        r = srv_config_from_args(&c, d->argc, d->argv, &help, err, sizeof(err));
        if (r == 0)
                r = srv_reload(d->srv, &c, err, sizeof(err));
        if (r < 0)
                dm_error("received SIGHUP: configuration not reloaded, the running one is kept: "
                         "%s",
                         err);
        else
                dm_info("received SIGHUP: configuration reloaded%s%s%s",
                        d->cfg->config_file ? " from '" : " (no config file: command line)",
                        d->cfg->config_file ? d->cfg->config_file : "",
                        d->cfg->config_file ? "'" : "");
        srv_config_release(&c);
}

static int write_port_file(const char *path, struct srv *s, const char *metrics)
{
        char tmp[4200];
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "w");
        if (!f)
                return -1;
        for (uint32_t i = 0; i < srv_listener_count(s); i++)
                fprintf(f, "listening on %s\n", srv_listener_name(s, i));
        if (metrics)
                fprintf(f, "metrics on http://%s/metrics\n", metrics);
        if (fclose(f) != 0)
                return -1;
        return rename(tmp, path);
}

static void on_problem(const struct store_problem *p, void *arg)
{
        char hex[2 * 48 + 4];
        size_t n = p->key_len < 48 ? p->key_len : 48;

        (void)arg;
        for (size_t i = 0; i < n; i++)
                snprintf(hex + 2 * i, 3, "%02x", p->key[i]);
        hex[2 * n] = '\0';
        if (n < p->key_len)
                strcat(hex, "...");
        printf("damaged: dataset '%s', %s key %s: %s (%s)\n", p->dataset[0] ? p->dataset : "(none)",
               p->db ? p->db : "?", n ? hex : "(none)", p->what ? p->what : "problem",
               dream_strerror(p->err));
}

/* Is data_dir/data.mdb a whole store (store_file_check)? 0 when it is or
 * when there is none (missing_ok: dreamd then creates a new store), else
 * logs what is wrong with it, prefixed by `what`, and returns the error. */
static int file_check(const char *what, const char *dir, bool missing_ok)
{
        struct store_file_info fi;
        int r = store_file_check(dir, &fi);

        switch (r) {
        case 0:
                return 0;
        case DREAM_E_NOTFOUND:
                if (missing_ok)
                        return 0;
                dm_error("%s: no store in '%s': it has no data.mdb (give the data directory of a "
                         "store)",
                         what, dir);
                break;
        case DREAM_E_EMPTY:
                dm_error("%s: the store in '%s' is empty: data.mdb has 0 bytes, its data is lost; "
                         "restore it from a backup, or remove data.mdb to start an empty store",
                         what, dir);
                break;
        case DREAM_E_TRUNCATED:
                dm_error(
                    "%s: the store in '%s' is damaged: data.mdb is truncated, %llu bytes where "
                    "its meta page says at least %llu (page size %u); restore it from a "
                    "backup",
                    what, dir, (unsigned long long)fi.size, (unsigned long long)fi.need,
                    fi.page_size);
                break;
        case DREAM_E_FORMAT:
                if (fi.bad_meta >= 0)
                        dm_error("%s: the store in '%s' is damaged: meta page %d of data.mdb is "
                                 "not an LMDB 0.9 meta page; restore it from a backup",
                                 what, dir, fi.bad_meta);
                else
                        dm_error("%s: '%s/data.mdb' is not a regular file", what, dir);
                break;
        default:
                dm_error("%s: cannot read '%s/data.mdb': %s", what, dir, dream_strerror(r));
                break;
        }
        return r;
}

/* dreamd --check: verify every checksum of the store in data_dir. Does not
 * listen. 0 clean, 1 damage found (an empty, truncated or damaged data.mdb
 * too), 2 no store or it cannot be opened or checked. Never creates a
 * store. */
static int run_check(const struct srv_config *cfg)
{
        struct store_opts so;
        struct store *st = NULL;
        uint64_t problems = 0;
        int r;

        /* store_open creates a missing store: a check must not. */
        r = file_check("check", cfg->data_dir, false);
        if (r == DREAM_E_EMPTY || r == DREAM_E_TRUNCATED || r == DREAM_E_FORMAT)
                return 1;
        if (r < 0)
                return 2;
        store_opts_default(&so);
        if (cfg->map_size_max)
                so.map_max = cfg->map_size_max;
        if (so.map_initial > so.map_max)
                so.map_initial = so.map_max;
        r = store_open(cfg->data_dir, &so, &st);
        if (r < 0) {
                dm_error("check: cannot open the store in '%s': %s", cfg->data_dir,
                         dream_strerror(r));
                return 2;
        }
        r = store_check(st, on_problem, NULL, &problems);
        store_close(st);
        if (r < 0) {
                dm_error("check: cannot check the store in '%s': %s", cfg->data_dir,
                         dream_strerror(r));
                return 2;
        }
        if (problems) {
                printf("check: '%s': %llu problem%s found\n", cfg->data_dir,
                       (unsigned long long)problems, problems == 1 ? "" : "s");
                return 1;
        }
        printf("check: '%s': ok, every record verified\n", cfg->data_dir);
        return 0;
}

static void print_config_error(const char *msg, void *arg)
{
        (void)arg;
        dm_error("%s", msg);
}

/* dreamd --check-config [--config FILE]: parse the file, reporting every
 * error with its line, then the flags and the final checks; never opens
 * the store. 0 fine, 2 not. */
static int run_check_config(int argc, char **argv)
{
        struct srv_config c;
        const char *file = NULL;
        char err[1024], *text = NULL;
        size_t len = 0;
        unsigned errors = 0;
        bool help;
        int r;

        srv_config_init(&c);
        for (int i = 1; i + 1 < argc; i++)
                if (strcmp(argv[i], "--config") == 0)
                        file = argv[i + 1];
        if (file) {
                r = srv_config_read(file, &text, &len, err, sizeof(err));
                if (r < 0) {
                        dm_error("%s", err);
                        errors++;
                } else {
                        r = srv_config_parse_all(&c, text, len, file, print_config_error, NULL,
                                                 &errors);
                        dm_free(text);
                        if (r == DREAM_E_NOMEM) {
                                dm_error("out of memory");
                                errors++;
                        }
                }
        }
        if (errors == 0) {
                /* The file again with the flags over it, then the final checks. */
                srv_config_release(&c);
                srv_config_init(&c);
                r = srv_config_from_args(&c, argc, argv, &help, err, sizeof(err));
                if (r == 0)
                        r = srv_config_check(&c, err, sizeof(err));
                if (r < 0) {
                        dm_error("%s", err);
                        errors++;
                }
        }
        srv_config_release(&c);
        if (errors) {
                fprintf(stderr, "check-config: %u error%s\n", errors, errors == 1 ? "" : "s");
                return 2;
        }
        printf("check-config: %s: ok\n", file ? file : "(no config file)");
        return 0;
}

int main(int argc, char **argv)
{
        struct srv_config cfg;
        struct daemon d;
        uv_loop_t loop;
        char err[1024], workers[16], listen[1024] = "";
        const char *metrics = NULL;
        char **args;
        bool help, check = false, check_config = false;
        int r, n_args = 0, rc = 1;

        memset(&d, 0, sizeof(d));
        dm_log_detect_journal(); /* "<N>" priorities when stderr is the journal */
        srv_config_init(&cfg);
        /* --check is a mode, not a config key: take it out, pass the rest. */
        args = dm_calloc((size_t)argc + 1, sizeof(*args));
        if (!args) {
                dm_error("out of memory");
                return 2;
        }
        for (int i = 0; i < argc; i++) {
                if (i > 0 && strcmp(argv[i], "--version") == 0) {
                        printf("dreamd %s\n", DREAM_VERSION);
                        dm_free(args);
                        return 0;
                }
                if (i > 0 && strcmp(argv[i], "--check") == 0)
                        check = true;
                else if (i > 0 && strcmp(argv[i], "--check-config") == 0)
                        check_config = true;
                else
                        args[n_args++] = argv[i];
        }
        args[n_args] = NULL;
        /* Kept for SIGHUP, which parses the file and these flags again. */
        d.argc = n_args;
        d.argv = args;
        if (check_config) {
                rc = run_check_config(n_args, args);
                goto release;
        }
        r = srv_config_from_args(&cfg, n_args, args, &help, err, sizeof(err));
        if (r == 0 && help) {
                fputs(srv_config_usage(), stdout);
                rc = 0;
                goto release;
        }
        if (r == 0)
                r = srv_config_check(&cfg, err, sizeof(err));
        if (r < 0) {
                dm_error("%s", err);
                rc = 2;
                goto release;
        }
        dm_log_set_level(cfg.log_level);
        dm_log_set_format(cfg.log_format);
        if (check) {
                rc = run_check(&cfg);
                goto release;
        }
        /* The worker pool is libuv's: its size is read at first use. */
        snprintf(workers, sizeof(workers), "%u", cfg.workers);
        setenv("UV_THREADPOOL_SIZE", workers, 1);
        signal(SIGPIPE, SIG_IGN);

        /* A store that is expected but empty or truncated is not served (nor
         * replaced by a new one); restarting cannot help: exit 2. */
        if (file_check("cannot start", cfg.data_dir, true) < 0) {
                rc = 2;
                goto release;
        }
        if (uv_loop_init(&loop) < 0) {
                dm_error("cannot initialise the event loop");
                goto release;
        }
        r = srv_new(&loop, &cfg, &d.srv, err, sizeof(err));
        if (r < 0) {
                dm_error("%s", err);
                goto close_loop;
        }
        d.cfg = &cfg;
        if (cfg.metrics_listen) {
                r = srv_metrics_start(d.srv, cfg.metrics_listen, &d.metrics, &metrics, err,
                                      sizeof(err));
                if (r < 0) {
                        dm_error("%s", err);
                        srv_shutdown(d.srv, NULL, NULL);
                        uv_run(&loop, UV_RUN_DEFAULT);
                        srv_free(d.srv);
                        goto close_loop;
                }
        }
        for (uint32_t i = 0; i < srv_listener_count(d.srv); i++) {
                size_t n = strlen(listen);
                snprintf(listen + n, sizeof(listen) - n, "%s'%s'", i ? ", " : "",
                         srv_listener_name(d.srv, i));
        }
        dm_info("dreamd %s: listening on %s; data directory '%s'; max_connections %u, "
                "max_frame %u bytes, idle_timeout %g s, frame_timeout %g s, workers %u, "
                "jobs %u, blas_threads %u, job_queue %u, seal_rows %llu%s, map_size_max %llu%s, "
                "batch_cache_bytes %llu; authentication %s; metrics %s%s%s",
                DREAM_VERSION, listen, cfg.data_dir, cfg.max_connections, cfg.max_frame,
                cfg.idle_timeout, cfg.frame_timeout, cfg.workers, cfg.jobs, cfg.blas_threads,
                cfg.job_queue, (unsigned long long)cfg.seal_rows,
                cfg.seal_rows ? "" : " (store default)", (unsigned long long)cfg.map_size_max,
                cfg.map_size_max ? " bytes" : " (store default)",
                (unsigned long long)cfg.batch_cache_bytes, cfg.token_file ? "on" : "off",
                metrics ? "on 'http://" : "off", metrics ? metrics : "",
                metrics ? "/metrics'" : "");
        /* Signals before anyone learns the address: a SIGTERM sent as soon
         * as "listening on" appears drains like any other. */
        uv_signal_init(&loop, &d.sigterm);
        uv_signal_init(&loop, &d.sigint);
        uv_signal_init(&loop, &d.sighup);
        d.sigterm.data = d.sigint.data = d.sighup.data = &d;
        uv_signal_start(&d.sigterm, on_stop_signal, SIGTERM);
        uv_signal_start(&d.sigint, on_stop_signal, SIGINT);
        uv_signal_start(&d.sighup, on_sighup, SIGHUP);
        /* Port file first: whoever reads stdout may look for it next. */
        if (cfg.port_file && write_port_file(cfg.port_file, d.srv, metrics) < 0)
                dm_warn("cannot write the port file '%s'", cfg.port_file);
        for (uint32_t i = 0; i < srv_listener_count(d.srv); i++)
                printf("listening on %s\n", srv_listener_name(d.srv, i));
        fflush(stdout);

        /* Store open, listeners bound: ready (no-op without NOTIFY_SOCKET). */
        uint64_t wd_usec = 0;
        if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec >= 2000) {
                uv_timer_init(&loop, &d.watchdog);
                d.watchdog.data = &d;
                d.probe.data = &d;
                d.watchdog_ms = wd_usec / 1000;
                d.write_progress_ms = uv_now(&loop);
                uv_timer_start(&d.watchdog, on_watchdog, 0, wd_usec / 2000);
                d.watchdog_on = true;
        }
        sd_notifyf(0, "READY=1\nSTATUS=serving on %s", listen);

        uv_run(&loop, UV_RUN_DEFAULT);
        srv_free(d.srv);
        rc = 0;
close_loop:
        if (uv_loop_close(&loop) != 0)
                dm_warn("event loop closed with handles still open");
release:
        srv_config_release(&cfg);
        dm_free(args);
        return rc;
}
