/* Access control (issue 7, item 7): a real dreamd with a token file whose
 * tokens carry roles ("role1,role2:token" lines).
 *
 * Usage: test_roles GROUP
 *   matrix   every role (ingest, read, train, admin) against every request type
 *            of the Request oneof: a permitted request never answers
 *            STATUS_DENIED (whatever else it answers: NOT_FOUND, INVALID for a
 *            training call not implemented yet...), a forbidden one always
 *            does; Hello grants exactly the token's roles. The expected table
 *            follows dream.proto's Role comments (below).
 *   auth     before authentication every request but hello answers
 *            STATUS_AUTH; wrong tokens are logged, a connection is closed
 *            after 3 of them, and over many connections at most
 *            SRV_MAX_AUTH_FAILURES_PER_SECOND tokens a second are compared
 *            (then BUSY); a
 *            non-loopback listen address without a token file refuses to start
 *            (exit 2, naming the address), with one it starts.
 *   cli      the dream CLI (DREAM_CLI) with role tokens: `dream ingest` with
 *            an ingest-only token, `dream export` with a read-only one work;
 *            `dream ingest` with a read-only token is refused.
 * DREAMD in the environment is the daemon's path.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/limits.h"
#include "tclient.h"

#define OK     DREAM__V1__STATUS__STATUS_OK
#define DENIED DREAM__V1__STATUS__STATUS_DENIED
#define AUTH   DREAM__V1__STATUS__STATUS_AUTH

enum role { R_INGEST, R_READ, R_TRAIN, R_ADMIN, N_ROLES };
static const char *const role_name[N_ROLES] = {"ingest", "read", "train", "admin"};
static const char *const role_token[N_ROLES] = {"tok-ingest-5f1c9a", "tok-read-77b2e0",
                                                "tok-train-0c4d18", "tok-admin-e93a61"};

/* A: must not be denied; D: must be denied; E: either (dream.proto does not
 * say; see the notes). */
enum expect { A, D, E };

struct kind {
        Dream__V1__Request__BodyCase body;
        const char *name;
        enum expect e[N_ROLES]; /* ingest, read, train, admin */
};

/* dream.proto, enum Role: INGEST "create datasets, ingest, flush"; READ
 * "list, describe, export, batches, predict, model"; TRAIN "submit and
 * cancel training jobs"; ADMIN "everything, including drop, backup and
 * stats". Not said: job_list/job_status/job_watch (E for read and train: a
 * trainer watches its jobs, a reader reads them), and list/describe for the
 * ingest role (E: `dream ingest` describes the dataset before sending). */
