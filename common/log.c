#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"

static atomic_int log_level = DM_LOG_INFO;
static atomic_int log_format = DM_LOG_TEXT;
static atomic_bool log_journal = false;
static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities of the levels (sd-daemon.h SD_ERR, SD_WARNING, SD_INFO,
 * SD_DEBUG), written as "<N>" for the journal. */
static const int level_priority[] = {3, 4, 6, 7};

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

void dm_log_set_format(enum dm_log_format format)
{
        atomic_store(&log_format, (int)format);
}

int dm_log_format_parse(const char *s, enum dm_log_format *ret_format)
{
        if (strcmp(s, "text") == 0)
                *ret_format = DM_LOG_TEXT;
        else if (strcmp(s, "json") == 0)
                *ret_format = DM_LOG_JSON;
        else
                return DREAM_E_INVAL;
        return 0;
}

bool dm_log_detect_journal(void)
{
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        bool on = false;

        /* systemd sets JOURNAL_STREAM=DEV:INO of the stream it connected to
         * stdout/stderr; it is ours only while stderr is still that stream. */
        if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0)
                on = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
        atomic_store(&log_journal, on);
        return on;
}

/* msg as a JSON string body into out (truncated on a whole character). */
static void json_escape(const char *msg, char *out, size_t size)
{
        size_t o = 0;

        for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
                char e[8];
                size_t n;

                if (*p == '"' || *p == '\\')
                        n = (size_t)snprintf(e, sizeof(e), "\\%c", *p);
                else if (*p < 0x20)
                        n = (size_t)snprintf(e, sizeof(e), "\\u%04x", *p);
                else
                        n = (size_t)snprintf(e, sizeof(e), "%c", *p);
                if (o + n >= size)
                        break;
                memcpy(out + o, e, n);
                o += n;
        }
        out[o] = '\0';
}

void dm_log(enum dm_log_level level, const char *fmt, ...)
{
        char msg[2048], line[4096 + 128], prefix[8] = "";
        va_list ap;

        if ((int)level > atomic_load(&log_level))
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (atomic_load(&log_journal))
                snprintf(prefix, sizeof(prefix), "<%d>", level_priority[level]);
        if (atomic_load(&log_format) == DM_LOG_JSON) {
                char esc[4096], when[40];
                struct timespec ts;
                struct tm tm;

                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
                json_escape(msg, esc, sizeof(esc));
                snprintf(line, sizeof(line),
                         "%s{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"message\":\"%s\"}", prefix,
                         when, ts.tv_nsec / 1000000, level_names[level], esc);
        } else {
                snprintf(line, sizeof(line), "%s%s: %s", prefix, level_names[level], msg);
        }
        /* One write per line so concurrent threads do not interleave. */
        fprintf(stderr, "%s\n", line);
}
