/* Mini-batch streams (GetBatches): condensed samples, every row once per
 * epoch in a seeded shuffle, or a uniform sample; several Batches per round on
 * the worker pool (conn.c schedules the rounds).
 *
 * rows and sample streams read a dataset's rows as row-major float32 from a
 * cache shared by every stream of the server (struct srv_batch_cache): the
 * first stream of a (dataset id, row count) decodes the dataset once, later
 * streams reuse it; one that starts while it is being decoded reads from the
 * store instead of holding a worker thread until the copy is ready. An append changes the row count
 * and a drop (then create) the id, so a stream never sees a stale copy: it starts a new entry, and
 * the old one is freed once no stream uses it. Entries that do not fit the budget (config
 * batch_cache_bytes each and for those kept unused, SRV_BATCH_CACHE_TOTAL for all) are not made:
 * those streams read their rows from the store, FALLBACK_ROWS per read transaction
 * (store_get_rows). A stream that started before an append keeps its own epoch (the first pos.n
 * rows) from whichever copy it holds.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/par.h"
#include "proto/status.h"
#include "server/internal.h"
#include "server/permute.h"
#include "server/reply.h"
#include "server/routes.h"

/* Framed bytes one round builds before handing them to the loop (at least
 * one Batch), and the time it may take: the loop writes them while the next
 * round runs, and a drain or a closed connection is seen between rounds. */
#define ROUND_BYTES (1u << 20)
#define ROUND_NS    20000000ull
/* Rows read from the store at once when a stream has no cached copy. */
#define FALLBACK_ROWS 4096u
/* Rows gathered ahead of use (prefetch of random rows of the cache). */
#define PREFETCH_AHEAD 16u
/* Unused cache entries idle this long are freed by the next stream that uses
 * the cache (there is no timer: an idle server keeps at most
 * batch_cache_bytes of them). */
#define CACHE_IDLE_NS (600ull * 1000000000ull)
#define HUGE_PAGE     ((size_t)2 << 20)

/* ---- the shared cache of decoded rows ------------------------------------------ */

struct centry {
        uint32_t id;   /* dataset id (store_info.id) */
        uint64_t rows; /* its row count when decoded */
        uint32_t n_cols;
        char name[DREAM_MAX_NAME + 1];
        float *v;  /* rows x n_cols, row-major; inside map */
        void *map; /* mmap'd, map_len bytes */
        size_t map_len;
        uint64_t bytes;    /* accounted: map_len */
        uint32_t refs;     /* streams using it */
        bool ready;        /* decoded (else being decoded by the stream that made it) */
        bool dead;         /* superseded or evicted: freed when refs reach 0 */
        uint64_t last_use; /* monotonic ns */
        struct centry *next;
};

struct srv_batch_cache {
        pthread_mutex_t lock;
        struct centry *list;
        uint64_t bytes;        /* every entry's bytes, building ones included */
        uint64_t unused_bytes; /* entries with refs == 0 */
};