static const struct kind kinds[] = {
    {DREAM__V1__REQUEST__BODY_SERVER_INFO, "server_info", {A, A, A, A}},
    {DREAM__V1__REQUEST__BODY_STATS, "stats", {D, D, D, A}},
    {DREAM__V1__REQUEST__BODY_CREATE_DATASET, "create_dataset", {A, D, D, A}},
    {DREAM__V1__REQUEST__BODY_LIST_DATASETS, "list_datasets", {E, A, D, A}},
    {DREAM__V1__REQUEST__BODY_DESCRIBE_DATASET, "describe_dataset", {E, A, D, A}},
    {DREAM__V1__REQUEST__BODY_DROP_DATASET, "drop_dataset", {D, D, D, A}},
    {DREAM__V1__REQUEST__BODY_INGEST, "ingest", {A, D, D, A}},
    {DREAM__V1__REQUEST__BODY_FLUSH, "flush", {A, D, D, A}},
    {DREAM__V1__REQUEST__BODY_EXPORT, "export", {D, A, D, A}},
    {DREAM__V1__REQUEST__BODY_GET_BATCHES, "get_batches", {D, A, D, A}},
    {DREAM__V1__REQUEST__BODY_BACKUP, "backup", {D, D, D, A}},
    {DREAM__V1__REQUEST__BODY_TRAIN, "train", {D, D, A, A}},
    {DREAM__V1__REQUEST__BODY_JOB_LIST, "job_list", {D, E, E, A}},
    {DREAM__V1__REQUEST__BODY_JOB_STATUS, "job_status", {D, E, E, A}},
    {DREAM__V1__REQUEST__BODY_JOB_WATCH, "job_watch", {D, E, E, A}},
    {DREAM__V1__REQUEST__BODY_JOB_CANCEL, "job_cancel", {D, D, A, A}},
    {DREAM__V1__REQUEST__BODY_PREDICT, "predict", {D, A, D, A}},
    {DREAM__V1__REQUEST__BODY_GET_MODEL, "get_model", {D, A, D, A}},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static char tmp_dir[128];

/* ---- requests ------------------------------------------------------------------ */

/* Storage for one request of each kind (fields point into it). */
struct reqbuf {
        Dream__V1__Request req;
        union {
                Dream__V1__ServerInfo si;
                Dream__V1__Stats st;
                Dream__V1__CreateDataset cd;
                Dream__V1__ListDatasets ld;
                Dream__V1__DescribeDataset dd;
                Dream__V1__DropDataset dr;
                Dream__V1__Ingest in;
                Dream__V1__Flush fl;
                Dream__V1__Export ex;
                Dream__V1__GetBatches gb;
                Dream__V1__Backup bk;
                Dream__V1__Train tr;
                Dream__V1__JobList jl;
                Dream__V1__JobStatus js;
                Dream__V1__JobWatch jw;
                Dream__V1__JobCancel jc;
                Dream__V1__Predict pr;
                Dream__V1__GetModel gm;
        } u;
        Dream__V1__ColumnSpec specs[2], *specp[2];
        Dream__V1__Columns cols;
        Dream__V1__ColumnValues cv[2], *cvp[2];
        uint8_t values[2][8 * 10];
        Dream__V1__FloatMatrix fm;
        uint8_t feats[4];
        char name[64], path[300];
};

static const uint64_t NO_JOB = 987654321;

/* Build a valid request of kind k (validation passes: the permission check is
 * what answers). `tag` makes names unique per role. */
static Dream__V1__Request *build(struct reqbuf *b, Dream__V1__Request__BodyCase k, const char *tag,
                                 uint64_t id)
{
        memset(b, 0, sizeof(*b));
        dream__v1__request__init(&b->req);
        b->req.request_id = id;
        b->req.body_case = k;
        switch (k) {
        case DREAM__V1__REQUEST__BODY_SERVER_INFO:
                dream__v1__server_info__init(&b->u.si);
                b->req.server_info = &b->u.si;
                break;
        case DREAM__V1__REQUEST__BODY_STATS:
                dream__v1__stats__init(&b->u.st);
                b->req.stats = &b->u.st;
                break;
        case DREAM__V1__REQUEST__BODY_CREATE_DATASET:
                dream__v1__create_dataset__init(&b->u.cd);
                for (int i = 0; i < 2; i++) {
                        dream__v1__column_spec__init(&b->specs[i]);
                        b->specs[i].name = i ? "y" : "x";
                        b->specs[i].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
                        b->specp[i] = &b->specs[i];
                }
                snprintf(b->name, sizeof(b->name), "created_%s", tag);
                b->u.cd.name = b->name;
                b->u.cd.n_columns = 2;
                b->u.cd.columns = b->specp;
                b->u.cd.target = "y";
                b->u.cd.task = DREAM__V1__TASK__TASK_CLASSIFICATION;
                b->req.create_dataset = &b->u.cd;
                break;
        case DREAM__V1__REQUEST__BODY_LIST_DATASETS:
                dream__v1__list_datasets__init(&b->u.ld);
                b->req.list_datasets = &b->u.ld;
                break;
        case DREAM__V1__REQUEST__BODY_DESCRIBE_DATASET:
                dream__v1__describe_dataset__init(&b->u.dd);
                b->u.dd.name = "ds";
                b->req.describe_dataset = &b->u.dd;
                break;
        case DREAM__V1__REQUEST__BODY_DROP_DATASET:
                dream__v1__drop_dataset__init(&b->u.dr);
                snprintf(b->name, sizeof(b->name), "victim_%s", tag);
                b->u.dr.name = b->name;
                b->req.drop_dataset = &b->u.dr;
                break;
        case DREAM__V1__REQUEST__BODY_INGEST:
                dream__v1__ingest__init(&b->u.in);
                dream__v1__columns__init(&b->cols);
                for (int j = 0; j < 2; j++) {
                        dream__v1__column_values__init(&b->cv[j]);
                        b->cv[j].kind = DREAM__V1__COLUMN_KIND__COLUMN_KIND_INT;
                        for (int i = 0; i < 10; i++)
                                b->values[j][8 * i] = (uint8_t)(j ? i % 2 : i);
                        b->cv[j].values.data = b->values[j];
                        b->cv[j].values.len = 80;
                        b->cvp[j] = &b->cv[j];
                }
                b->cols.n_rows = 10;
                b->cols.n_columns = 2;
                b->cols.columns = b->cvp;
                b->u.in.dataset = "ds";
                b->u.in.rows = &b->cols;
                b->req.ingest = &b->u.in;
                break;
        case DREAM__V1__REQUEST__BODY_FLUSH:
                dream__v1__flush__init(&b->u.fl);
                b->u.fl.dataset = "ds";
                b->req.flush = &b->u.fl;
                break;
        case DREAM__V1__REQUEST__BODY_EXPORT:
                dream__v1__export__init(&b->u.ex);
                b->u.ex.dataset = "ds";
                b->u.ex.row_count = 5;
                b->req.export = &b->u.ex;
                break;
        case DREAM__V1__REQUEST__BODY_GET_BATCHES:
                dream__v1__get_batches__init(&b->u.gb);
                b->u.gb.dataset = "ds";
                b->u.gb.mode = DREAM__V1__BATCH_MODE__BATCH_MODE_ROWS;
                b->u.gb.batch_size = 5;
                b->u.gb.max_batches = 1;
                b->req.get_batches = &b->u.gb;
                break;
        case DREAM__V1__REQUEST__BODY_BACKUP:
                dream__v1__backup__init(&b->u.bk);
                snprintf(b->path, sizeof(b->path), "%s/backup_%s_%llu", tmp_dir, tag,
                         (unsigned long long)id);
                b->u.bk.path = b->path;
                b->req.backup = &b->u.bk;
                break;
        case DREAM__V1__REQUEST__BODY_TRAIN:
                dream__v1__train__init(&b->u.tr);
                b->u.tr.dataset = "ds";
                b->u.tr.model = DREAM__V1__MODEL_KIND__MODEL_KIND_SOFTMAX;
                b->u.tr.mode = DREAM__V1__TRAIN_MODE__TRAIN_MODE_CONDENSED;
                b->u.tr.epochs = 1;
                b->req.train = &b->u.tr;
                break;
        case DREAM__V1__REQUEST__BODY_JOB_LIST:
                dream__v1__job_list__init(&b->u.jl);
                b->req.job_list = &b->u.jl;
                break;
        case DREAM__V1__REQUEST__BODY_JOB_STATUS:
                dream__v1__job_status__init(&b->u.js);
                b->u.js.job_id = NO_JOB;
                b->req.job_status = &b->u.js;
                break;
        case DREAM__V1__REQUEST__BODY_JOB_WATCH:
                dream__v1__job_watch__init(&b->u.jw);
                b->u.jw.job_id = NO_JOB;
                b->req.job_watch = &b->u.jw;
                break;
        case DREAM__V1__REQUEST__BODY_JOB_CANCEL:
                dream__v1__job_cancel__init(&b->u.jc);
                b->u.jc.job_id = NO_JOB;
                b->req.job_cancel = &b->u.jc;
                break;
        case DREAM__V1__REQUEST__BODY_PREDICT:
                dream__v1__predict__init(&b->u.pr);
                dream__v1__float_matrix__init(&b->fm);
                b->fm.n = 1;
                b->fm.d = 1;
                b->fm.values.data = b->feats;
                b->fm.values.len = 4;
                b->u.pr.job_id = NO_JOB;
                b->u.pr.input_case = DREAM__V1__PREDICT__INPUT_FEATURES;
                b->u.pr.features = &b->fm;
                b->req.predict = &b->u.pr;
                break;
        case DREAM__V1__REQUEST__BODY_GET_MODEL:
                dream__v1__get_model__init(&b->u.gm);
                b->u.gm.job_id = NO_JOB;
                b->req.get_model = &b->u.gm;
                break;
        default:
                CHECK(0);
        }
        return &b->req;
}

static const char *status_name(int code)
{
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&dream__v1__status__descriptor, code);
        return code < 0 ? "(no answer)" : v ? v->name : "?";
}

