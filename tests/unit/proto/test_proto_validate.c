/* Decoding and validation: each validator accepts a good message and
 * refuses each kind of bad one with the expected code and a message naming
 * the field; malformed protobuf fails cleanly; allocation failures. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "proto/validate.h"

/* ---- fixture: one good message of every kind ---------------------------- */

#define NR 10 /* rows of the ingest fixture */
#define NC 3  /* its columns */

static struct fx {
        Dream__V1__Request req;
        Dream__V1__Hello hello;
        Dream__V1__CreateDataset create;
        Dream__V1__ColumnSpec spec[NC];
        Dream__V1__ColumnSpec *specs[NC];
        Dream__V1__Ingest ingest;
        Dream__V1__Columns cols;
        Dream__V1__ColumnValues cv[NC];
        Dream__V1__ColumnValues *cvs[NC];
        uint8_t raw[NC][NR * 8];
        Dream__V1__Export exp;
        Dream__V1__GetBatches gb;
        Dream__V1__Budget budget;
        Dream__V1__Train train;
        uint32_t hidden[3];
        Dream__V1__Predict pred;
        Dream__V1__FloatMatrix fm;
        uint8_t feats[4 * 2 * 4];
        Dream__V1__Backup backup;
        Dream__V1__DescribeDataset describe;
        Dream__V1__JobStatus job;
        Dream__V1__JobWatch watch;
        Dream__V1__JobCancel cancel;
        Dream__V1__ServerInfo info;
} F;

static void fx_reset(void)
{
        static const char *names[NC] = {"sepal.length", "petal width (cm)", "class"};
        static const Dream__V1__ColumnKind kinds[NC] = {
            DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL,
            DREAM__V1__COLUMN_KIND__COLUMN_KIND_F64,
            DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT,
        };
        int64_t v[NR];

        memset(&F, 0, sizeof(F));
        dream__v1__request__init(&F.req);
        F.req.request_id = 1;
        dream__v1__hello__init(&F.hello);
        F.hello.protocol_version = DREAM_PROTOCOL_VERSION;
        F.hello.client_name = "test/1";
        F.hello.token = "secret";

        dream__v1__create_dataset__init(&F.create);
        for (int i = 0; i < NC; i++) {
                dream__v1__column_spec__init(&F.spec[i]);
                F.spec[i].name = (char *)names[i];
                F.spec[i].kind = kinds[i];
                F.spec[i].scale = i == 0 ? 2 : 0;
                F.specs[i] = &F.spec[i];
        }
        F.create.name = "iris";
        F.create.n_columns = NC;
        F.create.columns = F.specs;
        F.create.target = "class";
        F.create.task = DREAM__V1__TASK__TASK_CLASSIFICATION;
        F.create.class_count = 3;

        dream__v1__ingest__init(&F.ingest);
        dream__v1__columns__init(&F.cols);
        for (int i = 0; i < NC; i++) {
                for (int r = 0; r < NR; r++)
                        v[r] = (int64_t)(r * 1000 + i) - 5000;
                proto_values_put(F.raw[i], v, NR);
                dream__v1__column_values__init(&F.cv[i]);
                F.cv[i].kind = kinds[i];
                F.cv[i].scale = i == 0 ? 2 : 0;
                F.cv[i].values.data = F.raw[i];
                F.cv[i].values.len = NR * 8;
                F.cvs[i] = &F.cv[i];
        }
        F.cols.n_rows = NR;
        F.cols.n_columns = NC;
        F.cols.columns = F.cvs;
        F.ingest.dataset = "iris";
        F.ingest.client_batch_id = 42;
        F.ingest.rows = &F.cols;

        dream__v1__export__init(&F.exp);
        F.exp.dataset = "iris";
        F.exp.first_row = 5;
        F.exp.row_count = 100;

        dream__v1__budget__init(&F.budget);
        F.budget.kind_case = DREAM__V1__BUDGET__KIND_FRACTION;
        F.budget.fraction = 0.01;
        dream__v1__get_batches__init(&F.gb);
        F.gb.dataset = "iris";
        F.gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_CONDENSED;
        F.gb.batch_size = 256;
        F.gb.budget = &F.budget;
        F.gb.order = DREAM__V1__BIT_ORDER__BIT_ORDER_ENTROPY;

        dream__v1__train__init(&F.train);
        F.train.dataset = "iris";
        F.train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP;
        F.train.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED;
        F.train.budget = &F.budget;
        F.train.epochs = 10;
        F.train.lr = 0.001;
        F.train.batch_size = 128;
        F.hidden[0] = 256;
        F.hidden[1] = 128;
        F.train.n_hidden = 2;
        F.train.hidden = F.hidden;
        F.train.l2 = 1e-4;
        F.train.test_dataset = "iris-test";

        dream__v1__predict__init(&F.pred);
        dream__v1__float_matrix__init(&F.fm);
        F.fm.n = 4;
        F.fm.d = 2;
        F.fm.values.data = F.feats;
        F.fm.values.len = sizeof(F.feats);
        F.pred.job_id = 3;
        F.pred.input_case = DREAM__V1__PREDICT__INPUT_FEATURES;
        F.pred.features = &F.fm;

        dream__v1__backup__init(&F.backup);
        F.backup.path = "/var/backups/dream";
        dream__v1__describe_dataset__init(&F.describe);
        F.describe.name = "iris";
        dream__v1__job_status__init(&F.job);
        F.job.job_id = 9;
        dream__v1__job_watch__init(&F.watch);
        F.watch.job_id = 9;
        dream__v1__job_cancel__init(&F.cancel);
        F.cancel.job_id = 9;
        dream__v1__server_info__init(&F.info);
}

