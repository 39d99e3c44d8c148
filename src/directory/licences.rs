//! Licences the directory assigns (issue 11): a default SKU set, each SKU with the service
//! plans to turn off, per directory group and per directory user (migration 6), and the
//! licences m365sync has assigned to each account (recorded when its `assignLicense`
//! succeeds), so a later change of the assignment removes only what m365sync gave.
//!
//! A user gets its own SKUs and those of the bound groups it is a member of; a SKU named by
//! several sources keeps a service plan off only when every source turns it off.
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{now_rfc3339, Directory, DirectoryError, DirectoryUser};

/// A SKU to assign, by its `skuPartNumber` (`SPE_E3`), with the service plans (by
/// `servicePlanName`) to turn off.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct LicencePick {
    pub sku: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_plans: Vec<String>,
}

impl LicencePick {
    /// `PART[,-PLAN...]` (`SPE_E3,-EXCHANGE_S_ENTERPRISE`): the SKU, then the plans to turn
    /// off, each with a leading `-`. Names are upper-cased as Microsoft writes them.
    pub fn parse(s: &str) -> Result<LicencePick, String> {
        let mut parts = s.split(',').map(str::trim).filter(|p| !p.is_empty());
        let sku = parts
            .next()
            .ok_or_else(|| "empty licence: write a SKU part number such as SPE_E3".to_string())?;
        if sku.starts_with('-') || !valid_name(sku) {
            return Err(format!(
                "`{sku}` is not a SKU part number (letters, digits and _ such as SPE_E3)"
            ));
        }
        let mut disabled = Vec::new();
        for p in parts {
            let Some(plan) = p.strip_prefix('-').map(str::trim) else {
                return Err(format!(
                    "`{p}`: service plans to turn off are written with a leading - \
                     (SPE_E3,-EXCHANGE_S_ENTERPRISE)"
                ));
            };
            if !valid_name(plan) {
                return Err(format!("`{plan}` is not a service plan name"));
            }
            disabled.push(plan.to_ascii_uppercase());
        }
        disabled.sort();
        disabled.dedup();
        Ok(LicencePick {
            sku: sku.to_ascii_uppercase(),
            disabled_plans: disabled,
        })
    }
    /// Several picks separated by `;` or `|` (a CSV cell: `SPE_E3,-TEAMS1;POWER_BI_PRO`).
    pub fn parse_list(s: &str) -> Result<Vec<LicencePick>, String> {
        let mut out: Vec<LicencePick> = Vec::new();
        for item in s.split([';', '|']).map(str::trim).filter(|i| !i.is_empty()) {
            let p = LicencePick::parse(item)?;
            out.retain(|o| o.sku != p.sku);
            out.push(p);
        }
        Ok(out)
    }
    /// As [`LicencePick::parse`] reads it.
    pub fn label(&self) -> String {
        let mut s = self.sku.clone();
        for p in &self.disabled_plans {
            s.push_str(",-");
            s.push_str(p);
        }
        s
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
}

/// Who a default SKU set belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "id")]
pub enum LicenceOwner {
    Group(i64),
    User(i64),
}

impl LicenceOwner {
    fn parts(self) -> (&'static str, i64) {
        match self {
            LicenceOwner::Group(id) => ("group", id),
            LicenceOwner::User(id) => ("user", id),
        }
    }
}

/// A change of a default SKU set, as `m365sync licence assign|unassign` and the console's
/// licence dialog ask for it: both record it with [`Directory::change_licence`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenceChange {
    /// Add the SKU (or replace its disabled plans).
    Assign(LicencePick),
    /// Remove the SKU (by part number).
    Unassign(String),
}

/// Every default SKU set of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LicenceDefaults {
    /// Directory group id -> its SKUs.
    pub groups: BTreeMap<i64, Vec<LicencePick>>,
    /// Directory user id -> its own SKUs.
    pub users: BTreeMap<i64, Vec<LicencePick>>,
}

impl LicenceDefaults {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.users.is_empty()
    }

    /// The SKUs the directory assigns to `user`: its own and those of the bound groups it is
    /// a member of (`group_ids`: group name -> id, as `bound_via` names groups). A SKU from
    /// several sources keeps off only the plans every source turns off. Sorted by SKU.
    pub fn for_user(
        &self,
        user: &DirectoryUser,
        group_ids: &HashMap<&str, i64>,
    ) -> Vec<LicencePick> {
        let mut by_sku: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut add = |p: &LicencePick| match by_sku.get_mut(p.sku.as_str()) {
            Some(d) => d.retain(|x| p.disabled_plans.contains(x)),
            None => {
                by_sku.insert(p.sku.clone(), p.disabled_plans.clone());
            }
        };
        if let Some(own) = self.users.get(&user.id) {
            own.iter().for_each(&mut add);
        }
        for g in &user.bound_via {
            if let Some(picks) = group_ids.get(g.as_str()).and_then(|id| self.groups.get(id)) {
                picks.iter().for_each(&mut add);
            }
        }
        by_sku
            .into_iter()
            .map(|(sku, disabled_plans)| LicencePick {
                sku,
                disabled_plans,
            })
            .collect()
    }
}

