-- `degraded`: an up check slower than its site's `degraded_after` (null
-- when the site sets none, and in checks stored before).
ALTER TABLE checks ADD COLUMN degraded boolean;
