/* Encoding to dictionary + fixed-width records, the container (FORMAT.md),
 * and random-access decoding (docs/method.md section 6).
 *
 * Records and the dictionary are both "field matrices": rows of fixed-width
 * unsigned fields. A matrix is stored either bit-packed (GD_BLOCK_PLAIN: each
 * row the concatenation of its fields, most significant bit first) or
 * shuffled and compressed (GD_BLOCK_ZSTD: each field widened to whole bytes,
 * the bytes of one significance of one field stored contiguously for all rows
 * of the block, then zstd). Records are cut into blocks of rows_per_block rows
 * so that any row decodes from one block. */
#include <endian.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/limits.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

#define MAGIC                 "DREAMGD\x01"
#define FORMAT_VERSION        1u
#define HEADER_BYTES          48u
#define PART_ENTRY_BYTES      12u
#define BLOCK_ENTRY_BYTES     8u
#define DICT_HEADER_BYTES     10u
#define TARGET_BLOCK_BYTES    16384u
#define MAX_BLOCK_ROWS        8192u
#define SMALL_ZSTD_LEVEL      19 /* segments of at most SMALL_RAW_BYTES raw bytes */
#define SMALL_RAW_BYTES       (1u << 20)
#define TRIAL_BLOCKS          8u   /* blocks compressed both ways to choose the byte layout */
#define MAX_ENCODE_THREADS    16u  /* gd_encode_opts.threads is capped to this */
#define MIN_BLOCKS_PER_THREAD 8u   /* fewer blocks than this per thread: fewer threads */
#define GROUP_ROWS            512u /* short record blocks are filled this many rows at a time */

enum part_type {
        PART_COLUMNS = 1,
        PART_MASK = 2,
        PART_DICT = 3,
        PART_BLOCK_INDEX = 4,
        PART_BLOCKS = 5,
        PART_CONDENSED = 6,
};
#define MAX_PARTS 6u

/* A contiguous run of ones in a mask: bits [shift, shift + len). */
struct run {
        uint8_t shift;
        uint8_t len;
};

/* Per column: which code bits are base bits and which deviation bits. */
struct colmask {
        uint64_t base; /* code bits (bit 0 = least significant) that are base bits */
        uint64_t dev;
        uint8_t n_base;
        uint8_t n_dev;
        uint8_t n_base_runs, n_dev_runs;
        struct run base_runs[32];
        struct run dev_runs[32];
};

/* Layout of a field matrix. */
struct layout {
        uint32_t n_fields;
        uint8_t *width;        /* bits per field */
        uint32_t *bit_offset;  /* plain: offset of each field within a row */
        uint8_t *bytes;        /* shuffled: bytes per field */
        uint32_t *byte_offset; /* shuffled: sum of bytes of the fields before */
        uint32_t row_bits;     /* plain row width */
        uint32_t row_bytes;    /* shuffled row width */
};

struct block_entry {
        uint64_t offset; /* within the BLOCKS part (derived: lengths before it) */
        uint32_t stored;
        uint32_t raw; /* derived from the block's rows */
        uint32_t checksum;
};

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
        struct colmask *masks;
        uint8_t *is_base; /* l_c entries */
        /* Dictionary, decoded: bit-packed base fields, counts. */
        struct layout dict_layout;   /* base field of every column with base bits + count */
        uint32_t *dict_field_of_col; /* field index or UINT32_MAX */
        uint8_t *dict;               /* n_bases rows, plain layout */
        uint64_t *counts;
        /* Records. */
        struct layout rec_layout; /* dev field of every column with dev bits + base id */
        uint32_t *rec_field_of_col;
        struct block_entry *blocks;
        const uint8_t *blocks_data; /* BLOCKS part */
        uint64_t blocks_len;
        /* Serialized form of the parts (encoder: owned; opened: borrowed). */
        uint8_t *owned_blocks;
        uint8_t *dict_stored;     /* encoder: owned stored dictionary part */
        const uint8_t *dict_part; /* the stored dictionary part (owned or borrowed) */
        uint64_t dict_stored_len;
        uint64_t plain_records_bytes;
        struct gd_condensed *cond;
        int cond_owned;
        uint64_t total_bytes; /* when opened */
};

/* Checksums: XXH3-64 (libxxhash), truncated to 32 bits for parts and blocks. */
static inline uint32_t sum32(const void *p, size_t n)
{
        return (uint32_t)XXH3_64bits(p, n);
}

