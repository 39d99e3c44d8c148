//! Typed reads the engine needs beyond the client's own.
use futures::StreamExt;

use super::model::{Group, GROUP_SELECT};
use super::{GraphClient, GraphError};

impl GraphClient {
    /// The groups with this mailNickname (`GET /groups?$filter=mailNickname eq '...'`): how
    /// a group create whose answer was lost is found again. Permission: Group.Read.All.
    pub async fn find_groups_by_nickname(&self, nickname: &str) -> Result<Vec<Group>, GraphError> {
        let quoted = format!("'{}'", nickname.replace('\'', "''"));
        let filter: String =
            url::form_urlencoded::byte_serialize(format!("mailNickname eq {quoted}").as_bytes())
                .collect();
        let mut out = Vec::new();
        let mut pages = self.pages::<Group>(format!(
            "{}/{}?$filter={}&$select={}",
            self.base(),
            super::paths::GROUPS.trim_start_matches('/'),
            filter.replace('+', "%20"),
            GROUP_SELECT.join(",")
        ));
        while let Some(p) = pages.next().await {
            out.extend(p?);
        }
        Ok(out)
    }
}

impl GraphClient {
    /// `GET` of one URL per id, 20 to a `$batch`: each id with its answer's body, None for a
    /// 404 (the object or its relationship is not there); any other failure stops.
    pub(super) async fn get_each(
        &self,
        ids: &[String],
        url: impl Fn(&str) -> String,
    ) -> Result<Vec<(String, Option<serde_json::Value>)>, GraphError> {
        use super::batch::{self, BatchRequest};
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(batch::MAX_BATCH) {
            let requests: Vec<BatchRequest> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    BatchRequest::new((i + 1).to_string(), reqwest::Method::GET, url(id))
                })
                .collect();
            let answers = batch::execute(self, &requests, &self.retry).await?;
            for (id, answer) in chunk.iter().zip(answers) {
                let body = match answer {
                    Ok(item) => Some(item.body),
                    Err(e) if e.status() == Some(404) => None,
                    Err(e) => return Err(e),
                };
                out.push((id.clone(), body));
            }
        }
        Ok(out)
    }

    /// The manager of each of `users` (object ids): `GET /users/{id}/manager?$select=id`, 20
    /// to a `$batch`; None when a user has none (404). Permission: User.Read.All.
    pub async fn managers(
        &self,
        users: &[String],
    ) -> Result<std::collections::HashMap<String, Option<String>>, GraphError> {
        Ok(self
            .get_each(users, |id| {
                format!("{}?$select=id", super::paths::manager(id))
            })
            .await?
            .into_iter()
            .map(|(id, body)| {
                let m = body
                    .as_ref()
                    .and_then(|b| b.get("id"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                (id, m)
            })
            .collect())
    }

    /// The manager of one user (None when it has none).
    pub async fn manager_of(&self, user: &str) -> Result<Option<String>, GraphError> {
        match self
            .get(&format!("{}?$select=id", super::paths::manager(user)))
            .await
        {
            Ok(r) => Ok(r
                .json::<serde_json::Value>()?
                .get("id")
                .and_then(|v| v.as_str())
                .map(str::to_string)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
