/* The training-job commands without a server: the defaults `dream train
 * --help` prints against the trainer's own table, option parsing of `dream
 * train` (good and bad), job ids, the JSON and text forms of jobs and
 * metrics, and the class names read from a model's JSON. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/cli.h"
#include "common/alloc.h"
#include "train/train.h"

/* ---- helpers ----------------------------------------------------------------- */

/* Run a printer into a string (free()). */
#define CAPTURE(buf, call)                                                                         \
        do {                                                                                       \
                size_t len_;                                                                       \
                FILE *f = open_memstream(&(buf), &len_);                                           \
                assert_non_null(f);                                                                \
                call;                                                                              \
                fclose(f);                                                                         \
        } while (0)

static int parse(struct cli_train_args *a, ...)
{
        char *argv[32];
        int argc = 0;
        va_list ap;

        argv[argc++] = "train";
        va_start(ap, a);
        for (char *s; (s = va_arg(ap, char *)) != NULL && argc < 31;)
                argv[argc++] = s;
        va_end(ap);
        argv[argc] = NULL;
        return cli_train_parse(argc, argv, a);
}

/* ---- defaults ------------------------------------------------------------------ */

/* The client's table of defaults is the trainer's. */
static void test_defaults_match_trainer(void **state)
{
        struct train_params p;
        (void)state;

        train_params_default(TRAIN_SOFTMAX, &p);
        assert_int_equal(p.epochs, DREAM_TRAIN_DEFAULT_EPOCHS);
        assert_int_equal(p.batch, DREAM_TRAIN_DEFAULT_BATCH);
        assert_true(p.lr == DREAM_TRAIN_DEFAULT_LR);
        assert_true(p.l2 == DREAM_TRAIN_DEFAULT_L2_LOGIT);
        assert_int_equal(p.seed, DREAM_TRAIN_DEFAULT_SEED);
        train_params_default(TRAIN_LOGISTIC, &p);
        assert_true(p.l2 == DREAM_TRAIN_DEFAULT_L2_LOGIT);
        assert_int_equal(p.solver, TRAIN_SOLVER_LBFGS); /* DREAM_SOLVER_DEFAULT */
        train_params_default(TRAIN_MLP, &p);
        assert_int_equal(p.epochs, DREAM_TRAIN_DEFAULT_EPOCHS_MLP);
        assert_int_equal(p.patience, DREAM_TRAIN_DEFAULT_PATIENCE);
        assert_true(p.l2 == DREAM_TRAIN_DEFAULT_L2);
        assert_int_equal(p.n_hidden, 1);
        assert_int_equal(p.hidden[0], DREAM_TRAIN_DEFAULT_HIDDEN);
        train_params_default(TRAIN_KMEANS, &p);
        assert_int_equal(p.k, DREAM_TRAIN_DEFAULT_K);
        assert_int_equal(p.max_iter, DREAM_TRAIN_DEFAULT_MAX_ITER);
        train_params_default(TRAIN_RIDGE, &p);
        assert_true(p.l2 == DREAM_TRAIN_DEFAULT_L2_RIDGE);
        train_params_default(TRAIN_LINEAR, &p);
        assert_true(p.l2 == 0);
}

/* --help prints every hyper-parameter with its default. */
static void test_help_lists_defaults(void **state)
{
        char *h = NULL;
        static const char *const want[] = {
            "--model",
            "--mode",
            "--budget",
            "--epochs",
            "--lr",
            "--batch",
            "--hidden",
            "--k ",
            "--l2",
            "--seed",
            "--test",
            "--holdout",
            "default 0.1;",
            "evaluated_on",
            "fit_loss",
            "--wait",
            "--json",
            "default 0.01",
            "default 20",
            "default 200",
            "--solver",
            "lbfgs (default",
            "--patience",
            "default 5;",
            "solver, fit_loss",
            "default 0.001",
            "default 256",
            "default 128",
            "default 8",
            "100 Lloyd",
            "ridge default 1,",
            "softmax default 0.001,",
            "mlp default 0.0001",
            "default 42",
            "msb (default)",
            "Default: exact for linear and",
            "10 the job failed",
            "11 the job",
        };
        (void)state;

        CAPTURE(h, cli_train_help(f));
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                if (!strstr(h, want[i]))
                        fail_msg("'dream train --help' lacks '%s'", want[i]);
        free(h);
}

/* ---- parsing ----------------------------------------------------------------------- */

