/* Model bytes: round trip with identical predictions for every kind,
 * truncated and corrupt input rejected without crashing, allocation failure
 * injection; JSON export. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "util.h"

#include <string.h>

#define N 240
#define D 3

static float X[N * D], Y[N], YR[N];

static uint64_t fnv(const uint8_t *p, size_t n)
{
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 0x100000001b3ull;
        }
        return h;
}

static void fix_checksum(uint8_t *b, size_t len)
{
        uint64_t h = fnv(b, len - 8);
        for (int i = 0; i < 8; i++)
                b[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void make_data(void)
{
        double centres[] = {0, 0, 0, 3, 3, 0, 0, 3, 3};
        gen_blobs(N, D, 3, centres, 0.7, 21, X, Y);
        for (size_t i = 0; i < N; i++)
                YR[i] = X[i * D] * 2 - X[i * D + 2] + 5;
}

static struct train_model *fit_kind(enum train_kind kind, uint32_t layers)
{
        struct train_params p;
        struct train_problem pb = {.d = D};
        struct train_view v = {X, Y, NULL, N, D, NULL};
        struct train_model *m = NULL;
        double classes[3] = {-1, 0.5, 7};
        float y2[N];
        train_params_default(kind, &p);
        p.epochs = 3;
        p.k = 3;
        switch (kind) {
        case TRAIN_LINEAR:
        case TRAIN_RIDGE:
                v.y = YR;
                break;
        case TRAIN_LOGISTIC:
                for (size_t i = 0; i < N; i++)
                        y2[i] = Y[i] > 0 ? 1.0f : 0.0f;
                v.y = y2;
                break;
        case TRAIN_SOFTMAX:
                pb.classes = classes;
                break;
        case TRAIN_MLP:
                pb.task = layers == 2 ? TRAIN_TASK_REGRESSION : TRAIN_TASK_CLASSIFICATION;
                if (layers == 2) {
                        v.y = YR;
                        assert_int_equal(train_hidden_parse("7,5", &p), 0);
                } else {
                        p.hidden[0] = 6;
                }
                break;
        case TRAIN_KMEANS:
                v.y = NULL;
                break;
        }
        assert_int_equal(train_fit(kind, &p, &pb, &v, NULL, NULL, &m), 0);
        return m;
}

static void same_predictions(const struct train_model *a, const struct train_model *b)
{
        double va[N], vb[N];
        uint32_t w = train_model_proba_width(a);
        double *pa = malloc(N * (w ? w : 1) * sizeof(double)),
               *pbb = malloc(N * (w ? w : 1) * sizeof(double));
        assert_int_equal(w, train_model_proba_width(b));
        assert_int_equal(train_predict(a, X, N, va, w ? pa : NULL), 0);
        assert_int_equal(train_predict(b, X, N, vb, w ? pbb : NULL), 0);
        assert_memory_equal(va, vb, sizeof(va));
        if (w)
                assert_memory_equal(pa, pbb, N * w * sizeof(double));
        free(pa);
        free(pbb);
}

static void test_round_trip(void **state)
{
        (void)state;
        for (int kind = TRAIN_LINEAR; kind <= TRAIN_KMEANS; kind++) {
                for (uint32_t layers = 1; layers <= (kind == TRAIN_MLP ? 2u : 1u); layers++) {
                        struct train_model *m = fit_kind((enum train_kind)kind, layers), *m2 = NULL;
                        uint8_t *b = NULL, *b2 = NULL;
                        size_t len = 0, len2 = 0;
                        assert_int_equal(train_model_to_bytes(m, &b, &len), 0);
                        assert_int_equal(train_model_from_bytes(b, len, &m2), 0);
                        same_predictions(m, m2);
                        assert_int_equal(m2->kind, m->kind);
                        assert_int_equal(m2->task, m->task);
                        assert_int_equal(m2->epochs_run, m->epochs_run);
                        assert_true(m2->loss == m->loss);
                        assert_true(m2->params.lr == m->params.lr);
                        assert_int_equal(m2->iterations, m->iterations);
                        assert_int_equal(m2->converged, m->converged);
                        assert_int_equal(m2->params.solver, m->params.solver);
                        assert_int_equal(m2->params.lbfgs_iter, m->params.lbfgs_iter);
                        assert_true(m2->params.lbfgs_tol == m->params.lbfgs_tol);
                        assert_true(m2->params.var_scale == m->params.var_scale);
                        assert_true(m2->params.l2 == m->params.l2);
                        assert_true((m->classes == NULL) == (m2->classes == NULL));
                        assert_int_equal(train_model_to_bytes(m2, &b2, &len2), 0);
                        assert_int_equal(len, len2);
                        assert_memory_equal(b, b2, len);

                        /* JSON mentions the essentials. */
                        char *js = NULL;
                        size_t jl = 0;
                        assert_int_equal(train_model_to_json(m, &js, &jl), 0);
                        assert_int_equal(strlen(js), jl);
                        assert_non_null(strstr(js, train_kind_name(m->kind)));
                        assert_non_null(strstr(js, "\"standardisation\":{\"mean\":["));
                        assert_non_null(strstr(js, "\"layers\":[{\"in\":3,"));
                        assert_non_null(strstr(js, "\"hyper_parameters\""));
                        if (kind == TRAIN_SOFTMAX)
                                assert_non_null(strstr(js, "\"classes\":[-1,0.5,7]"));
                        if (kind == TRAIN_KMEANS)
                                assert_non_null(strstr(js, "\"centres_original\""));
                        if (kind == TRAIN_SOFTMAX || kind == TRAIN_LOGISTIC) {
                                assert_non_null(strstr(js, "\"solver\":\"lbfgs\""));
                                assert_non_null(strstr(js, "\"converged\":"));
                                assert_non_null(strstr(js, "\"iterations\":"));
                                assert_true(m->iterations > 0);
                        }
                        dm_free(js);
                        dm_free(b);
                        dm_free(b2);
                        train_model_free(m);
                        train_model_free(m2);
                }
        }
        train_model_free(NULL);
}

