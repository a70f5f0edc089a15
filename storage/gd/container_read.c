/* Opening the container (FORMAT.md): every length and count of the bytes is
 * checked before it is used, and the checksums of the header, directory and
 * parts (each record block's own checksum is checked when the block is read,
 * cursor.c). The segment borrows the record blocks and the stored dictionary
 * from the bytes. */
#include <string.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/limits.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

struct part_ref {
        const uint8_t *p;
        uint64_t len;
};

static int parse_columns(struct gd_segment *s, struct part_ref part)
{
        struct dm_rd rd;
        uint64_t l_c = 0;
        dm_rd_init(&rd, part.p, part.len);
        s->params = dm_calloc(s->n_cols, sizeof(*s->params));
        s->names = dm_calloc(s->n_cols, sizeof(char *));
        s->col_start = dm_calloc((size_t)s->n_cols + 1, sizeof(uint32_t));
        if (!s->params || !s->names || !s->col_start)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < s->n_cols; j++) {
                uint8_t kind, scale, width, nlen;
                int64_t min = 0;
                const uint8_t *name;
                int r = dm_rd_u8(&rd, &kind);
                r = r ? r : dm_rd_u8(&rd, &scale);
                r = r ? r : dm_rd_u8(&rd, &width);
                r = r ? r : dm_rd_u8(&rd, &nlen);
                r = r ? r : gd_varint_get(&rd, &min);
                r = r ? r : dm_rd_bytes(&rd, nlen, &name);
                if (r < 0)
                        return DREAM_E_CORRUPT;
                if (kind > GD_F64 || width < 1 || width > 64 || scale > DREAM_MAX_SCALE ||
                    (kind == GD_DEC) != (scale > 0) || nlen > DREAM_MAX_NAME ||
                    memchr(name, 0, nlen))
                        return DREAM_E_CORRUPT;
                s->params[j] = (struct gd_colparam){(enum gd_kind)kind, scale, width, min};
                s->names[j] = dm_malloc((size_t)nlen + 1);
                if (!s->names[j])
                        return DREAM_E_NOMEM;
                memcpy(s->names[j], name, nlen);
                s->names[j][nlen] = 0;
                s->col_start[j] = (uint32_t)l_c;
                l_c += width;
        }
        s->col_start[s->n_cols] = (uint32_t)l_c;
        if (rd.pos != rd.len || l_c > DREAM_MAX_CHUNK_BITS)
                return DREAM_E_CORRUPT;
        s->l_c = (uint32_t)l_c;
        return 0;
}

static int parse_mask(struct gd_segment *s, struct part_ref part)
{
        uint32_t count = 0;
        if (part.len != (s->l_c + 7) / 8)
                return DREAM_E_CORRUPT;
        s->is_base = dm_calloc(s->l_c ? s->l_c : 1, 1);
        if (!s->is_base)
                return DREAM_E_NOMEM;
        for (uint32_t p = 0; p < s->l_c; p++) {
                s->is_base[p] = (part.p[p / 8] >> (7 - p % 8)) & 1u;
                count += s->is_base[p];
        }
        if (count != s->n_base_bits)
                return DREAM_E_CORRUPT;
        return 0;
}

static int parse_dict(struct gd_segment *s, struct part_ref part)
{
        const struct gd_layout *l = &s->dict_layout;
        uint64_t raw_len, plen = gd_plain_bytes(l, s->n_bases),
                          slen = gd_shuffled_bytes(l, s->n_bases);
        const uint32_t count_field = l->n_fields - 1;
        uint8_t *shuf = NULL;
        int r = DREAM_E_CORRUPT;

        if (part.len < GD_DICT_HEADER_BYTES || part.p[0] > GD_BLOCK_ZSTD)
                return DREAM_E_CORRUPT;
        raw_len = dm_get_le64(part.p + 2);
        s->dict_codec = (enum gd_block_codec)part.p[0];
        s->dict_part = part.p;
        s->dict_stored_len = part.len;
        /* 8 bytes of zeroed slack: fields are ORed in with 8-byte stores. */
        s->dict = dm_calloc(plen + 8, 1);
        if (!s->dict)
                return DREAM_E_NOMEM;
        if (s->dict_codec == GD_BLOCK_PLAIN) {
                if (raw_len != plen || part.len - GD_DICT_HEADER_BYTES != plen)
                        return DREAM_E_CORRUPT;
                memcpy(s->dict, part.p + GD_DICT_HEADER_BYTES, plen);
        } else {
                if (raw_len != slen || slen > DREAM_MAX_PART_BYTES)
                        return DREAM_E_CORRUPT;
                shuf = dm_malloc(slen ? slen : 1);
                if (!shuf)
                        return DREAM_E_NOMEM;
                size_t n = ZSTD_decompress(shuf, slen, part.p + GD_DICT_HEADER_BYTES,
                                           part.len - GD_DICT_HEADER_BYTES);
                if (ZSTD_isError(n) || n != slen)
                        goto out;
                /* Field by field: each field's bytes are contiguous per
                 * significance (internal.h). */
                for (uint32_t f = 0; f < l->n_fields; f++) {
                        const unsigned w = l->width[f];
                        const uint8_t nb = l->bytes[f];
                        const uint8_t *p = shuf + (uint64_t)l->byte_offset[f] * s->n_bases;
                        uint64_t off = l->bit_offset[f];
                        for (uint32_t b = 0; b < s->n_bases; b++, off += l->row_bits) {
                                uint64_t v = 0;
                                for (uint8_t k = 0; k < nb; k++)
                                        v = v << 8 | p[(uint64_t)k * s->n_bases + b];
                                if (w < 64 && (v >> w))
                                        goto out;
                                if (w <= 57) {
                                        uint8_t *q = s->dict + (off >> 3);
                                        dm_put_be64(q, dm_get_be64(q) |
                                                           v << (64 - w - (unsigned)(off & 7)));
                                } else {
                                        gd_put_bits(s->dict, off, v, w);
                                }
                        }
                }
        }
        uint64_t total = 0;
        for (uint32_t b = 0; b < s->n_bases; b++) {
                s->counts[b] =
                    gd_get_bits(s->dict, (uint64_t)b * l->row_bits + l->bit_offset[count_field],
                                l->width[count_field]);
                if (s->counts[b] == 0)
                        goto out;
                total += s->counts[b];
        }
        r = total == s->n_rows ? 0 : DREAM_E_CORRUPT;
out:
        dm_free(shuf);
        return r;
}

