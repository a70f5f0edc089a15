/* The store's small records: checksums, the schema, the counters, batch id
 * records, and the lookup of a dataset inside a transaction. Byte layouts:
 * STORE.md. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

#define MAGIC_SCHEMA   0x48435344u /* "DSCH" */
#define MAGIC_COUNTERS 0x544e4344u /* "DCNT" */

/* ---- checksums ------------------------------------------------------------ */

uint64_t store_i_checksum(const void *p, size_t n)
{
        return XXH3_64bits(p, n);
}

/* Checksum of a value that also covers its key (seeded with the key's
 * hash), so that a damaged key is found too. */
uint64_t store_i_keyed_checksum(const MDB_val *k, const void *p, size_t n)
{
        return XXH3_64bits_withSeed(p, n, XXH3_64bits(k->mv_data, k->mv_size));
}

/* A stored checksum: keyed, or (records written before keys were covered)
 * of the value alone. */
bool store_i_checksum_ok(const MDB_val *k, const void *p, size_t n, uint64_t stored)
{
        return stored == store_i_keyed_checksum(k, p, n) || stored == store_i_checksum(p, n);
}

/* ---- records: schema ------------------------------------------------------ */

void store_i_schema_release(struct store_schema *sc)
{
        if (sc->cols) {
                for (uint32_t j = 0; j < sc->n_cols; j++)
                        dm_free(sc->cols[j].name);
                dm_free(sc->cols);
        }
        memset(sc, 0, sizeof(*sc));
}

static int column_name_check(const char *name)
{
        size_t n = strlen(name);
        if (n == 0 || n > DREAM_MAX_NAME)
                return DREAM_E_SCHEMA;
        for (size_t i = 0; i < n; i++) {
                if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
                        return DREAM_E_SCHEMA;
        }
        return 0;
}

int store_name_check(const char *name)
{
        size_t n;
        if (!name)
                return DREAM_E_INVAL;
        n = strlen(name);
        if (n == 0 || n > DREAM_MAX_NAME || name[0] == '.' || name[0] == '-')
                return DREAM_E_INVAL;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-'))
                        return DREAM_E_INVAL;
        }
        return 0;
}

static int cmp_name(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 0, or DREAM_E_SCHEMA when two columns share a name. */
static int names_unique(const struct store_schema *sc)
{
        char **v = dm_mallocarray(sc->n_cols, sizeof(char *));
        int r = 0;
        if (!v)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < sc->n_cols; j++)
                v[j] = sc->cols[j].name;
        qsort(v, sc->n_cols, sizeof(char *), cmp_name);
        for (uint32_t j = 1; j < sc->n_cols && r == 0; j++) {
                if (strcmp(v[j - 1], v[j]) == 0)
                        r = DREAM_E_SCHEMA;
        }
        dm_free(v);
        return r;
}

int store_i_schema_check(const struct store_schema *sc)
{
        if (!sc || sc->n_cols == 0 || sc->n_cols > DREAM_MAX_COLS || !sc->cols)
                return DREAM_E_SCHEMA;
        if (sc->target < -1 || sc->target >= (int64_t)sc->n_cols)
                return DREAM_E_SCHEMA;
        if ((sc->target < 0) != (sc->task == GD_TASK_NONE))
                return DREAM_E_SCHEMA;
        if (sc->task > GD_TASK_CLASSIFICATION || sc->n_classes > DREAM_MAX_CLASSES)
                return DREAM_E_SCHEMA;
        for (uint32_t j = 0; j < sc->n_cols; j++) {
                const struct store_column *c = &sc->cols[j];
                if (!c->name || column_name_check(c->name) < 0 || c->kind > GD_F64 ||
                    c->scale > DREAM_MAX_SCALE)
                        return DREAM_E_SCHEMA;
        }
        return names_unique(sc);
}

int store_i_schema_encode(const MDB_val *k, uint32_t id, const struct store_schema *sc,
                          struct dm_buf *out)
{
        int r = 0;
        r |= dm_buf_put_le32(out, MAGIC_SCHEMA);
        r |= dm_buf_put_le32(out, FORMAT_VERSION);
        r |= dm_buf_put_le32(out, id);
        r |= dm_buf_put_le32(out, sc->n_cols);
        r |= dm_buf_put_le32(out, (uint32_t)sc->target);
        r |= dm_buf_put_le32(out, (uint32_t)sc->task);
        r |= dm_buf_put_le32(out, sc->n_classes);
        for (uint32_t j = 0; j < sc->n_cols && r == 0; j++) {
                size_t n = strlen(sc->cols[j].name);
                r |= dm_buf_put_le32(out, (uint32_t)n);
                r |= dm_buf_append(out, sc->cols[j].name, n);
                r |= dm_buf_put_u8(out, (uint8_t)sc->cols[j].kind);
                r |= dm_buf_put_u8(out, sc->cols[j].scale);
        }
        if (r == 0)
                r = dm_buf_put_le64(out, store_i_keyed_checksum(k, out->data, out->len));
        return r ? DREAM_E_NOMEM : 0;
}