/* Hello with a token: the response (caller frees). */
static proto_response *hello(struct tc *c, const char *token, uint64_t id)
{
        Dream__V1__Request req = DREAM__V1__REQUEST__INIT;
        Dream__V1__Hello h = DREAM__V1__HELLO__INIT;

        h.protocol_version = DREAM_PROTOCOL_VERSION;
        h.client_name = "test_roles";
        h.token = (char *)token;
        req.request_id = id;
        req.body_case = DREAM__V1__REQUEST__BODY_HELLO;
        req.hello = &h;
        return tc_call(c, &req);
}

static void write_tokens(const char *path)
{
        FILE *f = fopen(path, "w");

        CHECK(f != NULL);
        fprintf(f, "# roles:token\n");
        for (int r = 0; r < N_ROLES; r++)
                fprintf(f, "%s:%s\n", role_name[r], role_token[r]);
        fprintf(f, "ingest,read:tok-ingest-read-44aa01\n");
        CHECK(fclose(f) == 0);
}

static void start(struct tdaemon *d, char *tokpath, size_t size, const char *log)
{
        snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/dreamd-roles-XXXXXX");
        CHECK(mkdtemp(tmp_dir) != NULL);
        snprintf(tokpath, size, "%s/tokens", tmp_dir);
        write_tokens(tokpath);
        {
                char data[200];
                const char *extra[] = {"--token-file", tokpath, NULL};
                snprintf(data, sizeof(data), "%s/data", tmp_dir);
                CHECK(td_spawn(d, data, NULL, extra, log) == 0);
        }
}

