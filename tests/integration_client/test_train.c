/* Integration tests of the training-job commands of the dream CLI and of
 * libdream's job calls against a real dreamd (DREAMD; the CLI in DREAM;
 * python3 in PYTHON, to check that JSON parses and to apply an exported
 * model by hand; iris from scikit-learn in IRIS).
 *
 * Usage: test_train GROUP, GROUP one of:
 *   regression  linear on a generated table: train --wait --json (full,
 *               condensed, exact: r2 > 0.9), train without --wait then job,
 *               jobs, predict (target column present or not) against the
 *               model JSON applied by hand and against the job's r2, model
 *               export, stats, the errors (unknown dataset/job, bad columns,
 *               a test set with other columns);
 *   classify    softmax and logistic on iris: accuracy, predict's
 *               probabilities and its accuracy against the job's; kmeans;
 *   cancel      a long mlp job followed by `train --wait` and by libdream's
 *               watch, cancelled: exit status 11, state cancelled. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dream/client.h"
#include "harness.h"

#define OUT_SIZE (1u << 20)

static char out[OUT_SIZE], err[65536];

/* The number after "key": in a JSON text (first occurrence); NAN when
 * missing or null. */
static double json_num(const char *json, const char *key)
{
        char pat[128];
        const char *p;
        char *end;
        double v;

        snprintf(pat, sizeof(pat), "\"%s\":", key);
        p = strstr(json, pat);
        if (!p)
                return NAN;
        p += strlen(pat);
        v = strtod(p, &end);
        return end == p ? NAN : v;
}

/* The string after "key": (first occurrence) into buf, "" when missing. */
static const char *json_str(const char *json, const char *key, char *buf, size_t n)
{
        char pat[128];
        const char *p, *q;

        buf[0] = '\0';
        snprintf(pat, sizeof(pat), "\"%s\":\"", key);
        p = strstr(json, pat);
        if (!p)
                return buf;
        p += strlen(pat);
        q = strchr(p, '"');
        if (q) {
                size_t len = (size_t)(q - p) < n - 1 ? (size_t)(q - p) : n - 1;
                memcpy(buf, p, len);
                buf[len] = '\0';
        }
        return buf;
}

/* Run python3 with a script and arguments; its exit status. */
static int python(const char *script, const char *a1, const char *a2, const char *a3)
{
        const char *py = getenv("PYTHON");
        char cmd[8192];
        int st;

        snprintf(cmd, sizeof(cmd), "'%s' -c '%s' '%s' '%s' '%s'", py ? py : "/usr/bin/python3",
                 script, a1 ? a1 : "", a2 ? a2 : "", a3 ? a3 : "");
        st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The file parses as one JSON document. */
static void check_json_file(const char *path)
{
        if (python("import json,sys; json.load(open(sys.argv[1]))", path, NULL, NULL) != 0) {
                fprintf(stderr, "%s does not parse as JSON:\n%s\n", path, slurp(path, NULL));
                fail_now();
        }
}

/* The CLI's stdout (cli.out of the last run) parses as JSON. */
static void check_json_out(const struct daemon *d)
{
        char p[128];
        snprintf(p, sizeof(p), "%s/cli.out", d->td.dir);
        check_json_file(p);
}

static void path_in(const struct daemon *d, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s", d->td.dir, name);
}

/* Expect exit status `want` from the CLI, else print its output and fail. */
#define EXPECT_RC(want, rc)                                                                        \
        do {                                                                                       \
                int rc_ = (rc);                                                                    \
                if (rc_ != (want)) {                                                               \
                        fprintf(stderr, "%s:%d: exit %d, expected %d\nstdout: %s\nstderr: %s\n",   \
                                __FILE__, __LINE__, rc_, (want), out, err);                        \
                        fail_now();                                                                \
                }                                                                                  \
        } while (0)

/* ---- group: regression ----------------------------------------------------------- */

#define REG_ROWS 2000u

/* y = 3 x1 - 2 x2 + 0.5 x3 + 1 + noise, two decimals each. With features
 * only (no y) when `features_only`. Returns the sum of y and of y^2. */
static void write_regression(const char *path, int features_only)
{
        FILE *f = fopen(path, "w");
        uint64_t s = 12345;

        CHECK(f != NULL);
        fprintf(f, features_only ? "x1,x2,x3\n" : "x1,x2,x3,y\n");
        for (uint32_t i = 0; i < REG_ROWS; i++) {
                int v[4];
                for (int k = 0; k < 4; k++) {
                        s = s * 6364136223846793005ull + 1442695040888963407ull;
                        v[k] = (int)((s >> 33) % 2001) - 1000; /* -10.00 .. 10.00 */
                }
                double y =
                    3 * v[0] / 100.0 - 2 * v[1] / 100.0 + 0.5 * v[2] / 100.0 + 1 + v[3] / 10000.0;
                if (features_only)
                        fprintf(f, "%.2f,%.2f,%.2f\n", v[0] / 100.0, v[1] / 100.0, v[2] / 100.0);
                else
                        fprintf(f, "%.2f,%.2f,%.2f,%.4f\n", v[0] / 100.0, v[1] / 100.0,
                                v[2] / 100.0, y);
        }
        CHECK(fclose(f) == 0);
}

/* Every key the brief asks of `train --wait --json` (metrics aside). */
static void check_result_keys(const char *json)
{
        static const char *const keys[] = {
            "\"job\":",          "\"state\":",         "\"model\":",
            "\"mode\":",         "\"budget\":",        "\"rows_used\":",
            "\"prep_seconds\":", "\"train_seconds\":", "\"peak_train_bytes\":",
            "\"epochs\":",       "\"metrics\":",       "\"evaluated_rows\":",
            "\"test_dataset\":", "\"evaluated_on\":",  "\"holdout_share\":",
            "\"holdout_rows\":", "\"fit_loss\":",      "\"iterations\":",
            "\"converged\":",    "\"wall_seconds\":",  "\"prep_cached\":",
            "\"l2\":",           "\"var_scale\":",     "\"solver\":",
        };
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                if (!strstr(json, keys[i])) {
                        fprintf(stderr, "no %s in %s\n", keys[i], json);
                        fail_now();
                }
        }
}

