#!/usr/bin/env bash
# Checks .deb packages built by build-deb.sh: metadata, maintainer scripts,
# the installed paths, the binary's architecture, and that the unit and
# the default config are exactly the repo's.
#
#   packaging/check-deb.sh [dist/camfeed_*.deb ...]
set -euo pipefail
cd "$(dirname "$0")/.."

debs=("$@")
if [ ${#debs[@]} -eq 0 ]; then
	shopt -s nullglob
	debs=(dist/camfeed_*.deb)
fi
if [ ${#debs[@]} -eq 0 ]; then
	echo "check-deb: no packages in dist/; run packaging/build-deb.sh VERSION first" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go run ./packaging/genunit >"$work/unit"

failed=0 passed=0
fail() { echo "FAIL $deb: $*" >&2; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }

for deb in "${debs[@]}"; do
	name=$(basename "$deb" .deb)
	want_arch=${name##*_}
	info=$(dpkg-deb -I "$deb")
	list=$(dpkg-deb -c "$deb")

	field() { dpkg-deb -f "$deb" "$1"; }
	[ "$(field Package)" = camfeed ] && ok || fail "Package is not camfeed"
	[ "$(field Architecture)" = "$want_arch" ] && ok || fail "Architecture $(field Architecture), file name says $want_arch"
	[ -n "$(field Version)" ] && ok || fail "no Version"
	for script in postinst prerm postrm conffiles; do
		grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$script" <<<"$info" && ok || fail "no $script in the control archive"
	done

	# Path, mode and owner of each installed file.
	while read -r mode path; do
		grep -Eq "^$mode root/root .* \./${path#/}\$" <<<"$list" && ok || fail "no $path with mode $mode root/root"
	done <<'PATHS'
-rwxr-xr-x /usr/bin/camfeed
-rw-r--r-- /etc/camfeed/camfeed.yaml
-rw-r--r-- /usr/lib/systemd/system/camfeed.service
-rw-r--r-- /usr/share/doc/camfeed/OPERATIONS.md
PATHS

	dpkg-deb -x "$deb" "$work/$name"
	dpkg-deb -e "$deb" "$work/$name/DEBIAN"
	grep -qx /etc/camfeed/camfeed.yaml "$work/$name/DEBIAN/conffiles" && ok || fail "camfeed.yaml is not a conffile"
	cmp -s "$work/unit" "$work/$name/usr/lib/systemd/system/camfeed.service" && ok ||
		fail "the unit differs from go run ./packaging/genunit"
	cmp -s camfeed.yaml "$work/$name/etc/camfeed/camfeed.yaml" && ok || fail "the config differs from the repo's camfeed.yaml"
	for s in postinst prerm postrm; do
		sh -n "$work/$name/DEBIAN/$s" && ok || fail "$s: shell syntax error"
	done

	# ELF class (byte 4) and machine (bytes 18-19) of the binary.
	bin=$work/$name/usr/bin/camfeed
	class=$(od -An -tu1 -j4 -N1 "$bin" | tr -d ' ')
	machine=$(od -An -tu2 -j18 -N2 "$bin" | tr -d ' ')
	case $want_arch in
	arm64) want="2 183" ;;
	armhf) want="1 40" ;;
	amd64) want="2 62" ;;
	*) want="?" ;;
	esac
	[ "$class $machine" = "$want" ] && ok || fail "binary is ELF class/machine $class/$machine, want $want for $want_arch"
	rm -rf "${work:?}/$name"
done

echo "check-deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
