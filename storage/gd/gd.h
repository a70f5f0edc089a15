/* EntroGeDe codec: lossless generalized deduplication of tables, condensed
 * samples for learning, random access to any row.
 *
 * Pure computation: no file, socket or database access, no logging, no global
 * state. Every function returns 0 or a negative error (common/err.h); outputs
 * are ret_* parameters written only on success. Method: docs/method.md.
 * On-disk layout of an encoded segment: storage/gd/FORMAT.md.
 */
#ifndef DREAM_GD_H
#define DREAM_GD_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* ---- tables ------------------------------------------------------------ */

/* How a column's values are held in gd_col.v:
 * GD_INT  v = the integer;
 * GD_DEC  v = the number times 10^scale (scale 1..9);
 * GD_F64  v = the IEEE-754 double's bits mapped to an order-preserving signed
 *         integer (gd_f64_to_key / gd_key_to_f64): used where no decimal scale
 *         represents every value exactly, and for NaN/Inf. */
enum gd_kind { GD_INT = 0, GD_DEC = 1, GD_F64 = 2 };

enum gd_task { GD_TASK_NONE = 0, GD_TASK_REGRESSION = 1, GD_TASK_CLASSIFICATION = 2 };

struct gd_col {
        char *name; /* owned, NUL-terminated */
        enum gd_kind kind;
        uint8_t scale; /* GD_DEC: 1..9; otherwise 0 */
        int64_t *v;    /* owned, n_rows values */
};

/* A table in memory, column-major. The table owns its columns. */
struct gd_table {
        uint64_t n_rows;
        uint32_t n_cols;
        struct gd_col *cols;
        int32_t target;    /* column index of the target, or -1 */
        enum gd_task task; /* GD_TASK_NONE when target < 0 */
};

/* Allocate a table with n_cols columns of n_rows values each (zeroed), named
 * "c0", "c1"... until renamed with gd_table_set_name(). */
int gd_table_new(uint64_t n_rows, uint32_t n_cols, struct gd_table **ret);
void gd_table_free(struct gd_table *t);
int gd_table_set_name(struct gd_table *t, uint32_t col, const char *name);
/* Index of the column called `name`, or -1. */
int32_t gd_table_find(const struct gd_table *t, const char *name);
/* The value of a cell as a double (NaN/Inf preserved). */
double gd_table_get(const struct gd_table *t, uint64_t row, uint32_t col);
/* Default task for the target column: classification when it holds only
 * integers with at most 256 distinct values, else regression. */
enum gd_task gd_table_guess_task(const struct gd_table *t, uint32_t col);

/* 10^0 .. 10^18, exact. */
extern const int64_t gd_pow10[19];

/* Order-preserving mapping between doubles and int64 keys (bit-exact). */
int64_t gd_f64_to_key(double x);
double gd_key_to_f64(int64_t k);
/* Value of a stored cell as a double. */
double gd_value_f64(enum gd_kind kind, uint8_t scale, int64_t v);

/* Print one stored cell so that it reads back as the same number: integers
 * without a point, decimals with at most `scale` decimals (trailing zeros
 * dropped), doubles in the shortest form that round-trips ("nan", "inf",
 * "-inf" for the specials). Writes at most GD_FMT_MAX bytes, no NUL; returns
 * the length. */
#define GD_FMT_MAX 40
size_t gd_format_value(enum gd_kind kind, uint8_t scale, int64_t v, char *out);

/* ---- preprocessing (docs/method.md section 2) ------------------------ */

/* Per-column parameters of one segment. code = (uint64)(v - min) < 2^width. */
struct gd_colparam {
        enum gd_kind kind;
        uint8_t scale;
        uint8_t width; /* 1..64 bits */
        int64_t min;
};

/* Compute min and width of every column. ret_params has t->n_cols entries. */
int gd_prep_compute(const struct gd_table *t, struct gd_colparam *ret_params);

/* ---- bit statistics and grouping (method.md section 3) --------------- */

/* Bit-planes: for each chunk bit position p (columns in order, each most
 * significant bit first), an n-bit bitset of the rows whose bit p is 1. */
struct gd_planes {
        uint64_t n_rows;
        uint32_t n_bits; /* l_c */
        uint64_t words;  /* 64-bit words per plane */
        uint64_t *bits;  /* owned: n_bits * words */
        uint32_t n_cols;
        uint32_t *col_start; /* owned: first chunk bit of each column, n_cols + 1 entries */
};

