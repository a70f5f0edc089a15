/* The training-job commands' parts that need no server: parsing the
 * options of `dream train`, and the text and JSON forms of jobs and server
 * metrics. A library of its own so that tests/unit/client tests it alone. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cli.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "storage/gd/gd.h"

/* The defaults printed come from <dream/client.h>, the one table of them on
 * the client side (checked against train_params_default by
 * tests/unit/client/test_cli_jobs.c). */
void cli_train_help(FILE *f)
{
        fprintf(f,
                "usage: dream train DATASET --model MODEL [--mode MODE] [--budget B]\n"
                "                   [--epochs E] [--lr X] [--batch N] [--hidden H] [--k K]\n"
                "                   [--l2 X] [--seed S] [--holdout H] [--test DATASET]\n"
                "                   [--order msb|entropy] [--solver lbfgs|adam]\n"
                "                   [--patience N|off] [--wait] [-s ADDR] [--token-file F]\n"
                "                   [--json]\n"
                "\n"
                "Submit a job training a model on a dataset of dreamd and print its id. With\n"
                "--wait, follow it (a progress line on a terminal: epoch, loss, ETA) and print\n"
                "its result; with --wait --json, one JSON object: job, state, model, mode,\n"
                "budget, rows_used, prep_seconds, prep_cached, train_seconds, wall_seconds,\n"
                "peak_train_bytes, epochs, iterations, converged, solver, fit_loss, l2,\n"
                "var_scale, "
                "metrics (rmse, mae, r2 / accuracy, macro_f1, logloss / inertia,\n"
                "mean_sq_distance), evaluated_on, evaluated_rows, holdout_share,\n"
                "holdout_rows, test_dataset, error (null when not known).\n"
                "\n"
                "The metrics are on rows the model never trained on: the --test dataset, else\n"
                "the holdout (a share of the dataset's rows drawn by the seed and left out of\n"
                "training in every mode, so that every mode is scored on the same rows); with\n"
                "--holdout 0, on every row of the dataset. fit_loss is the loss on the fit's\n"
                "own samples (in condensed mode, the samples): never the result.\n"
                "\n"
                "  -m, --model MODEL    linear or ridge (least squares, closed form), logistic\n"
                "                       (binary), softmax (multiclass), mlp (ReLU hidden\n"
                "                       layers, Adam) or kmeans (required)\n"
                "      --mode MODE      condensed: the condensed samples of the\n"
                "                       budget, weighted by group size; full (or rows):\n"
                "                       every row; sample: a uniform random subset as large\n"
                "                       as the condensed set; refresh: a fresh random budget\n"
                "                       share of every class each epoch; exact: linear and\n"
                "                       ridge from the store's sufficient statistics\n"
                "                       (full-data solution). Default: exact for linear and\n"
                "                       ridge (condensed when --budget is given), condensed\n"
                "                       for the other models\n"
                "  -b, --budget B       condensed, sample, refresh: a fraction of the rows\n"
                "                       (0.01, 10%%) or a row count (5000); default %g\n"
                "  -e, --epochs E       passes over the data: logistic and softmax by Adam,\n"
                "                       default %u; mlp: the most, default %u (early\n"
                "                       stopping on the holdout ends it sooner)\n"
                "      --lr X           Adam learning rate; default %g\n"
                "      --batch N        mini-batch rows; default %u, or fewer on a small\n"
                "                       training set (rows / 32, at least 1): every epoch\n"
                "                       takes at least 32 steps\n"
                "      --hidden H       mlp hidden layer widths: 128 or 256,128; default %u\n"
                "      --k K            kmeans clusters; default %u (at most %u Lloyd\n"
                "                       iterations)\n"
                "      --l2 X           L2 penalty, > 0: ridge default %g, logistic and\n"
                "                       softmax default %g, mlp default %g; linear has none\n"
                "      --seed S         random seed (initialisation, shuffling, sampling);\n"
                "                       default %u\n"
                "      --holdout H      share of the rows set aside and scored on (0.1 or\n"
                "                       10%%, below 1; at most %u rows); default %g; 0:\n"
                "                       none, the metrics are then on every training row\n"
                "      --test DATASET   evaluate on this dataset (same columns); the holdout\n"
                "                       is still left out of training\n"
                "      --order ORDER    condensed: bit order of the grouping, msb (default)\n"
                "                       or entropy\n"
                "      --solver S       logistic, softmax: lbfgs (default: full-batch\n"
                "                       L-BFGS to a tolerance; --epochs, --lr, --batch\n"
                "                       unused) or adam (mini-batches for --epochs);\n"
                "                       refresh mode always fits by adam\n"
                "      --patience N     mlp: stop after N epochs without a better score on\n"
                "                       the holdout and keep the best epoch; default %u;\n"
                "                       off: run every epoch (no holdout: off too)\n"
                "  -w, --wait           follow the job to its end and print the result\n"
                "%s"
                "  -h, --help           this help\n"
                "\n"
                "%s",
                DREAM_TRAIN_DEFAULT_BUDGET, DREAM_TRAIN_DEFAULT_EPOCHS,
                DREAM_TRAIN_DEFAULT_EPOCHS_MLP, DREAM_TRAIN_DEFAULT_LR, DREAM_TRAIN_DEFAULT_BATCH,
                DREAM_TRAIN_DEFAULT_HIDDEN, DREAM_TRAIN_DEFAULT_K, DREAM_TRAIN_DEFAULT_MAX_ITER,
                DREAM_TRAIN_DEFAULT_L2_RIDGE, DREAM_TRAIN_DEFAULT_L2_LOGIT, DREAM_TRAIN_DEFAULT_L2,
                DREAM_TRAIN_DEFAULT_SEED, DREAM_TRAIN_MAX_HOLDOUT_ROWS, DREAM_TRAIN_DEFAULT_HOLDOUT,
                DREAM_TRAIN_DEFAULT_PATIENCE, CLI_NET_HELP, CLI_JOB_EXIT_HELP);
}