#define USE(field, member, CASE)                                                                   \
        do {                                                                                       \
                F.req.body_case = DREAM__V1__REQUEST__BODY_##CASE;                                 \
                F.req.member = &F.field;                                                           \
        } while (0)

/* Validate F.req directly and after pack + decode: same code both ways,
 * message containing `want` on failure. */
static void expect(int code, const char *want)
{
        char msg[256] = "";
        char msg2[256] = "";
        proto_request *out = NULL;
        size_t len = dream__v1__request__get_packed_size(&F.req);
        uint8_t *buf = malloc(len ? len : 1);
        int r, r2;

        dream__v1__request__pack(&F.req, buf);
        r = proto_request_validate(&F.req, msg, sizeof(msg));
        r2 = proto_request_decode(buf, len, msg2, sizeof(msg2), &out);
        if (r != code || r2 != code)
                fail_msg("expected %s, got %s / %s: '%s' / '%s'", dream_errname(code),
                         dream_errname(r), dream_errname(r2), msg, msg2);
        if (code == 0) {
                assert_string_equal(msg, "");
                assert_non_null(out);
                proto_request_free(out);
        } else {
                assert_null(out);
                if (want && !strstr(msg, want))
                        fail_msg("message '%s' does not contain '%s'", msg, want);
                assert_string_equal(msg, msg2);
        }
        free(buf);
}

/* ---- per request -------------------------------------------------------- */

static void test_no_body(void **state)
{
        (void)state;
        fx_reset();
        expect(DREAM_E_PROTO, "request");
        USE(info, server_info, SERVER_INFO);
        expect(0, NULL);
}

static void test_hello(void **state)
{
        char big[DREAM_MAX_TOKEN + 2];
        (void)state;
        fx_reset();
        USE(hello, hello, HELLO);
        expect(0, NULL);
        F.hello.protocol_version = 0;
        expect(DREAM_E_INVAL, "hello.protocol_version");
        fx_reset();
        USE(hello, hello, HELLO);
        F.hello.client_name = "a\nb";
        expect(DREAM_E_INVAL, "hello.client_name");
        F.hello.client_name = "caf\xc3";
        expect(DREAM_E_INVAL, "hello.client_name: not valid UTF-8");
        F.hello.client_name = "";
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        F.hello.token = big;
        expect(DREAM_E_LIMIT, "hello.token");
}

static void test_create(void **state)
{
        char longname[DREAM_MAX_NAME + 2];
        (void)state;
        fx_reset();
        USE(create, create_dataset, CREATE_DATASET);
        expect(0, NULL);

        F.create.name = "bad name";
        expect(DREAM_E_INVAL, "create_dataset.name");
        F.create.name = "..";
        expect(DREAM_E_INVAL, "create_dataset.name");
        F.create.name = "";
        expect(DREAM_E_INVAL, "create_dataset.name");
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        F.create.name = longname;
        expect(DREAM_E_LIMIT, "create_dataset.name");
        longname[DREAM_MAX_NAME] = '\0';
        expect(0, NULL);
        F.create.name = "iris";

        F.spec[1].name = "x\xed\xa0\x80"; /* a surrogate */
        expect(DREAM_E_INVAL, "create_dataset.columns[1].name");
        F.spec[1].name = "tab\there";
        expect(DREAM_E_INVAL, "create_dataset.columns[1].name");
        F.spec[1].name = longname;
        expect(0, NULL);
        longname[DREAM_MAX_NAME] = 'a';
        expect(DREAM_E_LIMIT, "create_dataset.columns[1].name");
        F.spec[1].name = "sepal.length";
        expect(DREAM_E_INVAL, "twice");
        F.spec[1].name = "width \xe2\x82\xac";
        expect(0, NULL);

        F.spec[2].kind = 0;
        expect(DREAM_E_INVAL, "create_dataset.columns[2].kind");
        F.spec[2].kind = 17;
        expect(DREAM_E_INVAL, "create_dataset.columns[2].kind: unknown value 17");
        F.spec[2].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
        F.spec[2].scale = 1;
        expect(DREAM_E_INVAL, "create_dataset.columns[2].scale");
        F.spec[2].scale = 0;
        F.spec[0].scale = 10;
        expect(DREAM_E_INVAL, "create_dataset.columns[0].scale");
        F.spec[0].scale = 0;
        expect(DREAM_E_INVAL, "create_dataset.columns[0].scale");
        F.spec[0].scale = 9;
        expect(0, NULL);

        F.create.target = "nope";
        expect(DREAM_E_INVAL, "create_dataset.target");
        F.create.target = "";
        expect(DREAM_E_INVAL, "create_dataset.task");
        F.create.task = DREAM__V1__TASK__TASK_UNSPECIFIED;
        F.create.class_count = 0;
        expect(0, NULL);
        F.create.target = "class";
        F.create.task = 3;
        expect(DREAM_E_INVAL, "create_dataset.task: unknown value 3");
        F.create.task = DREAM__V1__TASK__TASK_REGRESSION;
        F.create.class_count = 2;
        expect(DREAM_E_INVAL, "create_dataset.class_count");
        F.create.task = DREAM__V1__TASK__TASK_CLASSIFICATION;
        F.create.class_count = 1;
        expect(DREAM_E_INVAL, "create_dataset.class_count");
        F.create.class_count = DREAM_MAX_CLASSES + 1;
        expect(DREAM_E_LIMIT, "create_dataset.class_count");
        F.create.class_count = 2;

        F.create.n_columns = 0;
        expect(DREAM_E_INVAL, "create_dataset.columns");
}

