/* libdream typed calls: session, datasets, ingest, export, batches. */
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include "client/lib/internal.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"

int dcl_call(struct dream_client *c, Dream__V1__Request *req, Dream__V1__Response__BodyCase body,
             proto_response **ret)
{
        proto_response *resp;
        uint64_t id;
        int r;

        r = dcl_begin(c);
        if (r == 0)
                r = dcl_send(c, req, &id);
        if (r == 0)
                r = dcl_recv(c, id, &resp);
        if (r < 0)
                return r;
        r = dcl_status(c, resp, body);
        if (r == 0 && resp->more) {
                r = dcl_fail(c, DREAM_E_PROTO, "the server streamed a single reply");
                /* Drop the rest: the connection is unusable anyway. */
        }
        if (r < 0) {
                proto_response_free(resp);
                return r;
        }
        *ret = resp;
        return 0;
}

static int check_name(struct dream_client *c, const char *name)
{
        if (!name || !*name) {
                dcl_set_err(c, "a dataset name is required");
                return DREAM_E_INVAL;
        }
        return 0;
}

static char *dup_or_empty(const char *s)
{
        return dm_strdup(s ? s : "");
}

/* ---- session ----------------------------------------------------------------------- */

int dream_hello(struct dream_client *c, const char *token, struct dream_hello_info *ret_info)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Hello h = DREAM__V1__HELLO__INIT;
        proto_response *resp;
        int r;

        if (ret_info) {
                r = dcl_sized_check(c, "dream_hello_info", ret_info);
                if (r < 0)
                        return r;
        }
        if (token && strlen(token) > DREAM_MAX_TOKEN) {
                dcl_set_err(c, "token longer than %u bytes", DREAM_MAX_TOKEN);
                return DREAM_E_LIMIT;
        }
        h.protocol_version = DREAM_PROTOCOL_VERSION;
        h.client_name = c->name;
        h.token = (char *)(token ? token : "");
        req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
        req.hello = &h;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_HELLO, &resp);
        if (r < 0)
                return r;
        if (resp->hello->max_frame_bytes && resp->hello->max_frame_bytes < c->max_frame)
                c->max_frame = resp->hello->max_frame_bytes;
        if (ret_info) {
                struct dream_hello_info hi = DREAM_INIT(struct dream_hello_info);
                hi.protocol_version = resp->hello->protocol_version;
                snprintf(hi.server_version, sizeof(hi.server_version), "%s",
                         resp->hello->server_version ? resp->hello->server_version : "");
                hi.auth_required = resp->hello->auth_required;
                hi.authenticated = resp->hello->authenticated;
                hi.max_frame_bytes = resp->hello->max_frame_bytes;
                dcl_sized_out(ret_info, &hi, sizeof(hi));
        }
        proto_response_free(resp);
        return 0;
}

/* ---- datasets ------------------------------------------------------------------------ */

int dream_dataset_create(struct dream_client *c, const char *name,
                         const struct dream_schema *schema)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__CreateDataset m = DREAM__V1__CREATE_DATASET__INIT;
        Dream__V1__ColumnSpec *specs = NULL, **specp = NULL;
        struct dream_schema sc;
        proto_response *resp;
        int r;

        r = check_name(c, name);
        if (r == 0 && schema)
                r = dcl_sized_in(c, "dream_schema", &sc, schema, sizeof(sc));
        if (r < 0)
                return r;
        schema = schema ? &sc : NULL;
        if (!schema || schema->n_cols == 0 || schema->n_cols > DREAM_MAX_COLS) {
                dcl_set_err(c, "a schema needs 1 to %u columns", DREAM_MAX_COLS);
                return DREAM_E_INVAL;
        }
        specs = dm_calloc(schema->n_cols, sizeof(*specs));
        specp = dm_calloc(schema->n_cols, sizeof(*specp));
        if (!specs || !specp) {
                dcl_set_err(c, "out of memory");
                r = DREAM_E_NOMEM;
                goto free_specs;
        }
        for (uint32_t i = 0; i < schema->n_cols; i++) {
                dream__v1__column_spec__init(&specs[i]);
                specs[i].name = (char *)(schema->cols[i].name ? schema->cols[i].name : "");
                specs[i].kind = (Dream__V1__ColumnKind)schema->cols[i].kind;
                specs[i].scale = schema->cols[i].scale;
                specp[i] = &specs[i];
        }
        m.name = (char *)name;
        m.n_columns = schema->n_cols;
        m.columns = specp;
        m.target = (char *)(schema->target ? schema->target : "");
        m.task = (Dream__V1__Task)schema->task;
        m.class_count = schema->class_count;
        req.body_case = DREAM__V1__REQUEST__BODY_CREATE_DATASET;
        req.create_dataset = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_CREATE_DATASET, &resp);
        if (r == 0)
                proto_response_free(resp);
