/* Compares two CSV files as numbers: same header, same shape, and every
 * cell the same number ("1016.60" equals "1016.6", "3.0" equals "3").
 * Prints "identical: R rows x C columns" and exits 0, or names the first
 * differing cell and exits 1. Usage: csvcmp A.csv B.csv */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/read/read.h"
#include "common/err.h"

static struct gd_table *load(const char *path)
{
        struct stat st;
        struct read_opts o;
        struct read_error e;
        struct gd_table *t;
        int fd = open(path, O_RDONLY);
        if (fd < 0 || fstat(fd, &st) != 0) {
                perror(path);
                return NULL;
        }
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        read_opts_default(&o);
        o.label = NULL;
        int r = read_csv(p, (size_t)st.st_size, &o, &e, &t);
        munmap(p, (size_t)st.st_size);
        if (r) {
                fprintf(stderr, "csvcmp: %s:%llu:%u: %s\n", path, (unsigned long long)e.line,
                        e.column, e.msg);
                return NULL;
        }
        return t;
}

/* The cell as an exact rational a / 10^s in __int128, or its double bits. */
static int same(const struct gd_col *x, const struct gd_col *y, uint64_t i)
{
        if (x->kind == GD_F64 || y->kind == GD_F64) {
                double a = gd_value_f64(x->kind, x->scale, x->v[i]);
                double b = gd_value_f64(y->kind, y->scale, y->v[i]);
                return memcmp(&a, &b, sizeof(a)) == 0 || (a != a && b != b);
        }
        __int128 a = x->v[i], b = y->v[i];
        for (unsigned s = x->scale; s < y->scale; s++)
                a *= 10;
        for (unsigned s = y->scale; s < x->scale; s++)
                b *= 10;
        return a == b;
}

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: csvcmp A.csv B.csv\n");
                return 2;
        }
        struct gd_table *a = load(argv[1]), *b = load(argv[2]);
        if (!a || !b)
                return 2;
        if (a->n_rows != b->n_rows || a->n_cols != b->n_cols) {
                printf("differ: %llu x %u vs %llu x %u\n", (unsigned long long)a->n_rows, a->n_cols,
                       (unsigned long long)b->n_rows, b->n_cols);
                return 1;
        }
        for (uint32_t j = 0; j < a->n_cols; j++) {
                if (strcmp(a->cols[j].name, b->cols[j].name) != 0) {
                        printf("differ: column %u is '%s' vs '%s'\n", j + 1, a->cols[j].name,
                               b->cols[j].name);
                        return 1;
                }
                for (uint64_t i = 0; i < a->n_rows; i++) {
                        if (!same(&a->cols[j], &b->cols[j], i)) {
                                printf("differ: line %llu, column %u ('%s')\n",
                                       (unsigned long long)i + 2, j + 1, a->cols[j].name);
                                return 1;
                        }
                }
        }
        printf("identical: %llu rows x %u columns\n", (unsigned long long)a->n_rows, a->n_cols);
        gd_table_free(a);
        gd_table_free(b);
        return 0;
}