static int parse_blocks(struct gd_segment *s, struct part_ref index, struct part_ref data)
{
        struct dm_rd rd;
        uint64_t expect_off = 0;
        if (index.len != (uint64_t)s->n_blocks * GD_BLOCK_ENTRY_BYTES)
                return DREAM_E_CORRUPT;
        s->blocks = dm_calloc(s->n_blocks ? s->n_blocks : 1, sizeof(*s->blocks));
        if (!s->blocks)
                return DREAM_E_NOMEM;
        dm_rd_init(&rd, index.p, index.len);
        for (uint32_t b = 0; b < s->n_blocks; b++) {
                struct gd_block_entry *e = &s->blocks[b];
                uint64_t rows = gd_block_rows(s, b);
                uint64_t want = s->codec != GD_BLOCK_PLAIN ? gd_shuffled_bytes(&s->rec_layout, rows)
                                                           : gd_plain_bytes(&s->rec_layout, rows);
                if (dm_rd_le32(&rd, &e->stored) || dm_rd_le32(&rd, &e->checksum))
                        return DREAM_E_CORRUPT;
                e->offset = expect_off;
                e->raw = (uint32_t)want;
                if (e->stored > data.len - e->offset || want > DREAM_MAX_BLOCK_BYTES ||
                    (s->codec == GD_BLOCK_PLAIN && e->stored != e->raw))
                        return DREAM_E_CORRUPT;
                expect_off += e->stored;
        }
        if (expect_off != data.len)
                return DREAM_E_CORRUPT;
        s->blocks_data = data.p;
        s->blocks_len = data.len;
        return 0;
}

static int get_f64s(struct dm_rd *rd, double *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint64_t u;
                int r = dm_rd_le64(rd, &u);
                if (r < 0)
                        return r;
                memcpy(&v[i], &u, 8);
        }
        return 0;
}

static int parse_condensed(struct gd_segment *s, struct part_ref part)
{
        struct dm_rd rd;
        struct gd_condensed *c;
        uint32_t m, d, used;
        size_t cells;
        int r;

        dm_rd_init(&rd, part.p, part.len);
        if (dm_rd_le32(&rd, &m) || dm_rd_le32(&rd, &d) || dm_rd_le32(&rd, &used))
                return DREAM_E_CORRUPT;
        /* Lengths are checked against the part before anything is allocated. */
        if (d > DREAM_MAX_COLS || m > s->n_rows ||
            __builtin_mul_overflow((size_t)m, (size_t)d, &cells) ||
            part.len - rd.pos != (uint64_t)d * 4 + ((uint64_t)cells + 2ull * m) * 8)
                return DREAM_E_CORRUPT;
        r = gd_condensed_new(m, d, &c);
        if (r < 0)
                return r;
        c->bits_used = used;
        r = 0;
        for (uint32_t f = 0; f < d && r == 0; f++) {
                r = dm_rd_le32(&rd, &c->feature_cols[f]);
                if (r == 0 && c->feature_cols[f] >= s->n_cols)
                        r = DREAM_E_CORRUPT;
        }
        r = r ? r : get_f64s(&rd, c->x, cells);
        r = r ? r : get_f64s(&rd, c->y, m);
        r = r ? r : get_f64s(&rd, c->w, m);
        if (r < 0) {
                gd_condensed_free(c);
                return DREAM_E_CORRUPT;
        }
        s->cond = c;
        s->cond_owned = 1;
        return 0;
}

