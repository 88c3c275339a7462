-- mod_booking: partners (salons), their opening hours and exceptions, staff with working plans, breaks and
-- absences, services, resources (rooms, chairs), customers, bookings and the notification outbox.
-- Wall-clock times (opening hours, plans, exceptions) are local to the partner's time zone; instants are timestamptz.
-- Double booking is impossible by construction: the exclusion constraints below refuse two live bookings whose busy
-- ranges (the service plus its buffers, [) ranges) overlap for the same staff member or the same resource.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE booking.partners (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    city text NOT NULL DEFAULT '' CHECK (length(city) <= 100),
    address text NOT NULL DEFAULT '' CHECK (length(address) <= 300),
    phone text NOT NULL DEFAULT '',
    email text NOT NULL DEFAULT '',
    time_zone text,                                   -- NULL: the server's BookingTimeZone
    hosts text[] NOT NULL DEFAULT '{}',               -- lower-case host names of its white-label site
    branding jsonb NOT NULL DEFAULT '{}',             -- {"color": "#8a3b5c", "logo_url": "...", "tagline": "..."}
    currency char(3) NOT NULL DEFAULT 'EUR',
    min_notice_minutes integer NOT NULL DEFAULT 60 CHECK (min_notice_minutes BETWEEN 0 AND 43200),
    horizon_days integer NOT NULL DEFAULT 60 CHECK (horizon_days BETWEEN 1 AND 730),
    slot_step_minutes integer NOT NULL DEFAULT 15 CHECK (slot_step_minutes BETWEEN 5 AND 240),
    cancel_deadline_minutes integer NOT NULL DEFAULT 1440 CHECK (cancel_deadline_minutes BETWEEN 0 AND 43200),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX partners_hosts ON booking.partners USING gin (hosts);
CREATE INDEX partners_city ON booking.partners (lower(city));

-- Which login of the server's own authentication (REMOTE_USER) manages which partner.
CREATE TABLE booking.partner_users (
    login text PRIMARY KEY,
    partner_id text NOT NULL REFERENCES booking.partners ON DELETE CASCADE
);

-- ISO weekday: 1 Monday ... 7 Sunday. Several rows a day make several windows (a lunch closure).
CREATE TABLE booking.opening_hours (
    partner_id text NOT NULL REFERENCES booking.partners ON DELETE CASCADE,
    weekday smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    opens time NOT NULL,
    closes time NOT NULL,
    CHECK (opens < closes)
);
CREATE INDEX opening_hours_partner ON booking.opening_hours (partner_id, weekday);

-- A day with at least one row here replaces its weekday's opening hours: a row without times closes the whole day,
-- rows with times are that day's only windows (special hours).
CREATE TABLE booking.partner_exceptions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id text NOT NULL REFERENCES booking.partners ON DELETE CASCADE,
    day date NOT NULL,
    opens time,
    closes time,
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 200),
    CHECK ((opens IS NULL) = (closes IS NULL)),
    CHECK (opens IS NULL OR opens < closes)
);
CREATE INDEX partner_exceptions_day ON booking.partner_exceptions (partner_id, day);

CREATE TABLE booking.staff (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id text NOT NULL REFERENCES booking.partners ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    active boolean NOT NULL DEFAULT true,
    -- the secret of the staff member's iCalendar feed URL (256 bits from gen_random_uuid's CSPRNG)
    ical_token text NOT NULL UNIQUE
        DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_partner ON booking.staff (partner_id);

-- Working plan: when a staff member works on each weekday (intersected with the partner's opening hours).
CREATE TABLE booking.staff_hours (
    staff_id bigint NOT NULL REFERENCES booking.staff ON DELETE CASCADE,
    weekday smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    starts time NOT NULL,
    ends time NOT NULL,
    CHECK (starts < ends)
);
CREATE INDEX staff_hours_staff ON booking.staff_hours (staff_id, weekday);

CREATE TABLE booking.staff_breaks (
    staff_id bigint NOT NULL REFERENCES booking.staff ON DELETE CASCADE,
    weekday smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    starts time NOT NULL,
    ends time NOT NULL,
    CHECK (starts < ends)
);
CREATE INDEX staff_breaks_staff ON booking.staff_breaks (staff_id, weekday);

-- Absences: without times the whole day, otherwise [starts, ends) of that day.
CREATE TABLE booking.staff_exceptions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id bigint NOT NULL REFERENCES booking.staff ON DELETE CASCADE,
    day date NOT NULL,
    starts time,
    ends time,
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 200),
    CHECK ((starts IS NULL) = (ends IS NULL)),
    CHECK (starts IS NULL OR starts < ends)
);
CREATE INDEX staff_exceptions_day ON booking.staff_exceptions (staff_id, day);

