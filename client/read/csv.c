/* CSV reader: header + numeric cells -> gd_table, exact decimals.
 *
 * Pass 1 parses every cell as sign, digits, optional point and fraction into
 * an exact mantissa and a count of decimals (trailing zeros of the fraction
 * dropped), keeps each column at the largest scale seen so far (rescaling the
 * column's earlier cells when a more precise one arrives, at most 9 times),
 * and marks a column as GD_F64 when a cell needs a double. Pass 2 runs only
 * when some column is GD_F64: it converts that column's cells with strtod and
 * checks that each prints back as the same decimal number. No per-cell
 * allocation and no per-cell state beyond the int64 value.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/read/read.h"
#include "client/read/read_internal.h"
#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/par.h"

/* One parsed cell. */
struct cell {
        const uint8_t *ns, *ne; /* the number's text, without quotes or blanks */
        int64_t v;              /* exact value times 10^dec (when !f64) */
        uint8_t dec;            /* decimals, 0..9 */
        uint8_t f64;            /* needs the double path */
        uint8_t special;        /* nan or inf: no exactness check */
};

struct col_state {
        uint8_t scale;
        uint8_t f64;
};

struct csv {
        const uint8_t *data;
        const uint8_t *p;
        const uint8_t *end;
        uint64_t line;
        uint32_t n_cols;
        struct read_error *err;
};

struct span {
        const uint8_t *p;
        size_t n;
};

void read_opts_default(struct read_opts *o)
{
        memset(o, 0, sizeof(*o));
        o->task = READ_TASK_AUTO;
}

int read_task_parse(const char *s, enum read_task *ret)
{
        if (strcmp(s, "auto") == 0)
                *ret = READ_TASK_AUTO;
        else if (strcmp(s, "regression") == 0)
                *ret = READ_TASK_REGRESSION;
        else if (strcmp(s, "classification") == 0)
                *ret = READ_TASK_CLASSIFICATION;
        else
                return DREAM_E_INVAL;
        return 0;
}

int read_fail(struct read_error *e, int code, enum read_source src, uint64_t line, uint32_t col,
              const char *fmt, ...)
{
        va_list ap;
        if (!e)
                return code;
        e->code = code;
        e->source = src;
        e->line = line;
        e->column = col;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        return code;
}

/* Quote bytes for a message: printable ASCII as is, others as \xNN, at most
 * 48 input bytes then "...". out must hold 4 * 48 + 4 bytes. */
static void quote_bytes(const uint8_t *p, size_t n, char *out)
{
        static const char hex[] = "0123456789abcdef";
        size_t k = 0, i;
        for (i = 0; i < n && i < 48; i++) {
                uint8_t ch = p[i];
                if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
                        out[k++] = (char)ch;
                } else {
                        out[k++] = '\\';
                        out[k++] = 'x';
                        out[k++] = hex[ch >> 4];
                        out[k++] = hex[ch & 15];
                }
        }
        if (i < n) {
                memcpy(out + k, "...", 3);
                k += 3;
        }
        out[k] = '\0';
}

static inline int is_blank(uint8_t ch)
{
        return ch == ' ' || ch == '\t';
}

/* A line end at p: "\n", "\r\n", or "\r" as the last byte. */
static inline int at_eol(const uint8_t *p, const uint8_t *end)
{
        return *p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n'));
}

static inline const uint8_t *skip_eol(const uint8_t *p, const uint8_t *end)
{
        if (*p == '\r')
                p++;
        if (p < end && *p == '\n')
                p++;
        return p;
}

static int match_word(const uint8_t *p, const uint8_t *end, const char *w)
{
        size_t n = strlen(w);
        if ((size_t)(end - p) < n)
                return 0;
        for (size_t i = 0; i < n; i++) {
                if ((p[i] | 0x20) != (uint8_t)w[i])
                        return 0;
        }
        return 1;
}

/* Parse a number at p: [+-] (digits [. digits] | . digits) [e [+-] digits],
 * or [+-] nan|inf|infinity in any case. Returns the end of the number, or
 * NULL when p does not start one. The careful version: any digit count. */