static void test_create_many_columns(void **state)
{
        size_t n = DREAM_MAX_COLS + 1;
        Dream__V1__ColumnSpec *cs = calloc(n, sizeof(*cs));
        Dream__V1__ColumnSpec **cp = calloc(n, sizeof(*cp));
        char(*names)[16] = calloc(n, 16);
        (void)state;
        fx_reset();
        USE(create, create_dataset, CREATE_DATASET);
        for (size_t i = 0; i < n; i++) {
                dream__v1__column_spec__init(&cs[i]);
                snprintf(names[i], 16, "c%zu", i);
                cs[i].name = names[i];
                cs[i].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
                cp[i] = &cs[i];
        }
        F.create.columns = cp;
        F.create.n_columns = n;
        F.create.target = "c0";
        expect(DREAM_E_LIMIT, "create_dataset.columns: 65537");
        F.create.n_columns = n - 1;
        expect(0, NULL);
        cs[n - 2].name = names[5];
        expect(DREAM_E_INVAL, "'c5' twice");
        free(names);
        free(cp);
        free(cs);
}

static void test_ingest(void **state)
{
        (void)state;
        fx_reset();
        USE(ingest, ingest, INGEST);
        expect(0, NULL);
        F.cv[2].values.len = NR * 8 - 1;
        expect(DREAM_E_SCHEMA, "ingest.rows.columns[2].values: 79 bytes, expected 80 (10 rows)");
        F.cv[2].values.len = NR * 8;
        F.cols.n_rows = NR + 1;
        expect(DREAM_E_SCHEMA, "ingest.rows.columns[0].values: 80 bytes, expected 88 (11 rows)");
        F.cols.n_rows = 0;
        expect(DREAM_E_INVAL, "ingest.rows.n_rows");
        F.cols.n_rows = DREAM_MAX_BATCH_ROWS + 1;
        expect(DREAM_E_LIMIT, "ingest.rows.n_rows");
        F.cols.n_rows = UINT32_MAX;
        expect(DREAM_E_LIMIT, "ingest.rows.n_rows");
        F.cols.n_rows = NR;
        F.cols.n_columns = 0;
        expect(DREAM_E_INVAL, "ingest.rows.columns");
        F.cols.n_columns = NC;
        F.cv[1].kind = 0;
        expect(DREAM_E_INVAL, "ingest.rows.columns[1].kind");
        F.cv[1].kind = 99;
        expect(DREAM_E_INVAL, "ingest.rows.columns[1].kind: unknown value 99");
        F.cv[1].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL;
        expect(DREAM_E_INVAL, "ingest.rows.columns[1].scale");
        F.cv[1].scale = 3;
        expect(0, NULL);
        F.ingest.rows = NULL;
        expect(DREAM_E_INVAL, "ingest.rows: missing");
        F.ingest.rows = &F.cols;
        F.ingest.dataset = "a/b";
        expect(DREAM_E_INVAL, "ingest.dataset");
}

static void test_ingest_schema_count(void **state)
{
        char msg[128];
        (void)state;
        fx_reset();
        assert_int_equal(proto_columns_check_count(&F.cols, NC, "ingest.rows", msg, sizeof(msg)),
                         0);
        assert_int_equal(
            proto_columns_check_count(&F.cols, NC + 1, "ingest.rows", msg, sizeof(msg)),
            DREAM_E_SCHEMA);
        assert_string_equal(msg, "ingest.rows.columns: 3, the dataset has 4");
}

