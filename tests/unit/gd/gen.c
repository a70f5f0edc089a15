#include "gen.h"

#include <math.h>
#include <stdlib.h>

uint64_t gen_next(uint64_t *state)
{
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

uint64_t gen_below(uint64_t *state, uint64_t n)
{
        return gen_next(state) % n;
}

static double gen_unit(uint64_t *state)
{
        return (double)(gen_next(state) >> 11) / 9007199254740992.0;
}

struct gd_table *gen_table(enum gen_shape shape, uint64_t n, uint32_t d, uint64_t seed)
{
        struct gd_table *t;
        uint64_t st = seed;
        if (gd_table_new(n, d, &t) != 0)
                abort();
        for (uint32_t j = 0; j < d; j++) {
                struct gd_col *c = &t->cols[j];
                int is_target = d > 1 && j == d - 1;
                for (uint64_t i = 0; i < n; i++) {
                        if (shape == GEN_CLASSES) {
                                c->kind = GD_INT;
                                c->v[i] = is_target ? (int64_t)gen_below(&st, 4)
                                                    : (int64_t)gen_below(&st, 50) - 20;
                                continue;
                        }
                        if (shape == GEN_SENSOR) {
                                c->kind = GD_DEC;
                                c->scale = (uint8_t)(2 + j % 2);
                                double x =
                                    100.0 * sin((double)i * 1e-4 * (j + 1)) + gen_unit(&st) - 0.5;
                                c->v[i] = (int64_t)llround(x * pow(10, c->scale));
                                continue;
                        }
                        switch (j % 5) {
                        case 0:
                                c->kind = GD_INT;
                                c->v[i] = (int64_t)gen_below(&st, 1000) - 500;
                                break;
                        case 1:
                                c->kind = GD_DEC;
                                c->scale = 9;
                                c->v[i] = -(int64_t)gen_below(&st, 5000000000ULL);
                                break;
                        case 2: {
                                c->kind = GD_F64;
                                uint64_t k = gen_below(&st, 20);
                                double x = k == 0   ? NAN
                                           : k == 1 ? INFINITY
                                           : k == 2 ? -INFINITY
                                                    : (gen_unit(&st) - 0.5) * 1e10;
                                c->v[i] = gd_f64_to_key(x);
                                break;
                        }
                        case 3:
                                c->kind = GD_INT;
                                c->v[i] = 42; /* constant */
                                break;
                        default:
                                c->kind = GD_DEC;
                                c->scale = 1;
                                c->v[i] = (int64_t)gen_below(&st, 100) - 50;
                                break;
                        }
                }
        }
        if (d > 1) {
                t->target = (int32_t)(d - 1);
                t->task = shape == GEN_CLASSES ? GD_TASK_CLASSIFICATION : GD_TASK_REGRESSION;
        }
        return t;
}

int gen_tables_equal(const struct gd_table *a, const struct gd_table *b)
{
        if (a->n_rows != b->n_rows || a->n_cols != b->n_cols)
                return 0;
        for (uint32_t j = 0; j < a->n_cols; j++) {
                const struct gd_col *x = &a->cols[j], *y = &b->cols[j];
                if (x->kind != y->kind || x->scale != y->scale)
                        return 0;
                for (uint64_t i = 0; i < a->n_rows; i++) {
                        if (x->v[i] != y->v[i])
                                return 0;
                }
        }
        return 1;
}
