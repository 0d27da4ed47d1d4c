#!/usr/bin/env bash
# Build unitcorn's packages from a clean copy of the working tree, lint them, check their payload.
#
#   packaging/build.sh deb|rpm|all [-o OUTDIR]      (OUTDIR defaults to dist/)
#
# deb: dpkg-buildpackage -b, then lintian --fail-on error,warning.
# rpm: sdist, rpmbuild -ba with the CI-only stand-in macros (packaging/rpm/ci-standin-macros),
#      then rpmlint with packaging/rpm/rpmlint.toml.
# Both: the payload must hold the console script, the package, the units, the config and the
# man page. Exits non-zero on the first failure; leaves nothing but the packages in OUTDIR.
#
# The copy is of the working tree (uncommitted work included) minus VCS data, virtualenvs and
# caches, so what is built is what you see, and the checkout is never written to.
set -euo pipefail

usage() { echo "usage: $0 deb|rpm|all [-o OUTDIR]" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${1:-}
shift || true
OUTDIR=$REPO/dist
while getopts "o:" opt; do
    case $opt in
        o) OUTDIR=$OPTARG ;;
        *) usage ;;
    esac
done
case $TARGET in deb|rpm|all) ;; *) usage ;; esac

# pyenv's (or a venv's) python first on PATH breaks pybuild ("No module named build"): the
# distribution's tools and python only.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH VIRTUAL_ENV PYENV_VERSION
export LC_ALL=C.UTF-8
# Every step is bounded; a normal build takes seconds.
STEP_TIMEOUT=${UNITCORN_BUILD_STEP_TIMEOUT:-300}

# The one place the version lives.
VERSION=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$REPO/pyproject.toml")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/unitcorn-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

say() { printf '==> %s\n' "$*" >&2; }
step() { timeout --kill-after=10 "$STEP_TIMEOUT" "$@"; }

# LOG WHAT CMD...: run a package build into LOG; on failure show the log's tail; and insist
# that the build ran the tests (a pytest summary line in the log).
build_with_tests() {
    local log=$1 what=$2
    shift 2
    step "$@" >"$log" 2>&1 || {
        tail -n 60 "$log" >&2
        echo "$what failed; log above" >&2
        return 1
    }
    grep -E '^=+ .*(passed|failed|error|skipped).* =+$' "$log" >&2 || {
        echo "no pytest summary in the $what log: did the tests run?" >&2
        return 1
    }
}

clean_copy() {  # DEST: the working tree without VCS data, virtualenvs, build output and caches
    mkdir -p "$1"
    tar -C "$REPO" -cf - \
        --exclude=./.git --exclude=./.venv --exclude=./dist --exclude=./build --exclude=./debian \
        --exclude=.pybuild --exclude='*.egg-info' --exclude=__pycache__ --exclude='*.pyc' \
        --exclude=.pytest_cache --exclude=.mypy_cache --exclude=.ruff_cache \
        --exclude=.hypothesis --exclude=.benchmarks \
        . | tar -C "$1" -xf -
}

require_paths() {  # LISTING NAME PATH...: each PATH must be a line of LISTING
    local listing=$1 name=$2 path missing=0
    shift 2
    for path in "$@"; do
        if ! grep -qxF -- "$path" "$listing"; then
            echo "$name lacks $path" >&2
            missing=1
        fi
    done
    return $missing
}

