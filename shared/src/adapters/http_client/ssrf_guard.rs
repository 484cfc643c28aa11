//! The SSRF guard: which addresses the sender may connect to ([`TargetPolicy`]), enforced
//! at connect time by the client's resolver ([`GuardedResolver`]), after DNS.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use thiserror::Error;

/// A refused range that matched an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockedRange {
    /// The refused range. For an address that embeds an IPv4 (IPv4-mapped, NAT64), the
    /// IPv4 range that refused the embedded address.
    pub range: IpNet,
    /// What the range is, e.g. `loopback`.
    pub name: &'static str,
}

impl fmt::Display for BlockedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.range)
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

/// IPv4 ranges refused unless allowed (IANA special-purpose registry, non-global ones).
const REFUSED_V4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "this network"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "shared address space (CGNAT)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local (cloud metadata)"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
];

/// NAT64 well-known prefix (RFC 6052): the IPv4 is in the last 32 bits.
const NAT64_WELL_KNOWN: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
/// Local-use NAT64 prefix (RFC 8215): operators pick a /48../96 inside it.
const NAT64_LOCAL: Ipv6Net = v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48);
/// All IPv6 global unicast; everything outside it is special or unassigned.
const GLOBAL_UNICAST_V6: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// IPv6 ranges refused unless allowed. IPv4-mapped addresses and NAT64 are handled
/// before this table (by their embedded IPv4), and anything outside 2000::/3 not listed
/// here is refused as reserved.
const REFUSED_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible (deprecated)",
    ),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo"),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments",
    ),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// Which target addresses the sender may connect to. Pure: no I/O.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// A policy that exempts the `allowed` ranges (e.g. loopback for tests and local runs).
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// `Ok` if the sender may connect to `ip`, else the refused range it is in.
    ///
    /// An address inside an allowed range passes; so does an IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`, which the kernel connects as the IPv4) whose IPv4 passes.
    /// NAT64 addresses are judged by their embedded IPv4 (without the exemptions: the
    /// exemption names what the operator allowed, not a translator's view of it).
    pub fn check(&self, ip: IpAddr) -> Result<(), BlockedRange> {
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match ip {
            IpAddr::V4(v4) => refused_v4(v4).map_or(Ok(()), Err),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.check(IpAddr::V4(v4)),
                None => refused_v6(v6).map_or(Ok(()), Err),
            },
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<BlockedRange> {
    REFUSED_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(net, name)| BlockedRange {
            range: IpNet::V4(*net),
            name,
        })
}

fn refused_v6(ip: Ipv6Addr) -> Option<BlockedRange> {
    let o = ip.octets();
    if NAT64_WELL_KNOWN.contains(&ip) {
        return refused_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if NAT64_LOCAL.contains(&ip) {
        // Where the IPv4 sits depends on the prefix length the operator chose inside the
        // /48 (RFC 6052 layouts; octet 8 is the reserved "u" octet), which we can't know:
        // refuse if any reading is refused. In practice this refuses most of the prefix
        // (zero bits read as 0.0.0.0); a deployment behind a local-use NAT64 allows its
        // prefix with ALLOWED_TARGET_CIDRS.
        let readings = [
            [o[6], o[7], o[9], o[10]],    // /48
            [o[7], o[9], o[10], o[11]],   // /56
            [o[9], o[10], o[11], o[12]],  // /64
            [o[12], o[13], o[14], o[15]], // /96
        ];
        return readings
            .into_iter()
            .find_map(|[a, b, c, d]| refused_v4(Ipv4Addr::new(a, b, c, d)));
    }
    if let Some((net, name)) = REFUSED_V6.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(BlockedRange {
            range: IpNet::V6(*net),
            name,
        });
    }
    if !GLOBAL_UNICAST_V6.contains(&ip) {
        return Some(BlockedRange {
            range: IpNet::V6(GLOBAL_UNICAST_V6),
            name: "reserved (outside global unicast 2000::/3)",
        });
    }
    None
}

