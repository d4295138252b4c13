-- 进货查验: a delivery may carry one photo (the delivery note, the supplier's licence or the
-- goods on arrival), stored by hash through the evidence checks like a rapid test's photo.
-- Plain columns: the same on PostgreSQL and TimescaleDB.
ALTER TABLE purchases
    ADD COLUMN photo_sha256 text CHECK (photo_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN photo_media_type text;