/* ---- bit and mask helpers --------------------------------------------- */

static void mask_runs(uint64_t m, struct run *runs, uint8_t *ret_n)
{
        uint8_t n = 0, s = 0;
        while (m) {
                unsigned tz = (unsigned)__builtin_ctzll(m);
                m >>= tz;
                s = (uint8_t)(s + tz);
                unsigned len = ~m ? (unsigned)__builtin_ctzll(~m) : 64;
                runs[n++] = (struct run){s, (uint8_t)len};
                m = len >= 64 ? 0 : m >> len;
                s = (uint8_t)(s + len);
        }
        *ret_n = n;
}

/* Gather the bits of x under the runs, low runs to low bits. */
static inline uint64_t extract(uint64_t x, const struct run *runs, uint8_t n)
{
        uint64_t out = 0;
        unsigned pos = 0;
        for (uint8_t i = 0; i < n; i++) {
                out |= ((x >> runs[i].shift) & gd_low_mask(runs[i].len)) << pos;
                pos += runs[i].len;
        }
        return out;
}

/* Inverse of extract. */
static inline uint64_t deposit(uint64_t x, const struct run *runs, uint8_t n)
{
        uint64_t out = 0;
        for (uint8_t i = 0; i < n; i++) {
                out |= (x & gd_low_mask(runs[i].len)) << runs[i].shift;
                x = runs[i].len >= 64 ? 0 : x >> runs[i].len;
        }
        return out;
}

/* Write `w` bits of v at bit offset `off` of buf (msb first); buf zeroed. */
static inline void put_bits(uint8_t *buf, uint64_t off, uint64_t v, unsigned w)
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

static inline uint64_t get_bits(const uint8_t *buf, uint64_t off, unsigned w)
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

static void layout_release(struct layout *l)
{
        dm_free(l->width);
        dm_free(l->bit_offset);
        dm_free(l->bytes);
        dm_free(l->byte_offset);
        memset(l, 0, sizeof(*l));
}

static int layout_init(struct layout *l, uint32_t n_fields)
{
        memset(l, 0, sizeof(*l));
        l->n_fields = n_fields;
        l->width = dm_calloc(n_fields ? n_fields : 1, 1);
        l->bit_offset = dm_calloc(n_fields ? n_fields : 1, sizeof(uint32_t));
        l->bytes = dm_calloc(n_fields ? n_fields : 1, 1);
        l->byte_offset = dm_calloc(n_fields ? n_fields : 1, sizeof(uint32_t));
        if (!l->width || !l->bit_offset || !l->bytes || !l->byte_offset) {
                layout_release(l);
                return DREAM_E_NOMEM;
        }
        return 0;
}

static void layout_finish(struct layout *l)
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

/* Bytes of a block of `rows` rows in each codec's raw form. */
static uint64_t plain_bytes(const struct layout *l, uint64_t rows)
{
        return (rows * l->row_bits + 7) / 8;
}

static uint64_t shuffled_bytes(const struct layout *l, uint64_t rows)
{
        return rows * l->row_bytes;
}

/* Store field f of row r (of `rows`) into a shuffled buffer. */
static inline void shuffle_put(uint8_t *buf, const struct layout *l, uint64_t rows, uint64_t r,
                               uint32_t f, uint64_t v)
{
        uint8_t nb = l->bytes[f];
        uint8_t *p = buf + (uint64_t)l->byte_offset[f] * rows;
        for (uint8_t b = 0; b < nb; b++)
                p[(uint64_t)b * rows + r] = (uint8_t)(v >> (8 * (nb - 1 - b)));
}

/* Row-major bytes: row r's fields, each widened to whole bytes, most
 * significant byte first. */
static inline void rows_put(uint8_t *buf, const struct layout *l, uint64_t r, uint32_t f,
                            uint64_t v)
{
        uint8_t nb = l->bytes[f];
        uint8_t *p = buf + r * l->row_bytes + l->byte_offset[f];
        for (uint8_t b = 0; b < nb; b++)
                p[b] = (uint8_t)(v >> (8 * (nb - 1 - b)));
}

static inline uint64_t rows_get(const uint8_t *buf, const struct layout *l, uint64_t r, uint32_t f)
{
        uint8_t nb = l->bytes[f];
        const uint8_t *p = buf + r * l->row_bytes + l->byte_offset[f];
        uint64_t v = 0;
        for (uint8_t b = 0; b < nb; b++)
                v = (v << 8) | p[b];
        return v;
}

