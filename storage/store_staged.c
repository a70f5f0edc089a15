/* Staged batch records (STORE.md "Staged batch"): appended rows waiting to
 * be sealed, packed frame-of-reference column by column. */
#include <endian.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

#define MAGIC_STAGED 0x47545344u /* "DSTG" */

/* ---- records: staged batches --------------------------------------------- */

/* A staged batch: header (magic, version, n_rows, n_cols), then one 16-byte
 * descriptor per column (kind u8, scale u8, width u8 = bytes per value 1, 2,
 * 4 or 8, five zero bytes, min i64), then each column's values as v - min in
 * `width` bytes, little-endian, column after column; XXH3 of all that last.
 * Frame-of-reference packing cuts the bytes each synchronous commit writes. */
#define STAGED_HEAD 16u
#define STAGED_DESC 16u

void store_i_staged_plan_release(struct staged_plan *p)
{
        dm_free(p->width);
        dm_free(p->min);
        memset(p, 0, sizeof(*p));
}

int store_i_staged_plan_make(const struct gd_table *t, struct staged_plan *ret)
{
        struct staged_plan p = {0};
        struct gd_colparam *cp;
        uint64_t cells, bytes, len = STAGED_HEAD + (uint64_t)STAGED_DESC * t->n_cols + 8;
        int r;

        if (__builtin_mul_overflow(t->n_rows, (uint64_t)t->n_cols, &cells) ||
            __builtin_mul_overflow(cells, 8, &bytes) || bytes > DREAM_MAX_STAGED_BATCH_BYTES)
                return DREAM_E_LIMIT;
        p.width = dm_malloc(t->n_cols);
        p.min = dm_mallocarray(t->n_cols, sizeof(int64_t));
        cp = dm_mallocarray(t->n_cols, sizeof(*cp));
        if (!p.width || !p.min || !cp) {
                dm_free(cp);
                store_i_staged_plan_release(&p);
                return DREAM_E_NOMEM;
        }
        r = gd_prep_compute(t, cp); /* min and bit width of each column */
        for (uint32_t j = 0; r == 0 && j < t->n_cols; j++) {
                unsigned bits = cp[j].width;
                p.width[j] = bits <= 8 ? 1 : bits <= 16 ? 2 : bits <= 32 ? 4 : 8;
                p.min[j] = cp[j].min;
                len += t->n_rows * p.width[j];
        }
        dm_free(cp);
        if (r < 0) {
                store_i_staged_plan_release(&p);
                return r;
        }
        p.len = (size_t)len;
        *ret = p;
        return 0;
}

static void pack_column(const int64_t *v, uint64_t n, int64_t min, unsigned w, uint8_t *out)
{
        uint64_t m = (uint64_t)min;
        switch (w) {
        case 1:
                for (uint64_t i = 0; i < n; i++)
                        out[i] = (uint8_t)((uint64_t)v[i] - m);
                break;
        case 2:
                for (uint64_t i = 0; i < n; i++) {
                        uint16_t x = htole16((uint16_t)((uint64_t)v[i] - m));
                        memcpy(out + 2 * i, &x, 2);
                }
                break;
        case 4:
                for (uint64_t i = 0; i < n; i++)
                        dm_put_le32(out + 4 * i, (uint32_t)((uint64_t)v[i] - m));
                break;
        default:
                for (uint64_t i = 0; i < n; i++)
                        dm_put_le64(out + 8 * i, (uint64_t)v[i] - m);
                break;
        }
}

static void unpack_column(const uint8_t *in, uint64_t n, int64_t min, unsigned w, int64_t *v)
{
        uint64_t m = (uint64_t)min;
        switch (w) {
        case 1:
                for (uint64_t i = 0; i < n; i++)
                        v[i] = (int64_t)(m + in[i]);
                break;
        case 2:
                for (uint64_t i = 0; i < n; i++) {
                        uint16_t x;
                        memcpy(&x, in + 2 * i, 2);
                        v[i] = (int64_t)(m + le16toh(x));
                }
                break;
        case 4:
                for (uint64_t i = 0; i < n; i++)
                        v[i] = (int64_t)(m + dm_get_le32(in + 4 * i));
                break;
        default:
                for (uint64_t i = 0; i < n; i++)
                        v[i] = (int64_t)(m + dm_get_le64(in + 8 * i));
                break;
        }
}

