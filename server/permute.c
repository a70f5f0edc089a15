#include "server/permute.h"

#include <string.h>

#include "common/err.h"

static uint64_t mix64(uint64_t x)
{
        /* splitmix64 finaliser */
        x += 0x9e3779b97f4a7c15ull;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
}

void srv_perm_init(struct srv_perm *p, uint64_t n, uint64_t seed, uint32_t epoch)
{
        uint32_t bits = 0;
        uint64_t k;

        memset(p, 0, sizeof(*p));
        p->n = n;
        /* Smallest bits with 2^bits >= n, rounded up to even, at least 2. */
        while (bits < 64 && (bits == 0 || (n - 1) >> bits))
                bits++;
        if (bits < 2)
                bits = 2;
        bits += bits & 1;
        p->half_bits = bits / 2;
        p->half_mask = (p->half_bits >= 64) ? UINT64_MAX : ((1ull << p->half_bits) - 1);
        k = mix64(seed ^ mix64(0x64726561ull + epoch));
        for (int i = 0; i < 4; i++) {
                k = mix64(k + (uint64_t)i);
                p->keys[i] = k;
        }
}

static uint64_t feistel(const struct srv_perm *p, uint64_t x)
{
        uint64_t l = (x >> p->half_bits) & p->half_mask;
        uint64_t r = x & p->half_mask;

        for (int i = 0; i < 4; i++) {
                uint64_t t = l ^ (mix64(r ^ p->keys[i]) & p->half_mask);
                l = r;
                r = t;
        }
        return (l << p->half_bits) | r;
}

static inline uint64_t perm_at(const struct srv_perm *p, uint64_t i)
{
        uint64_t x = i;

        if (p->n <= 1)
                return 0;
        /* Cycle walking: the domain is < 4n, so few steps on average; the
         * walk ends because feistel() is a bijection on [0, 2^bits) and i is
         * in [0, n). */
        do
                x = feistel(p, x);
        while (x >= p->n);
        return x;
}

uint64_t srv_perm_at(const struct srv_perm *p, uint64_t i)
{
        return perm_at(p, i);
}

void srv_perm_fill(const struct srv_perm *p, uint64_t first, uint64_t count, uint64_t *out)
{
        uint64_t i = 0;

        if (p->n <= 1) {
                for (; i < count; i++)
                        out[i] = 0;
                return;
        }
        /* The first step of 8 walks at once, without a branch: their rounds
         * are independent and overlap in the CPU (one walk is a chain of
         * dependent multiplies); then each walk that left [0, n) goes on. */
        for (; i + 8 <= count; i += 8) {
                uint64_t x[8];
                for (int j = 0; j < 8; j++)
                        x[j] = feistel(p, first + i + (uint64_t)j);
                for (int j = 0; j < 8; j++) {
                        while (x[j] >= p->n)
                                x[j] = feistel(p, x[j]);
                        out[i + (uint64_t)j] = x[j];
                }
        }
        for (; i < count; i++)
                out[i] = perm_at(p, first + i);
}

#define RESUME_VERSION 2u

static void put64(uint8_t *o, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                o[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *in)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v |= (uint64_t)in[i] << (8 * i);
        return v;
}

static uint64_t check_word(const uint8_t *b, size_t n)
{
        uint64_t h = 0x6472656d746f6b6eull;
        for (size_t i = 0; i < n; i += 8)
                h = mix64(h ^ get64(b + i));
        return h;
}

void srv_resume_encode(const struct srv_resume *r, uint8_t out[SRV_RESUME_TOKEN_SIZE])
{
        put64(out, (uint64_t)RESUME_VERSION | (uint64_t)r->mode << 8 | (uint64_t)r->epoch << 32);
        put64(out + 8, r->seed);
        put64(out + 16, r->n);
        put64(out + 24, r->total);
        put64(out + 32, r->position);
        put64(out + 40, r->dataset_id);
        put64(out + 48, check_word(out, 48));
}

int srv_resume_decode(const uint8_t *in, size_t len, struct srv_resume *ret)
{
        struct srv_resume r;
        uint64_t w;

        if (len != SRV_RESUME_TOKEN_SIZE)
                return DREAM_E_INVAL;
        if (get64(in + 48) != check_word(in, 48))
                return DREAM_E_INVAL;
        w = get64(in);
        if ((w & 0xff) != RESUME_VERSION)
                return DREAM_E_INVAL;
        r.mode = (uint32_t)((w >> 8) & 0xffffff);
        r.epoch = (uint32_t)(w >> 32);
        r.seed = get64(in + 8);
        r.n = get64(in + 16);
        r.total = get64(in + 24);
        r.position = get64(in + 32);
        w = get64(in + 40);
        if (r.position > r.total || w == 0 || w > UINT32_MAX)
                return DREAM_E_INVAL;
        r.dataset_id = (uint32_t)w;
        *ret = r;
        return 0;
}