free_specs:
        dm_free(specs);
        dm_free(specp);
        return r;
}

int dream_dataset_drop(struct dream_client *c, const char *name)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__DropDataset m = DREAM__V1__DROP_DATASET__INIT;
        proto_response *resp;
        int r;

        r = check_name(c, name);
        if (r < 0)
                return r;
        m.name = (char *)name;
        req.body_case = DREAM__V1__REQUEST__BODY_DROP_DATASET;
        req.drop_dataset = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_DROP_DATASET, &resp);
        if (r == 0)
                proto_response_free(resp);
        return r;
}

void dream_dataset_info_free(struct dream_dataset_info *info)
{
        if (!info)
                return;
        if (info->schema)
                for (uint32_t i = 0; i < info->columns; i++)
                        dm_free(info->schema[i].name);
        dm_free(info->schema);
        dm_free(info->name);
        dm_free(info->target);
        dm_free(info);
}

int dream_dataset_describe(struct dream_client *c, const char *name,
                           struct dream_dataset_info **ret)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__DescribeDataset m = DREAM__V1__DESCRIBE_DATASET__INIT;
        const Dream__V1__DatasetInfo *di;
        struct dream_dataset_info *info = NULL;
        proto_response *resp;
        int r;

        r = check_name(c, name);
        if (r < 0)
                return r;
        m.name = (char *)name;
        req.body_case = DREAM__V1__REQUEST__BODY_DESCRIBE_DATASET;
        req.describe_dataset = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_DESCRIBE_DATASET, &resp);
        if (r < 0)
                return r;
        di = resp->describe_dataset;
        r = DREAM_E_NOMEM;
        info = dm_calloc(1, sizeof(*info));
        if (!info)
                goto fail;
        info->name = dup_or_empty(di->name);
        info->target = dup_or_empty(di->target);
        /* columns counts the schema entries actually held, so that
         * dream_dataset_info_free never reads past them. */
        info->schema = dm_calloc(di->n_schema ? di->n_schema : 1, sizeof(*info->schema));
        if (!info->name || !info->target || !info->schema)
                goto fail;
        for (size_t i = 0; i < di->n_schema; i++) {
                info->schema[i].name = dup_or_empty(di->schema[i]->name);
                info->schema[i].kind = (enum dream_kind)di->schema[i]->kind;
                info->schema[i].scale = di->schema[i]->scale;
                info->columns = (uint32_t)i + 1;
                if (!info->schema[i].name)
                        goto fail;
        }
        if (di->n_schema != di->columns) {
                r = dcl_fail(c, DREAM_E_PROTO, "dataset '%s': %u columns but %zu in the schema",
                             name, di->columns, di->n_schema);
                goto fail_set;
        }
        info->task = (enum dream_task)di->task;
        info->class_count = di->class_count;
        info->rows = di->rows;
        info->segments = di->segments;
        info->staged_rows = di->staged_rows;
        info->stored_bytes = di->stored_bytes;
        info->csv_bytes = di->csv_bytes;
        info->bases = di->bases;
        info->ratio = di->ratio;
        info->created_unix = di->created_unix;
        proto_response_free(resp);
        *ret = info;
        return 0;
fail:
        dcl_set_err(c, "out of memory");
fail_set:
        dream_dataset_info_free(info);
        proto_response_free(resp);
        return r;
}

void dream_dataset_list_free(struct dream_dataset_list *list)
{
        if (!list)
                return;
        for (size_t i = 0; list->items && i < list->n; i++)
                dm_free(list->items[i].name);
        dm_free(list->items);
        dm_free(list);
}

