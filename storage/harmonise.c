/* Merging batches whose columns were preprocessed differently: one kind and
 * scale per column, chosen so that every value converts exactly when
 * possible (store.h, STORE.md "harmonising"). */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "storage/store.h"

static uint8_t eff_scale(enum gd_kind kind, uint8_t scale)
{
        return kind == GD_DEC ? scale : 0;
}

int store_value_convert(enum gd_kind from_kind, uint8_t from_scale, int64_t v, enum gd_kind to_kind,
                        uint8_t to_scale, int64_t *ret)
{
        uint8_t fs = eff_scale(from_kind, from_scale);
        uint8_t ts = eff_scale(to_kind, to_scale);
        int64_t out;

        if (fs > DREAM_MAX_SCALE || ts > DREAM_MAX_SCALE)
                return DREAM_E_INVAL;
        if (to_kind == GD_F64) {
                if (from_kind == GD_F64)
                        out = v;
                else
                        out = gd_f64_to_key(gd_value_f64(from_kind, fs, v));
                *ret = out;
                return 0;
        }
        if (from_kind == GD_F64) {
                double x = gd_key_to_f64(v), y;
                if (!isfinite(x))
                        return DREAM_E_INEXACT;
                y = x * (double)gd_pow10[ts];
                if (!(y >= -9.2e18 && y <= 9.2e18))
                        return DREAM_E_INEXACT;
                out = llround(y);
                if (gd_value_f64(ts ? GD_DEC : GD_INT, ts, out) != x)
                        return DREAM_E_INEXACT;
                *ret = out;
                return 0;
        }
        if (ts >= fs) {
                if (__builtin_mul_overflow(v, gd_pow10[ts - fs], &out))
                        return DREAM_E_INEXACT;
        } else {
                int64_t p = gd_pow10[fs - ts];
                if (v % p != 0)
                        return DREAM_E_INEXACT;
                out = v / p;
        }
        *ret = out;
        return 0;
}

/* Convert column j of every part into dst at the given kind and scale;
 * DREAM_E_INEXACT at the first value that does not convert exactly. */
static int fill_column(const struct gd_table *const *parts, uint32_t n_parts, uint32_t j,
                       enum gd_kind kind, uint8_t scale, int64_t *dst)
{
        uint64_t at = 0;
        for (uint32_t p = 0; p < n_parts; p++) {
                const struct gd_col *c = &parts[p]->cols[j];
                uint64_t n = parts[p]->n_rows;
                if (c->kind == kind && eff_scale(c->kind, c->scale) == scale) {
                        memcpy(dst + at, c->v, n * sizeof(int64_t));
                } else {
                        for (uint64_t i = 0; i < n; i++) {
                                int r = store_value_convert(c->kind, c->scale, c->v[i], kind, scale,
                                                            &dst[at + i]);
                                if (r < 0)
                                        return r;
                        }
                }
                at += n;
        }
        return 0;
}

int store_table_concat(const struct gd_table *const *parts, uint32_t n_parts, struct gd_table **ret)
{
        struct gd_table *t = NULL;
        uint64_t rows = 0;
        uint32_t n_cols;
        int r;

        if (n_parts == 0 || !parts[0])
                return DREAM_E_INVAL;
        n_cols = parts[0]->n_cols;
        for (uint32_t p = 0; p < n_parts; p++) {
                if (parts[p]->n_cols != n_cols)
                        return DREAM_E_SCHEMA;
                if (__builtin_add_overflow(rows, parts[p]->n_rows, &rows))
                        return DREAM_E_OVERFLOW;
        }
        if (rows > DREAM_MAX_ROWS)
                return DREAM_E_LIMIT;
        r = gd_table_new(rows, n_cols, &t);
        if (r < 0)
                return r;
        t->target = parts[0]->target;
        t->task = parts[0]->task;
        for (uint32_t j = 0; j < n_cols; j++) {
                enum gd_kind kind = GD_INT;
                uint8_t scale = 0;

                r = gd_table_set_name(t, j, parts[0]->cols[j].name);
                if (r < 0)
                        goto fail_free;
                for (uint32_t p = 0; p < n_parts; p++) {
                        const struct gd_col *c = &parts[p]->cols[j];
                        if (c->kind == GD_F64) {
                                kind = GD_F64;
                                scale = 0;
                                break;
                        }
                        if (eff_scale(c->kind, c->scale) > scale)
                                scale = eff_scale(c->kind, c->scale);
                }
                if (kind != GD_F64 && scale > 0)
                        kind = GD_DEC;
                r = fill_column(parts, n_parts, j, kind, scale, t->cols[j].v);
                if (r == DREAM_E_INEXACT && kind != GD_F64) {
                        kind = GD_F64;
                        scale = 0;
                        r = fill_column(parts, n_parts, j, kind, scale, t->cols[j].v);
                }
                if (r < 0)
                        goto fail_free;
                t->cols[j].kind = kind;
                t->cols[j].scale = scale;
        }
        *ret = t;
        return 0;

fail_free:
        gd_table_free(t);
        return r;
}

static size_t u64_digits(uint64_t u)
{
        size_t n = 1;
        uint64_t p = 10; /* 10^n */
        while (u >= p) {
                if (++n == 20)
                        break;
                p *= 10;
        }
        return n;
}

size_t store_cell_text_len(enum gd_kind kind, uint8_t scale, int64_t v)
{
        uint64_t u;
        size_t n = 0;

        if (kind == GD_F64 || scale > 18) {
                char tmp[GD_FMT_MAX];
                return gd_format_value(kind, scale, v, tmp);
        }
        if (v < 0) {
                n = 1;
                u = (uint64_t)0 - (uint64_t)v;
        } else {
                u = (uint64_t)v;
        }
        if (kind == GD_INT || scale == 0)
                return n + u64_digits(u);
        uint64_t p = (uint64_t)gd_pow10[scale];
        uint64_t fp = u % p;
        n += u64_digits(u / p);
        if (fp) {
                size_t digits = scale;
                while (fp % 10 == 0) {
                        fp /= 10;
                        digits--;
                }
                n += 1 + digits;
        }
        return n;
}