static void test_parse_minimal(void **state)
{
        struct cli_train_args a;
        (void)state;

        assert_int_equal(parse(&a, "ds", "--model", "linear", NULL), -1);
        assert_string_equal(a.dataset, "ds");
        assert_int_equal(a.opts.model, DREAM_MODEL_LINEAR);
        /* Everything else the server's default (0), but the seed. */
        assert_int_equal(a.opts.mode, DREAM_TRAIN_DEFAULT);
        assert_true(a.opts.budget_fraction == 0 && a.opts.budget_rows == 0);
        assert_int_equal(a.opts.epochs, 0);
        assert_true(a.opts.lr == 0 && a.opts.l2 == 0);
        assert_int_equal(a.opts.batch_size, 0);
        assert_int_equal(a.opts.n_hidden, 0);
        assert_int_equal(a.opts.k, 0);
        assert_int_equal(a.opts.seed, DREAM_TRAIN_DEFAULT_SEED);
        assert_null(a.opts.test_dataset);
        assert_int_equal(a.opts.order, DREAM_ORDER_DEFAULT);
        assert_true(a.opts.holdout == 0); /* the server's default share */
        assert_false(a.wait);
        assert_false(a.net.json);
}

static void test_parse_everything(void **state)
{
        struct cli_train_args a;
        (void)state;

        assert_int_equal(parse(&a, "--model", "mlp", "--mode", "refresh", "--budget", "10%",
                               "--epochs", "7", "--lr", "0.01", "--batch", "64", "--hidden",
                               "256,128", "--l2", "0.5", "--seed", "0", "--test", "te", "--order",
                               "entropy", "--wait", "--json", "-s", "127.0.0.1:9", "fm", NULL),
                         -1);
        assert_string_equal(a.dataset, "fm");
        assert_int_equal(a.opts.model, DREAM_MODEL_MLP);
        assert_int_equal(a.opts.mode, DREAM_TRAIN_REFRESH);
        assert_true(fabs(a.opts.budget_fraction - 0.1) < 1e-12);
        assert_int_equal(a.opts.budget_rows, 0);
        assert_int_equal(a.opts.epochs, 7);
        assert_true(a.opts.lr == 0.01);
        assert_int_equal(a.opts.batch_size, 64);
        assert_int_equal(a.opts.n_hidden, 2);
        assert_int_equal(a.opts.hidden[0], 256);
        assert_int_equal(a.opts.hidden[1], 128);
        assert_true(a.opts.l2 == 0.5);
        assert_int_equal(a.opts.seed, 0);
        assert_string_equal(a.opts.test_dataset, "te");
        assert_int_equal(a.opts.order, DREAM_ORDER_ENTROPY);
        assert_true(a.wait);
        assert_true(a.net.json);
        assert_string_equal(a.net.addr, "127.0.0.1:9");
        assert_int_equal(a.opts.solver, DREAM_SOLVER_DEFAULT);
        assert_int_equal(a.opts.patience, 0);
        assert_int_equal(a.opts.early_stopping_off, 0);

        assert_int_equal(parse(&a, "ds", "--model", "softmax", "--solver", "adam", NULL), -1);
        assert_int_equal(a.opts.solver, DREAM_SOLVER_ADAM);
        assert_int_equal(parse(&a, "ds", "--model", "softmax", "--solver", "lbfgs", NULL), -1);
        assert_int_equal(a.opts.solver, DREAM_SOLVER_LBFGS);
        assert_int_equal(parse(&a, "ds", "--model", "mlp", "--patience", "12", NULL), -1);
        assert_int_equal(a.opts.patience, 12);
        assert_int_equal(a.opts.early_stopping_off, 0);
        assert_int_equal(parse(&a, "ds", "--model", "mlp", "--patience", "off", NULL), -1);
        assert_int_equal(a.opts.patience, 0);
        assert_int_equal(a.opts.early_stopping_off, 1);

        /* "rows" (batch's spelling) is full. */
        assert_int_equal(parse(&a, "ds", "--model", "mlp", "--mode", "rows", NULL), -1);
        assert_int_equal(a.opts.mode, DREAM_TRAIN_FULL);
        assert_int_equal(parse(&a, "ds", "--model", "mlp", "--mode", "full", NULL), -1);
        assert_int_equal(a.opts.mode, DREAM_TRAIN_FULL);

        assert_int_equal(
            parse(&a, "ds", "-m", "kmeans", "--k", "3", "-b", "5000", "-e", "2", "-w", NULL), -1);
        assert_int_equal(a.opts.model, DREAM_MODEL_KMEANS);
        assert_int_equal(a.opts.k, 3);
        assert_int_equal(a.opts.budget_rows, 5000);
        assert_true(a.opts.budget_fraction == 0);
        assert_int_equal(a.opts.epochs, 2);
        assert_true(a.wait);

        assert_int_equal(parse(&a, "ds", "--model", "ridge", "--mode", "exact", "--l2", "2",
                               "--order", "msb", NULL),
                         -1);
        assert_int_equal(a.opts.mode, DREAM_TRAIN_EXACT);
        assert_int_equal(a.opts.order, DREAM_ORDER_MSB);
        assert_int_equal(parse(&a, "ds", "--model", "mlp", "--hidden", "32", NULL), -1);
        assert_int_equal(a.opts.n_hidden, 1);
        assert_int_equal(a.opts.hidden[0], 32);
        assert_int_equal(
            parse(&a, "ds", "--model", "logistic", "--seed", "18446744073709551615", NULL), -1);
        assert_int_equal(a.opts.seed, UINT64_MAX);
        /* --holdout: a share or a percentage; 0 = none (negative on the wire). */
        assert_int_equal(parse(&a, "ds", "--model", "logistic", "--holdout", "0.25", NULL), -1);
        assert_true(a.opts.holdout == 0.25);
        assert_int_equal(parse(&a, "ds", "--model", "logistic", "--holdout", "5%", NULL), -1);
        assert_true(fabs(a.opts.holdout - 0.05) < 1e-12);
        assert_int_equal(parse(&a, "ds", "--model", "logistic", "--holdout", "0", NULL), -1);
        assert_true(a.opts.holdout < 0);
}