CREATE TABLE booking.resources (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id text NOT NULL REFERENCES booking.partners ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind text NOT NULL CHECK (kind ~ '^[a-z0-9_-]{1,40}$'),
    active boolean NOT NULL DEFAULT true
);
CREATE INDEX resources_partner ON booking.resources (partner_id, kind);

CREATE TABLE booking.services (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id text NOT NULL REFERENCES booking.partners ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    category text NOT NULL DEFAULT '' CHECK (length(category) <= 100),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 5 AND 720),
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    currency char(3) NOT NULL DEFAULT 'EUR',
    buffer_before_minutes integer NOT NULL DEFAULT 0 CHECK (buffer_before_minutes BETWEEN 0 AND 240),
    buffer_after_minutes integer NOT NULL DEFAULT 0 CHECK (buffer_after_minutes BETWEEN 0 AND 240),
    resource_kind text CHECK (resource_kind ~ '^[a-z0-9_-]{1,40}$'), -- NULL: needs no resource
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX services_partner ON booking.services (partner_id);
CREATE INDEX services_name ON booking.services (lower(name));

CREATE TABLE booking.service_staff (
    service_id bigint NOT NULL REFERENCES booking.services ON DELETE CASCADE,
    staff_id bigint NOT NULL REFERENCES booking.staff ON DELETE CASCADE,
    PRIMARY KEY (service_id, staff_id)
);
CREATE INDEX service_staff_staff ON booking.service_staff (staff_id);

-- One row per e-mail address (stored lower-case); name and phone are those of the latest booking.
CREATE TABLE booking.customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    phone text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE booking.bookings (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id text NOT NULL REFERENCES booking.partners,
    service_id bigint NOT NULL REFERENCES booking.services,
    staff_id bigint NOT NULL REFERENCES booking.staff,
    resource_id bigint REFERENCES booking.resources,
    customer_id bigint NOT NULL REFERENCES booking.customers,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    busy tstzrange NOT NULL,          -- [starts_at - buffer before, ends_at + buffer after)
    status text NOT NULL DEFAULT 'confirmed' CHECK (status IN ('confirmed', 'cancelled', 'completed', 'no_show')),
    price_cents integer NOT NULL,     -- the price at booking time
    currency char(3) NOT NULL,
    manage_token_hash bytea NOT NULL UNIQUE, -- SHA-256 of the customer's manage token
    notes text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    CHECK (starts_at < ends_at),
    CONSTRAINT bookings_staff_free EXCLUDE USING gist (staff_id WITH =, busy WITH &&) WHERE (status <> 'cancelled'),
    CONSTRAINT bookings_resource_free EXCLUDE USING gist (resource_id WITH =, busy WITH &&)
        WHERE (status <> 'cancelled' AND resource_id IS NOT NULL)
);
CREATE INDEX bookings_partner_start ON booking.bookings (partner_id, starts_at);
CREATE INDEX bookings_customer ON booking.bookings (customer_id);

-- Notifications, written in the booking's own transaction; the dispatchers of every node claim due rows with
-- FOR UPDATE SKIP LOCKED. Reminders are rows due later. Delivered, dead and cancelled rows are purged after 30 days.
CREATE TABLE booking.outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id bigint REFERENCES booking.bookings ON DELETE CASCADE,
    kind text NOT NULL,               -- booking.confirmed, booking.cancelled, booking.rescheduled, booking.reminder
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead', 'cancelled')),
    due_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at timestamptz
);
CREATE INDEX outbox_pending ON booking.outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_booking ON booking.outbox (booking_id);
CREATE INDEX outbox_done ON booking.outbox (created_at) WHERE status <> 'pending';
