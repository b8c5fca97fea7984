#!/usr/bin/env bash
# What one push costs the Pi (docs/SCALING.md): camfeed's CPU (% of one
# core, from /proc/PID/stat over 30 s, median of 3 runs, as measured by
# cmd/camfeed-bench) with 0 local viewers, without a push and with one
# RTMP push to an nginx-rtmp on loopback that this script starts and
# stops (-v shows camfeed's log: the push must say "live" once per run).
# Test pattern 640x480, 30 fps, ~2 Mbit/s, GOP 30.
#
#	scripts/push-cpu.sh            # needs nginx and libnginx-mod-rtmp
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
module=/usr/lib/nginx/modules/ngx_rtmp_module.so
[ -f "$module" ] || { echo "push-cpu: needs $module (apt-get install libnginx-mod-rtmp)" >&2; exit 1; }
dir=$(mktemp -d)
nginx_pid=
cleanup() { [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/nginx.conf" <<CONF
load_module $module;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$port; application live { live on; } } }
CONF
nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
go build -o "$dir/camfeed" ./cmd/camfeed
common=(-bin "$dir/camfeed" -protocols http -viewers 0 -runs 3 -duration 30s -width 640 -height 480 -fps 30 -bitrate 2000000 -gop 30)
echo "== no push"
go run ./cmd/camfeed-bench "${common[@]}"
echo "== one RTMP push to nginx-rtmp (rtmp://127.0.0.1:$port/live/bench)"
go run ./cmd/camfeed-bench "${common[@]}" -v -- --log-level info --push "rtmp://127.0.0.1:$port/live/bench"
