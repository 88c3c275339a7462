-- The booking benchmark's catalogue: 200 partners in Europe/Paris, 5 staff each (1,000), 3 services each, opening
-- hours Monday to Saturday with a lunch break for the staff, and a year of bookings (300 days back, 65 ahead: four
-- a day per staff member, about 1.2 million rows) so that availability reads a realistic calendar. Days from 70
-- ahead are left free for the booking-creation scenario.
BEGIN;
INSERT INTO booking.partners (id, name, city, time_zone, min_notice_minutes, horizon_days, slot_step_minutes,
                              cancel_deadline_minutes)
SELECT 'p' || lpad(i::text, 3, '0'), 'Salon ' || i, (ARRAY['Paris', 'Lyon', 'Marseille', 'Lille', 'Nantes'])[1 + i % 5],
       'Europe/Paris', 0, 400, 15, 60
FROM generate_series(1, 200) i;
INSERT INTO booking.opening_hours (partner_id, weekday, opens, closes)
SELECT p.id, d, '09:00', '19:00' FROM booking.partners p, generate_series(1, 6) d;
INSERT INTO booking.staff (partner_id, name)
SELECT p.id, 'Staff ' || s FROM booking.partners p, generate_series(1, 5) s ORDER BY p.id, s;
INSERT INTO booking.staff_hours (staff_id, weekday, starts, ends)
SELECT st.id, d, '09:00', '18:00' FROM booking.staff st, generate_series(1, 6) d;
INSERT INTO booking.staff_breaks (staff_id, weekday, starts, ends)
SELECT st.id, d, '12:30', '13:30' FROM booking.staff st, generate_series(1, 6) d;
INSERT INTO booking.services (partner_id, name, category, duration_minutes, price_cents, buffer_after_minutes)
SELECT p.id, v.name, v.category, v.duration, v.price, 15
FROM booking.partners p,
     (VALUES ('Haircut', 'hair', 45, 3500), ('Manicure', 'nails', 30, 2500), ('Massage', 'spa', 60, 7000))
         AS v(name, category, duration, price)
ORDER BY p.id, v.duration;
INSERT INTO booking.service_staff (service_id, staff_id)
SELECT sv.id, st.id FROM booking.services sv JOIN booking.staff st USING (partner_id);
INSERT INTO booking.customers (name, email, phone)
SELECT 'Customer ' || i, 'customer' || i || '@example.com', '+336' || lpad(i::text, 8, '0')
FROM generate_series(1, 5000) i;
-- Four haircuts a working day per staff member, at 09:00, 10:30, 14:00 and 15:30 local time.
INSERT INTO booking.bookings (partner_id, service_id, staff_id, customer_id, starts_at, ends_at, busy, status,
                              price_cents, currency, manage_token_hash)
SELECT st.partner_id, sv.id, st.id, 1 + ((st.id * 7 + k * 13 + d.n) % 5000 + 5000) % 5000, b.starts, b.starts + interval '45 minutes',
       tstzrange(b.starts, b.starts + interval '60 minutes', '[)'),
       CASE WHEN b.starts > now() THEN 'confirmed' WHEN (st.id + d.n + k) % 20 = 0 THEN 'no_show'
            WHEN (st.id + d.n + k) % 15 = 0 THEN 'cancelled' ELSE 'completed' END,
       3500, 'EUR', sha256(convert_to('bench-' || st.id || '-' || d.n || '-' || k, 'UTF8'))
FROM booking.staff st
JOIN booking.services sv ON sv.partner_id = st.partner_id AND sv.name = 'Haircut'
CROSS JOIN generate_series(-300, 65) AS d(n)
CROSS JOIN generate_series(0, 3) AS k
CROSS JOIN LATERAL (SELECT ((current_date + d.n) + (ARRAY[time '09:00', time '10:30', time '14:00', time '15:30'])[k + 1])
                           AT TIME ZONE 'Europe/Paris' AS starts) b
WHERE extract(isodow FROM current_date + d.n) < 7;
COMMIT;
ANALYZE;