static void test_parse_help(void **state)
{
        struct cli_train_args a;
        FILE *saved = stdout;
        (void)state;

        stdout = fopen("/dev/null", "w");
        assert_non_null(stdout);
        assert_int_equal(parse(&a, "--help", NULL), CLI_OK);
        fclose(stdout);
        stdout = saved;
}

/* Every bad command line is a usage error (1), found before connecting. */
static void test_parse_bad(void **state)
{
        static const char *const bad[][8] = {
            {NULL},
            {"ds", NULL},
            {"--model", "linear", NULL},
            {"ds", "ds2", "--model", "linear", NULL},
            {"ds", "--model", "lasso", NULL},
            {"ds", "--model", "linear", "--mode", "fast", NULL},
            {"ds", "--model", "softmax", "--mode", "exact", NULL},
            {"ds", "--model", "linear", "--mode", "full", "--budget", "0.1", NULL},
            {"ds", "--model", "linear", "--mode", "exact", "--budget", "0.1", NULL},
            {"ds", "--model", "linear", "--budget", "0", NULL},
            {"ds", "--model", "linear", "--budget", "-1", NULL},
            {"ds", "--model", "linear", "--budget", "x", NULL},
            {"ds", "--model", "softmax", "--epochs", "0", NULL},
            {"ds", "--model", "softmax", "--epochs", "100001", NULL},
            {"ds", "--model", "softmax", "--epochs", "-3", NULL},
            {"ds", "--model", "softmax", "--epochs", "2x", NULL},
            {"ds", "--model", "softmax", "--lr", "0", NULL},
            {"ds", "--model", "softmax", "--lr", "-0.1", NULL},
            {"ds", "--model", "softmax", "--lr", "nan", NULL},
            {"ds", "--model", "softmax", "--lr", "inf", NULL},
            {"ds", "--model", "softmax", "--batch", "0", NULL},
            {"ds", "--model", "softmax", "--batch", "1048577", NULL},
            {"ds", "--model", "mlp", "--hidden", "0", NULL},
            {"ds", "--model", "mlp", "--hidden", "1,2,3", NULL},
            {"ds", "--model", "mlp", "--hidden", "65537", NULL},
            {"ds", "--model", "mlp", "--hidden", "", NULL},
            {"ds", "--model", "mlp", "--hidden", "12,", NULL},
            {"ds", "--model", "softmax", "--hidden", "12", NULL},
            {"ds", "--model", "softmax", "--solver", "sgd", NULL},
            {"ds", "--model", "mlp", "--solver", "adam", NULL},
            {"ds", "--model", "softmax", "--mode", "refresh", "--solver", "lbfgs", NULL},
            {"ds", "--model", "softmax", "--patience", "3", NULL},
            {"ds", "--model", "mlp", "--patience", "0", NULL},
            {"ds", "--model", "mlp", "--patience", "100001", NULL},
            {"ds", "--model", "mlp", "--patience", "x", NULL},
            {"ds", "--model", "kmeans", "--k", "0", NULL},
            {"ds", "--model", "kmeans", "--k", "65537", NULL},
            {"ds", "--model", "mlp", "--k", "3", NULL},
            {"ds", "--model", "ridge", "--l2", "0", NULL},
            {"ds", "--model", "ridge", "--l2", "-1", NULL},
            {"ds", "--model", "linear", "--l2", "1", NULL},
            {"ds", "--model", "kmeans", "--l2", "1", NULL},
            {"ds", "--model", "linear", "--seed", "-1", NULL},
            {"ds", "--model", "linear", "--seed", "18446744073709551616", NULL},
            {"ds", "--model", "linear", "--order", "lsb", NULL},
            {"ds", "--model", "linear", "--frobnicate", NULL},
            {"ds", "--model", NULL},
            {"ds", "--model", "linear", "--epochs", NULL},
            {"ds", "--model", "linear", "--holdout", "1", NULL},
            {"ds", "--model", "linear", "--holdout", "100%", NULL},
            {"ds", "--model", "linear", "--holdout", "-0.1", NULL},
            {"ds", "--model", "linear", "--holdout", "nan", NULL},
            {"ds", "--model", "linear", "--holdout", "%", NULL},
            {"ds", "--model", "linear", "--holdout", "", NULL},
        };
        (void)state;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct cli_train_args a;
                char *argv[10];
                int argc = 0;

                argv[argc++] = "train";
                for (int k = 0; bad[i][k]; k++)
                        argv[argc++] = (char *)bad[i][k];
                argv[argc] = NULL;
                if (cli_train_parse(argc, argv, &a) != CLI_USAGE)
                        fail_msg("command line %zu was accepted", i);
        }
}