static void test_truncated_and_corrupt(void **state)
{
        (void)state;
        struct train_model *m = fit_kind(TRAIN_MLP, 2), *m2 = NULL;
        uint8_t *b = NULL;
        size_t len = 0;
        struct rng r;
        assert_int_equal(train_model_to_bytes(m, &b, &len), 0);

        /* Every prefix fails. */
        for (size_t l = 0; l < len; l++) {
                int e = train_model_from_bytes(b, l, &m2);
                assert_true(e < 0);
                assert_null(m2);
        }
        /* Every single flipped byte is caught (checksum or magic). */
        uint8_t *c = malloc(len);
        for (size_t i = 0; i < len; i++) {
                memcpy(c, b, len);
                c[i] ^= 0x5a;
                assert_true(train_model_from_bytes(c, len, &m2) < 0);
                assert_null(m2);
        }
        /* With the checksum fixed up, the structural checks must hold: the
         * header counts, shapes and non-finite numbers. */
        static const struct {
                size_t off;
                uint32_t v;
        } bad[] = {
            {4, 3},           /* version */
            {4, 0},           /* version */
            {8, 0},           /* kind */
            {8, 77},          /* kind */
            {12, 3},          /* task */
            {16, 0},          /* d */
            {16, 0xffffffff}, /* d */
            {16, 4},          /* d: shapes no longer add up */
            {20, 5},          /* n_classes of a regression */
            {24, 2},          /* n_layers */
            {24, 4},          /* n_layers */
            {40, 1},          /* n_hidden */
            {28, 1},          /* has_classes */
            {32, 0},          /* epochs */
            {44, 0},          /* hidden[0] */
            {48, 65537},      /* hidden[1] */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                memcpy(c, b, len);
                memcpy(c + bad[i].off, &bad[i].v, 4);
                fix_checksum(c, len);
                if (train_model_from_bytes(c, len, &m2) >= 0)
                        fail_msg("bad header field %zu accepted", i);
                assert_null(m2);
        }
        /* Shapes that disagree with each other but have consistent lengths
         * (written from a doctored model): hidden layer 1 claims 6 inputs
         * where layer 0 gives 7, and layer 0 claims 2 inputs for d = 3. */
        for (int which = 0; which < 2; which++) {
                uint8_t *db = NULL;
                size_t dl = 0;
                uint32_t keep = m->layers[which].in;
                m->layers[which].in = which == 0 ? 2 : 6;
                assert_int_equal(train_model_to_bytes(m, &db, &dl), 0);
                m->layers[which].in = keep;
                assert_int_equal(train_model_from_bytes(db, dl, &m2), DREAM_E_CORRUPT);
                assert_null(m2);
                dm_free(db);
        }
        /* A NaN weight. */
        memcpy(c, b, len);
        double nan = NAN;
        memcpy(c + len - 8 - 8, &nan, 8);
        fix_checksum(c, len);
        assert_int_equal(train_model_from_bytes(c, len, &m2), DREAM_E_CORRUPT);
        /* Trailing bytes. */
        uint8_t *longer = malloc(len + 8);
        memcpy(longer, b, len - 8);
        memset(longer + len - 8, 0, 8);
        fix_checksum(longer, len + 8);
        assert_int_equal(train_model_from_bytes(longer, len + 8, &m2), DREAM_E_CORRUPT);
        free(longer);
        /* Random mutations with a valid checksum: never a crash; whatever
         * decodes must predict. */
        rng_seed(&r, 99);
        for (int it = 0; it < 3000; it++) {
                memcpy(c, b, len);
                int flips = 1 + (int)rng_below(&r, 4);
                for (int f = 0; f < flips; f++)
                        c[rng_below(&r, len - 8)] = (uint8_t)rng_next(&r);
                fix_checksum(c, len);
                if (train_model_from_bytes(c, len, &m2) == 0) {
                        double v[4];
                        assert_int_equal(train_predict(m2, X, 4, v, NULL), 0);
                        train_model_free(m2);
                        m2 = NULL;
                }
        }
        assert_int_equal(train_model_from_bytes(b, len, &m2), 0);
        train_model_free(m2);
        free(c);
        dm_free(b);
        train_model_free(m);
}

