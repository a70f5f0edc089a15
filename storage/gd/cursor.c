/* Random-access decoding of a segment (docs/method.md section 6): a cursor caches one
 * decompressed record block; rows are rebuilt from their record fields and
 * their base's dictionary row. */
#include <string.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

struct gd_cursor {
        const struct gd_segment *s;
        int64_t block;      /* cached block, -1 none */
        const uint8_t *raw; /* its raw bytes (into buf or the segment) */
        uint64_t rows;      /* rows in the cached block */
        uint64_t raw_len;   /* bytes at raw */
        uint8_t *buf;
        ZSTD_DCtx *dctx;
        /* Scratch of the column-wise decoders, rows_per_block entries each
         * (allocated on first use). */
        uint32_t *ids;  /* base id of each row of a run */
        uint64_t *code; /* one column's codes */
};

int gd_cursor_new(const struct gd_segment *s, struct gd_cursor **ret)
{
        struct gd_cursor *c = dm_calloc(1, sizeof(*c));
        if (!c)
                return DREAM_E_NOMEM;
        c->s = s;
        c->block = -1;
        if (s->codec != GD_BLOCK_PLAIN) {
                c->buf = dm_malloc(gd_shuffled_bytes(&s->rec_layout, s->rows_per_block) + 1);
                c->dctx = ZSTD_createDCtx();
                if (!c->buf || !c->dctx) {
                        gd_cursor_free(c);
                        return DREAM_E_NOMEM;
                }
        }
        *ret = c;
        return 0;
}

void gd_cursor_free(struct gd_cursor *c)
{
        if (!c)
                return;
        ZSTD_freeDCtx(c->dctx);
        dm_free(c->buf);
        dm_free(c->ids);
        dm_free(c->code);
        dm_free(c);
}

static int load_block(struct gd_cursor *c, uint32_t b)
{
        const struct gd_segment *s = c->s;
        const struct gd_block_entry *e = &s->blocks[b];
        const uint8_t *stored = s->blocks_data + e->offset;

        if (c->block == (int64_t)b)
                return 0;
        c->block = -1;
        if (gd_sum32(stored, e->stored) != e->checksum)
                return DREAM_E_CHECKSUM;
        if (s->codec != GD_BLOCK_PLAIN) {
                size_t n = ZSTD_decompressDCtx(c->dctx, c->buf, e->raw, stored, e->stored);
                if (ZSTD_isError(n) || n != e->raw)
                        return DREAM_E_CORRUPT;
                c->raw = c->buf;
        } else {
                c->raw = stored;
        }
        c->raw_len = e->raw;
        c->rows = gd_block_rows(s, b);
        c->block = b;
        return 0;
}

/* `w` bits at bit offset `off` of buf (msb first), w in 0..64; buf holds len
 * bytes. An 8-byte load where the bytes allow it. */
static inline uint64_t get_bits_fast(const uint8_t *buf, uint64_t len, uint64_t off, unsigned w)
{
        if (w == 0)
                return 0;
        if (w <= 57 && (off >> 3) + 8 <= len) {
                uint64_t x = dm_get_be64(buf + (off >> 3));
                return (x << (off & 7)) >> (64 - w);
        }
        return gd_get_bits(buf, off, w);
}

static inline uint64_t rec_field(const struct gd_cursor *c, uint64_t r, uint32_t f)
{
        const struct gd_layout *l = &c->s->rec_layout;
        if (c->s->codec == GD_BLOCK_ZSTD)
                return gd_shuffle_get(c->raw, l, c->rows, r, f);
        if (c->s->codec == GD_BLOCK_ZSTD_ROWS)
                return gd_rows_get(c->raw, l, r, f);
        return get_bits_fast(c->raw, c->raw_len, r * l->row_bits + l->bit_offset[f], l->width[f]);
}