static void test_job_id(void **state)
{
        uint64_t id;
        (void)state;

        assert_int_equal(cli_parse_job_id("1", &id), 0);
        assert_int_equal(id, 1);
        assert_int_equal(cli_parse_job_id("18446744073709551615", &id), 0);
        assert_int_equal(id, UINT64_MAX);
        assert_int_equal(cli_parse_job_id("0", &id), -1);
        assert_int_equal(cli_parse_job_id("-1", &id), -1);
        assert_int_equal(cli_parse_job_id("+1", &id), -1);
        assert_int_equal(cli_parse_job_id("1x", &id), -1);
        assert_int_equal(cli_parse_job_id("", &id), -1);
        assert_int_equal(cli_parse_job_id("18446744073709551616", &id), -1);
}

/* ---- output ------------------------------------------------------------------------ */

static void job_base(struct dream_job_info *j)
{
        memset(j, 0, sizeof(*j));
        j->id = 12;
        j->state = DREAM_JOB_DONE;
        snprintf(j->dataset, sizeof(j->dataset), "reg\"1");
        j->model = DREAM_MODEL_LINEAR;
        j->mode = DREAM_TRAIN_CONDENSED;
        j->budget_fraction = 0.01;
        j->epoch = 1;
        j->epochs = 1;
        j->loss = 0.25;
        j->elapsed_seconds = 1.5;
        j->eta_seconds = -1;
        j->submitted_unix = 1700000000;
}

