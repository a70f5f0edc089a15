/* Mini-batch streams (GetBatches): condensed samples, every row once per
 * epoch in a seeded shuffle, or a uniform sample; one Batch per round on the
 * worker pool (handlers.c dispatches, server.c schedules the rounds). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "proto/status.h"
#include "server/internal.h"
#include "server/perm.h"

/* ---- batches --------------------------------------------------------------------- */

struct batch_state {
        uint32_t mode; /* BatchMode */
        struct srv_resume pos;
        struct srv_perm perm;
        uint32_t batch_size;
        uint32_t sent, max_batches;
        int32_t target;
        uint32_t n_cols, d;
        float *rowf;               /* rows/sample: the first pos.n rows as float32, row-major, every
                                      column (target included); NULL: read row by row */
        struct gd_condensed *cond; /* condensed */
        int64_t *row;              /* n_cols scratch */
        struct srv *srv;
        uint64_t cached_bytes;     /* reserved in srv->batch_cache_bytes for `all` */
        struct store_cellfmt *fmt; /* n_cols scratch */
};

void srv_batch_state_free(void *state)
{
        struct batch_state *b = state;

        if (!b)
                return;
        if (b->cached_bytes)
                __atomic_fetch_sub(&b->srv->batch_cache_bytes, b->cached_bytes, __ATOMIC_RELAXED);
        dm_free(b->rowf);
        gd_condensed_free(b->cond);
        dm_free(b->row);
        dm_free(b->fmt);
        dm_free(b);
}

/* Decode the dataset once and keep its first n rows as row-major float32:
 * one cache line per sampled row instead of one per column. */
static int rows_to_floats(struct srv_job *j, struct batch_state *b, const char *dataset, uint64_t n)
{
        struct gd_table *t = NULL;
        int r;

        r = store_read_all(j->srv->store, dataset, &t);
        if (r < 0) {
                srv_store_error(j, r, "get_batches.dataset", dataset);
                return r;
        }
        if (t->n_rows < n || t->n_cols != b->n_cols) {
                srv_job_error(j, DREAM_E_CORRUPT,
                              "get_batches: dataset '%s' changed while it was being read", dataset);
                gd_table_free(t);
                return DREAM_E_CORRUPT;
        }
        b->rowf = dm_mallocarray(n * b->n_cols, sizeof(float)); /* <= batch_cache_bytes / 2 */
        if (!b->rowf) {
                gd_table_free(t);
                srv_job_error(j, DREAM_E_NOMEM, "get_batches: out of memory");
                return DREAM_E_NOMEM;
        }
        for (uint32_t c = 0; c < b->n_cols; c++) {
                const struct gd_col *col = &t->cols[c];
                for (uint64_t i = 0; i < n; i++)
                        b->rowf[i * b->n_cols + c] =
                            (float)gd_value_f64(col->kind, col->scale, col->v[i]);
        }
        gd_table_free(t);
        return 0;
}

