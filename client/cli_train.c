/* dream train, jobs, job, cancel: training jobs on dreamd; dream predict and
 * model: using a finished job's model; dream stats: dreamd's metrics. */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/read/read.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "dream/client.h"
#include "storage/gd/gd.h"

/* Waiting for a job (--wait) has no deadline of its own: an epoch may take
 * long. The connection's own failure still ends the wait. */
#define WAIT_IO_TIMEOUT_MS  0x7fffffffu
#define PREDICT_BLOCK_ROWS  65536u     /* most rows per Predict request */
#define PREDICT_BLOCK_BYTES (8u << 20) /* aim for about this many bytes per request */

static int job_id_arg(const char *cmd, const char *s, uint64_t *ret)
{
        if (cli_parse_job_id(s, ret) < 0) {
                cli_usage_error(cmd, "invalid job id '%s' (a number from 'dream jobs')", s);
                return CLI_USAGE;
        }
        return CLI_OK;
}

/* Exit code and message when a job ended other than done. */
static int job_outcome(const struct dream_job_info *j)
{
        int rc = cli_job_exit(j);

        if (j->state == DREAM_JOB_FAILED)
                fprintf(stderr, "dream: job %llu failed: %s\n", (unsigned long long)j->id,
                        cli_job_error(j));
        else if (j->state == DREAM_JOB_CANCELLED)
                fprintf(stderr, "dream: job %llu was cancelled\n", (unsigned long long)j->id);
        return rc;
}

/* ---- train ------------------------------------------------------------------- */

struct watch {
        int on; /* drawing the progress line */
        int drawn;
        double last;
};

static int watch_cb(void *arg, const struct dream_job_info *j)
{
        struct watch *w = arg;
        double now = cli_now();
        char bar[21], eta[32];
        int fill;

        if (!w->on || (now - w->last < 0.1 && j->state == DREAM_JOB_RUNNING))
                return 0;
        w->last = now;
        if (j->state == DREAM_JOB_QUEUED) {
                fprintf(stderr, "\r\033[Kjob %llu queued", (unsigned long long)j->id);
        } else if (j->state == DREAM_JOB_RUNNING && j->epochs == 0) {
                /* Preparing the data: the fit has not started. */
                fprintf(stderr, "\r\033[Kjob %llu %s preparing the data", (unsigned long long)j->id,
                        dream_model_name(j->model));
        } else if (j->state == DREAM_JOB_RUNNING) {
                fill = j->epochs ? (int)((uint64_t)j->epoch * 20 / j->epochs) : 0;
                if (fill > 20)
                        fill = 20;
                memset(bar, '#', (size_t)fill);
                memset(bar + fill, ' ', (size_t)(20 - fill));
                bar[20] = '\0';
                if (j->eta_seconds >= 0)
                        snprintf(eta, sizeof(eta), "%.0fs", j->eta_seconds);
                else
                        snprintf(eta, sizeof(eta), "?");
                fprintf(stderr, "\r\033[Kjob %llu %s [%s] epoch %u/%u  loss %.5g  ETA %s",
                        (unsigned long long)j->id, dream_model_name(j->model), bar, j->epoch,
                        j->epochs, j->loss, eta);
        } else {
                return 0;
        }
        fflush(stderr);
        w->drawn = 1;
        return 0;
}

/* Ctrl-C while waiting: the job goes on on the server; say so, and how to
 * stop it. The message is made before the handler may run. */
static char interrupt_msg[256];
static size_t interrupt_len;

static void on_interrupt(int sig)
{
        ssize_t k = write(STDERR_FILENO, interrupt_msg, interrupt_len);

        (void)k;
        _exit(128 + sig);
}

