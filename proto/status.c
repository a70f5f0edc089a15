#include "proto/status.h"

#include <errno.h>
#include <stddef.h>

#include "common/err.h"

/* X(status suffix, project code, name, message): the one mapping table. */
#define STATUS_MAP(X)                                                                              \
        X(INTERNAL, DREAM_E_INTERNAL, "internal", "internal server error")                         \
        X(NOMEM, DREAM_E_NOMEM, "nomem", "server out of memory")                                   \
        X(INVALID, DREAM_E_INVAL, "invalid", "invalid request field")                              \
        X(LIMIT, DREAM_E_LIMIT, "limit", "a size limit was exceeded")                              \
        X(OVERFLOW, DREAM_E_OVERFLOW, "overflow", "sizes overflow")                                \
        X(PARSE, DREAM_E_PARSE, "parse", "malformed input")                                        \
        X(FORMAT, DREAM_E_FORMAT, "format", "unsupported format or version")                       \
        X(TRUNCATED, DREAM_E_TRUNCATED, "truncated", "input is truncated")                         \
        X(CHECKSUM, DREAM_E_CHECKSUM, "checksum", "checksum mismatch: data is corrupt")            \
        X(CORRUPT, DREAM_E_CORRUPT, "corrupt", "stored data is inconsistent")                      \
        X(RANGE, DREAM_E_RANGE, "range", "row or column out of range")                             \
        X(BUDGET, DREAM_E_BUDGET, "budget", "budget is too small or invalid")                      \
        X(INEXACT, DREAM_E_INEXACT, "inexact", "value cannot be stored exactly")                   \
        X(COMPRESS, DREAM_E_COMPRESS, "compress", "compression failed")                            \
        X(EMPTY, DREAM_E_EMPTY, "empty", "no data")                                                \
        X(SCHEMA, DREAM_E_SCHEMA, "schema", "data does not match the schema")                      \
        X(EXISTS, DREAM_E_EXISTS, "exists", "already exists")                                      \
        X(NOT_FOUND, DREAM_E_NOTFOUND, "not_found", "not found")                                   \
        X(FULL, DREAM_E_FULL, "full", "store full, retry later")                                   \
        X(IO, DREAM_E_IO, "io", "input/output error on the server")                                \
        X(BUSY, DREAM_E_BUSY, "busy", "busy, retry later")                                         \
        X(CANCELLED, DREAM_E_CANCELLED, "cancelled", "cancelled")                                  \
        X(AUTH, DREAM_E_AUTH, "auth", "authentication required or failed")                         \
        X(DENIED, DREAM_E_DENIED, "denied", "permission denied")                                   \
        X(PROTOCOL, DREAM_E_PROTO, "protocol", "protocol error")                                   \
        X(TIMEOUT, DREAM_E_TIMEOUT, "timeout", "timed out, retry later")                           \
        X(NUMERIC, DREAM_E_NUMERIC, "numeric", "numerical failure (singular or non-finite)")

#define ST(s) DREAM__V1__STATUS__STATUS_##s

proto_status proto_status_from_err(int err)
{
        switch (err) {
        case 0:
                return ST(OK);
#define FROM_ERR(s, code, name, msg)                                                               \
        case code:                                                                                 \
                return ST(s);
                STATUS_MAP(FROM_ERR)
#undef FROM_ERR
        /* errno values that have a clear counterpart; the rest is INTERNAL. */
        case -ENOMEM:
                return ST(NOMEM);
        case -EINVAL:
                return ST(INVALID);
        case -ENOSPC:
        case -EDQUOT:
                return ST(FULL);
        case -EIO:
                return ST(IO);
        case -EAGAIN:
        case -EBUSY:
                return ST(BUSY);
        case -ETIMEDOUT:
                return ST(TIMEOUT);
        case -ENOENT:
                return ST(NOT_FOUND);
        case -EEXIST:
                return ST(EXISTS);
        case -EACCES:
        case -EPERM:
                return ST(DENIED);
        case -ECANCELED:
                return ST(CANCELLED);
        case -EMSGSIZE:
        case -E2BIG:
                return ST(LIMIT);
        case -EOVERFLOW:
                return ST(OVERFLOW);
        case -EPROTO:
        case -EBADMSG:
                return ST(PROTOCOL);
        default:
                return ST(INTERNAL);
        }
}

int proto_status_to_err(proto_status status)
{
        switch (status) {
        case ST(OK):
                return 0;
#define TO_ERR(s, code, name, msg)                                                                 \
        case ST(s):                                                                                \
                return code;
                STATUS_MAP(TO_ERR)
#undef TO_ERR
        default:
                return DREAM_E_PROTO;
        }
}

bool proto_status_retryable(proto_status status)
{
        return status == ST(BUSY) || status == ST(FULL) || status == ST(TIMEOUT);
}

const char *proto_status_name(proto_status status)
{
        switch (status) {
        case ST(OK):
                return "ok";
#define NAME(s, code, name, msg)                                                                   \
        case ST(s):                                                                                \
                return name;
                STATUS_MAP(NAME)
#undef NAME
        default:
                return "unknown";
        }
}

const char *proto_status_message(proto_status status)
{
        switch (status) {
        case ST(OK):
                return "success";
#define MSG(s, code, name, msg)                                                                    \
        case ST(s):                                                                                \
                return msg;
                STATUS_MAP(MSG)
#undef MSG
        default:
                return "unknown status";
        }
}

void proto_response_set_error(Dream__V1__Response *resp, uint64_t request_id, int err,
                              const char *message)
{
        dream__v1__response__init(resp);
        resp->request_id = request_id;
        resp->code = proto_status_from_err(err);
        if (resp->code == ST(OK)) /* err was 0: not an error */
                resp->code = ST(INTERNAL);
        resp->message = (char *)(message ? message : dream_strerror(err));
        resp->more = 0;
}
