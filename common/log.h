/* Logging for the daemon and the CLI (libraries never log). One line per
 * call on stderr: "<level>: <message>", or with DM_LOG_JSON one JSON object
 * {"time":"...Z","level":"...","message":"..."}. When stderr is the
 * journal (dm_log_detect_journal), each line starts with its syslog
 * priority, "<3>" for errors, "<4>" warnings, "<6>" info, "<7>" debug, so
 * journalctl -p filters them. Level, format and journal are process-wide. */
#ifndef DREAM_COMMON_LOG_H
#define DREAM_COMMON_LOG_H

#include <stdbool.h>

enum dm_log_level { DM_LOG_ERROR = 0, DM_LOG_WARN, DM_LOG_INFO, DM_LOG_DEBUG };

void dm_log_set_level(enum dm_log_level level);
enum dm_log_level dm_log_get_level(void);
/* Parse "error", "warn", "info", "debug". 0 or DREAM_E_INVAL. */
int dm_log_level_parse(const char *s, enum dm_log_level *ret_level);
enum dm_log_format { DM_LOG_TEXT = 0, DM_LOG_JSON };

void dm_log_set_format(enum dm_log_format format);
/* Parse "text", "json". 0 or DREAM_E_INVAL. */
int dm_log_format_parse(const char *s, enum dm_log_format *ret_format);
/* Is stderr the journal? JOURNAL_STREAM (set by systemd) names stderr's
 * device and inode. Sets the priority prefixes on or off; returns it. */
bool dm_log_detect_journal(void);

void dm_log(enum dm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define dm_error(...) dm_log(DM_LOG_ERROR, __VA_ARGS__)
#define dm_warn(...)  dm_log(DM_LOG_WARN, __VA_ARGS__)
#define dm_info(...)  dm_log(DM_LOG_INFO, __VA_ARGS__)
#define dm_debug(...) dm_log(DM_LOG_DEBUG, __VA_ARGS__)

#endif
