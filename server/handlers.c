/* The dataset requests (create, list, describe, drop, ingest, flush,
 * export), stats and backup: handlers of the route table, run on the worker
 * pool (srv_req_work). They may block (LMDB, sealing, condensing) and write
 * framed responses into j->out, which the loop then sends. Export produces
 * one chunk per round, so that a slow client parks the stream instead of the
 * server buffering it (conn.c: req_after_cb), and no read transaction is held
 * across a network wait.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "proto/status.h"
#include "server/internal.h"
#include "server/permute.h"
#include "server/reply.h"
#include "server/routes.h"

#ifndef DREAM_VERSION
#define DREAM_VERSION "0.0.0"
#endif

/* ---- conversions ------------------------------------------------------------ */

static Dream__V1__ColumnKind kind_to_wire(enum gd_kind k)
{
        switch (k) {
        case GD_INT:
                return DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
        case GD_DEC:
                return DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL;
        default:
                return DREAM__V1__COLUMN_KIND__COLUMN_KIND_F64;
        }
}

static enum gd_kind kind_from_wire(Dream__V1__ColumnKind k)
{
        switch (k) {
        case DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL:
                return GD_DEC;
        case DREAM__V1__COLUMN_KIND__COLUMN_KIND_F64:
                return GD_F64;
        default:
                return GD_INT;
        }
}

static Dream__V1__Task task_to_wire(enum gd_task t)
{
        switch (t) {
        case GD_TASK_REGRESSION:
                return DREAM__V1__TASK__TASK_REGRESSION;
        case GD_TASK_CLASSIFICATION:
                return DREAM__V1__TASK__TASK_CLASSIFICATION;
        default:
                return DREAM__V1__TASK__TASK_UNSPECIFIED;
        }
}

/* Wire F64 values are IEEE bit patterns; the table holds order-preserving
 * keys (gd_f64_to_key). */
static int64_t f64_bits_to_key(int64_t bits)
{
        double d;

        memcpy(&d, &bits, sizeof(d));
        return gd_f64_to_key(d);
}

static int64_t key_to_f64_bits(int64_t key)
{
        double d = gd_key_to_f64(key);
        int64_t bits;

        memcpy(&bits, &d, sizeof(bits));
        return bits;
}

/* Columns message for rows [0, t->n_rows) of t. The values buffers are
 * allocated (columns_release frees them). */
struct wire_columns {
        Dream__V1__Columns cols;
        Dream__V1__ColumnValues *cv;   /* n_cols */
        Dream__V1__ColumnValues **cvp; /* n_cols */
};

static void columns_release(struct wire_columns *w)
{
        if (w->cv)
                for (size_t i = 0; i < w->cols.n_columns; i++)
                        dm_free(w->cv[i].values.data);
        dm_free(w->cv);
        dm_free(w->cvp);
        memset(w, 0, sizeof(*w));
}

static int columns_from_table(const struct gd_table *t, struct wire_columns *w)
{
        size_t bytes;

        memset(w, 0, sizeof(*w));
        dream__v1__columns__init(&w->cols);
        if (t->n_rows > DREAM_MAX_BATCH_ROWS ||
            __builtin_mul_overflow((size_t)t->n_rows, (size_t)8, &bytes))
                return DREAM_E_LIMIT;
        w->cv = dm_calloc(t->n_cols, sizeof(*w->cv));
        w->cvp = dm_calloc(t->n_cols, sizeof(*w->cvp));
        if (!w->cv || !w->cvp)
                goto nomem;
        w->cols.n_rows = (uint32_t)t->n_rows;
        w->cols.columns = w->cvp;
        for (uint32_t j = 0; j < t->n_cols; j++) {
                const struct gd_col *col = &t->cols[j];
                Dream__V1__ColumnValues *v = &w->cv[j];
                uint8_t *p;

                dream__v1__column_values__init(v);
                w->cvp[j] = v;
                w->cols.n_columns = j + 1;
                v->kind = kind_to_wire(col->kind);
                v->scale = col->kind == GD_DEC ? col->scale : 0;
                p = dm_malloc(bytes ? bytes : 1);
                if (!p)
                        goto nomem;
                v->values.data = p;
                v->values.len = bytes;
                if (col->kind == GD_F64) {
                        for (uint64_t i = 0; i < t->n_rows; i++) {
                                int64_t b = key_to_f64_bits(col->v[i]);
                                proto_values_put(p + i * 8, &b, 1);
                        }
                } else {
                        proto_values_put(p, col->v, t->n_rows);
                }
        }
        return 0;
nomem:
        columns_release(w);
        return DREAM_E_NOMEM;
}