void store_i_staged_encode(const struct gd_table *t, const struct staged_plan *p, uint8_t *out)
{
        uint8_t *d;
        dm_put_le32(out, MAGIC_STAGED);
        dm_put_le32(out + 4, FORMAT_VERSION);
        dm_put_le32(out + 8, (uint32_t)t->n_rows);
        dm_put_le32(out + 12, t->n_cols);
        d = out + STAGED_HEAD;
        for (uint32_t j = 0; j < t->n_cols; j++, d += STAGED_DESC) {
                memset(d, 0, STAGED_DESC);
                d[0] = (uint8_t)t->cols[j].kind;
                d[1] = t->cols[j].kind == GD_DEC ? t->cols[j].scale : 0;
                d[2] = p->width[j];
                dm_put_le64(d + 8, (uint64_t)p->min[j]);
        }
        for (uint32_t j = 0; j < t->n_cols; j++) {
                pack_column(t->cols[j].v, t->n_rows, p->min[j], p->width[j], d);
                d += t->n_rows * p->width[j];
        }
        dm_put_le64(out + p->len - 8, store_i_checksum(out, p->len - 8));
}

/* Parse a staged value; verify = also check the store_i_checksum (costs a pass). */
int store_i_staged_decode(const MDB_val *v, bool verify, struct staged *ret)
{
        const uint8_t *p = v->mv_data;
        struct staged st;
        uint64_t len;

        if (v->mv_size < STAGED_HEAD + 8 || dm_get_le32(p) != MAGIC_STAGED ||
            dm_get_le32(p + 4) != FORMAT_VERSION)
                return DREAM_E_CORRUPT;
        st.n_rows = dm_get_le32(p + 8);
        st.n_cols = dm_get_le32(p + 12);
        if (st.n_rows == 0 || st.n_rows > DREAM_MAX_SEGMENT_ROWS || st.n_cols == 0 ||
            st.n_cols > DREAM_MAX_COLS)
                return DREAM_E_CORRUPT;
        len = STAGED_HEAD + (uint64_t)STAGED_DESC * st.n_cols + 8;
        if (len > v->mv_size)
                return DREAM_E_CORRUPT;
        st.desc = p + STAGED_HEAD;
        for (uint32_t j = 0; j < st.n_cols; j++) {
                const uint8_t *d = st.desc + (size_t)STAGED_DESC * j;
                if (d[0] > GD_F64 || d[1] > DREAM_MAX_SCALE || (d[0] == GD_DEC) != (d[1] != 0) ||
                    !(d[2] == 1 || d[2] == 2 || d[2] == 4 || d[2] == 8))
                        return DREAM_E_CORRUPT;
                len += (uint64_t)st.n_rows * d[2];
        }
        if (len != v->mv_size)
                return DREAM_E_CORRUPT;
        if (verify && dm_get_le64(p + len - 8) != store_i_checksum(p, len - 8))
                return DREAM_E_CHECKSUM;
        st.data = st.desc + (size_t)STAGED_DESC * st.n_cols;
        *ret = st;
        return 0;
}

enum gd_kind store_i_staged_kind(const struct staged *st, uint32_t j)
{
        return (enum gd_kind)st->desc[(size_t)STAGED_DESC * j];
}

uint8_t store_i_staged_scale(const struct staged *st, uint32_t j)
{
        return st->desc[(size_t)STAGED_DESC * j + 1];
}

/* Row `row` of every column into ret_v. */
void store_i_staged_row(const struct staged *st, uint64_t row, int64_t *ret_v)
{
        const uint8_t *col = st->data;
        for (uint32_t j = 0; j < st->n_cols; j++) {
                const uint8_t *d = st->desc + (size_t)STAGED_DESC * j;
                unpack_column(col + row * d[2], 1, (int64_t)dm_get_le64(d + 8), d[2], &ret_v[j]);
                col += (uint64_t)st->n_rows * d[2];
        }
}

/* Copy rows [first, first + n) of a staged batch into t's rows [at, at + n),
 * setting t's kinds and scales. */
void store_i_staged_copy(const struct staged *st, uint64_t first, uint64_t n, struct gd_table *t,
                         uint64_t at)
{
        const uint8_t *col = st->data;
        for (uint32_t j = 0; j < st->n_cols; j++) {
                const uint8_t *d = st->desc + (size_t)STAGED_DESC * j;
                t->cols[j].kind = (enum gd_kind)d[0];
                t->cols[j].scale = d[1];
                unpack_column(col + first * d[2], n, (int64_t)dm_get_le64(d + 8), d[2],
                              t->cols[j].v + at);
                col += (uint64_t)st->n_rows * d[2];
        }
}