static const uint8_t *parse_num_slow(const uint8_t *p, const uint8_t *end, struct cell *c)
{
        uint64_t m = 0;
        unsigned nd = 0, dec = 0, zr = 0, ndig = 0, d;
        int neg = 0, ovf = 0;

        c->f64 = 0;
        c->special = 0;
        if (p < end && (*p == '-' || *p == '+')) {
                neg = *p == '-';
                p++;
        }
        if (p < end && ((*p | 0x20) == 'n' || (*p | 0x20) == 'i')) {
                if (match_word(p, end, "nan"))
                        p += 3;
                else if (match_word(p, end, "infinity"))
                        p += 8;
                else if (match_word(p, end, "inf"))
                        p += 3;
                else
                        return NULL;
                c->f64 = 1;
                c->special = 1;
                return p;
        }
        while (p < end && (d = (unsigned)(*p - '0')) <= 9) {
                if (m == 0) {
                        m = d;
                        nd = d != 0;
                } else if (nd < 19) {
                        m = m * 10 + d;
                        nd++;
                } else {
                        ovf = 1;
                }
                p++;
                ndig++;
        }
        if (p < end && *p == '.') {
                p++;
                while (p < end && (d = (unsigned)(*p - '0')) <= 9) {
                        p++;
                        ndig++;
                        if (d == 0) {
                                zr++;
                                continue;
                        }
                        unsigned need = zr + 1;
                        zr = 0;
                        dec += need;
                        if (dec > DREAM_MAX_SCALE || ovf)
                                continue;
                        if (m == 0) {
                                m = d;
                                nd = 1;
                        } else if (nd + need <= 19) {
                                m = m * (uint64_t)gd_pow10[need] + d;
                                nd += need;
                        } else {
                                ovf = 1;
                        }
                }
        }
        if (ndig == 0)
                return NULL;
        if (p < end && (*p == 'e' || *p == 'E')) {
                const uint8_t *q = p + 1;
                if (q < end && (*q == '-' || *q == '+'))
                        q++;
                if (q >= end || (unsigned)(*q - '0') > 9)
                        return NULL;
                while (q < end && (unsigned)(*q - '0') <= 9)
                        q++;
                p = q;
                c->f64 = 1;
        }
        if (dec > DREAM_MAX_SCALE || ovf || m > (uint64_t)INT64_MAX + (uint64_t)neg)
                c->f64 = 1;
        if (!c->f64) {
                c->v = neg ? (m ? -(int64_t)(m - 1) - 1 : 0) : (int64_t)m;
                c->dec = (uint8_t)dec;
        }
        return p;
}

/* parse_num_slow's fast path: at most 18 digits, no exponent, no letters. */
static inline const uint8_t *parse_num(const uint8_t *p, const uint8_t *end, struct cell *c)
{
        const uint8_t *s0 = p, *ds, *fs;
        uint64_t m = 0;
        size_t ni, nf = 0;
        unsigned d;
        int neg = 0;

        if (p < end && (*p == '-' || *p == '+')) {
                neg = *p == '-';
                p++;
        }
        ds = p;
        while (p < end && (d = (unsigned)(*p - '0')) <= 9) {
                m = m * 10 + d; /* wraps harmlessly past 18 digits: slow path */
                p++;
        }
        ni = (size_t)(p - ds);
        if (p < end && *p == '.') {
                fs = ++p;
                while (p < end && (d = (unsigned)(*p - '0')) <= 9) {
                        m = m * 10 + d;
                        p++;
                }
                nf = (size_t)(p - fs);
        }
        if (ni + nf == 0 || ni + nf > 18 || (p < end && (*p | 0x20) == 'e'))
                return parse_num_slow(s0, end, c);
        while (nf > 0 && m % 10 == 0) {
                m /= 10;
                nf--;
        }
        c->special = 0;
        if (nf > DREAM_MAX_SCALE) {
                c->f64 = 1;
                return p;
        }
        c->f64 = 0;
        c->v = neg ? -(int64_t)m : (int64_t)m;
        c->dec = (uint8_t)nf;
        return p;
}

/* Extent of the cell starting at p: to the next comma or line end outside
 * quotes. *ret_unterminated is set when a quote is not closed on the line. */
static const uint8_t *cell_extent(const uint8_t *p, const uint8_t *end, int *ret_unterminated)
{
        const uint8_t *q = p;
        *ret_unterminated = 0;
        while (q < end && is_blank(*q))
                q++;
        if (q < end && *q == '"') {
                q++;
                for (;;) {
                        if (q >= end || *q == '\n') {
                                *ret_unterminated = 1;
                                return q;
                        }
                        if (*q == '"') {
                                if (q + 1 < end && q[1] == '"') {
                                        q += 2;
                                        continue;
                                }
                                q++;
                                break;
                        }
                        q++;
                }
        }
        while (q < end && *q != ',' && !at_eol(q, end))
                q++;
        return q;
}

