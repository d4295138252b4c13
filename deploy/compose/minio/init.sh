#!/bin/sh
# minio-init: the evidence bucket, private, and the one account the api and workers use.
# Idempotent: run on every `docker compose up`; an existing bucket and user are kept
# (the user's secret is set again from .env).
set -eu
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$S3_BUCKET"
mc anonymous set none "local/$S3_BUCKET"  # no public read, list or write
sed "s/BUCKET/$S3_BUCKET/g" /src/policy.json > /tmp/policy.json
mc admin policy create local brightkitchen-evidence /tmp/policy.json
mc admin user add local "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
mc admin policy attach local brightkitchen-evidence --user "$S3_ACCESS_KEY" 2>/dev/null || true
echo "bucket $S3_BUCKET ready (private), account $S3_ACCESS_KEY limited to it"
