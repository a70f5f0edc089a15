#include "proto/validate.h"

#include <endian.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"

/* A string field as C text: callers building messages by hand may leave one
 * NULL, which protobuf-c packs as "". */
#define S(x) ((x) ? (x) : "")

/* ---- unpacking with a bounded allocator -------------------------------- */

struct budget {
        size_t used;  /* bytes charged so far */
        size_t limit; /* bytes that may be charged */
        int err;      /* DREAM_E_NOMEM or DREAM_E_LIMIT once an allocation failed */
};

static void *budget_alloc(void *data, size_t size)
{
        struct budget *b = data;
        size_t charge;
        void *p;

        /* Charge the allocator's per-chunk overhead as well, so that many tiny
         * allocations count for what they really cost. */
        if (__builtin_add_overflow(size, 32, &charge) ||
            __builtin_add_overflow(b->used, charge, &charge) || charge > b->limit) {
                b->err = DREAM_E_LIMIT;
                return NULL;
        }
        p = dm_malloc(size);
        if (!p) {
                b->err = DREAM_E_NOMEM;
                return NULL;
        }
        b->used = charge;
        return p;
}

static void plain_free(void *data, void *p)
{
        (void)data;
        dm_free(p);
}

static void *plain_alloc(void *data, size_t size)
{
        (void)data;
        return dm_malloc(size);
}

static int unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                  ProtobufCMessage **ret)
{
        struct budget b = {0, 0, 0};
        ProtobufCAllocator a = {budget_alloc, plain_free, &b};
        ProtobufCMessage *m = NULL;

        if (__builtin_mul_overflow(len, (size_t)DREAM_UNPACK_FACTOR, &b.limit) ||
            __builtin_add_overflow(b.limit, (size_t)DREAM_UNPACK_SLACK, &b.limit))
                return DREAM_E_OVERFLOW;
        m = protobuf_c_message_unpack(desc, &a, len, data);
        if (!m)
                return b.err ? b.err : DREAM_E_PARSE;
        *ret = m;
        return 0;
}

static void free_unpacked(ProtobufCMessage *m)
{
        ProtobufCAllocator a = {plain_alloc, plain_free, NULL};

        if (m)
                protobuf_c_message_free_unpacked(m, &a);
}

int proto_request_unpack(const uint8_t *data, size_t len, proto_request **ret_req)
{
        ProtobufCMessage *m = NULL;
        int r = unpack(&dream__v1__request__descriptor, data, len, &m);

        if (r < 0)
                return r;
        *ret_req = (proto_request *)m;
        return 0;
}

void proto_request_free(proto_request *req)
{
        free_unpacked((ProtobufCMessage *)req);
}

int proto_response_unpack(const uint8_t *data, size_t len, proto_response **ret_resp)
{
        ProtobufCMessage *m = NULL;
        int r = unpack(&dream__v1__response__descriptor, data, len, &m);

        if (r < 0)
                return r;
        *ret_resp = (proto_response *)m;
        return 0;
}

void proto_response_free(proto_response *resp)
{
        free_unpacked((ProtobufCMessage *)resp);
}

/* ---- names and text ----------------------------------------------------- */

