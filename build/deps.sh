#!/bin/sh
# Installs every Debian 12 package needed to build, test, fuzz and benchmark the modules.
# Idempotent; safe to run again. Needs root (or sudo).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
PKGS="build-essential autoconf automake libtool pkg-config clang libclang-rt-14-dev clang-format valgrind
  apache2 apache2-dev nginx nginx-dev libpcre2-dev zlib1g-dev libssl-dev
  libapr1-dev libaprutil1-dev libmemcached-dev libpq-dev libjansson-dev libcurl4-openssl-dev libcmocka-dev
  memcached postgresql-15 postgresql-contrib php-fpm php-cli php-memcached php-igbinary php-msgpack php-pgsql
  perl libhttp-tiny-perl libtext-csv-perl wrk curl procps iproute2 chromium fonts-dejavu-core"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# The distribution's services are not used: the harness and the demo start their own on loopback.
for svc in apache2 nginx memcached php8.2-fpm postgresql; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
