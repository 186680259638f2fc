//! Continue tokens of paginated lists: opaque base64 of the revision and the last key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use skiff_api::Status;

/// Where a paginated list stopped: the revision of its first page and the last key returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinueToken {
    /// Revision of the first page; every page reports it as the list's resourceVersion.
    #[serde(rename = "rv")]
    pub revision: i64,
    /// The last key returned; the next page starts after it.
    #[serde(rename = "start")]
    pub last_key: String,
}

impl ContinueToken {
    /// The opaque string sent to clients.
    pub fn encode(&self) -> String {
        // Serializing two plain fields cannot fail; fall back to an empty token if it did.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Parses a token a client sent back; 400 when it is not one of ours.
    pub fn decode(token: &str) -> Result<Self, Status> {
        let invalid = |why: String| Status::bad_request(format!("invalid continue token: {why}"));
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|e| invalid(e.to_string()))?;
        let parsed: ContinueToken =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if parsed.revision <= 0 || parsed.last_key.is_empty() {
            return Err(invalid("it names no revision or key".to_string()));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_a_bad_request() {
        let token = ContinueToken {
            revision: 42,
            last_key: "/registry/pods/default/web".into(),
        };
        assert_eq!(ContinueToken::decode(&token.encode()).unwrap(), token);
        assert_eq!(ContinueToken::decode("!!!").unwrap_err().code, 400);
        assert_eq!(ContinueToken::decode("e30").unwrap_err().code, 400);
    }
}
