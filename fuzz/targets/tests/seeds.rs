//! Replays the committed seed corpus, `fuzz/seeds/<target>/*`, through
//! every target: hand-made seeds, interesting cases, and the inputs of
//! bugs the fuzzing found (each named after its bug). cargo-fuzz starts
//! from the same files (see fuzz/README.md).

use std::path::{Path, PathBuf};

use sluice_fuzz_targets::TARGETS;

fn seed_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../seeds")
        .join(target)
}

/// The seeds of `target`, sorted by name; a target without seeds fails.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = seed_dir(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("seed readable"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{}: no seeds", dir.display());
    out
}

#[test]
fn every_target_has_a_cargo_fuzz_binary_and_seeds() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .expect("fuzz/Cargo.toml");
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml lacks a [[bin]] for {name}"
        );
        assert!(!seeds(name).is_empty());
    }
}

#[test]
fn seed_corpus_replays_clean() {
    for (name, run) in TARGETS {
        for (seed, data) in seeds(name) {
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "{name}: seed {seed} panics");
        }
    }
}
