//! uniffi-bindgen-java (Java over JNA), built against the same UniFFI
//! version as the library: `make bindings` runs it on the built cdylib.

use std::process::ExitCode;

fn main() -> ExitCode {
    match uniffi_bindgen_java::run_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uniffi-bindgen-java: {e:?}");
            ExitCode::FAILURE
        }
    }
}