/* A decimal integer in [lo, hi]: 0 or -1. */
static int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *ret)
{
        unsigned long long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -1;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || v < lo || v > hi)
                return -1;
        *ret = v;
        return 0;
}

/* A finite double, or with `percent` also a percentage ("10%"): 0 or -1. */
static int parse_finite(const char *s, int percent, double *ret)
{
        double v;
        char *end;

        if (!*s)
                return -1;
        errno = 0;
        v = strtod(s, &end);
        if (percent && *end == '%' && end[1] == '\0' && end != s) {
                v /= 100;
                end++;
        }
        if (errno || *end || !isfinite(v))
                return -1;
        *ret = v;
        return 0;
}

/* A finite double > 0 (or >= 0 when allow_zero): 0 or -1. */
static int parse_pos_double(const char *s, int allow_zero, double *ret)
{
        double v;

        if (parse_finite(s, 0, &v) < 0 || v < 0 || (v == 0 && !allow_zero))
                return -1;
        *ret = v;
        return 0;
}

/* A share 0 <= x < 1, as a number or a percentage ("10%"): 0 or -1. */
static int parse_share(const char *s, double *ret)
{
        double v;

        if (parse_finite(s, 1, &v) < 0 || v < 0 || v >= 1)
                return -1;
        *ret = v;
        return 0;
}

int cli_parse_job_id(const char *s, uint64_t *ret)
{
        return parse_uint(s, 1, UINT64_MAX, ret);
}

/* "128" or "256,128" into opts. */
static int parse_hidden(const char *s, struct dream_train_opts *o)
{
        char buf[64];
        char *comma;
        uint64_t a, b;

        if (strlen(s) >= sizeof(buf))
                return -1;
        snprintf(buf, sizeof(buf), "%s", s);
        comma = strchr(buf, ',');
        if (comma)
                *comma = '\0';
        if (parse_uint(buf, 1, DREAM_MAX_HIDDEN_WIDTH, &a) < 0)
                return -1;
        o->n_hidden = 1;
        o->hidden[0] = (uint32_t)a;
        o->hidden[1] = 0;
        if (comma) {
                if (parse_uint(comma + 1, 1, DREAM_MAX_HIDDEN_WIDTH, &b) < 0)
                        return -1;
                o->n_hidden = 2;
                o->hidden[1] = (uint32_t)b;
        }
        return 0;
}

static int bad_value(const char *opt, const char *arg, const char *want)
{
        cli_usage_error("train", "invalid %s '%s' (%s)", opt, arg, want);
        return CLI_USAGE;
}