static void test_export(void **state)
{
        (void)state;
        fx_reset();
        USE(exp, export, EXPORT);
        expect(0, NULL);
        F.exp.row_count = UINT64_MAX;
        expect(DREAM_E_OVERFLOW, "export.row_count");
        F.exp.row_count = 0;
        F.exp.first_row = UINT64_MAX;
        expect(DREAM_E_RANGE, "export.first_row");
        F.exp.first_row = 0;
        F.exp.chunk_rows = DREAM_MAX_BATCH_ROWS + 1;
        expect(DREAM_E_LIMIT, "export.chunk_rows");
}

static void test_batches(void **state)
{
        uint8_t tok[DREAM_MAX_RESUME_TOKEN + 1] = {0};
        (void)state;
        fx_reset();
        USE(gb, get_batches, GET_BATCHES);
        expect(0, NULL);
        F.gb.batch_size = DREAM_MAX_BATCH_SIZE + 1;
        expect(DREAM_E_LIMIT, "get_batches.batch_size");
        F.gb.batch_size = 0;
        F.gb.mode = 4;
        expect(DREAM_E_INVAL, "get_batches.mode: unknown value 4");
        F.gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        F.gb.order = -1;
        expect(DREAM_E_INVAL, "get_batches.order");
        F.gb.order = 0;
        F.budget.fraction = 0;
        expect(DREAM_E_BUDGET, "get_batches.budget.fraction");
        F.budget.fraction = 1.5;
        expect(DREAM_E_BUDGET, "get_batches.budget.fraction");
        F.budget.fraction = NAN;
        expect(DREAM_E_BUDGET, "get_batches.budget.fraction");
        F.budget.fraction = -0.1;
        expect(DREAM_E_BUDGET, "get_batches.budget.fraction");
        F.budget.fraction = 1;
        expect(0, NULL);
        F.budget.kind_case = DREAM__V1__BUDGET__KIND_ROWS;
        F.budget.rows = 0;
        expect(DREAM_E_BUDGET, "get_batches.budget.rows");
        F.budget.rows = 1000;
        expect(0, NULL);
        F.budget.kind_case = DREAM__V1__BUDGET__KIND__NOT_SET;
        expect(DREAM_E_BUDGET, "get_batches.budget");
        F.gb.budget = NULL;
        expect(0, NULL);
        F.gb.resume_token.data = tok;
        F.gb.resume_token.len = sizeof(tok);
        expect(DREAM_E_LIMIT, "get_batches.resume_token");
        F.gb.resume_token.len = sizeof(tok) - 1;
        expect(0, NULL);
        F.gb.start = UINT64_MAX;
        expect(DREAM_E_RANGE, "get_batches.start");
}