bool proto_utf8_valid(const char *str, size_t len)
{
        const uint8_t *s = (const uint8_t *)str;
        size_t i = 0;

        while (i < len) {
                uint8_t c = s[i];
                uint32_t cp;
                size_t n;

                if (c < 0x80) {
                        i++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else {
                        return false;
                }
                if (len - i - 1 < n)
                        return false;
                for (size_t k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n + 1;
        }
        return true;
}

static bool has_control(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                uint8_t c = (uint8_t)s[i];
                if (c < 0x20 || c == 0x7f)
                        return true;
        }
        return false;
}

int proto_dataset_name_check(const char *name)
{
        size_t len = name ? strlen(name) : 0;

        if (len == 0)
                return DREAM_E_INVAL;
        if (len > DREAM_MAX_NAME)
                return DREAM_E_LIMIT;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return DREAM_E_INVAL;
        for (size_t i = 0; i < len; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-'))
                        return DREAM_E_INVAL;
        }
        return 0;
}

int proto_column_name_check(const char *name)
{
        size_t len = name ? strlen(name) : 0;

        if (len == 0)
                return DREAM_E_INVAL;
        if (len > DREAM_MAX_NAME)
                return DREAM_E_LIMIT;
        if (!proto_utf8_valid(name, len) || has_control(name, len))
                return DREAM_E_INVAL;
        return 0;
}

/* ---- validation context ------------------------------------------------- */

struct vctx {
        char *msg;      /* caller's buffer, or NULL */
        size_t size;    /* its size */
        bool strict;    /* refuse unknown enum values */
        char path[512]; /* field path of the generic walk */
};

static int fail(struct vctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct vctx *c, int code, const char *fmt, ...)
{
        va_list ap;

        if (c->msg && c->size) {
                va_start(ap, fmt);
                vsnprintf(c->msg, c->size, fmt, ap);
                va_end(ap);
        }
        return code;
}

static int check_dataset(struct vctx *c, const char *field, const char *name)
{
        int r = proto_dataset_name_check(name);

        if (r == DREAM_E_LIMIT)
                return fail(c, r, "%s: %zu bytes, at most %u", field, strlen(name), DREAM_MAX_NAME);
        if (r < 0)
                return fail(c, r, "%s: '%.*s' is not a dataset name (1-%u of A-Z a-z 0-9 _ . -)",
                            field, 64, name ? name : "", DREAM_MAX_NAME);
        return 0;
}

static int check_text(struct vctx *c, const char *field, const char *s, size_t max)
{
        size_t len = strlen(s);

        if (len > max)
                return fail(c, DREAM_E_LIMIT, "%s: %zu bytes, at most %zu", field, len, max);
        if (has_control(s, len))
                return fail(c, DREAM_E_INVAL, "%s: control character", field);
        return 0;
}

/* ---- generic walk: enum values and UTF-8 of every present field -------- */

static int walk(struct vctx *c, const ProtobufCMessage *m, size_t plen);

static int walk_value(struct vctx *c, const ProtobufCFieldDescriptor *f, const void *p, size_t plen)
{
        switch (f->type) {
        case PROTOBUF_C_TYPE_ENUM: {
                int v;
                memcpy(&v, p, sizeof(v));
                if (c->strict && !protobuf_c_enum_descriptor_get_value(f->descriptor, v))
                        return fail(c, DREAM_E_INVAL, "%s: unknown value %d", c->path, v);
                return 0;
        }
        case PROTOBUF_C_TYPE_STRING: {
                const char *s;
                memcpy(&s, p, sizeof(s));
                if (s && !proto_utf8_valid(s, strlen(s)))
                        return fail(c, DREAM_E_INVAL, "%s: not valid UTF-8", c->path);
                return 0;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub;
                memcpy(&sub, p, sizeof(sub));
                return sub ? walk(c, sub, plen) : 0;
        }
        default:
                return 0;
        }
}

static size_t type_size(ProtobufCType t)
{
        switch (t) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_ENUM:
                return 4;
        case PROTOBUF_C_TYPE_BOOL:
                return sizeof(protobuf_c_boolean);
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_MESSAGE:
                return sizeof(void *);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        default:
                return 8;
        }
}

static int walk(struct vctx *c, const ProtobufCMessage *m, size_t plen)
{
        const ProtobufCMessageDescriptor *d = m->descriptor;
        const char *base = (const char *)m;

        /* protobuf-c 1.4.1 refuses a one-byte tag 0 but keeps a multi-byte
         * encoded one (0x80 0x00) as an unknown field, which it would pack back
         * as an invalid message: refuse it here. Other unknown fields (from a
         * newer peer) are ignored, as protobuf intends. */
        for (unsigned i = 0; i < m->n_unknown_fields; i++) {
                if (m->unknown_fields[i].tag == 0)
                        return fail(c, DREAM_E_PARSE, "%s: field number 0",
                                    plen ? c->path : "message");
        }
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                int n, r;

                if (f->type != PROTOBUF_C_TYPE_ENUM && f->type != PROTOBUF_C_TYPE_STRING &&
                    f->type != PROTOBUF_C_TYPE_MESSAGE)
                        continue;
                if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                        uint32_t which;
                        memcpy(&which, base + f->quantifier_offset, sizeof(which));
                        if (which != f->id)
                                continue;
                }
                n = snprintf(c->path + plen, sizeof(c->path) - plen, "%s%s", plen ? "." : "",
                             f->name);
                if (n < 0 || (size_t)n >= sizeof(c->path) - plen)
                        return fail(c, DREAM_E_LIMIT, "message nested too deep");
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t count, sz = type_size(f->type);
                        const char *arr;
                        size_t flen = plen + (size_t)n;
                        memcpy(&count, base + f->quantifier_offset, sizeof(count));
                        memcpy(&arr, base + f->offset, sizeof(arr));
                        for (size_t k = 0; k < count; k++) {
                                int e =
                                    snprintf(c->path + flen, sizeof(c->path) - flen, "[%zu]", k);
                                if (e < 0 || (size_t)e >= sizeof(c->path) - flen)
                                        return fail(c, DREAM_E_LIMIT, "message nested too deep");
                                r = walk_value(c, f, arr + k * sz, flen + (size_t)e);
                                if (r < 0)
                                        return r;
                        }
                } else {
                        r = walk_value(c, f, base + f->offset, plen + (size_t)n);
                        if (r < 0)
                                return r;
                }
                c->path[plen] = '\0';
        }
        return 0;
}

/* ---- shared pieces ------------------------------------------------------ */