int cli_train_parse(int argc, char **argv, struct cli_train_args *ret)
{
        static const char *const model_names[] = {"linear",  "ridge", "logistic",
                                                  "softmax", "mlp",   "kmeans"};
        static const char *const mode_names[] = {"condensed", "full", "sample", "refresh", "exact"};
        static const struct option longopts[] = {
            {"model", required_argument, NULL, 'm'},
            {"mode", required_argument, NULL, 'M'},
            {"budget", required_argument, NULL, 'b'},
            {"epochs", required_argument, NULL, 'e'},
            {"lr", required_argument, NULL, 'L'},
            {"batch", required_argument, NULL, 'B'},
            {"hidden", required_argument, NULL, 'H'},
            {"k", required_argument, NULL, 'k'},
            {"l2", required_argument, NULL, 'R'},
            {"seed", required_argument, NULL, 'S'},
            {"test", required_argument, NULL, 't'},
            {"order", required_argument, NULL, 'O'},
            {"holdout", required_argument, NULL, 'D'},
            {"solver", required_argument, NULL, 'V'},
            {"patience", required_argument, NULL, 'P'},
            {"wait", no_argument, NULL, 'w'},
            {"help", no_argument, NULL, 'h'},
            CLI_NET_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        struct cli_train_args a;
        struct dream_train_opts *o = &a.opts;
        int have_model = 0, have_budget = 0, have_l2 = 0, have_hidden = 0, have_k = 0, c;
        struct gd_budget budget;
        enum gd_order order;
        uint64_t v;

        memset(&a, 0, sizeof(a));
        dream_train_opts_default(o);
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":m:b:e:wh" CLI_NET_SHORTOPTS, longopts, NULL)) != -1) {
                if (cli_net_opt(&a.net, c, optarg))
                        continue;
                switch (c) {
                case 'm':
                        if (dream_model_parse(optarg, &o->model) < 0)
                                return cli_unknown_name("train", "model", optarg, model_names,
                                                        sizeof(model_names) /
                                                            sizeof(model_names[0]));
                        have_model = 1;
                        break;
                case 'M':
                        /* "rows" is batch's name for full: both spellings work in both. */
                        if (dream_train_mode_parse(strcmp(optarg, "rows") == 0 ? "full" : optarg,
                                                   &o->mode) < 0)
                                return cli_unknown_name("train", "mode", optarg, mode_names,
                                                        sizeof(mode_names) / sizeof(mode_names[0]));
                        break;
                case 'b':
                        if (cli_opt_budget("train", optarg, &budget) != CLI_OK)
                                return CLI_USAGE;
                        o->budget_rows = budget.count;
                        o->budget_fraction = budget.count ? 0 : budget.fraction;
                        have_budget = 1;
                        break;
                case 'e':
                        if (parse_uint(optarg, 1, DREAM_MAX_EPOCHS, &v) < 0)
                                return bad_value("--epochs", optarg, "1 to 100000");
                        o->epochs = (uint32_t)v;
                        break;
                case 'L':
                        if (parse_pos_double(optarg, 0, &o->lr) < 0)
                                return bad_value("--lr", optarg, "a finite number > 0");
                        break;
                case 'B':
                        if (parse_uint(optarg, 1, DREAM_MAX_BATCH_SIZE, &v) < 0)
                                return bad_value("--batch", optarg, "1 to 1048576");
                        o->batch_size = (uint32_t)v;
                        break;
                case 'H':
                        if (parse_hidden(optarg, o) < 0)
                                return bad_value("--hidden", optarg,
                                                 "one or two widths of 1 to 65536: 128 or 256,128");
                        have_hidden = 1;
                        break;
                case 'k':
                        if (parse_uint(optarg, 1, DREAM_MAX_K, &v) < 0)
                                return bad_value("--k", optarg, "1 to 65536");
                        o->k = (uint32_t)v;
                        have_k = 1;
                        break;
                case 'R':
                        /* 0 would read as "the default" on the wire. */
                        if (parse_pos_double(optarg, 0, &o->l2) < 0)
                                return bad_value("--l2", optarg, "a finite number > 0");
                        have_l2 = 1;
                        break;
                case 'S':
                        if (parse_uint(optarg, 0, UINT64_MAX, &o->seed) < 0)
                                return bad_value("--seed", optarg, "an integer >= 0");
                        break;
                case 't':
                        o->test_dataset = optarg;
                        break;
                case 'D':
                        if (parse_share(optarg, &o->holdout) < 0)
                                return bad_value("--holdout", optarg,
                                                 "a share from 0 to below 1: 0.1 or 10%; 0 = none");
                        if (o->holdout == 0)
                                o->holdout = -1; /* none (0 on the wire is the default) */
                        break;
                case 'V':
                        if (strcmp(optarg, "lbfgs") == 0)
                                o->solver = DREAM_SOLVER_LBFGS;
                        else if (strcmp(optarg, "adam") == 0)
                                o->solver = DREAM_SOLVER_ADAM;
                        else
                                return bad_value("--solver", optarg, "lbfgs or adam");
                        break;
                case 'P':
                        if (strcmp(optarg, "off") == 0) {
                                o->early_stopping_off = 1;
                                o->patience = 0;
                        } else {
                                uint64_t n;
                                if (parse_uint(optarg, 1, DREAM_MAX_EPOCHS, &n) < 0)
                                        return bad_value("--patience", optarg,
                                                         "an integer from 1 to 100000, or off");
                                o->patience = (uint32_t)n;
                                o->early_stopping_off = 0;
                        }
                        break;
                case 'O':
                        if (cli_opt_order("train", optarg, &order) != CLI_OK)
                                return CLI_USAGE;
                        o->order =
                            order == GD_ORDER_ENTROPY ? DREAM_ORDER_ENTROPY : DREAM_ORDER_MSB;
                        break;
                case 'w':
                        a.wait = 1;
                        break;
                case 'h':
                        cli_train_help(stdout);
                        return CLI_OK;
                default:
                        return cli_opt_error("train", c, argv, longopts);
                }
        }
        if (argc - optind != 1) {
                cli_usage_error("train", optind >= argc ? "missing DATASET" : "too many arguments");
                return CLI_USAGE;
        }
        a.dataset = argv[optind];
        if (!have_model) {
                cli_usage_error("train", "missing --model (linear, ridge, logistic, softmax, mlp "
                                         "or kmeans)");
                return CLI_USAGE;
        }
        if (o->mode == DREAM_TRAIN_EXACT && o->model != DREAM_MODEL_LINEAR &&
            o->model != DREAM_MODEL_RIDGE) {
                cli_usage_error("train", "--mode exact is for linear and ridge, not %s",
                                dream_model_name(o->model));
                return CLI_USAGE;
        }
        if (have_budget && (o->mode == DREAM_TRAIN_FULL || o->mode == DREAM_TRAIN_EXACT)) {
                cli_usage_error("train", "--budget does not apply to --mode %s",
                                dream_train_mode_name(o->mode));
                return CLI_USAGE;
        }
        if (have_hidden && o->model != DREAM_MODEL_MLP) {
                cli_usage_error("train", "--hidden is for mlp, not %s", dream_model_name(o->model));
                return CLI_USAGE;
        }
        if (o->solver && o->model != DREAM_MODEL_LOGISTIC && o->model != DREAM_MODEL_SOFTMAX) {
                cli_usage_error("train", "--solver is for logistic and softmax, not %s",
                                dream_model_name(o->model));
                return CLI_USAGE;
        }
        if (o->solver == DREAM_SOLVER_LBFGS && o->mode == DREAM_TRAIN_REFRESH) {
                cli_usage_error("train", "--solver lbfgs does not apply to --mode refresh "
                                         "(it fits by adam)");
                return CLI_USAGE;
        }
        if ((o->patience || o->early_stopping_off) && o->model != DREAM_MODEL_MLP) {
                cli_usage_error("train", "--patience is for mlp, not %s",
                                dream_model_name(o->model));
                return CLI_USAGE;
        }
        if (have_k && o->model != DREAM_MODEL_KMEANS) {
                cli_usage_error("train", "--k is for kmeans, not %s", dream_model_name(o->model));
                return CLI_USAGE;
        }
        if (have_l2 && (o->model == DREAM_MODEL_LINEAR || o->model == DREAM_MODEL_KMEANS)) {
                cli_usage_error("train", "--l2 does not apply to %s%s", dream_model_name(o->model),
                                o->model == DREAM_MODEL_LINEAR ? " (use --model ridge)" : "");
                return CLI_USAGE;
        }
        *ret = a;
        return -1;
}