int dream_dataset_list(struct dream_client *c, struct dream_dataset_list **ret)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__ListDatasets m = DREAM__V1__LIST_DATASETS__INIT;
        const Dream__V1__ListDatasetsReply *lr;
        struct dream_dataset_list *list = NULL;
        proto_response *resp;
        int r;

        req.body_case = DREAM__V1__REQUEST__BODY_LIST_DATASETS;
        req.list_datasets = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_LIST_DATASETS, &resp);
        if (r < 0)
                return r;
        lr = resp->list_datasets;
        list = dm_calloc(1, sizeof(*list));
        if (!list)
                goto nomem;
        list->items = dm_calloc(lr->n_datasets ? lr->n_datasets : 1, sizeof(*list->items));
        if (!list->items)
                goto nomem;
        for (size_t i = 0; i < lr->n_datasets; i++) {
                const Dream__V1__DatasetSummary *s = lr->datasets[i];
                struct dream_dataset_summary *d = &list->items[i];

                d->name = dup_or_empty(s->name);
                list->n = i + 1;
                if (!d->name)
                        goto nomem;
                d->task = (enum dream_task)s->task;
                d->rows = s->rows;
                d->columns = s->columns;
                d->stored_bytes = s->stored_bytes;
        }
        proto_response_free(resp);
        *ret = list;
        return 0;
nomem:
        dcl_set_err(c, "out of memory");
        dream_dataset_list_free(list);
        proto_response_free(resp);
        return DREAM_E_NOMEM;
}

int dream_flush(struct dream_client *c, const char *name, struct dream_flush_result *ret)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Flush m = DREAM__V1__FLUSH__INIT;
        proto_response *resp;
        int r;

        r = check_name(c, name);
        if (r == 0 && ret)
                r = dcl_sized_check(c, "dream_flush_result", ret);
        if (r < 0)
                return r;
        m.dataset = (char *)name;
        req.body_case = DREAM__V1__REQUEST__BODY_FLUSH;
        req.flush = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_FLUSH, &resp);
        if (r < 0)
                return r;
        if (ret) {
                struct dream_flush_result fr = DREAM_INIT(struct dream_flush_result);

                fr.segments_sealed = resp->flush->segments_sealed;
                fr.rows_sealed = resp->flush->rows_sealed;
                dcl_sized_out(ret, &fr, sizeof(fr));
        }
        proto_response_free(resp);
        return 0;
}

/* ---- operations ------------------------------------------------------------------------ */

int dream_backup(struct dream_client *c, const char *path, struct dream_backup_result *ret)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Backup m = DREAM__V1__BACKUP__INIT;
        proto_response *resp;
        size_t len;
        int r;

        if (ret) {
                r = dcl_sized_check(c, "dream_backup_result", ret);
                if (r < 0)
                        return r;
        }
        if (!path || path[0] != '/') {
                dcl_set_err(c, "backup path '%s': not an absolute path on the server",
                            path ? path : "");
                return DREAM_E_INVAL;
        }
        len = strlen(path);
        if (len > DREAM_MAX_PATH) {
                dcl_set_err(c, "backup path: %zu bytes, at most %u", len, DREAM_MAX_PATH);
                return DREAM_E_LIMIT;
        }
        m.path = (char *)path;
        req.body_case = DREAM__V1__REQUEST__BODY_BACKUP;
        req.backup = &m;
        r = dcl_call(c, &req, DREAM__V1__RESPONSE__BODY_BACKUP, &resp);
        if (r < 0)
                return r;
        if (ret) {
                struct dream_backup_result br = DREAM_INIT(struct dream_backup_result);

                br.bytes = resp->backup->bytes;
                br.seconds = resp->backup->seconds;
                dcl_sized_out(ret, &br, sizeof(br));
        }
        proto_response_free(resp);
        return 0;
}

/* ---- ingest ---------------------------------------------------------------------------- */

int dcl_cols_pack(struct dream_client *c, const struct dream_rows *rows, const char *what,
                  struct dcl_cols *ret)
{
        size_t bytes;