/* The predictions of a CSV (header "prediction"...): first column. */
static size_t read_predictions(const char *path, double *ret, size_t max, char *header,
                               size_t header_size)
{
        char *s = slurp(path, NULL), *p = strchr(s, '\n');
        size_t n = 0;

        CHECK(p != NULL);
        snprintf(header, header_size, "%.*s", (int)(p - s), s);
        p++;
        while (*p && n < max) {
                char *end;
                ret[n++] = strtod(p, &end);
                CHECK(end != p);
                p = strchr(end, '\n');
                CHECK(p != NULL);
                p++;
        }
        free(s);
        return n;
}

/* Apply a linear model's JSON by hand (train/MODEL_JSON.md) to the rows of a
 * CSV and compare with the predictions of pred.csv. */
static const char check_linear_py[] =
    "import json,sys,csv\n"
    "m=json.load(open(sys.argv[1]))\n"
    "assert m[\"format\"]==\"dream-model\" and m[\"kind\"]==\"linear\", m[\"kind\"]\n"
    "rows=list(csv.DictReader(open(sys.argv[2])))\n"
    "lines=open(sys.argv[3]).read().split(\"\\n\")\n"
    "assert lines[0]==\"prediction\", lines[0]\n"
    "pred=[float(l) for l in lines[1:] if l]\n"
    "assert len(pred)==len(rows), (len(pred),len(rows))\n"
    "feat=[\"x1\",\"x2\",\"x3\"]\n"
    "mu=m[\"standardisation\"][\"mean\"]; sd=m[\"standardisation\"][\"sd\"]\n"
    "L=m[\"layers\"][0]; w=L[\"weights\"][0]; b=L[\"bias\"][0]\n"
    "tm=m[\"target\"][\"mean\"]; ts=m[\"target\"][\"sd\"]\n"
    "for r,p in zip(rows,pred):\n"
    "  z=[(float(r[c])-a)/s for c,a,s in zip(feat,mu,sd)]\n"
    "  y=tm+ts*(b+sum(wi*zi for wi,zi in zip(w,z)))\n"
    "  assert abs(y-p)<=1e-4*max(1,abs(y)), (y,p)\n";

