//! API key authentication (braze-api.md §1, §16): `Authorization: Bearer <key>`; a missing, unknown or
//! quoted key → 401; a key without the endpoint's permission → 403; a request from an IP outside the
//! key's allowlist → 401 ("Invalid whitelisted IPs"). Keys come from the scenario's
//! [`WorkspaceSpec::api_keys`](crate::state::WorkspaceSpec::api_keys); none declared: one key,
//! [`DEFAULT_API_KEY`], with `"*"` (every permission).

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode, header};

use super::envelope::ApiError;
use crate::state::DEFAULT_API_KEY;
use crate::state::spec::ApiKeySpec;

/// The keys a server accepts.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    keys: Vec<ApiKeySpec>,
}

impl ApiKeys {
    /// The keys of a workspace spec (the default key when it declares none).
    pub fn new(declared: &[ApiKeySpec]) -> ApiKeys {
        let keys = if declared.is_empty() {
            vec![ApiKeySpec {
                key: DEFAULT_API_KEY.into(),
                permissions: vec!["*".into()],
                ip_allowlist: Vec::new(),
            }]
        } else {
            declared.to_vec()
        };
        ApiKeys { keys }
    }

    /// Every key with its permissions.
    pub fn keys(&self) -> &[ApiKeySpec] {
        &self.keys
    }

    /// Authenticates a request for `permission` from `ip` (unknown when the server was not started
    /// with connect info: then allowlists are not enforced).
    ///
    /// # Errors
    /// The Braze-shaped 401 or 403.
    pub fn check(&self, headers: &HeaderMap, ip: Option<IpAddr>, permission: &str) -> Result<&ApiKeySpec, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("Error authenticating credentials: missing Authorization header"))?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| unauthorized("Error authenticating credentials: expected `Authorization: Bearer <key>`"))?;
        if token.starts_with(['"', '\'']) || token.ends_with(['"', '\'']) {
            return Err(unauthorized(
                "Error authenticating credentials: invalid API key (the key must not be quoted)",
            ));
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.key == token)
            .ok_or_else(|| unauthorized("Error authenticating credentials: invalid API key"))?;
        if let Some(ip) = ip
            && !key.ip_allowlist.is_empty()
            && !key.ip_allowlist.iter().any(|allowed| allowed_ip(allowed, ip))
        {
            return Err(unauthorized("Invalid whitelisted IPs"));
        }
        if !key.permissions.iter().any(|p| p == "*" || p == permission) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("Access Denied: you do not have permission to access this resource (`{permission}`)"),
            ));
        }
        Ok(key)
    }
}

/// Whether `ip` matches an allowlist entry: an address, or `address/prefix-length` (CIDR).
fn allowed_ip(entry: &str, ip: IpAddr) -> bool {
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (entry, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    let ip = ip.to_canonical();
    match (net, ip, bits) {
        (_, _, None) => net == ip,
        (IpAddr::V4(n), IpAddr::V4(i), Some(b)) if b <= 32 => {
            let mask = u32::MAX.checked_shl(32 - b).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i), Some(b)) if b <= 128 => {
            let mask = u128::MAX.checked_shl(128 - b).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::new(&[
            ApiKeySpec {
                key: "track-only".into(),
                permissions: vec!["users.track".into()],
                ip_allowlist: vec![],
            },
            ApiKeySpec {
                key: "office".into(),
                permissions: vec!["*".into()],
                ip_allowlist: vec!["10.0.0.0/8".into()],
            },
        ])
    }

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn default_key_has_every_permission() {
        let k = ApiKeys::new(&[]);
        assert!(
            k.check(&auth(&format!("Bearer {DEFAULT_API_KEY}")), None, "canvas.list")
                .is_ok()
        );
    }

    #[test]
    fn refusals_have_braze_statuses() {
        let k = keys();
        let status = |h: HeaderMap, ip: Option<IpAddr>, p: &str| k.check(&h, ip, p).err().map(|e| e.status);
        assert_eq!(
            status(HeaderMap::new(), None, "users.track"),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(auth("Basic track-only"), None, "users.track"),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(auth("Bearer \"track-only\""), None, "users.track"),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(auth("Bearer 'track-only'"), None, "users.track"),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(auth("Bearer nope"), None, "users.track"),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(status(auth("Bearer track-only"), None, "users.track"), None);
        assert_eq!(status(auth("bearer track-only"), None, "users.track"), None);
        assert_eq!(
            status(auth("Bearer track-only"), None, "messages.send"),
            Some(StatusCode::FORBIDDEN)
        );
        let inside: IpAddr = "10.1.2.3".parse().unwrap();
        let outside: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(status(auth("Bearer office"), Some(inside), "messages.send"), None);
        assert_eq!(
            status(auth("Bearer office"), Some(outside), "messages.send"),
            Some(StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn allowlist_entries_are_addresses_or_cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(allowed_ip("127.0.0.1", ip("127.0.0.1")));
        assert!(allowed_ip("127.0.0.0/8", ip("127.9.9.9")));
        assert!(!allowed_ip("127.0.0.0/8", ip("128.0.0.1")));
        assert!(allowed_ip("0.0.0.0/0", ip("8.8.8.8")));
        assert!(allowed_ip("::1", ip("::1")));
        assert!(allowed_ip("127.0.0.1", ip("::ffff:127.0.0.1")));
        assert!(!allowed_ip("garbage", ip("127.0.0.1")));
    }
}
