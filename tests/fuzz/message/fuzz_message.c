/* libFuzzer target: unpack + validate of a Request and of a Response.
 * Invariant (abort on violation): a request that decodes and validates,
 * packed again, decodes and validates again (or hits the unpack budget,
 * which shrinks with the re-encoded size). */
#include <stdint.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/err.h"
#include "proto/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        proto_request *req = NULL, *again = NULL;
        proto_response *resp = NULL;
        char err[256];

        if (proto_request_decode(data, size, err, sizeof(err), &req) == 0) {
                size_t len = dream__v1__request__get_packed_size(req);
                uint8_t *buf = dm_malloc(len);
                if (buf) {
                        int r;
                        if (dream__v1__request__pack(req, buf) != len)
                                abort();
                        r = proto_request_decode(buf, len, err, sizeof(err), &again);
                        if (r == 0)
                                proto_request_free(again);
                        else if (r != DREAM_E_LIMIT && r != DREAM_E_NOMEM)
                                abort();
                        dm_free(buf);
                }
                proto_request_free(req);
        }
        if (proto_response_decode(data, size, err, sizeof(err), &resp) == 0)
                proto_response_free(resp);
        return 0;
}
