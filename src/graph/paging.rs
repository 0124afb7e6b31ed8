//! Collections (`@odata.nextLink`) and delta rounds (`@odata.deltaLink`, `@removed`).

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::client::GraphClient;
use super::error::GraphError;

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    value: Vec<serde_json::Value>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(default, rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

/// Why delta reports an object as removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedReason {
    /// `changed`: soft-deleted, restorable from `deletedItems` for 30 days.
    Changed,
    /// `deleted`: permanently deleted.
    Deleted,
}

/// One entry of a delta round.
#[derive(Debug, Clone, PartialEq)]
pub enum DeltaItem<T> {
    /// Created, updated or restored (only selected properties are tracked).
    Upsert(T),
    /// `{"id": ..., "@removed": {"reason": ...}}`.
    Removed { id: String, reason: RemovedReason },
}

/// A complete delta round: every page up to the `@odata.deltaLink`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaRound<T> {
    /// In the order Graph returned them; replays and repeats are possible (delta-query docs).
    pub items: Vec<DeltaItem<T>>,
    /// The watermark for the next round.
    pub delta_link: String,
    /// Pages fetched in this round.
    pub pages: usize,
}

/// One page of a delta round.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPage<T> {
    pub items: Vec<DeltaItem<T>>,
    /// Exactly one of `next_link`/`delta_link` is set on a well-formed page.
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

fn decode<T: DeserializeOwned>(url: &str, v: serde_json::Value) -> Result<T, GraphError> {
    serde_json::from_value(v).map_err(|e| GraphError::Decode {
        url: url.split('?').next().unwrap_or(url).to_owned(),
        message: e.to_string(),
    })
}

impl GraphClient {
    async fn raw_page(&self, url: &str, headers: &[(&str, &str)]) -> Result<RawPage, GraphError> {
        let resp = self.send(Method::GET, url, headers, None, 0).await?;
        resp.json(url)
    }

    /// Reads a whole collection, following `@odata.nextLink` verbatim and re-sending `headers`
    /// (e.g. `ConsistencyLevel`) on every page.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Vec<T>, GraphError> {
        let mut out = Vec::new();
        let mut next = Some(path_and_query.to_owned());
        while let Some(url) = next {
            let page = self.raw_page(&url, headers).await?;
            for v in page.value {
                out.push(decode(&url, v)?);
            }
            next = page.next_link;
        }
        Ok(out)
    }

    /// Fetches one delta page (the initial `.../delta?$select=...`, a nextLink or a deltaLink).
    /// An expired or unknown token is [`GraphError::DeltaResyncRequired`].
    pub async fn delta_page<T: DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<DeltaPage<T>, GraphError> {
        let page = self.raw_page(url, &[]).await?;
        let mut items = Vec::with_capacity(page.value.len());
        for v in page.value {
            if let Some(removed) = v.get("@removed") {
                let reason = match removed.get("reason").and_then(|r| r.as_str()) {
                    Some("deleted") => RemovedReason::Deleted,
                    // `changed` is the documented soft-delete reason; treat anything else the
                    // same way, since a soft delete can be undone and a hard one cannot.
                    _ => RemovedReason::Changed,
                };
                let id = v
                    .get("id")
                    .and_then(|i| i.as_str())
                    .ok_or_else(|| GraphError::Decode {
                        url: url.split('?').next().unwrap_or(url).to_owned(),
                        message: "@removed item without id".into(),
                    })?
                    .to_owned();
                items.push(DeltaItem::Removed { id, reason });
            } else {
                items.push(DeltaItem::Upsert(decode(url, v)?));
            }
        }
        Ok(DeltaPage {
            items,
            next_link: page.next_link,
            delta_link: page.delta_link,
        })
    }

    /// Runs a full delta round from `start` (an initial delta URL or a saved deltaLink) to the
    /// next deltaLink.
    pub async fn delta_round<T: DeserializeOwned>(
        &self,
        start: &str,
    ) -> Result<DeltaRound<T>, GraphError> {
        self.delta_round_with(start, &mut |_| {}).await
    }

    /// [`Self::delta_round`], calling `on_page` with the number of items read so far after
    /// each page (progress for a long read).
    pub async fn delta_round_with<T: DeserializeOwned>(
        &self,
        start: &str,
        on_page: &mut (dyn FnMut(usize) + Send),
    ) -> Result<DeltaRound<T>, GraphError> {
        let mut items = Vec::new();
        let mut url = start.to_owned();
        let mut pages = 0;
        loop {
            let page = self.delta_page::<T>(&url).await?;
            pages += 1;
            items.extend(page.items);
            on_page(items.len());
            match (page.next_link, page.delta_link) {
                (Some(next), _) => url = next,
                (None, Some(delta_link)) => {
                    return Ok(DeltaRound {
                        items,
                        delta_link,
                        pages,
                    });
                }
                (None, None) => {
                    return Err(GraphError::Decode {
                        url: url.split('?').next().unwrap_or(&url).to_owned(),
                        message: "delta page has neither @odata.nextLink nor @odata.deltaLink"
                            .into(),
                    });
                }
            }
        }
    }
}
