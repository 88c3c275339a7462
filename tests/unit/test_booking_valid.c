/* Unit tests of mod_booking's input rules (booking_valid.c): the pure validators (e-mail, phone normalisation,
 * calendar dates, wall-clock times, RFC 3339 instants with hand-computed epochs, partner ids) and the JSON member and
 * query parameter readers (trimming, control characters, lengths in characters, required/optional/null, the 400
 * naming the field with its prefix, unknown members).
 *
 * booking_valid.c is linked alone: the request memory, the error reply and the query parameters it calls are
 * stubbed here, so that each refusal is seen as (status, code, field) and every allocation is freed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "booking_int.h"

/* ------------------------------------------------------------------------------------------------ stubs */

typedef struct stub_block {
    struct stub_block *next;
    char data[];
} stub_block;

static stub_block *stub_blocks;
static int stub_status;
static char stub_code[64], stub_field[128], stub_message[400];
static const char *const *stub_args; /* name, value, name, value, ..., NULL */

char *booking_strndup(booking_ctx *ctx, const char *s, size_t len)
{
    stub_block *b = malloc(sizeof(*b) + len + 1);

    (void)ctx;
    assert_non_null(b);
    memcpy(b->data, s, len);
    b->data[len] = '\0';
    b->next = stub_blocks;
    stub_blocks = b;
    return b->data;
}

char *booking_strdup(booking_ctx *ctx, const char *s)
{
    return booking_strndup(ctx, s, strlen(s));
}

void booking_reply_error(booking_ctx *ctx, int status, const char *code, const char *field, const char *fmt, ...)
{
    va_list ap;

    stub_status = status;
    snprintf(stub_code, sizeof(stub_code), "%s", code);
    snprintf(stub_field, sizeof(stub_field), "%s%s", field && ctx->field_prefix ? ctx->field_prefix : "",
             field ? field : "");
    va_start(ap, fmt);
    vsnprintf(stub_message, sizeof(stub_message), fmt, ap);
    va_end(ap);
}

const char *booking_arg(booking_ctx *ctx, const char *name)
{
    size_t i;

    (void)ctx;
    for (i = 0; stub_args != NULL && stub_args[i] != NULL; i += 2) {
        if (strcmp(stub_args[i], name) == 0) {
            return stub_args[i + 1];
        }
    }
    return NULL;
}

static int setup(void **state)
{
    static booking_ctx ctx;

    memset(&ctx, 0, sizeof(ctx));
    stub_status = 0;
    stub_code[0] = stub_field[0] = stub_message[0] = '\0';
    stub_args = NULL;
    *state = &ctx;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    while (stub_blocks != NULL) {
        stub_block *next = stub_blocks->next;

        free(stub_blocks);
        stub_blocks = next;
    }
    return 0;
}

static json_t *doc(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_REJECT_DUPLICATES, &error);

    if (value == NULL) {
        fail_msg("fixture does not parse: %s: %s", text, error.text);
    }
    return value;
}

/* The last reply was a 400 with this code naming this field. */
static void expect_refusal(const char *code, const char *field)
{
    assert_int_equal(stub_status, 400);
    assert_string_equal(stub_code, code);
    assert_string_equal(stub_field, field);
    assert_true(stub_message[0] != '\0');
    stub_status = 0;
}

static void expect_no_reply(void)
{
    assert_int_equal(stub_status, 0);
}

/* ------------------------------------------------------------------------------------------- pure rules */

