//! Properties of filter evaluation over random resources and random filters
//! (RFC 7644 section 3.4.2.2): the logical operators are Boolean, `ne` is `not eq`, `eq null`
//! is `not pr`, a value filter is "some value matches", string equality is the shared folding
//! function's, and nothing panics whatever the resource holds.

use proptest::prelude::*;
use scim_filter::eval::{UnknownAttributes, matches_value};
use scim_filter::{
    CompValue, CompareOp, Comparison, CompiledFilter, Filter, ValuePath, parse_filter,
};
use scim_schema::{AttrPath, ResourceSchema, Schema, SchemaExtension, fold_case, text_eq};
use serde_json::{Map, Number, Value, json};
use std::sync::{Arc, LazyLock};

const WORKPLACE: &str = "urn:example:params:scim:schemas:extension:workplace:2.0:User";
const ENTERPRISE: &str = scim_schema::core::ENTERPRISE_USER;

static SCHEMA: LazyLock<ResourceSchema> = LazyLock::new(|| {
    let workplace: Schema = serde_json::from_value(json!({
        "id": WORKPLACE,
        "attributes": [
            { "name": "floor", "type": "integer" },
            { "name": "deskRatio", "type": "decimal" },
            { "name": "badgeId", "type": "string", "caseExact": true },
            { "name": "badgePhoto", "type": "binary" },
            { "name": "accessZones", "type": "string", "multiValued": true }
        ]
    }))
    .expect("the workplace extension is a valid schema");
    let user = scim_schema::core::user();
    let mut resource_type = user.resource_type().clone();
    resource_type.schema_extensions.push(SchemaExtension {
        schema: WORKPLACE.to_owned(),
        required: false,
    });
    let mut extensions: Vec<(Arc<Schema>, bool)> = user
        .extensions()
        .map(|(s, required)| (Arc::new(s.clone()), required))
        .collect();
    extensions.push((Arc::new(workplace), false));
    ResourceSchema::new(
        resource_type,
        Arc::new(user.core().clone()),
        extensions,
        Arc::new(user.common().to_vec()),
    )
});

/// Paths of every type, single- and multi-valued, in the core, the common attributes and two
/// extensions, plus unknown ones (errors in strict mode, schemaless in lenient mode).
const PATHS: &[&str] = &[
    "userName",
    "id",
    "title",
    "active",
    "name",
    "name.givenName",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "meta.lastModified",
    "floor",
    "deskRatio",
    "badgeId",
    "badgePhoto",
    "accessZones",
    "employeeNumber",
    "manager.value",
    "x509Certificates.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "unknownAttr",
    "name.unknownSub",
    "urn:example:unknown:2.0:User:thing",
];

const EMAIL_SUB_PATHS: &[&str] = &["value", "type", "primary", "display", "unknownSub"];

/// A small alphabet, with case pairs and non-ASCII letters, so that random strings collide.
const TEXT: &str = "[aAbBéÉK\u{212A}@.]{0,3}";

const DATE_TIMES: &[&str] = &[
    "2011-05-13T04:42:34Z",
    "2011-05-13T06:42:34.000+02:00",
    "2011-05-13T04:42:34.5Z",
    "2020-01-01T00:00:00Z",
    "not a date",
];

fn path_in(paths: &'static [&'static str]) -> impl Strategy<Value = AttrPath> {
    prop::sample::select(paths).prop_map(|p| AttrPath::parse(p).expect("test paths are valid"))
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(
        &[
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ][..],
    )
}

fn literal() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        (-3i64..4).prop_map(|n| CompValue::Number(n.into())),
        (-3.0f64..4.0).prop_filter_map("finite", |f| Number::from_f64(f).map(CompValue::Number)),
        TEXT.prop_map(CompValue::String),
        prop::sample::select(DATE_TIMES).prop_map(|s| CompValue::String(s.to_owned())),
    ]
}

fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(|n| json!(n)),
        (-3.0f64..4.0).prop_map(|f| json!(f)),
        TEXT.prop_map(Value::String),
        prop::sample::select(DATE_TIMES).prop_map(|s| json!(s)),
    ]
}

/// Any JSON an attribute could hold, well-typed or not: leaves, arrays, objects, arrays of
/// objects.
fn attribute_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => leaf_value(),
        1 => prop::collection::vec(leaf_value(), 0..3).prop_map(Value::Array),
        2 => object_value(),
        2 => prop::collection::vec(object_value(), 0..3).prop_map(Value::Array),
    ]
}