/* Decode row r of the cached block into out[col * stride]. */
static int decode_cached(const struct gd_cursor *c, uint64_t r, int64_t *out, uint64_t stride)
{
        const struct gd_segment *s = c->s;
        const struct gd_layout *dl = &s->dict_layout;
        const struct gd_layout *rl = &s->rec_layout;
        uint64_t base = rec_field(c, r, rl->n_fields - 1);
        if (base >= s->n_bases)
                return DREAM_E_CORRUPT;
        const uint64_t dict_off = base * dl->row_bits, dlen = gd_plain_bytes(dl, s->n_bases);
        for (uint32_t j = 0; j < s->n_cols; j++) {
                const struct gd_colmask *m = &s->masks[j];
                uint64_t code = 0;
                uint32_t f = s->rec_field_of_col[j];
                if (f != UINT32_MAX)
                        code = gd_deposit(rec_field(c, r, f), m->dev_runs, m->n_dev_runs);
                f = s->dict_field_of_col[j];
                if (f != UINT32_MAX)
                        code |=
                            gd_deposit(get_bits_fast(s->dict, dlen, dict_off + dl->bit_offset[f],
                                                     dl->width[f]),
                                       m->base_runs, m->n_base_runs);
                out[(uint64_t)j * stride] = (int64_t)((uint64_t)s->params[j].min + code);
        }
        return 0;
}

int gd_cursor_row(struct gd_cursor *c, uint64_t row, int64_t *ret_v)
{
        if (row >= c->s->n_rows)
                return DREAM_E_RANGE;
        int r = load_block(c, (uint32_t)(row / c->s->rows_per_block));
        if (r < 0)
                return r;
        return decode_cached(c, row % c->s->rows_per_block, ret_v, 1);
}

/* ---- column-wise decoding of runs of rows -------------------------------------------
 *
 * A run of rows of one block is decoded one column at a time: the base ids
 * once, then for every column its record field for every row of the run, its
 * dictionary field by base id, and the column minimum. Each loop has one
 * codec and one layout, so none of the per-cell dispatch of decode_cached. */

/* Field f of rows [r0, r0 + n) of the cached block into out[0..n). */
static void rec_field_run(const struct gd_cursor *c, uint32_t f, uint64_t r0, uint64_t n,
                          uint64_t *out)
{
        const struct gd_layout *l = &c->s->rec_layout;
        const uint8_t nb = l->bytes[f];

        if (nb == 0) { /* a 0-bit base id: one base */
                memset(out, 0, n * sizeof(*out));
        } else if (c->s->codec == GD_BLOCK_ZSTD) {
                const uint8_t *p = c->raw + (uint64_t)l->byte_offset[f] * c->rows + r0;
                if (nb == 1) {
                        for (uint64_t i = 0; i < n; i++)
                                out[i] = p[i];
                } else if (nb == 2) {
                        const uint8_t *q = p + c->rows;
                        for (uint64_t i = 0; i < n; i++)
                                out[i] = (uint64_t)p[i] << 8 | q[i];
                } else {
                        for (uint64_t i = 0; i < n; i++)
                                out[i] = p[i];
                        for (uint8_t b = 1; b < nb; b++) {
                                const uint8_t *q = p + (uint64_t)b * c->rows;
                                for (uint64_t i = 0; i < n; i++)
                                        out[i] = out[i] << 8 | q[i];
                        }
                }
        } else if (c->s->codec == GD_BLOCK_ZSTD_ROWS) {
                const uint8_t *p = c->raw + r0 * l->row_bytes + l->byte_offset[f];
                const uint32_t stride = l->row_bytes;
                if (nb == 1) {
                        for (uint64_t i = 0; i < n; i++)
                                out[i] = p[i * stride];
                } else if (nb == 2) {
                        for (uint64_t i = 0; i < n; i++)
                                out[i] = (uint64_t)p[i * stride] << 8 | p[i * stride + 1];
                } else {
                        for (uint64_t i = 0; i < n; i++, p += stride) {
                                uint64_t v = 0;
                                for (uint8_t b = 0; b < nb; b++)
                                        v = v << 8 | p[b];
                                out[i] = v;
                        }
                }
        } else {
                uint64_t off = r0 * l->row_bits + l->bit_offset[f];
                for (uint64_t i = 0; i < n; i++, off += l->row_bits)
                        out[i] = get_bits_fast(c->raw, c->raw_len, off, l->width[f]);
        }
}

