/* mod_paywall's server-neutral logic, shared by the Apache and nginx adapters: Stripe-Signature verification,
 * crawler ranges, the access decision from a subscription's state, the anonymous meter cookie and the directive
 * setters. Nothing here touches the network or a store, nothing prints: every function is pure or works only on
 * what it is given, and is safe to call from any thread and from nginx's event loop. */
#ifndef PAYWALL_H
#define PAYWALL_H

#include <stddef.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------- Stripe-Signature */

#define PAYWALL_STRIPE_TOLERANCE  300  /* seconds, Stripe's default */
#define PAYWALL_STRIPE_HEADER_MAX 2048 /* a real header is about 150 bytes, 220 with a rolled secret and v0 */
#define PAYWALL_STRIPE_V1_MAX     8    /* one per active signing secret: two while a secret is rolled */
#define PAYWALL_STRIPE_SIG_HEX    64

typedef enum {
    PAYWALL_STRIPE_OK,
    PAYWALL_STRIPE_MALFORMED,    /* not t=...,v1=...: a missing or bad timestamp, a bad v1, oversize, empty payload */
    PAYWALL_STRIPE_NO_SIGNATURE, /* well formed, but no v1 signature (only v0 or unknown schemes) */
    PAYWALL_STRIPE_MISMATCH,     /* no v1 is the HMAC of this payload under this secret */
    PAYWALL_STRIPE_TIMESTAMP,    /* signed by the secret, but the timestamp is outside the tolerance */
    PAYWALL_STRIPE_NO_SECRET,    /* the caller gave no secret: a configuration error, not the sender's */
} paywall_stripe_status;

typedef struct {
    long long timestamp;                   /* the t= value, 0 to 999999999999 */
    const char *v1[PAYWALL_STRIPE_V1_MAX]; /* each 64 lower-case hex digits, pointing into the header */
    size_t nv1;
} paywall_stripe_header;

/* Splits "t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]": items in any order, schemes other than t and v1 ignored.
 * Refuses (PAYWALL_STRIPE_MALFORMED) what Stripe never sends: an empty or oversize header, a space, control or
 * non-ASCII character, an empty item or one without '=', no t or two of them, a t that is not a plain decimal
 * number, a v1 that is not 64 lower-case hex digits, more than PAYWALL_STRIPE_V1_MAX v1. PAYWALL_STRIPE_NO_SIGNATURE
 * when there is no v1. *reason (may be NULL) gets a short static phrase for the log. */
paywall_stripe_status paywall_stripe_parse_header(const char *header, size_t header_len, paywall_stripe_header *out,
                                                  const char **reason);

/* Verifies a webhook exactly as Stripe specifies: some v1 equals hex(HMAC-SHA256(secret, "<t>.<payload>")), compared
 * in constant time, and |now - t| <= tolerance. The secret is the whole "whsec_..." string, as Stripe uses it.
 * tolerance <= 0 means PAYWALL_STRIPE_TOLERANCE: unlike Stripe's libraries, 0 never turns the replay check off.
 * A timestamp in the future is refused like a stale one (Stripe's libraries only look at the past): a signature
 * dated ahead of our clock by more than the tolerance is as replayable later as an old one now. */
paywall_stripe_status paywall_stripe_verify(const char *header, size_t header_len, const char *payload,
                                            size_t payload_len, const char *secret, size_t secret_len, time_t now,
                                            long tolerance, const char **reason);

const char *paywall_stripe_status_name(paywall_stripe_status status);

/* ----------------------------------------------------------------------------------------- crawler ranges */

#define PAYWALL_CRAWLERS_FILE_MAX    (4 * 1024 * 1024) /* Google's published files are tens of KB */
#define PAYWALL_CRAWLERS_ENTRIES_MAX 65536
#define PAYWALL_CRAWLERS_V4_MIN_LEN  8  /* shorter prefixes are refused: they would open the paywall to a */
#define PAYWALL_CRAWLERS_V6_MIN_LEN  16 /* large part of the Internet, which no crawler list means to do */

typedef struct paywall_crawlers paywall_crawlers;

/* Reads Google's crawler-ranges format, {"creationTime":"...","prefixes":[{"ipv4Prefix":"66.249.64.0/27"},
 * {"ipv6Prefix":"2001:4860:4801:10::/64"}]}. Other members (syncToken, service, scope) are ignored. Host bits set
 * below the prefix length are cleared, an IPv4-mapped ipv6Prefix (::ffff:a.b.c.d/96+) is stored as the IPv4 range
 * it means. Returns 0 and *out (free with paywall_crawlers_free), or -1 with a message naming the entry in err
 * ("prefixes[3]: prefix length 33 out of range for IPv4"). */
