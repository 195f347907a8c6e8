//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! fuzz targets' entry points on every test run, so the corpora stay
//! meaningful and every input the fuzzer ever kept still parses without a
//! panic — also where `cargo fuzz` is not installed.

use std::path::Path;

#[test]
fn every_corpus_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus");
    for (name, target) in seatable_cred::fuzzing::TARGETS {
        let dir = root.join(name);
        let inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!inputs.is_empty(), "{name} has no corpus");
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            target(&data);
        }
    }
}

#[test]
fn edge_inputs_pass_every_target() {
    let edges: [&[u8]; 6] = [
        b"",
        b"\0",
        b"\xff\xfe\xfd",
        b"{",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        &[b'a'; 70 * 1024],
    ];
    for (_, target) in seatable_cred::fuzzing::TARGETS {
        for edge in edges {
            target(edge);
        }
    }
}