static void test_job_json_done(void **state)
{
        struct dream_job_info j = DREAM_INIT(struct dream_job_info);
        char *s = NULL;
        (void)state;

        job_base(&j);
        j.has_result = 1;
        j.result.rows_used = 50;
        j.result.prep_seconds = 0.125;
        j.result.train_seconds = 0.5;
        j.result.peak_train_bytes = 4096;
        j.result.epochs = 1;
        j.result.metrics = DREAM_METRICS_REGRESSION;
        j.result.rmse = 0.1;
        j.result.mae = 0.08;
        j.result.r2 = 0.99;
        snprintf(j.evaluated_on, sizeof(j.evaluated_on), "holdout");
        j.result.evaluated_rows = 20;
        j.holdout_share = 0.1;
        j.holdout_rows = 20;
        j.fit_loss = 0.375;
        j.iterations = 9;
        j.converged = 1;
        j.wall_seconds = 0.75;
        j.prep_cached = 1;
        j.l2 = 1;
        snprintf(j.solver, sizeof(j.solver), "closed form");
        CAPTURE(s, cli_job_json(f, &j));
        assert_string_equal(
            s, "{\"job\":12,\"state\":\"done\",\"dataset\":\"reg\\\"1\",\"model\":\"linear\","
               "\"mode\":\"condensed\",\"budget\":0.01,\"budget_kind\":\"fraction\","
               "\"test_dataset\":null,\"epoch\":1,\"epochs\":1,\"epochs_planned\":1,"
               "\"loss\":0.25,\"elapsed_seconds\":1.5,\"eta_seconds\":null,"
               "\"submitted_unix\":1700000000,\"rows_used\":50,\"prep_seconds\":0.125,"
               "\"prep_cached\":true,\"train_seconds\":0.5,\"wall_seconds\":0.75,"
               "\"peak_train_bytes\":4096,\"iterations\":9,\"converged\":true,"
               "\"solver\":\"closed form\","
               "\"fit_loss\":0.375,\"l2\":1,\"var_scale\":0,\"evaluated_on\":\"holdout\","
               "\"evaluated_rows\":20,\"holdout_share\":0.1,\"holdout_rows\":20,"
               "\"metrics\":{\"rmse\":0.1,\"mae\":0.08,\"r2\":0.99},\"error\":null,"
               "\"error_code\":null}");
        free(s);

        /* Classification on a test set, a row budget. */
        j.model = DREAM_MODEL_SOFTMAX;
        j.budget_fraction = 0;
        j.budget_rows = 30;
        snprintf(j.test_dataset, sizeof(j.test_dataset), "te");
        j.result.evaluated_rows = 45;
        j.result.metrics = DREAM_METRICS_CLASSIFICATION;
        j.result.accuracy = 0.5;
        j.result.macro_f1 = 0.25;
        j.result.logloss = NAN;
        CAPTURE(s, cli_job_json(f, &j));
        assert_non_null(strstr(s, "\"budget\":30,\"budget_kind\":\"rows\""));
        assert_non_null(strstr(s, "\"test_dataset\":\"te\""));
        assert_non_null(strstr(s, "\"evaluated_rows\":45"));
        assert_non_null(
            strstr(s, "\"metrics\":{\"accuracy\":0.5,\"macro_f1\":0.25,\"logloss\":null},"));
        free(s);

        j.model = DREAM_MODEL_KMEANS;
        j.result.metrics = DREAM_METRICS_CLUSTER;
        j.result.inertia = 12.5;
        j.result.mean_sq_distance = 0.5;
        CAPTURE(s, cli_job_json(f, &j));
        assert_non_null(strstr(s, "\"metrics\":{\"inertia\":12.5,\"mean_sq_distance\":0.5}"));
        free(s);
}

static void test_job_json_failed_running(void **state)
{
        struct dream_job_info j = DREAM_INIT(struct dream_job_info);
        char *s = NULL;
        (void)state;

        job_base(&j);
        j.state = DREAM_JOB_FAILED;
        j.error_code = DREAM_E_NUMERIC;
        snprintf(j.error, sizeof(j.error), "train: the system is singular");
        j.mode = DREAM_TRAIN_EXACT;
        j.budget_fraction = 0;
        CAPTURE(s, cli_job_json(f, &j));
        assert_non_null(strstr(s, "\"state\":\"failed\""));
        assert_non_null(strstr(s, "\"budget\":null,\"budget_kind\":null"));
        assert_non_null(strstr(s, "\"error\":\"train: the system is singular\","
                                  "\"error_code\":\"DREAM_E_NUMERIC\"}"));
        assert_non_null(strstr(s, "\"metrics\":null"));
        assert_non_null(strstr(s, "\"rows_used\":null,"));
        free(s);

        job_base(&j);
        j.state = DREAM_JOB_RUNNING;
        j.model = DREAM_MODEL_MLP;
        j.epoch = 3;
        j.epochs = 20;
        j.eta_seconds = 8.5;
        j.loss = NAN;
        CAPTURE(s, cli_job_json(f, &j));
        assert_non_null(strstr(s, "\"epoch\":3,\"epochs\":20,\"epochs_planned\":20,"
                                  "\"loss\":null,\"elapsed_seconds\":1.5,\"eta_seconds\":8.5"));
        assert_non_null(strstr(s, "\"rows_used\":null,\"prep_seconds\":null,"
                                  "\"prep_cached\":null,\"train_seconds\":null,"
                                  "\"wall_seconds\":null,\"peak_train_bytes\":null,"
                                  "\"iterations\":null,\"converged\":null,\"solver\":null,"
                                  "\"fit_loss\":null,"
                                  "\"l2\":null,\"var_scale\":null,\"evaluated_on\":null,"
                                  "\"evaluated_rows\":null,\"holdout_share\":null,"
                                  "\"holdout_rows\":null,\"metrics\":null,\"error\":null,"
                                  "\"error_code\":null}"));
        free(s);
        CAPTURE(s, cli_job_text(f, &j));
        assert_non_null(strstr(s, "state            running\n"));
        assert_non_null(strstr(s, "epoch            3/20\n"));
        assert_non_null(strstr(s, "eta              8.50 s\n"));
        free(s);
}