static inline uint64_t shuffle_get(const uint8_t *buf, const struct layout *l, uint64_t rows,
                                   uint64_t r, uint32_t f)
{
        uint8_t nb = l->bytes[f];
        const uint8_t *p = buf + (uint64_t)l->byte_offset[f] * rows;
        uint64_t v = 0;
        for (uint8_t b = 0; b < nb; b++)
                v = (v << 8) | p[(uint64_t)b * rows + r];
        return v;
}

/* ---- column masks from the chosen base bits ---------------------------- */

static int build_masks(struct gd_segment *s)
{
        uint32_t nd = 0, nbf = 0;
        int r;

        s->masks = dm_calloc(s->n_cols, sizeof(*s->masks));
        s->dict_field_of_col = dm_mallocarray(s->n_cols, sizeof(uint32_t));
        s->rec_field_of_col = dm_mallocarray(s->n_cols, sizeof(uint32_t));
        if (!s->masks || !s->dict_field_of_col || !s->rec_field_of_col)
                return DREAM_E_NOMEM;
        for (uint32_t j = 0; j < s->n_cols; j++) {
                struct colmask *m = &s->masks[j];
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
                mask_runs(m->base, m->base_runs, &m->n_base_runs);
                mask_runs(m->dev, m->dev_runs, &m->n_dev_runs);
                s->dict_field_of_col[j] = m->n_base ? nbf++ : UINT32_MAX;
                s->rec_field_of_col[j] = m->n_dev ? nd++ : UINT32_MAX;
        }
        /* Dictionary rows: base part of each column, then the count. */
        r = layout_init(&s->dict_layout, nbf + 1);
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
        layout_finish(&s->dict_layout);
        /* Records: deviation part of each column, then the base id. */
        r = layout_init(&s->rec_layout, nd + 1);
        if (r < 0)
                return r;
        for (uint32_t j = 0; j < s->n_cols; j++) {
                if (s->rec_field_of_col[j] != UINT32_MAX)
                        s->rec_layout.width[s->rec_field_of_col[j]] = s->masks[j].n_dev;
        }
        s->rec_layout.width[nd] = (uint8_t)gd_ceil_log2(s->n_bases);
        layout_finish(&s->rec_layout);
        return 0;
}

/* ---- encoding ----------------------------------------------------------- */

const char *gd_block_codec_name(enum gd_block_codec c)
{
        return c == GD_BLOCK_ZSTD ? "zstd" : c == GD_BLOCK_ZSTD_ROWS ? "zstd-rows" : "plain";
}

void gd_encode_opts_default(struct gd_encode_opts *o)
{
        o->patience = 0;
        o->zstd_level = GD_ZSTD_FAST;
        o->force_codec = -1;
        o->source_bytes = 0;
        o->block_bytes = 0;
        o->threads = 0;
}

static uint32_t choose_rows_per_block(const struct layout *l, uint32_t target)
{
        uint32_t per_row = l->row_bytes ? l->row_bytes : 1;
        uint32_t rows = (target ? target : TARGET_BLOCK_BYTES) / per_row;
        if (rows > MAX_BLOCK_ROWS)
                rows = MAX_BLOCK_ROWS;
        rows &= ~15u;
        return rows < 16 ? 16 : rows;
}

/* The level asked for; GD_ZSTD_ARCHIVE picks by the segment's size. */
static int zstd_level(const struct gd_segment *s, const struct gd_encode_opts *o)
{
        if (o->zstd_level != GD_ZSTD_ARCHIVE)
                return o->zstd_level;
        return shuffled_bytes(&s->rec_layout, s->n_rows) <= SMALL_RAW_BYTES ? SMALL_ZSTD_LEVEL
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
        const struct layout *l = &s->rec_layout;
        const uint32_t f = s->rec_field_of_col[j];
        const struct colmask *m = &s->masks[j];
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
                uint64_t dv = extract(gd_code(v[r], (int64_t)min), m->dev_runs, m->n_dev_runs);
                if (form == GD_BLOCK_ZSTD)
                        shuffle_put(raw, l, rows, r, f, dv);
                else if (form == GD_BLOCK_ZSTD_ROWS)
                        rows_put(raw, l, r, f, dv);
                else
                        put_bits(raw, r * l->row_bits + l->bit_offset[f], dv, l->width[f]);
        }
}

