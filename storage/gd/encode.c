/* Encoding a table into a segment (docs/method.md section 6): base-bit selection, the
 * dictionary and the record blocks, compressed on up to
 * gd_encode_opts.threads threads with the same bytes for any count. */
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/par.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

#define TARGET_BLOCK_BYTES    16384u
#define SMALL_ZSTD_LEVEL      19 /* segments of at most SMALL_RAW_BYTES raw bytes */
#define SMALL_RAW_BYTES       (1u << 20)
#define TRIAL_BLOCKS          8u   /* blocks compressed both ways to choose the byte layout */
#define MAX_ENCODE_THREADS    16u  /* gd_encode_opts.threads is capped to this */
#define MIN_BLOCKS_PER_THREAD 8u   /* fewer blocks than this per thread: fewer threads */
#define GROUP_ROWS            512u /* short record blocks are filled this many rows at a time */

void gd_encode_opts_default(struct gd_encode_opts *o)
{
        o->patience = 0;
        o->zstd_level = GD_ZSTD_FAST;
        o->force_codec = -1;
        o->source_bytes = 0;
        o->block_bytes = 0;
        o->threads = 0;
}

static uint32_t choose_rows_per_block(const struct gd_layout *l, uint32_t target)
{
        uint32_t per_row = l->row_bytes ? l->row_bytes : 1;
        uint32_t rows = (target ? target : TARGET_BLOCK_BYTES) / per_row;
        if (rows > GD_MAX_BLOCK_ROWS)
                rows = GD_MAX_BLOCK_ROWS;
        rows &= ~15u;
        return rows < 16 ? 16 : rows;
}

/* The level asked for; GD_ZSTD_ARCHIVE picks by the segment's size. */
static int zstd_level(const struct gd_segment *s, const struct gd_encode_opts *o)
{
        if (o->zstd_level != GD_ZSTD_ARCHIVE)
                return o->zstd_level;
        return gd_shuffled_bytes(&s->rec_layout, s->n_rows) <= SMALL_RAW_BYTES ? SMALL_ZSTD_LEVEL
                                                                               : GD_ZSTD_FAST;
}

static int zstd_pack(ZSTD_CCtx *cctx, const uint8_t *raw, size_t raw_len, int level,
                     struct dm_buf *out, uint32_t *ret_len)
{
        size_t bound = ZSTD_compressBound(raw_len);
        int r = dm_buf_reserve(out, bound);
        if (r < 0)
                return r;
        size_t n = ZSTD_compressCCtx(cctx, out->data + out->len, bound, raw, raw_len, level);
        if (ZSTD_isError(n))
                return DREAM_E_COMPRESS;
        if (n > DREAM_MAX_BLOCK_BYTES)
                return DREAM_E_LIMIT;
        out->len += n;
        *ret_len = (uint32_t)n;
        return 0;
}

/* Fill the record field of column j (which has deviation bits) for the
 * `rows` values v in raw form, the common shapes specialised: one deviation
 * run, fields of one byte. The raw bytes do not depend on the order of
 * filling (plain rows are ORed into a zeroed buffer). */
