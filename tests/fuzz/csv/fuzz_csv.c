/* Fuzz target: the CSV reader. Any input gives a table or an error with a
 * location, never a crash; a table printed back as CSV (gd_format_value) and
 * parsed again prints the same numbers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/read/read.h"
#include "common/buf.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_name(struct dm_buf *b, const char *s)
{
        dm_buf_put_u8(b, '"');
        for (; *s; s++) {
                if (*s == '"')
                        dm_buf_put_u8(b, '"');
                dm_buf_put_u8(b, (uint8_t)*s);
        }
        dm_buf_put_u8(b, '"');
}

/* The same printed number; "-0" and "0" are the same (an exact column
 * stores no sign of zero). */
static int same(const struct gd_col *a, const struct gd_col *b, uint64_t i)
{
        char x[GD_FMT_MAX + 1], y[GD_FMT_MAX + 1];
        size_t n = gd_format_value(a->kind, a->scale, a->v[i], x);
        size_t m = gd_format_value(b->kind, b->scale, b->v[i], y);
        x[n] = y[m] = '\0';
        if (strcmp(x, "-0") == 0)
                strcpy(x, "0");
        if (strcmp(y, "-0") == 0)
                strcpy(y, "0");
        return strcmp(x, y) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gd_table *t = NULL, *u = NULL;
        struct read_error e;
        struct dm_buf b;
        char cell[GD_FMT_MAX];

        if (size > (1u << 20))
                return 0;
        if (read_csv(data, size, NULL, &e, &t) < 0) {
                if (e.code >= 0 || e.msg[0] == '\0' || !memchr(e.msg, '\0', sizeof(e.msg)))
                        abort();
                return 0;
        }
        if (t->n_rows == 0 || t->n_cols == 0)
                abort();
        dm_buf_init(&b);
        for (uint32_t j = 0; j < t->n_cols; j++) {
                if (j)
                        dm_buf_put_u8(&b, ',');
                put_name(&b, t->cols[j].name);
        }
        dm_buf_put_u8(&b, '\n');
        for (uint64_t i = 0; i < t->n_rows; i++) {
                for (uint32_t j = 0; j < t->n_cols; j++) {
                        const struct gd_col *c = &t->cols[j];
                        size_t k = gd_format_value(c->kind, c->scale, c->v[i], cell);
                        dm_buf_append(&b, cell, k);
                        dm_buf_put_u8(&b, j + 1 < t->n_cols ? ',' : '\n');
                }
        }
        if (read_csv(b.data, b.len, NULL, &e, &u) < 0)
                abort(); /* what we print must read back */
        if (u->n_rows != t->n_rows || u->n_cols != t->n_cols)
                abort();
        for (uint32_t j = 0; j < t->n_cols; j++) {
                if (strcmp(t->cols[j].name, u->cols[j].name) != 0)
                        abort();
                for (uint64_t i = 0; i < t->n_rows; i++) {
                        if (!same(&t->cols[j], &u->cols[j], i))
                                abort();
                }
        }
        gd_table_free(u);
        gd_table_free(t);
        dm_buf_release(&b);
        return 0;
}
