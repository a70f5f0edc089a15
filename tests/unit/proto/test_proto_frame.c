/* Frame decoder and encoder: every split point, boundary lengths, hostile
 * headers, truncation, pipelining, allocation failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/limits.h"
#include "proto/frame.h"
#include "proto/validate.h"

/* Frames taken out of a decoder, copied (the decoder's memory is borrowed). */
struct got {
        size_t n;
        uint32_t len[16];
        uint8_t *msg[16];
};

static void got_free(struct got *g)
{
        for (size_t i = 0; i < g->n; i++)
                free(g->msg[i]);
        g->n = 0;
}

static int drain(struct frame_decoder *d, struct got *g)
{
        const uint8_t *m;
        uint32_t len;
        int r;

        while ((r = frame_decoder_next(d, &m, &len)) == 1) {
                assert_true(g->n < 16);
                g->msg[g->n] = malloc(len);
                memcpy(g->msg[g->n], m, len);
                g->len[g->n] = len;
                g->n++;
        }
        return r;
}

static void put_frame(struct dm_buf *b, uint32_t len, uint8_t fill)
{
        uint8_t *tmp = malloc(len);
        memset(tmp, fill, len);
        assert_int_equal(frame_encode_bytes(b, tmp, len, 0), 0);
        free(tmp);
}

static void test_header_codec(void **state)
{
        uint8_t h[4];
        (void)state;
        frame_header_put(h, 0x01020304u);
        assert_int_equal(h[0], 1);
        assert_int_equal(h[3], 4);
        assert_int_equal(frame_header_get(h), 0x01020304u);
        frame_header_put(h, UINT32_MAX);
        assert_int_equal(frame_header_get(h), UINT32_MAX);
}

/* Three frames (1, 300 and 5 bytes) split in two at every byte boundary, and
 * in three at every pair of boundaries. */
static void test_split_every_boundary(void **state)
{
        struct dm_buf b;
        (void)state;
        dm_buf_init(&b);
        put_frame(&b, 1, 0xa1);
        put_frame(&b, 300, 0xb2);
        put_frame(&b, 5, 0xc3);
        for (size_t i = 0; i <= b.len; i++) {
                for (size_t j = i; j <= b.len; j += (i % 7 == 0) ? 1 : 29) {
                        struct frame_decoder d;
                        struct got g = {0};
                        frame_decoder_init(&d, 1000);
                        assert_int_equal(frame_decoder_feed(&d, b.data, i), 0);
                        assert_int_equal(drain(&d, &g), 0);
                        assert_int_equal(frame_decoder_feed(&d, b.data + i, j - i), 0);
                        assert_int_equal(drain(&d, &g), 0);
                        assert_int_equal(frame_decoder_feed(&d, b.data + j, b.len - j), 0);
                        assert_int_equal(drain(&d, &g), 0);
                        assert_int_equal(g.n, 3);
                        assert_int_equal(g.len[0], 1);
                        assert_int_equal(g.len[1], 300);
                        assert_int_equal(g.len[2], 5);
                        assert_int_equal(g.msg[0][0], 0xa1);
                        assert_int_equal(g.msg[1][299], 0xb2);
                        assert_int_equal(g.msg[2][4], 0xc3);
                        assert_int_equal(frame_decoder_finish(&d), 0);
                        assert_int_equal(frame_decoder_pending(&d), 0);
                        got_free(&g);
                        frame_decoder_release(&d);
                }
        }
        dm_buf_release(&b);
}

static void test_dribble(void **state)
{
        struct dm_buf b;
        struct frame_decoder d;
        struct got g = {0};
        (void)state;
        dm_buf_init(&b);
        put_frame(&b, 1000, 0x11);
        put_frame(&b, 2, 0x22);
        frame_decoder_init(&d, 0);
        for (size_t i = 0; i < b.len; i++) {
                assert_int_equal(frame_decoder_feed(&d, b.data + i, 1), 0);
                assert_int_equal(drain(&d, &g), 0);
                if (i < 1003)
                        assert_int_equal(g.n, 0);
        }
        assert_int_equal(g.n, 2);
        assert_int_equal(g.len[0], 1000);
        assert_int_equal(g.len[1], 2);
        got_free(&g);
        frame_decoder_release(&d);
        dm_buf_release(&b);
}

