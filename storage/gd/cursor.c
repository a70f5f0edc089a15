/* Random-access decoding of a segment (docs/method.md section 6): a cursor caches one
 * decompressed record block; rows are rebuilt from their record fields and
 * their base's dictionary row. */
#include <string.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

struct gd_cursor {
        const struct gd_segment *s;
        int64_t block;      /* cached block, -1 none */
        const uint8_t *raw; /* its raw bytes (into buf or the segment) */
        uint64_t rows;      /* rows in the cached block */
        uint8_t *buf;
        ZSTD_DCtx *dctx;
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
        c->rows = gd_block_rows(s, b);
        c->block = b;
        return 0;
}

static inline uint64_t rec_field(const struct gd_cursor *c, uint64_t r, uint32_t f)
{
        const struct gd_layout *l = &c->s->rec_layout;
        if (c->s->codec == GD_BLOCK_ZSTD)
                return gd_shuffle_get(c->raw, l, c->rows, r, f);
        if (c->s->codec == GD_BLOCK_ZSTD_ROWS)
                return gd_rows_get(c->raw, l, r, f);
        return gd_get_bits(c->raw, r * l->row_bits + l->bit_offset[f], l->width[f]);
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
        uint64_t dict_off = base * dl->row_bits;
        for (uint32_t j = 0; j < s->n_cols; j++) {
                const struct gd_colmask *m = &s->masks[j];
                uint64_t code = 0;
                uint32_t f = s->rec_field_of_col[j];
                if (f != UINT32_MAX)
                        code = gd_deposit(rec_field(c, r, f), m->dev_runs, m->n_dev_runs);
                f = s->dict_field_of_col[j];
                if (f != UINT32_MAX)
                        code |= gd_deposit(
                            gd_get_bits(s->dict, dict_off + dl->bit_offset[f], dl->width[f]),
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

int gd_cursor_range(struct gd_cursor *c, uint64_t first, uint64_t count, struct gd_table *t)
{
        const struct gd_segment *s = c->s;
        int64_t *vals;
        if (first > s->n_rows || count > s->n_rows - first)
                return DREAM_E_RANGE;
        if (t->n_cols != s->n_cols || t->n_rows < count)
                return DREAM_E_INVAL;
        vals = dm_mallocarray(s->n_cols, sizeof(int64_t));
        if (!vals)
                return DREAM_E_NOMEM;
        for (uint64_t i = 0; i < count; i++) {
                uint64_t row = first + i;
                int r = load_block(c, (uint32_t)(row / s->rows_per_block));
                r = r ? r : decode_cached(c, row % s->rows_per_block, vals, 1);
                if (r < 0) {
                        dm_free(vals);
                        return r;
                }
                for (uint32_t j = 0; j < s->n_cols; j++)
                        t->cols[j].v[i] = vals[j];
        }
        dm_free(vals);
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
