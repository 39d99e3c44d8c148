//! Reading the claims of an id_token (or access token) without checking its signature, as MSAL
//! does: the token came straight from the token endpoint over TLS, and we only use it to show
//! who is signed in.
use base64::Engine;
use serde::Deserialize;

/// The claims m365sync reads from an id_token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub upn: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tid: Option<String>,
    #[serde(default)]
    pub aud: Option<serde_json::Value>,
    #[serde(default)]
    pub exp: Option<i64>,
}

impl Claims {
    /// The name shown for the signed-in user: `preferred_username`, else `upn`, else `email`.
    pub fn username(&self) -> Option<&str> {
        [&self.preferred_username, &self.upn, &self.email]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .find(|s| !s.is_empty())
    }
}

/// Decode the payload (second part) of a compact JWT. No signature check.
pub fn decode_claims(jwt: &str) -> Result<Claims, String> {
    let mut parts = jwt.split('.');
    let (Some(_header), Some(payload)) = (parts.next(), parts.next()) else {
        return Err("not a JWT (expected header.payload.signature)".into());
    };
    // base64url without padding per RFC 7515; tolerate padding and the standard alphabet too.
    let trimmed = payload.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| format!("JWT payload is not base64url: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("JWT payload is not a JSON object: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            e.encode(r#"{"alg":"none","typ":"JWT"}"#),
            e.encode(payload)
        )
    }

    #[test]
    fn id_token_claims_are_decoded_without_signature() {
        let t = jwt(
            r#"{"aud":"cid","iss":"https://login.microsoftonline.com/t/v2.0","preferred_username":"admin@contoso.onmicrosoft.com","tid":"72f988bf-0000","oid":"x","exp":1700000000}"#,
        );
        let c = decode_claims(&t).unwrap();
        assert_eq!(c.username(), Some("admin@contoso.onmicrosoft.com"));
        assert_eq!(c.tid.as_deref(), Some("72f988bf-0000"));
        assert_eq!(c.exp, Some(1700000000));
    }

    #[test]
    fn upn_is_the_fallback_and_padding_is_tolerated() {
        let e = base64::engine::general_purpose::URL_SAFE;
        let t = format!("e30.{}.sig", e.encode(r#"{"upn":"u@x.com","tid":"t1"}"#));
        let c = decode_claims(&t).unwrap();
        assert_eq!(c.username(), Some("u@x.com"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_claims("").is_err());
        assert!(decode_claims("abc").is_err());
        assert!(decode_claims("a.!!!.c").is_err());
        assert!(decode_claims(&format!("a.{}.c", "bm90IGpzb24")).is_err()); // "not json"
    }
}