int paywall_crawlers_parse(const char *json, size_t len, paywall_crawlers **out, char *err, size_t errlen);
/* The same from a file, refused when larger than PAYWALL_CRAWLERS_FILE_MAX; err names the file. */
int paywall_crawlers_load(const char *path, paywall_crawlers **out, char *err, size_t errlen);
void paywall_crawlers_free(paywall_crawlers *crawlers);

/* 1 when addr (IPv4, IPv6, or IPv4-mapped IPv6 "::ffff:66.249.64.1") lies in a range, else 0, also for NULL or
 * anything that is not an address: a caller writing if (match) can never open the gate by mistake. O(log n). */
int paywall_crawlers_match(const paywall_crawlers *crawlers, const char *addr);

/* The prefixes as listed (after normalisation), for logs and tests. */
size_t paywall_crawlers_count(const paywall_crawlers *crawlers);
/* Writes prefix i as "address/length" (at most INET6_ADDRSTRLEN + 4 bytes). Returns 0, or -1 when i is out of
 * range or out too small. */
int paywall_crawlers_prefix(const paywall_crawlers *crawlers, size_t i, char *out, size_t outlen);
/* The file's creationTime, or NULL when it had none. */
const char *paywall_crawlers_creation_time(const paywall_crawlers *crawlers);

/* ---------------------------------------------------------------------------------------- access decision */

#define PAYWALL_GRACE_DEFAULT (7L * 24 * 60 * 60)
#define PAYWALL_REQUIRE_MAX   32
#define PAYWALL_PLAN_MAX      128 /* characters of a plan name */

/* Stripe's subscription statuses. */
typedef enum {
    PAYWALL_SUB_UNKNOWN, /* a status this code does not know: closes */
    PAYWALL_SUB_ACTIVE,
    PAYWALL_SUB_TRIALING,
    PAYWALL_SUB_PAST_DUE,
    PAYWALL_SUB_UNPAID,
    PAYWALL_SUB_INCOMPLETE,
    PAYWALL_SUB_INCOMPLETE_EXPIRED,
    PAYWALL_SUB_CANCELED,
    PAYWALL_SUB_PAUSED,
} paywall_sub_status;

/* "active" -> PAYWALL_SUB_ACTIVE ...; anything else -> PAYWALL_SUB_UNKNOWN. */
paywall_sub_status paywall_sub_status_parse(const char *text, size_t len);
const char *paywall_sub_status_name(paywall_sub_status status);

typedef struct {
    paywall_sub_status status;
    const char *plan;          /* the name the site gives the plan in PaywallRequire, NULL when none */
    time_t current_period_end; /* Stripe's current_period_end */
    time_t past_due_since;     /* when the status became past_due (the event's created time); 0 = unknown */
    int cancel_at_period_end;
} paywall_subscription;

/* PaywallRequire any | PLAN...: filled one argument at a time by paywall_parse_require. */
typedef struct {
    int any;
    const char *plans[PAYWALL_REQUIRE_MAX]; /* point at the directive's arguments: keep them alive */
    size_t nplans;
} paywall_require;

typedef enum {
    PAYWALL_DENIED,
    PAYWALL_GRANTED,
} paywall_decision;

/* Whether this subscription opens a location that requires `require`, at `now`:
 *   - active and trialing open;
 *   - past_due opens while now < past_due_since + grace. Counted from past_due_since, not from
 *     current_period_end: Stripe advances the period when it invoices the renewal, before the payment fails, so
 *     during past_due current_period_end is the end of the period nobody paid for, a month away. An unknown
 *     past_due_since (0) closes;
 *   - cancel_at_period_end caps any open status at current_period_end (now < current_period_end), so a missed
 *     customer.subscription.deleted event cannot keep the gate open;
 *   - unpaid, incomplete, incomplete_expired, canceled, paused and unknown statuses close;
 *   - the plan must be listed in require (case-sensitive, as Stripe's ids are), or require->any. A require with
 *     neither (the directive never set) closes: the caller decides what an unset PaywallRequire means.
 * sub NULL (no subscription) closes. grace < 0 counts as 0. *reason (may be NULL) gets a short static phrase. */
paywall_decision paywall_access_decide(const paywall_subscription *sub, const paywall_require *require, long grace,
                                       time_t now, const char **reason);