/* From here on, SIGINT and SIGTERM say that job id continues. */
static void interrupt_says_job(uint64_t id, int drawn_line)
{
        struct sigaction sa;
        int k;

        k = snprintf(interrupt_msg, sizeof(interrupt_msg),
                     "%sdream: interrupted; job %llu continues on the server ('dream job %llu' "
                     "shows it, 'dream cancel %llu' stops it)\n",
                     drawn_line ? "\r\033[K" : "", (unsigned long long)id, (unsigned long long)id,
                     (unsigned long long)id);
        interrupt_len = k > 0 && (size_t)k < sizeof(interrupt_msg) ? (size_t)k : 0;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_interrupt;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

int cli_train(int argc, char **argv)
{
        sigset_t stop, old;
        struct cli_train_args a;
        struct dream_client *cl = NULL;
        struct dream_job_info j = DREAM_INIT(struct dream_job_info);
        struct watch w = {0};
        uint64_t id;
        int r, rc;

        rc = cli_train_parse(argc, argv, &a);
        if (rc >= 0)
                return rc;
        if (a.wait)
                a.net.io_timeout_ms = WAIT_IO_TIMEOUT_MS;
        rc = cli_net_connect(&a.net, &cl);
        if (rc != CLI_OK)
                return rc;
        /* Held until the job's id is known (then handled by on_interrupt). */
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        if (a.wait)
                sigprocmask(SIG_BLOCK, &stop, &old);
        r = dream_train(cl, a.dataset, &a.opts, &id);
        if (a.wait) {
                if (r == 0)
                        interrupt_says_job(id, !a.net.json && isatty(STDERR_FILENO));
                sigprocmask(SIG_SETMASK, &old, NULL);
        }
        if (r < 0) {
                rc = cli_net_fail(cl, r, "cannot train %s on dataset '%s'",
                                  dream_model_name(a.opts.model), a.dataset);
                goto out;
        }
        if (!a.wait) {
                if (a.net.json)
                        printf("{\"job\":%llu}\n", (unsigned long long)id);
                else
                        printf("%llu\n", (unsigned long long)id);
                rc = CLI_OK;
                goto out;
        }
        w.on = !a.net.json && isatty(STDERR_FILENO);
        w.last = -1;
        r = dream_job_watch(cl, id, watch_cb, &w, &j);
        if (w.drawn)
                fputs("\r\033[K", stderr);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "lost job %llu (it may still run: 'dream job %llu')",
                                  (unsigned long long)id, (unsigned long long)id);
                goto out;
        }
        if (a.net.json) {
                cli_job_json(stdout, &j);
                fputc('\n', stdout);
        } else {
                cli_job_text(stdout, &j);
        }
        rc = job_outcome(&j);
out:
        dream_close(cl);
        return rc;
}

/* ---- jobs, job, cancel ----------------------------------------------------------- */

static const char jobs_help[] =
    "usage: dream jobs [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "List dreamd's training jobs, newest first: id, state, dataset, model, mode,\n"
    "epoch/epochs, loss, elapsed time.\n"
    "\n" CLI_NET_HELP "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

int cli_jobs(int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_job_list *l = NULL;
        int r, rc;

        rc = cli_net_simple_args("jobs", jobs_help, "", argc, argv, &net, 0);
        if (rc >= 0)
                return rc;
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_jobs(cl, &l);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "cannot list the jobs");
                goto out;
        }
        if (net.json) {
                fputc('[', stdout);
                for (size_t i = 0; i < l->n; i++) {
                        if (i)
                                fputc(',', stdout);
                        cli_job_json(stdout, l->items[i]);
                }
                fputs("]\n", stdout);
        } else {
                printf("%6s %-9s %-24s %-8s %-9s %11s %11s %9s\n", "ID", "STATE", "DATASET",
                       "MODEL", "MODE", "EPOCH", "LOSS", "ELAPSED");
                for (size_t i = 0; i < l->n; i++) {
                        const struct dream_job_info *j = l->items[i];
                        char ep[32];

                        snprintf(ep, sizeof(ep), "%u/%u", j->epoch, j->epochs);
                        printf("%6llu %-9s %-24s %-8s %-9s %11s %11.5g %8.1fs\n",
                               (unsigned long long)j->id, dream_job_state_name(j->state),
                               j->dataset, dream_model_name(j->model),
                               dream_train_mode_name(j->mode), ep, j->loss, j->elapsed_seconds);
                }
        }
        rc = CLI_OK;
out:
        dream_job_list_free(l);
        dream_close(cl);
        return rc;
}

