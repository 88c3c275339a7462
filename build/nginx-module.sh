#!/bin/bash
# Builds the nginx dynamic modules against a distribution's nginx source tree (Debian: nginx-dev), with the same
# configure flags as the distribution's nginx binary, so that `load_module` accepts them (--with-compat).
# usage: nginx-module.sh NGINX_SRC BUILD_DIR CC_OPT LD_OPT "LIBS" MODULE_DIR...
set -euo pipefail
src=$1 out=$2 cc_opt=$3 ld_opt=$4
export WEBMODULES_LIBS=$5
shift 5

NGX_CONF_FLAGS=()
if [ -f "$src/conf_flags" ]; then
    # shellcheck disable=SC1091
    . "$src/conf_flags"
fi

mkdir -p "$out"
# nginx's configure writes into the tree it runs from: work on a private copy of the read-only system tree.
if [ ! -f "$out/src.stamp" ] || [ "$src/configure" -nt "$out/src.stamp" ]; then
    rm -rf "$out/src"
    cp -a "$src" "$out/src"
    touch "$out/src.stamp"
fi

args=("${NGX_CONF_FLAGS[@]}" --builddir="$out/objs" --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt")
for dir in "$@"; do
    args+=("--add-dynamic-module=$dir")
done
wanted="${args[*]} $WEBMODULES_LIBS"
configs=$(for dir in "$@"; do cat "$dir/config"; done | md5sum)
if [ ! -f "$out/objs/Makefile" ] || [ "$(cat "$out/configured" 2>/dev/null)" != "$wanted $configs" ]; then
    (cd "$out/src" && ./configure "${args[@]}" > "$out/configure.log" 2>&1) || {
        tail -30 "$out/configure.log" >&2
        exit 1
    }
    echo "$wanted $configs" > "$out/configured"
fi
# nginx's Makefile does not know the module links the project's static libraries: relink every time.
rm -f "$out"/objs/ngx_http_*_module.so
make -s -C "$out/src" -f "$out/objs/Makefile" modules
