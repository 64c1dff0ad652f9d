-- `redirects`: how many redirects the check followed before its last
-- response; `final_url`: the URL of its last request, credentials removed
-- (both null in checks stored before).
ALTER TABLE checks ADD COLUMN redirects integer;
ALTER TABLE checks ADD COLUMN final_url text;