/* Version 1 bytes (before solver, lbfgs_iter, l2_fixed, lbfgs_tol,
 * var_scale, iterations and converged) still decode: an Adam model with
 * iterations = epochs_run. */
static void test_read_version1(void **state)
{
        (void)state;
        struct train_params p;
        struct train_problem pb = {.d = D};
        struct train_view v = {X, Y, NULL, N, D, NULL};
        struct train_model *m = NULL, *m1 = NULL;
        uint8_t *b = NULL;
        size_t len = 0;
        train_params_default(TRAIN_SOFTMAX, &p);
        p.solver = TRAIN_SOLVER_ADAM;
        p.epochs = 3;
        assert_int_equal(train_fit(TRAIN_SOFTMAX, &p, &pb, &v, NULL, NULL, &m), 0);
        assert_int_equal(train_model_to_bytes(m, &b, &len), 0);
        /* v2: [0, 96) header to tol, [96, 124) the new parameters, [124, 152)
         * the fit facts, [152, 160) iterations and converged, then the rest. */
        uint8_t *o = malloc(len);
        size_t ol = 0;
        memcpy(o, b, 96);
        ol = 96;
        memcpy(o + ol, b + 124, 28);
        ol += 28;
        memcpy(o + ol, b + 160, len - 160);
        ol += len - 160;
        uint32_t one = 1;
        memcpy(o + 4, &one, 4);
        fix_checksum(o, ol);
        assert_int_equal(train_model_from_bytes(o, ol, &m1), 0);
        same_predictions(m, m1);
        assert_int_equal(m1->params.solver, TRAIN_SOLVER_ADAM);
        assert_int_equal(m1->iterations, m->epochs_run);
        assert_int_equal(m1->converged, 0);
        assert_true(m1->loss == m->loss);
        train_model_free(m1);
        free(o);
        dm_free(b);
        train_model_free(m);
}

static void test_alloc_failures(void **state)
{
        (void)state;
        struct train_model *m = fit_kind(TRAIN_MLP, 2), *m2 = NULL;
        uint8_t *b = NULL;
        size_t len = 0;
        int r;
        assert_int_equal(train_model_to_bytes(m, &b, &len), 0);
        for (unsigned long nth = 1;; nth++) {
                dm_alloc_fail_at(nth, 0);
                r = train_model_from_bytes(b, len, &m2);
                dm_alloc_fail_at(0, 0);
                if (r == 0)
                        break;
                assert_int_equal(r, DREAM_E_NOMEM);
                assert_null(m2);
        }
        train_model_free(m2);
        /* Fitting under allocation failure: NOMEM, never a crash. */
        for (int kind = TRAIN_LINEAR; kind <= TRAIN_KMEANS; kind++) {
                for (unsigned long nth = 1;; nth++) {
                        struct train_model *f = NULL;
                        struct train_params p;
                        struct train_problem pb = {.d = D, .task = TRAIN_TASK_CLASSIFICATION};
                        float y2[N];
                        struct train_view v = {X, Y, NULL, N, D, NULL};
                        if (kind <= TRAIN_RIDGE)
                                v.y = YR;
                        if (kind == TRAIN_LOGISTIC) {
                                for (size_t i = 0; i < N; i++)
                                        y2[i] = Y[i] > 0;
                                v.y = y2;
                        }
                        train_params_default((enum train_kind)kind, &p);
                        p.epochs = 2;
                        p.k = 3;
                        dm_alloc_fail_at(nth, 1);
                        r = train_fit((enum train_kind)kind, &p, &pb, &v, NULL, NULL, &f);
                        dm_alloc_fail_at(0, 0);
                        if (r == 0) {
                                train_model_free(f);
                                break;
                        }
                        assert_int_equal(r, DREAM_E_NOMEM);
                        assert_null(f);
                }
        }
        dm_free(b);
        train_model_free(m);
}

int main(void)
{
        make_data();
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_truncated_and_corrupt),
            cmocka_unit_test(test_alloc_failures),
            cmocka_unit_test(test_read_version1),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
