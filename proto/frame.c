#include "proto/frame.h"

#include <endian.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"

void frame_decoder_init(struct frame_decoder *d, uint32_t max_len)
{
        if (max_len == 0)
                max_len = DREAM_MAX_FRAME_DEFAULT;
        if (max_len > UINT32_MAX - FRAME_HEADER_SIZE)
                max_len = UINT32_MAX - FRAME_HEADER_SIZE;
        memset(d, 0, sizeof(*d));
        d->max_len = max_len;
}

void frame_decoder_release(struct frame_decoder *d)
{
        if (!d)
                return;
        dm_free(d->data);
        d->data = NULL;
        d->len = d->cap = d->pos = 0;
}

void frame_header_put(uint8_t hdr[FRAME_HEADER_SIZE], uint32_t len)
{
        uint32_t be = htobe32(len);
        memcpy(hdr, &be, FRAME_HEADER_SIZE);
}

uint32_t frame_header_get(const uint8_t hdr[FRAME_HEADER_SIZE])
{
        uint32_t be;
        memcpy(&be, hdr, FRAME_HEADER_SIZE);
        return be32toh(be);
}

/* Check the header of the frame starting at pos, if it is complete. Sets the
 * sticky error. */
static int check_header(struct frame_decoder *d)
{
        uint32_t len;

        if (d->len - d->pos < FRAME_HEADER_SIZE)
                return 0;
        len = frame_header_get(d->data + d->pos);
        if (len == 0) {
                d->bad_len = 0;
                d->err = DREAM_E_EMPTY;
        } else if (len > d->max_len) {
                d->bad_len = len;
                d->err = DREAM_E_LIMIT;
        }
        return d->err;
}

/* Drop the bytes already taken, and give back a large buffer that now holds
 * little. */
static void compact(struct frame_decoder *d)
{
        size_t left = d->len - d->pos;

        if (d->pos > 0) {
                if (left)
                        memmove(d->data, d->data + d->pos, left);
                d->len = left;
                d->pos = 0;
        }
        if (d->cap > FRAME_KEEP_BYTES && left <= FRAME_KEEP_BYTES / 2) {
                if (left == 0) {
                        dm_free(d->data);
                        d->data = NULL;
                        d->cap = 0;
                } else {
                        uint8_t *p = dm_realloc(d->data, FRAME_KEEP_BYTES);
                        if (p) { /* shrinking failed: keep the larger buffer */
                                d->data = p;
                                d->cap = FRAME_KEEP_BYTES;
                        }
                }
        }
}

int frame_decoder_feed(struct frame_decoder *d, const void *p, size_t n)
{
        size_t need, bound, cap;

        if (d->err)
                return d->err;
        if (n == 0)
                return 0;
        compact(d);
        if (__builtin_add_overflow((size_t)d->max_len, FRAME_HEADER_SIZE + FRAME_FEED_SLACK,
                                   &bound))
                bound = SIZE_MAX;
        if (__builtin_add_overflow(d->len, n, &need) || need > bound)
                return DREAM_E_BUSY; /* not sticky: drain frames, then feed again */
        if (need > d->cap) {
                /* Double, but never past what has arrived plus a bound: the
                 * claimed length plays no part. */
                cap = d->cap ? d->cap : 4096;
                while (cap < need)
                        cap *= 2;
                if (cap > bound)
                        cap = bound;
                uint8_t *q = dm_realloc(d->data, cap);
                if (!q)
                        return DREAM_E_NOMEM;
                d->data = q;
                d->cap = cap;
        }
        memcpy(d->data + d->len, p, n);
        d->len = need;
        return check_header(d);
}

int frame_decoder_next(struct frame_decoder *d, const uint8_t **ret_msg, uint32_t *ret_len)
{
        uint32_t len;
        int r;

        if (d->err)
                return d->err;
        r = check_header(d);
        if (r < 0)
                return r;
        if (d->len - d->pos < FRAME_HEADER_SIZE)
                return 0;
        len = frame_header_get(d->data + d->pos);
        if (d->len - d->pos - FRAME_HEADER_SIZE < len)
                return 0;
        *ret_msg = d->data + d->pos + FRAME_HEADER_SIZE;
        *ret_len = len;
        d->pos += FRAME_HEADER_SIZE + (size_t)len;
        return 1;
}

int frame_decoder_finish(const struct frame_decoder *d)
{
        if (d->err)
                return d->err;
        return d->len > d->pos ? DREAM_E_TRUNCATED : 0;
}

size_t frame_decoder_pending(const struct frame_decoder *d)
{
        return d->len - d->pos;
}

uint32_t frame_decoder_bad_length(const struct frame_decoder *d)
{
        return d->err ? d->bad_len : 0;
}

static int check_len(size_t len, uint32_t max_len)
{
        if (max_len == 0)
                max_len = DREAM_MAX_FRAME_DEFAULT;
        if (len == 0)
                return DREAM_E_EMPTY;
        if (len > max_len || len > UINT32_MAX)
                return DREAM_E_LIMIT;
        return 0;
}

int frame_encode_bytes(struct dm_buf *out, const void *msg, size_t len, uint32_t max_len)
{
        uint8_t hdr[FRAME_HEADER_SIZE];
        int r = check_len(len, max_len);

        if (r < 0)
                return r;
        r = dm_buf_reserve(out, FRAME_HEADER_SIZE + len);
        if (r < 0)
                return r;
        frame_header_put(hdr, (uint32_t)len);
        memcpy(out->data + out->len, hdr, FRAME_HEADER_SIZE);
        memcpy(out->data + out->len + FRAME_HEADER_SIZE, msg, len);
        out->len += FRAME_HEADER_SIZE + len;
        return 0;
}

int frame_encode(struct dm_buf *out, const ProtobufCMessage *msg, uint32_t max_len)
{
        uint8_t hdr[FRAME_HEADER_SIZE];
        size_t len = protobuf_c_message_get_packed_size(msg);
        int r = check_len(len, max_len);

        if (r < 0)
                return r;
        r = dm_buf_reserve(out, FRAME_HEADER_SIZE + len);
        if (r < 0)
                return r;
        frame_header_put(hdr, (uint32_t)len);
        memcpy(out->data + out->len, hdr, FRAME_HEADER_SIZE);
        if (protobuf_c_message_pack(msg, out->data + out->len + FRAME_HEADER_SIZE) != len)
                return DREAM_E_PROTO; /* cannot happen with a well-formed message */
        out->len += FRAME_HEADER_SIZE + len;
        return 0;
}
