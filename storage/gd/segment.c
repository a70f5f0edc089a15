/* The segment object (docs/method.md section 6): its size S(B), the column masks and
 * field layouts derived from the chosen base bits, its lifetime and what it
 * owns (condensed samples included), accessors and statistics. Built by
 * encode.c or opened by container_read.c. */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

/* S(B) (declared with the selection, which minimises it): the size of a
 * segment's dictionary and records in bits. */
uint64_t gd_size_bits(uint64_t n_rows, uint32_t l_c, uint32_t n_base_bits, uint32_t n_bases)
{
        return (uint64_t)n_bases * n_base_bits + n_rows * (uint64_t)(l_c - n_base_bits) +
               n_rows * gd_ceil_log2(n_bases);
}

/* ---- column masks from the chosen base bits ---------------------------- */

int gd_segment_build_masks(struct gd_segment *s)
{
        uint32_t nd = 0, nbf = 0;
        int r;

        s->masks = dm_calloc(s->n_cols, sizeof(*s->masks));
        s->dict_field_of_col = dm_mallocarray(s->n_cols, sizeof(uint32_t));
        s->rec_field_of_col = dm_mallocarray(s->n_cols, sizeof(uint32_t));
        if (!s->masks || !s->dict_field_of_col || !s->rec_field_of_col)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < s->n_cols; j++) {
                struct gd_colmask *m = &s->masks[j];
                unsigned w = s->params[j].width;
                for (unsigned p = 0; p < w; p++) {
                        uint64_t bit = 1ULL << (w - 1 - p);
                        if (s->is_base[s->col_start[j] + p])
                                m->base |= bit;
                        else
                                m->dev |= bit;
                }
                m->n_base = (uint8_t)__builtin_popcountll(m->base);
                m->n_dev = (uint8_t)__builtin_popcountll(m->dev);
                gd_mask_runs(m->base, m->base_runs, &m->n_base_runs);
                gd_mask_runs(m->dev, m->dev_runs, &m->n_dev_runs);
                s->dict_field_of_col[j] = m->n_base ? nbf++ : UINT32_MAX;
                s->rec_field_of_col[j] = m->n_dev ? nd++ : UINT32_MAX;
        }
        /* Dictionary rows: base part of each column, then the count. */
        r = gd_layout_init(&s->dict_layout, nbf + 1);
        if (r < 0)
                return r;
        uint64_t max_count = 0;
        for (uint32_t b = 0; s->counts && b < s->n_bases; b++)
                max_count = s->counts[b] > max_count ? s->counts[b] : max_count;
        for (uint32_t j = 0; j < s->n_cols; j++) {
                if (s->dict_field_of_col[j] != UINT32_MAX)
                        s->dict_layout.width[s->dict_field_of_col[j]] = s->masks[j].n_base;
        }
        s->dict_layout.width[nbf] = gd_width_of(max_count);
        gd_layout_finish(&s->dict_layout);
        /* Records: deviation part of each column, then the base id. */
        r = gd_layout_init(&s->rec_layout, nd + 1);
        if (r < 0)
                return r;
        for (uint32_t j = 0; j < s->n_cols; j++) {
                if (s->rec_field_of_col[j] != UINT32_MAX)
                        s->rec_layout.width[s->rec_field_of_col[j]] = s->masks[j].n_dev;
        }
        s->rec_layout.width[nd] = (uint8_t)gd_ceil_log2(s->n_bases);
        gd_layout_finish(&s->rec_layout);
        return 0;
}

/* ---- lifetime ----------------------------------------------------------- */

void gd_condensed_free(struct gd_condensed *c)
{
        if (!c)
                return;
        dm_free(c->feature_cols);
        dm_free(c->x);
        dm_free(c->y);
        dm_free(c->w);
        dm_free(c->v);
        dm_free(c);
}

int gd_condensed_new(uint32_t m, uint32_t d, struct gd_condensed **ret)
{
        struct gd_condensed *c = dm_calloc(1, sizeof(*c));
        const uint64_t cells = (uint64_t)m * d;

        if (!c)
                return DREAM_E_NOMEM;
        c->m = m;
        c->d = d;
        c->feature_cols = dm_mallocarray(d ? d : 1, sizeof(uint32_t));
        c->x = dm_mallocarray(cells ? cells : 1, sizeof(double));
        c->y = dm_mallocarray(m ? m : 1, sizeof(double));
        c->w = dm_mallocarray(m ? m : 1, sizeof(double));
        c->v = dm_calloc(cells ? cells : 1, sizeof(double));
        if (!c->feature_cols || !c->x || !c->y || !c->w || !c->v) {
                gd_condensed_free(c);
                return DREAM_E_NOMEM;
        }
        *ret = c;
        return 0;
}

