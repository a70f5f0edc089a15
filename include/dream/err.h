/* dreaMLearning error codes: the public, installed header.
 *
 * Every function of the project and of libdream that can fail returns int:
 * 0 on success, a negative errno value, or a negative project code from the
 * table below. dream_strerror() gives a message for either kind. The wire
 * protocol carries its own status enum, mapped from these in one place
 * (proto/status.c).
 */
#ifndef DREAM_ERR_H
#define DREAM_ERR_H

/* X(name, value, message). Values are negative and below -4095 so that they
 * never collide with a negative errno. Never renumber: values are logged and
 * may be stored. */
#define DREAM_ERRORS(X)                                                                            \
        X(DREAM_E_NOMEM, -5001, "out of memory")                                                   \
        X(DREAM_E_INVAL, -5002, "invalid argument")                                                \
        X(DREAM_E_LIMIT, -5003, "a size limit was exceeded")                                       \
        X(DREAM_E_OVERFLOW, -5004, "arithmetic overflow in a size computation")                    \
        X(DREAM_E_PARSE, -5005, "malformed input")                                                 \
        X(DREAM_E_FORMAT, -5006, "not a dream file, or an unsupported version")                    \
        X(DREAM_E_TRUNCATED, -5007, "input is truncated")                                          \
        X(DREAM_E_CHECKSUM, -5008, "checksum mismatch: data is corrupt")                           \
        X(DREAM_E_CORRUPT, -5009, "inconsistent data: structure is corrupt")                       \
        X(DREAM_E_RANGE, -5010, "row or column out of range")                                      \
        X(DREAM_E_BUDGET, -5011, "budget is too small or invalid")                                 \
        X(DREAM_E_INEXACT, -5012, "value cannot be stored exactly")                                \
        X(DREAM_E_COMPRESS, -5013, "compression library failed")                                   \
        X(DREAM_E_EMPTY, -5014, "no data")                                                         \
        X(DREAM_E_SCHEMA, -5015, "data does not match the schema")                                 \
        X(DREAM_E_EXISTS, -5016, "already exists")                                                 \
        X(DREAM_E_NOTFOUND, -5017, "not found")                                                    \
        X(DREAM_E_FULL, -5018, "store full: no room on disk or in the map")                        \
        X(DREAM_E_IO, -5019, "input/output error")                                                 \
        X(DREAM_E_BUSY, -5020, "busy, retry later")                                                \
        X(DREAM_E_CANCELLED, -5021, "cancelled")                                                   \
        X(DREAM_E_AUTH, -5022, "authentication failed")                                            \
        X(DREAM_E_DENIED, -5023, "permission denied")                                              \
        X(DREAM_E_PROTO, -5024, "protocol error")                                                  \
        X(DREAM_E_TIMEOUT, -5025, "timed out")                                                     \
        X(DREAM_E_NUMERIC, -5026, "numerical failure (singular or non-finite)")                    \
        X(DREAM_E_INTERNAL, -5027, "internal error")

enum dream_err {
#define DREAM_ERR_ENUM(name, value, msg) name = value,
        DREAM_ERRORS(DREAM_ERR_ENUM)
#undef DREAM_ERR_ENUM
};

/* Message for a project code or a negative errno. Never NULL; static storage. */
const char *dream_strerror(int err);

/* Symbolic name ("DREAM_E_NOMEM", "ENOENT"...). Never NULL; static storage. */
const char *dream_errname(int err);

#endif
