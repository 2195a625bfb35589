//! The values a PATCH request writes to secret attributes (`returned: never` or `writeOnly`,
//! RFC 7643 section 7; `password`, RFC 7643 section 4.1.1), found the way [`crate::apply()`]
//! will read the request: paths and path-less keys resolved against the schema with the same
//! dialects (trimmed keys, paths as keys, URN-qualified names, extension objects), and each
//! value coerced as apply coerces it (Entra ID's one-element arrays and `{"value": x}`
//! wrappers unwrapped).
//!
//! A server hashes a password here, after parsing and before the request reaches its store:
//! hashing the raw message instead misses every spelling a dialect accepts (`" password"`,
//! `["clear"]`), and those would be stored in clear text.

use crate::apply::{Cx, Engine, Target};
use crate::dialects;
use crate::error::{Location, PatchError};
use crate::request::{Op, PatchOptions, PatchRequest};
use scim_schema::{AttributeDef, ResourceSchema, Schema};
use serde_json::Value;

/// One value a PATCH request would write to (or, for a `remove` carrying a value, compare with)
/// a secret attribute.
#[derive(Debug)]
pub struct SecretValue<'r, 's> {
    /// The operation: a `remove` with a value compares that value with the stored one.
    pub op: Op,
    /// Where the value is in the message, for errors (`Operations[2].value.password`).
    pub at: Location,
    /// The extension whose object holds the attribute, or `None` for a core attribute.
    pub extension: Option<&'s Schema>,
    /// The secret attribute written (for a sub-attribute write, the sub-attribute).
    pub attribute: &'s AttributeDef,
    /// Whether the value is the attribute's whole value (not a sub-attribute or a filtered
    /// element of it).
    pub whole: bool,
    /// The value, already coerced as [`crate::apply()`] will coerce it: replace it in place and
    /// the request writes the replacement.
    pub value: &'r mut Value,
}

/// Every value `request` would write to a secret attribute of `schema`, in message order.
///
/// Fails only where [`crate::apply()`] would fail on the same request (a path that names no
/// attribute, a path-less value that is not an object): such a request is refused before any
/// secret is looked at.
pub fn secret_values<'r, 's>(
    request: &'r mut PatchRequest,
    schema: &'s ResourceSchema,
    options: &'s PatchOptions,
) -> Result<Vec<SecretValue<'r, 's>>, PatchError> {
    let engine = Engine::resolver(schema, options);
    let mut found = Vec::new();
    for operation in request.operations.iter_mut() {
        let op = operation.op;
        let index = operation.index;
        let Some(value) = operation.value.as_mut() else {
            continue;
        };
        match &operation.path {
            Some(path) => {
                let text = operation
                    .path_text
                    .clone()
                    .unwrap_or_else(|| path.to_string());
                let cx = Cx::new(op, index, options, &text, false);
                let target = engine.resolve(path, &cx)?;
                collect(&engine, &cx, target, value, &mut found)?;
            }
            None if op == Op::Remove => {}
            None => {
                let Value::Object(attributes) = value else {
                    continue;
                };
                for (key, value) in attributes.iter_mut() {
                    if key.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    let cx = Cx::new(op, index, options, key, true);
                    let target = match engine.extension_named(key) {
                        Some((extension, required)) => Target::Extension(extension, required),
                        None => engine.resolve(&engine.key_path(&cx, key, None)?, &cx)?,
                    };
                    collect(&engine, &cx, target, value, &mut found)?;
                }
            }
        }
    }
    Ok(found)
}

/// Adds what `value`, written to `target`, writes to secret attributes.
fn collect<'r, 's>(
    engine: &Engine<'s>,
    cx: &Cx<'_>,
    target: Target<'s>,
    value: &'r mut Value,
    found: &mut Vec<SecretValue<'r, 's>>,
) -> Result<(), PatchError> {
    match target {
        Target::Attribute(t) => {
            let sub = t.sub.or(t.filter_sub);
            let secret = match sub {
                Some(sub) if sub.is_secret() => sub,
                _ if t.attr.is_secret() => t.attr,
                _ => return Ok(()),
            };
            let whole = sub.is_none() && !t.has_filter();
            *value = dialects::coerce(secret, std::mem::take(value), cx.options);
            found.push(SecretValue {
                op: cx.op,
                at: cx.value_at.clone(),
                extension: t.extension,
                attribute: secret,
                whole,
                value,
            });
            Ok(())
        }
        // An extension's whole object: its keys are its attributes.
        Target::Extension(extension, _) => {
            let Value::Object(attributes) = value else {
                return Ok(());
            };
            for (key, value) in attributes.iter_mut() {
                if key.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let inner = cx.extension_key(extension, key);
                let path = engine.key_path(&inner, key, Some(extension))?;
                let target = engine.resolve(&path, &inner)?;
                collect(engine, &inner, target, value, found)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secrets_of(message: Value, options: &PatchOptions) -> Vec<(String, Value)> {
        let schema = scim_schema::core::user();
        let mut request = PatchRequest::from_json(&message, options).unwrap();
        secret_values(&mut request, &schema, options)
            .unwrap()
            .into_iter()
            .map(|s| (s.attribute.name.clone(), s.value.clone()))
            .collect()
    }

    fn patch(operations: Value) -> Value {
        json!({"schemas": [crate::PATCH_OP_URN], "Operations": operations})
    }

    #[test]
    fn every_dialect_spelling_of_password_is_found_and_unwrapped() {
        let lenient = PatchOptions::lenient();
        for operations in [
            json!([{"op": "replace", "path": "password", "value": "clear"}]),
            json!([{"op": "add", "path": "PASSWORD", "value": ["clear"]}]),
            json!([{"op": "add", "path": "password", "value": [{"value": "clear"}]}]),
            json!([{"op": "replace", "value": {" password": "clear"}}]),
            json!([{"op": "replace", "value": {"password": ["clear"]}}]),
            json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": "clear"}]),
            json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:User:password": "clear"}}]),
        ] {
            let found = secrets_of(patch(operations.clone()), &lenient);
            assert_eq!(
                found,
                vec![("password".to_owned(), json!("clear"))],
                "{operations}"
            );
        }
    }

    #[test]
    fn other_attributes_are_left_alone() {
        let found = secrets_of(
            patch(json!([
                {"op": "replace", "path": "displayName", "value": "password"},
                {"op": "replace", "value": {"nickName": "password", "active": true}},
                {"op": "remove", "path": "password"},
            ])),
            &PatchOptions::lenient(),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn replacing_the_value_changes_what_apply_writes() {
        let schema = scim_schema::core::user();
        let options = PatchOptions::lenient();
        let mut request = PatchRequest::from_json(
            &patch(json!([{"op": "add", "value": {" Password": ["clear"]}}])),
            &options,
        )
        .unwrap();
        for secret in secret_values(&mut request, &schema, &options).unwrap() {
            *secret.value = json!("$argon2id$replaced");
        }
        let user = json!({"schemas": [scim_schema::core::USER], "userName": "a"});
        let out = crate::apply(&user, &schema, &request, &options).unwrap();
        assert_eq!(out.resource["password"], "$argon2id$replaced");
        assert!(!out.resource.to_string().contains("clear"));
    }
}
