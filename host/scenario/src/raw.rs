//! Stage 1: the serde types a scenario's text deserializes into. `deny_unknown_fields`
//! everywhere; [`Spanned`] wherever a later check needs the line.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) name: Spanned<String>,
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) host: Vec<RawHost>,
    #[serde(default)]
    pub(crate) plugin: Vec<RawPlugin>,
    #[serde(default)]
    pub(crate) channel: Vec<RawChannel>,
    pub(crate) run: Option<RawRun>,
    pub(crate) sweep: Option<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub(crate) name: Spanned<String>,
    pub(crate) address: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlugin {
    pub(crate) name: Spanned<String>,
    pub(crate) host: Option<Spanned<String>>,
    pub(crate) wasm: Spanned<String>,
    pub(crate) build: Option<Spanned<String>>,
    pub(crate) source: Option<Spanned<String>>,
    pub(crate) config: Option<BTreeMap<String, Spanned<toml::Value>>>,
    pub(crate) instances: Option<Spanned<toml::Value>>,
    pub(crate) memory: Option<Spanned<toml::Value>>,
    pub(crate) stack: Option<Spanned<toml::Value>>,
    pub(crate) table_elements: Option<Spanned<toml::Value>>,
    pub(crate) cpu: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChannel {
    pub(crate) from: Spanned<RawEndpoints>,
    pub(crate) to: Spanned<RawEndpoints>,
    pub(crate) slot_size: Option<Spanned<toml::Value>>,
    pub(crate) capacity: Option<Spanned<toml::Value>>,
    pub(crate) pattern: Option<Spanned<String>>,
    pub(crate) overflow: Option<Spanned<String>>,
    pub(crate) sync: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRun {
    pub(crate) backends: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) repeat: Option<Spanned<toml::Value>>,
    pub(crate) min_time: Option<Spanned<toml::Value>>,
    pub(crate) timeout: Option<Spanned<toml::Value>>,
    pub(crate) wait: Option<Spanned<String>>,
    pub(crate) verify: Option<Spanned<String>>,
    pub(crate) seed: Option<Spanned<toml::Value>>,
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) seal: Option<Spanned<toml::Value>>,
}

/// `"a.out"` or `["a.out", "b.out"]`, keeping each array element's span.
pub(crate) enum RawEndpoints {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawEndpoints {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawEndpoints, D::Error> {
        struct EndpointsVisitor;
        impl<'de> Visitor<'de> for EndpointsVisitor {
            type Value = RawEndpoints;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"plugin.port\" or an array of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEndpoints, E> {
                Ok(RawEndpoints::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawEndpoints, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(RawEndpoints::Many(items))
            }
        }
        deserializer.deserialize_any(EndpointsVisitor)
    }
}
