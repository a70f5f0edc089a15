/* libFuzzer target: the incremental frame decoder on a hostile byte stream.
 * Invariants checked (abort on violation): no frame longer than the limit,
 * no zero-length frame, frames re-encode to the same bytes, the decoder
 * never holds more than limit + header + slack. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "proto/frame.h"
#include "proto/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_frame(const uint8_t *msg, uint32_t len, uint32_t limit)
{
        struct dm_buf b;
        proto_request *req = NULL;
        proto_response *resp = NULL;
        char err[256];

        if (len == 0 || len > limit)
                abort();
        dm_buf_init(&b);
        if (frame_encode_bytes(&b, msg, len, limit) == 0) {
                if (b.len != len + FRAME_HEADER_SIZE || frame_header_get(b.data) != len ||
                    memcmp(b.data + FRAME_HEADER_SIZE, msg, len) != 0)
                        abort();
        }
        dm_buf_release(&b);
        if (proto_request_decode(msg, len, err, sizeof(err), &req) == 0)
                proto_request_free(req);
        if (proto_response_decode(msg, len, err, sizeof(err), &resp) == 0)
                proto_response_free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct frame_decoder d;
        uint32_t limit;
        size_t step, pos;
        int r = 0;

        if (size < 1)
                return 0;
        limit = (data[0] & 1) ? 4096 : 0;
        step = (size_t)(data[0] >> 1) + 1;
        frame_decoder_init(&d, limit);
        limit = d.max_len;
        for (pos = 1; pos < size && r >= 0; pos += step) {
                size_t n = size - pos < step ? size - pos : step;
                const uint8_t *msg;
                uint32_t len;

                r = frame_decoder_feed(&d, data + pos, n);
                while (r >= 0 && (r = frame_decoder_next(&d, &msg, &len)) == 1)
                        check_frame(msg, len, limit);
                if (frame_decoder_pending(&d) >
                    (size_t)limit + FRAME_HEADER_SIZE + FRAME_FEED_SLACK)
                        abort();
        }
        if (r < 0 && r != DREAM_E_LIMIT && r != DREAM_E_EMPTY && r != DREAM_E_NOMEM &&
            r != DREAM_E_BUSY)
                abort();
        r = frame_decoder_finish(&d);
        if (r != 0 && r != DREAM_E_TRUNCATED && r != DREAM_E_LIMIT && r != DREAM_E_EMPTY)
                abort();
        frame_decoder_release(&d);
        return 0;
}
