/* Decoding and semantic validation of dream.v1 messages.
 *
 * Nothing read from a peer is trusted. A frame's bytes are unpacked with an
 * allocator that goes through dm_malloc (so allocation failure injection
 * reaches protobuf-c) and that stops at a budget proportional to the frame
 * size (PROTO_UNPACK_FACTOR * len + PROTO_UNPACK_SLACK), so a small frame of
 * many empty repeated sub-messages cannot make the decoder allocate gigabytes.
 * The unpacked message is then checked field by field: enum values known,
 * strings valid UTF-8, names, counts, shapes and byte lengths consistent and
 * within the limits below, size products computed without overflow.
 *
 * Every failure returns a specific error code (common/err.h) and, when an
 * errmsg buffer is given, a message naming the field, e.g.
 * "ingest.rows.columns[3].values: 79 bytes, expected 80 (10 rows)".
 * errmsg is written only on failure, always NUL-terminated (truncated to
 * errmsg_size). Codes: DREAM_E_PARSE (not protobuf), DREAM_E_NOMEM,
 * DREAM_E_LIMIT (a limit exceeded, including the unpack budget),
 * DREAM_E_OVERFLOW (a size product overflows), DREAM_E_SCHEMA (a shape and a
 * byte length disagree), DREAM_E_BUDGET (a bad Budget), DREAM_E_RANGE (a row
 * number past DREAM_MAX_ROWS), DREAM_E_PROTO (no body), DREAM_E_INVAL
 * (anything else: a bad name, an unknown enum value, a missing field).
 *
 * What needs the store (does the dataset exist, does a batch have the
 * schema's column count) is the server's to check; proto_columns_check_count()
 * helps with the latter.
 */
#ifndef DREAM_PROTO_VALIDATE_H
#define DREAM_PROTO_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "proto/dream.pb-c.h"

typedef Dream__V1__Request proto_request;
typedef Dream__V1__Response proto_response;

/* Unpack a Request from len bytes (borrowed; not kept). 0, DREAM_E_PARSE,
 * DREAM_E_NOMEM or DREAM_E_LIMIT (unpack budget). Free with
 * proto_request_free(). Does not validate. */
int proto_request_unpack(const uint8_t *data, size_t len, proto_request **ret_req);
void proto_request_free(proto_request *req);
int proto_response_unpack(const uint8_t *data, size_t len, proto_response **ret_resp);
void proto_response_free(proto_response *resp);

/* Semantic validation of an unpacked Request: every field, strict (an enum
 * value this version does not know is refused). May allocate (duplicate
 * column names), so DREAM_E_NOMEM is possible. */
int proto_request_validate(const proto_request *req, char *errmsg, size_t errmsg_size);

/* Validation of a Response by a client: shapes and byte lengths of data
 * replies; enum values it does not know are let through (a newer server),
 * to be handled as unknown by the caller. */
int proto_response_validate(const proto_response *resp, char *errmsg, size_t errmsg_size);

/* Unpack and validate in one call; on failure nothing is returned. */
int proto_request_decode(const uint8_t *data, size_t len, char *errmsg, size_t errmsg_size,
                         proto_request **ret_req);
int proto_response_decode(const uint8_t *data, size_t len, char *errmsg, size_t errmsg_size,
                          proto_response **ret_resp);

/* Dataset name: 1..DREAM_MAX_NAME bytes of [A-Za-z0-9_.-], not "." or "..".
 * 0 or DREAM_E_INVAL / DREAM_E_LIMIT (too long). */
int proto_dataset_name_check(const char *name);
/* Column name: 1..DREAM_MAX_NAME bytes of UTF-8 without control characters.
 * 0 or DREAM_E_INVAL / DREAM_E_LIMIT. */
int proto_column_name_check(const char *name);
/* Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). */
bool proto_utf8_valid(const char *s, size_t len);

/* A Columns block has exactly n_cols columns (the dataset's schema).
 * 0 or DREAM_E_SCHEMA, with a message naming `what` (e.g. "ingest.rows"). */
int proto_columns_check_count(const Dream__V1__Columns *c, uint32_t n_cols, const char *what,
                              char *errmsg, size_t errmsg_size);

/* ---- column values: n little-endian 8-byte values ---------------------- */

/* Write n values into out (n * 8 bytes). */
void proto_values_put(uint8_t *out, const int64_t *v, size_t n);
/* Read n values from in (n * 8 bytes). */
void proto_values_get(int64_t *out, const uint8_t *in, size_t n);
/* Fill *ret with a new n * 8 byte buffer (dm_malloc; the caller frees
 * ret->data with dm_free, or lets proto_request_free do it for a message it
 * unpacked). 0, DREAM_E_NOMEM, DREAM_E_OVERFLOW, DREAM_E_EMPTY (n == 0). */
int proto_values_new(const int64_t *v, size_t n, ProtobufCBinaryData *ret);
/* Read a values field of n_rows rows into out (n_rows entries).
 * 0 or DREAM_E_SCHEMA when the length is not n_rows * 8. */
int proto_values_read(const ProtobufCBinaryData *b, size_t n_rows, int64_t *out);

/* Same for float32 arrays (Batch features/targets/weights, FloatMatrix). */
void proto_f32_put(uint8_t *out, const float *v, size_t n);
void proto_f32_get(float *out, const uint8_t *in, size_t n);
int proto_f32_new(const float *v, size_t n, ProtobufCBinaryData *ret);
int proto_f32_read(const ProtobufCBinaryData *b, size_t n, float *out);

#endif
