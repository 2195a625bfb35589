//! Comparing and tidying attribute values the way RFC 7643 defines them: case-insensitive
//! strings where `caseExact` is false, instants for `dateTime`, numbers by value, and `null` /
//! `[]` / unassigned as one state (section 2.5).

use scim_schema::validate::values_equal;
use scim_schema::{AttributeDef, AttributeType, ValueKey, json_key, value_key};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// Whether `value` is assigned: not `null`, not an empty array, not an object whose members are
/// all unassigned (RFC 7643 section 2.5: "Unassigned attributes, the null value, or empty array
/// (in the case of a multi-valued attribute) SHALL be considered to be equivalent in "state"").
pub(crate) fn is_assigned(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => o.values().any(is_assigned),
        _ => true,
    }
}

/// Removes `null` members from objects and `null` elements from arrays, recursively: a `null`
/// sub-attribute in a request (Entra ID sends `"$ref": null`) is unassigned and is not stored
/// (RFC 7643 section 2.5).
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(elements) => {
            elements.retain(|v| !v.is_null());
            elements.iter_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}

/// The key of `map` naming `name`, compared exactly first and then case-insensitively (RFC 7643
/// section 2.1).
pub(crate) fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The member of `map` named `name` (case-insensitive), if any.
pub(crate) fn get_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Whether two values (or two elements) of attribute `def` are the same value, by scim-schema's
/// rules: strings per `caseExact`, dateTimes as instants, numbers numerically, complex values
/// sub-attribute by sub-attribute, unassigned equal to unassigned.
pub(crate) fn scim_eq(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    values_equal(def, a, b)
}

/// Whether every assigned sub-attribute of `given` (an object) equals the same sub-attribute of
/// `element`: the rule by which a value list in a `remove` selects elements (see
/// [`crate::dialects::remove_with_value`]).
pub(crate) fn covers(def: &AttributeDef, given: &Map<String, Value>, element: &Value) -> bool {
    let Value::Object(element) = element else {
        return false;
    };
    given.iter().filter(|(_, v)| is_assigned(v)).all(|(k, v)| {
        let other = get_ci(element, k).unwrap_or(&Value::Null);
        match def.sub_attribute(k) {
            Some(sub) => scim_eq(sub, v, other),
            None => v == other,
        }
    })
}

/// True for a multi-valued complex attribute whose values point at other resources: it has both a
/// `value` and a `$ref` sub-attribute (RFC 7643 section 4.2 `members`, section 4.1.2 `groups`).
/// Its values are identified by `value` (the referenced resource's id) alone: display names or
/// types sent along do not make a member a different member.
pub(crate) fn is_reference_list(def: &AttributeDef) -> bool {
    def.kind == AttributeType::Complex
        && def.sub_attribute("value").is_some()
        && def.sub_attribute("$ref").is_some()
}

/// Whether `candidate` is already among the values of multi-valued `def` as `existing` (RFC 7644
/// section 3.5.2.1: "If the target location already contains the value specified, no changes
/// SHOULD be made"). Complex values with a `value` sub-attribute are the same value when their
/// `value`s are equal and, unless they are references ([`is_reference_list`]), their `type`s too
/// when both carry one; other values when equal.
pub(crate) fn same_value(def: &AttributeDef, existing: &Value, candidate: &Value) -> bool {
    if def.kind != AttributeType::Complex {
        return scim_eq(def, existing, candidate);
    }
    let (Value::Object(e), Value::Object(c)) = (existing, candidate) else {
        return existing == candidate;
    };
    let Some(value_def) = def.sub_attribute("value") else {
        return scim_eq(def, existing, candidate);
    };
    match (get_ci(e, "value"), get_ci(c, "value")) {
        (Some(ev), Some(cv)) if is_assigned(ev) && is_assigned(cv) => {
            if !scim_eq(value_def, ev, cv) {
                return false;
            }
            if is_reference_list(def) {
                return true;
            }
            match (
                def.sub_attribute("type"),
                get_ci(e, "type"),
                get_ci(c, "type"),
            ) {
                (Some(type_def), Some(et), Some(ct)) if is_assigned(et) && is_assigned(ct) => {
                    scim_eq(type_def, et, ct)
                }
                _ => true,
            }
        }
        _ => scim_eq(def, existing, candidate),
    }
}

/// Up to this many values, comparing each with each ([`same_value`]) is cheaper than hashing.
pub(crate) const SMALL_LIST: usize = 8;

