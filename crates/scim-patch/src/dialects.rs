//! What real identity providers send, and how this engine reads it.
//!
//! RFC 7644 section 3.5.2 is precise, but the clients that provision most SCIM servers are not:
//! each identity provider speaks its own dialect of PATCH, and a server that answers them with the
//! RFC's 400 (or, worse, silently does something else) breaks provisioning. With
//! [`Dialects::Lenient`] (the default) the engine accepts every dialect below; with
//! [`Dialects::Strict`] it answers each with the error the RFC prescribes. Each dialect is one
//! small function in this module, so that what is accepted, and why, can be read in one place.
//!
//! A dialect is only accepted where accepting it cannot change the meaning of a request that is
//! valid under the RFC ("reject-only": strict mode would answer 400). The one exception is marked:
//! a `remove` with a value list, which strict mode refuses instead of reading it literally (which
//! would empty the group).
//!
//! Sources are abbreviated as in the research notes: `[MS-COMPAT]` is Microsoft's "Known issues and
//! resolutions with SCIM 2.0 protocol compliance of the Microsoft Entra user provisioning service";
//! `[MS-TUT]` is Microsoft's "Tutorial: Develop and plan provisioning for a SCIM endpoint"; `[OKTA-REF]`
//! is Okta's "SCIM 2.0 Protocol Reference"; `SDK-n` is an issue of Captain-P-Goldfish/SCIM-SDK;
//! `TP-n` of thomaspoignant/scim-patch; `KC-n` of Captain-P-Goldfish/scim-for-keycloak; `REF-n` of
//! AzureAD/SCIMReferenceCode.
//!
//! | Quirk | IdP | Source | Lenient (default) | Strict |
//! |---|---|---|---|---|
//! | [`op_any_case`]: `"op":"Replace"` | Entra ID | \[MS-TUT\] "Microsoft Entra ID emits the values of op as Add, Replace, and Remove" | any case | `invalidSyntax` |
//! | [`schemas_optional`]: no `schemas` in the message | Okta (as reported), GitHub's docs | jelhub/scimgateway#111, \[GH-API\] | accepted | `invalidSyntax` |
//! | [`empty_operations`]: `"Operations": []` | Microsoft's SCIM validator | scimmyjs/scimmy#59 | no-op | `invalidSyntax` |
//! | [`coerce_string_boolean`]: `"value":"False"` for a boolean | Entra ID (without `aadOptscim062020`) | \[MS-COMPAT\] "Requests made to disable users"; \[REF-21\] "our service sends it as a string today" | JSON boolean | `invalidValue` |
//! | [`pathless_keys_as_paths`]: `{"op":"Replace","value":{"name.givenName":"X", "urn:…:User:employeeNumber":"1"}}` | Entra ID (with `aadOptscim062020`; also on add) | \[MS-COMPAT\] "With feature flag"; SDK-267; TP-132; KC-26 | each key is a path | `invalidPath` |
//! | [`coerce_bare_value`]: `manager` sent as `"value":"271"` | Entra ID | SDK-541, SDK-686, apache/directory-scimple#1242, Microsoft Q&A 188003 ("we are only sending ID") | `{"value":"271"}` | `invalidValue` |
//! | [`coerce_single_element_array`]: `"value":[{"$ref":null,"value":"…"}]` for a single-valued attribute | Entra ID, legacy Microsoft library | \[MS-TUT\] example 5; Azure/AzureAD-BYOA-Provisioning-Samples#22 | unwrapped | `invalidValue` |
//! | [`coerce_bare_element`]: one object where an array is expected (`"emails":{…}`) | OneLogin | 15five/django-scim2 adapters ("OneLogin sends a dict despite the spec") | one-element array | `invalidValue` |
//! | [`remove_with_value`]: `{"op":"Remove","path":"members","value":[{"value":"id"}]}` | Entra ID (default), JumpCloud | \[MS-COMPAT\] "Requests made to remove a group member"; SDK-149; MicrosoftDocs/azure-docs#30826; REF-10 | removes only the listed values; on a single-valued attribute, only if it holds that value | **`invalidSyntax`** (never empties the group) |
//! | [`create_on_no_match`]: add/replace `emails[type eq "work"].value` with no work email | Entra ID | SDK-416, SDK-680, KC-73 | creates `{"type":"work","value":…}` (`eq`/`and` filters only) | `noTarget` |
//! | [`ignore_remove_no_match`]: remove through a filter that matches nothing | Entra ID, Okta (replayed removals) | RFC 7644 section 3.12 `noTarget`; SCIM-SDK `doNotFailOnNoTarget` | no-op | `noTarget` |
//! | [`filter_on_single_valued`]: `remove manager[value eq "id"]` | Entra ID | TP-453 | condition on the one value | `invalidPath` |
//! | [`skip_read_only_in_pathless`]: path-less replace repeating `id`, `meta` or `schemas` | Okta (group rename) | \[OKTA-REF\]; imulab/go-scim#57 | skipped | `mutability` unless equal |
//! | [`extension_urn_as_path`]: `"path":"urn:…:enterprise:2.0:User"` | clients that address the extension object | RFC 7643 section 3.3 (the URN-keyed object) | the extension object | `invalidPath` |
//!
//! Behaviour that looks like a dialect but is the RFC, and so holds in both modes: member add with
//! an array value and removal by `members[value eq "…"]` (RFC 7644 section 3.5.2.1, 3.5.2.2);
//! Okta's `{"op":"replace","value":{"active":false}}` (section 3.5.2.3, path-less replace);
//! `replace members []` empties the group and `"value": null` unassigns (RFC 7643 section 2.5); an
//! `add` on a single-valued attribute that has a value replaces it (section 3.5.2.1); a partial
//! complex value merges into the existing one (section 3.5.2.3, SailPoint's `name` updates);
//! attribute names and message members in any case (RFC 7643 section 2.1); a member already present
//! is not added twice (section 3.5.2.1).
//!
//! One dialect is not PATCH and so lives with resource validation: Entra ID's ADSCIM Group URN in a
//! group's `schemas` (`scim_schema::validate::IDP_SCHEMA_ALIASES`, refused with
//! `ValidationOptions::strict_schemas`).
//!
//! Not accepted in either mode, for want of evidence that any IdP sends it: `""` meaning "clear"
//! (it is a valid string), a misspelled PatchOp URN, and `emails.value` without a filter for add or
//! replace (it would write every element). No public evidence of what Google Workspace sends was
//! found, so no Google dialect is claimed.
//!
//! [`Dialects::Lenient`]: crate::Dialects::Lenient
//! [`Dialects::Strict`]: crate::Dialects::Strict

