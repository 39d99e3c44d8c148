//! Typed reads the engine uses beyond the user listing (interim: merged with the typed
//! helpers of `graph::requests` when they land).
use futures::StreamExt;

use super::model::{DeletedUser, DirectoryObject, Group, User, GROUP_SELECT, USER_SELECT};
use super::{GraphClient, GraphError};

fn quote(v: &str) -> String {
    url::form_urlencoded::byte_serialize(format!("'{}'", v.replace('\'', "''")).as_bytes())
        .collect()
}

impl GraphClient {
    /// The ids of the members of a group (`GET /groups/{id}/members?$select=id`, paged).
    pub async fn list_group_members(&self, group_id: &str) -> Result<Vec<String>, GraphError> {
        let mut out = Vec::new();
        let mut pages = self.pages::<DirectoryObject>(format!(
            "{}/groups/{}/members?$select=id&$top=999",
            self.base(),
            crate::sync::ops::seg(group_id)
        ));
        while let Some(p) = pages.next().await {
            out.extend(p?.into_iter().map(|o| o.id));
        }
        Ok(out)
    }

    /// The groups with this mailNickname (`$filter=mailNickname eq '...'`).
    pub async fn find_groups_by_nickname(&self, nickname: &str) -> Result<Vec<Group>, GraphError> {
        let mut out = Vec::new();
        let mut pages = self.pages::<Group>(format!(
            "{}/groups?$filter=mailNickname%20eq%20{}&$select={}",
            self.base(),
            quote(nickname),
            GROUP_SELECT.join(",")
        ));
        while let Some(p) = pages.next().await {
            out.extend(p?);
        }
        Ok(out)
    }

    /// Every group (`$select` of GROUP_SELECT, paged).
    pub async fn list_groups(&self) -> Result<Vec<Group>, GraphError> {
        let mut out = Vec::new();
        let mut pages = self.pages::<Group>(format!(
            "{}/groups?$select={}&$top=999",
            self.base(),
            GROUP_SELECT.join(",")
        ));
        while let Some(p) = pages.next().await {
            out.extend(p?);
        }
        Ok(out)
    }

    /// The soft-deleted users (their addresses are still held).
    pub async fn list_deleted_users(&self) -> Result<Vec<User>, GraphError> {
        let mut out = Vec::new();
        let mut pages = self.pages::<DeletedUser>(format!(
            "{}/directory/deletedItems/microsoft.graph.user?$select={}&$top=999",
            self.base(),
            USER_SELECT.join(",")
        ));
        while let Some(p) = pages.next().await {
            out.extend(p?.into_iter().map(|d| d.user));
        }
        Ok(out)
    }
}

impl GraphClient {
    /// `POST /directory/deletedItems/{id}/restore`: a soft-deleted user comes back.
    /// Permission: User.ReadWrite.All (newer: User.DeleteRestore.All).
    pub async fn restore_deleted(&self, id: &str) -> Result<(), GraphError> {
        self.request(
            reqwest::Method::POST,
            &format!(
                "{}/directory/deletedItems/{}/restore",
                self.base(),
                crate::sync::ops::seg(id)
            ),
            None,
        )
        .await
        .map(|_| ())
    }

    /// `DELETE /directory/deletedItems/{id}`: gone for good (irreversible). Permission:
    /// User.ReadWrite.All, delegated only.
    pub async fn purge_deleted(&self, id: &str) -> Result<(), GraphError> {
        self.request(
            reqwest::Method::DELETE,
            &format!(
                "{}/directory/deletedItems/{}",
                self.base(),
                crate::sync::ops::seg(id)
            ),
            None,
        )
        .await
        .map(|_| ())
    }
}
