//! `fargate-stack init`'s file: the built-in config (`config/default.toml`, the one source of
//! every key, its default and its comment) with the stack's name, image and domain filled in.

use super::{check_domain, validate_image, Config, DEFAULT_TOML, LOCAL_CONFIG_FILE};

/// The header `init` puts in place of the built-in config's own (its first two lines).
const HEADER: &str = "\
# fargate-stack.toml, written by `fargate-stack init`: every key, with its default and what it does.
# Uncommented keys are in effect; uncomment an optional one (or a section) to use it. README: \"Every key\".";

/// What `init` was given; each is checked with the config's own rule for its key.
#[derive(Debug, Default, Clone)]
pub struct Starter<'a> {
    pub name: Option<&'a str>,
    pub image: Option<&'a str>,
    pub domain: Option<&'a str>,
}

impl Starter<'_> {
    /// The file's text, or the first value that the config would refuse, as `--flag: value: why`.
    pub fn render(&self) -> Result<String, String> {
        let flag = |flag: &str, value: &str, why: String| format!("--{flag} {value:?}: {why}");
        let mut lines: Vec<String> = DEFAULT_TOML.lines().map(str::to_string).collect();
        // The built-in config's header speaks of itself: two lines starting with `#`.
        assert!(lines[0].starts_with("# ") && lines[1].starts_with("# "), "default.toml's header");
        lines.splice(0..2, HEADER.lines().map(str::to_string));
        if let Some(name) = self.name {
            Config::valid_name(name).map_err(|why| flag("name", name, why))?;
            set(&mut lines, "name = ", "name", name);
        }
        if let Some(image) = self.image {
            validate_image(image).map_err(|why| flag("image", image, why))?;
            set(&mut lines, "image = ", "image", image);
        }
        if let Some(domain) = self.domain {
            check_domain(domain).map_err(|why| flag("domain", domain, why))?;
            let section = lines.iter().position(|l| l == "# [https]").expect("default.toml's [https] example");
            lines[section] = "[https]".into();
            set(&mut lines, "# domain = ", "domain", domain);
        }
        let text = lines.join("\n") + "\n";
        // What it writes must load as it is: a failure here is a bug in this function.
        Config::parse(LOCAL_CONFIG_FILE, &text).map_err(|e| format!("internal error: the starter config: {e}"))?;
        Ok(text)
    }
}

/// Replace the value of the one line starting with `prefix`, keeping its comment and alignment
/// where the new value fits.
fn set(lines: &mut [String], prefix: &str, key: &str, value: &str) {
    let mut found = lines.iter_mut().filter(|l| l.starts_with(prefix));
    let line = found.next().unwrap_or_else(|| panic!("default.toml has no line {prefix:?}"));
    assert!(found.next().is_none(), "default.toml has one line {prefix:?}");
    let quoted = toml::Value::String(value.to_string()).to_string();
    let comment = line.find(" #").map(|at| line[at..].trim_start().to_string());
    let assignment = format!("{key} = {quoted}");
    *line = match comment {
        // The comments of default.toml start at column 30 (or later, after a long value).
        Some(comment) => format!("{assignment:<29} {comment}"),
        None => assignment,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_options_it_is_the_built_in_config_with_its_own_header() {
        let text = Starter::default().render().unwrap();
        assert!(text.starts_with("# fargate-stack.toml, written by `fargate-stack init`"), "{text}");
        assert_eq!(text.lines().skip(2).collect::<Vec<_>>(), DEFAULT_TOML.lines().skip(2).collect::<Vec<_>>());
        assert_eq!(Config::parse("t", &text).unwrap(), Config::parse("d", DEFAULT_TOML).unwrap());
    }

    #[test]
    fn name_image_and_domain_are_filled_in_and_loaded_as_given() {
        let starter = Starter { name: Some("shop-prod"), image: Some("nginx:1.27"), domain: Some("api.example.com") };
        let text = starter.render().unwrap();
        let config = Config::parse("t", &text).unwrap();
        assert_eq!(config.name, "shop-prod");
        assert_eq!(config.service.image, "nginx:1.27");
        let https = config.https.expect("[https]");
        assert_eq!(https.domain.as_deref(), Some("api.example.com"));
        assert_eq!(https.certificate_arn, None);
        assert!(text.contains("name = \"shop-prod\"            # 1-20 chars"), "{text}");
        // Every other line is the built-in one.
        let changed = text.lines().zip(DEFAULT_TOML.lines()).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 2 + 4, "header, name, image, [https], domain");
    }

    #[test]
    fn each_value_is_checked_by_its_config_rule_naming_the_flag() {
        let e = Starter { name: Some("Shop"), ..Default::default() }.render().unwrap_err();
        assert!(e.starts_with("--name \"Shop\": use 1-20 characters"), "{e}");
        let e = Starter { image: Some("nginx latest"), ..Default::default() }.render().unwrap_err();
        assert!(e.starts_with("--image \"nginx latest\": expected an image reference"), "{e}");
        let e = Starter { domain: Some("*.example.com"), ..Default::default() }.render().unwrap_err();
        assert!(e.starts_with("--domain \"*.example.com\": a wildcard is not supported"), "{e}");
    }
}
