//! Which Go files a build for the target includes, and what package they declare: enough of
//! the go command's rules (file name suffixes, `//go:build` and `// +build` lines) to find
//! main packages without running a toolchain, so detection stays fast and works without Go.

/// Build tags in effect for a target; CGO is always off for kiln's static builds.
#[derive(Debug, Clone)]
pub struct BuildTags {
    goos: String,
    goarch: String,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];
const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];
const UNIX_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "linux",
    "netbsd",
    "openbsd",
    "solaris",
];

impl BuildTags {
    /// Tags for `goos`/`goarch`.
    pub fn new(goos: &str, goarch: &str) -> Self {
        Self {
            goos: goos.to_owned(),
            goarch: goarch.to_owned(),
        }
    }

    fn has(&self, tag: &str) -> bool {
        // `go1.N` tags: the toolchain is not known during detection; assume a current one.
        let release = tag
            .strip_prefix("go1.")
            .is_some_and(|minor| minor.parse::<u32>().is_ok());
        tag == self.goos
            || tag == self.goarch
            || tag == "gc"
            || (tag == "unix" && UNIX_OS.contains(&self.goos.as_str()))
            || (tag == "linux" && self.goos == "android")
            || (tag == "darwin" && self.goos == "ios")
            || (tag == "solaris" && self.goos == "illumos")
            || release
    }

    /// Whether a file with this name and text is part of the build, and its package name.
    pub fn package_of(&self, file_name: &str, text: &str) -> Option<String> {
        if !self.name_matches(file_name) {
            return None;
        }
        let header = scan_header(text)?;
        let constraint_holds = match &header.go_build {
            Some(expression) => self.eval(expression).unwrap_or(false),
            None => header
                .plus_build
                .iter()
                .all(|line| self.eval_plus_build(line)),
        };
        constraint_holds.then_some(header.package)
    }

    /// File name rules: `_test.go` is never built; `name_GOOS_GOARCH.go`, `name_GOOS.go` and
    /// `name_GOARCH.go` only for that target.
    fn name_matches(&self, file_name: &str) -> bool {
        let Some(stem) = file_name.strip_suffix(".go") else {
            return false;
        };
        if stem.ends_with("_test") || file_name.starts_with('.') || file_name.starts_with('_') {
            return false;
        }
        let parts: Vec<&str> = stem.split('_').collect();
        let n = parts.len();
        if n >= 3 && KNOWN_OS.contains(&parts[n - 2]) && KNOWN_ARCH.contains(&parts[n - 1]) {
            return self.has(parts[n - 2]) && parts[n - 1] == self.goarch;
        }
        if n >= 2 && KNOWN_OS.contains(&parts[n - 1]) {
            return self.has(parts[n - 1]);
        }
        if n >= 2 && KNOWN_ARCH.contains(&parts[n - 1]) {
            return parts[n - 1] == self.goarch;
        }
        true
    }

    /// Evaluate a `//go:build` expression; `None` when it does not parse (the go command
    /// rejects such files, so they are not counted).
    fn eval(&self, expression: &str) -> Option<bool> {
        let tokens = expression_tokens(expression)?;
        let mut parser = Parser {
            tokens: &tokens,
            position: 0,
            tags: self,
        };
        let value = parser.or()?;
        (parser.position == tokens.len()).then_some(value)
    }

    /// `// +build a,b c` means (a AND b) OR c.
    fn eval_plus_build(&self, line: &str) -> bool {
        line.split_whitespace().any(|option| {
            option.split(',').all(|term| match term.strip_prefix('!') {
                Some(tag) => !self.has(tag),
                None => self.has(term),
            })
        })
    }
}

/// What precedes the code of a Go file.
struct Header {
    package: String,
    go_build: Option<String>,
    plus_build: Vec<String>,
}

/// Skip comments up to the package clause, collecting build constraint lines.
fn scan_header(text: &str) -> Option<Header> {
    let mut go_build = None;
    let mut plus_build = Vec::new();
    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text);
    loop {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix("//") {
            let (line, after) = comment.split_once('\n').unwrap_or((comment, ""));
            let line = line.trim_end_matches('\r');
            if let Some(expression) = line.strip_prefix("go:build") {
                go_build.get_or_insert_with(|| expression.trim().to_owned());
            } else if let Some(options) = line.trim_start().strip_prefix("+build") {
                plus_build.push(options.trim().to_owned());
            }
            rest = after;
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = &comment[comment.find("*/")? + 2..];
        } else {
            let clause = rest.strip_prefix("package")?;
            let name: String = clause
                .trim_start_matches([' ', '\t'])
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            return (!name.is_empty() && clause.starts_with([' ', '\t'])).then_some(Header {
                package: name,
                go_build,
                plus_build,
            });
        }
    }
}

