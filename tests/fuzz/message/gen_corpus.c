/* Writes the seed corpora of the 'message' and 'frame' fuzz targets: good
 * requests and responses of most kinds, and the hostile cases of issue 7
 * (malformed protobuf, semantic errors, boundary frame lengths). Usage:
 * gen_proto_corpus MESSAGE_DIR FRAME_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "proto/frame.h"
#include "proto/validate.h"

static const char *msg_dir, *frame_dir;

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "wb");
        if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
                fprintf(stderr, "gen_proto_corpus: cannot write '%s'\n", path);
                exit(1);
        }
}

static void put_request(const char *name, const Dream__V1__Request *req)
{
        size_t len = dream__v1__request__get_packed_size(req);
        uint8_t *buf = malloc(len + 1);
        dream__v1__request__pack(req, buf);
        write_file(msg_dir, name, buf, len);
        free(buf);
}

static void put_response(const char *name, const Dream__V1__Response *resp)
{
        size_t len = dream__v1__response__get_packed_size(resp);
        uint8_t *buf = malloc(len + 1);
        dream__v1__response__pack(resp, buf);
        write_file(msg_dir, name, buf, len);
        free(buf);
}

/* Frame seed: mode byte, then the stream. */
static void put_stream(const char *name, uint8_t mode, const void *p, size_t n)
{
        uint8_t *buf = malloc(n + 1);
        buf[0] = mode;
        memcpy(buf + 1, p, n);
        write_file(frame_dir, name, buf, n + 1);
        free(buf);
}

static void put_header(const char *name, uint8_t mode, uint32_t len, const char *tail)
{
        uint8_t b[64];
        size_t t = strlen(tail);
        frame_header_put(b, len);
        memcpy(b + 4, tail, t);
        put_stream(name, mode, b, 4 + t);
}