static inline void fill_column(const struct gd_segment *s, uint32_t j, const int64_t *v,
                               uint64_t rows, enum gd_block_codec form, uint8_t *raw)
{
        const struct gd_layout *l = &s->rec_layout;
        const uint32_t f = s->rec_field_of_col[j];
        const struct gd_colmask *m = &s->masks[j];
        const uint64_t min = (uint64_t)s->params[j].min;
        const uint8_t nb = l->bytes[f];
        if (m->n_dev_runs == 1 && form != GD_BLOCK_PLAIN) {
                const unsigned sh = m->dev_runs[0].shift;
                const uint64_t lm = gd_low_mask(m->dev_runs[0].len);
                if (form == GD_BLOCK_ZSTD) {
                        uint8_t *p = raw + (uint64_t)l->byte_offset[f] * rows;
                        if (nb == 1) {
                                for (uint64_t r = 0; r < rows; r++)
                                        p[r] = (uint8_t)((((uint64_t)v[r] - min) >> sh) & lm);
                                return;
                        }
                        for (uint64_t r = 0; r < rows; r++) {
                                uint64_t dv = (((uint64_t)v[r] - min) >> sh) & lm;
                                for (uint8_t b = 0; b < nb; b++)
                                        p[(uint64_t)b * rows + r] =
                                            (uint8_t)(dv >> (8 * (nb - 1 - b)));
                        }
                        return;
                }
                uint8_t *p = raw + l->byte_offset[f];
                const uint32_t stride = l->row_bytes;
                if (nb == 1) {
                        for (uint64_t r = 0; r < rows; r++, p += stride)
                                *p = (uint8_t)((((uint64_t)v[r] - min) >> sh) & lm);
                        return;
                }
                for (uint64_t r = 0; r < rows; r++, p += stride) {
                        uint64_t dv = (((uint64_t)v[r] - min) >> sh) & lm;
                        for (uint8_t b = 0; b < nb; b++)
                                p[b] = (uint8_t)(dv >> (8 * (nb - 1 - b)));
                }
                return;
        }
        for (uint64_t r = 0; r < rows; r++) {
                uint64_t dv = gd_extract(gd_code(v[r], (int64_t)min), m->dev_runs, m->n_dev_runs);
                if (form == GD_BLOCK_ZSTD)
                        gd_shuffle_put(raw, l, rows, r, f, dv);
                else if (form == GD_BLOCK_ZSTD_ROWS)
                        gd_rows_put(raw, l, r, f, dv);
                else
                        gd_put_bits(raw, r * l->row_bits + l->bit_offset[f], dv, l->width[f]);
        }
}

/* The base id field of rows [first, first + rows). */
static void fill_ids(const struct gd_segment *s, const uint32_t *base_of, uint64_t first,
                     uint64_t rows, enum gd_block_codec form, uint8_t *raw)
{
        const struct gd_layout *l = &s->rec_layout;
        const uint32_t id_field = l->n_fields - 1;
        for (uint64_t r = 0; r < rows; r++) {
                uint64_t i = first + r;
                if (form == GD_BLOCK_ZSTD)
                        gd_shuffle_put(raw, l, rows, r, id_field, base_of[i]);
                else if (form == GD_BLOCK_ZSTD_ROWS)
                        gd_rows_put(raw, l, r, id_field, base_of[i]);
                else
                        gd_put_bits(raw, r * l->row_bits + l->bit_offset[id_field], base_of[i],
                                    l->width[id_field]);
        }
}

/* Fill the records of the n blocks from b0 in raw form, block k at
 * raw + k * raw_stride. Column by column over all n blocks, so that each
 * column is read in one sequential run (the table is column-major; short
 * blocks of many columns would otherwise read one cache line per column and
 * block, which no prefetcher follows). */
static void fill_blocks(const struct gd_segment *s, const struct gd_table *t,
                        const uint32_t *base_of, uint32_t b0, uint32_t n, enum gd_block_codec form,
                        uint8_t *raw, size_t raw_stride)
{
        for (uint32_t j = 0; j < s->n_cols; j++) {
                if (s->rec_field_of_col[j] == UINT32_MAX)
                        continue;
                for (uint32_t k = 0; k < n; k++) {
                        uint64_t first = (uint64_t)(b0 + k) * s->rows_per_block;
                        fill_column(s, j, t->cols[j].v + first, gd_block_rows(s, b0 + k), form,
                                    raw + k * raw_stride);
                }
        }
        for (uint32_t k = 0; k < n; k++)
                fill_ids(s, base_of, (uint64_t)(b0 + k) * s->rows_per_block,
                         gd_block_rows(s, b0 + k), form, raw + k * raw_stride);
}

/* Fill the record fields of rows [first, first + rows) in raw form. */
static void fill_records(const struct gd_segment *s, const struct gd_table *t,
                         const uint32_t *base_of, uint64_t first, uint64_t rows,
                         enum gd_block_codec form, uint8_t *raw)
{
        for (uint32_t j = 0; j < s->n_cols; j++) {
                if (s->rec_field_of_col[j] != UINT32_MAX)
                        fill_column(s, j, t->cols[j].v + first, rows, form, raw);
        }
        fill_ids(s, base_of, first, rows, form, raw);
}