/* --------------------------------------------------------------------------------- anonymous meter cookie */

#define PAYWALL_METER_ID_LEN     16 /* 128 bits from the CSPRNG */
#define PAYWALL_METER_ID_HEX     (2 * PAYWALL_METER_ID_LEN)
#define PAYWALL_METER_KEY_MIN    16 /* bytes of signing key */
#define PAYWALL_METER_COOKIE_MAX 96 /* a cookie value is 78 characters; bigger ones are refused unread */
#define PAYWALL_METER_LIMIT_MAX  10000
#define PAYWALL_METER_PERIOD_MAX (366L * 24 * 60 * 60)

/* PaywallMeter N PERIOD */
typedef struct {
    unsigned limit; /* free views per period; 0 = none */
    long period;    /* seconds */
} paywall_meter_config;

/* What the anonymous meter cookie carries. The count itself lives in memcached, keyed by the id and the period
 * start, so editing the cookie cannot lower it, move the period or borrow another visitor's id: a changed cookie
 * fails its signature and is replaced by a new id, which is all that deleting the cookie gets anyway. Deleting the
 * cookie does reset an anonymous meter (nothing else identifies the visitor); that is why a logged-in visitor is
 * counted under the user id instead, which no cookie can change. */
typedef struct {
    unsigned char id[PAYWALL_METER_ID_LEN];
    time_t start; /* when the visitor's first period began: the anchor of the periods that follow */
} paywall_meter_visitor;

typedef enum {
    PAYWALL_METER_COOKIE_OK,
    PAYWALL_METER_COOKIE_MALFORMED,     /* not base64url(payload) "." base64url(mac), or a payload of the wrong shape */
    PAYWALL_METER_COOKIE_BAD_SIGNATURE, /* tampered, truncated mac, or made with another key */
    PAYWALL_METER_COOKIE_BAD_KEY,       /* the caller's key is shorter than PAYWALL_METER_KEY_MIN */
} paywall_meter_cookie_status;

/* A new visitor: a random id, start = now. Returns 0, or -1 when no randomness is available. */
int paywall_meter_visitor_new(paywall_meter_visitor *out, time_t now);

/* The cookie value, base64url(payload) "." base64url(HMAC-SHA256(key, label || payload)), NUL-terminated in out.
 * Returns its length, or 0 when out is smaller than PAYWALL_METER_COOKIE_MAX or the key is too short. */
size_t paywall_meter_cookie_make(const paywall_meter_visitor *visitor, const void *key, size_t key_len, char *out,
                                 size_t outlen);
/* Checks the signature in constant time without decoding the payload's fields. */
paywall_meter_cookie_status paywall_meter_cookie_verify(const char *value, size_t len, const void *key, size_t key_len);
/* Verifies, then decodes into *out (left untouched unless PAYWALL_METER_COOKIE_OK). */
paywall_meter_cookie_status paywall_meter_cookie_parse(const char *value, size_t len, const void *key, size_t key_len,
                                                       paywall_meter_visitor *out);
const char *paywall_meter_cookie_status_name(paywall_meter_cookie_status status);

/* The id as lower-case hex for a memcached key; out needs PAYWALL_METER_ID_HEX + 1 bytes. */
void paywall_meter_id_hex(const paywall_meter_visitor *visitor, char *out);

/* The period containing now, of periods [anchor + k * period, anchor + (k + 1) * period): start <= now < end.
 * Works for now before the anchor (a node whose clock is behind). The count's key carries *start, so it starts
 * afresh each period on every node, and *end - now is the TTL to give it. period <= 0 counts as 1. */
void paywall_meter_period(time_t anchor, long period, time_t now, time_t *start, time_t *end);

/* ------------------------------------------------------------------------------------- directive setters */

/* Shared by both adapters, so the two servers accept and refuse the same values. Each returns NULL or a short
 * error phrase (static) for the server to report with the directive's name. Values that are kept (plans, URLs)
 * point at the argument: the caller keeps it alive (a pool string). */

typedef enum { PAYWALL_FAIL_CLOSED, PAYWALL_FAIL_OPEN } paywall_fail_mode;

typedef enum { PAYWALL_DENY_STATUS, PAYWALL_DENY_REDIRECT, PAYWALL_DENY_TEASER } paywall_deny_kind;

typedef struct {
    paywall_deny_kind kind;
    const char *url; /* PAYWALL_DENY_REDIRECT */
    int status;      /* PAYWALL_DENY_STATUS: 400 to 499 */
} paywall_deny;

