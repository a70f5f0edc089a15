/* Writes the seed corpus of the 'dispatch' fuzz target: one request of every
 * kind its harness runs, on its dataset "houses" (9 columns c0..c8, c8 the
 * class target). Usage: gen_dispatch_corpus DIR */
#include <stdio.h>
#include <stdlib.h>

#include "proto/validate.h"

static const char *out_dir;

static void put(const char *name, Dream__V1__Request *req)
{
        char path[4096];
        size_t len = dream__v1__request__get_packed_size(req);
        uint8_t *buf = malloc(len + 1);
        FILE *f;

        dream__v1__request__pack(req, buf);
        snprintf(path, sizeof(path), "%s/%s", out_dir, name);
        f = fopen(path, "wb");
        if (!buf || !f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
                fprintf(stderr, "gen_dispatch_corpus: cannot write '%s'\n", path);
                exit(1);
        }
        free(buf);
        req->request_id++;
}

int main(int argc, char **argv)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__ListDatasets ls = DREAM__V1__LIST_DATASETS__INIT;
        Dream__V1__DescribeDataset dd = DREAM__V1__DESCRIBE_DATASET__INIT;
        Dream__V1__Flush fl = DREAM__V1__FLUSH__INIT;
        Dream__V1__DropDataset dr = DREAM__V1__DROP_DATASET__INIT;
        Dream__V1__Stats st = DREAM__V1__STATS__INIT;
        Dream__V1__Export ex = DREAM__V1__EXPORT__INIT;
        Dream__V1__GetBatches gb = DREAM__V1__GET_BATCHES__INIT;
        Dream__V1__Budget bu = DREAM__V1__BUDGET__INIT;
        Dream__V1__JobList jl = DREAM__V1__JOB_LIST__INIT;
        Dream__V1__JobCancel jc = DREAM__V1__JOB_CANCEL__INIT;
        Dream__V1__GetModel gm = DREAM__V1__GET_MODEL__INIT;
        Dream__V1__Predict pr = DREAM__V1__PREDICT__INIT;
        Dream__V1__Columns cols = DREAM__V1__COLUMNS__INIT;
        Dream__V1__ColumnValues cv[8], *cvp[8];
        static uint8_t raw[8][16 * 8];

        if (argc != 2) {
                fprintf(stderr, "usage: gen_dispatch_corpus DIR\n");
                return 2;
        }
        out_dir = argv[1];
        req.request_id = 100;
        req.body_case = DREAM__V1__REQUEST__BODY_LIST_DATASETS;
        req.list_datasets = &ls;
        put("list", &req);
        dd.name = "houses";
        req.body_case = DREAM__V1__REQUEST__BODY_DESCRIBE_DATASET;
        req.describe_dataset = &dd;
        put("describe", &req);
        fl.dataset = "houses";
        req.body_case = DREAM__V1__REQUEST__BODY_FLUSH;
        req.flush = &fl;
        put("flush", &req);
        dr.name = "nothere";
        req.body_case = DREAM__V1__REQUEST__BODY_DROP_DATASET;
        req.drop_dataset = &dr;
        put("drop_missing", &req);
        dr.name = "houses";
        put("drop", &req);
        req.body_case = DREAM__V1__REQUEST__BODY_STATS;
        req.stats = &st;
        put("stats", &req);
        ex.dataset = "houses";
        ex.chunk_rows = 64;
        req.body_case = DREAM__V1__REQUEST__BODY_EXPORT;
        req.export = &ex;
        put("export_chunks", &req);
        gb.dataset = "houses";
        gb.batch_size = 32;
        gb.seed = 9;
        req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
        req.get_batches = &gb;
        gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        put("batches_rows", &req);
        bu.kind_case = DREAM__V1__BUDGET__KIND_ROWS;
        bu.rows = 20;
        gb.budget = &bu;
        gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_CONDENSED;
        put("batches_condensed", &req);
        gb.order = DREAM__V1__BIT_ORDER__BIT_ORDER_ENTROPY;
        put("batches_condensed_entropy", &req);
        gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_SAMPLE;
        put("batches_sample", &req);
        gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
        gb.start = 250;
        gb.max_batches = 1;
        put("batches_start", &req);
        req.body_case = DREAM__V1__REQUEST__BODY_JOB_LIST;
        req.job_list = &jl;
        put("job_list", &req);
        jc.job_id = 1;
        req.body_case = DREAM__V1__REQUEST__BODY_JOB_CANCEL;
        req.job_cancel = &jc;
        put("job_cancel", &req);
        gm.job_id = 1;
        req.body_case = DREAM__V1__REQUEST__BODY_GET_MODEL;
        req.get_model = &gm;
        put("get_model", &req);
        for (int j = 0; j < 8; j++) {
                dream__v1__column_values__init(&cv[j]);
                cv[j].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL;
                cv[j].scale = 2;
                for (int i = 0; i < 16; i++) {
                        int64_t v = i * 11 - j;
                        proto_values_put(raw[j] + i * 8, &v, 1);
                }
                cv[j].values.data = raw[j];
                cv[j].values.len = sizeof(raw[j]);
                cvp[j] = &cv[j];
        }
        cols.n_rows = 16;
        cols.n_columns = 8;
        cols.columns = cvp;
        pr.job_id = 1;
        pr.input_case = DREAM__V1__PREDICT__INPUT_ROWS;
        pr.rows = &cols;
        req.body_case = DREAM__V1__REQUEST__BODY_PREDICT;
        req.predict = &pr;
        put("predict_rows", &req);
        return 0;
}