/* Report why the cell at `start` is not a number. */
static int bad_cell(struct csv *c, uint32_t col, const uint8_t *start)
{
        int unterminated;
        const uint8_t *e = cell_extent(start, c->end, &unterminated);
        const uint8_t *a = start, *b = e;
        char q[4 * 48 + 4];

        if ((size_t)(e - start) > DREAM_MAX_CELL)
                return read_fail(c->err, DREAM_E_LIMIT, READ_SRC_DATA, c->line, col + 1,
                                 "cell too long (%zu bytes, limit %u)", (size_t)(e - start),
                                 DREAM_MAX_CELL);
        if (unterminated)
                return read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, col + 1,
                                 "unterminated quote");
        while (a < b && is_blank(*a))
                a++;
        while (b > a && is_blank(b[-1]))
                b--;
        if (b - a >= 2 && *a == '"' && b[-1] == '"') {
                a++;
                b--;
                while (a < b && is_blank(*a))
                        a++;
                while (b > a && is_blank(b[-1]))
                        b--;
        }
        if (a == b)
                return read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, col + 1,
                                 "empty cell");
        quote_bytes(a, (size_t)(b - a), q);
        return read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, col + 1,
                         "non-numeric cell '%s'", q);
}

/* Parse the cell at c->p; on success c->p is at its delimiter (a comma, a
 * line end, or the end of input). */
static int scan_cell_slow(struct csv *c, uint32_t col, struct cell *ret);

static inline int scan_cell(struct csv *c, uint32_t col, struct cell *ret)
{
        const uint8_t *p = c->p, *end = c->end, *q;

        /* Fastest path: a bare integer of at most 18 digits followed by a
         * comma or a newline (parse_num gives the same cell). */
        if (p < end && (unsigned)(*p - '0') <= 9) {
                uint64_t m = (unsigned)(*p - '0');
                unsigned d;
                q = p + 1;
                while (q < end && (d = (unsigned)(*q - '0')) <= 9 && q - p < 18) {
                        m = m * 10 + d;
                        q++;
                }
                if (q == end || *q == ',' || *q == '\n') {
                        ret->v = (int64_t)m;
                        ret->dec = 0;
                        ret->f64 = 0;
                        ret->special = 0;
                        ret->ns = p;
                        ret->ne = q;
                        c->p = q;
                        return 0;
                }
        }
        /* Fast path: a bare number followed by a comma or a newline. */
        if (p < end && ((unsigned)(*p - '0') <= 9 || *p == '-')) {
                q = parse_num(p, end, ret);
                if (q && (q == end || *q == ',' || *q == '\n') &&
                    (size_t)(q - p) <= DREAM_MAX_CELL) {
                        ret->ns = p;
                        ret->ne = q;
                        c->p = q;
                        return 0;
                }
        }
        return scan_cell_slow(c, col, ret);
}

static int scan_cell_slow(struct csv *c, uint32_t col, struct cell *ret)
{
        const uint8_t *p = c->p, *end = c->end, *start = p;
        int quoted = 0;

        while (p < end && is_blank(*p))
                p++;
        if (p < end && *p == '"') {
                quoted = 1;
                p++;
                while (p < end && is_blank(*p))
                        p++;
        }
        ret->ns = p;
        p = parse_num(p, end, ret);
        if (!p)
                return bad_cell(c, col, start);
        ret->ne = p;
        if (quoted) {
                while (p < end && is_blank(*p))
                        p++;
                if (p >= end || *p != '"')
                        return bad_cell(c, col, start);
                p++;
        }
        while (p < end && is_blank(*p))
                p++;
        if (p < end && *p != ',' && !at_eol(p, end))
                return bad_cell(c, col, start);
        if ((size_t)(p - start) > DREAM_MAX_CELL)
                return bad_cell(c, col, start);
        c->p = p;
        return 0;
}

/* Count the cells of the rest of the line from p (at a comma), plus `so_far`. */
static uint64_t count_cells(const uint8_t *p, const uint8_t *end, uint64_t so_far)
{
        int inq = 0;
        for (; p < end && *p != '\n'; p++) {
                if (*p == '"')
                        inq = !inq;
                else if (*p == ',' && !inq)
                        so_far++;
        }
        return so_far;
}

/* Skip blank lines ("" or "\r"); returns the new position, counting lines. */
static const uint8_t *skip_blank_lines(const uint8_t *p, const uint8_t *end, uint64_t *line)
{
        while (p < end && at_eol(p, end)) {
                p = skip_eol(p, end);
                (*line)++;
        }
        return p;
}

