//! The `[[channel]]` tables: endpoints resolved, port use checked.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use crate::keys;
use crate::model::{
    Channel, ChannelLines, DEFAULT_CAPACITY, DEFAULT_SLOT_SIZE, Endpoint, MAX_CAPACITY, Overflow,
    Pattern, Plugin, SyncMode,
};
use crate::raw::{RawChannel, RawEndpoints};
use crate::source::{ScenarioError, Source, is_bare_key};
use crate::units::show_size;
use crate::validate::plugins::Group;
use crate::validate::values::{in_range, integer_in, one_of, size_value};
use crate::validate::{ENDPOINT_HINT, NAME_HINT};

/// Which ports are in use so far, and where: an output port belongs to one channel, an input
/// port to one channel, and no port is both.
#[derive(Default)]
struct PortUse {
    outputs: HashMap<Endpoint, Seen>,
    inputs: HashMap<Endpoint, Seen>,
}

/// The channel, and the line, where an endpoint was first used.
#[derive(Clone, Copy)]
struct Seen {
    channel: usize,
    line: usize,
}

impl PortUse {
    /// Records `endpoint` as an output (`from`) or input (`to`) of channel `c`, or explains
    /// why it cannot be one.
    fn claim(
        &mut self,
        src: &Source<'_>,
        plugins: &[Plugin],
        c: usize,
        side: Side,
        item: &ResolvedEndpoint,
    ) -> Result<(), ScenarioError> {
        let ResolvedEndpoint {
            endpoint,
            span,
            key,
        } = item;
        let name = format!("{}.{}", plugins[endpoint.plugin].name, endpoint.port);
        let (same, other) = match side {
            Side::From => (&mut self.outputs, &self.inputs),
            Side::To => (&mut self.inputs, &self.outputs),
        };
        let message = if let Some(seen) = other.get(endpoint) {
            let (was, now) = match side {
                Side::From => ("an input", "an output"),
                Side::To => ("an output", "an input"),
            };
            format!(
                "port {name} is {was} in channel[{}] (line {}) and cannot also be {now}; \
                 a port is either an input or an output",
                seen.channel, seen.line
            )
        } else if let Some(seen) = same.get(endpoint) {
            match side {
                _ if seen.channel == c => format!(
                    "{name} appears twice in this channel's `{}`; list each endpoint once",
                    side.key()
                ),
                Side::From => format!(
                    "output port {name} already feeds channel[{}] (line {}); an output port \
                     belongs to one channel, so list every consumer in that channel's `to`",
                    seen.channel, seen.line
                ),
                Side::To => format!(
                    "input port {name} is already fed by channel[{}] (line {}); an input port \
                     belongs to one channel, so list every producer in that channel's `from`",
                    seen.channel, seen.line
                ),
            }
        } else {
            let line = src.line_of(span.start);
            same.insert(endpoint.clone(), Seen { channel: c, line });
            return Ok(());
        };
        Err(src.at(span.clone(), key, message))
    }
}

/// The two ends of a channel.
#[derive(Clone, Copy)]
enum Side {
    From,
    To,
}

impl Side {
    fn key(self) -> &'static str {
        match self {
            Side::From => "from",
            Side::To => "to",
        }
    }
}

/// An endpoint with the span and key path of the string that named it.
struct ResolvedEndpoint {
    endpoint: Endpoint,
    span: Range<usize>,
    key: String,
}

/// The `[[channel]]` tables, in file order.
pub(super) fn validate_channels(
    src: &Source<'_>,
    raw: Vec<RawChannel>,
    plugins: &[Plugin],
    by_name: &HashMap<String, Group>,
) -> Result<Vec<Channel>, ScenarioError> {
    let mut ports = PortUse::default();
    let mut channels = Vec::with_capacity(raw.len());
    for (c, channel) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("channel[{c}].{k}");
        let from = resolve_endpoints(src, &channel.from, &key("from"), by_name)?;
        let to = resolve_endpoints(src, &channel.to, &key("to"), by_name)?;
        for item in &from {
            ports.claim(src, plugins, c, Side::From, item)?;
        }
        for item in &to {
            ports.claim(src, plugins, c, Side::To, item)?;
        }
        let pattern = match &channel.pattern {
            None => Pattern::Stream,
            Some(p) => one_of(src, p, &key("pattern"), &Pattern::ALL, |p| p.name())?,
        };
        if pattern == Pattern::RequestReply {
            check_request_reply(src, c, &channel, &from, &to, plugins)?;
        }
        let slot_size = match &channel.slot_size {
            None => DEFAULT_SLOT_SIZE,
            Some(value) => slot_size(src, value, &key("slot_size"))?,
        };
        let capacity = match &channel.capacity {
            None if pattern == Pattern::RequestReply => 1,
            None => DEFAULT_CAPACITY,
            Some(value) => {
                let n = integer_in(src, value, &key("capacity"), &keys::CAPACITY)?;
                // `integer_in` bounded it by MAX_CAPACITY, a u32.
                u32::try_from(n).unwrap_or(MAX_CAPACITY)
            }
        };
        let overflow = match &channel.overflow {
            None => Overflow::Block,
            Some(o) => one_of(src, o, &key("overflow"), &Overflow::ALL, |o| o.name())?,
        };
        let sync = match &channel.sync {
            None => SyncMode::LockFree,
            Some(v) => one_of(src, v, &key("sync"), &SyncMode::ALL, |v| v.name())?,
        };
        if sync != SyncMode::LockFree
            && overflow != Overflow::Block
            && let Some(o) = &channel.overflow
        {
            return Err(src.at(
                o.span(),
                key("overflow"),
                format!(
                    "overflow = \"{}\" needs sync = \"lock-free\": the textbook's bounded \
                     buffer (sync = \"{}\") makes a producer wait on its `empty` count, it \
                     never drops",
                    overflow.name(),
                    sync.name()
                ),
            ));
        }
        let lines = channel_lines(src, &channel);
        channels.push(Channel {
            from: from.into_iter().map(|r| r.endpoint).collect(),
            to: to.into_iter().map(|r| r.endpoint).collect(),
            slot_size,
            capacity,
            pattern,
            overflow,
            sync,
            lines,
        });
    }
    Ok(channels)
}

