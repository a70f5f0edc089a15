/* The wire status <-> error code mapping: a bijection on the project codes,
 * every wire status round-trips, retryable is exactly BUSY/FULL/TIMEOUT. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "proto/status.h"

static const int codes[] = {
#define CODE(name, value, msg) name,
    DREAM_ERRORS(CODE)
#undef CODE
};
#define N_CODES (sizeof(codes) / sizeof(codes[0]))

static void test_codes_bijective(void **state)
{
        proto_status seen[N_CODES];
        (void)state;
        for (size_t i = 0; i < N_CODES; i++) {
                proto_status s = proto_status_from_err(codes[i]);
                assert_int_not_equal(s, DREAM__V1__STATUS__STATUS_OK);
                assert_int_equal(proto_status_to_err(s), codes[i]);
                for (size_t j = 0; j < i; j++)
                        assert_int_not_equal(seen[j], s);
                seen[i] = s;
        }
        assert_int_equal(proto_status_from_err(0), DREAM__V1__STATUS__STATUS_OK);
        assert_int_equal(proto_status_to_err(DREAM__V1__STATUS__STATUS_OK), 0);
}

/* Every value of the enum in dream.proto maps to an error and back. */
static void test_every_status_round_trips(void **state)
{
        const ProtobufCEnumDescriptor *d = &dream__v1__status__descriptor;
        (void)state;
        assert_int_equal(d->n_values, N_CODES + 1); /* + OK */
        for (unsigned i = 0; i < d->n_values; i++) {
                proto_status s = (proto_status)d->values[i].value;
                int err = proto_status_to_err(s);
                assert_true(err <= 0);
                assert_int_equal(proto_status_from_err(err), s);
                assert_string_not_equal(proto_status_name(s), "unknown");
                assert_true(strlen(proto_status_message(s)) > 0);
                for (unsigned j = 0; j < i; j++)
                        assert_string_not_equal(proto_status_name(s),
                                                proto_status_name(d->values[j].value));
        }
}

static void test_retryable(void **state)
{
        const ProtobufCEnumDescriptor *d = &dream__v1__status__descriptor;
        unsigned n = 0;
        (void)state;
        for (unsigned i = 0; i < d->n_values; i++)
                n += proto_status_retryable((proto_status)d->values[i].value);
        assert_int_equal(n, 3);
        assert_true(proto_status_retryable(proto_status_from_err(DREAM_E_BUSY)));
        assert_true(proto_status_retryable(proto_status_from_err(DREAM_E_FULL)));
        assert_true(proto_status_retryable(proto_status_from_err(DREAM_E_TIMEOUT)));
        assert_true(proto_status_retryable(proto_status_from_err(-ENOSPC)));
        assert_false(proto_status_retryable(proto_status_from_err(DREAM_E_IO)));
}

static void test_errno_and_unknown(void **state)
{
        (void)state;
        assert_int_equal(proto_status_from_err(-ENOMEM), DREAM__V1__STATUS__STATUS_NOMEM);
        assert_int_equal(proto_status_from_err(-ENOSPC), DREAM__V1__STATUS__STATUS_FULL);
        assert_int_equal(proto_status_from_err(-EIO), DREAM__V1__STATUS__STATUS_IO);
        assert_int_equal(proto_status_from_err(-ETIMEDOUT), DREAM__V1__STATUS__STATUS_TIMEOUT);
        assert_int_equal(proto_status_from_err(-EXDEV), DREAM__V1__STATUS__STATUS_INTERNAL);
        assert_int_equal(proto_status_from_err(-99999), DREAM__V1__STATUS__STATUS_INTERNAL);
        assert_int_equal(proto_status_to_err(DREAM__V1__STATUS__STATUS_INTERNAL), DREAM_E_INTERNAL);
        assert_int_equal(proto_status_to_err((proto_status)999), DREAM_E_PROTO);
        assert_string_equal(proto_status_name((proto_status)999), "unknown");
        assert_string_equal(proto_status_message((proto_status)-1), "unknown status");
        assert_false(proto_status_retryable((proto_status)999));
}

static void test_set_error(void **state)
{
        Dream__V1__Response r = DREAM__V1__RESPONSE__INIT;
        (void)state;
        r.more = 1;
        proto_response_set_error(&r, 12, DREAM_E_BUSY, NULL);
        assert_int_equal(r.request_id, 12);
        assert_int_equal(r.code, DREAM__V1__STATUS__STATUS_BUSY);
        assert_false(r.more);
        assert_string_equal(r.message, dream_strerror(DREAM_E_BUSY));
        assert_int_equal(r.body_case, DREAM__V1__RESPONSE__BODY__NOT_SET);
        proto_response_set_error(&r, 13, DREAM_E_NOTFOUND, "dataset 'x' not found");
        assert_int_equal(r.code, DREAM__V1__STATUS__STATUS_NOT_FOUND);
        assert_string_equal(r.message, "dataset 'x' not found");
        proto_response_set_error(&r, 14, 0, "odd");
        assert_int_equal(r.code, DREAM__V1__STATUS__STATUS_INTERNAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_codes_bijective), cmocka_unit_test(test_every_status_round_trips),
            cmocka_unit_test(test_retryable),       cmocka_unit_test(test_errno_and_unknown),
            cmocka_unit_test(test_set_error),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
