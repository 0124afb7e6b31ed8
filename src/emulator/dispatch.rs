//! Maps a Graph path and method to its handler. Unknown paths get Graph's 400/404 shapes,
//! known paths with the wrong method get 405.

use axum::http::Method;

use super::call::{Call, Outcome};
use super::errors::GraphError;
use super::model::Directory;
use super::{
    applications, deleted_groups, deleted_items, delta, group_delta, groups, invitations, policy,
    service_principals, users,
};

pub fn dispatch(dir: &mut Directory, tenant_id: &str, call: &Call) -> Outcome {
    let segs: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    if let ["invitations"] = segs.as_slice() {
        return match call.method {
            Method::POST => invitations::invite(dir, tenant_id, call),
            _ => Err(GraphError::method_not_allowed()),
        };
    }
    let t = dir
        .tenants
        .get_mut(tenant_id)
        .ok_or_else(GraphError::forbidden)?;
    let m = &call.method;
    let not_allowed = || Err(GraphError::method_not_allowed());
    // `servicePrincipals(appId='...')` and `applications(appId='...')` are key segments.
    let (head, keyed) = match segs.first() {
        Some(s) if s.starts_with("servicePrincipals(") => {
            ("servicePrincipals", Some(&s["servicePrincipals".len()..]))
        }
        Some(s) if s.starts_with("applications(") => {
            ("applications", Some(&s["applications".len()..]))
        }
        Some(s) => (*s, None),
        None => return Err(GraphError::unknown_segment("")),
    };
    let mut rest: Vec<&str> = segs[1..].to_vec();
    if let Some(k) = keyed {
        rest.insert(0, k);
    }
    match (head, rest.as_slice()) {
        ("users", []) => match *m {
            Method::GET => users::list(t, call),
            Method::POST => users::create(t, call),
            _ => not_allowed(),
        },
        ("users", ["$count"]) => match *m {
            Method::GET => users::count(t, call),
            _ => not_allowed(),
        },
        ("users", ["delta" | "delta()" | "microsoft.graph.delta" | "microsoft.graph.delta()"]) => {
            match *m {
                Method::GET => delta::delta(t, call),
                _ => not_allowed(),
            }
        }
        ("users", [id]) => match *m {
            Method::GET => users::get(t, call, id),
            Method::PATCH => users::update(t, call, id),
            Method::DELETE => users::delete(t, call, id),
            _ => not_allowed(),
        },
        ("users", [id, "manager"]) => match *m {
            Method::GET => users::get_manager(t, call, id),
            _ => not_allowed(),
        },
        ("users", [id, "directReports"]) => match *m {
            Method::GET => users::direct_reports(t, call, id),
            _ => not_allowed(),
        },
        ("users", [id, "manager", "$ref"]) => match *m {
            Method::PUT => users::set_manager(t, call, id),
            Method::DELETE => users::remove_manager(t, call, id),
            _ => not_allowed(),
        },
        ("groups", []) => match *m {
            Method::GET => groups::list(t, call),
            Method::POST => groups::create(t, call),
            _ => not_allowed(),
        },
        ("groups", ["delta" | "delta()" | "microsoft.graph.delta" | "microsoft.graph.delta()"]) => {
            match *m {
                Method::GET => group_delta::delta(t, call),
                _ => not_allowed(),
            }
        }
        ("groups", [id]) => match *m {
            Method::GET => groups::get(t, call, id),
            Method::PATCH => groups::update(t, call, id),
            Method::DELETE => groups::delete(t, call, id),
            _ => not_allowed(),
        },
        ("groups", [id, "members"]) => match *m {
            Method::GET => groups::members(t, call, id, false),
            _ => not_allowed(),
        },
        ("groups", [id, "transitiveMembers"]) => match *m {
            Method::GET => groups::members(t, call, id, true),
            _ => not_allowed(),
        },
        ("groups", [id, "members", "$ref"]) => match *m {
            Method::POST => groups::add_member(t, call, id),
            _ => not_allowed(),
        },
        ("groups", [id, "members", member, "$ref"]) => match *m {
            Method::DELETE => groups::remove_member(t, call, id, member),
            _ => not_allowed(),
        },
        ("servicePrincipals", []) => match *m {
            Method::GET => service_principals::list(t, call),
            _ => not_allowed(),
        },
        ("servicePrincipals", [id]) => match *m {
            Method::GET => service_principals::get(t, call, id),
            _ => not_allowed(),
        },
        ("servicePrincipals", [id, "appRoleAssignedTo"]) => match *m {
            Method::GET => service_principals::assigned_to(t, call, id),
            Method::POST => service_principals::assign(t, call, id),
            _ => not_allowed(),
        },
        ("servicePrincipals", [id, "appRoleAssignedTo", a]) => match *m {
            Method::DELETE => service_principals::unassign(t, call, id, a),
            _ => not_allowed(),
        },
        ("applications", []) => match *m {
            Method::GET => applications::list(t, call),
            _ => not_allowed(),
        },
        ("applications", [id]) => match *m {
            Method::GET => applications::get(t, call, id),
            _ => not_allowed(),
        },
        ("applications", [id, "extensionProperties"]) => match *m {
            Method::GET => applications::list_extensions(t, call, id),
            Method::POST => applications::create_extension(t, call, id),
            _ => not_allowed(),
        },
        ("applications", [id, "extensionProperties", e]) => match *m {
            Method::DELETE => applications::delete_extension(t, call, id, e),
            _ => not_allowed(),
        },
        ("directory", ["deletedItems", "microsoft.graph.user"]) => match *m {
            Method::GET => deleted_items::list_users(t, call),
            _ => not_allowed(),
        },
        ("directory", ["deletedItems", "microsoft.graph.group"]) => match *m {
            Method::GET => deleted_groups::list(t, call),
            _ => not_allowed(),
        },
        ("directory", ["deletedItems"]) => Err(GraphError::bad_request(
            "Unsupported request: the type cast is required, e.g. /directory/deletedItems/microsoft.graph.user.",
        )),
        ("directory", ["deletedItems", id]) => match *m {
            Method::GET => deleted_items::get(t, call, id),
            Method::DELETE => deleted_items::hard_delete(t, call, id),
            _ => not_allowed(),
        },
        ("directory", ["deletedItems", id, "restore" | "microsoft.graph.restore"]) => match *m {
            Method::POST => deleted_items::restore(t, call, id),
            _ => not_allowed(),
        },
        ("policies", ["crossTenantAccessPolicy", "partners"]) => match *m {
            Method::GET => policy::list(t, call),
            Method::POST => policy::create(t, call),
            _ => not_allowed(),
        },
        ("policies", ["crossTenantAccessPolicy", "partners", p]) => match *m {
            Method::GET => policy::get(t, call, p),
            Method::PATCH => policy::update(t, call, p),
            Method::DELETE => policy::delete(t, call, p),
            _ => not_allowed(),
        },
        (
            "policies",
            [
                "crossTenantAccessPolicy",
                "partners",
                p,
                "identitySynchronization",
            ],
        ) => match *m {
            Method::GET => policy::get_sync(t, call, p),
            Method::PUT => policy::put_sync(t, call, p),
            Method::PATCH => policy::patch_sync(t, call, p),
            Method::DELETE => policy::delete_sync(t, call, p),
            _ => not_allowed(),
        },
        (head, rest) => {
            let known = [
                "users",
                "groups",
                "servicePrincipals",
                "applications",
                "directory",
                "policies",
            ];
            let segment = if known.contains(&head) {
                rest.last().copied().unwrap_or(head)
            } else {
                head
            };
            Err(GraphError::unknown_segment(segment))
        }
    }
}