/// A request-reply channel has one server, which is not also a client, and no `capacity`.
fn check_request_reply(
    src: &Source<'_>,
    c: usize,
    channel: &RawChannel,
    from: &[ResolvedEndpoint],
    to: &[ResolvedEndpoint],
    plugins: &[Plugin],
) -> Result<(), ScenarioError> {
    let key = |k: &str| format!("channel[{c}].{k}");
    if to.len() != 1 {
        return Err(src.at(
            channel.to.span(),
            key("to"),
            format!(
                "a request-reply channel has one server: `to` names one port, got {}; \
                 its clients are the ports in `from`",
                to.len()
            ),
        ));
    }
    if let Some(both) = from
        .iter()
        .find(|f| f.endpoint.plugin == to[0].endpoint.plugin)
    {
        let name = &plugins[both.endpoint.plugin].name;
        return Err(src.at(
            both.span.clone(),
            &both.key,
            format!(
                "plugin `{name}` is both a client and the server of this request-reply \
                 channel; a plugin cannot call itself (its call would wait for its own \
                 answer)"
            ),
        ));
    }
    if let Some(cap) = &channel.capacity {
        return Err(src.at(
            cap.span(),
            key("capacity"),
            "capacity does not apply to a request-reply channel: each client has one \
             call in flight, so every link holds one message"
                .to_string(),
        ));
    }
    if let Some(sync) = &channel.sync {
        return Err(src.at(
            sync.span(),
            key("sync"),
            "sync does not apply to a request-reply channel: each client has one call in \
             flight on its own link, so there is no shared buffer to guard"
                .to_string(),
        ));
    }
    if let Some(overflow) = &channel.overflow {
        return Err(src.at(
            overflow.span(),
            key("overflow"),
            "overflow does not apply to a request-reply channel: a client waits for the \
             answer to its one call, so no link is ever full"
                .to_string(),
        ));
    }
    Ok(())
}

/// Where the channel's keys are.
fn channel_lines(src: &Source<'_>, channel: &RawChannel) -> ChannelLines {
    ChannelLines {
        from: src.line_of(channel.from.span().start),
        slot_size: channel
            .slot_size
            .as_ref()
            .map(|v| src.line_of(v.span().start)),
        capacity: channel
            .capacity
            .as_ref()
            .map(|v| src.line_of(v.span().start)),
        overflow: channel
            .overflow
            .as_ref()
            .map(|v| src.line_of(v.span().start)),
        sync: channel.sync.as_ref().map(|v| src.line_of(v.span().start)),
        to: src.line_of(channel.to.span().start),
    }
}

/// A slot size within [`keys::SLOT_SIZE`]'s limits: an integer, or a string for
/// [`crate::parse_size`].
fn slot_size(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
) -> Result<u32, ScenarioError> {
    let bytes = size_value(src, value, key)?;
    let decl = keys::SLOT_SIZE;
    match u32::try_from(bytes) {
        Ok(slot) if in_range(&decl, bytes) => Ok(slot),
        _ => Err(src.at(
            value.span(),
            key,
            format!(
                "slot size of {bytes} bytes is out of range; expected {} ..= {}, \
                 e.g. 4096, \"4KiB\", \"1MiB\"",
                decl.min.unwrap_or_default(),
                show_size(decl.max.unwrap_or_default())
            ),
        )),
    }
}

