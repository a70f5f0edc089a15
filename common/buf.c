#include "common/buf.h"

#include <endian.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"

void dm_buf_init(struct dm_buf *b)
{
        b->data = NULL;
        b->len = 0;
        b->cap = 0;
}

void dm_buf_release(struct dm_buf *b)
{
        if (!b)
                return;
        dm_free(b->data);
        dm_buf_init(b);
}

int dm_buf_reserve(struct dm_buf *b, size_t extra)
{
        size_t need, cap;
        if (__builtin_add_overflow(b->len, extra, &need))
                return DREAM_E_OVERFLOW;
        if (need <= b->cap)
                return 0;
        cap = b->cap ? b->cap : 256;
        while (cap < need) {
                if (__builtin_mul_overflow(cap, 2, &cap))
                        return DREAM_E_OVERFLOW;
        }
        uint8_t *d = dm_realloc(b->data, cap);
        if (!d)
                return DREAM_E_NOMEM;
        b->data = d;
        b->cap = cap;
        return 0;
}

int dm_buf_append(struct dm_buf *b, const void *p, size_t n)
{
        int r = dm_buf_reserve(b, n);
        if (r < 0)
                return r;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

int dm_buf_put_u8(struct dm_buf *b, uint8_t v)
{
        return dm_buf_append(b, &v, 1);
}

int dm_buf_put_le32(struct dm_buf *b, uint32_t v)
{
        uint32_t le = htole32(v);
        return dm_buf_append(b, &le, 4);
}

int dm_buf_put_le64(struct dm_buf *b, uint64_t v)
{
        uint64_t le = htole64(v);
        return dm_buf_append(b, &le, 8);
}

uint8_t *dm_buf_steal(struct dm_buf *b, size_t *ret_len)
{
        uint8_t *d = b->data;
        *ret_len = b->len;
        dm_buf_init(b);
        return d;
}

void dm_rd_init(struct dm_rd *r, const void *p, size_t len)
{
        r->p = p;
        r->len = len;
        r->pos = 0;
}

int dm_rd_bytes(struct dm_rd *r, size_t n, const uint8_t **ret)
{
        if (n > r->len - r->pos)
                return DREAM_E_TRUNCATED;
        *ret = r->p + r->pos;
        r->pos += n;
        return 0;
}

int dm_rd_u8(struct dm_rd *r, uint8_t *ret)
{
        const uint8_t *p;
        int e = dm_rd_bytes(r, 1, &p);
        if (e < 0)
                return e;
        *ret = p[0];
        return 0;
}

int dm_rd_le32(struct dm_rd *r, uint32_t *ret)
{
        const uint8_t *p;
        uint32_t v;
        int e = dm_rd_bytes(r, 4, &p);
        if (e < 0)
                return e;
        memcpy(&v, p, 4);
        *ret = le32toh(v);
        return 0;
}

int dm_rd_le64(struct dm_rd *r, uint64_t *ret)
{
        const uint8_t *p;
        uint64_t v;
        int e = dm_rd_bytes(r, 8, &p);
        if (e < 0)
                return e;
        memcpy(&v, p, 8);
        *ret = le64toh(v);
        return 0;
}
