//! The drivers read every URL that `connection_url` accepts exactly as it does: same user, same
//! hosts. This is what lets the probes hand the drivers the string itself while only the one
//! reading's hosts reach the resolver.

use super::postgres::connstr_endpoints;
use super::{clickhouse, mysql};
use credentials_core::connection_url;

/// Accepted strings that still hold what trips parsers up elsewhere: ':' in a password,
/// escaped '@' in the user info and the parameters, several hosts, IPv6, no port.
const POSTGRES: &[&str] = &[
    "postgresql://app:a:b:c@db.example.com:6000/prod",
    "postgresql://app%40corp:p%40ss@db.example.com/prod?user=x%40y",
    "postgres://app:p@a.example,b.example:7000/prod",
    "postgresql://app:p@[2001:db8::1]:5433/prod",
    "postgresql://app@db.example.com",
    "postgresql://db.example.com:5432/prod?password=p%23q",
];

const MYSQL: &[&str] = &[
    "mysql://app:a:b:c@db.example.com:3307/prod",
    "mysql://app%40corp:p%40ss@db.example.com/prod",
    "mariadb://app:p@db.example.com/prod",
    "mysql://app:p@[2001:db8::1]:3306/prod",
];

const CLICKHOUSE: &[&str] = &[
    "clickhouse://app:a:b:c@ch.example.com:8123/db",
    "https://app%40corp:p%40ss@ch.example.com/db",
    "jdbc:clickhouse://ch.example.com:8123/db?user=app&password=p%40q",
];

fn our_hosts(s: &str) -> Vec<(String, Option<u16>)> {
    let s = s.strip_prefix("jdbc:").unwrap_or(s);
    connection_url::parse(s)
        .unwrap()
        .unwrap()
        .endpoints()
        .map(|(h, p)| (h.to_owned(), p.map(|p| p.parse().unwrap())))
        .collect()
}

#[test]
fn postgres_reads_the_same_hosts() {
    for s in POSTGRES {
        let ours = our_hosts(s);
        let theirs = connstr_endpoints(s);
        assert_eq!(ours.len(), theirs.len(), "{s}");
        for ((host, port), (their_host, their_port)) in ours.iter().zip(&theirs) {
            assert_eq!(host, their_host, "{s}");
            if let Some(port) = port {
                assert_eq!(port, their_port, "{s}");
            }
        }
    }
}

#[test]
fn mysql_and_clickhouse_read_the_same_host() {
    let mysql = MYSQL.iter().map(|s| (*s, mysql::parsed_endpoint(s)));
    let clickhouse = CLICKHOUSE
        .iter()
        .map(|s| (*s, clickhouse::parsed_endpoint(s)));
    for (s, (host, port)) in mysql.chain(clickhouse) {
        let ours = our_hosts(s);
        assert_eq!(ours.len(), 1, "{s}");
        // Brackets or none: the egress guard strips them before resolving.
        assert_eq!(
            ours[0].0,
            host.trim_start_matches('[').trim_end_matches(']'),
            "{s}"
        );
        if let Some(p) = ours[0].1 {
            assert_eq!(p, port, "{s}");
        }
    }
}