/* gd_deposit over a whole run; one run (the usual case) is a mask and a shift. */
static void deposit_run(uint64_t *v, uint64_t n, const struct gd_run *runs, uint8_t n_runs)
{
        if (n_runs == 1) {
                const uint64_t m = gd_low_mask(runs[0].len);
                const unsigned sh = runs[0].shift;
                for (uint64_t i = 0; i < n; i++)
                        v[i] = (v[i] & m) << sh;
        } else {
                for (uint64_t i = 0; i < n; i++)
                        v[i] = gd_deposit(v[i], runs, n_runs);
        }
}

/* The base ids of rows [r0, r0 + n) of the cached block into c->ids. */
static int base_ids(struct gd_cursor *c, uint64_t r0, uint64_t n)
{
        const struct gd_segment *s = c->s;
        uint64_t *tmp = c->code;
        rec_field_run(c, s->rec_layout.n_fields - 1, r0, n, tmp);
        for (uint64_t i = 0; i < n; i++) {
                if (tmp[i] >= s->n_bases)
                        return DREAM_E_CORRUPT;
                c->ids[i] = (uint32_t)tmp[i];
        }
        return 0;
}

/* Codes of column j (without its minimum) for rows [r0, r0 + n) of the cached
 * block, whose base ids are in c->ids, into out[0..n). */
static void column_codes(const struct gd_cursor *c, uint32_t j, uint64_t r0, uint64_t n,
                         uint64_t *out)
{
        const struct gd_segment *s = c->s;
        const struct gd_colmask *m = &s->masks[j];
        const struct gd_layout *dl = &s->dict_layout;
        uint32_t f = s->rec_field_of_col[j];

        if (f != UINT32_MAX) {
                rec_field_run(c, f, r0, n, out);
                deposit_run(out, n, m->dev_runs, m->n_dev_runs);
        } else {
                memset(out, 0, n * sizeof(*out));
        }
        f = s->dict_field_of_col[j];
        if (f != UINT32_MAX) {
                const uint64_t dlen = gd_plain_bytes(dl, s->n_bases);
                const uint32_t off = dl->bit_offset[f];
                const unsigned w = dl->width[f];
                for (uint64_t i = 0; i < n; i++) {
                        uint64_t b = get_bits_fast(s->dict, dlen,
                                                   (uint64_t)c->ids[i] * dl->row_bits + off, w);
                        out[i] |= gd_deposit(b, m->base_runs, m->n_base_runs);
                }
        }
}

static int scratch(struct gd_cursor *c)
{
        if (c->ids)
                return 0;
        c->ids = dm_mallocarray(c->s->rows_per_block, sizeof(*c->ids));
        c->code = dm_mallocarray(c->s->rows_per_block, sizeof(*c->code));
        if (!c->ids || !c->code) {
                dm_free(c->ids);
                dm_free(c->code);
                c->ids = NULL;
                c->code = NULL;
                return DREAM_E_NOMEM;
        }
        return 0;
}

/* What a run of rows is decoded into. */
struct sink {
        int64_t *const *cols; /* columns: cols[j][at + i], or NULL to skip column j */
        float *x;             /* features: x[(at + i) * d + f] */
        double *y;            /* the skipped column (may be NULL) */
        int32_t skip;
        uint32_t d;
};

/* Rows [r0, r0 + n) of the cached block into the sink's rows [at, at + n). */
static int decode_run(struct gd_cursor *c, uint64_t r0, uint64_t n, const struct sink *k,
                      uint64_t at)
{
        const struct gd_segment *s = c->s;
        int r = base_ids(c, r0, n);
        if (r < 0)
                return r;
        for (uint32_t j = 0, f = 0; j < s->n_cols; j++) {
                const struct gd_colparam *p = &s->params[j];
                if (k->cols) {
                        int64_t *dst = k->cols[j];
                        if (!dst)
                                continue;
                        dst += at;
                        column_codes(c, j, r0, n, (uint64_t *)dst);
                        for (uint64_t i = 0; i < n; i++)
                                dst[i] = (int64_t)((uint64_t)p->min + (uint64_t)dst[i]);
                        continue;
                }
                if ((int32_t)j == k->skip && !k->y)
                        continue;
                uint64_t *code = c->code;
                column_codes(c, j, r0, n, code);
                if ((int32_t)j == k->skip) {
                        for (uint64_t i = 0; i < n; i++)
                                k->y[at + i] = gd_value_f64(p->kind, p->scale,
                                                            (int64_t)((uint64_t)p->min + code[i]));
                        continue;
                }
                float *x = k->x + at * k->d + f;
                if (p->kind == GD_INT) {
                        for (uint64_t i = 0; i < n; i++)
                                x[i * k->d] = (float)(double)(int64_t)((uint64_t)p->min + code[i]);
                } else {
                        for (uint64_t i = 0; i < n; i++)
                                x[i * k->d] = (float)gd_value_f64(
                                    p->kind, p->scale, (int64_t)((uint64_t)p->min + code[i]));
                }
                f++;
        }
        return 0;
}

