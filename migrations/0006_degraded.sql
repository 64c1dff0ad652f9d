-- `degraded`: an up check slower than its site's `degraded_after` (null
-- when the site sets none, and in checks stored before).
ALTER TABLE checks ADD COLUMN degraded boolean;

-- `json_matched`: whether the body held the site's `json` conditions (null
-- without them).
ALTER TABLE checks ADD COLUMN json_matched boolean;
