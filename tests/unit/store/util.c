#include "util.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct store_column cols[TU_COLS] = {
    {.name = "id", .kind = GD_INT},
    {.name = "x", .kind = GD_DEC, .scale = 1},
    {.name = "z", .kind = GD_F64},
    {.name = "y", .kind = GD_INT},
};

static const struct store_schema schema = {
    .n_cols = TU_COLS,
    .cols = cols,
    .target = 3,
    .task = GD_TASK_CLASSIFICATION,
    .n_classes = 3,
};

const struct store_schema *tu_schema(void)
{
        return &schema;
}

/* x is a decimal with one digit; z a double that is not a short decimal. */
static int64_t x_tenths(uint64_t k)
{
        return (int64_t)((k * 37) % 1000) - 500;
}

double tu_expect(uint64_t k, uint32_t j)
{
        switch (j) {
        case 0:
                return (double)k;
        case 1:
                return gd_value_f64(GD_DEC, 1, x_tenths(k));
        case 2:
                return (double)(k % 1013) / 3.0;
        default:
                return (double)(k % 3);
        }
}

struct gd_table *tu_batch(uint64_t first_k, uint64_t n, unsigned variant)
{
        struct gd_table *t;
        if (gd_table_new(n, TU_COLS, &t) < 0)
                abort();
        for (uint32_t j = 0; j < TU_COLS; j++) {
                if (gd_table_set_name(t, j, cols[j].name) < 0)
                        abort();
        }
        t->target = 3;
        t->task = GD_TASK_CLASSIFICATION;
        /* variant 0: x at scale 1; 1: x at scale 3 (more decimals); 2: id as
         * a decimal of scale 2. */
        t->cols[0].kind = variant == 2 ? GD_DEC : GD_INT;
        t->cols[0].scale = variant == 2 ? 2 : 0;
        t->cols[1].kind = GD_DEC;
        t->cols[1].scale = variant == 1 ? 3 : 1;
        t->cols[2].kind = GD_F64;
        t->cols[3].kind = GD_INT;
        for (uint64_t i = 0; i < n; i++) {
                uint64_t k = first_k + i;
                t->cols[0].v[i] = variant == 2 ? (int64_t)k * 100 : (int64_t)k;
                t->cols[1].v[i] = variant == 1 ? x_tenths(k) * 100 : x_tenths(k);
                t->cols[2].v[i] = gd_f64_to_key(tu_expect(k, 2));
                t->cols[3].v[i] = (int64_t)(k % 3);
        }
        return t;
}

bool tu_rows_ok(const struct gd_table *t, uint64_t first_k)
{
        if (t->n_cols != TU_COLS)
                return false;
        for (uint64_t i = 0; i < t->n_rows; i++) {
                for (uint32_t j = 0; j < TU_COLS; j++) {
                        double got = gd_table_get(t, i, j);
                        double want = tu_expect(first_k + i, j);
                        if (memcmp(&got, &want, sizeof(got)) != 0) {
                                fprintf(stderr, "row %llu col %u: got %.17g want %.17g\n",
                                        (unsigned long long)(first_k + i), j, got, want);
                                return false;
                        }
                }
        }
        return true;
}

void tu_tmpdir(char *buf)
{
        strcpy(buf, "/tmp/dream-store-test-XXXXXX");
        if (!mkdtemp(buf))
                abort();
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

void tu_rmrf(const char *path)
{
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