static void test_job_text_and_exit(void **state)
{
        struct dream_job_info j = DREAM_INIT(struct dream_job_info);
        char *s = NULL;
        (void)state;

        job_base(&j);
        j.has_result = 1;
        j.result.metrics = DREAM_METRICS_CLASSIFICATION;
        j.result.accuracy = 0.96;
        j.result.evaluated_rows = 30;
        snprintf(j.evaluated_on, sizeof(j.evaluated_on), "holdout");
        j.holdout_share = 0.1;
        j.holdout_rows = 30;
        j.fit_loss = 0.125;
        j.wall_seconds = 2;
        CAPTURE(s, cli_job_text(f, &j));
        assert_non_null(strstr(s, "job              12\n"));
        assert_non_null(strstr(s, "budget           0.01\n"));
        assert_non_null(strstr(s, "accuracy         0.96\n"));
        assert_non_null(strstr(s, "evaluated on     holdout\n"));
        assert_non_null(strstr(s, "evaluated rows   30\n"));
        assert_non_null(
            strstr(s, "holdout          30 rows (0.1 of the rows, never trained on)\n"));
        assert_non_null(
            strstr(s, "fit loss         0.125 (on the training samples, not a result)\n"));
        assert_non_null(strstr(s, "wall seconds     2.000"));
        free(s);
        j.mode = DREAM_TRAIN_FULL;
        j.budget_fraction = 1;
        CAPTURE(s, cli_job_text(f, &j));
        assert_non_null(strstr(s, "budget           every training row\n"));
        assert_null(strstr(s, "error"));
        free(s);
        assert_int_equal(cli_job_exit(&j), CLI_OK);
        j.state = DREAM_JOB_FAILED;
        assert_int_equal(cli_job_exit(&j), CLI_JOB_FAILED);
        CAPTURE(s, cli_job_text(f, &j));
        assert_non_null(strstr(s, "error            internal error\n"));
        free(s);
        j.state = DREAM_JOB_CANCELLED;
        assert_int_equal(cli_job_exit(&j), CLI_JOB_CANCELLED);
        j.state = DREAM_JOB_RUNNING;
        assert_int_equal(cli_job_exit(&j), CLI_SERVER);
        /* Distinct from every other exit code. */
        assert_true(CLI_JOB_FAILED > CLI_SERVER && CLI_JOB_CANCELLED > CLI_JOB_FAILED);
}

static void test_budget_str_and_num(void **state)
{
        char b[32];
        char *s = NULL;
        (void)state;

        cli_budget_str(b, sizeof(b), 0.01, 0);
        assert_string_equal(b, "0.01");
        cli_budget_str(b, sizeof(b), 0, 92);
        assert_string_equal(b, "92 rows");
        cli_budget_str(b, sizeof(b), 0, 0);
        assert_string_equal(b, "-");
        CAPTURE(s, (cli_json_num(f, 0.1), fputc(' ', f), cli_json_num(f, INFINITY), fputc(' ', f),
                    cli_json_num(f, -2), fputc(' ', f), cli_json_num(f, 1e-300)));
        assert_string_equal(s, "0.1 null -2 1e-300");
        free(s);
}

