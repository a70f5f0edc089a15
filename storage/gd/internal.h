/* Shared helpers of the codec's translation units; not part of the API.
 *
 * The segment (docs/method.md section 6, FORMAT.md) is built by encode.c, written by
 * container_write.c, opened by container_read.c and decoded by cursor.c;
 * segment.c owns its lifetime, column masks and accessors, bitpack.c the
 * bit-level helpers they share. */
#ifndef DREAM_GD_INTERNAL_H
#define DREAM_GD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

#include "common/bytes.h"
#include "storage/gd/gd.h"

/* Bits needed to hold every value in [0, range], at least 1. */
static inline uint8_t gd_width_of(uint64_t range)
{
        return range == 0 ? 1 : (uint8_t)(64 - __builtin_clzll(range));
}

/* ceil(log2(n)), 0 for n <= 1. */
static inline uint32_t gd_ceil_log2(uint64_t n)
{
        return n <= 1 ? 0 : (uint32_t)(64 - __builtin_clzll(n - 1));
}

static inline uint64_t gd_code(int64_t v, int64_t min)
{
        return (uint64_t)v - (uint64_t)min;
}

/* Mask of the low w bits (w in 1..64). */
static inline uint64_t gd_low_mask(unsigned w)
{
        return w >= 64 ? ~0ULL : ((1ULL << w) - 1);
}

/* ---- the container (FORMAT.md) ------------------------------------------ */

#define GD_MAGIC             "DREAMGD\x01"
#define GD_FORMAT_VERSION    1u
#define GD_HEADER_BYTES      48u
#define GD_PART_ENTRY_BYTES  12u
#define GD_BLOCK_ENTRY_BYTES 8u
#define GD_DICT_HEADER_BYTES 10u
#define GD_MAX_BLOCK_ROWS    8192u /* rows per record block, written and accepted */
#define GD_MAX_PARTS         6u

/* Part types: part i of the directory (1-based) has type i. */
enum gd_part_type {
        GD_PART_COLUMNS = 1,
        GD_PART_MASK = 2,
        GD_PART_DICT = 3,
        GD_PART_BLOCK_INDEX = 4,
        GD_PART_BLOCKS = 5,
        GD_PART_CONDENSED = 6,
};

/* Checksums: XXH3-64 (libxxhash), truncated to 32 bits for parts and blocks. */
static inline uint32_t gd_sum32(const void *p, size_t n)
{
        return (uint32_t)XXH3_64bits(p, n);
}

/* ---- the segment in memory ---------------------------------------------- */

/* A contiguous run of ones in a mask: bits [shift, shift + len). */
struct gd_run {
        uint8_t shift;
        uint8_t len;
};

/* Per column: which code bits are base bits and which deviation bits. */
struct gd_colmask {
        uint64_t base; /* code bits (bit 0 = least significant) that are base bits */
        uint64_t dev;
        uint8_t n_base;
        uint8_t n_dev;
        uint8_t n_base_runs, n_dev_runs;
        struct gd_run base_runs[32];
        struct gd_run dev_runs[32];
};

/* Layout of a field matrix.
 *
 * Records and the dictionary are both "field matrices": rows of fixed-width
 * unsigned fields. A matrix is stored either bit-packed (GD_BLOCK_PLAIN: each
 * row the concatenation of its fields, most significant bit first) or
 * shuffled and compressed (GD_BLOCK_ZSTD: each field widened to whole bytes,
 * the bytes of one significance of one field stored contiguously for all rows
 * of the block, then zstd), or row-major in whole bytes and compressed
 * (GD_BLOCK_ZSTD_ROWS). Records are cut into blocks of rows_per_block rows so
 * that any row decodes from one block. The arrays are owned, n_fields
 * entries each (gd_layout_init / gd_layout_release). */
struct gd_layout {
        uint32_t n_fields;
        uint8_t *width;        /* bits per field */
        uint32_t *bit_offset;  /* plain: offset of each field within a row */
        uint8_t *bytes;        /* shuffled: bytes per field */
        uint32_t *byte_offset; /* shuffled: sum of bytes of the fields before */
        uint32_t row_bits;     /* plain row width */
        uint32_t row_bytes;    /* shuffled row width */
};