/* "30" (seconds), "30s", "15m", "36h", "7d". */
const char *paywall_parse_duration(const char *value, long *out);
/* PaywallGrace DURATION: 0 to 365d. */
const char *paywall_parse_grace(const char *value, long *out);
/* PaywallRequire: call once per argument. "any" alone, or plan names (printable ASCII, no space or comma). */
const char *paywall_parse_require(paywall_require *require, const char *arg);
/* PaywallMeter N PERIOD: N from 0 to PAYWALL_METER_LIMIT_MAX, PERIOD from 1s to 366d. */
const char *paywall_parse_meter(const char *count, const char *period, paywall_meter_config *out);
/* PaywallDeny redirect URL | teaser | status CODE: kind and its argument (NULL when none was given). A URL is a
 * path ("/subscribe") or an http(s) URL, printable ASCII without spaces or quotes; CODE is a 4xx. */
const char *paywall_parse_deny(const char *kind, const char *arg, paywall_deny *out);
/* PaywallFailMode open | closed */
const char *paywall_parse_fail_mode(const char *value, paywall_fail_mode *out);

/* ============================================================================ Stripe webhook events (issue 3) */

/* What a Stripe webhook event's JSON says, read after paywall_stripe_verify has accepted it. The parser is
 * stateless: processing each event id once is the caller's transaction (insert into paywall.processed_events, skip
 * the event when the id is already there, acknowledge it with 200 either way), and paywall_event_should_apply
 * decides whether a subscription event is newer than what the store holds. */

#define PAYWALL_EVENT_BYTES_MAX (1024 * 1024)  /* real events are a few KB; Stripe caps objects far below this */
#define PAYWALL_EVENT_DEPTH_MAX 64             /* nesting of arrays and objects; real events stay under 15 */
#define PAYWALL_EVENT_ID_MAX    255            /* characters of a Stripe id ([A-Za-z0-9_]) or of a user id */
#define PAYWALL_EVENT_TEXT_MAX  512            /* bytes of an email, name or address field */
#define PAYWALL_EVENT_TIME_MAX  253402300799LL /* 9999-12-31T23:59:59Z, the end of what timestamptz prints */

typedef enum {
    PAYWALL_EVENT_OTHER, /* any other type: acknowledged and ignored */
    PAYWALL_EVENT_CHECKOUT_COMPLETED,
    PAYWALL_EVENT_SUBSCRIPTION_CREATED,
    PAYWALL_EVENT_SUBSCRIPTION_UPDATED,
    PAYWALL_EVENT_SUBSCRIPTION_DELETED,
    PAYWALL_EVENT_INVOICE_PAID,
    PAYWALL_EVENT_INVOICE_PAYMENT_FAILED,
} paywall_event_type;

/* A postal address from Checkout. Every member is NULL or a NUL-terminated UTF-8 string of 1 to
 * PAYWALL_EVENT_TEXT_MAX bytes without control characters (C0, DEL, C1), so it can go into a CSV cell as it is
 * (after the usual = + - @ neutralisation). */
typedef struct {
    const char *name;
    const char *company; /* collected_information.business_name or customer_details.business_name */
    const char *line1;
    const char *line2;
    const char *postal_code;
    const char *city;
    const char *state;
    const char *country; /* two upper-case letters (ISO 3166-1 alpha-2) */
} paywall_event_address;

/* checkout.session.completed */
typedef struct {
    const char *session_id;
    const char *user_id;        /* client_reference_id: the id our checkout gave Stripe; NULL when none */
    const char *customer;       /* NULL in payment mode without a customer */
    const char *email;          /* customer_details.email, else customer_email; NULL when none or dropped */
    const char *subscription;   /* NULL unless mode is subscription */
    const char *mode;           /* "subscription", "payment", "setup" (or a mode Stripe adds later) */
    const char *payment_status; /* "paid", "unpaid", "no_payment_required"; NULL when absent */
    int has_amount_total;
    long long amount_total; /* cents, >= 0 */
    char currency[4];       /* three lower-case letters, "" when absent */
    int has_shipping;
    paywall_event_address shipping; /* shipping_details (API <= 2025-02-24), collected_information.shipping_details
                                       (2025-03-31 and later) or shipping (before 2022-08-01) */
} paywall_event_checkout;