static void test_class_names(void **state)
{
        char **n = NULL;
        (void)state;

        assert_int_equal(cli_model_class_names("{\"n_classes\":3,\"classes\":[0, 1,2.5],"
                                               "\"x\":1}",
                                               3, &n),
                         0);
        assert_string_equal(n[0], "0");
        assert_string_equal(n[1], "1");
        assert_string_equal(n[2], "2.5");
        cli_names_free(n, 3);
        assert_int_equal(cli_model_class_names("{\"classes\":[-1,1]}", 2, &n), 0);
        assert_string_equal(n[0], "-1");
        cli_names_free(n, 2);
        assert_int_equal(cli_model_class_names("{\"n_classes\":3,\"classes\":null}", 3, &n), -1);
        assert_int_equal(cli_model_class_names("{\"classes\":[0,1]}", 3, &n), -1);
        assert_int_equal(cli_model_class_names("{\"classes\":[0,1,2,3]}", 3, &n), -1);
        assert_int_equal(cli_model_class_names("{\"classes\":[0,\"a\",2]}", 3, &n), -1);
        assert_int_equal(cli_model_class_names("{\"classes\":[0,1", 2, &n), -1);
        assert_int_equal(cli_model_class_names("{\"n_classes\":2}", 2, &n), -1);
        assert_int_equal(cli_model_class_names(NULL, 2, &n), -1);
}

static void test_stats_output(void **state)
{
        static const char *const keys[] = {
            "uptime_seconds",
            "connections_open",
            "connections_total",
            "connections_refused",
            "requests_total",
            "request_errors_total",
            "bytes_in",
            "bytes_out",
            "rows_ingested",
            "batches_served",
            "jobs_running",
            "jobs_queued",
            "datasets",
            "store_map_bytes",
            "store_used_bytes",
            "ingest_ack_p50_seconds",
            "ingest_ack_p99_seconds",
            "ingest_commits",
            "seals_total",
            "seal_seconds_total",
            "seal_errors_total",
            "store_map_max_bytes",
            "jobs_done",
            "jobs_failed",
            "jobs_cancelled",
            "train_seconds_total",
        };
        struct dream_request_stats rt[2] = {{"ingest", 5, 1}, {"train", 2, 0}};
        struct dream_dataset_stats ds[1] = {{"iris", 4096, 150}};
        struct dream_stats st = DREAM_INIT(struct dream_stats);
        char *js = NULL, *tx = NULL;
        (void)state;

        st.uptime_seconds = 5;
        st.jobs_queued = 2;
        st.ingest_ack_p50_seconds = 0.25;
        st.requests_by_type = rt;
        st.n_requests_by_type = 2;
        st.dataset_stats = ds;
        st.n_dataset_stats = 1;
        CAPTURE(js, cli_stats_json(f, &st));
        CAPTURE(tx, cli_stats_text(f, &st));
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                char k[64];
                snprintf(k, sizeof(k), "\"%s\":", keys[i]);
                if (!strstr(js, k))
                        fail_msg("stats JSON lacks %s", keys[i]);
                if (!strstr(tx, keys[i]))
                        fail_msg("stats text lacks %s", keys[i]);
        }
        assert_non_null(strstr(js, "\"uptime_seconds\":5,"));
        assert_non_null(strstr(js, "\"jobs_queued\":2,"));
        assert_non_null(strstr(js, "\"ingest_ack_p50_seconds\":0.25,"));
        assert_non_null(strstr(js, "\"requests_by_type\":[{\"type\":\"ingest\",\"requests\":5,"
                                   "\"errors\":1},{\"type\":\"train\",\"requests\":2,"
                                   "\"errors\":0}],\"dataset_stats\":[{\"name\":\"iris\","
                                   "\"stored_bytes\":4096,\"rows\":150}]}"));
        assert_non_null(strstr(tx, "ingest                              5            1\n"));
        /* Sizes in text are 1024-based (JSON keeps the byte count). */
        assert_non_null(strstr(tx, "iris                            4.0 KiB          150\n"));
        assert_int_equal(js[0], '{');
        assert_string_equal(js + strlen(js) - 2, "}\n");
        free(js);
        free(tx);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults_match_trainer),
            cmocka_unit_test(test_help_lists_defaults),
            cmocka_unit_test(test_parse_minimal),
            cmocka_unit_test(test_parse_everything),
            cmocka_unit_test(test_parse_help),
            cmocka_unit_test(test_parse_bad),
            cmocka_unit_test(test_job_id),
            cmocka_unit_test(test_job_json_done),
            cmocka_unit_test(test_job_json_failed_running),
            cmocka_unit_test(test_job_text_and_exit),
            cmocka_unit_test(test_budget_str_and_num),
            cmocka_unit_test(test_class_names),
            cmocka_unit_test(test_stats_output),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
