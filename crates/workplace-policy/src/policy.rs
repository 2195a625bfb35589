//! Policies as data: [`Rule`]s that select people with a SCIM filter (RFC 7644 section 3.4.2.2)
//! and resources with a [`ResourceSelector`], allow or deny, and set [`Limits`]; a [`PolicySet`]
//! of them with the tenant default; and [`CompiledPolicySet`], the set checked, its filters
//! compiled once, and its rules indexed by what they select so that a decision only runs the
//! filters of rules that can concern the resource.
//!
//! # Semantics
//!
//! - A rule **applies** to a (person, resource) pair when the resource passes its selector and
//!   the person's SCIM document matches its people filter (absent: everyone).
//! - **Selectors** combine dimensions with *and*, values within a dimension with *or*, and an
//!   empty dimension places no constraint: `{kinds: [desk], neighbourhoods: [mkt, sales]}` is
//!   "desks in Marketing or Sales"; an empty selector is every resource.
//! - **Limits of an allow rule** are the terms of the permission: the rule allows only requests
//!   within all of them. **Limits of a deny rule** make it a cap: it denies only requests beyond
//!   one of them ("contractors may not book more than 4 hours", whichever rule allows them); a
//!   deny rule without limits denies every request it applies to.
//! - **Deny beats allow**: a request is allowed when no deny rule triggers and some allow rule
//!   allows it. When allow rules apply but all refuse on limits, it is denied. When no allow rule
//!   applies and no deny rule triggers, the tenant default decides.

use crate::error::PolicyError;
use crate::model::{Resource, ResourceKind};
use crate::time::{MAX_UTC_OFFSET, Seconds};
use scim_filter::{CompiledFilter, Filter, FilterError, parse_filter};
use scim_schema::{AttrPath, ResourceSchema};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Effect {
    /// Grants access (within the rule's limits).
    Allow,
    /// Refuses access (beyond the rule's limits, if it has any); beats any allow.
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        })
    }
}

/// Which resources a rule is about. Dimensions combine with *and*, values within one with *or*;
/// an empty dimension selects everything (see the [module documentation](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSelector {
    /// Resource kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<ResourceKind>,
    /// Site ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
    /// Floor ids; a resource on no floor never matches a non-empty list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floors: Vec<String>,
    /// Neighbourhood ids; a resource in no neighbourhood never matches a non-empty list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbourhoods: Vec<String>,
    /// Named resources, by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

impl ResourceSelector {
    /// Whether `resource` is selected.
    pub fn matches(&self, resource: &Resource) -> bool {
        fn within(list: &[String], value: Option<&String>) -> bool {
            list.is_empty() || value.is_some_and(|v| list.contains(v))
        }
        (self.kinds.is_empty() || self.kinds.contains(&resource.kind))
            && within(&self.sites, Some(&resource.site))
            && within(&self.floors, resource.floor.as_ref())
            && within(&self.neighbourhoods, resource.neighbourhood.as_ref())
            && within(&self.resources, Some(&resource.id))
    }

    /// Whether the selector selects every resource.
    pub fn is_everything(&self) -> bool {
        self.kinds.is_empty()
            && self.sites.is_empty()
            && self.floors.is_empty()
            && self.neighbourhoods.is_empty()
            && self.resources.is_empty()
    }
}

/// The limits of a rule; `None` is no limit. Weeks and days are the tenant's
/// ([`PolicySet::utc_offset_seconds`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// How far ahead a booking may start, in calendar days: 0 is today only, 14 is up to two
    /// weeks from today. Measured from when the booking is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_days_ahead: Option<u32>,
    /// The longest booking, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_seconds: Option<Seconds>,
    /// How many bookings of the resources the rule selects a person may have starting in one
    /// ISO 8601 week (Monday to Sunday), this one included; cancelled bookings do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bookings_per_week: Option<u32>,
    /// How many live bookings of the resources the rule selects a person may hold at the same
    /// time (overlapping this one), this one included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
}

