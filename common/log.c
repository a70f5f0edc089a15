#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static atomic_int log_level = DM_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void dm_log_set_level(enum dm_log_level level)
{
        atomic_store(&log_level, (int)level);
}

enum dm_log_level dm_log_get_level(void)
{
        return (enum dm_log_level)atomic_load(&log_level);
}

int dm_log_level_parse(const char *s, enum dm_log_level *ret_level)
{
        for (int i = 0; i < 4; i++) {
                if (strcmp(s, level_names[i]) == 0) {
                        *ret_level = (enum dm_log_level)i;
                        return 0;
                }
        }
        return DREAM_E_INVAL;
}

void dm_log(enum dm_log_level level, const char *fmt, ...)
{
        char line[2048];
        va_list ap;
        int n;

        if ((int)level > atomic_load(&log_level))
                return;
        n = snprintf(line, sizeof(line), "%s: ", level_names[level]);
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        /* One write per line so concurrent threads do not interleave. */
        fprintf(stderr, "%s\n", line);
}
