//! Typed calls for what sync does. Every read sends `$select`.

use reqwest::Method;
use serde_json::json;

use super::client::{GraphClient, with_query};
use super::error::GraphError;
use super::paging::DeltaRound;
use super::resources::*;

fn user_select(extra: &[&str]) -> String {
    let mut all: Vec<&str> = USER_SELECT.to_vec();
    all.extend(extra.iter().filter(|e| !USER_SELECT.contains(e)));
    all.join(",")
}

/// An id or UPN as one path segment: like a query value, but `/` must not split the path.
pub(crate) fn segment(id: &str) -> String {
    super::client::encode_query_value(id).replace('/', "%2F")
}

impl GraphClient {
    /// `GET /users` with `$select` of [`USER_SELECT`] plus `extra_select` (e.g. extension names),
    /// an optional `$filter`, `$top=999`, all pages.
    pub async fn list_users(
        &self,
        filter: Option<&str>,
        extra_select: &[&str],
    ) -> Result<Vec<User>, GraphError> {
        let select = user_select(extra_select);
        let mut params = vec![("$select", select.as_str()), ("$top", "999")];
        if let Some(f) = filter {
            params.push(("$filter", f));
        }
        self.list_all(&with_query("users", &params), &[]).await
    }

    /// `GET /users/{id}`; `Ok(None)` on 404.
    pub async fn get_user(
        &self,
        id: &str,
        extra_select: &[&str],
    ) -> Result<Option<User>, GraphError> {
        let select = user_select(extra_select);
        let url = with_query(&format!("users/{}", segment(id)), &[("$select", &select)]);
        match self.send_json(Method::GET, &url, None).await {
            Ok(u) => Ok(Some(u)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The initial `GET /users/delta` URL with `$select` (tokens carry it from then on).
    pub fn users_delta_start(&self, extra_select: &[&str]) -> String {
        with_query(
            "users/delta",
            &[("$select", &format!("{},manager", user_select(extra_select)))],
        )
    }

    /// A full users delta round from the initial URL or a saved deltaLink.
    pub async fn users_delta(&self, start_or_link: &str) -> Result<DeltaRound<User>, GraphError> {
        self.delta_round(start_or_link).await
    }

    /// [`Self::users_delta`], calling `on_page` with the users read so far after each page.
    pub async fn users_delta_with(
        &self,
        start_or_link: &str,
        on_page: &mut (dyn FnMut(usize) + Send),
    ) -> Result<DeltaRound<User>, GraphError> {
        self.delta_round_with(start_or_link, on_page).await
    }

    /// `POST /invitations`.
    pub async fn invite(&self, invitation: &NewInvitation) -> Result<Invitation, GraphError> {
        let body = serde_json::to_value(invitation)
            .map_err(|e| GraphError::InvalidRequest(e.to_string()))?;
        self.send_json(Method::POST, "invitations", Some(&body))
            .await
    }

    /// `PATCH /{collection}/{id}` with only the given properties (204).
    async fn patch_object(
        &self,
        collection: &str,
        id: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), GraphError> {
        let body = serde_json::Value::Object(changes.clone());
        self.send(
            Method::PATCH,
            &format!("{collection}/{}", segment(id)),
            &[],
            Some(&body),
            1,
        )
        .await
        .map(|_| ())
    }

    /// `DELETE /{collection}/{id}`: soft delete, restorable for 30 days.
    async fn delete_object(&self, collection: &str, id: &str) -> Result<(), GraphError> {
        self.send(
            Method::DELETE,
            &format!("{collection}/{}", segment(id)),
            &[],
            None,
            1,
        )
        .await
        .map(|_| ())
    }

    /// `PATCH /users/{id}` with only the given properties (204).
    pub async fn update_user(
        &self,
        id: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), GraphError> {
        self.patch_object("users", id, changes).await
    }

    /// `DELETE /users/{id}`: soft delete, restorable for 30 days.
    pub async fn delete_user(&self, id: &str) -> Result<(), GraphError> {
        self.delete_object("users", id).await
    }

    /// `PUT /users/{id}/manager/$ref`.
    pub async fn set_manager(&self, id: &str, manager_id: &str) -> Result<(), GraphError> {
        let body = json!({
            "@odata.id": format!("{}/users/{}", self.api_root(), segment(manager_id))
        });
        self.send(
            Method::PUT,
            &format!("users/{}/manager/$ref", segment(id)),
            &[],
            Some(&body),
            1,
        )
        .await
        .map(|_| ())
    }

    /// `DELETE /users/{id}/manager/$ref`; a user without a manager (404) is not an error.
    pub async fn remove_manager(&self, id: &str) -> Result<(), GraphError> {
        match self
            .send(
                Method::DELETE,
                &format!("users/{}/manager/$ref", segment(id)),
                &[],
                None,
                1,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Members of a group (`transitive` = `transitiveMembers`), ids and types only.
    pub async fn group_members(
        &self,
        group_id: &str,
        transitive: bool,
    ) -> Result<Vec<DirectoryObjectRef>, GraphError> {
        let rel = if transitive {
            "transitiveMembers"
        } else {
            "members"
        };
        let url = with_query(
            &format!("groups/{}/{rel}", segment(group_id)),
            &[("$select", "id")],
        );
        self.list_all(&url, &[]).await
    }

    /// `GET /users/{id}/directReports`, ids and types only.
    pub async fn direct_reports(
        &self,
        user_id: &str,
    ) -> Result<Vec<DirectoryObjectRef>, GraphError> {
        let url = with_query(
            &format!("users/{}/directReports", segment(user_id)),
            &[("$select", "id")],
        );
        self.list_all(&url, &[]).await
    }

    /// `GET /servicePrincipals/{id}/appRoleAssignedTo` (assignment scope).
    pub async fn app_role_assigned_to(
        &self,
        service_principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        let url = with_query(
            &format!(
                "servicePrincipals/{}/appRoleAssignedTo",
                segment(service_principal_id)
            ),
            &[("$select", APP_ROLE_ASSIGNMENT_SELECT), ("$top", "999")],
        );
        self.list_all(&url, &[]).await
    }

    /// Soft-deleted users (`GET /directory/deletedItems/microsoft.graph.user`).
    pub async fn deleted_users(
        &self,
        filter: Option<&str>,
        extra_select: &[&str],
    ) -> Result<Vec<User>, GraphError> {
        let select = format!("{},deletedDateTime", user_select(extra_select));
        let mut params = vec![("$select", select.as_str()), ("$top", "999")];
        if let Some(f) = filter {
            params.push(("$filter", f));
        }
        self.list_all(
            &with_query("directory/deletedItems/microsoft.graph.user", &params),
            &[],
        )
        .await
    }

    /// `POST /directory/deletedItems/{id}/restore`: same object id.
    pub async fn restore_deleted(&self, id: &str) -> Result<RestoredObject, GraphError> {
        self.send_json(
            Method::POST,
            &format!("directory/deletedItems/{}/restore", segment(id)),
            None,
        )
        .await
    }

    /// `GET /policies/crossTenantAccessPolicy/partners/{tenantId}`; `Ok(None)` when there is
    /// no partner configuration for that tenant.
    pub async fn cross_tenant_partner(
        &self,
        partner_tenant_id: &str,
    ) -> Result<Option<CrossTenantAccessPolicyPartner>, GraphError> {
        let url = with_query(
            &format!(
                "policies/crossTenantAccessPolicy/partners/{}",
                segment(partner_tenant_id)
            ),
            &[("$select", PARTNER_SELECT)],
        );
        match self.send_json(Method::GET, &url, None).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET .../partners/{sourceTenantId}/identitySynchronization`; `Ok(None)` when absent.
    pub async fn identity_synchronization(
        &self,
        source_tenant_id: &str,
    ) -> Result<Option<IdentitySyncPolicyPartner>, GraphError> {
        let path = identity_sync_path(source_tenant_id);
        self.get_identity_synchronization(&with_query(&path, &[("$select", IDENTITY_SYNC_SELECT)]))
            .await
    }

    /// One `identitySynchronization` read; a missing object (404) is `None`.
    async fn get_identity_synchronization(
        &self,
        url: &str,
    ) -> Result<Option<IdentitySyncPolicyPartner>, GraphError> {
        match self.send_json(Method::GET, url, None).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /applications/{objectId}/extensionProperties`.
    pub async fn extension_properties(
        &self,
        application_object_id: &str,
    ) -> Result<Vec<ExtensionProperty>, GraphError> {
        let url = with_query(
            &format!(
                "applications/{}/extensionProperties",
                segment(application_object_id)
            ),
            &[("$select", EXTENSION_PROPERTY_SELECT)],
        );
        self.list_all(&url, &[]).await
    }

    /// `POST /applications/{objectId}/extensionProperties` (name = the short name).
    pub async fn create_extension_property(
        &self,
        application_object_id: &str,
        property: &ExtensionProperty,
    ) -> Result<ExtensionProperty, GraphError> {
        let body = serde_json::to_value(property)
            .map_err(|e| GraphError::InvalidRequest(e.to_string()))?;
        self.send_json(
            Method::POST,
            &format!(
                "applications/{}/extensionProperties",
                segment(application_object_id)
            ),
            Some(&body),
        )
        .await
    }
}

/// The partner's identity-sync policy, relative to the API root.
fn identity_sync_path(source_tenant_id: &str) -> String {
    format!(
        "policies/crossTenantAccessPolicy/partners/{}/identitySynchronization",
        segment(source_tenant_id)
    )
}

/// Graph's text for a member that is already there (400): a replayed add, treated as done.
pub(super) fn is_already_member(e: &GraphError) -> bool {
    e.status() == Some(400) && e.to_string().contains("already exist")
}

/// Graph binds at most 20 members per request (`members@odata.bind`).
pub const MEMBER_BINDS_PER_REQUEST: usize = 20;

impl GraphClient {
    fn group_select(extra: &[&str]) -> String {
        let mut all: Vec<&str> = GROUP_SELECT.split(',').collect();
        all.extend(
            extra
                .iter()
                .filter(|e| !all.contains(e))
                .collect::<Vec<_>>(),
        );
        all.join(",")
    }

    pub(super) fn directory_object_url(&self, id: &str) -> String {
        format!("{}/directoryObjects/{}", self.api_root(), segment(id))
    }

    /// `GET /beta/.../identitySynchronization` with `groupSyncInbound`: Graph has that property
    /// on beta only (v1.0 refuses it in `$select` and leaves it out of the object).
    pub async fn identity_synchronization_with_groups(
        &self,
        source_tenant_id: &str,
    ) -> Result<Option<IdentitySyncPolicyPartner>, GraphError> {
        let url = with_query(
            &self.beta_url(&identity_sync_path(source_tenant_id)),
            &[("$select", IDENTITY_SYNC_GROUPS_SELECT)],
        );
        self.get_identity_synchronization(&url).await
    }

    /// The initial `GET /groups/delta` URL: group properties, `extra_select`, and `members`.
    pub fn groups_delta_start(&self, extra_select: &[&str]) -> String {
        with_query(
            "groups/delta",
            &[(
                "$select",
                &format!("{},members", Self::group_select(extra_select)),
            )],
        )
    }

    /// A full groups delta round. Items of one group may repeat (big groups spread
    /// `members@delta` over several items): merge by id.
    pub async fn groups_delta(&self, start_or_link: &str) -> Result<DeltaRound<Group>, GraphError> {
        self.delta_round(start_or_link).await
    }

    /// `GET /groups/{id}`; `Ok(None)` on 404.
    pub async fn get_group(
        &self,
        id: &str,
        extra_select: &[&str],
    ) -> Result<Option<Group>, GraphError> {
        let url = with_query(
            &format!("groups/{}", segment(id)),
            &[("$select", &Self::group_select(extra_select))],
        );
        match self.send_json(Method::GET, &url, None).await {
            Ok(g) => Ok(Some(g)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /groups` with an optional `$filter`, all pages.
    pub async fn list_groups(
        &self,
        filter: Option<&str>,
        extra_select: &[&str],
    ) -> Result<Vec<Group>, GraphError> {
        let select = Self::group_select(extra_select);
        let mut params = vec![("$select", select.as_str()), ("$top", "999")];
        if let Some(f) = filter {
            params.push(("$filter", f));
        }
        self.list_all(&with_query("groups", &params), &[]).await
    }

    /// `POST /groups`: a static, non-mail-enabled security group with `properties` (mapped
    /// attributes and the anchor) and up to 20 first members.
    pub async fn create_security_group(
        &self,
        properties: &serde_json::Map<String, serde_json::Value>,
        first_members: &[String],
    ) -> Result<Group, GraphError> {
        if first_members.len() > MEMBER_BINDS_PER_REQUEST {
            return Err(GraphError::InvalidRequest(format!(
                "at most {MEMBER_BINDS_PER_REQUEST} members can be bound when creating a group"
            )));
        }
        let mut body = properties.clone();
        body.insert("mailEnabled".into(), json!(false));
        body.insert("securityEnabled".into(), json!(true));
        body.insert("groupTypes".into(), json!([]));
        if !first_members.is_empty() {
            let binds: Vec<String> = first_members
                .iter()
                .map(|m| self.directory_object_url(m))
                .collect();
            body.insert("members@odata.bind".into(), json!(binds));
        }
        self.send_json(
            Method::POST,
            "groups",
            Some(&serde_json::Value::Object(body)),
        )
        .await
    }

    /// `PATCH /groups/{id}` with only the given properties (204).
    pub async fn update_group(
        &self,
        id: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), GraphError> {
        self.patch_object("groups", id, changes).await
    }

    /// `POST /groups/{id}/members/$ref`; a member already there is not an error.
    pub async fn add_group_member(
        &self,
        group_id: &str,
        member_id: &str,
    ) -> Result<(), GraphError> {
        let body = json!({"@odata.id": self.directory_object_url(member_id)});
        match self
            .send(
                Method::POST,
                &format!("groups/{}/members/$ref", segment(group_id)),
                &[],
                Some(&body),
                1,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_already_member(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /groups/{id}/members/{memberId}/$ref` (never without `$ref`, which would delete
    /// the member object); a member already gone is not an error.
    pub async fn remove_group_member(
        &self,
        group_id: &str,
        member_id: &str,
    ) -> Result<(), GraphError> {
        match self
            .send(
                Method::DELETE,
                &format!(
                    "groups/{}/members/{}/$ref",
                    segment(group_id),
                    segment(member_id)
                ),
                &[],
                None,
                1,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /groups/{id}`: soft delete, restorable for 30 days.
    pub async fn delete_group(&self, id: &str) -> Result<(), GraphError> {
        self.delete_object("groups", id).await
    }

    /// Soft-deleted groups (`GET /directory/deletedItems/microsoft.graph.group`).
    pub async fn deleted_groups(
        &self,
        filter: Option<&str>,
        extra_select: &[&str],
    ) -> Result<Vec<Group>, GraphError> {
        let select = format!("{},deletedDateTime", Self::group_select(extra_select));
        let mut params = vec![("$select", select.as_str()), ("$top", "999")];
        if let Some(f) = filter {
            params.push(("$filter", f));
        }
        self.list_all(
            &with_query("directory/deletedItems/microsoft.graph.group", &params),
            &[],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_cannot_escape_their_place() {
        assert_eq!(super::segment("a/../b"), "a%2F..%2Fb");
        assert_eq!(
            super::segment("alias_contoso.com#EXT#@fabrikam.com"),
            "alias_contoso.com%23EXT%23@fabrikam.com"
        );
    }
}
