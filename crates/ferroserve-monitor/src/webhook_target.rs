//! Where webhooks may be sent: a webhook's host must resolve only to
//! public addresses (not loopback, private, link-local, multicast or
//! unspecified ones) unless the host or the address is on the server's
//! allow list (`--webhook-allow`). The address found is the one connected
//! to, so a DNS answer that changes afterwards (rebinding) is not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use reqwest::Url;

/// The server flag that allows a webhook host or network.
pub const ALLOW_FLAG: &str = "--webhook-allow";

/// Hosts and networks webhooks may reach although they are internal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookAllowList {
    /// Host names, lower case, without a trailing dot.
    hosts: Vec<String>,
    /// Networks (a single address is a /32 or /128).
    networks: Vec<IpNet>,
}

impl WebhookAllowList {
    /// Parses entries such as `hooks.internal`, `10.0.0.5`, `10.1.0.0/16`
    /// or `fd00::/8`; an error names the entry.
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut list = WebhookAllowList::default();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if let Ok(network) = entry.parse::<IpNet>() {
                list.networks.push(network);
            } else if let Ok(address) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                list.networks.push(IpNet::from(address));
            } else if is_host_name(entry) {
                list.hosts.push(normalized_host(entry));
            } else {
                return Err(format!(
                    "webhook allow entry {entry:?} is neither a host name, an IP address nor a CIDR network"
                ));
            }
        }
        Ok(list)
    }

    /// Whether `host` (a name) is allowed whatever it resolves to.
    fn allows_host(&self, host: &str) -> bool {
        let host = normalized_host(host);
        self.hosts.contains(&host)
    }

    /// Whether `address` is allowed: public, or on the list.
    fn allows_address(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        internal_range(address).is_none() || self.networks.iter().any(|n| n.contains(&address))
    }

    /// Resolves the host of `url` and returns the address to connect to;
    /// refused (with a message naming the host and [`ALLOW_FLAG`]) when an
    /// address it resolves to is internal and neither the host nor the
    /// address is allowed.
    pub async fn resolve(&self, url: &Url) -> Result<SocketAddr, String> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "webhook url has no port and no known default".to_owned())?;
        let (host, addresses) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
            Some(url::Host::Domain(name)) => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|e| format!("webhook host {name} does not resolve: {e}"))?
                    .collect();
                (name.to_owned(), found)
            }
            None => return Err("webhook url has no host".to_owned()),
        };
        let first = *addresses
            .first()
            .ok_or_else(|| format!("webhook host {host} resolves to no address"))?;
        if self.allows_host(&host) {
            return Ok(first);
        }
        for address in &addresses {
            if !self.allows_address(address.ip()) {
                let range = internal_range(address.ip().to_canonical()).unwrap_or("internal");
                return Err(format!(
                    "webhook host {host} resolves to {} ({range}), where webhooks are not sent; \
                     the server operator can allow it with {ALLOW_FLAG} {host} \
                     (or webhook_allow in the config file)",
                    address.ip()
                ));
            }
        }
        Ok(first)
    }
}

/// The kind of internal range `address` lies in, or `None` for a public one.
pub fn internal_range(address: IpAddr) -> Option<&'static str> {
    match address.to_canonical() {
        IpAddr::V4(ip) => internal_v4(ip),
        IpAddr::V6(ip) => internal_v6(ip),
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_unspecified() || ip.octets()[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else {
        None
    }
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if (first & 0xfe00) == 0xfc00 {
        Some("private (unique local)")
    } else if (first & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

fn is_host_name(entry: &str) -> bool {
    !entry.is_empty()
        && entry.len() <= 253
        && entry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn normalized_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn internal_ranges_are_named() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("224.0.0.1", Some("multicast")),
            ("0.0.0.0", Some("unspecified")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fd12::1", Some("private (unique local)")),
            ("fe80::1", Some("link-local")),
            ("ff02::1", Some("multicast")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("8.8.8.8", None),
            ("2606:4700::1111", None),
        ];
        for (address, expected) in cases {
            assert_eq!(
                internal_range(address.parse().unwrap()),
                expected,
                "{address}"
            );
        }
    }

    #[tokio::test]
    async fn internal_addresses_are_refused_unless_allowed() {
        let none = WebhookAllowList::default();
        for target in [
            "http://127.0.0.1:9/x",
            "http://169.254.169.254/latest",
            "http://10.0.0.5:9200/_bulk",
            "http://[::1]:9/x",
            "http://[::ffff:10.0.0.1]/x",
            "http://localhost:9/x",
        ] {
            let error = none.resolve(&url(target)).await.unwrap_err();
            assert!(error.contains(ALLOW_FLAG), "{target}: {error}");
            assert!(error.contains("webhook host"), "{target}: {error}");
        }
        let public = none.resolve(&url("http://8.8.8.8/x")).await.unwrap();
        assert_eq!(public, "8.8.8.8:80".parse().unwrap());

        let allowed = WebhookAllowList::parse(["127.0.0.1", "10.0.0.0/8", "LocalHost."]).unwrap();
        assert_eq!(
            allowed.resolve(&url("http://127.0.0.1:9/x")).await.unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        allowed.resolve(&url("http://10.9.8.7/x")).await.unwrap();
        let pinned = allowed.resolve(&url("http://localhost:9/x")).await.unwrap();
        assert!(pinned.ip().is_loopback(), "{pinned}");
        assert!(allowed.resolve(&url("http://192.168.0.1/x")).await.is_err());
    }

    #[test]
    fn bad_entries_are_named() {
        let error = WebhookAllowList::parse(["10.0.0.0/99"]).unwrap_err();
        assert!(error.contains("10.0.0.0/99"), "{error}");
        assert!(WebhookAllowList::parse(["http://x"]).is_err());
        assert!(WebhookAllowList::parse(["[::1]", "fd00::/8", "hooks.internal"]).is_ok());
    }
}