/* Compression of the record blocks [b0, b1) into out, one thread's share. */
struct block_job {
        const struct gd_segment *s;
        const struct gd_table *t;
        const uint32_t *base_of;
        enum gd_block_codec form;
        int level;
        uint32_t b0, b1;
        struct gd_block_entry *zent; /* shared; entries [b0, b1) are this job's */
        ZSTD_CCtx *cctx;
        uint8_t *raw; /* group blocks of raw_stride bytes */
        size_t raw_stride;
        uint32_t group; /* blocks filled together */
        struct dm_buf out;
        uint64_t total;
        int r;
};

static int run_block_job(struct block_job *j)
{
        const struct gd_segment *s = j->s;
        const struct gd_layout *l = &s->rec_layout;
        for (uint32_t g = j->b0; g < j->b1; g += j->group) {
                uint32_t n = j->b1 - g < j->group ? j->b1 - g : j->group;
                fill_blocks(s, j->t, j->base_of, g, n, j->form, j->raw, j->raw_stride);
                for (uint32_t k = 0; k < n; k++) {
                        uint32_t b = g + k;
                        uint64_t slen = gd_shuffled_bytes(l, gd_block_rows(s, b));
                        struct gd_block_entry *e = &j->zent[b];
                        const uint8_t *raw = j->raw + k * j->raw_stride;
                        e->offset = j->out.len;
                        e->raw = (uint32_t)slen;
                        int r = zstd_pack(j->cctx, raw, slen, j->level, &j->out, &e->stored);
                        if (r < 0)
                                return r;
                        e->checksum = gd_sum32(j->out.data + e->offset, e->stored);
                        j->total += e->stored;
                }
        }
        return 0;
}

static void block_share(void *arg)
{
        struct block_job *j = arg;
        j->r = run_block_job(j);
}

/* Compress every record block in `form` into *zbuf, filling zent, with up to
 * `threads` threads (0 or 1: the calling thread alone, with cctx and raw).
 * Each thread takes a contiguous share of the blocks into its own buffer; the
 * shares are then joined in order, so the bytes do not depend on `threads`. */
static int zstd_blocks(const struct gd_segment *s, const struct gd_table *t,
                       const uint32_t *base_of, enum gd_block_codec form, int level,
                       uint32_t threads, ZSTD_CCtx *cctx, struct dm_buf *zbuf,
                       struct gd_block_entry *zent, uint64_t *ret_total)
{
        struct block_job jobs[MAX_ENCODE_THREADS];
        uint32_t n = threads < 1 ? 1 : threads > MAX_ENCODE_THREADS ? MAX_ENCODE_THREADS : threads;
        size_t raw_max = gd_shuffled_bytes(&s->rec_layout, s->rows_per_block);
        uint32_t group = GROUP_ROWS / s->rows_per_block;
        uint64_t total = 0;
        int r = 0;

        if (n > s->n_blocks / MIN_BLOCKS_PER_THREAD)
                n = s->n_blocks / MIN_BLOCKS_PER_THREAD;
        if (n < 1)
                n = 1;
        if (group < 1)
                group = 1;
        memset(jobs, 0, sizeof(jobs));
        for (uint32_t k = 0; k < n; k++) {
                struct block_job *j = &jobs[k];
                *j = (struct block_job){.s = s,
                                        .t = t,
                                        .base_of = base_of,
                                        .form = form,
                                        .level = level,
                                        .b0 = (uint32_t)((uint64_t)s->n_blocks * k / n),
                                        .b1 = (uint32_t)((uint64_t)s->n_blocks * (k + 1) / n),
                                        .zent = zent,
                                        .raw_stride = raw_max,
                                        .group = group};
                j->raw = dm_mallocarray(group, raw_max ? raw_max : 1);
                if (k == 0) {
                        j->cctx = cctx;
                        j->out = *zbuf;
                        dm_buf_init(zbuf);
                } else {
                        dm_buf_init(&j->out);
                        j->cctx = ZSTD_createCCtx();
                }
                if (!j->cctx || !j->raw) {
                        r = DREAM_E_NOMEM;
                        goto out;
                }
        }
        dm_par_each(block_share, jobs, sizeof(jobs[0]), n);
        for (uint32_t k = 0; k < n && r == 0; k++)
                r = jobs[k].r;
        if (r < 0)
                goto out;
        /* Join the shares: offsets become relative to the whole. */
        size_t extra = 0;
        for (uint32_t k = 1; k < n; k++)
                extra += jobs[k].out.len;
        r = dm_buf_reserve(&jobs[0].out, extra);
        if (r < 0)
                goto out;
        for (uint32_t k = 0; k < n; k++) {
                uint64_t base = k ? jobs[0].out.len : 0;
                if (k) {
                        r = dm_buf_append(&jobs[0].out, jobs[k].out.data, jobs[k].out.len);
                        if (r < 0)
                                goto out;
                }
                for (uint32_t b = jobs[k].b0; b < jobs[k].b1; b++)
                        zent[b].offset += base;
                total += jobs[k].total;
        }
        *ret_total = total;
out:
        *zbuf = jobs[0].out; /* back to the caller, who releases it */
        dm_free(jobs[0].raw);
        for (uint32_t k = 1; k < n; k++) {
                ZSTD_freeCCtx(jobs[k].cctx);
                dm_free(jobs[k].raw);
                dm_buf_release(&jobs[k].out);
        }
        return r;
}

