//! `POST /invitations`: creates (or returns) the B2B user for an email address, honouring the
//! inviting tenant's guest-invite setting and the cross-tenant access settings between the
//! target and the tenant that owns the invited address's domain.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::build::{new_user, sync_proxy_addresses};
use super::call::{Call, Outcome, Reply};
use super::errors::GraphError;
use super::model::{ChangeKind, Directory, Obj, Tenant, new_id, str_prop};

pub const INVITE: &[&str] = &[
    "User.Invite.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];

const FORBIDDEN_CHARS: &str = "~!#$%^&*()+=[]{}\\/|;:\"<>?,";

fn invalid(name: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Invalid value specified for property '{name}' of resource 'Invitation'."
    ))
}

/// What the cross-tenant access settings say about an invitation from `source` into `target`.
#[derive(Debug, PartialEq)]
enum Consent {
    /// Both sides allow automatic redemption: the user needs no consent prompt.
    Automatic,
    Prompt,
    /// The target blocks B2B collaboration from the source tenant.
    Blocked,
}

fn partner_flag(t: &Tenant, partner: &str, path: &[&str]) -> Option<Value> {
    let mut cur = Value::Object(t.partners.get(partner)?.config.clone());
    for seg in path {
        cur = cur.get(*seg)?.clone();
    }
    Some(cur)
}

fn consent(dir: &Directory, target: &Tenant, email_domain: &str) -> Consent {
    let Some(source) = dir.tenants.values().find(|s| {
        s.id != target.id
            && s.domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(email_domain))
    }) else {
        return Consent::Prompt;
    };
    let blocked = partner_flag(
        target,
        &source.id,
        &["b2bCollaborationInbound", "usersAndGroups", "accessType"],
    )
    .is_some_and(|v| v == "blocked");
    if blocked {
        return Consent::Blocked;
    }
    // null means "inherit the default", which for automatic redemption is always false.
    let inbound = partner_flag(
        target,
        &source.id,
        &["automaticUserConsentSettings", "inboundAllowed"],
    ) == Some(json!(true));
    let outbound = partner_flag(
        source,
        &target.id,
        &["automaticUserConsentSettings", "outboundAllowed"],
    ) == Some(json!(true));
    if inbound && outbound {
        Consent::Automatic
    } else {
        Consent::Prompt
    }
}

/// Who already holds the invited address in the inviting tenant (index lookups, O(log n)).
/// An address on one of the tenant's own verified domains, or held by one of its internal
/// users (as UPN, mail, other mail or proxy address), is refused: Entra does not invite its
/// own users ("make sure the user's email domain isn't part of your resource tenant's verified
/// domain", customize-invitation-api.md). An external user holding it is returned (re-invite).
/// Soft-deleted users hold nothing: a re-invite after a delete creates a new user, and restoring
/// the old one then meets the UPN/proxy conflict.
fn existing_holder(t: &Tenant, email: &str, domain: &str) -> Result<Option<String>, GraphError> {
    if t.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "The invited user's email address is in a verified domain of this directory ({domain}); invite users of other organizations only."
            ),
        ));
    }
    let holders = t.index.address_holders(email);
    let external = |id: &String| {
        t.users
            .get(id)
            .is_some_and(|u| str_prop(u, "creationType") == Some("Invitation"))
    };
    if let Some(internal) = holders.iter().find(|id| !external(id)) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("The invited user already exists in the directory as object ID '{internal}'."),
        ));
    }
    // Prefer the B2B user whose mail is the address, then any external holder.
    let by_mail = holders.iter().find(|id| {
        t.users
            .get(*id)
            .and_then(|u| str_prop(u, "mail"))
            .is_some_and(|m| super::model::same_ignoring_case(m, email))
    });
    Ok(by_mail.or_else(|| holders.iter().next()).cloned())
}

