//! Model-based testing: random operation sequences run against the store and against an
//! in-memory model of what a store must do; every read is compared.
//!
//! [`Model`] is a reference implementation of the directory's semantics, small enough to read
//! in one sitting. After each [`Op`], [`run_ops`] expects of the store exactly what the model
//! says:
//!
//! - **Uniqueness** (RFC 7643 section 4.1): `userName` is unique per tenant after
//!   [`fold_case`]; a create or replace that would collide fails with
//!   [`StoreError::Uniqueness`] ([`Model::name_taken`]).
//! - **Versions** (RFC 7644 section 3.14): a create is version 1; a replace that changes
//!   something is the next version, one that changes nothing keeps it; a stale expected version
//!   fails with [`StoreError::VersionMismatch`] and changes nothing.
//! - **Membership** (RFC 7643 section 4.2): a group's members must exist in the tenant and a
//!   group cannot contain itself (otherwise 400); deleting a resource removes it from every group
//!   without changing the groups' versions; a user's `groups` is derived from the memberships.
//! - **Missing resources**: replacing or deleting a resource that does not exist (or no longer
//!   does) fails with [`StoreError::NotFound`].
//! - **Queries**: `userName eq` compares folded names; sorting by `userName` orders by the folded
//!   name; `totalResults` counts every user.

use crate::{ctx, new_tenant};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use scim_schema::fold_case;
use scim_store_core::{Members, Query, ResourceKind, Store, StoreError, TenantId};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// User names with Unicode case collisions, so uniqueness is exercised.
pub const NAMES: &[&str] = &[
    "alice", "Alice", "ÉLODIE", "élodie", "bob", "zoë", "ZOË", "straße",
];

/// One operation of a sequence. Indexes pick among the names ([`NAMES`]) or the resources
/// created so far ([`Model::pick`]).
#[derive(Debug, Clone)]
pub enum Op {
    /// Create a user.
    CreateUser {
        /// The user's name, an index into [`NAMES`].
        name: usize,
        /// The user's `active`.
        active: Option<bool>,
    },
    /// Replace a user; `stale` sends an expected version one below the current one.
    ReplaceUser {
        /// Which user (any ever created, so deleted ones too).
        target: usize,
        /// The new name, an index into [`NAMES`].
        name: usize,
        /// The new `active`.
        active: Option<bool>,
        /// Whether to send a stale expected version.
        stale: bool,
    },
    /// Delete a user.
    DeleteUser {
        /// Which user (any ever created, so deleted ones too).
        target: usize,
    },
    /// Create a group with members picked among users and groups.
    CreateGroup {
        /// The members, each any resource ever created.
        members: Vec<usize>,
    },
    /// Replace a group's members.
    ReplaceGroup {
        /// Which group (any ever created, so deleted ones too).
        target: usize,
        /// The new members, each any resource ever created.
        members: Vec<usize>,
    },
    /// Delete a group.
    DeleteGroup {
        /// Which group (any ever created, so deleted ones too).
        target: usize,
    },
    /// Query `userName eq name`.
    FindByName {
        /// The name, an index into [`NAMES`].
        name: usize,
    },
    /// Query `active eq true or userName sw "a"`, sorted by userName.
    QueryMixed,
}

/// Random operations, weighted towards creates and replaces.
pub fn op_strategy() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    let active = proptest::option::of(any::<bool>());
    prop_oneof![
        4 => (name.clone(), active.clone()).prop_map(|(name, active)| Op::CreateUser { name, active }),
        3 => (any::<usize>(), name.clone(), active, any::<bool>())
            .prop_map(|(target, name, active, stale)| Op::ReplaceUser { target, name, active, stale }),
        1 => any::<usize>().prop_map(|target| Op::DeleteUser { target }),
        2 => proptest::collection::vec(any::<usize>(), 0..4).prop_map(|members| Op::CreateGroup { members }),
        2 => (any::<usize>(), proptest::collection::vec(any::<usize>(), 0..4))
            .prop_map(|(target, members)| Op::ReplaceGroup { target, members }),
        1 => any::<usize>().prop_map(|target| Op::DeleteGroup { target }),
        2 => name.prop_map(|name| Op::FindByName { name }),
        1 => Just(Op::QueryMixed),
    ]
}