/* ---- datasets ----------------------------------------------------------------- */

void srv_h_create(struct srv_req *j)
{
        const Dream__V1__CreateDataset *m = j->req->create_dataset;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__CreateDatasetReply cr = DREAM__V1__CREATE_DATASET_REPLY__INIT;
        struct store_schema sc;
        const char *target = m->target ? m->target : "";
        int r;

        memset(&sc, 0, sizeof(sc));
        sc.n_cols = (uint32_t)m->n_columns; /* <= DREAM_MAX_COLS: validated */
        sc.cols = dm_calloc(m->n_columns, sizeof(*sc.cols));
        if (!sc.cols) {
                srv_req_error(j, DREAM_E_NOMEM, "create_dataset: out of memory");
                return;
        }
        sc.target = -1;
        for (size_t i = 0; i < m->n_columns; i++) {
                sc.cols[i].name = m->columns[i]->name;
                sc.cols[i].kind = kind_from_wire(m->columns[i]->kind);
                sc.cols[i].scale = (uint8_t)m->columns[i]->scale;
                if (target[0] && strcmp(target, m->columns[i]->name) == 0)
                        sc.target = (int32_t)i;
        }
        if (sc.target >= 0) {
                /* No data to guess from yet: a class count means
                 * classification, else regression unless said otherwise. */
                if (m->task == DREAM__V1__TASK__TASK_CLASSIFICATION || m->class_count > 0)
                        sc.task = GD_TASK_CLASSIFICATION;
                else
                        sc.task = GD_TASK_REGRESSION;
                sc.n_classes = m->class_count;
        }
        r = store_dataset_create(j->srv->store, m->name, &sc);
        dm_free(sc.cols);
        if (r == DREAM_E_SCHEMA || r == DREAM_E_INVAL) {
                srv_req_error(j, r, "create_dataset: dataset '%s' refused by the store: %s",
                              m->name, dream_strerror(r));
                return;
        }
        if (r < 0) {
                srv_store_error(j, r, "create_dataset.name", m->name);
                return;
        }
        dm_info("dataset '%s' created (%zu columns)", m->name, m->n_columns);
        cr.name = m->name;
        resp.body_case = DREAM__V1__RESPONSE__BODY_CREATE_DATASET;
        resp.create_dataset = &cr;
        srv_reply(j, &resp);
        j->done = true;
}

