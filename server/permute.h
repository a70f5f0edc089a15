/* Seeded bijective permutations of [0, n) without O(n) memory, for the
 * shuffled batch streams: a 4-round Feistel network over the smallest even
 * power of two >= n, with cycle walking back into [0, n). The same
 * (n, seed, epoch) always gives the same permutation, on every platform.
 *
 * Resume tokens: the opaque GetBatches position, (mode, seed, epoch, n,
 * total, position, dataset id), encoded in SRV_RESUME_TOKEN_SIZE bytes with a check
 * word; decoding untrusted bytes checks everything.
 */
#ifndef DREAM_SERVER_PERMUTE_H
#define DREAM_SERVER_PERMUTE_H

#include <stddef.h>
#include <stdint.h>

/* Embedded; srv_perm_init allocates nothing. */
struct srv_perm {
        uint64_t n;         /* domain size */
        uint32_t half_bits; /* bits of each Feistel half */
        uint64_t half_mask;
        uint64_t keys[4]; /* round keys */
};

void srv_perm_init(struct srv_perm *p, uint64_t n, uint64_t seed, uint32_t epoch);
/* The image of i (i < n) in [0, n). */
uint64_t srv_perm_at(const struct srv_perm *p, uint64_t i);
/* out[j] = srv_perm_at(p, first + j) for j < count (first + count <= n). */
void srv_perm_fill(const struct srv_perm *p, uint64_t first, uint64_t count, uint64_t *out);

#define SRV_RESUME_TOKEN_SIZE 56u

struct srv_resume {
        uint32_t mode; /* BatchMode value */
        uint32_t epoch;
        uint64_t seed;
        uint64_t n;          /* rows of the dataset when the stream started */
        uint64_t total;      /* positions in the epoch (n, the budget, or m) */
        uint64_t position;   /* positions served */
        uint32_t dataset_id; /* the dataset the stream read: a token never resumes on
                                a dataset dropped and created again under its name */
};

void srv_resume_encode(const struct srv_resume *r, uint8_t out[SRV_RESUME_TOKEN_SIZE]);
/* 0 or DREAM_E_INVAL (wrong length, version or check word, position > total). */
int srv_resume_decode(const uint8_t *in, size_t len, struct srv_resume *ret);

#endif