/// A user as the model knows it: what the checks read back.
#[derive(Debug, Clone)]
pub struct ModelUser {
    /// `userName` as written.
    pub name: String,
    /// `active`, if the user has it.
    pub active: Option<bool>,
    /// The version the store must report.
    pub version: u64,
}

/// The directory of one tenant as a store must hold it: users, groups with their members, and
/// every id ever created.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// User id -> user.
    pub users: BTreeMap<String, ModelUser>,
    /// Group id -> (version, member ids).
    pub groups: BTreeMap<String, (u64, BTreeSet<String>)>,
    /// Every id ever created, users and groups, in creation order (deleted ones included, so
    /// operations also hit missing resources).
    pub created: Vec<(ResourceKind, String)>,
}

impl Model {
    /// Whether a user other than `except` has `name`, compared after [`fold_case`] (RFC 7643
    /// section 4.1: `userName` is caseExact false and unique per tenant).
    pub fn name_taken(&self, name: &str, except: Option<&str>) -> bool {
        self.users
            .iter()
            .any(|(id, u)| Some(id.as_str()) != except && fold_case(&u.name) == fold_case(name))
    }

    /// The `index`th (modulo their number) id of `kind` ever created, deleted or not.
    pub fn pick(&self, kind: ResourceKind, index: usize) -> Option<String> {
        let of_kind: Vec<&String> = self
            .created
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| id)
            .collect();
        (!of_kind.is_empty()).then(|| of_kind[index % of_kind.len()].clone())
    }

    /// The `index`th (modulo their number) id ever created, of either kind, deleted or not.
    pub fn pick_any(&self, index: usize) -> Option<String> {
        (!self.created.is_empty()).then(|| self.created[index % self.created.len()].1.clone())
    }

    /// Whether `id` is a live user or group.
    pub fn exists(&self, id: &str) -> bool {
        self.users.contains_key(id) || self.groups.contains_key(id)
    }
}

fn user_doc(name: &str, active: Option<bool>) -> Value {
    let mut doc =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});
    if let Some(active) = active {
        doc["active"] = json!(active);
    }
    doc
}

