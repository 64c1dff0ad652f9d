-- Site names compare byte by byte. They are identifiers, not prose, and
-- the (site, started_at DESC) index is cheaper to maintain without the
-- database's linguistic collation: about 10% of drain's insert time
-- (BENCHMARKS.md). Only the index is rebuilt, the table is not rewritten.
ALTER TABLE checks ALTER COLUMN site TYPE text COLLATE "C";
