//! Reading a config: which file, its source (for noticing a run with another config), and TOML
//! errors located at the line and key they are about.

use std::path::Path;

use super::{Config, ConfigError, DEFAULT_TOML, LOCAL_CONFIG_FILE};

/// Which config a run uses: recorded by `up` so that a run with another one is noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// An absolute path, or `(built-in default)`.
    pub path: String,
    /// SHA-256 of the text, hex.
    pub sha256: String,
}

pub const BUILT_IN: &str = "(built-in default)";

impl ConfigSource {
    pub(super) fn of(path: String, text: &str) -> ConfigSource {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(text.as_bytes());
        ConfigSource { path, sha256: digest.iter().map(|b| format!("{b:02x}")).collect() }
    }
}

impl Config {
    /// Resolve which config to use: an explicit file, `./fargate-stack.toml`, or the built-in default.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, ConfigSource), ConfigError> {
        let local = Path::new(LOCAL_CONFIG_FILE);
        let file = explicit.or_else(|| local.exists().then_some(local));
        let (origin, absolute, text) = match file {
            Some(path) => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                (path.display().to_string(), absolute.display().to_string(), read(path)?)
            }
            None => (BUILT_IN.to_string(), BUILT_IN.to_string(), DEFAULT_TOML.to_string()),
        };
        let config = Config::parse(&origin, &text)?;
        if let Some(deprecation) = config.network.deprecation() {
            let at = located(&origin, Some(line_of(&text, "network.nat_gateways")));
            eprintln!("warning: {at}: {deprecation}");
        }
        Ok((config, ConfigSource::of(absolute, &text)))
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `FILE:LINE`, or `FILE` when there is no line (a value from the command line).
pub(super) fn located(origin: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{origin}:{line}"),
        None => origin.to_string(),
    }
}

/// The table header a line opens, if it is one (`[service]` → `service`; arrays of tables: none).
fn header(line: &str) -> Option<String> {
    let l = line.trim();
    (l.starts_with('[') && !l.starts_with("[[")).then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
}

/// The line of the dotted `key` in `text`: where it is set, else the header of its section (or
/// of the section it names), else 1 (a key left to its default in a section not written).
pub(super) fn line_of(text: &str, key: &str) -> usize {
    let mut section = String::new();
    let mut section_line = None;
    // `[[autoscaling.schedule]]` entries, counted from 1: `autoscaling.schedule[2].cron`.
    let mut entries: std::collections::HashMap<String, usize> = Default::default();
    for (n, line) in text.lines().enumerate() {
        let entry = line.trim().strip_prefix("[[").and_then(|l| l.strip_suffix("]]")).map(|name| {
            let count = entries.entry(name.trim().to_string()).or_default();
            *count += 1;
            format!("{}[{count}]", name.trim())
        });
        if let Some(h) = entry.or_else(|| header(line)) {
            if h == key || key.starts_with(&format!("{h}.")) && section_line.is_none() {
                section_line = Some(n + 1);
            }
            section = h;
            continue;
        }
        let Some((name, _)) = line.split_once('=') else { continue };
        let name = name.trim().trim_matches('"');
        let dotted = if section.is_empty() { name.to_string() } else { format!("{section}.{name}") };
        if dotted == key && !line.trim_start().starts_with('#') {
            return n + 1;
        }
    }
    section_line.unwrap_or(1)
}

/// A TOML or type error, located: the line, the dotted key (from the table header above it and
/// the key on the line), and the value as written. A missing key or section is named as missing.
pub(super) fn syntax_error(origin: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = one_line(e.message());
    let at = |line: usize, key: String, message: String| ConfigError::At {
        origin: origin.to_string(),
        line: Some(line),
        key,
        message,
    };
    let span = e.span().filter(|s| s.start <= text.len());
    let line = span.as_ref().map_or(1, |s| text[..s.start].matches('\n').count() + 1);
    let line_text = text.lines().nth(line - 1).unwrap_or_default();
    let section = text.lines().take(line).filter_map(header).last();
    if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        // Reported at the table that lacks it: its header, or the top of the file.
        let within = header(line_text).or(section).filter(|s| !s.is_empty() && line > 1);
        let key = within.map_or(missing.to_string(), |s| format!("{s}.{missing}"));
        let what = if key.contains('.') { "key" } else { "section" };
        return at(line, key, format!("missing: this {what} is required (README: \"Every key\")"));
    }
    let key_text = line_text.split_once('=').filter(|_| header(line_text).is_none()).map(|(k, _)| k);
    let Some(key) = key_text else {
        let key = header(line_text).or(section).unwrap_or_else(|| "(file)".into());
        return at(line, key, message);
    };
    let key = key.trim().trim_matches('"');
    let key = match section {
        Some(section) if !section.is_empty() => format!("{section}.{key}"),
        _ => key.to_string(),
    };
    let value =
        span.and_then(|s| text.get(s)).map(|v| one_line(v.trim())).filter(|v| !v.is_empty() && !v.contains('\n'));
    let value = value.unwrap_or_else(|| one_line(line_text.split_once('=').map_or("", |(_, v)| v).trim()));
    at(line, key, format!("{value}: {message}"))
}