static int batch_begin(struct srv_job *j)
{
        const Dream__V1__GetBatches *m = j->req->get_batches;
        struct store *store = j->srv->store;
        struct store_info *info = NULL;
        struct batch_state *b;
        struct gd_budget budget = {SRV_DEFAULT_BUDGET, 0};
        size_t frame_need;
        int r;

        r = store_dataset_describe(store, m->dataset, &info);
        if (r < 0) {
                srv_store_error(j, r, "get_batches.dataset", m->dataset);
                return r;
        }
        b = dm_calloc(1, sizeof(*b));
        if (!b) {
                store_info_free(info);
                srv_job_error(j, DREAM_E_NOMEM, "get_batches: out of memory");
                return DREAM_E_NOMEM;
        }
        j->state = b;
        b->srv = j->srv;
        b->mode = m->mode ? (uint32_t)m->mode : DREAM__V1__BATCH_MODE__BATCH_MODE_CONDENSED;
        b->batch_size = m->batch_size ? m->batch_size : SRV_BATCH_SIZE;
        b->max_batches = m->max_batches;
        b->target = info->schema.target;
        b->n_cols = info->schema.n_cols;
        b->d = b->n_cols - (b->target >= 0 ? 1 : 0);
        if (m->resume_token.len) {
                r = srv_resume_decode(m->resume_token.data, m->resume_token.len, &b->pos);
                if (r < 0 || (m->mode && b->pos.mode != (uint32_t)m->mode) || b->pos.mode < 1 ||
                    b->pos.mode > 3) {
                        srv_job_error(j, DREAM_E_INVAL,
                                      "get_batches.resume_token: not a token of this server, or of "
                                      "another mode");
                        r = DREAM_E_INVAL;
                        goto free_info;
                }
                b->mode = b->pos.mode;
                if (b->pos.n > info->rows) {
                        srv_job_error(j, DREAM_E_INVAL,
                                      "get_batches.resume_token: made for %llu rows, dataset '%s' "
                                      "has %llu",
                                      (unsigned long long)b->pos.n, m->dataset,
                                      (unsigned long long)info->rows);
                        r = DREAM_E_INVAL;
                        goto free_info;
                }
        } else {
                b->pos.mode = b->mode;
                b->pos.seed = m->seed;
                b->pos.epoch = m->epoch;
                b->pos.n = info->rows;
                b->pos.position = m->start;
        }
        if (m->budget && m->budget->kind_case == DREAM__V1__BUDGET__KIND_FRACTION)
                budget.fraction = m->budget->fraction;
        else if (m->budget && m->budget->kind_case == DREAM__V1__BUDGET__KIND_ROWS)
                budget.count = m->budget->rows;
        /* One Batch must fit in a frame. */
        frame_need = (size_t)b->batch_size * ((size_t)b->d + 2) * sizeof(float) + 1024;
        if (frame_need > j->srv->cfg.max_frame) {
                srv_job_error(j, DREAM_E_LIMIT,
                              "get_batches.batch_size: %u rows of %u features need %zu bytes, more "
                              "than the frame limit of %u",
                              b->batch_size, b->d, frame_need, j->srv->cfg.max_frame);
                r = DREAM_E_LIMIT;
                goto free_info;
        }
        if (b->mode == DREAM__V1__BATCH_MODE__BATCH_MODE_CONDENSED) {
                struct gd_condense_opts co = {budget, GD_ORDER_ENTROPY};

                if (m->order == DREAM__V1__BIT_ORDER__BIT_ORDER_MSB)
                        co.order = GD_ORDER_MSB;
                r = store_condensed(store, m->dataset, &co, &b->cond, NULL);
                if (r < 0) {
                        if (r == DREAM_E_EMPTY || r == DREAM_E_BUDGET)
                                srv_job_error(j, r, "get_batches: dataset '%s': %s", m->dataset,
                                              dream_strerror(r));
                        else
                                srv_store_error(j, r, "get_batches.dataset", m->dataset);
                        goto free_info;
                }
                if (m->resume_token.len && b->pos.total != b->cond->m) {
                        srv_job_error(j, DREAM_E_INVAL,
                                      "get_batches.resume_token: the condensed set changed (%llu "
                                      "samples, now %u); start a new epoch",
                                      (unsigned long long)b->pos.total, b->cond->m);
                        r = DREAM_E_INVAL;
                        goto free_info;
                }
                b->pos.total = b->cond->m;
                b->d = b->cond->d;
                srv_perm_init(&b->perm, b->cond->m, b->pos.seed, b->pos.epoch);
        } else {
                uint64_t n = b->pos.n, total;
                uint64_t bytes;

                total = b->mode == DREAM__V1__BATCH_MODE__BATCH_MODE_SAMPLE
                            ? (n ? gd_budget_rows(&budget, n) : 0)
                            : n;
                if (m->resume_token.len && b->pos.total != total) {
                        srv_job_error(
                            j, DREAM_E_INVAL,
                            "get_batches.resume_token: made for %llu rows per epoch, this "
                            "request gives %llu",
                            (unsigned long long)b->pos.total, (unsigned long long)total);
                        r = DREAM_E_INVAL;
                        goto free_info;
                }
                b->pos.total = total;
                srv_perm_init(&b->perm, n, b->pos.seed, b->pos.epoch);
                b->row = dm_calloc(b->n_cols, sizeof(*b->row));
                b->fmt = dm_calloc(b->n_cols, sizeof(*b->fmt));
                if (!b->row || !b->fmt) {
                        srv_job_error(j, DREAM_E_NOMEM, "get_batches: out of memory");
                        r = DREAM_E_NOMEM;
                        goto free_info;
                }
                /* Decode the whole dataset once for the stream when it is
                 * small enough and the server-wide budget allows; otherwise
                 * rows are read one by one. */
                bool fits = !__builtin_mul_overflow(info->rows, (uint64_t)b->n_cols * 8, &bytes) &&
                            bytes <= j->srv->cfg.batch_cache_bytes && n > 0;
                if (fits && __atomic_add_fetch(&j->srv->batch_cache_bytes, bytes,
                                               __ATOMIC_RELAXED) > SRV_BATCH_CACHE_TOTAL) {
                        __atomic_fetch_sub(&j->srv->batch_cache_bytes, bytes, __ATOMIC_RELAXED);
                        fits = false;
                }
                if (fits) {
                        b->cached_bytes = bytes;
                        r = rows_to_floats(j, b, m->dataset, n);
                        if (r < 0)
                                goto free_info;
                }
        }
        if (b->pos.position > b->pos.total) {
                srv_job_error(j, DREAM_E_RANGE,
                              "get_batches.start: %llu, past the %llu positions of the epoch",
                              (unsigned long long)b->pos.position,
                              (unsigned long long)b->pos.total);
                r = DREAM_E_RANGE;
                goto free_info;
        }
        r = 0;
free_info:
        store_info_free(info);
        return r;
}