/* The base id field of rows [first, first + rows). */
static void fill_ids(const struct gd_segment *s, const uint32_t *base_of, uint64_t first,
                     uint64_t rows, enum gd_block_codec form, uint8_t *raw)
{
        const struct layout *l = &s->rec_layout;
        const uint32_t id_field = l->n_fields - 1;
        for (uint64_t r = 0; r < rows; r++) {
                uint64_t i = first + r;
                if (form == GD_BLOCK_ZSTD)
                        shuffle_put(raw, l, rows, r, id_field, base_of[i]);
                else if (form == GD_BLOCK_ZSTD_ROWS)
                        rows_put(raw, l, r, id_field, base_of[i]);
                else
                        put_bits(raw, r * l->row_bits + l->bit_offset[id_field], base_of[i],
                                 l->width[id_field]);
        }
}

/* Rows of block b. */
static inline uint64_t block_rows(const struct gd_segment *s, uint32_t b)
{
        uint64_t first = (uint64_t)b * s->rows_per_block;
        return s->n_rows - first < s->rows_per_block ? s->n_rows - first : s->rows_per_block;
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
                        fill_column(s, j, t->cols[j].v + first, block_rows(s, b0 + k), form,
                                    raw + k * raw_stride);
                }
        }
        for (uint32_t k = 0; k < n; k++)
                fill_ids(s, base_of, (uint64_t)(b0 + k) * s->rows_per_block, block_rows(s, b0 + k),
                         form, raw + k * raw_stride);
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
        struct block_entry *zent; /* shared; entries [b0, b1) are this job's */
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
        const struct layout *l = &s->rec_layout;
        for (uint32_t g = j->b0; g < j->b1; g += j->group) {
                uint32_t n = j->b1 - g < j->group ? j->b1 - g : j->group;
                fill_blocks(s, j->t, j->base_of, g, n, j->form, j->raw, j->raw_stride);
                for (uint32_t k = 0; k < n; k++) {
                        uint32_t b = g + k;
                        uint64_t slen = shuffled_bytes(l, block_rows(s, b));
                        struct block_entry *e = &j->zent[b];
                        const uint8_t *raw = j->raw + k * j->raw_stride;
                        e->offset = j->out.len;
                        e->raw = (uint32_t)slen;
                        int r = zstd_pack(j->cctx, raw, slen, j->level, &j->out, &e->stored);
                        if (r < 0)
                                return r;
                        e->checksum = sum32(j->out.data + e->offset, e->stored);
                        j->total += e->stored;
                }
        }
        return 0;
}

static void *block_thread(void *arg)
{
        struct block_job *j = arg;
        j->r = run_block_job(j);
        return NULL;
}

/* Compress every record block in `form` into *zbuf, filling zent, with up to
 * `threads` threads (0 or 1: the calling thread alone, with cctx and raw).
 * Each thread takes a contiguous share of the blocks into its own buffer; the
 * shares are then joined in order, so the bytes do not depend on `threads`. */