/// An object with the sub-attribute names the paths use, and one in another case.
fn object_value() -> impl Strategy<Value = Value> {
    let member = prop::sample::select(
        &[
            "value",
            "type",
            "primary",
            "display",
            "givenName",
            "lastModified",
            "thing",
            "Value",
        ][..],
    );
    prop::collection::vec((member, leaf_value()), 0..4).prop_map(|members| {
        Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    })
}

fn members(names: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    let name = prop::sample::select(names).prop_flat_map(|n| {
        // Stored keys are usually in the schema's case; sometimes not.
        prop_oneof![3 => Just(n.to_owned()), 1 => Just(n.to_uppercase())]
    });
    prop::collection::vec((name, attribute_value()), 0..6).prop_map(|m| m.into_iter().collect())
}

fn resource() -> impl Strategy<Value = Value> {
    let top = &[
        "userName",
        "id",
        "title",
        "active",
        "name",
        "emails",
        "meta",
        "x509Certificates",
        "unknownAttr",
    ];
    (
        members(top),
        members(&["employeeNumber", "manager"]),
        members(&["floor", "deskRatio", "badgeId", "badgePhoto", "accessZones"]),
        members(&["thing"]),
    )
        .prop_map(|(mut top, enterprise, workplace, unknown)| {
            top.insert(ENTERPRISE.to_owned(), Value::Object(enterprise));
            top.insert(WORKPLACE.to_owned(), Value::Object(workplace));
            top.insert(
                "urn:example:unknown:2.0:User".to_owned(),
                Value::Object(unknown),
            );
            Value::Object(top)
        })
}

fn comparison(paths: &'static [&'static str]) -> impl Strategy<Value = Filter> {
    (path_in(paths), op(), literal())
        .prop_map(|(path, op, value)| Filter::Compare(Comparison { path, op, value }))
}