/* Parse a schema record; names only when sc != NULL. Checks the checksum. */
int store_i_schema_decode(const MDB_val *k, const MDB_val *v, struct schema_head *ret_head,
                          struct store_schema *sc)
{
        struct dm_rd rd;
        struct schema_head h;
        uint32_t magic, version, target, task;
        struct store_schema out = {0};
        int r;

        if (v->mv_size < 36 || v->mv_size > ((size_t)DREAM_MAX_COLS * (DREAM_MAX_NAME + 6) + 64))
                return DREAM_E_CORRUPT;
        if (!store_i_checksum_ok(k, v->mv_data, v->mv_size - 8,
                                 dm_get_le64((const uint8_t *)v->mv_data + v->mv_size - 8)))
                return DREAM_E_CHECKSUM;
        dm_rd_init(&rd, v->mv_data, v->mv_size - 8);
        if (dm_rd_le32(&rd, &magic) < 0 || dm_rd_le32(&rd, &version) < 0 ||
            dm_rd_le32(&rd, &h.id) < 0 || dm_rd_le32(&rd, &h.n_cols) < 0 ||
            dm_rd_le32(&rd, &target) < 0 || dm_rd_le32(&rd, &task) < 0 ||
            dm_rd_le32(&rd, &h.n_classes) < 0)
                return DREAM_E_CORRUPT;
        if (magic != MAGIC_SCHEMA || version != FORMAT_VERSION)
                return DREAM_E_FORMAT;
        h.target = (int32_t)target;
        h.task = (enum gd_task)task;
        if (h.n_cols == 0 || h.n_cols > DREAM_MAX_COLS || h.target < -1 ||
            h.target >= (int64_t)h.n_cols || task > GD_TASK_CLASSIFICATION)
                return DREAM_E_CORRUPT;
        if (sc) {
                out.n_cols = h.n_cols;
                out.target = h.target;
                out.task = h.task;
                out.n_classes = h.n_classes;
                out.cols = dm_calloc(h.n_cols, sizeof(*out.cols));
                if (!out.cols)
                        return DREAM_E_NOMEM;
                for (uint32_t j = 0; j < h.n_cols; j++) {
                        uint32_t n;
                        const uint8_t *p;
                        uint8_t kind, scale;
                        r = DREAM_E_CORRUPT;
                        if (dm_rd_le32(&rd, &n) < 0 || n == 0 || n > DREAM_MAX_NAME ||
                            dm_rd_bytes(&rd, n, &p) < 0 || dm_rd_u8(&rd, &kind) < 0 ||
                            dm_rd_u8(&rd, &scale) < 0 || kind > GD_F64 || scale > DREAM_MAX_SCALE)
                                goto fail_release;
                        out.cols[j].name = dm_malloc(n + 1);
                        if (!out.cols[j].name) {
                                r = DREAM_E_NOMEM;
                                goto fail_release;
                        }
                        memcpy(out.cols[j].name, p, n);
                        out.cols[j].name[n] = 0;
                        out.cols[j].kind = (enum gd_kind)kind;
                        out.cols[j].scale = scale;
                }
                *sc = out;
        }
        *ret_head = h;
        return 0;

fail_release:
        store_i_schema_release(&out);
        return r;
}

/* ---- records: counters ------------------------------------------------------ */

static void counters_encode(const struct counters *c, uint8_t *out)
{
        const uint64_t *f = &c->rows;
        dm_put_le32(out, MAGIC_COUNTERS);
        dm_put_le32(out + 4, FORMAT_VERSION);
        for (unsigned i = 0; i < N_COUNTERS; i++)
                dm_put_le64(out + 8 + 8 * i, f[i]);
        dm_put_le64(out + COUNTERS_LEN - 8, store_i_checksum(out, COUNTERS_LEN - 8));
}