/* ---- output ---------------------------------------------------------------- */

void cli_json_num(FILE *f, double x)
{
        char buf[GD_FMT_MAX + 1];
        size_t n;

        if (!isfinite(x)) {
                fputs("null", f);
                return;
        }
        n = gd_format_value(GD_F64, 0, gd_f64_to_key(x), buf);
        buf[n] = '\0';
        fputs(buf, f);
}

void cli_budget_str(char *out, size_t n, double fraction, uint64_t rows)
{
        if (rows)
                snprintf(out, n, "%llu rows", (unsigned long long)rows);
        else if (fraction > 0)
                snprintf(out, n, "%g", fraction);
        else
                snprintf(out, n, "-");
}

int cli_job_exit(const struct dream_job_info *j)
{
        switch (j->state) {
        case DREAM_JOB_DONE:
                return CLI_OK;
        case DREAM_JOB_FAILED:
                return CLI_JOB_FAILED;
        case DREAM_JOB_CANCELLED:
                return CLI_JOB_CANCELLED;
        default:
                return CLI_SERVER;
        }
}

/* Why a job failed: its message, else its error code's. */
const char *cli_job_error(const struct dream_job_info *j)
{
        if (j->error[0])
                return j->error;
        return dream_strerror(j->error_code ? j->error_code : DREAM_E_INTERNAL);
}