fn expression_tokens(expression: &str) -> Option<Vec<String>> {
    let mut tokens = Vec::new();
    let mut chars = expression.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {}
            '(' | ')' | '!' => tokens.push(c.to_string()),
            '&' | '|' => {
                if chars.next() != Some(c) {
                    return None;
                }
                tokens.push(format!("{c}{c}"));
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' => {
                let mut tag = c.to_string();
                while let Some(&next) = chars.peek() {
                    if !(next.is_alphanumeric() || next == '_' || next == '.') {
                        break;
                    }
                    tag.push(next);
                    chars.next();
                }
                tokens.push(tag);
            }
            _ => return None,
        }
    }
    Some(tokens)
}

/// Recursive descent over `||`, `&&`, `!`, parentheses and tags.
struct Parser<'a> {
    tokens: &'a [String],
    position: usize,
    tags: &'a BuildTags,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.position).map(String::as_str)
    }

    fn or(&mut self) -> Option<bool> {
        let mut value = self.and()?;
        while self.peek() == Some("||") {
            self.position += 1;
            value |= self.and()?;
        }
        Some(value)
    }

    fn and(&mut self) -> Option<bool> {
        let mut value = self.not()?;
        while self.peek() == Some("&&") {
            self.position += 1;
            value &= self.not()?;
        }
        Some(value)
    }

    fn not(&mut self) -> Option<bool> {
        let token = self.peek()?.to_owned();
        self.position += 1;
        match token.as_str() {
            "!" => self.not().map(|value| !value),
            "(" => {
                let value = self.or()?;
                if self.peek() != Some(")") {
                    return None;
                }
                self.position += 1;
                Some(value)
            }
            ")" | "&&" | "||" => None,
            tag => Some(self.tags.has(tag)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux() -> BuildTags {
        BuildTags::new("linux", "amd64")
    }

    #[test]
    fn finds_the_package_after_comments_and_constraints() {
        let text = "// Copyright\n/* block\n package nope */\n//go:build linux && !cgo\n\n// Package doc.\npackage main\n\nfunc main() {}\n";
        assert_eq!(linux().package_of("main.go", text).as_deref(), Some("main"));
        assert_eq!(
            linux()
                .package_of("lib.go", "package\tlib // trailing\n")
                .as_deref(),
            Some("lib")
        );
        assert_eq!(linux().package_of("x.go", "func main() {}\n"), None);
        assert_eq!(linux().package_of("x.go", "packagemain\n"), None);
    }

    #[test]
    fn excludes_files_the_go_command_would_not_build() {
        let main = "package main\n";
        assert_eq!(linux().package_of("main_test.go", main), None);
        assert_eq!(linux().package_of("main_windows.go", main), None);
        assert_eq!(linux().package_of("main_darwin_arm64.go", main), None);
        assert_eq!(linux().package_of("main_arm64.go", main), None);
        assert_eq!(
            linux().package_of("main_linux_amd64.go", main).as_deref(),
            Some("main")
        );
        assert_eq!(
            linux().package_of("linux.go", main).as_deref(),
            Some("main"),
            "a bare GOOS name is no constraint"
        );
        assert_eq!(
            linux().package_of("gen.go", "//go:build ignore\n\npackage main\n"),
            None
        );
        assert_eq!(
            linux().package_of("gen.go", "// +build ignore\n\npackage main\n"),
            None
        );
        assert_eq!(
            linux()
                .package_of("x.go", "// +build darwin,amd64 linux\n\npackage main\n")
                .as_deref(),
            Some("main")
        );
        assert_eq!(
            linux()
                .package_of(
                    "x.go",
                    "//go:build (darwin || unix) && go1.21\n\npackage main\n"
                )
                .as_deref(),
            Some("main")
        );
        assert_eq!(
            linux().package_of("x.go", "//go:build cgo\n\npackage main\n"),
            None
        );
        assert_eq!(
            linux().package_of("x.go", "//go:build linux &&\n\npackage main\n"),
            None,
            "malformed"
        );
        assert_eq!(
            linux().package_of(
                "x.go",
                "//go:build !(linux)\n// +build linux\n\npackage main\n"
            ),
            None,
            "go:build wins"
        );
    }
}