impl Limits {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// One rule: who (people filter), what (resource selector), allow or deny, within which limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Unique within the policy set; reasons and cancellations cite it.
    pub id: String,
    /// For people to read, e.g. `Directors may book the Boardroom`.
    pub name: String,
    /// Allow or deny.
    pub effect: Effect,
    /// A SCIM filter over the user document (RFC 7644 section 3.4.2.2), e.g.
    /// `groups[display eq "Parking"]`; absent means everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people: Option<String>,
    /// The resources the rule is about.
    #[serde(default)]
    pub resources: ResourceSelector,
    /// Its limits.
    #[serde(default)]
    pub limits: Limits,
}

/// A tenant's policies: rules in order and the default for requests no rule decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySet {
    /// The rules. Order does not change decisions (deny beats allow whatever the order); it is
    /// the order reasons are given in.
    pub rules: Vec<Rule>,
    /// What applies when no rule allows and none denies: `deny` means no access without a rule.
    pub default: Effect,
    /// The tenant's time zone as a fixed offset east of UTC, in seconds, for calendar limits
    /// (days ahead, ISO weeks). Default 0 (UTC).
    #[serde(default)]
    pub utc_offset_seconds: i32,
}

/// A rule ready to apply: its people filter compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) rule: Rule,
    pub(crate) people: Option<CompiledFilter>,
}

/// A [`PolicySet`] checked and compiled against the user schema: each people filter parsed and
/// compiled once, and the rules indexed by kind, site, floor, neighbourhood and resource id.
///
/// Selecting the rules that can concern a resource costs a few bitset intersections, whatever
/// the number of rules; only those rules' filters then run against the person.
#[derive(Debug, Clone)]
pub struct CompiledPolicySet {
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) default: Effect,
    pub(crate) utc_offset: i32,
    index: RuleIndex,
    source: PolicySet,
}

impl CompiledPolicySet {
    /// Compiles `set` for users of the RFC 7643 core User resource type (with the Enterprise
    /// User extension), [`scim_schema::core::user`].
    pub fn compile(set: &PolicySet) -> Result<CompiledPolicySet, PolicyError> {
        CompiledPolicySet::compile_with(set, &scim_schema::core::user())
    }

    /// Compiles `set` for users of `schema`: the User resource type as the tenant serves it, so
    /// that filters may name operator extensions (RFC 7643 section 3.3). Filters naming
    /// attributes the schema does not define are refused, which catches misspellings before a
    /// rule silently matches nobody.
    pub fn compile_with(
        set: &PolicySet,
        schema: &ResourceSchema,
    ) -> Result<CompiledPolicySet, PolicyError> {
        if !(-MAX_UTC_OFFSET..=MAX_UTC_OFFSET).contains(&set.utc_offset_seconds) {
            return Err(PolicyError::InvalidUtcOffset {
                seconds: set.utc_offset_seconds,
            });
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(set.rules.len());
        let mut rules = Vec::with_capacity(set.rules.len());
        for (index, rule) in set.rules.iter().enumerate() {
            if rule.id.is_empty() {
                return Err(PolicyError::EmptyRuleId { index });
            }
            if let Some(&first) = seen.get(rule.id.as_str()) {
                return Err(PolicyError::DuplicateRuleId {
                    id: rule.id.clone(),
                    first,
                    second: index,
                });
            }
            seen.insert(&rule.id, index);
            let people = match rule.people.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(text) => Some(compile_people_filter(&rule.id, text, schema)?),
            };
            rules.push(CompiledRule {
                rule: rule.clone(),
                people,
            });
        }
        let index = RuleIndex::build(&rules);
        Ok(CompiledPolicySet {
            rules,
            default: set.default,
            utc_offset: set.utc_offset_seconds,
            index,
            source: set.clone(),
        })
    }

    /// The policy set this was compiled from.
    pub fn policy_set(&self) -> &PolicySet {
        &self.source
    }

    /// The rule with id `id`.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().map(|r| &r.rule).find(|r| r.id == id)
    }

    /// The positions of the rules whose selector selects `resource`, ascending; for a resource
    /// unknown to the catalog (`None`), the rules that select every resource.
    pub(crate) fn candidates(&self, resource: Option<&Resource>) -> impl Iterator<Item = usize> {
        match resource {
            Some(resource) => self.index.candidates(resource),
            None => self.index.everything.clone(),
        }
        .into_ones()
    }
}

