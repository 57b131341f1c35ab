//! Client configuration: where Braze is, the key, timeouts, retries and rate limits.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use crate::endpoint::RateLimitPool;
use crate::error::{BrazeError, Result};
use crate::retry::RetryPolicy;
use crate::secret::ApiKey;

/// A client-side budget: `requests` per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length.
    pub per: Duration,
}

/// Everything a [`crate::BrazeClient`] needs. Build with [`BrazeConfig::builder`].
#[derive(Clone, Debug)]
pub struct BrazeConfig {
    pub(crate) base_url: Url,
    pub(crate) api_key: ApiKey,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) rate_limits: BTreeMap<RateLimitPool, RateLimit>,
    pub(crate) user_agent: String,
}

impl BrazeConfig {
    /// Starts a configuration for the REST instance at `base_url` (e.g. `https://rest.iad-01.braze.com`).
    pub fn builder(base_url: impl Into<String>, api_key: ApiKey) -> BrazeConfigBuilder {
        BrazeConfigBuilder {
            base_url: base_url.into(),
            api_key,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::standard(),
            rate_limits: RateLimitPool::ALL
                .iter()
                .map(|&pool| {
                    let (requests, secs) = pool.documented_limit();
                    (
                        pool,
                        RateLimit {
                            requests,
                            per: Duration::from_secs(secs),
                        },
                    )
                })
                .collect(),
            user_agent: format!("offerloop/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The validated base URL.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The retry policy.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The client-side budget of a pool.
    pub fn rate_limit(&self, pool: RateLimitPool) -> Option<RateLimit> {
        self.rate_limits.get(&pool).copied()
    }
}

/// Builder of [`BrazeConfig`]; defaults are Braze's documented limits and conservative timeouts.
#[derive(Debug)]
pub struct BrazeConfigBuilder {
    base_url: String,
    api_key: ApiKey,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    rate_limits: BTreeMap<RateLimitPool, RateLimit>,
    user_agent: String,
}

impl BrazeConfigBuilder {
    /// Time allowed to establish a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The retry policy (default [`RetryPolicy::standard`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Overrides the client-side budget of one pool (e.g. a raised limit, or tiny limits in tests).
    pub fn rate_limit(mut self, pool: RateLimitPool, limit: RateLimit) -> Self {
        self.rate_limits.insert(pool, limit);
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Gives this client `1 / processes` of every pool's budget: the share of one of `processes`
    /// processes that call Braze with the same key at once (the workers of a day shared across
    /// processes), so that together they stay under Braze's limits. Each pool keeps at least one
    /// request per window. Braze's own `X-RateLimit-*` headers, which every process reads, still
    /// make any of them wait when the shared window is spent.
    pub fn share_rate_limits(mut self, processes: u32) -> Self {
        let processes = processes.max(1);
        for limit in self.rate_limits.values_mut() {
            limit.requests = (limit.requests / processes).max(1);
        }
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`BrazeError::Config`] for a base URL that is not `https` (plain `http` is accepted only to
    /// loopback, for tests and the simulator), has a query or fragment, or for a zero limit or timeout.
    pub fn build(self) -> Result<BrazeConfig> {
        let url = Url::parse(&self.base_url)
            .map_err(|e| BrazeError::Config(format!("base URL `{}` is not a URL: {e}", self.base_url)))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(BrazeError::Config(format!(
                    "base URL `{url}` uses plain http; the API key would travel in clear. Use https (http is only accepted to loopback)"
                )));
            }
            other => {
                return Err(BrazeError::Config(format!(
                    "base URL `{url}` has scheme `{other}`; use https"
                )));
            }
        }
        if url.query().is_some() || url.fragment().is_some() || url.host().is_none() {
            return Err(BrazeError::Config(format!(
                "base URL `{url}` must be scheme://host[:port][/prefix]"
            )));
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(BrazeError::Config("timeouts must be positive".to_owned()));
        }
        if let Some((pool, _)) = self
            .rate_limits
            .iter()
            .find(|(_, l)| l.requests == 0 || l.per.is_zero())
        {
            return Err(BrazeError::Config(format!(
                "the rate limit of {pool:?} must be positive"
            )));
        }
        if self.retry.max_attempts == 0 {
            return Err(BrazeError::Config("retry.max_attempts must be at least 1".to_owned()));
        }
        // Paths are joined below the base, so it must end with a slash.
        let mut base_url = url;
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Ok(BrazeConfig {
            base_url,
            api_key: self.api_key,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            retry: self.retry,
            rate_limits: self.rate_limits,
            user_agent: self.user_agent,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn shared_budgets_add_up_to_at_most_the_documented_limit() {
        use crate::endpoint::RateLimitPool;
        let key = crate::ApiKey::new("k").unwrap();
        for processes in [1_u32, 2, 3, 4, 7, 100_000_000] {
            let config = super::BrazeConfig::builder("https://rest.iad-01.braze.com", key.clone())
                .share_rate_limits(processes)
                .build()
                .unwrap();
            for pool in RateLimitPool::ALL {
                let (documented, _) = pool.documented_limit();
                let share = config.rate_limit(pool).unwrap().requests;
                assert!(share >= 1, "{pool:?}");
                if documented >= processes {
                    assert!(
                        u64::from(share) * u64::from(processes) <= u64::from(documented),
                        "{pool:?} {processes}"
                    );
                }
            }
        }
    }

    use super::*;

    fn build(url: &str) -> Result<BrazeConfig> {
        BrazeConfig::builder(url, ApiKey::new("k").unwrap()).build()
    }

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        assert!(build("https://rest.iad-01.braze.com").is_ok());
        assert!(build("http://127.0.0.1:8080").is_ok());
        assert!(build("http://localhost:9").is_ok());
        assert!(build("http://[::1]:9").is_ok());
        let err = build("http://rest.iad-01.braze.com").unwrap_err().to_string();
        assert!(err.contains("plain http"), "{err}");
        assert!(build("ftp://x").is_err());
        assert!(build("https://x/?a=1").is_err());
        assert!(build("not a url").is_err());
    }

    #[test]
    fn base_url_gets_a_trailing_slash_and_debug_hides_the_key() {
        let c = BrazeConfig::builder("https://proxy.example/braze", ApiKey::new("sk-hidden").unwrap())
            .build()
            .unwrap();
        assert_eq!(c.base_url().as_str(), "https://proxy.example/braze/");
        assert!(!format!("{c:?}").contains("sk-hidden"));
    }

    #[test]
    fn documented_limits_are_the_defaults() {
        let c = build("https://rest.fra-01.braze.eu").unwrap();
        let track = c.rate_limit(RateLimitPool::UsersTrack).unwrap();
        assert_eq!((track.requests, track.per), (3_000, Duration::from_secs(3)));
    }
}