static void test_email(void **state)
{
    static const char *const good[] = {
        "anna@example.com",
        "Anna.Martin+salon@mail.example.co.uk",
        "o'brien@example.ie",
        "x@a-b.example",
        "1234567@example.com",
        "a_b-c!#$%&*/=?^`{|}~@example.org",
        "a@xn--bcher-kva.example",
        /* 64 bytes of local part, the most RFC 5321 allows */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com",
    };
    static const char *const bad[] = {
        "",
        "anna",
        "anna@",
        "@example.com",
        "anna@example",
        "anna@@example.com",
        "an@na@example.com",
        ".anna@example.com",
        "anna.@example.com",
        "an..na@example.com",
        "anna@example..com",
        "anna@.example.com",
        "anna@example.com.",
        "anna@-example.com",
        "anna@example-.com",
        "anna@example.123",
        "anna martin@example.com",
        "anna@exa mple.com",
        "anna@example.com ",
        "\"anna\"@example.com",
        "anna@[127.0.0.1]",
        "jos\xc3\xa9@example.com",
        "anna@ex_ample.com",
        "anna\n@example.com",
        /* 65 bytes of local part */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com",
    };
    char long_label[128], too_long[300];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!booking_valid_email(good[i])) {
            fail_msg("refused: %s", good[i]);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (booking_valid_email(bad[i])) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    assert_false(booking_valid_email(NULL));
    /* a 63-byte label passes, 64 does not */
    snprintf(long_label, sizeof(long_label), "a@%.*s.example", 63,
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert_true(booking_valid_email(long_label));
    snprintf(long_label, sizeof(long_label), "a@%.*s.example", 64,
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert_false(booking_valid_email(long_label));
    /* 254 bytes in all passes, 255 does not: a@ + 4 labels of 61 + dots + ".com" */
    memset(too_long, 0, sizeof(too_long));
    strcpy(too_long, "a@");
    for (i = 0; i < 4; i++) {
        memset(too_long + strlen(too_long), 'c', 61);
        strcat(too_long, ".");
    }
    strcat(too_long, "com"); /* 2 + 4 * 62 + 3 = 253 */
    assert_int_equal(strlen(too_long), 253);
    assert_true(booking_valid_email(too_long));
    memmove(too_long + 1, too_long, strlen(too_long) + 1); /* "aa@...": 254 */
    assert_true(booking_valid_email(too_long));
    memmove(too_long + 1, too_long, strlen(too_long) + 1); /* 255 */
    assert_false(booking_valid_email(too_long));
}

static void test_phone(void **state)
{
    static const struct {
        const char *in, *out;
    } good[] = {
        {"+33 6 12-34.56.78", "+33612345678"},    {"06 12 34 56 78", "0612345678"},
        {"(030) 1234/5678", "03012345678"},       {"+1 (555) 010-9999", "+15550109999"},
        {"0033612345678", "0033612345678"},       {"1234567", "1234567"}, /* 7 digits, the fewest */
        {"+123456789012345", "+123456789012345"},                         /* 15, the most */
    };
    static const char *const bad[] = {
        "",
        "+",
        "123456",
        "+33 6 12",
        "1234567890123456",
        "+33 6 12 34 56 78 ext 12",
        "06 12 34 56 7a",
        "++33612345678",
        "33+612345678",
        "0612345678#",
        "06_12_34_56_78",
        "+33\t612345678",
        "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2", /* over 40 bytes as typed */
    };
    char out[17];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        memset(out, 'x', sizeof(out));
        if (booking_normalize_phone(good[i].in, out, sizeof(out)) != 0) {
            fail_msg("refused: %s", good[i].in);
        }
        assert_string_equal(out, good[i].out);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(out, 'x', sizeof(out));
        if (booking_normalize_phone(bad[i], out, sizeof(out)) == 0) {
            fail_msg("accepted: %s -> %s", bad[i], out);
        }
        assert_string_equal(out, "");
    }
    /* the output buffer is never overrun: 13 bytes are one short for "+33612345678" */
    memset(out, 'x', sizeof(out));
    assert_int_equal(booking_normalize_phone("+33 6 12 34 56 78", out, 12), -1);
    assert_int_equal(out[12], 'x');
    assert_int_equal(booking_normalize_phone("+33 6 12 34 56 78", out, 13), 0);
    assert_string_equal(out, "+33612345678");
    assert_int_equal(booking_normalize_phone(NULL, out, sizeof(out)), -1);
    assert_int_equal(booking_normalize_phone("0612345678", NULL, 0), -1);
}

static void test_date(void **state)
{
    static const char *const good[] = {"2026-03-28", "2024-02-29", "2000-02-29", "0001-01-01",
                                       "9999-12-31", "2026-01-31", "2026-04-30"};
    static const char *const bad[] = {"2023-02-29",  "1900-02-29", "0000-01-01",  "2026-13-01",
                                      "2026-00-10",  "2026-04-31", "2026-04-00",  "2026-4-01",
                                      "26-04-01",    "2026/04/01", "2026-04-01x", "2026-04-01 ",
                                      " 2026-04-01", "",           "+026-04-01",  "2026-04-1"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!booking_valid_date(good[i])) {
            fail_msg("refused: %s", good[i]);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (booking_valid_date(bad[i])) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    assert_false(booking_valid_date(NULL));
}

static void test_time(void **state)
{
    static const char *const good[] = {"00:00", "09:30", "23:59", "24:00", "12:05"};
    static const char *const bad[] = {"24:01", "25:00", "12:60", "9:00", "09:00:00", "0900",
                                      "09-00", "",      "ab:cd", "09:0", " 9:00",    "-1:00"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!booking_valid_time(good[i])) {
            fail_msg("refused: %s", good[i]);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (booking_valid_time(bad[i])) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    assert_false(booking_valid_time(NULL));
}

/* Epochs by hand: 2026-01-01T00:00:00Z is 20454 days (56 years, 14 of them leap) = 1767225600; 2026-03-28 is 86
 * days later (31 + 28 + 27) = 1774656000. */
#define T_2026_03_28 1774656000LL

static void test_timestamp(void **state)
{
    static const struct {
        const char *in;
        long long epoch;
    } good[] = {
        {"2026-03-28T09:00:00+01:00", T_2026_03_28 + 8 * 3600},
        {"2026-03-28T08:00:00Z", T_2026_03_28 + 8 * 3600},
        {"2026-03-28t08:00:00z", T_2026_03_28 + 8 * 3600},
        {"2026-03-28 08:00:00Z", T_2026_03_28 + 8 * 3600},
        {"2026-03-28T08:00:00.999Z", T_2026_03_28 + 8 * 3600}, /* fractions are cut to the second */
        {"2026-03-28T08:00:00.123456789+00:00", T_2026_03_28 + 8 * 3600},
        {"2026-03-28T03:30:00-04:30", T_2026_03_28 + 8 * 3600},
        {"2026-03-28T00:30:00+05:45", T_2026_03_28 + 30 * 60 - (5 * 3600 + 45 * 60)}, /* the day before in UTC */
        {"2026-03-28T08:00:00-00:00", T_2026_03_28 + 8 * 3600},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59Z", -1},
        {"2000-01-01T00:00:00Z", 946684800LL},
        {"2024-02-29T12:00:00Z", 946684800LL + 8825LL * 86400 + 12 * 3600}, /* 24 years (6 leap) + 59 days */
        {"9999-12-31T23:59:59Z", 253402300799LL},
        {"0001-01-01T00:00:00Z", -62135596800LL},
    };
    static const char *const bad[] = {
        "2026-03-28T09:00+01:00",
        "2026-03-28T09:00:00",
        "2026-03-28T09:00:00+0100",
        "2026-03-28T09:00:00+1:00",
        "2026-03-28T24:00:00Z",
        "2026-03-28T09:60:00Z",
        "2026-03-28T09:00:60Z",
        "2026-03-28T09:00:00+24:00",
        "2026-03-28T09:00:00+01:60",
        "2026-02-29T09:00:00Z",
        "2026-03-28X09:00:00Z",
        "2026-03-28T09:00:00.Z",
        "2026-03-28T09:00:00.1234567890Z",
        "2026-03-28T09:00:00Z ",
        " 2026-03-28T09:00:00Z",
        "2026-03-28T09:00:00ZZ",
        "2026-03-28T09:00:00+01:00x",
        "2026-03-28",
        "",
        "2026-03-28T9:00:00Z",
        "2026-03-28T09:00:00+01",
        "2026-03-28T09:00:00.5",
        "2026-03-28T09:00:00GMT",
        "2026-03-28T09:00:00 +01:00",
    };
    char long_fraction[80];
    long long epoch;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        epoch = 42;
        if (booking_parse_timestamp(good[i].in, &epoch) != 0) {
            fail_msg("refused: %s", good[i].in);
        }
        if (epoch != good[i].epoch) {
            fail_msg("%s: %lld, expected %lld", good[i].in, epoch, good[i].epoch);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        epoch = 42;
        if (booking_parse_timestamp(bad[i], &epoch) == 0) {
            fail_msg("accepted: %s (%lld)", bad[i], epoch);
        }
        assert_int_equal(epoch, 42);
    }
    /* over 64 bytes: refused before looking further */
    snprintf(long_fraction, sizeof(long_fraction), "2026-03-28T09:00:00.%s+01:00",
             "000000000000000000000000000000000000000000000");
    assert_int_equal(booking_parse_timestamp(long_fraction, &epoch), -1);
    assert_int_equal(booking_parse_timestamp(NULL, &epoch), -1);
    assert_int_equal(booking_parse_timestamp("2026-03-28T08:00:00Z", NULL), -1);
}

static void test_partner_id(void **state)
{
    static const char *const good[] = {
        "salon-lumiere", "a", "0", "9-lives", "a-", "abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz"};
    static const char *const bad[] = {"",
                                      "-salon",
                                      "Salon",
                                      "salon lumiere",
                                      "salon_lumiere",
                                      "salon.fr",
                                      "salon/../x",
                                      "sal\xc3\xb3n",
                                      "abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz0"};
    size_t i;

    (void)state;
    assert_int_equal(strlen(good[5]), 63);
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!booking_valid_partner_id(good[i])) {
            fail_msg("refused: %s", good[i]);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (booking_valid_partner_id(bad[i])) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    assert_false(booking_valid_partner_id(NULL));
}

/* ---------------------------------------------------------------------------------------- JSON members */

static void test_string(void **state)
{
    booking_ctx *ctx = *state;
    json_t *o = doc("{\"name\": \"  Anna Martin\\t\\n\", \"utf\": \"\\u00e9\\u00e9\\u00e9\", \"tab\": \"a\\tb\","
                    "\"c1\": \"a\\u0085b\", \"del\": \"a\\u007fb\", \"blank\": \"   \", \"num\": 3, \"nul\": null,"
                    "\"emoji\": \"\\ud83d\\udc87\\ud83d\\udc87\"}");
    const char *out;

    out = NULL;
    assert_int_equal(booking_get_string(ctx, o, "name", 1, 200, &out), 0);
    assert_string_equal(out, "Anna Martin");
    expect_no_reply();

    /* lengths count characters: 3 x U+00E9 (6 bytes) fits in 3, two emoji (8 bytes) in 2 */
    assert_int_equal(booking_get_string(ctx, o, "utf", 1, 3, &out), 0);
    assert_string_equal(out, "\xc3\xa9\xc3\xa9\xc3\xa9");
    assert_int_equal(booking_get_string(ctx, o, "utf", 1, 2, &out), -1);
    expect_refusal("invalid", "utf");
    assert_int_equal(booking_get_string(ctx, o, "emoji", 1, 2, &out), 0);
    assert_int_equal(strlen(out), 8);

    assert_int_equal(booking_get_string(ctx, o, "tab", 1, 0, &out), -1);
    expect_refusal("invalid", "tab");
    assert_int_equal(booking_get_string(ctx, o, "c1", 1, 0, &out), -1);
    expect_refusal("invalid", "c1");
    assert_int_equal(booking_get_string(ctx, o, "del", 1, 0, &out), -1);
    expect_refusal("invalid", "del");

    /* empty after trimming: refused when required, "" when optional */
    assert_int_equal(booking_get_string(ctx, o, "blank", 1, 0, &out), -1);
    expect_refusal("invalid", "blank");
    out = NULL;
    assert_int_equal(booking_get_string(ctx, o, "blank", 0, 0, &out), 0);
    assert_string_equal(out, "");

    assert_int_equal(booking_get_string(ctx, o, "num", 0, 0, &out), -1);
    expect_refusal("invalid", "num");

    /* absent or null: required -> 400, optional -> untouched */
    assert_int_equal(booking_get_string(ctx, o, "missing", 1, 0, &out), -1);
    expect_refusal("invalid", "missing");
    assert_int_equal(booking_get_string(ctx, o, "nul", 1, 0, &out), -1);
    expect_refusal("invalid", "nul");
    out = "untouched";
    assert_int_equal(booking_get_string(ctx, o, "missing", 0, 0, &out), 0);
    assert_int_equal(booking_get_string(ctx, o, "nul", 0, 0, &out), 0);
    assert_string_equal(out, "untouched");
    expect_no_reply();
    json_decref(o);
}

static void test_int_and_bool(void **state)
{
    booking_ctx *ctx = *state;
    json_t *o = doc("{\"service\": 12, \"neg\": -3, \"real\": 12.0, \"text\": \"12\", \"big\": 9007199254740992,"
                    "\"yes\": true, \"no\": false, \"one\": 1}");
    long long v = 0;
    int b = -1;

    assert_int_equal(booking_get_int(ctx, o, "service", 1, 1, 100, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(booking_get_int(ctx, o, "service", 1, 13, 100, &v), -1);
    expect_refusal("invalid", "service");
    assert_int_equal(booking_get_int(ctx, o, "neg", 1, -3, -3, &v), 0);
    assert_int_equal(v, -3);
    assert_int_equal(booking_get_int(ctx, o, "real", 1, 0, 100, &v), -1);
    expect_refusal("invalid", "real");
    assert_int_equal(booking_get_int(ctx, o, "text", 1, 0, 100, &v), -1);
    expect_refusal("invalid", "text");
    assert_int_equal(booking_get_int(ctx, o, "big", 1, 1, 9007199254740991LL, &v), -1);
    expect_refusal("invalid", "big");
    v = 77;
    assert_int_equal(booking_get_int(ctx, o, "absent", 0, 1, 100, &v), 0);
    assert_int_equal(v, 77);
    assert_int_equal(booking_get_int(ctx, o, "absent", 1, 1, 100, &v), -1);
    expect_refusal("invalid", "absent");

    assert_int_equal(booking_get_bool(ctx, o, "yes", 1, &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(booking_get_bool(ctx, o, "no", 1, &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(booking_get_bool(ctx, o, "one", 1, &b), -1);
    expect_refusal("invalid", "one");
    b = 5;
    assert_int_equal(booking_get_bool(ctx, o, "absent", 0, &b), 0);
    assert_int_equal(b, 5);
    json_decref(o);
}

static void test_typed_members(void **state)
{
    booking_ctx *ctx = *state;
    json_t *o =
        doc("{\"email\": \" Anna.Martin@Example.COM \", \"bad_email\": \"anna@\", \"phone\": \"+33 6 12-34.56.78\","
            "\"bad_phone\": \"call me\", \"date\": \"2026-03-28\", \"bad_date\": \"2026-02-30\","
            "\"time\": \"24:00\", \"bad_time\": \"7:30\", \"start\": \"2026-03-28T09:00:00+01:00\","
            "\"bad_start\": \"tomorrow at nine\", \"empty\": \"\"}");
    const char *out = NULL;
    long long epoch = 0;

    ctx->field_prefix = "customer.";
    assert_int_equal(booking_get_email(ctx, o, "email", 1, &out), 0);
    assert_string_equal(out, "anna.martin@example.com");
    assert_int_equal(booking_get_email(ctx, o, "bad_email", 1, &out), -1);
    expect_refusal("invalid", "customer.bad_email");
    assert_int_equal(booking_get_phone(ctx, o, "phone", 1, &out), 0);
    assert_string_equal(out, "+33612345678");
    assert_int_equal(booking_get_phone(ctx, o, "bad_phone", 1, &out), -1);
    expect_refusal("invalid", "customer.bad_phone");
    /* an empty optional field reads as absent; required, it is refused */
    out = "untouched";
    assert_int_equal(booking_get_phone(ctx, o, "empty", 0, &out), 0);
    assert_int_equal(booking_get_email(ctx, o, "empty", 0, &out), 0);
    assert_string_equal(out, "untouched");
    assert_int_equal(booking_get_phone(ctx, o, "empty", 1, &out), -1);
    expect_refusal("invalid", "customer.empty");
    ctx->field_prefix = NULL;

    assert_int_equal(booking_get_date(ctx, o, "date", 1, &out), 0);
    assert_string_equal(out, "2026-03-28");
    assert_int_equal(booking_get_date(ctx, o, "bad_date", 1, &out), -1);
    expect_refusal("invalid", "bad_date");
    assert_int_equal(booking_get_time(ctx, o, "time", 1, &out), 0);
    assert_string_equal(out, "24:00");
    assert_int_equal(booking_get_time(ctx, o, "bad_time", 1, &out), -1);
    expect_refusal("invalid", "bad_time");
    assert_int_equal(booking_get_timestamp(ctx, o, "start", 1, &out, &epoch), 0);
    assert_string_equal(out, "2026-03-28T09:00:00+01:00");
    assert_int_equal(epoch, T_2026_03_28 + 8 * 3600);
    epoch = 42;
    assert_int_equal(booking_get_timestamp(ctx, o, "bad_start", 1, &out, &epoch), -1);
    expect_refusal("invalid", "bad_start");
    assert_int_equal(epoch, 42);
    assert_int_equal(booking_get_timestamp(ctx, o, "absent", 1, &out, &epoch), -1);
    expect_refusal("invalid", "absent");
    json_decref(o);
}

static void test_check_members(void **state)
{
    static const char *const allowed[] = {"service", "start", "customer", NULL};
    booking_ctx *ctx = *state;
    json_t *ok = doc("{\"service\": 1, \"start\": \"x\"}");
    json_t *unknown = doc("{\"service\": 1, \"colour\": \"red\"}");
    json_t *odd = doc("{\"a\\nb\\u00e9\\\"\": 1}");
    json_t *array = doc("[1]");

    assert_int_equal(booking_check_members(ctx, ok, allowed), 0);
    expect_no_reply();
    assert_int_equal(booking_check_members(ctx, unknown, allowed), -1);
    expect_refusal("invalid", "colour");
    /* the name is repeated printable: no line break into the log, no quote */
    ctx->field_prefix = "customer.";
    assert_int_equal(booking_check_members(ctx, odd, allowed), -1);
    expect_refusal("invalid", "customer.a?b???");
    ctx->field_prefix = NULL;
    assert_int_equal(booking_check_members(ctx, array, allowed), -1);
    assert_int_equal(stub_status, 400);
    json_decref(ok);
    json_decref(unknown);
    json_decref(odd);
    json_decref(array);
}

/* ----------------------------------------------------------------------------------- query parameters */

static void test_args(void **state)
{
    static const char *const args[] = {"from",  " 2026-03-28 ",
                                       "to",    "2026-02-30",
                                       "empty", "",
                                       "staff", "42",
                                       "zero",  "0",
                                       "lead",  "042",
                                       "sign",  "+4",
                                       "huge",  "9007199254740992",
                                       "max",   "9007199254740991",
                                       "ctl",   "2026-03-28\n",
                                       NULL};
    booking_ctx *ctx = *state;
    const char *date = NULL;
    long long id = 0;

    stub_args = args;
    assert_int_equal(booking_arg_date(ctx, "from", 1, &date), 0);
    assert_string_equal(date, "2026-03-28");
    assert_int_equal(booking_arg_date(ctx, "to", 1, &date), -1);
    expect_refusal("invalid", "to");
    date = "untouched";
    assert_int_equal(booking_arg_date(ctx, "empty", 0, &date), 0);
    assert_int_equal(booking_arg_date(ctx, "absent", 0, &date), 0);
    assert_string_equal(date, "untouched");
    assert_int_equal(booking_arg_date(ctx, "empty", 1, &date), -1);
    expect_refusal("invalid", "empty");
    assert_int_equal(booking_arg_date(ctx, "absent", 1, &date), -1);
    expect_refusal("invalid", "absent");
    /* trailing blanks are trimmed, so this one is a date */
    assert_int_equal(booking_arg_date(ctx, "ctl", 1, &date), 0);

    assert_int_equal(booking_arg_id(ctx, "staff", 1, &id), 0);
    assert_int_equal(id, 42);
    assert_int_equal(booking_arg_id(ctx, "max", 1, &id), 0);
    assert_int_equal(id, 9007199254740991LL);
    assert_int_equal(booking_arg_id(ctx, "zero", 1, &id), -1);
    expect_refusal("invalid", "zero");
    assert_int_equal(booking_arg_id(ctx, "lead", 1, &id), -1);
    expect_refusal("invalid", "lead");
    assert_int_equal(booking_arg_id(ctx, "sign", 1, &id), -1);
    expect_refusal("invalid", "sign");
    assert_int_equal(booking_arg_id(ctx, "huge", 1, &id), -1);
    expect_refusal("invalid", "huge");
    id = 7;
    assert_int_equal(booking_arg_id(ctx, "absent", 0, &id), 0);
    assert_int_equal(id, 7);
    assert_int_equal(booking_arg_id(ctx, "absent", 1, &id), -1);
    expect_refusal("invalid", "absent");
}

static void test_arg_bytes(void **state)
{
    /* percent-decoded parameters are raw bytes: invalid UTF-8 and controls inside are refused */
    static const char *const args[] = {"bad_utf8", "2026\xff-03-28", "overlong", "\xc0\xaf",
                                       "ctl",      "2026-03\x01-28", NULL};
    booking_ctx *ctx = *state;
    const char *date = NULL;

    stub_args = args;
    assert_int_equal(booking_arg_date(ctx, "bad_utf8", 1, &date), -1);
    expect_refusal("invalid", "bad_utf8");
    assert_int_equal(booking_arg_date(ctx, "overlong", 1, &date), -1);
    expect_refusal("invalid", "overlong");
    assert_int_equal(booking_arg_date(ctx, "ctl", 1, &date), -1);
    expect_refusal("invalid", "ctl");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_email, setup, teardown),
        cmocka_unit_test_setup_teardown(test_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partner_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int_and_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typed_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arg_bytes, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
