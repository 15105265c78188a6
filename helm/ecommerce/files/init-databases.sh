#!/usr/bin/env bash
# One database and one login role per service, each role the owner of its own database and
# allowed into no other (CONNECT is revoked from PUBLIC). The postgres image runs this once, on an
# empty data directory, from /docker-entrypoint-initdb.d (docker-compose.yml mounts it there; the
# minikube overlay and the Helm chart mount an identical copy from a ConfigMap).
#
#   SERVICE_DATABASES         the services, space-separated (services.common.config.SERVICES)
#   <SERVICE>_DB_PASSWORD     each role's password (from .env, or the Kubernetes Secret)
set -euo pipefail

for service in ${SERVICE_DATABASES:?SERVICE_DATABASES is not set}; do
    var="${service^^}_DB_PASSWORD"
    password="${!var:?$var is not set}"
    echo "[init-databases] database and role: $service"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
        --set=name="$service" --set=password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT ALL ON DATABASE :"name" TO :"name";
SQL
done
