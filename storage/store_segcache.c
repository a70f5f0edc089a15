/* The cache of opened segments shared by the readers of a store (STORE.md
 * "Random reads and the segment cache"). Owns segc_lock, segc, segc_bytes
 * and segc_tick (store_internal.h). */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/store_internal.h"

/* ---- cache of opened segments ----------------------------------------------------- */

/* A segment opened for random reads, over its own copy of the stored bytes
 * (a mapped value is valid only inside its transaction, and the map may move
 * when it grows). Segments are immutable and keyed by (dataset id, first
 * row); ids are never reused, and a drop marks the dataset's entries dead.
 * Entries are shared: refs counts the readers using one (under segc_lock). */
struct segc_entry {
        uint32_t id;
        uint64_t first;
        uint8_t *bytes; /* owned: the serialized segment */
        size_t len;
        size_t charge;           /* bytes counted in segc_bytes */
        struct gd_segment *seg;  /* opened over bytes */
        struct gd_cursor *spare; /* a cursor (with its decoded block) for the next reader */
        uint32_t refs;
        bool dead; /* dropped or evicted: freed when refs reach 0 */
        uint64_t tick;
        struct segc_entry *next;
};

static void segc_entry_free(struct segc_entry *e)
{
        if (!e)
                return;
        gd_cursor_free(e->spare);
        gd_segment_free(e->seg);
        dm_free(e->bytes);
        dm_free(e);
}

/* Unlink e (under segc_lock); the caller frees it when refs == 0. */
static void segc_unlink(struct store *s, struct segc_entry *e)
{
        struct segc_entry **pp;

        for (pp = &s->segc; *pp; pp = &(*pp)->next)
                if (*pp == e) {
                        *pp = e->next;
                        s->segc_bytes -= e->charge;
                        break;
                }
        e->dead = true;
}

/* Evict unused entries, least recently used first, until the cache fits. */
static void segc_trim(struct store *s)
{
        while (s->segc_bytes > s->opts.segment_cache_bytes) {
                struct segc_entry *e, *lru = NULL;
                for (e = s->segc; e; e = e->next)
                        if (e->refs == 0 && (!lru || e->tick < lru->tick))
                                lru = e;
                if (!lru)
                        break;
                segc_unlink(s, lru);
                segc_entry_free(lru);
        }
}

void store_i_segc_forget(struct store *s, uint32_t id)
{
        struct segc_entry *e, *next;

        pthread_mutex_lock(&s->segc_lock);
        for (e = s->segc; e; e = next) {
                next = e->next;
                if (e->id != id)
                        continue;
                segc_unlink(s, e);
                if (e->refs == 0)
                        segc_entry_free(e);
        }
        pthread_mutex_unlock(&s->segc_lock);
}

void store_i_segc_free_all(struct store *s)
{
        struct segc_entry *e, *next;

        for (e = s->segc; e; e = next) {
                next = e->next;
                segc_entry_free(e);
        }
        s->segc = NULL;
        s->segc_bytes = 0;
}

/* The segment stored at key (id, first) with value v (inside the caller's
 * read transaction), opened, with a cursor: from the cache, or copied and
 * opened now. Release both with store_i_segc_put. */
int store_i_segc_get(struct store *s, uint32_t id, uint64_t first, const MDB_val *v,
                     struct segc_entry **ret, struct gd_cursor **ret_cur)
{
        struct segc_entry *e, *mine = NULL;
        struct gd_cursor *cur = NULL;
        size_t head = v->mv_size < 64 ? v->mv_size : 64;
        int r;

        pthread_mutex_lock(&s->segc_lock);
        for (e = s->segc; e; e = e->next)
                if (e->id == id && e->first == first)
                        break;
        /* Same key, other bytes: impossible while ids are not reused, but a
         * stale entry must never be read. */
        if (e && (e->len != v->mv_size || memcmp(e->bytes, v->mv_data, head) != 0)) {
                segc_unlink(s, e);
                if (e->refs == 0)
                        segc_entry_free(e);
                e = NULL;
        }
        if (e) {
                e->refs++;
                e->tick = ++s->segc_tick;
                cur = e->spare;
                e->spare = NULL;
                pthread_mutex_unlock(&s->segc_lock);
                goto have;
        }
        pthread_mutex_unlock(&s->segc_lock);

        mine = dm_calloc(1, sizeof(*mine));
        if (!mine)
                return DREAM_E_NOMEM;
        mine->id = id;
        mine->first = first;
        mine->len = v->mv_size;
        mine->bytes = dm_malloc(v->mv_size ? v->mv_size : 1);
        if (!mine->bytes) {
                segc_entry_free(mine);
                return DREAM_E_NOMEM;
        }
        memcpy(mine->bytes, v->mv_data, v->mv_size);
        r = gd_segment_open(mine->bytes, mine->len, &mine->seg);
        if (r < 0) {
                segc_entry_free(mine);
                return r;
        }
        /* The copy, and about as much again for the opened dictionary. */
        mine->charge = 2 * mine->len + 4096;
        mine->refs = 1;
        pthread_mutex_lock(&s->segc_lock);
        for (e = s->segc; e; e = e->next) /* opened meanwhile by another reader? */
                if (e->id == id && e->first == first)
                        break;
        if (e && e->len == mine->len && memcmp(e->bytes, mine->bytes, head) == 0) {
                e->refs++;
                e->tick = ++s->segc_tick;
                cur = e->spare;
                e->spare = NULL;
                pthread_mutex_unlock(&s->segc_lock);
                segc_entry_free(mine);
                goto have;
        }
        e = mine;
        e->tick = ++s->segc_tick;
        if (e->charge <= s->opts.segment_cache_bytes) {
                e->next = s->segc;
                s->segc = e;
                s->segc_bytes += e->charge;
                segc_trim(s);
        } else {
                e->dead = true; /* larger than the cache: this reader's only */
        }
        pthread_mutex_unlock(&s->segc_lock);
have:
        if (!cur) {
                r = gd_cursor_new(e->seg, &cur);
                if (r < 0) {
                        pthread_mutex_lock(&s->segc_lock);
                        bool last = --e->refs == 0 && e->dead;
                        pthread_mutex_unlock(&s->segc_lock);
                        if (last)
                                segc_entry_free(e);
                        return r;
                }
        }
        *ret = e;
        *ret_cur = cur;
        return 0;
}

const struct gd_segment *store_i_segc_segment(const struct segc_entry *e)
{
        return e->seg;
}

void store_i_segc_put(struct store *s, struct segc_entry *e, struct gd_cursor *cur)
{
        bool last;

        if (!e)
                return;
        pthread_mutex_lock(&s->segc_lock);
        if (!e->dead && !e->spare) {
                e->spare = cur; /* kept with its decoded block */
                cur = NULL;
        }
        last = --e->refs == 0 && e->dead;
        if (!e->dead)
                segc_trim(s);
        pthread_mutex_unlock(&s->segc_lock);
        gd_cursor_free(cur);
        if (last)
                segc_entry_free(e);
}
