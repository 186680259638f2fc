//! The host platform in the spelling Kubernetes uses (Go's `GOARCH`), for node labels, node
//! info and the apiserver's `/version`.

/// Rust's name of an architecture (`std::env::consts::ARCH`) in Go's spelling; `little_endian`
/// tells the byte orders apart where Go names them differently (ppc64/ppc64le, mips/mipsle).
/// Names Go shares with Rust (`arm`, `riscv64`, `s390x`, …) pass through unchanged.
pub fn go_arch(rust_arch: &str, little_endian: bool) -> &str {
    match (rust_arch, little_endian) {
        ("x86_64", _) => "amd64",
        ("x86", _) => "386",
        ("aarch64", _) => "arm64",
        ("loongarch64", _) => "loong64",
        ("powerpc64", true) => "ppc64le",
        ("powerpc64", false) => "ppc64",
        ("mips", true) => "mipsle",
        ("mips64", true) => "mips64le",
        ("wasm32", _) => "wasm",
        (other, _) => other,
    }
}

/// This process's architecture in Go's spelling, e.g. `amd64`.
pub fn host_go_arch() -> &'static str {
    go_arch(std::env::consts::ARCH, cfg!(target_endian = "little"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_architectures_map_to_go_names() {
        for (rust, little_endian, go) in [
            ("x86_64", true, "amd64"),
            ("x86", true, "386"),
            ("aarch64", true, "arm64"),
            ("arm", true, "arm"),
            ("riscv64", true, "riscv64"),
            ("s390x", false, "s390x"),
            ("loongarch64", true, "loong64"),
            ("powerpc64", true, "ppc64le"),
            ("powerpc64", false, "ppc64"),
            ("mips", true, "mipsle"),
            ("mips", false, "mips"),
            ("mips64", true, "mips64le"),
            ("mips64", false, "mips64"),
            ("wasm32", true, "wasm"),
        ] {
            assert_eq!(
                go_arch(rust, little_endian),
                go,
                "{rust} (little endian: {little_endian})"
            );
        }
    }

    #[test]
    fn the_host_has_a_go_name() {
        let arch = host_go_arch();
        assert!(!arch.is_empty());
        if cfg!(target_arch = "x86_64") {
            assert_eq!(arch, "amd64");
        }
    }
}
