//! The plan by cause: why each change is in it (bound directly, through a bound group the user
//! joined, a group left, the directory's attributes or manager, a password). One function, on
//! the plan view, that the console's preview and `sync --dry-run` both list from, so they
//! group the same changes under the same headings.
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::directory::DirectoryUser;

use super::groups::GroupOpKind;
use super::ops::{AnyOp, Kind};
use super::pipeline::PlanView;
use super::plan::OpKind;

/// Why a directory user is wanted bound, as the plan was made: asked for directly (`bind
/// EMAIL`, the console's toggle), and the bound groups it is a member of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Why {
    pub direct: bool,
    pub via: Vec<String>,
}

impl Why {
    pub fn of(u: &DirectoryUser) -> Why {
        Why {
            direct: u.want_bound,
            via: u.bound_via.clone(),
        }
    }
    pub fn wanted(&self) -> bool {
        self.direct || !self.via.is_empty()
    }
}

/// What a change is in the plan for. The order is the order the headings are listed in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// The user is bound directly.
    Direct,
    /// Through a bound group: its members' accounts and memberships. `new`: the group is
    /// created or linked by this plan (bound now), else a member joined it.
    Group { name: String, new: bool },
    /// A member left a bound group: removed from it (and blocked without another reason).
    Left(String),
    /// Not wanted bound any more and in no group it left (unbound, or its group unbound).
    Unbound,
    /// The directory holds other attribute values.
    Attributes,
    /// The directory names another manager.
    Manager,
    /// A password: set by the admin, or the password policy blocking an old one.
    Password,
    /// Any other change, by its label.
    Other(&'static str),
}

impl Cause {
    pub fn heading(&self) -> String {
        match self {
            Cause::Direct => "Bound directly".into(),
            Cause::Group { name, new: true } => format!("Through group {name} (bound now)"),
            Cause::Group { name, new: false } => format!("Through group {name} (joined)"),
            Cause::Left(name) => format!("Left group {name}"),
            Cause::Unbound => "Unbound (no reason left to be bound)".into(),
            Cause::Attributes => "Attribute changes".into(),
            Cause::Manager => "Manager changes".into(),
            Cause::Password => "Passwords".into(),
            Cause::Other(label) => {
                let mut c = label.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().chain(c).collect(),
                    None => "Other changes".into(),
                }
            }
        }
    }
}

/// An op of the view: `User(i)` is `view.plan.ops[i]`, `Group(i)` is `view.group_ops[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpRef {
    User(usize),
    Group(usize),
}

impl OpRef {
    pub fn get(self, view: &PlanView) -> Option<AnyOp> {
        match self {
            OpRef::User(i) => view.plan.ops.get(i).cloned().map(AnyOp::User),
            OpRef::Group(i) => view.group_ops.get(i).cloned().map(AnyOp::Group),
        }
    }
}

/// The ops of one cause, in the order the engine lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseGroup {
    pub cause: Cause,
    pub ops: Vec<OpRef>,
}

impl CauseGroup {
    /// `Through group Field Team (joined): 3 changes`.
    pub fn title(&self) -> String {
        format!(
            "{}: {}",
            self.cause.heading(),
            crate::format::count(self.ops.len(), "change", None)
        )
    }
}

/// The ops to send grouped by cause, every op once, headings in [`Cause`] order. O(ops).
pub fn by_cause(view: &PlanView) -> Vec<CauseGroup> {
    // Groups this plan creates or links: their members are bound now, not joining.
    let new_groups: HashSet<&str> = view
        .group_ops
        .iter()
        .filter(|o| matches!(o.kind, GroupOpKind::CreateGroup | GroupOpKind::LinkGroup))
        .map(|o| o.group_name.as_str())
        .collect();
    // The groups each user is removed from in this plan.
    let mut left: HashMap<i64, &str> = HashMap::new();
    for o in &view.group_ops {
        if o.kind == GroupOpKind::RemoveMember {
            if let Some(m) = &o.member {
                left.entry(m.directory_id).or_insert(o.group_name.as_str());
            }
        }
    }
    let mut groups: BTreeMap<Cause, Vec<OpRef>> = BTreeMap::new();
    for (i, op) in view.plan.ops.iter().enumerate() {
        let why = view.why.get(&op.directory_id);
        let cause = match op.kind {
            OpKind::Create | OpKind::Takeover | OpKind::Restore | OpKind::ReEnable => match why {
                Some(w) if w.direct => Cause::Direct,
                Some(w) if !w.via.is_empty() => Cause::Group {
                    name: w.via[0].clone(),
                    new: new_groups.contains(w.via[0].as_str()),
                },
                _ => Cause::Other(Kind::User(op.kind).label()),
            },
            OpKind::Block => match (why, left.get(&op.directory_id)) {
                // Still wanted: the password policy blocks it.
                (Some(w), _) if w.wanted() => Cause::Password,
                (Some(_), Some(g)) => Cause::Left((*g).to_string()),
                (Some(_), None) => Cause::Unbound,
                (None, _) => Cause::Other(Kind::User(op.kind).label()),
            },
            OpKind::SetPassword => Cause::Password,
            OpKind::UpdateAttributes => Cause::Attributes,
            OpKind::SetManager => Cause::Manager,
            #[allow(unreachable_patterns)]
            _ => Cause::Other(Kind::User(op.kind).label()),
        };
        groups.entry(cause).or_default().push(OpRef::User(i));
    }
    for (i, op) in view.group_ops.iter().enumerate() {
        let cause = match op.kind {
            GroupOpKind::RemoveMember => Cause::Left(op.group_name.clone()),
            _ => Cause::Group {
                name: op.group_name.clone(),
                new: new_groups.contains(op.group_name.as_str()),
            },
        };
        groups.entry(cause).or_default().push(OpRef::Group(i));
    }
    groups
        .into_iter()
        .map(|(cause, ops)| CauseGroup { cause, ops })
        .collect()
}

