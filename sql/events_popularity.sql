-- src/events: the maintained, time-decayed popularity
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;

-- the log-domain helpers
SELECT rec.log2_add(0, 0) AS two_ones,                   -- log2(1 + 1) = 1
	   rec.log2_add(3, 1) AS eight_plus_two,             -- log2(10)
	   rec.log2_add(5000, 0) AS no_overflow,
	   rec.log2_add(-5000, 1) AS no_underflow,
	   rec.log2_add('-Infinity', 2) AS minus_inf,
	   rec.log2_add('NaN', 2) AS nan;
SELECT rec.log2_sum_exp2(x) AS log2_of_15 FROM (VALUES (0), (1), (2), (3)) v(x);
SELECT rec.log2_sum_exp2(x) AS huge FROM (VALUES (10000), (10000)) v(x);
SELECT rec.log2_sum_exp2(x) AS empty FROM (VALUES (1)) v(x) WHERE false;

-- one event's term: log2(weight * value) + seconds since 2000-01-01 / half-life
SELECT rec.popularity_log_weight(2, 4, '2000-01-01 00:00:00+00', 3600) AS three,
	   rec.popularity_log_weight(1, 1, '2000-01-01 02:00:00+00', 3600) AS two,
	   rec.popularity_log_weight(1, 1, '1999-12-31 23:00:00+00', 3600) AS minus_one,
	   rec.popularity_log_weight(0, 5, now(), 3600) IS NULL AS zero_weight_is_null,
	   rec.popularity_log_weight(1, -2, now(), 3600) IS NULL AS negative_is_null;
SELECT rec.popularity_log_weight(1, 1, now(), 0);
-- a half-life so short that the term would be infinite: an error, not an
-- infinite score_log that outranks everything for ever
SELECT rec.popularity_log_weight(1, 1, '2025-01-01 00:00+00', 1e-305);
SELECT rec.popularity_log_weight(1, 1, '2025-01-01 00:00+00', 1e-6) > 0 AS microsecond_half_life_is_finite;

-- the half-life setting: a time, in seconds
SHOW rec.popularity_half_life;
SET rec.popularity_half_life = '1h';
SHOW rec.popularity_half_life;
SET rec.popularity_half_life = 0;
SET rec.popularity_half_life = '-1d';
RESET rec.popularity_half_life;

-- the trigger keeps rec.item_popularity current, COPY included
SELECT rec.refresh_popularity();
SELECT half_life FROM rec.popularity_state;
INSERT INTO rec.events (user_id, item_id, kind, value, occurred_at) VALUES
	(1, 100, 'view', 1, '2025-01-01 00:00+00'),
	(2, 100, 'view', 1, '2025-01-08 00:00+00'),
	(1, 200, 'purchase', 1, '2025-01-01 00:00+00'),
	(3, 300, 'hide', 1, '2025-01-08 00:00+00'),       -- weight 0: does not count
	(3, 400, 'rating', 0, '2025-01-08 00:00+00');     -- value 0: does not count
COPY rec.events (user_id, item_id, kind, value, occurred_at) FROM stdin;
4	100	click	1	2025-01-15 00:00:00+00
4	200	rating	2	2025-01-15 00:00:00+00
\.
SELECT rec.track(5, 500, 'view', 1, '2025-01-15 00:00+00');

-- With a 7-day half-life, relative to 2025-01-15: item 100 has
-- 1/4 + 1/2 + 2 = 2.75, item 200 has 8/4 + 2 = 4, item 500 has 1.
CREATE TEMP TABLE maintained AS SELECT * FROM rec.item_popularity;
SELECT item_id, events,
	   round((2 ^ (score_log - date_part('epoch', '2025-01-15 00:00+00'::timestamptz - '2000-01-01 00:00+00')
							  / (7 * 86400)))::numeric, 9) AS popularity_at_jan_15
  FROM maintained ORDER BY item_id;

-- a rebuild gives the same table
SELECT rec.refresh_popularity() AS items;
SELECT m.item_id, abs(m.score_log - p.score_log) < 1e-9 AS same_score, m.events = p.events AS same_events
  FROM maintained m FULL JOIN rec.item_popularity p USING (item_id) ORDER BY 1;

-- a shorter half-life, applied by refresh: the old purchase of item 200 now
-- counts for little, and item 100 overtakes it
SET rec.popularity_half_life = '1d';
SELECT rec.refresh_popularity() AS items;
SELECT half_life FROM rec.popularity_state;
SELECT item_id, round((2 ^ (score_log - date_part('epoch', '2025-01-15 00:00+00'::timestamptz - '2000-01-01 00:00+00')
									 / 86400))::numeric, 6) AS popularity_at_jan_15
  FROM rec.item_popularity ORDER BY score_log DESC, item_id;
-- the trigger uses the half-life the table was built with, not the session's
SET rec.popularity_half_life = '30d';
SELECT rec.track(6, 500, 'view', 1, '2025-01-15 00:00+00');
SELECT round((2 ^ (score_log - date_part('epoch', '2025-01-15 00:00+00'::timestamptz - '2000-01-01 00:00+00')
						   / 86400))::numeric, 6) AS item_500_two_views
  FROM rec.item_popularity WHERE item_id = 500;
RESET rec.popularity_half_life;

-- far-apart times neither overflow nor lose the order
SET rec.popularity_half_life = '1s';
SELECT rec.refresh_popularity() AS items;
SELECT rec.track(7, 600, 'view', 1, '1970-01-01 00:00+00');
SELECT rec.track(7, 700, 'view', 1, '2200-01-01 00:00+00');
SELECT item_id FROM rec.item_popularity ORDER BY score_log DESC, item_id;
SELECT count(*) AS not_finite FROM rec.item_popularity WHERE score_log IN ('Infinity', '-Infinity', 'NaN');
-- nor can anyone store one (a NaN sorts first in the score index)
\set VERBOSITY terse
UPDATE rec.item_popularity SET score_log = 'NaN' WHERE item_id = 600;
UPDATE rec.item_popularity SET score_log = 'Infinity' WHERE item_id = 600;
\set VERBOSITY default
RESET rec.popularity_half_life;

-- an event dated in the future counts as logged now, in the trigger and in
-- the refresh alike: a mistyped year does not pin its item to the top
SET rec.popularity_half_life = '1d';
SELECT rec.refresh_popularity() AS items;
BEGIN;
SELECT rec.track(8, 800, 'view', 1, now() + interval '30 years');
SELECT rec.track(8, 801, 'view', 1, now());
SELECT a.score_log = b.score_log AS future_counts_as_now
  FROM rec.item_popularity a, rec.item_popularity b WHERE a.item_id = 800 AND b.item_id = 801;
COMMIT;
SELECT rec.refresh_popularity() > 0 AS refreshed;
SELECT abs(a.score_log - b.score_log) < 0.01 AS still_counts_as_now_after_refresh
  FROM rec.item_popularity a, rec.item_popularity b WHERE a.item_id = 800 AND b.item_id = 801;
RESET rec.popularity_half_life;

-- TRUNCATE empties the popularity too; deletes need a refresh (documented)
DELETE FROM rec.events WHERE item_id = 700;
SELECT count(*) AS stale_row_kept FROM rec.item_popularity WHERE item_id = 700;
SELECT rec.refresh_popularity() > 0 AS refreshed;
SELECT count(*) AS gone_after_refresh FROM rec.item_popularity WHERE item_id = 700;
TRUNCATE rec.events;
SELECT count(*) AS after_truncate FROM rec.item_popularity;
SELECT rec.refresh_popularity() AS items;