/* Parse one header name at c->p into out (NUL-terminated, unescaped). */
static int scan_name(struct csv *c, uint32_t col, char *out, int *ret_numeric)
{
        const uint8_t *p = c->p, *end = c->end, *start = p;
        size_t n = 0;
        int unterminated;
        const uint8_t *e = cell_extent(p, end, &unterminated);

        if (unterminated)
                return read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, col + 1,
                                 "unterminated quote in column name");
        while (p < e && is_blank(*p))
                p++;
        if (p < e && *p == '"') {
                p++;
                for (;;) {
                        /* cell_extent found the closing quote before e. */
                        if (*p == '"') {
                                if (p + 1 < e && p[1] == '"') {
                                        p++;
                                } else {
                                        p++;
                                        break;
                                }
                        }
                        if (n >= DREAM_MAX_NAME)
                                goto too_long;
                        out[n++] = (char)*p++;
                }
                while (p < e && is_blank(*p))
                        p++;
                if (p != e)
                        return read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, col + 1,
                                         "text after the closing quote of a column name");
        } else {
                const uint8_t *b = e;
                while (b > p && is_blank(b[-1]))
                        b--;
                if ((size_t)(b - p) > DREAM_MAX_NAME)
                        goto too_long;
                memcpy(out, p, (size_t)(b - p));
                n = (size_t)(b - p);
        }
        out[n] = '\0';
        if (n == 0)
                return read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, col + 1,
                                 "empty column name");
        if (memchr(out, '\0', n))
                return read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, col + 1,
                                 "column name contains a NUL byte");
        {
                struct cell tmp;
                const uint8_t *ue = parse_num((const uint8_t *)out, (const uint8_t *)out + n, &tmp);
                *ret_numeric = ue == (const uint8_t *)out + n;
        }
        c->p = e;
        (void)start;
        return 0;

too_long:
        return read_fail(c->err, DREAM_E_LIMIT, READ_SRC_DATA, c->line, col + 1,
                         "column name too long (limit %u bytes)", DREAM_MAX_NAME);
}

static uint64_t hash_name(const char *s)
{
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++) {
                h ^= (uint8_t)*s;
                h *= 1099511628211ULL;
        }
        return h;
}

/* Reject duplicate names (hash set of column indices). */
static int check_duplicates(struct csv *c, const struct gd_table *t, uint64_t header_line)
{
        size_t cap = 16;
        uint32_t *slot;
        int r = 0;

        while (cap < (size_t)t->n_cols * 2)
                cap *= 2;
        slot = dm_mallocarray(cap, sizeof(*slot));
        if (!slot)
                return read_fail(c->err, DREAM_E_NOMEM, READ_SRC_DATA, 0, 0, "out of memory");
        memset(slot, 0xff, cap * sizeof(*slot));
        for (uint32_t j = 0; j < t->n_cols && r == 0; j++) {
                size_t h = (size_t)hash_name(t->cols[j].name) & (cap - 1);
                while (slot[h] != UINT32_MAX) {
                        if (strcmp(t->cols[slot[h]].name, t->cols[j].name) == 0) {
                                char q[4 * 48 + 4];
                                quote_bytes((const uint8_t *)t->cols[j].name,
                                            strlen(t->cols[j].name), q);
                                r = read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, header_line,
                                              j + 1, "duplicate column name '%s' (also column %u)",
                                              q, slot[h] + 1);
                                break;
                        }
                        h = (h + 1) & (cap - 1);
                }
                slot[h] = j;
        }
        dm_free(slot);
        return r;
}

/* The header: count the cells, then read the names. */
static int parse_header(struct csv *c, char ***ret_names, uint32_t *ret_n)
{
        const uint8_t *save = c->p;
        uint64_t n = count_cells(c->p, c->end, 1);
        char **names = NULL;
        char buf[DREAM_MAX_NAME + 1];
        int all_numeric = 1, seq = 1, r;
        uint32_t j;

        if (n > DREAM_MAX_COLS)
                return read_fail(c->err, DREAM_E_LIMIT, READ_SRC_DATA, c->line, DREAM_MAX_COLS + 1,
                                 "too many columns (%llu, limit %u)", (unsigned long long)n,
                                 DREAM_MAX_COLS);
        names = dm_calloc((size_t)n, sizeof(*names));
        if (!names)
                return read_fail(c->err, DREAM_E_NOMEM, READ_SRC_DATA, 0, 0, "out of memory");
        c->p = save;
        for (j = 0; j < n; j++) {
                int numeric = 0;
                r = scan_name(c, j, buf, &numeric);
                if (r < 0)
                        goto fail_names;
                all_numeric &= numeric;
                if (seq) {
                        char want[16];
                        snprintf(want, sizeof(want), "%u", j);
                        seq = strcmp(buf, want) == 0;
                }
                names[j] = dm_strdup(buf);
                if (!names[j]) {
                        r = read_fail(c->err, DREAM_E_NOMEM, READ_SRC_DATA, 0, 0, "out of memory");
                        goto fail_names;
                }
                if (j + 1 < n) {
                        if (c->p >= c->end || *c->p != ',') {
                                /* count_cells and cell_extent disagree only
                                 * on malformed quotes. */
                                r = read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, j + 1,
                                              "malformed quoting in column name");
                                goto fail_names;
                        }
                        c->p++;
                }
        }
        if (c->p < c->end && !at_eol(c->p, c->end)) {
                r = read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, j,
                              "malformed quoting in column name");
                goto fail_names;
        }
        /* "0,1,2..." is what numpy/pandas write for unnamed columns: names. */
        if (all_numeric && !seq) {
                r = read_fail(c->err, DREAM_E_PARSE, READ_SRC_DATA, c->line, 0,
                              "missing header: the first line holds numbers, not column names");
                goto fail_names;
        }
        if (c->p < c->end)
                c->p = skip_eol(c->p, c->end);
        c->line++;
        *ret_names = names;
        *ret_n = (uint32_t)n;
        return 0;