void srv_h_describe(struct srv_req *j)
{
        const char *name = j->req->describe_dataset->name;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__DatasetInfo di = DREAM__V1__DATASET_INFO__INIT;
        Dream__V1__ColumnSpec *specs = NULL, **specp = NULL;
        struct store_info *info = NULL;
        int r;

        r = store_dataset_describe(j->srv->store, name, &info);
        if (r < 0) {
                srv_store_error(j, r, "describe_dataset.name", name);
                return;
        }
        specs = dm_calloc(info->schema.n_cols, sizeof(*specs));
        specp = dm_calloc(info->schema.n_cols, sizeof(*specp));
        if (!specs || !specp) {
                srv_req_error(j, DREAM_E_NOMEM, "describe_dataset: out of memory");
                goto free_all;
        }
        for (uint32_t i = 0; i < info->schema.n_cols; i++) {
                dream__v1__column_spec__init(&specs[i]);
                specs[i].name = info->schema.cols[i].name;
                specs[i].kind = kind_to_wire(info->schema.cols[i].kind);
                specs[i].scale =
                    info->schema.cols[i].kind == GD_DEC ? info->schema.cols[i].scale : 0;
                specp[i] = &specs[i];
        }
        di.name = info->name;
        di.task = task_to_wire(info->schema.task);
        di.target = info->schema.target >= 0 ? info->schema.cols[info->schema.target].name : "";
        di.class_count = info->schema.n_classes;
        di.rows = info->rows;
        di.columns = info->schema.n_cols;
        di.segments = info->segments > UINT32_MAX ? UINT32_MAX : (uint32_t)info->segments;
        di.staged_rows = info->staged_rows;
        di.stored_bytes = info->stored_bytes;
        di.csv_bytes = info->raw_bytes;
        di.bases = info->bases;
        di.ratio = info->ratio;
        di.created_unix = info->created_unix;
        di.n_schema = info->schema.n_cols;
        di.schema = specp;
        resp.body_case = DREAM__V1__RESPONSE__BODY_DESCRIBE_DATASET;
        resp.describe_dataset = &di;
        srv_reply(j, &resp);
        j->done = true;
free_all:
        dm_free(specs);
        dm_free(specp);
        store_info_free(info);
}

void srv_h_list(struct srv_req *j)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__ListDatasetsReply lr = DREAM__V1__LIST_DATASETS_REPLY__INIT;
        Dream__V1__DatasetSummary *sum = NULL, **sump = NULL;
        struct store_info **infos = NULL;
        char **names = NULL;
        uint32_t count = 0, n = 0;
        int r;

        r = store_dataset_list(j->srv->store, &names, &count);
        if (r < 0) {
                srv_req_error(j, r, "list_datasets: %s", dream_strerror(r));
                return;
        }
        sum = dm_calloc(count ? count : 1, sizeof(*sum));
        sump = dm_calloc(count ? count : 1, sizeof(*sump));
        infos = dm_calloc(count ? count : 1, sizeof(*infos));
        if (!sum || !sump || !infos) {
                srv_req_error(j, DREAM_E_NOMEM, "list_datasets: out of memory");
                goto free_all;
        }
        for (uint32_t i = 0; i < count; i++) {
                struct store_info *info;

                r = store_dataset_describe(j->srv->store, names[i], &info);
                if (r == DREAM_E_NOTFOUND)
                        continue; /* dropped meanwhile */
                if (r < 0) {
                        srv_store_error(j, r, "list_datasets", names[i]);
                        goto free_all;
                }
                infos[n] = info;
                dream__v1__dataset_summary__init(&sum[n]);
                sum[n].name = info->name;
                sum[n].task = task_to_wire(info->schema.task);
                sum[n].rows = info->rows;
                sum[n].columns = info->schema.n_cols;
                sum[n].stored_bytes = info->stored_bytes;
                sump[n] = &sum[n];
                n++;
        }
        lr.n_datasets = n;
        lr.datasets = sump;
        resp.body_case = DREAM__V1__RESPONSE__BODY_LIST_DATASETS;
        resp.list_datasets = &lr;
        srv_reply(j, &resp);
        j->done = true;
free_all:
        for (uint32_t i = 0; infos && i < n; i++)
                store_info_free(infos[i]);
        dm_free(infos);
        dm_free(sum);
        dm_free(sump);
        store_names_free(names, count);
}

void srv_h_drop(struct srv_req *j)
{
        const char *name = j->req->drop_dataset->name;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__DropDatasetReply dr = DREAM__V1__DROP_DATASET_REPLY__INIT;
        int r;

        r = store_dataset_drop(j->srv->store, name);
        if (r < 0) {
                srv_store_error(j, r, "drop_dataset.name", name);
                return;
        }
        dm_info("dataset '%s' dropped", name);
        resp.body_case = DREAM__V1__RESPONSE__BODY_DROP_DATASET;
        resp.drop_dataset = &dr;
        srv_reply(j, &resp);
        j->done = true;
}