static void test_train(void **state)
{
        uint32_t three[3] = {8, 8, 8};
        (void)state;
        fx_reset();
        USE(train, train, TRAIN);
        expect(0, NULL);
        F.train.model = 0;
        expect(DREAM_E_INVAL, "train.model: missing");
        F.train.model = 7;
        expect(DREAM_E_INVAL, "train.model: unknown value 7");
        F.train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP;
        F.train.mode = 6;
        expect(DREAM_E_INVAL, "train.mode: unknown value 6");
        F.train.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT;
        expect(DREAM_E_INVAL, "train.mode: exact");
        F.train.mode = 0;
        F.train.epochs = DREAM_MAX_EPOCHS + 1;
        expect(DREAM_E_LIMIT, "train.epochs");
        F.train.epochs = 0;
        F.train.lr = -1;
        expect(DREAM_E_INVAL, "train.lr");
        F.train.lr = INFINITY;
        expect(DREAM_E_INVAL, "train.lr");
        F.train.lr = 0;
        F.train.l2 = NAN;
        expect(DREAM_E_INVAL, "train.l2");
        F.train.l2 = 0;
        /* holdout: a share below 1, negative for none. */
        F.train.holdout = 1.0;
        expect(DREAM_E_INVAL, "train.holdout");
        F.train.holdout = NAN;
        expect(DREAM_E_INVAL, "train.holdout");
        F.train.holdout = -INFINITY;
        expect(DREAM_E_INVAL, "train.holdout");
        F.train.holdout = -1;
        expect(0, NULL);
        F.train.holdout = 0.999;
        expect(0, NULL);
        F.train.holdout = 0;
        {
                /* solver: logistic and softmax (refresh: Adam only); patience,
                 * early_stopping_off: mlp. */
                Dream__V1__ModelKind model = F.train.model;
                Dream__V1__TrainMode mode = F.train.mode;
                size_t n_hidden = F.train.n_hidden;

                F.train.n_hidden = 0;
                F.train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX;
                F.train.solver = DREAM__V1__SOLVER__SOLVER_ADAM;
                expect(0, NULL);
                F.train.solver = (Dream__V1__Solver)3;
                expect(DREAM_E_INVAL, "train.solver: unknown value 3");
                F.train.solver = DREAM__V1__SOLVER__SOLVER_LBFGS;
                expect(0, NULL);
                F.train.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_REFRESH;
                expect(DREAM_E_INVAL, "train.solver: lbfgs is not for mode refresh");
                F.train.mode = mode;
                F.train.patience = 3;
                expect(DREAM_E_INVAL, "train.patience: only for model mlp");
                F.train.patience = 0;
                F.train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP;
                expect(DREAM_E_INVAL, "train.solver: only for models logistic and softmax");
                F.train.solver = 0;
                F.train.patience = DREAM_MAX_EPOCHS + 1;
                expect(DREAM_E_LIMIT, "train.patience");
                F.train.patience = 3;
                expect(0, NULL);
                F.train.early_stopping_off = 1;
                expect(DREAM_E_INVAL, "train.patience: 3 with early_stopping_off");
                F.train.patience = 0;
                expect(0, NULL);
                F.train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR;
                expect(DREAM_E_INVAL, "train.early_stopping_off: only for model mlp");
                F.train.early_stopping_off = 0;
                F.train.model = model;
                F.train.n_hidden = n_hidden;
        }
        F.train.batch_size = DREAM_MAX_BATCH_SIZE + 1;
        expect(DREAM_E_LIMIT, "train.batch_size");
        F.train.batch_size = 0;
        F.hidden[1] = 0;
        expect(DREAM_E_INVAL, "train.hidden[1]");
        F.hidden[1] = DREAM_MAX_HIDDEN_WIDTH + 1;
        expect(DREAM_E_LIMIT, "train.hidden[1]");
        F.hidden[1] = 1;
        F.train.hidden = three;
        F.train.n_hidden = 3;
        expect(DREAM_E_LIMIT, "train.hidden: 3 layers");
        F.train.n_hidden = 1;
        expect(0, NULL);
        F.train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX;
        expect(DREAM_E_INVAL, "train.hidden: only for model mlp");
        F.train.n_hidden = 0;
        F.train.k = 5;
        expect(DREAM_E_INVAL, "train.k: only for model kmeans");
        F.train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_KMEANS;
        expect(0, NULL);
        F.train.k = DREAM_MAX_K + 1;
        expect(DREAM_E_LIMIT, "train.k");
        F.train.k = 0;
        F.train.budget = NULL;
        F.train.test_dataset = "bad/name";
        expect(DREAM_E_INVAL, "train.test_dataset");
        F.train.test_dataset = "";
        F.train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE;
        F.train.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT;
        expect(0, NULL);
        F.train.dataset = "";
        expect(DREAM_E_INVAL, "train.dataset");
}

static void test_predict(void **state)
{
        (void)state;
        fx_reset();
        USE(pred, predict, PREDICT);
        expect(0, NULL);
        F.fm.values.len -= 4;
        expect(DREAM_E_SCHEMA, "predict.features.values: 28 bytes, expected 32 (4 x 2)");
        F.fm.n = 0;
        expect(DREAM_E_INVAL, "predict.features");
        F.fm.n = UINT32_MAX;
        F.fm.d = UINT32_MAX;
        expect(DREAM_E_LIMIT, "predict.features.n");
        F.fm.n = 4;
        expect(DREAM_E_LIMIT, "predict.features.d");
        F.fm.d = 2;
        F.pred.job_id = 0;
        expect(DREAM_E_INVAL, "predict.job_id");
        F.pred.job_id = 1;
        F.pred.input_case = DREAM__V1__PREDICT__INPUT__NOT_SET;
        F.pred.features = NULL;
        expect(DREAM_E_INVAL, "predict.input");
        F.pred.input_case = DREAM__V1__PREDICT__INPUT_ROWS;
        F.pred.rows = &F.cols;
        expect(0, NULL);
        F.cv[0].values.len = 0;
        expect(DREAM_E_SCHEMA, "predict.rows.columns[0].values: 0 bytes");
}

