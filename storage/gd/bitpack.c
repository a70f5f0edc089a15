/* Bit-level helpers of the segment: runs of a mask, field-matrix layouts
 * (internal.h) and the zigzag varints of the columns part. */
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "storage/gd/internal.h"

/* ---- bit and mask helpers --------------------------------------------- */

void gd_mask_runs(uint64_t m, struct gd_run *runs, uint8_t *ret_n)
{
        uint8_t n = 0, s = 0;
        while (m) {
                unsigned tz = (unsigned)__builtin_ctzll(m);
                m >>= tz;
                s = (uint8_t)(s + tz);
                unsigned len = ~m ? (unsigned)__builtin_ctzll(~m) : 64;
                runs[n++] = (struct gd_run){s, (uint8_t)len};
                m = len >= 64 ? 0 : m >> len;
                s = (uint8_t)(s + len);
        }
        *ret_n = n;
}

void gd_layout_release(struct gd_layout *l)
{
        dm_free(l->width);
        dm_free(l->bit_offset);
        dm_free(l->bytes);
        dm_free(l->byte_offset);
        memset(l, 0, sizeof(*l));
}

int gd_layout_init(struct gd_layout *l, uint32_t n_fields)
{
        memset(l, 0, sizeof(*l));
        l->n_fields = n_fields;
        l->width = dm_calloc(n_fields ? n_fields : 1, 1);
        l->bit_offset = dm_calloc(n_fields ? n_fields : 1, sizeof(uint32_t));
        l->bytes = dm_calloc(n_fields ? n_fields : 1, 1);
        l->byte_offset = dm_calloc(n_fields ? n_fields : 1, sizeof(uint32_t));
        if (!l->width || !l->bit_offset || !l->bytes || !l->byte_offset) {
                gd_layout_release(l);
                return DREAM_E_NOMEM;
        }
        return 0;
}

void gd_layout_finish(struct gd_layout *l)
{
        uint32_t bits = 0, bytes = 0;
        for (uint32_t f = 0; f < l->n_fields; f++) {
                l->bit_offset[f] = bits;
                l->byte_offset[f] = bytes;
                l->bytes[f] = (uint8_t)((l->width[f] + 7) / 8);
                bits += l->width[f];
                bytes += l->bytes[f];
        }
        l->row_bits = bits;
        l->row_bytes = bytes;
}

/* ---- varints ------------------------------------------------------------ */

/* Zigzag LEB128: small magnitudes of either sign take one byte. */
size_t gd_varint_put(uint8_t out[10], int64_t v)
{
        uint64_t z = ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63)); /* sign: all ones or 0 */
        size_t n = 0;
        while (z >= 0x80) {
                out[n++] = (uint8_t)(z | 0x80);
                z >>= 7;
        }
        out[n++] = (uint8_t)z;
        return n;
}

int gd_varint_get(struct dm_rd *rd, int64_t *ret)
{
        uint64_t z = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                uint8_t byte;
                int r = dm_rd_u8(rd, &byte);
                if (r < 0)
                        return r;
                if (shift == 63 && byte > 1)
                        return DREAM_E_CORRUPT;
                z |= (uint64_t)(byte & 0x7f) << shift;
                if (!(byte & 0x80)) {
                        *ret = (int64_t)((z >> 1) ^ (0 - (z & 1)));
                        return 0;
                }
        }
        return DREAM_E_CORRUPT;
}