/* Rows of a Columns message (shape already checked against the schema's
 * column count) as a table named and typed after the schema. n_rows x
 * n_cols x 8 bytes: exactly the bytes of the frame's values, so the
 * allocation is bounded by what was received. */
static int srv_table_from_wire(const Dream__V1__Columns *rows, const struct store_schema *sc,
                               struct gd_table **ret, char *msg, size_t msg_size)
{
        struct gd_table *t = NULL;
        int r;

        r = gd_table_new(rows->n_rows, sc->n_cols, &t);
        if (r < 0) {
                snprintf(msg, msg_size, "rows: %s", dream_strerror(r));
                return r;
        }
        for (uint32_t c = 0; c < sc->n_cols; c++) {
                const Dream__V1__ColumnValues *cv = rows->columns[c];
                struct gd_col *col = &t->cols[c];

                r = gd_table_set_name(t, c, sc->cols[c].name);
                if (r == 0)
                        r = proto_values_read(&cv->values, rows->n_rows, col->v);
                if (r < 0) {
                        snprintf(msg, msg_size, "rows.columns[%u]: %s", c, dream_strerror(r));
                        gd_table_free(t);
                        return r;
                }
                col->kind = kind_from_wire(cv->kind);
                col->scale = col->kind == GD_DEC ? (uint8_t)cv->scale : 0;
                if (col->kind == GD_F64)
                        for (uint32_t i = 0; i < rows->n_rows; i++)
                                col->v[i] = f64_bits_to_key(col->v[i]);
        }
        t->target = sc->target;
        t->task = sc->task;
        *ret = t;
        return 0;
}

void srv_h_ingest(struct srv_req *j)
{
        const Dream__V1__Ingest *m = j->req->ingest;
        const Dream__V1__Columns *rows = m->rows; /* validated: present, shapes consistent */
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__IngestAck ack = DREAM__V1__INGEST_ACK__INIT;
        struct store_info *info = NULL;
        struct gd_table *t = NULL;
        uint64_t first = 0;
        bool needs_seal = false;
        char msg[256];
        int r;

        r = store_dataset_describe(j->srv->store, m->dataset, &info);
        if (r < 0) {
                srv_store_error(j, r, "ingest.dataset", m->dataset);
                return;
        }
        r = proto_columns_check_count(rows, info->schema.n_cols, "ingest.rows", msg, sizeof(msg));
        if (r < 0) {
                srv_req_error(j, r, "%s (dataset '%s')", msg, m->dataset);
                goto free_info;
        }
        r = srv_table_from_wire(rows, &info->schema, &t, msg, sizeof(msg));
        if (r < 0) {
                srv_req_error(j, r, "ingest.%s", msg);
                goto free_info;
        }
        r = store_append(j->srv->store, m->dataset, t, m->client_batch_id, &first, &needs_seal);
        if (r == DREAM_E_EXISTS && m->client_batch_id) {
                srv_req_error(j, r,
                              "ingest.client_batch_id: %llu was already committed to dataset '%s' "
                              "with a different row count",
                              (unsigned long long)m->client_batch_id, m->dataset);
                goto free_table;
        }
        if (r < 0) {
                srv_store_error(j, r, "ingest.dataset", m->dataset);
                goto free_table;
        }
        ack.first_row = first;
        ack.rows = rows->n_rows;
        ack.committed = true;
        /* A fresh append gets row numbers >= the row count seen before it;
         * a batch id committed earlier returns its earlier, lower rows. */
        ack.duplicate = m->client_batch_id != 0 && first < info->rows;
        ack.client_batch_id = m->client_batch_id;
        if (!ack.duplicate)
                j->rows_ingested = rows->n_rows;
        j->needs_seal = needs_seal;
        j->seal_dataset = m->dataset;
        resp.body_case = DREAM__V1__RESPONSE__BODY_INGEST;
        resp.ingest = &ack;
        srv_reply(j, &resp);
        j->done = true;
free_table:
        gd_table_free(t);
free_info:
        store_info_free(info);
}