static void test_small_requests(void **state)
{
        (void)state;
        fx_reset();
        /* NULL strings in a hand-built message read as "". */
        USE(hello, hello, HELLO);
        F.hello.client_name = NULL;
        F.hello.token = NULL;
        assert_int_equal(proto_request_validate(&F.req, NULL, 0), 0);
        USE(create, create_dataset, CREATE_DATASET);
        F.create.target = NULL;
        F.create.task = 0;
        F.create.class_count = 0;
        assert_int_equal(proto_request_validate(&F.req, NULL, 0), 0);
        F.spec[0].name = NULL;
        assert_int_equal(proto_request_validate(&F.req, NULL, 0), DREAM_E_INVAL);
        USE(describe, describe_dataset, DESCRIBE_DATASET);
        expect(0, NULL);
        F.describe.name = "\xff";
        expect(DREAM_E_INVAL, "describe_dataset.name: not valid UTF-8");
        F.describe.name = "iris.v2-final_3";
        expect(0, NULL);
        USE(job, job_status, JOB_STATUS);
        expect(0, NULL);
        USE(watch, job_watch, JOB_WATCH);
        expect(0, NULL);
        USE(cancel, job_cancel, JOB_CANCEL);
        F.cancel.job_id = 0;
        expect(DREAM_E_INVAL, "job_cancel.job_id");
        USE(backup, backup, BACKUP);
        expect(0, NULL);
        F.backup.path = "relative/dir";
        expect(DREAM_E_INVAL, "backup.path");
        F.backup.path = "";
        expect(DREAM_E_INVAL, "backup.path");
}

/* ---- names -------------------------------------------------------------- */