static int check_kind_scale(struct vctx *c, const char *what, size_t i, Dream__V1__ColumnKind kind,
                            uint32_t scale)
{
        switch (kind) {
        case DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT:
        case DREAM__V1__COLUMN_KIND__COLUMN_KIND_F64:
                if (scale != 0)
                        return fail(
                            c, DREAM_E_INVAL, "%s[%zu].scale: %u, must be 0 for kind %s", what, i,
                            scale, kind == DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT ? "int" : "f64");
                return 0;
        case DREAM__V1__COLUMN_KIND__COLUMN_KIND_DECIMAL:
                if (scale < 1 || scale > DREAM_MAX_SCALE)
                        return fail(c, DREAM_E_INVAL,
                                    "%s[%zu].scale: %u, must be 1..%u for kind decimal", what, i,
                                    scale, DREAM_MAX_SCALE);
                return 0;
        default:
                return fail(c, DREAM_E_INVAL, "%s[%zu].kind: missing or unknown (%d)", what, i,
                            (int)kind);
        }
}

static int check_columns(struct vctx *c, const char *what, const Dream__V1__Columns *cols)
{
        size_t expect;

        if (!cols)
                return fail(c, DREAM_E_INVAL, "%s: missing", what);
        if (cols->n_rows == 0)
                return fail(c, DREAM_E_INVAL, "%s.n_rows: 0, at least 1 row is needed", what);
        if (cols->n_rows > DREAM_MAX_BATCH_ROWS)
                return fail(c, DREAM_E_LIMIT, "%s.n_rows: %u, at most %u", what, cols->n_rows,
                            DREAM_MAX_BATCH_ROWS);
        if (cols->n_columns == 0)
                return fail(c, DREAM_E_INVAL, "%s.columns: none, at least 1 is needed", what);
        if (cols->n_columns > DREAM_MAX_COLS)
                return fail(c, DREAM_E_LIMIT, "%s.columns: %zu, at most %u", what, cols->n_columns,
                            DREAM_MAX_COLS);
        if (__builtin_mul_overflow((size_t)cols->n_rows, (size_t)8, &expect))
                return fail(c, DREAM_E_OVERFLOW, "%s.n_rows: %u rows overflow", what, cols->n_rows);
        for (size_t i = 0; i < cols->n_columns; i++) {
                const Dream__V1__ColumnValues *v = cols->columns[i];
                char col[128];
                int r;

                snprintf(col, sizeof(col), "%s.columns", what);
                r = check_kind_scale(c, col, i, v->kind, v->scale);
                if (r < 0)
                        return r;
                if (v->values.len != expect)
                        return fail(c, DREAM_E_SCHEMA,
                                    "%s.columns[%zu].values: %zu bytes, expected %zu (%u rows)",
                                    what, i, v->values.len, expect, cols->n_rows);
        }
        return 0;
}

static int check_budget(struct vctx *c, const char *what, const Dream__V1__Budget *b)
{
        if (!b)
                return 0;
        switch (b->kind_case) {
        case DREAM__V1__BUDGET__KIND_FRACTION:
                if (!isfinite(b->fraction) || b->fraction <= 0 || b->fraction > 1)
                        return fail(c, DREAM_E_BUDGET, "%s.fraction: %g, must be in (0, 1]", what,
                                    b->fraction);
                return 0;
        case DREAM__V1__BUDGET__KIND_ROWS:
                if (b->rows == 0 || b->rows > DREAM_MAX_ROWS)
                        return fail(c, DREAM_E_BUDGET, "%s.rows: %llu, must be 1..%llu", what,
                                    (unsigned long long)b->rows,
                                    (unsigned long long)DREAM_MAX_ROWS);
                return 0;
        default:
                return fail(c, DREAM_E_BUDGET, "%s: set but neither fraction nor rows", what);
        }
}

static int check_matrix(struct vctx *c, const char *what, const Dream__V1__FloatMatrix *fm)
{
        size_t expect;

        if (!fm)
                return fail(c, DREAM_E_INVAL, "%s: missing", what);
        if (fm->n == 0 || fm->d == 0)
                return fail(c, DREAM_E_INVAL, "%s: %u x %u, both must be > 0", what, fm->n, fm->d);
        if (fm->n > DREAM_MAX_BATCH_ROWS)
                return fail(c, DREAM_E_LIMIT, "%s.n: %u, at most %u", what, fm->n,
                            DREAM_MAX_BATCH_ROWS);
        if (fm->d > DREAM_MAX_COLS)
                return fail(c, DREAM_E_LIMIT, "%s.d: %u, at most %u", what, fm->d, DREAM_MAX_COLS);
        if (__builtin_mul_overflow((size_t)fm->n, (size_t)fm->d, &expect) ||
            __builtin_mul_overflow(expect, sizeof(float), &expect))
                return fail(c, DREAM_E_OVERFLOW, "%s: %u x %u floats overflow", what, fm->n, fm->d);
        if (fm->values.len != expect)
                return fail(c, DREAM_E_SCHEMA, "%s.values: %zu bytes, expected %zu (%u x %u)", what,
                            fm->values.len, expect, fm->n, fm->d);
        return 0;
}

static int check_finite_nonneg(struct vctx *c, const char *what, double x)
{
        if (!isfinite(x) || x < 0)
                return fail(c, DREAM_E_INVAL, "%s: %g, must be finite and >= 0", what, x);
        return 0;
}