/// The values of multi-valued `def`, indexed so that whether a candidate is already among them
/// ([`same_value`]) is one hash lookup instead of a scan: adding k values to a list of n costs
/// O(n + k), not O(n * k) (10,000 addresses added to 10,000 took seconds, in the writer every
/// tenant shares). Answers exactly as [`same_value`] would against each value inserted.
pub(crate) struct SameValues<'d> {
    def: &'d AttributeDef,
    value_def: Option<&'d AttributeDef>,
    /// `type`, when it distinguishes values with the same `value` (not for references).
    type_def: Option<&'d AttributeDef>,
    /// Whole values: a simple attribute's values; complex values without an assigned `value`
    /// (or of an attribute without one), by their sub-attributes; non-objects as JSON.
    whole: HashSet<ValueKey>,
    /// Complex values with an assigned `value`, by that value: which `type`s carry it, and
    /// whether one carries none.
    by_value: HashMap<ValueKey, Types>,
}

#[derive(Default)]
struct Types {
    untyped: bool,
    types: HashSet<ValueKey>,
}

/// How [`same_value`] looks at one value of `def`.
enum Shape<'v> {
    /// By the whole value.
    Whole(ValueKey),
    /// By its `value` and, where it distinguishes them, its `type`.
    Valued(ValueKey, Option<&'v Value>),
}

impl<'d> SameValues<'d> {
    pub(crate) fn new(def: &'d AttributeDef) -> Self {
        let complex = def.kind == AttributeType::Complex;
        SameValues {
            def,
            value_def: def.sub_attribute("value").filter(|_| complex),
            type_def: def
                .sub_attribute("type")
                .filter(|_| complex && !is_reference_list(def)),
            whole: HashSet::new(),
            by_value: HashMap::new(),
        }
    }

    /// The index of `values`.
    pub(crate) fn of<'v>(
        def: &'d AttributeDef,
        values: impl IntoIterator<Item = &'v Value>,
    ) -> Self {
        let mut index = SameValues::new(def);
        values.into_iter().for_each(|v| index.insert(v));
        index
    }

    fn shape<'v>(&self, value: &'v Value) -> Shape<'v> {
        let (Some(value_def), Value::Object(map)) = (self.value_def, value) else {
            return Shape::Whole(self.whole_key(value));
        };
        match get_ci(map, "value") {
            Some(v) if is_assigned(v) => Shape::Valued(
                value_key(value_def, v),
                self.type_def
                    .and_then(|_| get_ci(map, "type"))
                    .filter(|t| is_assigned(t)),
            ),
            _ => Shape::Whole(self.whole_key(value)),
        }
    }

    /// A complex attribute's non-object elements compare as JSON ([`same_value`]); all else
    /// by [`scim_eq`], whose key is [`value_key`].
    fn whole_key(&self, value: &Value) -> ValueKey {
        if self.def.kind == AttributeType::Complex && !value.is_object() {
            return json_key(value);
        }
        value_key(self.def, value)
    }

    fn type_key(&self, ty: &Value) -> Option<ValueKey> {
        self.type_def.map(|def| value_key(def, ty))
    }

    pub(crate) fn insert(&mut self, value: &Value) {
        match self.shape(value) {
            Shape::Whole(key) => {
                self.whole.insert(key);
            }
            Shape::Valued(key, ty) => {
                let type_key = ty.and_then(|t| self.type_key(t));
                let types = self.by_value.entry(key).or_default();
                match type_key {
                    Some(t) => {
                        types.types.insert(t);
                    }
                    None => types.untyped = true,
                }
            }
        }
    }

    /// Whether `candidate` is the same value ([`same_value`]) as one inserted.
    pub(crate) fn contains(&self, candidate: &Value) -> bool {
        match self.shape(candidate) {
            Shape::Whole(key) => self.whole.contains(&key),
            Shape::Valued(key, ty) => self.by_value.get(&key).is_some_and(|types| {
                match ty.and_then(|t| self.type_key(t)) {
                    Some(t) => types.untyped || types.types.contains(&t),
                    None => true,
                }
            }),
        }
    }
}

/// The key under which a reference value ([`is_reference_list`]) is identified: its `value`,
/// folded when `value` is not case-exact. `None` for a value without a string `value`.
pub(crate) fn reference_key(def: &AttributeDef, element: &Value) -> Option<String> {
    let Value::Object(map) = element else {
        return None;
    };
    let id = get_ci(map, "value")?.as_str()?;
    let case_exact = def.sub_attribute("value").is_some_and(|v| v.case_exact);
    Some(id_key(id, case_exact))
}