fail_names:
        for (j = 0; j < n; j++)
                dm_free(names[j]);
        dm_free(names);
        return r;
}

static int rescale(int64_t *v, uint64_t n, int64_t f)
{
        for (uint64_t i = 0; i < n; i++) {
                if (__builtin_mul_overflow(v[i], f, &v[i]))
                        return -1;
        }
        return 0;
}

/* Normalized decimal: value = 0.d1d2... * 10^exp, digits without leading or
 * trailing zeros; zero has no digits. */
struct dnorm {
        int neg;
        int64_t exp;
        size_t nd;
        char d[DREAM_MAX_CELL + GD_FMT_MAX + 2];
};

static void dec_norm(const char *s, size_t n, struct dnorm *r)
{
        size_t i = 0;
        int64_t e = 0;
        int eneg = 0;

        r->neg = 0;
        r->exp = 0;
        r->nd = 0;
        if (i < n && (s[i] == '-' || s[i] == '+'))
                r->neg = s[i++] == '-';
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
                if (r->nd == 0 && s[i] == '0')
                        continue;
                r->d[r->nd++] = s[i];
                r->exp++;
        }
        if (i < n && s[i] == '.') {
                for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
                        if (r->nd == 0 && s[i] == '0') {
                                r->exp--;
                                continue;
                        }
                        r->d[r->nd++] = s[i];
                }
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < n && (s[i] == '-' || s[i] == '+'))
                        eneg = s[i++] == '-';
                for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
                        if (e < 1000000000)
                                e = e * 10 + (s[i] - '0');
                }
        }
        r->exp += eneg ? -e : e;
        while (r->nd > 0 && r->d[r->nd - 1] == '0')
                r->nd--;
        if (r->nd == 0) {
                r->neg = 0;
                r->exp = 0;
        }
}

static int same_decimal(const char *a, size_t an, const char *b, size_t bn)
{
        struct dnorm x, y;
        dec_norm(a, an, &x);
        dec_norm(b, bn, &y);
        return x.neg == y.neg && x.exp == y.exp && x.nd == y.nd && memcmp(x.d, y.d, x.nd) == 0;
}

/* Pass 2 for one GD_F64 cell. */
static int convert_f64(struct csv *c, uint32_t col, const struct cell *cl, int64_t *ret)
{
        char buf[DREAM_MAX_CELL + 1], out[GD_FMT_MAX + 1];
        size_t n = (size_t)(cl->ne - cl->ns), k;
        double x;
        int64_t key;

        if (n > DREAM_MAX_CELL)
                n = DREAM_MAX_CELL; /* cannot happen: scan_cell checked */
        memcpy(buf, cl->ns, n);
        buf[n] = '\0';
        x = strtod(buf, NULL);
        key = gd_f64_to_key(x);
        if (!cl->special) {
                k = gd_format_value(GD_F64, 0, key, out);
                if (!same_decimal(buf, n, out, k)) {
                        char q[4 * 48 + 4];
                        out[k] = '\0';
                        quote_bytes(cl->ns, n, q);
                        return read_fail(c->err, DREAM_E_INEXACT, READ_SRC_DATA, c->line, col + 1,
                                         "'%s' cannot be stored exactly (nearest double is %s)", q,
                                         out);
                }
        }
        *ret = key;
        return 0;
}

/* Pass 1 stores the cells of BATCH_ROWS rows column by column in a small
 * buffer, then copies each column's run of rows into the table at once: the
 * table is column-major, and a store per cell to each column in turn would
 * touch one cache line per column and row. */
#define BATCH_ROWS 8u

static void flush_batch(struct gd_table *t, const int64_t *bat, uint32_t n, uint64_t first,
                        uint64_t rows)
{
        for (uint32_t j = 0; j < n; j++)
                memcpy(t->cols[j].v + first, bat + (size_t)j * BATCH_ROWS,
                       (size_t)rows * sizeof(int64_t));
}