struct gd_block_entry {
        uint64_t offset; /* within the BLOCKS part (derived: lengths before it) */
        uint32_t stored;
        uint32_t raw; /* derived from the block's rows */
        uint32_t checksum;
};

/* Every pointer is owned and freed by gd_segment_free, except those marked
 * borrowed: they point into the bytes given to gd_segment_open. */
struct gd_segment {
        /* Header facts. */
        uint64_t n_rows;
        uint32_t n_cols;
        int32_t target;
        enum gd_task task;
        uint32_t l_c, n_base_bits, n_bases, rows_per_block, n_blocks;
        enum gd_block_codec codec, dict_codec;
        uint64_t source_bytes, s_bits;
        double select_seconds;
        /* Columns. */
        struct gd_colparam *params;
        char **names;
        uint32_t *col_start;
        struct gd_colmask *masks;
        uint8_t *is_base; /* l_c entries */
        /* Dictionary, decoded: bit-packed base fields, counts. */
        struct gd_layout dict_layout; /* base field of every column with base bits + count */
        uint32_t *dict_field_of_col;  /* field index or UINT32_MAX */
        uint8_t *dict;                /* n_bases rows, plain layout */
        uint64_t *counts;
        /* Records. */
        struct gd_layout rec_layout; /* dev field of every column with dev bits + base id */
        uint32_t *rec_field_of_col;
        struct gd_block_entry *blocks;
        const uint8_t *blocks_data; /* BLOCKS part (owned_blocks or borrowed) */
        uint64_t blocks_len;
        /* Serialized form of the parts (encoder: owned; opened: borrowed). */
        uint8_t *owned_blocks;
        uint8_t *dict_stored;     /* encoder: owned stored dictionary part */
        const uint8_t *dict_part; /* the stored dictionary part (owned or borrowed) */
        uint64_t dict_stored_len;
        uint64_t plain_records_bytes;
        struct gd_condensed *cond; /* owned when cond_owned */
        int cond_owned;
        uint64_t total_bytes; /* when opened */
};

/* Rows of record block b (the last one may be short). */
static inline uint64_t gd_block_rows(const struct gd_segment *s, uint32_t b)
{
        uint64_t first = (uint64_t)b * s->rows_per_block;
        return s->n_rows - first < s->rows_per_block ? s->n_rows - first : s->rows_per_block;
}

/* From s->params, s->is_base, s->col_start and s->counts (may be NULL: the
 * count field is then 1 bit wide), allocate and fill s->masks, the
 * field-of-column maps and both layouts (segment.c). Partial results on
 * error are freed by gd_segment_free. */
int gd_segment_build_masks(struct gd_segment *s);

/* ---- bit-level helpers (bitpack.c, inline ones here) ---------------------- */

/* The runs of ones of m, low to high, into runs[] (32 entries are enough for
 * 64 bits); their count in *ret_n. */
void gd_mask_runs(uint64_t m, struct gd_run *runs, uint8_t *ret_n);

/* Allocate the arrays of a layout of n_fields fields, zeroed; on error
 * nothing stays allocated. Fill width[] and call gd_layout_finish. */
int gd_layout_init(struct gd_layout *l, uint32_t n_fields);
/* The offsets and row widths from width[]. */
void gd_layout_finish(struct gd_layout *l);
/* Free the arrays and zero the layout; a zeroed layout is fine. */
void gd_layout_release(struct gd_layout *l);

/* v as a zigzag LEB128 varint into out (at most 10 bytes); its length. */
size_t gd_varint_put(uint8_t out[10], int64_t v);
/* Read one varint written by gd_varint_put: the reader's error if the bytes
 * end first, DREAM_E_CORRUPT if it is longer than 64 bits. */
int gd_varint_get(struct dm_rd *rd, int64_t *ret);

/* Gather the bits of x under the runs, low runs to low bits. */
static inline uint64_t gd_extract(uint64_t x, const struct gd_run *runs, uint8_t n)
{
        uint64_t out = 0;
        unsigned pos = 0;
        for (uint8_t i = 0; i < n; i++) {
                out |= ((x >> runs[i].shift) & gd_low_mask(runs[i].len)) << pos;
                pos += runs[i].len;
        }
        return out;
}

