SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;

-- Ranking metrics against values computed by hand.
-- ranked 1..5, relevant {2, 5, 9}
--   k = 3: one hit at rank 2
--     precision 1/3, recall 1/3, hit 1,
--     DCG = 1/log2(3) = 0.630930, IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.130930,
--     NDCG = 0.296082, AP = (1/2) / min(3, 3) = 0.166667
--   k = 5: hits at ranks 2 and 5
--     precision 2/5, recall 2/3,
--     DCG = 0.630930 + 1/log2(6) = 1.017783, NDCG = 1.017783 / 2.130930 = 0.477624,
--     AP = (1/2 + 2/5) / 3 = 0.3
SELECT k,
	   round(rec.precision_at_k('{1,2,3,4,5}', '{2,5,9}', k)::numeric, 6) AS precision,
	   round(rec.recall_at_k('{1,2,3,4,5}', '{2,5,9}', k)::numeric, 6) AS recall,
	   rec.hit_rate_at_k('{1,2,3,4,5}', '{2,5,9}', k) AS hit_rate,
	   round(rec.ndcg_at_k('{1,2,3,4,5}', '{2,5,9}', k)::numeric, 6) AS ndcg,
	   round(rec.average_precision_at_k('{1,2,3,4,5}', '{2,5,9}', k)::numeric, 6) AS ap
FROM (VALUES (1), (3), (5), (10)) v(k);

-- a repeated item counts once: ranked {2,2,5}, relevant {2,5}, k = 3
--   hits at ranks 1 and 3: precision 2/3, recall 1,
--   NDCG = (1 + 1/log2(4)) / (1 + 1/log2(3)) = 1.5 / 1.630930 = 0.919721,
--   AP = (1/1 + 2/3) / 2 = 0.833333
SELECT round(rec.precision_at_k('{2,2,5}', '{2,5}', 3)::numeric, 6) AS precision,
	   rec.recall_at_k('{2,2,5}', '{2,5}', 3) AS recall,
	   round(rec.ndcg_at_k('{2,2,5}', '{2,5}', 3)::numeric, 6) AS ndcg,
	   round(rec.average_precision_at_k('{2,2,5}', '{2,5}', 3)::numeric, 6) AS ap;

-- a list shorter than k: ranked {2}, relevant {2,3}, k = 10
--   precision 1/10, recall 1/2, NDCG = 1 / (1 + 1/log2(3)) = 0.613147, AP = 1 / 2
SELECT rec.precision_at_k('{2}', '{2,3}', 10) AS precision,
	   rec.recall_at_k('{2}', '{2,3}', 10) AS recall,
	   round(rec.ndcg_at_k('{2}', '{2,3}', 10)::numeric, 6) AS ndcg,
	   rec.average_precision_at_k('{2}', '{2,3}', 10) AS ap;

-- perfect and hopeless rankings
SELECT rec.ndcg_at_k('{7,8,9}', '{9,8,7}', 3) AS perfect_ndcg,
	   rec.average_precision_at_k('{7,8,9}', '{9,8,7}', 3) AS perfect_ap,
	   rec.ndcg_at_k('{1,2,3}', '{9}', 3) AS miss_ndcg,
	   rec.hit_rate_at_k('{1,2,3}', '{9}', 3) AS miss_hit;

-- NULLs: a NULL rank is a position without an item; NULL relevant items are ignored
SELECT rec.precision_at_k('{NULL,2}', '{2}', 2) AS precision,
	   round(rec.ndcg_at_k('{NULL,2}', '{2}', 2)::numeric, 6) AS ndcg,
	   rec.average_precision_at_k('{NULL,2}', '{2,NULL}', 2) AS ap;

-- nothing relevant: only precision is defined
SELECT rec.precision_at_k('{1,2}', '{}', 2) AS precision,
	   rec.recall_at_k('{1,2}', '{}', 2) AS recall,
	   rec.hit_rate_at_k('{1,2}', '{}', 2) AS hit_rate,
	   rec.ndcg_at_k('{1,2}', '{}', 2) AS ndcg,
	   rec.average_precision_at_k('{1,2}', '{NULL}', 2) AS ap;
-- nothing ranked
SELECT rec.precision_at_k('{}', '{1}', 5) AS precision, rec.recall_at_k('{}', '{1}', 5) AS recall,
	   rec.ndcg_at_k('{}', '{1}', 5) AS ndcg, rec.average_precision_at_k('{}', '{1}', 5) AS ap;

-- STRICT, and errors
SELECT rec.ndcg_at_k(NULL, '{1}', 5) IS NULL AS null_in_null_out;
SELECT rec.ndcg_at_k('{1}', '{1}', 0);
SELECT rec.recall_at_k('{{1,2},{3,4}}', '{1}', 2);

-- typical use: average over users
CREATE TABLE eval_lists (user_id int, ranked bigint[], relevant bigint[]);
INSERT INTO eval_lists VALUES (1, '{10,11,12}', '{11}'), (2, '{10,11,12}', '{13}'), (3, '{10,11,12}', '{}');
SELECT round(avg(rec.ndcg_at_k(ranked, relevant, 3))::numeric, 6) AS mean_ndcg,
	   avg(rec.hit_rate_at_k(ranked, relevant, 3)) AS hit_rate,
	   count(rec.recall_at_k(ranked, relevant, 3)) AS users_with_relevant
FROM eval_lists;