static void json_key_num(FILE *f, const char *key, double x)
{
        fprintf(f, ",\"%s\":", key);
        cli_json_num(f, x);
}

/* ,"key":"s", or null for an empty string (not reported). */
static void json_key_str_or_null(FILE *f, const char *key, const char *s)
{
        fprintf(f, ",\"%s\":", key);
        if (s[0])
                cli_json_str(f, s);
        else
                fputs("null", f);
}

static void json_key_u64(FILE *f, const char *key, uint64_t x)
{
        fprintf(f, ",\"%s\":%llu", key, (unsigned long long)x);
}

void cli_job_json(FILE *f, const struct dream_job_info *j)
{
        const struct dream_job_result *r = &j->result;

        fprintf(f, "{\"job\":%llu,\"state\":\"%s\",\"dataset\":", (unsigned long long)j->id,
                dream_job_state_name(j->state));
        cli_json_str(f, j->dataset);
        fprintf(f, ",\"model\":\"%s\",\"mode\":\"%s\",\"budget\":", dream_model_name(j->model),
                dream_train_mode_name(j->mode));
        if (j->budget_rows)
                fprintf(f, "%llu,\"budget_kind\":\"rows\"", (unsigned long long)j->budget_rows);
        else if (j->budget_fraction > 0) {
                cli_json_num(f, j->budget_fraction);
                fputs(",\"budget_kind\":\"fraction\"", f);
        } else
                fputs("null,\"budget_kind\":null", f);
        json_key_str_or_null(f, "test_dataset", j->test_dataset);
        fprintf(f, ",\"epoch\":%u,\"epochs\":%u,\"epochs_planned\":%u", j->epoch,
                j->has_result ? r->epochs : j->epochs, j->epochs);
        json_key_num(f, "loss", j->loss);
        json_key_num(f, "elapsed_seconds", j->elapsed_seconds);
        json_key_num(f, "eta_seconds", j->eta_seconds < 0 ? NAN : j->eta_seconds);
        json_key_u64(f, "submitted_unix", j->submitted_unix);
        if (j->has_result) {
                json_key_u64(f, "rows_used", r->rows_used);
                json_key_num(f, "prep_seconds", r->prep_seconds);
                fprintf(f, ",\"prep_cached\":%s", j->prep_cached ? "true" : "false");
                json_key_num(f, "train_seconds", r->train_seconds);
                json_key_num(f, "wall_seconds", j->wall_seconds);
                json_key_u64(f, "peak_train_bytes", r->peak_train_bytes);
                json_key_u64(f, "iterations", j->iterations);
                fprintf(f, ",\"converged\":%s", j->converged ? "true" : "false");
                json_key_str_or_null(f, "solver", j->solver);
                json_key_num(f, "fit_loss", j->fit_loss);
                json_key_num(f, "l2", j->l2);
                json_key_num(f, "var_scale", j->var_scale);
                json_key_str_or_null(f, "evaluated_on", j->evaluated_on);
                json_key_u64(f, "evaluated_rows", r->evaluated_rows);
                json_key_num(f, "holdout_share", j->holdout_share);
                json_key_u64(f, "holdout_rows", j->holdout_rows);
                fputs(",\"metrics\":", f);
                switch (r->metrics) {
                case DREAM_METRICS_REGRESSION:
                        fputs("{\"rmse\":", f);
                        cli_json_num(f, r->rmse);
                        json_key_num(f, "mae", r->mae);
                        json_key_num(f, "r2", r->r2);
                        fputc('}', f);
                        break;
                case DREAM_METRICS_CLASSIFICATION:
                        fputs("{\"accuracy\":", f);
                        cli_json_num(f, r->accuracy);
                        json_key_num(f, "macro_f1", r->macro_f1);
                        json_key_num(f, "logloss", r->logloss);
                        fputc('}', f);
                        break;
                case DREAM_METRICS_CLUSTER:
                        fputs("{\"inertia\":", f);
                        cli_json_num(f, r->inertia);
                        json_key_num(f, "mean_sq_distance", r->mean_sq_distance);
                        fputc('}', f);
                        break;
                default:
                        fputs("null", f);
                }
        } else {
                /* The same keys whatever the state. */
                fputs(",\"rows_used\":null,\"prep_seconds\":null,\"prep_cached\":null,"
                      "\"train_seconds\":null,\"wall_seconds\":null,\"peak_train_bytes\":null,"
                      "\"iterations\":null,\"converged\":null,\"solver\":null,\"fit_loss\":null,"
                      "\"l2\":null,"
                      "\"var_scale\":null,\"evaluated_on\":null,\"evaluated_rows\":null,"
                      "\"holdout_share\":null,\"holdout_rows\":null,\"metrics\":null",
                      f);
        }
        if (j->state == DREAM_JOB_FAILED || j->error[0]) {
                fputs(",\"error\":", f);
                cli_json_str(f, cli_job_error(j));
                fprintf(f, ",\"error_code\":\"%s\"",
                        dream_errname(j->error_code ? j->error_code : DREAM_E_INTERNAL));
        } else {
                fputs(",\"error\":null,\"error_code\":null", f);
        }
        fputc('}', f);
}

