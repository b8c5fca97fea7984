#!/usr/bin/env bash
# Builds dist/camfeed_VERSION_{arm64,armhf,amd64}.deb with dpkg-deb.
#
#   packaging/build-deb.sh 0.3.0
#
# arm64: Pi OS 64-bit (Pi 3, 4, 5, Zero 2 W). armhf: Pi OS 32-bit, built
# with GOARM=6 so that one package runs on every Pi, the Zero and Pi 1
# included. amd64: for testing on a PC with a USB camera.
#
# Environment: ARCHES (default "arm64 armhf amd64"), DIST (default dist),
# CAMFEED_PKG (the main package, default ./cmd/camfeed), BINDIR (packages
# the binaries BINDIR/camfeed-ARCH already built, as .ci/run does, instead
# of building them), DEB_COMPRESS (dpkg-deb's -Z, default xz; .ci/run
# uses gzip, several times faster, for packages that are only checked).
set -euo pipefail

version=${1:?usage: packaging/build-deb.sh VERSION (e.g. 0.3.0)}
version=${version#v} # a git tag v0.3.0 is Debian version 0.3.0
if ! [[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]]; then
	echo "build-deb: $version is not a Debian version (it must start with a digit)" >&2
	exit 1
fi

cd "$(dirname "$0")/.."
arches=${ARCHES:-arm64 armhf amd64}
dist=${DIST:-dist}
pkg=${CAMFEED_PKG:-./cmd/camfeed}
command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb not found: sudo apt-get install dpkg" >&2; exit 1; }
command -v go >/dev/null || { echo "build-deb: go not found on PATH" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go run ./packaging/genunit >"$work/camfeed.service"
mkdir -p "$dist"

for arch in $arches; do
	case $arch in
	arm64) goenv=(GOARCH=arm64) ;;
	armhf) goenv=(GOARCH=arm GOARM=6) ;;
	amd64) goenv=(GOARCH=amd64) ;;
	*) echo "build-deb: unknown architecture $arch (arm64, armhf or amd64)" >&2; exit 1 ;;
	esac
	root=$work/$arch
	install -d "$root/DEBIAN" "$root/usr/bin" "$root/etc/camfeed" \
		"$root/usr/lib/systemd/system" "$root/usr/share/doc/camfeed"

	if [ -n "${BINDIR:-}" ]; then
		[ -x "$BINDIR/camfeed-$arch" ] || { echo "build-deb: no $BINDIR/camfeed-$arch" >&2; exit 1; }
		install -m 0755 "$BINDIR/camfeed-$arch" "$root/usr/bin/camfeed"
	else
		env CGO_ENABLED=0 GOOS=linux "${goenv[@]}" \
			go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$root/usr/bin/camfeed" "$pkg"
	fi
	install -m 0644 camfeed.yaml "$root/etc/camfeed/camfeed.yaml"
	install -m 0644 "$work/camfeed.service" "$root/usr/lib/systemd/system/camfeed.service"
	install -m 0644 docs/OPERATIONS.md "$root/usr/share/doc/camfeed/OPERATIONS.md"
	install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
	echo /etc/camfeed/camfeed.yaml >"$root/DEBIAN/conffiles"

	recommends="ffmpeg"
	case $arch in arm64 | armhf) recommends="rpicam-apps | libcamera-apps, $recommends" ;; esac
	cat >"$root/DEBIAN/control" <<CONTROL
Package: camfeed
Version: $version
Architecture: $arch
Maintainer: camfeed developers <camfeed@users.noreply.github.com>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: passwd, init-system-helpers
Recommends: $recommends
Section: video
Priority: optional
Homepage: https://github.com/camfeed/camfeed
Description: low-latency H.264 camera feed server for the Raspberry Pi
 camfeed streams a Raspberry Pi camera (or any H.264 source) to many
 viewers at once over HTTP, TCP, RTSP, HLS and WebRTC, with a few frames
 of latency. It runs as a hardened systemd service with a watchdog.
CONTROL

	out="$dist/camfeed_${version}_${arch}.deb"
	dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$root" "$out" >/dev/null
	echo "$out"
done
