-- Users, roles, API tokens and explicit site grants (who sees what).
-- Passwords are argon2id hashes; tokens are stored as sha256 hex of the raw token,
-- which is shown once. Sign-ins and changes go to audit_log (0001).

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 100),
    password_hash  text,                               -- NULL for devices (token only)
    role           text NOT NULL
                   CHECK (role IN ('admin','regulator','officer','director','insurer','device')),
    region_id      text REFERENCES regions(id),         -- regulator: region and sub-regions
    person_id      text REFERENCES people(id),          -- officer/director: their sites
    insurer        text,                                -- insurer: company name (policies)
    active         boolean NOT NULL DEFAULT true,
    failed_logins  integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'regulator' OR region_id IS NOT NULL),
    CHECK (role <> 'insurer' OR insurer IS NOT NULL)
);

-- Explicit site grants, usable for every role (devices, insurers, extra sites).
CREATE TABLE user_sites (
    user_id   bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    site_id   text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, site_id)
);
CREATE INDEX user_sites_site_idx ON user_sites (site_id);

CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash    text NOT NULL UNIQUE,                -- sha256 hex of the raw token
    kind          text NOT NULL CHECK (kind IN ('session','device')),
    name          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,                         -- NULL: until revoked (devices)
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE INDEX audit_log_action_at_idx ON audit_log (action, at DESC);
CREATE INDEX site_people_person_idx ON site_people (person_id, role);
CREATE INDEX sites_region_idx ON sites (region_id);