static const char job_help[] =
    "usage: dream job ID [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Show a training job of dreamd: state, dataset, model, mode, budget, epoch,\n"
    "loss, elapsed time and ETA; once done its result (rows used, preparation\n"
    "and training seconds, peak training bytes, epochs) and metrics (rmse, mae,\n"
    "r2 / accuracy, macro_f1, logloss / inertia, mean_sq_distance); when failed,\n"
    "why.\n"
    "\n" CLI_NET_HELP "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

/* dream job ID / dream cancel ID: one request about one job, its JobInfo
 * printed back. */
static int job_command(const char *cmd, const char *help, bool cancel, int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_job_info j = DREAM_INIT(struct dream_job_info);
        uint64_t id;
        int r, rc;

        rc = cli_net_simple_args(cmd, help, "ID", argc, argv, &net, 1);
        if (rc >= 0)
                return rc;
        if (job_id_arg(cmd, argv[optind], &id) != CLI_OK)
                return CLI_USAGE;
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = cancel ? dream_job_cancel(cl, id, &j) : dream_job_status(cl, id, &j);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "%sjob %llu", cancel ? "cannot cancel " : "",
                                  (unsigned long long)id);
                goto out;
        }
        if (net.json) {
                cli_job_json(stdout, &j);
                fputc('\n', stdout);
        } else if (!cancel) {
                cli_job_text(stdout, &j);
        } else if (j.state == DREAM_JOB_DONE || j.state == DREAM_JOB_FAILED) {
                printf("job %llu had already ended (%s)\n", (unsigned long long)id,
                       dream_job_state_name(j.state));
        } else if (j.state == DREAM_JOB_CANCELLED) {
                printf("job %llu cancelled\n", (unsigned long long)id);
        } else {
                printf("job %llu cancelling (%s, epoch %u/%u)\n", (unsigned long long)id,
                       dream_job_state_name(j.state), j.epoch, j.epochs);
        }
        rc = CLI_OK;
out:
        dream_close(cl);
        return rc;
}

int cli_job(int argc, char **argv)
{
        return job_command("job", job_help, false, argc, argv);
}

static const char cancel_help[] =
    "usage: dream cancel ID [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Ask dreamd to stop a training job: a queued job never runs, a running one\n"
    "stops within one epoch ('dream job ID' shows when it is cancelled). A job\n"
    "that already ended is left as it is.\n"
    "\n" CLI_NET_HELP "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

int cli_cancel(int argc, char **argv)
{
        return job_command("cancel", cancel_help, true, argc, argv);
}

/* ---- predict ------------------------------------------------------------------------ */

static const char predict_help[] =
    "usage: dream predict JOB INPUT.csv [-o OUT.csv] [-s ADDR] [--token-file F]\n"
    "                     [--json]\n"
    "\n"
    "Predict with the model of a finished training job. INPUT is a CSV (or IDX)\n"
    "file with the columns of the job's training dataset, by name, in any order;\n"
    "the target column may be there or not (it is not used). The output has one\n"
    "line per input row: 'prediction' (the value, the class or the cluster) and,\n"
    "for classification, one probability column per class, named p_CLASS.\n"
    "\n"
    "  -o, --output OUT     output file (default: standard output); written\n"
    "                       whole or not at all\n"
    "  -f, --force          overwrite an existing output file\n" CLI_NET_HELP
    "                       (predict: a summary, on standard error when the\n"
    "                       predictions go to standard output)\n"
    "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

static int output_args(const char *cmd, const char *help, int argc, char **argv,
                       struct cli_net *net, int n_args, const char **ret_output)
{
        static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"force", no_argument, NULL, 'f'},
            {"help", no_argument, NULL, 'h'},
            CLI_NET_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        int force = 0, c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":o:fh" CLI_NET_SHORTOPTS, longopts, NULL)) != -1) {
                if (cli_net_opt(net, c, optarg))
                        continue;
                switch (c) {
                case 'o':
                        *ret_output = optarg;
                        break;
                case 'f':
                        force = 1;
                        break;
                case 'h':
                        fputs(help, stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error(cmd, c, argv, longopts);
                }
        }
        if (argc - optind != n_args) {
                cli_usage_error(cmd, argc - optind > n_args ? "too many arguments"
                                     : n_args == 1          ? "missing JOB"
                                                            : "missing JOB or INPUT");
                return CLI_USAGE;
        }
        if (cli_out_check(cmd, *ret_output, force) != CLI_OK)
                return CLI_INPUT;
        return -1;
}

