//! CTS's default user mappings, used when a pair configures none.
//!
//! Microsoft publishes no complete list (reference §3.2); design.md fixes ours: `userType` constant
//! `Member` applied on create only (CTS: an existing B2B guest stays a guest unless the mapping is
//! set to Always), `showInAddressList` constant `true`, and same-name direct mappings for the
//! profile, address and manager attributes. CTS's internal matching attribute
//! (`AltSecIdFromNetId([netId])` → `alternativeSecurityIds`) has no Graph equivalent: ctsync ties
//! users by its own anchor instead, so the default set has no matching attribute.

use super::{Apply, AttributeMappingSpec};

/// Same-name direct mappings in the default set, in Entra's portal order where known.
const DIRECT: &[&str] = &[
    "accountEnabled",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "mailNickname",
    "department",
    "jobTitle",
    "companyName",
    "employeeId",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
    "preferredLanguage",
    "manager",
];

/// The default mapping set as specs (what `ctsync validate` shows and a pair may start from).
pub fn default_mappings() -> Vec<AttributeMappingSpec> {
    let mut specs = vec![
        AttributeMappingSpec {
            apply: Apply::OnCreate,
            ..AttributeMappingSpec::constant("userType", "Member")
        },
        AttributeMappingSpec::constant("showInAddressList", "true"),
    ];
    specs.extend(DIRECT.iter().map(|a| AttributeMappingSpec::direct(a, a)));
    specs
}
