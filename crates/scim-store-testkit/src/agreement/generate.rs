//! The generated directory the filter agreement runs on: users with Unicode case pairs, type
//! mismatches and every kind of attribute, and groups (some nested), the same on every run.

use crate::{ENTERPRISE, TEST_EXTENSION, ctx, new_tenant};
use scim_store_core::{ResourceKind, Store};
use serde_json::{Value, json};

/// A tiny deterministic generator (xorshift), so the directory is the same on every run.
pub struct Gen(u64);

impl Gen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Gen(seed.max(1))
    }

    /// The next value below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % (n.max(1) as u64)).unwrap_or(0)
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Given names with Unicode case pairs that ASCII-only folding gets wrong.
pub const GIVEN_NAMES: &[&str] = &[
    "Élodie",
    "élodie",
    "ÉLODIE",
    "Åsa",
    "åsa",
    "Zoë",
    "ZOË",
    "Björn",
    "björn",
    "Ωmega",
    "ωmega",
    "Straße",
    "STRASSE",
    "Barbara",
    "barbara",
    "Bob",
    "ALICE",
    "alice",
    "Chloé",
    "Łukasz",
    "łukasz",
    "Dmitri",
    "Дмитрий",
    "дмитрий",
    "Ünal",
];

const FAMILY_NAMES: &[&str] = &[
    "Jensen", "jensen", "Müller", "MÜLLER", "O'Brien", "Smith", "Åberg", "Ng", "Zhang", "van Dijk",
];
const TITLES: &[&str] = &[
    "Engineer",
    "engineer",
    "Manager",
    "Tour Guide",
    "Ingénieur",
    "CEO",
    "",
];
const DEPARTMENTS: &[&str] = &["Sales", "sales", "R&D", "Ventes", "Forschung"];
const DOMAINS: &[&str] = &[
    "example.com",
    "Example.COM",
    "exämple.org",
    "corp.example.net",
];
const EMAIL_TYPES: &[&str] = &["work", "home", "other", "Work"];
const TAGS: &[&str] = &["vip", "VIP", "remote", "Remote", "contractor", "é"];

/// The `i`th generated User document.
pub fn generated_user(i: usize, g: &mut Gen) -> Value {
    let given = *g.pick(GIVEN_NAMES);
    let family = *g.pick(FAMILY_NAMES);
    let mut doc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("{given}.{family}{i}"),
    });
    if g.chance(85) {
        let mut name = serde_json::Map::new();
        name.insert("givenName".into(), given.into());
        if g.chance(80) {
            name.insert("familyName".into(), family.into());
        }
        if g.chance(30) {
            name.insert("formatted".into(), format!("{given} {family}").into());
        }
        doc["name"] = Value::Object(name);
    }
    if g.chance(70) {
        doc["displayName"] = json!(if g.chance(5) {
            String::new()
        } else {
            format!("{given} {family}")
        });
    }
    if g.chance(60) {
        doc["title"] = json!(g.pick(TITLES));
    }
    match g.below(3) {
        0 => doc["active"] = json!(true),
        1 => doc["active"] = json!(false),
        _ => {}
    }
    if g.chance(60) {
        doc["externalId"] = json!(if g.chance(50) {
            format!("EXT-{i}")
        } else {
            format!("ext-{i}")
        });
    }
    let n_emails = g.below(4);
    if n_emails > 0 {
        let primary = g.below(n_emails + 1);
        let emails: Vec<Value> = (0..n_emails)
            .map(|k| {
                let local = if g.chance(50) { given.to_owned() } else { given.to_uppercase() };
                let mut e = json!({"value": format!("{local}.{i}.{k}@{}", g.pick(DOMAINS)), "type": g.pick(EMAIL_TYPES)});
                if k == primary {
                    e["primary"] = json!(true);
                }
                e
            })
            .collect();
        doc["emails"] = Value::Array(emails);
    }
    if g.chance(40) {
        doc["phoneNumbers"] = json!([{"value": format!("+1 555 {:04}", g.below(10_000)), "type": g.pick(&["work", "mobile"])}]);
    }
    if g.chance(50) {
        let mut ent = serde_json::Map::new();
        ent.insert(
            "employeeNumber".into(),
            format!("{}", 1000 + g.below(50)).into(),
        );
        if g.chance(70) {
            ent.insert("department".into(), (*g.pick(DEPARTMENTS)).into());
        }
        if g.chance(30) {
            ent.insert(
                "manager".into(),
                json!({"value": format!("mgr-{}", g.below(5)), "displayName": "Boss"}),
            );
        }
        doc[ENTERPRISE] = Value::Object(ent);
    }
    if g.chance(70) {
        let mut ext = serde_json::Map::new();
        ext.insert("badge".into(), format!("B-{i}").into());
        if g.chance(60) {
            ext.insert("seat".into(), json!(i));
        }
        if g.chance(60) {
            ext.insert(
                "nickname".into(),
                (*g.pick(&["Bee", "bee", "Élo", "élo", "X"])).into(),
            );
        }
        if g.chance(60) {
            let day = 1 + g.below(9);
            let hired = match g.below(3) {
                0 => format!("2020-01-0{day}T10:00:00Z"),
                1 => format!("2020-01-0{day}T12:00:00+02:00"),
                _ => format!("2020-01-0{day}T10:00:00.5Z"),
            };
            ext.insert("hired".into(), hired.into());
        }
        if g.chance(60) {
            ext.insert(
                "level".into(),
                if g.chance(50) {
                    json!(g.below(5))
                } else {
                    json!(g.below(50) as f64 / 10.0)
                },
            );
        }
        if g.chance(50) {
            let tags: Vec<Value> = (0..1 + g.below(3)).map(|_| json!(g.pick(TAGS))).collect();
            ext.insert("tags".into(), Value::Array(tags));
        }
        doc[TEST_EXTENSION] = Value::Object(ext);
    }
    doc
}

/// A tenant filled with `users` generated users and `groups` groups (some nested), and the
/// ids created.
pub async fn generate_directory(
    store: &dyn Store,
    users: usize,
    groups: usize,
    seed: u64,
) -> (scim_store_core::Tenant, Vec<String>, Vec<String>) {
    let t = new_tenant(store).await;
    let mut g = Gen::new(seed);
    let docs: Vec<Value> = (0..users).map(|i| generated_user(i, &mut g)).collect();
    let user_ids = store
        .import(&t.id, ResourceKind::User, docs, &ctx())
        .await
        .unwrap()
        .ids;
    let mut group_ids: Vec<String> = Vec::new();
    for k in 0..groups {
        let mut members: Vec<Value> = Vec::new();
        for _ in 0..g.below(30) {
            members.push(json!({"value": g.pick(&user_ids)}));
        }
        if !group_ids.is_empty() && g.chance(40) {
            members.push(json!({"value": g.pick(&group_ids)}));
        }
        let display = format!(
            "{} {k}",
            g.pick(&["Staff", "staff", "Élus", "élus", "Admins"])
        );
        let mut doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": display, "members": members});
        if g.chance(50) {
            doc["externalId"] = json!(format!("G-{k}"));
        }
        let created = store
            .create(&t.id, ResourceKind::Group, doc, &ctx())
            .await
            .unwrap();
        group_ids.push(created.id);
    }
    (t, user_ids, group_ids)
}
