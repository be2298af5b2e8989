//! UniFFI's generator (Kotlin, Swift, Python), built from the same UniFFI
//! version as the library: `make bindings` runs it in library mode on the
//! built cdylib.

fn main() {
    uniffi::uniffi_bindgen_main()
}
