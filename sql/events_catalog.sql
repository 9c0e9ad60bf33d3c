-- src/events: catalogue, event kinds, events, rec.track and their errors
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;

-- the seeded kinds, and what pg_dump is told to keep
SELECT * FROM rec.event_kinds ORDER BY kind;
SELECT e.extconfig::regclass[] AS tables, e.extcondition
  FROM pg_extension e WHERE e.extname = 'rec';

-- defaults of the catalogue
INSERT INTO rec.items (item_id) VALUES (1);
SELECT item_id, category, tags, attributes, available, boost, created_at <= now() AS created_now
  FROM rec.items;
\set VERBOSITY terse
INSERT INTO rec.items (item_id) VALUES (1);                          -- duplicate
INSERT INTO rec.items (item_id, boost) VALUES (2, 'NaN');            -- not finite
INSERT INTO rec.items (item_id, available) VALUES (3, NULL);         -- NOT NULL
\set VERBOSITY default

-- rec.track: logs one event
SELECT rec.track(10, 1, 'view');
SELECT rec.track(10, 1, 'rating', 4.5, '2025-06-01 12:00+00');
SELECT rec.track(user_id => 11, item_id => 2, kind => 'purchase');
SELECT user_id, item_id, kind, value, occurred_at > now() - interval '1 hour' AS at_defaults_to_now
  FROM rec.events ORDER BY user_id, kind;

-- rec.track errors: unknown kind, NULL arguments, values that are not finite
\set VERBOSITY default
SELECT rec.track(10, 1, 'bogus');
\set VERBOSITY sqlstate
SELECT rec.track(10, 1, 'bogus');
SELECT rec.track(NULL, 1, 'view');
SELECT rec.track(10, NULL, 'view');
SELECT rec.track(10, 1, NULL);
SELECT rec.track(10, 1, 'view', NULL);
SELECT rec.track(10, 1, 'view', 1, NULL);
\set VERBOSITY default
SELECT rec.track(10, 1, 'view', 'NaN');
SELECT rec.track(10, 1, 'view', '-Infinity');
SELECT rec.track(10, 1, 'view', 1, 'infinity');
SELECT count(*) AS still_three FROM rec.events;

-- direct inserts: the foreign key on kind, finite values
INSERT INTO rec.events (user_id, item_id, kind) VALUES (10, 1, 'nope');
\set VERBOSITY terse
INSERT INTO rec.events (user_id, item_id, kind, value) VALUES (10, 1, 'view', 'Infinity');
INSERT INTO rec.events (user_id, item_id, kind) VALUES (10, NULL, 'view');
\set VERBOSITY default

-- event kinds: add one, track it
INSERT INTO rec.event_kinds VALUES ('wishlist', 3, false);
SELECT rec.track(12, 1, 'wishlist');
-- weights are finite and not negative, kinds not empty
INSERT INTO rec.event_kinds VALUES ('bad', -1, false);
INSERT INTO rec.event_kinds VALUES ('bad', 'NaN', false);
INSERT INTO rec.event_kinds VALUES ('', 1, false);
-- a kind that events use cannot be deleted; renaming it renames it in its
-- events
DELETE FROM rec.event_kinds WHERE kind = 'wishlist';
UPDATE rec.event_kinds SET kind = 'wish' WHERE kind = 'wishlist';
SELECT user_id, kind FROM rec.events WHERE user_id = 12;
-- built-in kinds cannot be deleted or renamed (a restore would bring them back)
DELETE FROM rec.event_kinds WHERE kind = 'click';
UPDATE rec.event_kinds SET kind = 'tap' WHERE kind = 'click';
-- nor truncated away (TRUNCATE fires no row triggers)
TRUNCATE rec.event_kinds CASCADE;
SELECT count(*) AS kinds_kept FROM rec.event_kinds;
-- but their weights can change
UPDATE rec.event_kinds SET weight = 1.5 WHERE kind = 'click';
-- inserting a built-in kind that still has its defaults updates it in place
-- (this is how pg_restore brings back a changed built-in kind)
INSERT INTO rec.event_kinds VALUES ('view', 0.5, false);
-- once changed, it is an ordinary duplicate
INSERT INTO rec.event_kinds VALUES ('view', 0.7, false);
-- the rows pg_dump keeps: exactly those that differ from the seed
SELECT * FROM rec.event_kinds
 WHERE (kind, weight, suppresses) NOT IN
	   (SELECT d.kind, d.weight, d.suppresses FROM rec.default_event_kinds() d)
 ORDER BY kind;
-- back to the defaults: no longer dumped
UPDATE rec.event_kinds SET weight = 1 WHERE kind = 'view';
UPDATE rec.event_kinds SET weight = 2 WHERE kind = 'click';
SELECT count(*) AS dumped_kinds FROM rec.event_kinds
 WHERE (kind, weight, suppresses) NOT IN
	   (SELECT d.kind, d.weight, d.suppresses FROM rec.default_event_kinds() d);

DELETE FROM rec.events;
DELETE FROM rec.event_kinds WHERE kind = 'wish';
DELETE FROM rec.items;