impl Rule {
    /// The attribute paths its `people` filter names, those inside a value filter
    /// (`emails[type eq "work"]`) as sub-attributes of the outer one; none without a filter,
    /// or when the filter does not parse (compiling it says why). A store asks, before a
    /// tenant's schemas change, whether the change retypes what a rule compares.
    pub fn people_paths(&self) -> Vec<AttrPath> {
        let mut paths = Vec::new();
        if let Some(Ok(filter)) = self.people.as_deref().map(|t| parse_filter(t.trim())) {
            paths_of(&filter, None, &mut paths);
        }
        paths
    }
}

fn paths_of(filter: &Filter, within: Option<&AttrPath>, out: &mut Vec<AttrPath>) {
    let nested = |path: &AttrPath| match within {
        Some(outer) => AttrPath {
            sub_attr: Some(path.name.clone()),
            ..outer.clone()
        },
        None => path.clone(),
    };
    match filter {
        Filter::Compare(comparison) => out.push(nested(&comparison.path)),
        Filter::Present(path) => out.push(nested(path)),
        Filter::And(a, b) | Filter::Or(a, b) => {
            paths_of(a, within, out);
            paths_of(b, within, out);
        }
        Filter::Not(inner) => paths_of(inner, within, out),
        Filter::ValuePath(value_path) => {
            out.push(value_path.attr.clone());
            paths_of(&value_path.filter, Some(&value_path.attr), out);
        }
    }
}

fn compile_people_filter(
    rule: &str,
    text: &str,
    schema: &ResourceSchema,
) -> Result<CompiledFilter, PolicyError> {
    let invalid = |source: FilterError| {
        let offset = match &source {
            FilterError::Syntax { offset, .. } | FilterError::TooDeep { offset, .. } => {
                Some(*offset)
            }
            // The compiler names the path as written; find where it is written.
            FilterError::NotApplicable { path, .. } => text.find(path.as_str()),
            // Too long, or (never from the parser) a search parameter: no one place.
            _ => None,
        };
        PolicyError::InvalidFilter {
            rule: rule.to_owned(),
            filter: text.to_owned(),
            offset,
            source,
        }
    };
    let filter = parse_filter(text).map_err(invalid)?;
    CompiledFilter::new(&filter, schema).map_err(invalid)
}

// ---------------------------------------------------------------------------------------------
// The rule index

/// A set of rule positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleBits {
    words: Vec<u64>,
}

impl RuleBits {
    fn empty(len: usize) -> Self {
        RuleBits {
            words: vec![0; len.div_ceil(64)],
        }
    }

    fn full(len: usize) -> Self {
        let mut bits = RuleBits::empty(len);
        for i in 0..len {
            bits.insert(i);
        }
        bits
    }

    fn insert(&mut self, i: usize) {
        if let Some(word) = self.words.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    /// `self &= (any | specific)`.
    fn intersect_with_union(&mut self, any: &RuleBits, specific: Option<&RuleBits>) {
        for (i, word) in self.words.iter_mut().enumerate() {
            let a = any.words.get(i).copied().unwrap_or(0);
            let s = specific.and_then(|b| b.words.get(i)).copied().unwrap_or(0);
            *word &= a | s;
        }
    }

    fn into_ones(self) -> impl Iterator<Item = usize> {
        self.words
            .into_iter()
            .enumerate()
            .flat_map(|(w, mut word)| {
                std::iter::from_fn(move || {
                    if word == 0 {
                        return None;
                    }
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    Some(w * 64 + bit)
                })
            })
    }
}

/// The rules that constrain one dimension of a selector: those that do not (`any`) and, per
/// value, those that name it.
#[derive(Debug, Clone)]
struct Dimension {
    any: RuleBits,
    by_value: HashMap<String, RuleBits>,
}

impl Dimension {
    fn build<'r>(
        rules: &'r [CompiledRule],
        values_of: impl Fn(&'r ResourceSelector) -> Vec<&'r str>,
    ) -> Dimension {
        let len = rules.len();
        let mut any = RuleBits::empty(len);
        let mut by_value: HashMap<String, RuleBits> = HashMap::new();
        for (i, compiled) in rules.iter().enumerate() {
            let values = values_of(&compiled.rule.resources);
            if values.is_empty() {
                any.insert(i);
            }
            for value in values {
                by_value
                    .entry(value.to_owned())
                    .or_insert_with(|| RuleBits::empty(len))
                    .insert(i);
            }
        }
        Dimension { any, by_value }
    }

