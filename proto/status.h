/* The wire Status enum (dream.proto) and the project's error codes
 * (common/err.h), mapped to each other here and nowhere else.
 *
 * Every project code maps to its own status and back (a bijection on the
 * project codes). A few negative errno values map onto the nearest status
 * (ENOMEM, ENOSPC, EIO...); any other error becomes STATUS_INTERNAL, which
 * maps back to DREAM_E_INTERNAL. A status this version does
 * not know (a newer server) maps to DREAM_E_PROTO.
 */
#ifndef DREAM_PROTO_STATUS_H
#define DREAM_PROTO_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/dream.pb-c.h"

typedef Dream__V1__Status proto_status;

/* Status for an error code (0 -> STATUS_OK). */
proto_status proto_status_from_err(int err);

/* Error code for a status (STATUS_OK -> 0, never positive). */
int proto_status_to_err(proto_status status);

/* True for statuses where the same request may succeed later unchanged:
 * BUSY, FULL, TIMEOUT. */
bool proto_status_retryable(proto_status status);

/* Short lowercase name ("busy", "not_found"); "unknown" for an unknown
 * value. Static storage. */
const char *proto_status_name(proto_status status);

/* Human message ("busy, retry later"). Static storage, never NULL. */
const char *proto_status_message(proto_status status);

/* Make resp an error reply to request_id: code from err (an error, not 0),
 * message (borrowed, must outlive the packing of resp; NULL means
 * dream_strerror(err)), more = false, no body. Other fields are reset. */
void proto_response_set_error(Dream__V1__Response *resp, uint64_t request_id, int err,
                              const char *message);

#endif