static int counters_decode(const MDB_val *v, struct counters *ret)
{
        const uint8_t *p = v->mv_data;
        struct counters c;
        uint64_t *f = &c.rows;
        if (v->mv_size != COUNTERS_LEN || dm_get_le32(p) != MAGIC_COUNTERS ||
            dm_get_le32(p + 4) != FORMAT_VERSION)
                return DREAM_E_CORRUPT;
        if (dm_get_le64(p + COUNTERS_LEN - 8) != store_i_checksum(p, COUNTERS_LEN - 8))
                return DREAM_E_CHECKSUM;
        for (unsigned i = 0; i < N_COUNTERS; i++)
                f[i] = dm_get_le64(p + 8 + 8 * i);
        if (c.sealed_rows + c.staged_rows != c.rows || c.rows > DREAM_MAX_ROWS)
                return DREAM_E_CORRUPT;
        *ret = c;
        return 0;
}

/* ---- dataset lookup inside a transaction ----------------------------------- */

MDB_val store_i_name_key(const char *name)
{
        return (MDB_val){.mv_size = strlen(name), .mv_data = (void *)name};
}

/* Schema head (and names when sc) and counters of a dataset. */
int store_i_ds_load(struct store *s, MDB_txn *txn, const char *name, struct schema_head *ret_head,
                    struct store_schema *sc, struct counters *ret_counters)
{
        MDB_val k = store_i_name_key(name), v;
        struct schema_head h;
        uint8_t kb[KEY_ID];
        int r;

        r = store_i_lmdb_err(mdb_get(txn, s->db_datasets, &k, &v));
        if (r < 0)
                return r;
        r = store_i_schema_decode(&k, &v, &h, NULL);
        if (r < 0)
                return r;
        if (ret_counters) {
                MDB_val ck = store_i_key_id(kb, h.id);
                r = store_i_lmdb_err(mdb_get(txn, s->db_counters, &ck, &v));
                if (r == DREAM_E_NOTFOUND)
                        r = DREAM_E_CORRUPT;
                if (r < 0)
                        return r;
                r = counters_decode(&v, ret_counters);
                if (r < 0)
                        return r;
        }
        if (sc) {
                r = store_i_lmdb_err(mdb_get(txn, s->db_datasets, &k, &v));
                if (r < 0)
                        return r;
                r = store_i_schema_decode(&k, &v, &h, sc);
                if (r < 0)
                        return r;
        }
        *ret_head = h;
        return 0;
}

/* store_i_ds_load for a read pinned to dataset `id` (0: whichever the name names):
 * DREAM_E_NOTFOUND when the name names another dataset now (the pinned one
 * was dropped, the name given to a new one). */
int store_i_ds_load_pinned(struct store *s, MDB_txn *txn, const char *name, uint32_t id,
                           struct schema_head *ret_head, struct store_schema *sc,
                           struct counters *ret_counters)
{
        struct schema_head h = {0};
        int r = store_i_ds_load(s, txn, name, &h, sc, ret_counters);

        if (r == 0 && id != 0 && h.id != id) {
                if (sc)
                        store_i_schema_release(sc);
                r = DREAM_E_NOTFOUND;
        }
        if (r == 0)
                *ret_head = h;
        return r;
}

int store_i_counters_put(struct store *s, MDB_txn *txn, uint32_t id, const struct counters *c)
{
        uint8_t kb[KEY_ID], vb[COUNTERS_LEN];
        MDB_val k = store_i_key_id(kb, id), v = {.mv_size = COUNTERS_LEN, .mv_data = vb};
        counters_encode(c, vb);
        return store_i_lmdb_err(mdb_put(txn, s->db_counters, &k, &v, 0));
}

/* ---- records: batch ids ---------------------------------------------------- */

int store_i_batch_decode(const MDB_val *k, const MDB_val *v, uint64_t *ret_first,
                         uint32_t *ret_rows)
{
        const uint8_t *p = v->mv_data;

        if (k->mv_size != KEY_ID_U64 || (v->mv_size != BATCH_REC && v->mv_size != BATCH_REC_OLD))
                return DREAM_E_CORRUPT;
        if (v->mv_size == BATCH_REC &&
            dm_get_le64(p + BATCH_REC_OLD) != store_i_keyed_checksum(k, p, BATCH_REC_OLD))
                return DREAM_E_CHECKSUM;
        *ret_first = dm_get_le64(p);
        *ret_rows = dm_get_le32(p + 8);
        return 0;
}
