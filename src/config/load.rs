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
        Ok((config, ConfigSource::of(absolute, &text)))
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A TOML or type error, located: the line, the dotted key (from the table header above it and
/// the key on the line), and the value as written.
pub(super) fn syntax_error(origin: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = one_line(e.message());
    let Some(span) = e.span().filter(|s| s.start <= text.len()) else {
        return ConfigError::Parse { origin: origin.to_string(), message };
    };
    let line = text[..span.start].matches('\n').count() + 1;
    let line_text = text.lines().nth(line - 1).unwrap_or_default();
    let section = text
        .lines()
        .take(line)
        .filter_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && !l.starts_with("[["))
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        })
        .last()
        .filter(|_| !line_text.trim_start().starts_with('['));
    let Some((key, _)) = line_text.split_once('=') else {
        return ConfigError::Parse { origin: origin.to_string(), message: format!("line {line}: {message}") };
    };
    let key = key.trim().trim_matches('"');
    let key = match section {
        Some(section) if !section.is_empty() => format!("{section}.{key}"),
        _ => key.to_string(),
    };
    let value = text.get(span.clone()).map(|v| one_line(v.trim())).filter(|v| !v.is_empty() && !v.contains('\n'));
    let value = value.unwrap_or_else(|| one_line(line_text.split_once('=').map_or("", |(_, v)| v).trim()));
    ConfigError::Syntax { origin: origin.to_string(), line, key, value, message }
}