void srv_h_flush(struct srv_req *j)
{
        const char *name = j->req->flush->dataset;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__FlushReply fr = DREAM__V1__FLUSH_REPLY__INIT;
        struct store_info *before = NULL, *after = NULL;
        uint64_t sealed = 0;
        int r;

        r = store_dataset_describe(j->srv->store, name, &before);
        if (r == 0)
                r = store_seal(j->srv->store, name, true, &sealed);
        if (r == 0)
                r = store_dataset_describe(j->srv->store, name, &after);
        if (r < 0) {
                srv_store_error(j, r, "flush.dataset", name);
                goto free_all;
        }
        /* Counted with the background seals: a flush that sealed rows. */
        srv_stats_add(&j->srv->stats.seals, sealed > 0);
        fr.rows_sealed = sealed;
        fr.segments_sealed =
            after->segments > before->segments ? (uint32_t)(after->segments - before->segments) : 0;
        resp.body_case = DREAM__V1__RESPONSE__BODY_FLUSH;
        resp.flush = &fr;
        srv_reply(j, &resp);
        j->done = true;
free_all:
        store_info_free(before);
        store_info_free(after);
}

void srv_h_stats(struct srv_req *j)
{
        struct srv *s = j->srv;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__StatsReply st = DREAM__V1__STATS_REPLY__INIT;
        struct srv_stats_reply more;
        int r;

        /* datasets, per-dataset and per-type fields, seals, map use (metrics.c) */
        r = srv_stats_reply_fill(s, &st, &more);
        if (r < 0) {
                srv_req_error(j, r, "stats: %s", dream_strerror(r));
                return;
        }
        st.connections_total = __atomic_load_n(&s->stats.connections_total, __ATOMIC_RELAXED);
        st.connections_refused = __atomic_load_n(&s->stats.connections_refused, __ATOMIC_RELAXED);
        st.requests_total = __atomic_load_n(&s->stats.requests_total, __ATOMIC_RELAXED);
        st.request_errors_total = __atomic_load_n(&s->stats.request_errors_total, __ATOMIC_RELAXED);
        st.bytes_in = __atomic_load_n(&s->stats.bytes_in, __ATOMIC_RELAXED);
        st.bytes_out = __atomic_load_n(&s->stats.bytes_out, __ATOMIC_RELAXED);
        st.rows_ingested = __atomic_load_n(&s->stats.rows_ingested, __ATOMIC_RELAXED);
        st.batches_served = __atomic_load_n(&s->stats.batches_served, __ATOMIC_RELAXED);
        st.uptime_seconds = j->uptime_s; /* captured on the loop at dispatch */
        st.connections_open = j->conns_open;
        resp.body_case = DREAM__V1__RESPONSE__BODY_STATS;
        resp.stats = &st;
        srv_reply(j, &resp);
        srv_stats_reply_release(&more);
        j->done = true;
}

/* ---- backup ------------------------------------------------------------------------ */

/* 1 when directory `path` has no entry but . and .. (and the
 * data.mdb.partial of an interrupted backup, which is overwritten), 0 when
 * it has one, negative errno when it cannot be read. */
static int dir_empty(const char *path)
{
        struct dirent *e;
        DIR *d = opendir(path);
        int empty = 1;

        if (!d)
                return -errno;
        while ((e = readdir(d)) != NULL)
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
                    strcmp(e->d_name, "data.mdb.partial") != 0) {
                        empty = 0;
                        break;
                }
        closedir(d);
        return empty;
}

/* Hot, compacted copy of the store into backup.path (validated: absolute,
 * at most DREAM_MAX_PATH bytes). The path must not exist yet (its parent
 * must) or be an empty directory; anything else is refused before copying.
 * On a failed copy, what this call created is removed again. */
