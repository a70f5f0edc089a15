#!/bin/sh
# libdream's ABI: the soname, version nodes and exported symbols of the
# built shared library must be exactly those of client/lib/libdream.symbols.
# A symbol that disappears breaks every program linked with it; one that
# appears must be listed (in a new DREAM_1.N node of libdream.map for a
# release) so that it is added on purpose (docs/architecture.md).
# Usage: test_abi.sh LIBDREAM.so libdream.symbols
set -eu
lib=$1
want=$2
got=$(mktemp)
trap 'rm -f "$got"' EXIT

{
        soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
        echo "soname $soname"
        # Defined dynamic symbols with their version (name@@NODE); the
        # nodes themselves are absolute symbols (type A).
        nm -D --defined-only --with-symbol-versions "$lib" |
                awk '$2 == "A" { print "node " $3; next } { print $3 }' | LC_ALL=C sort
} > "$got"

if ! diff -u "$want" "$got"; then
        echo "libdream's exported ABI differs from $want (- listed, + built):" >&2
        echo "a removed symbol breaks programs linked with libdream.so.1; a new one" >&2
        echo "goes in a new version node of client/lib/libdream.map and in $want" >&2
        exit 1
fi
echo "libdream ABI: $(grep -c @@ "$want") symbols as listed"