pub fn invite(dir: &mut Directory, tenant_id: &str, call: &Call) -> Outcome {
    call.require(INVITE)?;
    let input = call.json_object()?;
    let email = input
        .get("invitedUserEmailAddress")
        .and_then(Value::as_str)
        .filter(|e| !e.chars().any(|c| FORBIDDEN_CHARS.contains(c)))
        .and_then(|e| {
            e.split_once('@')
                .filter(|(l, d)| !l.is_empty() && d.contains('.'))
                .map(|_| e.to_string())
        })
        .ok_or_else(|| invalid("invitedUserEmailAddress"))?;
    let redirect = input
        .get("inviteRedirectUrl")
        .and_then(Value::as_str)
        .filter(|u| url::Url::parse(u).is_ok())
        .ok_or_else(|| invalid("inviteRedirectUrl"))?
        .to_string();
    let user_type = match input.get("invitedUserType") {
        None | Some(Value::Null) => "Guest".to_string(),
        Some(Value::String(s)) if s == "Guest" || s == "Member" => s.clone(),
        Some(_) => return Err(invalid("invitedUserType")),
    };
    let send_message = match input.get("sendInvitationMessage") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("sendInvitationMessage")),
    };
    let display_name = match input.get("invitedUserDisplayName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("invitedUserDisplayName")),
    };
    for key in input.keys() {
        if !matches!(
            key.as_str(),
            "invitedUserEmailAddress"
                | "inviteRedirectUrl"
                | "invitedUserType"
                | "sendInvitationMessage"
                | "invitedUserDisplayName"
                | "invitedUserMessageInfo"
                | "resetRedemption"
                | "invitedUserSponsors"
        ) {
            return Err(GraphError::bad_request(format!(
                "Property '{key}' does not exist as a declared property or extension property."
            )));
        }
    }
    if let Some(info) = input.get("invitedUserMessageInfo") {
        super::shapes::check("invitedUserMessageInfo", info, "invitedUserMessageInfo")?;
    }
    let domain = email
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let Some(target) = dir.tenants.get(tenant_id) else {
        return Err(GraphError::forbidden());
    };
    if !target.guest_invites_allowed {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Guest invitations are not allowed for your company.",
        ));
    }
    let consent = consent(dir, target, &domain);
    if consent == Consent::Blocked {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "The invited user's tenant is blocked by the cross-tenant access settings.",
        ));
    }
    let Some(t) = dir.tenants.get_mut(tenant_id) else {
        return Err(GraphError::forbidden());
    };
    let existing = existing_holder(t, &email, &domain)?;
    let user_id = match existing {
        Some(id) => id,
        None => create_b2b_user(
            t,
            call,
            &email,
            &user_type,
            display_name.as_deref(),
            &consent,
        )?,
    };
    let state = t
        .users
        .get(&user_id)
        .and_then(|u| str_prop(u, "externalUserState"))
        .unwrap_or("PendingAcceptance")
        .to_string();
    let invitation_id = new_id();
    let redeem = format!(
        "https://login.microsoftonline.com/redeem?rd=https%3a%2f%2finvitations.microsoft.com%2fredeem%2f%3ftenant%3d{}%26user%3d{invitation_id}%26ver%3d2.0",
        t.id
    );
    let status = if state == "Accepted" {
        "Completed"
    } else {
        "PendingAcceptance"
    };
    let message_info = input
        .get("invitedUserMessageInfo")
        .cloned()
        .unwrap_or(json!({
            "messageLanguage": null, "customizedMessageBody": null, "ccRecipients": []
        }));
    Ok(Reply::created(json!({
        "@odata.context": call.context("invitations/$entity"),
        "id": invitation_id,
        "inviteRedeemUrl": redeem,
        "invitedUserDisplayName": display_name,
        "invitedUserType": user_type,
        "invitedUserEmailAddress": email,
        "sendInvitationMessage": send_message,
        "resetRedemption": input.get("resetRedemption").and_then(Value::as_bool).unwrap_or(false),
        "inviteRedirectUrl": redirect,
        "status": status,
        "invitedUserMessageInfo": message_info,
        "invitedUser": {"id": user_id},
    })))
}

fn create_b2b_user(
    t: &mut Tenant,
    call: &Call,
    email: &str,
    user_type: &str,
    display_name: Option<&str>,
    consent: &Consent,
) -> Result<String, GraphError> {
    let alias = email.replace('@', "_");
    let mut upn = format!("{alias}#EXT#@{}", t.initial_domain());
    // Graph keeps UPNs unique by appending digits to the alias.
    let mut n = 0;
    while t.value_taken("userPrincipalName", &upn, None) {
        n += 1;
        upn = format!("{alias}{n}#EXT#@{}", t.initial_domain());
    }
    let id = new_id();
    let mut u: Obj = new_user(&id, call.now);
    let accepted = *consent == Consent::Automatic;
    let name = display_name
        .map(str::to_string)
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_string());
    u.insert("displayName".into(), json!(name));
    u.insert("mail".into(), json!(email));
    u.insert("mailNickname".into(), json!(format!("{alias}#EXT#")));
    u.insert("otherMails".into(), json!([email]));
    u.insert("userPrincipalName".into(), json!(upn));
    u.insert("userType".into(), json!(user_type));
    u.insert("creationType".into(), json!("Invitation"));
    u.insert("showInAddressList".into(), json!(false));
    u.insert(
        "externalUserState".into(),
        json!(if accepted {
            "Accepted"
        } else {
            "PendingAcceptance"
        }),
    );
    u.insert(
        "externalUserStateChangeDateTime".into(),
        json!(super::clock::iso(call.now)),
    );
    let identity = if accepted {
        json!({"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": null})
    } else {
        json!({"signInType": "userPrincipalName", "issuer": t.initial_domain(), "issuerAssignedId": upn})
    };
    u.insert("identities".into(), json!([identity]));
    sync_proxy_addresses(&mut u);
    t.put_user(&id, u);
    t.change_log.record(call.now, &id, ChangeKind::Created);
    Ok(id)
}