/* One float32, little-endian, at index i of a byte array. */
static void put_f32(uint8_t *base, size_t i, float v)
{
        proto_f32_put(base + i * sizeof(float), &v, 1);
}

static int batch_fill_row(struct srv_job *j, struct batch_state *b, uint64_t row, uint8_t *feat,
                          uint8_t *target)
{
        uint32_t f = 0;

        if (b->rowf) {
                const float *src = b->rowf + row * b->n_cols;
                if (b->target < 0) {
                        proto_f32_put(feat, src, b->n_cols);
                        return 0;
                }
                proto_f32_put(feat, src, (size_t)b->target);
                proto_f32_put(feat + (size_t)b->target * sizeof(float), src + b->target + 1,
                              b->n_cols - (uint32_t)b->target - 1);
                put_f32(target, 0, src[b->target]);
                return 0;
        }
        int r = store_get_row(j->srv->store, j->req->get_batches->dataset, row, b->row, b->fmt);
        if (r < 0)
                return r;
        for (uint32_t c = 0; c < b->n_cols; c++) {
                float v = (float)gd_value_f64(b->fmt[c].kind, b->fmt[c].scale, b->row[c]);
                if ((int32_t)c == b->target)
                        put_f32(target, 0, v);
                else
                        put_f32(feat, f++, v);
        }
        return 0;
}

void srv_h_batches(struct srv_job *j)
{
        struct batch_state *b = j->state;
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__Batch bt = DREAM__V1__BATCH__INIT;
        uint8_t token[SRV_RESUME_TOKEN_SIZE];
        uint8_t *feat = NULL, *tgt = NULL, *wt = NULL; /* float32 little-endian */
        uint64_t k;
        bool has_target;
        int r = 0;

        if (!b) {
                if (batch_begin(j) < 0)
                        return;
                b = j->state;
        }
        k = b->pos.total - b->pos.position;
        if (k > b->batch_size)
                k = b->batch_size;
        has_target = b->cond ? true : b->target >= 0;
        feat = dm_calloc(k * b->d + 1, sizeof(float));
        tgt = dm_calloc(k + 1, sizeof(float));
        wt = dm_calloc(k + 1, sizeof(float));
        if (!feat || !tgt || !wt) {
                srv_job_error(j, DREAM_E_NOMEM, "get_batches: out of memory");
                goto free_all;
        }
        for (uint64_t i = 0; i < k; i++) {
                uint64_t idx = srv_perm_at(&b->perm, b->pos.position + i);

                if (b->cond) {
                        for (uint32_t f = 0; f < b->d; f++)
                                put_f32(feat, i * b->d + f, (float)b->cond->x[idx * b->d + f]);
                        put_f32(tgt, i, (float)b->cond->y[idx]);
                        put_f32(wt, i, (float)b->cond->w[idx]);
                        continue;
                }
                r = batch_fill_row(j, b, idx, feat + i * b->d * sizeof(float),
                                   tgt + i * sizeof(float));
                if (r < 0) {
                        srv_store_error(j, r, "get_batches.dataset", j->req->get_batches->dataset);
                        goto free_all;
                }
        }
        b->pos.position += k;
        b->sent++;
        srv_resume_encode(&b->pos, token);
        bt.n = (uint32_t)k;
        bt.d = b->d;
        bt.features.data = feat;
        bt.features.len = k * b->d * sizeof(float);
        if (has_target && b->target >= 0) {
                bt.targets.data = tgt;
                bt.targets.len = k * sizeof(float);
        }
        if (b->cond) {
                bt.weights.data = wt;
                bt.weights.len = k * sizeof(float);
        }
        bt.resume_token.data = token;
        bt.resume_token.len = sizeof(token);
        bt.position = b->pos.position;
        bt.epoch = b->pos.epoch;
        j->done = b->pos.position >= b->pos.total || (b->max_batches && b->sent >= b->max_batches);
        resp.more = !j->done;
        resp.body_case = DREAM__V1__RESPONSE__BODY_GET_BATCHES;
        resp.get_batches = &bt;
        srv_reply(j, &resp);
        __atomic_fetch_add(&j->srv->stats.batches_served, 1, __ATOMIC_RELAXED);
free_all:
        dm_free(feat);
        dm_free(tgt);
        dm_free(wt);
}