static uint64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct srv_batch_cache *cache_get(struct srv *s)
{
        struct srv_batch_cache *c = __atomic_load_n(&s->batch_cache, __ATOMIC_ACQUIRE),
                               *expect = NULL;

        if (c)
                return c;
        c = dm_calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        if (pthread_mutex_init(&c->lock, NULL) != 0) {
                dm_free(c);
                return NULL;
        }
        if (!__atomic_compare_exchange_n(&s->batch_cache, &expect, c, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
                pthread_mutex_destroy(&c->lock);
                dm_free(c);
                return expect;
        }
        return c;
}

static void entry_free(struct centry *e)
{
        if (e->map)
                munmap(e->map, e->map_len);
        dm_free(e);
}

/* Unlink and free e (refs == 0), under the lock. */
static void cache_drop(struct srv *s, struct srv_batch_cache *c, struct centry *e)
{
        struct centry **pp;

        for (pp = &c->list; *pp; pp = &(*pp)->next)
                if (*pp == e) {
                        *pp = e->next;
                        break;
                }
        c->bytes -= e->bytes;
        c->unused_bytes -= e->bytes;
        __atomic_fetch_sub(&s->batch_cache_bytes, e->bytes, __ATOMIC_RELAXED);
        entry_free(e);
}

/* Free unused entries: dead or idle ones always, then the least recently
 * used until the unused ones fit `keep` and everything fits `total`. */
static void cache_trim(struct srv *s, struct srv_batch_cache *c, uint64_t keep, uint64_t total)
{
        uint64_t now = mono_ns();
        struct centry *e, *next, *lru;

        for (e = c->list; e; e = next) {
                next = e->next;
                if (e->refs == 0 && (e->dead || now - e->last_use > CACHE_IDLE_NS))
                        cache_drop(s, c, e);
        }
        while (c->unused_bytes > keep || c->bytes > total) {
                lru = NULL;
                for (e = c->list; e; e = e->next)
                        if (e->refs == 0 && (!lru || e->last_use < lru->last_use))
                                lru = e;
                if (!lru)
                        break;
                cache_drop(s, c, lru);
        }
}

static void batch_cache_free(struct srv_batch_cache *c)
{
        struct centry *e, *next;

        if (!c)
                return;
        for (e = c->list; e; e = next) {
                next = e->next;
                entry_free(e); /* no stream is left when the server is freed */
        }
        pthread_mutex_destroy(&c->lock);
        dm_free(c);
}

void srv_batches_free(struct srv *s)
{
        batch_cache_free(s->batch_cache);
        s->batch_cache = NULL;
}

static void cache_release(struct srv *s, struct centry *e)
{
        struct srv_batch_cache *c = s->batch_cache;

        if (!e)
                return;
        pthread_mutex_lock(&c->lock);
        e->last_use = mono_ns();
        if (--e->refs == 0)
                c->unused_bytes += e->bytes;
        cache_trim(s, c, __atomic_load_n(&s->cfg.batch_cache_bytes, __ATOMIC_RELAXED),
                   SRV_BATCH_CACHE_TOTAL);
        pthread_mutex_unlock(&c->lock);
}

const float *srv_batch_cache_peek(struct srv *s, const char *name, uint32_t id, uint64_t rows,
                                  uint32_t n_cols, void **ret_ref)
{
        struct srv_batch_cache *c = __atomic_load_n(&s->batch_cache, __ATOMIC_ACQUIRE);
        struct centry *e;

        *ret_ref = NULL;
        if (!c || rows == 0)
                return NULL;
        pthread_mutex_lock(&c->lock);
        for (e = c->list; e; e = e->next)
                if (!e->dead && e->ready && e->id == id && e->rows >= rows && e->n_cols == n_cols &&
                    strcmp(e->name, name) == 0)
                        break;
        if (e) {
                if (e->refs++ == 0)
                        c->unused_bytes -= e->bytes;
                e->last_use = mono_ns();
        }
        pthread_mutex_unlock(&c->lock);
        *ret_ref = e;
        return e ? e->v : NULL;
}

void srv_batch_cache_put(struct srv *s, void *ref)
{
        cache_release(s, ref);
}

/* One value as the float32 a Batch carries (gd_value_f64, then float). */
static inline float cell_f32(enum gd_kind kind, long double div, int64_t v)
{
        switch (kind) {
        case GD_INT:
                return (float)(double)v;
        case GD_DEC:
                return (float)(double)((long double)v / div);
        default:
                return (float)gd_key_to_f64(v);
        }
}

struct fill_ctx {
        struct srv *srv;
        const char *name;
        uint32_t id; /* the dataset the copy is of */
        float *v;
        uint64_t rows; /* end of the range */
        uint32_t n_cols;
        uint64_t done; /* next row expected (starts at the range's first) */
        int r;
};

static int fill_cb(const struct gd_table *chunk, uint64_t first_row, void *arg)
{
        struct fill_ctx *f = arg;
        uint32_t nc = f->n_cols;

        if (chunk->n_cols != nc || first_row != f->done || chunk->n_rows > f->rows - first_row)
                return DREAM_E_CORRUPT;
        for (uint32_t c = 0; c < nc; c++) {
                const struct gd_col *col = &chunk->cols[c];
                long double div = col->kind == GD_DEC ? (long double)gd_pow10[col->scale] : 1.0L;
                float *out = f->v + first_row * nc + c;
                const int64_t *in = col->v;

                switch (col->kind) { /* the kind hoisted out of the loop */
                case GD_INT:
                        for (uint64_t i = 0; i < chunk->n_rows; i++)
                                out[i * nc] = cell_f32(GD_INT, div, in[i]);
                        break;
                case GD_DEC:
                        for (uint64_t i = 0; i < chunk->n_rows; i++)
                                out[i * nc] = cell_f32(GD_DEC, div, in[i]);
                        break;
                default:
                        for (uint64_t i = 0; i < chunk->n_rows; i++)
                                out[i * nc] = cell_f32(GD_F64, div, in[i]);
                        break;
                }
        }
        f->done += chunk->n_rows;
        return 0;
}

/* Rows [f->done, f->rows). */
static void fill_range(void *arg)
{
        struct fill_ctx *f = arg;
        uint64_t first = f->done;

        f->r = store_scan(f->srv->store, f->name, f->id, first, f->rows - first, 0, fill_cb, f);
        if (f->r == 0 && f->done != f->rows)
                f->r = DREAM_E_CORRUPT; /* fewer rows than when the stream started */
}

/* Decode rows [0, e->rows) of the dataset into e (no lock held), the two
 * halves on two threads when there are at least BUILD_SPLIT_ROWS. */
#define BUILD_SPLIT_ROWS (1u << 17)
static int entry_build(struct srv *s, struct centry *e)
{
        struct fill_ctx f[2];
        uintptr_t at;

        e->map = mmap(NULL, e->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (e->map == MAP_FAILED) {
                e->map = NULL;
                return DREAM_E_NOMEM;
        }
        /* Huge pages where the kernel allows them (copies of at least 8 MiB,
         * given one huge page more to align): the streams read rows at
         * random, and one TLB entry per 2 MiB instead of per 4 KiB saves a
         * page walk per row. */
        at = (uintptr_t)e->map;
        if (e->map_len >= 5 * HUGE_PAGE) {
                at = (at + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
                (void)madvise((void *)at, e->map_len - (at - (uintptr_t)e->map), MADV_HUGEPAGE);
        }
        e->v = (float *)at;
        for (int i = 0; i < 2; i++)
                f[i] = (struct fill_ctx){.srv = s,
                                         .name = e->name,
                                         .id = e->id,
                                         .v = e->v,
                                         .n_cols = e->n_cols,
                                         .rows = e->rows};
        if (e->rows >= BUILD_SPLIT_ROWS) {
                f[0].rows = f[1].done = e->rows / 2;
                dm_par2(fill_range, &f[0], &f[1]);
        } else {
                fill_range(&f[0]);
                f[1].r = 0;
        }
        /* The scans are pinned to e->id: a drop (and a create under the
         * name) before or while they run makes them fail. */
        return f[0].r < 0 ? f[0].r : f[1].r;
}

/* A cached copy of the first `rows` rows (at least) of dataset (name, id) as
 * float32, or *ret NULL when it does not fit the budget or another stream is
 * still decoding it (this stream reads from the store then). */
static int cache_acquire(struct srv *s, const char *name, uint32_t id, uint64_t rows,
                         uint32_t n_cols, struct centry **ret)
{
        struct srv_batch_cache *c = cache_get(s);
        uint64_t bytes, floats;
        struct centry *e;
        int r;

        *ret = NULL;
        if (!c)
                return DREAM_E_NOMEM;
        if (rows == 0 || __builtin_mul_overflow(rows, (uint64_t)n_cols, &floats) ||
            __builtin_mul_overflow(floats, (uint64_t)sizeof(float), &bytes) ||
            bytes > SIZE_MAX - 2 * HUGE_PAGE)
                return 0;
        if (bytes >= 4 * HUGE_PAGE) /* and one huge page more to align it (entry_build) */
                bytes = (bytes + 2 * HUGE_PAGE - 1) & ~(uint64_t)(HUGE_PAGE - 1);
        else
                bytes = (bytes + 4095) & ~(uint64_t)4095;
        if (bytes > __atomic_load_n(&s->cfg.batch_cache_bytes, __ATOMIC_RELAXED) ||
            bytes > SRV_BATCH_CACHE_TOTAL)
                return 0;
        pthread_mutex_lock(&c->lock);
        for (e = c->list; e; e = e->next)
                if (!e->dead && e->id == id && e->rows >= rows && strcmp(e->name, name) == 0)
                        break;
        if (e && !e->ready) {
                /* Another stream is decoding it: read from the store rather
                 * than hold this worker thread until it is done. */
                pthread_mutex_unlock(&c->lock);
                return 0;
        }
        if (e) {
                if (e->refs++ == 0)
                        c->unused_bytes -= e->bytes;
                e->last_use = mono_ns();
                pthread_mutex_unlock(&c->lock);
                *ret = e;
                return 0;
        }
        /* Copies of older versions of the dataset (fewer rows, or another
         * dataset of that name) serve no new stream. */
        for (e = c->list; e; e = e->next)
                if (strcmp(e->name, name) == 0 && (e->id != id || e->rows < rows))
                        e->dead = true;
        cache_trim(s, c, __atomic_load_n(&s->cfg.batch_cache_bytes, __ATOMIC_RELAXED),
                   SRV_BATCH_CACHE_TOTAL - bytes);
        if (c->bytes + bytes > SRV_BATCH_CACHE_TOTAL) {
                pthread_mutex_unlock(&c->lock); /* the streams running hold it all */
                return 0;
        }
        e = dm_calloc(1, sizeof(*e));
        if (!e) {
                pthread_mutex_unlock(&c->lock);
                return DREAM_E_NOMEM;
        }
        e->id = id;
        e->rows = rows;
        e->n_cols = n_cols;
        snprintf(e->name, sizeof(e->name), "%s", name);
        e->map_len = (size_t)bytes;
        e->bytes = bytes;
        e->refs = 1;
        e->last_use = mono_ns();
        e->next = c->list;
        c->list = e;
        c->bytes += bytes;
        __atomic_fetch_add(&s->batch_cache_bytes, bytes, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&c->lock);

        r = entry_build(s, e);

        pthread_mutex_lock(&c->lock);
        if (r < 0) {
                e->refs = 0;
                c->unused_bytes += e->bytes;
                cache_drop(s, c, e);
                e = NULL;
        } else {
                e->ready = true;
        }
        pthread_mutex_unlock(&c->lock);
        if (r < 0)
                return r;
        *ret = e;
        return 0;
}

/* ---- streams ---------------------------------------------------------------------- */

struct batch_state {
        uint32_t mode; /* BatchMode */
        struct srv_resume pos;
        struct srv_perm perm;
        uint64_t shard_first; /* the shard's first position in the epoch's permutation */
        uint32_t batch_size;
        uint32_t sent, max_batches;
        int32_t target;
        uint32_t n_cols, d;
        uint32_t dataset_id;
        struct centry *rows;       /* rows/sample: the cached float32 copy (a reference), or NULL:
                                      read FALLBACK_ROWS at a time from the store */
        struct gd_condensed *cond; /* condensed */
        struct srv *srv;
        /* Scratch of one Batch, reused by every round. */
        uint64_t *idx;             /* batch_size row numbers */
        float *feat, *tgt, *wt;    /* batch_size x d, batch_size, batch_size */
        int64_t *vals;             /* FALLBACK_ROWS x n_cols (no cached copy) */
        struct store_cellfmt *fmt; /* FALLBACK_ROWS x n_cols */
};

void srv_batch_state_free(void *state)
{
        struct batch_state *b = state;

        if (!b)
                return;
        cache_release(b->srv, b->rows);
        gd_condensed_free(b->cond);
        dm_free(b->idx);
        dm_free(b->feat);
        dm_free(b->tgt);
        dm_free(b->wt);
        dm_free(b->vals);
        dm_free(b->fmt);
        dm_free(b);
}

static int batch_begin(struct srv_req *j)
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
                srv_req_error(j, DREAM_E_NOMEM, "get_batches: out of memory");
                return DREAM_E_NOMEM;
        }
        j->state = b;
        b->srv = j->srv;
        b->mode = m->mode ? (uint32_t)m->mode : DREAM__V1__BATCH_MODE__BATCH_MODE_CONDENSED;
        b->batch_size = m->batch_size ? m->batch_size : SRV_BATCH_SIZE;
        b->max_batches = m->max_batches;
        b->target = info->schema.target;
        b->n_cols = info->schema.n_cols;
        b->dataset_id = info->id;
        b->d = b->n_cols - (b->target >= 0 ? 1 : 0);
        if (m->resume_token.len) {
                r = srv_resume_decode(m->resume_token.data, m->resume_token.len, &b->pos);
                if (r < 0 || (m->mode && b->pos.mode != (uint32_t)m->mode) || b->pos.mode < 1 ||
                    b->pos.mode > 3) {
                        srv_req_error(j, DREAM_E_INVAL,
                                      "get_batches.resume_token: not a token of this server, or of "
                                      "another mode");
                        r = DREAM_E_INVAL;
                        goto free_info;
                }
                b->mode = b->pos.mode;
                if (b->pos.dataset_id != info->id) {
                        srv_req_error(j, DREAM_E_NOTFOUND,
                                      "get_batches.resume_token: made for a dataset '%s' that was "
                                      "dropped since (the name now holds another dataset); start "
                                      "a new stream",
                                      m->dataset);
                        r = DREAM_E_NOTFOUND;
                        goto free_info;
                }
                if (b->pos.n > info->rows) {
                        srv_req_error(j, DREAM_E_INVAL,
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
                b->pos.dataset_id = info->id;
        }
        if (m->budget && m->budget->kind_case == DREAM__V1__BUDGET__KIND_FRACTION)
                budget.fraction = m->budget->fraction;
        else if (m->budget && m->budget->kind_case == DREAM__V1__BUDGET__KIND_ROWS)
                budget.count = m->budget->rows;
        /* One Batch must fit in a frame. */
        frame_need = (size_t)b->batch_size * ((size_t)b->d + 2) * sizeof(float) + 1024;
        if (frame_need > __atomic_load_n(&j->srv->cfg.max_frame, __ATOMIC_RELAXED)) {
                srv_req_error(j, DREAM_E_LIMIT,
                              "get_batches.batch_size: %u rows of %u features need %zu bytes, more "
                              "than the frame limit of %u",
                              b->batch_size, b->d, frame_need,
                              __atomic_load_n(&j->srv->cfg.max_frame, __ATOMIC_RELAXED));
                r = DREAM_E_LIMIT;
                goto free_info;
        }
        if (b->mode == DREAM__V1__BATCH_MODE__BATCH_MODE_CONDENSED) {
                struct gd_condense_opts co = {.budget = budget, .order = GD_ORDER_ENTROPY};

                if (m->order == DREAM__V1__BIT_ORDER__BIT_ORDER_MSB)
                        co.order = GD_ORDER_MSB;
                r = store_condensed(store, m->dataset, b->dataset_id, &co, &b->cond, NULL);
                if (r < 0) {
                        if (r == DREAM_E_EMPTY || r == DREAM_E_BUDGET)
                                srv_req_error(j, r, "get_batches: dataset '%s': %s", m->dataset,
                                              dream_strerror(r));
                        else
                                srv_store_error(j, r, "get_batches.dataset", m->dataset);
                        goto free_info;
                }
                if (m->resume_token.len && b->pos.total != b->cond->m) {
                        srv_req_error(j, DREAM_E_INVAL,
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

                total = b->mode == DREAM__V1__BATCH_MODE__BATCH_MODE_SAMPLE
                            ? (n ? gd_budget_rows(&budget, n) : 0)
                            : n;
                if (m->resume_token.len && b->pos.total != total) {
                        srv_req_error(
                            j, DREAM_E_INVAL,
                            "get_batches.resume_token: made for %llu rows per epoch, this "
                            "request gives %llu",
                            (unsigned long long)b->pos.total, (unsigned long long)total);
                        r = DREAM_E_INVAL;
                        goto free_info;
                }
                b->pos.total = total;
                srv_perm_init(&b->perm, n, b->pos.seed, b->pos.epoch);
                /* The shared decoded copy when it fits (decoded now by the
                 * first stream that needs it); else rows are read from the
                 * store a batch at a time. */
                if (n > 0 && total > 0) {
                        r = cache_acquire(j->srv, m->dataset, info->id, info->rows, b->n_cols,
                                          &b->rows);
                        if (r < 0) {
                                srv_store_error(j, r, "get_batches.dataset", m->dataset);
                                goto free_info;
                        }
                }
                if (!b->rows) {
                        b->vals =
                            dm_mallocarray((size_t)FALLBACK_ROWS * b->n_cols, sizeof(*b->vals));
                        b->fmt = dm_mallocarray((size_t)FALLBACK_ROWS * b->n_cols, sizeof(*b->fmt));
                        if (!b->vals || !b->fmt) {
                                srv_req_error(j, DREAM_E_NOMEM, "get_batches: out of memory");
                                r = DREAM_E_NOMEM;
                                goto free_info;
                        }
                }
        }
        if (m->shard_count > 1) {
                /* Shard i of k: positions [total*i/k, total*(i+1)/k) of the
                 * epoch's permutation (the same for every shard). */
                uint64_t t = b->pos.total, q = t / m->shard_count, rem = t % m->shard_count;
                uint64_t lo = q * m->shard_index + rem * m->shard_index / m->shard_count;
                uint64_t hi =
                    q * (m->shard_index + 1) + rem * (m->shard_index + 1) / m->shard_count;

                b->shard_first = lo;
                b->pos.total = hi - lo;
        }
        if (b->pos.position > b->pos.total) {
                srv_req_error(j, DREAM_E_RANGE,
                              "get_batches.start: %llu, past the %llu positions of the epoch",
                              (unsigned long long)b->pos.position,
                              (unsigned long long)b->pos.total);
                r = DREAM_E_RANGE;
                goto free_info;
        }
        {
                /* Scratch for the largest Batch of this stream (bounded by the
                 * frame limit checked above). */
                uint64_t k = b->pos.total - b->pos.position;
                if (k > b->batch_size)
                        k = b->batch_size;
                b->idx = dm_mallocarray(k + 1, sizeof(*b->idx));
                b->feat = dm_mallocarray(k * b->d + 1, sizeof(float));
                b->tgt = dm_mallocarray(k + 1, sizeof(float));
                b->wt = dm_mallocarray(k + 1, sizeof(float));
                if (!b->idx || !b->feat || !b->tgt || !b->wt) {
                        srv_req_error(j, DREAM_E_NOMEM, "get_batches: out of memory");
                        r = DREAM_E_NOMEM;
                        goto free_info;
                }
        }
        r = 0;
free_info:
        store_info_free(info);
        return r;
}

/* Float32 to the wire's little-endian, in place. */
static void f32_to_le(float *v, size_t n)
{
#if __BYTE_ORDER == __LITTLE_ENDIAN
        (void)v;
        (void)n;
#else
        proto_f32_put((uint8_t *)v, v, n); /* byte swap, element by element */
#endif
}

/* Rows idx[0..k) of the cached copy into feat (features) and tgt (target). */
static void gather_cached(const struct batch_state *b, uint64_t k)
{
        const float *v = b->rows->v;
        const uint32_t nc = b->n_cols, d = b->d;
        const int32_t t = b->target;

        for (uint64_t i = 0; i < k; i++) {
                const float *src;
                float *dst = b->feat + i * d;

                if (i + PREFETCH_AHEAD < k) {
                        const float *p = v + b->idx[i + PREFETCH_AHEAD] * nc;
                        __builtin_prefetch(p);
                        __builtin_prefetch(p + nc - 1);
                }
                src = v + b->idx[i] * nc;
                if (nc <= 32) { /* narrow rows: no call per row */
                        for (uint32_t c = 0, f = 0; c < nc; c++) {
                                if ((int32_t)c == t)
                                        b->tgt[i] = src[c];
                                else
                                        dst[f++] = src[c];
                        }
                        continue;
                }
                if (t < 0) {
                        memcpy(dst, src, (size_t)nc * sizeof(float));
                        continue;
                }
                memcpy(dst, src, (size_t)t * sizeof(float));
                memcpy(dst + t, src + t + 1, (size_t)(nc - (uint32_t)t - 1) * sizeof(float));
                b->tgt[i] = src[t];
        }
}

/* The same from the store, FALLBACK_ROWS rows per read transaction. */
static int gather_store(struct srv_req *j, struct batch_state *b, uint64_t k)
{
        const uint32_t nc = b->n_cols;

        for (uint64_t at = 0; at < k; at += FALLBACK_ROWS) {
                uint64_t n = k - at < FALLBACK_ROWS ? k - at : FALLBACK_ROWS;
                int r = store_get_rows(j->srv->store, j->req->get_batches->dataset, b->dataset_id,
                                       b->n_cols, b->idx + at, (size_t)n, b->vals, b->fmt);
                if (r < 0)
                        return r;
                for (uint64_t i = 0; i < n; i++) {
                        float *dst = b->feat + (at + i) * b->d;
                        uint32_t f = 0;
                        for (uint32_t c = 0; c < nc; c++) {
                                const struct store_cellfmt *cf = &b->fmt[i * nc + c];
                                float x =
                                    (float)gd_value_f64(cf->kind, cf->scale, b->vals[i * nc + c]);
                                if ((int32_t)c == b->target)
                                        b->tgt[at + i] = x;
                                else
                                        dst[f++] = x;
                        }
                }
        }
        return 0;
}

/* A read of a running stream failed: say how far the client got. */
static void batch_error(struct srv_req *j, const struct batch_state *b, int r)
{
        const char *name = j->req->get_batches->dataset;
        char sent[128];

        snprintf(sent, sizeof(sent), "%u batches were sent, up to position %llu of epoch %llu",
                 b->sent, (unsigned long long)b->pos.position, (unsigned long long)b->pos.epoch);
        if (r == DREAM_E_NOTFOUND)
                srv_req_error(j, r,
                              "get_batches: dataset '%s' was dropped while this stream was "
                              "reading it (%s); start a new stream to read the dataset now under "
                              "that name",
                              name, sent);
        else if (r == DREAM_E_RANGE)
                srv_req_error(j, r,
                              "get_batches: dataset '%s' has fewer rows than the %llu the stream "
                              "began with (%s)",
                              name, (unsigned long long)b->pos.n, sent);
        else
                srv_req_error(j, r, "get_batches: dataset '%s': %s (%s)", name, dream_strerror(r),
                              sent);
}

/* Append the next Batch to j->out. */
static int batch_one(struct srv_req *j, struct batch_state *b)
{
        Dream__V1__Response resp = DREAM__V1__RESPONSE__INIT;
        Dream__V1__Batch bt = DREAM__V1__BATCH__INIT;
        uint8_t token[SRV_RESUME_TOKEN_SIZE];
        uint64_t k;
        bool has_target;
        int r;

        k = b->pos.total - b->pos.position;
        if (k > b->batch_size)
                k = b->batch_size;
        has_target = b->cond ? true : b->target >= 0;
        srv_perm_fill(&b->perm, b->shard_first + b->pos.position, k, b->idx);
        if (b->cond) {
                for (uint64_t i = 0; i < k; i++) {
                        uint64_t x = b->idx[i];
                        for (uint32_t f = 0; f < b->d; f++)
                                b->feat[i * b->d + f] = (float)b->cond->x[x * b->d + f];
                        b->tgt[i] = (float)b->cond->y[x];
                        b->wt[i] = (float)b->cond->w[x];
                }
        } else if (b->rows) {
                gather_cached(b, k);
        } else {
                r = gather_store(j, b, k);
                if (r < 0) {
                        batch_error(j, b, r);
                        return r;
                }
        }
        f32_to_le(b->feat, k * b->d);
        f32_to_le(b->tgt, k);
        f32_to_le(b->wt, k);
        b->pos.position += k;
        b->sent++;
        srv_resume_encode(&b->pos, token);
        bt.n = (uint32_t)k;
        bt.d = b->d;
        bt.features.data = (uint8_t *)b->feat;
        bt.features.len = k * b->d * sizeof(float);
        if (has_target && b->target >= 0) {
                bt.targets.data = (uint8_t *)b->tgt;
                bt.targets.len = k * sizeof(float);
        }
        if (b->cond) {
                bt.weights.data = (uint8_t *)b->wt;
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
        srv_reply(j, &resp); /* packs straight into j->out (reserved by the caller) */
        __atomic_fetch_add(&j->srv->stats.batches_served, 1, __ATOMIC_RELAXED);
        return 0;
}

void srv_h_batches(struct srv_req *j)
{
        struct batch_state *b = j->state;
        size_t start = j->out.len, per;
        uint64_t t0;

        if (!b) {
                if (batch_begin(j) < 0)
                        return;
                b = j->state;
        } else if (b->rows || b->cond) {
                /* Served from memory, not the store: a dataset dropped since
                 * the last round (even if made again under its name) ends
                 * the stream as a store read of it would. */
                uint32_t id;
                int r = store_dataset_id(j->srv->store, j->req->get_batches->dataset, &id);

                if (r == 0 && id != b->dataset_id)
                        r = DREAM_E_NOTFOUND;
                if (r < 0) {
                        batch_error(j, b, r);
                        return;
                }
        }
        /* Several Batches per round, packed into one buffer sized up front
         * (no regrowth copies): fewer trips through the worker pool and the
         * loop per row served. */
        per = (size_t)b->batch_size * ((size_t)b->d + 2) * sizeof(float) + 256;
        (void)dm_buf_reserve(&j->out, per < ROUND_BYTES ? ROUND_BYTES : per);
        t0 = mono_ns();
        do {
                if (batch_one(j, b) < 0)
                        return;
        } while (!j->done && j->out.len - start + per <= ROUND_BYTES && mono_ns() - t0 < ROUND_NS);
}