        memset(ret, 0, sizeof(*ret));
        if (!rows || rows->n_rows == 0 || rows->n_cols == 0 || rows->n_cols > DREAM_MAX_COLS ||
            rows->n_rows > DREAM_MAX_BATCH_ROWS) {
                dcl_set_err(c, "%s needs 1 to %u rows and 1 to %u columns", what,
                            DREAM_MAX_BATCH_ROWS, DREAM_MAX_COLS);
                return DREAM_E_INVAL;
        }
        bytes = (size_t)rows->n_rows * 8;
        ret->cv = dm_calloc(rows->n_cols, sizeof(*ret->cv));
        ret->cvp = dm_calloc(rows->n_cols, sizeof(*ret->cvp));
        if (!ret->cv || !ret->cvp) {
                dcl_cols_release(ret);
                dcl_set_err(c, "out of memory");
                return DREAM_E_NOMEM;
        }
        ret->n = rows->n_cols;
        dream__v1__columns__init(&ret->msg);
        for (uint32_t j = 0; j < rows->n_cols; j++) {
                Dream__V1__ColumnValues *cv = &ret->cv[j];
                dream__v1__column_values__init(cv);
                cv->kind = (Dream__V1__ColumnKind)rows->cols[j].kind;
                cv->scale = rows->cols[j].scale;
                cv->values.len = bytes;
#if __BYTE_ORDER == __LITTLE_ENDIAN
                /* The wire's byte order: pack straight from the caller's
                 * values (protobuf-c only reads them). */
                cv->values.data = (uint8_t *)(uintptr_t)rows->cols[j].v;
#else
                int r = proto_values_new(rows->cols[j].v, rows->n_rows, &cv->values);
                if (r < 0) {
                        dcl_cols_release(ret);
                        dcl_set_err(c, "out of memory");
                        return r;
                }
#endif
                ret->cvp[j] = cv;
        }
        ret->msg.n_rows = rows->n_rows;
        ret->msg.n_columns = rows->n_cols;
        ret->msg.columns = ret->cvp;
        return 0;
}

void dcl_cols_release(struct dcl_cols *k)
{
#if __BYTE_ORDER != __LITTLE_ENDIAN
        for (uint32_t j = 0; k->cv && j < k->n; j++)
                dm_free(k->cv[j].values.data);
#endif
        dm_free(k->cv);
        dm_free(k->cvp);
        memset(k, 0, sizeof(*k));
}

int dream_ingest_send(struct dream_client *c, const char *dataset, uint64_t client_batch_id,
                      const struct dream_rows *rows, uint64_t *ret_id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Ingest m = DREAM__V1__INGEST__INIT;
        struct dcl_cols cols;
        int r;

        r = dcl_begin(c);
        if (r == 0)
                r = check_name(c, dataset);
        if (r == 0)
                r = dcl_cols_pack(c, rows, "an ingest block", &cols);
        if (r < 0)
                return r;
        m.dataset = (char *)dataset;
        m.client_batch_id = client_batch_id;
        m.rows = &cols.msg;
        req.body_case = DREAM__V1__REQUEST__BODY_INGEST;
        req.ingest = &m;
        r = dcl_send(c, &req, ret_id);
        dcl_cols_release(&cols);
        return r;
}

int dream_ingest_wait(struct dream_client *c, uint64_t id, struct dream_ingest_ack *ret)
{
        proto_response *resp;
        int r;

        r = dcl_begin(c);
        if (r == 0 && ret)
                r = dcl_sized_check(c, "dream_ingest_ack", ret);
        if (r == 0)
                r = dcl_recv(c, id, &resp);
        if (r < 0)
                return r;
        r = dcl_status(c, resp, DREAM__V1__RESPONSE__BODY_INGEST);
        if (r == 0 && (resp->more || !resp->ingest->committed))
                r = dcl_fail(c, DREAM_E_PROTO, "ingest acknowledged without a commit");
        if (r == 0 && ret) {
                struct dream_ingest_ack ack = DREAM_INIT(struct dream_ingest_ack);

                ack.first_row = resp->ingest->first_row;
                ack.rows = resp->ingest->rows;
                ack.duplicate = resp->ingest->duplicate;
                ack.client_batch_id = resp->ingest->client_batch_id;
                dcl_sized_out(ret, &ack, sizeof(ack));
        }
        proto_response_free(resp);
        return r;
}

int dream_ingest(struct dream_client *c, const char *dataset, uint64_t client_batch_id,
                 const struct dream_rows *rows, struct dream_ingest_ack *ret)
{
        uint64_t id;
        int r = ret ? dcl_sized_check(c, "dream_ingest_ack", ret) : 0;

        if (r == 0)
                r = dream_ingest_send(c, dataset, client_batch_id, rows, &id);
        if (r < 0)
                return r;
        return dream_ingest_wait(c, id, ret);
}

/* ---- export ------------------------------------------------------------------------------ */