    fn narrow(&self, candidates: &mut RuleBits, value: Option<&str>) {
        candidates.intersect_with_union(&self.any, value.and_then(|v| self.by_value.get(v)));
    }
}

/// Rules indexed by every selector dimension. A rule is a candidate for a resource exactly when
/// each of its dimensions is empty or names the resource's value, which is
/// [`ResourceSelector::matches`]; so the index returns exactly the rules whose selector matches.
#[derive(Debug, Clone)]
struct RuleIndex {
    len: usize,
    /// The rules whose selector is empty.
    everything: RuleBits,
    kinds: Dimension,
    sites: Dimension,
    floors: Dimension,
    neighbourhoods: Dimension,
    resources: Dimension,
}

impl RuleIndex {
    fn build(rules: &[CompiledRule]) -> RuleIndex {
        fn strs(list: &[String]) -> Vec<&str> {
            list.iter().map(String::as_str).collect()
        }
        let mut everything = RuleBits::empty(rules.len());
        for (i, compiled) in rules.iter().enumerate() {
            if compiled.rule.resources.is_everything() {
                everything.insert(i);
            }
        }
        RuleIndex {
            len: rules.len(),
            everything,
            kinds: Dimension::build(rules, |s| {
                s.kinds.iter().map(ResourceKind::as_str).collect()
            }),
            sites: Dimension::build(rules, |s| strs(&s.sites)),
            floors: Dimension::build(rules, |s| strs(&s.floors)),
            neighbourhoods: Dimension::build(rules, |s| strs(&s.neighbourhoods)),
            resources: Dimension::build(rules, |s| strs(&s.resources)),
        }
    }

