/* Benchmark of train/ on raw data files written by make_data.py: fits one
 * model on the full training file and prints one JSON line with the fit
 * time, the memory figures and the test metrics. Not a test.
 *
 *   bench_train MODEL TRAIN.bin [TEST.bin] [--epochs E] [--batch B] [--lr X]
 *               [--l2 X] [--hidden H] [--k K] [--max-iter N] [--threads T]
 *               [--solver lbfgs|adam] [--lbfgs-iter N] [--lbfgs-tol X] [--var-scale A]
 *               [--task reg|class] [--exact] [--patience N] [--seed S]
 *               [--valid SHARE] [--valid-file VALID.bin]
 *
 * --valid SHARE sets a seeded share of the training file's rows aside as
 * problem->valid (MLP early stopping) and fits on the others; --valid-file
 * reads the validation rows from a file instead.
 */
#include "bench/train/data.h"
#include "common/alloc.h"
#include "common/err.h"
#include "train/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Move a seeded uniform choice of m rows to the end of the data (a partial
 * Fisher-Yates shuffle of whole rows, splitmix64). */
static void rows_to_end(struct bench_data *dt, size_t m, uint64_t seed)
{
        float *tmp = malloc(dt->d * sizeof(float));
        size_t row = dt->d * sizeof(float);
        for (size_t k = 0; k < m && tmp; k++) {
                size_t i = dt->n - 1 - k;
                uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
                z ^= z >> 31;
                size_t j = (size_t)(((unsigned __int128)z * (i + 1)) >> 64);
                float ty = dt->y[i];
                memcpy(tmp, dt->x + i * dt->d, row);
                memcpy(dt->x + i * dt->d, dt->x + j * dt->d, row);
                memcpy(dt->x + j * dt->d, tmp, row);
                dt->y[i] = dt->y[j];
                dt->y[j] = ty;
        }
        free(tmp);
}

static int progress(void *ctx, uint32_t epoch, uint32_t epochs, double loss)
{
        (void)ctx;
        fprintf(stderr, "\repoch %u/%u loss %.6g   ", epoch, epochs, loss);
        return 0;
}