static void seconds_str(char *out, size_t n, double s)
{
        if (!isfinite(s) || s < 0)
                snprintf(out, n, "-");
        else if (s < 60)
                snprintf(out, n, "%.2f s", s);
        else if (s < 3600)
                snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
        else
                snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

void cli_job_text(FILE *f, const struct dream_job_info *j)
{
        const struct dream_job_result *r = &j->result;
        char b[64], e[32];

        if (j->mode == DREAM_TRAIN_FULL || j->mode == DREAM_TRAIN_EXACT)
                snprintf(b, sizeof(b), "every training row");
        else
                cli_budget_str(b, sizeof(b), j->budget_fraction, j->budget_rows);
        fprintf(f, "job              %llu\n", (unsigned long long)j->id);
        fprintf(f, "state            %s\n", dream_job_state_name(j->state));
        fprintf(f, "dataset          %s\n", j->dataset);
        fprintf(f, "model            %s\n", dream_model_name(j->model));
        fprintf(f, "mode             %s\n", dream_train_mode_name(j->mode));
        fprintf(f, "budget           %s\n", b);
        if (j->test_dataset[0])
                fprintf(f, "test dataset     %s\n", j->test_dataset);
        fprintf(f, "epoch            %u/%u\n", j->epoch, j->epochs);
        fprintf(f, "loss             %.6g\n", j->loss);
        seconds_str(e, sizeof(e), j->elapsed_seconds);
        fprintf(f, "elapsed          %s\n", e);
        if (j->state == DREAM_JOB_QUEUED || j->state == DREAM_JOB_RUNNING) {
                seconds_str(e, sizeof(e), j->eta_seconds);
                fprintf(f, "eta              %s\n", e);
        }
        if (j->has_result) {
                fprintf(f, "epochs run       %u\n", r->epochs);
                fprintf(f, "iterations       %u (%s)\n", j->iterations,
                        j->converged ? "converged" : "not converged");
                if (j->solver[0])
                        fprintf(f, "solver           %s\n", j->solver);
                fprintf(f, "rows used        %llu\n", (unsigned long long)r->rows_used);
                if (j->holdout_rows)
                        fprintf(f,
                                "holdout          %llu rows (%g of the rows, never trained on)\n",
                                (unsigned long long)j->holdout_rows, j->holdout_share);
                else
                        fprintf(f, "holdout          none\n");
                fprintf(f, "prep seconds     %.3f%s\n", r->prep_seconds,
                        j->prep_cached ? " (condensed set from the cache)" : "");
                fprintf(f, "train seconds    %.3f\n", r->train_seconds);
                fprintf(f, "wall seconds     %.3f (submitted to done)\n", j->wall_seconds);
                fprintf(f, "peak train bytes %s\n", cli_size(r->peak_train_bytes, 0));
                fprintf(f, "fit loss         %.6g (on the training samples, not a result)\n",
                        j->fit_loss);
                if (j->l2 > 0)
                        fprintf(f, "l2               %g\n", j->l2);
                if (j->var_scale > 0)
                        fprintf(f, "var scale        %g\n", j->var_scale);
                fprintf(f, "evaluated on     %s\n",
                        j->evaluated_on[0]   ? j->evaluated_on
                        : j->test_dataset[0] ? "test dataset"
                                             : "training data");
                fprintf(f, "evaluated rows   %llu\n", (unsigned long long)r->evaluated_rows);
                switch (r->metrics) {
                case DREAM_METRICS_REGRESSION:
                        fprintf(f, "rmse             %.6g\n", r->rmse);
                        fprintf(f, "mae              %.6g\n", r->mae);
                        fprintf(f, "r2               %.6g\n", r->r2);
                        break;
                case DREAM_METRICS_CLASSIFICATION:
                        fprintf(f, "accuracy         %.6g\n", r->accuracy);
                        fprintf(f, "macro_f1         %.6g\n", r->macro_f1);
                        fprintf(f, "logloss          %.6g\n", r->logloss);
                        break;
                case DREAM_METRICS_CLUSTER:
                        fprintf(f, "inertia          %.6g\n", r->inertia);
                        fprintf(f, "mean_sq_distance %.6g\n", r->mean_sq_distance);
                        break;
                default:
                        break;
                }
        }
        if (j->state == DREAM_JOB_FAILED || j->error[0])
                fprintf(f, "error            %s\n", cli_job_error(j));
}

/* ---- class names from a model's JSON ------------------------------------------- */

void cli_names_free(char **names, uint32_t k)
{
        if (!names)
                return;
        for (uint32_t i = 0; i < k; i++)
                dm_free(names[i]);
        dm_free(names);
}

static const char *skip_ws(const char *p)
{
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
        return p;
}

/* A JSON number at p: its length, or 0. */
static size_t number_len(const char *p)
{
        const char *q = p;

        if (*q == '-')
                q++;
        if (*q < '0' || *q > '9')
                return 0;
        while ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' ||
               *q == '-')
                q++;
        return (size_t)(q - p);
}