static void test_names(void **state)
{
        (void)state;
        assert_true(proto_utf8_valid("", 0));
        assert_true(proto_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
        assert_false(proto_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
        assert_false(proto_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
        assert_false(proto_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
        assert_false(proto_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
        assert_false(proto_utf8_valid("\xe2\x82", 2));         /* truncated */
        assert_false(proto_utf8_valid("\x80", 1));             /* lone continuation */
        assert_false(proto_utf8_valid("\xf8\x88\x80\x80\x80", 5));
        assert_int_equal(proto_dataset_name_check("a"), 0);
        assert_int_equal(proto_dataset_name_check("A-z_0.9"), 0);
        assert_int_equal(proto_dataset_name_check("."), DREAM_E_INVAL);
        assert_int_equal(proto_dataset_name_check("caf\xc3\xa9"), DREAM_E_INVAL);
        assert_int_equal(proto_dataset_name_check(NULL), DREAM_E_INVAL);
        assert_int_equal(proto_column_name_check("caf\xc3\xa9"), 0);
        assert_int_equal(proto_column_name_check("a\x7f"), DREAM_E_INVAL);
        assert_int_equal(proto_column_name_check(""), DREAM_E_INVAL);
}

/* ---- values helpers ----------------------------------------------------- */

static void test_values(void **state)
{
        int64_t in[5] = {0, -1, INT64_MIN, INT64_MAX, 123456789};
        int64_t out[5];
        float fin[3] = {1.5f, -0.0f, 3e38f}, fout[3];
        ProtobufCBinaryData b;
        (void)state;
        assert_int_equal(proto_values_new(in, 5, &b), 0);
        assert_int_equal(b.len, 40);
        assert_int_equal(b.data[8], 0xff);      /* -1, little-endian */
        assert_int_equal(b.data[16 + 7], 0x80); /* INT64_MIN's top byte */
        assert_int_equal(proto_values_read(&b, 5, out), 0);
        assert_memory_equal(in, out, sizeof(in));
        assert_int_equal(proto_values_read(&b, 4, out), DREAM_E_SCHEMA);
        assert_int_equal(proto_values_read(&b, SIZE_MAX / 4, out), DREAM_E_OVERFLOW);
        dm_free(b.data);
        assert_int_equal(proto_values_new(in, 0, &b), DREAM_E_EMPTY);
        dm_alloc_fail_at(1, 0);
        assert_int_equal(proto_values_new(in, 5, &b), DREAM_E_NOMEM);
        dm_alloc_fail_at(0, 0);
        assert_int_equal(proto_f32_new(fin, 3, &b), 0);
        assert_int_equal(b.len, 12);
        assert_int_equal(b.data[3], 0x3f); /* 1.5f = 0x3fc00000 */
        assert_int_equal(proto_f32_read(&b, 3, fout), 0);
        assert_memory_equal(fin, fout, sizeof(fin));
        assert_int_equal(proto_f32_read(&b, 2, fout), DREAM_E_SCHEMA);
        dm_free(b.data);
}

/* ---- malformed protobuf ------------------------------------------------- */

static int decode_raw(const uint8_t *p, size_t n)
{
        proto_request *out = NULL;
        char msg[200];
        int r = proto_request_decode(p, n, msg, sizeof(msg), &out);
        if (r == 0)
                proto_request_free(out);
        else
                assert_null(out);
        return r;
}

static void test_malformed(void **state)
{
        /* request_id: a varint of 11 bytes */
        static const uint8_t overlong[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                           0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
        /* request_id with wire type 2 */
        static const uint8_t wiretype[] = {0x0a, 0x01, 'x'};
        /* request_id with wire type 5 (fixed32) */
        static const uint8_t wiretype5[] = {0x0d, 1, 2, 3, 4};
        /* ingest (34, length-delimited) claiming 100 bytes, 2 present */
        static const uint8_t past_end[] = {0x92, 0x02, 100, 0x0a, 0x00};
        /* ingest claiming 2^35 bytes */
        static const uint8_t huge_len[] = {0x92, 0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
        /* a varint cut short */
        static const uint8_t cut_varint[] = {0x08, 0xff};
        /* field number 0 */
        static const uint8_t field0[] = {0x00, 0x01};
        /* wire types 6 and 7 do not exist */
        static const uint8_t wt6[] = {0x0e, 0x01};
        /* start-group without end (wire type 3) */
        static const uint8_t group[] = {0x0b, 0x08, 0x01};
        /* list_datasets, then an unknown field whose tag 0 is encoded in two bytes */
        static const uint8_t tag0_long[] = {0xfa, 0x01, 0x00, 0x80, 0x00, 0x7a};
        /* unknown fields only: parses, no body */
        static const uint8_t unknown[] = {0xf8, 0x3f, 0x01};
        /* ingest.rows.columns[0].values with wire type 0 inside the nested message */
        static const uint8_t nested_bad[] = {0x92, 0x02, 0x06, 0x1a, 0x04, 0x12, 0x02, 0x18, 0x01};
        (void)state;
        assert_int_equal(decode_raw(overlong, sizeof(overlong)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(wiretype, sizeof(wiretype)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(wiretype5, sizeof(wiretype5)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(past_end, sizeof(past_end)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(huge_len, sizeof(huge_len)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(cut_varint, sizeof(cut_varint)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(field0, sizeof(field0)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(wt6, sizeof(wt6)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(group, sizeof(group)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(unknown, sizeof(unknown)), DREAM_E_PROTO);
        assert_int_equal(decode_raw(tag0_long, sizeof(tag0_long)), DREAM_E_PARSE);
        assert_int_equal(decode_raw(nested_bad, sizeof(nested_bad)), DREAM_E_PARSE);
        assert_int_equal(decode_raw((const uint8_t *)"", 0), DREAM_E_PROTO);
}

/* Many empty repeated sub-messages: tiny on the wire, large in memory. The
 * unpack budget stops it. */
static void test_huge_repeated(void **state)
{
        const size_t n_entries = 4u << 20; /* 4 Mi ColumnValues of 2 bytes each */
        struct dm_buf b;
        uint8_t hdr[16];
        size_t cols_len = n_entries * 2, h = 0;
        uint64_t v;
        (void)state;
        dm_buf_init(&b);
        /* Request.ingest (34) { rows (3) { columns (2) x n } } */
        size_t rows_len = cols_len;
        size_t ingest_len = 1 + 4 + rows_len; /* tag + varint(len) + body */
        hdr[h++] = 0x92;
        hdr[h++] = 0x02;
        for (v = ingest_len; v >= 0x80; v >>= 7)
                hdr[h++] = (uint8_t)(v | 0x80);
        hdr[h++] = (uint8_t)v;
        hdr[h++] = 0x1a;
        /* rows length as a 4-byte varint */
        v = rows_len;
        hdr[h++] = (uint8_t)((v & 0x7f) | 0x80);
        hdr[h++] = (uint8_t)(((v >> 7) & 0x7f) | 0x80);
        hdr[h++] = (uint8_t)(((v >> 14) & 0x7f) | 0x80);
        hdr[h++] = (uint8_t)(v >> 21);
        assert_int_equal(dm_buf_append(&b, hdr, h), 0);
        assert_int_equal(dm_buf_reserve(&b, cols_len), 0);
        for (size_t i = 0; i < n_entries; i++) {
                b.data[b.len++] = 0x12;
                b.data[b.len++] = 0x00;
        }
        assert_int_equal(decode_raw(b.data, b.len), DREAM_E_LIMIT);
        dm_buf_release(&b);
}

/* Packed repeated hidden sizes: 1 MiB of one-byte varints. */
static void test_huge_packed(void **state)
{
        const size_t n = 1u << 20;
        struct dm_buf b;
        uint8_t hdr[16];
        size_t h = 0;
        uint64_t v;
        (void)state;
        dm_buf_init(&b);
        /* Request.train (60) { hidden (8, packed) } */
        size_t hidden_len = n;
        size_t train_len = 1 + 3 + hidden_len;
        hdr[h++] = 0xe2; /* (60 << 3) | 2 = 482 = 0x1e2 */
        hdr[h++] = 0x03;
        for (v = train_len; v >= 0x80; v >>= 7)
                hdr[h++] = (uint8_t)(v | 0x80);
        hdr[h++] = (uint8_t)v;
        hdr[h++] = 0x42;
        v = hidden_len;
        hdr[h++] = (uint8_t)((v & 0x7f) | 0x80);
        hdr[h++] = (uint8_t)(((v >> 7) & 0x7f) | 0x80);
        hdr[h++] = (uint8_t)(v >> 14);
        assert_int_equal(dm_buf_append(&b, hdr, h), 0);
        assert_int_equal(dm_buf_reserve(&b, n), 0);
        memset(b.data + b.len, 0x01, n);
        b.len += n;
        /* Unpacks within the budget (4 MiB), then validation refuses it. */
        assert_int_equal(decode_raw(b.data, b.len), DREAM_E_INVAL); /* no dataset */
        dm_buf_release(&b);
}

/* Fail the Nth allocation for every N: an error, never a crash or a leak. */
static void test_alloc_failure(void **state)
{
        size_t len;
        uint8_t *buf;
        unsigned long n;
        (void)state;
        fx_reset();
        USE(create, create_dataset, CREATE_DATASET);
        len = dream__v1__request__get_packed_size(&F.req);
        buf = malloc(len);
        dream__v1__request__pack(&F.req, buf);
        for (n = 1;; n++) {
                proto_request *out = NULL;
                int r;
                dm_alloc_fail_at(n, 0);
                r = proto_request_decode(buf, len, NULL, 0, &out);
                dm_alloc_fail_at(0, 0);
                if (r == 0) {
                        proto_request_free(out);
                        break;
                }
                assert_int_equal(r, DREAM_E_NOMEM);
                assert_null(out);
        }
        assert_true(n > 5);
        free(buf);
}

/* ---- responses ---------------------------------------------------------- */

static void test_responses(void **state)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__Batch bt = DREAM__V1__BATCH__INIT;
        Dream__V1__PredictReply pr = DREAM__V1__PREDICT_REPLY__INIT;
        uint8_t f[2 * 3 * 4], t[2 * 4], pv[2 * 8];
        char msg[200];
        proto_response *out = NULL;
        uint8_t buf[256];
        size_t len;
        (void)state;

        resp.request_id = 5;
        resp.more = 1;
        resp.body_case = DREAM__V1__RESPONSE__BODY_GET_BATCHES;
        resp.get_batches = &bt;
        bt.n = 2;
        bt.d = 3;
        bt.features.data = f;
        bt.features.len = sizeof(f);
        bt.targets.data = t;
        bt.targets.len = sizeof(t);
        assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), 0);
        len = dream__v1__response__pack(&resp, buf);
        assert_int_equal(proto_response_decode(buf, len, msg, sizeof(msg), &out), 0);
        assert_int_equal(out->get_batches->features.len, sizeof(f));
        proto_response_free(out);
        bt.weights.data = t;
        bt.weights.len = 4;
        assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), DREAM_E_SCHEMA);
        assert_non_null(strstr(msg, "batch.weights"));
        bt.weights.len = 0;
        bt.d = 4;
        assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), DREAM_E_SCHEMA);
        assert_non_null(strstr(msg, "batch.features"));
        bt.d = 3;

        /* An unknown status from a newer server passes; more on an error does not. */
        resp.code = 200;
        resp.more = 0;
        assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), 0);
        resp.more = 1;
        assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), DREAM_E_PROTO);
        resp.more = 0;
        resp.code = 0;

        resp.body_case = DREAM__V1__RESPONSE__BODY_PREDICT;
        resp.predict = &pr;
        pr.n = 2;
        pr.values.data = pv;
        pr.values.len = sizeof(pv);
        assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), 0);
        pr.classes = 3;
        pr.scores.data = f;
        pr.scores.len = sizeof(f);
        assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), 0);
        pr.classes = 4;
        assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), DREAM_E_SCHEMA);
        pr.values.len = 8;
        assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), DREAM_E_SCHEMA);
        assert_non_null(strstr(msg, "predict.values"));

        /* An export chunk without rows ends an empty range. */
        {
                Dream__V1__ExportChunk ec = DREAM__V1__EXPORT_CHUNK__INIT;
                resp.body_case = DREAM__V1__RESPONSE__BODY_EXPORT;
                resp.export = &ec;
                assert_int_equal(proto_response_validate(&resp, msg, sizeof(msg)), 0);
        }

        assert_int_equal(proto_response_decode((const uint8_t *)"\x08", 1, msg, sizeof(msg), &out),
                         DREAM_E_PARSE);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_no_body),        cmocka_unit_test(test_hello),
            cmocka_unit_test(test_create),         cmocka_unit_test(test_create_many_columns),
            cmocka_unit_test(test_ingest),         cmocka_unit_test(test_ingest_schema_count),
            cmocka_unit_test(test_export),         cmocka_unit_test(test_batches),
            cmocka_unit_test(test_train),          cmocka_unit_test(test_predict),
            cmocka_unit_test(test_small_requests), cmocka_unit_test(test_names),
            cmocka_unit_test(test_values),         cmocka_unit_test(test_malformed),
            cmocka_unit_test(test_huge_repeated),  cmocka_unit_test(test_huge_packed),
            cmocka_unit_test(test_alloc_failure),  cmocka_unit_test(test_responses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