    fn candidates(&self, resource: &Resource) -> RuleBits {
        let mut bits = RuleBits::full(self.len);
        self.kinds.narrow(&mut bits, Some(resource.kind.as_str()));
        self.sites.narrow(&mut bits, Some(&resource.site));
        self.floors.narrow(&mut bits, resource.floor.as_deref());
        self.neighbourhoods
            .narrow(&mut bits, resource.neighbourhood.as_deref());
        self.resources.narrow(&mut bits, Some(&resource.id));
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(id: &str, people: Option<&str>) -> Rule {
        Rule {
            id: id.into(),
            name: id.into(),
            effect: Effect::Allow,
            people: people.map(Into::into),
            resources: ResourceSelector::default(),
            limits: Limits::default(),
        }
    }

    fn set(rules: Vec<Rule>) -> PolicySet {
        PolicySet {
            rules,
            default: Effect::Deny,
            utc_offset_seconds: 0,
        }
    }

    #[test]
    fn a_bad_filter_names_the_rule_and_the_offset() {
        let err = CompiledPolicySet::compile(&set(vec![
            rule("ok", Some("title co \"Director\"")),
            rule("bad", Some("title co \"Director\" and")),
        ]))
        .unwrap_err();
        let PolicyError::InvalidFilter { rule, offset, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(rule, "bad");
        assert_eq!(*offset, Some(23));
        assert!(err.to_string().starts_with(
            "rule \"bad\": people filter \"title co \\\"Director\\\" and\" (at byte 23): invalid filter at byte 23"
        ), "{err}");
    }

    #[test]
    fn an_unknown_attribute_is_refused_with_its_position() {
        let err = CompiledPolicySet::compile(&set(vec![rule(
            "typo",
            Some("active eq true and titel eq \"x\""),
        )]))
        .unwrap_err();
        let PolicyError::InvalidFilter { offset, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*offset, Some(19), "{err}");
    }

    #[test]
    fn rule_ids_are_unique_and_non_empty() {
        assert_eq!(
            CompiledPolicySet::compile(&set(vec![rule("a", None), rule("a", None)])).unwrap_err(),
            PolicyError::DuplicateRuleId {
                id: "a".into(),
                first: 0,
                second: 1
            }
        );
        assert_eq!(
            CompiledPolicySet::compile(&set(vec![rule("", None)])).unwrap_err(),
            PolicyError::EmptyRuleId { index: 0 }
        );
        let mut bad_offset = set(vec![]);
        bad_offset.utc_offset_seconds = 19 * 3600;
        assert!(matches!(
            CompiledPolicySet::compile(&bad_offset),
            Err(PolicyError::InvalidUtcOffset { .. })
        ));
    }

    #[test]
    fn policy_sets_deserialise_strictly() {
        let json = serde_json::json!({
            "rules": [{
                "id": "r1", "name": "Parking for badge holders", "effect": "allow",
                "people": "groups[display eq \"Parking\"]",
                "resources": {"kinds": ["parking"], "sites": ["lon"]},
                "limits": {"maxDaysAhead": 7, "maxBookingsPerWeek": 3}
            }],
            "default": "deny"
        });
        let parsed: PolicySet = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.rules[0].limits.max_days_ahead, Some(7));
        assert_eq!(parsed.rules[0].resources.kinds, [ResourceKind::Parking]);
        let typo = serde_json::json!({"rules": [], "default": "deny", "utcOffset": 3600});
        assert!(serde_json::from_value::<PolicySet>(typo).is_err());
    }

    fn arb_selector() -> impl Strategy<Value = ResourceSelector> {
        let pick = |options: &'static [&'static str]| {
            proptest::sample::subsequence(options, 0..=options.len())
                .prop_map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
        };
        (
            proptest::sample::subsequence(
                vec![
                    ResourceKind::Desk,
                    ResourceKind::Room,
                    ResourceKind::Custom("bike".into()),
                ],
                0..=2,
            ),
            pick(&["s1", "s2"]),
            pick(&["f1", "f2"]),
            pick(&["n1", "n2"]),
            pick(&["r1", "r2", "r3"]),
        )
            .prop_map(|(kinds, sites, floors, neighbourhoods, resources)| {
                ResourceSelector {
                    kinds,
                    sites,
                    floors,
                    neighbourhoods,
                    resources,
                }
            })
    }

    fn arb_resource() -> impl Strategy<Value = Resource> {
        (
            prop_oneof![
                Just(ResourceKind::Desk),
                Just(ResourceKind::Room),
                Just(ResourceKind::Custom("bike".into()))
            ],
            prop_oneof![Just("s1"), Just("s2")],
            proptest::option::of(prop_oneof![Just("f1"), Just("f2")]),
            proptest::option::of(prop_oneof![Just("n1"), Just("n2")]),
            prop_oneof![Just("r1"), Just("r2"), Just("r3")],
        )
            .prop_map(|(kind, site, floor, zone, id)| Resource {
                id: id.into(),
                kind,
                site: site.into(),
                floor: floor.map(Into::into),
                neighbourhood: zone.map(Into::into),
                name: id.into(),
                capacity: 1,
            })
    }

    proptest! {
        #[test]
        fn the_index_returns_exactly_the_matching_selectors(
            selectors in proptest::collection::vec(arb_selector(), 0..150),
            resource in arb_resource(),
        ) {
            let rules: Vec<Rule> = selectors
                .iter()
                .enumerate()
                .map(|(i, s)| Rule { resources: s.clone(), ..rule(&format!("r{i}"), None) })
                .collect();
            let compiled = CompiledPolicySet::compile(&set(rules)).unwrap();
            let from_index: Vec<usize> = compiled.candidates(Some(&resource)).collect();
            let direct: Vec<usize> = selectors
                .iter()
                .enumerate()
                .filter(|(_, s)| s.matches(&resource))
                .map(|(i, _)| i)
                .collect();
            prop_assert_eq!(from_index, direct);
        }
    }
}