/* The input's columns in the order the server expects: the dataset's, the
 * target left out when the input does not have it. *ret_n columns into
 * idx (d->columns entries). 0, or -1 after a message. */
static int map_columns(const struct dream_dataset_info *d, const struct gd_table *t,
                       const char *input, uint32_t *idx, uint32_t *ret_n)
{
        int has_target = d->target[0] && gd_table_find(t, d->target) >= 0;
        uint32_t n = 0;

        for (uint32_t j = 0; j < d->columns; j++) {
                int32_t k;

                if (d->target[0] && strcmp(d->schema[j].name, d->target) == 0 && !has_target)
                        continue;
                k = gd_table_find(t, d->schema[j].name);
                if (k < 0) {
                        cli_error(input, 0, 0, "no column '%s' (a column of dataset '%s')",
                                  d->schema[j].name, d->name);
                        return -1;
                }
                idx[n++] = (uint32_t)k;
        }
        if (t->n_cols != n) {
                for (uint32_t k = 0; k < t->n_cols; k++) {
                        uint32_t j = 0;
                        while (j < d->columns && strcmp(d->schema[j].name, t->cols[k].name) != 0)
                                j++;
                        if (j == d->columns) {
                                cli_error(input, 0, 0,
                                          "column '%s' is not a column of dataset '%s'",
                                          t->cols[k].name, d->name);
                                return -1;
                        }
                }
                cli_error(input, 0, 0, "%u columns, dataset '%s' has %u", t->n_cols, d->name, n);
                return -1;
        }
        *ret_n = n;
        return 0;
}

struct predict_out {
        struct cli_out *out;
        char **names; /* class names, or NULL for the indices */
        uint32_t classes;
        int header_done;
};

static void put_str(struct cli_out *o, const char *s, size_t n)
{
        cli_out_write(o, s, n);
}

static void predict_header(struct predict_out *po)
{
        put_str(po->out, "prediction", 10);
        for (uint32_t k = 0; k < po->classes; k++) {
                char nm[64];
                if (po->names)
                        snprintf(nm, sizeof(nm), "p_%s", po->names[k]);
                else
                        snprintf(nm, sizeof(nm), "p_%u", k);
                put_str(po->out, ",", 1);
                cli_out_csv_name(po->out, nm);
        }
        put_str(po->out, "\n", 1);
        po->header_done = 1;
}

static void predict_rows(struct predict_out *po, const struct dream_prediction *p)
{
        for (uint32_t i = 0; i < p->n; i++) {
                uint8_t *b = cli_out_room(po->out, GD_FMT_MAX + 1);
                size_t k = gd_format_value(GD_F64, 0, gd_f64_to_key(p->values[i]), (char *)b);

                po->out->len += k;
                for (uint32_t c = 0; c < p->classes; c++) {
                        b = cli_out_room(po->out, 32);
                        po->out->len += (size_t)snprintf(
                            (char *)b, 32, ",%.9g", (double)p->scores[(size_t)i * p->classes + c]);
                }
                put_str(po->out, "\n", 1);
        }
}