/// An id as compared: itself when case-exact, else folded ([`scim_schema::fold_case`]).
pub(crate) fn id_key(id: &str, case_exact: bool) -> String {
    if case_exact {
        id.to_owned()
    } else {
        scim_schema::fold_case(id).into_owned()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn emails() -> AttributeDef {
        let mut def = AttributeDef::new("emails", AttributeType::Complex);
        def.multi_valued = true;
        def.sub_attributes = vec![
            AttributeDef::new("value", AttributeType::String),
            AttributeDef::new("type", AttributeType::String),
            AttributeDef::new("primary", AttributeType::Boolean),
        ];
        def
    }

    #[test]
    fn unassigned_means_null_empty_or_all_unassigned() {
        for v in [
            json!(null),
            json!([]),
            json!({}),
            json!({"a": null, "b": []}),
        ] {
            assert!(!is_assigned(&v), "{v}");
        }
        for v in [
            json!(""),
            json!(false),
            json!(0),
            json!([null]),
            json!({"a": 1}),
        ] {
            assert!(is_assigned(&v), "{v}");
        }
    }

    #[test]
    fn equality_follows_case_exact_and_types() {
        let def = emails();
        assert!(scim_eq(
            &def,
            &json!({"value": "A@x", "type": "Work"}),
            &json!({"value": "a@X", "type": "work", "primary": null})
        ));
        assert!(!scim_eq(
            &def,
            &json!({"value": "a@x", "primary": true}),
            &json!({"value": "a@x"})
        ));
        let when = AttributeDef::new("when", AttributeType::DateTime);
        assert!(scim_eq(
            &when,
            &json!("2011-05-13T04:42:34Z"),
            &json!("2011-05-13T06:42:34.000+02:00")
        ));
        let id = AttributeDef {
            case_exact: true,
            ..AttributeDef::new("id", AttributeType::String)
        };
        assert!(!scim_eq(&id, &json!("Ab"), &json!("ab")));
    }

    #[test]
    fn same_value_uses_value_and_type() {
        let def = emails();
        assert!(same_value(
            &def,
            &json!({"value": "a@x", "type": "work", "primary": true}),
            &json!({"value": "A@x", "type": "work"})
        ));
        assert!(!same_value(
            &def,
            &json!({"value": "a@x", "type": "work"}),
            &json!({"value": "a@x", "type": "home"})
        ));
        assert!(same_value(
            &def,
            &json!({"value": "a@x"}),
            &json!({"value": "a@x", "type": "home"})
        ));
    }

    #[test]
    fn covers_compares_only_what_is_given() {
        let def = emails();
        let given = json!({"value": "a@x", "type": null});
        assert!(covers(
            &def,
            given.as_object().unwrap(),
            &json!({"value": "A@X", "type": "work"})
        ));
        assert!(!covers(
            &def,
            json!({"type": "home"}).as_object().unwrap(),
            &json!({"value": "a", "type": "work"})
        ));
    }

    #[test]
    fn strip_nulls_is_recursive() {
        let mut v = json!({"a": null, "b": [null, {"c": null, "d": 1}]});
        strip_nulls(&mut v);
        assert_eq!(v, json!({"b": [{"d": 1}]}));
    }

    pub(crate) mod indexed {
        //! The indexes answer exactly as the pairwise comparisons they replace.
        use super::*;
        use proptest::prelude::*;

        pub(crate) fn members() -> AttributeDef {
            let mut def = AttributeDef::new("members", AttributeType::Complex);
            def.multi_valued = true;
            def.sub_attributes = vec![
                AttributeDef::new("value", AttributeType::String),
                AttributeDef::new("$ref", AttributeType::Reference),
                AttributeDef::new("type", AttributeType::String),
            ];
            def
        }

        pub(crate) fn tags() -> AttributeDef {
            let mut def = AttributeDef::new("tags", AttributeType::String);
            def.multi_valued = true;
            def
        }

        /// Values that collide often: case variants, with and without a type, without a
        /// value, and a few that are not objects at all.
        pub(crate) fn element() -> impl Strategy<Value = Value> {
            let text = prop::sample::select(vec!["a", "A", "b", "\u{e9}", "\u{c9}"]);
            let ty = prop::option::of(prop::sample::select(vec!["work", "WORK", "home"]));
            let primary = prop::option::of(any::<bool>());
            prop_oneof![
                6 => (text.clone(), ty.clone(), primary).prop_map(|(v, t, p)| {
                    let mut o = Map::new();
                    o.insert("value".into(), v.into());
                    if let Some(t) = t { o.insert("type".into(), t.into()); }
                    if let Some(p) = p { o.insert("primary".into(), p.into()); }
                    Value::Object(o)
                }),
                2 => ty.prop_map(|t| match t {
                    Some(t) => serde_json::json!({"type": t}),
                    None => serde_json::json!({"value": null}),
                }),
                1 => text.prop_map(Value::from),
                1 => Just(serde_json::json!(1)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn same_values_answers_as_same_value(
                existing in prop::collection::vec(element(), 0..12),
                candidates in prop::collection::vec(element(), 1..6),
            ) {
                for def in [emails(), members(), tags()] {
                    let index = SameValues::of(&def, &existing);
                    for candidate in &candidates {
                        let scanned = existing.iter().any(|e| same_value(&def, e, candidate));
                        prop_assert_eq!(
                            index.contains(candidate), scanned,
                            "{} {} in {:?}", def.name, candidate, existing
                        );
                    }
                }
            }
        }
    }
}
