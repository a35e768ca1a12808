#!/usr/bin/env bash
# Measures the firmware for the f32 and the int8 model: flash and RAM by
# section and symbol (arm-none-eabi-size/nm from Debian's binutils-arm-none-eabi,
# or llvm-size/llvm-nm), stack high-water marks and instructions per inference
# under QEMU with -icount shift=0. Run from anywhere: bash examples/firmware/measure.sh
set -euo pipefail
cd "$(dirname "$0")"
SIZE=$(command -v arm-none-eabi-size || command -v llvm-size)
NM=$(command -v arm-none-eabi-nm || command -v llvm-nm)
OUT=target/thumbv7em-none-eabihf/release
unset RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET CARGO_ENCODED_RUSTFLAGS

section() { "$SIZE" -A "$1" | awk -v s="$2" '$1 == s { print $2 }'; }
symbol() { echo $((16#$("$NM" -S -C "$1" | awk -v s="$2" 'index($0, s) { print $2; exit }'))); }

for variant in f32 int8; do
    features=()
    [ "$variant" = int8 ] && features=(--features int8)
    cargo build --release --quiet "${features[@]}"
    demo="$OUT/softreg-firmware"
    minimal="$OUT/minimal"
    model=$(section "$demo" .model)
    images=$(section "$demo" .images)
    vt=$(section "$demo" .vector_table)
    text=$(section "$demo" .text)
    rodata=$(section "$demo" .rodata)
    data=$(section "$demo" .data)
    bss=$(section "$demo" .bss)
    mvt=$(section "$minimal" .vector_table)
    mtext=$(section "$minimal" .text)
    mrodata=$(section "$minimal" .rodata)
    mmodel=$(symbol "$minimal" "minimal::MODEL")
    mimage=$(symbol "$minimal" "minimal::IMAGE")
    run=$(qemu-system-arm -machine mps2-an386 -nographic \
        -semihosting-config enable=on,target=native -icount shift=0 -kernel "$demo")
    echo "== $variant model"
    echo "demo firmware ($demo):"
    echo "  flash: model file $model B (.model), 32 test images $images B (.images),"
    echo "         code $text B (.text) + constants $rodata B (.rodata) + vector table $vt B"
    echo "  RAM:   .data $data B + .bss $bss B (static), stack as below"
    echo "minimal firmware ($minimal: runtime + model + inference, one image, no printing):"
    echo "  flash: $((mvt + mtext + mrodata)) B = model file $mmodel B + image $mimage B" \
         "+ code and constants $((mvt + mtext + mrodata - mmodel - mimage)) B" \
         "(vector table $mvt B, .text $mtext B); model path without the image:" \
         "$((mvt + mtext + mrodata - mimage)) B"
    echo "  RAM:   .data $(section "$minimal" .data) B + .bss $(section "$minimal" .bss) B"
    echo "$run" | grep -E "^(softreg firmware|accuracy|host agreement|stack|systick)" | sed 's/^/  /'
done