/* Both passes over the data rows. Pass 1 fills the exact columns and the
 * column states (cells of columns that turn GD_F64 are stored too, and
 * overwritten by pass 2); pass 2 fills the GD_F64 columns. bat: n *
 * BATCH_ROWS values, used by pass 1. */
static int parse_rows(struct csv *c, struct gd_table *t, struct col_state *cs, int pass,
                      uint64_t cap, const struct read_opts *opts, int64_t *bat, uint64_t *ret_rows)
{
        const uint32_t n = c->n_cols;
        uint64_t row = 0;
        struct cell cl;
        int r;

        for (;;) {
                c->p = skip_blank_lines(c->p, c->end, &c->line);
                if (c->p >= c->end)
                        break;
                const uint64_t in_bat = row & (BATCH_ROWS - 1), bat_first = row - in_bat;
                if (row >= cap) /* cannot happen: cap bounds the rows */
                        return read_fail(c->err, DREAM_E_LIMIT, READ_SRC_DATA, c->line, 0,
                                         "too many rows");
                if (pass == 1 && opts && opts->progress && (row & 0xffff) == 0)
                        opts->progress(opts->progress_ctx, (uint64_t)(c->p - c->data),
                                       (uint64_t)(c->end - c->data));
                for (uint32_t j = 0; j < n; j++) {
                        r = scan_cell(c, j, &cl);
                        if (r < 0)
                                return r;
                        if (j + 1 < n) {
                                if (c->p >= c->end || *c->p != ',')
                                        return read_fail(c->err, DREAM_E_SCHEMA, READ_SRC_DATA,
                                                         c->line, j + 2,
                                                         "expected %u cells, found %u", n, j + 1);
                                c->p++;
                        } else if (c->p < c->end && *c->p == ',') {
                                uint64_t found = count_cells(c->p, c->end, n);
                                return read_fail(c->err, DREAM_E_SCHEMA, READ_SRC_DATA, c->line,
                                                 n + 1, "expected %u cells, found %llu", n,
                                                 (unsigned long long)found);
                        }
                        int64_t *v = t->cols[j].v;
                        struct col_state *s = &cs[j];
                        if (pass == 2) {
                                if (s->f64) {
                                        r = convert_f64(c, j, &cl, &v[row]);
                                        if (r < 0)
                                                return r;
                                }
                                continue;
                        }
                        if (s->f64)
                                continue;
                        int64_t *bv = bat + (size_t)j * BATCH_ROWS;
                        if (cl.f64) {
                                s->f64 = 1;
                        } else if (cl.dec == s->scale) {
                                bv[in_bat] = cl.v;
                        } else if (cl.dec < s->scale) {
                                if (__builtin_mul_overflow(cl.v, gd_pow10[s->scale - cl.dec],
                                                           &bv[in_bat]))
                                        s->f64 = 1;
                        } else if (rescale(v, bat_first, gd_pow10[cl.dec - s->scale]) < 0 ||
                                   rescale(bv, in_bat, gd_pow10[cl.dec - s->scale]) < 0) {
                                s->f64 = 1;
                        } else {
                                s->scale = cl.dec;
                                bv[in_bat] = cl.v;
                        }
                }
                if (c->p < c->end)
                        c->p = skip_eol(c->p, c->end);
                c->line++;
                row++;
                if (pass == 1 && in_bat == BATCH_ROWS - 1)
                        flush_batch(t, bat, n, bat_first, BATCH_ROWS);
        }
        if (pass == 1 && (row & (BATCH_ROWS - 1)))
                flush_batch(t, bat, n, row & ~(uint64_t)(BATCH_ROWS - 1), row & (BATCH_ROWS - 1));
        *ret_rows = row;
        return 0;
}

/* Pass 1 on two threads for large inputs: the data rows are cut at a line
 * end near the middle (every line end ends a row: no cell spans lines), the
 * second half is parsed into the rows after the most the first half can
 * hold, then the halves' column states are merged (the result does not depend
 * on the order in which cells were seen) and the second half's rows moved
 * down when the first half had blank lines. The first error in file order is
 * the one reported, with the same line and column as one pass would give. */
#define SPLIT_MIN_BYTES (8u << 20)

struct half {
        struct csv c;
        struct gd_table view; /* columns offset to the half's first row */
        struct csv *cur;      /* &c, or the caller's csv for the first half */
        struct gd_table *tab; /* &view, or the caller's table */
        struct col_state *cs;
        int64_t *bat;
        uint64_t cap, rows;
        const struct read_opts *opts;
        struct read_error err;
        int r;
};

static void half_run(void *arg)
{
        struct half *h = arg;
        h->r = parse_rows(h->cur, h->tab, h->cs, 1, h->cap, h->opts, h->bat, &h->rows);
}