static int encode_blocks(struct gd_segment *s, const struct gd_table *t, const uint32_t *base_of,
                         const struct gd_encode_opts *o)
{
        const struct gd_layout *l = &s->rec_layout;
        struct dm_buf zbuf, pbuf;
        uint8_t *raw = NULL;
        ZSTD_CCtx *cctx = NULL;
        int r = DREAM_E_NOMEM;
        uint64_t zstd_total = 0;

        dm_buf_init(&zbuf);
        dm_buf_init(&pbuf);
        s->rows_per_block = choose_rows_per_block(l, o->block_bytes);
        s->n_blocks = (uint32_t)((s->n_rows + s->rows_per_block - 1) / s->rows_per_block);
        s->blocks = dm_calloc(s->n_blocks ? s->n_blocks : 1, sizeof(*s->blocks));
        struct gd_block_entry *zent = dm_calloc(s->n_blocks ? s->n_blocks : 1, sizeof(*zent));
        uint64_t max_raw = gd_shuffled_bytes(l, s->rows_per_block);
        if (gd_plain_bytes(l, s->rows_per_block) > max_raw)
                max_raw = gd_plain_bytes(l, s->rows_per_block);
        raw = dm_malloc(max_raw);
        cctx = ZSTD_createCCtx();
        if (!s->blocks || !zent || !raw || !cctx)
                goto out;

        /* Which byte layout compresses better: trial on the first blocks. */
        enum gd_block_codec form =
            o->force_codec == GD_BLOCK_ZSTD_ROWS ? GD_BLOCK_ZSTD_ROWS : GD_BLOCK_ZSTD;
        if (o->force_codec < 0) {
                uint64_t size[3] = {0};
                for (int f = GD_BLOCK_ZSTD; f <= GD_BLOCK_ZSTD_ROWS; f++) {
                        for (uint32_t b = 0; b < s->n_blocks && b < TRIAL_BLOCKS; b++) {
                                uint64_t first = (uint64_t)b * s->rows_per_block;
                                uint64_t rows = gd_block_rows(s, b);
                                uint32_t len;
                                size_t mark = zbuf.len;
                                fill_records(s, t, base_of, first, rows, (enum gd_block_codec)f,
                                             raw);
                                r = zstd_pack(cctx, raw, gd_shuffled_bytes(l, rows),
                                              zstd_level(s, o), &zbuf, &len);
                                if (r < 0)
                                        goto out;
                                zbuf.len = mark;
                                size[f] += len;
                        }
                }
                form = size[GD_BLOCK_ZSTD_ROWS] < size[GD_BLOCK_ZSTD] ? GD_BLOCK_ZSTD_ROWS
                                                                      : GD_BLOCK_ZSTD;
        }
        s->plain_records_bytes = 0;
        for (uint32_t b = 0; b < s->n_blocks; b++)
                s->plain_records_bytes += gd_plain_bytes(l, gd_block_rows(s, b));
        if (o->force_codec != GD_BLOCK_PLAIN) {
                r = zstd_blocks(s, t, base_of, form, zstd_level(s, o), o->threads, cctx, &zbuf,
                                zent, &zstd_total);
                if (r < 0)
                        goto out;
        }
        if (o->force_codec > GD_BLOCK_PLAIN ||
            (o->force_codec < 0 && zstd_total < s->plain_records_bytes)) {
                s->codec = form;
                memcpy(s->blocks, zent, s->n_blocks * sizeof(*zent));
                s->blocks_len = zbuf.len;
                s->owned_blocks = dm_buf_steal(&zbuf, &s->blocks_len);
        } else {
                s->codec = GD_BLOCK_PLAIN;
                r = dm_buf_reserve(&pbuf, s->plain_records_bytes + 1); /* never NULL */
                if (r < 0)
                        goto out;
                for (uint32_t b = 0; b < s->n_blocks; b++) {
                        uint64_t first = (uint64_t)b * s->rows_per_block;
                        uint64_t rows = gd_block_rows(s, b);
                        uint64_t plen = gd_plain_bytes(l, rows);
                        uint8_t *dst = pbuf.data + pbuf.len;
                        memset(dst, 0, plen);
                        fill_records(s, t, base_of, first, rows, GD_BLOCK_PLAIN, dst);
                        s->blocks[b] = (struct gd_block_entry){pbuf.len, (uint32_t)plen,
                                                               (uint32_t)plen, gd_sum32(dst, plen)};
                        pbuf.len += plen;
                }
                s->owned_blocks = dm_buf_steal(&pbuf, &s->blocks_len);
        }
        s->blocks_data = s->owned_blocks;
        r = 0;
out:
        ZSTD_freeCCtx(cctx);
        dm_free(raw);
        dm_free(zent);
        dm_buf_release(&zbuf);
        dm_buf_release(&pbuf);
        return r;
}

