/* The DTRB data files of bench/train (make_data.py). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench/train/data.h"
#include "common/alloc.h"

int bench_data_load(const char *path, struct bench_data *ret)
{
        FILE *f = fopen(path, "rb");
        char magic[4];
        uint64_t n;
        uint32_t d;
        struct bench_data dt = {0};

        if (!f)
                return -1;
        if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "DTRB", 4) != 0 ||
            fread(&n, 8, 1, f) != 1 || fread(&d, 4, 1, f) != 1 || d == 0 || d > 65536 || n == 0 ||
            n > (1ull << 32))
                goto fail;
        dt.n = n;
        dt.d = d;
        dt.x = dm_mallocarray(n * d, sizeof(float));
        dt.y = dm_mallocarray(n, sizeof(float));
        if (!dt.x || !dt.y || fread(dt.x, sizeof(float), n * d, f) != n * d ||
            fread(dt.y, sizeof(float), n, f) != n)
                goto fail;
        fclose(f);
        *ret = dt;
        return 0;
fail:
        dm_free(dt.x);
        dm_free(dt.y);
        fclose(f);
        return -1;
}

void bench_data_release(struct bench_data *dt)
{
        dm_free(dt->x);
        dm_free(dt->y);
        memset(dt, 0, sizeof(*dt));
}

double bench_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
