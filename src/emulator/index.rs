//! Lookup index over a tenant's active users: who holds a UPN, a mail, an `otherMails` entry or
//! a proxy address. Uniqueness checks, `/users/{upn}` and the invitation's B2B lookup read it, so
//! they cost O(log n) instead of a scan of the tenant. It is derived data: never persisted,
//! rebuilt on load, kept current by [`super::model::Tenant::put_user`] / `take_user`.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::model::{Obj, str_prop};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Upn,
    Mail,
    OtherMail,
    /// `proxyAddresses` entries without their `smtp:` prefix.
    Proxy,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::Upn, Field::Mail, Field::OtherMail, Field::Proxy];

    /// The field a user property is indexed under (`None`: not indexed).
    pub fn for_property(property: &str) -> Option<Field> {
        match property {
            "userPrincipalName" => Some(Field::Upn),
            "mail" => Some(Field::Mail),
            "otherMails" => Some(Field::OtherMail),
            "proxyAddresses" => Some(Field::Proxy),
            _ => None,
        }
    }
}

/// Directory values compare case-insensitively.
pub fn fold(value: &str) -> String {
    if value.is_ascii() {
        value.to_ascii_lowercase()
    } else {
        value.to_lowercase()
    }
}

/// `SMTP:a@b` / `smtp:a@b` → `a@b`; other address types (`x500:`, `sip:`) keep their prefix.
fn proxy_address(entry: &str) -> &str {
    match entry.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("smtp:") => &entry[5..],
        _ => entry,
    }
}

#[derive(Debug, Clone, Default)]
pub struct UserIndex {
    holders: HashMap<(Field, String), BTreeSet<String>>,
}

fn entries(user: &Obj) -> Vec<(Field, String)> {
    let mut out = Vec::new();
    if let Some(v) = str_prop(user, "userPrincipalName") {
        out.push((Field::Upn, fold(v)));
    }
    if let Some(v) = str_prop(user, "mail") {
        out.push((Field::Mail, fold(v)));
    }
    let list = |name: &str| -> Vec<String> {
        user.get(name)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for v in list("otherMails") {
        out.push((Field::OtherMail, fold(&v)));
    }
    for v in list("proxyAddresses") {
        out.push((Field::Proxy, fold(proxy_address(&v))));
    }
    out
}

impl UserIndex {
    pub fn add(&mut self, id: &str, user: &Obj) {
        for key in entries(user) {
            self.holders.entry(key).or_default().insert(id.to_string());
        }
    }

    pub fn remove(&mut self, id: &str, user: &Obj) {
        for key in entries(user) {
            if let Some(set) = self.holders.get_mut(&key) {
                set.remove(id);
                if set.is_empty() {
                    self.holders.remove(&key);
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.holders.clear();
    }

    /// Ids of users holding `value` in `field` (case-insensitive).
    pub fn holders(&self, field: Field, value: &str) -> impl Iterator<Item = &String> {
        let key = (field, fold(value));
        self.holders.get(&key).into_iter().flatten()
    }

    /// Ids of users holding `address` as UPN, mail, other mail or SMTP proxy address.
    pub fn address_holders(&self, address: &str) -> BTreeSet<String> {
        Field::ALL
            .iter()
            .flat_map(|f| self.holders(*f, address))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(v: Value) -> Obj {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn finds_holders_of_every_address_kind_case_insensitively() {
        let mut idx = UserIndex::default();
        idx.add(
            "a",
            &user(json!({
                "userPrincipalName": "Pat@Contoso.com",
                "mail": "pat.m@contoso.com",
                "otherMails": ["pat@home.example"],
                "proxyAddresses": ["SMTP:pat.m@contoso.com", "smtp:Pat.Alias@contoso.com", "x500:/o=x"],
            })),
        );
        assert_eq!(idx.holders(Field::Upn, "pat@contoso.com").count(), 1);
        assert!(idx.address_holders("PAT.ALIAS@contoso.com").contains("a"));
        assert!(idx.address_holders("pat@home.example").contains("a"));
        assert!(idx.address_holders("/o=x").is_empty());
        idx.remove(
            "a",
            &user(json!({
                "userPrincipalName": "Pat@Contoso.com",
                "mail": "pat.m@contoso.com",
                "otherMails": ["pat@home.example"],
                "proxyAddresses": ["SMTP:pat.m@contoso.com", "smtp:Pat.Alias@contoso.com", "x500:/o=x"],
            })),
        );
        assert!(idx.holders.is_empty());
    }
}
