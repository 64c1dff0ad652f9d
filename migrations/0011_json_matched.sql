-- `checks.json_matched` joined migration 6 after that migration had been
-- released with `degraded` alone: a database that applied the first
-- version lacks the column (and every drain batch fails on it). Add it
-- where it is missing.
ALTER TABLE checks ADD COLUMN IF NOT EXISTS json_matched boolean;