static void test_pipelined(void **state)
{
        struct dm_buf b;
        struct frame_decoder d;
        struct got g = {0};
        (void)state;
        dm_buf_init(&b);
        for (uint32_t i = 1; i <= 10; i++)
                put_frame(&b, i * 3, (uint8_t)i);
        put_frame(&b, 7, 0); /* the 11th frame arrives in part */
        frame_decoder_init(&d, 0);
        assert_int_equal(frame_decoder_feed(&d, b.data, b.len - 3), 0);
        assert_int_equal(drain(&d, &g), 0);
        assert_int_equal(g.n, 10);
        for (uint32_t i = 1; i <= 10; i++) {
                assert_int_equal(g.len[i - 1], i * 3);
                assert_int_equal(g.msg[i - 1][0], i);
        }
        assert_int_equal(frame_decoder_pending(&d), 8);
        assert_int_equal(frame_decoder_finish(&d), DREAM_E_TRUNCATED);
        assert_int_equal(frame_decoder_feed(&d, b.data + b.len - 3, 3), 0);
        assert_int_equal(drain(&d, &g), 0);
        assert_int_equal(g.n, 11);
        assert_int_equal(frame_decoder_finish(&d), 0);
        got_free(&g);
        frame_decoder_release(&d);
        dm_buf_release(&b);
}

/* A header alone with the given length, against the given limit: the result
 * of feed and next, and the bytes allocated. */
static int header_only(uint32_t limit, uint32_t len, size_t *ret_cap)
{
        struct frame_decoder d;
        uint8_t h[4];
        const uint8_t *m;
        uint32_t ml;
        int r, r2;

        frame_header_put(h, len);
        frame_decoder_init(&d, limit);
        r = frame_decoder_feed(&d, h, 4);
        r2 = frame_decoder_next(&d, &m, &ml);
        assert_int_equal(r < 0 ? r : 0, r2 < 0 ? r2 : 0);
        if (r < 0) {
                assert_int_equal(frame_decoder_bad_length(&d), len);
                /* Sticky. */
                assert_int_equal(frame_decoder_feed(&d, "x", 1), r);
                assert_int_equal(frame_decoder_next(&d, &m, &ml), r);
                assert_int_equal(frame_decoder_finish(&d), r);
        } else {
                assert_int_equal(r2, 0); /* body still missing */
                assert_int_equal(frame_decoder_finish(&d), DREAM_E_TRUNCATED);
        }
        *ret_cap = d.cap;
        frame_decoder_release(&d);
        return r;
}

static void test_lengths(void **state)
{
        const uint32_t lim = DREAM_MAX_FRAME_DEFAULT;
        size_t cap;
        (void)state;
        assert_int_equal(header_only(0, 0, &cap), DREAM_E_EMPTY);
        assert_int_equal(header_only(0, 1, &cap), 0);
        assert_int_equal(header_only(0, lim - 1, &cap), 0);
        assert_true(cap <= 4096); /* the claim allocates nothing */
        assert_int_equal(header_only(0, lim, &cap), 0);
        assert_true(cap <= 4096);
        assert_int_equal(header_only(0, lim + 1, &cap), DREAM_E_LIMIT);
        assert_int_equal(header_only(0, 1u << 31, &cap), DREAM_E_LIMIT);
        assert_true(cap <= 4096);
        assert_int_equal(header_only(0, UINT32_MAX, &cap), DREAM_E_LIMIT);
        assert_true(cap <= 4096);
        /* A configured limit. */
        assert_int_equal(header_only(100, 100, &cap), 0);
        assert_int_equal(header_only(100, 101, &cap), DREAM_E_LIMIT);
}

/* Whole frames of 1, limit - 1 and limit bytes at a small limit, and the
 * default limit at its exact boundary. */
