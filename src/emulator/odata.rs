//! OData system query options as the directory endpoints accept them, and opaque page tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::errors::GraphError;
use super::filter::{self, Expr};

/// Parsed query options of one request. Options not given are `None`.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub select: Option<Vec<String>>,
    pub filter: Option<Expr>,
    pub filter_text: Option<String>,
    pub top: Option<usize>,
    pub count: bool,
    pub skiptoken: Option<String>,
    pub deltatoken: Option<String>,
    pub orderby: Option<(String, bool)>,
    /// Non-system (`name=value` without `$`) parameters, kept to rebuild nextLinks.
    pub raw: Vec<(String, String)>,
}

const MAX_TOP: usize = 999;

impl Query {
    pub fn parse(raw_query: Option<&str>) -> Result<Query, GraphError> {
        let mut q = Query::default();
        let Some(raw_query) = raw_query else {
            return Ok(q);
        };
        let mut seen = std::collections::BTreeSet::new();
        for (key, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
            let key = key.to_string();
            let value = value.to_string();
            let name = key.to_ascii_lowercase();
            // OData accepts system options with or without `$` (Graph v1.0 "dollar-less" options).
            let name = name.strip_prefix('$').unwrap_or(&name).to_string();
            let system = key.starts_with('$')
                || matches!(
                    name.as_str(),
                    "select" | "filter" | "top" | "count" | "orderby"
                );
            q.raw.push((key.clone(), value.clone()));
            if !system {
                continue;
            }
            if !seen.insert(name.clone()) {
                return Err(GraphError::bad_request(format!(
                    "Query option '${name}' was specified more than once, but it must be specified at most once."
                )));
            }
            match name.as_str() {
                "select" => {
                    let props: Vec<String> = value
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if props.is_empty() {
                        return Err(GraphError::bad_request(
                            "Invalid $select: the list is empty.",
                        ));
                    }
                    q.select = Some(props);
                }
                "filter" => {
                    q.filter = Some(filter::parse(&value)?);
                    q.filter_text = Some(value);
                }
                "top" => {
                    let n: usize = value.trim().parse().map_err(|_| invalid_top(&value))?;
                    if n == 0 || n > MAX_TOP {
                        return Err(invalid_top(&value));
                    }
                    q.top = Some(n);
                }
                "count" => match value.trim() {
                    "true" => q.count = true,
                    "false" => q.count = false,
                    _ => {
                        return Err(GraphError::bad_request(format!(
                            "Invalid value '{value}' for $count: expected true or false."
                        )));
                    }
                },
                "skiptoken" => q.skiptoken = Some(value),
                "deltatoken" => q.deltatoken = Some(value),
                "orderby" => {
                    let mut parts = value.split_whitespace();
                    let prop = parts.next().unwrap_or_default().to_string();
                    let desc = match parts.next().map(str::to_ascii_lowercase).as_deref() {
                        None | Some("asc") => false,
                        Some("desc") => true,
                        Some(other) => {
                            return Err(GraphError::bad_request(format!(
                                "Invalid $orderby direction '{other}'."
                            )));
                        }
                    };
                    if prop.is_empty() || parts.next().is_some() || value.contains(',') {
                        return Err(GraphError::unsupported_query());
                    }
                    q.orderby = Some((prop, desc));
                }
                "skip" => {
                    return Err(GraphError::bad_request(
                        "'$skip' is not supported by the service.",
                    ));
                }
                "search" | "expand" | "apply" | "compute" | "levels" | "format" => {
                    return Err(GraphError::unsupported_query());
                }
                _ => {
                    return Err(GraphError::bad_request(format!(
                        "Unrecognized query argument specified: '{key}'."
                    )));
                }
            }
        }
        Ok(q)
    }

    /// Query string for a nextLink: every original option except paging ones, plus `$skiptoken`.
    pub fn next_link_query(&self, skiptoken: &str) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut parts: Vec<String> = self
            .raw
            .iter()
            .filter(|(k, _)| {
                let lower = k.to_ascii_lowercase();
                lower != "$skiptoken" && lower != "$deltatoken"
            })
            .map(|(k, v)| format!("{}={}", enc(k).replace("%24", "$"), enc(v)))
            .collect();
        parts.push(format!("$skiptoken={}", enc(skiptoken)));
        parts.join("&")
    }
}

fn invalid_top(value: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Invalid page size specified: '{value}'. Must be between 1 and {MAX_TOP} inclusive."
    ))
}

/// Encodes a page/delta position as an opaque URL-safe token.
pub fn encode_token<T: Serialize>(value: &T) -> String {
    // Serializing plain structs of strings and numbers cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a token made by [`encode_token`]; `None` when it is not one of ours.
pub fn decode_token<T: DeserializeOwned>(token: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_select_top_count() {
        let q = Query::parse(Some("$select=id,displayName&$top=5&$count=true")).expect("parses");
        assert_eq!(
            q.select,
            Some(vec!["id".to_string(), "displayName".to_string()])
        );
        assert_eq!(q.top, Some(5));
        assert!(q.count);
    }

    #[test]
    fn rejects_bad_options() {
        for bad in [
            "$top=0",
            "$top=1000",
            "$top=x",
            "$skip=3",
            "$bogus=1",
            "$top=1&$top=2",
            "$count=maybe",
            "$select=",
        ] {
            let err = Query::parse(Some(bad)).expect_err(bad);
            assert_eq!(err.status.as_u16(), 400, "{bad}");
        }
    }

    #[test]
    fn next_link_keeps_options_and_replaces_skiptoken() {
        let q = Query::parse(Some("$select=id&$skiptoken=old&foo=bar")).expect("parses");
        let next = q.next_link_query("new");
        assert!(next.contains("$select=id"));
        assert!(next.contains("foo=bar"));
        assert!(next.ends_with("$skiptoken=new"));
        assert!(!next.contains("old"));
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = encode_token(&(5u64, "x".to_string()));
        assert_eq!(
            decode_token::<(u64, String)>(&t),
            Some((5, "x".to_string()))
        );
        assert_eq!(decode_token::<(u64, String)>("%%%"), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(raw in ".{0,120}") {
            let _ = Query::parse(Some(&raw));
        }

        #[test]
        fn parse_never_panics_on_option_like_input(
            key in "\\$(select|filter|top|count|orderby|skiptoken|deltatoken|expand|x)",
            value in "[ -~]{0,40}",
        ) {
            let _ = Query::parse(Some(&format!("{key}={value}")));
        }
    }
}
