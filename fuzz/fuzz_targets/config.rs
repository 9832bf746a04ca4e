//! Arbitrary text as fence_virt.conf: parsing and validation never panic,
//! and any tree that parses is written back to text that parses to the
//! same tree.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vmfence_config::{syntax, write_tree, Config};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(tree) = syntax::parse(text) else { return };
    let _ = Config::from_tree(&tree, Path::new("fuzz.conf"));
    if let Ok(written) = write_tree(&tree) {
        let again = syntax::parse(&written).unwrap_or_else(|e| panic!("written text does not parse: {e}\n{written}"));
        assert!(tree.same_content(&again), "round trip changed the tree:\n{written}");
    }
});