static void group_regression(void)
{
        struct daemon d;
        char csv[128], feat[128], bad[128], pred[128], pred2[128], model[128], buf[64], hdr[256];
        char id_s[32], id2_s[32];
        struct dream_client *c;
        struct dream_job_info j = DREAM_INIT(struct dream_job_info);
        double *p1, *p2, r2, sum = 0, sumsq = 0, sse = 0;
        uint64_t id, id2;
        size_t n1, n2;
        int rc;

        daemon_start(&d, NULL);
        path_in(&d, "reg.csv", csv, sizeof(csv));
        path_in(&d, "feat.csv", feat, sizeof(feat));
        path_in(&d, "bad.csv", bad, sizeof(bad));
        path_in(&d, "pred.csv", pred, sizeof(pred));
        path_in(&d, "pred2.csv", pred2, sizeof(pred2));
        path_in(&d, "model.json", model, sizeof(model));
        write_regression(csv, 0);
        write_regression(feat, 1);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "reg", csv, "--label", "y",
                     "--task", "regression", "-q", NULL);
        EXPECT_RC(0, rc);

        /* Full data, waited for, JSON: one object with every key. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "linear",
                     "--mode", "full", "--wait", "--json", NULL);
        EXPECT_RC(0, rc);
        check_json_out(&d);
        check_result_keys(out);
        CHECK(strcmp(json_str(out, "state", buf, sizeof(buf)), "done") == 0);
        CHECK(strcmp(json_str(out, "model", buf, sizeof(buf)), "linear") == 0);
        CHECK(strcmp(json_str(out, "mode", buf, sizeof(buf)), "full") == 0);
        CHECK(strchr(out, '\n') == out + strlen(out) - 1); /* one line */
        id = (uint64_t)json_num(out, "job");
        CHECK(id > 0);
        r2 = json_num(out, "r2");
        CHECK(r2 > 0.9 && r2 <= 1);
        CHECK(json_num(out, "rmse") >= 0 && json_num(out, "mae") >= 0);
        /* Scored on the default holdout (10%), never trained on. */
        CHECK(json_num(out, "rows_used") == REG_ROWS - REG_ROWS / 10);
        CHECK(json_num(out, "holdout_rows") == REG_ROWS / 10);
        CHECK(json_num(out, "holdout_share") == 0.1);
        CHECK(json_num(out, "evaluated_rows") == REG_ROWS / 10);
        CHECK(strcmp(json_str(out, "evaluated_on", buf, sizeof(buf)), "holdout") == 0);
        CHECK(strstr(out, "\"budget\":1,\"budget_kind\":\"fraction\""));
        CHECK(json_num(out, "peak_train_bytes") > 0);
        CHECK(json_num(out, "prep_seconds") >= 0 && json_num(out, "train_seconds") >= 0);
        CHECK(json_num(out, "wall_seconds") >= json_num(out, "train_seconds"));
        CHECK(strstr(out, "\"converged\":") && strstr(out, "\"prep_cached\":false"));
        snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)id);

        /* Condensed (10%) and exact: good fits too. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "linear",
                     "--budget", "10%", "--wait", "--json", NULL);
        EXPECT_RC(0, rc);
        CHECK(strcmp(json_str(out, "mode", buf, sizeof(buf)), "condensed") == 0);
        CHECK(json_num(out, "r2") > 0.9);
        CHECK(json_num(out, "rows_used") <= REG_ROWS / 10 + 1);
        /* Without a holdout, on every row of the dataset, not the samples. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "linear",
                     "--budget", "10%", "--holdout", "0", "--wait", "--json", NULL);
        EXPECT_RC(0, rc);
        CHECK(json_num(out, "evaluated_rows") == REG_ROWS && json_num(out, "holdout_rows") == 0);
        CHECK(strcmp(json_str(out, "evaluated_on", buf, sizeof(buf)), "training rows") == 0);
        /* The default mode of ridge: exact; on a test set. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "ridge",
                     "--test", "reg", "--wait", "--json", NULL);
        EXPECT_RC(0, rc);
        CHECK(strcmp(json_str(out, "mode", buf, sizeof(buf)), "exact") == 0);
        CHECK(strstr(out, "\"budget\":1,") && json_num(out, "evaluated_rows") == REG_ROWS);
        CHECK(strcmp(json_str(out, "evaluated_on", buf, sizeof(buf)), "test dataset 'reg'") == 0);
        CHECK(json_num(out, "r2") > 0.9 && json_num(out, "l2") == 1);
        /* Text form: the result's lines. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "linear",
                     "--mode", "full", "--wait", NULL);
        EXPECT_RC(0, rc);
        CHECK(strstr(out, "state            done\n") && strstr(out, "r2 "));
        CHECK(strstr(out, "evaluated on     holdout\n") && strstr(out, "fit loss "));

        /* Without --wait: the id alone, then job and jobs. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "ridge",
                     "--l2", "0.5", NULL);
        EXPECT_RC(0, rc);
        id2 = strtoull(out, NULL, 10);
        CHECK(id2 > id);
        snprintf(id2_s, sizeof(id2_s), "%llu", (unsigned long long)id2);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "ridge",
                     "--json", NULL);
        EXPECT_RC(0, rc);
        CHECK(out[0] == '{' && json_num(out, "job") > id2 && strstr(out, "\"job\":") == out + 1);
        check_json_out(&d);
        c = client(&d, NULL);
        CHECK_OK(c, dream_job_watch(c, id2, NULL, NULL, &j));
        CHECK(j.state == DREAM_JOB_DONE && j.has_result && j.id == id2);
        CHECK(j.result.metrics == DREAM_METRICS_REGRESSION && j.result.r2 > 0.9);
        /* A finished job's watch: one state. */
        CHECK_OK(c, dream_job_watch(c, id, NULL, NULL, &j));
        CHECK(j.state == DREAM_JOB_DONE);
        dream_close(c);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "job", id2_s, "--json", NULL);
        EXPECT_RC(0, rc);
        check_json_out(&d);
        CHECK(json_num(out, "job") == (double)id2 && strstr(out, "\"model\":\"ridge\""));
        CHECK(strstr(out, "\"state\":\"done\"") && json_num(out, "r2") > 0.9);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "job", id2_s, NULL);
        EXPECT_RC(0, rc);
        CHECK(strstr(out, "model            ridge\n") && strstr(out, "rows used"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "jobs", "--json", NULL);
        EXPECT_RC(0, rc);
        check_json_out(&d);
        CHECK(out[0] == '[' && strstr(out, "\"model\":\"ridge\"") && strstr(out, "\"linear\""));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "jobs", NULL);
        EXPECT_RC(0, rc);
        CHECK(strncmp(out, "    ID STATE", 12) == 0 && strstr(out, " done ") && strstr(out, "reg"));

        /* Predict with the full-data linear model: target column present,
         * then absent (same predictions); the model applied by hand. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "predict", id_s, csv, "-f", "-o", pred,
                     NULL);
        EXPECT_RC(0, rc);
        CHECK(out[0] == '\0');
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "predict", id_s, feat, "--json", NULL);
        EXPECT_RC(0, rc);
        CHECK(strstr(err, "\"rows\":2000")); /* the summary goes to stderr */
        {
                FILE *f = fopen(pred2, "w");
                CHECK(f && fputs(out, f) >= 0 && fclose(f) == 0);
        }
        p1 = calloc(REG_ROWS + 1, sizeof(double));
        p2 = calloc(REG_ROWS + 1, sizeof(double));
        CHECK(p1 && p2);
        n1 = read_predictions(pred, p1, REG_ROWS + 1, hdr, sizeof(hdr));
        CHECK(strcmp(hdr, "prediction") == 0);
        n2 = read_predictions(pred2, p2, REG_ROWS + 1, hdr, sizeof(hdr));
        CHECK(n1 == REG_ROWS && n2 == REG_ROWS);
        CHECK(memcmp(p1, p2, REG_ROWS * sizeof(double)) == 0);
        rc =
            run_cli(&d, out, sizeof(out), err, sizeof(err), "model", id_s, "-f", "-o", model, NULL);
        EXPECT_RC(0, rc);
        check_json_file(model);
        CHECK(python(check_linear_py, model, csv, pred) == 0);
        /* R^2 of the predictions = the job's (metrics on the training rows). */
        {
                char *s = slurp(csv, NULL), *q = strchr(s, '\n') + 1;
                for (uint32_t i = 0; i < REG_ROWS; i++) {
                        double y;
                        for (int k = 0; k < 3; k++)
                                q = strchr(q, ',') + 1;
                        y = strtod(q, &q);
                        q++;
                        sum += y;
                        sumsq += y * y;
                        sse += (y - p1[i]) * (y - p1[i]);
                }
                free(s);
                double sst = sumsq - sum * sum / REG_ROWS;
                CHECK(fabs((1 - sse / sst) - r2) < 1e-4);
        }
        free(p1);
        free(p2);
        /* The model to stdout is the same document. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "model", id_s, NULL);
        EXPECT_RC(0, rc);
        {
                char *m = slurp(model, NULL);
                CHECK(strcmp(m, out) == 0);
                free(m);
        }

        /* Errors: unknown dataset, job; columns that do not match; a test
         * set with other columns; a job that is not a number. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "nosuch", "--model", "linear",
                     "--wait", NULL);
        CHECK((rc == 7 || rc == 10) && strstr(err, "nosuch"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "job", "999999", NULL);
        EXPECT_RC(7, rc);
        CHECK(strncmp(err, "dream: ", 7) == 0 && strstr(err, "job 999999"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "predict", "999999", csv, NULL);
        EXPECT_RC(7, rc);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "model", "999999", NULL);
        EXPECT_RC(7, rc);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "cancel", "999999", NULL);
        EXPECT_RC(7, rc);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "job", "abc", NULL);
        EXPECT_RC(1, rc);
        {
                FILE *f = fopen(bad, "w");
                CHECK(f && fputs("x1,x2,zz\n1,2,3\n", f) >= 0 && fclose(f) == 0);
        }
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "predict", id_s, bad, "-f", "-o",
                     pred2, NULL);
        EXPECT_RC(8, rc);
        CHECK(strstr(err, "x3") && strstr(err, "bad.csv"));
        {
                FILE *f = fopen(bad, "w");
                CHECK(f && fputs("a,b\n1,2\n3,4\n", f) >= 0 && fclose(f) == 0);
        }
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "other", bad, "-q", NULL);
        EXPECT_RC(0, rc);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "linear",
                     "--test", "other", "--wait", "--json", NULL);
        /* Refused at submit (the columns are checked then): schema mismatch. */
        EXPECT_RC(8, rc);
        CHECK(strstr(err, "other") && strstr(err, "columns"));
        CHECK(err[0] != '\0' && strchr(err, '\n') == err + strlen(err) - 1);
        /* A softmax on a regression target: the job fails (the task is known
         * once it reads the dataset), saying so. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "softmax",
                     "--wait", NULL);
        EXPECT_RC(10, rc);
        CHECK(strncmp(err, "dream: ", 7) == 0 && strstr(err, "classification"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "reg", "--model", "softmax",
                     "--wait", "--json", NULL);
        EXPECT_RC(10, rc);
        /* Failed: one JSON object still, with the error. */
        check_json_out(&d);
        check_result_keys(out);
        CHECK(strstr(out, "\"state\":\"failed\"") && strstr(out, "\"metrics\":null"));
        CHECK(strstr(out, "\"error\":\"") && strstr(out, "classification"));
        CHECK(strstr(out, "\"error_code\":\"DREAM_E_SCHEMA\""));

        /* Metrics. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "stats", "--json", NULL);
        EXPECT_RC(0, rc);
        check_json_out(&d);
        CHECK(json_num(out, "datasets") == 2 && json_num(out, "jobs_running") >= 0);
        CHECK(json_num(out, "requests_total") > 0);
        CHECK(json_num(out, "jobs_done") >= 5 && json_num(out, "jobs_failed") >= 1);
        CHECK(strstr(out, "\"requests_by_type\":[{\"type\":"));
        CHECK(strstr(out, "\"dataset_stats\":[{\"name\":"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "stats", NULL);
        EXPECT_RC(0, rc);
        CHECK(strstr(out, "uptime_seconds") && strstr(out, "store_used_bytes"));
        daemon_stop(&d);
}

/* ---- group: classify ---------------------------------------------------------------- */

