#!/bin/sh
# Credentials arrive as files (compose secrets, Kubernetes secret volumes): for every VB_*_FILE and
# PGPASSWORD_FILE variable, export the variable without _FILE with the file's content, then run the command.
set -eu
for name in $(env | sed -n 's/^\(VB_[A-Z0-9_]*_FILE\|PGPASSWORD_FILE\)=.*/\1/p'); do
    eval "path=\${$name}"
    if [ ! -r "$path" ]; then
        echo "vitalbridge-entrypoint: $name names $path, which cannot be read" >&2
        exit 2
    fi
    value=$(cat "$path")
    export "${name%_FILE}=$value"
    unset "$name"
done
exec "$@"
