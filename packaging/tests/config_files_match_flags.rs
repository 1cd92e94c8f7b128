//! The packaged `/etc/gantry/master.toml` and `/etc/gantry/agent.toml` (packaging/config/) list
//! exactly the keys the daemons accept (their flags' names, `_` for `-`), each once; every
//! commented value parses as the daemon's TOML; and uncommenting a key that has a default
//! changes nothing, so the comments cannot drift from the code. Keys whose comment says
//! `Default: none` or `Default: detected` show an example instead and are only parsed.

use anyhow::{bail, ensure, Context};
use clap::{CommandFactory, Parser};
use gantry_agentd::config::AgentArgs;
use gantry_masterd::config::MasterArgs;
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Parser)]
struct Master {
    #[command(flatten)]
    args: MasterArgs,
}

#[derive(Parser)]
struct Agent {
    #[command(flatten)]
    args: AgentArgs,
}

/// One `key = value` line of a config file.
struct Entry {
    key: String,
    value: String,
    /// `# key = value`: documentation; `key = value`: a setting of the package.
    commented: bool,
    /// The comment above it says the key has no default value (an example is shown).
    example_only: bool,
}

fn entries(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut comment = String::new();
    for line in text.lines() {
        let (body, commented) = match line.strip_prefix("# ") {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let key_value = body.split_once(" = ").filter(|(k, _)| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
        });
        match key_value {
            Some((k, v)) => out.push(Entry {
                key: k.to_owned(),
                value: v.to_owned(),
                commented,
                example_only: comment.contains("Default: none")
                    || comment.contains("Default: detected"),
            }),
            None if line.trim().is_empty() => comment.clear(),
            None => {
                comment.push(' ');
                comment.push_str(body);
            }
        }
    }
    out
}

fn flags(cmd: clap::Command) -> BTreeSet<String> {
    cmd.get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "help" && *l != "version")
        .map(|l| l.replace('-', "_"))
        .collect()
}

fn file(name: &str) -> anyhow::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Checks one file against the daemon's flags; `parse` reads TOML as the daemon's arguments,
/// `resolve` turns a whole file's text into the daemon's final configuration, printed with `Debug`.
fn check(
    name: &str,
    accepted: BTreeSet<String>,
    parse: impl Fn(&str) -> anyhow::Result<()>,
    resolve: impl Fn(&str) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let text = file(name)?;
    let all = entries(&text);
    let mut seen = BTreeSet::new();
    for e in &all {
        ensure!(
            seen.insert(e.key.clone()),
            "{name}: {} appears twice",
            e.key
        );
    }
    let missing: Vec<_> = accepted.difference(&seen).collect();
    let unknown: Vec<_> = seen.difference(&accepted).collect();
    ensure!(
        missing.is_empty() && unknown.is_empty(),
        "{name} must list exactly the daemon's flags: missing {missing:?}, not flags {unknown:?}"
    );
    let base = resolve(&text).with_context(|| format!("{name} as installed"))?;
    for e in all.iter().filter(|e| e.commented) {
        let setting = format!("{} = {}", e.key, e.value);
        parse(&setting).with_context(|| format!("{name}: `# {setting}` is not a valid setting"))?;
        if e.example_only {
            continue;
        }
        let uncommented = text.replacen(&format!("# {setting}"), &setting, 1);
        let got =
            resolve(&uncommented).with_context(|| format!("{name}: uncommenting `{setting}`"))?;
        if got != base {
            bail!("{name}: `# {setting}` is not the default (uncommenting it changes the configuration)");
        }
    }
    Ok(())
}

#[test]
fn master_toml_lists_every_flag_with_its_default() -> anyhow::Result<()> {
    let parse = |t: &str| {
        toml::from_str::<MasterArgs>(t)
            .map(drop)
            .map_err(Into::into)
    };
    check("master.toml", flags(Master::command()), parse, |text| {
        let args: MasterArgs = toml::from_str(text)?;
        Ok(format!("{:?}", args.resolve()?))
    })
}

#[test]
fn agent_toml_lists_every_flag_with_its_default() -> anyhow::Result<()> {
    let parse = |t: &str| toml::from_str::<AgentArgs>(t).map(drop).map_err(Into::into);
    check("agent.toml", flags(Agent::command()), parse, |text| {
        let mut args: AgentArgs = toml::from_str(text)?;
        // Detected resources (free disk, memory) change between two reads: fix them, unless the
        // file gives them.
        if args.resources.is_none() {
            args.resources = Some("cpus:1;mem:512;disk:1024;ports:[31000-32000]".into());
        }
        Ok(format!("{:?}", args.resolve()?))
    })
}

#[test]
fn the_parser_sees_settings_and_comments() {
    let e = entries("# What it is.\n# Default: none.\n# a_b = 1\n\n# Other.\nc = \"x\"\n");
    assert_eq!(e.len(), 2);
    assert!(e[0].commented && e[0].example_only && e[0].key == "a_b");
    assert!(!e[1].commented && !e[1].example_only && e[1].value == "\"x\"");
}