/* scikit-learn's iris.csv has a first line "150,4,setosa,versicolor,
 * virginica": write it with column names; binary 1: label 1 for setosa, 0
 * otherwise; binary 2: labels 3, 5, 7 instead of 0, 1, 2. */
static void write_iris(const char *path, int binary)
{
        const char *src = getenv("IRIS");
        char *s, *p;
        FILE *f;

        CHECK(src != NULL);
        s = slurp(src, NULL);
        p = strchr(s, '\n');
        CHECK(p != NULL);
        f = fopen(path, "w");
        CHECK(f != NULL);
        fputs("sepal_length,sepal_width,petal_length,petal_width,label\n", f);
        for (p++; *p;) {
                char *nl = strchr(p, '\n'), *comma;
                if (!nl)
                        nl = p + strlen(p);
                if (nl > p) {
                        comma = p;
                        for (int k = 0; k < 4; k++)
                                comma = strchr(comma, ',') + 1;
                        if (binary == 1)
                                fprintf(f, "%.*s%d\n", (int)(comma - p), p,
                                        atoi(comma) == 0 ? 1 : 0);
                        else if (binary == 2)
                                fprintf(f, "%.*s%d\n", (int)(comma - p), p, 3 + 2 * atoi(comma));
                        else
                                fprintf(f, "%.*s\n", (int)(nl - p), p);
                }
                p = *nl ? nl + 1 : nl;
        }
        CHECK(fclose(f) == 0);
        free(s);
}