fn connectives(leaf: impl Strategy<Value = Filter> + 'static) -> impl Strategy<Value = Filter> {
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// A value filter over `emails` sub-attributes.
fn email_filter() -> impl Strategy<Value = Filter> {
    connectives(prop_oneof![
        3 => comparison(EMAIL_SUB_PATHS),
        1 => path_in(EMAIL_SUB_PATHS).prop_map(Filter::Present),
    ])
}

fn filter() -> impl Strategy<Value = Filter> {
    connectives(prop_oneof![
        4 => comparison(PATHS),
        1 => path_in(PATHS).prop_map(Filter::Present),
        1 => email_filter().prop_map(|inner| Filter::ValuePath(ValuePath {
            attr: AttrPath::simple("emails"),
            filter: Box::new(inner),
        })),
    ])
}

fn mode() -> impl Strategy<Value = UnknownAttributes> {
    prop_oneof![
        Just(UnknownAttributes::Strict),
        Just(UnknownAttributes::Lenient)
    ]
}

fn compile(filter: &Filter, mode: UnknownAttributes) -> Option<CompiledFilter> {
    CompiledFilter::with_mode(filter, &SCHEMA, mode).ok()
}

fn not(f: &Filter) -> Filter {
    Filter::Not(Box::new(f.clone()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn logical_operators_are_boolean(
        f in filter(),
        g in filter(),
        resource in resource(),
        mode in mode(),
    ) {
        let and = Filter::And(Box::new(f.clone()), Box::new(g.clone()));
        let or = Filter::Or(Box::new(f.clone()), Box::new(g.clone()));
        match (compile(&f, mode), compile(&g, mode)) {
            (Some(cf), Some(cg)) => {
                let (a, b) = (cf.matches(&resource), cg.matches(&resource));
                prop_assert_eq!(compile(&not(&f), mode).unwrap().matches(&resource), !a);
                prop_assert_eq!(compile(&and, mode).unwrap().matches(&resource), a && b);
                prop_assert_eq!(compile(&or, mode).unwrap().matches(&resource), a || b);
            }
            (cf, cg) => {
                // An error anywhere is an error of the whole filter.
                prop_assert_eq!(compile(&not(&f), mode).is_some(), cf.is_some());
                prop_assert!(compile(&and, mode).is_none());
                prop_assert!(compile(&or, mode).is_none());
                let _ = cg;
            }
        }
    }

    #[test]
    fn ne_is_not_eq_and_eq_null_is_not_pr(
        path in path_in(PATHS),
        value in literal(),
        resource in resource(),
        mode in mode(),
    ) {
        let compare = |op| Filter::Compare(Comparison { path: path.clone(), op, value: value.clone() });
        let ne = compile(&compare(CompareOp::Ne), mode);
        let not_eq = compile(&not(&compare(CompareOp::Eq)), mode);
        prop_assert_eq!(ne.is_some(), not_eq.is_some());
        if let (Some(ne), Some(not_eq)) = (ne, not_eq) {
            prop_assert_eq!(ne.matches(&resource), not_eq.matches(&resource));
        }
        let eq_null = Filter::Compare(Comparison { path: path.clone(), op: CompareOp::Eq, value: CompValue::Null });
        if let (Some(eq_null), Some(pr)) = (compile(&eq_null, mode), compile(&Filter::Present(path.clone()), mode)) {
            prop_assert_eq!(eq_null.matches(&resource), !pr.matches(&resource));
        }
    }

    /// `emails[f]` matches exactly when some email (an object) matches `f` on its own.
    #[test]
    fn a_value_filter_is_some_value_matching(inner in email_filter(), emails in attribute_value()) {
        let emails_def = SCHEMA.resolve(&AttrPath::simple("emails")).unwrap().attribute;
        let whole = Filter::ValuePath(ValuePath { attr: AttrPath::simple("emails"), filter: Box::new(inner.clone()) });
        let resource = json!({ "emails": emails.clone() });
        let elements: Vec<&Value> = match &emails {
            Value::Array(values) => values.iter().collect(),
            other => vec![other],
        };
        match CompiledFilter::new(&whole, &SCHEMA) {
            Ok(compiled) => {
                let mut expected = false;
                for element in elements.into_iter().filter(|e| e.is_object()) {
                    expected |= matches_value(&inner, element, emails_def).unwrap();
                }
                prop_assert_eq!(compiled.matches(&resource), expected);
            }
            Err(e) => {
                let value_error = matches_value(&inner, &json!({}), emails_def).unwrap_err();
                prop_assert_eq!(e, value_error);
            }
        }
    }

    /// In-process evaluation folds exactly as the stores do (`text_eq`, `fold_case`).
    #[test]
    fn string_comparison_is_the_shared_folding(stored in TEXT, literal in TEXT) {
        let resource = json!({ "userName": stored, WORKPLACE: { "badgeId": stored } });
        let eval = |text: String| {
            let parsed = parse_filter(&text).unwrap();
            CompiledFilter::new(&parsed, &SCHEMA).unwrap().matches(&resource)
        };
        let quoted = serde_json::to_string(&literal).unwrap();
        prop_assert_eq!(eval(format!("userName eq {quoted}")), text_eq(&stored, &literal, false));
        prop_assert_eq!(eval(format!("badgeId eq {quoted}")), text_eq(&stored, &literal, true));
        let (folded, needle) = (fold_case(&stored), fold_case(&literal));
        prop_assert_eq!(eval(format!("userName co {quoted}")), folded.contains(needle.as_ref()));
        prop_assert_eq!(eval(format!("userName sw {quoted}")), folded.starts_with(needle.as_ref()));
        prop_assert_eq!(eval(format!("userName ew {quoted}")), folded.ends_with(needle.as_ref()));
        prop_assert_eq!(eval(format!("userName gt {quoted}")), folded > needle);
        prop_assert_eq!(eval(format!("badgeId le {quoted}")), stored <= literal);
    }

    /// The canonical printing of a filter evaluates as the filter does.
    #[test]
    fn printing_and_reparsing_preserves_meaning(f in filter(), resource in resource(), mode in mode()) {
        if let Some(compiled) = compile(&f, mode) {
            let reparsed = parse_filter(&f.to_string()).unwrap();
            prop_assert_eq!(compile(&reparsed, mode).unwrap().matches(&resource), compiled.matches(&resource));
        }
    }

    /// Arbitrary paths, including nonsense and absent schemas, in lenient mode: no panic.
    #[test]
    fn lenient_evaluation_never_panics(
        path in "(urn:[a-z:.0-9]{1,12}:)?[a-zA-Z][a-zA-Z0-9$_-]{0,8}(\\.[a-zA-Z$][a-zA-Z0-9_-]{0,6})?",
        op in op(),
        value in literal(),
        resource in resource(),
    ) {
        if let Ok(path) = AttrPath::parse(&path) {
            let f = Filter::Compare(Comparison { path: path.clone(), op, value });
            if let Some(compiled) = compile(&f, UnknownAttributes::Lenient) {
                let _ = compiled.matches(&resource);
                let _ = compiled.matches(&Value::Null);
            }
            if let Some(compiled) = compile(&Filter::Present(path), UnknownAttributes::Lenient) {
                let _ = compiled.matches(&resource);
            }
        }
    }
}