int cli_predict(int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_dataset_info *d = NULL;
        struct dream_job_info j = DREAM_INIT(struct dream_job_info);
        struct gd_table *t = NULL;
        struct dream_values *vals = NULL;
        struct dream_prediction *p = NULL;
        struct predict_out po = {0};
        struct read_opts ro;
        struct cli_progress prog;
        struct cli_out out;
        const char *output = NULL, *input;
        uint32_t *idx = NULL, n_send = 0;
        uint64_t id, src_bytes, per_block, row_bytes, done = 0;
        int out_open = 0, r, rc;
        double t0 = cli_now();

        rc = output_args("predict", predict_help, argc, argv, &net, 2, &output);
        if (rc >= 0)
                return rc;
        if (job_id_arg("predict", argv[optind], &id) != CLI_OK)
                return CLI_USAGE;
        input = argv[optind + 1];
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_job_status(cl, id, &j);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "job %llu", (unsigned long long)id);
                goto out;
        }
        if (j.state != DREAM_JOB_DONE) {
                fprintf(stderr, "dream: job %llu is %s: only a finished job has a model\n",
                        (unsigned long long)id, dream_job_state_name(j.state));
                rc = CLI_SERVER;
                goto out;
        }
        r = dream_dataset_describe(cl, j.dataset, &d);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "dataset '%s' of job %llu", j.dataset,
                                  (unsigned long long)id);
                goto out;
        }
        read_opts_default(&ro);
        rc = cli_read_table("predict", input, NULL, NULL, &ro, &prog, &t, &src_bytes);
        if (rc != CLI_OK)
                goto out;
        cli_progress_end(&prog);
        rc = CLI_INTERNAL;
        idx = dm_calloc(d->columns ? d->columns : 1, sizeof(*idx));
        vals = dm_calloc(d->columns ? d->columns : 1, sizeof(*vals));
        if (!idx || !vals) {
                cli_error(NULL, 0, 0, "out of memory");
                goto out;
        }
        if (map_columns(d, t, input, idx, &n_send) < 0) {
                rc = CLI_SCHEMA;
                goto out;
        }
        cli_table_f64_to_wire(t);
        /* Blocks small enough for the request and for the reply (8 bytes of
         * value and 4 per class probability per row). */
        row_bytes = (uint64_t)n_send * 8 + 16;
        if (d->task == DREAM_TASK_CLASSIFICATION) {
                uint64_t reply = 8 + 4 * (uint64_t)(d->class_count ? d->class_count : 256);
                if (reply > row_bytes)
                        row_bytes = reply;
        }
        per_block = cli_rows_per_request(cl, PREDICT_BLOCK_BYTES, row_bytes, PREDICT_BLOCK_ROWS);

        r = cli_out_open(&out, output);
        if (r < 0) {
                cli_error(output, 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        out_open = 1;
        po.out = &out;
        cli_progress_init(&prog, "predict", (uint64_t)t->n_rows * n_send * 8);
        while (done < t->n_rows) {
                uint64_t count = t->n_rows - done < per_block ? t->n_rows - done : per_block;
                struct dream_rows rows = {(uint32_t)count, n_send, vals};

                for (uint32_t s = 0; s < n_send; s++) {
                        const struct gd_col *col = &t->cols[idx[s]];
                        vals[s].kind = cli_wire_kind(col->kind);
                        vals[s].scale = col->kind == GD_DEC ? col->scale : 0;
                        vals[s].v = col->v + done;
                }
                r = dream_predict(cl, id, &rows, &p);
                if (r < 0) {
                        rc = cli_net_fail(
                            cl, r, "%s: cannot predict rows %llu to %llu with job %llu", input,
                            (unsigned long long)done, (unsigned long long)(done + count),
                            (unsigned long long)id);
                        goto out;
                }
                if (!po.header_done) {
                        po.classes = p->classes;
                        if (po.classes) {
                                char *json = NULL;
                                /* Class names from the model; indices when
                                 * it has none (classes 0..K-1). */
                                if (dream_get_model(cl, id, &json, NULL) == 0 &&
                                    cli_model_class_names(json, po.classes, &po.names) < 0)
                                        po.names = NULL;
                                dream_free(json);
                        }
                        predict_header(&po);
                }
                if (p->classes != po.classes) {
                        fprintf(stderr, "dream: job %llu: %u classes, then %u\n",
                                (unsigned long long)id, po.classes, p->classes);
                        rc = CLI_SERVER;
                        goto out;
                }
                predict_rows(&po, p);
                dream_prediction_free(p);
                p = NULL;
                done += count;
                cli_progress_cb(&prog, done, t->n_rows);
        }
        cli_progress_end(&prog);
        if (!po.header_done)
                predict_header(&po);
        r = cli_out_commit(&out, 0);
        out_open = 0;
        if (r < 0) {
                cli_error(output ? output : "-", 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        if (net.json) {
                FILE *f = output && strcmp(output, "-") != 0 ? stdout : stderr;
                fprintf(f, "{\"job\":%llu,\"dataset\":", (unsigned long long)id);
                cli_json_str(f, j.dataset);
                fprintf(f, ",\"rows\":%llu,\"classes\":%u,\"seconds\":%.3f}\n",
                        (unsigned long long)done, po.classes, cli_now() - t0);
        }
        rc = CLI_OK;
out:
        if (out_open)
                cli_out_abort(&out);
        dream_prediction_free(p);
        cli_names_free(po.names, po.classes);
        dm_free(idx);
        dm_free(vals);
        gd_table_free(t);
        dream_dataset_info_free(d);
        dream_close(cl);
        return rc;
}

/* ---- model ---------------------------------------------------------------------------- */

static const char model_help[] =
    "usage: dream model JOB [-o MODEL.json] [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Write the model of a finished training job as JSON: kind, task, classes,\n"
    "hyper-parameters, the standardisation (means and sds), the layers' weights\n"
    "and biases, enough to predict without dreamd (train/MODEL_JSON.md).\n"
    "\n"
    "  -o, --output OUT     output file (default: standard output); written\n"
    "                       whole or not at all\n"
    "  -f, --force          overwrite an existing output file\n" CLI_NET_HELP
    "                       (model: a summary, on standard error when the\n"
    "                       model goes to standard output)\n"
    "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

int cli_model(int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct cli_out out;
        const char *output = NULL;
        char *json = NULL;
        size_t len = 0;
        uint64_t id;
        int out_open = 0, r, rc;

        rc = output_args("model", model_help, argc, argv, &net, 1, &output);
        if (rc >= 0)
                return rc;
        if (job_id_arg("model", argv[optind], &id) != CLI_OK)
                return CLI_USAGE;
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_get_model(cl, id, &json, &len);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "model of job %llu", (unsigned long long)id);
                goto out;
        }
        r = cli_out_open(&out, output);
        if (r < 0) {
                cli_error(output, 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        out_open = 1;
        cli_out_write(&out, json, len);
        if (len == 0 || json[len - 1] != '\n')
                cli_out_write(&out, "\n", 1);
        r = cli_out_commit(&out, 0);
        out_open = 0;
        if (r < 0) {
                cli_error(output ? output : "-", 0, 0, "cannot write: %s", dream_strerror(r));
                rc = r == DREAM_E_NOMEM ? CLI_INTERNAL : CLI_INPUT;
                goto out;
        }
        if (net.json) {
                FILE *f = output && strcmp(output, "-") != 0 ? stdout : stderr;
                fprintf(f, "{\"job\":%llu,\"bytes\":%zu}\n", (unsigned long long)id, len);
        }
        rc = CLI_OK;
out:
        if (out_open)
                cli_out_abort(&out);
        dream_free(json);
        dream_close(cl);
        return rc;
}

/* ---- stats ------------------------------------------------------------------------------ */

static const char stats_help[] =
    "usage: dream stats [-s ADDR] [--token-file F] [--json]\n"
    "\n"
    "Show dreamd's metrics (admin role): uptime, connections, requests and\n"
    "errors (in all and by request type), bytes in and out, rows ingested and\n"
    "ingest commits, batches served, seals (count, seconds, errors), training\n"
    "jobs (running, queued, done, failed, cancelled, training seconds),\n"
    "datasets (with the bytes and rows of each), LMDB map size, limit and use,\n"
    "ingest acknowledgement latency.\n"
    "\n" CLI_NET_HELP "  -h, --help           this help\n"
    "\n" CLI_NET_EXIT_HELP;

int cli_stats(int argc, char **argv)
{
        struct cli_net net = {0};
        struct dream_client *cl = NULL;
        struct dream_stats s = DREAM_INIT(struct dream_stats);
        int r, rc;

        rc = cli_net_simple_args("stats", stats_help, "", argc, argv, &net, 0);
        if (rc >= 0)
                return rc;
        rc = cli_net_connect(&net, &cl);
        if (rc != CLI_OK)
                return rc;
        r = dream_stats(cl, &s);
        if (r < 0) {
                rc = cli_net_fail(cl, r, "cannot get the metrics of dreamd");
                goto out;
        }
        if (net.json)
                cli_stats_json(stdout, &s);
        else
                cli_stats_text(stdout, &s);
        dream_stats_release(&s);
        rc = CLI_OK;
out:
        dream_close(cl);
        return rc;
}
