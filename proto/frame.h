/* Frames: a 4-byte big-endian length, then that many bytes of one message.
 *
 * The decoder is incremental: feed it whatever bytes arrived, in slices of
 * any size, and take complete frames out one at a time. Each frame's length
 * is checked against the limit as soon as its 4 header bytes are present,
 * before anything is allocated for its body; the buffer then grows only as
 * bytes actually arrive, so a peer that claims 64 MiB and sends 10 bytes
 * costs 10 bytes. Bytes buffered but not yet taken out are also bounded
 * (limit + header + FRAME_FEED_SLACK), so a caller that stops draining gets
 * DREAM_E_BUSY instead of unbounded memory.
 *
 * Errors are sticky: after one, the stream is out of sync and every later
 * call returns the same error; the connection should be closed.
 */
#ifndef DREAM_PROTO_FRAME_H
#define DREAM_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/buf.h"

#define FRAME_HEADER_SIZE 4u
/* Extra bytes beyond one maximal frame that may sit in the decoder undrained:
 * one socket read's worth of the next frames. */
#define FRAME_FEED_SLACK (1u << 20)
/* Buffer capacity kept between frames; more is returned to the allocator once
 * the bytes held fall below it. */
#define FRAME_KEEP_BYTES (64u << 10)

/* Embedded decoder (frame_decoder_init/frame_decoder_release). */
struct frame_decoder {
        uint8_t *data;    /* owned; bytes received, [pos, len) not yet taken */
        size_t len;       /* bytes in data */
        size_t cap;       /* allocated bytes */
        size_t pos;       /* start of the first untaken byte */
        uint32_t max_len; /* largest accepted message length */
        uint32_t bad_len; /* the length that caused DREAM_E_LIMIT / EMPTY */
        int err;          /* sticky error, 0 while healthy */
};

/* max_len: largest message length accepted, 1..UINT32_MAX - 4; 0 means
 * DREAM_MAX_FRAME_DEFAULT. Allocates nothing. */
void frame_decoder_init(struct frame_decoder *d, uint32_t max_len);
/* Frees the buffer; d may be NULL. Frames returned earlier become invalid. */
void frame_decoder_release(struct frame_decoder *d);

/* Append n received bytes (copied). Invalidates any frame returned before.
 * 0, or: DREAM_E_LIMIT (a header claims more than max_len), DREAM_E_EMPTY (a
 * header claims length 0), both sticky and also reported by
 * frame_decoder_next(); DREAM_E_BUSY (more than max_len + header +
 * FRAME_FEED_SLACK bytes would be held undrained: nothing was taken, take
 * frames out and feed again) or DREAM_E_NOMEM (nothing was taken, may be
 * retried), neither sticky. */
int frame_decoder_feed(struct frame_decoder *d, const void *p, size_t n);

/* Take the next complete frame. Returns 1 and sets *ret_msg / *ret_len to
 * the message bytes (borrowed: valid until the next feed or release); 0 when
 * more bytes are needed (outputs untouched); or a negative error as for
 * frame_decoder_feed. */
int frame_decoder_next(struct frame_decoder *d, const uint8_t **ret_msg, uint32_t *ret_len);

/* At end of stream: 0 if no partial frame is pending, DREAM_E_TRUNCATED if
 * one is, or the sticky error. */
int frame_decoder_finish(const struct frame_decoder *d);

/* Bytes held and not yet returned as frames. */
size_t frame_decoder_pending(const struct frame_decoder *d);

/* After DREAM_E_LIMIT or DREAM_E_EMPTY from a header: the length it claimed
 * (for the log line). 0 otherwise. */
uint32_t frame_decoder_bad_length(const struct frame_decoder *d);

/* Write a frame header for a message of len bytes. */
void frame_header_put(uint8_t hdr[FRAME_HEADER_SIZE], uint32_t len);
/* Read a frame header. */
uint32_t frame_header_get(const uint8_t hdr[FRAME_HEADER_SIZE]);

/* Append header + bytes to out. 0, DREAM_E_EMPTY (len 0), DREAM_E_LIMIT
 * (len > max_len; max_len 0 = DREAM_MAX_FRAME_DEFAULT), DREAM_E_NOMEM /
 * DREAM_E_OVERFLOW. On failure out is unchanged. */
int frame_encode_bytes(struct dm_buf *out, const void *msg, size_t len, uint32_t max_len);

/* Append header + the packed message to out, packing straight into the
 * buffer. Errors and guarantees as frame_encode_bytes. An empty message (all
 * fields default) packs to 0 bytes and is refused with DREAM_E_EMPTY; the
 * envelopes are never empty in practice as callers set a body. */
int frame_encode(struct dm_buf *out, const ProtobufCMessage *msg, uint32_t max_len);

#endif
