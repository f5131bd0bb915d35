#!/bin/sh
# The image's entrypoint: `migrate` brings the database to the current schema and exits; any
# other command is an `rma` command (serve, worker, ...). Settings come from RMA_ variables.
set -eu

if [ -z "${RMA_DATABASE_URL:-}" ]; then
    echo "rma-entrypoint: RMA_DATABASE_URL is not set" >&2
    exit 64
fi

command="${1:-serve}"
[ "$#" -gt 0 ] && shift
case "$command" in
    migrate) exec rma db upgrade "$@" ;;
    *) exec rma "$command" "$@" ;;
esac