/* Admin: the datasets every role's requests refer to. */
static void setup_data(uint16_t port)
{
        struct tc c;
        struct reqbuf *b = calloc(1, sizeof(*b));
        proto_response *r;
        int code;

        CHECK(b != NULL);
        tc_connect(&c, port);
        r = hello(&c, role_token[R_ADMIN], 1);
        CHECK(r->code == OK);
        proto_response_free(r);
        build(b, DREAM__V1__REQUEST__BODY_CREATE_DATASET, "x", 2);
        b->u.cd.name = "ds";
        CHECK((code = tc_call_code(&c, &b->req, 20000)) == OK);
        for (int i = 0; i < N_ROLES; i++) {
                char name[64];
                build(b, DREAM__V1__REQUEST__BODY_CREATE_DATASET, "x", 3 + (uint64_t)i);
                snprintf(name, sizeof(name), "victim_%s", role_name[i]);
                b->u.cd.name = name;
                CHECK(tc_call_code(&c, &b->req, 20000) == OK);
        }
        for (int k = 0; k < 3; k++) {
                build(b, DREAM__V1__REQUEST__BODY_INGEST, "x", 10 + (uint64_t)k);
                CHECK(tc_call_code(&c, &b->req, 20000) == OK);
        }
        tc_close(&c);
        free(b);
}

