//! One adapter per backend behind each port.

pub mod local_key_file;
pub mod sqlite;
