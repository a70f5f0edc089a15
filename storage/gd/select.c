/* Stage 2: base-bit selection minimising S(B) (docs/method.md section 5). */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "storage/gd/gd.h"
#include "storage/gd/internal.h"

struct bit_rank {
        double h;
        uint32_t pos;
};

static int cmp_rank(const void *a, const void *b)
{
        const struct bit_rank *x = a, *y = b;
        if (x->h != y->h)
                return x->h < y->h ? -1 : 1;
        return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

void gd_selection_release(struct gd_selection *s)
{
        if (!s)
                return;
        dm_free(s->is_base);
        dm_free(s->base_of);
        memset(s, 0, sizeof(*s));
}

int gd_select(const struct gd_planes *p, uint32_t patience, struct gd_selection *ret)
{
        const uint64_t n = p->n_rows;
        const uint32_t l_c = p->n_bits;
        struct gd_selection sel = {0};
        struct gd_groups g;
        struct bit_rank *order = NULL;
        double *h = NULL;
        uint32_t n_const = 0, n_order = 0;
        int r;

        if (n == 0)
                return DREAM_E_EMPTY;
        r = gd_groups_init(&g, NULL, n);
        if (r < 0)
                return r;
        h = dm_mallocarray(l_c, sizeof(double));
        order = dm_mallocarray(l_c, sizeof(*order));
        sel.is_base = dm_calloc(l_c, 1);
        if (!h || !order || !sel.is_base) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        r = gd_entropy(p, NULL, n, h);
        if (r < 0)
                goto out;
        for (uint32_t b = 0; b < l_c; b++) {
                if (h[b] == 0.0) {
                        sel.is_base[b] = 1; /* constant bits are free base bits */
                        n_const++;
                } else {
                        order[n_order++] = (struct bit_rank){h[b], b};
                }
        }
        qsort(order, n_order, sizeof(*order), cmp_rank);

        /* Add bits in ascending entropy; keep the prefix with the smallest S.
         * After a split, g.next holds the grouping of the previous prefix: it
         * is saved in base_of whenever that prefix was the best so far. */
        uint64_t best = gd_size_bits(n, l_c, n_const, 1);
        uint32_t best_k = 0, k;
        sel.base_of = dm_calloc(n, sizeof(uint32_t));
        if (!sel.base_of) {
                r = DREAM_E_NOMEM;
                goto out;
        }
        uint32_t best_groups = 1;
        for (k = 1; k <= n_order; k++) {
                uint32_t cnt;
                r = gd_groups_try(&g, p, order[k - 1].pos, &cnt);
                if (r < 0)
                        goto out;
                gd_groups_commit(&g, cnt);
                uint64_t s = gd_size_bits(n, l_c, n_const + k, cnt);
                if (s < best) {
                        best = s;
                        best_k = k;
                        best_groups = cnt;
                } else if (best_k == k - 1 && best_k > 0) {
                        memcpy(sel.base_of, g.next, n * sizeof(uint32_t));
                }
                /* Once every row is its own group, S no longer changes. */
                if (cnt == n)
                        break;
                if (patience && k - best_k >= patience)
                        break;
        }
        sel.bits_scanned = k > n_order ? n_order : k;
        if (best_k > 0 && best_k == (k > n_order ? n_order : k))
                memcpy(sel.base_of, g.gid, n * sizeof(uint32_t));
        for (uint32_t i = 0; i < best_k; i++)
                sel.is_base[order[i].pos] = 1;
        sel.n_bits = l_c;
        sel.n_base_bits = n_const + best_k;
        sel.n_bases = best_groups;
        sel.s_bits = best;
        *ret = sel;
        memset(&sel, 0, sizeof(sel));
        r = 0;
out:
        gd_selection_release(&sel);
        gd_groups_release(&g);
        dm_free(order);
        dm_free(h);
        return r;
}