/* Predictions of iris: their accuracy against the label column, and every
 * row's probabilities sum to 1 and have their argmax at the prediction. */
static double iris_predict_accuracy(const char *iris, const char *pred, uint32_t classes)
{
        char *a = slurp(iris, NULL), *b = slurp(pred, NULL);
        char *p = strchr(a, '\n') + 1, *q = strchr(b, '\n') + 1;
        char want_hdr[128];
        uint32_t n = 0, right = 0;

        snprintf(want_hdr, sizeof(want_hdr), "%s",
                 classes == 3 ? "prediction,p_0,p_1,p_2\n" : "prediction,p_0,p_1\n");
        CHECK(strncmp(b, want_hdr, strlen(want_hdr)) == 0);
        while (*p) {
                double label, predv, pr[3], sum = 0;
                uint32_t best = 0;
                for (int k = 0; k < 4; k++)
                        p = strchr(p, ',') + 1;
                label = strtod(p, &p);
                p++;
                predv = strtod(q, &q);
                for (uint32_t k = 0; k < classes; k++) {
                        CHECK(*q == ',');
                        pr[k] = strtod(q + 1, &q);
                        CHECK(pr[k] >= 0 && pr[k] <= 1);
                        sum += pr[k];
                        if (pr[k] > pr[best])
                                best = k;
                }
                CHECK(*q == '\n');
                q++;
                CHECK(fabs(sum - 1) < 1e-5);
                CHECK(predv == best); /* classes 0..K-1 sorted */
                right += predv == label;
                n++;
        }
        CHECK(*q == '\0' && n == 150);
        free(a);
        free(b);
        return (double)right / n;
}

