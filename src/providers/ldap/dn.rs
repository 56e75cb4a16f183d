//! DNs as the server sends them: split off the first RDN (honouring `\` escapes), compare two
//! loosely, read the first RDN's value. Nothing here builds a DN from input; these only take
//! apart and compare DNs the server sent (or a runbook copied from it).

/// Split a DN (as the server sent it) into its first RDN and the parent DN, honouring `\`
/// escapes (`CN=Doe\, Jane,OU=People,…`).
pub fn split_dn(dn: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' | ';' => return (dn[..i].trim(), dn[i + 1..].trim()),
            _ => {}
        }
    }
    (dn.trim(), "")
}

/// A DN compared loosely: case-insensitive, no spaces around `,` and `=`. Good enough to
/// compare DNs the same server sent, or one the runbook copied from it.
pub(super) fn dn_key(dn: &str) -> String {
    let mut out = String::new();
    let mut rest = dn.trim();
    loop {
        let (rdn, parent) = split_dn(rest);
        let rdn = match rdn.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim(), v.trim()),
            None => rdn.to_string(),
        };
        out.push_str(&rdn.to_lowercase());
        if parent.is_empty() {
            break;
        }
        out.push(',');
        rest = parent;
    }
    out
}

pub(super) fn dn_eq(a: &str, b: &str) -> bool {
    dn_key(a) == dn_key(b)
}

/// The value of a DN's first RDN (`CN=VPN Users,…` → `VPN Users`), escapes undone for the
/// common cases.
pub(super) fn first_rdn_value(dn: &str) -> String {
    let (rdn, _) = split_dn(dn);
    let v = rdn.split_once('=').map_or(rdn, |(_, v)| v).trim();
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ldap::groups::group_listed;

    #[test]
    fn dns_split_and_compare() {
        assert_eq!(
            split_dn("CN=Doe\\, Jane,OU=People,DC=corp,DC=test"),
            ("CN=Doe\\, Jane", "OU=People,DC=corp,DC=test")
        );
        assert_eq!(split_dn("DC=test"), ("DC=test", ""));
        assert!(dn_eq(
            "OU=Disabled Users, DC=corp, DC=test",
            "ou=disabled users,dc=corp,dc=test"
        ));
        assert!(!dn_eq(
            "OU=Disabled,DC=corp,DC=test",
            "OU=Disabled Users,DC=corp,DC=test"
        ));
        assert_eq!(first_rdn_value("CN=VPN\\, EU,OU=G,DC=x"), "VPN, EU");
        let listed = vec![
            "vpn users".to_string(),
            "CN=Admins,DC=corp,DC=test".to_string(),
        ];
        assert!(group_listed(
            &listed,
            "CN=VPN Users,OU=Groups,DC=corp,DC=test"
        ));
        assert!(group_listed(&listed, "cn=admins, dc=corp, dc=test"));
        assert!(!group_listed(&listed, "CN=Admins,OU=Other,DC=corp,DC=test"));
    }
}