/* Inverse of gd_extract. */
static inline uint64_t gd_deposit(uint64_t x, const struct gd_run *runs, uint8_t n)
{
        uint64_t out = 0;
        for (uint8_t i = 0; i < n; i++) {
                out |= (x & gd_low_mask(runs[i].len)) << runs[i].shift;
                x = runs[i].len >= 64 ? 0 : x >> runs[i].len;
        }
        return out;
}

/* Write `w` bits of v at bit offset `off` of buf (msb first); buf zeroed. */
static inline void gd_put_bits(uint8_t *buf, uint64_t off, uint64_t v, unsigned w)
{
        while (w) {
                unsigned in_byte = 8 - (unsigned)(off & 7);
                unsigned take = w < in_byte ? w : in_byte;
                uint8_t bits = (uint8_t)((v >> (w - take)) & gd_low_mask(take));
                buf[off >> 3] |= (uint8_t)(bits << (in_byte - take));
                off += take;
                w -= take;
        }
}

static inline uint64_t gd_get_bits(const uint8_t *buf, uint64_t off, unsigned w)
{
        uint64_t v = 0;
        while (w) {
                unsigned in_byte = 8 - (unsigned)(off & 7);
                unsigned take = w < in_byte ? w : in_byte;
                uint64_t bits = (buf[off >> 3] >> (in_byte - take)) & gd_low_mask(take);
                v = (take >= 64 ? 0 : v << take) | bits;
                off += take;
                w -= take;
        }
        return v;
}

/* Bytes of a block of `rows` rows in each codec's raw form. */
static inline uint64_t gd_plain_bytes(const struct gd_layout *l, uint64_t rows)
{
        return (rows * l->row_bits + 7) / 8;
}

static inline uint64_t gd_shuffled_bytes(const struct gd_layout *l, uint64_t rows)
{
        return rows * l->row_bytes;
}

/* Store field f of row r (of `rows`) into a shuffled buffer. */
static inline void gd_shuffle_put(uint8_t *buf, const struct gd_layout *l, uint64_t rows,
                                  uint64_t r, uint32_t f, uint64_t v)
{
        uint8_t nb = l->bytes[f];
        uint8_t *p = buf + (uint64_t)l->byte_offset[f] * rows;
        for (uint8_t b = 0; b < nb; b++)
                p[(uint64_t)b * rows + r] = (uint8_t)(v >> (8 * (nb - 1 - b)));
}

static inline uint64_t gd_shuffle_get(const uint8_t *buf, const struct gd_layout *l, uint64_t rows,
                                      uint64_t r, uint32_t f)
{
        uint8_t nb = l->bytes[f];
        const uint8_t *p = buf + (uint64_t)l->byte_offset[f] * rows;
        uint64_t v = 0;
        for (uint8_t b = 0; b < nb; b++)
                v = (v << 8) | p[(uint64_t)b * rows + r];
        return v;
}

/* Row-major bytes: row r's fields, each widened to whole bytes, most
 * significant byte first. */
static inline void gd_rows_put(uint8_t *buf, const struct gd_layout *l, uint64_t r, uint32_t f,
                               uint64_t v)
{
        uint8_t nb = l->bytes[f];
        uint8_t *p = buf + r * l->row_bytes + l->byte_offset[f];
        for (uint8_t b = 0; b < nb; b++)
                p[b] = (uint8_t)(v >> (8 * (nb - 1 - b)));
}

static inline uint64_t gd_rows_get(const uint8_t *buf, const struct gd_layout *l, uint64_t r,
                                   uint32_t f)
{
        uint8_t nb = l->bytes[f];
        const uint8_t *p = buf + r * l->row_bytes + l->byte_offset[f];
        uint64_t v = 0;
        for (uint8_t b = 0; b < nb; b++)
                v = (v << 8) | p[b];
        return v;
}

/* gd_planes_build with the columns shared between two threads when threads
 * > 1 (the same planes). */
int gd_planes_build_threads(const struct gd_table *t, const struct gd_colparam *params,
                            uint32_t threads, struct gd_planes **ret);

/* gd_prep_compute over the rows with skip[i] == 0 (skip NULL: every row). */
int gd_prep_compute_rows(const struct gd_table *t, const uint8_t *skip,
                         struct gd_colparam *ret_params);

#endif