/* Scratch for decoding a chunk's columns. */
struct rows_scratch {
        struct dream_values *vals;
        int64_t *v;
        size_t v_cap; /* int64 entries */
        uint32_t cols_cap;
};

static void scratch_release(struct rows_scratch *s)
{
        dm_free(s->vals);
        dm_free(s->v);
        memset(s, 0, sizeof(*s));
}

static int chunk_rows(struct dream_client *c, const Dream__V1__Columns *in, struct rows_scratch *s,
                      struct dream_rows *out)
{
        size_t need;

        if (__builtin_mul_overflow((size_t)in->n_rows, in->n_columns, &need))
                return dcl_fail(c, DREAM_E_PROTO, "export chunk too large");
        if (in->n_columns > s->cols_cap) {
                struct dream_values *p = dm_reallocarray(s->vals, in->n_columns, sizeof(*p));
                if (!p)
                        return DREAM_E_NOMEM;
                s->vals = p;
                s->cols_cap = (uint32_t)in->n_columns;
        }
        if (need > s->v_cap) {
                int64_t *p = dm_reallocarray(s->v, need, sizeof(*p));
                if (!p)
                        return DREAM_E_NOMEM;
                s->v = p;
                s->v_cap = need;
        }
        for (size_t j = 0; j < in->n_columns; j++) {
                const Dream__V1__ColumnValues *cv = in->columns[j];
                int64_t *dst = s->v + j * in->n_rows;

                /* Lengths were validated (n_rows * 8) by proto_response_decode. */
                if (proto_values_read(&cv->values, in->n_rows, dst) < 0)
                        return dcl_fail(c, DREAM_E_PROTO, "export chunk: bad column length");
                s->vals[j].kind = (enum dream_kind)cv->kind;
                s->vals[j].scale = cv->scale;
                s->vals[j].v = dst;
        }
        out->n_rows = in->n_rows;
        out->n_cols = (uint32_t)in->n_columns;
        out->cols = s->vals;
        return 0;
}

int dream_export(struct dream_client *c, const char *dataset, uint64_t first_row,
                 uint64_t row_count, dream_rows_fn fn, void *arg, uint64_t *ret_rows)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Export m = DREAM__V1__EXPORT__INIT;
        struct rows_scratch s = {0};
        uint64_t id, next = first_row, delivered = 0;
        int r, rc = 0;

        r = dcl_begin(c);
        if (r == 0)
                r = check_name(c, dataset);
        if (r < 0)
                return r;
        m.dataset = (char *)dataset;
        m.first_row = first_row;
        m.row_count = row_count;
        req.body_case = DREAM__V1__REQUEST__BODY_EXPORT;
        req.export = &m;
        r = dcl_send(c, &req, &id);
        if (r < 0)
                return r;
        for (bool more = true; more;) {
                proto_response *resp;
                struct dream_rows rows;

                r = dcl_recv(c, id, &resp);
                if (r < 0)
                        goto free_scratch;
                more = resp->more;
                r = dcl_status(c, resp, DREAM__V1__RESPONSE__BODY_EXPORT);
                if (r == 0 && rc == 0 && resp->export->rows && resp->export->rows->n_rows) {
                        if (resp->export->first_row != next) {
                                r = dcl_fail(c, DREAM_E_PROTO,
                                             "export chunk starts at row %llu, expected %llu",
                                             (unsigned long long)resp->export->first_row,
                                             (unsigned long long)next);
                        } else {
                                r = chunk_rows(c, resp->export->rows, &s, &rows);
                                if (r == DREAM_E_NOMEM)
                                        dcl_set_err(c, "out of memory");
                        }
                        if (r == 0) {
                                next += rows.n_rows;
                                delivered += rows.n_rows;
                                if (fn)
                                        rc = fn(arg, resp->export->first_row, &rows);
                        }
                }
                proto_response_free(resp);
                if (r < 0) {
                        if (more && !c->broken)
                                dcl_drain(c, id);
                        goto free_scratch;
                }
        }
        r = rc;
        if (r == 0 && ret_rows)
                *ret_rows = delivered;
free_scratch:
        scratch_release(&s);
        return r;
}

/* ---- batches -------------------------------------------------------------------------------- */

/* The float32 array of a bytes field: in place when aligned and the host is
 * little-endian, else copied into *scratch. */
