/* Fuzz target: the container reader (opening, verifying, statistics and
 * decoding; linked with the reader library alone, without the encoder). Any
 * input must give an error or a segment whose every row decodes; never a
 * crash. */
#include <stddef.h>
#include <stdint.h>

#include "storage/gd/gd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gd_segment *s;
        struct gd_table *t;
        if (gd_segment_open(data, size, &s) != 0)
                return 0;
        (void)gd_segment_verify(s);
        struct gd_stats st;
        gd_segment_stats(s, &st);
        if (gd_segment_decode(s, &t) == 0)
                gd_table_free(t);
        gd_segment_free(s);
        return 0;
}