void srv_h_backup(struct srv_req *j)
{
        const char *path = j->req->backup->path;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__BackupReply br = DREAM__V1__BACKUP_REPLY__INIT;
        char file[DREAM_MAX_PATH + 16];
        struct timespec t0, t1;
        struct stat sb;
        bool created = false;
        int r;

        if (stat(path, &sb) == 0) {
                if (!S_ISDIR(sb.st_mode)) {
                        srv_req_error(j, DREAM_E_EXISTS,
                                      "backup.path: '%s' exists and is not a directory; give a new "
                                      "path or an empty directory",
                                      path);
                        return;
                }
                r = dir_empty(path);
                if (r == 0) {
                        srv_req_error(
                            j, DREAM_E_EXISTS,
                            "backup.path: directory '%s' is not empty; give a new path or an "
                            "empty directory",
                            path);
                        return;
                }
                if (r < 0) {
                        srv_req_error(j, DREAM_E_DENIED,
                                      "backup.path: cannot read directory '%s': %s", path,
                                      strerror(-r));
                        return;
                }
        } else if (errno == ENOENT) {
                created = true;
        } else {
                srv_req_error(j, DREAM_E_DENIED, "backup.path: cannot access '%s': %s", path,
                              strerror(errno));
                return;
        }
        snprintf(file, sizeof(file), "%s/data.mdb", path);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = store_backup(j->srv->store, path);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r < 0) {
                int saved = r;
                /* store_backup leaves nothing half-written behind. */
                if (created)
                        (void)rmdir(path);
                dm_error("backup to '%s' failed: %s", path, dream_strerror(saved));
                if (saved == -ENOENT)
                        srv_req_error(
                            j, DREAM_E_NOTFOUND,
                            "backup.path: cannot create '%s': its parent directory does not "
                            "exist",
                            path);
                else if (saved == -EACCES || saved == -EPERM || saved == -EROFS)
                        srv_req_error(
                            j, DREAM_E_DENIED,
                            "backup.path: cannot write '%s': %s (dreamd writes it as its own "
                            "user)",
                            path, dream_strerror(saved));
                else if (saved == -ELOOP)
                        srv_req_error(j, DREAM_E_DENIED,
                                      "backup.path: '%s' or its data.mdb.partial is a symbolic "
                                      "link; dreamd writes backups only into a real directory "
                                      "(give the link's target, or remove the stale link)",
                                      path);
                else if (saved == -EEXIST)
                        srv_req_error(j, DREAM_E_EXISTS,
                                      "backup.path: '%s' already holds a data.mdb; give a new path",
                                      path);
                else
                        srv_req_error(j, saved, "backup to '%s' failed: %s", path,
                                      dream_strerror(saved));
                return;
        }
        br.path = (char *)path;
        br.bytes = stat(file, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        br.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        dm_info("backup written to '%s': %llu bytes in %.3f s", path, (unsigned long long)br.bytes,
                br.seconds);
        resp.body_case = DREAM__V1__RESPONSE__BODY_BACKUP;
        resp.backup = &br;
        srv_reply(j, &resp);
        j->done = true;
}

/* ---- export --------------------------------------------------------------------- */

struct export_state {
        uint64_t first, next, end;
        uint32_t chunk_rows;
        uint32_t id; /* the dataset every round reads (pinned at the start) */
        struct srv_req *j;
        uint64_t delivered_end;
};

static int export_cb(const struct gd_table *chunk, uint64_t first_row, void *arg)
{
        struct export_state *st = arg;
        struct srv_req *j = st->j;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__ExportChunk ec = DREAM__V1__EXPORT_CHUNK__INIT;
        struct wire_columns w;
        int r;

        if (first_row != st->delivered_end || chunk->n_rows == 0)
                return DREAM_E_CORRUPT;
        r = columns_from_table(chunk, &w);
        if (r < 0)
                return r;
        ec.first_row = first_row;
        ec.rows = &w.cols;
        st->delivered_end = first_row + chunk->n_rows;
        resp.more = st->delivered_end < st->end;
        resp.body_case = DREAM__V1__RESPONSE__BODY_EXPORT;
        resp.export = &ec;
        srv_reply(j, &resp);
        columns_release(&w);
        return 0;
}

