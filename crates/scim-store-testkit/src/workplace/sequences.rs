//! The property test: the workplace invariants hold after any sequence of SCIM writes and
//! bookings.

use crate::schemas;
use crate::workplace::fixtures::*;
use crate::workplace::world::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use scim_store_core::ResourceKind;
use scim_store_core::workplace::WorkplaceStore;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use workplace_policy::{
    CascadeSettings, Catalog, CompiledPolicySet, Resource, ResourceKind as Kind, Site,
};

async fn run_sequence(store: &dyn WorkplaceStore, ops: &[Op]) -> Result<(), TestCaseError> {
    let t = office(store, CascadeSettings::default()).await;
    let mut groups = Vec::new();
    for name in GROUPS {
        groups.push(create_group(store, &t, name, &[]).await);
    }
    let user = schemas();
    let policies =
        CompiledPolicySet::compile_with(&standard_policies(), user.get(ResourceKind::User))
            .map_err(fail)?;
    let sites = vec![Site {
        id: "lon".into(),
        name: "London".into(),
    }];
    let floors = vec![workplace_policy::Floor {
        id: "l1".into(),
        site: "lon".into(),
        name: "Level 1".into(),
    }];
    let zones = vec![workplace_policy::Neighbourhood {
        id: "mkt".into(),
        site: "lon".into(),
        floor: Some("l1".into()),
        name: "Marketing corner".into(),
    }];
    let resource = |id: &str, kind: Kind, floor: bool, zone: bool, capacity: u32| Resource {
        id: id.into(),
        kind,
        site: "lon".into(),
        floor: floor.then(|| "l1".into()),
        neighbourhood: zone.then(|| "mkt".into()),
        name: id.into(),
        capacity,
    };
    let resources = vec![
        resource("d1", Kind::Desk, true, true, 1),
        resource("d2", Kind::Desk, true, false, 1),
        resource("boardroom", Kind::Room, true, false, 1),
        resource("p1", Kind::Parking, false, false, 1),
        resource("hub", Kind::parse("phone-booth"), true, false, 2),
    ];
    let catalog = Catalog::new(sites, floors, zones, resources).map_err(fail)?;
    let mut world = World {
        store,
        t,
        policies,
        catalog,
        groups,
        people: Vec::new(),
        bookings: Vec::new(),
        cancelled: BTreeSet::new(),
        assignments: BTreeMap::new(),
    };
    // Three people to start with (Marketing with a parking badge, Sales, Marketing), so that
    // every sequence has someone to book for.
    let seed = [
        Op::Create {
            department: 0,
            active: true,
        },
        Op::Create {
            department: 1,
            active: true,
        },
        Op::Create {
            department: 0,
            active: true,
        },
        Op::Join {
            target: 0,
            group: 0,
        },
    ];
    for op in seed.iter().chain(ops) {
        world.apply(op).await?;
        world.check().await?;
    }
    Ok(())
}

/// After any sequence of SCIM writes (create, deactivate, reactivate, department and group
/// changes, delete), bookings, assignments and cancellations: no inactive or former person holds
/// a live future booking or an assignment, every live future booking is one the rules allow the
/// person as they now are, every booking accepted was allowed by the policies when it was made
/// (and every refusal was the policies'), and nothing cancelled comes back.
pub async fn workplace_invariants_hold_after_any_sequence(store: Arc<dyn WorkplaceStore>) {
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&proptest::collection::vec(op_strategy(), 1..40), |ops| {
                handle.block_on(run_sequence(store.as_ref(), &ops))
            })
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    if let Err(e) = result {
        panic!("workplace property test failed: {e}");
    }
}