// ---------------------------------------------------------------------------------------
// Resolver: the connect-time guard

/// Every address the name resolved to is refused.
#[derive(Debug, Error)]
#[error("every address of the host is in a refused range ({0})")]
pub(super) struct AllAddressesRefused(pub(super) BlockedRange);

/// The name did not resolve (or resolved to nothing).
#[derive(Debug, Error)]
#[error("host name did not resolve")]
pub(super) struct NameNotResolved;

/// Resolves with the system resolver, then keeps only addresses the policy lets through.
/// reqwest connects only to what this returns, so the check happens after DNS, on the
/// very addresses connected to.
pub(super) struct GuardedResolver {
    pub(super) policy: Arc<TargetPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(guarded_lookup(
            self.policy.clone(),
            name.as_str().to_owned(),
        ))
    }
}

async fn guarded_lookup(
    policy: Arc<TargetPolicy>,
    host: String,
) -> Result<Addrs, Box<dyn StdError + Send + Sync>> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map_err(|_| NameNotResolved)?
        .collect();
    let (kept, refused) = filter_addrs(&policy, resolved);
    if kept.is_empty() {
        return Err(match refused {
            Some(range) => AllAddressesRefused(range).into(),
            None => NameNotResolved.into(),
        });
    }
    Ok(Box::new(kept.into_iter()))
}