/* A round of an export failed: say which rows the client already has. */
static void export_error(struct srv_req *j, const struct export_state *st, int r, const char *name)
{
        char sent[96];

        if (st->delivered_end > st->first)
                snprintf(sent, sizeof(sent), "rows %llu-%llu were sent",
                         (unsigned long long)st->first, (unsigned long long)st->delivered_end - 1);
        else
                snprintf(sent, sizeof(sent), "no row was sent");
        if (r == DREAM_E_NOTFOUND)
                srv_req_error(j, r,
                              "export: dataset '%s' was dropped while this export was reading it "
                              "(%s); export again to read the dataset now under that name",
                              name, sent);
        else if (r == DREAM_E_RANGE)
                srv_req_error(j, r,
                              "export: dataset '%s' has fewer rows than the %llu it had when "
                              "this export began (%s)",
                              name, (unsigned long long)st->end, sent);
        else
                srv_req_error(j, r, "export: dataset '%s': %s (%s)", name, dream_strerror(r), sent);
}

void srv_h_export(struct srv_req *j)
{
        const Dream__V1__Export *m = j->req->export;
        struct export_state *st = j->state;
        uint64_t count;
        int r;

        if (!st) {
                struct store_info *info = NULL;
                uint64_t row_bytes, chunk;

                r = store_dataset_describe(j->srv->store, m->dataset, &info);
                if (r < 0) {
                        srv_store_error(j, r, "export.dataset", m->dataset);
                        return;
                }
                if (m->first_row > info->rows) {
                        srv_req_error(j, DREAM_E_RANGE,
                                      "export.first_row: %llu, past the end of dataset '%s' (%llu "
                                      "rows)",
                                      (unsigned long long)m->first_row, m->dataset,
                                      (unsigned long long)info->rows);
                        store_info_free(info);
                        return;
                }
                st = dm_calloc(1, sizeof(*st));
                if (!st) {
                        store_info_free(info);
                        srv_req_error(j, DREAM_E_NOMEM, "export: out of memory");
                        return;
                }
                j->state = st;
                st->id = info->id;
                st->first = st->next = m->first_row;
                st->end = info->rows;
                if (m->row_count && m->row_count < info->rows - m->first_row)
                        st->end = m->first_row + m->row_count;
                /* Chunks fit in a frame: 8 bytes per value plus slack for
                 * the per-column framing. */
                row_bytes = (uint64_t)info->schema.n_cols * 8 + 16;
                chunk = m->chunk_rows ? m->chunk_rows : SRV_EXPORT_CHUNK_ROWS;
                if (chunk * row_bytes >
                    __atomic_load_n(&j->srv->cfg.max_frame, __ATOMIC_RELAXED) / 2)
                        chunk = (__atomic_load_n(&j->srv->cfg.max_frame, __ATOMIC_RELAXED) / 2) /
                                row_bytes;
                st->chunk_rows = chunk ? (uint32_t)chunk : 1;
                store_info_free(info);
        }
        if (st->next >= st->end) {
                /* Empty range: one chunk without rows ends the stream. */
                Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
                Dream__V1__ExportChunk ec = DREAM__V1__EXPORT_CHUNK__INIT;

                ec.first_row = st->next;
                resp.body_case = DREAM__V1__RESPONSE__BODY_EXPORT;
                resp.export = &ec;
                srv_reply(j, &resp);
                j->done = true;
                return;
        }
        count = st->end - st->next;
        if (count > st->chunk_rows)
                count = st->chunk_rows;
        st->j = j;
        st->delivered_end = st->next;
        r = store_scan(j->srv->store, m->dataset, st->id, st->next, count, st->chunk_rows,
                       export_cb, st);
        if (r == 0 && st->delivered_end == st->next)
                r = DREAM_E_CORRUPT; /* nothing delivered: the dataset changed */
        if (r < 0) {
                export_error(j, st, r, m->dataset);
                return;
        }
        st->next = st->delivered_end;
        if (st->next >= st->end)
                j->done = true;
}
