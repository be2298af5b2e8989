#!/usr/bin/env bash
# Builds the iOS XCFramework and Swift package of the keysrv SDK: the Rust
# library as a static library for devices and simulators, the Swift
# bindings and C header `make bindings` generates, and a Package.swift.
# Needs a Mac with Xcode (xcodebuild, lipo) and the Rust iOS targets
# (rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios),
# none of which these Linux CI machines have. See docs/SDK.md, "iOS".
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/swift}
command -v xcodebuild >/dev/null || { echo "xcodebuild (Xcode) is required" >&2; exit 1; }

make bindings    # target/bindings/swift/{keysrv.swift,keysrvFFI.h,keysrvFFI.modulemap}
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
    cargo rustc --profile mobile -p keysrv-ffi --lib --crate-type staticlib --target "$t"
done
rm -rf "$OUT" && mkdir -p "$OUT/headers" "$OUT/sim" "$OUT/Sources/Keysrv"
cp target/bindings/swift/keysrvFFI.h "$OUT/headers/"
cp target/bindings/swift/keysrvFFI.modulemap "$OUT/headers/module.modulemap"
lipo -create target/aarch64-apple-ios-sim/mobile/libkeysrv_ffi.a target/x86_64-apple-ios/mobile/libkeysrv_ffi.a \
     -output "$OUT/sim/libkeysrv_ffi.a"
xcodebuild -create-xcframework \
    -library target/aarch64-apple-ios/mobile/libkeysrv_ffi.a -headers "$OUT/headers" \
    -library "$OUT/sim/libkeysrv_ffi.a" -headers "$OUT/headers" \
    -output "$OUT/keysrvFFI.xcframework"
cp target/bindings/swift/keysrv.swift "$OUT/Sources/Keysrv/"
cat > "$OUT/Package.swift" <<'SWIFT'
// swift-tools-version:5.9
import PackageDescription
let package = Package(
    name: "Keysrv",
    platforms: [.iOS(.v15)],
    products: [.library(name: "Keysrv", targets: ["Keysrv"])],
    targets: [
        .binaryTarget(name: "keysrvFFI", path: "keysrvFFI.xcframework"),
        .target(name: "Keysrv", dependencies: ["keysrvFFI"]),
    ]
)
SWIFT
echo "Swift package in $OUT (add it in Xcode: File > Add Package Dependencies > Add Local)."