/// Splits resolved addresses into the ones allowed and (the first) refused range seen.
fn filter_addrs(
    policy: &TargetPolicy,
    resolved: Vec<SocketAddr>,
) -> (Vec<SocketAddr>, Option<BlockedRange>) {
    let mut refused = None;
    let kept = resolved
        .into_iter()
        .filter(|addr| match policy.check(addr.ip()) {
            Ok(()) => true,
            Err(range) => {
                refused.get_or_insert(range);
                false
            }
        })
        .collect();
    (kept, refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::{Host, Url};

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn refused(text: &str) -> bool {
        TargetPolicy::default().check(ip(text)).is_err()
    }

    #[test]
    fn refused_addresses() {
        let cases = [
            // IPv4, each range and its edges
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.0",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "192.168.255.255",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6 special blocks
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1::1",
            "2001:1ff:ffff::1",
            "2001:db8::1",
            "2001:db8:ffff:ffff::1",
            "2002::1",
            "2002:c000:0204::1",
            "2002:5db8:d822::1",
            "3fff::1",
            "3fff:fff:ffff::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf:ffff::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            // outside 2000::/3
            "4000::1",
            "1::1",
            // IPv4-mapped
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            // IPv4-translated (SIIT), outside 2000::/3
            "::ffff:0:7f00:1",
            // NAT64 with a refused IPv4
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::10.0.0.1",
            "64:ff9b:1:7f00:0:100::",
            // NAT64 local: a public /96 reading but loopback in the /48 layout
            "64:ff9b:1:7f00:0:100:5db8:d822",
        ];
        let wrongly_allowed: Vec<_> = cases.iter().filter(|c| !refused(c)).collect();
        assert!(wrongly_allowed.is_empty(), "allowed: {wrongly_allowed:?}");
    }

    #[test]
    fn public_addresses_pass() {
        let cases = [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2003::1",
            "3ffe::1",
            "::ffff:93.184.216.34",
            "64:ff9b::93.184.216.34",
            "64:ff9b::808:808",
        ];
        for case in cases {
            assert_eq!(
                TargetPolicy::default().check(ip(case)),
                Ok(()),
                "{case} should pass"
            );
        }
    }

    #[test]
    fn blocked_range_names_the_range() {
        let policy = TargetPolicy::default();
        let range = policy.check(ip("169.254.169.254")).expect_err("metadata");
        assert_eq!(range.range, "169.254.0.0/16".parse::<IpNet>().expect("net"));
        assert_eq!(
            range.to_string(),
            "link-local (cloud metadata) (169.254.0.0/16)"
        );
        let mapped = policy.check(ip("::ffff:127.0.0.1")).expect_err("mapped");
        assert_eq!(mapped.name, "loopback");
        assert_eq!(mapped.range, "127.0.0.0/8".parse::<IpNet>().expect("net"));
        let teredo = policy.check(ip("2001::1")).expect_err("teredo");
        assert_eq!(teredo.name, "Teredo");
    }

    #[test]
    fn odd_ipv4_spellings_normalise_to_loopback_and_are_refused() {
        let policy = TargetPolicy::default();
        for spelling in [
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://017700000001/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://127.0.1/",
            "https://127.000.000.001/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
        ] {
            let url = Url::parse(spelling).expect("parses");
            let host = match url.host() {
                Some(Host::Ipv4(v4)) => {
                    assert_eq!(v4, Ipv4Addr::LOCALHOST, "{spelling}");
                    IpAddr::V4(v4)
                }
                Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
                other => panic!("{spelling} parsed as {other:?}"),
            };
            assert!(policy.check(host).is_err(), "{spelling} must be refused");
        }
        // Not numbers at all: stays a name (and goes through the resolver).
        let url = Url::parse("https://127.0.0.1.nip.io/").expect("parses");
        assert!(matches!(url.host(), Some(Host::Domain(_))));
    }

    #[test]
    fn allowed_ranges_exempt() {
        let policy = TargetPolicy::new(vec![
            "127.0.0.0/8".parse().expect("net"),
            "10.1.0.0/16".parse().expect("net"),
            "fd00::/8".parse().expect("net"),
        ]);
        for allowed in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.255.255",
        ] {
            assert_eq!(policy.check(ip(allowed)), Ok(()), "{allowed}");
        }
        for still_refused in [
            "10.2.0.1",
            "::1",
            "169.254.169.254",
            "fc00::1",
            "::ffff:10.2.0.1",
            // NAT64 of an allowed IPv4 is not exempt.
            "64:ff9b::127.0.0.1",
        ] {
            assert!(policy.check(ip(still_refused)).is_err(), "{still_refused}");
        }
        let v6_loopback = TargetPolicy::new(vec!["::1/128".parse().expect("net")]);
        assert_eq!(v6_loopback.check(ip("::1")), Ok(()));
        assert!(v6_loopback.check(ip("127.0.0.1")).is_err());
    }

    #[test]
    fn resolver_filter_keeps_allowed_and_reports_refused() {
        let policy = TargetPolicy::default();
        let addrs: Vec<SocketAddr> = ["127.0.0.1:0", "93.184.216.34:0", "[::1]:0"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        let (kept, refused) = filter_addrs(&policy, addrs);
        assert_eq!(
            kept,
            vec!["93.184.216.34:0".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(refused.map(|r| r.name), Some("loopback"));

        let (kept, refused) = filter_addrs(&policy, vec!["[::1]:0".parse().expect("addr")]);
        assert!(kept.is_empty());
        assert!(refused.is_some());
    }

    #[tokio::test]
    async fn resolver_fails_recognisably() {
        let resolver = GuardedResolver {
            policy: Arc::new(TargetPolicy::default()),
        };
        let name: Name = "localhost".parse().expect("name");
        let error = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(error) => error,
        };
        assert!(error.is::<AllAddressesRefused>());

        let allowing = GuardedResolver {
            policy: Arc::new(TargetPolicy::new(vec!["127.0.0.0/8".parse().expect("net")])),
        };
        let name: Name = "localhost".parse().expect("name");
        let addrs: Vec<_> = match allowing.resolve(name).await {
            Ok(addrs) => addrs.collect(),
            Err(error) => panic!("localhost allowed: {error}"),
        };
        assert!(addrs.iter().any(|a| a.ip() == ip("127.0.0.1")));
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() || a.ip() == ip("::1"))
        );
    }
}