/* Dictionary: plain rows in memory; stored plain or shuffled + zstd. */
static int encode_dict(struct gd_segment *s, const struct gd_table *t, const uint32_t *base_of,
                       const struct gd_encode_opts *o)
{
        const struct gd_layout *l = &s->dict_layout;
        const uint32_t count_field = l->n_fields - 1;
        uint64_t plen = gd_plain_bytes(l, s->n_bases), slen = gd_shuffled_bytes(l, s->n_bases);
        uint8_t *shuf = NULL;
        int64_t *rep = NULL;
        struct dm_buf z;
        int r = DREAM_E_NOMEM;

        dm_buf_init(&z);
        s->dict = dm_calloc(plen ? plen : 1, 1);
        shuf = dm_calloc(slen ? slen : 1, 1);
        rep = dm_mallocarray(s->n_bases, sizeof(int64_t));
        if (!s->dict || !shuf || !rep)
                goto out;
        /* Representative row of each base: its first row. */
        for (uint32_t b = 0; b < s->n_bases; b++)
                rep[b] = -1;
        for (uint64_t i = 0; i < s->n_rows; i++) {
                if (rep[base_of[i]] < 0)
                        rep[base_of[i]] = (int64_t)i;
        }
        /* Column by column: each column is read in one pass (the rows of
         * the representatives ascend when bases are numbered in order of
         * first use), and the fields are ORed or stored in any order. */
        for (uint32_t j = 0; j < s->n_cols; j++) {
                uint32_t f = s->dict_field_of_col[j];
                if (f == UINT32_MAX)
                        continue;
                const struct gd_colmask *m = &s->masks[j];
                const int64_t *v = t->cols[j].v;
                for (uint32_t b = 0; b < s->n_bases; b++) {
                        uint64_t bv = gd_extract(gd_code(v[rep[b]], s->params[j].min), m->base_runs,
                                                 m->n_base_runs);
                        gd_put_bits(s->dict, (uint64_t)b * l->row_bits + l->bit_offset[f], bv,
                                    l->width[f]);
                        gd_shuffle_put(shuf, l, s->n_bases, b, f, bv);
                }
        }
        for (uint32_t b = 0; b < s->n_bases; b++) {
                gd_put_bits(s->dict, (uint64_t)b * l->row_bits + l->bit_offset[count_field],
                            s->counts[b], l->width[count_field]);
                gd_shuffle_put(shuf, l, s->n_bases, b, count_field, s->counts[b]);
        }
        /* Stored form: codec, count field width, raw length, payload. */
        ZSTD_CCtx *cctx = o->force_codec == GD_BLOCK_PLAIN ? NULL : ZSTD_createCCtx();
        uint32_t zlen = 0;
        s->dict_codec = GD_BLOCK_PLAIN;
        if (cctx) {
                r = zstd_pack(cctx, shuf, slen, zstd_level(s, o), &z, &zlen);
                ZSTD_freeCCtx(cctx);
                if (r < 0)
                        goto out;
                if (o->force_codec == GD_BLOCK_ZSTD || zlen < plen)
                        s->dict_codec = GD_BLOCK_ZSTD;
        }
        const uint8_t *payload = s->dict_codec == GD_BLOCK_ZSTD ? z.data : s->dict;
        uint64_t payload_len = s->dict_codec == GD_BLOCK_ZSTD ? zlen : plen;
        s->dict_stored_len = GD_DICT_HEADER_BYTES + payload_len;
        s->dict_stored = dm_malloc(s->dict_stored_len);
        if (!s->dict_stored) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        s->dict_stored[0] = (uint8_t)s->dict_codec;
        s->dict_stored[1] = l->width[count_field];
        dm_put_le64(s->dict_stored + 2, s->dict_codec == GD_BLOCK_ZSTD ? slen : plen);
        if (payload_len)
                memcpy(s->dict_stored + GD_DICT_HEADER_BYTES, payload, payload_len);
        s->dict_part = s->dict_stored;
        r = 0;
out:
        dm_buf_release(&z);
        dm_free(rep);
        dm_free(shuf);
        return r;
}

