//! Names the server makes up for objects created with `metadata.generateName`.

use rand::RngExt;

/// Characters of generated suffixes: no vowels (no words) and no look-alikes, as Kubernetes.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// Length of the random suffix.
const SUFFIX_LEN: usize = 5;
/// Longest name the suffix may produce; the prefix is shortened to fit.
const MAX_NAME_LEN: usize = 63;

/// `prefix` followed by five random characters, the prefix cut so the name fits 63 characters.
pub fn generate_name(prefix: &str) -> String {
    let room = MAX_NAME_LEN - SUFFIX_LEN;
    let mut name: String = prefix.chars().take(room).collect();
    let mut rng = rand::rng();
    for _ in 0..SUFFIX_LEN {
        let i = rng.random_range(0..ALPHABET.len());
        name.push(char::from(ALPHABET[i]));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_five_alphabet_characters() {
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("web-"));
        assert!(name[4..].bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(generate_name("web-"), generate_name("web-"));
    }

    #[test]
    fn long_prefixes_are_cut() {
        assert_eq!(generate_name(&"a".repeat(100)).len(), 63);
    }
}
