//! The `[[host]]` tables, and what a scenario whose plugins are on several hosts needs.

use toml::Spanned;

use crate::model::{BackendKind, Host, LOCAL_HOST, Scenario, parse_endpoint};
use crate::raw::RawHost;
use crate::source::{ScenarioError, Source, is_bare_key};
use crate::validate::NAME_HINT;

/// The `[[host]]` tables: unique names, `tcp/IP:PORT` addresses, no address twice.
pub(super) fn validate_hosts(
    src: &Source<'_>,
    raw: &[RawHost],
) -> Result<Vec<Host>, ScenarioError> {
    let mut hosts: Vec<Host> = Vec::with_capacity(raw.len());
    for (i, h) in raw.iter().enumerate() {
        let key = |k: &str| format!("host[{i}].{k}");
        let name = h.name.get_ref();
        if !is_bare_key(name) {
            return Err(src.at(
                h.name.span(),
                key("name"),
                format!("invalid host name {name:?}; {NAME_HINT}, e.g. \"b\""),
            ));
        }
        if name == LOCAL_HOST {
            return Err(src.at(
                h.name.span(),
                key("name"),
                format!(
                    "{LOCAL_HOST:?} names this machine (the supervisor's) in reports; give the \
                     host another name, or leave out `host` on plugins that run here"
                ),
            ));
        }
        if let Some(j) = hosts.iter().position(|x| x.name == *name) {
            return Err(src.at(
                h.name.span(),
                key("name"),
                format!("duplicate host name {name:?}, already used by host[{j}]"),
            ));
        }
        let addr = parse_endpoint(h.address.get_ref())
            .map_err(|m| src.at(h.address.span(), key("address"), m))?;
        if let Some(j) = hosts.iter().position(|x| x.addr == addr) {
            return Err(src.at(
                h.address.span(),
                key("address"),
                format!(
                    "host[{j}] (`{}`) has the same address {}; one agent serves one host",
                    hosts[j].name,
                    h.address.get_ref()
                ),
            ));
        }
        hosts.push(Host {
            name: name.clone(),
            address: h.address.get_ref().clone(),
            addr,
        });
    }
    Ok(hosts)
}

/// A scenario whose channels join plugins on different hosts: every listed backend can cross
/// hosts, and this machine has a `listen` address when its plugins are linked to a host's.
pub(super) fn check_crossing(
    src: &Source<'_>,
    scenario: &Scenario,
    listed: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<(), ScenarioError> {
    if let Some(crossing) = scenario.crossing() {
        if let Some(list) = listed
            && let Some((j, name)) = list.get_ref().iter().enumerate().find(|(_, n)| {
                BackendKind::from_name(n.get_ref()).is_some_and(|b| !b.crosses_hosts())
            })
        {
            return Err(src.at(
                name.span(),
                format!("run.backends[{j}]"),
                format!(
                    "backend {:?} cannot join plugins on different hosts ({crossing}); list \
                 \"zenoh\" or \"auto\" instead",
                    name.get_ref()
                ),
            ));
        }
        let local_producer = scenario.channels.iter().any(|ch| {
            ch.from
                .iter()
                .any(|f| scenario.plugins[f.plugin].host.is_none())
                && ch
                    .from
                    .iter()
                    .chain(&ch.to)
                    .any(|e| scenario.plugins[e.plugin].host.is_some())
        });
        if local_producer && scenario.run.listen.is_none() {
            return Err(src.error(
                None,
                Some("run.listen".into()),
                format!(
                    "plugins on this machine are linked with plugins on other hosts \
                 ({crossing}), so this machine needs an address the hosts can reach: add \
                 `listen = \"tcp/IP:PORT\"` to [run] (or pass --listen), or place those \
                 plugins on a [[host]] too"
                ),
            ));
        }
    }
    Ok(())
}