use crate::request::PatchOptions;
use scim_filter::{CompValue, CompareOp, Filter};
use scim_schema::{AttributeDef, AttributeType};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Entra ID sends `"op": "Add"`, `"Replace"`, `"Remove"` (\[MS-TUT\]: "Don't require a
/// case-sensitive match on structural elements in SCIM, in particular PATCH op operation values").
/// Lenient: any case. Strict: only the RFC's lower case (RFC 7644 section 3.5.2).
pub fn op_any_case(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// Okta (as reported in jelhub/scimgateway#111 and #113) and GitHub's API documentation send
/// PatchOp bodies without `schemas`. Lenient: a missing, `null` or empty `schemas` is accepted
/// (one that names only other URNs is still refused: it signals another protocol). Strict: RFC
/// 7644 section 3.5.2 ("The body of each request MUST contain the "schemas" attribute").
pub fn schemas_optional(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// Microsoft's SCIM validator sends a PATCH with `"Operations": []` (scimmyjs/scimmy#59).
/// Lenient: a request that changes nothing. Strict: RFC 7644 section 3.5.2 requires "one or more"
/// operations.
pub fn empty_operations(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// Entra ID (without the `aadOptscim062020` flag) and the legacy Microsoft library send a `remove`
/// that names a whole attribute and carries the values to remove:
/// `{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}`
/// (\[MS-COMPAT\] "Requests made to remove a group member ... Without feature flag"; JumpCloud does
/// the same). Read literally (RFC 7644 section 3.5.2.2: "If the target location is a multi-valued
/// attribute and no filter is specified, the attribute and all values are removed") this empties
/// the group: the most reported bug of public SCIM servers (MicrosoftDocs/azure-docs#30826,
/// AzureAD/SCIMReferenceCode#10, SimpleIdServer#164).
///
/// Lenient: only the elements matching one of the given values are removed (see
/// [the `apply` module](mod@crate::apply) for the matching rule); on a single-valued attribute the attribute is removed
/// only if it holds the given value, so a stale removal never deletes a newer value. Strict: the
/// message is refused with `invalidSyntax` ("remove takes no value") rather than emptying the
/// attribute.
pub fn remove_with_value(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// Entra ID with `aadOptscim062020` batches single-valued attributes into one path-less replace
/// whose keys are attribute *paths* (\[MS-COMPAT\] "With feature flag"; SDK-267, TP-132 for add):
/// `{"op":"replace","value":{"name.givenName":"Kkom",
/// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}`.
/// Strict servers reject them or, worse, silently ignore them (KC-26).
///
/// Lenient: a key that is not an extension URN is parsed as a PATCH path and the operation applied
/// to it as if sent with that `path`. Strict: RFC 7644 section 3.5.2.1/3.5.2.3 make the value a set
/// of attributes, so a key must be an attribute name (`invalidPath` otherwise).
pub fn pathless_keys_as_paths(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// Entra ID adds or replaces through a value filter that matches nothing and expects the element
/// to be created: `{"op":"Add","path":"emails[type eq \"work\"].value","value":"babs@example.com"}`
/// on a user without a work email (SDK-416, SDK-680, KC-73, Metatavu/keycloak-scim-server#35).
///
/// Lenient: if the filter is a conjunction (`and`) of `eq` comparisons on sub-attributes, a new
/// element made of those equalities (in filter order) and the value is appended
/// (`{"type":"work","value":"babs@example.com"}`); later operations of the same request find it.
/// Other filters keep the RFC error. Strict: `noTarget` (RFC 7644 section 3.5.2.3: "no record
/// match was made ... "noTarget""; section 3.12).
pub fn create_on_no_match(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// Identity providers replay removals (Entra ID re-evaluates every cycle; Okta re-pushes groups),
/// so a `remove` whose filter matches nothing is routine. Lenient: a no-op. Strict: `noTarget`
/// (RFC 7644 section 3.12: "This occurs when the specified "path" value contains a filter that
/// yields no match").
pub fn ignore_remove_no_match(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// Entra ID removes a manager with a value filter on the single-valued `manager`:
/// `{"op":"remove","path":"manager[value eq \"manager-id\"]"}` (TP-453). Lenient: the filter is a
/// condition on the attribute's one value (removed if it matches, otherwise nothing happens; add and
/// replace act on it only if it matches). Strict: RFC 7644 section 3.5.2 defines value filters for
/// multi-valued attributes only: `invalidPath`.
pub fn filter_on_single_valued(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// Okta renames a group with a path-less replace that repeats the group's `id`
/// (`{"op":"replace","value":{"id":"abf4…","displayName":"Test SCIMv2"}}`, \[OKTA-REF\],
/// imulab/go-scim#57), and clients that read-modify-write echo `meta` and `schemas`.
///
/// Lenient: inside a path-less value, a readOnly attribute and `schemas` are skipped, as RFC 7644
/// section 3.5.1 prescribes for PUT ("readOnly ... values SHALL be ignored"). Strict: they are
/// accepted only if equal to the current value, else `mutability` (RFC 7644 section 3.5.2). An
/// explicit `path` naming a readOnly attribute is `mutability` in both modes.
pub fn skip_read_only_in_pathless(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// A `path` that is exactly an extension schema URN
/// (`"path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`) addresses the
/// extension's object, as the same URN does as a key of a path-less value (RFC 7643 section 3.3).
/// Lenient: accepted (add/replace merge into the object, remove removes it). Strict: the RFC's
/// path grammar names attributes only, so `invalidPath`.
pub fn extension_urn_as_path(options: &PatchOptions) -> bool {
    options.lenient_dialects()
}

/// Applies the value coercions of the lenient dialects to a value about to be written to `def`:
/// [`coerce_single_element_array`], [`coerce_bare_element`], [`coerce_bare_value`] and
/// [`coerce_string_boolean`], recursively into complex values. In strict mode the value is
/// returned unchanged (and the schema check then rejects what does not fit).
pub(crate) fn coerce(def: &AttributeDef, value: Value, options: &PatchOptions) -> Value {
    if !options.lenient_dialects() {
        return value;
    }
    coerce_lenient(def, value)
}

/// [`coerce`] without copying `value` when no coercion applies (the common case: a large
/// member list that is already well-formed is checked where it lies).
pub(crate) fn coerce_ref<'v>(
    def: &AttributeDef,
    value: &'v Value,
    options: &PatchOptions,
) -> Cow<'v, Value> {
    if options.lenient_dialects() && needs_coercion(def, value) {
        Cow::Owned(coerce_lenient(def, value.clone()))
    } else {
        Cow::Borrowed(value)
    }
}

/// Whether [`coerce_lenient`] would change `value` (checked without allocating).
fn needs_coercion(def: &AttributeDef, value: &Value) -> bool {
    match value {
        Value::Array(elements) if def.multi_valued => {
            elements.iter().any(|e| element_needs_coercion(def, e))
        }
        Value::Null => false,
        _ if def.multi_valued => true,
        // An empty or one-element array is unwrapped; a longer one is left for the schema check.
        Value::Array(elements) => elements.len() <= 1,
        other => element_needs_coercion(def, other),
    }
}

fn element_needs_coercion(def: &AttributeDef, value: &Value) -> bool {
    match (def.kind, value) {
        (AttributeType::Boolean, Value::String(s)) => {
            s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")
        }
        (AttributeType::Complex, Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
            def.sub_attribute("value").is_some()
        }
        (AttributeType::Complex, Value::Object(map)) => map.iter().any(|(k, v)| {
            def.sub_attribute(k)
                .is_some_and(|sub| needs_coercion(sub, v))
        }),
        _ => false,
    }
}

/// [`coerce`] for ONE value of multi-valued `def` (the value of `emails[type eq "work"]`).
pub(crate) fn coerce_element(def: &AttributeDef, value: Value, options: &PatchOptions) -> Value {
    if !options.lenient_dialects() {
        return value;
    }
    coerce_one(def, value)
}

fn coerce_lenient(def: &AttributeDef, value: Value) -> Value {
    if def.multi_valued {
        let elements = match coerce_bare_element(def, value) {
            Value::Array(elements) => elements,
            other => return other,
        };
        Value::Array(elements.into_iter().map(|e| coerce_one(def, e)).collect())
    } else {
        coerce_one(def, coerce_single_element_array(def, value))
    }
}

/// Coerces one value (an element, for a multi-valued attribute).
fn coerce_one(def: &AttributeDef, value: Value) -> Value {
    match def.kind {
        AttributeType::Boolean => coerce_string_boolean(value),
        AttributeType::Complex => match coerce_bare_value(def, value) {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| match def.sub_attribute(&k) {
                        Some(sub) => {
                            let v = coerce_lenient(sub, v);
                            (k, v)
                        }
                        None => (k, v),
                    })
                    .collect(),
            ),
            other => other,
        },
        _ => value,
    }
}

/// Entra ID (without `aadOptscim062020`) sends booleans as strings: `{"op":"Replace",
/// "path":"active","value":"False"}` (\[MS-COMPAT\]; \[REF-21\], Microsoft: "active is a boolean in
/// the spec. Unfortunately our service sends it as a string today"; scimmyjs/scimmy#86 saw
/// `"false"`). A string equal to `true` or `false` in any case becomes the JSON boolean when the
/// target attribute is boolean; any other string is left for the schema check to reject
/// (`invalidValue`, RFC 7643 section 2.3.2).
pub fn coerce_string_boolean(value: Value) -> Value {
    match value {
        Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
        other => other,
    }
}

/// Entra ID sends the enterprise `manager` (a complex attribute, RFC 7643 section 4.3) as the
/// manager's id alone: `{"op":"Add","path":"urn:…:enterprise:2.0:User:manager","value":"271"}`
/// (SDK-541, SDK-686, apache/directory-scimple#1242; Microsoft Q&A 188003: "we are only sending ID
/// at the moment"). A string, number or boolean written to a complex attribute that has a `value`
/// sub-attribute becomes `{"value": …}`.
pub fn coerce_bare_value(def: &AttributeDef, value: Value) -> Value {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_)
            if def.sub_attribute("value").is_some() =>
        {
            let mut map = Map::new();
            map.insert("value".to_owned(), value);
            Value::Object(map)
        }
        other => other,
    }
}

/// Entra ID's documented user update sends `manager` as a one-element array
/// (`"value":[{"$ref":"…/Users/00aa…","value":"00aa…"}]`, \[MS-TUT\] example 5), and the legacy
/// Microsoft SCIM library wraps even simple values (`"value":[{"$ref":null,"value":"User x"}]` for
/// `displayName`, Azure/AzureAD-BYOA-Provisioning-Samples#22). For a single-valued attribute: an
/// empty array is `null` (RFC 7643 section 2.5), a one-element array is its element, and for a
/// simple attribute an element `{"value": x}` (other members null) is `x`. Longer arrays are left
/// for the schema check to reject.
pub fn coerce_single_element_array(def: &AttributeDef, value: Value) -> Value {
    let Value::Array(mut elements) = value else {
        return value;
    };
    match elements.len() {
        0 => Value::Null,
        1 => {
            let element = elements.pop().unwrap_or(Value::Null);
            if def.kind == AttributeType::Complex {
                return element;
            }
            match element {
                Value::Object(map)
                    if map.contains_key("value")
                        && map.iter().all(|(k, v)| k == "value" || v.is_null()) =>
                {
                    map.into_iter()
                        .find(|(k, _)| k == "value")
                        .map(|(_, v)| v)
                        .unwrap_or(Value::Null)
                }
                other => other,
            }
        }
        _ => Value::Array(elements),
    }
}

/// OneLogin sends one object where the RFC wants an array (15five/django-scim2: "OneLogin sends a
/// dict despite the spec", for `emails`). For a multi-valued attribute, a value that is not an
/// array (and not `null`) is a one-element array.
pub fn coerce_bare_element(def: &AttributeDef, value: Value) -> Value {
    match value {
        Value::Array(_) | Value::Null => value,
        other if def.multi_valued => Value::Array(vec![other]),
        other => other,
    }
}

/// The element [`create_on_no_match`] creates for a value filter, or `None` if the filter is not
/// a conjunction of `eq` comparisons with a non-null literal on sub-attributes of `parent`. Keys
/// are the sub-attributes' canonical names, in filter order.
pub(crate) fn element_from_filter(
    filter: &Filter,
    parent: &AttributeDef,
) -> Option<Map<String, Value>> {
    let mut element = Map::new();
    collect_equalities(filter, parent, &mut element)?;
    Some(element)
}

fn collect_equalities(
    filter: &Filter,
    parent: &AttributeDef,
    into: &mut Map<String, Value>,
) -> Option<()> {
    match filter {
        Filter::And(left, right) => {
            collect_equalities(left, parent, into)?;
            collect_equalities(right, parent, into)
        }
        Filter::Compare(cmp) if cmp.op == CompareOp::Eq && cmp.path.sub_attr.is_none() => {
            if cmp.path.schema.is_some() {
                return None;
            }
            let sub = parent.sub_attribute(&cmp.path.name)?;
            let value = match &cmp.value {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            // Two different values for the same sub-attribute can match nothing: no element.
            match into.get(&sub.name) {
                Some(existing) if existing != &value => None,
                _ => {
                    into.insert(sub.name.clone(), value);
                    Some(())
                }
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_filter::parse_filter;

    fn complex(name: &str, multi: bool, subs: &[(&str, AttributeType)]) -> AttributeDef {
        let mut def = AttributeDef::new(name, AttributeType::Complex);
        def.multi_valued = multi;
        def.sub_attributes = subs
            .iter()
            .map(|(n, k)| AttributeDef::new(*n, *k))
            .collect();
        def
    }

    #[test]
    fn string_booleans_become_booleans_in_any_case_only_for_true_and_false() {
        assert_eq!(
            coerce_string_boolean(Value::from("False")),
            Value::Bool(false)
        );
        assert_eq!(
            coerce_string_boolean(Value::from("TRUE")),
            Value::Bool(true)
        );
        assert_eq!(
            coerce_string_boolean(Value::from("yes")),
            Value::from("yes")
        );
        let emails = complex(
            "emails",
            true,
            &[
                ("value", AttributeType::String),
                ("primary", AttributeType::Boolean),
            ],
        );
        let v = coerce(
            &emails,
            serde_json::json!([{"value": "a@b", "primary": "True"}]),
            &PatchOptions::lenient(),
        );
        assert_eq!(v, serde_json::json!([{"value": "a@b", "primary": true}]));
        let strict = coerce(
            &emails,
            serde_json::json!([{"primary": "True"}]),
            &PatchOptions::strict(),
        );
        assert_eq!(strict, serde_json::json!([{"primary": "True"}]));
    }

    #[test]
    fn bare_values_and_wrapped_values_are_unwrapped() {
        let manager = complex(
            "manager",
            false,
            &[
                ("value", AttributeType::String),
                ("$ref", AttributeType::Reference),
            ],
        );
        let lenient = PatchOptions::lenient();
        assert_eq!(
            coerce(&manager, Value::from("271"), &lenient),
            serde_json::json!({"value": "271"})
        );
        assert_eq!(
            coerce(
                &manager,
                serde_json::json!([{"$ref": null, "value": "9"}]),
                &lenient
            ),
            serde_json::json!({"$ref": null, "value": "9"})
        );
        let display = AttributeDef::new("displayName", AttributeType::String);
        assert_eq!(
            coerce(
                &display,
                serde_json::json!([{"$ref": null, "value": "User x"}]),
                &lenient
            ),
            Value::from("User x")
        );
        assert_eq!(
            coerce(&display, serde_json::json!([]), &lenient),
            Value::Null
        );
        assert_eq!(
            coerce(&display, serde_json::json!(["a", "b"]), &lenient),
            serde_json::json!(["a", "b"])
        );
        let members = complex("members", true, &[("value", AttributeType::String)]);
        assert_eq!(
            coerce(&members, serde_json::json!({"value": "x"}), &lenient),
            serde_json::json!([{"value": "x"}])
        );
        assert_eq!(
            coerce(&members, serde_json::json!("x"), &lenient),
            serde_json::json!([{"value": "x"}])
        );
    }

    proptest::proptest! {
        /// `coerce_ref` borrows exactly when coercing would change nothing.
        #[test]
        fn needs_coercion_agrees_with_coerce(value in json_value(), which in 0usize..6) {
            let defs = [
                complex("members", true, &[("value", AttributeType::String), ("display", AttributeType::String)]),
                complex("emails", true, &[("value", AttributeType::String), ("primary", AttributeType::Boolean)]),
                complex("manager", false, &[("value", AttributeType::String)]),
                complex("name", false, &[("givenName", AttributeType::String)]),
                AttributeDef::new("active", AttributeType::Boolean),
                AttributeDef::new("title", AttributeType::String),
            ];
            let def = &defs[which];
            let coerced = coerce_lenient(def, value.clone());
            proptest::prop_assert_eq!(needs_coercion(def, &value), coerced != value, "{} {}", def.name, value);
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..3).prop_map(Value::from),
            prop::sample::select(vec!["true", "False", "x", ""]).prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec!["value", "primary", "givenName", "other"]),
                        inner
                    ),
                    0..3
                )
                .prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    #[test]
    fn only_eq_conjunctions_make_an_element() {
        let emails = complex(
            "emails",
            true,
            &[
                ("value", AttributeType::String),
                ("type", AttributeType::String),
                ("primary", AttributeType::Boolean),
            ],
        );
        let make = |f: &str| element_from_filter(&parse_filter(f).unwrap(), &emails);
        assert_eq!(
            Value::Object(make(r#"Type eq "work""#).unwrap()),
            serde_json::json!({"type": "work"})
        );
        assert_eq!(
            Value::Object(make(r#"type eq "work" and primary eq true"#).unwrap()),
            serde_json::json!({"type": "work", "primary": true})
        );
        for f in [
            r#"type eq "work" or type eq "home""#,
            r#"type co "work""#,
            r#"type pr"#,
            r#"not (type eq "work")"#,
            r#"nosuch eq "x""#,
            r#"type eq null"#,
            r#"type eq "work" and type eq "home""#,
        ] {
            assert_eq!(make(f), None, "{f}");
        }
    }
}