static void test_matrix(void)
{
        struct tdaemon d;
        char tokpath[300];
        struct reqbuf *b = calloc(1, sizeof(*b));
        unsigned checked = 0, denied_ok = 0, allowed_ok = 0;

        CHECK(b != NULL);
        start(&d, tokpath, sizeof(tokpath), NULL);
        setup_data(d.port);
        for (int role = 0; role < N_ROLES; role++) {
                struct tc c;
                proto_response *r;

                tc_connect(&c, d.port);
                r = hello(&c, role_token[role], 1);
                CHECK(r->code == OK && r->body_case == DREAM__V1__RESPONSE__BODY_HELLO);
                /* Granted: exactly the token's role. */
                if (r->hello->n_granted_roles != 1 || (int)r->hello->granted_roles[0] != role + 1) {
                        FAILF("role %s: hello grants %zu roles (first %d), expected only %s",
                              role_name[role], r->hello->n_granted_roles,
                              r->hello->n_granted_roles ? (int)r->hello->granted_roles[0] : -1,
                              role_name[role]);
                }
                proto_response_free(r);
                for (size_t k = 0; k < N_KINDS; k++) {
                        const struct kind *kd = &kinds[k];
                        int code =
                            tc_call_code(&c, build(b, kd->body, role_name[role], 100 + k), 20000);
                        enum expect e = kd->e[role];

                        checked++;
                        if (code < 0) {
                                FAILF("role %s, %s: no answer (connection closed?)",
                                      role_name[role], kd->name);
                                tc_close(&c);
                                tc_connect(&c, d.port);
                                r = hello(&c, role_token[role], 1);
                                proto_response_free(r);
                                continue;
                        }
                        if (e == A && code == DENIED)
                                FAILF("role %s, %s: permitted, but answered %s", role_name[role],
                                      kd->name, status_name(code));
                        else if (e == D && code != DENIED)
                                FAILF("role %s, %s: forbidden, but answered %s (expected "
                                      "STATUS_DENIED)",
                                      role_name[role], kd->name, status_name(code));
                        else if (e == D)
                                denied_ok++;
                        else
                                allowed_ok++;
                        if (code == AUTH)
                                FAILF("role %s, %s: STATUS_AUTH on an authenticated connection",
                                      role_name[role], kd->name);
                        fprintf(stderr, "  %-7s %-17s %-26s %s\n", role_name[role], kd->name,
                                status_name(code),
                                e == A   ? "(permitted)"
                                : e == D ? "(forbidden)"
                                         : "(either)");
                }
                tc_close(&c);
        }
        /* Two roles on one token: the union. */
        {
                struct tc c;
                proto_response *r;
                int code;

                tc_connect(&c, d.port);
                r = hello(&c, "tok-ingest-read-44aa01", 1);
                CHECK(r->code == OK);
                if (r->hello->n_granted_roles != 2)
                        FAILF("token ingest,read: hello grants %zu roles, expected 2",
                              r->hello->n_granted_roles);
                proto_response_free(r);
                code = tc_call_code(&c, build(b, DREAM__V1__REQUEST__BODY_EXPORT, "ir", 2), 20000);
                if (code == DENIED)
                        FAILF("token ingest,read: export denied");
                code = tc_call_code(&c, build(b, DREAM__V1__REQUEST__BODY_INGEST, "ir", 3), 20000);
                if (code == DENIED)
                        FAILF("token ingest,read: ingest denied");
                code = tc_call_code(
                    &c, build(b, DREAM__V1__REQUEST__BODY_DROP_DATASET, "ingest", 4), 20000);
                if (code != DENIED)
                        FAILF("token ingest,read: drop answered %s, expected STATUS_DENIED",
                              status_name(code));
                tc_close(&c);
        }
        CHECK(td_stop(&d) == 0);
        td_rmtree(tmp_dir);
        free(b);
        fprintf(stderr,
                "matrix: %u role x request cases (%zu request types x %d roles + 3): %u denied "
                "as expected, %u not denied as expected, %u failures\n",
                checked + 3, N_KINDS, N_ROLES, denied_ok, allowed_ok, tc_failures);
}

static unsigned count_lines(const char *path, const char *needle)
{
        FILE *f = fopen(path, "r");
        char line[1024];
        unsigned n = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (strstr(line, needle))
                        n++;
        fclose(f);
        return n;
}