/// A licence m365sync assigned to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedLicence {
    pub sku_id: String,
    pub sku: String,
}

impl Directory {
    /// Every default SKU set.
    pub fn licence_defaults(&self) -> Result<LicenceDefaults, DirectoryError> {
        let mut out = LicenceDefaults::default();
        let mut stmt = self.conn.prepare(
            "SELECT owner_kind, owner_id, sku, disabled_plans FROM licence_defaults
             ORDER BY owner_kind, owner_id, sku",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(0)?;
            let id: i64 = r.get(1)?;
            let plans: String = r.get(3)?;
            let pick = LicencePick {
                sku: r.get(2)?,
                disabled_plans: serde_json::from_str(&plans).unwrap_or_default(),
            };
            let map = if kind == "group" {
                &mut out.groups
            } else {
                &mut out.users
            };
            map.entry(id).or_default().push(pick);
        }
        Ok(out)
    }

    /// Adds (or replaces, for the same SKU) a default licence of a group or user. Whether it
    /// changed anything.
    pub fn assign_licence(
        &mut self,
        owner: LicenceOwner,
        pick: &LicencePick,
    ) -> Result<bool, DirectoryError> {
        let (kind, id) = owner.parts();
        let plans = serde_json::to_string(&pick.disabled_plans)
            .map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        let tx = self.immediate()?;
        let exists: bool = match kind {
            "group" => {
                tx.query_row("SELECT COUNT(*) FROM groups WHERE id = ?1", [id], |r| {
                    r.get::<_, i64>(0)
                })? > 0
            }
            _ => {
                tx.query_row("SELECT COUNT(*) FROM users WHERE id = ?1", [id], |r| {
                    r.get::<_, i64>(0)
                })? > 0
            }
        };
        if !exists {
            return Err(DirectoryError::Invalid(format!(
                "no directory {kind} has id {id}"
            )));
        }
        let n = tx.execute(
            "INSERT INTO licence_defaults (owner_kind, owner_id, sku, disabled_plans)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(owner_kind, owner_id, sku) DO UPDATE SET disabled_plans = excluded.disabled_plans
             WHERE disabled_plans <> excluded.disabled_plans",
            rusqlite::params![kind, id, pick.sku, plans],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Removes a default licence of a group or user; whether it had it.
    pub fn unassign_licence(
        &mut self,
        owner: LicenceOwner,
        sku: &str,
    ) -> Result<bool, DirectoryError> {
        let (kind, id) = owner.parts();
        let tx = self.immediate()?;
        let n = tx.execute(
            "DELETE FROM licence_defaults WHERE owner_kind = ?1 AND owner_id = ?2
             AND sku = ?3 COLLATE NOCASE",
            rusqlite::params![kind, id, sku],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Records `change` for `owner` (`name`: `group "Sales"` or the user's email, for the
    /// words) and says what it did: `assigned to group "Sales": SPE_E3,-TEAMS1`, `already
    /// assigned to ...`, `unassigned from ...: SPE_E3`, `... has no default licence SPE_E3`.
    pub fn change_licence(
        &mut self,
        owner: LicenceOwner,
        name: &str,
        change: &LicenceChange,
    ) -> Result<String, DirectoryError> {
        Ok(match change {
            LicenceChange::Assign(pick) => {
                let verb = if self.assign_licence(owner, pick)? {
                    "assigned to"
                } else {
                    "already assigned to"
                };
                format!("{verb} {name}: {}", pick.label())
            }
            LicenceChange::Unassign(sku) => {
                if self.unassign_licence(owner, sku)? {
                    format!("unassigned from {name}: {sku}")
                } else {
                    format!("{name} has no default licence {sku}")
                }
            }
        })
    }

    /// Replaces a user's own default licences (the CSV `licences` column).
    pub fn set_user_licences(
        &mut self,
        user_id: i64,
        picks: &[LicencePick],
    ) -> Result<(), DirectoryError> {
        let tx = self.immediate()?;
        set_user_licences_tx(&tx, user_id, picks)?;
        tx.commit()?;
        Ok(())
    }

    /// The SKUs the directory assigns to one user (its own and its bound groups'): what a
    /// bind gives the account. For the deprovisioning steps: see also
    /// [`Directory::applied_licences`] for what m365sync actually assigned.
    pub fn directory_licences(&self, user_id: i64) -> Result<Vec<LicencePick>, DirectoryError> {
        let defaults = self.licence_defaults()?;
        let Some(user) = self.users()?.into_iter().find(|u| u.id == user_id) else {
            return Ok(Vec::new());
        };
        let groups = self.groups()?;
        let ids: HashMap<&str, i64> = groups.iter().map(|g| (g.name.as_str(), g.id)).collect();
        Ok(defaults.for_user(&user, &ids))
    }

    /// The licences m365sync assigned to each user's account (recorded as each
    /// `assignLicense` succeeded; removed ones are gone): directory user id -> licences.
    pub fn applied_licences(&self) -> Result<HashMap<i64, Vec<AppliedLicence>>, DirectoryError> {
        let mut out: HashMap<i64, Vec<AppliedLicence>> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT user_id, sku_id, sku FROM licences_applied ORDER BY user_id, sku")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            out.entry(r.get(0)?).or_default().push(AppliedLicence {
                sku_id: r.get(1)?,
                sku: r.get(2)?,
            });
        }
        Ok(out)
    }
}

pub(super) fn set_user_licences_tx(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    picks: &[LicencePick],
) -> Result<bool, DirectoryError> {
    let before = user_picks_tx(tx, user_id)?;
    if before == picks {
        return Ok(false);
    }
    tx.execute(
        "DELETE FROM licence_defaults WHERE owner_kind = 'user' AND owner_id = ?1",
        [user_id],
    )?;
    for p in picks {
        let plans = serde_json::to_string(&p.disabled_plans)
            .map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        tx.execute(
            "INSERT OR REPLACE INTO licence_defaults (owner_kind, owner_id, sku, disabled_plans)
             VALUES ('user', ?1, ?2, ?3)",
            rusqlite::params![user_id, p.sku, plans],
        )?;
    }
    Ok(true)
}

fn user_picks_tx(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
) -> Result<Vec<LicencePick>, DirectoryError> {
    let mut stmt = tx.prepare(
        "SELECT sku, disabled_plans FROM licence_defaults WHERE owner_kind = 'user'
         AND owner_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        let plans: String = r.get(1)?;
        Ok(LicencePick {
            sku: r.get(0)?,
            disabled_plans: serde_json::from_str(&plans).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records what a successful `assignLicense` changed on a user's account.
pub(super) fn record_applied(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    added: &[AppliedLicence],
    removed: &[String],
) -> Result<(), DirectoryError> {
    let now = now_rfc3339();
    for l in added {
        tx.execute(
            "INSERT INTO licences_applied (user_id, sku_id, sku, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(user_id, sku_id) DO UPDATE SET sku = excluded.sku, at = excluded.at",
            rusqlite::params![user_id, l.sku_id, l.sku, now],
        )?;
    }
    for id in removed {
        tx.execute(
            "DELETE FROM licences_applied WHERE user_id = ?1 AND sku_id = ?2 COLLATE NOCASE",
            rusqlite::params![user_id, id],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_parse_with_disabled_plans() {
        let p = LicencePick::parse("spe_e3, -exchange_s_enterprise,-TEAMS1").unwrap();
        assert_eq!(p.sku, "SPE_E3");
        assert_eq!(p.disabled_plans, vec!["EXCHANGE_S_ENTERPRISE", "TEAMS1"]);
        assert_eq!(p.label(), "SPE_E3,-EXCHANGE_S_ENTERPRISE,-TEAMS1");
        assert!(LicencePick::parse("SPE_E3,TEAMS1").is_err());
        assert!(LicencePick::parse("-X").is_err());
        assert!(LicencePick::parse("SPE E3").is_err());
        let l = LicencePick::parse_list("SPE_E3,-TEAMS1; POWER_BI_PRO|").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].sku, "POWER_BI_PRO");
    }

    #[test]
    fn defaults_merge_own_and_bound_groups() {
        let mut d = Directory::open_in_memory().unwrap();
        let u = d
            .add_user(&super::super::NewDirectoryUser {
                email: "a@x.com".into(),
                display_name: "A".into(),
                ..Default::default()
            })
            .unwrap();
        let g = d.add_group("Sales").unwrap();
        let g2 = d.add_group("Other").unwrap();
        d.add_group_member(g, u).unwrap();
        d.add_group_member(g2, u).unwrap();
        d.set_group_want(&[g], true).unwrap();
        assert!(d
            .assign_licence(
                LicenceOwner::Group(g),
                &LicencePick::parse("SPE_E3,-TEAMS1,-INTUNE_A").unwrap()
            )
            .unwrap());
        d.assign_licence(
            LicenceOwner::Group(g2),
            &LicencePick::parse("STANDARDPACK").unwrap(),
        )
        .unwrap();
        d.assign_licence(
            LicenceOwner::User(u),
            &LicencePick::parse("SPE_E3,-TEAMS1").unwrap(),
        )
        .unwrap();
        // The group's TEAMS1 off and the user's: off; INTUNE_A only off for the group: on.
        // The unbound group gives nothing.
        assert_eq!(
            d.directory_licences(u).unwrap(),
            vec![LicencePick::parse("SPE_E3,-TEAMS1").unwrap()]
        );
        assert!(d.unassign_licence(LicenceOwner::User(u), "spe_e3").unwrap());
        assert_eq!(
            d.directory_licences(u).unwrap(),
            vec![LicencePick::parse("SPE_E3,-INTUNE_A,-TEAMS1").unwrap()]
        );
        assert!(d
            .assign_licence(LicenceOwner::Group(999), &LicencePick::parse("X").unwrap())
            .is_err());
    }
}