static void merge_state(struct gd_table *t, struct col_state *cs, const struct half *b,
                        uint64_t rows_a)
{
        for (uint32_t j = 0; j < t->n_cols; j++) {
                struct col_state *a = &cs[j];
                const struct col_state *sb = &b->cs[j];
                if (a->f64 || sb->f64) {
                        a->f64 = 1;
                        continue;
                }
                if (a->scale < sb->scale) {
                        if (rescale(t->cols[j].v, rows_a, gd_pow10[sb->scale - a->scale]) < 0)
                                a->f64 = 1;
                        a->scale = sb->scale;
                } else if (sb->scale < a->scale) {
                        if (rescale(b->view.cols[j].v, b->rows, gd_pow10[a->scale - sb->scale]) < 0)
                                a->f64 = 1;
                }
        }
}

/* 0 and the rows parsed, or the error of one pass. Falls back to one pass
 * when the input does not split. */
static int parse_rows_split(struct csv *c, struct gd_table *t, struct col_state *cs, uint64_t cap,
                            const struct read_opts *opts, int64_t *bat, uint64_t *ret_rows)
{
        const uint8_t *start = c->p, *mid = start + (c->end - start) / 2, *cut;
        struct read_opts ob;
        struct half a, b;
        uint64_t lines_a = 0, rows_a;
        int r;

        cut = memchr(mid, '\n', (size_t)(c->end - mid));
        if (!cut || cut + 1 >= c->end)
                return parse_rows(c, t, cs, 1, cap, opts, bat, ret_rows);
        cut++;
        for (const uint8_t *q = start; q < cut && (q = memchr(q, '\n', (size_t)(cut - q))); q++)
                lines_a++;
        if (lines_a >= cap)
                return parse_rows(c, t, cs, 1, cap, opts, bat, ret_rows);
        memset(&b, 0, sizeof(b));
        b.c = *c;
        b.c.p = cut;
        b.c.line = c->line + lines_a;
        b.c.err = c->err ? &b.err : NULL;
        b.cap = cap - lines_a;
        if (opts) {
                ob = *opts;
                ob.progress = NULL;
                b.opts = &ob;
        }
        b.view = *t;
        b.view.cols = dm_mallocarray(t->n_cols, sizeof(*b.view.cols));
        b.cs = dm_calloc(t->n_cols, sizeof(*b.cs));
        b.bat = dm_calloc((size_t)t->n_cols * BATCH_ROWS, sizeof(int64_t));
        if (!b.view.cols || !b.cs || !b.bat) {
                r = read_fail(c->err, DREAM_E_NOMEM, READ_SRC_DATA, 0, 0, "out of memory");
                goto out;
        }
        for (uint32_t j = 0; j < t->n_cols; j++) {
                b.view.cols[j] = t->cols[j];
                b.view.cols[j].v = t->cols[j].v + lines_a;
        }
        b.cur = &b.c;
        b.tab = &b.view;
        memset(&a, 0, sizeof(a));
        a.cur = c;
        a.tab = t;
        a.cs = cs;
        a.bat = bat;
        a.cap = lines_a;
        a.opts = opts;
        c->end = cut; /* the first half, on this thread */
        dm_par2(half_run, &a, &b);
        c->end = b.c.end;
        r = a.r;
        rows_a = a.rows;
        if (r < 0)
                goto out;
        if (b.r < 0) {
                if (c->err)
                        *c->err = b.err;
                r = b.r;
                goto out;
        }
        merge_state(t, cs, &b, rows_a);
        if (rows_a < lines_a && b.rows) {
                for (uint32_t j = 0; j < t->n_cols; j++)
                        memmove(t->cols[j].v + rows_a, b.view.cols[j].v,
                                (size_t)b.rows * sizeof(int64_t));
        }
        c->p = b.c.p;
        c->line = b.c.line;
        *ret_rows = rows_a + b.rows;
        r = 0;
out:
        dm_free(b.view.cols);
        dm_free(b.cs);
        dm_free(b.bat);
        return r;
}

/* Upper bound of the data rows after the header at p: each row has at least
 * 2 * n_cols - 1 bytes and ends with a newline or the end of input. */
static uint64_t rows_bound(const uint8_t *p, const uint8_t *end, uint32_t n_cols)
{
        uint64_t nl = 0;
        size_t rest = (size_t)(end - p);
        const uint8_t *q = p;
        while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
                nl++;
                q++;
        }
        uint64_t by_size = (uint64_t)rest / (2ull * n_cols - 1) + 1;
        return nl + 1 < by_size ? nl + 1 : by_size;
}

