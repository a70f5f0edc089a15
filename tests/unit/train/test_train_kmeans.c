/* Weighted k-means: finds well-separated blobs, weights as repeated rows,
 * too few rows, inertia. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "util.h"

#include <string.h>

static void test_three_blobs(void **state)
{
        (void)state;
        size_t n = 3000;
        uint32_t d = 3, k = 3;
        double centres[] = {0, 0, 0, 10, 10, 0, -10, 10, 100};
        float *x = malloc(n * d * 4);
        gen_blobs(n, d, k, centres, 0.5, 12, x, NULL);
        struct train_view v = {x, NULL, NULL, n, d, NULL};
        struct train_params p;
        struct train_problem pb = {.d = d};
        struct train_model *m = NULL;
        train_params_default(TRAIN_KMEANS, &p);
        p.k = k;
        assert_int_equal(train_fit(TRAIN_KMEANS, &p, &pb, &v, NULL, NULL, &m), 0);
        assert_int_equal(m->task, TRAIN_TASK_CLUSTERING);
        int found[3] = {0, 0, 0};
        for (uint32_t j = 0; j < k; j++) {
                double c[3];
                assert_int_equal(train_kmeans_centre(m, j, c), 0);
                for (uint32_t t = 0; t < k; t++) {
                        double e = 0;
                        for (uint32_t q = 0; q < d; q++)
                                e += (c[q] - centres[t * d + q]) * (c[q] - centres[t * d + q]);
                        if (sqrt(e) < 0.1)
                                found[t]++;
                }
                /* Each cluster holds a third of the weight. */
                assert_true(fabs(m->layers[0].b[j] - 1000) < 1e-9);
        }
        assert_int_equal(found[0], 1);
        assert_int_equal(found[1], 1);
        assert_int_equal(found[2], 1);
        /* Predictions: rows of one blob share a cluster id. */
        double id[6];
        assert_int_equal(train_predict(m, x, 6, id, NULL), 0);
        assert_true(id[0] == id[3] && id[1] == id[4] && id[2] == id[5]);
        assert_true(id[0] != id[1] && id[1] != id[2] && id[0] != id[2]);
        struct train_metrics mt;
        assert_int_equal(train_evaluate(m, &v, &mt), 0);
        assert_true(rel_diff(mt.inertia / n, mt.msd) < 1e-12);
        assert_true(rel_diff(mt.msd, m->loss) < 1e-3);
        assert_true(mt.msd < 0.05);
        train_model_free(m);
        free(x);
}

static void test_weights_and_inertia(void **state)
{
        (void)state;
        /* 1-d, unstandardised: points 0, 1 (weight 3) and 10 with k = 2:
         * centres 0.75 and 10, inertia 3 * 0.0625 + 0.5625 = 0.75. */
        float x[3] = {0, 1, 10}, w[3] = {1, 3, 1};
        struct train_view v = {x, NULL, w, 3, 1, NULL};
        struct train_params p;
        struct train_problem pb = {.d = 1};
        struct train_model *m = NULL;
        train_params_default(TRAIN_KMEANS, &p);
        p.k = 2;
        p.standardize = 0;
        assert_int_equal(train_fit(TRAIN_KMEANS, &p, &pb, &v, NULL, NULL, &m), 0);
        double c0 = m->layers[0].w[0], c1 = m->layers[0].w[1];
        double lo = c0 < c1 ? c0 : c1, hi = c0 < c1 ? c1 : c0;
        assert_true(fabs(lo - 0.75) < 1e-6);
        assert_true(fabs(hi - 10) < 1e-6);
        struct train_metrics mt;
        assert_int_equal(train_evaluate(m, &v, &mt), 0);
        assert_true(fabs(mt.inertia - 0.75) < 1e-9);
        assert_true(fabs(mt.msd - 0.15) < 1e-9);
        assert_true(fabs(mt.weight - 5) < 1e-12);
        train_model_free(m);
        m = NULL;
        /* k = 1 on standardised data: inertia = n * d. */
        float x2[8] = {1, 5, 2, 7, 3, 9, 4, 2};
        struct train_view v2 = {x2, NULL, NULL, 4, 2, NULL};
        struct train_problem pb2 = {.d = 2};
        train_params_default(TRAIN_KMEANS, &p);
        p.k = 1;
        assert_int_equal(train_fit(TRAIN_KMEANS, &p, &pb2, &v2, NULL, NULL, &m), 0);
        assert_int_equal(train_evaluate(m, &v2, &mt), 0);
        assert_true(fabs(mt.inertia - 8) < 1e-5);
        train_model_free(m);
        m = NULL;
        /* Fewer weighted rows than clusters. */
        p.k = 4;
        float w0[4] = {1, 0, 1, 1};
        v2.w = w0;
        assert_int_equal(train_fit(TRAIN_KMEANS, &p, &pb2, &v2, NULL, NULL, &m), DREAM_E_INVAL);
        assert_null(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_three_blobs),
            cmocka_unit_test(test_weights_and_inertia),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
