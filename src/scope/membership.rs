//! Who counts as an internal member of the source tenant: CTS syncs only those (never guests,
//! never external users), which is also what keeps a mesh from looping.
//!
//! A user is **external** when any of these holds (checked in this order, first reason reported):
//! 1. `creationType` is `Invitation` (created by a B2B invitation; Graph user.md);
//! 2. `externalUserState` is set (`PendingAcceptance`/`Accepted`: only invited users carry it);
//! 3. `userPrincipalName` contains `#EXT#` (the B2B UPN form, reference §3.3);
//! 4. an `identities` entry was issued by another identity provider: `signInType` `federated`, or
//!    issuer `ExternalAzureAD`, `MicrosoftAccount` or `mail` (Graph objectIdentity; an internal
//!    account's identities are issued by the tenant's own domain);
//! 5. CTS's built-in scoping filter "Filter external users" (`alternativeSecurityIds EQUALS
//!    'None'`, reference §2.2) fails: the user carries `alternativeSecurityIds` with a value other
//!    than `None`. Graph v1.0 users have no such property (it exists only on devices), so in
//!    practice this applies only to inputs shaped like Entra's import details.
//!
//! Otherwise the user is internal, and a **guest** when `userType` is `Guest` (case-insensitive).

use serde::{Deserialize, Serialize};

use crate::mapping::SourceAttributes;

/// How the source tenant relates to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "reason")]
pub enum Membership {
    InternalMember,
    InternalGuest,
    External(ExternalReason),
}

impl Membership {
    pub fn is_internal_member(&self) -> bool {
        matches!(self, Membership::InternalMember)
    }

    /// Classifies a source user by the rules in the module documentation.
    pub fn of(user: &SourceAttributes<'_>) -> Membership {
        if let Some(reason) = external_reason(user) {
            return Membership::External(reason);
        }
        let guest = user
            .json("userType")
            .and_then(|v| v.as_str().map(|s| s.eq_ignore_ascii_case("Guest")))
            .unwrap_or(false);
        if guest {
            Membership::InternalGuest
        } else {
            Membership::InternalMember
        }
    }
}

/// Why a user is considered external.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExternalReason {
    CreatedByInvitation,
    HasExternalUserState,
    ExtUserPrincipalName,
    IdentityFromOtherIssuer,
    FailsFilterExternalUsers,
    /// The caller already knows (e.g. a request that states `isInternal: false`).
    Declared,
}

fn text<'a>(user: &SourceAttributes<'a>, name: &str) -> Option<String> {
    user.json(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty())
}

fn external_reason(user: &SourceAttributes<'_>) -> Option<ExternalReason> {
    if text(user, "creationType").is_some_and(|c| c.eq_ignore_ascii_case("Invitation")) {
        return Some(ExternalReason::CreatedByInvitation);
    }
    if text(user, "externalUserState").is_some() {
        return Some(ExternalReason::HasExternalUserState);
    }
    if text(user, "userPrincipalName").is_some_and(|u| u.to_ascii_uppercase().contains("#EXT#")) {
        return Some(ExternalReason::ExtUserPrincipalName);
    }
    if let Some(identities) = user.json("identities")
        && let Some(list) = identities.as_array()
        && list.iter().any(is_foreign_identity)
    {
        return Some(ExternalReason::IdentityFromOtherIssuer);
    }
    if let Some(alt) = user.json("alternativeSecurityIds") {
        let fine = match alt.as_ref() {
            serde_json::Value::Null => true,
            serde_json::Value::String(s) => s.is_empty() || s == "None",
            serde_json::Value::Array(items) => items.is_empty(),
            _ => false,
        };
        if !fine {
            return Some(ExternalReason::FailsFilterExternalUsers);
        }
    }
    None
}

fn is_foreign_identity(identity: &serde_json::Value) -> bool {
    let field = |k: &str| identity.get(k).and_then(|v| v.as_str()).unwrap_or("");
    field("signInType").eq_ignore_ascii_case("federated")
        || ["ExternalAzureAD", "MicrosoftAccount", "mail"]
            .iter()
            .any(|issuer| field("issuer").eq_ignore_ascii_case(issuer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify(v: serde_json::Value) -> Membership {
        let map = v.as_object().expect("object").clone();
        Membership::of(&SourceAttributes::new(&map))
    }

    #[test]
    fn internal_member_by_default() {
        assert_eq!(
            classify(
                json!({"userType": "Member", "userPrincipalName": "a@contoso.com",
                "identities": [{"signInType": "userPrincipalName", "issuer": "contoso.com"}]})
            ),
            Membership::InternalMember
        );
        assert_eq!(classify(json!({})), Membership::InternalMember);
        assert_eq!(
            classify(json!({"alternativeSecurityIds": "None"})),
            Membership::InternalMember
        );
    }

    #[test]
    fn guests_are_not_members() {
        assert_eq!(
            classify(json!({"userType": "guest"})),
            Membership::InternalGuest
        );
    }

    #[test]
    fn each_external_marker() {
        let cases = [
            (
                json!({"creationType": "Invitation", "userType": "Member"}),
                ExternalReason::CreatedByInvitation,
            ),
            (
                json!({"externalUserState": "Accepted"}),
                ExternalReason::HasExternalUserState,
            ),
            (
                json!({"userPrincipalName": "a_x.com#ext#@contoso.onmicrosoft.com"}),
                ExternalReason::ExtUserPrincipalName,
            ),
            (
                json!({"identities": [{"signInType": "federated", "issuer": "x"}]}),
                ExternalReason::IdentityFromOtherIssuer,
            ),
            (
                json!({"identities": [{"signInType": "userPrincipalName", "issuer": "ExternalAzureAD"}]}),
                ExternalReason::IdentityFromOtherIssuer,
            ),
            (
                json!({"alternativeSecurityIds": "SMS"}),
                ExternalReason::FailsFilterExternalUsers,
            ),
        ];
        for (user, reason) in cases {
            assert_eq!(classify(user), Membership::External(reason));
        }
    }
}