/// Why of the users in `touched`, for the view (read once when the plan is made).
pub fn why_of(users: &[DirectoryUser], touched: &HashSet<i64>) -> BTreeMap<i64, Why> {
    users
        .iter()
        .filter(|u| touched.contains(&u.id))
        .map(|u| (u.id, Why::of(u)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::groups::{GroupMember, GroupOp};
    use crate::sync::plan::{Op, Plan};

    fn op(kind: OpKind, id: i64) -> Op {
        Op {
            kind,
            directory_id: id,
            email: format!("u{id}@contoso.com"),
            display_name: format!("U{id}"),
            upn: format!("u{id}@contoso.com"),
            tenant_user_id: None,
            reason: String::new(),
            changes: Vec::new(),
            manager_id: None,
            licences: None,
            deprovision: Default::default(),
        }
    }

    fn gop(kind: GroupOpKind, group: &str, member: Option<i64>) -> GroupOp {
        GroupOp {
            kind,
            group_id: 1,
            group_name: group.into(),
            mail_nickname: group.replace(' ', ""),
            group_kind: Default::default(),
            tenant_group_id: None,
            member: member.map(|id| GroupMember {
                directory_id: id,
                email: format!("u{id}@contoso.com"),
                tenant_user_id: None,
            }),
            reason: String::new(),
        }
    }

    #[test]
    fn every_op_is_under_its_cause_once() {
        let mut view = PlanView {
            plan: Plan {
                ops: vec![
                    op(OpKind::Create, 1),           // direct
                    op(OpKind::Create, 2),           // via Field Team (new)
                    op(OpKind::ReEnable, 3),         // via Sales (joined)
                    op(OpKind::Block, 4),            // left Sales
                    op(OpKind::Block, 5),            // unbound
                    op(OpKind::Block, 6),            // still wanted: password policy
                    op(OpKind::UpdateAttributes, 7), // attributes
                    op(OpKind::SetManager, 7),       // manager
                ],
                ..Plan::default()
            },
            group_ops: vec![
                gop(GroupOpKind::CreateGroup, "Field Team", None),
                gop(GroupOpKind::AddMember, "Field Team", Some(2)),
                gop(GroupOpKind::AddMember, "Sales", Some(3)),
                gop(GroupOpKind::RemoveMember, "Sales", Some(4)),
            ],
            ..PlanView::default()
        };
        let w = |direct: bool, via: &[&str]| Why {
            direct,
            via: via.iter().map(|s| s.to_string()).collect(),
        };
        view.why = [
            (1, w(true, &["Field Team"])),
            (2, w(false, &["Field Team"])),
            (3, w(false, &["Sales"])),
            (4, w(false, &[])),
            (5, w(false, &[])),
            (6, w(true, &[])),
            (7, w(true, &[])),
        ]
        .into_iter()
        .collect();
        let g = by_cause(&view);
        let titles: Vec<String> = g.iter().map(CauseGroup::title).collect();
        assert_eq!(
            titles,
            [
                "Bound directly: 1 change",
                "Through group Field Team (bound now): 3 changes",
                "Through group Sales (joined): 2 changes",
                "Left group Sales: 2 changes",
                "Unbound (no reason left to be bound): 1 change",
                "Attribute changes: 1 change",
                "Manager changes: 1 change",
                "Passwords: 1 change",
            ]
        );
        assert_eq!(g[1].ops, [OpRef::User(1), OpRef::Group(0), OpRef::Group(1)]);
        assert_eq!(g[3].ops, [OpRef::User(3), OpRef::Group(3)]);
        let n: usize = g.iter().map(|c| c.ops.len()).sum();
        assert_eq!(n, view.plan.ops.len() + view.group_ops.len());
    }

    #[test]
    fn without_the_reasons_a_user_op_is_under_its_kind() {
        let view = PlanView {
            plan: Plan {
                ops: vec![op(OpKind::Create, 1)],
                ..Plan::default()
            },
            ..PlanView::default()
        };
        let g = by_cause(&view);
        assert_eq!(g[0].title(), "Create account: 1 change");
    }
}