static int decode_rows(struct gd_cursor *c, uint64_t first, uint64_t count, const struct sink *k)
{
        const struct gd_segment *s = c->s;
        uint64_t done = 0;
        int r;

        if (first > s->n_rows || count > s->n_rows - first)
                return DREAM_E_RANGE;
        r = scratch(c);
        while (r == 0 && done < count) {
                uint64_t row = first + done;
                uint64_t r0 = row % s->rows_per_block;
                r = load_block(c, (uint32_t)(row / s->rows_per_block));
                if (r < 0)
                        break;
                uint64_t n = c->rows - r0;
                if (n > count - done)
                        n = count - done;
                r = decode_run(c, r0, n, k, done);
                done += n;
        }
        return r;
}

int gd_cursor_columns(struct gd_cursor *c, uint64_t first, uint64_t count, int64_t *const *cols)
{
        const struct sink k = {.cols = cols, .skip = -1};
        return decode_rows(c, first, count, &k);
}

int gd_cursor_features(struct gd_cursor *c, uint64_t first, uint64_t count, int32_t skip, float *x,
                       double *y)
{
        const uint32_t n_cols = c->s->n_cols;
        if (skip >= (int32_t)n_cols || (skip < 0 && y))
                return DREAM_E_INVAL;
        const struct sink k = {
            .x = x, .y = y, .skip = skip < 0 ? -1 : skip, .d = n_cols - (skip >= 0 ? 1 : 0)};
        return decode_rows(c, first, count, &k);
}

int gd_cursor_range(struct gd_cursor *c, uint64_t first, uint64_t count, struct gd_table *t)
{
        const struct gd_segment *s = c->s;
        int64_t **cols;
        int r;

        if (first > s->n_rows || count > s->n_rows - first)
                return DREAM_E_RANGE;
        if (t->n_cols != s->n_cols || t->n_rows < count)
                return DREAM_E_INVAL;
        cols = dm_mallocarray(s->n_cols, sizeof(*cols));
        if (!cols)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < s->n_cols; j++)
                cols[j] = t->cols[j].v;
        r = gd_cursor_columns(c, first, count, cols);
        dm_free(cols);
        if (r < 0)
                return r;
        for (uint32_t j = 0; j < s->n_cols; j++) {
                t->cols[j].kind = s->params[j].kind;
                t->cols[j].scale = s->params[j].scale;
        }
        return 0;
}

int gd_segment_decode(const struct gd_segment *s, struct gd_table **ret)
{
        struct gd_table *t = NULL;
        struct gd_cursor *c = NULL;
        int r = gd_table_new(s->n_rows, s->n_cols, &t);
        r = r ? r : gd_cursor_new(s, &c);
        for (uint32_t j = 0; r == 0 && j < s->n_cols; j++)
                r = gd_table_set_name(t, j, s->names[j]);
        r = r ? r : gd_cursor_range(c, 0, s->n_rows, t);
        gd_cursor_free(c);
        if (r < 0) {
                gd_table_free(t);
                return r;
        }
        t->target = s->target;
        t->task = s->task;
        *ret = t;
        return 0;
}

int gd_segment_verify(const struct gd_segment *s)
{
        for (uint32_t b = 0; b < s->n_blocks; b++) {
                const struct gd_block_entry *e = &s->blocks[b];
                if (gd_sum32(s->blocks_data + e->offset, e->stored) != e->checksum)
                        return DREAM_E_CHECKSUM;
        }
        return 0;
}