build_deb() {
    local src=$WORK/deb/unitcorn-$VERSION
    clean_copy "$src"
    # debian/ is packaging/debian; its unit symlinks (../../units/...) resolve through it.
    ln -s packaging/debian "$src/debian"
    local changelog_version
    changelog_version=$(cd "$src" && dpkg-parsechangelog -SVersion)
    if [ "$changelog_version" != "$VERSION" ]; then
        echo "packaging/debian/changelog says $changelog_version, pyproject.toml $VERSION" >&2
        return 1
    fi
    say "dpkg-buildpackage (unitcorn $VERSION)"
    build_with_tests "$WORK/deb/build.log" dpkg-buildpackage \
        env -C "$src" dpkg-buildpackage -us -uc -b || return 1
    local deb=$WORK/deb/unitcorn_${VERSION}_all.deb
    say "lintian"
    local rc=0
    step lintian -I --pedantic --fail-on error,warning "$WORK"/deb/unitcorn_"$VERSION"_*.changes \
        >"$WORK/deb/lintian.log" 2>&1 || rc=$?
    grep -v '^N: ' "$WORK/deb/lintian.log" >&2 || true  # N: is the notice about running as root
    if [ $rc -ne 0 ]; then
        echo "lintian reports errors or warnings (above)" >&2
        return 1
    fi
    dpkg-deb -c "$deb" | awk '{print substr($6, 2)}' | sed 's#/$##' >"$WORK/deb/payload"
    require_paths "$WORK/deb/payload" "$(basename "$deb")" \
        /usr/bin/unitcorn \
        /usr/lib/python3/dist-packages/unitcorn/__init__.py \
        /usr/lib/python3/dist-packages/unitcorn/cli.py \
        /lib/systemd/system/unitcorn@.service \
        /lib/systemd/system/unitcorn@.socket \
        /lib/systemd/system-generators/unitcorn-generator \
        /etc/unitcorn/demo.conf.py \
        /usr/share/man/man1/unitcorn.1.gz
    cp "$deb" "$OUTDIR/"
    say "built $OUTDIR/$(basename "$deb")"
}

build_rpm() {
    local src=$WORK/rpm/src topdir=$WORK/rpm/top spec=$REPO/packaging/rpm/unitcorn.spec
    local spec_version
    spec_version=$(awk '$1 == "Version:" {print $2; exit}' "$spec")
    if [ "$spec_version" != "$VERSION" ]; then
        echo "packaging/rpm/unitcorn.spec says Version: $spec_version, pyproject.toml $VERSION" >&2
        return 1
    fi
    clean_copy "$src"
    mkdir -p "$topdir/SOURCES"
    say "sdist"
    (cd "$src" && step python3 -m build --sdist --no-isolation --skip-dependency-check \
        --outdir "$topdir/SOURCES" .) >"$WORK/rpm/sdist.log" 2>&1 || {
        tail -n 40 "$WORK/rpm/sdist.log" >&2
        return 1
    }
    chmod 0644 "$topdir/SOURCES"/*.tar.gz  # build writes it 0600
    say "rpmbuild (unitcorn $VERSION, CI stand-in macros)"
    build_with_tests "$WORK/rpm/build.log" rpmbuild rpmbuild -ba --nodeps \
        --load "$REPO/packaging/rpm/ci-standin-macros" --define "_topdir $topdir" "$spec" || return 1
    local rpm srpm
    rpm=$(ls "$topdir"/RPMS/noarch/unitcorn-"$VERSION"-*.noarch.rpm)
    srpm=$(ls "$topdir"/SRPMS/unitcorn-"$VERSION"-*.src.rpm)
    say "rpmlint"
    step rpmlint -c "$REPO/packaging/rpm/rpmlint.toml" "$rpm" "$srpm" || {
        echo "rpmlint reports problems (above)" >&2
        return 1
    }
    local sitelib
    sitelib=$(rpm --load "$REPO/packaging/rpm/ci-standin-macros" -E '%{python3_sitelib}')
    rpm -qpl "$rpm" >"$WORK/rpm/payload"
    require_paths "$WORK/rpm/payload" "$(basename "$rpm")" \
        /usr/bin/unitcorn \
        "$sitelib/unitcorn/__init__.py" \
        "$sitelib/unitcorn/cli.py" \
        /usr/lib/systemd/system/unitcorn@.service \
        /usr/lib/systemd/system/unitcorn@.socket \
        /usr/lib/systemd/system-generators/unitcorn-generator \
        /etc/unitcorn/demo.conf.py \
        /usr/share/man/man1/unitcorn.1.gz
    cp "$rpm" "$srpm" "$OUTDIR/"
    say "built $OUTDIR/$(basename "$rpm") and $(basename "$srpm")"
}

case $TARGET in
    deb) build_deb ;;
    rpm) build_rpm ;;
    all) build_deb; build_rpm ;;
esac
