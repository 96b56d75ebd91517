//! Which module may use which: the service and the local building blocks never reach into
//! the command line, and node set-up belongs to neither side, so that the command line,
//! the service and the set-up they share form no cycle. Checked on the sources.

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The Rust files under `dir` (relative to `keeper/src`), recursively.
    fn sources(dir: &str) -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
        let mut found = Vec::new();
        let mut stack = vec![root];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).expect("read the source directory") {
                    stack.push(entry.expect("a directory entry").path());
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read a source file");
                found.push((path.display().to_string(), text));
            }
        }
        found
    }

    fn assert_never_uses(dirs: &[&str], forbidden: &[&str]) {
        for dir in dirs {
            let files = sources(dir);
            assert!(!files.is_empty(), "{dir}: no sources found");
            for (path, text) in files {
                for word in forbidden {
                    assert!(!text.contains(word), "{path} uses {word}");
                }
            }
        }
    }

    #[test]
    fn the_service_and_the_building_blocks_never_use_the_command_line() {
        assert_never_uses(
            &[
                "service",
                "postgres",
                "monitor",
                "node_setup.rs",
                "os_user.rs",
            ],
            &["crate::commands", "crate::cli"],
        );
    }

    #[test]
    fn node_set_up_and_the_building_blocks_never_use_the_service() {
        assert_never_uses(
            &["postgres", "monitor", "node_setup.rs", "os_user.rs"],
            &["crate::service"],
        );
    }
}