int main(int argc, char **argv)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__Hello hello = DREAM__V1__HELLO__INIT;
        Dream__V1__CreateDataset create = DREAM__V1__CREATE_DATASET__INIT;
        Dream__V1__ColumnSpec spec[9];
        Dream__V1__ColumnSpec *specs[9];
        Dream__V1__Ingest ingest = DREAM__V1__INGEST__INIT;
        Dream__V1__Columns cols = DREAM__V1__COLUMNS__INIT;
        Dream__V1__ColumnValues cv[9];
        Dream__V1__ColumnValues *cvs[9];
        Dream__V1__GetBatches gb = DREAM__V1__GET_BATCHES__INIT;
        Dream__V1__Budget budget = DREAM__V1__BUDGET__INIT;
        Dream__V1__Train train = DREAM__V1__TRAIN__INIT;
        Dream__V1__Predict pred = DREAM__V1__PREDICT__INIT;
        Dream__V1__FloatMatrix fm = DREAM__V1__FLOAT_MATRIX__INIT;
        Dream__V1__Export exp = DREAM__V1__EXPORT__INIT;
        Dream__V1__JobStatus js = DREAM__V1__JOB_STATUS__INIT;
        Dream__V1__Batch bt = DREAM__V1__BATCH__INIT;
        Dream__V1__DatasetInfo info = DREAM__V1__DATASET_INFO__INIT;
        Dream__V1__JobInfo ji = DREAM__V1__JOB_INFO__INIT;
        Dream__V1__JobResult jr = DREAM__V1__JOB_RESULT__INIT;
        Dream__V1__ClassificationMetrics cm = DREAM__V1__CLASSIFICATION_METRICS__INIT;
        uint32_t hidden[2] = {64, 32};
        static uint8_t raw[9][100 * 8];
        static uint8_t floats[100 * 8 * 4];
        char cname[9][16];
        struct dm_buf fb;

        if (argc != 3) {
                fprintf(stderr, "usage: gen_proto_corpus MESSAGE_DIR FRAME_DIR\n");
                return 2;
        }
        msg_dir = argv[1];
        frame_dir = argv[2];
        for (int i = 0; i < 100 * 8 * 4; i++)
                floats[i] = (uint8_t)(i * 7);

        /* ---- good requests ---- */
        req.request_id = 1;
        hello.protocol_version = DREAM_PROTOCOL_VERSION;
        hello.client_name = "dream-cli/0.1";
        hello.token = "0123456789abcdef";
        req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
        req.hello = &hello;
        put_request("req_hello", &req);

        for (int i = 0; i < 9; i++) {
                dream__v1__column_spec__init(&spec[i]);
                snprintf(cname[i], sizeof(cname[i]), "c%d", i);
                spec[i].name = cname[i];
                spec[i].kind = i == 8 ? DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT
                                      : DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL;
                spec[i].scale = i == 8 ? 0 : 2;
                specs[i] = &spec[i];
        }
        create.name = "houses";
        create.n_columns = 9;
        create.columns = specs;
        create.target = "c8";
        create.task = DREAM__V1__TASK__TASK_CLASSIFICATION;
        create.class_count = 4;
        req.body_case = DREAM__V1__REQUEST__BODY_CREATE_DATASET;
        req.create_dataset = &create;
        put_request("req_create", &req);

        for (int i = 0; i < 9; i++) {
                int64_t v[100];
                for (int r = 0; r < 100; r++)
                        v[r] = (int64_t)r * 37 - i * 1000;
                proto_values_put(raw[i], v, 100);
                dream__v1__column_values__init(&cv[i]);
                cv[i].kind = spec[i].kind;
                cv[i].scale = spec[i].scale;
                cv[i].values.data = raw[i];
                cv[i].values.len = 100 * 8;
                cvs[i] = &cv[i];
        }
        cols.n_rows = 100;
        cols.n_columns = 9;
        cols.columns = cvs;
        ingest.dataset = "houses";
        ingest.client_batch_id = 7;
        ingest.rows = &cols;
        req.body_case = DREAM__V1__REQUEST__BODY_INGEST;
        req.ingest = &ingest;
        put_request("req_ingest_100x9", &req);
        cv[3].values.len = 799; /* one byte short */
        put_request("bad_ingest_short_column", &req);
        cv[3].values.len = 800;
        cols.n_rows = 0xffffffffu; /* n_rows * 8 past any limit */
        put_request("bad_ingest_huge_rows", &req);
        cols.n_rows = 100;
        cv[2].kind = 40; /* unknown enum */
        put_request("bad_ingest_unknown_kind", &req);
        cv[2].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL;
        ingest.dataset = "bad/name";
        put_request("bad_ingest_name", &req);
        ingest.dataset = "caf\xc3\xa9";
        put_request("bad_ingest_name_utf8", &req);
        ingest.dataset = "houses";

        exp.dataset = "houses";
        exp.first_row = 10;
        exp.row_count = 1000;
        req.body_case = DREAM__V1__REQUEST__BODY_EXPORT;
        req.export = &exp;
        put_request("req_export", &req);
        exp.row_count = UINT64_MAX;
        put_request("bad_export_overflow", &req);

        budget.kind_case = DREAM__V1__BUDGET__KIND_FRACTION;
        budget.fraction = 0.01;
        gb.dataset = "houses";
        gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        gb.batch_size = 512;
        gb.budget = &budget;
        gb.seed = 42;
        gb.epoch = 3;
        req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
        req.get_batches = &gb;
        put_request("req_batches", &req);

        train.dataset = "houses";
        train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP;
        train.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED;
        train.budget = &budget;
        train.epochs = 20;
        train.lr = 0.001;
        train.n_hidden = 2;
        train.hidden = hidden;
        train.test_dataset = "houses-test";
        train.holdout = 0.2;
        req.body_case = DREAM__V1__REQUEST__BODY_TRAIN;
        req.train = &train;
        put_request("req_train_mlp", &req);
        budget.fraction = -1;
        put_request("bad_train_budget", &req);
        budget.fraction = 0.01;
        train.holdout = 1.5;
        put_request("bad_train_holdout", &req);
        train.holdout = 0;
        train.patience = 8;
        put_request("req_train_mlp_patience", &req);
        train.early_stopping_off = 1;
        put_request("bad_train_patience_off", &req); /* patience with early_stopping_off */
        train.patience = 0;
        put_request("req_train_mlp_no_early_stop", &req);
        train.early_stopping_off = 0;
        train.solver = DREAM__V1__SOLVER__SOLVER_ADAM;
        put_request("bad_train_solver_mlp", &req); /* solver: logistic, softmax only */
        train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX;
        train.n_hidden = 0;
        train.hidden = NULL;
        put_request("req_train_softmax_adam", &req);
        train.solver = (Dream__V1__Solver)7;
        put_request("bad_train_solver", &req);
        train.solver = DREAM__V1__SOLVER__SOLVER_DEFAULT;
        train.model = DREAM__V1__MODEL_KIND__MODEL_KIND_MLP;
        train.n_hidden = 2;
        train.hidden = hidden;

        fm.n = 100;
        fm.d = 8;
        fm.values.data = floats;
        fm.values.len = sizeof(floats);
        pred.job_id = 4;
        pred.input_case = DREAM__V1__PREDICT__INPUT_FEATURES;
        pred.features = &fm;
        req.body_case = DREAM__V1__REQUEST__BODY_PREDICT;
        req.predict = &pred;
        put_request("req_predict_features", &req);
        fm.d = 0x40000000; /* n * d * 4 overflows 32 bits */
        put_request("bad_predict_shape", &req);

        js.job_id = 12;
        req.body_case = DREAM__V1__REQUEST__BODY_JOB_STATUS;
        req.job_status = &js;
        put_request("req_job_status", &req);

        /* ---- good responses ---- */
        resp.request_id = 9;
        resp.more = 1;
        bt.n = 100;
        bt.d = 8;
        bt.features.data = floats;
        bt.features.len = sizeof(floats);
        bt.targets.data = floats;
        bt.targets.len = 400;
        bt.weights.data = floats;
        bt.weights.len = 400;
        bt.position = 100;
        resp.body_case = DREAM__V1__RESPONSE__BODY_GET_BATCHES;
        resp.get_batches = &bt;
        put_response("resp_batch", &resp);
        resp.more = 0;
        info.name = "houses";
        info.task = DREAM__V1__TASK__TASK_CLASSIFICATION;
        info.rows = 20640;
        info.columns = 9;
        info.n_schema = 9;
        info.schema = specs;
        info.ratio = 11.5;
        resp.body_case = DREAM__V1__RESPONSE__BODY_DESCRIBE_DATASET;
        resp.describe_dataset = &info;
        put_response("resp_info", &resp);
        cm.accuracy = 0.84;
        cm.macro_f1 = 0.83;
        cm.logloss = 0.45;
        jr.rows_used = 5400;
        jr.epochs = 20;
        jr.evaluated_rows = 6000;
        jr.metrics_case = DREAM__V1__JOB_RESULT__METRICS_CLASSIFICATION;
        jr.classification = &cm;
        jr.evaluated_on = "holdout";
        jr.holdout_share = 0.1;
        jr.holdout_rows = 6000;
        jr.fit_loss = 0.31;
        jr.iterations = 120;
        jr.converged = 1;
        jr.wall_seconds = 2.5;
        jr.prep_cached = 1;
        jr.l2 = 1e-4;
        jr.var_scale = 0.5;
        jr.solver = "lbfgs";
        ji.job_id = 4;
        ji.state = DREAM__V1__JOB_STATE__JOB_STATE_DONE;
        ji.dataset = "houses";
        ji.model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX;
        ji.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED;
        ji.budget = &budget;
        ji.result = &jr;
        resp.body_case = DREAM__V1__RESPONSE__BODY_JOB_STATUS;
        resp.job_status = &ji;
        put_response("resp_job_done", &resp);
        resp.body_case = DREAM__V1__RESPONSE__BODY__NOT_SET;
        resp.code = DREAM__V1__STATUS__STATUS_NOT_FOUND;
        resp.message = "dataset 'nope' not found";
        put_response("resp_error", &resp);

        /* ---- malformed protobuf ---- */
        {
                static const uint8_t overlong[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                   0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
                static const uint8_t wiretype[] = {0x0a, 0x01, 'x'};
                static const uint8_t past_end[] = {0x92, 0x02, 100, 0x0a, 0x00};
                static const uint8_t huge_len[] = {0x92, 0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
                static const uint8_t nested[] = {0x92, 0x02, 0x06, 0x1a, 0x04,
                                                 0x12, 0x02, 0x18, 0x01};
                static const uint8_t group[] = {0x0b, 0x08, 0x01};
                struct dm_buf b;
                write_file(msg_dir, "bad_overlong_varint", overlong, sizeof(overlong));
                write_file(msg_dir, "bad_wire_type", wiretype, sizeof(wiretype));
                write_file(msg_dir, "bad_length_past_end", past_end, sizeof(past_end));
                write_file(msg_dir, "bad_huge_length", huge_len, sizeof(huge_len));
                write_file(msg_dir, "bad_nested_wire_type", nested, sizeof(nested));
                write_file(msg_dir, "bad_group", group, sizeof(group));
                write_file(msg_dir, "empty", "", 0);
                /* 16 Ki empty repeated ColumnValues in one ingest */
                dm_buf_init(&b);
                {
                        const size_t n = 16384, body = n * 2;
                        uint8_t h[] = {0x92,
                                       0x02,
                                       (uint8_t)(((body + 4) & 0x7f) | 0x80),
                                       (uint8_t)((((body + 4) >> 7) & 0x7f) | 0x80),
                                       (uint8_t)((body + 4) >> 14),
                                       0x1a,
                                       (uint8_t)((body & 0x7f) | 0x80),
                                       (uint8_t)(((body >> 7) & 0x7f) | 0x80),
                                       (uint8_t)(body >> 14)};
                        dm_buf_append(&b, h, sizeof(h));
                        for (size_t i = 0; i < n; i++)
                                dm_buf_append(&b, "\x12\x00", 2);
                }
                write_file(msg_dir, "bad_many_empty_columns", b.data, b.len);
                dm_buf_release(&b);
        }

        /* ---- frames ---- */
        dm_buf_init(&fb);
        req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
        req.hello = &hello;
        frame_encode(&fb, &req.base, 0);
        put_stream("frame_hello", 0xff, fb.data, fb.len);         /* one slice */
        put_stream("frame_hello_dribble", 0x00, fb.data, fb.len); /* 1 byte at a time */
        req.body_case = DREAM__V1__REQUEST__BODY_JOB_STATUS;
        req.job_status = &js;
        frame_encode(&fb, &req.base, 0);
        req.body_case = DREAM__V1__REQUEST__BODY_INGEST;
        req.ingest = &ingest;
        cols.n_rows = 4;
        for (int i = 0; i < 9; i++)
                cv[i].values.len = 32;
        frame_encode(&fb, &req.base, 0);
        put_stream("frame_pipelined", 0x0e, fb.data, fb.len); /* 8-byte slices */
        put_stream("frame_truncated", 0x06, fb.data, fb.len - 5);
        put_header("frame_len_0", 0xfe, 0, "");
        put_header("frame_len_1", 0x01, 1, "\x08");
        put_header("frame_len_limit_minus_1", 0x01, 4095, "partial");
        put_header("frame_len_limit", 0x01, 4096, "partial");
        put_header("frame_len_limit_plus_1", 0x01, 4097, "partial");
        put_header("frame_len_default_plus_1", 0x00, DREAM_MAX_FRAME_DEFAULT + 1, "x");
        put_header("frame_len_2p31", 0x00, 1u << 31, "x");
        put_header("frame_len_2p32_minus_1", 0x00, UINT32_MAX, "x");
        put_stream("frame_garbage", 0x0a, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
        put_stream("frame_partial_header", 0x00, "\x00\x00", 2);
        dm_buf_release(&fb);
        return 0;
}
