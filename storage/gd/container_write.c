/* Writing the container (FORMAT.md): header, part directory and parts of an
 * encoded or opened segment. */
#include <string.h>

#include "common/bytes.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

static int put_columns(const struct gd_segment *s, struct dm_buf *b)
{
        int r = 0;
        for (uint32_t j = 0; j < s->n_cols && r == 0; j++) {
                size_t len = strlen(s->names[j]);
                uint8_t v[10];
                size_t vn = gd_varint_put(v, s->params[j].min);
                r = dm_buf_put_u8(b, (uint8_t)s->params[j].kind);
                r = r ? r : dm_buf_put_u8(b, s->params[j].scale);
                r = r ? r : dm_buf_put_u8(b, s->params[j].width);
                r = r ? r : dm_buf_put_u8(b, (uint8_t)len);
                r = r ? r : dm_buf_append(b, v, vn);
                r = r ? r : dm_buf_append(b, s->names[j], len);
        }
        return r;
}

static int put_mask(const struct gd_segment *s, struct dm_buf *b)
{
        size_t len = (s->l_c + 7) / 8;
        int r = dm_buf_reserve(b, len);
        if (r < 0)
                return r;
        memset(b->data + b->len, 0, len);
        for (uint32_t p = 0; p < s->l_c; p++) {
                if (s->is_base[p])
                        b->data[b->len + p / 8] |= (uint8_t)(0x80u >> (p % 8));
        }
        b->len += len;
        return 0;
}

static int put_block_index(const struct gd_segment *s, struct dm_buf *b)
{
        int r = 0;
        for (uint32_t i = 0; i < s->n_blocks && r == 0; i++) {
                r = dm_buf_put_le32(b, s->blocks[i].stored);
                r = r ? r : dm_buf_put_le32(b, s->blocks[i].checksum);
        }
        return r;
}

static int put_f64s(struct dm_buf *b, const double *v, size_t n)
{
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++) {
                uint64_t u;
                memcpy(&u, &v[i], 8);
                r = dm_buf_put_le64(b, u);
        }
        return r;
}

static int put_condensed(const struct gd_condensed *c, struct dm_buf *b)
{
        int r = dm_buf_put_le32(b, c->m);
        r = r ? r : dm_buf_put_le32(b, c->d);
        r = r ? r : dm_buf_put_le32(b, c->bits_used);
        for (uint32_t f = 0; f < c->d && r == 0; f++)
                r = dm_buf_put_le32(b, c->feature_cols[f]);
        r = r ? r : put_f64s(b, c->x, (size_t)c->m * c->d);
        r = r ? r : put_f64s(b, c->y, c->m);
        r = r ? r : put_f64s(b, c->w, c->m);
        return r;
}

int gd_segment_serialize(const struct gd_segment *s, struct dm_buf *out)
{
        struct dm_buf parts[GD_MAX_PARTS];
        uint32_t n_parts = s->cond ? 6 : 5;
        size_t start = out->len;
        int r;

        for (uint32_t i = 0; i < GD_MAX_PARTS; i++)
                dm_buf_init(&parts[i]);
        r = put_columns(s, &parts[0]);
        r = r ? r : put_mask(s, &parts[1]);
        r = r ? r : dm_buf_append(&parts[2], s->dict_part, s->dict_stored_len);
        r = r ? r : put_block_index(s, &parts[3]);
        r = r ? r : dm_buf_append(&parts[4], s->blocks_data, s->blocks_len);
        if (s->cond)
                r = r ? r : put_condensed(s->cond, &parts[5]);
        if (r < 0)
                goto out;

        uint64_t dir_len = (uint64_t)n_parts * GD_PART_ENTRY_BYTES + 4;
        r = dm_buf_reserve(out, GD_HEADER_BYTES + dir_len);
        if (r < 0)
                goto out;
        uint8_t *h = out->data + out->len;
        memset(h, 0, GD_HEADER_BYTES + dir_len);
        memcpy(h, GD_MAGIC, 8);
        /* l_c, the block count, the part count and S(B) are derived on open. */
        h[8] = GD_FORMAT_VERSION;
        h[9] = s->cond ? 1u : 0u;
        h[10] = (uint8_t)s->task;
        h[11] = (uint8_t)s->codec;
        dm_put_le32(h + 12, (uint32_t)s->n_rows);
        dm_put_le32(h + 16, s->n_cols);
        dm_put_le32(h + 20, (uint32_t)s->target);
        dm_put_le32(h + 24, s->n_base_bits);
        dm_put_le32(h + 28, s->n_bases);
        dm_put_le32(h + 32, s->rows_per_block);
        dm_put_le64(h + 36, s->source_bytes);
        dm_put_le32(h + 44, gd_sum32(h, 44));
        /* Part directory: length and checksum of each part, in order; the
         * parts follow the directory back to back. */
        uint8_t *d = h + GD_HEADER_BYTES;
        for (uint32_t i = 0; i < n_parts; i++) {
                uint8_t *e = d + (size_t)i * GD_PART_ENTRY_BYTES;
                dm_put_le64(e, parts[i].len);
                dm_put_le32(e + 8, gd_sum32(parts[i].data, parts[i].len));
        }
        dm_put_le32(d + (size_t)n_parts * GD_PART_ENTRY_BYTES,
                    gd_sum32(d, (size_t)n_parts * GD_PART_ENTRY_BYTES));
        out->len += GD_HEADER_BYTES + dir_len;
        for (uint32_t i = 0; i < n_parts && r == 0; i++)
                r = dm_buf_append(out, parts[i].data, parts[i].len);
        if (r < 0)
                out->len = start;
out:
        for (uint32_t i = 0; i < GD_MAX_PARTS; i++)
                dm_buf_release(&parts[i]);
        return r;
}