int gd_planes_build(const struct gd_table *t, const struct gd_colparam *params,
                    struct gd_planes **ret);
void gd_planes_free(struct gd_planes *p);
static inline int gd_planes_bit(const struct gd_planes *p, uint32_t pos, uint64_t row)
{
        return (int)((p->bits[(uint64_t)pos * p->words + (row >> 6)] >> (row & 63)) & 1u);
}

/* H(i) of every bit position (method.md section 3); ret_h has n_bits entries.
 * `rows` (n_rows indices, may be NULL for all rows) restricts the count. */
int gd_entropy(const struct gd_planes *p, const uint64_t *rows, uint64_t n_rows, double *ret_h);

/* BaseTree grouping over a set of rows. gid[i] is the group of the i-th row of
 * the set, labels dense in [0, n_groups). */
struct gd_groups {
        uint64_t n;           /* rows in the set */
        const uint64_t *rows; /* borrowed row numbers of the set, or NULL = 0..n-1 */
        uint32_t *gid;        /* owned, n entries */
        uint32_t n_groups;
        uint32_t *next; /* owned scratch, n entries */
        int32_t *map;   /* owned scratch, grows to 2 * n_groups */
        uint64_t map_cap;
};

/* All rows start in one group. `rows` must stay valid while g is used. */
int gd_groups_init(struct gd_groups *g, const uint64_t *rows, uint64_t n);
void gd_groups_release(struct gd_groups *g);
/* Split every group by bit `pos` into g->next and return the new group count
 * in *ret_count without committing; gd_groups_commit() accepts it. */
int gd_groups_try(struct gd_groups *g, const struct gd_planes *p, uint32_t pos,
                  uint32_t *ret_count);
void gd_groups_commit(struct gd_groups *g, uint32_t count);

/* ---- stage 2: base-bit selection (method.md section 5) --------------- */

struct gd_selection {
        uint32_t n_bits;       /* l_c */
        uint8_t *is_base;      /* owned, n_bits entries, 1 = base bit */
        uint32_t n_base_bits;  /* |B| */
        uint32_t n_bases;      /* n_b */
        uint32_t *base_of;     /* owned, n_rows entries: base id of each row */
        uint64_t s_bits;       /* S(B) without header */
        uint32_t bits_scanned; /* non-constant bits tried */
};

/* Choose B minimising S(B). patience == 0 scans every bit; otherwise stop after
 * that many consecutive bits without improvement. */
int gd_select(const struct gd_planes *p, uint32_t patience, struct gd_selection *ret);
void gd_selection_release(struct gd_selection *s);
/* S(B) in bits for given counts (method.md section 5, header excluded). */
uint64_t gd_size_bits(uint64_t n_rows, uint32_t l_c, uint32_t n_base_bits, uint32_t n_bases);

/* ---- stage 1: condensed samples (method.md section 4) ---------------- */

enum gd_order { GD_ORDER_MSB = 0, GD_ORDER_ENTROPY = 1 };

/* A budget: a fraction of rows (0 < fraction <= 1) or a count (>= 1). */
struct gd_budget {
        double fraction; /* used when count == 0 */
        uint64_t count;
};
/* "0.01", "1%", "1.0" -> fraction; "92" -> count. 0 or DREAM_E_BUDGET. */
int gd_budget_parse(const char *s, struct gd_budget *ret);
/* The budget in rows for a table of n rows (at least 1, at most n). */
uint64_t gd_budget_rows(const struct gd_budget *b, uint64_t n);

/* Condensed samples: m rows of d features (the table's columns but the
 * target, in order), each the mean of a group of rows, weighted by group
 * size. y is the mean target (regression), the class value (classification),
 * or 0 without target. */
struct gd_condensed {
        uint32_t m;
        uint32_t d;
        uint32_t *feature_cols; /* owned, d entries: source column of each feature */
        double *x;              /* owned, m * d, row-major */
        double *y;              /* owned, m */
        double *w;              /* owned, m, sums to the table's n_rows */
        uint32_t bits_used;     /* bits added (summed over classes) */
        double *v;              /* owned, m * d: per-feature population variance of each
                                   group's rows, raw units (0 for one-row groups; 0 where
                                   not known); allocated zeroed by gd_condensed_new */
};

