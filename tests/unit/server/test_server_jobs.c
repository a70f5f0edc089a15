/* Job records: a record written today reads back with every result field;
 * records of the two earlier layouts (DBJ2, DBJ1) still read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "server/jobs_internal.h"

static struct tjob *done_job(void)
{
        struct tjob *t = dm_calloc(1, sizeof(*t));
        Dream__V1__Train *m = dm_calloc(1, sizeof(*m));
        uint8_t *packed;
        size_t len;

        assert_non_null(t);
        assert_non_null(m);
        dream__v1__train__init(m);
        m->dataset = "reg";
        m->model = DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE;
        m->mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL;
        m->holdout = 0.25;
        m->test_dataset = "";
        len = dream__v1__train__get_packed_size(m);
        packed = dm_malloc(len + 1);
        dream__v1__train__pack(m, packed);
        t->train = dream__v1__train__unpack(NULL, len, packed);
        dm_free(packed);
        dm_free(m);
        t->id = 7;
        t->state = DREAM__V1__JOB_STATE__JOB_STATE_DONE;
        t->target = 3;
        t->n_cols = 4;
        t->dataset_id = 11;
        t->has_result = true;
        t->res.task = TRAIN_TASK_REGRESSION;
        t->res.has_metrics = true;
        t->res.m.rmse = 0.5;
        t->res.rows_used = 2250;
        t->res.evaluated = 750;
        snprintf(t->res.evaluated_on, sizeof(t->res.evaluated_on), "holdout");
        t->res.holdout_share = 0.25;
        t->res.holdout_rows = 750;
        t->res.fit_loss = 0.125;
        t->res.iterations = 12;
        t->res.converged = true;
        t->res.wall_seconds = 3.5;
        t->res.prep_seconds = 1.25;
        t->res.prep_cached = true;
        t->res.l2 = 1.0;
        t->res.var_scale = 0.5;
        return t;
}

/* Load one record into an empty table: the job, or NULL when skipped. */
static struct tjob *load(struct srv_jobs *J, const uint8_t *rec, size_t len)
{
        struct load_ctx lc = {.J = J};

        assert_int_equal(srv_job_load_cb(&lc, 7, rec, len, 0), 0);
        return J->all;
}

static void test_round_trip(void **state)
{
        struct srv_jobs J = {0};
        struct tjob *t = done_job(), *u;
        uint8_t *rec = NULL;
        size_t len = 0;
        struct record pr;

        (void)state;
        pthread_mutex_init(&J.lock, NULL);
        assert_int_equal(srv_job_record_build(&J, t, 0, (const uint8_t *)"M", 1, &rec, &len), 0);
        assert_int_equal(dm_get_le32(rec), RECORD_MAGIC);
        assert_int_equal(srv_job_record_parse(rec, len, &pr), 0);
        assert_int_equal(pr.dataset_id, 11);
        assert_int_equal(pr.model_len, 1);
        u = load(&J, rec, len);
        assert_non_null(u);
        assert_true(u->has_result);
        assert_string_equal(u->res.evaluated_on, "holdout");
        assert_true(u->res.holdout_share == 0.25 && u->res.holdout_rows == 750);
        assert_true(u->res.fit_loss == 0.125 && u->res.iterations == 12 && u->res.converged);
        assert_true(u->res.wall_seconds == 3.5 && u->res.prep_cached);
        assert_true(u->res.l2 == 1.0 && u->res.var_scale == 0.5);
        assert_true(u->res.m.rmse == 0.5 && u->res.evaluated == 750);
        assert_true(u->train->holdout == 0.25);
        srv_job_free(u);
        J.all = NULL;

        /* The same bytes under the DBJ2 magic: read alike. */
        dm_put_le32(rec, RECORD_MAGIC_2);
        u = load(&J, rec, len);
        assert_non_null(u);
        assert_int_equal(u->dataset_id, 11);
        assert_string_equal(u->res.evaluated_on, "holdout");
        srv_job_free(u);
        J.all = NULL;

        /* DBJ1: no dataset ids (a 20-byte head). */
        {
                size_t body = len - RECORD_HEAD;
                uint8_t *old = dm_malloc(RECORD_HEAD_1 + body);
                memcpy(old, rec, RECORD_HEAD_1);
                dm_put_le32(old, RECORD_MAGIC_1);
                memcpy(old + RECORD_HEAD_1, rec + RECORD_HEAD, body);
                u = load(&J, old, RECORD_HEAD_1 + body);
                assert_non_null(u);
                assert_int_equal(u->dataset_id, 0);
                assert_int_equal(u->target, 3);
                assert_true(u->res.m.rmse == 0.5);
                srv_job_free(u);
                J.all = NULL;
                dm_free(old);
        }
        /* An unknown magic is skipped. */
        dm_put_le32(rec, 0x344a4244u);
        assert_null(load(&J, rec, len));
        dm_free(rec);
        srv_job_free(t);
        pthread_mutex_destroy(&J.lock);
}

/* The mode an unset Train.mode runs in. */
static void test_default_mode(void **state)
{
        Dream__V1__Train m = DREAM__V1__TRAIN__INIT;
        Dream__V1__Budget b = DREAM__V1__BUDGET__INIT;

        (void)state;
        m.model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR;
        assert_int_equal(srv_job_default_mode(&m, 3), DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT);
        m.model = DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE;
        assert_int_equal(srv_job_default_mode(&m, 3), DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT);
        /* Wider than the store keeps X'X for. */
        assert_int_equal(srv_job_default_mode(&m, 100000),
                         DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED);
        b.kind_case = DREAM__V1__BUDGET__KIND_ROWS;
        b.rows = 10;
        m.budget = &b;
        assert_int_equal(srv_job_default_mode(&m, 3), DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED);
        m.budget = NULL;
        for (int k = DREAM__V1__MODEL_KIND__MODEL_KIND_LOGISTIC;
             k <= DREAM__V1__MODEL_KIND__MODEL_KIND_KMEANS; k++) {
                m.model = k;
                assert_int_equal(srv_job_default_mode(&m, 3),
                                 DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED);
        }
        m.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL;
        assert_int_equal(srv_job_default_mode(&m, 3), DREAM__V1__TRAIN_MODE__TRAIN_MODE_FULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_default_mode),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