static void group_classify(void)
{
        struct daemon d;
        char iris[128], iris2[128], pred[128], model[128], buf[64], id_s[32];
        double acc;
        int rc;

        daemon_start(&d, NULL);
        path_in(&d, "iris.csv", iris, sizeof(iris));
        path_in(&d, "iris2.csv", iris2, sizeof(iris2));
        path_in(&d, "pred.csv", pred, sizeof(pred));
        path_in(&d, "model.json", model, sizeof(model));
        write_iris(iris, 0);
        write_iris(iris2, 1);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "iris", iris, "-q", NULL);
        EXPECT_RC(0, rc);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "iris2", iris2, "-q", NULL);
        EXPECT_RC(0, rc);

        /* softmax on every row. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "iris", "--model", "softmax",
                     "--mode", "full", "--epochs", "300", "--lr", "0.05", "--batch", "32",
                     "--holdout", "0", "--wait", "--json", NULL);
        EXPECT_RC(0, rc);
        check_json_out(&d);
        check_result_keys(out);
        CHECK(strcmp(json_str(out, "model", buf, sizeof(buf)), "softmax") == 0);
        acc = json_num(out, "accuracy");
        CHECK(acc > 0.85 && acc <= 1);
        CHECK(json_num(out, "macro_f1") > 0.8 && json_num(out, "logloss") > 0);
        CHECK(json_num(out, "epochs") >= 1 && json_num(out, "epochs") <= 300); /* L-BFGS */
        CHECK(strcmp(json_str(out, "solver", buf, sizeof(buf)), "lbfgs") == 0);
        snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)json_num(out, "job"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "predict", id_s, iris, "-f", "-o",
                     pred, NULL);
        EXPECT_RC(0, rc);
        /* Same rows as the job's metrics: the same accuracy. */
        CHECK(fabs(iris_predict_accuracy(iris, pred, 3) - acc) < 1e-9);
        rc =
            run_cli(&d, out, sizeof(out), err, sizeof(err), "model", id_s, "-f", "-o", model, NULL);
        EXPECT_RC(0, rc);
        check_json_file(model);

        /* softmax condensed with a test set (the full table). */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "iris", "--model", "softmax",
                     "--budget", "0.5", "--epochs", "200", "--lr", "0.05", "--test", "iris",
                     "--wait", "--json", NULL);
        EXPECT_RC(0, rc);
        CHECK(json_num(out, "evaluated_rows") == 150);
        CHECK(strcmp(json_str(out, "test_dataset", buf, sizeof(buf)), "iris") == 0);
        CHECK(json_num(out, "accuracy") > 0.7);

        /* logistic: setosa against the rest is separable; by Adam, every
         * epoch asked for. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "iris2", "--model",
                     "logistic", "--mode", "full", "--solver", "adam", "--epochs", "100", "--lr",
                     "0.05", "--wait", "--json", NULL);
        EXPECT_RC(0, rc);
        CHECK(strcmp(json_str(out, "solver", buf, sizeof(buf)), "adam") == 0);
        CHECK(json_num(out, "epochs") == 100);
        acc = json_num(out, "accuracy");
        CHECK(acc > 0.95);
        snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)json_num(out, "job"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "predict", id_s, iris2, "-f", "-o",
                     pred, NULL);
        EXPECT_RC(0, rc);
        CHECK(fabs(iris_predict_accuracy(iris2, pred, 2) - acc) < 1e-9);

        /* Classes that are not 0..K-1: the probability columns are named
         * after them (from the model), the predictions are the labels. */
        write_iris(iris2, 2);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "iris3", iris2, "-q", NULL);
        EXPECT_RC(0, rc);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "iris3", "--model", "softmax",
                     "--mode", "full", "--epochs", "50", "--lr", "0.05", "--wait", "--json", NULL);
        EXPECT_RC(0, rc);
        snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)json_num(out, "job"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "predict", id_s, iris2, NULL);
        EXPECT_RC(0, rc);
        CHECK(strncmp(out, "prediction,p_3,p_5,p_7\n", 23) == 0);
        {
                int n = 0;
                for (char *p = strchr(out, '\n') + 1; *p; p = strchr(p, '\n') + 1, n++) {
                        double pr[3];
                        int v = (int)strtol(p, &p, 10), best = 0;
                        CHECK(sscanf(p, ",%lf,%lf,%lf", &pr[0], &pr[1], &pr[2]) == 3);
                        for (int k = 1; k < 3; k++)
                                if (pr[k] > pr[best])
                                        best = k;
                        CHECK(v == 3 + 2 * best);
                }
                CHECK(n == 150);
        }

        /* kmeans: cluster metrics, predictions without probabilities. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "train", "iris", "--model", "kmeans",
                     "--k", "3", "--mode", "full", "--wait", "--json", NULL);
        EXPECT_RC(0, rc);
        check_json_out(&d);
        CHECK(json_num(out, "inertia") > 0 && json_num(out, "mean_sq_distance") > 0);
        snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)json_num(out, "job"));
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "predict", id_s, iris, NULL);
        EXPECT_RC(0, rc);
        CHECK(strncmp(out, "prediction\n", 11) == 0);
        for (const char *p = out + 11; *p; p = strchr(p, '\n') + 1)
                CHECK(*p >= '0' && *p <= '2' && p[1] == '\n');
        daemon_stop(&d);
}

/* ---- group: cancel ---------------------------------------------------------------- */