/* What stage 1 does with the budget left when the next bit of the order would
 * split the groups past m_max (method.md section 4: step a stops there, which
 * leaves up to half of the budget unused). */
enum gd_fill {
        GD_FILL_DEFAULT = 0, /* GD_FILL_SPLIT */
        GD_FILL_NONE = 1,    /* stop at that bit (no fill step) */
        GD_FILL_SPLIT = 2,   /* then split the largest groups one at a time, each by its
                                next bit of the order that is not constant in it, until
                                m_max groups (or every group is one distinct row) */
};

/* Lloyd (k-means) steps refining the groups within each class, from the GD
 * groups as starting centres: each row moves to the nearest of its group's
 * GD_REFINE_NEIGHBOURS nearest centres (distances in the table's
 * standardised feature units; constant and non-finite columns ignored), then
 * centres become the means of their rows. Groups left empty are dropped, so
 * the count may end below m_max. A class with more than about
 * sqrt(4e9 / d) groups is left unrefined (the neighbour search is
 * quadratic in its groups). Deterministic. */
#define GD_REFINE_DEFAULT    0 /* the measured default: 6 steps */
#define GD_REFINE_NONE       (-1)
#define GD_REFINE_NEIGHBOURS 16

/* Zero-initialised fields mean the measured best default: `{budget, order}`
 * gets every improvement. */
struct gd_condense_opts {
        struct gd_budget budget;
        enum gd_order order;
        enum gd_fill fill;       /* GD_FILL_DEFAULT */
        int32_t refine;          /* Lloyd steps: GD_REFINE_DEFAULT, GD_REFINE_NONE or 1..100 */
        const uint64_t *exclude; /* sorted, distinct row numbers of the table left out of
                                    every group (a holdout); NULL = none */
        uint64_t n_exclude;
        uint32_t threads;    /* threads working on it: 0 = up to 4 (never more than the
                                online CPUs), 1 = the calling thread only; the samples are
                                the same for any value */
        uint32_t *row_group; /* optional, t->n_rows entries: filled with the sample each
                                row went to (its index in the result), UINT32_MAX for
                                excluded rows. gd_condense only: store_condensed refuses
                                it (DREAM_E_INVAL), a cached set has no rows */
};

int gd_condense(const struct gd_table *t, const struct gd_condense_opts *opts,
                struct gd_condensed **ret);
void gd_condensed_free(struct gd_condensed *c);
/* Condensed samples of m rows and d features with every array allocated
 * (contents unset; bits_used 0), for readers that fill them from bytes. */
int gd_condensed_new(uint32_t m, uint32_t d, struct gd_condensed **ret);

/* ---- encoding, random access, container (method.md section 6, FORMAT.md) ---- */

/* How record blocks are stored: bit-packed, or fields widened to bytes and
 * zstd-compressed, laid out column by column (byte-planes) or row by row. */
enum gd_block_codec { GD_BLOCK_PLAIN = 0, GD_BLOCK_ZSTD = 1, GD_BLOCK_ZSTD_ROWS = 2 };
/* "plain", "zstd", "zstd-rows". */
const char *gd_block_codec_name(enum gd_block_codec c);

struct gd_encode_opts {
        uint32_t patience;     /* stage 2 patience, 0 = scan all bits */
        int zstd_level;        /* a zstd level, or GD_ZSTD_ARCHIVE */
        int force_codec;       /* -1 = choose the smaller, else a gd_block_codec */
        uint32_t block_bytes;  /* target raw bytes of a record block, 0 = default */
        uint64_t source_bytes; /* size of the input it came from (for ratios), or 0 */
        uint32_t threads;      /* threads compressing the record blocks; 0 or 1 = the
                                * calling thread only. The output bytes are the same for
                                * any value. */
};
/* Default zstd level: fast, for encoding on the ingest path. */
#define GD_ZSTD_FAST 3
/* For one-shot archives: level 19 for segments of at most 1 MiB of records
 * (the cost is negligible there, the bytes saved count on small tables),
 * GD_ZSTD_FAST above. */
#define GD_ZSTD_ARCHIVE 0
void gd_encode_opts_default(struct gd_encode_opts *o);

