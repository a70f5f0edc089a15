/* Logging for the daemon and the CLI (libraries never log). One line per
 * call on stderr: "<level>: <message>". The level is process-wide. */
#ifndef DREAM_COMMON_LOG_H
#define DREAM_COMMON_LOG_H

enum dm_log_level { DM_LOG_ERROR = 0, DM_LOG_WARN, DM_LOG_INFO, DM_LOG_DEBUG };

void dm_log_set_level(enum dm_log_level level);
enum dm_log_level dm_log_get_level(void);
/* Parse "error", "warn", "info", "debug". 0 or DREAM_E_INVAL. */
int dm_log_level_parse(const char *s, enum dm_log_level *ret_level);
void dm_log(enum dm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define dm_error(...) dm_log(DM_LOG_ERROR, __VA_ARGS__)
#define dm_warn(...)  dm_log(DM_LOG_WARN, __VA_ARGS__)
#define dm_info(...)  dm_log(DM_LOG_INFO, __VA_ARGS__)
#define dm_debug(...) dm_log(DM_LOG_DEBUG, __VA_ARGS__)

#endif
