/* Fixed-width integers at unaligned addresses, in a given byte order
 * (memcpy + htobe/htole, house rule 8). */
#ifndef DREAM_COMMON_BYTES_H
#define DREAM_COMMON_BYTES_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline void dm_put_be32(uint8_t *p, uint32_t v)
{
        v = htobe32(v);
        memcpy(p, &v, 4);
}

static inline void dm_put_be64(uint8_t *p, uint64_t v)
{
        v = htobe64(v);
        memcpy(p, &v, 8);
}

static inline uint32_t dm_get_be32(const uint8_t *p)
{
        uint32_t v;
        memcpy(&v, p, 4);
        return be32toh(v);
}

static inline uint64_t dm_get_be64(const uint8_t *p)
{
        uint64_t v;
        memcpy(&v, p, 8);
        return be64toh(v);
}

static inline void dm_put_le32(uint8_t *p, uint32_t v)
{
        v = htole32(v);
        memcpy(p, &v, 4);
}

static inline void dm_put_le64(uint8_t *p, uint64_t v)
{
        v = htole64(v);
        memcpy(p, &v, 8);
}

static inline uint32_t dm_get_le32(const uint8_t *p)
{
        uint32_t v;
        memcpy(&v, p, 4);
        return le32toh(v);
}

static inline uint64_t dm_get_le64(const uint8_t *p)
{
        uint64_t v;
        memcpy(&v, p, 8);
        return le64toh(v);
}

#endif