void gd_segment_set_condensed(struct gd_segment *s, struct gd_condensed *c)
{
        if (s->cond_owned)
                gd_condensed_free(s->cond);
        s->cond = c;
        s->cond_owned = 1;
}

void gd_segment_free(struct gd_segment *s)
{
        if (!s)
                return;
        if (s->names) {
                for (uint32_t j = 0; j < s->n_cols; j++)
                        dm_free(s->names[j]);
                dm_free(s->names);
        }
        dm_free(s->params);
        dm_free(s->col_start);
        dm_free(s->masks);
        dm_free(s->is_base);
        gd_layout_release(&s->dict_layout);
        gd_layout_release(&s->rec_layout);
        dm_free(s->dict_field_of_col);
        dm_free(s->rec_field_of_col);
        dm_free(s->dict);
        dm_free(s->counts);
        dm_free(s->blocks);
        dm_free(s->owned_blocks);
        dm_free(s->dict_stored);
        if (s->cond_owned)
                gd_condensed_free(s->cond);
        dm_free(s);
}

/* ---- accessors ---------------------------------------------------------- */

const char *gd_block_codec_name(enum gd_block_codec c)
{
        return c == GD_BLOCK_ZSTD ? "zstd" : c == GD_BLOCK_ZSTD_ROWS ? "zstd-rows" : "plain";
}

uint64_t gd_segment_rows(const struct gd_segment *s)
{
        return s->n_rows;
}

uint32_t gd_segment_cols(const struct gd_segment *s)
{
        return s->n_cols;
}

const struct gd_colparam *gd_segment_params(const struct gd_segment *s)
{
        return s->params;
}

const char *gd_segment_col_name(const struct gd_segment *s, uint32_t col)
{
        return col < s->n_cols ? s->names[col] : NULL;
}

int32_t gd_segment_target(const struct gd_segment *s)
{
        return s->target;
}

enum gd_task gd_segment_task(const struct gd_segment *s)
{
        return s->task;
}

const struct gd_condensed *gd_segment_condensed(const struct gd_segment *s)
{
        return s->cond;
}

/* Length of the columns part as container_write.c writes it. */
static uint64_t columns_bytes(const struct gd_segment *s)
{
        uint64_t n = 0;
        uint8_t tmp[10];
        for (uint32_t j = 0; j < s->n_cols; j++)
                n += 4 + gd_varint_put(tmp, s->params[j].min) + strlen(s->names[j]);
        return n;
}

void gd_segment_stats(const struct gd_segment *s, struct gd_stats *ret)
{
        struct gd_stats st = {0};
        uint64_t cols_bytes = columns_bytes(s);
        st.n_rows = s->n_rows;
        st.n_cols = s->n_cols;
        st.l_c = s->l_c;
        st.n_base_bits = s->n_base_bits;
        st.n_bases = s->n_bases;
        st.record_bits = s->rec_layout.row_bits;
        st.rows_per_block = s->rows_per_block;
        st.n_blocks = s->n_blocks;
        st.codec = s->codec;
        st.s_bits = s->s_bits;
        st.header_bytes = GD_HEADER_BYTES + (uint64_t)(s->cond ? 6 : 5) * GD_PART_ENTRY_BYTES + 4 +
                          cols_bytes + (s->l_c + 7) / 8;
        st.dict_bytes = s->dict_stored_len ? s->dict_stored_len : 0;
        st.records_bytes = s->blocks_len + (uint64_t)s->n_blocks * GD_BLOCK_ENTRY_BYTES;
        if (s->cond)
                st.condensed_bytes = 12 + (uint64_t)s->cond->d * 4 +
                                     ((uint64_t)s->cond->m * s->cond->d + 2ull * s->cond->m) * 8;
        st.total_bytes = st.header_bytes + st.dict_bytes + st.records_bytes + st.condensed_bytes;
        st.plain_records_bytes = 0;
        for (uint32_t b = 0; b < s->n_blocks; b++)
                st.plain_records_bytes += gd_plain_bytes(&s->rec_layout, gd_block_rows(s, b));
        st.source_bytes = s->source_bytes;
        st.select_seconds = s->select_seconds;
        *ret = st;
}