int cli_model_class_names(const char *json, uint32_t k, char ***ret_names)
{
        const char *p = json ? strstr(json, "\"classes\"") : NULL;
        char **names = NULL;
        uint32_t n = 0;

        if (!p || k == 0 || k > DREAM_MAX_CLASSES)
                return -1;
        p = skip_ws(p + 9);
        if (*p != ':')
                return -1;
        p = skip_ws(p + 1);
        if (*p != '[')
                return -1;
        names = dm_calloc(k, sizeof(*names));
        if (!names)
                return -1;
        p = skip_ws(p + 1);
        while (*p != ']') {
                size_t len = number_len(p);

                if (len == 0 || n == k)
                        goto fail;
                names[n] = dm_malloc(len + 1);
                if (!names[n])
                        goto fail;
                memcpy(names[n], p, len);
                names[n][len] = '\0';
                n++;
                p = skip_ws(p + len);
                if (*p == ',')
                        p = skip_ws(p + 1);
                else if (*p != ']')
                        goto fail;
        }
        if (n != k)
                goto fail;
        *ret_names = names;
        return 0;
fail:
        cli_names_free(names, k);
        return -1;
}

/* ---- stats --------------------------------------------------------------------- */

void cli_stats_json(FILE *f, const struct dream_stats *s)
{
        fprintf(f,
                "{\"uptime_seconds\":%llu,\"connections_open\":%u,\"connections_total\":%llu,"
                "\"connections_refused\":%llu,\"requests_total\":%llu,"
                "\"request_errors_total\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                "\"rows_ingested\":%llu,\"batches_served\":%llu,\"jobs_running\":%u,"
                "\"jobs_queued\":%u,\"datasets\":%u,\"store_map_bytes\":%llu,"
                "\"store_used_bytes\":%llu",
                (unsigned long long)s->uptime_seconds, s->connections_open,
                (unsigned long long)s->connections_total,
                (unsigned long long)s->connections_refused, (unsigned long long)s->requests_total,
                (unsigned long long)s->request_errors_total, (unsigned long long)s->bytes_in,
                (unsigned long long)s->bytes_out, (unsigned long long)s->rows_ingested,
                (unsigned long long)s->batches_served, s->jobs_running, s->jobs_queued, s->datasets,
                (unsigned long long)s->store_map_bytes, (unsigned long long)s->store_used_bytes);
        json_key_num(f, "ingest_ack_p50_seconds", s->ingest_ack_p50_seconds);
        json_key_num(f, "ingest_ack_p99_seconds", s->ingest_ack_p99_seconds);
        json_key_u64(f, "ingest_commits", s->ingest_commits);
        json_key_u64(f, "seals_total", s->seals_total);
        json_key_num(f, "seal_seconds_total", s->seal_seconds_total);
        json_key_u64(f, "seal_errors_total", s->seal_errors_total);
        json_key_u64(f, "store_map_max_bytes", s->store_map_max_bytes);
        json_key_u64(f, "jobs_done", s->jobs_done);
        json_key_u64(f, "jobs_failed", s->jobs_failed);
        json_key_u64(f, "jobs_cancelled", s->jobs_cancelled);
        json_key_num(f, "train_seconds_total", s->train_seconds_total);
        fputs(",\"requests_by_type\":[", f);
        for (size_t i = 0; i < s->n_requests_by_type; i++) {
                const struct dream_request_stats *t = &s->requests_by_type[i];
                fputs(i ? ",{\"type\":" : "{\"type\":", f);
                cli_json_str(f, t->type);
                fprintf(f, ",\"requests\":%llu,\"errors\":%llu}", (unsigned long long)t->requests,
                        (unsigned long long)t->errors);
        }
        fputs("],\"dataset_stats\":[", f);
        for (size_t i = 0; i < s->n_dataset_stats; i++) {
                const struct dream_dataset_stats *d = &s->dataset_stats[i];
                fputs(i ? ",{\"name\":" : "{\"name\":", f);
                cli_json_str(f, d->name);
                fprintf(f, ",\"stored_bytes\":%llu,\"rows\":%llu}",
                        (unsigned long long)d->stored_bytes, (unsigned long long)d->rows);
        }
        fputs("]}\n", f);
}