/* The newest job, waiting until it runs (at most ~60 s). */
static uint64_t wait_running(struct dream_client *c)
{
        for (int i = 0; i < 600; i++) {
                struct dream_job_list *l = NULL;
                struct timespec ts = {0, 100000000};

                CHECK_OK(c, dream_jobs(c, &l));
                if (l->n > 0 && l->items[0]->state == DREAM_JOB_RUNNING) {
                        uint64_t id = l->items[0]->id;
                        dream_job_list_free(l);
                        return id;
                }
                CHECK(l->n == 0 || l->items[0]->state == DREAM_JOB_QUEUED);
                dream_job_list_free(l);
                nanosleep(&ts, NULL);
        }
        fprintf(stderr, "no job started running\n");
        fail_now();
}

static int watch_count(void *arg, const struct dream_job_info *j)
{
        int *n = arg;
        (void)j;
        (*n)++;
        return 0;
}

static void group_cancel(void)
{
        struct daemon d;
        char iris[128], id_s[32];
        struct dream_client *c;
        struct dream_job_info j = DREAM_INIT(struct dream_job_info);
        uint64_t id, id2;
        pid_t pid;
        int rc, n = 0;

        daemon_start(&d, NULL);
        path_in(&d, "iris.csv", iris, sizeof(iris));
        write_iris(iris, 0);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "ingest", "iris", iris, "-q", NULL);
        EXPECT_RC(0, rc);
        c = client(&d, NULL);

        /* A long mlp job, waited for by the CLI, cancelled (through
         * libdream: the CLI's output files are the async run's): exit 11. */
        pid = run_cli_async(&d, "train", "iris", "--model", "mlp", "--hidden", "512,512",
                            "--epochs", "100000", "--patience", "off", "--mode", "full", "--wait",
                            "--json", NULL);
        id = wait_running(c);
        CHECK_OK(c, dream_job_cancel(c, id, &j));
        CHECK(j.id == id && (j.state == DREAM_JOB_RUNNING || j.state == DREAM_JOB_CANCELLED));
        rc = cli_wait(&d, pid, out, sizeof(out), err, sizeof(err));
        EXPECT_RC(11, rc);
        check_json_out(&d);
        CHECK(strstr(out, "\"state\":\"cancelled\"") && json_num(out, "job") == (double)id);
        CHECK(strstr(err, "cancelled"));
        CHECK(json_num(out, "epoch") < 100000);
        snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)id);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "job", id_s, NULL);
        EXPECT_RC(0, rc);
        CHECK(strstr(out, "state            cancelled\n"));
        /* Cancelling it again: nothing to do, no error. */
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "cancel", id_s, NULL);
        EXPECT_RC(0, rc);
        CHECK(strstr(out, "cancelled"));

        /* Submitted through libdream, cancelled by the CLI, watched to its
         * end from another connection. */
        {
                struct dream_train_opts o = DREAM_INIT(struct dream_train_opts);
                struct dream_client *w = client(&d, NULL);
                dream_train_opts_default(&o);
                o.model = DREAM_MODEL_MLP;
                o.mode = DREAM_TRAIN_FULL;
                o.n_hidden = 2;
                o.hidden[0] = 512;
                o.hidden[1] = 512;
                o.epochs = 100000;
                o.early_stopping_off = 1; /* runs until cancelled */
                CHECK_OK(c, dream_train(c, "iris", &o, &id2));
                CHECK(id2 > id);
                CHECK(wait_running(c) == id2);
                snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)id2);
                rc =
                    run_cli(&d, out, sizeof(out), err, sizeof(err), "cancel", id_s, "--json", NULL);
                EXPECT_RC(0, rc);
                check_json_out(&d);
                CHECK(json_num(out, "job") == (double)id2);
                CHECK(strstr(out, "\"state\":\"running\"") ||
                      strstr(out, "\"state\":\"cancelled\""));
                CHECK_OK(w, dream_job_watch(w, id2, watch_count, &n, &j));
                CHECK(n >= 1 && j.state == DREAM_JOB_CANCELLED && !j.has_result);
                dream_close(w);
        }
        /* Ctrl-C while waiting: the job goes on, and the CLI says how to stop it. */
        {
                char want[128];
                uint64_t id3;

                pid = run_cli_async(&d, "train", "iris", "--model", "mlp", "--hidden", "512,512",
                                    "--epochs", "100000", "--patience", "off", "--mode", "full",
                                    "--wait", NULL);
                id3 = 0;
                for (int i = 0; id3 == 0; i++) {
                        struct dream_job_list *l = NULL;
                        struct timespec ts = {0, 50000000};

                        CHECK(i < 600); /* 30 s */
                        CHECK_OK(c, dream_jobs(c, &l));
                        if (l->n > 0 && l->items[0]->id > id2 &&
                            l->items[0]->state == DREAM_JOB_RUNNING)
                                id3 = l->items[0]->id;
                        dream_job_list_free(l);
                        if (!id3)
                                nanosleep(&ts, NULL);
                }
                CHECK(kill(pid, SIGINT) == 0);
                rc = cli_wait(&d, pid, out, sizeof(out), err, sizeof(err));
                EXPECT_RC(130, rc);
                snprintf(want, sizeof(want), "job %llu continues", (unsigned long long)id3);
                CHECK(strstr(err, want));
                snprintf(want, sizeof(want), "'dream cancel %llu'", (unsigned long long)id3);
                CHECK(strstr(err, want));
                CHECK_OK(c, dream_job_cancel(c, id3, &j));
                CHECK(j.state == DREAM_JOB_RUNNING || j.state == DREAM_JOB_CANCELLED);
        }
        /* A job that ended cannot predict. */
        snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)id2);
        rc = run_cli(&d, out, sizeof(out), err, sizeof(err), "predict", id_s, iris, NULL);
        CHECK(rc == 9 && strstr(err, "cancelled"));
        dream_close(c);
        daemon_stop(&d);
}

int main(int argc, char **argv)
{
        signal(SIGPIPE, SIG_IGN);
        if (argc != 2) {
                fprintf(stderr, "usage: test_train regression|classify|cancel\n");
                return 2;
        }
        if (strcmp(argv[1], "regression") == 0)
                group_regression();
        else if (strcmp(argv[1], "classify") == 0)
                group_classify();
        else if (strcmp(argv[1], "cancel") == 0)
                group_cancel();
        else
                return 2;
        return 0;
}
