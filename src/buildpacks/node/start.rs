//! How the app starts when it has no Procfile: `scripts.start`, Nuxt's server output, `main`,
//! `server.js`, `index.js` — the first that applies.

use std::collections::BTreeSet;

use super::package_json::PackageJson;
use crate::buildpack::{Process, ProcessType};

/// Nuxt 3's production server, written by `nuxt build`.
pub const NUXT_SERVER: &str = ".output/server/index.mjs";

/// Where the start command comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartCommand {
    /// `scripts.start`.
    Script(String),
    /// Nuxt's `.output/server/index.mjs`.
    Nuxt,
    /// package.json `main`.
    Main(String),
    /// `server.js`.
    ServerJs,
    /// `index.js`.
    IndexJs,
}

impl StartCommand {
    /// The command line as a shell would read it.
    pub fn command_line(&self) -> String {
        match self {
            StartCommand::Script(script) => script.clone(),
            StartCommand::Nuxt => format!("node {NUXT_SERVER}"),
            StartCommand::Main(main) => format!("node {}", crate::buildpack::shell_quote(main)),
            StartCommand::ServerJs => "node server.js".to_owned(),
            StartCommand::IndexJs => "node index.js".to_owned(),
        }
    }

    /// Where it came from, for logs and `kiln detect`.
    pub fn origin(&self) -> &'static str {
        match self {
            StartCommand::Script(_) => "scripts.start",
            StartCommand::Nuxt => "Nuxt server output",
            StartCommand::Main(_) => "package.json main",
            StartCommand::ServerJs => "server.js",
            StartCommand::IndexJs => "index.js",
        }
    }

    /// The `web` process. A start script runs directly when it is a plain `node …` command;
    /// anything else goes through `/bin/sh -c` (npm is not in the image, and the dependency
    /// layer puts `node_modules/.bin` on PATH for the tools such scripts call).
    pub fn process(&self) -> Process {
        let web = ProcessType::web();
        let process = match self {
            StartCommand::Script(script) => {
                let mut process = Process::from_command_line(web, script);
                if process.direct && process.command.first().map(String::as_str) != Some("node") {
                    process.command = vec![script.trim().to_owned()];
                    process.direct = false;
                }
                process
            }
            StartCommand::Nuxt => Process::direct(web, &["node", NUXT_SERVER]),
            StartCommand::Main(main) => Process::direct(web, &["node", main]),
            StartCommand::ServerJs => Process::direct(web, &["node", "server.js"]),
            StartCommand::IndexJs => Process::direct(web, &["node", "index.js"]),
        };
        process.as_default()
    }
}

/// The start command, judged by `exists` (relative paths in the app after its build).
pub fn infer(package: &PackageJson, exists: impl Fn(&str) -> bool) -> Option<StartCommand> {
    if let Some(script) = package.script("start") {
        return Some(StartCommand::Script(script.to_owned()));
    }
    if exists(NUXT_SERVER) {
        return Some(StartCommand::Nuxt);
    }
    if let Some(main) = package
        .main
        .as_deref()
        .map(str::trim)
        .filter(|main| !main.is_empty())
    {
        // `main` may leave out the extension, as `require` does.
        let candidates = [
            main.to_owned(),
            format!("{main}.js"),
            format!("{main}.cjs"),
            format!("{main}.mjs"),
        ];
        if candidates.iter().any(|candidate| exists(candidate))
            || exists(&format!("{main}/index.js"))
        {
            return Some(StartCommand::Main(main.to_owned()));
        }
    }
    if exists("server.js") {
        return Some(StartCommand::ServerJs);
    }
    if exists("index.js") {
        return Some(StartCommand::IndexJs);
    }
    None
}

/// Programs a command line runs: the first word of each `&&`, `||`, `;`, `|` part, after
/// variable assignments and wrappers such as `exec` and `npx`. Used to tell whether the start
/// command needs a devDependency's tool.
pub fn programs(command_line: &str) -> BTreeSet<String> {
    const WRAPPERS: &[&str] = &["exec", "env", "npx", "nohup", "time", "command"];
    command_line
        .split(['&', '|', ';', '\n', '(', ')'])
        .filter_map(|part| {
            part.split_whitespace()
                .map(|word| word.trim_matches(['"', '\'']))
                .find(|word| {
                    !word.contains('=') && !WRAPPERS.contains(word) && !word.starts_with('-')
                })
                .map(str::to_owned)
        })
        .collect()
}

/// Package managers are build tools: a start command calling one cannot work in the image.
pub fn calls_package_manager(command_line: &str) -> Option<String> {
    programs(command_line)
        .into_iter()
        .find(|program| ["npm", "yarn", "pnpm"].contains(&program.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(json: &str) -> PackageJson {
        PackageJson::parse(json, "package.json").unwrap()
    }

    #[test]
    fn order_is_script_nuxt_main_server_index() {
        let all = |_: &str| true;
        assert_eq!(
            infer(
                &package(r#"{"scripts":{"start":"node a.js"},"main":"m.js"}"#),
                all
            ),
            Some(StartCommand::Script("node a.js".to_owned()))
        );
        assert_eq!(
            infer(&package(r#"{"main":"m.js"}"#), all),
            Some(StartCommand::Nuxt)
        );
        let no_nuxt = |path: &str| path != NUXT_SERVER;
        assert_eq!(
            infer(&package(r#"{"main":"lib/m"}"#), no_nuxt),
            Some(StartCommand::Main("lib/m".to_owned()))
        );
        let only = |wanted: &'static str| move |path: &str| path == wanted;
        assert_eq!(
            infer(&package(r#"{"main":"gone.js"}"#), only("server.js")),
            Some(StartCommand::ServerJs)
        );
        assert_eq!(
            infer(&package("{}"), only("index.js")),
            Some(StartCommand::IndexJs)
        );
        assert_eq!(infer(&package("{}"), |_| false), None);
    }

    #[test]
    fn plain_node_scripts_run_directly_and_others_through_sh() {
        let direct =
            StartCommand::Script("node --enable-source-maps dist/server.js".to_owned()).process();
        assert!(direct.direct && direct.default);
        assert_eq!(
            direct.command,
            ["node", "--enable-source-maps", "dist/server.js"]
        );
        for script in [
            "next start",
            "NODE_ENV=production node server.js",
            "node a.js && node b.js",
        ] {
            let process = StartCommand::Script(script.to_owned()).process();
            assert!(!process.direct, "{script}");
            assert_eq!(process.entrypoint(), ["/bin/sh", "-c", script]);
        }
        assert_eq!(
            StartCommand::Main("my app.js".to_owned()).process().command,
            ["node", "my app.js"]
        );
    }

    #[test]
    fn programs_skip_assignments_and_wrappers() {
        let found =
            programs("NODE_ENV=production npx ts-node src/index.ts && exec nodemon -w x | tee log");
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["nodemon", "tee", "ts-node"]
        );
        assert_eq!(
            calls_package_manager("npm run serve").as_deref(),
            Some("npm")
        );
        assert_eq!(calls_package_manager("node server.js"), None);
    }
}
