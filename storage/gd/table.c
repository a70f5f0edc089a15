/* Tables in memory, value mapping and exact printing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "storage/gd/gd.h"

int gd_table_new(uint64_t n_rows, uint32_t n_cols, struct gd_table **ret)
{
        struct gd_table *t;
        int r = DREAM_E_NOMEM;

        if (n_cols == 0 || n_cols > DREAM_MAX_COLS || n_rows > DREAM_MAX_ROWS)
                return DREAM_E_LIMIT;
        t = dm_calloc(1, sizeof(*t));
        if (!t)
                return DREAM_E_NOMEM;
        t->n_rows = n_rows;
        t->n_cols = n_cols;
        t->target = -1;
        t->task = GD_TASK_NONE;
        t->cols = dm_calloc(n_cols, sizeof(*t->cols));
        if (!t->cols)
                goto fail_free;
        for (uint32_t j = 0; j < n_cols; j++) {
                char name[16];
                snprintf(name, sizeof(name), "c%u", j);
                t->cols[j].name = dm_strdup(name);
                t->cols[j].v = dm_calloc(n_rows ? n_rows : 1, sizeof(int64_t));
                if (!t->cols[j].name || !t->cols[j].v)
                        goto fail_free;
        }
        *ret = t;
        return 0;

fail_free:
        gd_table_free(t);
        return r;
}

void gd_table_free(struct gd_table *t)
{
        if (!t)
                return;
        if (t->cols) {
                for (uint32_t j = 0; j < t->n_cols; j++) {
                        dm_free(t->cols[j].name);
                        dm_free(t->cols[j].v);
                }
                dm_free(t->cols);
        }
        dm_free(t);
}

int gd_table_set_name(struct gd_table *t, uint32_t col, const char *name)
{
        char *d;
        if (col >= t->n_cols || strlen(name) > DREAM_MAX_NAME)
                return DREAM_E_INVAL;
        d = dm_strdup(name);
        if (!d)
                return DREAM_E_NOMEM;
        dm_free(t->cols[col].name);
        t->cols[col].name = d;
        return 0;
}

int32_t gd_table_find(const struct gd_table *t, const char *name)
{
        for (uint32_t j = 0; j < t->n_cols; j++) {
                if (strcmp(t->cols[j].name, name) == 0)
                        return (int32_t)j;
        }
        return -1;
}

/* Powers of ten up to 10^18, exact in int64 and (to 10^22) in double. */
const int64_t gd_pow10[19] = {
    1LL,
    10LL,
    100LL,
    1000LL,
    10000LL,
    100000LL,
    1000000LL,
    10000000LL,
    100000000LL,
    1000000000LL,
    10000000000LL,
    100000000000LL,
    1000000000000LL,
    10000000000000LL,
    100000000000000LL,
    1000000000000000LL,
    10000000000000000LL,
    100000000000000000LL,
    1000000000000000000LL,
};

int64_t gd_f64_to_key(double x)
{
        int64_t b;
        memcpy(&b, &x, sizeof(b));
        /* Negative doubles order in reverse of their bits: flip the magnitude
         * bits so that signed integer order equals numeric order. */
        return b < 0 ? (b ^ INT64_MAX) : b;
}

double gd_key_to_f64(int64_t k)
{
        double x;
        int64_t b = k < 0 ? (k ^ INT64_MAX) : k;
        memcpy(&x, &b, sizeof(x));
        return x;
}

double gd_value_f64(enum gd_kind kind, uint8_t scale, int64_t v)
{
        switch (kind) {
        case GD_INT:
                return (double)v;
        case GD_DEC:
                /* v is exact in long double (64-bit mantissa), so the quotient is
                 * the nearest double for |v| < 2^53 and within one ulp above. */
                return (double)((long double)v / (long double)gd_pow10[scale]);
        case GD_F64:
        default:
                return gd_key_to_f64(v);
        }
}

double gd_table_get(const struct gd_table *t, uint64_t row, uint32_t col)
{
        const struct gd_col *c = &t->cols[col];
        return gd_value_f64(c->kind, c->scale, c->v[row]);
}

enum gd_task gd_table_guess_task(const struct gd_table *t, uint32_t col)
{
        const struct gd_col *c = &t->cols[col];
        int64_t seen[257];
        uint32_t n_seen = 0;

        if (c->kind != GD_INT)
                return GD_TASK_REGRESSION;
        for (uint64_t i = 0; i < t->n_rows; i++) {
                uint32_t k;
                for (k = 0; k < n_seen; k++) {
                        if (seen[k] == c->v[i])
                                break;
                }
                if (k == n_seen) {
                        if (n_seen == 256)
                                return GD_TASK_REGRESSION;
                        seen[n_seen++] = c->v[i];
                }
        }
        return GD_TASK_CLASSIFICATION;
}

/* Digits of u, most significant first, into out; returns the count. */
static size_t put_u64(uint64_t u, char *out)
{
        char tmp[20];
        size_t n = 0, i;
        do {
                tmp[n++] = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        for (i = 0; i < n; i++)
                out[i] = tmp[n - 1 - i];
        return n;
}

static size_t format_f64(double x, char *out)
{
        char tmp[64];
        if (isnan(x)) {
                memcpy(out, "nan", 3);
                return 3;
        }
        if (isinf(x)) {
                if (x < 0) {
                        memcpy(out, "-inf", 4);
                        return 4;
                }
                memcpy(out, "inf", 3);
                return 3;
        }
        /* Shortest of %.15g..%.17g that reads back bit-exactly. */
        for (int prec = 15; prec <= 17; prec++) {
                int n = snprintf(tmp, sizeof(tmp), "%.*g", prec, x);
                if (prec == 17 || strtod(tmp, NULL) == x) {
                        if (n > GD_FMT_MAX)
                                n = GD_FMT_MAX;
                        memcpy(out, tmp, (size_t)n);
                        return (size_t)n;
                }
        }
        return 0;
}

size_t gd_format_value(enum gd_kind kind, uint8_t scale, int64_t v, char *out)
{
        size_t n = 0;
        uint64_t u, ip, fp;

        if (kind == GD_F64)
                return format_f64(gd_key_to_f64(v), out);
        if (v < 0) {
                out[n++] = '-';
                u = (uint64_t)0 - (uint64_t)v;
        } else {
                u = (uint64_t)v;
        }
        if (kind == GD_INT || scale == 0)
                return n + put_u64(u, out + n);
        ip = u / (uint64_t)gd_pow10[scale];
        fp = u % (uint64_t)gd_pow10[scale];
        n += put_u64(ip, out + n);
        if (fp) {
                unsigned digits = scale;
                while (fp % 10 == 0) {
                        fp /= 10;
                        digits--;
                }
                out[n++] = '.';
                /* Leading zeros of the fraction. */
                char tmp[20];
                size_t k = put_u64(fp, tmp);
                for (size_t z = k; z < digits; z++)
                        out[n++] = '0';
                memcpy(out + n, tmp, k);
                n += k;
        }
        return n;
}