/* customer.subscription.created / updated / deleted */
typedef struct {
    const char *subscription;
    const char *customer;
    const char *status_text; /* as Stripe sent it, for logs and the store */
    paywall_sub_status status;
    const char *price_id;      /* items.data[0].price.id */
    time_t current_period_end; /* top level (API <= 2025-02-24) or items.data[0] (2025-03-31 and later) */
    int cancel_at_period_end;
    time_t cancel_at;    /* 0 = none */
    time_t canceled_at;  /* 0 = none */
    const char *user_id; /* metadata.user_id (set through subscription_data.metadata at checkout); NULL when none */
} paywall_event_subscription;

/* invoice.paid / invoice.payment_failed */
typedef struct {
    const char *invoice;
    const char *customer;
    const char *subscription; /* top level (API <= 2025-02-24) or parent.subscription_details.subscription; NULL for
                                 an invoice no subscription made */
    long long amount_paid;    /* cents, >= 0 */
    long long amount_due;     /* cents, >= 0 */
    char currency[4];
    const char *status;         /* "paid", "open", ...; NULL when Stripe sent null */
    const char *billing_reason; /* "subscription_create", "subscription_cycle", ...; NULL when none */
} paywall_event_invoice;

typedef struct {
    const char *id;        /* evt_... */
    const char *type_text; /* as Stripe sent it, also for PAYWALL_EVENT_OTHER */
    paywall_event_type type;
    time_t created;
    int livemode;
    const char *api_version; /* NULL when absent */
    /* Only the member that type names is filled; the others are zero. */
    paywall_event_checkout checkout;
    paywall_event_subscription subscription;
    paywall_event_invoice invoice;
    /* A field that was dropped rather than refused (an email or address with a control character, or too long),
     * so that a genuine payment is still recorded: "" when none. The caller logs it with the event id. */
    char warning[256];
    void *doc; /* the parsed document the strings point into: private, freed by paywall_event_free */
} paywall_event;

/* Parses one event. Refuses (-1, message naming the field in err, *out NULL): more than PAYWALL_EVENT_BYTES_MAX
 * bytes or PAYWALL_EVENT_DEPTH_MAX levels, invalid JSON or UTF-8, duplicate keys, trailing data, a non-object, a
 * missing or ill-formed id, type, created or livemode; for the handled types, data.object of another object kind,
 * a required field missing or of the wrong type, an id outside [A-Za-z0-9_]{1,255}, a negative or non-integer amount
 * or time, an integer too large for 64 bits. Names, addresses and emails with control characters or over
 * PAYWALL_EVENT_TEXT_MAX bytes are dropped with a warning instead. Returns 0 and *out (free with paywall_event_free).
 * Fields of other event types and unknown fields are not read. */
int paywall_event_parse(const char *json, size_t len, paywall_event **out, char *err, size_t errlen);
void paywall_event_free(paywall_event *event);
const char *paywall_event_type_name(paywall_event_type type);

/* Whether a customer.subscription.* event should overwrite the stored subscription (has_stored 0: none stored yet).
 * Stripe does not deliver in order, so: an event older than the last one applied is skipped; canceled and
 * incomplete_expired are final (Stripe never revives them), so only another deleted event may follow; on the same
 * second a created event loses (it comes first in Stripe's own order), the others win. Other event types: 1. */
int paywall_event_should_apply(const paywall_event *event, int has_stored, time_t stored_event_created,
                               paywall_sub_status stored_status);

/* ---------------------------------------------------------------------------------------- plan table */

#define PAYWALL_PLANS_MAX 64

/* PaywallPlan NAME PRICE_ID [print]: the site's plan names for Stripe price ids. */
typedef struct {
    const char *name;     /* as in PaywallRequire */
    const char *price_id; /* price_... */
    int print;            /* subscribers get the printed edition: their shipping address is kept */
} paywall_plan;

typedef struct {
    paywall_plan plans[PAYWALL_PLANS_MAX];
    size_t nplans;
} paywall_plans;

/* One PaywallPlan directive: name as for PaywallRequire (not "any"), price_id [A-Za-z0-9_]{1,255}, flag NULL or
 * "print". A name or a price id given twice is refused, since one price must map to one plan. Keeps the pointers:
 * the caller keeps the arguments alive. Returns NULL or a static error phrase. */
const char *paywall_plans_add(paywall_plans *plans, const char *name, const char *price_id, const char *flag);
/* The plan of a price id (exact match), or NULL. */
const paywall_plan *paywall_plans_find_price(const paywall_plans *plans, const char *price_id);
/* The plan of a name (exact match), or NULL. */
const paywall_plan *paywall_plans_find_name(const paywall_plans *plans, const char *name);

#endif
