/* Growable byte buffer. Embedded (dm_buf_init/dm_buf_release); the buffer
 * owns `data`. A NULL-data buffer with len 0 is valid and empty. */
#ifndef DREAM_COMMON_BUF_H
#define DREAM_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct dm_buf {
        uint8_t *data;
        size_t len;
        size_t cap;
};

void dm_buf_init(struct dm_buf *b);
void dm_buf_release(struct dm_buf *b);
/* Make room for `extra` more bytes. 0 or DREAM_E_NOMEM / DREAM_E_OVERFLOW. */
int dm_buf_reserve(struct dm_buf *b, size_t extra);
int dm_buf_append(struct dm_buf *b, const void *p, size_t n);
int dm_buf_put_u8(struct dm_buf *b, uint8_t v);
/* Little-endian fixed-width integers. */
int dm_buf_put_le32(struct dm_buf *b, uint32_t v);
int dm_buf_put_le64(struct dm_buf *b, uint64_t v);
/* Take ownership of the bytes; the buffer becomes empty. */
uint8_t *dm_buf_steal(struct dm_buf *b, size_t *ret_len);

/* Bounds-checked little-endian reader over borrowed bytes. Every get returns
 * DREAM_E_TRUNCATED when fewer bytes remain than asked. */
struct dm_rd {
        const uint8_t *p;
        size_t len;
        size_t pos;
};

void dm_rd_init(struct dm_rd *r, const void *p, size_t len);
int dm_rd_u8(struct dm_rd *r, uint8_t *ret);
int dm_rd_le32(struct dm_rd *r, uint32_t *ret);
int dm_rd_le64(struct dm_rd *r, uint64_t *ret);
/* Borrow n bytes in place; *ret points into the reader's memory. */
int dm_rd_bytes(struct dm_rd *r, size_t n, const uint8_t **ret);

#endif
