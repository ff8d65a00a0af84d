#!/bin/sh
# Builds the man pages from man/*.scd with scdoc into the folder $1
# (`make man` calls `sh scripts/man.sh build/man`).  Exit 1 on any error.
set -u
out=${1:?usage: man.sh OUTDIR}
if ! command -v scdoc >/dev/null 2>&1; then
    echo "man.sh: scdoc not found (apt-get install scdoc)" >&2
    exit 1
fi
mkdir -p "$out" || exit 1
rc=0
for src in man/*.scd; do
    [ -e "$src" ] || continue
    page=$(basename "$src" .scd)
    if ! scdoc < "$src" > "$out/$page.tmp"; then
        echo "man.sh: scdoc failed on $src" >&2
        rm -f "$out/$page.tmp"
        rc=1
        continue
    fi
    mv "$out/$page.tmp" "$out/$page"
done
[ $rc -eq 0 ] && echo "man: pages in $out"
exit $rc