static int zstd_blocks(const struct gd_segment *s, const struct gd_table *t,
                       const uint32_t *base_of, enum gd_block_codec form, int level,
                       uint32_t threads, ZSTD_CCtx *cctx, struct dm_buf *zbuf,
                       struct block_entry *zent, uint64_t *ret_total)
{
        struct block_job jobs[MAX_ENCODE_THREADS];
        pthread_t tid[MAX_ENCODE_THREADS];
        uint8_t started[MAX_ENCODE_THREADS] = {0};
        uint32_t n = threads < 1 ? 1 : threads > MAX_ENCODE_THREADS ? MAX_ENCODE_THREADS : threads;
        size_t raw_max = shuffled_bytes(&s->rec_layout, s->rows_per_block);
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
        for (uint32_t k = 1; k < n; k++)
                started[k] = pthread_create(&tid[k], NULL, block_thread, &jobs[k]) == 0;
        jobs[0].r = run_block_job(&jobs[0]);
        for (uint32_t k = 1; k < n; k++) {
                if (started[k])
                        pthread_join(tid[k], NULL);
                else /* no thread: do its share here */
                        jobs[k].r = run_block_job(&jobs[k]);
        }
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
        const struct layout *l = &s->rec_layout;
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
        struct block_entry *zent = dm_calloc(s->n_blocks ? s->n_blocks : 1, sizeof(*zent));
        uint64_t max_raw = shuffled_bytes(l, s->rows_per_block);
        if (plain_bytes(l, s->rows_per_block) > max_raw)
                max_raw = plain_bytes(l, s->rows_per_block);
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
                                uint64_t rows = s->n_rows - first < s->rows_per_block
                                                    ? s->n_rows - first
                                                    : s->rows_per_block;
                                uint32_t len;
                                size_t mark = zbuf.len;
                                fill_records(s, t, base_of, first, rows, (enum gd_block_codec)f,
                                             raw);
                                r = zstd_pack(cctx, raw, shuffled_bytes(l, rows), zstd_level(s, o),
                                              &zbuf, &len);
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
        for (uint32_t b = 0; b < s->n_blocks; b++) {
                uint64_t first = (uint64_t)b * s->rows_per_block;
                uint64_t rows =
                    s->n_rows - first < s->rows_per_block ? s->n_rows - first : s->rows_per_block;
                s->plain_records_bytes += plain_bytes(l, rows);
        }
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
                        uint64_t rows = s->n_rows - first < s->rows_per_block ? s->n_rows - first
                                                                              : s->rows_per_block;
                        uint64_t plen = plain_bytes(l, rows);
                        uint8_t *dst = pbuf.data + pbuf.len;
                        memset(dst, 0, plen);
                        fill_records(s, t, base_of, first, rows, GD_BLOCK_PLAIN, dst);
                        s->blocks[b] = (struct block_entry){pbuf.len, (uint32_t)plen,
                                                            (uint32_t)plen, sum32(dst, plen)};
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
        const struct layout *l = &s->dict_layout;
        const uint32_t count_field = l->n_fields - 1;
        uint64_t plen = plain_bytes(l, s->n_bases), slen = shuffled_bytes(l, s->n_bases);
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
                const struct colmask *m = &s->masks[j];
                const int64_t *v = t->cols[j].v;
                for (uint32_t b = 0; b < s->n_bases; b++) {
                        uint64_t bv = extract(gd_code(v[rep[b]], s->params[j].min), m->base_runs,
                                              m->n_base_runs);
                        put_bits(s->dict, (uint64_t)b * l->row_bits + l->bit_offset[f], bv,
                                 l->width[f]);
                        shuffle_put(shuf, l, s->n_bases, b, f, bv);
                }
        }
        for (uint32_t b = 0; b < s->n_bases; b++) {
                put_bits(s->dict, (uint64_t)b * l->row_bits + l->bit_offset[count_field],
                         s->counts[b], l->width[count_field]);
                shuffle_put(shuf, l, s->n_bases, b, count_field, s->counts[b]);
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
        s->dict_stored_len = DICT_HEADER_BYTES + payload_len;
        s->dict_stored = dm_malloc(s->dict_stored_len);
        if (!s->dict_stored) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        s->dict_stored[0] = (uint8_t)s->dict_codec;
        s->dict_stored[1] = l->width[count_field];
        dm_put_le64(s->dict_stored + 2, s->dict_codec == GD_BLOCK_ZSTD ? slen : plen);
        if (payload_len)
                memcpy(s->dict_stored + DICT_HEADER_BYTES, payload, payload_len);
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
        r = build_masks(s);
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
        layout_release(&s->dict_layout);
        layout_release(&s->rec_layout);
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

/* ---- serialization ------------------------------------------------------ */

/* min as a zigzag LEB128 varint: small magnitudes take one byte. */
static size_t varint_put(uint8_t out[10], int64_t v)
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

static int varint_get(struct dm_rd *rd, int64_t *ret)
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

static uint64_t columns_bytes(const struct gd_segment *s)
{
        uint64_t n = 0;
        uint8_t tmp[10];
        for (uint32_t j = 0; j < s->n_cols; j++)
                n += 4 + varint_put(tmp, s->params[j].min) + strlen(s->names[j]);
        return n;
}

static int put_columns(const struct gd_segment *s, struct dm_buf *b)
{
        int r = 0;
        for (uint32_t j = 0; j < s->n_cols && r == 0; j++) {
                size_t len = strlen(s->names[j]);
                uint8_t v[10];
                size_t vn = varint_put(v, s->params[j].min);
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
        struct dm_buf parts[MAX_PARTS];
        uint32_t n_parts = s->cond ? 6 : 5;
        size_t start = out->len;
        int r;

        for (uint32_t i = 0; i < MAX_PARTS; i++)
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

        uint64_t dir_len = (uint64_t)n_parts * PART_ENTRY_BYTES + 4;
        r = dm_buf_reserve(out, HEADER_BYTES + dir_len);
        if (r < 0)
                goto out;
        uint8_t *h = out->data + out->len;
        memset(h, 0, HEADER_BYTES + dir_len);
        memcpy(h, MAGIC, 8);
        /* l_c, the block count, the part count and S(B) are derived on open. */
        h[8] = FORMAT_VERSION;
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
        dm_put_le32(h + 44, sum32(h, 44));
        /* Part directory: length and checksum of each part, in order; the
         * parts follow the directory back to back. */
        uint8_t *d = h + HEADER_BYTES;
        for (uint32_t i = 0; i < n_parts; i++) {
                uint8_t *e = d + (size_t)i * PART_ENTRY_BYTES;
                dm_put_le64(e, parts[i].len);
                dm_put_le32(e + 8, sum32(parts[i].data, parts[i].len));
        }
        dm_put_le32(d + (size_t)n_parts * PART_ENTRY_BYTES,
                    sum32(d, (size_t)n_parts * PART_ENTRY_BYTES));
        out->len += HEADER_BYTES + dir_len;
        for (uint32_t i = 0; i < n_parts && r == 0; i++)
                r = dm_buf_append(out, parts[i].data, parts[i].len);
        if (r < 0)
                out->len = start;
out:
        for (uint32_t i = 0; i < MAX_PARTS; i++)
                dm_buf_release(&parts[i]);
        return r;
}

/* ---- opening ------------------------------------------------------------ */

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
                r = r ? r : varint_get(&rd, &min);
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
        const struct layout *l = &s->dict_layout;
        uint64_t raw_len, plen = plain_bytes(l, s->n_bases), slen = shuffled_bytes(l, s->n_bases);
        const uint32_t count_field = l->n_fields - 1;
        uint8_t *shuf = NULL;
        int r = DREAM_E_CORRUPT;

        if (part.len < DICT_HEADER_BYTES || part.p[0] > GD_BLOCK_ZSTD)
                return DREAM_E_CORRUPT;
        raw_len = dm_get_le64(part.p + 2);
        s->dict_codec = (enum gd_block_codec)part.p[0];
        s->dict_part = part.p;
        s->dict_stored_len = part.len;
        s->dict = dm_calloc(plen ? plen : 1, 1);
        if (!s->dict)
                return DREAM_E_NOMEM;
        if (s->dict_codec == GD_BLOCK_PLAIN) {
                if (raw_len != plen || part.len - DICT_HEADER_BYTES != plen)
                        return DREAM_E_CORRUPT;
                memcpy(s->dict, part.p + DICT_HEADER_BYTES, plen);
        } else {
                if (raw_len != slen || slen > DREAM_MAX_PART_BYTES)
                        return DREAM_E_CORRUPT;
                shuf = dm_malloc(slen ? slen : 1);
                if (!shuf)
                        return DREAM_E_NOMEM;
                size_t n = ZSTD_decompress(shuf, slen, part.p + DICT_HEADER_BYTES,
                                           part.len - DICT_HEADER_BYTES);
                if (ZSTD_isError(n) || n != slen)
                        goto out;
                for (uint32_t b = 0; b < s->n_bases; b++) {
                        uint64_t off = (uint64_t)b * l->row_bits;
                        for (uint32_t f = 0; f < l->n_fields; f++) {
                                uint64_t v = shuffle_get(shuf, l, s->n_bases, b, f);
                                if (l->width[f] < 64 && (v >> l->width[f]))
                                        goto out;
                                put_bits(s->dict, off + l->bit_offset[f], v, l->width[f]);
                        }
                }
        }
        uint64_t total = 0;
        for (uint32_t b = 0; b < s->n_bases; b++) {
                s->counts[b] =
                    get_bits(s->dict, (uint64_t)b * l->row_bits + l->bit_offset[count_field],
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
        if (index.len != (uint64_t)s->n_blocks * BLOCK_ENTRY_BYTES)
                return DREAM_E_CORRUPT;
        s->blocks = dm_calloc(s->n_blocks ? s->n_blocks : 1, sizeof(*s->blocks));
        if (!s->blocks)
                return DREAM_E_NOMEM;
        dm_rd_init(&rd, index.p, index.len);
        for (uint32_t b = 0; b < s->n_blocks; b++) {
                struct block_entry *e = &s->blocks[b];
                uint64_t first = (uint64_t)b * s->rows_per_block;
                uint64_t rows =
                    s->n_rows - first < s->rows_per_block ? s->n_rows - first : s->rows_per_block;
                uint64_t want = s->codec != GD_BLOCK_PLAIN ? shuffled_bytes(&s->rec_layout, rows)
                                                           : plain_bytes(&s->rec_layout, rows);
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
        c = dm_calloc(1, sizeof(*c));
        if (!c)
                return DREAM_E_NOMEM;
        c->m = m;
        c->d = d;
        c->bits_used = used;
        c->feature_cols = dm_mallocarray(d ? d : 1, sizeof(uint32_t));
        c->x = dm_mallocarray(cells ? cells : 1, sizeof(double));
        c->y = dm_mallocarray(m ? m : 1, sizeof(double));
        c->w = dm_mallocarray(m ? m : 1, sizeof(double));
        if (!c->feature_cols || !c->x || !c->y || !c->w) {
                gd_condensed_free(c);
                return DREAM_E_NOMEM;
        }
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
        struct part_ref parts[MAX_PARTS + 1] = {{0}};
        uint32_t n_parts;
        int r;

        if (len < 8 || memcmp(data, MAGIC, 8) != 0)
                return len < 8 && memcmp(data, MAGIC, len) == 0 ? DREAM_E_TRUNCATED
                                                                : DREAM_E_FORMAT;
        if (len < HEADER_BYTES)
                return DREAM_E_TRUNCATED;
        if (data[8] != FORMAT_VERSION)
                return DREAM_E_FORMAT;
        if (sum32(data, 44) != dm_get_le32(data + 44))
                return DREAM_E_CHECKSUM;
        if (data[9] > 1)
                return DREAM_E_CORRUPT;
        n_parts = data[9] ? 6 : 5;
        uint64_t dir_len = (uint64_t)n_parts * PART_ENTRY_BYTES;
        if (len - HEADER_BYTES < dir_len + 4)
                return DREAM_E_TRUNCATED;
        const uint8_t *d = data + HEADER_BYTES;
        if (sum32(d, dir_len) != dm_get_le32(d + dir_len))
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
            s->rows_per_block > MAX_BLOCK_ROWS || (uint32_t)s->codec > GD_BLOCK_ZSTD_ROWS)
                goto fail;
        s->n_blocks = (uint32_t)((s->n_rows + s->rows_per_block - 1) / s->rows_per_block);
        uint64_t off = HEADER_BYTES + dir_len + 4;
        for (uint32_t i = 0; i < n_parts; i++) {
                const uint8_t *e = d + (size_t)i * PART_ENTRY_BYTES;
                uint32_t type = i + 1;
                uint64_t plen = dm_get_le64(e);
                if (plen > len - off) {
                        r = DREAM_E_TRUNCATED;
                        goto fail;
                }
                parts[type] = (struct part_ref){data + off, plen};
                /* Record blocks carry their own checksums. */
                if (type != PART_BLOCKS && sum32(data + off, plen) != dm_get_le32(e + 8)) {
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
        r = parse_columns(s, parts[PART_COLUMNS]); /* sets l_c */
        if (r == 0 && s->n_base_bits > s->l_c)
                r = DREAM_E_CORRUPT;
        s->s_bits = gd_size_bits(s->n_rows, s->l_c, s->n_base_bits, s->n_bases);
        r = r ? r : parse_mask(s, parts[PART_MASK]);
        r = r ? r : build_masks(s);
        if (r < 0)
                goto fail;
        if (s->rec_layout.width[s->rec_layout.n_fields - 1] != gd_ceil_log2(s->n_bases)) {
                r = DREAM_E_CORRUPT;
                goto fail;
        }
        /* The dictionary part says how wide its count field is. */
        {
                struct layout *l = &s->dict_layout;
                struct part_ref dp = parts[PART_DICT];
                if (dp.len < DICT_HEADER_BYTES || dp.p[1] < 1 || dp.p[1] > 64 ||
                    dp.p[1] > gd_width_of(s->n_rows)) {
                        r = DREAM_E_CORRUPT;
                        goto fail;
                }
                l->width[l->n_fields - 1] = dp.p[1];
                layout_finish(l);
        }
        r = parse_dict(s, parts[PART_DICT]);
        r = r ? r : parse_blocks(s, parts[PART_BLOCK_INDEX], parts[PART_BLOCKS]);
        if (r == 0 && n_parts == 6)
                r = parse_condensed(s, parts[PART_CONDENSED]);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        gd_segment_free(s);
        return r;
}

/* ---- accessors ---------------------------------------------------------- */

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
        st.header_bytes = HEADER_BYTES + (uint64_t)(s->cond ? 6 : 5) * PART_ENTRY_BYTES + 4 +
                          cols_bytes + (s->l_c + 7) / 8;
        st.dict_bytes = s->dict_stored_len ? s->dict_stored_len : 0;
        st.records_bytes = s->blocks_len + (uint64_t)s->n_blocks * BLOCK_ENTRY_BYTES;
        if (s->cond)
                st.condensed_bytes = 12 + (uint64_t)s->cond->d * 4 +
                                     ((uint64_t)s->cond->m * s->cond->d + 2ull * s->cond->m) * 8;
        st.total_bytes = st.header_bytes + st.dict_bytes + st.records_bytes + st.condensed_bytes;
        st.plain_records_bytes = 0;
        for (uint32_t b = 0; b < s->n_blocks; b++) {
                uint64_t first = (uint64_t)b * s->rows_per_block;
                uint64_t rows =
                    s->n_rows - first < s->rows_per_block ? s->n_rows - first : s->rows_per_block;
                st.plain_records_bytes += plain_bytes(&s->rec_layout, rows);
        }
        st.source_bytes = s->source_bytes;
        st.select_seconds = s->select_seconds;
        *ret = st;
}

/* ---- decoding ----------------------------------------------------------- */

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
                c->buf = dm_malloc(shuffled_bytes(&s->rec_layout, s->rows_per_block) + 1);
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
        const struct block_entry *e = &s->blocks[b];
        const uint8_t *stored = s->blocks_data + e->offset;
        uint64_t first = (uint64_t)b * s->rows_per_block;

        if (c->block == (int64_t)b)
                return 0;
        c->block = -1;
        if (sum32(stored, e->stored) != e->checksum)
                return DREAM_E_CHECKSUM;
        if (s->codec != GD_BLOCK_PLAIN) {
                size_t n = ZSTD_decompressDCtx(c->dctx, c->buf, e->raw, stored, e->stored);
                if (ZSTD_isError(n) || n != e->raw)
                        return DREAM_E_CORRUPT;
                c->raw = c->buf;
        } else {
                c->raw = stored;
        }
        c->rows = s->n_rows - first < s->rows_per_block ? s->n_rows - first : s->rows_per_block;
        c->block = b;
        return 0;
}

static inline uint64_t rec_field(const struct gd_cursor *c, uint64_t r, uint32_t f)
{
        const struct layout *l = &c->s->rec_layout;
        if (c->s->codec == GD_BLOCK_ZSTD)
                return shuffle_get(c->raw, l, c->rows, r, f);
        if (c->s->codec == GD_BLOCK_ZSTD_ROWS)
                return rows_get(c->raw, l, r, f);
        return get_bits(c->raw, r * l->row_bits + l->bit_offset[f], l->width[f]);
}

/* Decode row r of the cached block into out[col * stride]. */
static int decode_cached(const struct gd_cursor *c, uint64_t r, int64_t *out, uint64_t stride)
{
        const struct gd_segment *s = c->s;
        const struct layout *dl = &s->dict_layout;
        const struct layout *rl = &s->rec_layout;
        uint64_t base = rec_field(c, r, rl->n_fields - 1);
        if (base >= s->n_bases)
                return DREAM_E_CORRUPT;
        uint64_t dict_off = base * dl->row_bits;
        for (uint32_t j = 0; j < s->n_cols; j++) {
                const struct colmask *m = &s->masks[j];
                uint64_t code = 0;
                uint32_t f = s->rec_field_of_col[j];
                if (f != UINT32_MAX)
                        code = deposit(rec_field(c, r, f), m->dev_runs, m->n_dev_runs);
                f = s->dict_field_of_col[j];
                if (f != UINT32_MAX)
                        code |=
                            deposit(get_bits(s->dict, dict_off + dl->bit_offset[f], dl->width[f]),
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
                const struct block_entry *e = &s->blocks[b];
                if (sum32(s->blocks_data + e->offset, e->stored) != e->checksum)
                        return DREAM_E_CHECKSUM;
        }
        return 0;
}
