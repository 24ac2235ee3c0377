-- Each reservation's own deadline (issue 15): the reservation TTL depends on the provider
-- and payment method that made it (`docs/providers.md`, "How long a reservation holds"), so
-- the sweeper asks for reservations whose deadline has passed instead of one age for all.
-- NULL for reservations made before this migration: the sweeper gives those the default
-- TTL counted from `reserved_at`, as before.
ALTER TABLE orders ADD COLUMN reserved_until BIGINT;
CREATE INDEX orders_by_reservation_deadline ON orders (state, reserved_until);
