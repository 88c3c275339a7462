-- Subscribers, their subscriptions and the addresses the printed edition goes to, as Stripe's webhook events report
-- them. Ids are Stripe's ([A-Za-z0-9_], as paywall_event_parse accepts them); user ids are the site's own.

-- Each event id once: the handler inserts here first, in the same transaction as the changes the event makes, and
-- acknowledges without applying anything when the id is already present (a replay or a retry Stripe sent after a
-- timeout). Rows are purged by the module after 30 days, well past Stripe's retry window (3 days).
CREATE TABLE paywall.processed_events (
    event_id      text        PRIMARY KEY CHECK (event_id ~ '^[A-Za-z0-9_]{1,255}$'),
    type          text        NOT NULL CHECK (type ~ '^[A-Za-z0-9._-]{1,255}$'),
    event_created timestamptz NOT NULL,
    livemode      boolean     NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_received_at_idx ON paywall.processed_events (received_at);

-- One row per Stripe customer. user_id stays NULL until an event names the site's user (client_reference_id of
-- the checkout, or metadata.user_id of the subscription); a user may have several customers (two checkouts).
CREATE TABLE paywall.customers (
    customer_id text        PRIMARY KEY CHECK (customer_id ~ '^[A-Za-z0-9_]{1,255}$'),
    user_id     text        CHECK (user_id ~ '^[A-Za-z0-9._@:+-]{1,255}$'),
    email       text        CHECK (octet_length(email) BETWEEN 1 AND 512 AND email !~ '[\x01-\x1f\x7f-\x9f]'),
    livemode    boolean     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_user_id_idx ON paywall.customers (user_id) WHERE user_id IS NOT NULL;

-- The state of each subscription, what the access decision reads. Events arrive out of order: an event changes a
-- row only when it is newer than last_event_created (paywall_event_should_apply), and canceled and
-- incomplete_expired are final. status is kept as Stripe's text, not checked against a list, so that a status
-- Stripe adds later is stored (and closes the gate, as unknown statuses do) instead of failing the event forever.
CREATE TABLE paywall.subscriptions (
    subscription_id      text        PRIMARY KEY CHECK (subscription_id ~ '^[A-Za-z0-9_]{1,255}$'),
    customer_id          text        NOT NULL REFERENCES paywall.customers (customer_id),
    user_id              text        CHECK (user_id ~ '^[A-Za-z0-9._@:+-]{1,255}$'),
    plan                 text        CHECK (char_length(plan) BETWEEN 1 AND 128), -- PaywallPlan name; NULL: unmapped
    price_id             text        NOT NULL CHECK (price_id ~ '^[A-Za-z0-9_]{1,255}$'),
    status               text        NOT NULL CHECK (status ~ '^[A-Za-z0-9._-]{1,64}$'),
    current_period_end   timestamptz NOT NULL,
    cancel_at_period_end boolean     NOT NULL DEFAULT false,
    cancel_at            timestamptz,
    canceled_at          timestamptz,
    -- Set from the event that made the status past_due (or from invoice.payment_failed, whichever comes first),
    -- cleared when it leaves past_due or an invoice is paid: the grace period counts from here.
    past_due_since       timestamptz,
    -- The created time of the event that set status and past_due_since: invoice events change the status without
    -- being subscription events, so a subscription event older than the last invoice event keeps its hands off them.
    status_changed_at    timestamptz NOT NULL DEFAULT now(),
    livemode             boolean     NOT NULL,
    last_event_created   timestamptz NOT NULL,
    last_event_id        text        NOT NULL CHECK (last_event_id ~ '^[A-Za-z0-9_]{1,255}$'),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- The access check: a user's subscriptions.
CREATE INDEX subscriptions_user_id_idx ON paywall.subscriptions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX subscriptions_customer_id_idx ON paywall.subscriptions (customer_id);
-- The routing CSV: subscriptions of a print plan whose paid period covers the issue date.
CREATE INDEX subscriptions_plan_period_idx ON paywall.subscriptions (plan, current_period_end)
    WHERE status IN ('active', 'trialing', 'past_due');

-- Where the printed edition goes. An address is never overwritten: a new one closes the current one (valid_until)
-- so that the CSV for a past issue date still lists the address that issue went to. Keyed by subscription without
-- a foreign key to it, because checkout.session.completed (which carries the address) may arrive before
-- customer.subscription.created. Text columns refuse control characters, as the parser does, so no CSV row can
-- break; cells starting with = + - @ are neutralised by the export, not here.
CREATE TABLE paywall.shipping_addresses (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id text        NOT NULL CHECK (subscription_id ~ '^[A-Za-z0-9_]{1,255}$'),
    customer_id     text        NOT NULL REFERENCES paywall.customers (customer_id),
    name            text        NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 512
                                                AND name !~ '[\x01-\x1f\x7f-\x9f]'),
    company         text        CHECK (octet_length(company) BETWEEN 1 AND 512
                                       AND company !~ '[\x01-\x1f\x7f-\x9f]'),
    line1           text        NOT NULL CHECK (octet_length(line1) BETWEEN 1 AND 512
                                                AND line1 !~ '[\x01-\x1f\x7f-\x9f]'),
    line2           text        CHECK (octet_length(line2) BETWEEN 1 AND 512 AND line2 !~ '[\x01-\x1f\x7f-\x9f]'),
    postal_code     text        CHECK (octet_length(postal_code) BETWEEN 1 AND 512
                                       AND postal_code !~ '[\x01-\x1f\x7f-\x9f]'),
    city            text        CHECK (octet_length(city) BETWEEN 1 AND 512 AND city !~ '[\x01-\x1f\x7f-\x9f]'),
    state           text        CHECK (octet_length(state) BETWEEN 1 AND 512 AND state !~ '[\x01-\x1f\x7f-\x9f]'),
    country         text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    source_event_id text        NOT NULL CHECK (source_event_id ~ '^[A-Za-z0-9_]{1,255}$'),
    valid_from      timestamptz NOT NULL, -- the created time of the event that brought the address
    valid_until     timestamptz,          -- NULL: the current address
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until IS NULL OR valid_until >= valid_from)
);
-- At most one current address per subscription; also the lookup the CSV joins on.
CREATE UNIQUE INDEX shipping_addresses_current_idx ON paywall.shipping_addresses (subscription_id)
    WHERE valid_until IS NULL;
-- The address valid at an issue date.
CREATE INDEX shipping_addresses_subscription_period_idx ON paywall.shipping_addresses (subscription_id, valid_from);
CREATE INDEX shipping_addresses_customer_id_idx ON paywall.shipping_addresses (customer_id);