void cli_stats_text(FILE *f, const struct dream_stats *s)
{
        fprintf(f, "uptime_seconds          %llu\n", (unsigned long long)s->uptime_seconds);
        fprintf(f, "connections_open        %u\n", s->connections_open);
        fprintf(f, "connections_total       %llu\n", (unsigned long long)s->connections_total);
        fprintf(f, "connections_refused     %llu\n", (unsigned long long)s->connections_refused);
        fprintf(f, "requests_total          %llu\n", (unsigned long long)s->requests_total);
        fprintf(f, "request_errors_total    %llu\n", (unsigned long long)s->request_errors_total);
        fprintf(f, "bytes_in                %s\n", cli_size(s->bytes_in, 0));
        fprintf(f, "bytes_out               %s\n", cli_size(s->bytes_out, 0));
        fprintf(f, "rows_ingested           %llu\n", (unsigned long long)s->rows_ingested);
        fprintf(f, "batches_served          %llu\n", (unsigned long long)s->batches_served);
        fprintf(f, "jobs_running            %u\n", s->jobs_running);
        fprintf(f, "jobs_queued             %u\n", s->jobs_queued);
        fprintf(f, "datasets                %u\n", s->datasets);
        fprintf(f, "store_map_bytes         %s\n", cli_size(s->store_map_bytes, 0));
        fprintf(f, "store_used_bytes        %s\n", cli_size(s->store_used_bytes, 0));
        fprintf(f, "ingest_ack_p50_seconds  %.6f\n", s->ingest_ack_p50_seconds);
        fprintf(f, "ingest_ack_p99_seconds  %.6f\n", s->ingest_ack_p99_seconds);
        fprintf(f, "ingest_commits          %llu\n", (unsigned long long)s->ingest_commits);
        fprintf(f, "seals_total             %llu\n", (unsigned long long)s->seals_total);
        fprintf(f, "seal_seconds_total      %.3f\n", s->seal_seconds_total);
        fprintf(f, "seal_errors_total       %llu\n", (unsigned long long)s->seal_errors_total);
        fprintf(f, "store_map_max_bytes     %s\n", cli_size(s->store_map_max_bytes, 0));
        fprintf(f, "jobs_done               %llu\n", (unsigned long long)s->jobs_done);
        fprintf(f, "jobs_failed             %llu\n", (unsigned long long)s->jobs_failed);
        fprintf(f, "jobs_cancelled          %llu\n", (unsigned long long)s->jobs_cancelled);
        fprintf(f, "train_seconds_total     %.3f\n", s->train_seconds_total);
        if (s->n_requests_by_type) {
                fprintf(f, "\n%-24s %12s %12s\n", "REQUEST TYPE", "REQUESTS", "ERRORS");
                for (size_t i = 0; i < s->n_requests_by_type; i++)
                        fprintf(f, "%-24s %12llu %12llu\n", s->requests_by_type[i].type,
                                (unsigned long long)s->requests_by_type[i].requests,
                                (unsigned long long)s->requests_by_type[i].errors);
        }
        if (s->n_dataset_stats) {
                fprintf(f, "\n%-24s %14s %12s\n", "DATASET", "STORED", "ROWS");
                for (size_t i = 0; i < s->n_dataset_stats; i++)
                        fprintf(f, "%-24s %14s %12llu\n", s->dataset_stats[i].name,
                                cli_size(s->dataset_stats[i].stored_bytes, 0),
                                (unsigned long long)s->dataset_stats[i].rows);
        }
}
