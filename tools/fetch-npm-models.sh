#!/usr/bin/env bash
# Real models that other npm packages ship, for the tests that check ternion on models it was not
# written for: Silero VAD (MIT licence; in @ricky0123/vad-web) is an If on the sample rate whose
# branches hold the whole network. Fetched from the npm registry (pinned version) into build/ext;
# the tests that read them say they are skipped when the files are absent.
#
#   tools/fetch-npm-models.sh          -> build/ext/silero_vad_v5.onnx, silero_vad_legacy.onnx
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/build/ext"
mkdir -p "$out"
if [ -f "$out/silero_vad_v5.onnx" ] && [ -f "$out/silero_vad_legacy.onnx" ]; then exit 0; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @ricky0123/vad-web@0.0.31 >/dev/null && tar xzf ricky0123-vad-web-0.0.31.tgz package/dist/silero_vad_v5.onnx package/dist/silero_vad_legacy.onnx)
cp "$tmp/package/dist/silero_vad_v5.onnx" "$tmp/package/dist/silero_vad_legacy.onnx" "$out/"
echo "fetch-npm-models: $(ls "$out" | tr '\n' ' ')"