/// Resolves `"plugin.port"` strings; each result keeps the span of its string.
fn resolve_endpoints(
    src: &Source<'_>,
    raw: &Spanned<RawEndpoints>,
    key: &str,
    by_name: &HashMap<String, Group>,
) -> Result<Vec<ResolvedEndpoint>, ScenarioError> {
    let items: Vec<Item<'_>> = match raw.get_ref() {
        RawEndpoints::One(s) => vec![Item {
            key: key.to_owned(),
            text: s.as_str(),
            span: raw.span(),
        }],
        RawEndpoints::Many(list) => {
            if list.is_empty() {
                return Err(src.at(
                    raw.span(),
                    key,
                    "empty list; expected \"plugin.port\" or a non-empty array of them, \
                     e.g. [\"consumer.in\"]",
                ));
            }
            list.iter()
                .enumerate()
                .map(|(j, s)| Item {
                    key: format!("{key}[{j}]"),
                    text: s.get_ref().as_str(),
                    span: s.span(),
                })
                .collect()
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let (port, copies) = resolve_one(src, item, by_name)?;
        for index in copies {
            out.push(ResolvedEndpoint {
                endpoint: Endpoint {
                    plugin: index,
                    port: port.to_owned(),
                },
                span: item.span.clone(),
                key: item.key.clone(),
            });
        }
    }
    Ok(out)
}

/// One endpoint string as written, with its key path and span.
struct Item<'a> {
    key: String,
    text: &'a str,
    span: Range<usize>,
}

/// The port an endpoint names, and the plugin copies (indices into the plugins) it names.
fn resolve_one<'a>(
    src: &Source<'_>,
    item: &Item<'a>,
    by_name: &HashMap<String, Group>,
) -> Result<(&'a str, Vec<usize>), ScenarioError> {
    let text = item.text;
    let Some((plugin, port)) = text.split_once('.') else {
        return Err(src.at(
            item.span.clone(),
            &item.key,
            format!("{text:?} has no port; {ENDPOINT_HINT}"),
        ));
    };
    let (base, which) = which_copies(plugin);
    if !is_bare_key(base) || !is_bare_key(port) || matches!(which, Which::Bad) {
        return Err(src.at(
            item.span.clone(),
            &item.key,
            format!(
                "malformed endpoint {text:?}; {ENDPOINT_HINT}, or \"plugin#0.port\" for one \
                 instance, \"plugin[*].port\" for all (plugin and port names: {NAME_HINT})"
            ),
        ));
    }
    let Some(group) = by_name.get(base) else {
        let mut known: Vec<(&str, usize)> =
            by_name.iter().map(|(n, g)| (n.as_str(), g.table)).collect();
        known.sort_unstable_by_key(|&(_, table)| table);
        let known: Vec<&str> = known.into_iter().map(|(n, _)| n).collect();
        return Err(src.at(
            item.span.clone(),
            &item.key,
            format!(
                "unknown plugin {base:?} in {text:?}; plugins are: {}",
                known.join(", ")
            ),
        ));
    };
    let copies = copies_named(src, item, base, port, which, group)?;
    Ok((port, copies))
}

/// `name`, `name#i` (one copy) or `name[*]` (every copy, in index order): the name, and
/// which copies.
fn which_copies(plugin: &str) -> (&str, Which) {
    if let Some(base) = plugin.strip_suffix("[*]") {
        (base, Which::All)
    } else if let Some((base, digits)) = plugin.split_once('#') {
        // Plain decimal digits only: `#01`, `#+1` or `#` name no instance.
        let canonical = digits
            .parse::<usize>()
            .ok()
            .filter(|i| i.to_string() == digits);
        match canonical {
            Some(i) => (base, Which::One(i)),
            None => (plugin, Which::Bad),
        }
    } else {
        (plugin, Which::Plain)
    }
}

/// The copies of `group` that `which` names, or why it names none.
fn copies_named(
    src: &Source<'_>,
    item: &Item<'_>,
    base: &str,
    port: &str,
    which: Which,
    group: &Group,
) -> Result<Vec<usize>, ScenarioError> {
    let text = item.text;
    Ok(match which {
        Which::Plain if group.count == 1 => vec![group.first],
        Which::Plain => {
            return Err(src.at(
                item.span.clone(),
                &item.key,
                format!(
                    "plugin {base:?} has {} instances; name one as \"{base}#0.{port}\" … \
                     \"{base}#{}.{port}\", or all of them as \"{base}[*].{port}\"",
                    group.count,
                    group.count - 1
                ),
            ));
        }
        Which::One(i) if group.count > 1 && i < group.count => vec![group.first + i],
        Which::One(_) => {
            return Err(src.at(
                item.span.clone(),
                &item.key,
                format!(
                    "{text:?}: plugin {base:?} has {} instance(s){}",
                    group.count,
                    if group.count == 1 {
                        format!("; name it as \"{base}.{port}\"")
                    } else {
                        format!(", #0 … #{}", group.count - 1)
                    }
                ),
            ));
        }
        Which::All => (group.first..group.first + group.count).collect(),
        Which::Bad => unreachable!("refused above"),
    })
}

/// How an endpoint names a plugin's copies.
enum Which {
    Plain,
    One(usize),
    All,
    Bad,
}