static void full_frame(uint32_t limit, uint32_t len, int expect)
{
        struct dm_buf b;
        struct frame_decoder d;
        const uint8_t *m = NULL;
        uint32_t ml = 0;
        uint8_t h[4];
        int r;

        dm_buf_init(&b);
        frame_header_put(h, len);
        assert_int_equal(dm_buf_append(&b, h, 4), 0);
        assert_int_equal(dm_buf_reserve(&b, len), 0);
        memset(b.data + 4, 0x5a, len);
        b.len += len;
        frame_decoder_init(&d, limit);
        r = frame_decoder_feed(&d, b.data, b.len);
        if (r == 0)
                r = frame_decoder_next(&d, &m, &ml);
        assert_int_equal(r, expect);
        if (expect == 1) {
                assert_int_equal(ml, len);
                assert_int_equal(m[len - 1], 0x5a);
                assert_int_equal(frame_decoder_next(&d, &m, &ml), 0);
        }
        frame_decoder_release(&d);
        dm_buf_release(&b);
}

static void test_full_frames(void **state)
{
        (void)state;
        full_frame(4096, 1, 1);
        full_frame(4096, 4095, 1);
        full_frame(4096, 4096, 1);
        full_frame(4096, 4097, DREAM_E_LIMIT);
        full_frame(0, DREAM_MAX_FRAME_DEFAULT - 1, 1);
        full_frame(0, DREAM_MAX_FRAME_DEFAULT, 1);
}

/* Zero length after a good frame: the good one is delivered first. */
static void test_zero_after_good(void **state)
{
        struct dm_buf b;
        struct frame_decoder d;
        struct got g = {0};
        uint8_t zero[4] = {0, 0, 0, 0};
        (void)state;
        dm_buf_init(&b);
        put_frame(&b, 3, 1);
        dm_buf_append(&b, zero, 4);
        frame_decoder_init(&d, 0);
        assert_int_equal(frame_decoder_feed(&d, b.data, b.len), 0);
        assert_int_equal(drain(&d, &g), DREAM_E_EMPTY);
        assert_int_equal(g.n, 1);
        got_free(&g);
        frame_decoder_release(&d);
        dm_buf_release(&b);
}

static void test_truncated(void **state)
{
        struct dm_buf b;
        (void)state;
        dm_buf_init(&b);
        put_frame(&b, 50, 9);
        for (size_t cut = 1; cut < b.len; cut++) {
                struct frame_decoder d;
                struct got g = {0};
                frame_decoder_init(&d, 0);
                assert_int_equal(frame_decoder_feed(&d, b.data, cut), 0);
                assert_int_equal(drain(&d, &g), 0);
                assert_int_equal(g.n, 0);
                assert_int_equal(frame_decoder_finish(&d), DREAM_E_TRUNCATED);
                frame_decoder_release(&d);
        }
        dm_buf_release(&b);
}

/* Undrained input is bounded; the bound error is not sticky. */
static void test_feed_bound(void **state)
{
        struct frame_decoder d;
        size_t big = 100 + FRAME_HEADER_SIZE + FRAME_FEED_SLACK;
        uint8_t *p = calloc(1, big + 1);
        struct dm_buf b;
        struct got g = {0};
        (void)state;
        dm_buf_init(&b);
        put_frame(&b, 100, 1);
        memcpy(p, b.data, b.len);
        /* After the first frame come headers of 1-byte frames: 0,0,0,1,x */
        for (size_t i = b.len; i + 5 <= big + 1; i += 5) {
                p[i + 3] = 1;
                p[i + 4] = 0x77;
        }
        frame_decoder_init(&d, 100);
        assert_int_equal(frame_decoder_feed(&d, p, big + 1), DREAM_E_BUSY);
        assert_int_equal(frame_decoder_feed(&d, p, b.len), 0);
        assert_int_equal(drain(&d, &g), 0);
        assert_int_equal(g.n, 1);
        got_free(&g);
        frame_decoder_release(&d);
        dm_buf_release(&b);
        free(p);
}

/* After a large frame is taken, the big buffer is given back. */
static void test_shrink(void **state)
{
        struct dm_buf b;
        struct frame_decoder d;
        struct got g = {0};
        (void)state;
        dm_buf_init(&b);
        put_frame(&b, 1 << 20, 3);
        frame_decoder_init(&d, 0);
        assert_int_equal(frame_decoder_feed(&d, b.data, b.len), 0);
        assert_int_equal(drain(&d, &g), 0);
        assert_int_equal(g.n, 1);
        assert_true(d.cap >= (1u << 20));
        assert_int_equal(frame_decoder_feed(&d, b.data, 2), 0);
        assert_true(d.cap <= FRAME_KEEP_BYTES);
        got_free(&g);
        frame_decoder_release(&d);
        frame_decoder_release(NULL);
        dm_buf_release(&b);
}

