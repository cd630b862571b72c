//! The little of apt's own configuration (`apt.conf`, `apt.conf.d/`) kiln honours:
//! `Acquire::Check-Valid-Until`, which snapshot mirrors need switched off.

use std::collections::HashMap;
use std::path::Path;

/// Scalar apt configuration values, keys lowercased and `::`-joined.
#[derive(Debug, Clone, Default)]
pub struct AptConfig {
    values: HashMap<String, String>,
}

impl AptConfig {
    /// Read `etc/apt/apt.conf.d/*` (in name order, skipping names apt skips) and then
    /// `etc/apt/apt.conf` under `root`, as apt does. Unreadable files are skipped: apt's
    /// configuration only relaxes checks, so a file we cannot read must not fail a build.
    pub fn load(root: &Path) -> Self {
        let mut config = Self::default();
        let parts = root.join("etc/apt/apt.conf.d");
        let mut names: Vec<String> = fs_err::read_dir(&parts)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|entry| entry.file_name().into_string().ok())
                    .filter(|name| is_config_part(name))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for name in names {
            if let Ok(text) = fs_err::read_to_string(parts.join(&name)) {
                config.parse_into(&text);
            }
        }
        if let Ok(text) = fs_err::read_to_string(root.join("etc/apt/apt.conf")) {
            config.parse_into(&text);
        }
        config
    }

    /// Parse configuration text (also used by tests).
    pub fn parse(text: &str) -> Self {
        let mut config = Self::default();
        config.parse_into(text);
        config
    }

    /// A boolean setting the way apt reads one; `None` when unset or not a boolean.
    pub fn bool(&self, key: &str) -> Option<bool> {
        parse_bool(self.values.get(&key.to_ascii_lowercase())?)
    }

    fn parse_into(&mut self, text: &str) {
        let mut scopes: Vec<String> = Vec::new();
        let mut pending_key: Option<String> = None;
        for token in tokenize(text) {
            match token {
                Token::Word(word) => match pending_key.take() {
                    // `Key Value;` where the value is unquoted.
                    Some(key) => self.set(&scopes, &key, word),
                    None => pending_key = Some(word),
                },
                // A quoted value without a key is a list item: not a scalar kiln reads.
                Token::Quoted(value) => {
                    if let Some(key) = pending_key.take() {
                        self.set(&scopes, &key, value);
                    }
                }
                Token::Open => scopes.push(pending_key.take().unwrap_or_default()),
                Token::Close => {
                    scopes.pop();
                    pending_key = None;
                }
                Token::Semicolon => pending_key = None,
            }
        }
    }

    fn set(&mut self, scopes: &[String], key: &str, value: String) {
        let mut full: Vec<&str> = scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        full.push(key);
        self.values
            .insert(full.join("::").to_ascii_lowercase(), value);
    }
}

/// apt's `Dir::Etc::Parts` rule: only `[A-Za-z0-9_.-]` names, and not the backup or
/// disabled leftovers package managers write.
fn is_config_part(name: &str) -> bool {
    let allowed = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    let ignored = [
        ".disabled",
        ".dpkg-old",
        ".dpkg-dist",
        ".dpkg-new",
        ".dpkg-tmp",
        ".ucf-old",
        ".ucf-dist",
        ".ucf-new",
        ".save",
        ".orig",
        ".bak",
        "~",
    ];
    allowed && !ignored.iter().any(|suffix| name.ends_with(suffix))
}

/// apt's boolean spellings.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "enable" | "with" => Some(true),
        "false" | "no" | "off" | "0" | "disable" | "without" => Some(false),
        _ => None,
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
}

/// Split apt.conf syntax into tokens, dropping `//`, `#` and `/* */` comments.
fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for next in chars.by_ref() {
                    if previous == '*' && next == '/' {
                        break;
                    }
                    previous = next;
                }
            }
            '"' => {
                let value: String = chars.by_ref().take_while(|&next| next != '"').collect();
                tokens.push(Token::Quoted(value));
            }
            '{' => tokens.push(Token::Open),
            '}' => tokens.push(Token::Close),
            ';' => tokens.push(Token::Semicolon),
            first => {
                let mut word = String::from(first);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || matches!(next, '{' | '}' | ';' | '"') {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    tokens
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for next in chars.by_ref() {
        if next == '\n' {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_and_nested_settings_ignoring_comments() {
        let config = AptConfig::parse(
            "// comment\nAcquire::Check-Valid-Until \"false\";\n# other\nAPT { NeverAutoRemove { \"^linux\"; }; Get { Assume-Yes \"true\"; }; };\n/* Acquire::Check-Date \"true\"; */\n",
        );
        assert_eq!(config.bool("Acquire::Check-Valid-Until"), Some(false));
        assert_eq!(config.bool("apt::get::assume-yes"), Some(true));
        assert_eq!(config.bool("Acquire::Check-Date"), None);
    }

    #[test]
    fn later_files_override_earlier_ones_and_disabled_parts_are_skipped() {
        let root = tempfile::tempdir().unwrap();
        let parts = root.path().join("etc/apt/apt.conf.d");
        std::fs::create_dir_all(&parts).unwrap();
        std::fs::write(
            parts.join("10first"),
            "Acquire::Check-Valid-Until \"true\";",
        )
        .unwrap();
        std::fs::write(
            parts.join("99last"),
            "Acquire { Check-Valid-Until \"no\"; };",
        )
        .unwrap();
        std::fs::write(
            parts.join("99zz.disabled"),
            "Acquire::Check-Valid-Until \"yes\";",
        )
        .unwrap();
        let config = AptConfig::load(root.path());
        assert_eq!(config.bool("Acquire::Check-Valid-Until"), Some(false));
    }
}