static double now_seconds(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int gd_segment_encode(const struct gd_table *t, const struct gd_encode_opts *opts,
                      struct gd_segment **ret)
{
        struct gd_encode_opts defaults;
        struct gd_segment *s;
        struct gd_planes *p = NULL;
        struct gd_selection sel = {0};
        int r;

        if (!opts) {
                gd_encode_opts_default(&defaults);
                opts = &defaults;
        }
        if (t->n_rows == 0)
                return DREAM_E_EMPTY;
        if (t->n_rows > DREAM_MAX_SEGMENT_ROWS)
                return DREAM_E_LIMIT;
        s = dm_calloc(1, sizeof(*s));
        if (!s)
                return DREAM_E_NOMEM;
        s->n_rows = t->n_rows;
        s->n_cols = t->n_cols;
        s->target = t->target;
        s->task = t->task;
        s->source_bytes = opts->source_bytes;
        s->params = dm_mallocarray(t->n_cols, sizeof(*s->params));
        s->names = dm_calloc(t->n_cols, sizeof(char *));
        if (!s->params || !s->names)
                goto fail_nomem;
        for (uint32_t j = 0; j < t->n_cols; j++) {
                s->names[j] = dm_strdup(t->cols[j].name);
                if (!s->names[j])
                        goto fail_nomem;
        }
        r = gd_prep_compute(t, s->params);
        if (r < 0)
                goto fail;
        r = gd_planes_build(t, s->params, &p);
        if (r < 0)
                goto fail;
        double t0 = now_seconds();
        r = gd_select(p, opts->patience, &sel);
        s->select_seconds = now_seconds() - t0;
        if (r < 0)
                goto fail;
        s->l_c = p->n_bits;
        s->n_base_bits = sel.n_base_bits;
        s->n_bases = sel.n_bases;
        s->s_bits = sel.s_bits;
        s->col_start = p->col_start;
        p->col_start = NULL;
        s->is_base = sel.is_base;
        sel.is_base = NULL;
        gd_planes_free(p);
        p = NULL;
        s->counts = dm_calloc(s->n_bases, sizeof(uint64_t));
        if (!s->counts)
                goto fail_nomem;
        for (uint64_t i = 0; i < s->n_rows; i++)
                s->counts[sel.base_of[i]]++;
        r = gd_segment_build_masks(s);
        if (r < 0)
                goto fail;
        r = encode_dict(s, t, sel.base_of, opts);
        if (r < 0)
                goto fail;
        r = encode_blocks(s, t, sel.base_of, opts);
        if (r < 0)
                goto fail;
        gd_selection_release(&sel);
        *ret = s;
        return 0;

fail_nomem:
        r = DREAM_E_NOMEM;
fail:
        gd_selection_release(&sel);
        gd_planes_free(p);
        gd_segment_free(s);
        return r;
}