/* Sizes of one encoded segment, in bytes unless said otherwise. */
struct gd_stats {
        uint64_t n_rows;
        uint32_t n_cols;
        uint32_t l_c;
        uint32_t n_base_bits;
        uint32_t n_bases;
        uint32_t record_bits; /* l_c - |B| + ceil(log2 n_b) */
        uint32_t rows_per_block;
        uint32_t n_blocks;
        enum gd_block_codec codec;
        uint64_t s_bits;        /* S(B) */
        uint64_t header_bytes;  /* file header + column metadata + mask */
        uint64_t dict_bytes;    /* dictionary and counts as stored */
        uint64_t records_bytes; /* record blocks as stored, with their index */
        uint64_t condensed_bytes;
        uint64_t total_bytes;         /* whole serialized segment */
        uint64_t plain_records_bytes; /* records bit-packed, before entropy coding */
        uint64_t source_bytes;        /* as given at encode time, or 0 */
        double select_seconds;        /* stage 2 time at encode (0 when opened) */
};

/* An encoded segment. Built by gd_segment_encode (owns its bytes) or opened
 * over serialized bytes with gd_segment_open (borrows them: they must stay
 * valid and unchanged until gd_segment_free). Immutable once built: any
 * number of threads may read it, each with its own gd_cursor. */
struct gd_segment;

int gd_segment_encode(const struct gd_table *t, const struct gd_encode_opts *opts,
                      struct gd_segment **ret);
/* Attach condensed samples to be written with the segment (ownership moves). */
void gd_segment_set_condensed(struct gd_segment *s, struct gd_condensed *c);
/* Append the serialized segment (the container, FORMAT.md) to out. */
int gd_segment_serialize(const struct gd_segment *s, struct dm_buf *out);
/* Parse and verify every checksum but the record blocks' (verified when a
 * block is first read, or all at once by gd_segment_verify). DREAM_E_FORMAT,
 * DREAM_E_TRUNCATED, DREAM_E_CHECKSUM or DREAM_E_CORRUPT on bad input. */
int gd_segment_open(const uint8_t *data, size_t len, struct gd_segment **ret);
int gd_segment_verify(const struct gd_segment *s);
void gd_segment_free(struct gd_segment *s);

uint64_t gd_segment_rows(const struct gd_segment *s);
uint32_t gd_segment_cols(const struct gd_segment *s);
const struct gd_colparam *gd_segment_params(const struct gd_segment *s);
const char *gd_segment_col_name(const struct gd_segment *s, uint32_t col);
int32_t gd_segment_target(const struct gd_segment *s);
enum gd_task gd_segment_task(const struct gd_segment *s);
void gd_segment_stats(const struct gd_segment *s, struct gd_stats *ret);
/* Condensed samples stored with the segment, or NULL. Borrowed. */
const struct gd_condensed *gd_segment_condensed(const struct gd_segment *s);

/* A reading position with its own block cache; one per thread. */
struct gd_cursor;
int gd_cursor_new(const struct gd_segment *s, struct gd_cursor **ret);
void gd_cursor_free(struct gd_cursor *c);
/* Decode row `row` into ret_v (gd_segment_cols() values, table form). */
int gd_cursor_row(struct gd_cursor *c, uint64_t row, int64_t *ret_v);
/* Decode rows [first, first + count) into t (which must have the segment's
 * columns and at least `count` rows), row i of the range into row i. */
int gd_cursor_range(struct gd_cursor *c, uint64_t first, uint64_t count, struct gd_table *t);
/* Decode rows [first, first + count) column by column (a block at a time):
 * row i of the range, column j into cols[j][i] (table form, the segment's
 * kind and scale: gd_segment_params); a NULL cols[j] skips column j. The
 * fast way to read many rows. */
int gd_cursor_columns(struct gd_cursor *c, uint64_t first, uint64_t count, int64_t *const *cols);
/* Decode rows [first, first + count) as training rows: row i of the range,
 * every column but `skip` (-1: none) in order into x[i * d ...] (d = the
 * segment's columns, less one when skip >= 0), each cell as
 * (float)gd_value_f64(kind, scale, v); column `skip` into y[i] as
 * gd_value_f64 when y is not NULL. DREAM_E_INVAL for a skip past the columns,
 * or y without skip. */
int gd_cursor_features(struct gd_cursor *c, uint64_t first, uint64_t count, int32_t skip, float *x,
                       double *y);
/* Decode the whole segment into a new table (names, target and task set). */
int gd_segment_decode(const struct gd_segment *s, struct gd_table **ret);

#endif