static int check_job_id(struct vctx *c, const char *what, uint64_t id)
{
        if (id == 0)
                return fail(c, DREAM_E_INVAL, "%s: missing (0)", what);
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- requests ----------------------------------------------------------- */

static int v_hello(struct vctx *c, const Dream__V1__Hello *m)
{
        int r;

        if (m->protocol_version == 0)
                return fail(c, DREAM_E_INVAL, "hello.protocol_version: missing (0)");
        r = check_text(c, "hello.client_name", S(m->client_name), DREAM_MAX_NAME);
        if (r < 0)
                return r;
        if (strlen(S(m->token)) > DREAM_MAX_TOKEN)
                return fail(c, DREAM_E_LIMIT, "hello.token: %zu bytes, at most %u",
                            strlen(S(m->token)), DREAM_MAX_TOKEN);
        return 0;
}

static int v_create(struct vctx *c, const Dream__V1__CreateDataset *m)
{
        char **names = NULL;
        const char *target = S(m->target);
        bool target_found = false;
        int r;

        r = check_dataset(c, "create_dataset.name", m->name);
        if (r < 0)
                return r;
        if (m->n_columns == 0)
                return fail(c, DREAM_E_INVAL, "create_dataset.columns: none, at least 1");
        if (m->n_columns > DREAM_MAX_COLS)
                return fail(c, DREAM_E_LIMIT, "create_dataset.columns: %zu, at most %u",
                            m->n_columns, DREAM_MAX_COLS);
        for (size_t i = 0; i < m->n_columns; i++) {
                const Dream__V1__ColumnSpec *s = m->columns[i];
                r = proto_column_name_check(s->name);
                if (r < 0 && !s->name)
                        return fail(c, r, "create_dataset.columns[%zu].name: missing", i);
                if (r == DREAM_E_LIMIT)
                        return fail(c, r, "create_dataset.columns[%zu].name: %zu bytes, at most %u",
                                    i, strlen(s->name), DREAM_MAX_NAME);
                if (r < 0)
                        return fail(c, r,
                                    "create_dataset.columns[%zu].name: empty, or a control "
                                    "character",
                                    i);
                r = check_kind_scale(c, "create_dataset.columns", i, s->kind, s->scale);
                if (r < 0)
                        return r;
                if (target[0] && strcmp(target, s->name) == 0)
                        target_found = true;
        }
        if (target[0] && !target_found)
                return fail(c, DREAM_E_INVAL, "create_dataset.target: no column named '%.*s'", 64,
                            target);
        if (!target[0] && m->task != DREAM__V1__TASK__TASK_UNSPECIFIED)
                return fail(c, DREAM_E_INVAL, "create_dataset.task: set without a target column");
        if (m->class_count > DREAM_MAX_CLASSES)
                return fail(c, DREAM_E_LIMIT, "create_dataset.class_count: %u, at most %u",
                            m->class_count, DREAM_MAX_CLASSES);
        if (m->class_count != 0 && m->task != DREAM__V1__TASK__TASK_CLASSIFICATION)
                return fail(c, DREAM_E_INVAL,
                            "create_dataset.class_count: only for a classification task");
        if (m->class_count == 1)
                return fail(c, DREAM_E_INVAL, "create_dataset.class_count: 1, at least 2");

        /* Duplicate column names: sort a copy of the pointers. */
        names = dm_mallocarray(m->n_columns, sizeof(*names));
        if (!names)
                return fail(c, DREAM_E_NOMEM, "create_dataset.columns: out of memory");
        for (size_t i = 0; i < m->n_columns; i++)
                names[i] = m->columns[i]->name; /* all non-NULL: checked above */
        qsort(names, m->n_columns, sizeof(*names), cmp_str);
        r = 0;
        for (size_t i = 1; i < m->n_columns; i++) {
                if (strcmp(names[i - 1], names[i]) == 0) {
                        r = fail(c, DREAM_E_INVAL, "create_dataset.columns: name '%.*s' twice", 64,
                                 names[i]);
                        break;
                }
        }
        dm_free(names);
        return r;
}

static int v_ingest(struct vctx *c, const Dream__V1__Ingest *m)
{
        int r = check_dataset(c, "ingest.dataset", m->dataset);

        if (r < 0)
                return r;
        return check_columns(c, "ingest.rows", m->rows);
}

static int v_export(struct vctx *c, const Dream__V1__Export *m)
{
        uint64_t end;
        int r = check_dataset(c, "export.dataset", m->dataset);

        if (r < 0)
                return r;
        if (m->first_row >= DREAM_MAX_ROWS)
                return fail(c, DREAM_E_RANGE, "export.first_row: %llu, past the largest row",
                            (unsigned long long)m->first_row);
        if (__builtin_add_overflow(m->first_row, m->row_count, &end))
                return fail(c, DREAM_E_OVERFLOW, "export.row_count: %llu rows from %llu overflow",
                            (unsigned long long)m->row_count, (unsigned long long)m->first_row);
        if (m->chunk_rows > DREAM_MAX_BATCH_ROWS)
                return fail(c, DREAM_E_LIMIT, "export.chunk_rows: %u, at most %u", m->chunk_rows,
                            DREAM_MAX_BATCH_ROWS);
        return 0;
}

static int v_batches(struct vctx *c, const Dream__V1__GetBatches *m)
{
        int r = check_dataset(c, "get_batches.dataset", m->dataset);

        if (r < 0)
                return r;
        if (m->batch_size > DREAM_MAX_BATCH_SIZE)
                return fail(c, DREAM_E_LIMIT, "get_batches.batch_size: %u, at most %u",
                            m->batch_size, DREAM_MAX_BATCH_SIZE);
        r = check_budget(c, "get_batches.budget", m->budget);
        if (r < 0)
                return r;
        if (m->start >= DREAM_MAX_ROWS)
                return fail(c, DREAM_E_RANGE, "get_batches.start: %llu, past the largest row",
                            (unsigned long long)m->start);
        if (m->resume_token.len > DREAM_MAX_RESUME_TOKEN)
                return fail(c, DREAM_E_LIMIT, "get_batches.resume_token: %zu bytes, at most %u",
                            m->resume_token.len, DREAM_MAX_RESUME_TOKEN);
        if (m->shard_count > 1 && m->shard_index >= m->shard_count)
                return fail(c, DREAM_E_INVAL,
                            "get_batches.shard_index: %u, not below shard_count %u", m->shard_index,
                            m->shard_count);
        if (m->shard_count <= 1 && m->shard_index != 0)
                return fail(c, DREAM_E_INVAL,
                            "get_batches.shard_index: %u without a shard_count above 1",
                            m->shard_index);
        if (m->shard_count > 1 && m->resume_token.len)
                return fail(c, DREAM_E_INVAL,
                            "get_batches.resume_token: not combined with a shard; resume a shard "
                            "with get_batches.start");
        return 0;
}

static int v_backup(struct vctx *c, const Dream__V1__Backup *m)
{
        int r = check_text(c, "backup.path", S(m->path), DREAM_MAX_PATH);

        if (r < 0)
                return r;
        if (S(m->path)[0] != '/')
                return fail(c, DREAM_E_INVAL, "backup.path: '%.*s' is not an absolute path", 64,
                            m->path);
        return 0;
}

static int v_train(struct vctx *c, const Dream__V1__Train *m)
{
        bool mlp = m->model == DREAM__V1__MODEL_KIND__MODEL_KIND_MLP;
        bool kmeans = m->model == DREAM__V1__MODEL_KIND__MODEL_KIND_KMEANS;
        int r = check_dataset(c, "train.dataset", m->dataset);

        if (r < 0)
                return r;
        if (m->model == DREAM__V1__MODEL_KIND__MODEL_KIND_UNSPECIFIED)
                return fail(c, DREAM_E_INVAL, "train.model: missing");
        if (m->mode == DREAM__V1__TRAIN_MODE__TRAIN_MODE_EXACT &&
            m->model != DREAM__V1__MODEL_KIND__MODEL_KIND_LINEAR &&
            m->model != DREAM__V1__MODEL_KIND__MODEL_KIND_RIDGE)
                return fail(c, DREAM_E_INVAL, "train.mode: exact is only for linear and ridge");
        r = check_budget(c, "train.budget", m->budget);
        if (r < 0)
                return r;
        if (m->epochs > DREAM_MAX_EPOCHS)
                return fail(c, DREAM_E_LIMIT, "train.epochs: %u, at most %u", m->epochs,
                            DREAM_MAX_EPOCHS);
        r = check_finite_nonneg(c, "train.lr", m->lr);
        if (r < 0)
                return r;
        r = check_finite_nonneg(c, "train.l2", m->l2);
        if (r < 0)
                return r;
        if (m->batch_size > DREAM_MAX_BATCH_SIZE)
                return fail(c, DREAM_E_LIMIT, "train.batch_size: %u, at most %u", m->batch_size,
                            DREAM_MAX_BATCH_SIZE);
        if (m->n_hidden && !mlp)
                return fail(c, DREAM_E_INVAL, "train.hidden: only for model mlp");
        if (m->n_hidden > DREAM_MAX_HIDDEN_LAYERS)
                return fail(c, DREAM_E_LIMIT, "train.hidden: %zu layers, at most %u", m->n_hidden,
                            DREAM_MAX_HIDDEN_LAYERS);
        for (size_t i = 0; i < m->n_hidden; i++) {
                if (m->hidden[i] == 0)
                        return fail(c, DREAM_E_INVAL, "train.hidden[%zu]: 0 units", i);
                if (m->hidden[i] > DREAM_MAX_HIDDEN_WIDTH)
                        return fail(c, DREAM_E_LIMIT, "train.hidden[%zu]: %u units, at most %u", i,
                                    m->hidden[i], DREAM_MAX_HIDDEN_WIDTH);
        }
        if (m->k && !kmeans)
                return fail(c, DREAM_E_INVAL, "train.k: only for model kmeans");
        if (m->k > DREAM_MAX_K)
                return fail(c, DREAM_E_LIMIT, "train.k: %u, at most %u", m->k, DREAM_MAX_K);
        if (S(m->test_dataset)[0]) {
                r = check_dataset(c, "train.test_dataset", m->test_dataset);
                if (r < 0)
                        return r;
        }
        if (m->solver != DREAM__V1__SOLVER__SOLVER_DEFAULT &&
            m->solver != DREAM__V1__SOLVER__SOLVER_LBFGS &&
            m->solver != DREAM__V1__SOLVER__SOLVER_ADAM)
                return fail(c, DREAM_E_INVAL, "train.solver: unknown value %d", (int)m->solver);
        if (m->solver != DREAM__V1__SOLVER__SOLVER_DEFAULT &&
            m->model != DREAM__V1__MODEL_KIND__MODEL_KIND_LOGISTIC &&
            m->model != DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX)
                return fail(c, DREAM_E_INVAL, "train.solver: only for models logistic and softmax");
        if (m->solver == DREAM__V1__SOLVER__SOLVER_LBFGS &&
            m->mode == DREAM__V1__TRAIN_MODE__TRAIN_MODE_REFRESH)
                return fail(c, DREAM_E_INVAL,
                            "train.solver: lbfgs is not for mode refresh (it fits by Adam on "
                            "each epoch's rows)");
        if ((m->patience || m->early_stopping_off) && !mlp)
                return fail(c, DREAM_E_INVAL, "train.%s: only for model mlp",
                            m->patience ? "patience" : "early_stopping_off");
        if (m->patience > DREAM_MAX_EPOCHS)
                return fail(c, DREAM_E_LIMIT, "train.patience: %u, at most %u", m->patience,
                            DREAM_MAX_EPOCHS);
        if (m->patience && m->early_stopping_off)
                return fail(c, DREAM_E_INVAL,
                            "train.patience: %u with early_stopping_off (0 there)", m->patience);
        /* A share below 1 (negative: none); 1 or more leaves nothing to train on. */
        if (!isfinite(m->holdout) || m->holdout >= 1)
                return fail(c, DREAM_E_INVAL,
                            "train.holdout: %g, must be finite and below 1 (0 = the default "
                            "share, negative = none)",
                            m->holdout);
        return 0;
}

static int v_predict(struct vctx *c, const Dream__V1__Predict *m)
{
        int r = check_job_id(c, "predict.job_id", m->job_id);

        if (r < 0)
                return r;
        switch (m->input_case) {
        case DREAM__V1__PREDICT__INPUT_ROWS:
                return check_columns(c, "predict.rows", m->rows);
        case DREAM__V1__PREDICT__INPUT_FEATURES:
                return check_matrix(c, "predict.features", m->features);
        default:
                return fail(c, DREAM_E_INVAL, "predict.input: missing (rows or features)");
        }
}

static int request_body(struct vctx *c, const proto_request *q)
{
        switch (q->body_case) {
        case DREAM__V1__REQUEST__BODY_HELLO:
                return v_hello(c, q->hello);
        case DREAM__V1__REQUEST__BODY_SERVER_INFO:
        case DREAM__V1__REQUEST__BODY_STATS:
        case DREAM__V1__REQUEST__BODY_LIST_DATASETS:
        case DREAM__V1__REQUEST__BODY_JOB_LIST:
                return 0;
        case DREAM__V1__REQUEST__BODY_CREATE_DATASET:
                return v_create(c, q->create_dataset);
        case DREAM__V1__REQUEST__BODY_DESCRIBE_DATASET:
                return check_dataset(c, "describe_dataset.name", q->describe_dataset->name);
        case DREAM__V1__REQUEST__BODY_DROP_DATASET:
                return check_dataset(c, "drop_dataset.name", q->drop_dataset->name);
        case DREAM__V1__REQUEST__BODY_INGEST:
                return v_ingest(c, q->ingest);
        case DREAM__V1__REQUEST__BODY_FLUSH:
                return check_dataset(c, "flush.dataset", q->flush->dataset);
        case DREAM__V1__REQUEST__BODY_EXPORT:
                return v_export(c, q->export);
        case DREAM__V1__REQUEST__BODY_GET_BATCHES:
                return v_batches(c, q->get_batches);
        case DREAM__V1__REQUEST__BODY_BACKUP:
                return v_backup(c, q->backup);
        case DREAM__V1__REQUEST__BODY_TRAIN:
                return v_train(c, q->train);
        case DREAM__V1__REQUEST__BODY_JOB_STATUS:
                return check_job_id(c, "job_status.job_id", q->job_status->job_id);
        case DREAM__V1__REQUEST__BODY_JOB_WATCH:
                return check_job_id(c, "job_watch.job_id", q->job_watch->job_id);
        case DREAM__V1__REQUEST__BODY_JOB_CANCEL:
                return check_job_id(c, "job_cancel.job_id", q->job_cancel->job_id);
        case DREAM__V1__REQUEST__BODY_PREDICT:
                return v_predict(c, q->predict);
        case DREAM__V1__REQUEST__BODY_GET_MODEL:
                return check_job_id(c, "get_model.job_id", q->get_model->job_id);
        default:
                return fail(c, DREAM_E_PROTO, "request: no body, or one this server does not know");
        }
}

int proto_request_validate(const proto_request *req, char *errmsg, size_t errmsg_size)
{
        struct vctx c = {errmsg, errmsg_size, true, ""};
        int r;

        if (req->base.descriptor != &dream__v1__request__descriptor)
                return fail(&c, DREAM_E_INVAL, "request: not a dream.v1.Request");
        r = walk(&c, &req->base, 0);
        if (r < 0)
                return r;
        return request_body(&c, req);
}

/* ---- responses ---------------------------------------------------------- */

static int r_batch(struct vctx *c, const Dream__V1__Batch *b)
{
        size_t feat, vec;

        if (b->n > DREAM_MAX_BATCH_SIZE)
                return fail(c, DREAM_E_LIMIT, "batch.n: %u, at most %u", b->n,
                            DREAM_MAX_BATCH_SIZE);
        if (b->d > DREAM_MAX_COLS)
                return fail(c, DREAM_E_LIMIT, "batch.d: %u, at most %u", b->d, DREAM_MAX_COLS);
        if (__builtin_mul_overflow((size_t)b->n, (size_t)b->d, &feat) ||
            __builtin_mul_overflow(feat, sizeof(float), &feat))
                return fail(c, DREAM_E_OVERFLOW, "batch: %u x %u floats overflow", b->n, b->d);
        vec = (size_t)b->n * sizeof(float);
        if (b->features.len != feat)
                return fail(c, DREAM_E_SCHEMA, "batch.features: %zu bytes, expected %zu (%u x %u)",
                            b->features.len, feat, b->n, b->d);
        if (b->targets.len != 0 && b->targets.len != vec)
                return fail(c, DREAM_E_SCHEMA, "batch.targets: %zu bytes, expected 0 or %zu",
                            b->targets.len, vec);
        if (b->weights.len != 0 && b->weights.len != vec)
                return fail(c, DREAM_E_SCHEMA, "batch.weights: %zu bytes, expected 0 or %zu",
                            b->weights.len, vec);
        if (b->resume_token.len > DREAM_MAX_RESUME_TOKEN)
                return fail(c, DREAM_E_LIMIT, "batch.resume_token: %zu bytes, at most %u",
                            b->resume_token.len, DREAM_MAX_RESUME_TOKEN);
        return 0;
}

static int r_predict(struct vctx *c, const Dream__V1__PredictReply *p)
{
        size_t expect;

        if (p->n > DREAM_MAX_BATCH_ROWS)
                return fail(c, DREAM_E_LIMIT, "predict.n: %u, at most %u", p->n,
                            DREAM_MAX_BATCH_ROWS);
        if (p->values.len != (size_t)p->n * 8)
                return fail(c, DREAM_E_SCHEMA, "predict.values: %zu bytes, expected %zu",
                            p->values.len, (size_t)p->n * 8);
        if (p->classes > DREAM_MAX_CLASSES)
                return fail(c, DREAM_E_LIMIT, "predict.classes: %u, at most %u", p->classes,
                            DREAM_MAX_CLASSES);
        if (__builtin_mul_overflow((size_t)p->n, (size_t)p->classes, &expect) ||
            __builtin_mul_overflow(expect, sizeof(float), &expect))
                return fail(c, DREAM_E_OVERFLOW, "predict: %u x %u scores overflow", p->n,
                            p->classes);
        if (p->scores.len != 0 && p->scores.len != expect)
                return fail(c, DREAM_E_SCHEMA, "predict.scores: %zu bytes, expected 0 or %zu",
                            p->scores.len, expect);
        return 0;
}

int proto_response_validate(const proto_response *resp, char *errmsg, size_t errmsg_size)
{
        struct vctx c = {errmsg, errmsg_size, false, ""};
        int r;

        if (resp->base.descriptor != &dream__v1__response__descriptor)
                return fail(&c, DREAM_E_INVAL, "response: not a dream.v1.Response");
        r = walk(&c, &resp->base, 0);
        if (r < 0)
                return r;
        if (resp->code != DREAM__V1__STATUS__STATUS_OK && resp->more)
                return fail(&c, DREAM_E_PROTO, "response.more: set on an error response");
        switch (resp->body_case) {
        case DREAM__V1__RESPONSE__BODY_GET_BATCHES:
                return r_batch(&c, resp->get_batches);
        case DREAM__V1__RESPONSE__BODY_EXPORT:
                /* No rows at all: the end of an empty range. */
                if (!resp->export->rows)
                        return 0;
                return check_columns(&c, "export.rows", resp->export->rows);
        case DREAM__V1__RESPONSE__BODY_PREDICT:
                return r_predict(&c, resp->predict);
        default:
                return 0;
        }
}

int proto_request_decode(const uint8_t *data, size_t len, char *errmsg, size_t errmsg_size,
                         proto_request **ret_req)
{
        proto_request *req = NULL;
        int r = proto_request_unpack(data, len, &req);

        if (r < 0) {
                struct vctx c = {errmsg, errmsg_size, true, ""};
                return fail(&c, r, "request: %s (%zu bytes)",
                            r == DREAM_E_PARSE ? "not a valid dream.v1.Request message"
                                               : dream_strerror(r),
                            len);
        }
        r = proto_request_validate(req, errmsg, errmsg_size);
        if (r < 0)
                goto free_req;
        *ret_req = req;
        return 0;
free_req:
        proto_request_free(req);
        return r;
}

int proto_response_decode(const uint8_t *data, size_t len, char *errmsg, size_t errmsg_size,
                          proto_response **ret_resp)
{
        proto_response *resp = NULL;
        int r = proto_response_unpack(data, len, &resp);

        if (r < 0) {
                struct vctx c = {errmsg, errmsg_size, false, ""};
                return fail(&c, r, "response: %s (%zu bytes)",
                            r == DREAM_E_PARSE ? "not a valid dream.v1.Response message"
                                               : dream_strerror(r),
                            len);
        }
        r = proto_response_validate(resp, errmsg, errmsg_size);
        if (r < 0)
                goto free_resp;
        *ret_resp = resp;
        return 0;
free_resp:
        proto_response_free(resp);
        return r;
}

int proto_columns_check_count(const Dream__V1__Columns *c, uint32_t n_cols, const char *what,
                              char *errmsg, size_t errmsg_size)
{
        struct vctx v = {errmsg, errmsg_size, true, ""};

        if (!c || c->n_columns != n_cols)
                return fail(&v, DREAM_E_SCHEMA, "%s.columns: %zu, the dataset has %u", what,
                            c ? c->n_columns : 0, n_cols);
        return 0;
}

/* ---- packed values ------------------------------------------------------ */

void proto_values_put(uint8_t *out, const int64_t *v, size_t n)
{
#if __BYTE_ORDER == __LITTLE_ENDIAN
        if (n)
                memcpy(out, v, n * 8);
#else
        for (size_t i = 0; i < n; i++) {
                uint64_t le = htole64((uint64_t)v[i]);
                memcpy(out + i * 8, &le, 8);
        }
#endif
}

void proto_values_get(int64_t *out, const uint8_t *in, size_t n)
{
#if __BYTE_ORDER == __LITTLE_ENDIAN
        if (n)
                memcpy(out, in, n * 8);
#else
        for (size_t i = 0; i < n; i++) {
                uint64_t le;
                memcpy(&le, in + i * 8, 8);
                out[i] = (int64_t)le64toh(le);
        }
#endif
}

int proto_values_new(const int64_t *v, size_t n, ProtobufCBinaryData *ret)
{
        uint8_t *p;

        if (n == 0)
                return DREAM_E_EMPTY;
        p = dm_mallocarray(n, 8);
        if (!p)
                return n > SIZE_MAX / 8 ? DREAM_E_OVERFLOW : DREAM_E_NOMEM;
        proto_values_put(p, v, n);
        ret->data = p;
        ret->len = n * 8;
        return 0;
}

int proto_values_read(const ProtobufCBinaryData *b, size_t n_rows, int64_t *out)
{
        size_t expect;

        if (__builtin_mul_overflow(n_rows, (size_t)8, &expect))
                return DREAM_E_OVERFLOW;
        if (b->len != expect)
                return DREAM_E_SCHEMA;
        proto_values_get(out, b->data, n_rows);
        return 0;
}

void proto_f32_put(uint8_t *out, const float *v, size_t n)
{
#if __BYTE_ORDER == __LITTLE_ENDIAN
        if (n)
                memcpy(out, v, n * 4);
#else
        for (size_t i = 0; i < n; i++) {
                uint32_t u;
                memcpy(&u, &v[i], 4);
                u = htole32(u);
                memcpy(out + i * 4, &u, 4);
        }
#endif
}

void proto_f32_get(float *out, const uint8_t *in, size_t n)
{
#if __BYTE_ORDER == __LITTLE_ENDIAN
        if (n)
                memcpy(out, in, n * 4);
#else
        for (size_t i = 0; i < n; i++) {
                uint32_t u;
                memcpy(&u, in + i * 4, 4);
                u = le32toh(u);
                memcpy(&out[i], &u, 4);
        }
#endif
}

int proto_f32_new(const float *v, size_t n, ProtobufCBinaryData *ret)
{
        uint8_t *p;

        if (n == 0)
                return DREAM_E_EMPTY;
        p = dm_mallocarray(n, 4);
        if (!p)
                return n > SIZE_MAX / 4 ? DREAM_E_OVERFLOW : DREAM_E_NOMEM;
        proto_f32_put(p, v, n);
        ret->data = p;
        ret->len = n * 4;
        return 0;
}

int proto_f32_read(const ProtobufCBinaryData *b, size_t n, float *out)
{
        size_t expect;

        if (__builtin_mul_overflow(n, (size_t)4, &expect))
                return DREAM_E_OVERFLOW;
        if (b->len != expect)
                return DREAM_E_SCHEMA;
        proto_f32_get(out, b->data, n);
        return 0;
}
