#!/usr/bin/env bash
# Builds the Android library (AAR) of the keysrv SDK: the Rust library for
# each Android ABI with cargo-ndk, the Kotlin bindings `make bindings`
# generates, packed by Gradle. Needs what these CI machines do not have: the
# Android NDK (ANDROID_NDK_HOME), `cargo install cargo-ndk`, the Rust
# Android targets (rustup target add aarch64-linux-android
# armv7-linux-androideabi x86_64-linux-android) and Gradle with the Android
# Gradle plugin. See docs/SDK.md, "Android".
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/android}
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to an Android NDK}"
command -v cargo-ndk >/dev/null || { echo "cargo install cargo-ndk" >&2; exit 1; }

make bindings    # target/bindings/kotlin/uniffi/keysrv/keysrv.kt
mkdir -p "$OUT/src/main/jniLibs" "$OUT/src/main/java"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform 24 -o "$OUT/src/main/jniLibs" \
    build --profile mobile -p keysrv-ffi --lib
cp -r target/bindings/kotlin/. "$OUT/src/main/java/"
cat > "$OUT/build.gradle.kts" <<'GRADLE'
plugins { id("com.android.library"); id("org.jetbrains.kotlin.android") }
android {
    namespace = "org.keysrv.sdk"
    compileSdk = 35
    defaultConfig { minSdk = 24 }
}
dependencies {
    // The generated bindings call the library through JNA (the @aar variant
    // carries its native part) and await with coroutines.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.8.1")
}
GRADLE
echo "Android library project in $OUT: add it to your Gradle build (include(\":keysrv\")), or run" \
     "'gradle assembleRelease' there for $OUT/build/outputs/aar/."
