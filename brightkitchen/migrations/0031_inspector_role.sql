-- The inspector role (执法检查人员): scoped to a region and the regions below it, like a
-- regulator, but its writes are the inspection workflow only (see api/auth/scope.py). Like a
-- regulator it needs a region. Plain PostgreSQL; the same on TimescaleDB.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin','regulator','inspector','officer','director','insurer','device'));
ALTER TABLE users ADD CONSTRAINT users_inspector_region_check
    CHECK (role <> 'inspector' OR region_id IS NOT NULL);
