-- Promotions as the editors' page writes them, and their counts per day. Every node reads the enabled promotions
-- every PromoRefresh seconds; impressions, clicks and applied codes are counted in each server process and added
-- here at each refresh (no database write per request).

CREATE TABLE promo.promotions (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The whole promotion as the editors' API validated it (promo_promotion_from_json): one format to read back.
    body            jsonb       NOT NULL,
    name            text        NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 120),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    enabled         boolean     NOT NULL DEFAULT false,
    code            text        UNIQUE CHECK (code ~ '^[A-Z0-9_-]{1,32}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text,
    CHECK (ends_at > starts_at)
);
-- What the nodes load: the promotions that are on and not over.
CREATE INDEX promotions_live_idx ON promo.promotions (ends_at) WHERE enabled;

-- Impressions, clicks and redemptions (codes applied) per promotion and day (UTC).
CREATE TABLE promo.daily_counts (
    promotion_id bigint NOT NULL REFERENCES promo.promotions (id) ON DELETE CASCADE,
    day          date   NOT NULL,
    impressions  bigint NOT NULL DEFAULT 0 CHECK (impressions >= 0),
    clicks       bigint NOT NULL DEFAULT 0 CHECK (clicks >= 0),
    redemptions  bigint NOT NULL DEFAULT 0 CHECK (redemptions >= 0),
    PRIMARY KEY (promotion_id, day)
);
