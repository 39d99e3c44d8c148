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