fn group_doc(members: &[String]) -> Value {
    json!({"displayName": "g", "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()})
}

async fn check_user(
    store: &dyn Store,
    t: &TenantId,
    model: &Model,
    id: &str,
) -> Result<(), TestCaseError> {
    let got = store
        .get(t, ResourceKind::User, id, Members::Include)
        .await
        .map_err(fail)?;
    match (model.users.get(id), got) {
        (None, None) => {}
        (Some(u), Some(r)) => {
            prop_assert_eq!(r.version, u.version);
            prop_assert_eq!(r.document["userName"].as_str(), Some(u.name.as_str()));
            prop_assert_eq!(r.document.get("active").and_then(Value::as_bool), u.active);
            let groups: BTreeSet<String> = r.document["groups"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|g| g["value"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let expected: BTreeSet<String> = model
                .groups
                .iter()
                .filter(|(_, (_, m))| m.contains(id))
                .map(|(g, _)| g.clone())
                .collect();
            prop_assert_eq!(groups, expected);
        }
        (m, r) => prop_assert!(
            false,
            "user {}: model {:?}, store {:?}",
            id,
            m,
            r.map(|r| r.document)
        ),
    }
    Ok(())
}

async fn check_group(
    store: &dyn Store,
    t: &TenantId,
    model: &Model,
    id: &str,
) -> Result<(), TestCaseError> {
    let got = store
        .get(t, ResourceKind::Group, id, Members::Include)
        .await
        .map_err(fail)?;
    match (model.groups.get(id), got) {
        (None, None) => {}
        (Some((version, members)), Some(r)) => {
            prop_assert_eq!(r.version, *version);
            let got: BTreeSet<String> = r.document["members"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["value"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            prop_assert_eq!(&got, members);
        }
        (m, r) => prop_assert!(
            false,
            "group {}: model {:?}, store {:?}",
            id,
            m,
            r.map(|r| r.document)
        ),
    }
    Ok(())
}

fn fail(e: StoreError) -> TestCaseError {
    TestCaseError::fail(format!("unexpected store error: {e}"))
}

/// Runs `ops` on a fresh tenant of `store` and on a fresh [`Model`], and fails at the first
/// result or read that differs from what the model says (every resource ever created is read
/// back after every operation).
pub async fn run_ops(store: &dyn Store, ops: &[Op]) -> Result<(), TestCaseError> {
    let t = new_tenant(store).await.id;
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::CreateUser { name, active } => {
                let name = NAMES[*name];
                let result = store
                    .create(&t, ResourceKind::User, user_doc(name, *active), &ctx())
                    .await;
                if model.name_taken(name, None) {
                    prop_assert!(
                        matches!(result, Err(StoreError::Uniqueness { .. })),
                        "{:?}",
                        result
                    );
                } else {
                    let r = result.map_err(fail)?;
                    prop_assert_eq!(r.version, 1);
                    model.users.insert(
                        r.id.clone(),
                        ModelUser {
                            name: name.to_owned(),
                            active: *active,
                            version: 1,
                        },
                    );
                    model.created.push((ResourceKind::User, r.id));
                }
            }
            Op::ReplaceUser {
                target,
                name,
                active,
                stale,
            } => {
                let Some(id) = model.pick(ResourceKind::User, *target) else {
                    continue;
                };
                let name = NAMES[*name];
                let current = model.users.get(&id).cloned();
                let expected = current.as_ref().map(|u| {
                    if *stale {
                        u.version.saturating_sub(1)
                    } else {
                        u.version
                    }
                });
                let result = store
                    .replace(
                        &t,
                        ResourceKind::User,
                        &id,
                        user_doc(name, *active),
                        expected,
                        &ctx(),
                    )
                    .await;
                match current {
                    None => prop_assert!(
                        matches!(result, Err(StoreError::NotFound { .. })),
                        "{:?}",
                        result
                    ),
                    Some(_) if *stale => {
                        prop_assert!(
                            matches!(result, Err(StoreError::VersionMismatch { .. })),
                            "{:?}",
                            result
                        )
                    }
                    Some(_) if model.name_taken(name, Some(&id)) => {
                        prop_assert!(
                            matches!(result, Err(StoreError::Uniqueness { .. })),
                            "{:?}",
                            result
                        )
                    }
                    Some(u) => {
                        let r = result.map_err(fail)?;
                        let changed = u.name != name || u.active != *active;
                        let version = if changed { u.version + 1 } else { u.version };
                        prop_assert_eq!(r.version, version);
                        model.users.insert(
                            id.clone(),
                            ModelUser {
                                name: name.to_owned(),
                                active: *active,
                                version,
                            },
                        );
                    }
                }
            }
            Op::DeleteUser { target } | Op::DeleteGroup { target } => {
                let kind = if matches!(op, Op::DeleteUser { .. }) {
                    ResourceKind::User
                } else {
                    ResourceKind::Group
                };
                let Some(id) = model.pick(kind, *target) else {
                    continue;
                };
                let result = store.delete(&t, kind, &id, None, &ctx()).await;
                if model.exists(&id) {
                    result.map_err(fail)?;
                    model.users.remove(&id);
                    model.groups.remove(&id);
                    for (_, members) in model.groups.values_mut() {
                        // Removing a member is not a change of the group's version.
                        members.remove(&id);
                    }
                } else {
                    prop_assert!(
                        matches!(result, Err(StoreError::NotFound { .. })),
                        "{:?}",
                        result
                    );
                }
            }
            Op::CreateGroup { members } => {
                let picked: Vec<String> =
                    members.iter().filter_map(|i| model.pick_any(*i)).collect();
                let result = store
                    .create(&t, ResourceKind::Group, group_doc(&picked), &ctx())
                    .await;
                if picked.iter().all(|m| model.exists(m)) {
                    let r = result.map_err(fail)?;
                    model
                        .groups
                        .insert(r.id.clone(), (1, picked.into_iter().collect()));
                    model.created.push((ResourceKind::Group, r.id));
                } else {
                    prop_assert!(
                        matches!(&result, Err(e) if e.status() == 400),
                        "{:?}",
                        result
                    );
                }
            }
            Op::ReplaceGroup { target, members } => {
                let Some(id) = model.pick(ResourceKind::Group, *target) else {
                    continue;
                };
                let picked: Vec<String> =
                    members.iter().filter_map(|i| model.pick_any(*i)).collect();
                let result = store
                    .replace(
                        &t,
                        ResourceKind::Group,
                        &id,
                        group_doc(&picked),
                        None,
                        &ctx(),
                    )
                    .await;
                match model.groups.get(&id).cloned() {
                    None => prop_assert!(
                        matches!(result, Err(StoreError::NotFound { .. })),
                        "{:?}",
                        result
                    ),
                    Some(_) if picked.iter().any(|m| !model.exists(m) || *m == id) => {
                        prop_assert!(
                            matches!(&result, Err(e) if e.status() == 400),
                            "{:?}",
                            result
                        )
                    }
                    Some((version, old)) => {
                        let r = result.map_err(fail)?;
                        let new: BTreeSet<String> = picked.into_iter().collect();
                        let version = if new == old { version } else { version + 1 };
                        prop_assert_eq!(r.version, version);
                        model.groups.insert(id.clone(), (version, new));
                    }
                }
            }
            Op::FindByName { name } => {
                let name = NAMES[*name];
                let filter =
                    scim_filter::parse_filter(&format!("userName eq {}", json!(name))).unwrap();
                let page = store
                    .query(
                        &t,
                        ResourceKind::User,
                        &Query {
                            filter: Some(filter),
                            ..Query::default()
                        },
                    )
                    .await
                    .map_err(fail)?;
                let got: BTreeSet<String> = page.resources.into_iter().map(|r| r.id).collect();
                let expected: BTreeSet<String> = model
                    .users
                    .iter()
                    .filter(|(_, u)| fold_case(&u.name) == fold_case(name))
                    .map(|(id, _)| id.clone())
                    .collect();
                prop_assert_eq!(got, expected);
            }
            Op::QueryMixed => {
                let filter =
                    scim_filter::parse_filter("active eq true or userName sw \"a\"").unwrap();
                let q = Query {
                    filter: Some(filter),
                    sort_by: Some(scim_schema::AttrPath::simple("userName")),
                    ..Query::default()
                };
                let page = store
                    .query(&t, ResourceKind::User, &q)
                    .await
                    .map_err(fail)?;
                let got: Vec<String> = page.resources.into_iter().map(|r| r.id).collect();
                let mut expected: Vec<(&String, &ModelUser)> = model
                    .users
                    .iter()
                    .filter(|(_, u)| u.active == Some(true) || fold_case(&u.name).starts_with('a'))
                    .collect();
                expected.sort_by_key(|(_, u)| fold_case(&u.name).into_owned());
                let expected: Vec<String> =
                    expected.into_iter().map(|(id, _)| id.clone()).collect();
                prop_assert_eq!(got, expected);
            }
        }
        // After every operation, every resource ever created reads back as the model says.
        for (kind, id) in model.created.clone() {
            match kind {
                ResourceKind::User => check_user(store, &t, &model, &id).await?,
                _ => check_group(store, &t, &model, &id).await?,
            }
        }
    }
    let all = store
        .query(&t, ResourceKind::User, &Query::default())
        .await
        .map_err(fail)?;
    prop_assert_eq!(all.total_results, model.users.len() as u64);
    Ok(())
}

/// Random sequences of creates, replaces (with stale versions), deletes, group changes and
/// queries agree with the in-memory model, read after read.
pub async fn model_based_operation_sequences(store: Arc<dyn Store>) {
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config {
            cases: 40,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&proptest::collection::vec(op_strategy(), 1..40), |ops| {
                handle.block_on(run_ops(store.as_ref(), &ops))
            })
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    if let Err(e) = result {
        panic!("model-based test failed: {e}");
    }
}
