#!/usr/bin/env bash
# Builds the portable benchmark kit into DIR (default out/bench-kit): everything
# bench/run-table.sh runs, with no .NET and no Go needed where it then runs.
#   echo-host   PSTcp's core echo server (bench/peers/EchoHost), self-contained and trimmed
#   bench-load  PSTcp.Bench, the C# generator (ping-pong, bulk, churn), self-contained
#   go-echo     the Go echo peer, go-load the Go window generator, both CGO_ENABLED=0 (static)
#   run-table.sh
# Needs the .NET SDK and Go here; RID defaults to linux-x64 (RID=linux-arm64 for ARM).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
dir="${1:-$root/out/bench-kit}"
rid="${RID:-linux-x64}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

echo "publishing echo-host ($rid, self-contained, trimmed)"
# PublishTrimmed, PublishSingleFile and SelfContained come from EchoHost.csproj (PortableKit=true).
dotnet publish "$here/peers/EchoHost/EchoHost.csproj" -c Release -r "$rid" -p:PortableKit=true \
    -p:DebugType=none -nologo -v quiet -o "$dir/.echo-host"
mv -f "$dir/.echo-host/EchoHost" "$dir/echo-host"
rm -rf "$dir/.echo-host"

echo "publishing bench-load ($rid, self-contained)"
dotnet publish "$here/PSTcp.Bench/PSTcp.Bench.csproj" -c Release -r "$rid" --self-contained \
    -p:PublishSingleFile=true -p:DebugType=none -nologo -v quiet -o "$dir/.bench-load"
mv -f "$dir/.bench-load/PSTcp.Bench" "$dir/bench-load"
rm -rf "$dir/.bench-load"

goarch=amd64
case "$rid" in *arm64) goarch=arm64 ;; esac
for peer in go-echo go-load; do
    echo "building $peer (CGO_ENABLED=0, GOARCH=$goarch)"
    (cd "$here/peers/$peer" && CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" go build -trimpath -o "$dir/$peer" .)
done

cp "$here/run-table.sh" "$dir/run-table.sh"
chmod +x "$dir/run-table.sh"
ls -l "$dir"