int read_csv(const uint8_t *data, size_t len, const struct read_opts *opts, struct read_error *err,
             struct gd_table **ret)
{
        struct csv c = {.data = data, .p = data, .end = data + len, .line = 1, .err = err};
        struct gd_table *t = NULL;
        struct col_state *cs = NULL;
        int64_t *bat = NULL;
        char **names = NULL;
        uint32_t n = 0;
        uint64_t cap, rows = 0, header_line, data_line;
        const uint8_t *data_start;
        int32_t target = -1;
        int r, any_f64 = 0;

        if (err)
                memset(err, 0, sizeof(*err));
        if (!data && len)
                return read_fail(err, DREAM_E_INVAL, READ_SRC_DATA, 0, 0, "no input");
        if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf)
                c.p += 3;
        c.p = skip_blank_lines(c.p, c.end, &c.line);
        if (c.p >= c.end)
                return read_fail(err, DREAM_E_EMPTY, READ_SRC_DATA, 0, 0, "empty file");
        header_line = c.line;
        r = parse_header(&c, &names, &n);
        if (r < 0)
                return r;
        c.n_cols = n;
        data_start = c.p;
        data_line = c.line;
        cap = rows_bound(c.p, c.end, n);

        r = gd_table_new(cap, n, &t);
        if (r < 0) {
                read_fail(err, r, READ_SRC_DATA, 0, 0, "cannot allocate the table: %s",
                          dream_strerror(r));
                goto fail;
        }
        for (uint32_t j = 0; j < n; j++) {
                /* Move the parsed names in (they fit DREAM_MAX_NAME). */
                dm_free(t->cols[j].name);
                t->cols[j].name = names[j];
                names[j] = NULL;
        }
        r = check_duplicates(&c, t, header_line);
        if (r < 0)
                goto fail;
        if (opts && opts->label) {
                target = gd_table_find(t, opts->label);
                if (target < 0) {
                        char q[4 * 48 + 4];
                        quote_bytes((const uint8_t *)opts->label, strlen(opts->label), q);
                        r = read_fail(err, DREAM_E_NOTFOUND, READ_SRC_DATA, header_line, 0,
                                      "label column '%s' not found in the header", q);
                        goto fail;
                }
        } else {
                target = gd_table_find(t, "label");
        }

        cs = dm_calloc(n, sizeof(*cs));
        bat = dm_calloc((size_t)n * BATCH_ROWS, sizeof(int64_t));
        if (!cs || !bat) {
                r = read_fail(err, DREAM_E_NOMEM, READ_SRC_DATA, 0, 0, "out of memory");
                goto fail;
        }
        if ((size_t)(c.end - c.p) >= SPLIT_MIN_BYTES && sysconf(_SC_NPROCESSORS_ONLN) >= 2)
                r = parse_rows_split(&c, t, cs, cap, opts, bat, &rows);
        else
                r = parse_rows(&c, t, cs, 1, cap, opts, bat, &rows);
        if (r < 0)
                goto fail;
        if (rows == 0) {
                r = read_fail(err, DREAM_E_EMPTY, READ_SRC_DATA, header_line, 0,
                              "no data rows after the header");
                goto fail;
        }
        for (uint32_t j = 0; j < n; j++)
                any_f64 |= cs[j].f64;
        if (any_f64) {
                uint64_t rows2 = 0;
                c.p = data_start;
                c.line = data_line;
                r = parse_rows(&c, t, cs, 2, cap, opts, bat, &rows2);
                if (r < 0)
                        goto fail;
        }
        for (uint32_t j = 0; j < n; j++) {
                struct gd_col *col = &t->cols[j];
                if (cs[j].f64) {
                        col->kind = GD_F64;
                        col->scale = 0;
                } else if (cs[j].scale == 0) {
                        col->kind = GD_INT;
                        col->scale = 0;
                } else {
                        col->kind = GD_DEC;
                        col->scale = cs[j].scale;
                }
                if (rows < cap) {
                        int64_t *v = dm_reallocarray(col->v, rows, sizeof(int64_t));
                        if (v)
                                col->v = v; /* else keep the larger array */
                }
        }
        t->n_rows = rows;
        if (target >= 0) {
                t->target = target;
                if (!opts || opts->task == READ_TASK_AUTO)
                        t->task = gd_table_guess_task(t, (uint32_t)target);
                else if (opts->task == READ_TASK_REGRESSION)
                        t->task = GD_TASK_REGRESSION;
                else
                        t->task = GD_TASK_CLASSIFICATION;
        }
        if (opts && opts->progress)
                opts->progress(opts->progress_ctx, len, len);
        dm_free(bat);
        dm_free(cs);
        dm_free(names);
        *ret = t;
        return 0;

fail:
        if (names) {
                for (uint32_t j = 0; j < n; j++)
                        dm_free(names[j]);
                dm_free(names);
        }
        dm_free(bat);
        dm_free(cs);
        gd_table_free(t);
        return r;
}