int main(int argc, char **argv)
{
        enum train_kind kind;
        struct train_params p;
        struct train_problem pb = {0};
        struct train_model *m = NULL;
        struct train_metrics mt = {0};
        struct bench_data tr = {0}, te = {0}, va = {0};
        const char *test = NULL, *valid_file = NULL;
        int exact = 0, r, threads = 0;
        double valid_share = 0;
        size_t n_valid = 0;
        double t0, t1, c0, c1;

        if (argc < 3 || train_kind_parse(argv[1], &kind) < 0) {
                fprintf(stderr, "usage: bench_train MODEL TRAIN.bin [TEST.bin] [options]\n");
                return 2;
        }
        train_params_default(kind, &p);
        pb.task = kind == TRAIN_MLP ? TRAIN_TASK_CLASSIFICATION : 0;
        for (int i = 3; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
                if (strcmp(a, "--exact") == 0) {
                        exact = 1;
                        continue;
                }
                if (a[0] != '-') {
                        test = a;
                        continue;
                }
                i++;
                if (strcmp(a, "--epochs") == 0)
                        p.epochs = (uint32_t)atoi(v);
                else if (strcmp(a, "--batch") == 0)
                        p.batch = (uint32_t)atoi(v);
                else if (strcmp(a, "--lr") == 0)
                        p.lr = atof(v);
                else if (strcmp(a, "--l2") == 0)
                        p.l2 = atof(v);
                else if (strcmp(a, "--hidden") == 0)
                        r = train_hidden_parse(v, &p);
                else if (strcmp(a, "--k") == 0)
                        p.k = (uint32_t)atoi(v);
                else if (strcmp(a, "--max-iter") == 0)
                        p.max_iter = (uint32_t)atoi(v);
                else if (strcmp(a, "--solver") == 0)
                        p.solver = strcmp(v, "adam") == 0 ? TRAIN_SOLVER_ADAM : TRAIN_SOLVER_LBFGS;
                else if (strcmp(a, "--lbfgs-iter") == 0)
                        p.lbfgs_iter = (uint32_t)atoi(v);
                else if (strcmp(a, "--lbfgs-tol") == 0)
                        p.lbfgs_tol = atof(v);
                else if (strcmp(a, "--var-scale") == 0)
                        p.var_scale = atof(v);
                else if (strcmp(a, "--patience") == 0)
                        p.patience = (uint32_t)atoi(v);
                else if (strcmp(a, "--seed") == 0)
                        p.seed = strtoull(v, NULL, 10);
                else if (strcmp(a, "--valid-file") == 0)
                        valid_file = v;
                else if (strcmp(a, "--valid") == 0)
                        valid_share = atof(v);
                else if (strcmp(a, "--threads") == 0)
                        threads = atoi(v);
                else if (strcmp(a, "--task") == 0)
                        pb.task = strcmp(v, "reg") == 0 ? TRAIN_TASK_REGRESSION
                                                        : TRAIN_TASK_CLASSIFICATION;
                else {
                        fprintf(stderr, "bench_train: unknown option '%s'\n", a);
                        return 2;
                }
        }
        if (threads > 0)
                train_set_threads(threads);
        if (bench_data_load(argv[2], &tr) < 0 || (test && bench_data_load(test, &te) < 0)) {
                fprintf(stderr, "bench_train: cannot read the data files\n");
                return 1;
        }
        pb.d = tr.d;
        if (valid_share > 0 && valid_share < 1) {
                n_valid = (size_t)(valid_share * (double)tr.n + 0.5);
                rows_to_end(&tr, n_valid, p.seed);
        }
        struct train_view vv = {
            tr.x + (tr.n - n_valid) * tr.d, tr.y + (tr.n - n_valid), NULL, n_valid, tr.d, NULL};
        if (n_valid > 0)
                pb.valid = &vv;
        if (valid_file && bench_data_load(valid_file, &va) == 0) {
                vv = (struct train_view){va.x, va.y, NULL, va.n, va.d, NULL};
                pb.valid = &vv;
        } else if (valid_file) {
                fprintf(stderr, "bench_train: cannot read %s\n", valid_file);
                return 1;
        }
        struct train_view v = {tr.x, kind == TRAIN_KMEANS ? NULL : tr.y, NULL, tr.n - n_valid, tr.d,
                               NULL};
        t0 = bench_now();
        c0 = cpu();
        if (exact) {
                struct train_suffstats *s = NULL;
                r = train_suffstats_new(tr.d, &s);
                if (r == 0)
                        r = train_suffstats_add(s, &v);
                t1 = bench_now();
                fprintf(stderr, "statistics: %.3f s\n", t1 - t0);
                t0 = bench_now();
                c0 = cpu();
                if (r == 0)
                        r = train_fit_exact(kind, &p, &pb, s, NULL, NULL, &m);
                train_suffstats_free(s);
        } else {
                r = train_fit(kind, &p, &pb, &v, progress, NULL, &m);
        }
        t1 = bench_now();
        c1 = cpu();
        fprintf(stderr, "\n");
        if (r < 0) {
                fprintf(stderr, "bench_train: fit failed: %s\n", dream_strerror(r));
                return 1;
        }
        struct train_view tv = test ? (struct train_view){te.x, te.y, NULL, te.n, te.d, NULL} : v;
        if (kind == TRAIN_KMEANS)
                tv.y = NULL;
        r = train_evaluate(m, &tv, &mt);
        if (r < 0) {
                fprintf(stderr, "bench_train: evaluate failed: %s\n", dream_strerror(r));
                return 1;
        }
        printf("{\"engine\":\"dream\",\"model\":\"%s\",\"n\":%zu,\"d\":%u,\"threads\":%d,"
               "\"epochs\":%u,\"iterations\":%u,\"converged\":%u,\"valid_rows\":%zu,"
               "\"train_seconds\":%.4f,\"cpu_seconds\":%.4f,\"view_bytes\":%zu,"
               "\"work_bytes\":%llu,"
               "\"loss\":%.6g,\"rmse\":%.6g,\"r2\":%.6g,\"accuracy\":%.6g,\"macro_f1\":%.6g,"
               "\"logloss\":%.6g,\"inertia\":%.6g,\"solver\":\"%s\",\"l2\":%.6g,"
               "\"var_scale\":%.6g}\n",
               argv[1], v.n, tr.d, train_get_threads(), m->epochs_run, m->iterations, m->converged,
               pb.valid ? pb.valid->n : 0, t1 - t0, c1 - c0, train_view_bytes(&v),
               (unsigned long long)m->work_bytes, m->loss, mt.rmse, mt.r2, mt.accuracy, mt.macro_f1,
               mt.logloss, mt.inertia, m->params.solver == TRAIN_SOLVER_ADAM ? "adam" : "lbfgs",
               m->params.l2, m->params.var_scale);
        train_model_free(m);
        bench_data_release(&tr);
        bench_data_release(&te);
        bench_data_release(&va);
        return 0;
}
