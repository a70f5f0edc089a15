/* Input readers: CSV and IDX (MNIST) bytes in memory -> a gd_table.
 *
 * Pure parsing: no file access, no logging, no global state. The caller loads
 * the bytes (and inflates .gz) and formats the messages. Every function
 * returns 0 or a negative error (common/err.h); on failure *err says where and
 * why, and *ret is not written. On success *ret is a new table owned by the
 * caller (gd_table_free). The input bytes are borrowed for the call only.
 *
 * Numbers are stored losslessly (docs/method.md section 2): a CSV
 * column is GD_INT when no cell has a fraction, GD_DEC with the scale of its
 * most precise cell (trailing zeros of a fraction do not count: "1.50" is
 * 1.5) when that is at most 9 decimals and every value fits int64 at that
 * scale, else GD_F64 (exponents, NaN/Inf, more than 9 decimals, overflow).
 * A GD_F64 cell whose double does not print back (gd_format_value) as the
 * same decimal number as its text is rejected with DREAM_E_INEXACT.
 */
#ifndef DREAM_READ_H
#define DREAM_READ_H

#include <stddef.h>
#include <stdint.h>

#include "storage/gd/gd.h"

enum read_task { READ_TASK_AUTO = 0, READ_TASK_REGRESSION = 1, READ_TASK_CLASSIFICATION = 2 };

/* Where the error is: the main input (CSV or IDX images) or the IDX labels. */
enum read_source { READ_SRC_DATA = 0, READ_SRC_LABELS = 1 };

/* A reader's error. line and column are 1-based; 0 means "not about a line"
 * (IDX, whole-file errors) or "not about one cell". For IDX, line is 0 and
 * column is 0; the message names the header field or the byte offset. */
struct read_error {
        int code; /* the returned error */
        enum read_source source;
        uint64_t line;
        uint32_t column;
        char msg[256]; /* lowercase, no location prefix, NUL-terminated */
};

/* Progress callback: `done` of `total` input bytes processed. Called from the
 * parsing thread, at most every few hundred kilobytes. */
typedef void (*read_progress_fn)(void *ctx, uint64_t done, uint64_t total);

struct read_opts {
        /* Target column name (borrowed for the call). NULL: a column named
         * "label" if there is one, else no target. A name that is not in the
         * header is an error. Ignored by IDX (the labels file is the target). */
        const char *label;
        /* AUTO: gd_table_guess_task for CSV, classification for IDX labels. */
        enum read_task task;
        read_progress_fn progress; /* may be NULL */
        void *progress_ctx;
};

void read_opts_default(struct read_opts *o);

/* "regression", "classification" or "auto". 0 or DREAM_E_INVAL. */
int read_task_parse(const char *s, enum read_task *ret);

/* Parse CSV: a header row of column names, then rows of numeric cells, comma
 * separated; cells may be double-quoted ("" escapes a quote in a name) and
 * padded with blanks; CRLF line ends and a missing final newline are
 * accepted; blank lines are skipped; a UTF-8 byte-order mark is skipped. A
 * cell is [+-]digits[.digits][e[+-]digits] (digits on at least one side of
 * the point) or nan, inf, infinity in any case; no hex, no thousands
 * separators; quoted cells and names cannot span lines. A first line whose
 * every cell is a number is a missing header, except "0,1,2,..." (the
 * names numpy and pandas give unnamed columns). Limits: DREAM_MAX_COLS
 * columns, DREAM_MAX_NAME bytes per name, DREAM_MAX_CELL bytes per cell.
 * Doubles are read with strtod: the C locale's decimal point is assumed. */
int read_csv(const uint8_t *data, size_t len, const struct read_opts *opts, struct read_error *err,
             struct gd_table **ret);

/* Parse an IDX images array (N x d1 x d2 ...; one column per element of a
 * sample, named "px0", "px1"...) and, when labels is not NULL, a 1-D IDX
 * labels array of N entries appended as the target column "label". Integer
 * types give GD_INT columns; float/double columns are GD_DEC at the smallest
 * scale 0..9 where every value decodes back bit-exactly (as a double), else
 * GD_F64. */
int read_idx(const uint8_t *images, size_t images_len, const uint8_t *labels, size_t labels_len,
             const struct read_opts *opts, struct read_error *err, struct gd_table **ret);

#endif