static const float *f32_view(const ProtobufCBinaryData *b, size_t n, float **scratch, size_t *cap)
{
#if __BYTE_ORDER == __LITTLE_ENDIAN
        if (((uintptr_t)b->data & (sizeof(float) - 1)) == 0)
                return (const float *)(const void *)b->data;
#endif
        if (n > *cap) {
                float *p = dm_reallocarray(*scratch, n, sizeof(float));
                if (!p)
                        return NULL;
                *scratch = p;
                *cap = n;
        }
        proto_f32_get(*scratch, b->data, n);
        return *scratch;
}

int dream_get_batches(struct dream_client *c, const char *dataset,
                      const struct dream_batch_opts *opts, dream_batch_fn fn, void *arg)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__GetBatches m = DREAM__V1__GET_BATCHES__INIT;
        Dream__V1__Budget budget = DREAM__V1__BUDGET__INIT;
        struct dream_batch_opts o;
        float *scr[3] = {NULL, NULL, NULL};
        size_t cap[3] = {0, 0, 0};
        uint64_t id;
        int r, rc = 0;

        r = dcl_begin(c);
        if (r == 0)
                r = check_name(c, dataset);
        if (r < 0)
                return r;
        dream_batch_opts_default(&o);
        if (opts) {
                r = dcl_sized_in(c, "dream_batch_opts", &o, opts, sizeof(o));
                if (r < 0)
                        return r;
        }
        if (o.resume_token_len > DREAM_RESUME_TOKEN_MAX) {
                dcl_set_err(c, "resume token longer than %u bytes", DREAM_RESUME_TOKEN_MAX);
                return DREAM_E_INVAL;
        }
        m.dataset = (char *)dataset;
        m.mode = (Dream__V1__BatchMode)o.mode;
        m.batch_size = o.batch_size;
        if (o.budget_fraction > 0) {
                budget.kind_case = DREAM__V1__BUDGET__KIND_FRACTION;
                budget.fraction = o.budget_fraction;
                m.budget = &budget;
        } else if (o.budget_rows > 0) {
                budget.kind_case = DREAM__V1__BUDGET__KIND_ROWS;
                budget.rows = o.budget_rows;
                m.budget = &budget;
        }
        m.seed = o.seed;
        m.epoch = o.epoch;
        m.start = o.start;
        m.resume_token.data = (uint8_t *)(uintptr_t)o.resume_token;
        m.resume_token.len = o.resume_token ? o.resume_token_len : 0;
        m.max_batches = o.max_batches;
        req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
        req.get_batches = &m;
        r = dcl_send(c, &req, &id);
        if (r < 0)
                return r;
        for (bool more = true; more;) {
                proto_response *resp;

                r = dcl_recv(c, id, &resp);
                if (r < 0)
                        goto free_scratch;
                more = resp->more;
                r = dcl_status(c, resp, DREAM__V1__RESPONSE__BODY_GET_BATCHES);
                if (r == 0 && rc == 0) {
                        const Dream__V1__Batch *b = resp->get_batches;
                        struct dream_batch out;

                        /* Shapes (n * d * 4 bytes...) were validated by
                         * proto_response_decode. */
                        memset(&out, 0, sizeof(out));
                        out.n = b->n;
                        out.d = b->d;
                        out.features =
                            f32_view(&b->features, (size_t)b->n * b->d, &scr[0], &cap[0]);
                        if (b->targets.len)
                                out.targets = f32_view(&b->targets, b->n, &scr[1], &cap[1]);
                        if (b->weights.len)
                                out.weights = f32_view(&b->weights, b->n, &scr[2], &cap[2]);
                        if ((!out.features && b->n && b->d) || (b->targets.len && !out.targets) ||
                            (b->weights.len && !out.weights)) {
                                dcl_set_err(c, "out of memory");
                                r = DREAM_E_NOMEM;
                        } else {
                                out.resume_token = b->resume_token.data;
                                out.resume_token_len = b->resume_token.len;
                                out.position = b->position;
                                out.epoch = b->epoch;
                                if (fn)
                                        rc = fn(arg, &out);
                        }
                }
                proto_response_free(resp);
                if (r < 0) {
                        if (more && !c->broken)
                                dcl_drain(c, id);
                        goto free_scratch;
                }
        }
        r = rc;
free_scratch:
        for (int i = 0; i < 3; i++)
                dm_free(scr[i]);
        return r;
}