int gd_segment_open(const uint8_t *data, size_t len, struct gd_segment **ret)
{
        struct gd_segment *s;
        struct part_ref parts[GD_MAX_PARTS + 1] = {{0}};
        uint32_t n_parts;
        int r;

        if (len < 8 || memcmp(data, GD_MAGIC, 8) != 0)
                return len < 8 && memcmp(data, GD_MAGIC, len) == 0 ? DREAM_E_TRUNCATED
                                                                   : DREAM_E_FORMAT;
        if (len < GD_HEADER_BYTES)
                return DREAM_E_TRUNCATED;
        if (data[8] != GD_FORMAT_VERSION)
                return DREAM_E_FORMAT;
        if (gd_sum32(data, 44) != dm_get_le32(data + 44))
                return DREAM_E_CHECKSUM;
        if (data[9] > 1)
                return DREAM_E_CORRUPT;
        n_parts = data[9] ? 6 : 5;
        uint64_t dir_len = (uint64_t)n_parts * GD_PART_ENTRY_BYTES;
        if (len - GD_HEADER_BYTES < dir_len + 4)
                return DREAM_E_TRUNCATED;
        const uint8_t *d = data + GD_HEADER_BYTES;
        if (gd_sum32(d, dir_len) != dm_get_le32(d + dir_len))
                return DREAM_E_CHECKSUM;

        s = dm_calloc(1, sizeof(*s));
        if (!s)
                return DREAM_E_NOMEM;
        s->task = (enum gd_task)data[10];
        s->codec = (enum gd_block_codec)data[11];
        s->n_rows = dm_get_le32(data + 12);
        s->n_cols = dm_get_le32(data + 16);
        s->target = (int32_t)dm_get_le32(data + 20);
        s->n_base_bits = dm_get_le32(data + 24);
        s->n_bases = dm_get_le32(data + 28);
        s->rows_per_block = dm_get_le32(data + 32);
        s->source_bytes = dm_get_le64(data + 36);
        s->total_bytes = len;
        r = DREAM_E_CORRUPT;
        if (s->n_rows == 0 || s->n_rows > DREAM_MAX_SEGMENT_ROWS || s->n_cols == 0 ||
            s->n_cols > DREAM_MAX_COLS || s->target < -1 || s->target >= (int64_t)s->n_cols ||
            (uint32_t)s->task > GD_TASK_CLASSIFICATION || s->n_bases == 0 ||
            s->n_bases > s->n_rows || s->rows_per_block == 0 ||
            s->rows_per_block > GD_MAX_BLOCK_ROWS || (uint32_t)s->codec > GD_BLOCK_ZSTD_ROWS)
                goto fail;
        s->n_blocks = (uint32_t)((s->n_rows + s->rows_per_block - 1) / s->rows_per_block);
        uint64_t off = GD_HEADER_BYTES + dir_len + 4;
        for (uint32_t i = 0; i < n_parts; i++) {
                const uint8_t *e = d + (size_t)i * GD_PART_ENTRY_BYTES;
                uint32_t type = i + 1;
                uint64_t plen = dm_get_le64(e);
                if (plen > len - off) {
                        r = DREAM_E_TRUNCATED;
                        goto fail;
                }
                parts[type] = (struct part_ref){data + off, plen};
                /* Record blocks carry their own checksums. */
                if (type != GD_PART_BLOCKS && gd_sum32(data + off, plen) != dm_get_le32(e + 8)) {
                        r = DREAM_E_CHECKSUM;
                        goto fail;
                }
                off += plen;
        }
        if (off != len) {
                r = DREAM_E_CORRUPT; /* bytes after the last part */
                goto fail;
        }
        s->counts = dm_calloc(s->n_bases, sizeof(uint64_t));
        if (!s->counts) {
                r = DREAM_E_NOMEM;
                goto fail;
        }
        r = parse_columns(s, parts[GD_PART_COLUMNS]); /* sets l_c */
        if (r == 0 && s->n_base_bits > s->l_c)
                r = DREAM_E_CORRUPT;
        s->s_bits = gd_size_bits(s->n_rows, s->l_c, s->n_base_bits, s->n_bases);
        r = r ? r : parse_mask(s, parts[GD_PART_MASK]);
        r = r ? r : gd_segment_build_masks(s);
        if (r < 0)
                goto fail;
        if (s->rec_layout.width[s->rec_layout.n_fields - 1] != gd_ceil_log2(s->n_bases)) {
                r = DREAM_E_CORRUPT;
                goto fail;
        }
        /* The dictionary part says how wide its count field is. */
        {
                struct gd_layout *l = &s->dict_layout;
                struct part_ref dp = parts[GD_PART_DICT];
                if (dp.len < GD_DICT_HEADER_BYTES || dp.p[1] < 1 || dp.p[1] > 64 ||
                    dp.p[1] > gd_width_of(s->n_rows)) {
                        r = DREAM_E_CORRUPT;
                        goto fail;
                }
                l->width[l->n_fields - 1] = dp.p[1];
                gd_layout_finish(l);
        }
        r = parse_dict(s, parts[GD_PART_DICT]);
        r = r ? r : parse_blocks(s, parts[GD_PART_BLOCK_INDEX], parts[GD_PART_BLOCKS]);
        if (r == 0 && n_parts == 6)
                r = parse_condensed(s, parts[GD_PART_CONDENSED]);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        gd_segment_free(s);
        return r;
}
