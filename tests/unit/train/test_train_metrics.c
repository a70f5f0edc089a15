/* Metrics against hand-computed values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "util.h"

#define CLOSE(a, b) assert_true(fabs((a) - (b)) < 1e-12)

static void test_regression(void **state)
{
        (void)state;
        float y[4] = {1, 2, 3, 4};
        double pred[4] = {1.5, 2, 2, 5};
        struct train_metrics m;
        assert_int_equal(train_metrics_regression(y, pred, NULL, 4, &m), 0);
        assert_int_equal(m.task, TRAIN_TASK_REGRESSION);
        CLOSE(m.rmse, 0.75);
        CLOSE(m.mae, 0.625);
        CLOSE(m.r2, 0.55);
        CLOSE(m.weight, 4);
        /* Weight 2 on the first row == the row twice. */
        float w[4] = {2, 1, 1, 1};
        assert_int_equal(train_metrics_regression(y, pred, w, 4, &m), 0);
        CLOSE(m.rmse, sqrt(0.5));
        CLOSE(m.mae, 0.6);
        CLOSE(m.r2, 1 - 2.5 / 6.8);
        /* Constant targets: r2 1 when perfect, 0 otherwise (as sklearn). */
        float c[2] = {3, 3};
        double pc[2] = {3, 3}, pc2[2] = {3, 4};
        assert_int_equal(train_metrics_regression(c, pc, NULL, 2, &m), 0);
        CLOSE(m.r2, 1);
        assert_int_equal(train_metrics_regression(c, pc2, NULL, 2, &m), 0);
        CLOSE(m.r2, 0);
        assert_int_equal(train_metrics_regression(c, pc, NULL, 0, &m), DREAM_E_EMPTY);
}

static void test_classification(void **state)
{
        (void)state;
        float y[6] = {0, 0, 1, 2, 2, 1};
        double p[18] = {0.7, 0.2, 0.1, 0.2, 0.5, 0.3, 0.1, 0.8,  0.1,
                        0.3, 0.3, 0.4, 0.6, 0.2, 0.2, 0.5, 0.25, 0.25};
        struct train_metrics m;
        assert_int_equal(train_metrics_classification(y, p, 3, NULL, 6, &m), 0);
        assert_int_equal(m.task, TRAIN_TASK_CLASSIFICATION);
        CLOSE(m.accuracy, 0.5);
        CLOSE(m.macro_f1, (0.4 + 0.5 + 2.0 / 3) / 3);
        CLOSE(m.logloss, -(log(0.7) + log(0.2) + log(0.8) + log(0.4) + log(0.2) + log(0.25)) / 6);
        /* Weights: row 2 (correct, class 1) three times. */
        float w[6] = {1, 1, 3, 1, 1, 1};
        assert_int_equal(train_metrics_classification(y, p, 3, w, 6, &m), 0);
        CLOSE(m.accuracy, 5.0 / 8);
        /* class 1: TP 3, FP 1, FN 1 -> 6/8. */
        CLOSE(m.macro_f1, (0.4 + 0.75 + 2.0 / 3) / 3);
        /* A class in neither labels nor predictions does not count. */
        float y4[2] = {0, 1};
        double p4[8] = {0.9, 0.1, 0, 0, 0.1, 0.9, 0, 0};
        assert_int_equal(train_metrics_classification(y4, p4, 4, NULL, 2, &m), 0);
        CLOSE(m.macro_f1, 1);
        CLOSE(m.accuracy, 1);
        /* p = 0 for the true class: clipped, finite. */
        double pz[4] = {0, 1, 1, 0};
        assert_int_equal(train_metrics_classification(y4, pz, 2, NULL, 2, &m), 0);
        CLOSE(m.logloss, -log(1e-15));
        CLOSE(m.accuracy, 0);
        CLOSE(m.macro_f1, 0);
        /* Labels out of range. */
        float yb[2] = {0, 2};
        assert_int_equal(train_metrics_classification(yb, pz, 2, NULL, 2, &m), DREAM_E_RANGE);
        assert_int_equal(train_metrics_classification(y4, pz, 0, NULL, 2, &m), DREAM_E_INVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_regression),
            cmocka_unit_test(test_classification),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