static void test_alloc_failure(void **state)
{
        struct dm_buf b;
        (void)state;
        dm_buf_init(&b);
        put_frame(&b, 10000, 4);
        for (unsigned long n = 1; n < 50; n++) {
                struct frame_decoder d;
                struct got g = {0};
                int r = 0;
                frame_decoder_init(&d, 0);
                dm_alloc_fail_at(n, 0);
                for (size_t i = 0; i < b.len && r == 0; i += 1000) {
                        size_t k = b.len - i < 1000 ? b.len - i : 1000;
                        r = frame_decoder_feed(&d, b.data + i, k);
                        if (r == DREAM_E_NOMEM) /* not sticky: retry */
                                r = frame_decoder_feed(&d, b.data + i, k);
                }
                dm_alloc_fail_at(0, 0);
                assert_int_equal(r, 0);
                assert_int_equal(drain(&d, &g), 0);
                assert_int_equal(g.n, 1);
                got_free(&g);
                frame_decoder_release(&d);
        }
        dm_buf_release(&b);
}

static void test_encode_errors(void **state)
{
        struct dm_buf b;
        uint8_t x[8] = {0};
        (void)state;
        dm_buf_init(&b);
        assert_int_equal(frame_encode_bytes(&b, x, 0, 0), DREAM_E_EMPTY);
        assert_int_equal(frame_encode_bytes(&b, x, 8, 7), DREAM_E_LIMIT);
        assert_int_equal(b.len, 0);
        dm_alloc_fail_at(1, 0);
        assert_int_equal(frame_encode_bytes(&b, x, 8, 0), DREAM_E_NOMEM);
        dm_alloc_fail_at(0, 0);
        assert_int_equal(b.len, 0);
        assert_int_equal(frame_encode_bytes(&b, x, 8, 8), 0);
        assert_int_equal(b.len, 12);
        dm_buf_release(&b);
}

/* A real Request through frame_encode, the decoder and unpack. */
static void test_message_round_trip(void **state)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Flush fl = DREAM__V1__FLUSH__INIT;
        Dream__V1__Request empty = DREAM__V1__REQUEST__INIT;
        struct frame_decoder d;
        struct dm_buf b;
        const uint8_t *m;
        uint32_t ml;
        proto_request *out = NULL;
        (void)state;

        fl.dataset = "iris";
        req.request_id = 77;
        req.body_case = DREAM__V1__REQUEST__BODY_FLUSH;
        req.flush = &fl;
        dm_buf_init(&b);
        assert_int_equal(frame_encode(&b, &empty.base, 0), DREAM_E_EMPTY);
        assert_int_equal(frame_encode(&b, &req.base, 4), DREAM_E_LIMIT);
        assert_int_equal(b.len, 0);
        assert_int_equal(frame_encode(&b, &req.base, 0), 0);
        assert_int_equal(frame_encode(&b, &req.base, 0), 0);
        frame_decoder_init(&d, 0);
        assert_int_equal(frame_decoder_feed(&d, b.data, b.len), 0);
        for (int k = 0; k < 2; k++) {
                assert_int_equal(frame_decoder_next(&d, &m, &ml), 1);
                assert_int_equal(proto_request_decode(m, ml, NULL, 0, &out), 0);
                assert_int_equal(out->request_id, 77);
                assert_int_equal(out->body_case, DREAM__V1__REQUEST__BODY_FLUSH);
                assert_string_equal(out->flush->dataset, "iris");
                proto_request_free(out);
        }
        assert_int_equal(frame_decoder_next(&d, &m, &ml), 0);
        frame_decoder_release(&d);
        dm_buf_release(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_header_codec),
            cmocka_unit_test(test_split_every_boundary),
            cmocka_unit_test(test_dribble),
            cmocka_unit_test(test_pipelined),
            cmocka_unit_test(test_lengths),
            cmocka_unit_test(test_full_frames),
            cmocka_unit_test(test_zero_after_good),
            cmocka_unit_test(test_truncated),
            cmocka_unit_test(test_feed_bound),
            cmocka_unit_test(test_shrink),
            cmocka_unit_test(test_alloc_failure),
            cmocka_unit_test(test_encode_errors),
            cmocka_unit_test(test_message_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
