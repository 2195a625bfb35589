//! The configuration file (`scimd --config FILE`, docs/operations.md): any text is read as
//! scimd reads it, into `FileConfig` (TOML, unknown keys refused), and what is read is used
//! as scimd uses it before it starts: the keys it sets listed, the database parsed.
//!
//! `bins/scimd/src/settings.rs` is compiled into this target as it is (the binary crate has no
//! library to depend on), so this is scimd's own code, not a copy.
//!
//! Nothing may panic. A file that reads writes back (TOML) to a file that reads to the same
//! settings.

#![no_main]

#[allow(dead_code, reason = "the binary's module; this target uses part of it")]
#[path = "../../bins/scimd/src/settings.rs"]
mod settings;

use libfuzzer_sys::fuzz_target;
use settings::FileConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = toml::from_str::<FileConfig>(text) else {
        return;
    };
    let _ = config.keys_set();
    if let Some(database) = config.database.as_deref() {
        let _ = settings::parse_database(database);
    }
    let settings_of = |c: &FileConfig| serde_json::to_value(c).expect("settings serialise");
    let written = toml::to_string(&config).expect("settings that read write back");
    let again: FileConfig = toml::from_str(&written)
        .unwrap_or_else(|e| panic!("written settings do not read back: {e}\n{written}"));
    assert_eq!(settings_of(&config), settings_of(&again), "{written}");
});