static void test_auth(void)
{
        struct tdaemon d;
        char tokpath[300], log[300];
        struct reqbuf *b = calloc(1, sizeof(*b));
        struct tc c;
        proto_response *r;
        unsigned guesses = 0, busy = 0, logged;
        double t0;

        CHECK(b != NULL);
        snprintf(log, sizeof(log), "/tmp/dreamd-roles-log-%d", (int)getpid());
        unlink(log);
        start(&d, tokpath, sizeof(tokpath), log);

        /* Before authentication: every request but hello is refused. */
        tc_connect(&c, d.port);
        for (size_t k = 0; k < N_KINDS; k++) {
                int code = tc_call_code(&c, build(b, kinds[k].body, "pre", 100 + k), 20000);
                int want = AUTH;
                if (code != want)
                        FAILF("before hello, %s answered %s, expected %s", kinds[k].name,
                              status_name(code), status_name(want));
        }
        /* A wrong token does not authenticate either. */
        r = hello(&c, "tok-admin-e93a62", 200);
        if (r->code != AUTH)
                FAILF("a wrong token answered %s", status_name((int)r->code));
        proto_response_free(r);
        for (size_t k = 0; k < N_KINDS; k++) {
                int code = tc_call_code(&c, build(b, kinds[k].body, "pre2", 300 + k), 20000);
                int want = AUTH;
                if (code != want)
                        FAILF("after a wrong token, %s answered %s", kinds[k].name,
                              status_name(code));
        }
        /* Two more wrong tokens: closed (3 per connection). */
        for (int i = 0; i < 2; i++) {
                r = hello(&c, i ? "" : "nope", 400 + (uint64_t)i);
                if (r->code != AUTH)
                        FAILF("wrong token %d answered %s", i, status_name((int)r->code));
                proto_response_free(r);
        }
        if (!tc_wait_closed(&c, 5000))
                FAILF("the connection was not closed after 3 wrong tokens");
        tc_close(&c);
        /* The right token still works on a new connection. */
        tc_connect(&c, d.port);
        r = hello(&c, role_token[R_READ], 500);
        if (r->code != OK)
                FAILF("the right token after wrong ones: %s", status_name((int)r->code));
        proto_response_free(r);
        tc_close(&c);
        /* Guessing through reconnections: past the per-server limit a hello
         * answers BUSY without comparing the token. */
        t0 = tc_now();
        while (tc_now() - t0 < 1.0) {
                tc_connect(&c, d.port);
                for (int i = 0; i < 3; i++) {
                        r = hello(&c, "guess-guess", 600);
                        CHECK(r->code == AUTH || r->code == DREAM__V1__STATUS__STATUS_BUSY);
                        if (r->code == AUTH)
                                guesses++;
                        else
                                busy++;
                        proto_response_free(r);
                        if (busy)
                                break;
                }
                tc_close(&c);
        }
        if (busy == 0 || guesses > 3 * SRV_MAX_AUTH_FAILURES_PER_SECOND)
                FAILF("%u tokens compared and %u refused BUSY in 1 s over new connections", guesses,
                      busy);
        /* Once the guessing stops, the right token works again. */
        usleep(1100 * 1000);
        tc_connect(&c, d.port);
        r = hello(&c, role_token[R_READ], 700);
        if (r->code != OK)
                FAILF("the right token after the guessing: %s", status_name((int)r->code));
        proto_response_free(r);
        tc_close(&c);
        CHECK(td_stop(&d) == 0);
        logged = count_lines(log, "authentication failed");
        if (logged < 3 + guesses)
                FAILF("%u wrong tokens sent, %u logged ('authentication failed')", 3 + guesses,
                      logged);
        fprintf(stderr,
                "auth: %u wrong tokens logged; in 1 s over new connections %u compared, %u "
                "refused BUSY\n",
                logged, guesses, busy);
        unlink(log);
        td_rmtree(tmp_dir);

        /* Non-loopback listen address without a token file: refuses to start. */
        {
                const char *addrs[] = {"0.0.0.0:0", "[::]:0"};
                char dir[] = "/tmp/dreamd-roles-nl-XXXXXX";
                char data[200];
                struct tdaemon d2;

                CHECK(mkdtemp(dir) != NULL);
                snprintf(data, sizeof(data), "%s/data", dir);
                snprintf(log, sizeof(log), "%s/log", dir);
                for (size_t i = 0; i < 2; i++) {
                        int rc = td_spawn(&d2, data, addrs[i], NULL, log);
                        if (rc == 0) {
                                FAILF("dreamd started on %s without a token file", addrs[i]);
                                td_kill(&d2);
                        } else if (rc != 2) {
                                FAILF("dreamd on %s without a token file: exit %d, expected 2",
                                      addrs[i], rc);
                        }
                }
                if (count_lines(log, "refusing to listen on non-loopback") < 2)
                        FAILF("the refusal is not logged naming the address");
                /* With a token file it starts. */
                snprintf(tokpath, sizeof(tokpath), "%s/tokens", dir);
                write_tokens(tokpath);
                {
                        const char *extra[] = {"--token-file", tokpath, NULL};
                        int rc = td_spawn(&d2, data, "0.0.0.0:0", extra, log);
                        if (rc != 0)
                                FAILF("dreamd on 0.0.0.0 with a token file did not start (%d)", rc);
                        else {
                                /* Served once: its loop (and SIGTERM handler) runs. */
                                struct tc c2;
                                proto_response *r2;
                                tc_connect(&c2, d2.port);
                                r2 = hello(&c2, role_token[R_ADMIN], 1);
                                CHECK(r2->code == OK);
                                proto_response_free(r2);
                                tc_close(&c2);
                                CHECK(td_stop(&d2) == 0);
                        }
                }
                td_rmtree(dir);
        }
        free(b);
}

