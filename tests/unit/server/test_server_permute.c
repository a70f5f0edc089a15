/* Batch permutations (bijective, deterministic, seed- and epoch-dependent)
 * and resume tokens (round trip, tampering refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "server/permute.h"

static void check_bijective(uint64_t n, uint64_t seed, uint32_t epoch)
{
        struct srv_perm p;
        uint8_t *seen = calloc(n + 1, 1);

        assert_non_null(seen);
        srv_perm_init(&p, n, seed, epoch);
        for (uint64_t i = 0; i < n; i++) {
                uint64_t x = srv_perm_at(&p, i);
                assert_true(x < n);
                assert_false(seen[x]);
                seen[x] = 1;
        }
        free(seen);
}

static void bijective(void **state)
{
        static const uint64_t sizes[] = {1,   2,   3,   4,   5,    7,    8,    15,    16,    17,
                                         100, 255, 256, 257, 1000, 4095, 4096, 65537, 100003};
        (void)state;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                for (uint64_t seed = 0; seed < 3; seed++)
                        check_bijective(sizes[i], seed, (uint32_t)seed * 7);
}

static void deterministic_and_keyed(void **state)
{
        const uint64_t n = 10000;
        struct srv_perm a, b, c, e;
        uint64_t same_seed = 0, same_epoch = 0, fixed = 0;

        (void)state;
        srv_perm_init(&a, n, 42, 0);
        srv_perm_init(&b, n, 42, 0);
        srv_perm_init(&c, n, 43, 0);
        srv_perm_init(&e, n, 42, 1);
        for (uint64_t i = 0; i < n; i++) {
                uint64_t x = srv_perm_at(&a, i);
                assert_int_equal(x, srv_perm_at(&b, i));
                same_seed += x == srv_perm_at(&c, i);
                same_epoch += x == srv_perm_at(&e, i);
                fixed += x == i;
        }
        /* A random permutation agrees with another on ~1 position. */
        assert_true(same_seed < 50);
        assert_true(same_epoch < 50);
        assert_true(fixed < 50);
        /* Pinned values: the permutation is part of the resume contract. */
        srv_perm_init(&a, 1000, 42, 3);
        assert_int_equal(srv_perm_at(&a, 0), 65);
        assert_int_equal(srv_perm_at(&a, 1), 145);
        assert_int_equal(srv_perm_at(&a, 2), 680);
        assert_int_equal(srv_perm_at(&a, 3), 51);
        srv_perm_init(&a, 0, 0, 0);
        srv_perm_init(&a, 1, 99, 3);
        assert_int_equal(srv_perm_at(&a, 0), 0);
}

/* srv_perm_fill gives srv_perm_at's images, for any start and count (run
 * by large_domain). */
static void fill_matches(void)
{
        static const uint64_t sizes[] = {1, 2, 3, 9, 100, 1000, 65537, 3000000};
        uint64_t out[300];
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                struct srv_perm p;
                uint64_t n = sizes[s];
                srv_perm_init(&p, n, 7 + s, (uint32_t)s);
                for (uint64_t first = 0; first < n; first += n / 5 + 1) {
                        uint64_t count = n - first < 300 ? n - first : 300 - first % 13;
                        srv_perm_fill(&p, first, count, out);
                        for (uint64_t i = 0; i < count; i++)
                                assert_int_equal(out[i], srv_perm_at(&p, first + i));
                }
        }
}

static void large_domain(void **state)
{
        struct srv_perm p;
        const uint64_t n = (1ull << 40) + 12345;

        (void)state;
        srv_perm_init(&p, n, 5, 5);
        for (uint64_t i = 0; i < 1000; i++) {
                uint64_t x = srv_perm_at(&p, n - 1 - i);
                assert_true(x < n);
        }
        fill_matches();
}

static void resume_tokens(void **state)
{
        struct srv_resume r = {2, 9, 0xdeadbeefcafeull, 1000, 1000, 640, 7}, out;
        uint8_t tok[SRV_RESUME_TOKEN_SIZE];

        (void)state;
        srv_resume_encode(&r, tok);
        assert_int_equal(srv_resume_decode(tok, sizeof(tok), &out), 0);
        assert_int_equal(out.mode, r.mode);
        assert_int_equal(out.epoch, r.epoch);
        assert_int_equal(out.seed, r.seed);
        assert_int_equal(out.n, r.n);
        assert_int_equal(out.total, r.total);
        assert_int_equal(out.position, r.position);
        assert_int_equal(out.dataset_id, 7);
        assert_int_equal(srv_resume_decode(tok, sizeof(tok) - 1, &out), DREAM_E_INVAL);
        for (size_t i = 0; i < sizeof(tok); i++) {
                tok[i] ^= 0x10;
                assert_int_equal(srv_resume_decode(tok, sizeof(tok), &out), DREAM_E_INVAL);
                tok[i] ^= 0x10;
        }
        r.position = r.total + 1;
        srv_resume_encode(&r, tok);
        assert_int_equal(srv_resume_decode(tok, sizeof(tok), &out), DREAM_E_INVAL);
        /* Every token names the dataset it was made on (ids start at 1). */
        r.position = 0;
        r.dataset_id = 0;
        srv_resume_encode(&r, tok);
        assert_int_equal(srv_resume_decode(tok, sizeof(tok), &out), DREAM_E_INVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(bijective),
            cmocka_unit_test(deterministic_and_keyed),
            cmocka_unit_test(large_domain),
            cmocka_unit_test(resume_tokens),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
