//! `go.mod`: the module path, the `go` directive, requirements and replacements. Only what
//! the buildpack decides on is interpreted; unknown directives are skipped so newer go.mod
//! files still read.

use super::error::GoError;
use super::version::GoVersion;

/// A required module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Module path.
    pub path: String,
    /// Version (`v1.2.3`).
    pub version: String,
}

/// The parts of go.mod the buildpack uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoMod {
    /// The module path.
    pub module: String,
    /// The `go` directive, when present (absent means the go command's old default).
    pub go: Option<GoVersion>,
    /// Requirements, in file order.
    pub requires: Vec<Requirement>,
    /// Modules replaced by a directory (`=> ./local`): never downloaded.
    pub local_replacements: Vec<String>,
}

impl GoMod {
    /// Parse go.mod text.
    pub fn parse(text: &str) -> Result<Self, GoError> {
        let mut module = None;
        let mut go = None;
        let mut requires = Vec::new();
        let mut local_replacements = Vec::new();
        for directive in directives(text)? {
            let problem = |problem: &str| GoError::ParseGoMod {
                line: directive.line,
                problem: problem.to_owned(),
            };
            match (directive.verb.as_str(), directive.args.as_slice()) {
                ("module", [path]) => module = Some(path.clone()),
                ("module", _) => return Err(problem("`module` takes one module path")),
                ("go", [version]) => {
                    go = Some(
                        GoVersion::parse(version)
                            .ok_or_else(|| problem(&format!("`{version}` is not a Go version")))?,
                    )
                }
                ("go", _) => return Err(problem("`go` takes one version")),
                ("require", [path, version]) => requires.push(Requirement {
                    path: path.clone(),
                    version: version.clone(),
                }),
                ("require", _) => {
                    return Err(problem("`require` takes a module path and a version"));
                }
                ("replace", args) => {
                    let arrow = args
                        .iter()
                        .position(|arg| arg == "=>")
                        .ok_or_else(|| problem("`replace` needs `=>`"))?;
                    let (Some(old), Some(new)) = (args.first(), args.get(arrow + 1)) else {
                        return Err(problem("`replace` needs a module on each side of `=>`"));
                    };
                    // The go command treats a replacement starting with ./ ../ or / as a directory.
                    if new.starts_with("./") || new.starts_with("../") || new.starts_with('/') {
                        local_replacements.push(old.clone());
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            module: module.ok_or(GoError::ModuleMissing)?,
            go,
            requires,
            local_replacements,
        })
    }

    /// Requirements that would have to come from a module proxy (not replaced by a directory).
    pub fn remote_requirements(&self) -> impl Iterator<Item = &Requirement> {
        self.requires
            .iter()
            .filter(|requirement| !self.local_replacements.contains(&requirement.path))
    }

    /// The binary name `go build` gives the module's root package: the last path element,
    /// skipping a major-version suffix (`example.com/tool/v2` → `tool`).
    pub fn root_binary_name(&self) -> String {
        let mut elements = self.module.rsplit('/');
        let last = elements.next().unwrap_or(&self.module);
        let is_major_suffix = last.len() > 1
            && last.starts_with('v')
            && last[1..].chars().all(|c| c.is_ascii_digit());
        match elements.next() {
            Some(previous) if is_major_suffix => previous.to_owned(),
            _ => last.to_owned(),
        }
    }
}

/// One directive: a verb and its arguments (a block line inherits its block's verb).
struct Directive {
    line: usize,
    verb: String,
    args: Vec<String>,
}

fn directives(text: &str) -> Result<Vec<Directive>, GoError> {
    let mut found = Vec::new();
    let mut block: Option<(String, usize)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let tokens = tokenize(raw).map_err(|problem| GoError::ParseGoMod {
            line,
            problem: problem.to_owned(),
        })?;
        match (&block, tokens.as_slice()) {
            (_, []) => {}
            (Some(_), [close]) if close == ")" => block = None,
            (Some((verb, _)), args) => found.push(Directive {
                line,
                verb: verb.clone(),
                args: args.to_vec(),
            }),
            (None, [verb, open]) if open == "(" => block = Some((verb.clone(), line)),
            (None, [verb, args @ ..]) => found.push(Directive {
                line,
                verb: verb.clone(),
                args: args.to_vec(),
            }),
        }
    }
    if let Some((verb, line)) = block {
        return Err(GoError::ParseGoMod {
            line,
            problem: format!("the `{verb} (` block is never closed"),
        });
    }
    Ok(found)
}

/// Split a line into tokens: `//` starts a comment, strings may be "quoted" or `raw`.
fn tokenize(line: &str) -> Result<Vec<String>, &'static str> {
    let mut tokens = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if rest.starts_with("//") {
            break;
        }
        let mut chars = rest.char_indices();
        let (_, first) = chars.next().expect("rest is not empty");
        let consumed = match first {
            '"' | '`' => {
                let mut token = String::new();
                let mut end = None;
                while let Some((index, c)) = chars.next() {
                    match c {
                        '\\' if first == '"' => {
                            token.extend(chars.next().map(|(_, escaped)| escaped))
                        }
                        c if c == first => {
                            end = Some(index + c.len_utf8());
                            break;
                        }
                        c => token.push(c),
                    }
                }
                tokens.push(token);
                end.ok_or("unterminated string")?
            }
            '(' | ')' => {
                tokens.push(first.to_string());
                1
            }
            _ => {
                // A word ends at space, a quote, a parenthesis or a `//` comment
                // (`v1.0.0// indirect`).
                let end = rest
                    .char_indices()
                    .find(|&(index, c)| {
                        c.is_whitespace() || "\"`()".contains(c) || rest[index..].starts_with("//")
                    })
                    .map_or(rest.len(), |(index, _)| index);
                tokens.push(rest[..end].to_owned());
                end
            }
        };
        rest = rest[consumed..].trim_start();
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_module_go_requirements_and_local_replacements() {
        let text = r#"// A comment.
module example.com/shop/v2

go 1.22.1
toolchain go1.23.0

require (
	example.com/greet v1.0.0 // indirect
	"example.com/quoted" v0.1.0
)
require example.com/single v1.2.3

replace example.com/greet => ./greet
replace (
	example.com/single v1.2.3 => example.com/fork v1.2.4
)
"#;
        let gomod = GoMod::parse(text).unwrap();
        assert_eq!(gomod.module, "example.com/shop/v2");
        assert_eq!(gomod.go.as_ref().unwrap().to_string(), "1.22.1");
        let paths: Vec<&str> = gomod.requires.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "example.com/greet",
                "example.com/quoted",
                "example.com/single"
            ]
        );
        assert_eq!(gomod.requires[2].version, "v1.2.3");
        let remote: Vec<&str> = gomod
            .remote_requirements()
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(remote, ["example.com/quoted", "example.com/single"]);
        assert_eq!(gomod.root_binary_name(), "shop");
    }

    #[test]
    fn go_line_is_optional() {
        let gomod = GoMod::parse("module hello\n").unwrap();
        assert_eq!(gomod.go, None);
        assert_eq!(gomod.root_binary_name(), "hello");
    }

    #[test]
    fn reports_the_broken_line() {
        assert!(matches!(
            GoMod::parse("go 1.22\n"),
            Err(GoError::ModuleMissing)
        ));
        assert!(matches!(
            GoMod::parse("module m\n\ngo banana\n"),
            Err(GoError::ParseGoMod { line: 3, .. })
        ));
        assert!(matches!(
            GoMod::parse("module m\nrequire (\n\tx v1\n"),
            Err(GoError::ParseGoMod { line: 2, .. })
        ));
        assert!(matches!(
            GoMod::parse("module \"m\n"),
            Err(GoError::ParseGoMod { line: 1, .. })
        ));
        assert!(matches!(
            GoMod::parse("module a b\n"),
            Err(GoError::ParseGoMod { line: 1, .. })
        ));
    }
}
