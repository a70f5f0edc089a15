/* The route table against dream.proto: every kind of Request.body (read
 * from the generated descriptor, so a new field is seen without editing
 * this test) has a row with its name, roles and a handler that fits how it
 * runs; no row is left without a field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/routes.h"

/* The body case of a Request field, or 0 when the field is not in the body
 * oneof. */
static int body_case_of(const ProtobufCFieldDescriptor *f)
{
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
            f->quantifier_offset != offsetof(Dream__V1__Request, body_case))
                return 0;
        return (int)f->id;
}

static void test_every_kind_has_a_row(void **state)
{
        const ProtobufCMessageDescriptor *d = &dream__v1__request__descriptor;
        unsigned kinds = 0;

        (void)state;
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                int body = body_case_of(f);
                const struct srv_route *rt;

                if (!body)
                        continue;
                kinds++;
                rt = srv_route(body);
                if (!rt)
                        fail_msg("Request.body field '%s' (%d) has no route row", f->name, body);
                assert_string_equal(rt->name, f->name);
                assert_true(rt->roles != 0 && (rt->roles & ~SRV_ROLES_ALL) == 0);
                if (rt->flags & SRV_ROUTE_LOOP) {
                        /* Loop requests are answered at once or held; never
                         * ordered or run in pool rounds. */
                        assert_non_null(rt->loop);
                        assert_null(rt->work);
                        assert_false(rt->flags & (SRV_ROUTE_ORDERED | SRV_ROUTE_STREAM));
                } else {
                        if (!rt->work)
                                fail_msg("route '%s' has no handler", rt->name);
                        assert_null(rt->loop);
                }
                if (rt->state_free)
                        assert_true(rt->flags & SRV_ROUTE_STREAM);
        }
        assert_true(kinds > 0);
}

static void test_no_row_without_a_field(void **state)
{
        const ProtobufCMessageDescriptor *d = &dream__v1__request__descriptor;

        (void)state;
        for (unsigned body = 0; body < SRV_ROUTES; body++) {
                const ProtobufCFieldDescriptor *f;

                if (!srv_routes[body].name) {
                        assert_null(srv_routes[body].work);
                        assert_null(srv_routes[body].loop);
                        continue;
                }
                f = protobuf_c_message_descriptor_get_field(d, body);
                if (!f || body_case_of(f) != (int)body)
                        fail_msg("route '%s' (%u) is not a Request.body field",
                                 srv_routes[body].name, body);
        }
        assert_null(srv_route(0));
        assert_null(srv_route(-1));
        assert_null(srv_route((int)SRV_ROUTES));
}

/* The facts that used to live in switches keep their values. */
static void test_known_facts(void **state)
{
        proto_request req = DREAM__V1__REQUEST__INIT;

        (void)state;
        assert_true(srv_route(DREAM__V1__REQUEST__BODY_HELLO)->flags & SRV_ROUTE_NOAUTH);
        assert_int_equal(srv_route(DREAM__V1__REQUEST__BODY_DROP_DATASET)->roles, SRV_ROLE_ADMIN);
        assert_true(srv_route(DREAM__V1__REQUEST__BODY_INGEST)->flags & SRV_ROUTE_ORDERED);
        assert_true(srv_route(DREAM__V1__REQUEST__BODY_JOB_WATCH)->flags & SRV_ROUTE_LOOP);
        req.body_case = DREAM__V1__REQUEST__BODY_EXPORT;
        assert_true(srv_request_streams(&req));
        req.body_case = DREAM__V1__REQUEST__BODY_GET_BATCHES;
        assert_true(srv_request_streams(&req));
        req.body_case = DREAM__V1__REQUEST__BODY_LIST_DATASETS;
        assert_false(srv_request_streams(&req));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_every_kind_has_a_row),
            cmocka_unit_test(test_no_row_without_a_field),
            cmocka_unit_test(test_known_facts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