/* Run the dream CLI (DREAM_CLI) with args; its exit status. */
static int run_cli(const char *const *args, const char *log)
{
        const char *exe = getenv("DREAM_CLI");
        const char *argv[32];
        int n = 0, st;
        pid_t pid;

        CHECK(exe != NULL);
        argv[n++] = exe;
        for (int i = 0; args[i] && n < 31; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execv(exe, (char *const *)argv);
                _exit(127);
        }
        CHECK(waitpid(pid, &st, 0) == pid);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The dream CLI with role tokens: `dream ingest` works with an ingest-only
 * token (it describes the dataset first: that must not need the read role),
 * `dream export` with a read-only token; `dream ingest` with a read-only
 * token is refused. */
static void test_cli(void)
{
        struct tdaemon d;
        char tokpath[300], csv[300], tok[N_ROLES][300], addr[64], log[300], out[300];
        const char *rows = "x,label\n1,0\n2,1\n3,0\n4,1\n";
        FILE *f;
        int rc;

        start(&d, tokpath, sizeof(tokpath), NULL);
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", d.port);
        snprintf(csv, sizeof(csv), "%s/in.csv", tmp_dir);
        snprintf(log, sizeof(log), "%s/cli.log", tmp_dir);
        snprintf(out, sizeof(out), "%s/out.csv", tmp_dir);
        f = fopen(csv, "w");
        CHECK(f && fputs(rows, f) >= 0 && fclose(f) == 0);
        for (int r = 0; r < N_ROLES; r++) {
                snprintf(tok[r], sizeof(tok[r]), "%s/token.%s", tmp_dir, role_name[r]);
                f = fopen(tok[r], "w");
                CHECK(f && fprintf(f, "%s\n", role_token[r]) > 0 && fclose(f) == 0);
        }
        rc = run_cli((const char *const[]){"-s", addr, "--token-file", tok[R_INGEST], "ingest",
                                           "fresh", csv, NULL},
                     log);
        if (rc != 0)
                FAILF("`dream ingest` of a new dataset with an ingest-only token: exit %d", rc);
        rc = run_cli((const char *const[]){"-s", addr, "--token-file", tok[R_ADMIN], "ingest",
                                           "existing", csv, NULL},
                     log);
        CHECK(rc == 0);
        rc = run_cli((const char *const[]){"-s", addr, "--token-file", tok[R_INGEST], "ingest",
                                           "existing", csv, NULL},
                     log);
        if (rc != 0)
                FAILF("`dream ingest` into an existing dataset with an ingest-only token: exit %d",
                      rc);
        rc = run_cli((const char *const[]){"-s", addr, "--token-file", tok[R_READ], "export",
                                           "existing", "-o", out, NULL},
                     log);
        if (rc != 0)
                FAILF("`dream export` with a read-only token: exit %d", rc);
        rc = run_cli((const char *const[]){"-s", addr, "--token-file", tok[R_READ], "ingest",
                                           "existing", csv, NULL},
                     log);
        if (rc == 0)
                FAILF("`dream ingest` with a read-only token succeeded");
        if (tc_failures) {
                char line[512];
                f = fopen(log, "r");
                while (f && fgets(line, sizeof(line), f))
                        fprintf(stderr, "  cli: %s", line);
                if (f)
                        fclose(f);
        }
        CHECK(td_stop(&d) == 0);
        td_rmtree(tmp_dir);
}

int main(int argc, char **argv)
{
        const char *g = argc > 1 ? argv[1] : "";

        signal(SIGPIPE, SIG_IGN);
        if (strcmp(g, "matrix") == 0)
                test_matrix();
        else if (strcmp(g, "auth") == 0)
                test_auth();
        else if (strcmp(g, "cli") == 0)
                test_cli();
        else {
                fprintf(stderr, "usage: test_roles matrix|auth|cli\n");
                return 2;
        }
        if (tc_failures) {
                fprintf(stderr, "%s: %u failures\n", g, tc_failures);
                return 1;
        }
        fprintf(stderr, "%s: ok\n", g);
        return 0;
}
